//! OAuth downstream: the proxy in front of our demo server's `--require-token` HTTP mode, which
//! publishes protected-resource metadata naming a test authorization server (below, an axum
//! server speaking the real OAuth endpoints: RFC 8414 metadata, RFC 7591 registration, the
//! authorization endpoint with PKCE, the token endpoint with the code and refresh grants). The
//! user's part of `pluggedin-mcp-proxy auth` is played by an HTTP client following the printed
//! URL, as a browser would.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::extract::{Form, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use base64::Engine;
use serde_json::{Value, json};
use sha2::Digest;
use tokio::io::AsyncBufReadExt;

use crate::support::*;

/// The token the demo server requires; the authorization server issues it.
const ACCESS: &str = "demo-access-token";

#[derive(Default)]
struct AsState {
    issuer: String,
    /// Registered client id -> its redirect URIs.
    clients: HashMap<String, Vec<String>>,
    /// Issued code -> (client id, PKCE challenge, resource).
    codes: HashMap<String, (String, String, String)>,
    /// The refresh token currently valid.
    refresh: Option<String>,
    /// What happened, in order: "register", "authorize", "token:<grant>".
    log: Vec<String>,
    /// The `resource` of every authorization and token request.
    resources: Vec<String>,
}

type Shared = Arc<Mutex<AsState>>;

async fn metadata(State(state): State<Shared>) -> Json<Value> {
    let issuer = state.lock().unwrap().issuer.clone();
    Json(json!({
        "issuer": issuer,
        "authorization_endpoint": format!("{issuer}/authorize"),
        "token_endpoint": format!("{issuer}/token"),
        "registration_endpoint": format!("{issuer}/register"),
        "response_types_supported": ["code"],
        "grant_types_supported": ["authorization_code", "refresh_token"],
        "code_challenge_methods_supported": ["S256"],
        "token_endpoint_auth_methods_supported": ["none"],
        "authorization_response_iss_parameter_supported": true,
    }))
}

async fn register(State(state): State<Shared>, Json(body): Json<Value>) -> Response {
    let mut state = state.lock().unwrap();
    let redirects: Vec<String> = body["redirect_uris"]
        .as_array()
        .map(|uris| {
            uris.iter()
                .filter_map(|u| u.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    if redirects.is_empty() {
        return (
            StatusCode::BAD_REQUEST,
            Json(json!({"error": "invalid_redirect_uri"})),
        )
            .into_response();
    }
    let id = format!("client-{}", state.clients.len() + 1);
    state.clients.insert(id.clone(), redirects.clone());
    state.log.push("register".into());
    (
        StatusCode::CREATED,
        Json(json!({"client_id": id, "redirect_uris": redirects, "token_endpoint_auth_method": "none"})),
    )
        .into_response()
}

async fn authorize(
    State(state): State<Shared>,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let mut state = state.lock().unwrap();
    let client = query.get("client_id").cloned().unwrap_or_default();
    let redirect = query.get("redirect_uri").cloned().unwrap_or_default();
    let registered = state
        .clients
        .get(&client)
        .is_some_and(|uris| uris.contains(&redirect));
    if !registered
        || query.get("response_type").map(String::as_str) != Some("code")
        || query.get("code_challenge_method").map(String::as_str) != Some("S256")
    {
        return (StatusCode::BAD_REQUEST, "bad authorization request").into_response();
    }
    let resource = query.get("resource").cloned().unwrap_or_default();
    state.resources.push(resource.clone());
    let code = format!("code-{}", state.codes.len() + 1);
    state.codes.insert(
        code.clone(),
        (client, query["code_challenge"].clone(), resource),
    );
    state.log.push("authorize".into());
    let mut target = url::Url::parse(&redirect).unwrap();
    target
        .query_pairs_mut()
        .append_pair("code", &code)
        .append_pair("state", query.get("state").map_or("", String::as_str))
        .append_pair("iss", &state.issuer);
    Redirect::to(target.as_str()).into_response()
}

async fn token(State(state): State<Shared>, Form(form): Form<HashMap<String, String>>) -> Response {
    let mut state = state.lock().unwrap();
    let refused =
        |error: &str| (StatusCode::BAD_REQUEST, Json(json!({"error": error}))).into_response();
    let grant = form.get("grant_type").cloned().unwrap_or_default();
    state
        .resources
        .push(form.get("resource").cloned().unwrap_or_default());
    match grant.as_str() {
        "authorization_code" => {
            let Some((client, challenge, resource)) =
                form.get("code").and_then(|code| state.codes.remove(code))
            else {
                return refused("invalid_grant");
            };
            let verifier = form.get("code_verifier").cloned().unwrap_or_default();
            let computed = base64::engine::general_purpose::URL_SAFE_NO_PAD
                .encode(sha2::Sha256::digest(verifier.as_bytes()));
            if computed != challenge
                || form.get("client_id") != Some(&client)
                || form.get("resource") != Some(&resource)
            {
                return refused("invalid_grant");
            }
        }
        "refresh_token" => {
            if form.get("refresh_token") != state.refresh.as_ref() {
                return refused("invalid_grant");
            }
        }
        _ => return refused("unsupported_grant_type"),
    }
    state.log.push(format!("token:{grant}"));
    let refresh = format!("refresh-{}", state.log.len());
    state.refresh = Some(refresh.clone());
    // Expired on arrival: every use refreshes first.
    Json(
        json!({"access_token": ACCESS, "token_type": "Bearer", "expires_in": 0,
                "refresh_token": refresh}),
    )
    .into_response()
}

async fn authorization_server() -> (Shared, String) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let issuer = format!("http://{}", listener.local_addr().unwrap());
    let state: Shared = Arc::new(Mutex::new(AsState {
        issuer: issuer.clone(),
        ..AsState::default()
    }));
    let app = Router::new()
        .route("/.well-known/oauth-authorization-server", get(metadata))
        .route("/register", post(register))
        .route("/authorize", get(authorize))
        .route("/token", post(token))
        .with_state(state.clone());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (state, issuer)
}

// Multi-threaded: the authorization server lives in this process and must answer while the test
// waits for a CLI command.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oauth_protected_server_is_authorized_with_auth_and_refreshed() {
    authorized_with_auth("--http", "streamable-http").await;
}

// The same through a legacy HTTP+SSE server.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oauth_protected_sse_server_is_authorized_with_auth_and_refreshed() {
    authorized_with_auth("--sse", "sse").await;
}

/// The demo server over `flag`, behind the test authorization server; the proxy's server
/// `secure` of type `kind` in front of it.
async fn authorized_with_auth(flag: &str, kind: &str) {
    let (state, issuer) = authorization_server().await;
    let demo = Background::start(
        demo_bin(),
        &[
            flag,
            "0",
            "--require-token",
            ACCESS,
            "--oauth-issuer",
            &issuer,
        ],
        &[],
        "listening on http://",
    )
    .await;
    let url = listening_url(&demo.log).await;
    let proxy = proxy()
        .server("secure", json!({"type": kind, "url": url}))
        .start_after(Some("awaiting OAuth authorization"))
        .await;
    // The server waits for a user, and says which command to run.
    let servers = proxy.cli_ok(&["servers"]);
    assert!(
        servers.contains("failed: OAuth: run `pluggedin-mcp-proxy auth secure`"),
        "{servers}"
    );
    assert!(state.lock().unwrap().log.is_empty());

    // `auth secure`: prints the URL; the "browser" follows it to the loopback redirect.
    let mut auth = tokio::process::Command::new(proxy_bin())
        .arg("--config")
        .arg(&proxy.config_path)
        .arg("--data-dir")
        .arg(proxy.data_dir())
        .args(["auth", "secure"])
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = tokio::io::BufReader::new(auth.stdout.take().unwrap()).lines();
    let open = loop {
        let line = lines.next_line().await.unwrap().expect("auth prints a URL");
        if line.starts_with(&format!("{issuer}/authorize?")) {
            break line;
        }
    };
    let _ = rustls::crypto::ring::default_provider().install_default();
    let page = reqwest::get(&open).await.unwrap();
    assert_eq!(page.status(), 200);
    assert!(
        page.text()
            .await
            .unwrap()
            .contains("Authorization received")
    );
    let rest = lines.next_line().await.unwrap().unwrap_or_default();
    assert!(rest.starts_with("Authorized: secure"), "{rest}");
    assert!(auth.wait().await.unwrap().success());

    // The tokens are stored owner-only, and the running proxy takes them up.
    let files: Vec<_> = std::fs::read_dir(proxy.data_dir().join("oauth"))
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .collect();
    assert_eq!(files.len(), 1);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&files[0]).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    proxy.wait_for_tool("secure__add").await;
    let sum = proxy
        .call_text("secure__add", json!({"a": 2, "b": 3}))
        .await;
    assert!(sum.contains('5'), "{sum}");

    let state = state.lock().unwrap();
    assert_eq!(
        state.log[..3],
        ["register", "authorize", "token:authorization_code"]
    );
    // The token expires on arrival: the proxy's requests went out with refreshed ones.
    assert!(
        state.log.iter().any(|entry| entry == "token:refresh_token"),
        "{:?}",
        state.log
    );
    assert!(
        state.resources.iter().all(|resource| *resource == url),
        "{:?} vs {url}",
        state.resources
    );
}

// The console's way: the API starts the authorization and hands out the URL; the proxy takes the
// redirect itself and connects with the tokens.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_console_starts_an_authorization_and_the_server_connects() {
    let (state, issuer) = authorization_server().await;
    let demo = Background::start(
        demo_bin(),
        &[
            "--http",
            "0",
            "--require-token",
            ACCESS,
            "--oauth-issuer",
            &issuer,
        ],
        &[],
        "listening on http://",
    )
    .await;
    let url = listening_url(&demo.log).await;
    let dir = tempfile::tempdir().unwrap();
    let servers = json!({
        "secure": {"type": "streamable-http", "url": url},
        "local": demo_with(&["--name", "local"]),
    });
    let (_proxy, log, mcp) = spawn_http_proxy(&dir, servers, &[]).await;
    let base = mcp.replace("/mcp", "");
    let http = reqwest::Client::new();
    log.wait_for("awaiting OAuth authorization").await;
    let servers: Value = http
        .get(format!("{base}/api/v1/servers"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let secure = servers["servers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|server| server["name"] == "secure")
        .unwrap()
        .clone();
    assert_eq!(secure["state"], "failed", "{secure}");
    assert!(
        secure["reason"].as_str().unwrap().contains("OAuth"),
        "{secure}"
    );

    // A stdio server has nothing to authorize; an unknown one is not found.
    let post = |path: String| http.post(format!("{base}{path}")).json(&json!({})).send();
    let local = post("/api/v1/servers/local/authorize".into())
        .await
        .unwrap();
    assert_eq!(local.status(), 400);
    assert!(local.text().await.unwrap().contains("stdio server"));
    let unknown = post("/api/v1/servers/nope/authorize".into()).await.unwrap();
    assert_eq!(unknown.status(), 404);

    let started = post("/api/v1/servers/secure/authorize".into())
        .await
        .unwrap();
    assert_eq!(started.status(), 200);
    let started: Value = started.json().await.unwrap();
    let open = started["url"].as_str().unwrap();
    assert!(open.starts_with(&format!("{issuer}/authorize?")), "{open}");
    // The user's browser: the authorization server redirects to the proxy's loopback listener.
    let page = reqwest::get(open).await.unwrap();
    assert_eq!(page.status(), 200);
    assert!(
        page.text()
            .await
            .unwrap()
            .contains("Authorization received")
    );
    // The server connects with the stored tokens; its tools reach the catalog.
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let tools: Value = http
            .get(format!("{base}/api/v1/tools?q=secure__add"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if tools["tools"]
            .as_array()
            .unwrap()
            .iter()
            .any(|tool| tool["name"] == "secure__add")
        {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "{}", log.text());
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let called: Value = http
        .post(format!("{base}/api/v1/tools/call"))
        .json(&json!({"name": "secure__add", "arguments": {"a": 2, "b": 3}}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(called.to_string().contains('5'), "{called}");
    assert_eq!(
        state.lock().unwrap().log[..3],
        ["register", "authorize", "token:authorization_code"]
    );
}
