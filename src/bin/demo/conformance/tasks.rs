//! The tasks extension's fixtures (SEP-2663): `greet` (synchronous only), and `slow_compute`,
//! `failing_job`, `protocol_error_job`, `confirm_delete`, `multi_input` and `test_tool_with_task`,
//! which run as tasks when the request declares the extension. rmcp's `TaskManager` runs them and
//! answers `tasks/get`, `tasks/update` and `tasks/cancel`; the ones that also work without tasks
//! answer inline (or with an MRTR round) then.

use std::time::Duration;

use rmcp::{
    ErrorData as McpError, RoleServer,
    model::*,
    service::RequestContext,
    task_manager::{TaskContext, TaskExit, TaskFuture, TaskOptions},
};
use serde_json::{Value, json};

use super::{
    Call, Fixtures,
    input::{accepted_field, client_has, elicitation, missing, name_schema, pending},
    text,
};

/// How often clients should poll `tasks/get` (the suite polls at this pace).
const POLL_INTERVAL_MS: u64 = 100;

/// `greet`: says hello at once; it never runs as a task.
pub(super) fn greet(args: &JsonObject) -> CallToolResponse {
    let name = args
        .get("name")
        .and_then(Value::as_str)
        .unwrap_or("stranger");
    text(format!("Hello, {name}!")).into()
}

impl Fixtures {
    /// Answers `tasks/get`.
    pub(crate) fn get_task(&self, task_id: &str) -> Result<GetTaskResult, McpError> {
        self.tasks.get_task(task_id).map(GetTaskResult::new)
    }

    /// Answers `tasks/update`.
    pub(crate) fn update_task(&self, request: UpdateTaskParams) -> Result<(), McpError> {
        self.tasks
            .update_task(&request.task_id, request.input_responses)
    }

    /// Answers `tasks/cancel` (idempotent on terminal tasks).
    pub(crate) fn cancel_task(&self, task_id: &str) -> Result<(), McpError> {
        self.tasks.cancel_task(task_id)
    }

    /// Task-supporting tools: a task when the request declares the tasks extension.
    pub(super) async fn task_tool(
        &self,
        call: Call<'_>,
        context: &RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, McpError> {
        let tasks = client_has(context, "tasks");
        let seconds = call
            .args
            .get("seconds")
            .and_then(Value::as_f64)
            .unwrap_or(0.0);
        let label = call
            .args
            .get("label")
            .and_then(Value::as_str)
            .unwrap_or("job")
            .to_string();
        let filename = call
            .args
            .get("filename")
            .and_then(Value::as_str)
            .unwrap_or("file")
            .to_string();
        let run: Box<dyn FnOnce(TaskContext) -> TaskFuture + Send> = match call.name {
            "slow_compute" => {
                let duration = Duration::from_secs_f64(seconds.clamp(0.0, 3600.0));
                if !tasks {
                    tokio::select! {
                        () = tokio::time::sleep(duration) => {}
                        () = context.ct.cancelled() => {
                            return Err(McpError::internal_error("request cancelled", None));
                        }
                    }
                    return Ok(text(format!("computed {label} after {seconds}s")).into());
                }
                Box::new(move |task: TaskContext| {
                    Box::pin(async move {
                        tokio::select! {
                            () = tokio::time::sleep(duration) => Ok(text(format!("computed {label} after {seconds}s"))),
                            () = task.cancelled() => Err(TaskExit::Cancelled),
                        }
                    })
                })
            }
            "failing_job" => {
                if !tasks {
                    return Err(tasks_required());
                }
                Box::new(|_task: TaskContext| {
                    Box::pin(async move {
                        tokio::time::sleep(Duration::from_millis(300)).await;
                        Ok(CallToolResult::error(vec![ContentBlock::text(
                            "failing_job failed, as it always does",
                        )]))
                    })
                })
            }
            "protocol_error_job" => {
                let error = McpError::internal_error("protocol_error_job broke down", None);
                if !tasks {
                    return Err(error);
                }
                Box::new(move |_task: TaskContext| {
                    Box::pin(async move { Err(TaskExit::Error(error)) })
                })
            }
            "confirm_delete" => {
                let schema = json!({"type": "object", "properties": {"confirm": {"type": "boolean"}}, "required": ["confirm"]});
                let request = elicitation(&format!("Delete {filename}?"), schema)?;
                if !tasks {
                    let answer = call
                        .responses
                        .and_then(|responses| responses.get("confirm"));
                    return Ok(match answer.filter(|answer| answer["action"].is_string()) {
                        Some(answer) => text(confirm_text(&filename, answer)).into(),
                        None => pending(vec![("confirm", request)], None),
                    });
                }
                Box::new(move |task: TaskContext| {
                    Box::pin(async move {
                        let answer = task.request_input("confirm", request).await?;
                        Ok(text(confirm_text(&filename, &answer)))
                    })
                })
            }
            "multi_input" => {
                if !tasks {
                    return Err(tasks_required());
                }
                let first = elicitation("What is your name?", name_schema("name"))?;
                let second = elicitation(
                    "Shall we go on?",
                    json!({"type": "object", "properties": {"confirm": {"type": "boolean"}}}),
                )?;
                Box::new(move |task: TaskContext| {
                    Box::pin(async move {
                        let (name, go_on) = futures::join!(
                            task.request_input("name", first),
                            task.request_input("confirm", second)
                        );
                        let (name, go_on) = (name?, go_on?);
                        Ok(text(format!(
                            "answers: name={}, confirm={}",
                            name["content"], go_on["content"]
                        )))
                    })
                })
            }
            "test_tool_with_task" => {
                if !tasks {
                    return Err(tasks_required());
                }
                let answer = call
                    .responses
                    .and_then(|responses| responses.get("user_name"));
                let Some(name) = accepted_field(answer, "name") else {
                    let request = elicitation("What is your name?", name_schema("name"))?;
                    return Ok(pending(vec![("user_name", request)], None));
                };
                Box::new(move |_task: TaskContext| {
                    Box::pin(
                        async move { Ok(text(format!("Hello, {name}! (finished as a task)"))) },
                    )
                })
            }
            other => unreachable!("{other} is not a task tool"),
        };
        let options = TaskOptions::new().with_poll_interval_ms(POLL_INTERVAL_MS);
        let task = self.tasks.spawn(options, run);
        Ok(CallToolResponse::Task(CreateTaskResult::new(task)))
    }
}

fn confirm_text(filename: &str, answer: &Value) -> String {
    if answer["action"] == "accept" && answer["content"]["confirm"] != false {
        format!("Deleted {filename}")
    } else {
        format!("Kept {filename}")
    }
}

fn tasks_required() -> McpError {
    missing(json!({"extensions": {TASKS_EXTENSION_ID: {}}}))
}
