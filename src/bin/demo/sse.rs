//! Serving the legacy HTTP+SSE transport of MCP 2024-11-05 (`--sse PORT`, on 127.0.0.1):
//! `GET /sse` opens a session and streams its server-to-client messages after an `endpoint`
//! event; `POST /message?sessionId=…` feeds the client's messages (or batches) into it. Closing
//! the stream ends the session. Binding, readiness and the token check are shared with `http.rs`.

use std::{
    collections::HashMap,
    convert::Infallible,
    hash::{BuildHasher, Hasher, RandomState},
    sync::{
        Arc, Mutex,
        atomic::{AtomicU64, Ordering},
    },
};

use axum::{
    Router,
    body::Bytes,
    extract::{DefaultBodyLimit, Query, State},
    http::StatusCode,
    response::sse::{Event, KeepAlive, Sse},
    routing::{get, post},
    serve::ListenerExt as _,
};
use futures::{Stream, StreamExt, channel::mpsc, stream};
use pluggedin_mcp_proxy::sync::lock;
use rmcp::{
    ServiceExt,
    model::{ClientJsonRpcMessage, ServerJsonRpcMessage},
};
use serde::Deserialize;
use serde_json::Value;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::{
    http::{announce, bind, protect},
    server::DemoServer,
    shared::Shared,
};

#[derive(Clone)]
struct SseState {
    shared: Arc<Shared>,
    /// Session id -> the channel feeding client messages into that session.
    sessions: Arc<Mutex<HashMap<String, mpsc::Sender<ClientJsonRpcMessage>>>>,
}

#[derive(Deserialize)]
struct SessionQuery {
    #[serde(rename = "sessionId")]
    session_id: String,
}

fn new_session_id() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut hasher = RandomState::new().build_hasher();
    hasher.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
    let salt = RandomState::new().build_hasher().finish();
    format!("{:016x}{salt:016x}", hasher.finish())
}

fn message_event(message: &ServerJsonRpcMessage) -> Event {
    match serde_json::to_string(message) {
        Ok(json) => Event::default().event("message").data(json),
        Err(error) => {
            warn!(%error, "cannot serialize server message");
            Event::default().comment("unserializable message dropped")
        }
    }
}

/// `GET /sse`: opens one MCP session whose server->client messages flow on this stream.
async fn sse_connect(
    State(state): State<SseState>,
) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let id = new_session_id();
    let (in_tx, in_rx) = mpsc::channel::<ClientJsonRpcMessage>(64);
    let (out_tx, out_rx) = mpsc::channel::<ServerJsonRpcMessage>(64);
    lock(&state.sessions).insert(id.clone(), in_tx);
    let ct = CancellationToken::new();
    let server = DemoServer::new_session(&state.shared);
    let sessions = state.sessions.clone();
    let session_id = id.clone();
    let session_ct = ct.clone();
    tokio::spawn(async move {
        info!(session = %session_id, "SSE session opened");
        match server.serve_with_ct((out_tx, in_rx), session_ct).await {
            Ok(running) => {
                if let Err(error) = running.waiting().await {
                    warn!(%error, "SSE session task failed");
                }
            }
            Err(error) => info!(%error, "SSE session ended before initialization"),
        }
        lock(&sessions).remove(&session_id);
        info!(session = %session_id, "SSE session closed");
    });
    // Dropping the response stream (client went away) cancels the session.
    let guard = ct.drop_guard();
    let endpoint = Event::default()
        .event("endpoint")
        .data(format!("/message?sessionId={id}"));
    let messages = out_rx.map(move |message| {
        let _session_alive = &guard;
        Ok(message_event(&message))
    });
    Sse::new(stream::once(async move { Ok(endpoint) }).chain(messages))
        .keep_alive(KeepAlive::default())
}

/// `POST /message?sessionId=…`: feeds one JSON-RPC message (or batch) into the session.
async fn sse_message(
    State(state): State<SseState>,
    Query(query): Query<SessionQuery>,
    body: Bytes,
) -> (StatusCode, &'static str) {
    let Some(mut sender) = lock(&state.sessions).get(&query.session_id).cloned() else {
        return (StatusCode::NOT_FOUND, "unknown session");
    };
    let messages = match serde_json::from_slice::<Value>(&body) {
        Ok(Value::Array(items)) => items,
        Ok(item) => vec![item],
        Err(_) => return (StatusCode::BAD_REQUEST, "body is not JSON"),
    };
    for message in messages {
        let Ok(message) = serde_json::from_value::<ClientJsonRpcMessage>(message) else {
            return (StatusCode::BAD_REQUEST, "not a JSON-RPC message");
        };
        if futures::SinkExt::send(&mut sender, message).await.is_err() {
            return (StatusCode::NOT_FOUND, "session closed");
        }
    }
    (StatusCode::ACCEPTED, "Accepted")
}

pub(crate) async fn serve_sse(
    shared: Arc<Shared>,
    port: u16,
    require_token: Option<String>,
    oauth_issuer: Option<String>,
) -> anyhow::Result<()> {
    let state = SseState {
        shared,
        sessions: Arc::new(Mutex::new(HashMap::new())),
    };
    let app = Router::new()
        .route("/sse", get(sse_connect))
        .route("/message", post(sse_message))
        .layer(DefaultBodyLimit::max(64 * 1024 * 1024))
        .with_state(state);
    let (listener, addr) = bind(port).await?;
    let app = protect(app, addr, "/sse", require_token, oauth_issuer);
    announce(addr, "/sse");
    // TCP_NODELAY: otherwise an SSE answer's second write waits ~40 ms for a delayed ACK.
    let listener = listener.tap_io(|tcp| {
        let _ = tcp.set_nodelay(true);
    });
    axum::serve(listener, app).await?;
    Ok(())
}
