//! The test harness: builds a config in a temp dir, starts the real proxy binary as a child, and
//! connects a real rmcp client to its stdio. The client records every notification and answers
//! sampling, elicitation and roots requests so tests can check what was forwarded. Dropping a
//! [`Proxy`] (or a [`ProxyChild`]) ends the proxy with SIGTERM and waits for it, so the servers
//! it started end with it.

#![allow(
    dead_code,
    reason = "each test module uses a different part of the harness"
)]

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rmcp::model::*;
use rmcp::service::{NotificationContext, RequestContext, RunningService};
use rmcp::transport::TokioChildProcess;
use rmcp::{ClientHandler, ErrorData, RoleClient, ServiceExt};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt};
use tokio::sync::broadcast;

/// How long a test waits for something that should happen soon.
pub const WAIT: Duration = Duration::from_secs(20);

pub fn proxy_bin() -> &'static str {
    env!("CARGO_BIN_EXE_pluggedin-mcp-proxy")
}

pub fn demo_bin() -> &'static str {
    env!("CARGO_BIN_EXE_pluggedin-demo-server")
}

pub fn deps() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(".deps")
}

/// `@modelcontextprotocol/server-everything`, installed by `scripts/test-deps.sh`.
pub fn everything_js() -> PathBuf {
    let path =
        deps().join("npm/node_modules/@modelcontextprotocol/server-everything/dist/index.js");
    assert!(
        path.is_file(),
        "{} is missing: run scripts/test-deps.sh first",
        path.display()
    );
    path
}

/// `@modelcontextprotocol/server-filesystem`, installed by `scripts/test-deps.sh`.
pub fn filesystem_js() -> PathBuf {
    let path =
        deps().join("npm/node_modules/@modelcontextprotocol/server-filesystem/dist/index.js");
    assert!(
        path.is_file(),
        "{} is missing: run scripts/test-deps.sh first",
        path.display()
    );
    path
}

/// The official TypeScript SDK (`@modelcontextprotocol/sdk`), installed by
/// `scripts/test-deps.sh` for the client scripts in `tests/clients/`.
pub fn ts_sdk() -> PathBuf {
    let path = deps().join("npm/node_modules/@modelcontextprotocol/sdk/package.json");
    assert!(
        path.is_file(),
        "{} is missing: run scripts/test-deps.sh first",
        path.display()
    );
    path
}

/// `mcp-server-time` from PyPI, installed by `scripts/test-deps.sh`.
pub fn time_server() -> PathBuf {
    let path = deps().join("venv/bin/mcp-server-time");
    assert!(
        path.is_file(),
        "{} is missing: run scripts/test-deps.sh first",
        path.display()
    );
    path
}

/// The Python of the test venv, which has the official MCP Python SDK (`mcp`).
pub fn venv_python() -> PathBuf {
    let path = deps().join("venv/bin/python");
    assert!(
        path.is_file(),
        "{} is missing: run scripts/test-deps.sh first",
        path.display()
    );
    path
}

/// Where the client scripts live (`tests/clients/`).
pub fn clients_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/clients")
}

/// A stdio demo server entry for the config.
pub fn demo() -> Value {
    json!({"command": demo_bin()})
}

pub fn demo_with(args: &[&str]) -> Value {
    json!({"command": demo_bin(), "args": args})
}

pub fn everything_stdio() -> Value {
    json!({"command": "node", "args": [everything_js(), "stdio"]})
}

pub fn time_stdio() -> Value {
    json!({"command": time_server()})
}

/// server-filesystem over stdio, started without directory arguments: its allowed directories
/// are the roots it is given.
pub fn filesystem_stdio() -> Value {
    json!({"command": "node", "args": [filesystem_js()]})
}

/// A root for a directory, as a client lists it.
pub fn root_of(dir: &Path) -> Root {
    Root::new(url::Url::from_file_path(dir).unwrap().as_str())
}

/// Something the proxy sent the client unasked.
#[derive(Debug, Clone)]
pub enum Event {
    Progress(ProgressNotificationParam),
    Log(LoggingMessageNotificationParam),
    ResourceUpdated(String),
    ToolsChanged,
    PromptsChanged,
    ResourcesChanged,
}

/// The test client: records notifications and answers server-to-client requests.
#[derive(Clone)]
pub struct TestClient {
    events: broadcast::Sender<Event>,
    pub requests: Arc<Mutex<Vec<String>>>,
    /// Put in sampling answers, so a test can tell which client answered.
    pub label: String,
    /// What `roots/list` answers.
    pub roots: Arc<Mutex<Vec<Root>>>,
    /// Whether it announces the `roots` capability.
    pub roots_capability: bool,
}

impl TestClient {
    pub fn new() -> TestClient {
        TestClient {
            events: broadcast::channel(4096).0,
            requests: Arc::default(),
            label: "test client".into(),
            roots: Arc::new(Mutex::new(vec![
                Root::new("file:///tmp/test-root").with_name("test root"),
            ])),
            roots_capability: true,
        }
    }

    /// The notifications this client receives from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<Event> {
        self.events.subscribe()
    }

    fn emit(&self, event: Event) {
        let _ = self.events.send(event);
    }
}

impl ClientHandler for TestClient {
    fn get_info(&self) -> ClientInfo {
        let mut capabilities = ClientCapabilities::default();
        capabilities.sampling = Some(Default::default());
        capabilities.elicitation =
            Some(ElicitationCapability::new().with_form(FormElicitationCapability::new()));
        if self.roots_capability {
            let mut roots = RootsCapabilities::default();
            roots.list_changed = Some(true);
            capabilities.roots = Some(roots);
        }
        ClientInfo::new(capabilities, Implementation::new("proxy-tests", "1.0.0"))
    }

    async fn create_message(
        &self,
        params: CreateMessageRequestParams,
        _context: RequestContext<RoleClient>,
    ) -> Result<CreateMessageResult, ErrorData> {
        self.requests
            .lock()
            .unwrap()
            .push("sampling/createMessage".into());
        let _ = params;
        Ok(CreateMessageResult::new(
            SamplingMessage::assistant_text(format!("sampled by the test client ({})", self.label)),
            "test-model".into(),
        )
        .with_stop_reason(CreateMessageResult::STOP_REASON_END_TURN))
    }

    async fn create_elicitation(
        &self,
        _params: ElicitRequestParams,
        _context: RequestContext<RoleClient>,
    ) -> Result<ElicitResult, ErrorData> {
        self.requests
            .lock()
            .unwrap()
            .push("elicitation/create".into());
        Ok(
            ElicitResult::new(ElicitationAction::Accept).with_content(json!({
                "username": "tester", "email": "tester@example.com", "name": "Tester", "age": 30,
                "confirmed": true, "answer": "yes"
            })),
        )
    }

    async fn list_roots(
        &self,
        _context: RequestContext<RoleClient>,
    ) -> Result<ListRootsResult, ErrorData> {
        self.requests.lock().unwrap().push("roots/list".into());
        Ok(ListRootsResult::new(self.roots.lock().unwrap().clone()))
    }

    async fn on_progress(
        &self,
        params: ProgressNotificationParam,
        _c: NotificationContext<RoleClient>,
    ) {
        self.emit(Event::Progress(params));
    }

    async fn on_logging_message(
        &self,
        params: LoggingMessageNotificationParam,
        _c: NotificationContext<RoleClient>,
    ) {
        self.emit(Event::Log(params));
    }

    async fn on_resource_updated(
        &self,
        params: ResourceUpdatedNotificationParam,
        _c: NotificationContext<RoleClient>,
    ) {
        self.emit(Event::ResourceUpdated(params.uri));
    }

    async fn on_tool_list_changed(&self, _c: NotificationContext<RoleClient>) {
        self.emit(Event::ToolsChanged);
    }

    async fn on_prompt_list_changed(&self, _c: NotificationContext<RoleClient>) {
        self.emit(Event::PromptsChanged);
    }

    async fn on_resource_list_changed(&self, _c: NotificationContext<RoleClient>) {
        self.emit(Event::ResourcesChanged);
    }
}

/// Builds a proxy run: its config and flags.
pub struct ProxyBuilder {
    servers: serde_json::Map<String, Value>,
    top_level: serde_json::Map<String, Value>,
    args: Vec<String>,
    env: Vec<(String, String)>,
    dir: Option<Arc<tempfile::TempDir>>,
    /// The client's roots; `Some(None)`: no `roots` capability.
    roots: Option<Option<Vec<Root>>>,
    config_file: Option<PathBuf>,
    current_dir: Option<PathBuf>,
}

pub fn proxy() -> ProxyBuilder {
    ProxyBuilder {
        servers: serde_json::Map::new(),
        top_level: serde_json::Map::new(),
        args: Vec::new(),
        env: Vec::new(),
        dir: None,
        roots: None,
        config_file: None,
        current_dir: None,
    }
}

impl ProxyBuilder {
    pub fn server(mut self, name: &str, config: Value) -> Self {
        self.servers.insert(name.to_owned(), config);
        self
    }

    pub fn arg(mut self, arg: &str) -> Self {
        self.args.push(arg.to_owned());
        self
    }

    /// Adds a top-level key to the config file besides `mcpServers` (say, `smtp`).
    pub fn config_key(mut self, key: &str, value: Value) -> Self {
        self.top_level.insert(key.to_owned(), value);
        self
    }

    /// Runs in another proxy's directory: same config file name and data dir (a restart, or a
    /// second process on one store).
    pub fn in_dir_of(self, other: &Proxy) -> Self {
        self.in_dir_of_path(other.dir.clone())
    }

    /// Runs in a directory kept from an earlier proxy.
    pub fn in_dir_of_path(mut self, dir: Arc<tempfile::TempDir>) -> Self {
        self.dir = Some(dir);
        self
    }

    /// The client's roots (by default one, `file:///tmp/test-root`).
    pub fn client_roots(mut self, roots: Vec<Root>) -> Self {
        self.roots = Some(Some(roots));
        self
    }

    /// A client that does not announce the `roots` capability.
    pub fn client_without_roots(mut self) -> Self {
        self.roots = Some(None);
        self
    }

    /// Serves an existing config file (say, the bundled example) instead of writing one; the
    /// data dir stays in the proxy's temp dir.
    pub fn config_file(mut self, path: &Path) -> Self {
        self.config_file = Some(path.to_owned());
        self
    }

    /// The proxy's working directory (where servers without a `cwd` start).
    pub fn current_dir(mut self, dir: &Path) -> Self {
        self.current_dir = Some(dir.to_owned());
        self
    }

    /// Sets an environment variable for the proxy process.
    pub fn env(mut self, key: &str, value: &str) -> Self {
        self.env.push((key.to_owned(), value.to_owned()));
        self
    }

    /// Starts the proxy and completes the client's `initialize`.
    pub async fn start(self) -> Proxy {
        self.start_after(None).await
    }

    /// Starts the proxy, waits until its log says `needle` (say, that servers connected), and only
    /// then initializes.
    pub async fn start_after(self, needle: Option<&str>) -> Proxy {
        self.start_after_all(needle.as_slice()).await
    }

    /// Starts the proxy, waits until its log has said every one of `needles`, and only then
    /// initializes.
    pub async fn start_after_all(self, needles: &[&str]) -> Proxy {
        let dir = self
            .dir
            .unwrap_or_else(|| Arc::new(tempfile::tempdir().unwrap()));
        let config_path = match self.config_file {
            Some(path) => path,
            None => {
                let path = dir.path().join("mcp.json");
                let mut config = self.top_level;
                config.insert("mcpServers".into(), Value::Object(self.servers));
                std::fs::write(&path, serde_json::to_vec_pretty(&config).unwrap()).unwrap();
                path
            }
        };
        let mut command = tokio::process::Command::new(proxy_bin());
        command
            .arg("--config")
            .arg(&config_path)
            .arg("--data-dir")
            .arg(dir.path().join("data"))
            .args(&self.args)
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .env("RUST_LOG", "info,pluggedin_mcp_proxy=debug");
        if let Some(dir) = &self.current_dir {
            command.current_dir(dir);
        }
        let (transport, stderr) = TokioChildProcess::builder(command)
            .stderr(Stdio::piped())
            .spawn()
            .expect("the proxy binary starts");
        let pid = transport.id().expect("the proxy has a pid");
        let log = Log::capture(stderr.expect("stderr is piped"));
        for needle in needles {
            log.wait_for(needle).await;
        }
        let mut client = TestClient::new();
        match self.roots {
            Some(Some(roots)) => *client.roots.lock().unwrap() = roots,
            Some(None) => client.roots_capability = false,
            None => {}
        }
        let events = client.events.subscribe();
        let requests = client.requests.clone();
        let roots = client.roots.clone();
        let service = tokio::time::timeout(WAIT, client.serve(transport))
            .await
            .expect("initialize within the wait")
            .expect("the proxy initializes");
        Proxy {
            service,
            events,
            requests,
            roots,
            pid,
            log,
            config_path,
            dir,
        }
    }
}

/// The proxy's stderr, kept for assertions and printed when a test fails.
#[derive(Clone, Default)]
pub struct Log(Arc<Mutex<String>>);

impl Log {
    pub fn capture(stderr: tokio::process::ChildStderr) -> Log {
        let log = Log::default();
        let sink = log.clone();
        tokio::spawn(async move {
            let mut lines = tokio::io::BufReader::new(stderr).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                let mut text = sink.0.lock().unwrap();
                text.push_str(&line);
                text.push('\n');
            }
        });
        log
    }

    pub fn text(&self) -> String {
        self.0.lock().unwrap().clone()
    }

    /// Waits until the log contains `needle`.
    pub async fn wait_for(&self, needle: &str) {
        let found = tokio::time::timeout(WAIT, async {
            while !self.text().contains(needle) {
                tokio::time::sleep(Duration::from_millis(25)).await;
            }
        })
        .await;
        assert!(
            found.is_ok(),
            "the log never said {needle:?}:\n{}",
            self.text()
        );
    }
}

pub struct Proxy {
    pub service: RunningService<RoleClient, TestClient>,
    pub events: broadcast::Receiver<Event>,
    pub requests: Arc<Mutex<Vec<String>>>,
    /// What the client answers to `roots/list`.
    pub roots: Arc<Mutex<Vec<Root>>>,
    pub pid: u32,
    pub log: Log,
    pub config_path: PathBuf,
    pub dir: Arc<tempfile::TempDir>,
}

impl Drop for Proxy {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("--- proxy stderr ---\n{}", self.log.text());
        }
        stop(self.pid);
    }
}

/// Ends a proxy (or a server) the way a user does — SIGTERM, which a proxy answers by ending
/// every server it started, each with its whole process group — and waits until it has exited.
/// SIGKILL (what `kill_on_drop` sends) cannot be answered: the proxy's servers would only see
/// their stdin close, and one that does not exit then (server-everything once it asked for the
/// client's roots, or with a task in progress) would outlive the test. Should the process not
/// exit within [`WAIT`], its children's process groups and the process are killed.
pub fn stop(pid: u32) {
    if !alive(pid) {
        return;
    }
    let servers = children(pid);
    let signal = |signal: &str, target: String| {
        let _ = std::process::Command::new("kill")
            .args([signal, "--", &target])
            .stderr(Stdio::null())
            .status();
    };
    signal("-TERM", pid.to_string());
    let deadline = std::time::Instant::now() + WAIT;
    while alive(pid) && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    if alive(pid) {
        for server in servers {
            signal("-KILL", format!("-{server}"));
        }
        signal("-KILL", pid.to_string());
    }
}

/// A proxy process started by a test, ended with [`stop`] when dropped.
pub struct ProxyChild(pub tokio::process::Child);

impl ProxyChild {
    pub fn spawn(command: &mut tokio::process::Command) -> ProxyChild {
        ProxyChild(
            command
                .kill_on_drop(true)
                .spawn()
                .expect("the proxy starts"),
        )
    }
}

impl std::ops::Deref for ProxyChild {
    type Target = tokio::process::Child;
    fn deref(&self) -> &tokio::process::Child {
        &self.0
    }
}

impl std::ops::DerefMut for ProxyChild {
    fn deref_mut(&mut self) -> &mut tokio::process::Child {
        &mut self.0
    }
}

impl Drop for ProxyChild {
    fn drop(&mut self) {
        if let Some(pid) = self.0.id() {
            stop(pid);
        }
    }
}

impl Proxy {
    pub fn peer(&self) -> &rmcp::service::Peer<RoleClient> {
        self.service.peer()
    }

    /// Changes the client's roots and says so (`notifications/roots/list_changed`).
    pub async fn change_roots(&self, roots: Vec<Root>) {
        *self.roots.lock().unwrap() = roots;
        self.peer().notify_roots_list_changed().await.unwrap();
    }

    /// Calls `tool` until its text satisfies `check`, within [`WAIT`]; returns that text.
    pub async fn call_until(
        &self,
        tool: &str,
        arguments: Value,
        check: impl Fn(&str) -> bool,
    ) -> String {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let text = self.call_text(tool, arguments.clone()).await;
            if check(&text) {
                return text;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "{tool} never gave the expected answer; last: {text}\n{}",
                self.log.text()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// A server's UUID, as the store keeps it.
    pub async fn server_uuid(&self, server: &str) -> String {
        use pluggedin_mcp_proxy::control::ControlPlane;
        let store =
            pluggedin_mcp_proxy::control::local::LocalStore::open(Some(&self.data_dir())).unwrap();
        store.server_uuid(server).await.unwrap()
    }

    /// Runs the proxy binary with a (management) command on this proxy's config and data dir.
    pub fn cli(&self, args: &[&str]) -> std::process::Output {
        run_cli(&self.config_path, &self.data_dir(), args)
    }

    /// Like [`Proxy::cli`], for a command that must succeed; returns its stdout.
    pub fn cli_ok(&self, args: &[&str]) -> String {
        let output = self.cli(args);
        assert!(
            output.status.success(),
            "{args:?} failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8_lossy(&output.stdout).into_owned()
    }

    /// Ends the proxy process with SIGKILL, as a crash would, and waits until it is gone.
    pub async fn kill9(&self) {
        let status = std::process::Command::new("kill")
            .args(["-9", &self.pid.to_string()])
            .status()
            .unwrap();
        assert!(status.success());
        wait_gone(&[self.pid]).await;
    }

    /// Calls a tool that must answer with a tool error (`isError: true`); returns its text.
    pub async fn call_error(&self, tool: &str, arguments: Value) -> String {
        let result = self
            .call(tool, arguments)
            .await
            .unwrap_or_else(|e| panic!("{tool} failed at the protocol level: {e}"));
        assert_eq!(
            result.is_error,
            Some(true),
            "{tool} should have failed: {}",
            text_of(&result)
        );
        text_of(&result)
    }

    pub async fn tool_names(&self) -> Vec<String> {
        self.peer()
            .list_all_tools()
            .await
            .unwrap()
            .into_iter()
            .map(|tool| tool.name.to_string())
            .collect()
    }

    /// Waits until the catalog has `tool` (servers join in the background).
    pub async fn wait_for_tool(&self, tool: &str) {
        let found = tokio::time::timeout(WAIT, async {
            loop {
                if self.tool_names().await.iter().any(|name| name == tool) {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        })
        .await;
        assert!(
            found.is_ok(),
            "tool {tool} never appeared:\n{}",
            self.log.text()
        );
    }

    pub async fn call(
        &self,
        tool: &str,
        arguments: Value,
    ) -> Result<CallToolResult, rmcp::service::ServiceError> {
        let Value::Object(arguments) = arguments else {
            panic!("arguments must be an object")
        };
        self.peer()
            .call_tool(CallToolRequestParams::new(tool.to_owned()).with_arguments(arguments))
            .await
    }

    /// Calls a tool that must succeed and returns its first text.
    pub async fn call_text(&self, tool: &str, arguments: Value) -> String {
        let result = self
            .call(tool, arguments)
            .await
            .unwrap_or_else(|e| panic!("{tool} failed: {e}"));
        text_of(&result)
    }

    /// Waits for the next event matching `pick`.
    pub async fn next_event<T>(&mut self, mut pick: impl FnMut(&Event) -> Option<T>) -> T {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            match tokio::time::timeout_at(deadline, self.events.recv()).await {
                Ok(Ok(event)) => {
                    if let Some(found) = pick(&event) {
                        return found;
                    }
                }
                Ok(Err(broadcast::error::RecvError::Lagged(_))) => {}
                Ok(Err(error)) => panic!("event channel closed: {error}"),
                Err(_) => panic!("no matching event within {WAIT:?}:\n{}", self.log.text()),
            }
        }
    }

    /// Calls `tool` (a demo server's `touch_watched_resource`) until a `resources/updated` for
    /// the watched resource arrives; returns its URI. A modern demo server (rmcp) acknowledges a
    /// `subscriptions/listen` stream before it registers it, so a change in that moment reaches
    /// nobody: touching again is what a test can do about that.
    pub async fn touch_until_updated(&mut self, tool: &str) -> String {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            self.call(tool, json!({}))
                .await
                .unwrap_or_else(|error| panic!("{tool} failed: {error}"));
            let update = tokio::time::timeout(
                Duration::from_millis(500),
                self.next_event(|event| match event {
                    Event::ResourceUpdated(uri) => Some(uri.clone()),
                    _ => None,
                }),
            )
            .await;
            match update {
                Ok(uri) => return uri,
                Err(_) if tokio::time::Instant::now() < deadline => {}
                Err(_) => panic!("no resources/updated within {WAIT:?}:\n{}", self.log.text()),
            }
        }
    }

    /// Waits for `notifications/tools/list_changed` after which the tool list satisfies `check`
    /// (earlier notifications, say from servers connecting, are skipped).
    pub async fn tools_changed_until(&mut self, check: impl Fn(&[String]) -> bool) -> Vec<String> {
        loop {
            self.next_event(|event| matches!(event, Event::ToolsChanged).then_some(()))
                .await;
            let names = self.tool_names().await;
            if check(&names) {
                return names;
            }
        }
    }

    /// Rewrites the config file (hot reload).
    pub fn rewrite_config(&self, servers: Value) {
        let temp = self.config_path.with_extension("tmp");
        std::fs::write(
            &temp,
            serde_json::to_vec_pretty(&json!({"mcpServers": servers})).unwrap(),
        )
        .unwrap();
        std::fs::rename(&temp, &self.config_path).unwrap();
    }
}

pub fn text_of(result: &CallToolResult) -> String {
    result
        .content
        .iter()
        .find_map(|content| content.as_text().map(|text| text.text.clone()))
        .unwrap_or_default()
}

/// The error a failed request carries.
pub fn mcp_error(error: rmcp::service::ServiceError) -> ErrorData {
    match error {
        rmcp::service::ServiceError::McpError(data) => data,
        other => panic!("expected a JSON-RPC error, got {other}"),
    }
}

/// Whether a process is alive (not a zombie).
pub fn alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => !stat
            .rsplit(')')
            .next()
            .is_some_and(|rest| rest.trim_start().starts_with('Z')),
        Err(_) => false,
    }
}

/// Waits until none of `pids` is alive.
pub async fn wait_gone(pids: &[u32]) {
    let gone = tokio::time::timeout(WAIT, async {
        while pids.iter().any(|pid| alive(*pid)) {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await;
    let alive: Vec<_> = pids.iter().filter(|pid| alive(**pid)).collect();
    assert!(gone.is_ok(), "processes still alive: {alive:?}");
}

/// The direct children of a process (children of any of its threads), its reaper
/// (`downstream::reaper`) left out.
pub fn children(pid: u32) -> Vec<u32> {
    let mut children = all_children(pid);
    children.retain(|child| !is_reaper(*child));
    children
}

/// Whether a process is a proxy's reaper.
pub fn is_reaper(pid: u32) -> bool {
    std::fs::read(format!("/proc/{pid}/cmdline"))
        .is_ok_and(|cmdline| cmdline.ends_with(b"__pluggedin-reaper\0"))
}

/// Every process below `pid` (children, their children, …), its reaper left out, parents before
/// their children.
pub fn descendants(pid: u32) -> Vec<u32> {
    let mut found = Vec::new();
    let mut next = children(pid);
    while let Some(child) = next.pop() {
        found.push(child);
        next.extend(all_children(child));
    }
    found
}

/// The direct children of a process, as the kernel lists them.
pub fn all_children(pid: u32) -> Vec<u32> {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return Vec::new();
    };
    let mut children: Vec<u32> = tasks
        .flatten()
        .flat_map(|task| {
            std::fs::read_to_string(task.path().join("children"))
                .unwrap_or_default()
                .split_whitespace()
                .filter_map(|pid| pid.parse().ok())
                .collect::<Vec<u32>>()
        })
        .collect();
    children.sort_unstable();
    children
}

/// The URL in the first "listening on URL" line of `text`: what the proxy, the demo server, the
/// SMTP sink and a Node server under [`everything_over`] print once they listen.
pub fn listening_url_in(text: &str) -> Option<String> {
    text.lines()
        .filter_map(|line| line.split_once("listening on ").map(|(_, rest)| rest))
        .filter_map(|rest| rest.split_whitespace().next())
        .find(|url| url.contains("://"))
        .map(str::to_owned)
}

/// Waits for a server's "listening on URL" line and returns the URL. Servers a test starts bind
/// port 0 themselves and say here which port they got: a port picked for them beforehand could be
/// taken by another process before they bind it.
pub async fn listening_url(log: &Log) -> String {
    let found = tokio::time::timeout(WAIT, async {
        loop {
            if let Some(url) = listening_url_in(&log.text()) {
                return url;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    })
    .await;
    found.unwrap_or_else(|_| panic!("no \"listening on URL\" line:\n{}", log.text()))
}

/// server-everything over `transport` (`sse` or `streamableHttp`) on a port it binds itself; its
/// base URL (`http://127.0.0.1:PORT`). It prints the port it was given, not the one it bound, so
/// `tests/servers/announce_port.cjs`, preloaded, prints that.
pub async fn everything_over(transport: &str) -> (Background, String) {
    let announce = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/servers/announce_port.cjs");
    let js = everything_js();
    let server = Background::start(
        "node",
        &[
            "--require",
            announce.to_str().unwrap(),
            js.to_str().unwrap(),
            transport,
        ],
        &[("PORT", "0")],
        "",
    )
    .await;
    let url = listening_url(&server.log).await;
    (server, url)
}

/// Starts a background server process, ended with [`stop`] on drop.
pub struct Background {
    pub child: tokio::process::Child,
    pub log: Log,
}

impl Drop for Background {
    fn drop(&mut self) {
        if let Some(pid) = self.child.id() {
            stop(pid);
        }
    }
}

impl Background {
    pub async fn start(
        program: &str,
        args: &[&str],
        env: &[(&str, &str)],
        ready: &str,
    ) -> Background {
        let mut child = tokio::process::Command::new(program)
            .args(args)
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {program}: {e}"));
        let log = Log::capture(child.stderr.take().unwrap());
        log.wait_for(ready).await;
        Background { child, log }
    }
}

/// The value after `prefix` on the first line (trimmed) that starts with it.
pub fn line_after(text: &str, prefix: &str) -> String {
    text.lines()
        .find_map(|line| line.trim().strip_prefix(prefix))
        .unwrap_or_else(|| panic!("no {prefix:?} line in {text}"))
        .trim()
        .to_owned()
}

/// A one-page PDF showing `lines` with a standard font, its content stream Flate-compressed
/// (as most writers do), for the document library's ingest tests.
pub fn simple_pdf(lines: &[&str]) -> Vec<u8> {
    let mut content = String::from("BT /F1 12 Tf 72 720 Td\n");
    for line in lines {
        content.push_str(&format!("({line}) Tj 0 -14 Td\n"));
    }
    content.push_str("ET\n");
    let data = miniz_oxide::deflate::compress_to_vec_zlib(content.as_bytes(), 6);
    let mut pdf = b"%PDF-1.4\n1 0 obj << /Type /Catalog /Pages 2 0 R >> endobj\n\
        2 0 obj << /Type /Pages /Kids [3 0 R] /Count 1 >> endobj\n\
        3 0 obj << /Type /Page /Parent 2 0 R /Contents 4 0 R >> endobj\n"
        .to_vec();
    pdf.extend_from_slice(
        format!(
            "4 0 obj << /Length {} /Filter /FlateDecode >>\nstream\n",
            data.len()
        )
        .as_bytes(),
    );
    pdf.extend_from_slice(&data);
    pdf.extend_from_slice(b"\nendstream\nendobj\ntrailer << /Root 1 0 R >>\n%%EOF\n");
    pdf
}

/// The JSON-RPC answer (result or error) in an HTTP response body, JSON or SSE.
pub async fn message_of(response: reqwest::Response) -> Value {
    let text = response.text().await.unwrap();
    if let Ok(value) = serde_json::from_str(&text) {
        return value;
    }
    text.lines()
        .filter_map(|line| line.strip_prefix("data:"))
        .filter_map(|data| serde_json::from_str::<Value>(data.trim()).ok())
        .find(|message| message.get("result").is_some() || message.get("error").is_some())
        .unwrap_or_else(|| panic!("no JSON-RPC response in {text:?}"))
}

/// A POST of `body` to an MCP endpoint as a 2025-11-25 client sends it (JSON, accepting JSON and
/// SSE), in `session` when given.
pub fn post_mcp(url: &str, session: Option<&str>, body: Value) -> reqwest::RequestBuilder {
    let mut request = reqwest::Client::new()
        .post(url)
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .header("mcp-protocol-version", "2025-11-25")
        .json(&body);
    if let Some(session) = session {
        request = request.header("mcp-session-id", session);
    }
    request
}

/// Opens a 2025-11-25 session at `url` for a client with `capabilities` (`initialize`, then
/// `notifications/initialized`); its id.
pub async fn initialized_session(url: &str, capabilities: Value) -> String {
    let initialize = json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-11-25", "capabilities": capabilities,
        "clientInfo": {"name": "raw", "version": "1"}}});
    let response = post_mcp(url, None, initialize).send().await.unwrap();
    assert_eq!(response.status(), 200);
    let session = response.headers()["mcp-session-id"]
        .to_str()
        .unwrap()
        .to_owned();
    let _ = response.text().await;
    let initialized = json!({"jsonrpc": "2.0", "method": "notifications/initialized"});
    let response = post_mcp(url, Some(&session), initialized)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 202);
    session
}

/// Asserts that `message` is a JSON-RPC error with `code` whose message contains `text`.
pub fn assert_rpc_error(message: &Value, code: i64, text: &str) {
    assert_eq!(message["error"]["code"], code, "{message}");
    assert!(message.get("result").is_none(), "{message}");
    assert!(
        message["error"]["message"]
            .as_str()
            .is_some_and(|message| message.contains(text)),
        "{message}"
    );
}

/// The proxy in Streamable HTTP mode on a port it picks, serving `servers` (an `mcpServers` object)
/// with its config and data in `dir`, rate limits off unless `args` set them, plus `args`;
/// returned once it listens, with its log and its `/mcp` URL.
pub async fn spawn_http_proxy(
    dir: &tempfile::TempDir,
    servers: Value,
    args: &[&str],
) -> (ProxyChild, Log, String) {
    spawn_http_proxy_with_config(dir, json!({ "mcpServers": servers }), args).await
}

/// [`spawn_http_proxy`] with a whole config file (`mcpServers` and the rest) rather than its
/// servers alone; the file is `mcp.json` in `dir`, the data dir `dir/data`.
pub async fn spawn_http_proxy_with_config(
    dir: &tempfile::TempDir,
    file: Value,
    args: &[&str],
) -> (ProxyChild, Log, String) {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let config = dir.path().join("mcp.json");
    std::fs::write(&config, file.to_string()).unwrap();
    // No rate limits unless the test sets them.
    let limits: &[&str] = if args.iter().any(|arg| arg.starts_with("--rate-limit")) {
        &[]
    } else {
        &["--rate-limit-tools", "0", "--rate-limit-requests", "0"]
    };
    let mut child = ProxyChild::spawn(
        tokio::process::Command::new(proxy_bin())
            .args(["--transport", "streamable-http", "--port", "0"])
            .args(limits)
            .args(args)
            .arg("--config")
            .arg(&config)
            .arg("--data-dir")
            .arg(dir.path().join("data"))
            .env_remove("PLUGGEDIN_API_KEY")
            .env("RUST_LOG", "info,pluggedin_mcp_proxy=debug")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped()),
    );
    let log = Log::capture(child.stderr.take().unwrap());
    let url = listening_url(&log).await;
    (child, log, url)
}

/// The JSON-RPC messages of an SSE response, as they arrive.
pub fn sse_messages(response: reqwest::Response) -> tokio::sync::mpsc::UnboundedReceiver<Value> {
    let (sender, receiver) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        let mut body = response.bytes_stream();
        let mut pending = String::new();
        while let Some(Ok(chunk)) = futures::StreamExt::next(&mut body).await {
            pending.push_str(&String::from_utf8_lossy(&chunk));
            while let Some(end) = pending.find("\n\n") {
                let event: String = pending.drain(..end + 2).collect();
                for data in event.lines().filter_map(|line| line.strip_prefix("data:")) {
                    if let Ok(message) = serde_json::from_str::<Value>(data.trim())
                        && sender.send(message).is_err()
                    {
                        return;
                    }
                }
            }
        }
    });
    receiver
}

/// A stdio client speaking raw newline-delimited JSON to the proxy, to see exactly what comes
/// back.
pub struct RawStdio {
    pub child: ProxyChild,
    stdin: tokio::process::ChildStdin,
    stdout: tokio::io::Lines<tokio::io::BufReader<tokio::process::ChildStdout>>,
    _dir: tempfile::TempDir,
}

impl RawStdio {
    /// The proxy with the demo server.
    pub async fn start() -> RawStdio {
        RawStdio::start_with(json!({"demo": demo()})).await
    }

    /// The proxy with `servers` (an `mcpServers` object).
    pub async fn start_with(servers: Value) -> RawStdio {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("mcp.json");
        std::fs::write(&config, json!({"mcpServers": servers}).to_string()).unwrap();
        let mut child = ProxyChild::spawn(
            tokio::process::Command::new(proxy_bin())
                .arg("--config")
                .arg(&config)
                .arg("--data-dir")
                .arg(dir.path().join("data"))
                .stdin(std::process::Stdio::piped())
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::null()),
        );
        let stdin = child.stdin.take().unwrap();
        let stdout = tokio::io::BufReader::new(child.stdout.take().unwrap()).lines();
        RawStdio {
            child,
            stdin,
            stdout,
            _dir: dir,
        }
    }

    /// Writes raw bytes, as a broken or hostile client might.
    pub async fn send_bytes(&mut self, bytes: &[u8]) {
        self.stdin.write_all(bytes).await.unwrap();
        self.stdin.flush().await.unwrap();
    }

    pub async fn send(&mut self, line: &str) {
        self.stdin.write_all(line.as_bytes()).await.unwrap();
        self.stdin.write_all(b"\n").await.unwrap();
        self.stdin.flush().await.unwrap();
    }

    /// The next message on stdout, which must be JSON.
    pub async fn receive(&mut self) -> Value {
        let line = tokio::time::timeout(WAIT, self.stdout.next_line())
            .await
            .expect("an answer within the wait")
            .unwrap()
            .expect("stdout open");
        serde_json::from_str(&line)
            .unwrap_or_else(|e| panic!("stdout carried a non-JSON line {line:?}: {e}"))
    }

    /// The line answering request `id`, as the proxy wrote it, skipping notifications.
    pub async fn answer_line(&mut self, id: Value) -> String {
        loop {
            let line = tokio::time::timeout(WAIT, self.stdout.next_line())
                .await
                .expect("an answer within the wait")
                .unwrap()
                .expect("stdout open");
            let message: Value = serde_json::from_str(&line)
                .unwrap_or_else(|e| panic!("stdout carried a non-JSON line {line:?}: {e}"));
            if message.get("id") == Some(&id) && message.get("method").is_none() {
                return line;
            }
        }
    }

    /// The answer to request `id`, skipping notifications.
    pub async fn answer(&mut self, id: Value) -> Value {
        let line = self.answer_line(id).await;
        serde_json::from_str(&line).expect("checked by answer_line")
    }

    pub async fn initialize(&mut self) {
        self.send(r#"{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"raw","version":"1"}}}"#).await;
        let answer = self.answer(json!(0)).await;
        assert_eq!(
            answer["result"]["serverInfo"]["name"], "PluggedinMCP",
            "{answer}"
        );
        self.send(r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#)
            .await;
    }
}

/// The proxy's command line run once with `config` and `data_dir` (a management command), in
/// local mode whatever the environment says.
pub fn run_cli(
    config: &std::path::Path,
    data_dir: &std::path::Path,
    args: &[&str],
) -> std::process::Output {
    std::process::Command::new(proxy_bin())
        .arg("--config")
        .arg(config)
        .arg("--data-dir")
        .arg(data_dir)
        .args(args)
        .env_remove("PLUGGEDIN_API_KEY")
        .output()
        .unwrap()
}
