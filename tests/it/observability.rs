//! Metrics as an operator reads them: a real Prometheus server scrapes the proxy and is queried
//! through its HTTP API; `promtool` checks the text format; stdio mode's `--metrics-port`.

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use rmcp::model::CallToolRequestParams;
use serde_json::{Value, json};

use crate::http::{HttpProxy, NO_LIMITS};
use crate::support::*;

/// The port a process listens on, read from `/proc` (its socket inodes against the kernel's
/// table of listening TCP sockets): Prometheus binds `:0` but logs the address it was given.
async fn listening_port(pid: u32) -> u16 {
    let found = tokio::time::timeout(WAIT, async {
        loop {
            if let Some(port) = port_of(pid) {
                return port;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await;
    found.unwrap_or_else(|_| panic!("process {pid} listens on no TCP port"))
}

fn port_of(pid: u32) -> Option<u16> {
    let inodes: Vec<String> = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .ok()?
        .filter_map(|entry| std::fs::read_link(entry.ok()?.path()).ok())
        .filter_map(|target| {
            let target = target.to_str()?;
            Some(
                target
                    .strip_prefix("socket:[")?
                    .strip_suffix(']')?
                    .to_owned(),
            )
        })
        .collect();
    let table = std::fs::read_to_string("/proc/net/tcp").ok()?;
    table.lines().skip(1).find_map(|line| {
        let fields: Vec<&str> = line.split_whitespace().collect();
        // local address, state 0A (listen), inode
        let listening = fields.get(3) == Some(&"0A");
        let ours = fields
            .get(9)
            .is_some_and(|inode| inodes.iter().any(|i| i == inode));
        (listening && ours)
            .then(|| u16::from_str_radix(fields[1].rsplit(':').next()?, 16).ok())
            .flatten()
    })
}

/// A Prometheus server scraping `target` (`host:port`) every second, its data in `dir`.
struct Prometheus {
    _server: Background,
    api: String,
}

impl Prometheus {
    async fn start(dir: &Path, target: &str) -> Prometheus {
        let config = dir.join("prometheus.yml");
        std::fs::write(
            &config,
            format!(
                "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\nscrape_configs:\n  \
                 - job_name: proxy\n    static_configs:\n      - targets: ['{target}']\n"
            ),
        )
        .unwrap();
        let server = Background::start(
            "prometheus",
            &[
                &format!("--config.file={}", config.display()),
                &format!("--storage.tsdb.path={}", dir.join("data").display()),
                "--web.listen-address=127.0.0.1:0",
            ],
            &[],
            "Server is ready to receive web requests",
        )
        .await;
        let port = listening_port(server.child.id().unwrap()).await;
        Prometheus {
            _server: server,
            api: format!("http://127.0.0.1:{port}/api/v1"),
        }
    }

    /// An instant query's vector: each sample's labels and value.
    async fn query(&self, promql: &str) -> Vec<(Value, f64)> {
        let mut url = url::Url::parse(&format!("{}/query", self.api)).unwrap();
        url.query_pairs_mut().append_pair("query", promql);
        let body: Value = reqwest::Client::new()
            .get(url)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(body["status"], "success", "{promql}: {body}");
        body["data"]["result"]
            .as_array()
            .unwrap()
            .iter()
            .map(|sample| {
                let value = sample["value"][1].as_str().unwrap().parse().unwrap();
                (sample["metric"].clone(), value)
            })
            .collect()
    }

    /// A query's samples as two of their labels (absent: empty) and the value, sorted.
    async fn by_two(&self, promql: &str, (a, b): (&str, &str)) -> Vec<(String, String, f64)> {
        let mut samples: Vec<(String, String, f64)> = self
            .query(promql)
            .await
            .into_iter()
            .map(|(labels, value)| {
                let label = |name: &str| labels[name].as_str().unwrap_or("").to_owned();
                (label(a), label(b), value)
            })
            .collect();
        samples.sort_by(|x, y| x.partial_cmp(y).unwrap());
        samples
    }

    /// Queries until the single value of `promql` is `expected` (a scrape after the calls has
    /// landed); the last answer otherwise.
    async fn until(&self, promql: &str, expected: f64) -> Vec<(Value, f64)> {
        let mut last = Vec::new();
        for _ in 0..600 {
            last = self.query(promql).await;
            if last.len() == 1 && last[0].1 == expected {
                return last;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        last
    }
}

#[tokio::test]
async fn prometheus_scrapes_tool_calls_with_their_error_split_and_histograms() {
    let proxy = HttpProxy::start(json!({"demo": demo()}), NO_LIMITS).await;
    let client = proxy.client().await;
    let call = |name: &str, arguments: Value| {
        let mut params = CallToolRequestParams::new(name.to_owned());
        params.arguments = arguments.as_object().cloned();
        client.peer().call_tool(params)
    };
    // 5 answered, 3 with the tool's own error, 2 refused (no such tool): 10 calls.
    for i in 0..5 {
        let result = call("demo__echo", json!({"message": format!("m{i}")})).await;
        assert!(result.unwrap().is_error != Some(true));
    }
    for _ in 0..3 {
        let result = call("demo__test_error_handling", json!({})).await.unwrap();
        assert_eq!(result.is_error, Some(true));
    }
    for _ in 0..2 {
        assert!(call("demo__no_such_tool", json!({})).await.is_err());
    }

    let proxy_port = url::Url::parse(&proxy.url).unwrap().port().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let prometheus = Prometheus::start(dir.path(), &format!("127.0.0.1:{proxy_port}")).await;
    let server_calls =
        "mcp_server_operation_duration_seconds_count{mcp_method_name=\"tools/call\"}";
    let total = prometheus
        .until(&format!("sum({server_calls})"), 10.0)
        .await;
    assert_eq!(total.len(), 1, "{total:?}\n{}", proxy.log.text());
    assert_eq!(total[0].1, 10.0, "{total:?}");

    let split = prometheus
        .by_two(
            &format!("sum by (error_type, gen_ai_tool_name) ({server_calls})"),
            ("error_type", "gen_ai_tool_name"),
        )
        .await;
    assert_eq!(
        split,
        [
            (String::new(), "demo__echo".to_owned(), 5.0),
            // A name the catalog does not serve gets no label of its own.
            ("-32602".to_owned(), String::new(), 2.0),
            (
                "tool_error".to_owned(),
                "demo__test_error_handling".to_owned(),
                3.0
            ),
        ]
    );

    // The downstream side: the 8 calls that reached the server, by server and its own name.
    let client_calls = prometheus
        .by_two(
            "sum by (server, gen_ai_tool_name) \
             (mcp_client_operation_duration_seconds_count{mcp_method_name=\"tools/call\"})",
            ("server", "gen_ai_tool_name"),
        )
        .await;
    assert_eq!(
        client_calls,
        [
            ("demo".to_owned(), "echo".to_owned(), 5.0),
            ("demo".to_owned(), "test_error_handling".to_owned(), 3.0),
        ]
    );

    // Histograms: the conventions' buckets, cumulative to +Inf, and a sum.
    let echo = "{mcp_method_name=\"tools/call\",gen_ai_tool_name=\"demo__echo\"}";
    let buckets = prometheus
        .query(&format!(
            "mcp_server_operation_duration_seconds_bucket{echo}"
        ))
        .await;
    let mut bounds: Vec<String> = buckets
        .iter()
        .map(|(labels, _)| labels["le"].as_str().unwrap().to_owned())
        .collect();
    bounds.sort_by(|a, b| {
        let bound = |text: &str| text.parse::<f64>().unwrap_or(f64::INFINITY);
        bound(a).total_cmp(&bound(b))
    });
    assert_eq!(
        bounds,
        [
            "0.01", "0.02", "0.05", "0.1", "0.2", "0.5", "1", "2", "5", "10", "30", "60", "120",
            "300", "+Inf"
        ]
    );
    let infinite = buckets.iter().find(|(labels, _)| labels["le"] == "+Inf");
    assert_eq!(infinite.unwrap().1, 5.0);
    let sum = prometheus
        .query(&format!("mcp_server_operation_duration_seconds_sum{echo}"))
        .await;
    assert!(sum.len() == 1 && sum[0].1 > 0.0, "{sum:?}");
    let quantile = prometheus
        .query(&format!(
            "histogram_quantile(0.5, sum by (le) (mcp_server_operation_duration_seconds_bucket{echo}))"
        ))
        .await;
    assert!(quantile.len() == 1 && quantile[0].1 > 0.0, "{quantile:?}");

    // What a gateway adds: the server is connected, its tools counted, one live session.
    let state = prometheus
        .query("pluggedin_proxy_server_state{server=\"demo\",state=\"connected\"}")
        .await;
    assert_eq!(state.len(), 1, "{state:?}");
    assert_eq!(state[0].1, 1.0);
    let sessions = prometheus
        .query("pluggedin_proxy_sessions{state=\"live\"}")
        .await;
    assert_eq!(sessions[0].1, 1.0, "{sessions:?}");
    let opened = prometheus
        .query("pluggedin_proxy_sessions_opened_total")
        .await;
    assert_eq!(opened[0].1, 1.0, "{opened:?}");
    let tools = prometheus
        .query("pluggedin_proxy_catalog_tools{server=\"demo\"}")
        .await;
    assert!(tools[0].1 > 10.0, "{tools:?}");
    // Every query of the example Grafana dashboard parses and finds its series.
    let dashboard: Value = serde_json::from_str(
        &std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/grafana-dashboard.json"),
        )
        .unwrap(),
    )
    .unwrap();
    for panel in dashboard["panels"].as_array().unwrap() {
        for target in panel["targets"].as_array().unwrap() {
            let expr = target["expr"]
                .as_str()
                .unwrap()
                .replace("$__rate_interval", "1m");
            // `query` asserts Prometheus took it; the gauges and counts have samples already.
            let samples = prometheus.query(&expr).await;
            if !expr.contains("rate(") && !expr.contains("increase(") {
                assert!(!samples.is_empty(), "{expr} found nothing");
            }
        }
    }
    // Prometheus asks for OpenMetrics and got it: the scrape is healthy.
    let up = prometheus.query("up{job=\"proxy\"}").await;
    assert_eq!(up[0].1, 1.0, "{up:?}");
    client.cancel().await.unwrap();
}

/// The text format passes `promtool check metrics` (Prometheus's own parser and linter), and the
/// OpenMetrics one is what a scraper asking for it gets.
#[tokio::test]
async fn both_formats_parse_and_say_their_content_type() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let proxy = HttpProxy::start(json!({"demo": demo()}), NO_LIMITS).await;
    let client = proxy.client().await;
    let mut params = CallToolRequestParams::new("demo__echo");
    params.arguments = json!({"message": "x"}).as_object().cloned();
    client.peer().call_tool(params).await.unwrap();
    let metrics = proxy.url.replace("/mcp", "/metrics");

    let text = reqwest::get(&metrics).await.unwrap();
    assert_eq!(
        text.headers()["content-type"],
        "text/plain; version=0.0.4; charset=utf-8"
    );
    let text = text.text().await.unwrap();
    assert!(!text.contains("# EOF"));
    let mut promtool = tokio::process::Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    use tokio::io::AsyncWriteExt;
    let mut stdin = promtool.stdin.take().unwrap();
    stdin.write_all(text.as_bytes()).await.unwrap();
    drop(stdin);
    let checked = promtool.wait_with_output().await.unwrap();
    assert!(
        checked.status.success(),
        "promtool: {}{}\n{text}",
        String::from_utf8_lossy(&checked.stdout),
        String::from_utf8_lossy(&checked.stderr)
    );

    let open = reqwest::Client::new()
        .get(&metrics)
        .header(
            "accept",
            "application/openmetrics-text;version=1.0.0,text/plain;q=0.5",
        )
        .send()
        .await
        .unwrap();
    assert_eq!(
        open.headers()["content-type"],
        "application/openmetrics-text; version=1.0.0; charset=utf-8"
    );
    let open = open.text().await.unwrap();
    assert!(open.ends_with("# EOF\n"), "{open}");
    assert!(open.contains("# UNIT mcp_server_operation_duration_seconds seconds"));
    client.cancel().await.unwrap();
}

/// Under `--require-api-auth`, `/metrics` names servers and tools only to a token holder.
#[tokio::test]
async fn metrics_need_a_token_where_the_endpoint_does() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let mut args = NO_LIMITS.to_vec();
    args.extend([
        "--require-api-auth",
        "--auth-token",
        "s3cret-token-for-metrics",
    ]);
    let proxy = HttpProxy::start(json!({"demo": demo()}), &args).await;
    let metrics = proxy.url.replace("/mcp", "/metrics");
    let refused = reqwest::get(&metrics).await.unwrap();
    assert_eq!(refused.status(), 401);
    let served = reqwest::Client::new()
        .get(&metrics)
        .bearer_auth("s3cret-token-for-metrics")
        .send()
        .await
        .unwrap();
    assert_eq!(served.status(), 200);
    assert!(
        served
            .text()
            .await
            .unwrap()
            .contains("pluggedin_proxy_server_state")
    );
}

/// Stdio mode: `--metrics-port` serves the same page on loopback, the transport `pipe`.
#[tokio::test]
async fn stdio_mode_serves_metrics_on_its_own_port() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let proxy = proxy()
        .server("demo", demo())
        .arg("--metrics-port")
        .arg("0")
        .start_after(Some("metrics at http://"))
        .await;
    proxy.call_text("demo__echo", json!({"message": "x"})).await;
    proxy.tool_names().await;
    let log = proxy.log.text();
    let (_, after) = log.split_once("metrics at ").unwrap();
    let url = after.split_whitespace().next().unwrap().to_owned();
    let text = reqwest::get(&url).await.unwrap().text().await.unwrap();
    let line = text
        .lines()
        .find(|line| {
            line.starts_with("mcp_server_operation_duration_seconds_count")
                && line.contains("demo__echo")
        })
        .unwrap_or_else(|| panic!("{text}"));
    assert!(line.contains("network_transport=\"pipe\""), "{line}");
    assert!(line.ends_with(" 1"), "{line}");
    // `tools/list` is answered from encoded pages on this path, and counted all the same.
    assert!(
        text.lines().any(|line| {
            line.starts_with("mcp_server_operation_duration_seconds_count")
                && line.contains("mcp_method_name=\"tools/list\"")
                && line.contains("network_transport=\"pipe\"")
        }),
        "{text}"
    );
    let elsewhere = reqwest::get(url.replace("/metrics", "/mcp")).await.unwrap();
    assert_eq!(elsewhere.status(), 404);
}

/// The OTLP receiver (`tests/servers/otlp_receiver.py`, on the official protobuf definitions).
struct Receiver {
    server: Background,
    url: String,
}

impl Receiver {
    async fn start() -> Receiver {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/servers/otlp_receiver.py");
        let python = venv_python();
        let server = Background::start(
            python.to_str().unwrap(),
            &[script.to_str().unwrap()],
            &[],
            "listening on",
        )
        .await;
        let url = listening_url(&server.log).await;
        Receiver { server, url }
    }

    /// The spans received so far in `trace`.
    fn spans(&self, trace: &str) -> Vec<Value> {
        self.server
            .log
            .text()
            .lines()
            .filter_map(|line| line.strip_prefix("span "))
            .map(|line| serde_json::from_str::<Value>(line).unwrap())
            .filter(|span| span["trace_id"] == trace)
            .collect()
    }

    /// Waits until `trace` has a span that `pick` accepts.
    async fn span(&self, trace: &str, pick: impl Fn(&Value) -> bool) -> Value {
        let found = tokio::time::timeout(WAIT, async {
            loop {
                if let Some(span) = self.spans(trace).into_iter().find(&pick) {
                    return span;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        })
        .await;
        found.unwrap_or_else(|_| {
            panic!(
                "no such span in {:#?}\n{}",
                self.spans(trace),
                self.server.log.text()
            )
        })
    }

    /// The environment that sends a process's spans here, as `service`.
    fn env(&self, service: &str) -> Vec<(&'static str, String)> {
        vec![
            ("OTEL_EXPORTER_OTLP_ENDPOINT", self.url.clone()),
            ("OTEL_SERVICE_NAME", service.to_owned()),
            ("OTEL_BSP_SCHEDULE_DELAY", "50".to_owned()),
        ]
    }
}

const TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const CLIENT_SPAN: &str = "00f067aa0ba902b7";

/// One trace from the client through the proxy into the demo server: the proxy's server span is
/// the client's span's child, its client span the server span's, and the demo server's own span
/// the client span's; each named and attributed as the MCP conventions say.
#[tokio::test]
async fn one_trace_runs_from_the_client_through_the_proxy_into_the_server() {
    let receiver = Receiver::start().await;
    let mut demo = demo();
    let demo_env: serde_json::Map<String, Value> = receiver
        .env("demo")
        .into_iter()
        .map(|(key, value)| (key.to_owned(), Value::String(value)))
        .collect();
    demo["env"] = Value::Object(demo_env);
    // The same demo over Streamable HTTP, sending its spans here too.
    let web_env = receiver.env("demo-web");
    let web_env: Vec<(&str, &str)> = web_env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let web = Background::start(
        demo_bin(),
        &["--http", "0"],
        &web_env,
        "listening on http://",
    )
    .await;
    let web_url = listening_url(&web.log).await;
    let mut builder = proxy()
        .server("demo", demo)
        .server("web", json!({"url": web_url, "type": "streamable-http"}))
        .arg("--log-format")
        .arg("json");
    for (key, value) in receiver.env("pluggedin-mcp-proxy") {
        builder = builder.env(key, &value);
    }
    let proxy = builder.start().await;
    proxy.wait_for_tool("demo__echo").await;
    let call = |name: &str, arguments: Value| {
        let params: rmcp::model::CallToolRequestParams = serde_json::from_value(json!({
            "name": name,
            "arguments": arguments,
            "_meta": {
                "traceparent": format!("00-{TRACE}-{CLIENT_SPAN}-01"),
                "tracestate": "vendor=opaque",
            },
        }))
        .unwrap();
        proxy.peer().call_tool(params)
    };
    call("demo__echo", json!({"message": "traced"}))
        .await
        .unwrap();

    let server = receiver
        .span(TRACE, |span| {
            span["kind"] == "server" && span["service"] == "pluggedin-mcp-proxy"
        })
        .await;
    assert_eq!(server["parent_span_id"], CLIENT_SPAN);
    assert_eq!(server["name"], "tools/call demo__echo");
    let attributes = &server["attributes"];
    assert_eq!(attributes["mcp.method.name"], "tools/call");
    assert_eq!(attributes["gen_ai.tool.name"], "demo__echo");
    assert_eq!(attributes["gen_ai.operation.name"], "execute_tool");
    assert_eq!(attributes["network.transport"], "pipe");
    assert!(
        attributes["mcp.protocol.version"]
            .as_str()
            .unwrap()
            .starts_with("20")
    );
    assert!(attributes.get("jsonrpc.request.id").is_some(), "{server:#}");
    assert!(attributes.get("error.type").is_none(), "{server:#}");
    // The client's `tracestate` travels with its trace.
    assert_eq!(server["trace_state"], "vendor=opaque", "{server:#}");

    let client = receiver.span(TRACE, |span| span["kind"] == "client").await;
    assert_eq!(client["parent_span_id"], server["span_id"]);
    assert_eq!(client["name"], "tools/call echo");
    assert_eq!(client["attributes"]["mcp.method.name"], "tools/call");
    assert_eq!(client["attributes"]["gen_ai.tool.name"], "echo");
    assert_eq!(client["attributes"]["network.transport"], "pipe");
    assert_eq!(client["attributes"]["pluggedin.server"], "demo");
    assert_eq!(client["trace_state"], "vendor=opaque", "{client:#}");
    // The client span started after the server span and ended before it.
    assert!(client["start"].as_u64() >= server["start"].as_u64());
    assert!(client["end"].as_u64() <= server["end"].as_u64());

    let downstream = receiver.span(TRACE, |span| span["service"] == "demo").await;
    assert_eq!(downstream["kind"], "server");
    assert_eq!(downstream["parent_span_id"], client["span_id"]);
    assert_eq!(downstream["name"], "tools/call echo");
    // The `_meta` the server got carried the client span's context and the client's state.
    assert_eq!(downstream["trace_state"], "vendor=opaque", "{downstream:#}");

    // The log lines written while it ran carry the proxy's span ids.
    let log = proxy.log.text();
    let joined = log.lines().any(|line| {
        let Ok(event) = serde_json::from_str::<Value>(line) else {
            return false;
        };
        event["trace_id"] == TRACE && event["span_id"] == server["span_id"]
    });
    assert!(joined, "no log line in the trace:\n{log}");

    // Over HTTP the context goes in the `traceparent` header too.
    proxy.wait_for_tool("web__echo").await;
    call("web__echo", json!({"message": "over http"}))
        .await
        .unwrap();
    let web_client = receiver
        .span(TRACE, |span| {
            span["kind"] == "client" && span["attributes"]["pluggedin.server"] == "web"
        })
        .await;
    assert_eq!(web_client["attributes"]["network.transport"], "tcp");
    let web_server = receiver
        .span(TRACE, |span| span["service"] == "demo-web")
        .await;
    assert_eq!(web_server["parent_span_id"], web_client["span_id"]);
    let header = format!("00-{TRACE}-{}-01", web_client["span_id"].as_str().unwrap());
    assert_eq!(
        web_server["attributes"]["http.request.header.traceparent"],
        header.as_str()
    );

    // A failing call: its span says why, by the conventions.
    let _ = call("demo__no_such_tool", json!({})).await;
    let failed = receiver
        .span(TRACE, |span| {
            span["name"] == "tools/call demo__no_such_tool"
        })
        .await;
    assert_eq!(failed["attributes"]["error.type"], "-32602");
    assert_eq!(failed["attributes"]["rpc.response.status_code"], "-32602");
    assert_eq!(failed["status"]["code"], 2, "{failed:#}");
    assert!(
        failed["status"]["message"]
            .as_str()
            .unwrap()
            .contains("no_such_tool")
    );
}

/// Over HTTP the `traceparent` header is the parent when `_meta` has none; the span names the
/// session; a built-in tool and the store it writes get spans of their own.
#[tokio::test]
async fn over_http_the_header_carries_the_context_and_built_ins_have_spans() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let receiver = Receiver::start().await;
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("mcp.json");
    std::fs::write(&config, json!({"mcpServers": {"demo": demo()}}).to_string()).unwrap();
    let mut child = ProxyChild::spawn(
        tokio::process::Command::new(proxy_bin())
            .args(["--transport", "streamable-http", "--port", "0"])
            .args(NO_LIMITS)
            .arg("--config")
            .arg(&config)
            .arg("--data-dir")
            .arg(dir.path().join("data"))
            .envs(receiver.env("pluggedin-mcp-proxy"))
            .env_remove("PLUGGEDIN_API_KEY")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped()),
    );
    let log = Log::capture(child.stderr.take().unwrap());
    let url = listening_url(&log).await;
    let http = reqwest::Client::new();
    let post = |body: Value, session: Option<&str>| {
        let mut request = http
            .post(&url)
            .header("content-type", "application/json")
            .header("accept", "application/json, text/event-stream")
            .header("traceparent", format!("00-{TRACE}-{CLIENT_SPAN}-01"))
            .json(&body);
        if let Some(session) = session {
            request = request
                .header("mcp-session-id", session)
                .header("mcp-protocol-version", "2025-06-18");
        }
        request.send()
    };
    let initialized = post(
        json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
            "protocolVersion": "2025-06-18", "capabilities": {},
            "clientInfo": {"name": "raw", "version": "1"}}}),
        None,
    )
    .await
    .unwrap();
    let session = initialized.headers()["mcp-session-id"]
        .to_str()
        .unwrap()
        .to_owned();
    post(
        json!({"jsonrpc": "2.0", "method": "notifications/initialized"}),
        Some(&session),
    )
    .await
    .unwrap();
    let answer = post(
        json!({"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {
            "name": "pluggedin_clipboard_set", "arguments": {"name": "traced", "value": "x"}}}),
        Some(&session),
    )
    .await
    .unwrap();
    assert_eq!(answer.status(), 200, "{}", log.text());
    let _ = answer.text().await.unwrap();

    let server = receiver
        .span(TRACE, |span| {
            span["name"] == "tools/call pluggedin_clipboard_set"
        })
        .await;
    assert_eq!(server["kind"], "server");
    assert_eq!(server["parent_span_id"], CLIENT_SPAN);
    assert_eq!(server["attributes"]["mcp.session.id"], session.as_str());
    assert_eq!(server["attributes"]["network.transport"], "tcp");
    assert_eq!(server["attributes"]["network.protocol.name"], "http");
    let builtin = receiver
        .span(TRACE, |span| {
            span["name"] == "execute_tool pluggedin_clipboard_set"
        })
        .await;
    assert_eq!(builtin["kind"], "internal");
    assert_eq!(builtin["parent_span_id"], server["span_id"]);
    let store = receiver
        .span(TRACE, |span| span["name"] == "local store")
        .await;
    assert_eq!(store["parent_span_id"], builtin["span_id"]);
    assert_eq!(store["attributes"]["db.system.name"], "sqlite");
    drop(child);
}
