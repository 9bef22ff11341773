//! One client request as an operator sees it: its server span (traces) and its duration
//! (metrics), begun before the request is routed and ended with its outcome. The router's
//! requests and the handler's own (`upstream`) both go through here, so a request is measured
//! once, on whichever path it takes.

use std::fmt::Display;
use std::future::Future;
use std::time::Instant;

use super::Router;
use super::error::RouteError;
use super::session::Caller;
use crate::metrics::{self, Outcome};
use crate::traces::{self, Head, KeptHead, Shape, Span};

/// A request being answered.
pub struct Operation {
    pub span: Span,
    method: &'static str,
    started: Instant,
    /// The caller's protocol version label, when the span already asked for it.
    version: Option<&'static str>,
}

impl Router {
    /// Begins `method` (`target`: the tool or prompt it names) for `caller`: a server span whose
    /// parent is the client's context (`params._meta`, else the HTTP `traceparent` header).
    pub fn begin(&self, caller: &Caller, method: &'static str, target: Option<&str>) -> Operation {
        self.begin_kept(caller, method, target, None)
    }

    /// Begins `method` as [`Router::begin`] does, its span's head the one `kept` keeps when it
    /// has the caller's shape (the tool's route: `target` is then the name the route is kept
    /// for).
    pub(super) fn begin_kept(
        &self,
        caller: &Caller,
        method: &'static str,
        target: Option<&str>,
        kept: Option<&KeptHead>,
    ) -> Operation {
        let started = Instant::now();
        if !traces::enabled() {
            return Operation {
                span: Span::none(),
                method,
                started,
                version: None,
            };
        }
        let http = caller.http.as_deref();
        let parent =
            traces::from_meta(&caller.meta).or_else(|| http.and_then(|http| http.parent.clone()));
        let version = caller.version_label();
        let transport = metrics::global().transport();
        let over_http = if http.is_some() { "http" } else { "" };
        let gather = || server_head(method, target, version, transport, over_http);
        let kept = kept.and_then(|kept| kept.get(Shape([version, transport, over_http]), gather));
        let mut span = match kept {
            Some(head) => Span::server_kept(head, parent, started),
            None => Span::server_at(&gather(), parent, started),
        };
        if span.is_recording() {
            match &caller.request_id {
                Some(rmcp::model::NumberOrString::Number(id)) => {
                    span.set("jsonrpc.request.id", itoa::Buffer::new().format(*id));
                }
                Some(rmcp::model::NumberOrString::String(id)) => {
                    span.set("jsonrpc.request.id", &**id);
                }
                None => {}
            }
            if let Some(session) = http.and_then(|http| http.session_id.as_deref()) {
                span.set("mcp.session.id", session);
            }
        }
        Operation {
            span,
            method,
            started,
            version: Some(version),
        }
    }

    /// Runs `routed` as `operation`: counted in flight, inside its span, finished with its outcome
    /// (no tool label: `tools/call` finishes itself, its outcome has more to say).
    pub(super) async fn observed<T>(
        &self,
        caller: &Caller,
        operation: Operation,
        routed: impl Future<Output = Result<T, RouteError>>,
    ) -> Result<T, RouteError> {
        let _in_flight = metrics::global().in_flight();
        let outcome = traces::within(&operation.span, routed).await;
        let error = outcome.as_ref().err().map(|error| error as &dyn Display);
        self.finish(operation, caller, None, Outcome::of(&outcome), error);
        outcome
    }

    /// Ends a request: its duration into the metrics (`tool`: a name the catalog serves, else
    /// none), its outcome onto its span (`error`: the message the client got).
    pub fn finish(
        &self,
        mut operation: Operation,
        caller: &Caller,
        tool: Option<&str>,
        outcome: Outcome,
        error: Option<&dyn std::fmt::Display>,
    ) {
        let elapsed = operation.started.elapsed();
        let version = operation.version.unwrap_or_else(|| caller.version_label());
        metrics::global().server_operation(operation.method, tool, outcome, version, elapsed);
        end_span(&mut operation.span, outcome, error, elapsed);
    }
}

/// A request to a server being answered: its client span and its clock.
pub(super) struct ClientOperation<'a> {
    pub(super) span: Span,
    method: &'static str,
    server: &'a str,
    started: Instant,
}

impl ClientOperation<'_> {
    /// Ends it: its duration into the metrics (`mcp.client.operation.duration`), its outcome onto
    /// its span.
    pub(super) fn finish<T>(
        mut self,
        tool: Option<&str>,
        outcome: Outcome,
        result: &Result<T, RouteError>,
    ) {
        let elapsed = self.started.elapsed();
        metrics::global().client_operation(self.method, tool, self.server, outcome, elapsed);
        let error = result.as_ref().err().map(|error| error as &dyn Display);
        end_span(&mut self.span, outcome, error, elapsed);
    }
}

impl Router {
    /// Begins a request to `server` (`tool`: the server's own name for a called tool; `network`:
    /// its `network.transport` when the caller knows it, else looked up; `kept`: the head its
    /// route keeps, for a called tool).
    pub(super) fn begin_client<'a>(
        &self,
        server: &'a str,
        (method, tool): (&'static str, Option<&str>),
        network: Option<&'static str>,
        kept: Option<&KeptHead>,
    ) -> ClientOperation<'a> {
        let started = Instant::now();
        ClientOperation {
            started,
            span: self.client_span(server, (method, tool), (network, kept), started),
            method,
            server,
        }
    }

    /// A client span for a request to `server` (inside the current span; none outside one),
    /// started at `started`.
    fn client_span(
        &self,
        server: &str,
        (method, tool): (&'static str, Option<&str>),
        (network, kept): (Option<&'static str>, Option<&KeptHead>),
        started: Instant,
    ) -> Span {
        if !traces::enabled() {
            return Span::none();
        }
        let network = network.or_else(|| {
            let transport = self.fleet.server(server).ok()?.config.transport.kind();
            Some(if transport == "stdio" { "pipe" } else { "tcp" })
        });
        let gather = || {
            let mut head = Head::new((method, tool));
            head.fixed("mcp.method.name", method);
            if let Some(tool) = tool {
                attribute_target(&mut head, method, tool);
            }
            head.text("pluggedin.server", server);
            if let Some(network) = network {
                head.fixed("network.transport", network);
            }
            head
        };
        let shape = Shape([network.unwrap_or(""), "", ""]);
        match kept.and_then(|kept| kept.get(shape, gather)) {
            Some(head) => Span::child_kept(traces::Kind::Client, head, started),
            None => Span::child_at(traces::Kind::Client, &gather(), started),
        }
    }
}

/// The head of a server span: its name and the attributes every request of its kind to its
/// target shares.
fn server_head<'a>(
    method: &'static str,
    target: Option<&'a str>,
    version: &'static str,
    transport: &'static str,
    over_http: &'static str,
) -> Head<'a> {
    let mut head = Head::new((method, target));
    head.fixed("mcp.method.name", method);
    if let Some(target) = target {
        attribute_target(&mut head, method, target);
    }
    if !version.is_empty() {
        head.fixed("mcp.protocol.version", version);
    }
    if !transport.is_empty() {
        head.fixed("network.transport", transport);
    }
    if !over_http.is_empty() {
        head.fixed("network.protocol.name", over_http);
    }
    head
}

/// Puts a client span's context into a downstream request's `_meta` (`traceparent`, and the
/// client's `tracestate`), in place of the client's own: the server's spans are its children.
pub(super) fn inject(span: &Span, meta: &mut rmcp::model::RequestMetaObject) {
    let Some(context) = span.context() else {
        return;
    };
    meta.insert(
        "traceparent".to_owned(),
        serde_json::Value::String(context.traceparent()),
    );
    if let Some(state) = &context.trace_state {
        meta.insert(
            "tracestate".to_owned(),
            serde_json::Value::String(state.to_string()),
        );
    }
}

/// The attributes naming what `method` is about.
pub(super) fn attribute_target<'a>(head: &mut Head<'a>, method: &str, target: &'a str) {
    match method {
        "tools/call" => {
            head.text("gen_ai.tool.name", target);
            head.fixed("gen_ai.operation.name", "execute_tool");
        }
        "prompts/get" => head.text("gen_ai.prompt.name", target),
        _ => {}
    }
}

/// A span's outcome: `error.type` (the JSON-RPC code, or `tool_error`), `rpc.response.status_code`
/// and an error status with the message; its end, `elapsed` after its start.
fn end_span(
    span: &mut Span,
    outcome: Outcome,
    error: Option<&dyn std::fmt::Display>,
    elapsed: std::time::Duration,
) {
    if !span.is_recording() {
        return;
    }
    span.end_after(elapsed);
    let message = error.map(ToString::to_string);
    match outcome {
        Outcome::Ok => {}
        Outcome::ToolError => span.fail("tool_error", message.as_deref().unwrap_or("tool error")),
        Outcome::Code(code) => {
            let code = code.to_string();
            span.fail(&code, message.as_deref().unwrap_or(""));
            span.set("rpc.response.status_code", &code);
        }
    }
}
