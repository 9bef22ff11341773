//! Tasks (the 2026-07-28 tasks extension, SEP-2663) through the proxy: a modern rmcp client, the
//! real proxy binary on stdio, and two demo servers connected as modern servers, both minting
//! tasks. Also what a modern server now sees of a modern client: its own capabilities.

use rmcp::model::*;
use rmcp::service::{ClientLifecycleMode, ClientServiceExt, RunningService, ServiceError};
use rmcp::transport::TokioChildProcess;
use rmcp::{ClientHandler, RoleClient};
use serde_json::{Value, json};

use crate::support::*;

/// A modern client declaring `capabilities` (the tasks extension or not).
#[derive(Clone)]
struct ModernClient {
    capabilities: ClientCapabilities,
}

impl ClientHandler for ModernClient {
    fn get_info(&self) -> ClientInfo {
        ClientInfo::new(
            self.capabilities.clone(),
            Implementation::new("tasks-tests", "1.0.0"),
        )
    }
}

fn with_tasks() -> ClientCapabilities {
    let mut capabilities = ClientCapabilities::builder().enable_tasks().build();
    capabilities.elicitation =
        Some(ElicitationCapability::new().with_form(FormElicitationCapability::new()));
    capabilities
}

fn modern_demo() -> Value {
    json!({"command": demo_bin(), "protocol": "modern"})
}

/// The proxy on stdio with `servers`, and a modern client declaring `capabilities` on it.
async fn client_of(
    servers: Value,
    capabilities: ClientCapabilities,
) -> (RunningService<RoleClient, ModernClient>, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("mcp.json");
    std::fs::write(&config, json!({ "mcpServers": servers }).to_string()).unwrap();
    let mut command = tokio::process::Command::new(proxy_bin());
    command
        .arg("--config")
        .arg(&config)
        .arg("--data-dir")
        .arg(dir.path().join("data"));
    let (transport, _) = TokioChildProcess::builder(command)
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let lifecycle = ClientLifecycleMode::Discover {
        preferred_versions: vec![ProtocolVersion::V_2026_07_28],
    };
    let client = ModernClient { capabilities }
        .serve_with_lifecycle(transport, lifecycle)
        .await
        .unwrap();
    (client, dir)
}

async fn wait_tools(client: &RunningService<RoleClient, ModernClient>, tools: &[&str]) {
    tokio::time::timeout(WAIT, async {
        loop {
            let listed = client.peer().list_all_tools().await.unwrap();
            if tools
                .iter()
                .all(|tool| listed.iter().any(|t| t.name == *tool))
            {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    })
    .await
    .unwrap_or_else(|_| panic!("{tools:?} never all appeared"));
}

fn call(tool: &str, arguments: Value) -> CallToolRequestParams {
    let Value::Object(arguments) = arguments else {
        panic!("arguments must be an object")
    };
    CallToolRequestParams::new(tool.to_owned()).with_arguments(arguments)
}

/// Calls `tool` and expects a task; returns the task id the client sees.
async fn start_task(
    client: &RunningService<RoleClient, ModernClient>,
    tool: &str,
    arguments: Value,
) -> String {
    match client.peer().call_tool_once(call(tool, arguments)).await {
        Ok(CallToolResponse::Task(created)) => created.task.task_id,
        other => panic!("{tool} did not create a task: {other:?}"),
    }
}

async fn get(client: &RunningService<RoleClient, ModernClient>, id: &str) -> DetailedTask {
    client
        .peer()
        .get_task(GetTaskParams::new(id))
        .await
        .unwrap_or_else(|error| panic!("tasks/get {id}: {error}"))
        .task
}

/// Polls `tasks/get` until the task reaches `status`.
async fn wait_status(
    client: &RunningService<RoleClient, ModernClient>,
    id: &str,
    status: TaskStatus,
) -> DetailedTask {
    tokio::time::timeout(WAIT, async {
        loop {
            let task = get(client, id).await;
            if task.status() == status {
                return task;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    })
    .await
    .unwrap_or_else(|_| panic!("task {id} never became {status:?}"))
}

fn result_text(task: &DetailedTask) -> String {
    match &task.payload {
        TaskPayload::Completed { result } => result["content"][0]["text"]
            .as_str()
            .unwrap_or_default()
            .to_owned(),
        other => panic!("not completed: {other:?}"),
    }
}

fn error_code(error: ServiceError) -> i32 {
    mcp_error(error).code.0
}

#[tokio::test]
async fn tasks_pass_through_and_their_ids_lead_back_to_the_server_that_made_them() {
    let servers = json!({"alpha": modern_demo(), "beta": modern_demo()});
    let (client, _dir) = client_of(servers, with_tasks()).await;
    wait_tools(&client, &["alpha__slow_compute", "beta__confirm_delete"]).await;

    // The proxy announces the extension its servers have.
    let discovered = client.peer().discover(Default::default()).await.unwrap();
    assert!(
        discovered.capabilities.supports_tasks(),
        "{:?}",
        discovered.capabilities
    );

    let computing = start_task(
        &client,
        "alpha__slow_compute",
        json!({"seconds": 0.1, "label": "on alpha"}),
    )
    .await;
    let confirming = start_task(
        &client,
        "beta__confirm_delete",
        json!({"filename": "notes.txt"}),
    )
    .await;
    assert!(computing.starts_with("alpha__"), "{computing}");
    assert!(confirming.starts_with("beta__"), "{confirming}");

    // beta's task waits for input; the answer goes to beta through tasks/update.
    let waiting = wait_status(&client, &confirming, TaskStatus::InputRequired).await;
    assert_eq!(waiting.task.task_id, confirming);
    let TaskPayload::InputRequired { input_requests } = &waiting.payload else {
        panic!("{waiting:?}")
    };
    let keys: Vec<String> = input_requests.keys().cloned().collect();
    assert_eq!(keys, ["confirm"]);
    let answer = json!({"action": "accept", "content": {"confirm": true}});
    client
        .peer()
        .update_task(UpdateTaskParams::new(
            confirming.clone(),
            InputResponses::from([("confirm".to_owned(), answer)]),
        ))
        .await
        .unwrap();
    let confirmed = wait_status(&client, &confirming, TaskStatus::Completed).await;
    assert_eq!(result_text(&confirmed), "Deleted notes.txt");

    // alpha's task finished on alpha, under the id the client was given.
    let computed = wait_status(&client, &computing, TaskStatus::Completed).await;
    assert_eq!(computed.task.task_id, computing);
    assert_eq!(result_text(&computed), "computed on alpha after 0.1s");

    // A tool error is a completed task whose result is an error; a protocol error fails it.
    let failing = start_task(&client, "alpha__failing_job", json!({})).await;
    let failed_tool = wait_status(&client, &failing, TaskStatus::Completed).await;
    let TaskPayload::Completed { result } = &failed_tool.payload else {
        panic!("{failed_tool:?}")
    };
    assert_eq!(result["isError"], true, "{result:?}");
    let broken = start_task(&client, "beta__protocol_error_job", json!({})).await;
    let failed = wait_status(&client, &broken, TaskStatus::Failed).await;
    let TaskPayload::Failed { error } = &failed.payload else {
        panic!("{failed:?}")
    };
    assert_eq!(error["message"], "protocol_error_job broke down");
}

#[tokio::test]
async fn cancel_reaches_the_owning_server_and_unknown_ids_are_refused() {
    let servers = json!({"alpha": modern_demo(), "beta": modern_demo()});
    let (client, _dir) = client_of(servers, with_tasks()).await;
    wait_tools(&client, &["alpha__slow_compute", "beta__slow_compute"]).await;

    let long = start_task(
        &client,
        "beta__slow_compute",
        json!({"seconds": 600, "label": "long"}),
    )
    .await;
    let other = start_task(
        &client,
        "alpha__slow_compute",
        json!({"seconds": 600, "label": "other"}),
    )
    .await;
    client
        .peer()
        .cancel_task(CancelTaskParams::new(long.clone()))
        .await
        .unwrap();
    wait_status(&client, &long, TaskStatus::Cancelled).await;
    // Only that task: alpha's goes on.
    assert_eq!(get(&client, &other).await.status(), TaskStatus::Working);
    // Cancelling a finished task again is the same empty acknowledgement.
    client
        .peer()
        .cancel_task(CancelTaskParams::new(long.clone()))
        .await
        .unwrap();
    client
        .peer()
        .cancel_task(CancelTaskParams::new(other))
        .await
        .unwrap();

    // An id the proxy never handed out, and one naming no configured server: invalid params.
    for id in ["no-separator", "gamma__1234", "alpha__not-a-task"] {
        let error = client
            .peer()
            .get_task(GetTaskParams::new(id))
            .await
            .expect_err(id);
        assert_eq!(error_code(error), -32602, "{id}");
    }
    // A server's raw id (without the namespace) is not accepted either.
    let raw = long.strip_prefix("beta__").unwrap();
    let error = client
        .peer()
        .get_task(GetTaskParams::new(raw))
        .await
        .expect_err("raw id");
    assert_eq!(error_code(error), -32602);
}

#[tokio::test]
async fn input_then_task_composes_through_the_proxy() {
    let (client, _dir) = client_of(json!({"demo": modern_demo()}), with_tasks()).await;
    wait_tools(&client, &["demo__test_tool_with_task"]).await;
    // Round 1 asks for input (MRTR), round 2 becomes a task whose result has the answer.
    let first = client
        .peer()
        .call_tool_once(call("demo__test_tool_with_task", json!({})))
        .await
        .unwrap();
    let CallToolResponse::InputRequired(input) = first else {
        panic!("{first:?}")
    };
    let key = input.input_requests.unwrap().into_keys().next().unwrap();
    let answer = json!({"action": "accept", "content": {"name": "Alice"}});
    let mut retry = call("demo__test_tool_with_task", json!({}));
    retry = retry.with_input_responses(InputResponses::from([(key, answer)]));
    retry.request_state = input.request_state;
    let second = client.peer().call_tool_once(retry).await.unwrap();
    let CallToolResponse::Task(created) = second else {
        panic!("{second:?}")
    };
    let id = created.task.task_id;
    assert!(id.starts_with("demo__"), "{id}");
    let done = wait_status(&client, &id, TaskStatus::Completed).await;
    assert!(result_text(&done).contains("Alice"), "{done:?}");
}

#[tokio::test]
async fn without_the_extension_calls_stay_synchronous_and_task_methods_are_refused() {
    let mut capabilities = ClientCapabilities::default();
    capabilities.elicitation =
        Some(ElicitationCapability::new().with_form(FormElicitationCapability::new()));
    let (client, _dir) = client_of(json!({"demo": modern_demo()}), capabilities).await;
    wait_tools(&client, &["demo__slow_compute"]).await;
    // The server sees the client's own capabilities (not the proxy's): no task for it.
    let answer = client
        .peer()
        .call_tool_once(call(
            "demo__slow_compute",
            json!({"seconds": 0, "label": "sync"}),
        ))
        .await
        .unwrap();
    let CallToolResponse::Complete(result) = answer else {
        panic!("{answer:?}")
    };
    assert_eq!(text_of(&result), "computed sync after 0s");
    // A tool that needs tasks says which capability is missing.
    let error = client
        .peer()
        .call_tool_once(call("demo__failing_job", json!({})))
        .await
        .expect_err("failing_job needs tasks");
    let error = mcp_error(error);
    assert_eq!(error.code.0, -32021, "{error:?}");
    assert!(
        error.data.as_ref().unwrap()["requiredCapabilities"]["extensions"]
            .get(TASKS_EXTENSION_ID)
            .is_some(),
        "{error:?}"
    );
    let error = client
        .peer()
        .get_task(GetTaskParams::new("demo__anything"))
        .await
        .expect_err("tasks/get without the extension");
    assert_eq!(error_code(error), -32021);
}

#[tokio::test]
async fn the_extension_is_not_announced_for_legacy_connections() {
    let legacy_demo = json!({"command": demo_bin(), "protocol": "legacy"});
    let (client, _dir) = client_of(json!({"demo": legacy_demo}), with_tasks()).await;
    wait_tools(&client, &["demo__slow_compute"]).await;
    let discovered = client.peer().discover(Default::default()).await.unwrap();
    assert!(
        !discovered.capabilities.supports_tasks(),
        "{:?}",
        discovered.capabilities
    );
    let error = client
        .peer()
        .get_task(GetTaskParams::new("demo__anything"))
        .await
        .expect_err("no tasks without a modern server");
    assert_eq!(error_code(error), -32601);
}

#[tokio::test]
async fn a_modern_server_sees_what_the_modern_client_declared() {
    // Declares sampling only: MRTR asks for sampling only, and a tool needing elicitation is
    // refused with the capability it lacks, as it would be without the proxy in between.
    let mut capabilities = ClientCapabilities::default();
    capabilities.sampling = Some(Default::default());
    let (client, _dir) = client_of(json!({"demo": modern_demo()}), capabilities).await;
    wait_tools(&client, &["demo__test_input_required_result_capabilities"]).await;
    let asked = client
        .peer()
        .call_tool_once(call(
            "demo__test_input_required_result_capabilities",
            json!({}),
        ))
        .await
        .unwrap();
    let CallToolResponse::InputRequired(input) = asked else {
        panic!("{asked:?}")
    };
    let methods: Vec<String> = input
        .input_requests
        .unwrap()
        .values()
        .map(|request| serde_json::to_value(request).unwrap()["method"].to_string())
        .collect();
    assert_eq!(methods, ["\"sampling/createMessage\""]);
    let error = client
        .peer()
        .call_tool_once(call("demo__test_streaming_elicitation", json!({})))
        .await
        .expect_err("no elicitation declared");
    assert_eq!(error_code(error), -32021);
    let ok = client
        .peer()
        .call_tool_once(call("demo__test_missing_capability", json!({})))
        .await
        .unwrap();
    assert!(matches!(ok, CallToolResponse::Complete(_)), "{ok:?}");
}

#[tokio::test]
async fn tasks_work_for_a_modern_client_over_http() {
    // Over Streamable HTTP every tasks/* request carries `Mcp-Name: <task id>`, which the proxy
    // checks against the body before resolving the namespaced id.
    let dir = tempfile::tempdir().unwrap();
    let servers = json!({"alpha": modern_demo(), "beta": modern_demo()});
    let (mut child, _log, url) = spawn_http_proxy(&dir, servers, &[]).await;
    let lifecycle = ClientLifecycleMode::Discover {
        preferred_versions: vec![ProtocolVersion::V_2026_07_28],
    };
    let client = ModernClient {
        capabilities: with_tasks(),
    }
    .serve_with_lifecycle(
        rmcp::transport::StreamableHttpClientTransport::from_uri(url.as_str()),
        lifecycle,
    )
    .await
    .unwrap();
    wait_tools(&client, &["alpha__confirm_delete", "beta__slow_compute"]).await;

    let confirming = start_task(
        &client,
        "alpha__confirm_delete",
        json!({"filename": "over-http.txt"}),
    )
    .await;
    let long = start_task(
        &client,
        "beta__slow_compute",
        json!({"seconds": 600, "label": "http"}),
    )
    .await;
    wait_status(&client, &confirming, TaskStatus::InputRequired).await;
    let answer = json!({"action": "decline"});
    client
        .peer()
        .update_task(UpdateTaskParams::new(
            confirming.clone(),
            InputResponses::from([("confirm".to_owned(), answer)]),
        ))
        .await
        .unwrap();
    let done = wait_status(&client, &confirming, TaskStatus::Completed).await;
    assert_eq!(result_text(&done), "Kept over-http.txt");
    client
        .peer()
        .cancel_task(CancelTaskParams::new(long.clone()))
        .await
        .unwrap();
    wait_status(&client, &long, TaskStatus::Cancelled).await;
    let _ = child.kill().await;
}
