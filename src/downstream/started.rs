//! A server the proxy starts and reaches over HTTP (`config::StartedHttp`): a free loopback port
//! picked for `{port}` at each start, the process spawned as a stdio server's is (no shell,
//! minimal environment, its own process group watched by the reaper, stderr into our log), a wait
//! until the port accepts a connection, and [`WithProcess`], the HTTP transport that owns the
//! process: the connection ends when the process exits, and the process ends (its whole group)
//! when the connection does. The HTTP side itself is `connect`'s, as for any HTTP server.

use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use process_wrap::tokio::{ChildWrapper, CommandWrap, KillOnDrop, ProcessGroup};
use rmcp::RoleClient;
use rmcp::service::{RxJsonRpcMessage, TxJsonRpcMessage};
use rmcp::transport::Transport;
use tokio::process::ChildStdin;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use super::process::{Output, Tail, log_output, server_command};
use crate::config::{StartedHttp, display_url};

/// How long a started server's process may take to exit after SIGTERM before it is killed, as
/// for a stdio child.
const EXIT_GRACE: Duration = Duration::from_secs(3);
/// The first pause between two looks at the port, doubled after each look up to
/// [`LAST_POLL`]: a server that starts at once is found at once, a slow one costs a few looks.
const FIRST_POLL: Duration = Duration::from_millis(20);
const LAST_POLL: Duration = Duration::from_millis(500);
/// How long one look at the port may take (a loopback connection is answered at once).
const CONNECT_LOOK: Duration = Duration::from_secs(2);
/// After the process exited, how long its stderr may take to reach its end (something it started
/// may still hold the pipe) before the error is made with the lines read so far.
const STDERR_DRAIN: Duration = Duration::from_secs(1);

/// Why a started server did not come up.
#[derive(Debug, thiserror::Error)]
pub(super) enum StartError {
    #[error("cannot pick a free port on 127.0.0.1: {0}")]
    Port(std::io::Error),
    #[error("{0}")]
    Url(String),
    #[error("cannot start `{command}`: {source}")]
    Spawn {
        command: String,
        source: std::io::Error,
    },
    #[error("`{command}` exited ({status}) before it listened on {url}{stderr}")]
    Exited {
        command: String,
        status: String,
        url: String,
        /// `; its last lines on stderr: …`, or nothing.
        stderr: String,
    },
    #[error("`{command}` did not listen on {url} within {waited:?}")]
    NotListening {
        command: String,
        url: String,
        waited: Duration,
    },
    #[error("the server's process was not started")]
    NotStarted,
}

/// Starts `config`'s process on a fresh port and waits, up to `within`, until its URL's port
/// accepts a connection. The process and the URL to dial.
pub(super) async fn start(
    server: &str,
    config: &StartedHttp,
    within: Duration,
) -> Result<(StartedProcess, url::Url), StartError> {
    let port = if config.uses_port() {
        Some(free_port().map_err(StartError::Port)?)
    } else {
        None
    };
    let launch = config.launch(port).map_err(StartError::Url)?;
    let mut process = StartedProcess::spawn(server, config, &launch.args, &launch.env)?;
    if let Some(port) = port {
        tracing::debug!(port, "picked a port for the server's process");
    }
    process.wait_listening(&launch.url, within).await?;
    Ok((process, launch.url))
}

/// A free port on 127.0.0.1: bound, read and released. The server's process must bind it itself
/// (nothing hands a bound socket to an arbitrary program), so another process may take it in
/// between: the race is inherent. A start that loses it fails (the process exits, or another
/// server answers the handshake wrongly) and the supervisor's backoff retries with a new port.
fn free_port() -> std::io::Result<u16> {
    let listener = std::net::TcpListener::bind(("127.0.0.1", 0))?;
    Ok(listener.local_addr()?.port())
}

/// A started server's process: the leader of its own process group, watched by the reaper,
/// ended with its group when the connection ends (or killed when dropped first).
pub(super) struct StartedProcess {
    server: std::sync::Arc<str>,
    command: String,
    child: Box<dyn ChildWrapper>,
    /// Its process group: its pid, as it leads the group.
    pgid: Option<u32>,
    /// Held open while it runs: a server that ends at stdin EOF (as stdio servers do) keeps
    /// serving, and closing it is the first word of a graceful stop.
    stdin: Option<ChildStdin>,
    stderr_task: Option<JoinHandle<()>>,
    tail: Tail,
    exited: Option<ExitStatus>,
    ended: bool,
}

impl StartedProcess {
    fn spawn(
        server: &str,
        config: &StartedHttp,
        args: &[String],
        env: &std::collections::BTreeMap<String, String>,
    ) -> Result<StartedProcess, StartError> {
        let mut cmd = server_command(&config.command, args, env, config.cwd.as_deref());
        cmd.stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut wrapped = CommandWrap::from(cmd);
        // Its own process group, as a stdio server's: ending it ends what it started too.
        wrapped.wrap(ProcessGroup::leader()).wrap(KillOnDrop);
        let mut child = wrapped.spawn().map_err(|source| StartError::Spawn {
            command: config.command.clone(),
            source,
        })?;
        let pgid = child.id();
        #[cfg(unix)]
        if let Some(pgid) = pgid {
            super::reaper::watch(pgid);
        }
        let stdin = child.inner_mut().stdin().take();
        let stdout = child.inner_mut().stdout().take();
        let stderr = child.inner_mut().stderr().take();
        let tail = Tail::default();
        // Its output goes to our log under the server's name.
        let span = || tracing::info_span!(parent: None, "downstream", server = %server);
        let stderr_task = stderr.map(|stderr| {
            tokio::spawn(tracing::Instrument::instrument(
                log_output(stderr, Output::Stderr, Some(tail.clone())),
                span(),
            ))
        });
        if let Some(stdout) = stdout {
            tokio::spawn(tracing::Instrument::instrument(
                log_output(stdout, Output::Stdout, None),
                span(),
            ));
        }
        Ok(StartedProcess {
            server: server.into(),
            command: config.command.clone(),
            child,
            pgid,
            stdin,
            stderr_task,
            tail,
            exited: None,
            ended: false,
        })
    }

    /// Waits until `url`'s port accepts a TCP connection, looking again with a growing pause, for
    /// `within` at most; fails at once, with its exit status and last stderr lines, when the
    /// process exits first.
    async fn wait_listening(&mut self, url: &url::Url, within: Duration) -> Result<(), StartError> {
        let deadline = Instant::now() + within;
        let mut pause = FIRST_POLL;
        loop {
            if accepts(url).await {
                // A port taken by another process answers too; a process that failed on it has
                // exited by now or soon, and then the connection fails and is retried.
                if let Ok(Some(status)) = self.child.try_wait() {
                    return Err(self.exited_early(status, url).await);
                }
                return Ok(());
            }
            let now = Instant::now();
            if now >= deadline {
                return Err(StartError::NotListening {
                    command: self.command.clone(),
                    url: display_url(url),
                    waited: within,
                });
            }
            tokio::select! {
                status = self.child.wait() => {
                    let status = status.map_err(|source| StartError::Spawn {
                        command: self.command.clone(),
                        source,
                    })?;
                    return Err(self.exited_early(status, url).await);
                }
                () = tokio::time::sleep_until((now + pause).min(deadline)) => {}
            }
            pause = (pause * 2).min(LAST_POLL);
        }
    }

    /// The error for a process that exited before it listened, with its last stderr lines.
    async fn exited_early(&mut self, status: ExitStatus, url: &url::Url) -> StartError {
        self.exited = Some(status);
        if let Some(task) = self.stderr_task.take() {
            let _ = tokio::time::timeout(STDERR_DRAIN, task).await;
        }
        let lines: Vec<String> = crate::sync::lock(&self.tail).iter().cloned().collect();
        StartError::Exited {
            command: self.command.clone(),
            status: status.to_string(),
            url: display_url(url),
            stderr: if lines.is_empty() {
                String::new()
            } else {
                format!("; its last lines on stderr: {}", lines.join(" | "))
            },
        }
    }

    /// Ends the process and whatever it started: stdin closed, SIGTERM to the group (an HTTP
    /// server does not end at stdin EOF as a stdio one does), a grace, SIGKILL; then the rest of
    /// the group the same way.
    async fn end(&mut self) {
        if self.ended {
            return;
        }
        drop(self.stdin.take());
        if self.exited.is_none() {
            #[cfg(unix)]
            {
                const SIGTERM: i32 = 15;
                let _ = self.child.signal(SIGTERM);
            }
            match tokio::time::timeout(EXIT_GRACE, self.child.wait()).await {
                Ok(status) => self.exited = status.ok(),
                Err(_) => {
                    let _ = Box::into_pin(self.child.kill()).await;
                }
            }
        }
        self.ended = true;
        // What the server started lives on in its group after the server exited.
        #[cfg(unix)]
        if let Some(pgid) = self.pgid.take() {
            super::reaper::end_group(pgid, EXIT_GRACE).await;
        }
    }
}

impl Drop for StartedProcess {
    fn drop(&mut self) {
        if self.ended {
            return;
        }
        // Not ended in order (a start given up, a connection dropped): SIGKILL to the group.
        let _ = self.child.start_kill();
        #[cfg(unix)]
        if let Some(pgid) = self.pgid.take() {
            super::reaper::forget(pgid);
        }
    }
}

/// Whether `url`'s host and port accept a TCP connection now.
async fn accepts(url: &url::Url) -> bool {
    let Some(port) = url.port_or_known_default() else {
        return false;
    };
    let connect = async {
        match url.host() {
            Some(url::Host::Ipv4(ip)) => tokio::net::TcpStream::connect((ip, port)).await,
            Some(url::Host::Ipv6(ip)) => tokio::net::TcpStream::connect((ip, port)).await,
            // `localhost`: every address it resolves to is tried.
            Some(url::Host::Domain(host)) => tokio::net::TcpStream::connect((host, port)).await,
            None => Err(std::io::ErrorKind::InvalidInput.into()),
        }
    };
    matches!(tokio::time::timeout(CONNECT_LOOK, connect).await, Ok(Ok(_)))
}

/// An HTTP transport to a server the proxy started, owning its process: when the process exits
/// the transport ends (rmcp then sees the connection closed, and the supervisor restarts it with
/// backoff), and closing the transport ends the process and its group.
pub(super) struct WithProcess<T> {
    inner: T,
    process: StartedProcess,
}

impl<T> WithProcess<T> {
    pub(super) fn new(inner: T, process: StartedProcess) -> WithProcess<T> {
        WithProcess { inner, process }
    }
}

impl<T: Transport<RoleClient>> Transport<RoleClient> for WithProcess<T> {
    type Error = T::Error;

    fn name() -> std::borrow::Cow<'static, str> {
        T::name()
    }

    fn send(
        &mut self,
        item: TxJsonRpcMessage<RoleClient>,
    ) -> impl Future<Output = Result<(), Self::Error>> + Send + 'static {
        self.inner.send(item)
    }

    async fn receive(&mut self) -> Option<RxJsonRpcMessage<RoleClient>> {
        if self.process.exited.is_some() {
            return None;
        }
        tokio::select! {
            message = self.inner.receive() => message,
            status = self.process.child.wait() => {
                match &status {
                    Ok(status) => tracing::warn!(
                        server = %self.process.server,
                        %status,
                        "the server's process exited"
                    ),
                    Err(error) => tracing::warn!(
                        server = %self.process.server,
                        "waiting for the server's process failed: {error}"
                    ),
                }
                self.process.exited = Some(status.unwrap_or_default());
                None
            }
        }
    }

    async fn close(&mut self) -> Result<(), Self::Error> {
        // The HTTP side first, while the server can still hear that its session ends.
        let closed = self.inner.close().await;
        self.process.end().await;
        closed
    }
}
