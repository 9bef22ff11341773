//! The security policy through the real binary: commands, URLs (after DNS and on redirects),
//! headers, secrets, hostile downstreams. Servers from the local file opt in with
//! `--strict-commands` / `--strict-urls`; servers from the plugged.in App (the stand-in,
//! `app_stub.rs`) get the same rules by default. Each rule has a refused and an allowed case.

use std::process::Stdio;

use rmcp::model::ReadResourceRequestParams;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::app_stub::{AppStub, KEY};
use crate::support::*;

/// A demo server over Streamable HTTP on 127.0.0.1, and its URL.
async fn demo_http(args: &[&str]) -> (Background, String) {
    let mut all = vec!["--http", "0"];
    all.extend_from_slice(args);
    let server = Background::start(demo_bin(), &all, &[], "listening on http://").await;
    let url = listening_url(&server.log).await;
    (server, url)
}

/// The row of `servers` output for `name`.
fn server_row(output: &str, name: &str) -> String {
    output
        .lines()
        .find(|line| line.split_whitespace().next() == Some(name))
        .unwrap_or_else(|| panic!("no row for {name} in:\n{output}"))
        .to_owned()
}

#[tokio::test]
async fn strict_commands_refuse_what_the_policy_forbids_and_run_the_rest() {
    let long_arg = "a".repeat(4097);
    let proxy = proxy()
        .arg("--strict-commands")
        .config_key("security", json!({"allowedCommands": [demo_bin()]}))
        // Allowed: on the list (extended by the config).
        .server("allowed", demo())
        // Refused, one rule each.
        .server(
            "shell",
            json!({"command": "bash", "args": ["-c", "echo pwned"]}),
        )
        .server("meta", json!({"command": "node;id"}))
        .server(
            "longarg",
            json!({"command": demo_bin(), "args": [long_arg]}),
        )
        .server(
            "badenv",
            json!({"command": demo_bin(), "env": {"BAD-KEY": "x"}}),
        )
        .server(
            "envvalue",
            json!({"command": demo_bin(), "env": {"OK": "a\nb"}}),
        )
        .start()
        .await;
    proxy.wait_for_tool("allowed__echo").await;
    for rule in [
        "command-not-allowed",
        "command-metacharacter",
        "arg-too-long",
        "env-key",
        "env-value",
    ] {
        proxy.log.wait_for(&format!("rule {rule}")).await;
    }
    let names = proxy.tool_names().await;
    assert!(
        !names
            .iter()
            .any(|name| name.starts_with("shell__") || name.starts_with("meta__")),
        "{names:?}"
    );

    let output = proxy.cli_ok(&["--strict-commands", "servers"]);
    assert!(
        server_row(&output, "allowed").contains("connected"),
        "{output}"
    );
    for (server, rule) in [
        ("shell", "command-not-allowed"),
        ("meta", "command-metacharacter"),
        ("longarg", "arg-too-long"),
        ("badenv", "env-key"),
        ("envvalue", "env-value"),
    ] {
        let row = server_row(&output, server);
        assert!(
            row.contains(&format!("refused by the security policy (rule {rule})")),
            "{row}"
        );
    }
    // The environment variable works as the flag does; without either, the file is trusted.
    let output = std::process::Command::new(proxy_bin())
        .arg("--config")
        .arg(&proxy.config_path)
        .arg("--data-dir")
        .arg(proxy.data_dir())
        .arg("servers")
        .env("PLUGGEDIN_STRICT_COMMANDS", "true")
        .output()
        .unwrap();
    let output = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        server_row(&output, "shell").contains("rule command-not-allowed"),
        "{output}"
    );
    let output = proxy.cli_ok(&["servers"]);
    assert!(
        !server_row(&output, "shell").contains("refused"),
        "{output}"
    );
}

/// `--strict-commands` on interpreters and runners: code written in the arguments, code-loading
/// environment variables, a local script, a package off the allow-list and a package named by a
/// path are refused (and none of their code runs), while a package on the allow-list and a
/// script the operator listed in `allowedArgs` run.
#[tokio::test]
async fn strict_commands_refuse_interpreter_code_and_run_only_allowed_packages() {
    let files = tempfile::tempdir().unwrap();
    let marker = |name: &str| files.path().join(name);
    let touch_js = |name: &str| {
        format!(
            "require('fs').writeFileSync({:?}, 'ran')",
            marker(name).display().to_string()
        )
    };
    let preload = files.path().join("preload.js");
    std::fs::write(&preload, touch_js("preloaded")).unwrap();
    let script = files.path().join("script.js");
    std::fs::write(&script, touch_js("script")).unwrap();
    let everything = everything_js().display().to_string();
    let venv_bin = venv_python().parent().unwrap().to_owned();
    let path = format!(
        "{}:{}",
        venv_bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let proxy = proxy()
        .arg("--strict-commands")
        // The venv's python3 has mcp-server-time installed.
        .env("PATH", &path)
        .config_key(
            "security",
            json!({"allowedPackages": ["mcp-server-time"], "allowedArgs": [everything]}),
        )
        // Allowed: a listed package through `python3 -m`, and the operator's listed script.
        .server(
            "time",
            json!({"command": "python3", "args": ["-m", "mcp_server_time"]}),
        )
        .server(
            "listed-script",
            json!({"command": "node", "args": [everything, "stdio"]}),
        )
        // Refused: code in the arguments.
        .server(
            "node-eval",
            json!({"command": "node", "args": ["-e", touch_js("node-eval")]}),
        )
        .server(
            "python-eval",
            json!({"command": "python3", "args": ["-c",
                format!("open({:?}, 'w')", marker("python-eval").display().to_string())]}),
        )
        // Refused: environment variables that load code into an allowed program.
        .server(
            "node-options",
            json!({"command": "node", "args": [everything, "stdio"],
                   "env": {"NODE_OPTIONS": format!("--require {}", preload.display())}}),
        )
        .server(
            "preload",
            json!({"command": "node", "args": [everything, "stdio"],
                   "env": {"LD_PRELOAD": marker("missing.so")}}),
        )
        // Refused: a script, a module off the list, a package named by a path.
        .server("script", json!({"command": "node", "args": [script]}))
        .server(
            "module",
            json!({"command": "python3", "args": ["-m", "http.server"]}),
        )
        .server(
            "local-package",
            json!({"command": "npx", "args": ["-y", "./local-package"]}),
        )
        .start()
        .await;
    let refused = [
        ("node-eval", "arg-eval"),
        ("python-eval", "arg-eval"),
        ("node-options", "env-code-loading"),
        ("preload", "env-code-loading"),
        ("script", "script-path"),
        ("module", "package-not-allowed"),
        ("local-package", "package-source"),
    ];
    for (_, rule) in refused {
        proxy.log.wait_for(&format!("rule {rule}")).await;
    }
    proxy.wait_for_tool("time__get_current_time").await;
    let now = proxy
        .call_text("time__get_current_time", json!({"timezone": "UTC"}))
        .await;
    assert!(now.contains("\"timezone\": \"UTC\""), "{now}");
    proxy.wait_for_tool("listed-script__echo").await;

    let output = std::process::Command::new(proxy_bin())
        .arg("--config")
        .arg(&proxy.config_path)
        .arg("--data-dir")
        .arg(proxy.data_dir())
        .args(["--strict-commands", "servers"])
        .env("PATH", &path)
        .output()
        .unwrap();
    let output = String::from_utf8_lossy(&output.stdout).into_owned();
    for server in ["time", "listed-script"] {
        assert!(
            server_row(&output, server).contains("connected"),
            "{output}"
        );
    }
    for (server, rule) in refused {
        assert!(
            server_row(&output, server)
                .contains(&format!("refused by the security policy (rule {rule})")),
            "{output}"
        );
    }
    let ran: Vec<_> = ["node-eval", "python-eval", "preloaded", "script"]
        .into_iter()
        .filter(|name| marker(name).exists())
        .collect();
    assert!(ran.is_empty(), "refused servers ran code: {ran:?}");
}

#[tokio::test]
async fn strict_urls_refuse_private_and_loopback_destinations_after_dns() {
    let (_demo, url) = demo_http(&[]).await;
    let port = url::Url::parse(&url).unwrap().port().unwrap();
    let localhost = format!("http://localhost:{port}/mcp");
    let proxy = proxy()
        .arg("--strict-urls")
        // A private address: refused before any connection.
        .server("private", json!({"url": "http://10.0.0.1:8080/mcp"}))
        // A loopback literal.
        .server("literal", json!({"url": url}))
        // A name that resolves to loopback: refused after resolution.
        .server("named", json!({"url": localhost}))
        // A blocked port.
        .server("redis", json!({"url": "https://example.com:6379/mcp"}))
        .start()
        .await;
    proxy.log.wait_for("rule url-private").await;
    proxy
        .log
        .wait_for("rule url-loopback): 127.0.0.1 is a loopback address")
        .await;
    proxy
        .log
        .wait_for("rule url-loopback): localhost resolves only to refused addresses")
        .await;
    proxy.log.wait_for("rule url-blocked-port").await;
    let output = proxy.cli_ok(&["--strict-urls", "servers"]);
    assert!(
        server_row(&output, "private").contains("rule url-private"),
        "{output}"
    );
    assert!(
        server_row(&output, "named").contains("rule url-loopback"),
        "{output}"
    );
    assert!(
        server_row(&output, "redis").contains("rule url-blocked-port"),
        "{output}"
    );
    assert!(
        proxy
            .tool_names()
            .await
            .iter()
            .all(|name| name.starts_with("pluggedin_"))
    );

    // Allowed: the same loopback server once local targets are allowed explicitly.
    let allowed = crate::support::proxy()
        .arg("--strict-urls")
        .arg("--allow-local-targets")
        .server("named", json!({"url": localhost}))
        .start()
        .await;
    allowed.wait_for_tool("named__echo").await;
    assert_eq!(
        allowed
            .call_text("named__echo", json!({"message": "hi"}))
            .await,
        "Echo: hi"
    );
}

/// A loopback HTTP server that answers every request with a redirect to `location`.
async fn redirector(status: &str, location: &str) -> (u16, tokio::task::JoinHandle<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let response = format!(
        "HTTP/1.1 {status}\r\nLocation: {location}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    );
    let task = tokio::spawn(async move {
        loop {
            let Ok((mut socket, _)) = listener.accept().await else {
                return;
            };
            let response = response.clone();
            tokio::spawn(async move {
                let mut buffer = vec![0u8; 65536];
                let _ = socket.read(&mut buffer).await;
                let _ = socket.write_all(response.as_bytes()).await;
            });
        }
    });
    (port, task)
}

// Multi-threaded: the redirector must keep answering while `servers` (a blocking child) runs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redirect_to_the_metadata_address_is_refused_even_with_local_targets() {
    let (_demo, demo_url) = demo_http(&[]).await;
    let (port, task) = redirector(
        "307 Temporary Redirect",
        "http://169.254.169.254/latest/meta-data/",
    )
    .await;
    let proxy = proxy()
        .arg("--strict-urls")
        .arg("--allow-local-targets")
        .server(
            "redirect",
            json!({"url": format!("http://127.0.0.1:{port}/mcp"), "type": "streamable-http"}),
        )
        .server(
            "sse",
            json!({"url": format!("http://127.0.0.1:{port}/sse"), "type": "sse"}),
        )
        .server("direct", json!({"url": demo_url}))
        .start()
        .await;
    proxy.wait_for_tool("direct__echo").await;
    proxy
        .log
        .wait_for("rule url-metadata): redirect to 169.254.169.254 is a cloud metadata address")
        .await;
    let output = proxy.cli_ok(&["--strict-urls", "--allow-local-targets", "servers"]);
    assert!(
        server_row(&output, "redirect").contains("rule url-metadata"),
        "{output}"
    );
    assert!(
        server_row(&output, "sse").contains("rule url-metadata"),
        "{output}"
    );
    assert!(
        server_row(&output, "direct").contains("connected"),
        "{output}"
    );
    task.abort();
}

#[tokio::test]
async fn configured_headers_follow_the_rules() {
    let (_demo, url) = demo_http(&[]).await;
    let proxy = proxy()
        .arg("--strict-urls")
        .arg("--allow-local-targets")
        .server(
            "cookie",
            json!({"url": url, "headers": {"Cookie": "session=1"}}),
        )
        .server(
            "forwarded",
            json!({"url": url, "headers": {"X-Forwarded-For": "1.2.3.4"}}),
        )
        .server("host", json!({"url": url, "headers": {"Host": "internal"}}))
        .server("badname", json!({"url": url, "headers": {"Bad Name": "x"}}))
        .server(
            "huge",
            json!({"url": url, "headers": {"X-Big": "v".repeat(8193)}}),
        )
        .server(
            "fine",
            json!({"url": url, "headers": {"Authorization": "Bearer ok", "X-Team": "a"}}),
        )
        .start()
        .await;
    proxy.wait_for_tool("fine__echo").await;
    let output = proxy.cli_ok(&["--strict-urls", "--allow-local-targets", "servers"]);
    for (server, rule) in [
        ("cookie", "header-forbidden"),
        ("forwarded", "header-forbidden"),
        ("host", "header-forbidden"),
        ("badname", "header-name"),
        ("huge", "header-too-long"),
    ] {
        assert!(
            server_row(&output, server).contains(&format!("rule {rule}")),
            "{output}"
        );
    }
    assert!(
        server_row(&output, "fine").contains("connected"),
        "{output}"
    );
}

#[tokio::test]
async fn secrets_stay_out_of_logs_health_servers_and_client_errors() {
    secrets_stay_out("human").await;
}

/// The same with `--log-format json`: every line on stderr is one JSON object a log pipeline can
/// read (timestamp, level, target, the message and fields, the spans), at every level, and no
/// secret is in any of them.
#[tokio::test]
async fn json_logs_parse_line_by_line_and_keep_secrets_out_too() {
    let log = secrets_stay_out("json").await;
    let mut messages = Vec::new();
    for line in log.lines().filter(|line| !line.trim().is_empty()) {
        let event: serde_json::Value = serde_json::from_str(line)
            .unwrap_or_else(|error| panic!("not a JSON line ({error}): {line}"));
        for key in ["timestamp", "level", "target", "fields"] {
            assert!(event.get(key).is_some(), "no {key} in {line}");
        }
        if let Some(message) = event["fields"]["message"].as_str() {
            messages.push(message.to_owned());
        }
    }
    // The start-up line and the servers' lifecycle are among them, with the spans they ran in.
    assert!(
        messages.iter().any(|m| m.contains("listening on http://")),
        "{messages:?}"
    );
    assert!(
        log.lines().any(|line| line.contains(r#""message":"connected""#)
            && line.contains(r#""spans":[{"#)),
        "{log}"
    );
}

/// Starts a proxy that holds every kind of secret, logging at `trace` in `format`, uses it, and
/// checks no secret reached its log, `/health`, `servers` or a client's error; its log.
async fn secrets_stay_out(format: &str) -> String {
    const TOKEN: &str = "tok-7d1f0c9e-secret";
    const HEADER: &str = "hdr-51b2aa-secret";
    const PASSWORD: &str = "pw-93ce11-secret";
    const URL_PASSWORD: &str = "urlpw-0af3-secret";
    const OTEL_KEY: &str = "otelkey-6c2d-secret";
    let (_demo, url) = demo_http(&[]).await;
    let mut with_password = url::Url::parse(&url).unwrap();
    with_password.set_username("me").unwrap();
    with_password.set_password(Some(URL_PASSWORD)).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("mcp.json");
    std::fs::write(
        &config,
        json!({
            "mcpServers": {
                "web": {"url": url, "headers": {"Authorization": format!("Bearer {HEADER}")}},
                "userinfo": {"url": with_password.as_str()}
            },
            "authTokens": [TOKEN],
            "smtp": {"host": "127.0.0.1", "port": 2525, "security": "none", "username": "u",
                     "password": PASSWORD, "from": "a@example.com", "to": ["b@example.com"]}
        })
        .to_string(),
    )
    .unwrap();
    let mut child = tokio::process::Command::new(proxy_bin())
        .args([
            "--transport",
            "streamable-http",
            "--port",
            "0",
            "--require-api-auth",
        ])
        .arg("--config")
        .arg(&config)
        .arg("--data-dir")
        .arg(dir.path().join("data"))
        .args(["--auth-token", TOKEN, "--log-level", "trace"])
        .env_remove("PLUGGEDIN_API_KEY")
        .env("RUST_LOG", "trace")
        .env("PLUGGEDIN_LOG_FORMAT", format)
        // Traces to a "collector" that refuses them (the demo answers 404): the failure is
        // logged, the key in the exporter's headers is not.
        .env(
            "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
            url.replace("/mcp", "/v1/traces"),
        )
        .env("OTEL_EXPORTER_OTLP_HEADERS", format!("api-key={OTEL_KEY}"))
        .env("OTEL_BSP_SCHEDULE_DELAY", "50")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let log = Log::capture(child.stderr.take().unwrap());
    let proxy_url = listening_url(&log).await;
    log.wait_for("connected").await;

    let _ = rustls::crypto::ring::default_provider().install_default();
    let base = proxy_url.trim_end_matches("/mcp").to_owned();
    let client = reqwest::Client::new();
    let read = |path: &str| {
        let request = client.get(format!("{base}{path}")).bearer_auth(TOKEN);
        async move { request.send().await.unwrap().text().await.unwrap() }
    };
    let health = read("/health").await;
    // A client error built from text a secret can hide in: an unknown resource URI.
    let transport = rmcp::transport::StreamableHttpClientTransport::from_config(
        rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig::with_uri(
            format!("{base}/mcp"),
        )
        .auth_header(TOKEN),
    );
    let session = rmcp::ServiceExt::serve(TestClient::new(), transport)
        .await
        .unwrap();
    let error = session
        .peer()
        .read_resource(ReadResourceRequestParams::new(
            "file:///x?token=client-secret-123 Bearer abc.def",
        ))
        .await
        .unwrap_err();
    let error = mcp_error(error).message.to_string();
    assert!(error.contains("[REDACTED]"), "{error}");
    assert!(
        !error.contains("client-secret-123") && !error.contains("abc.def"),
        "{error}"
    );
    // The bearer token reached the downstream server (the demo echoes request headers).
    let echoed = session
        .peer()
        .call_tool(
            rmcp::model::CallToolRequestParams::new("web__echo")
                .with_arguments(json!({"message": "ping"}).as_object().unwrap().clone()),
        )
        .await
        .unwrap();
    assert_eq!(text_of(&echoed), "Echo: ping");
    // A URL's user:password reaches the server as Basic auth, not inside the URL.
    let headers = session
        .peer()
        .call_tool(rmcp::model::CallToolRequestParams::new(
            "userinfo__http_headers",
        ))
        .await
        .unwrap();
    let headers: serde_json::Value = serde_json::from_str(&text_of(&headers)).unwrap();
    let basic = {
        use base64::Engine as _;
        base64::engine::general_purpose::STANDARD.encode(format!("me:{URL_PASSWORD}"))
    };
    assert_eq!(
        headers["authorization"],
        format!("Basic {basic}"),
        "{headers}"
    );
    drop(session);

    let servers = std::process::Command::new(proxy_bin())
        .arg("--config")
        .arg(&config)
        .arg("--data-dir")
        .arg(dir.path().join("data"))
        .arg("servers")
        .env("RUST_LOG", "trace")
        .env("PLUGGEDIN_LOG_FORMAT", format)
        .output()
        .unwrap();
    let servers_out = format!(
        "{}{}",
        String::from_utf8_lossy(&servers.stdout),
        String::from_utf8_lossy(&servers.stderr)
    );
    assert!(
        server_row(&servers_out, "web").contains("connected"),
        "{servers_out}"
    );

    log.wait_for("traces could not be exported").await;
    let metrics = read("/metrics").await;
    assert!(
        metrics.contains("pluggedin_proxy_spans_dropped_total"),
        "{metrics}"
    );

    let everything = format!(
        "{}\n{health}\n{error}\n{servers_out}\n{metrics}",
        log.text()
    );
    for secret in [TOKEN, HEADER, PASSWORD, URL_PASSWORD, OTEL_KEY] {
        assert!(
            !everything.contains(secret),
            "{secret} leaked:\n{everything}"
        );
    }
    assert!(health.contains("\"web\""), "{health}");
    log.text()
}

#[tokio::test]
async fn an_oversized_downstream_message_is_refused_without_taking_the_server_down() {
    let (_demo, url) = demo_http(&["--hostile"]).await;
    let proxy = proxy()
        .config_key("security", json!({"maxMessageBytes": 100_000}))
        .server("demo", demo_with(&["--hostile"]))
        .server("web", json!({"url": url}))
        .start()
        .await;
    proxy.wait_for_tool("demo__big").await;
    proxy.wait_for_tool("web__big").await;
    // Allowed: under the limit.
    assert_eq!(
        proxy
            .call_text("demo__big", json!({"bytes": 50_000}))
            .await
            .len(),
        50_000
    );
    // Refused over stdio: the request fails at once, naming the limit.
    let error = mcp_error(
        proxy
            .call("demo__big", json!({"bytes": 1_000_000}))
            .await
            .unwrap_err(),
    );
    assert!(
        error.message.contains("larger than the 100000 byte limit"),
        "{error:?}"
    );
    // The connection survives it.
    assert_eq!(
        proxy
            .call_text("demo__echo", json!({"message": "still here"}))
            .await,
        "Echo: still here"
    );
    // Over Streamable HTTP the body is refused too.
    assert_eq!(
        proxy
            .call_text("web__big", json!({"bytes": 50_000}))
            .await
            .len(),
        50_000
    );
    let refused = proxy.call("web__big", json!({"bytes": 1_000_000})).await;
    assert!(refused.is_err(), "{refused:?}");
    proxy
        .log
        .wait_for("refused a message larger than the limit")
        .await;
}

#[tokio::test]
async fn control_characters_in_names_and_descriptions_are_sanitised() {
    let proxy = proxy()
        .server("demo", demo_with(&["--hostile"]))
        .start()
        .await;
    proxy.wait_for_tool("demo__big").await;
    let tools = proxy.peer().list_all_tools().await.unwrap();
    let hostile = tools
        .iter()
        .find(|tool| tool.name.starts_with("demo__bell"))
        .unwrap();
    assert_eq!(hostile.name, "demo__bell__[31mtool");
    let description = hostile.description.as_deref().unwrap();
    assert_eq!(description, "Rings [31m red  and reversed text");
    for tool in &tools {
        let text = format!("{}{}", tool.name, tool.description.as_deref().unwrap_or(""));
        assert!(
            !text
                .chars()
                .any(|ch| (ch.is_control() && ch != '\n' && ch != '\t')
                    || ('\u{202a}'..='\u{202e}').contains(&ch)),
            "{text:?}"
        );
    }
    // The sanitised name still reaches the tool under its real name.
    assert_eq!(
        proxy.call_text("demo__bell__[31mtool", json!({})).await,
        "rang"
    );
}

#[tokio::test]
async fn a_notification_flood_is_bounded() {
    let mut proxy = proxy()
        .config_key("security", json!({"notificationsPerSecond": 20}))
        .server("demo", demo_with(&["--hostile"]))
        .start()
        .await;
    proxy.wait_for_tool("demo__flood").await;
    // Allowed: a few notifications pass.
    assert_eq!(
        proxy.call_text("demo__flood", json!({"count": 3})).await,
        "sent 3"
    );
    proxy
        .next_event(|event| matches!(event, Event::Log(_)).then_some(()))
        .await;
    // A flood: the server sends 5000, the proxy drops what exceeds the rate and says so.
    assert_eq!(
        proxy.call_text("demo__flood", json!({"count": 5000})).await,
        "sent 5000"
    );
    proxy.log.wait_for("server floods notifications").await;
    let dropped: u64 = proxy
        .log
        .text()
        .lines()
        .filter(|line| line.contains("server floods notifications"))
        .filter_map(|line| line.split("dropped_total=").nth(1))
        .filter_map(|rest| rest.split_whitespace().next()?.parse().ok())
        .max()
        .unwrap();
    assert!(dropped > 0);
    // The answer still came back, and the server is still usable.
    assert_eq!(
        proxy
            .call_text("demo__echo", json!({"message": "ok"}))
            .await,
        "Echo: ok"
    );
}

// ===== Servers from the plugged.in App: untrusted by default =====

const APP_DEMO: &str = "11111111-1111-4111-8111-111111111111";
const APP_SHELL: &str = "22222222-2222-4222-8222-222222222222";
const APP_META: &str = "33333333-3333-4333-8333-333333333333";
const APP_PRIVATE: &str = "44444444-4444-4444-8444-444444444444";
const APP_NAMED: &str = "55555555-5555-4555-8555-555555555555";
const APP_REDIRECT: &str = "66666666-6666-4666-8666-666666666666";
const APP_COOKIE: &str = "77777777-7777-4777-8777-777777777777";
const APP_EVAL: &str = "88888888-8888-4888-8888-888888888888";
const APP_PRELOAD: &str = "99999999-9999-4999-8999-999999999999";

fn app_stdio(uuid: &str, name: &str, command: &str, args: Value) -> Value {
    json!({"uuid": uuid, "name": name, "slug": name.to_lowercase(), "type": "STDIO",
           "command": command, "args": args, "env": {}, "status": "ACTIVE"})
}

fn app_http(uuid: &str, name: &str, url: &str, headers: Value) -> Value {
    json!({"uuid": uuid, "name": name, "slug": name.to_lowercase(), "type": "STREAMABLE_HTTP",
           "url": url, "streamableHTTPOptions": {"headers": headers}})
}

fn app_tool(name: &str, server: &str) -> Value {
    json!({"name": name, "description": "t",
           "inputSchema": {"type": "object", "properties": {"message": {"type": "string"}}},
           "_serverUuid": server, "_serverName": "x"})
}

/// `servers` in App mode, run without blocking the stand-in (it runs on this test's runtime).
async fn app_servers(app: &AppStub, proxy: &Proxy) -> String {
    let output = tokio::process::Command::new(proxy_bin())
        .env("PLUGGEDIN_API_KEY", KEY)
        .env("PLUGGEDIN_API_BASE_URL", app.url())
        .env("RUST_LOG", "warn")
        .arg("--config")
        .arg(&proxy.config_path)
        .arg("--data-dir")
        .arg(proxy.data_dir())
        .arg("servers")
        .output()
        .await
        .unwrap();
    String::from_utf8_lossy(&output.stdout).into_owned()
}

#[tokio::test]
async fn app_servers_are_refused_by_default_where_the_policy_says_so() {
    let (_web, url) = demo_http(&[]).await;
    let port = url::Url::parse(&url).unwrap().port().unwrap();
    let app = AppStub::start().await;
    app.set_servers(json!([
        // Allowed: the demo binary, put on the allow-list by the operator's config file.
        app_stdio(APP_DEMO, "Demo", demo_bin(), json!([])),
        app_stdio(APP_SHELL, "Shell", "bash", json!(["-c", "echo pwned"])),
        app_stdio(APP_META, "Meta", "npx;id", json!([])),
        // An allowed interpreter given code, and an allowed runner given a preload variable.
        app_stdio(APP_EVAL, "Eval", "node", json!(["-e", "console.log(1)"])),
        json!({"uuid": APP_PRELOAD, "name": "Preload", "slug": "preload", "type": "STDIO",
               "command": "npx", "args": ["-y", "some-package"],
               "env": {"NODE_OPTIONS": "--require /tmp/x.js"}, "status": "ACTIVE"}),
        app_http(
            APP_PRIVATE,
            "Private",
            "http://10.0.0.1:8080/mcp",
            json!({})
        ),
        app_http(
            APP_NAMED,
            "Named",
            &format!("http://localhost:{port}/mcp"),
            json!({})
        ),
    ]));
    app.set_tools(json!([
        app_tool("demo__echo", APP_DEMO),
        app_tool("shell__echo", APP_SHELL),
        app_tool("named__echo", APP_NAMED),
    ]));
    let proxy = proxy()
        .config_key("security", json!({"allowedCommands": [demo_bin()]}))
        .env("PLUGGEDIN_API_KEY", KEY)
        .env("PLUGGEDIN_API_BASE_URL", &app.url())
        .start()
        .await;
    for rule in [
        "rule command-not-allowed",
        "rule command-metacharacter",
        "rule arg-eval",
        "rule env-code-loading",
        "rule url-private",
        "rule url-loopback): localhost resolves only to refused addresses",
    ] {
        proxy.log.wait_for(rule).await;
    }
    assert_eq!(
        proxy
            .call_text("demo__echo", json!({"message": "app"}))
            .await,
        "Echo: app"
    );
    let error = mcp_error(
        proxy
            .call("shell__echo", json!({"message": "x"}))
            .await
            .unwrap_err(),
    );
    assert!(
        error
            .message
            .contains("refused by the security policy (rule command-not-allowed)"),
        "{}",
        error.message
    );
    let output = app_servers(&app, &proxy).await;
    assert!(
        server_row(&output, "Demo").contains("connected"),
        "{output}"
    );
    for (server, rule) in [
        ("Shell", "command-not-allowed"),
        ("Meta", "command-metacharacter"),
        ("Eval", "arg-eval"),
        ("Preload", "env-code-loading"),
        ("Private", "url-private"),
        ("Named", "url-loopback"),
    ] {
        assert!(
            server_row(&output, server).contains(&format!("rule {rule}")),
            "{output}"
        );
    }
}

#[tokio::test]
async fn app_servers_with_local_targets_allowed_still_never_reach_metadata() {
    let (_web, url) = demo_http(&[]).await;
    let port = url::Url::parse(&url).unwrap().port().unwrap();
    let (redirect_port, task) = redirector(
        "307 Temporary Redirect",
        "http://169.254.169.254/latest/meta-data/",
    )
    .await;
    let app = AppStub::start().await;
    app.set_servers(json!([
        app_http(
            APP_NAMED,
            "Named",
            &format!("http://localhost:{port}/mcp"),
            json!({})
        ),
        app_http(
            APP_REDIRECT,
            "Redirect",
            &format!("http://127.0.0.1:{redirect_port}/mcp"),
            json!({})
        ),
        app_http(
            APP_COOKIE,
            "Cookie",
            &url,
            json!({"Cookie": "session=stolen"})
        ),
    ]));
    app.set_tools(json!([app_tool("named__echo", APP_NAMED)]));
    let proxy = proxy()
        .config_key("security", json!({"allowLocalTargets": true}))
        .env("PLUGGEDIN_API_KEY", KEY)
        .env("PLUGGEDIN_API_BASE_URL", &app.url())
        .start()
        .await;
    proxy
        .log
        .wait_for("rule url-metadata): redirect to 169.254.169.254 is a cloud metadata address")
        .await;
    proxy.log.wait_for("rule header-forbidden").await;
    // Allowed: loopback, because the operator allowed local targets.
    proxy.wait_for_tool("named__echo").await;
    let text = proxy
        .call_text("named__echo", json!({"message": "local"}))
        .await;
    assert_eq!(text, "Echo: local");
    task.abort();
}

#[tokio::test]
async fn a_started_server_from_a_registry_entry_passes_the_command_policy_and_its_own_port_rule() {
    let registry = json!({"url": "https://registry.example", "name": "io.example/demo"});
    let started = |args: &[&str], url: &str| json!({"command": demo_bin(), "args": args, "url": url, "registry": registry.clone()});
    let proxy = proxy()
        .config_key("security", json!({"allowedCommands": [demo_bin()]}))
        // Allowed: an allowed command, reached on the port the proxy picked.
        .server(
            "picked",
            started(&["--http", "{port}"], "http://127.0.0.1:{port}/mcp"),
        )
        // Refused: a fixed port could be another service on this machine.
        .server(
            "fixed",
            started(&["--http", "6380"], "http://127.0.0.1:6380/mcp"),
        )
        // Refused: the command policy applies as to a stdio server.
        .server(
            "shell",
            json!({"command": "sh", "args": ["-c", "exec server --port {port}"],
                   "url": "http://localhost:{port}/mcp", "registry": registry.clone()}),
        )
        .start()
        .await;
    proxy.wait_for_tool("picked__echo").await;
    proxy.log.wait_for("rule started-url-port").await;
    proxy.log.wait_for("rule command-not-allowed").await;
    let output = proxy.cli_ok(&["servers"]);
    assert!(
        server_row(&output, "picked").contains("connected"),
        "{output}"
    );
    assert!(
        server_row(&output, "fixed")
            .contains("refused by the security policy (rule started-url-port)"),
        "{output}"
    );
    assert!(
        server_row(&output, "shell").contains("rule command-not-allowed"),
        "{output}"
    );
}
