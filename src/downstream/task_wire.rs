//! The Streamable HTTP client of every such connection, wrapped for 2025-11-25 core tasks
//! (`wire::core_tasks`): the requests we send are noted, and the server's SSE events (answers
//! on a POST's stream, notifications on the GET stream) pass through [`DownstreamWire`] before rmcp
//! decodes them. An answer the server sends as a plain JSON body is decoded inside rmcp's
//! client, before we see it: such a server's task data is not carried (ARCHITECTURE.md).

use std::collections::HashMap;
use std::sync::Arc;

use futures::StreamExt;
use futures::stream::BoxStream;
use reqwest::header::{HeaderName, HeaderValue};
use rmcp::model::{ClientJsonRpcMessage, GetMeta};
use rmcp::transport::streamable_http_client::{
    SseError, StreamableHttpClient, StreamableHttpError, StreamableHttpPostResponse,
    StreamableHttpResponseLimits,
};
use sse_stream::Sse;

use crate::wire::core_tasks::DownstreamWire;

/// A Streamable HTTP client (reqwest's, or OAuth's around it) with the raw path of core tasks.
#[derive(Clone)]
pub(super) struct TaskWire<C> {
    pub(super) inner: C,
    pub(super) wire: DownstreamWire,
}

impl<C> TaskWire<C> {
    pub(super) fn new(inner: C) -> TaskWire<C> {
        TaskWire {
            inner,
            wire: DownstreamWire::default(),
        }
    }
}

/// A request's trace context as HTTP headers too (`traceparent`, `tracestate`), from the `_meta`
/// the router gave it: a server that reads only the headers joins the trace as well.
fn trace_headers(message: &ClientJsonRpcMessage, headers: &mut HashMap<HeaderName, HeaderValue>) {
    let ClientJsonRpcMessage::Request(request) = message else {
        return;
    };
    let meta = request.request.get_meta();
    for key in ["traceparent", "tracestate"] {
        if let Some(value) = meta.get(key).and_then(|value| value.as_str())
            && let Ok(value) = HeaderValue::from_str(value)
        {
            headers.insert(HeaderName::from_static(key), value);
        }
    }
}

/// Passes each event's data through the wire.
fn rewrite(
    wire: DownstreamWire,
    stream: BoxStream<'static, Result<Sse, SseError>>,
) -> BoxStream<'static, Result<Sse, SseError>> {
    stream
        .map(move |event| {
            event.map(|mut event| {
                if let Some(data) = &event.data
                    && let Some(value) = wire.received(data.as_bytes())
                {
                    event.data = Some(value.to_string());
                }
                event
            })
        })
        .boxed()
}

impl<C: StreamableHttpClient + Sync> StreamableHttpClient for TaskWire<C> {
    type Error = C::Error;

    async fn post_message(
        &self,
        uri: Arc<str>,
        message: ClientJsonRpcMessage,
        session_id: Option<Arc<str>>,
        auth_header: Option<String>,
        custom_headers: HashMap<HeaderName, HeaderValue>,
    ) -> Result<StreamableHttpPostResponse, StreamableHttpError<Self::Error>> {
        self.post_message_with_response_limits(
            uri,
            message,
            session_id,
            auth_header,
            custom_headers,
            StreamableHttpResponseLimits::default(),
        )
        .await
    }

    async fn post_message_with_response_limits(
        &self,
        uri: Arc<str>,
        message: ClientJsonRpcMessage,
        session_id: Option<Arc<str>>,
        auth_header: Option<String>,
        custom_headers: HashMap<HeaderName, HeaderValue>,
        limits: StreamableHttpResponseLimits,
    ) -> Result<StreamableHttpPostResponse, StreamableHttpError<Self::Error>> {
        self.wire.sent(&message);
        let mut custom_headers = custom_headers;
        if crate::traces::enabled() {
            trace_headers(&message, &mut custom_headers);
        }
        let response = self
            .inner
            .post_message_with_response_limits(
                uri,
                message,
                session_id,
                auth_header,
                custom_headers,
                limits,
            )
            .await?;
        Ok(match response {
            StreamableHttpPostResponse::Sse(stream, session) => {
                StreamableHttpPostResponse::Sse(rewrite(self.wire.clone(), stream), session)
            }
            other => other,
        })
    }

    async fn delete_session(
        &self,
        uri: Arc<str>,
        session_id: Arc<str>,
        auth_header: Option<String>,
        custom_headers: HashMap<HeaderName, HeaderValue>,
    ) -> Result<(), StreamableHttpError<Self::Error>> {
        self.inner
            .delete_session(uri, session_id, auth_header, custom_headers)
            .await
    }

    async fn get_stream(
        &self,
        uri: Arc<str>,
        session_id: Option<Arc<str>>,
        last_event_id: Option<String>,
        auth_header: Option<String>,
        custom_headers: HashMap<HeaderName, HeaderValue>,
    ) -> Result<BoxStream<'static, Result<Sse, SseError>>, StreamableHttpError<Self::Error>> {
        self.get_stream_with_max_sse_event_size(
            uri,
            session_id,
            last_event_id,
            auth_header,
            custom_headers,
            usize::MAX,
        )
        .await
    }

    async fn get_stream_with_max_sse_event_size(
        &self,
        uri: Arc<str>,
        session_id: Option<Arc<str>>,
        last_event_id: Option<String>,
        auth_header: Option<String>,
        custom_headers: HashMap<HeaderName, HeaderValue>,
        max_sse_event_size: usize,
    ) -> Result<BoxStream<'static, Result<Sse, SseError>>, StreamableHttpError<Self::Error>> {
        let stream = self
            .inner
            .get_stream_with_max_sse_event_size(
                uri,
                session_id,
                last_event_id,
                auth_header,
                custom_headers,
                max_sse_event_size,
            )
            .await?;
        Ok(rewrite(self.wire.clone(), stream))
    }
}
