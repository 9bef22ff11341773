//! The console's JSON API over the live proxy (`/api/v1/`): servers as they run, the catalog as
//! clients see it, and tool calls through the router, with the statuses that say what failed.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::support::*;

struct Api {
    _child: ProxyChild,
    base: String,
    http: reqwest::Client,
    _dir: tempfile::TempDir,
}

impl Api {
    /// A proxy over HTTP on loopback with a demo server and one that cannot start.
    async fn start() -> Api {
        Api::start_with(&[]).await
    }

    async fn start_with(args: &[&str]) -> Api {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let dir = tempfile::tempdir().unwrap();
        let config = json!({"mcpServers": {
            "demo": {"command": demo_bin(), "args": ["--name", "demo"],
                     "env": {"DEMO_SECRET": "s3cr3t-env-value"}},
            "broken": {"command": dir.path().join("no-such-server").to_str().unwrap()},
        }});
        std::fs::write(dir.path().join("mcp.json"), config.to_string()).unwrap();
        let mut child = ProxyChild::spawn(
            tokio::process::Command::new(proxy_bin())
                .args(["--transport", "streamable-http", "--port", "0"])
                .args(args)
                .arg("--config")
                .arg(dir.path().join("mcp.json"))
                .arg("--data-dir")
                .arg(dir.path().join("data"))
                .env_remove("PLUGGEDIN_API_KEY")
                .stdin(std::process::Stdio::null())
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::piped()),
        );
        let log = Log::capture(child.stderr.take().unwrap());
        let url = listening_url(&log).await;
        let port = url::Url::parse(&url).unwrap().port().unwrap();
        Api {
            _child: child,
            base: format!("http://127.0.0.1:{port}"),
            http: reqwest::Client::new(),
            _dir: dir,
        }
    }

    async fn get(&self, path: &str) -> (u16, Value) {
        let response = self
            .http
            .get(format!("{}{path}", self.base))
            .send()
            .await
            .unwrap();
        (response.status().as_u16(), response.json().await.unwrap())
    }

    async fn call(&self, body: Value) -> (u16, Value) {
        let response = self
            .http
            .post(format!("{}/api/v1/tools/call", self.base))
            .json(&body)
            .send()
            .await
            .unwrap();
        (response.status().as_u16(), response.json().await.unwrap())
    }

    /// The servers once both have settled (the proxy answers before its servers connect).
    async fn settled_servers(&self) -> Vec<Value> {
        let started = Instant::now();
        loop {
            let (status, body) = self.get("/api/v1/servers").await;
            assert_eq!(status, 200, "{body}");
            let servers = body["servers"].as_array().unwrap().clone();
            if servers.iter().all(|server| server["state"] != "starting") {
                return servers;
            }
            assert!(
                started.elapsed() < Duration::from_secs(60),
                "servers never settled: {body}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn servers_show_their_state_and_reason_without_secrets() {
    let api = Api::start().await;
    let servers = api.settled_servers().await;
    let by_name = |name: &str| {
        servers
            .iter()
            .find(|server| server["name"] == name)
            .unwrap_or_else(|| panic!("{name} missing: {servers:?}"))
            .clone()
    };
    let demo = by_name("demo");
    assert_eq!(demo["state"], "connected", "{demo}");
    assert_eq!(demo["transport"], "stdio");
    assert_eq!(demo["served"], true);
    assert!(demo["tools"].as_u64().unwrap() > 0, "{demo}");
    let broken = by_name("broken");
    assert_eq!(broken["state"], "failed", "{broken}");
    assert!(
        broken["reason"]
            .as_str()
            .unwrap()
            .contains("no-such-server"),
        "{broken}"
    );
    let (_, whole) = api.get("/api/v1/servers").await;
    assert!(!whole.to_string().contains("s3cr3t-env-value"), "{whole}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_catalog_is_searchable_and_a_tool_is_called_through_the_router() {
    let api = Api::start().await;
    api.settled_servers().await;
    let (status, found) = api.get("/api/v1/tools?q=echoes%20message").await;
    assert_eq!(status, 200);
    let names: Vec<&str> = found["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|tool| tool["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["demo__echo"], "{found}");
    assert!(found["tools"][0]["inputSchema"]["properties"]["message"].is_object());
    let (_, all) = api.get("/api/v1/tools").await;
    assert!(all["tools"].as_array().unwrap().len() > names.len());
    let (status, prompts) = api.get("/api/v1/prompts").await;
    assert_eq!(status, 200);
    assert!(prompts["prompts"].is_array(), "{prompts}");

    let (status, result) = api
        .call(json!({"name": "demo__echo", "arguments": {"message": "from the console"}}))
        .await;
    assert_eq!(status, 200, "{result}");
    assert_eq!(result["content"][0]["text"], "Echo: from the console");
    let (status, result) = api
        .call(json!({"name": "demo__add", "arguments": {"a": 2, "b": 3}}))
        .await;
    assert_eq!(status, 200, "{result}");
    assert_eq!(result["structuredContent"]["sum"], 5);

    let (status, unknown) = api.call(json!({"name": "demo__nope"})).await;
    assert_eq!(status, 404, "{unknown}");
    assert!(
        unknown["error"].as_str().unwrap().contains("demo__nope"),
        "{unknown}"
    );
    let (status, bad) = api
        .call(json!({"name": "demo__echo", "arguments": [1, 2]}))
        .await;
    assert_eq!(status, 400, "{bad}");
    let (status, bad) = api.call(json!({"arguments": {}})).await;
    assert_eq!(status, 400, "{bad}");
    // Arguments the server refuses are the caller's to fix, with the server's reason.
    let (status, refused) = api
        .call(json!({"name": "demo__echo", "arguments": {"wrong": true}}))
        .await;
    assert_eq!(status, 400, "{refused}");
    assert!(
        refused["error"].as_str().unwrap().contains("message"),
        "{refused}"
    );
    let (status, foreign) = {
        let response = api
            .http
            .get(format!("{}/api/v1/servers", api.base))
            .header("Origin", "https://evil.example")
            .send()
            .await
            .unwrap();
        (response.status().as_u16(), response.text().await.unwrap())
    };
    assert_eq!(status, 403, "{foreign}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn servers_switch_off_and_on_and_notifications_and_activity_are_listed() {
    let api = Api::start().await;
    api.settled_servers().await;
    let post = |path: String| {
        api.http
            .post(format!("{}{path}", api.base))
            .json(&json!({}))
    };

    let off = post("/api/v1/servers/demo/disable".into())
        .send()
        .await
        .unwrap();
    assert_eq!(off.status(), 200);
    let (_, servers) = api.get("/api/v1/servers").await;
    assert_eq!(servers["servers"][1]["name"], "demo", "{servers}");
    assert_eq!(servers["servers"][1]["served"], false, "{servers}");
    let (status, gone) = api
        .call(json!({"name": "demo__echo", "arguments": {"message": "x"}}))
        .await;
    assert_eq!(status, 404, "{gone}");
    let on = post("/api/v1/servers/demo/enable".into())
        .send()
        .await
        .unwrap();
    assert_eq!(on.status(), 200);
    let (status, back) = api
        .call(json!({"name": "demo__echo", "arguments": {"message": "x"}}))
        .await;
    assert_eq!(status, 200, "{back}");
    let unknown = post("/api/v1/servers/nope/enable".into())
        .send()
        .await
        .unwrap();
    assert_eq!(unknown.status(), 404);

    // A notification sent through a built-in tool is listed, marked done, and deleted.
    let (status, sent) = api
        .call(json!({"name": "pluggedin_send_notification",
                     "arguments": {"title": "From the API", "message": "hello"}}))
        .await;
    assert_eq!(status, 200, "{sent}");
    let (_, listed) = api.get("/api/v1/notifications").await;
    let first = &listed["notifications"][0];
    assert_eq!(first["title"], "From the API", "{listed}");
    assert_eq!(first["completed"], false);
    let id = first["id"].as_str().unwrap().to_owned();
    let done = post(format!("/api/v1/notifications/{id}/done"))
        .send()
        .await
        .unwrap();
    assert_eq!(done.status(), 200);
    let (_, listed) = api.get("/api/v1/notifications").await;
    assert_eq!(listed["notifications"][0]["completed"], true, "{listed}");
    let delete = |id: String| {
        api.http
            .delete(format!("{}/api/v1/notifications/{id}", api.base))
            .send()
    };
    assert_eq!(delete(id.clone()).await.unwrap().status(), 200);
    assert_eq!(delete(id).await.unwrap().status(), 404);

    // The calls above reach the activity log (written in the background): waited for.
    let started = Instant::now();
    loop {
        let (status, stats) = api.get("/api/v1/activity/stats").await;
        assert_eq!(status, 200, "{stats}");
        let echo = stats["stats"]
            .as_array()
            .unwrap()
            .iter()
            .find(|row| row["server"] == "demo" && row["item"] == "echo")
            .cloned();
        if let Some(echo) = echo {
            assert!(echo["calls"].as_u64().unwrap() >= 1, "{echo}");
            assert!(echo["p95Ms"].as_i64().unwrap() >= echo["p50Ms"].as_i64().unwrap());
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "no activity: {stats}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn documents_are_listed_searched_read_and_deleted_and_workspaces_switch() {
    let api = Api::start().await;
    api.settled_servers().await;
    let (status, created) = api
        .call(json!({"name": "pluggedin_create_document", "arguments": {
            "title": "Harbour notes", "content": "The lighthouse keeper logs every passing ship.",
            "tags": ["sea"],
            "metadata": {"model": {"name": "claude", "provider": "anthropic"}}}}))
        .await;
    assert_eq!(status, 200, "{created}");
    let (status, listed) = api.get("/api/v1/documents?tags=sea&sort=title").await;
    assert_eq!(status, 200, "{listed}");
    assert_eq!(listed["total"], 1, "{listed}");
    let id = listed["documents"][0]["id"].as_str().unwrap().to_owned();
    assert!(listed["documents"][0].get("content").is_none());
    let (_, none) = api.get("/api/v1/documents?tags=land").await;
    assert_eq!(none["total"], 0, "{none}");
    let (status, bad) = api.get("/api/v1/documents?sort=colour").await;
    assert_eq!(status, 400, "{bad}");

    let (status, found) = api.get("/api/v1/documents/search?q=lighthouse").await;
    assert_eq!(status, 200, "{found}");
    assert_eq!(found["hits"][0]["document"]["id"], id.as_str(), "{found}");
    assert!(
        found["hits"][0]["snippet"]
            .as_str()
            .unwrap()
            .contains("**lighthouse**"),
        "{found}"
    );
    let (status, _) = api.get("/api/v1/documents/search").await;
    assert_eq!(status, 400);

    let (status, one) = api.get(&format!("/api/v1/documents/{id}")).await;
    assert_eq!(status, 200, "{one}");
    assert_eq!(
        one["content"],
        "The lighthouse keeper logs every passing ship."
    );
    assert_eq!(one["versions"][0]["version"], 1, "{one}");
    assert_eq!(one["model"]["provider"], "anthropic", "{one}");
    let delete = |path: String| api.http.delete(format!("{}{path}", api.base)).send();
    assert_eq!(
        delete(format!("/api/v1/documents/{id}"))
            .await
            .unwrap()
            .status(),
        200
    );
    let (status, _) = api.get(&format!("/api/v1/documents/{id}")).await;
    assert_eq!(status, 404);

    // A workspace of the broken server alone hides the demo server's tools; leaving it brings
    // them back.
    let post = |path: &str, body: Value| {
        api.http
            .post(format!("{}{path}", api.base))
            .json(&body)
            .send()
    };
    let made = post(
        "/api/v1/workspaces",
        json!({"name": "quiet", "servers": ["broken"]}),
    )
    .await
    .unwrap();
    assert_eq!(made.status(), 201);
    let again = post(
        "/api/v1/workspaces",
        json!({"name": "quiet", "servers": ["broken"]}),
    )
    .await
    .unwrap();
    assert_eq!(again.status(), 409);
    let unknown = post(
        "/api/v1/workspaces",
        json!({"name": "x", "servers": ["nope"]}),
    )
    .await
    .unwrap();
    assert_eq!(unknown.status(), 400);
    let switched = post("/api/v1/workspaces/switch", json!({"name": "quiet"}))
        .await
        .unwrap();
    assert_eq!(switched.status(), 200);
    let (_, spaces) = api.get("/api/v1/workspaces").await;
    assert_eq!(spaces["active"], "quiet", "{spaces}");
    assert_eq!(spaces["workspaces"][0]["servers"], json!(["broken"]));
    let (status, hidden) = api
        .call(json!({"name": "demo__echo", "arguments": {"message": "x"}}))
        .await;
    assert_eq!(status, 404, "{hidden}");
    let missing = post("/api/v1/workspaces/switch", json!({"name": "nowhere"}))
        .await
        .unwrap();
    assert_eq!(missing.status(), 404);
    let all = post("/api/v1/workspaces/switch", json!({"name": null}))
        .await
        .unwrap();
    assert_eq!(all.status(), 200);
    let (status, back) = api
        .call(json!({"name": "demo__echo", "arguments": {"message": "x"}}))
        .await;
    assert_eq!(status, 200, "{back}");
    assert_eq!(
        delete("/api/v1/workspaces/quiet".into())
            .await
            .unwrap()
            .status(),
        200
    );
    assert_eq!(
        delete("/api/v1/workspaces/quiet".into())
            .await
            .unwrap()
            .status(),
        404
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prompts_are_filled_in_and_resources_read() {
    let api = Api::start().await;
    api.settled_servers().await;
    let post = |path: &str, body: Value| {
        let request = api.http.post(format!("{}{path}", api.base)).json(&body);
        async move {
            let response = request.send().await.unwrap();
            let status = response.status().as_u16();
            (status, response.json::<Value>().await.unwrap())
        }
    };
    let (status, prompt) = post(
        "/api/v1/prompts/get",
        json!({"name": "demo__test_prompt_with_arguments",
               "arguments": {"arg1": "sea", "arg2": "sky"}}),
    )
    .await;
    assert_eq!(status, 200, "{prompt}");
    assert_eq!(
        prompt["messages"][0]["content"]["text"],
        "Prompt with arguments: arg1='sea', arg2='sky'"
    );
    let (status, unknown) = post("/api/v1/prompts/get", json!({"name": "demo__nope"})).await;
    assert_eq!(status, 404, "{unknown}");

    let (status, listed) = api.get("/api/v1/resources").await;
    assert_eq!(status, 200, "{listed}");
    let uris: Vec<&str> = listed["resources"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|resource| resource["uri"].as_str())
        .collect();
    let text_uri = *uris
        .iter()
        .find(|uri| uri.contains("static-text"))
        .unwrap_or_else(|| panic!("{listed}"));
    assert!(
        !listed["templates"].as_array().unwrap().is_empty(),
        "{listed}"
    );
    let (status, read) = post("/api/v1/resources/read", json!({"uri": text_uri})).await;
    assert_eq!(status, 200, "{read}");
    assert_eq!(
        read["contents"][0]["text"],
        "This is the content of the static text resource."
    );
    let (status, missing) = post("/api/v1/resources/read", json!({"uri": "nowhere://x"})).await;
    assert_eq!(status, 404, "{missing}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_is_off_beyond_loopback_without_auth() {
    let api = Api::start_with(&["--host", "0.0.0.0"]).await;
    let (status, why) = api.get("/api/v1/servers").await;
    assert_eq!(status, 403);
    assert!(
        why["error"]
            .as_str()
            .unwrap()
            .contains("--require-api-auth"),
        "{why}"
    );
    let (status, _) = api.get("/api/registry/search?q=time").await;
    assert_eq!(status, 403);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_counts_calls_and_changes_against_the_rate_limits() {
    let api = Api::start_with(&["--rate-limit-tools", "2", "--rate-limit-requests", "3"]).await;
    let echo = json!({"name": "demo__echo", "arguments": {"message": "hi"}});
    for _ in 0..2 {
        let (status, body) = api.call(echo.clone()).await;
        assert_eq!(status, 200, "{body}");
    }
    let response = api
        .http
        .post(format!("{}/api/v1/tools/call", api.base))
        .json(&echo)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 429);
    let retry: u64 = response.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&retry), "{retry}");
    let body: Value = response.json().await.unwrap();
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .contains("rate limit of 2 tool calls"),
        "{body}"
    );
    // Reads are not counted: the console polls them.
    for _ in 0..5 {
        assert_eq!(api.get("/api/v1/servers").await.0, 200);
    }
}
