//! The console in a real browser: headless Chromium, driven over WebDriver, against the proxy in
//! Streamable HTTP mode with the demo server; and the headers the console's files are served
//! with.

use serde_json::json;
use tokio::io::AsyncBufReadExt;

use crate::support::*;
use crate::webdriver::Browser;

/// The proxy over HTTP on loopback with the demo server; its log is printed when a test fails.
struct Console {
    _child: ProxyChild,
    log: Log,
    /// `http://127.0.0.1:PORT`
    base: String,
    dir: tempfile::TempDir,
}

impl Console {
    async fn start() -> Console {
        Console::start_with(&[]).await
    }

    async fn start_with(args: &[&str]) -> Console {
        Console::serving(json!({"demo": demo_with(&["--name", "demo"])}), args).await
    }

    async fn serving(servers: serde_json::Value, args: &[&str]) -> Console {
        let dir = tempfile::tempdir().unwrap();
        let (child, log, url) = spawn_http_proxy(&dir, servers, args).await;
        let port = url::Url::parse(&url).unwrap().port().unwrap();
        Console {
            _child: child,
            log,
            base: format!("http://127.0.0.1:{port}"),
            dir,
        }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }
}

impl Drop for Console {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("--- proxy stderr ---\n{}", self.log.text());
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_browser_at_the_root_lands_on_the_console() {
    let console = Console::start().await;
    let browser = Browser::start().await;
    browser.goto(&console.url("/")).await;
    assert_eq!(browser.current_url().await, console.url("/console/"));
    let title = browser.title().await;
    assert!(title.contains("pluggedin-mcp-proxy"), "{title:?}");
    let screenshot = browser.screenshot("console-opens").await;
    let png = std::fs::read(&screenshot).unwrap();
    assert!(
        png.starts_with(b"\x89PNG\r\n\x1a\n"),
        "{}",
        screenshot.display()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_console_is_served_with_a_strict_policy_and_no_cors() {
    let console = Console::start().await;
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let html = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8";
    let root = http
        .get(console.url("/"))
        .header("accept", html)
        .send()
        .await
        .unwrap();
    assert_eq!(root.status(), 303);
    assert_eq!(root.headers()["location"], "/console/");

    for (path, media) in [
        ("/console/", "text/html"),
        ("/console/app.js", "text/javascript"),
        ("/console/style.css", "text/css"),
    ] {
        // A page of this origin asking, and one of another.
        for origin in [console.base.as_str(), "https://evil.example"] {
            let response = http
                .get(console.url(path))
                .header("accept", html)
                .header("origin", origin)
                .send()
                .await
                .unwrap();
            let headers = response.headers().clone();
            assert!(
                headers.get("access-control-allow-origin").is_none(),
                "{path} from {origin}: {headers:?}"
            );
            if origin != console.base {
                continue;
            }
            assert_eq!(response.status(), 200, "{path}: {headers:?}");
            let content_type = headers["content-type"].to_str().unwrap();
            assert!(content_type.starts_with(media), "{path}: {content_type}");
            let policy = headers
                .get("content-security-policy")
                .unwrap_or_else(|| panic!("{path} has no Content-Security-Policy: {headers:?}"))
                .to_str()
                .unwrap();
            let directives: Vec<&str> = policy.split(';').map(str::trim).collect();
            for wanted in [
                "default-src 'self'",
                "script-src 'self'",
                "style-src 'self'",
                "connect-src 'self'",
                "img-src 'self' data:",
                "media-src 'self' data:",
                "frame-ancestors 'none'",
            ] {
                assert!(
                    directives.contains(&wanted),
                    "{path}: {wanted:?} not in {policy:?}"
                );
            }
            assert!(
                !policy.contains("unsafe-") && !policy.contains('*'),
                "{path}: {policy:?}"
            );
        }
    }

    // A preflight from another origin is not answered with CORS either.
    let preflight = http
        .request(reqwest::Method::OPTIONS, console.url("/console/"))
        .header("origin", "https://evil.example")
        .header("access-control-request-method", "GET")
        .send()
        .await
        .unwrap();
    let headers = preflight.headers();
    assert!(
        headers.get("access-control-allow-origin").is_none(),
        "{headers:?}"
    );
}

/// The client's own parts on a page of its own: typing, clearing, choosing, files, waiting for
/// text the page writes later, scripts, dialogs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_browser_client_drives_a_page() {
    let browser = Browser::start().await;
    let page = "<title>harness</title><input id=name value=first>\
        <select id=range><option value=1h>1h</option><option value=24h>24h</option></select>\
        <input id=files type=file multiple><ul><li>one</li><li>two</li></ul><p id=later></p>\
        <button id=ask>ask</button>\
        <script>\
        document.getElementById('range').addEventListener('change', e => \
          document.title = 'range ' + e.target.value);\
        document.getElementById('ask').addEventListener('click', () => \
          document.getElementById('later').textContent = confirm('sure?') ? 'yes' : 'no');\
        setTimeout(() => document.getElementById('later').textContent = 'drawn late', 300);\
        </script>";
    browser
        .goto(&format!("data:text/html,{}", urlencode(page)))
        .await;
    assert_eq!(browser.title().await, "harness");
    browser.wait_for_text("#later", "drawn late").await;

    let name = browser.find("#name").await;
    assert_eq!(name.attribute("value").await.as_deref(), Some("first"));
    name.clear().await;
    name.send_keys("typed").await;
    assert_eq!(name.property("value").await, "typed");
    assert_eq!(name.attribute("placeholder").await, None);

    browser.select_option("#range", "24h").await;
    assert_eq!(browser.title().await, "range 24h");

    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (dir.path().join("a.txt"), dir.path().join("b.md"));
    std::fs::write(&a, "alpha").unwrap();
    std::fs::write(&b, "beta").unwrap();
    let files = browser.find("#files").await;
    files.upload(&[&a, &b]).await;
    let names = browser
        .execute(
            "return Array.from(arguments[0].files, f => f.name + ':' + f.size)",
            vec![files.arg()],
        )
        .await;
    assert_eq!(names, json!(["a.txt:5", "b.md:4"]));

    let items = browser.find_all("li").await;
    assert_eq!(items.len(), 2);
    assert_eq!(items[1].text().await, "two");
    assert!(browser.find_all("table").await.is_empty());

    browser.find("#ask").await.click().await;
    assert_eq!(browser.accept_dialog().await, "sure?");
    browser.wait_for_text("#later", "yes").await;
    let count = browser
        .wait_until(
            "two items",
            "return document.querySelectorAll('li').length === 2",
            vec![],
        )
        .await;
    assert_eq!(count, true);
}

/// `text` for a `data:` URL.
fn urlencode(text: &str) -> String {
    url::form_urlencoded::byte_serialize(text.as_bytes())
        .collect::<String>()
        .replace('+', "%20")
}

/// The demo server, and one whose command does not exist (it fails to start).
fn demo_and_broken() -> serde_json::Value {
    json!({
        "demo": demo_with(&["--name", "demo"]),
        "broken": {"command": "/nonexistent/pluggedin-test-server"},
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_servers_page_shows_a_connected_and_a_failed_server() {
    let console = Console::serving(demo_and_broken(), &[]).await;
    let browser = Browser::start().await;
    browser.goto(&console.url("/console/#/servers")).await;
    browser
        .wait_for_text("tr[data-server=demo] .state", "connected")
        .await;
    browser
        .wait_for_text("tr[data-server=broken] .state", "failed")
        .await;
    let reason = browser
        .wait_for_text("tr[data-server=broken] .reason", "nonexistent")
        .await;
    assert!(!reason.trim().is_empty());
    let tools = browser
        .find("tr[data-server=demo] .tools")
        .await
        .text()
        .await;
    assert!(tools.trim().parse::<u32>().unwrap() > 10, "{tools:?}");
    browser.screenshot("servers").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tool_called_from_its_form_shows_nested_arguments_progress_and_an_image() {
    let console = Console::start().await;
    let browser = Browser::start().await;

    // Nested arguments: the form follows the schema's `$ref` to an object of its own.
    browser
        .goto(&console.url("/console/#/tools/demo__json_schema_2020_12_tool"))
        .await;
    let form = browser.find("form#tool-form").await;
    form.find("[name='name']").await.send_keys("Ada").await;
    form.find("[name='address.street']")
        .await
        .send_keys("Main St 1")
        .await;
    form.find("[name='address.city']")
        .await
        .send_keys("Springfield")
        .await;
    browser
        .select_option("form#tool-form select[name='contactMethod']", "email")
        .await;
    form.find("[name='email']")
        .await
        .send_keys("ada@example.com")
        .await;
    browser.find("#tool-call").await.click().await;
    let result = browser.wait_for_text("#tool-result", "Springfield").await;
    // The nested object reached the server as an object, not as text.
    assert!(
        result.contains(r#""address":{"city":"Springfield","street":"Main St 1"}"#)
            || result.contains(r#""street": "Main St 1""#),
        "{result}"
    );
    browser.screenshot("tool-form").await;

    // A required field left empty is shown at the field, and nothing is called.
    browser
        .goto(&console.url("/console/#/tools/demo__echo"))
        .await;
    browser.find("form#tool-form").await;
    browser.find("#tool-call").await.click().await;
    browser
        .wait_for_text("form#tool-form .field-error", "required")
        .await;

    // Progress as it comes, then the result.
    browser
        .goto(&console.url("/console/#/tools/demo__test_tool_with_progress"))
        .await;
    browser.find("form#tool-form").await;
    browser.find("#tool-call").await.click().await;
    browser.wait_for_text("#tool-progress", "/100").await;
    browser.wait_for_text("#tool-result", "pluggedin").await;

    // An image content block is drawn.
    browser
        .goto(&console.url("/console/#/tools/demo__test_image_content"))
        .await;
    browser.find("form#tool-form").await;
    browser.find("#tool-call").await.click().await;
    browser
        .wait_until(
            "the result's image is decoded",
            "const img = document.querySelector('#tool-result img');
             return !!img && img.complete && img.naturalWidth > 0;",
            vec![],
        )
        .await;
    let source = browser
        .find("#tool-result img")
        .await
        .attribute("src")
        .await
        .unwrap();
    assert!(source.starts_with("data:image/png;base64,"), "{source:.40}");
    browser.screenshot("tool-image").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_elicitation_is_answered_with_a_form_made_from_its_schema() {
    let console = Console::start().await;
    let browser = Browser::start().await;
    browser
        .goto(&console.url("/console/#/tools/demo__test_elicitation"))
        .await;
    let form = browser.find("form#tool-form").await;
    form.find("[name='message']")
        .await
        .send_keys("Who are you?")
        .await;
    browser.find("#tool-call").await.click().await;
    browser
        .wait_for_text("form#elicitation-form .message", "Who are you?")
        .await;
    let question = browser.find("form#elicitation-form").await;
    question
        .find("[name='username']")
        .await
        .send_keys("ada")
        .await;
    question
        .find("[name='email']")
        .await
        .send_keys("ada@example.com")
        .await;
    browser.screenshot("elicitation").await;
    browser.find("#elicitation-accept").await.click().await;
    let result = browser.wait_for_text("#tool-result", "action=accept").await;
    assert!(result.contains("ada@example.com"), "{result}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_document_uploaded_is_found_by_search_with_its_match_highlighted() {
    let console = Console::start().await;
    let files = tempfile::tempdir().unwrap();
    let path = files.path().join("zebra.md");
    std::fs::write(
        &path,
        "# Zebra field notes\n\nThe stripes of every zebra are unique, like fingerprints.\n",
    )
    .unwrap();
    let browser = Browser::start().await;
    browser.goto(&console.url("/console/#/documents")).await;
    browser
        .find("input#doc-upload")
        .await
        .upload(&[&path])
        .await;
    // Uploaded and listed in the library.
    browser
        .wait_for_text("[data-document]", "Zebra field notes")
        .await;
    let search = browser.find("input#doc-search").await;
    search.send_keys("stripes").await;
    browser.find("#doc-search-go").await.click().await;
    let hit = browser
        .wait_for_text("#doc-results .hit", "fingerprints")
        .await;
    assert!(hit.contains("Zebra field notes"), "{hit}");
    let marked = browser.find("#doc-results .hit mark").await.text().await;
    assert_eq!(marked.to_lowercase(), "stripes");
    browser
        .execute(
            "document.querySelector('#doc-results').scrollIntoView();",
            vec![],
        )
        .await;
    browser.screenshot("documents").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_workspace_switch_reaches_a_second_running_proxy() {
    let servers = json!({
        "demo": demo_with(&["--name", "demo"]),
        "calculator": demo_with(&["--name", "calculator"]),
    });
    let console = Console::serving(servers, &[]).await;
    // A second proxy on the same config and data dir, as a second client would run.
    let mut second = ProxyChild::spawn(
        tokio::process::Command::new(proxy_bin())
            .args(["--transport", "streamable-http", "--port", "0"])
            .arg("--config")
            .arg(console.dir.path().join("mcp.json"))
            .arg("--data-dir")
            .arg(console.dir.path().join("data"))
            .env_remove("PLUGGEDIN_API_KEY")
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped()),
    );
    let second_log = Log::capture(second.stderr.take().unwrap());
    let second_url = listening_url(&second_log).await.replace("/mcp", "");
    let http = reqwest::Client::new();
    let tools_of_second = || async {
        let answer: serde_json::Value = http
            .get(format!("{second_url}/api/v1/tools"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        answer["tools"]
            .as_array()
            .unwrap()
            .iter()
            .map(|tool| tool["name"].as_str().unwrap().to_owned())
            .collect::<Vec<String>>()
    };
    let deadline = tokio::time::Instant::now() + WAIT;
    while !tools_of_second()
        .await
        .iter()
        .any(|t| t.starts_with("calculator__"))
    {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{}",
            second_log.text()
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }

    let created = http
        .post(console.url("/api/v1/workspaces"))
        .json(&json!({"name": "quiet", "servers": ["demo"]}))
        .send()
        .await
        .unwrap();
    assert!(created.status().is_success(), "{:?}", created.text().await);
    let browser = Browser::start().await;
    browser.goto(&console.url("/console/#/workspaces")).await;
    browser
        .find("[data-workspace=quiet] button.switch")
        .await
        .click()
        .await;
    browser
        .wait_until(
            "the switched workspace is current",
            "return !!document.querySelector('[data-workspace=quiet].current');",
            vec![],
        )
        .await;
    browser.screenshot("workspaces").await;
    // The other proxy applies it when it next reads the settings.
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let tools = tools_of_second().await;
        if !tools.iter().any(|t| t.starts_with("calculator__")) {
            assert!(tools.iter().any(|t| t.starts_with("demo__")), "{tools:?}");
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{}",
            second_log.text()
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_console_command_attaches_to_a_running_stdio_proxy() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("mcp.json");
    let data = dir.path().join("data");
    std::fs::write(
        &config,
        json!({"mcpServers": {"demo": demo_with(&["--name", "demo"])}}).to_string(),
    )
    .unwrap();
    // The proxy an MCP client runs: stdin held open, nothing sent.
    let mut stdio = ProxyChild::spawn(
        tokio::process::Command::new(proxy_bin())
            .arg("--config")
            .arg(&config)
            .arg("--data-dir")
            .arg(&data)
            .env_remove("PLUGGEDIN_API_KEY")
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped()),
    );
    let stdio_pid = stdio.id().unwrap();
    let _stdin = stdio.stdin.take().unwrap();
    let stdio_log = Log::capture(stdio.stderr.take().unwrap());
    let socket = data.join("consoles").join(format!("{stdio_pid}.sock"));
    let deadline = tokio::time::Instant::now() + WAIT;
    while !socket.exists() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{}",
            stdio_log.text()
        );
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    let mut command = ProxyChild::spawn(
        tokio::process::Command::new(proxy_bin())
            .args(["console", "--port", "0", "--data-dir"])
            .arg(&data)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null()),
    );
    let mut out = tokio::io::BufReader::new(command.stdout.take().unwrap()).lines();
    let line = tokio::time::timeout(WAIT, out.next_line())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert!(
        line.contains(&format!("attached to the proxy of process {stdio_pid}")),
        "{line}"
    );
    let url = line
        .split_whitespace()
        .find(|word| word.starts_with("http://"))
        .unwrap()
        .to_owned();

    let browser = Browser::start().await;
    browser.goto(&format!("{url}#/servers")).await;
    browser
        .wait_for_text("tr[data-server=demo] .state", "connected")
        .await;
    browser
        .wait_for_text(".attachment", &format!("process {stdio_pid}"))
        .await;
    browser.screenshot("console-command").await;
    // A call through the console runs on the stdio proxy's own server process.
    browser.goto(&format!("{url}#/tools/demo__pid")).await;
    browser.find("form#tool-form").await;
    browser.find("#tool-call").await.click().await;
    let pid = browser
        .wait_until(
            "the call's result",
            "const pre = document.querySelector('#tool-result pre');
             return pre && /^\\d+$/.test(pre.textContent.trim()) ? pre.textContent.trim() : null;",
            vec![],
        )
        .await;
    let pid = pid.as_str().unwrap().to_owned();
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let parent: u32 = stat
        .rsplit_once(')')
        .unwrap()
        .1
        .split_whitespace()
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(
        parent, stdio_pid,
        "the demo server {pid} is not the stdio proxy's child"
    );
    // Its stdout carries protocol only: nothing, as nothing was asked.
    drop(_stdin);
    let mut stdout = String::new();
    tokio::io::AsyncReadExt::read_to_string(stdio.stdout.as_mut().unwrap(), &mut stdout)
        .await
        .unwrap();
    assert_eq!(stdout, "");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_page_renders_without_errors() {
    let console = Console::start().await;
    let http = reqwest::Client::new();
    // Something for the activity page to draw.
    for (name, arguments) in [
        ("demo__add", json!({"a": 1, "b": 2})),
        ("demo__echo", json!({"message": "hi"})),
        ("demo__test_error_handling", json!({})),
    ] {
        http.post(console.url("/api/v1/tools/call"))
            .json(&json!({"name": name, "arguments": arguments}))
            .send()
            .await
            .unwrap();
    }
    let browser = Browser::start().await;
    for page in [
        "servers",
        "tools",
        "prompts",
        "resources",
        "documents",
        "notifications",
        "activity",
        "workspaces",
        "settings",
    ] {
        browser
            .goto(&console.url(&format!("/console/#/{page}")))
            .await;
        browser.find(&format!("section[data-page={page}]")).await;
        match page {
            "tools" => {
                browser.find("[data-tool='demo__echo']").await;
            }
            "activity" => {
                browser
                    .wait_until(
                        "the activity charts have bars",
                        "return document.querySelectorAll('svg.chart rect').length > 0;",
                        vec![],
                    )
                    .await;
                // The metrics' figures: the three calls above among the requests served.
                browser
                    .wait_until(
                        "the live figures from the metrics",
                        "const served = [...document.querySelectorAll('#activity-now .figure')]
                           .find((f) => f.querySelector('dt').textContent === 'Requests served');
                         return !!served &&
                                Number(served.querySelector('dd').textContent) >= 3;",
                        vec![],
                    )
                    .await;
            }
            "settings" => {
                browser.wait_for_text("#config", "demo").await;
            }
            _ => {}
        }
        browser.screenshot(&format!("page-{page}")).await;
    }
    let errors: Vec<serde_json::Value> = browser
        .console_messages()
        .await
        .into_iter()
        .filter(|message| message["level"] == "SEVERE")
        .collect();
    assert!(errors.is_empty(), "{errors:#?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_app_mode_the_apps_servers_are_read_only_and_calls_go_through_the_proxy() {
    let app = crate::app::standard_app().await;
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().to_str().unwrap().to_owned();
    let config = crate::app::app_config_file(dir.path());
    let url = app.url();
    let proxy = Background::start(
        proxy_bin(),
        &[
            "--transport",
            "streamable-http",
            "--port",
            "0",
            "--data-dir",
            &data_dir,
            "--config",
            config.to_str().unwrap(),
        ],
        &[
            ("PLUGGEDIN_API_KEY", crate::app_stub::KEY),
            ("PLUGGEDIN_API_BASE_URL", &url),
            ("RUST_LOG", "info"),
        ],
        "listening on http://",
    )
    .await;
    let base = listening_url(&proxy.log).await.replace("/mcp", "");
    let browser = Browser::start().await;
    browser.goto(&format!("{base}/console/#/servers")).await;
    browser
        .wait_for_text(".app-owned", "come from the plugged.in App")
        .await;
    let link = browser.find(".app-owned a").await.attribute("href").await;
    assert_eq!(link.as_deref(), Some("https://plugged.in"));
    browser.find("tr[data-server] .state").await;
    browser
        .wait_until(
            "the App's servers are listed with a restart button only",
            "const rows = document.querySelectorAll('tr[data-server]');
             return rows.length > 0 && [...rows].every((row) =>
               row.querySelector('button.restart') &&
               !row.querySelector('button.enable, button.disable'));",
            vec![],
        )
        .await;
    browser.screenshot("app-mode-servers").await;
    // The App's catalog, called through this proxy.
    browser.goto(&format!("{base}/console/#/tools")).await;
    let echo = browser
        .wait_until(
            "an echo tool of the App's catalog",
            "const tool = [...document.querySelectorAll('[data-tool]')]
               .find((t) => t.dataset.tool.endsWith('__echo'));
             return tool ? tool.dataset.tool : null;",
            vec![],
        )
        .await;
    let echo = echo.as_str().unwrap().to_owned();
    browser
        .goto(&format!("{base}/console/#/tools/{echo}"))
        .await;
    let form = browser.find("form#tool-form").await;
    form.find("[name='message']")
        .await
        .send_keys("through the proxy")
        .await;
    browser.find("#tool-call").await.click().await;
    browser
        .wait_for_text("#tool-result", "through the proxy")
        .await;
}
