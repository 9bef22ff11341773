//! The console in a real browser: headless Chromium, driven over WebDriver, against the proxy in
//! Streamable HTTP mode with the demo server; and the headers the console's files are served
//! with.

use serde_json::json;

use crate::support::*;
use crate::webdriver::Browser;

/// The proxy over HTTP on loopback with the demo server; its log is printed when a test fails.
struct Console {
    _child: ProxyChild,
    log: Log,
    /// `http://127.0.0.1:PORT`
    base: String,
    _dir: tempfile::TempDir,
}

impl Console {
    async fn start() -> Console {
        Console::start_with(&[]).await
    }

    async fn start_with(args: &[&str]) -> Console {
        let dir = tempfile::tempdir().unwrap();
        let servers = json!({"demo": demo_with(&["--name", "demo"])});
        let (child, log, url) = spawn_http_proxy(&dir, servers, args).await;
        let port = url::Url::parse(&url).unwrap().port().unwrap();
        Console {
            _child: child,
            log,
            base: format!("http://127.0.0.1:{port}"),
            _dir: dir,
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
