//! A small W3C WebDriver client for the console's browser tests, over reqwest. It starts
//! ChromeDriver, which binds a port of its own and says which, opens one headless Chromium
//! session with a fresh profile, and drives the page through the protocol's JSON endpoints.
//! Finding waits: an element the page has not drawn yet is looked for again until a deadline.
//! Dropping a [`Browser`] closes the session (Chromium with it) and ends ChromeDriver and
//! everything it started; when a test is failing it first saves a screenshot and prints the
//! page's URL, the browser's console messages and ChromeDriver's output.

#![allow(
    dead_code,
    reason = "each console test uses a different part of the client"
)]

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine as _;
use reqwest::Method;
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncRead};
use tokio::sync::mpsc;

use crate::support::{WAIT, alive, descendants, proxy_bin};

/// How long finding an element or waiting for text may take: the page asks the API before it
/// draws, and a loaded machine runs Chromium slowly.
pub const PATIENCE: Duration = Duration::from_secs(30);
/// How often a wait looks again.
const POLL: Duration = Duration::from_millis(50);
/// The longest one WebDriver command may take (a navigation waits for the page to load).
const COMMAND: Duration = Duration::from_secs(90);
/// The key an element reference carries in WebDriver's JSON (the W3C web element identifier).
const ELEMENT_KEY: &str = "element-6066-11e4-a52e-4f735466cecf";
const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
/// Starts ChromeDriver (`$1`) on a port it picks and waits for its stdin to close, then ends its
/// process group. ChromeDriver, started in the background, reads `/dev/null`.
const GUARD: &str = "\"$1\" --port=0 & read -r _; kill -KILL 0";

/// What ChromeDriver answered instead of a value: the protocol's error code and message, or
/// `no answer` when the request itself failed.
#[derive(Debug)]
pub struct Failure {
    pub error: String,
    pub message: String,
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let message = self.message.lines().next().unwrap_or_default();
        write!(f, "{}: {message}", self.error)
    }
}

/// One WebDriver session: its URL on ChromeDriver (`http://127.0.0.1:PORT/session/ID`).
#[derive(Clone)]
struct Session {
    http: reqwest::Client,
    url: String,
}

impl Session {
    async fn command(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<Value, Failure> {
        let mut request = self
            .http
            .request(method.clone(), format!("{}{path}", self.url));
        if let Some(body) = body {
            request = request.json(&body);
        }
        let no_answer = |error: reqwest::Error| Failure {
            error: "no answer".into(),
            message: format!("{method} {path}: {error}"),
        };
        let response = request.send().await.map_err(no_answer)?;
        let status = response.status();
        let answer: Value = response.json().await.map_err(no_answer)?;
        let value = answer.get("value").cloned().unwrap_or(Value::Null);
        if status.is_success() {
            return Ok(value);
        }
        Err(Failure {
            error: value["error"]
                .as_str()
                .unwrap_or("unknown error")
                .to_owned(),
            message: value["message"].as_str().unwrap_or_default().to_owned(),
        })
    }

    async fn get(&self, path: &str) -> Result<Value, Failure> {
        self.command(Method::GET, path, None).await
    }

    async fn post(&self, path: &str, body: Value) -> Result<Value, Failure> {
        self.command(Method::POST, path, Some(body)).await
    }

    /// The element a find command answered.
    fn element(&self, value: &Value, css: &str) -> Element {
        Element {
            session: self.clone(),
            id: element_id(value).unwrap_or_else(|| panic!("not an element: {value}")),
            css: css.to_owned(),
        }
    }

    async fn current_url(&self) -> String {
        match self.get("/url").await {
            Ok(url) => url.as_str().unwrap_or_default().to_owned(),
            Err(failure) => format!("(unknown: {failure})"),
        }
    }
}

fn element_id(value: &Value) -> Option<String> {
    value[ELEMENT_KEY].as_str().map(str::to_owned)
}

fn css_locator(css: &str) -> Value {
    json!({"using": "css selector", "value": css})
}

/// Whether a failure may pass once the page has drawn further.
fn transient(failure: &Failure) -> bool {
    matches!(
        failure.error.as_str(),
        "no such element"
            | "stale element reference"
            | "element click intercepted"
            | "element not interactable"
    )
}

/// ChromeDriver's stdout and stderr, kept for a failing test's report.
#[derive(Clone, Default)]
struct Output(Arc<Mutex<String>>);

impl Output {
    /// Keeps `stream`'s lines, and sends each one to `lines` while anyone listens.
    fn capture(
        &self,
        stream: impl AsyncRead + Unpin + Send + 'static,
        lines: mpsc::UnboundedSender<String>,
    ) {
        let sink = self.clone();
        tokio::spawn(async move {
            let mut reader = tokio::io::BufReader::new(stream).lines();
            while let Ok(Some(line)) = reader.next_line().await {
                {
                    let mut text = sink.0.lock().unwrap();
                    text.push_str(&line);
                    text.push('\n');
                }
                let _ = lines.send(line);
            }
        });
    }

    fn text(&self) -> String {
        self.0.lock().unwrap().clone()
    }
}

/// Headless Chromium under a ChromeDriver of its own.
pub struct Browser {
    session: Session,
    driver: Driver,
    output: Output,
    /// The test's name, for the screenshot of a failure.
    test: String,
    _profile: tempfile::TempDir,
}

impl Browser {
    /// Starts ChromeDriver on a port it picks and opens a session: headless Chromium with a
    /// fresh profile.
    pub async fn start() -> Browser {
        for program in [CHROMEDRIVER, CHROMIUM] {
            assert!(
                Path::new(program).is_file(),
                "{program} is missing: run scripts/test-deps.sh first"
            );
        }
        // reqwest is built with rustls but no provider of its own.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let profile = tempfile::tempdir().unwrap();
        // ChromeDriver now and then never gets as far as saying its port on a loaded machine:
        // another one is started in its place (the first ends with its guard).
        let mut attempts = 1;
        let (driver, output, port) = loop {
            match start_driver().await {
                Ok(started) => break started,
                Err(said) if attempts < DRIVER_ATTEMPTS => {
                    eprintln!("ChromeDriver did not start, starting another:\n{said}");
                    attempts += 1;
                }
                Err(said) => panic!("{said}"),
            }
        };
        let http = reqwest::Client::builder().timeout(COMMAND).build().unwrap();
        let base = format!("http://127.0.0.1:{port}");
        wait_ready(&http, &base, &output).await;
        let session = open_session(&http, &base, profile.path(), &output).await;
        let test = std::thread::current()
            .name()
            .filter(|name| *name != "main")
            .unwrap_or("browser")
            .replace("::", "-");
        Browser {
            session,
            driver,
            output,
            test,
            _profile: profile,
        }
    }

    /// Opens `url` and waits until it has loaded.
    pub async fn goto(&self, url: &str) {
        self.session
            .post("/url", json!({ "url": url }))
            .await
            .unwrap_or_else(|failure| panic!("opening {url}: {failure}"));
    }

    /// Loads the current page again.
    pub async fn refresh(&self) {
        self.session
            .post("/refresh", json!({}))
            .await
            .unwrap_or_else(|failure| panic!("reloading: {failure}"));
    }

    /// The URL the page is at.
    pub async fn current_url(&self) -> String {
        self.session.current_url().await
    }

    /// The page's `<title>`.
    pub async fn title(&self) -> String {
        let title = self.session.get("/title").await;
        let title = title.unwrap_or_else(|failure| panic!("the title: {failure}"));
        title.as_str().unwrap_or_default().to_owned()
    }

    /// The first element matching `css`, once there is one.
    pub async fn find(&self, css: &str) -> Element {
        let deadline = Instant::now() + PATIENCE;
        loop {
            match self.session.post("/element", css_locator(css)).await {
                Ok(value) => return self.session.element(&value, css),
                Err(failure) if transient(&failure) && Instant::now() < deadline => {}
                Err(failure) => panic!(
                    "no element matches {css:?} at {} ({failure})",
                    self.current_url().await
                ),
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// Every element matching `css` now (none is an answer: this does not wait).
    pub async fn find_all(&self, css: &str) -> Vec<Element> {
        let found = self.session.post("/elements", css_locator(css)).await;
        let found = found.unwrap_or_else(|failure| panic!("finding {css:?}: {failure}"));
        let found = found.as_array().cloned().unwrap_or_default();
        found
            .iter()
            .map(|value| self.session.element(value, css))
            .collect()
    }

    /// The text of the first element matching `css`, once it contains `needle`.
    pub async fn wait_for_text(&self, css: &str, needle: &str) -> String {
        let deadline = Instant::now() + PATIENCE;
        let mut seen = None;
        loop {
            // Found again each time: the page may draw the element anew.
            let text = match self.session.post("/element", css_locator(css)).await {
                Ok(value) => {
                    let element = self.session.element(&value, css);
                    element
                        .session
                        .get(&format!("/element/{}/text", element.id))
                        .await
                }
                Err(failure) => Err(failure),
            };
            match text {
                Ok(text) => {
                    let text = text.as_str().unwrap_or_default().to_owned();
                    if text.contains(needle) {
                        return text;
                    }
                    seen = Some(text);
                }
                Err(failure) if transient(&failure) => {}
                Err(failure) => panic!("reading {css:?}: {failure}"),
            }
            if Instant::now() >= deadline {
                let url = self.current_url().await;
                match seen {
                    Some(text) => {
                        panic!("{css:?} never said {needle:?} at {url}; it says {text:?}")
                    }
                    None => panic!("no element matches {css:?} at {url} (waiting for {needle:?})"),
                }
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// Runs `script` (a function body: `arguments[i]`, `return …`) in the page and answers what
    /// it returns. [`Element::arg`] passes an element.
    pub async fn execute(&self, script: &str, args: Vec<Value>) -> Value {
        let body = json!({ "script": script, "args": args });
        let result = self.session.post("/execute/sync", body).await;
        result.unwrap_or_else(|failure| panic!("running {script:?}: {failure}"))
    }

    /// Runs `script` until it returns something truthy (not `null`, `false`, `0` or `""`), and
    /// answers that; `what` names the wait in the failure.
    pub async fn wait_until(&self, what: &str, script: &str, args: Vec<Value>) -> Value {
        let deadline = Instant::now() + PATIENCE;
        loop {
            let value = self.execute(script, args.clone()).await;
            let truthy = match &value {
                Value::Null | Value::Bool(false) => false,
                Value::Number(number) => number.as_f64() != Some(0.0),
                Value::String(text) => !text.is_empty(),
                _ => true,
            };
            if truthy {
                return value;
            }
            if Instant::now() >= deadline {
                panic!(
                    "{what}: never so at {} (last {value})",
                    self.current_url().await
                );
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// Picks the option with `value` of the `<select>` matching `css` by clicking it, as a user
    /// does (the page sees `input` and `change`).
    pub async fn select_option(&self, css: &str, value: &str) {
        let select = self.find(css).await;
        let option = select
            .find(&format!("option[value=\"{}\"]", css_string(value)))
            .await;
        option.click().await;
        let chosen = select.property("value").await;
        assert_eq!(chosen, value, "{css:?} did not take {value:?}");
    }

    /// Accepts the page's `alert`, `confirm` or `prompt`, once it shows; its text.
    pub async fn accept_dialog(&self) -> String {
        let deadline = Instant::now() + PATIENCE;
        loop {
            match self.session.get("/alert/text").await {
                Ok(text) => {
                    let accepted = self.session.post("/alert/accept", json!({})).await;
                    accepted.unwrap_or_else(|failure| panic!("accepting the dialog: {failure}"));
                    return text.as_str().unwrap_or_default().to_owned();
                }
                Err(failure) if failure.error == "no such alert" && Instant::now() < deadline => {}
                Err(failure) => panic!("no dialog at {} ({failure})", self.current_url().await),
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// Saves what the window shows as `target/console-screenshots/<name>.png`; its path.
    pub async fn screenshot(&self, name: &str) -> PathBuf {
        let png = self.session.get("/screenshot").await;
        let png = png.unwrap_or_else(|failure| panic!("the screenshot: {failure}"));
        save_screenshot(name, &png).unwrap_or_else(|e| panic!("saving the screenshot: {e}"))
    }

    /// What the page wrote to its console, and the browser's own complaints about it (a script
    /// that failed, a resource the Content-Security-Policy refused) since the last call: each a
    /// `{level, message, timestamp}`.
    pub async fn console_messages(&self) -> Vec<Value> {
        let log = self
            .session
            .post("/se/log", json!({"type": "browser"}))
            .await;
        let log = log.unwrap_or_else(|failure| panic!("the browser's console: {failure}"));
        log.as_array().cloned().unwrap_or_default()
    }
}

/// The port in ChromeDriver's "ChromeDriver was started successfully on port N." line.
/// How many times a ChromeDriver is started before a test gives up.
const DRIVER_ATTEMPTS: u32 = 3;

/// Starts ChromeDriver on a port it picks: the driver, its output and the port; or what it
/// said when it did not get that far within [`WAIT`].
async fn start_driver() -> Result<(Driver, Output, u16), String> {
    // ChromeDriver under a guard: a shell leading a process group of its own (ChromeDriver
    // and the Chromium it starts stay in it), which ends the group once its stdin closes —
    // when the browser is dropped, or when the test process dies without dropping it.
    let mut driver = tokio::process::Command::new("sh")
        .args(["-c", GUARD, "chromedriver-guard", CHROMEDRIVER])
        .process_group(0)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("sh starts");
    let output = Output::default();
    let (lines, mut said) = mpsc::unbounded_channel();
    output.capture(driver.stdout.take().unwrap(), lines.clone());
    output.capture(driver.stderr.take().unwrap(), lines);
    let mut driver = Driver {
        pid: driver.id().expect("the guard has a pid"),
        // Held apart: waiting on the child would close it.
        stdin: driver.stdin.take(),
        guard: driver,
    };
    // ChromeDriver binds port 0 and prints the port it got.
    let deadline = tokio::time::Instant::now() + WAIT;
    let port = loop {
        tokio::select! {
            line = said.recv() => match line {
                Some(line) => if let Some(port) = started_on(&line) {
                    break port;
                },
                None => {
                    return Err(format!("ChromeDriver closed its output:\n{}", output.text()));
                }
            },
            status = driver.guard.wait() => {
                return Err(format!(
                    "ChromeDriver's guard exited ({status:?}):\n{}",
                    output.text()
                ));
            }
            () = tokio::time::sleep_until(deadline) => {
                return Err(format!("ChromeDriver never said its port:\n{}", output.text()));
            }
        }
    };
    drop(said);
    Ok((driver, output, port))
}

fn started_on(line: &str) -> Option<u16> {
    let (_, rest) = line.split_once("started successfully on port ")?;
    rest.trim_end_matches(|c: char| !c.is_ascii_digit())
        .parse()
        .ok()
}

/// Waits until ChromeDriver's `/status` says it is ready for a session.
async fn wait_ready(http: &reqwest::Client, base: &str, output: &Output) {
    let deadline = Instant::now() + WAIT;
    loop {
        let status = match http.get(format!("{base}/status")).send().await {
            Ok(response) => response.json::<Value>().await.ok(),
            Err(_) => None,
        };
        if status
            .as_ref()
            .is_some_and(|status| status["value"]["ready"] == true)
        {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "ChromeDriver at {base} never said it was ready (last {status:?}):\n{}",
            output.text()
        );
        tokio::time::sleep(POLL).await;
    }
}

/// Opens a session: headless Chromium with `profile` as its user data dir.
async fn open_session(
    http: &reqwest::Client,
    base: &str,
    profile: &Path,
    output: &Output,
) -> Session {
    let args = [
        "--headless=new".to_owned(),
        "--no-sandbox".into(),
        "--disable-gpu".into(),
        "--disable-dev-shm-usage".into(),
        "--disable-quic".into(),
        "--no-first-run".into(),
        "--disable-background-networking".into(),
        "--disable-component-update".into(),
        "--disable-sync".into(),
        "--window-size=1280,900".into(),
        format!("--user-data-dir={}", profile.display()),
    ];
    let capabilities = json!({"capabilities": {"alwaysMatch": {
        "pageLoadStrategy": "normal",
        "timeouts": {"implicit": 0, "pageLoad": 60_000, "script": 30_000},
        "goog:chromeOptions": {"binary": CHROMIUM, "args": args},
        "goog:loggingPrefs": {"browser": "ALL"},
    }}});
    let response = http
        .post(format!("{base}/session"))
        .json(&capabilities)
        .send()
        .await
        .unwrap_or_else(|e| panic!("ChromeDriver did not answer the new session: {e}"));
    let answer: Value = response.json().await.unwrap();
    let Some(id) = answer["value"]["sessionId"].as_str() else {
        panic!("no session: {answer}\n{}", output.text());
    };
    Session {
        http: http.clone(),
        url: format!("{base}/session/{id}"),
    }
}

/// `value` as the inside of a double-quoted CSS string.
fn css_string(value: &str) -> String {
    value.replace('\\', "\\\\").replace('"', "\\\"")
}

/// Where screenshots go: `console-screenshots/` in the build's target directory.
pub fn screenshot_dir() -> PathBuf {
    // The binaries are in `<target>/<profile>/`, wherever CARGO_TARGET_DIR put it.
    let target = Path::new(proxy_bin()).parent().and_then(Path::parent);
    let target = target.map_or_else(
        || Path::new(env!("CARGO_MANIFEST_DIR")).join("target"),
        Path::to_owned,
    );
    target.join("console-screenshots")
}

fn save_screenshot(name: &str, png: &Value) -> std::io::Result<PathBuf> {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(png.as_str().unwrap_or_default())
        .map_err(std::io::Error::other)?;
    let dir = screenshot_dir();
    std::fs::create_dir_all(&dir)?;
    let path = dir.join(format!("{name}.png"));
    std::fs::write(&path, bytes)?;
    Ok(path)
}

impl Drop for Browser {
    fn drop(&mut self) {
        let failing = std::thread::panicking();
        let url = self.session.url.clone();
        let test = self.test.clone();
        // The test's runtime may be unwinding, or one that cannot block: a thread of our own with
        // its own runtime and client speaks to ChromeDriver.
        let report = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async {
                let http = reqwest::Client::builder().timeout(WAIT).build().unwrap();
                let session = Session { http, url };
                let mut report = String::new();
                if failing {
                    report = format!("--- browser at {} ---\n", session.current_url().await);
                    if let Ok(png) = session.get("/screenshot").await
                        && let Ok(path) = save_screenshot(&format!("failed-{test}"), &png)
                    {
                        report.push_str(&format!("screenshot: {}\n", path.display()));
                    }
                    let log = session.post("/se/log", json!({"type": "browser"})).await;
                    for entry in log
                        .ok()
                        .and_then(|log| log.as_array().cloned())
                        .unwrap_or_default()
                    {
                        report.push_str(&format!("{} {}\n", entry["level"], entry["message"]));
                    }
                }
                // Closing the session ends Chromium.
                let _ = session.command(Method::DELETE, "", None).await;
                report
            })
        })
        .join()
        .unwrap_or_default();
        if failing {
            eprintln!(
                "{report}--- chromedriver output ---\n{}",
                self.output.text()
            );
        }
        // ChromeDriver ends as the fields drop (`Driver`).
    }
}

/// ChromeDriver's guard (see [`GUARD`]); dropping it ends ChromeDriver and what it started.
struct Driver {
    guard: tokio::process::Child,
    pid: u32,
    /// Open while the browser is wanted; closing it ends the group.
    stdin: Option<tokio::process::ChildStdin>,
}

impl Drop for Driver {
    /// The guard ends the process group once its stdin closes; should anything outlive that,
    /// the group and every process that was below the guard are killed. Chromium's crash
    /// handlers, which leave the group, exit with Chromium.
    fn drop(&mut self) {
        let mut started = descendants(self.pid);
        started.push(self.pid);
        drop(self.stdin.take());
        let deadline = Instant::now() + WAIT;
        while started.iter().any(|pid| alive(*pid)) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        let kill = |target: String| {
            let _ = std::process::Command::new("kill")
                .args(["-KILL", "--", &target])
                .stderr(Stdio::null())
                .status();
        };
        if started.iter().any(|pid| alive(*pid)) {
            kill(format!("-{}", self.pid));
            for process in started.into_iter().filter(|process| alive(*process)) {
                kill(process.to_string());
            }
        }
        // Reaped here rather than left to the runtime.
        let _ = self.guard.try_wait();
    }
}

/// An element on the page; `css` is how it was found, for failures.
#[derive(Clone)]
pub struct Element {
    session: Session,
    id: String,
    css: String,
}

impl Element {
    fn path(&self, rest: &str) -> String {
        format!("/element/{}{rest}", self.id)
    }

    fn expect<T>(&self, what: &str, result: Result<T, Failure>) -> T {
        result.unwrap_or_else(|failure| panic!("{what} {:?}: {failure}", self.css))
    }

    /// The element as an argument of [`Browser::execute`].
    pub fn arg(&self) -> Value {
        json!({ ELEMENT_KEY: self.id })
    }

    /// Clicks it, once it can be clicked (drawn, not covered).
    pub async fn click(&self) {
        let deadline = Instant::now() + PATIENCE;
        loop {
            match self.session.post(&self.path("/click"), json!({})).await {
                Ok(_) => return,
                Err(failure) if transient(&failure) && Instant::now() < deadline => {}
                Err(failure) => panic!("clicking {:?}: {failure}", self.css),
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// Types `text` into it.
    pub async fn send_keys(&self, text: &str) {
        let typed = self
            .session
            .post(&self.path("/value"), json!({ "text": text }))
            .await;
        self.expect("typing into", typed);
    }

    /// Puts files into an `<input type=file>` (several when it has `multiple`).
    pub async fn upload(&self, files: &[&Path]) {
        let paths: Vec<String> = files
            .iter()
            .map(|file| {
                let path = file
                    .canonicalize()
                    .unwrap_or_else(|e| panic!("{}: {e}", file.display()));
                path.to_str().unwrap().to_owned()
            })
            .collect();
        self.send_keys(&paths.join("\n")).await;
    }

    /// Empties an input or a textarea.
    pub async fn clear(&self) {
        let cleared = self.session.post(&self.path("/clear"), json!({})).await;
        self.expect("clearing", cleared);
    }

    /// Its rendered text.
    pub async fn text(&self) -> String {
        let text = self.session.get(&self.path("/text")).await;
        self.expect("the text of", text)
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }

    /// An attribute (`None` when it has none).
    pub async fn attribute(&self, name: &str) -> Option<String> {
        let value = self
            .session
            .get(&self.path(&format!("/attribute/{name}")))
            .await;
        self.expect("an attribute of", value)
            .as_str()
            .map(str::to_owned)
    }

    /// A DOM property (`value` of an input as it is now, `checked`, `disabled`).
    pub async fn property(&self, name: &str) -> Value {
        let value = self
            .session
            .get(&self.path(&format!("/property/{name}")))
            .await;
        self.expect("a property of", value)
    }

    /// The first element inside this one matching `css`, once there is one.
    pub async fn find(&self, css: &str) -> Element {
        let deadline = Instant::now() + PATIENCE;
        loop {
            match self
                .session
                .post(&self.path("/element"), css_locator(css))
                .await
            {
                Ok(value) => return self.session.element(&value, css),
                Err(failure) if transient(&failure) && Instant::now() < deadline => {}
                Err(failure) => panic!(
                    "nothing in {:?} matches {css:?} at {} ({failure})",
                    self.css,
                    self.session.current_url().await
                ),
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// Every element inside this one matching `css` now.
    pub async fn find_all(&self, css: &str) -> Vec<Element> {
        let found = self
            .session
            .post(&self.path("/elements"), css_locator(css))
            .await;
        let found = self.expect("finding inside", found);
        let found = found.as_array().cloned().unwrap_or_default();
        found
            .iter()
            .map(|value| self.session.element(value, css))
            .collect()
    }
}
