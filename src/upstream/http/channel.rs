//! The console for stdio users. A proxy serving one client on stdio also offers its console and
//! JSON API on a control channel only its owner can reach: a Unix socket, `<pid>.sock` in the
//! data dir's `consoles/` (the folder its owner's alone, the socket too, and a connection from
//! another user is closed at once). `pluggedin-mcp-proxy console` finds the newest live socket
//! and relays a loopback port to it, so the browser sees that proxy — its servers, its calls;
//! with none running, the console runs connections of its own and every page says so
//! (`GET /api/v1/console`).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use axum::Json;
use axum::Router as AxumRouter;
use serde_json::json;
use tokio::net::{UnixListener, UnixStream};
use tokio_util::sync::CancellationToken;

use super::api::ApiFiles;
use super::console::Attachment;
use super::guard::{Guard, GuardConfig, Hosts};
use crate::cli::Cors;
use crate::router::Router;

/// The folder of the data dir that holds the running proxies' sockets.
const SOCKETS: &str = "consoles";
/// Connections the console command relays at once.
const MAX_RELAYED: usize = 64;

/// The console and its JSON API alone (no MCP endpoint), for the control channel and the
/// standalone console: loopback rules, no auth (the channel is its owner's; the standalone
/// console listens on loopback).
fn console_app(
    router: Arc<Router>,
    files: ApiFiles,
    max_body_bytes: usize,
    attachment: Attachment,
) -> AxumRouter {
    let loopback = ["localhost", "127.0.0.1", "::1"];
    let config = GuardConfig {
        require_auth: false,
        tokens: Vec::new(),
        rate_limit_tools: 0,
        rate_limit_requests: 0,
        trusted_proxies: Vec::new(),
        allowed_origins: None,
        named_origins: Vec::new(),
        max_body_bytes,
        stream_answers: false,
    };
    let guard = Arc::new(Guard::new(config, Cors::Off, Hosts::new(loopback), None));
    let hosts = loopback.iter().map(|host| (*host).to_owned()).collect();
    super::api::routes(files, router, guard, Some(hosts), true, attachment).fallback(
        |uri: axum::http::Uri| async move {
            let message = format!(
                "no such path: {}; the console is at /console/ and its API under /api/",
                uri.path()
            );
            (
                axum::http::StatusCode::NOT_FOUND,
                Json(json!({ "error": message })),
            )
        },
    )
}

/// Serves the console on this process's control channel until `cancel`; the socket's path.
pub async fn serve_channel(
    router: Arc<Router>,
    files: ApiFiles,
    max_body_bytes: usize,
    cancel: CancellationToken,
) -> anyhow::Result<PathBuf> {
    let data_dir = files
        .data_dir
        .clone()
        .ok_or_else(|| anyhow::anyhow!("no data dir: the console's control channel is off"))?;
    let folder = data_dir.join(SOCKETS);
    std::fs::create_dir_all(&folder)?;
    restrict(&folder, 0o700)?;
    let path = folder.join(format!("{}.sock", std::process::id()));
    // A socket left by a process that had this id before.
    let _ = std::fs::remove_file(&path);
    // Bound under a name of its own and restricted before it takes its real name, so that it
    // is never seen with the mode `bind` gave it.
    let binding = folder.join(format!(".{}.sock.new", std::process::id()));
    let _ = std::fs::remove_file(&binding);
    let listener = UnixListener::bind(&binding)?;
    restrict(&binding, 0o600)?;
    std::fs::rename(&binding, &path)?;
    let app = console_app(
        router,
        files,
        max_body_bytes,
        Attachment::Stdio {
            pid: std::process::id(),
        },
    );
    let owner = rustix::process::getuid().as_raw();
    let served = path.clone();
    tokio::spawn(async move {
        let listener = OwnerOnly { listener, owner };
        let serving = axum::serve(listener, app).with_graceful_shutdown(cancel.cancelled_owned());
        if let Err(error) = serving.await {
            tracing::warn!("the console's control channel stopped: {error}");
        }
        let _ = std::fs::remove_file(&served);
    });
    Ok(path)
}

fn restrict(path: &Path, mode: u32) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
}

/// A Unix listener that keeps only its owner's connections.
struct OwnerOnly {
    listener: UnixListener,
    owner: u32,
}

impl axum::serve::Listener for OwnerOnly {
    type Io = UnixStream;
    type Addr = tokio::net::unix::SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            let (stream, address) = match self.listener.accept().await {
                Ok(accepted) => accepted,
                Err(error) => {
                    // Too many open files, say: the next accept may work.
                    tracing::warn!("control channel accept failed: {error}");
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                    continue;
                }
            };
            match stream.peer_cred() {
                Ok(peer) if peer.uid() == self.owner => return (stream, address),
                Ok(peer) => {
                    tracing::warn!(
                        uid = peer.uid(),
                        "closed a control channel connection from another user"
                    );
                }
                Err(error) => tracing::warn!("control channel peer unknown: {error}"),
            }
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        self.listener.local_addr()
    }
}

/// The newest control channel of a running proxy on `data_dir`, if any answers; sockets whose
/// proxy is gone are removed.
pub async fn find_channel(data_dir: &Path) -> Option<(PathBuf, u32)> {
    let folder = data_dir.join(SOCKETS);
    let mut found: Vec<(std::time::SystemTime, PathBuf, u32)> = std::fs::read_dir(&folder)
        .ok()?
        .filter_map(Result::ok)
        .filter_map(|entry| {
            let path = entry.path();
            let pid = path
                .file_name()?
                .to_str()?
                .strip_suffix(".sock")?
                .parse::<u32>()
                .ok()?;
            let modified = entry.metadata().ok()?.modified().ok()?;
            Some((modified, path, pid))
        })
        .collect();
    found.sort_by_key(|found| std::cmp::Reverse(found.0));
    for (_, path, pid) in found {
        if UnixStream::connect(&path).await.is_ok() {
            return Some((path, pid));
        }
        let _ = std::fs::remove_file(&path);
    }
    None
}

/// The answer to a browser when the proxy the console attached to has ended: 503, saying so.
fn gone(error: &std::io::Error) -> Vec<u8> {
    let body = json!({
        "error": format!(
            "the proxy this console attached to has ended ({error}); run \
             `pluggedin-mcp-proxy console` again"
        )
    })
    .to_string();
    format!(
        "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\n\
         content-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

/// Relays a loopback port to a running proxy's control channel until `cancel`.
pub async fn relay(
    listener: tokio::net::TcpListener,
    socket: PathBuf,
    cancel: CancellationToken,
) -> anyhow::Result<()> {
    let slots = Arc::new(tokio::sync::Semaphore::new(MAX_RELAYED));
    loop {
        let accepted = tokio::select! {
            () = cancel.cancelled() => return Ok(()),
            accepted = listener.accept() => accepted,
        };
        let Ok((mut browser, _)) = accepted else {
            continue;
        };
        let Ok(slot) = slots.clone().acquire_owned().await else {
            return Ok(());
        };
        let socket = socket.clone();
        tokio::spawn(async move {
            let _slot = slot;
            match UnixStream::connect(&socket).await {
                Ok(mut proxy) => {
                    let _ = tokio::io::copy_bidirectional(&mut browser, &mut proxy).await;
                }
                Err(error) => {
                    tracing::warn!("the proxy's control channel is gone: {error}");
                    // The page says why rather than failing to connect.
                    let _ = tokio::io::AsyncWriteExt::write_all(&mut browser, &gone(&error)).await;
                }
            }
        });
    }
}

/// Serves the console with this process's own connections (no proxy was running) until
/// `cancel`.
pub async fn serve_standalone(
    listener: tokio::net::TcpListener,
    router: Arc<Router>,
    files: ApiFiles,
    max_body_bytes: usize,
    cancel: CancellationToken,
) -> anyhow::Result<()> {
    let app = console_app(router, files, max_body_bytes, Attachment::Standalone);
    axum::serve(listener, app)
        .with_graceful_shutdown(cancel.cancelled_owned())
        .await?;
    Ok(())
}
