//! OpenTelemetry traces, exported over OTLP/HTTP in protobuf: a server span for each request a
//! client sends, a client span for each request sent to a downstream server, and internal spans
//! for the built-in tools and the local store — named and attributed as the OpenTelemetry
//! semantic conventions for MCP say (`tools/call demo__echo`, `mcp.method.name`,
//! `gen_ai.tool.name`, …). A client's context comes from its request's `params._meta`
//! (`traceparent`, `tracestate`), or the HTTP `traceparent` header; the downstream request's
//! `_meta` carries the client span's, so one trace runs from the client through the proxy into the
//! server.
//!
//! Configured by the standard environment variables (`OTEL_EXPORTER_OTLP_ENDPOINT`,
//! `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`, `OTEL_EXPORTER_OTLP_HEADERS`, `OTEL_SERVICE_NAME`,
//! `OTEL_RESOURCE_ATTRIBUTES`, `OTEL_TRACES_SAMPLER`, `OTEL_TRACES_SAMPLER_ARG`,
//! `OTEL_BSP_SCHEDULE_DELAY`, `OTEL_SDK_DISABLED`, `OTEL_TRACES_EXPORTER`); without an endpoint,
//! tracing is off and costs one atomic load per request. Our own small exporter, not the
//! OpenTelemetry crates: see ARCHITECTURE.md for the build time that saves.

mod context;
mod data;
mod export;
mod proto;
mod span;

pub use context::SpanContext;
pub use data::{Kind, Value};
pub use export::{Sampler, dropped, enabled, init_from_env, shutdown};
pub use span::{Encoded, Head, KeptHead, Name, Shape, Span, current, entered, in_context, within};

/// The context a request's `_meta` carries (`traceparent`, `tracestate`), if valid.
pub fn from_meta(meta: &serde_json::Map<String, serde_json::Value>) -> Option<SpanContext> {
    let parent = meta.get("traceparent")?.as_str()?;
    let state = meta.get("tracestate").and_then(|state| state.as_str());
    SpanContext::parse(parent, state)
}
