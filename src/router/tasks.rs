//! Tasks through the proxy (the 2026-07-28 tasks extension, SEP-2663,
//! `io.modelcontextprotocol/tasks`).
//!
//! A task-augmented `tools/call` passes through to the server that owns the tool; the task id it
//! answers with is namespaced as `<slug>__<server's id>` before the client sees it, so that
//! `tasks/get`, `tasks/update` and `tasks/cancel` reach the server that made the task (and two
//! servers minting the same id never collide). The proxy keeps no task state: the id itself says
//! where the task lives. The extension is announced while at least one connected server
//! announces it (`fleet`), and a modern client's own capabilities (the tasks extension among
//! them) are passed on to modern servers with each request (`forward`), because whether a call
//! becomes a task, or may ask for sampling, depends on what the real client declared, not on
//! what the proxy could do.
//!
//! The 2025-11-25 generation's "core" tasks (`capabilities.tasks`, `execution.taskSupport`,
//! `tools/call` with `params.task`, `tasks/get|result|list|cancel`) live in `core_tasks`: rmcp's
//! typed model loses their data, so they travel as raw JSON, rewritten at the proxy's own framing
//! on both sides, with ids namespaced the same way.

use std::sync::Arc;

use rmcp::ErrorData;
use rmcp::model::{
    CancelTaskParams, ClientRequest, GetTaskParams, GetTaskResult, Request, ServerResult,
    UpdateTaskParams,
};
use serde_json::json;

use super::Router;
use super::session::Caller;
use crate::downstream::Downstream;

/// Between a server's slug and its own task id in the ids clients see.
pub(super) const SEPARATOR: &str = "__";

/// The task id a client sees for task `id` of the server with `slug`.
pub(super) fn namespaced(slug: &str, id: &str) -> String {
    format!("{slug}{SEPARATOR}{id}")
}

/// Rewrites the id of a task that `server` just created into the id the client sees.
pub(super) fn created(router: &Router, server: &str, result: ServerResult) -> ServerResult {
    let ServerResult::CreateTaskResult(mut created) = result else {
        return result;
    };
    if let Some(owner) = router.servers().into_iter().find(|s| s.name == server) {
        created.task.task_id = namespaced(&owner.slug, &created.task.task_id);
    }
    ServerResult::CreateTaskResult(created)
}

/// The server that owns a client-visible task id, and that server's own id for it.
pub(super) fn resolve(
    router: &Router,
    task_id: &str,
) -> Result<(Arc<Downstream>, String), ErrorData> {
    let unknown = || {
        ErrorData::invalid_params(
            format!("unknown task: {task_id} (not a task id this proxy handed out)"),
            Some(json!({ "taskId": task_id })),
        )
    };
    let (slug, id) = task_id.split_once(SEPARATOR).ok_or_else(unknown)?;
    let server = router
        .servers()
        .into_iter()
        .find(|server| server.slug == slug)
        .ok_or_else(unknown)?;
    Ok((server, id.to_owned()))
}

impl Router {
    /// `tasks/get`: asks the owning server, and answers with the client's id for the task.
    pub async fn get_task(
        &self,
        caller: &Caller,
        mut params: GetTaskParams,
    ) -> Result<GetTaskResult, ErrorData> {
        let visible = params.task_id.clone();
        let (server, id) = resolve(self, &visible)?;
        params.task_id = id;
        params.meta = None;
        let request = ClientRequest::GetTaskRequest(Request::new(params));
        match self.forward(&server.name, request, caller).await? {
            ServerResult::GetTaskResult(mut result) => {
                result.task.task.task_id = visible;
                Ok(result)
            }
            _ => Err(ErrorData::internal_error(
                format!(
                    "server {} answered tasks/get with something that is not a task",
                    server.name
                ),
                None,
            )),
        }
    }

    /// `tasks/update`: hands the client's input responses to the owning server.
    pub async fn update_task(
        &self,
        caller: &Caller,
        mut params: UpdateTaskParams,
    ) -> Result<(), ErrorData> {
        let (server, id) = resolve(self, &params.task_id)?;
        params.task_id = id;
        params.meta = None;
        let request = ClientRequest::UpdateTaskRequest(Request::new(params));
        self.forward(&server.name, request, caller).await?;
        Ok(())
    }

    /// `tasks/cancel`: asks the owning server to cancel the task.
    pub async fn cancel_task(
        &self,
        caller: &Caller,
        mut params: CancelTaskParams,
    ) -> Result<(), ErrorData> {
        let (server, id) = resolve(self, &params.task_id)?;
        params.task_id = id;
        params.meta = None;
        let request = ClientRequest::CancelTaskRequest(Request::new(params));
        self.forward(&server.name, request, caller).await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn namespaced_ids_keep_the_servers_id_whole() {
        let id = namespaced("demo", "a__b-1");
        assert_eq!(id, "demo__a__b-1");
        let (slug, rest) = id.split_once(SEPARATOR).expect("separator present");
        assert_eq!((slug, rest), ("demo", "a__b-1"));
    }

    /// Why 2025-11-25 "core" tasks take the raw path of `router::core_tasks` and `wire::core_tasks` (ARCHITECTURE.md, the core
    /// tasks decision): rmcp 3.11 drops their data while parsing, so our transports stash it
    /// where rmcp keeps it and wrap task answers as `CustomResult`. If an rmcp upgrade makes this
    /// test fail, the typed model may carry core tasks now; the raw path could then shrink.
    #[test]
    fn rmcp_drops_the_data_core_tasks_need() {
        use rmcp::model::{CallToolRequestParams, InitializeResult, ServerResult, Tool};

        // A server's `tasks` capability does not survive the handshake.
        let initialize: InitializeResult = serde_json::from_value(json!({
            "protocolVersion": "2025-11-25",
            "capabilities": { "tools": {}, "tasks": { "list": {}, "cancel": {},
                "requests": { "tools": { "call": {} } } } },
            "serverInfo": { "name": "s", "version": "1" }
        }))
        .expect("initialize result");
        let capabilities = serde_json::to_value(&initialize.capabilities).expect("serialize");
        assert_eq!(capabilities, json!({ "tools": {} }));

        // Nor does a tool's `execution.taskSupport`.
        let tool: Tool = serde_json::from_value(json!({
            "name": "research", "inputSchema": { "type": "object" },
            "execution": { "taskSupport": "required" }
        }))
        .expect("tool");
        assert!(
            serde_json::to_value(&tool)
                .expect("serialize")
                .get("execution")
                .is_none()
        );

        // Nor a client's `params.task` on `tools/call`.
        let params: CallToolRequestParams = serde_json::from_value(json!({
            "name": "research", "arguments": {}, "task": { "ttl": 60000 }
        }))
        .expect("call params");
        assert!(
            serde_json::to_value(&params)
                .expect("serialize")
                .get("task")
                .is_none()
        );

        // A core `tasks/get` (or `tasks/cancel`) answer for a working or cancelled task is taken
        // for the extension's `GetTaskResult`: the required `ttl` and `pollInterval` are lost.
        let answer = json!({
            "taskId": "t1", "status": "working", "createdAt": "2025-11-25T10:30:00Z",
            "lastUpdatedAt": "2025-11-25T10:30:00Z", "ttl": 60000, "pollInterval": 1000
        });
        let parsed: ServerResult = serde_json::from_value(answer).expect("server result");
        assert!(matches!(parsed, ServerResult::GetTaskResult(_)));
        let back = serde_json::to_value(&parsed).expect("serialize");
        assert!(back.get("ttl").is_none() && back.get("pollInterval").is_none());
    }
}
