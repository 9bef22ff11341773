//! Opening one connection: spawning a stdio child (no shell, minimal inherited environment, its
//! stderr captured into our log, its whole process group ended with it), dialing legacy HTTP+SSE,
//! or Streamable HTTP with configured headers; then the MCP handshake.

use std::collections::{BTreeMap, HashMap};
use std::process::Stdio;
use std::time::Duration;

use process_wrap::tokio::{CommandWrap, KillOnDrop, ProcessGroup};
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use rmcp::RoleClient;
use rmcp::model::ProtocolVersion;
use rmcp::service::RunningService;
use rmcp::service::{ClientLifecycleMode, ClientServiceExt};
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use rmcp::transport::{StreamableHttpClientTransport, TokioChildProcess};
use tokio::io::AsyncBufReadExt;

use super::handler::DownstreamHandler;
use super::observe::Observed;
use super::sse::SseClientTransport;
use crate::config::{Protocol, TransportConfig};

/// Environment variables a stdio server inherits from the proxy; the config's `env` goes on top.
/// Everything else (tokens, keys in the proxy's own environment) stays out.
const INHERITED_ENV: &[&str] = &[
    "PATH",
    "HOME",
    "USER",
    "LOGNAME",
    "SHELL",
    "TERM",
    "LANG",
    "LC_ALL",
    "LC_CTYPE",
    "TMPDIR",
    "TZ",
    "XDG_RUNTIME_DIR",
    "XDG_CONFIG_HOME",
    "XDG_DATA_HOME",
    "XDG_CACHE_HOME",
    "SYSTEMROOT",
    "APPDATA",
    "LOCALAPPDATA",
    "USERPROFILE",
    "NODE_EXTRA_CA_CERTS",
    "SSL_CERT_FILE",
];

/// A server's stderr lines longer than this are cut in our log.
const MAX_STDERR_LINE: usize = 4096;

pub(super) type Running = RunningService<RoleClient, DownstreamHandler>;

#[derive(Debug, thiserror::Error)]
pub(super) enum ConnectError {
    #[error("cannot start `{command}`: {source}")]
    Spawn {
        command: String,
        source: std::io::Error,
    },
    #[error("{0}")]
    Sse(#[from] super::sse::SseTransportError),
    #[error("invalid header \"{name}\": {reason}")]
    Header { name: String, reason: String },
    #[error("cannot build the HTTP client: {0}")]
    Client(reqwest::Error),
    #[error("handshake failed: {0}")]
    Handshake(String),
    #[error("no answer to the handshake within {0:?}")]
    HandshakeTimeout(Duration),
}

/// Connects and completes the MCP handshake within `timeout`.
pub(super) async fn connect(
    server: &str,
    transport: &TransportConfig,
    protocol: Protocol,
    handler: DownstreamHandler,
    timeout: Duration,
    oauth: Option<&std::sync::Arc<super::oauth::OAuth>>,
) -> Result<Running, ConnectError> {
    let lifecycle = match protocol {
        // Legacy HTTP+SSE is a 2024-11-05 transport: no modern server speaks it.
        Protocol::Auto if matches!(transport, TransportConfig::Sse { .. }) => {
            ClientLifecycleMode::Initialize
        }
        Protocol::Legacy => ClientLifecycleMode::Initialize,
        Protocol::Modern => ClientLifecycleMode::Discover {
            preferred_versions: vec![ProtocolVersion::V_2026_07_28],
        },
        Protocol::Auto => ClientLifecycleMode::Auto {
            preferred_versions: vec![ProtocolVersion::V_2026_07_28],
            legacy_version: Some(ProtocolVersion::V_2025_11_25),
        },
    };
    let server_name: std::sync::Arc<str> = server.into();
    let events = handler.events.clone();
    let handshake = async {
        match transport {
            TransportConfig::Stdio {
                command,
                args,
                env,
                cwd,
            } => {
                let child = spawn_child(server, command, args, env, cwd.as_deref())?;
                handler
                    .serve_with_lifecycle(
                        Observed::new(child, server_name.clone(), events.clone()),
                        lifecycle.clone(),
                    )
                    .await
                    .map_err(handshake_error)
            }
            TransportConfig::Sse { url, headers } => {
                let transport = match oauth {
                    Some(oauth) => {
                        super::oauth::connect_sse(oauth, url.clone(), header_map(headers)?, timeout)
                            .await?
                    }
                    None => {
                        let client = http_client()?;
                        SseClientTransport::connect(
                            client,
                            url.clone(),
                            header_map(headers)?,
                            timeout,
                        )
                        .await?
                    }
                };
                handler
                    .serve_with_lifecycle(
                        Observed::new(transport, server_name.clone(), events.clone()),
                        lifecycle.clone(),
                    )
                    .await
                    .map_err(handshake_error)
            }
            TransportConfig::StreamableHttp { url, headers } => {
                let client = http_client()?;
                let custom: HashMap<HeaderName, HeaderValue> = header_map(headers)?
                    .into_iter()
                    .filter_map(|(k, v)| Some((k?, v)))
                    .collect();
                let config = StreamableHttpClientTransportConfig::with_uri(url.as_str())
                    .custom_headers(custom);
                if let Some(oauth) = oauth {
                    // OAuth: the same client, sending the access token and authorizing on a
                    // challenge (see `oauth`).
                    let client = super::oauth::OAuthHttp {
                        inner: oauth.http().clone(),
                        oauth: oauth.clone(),
                    };
                    let transport = StreamableHttpClientTransport::with_client(client, config);
                    return handler
                        .serve_with_lifecycle(
                            Observed::new(transport, server_name.clone(), events.clone()),
                            lifecycle.clone(),
                        )
                        .await
                        .map_err(handshake_error);
                }
                let transport = StreamableHttpClientTransport::with_client(client, config);
                handler
                    .serve_with_lifecycle(
                        Observed::new(transport, server_name.clone(), events.clone()),
                        lifecycle.clone(),
                    )
                    .await
                    .map_err(handshake_error)
            }
        }
    };
    tokio::time::timeout(timeout, handshake)
        .await
        .map_err(|_| ConnectError::HandshakeTimeout(timeout))?
}

fn handshake_error(error: impl std::fmt::Display) -> ConnectError {
    ConnectError::Handshake(error.to_string())
}

pub(super) fn http_client() -> Result<reqwest::Client, ConnectError> {
    reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(10))
        .build()
        .map_err(ConnectError::Client)
}

fn header_map(headers: &BTreeMap<String, String>) -> Result<HeaderMap, ConnectError> {
    let mut map = HeaderMap::new();
    for (name, value) in headers {
        let header_name =
            HeaderName::from_bytes(name.as_bytes()).map_err(|e| ConnectError::Header {
                name: name.clone(),
                reason: e.to_string(),
            })?;
        let header_value = HeaderValue::from_str(value).map_err(|_| ConnectError::Header {
            name: name.clone(),
            reason: "the value has characters not allowed in a header".into(),
        })?;
        map.insert(header_name, header_value);
    }
    Ok(map)
}

fn spawn_child(
    server: &str,
    command: &str,
    args: &[String],
    env: &BTreeMap<String, String>,
    cwd: Option<&std::path::Path>,
) -> Result<TokioChildProcess, ConnectError> {
    let mut cmd = tokio::process::Command::new(command);
    cmd.args(args).env_clear();
    for key in INHERITED_ENV {
        if let Some(value) = std::env::var_os(key) {
            cmd.env(key, value);
        }
    }
    cmd.envs(env);
    if let Some(cwd) = cwd {
        cmd.current_dir(cwd);
    }
    let mut wrapped = CommandWrap::from(cmd);
    // Its own process group, so that ending it ends what it started too (npx → node, uvx → python).
    wrapped.wrap(ProcessGroup::leader()).wrap(KillOnDrop);
    let (child, stderr) = TokioChildProcess::builder(wrapped)
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|source| ConnectError::Spawn {
            command: command.to_owned(),
            source,
        })?;
    if let Some(stderr) = stderr {
        let server = server.to_owned();
        tokio::spawn(async move {
            let mut lines = tokio::io::BufReader::new(stderr).lines();
            while let Ok(Some(mut line)) = lines.next_line().await {
                if line.len() > MAX_STDERR_LINE {
                    let mut cut = MAX_STDERR_LINE;
                    while !line.is_char_boundary(cut) {
                        cut -= 1;
                    }
                    line.truncate(cut);
                }
                tracing::info!(server = %server, "stderr: {line}");
            }
        });
    }
    Ok(child)
}
