//! What the demo's tools do: `tools/call` dispatch, first to the conformance fixtures, then to
//! the content fixtures (text, image, audio, embedded resource), the friendly test tools (`echo`,
//! `add`, `sleep`, `wait_for_file`, `exit`, `pid`, `spawn_sleeper`, `roots`, `http_headers`,
//! `count`, …), the runtime tool and prompt toggles, `--hostile`'s and `--extra-tools`' tools.
//! Which tools exist and their schemas is `catalog.rs`'s business.

use std::{sync::atomic::Ordering, time::Duration};

use pluggedin_mcp_proxy::sync::lock;
use rmcp::{
    ErrorData as McpError, RoleServer, handler::server::tool::parse_json_object, model::*,
    service::RequestContext,
};
use serde_json::{Value, json};
use tracing::{debug, info, warn};

use crate::{
    catalog::{
        AddArgs, DYNAMIC_EXTRA_TOOL, EchoArgs, ElicitationArgs, ExitArgs, SamplingArgs, SleepArgs,
        TextArgs, WaitForFileArgs, is_extra_tool,
    },
    client_input::{ClientInput, sampling_reply_text},
    conformance,
    hostile::{self, BigArgs, FloodArgs, HOSTILE_TOOL},
    prompts::DYNAMIC_PROMPT,
    resources::{self, TEST_IMAGE_BASE64},
    server::DemoServer,
};

/// A two-sample, 8 kHz, 16-bit mono WAV file.
const TEST_AUDIO_BASE64: &str = "UklGRigAAABXQVZFZm10IBAAAAABAAEAQB8AAIA+AAACABAAZGF0YQQAAAAAAAAA";

impl DemoServer {
    pub(crate) async fn call(
        &self,
        request: CallToolRequestParams,
        context: &RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, McpError> {
        let args = request.arguments.unwrap_or_default();
        let name = request.name.as_ref();
        debug!(session = self.session_id, tool = name, "tools/call");
        let fixture = conformance::Call {
            name,
            args: &args,
            responses: request.input_responses.as_ref(),
            state: request.request_state.as_deref(),
        };
        if let Some(result) = self.shared.fixtures.call(fixture, context).await {
            return result;
        }
        let responses = request.input_responses.clone().unwrap_or_default();
        let result = match name {
            "test_simple_text" => text_result("This is a simple text response for testing."),
            "test_image_content" => {
                CallToolResult::success(vec![ContentBlock::image(TEST_IMAGE_BASE64, "image/png")])
            }
            "test_audio_content" => {
                CallToolResult::success(vec![ContentBlock::audio(TEST_AUDIO_BASE64, "audio/wav")])
            }
            "test_embedded_resource" => CallToolResult::success(vec![ContentBlock::embedded_text(
                "test://embedded-resource",
                "This is an embedded resource content.",
            )]),
            "test_multiple_content_types" => CallToolResult::success(vec![
                ContentBlock::text("Multiple content types test:"),
                ContentBlock::image(TEST_IMAGE_BASE64, "image/png"),
                ContentBlock::resource(
                    ResourceContents::text(
                        json!({"test": "data", "value": 123}).to_string(),
                        "test://mixed-content-resource",
                    )
                    .with_mime_type("application/json"),
                ),
            ]),
            "test_tool_with_logging" => self.tool_with_logging(context).await,
            "test_tool_with_progress" => Self::tool_with_progress(context).await,
            "test_error_handling" => {
                error_result("This tool intentionally returns an error for testing")
            }
            "test_sampling" => {
                let args: SamplingArgs = parse_json_object(args)?;
                let input = ClientInput::Sampling(args.prompt);
                return Ok(input
                    .tool_result(context, &responses, |reply| {
                        format!("LLM response: {}", sampling_reply_text(reply))
                    })
                    .await);
            }
            "test_elicitation" => {
                let args: ElicitationArgs = parse_json_object(args)?;
                let input = ClientInput::Elicitation(args.message);
                return Ok(input
                    .tool_result(context, &responses, |reply| {
                        let content = reply.get("content").cloned().unwrap_or(json!({}));
                        let action = reply["action"].as_str().unwrap_or("unknown");
                        format!("User response: action={action}, content={content}")
                    })
                    .await);
            }
            "test_dynamic_tool" | "test_trigger_tool_change" => self.dynamic_tool(context).await,
            "test_trigger_prompt_change" => self.dynamic_prompt(context).await,
            "test_logging_tool" => self.tool_with_logging(context).await,
            "test_reconnection" => {
                // Over HTTP its stream is cut (`conformance::drop_stream_mid_call`); it answers
                // once the client has resumed.
                conformance::reconnection(&self.shared.fixtures.resumptions, context).await
            }
            "json_schema_2020_12_tool" => text_result(format!(
                "JSON Schema 2020-12 tool called with: {}",
                Value::Object(args)
            )),
            DYNAMIC_EXTRA_TOOL if self.shared.dynamic_tool_enabled.load(Ordering::Relaxed) => {
                text_result("This tool was added at runtime by test_dynamic_tool.")
            }
            "echo" => {
                let args: EchoArgs = parse_json_object(args)?;
                text_result(format!("Echo: {}", args.message))
            }
            "add" => {
                let args: AddArgs = parse_json_object(args)?;
                let sum = number_json(args.a + args.b);
                let mut result = text_result(sum.to_string());
                result.structured_content = Some(json!({ "sum": sum }));
                result
            }
            "sleep" => {
                let args: SleepArgs = parse_json_object(args)?;
                Self::sleep(args.ms, context).await?
            }
            "wait_for_file" => {
                let args: WaitForFileArgs = parse_json_object(args)?;
                info!(path = args.path, "waiting for the file");
                tokio::select! {
                    () = until_exists(std::path::Path::new(&args.path)) => {
                        text_result(format!("{} exists", args.path))
                    }
                    () = context.ct.cancelled() => {
                        return Err(McpError::internal_error("request cancelled", None));
                    }
                }
            }
            "exit" => {
                let args: ExitArgs = parse_json_object(args)?;
                let code = args.code.unwrap_or(1);
                warn!(code, "exit tool called; terminating the process");
                std::process::exit(code);
            }
            "roots" => {
                let render = |reply: &Value| reply["roots"].to_string();
                return Ok(ClientInput::Roots
                    .tool_result(context, &responses, render)
                    .await);
            }
            "touch_watched_resource" => {
                resources::touch_watched(&self.shared).await;
                text_result("touched")
            }
            "pid" => text_result(std::process::id().to_string()),
            "spawn_sleeper" => {
                // Not waited for and not killed on drop: a helper a server forgot about.
                let child = std::process::Command::new("sleep")
                    .arg("600")
                    .stdin(std::process::Stdio::null())
                    .stdout(std::process::Stdio::null())
                    .stderr(std::process::Stdio::null())
                    .spawn()
                    .map_err(|error| McpError::internal_error(error.to_string(), None))?;
                text_result(child.id().to_string())
            }
            "http_headers" => {
                let headers: serde_json::Map<String, Value> = context
                    .extensions
                    .get::<axum::http::request::Parts>()
                    .map(|parts| {
                        parts
                            .headers
                            .iter()
                            .map(|(name, value)| {
                                let value = String::from_utf8_lossy(value.as_bytes()).into_owned();
                                (name.as_str().to_owned(), Value::String(value))
                            })
                            .collect()
                    })
                    .unwrap_or_default();
                text_result(Value::Object(headers).to_string())
            }
            HOSTILE_TOOL if self.shared.hostile => text_result("rang"),
            "count" if let Some(counter) = &self.shared.counter => {
                text_result((counter.fetch_add(1, Ordering::Relaxed) + 1).to_string())
            }
            "roots_seen" if let Some(seen) = &self.shared.watched_roots => {
                text_result(Value::Array(lock(seen).clone()).to_string())
            }
            "flood" if self.shared.hostile => {
                let args: FloodArgs = parse_json_object(args)?;
                hostile::flood(context, args.count).await
            }
            "big" if self.shared.hostile => {
                let args: BigArgs = parse_json_object(args)?;
                text_result("x".repeat(args.bytes))
            }
            extra if is_extra_tool(&self.shared, extra) => {
                let args: TextArgs = parse_json_object(args)?;
                text_result(args.text)
            }
            unknown => {
                return Err(McpError::invalid_params(
                    format!("unknown tool: {unknown}"),
                    Some(json!({ "name": unknown })),
                ));
            }
        };
        Ok(result.into())
    }

    async fn tool_with_progress(context: &RequestContext<RoleServer>) -> CallToolResult {
        let token = context.meta.get_progress_token();
        for (index, progress) in [0.0, 50.0, 100.0].into_iter().enumerate() {
            if index > 0 {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            if let Some(token) = &token {
                let param = ProgressNotificationParam::new(token.clone(), progress)
                    .with_total(100.0)
                    .with_message(format!("Completed step {progress} of 100"));
                if let Err(error) = context.peer.notify_progress(param).await {
                    debug!(%error, "progress notification not delivered");
                }
            }
        }
        match token {
            Some(token) => text_result(token.0.to_string()),
            None => text_result("no progress token"),
        }
    }

    async fn sleep(
        ms: u64,
        context: &RequestContext<RoleServer>,
    ) -> Result<CallToolResult, McpError> {
        info!(ms, "sleep started");
        tokio::select! {
            () = tokio::time::sleep(Duration::from_millis(ms)) => Ok(text_result(format!("slept {ms}ms"))),
            () = context.ct.cancelled() => {
                info!(ms, "sleep cancelled by the client");
                Err(McpError::internal_error("request cancelled", None))
            }
        }
    }

    async fn dynamic_tool(&self, context: &RequestContext<RoleServer>) -> CallToolResult {
        let was_enabled = self
            .shared
            .dynamic_tool_enabled
            .fetch_xor(true, Ordering::Relaxed);
        if self.shared.notify_caller_only {
            if let Err(error) = context.peer.notify_tool_list_changed().await {
                debug!(%error, "tools/list_changed not delivered");
            }
        } else {
            self.shared.broadcast_tool_list_changed().await;
        }
        text_result(if was_enabled {
            format!("Removed tool {DYNAMIC_EXTRA_TOOL}")
        } else {
            format!("Added tool {DYNAMIC_EXTRA_TOOL}")
        })
    }

    async fn dynamic_prompt(&self, context: &RequestContext<RoleServer>) -> CallToolResult {
        let was_enabled = self
            .shared
            .dynamic_prompt_enabled
            .fetch_xor(true, Ordering::Relaxed);
        if self.shared.notify_caller_only {
            if let Err(error) = context.peer.notify_prompt_list_changed().await {
                debug!(%error, "prompts/list_changed not delivered");
            }
        } else {
            self.shared.broadcast_prompt_list_changed().await;
        }
        text_result(if was_enabled {
            format!("Removed prompt {DYNAMIC_PROMPT}")
        } else {
            format!("Added prompt {DYNAMIC_PROMPT}")
        })
    }
}

/// Resolves once `path` exists, looking every 10 ms: a test creates the file when the moment
/// it waits for has come.
pub(crate) async fn until_exists(path: &std::path::Path) {
    while !path.exists() {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

pub(crate) fn text_result(text: impl Into<String>) -> CallToolResult {
    CallToolResult::success(vec![ContentBlock::text(text)])
}

pub(crate) fn error_result(text: impl Into<String>) -> CallToolResult {
    CallToolResult::error(vec![ContentBlock::text(text)])
}

/// JSON number for `x`, written as an integer when it has no fractional part.
fn number_json(x: f64) -> Value {
    if x.fract() == 0.0 && x.abs() < 9.0e15 {
        json!(x as i64)
    } else {
        json!(x)
    }
}
