//! Opening one connection: spawning a stdio child (no shell, minimal inherited environment, its
//! stderr captured into our log, its whole process group ended with it), dialing legacy HTTP+SSE,
//! or Streamable HTTP with configured headers, or starting a server's process the same way and
//! dialing it once it listens (`started`); then the MCP handshake.

use std::collections::{BTreeMap, HashMap};
use std::process::Stdio;
use std::time::Duration;

use process_wrap::tokio::{CommandWrap, KillOnDrop, ProcessGroup};
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use rmcp::RoleClient;
use rmcp::model::ProtocolVersion;
use rmcp::service::RunningService;
use rmcp::service::{ClientLifecycleMode, ClientServiceExt};
use rmcp::transport::StreamableHttpClientTransport;
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use std::sync::Arc;

use super::ChildLane;
use super::child::ChildTransport;
use super::handler::DownstreamHandler;
use super::observe::Observed;
use super::process::{Output, log_output, server_command};
use super::sse::SseClientTransport;
use super::started::WithProcess;
use crate::config::{Protocol, ServerConfig, StartedHttp, TransportConfig};
use crate::secret::Secret;
use crate::security::{self, SecuritySettings};

pub(super) type Running = RunningService<RoleClient, DownstreamHandler>;

#[derive(Debug, thiserror::Error)]
pub(super) enum ConnectError {
    #[error("cannot start `{command}`: {source}")]
    Spawn {
        command: String,
        source: std::io::Error,
    },
    /// A started server's process or port (see `started`).
    #[error("{0}")]
    Started(#[from] super::started::StartError),
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
    /// The URL policy refused a destination (after DNS, or a redirect's).
    #[error("{0}")]
    Refused(security::Refusal),
}

/// Connects and completes the MCP handshake within the server's timeout, speaking `protocol` (the
/// configured one, or for `auto` the generation found before). The security settings
/// decide the HTTP client (URL policy on every connection and redirect) and the message limit.
pub(super) async fn connect(
    server: &str,
    config: &ServerConfig,
    protocol: Protocol,
    security: &SecuritySettings,
    handler: DownstreamHandler,
    oauth: Option<&std::sync::Arc<super::oauth::OAuth>>,
    stderr: &super::process::Tail,
) -> Result<(Running, Option<Arc<ChildLane>>), ConnectError> {
    let (transport, timeout) = (&config.transport, config.timeout);
    let limit = security.max_message_bytes;
    let url_rules = security.url_rules(config.origin);
    let refusals = security::net::RefusalSlot::default();
    let serve = Serve {
        handler,
        server: server.into(),
        rate: security.notifications_per_second,
        lifecycle: lifecycle(protocol, transport),
    };
    // A started server's process runs and accepts connections before the handshake's own
    // timeout starts: waiting for its port has the server's timeout too.
    let mut started = match transport {
        TransportConfig::StartedHttp(config) => {
            Some(super::started::start(server, config, timeout).await?)
        }
        _ => None,
    };
    // A child's lane for relayed requests (`wire::lane`); other transports have none.
    let mut lane = None;
    let handshake = async {
        match transport {
            TransportConfig::Stdio {
                command,
                args,
                env,
                cwd,
            } => {
                // On a blocking-pool thread: a spawn waits for the child's `exec` (posix_spawn
                // is a vfork), and servers starting together should not wait for each other's on
                // the runtime's one thread (stdio mode).
                let (server_name, command_line) = (server.to_owned(), command.to_owned());
                let (args, env, cwd) = (args.clone(), env.clone(), cwd.clone());
                let tail = stderr.clone();
                let child = tokio::task::spawn_blocking(move || {
                    spawn_child(
                        &server_name,
                        &command_line,
                        &args,
                        &env,
                        cwd.as_deref(),
                        limit,
                        tail,
                    )
                })
                .await
                .map_err(|error| ConnectError::Spawn {
                    command: command.to_owned(),
                    source: std::io::Error::other(error),
                })??;
                lane = Some(child.lane());
                serve.on(child).await
            }
            TransportConfig::Sse { url, headers } => {
                let (url, headers) = credentials_to_header(url, header_map(headers)?);
                // The URL policy's client, reporting refusals to this attempt's slot, with or
                // without OAuth (whose own requests use its client).
                let client = http_client(url_rules, refusals.clone())?;
                let transport = match oauth {
                    Some(oauth) => {
                        super::oauth::connect_sse(oauth, client, url, headers, timeout, limit)
                            .await?
                    }
                    None => {
                        SseClientTransport::connect(client, url, headers, timeout, limit).await?
                    }
                };
                serve.on(transport).await
            }
            TransportConfig::StreamableHttp { url, headers } => {
                let client = http_client(url_rules, refusals.clone())?;
                let (url, headers) = credentials_to_header(url, header_map(headers)?);
                let config = streamable_config(&url, headers, limit);
                match oauth {
                    // OAuth: the same client, sending the access token and authorizing on a
                    // challenge (see `oauth`).
                    Some(oauth) => {
                        let client = super::oauth::OAuthHttp {
                            inner: client,
                            oauth: oauth.clone(),
                        };
                        let client = super::task_wire::TaskWire::new(client);
                        serve
                            .on(StreamableHttpClientTransport::with_client(client, config))
                            .await
                    }
                    None => {
                        let client = super::task_wire::TaskWire::new(client);
                        serve
                            .on(StreamableHttpClientTransport::with_client(client, config))
                            .await
                    }
                }
            }
            TransportConfig::StartedHttp(config) => {
                let Some((process, url)) = started.take() else {
                    return Err(super::started::StartError::NotStarted.into());
                };
                // The process we started, on loopback: the URL policy's client with local
                // targets allowed, which still refuses metadata addresses, ignores proxies from
                // the environment (one would not reach this machine's loopback) and follows
                // same-origin redirects only.
                let rules = security::UrlRules { allow_local: true };
                let client = http_client(Some(rules), refusals.clone())?;
                let (url, headers) = credentials_to_header(&url, header_map(&config.headers)?);
                if config.sse {
                    let transport =
                        SseClientTransport::connect(client, url, headers, timeout, limit).await?;
                    return serve.on(WithProcess::new(transport, process)).await;
                }
                let config = streamable_config(&url, headers, limit);
                let client = super::task_wire::TaskWire::new(client);
                let transport = StreamableHttpClientTransport::with_client(client, config);
                serve.on(WithProcess::new(transport, process)).await
            }
        }
    };
    let outcome = tokio::time::timeout(timeout, handshake)
        .await
        .map_err(|_| ConnectError::HandshakeTimeout(timeout))
        .and_then(|connected| connected);
    // Whatever the HTTP stack made of it, a refused destination is reported as the refusal.
    let refused = refusals
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .take();
    match (outcome, refused) {
        (Err(_), Some(refusal)) => Err(ConnectError::Refused(refusal)),
        (outcome, _) => outcome.map(|running| (running, lane)),
    }
}

/// The handshake the configured protocol asks for. Legacy HTTP+SSE is a 2024-11-05 transport:
/// no modern server speaks it.
fn lifecycle(protocol: Protocol, transport: &TransportConfig) -> ClientLifecycleMode {
    let sse = matches!(
        transport,
        TransportConfig::Sse { .. } | TransportConfig::StartedHttp(StartedHttp { sse: true, .. })
    );
    match protocol {
        Protocol::Auto if sse => ClientLifecycleMode::Initialize,
        Protocol::Legacy => ClientLifecycleMode::Initialize,
        Protocol::Modern => ClientLifecycleMode::Discover {
            preferred_versions: vec![ProtocolVersion::V_2026_07_28],
        },
        Protocol::Auto => ClientLifecycleMode::Auto {
            preferred_versions: vec![ProtocolVersion::V_2026_07_28],
            legacy_version: Some(ProtocolVersion::V_2025_11_25),
        },
    }
}

/// rmcp's Streamable HTTP client settings: our headers, and the message limit on both SSE events
/// and JSON bodies.
fn streamable_config(
    url: &url::Url,
    headers: reqwest::header::HeaderMap,
    limit: usize,
) -> StreamableHttpClientTransportConfig {
    let custom: HashMap<HeaderName, HeaderValue> = headers
        .into_iter()
        .filter_map(|(name, value)| Some((name?, value)))
        .collect();
    StreamableHttpClientTransportConfig::with_uri(url.as_str())
        .custom_headers(custom)
        .max_sse_event_size(limit)
        .max_json_response_size(limit)
}

/// The handshake on any transport: wrapped in [`Observed`], with the chosen lifecycle.
struct Serve {
    handler: DownstreamHandler,
    server: std::sync::Arc<str>,
    rate: u32,
    lifecycle: ClientLifecycleMode,
}

impl Serve {
    async fn on<T>(self, transport: T) -> Result<Running, ConnectError>
    where
        T: rmcp::transport::Transport<RoleClient> + Send + 'static,
        T::Error: Send + Sync + 'static,
    {
        let events = self.handler.events.clone();
        self.handler
            .serve_with_lifecycle(
                Observed::new(transport, self.server, events, self.rate),
                self.lifecycle,
            )
            .await
            .map_err(handshake_error)
    }
}

/// The error with its causes (a refusal by the URL policy sits deep in a reqwest error's chain).
fn handshake_error(error: impl std::error::Error + 'static) -> ConnectError {
    ConnectError::Handshake(crate::telemetry::error_chain(&error))
}

fn http_client(
    rules: Option<security::UrlRules>,
    refusals: security::net::RefusalSlot,
) -> Result<reqwest::Client, ConnectError> {
    security::net::http_client(rules, refusals).map_err(ConnectError::Client)
}

/// A URL's `user:password@` moved into an `Authorization: Basic` header (what an HTTP client
/// would send for it anyway), so the URL handed to the transports — which quote it in their
/// errors and logs — carries no credentials. A configured `Authorization` header wins.
fn credentials_to_header(url: &url::Url, mut headers: HeaderMap) -> (url::Url, HeaderMap) {
    if url.username().is_empty() && url.password().is_none() {
        return (url.clone(), headers);
    }
    let mut bare = url.clone();
    let _ = bare.set_username("");
    let _ = bare.set_password(None);
    if !headers.contains_key(reqwest::header::AUTHORIZATION) {
        use base64::Engine as _;
        let user = percent_decode(url.username());
        let password = percent_decode(url.password().unwrap_or_default());
        let encoded =
            base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
        if let Ok(mut value) = HeaderValue::from_str(&format!("Basic {encoded}")) {
            value.set_sensitive(true);
            headers.insert(reqwest::header::AUTHORIZATION, value);
        }
    }
    (bare, headers)
}

fn percent_decode(text: &str) -> String {
    url::form_urlencoded::parse(format!("x={}", text.replace('+', "%2B")).as_bytes())
        .next()
        .map(|(_, value)| value.into_owned())
        .unwrap_or_default()
}

fn header_map(headers: &BTreeMap<String, Secret>) -> Result<HeaderMap, ConnectError> {
    let mut map = HeaderMap::new();
    for (name, value) in headers {
        let header_name =
            HeaderName::from_bytes(name.as_bytes()).map_err(|e| ConnectError::Header {
                name: name.clone(),
                reason: e.to_string(),
            })?;
        let mut header_value =
            HeaderValue::from_str(value.expose()).map_err(|_| ConnectError::Header {
                name: name.clone(),
                reason: "the value has characters not allowed in a header".into(),
            })?;
        header_value.set_sensitive(true);
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
    limit: usize,
    tail: super::process::Tail,
) -> Result<ChildTransport, ConnectError> {
    let mut cmd = server_command(command, args, env, cwd);
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut wrapped = CommandWrap::from(cmd);
    // Its own process group, so that ending it ends what it started too (npx → node, uvx → python).
    wrapped.wrap(ProcessGroup::leader()).wrap(KillOnDrop);
    let spawn_error = |source| ConnectError::Spawn {
        command: command.to_owned(),
        source,
    };
    let mut child = wrapped.spawn().map_err(spawn_error)?;
    let stderr = child.inner_mut().stderr().take();
    let child = ChildTransport::new(Arc::from(server), child, limit).map_err(spawn_error)?;
    if let Some(stderr) = stderr {
        // Its lines go to our log under the server's name, wherever the child was started from.
        let span = tracing::info_span!(parent: None, "downstream", server = %server);
        tokio::spawn(tracing::Instrument::instrument(
            log_output(stderr, Output::Stderr, Some(tail)),
            span,
        ));
    }
    Ok(child)
}
