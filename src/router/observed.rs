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
use crate::traces::{self, Head, Span};

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
        let mut head = Head::new((method, target));
        head.fixed("mcp.method.name", method);
        if let Some(target) = target {
            attribute_target(&mut head, method, target);
        }
        let version = caller.version_label();
        if !version.is_empty() {
            head.fixed("mcp.protocol.version", version);
        }
        let transport = metrics::global().transport();
        if !transport.is_empty() {
            head.fixed("network.transport", transport);
        }
        if http.is_some() {
            head.fixed("network.protocol.name", "http");
        }
        let mut span = Span::server_at(&head, parent, started);
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
    /// its `network.transport` when the caller knows it, else looked up).
    pub(super) fn begin_client<'a>(
        &self,
        server: &'a str,
        (method, tool): (&'static str, Option<&str>),
        network: Option<&'static str>,
    ) -> ClientOperation<'a> {
        let started = Instant::now();
        ClientOperation {
            started,
            span: self.client_span(server, (method, tool), network, started),
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
        network: Option<&'static str>,
        started: Instant,
    ) -> Span {
        if !traces::enabled() {
            return Span::none();
        }
        let mut head = Head::new((method, tool));
        head.fixed("mcp.method.name", method);
        if let Some(tool) = tool {
            attribute_target(&mut head, method, tool);
        }
        head.text("pluggedin.server", server);
        let network = network.or_else(|| {
            let transport = self.fleet.server(server).ok()?.config.transport.kind();
            Some(if transport == "stdio" { "pipe" } else { "tcp" })
        });
        if let Some(network) = network {
            head.fixed("network.transport", network);
        }
        Span::child_at(traces::Kind::Client, &head, started)
    }
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
