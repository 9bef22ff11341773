//! The HTTP request path: the whole application (guard, CORS, rmcp's Streamable HTTP service,
//! the proxy's handler over an in-memory store, `/health`) receives requests whose method,
//! path, headers (known names or any, any values, any number of each — two `Host` or `Origin`
//! headers included) and body come from the input. Every request gets a response (never a panic
//! or a hang); every refusal carries a JSON-RPC error body; a request whose `Host` headers are
//! not exactly one allowed host is never served; `/health` without the token shows only the
//! minimal answer.
#![no_main]

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use axum::body::Body;
use http_body_util::BodyExt;
use libfuzzer_sys::fuzz_target;
use pluggedin_mcp_proxy::builtin::Builtins;
use pluggedin_mcp_proxy::cli::Cors;
use pluggedin_mcp_proxy::control::ControlPlane;
use pluggedin_mcp_proxy::control::activity::Recorder;
use pluggedin_mcp_proxy::control::local::LocalStore;
use pluggedin_mcp_proxy::ids::ServerIds;
use pluggedin_mcp_proxy::names::PrefixMode;
use pluggedin_mcp_proxy::router::{Control, Router};
use pluggedin_mcp_proxy::secret::Secret;
use pluggedin_mcp_proxy::upstream::http::{App, Drain, GuardConfig, HttpOptions};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tower::ServiceExt;

struct Fixture {
    runtime: tokio::runtime::Runtime,
    app: axum::Router,
}

fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime");
        let app = runtime.block_on(async {
            let store: Arc<dyn ControlPlane> =
                Arc::new(LocalStore::open(None).expect("an in-memory store"));
            let tracker = TaskTracker::new();
            let cancel = CancellationToken::new();
            let router = Router::new(
                PrefixMode::Always,
                1000,
                ServerIds::new(store.clone()),
                Control {
                    builtins: Builtins::new(store.clone(), None),
                    recorder: Recorder::start(store, &tracker, cancel.child_token()),
                    pinned_workspace: None,
                    settings_recheck: pluggedin_mcp_proxy::router::SETTINGS_RECHECK,
                },
                tracker,
                cancel,
            );
            let options = HttpOptions {
                host: "127.0.0.1".into(),
                port: 0,
                // Stateless: every request stands alone, so nothing accumulates across inputs.
                stateless: true,
                max_sessions: 16,
                max_anonymous_sessions: 4,
                max_connections: None,
                session_ttl: Duration::from_secs(60),
                hibernate_after: None,
                allowed_hosts: Vec::new(),
                cors: Cors::Permissive,
                guard: GuardConfig {
                    require_auth: true,
                    tokens: vec![Secret::new("fuzz-token")],
                    rate_limit_tools: 0,
                    rate_limit_requests: 0,
                    trusted_proxies: Vec::new(),
                    allowed_origins: Some(vec!["http://localhost:*".into()]),
                    named_origins: Vec::new(),
                    max_body_bytes: 64 * 1024,
                    stream_answers: false,
                },
                api: None,
                session_key: None,
                replica_url: None,
                drain: Drain::new(),
                drain_period: Duration::from_secs(15),
            };
            App::new(router, options, true).service
        });
        Fixture { runtime, app }
    })
}

const METHODS: &[&str] = &["POST", "GET", "DELETE", "OPTIONS", "PUT"];
const PATHS: &[&str] = &["/mcp", "/", "/health", "/mcp/x", "/%2e%2e"];
const HEADERS: &[&str] = &[
    "content-type",
    "accept",
    "authorization",
    "origin",
    "host",
    "mcp-session-id",
    "mcp-protocol-version",
    "last-event-id",
    "content-length",
    "connection",
    "x-forwarded-for",
    "mcp-method",
];

/// Whether `value` is a `Host` the fixture serves `/mcp` to (it is bound to loopback).
fn loopback_host(value: &[u8]) -> bool {
    let Ok(text) = std::str::from_utf8(value) else {
        return false;
    };
    let Ok(authority) = text.parse::<axum::http::uri::Authority>() else {
        return false;
    };
    let host = authority.host().trim_start_matches('[').trim_end_matches(']');
    ["localhost", "127.0.0.1", "::1"]
        .iter()
        .any(|allowed| host.eq_ignore_ascii_case(allowed))
}

fuzz_target!(|data: &[u8]| {
    let Some((&control, rest)) = data.split_first() else {
        return;
    };
    let method = METHODS[usize::from(control) % METHODS.len()];
    let path = PATHS[usize::from(control / 8) % PATHS.len()];
    // Header lines up to a blank line, `<index byte><value>`; the rest is the body.
    let (head, body) = match rest.windows(2).position(|pair| pair == b"\n\n") {
        Some(at) => (&rest[..at], &rest[at + 2..]),
        None => (&[][..], rest),
    };
    let mut request = axum::http::Request::builder().method(method).uri(path);
    // The fixture's own Host first, unless the input brings its own (bit 6 of the control byte).
    let mut hosts: Vec<Vec<u8>> = Vec::new();
    if control & 0x40 == 0 {
        request = request.header("host", "127.0.0.1");
        hosts.push(b"127.0.0.1".to_vec());
    }
    let mut valid_token = false;
    for line in head.split(|byte| *byte == b'\n') {
        let Some((&index, value)) = line.split_first() else {
            continue;
        };
        // Index 0xff: any header name, `name:value` from the input.
        let (name, value) = if index == 0xff {
            let Some(colon) = value.iter().position(|byte| *byte == b':') else {
                continue;
            };
            let Ok(name) = axum::http::HeaderName::from_bytes(&value[..colon]) else {
                continue;
            };
            (name, &value[colon + 1..])
        } else {
            let name = HEADERS[usize::from(index) % HEADERS.len()];
            let value = match name {
                // Mostly well-formed where a malformed value only meets one early check.
                "authorization" if index & 0x80 != 0 => b"Bearer fuzz-token".as_slice(),
                "content-type" if index & 0x80 != 0 => b"application/json".as_slice(),
                "accept" if index & 0x80 != 0 => {
                    b"application/json, text/event-stream".as_slice()
                }
                "host" if index & 0x80 != 0 => b"localhost:12006".as_slice(),
                "origin" if index & 0x80 != 0 => b"http://localhost:3000".as_slice(),
                _ => value,
            };
            (axum::http::HeaderName::from_static(name), value)
        };
        if let Ok(value) = axum::http::HeaderValue::from_bytes(value) {
            if name == axum::http::header::HOST {
                hosts.push(value.as_bytes().to_vec());
            }
            if name == axum::http::header::AUTHORIZATION {
                valid_token |= value.as_bytes() == b"Bearer fuzz-token";
            }
            request = request.header(name, value);
        }
    }
    let served_host = hosts.len() == 1 && loopback_host(&hosts[0]);
    let Ok(request) = request.body(Body::from(body.to_vec())) else {
        return;
    };
    let fixture = fixture();
    fixture.runtime.block_on(async {
        let response =
            tokio::time::timeout(Duration::from_secs(5), fixture.app.clone().oneshot(request))
                .await
                .expect("an answer within 5 s")
                .expect("infallible");
        let status = response.status();
        let bytes = tokio::time::timeout(Duration::from_secs(5), response.into_body().collect())
            .await
            .ok()
            .and_then(Result::ok)
            .map(|body| body.to_bytes());
        if (path == "/mcp" || path == "/") && method != "OPTIONS" && !served_host {
            assert!(
                status.is_client_error(),
                "served with Host headers {hosts:?}: {status}"
            );
        }
        if status.is_client_error()
            && let Some(bytes) = &bytes
        {
            let value: serde_json::Value = serde_json::from_slice(bytes).unwrap_or_else(|_| {
                panic!(
                    "a {status} without a JSON body: {:?}",
                    String::from_utf8_lossy(bytes)
                )
            });
            assert!(
                value.get("jsonrpc").is_some() && value.get("error").is_some(),
                "{value}"
            );
        }
        if path == "/health"
            && method == "GET"
            && status.is_success()
            && !valid_token
            && let Some(bytes) = &bytes
        {
            let value: serde_json::Value = serde_json::from_slice(bytes).expect("a JSON body");
            assert_eq!(
                value,
                serde_json::json!({"status": "ok", "transport": "streamable-http"}),
                "/health showed details without the token"
            );
        }
    });
});
