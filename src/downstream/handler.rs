//! The client side of one downstream connection: what we announce to the server, and what we do
//! with its notifications and requests. List changes are re-listed here (on the connection's own
//! peer) before the catalog is rebuilt; everything meant for clients goes to [`Events`].

use std::sync::{Arc, Weak};

use rmcp::model::{
    ClientCapabilities, ClientConfig, ElicitRequestParams, ElicitResult, ElicitationCapability,
    FormElicitationCapability, Implementation, Request, ResourceUpdatedNotificationParam,
    RootsCapabilities, SamplingCapability, ServerRequest, UrlElicitationCapability,
};
// Sampling, roots and logging are deprecated by SEP-2577; legacy servers use them.
#[allow(deprecated)]
use rmcp::model::{
    CreateMessageRequestParams, CreateMessageResult, ListRootsResult,
    LoggingMessageNotificationParam,
};
use rmcp::service::{NotificationContext, RequestContext};
use rmcp::{ClientHandler, ErrorData, RoleClient};

use super::{Downstream, Events};

#[derive(Clone)]
pub(super) struct DownstreamHandler {
    pub(super) server: Arc<str>,
    pub(super) downstream: Weak<Downstream>,
    pub(super) events: Arc<dyn Events>,
}

/// Which list a `list_changed` notification is about.
#[derive(Clone, Copy, Debug)]
enum ListKind {
    Tools,
    Prompts,
    Resources,
}

impl std::fmt::Display for ListKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            ListKind::Tools => "tools",
            ListKind::Prompts => "prompts",
            ListKind::Resources => "resources",
        })
    }
}

impl DownstreamHandler {
    fn relist(&self, kind: ListKind, context: NotificationContext<RoleClient>) {
        let this = self.clone();
        tokio::spawn(async move {
            let Some(downstream) = this.downstream.upgrade() else {
                return;
            };
            // During the handshake (no connection yet) the supervisor lists everything once it has
            // the connection; lists taken now would reach the catalog with any other server's
            // change and route calls to a server that is still "starting".
            if downstream.connection().is_none() {
                return;
            }
            let peer = context.peer;
            let result = match kind {
                ListKind::Tools => peer.list_all_tools().await.map(|tools| {
                    downstream.update_lists(|lists| lists.tools = tools);
                }),
                ListKind::Prompts => peer.list_all_prompts().await.map(|prompts| {
                    downstream.update_lists(|lists| lists.prompts = prompts);
                }),
                ListKind::Resources => {
                    let resources = peer.list_all_resources().await;
                    let templates = peer.list_all_resource_templates().await;
                    resources.map(|resources| {
                        downstream.update_lists(|lists| {
                            lists.resources = resources;
                            if let Ok(templates) = templates {
                                lists.templates = templates;
                            }
                        });
                    })
                }
            };
            match result {
                Ok(()) => {
                    tracing::info!(server = %this.server, list = %kind, "list changed, re-listed");
                    this.events.lists_changed(&this.server);
                }
                Err(error) => {
                    tracing::warn!(server = %this.server, list = %kind, "re-listing failed: {error}");
                }
            }
        });
    }

    fn forward(
        &self,
        request: ServerRequest,
        context: RequestContext<RoleClient>,
    ) -> impl Future<Output = Result<rmcp::model::ClientResult, ErrorData>> + Send + 'static {
        self.events.server_request(&self.server, request, context)
    }
}

fn unexpected(method: &str) -> ErrorData {
    ErrorData::internal_error(
        format!("the client answered {method} with an unexpected result"),
        None,
    )
}

// Sampling and roots are deprecated by SEP-2577 but still what legacy servers use.
#[allow(deprecated)]
impl ClientHandler for DownstreamHandler {
    fn get_info(&self) -> ClientConfig {
        let mut capabilities = ClientCapabilities::default();
        let mut roots = RootsCapabilities::default();
        roots.list_changed = Some(true);
        capabilities.roots = Some(roots);
        capabilities.sampling = Some(SamplingCapability::default());
        capabilities.elicitation = Some(
            ElicitationCapability::new()
                .with_form(FormElicitationCapability::new())
                .with_url(UrlElicitationCapability::new()),
        );
        let mut implementation = Implementation::new("PluggedinMCP", env!("CARGO_PKG_VERSION"));
        implementation.title = Some("plugged.in MCP Proxy".to_owned());
        ClientConfig::new(capabilities, implementation)
    }

    async fn create_message(
        &self,
        params: CreateMessageRequestParams,
        context: RequestContext<RoleClient>,
    ) -> Result<CreateMessageResult, ErrorData> {
        let request = ServerRequest::CreateMessageRequest(Request::new(params));
        match self.forward(request, context).await? {
            rmcp::model::ClientResult::CreateMessageResult(result) => Ok(*result),
            _ => Err(unexpected("sampling/createMessage")),
        }
    }

    async fn list_roots(
        &self,
        context: RequestContext<RoleClient>,
    ) -> Result<ListRootsResult, ErrorData> {
        let request = ServerRequest::ListRootsRequest(Default::default());
        match self.forward(request, context).await? {
            rmcp::model::ClientResult::ListRootsResult(result) => Ok(result),
            _ => Err(unexpected("roots/list")),
        }
    }

    async fn create_elicitation(
        &self,
        params: ElicitRequestParams,
        context: RequestContext<RoleClient>,
    ) -> Result<ElicitResult, ErrorData> {
        let request = ServerRequest::ElicitRequest(Request::new(params));
        match self.forward(request, context).await? {
            rmcp::model::ClientResult::ElicitResult(result) => Ok(result),
            _ => Err(unexpected("elicitation/create")),
        }
    }

    async fn on_logging_message(
        &self,
        params: LoggingMessageNotificationParam,
        _context: NotificationContext<RoleClient>,
    ) {
        self.events.log(&self.server, params);
    }

    async fn on_resource_updated(
        &self,
        params: ResourceUpdatedNotificationParam,
        _context: NotificationContext<RoleClient>,
    ) {
        self.events.resource_updated(&self.server, params);
    }

    async fn on_custom_notification(
        &self,
        notification: rmcp::model::CustomNotification,
        _context: NotificationContext<RoleClient>,
    ) {
        if notification.method == crate::wire::core_tasks::STATUS_CUSTOM {
            self.events.task_status(&self.server, notification.params);
        }
    }

    async fn on_tool_list_changed(&self, context: NotificationContext<RoleClient>) {
        self.relist(ListKind::Tools, context);
    }

    async fn on_prompt_list_changed(&self, context: NotificationContext<RoleClient>) {
        self.relist(ListKind::Prompts, context);
    }

    async fn on_resource_list_changed(&self, context: NotificationContext<RoleClient>) {
        self.relist(ListKind::Resources, context);
    }
}
