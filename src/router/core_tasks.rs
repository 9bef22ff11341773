//! 2025-11-25 "core" tasks through the proxy, the routing half: the union of the servers' task
//! capabilities announced to a 2025-11-25 client, the answers to the renamed core-task requests,
//! and the servers' status notifications sent on to the sessions that created the tasks (who did
//! is kept by `task_owners`). Task ids are namespaced `<slug>__<server's id>` like the
//! extension's, so routing needs no task table. The byte-level half (renaming, stashing, raw
//! answers) is `wire::core_tasks`.

use std::sync::Arc;
use std::time::Instant;

use rmcp::ErrorData;
use rmcp::model::{ErrorCode, ProtocolVersion, ServerCapabilities};
use serde_json::{Map, Value, json};

use super::Router;
use super::session::Caller;
use super::task_owners::Access;
use super::tasks::{SEPARATOR, namespaced, resolve};
use crate::downstream::Downstream;
use crate::wire::core_tasks::{EXECUTION_STASH, PREFIX, RELATED, STATUS, TASKS_STASH, custom, raw};

// ----------------------------------------------------------------------------------------------
// The proxy's answers.

/// The stashed `capabilities.tasks` of a connected legacy server.
fn server_tasks(server: &Downstream) -> Option<Map<String, Value>> {
    let connection = server.connection()?;
    if connection.is_modern() {
        return None;
    }
    connection
        .capabilities
        .experimental
        .as_ref()?
        .get(TASKS_STASH)
        .cloned()
}

/// The union of the connected legacy servers' task capabilities, stashed into the `initialize`
/// answer for a 2025-11-25 client (the transport puts it in `capabilities.tasks`).
pub(super) fn announce(
    router: &Router,
    version: &ProtocolVersion,
    capabilities: &mut ServerCapabilities,
) {
    if *version != ProtocolVersion::V_2025_11_25 {
        return;
    }
    let mut union = Map::new();
    for tasks in router.servers().iter().filter_map(|s| server_tasks(s)) {
        for key in ["list", "cancel"] {
            if tasks.contains_key(key) {
                union.insert(key.into(), json!({}));
            }
        }
        if tasks
            .get("requests")
            .and_then(|requests| requests.get("tools"))
            .and_then(|tools| tools.get("call"))
            .is_some()
        {
            union.insert("requests".into(), json!({ "tools": { "call": {} } }));
        }
    }
    if !union.is_empty() {
        capabilities
            .experimental
            .get_or_insert_with(Default::default)
            .insert(TASKS_STASH.to_owned(), union);
    }
}

/// A server's `notifications/tasks/status`: to the session that created the task, with the id
/// that session knows.
pub(super) fn status(router: &Router, server: &str, params: Option<Value>) {
    let Some(mut params) = params.filter(Value::is_object) else {
        return;
    };
    let Some(owner) = router.servers().into_iter().find(|s| s.name == server) else {
        return;
    };
    let Some(id) = params.get("taskId").and_then(Value::as_str) else {
        return;
    };
    let visible = namespaced(&owner.slug, id);
    params["taskId"] = visible.clone().into();
    if let Some((session, params)) = router.core_task_owners.route(visible, params) {
        session.notify(STATUS, params, &router.tracker);
    }
}

fn invalid(message: String) -> ErrorData {
    ErrorData::invalid_params(message, None)
}

/// Answers a renamed core-task request (`io.pluggedin/core-tasks/<method>`); `None` for any other
/// custom method.
pub(super) async fn answer(
    router: &Router,
    caller: &Caller,
    method: &str,
    params: Option<Value>,
) -> Option<Result<Value, ErrorData>> {
    let method = method.strip_prefix(PREFIX)?;
    let params = match params {
        Some(Value::Object(params)) => params,
        None => Map::new(),
        Some(_) => {
            return Some(Err(invalid(format!(
                "params of {method} must be an object"
            ))));
        }
    };
    Some(match method {
        "tools/call" => call(router, caller, params).await,
        "tasks/list" => list(router, caller, params).await,
        "tasks/get" | "tasks/result" | "tasks/cancel" => {
            by_id(router, caller, method, params).await
        }
        _ => Err(ErrorData::new(
            ErrorCode::METHOD_NOT_FOUND,
            format!("unknown method: {method}"),
            None,
        )),
    })
}

/// A task-augmented `tools/call`: to the tool's server if the tool may run as a task there.
async fn call(
    router: &Router,
    caller: &Caller,
    mut params: Map<String, Value>,
) -> Result<Value, ErrorData> {
    let started = Instant::now();
    super::exposure::direct_task_call(&mut params);
    let Some(name) = params
        .get("name")
        .and_then(Value::as_str)
        .map(str::to_owned)
    else {
        return Err(invalid("tools/call needs a tool \"name\"".into()));
    };
    let catalog = router.catalog();
    let route = catalog
        .resolve_tool(&name)
        .map_err(|error| invalid(error.to_string()))?;
    let support = catalog
        .tools
        .iter()
        .find(|tool| tool.name == name)
        .and_then(|tool| {
            tool.meta
                .as_ref()?
                .0
                .get(EXECUTION_STASH)?
                .get("taskSupport")
        })
        .and_then(Value::as_str)
        .unwrap_or("forbidden")
        .to_owned();
    let server = router
        .servers()
        .into_iter()
        .find(|server| server.name == route.server)
        .ok_or_else(|| invalid(format!("tool {name}: its server is not configured")))?;
    let server_calls_tasks = server_tasks(&server)
        .and_then(|tasks| tasks.get("requests")?.get("tools")?.get("call").cloned())
        .is_some();
    if support == "forbidden" || !server_calls_tasks {
        let why = if server_calls_tasks {
            "its execution.taskSupport is \"forbidden\" (or absent)".to_owned()
        } else {
            format!(
                "its server {} does not support task-augmented tools/call",
                server.name
            )
        };
        return Err(ErrorData::new(
            ErrorCode::METHOD_NOT_FOUND,
            format!("tool {name} cannot be called as a task: {why}; call it without \"task\""),
            Some(json!({ "tool": name })),
        ));
    }
    params.insert("name".into(), route.original.clone().into());
    params.remove("_meta");
    let outcome = router
        .forward(
            &server.name,
            custom("tools/call", Value::Object(params)),
            caller,
        )
        .await
        .map_err(ErrorData::from)
        .and_then(|result| raw(&server.name, "tools/call", result));
    let outcome = outcome.map(|mut answer| {
        if let Some(task) = answer.get_mut("task").and_then(Value::as_object_mut)
            && let Some(id) = task.get("taskId").and_then(Value::as_str)
        {
            let visible = namespaced(&server.slug, id);
            let early = router.core_task_owners.insert(visible.clone(), caller);
            if let Some((early, session)) = early.zip(caller.session.as_ref()) {
                session.notify(STATUS, early, &router.tracker);
            }
            task.insert("taskId".into(), visible.into());
        }
        answer
    });
    let error = match &outcome {
        Ok(answer) if answer.get("isError") == Some(&Value::Bool(true)) => {
            Some("the tool reported an error".to_owned())
        }
        Ok(_) => None,
        Err(error) => Some(error.message.to_string()),
    };
    router.record_tool_call(caller, &route.server, &route.original, started, error);
    outcome
}

/// `tasks/get`, `tasks/result`, `tasks/cancel`: to the server that owns the task.
async fn by_id(
    router: &Router,
    caller: &Caller,
    method: &str,
    mut params: Map<String, Value>,
) -> Result<Value, ErrorData> {
    let Some(visible) = params
        .get("taskId")
        .and_then(Value::as_str)
        .map(str::to_owned)
    else {
        return Err(invalid(format!("{method} needs a \"taskId\"")));
    };
    let (server, id) = resolve(router, &visible)?;
    if let Access::Foreign = router.core_task_owners.access(&visible, caller) {
        // Someone else's task: as unknown as one that does not exist.
        return Err(invalid(format!(
            "unknown task: {visible} (not a task id this proxy handed out)"
        )));
    }
    params.insert("taskId".into(), id.clone().into());
    params.remove("_meta");
    let result = router
        .forward(&server.name, custom(method, Value::Object(params)), caller)
        .await?;
    let mut answer = raw(&server.name, method, result)?;
    // A task (get, cancel) names itself; a result names its task in `_meta`.
    if let Some(object) = answer.as_object_mut() {
        if object.get("taskId").and_then(Value::as_str) == Some(id.as_str()) {
            object.insert("taskId".into(), visible.clone().into());
        }
        if let Some(related) = object
            .get_mut("_meta")
            .and_then(|meta| meta.get_mut(RELATED))
            .and_then(Value::as_object_mut)
            && related.get("taskId").and_then(Value::as_str) == Some(id.as_str())
        {
            related.insert("taskId".into(), visible.into());
        }
    }
    Ok(answer)
}

/// `tasks/list`: the tasks of every connected legacy server that lists tasks, one server after
/// the other. The cursor is `<slug>__<that server's cursor>` (empty: from its start).
async fn list(
    router: &Router,
    caller: &Caller,
    params: Map<String, Value>,
) -> Result<Value, ErrorData> {
    let servers: Vec<Arc<Downstream>> = router
        .servers()
        .into_iter()
        .filter(|server| server_tasks(server).is_some_and(|tasks| tasks.contains_key("list")))
        .collect();
    let (mut index, mut cursor) = match params.get("cursor") {
        None | Some(Value::Null) => (0, None),
        Some(Value::String(text)) => {
            let bad = || invalid(format!("invalid cursor for tasks/list: {text}"));
            let (slug, rest) = text.split_once(SEPARATOR).ok_or_else(bad)?;
            let index = servers
                .iter()
                .position(|server| server.slug == slug)
                .ok_or_else(bad)?;
            (index, (!rest.is_empty()).then(|| rest.to_owned()))
        }
        Some(_) => return Err(invalid("the tasks/list cursor must be a string".into())),
    };
    let mut tasks = Vec::new();
    let mut next = None;
    while let Some(server) = servers.get(index) {
        let request = match &cursor {
            Some(cursor) => json!({ "cursor": cursor }),
            None => json!({}),
        };
        let result = router
            .forward(&server.name, custom("tasks/list", request), caller)
            .await?;
        let answer = raw(&server.name, "tasks/list", result)?;
        for mut task in answer
            .get("tasks")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default()
        {
            let Some(id) = task.get("taskId").and_then(Value::as_str) else {
                continue;
            };
            let visible = namespaced(&server.slug, id);
            // A server's tasks are all the proxy's (one connection); each caller sees its own.
            if let Access::Own = router.core_task_owners.access(&visible, caller) {
                task["taskId"] = visible.into();
                tasks.push(task);
            }
        }
        if let Some(more) = answer.get("nextCursor").and_then(Value::as_str) {
            next = Some(namespaced(&server.slug, more));
            break;
        }
        index += 1;
        cursor = None;
        if !tasks.is_empty() {
            next = servers
                .get(index)
                .map(|server| namespaced(&server.slug, ""));
            break;
        }
    }
    let mut answer = json!({ "tasks": tasks });
    if let Some(next) = next {
        answer["nextCursor"] = next.into();
    }
    Ok(answer)
}

impl Router {
    /// Puts the union of the connected legacy servers' task capabilities into a 2025-11-25
    /// client's `initialize` answer.
    pub fn announce_core_tasks(
        &self,
        version: &ProtocolVersion,
        capabilities: &mut ServerCapabilities,
    ) {
        announce(self, version, capabilities);
    }

    /// Answers a renamed core-task request (`io.pluggedin/core-tasks/<method>`); `None` for any
    /// other custom method.
    pub async fn answer_core_task(
        &self,
        caller: &Caller,
        method: &str,
        params: Option<Value>,
    ) -> Option<Result<Value, ErrorData>> {
        answer(self, caller, method, params).await
    }
}
