//! The tool catalog: the argument structs whose schemas the tools advertise, the always-present
//! tools in `tools/list` order, and the current list with what the switches and toggles add
//! (the runtime tool, `--hostile`, `--watch-roots`, the conformance fixtures, `--extra-tools`).
//! What each tool does is in `tools.rs`.

use std::sync::{Arc, atomic::Ordering};

use rmcp::{
    handler::server::{common::schema_for_empty_input, tool::schema_for_input},
    model::*,
    schemars::JsonSchema,
};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::{conformance, hostile, shared::Shared};

/// The tool that `test_dynamic_tool` adds to / removes from the tool list.
pub(crate) const DYNAMIC_EXTRA_TOOL: &str = "test_dynamic_tool_extra";

#[derive(Deserialize, JsonSchema)]
pub(crate) struct EchoArgs {
    /// The message to echo back.
    pub(crate) message: String,
}

#[derive(Deserialize, JsonSchema)]
pub(crate) struct AddArgs {
    /// First addend.
    pub(crate) a: f64,
    /// Second addend.
    pub(crate) b: f64,
}

#[derive(Deserialize, JsonSchema)]
pub(crate) struct SleepArgs {
    /// How long to sleep, in milliseconds.
    pub(crate) ms: u64,
}

#[derive(Deserialize, JsonSchema)]
pub(crate) struct WaitForFileArgs {
    /// The file whose existence ends the wait.
    pub(crate) path: String,
}

#[derive(Deserialize, JsonSchema)]
pub(crate) struct ExitArgs {
    /// Process exit code (default 1).
    pub(crate) code: Option<i32>,
}

#[derive(Deserialize, JsonSchema)]
pub(crate) struct TextArgs {
    /// Text to echo back.
    pub(crate) text: String,
}

#[derive(Deserialize, JsonSchema)]
pub(crate) struct SamplingArgs {
    /// The prompt to send to the LLM.
    pub(crate) prompt: String,
}

#[derive(Deserialize, JsonSchema)]
pub(crate) struct ElicitationArgs {
    /// The message to show the user.
    pub(crate) message: String,
}

type SchemaFn = fn() -> Arc<JsonObject>;

/// Name, description and input schema of every always-present tool.
#[rustfmt::skip] // one row per tool reads better than rustfmt's vertical tuples
const STATIC_TOOLS: &[(&str, &str, SchemaFn)] = &[
    ("test_simple_text", "Tests simple text content response", schema_for_empty_input),
    ("test_image_content", "Tests image content response", schema_for_empty_input),
    ("test_audio_content", "Tests audio content response", schema_for_empty_input),
    ("test_embedded_resource", "Tests embedded resource content response", schema_for_empty_input),
    ("test_multiple_content_types", "Tests response with multiple content types (text, image, resource)", schema_for_empty_input),
    ("test_tool_with_logging", "Tests tool that emits log messages during execution", schema_for_empty_input),
    ("test_tool_with_progress", "Tests tool that reports progress notifications", schema_for_empty_input),
    ("test_error_handling", "Tests error response handling", schema_for_empty_input),
    ("test_sampling", "Tests server-initiated sampling (LLM completion request)", input_schema::<SamplingArgs>),
    ("test_elicitation", "Tests server-initiated elicitation (user input request)", input_schema::<ElicitationArgs>),
    ("test_dynamic_tool", "Toggles the runtime tool test_dynamic_tool_extra and sends tools/list_changed", schema_for_empty_input),
    ("test_trigger_tool_change", "Toggles the runtime tool test_dynamic_tool_extra and sends tools/list_changed", schema_for_empty_input),
    ("test_trigger_prompt_change", "Toggles the runtime prompt test_dynamic_prompt and sends prompts/list_changed", schema_for_empty_input),
    ("test_logging_tool", "Logs three messages, only at the level the request asked for", schema_for_empty_input),
    ("test_reconnection", "Over HTTP, its response stream is closed after the first event; the answer waits for a reconnect with Last-Event-ID (SEP-1699)", schema_for_empty_input),
    ("json_schema_2020_12_tool", "Tool with JSON Schema 2020-12 features for conformance testing (SEP-1613)", json_schema_2020_12),
    ("echo", "Echoes the message back", input_schema::<EchoArgs>),
    ("add", "Adds two numbers", input_schema::<AddArgs>),
    ("sleep", "Waits the given number of milliseconds (stops early when cancelled)", input_schema::<SleepArgs>),
    ("wait_for_file", "Waits until the file at `path` exists (stops early when cancelled)", input_schema::<WaitForFileArgs>),
    ("exit", "Terminates the server process immediately with the given exit code", input_schema::<ExitArgs>),
    ("roots", "Asks the client for its roots and returns them as JSON", schema_for_empty_input),
    ("touch_watched_resource", "Changes test://watched-resource and notifies its subscribers", schema_for_empty_input),
    ("pid", "Returns the server's process id", schema_for_empty_input),
    ("spawn_sleeper", "Starts a `sleep 600` child of its own (in its process group) and returns the child's process id", schema_for_empty_input),
    (
        "http_headers",
        "Returns the HTTP request headers of this call as a JSON object (empty over stdio)",
        schema_for_empty_input,
    ),
];

/// An input schema using JSON Schema 2020-12 keywords that must survive `tools/list` verbatim.
fn json_schema_2020_12() -> Arc<JsonObject> {
    object_schema(json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "type": "object",
        "$defs": {
            "address": {
                "$anchor": "addressDef",
                "type": "object",
                "properties": {"street": {"type": "string"}, "city": {"type": "string"}}
            }
        },
        "properties": {
            "name": {"type": "string"},
            "address": {"$ref": "#/$defs/address"},
            "contactMethod": {"type": "string", "enum": ["phone", "email"]},
            "phone": {"type": "string"},
            "email": {"type": "string"}
        },
        "allOf": [{"anyOf": [{"required": ["phone"]}, {"required": ["email"]}]}],
        "if": {"properties": {"contactMethod": {"const": "phone"}}, "required": ["contactMethod"]},
        "then": {"required": ["phone"]},
        "else": {"required": ["email"]},
        "additionalProperties": false
    }))
}

/// The current tool catalog.
pub(crate) fn tools(shared: &Shared) -> Vec<Tool> {
    let mut tools: Vec<Tool> = STATIC_TOOLS
        .iter()
        .map(|(name, description, schema)| Tool::new(*name, *description, schema()))
        .collect();
    if let Some(add) = tools.iter_mut().find(|tool| tool.name == "add") {
        add.output_schema = Some(object_schema(json!({
            "type": "object",
            "properties": {"sum": {"type": "number"}},
            "required": ["sum"]
        })));
    }
    if shared.dynamic_tool_enabled.load(Ordering::Relaxed) {
        tools.push(Tool::new(
            DYNAMIC_EXTRA_TOOL,
            "A tool registered at runtime by test_dynamic_tool",
            schema_for_empty_input(),
        ));
    }
    if shared.hostile {
        tools.extend(hostile::tools());
    }
    if shared.counter.is_some() {
        tools.push(Tool::new(
            "count",
            "Counts one more and returns the count: state kept in this process's memory",
            schema_for_empty_input(),
        ));
    }
    if shared.watched_roots.is_some() {
        tools.push(Tool::new(
            "roots_seen",
            "What the client said about its roots, in order: each roots/list answer and each \
             notifications/roots/list_changed",
            schema_for_empty_input(),
        ));
    }
    tools.extend(conformance::tools());
    tools.extend((0..shared.extra_tools).map(|i| {
        Tool::new(
            format!("tool_{i}"),
            format!("Extra tool #{i}: echoes its text argument"),
            input_schema::<TextArgs>(),
        )
    }));
    tools
}

/// Whether `name` is one of the `--extra-tools` echo tools.
pub(crate) fn is_extra_tool(shared: &Shared, name: &str) -> bool {
    name.strip_prefix("tool_")
        .and_then(|index| index.parse::<usize>().ok())
        .is_some_and(|index| index < shared.extra_tools && name == format!("tool_{index}"))
}

pub(crate) fn input_schema<T: JsonSchema + 'static>() -> Arc<JsonObject> {
    schema_for_input::<T>().expect("derived argument structs always have an object schema")
}

pub(crate) fn object_schema(value: Value) -> Arc<JsonObject> {
    match value {
        Value::Object(object) => Arc::new(object),
        _ => schema_for_empty_input(),
    }
}
