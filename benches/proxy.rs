//! The benchmark suite: the proxy against the physical floors and against a peer proxy, in one
//! run, side by side. It starts the real binaries (`CARGO_BIN_EXE_*`) as separate processes and
//! speaks raw JSON-RPC to them — newline-delimited over stdio, `reqwest` over Streamable HTTP — so
//! the client is the same thin loop for every target and its cost cancels out of the ratios. CPU
//! time and memory are read from `/proc/<pid>` of the measured process alone, never its children.
//!
//! The floors: the demo server called directly (no hop at all); over stdio, a byte relay in C
//! (`benches/relay.c`, compiled at start-up: one process, `poll(2)`, no parsing), the least one
//! extra process hop costs; over HTTP, HAProxy in front of the demo server's own HTTP, the least
//! one HTTP hop costs. HTTP throughput is driven by wrk with `benches/calls.lua`, one wrk thread,
//! over sessions the suite opens. The fleet scenario puts 1, 2 and 3 replicas on one PostgreSQL
//! database (a cluster of the run's own) behind HAProxy in round robin, beside one proxy alone.
//!
//! `cargo bench --bench proxy` runs everything and prints markdown tables for BENCHMARKS.md on
//! stdout (progress goes to stderr); `-- --quick` runs a few iterations of each scenario only to
//! keep the suite working (CI). Nothing here is a pass/fail threshold: the targets are printed as
//! met or not met. A missing wrk or HAProxy fails the HTTP and fleet scenarios, a missing
//! PostgreSQL the fleet scenario (`scripts/bench-deps.sh` installs them); the peer is optional
//! unless `--require-peer` is given.

// A benchmark is a command-line report: stdout carries the tables, stderr the progress.
#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::{
    fmt::Write as _,
    fs::File,
    path::{Path, PathBuf},
    process::Stdio,
    sync::Arc,
    time::{Duration, Instant},
};

use anyhow::{Context as _, Result, anyhow, bail};
use serde_json::{Value, json};
use tokio::{
    io::{AsyncBufReadExt, AsyncWriteExt, BufReader, Lines},
    process::{Child, ChildStdin, ChildStdout, Command},
    sync::Barrier,
};

const PROXY: &str = env!("CARGO_BIN_EXE_pluggedin-mcp-proxy");
const DEMO: &str = env!("CARGO_BIN_EXE_pluggedin-demo-server");
const PROTOCOL_VERSION: &str = "2025-06-18";
/// The stdio floor's source, compiled with `cc` into the work dir at start-up.
const RELAY_SOURCE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/benches/relay.c");
/// wrk's script for the HTTP scenario's load.
const CALLS_SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/benches/calls.lua");
/// Concurrency levels of the HTTP scenario.
const CONCURRENCY: [usize; 4] = [1, 8, 32, 128];

/// How much of each scenario to run.
#[derive(Debug, Clone, Copy)]
struct Plan {
    quick: bool,
    stdio_warmup: usize,
    stdio_calls: usize,
    /// Whole seconds: wrk takes integer durations.
    http_seconds: u64,
    startup_runs: usize,
    idle_sessions: usize,
    leak_calls: usize,
    catalog_servers: usize,
    catalog_tools: usize,
    catalog_lists: usize,
    /// Rounds of the alternating observability comparison.
    observe_rounds: usize,
}

impl Plan {
    fn new(quick: bool) -> Self {
        if quick {
            Plan {
                quick,
                stdio_warmup: 50,
                stdio_calls: 200,
                http_seconds: 1,
                startup_runs: 1,
                idle_sessions: 20,
                leak_calls: 500,
                catalog_servers: 5,
                catalog_tools: 20,
                catalog_lists: 2,
                observe_rounds: 2,
            }
        } else {
            Plan {
                quick,
                stdio_warmup: 2_000,
                stdio_calls: 20_000,
                http_seconds: 5,
                startup_runs: 5,
                idle_sessions: 1_000,
                leak_calls: 100_000,
                catalog_servers: 100,
                catalog_tools: 100,
                catalog_lists: 20,
                observe_rounds: 7,
            }
        }
    }
}

#[tokio::main]
async fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    // `cargo bench` passes `--bench`; anything else unknown is a mistake worth reporting.
    let quick = args.iter().any(|a| a == "--quick");
    // `--only=stdio,http` runs some scenarios: stdio, startup, http, catalog, observe, fleet.
    let only: Vec<&str> = args
        .iter()
        .filter_map(|a| a.strip_prefix("--only="))
        .flat_map(|list| list.split(','))
        .collect();
    let run = |scenario: &str| only.is_empty() || only.contains(&scenario);
    // `--baseline=PATH` adds rows for another build of the proxy, measured in the same run.
    if let Some(path) = args.iter().find_map(|a| a.strip_prefix("--baseline=")) {
        let _ = BASELINE.set(PathBuf::from(path));
    }
    // `--require-peer` fails the run when the peer is missing instead of skipping its rows (CI).
    let require_peer = args.iter().any(|a| a == "--require-peer");
    if let Some(unknown) = args.iter().find(|a| {
        !matches!(a.as_str(), "--quick" | "--bench" | "--require-peer")
            && !a.starts_with("--only=")
            && !a.starts_with("--baseline=")
    }) {
        bail!(
            "unknown argument {unknown:?} (usage: cargo bench --bench proxy [-- --quick] \
             [--only=stdio,startup,http,catalog,observe,fleet] [--baseline=PATH] \
             [--require-peer])"
        );
    }
    let plan = Plan::new(quick);
    let _ = rustls::crypto::ring::default_provider().install_default();
    let work = tempfile::tempdir().context("temp dir")?;
    // Every tool a scenario needs is found before anything runs, so a missing one fails at once.
    let relay = if run("stdio") {
        Some(compile_relay(work.path())?)
    } else {
        None
    };
    let http_tools = if run("http") || run("observe") || run("fleet") {
        Some(HttpTools::find()?)
    } else {
        None
    };
    let postgres = if run("fleet") {
        Some(Postgres::find()?)
    } else {
        None
    };
    let peer = Peer::find();
    if peer.is_none() && require_peer {
        bail!(
            "the peer proxy `fastmcp` is missing (--require-peer): run scripts/bench-deps.sh, \
             or put fastmcp on PATH"
        );
    }
    let mut report = String::new();
    header(&mut report, plan)?;

    if let Some(relay) = &relay {
        eprintln!("== 1. stdio per-call overhead");
        stdio_overhead(&mut report, plan, work.path(), relay, peer.as_ref()).await?;
    }
    if run("startup") {
        eprintln!("== 4. start-up and idle memory");
        startup(&mut report, plan, work.path()).await?;
    }
    if let Some(tools) = http_tools.as_ref().filter(|_| run("http")) {
        eprintln!("== 2./3. HTTP throughput and memory");
        http(
            &mut report,
            plan,
            work.path(),
            tools,
            peer.as_ref(),
            require_peer,
        )
        .await?;
    }
    if run("catalog") {
        eprintln!("== 5. big catalog");
        big_catalog(&mut report, plan, work.path()).await?;
    }
    if run("observe") {
        eprintln!("== 6. what metrics and traces cost");
        observability_overhead(&mut report, plan, work.path(), http_tools.as_ref()).await?;
    }
    if let (Some(tools), Some((bin, version))) = (&http_tools, &postgres) {
        eprintln!("== 7. a fleet: replicas behind HAProxy on one PostgreSQL");
        fleet(&mut report, plan, work.path(), tools, (bin, version)).await?;
    }
    if peer.is_none() {
        writeln!(
            report,
            "\n_Peer: `fastmcp` not found (run `scripts/bench-deps.sh` or put it on PATH); \
             its rows are left out._"
        )?;
    }
    println!("{report}");
    Ok(())
}

/// Compiles the stdio floor, `benches/relay.c`, into `dir`; returns the program's path.
fn compile_relay(dir: &Path) -> Result<PathBuf> {
    let program = dir.join("relay");
    let output = std::process::Command::new("cc")
        .args(["-O2", "-o"])
        .arg(&program)
        .arg(RELAY_SOURCE)
        .output()
        .context("cannot run `cc` to compile the byte relay (benches/relay.c)")?;
    if !output.status.success() {
        bail!(
            "`cc -O2 -o {} {RELAY_SOURCE}` failed ({}): {}",
            program.display(),
            output.status,
            String::from_utf8_lossy(&output.stderr)
        );
    }
    Ok(program)
}

fn header(report: &mut String, plan: Plan) -> Result<()> {
    let cpu = std::process::Command::new("lscpu")
        .output()
        .ok()
        .and_then(|out| String::from_utf8(out.stdout).ok())
        .and_then(|text| {
            text.lines()
                .find(|l| l.starts_with("Model name:"))
                .map(|l| l.trim_start_matches("Model name:").trim().to_owned())
        })
        .unwrap_or_else(|| "unknown".into());
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let date = std::process::Command::new("date")
        .args(["-u", "+%Y-%m-%d %H:%M UTC"])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_default();
    writeln!(
        report,
        "Machine: {cores} cores, {cpu}. Date: {date}. Load average at start: {}. Mode: {}.",
        load.split_whitespace()
            .take(3)
            .collect::<Vec<_>>()
            .join(" "),
        if plan.quick {
            "quick (figures meaningless)"
        } else {
            "full"
        }
    )?;
    Ok(())
}

// ===== Statistics =====

#[derive(Debug, Clone, Copy, Default)]
struct Summary {
    p50: f64,
    p99: f64,
}

/// Percentiles in microseconds.
fn summarize(samples: &mut [Duration]) -> Summary {
    if samples.is_empty() {
        return Summary::default();
    }
    samples.sort_unstable();
    let at = |q: f64| {
        let index = ((samples.len() as f64 - 1.0) * q).round() as usize;
        samples[index].as_secs_f64() * 1e6
    };
    Summary {
        p50: at(0.50),
        p99: at(0.99),
    }
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    values.get(values.len() / 2).copied().unwrap_or(0.0)
}

// ===== /proc =====

/// Resident memory of one process (not its children), in KiB.
fn rss_kib(pid: u32) -> Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .ok_or_else(|| anyhow!("no VmRSS for {pid}"))
}

/// utime + stime of one process (its threads, not its children), in seconds.
fn cpu_seconds(pid: u32) -> Result<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // Fields after the parenthesized command name start at field 3 (state).
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or_default();
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let utime: f64 = fields.get(11).context("utime")?.parse()?;
    let stime: f64 = fields.get(12).context("stime")?.parse()?;
    Ok((utime + stime) / clock_ticks())
}

fn clock_ticks() -> f64 {
    static TICKS: std::sync::OnceLock<f64> = std::sync::OnceLock::new();
    *TICKS.get_or_init(|| {
        std::process::Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse().ok())
            .unwrap_or(100.0)
    })
}

// ===== Configurations and processes =====

/// Writes an mcpServers file of `count` demo servers (`demo`, `demo2`, …) and returns its path.
fn servers_config(dir: &Path, name: &str, count: usize, extra_tools: usize) -> Result<PathBuf> {
    let mut servers = serde_json::Map::new();
    for i in 0..count {
        let server = if i == 0 {
            "demo".to_owned()
        } else {
            format!("demo{}", i + 1)
        };
        let mut args = vec!["--name".to_owned(), server.clone()];
        if extra_tools > 0 {
            args.extend(["--extra-tools".to_owned(), extra_tools.to_string()]);
        }
        servers.insert(server, json!({ "command": DEMO, "args": args }));
    }
    let path = dir.join(format!("{name}.json"));
    std::fs::write(&path, json!({ "mcpServers": servers }).to_string())?;
    Ok(path)
}

/// The proxy with tracing on: every request sampled, spans exported to `sink`.
fn traced(mut cmd: Command, sink: &str) -> Command {
    cmd.env("OTEL_EXPORTER_OTLP_ENDPOINT", sink)
        .env("OTEL_TRACES_SAMPLER", "always_on")
        .env("OTEL_BSP_SCHEDULE_DELAY", "200");
    cmd
}

/// The row name of the proxy with tracing on.
const TRACED: &str =
    "pluggedin-mcp-proxy, tracing on (every request sampled, OTLP to a local sink)";

fn proxy_command(dir: &Path, config: &Path, extra: &[&str]) -> Result<Command> {
    program_command(Path::new(PROXY), dir, config, extra)
}

/// Another build of the proxy to compare with (`--baseline=PATH`), e.g. the last release.
static BASELINE: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();

fn baseline_command(dir: &Path, config: &Path, extra: &[&str]) -> Result<Option<Command>> {
    BASELINE
        .get()
        .map(|program| program_command(program, dir, config, extra))
        .transpose()
}

fn program_command(program: &Path, dir: &Path, config: &Path, extra: &[&str]) -> Result<Command> {
    let data = tempfile::Builder::new()
        .prefix("data")
        .tempdir_in(dir)?
        .keep();
    let mut cmd = Command::new(program);
    cmd.arg("--config")
        .arg(config)
        .arg("--data-dir")
        .arg(data)
        .args(["--log-level", "warn"])
        .args(extra);
    Ok(cmd)
}

fn log_file(dir: &Path, name: &str) -> Result<Stdio> {
    Ok(File::create(dir.join(format!("{name}.log")))?.into())
}

fn free_port() -> Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

async fn wait_for_port(port: u16, child: &mut Child) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_ok()
        {
            return Ok(());
        }
        if let Some(status) = child.try_wait()? {
            bail!("server exited before listening on {port}: {status}");
        }
        if Instant::now() > deadline {
            bail!("nothing listens on {port} after 60 s");
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Ends a process gently (SIGTERM, which also makes the proxy stop its children), then for sure.
async fn stop(mut child: Child) {
    if let Some(pid) = child.id() {
        let _ = std::process::Command::new("kill")
            .args(["-TERM", &pid.to_string()])
            .status();
    }
    if tokio::time::timeout(Duration::from_secs(10), child.wait())
        .await
        .is_err()
    {
        let _ = child.kill().await;
    }
}

/// An MCP client over a child's stdin/stdout: newline-delimited JSON-RPC, one request at a time.
struct StdioClient {
    child: Child,
    stdin: ChildStdin,
    lines: Lines<BufReader<ChildStdout>>,
    next_id: u64,
    line: String,
}

impl StdioClient {
    fn spawn(mut cmd: Command, stderr: Stdio) -> Result<Self> {
        cmd.stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(stderr)
            .kill_on_drop(true);
        let mut child = cmd.spawn().context("spawn")?;
        let stdin = child.stdin.take().context("stdin")?;
        let stdout = child.stdout.take().context("stdout")?;
        Ok(StdioClient {
            child,
            stdin,
            lines: BufReader::new(stdout).lines(),
            next_id: 0,
            line: String::new(),
        })
    }

    fn pid(&self) -> u32 {
        self.child.id().unwrap_or(0)
    }

    async fn send(&mut self, message: &Value) -> Result<()> {
        self.line.clear();
        self.line.push_str(&serde_json::to_string(message)?);
        self.line.push('\n');
        self.stdin.write_all(self.line.as_bytes()).await?;
        self.stdin.flush().await?;
        Ok(())
    }

    async fn request(&mut self, method: &str, params: Value) -> Result<Value> {
        self.next_id += 1;
        let id = self.next_id;
        self.send(&json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params}))
            .await?;
        loop {
            let line = self
                .lines
                .next_line()
                .await?
                .ok_or_else(|| anyhow!("{method}: the server closed stdout"))?;
            let message: Value = serde_json::from_str(&line)?;
            if message.get("id").and_then(Value::as_u64) == Some(id) {
                return response_result(method, message);
            }
            // A notification or a server request: a benchmark client ignores it.
        }
    }

    async fn initialize(&mut self) -> Result<()> {
        self.request("initialize", initialize_params()).await?;
        self.send(&json!({"jsonrpc": "2.0", "method": "notifications/initialized"}))
            .await
    }

    /// Every page of `tools/list`; returns the names.
    async fn list_tools(&mut self) -> Result<Vec<String>> {
        let mut names = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let params = match &cursor {
                Some(c) => json!({ "cursor": c }),
                None => json!({}),
            };
            let result = self.request("tools/list", params).await?;
            names.extend(tool_names(&result));
            match result.get("nextCursor").and_then(Value::as_str) {
                Some(next) => cursor = Some(next.to_owned()),
                None => return Ok(names),
            }
        }
    }

    async fn call(&mut self, tool: &str, message: &str) -> Result<()> {
        let result = self
            .request(
                "tools/call",
                json!({"name": tool, "arguments": {"message": message}}),
            )
            .await?;
        if result.get("isError").and_then(Value::as_bool) == Some(true) {
            bail!("{tool} failed: {result}");
        }
        Ok(())
    }

    async fn close(self) {
        drop(self.stdin);
        let mut child = self.child;
        if tokio::time::timeout(Duration::from_secs(10), child.wait())
            .await
            .is_err()
        {
            let _ = child.kill().await;
        }
    }
}

fn initialize_params() -> Value {
    json!({
        "protocolVersion": PROTOCOL_VERSION,
        "capabilities": {},
        "clientInfo": {"name": "pluggedin-bench", "version": "1"}
    })
}

fn response_result(method: &str, mut message: Value) -> Result<Value> {
    if let Some(error) = message.get("error") {
        bail!("{method}: {error}");
    }
    message
        .get_mut("result")
        .map(Value::take)
        .ok_or_else(|| anyhow!("{method}: no result in {message}"))
}

fn tool_names(result: &Value) -> impl Iterator<Item = String> + '_ {
    result
        .get("tools")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|t| t.get("name").and_then(Value::as_str).map(str::to_owned))
}

/// The echo tool's name in a catalog: `echo` itself, or the shortest prefixed `…echo`.
fn echo_tool(names: &[String]) -> Result<String> {
    names
        .iter()
        .filter(|n| n.as_str() == "echo" || n.ends_with("_echo"))
        .min_by_key(|n| n.len())
        .cloned()
        .ok_or_else(|| anyhow!("no echo tool in {names:?}"))
}

// ===== The peer =====

/// Another MCP proxy users run today: FastMCP (PyPI), `fastmcp run <mcpServers file>`.
struct Peer {
    fastmcp: PathBuf,
    version: String,
}

impl Peer {
    fn find() -> Option<Peer> {
        let local = Path::new(env!("CARGO_MANIFEST_DIR")).join(".deps/bench-venv/bin/fastmcp");
        let candidates = [local, PathBuf::from("fastmcp")];
        candidates.into_iter().find_map(|fastmcp| {
            let out = std::process::Command::new(&fastmcp)
                .arg("--version")
                .output()
                .ok()?;
            out.status.success().then(|| Peer {
                version: String::from_utf8_lossy(&out.stdout)
                    .split_whitespace()
                    .last()
                    .unwrap_or("?")
                    .to_owned(),
                fastmcp,
            })
        })
    }

    fn command(&self, config: &Path, extra: &[&str]) -> Command {
        let mut cmd = Command::new(&self.fastmcp);
        cmd.arg("run")
            .arg(config)
            .args(["--no-banner", "--log-level", "WARNING"])
            .args(extra)
            .env("FASTMCP_CHECK_FOR_UPDATES", "off");
        cmd
    }
}

// ===== 1. stdio per-call overhead =====

struct StdioRun {
    summary: Summary,
    cpu_per_call_us: Option<f64>,
}

/// Sequential echo calls on a connected client; CPU of `cpu_pid` over the measured calls.
async fn stdio_calls(
    client: &mut StdioClient,
    plan: Plan,
    cpu_pid: Option<u32>,
) -> Result<StdioRun> {
    // A proxy answers before its servers are connected: wait until the echo tool is listed.
    let started = Instant::now();
    let tool = loop {
        let names = client.list_tools().await?;
        match echo_tool(&names) {
            Ok(tool) => break tool,
            Err(error) if started.elapsed() > Duration::from_secs(30) => return Err(error),
            Err(_) => tokio::time::sleep(Duration::from_millis(10)).await,
        }
    };
    for _ in 0..plan.stdio_warmup {
        client.call(&tool, "warm").await?;
    }
    let cpu_before = cpu_pid.map(cpu_seconds).transpose()?;
    let mut samples = Vec::with_capacity(plan.stdio_calls);
    for _ in 0..plan.stdio_calls {
        let start = Instant::now();
        client.call(&tool, "hello").await?;
        samples.push(start.elapsed());
    }
    let cpu_per_call_us = match (cpu_pid, cpu_before) {
        (Some(pid), Some(before)) => {
            Some((cpu_seconds(pid)? - before) / plan.stdio_calls as f64 * 1e6)
        }
        _ => None,
    };
    Ok(StdioRun {
        summary: summarize(&mut samples),
        cpu_per_call_us,
    })
}

/// Spawns a stdio target, makes the calls, stops it; the CPU is that process's own.
async fn stdio_target(cmd: Command, stderr: Stdio, plan: Plan) -> Result<StdioRun> {
    let mut client = StdioClient::spawn(cmd, stderr)?;
    client.initialize().await?;
    let pid = client.pid();
    let run = stdio_calls(&mut client, plan, Some(pid)).await;
    client.close().await;
    run
}

async fn stdio_overhead(
    report: &mut String,
    plan: Plan,
    dir: &Path,
    relay: &Path,
    peer: Option<&Peer>,
) -> Result<()> {
    let config = servers_config(dir, "one", 1, 0)?;

    let mut demo = Command::new(DEMO);
    demo.args(["--name", "demo"]);
    let direct = stdio_target(demo, Stdio::null(), plan).await?;

    let mut relayed = Command::new(relay);
    relayed.arg(DEMO).args(["--name", "demo"]);
    let relay_run = stdio_target(relayed, log_file(dir, "stdio-relay")?, plan).await?;

    let proxied = stdio_target(
        proxy_command(dir, &config, &[])?,
        log_file(dir, "stdio-proxy")?,
        plan,
    )
    .await?;

    let (sink, _sink_process, exported) = external_sink(dir).await?;
    let traced_run = stdio_target(
        traced(proxy_command(dir, &config, &[])?, &sink),
        log_file(dir, "stdio-traced")?,
        plan,
    )
    .await?;
    let exported = exported.load(std::sync::atomic::Ordering::Relaxed);
    if exported == 0 {
        bail!("the proxy with tracing on exported no spans (log: stdio-traced)");
    }

    let mut others = vec![(TRACED.to_owned(), traced_run)];
    if let Some(cmd) = baseline_command(dir, &config, &[])? {
        let run = stdio_target(cmd, log_file(dir, "stdio-baseline")?, plan).await?;
        others.push(("baseline proxy (`--baseline`)".to_owned(), run));
    }
    if let Some(peer) = peer {
        let cmd = peer.command(&config, &[]);
        let run = stdio_target(cmd, log_file(dir, "stdio-peer")?, plan).await?;
        others.push((format!("fastmcp {} proxy", peer.version), run));
    }
    let mut proxies = vec![("pluggedin-mcp-proxy".to_owned(), proxied)];
    proxies.extend(others);

    writeln!(
        report,
        "\n### 1. stdio: per-call overhead ({} sequential `tools/call echo` after {} warm-up)\n",
        plan.stdio_calls, plan.stdio_warmup
    )?;
    writeln!(
        report,
        "| path | p50 µs | p99 µs | p99/p50 | added p50 µs | added p99 µs | CPU µs/call added (that process) |"
    )?;
    writeln!(report, "|---|---:|---:|---:|---:|---:|---:|")?;
    let d = direct.summary;
    let mut row = |name: &str, run: &StdioRun| {
        let s = run.summary;
        writeln!(
            report,
            "| {name} | {:.1} | {:.1} | {:.2} | {:+.1} | {:+.1} | {} |",
            s.p50,
            s.p99,
            s.p99 / s.p50,
            s.p50 - d.p50,
            s.p99 - d.p99,
            run.cpu_per_call_us
                .map_or_else(|| "–".into(), |c| format!("{c:.1}"))
        )
    };
    row("client → demo server (direct)", &direct)?;
    row("client → byte relay (C, poll) → demo server", &relay_run)?;
    for (name, run) in &proxies {
        row(&format!("client → {name} → demo server"), run)?;
    }
    writeln!(
        report,
        "\nAdded = that path's percentile − the direct path's. CPU µs/call is utime+stime from \
         `/proc/<pid>/stat` of that one process at {} ticks/s: the process added in the path \
         (the relay, a proxy; never its demo server child), and in the direct row the demo \
         server's own.",
        clock_ticks()
    )?;

    // Against the floor of one extra process hop: the relay.
    let relay_added = relay_run.summary.p50 - d.p50;
    let relay_cpu = relay_run.cpu_per_call_us.unwrap_or(0.0);
    let relay_tail = relay_run.summary.p99 / relay_run.summary.p50;
    writeln!(
        report,
        "\n#### Against the byte relay (targets: added p50 ≤ 1.5× the relay's, CPU/call ≤ 2× the \
         relay's, p99/p50 ≤ 1.5× the relay's)\n"
    )?;
    writeln!(
        report,
        "| path | added p50 ÷ relay's | CPU/call ÷ relay's | p99/p50 ÷ relay's |\n|---|---|---|---|"
    )?;
    for (name, run) in &proxies {
        let s = run.summary;
        writeln!(
            report,
            "| {name} | {} | {} | {} |",
            ratio_cell(s.p50 - d.p50, relay_added, 1.5),
            ratio_cell(run.cpu_per_call_us.unwrap_or(0.0), relay_cpu, 2.0),
            ratio_cell(s.p99 / s.p50, relay_tail, 1.5),
        )?;
    }
    writeln!(
        report,
        "\nThe relay (`benches/relay.c`) is one process copying bytes both ways with `poll(2)` on \
         one thread and parsing nothing: the least one extra process hop costs. p99/p50 is of \
         the whole path's latency, as the client sees it."
    )?;
    Ok(())
}

/// `numerator / denominator` against a ceiling, for the targets tables: `1.32× met`.
fn ratio_cell(numerator: f64, denominator: f64, ceiling: f64) -> String {
    if denominator <= 0.0 || !numerator.is_finite() {
        // No ratio to a floor at or below zero: a quick run's few calls, within the noise.
        return format!("– (the relay's: {denominator:.1})");
    }
    let ratio = numerator / denominator;
    format!("{ratio:.2}× {}", met(ratio <= ceiling))
}

fn met(yes: bool) -> &'static str {
    if yes { "met" } else { "not met" }
}

// ===== 4. start-up, 3a. idle memory =====

/// Spawn → `initialize` → `tools/list` until it holds `expected` tools; returns the time and the
/// connected client.
async fn start_until_listed(
    cmd: Command,
    stderr: Stdio,
    expected: usize,
) -> Result<(f64, StdioClient)> {
    let start = Instant::now();
    let mut client = StdioClient::spawn(cmd, stderr)?;
    client.initialize().await?;
    loop {
        let count = client.list_tools().await?.len();
        if count >= expected {
            return Ok((start.elapsed().as_secs_f64() * 1e3, client));
        }
        if start.elapsed() > Duration::from_secs(60) {
            bail!("only {count} of {expected} tools after 60 s");
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

async fn startup(report: &mut String, plan: Plan, dir: &Path) -> Result<()> {
    const SERVERS: usize = 10;
    // The demo server's catalog size, and the proxy's built-in tools.
    let mut demo = StdioClient::spawn(Command::new(DEMO), Stdio::null())?;
    demo.initialize().await?;
    let demo_tools = demo.list_tools().await?.len();
    demo.close().await;
    let empty = servers_config(dir, "none", 0, 0)?;
    let (_, client) =
        start_until_listed(proxy_command(dir, &empty, &[])?, Stdio::null(), 0).await?;
    let mut client = client;
    let builtin = client.list_tools().await?.len();
    client.close().await;

    let config = servers_config(dir, "ten", SERVERS, 0)?;
    let expected = builtin + SERVERS * demo_tools;
    let (mut alone, mut servers, mut proxied, mut idle_rss) = (vec![], vec![], vec![], vec![]);
    for run in 0..plan.startup_runs {
        eprintln!("  start-up run {}", run + 1);
        // The proxy with no servers: its own fixed cost.
        let (ms, client) =
            start_until_listed(proxy_command(dir, &empty, &[])?, Stdio::null(), builtin).await?;
        alone.push(ms);
        client.close().await;

        // The servers' own start-up: ten demo servers spawned at once, each to its tools/list.
        let start = Instant::now();
        let spawned = (0..SERVERS).map(|i| async move {
            let mut cmd = Command::new(DEMO);
            cmd.args(["--name", &format!("s{i}")]);
            let (_, client) = start_until_listed(cmd, Stdio::null(), demo_tools).await?;
            Ok::<_, anyhow::Error>(client)
        });
        let clients = futures::future::try_join_all(spawned).await?;
        servers.push(start.elapsed().as_secs_f64() * 1e3);
        for client in clients {
            client.close().await;
        }

        let (ms, client) = start_until_listed(
            proxy_command(dir, &config, &[])?,
            log_file(dir, "startup")?,
            expected,
        )
        .await?;
        proxied.push(ms);
        // Idle memory: once everything is listed and the start-up work has settled.
        tokio::time::sleep(Duration::from_millis(if plan.quick { 100 } else { 2000 })).await;
        idle_rss.push(rss_kib(client.pid())? as f64 / 1024.0);
        client.close().await;
    }
    let (alone, servers, proxied, idle) = (
        median(&mut alone),
        median(&mut servers),
        median(&mut proxied),
        median(&mut idle_rss),
    );
    writeln!(
        report,
        "\n### 4. Start-up: spawn → `initialize` → `tools/list` with every tool (median of {} runs)\n",
        plan.startup_runs
    )?;
    writeln!(report, "| what | ms |\n|---|---:|")?;
    writeln!(
        report,
        "| proxy alone, no servers ({builtin} built-in tools) | {alone:.1} |"
    )?;
    writeln!(
        report,
        "| {SERVERS} demo servers alone, spawned at once, each to its `tools/list` | {servers:.1} |"
    )?;
    writeln!(
        report,
        "| proxy with {SERVERS} demo servers ({expected} tools) | {proxied:.1} |"
    )?;
    writeln!(
        report,
        "| proxy's share (with {SERVERS} servers − servers alone) | {:.1} |",
        proxied - servers
    )?;
    writeln!(
        report,
        "\n### 3a. Memory idle: proxy RSS with {SERVERS} demo servers connected (children excluded)\n\n\
         | proxy RSS MiB |\n|---:|\n| {idle:.1} |"
    )?;
    Ok(())
}

// ===== 2. HTTP throughput, 3b/3c. session and long-run memory =====

/// One Streamable HTTP session (or none, stateless) over a shared `reqwest` client.
struct HttpSession {
    client: reqwest::Client,
    url: String,
    session: Option<String>,
    next_id: u64,
}

impl HttpSession {
    async fn open(client: &reqwest::Client, url: &str) -> Result<HttpSession> {
        let mut session = HttpSession {
            client: client.clone(),
            url: url.to_owned(),
            session: None,
            next_id: 0,
        };
        session.request("initialize", initialize_params()).await?;
        session
            .post(&json!({"jsonrpc": "2.0", "method": "notifications/initialized"}))
            .await?;
        Ok(session)
    }

    async fn post(&mut self, body: &Value) -> Result<Option<Value>> {
        let mut request = self
            .client
            .post(&self.url)
            .header("content-type", "application/json")
            .header("accept", "application/json, text/event-stream")
            .body(body.to_string());
        if let Some(id) = &self.session {
            request = request
                .header("mcp-session-id", id)
                .header("mcp-protocol-version", PROTOCOL_VERSION);
        }
        let response = request.send().await?;
        let status = response.status();
        if let Some(id) = response.headers().get("mcp-session-id") {
            self.session = Some(id.to_str()?.to_owned());
        }
        let is_sse = response
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("text/event-stream"));
        let text = response.text().await?;
        if !status.is_success() {
            bail!("HTTP {status}: {text}");
        }
        if status == reqwest::StatusCode::ACCEPTED || text.trim().is_empty() {
            return Ok(None);
        }
        if !is_sse {
            return Ok(Some(serde_json::from_str(&text)?));
        }
        // The answer is the SSE event carrying a JSON-RPC response (an id and a result or error).
        for line in text.lines() {
            let Some(data) = line.strip_prefix("data:") else {
                continue;
            };
            let Ok(message) = serde_json::from_str::<Value>(data.trim()) else {
                continue;
            };
            if message.get("id").is_some()
                && (message.get("result").is_some() || message.get("error").is_some())
            {
                return Ok(Some(message));
            }
        }
        bail!("no response in the SSE body: {text}")
    }

    async fn request(&mut self, method: &str, params: Value) -> Result<Value> {
        self.next_id += 1;
        let body =
            json!({"jsonrpc": "2.0", "id": self.next_id, "method": method, "params": params});
        let message = self
            .post(&body)
            .await?
            .ok_or_else(|| anyhow!("{method}: no answer"))?;
        response_result(method, message)
    }

    async fn call(&mut self, tool: &str) -> Result<()> {
        let result = self
            .request(
                "tools/call",
                json!({"name": tool, "arguments": {"message": "hello"}}),
            )
            .await?;
        if result.get("isError").and_then(Value::as_bool) == Some(true) {
            bail!("{tool} failed: {result}");
        }
        Ok(())
    }

    async fn close(self) {
        if let Some(id) = &self.session {
            let _ = self
                .client
                .delete(&self.url)
                .header("mcp-session-id", id)
                .send()
                .await;
        }
    }
}

#[derive(Debug, Default)]
struct Throughput {
    calls_per_second: f64,
    summary: Summary,
    errors: usize,
    /// Every request sent: answered well or not.
    requests: usize,
}

/// `concurrency` sessions, each calling in a loop for `seconds` (or `calls` in total if given).
async fn load(
    client: &reqwest::Client,
    url: &str,
    tool: &str,
    concurrency: usize,
    seconds: f64,
    total_calls: Option<usize>,
) -> Result<Throughput> {
    let barrier = Arc::new(Barrier::new(concurrency + 1));
    let per_worker = total_calls.map(|n| n.div_ceil(concurrency));
    let workers: Vec<_> = (0..concurrency)
        .map(|_| {
            let (client, url, tool, barrier) = (
                client.clone(),
                url.to_owned(),
                tool.to_owned(),
                barrier.clone(),
            );
            tokio::spawn(async move {
                let opened = async {
                    let mut session = HttpSession::open(&client, &url).await?;
                    for _ in 0..5 {
                        session.call(&tool).await?;
                    }
                    Ok::<_, anyhow::Error>(session)
                }
                .await;
                barrier.wait().await;
                let mut session = opened?;
                let deadline = Instant::now() + Duration::from_secs_f64(seconds);
                let (mut samples, mut errors) = (Vec::new(), 0usize);
                loop {
                    let done = match per_worker {
                        Some(n) => samples.len() + errors >= n,
                        None => Instant::now() >= deadline,
                    };
                    if done {
                        break;
                    }
                    let start = Instant::now();
                    match session.call(&tool).await {
                        Ok(()) => samples.push(start.elapsed()),
                        Err(error) => {
                            if errors == 0 {
                                eprintln!("  call error: {error:#}");
                            }
                            errors += 1;
                        }
                    }
                }
                session.close().await;
                Ok::<_, anyhow::Error>((samples, errors))
            })
        })
        .collect();
    barrier.wait().await;
    let start = Instant::now();
    let (mut samples, mut errors) = (Vec::new(), 0);
    for worker in workers {
        let (s, e) = worker.await??;
        samples.extend(s);
        errors += e;
    }
    let elapsed = start.elapsed().as_secs_f64();
    Ok(Throughput {
        calls_per_second: samples.len() as f64 / elapsed,
        requests: samples.len() + errors,
        summary: summarize(&mut samples),
        errors,
    })
}

/// A target of the HTTP scenario: its process, URL and echo tool.
struct HttpTarget {
    name: String,
    child: Child,
    url: String,
    tool: String,
}

impl HttpTarget {
    async fn start(
        name: String,
        mut cmd: Command,
        port: u16,
        log: Stdio,
        client: &reqwest::Client,
    ) -> Result<HttpTarget> {
        cmd.stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .kill_on_drop(true);
        let mut child = cmd.spawn().with_context(|| format!("spawn {name}"))?;
        wait_for_port(port, &mut child).await?;
        let url = format!("http://127.0.0.1:{port}/mcp");
        let mut session = HttpSession::open(client, &url).await?;
        // A proxy may still be connecting its servers: wait until the echo tool is listed.
        let started = Instant::now();
        let tool = loop {
            let listed = session.request("tools/list", json!({})).await?;
            let names: Vec<String> = tool_names(&listed).collect();
            match echo_tool(&names) {
                Ok(tool) => break tool,
                Err(error) if started.elapsed() > Duration::from_secs(30) => return Err(error),
                Err(_) => tokio::time::sleep(Duration::from_millis(10)).await,
            }
        };
        session.close().await;
        Ok(HttpTarget {
            name,
            child,
            url,
            tool,
        })
    }

    fn pid(&self) -> u32 {
        self.child.id().unwrap_or(0)
    }
}

/// The HTTP scenario's outside programs: the load generator and the floor of one HTTP hop.
struct HttpTools {
    wrk: PathBuf,
    wrk_version: String,
    haproxy: PathBuf,
    haproxy_version: String,
}

impl HttpTools {
    fn find() -> Result<HttpTools> {
        // `wrk debian/4.1.0-3+b2 [epoll] Copyright …`, `HAProxy version 2.6.12-1+deb12u4 2026/10/17 …`
        let (wrk, wrk_version) = find_program("wrk", "wrk", 2)?;
        let (haproxy, haproxy_version) = find_program("haproxy", "HAProxy", 3)?;
        Ok(HttpTools {
            wrk,
            wrk_version,
            haproxy,
            haproxy_version,
        })
    }
}

/// `name` on PATH, else in /usr/sbin or /usr/bin (Debian puts haproxy in /usr/sbin, outside a
/// user's PATH); returns its path and the first `words` words of `name -v`, which start with
/// `banner`.
fn find_program(name: &str, banner: &str, words: usize) -> Result<(PathBuf, String)> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    let dirs = std::env::split_paths(&path).chain(["/usr/sbin".into(), "/usr/bin".into()]);
    for program in dirs.map(|dir| dir.join(name)) {
        if !program.is_file() {
            continue;
        }
        // `wrk -v` prints its version and exits with 1: the banner tells it is the program.
        let Ok(output) = std::process::Command::new(&program).arg("-v").output() else {
            continue;
        };
        let version = String::from_utf8_lossy(&output.stdout)
            .split_whitespace()
            .take(words)
            .collect::<Vec<_>>()
            .join(" ");
        if version.starts_with(banner) {
            return Ok((program, version));
        }
    }
    bail!(
        "`{name}` not found on PATH, in /usr/sbin or /usr/bin: the HTTP scenario needs it; run \
         scripts/bench-deps.sh (as root it installs it; or `apt-get install {name}`), or leave \
         the scenario out with --only=stdio,startup,catalog"
    )
}

/// Writes HAProxy's configuration `name`: `port` in front of `backend_ports`, all on loopback,
/// in round robin (each request to the next backend, nothing pinned). Returns its path. With one
/// backend, the demo server's own HTTP, it is the floor of one HTTP hop.
fn haproxy_config(dir: &Path, name: &str, port: u16, backend_ports: &[u16]) -> Result<PathBuf> {
    // `nbthread` is left at its default, one thread per CPU HAProxy may run on: the proxy's HTTP
    // runtime also runs one worker per core, so the floor gets the threads what it is compared
    // with gets. No `log` line: nothing is logged. `maxconn` is above the most connections a run
    // opens on either side (wrk's c plus the setup client's pool); the timeouts are far above any
    // call, so no keep-alive connection is closed during a run.
    let mut text = format!(
        "global\n\
         \x20   maxconn 1024\n\
         \n\
         defaults\n\
         \x20   mode http\n\
         \x20   option http-keep-alive\n\
         \x20   timeout connect 10s\n\
         \x20   timeout client 300s\n\
         \x20   timeout server 300s\n\
         \x20   timeout http-request 300s\n\
         \x20   timeout http-keep-alive 300s\n\
         \n\
         frontend mcp\n\
         \x20   bind 127.0.0.1:{port}\n\
         \x20   default_backend targets\n\
         \n\
         backend targets\n\
         \x20   balance roundrobin\n"
    );
    for (index, backend_port) in backend_ports.iter().enumerate() {
        writeln!(text, "    server target{index} 127.0.0.1:{backend_port}")?;
    }
    let path = dir.join(format!("{name}.cfg"));
    std::fs::write(&path, text)?;
    Ok(path)
}

/// Calls over `concurrency` sessions for `seconds`, driven by wrk (`benches/calls.lua`, one
/// thread, `concurrency` connections). The sessions are opened here, each warmed with a few
/// calls, handed to the script in a file, and closed after the run.
async fn wrk_load(
    tools: &HttpTools,
    client: &reqwest::Client,
    target: &HttpTarget,
    concurrency: usize,
    seconds: u64,
    dir: &Path,
) -> Result<Throughput> {
    let sessions = open_sessions(client, target, concurrency).await?;
    let result = run_wrk(tools, target, &sessions, seconds, dir).await;
    futures::future::join_all(sessions.into_iter().map(HttpSession::close)).await;
    result
}

/// `count` sessions on `target`, each warmed with a few calls.
async fn open_sessions(
    client: &reqwest::Client,
    target: &HttpTarget,
    count: usize,
) -> Result<Vec<HttpSession>> {
    const WARM_CALLS: usize = 5;
    futures::future::try_join_all((0..count).map(|_| async {
        let mut session = HttpSession::open(client, &target.url).await?;
        for _ in 0..WARM_CALLS {
            session.call(&target.tool).await?;
        }
        Ok::<_, anyhow::Error>(session)
    }))
    .await
    .with_context(|| format!("opening {count} sessions on {}", target.name))
}

/// wrk for `seconds` on one connection per session, calling over `sessions`.
async fn run_wrk(
    tools: &HttpTools,
    target: &HttpTarget,
    sessions: &[HttpSession],
    seconds: u64,
    dir: &Path,
) -> Result<Throughput> {
    let concurrency = sessions.len();
    // `-` stands for a target that gives no session id (stateless): the script sends none.
    let ids: Vec<&str> = sessions
        .iter()
        .map(|s| s.session.as_deref().unwrap_or("-"))
        .collect();
    let file = dir.join("wrk-sessions");
    std::fs::write(&file, ids.join("\n") + "\n")?;
    let output = Command::new(&tools.wrk)
        .args(["-t1", "-c", &concurrency.to_string()])
        .args([
            "-d",
            &format!("{seconds}s"),
            "--timeout",
            "10s",
            "--latency",
        ])
        .args(["-s", CALLS_SCRIPT, &target.url, "--"])
        .arg(&file)
        .args([target.tool.as_str(), PROTOCOL_VERSION])
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .output()
        .await
        .with_context(|| format!("cannot run {}", tools.wrk.display()))?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    let Some(line) = stdout.lines().find_map(|l| l.strip_prefix("wrk-calls ")) else {
        bail!(
            "wrk on {} at c={concurrency} printed no result line ({}): {stdout}{}",
            target.name,
            output.status,
            String::from_utf8_lossy(&output.stderr)
        );
    };
    let field = |name: &str| -> Result<f64> {
        line.split_whitespace()
            .find_map(|pair| pair.strip_prefix(name)?.strip_prefix('='))
            .with_context(|| format!("no {name} in wrk's line {line:?}"))?
            .parse()
            .with_context(|| format!("{name} in wrk's line {line:?}"))
    };
    let errors = field("errors")? as usize;
    if errors > 0 {
        eprintln!("  errors: {line}");
    }
    Ok(Throughput {
        calls_per_second: field("calls_per_second")?,
        summary: Summary {
            p50: field("p50_us")?,
            p99: field("p99_us")?,
        },
        errors,
        requests: field("requests")? as usize,
    })
}

/// The proxy's arguments for the HTTP scenarios: Streamable HTTP on `port`. Rate limits are off
/// by default; passed anyway, so a changed default cannot turn the load into refusals. The other
/// limits' defaults are far above the load (10,000 sessions, 1,024 requests in flight per
/// session, connections up to half the open-file limit).
fn http_args(port: &str) -> [String; 8] {
    [
        "--transport",
        "streamable-http",
        "--port",
        port,
        "--rate-limit-tools",
        "0",
        "--rate-limit-requests",
        "0",
    ]
    .map(str::to_owned)
}

async fn http(
    report: &mut String,
    plan: Plan,
    dir: &Path,
    tools: &HttpTools,
    peer: Option<&Peer>,
    require_peer: bool,
) -> Result<()> {
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(256)
        .build()?;
    let config = servers_config(dir, "http-one", 1, 0)?;
    let mut targets = Vec::new();

    let demo_port = free_port()?;
    let mut demo = Command::new(DEMO);
    demo.args(["--http", &demo_port.to_string()]);
    targets.push(
        HttpTarget::start(
            "demo server's own HTTP (no hop)".into(),
            demo,
            demo_port,
            log_file(dir, "http-demo")?,
            &client,
        )
        .await?,
    );
    const DIRECT: usize = 0;
    let port = free_port()?;
    let mut haproxy = Command::new(&tools.haproxy);
    haproxy
        .arg("-db")
        .arg("-f")
        .arg(haproxy_config(dir, "haproxy", port, &[demo_port])?);
    targets.push(
        HttpTarget::start(
            "HAProxy → demo server's own HTTP (floor of one HTTP hop)".into(),
            haproxy,
            port,
            log_file(dir, "http-haproxy")?,
            &client,
        )
        .await?,
    );
    const HAPROXY: usize = 1;
    let port = free_port()?;
    let port_text = port.to_string();
    let args = http_args(&port_text);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let cmd = proxy_command(dir, &config, &args)?;
    targets.push(
        HttpTarget::start(
            "pluggedin-mcp-proxy (HTTP) → demo (stdio)".into(),
            cmd,
            port,
            log_file(dir, "http-proxy")?,
            &client,
        )
        .await?,
    );
    const PROXY: usize = 2;
    let baseline_port = free_port()?;
    let args = http_args(&baseline_port.to_string());
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let mut baseline_index = None;
    if let Some(cmd) = baseline_command(dir, &config, &args)? {
        baseline_index = Some(targets.len());
        targets.push(
            HttpTarget::start(
                "baseline proxy (`--baseline`, HTTP) → demo (stdio)".into(),
                cmd,
                baseline_port,
                log_file(dir, "http-baseline")?,
                &client,
            )
            .await?,
        );
    }
    if let Some(peer) = peer {
        let port = free_port()?;
        let port_text = port.to_string();
        let cmd = peer.command(&config, &["--transport", "http", "--port", &port_text]);
        match HttpTarget::start(
            format!("fastmcp {} (HTTP) → demo (stdio)", peer.version),
            cmd,
            port,
            log_file(dir, "http-peer")?,
            &client,
        )
        .await
        {
            Ok(target) => targets.push(target),
            Err(error) if require_peer => {
                return Err(error.context("the peer over HTTP did not start (--require-peer)"));
            }
            Err(error) => eprintln!("  peer over HTTP did not start: {error:#}"),
        }
    }

    let (sink, _sink_process, exported) = external_sink(dir).await?;
    let port = free_port()?;
    let args = http_args(&port.to_string());
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    targets.push(
        HttpTarget::start(
            format!("{TRACED} (HTTP) → demo (stdio)"),
            traced(proxy_command(dir, &config, &args)?, &sink),
            port,
            log_file(dir, "http-traced")?,
            &client,
        )
        .await?,
    );

    // (target index, c, result)
    let mut rows = Vec::new();
    for (index, target) in targets.iter().enumerate() {
        for concurrency in CONCURRENCY {
            eprintln!("  {} at c={concurrency}", target.name);
            let result =
                wrk_load(tools, &client, target, concurrency, plan.http_seconds, dir).await?;
            rows.push((index, concurrency, result));
        }
    }
    if exported.load(std::sync::atomic::Ordering::Relaxed) == 0 {
        bail!("the proxy with tracing on exported no spans over HTTP (log: http-traced)");
    }
    let calls = |index: usize, concurrency: usize| {
        rows.iter()
            .find(|(i, c, _)| *i == index && *c == concurrency)
            .map_or(0.0, |(_, _, r)| r.calls_per_second)
    };
    let percent = |value: f64, of: f64| {
        if of > 0.0 {
            format!("{:.0}%", 100.0 * value / of)
        } else {
            "–".to_owned()
        }
    };
    writeln!(
        report,
        "\n### 2. Streamable HTTP: throughput ({} s per level; c sessions and c connections, \
         wrk with one thread)\n",
        plan.http_seconds
    )?;
    writeln!(
        report,
        "| target | c | calls/s | % of demo's own | % of HAProxy | p50 µs | p99 µs | p99/p50 | errors |"
    )?;
    writeln!(report, "|---|---:|---:|---:|---:|---:|---:|---:|---:|")?;
    for (index, concurrency, result) in &rows {
        writeln!(
            report,
            "| {} | {concurrency} | {:.0} | {} | {} | {:.0} | {:.0} | {:.1} | {} |",
            targets[*index].name,
            result.calls_per_second,
            percent(result.calls_per_second, calls(DIRECT, *concurrency)),
            percent(result.calls_per_second, calls(HAPROXY, *concurrency)),
            result.summary.p50,
            result.summary.p99,
            result.summary.p99 / result.summary.p50,
            result.errors
        )?;
    }
    writeln!(
        report,
        "\nLoad: {} with one thread (`-t1`), which leaves the other core to the target, and \
         `benches/calls.lua`: requests round-robin over c sessions the suite opened (`initialize`, \
         then 5 warm-up calls each). Errors: answers other than 200, bodies without a JSON-RPC \
         result or with `\"isError\": true`, and socket errors. A proxy's demo server child and \
         HAProxy's demo server run on the same cores. Floor of one HTTP hop: {}, \
         `nbthread` at its default (one thread per core, as the proxy's runtime), keep-alive on \
         both sides.",
        tools.wrk_version, tools.haproxy_version
    )?;

    // The targets, for every proxy measured.
    let proxies: Vec<usize> = (PROXY..targets.len()).collect();
    writeln!(report, "\n#### HTTP targets\n")?;
    let names: Vec<&str> = proxies.iter().map(|&i| targets[i].name.as_str()).collect();
    writeln!(report, "| target | {} |", names.join(" | "))?;
    writeln!(report, "|---|{}", "---|".repeat(proxies.len()))?;
    let mut target_row = |label: &str, cell: &dyn Fn(usize) -> String| {
        let cells: Vec<String> = proxies.iter().map(|&i| cell(i)).collect();
        writeln!(report, "| {label} | {} |", cells.join(" | "))
    };
    let share = |index: usize, concurrency: usize, floor: usize, at_least: f64| {
        let of = calls(floor, concurrency);
        if of <= 0.0 {
            return "– (floor 0)".to_owned();
        }
        let share = calls(index, concurrency) / of;
        format!("{:.0}% {}", 100.0 * share, met(share >= at_least))
    };
    target_row("c=32: ≥ 60% of the demo's own calls/s", &|i| {
        share(i, 32, DIRECT, 0.6)
    })?;
    target_row("c=32: ≥ 80% of HAProxy's calls/s", &|i| {
        share(i, 32, HAPROXY, 0.8)
    })?;
    target_row("c=128: ≥ 50% of the demo's own calls/s", &|i| {
        share(i, 128, DIRECT, 0.5)
    })?;
    target_row("zero errors, every level", &|i| {
        let errors: usize = rows
            .iter()
            .filter(|(index, _, _)| *index == i)
            .map(|(_, _, r)| r.errors)
            .sum();
        format!("{errors} {}", met(errors == 0))
    })?;

    // 3b/3c on the proxy: idle sessions, then a long run.
    let mut baseline_per_session = None;
    if let Some(index) = baseline_index {
        let baseline = &targets[index];
        let (base, with_sessions, _) = idle_sessions(&client, baseline, plan.idle_sessions).await?;
        baseline_per_session =
            Some((with_sessions as f64 - base as f64) / plan.idle_sessions as f64);
    }
    let proxy = &targets[PROXY];
    let pid = proxy.pid();
    let (base, with_sessions, after_close) =
        idle_sessions(&client, proxy, plan.idle_sessions).await?;

    eprintln!("  {} calls at c=32", plan.leak_calls);
    let warm = plan.leak_calls / 10;
    load(&client, &proxy.url, &proxy.tool, 32, 0.0, Some(warm)).await?;
    let after_warm = rss_kib(pid)?;
    let long = load(
        &client,
        &proxy.url,
        &proxy.tool,
        32,
        0.0,
        Some(plan.leak_calls),
    )
    .await?;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let after_long = rss_kib(pid)?;

    let mib = |kib: u64| kib as f64 / 1024.0;
    writeln!(
        report,
        "\n### 3b/3c. Memory under HTTP: proxy RSS (children excluded), one demo server\n"
    )?;
    writeln!(report, "| moment | proxy RSS MiB |\n|---|---:|")?;
    writeln!(
        report,
        "| after the throughput runs above | {:.1} |",
        mib(base)
    )?;
    writeln!(
        report,
        "| with {} idle sessions open | {:.1} |",
        plan.idle_sessions,
        mib(with_sessions)
    )?;
    writeln!(
        report,
        "| after closing them (DELETE) | {:.1} |",
        mib(after_close)
    )?;
    writeln!(
        report,
        "| after {warm} warm-up calls (c=32) | {:.1} |",
        mib(after_warm)
    )?;
    writeln!(
        report,
        "| after {} more calls (c=32, {:.0} calls/s, {} errors) | {:.1} |",
        plan.leak_calls,
        long.calls_per_second,
        long.errors,
        mib(after_long)
    )?;
    writeln!(
        report,
        "\nPer idle session: {:.1} KiB ((RSS with sessions − before) / {}).",
        (with_sessions as f64 - base as f64) / plan.idle_sessions as f64,
        plan.idle_sessions
    )?;
    if let Some(per_session) = baseline_per_session {
        writeln!(
            report,
            "Per idle session of the baseline proxy (`--baseline`), same run: {per_session:.1} KiB."
        )?;
    }
    for target in targets {
        stop(target.child).await;
    }

    // 3b'. Hibernated sessions, on a proxy of their own that hibernates them after 1 s idle.
    let port = free_port()?;
    let mut args = http_args(&port.to_string()).to_vec();
    args.extend(["--session-hibernate-after".to_owned(), "1".to_owned()]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let target = HttpTarget::start(
        "pluggedin-mcp-proxy, hibernating after 1 s".into(),
        proxy_command(dir, &config, &args)?,
        port,
        log_file(dir, "http-hibernate")?,
        &client,
    )
    .await?;
    let hibernated = hibernated_sessions(&client, &target, plan.idle_sessions).await?;
    stop(target.child).await;
    let n = plan.idle_sessions;
    writeln!(
        report,
        "\n#### Hibernated sessions (`--session-hibernate-after 1`, a proxy of its own)\n\n\
         | moment | proxy RSS MiB |\n|---|---:|\n\
         | before | {:.1} |\n\
         | {n} sessions opened, all hibernated | {:.1} |\n\
         | {n} more opened, all {} hibernated | {:.1} |\n\n\
         Per hibernated session: {:.1} KiB ((RSS with {} hibernated − RSS with {n}) / {n}; the \
         second batch reuses the memory the first batch's workers gave back).\n\
         A call on a hibernated session (it wakes first): p50 {:.0} µs, p99 {:.0} µs ({} calls); \
         the next call on the same, awake sessions: p50 {:.0} µs.",
        mib(hibernated.base),
        mib(hibernated.first),
        2 * n,
        mib(hibernated.second),
        (hibernated.second as f64 - hibernated.first as f64) / n as f64,
        2 * n,
        hibernated.waking.p50,
        hibernated.waking.p99,
        hibernated.woken,
        hibernated.awake.p50,
    )?;
    Ok(())
}

/// RSS figures (KiB) and call latencies of [`hibernated_sessions`].
struct Hibernated {
    base: u64,
    first: u64,
    second: u64,
    woken: usize,
    waking: Summary,
    awake: Summary,
}

/// Opens `count` sessions and waits until all hibernated, then as many again; RSS at each step;
/// then one call on some of them (waking them) and a second call (awake).
async fn hibernated_sessions(
    client: &reqwest::Client,
    target: &HttpTarget,
    count: usize,
) -> Result<Hibernated> {
    let pid = target.pid();
    let health = target.url.replace("/mcp", "/health");
    let wait_hibernated = |want: usize| {
        let (client, health) = (client.clone(), health.clone());
        async move {
            let started = Instant::now();
            loop {
                let status: Value = client.get(&health).send().await?.json().await?;
                if status["hibernatedSessions"].as_u64().unwrap_or(0) as usize >= want {
                    return Ok::<_, anyhow::Error>(());
                }
                if started.elapsed() > Duration::from_secs(120) {
                    bail!("sessions did not hibernate: {status}");
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    };
    let base = rss_kib(pid)?;
    eprintln!("  {count} sessions to hibernate on {}", target.name);
    let mut sessions = Vec::with_capacity(2 * count);
    for _ in 0..count {
        sessions.push(HttpSession::open(client, &target.url).await?);
    }
    wait_hibernated(count).await?;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let first = rss_kib(pid)?;
    for _ in 0..count {
        sessions.push(HttpSession::open(client, &target.url).await?);
    }
    wait_hibernated(2 * count).await?;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let second = rss_kib(pid)?;
    let woken = count.min(200);
    let (mut waking, mut awake) = (Vec::new(), Vec::new());
    for session in sessions.iter_mut().take(woken) {
        let start = Instant::now();
        session.call(&target.tool).await?;
        waking.push(start.elapsed());
        let start = Instant::now();
        session.call(&target.tool).await?;
        awake.push(start.elapsed());
    }
    for session in sessions {
        session.close().await;
    }
    Ok(Hibernated {
        base,
        first,
        second,
        woken,
        waking: summarize(&mut waking),
        awake: summarize(&mut awake),
    })
}

/// Opens `count` idle sessions on a target and closes them; RSS before, with them, after.
async fn idle_sessions(
    client: &reqwest::Client,
    target: &HttpTarget,
    count: usize,
) -> Result<(u64, u64, u64)> {
    let pid = target.pid();
    let base = rss_kib(pid)?;
    eprintln!("  {count} idle sessions on {}", target.name);
    let mut sessions = Vec::with_capacity(count);
    for _ in 0..count {
        sessions.push(HttpSession::open(client, &target.url).await?);
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let with_sessions = rss_kib(pid)?;
    for session in sessions {
        session.close().await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    Ok((base, with_sessions, rss_kib(pid)?))
}

// ===== 5. Big catalog =====

/// Lists every page `plan.catalog_lists` times; the wall times (ms) and the server's CPU time per
/// full list (ms).
async fn list_repeatedly(
    client: &mut StdioClient,
    plan: Plan,
    expected: usize,
) -> Result<(Vec<f64>, f64)> {
    let cpu_before = cpu_seconds(client.pid())?;
    let mut times = Vec::new();
    for _ in 0..plan.catalog_lists {
        let start = Instant::now();
        let names = client.list_tools().await?;
        times.push(start.elapsed().as_secs_f64() * 1e3);
        if names.len() != expected {
            bail!("listed {} tools, expected {expected}", names.len());
        }
    }
    let cpu_ms = (cpu_seconds(client.pid())? - cpu_before) / plan.catalog_lists as f64 * 1e3;
    Ok((times, cpu_ms))
}

async fn big_catalog(report: &mut String, plan: Plan, dir: &Path) -> Result<()> {
    // `catalog_tools` per server in all: the demo server's own tools plus enough extra ones.
    let mut bare_demo = Command::new(DEMO);
    bare_demo.args(["--extra-tools", "0"]);
    let mut probe = StdioClient::spawn(bare_demo, Stdio::null())?;
    probe.initialize().await?;
    let own = probe.list_tools().await?.len();
    probe.close().await;
    let (servers, extra) = (plan.catalog_servers, plan.catalog_tools.saturating_sub(own));
    let config = servers_config(dir, "big", servers, extra)?;
    let mut demo = Command::new(DEMO);
    demo.args(["--extra-tools", &extra.to_string()]);
    let mut probe = StdioClient::spawn(demo, Stdio::null())?;
    probe.initialize().await?;
    let per_server = probe.list_tools().await?.len();
    probe.close().await;
    let empty = servers_config(dir, "none", 0, 0)?;
    let mut bare = StdioClient::spawn(proxy_command(dir, &empty, &[])?, Stdio::null())?;
    bare.initialize().await?;
    let builtin = bare.list_tools().await?.len();
    bare.close().await;

    let expected = builtin + servers * per_server;
    eprintln!("  waiting for {expected} tools from {servers} servers");
    let (start_ms, mut client) = start_until_listed(
        proxy_command(dir, &config, &[])?,
        log_file(dir, "big")?,
        expected,
    )
    .await?;
    let (mut times, cpu_ms) = list_repeatedly(&mut client, plan, expected).await?;
    let pages = expected.div_ceil(1000);
    let rss = rss_kib(client.pid())? as f64 / 1024.0;
    client.close().await;
    let baseline = match baseline_command(dir, &config, &[])? {
        Some(cmd) => {
            let (_, mut client) =
                start_until_listed(cmd, log_file(dir, "big-baseline")?, expected).await?;
            let (mut times, cpu_ms) = list_repeatedly(&mut client, plan, expected).await?;
            client.close().await;
            Some((median(&mut times), cpu_ms))
        }
        None => None,
    };
    let mut direct_times = Vec::new();
    let mut demo = Command::new(DEMO);
    demo.args(["--extra-tools", &extra.to_string()]);
    let mut one = StdioClient::spawn(demo, Stdio::null())?;
    one.initialize().await?;
    for _ in 0..plan.catalog_lists {
        let start = Instant::now();
        one.list_tools().await?;
        direct_times.push(start.elapsed().as_secs_f64() * 1e3);
    }
    one.close().await;
    let fastest = times.iter().copied().fold(f64::INFINITY, f64::min);
    writeln!(
        report,
        "\n### 5. Big catalog: {servers} servers × {per_server} tools = {expected} tools with the built-ins\n"
    )?;
    writeln!(report, "| what | value |\n|---|---:|")?;
    writeln!(
        report,
        "| full `tools/list` through the proxy, all ~{pages} pages (median of {}) | {:.2} ms |",
        plan.catalog_lists,
        median(&mut times)
    )?;
    writeln!(report, "| same, fastest | {fastest:.2} ms |")?;
    writeln!(
        report,
        "| proxy CPU per full `tools/list` (all pages; the proxy process alone) | {cpu_ms:.2} ms |"
    )?;
    if let Some((median, cpu_ms)) = baseline {
        writeln!(
            report,
            "| baseline proxy (`--baseline`): full `tools/list` median / its CPU | {median:.2} ms / {cpu_ms:.2} ms |"
        )?;
    }
    writeln!(
        report,
        "| one demo server's own `tools/list` of {per_server} tools (median) | {:.2} ms |",
        median(&mut direct_times)
    )?;
    writeln!(
        report,
        "| proxy RSS with the catalog loaded | {rss:.1} MiB |"
    )?;
    writeln!(
        report,
        "| start-up to the complete catalog (servers' start-up included) | {start_ms:.0} ms |"
    )?;
    Ok(())
}

// ===== 6. what metrics and traces cost, in alternating rounds =====

/// One way of running the proxy in the alternating comparison.
#[derive(Clone, Copy, PartialEq)]
enum Observing {
    /// The `--baseline` build (the one before metrics and traces, when that is what it is).
    Baseline,
    /// As built: metrics recorded, nobody scraping, tracing off.
    Quiet,
    /// Metrics scraped every second.
    Scraped,
    /// Tracing on, every request sampled, spans exported to the sink.
    Traced,
}

impl Observing {
    fn label(self) -> &'static str {
        match self {
            Observing::Baseline => "off: the `--baseline` build",
            Observing::Quiet => "as built, metrics recorded, not scraped, tracing off",
            Observing::Scraped => "metrics scraped every second",
            Observing::Traced => "tracing on, every request sampled, OTLP to a local sink",
        }
    }

    /// The variants this run has, the reference (off) first.
    fn all() -> Vec<Observing> {
        let mut all = Vec::new();
        if BASELINE.get().is_some() {
            all.push(Observing::Baseline);
        }
        all.extend([Observing::Quiet, Observing::Scraped, Observing::Traced]);
        all
    }

    fn command(self, dir: &Path, config: &Path, extra: &[&str], sink: &str) -> Result<Command> {
        Ok(match self {
            Observing::Baseline => baseline_command(dir, config, extra)?.context("no baseline")?,
            Observing::Quiet | Observing::Scraped => proxy_command(dir, config, extra)?,
            Observing::Traced => traced(proxy_command(dir, config, extra)?, sink),
        })
    }
}

/// A collector stand-in for the rows with tracing on, in a process of its own as a collector is
/// (a sink in the bench's own process shares the bench's runtime and moves the traced rows by
/// several µs a call): answers every OTLP/HTTP export with 200 and says on stdout how many bytes
/// each carried. It costs the host as little as a remote collector would: per export it finds the
/// body's length, reads the body into one buffer and writes one constant answer (no header
/// parsing, no thread per request), so that the HTTP rounds' shared cores carry the proxy's
/// tracing, not the sink's. Stopped when the returned child is dropped.
async fn external_sink(dir: &Path) -> Result<(String, Child, Arc<std::sync::atomic::AtomicU64>)> {
    use std::sync::atomic::{AtomicU64, Ordering};
    const SINK: &str = r#"
import socket, sys, threading
ANSWER = b"HTTP/1.1 200 OK\r\ncontent-type: application/x-protobuf\r\ncontent-length: 0\r\n\r\n"
def serve(connection):
    body = memoryview(bytearray(1 << 16))
    pending = b""
    while True:
        while b"\r\n\r\n" not in pending:
            chunk = connection.recv(65536)
            if not chunk:
                return
            pending += chunk
        head, _, pending = pending.partition(b"\r\n\r\n")
        at = head.lower().find(b"\r\ncontent-length:")
        size = 0
        if at >= 0:
            end = head.find(b"\r\n", at + 2)
            size = int(head[at + 17:end if end > 0 else len(head)])
        left = size - len(pending)
        pending = pending[size:] if left <= 0 else b""
        while left > 0:
            got = connection.recv_into(body, min(left, len(body)))
            if not got:
                return
            left -= got
        connection.sendall(ANSWER)
        sys.stdout.write(f"{size}\n")
        sys.stdout.flush()
listener = socket.create_server(("127.0.0.1", 0))
print(listener.getsockname()[1], flush=True)
while True:
    connection, _ = listener.accept()
    threading.Thread(target=serve, args=(connection,), daemon=True).start()
"#;
    let script = dir.join("otlp_sink.py");
    std::fs::write(&script, SINK)?;
    let mut child = Command::new("python3")
        .arg(&script)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .context("python3 for the OTLP sink")?;
    let mut lines = BufReader::new(child.stdout.take().context("sink stdout")?).lines();
    let port = lines.next_line().await?.context("the sink said no port")?;
    let received = Arc::new(AtomicU64::new(0));
    let counter = received.clone();
    tokio::spawn(async move {
        while let Ok(Some(line)) = lines.next_line().await {
            counter.fetch_add(line.trim().parse().unwrap_or(0), Ordering::Relaxed);
        }
    });
    Ok((format!("http://127.0.0.1:{}", port.trim()), child, received))
}

/// One demo server that traces nothing of its own even when the proxy's environment says to
/// (`OTEL_SDK_DISABLED`), so that a traced row measures the proxy's spans alone.
fn untraced_config(dir: &Path) -> Result<PathBuf> {
    let path = dir.join("observe.json");
    let server = json!({
        "command": DEMO,
        "args": ["--name", "demo"],
        "env": { "OTEL_SDK_DISABLED": "true" },
    });
    std::fs::write(
        &path,
        json!({ "mcpServers": { "demo": server } }).to_string(),
    )?;
    Ok(path)
}

/// Reads `url` every second until dropped: the scraping Prometheus would do, faster.
struct Scraper(tokio::task::JoinHandle<()>);

impl Scraper {
    fn start(client: &reqwest::Client, url: String) -> Scraper {
        let client = client.clone();
        Scraper(tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(1));
            loop {
                tick.tick().await;
                if let Ok(response) = client.get(&url).send().await {
                    let _ = response.bytes().await;
                }
            }
        }))
    }
}

impl Drop for Scraper {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// CPU time of every live thread of `pid` in seconds, to the nanosecond
/// (`/proc/<pid>/task/*/schedstat`): `/proc/<pid>/stat` counts in clock ticks, too coarse to
/// split a few percent of one batch.
fn thread_cpu_seconds(pid: u32) -> Result<f64> {
    let mut nanos = 0u64;
    for task in std::fs::read_dir(format!("/proc/{pid}/task"))? {
        let path = task?.path().join("schedstat");
        // A thread that ended since the listing has nothing left to count.
        if let Ok(text) = std::fs::read_to_string(path) {
            nanos += text
                .split_whitespace()
                .next()
                .and_then(|field| field.parse::<u64>().ok())
                .unwrap_or(0);
        }
    }
    Ok(nanos as f64 / 1e9)
}

/// The figures of each variant over the rounds.
#[derive(Default)]
struct Rounds {
    stdio_cpu_us: Vec<f64>,
    stdio_p50_us: Vec<f64>,
    http_calls: Vec<f64>,
    /// The proxy's own CPU per call over HTTP, every thread: what the variant costs the proxy,
    /// apart from what wrk, the demo server and the sink take from the same cores.
    http_cpu_us: Vec<f64>,
}

/// Calls/s over HTTP at this concurrency in the observability comparison.
const OBSERVE_CONCURRENCY: usize = 32;

/// A fresh proxy of `variant` over stdio: warmed up, then its CPU per call (µs, every thread) and
/// p50 over the plan's calls.
async fn observed_stdio(
    plan: Plan,
    dir: &Path,
    config: &Path,
    sink: &str,
    client: &reqwest::Client,
    variant: Observing,
) -> Result<(f64, f64)> {
    let metrics_port = free_port()?.to_string();
    let mut extra = Vec::new();
    if variant == Observing::Scraped {
        extra.extend(["--metrics-port", metrics_port.as_str()]);
    }
    let cmd = variant.command(dir, config, &extra, sink)?;
    let mut stdio = StdioClient::spawn(cmd, log_file(dir, "observe-stdio")?)?;
    stdio.initialize().await?;
    // Warm-up, and the wait for the echo tool.
    stdio_calls(
        &mut stdio,
        Plan {
            stdio_calls: 0,
            ..plan
        },
        None,
    )
    .await?;
    let _scraper = (variant == Observing::Scraped)
        .then(|| Scraper::start(client, format!("http://127.0.0.1:{metrics_port}/metrics")));
    let tool = echo_tool(&stdio.list_tools().await?)?;
    let pid = stdio.pid();
    let before = thread_cpu_seconds(pid)?;
    let mut samples = Vec::with_capacity(plan.stdio_calls);
    for _ in 0..plan.stdio_calls {
        let start = Instant::now();
        stdio.call(&tool, "hello").await?;
        samples.push(start.elapsed());
    }
    let cpu = thread_cpu_seconds(pid)? - before;
    stdio.close().await;
    Ok((
        cpu / plan.stdio_calls as f64 * 1e6,
        summarize(&mut samples).p50,
    ))
}

/// A fresh proxy of `variant` over HTTP: calls/s of wrk at [`OBSERVE_CONCURRENCY`], and the
/// proxy's CPU per call over wrk's run (µs, every thread).
async fn observed_http(
    plan: Plan,
    dir: &Path,
    (config, sink): (&Path, &str),
    client: &reqwest::Client,
    tools: &HttpTools,
    variant: Observing,
) -> Result<(f64, f64)> {
    let port = free_port()?;
    let port_text = port.to_string();
    let args = [
        "--transport",
        "streamable-http",
        "--port",
        &port_text,
        "--rate-limit-tools",
        "0",
        "--rate-limit-requests",
        "0",
    ];
    let cmd = variant.command(dir, config, &args, sink)?;
    let log = log_file(dir, "observe-http")?;
    let target = HttpTarget::start(variant.label().to_owned(), cmd, port, log, client).await?;
    let _scraper = (variant == Observing::Scraped)
        .then(|| Scraper::start(client, format!("http://127.0.0.1:{port}/metrics")));
    // As `wrk_load`, with the proxy's CPU read around wrk's run alone.
    let result = async {
        let sessions = open_sessions(client, &target, OBSERVE_CONCURRENCY).await?;
        let pid = target.child.id().context("the proxy's pid")?;
        let before = thread_cpu_seconds(pid)?;
        let result = run_wrk(tools, &target, &sessions, plan.http_seconds, dir).await;
        let cpu = thread_cpu_seconds(pid)? - before;
        futures::future::join_all(sessions.into_iter().map(HttpSession::close)).await;
        let result = result?;
        anyhow::Ok((
            result.calls_per_second,
            cpu / result.requests.max(1) as f64 * 1e6,
        ))
    }
    .await;
    stop(target.child).await;
    result
}

/// Every variant of [`Observing`] measured in rounds, each round running them one after the other
/// in a rotated order, so that the machine's drift falls on all of them alike, each run a fresh
/// process, so that one process's luck (where its memory landed) does not stay with a variant:
/// stdio's CPU per call and p50, and calls/s over HTTP at c=32. Medians of the rounds.
async fn observability_overhead(
    report: &mut String,
    plan: Plan,
    dir: &Path,
    tools: Option<&HttpTools>,
) -> Result<()> {
    let variants = Observing::all();
    let config = untraced_config(dir)?;
    let (sink, _sink_process, exported) = external_sink(dir).await?;
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(256)
        .build()?;

    let mut rounds: Vec<Rounds> = variants.iter().map(|_| Rounds::default()).collect();
    for round in 0..plan.observe_rounds {
        for offset in 0..variants.len() {
            let index = (round + offset) % variants.len();
            eprintln!("  stdio round {round}: {}", variants[index].label());
            let (cpu, p50) =
                observed_stdio(plan, dir, &config, &sink, &client, variants[index]).await?;
            rounds[index].stdio_cpu_us.push(cpu);
            rounds[index].stdio_p50_us.push(p50);
        }
    }
    if let Some(tools) = tools {
        for round in 0..plan.observe_rounds {
            for offset in 0..variants.len() {
                let index = (round + offset) % variants.len();
                eprintln!("  HTTP round {round}: {}", variants[index].label());
                let (calls, cpu) =
                    observed_http(plan, dir, (&config, &sink), &client, tools, variants[index])
                        .await?;
                rounds[index].http_calls.push(calls);
                rounds[index].http_cpu_us.push(cpu);
            }
        }
    }
    if exported.load(std::sync::atomic::Ordering::Relaxed) == 0 {
        bail!("the traced proxy exported no spans (logs: observe-*)");
    }

    writeln!(
        report,
        "\n### 6. What metrics and traces cost ({} rounds; a round measures every variant once, \
         in a rotated order; medians)\n",
        plan.observe_rounds
    )?;
    writeln!(
        report,
        "A round starts each variant afresh for {} sequential stdio `tools/call echo` after {} \
         warm-up (CPU: every thread of the proxy, `/proc/<pid>/task/*/schedstat`) and again for {} s of wrk at \
         c={OBSERVE_CONCURRENCY} over HTTP. The downstream demo server traces nothing of its own, \
         so a traced row measures the proxy's spans alone.\n",
        plan.stdio_calls, plan.stdio_warmup, plan.http_seconds
    )?;
    writeln!(
        report,
        "| variant | stdio CPU µs/call | vs off | stdio p50 µs | HTTP calls/s c={OBSERVE_CONCURRENCY} \
         | vs off | HTTP CPU µs/call | vs off | stdio CPU, every round \
         | HTTP calls/s, every round |"
    )?;
    writeln!(report, "|---|---:|---:|---:|---:|---:|---:|---:|---|---|")?;
    // Medians of copies: the rounds keep their order, for the pairing below.
    let medians: Vec<(f64, f64, f64, f64)> = rounds
        .iter()
        .map(|r| {
            (
                median(&mut r.stdio_cpu_us.clone()),
                median(&mut r.stdio_p50_us.clone()),
                median(&mut r.http_calls.clone()),
                median(&mut r.http_cpu_us.clone()),
            )
        })
        .collect();
    // Paired: each round's figure against off's in the same round, then the median of those
    // changes. The machine drifts over a run (a fresh process's CPU per call moves by a fifth
    // from one round to the next); a round's variants run side by side and drift together.
    let paired = |values: &[f64], off: &[f64]| {
        let mut changes: Vec<f64> = values
            .iter()
            .zip(off)
            .filter(|(_, off)| **off > 0.0)
            .map(|(value, off)| 100.0 * (value - off) / off)
            .collect();
        if changes.is_empty() {
            "–".to_owned()
        } else {
            format!("{:+.1}%", median(&mut changes))
        }
    };
    let every = |values: &[f64], digits: usize| {
        let values: Vec<String> = values.iter().map(|v| format!("{v:.digits$}")).collect();
        values.join(", ")
    };
    let off = &rounds[0];
    for ((variant, (cpu, p50, calls, http_cpu)), variant_rounds) in
        variants.iter().zip(&medians).zip(&rounds)
    {
        writeln!(
            report,
            "| {} | {cpu:.1} | {} | {p50:.1} | {calls:.0} | {} | {http_cpu:.1} | {} | {} | {} |",
            variant.label(),
            paired(&variant_rounds.stdio_cpu_us, &off.stdio_cpu_us),
            paired(&variant_rounds.http_calls, &off.http_calls),
            paired(&variant_rounds.http_cpu_us, &off.http_cpu_us),
            every(&variant_rounds.stdio_cpu_us, 1),
            every(&variant_rounds.http_calls, 0),
        )?;
    }
    writeln!(
        report,
        "\n\"Off\" is the first row; \"vs off\" is paired: the median over the rounds of each \
         round's change against off in that round. Target: each variant's stdio CPU per call and \
         HTTP CPU per call (the proxy's own, every thread, over wrk's run) at most 5% above off, \
         and its HTTP calls/s at most 5% below (the cores are shared with wrk, the demo server \
         and the sink)."
    )?;
    Ok(())
}

// ===== 7. A fleet: replicas behind HAProxy on one PostgreSQL =====

/// How many replicas the fleet scenario puts behind HAProxy, in turn.
const FLEET_SIZES: [usize; 3] = [1, 2, 3];
/// The replicas' `--session-key`: each must open the session ids the others sealed.
const FLEET_KEY: &str = "benchmark fleet key";
/// The replicas' log filter: warnings, and the line saying a replica joined its fleet, which the
/// scenario waits for.
const REPLICA_LOG: &str = "warn,pluggedin_mcp_proxy::upstream::http::fleet=info";

/// A PostgreSQL cluster of the run's own, the fleet's shared store: `initdb` into a temp dir and
/// `postgres` on a Unix socket there (no TCP), as the `postgres` user when this process is root
/// (PostgreSQL refuses root). A keeper shell holds it: when the keeper's stdin closes —
/// [`Postgres::stop`], or this process ending, however it ends — it stops the postmaster and
/// removes the dir. The keeper is never killed, which would leave the postmaster running.
struct Postgres {
    keeper: Child,
    dir: PathBuf,
    bin: PathBuf,
}

/// The port in the socket's name: nothing listens on TCP, and the socket's dir is the run's own.
const PG_PORT: &str = "5432";

impl Postgres {
    /// The directory of `initdb`, `postgres`, `pg_isready`, `createdb` and `psql`: `PG_BIN`, else the
    /// newest `/usr/lib/postgresql/*/bin` (Debian keeps them off PATH), else PATH; and the
    /// version `postgres --version` gives.
    fn find() -> Result<(PathBuf, String)> {
        let has_all = |dir: &Path| {
            ["initdb", "postgres", "pg_isready", "createdb", "psql"]
                .iter()
                .all(|b| dir.join(b).is_file())
        };
        let mut debian: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
            .into_iter()
            .flatten()
            .flatten()
            .map(|entry| entry.path().join("bin"))
            .collect();
        debian.sort_by_key(|dir| {
            let version = dir.parent().and_then(Path::file_name);
            version.and_then(|name| name.to_str()?.parse::<u32>().ok())
        });
        let path = std::env::var_os("PATH").unwrap_or_default();
        let bin = std::env::var_os("PG_BIN")
            .map(PathBuf::from)
            .into_iter()
            .chain(debian.into_iter().rev())
            .chain(std::env::split_paths(&path))
            .find(|dir| has_all(dir))
            .context(
                "PostgreSQL is missing (initdb, postgres, pg_isready, createdb, psql; looked in PG_BIN, \
                 /usr/lib/postgresql/*/bin and PATH): the fleet scenario needs it; run \
                 scripts/bench-deps.sh (as root it installs it; or `apt-get install postgresql`), \
                 or leave the scenario out with --only=stdio,startup,http,catalog,observe",
            )?;
        let output = std::process::Command::new(bin.join("postgres"))
            .arg("--version")
            .output()?;
        let version = String::from_utf8_lossy(&output.stdout).trim().to_owned();
        Ok((bin, version))
    }

    async fn start(bin: &Path) -> Result<Postgres> {
        let root = std::process::Command::new("id")
            .arg("-u")
            .output()
            .is_ok_and(|out| String::from_utf8_lossy(&out.stdout).trim() == "0");
        let dir = tempfile::Builder::new()
            .prefix("pluggedin-bench-pg-")
            .tempdir()?
            .keep();
        let started = Self::start_in(bin, &dir, root).await;
        if started.is_err() {
            let _ = std::fs::remove_dir_all(&dir);
        }
        started
    }

    async fn start_in(bin: &Path, dir: &Path, root: bool) -> Result<Postgres> {
        if root {
            let id = |which: &str| -> Result<u32> {
                let out = std::process::Command::new("id")
                    .args([which, "postgres"])
                    .output()?;
                String::from_utf8_lossy(&out.stdout).trim().parse().context(
                    "running as root, PostgreSQL runs as the `postgres` user, and there is none: \
                     install the Debian package postgresql (scripts/bench-deps.sh)",
                )
            };
            std::os::unix::fs::chown(dir, Some(id("-u")?), Some(id("-g")?))?;
        }
        let as_owner = |program: &Path| {
            let mut command = if root {
                let mut command = Command::new("setpriv");
                command
                    .args([
                        "--reuid=postgres",
                        "--regid=postgres",
                        "--init-groups",
                        "--",
                    ])
                    .arg(program);
                command
            } else {
                Command::new(program)
            };
            command.current_dir(dir);
            command
        };
        let initdb = as_owner(&bin.join("initdb"))
            .arg("-D")
            .arg(dir.join("data"))
            .args(["-U", "postgres", "-A", "trust", "-E", "UTF8", "--locale=C"])
            .args(["--no-sync", "--no-instructions"])
            .output()
            .await
            .context("cannot run initdb")?;
        if !initdb.status.success() {
            bail!(
                "initdb failed: {}{}",
                String::from_utf8_lossy(&initdb.stdout),
                String::from_utf8_lossy(&initdb.stderr)
            );
        }
        // $1: the binaries, $2: the dir, $3: this checkout (in the postmaster's command line, so
        // `scripts/leftovers.sh` finds one that outlived its run), $4: the port.
        let script = r#"
            bin=$1 dir=$2 checkout=$3 port=$4
            "$bin/postgres" -D "$dir/data" -k "$dir" -p "$port" -c listen_addresses= \
                -c fsync=off -c synchronous_commit=off -c full_page_writes=off \
                -c max_connections=200 -c "pluggedin.checkout=$checkout" \
                </dev/null >>"$dir/postgres.log" 2>&1 &
            postmaster=$!
            while read -r _; do :; done
            kill -INT "$postmaster" 2>/dev/null
            wait "$postmaster"
            rm -rf "$dir"
        "#;
        let mut keeper = as_owner(Path::new("/bin/sh"))
            .args(["-c", script, "pluggedin-bench-postgres"])
            .arg(bin)
            .arg(dir)
            .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/"))
            .arg(PG_PORT)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("cannot start PostgreSQL's keeper")?;
        let deadline = Instant::now() + Duration::from_secs(90);
        loop {
            let ready = Command::new(bin.join("pg_isready"))
                .arg("-q")
                .arg("-h")
                .arg(dir)
                .args(["-p", PG_PORT, "-U", "postgres", "-d", "postgres"])
                .status()
                .await?;
            if ready.success() {
                break;
            }
            if keeper.try_wait()?.is_some() || Instant::now() > deadline {
                let log = std::fs::read_to_string(dir.join("postgres.log")).unwrap_or_default();
                drop(keeper.stdin.take());
                let _ = keeper.wait().await;
                bail!("PostgreSQL did not start: {log}");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Ok(Postgres {
            keeper,
            dir: dir.to_owned(),
            bin: bin.to_owned(),
        })
    }

    /// A new, empty database `name`; its `postgres://` URL, as `--database-url` takes it.
    async fn database(&self, name: &str) -> Result<String> {
        let output = Command::new(self.bin.join("createdb"))
            .arg("-h")
            .arg(&self.dir)
            .args(["-p", PG_PORT, "-U", "postgres", name])
            .output()
            .await
            .context("cannot run createdb")?;
        if !output.status.success() {
            bail!(
                "createdb {name} failed: {}",
                String::from_utf8_lossy(&output.stderr)
            );
        }
        Ok(format!(
            "postgres:///{name}?host={}&port={PG_PORT}&user=postgres",
            self.dir.display()
        ))
    }

    /// The one value `sql` gives on `database`, as text.
    async fn value(&self, database: &str, sql: &str) -> Result<String> {
        let output = Command::new(self.bin.join("psql"))
            .arg("-h")
            .arg(&self.dir)
            .args([
                "-p", PG_PORT, "-U", "postgres", "-d", database, "-XAtc", sql,
            ])
            .output()
            .await
            .context("cannot run psql")?;
        if !output.status.success() {
            bail!("psql {sql:?}: {}", String::from_utf8_lossy(&output.stderr));
        }
        Ok(String::from_utf8_lossy(&output.stdout).trim().to_owned())
    }

    /// Closes the keeper's stdin, so it stops the postmaster and removes the dir; waits for it.
    async fn stop(mut self) {
        drop(self.keeper.stdin.take());
        let _ = tokio::time::timeout(Duration::from_secs(30), self.keeper.wait()).await;
    }
}

/// One replica of the fleet: the proxy on the shared store, on a port it bound itself.
struct Replica {
    child: Child,
    port: u16,
}

impl Replica {
    /// Starts replica `name` on `database` and waits until it has joined the fleet and is ready
    /// (`GET /health/ready` 200: its demo server connected).
    async fn start(
        dir: &Path,
        config: &Path,
        database: &str,
        name: &str,
        client: &reqwest::Client,
    ) -> Result<Replica> {
        let data = tempfile::Builder::new()
            .prefix("data")
            .tempdir_in(dir)?
            .keep();
        let log = dir.join(format!("{name}.log"));
        let mut args = http_args("0").to_vec();
        args.extend(["--database-url", database, "--session-key", FLEET_KEY].map(str::to_owned));
        let mut child = Command::new(PROXY)
            .arg("--config")
            .arg(config)
            .arg("--data-dir")
            .arg(data)
            .args(["--log-level", REPLICA_LOG])
            .args(&args)
            .env_remove("RUST_LOG")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(File::create(&log)?)
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("spawn {name}"))?;
        let deadline = Instant::now() + Duration::from_secs(60);
        // `pluggedin-mcp-proxy listening on http://127.0.0.1:PORT/mcp (…)`, then the line saying
        // it joined the fleet.
        let port = loop {
            let text = std::fs::read_to_string(&log).unwrap_or_default();
            let port = text
                .lines()
                .filter_map(|line| line.split_once("listening on http://127.0.0.1:"))
                .find_map(|(_, rest)| rest.split('/').next()?.parse::<u16>().ok());
            if let Some(port) = port.filter(|_| text.contains("joined the fleet")) {
                break port;
            }
            if let Some(status) = child.try_wait()? {
                bail!("{name} exited before joining the fleet ({status}): {text}");
            }
            if Instant::now() > deadline {
                bail!("{name} did not join the fleet in 60 s: {text}");
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        let ready = format!("http://127.0.0.1:{port}/health/ready");
        loop {
            let response = client.get(&ready).send().await?;
            if response.status().is_success() {
                break;
            }
            if Instant::now() > deadline {
                bail!("{name} not ready in 60 s: {}", response.text().await?);
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        Ok(Replica { child, port })
    }

    fn pid(&self) -> u32 {
        self.child.id().unwrap_or(0)
    }

    /// Its counter `name` (`pluggedin_proxy_…`) so far.
    async fn counter(&self, client: &reqwest::Client, name: &str) -> Result<f64> {
        let page = client
            .get(format!("http://127.0.0.1:{}/metrics", self.port))
            .send()
            .await?
            .text()
            .await?;
        Ok(page
            .lines()
            .filter(|line| {
                let sample = line.split(['{', ' ']).next().unwrap_or_default();
                sample.strip_suffix("_total").unwrap_or(sample) == name
            })
            .filter_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
            .sum())
    }
}

/// One level of the fleet scenario: wrk's figures, and what the processes spent.
struct FleetLevel {
    target: usize,
    concurrency: usize,
    result: Throughput,
    /// The share of requests a replica passed to their session's home (none without a fleet).
    forwarded: Option<f64>,
    /// Sessions a replica took over from another it counted gone, from opening the level's
    /// sessions to the end of wrk's run (none without a fleet).
    adopted: Option<f64>,
    /// CPU per request of the proxies (every replica; their demo server children excluded).
    proxies_cpu_us: f64,
    /// CPU per request of HAProxy, when it is in front.
    haproxy_cpu_us: Option<f64>,
}

/// The processes a fleet-scenario level measures.
struct FleetParts<'a> {
    target: &'a HttpTarget,
    replicas: &'a [Replica],
    /// The one proxy without a fleet, or HAProxy in front of the replicas.
    alone: bool,
}

/// wrk at each concurrency level on `parts.target`, with the CPU time of the proxies and of
/// HAProxy and the requests the replicas forwarded, read just before and just after wrk runs.
async fn fleet_levels(
    tools: &HttpTools,
    client: &reqwest::Client,
    parts: FleetParts<'_>,
    index: usize,
    plan: Plan,
    dir: &Path,
) -> Result<Vec<FleetLevel>> {
    let proxies: Vec<u32> = if parts.alone {
        vec![parts.target.pid()]
    } else {
        parts.replicas.iter().map(Replica::pid).collect()
    };
    let cpu = |pids: &[u32]| -> Result<f64> { pids.iter().map(|&pid| cpu_seconds(pid)).sum() };
    let counter = async |name: &str| -> Result<f64> {
        let mut sum = 0.0;
        for replica in parts.replicas {
            sum += replica.counter(client, name).await?;
        }
        Ok(sum)
    };
    const FORWARDED: &str = "pluggedin_proxy_fleet_forwarded";
    const ADOPTED: &str = "pluggedin_proxy_sessions_adopted";
    let mut levels = Vec::new();
    for concurrency in CONCURRENCY {
        eprintln!("  {} at c={concurrency}", parts.target.name);
        let adopted_before = counter(ADOPTED).await?;
        let sessions = open_sessions(client, parts.target, concurrency).await?;
        let forwarded_before = counter(FORWARDED).await?;
        let proxies_before = cpu(&proxies)?;
        let haproxy_before = cpu(&[parts.target.pid()])?;
        let result = run_wrk(tools, parts.target, &sessions, plan.http_seconds, dir).await;
        let proxies_after = cpu(&proxies)?;
        let haproxy_after = cpu(&[parts.target.pid()])?;
        let forwarded_after = counter(FORWARDED).await?;
        let adopted = counter(ADOPTED).await? - adopted_before;
        futures::future::join_all(sessions.into_iter().map(HttpSession::close)).await;
        let result = result?;
        let requests = result.requests.max(1) as f64;
        levels.push(FleetLevel {
            target: index,
            concurrency,
            forwarded: (!parts.alone).then(|| (forwarded_after - forwarded_before) / requests),
            adopted: (!parts.alone).then_some(adopted),
            proxies_cpu_us: 1e6 * (proxies_after - proxies_before) / requests,
            haproxy_cpu_us: (!parts.alone)
                .then(|| 1e6 * (haproxy_after - haproxy_before) / requests),
            result,
        });
    }
    Ok(levels)
}

/// One proxy alone (no database, as in the HTTP scenario), then 1, 2 and 3 replicas on one
/// PostgreSQL database behind HAProxy in round robin, nothing pinned: a session's requests land
/// on every replica in turn and those that land off its home are passed there.
async fn fleet(
    report: &mut String,
    plan: Plan,
    dir: &Path,
    tools: &HttpTools,
    (pg_bin, pg_version): (&Path, &str),
) -> Result<()> {
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(256)
        .build()?;
    let config = servers_config(dir, "fleet-demo", 1, 0)?;
    let mut names = Vec::new();
    let mut levels = Vec::new();

    let port = free_port()?;
    let args = http_args(&port.to_string());
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    names.push("pluggedin-mcp-proxy alone, no database".to_owned());
    let alone = HttpTarget::start(
        names[0].clone(),
        proxy_command(dir, &config, &args)?,
        port,
        log_file(dir, "fleet-alone")?,
        &client,
    )
    .await?;
    let parts = FleetParts {
        target: &alone,
        replicas: &[],
        alone: true,
    };
    let measured = fleet_levels(tools, &client, parts, 0, plan, dir).await;
    stop(alone.child).await;
    levels.extend(measured?);

    let postgres = Postgres::start(pg_bin).await?;
    let mut measured = Ok(());
    for size in FLEET_SIZES {
        let name = format!(
            "HAProxy → {size} {} on PostgreSQL",
            if size == 1 { "replica" } else { "replicas" }
        );
        names.push(name.clone());
        let target = (names.len() - 1, name);
        match fleet_of(
            &postgres,
            size,
            target,
            &config,
            (tools, &client),
            plan,
            dir,
        )
        .await
        {
            Ok(rows) => levels.extend(rows),
            Err(error) => {
                measured = Err(error);
                break;
            }
        }
    }
    postgres.stop().await;
    measured?;

    fleet_report(report, plan, tools, pg_version, &names, &levels)
}

/// `size` replicas on a database of their own, HAProxy in front, measured as target `index`;
/// then stopped.
async fn fleet_of(
    postgres: &Postgres,
    size: usize,
    (index, name): (usize, String),
    config: &Path,
    (tools, client): (&HttpTools, &reqwest::Client),
    plan: Plan,
    dir: &Path,
) -> Result<Vec<FleetLevel>> {
    let name_of_database = format!("fleet{size}");
    let database = postgres.database(&name_of_database).await?;
    let mut replicas = Vec::new();
    for index in 0..size {
        let replica_name = format!("fleet{size}-replica{index}");
        replicas.push(Replica::start(dir, config, &database, &replica_name, client).await?);
    }
    // A replica learns of the others on its heartbeat (every 2 s): until it has beaten since the
    // last one joined, a request for that one's sessions looks the home up in the store first,
    // which the measured calls should not include. Every replica's row refreshed after the last
    // join says each has read the others since.
    let beaten =
        "SELECT count(*) FROM replicas WHERE seen_at > (SELECT max(started_at) FROM replicas)";
    let deadline = Instant::now() + Duration::from_secs(30);
    while postgres.value(&name_of_database, beaten).await? != size.to_string() {
        if Instant::now() > deadline {
            bail!("the {size} replicas did not all beat within 30 s of the last one joining");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let port = free_port()?;
    let backends: Vec<u16> = replicas.iter().map(|r| r.port).collect();
    let mut haproxy = Command::new(&tools.haproxy);
    haproxy.arg("-db").arg("-f").arg(haproxy_config(
        dir,
        &format!("fleet{size}-haproxy"),
        port,
        &backends,
    )?);
    let log = log_file(dir, &format!("fleet{size}-haproxy"))?;
    let balancer = HttpTarget::start(name, haproxy, port, log, client).await?;
    let parts = FleetParts {
        target: &balancer,
        replicas: &replicas,
        alone: false,
    };
    let measured = fleet_levels(tools, client, parts, index, plan, dir).await;
    stop(balancer.child).await;
    for replica in replicas {
        stop(replica.child).await;
    }
    measured
}

fn fleet_report(
    report: &mut String,
    plan: Plan,
    tools: &HttpTools,
    pg_version: &str,
    names: &[String],
    levels: &[FleetLevel],
) -> Result<()> {
    let level = |target: usize, concurrency: usize| {
        levels
            .iter()
            .find(|l| l.target == target && l.concurrency == concurrency)
    };
    let calls = |target: usize, concurrency: usize| {
        level(target, concurrency).map_or(0.0, |l| l.result.calls_per_second)
    };
    let share =
        |value: Option<f64>| value.map_or("–".to_owned(), |v| format!("{:.0}%", 100.0 * v));
    writeln!(
        report,
        "\n### 7. Fleet: replicas behind HAProxy on one PostgreSQL ({} s per level; c sessions \
         and c connections, wrk with one thread)\n",
        plan.http_seconds
    )?;
    writeln!(
        report,
        "| target | c | calls/s | % of the proxy alone | p50 µs | p99 µs | passed to the home \
         replica | sessions adopted | CPU µs/call, proxies | CPU µs/call, HAProxy | errors |"
    )?;
    writeln!(
        report,
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
    )?;
    for l in levels {
        let alone = calls(0, l.concurrency);
        writeln!(
            report,
            "| {} | {} | {:.0} | {} | {:.0} | {:.0} | {} | {} | {:.1} | {} | {} |",
            names[l.target],
            l.concurrency,
            l.result.calls_per_second,
            share((alone > 0.0).then(|| l.result.calls_per_second / alone)),
            l.result.summary.p50,
            l.result.summary.p99,
            share(l.forwarded),
            l.adopted.map_or("–".to_owned(), |n| format!("{n:.0}")),
            l.proxies_cpu_us,
            l.haproxy_cpu_us
                .map_or("–".to_owned(), |cpu| format!("{cpu:.1}")),
            l.result.errors
        )?;
    }
    writeln!(
        report,
        "\nLoad: {} as in the HTTP scenario (`-t1`, `benches/calls.lua`, c sessions opened through \
         the target, 5 warm-up calls each). The proxy alone is the HTTP scenario's proxy (SQLite \
         store, no fleet). Each fleet is {} (the HTTP scenario's settings) in front of N \
         replicas (`--database-url`, one database per fleet, `--session-key`), each with its own \
         demo server over stdio: \
         `balance roundrobin`, nothing pinned, so each request goes to the next replica and one \
         landing off its session's home is passed there. \"Passed to the home replica\": the \
         replicas' `pluggedin_proxy_fleet_forwarded` over the requests of the level (requests still \
         in flight when wrk stops are passed on but not counted by wrk: a few % more at c=128); \
         (N − 1) / N is expected. Sessions adopted: `pluggedin_proxy_sessions_adopted` over the \
         level, 0 expected (no replica is gone; measuring starts once every replica has read the \
         others, its heartbeat after the last one joined). CPU per call: \
         utime+stime of the proxies (every replica; demo servers excluded) and of HAProxy over the \
         level's requests. PostgreSQL: {pg_version}, on a Unix socket.",
        tools.wrk_version, tools.haproxy_version
    )?;

    // The cost per call: sequential calls (c=1) take 1 / calls/s each.
    writeln!(
        report,
        "\n#### What the fleet adds per call (c=1: one call at a time, 1 / calls/s each)\n"
    )?;
    writeln!(
        report,
        "| target | µs per call | added over the proxy alone | added over 1 replica | passed \
         on | added per passed call |"
    )?;
    writeln!(report, "|---|---:|---:|---:|---:|---:|")?;
    let micros = |target: usize| {
        let calls = calls(target, 1);
        if calls > 0.0 { 1e6 / calls } else { 0.0 }
    };
    for (target, name) in names.iter().enumerate() {
        let forwarded = level(target, 1).and_then(|l| l.forwarded);
        let over_one = micros(target) - micros(1);
        let per_passed = forwarded
            .filter(|&share| target > 1 && share > 0.0)
            .map_or("–".to_owned(), |share| {
                format!("{:+.1}", over_one / share)
            });
        writeln!(
            report,
            "| {name} | {:.1} | {:+.1} | {} | {} | {per_passed} |",
            micros(target),
            micros(target) - micros(0),
            if target > 1 {
                format!("{over_one:+.1}")
            } else {
                "–".to_owned()
            },
            share(forwarded),
        )?;
    }
    writeln!(
        report,
        "\nAdded over 1 replica, divided by the share of calls passed on, is what one forward \
         hop (replica to replica over HTTP) costs the call that takes it."
    )?;
    let errors: usize = levels.iter().map(|l| l.result.errors).sum();
    writeln!(
        report,
        "\nTarget: zero errors, every target and level: {errors} {}.",
        met(errors == 0)
    )?;
    Ok(())
}
