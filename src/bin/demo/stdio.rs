//! Serving over stdio: one session on stdin and stdout, for as long as stdin lasts. The session
//! is the demo's handler wrapped so that open `subscriptions/listen` streams end with stdin;
//! otherwise rmcp would wait for them (up to 5 s) after EOF, longer than a proxy's close grace.
//! Stdout carries protocol messages only; logs go to stderr.

use std::sync::Arc;

use anyhow::Context as _;
use pluggedin_mcp_proxy::wire::process_io;
use rmcp::{
    ErrorData as McpError, RoleServer, ServiceExt,
    model::*,
    service::{QuitReason, RequestContext, ServerInitializeError},
};
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::{server::DemoServer, shared::Shared};

pub(crate) async fn serve_stdio(shared: Arc<Shared>) -> anyhow::Result<()> {
    let input_closed = CancellationToken::new();
    let server = StdioSession {
        inner: DemoServer::new_session(&shared),
        input_closed: input_closed.clone(),
    };
    // Pipes as non-blocking streams, not tokio's blocking-pool stdin and stdout: a proxy's
    // benchmark measures the hop, not the thread switches of the server behind it.
    let stdin = WatchedStdin {
        inner: process_io::stdin(),
        closed: input_closed,
    };
    match server.serve((stdin, process_io::stdout())).await {
        Ok(running) => {
            match running.waiting().await? {
                QuitReason::Closed => info!("stdin closed, exiting"),
                QuitReason::Cancelled => info!("session cancelled, exiting"),
                QuitReason::JoinError(error) => warn!("session task failed: {error}"),
                _ => info!("stdio session ended"),
            }
            Ok(())
        }
        Err(ServerInitializeError::ConnectionClosed(_)) => {
            info!("stdin closed before the session started");
            Ok(())
        }
        Err(error) => Err(error).context("MCP session over stdio failed to start"),
    }
}

/// The stdio session: the demo's handler, except that `subscriptions/listen` streams end when
/// stdin does. At stdin EOF rmcp stops reading and waits (up to 5 s) for every request handler
/// to answer before it lets the process go; a listen stream only ends when cancelled, and one
/// caught while rmcp acknowledges it waits for the service loop that EOF already ended. Ending
/// the stream at EOF lets the process exit as soon as the answers it owes are written.
struct StdioSession {
    inner: DemoServer,
    input_closed: CancellationToken,
}

impl rmcp::Service<RoleServer> for StdioSession {
    async fn handle_request(
        &self,
        request: ClientRequest,
        context: RequestContext<RoleServer>,
    ) -> Result<ServerResult, McpError> {
        if !matches!(request, ClientRequest::SubscriptionsListenRequest(_)) {
            return self.inner.handle_request(request, context).await;
        }
        let id = context.id.clone();
        tokio::select! {
            result = self.inner.handle_request(request, context) => result,
            () = self.input_closed.cancelled() => Ok(ServerResult::SubscriptionsListenResult(
                SubscriptionsListenResult::complete(id),
            )),
        }
    }

    async fn handle_notification(
        &self,
        notification: ClientNotification,
        context: rmcp::service::NotificationContext<RoleServer>,
    ) -> Result<(), McpError> {
        self.inner.handle_notification(notification, context).await
    }

    fn get_info(&self) -> ServerConfig {
        rmcp::Service::<RoleServer>::get_info(&self.inner)
    }

    fn supported_protocol_versions(&self) -> std::borrow::Cow<'static, [ProtocolVersion]> {
        rmcp::Service::<RoleServer>::supported_protocol_versions(&self.inner)
    }
}

/// Stdin that cancels `closed` when it ends (or fails): in stdio mode the end of input is the
/// end of the session, whatever streams are still open.
struct WatchedStdin {
    inner: Box<dyn tokio::io::AsyncRead + Send + Unpin>,
    closed: CancellationToken,
}

impl tokio::io::AsyncRead for WatchedStdin {
    fn poll_read(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let poll = std::pin::Pin::new(&mut this.inner).poll_read(cx, buf);
        let ended = match &poll {
            std::task::Poll::Ready(Ok(())) => buf.filled().len() == before && buf.remaining() > 0,
            std::task::Poll::Ready(Err(_)) => true,
            std::task::Poll::Pending => false,
        };
        if ended {
            this.closed.cancel();
        }
        poll
    }
}
