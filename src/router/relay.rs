//! Relaying the requests that name one item (`tools/call`, `prompts/get`, `resources/read`,
//! `completion/complete`): the one way each goes to a server, whichever way it came in. A
//! request from a legacy client to a server on stdio goes out on the connection's lane
//! (`wire::lane`): a call's arguments are written as the client wrote them (raw from the fast
//! entries, `upstream::fast_calls`, or encoded once from rmcp's types), the other requests'
//! small params encoded once, and the server's result comes back unparsed — decoded only for a
//! caller that needs it typed, or when a modern server asks for input (then `forward`'s rounds
//! go on). Any other request (a modern client, a server over HTTP) takes `forward`. Both share
//! what a request needs besides its bytes: the progress route, the in-flight registration that
//! attributes the server's own requests, the client's cancellation passed on, the server's
//! timeout.

use std::sync::{Arc, LazyLock};

use memchr::memmem::Finder;

use rmcp::model::{
    CallToolRequestParams, CallToolResult, CancelledNotificationParam, ClientRequest, JsonObject,
    NumberOrString, ProgressToken, Request, RequestMetaObject, ServerResult,
};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use super::Router;
use super::error::RouteError;
use super::forward::{forwarded_meta, log_level_for};
use super::session::Caller;
use crate::downstream::{ChildLane, Connection};
use crate::metrics::Outcome;
use crate::traces::{KeptHead, SpanContext};
use crate::wire::lane::{Answer, LaneError};

const METHOD: &str = "tools/call";

/// Where a modern server's result may be an `InputRequiredResult` (read only then).
static INPUT_REQUIRED: LazyLock<Finder<'static>> =
    LazyLock::new(|| Finder::new(b"\"input_required\""));

/// An answer to a request that names one item: a result decoded or made here, or a server's
/// result as it wrote it.
#[derive(Debug)]
// Moved a few times per call; boxing the typed result would add an allocation to that path.
#[allow(clippy::large_enum_variant)]
pub enum Relayed {
    /// Boxed: a result is large, and a call's answer is moved through every future it is
    /// awaited in (a relayed call's, the common answer, is `Raw`).
    Typed(Box<ServerResult>),
    /// The method's result object (`CallToolResult`, `GetPromptResult`…), unparsed.
    Raw(Box<RawValue>),
}

/// The requests whose results are relayed as written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Relayable {
    CallTool,
    GetPrompt,
    ReadResource,
    Complete,
}

impl Relayable {
    fn of(request: &ClientRequest) -> Option<Relayable> {
        Some(match request {
            ClientRequest::CallToolRequest(_) => Relayable::CallTool,
            ClientRequest::GetPromptRequest(_) => Relayable::GetPrompt,
            ClientRequest::ReadResourceRequest(_) => Relayable::ReadResource,
            ClientRequest::CompleteRequest(_) => Relayable::Complete,
            _ => return None,
        })
    }

    pub(super) fn method(self) -> &'static str {
        match self {
            Relayable::CallTool => METHOD,
            Relayable::GetPrompt => "prompts/get",
            Relayable::ReadResource => "resources/read",
            Relayable::Complete => "completion/complete",
        }
    }

    /// A server's result for this request, decoded.
    fn decode(self, raw: &RawValue) -> serde_json::Result<ServerResult> {
        let text = raw.get();
        Ok(match self {
            Relayable::CallTool => ServerResult::CallToolResult(serde_json::from_str(text)?),
            Relayable::GetPrompt => ServerResult::GetPromptResult(serde_json::from_str(text)?),
            Relayable::ReadResource => {
                ServerResult::ReadResourceResult(serde_json::from_str(text)?)
            }
            Relayable::Complete => ServerResult::CompleteResult(serde_json::from_str(text)?),
        })
    }
}

impl Relayed {
    /// The answer to a `kind` request as rmcp's type. A relayed result is decoded here.
    /// A typed result.
    pub fn typed(result: ServerResult) -> Relayed {
        Relayed::Typed(Box::new(result))
    }

    pub(super) fn into_typed(
        self,
        server: &str,
        kind: Relayable,
    ) -> Result<ServerResult, RouteError> {
        match self {
            Relayed::Typed(result) => Ok(*result),
            Relayed::Raw(raw) => kind.decode(&raw).map_err(|_| RouteError::UnexpectedResult {
                server: server.to_owned(),
                method: kind.method().to_owned(),
            }),
        }
    }

    /// The answer for a `kind` request's caller: a raw caller is a legacy client, whose result
    /// takes the legacy shape (decoded where it needs rmcp's types for that); a typed caller
    /// gets it decoded.
    pub(super) fn for_caller(
        self,
        server: &str,
        kind: Relayable,
        raw_caller: bool,
    ) -> Result<Relayed, RouteError> {
        match self {
            Relayed::Raw(raw) if raw_caller => match legacy_shape(raw) {
                Ok(shaped) => Ok(Relayed::Raw(shaped)),
                Err(raw) => Relayed::Raw(raw)
                    .into_typed(server, kind)
                    .map(Relayed::typed),
            },
            relayed => relayed.into_typed(server, kind).map(Relayed::typed),
        }
    }

    /// The tool's own failure (`isError`), with its text, for the activity log. A relayed
    /// result is read only where it says `isError`.
    pub(super) fn tool_error(&self) -> Option<String> {
        match self {
            Relayed::Typed(typed) => match &**typed {
                ServerResult::CallToolResult(result) => {
                    (result.is_error == Some(true)).then(|| result_text(result))
                }
                _ => None,
            },
            Relayed::Raw(raw) => {
                if !may_say_is_error(raw.get().as_bytes()) {
                    return None;
                }
                let result: CallToolResult = serde_json::from_str(raw.get()).ok()?;
                (result.is_error == Some(true)).then(|| result_text(&result))
            }
        }
    }
}

/// Whether a result's text has `"isError"` followed by `true` (spaces and the colon between):
/// only then is it worth reading. A key of that name inside a value can only add a read.
fn may_say_is_error(bytes: &[u8]) -> bool {
    static KEY: LazyLock<Finder<'static>> = LazyLock::new(|| Finder::new(b"\"isError\""));
    KEY.find_iter(bytes).any(|at| {
        let rest = &bytes[at + b"\"isError\"".len()..];
        let rest = rest.trim_ascii_start();
        rest.strip_prefix(b":")
            .is_some_and(|rest| rest.trim_ascii_start().starts_with(b"true"))
    })
}

/// The text of a tool's result, or a stand-in when it has none.
pub(super) fn result_text(result: &CallToolResult) -> String {
    let texts: Vec<&str> = result
        .content
        .iter()
        .filter_map(|content| content.as_text().map(|text| text.text.as_str()))
        .collect();
    if texts.is_empty() {
        "the tool reported an error".to_owned()
    } else {
        texts.join("\n")
    }
}

/// A request's params as the lane writes them, before the `_meta` made for it (`LaneMeta`; the
/// params' own is cleared).
struct LaneRequestParams<'a>(&'a ClientRequest);

impl Serialize for LaneRequestParams<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self.0 {
            ClientRequest::GetPromptRequest(get) => get.params.serialize(serializer),
            ClientRequest::ReadResourceRequest(read) => read.params.serialize(serializer),
            ClientRequest::CompleteRequest(complete) => complete.params.serialize(serializer),
            other => Err(serde::ser::Error::custom(format!(
                "{} does not go on a lane this way",
                other.method()
            ))),
        }
    }
}

/// A call's arguments on the lane: as the client wrote them, or rmcp's decoded object.
#[derive(Serialize)]
#[serde(untagged)]
enum Arguments<'a> {
    Raw(&'a RawValue),
    Typed(&'a JsonObject),
}

#[derive(Serialize)]
struct LaneParams<'a> {
    name: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    arguments: Option<Arguments<'a>>,
}

impl Router {
    /// Sends a call to the server that owns it: on the lane where the call can take it, else
    /// through `forward`. `raw`: the arguments as the client wrote them, in place of
    /// `params.arguments` (`params.name` is the server's own name for the tool); `head`: the
    /// head its route keeps for the call's client span.
    pub(super) async fn relay_tool_call(
        &self,
        server: &str,
        (params, head): (&CallToolRequestParams, Option<&KeptHead>),
        raw: Option<&RawValue>,
        caller: &Caller,
    ) -> Result<Relayed, RouteError> {
        let downstream = self.fleet.server(server)?;
        let connection = self.connection_of(&downstream, caller).await?;
        let on_lane = connection.lane.as_ref().filter(|_| {
            // A modern caller has parking and its own log level (`forward`); a retry carries its
            // state.
            !caller.is_modern()
                && caller.park.is_none()
                && params.input_responses.is_none()
                && params.request_state.is_none()
        });
        if let Some(lane) = on_lane {
            let arguments = match raw {
                Some(raw) => Some(Arguments::Raw(raw)),
                None => params.arguments.as_ref().map(Arguments::Typed),
            };
            let extra = lane_extra(&connection, caller);
            let name = &params.name;
            let result = self
                .on_lane(
                    server,
                    &connection,
                    (lane, Relayable::CallTool, downstream.config.timeout),
                    (|| LaneParams { name, arguments }, extra),
                    (caller, Some(name), head),
                )
                .await?;
            // A modern server asking the legacy caller for input: the proxy asks and sends the
            // call again (`forward`'s rounds).
            if let Some(first) = asks_for_input(&connection, &result) {
                let mut params = params.clone();
                if let Some(raw) = raw {
                    params.arguments = Some(decode_arguments(raw)?);
                }
                let request = ClientRequest::CallToolRequest(Request::new(params));
                // Boxed, as the path below: a call on the lane carries neither in its future.
                return Box::pin(self.input_rounds(server, request, first, caller))
                    .await
                    .map(Relayed::typed);
            }
            return Ok(Relayed::Raw(result));
        }
        let mut params = params.clone();
        if let Some(raw) = raw {
            params.arguments = Some(decode_arguments(raw)?);
        }
        Box::pin(self.forward(
            server,
            ClientRequest::CallToolRequest(Request::new(params)),
            caller,
        ))
        .await
        .map(Relayed::typed)
    }

    /// Sends a `prompts/get`, `resources/read` or `completion/complete` (its params' `_meta`
    /// already cleared) to the server that owns its item: on the lane where the request can
    /// take it, else through `forward`.
    pub(super) async fn relay_request(
        &self,
        server: &str,
        request: ClientRequest,
        caller: &Caller,
    ) -> Result<Relayed, RouteError> {
        let downstream = self.fleet.server(server)?;
        let connection = self.connection_of(&downstream, caller).await?;
        let kind = Relayable::of(&request).filter(|kind| *kind != Relayable::CallTool);
        let retry = match &request {
            ClientRequest::GetPromptRequest(get) => {
                get.params.input_responses.is_some() || get.params.request_state.is_some()
            }
            ClientRequest::ReadResourceRequest(read) => {
                read.params.input_responses.is_some() || read.params.request_state.is_some()
            }
            _ => false,
        };
        let on_lane = connection
            .lane
            .as_ref()
            .filter(|_| !caller.is_modern() && caller.park.is_none() && !retry);
        if let (Some(lane), Some(kind)) = (on_lane, kind) {
            let extra = lane_extra(&connection, caller);
            let result = self
                .on_lane(
                    server,
                    &connection,
                    (lane, kind, downstream.config.timeout),
                    (|| LaneRequestParams(&request), extra),
                    (caller, None, None),
                )
                .await?;
            if let Some(first) = asks_for_input(&connection, &result) {
                return Box::pin(self.input_rounds(server, request, first, caller))
                    .await
                    .map(Relayed::typed);
            }
            return Ok(Relayed::Raw(result));
        }
        Box::pin(self.forward(server, request, caller))
            .await
            .map(Relayed::typed)
    }

    /// One request on a lane: written (its params made by `params` from their `_meta`),
    /// followed (progress, attribution), awaited within the server's timeout or until the
    /// client cancels.
    async fn on_lane<P: Serialize>(
        &self,
        server: &str,
        connection: &Connection,
        lane: (&Arc<ChildLane>, Relayable, std::time::Duration),
        (params, mut extra): (impl FnOnce() -> P, RequestMetaObject),
        (caller, tool, head): (&Caller, Option<&str>, Option<&KeptHead>),
    ) -> Result<Box<RawValue>, RouteError> {
        // A lane is a child's: a pipe.
        let operation = self.begin_client(server, (lane.1.method(), tool), Some("pipe"), head);
        let trace = operation.span.context();
        // The client span's context goes in place of the client's own (looked for first: most
        // requests carry none, and a removal costs more than a look).
        if trace.is_some() && extra.keys().any(|key| key.starts_with("trace")) {
            extra.remove("traceparent");
            extra.remove("tracestate");
        }
        let kind = lane.1;
        let result = self
            .on_lane_unmeasured(server, connection, lane, (params, extra, trace), caller)
            .await
            .map_err(|error| self.during_shutdown(error));
        // A result is not read here: one that may say `isError` counts as the tool's error (the
        // server side's figure reads it).
        let outcome = match &result {
            Ok(result)
                if kind == Relayable::CallTool && may_say_is_error(result.get().as_bytes()) =>
            {
                Outcome::ToolError
            }
            other => Outcome::of(other),
        };
        operation.finish(tool, outcome, &result);
        result
    }

    async fn on_lane_unmeasured<P: Serialize>(
        &self,
        server: &str,
        connection: &Connection,
        (lane, kind, timeout): (&Arc<ChildLane>, Relayable, std::time::Duration),
        (params, mut extra, trace): (impl FnOnce() -> P, RequestMetaObject, Option<&SpanContext>),
        caller: &Caller,
    ) -> Result<Box<RawValue>, RouteError> {
        let method = kind.method();
        tracing::debug!(server, method, "forwarding");
        let client_token = caller.meta.get_progress_token();
        let lane_error = |error: LaneError| match error {
            LaneError::Closed => RouteError::ConnectionLost {
                server: server.to_owned(),
                method: method.to_owned(),
            },
            other => RouteError::Transport {
                server: server.to_owned(),
                method: method.to_owned(),
                message: other.to_string(),
            },
        };
        // The server's timeout runs from here: writing the request is part of the call (a server
        // that stopped reading its stdin blocks the write). The server's progress comes with a
        // token of ours (the request's id), swapped back.
        let deadline = tokio::time::Instant::now() + timeout;
        let send = lane.send_written(method, |id: &str, line: &mut Vec<u8>| {
            if client_token.is_some() {
                extra.set_progress_token(token(id));
            }
            let meta = LaneMeta {
                lifecycle: connection.request_meta.as_deref(),
                extra: &extra,
                trace,
            };
            meta.write_params(&params(), line)
        });
        let timed_out = || RouteError::Timeout {
            server: server.to_owned(),
            method: method.to_owned(),
            timeout,
        };
        let mut call = tokio::select! {
            // The line first: written, it is cancelled on the server below, never left running.
            biased;
            sent = tokio::time::timeout_at(deadline, send) => match sent {
                Ok(call) => call.map_err(lane_error)?,
                Err(_) => return Err(timed_out()),
            },
            () = caller.ct.cancelled() => return Err(RouteError::Cancelled),
        };
        let id = call.id();
        let NumberOrString::String(text) = &id else {
            unreachable!("lane ids are strings")
        };
        let tracked = self.track(server, caller, id.clone(), token(text), None);
        // Told without waiting: a server that stopped reading would hold the caller past its end.
        let cancel = |reason: &str| {
            let params = CancelledNotificationParam::new(Some(id.clone()), Some(reason.into()));
            let peer = connection.peer.clone();
            self.tracker.spawn(async move {
                let _ = peer.notify_cancelled(params).await;
            });
        };
        tokio::select! {
            answer = tokio::time::timeout_at(deadline, call.answer()) => {
                let answer = match answer {
                    Ok(answer) => answer.map_err(lane_error)?,
                    Err(_) => {
                        cancel("request timeout");
                        return Err(timed_out());
                    }
                };
                tracked.flush().await;
                match answer {
                    Answer::Result(result) if is_object(&result) => Ok(result),
                    Answer::Result(_) => Err(RouteError::UnexpectedResult {
                        server: server.to_owned(),
                        method: method.to_owned(),
                    }),
                    Answer::Error(error) => Err(RouteError::Downstream(error)),
                }
            }
            () = caller.ct.cancelled() => {
                cancel("cancelled by the client");
                Err(RouteError::Cancelled)
            }
        }
    }
}

/// What rmcp would put in a lane call's `_meta` after a modern server's lifecycle keys: the
/// caller's own keys and the log level (the progress token is added with the id).
fn lane_extra(connection: &Connection, caller: &Caller) -> RequestMetaObject {
    let mut extra = forwarded_meta(&caller.meta).unwrap_or_default();
    if let Some(level) = log_level_for(connection, caller) {
        extra.set_log_level(level);
    }
    extra
}

/// A modern server's result that asks the legacy caller for input, decoded (a result is read
/// only where it may be one); the proxy then asks and sends the request again (`forward`'s
/// rounds).
fn asks_for_input(connection: &Connection, result: &RawValue) -> Option<ServerResult> {
    if !connection.is_modern() || INPUT_REQUIRED.find(result.get().as_bytes()).is_none() {
        return None;
    }
    match serde_json::from_str::<ServerResult>(result.get()) {
        Ok(first @ ServerResult::InputRequiredResult(_)) => Some(first),
        _ => None,
    }
}

/// A lane call's `_meta`: a modern server's lifecycle keys (encoded once per connection), then
/// `extra` (a few keys of the call's), then the client span's context (`traceparent`,
/// `tracestate`; `extra` holds neither).
pub(super) struct LaneMeta<'a> {
    pub(super) lifecycle: Option<&'a RawValue>,
    pub(super) extra: &'a RequestMetaObject,
    pub(super) trace: Option<&'a SpanContext>,
}

impl LaneMeta<'_> {
    /// Nothing to write: the request goes without `_meta`.
    pub(super) fn is_empty(&self) -> bool {
        self.lifecycle.is_none() && self.extra.is_empty() && self.trace.is_none()
    }

    /// Writes `params` (an object) with this `_meta` in it, into a request's line: each part
    /// written by serde or known to be JSON (the lifecycle was, the trace context is hex), spliced
    /// as bytes, so that nothing is encoded twice or read back.
    pub(super) fn write_params(
        &self,
        params: &impl Serialize,
        line: &mut Vec<u8>,
    ) -> serde_json::Result<()> {
        use serde::ser::Error;
        serde_json::to_writer(&mut *line, params)?;
        if self.is_empty() {
            return Ok(());
        }
        // The params' closing brace gives way to `_meta`.
        if line.pop() != Some(b'}') {
            return Err(serde_json::Error::custom(
                "a request's params are not an object",
            ));
        }
        member(line);
        line.extend_from_slice(br#""_meta":"#);
        match self.lifecycle {
            Some(lifecycle) if self.extra.is_empty() && self.trace.is_none() => {
                line.extend_from_slice(lifecycle.get().as_bytes());
            }
            Some(lifecycle) => {
                let open = lifecycle
                    .get()
                    .trim_end()
                    .strip_suffix('}')
                    .ok_or_else(|| {
                        serde_json::Error::custom("a server's lifecycle _meta is not an object")
                    })?;
                line.extend_from_slice(open.as_bytes());
                self.write_members(line)?;
                line.push(b'}');
            }
            None => {
                line.push(b'{');
                self.write_members(line)?;
                line.push(b'}');
            }
        }
        line.push(b'}');
        Ok(())
    }

    /// `extra`'s members and the trace context's, each after a comma unless it comes first.
    fn write_members(&self, line: &mut Vec<u8>) -> serde_json::Result<()> {
        for (key, value) in self.extra.iter() {
            member(line);
            serde_json::to_writer(&mut *line, key)?;
            line.push(b':');
            serde_json::to_writer(&mut *line, value)?;
        }
        if let Some(trace) = self.trace {
            member(line);
            line.extend_from_slice(br#""traceparent":""#);
            line.extend_from_slice(&trace.traceparent_bytes());
            line.push(b'"');
            if let Some(state) = &trace.trace_state {
                line.extend_from_slice(br#","tracestate":"#);
                serde_json::to_writer(&mut *line, &**state)?;
            }
        }
        Ok(())
    }
}

/// A comma before the next member of the object being written, unless it is the first.
fn member(line: &mut Vec<u8>) {
    if line.trim_ascii_end().last() != Some(&b'{') {
        line.push(b',');
    }
}

/// An object written member by member from an iterator (cloned, so that encoding takes `&self`).
struct Object<I>(I);

impl<'a, I> Serialize for Object<I>
where
    I: Iterator<Item = (&'a str, &'a RawValue)> + Clone,
{
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut map = serializer.serialize_map(None)?;
        for (key, value) in self.0.clone() {
            map.serialize_entry(key, &value)?;
        }
        map.end()
    }
}

fn token(id: &str) -> ProgressToken {
    ProgressToken(NumberOrString::String(id.into()))
}

fn is_object(raw: &RawValue) -> bool {
    raw.get().trim_start().starts_with('{')
}

/// Raw arguments decoded for a path that needs them typed (a built-in tool, `forward`).
pub(super) fn decode_arguments(raw: &RawValue) -> Result<JsonObject, RouteError> {
    serde_json::from_str(raw.get()).map_err(|error| RouteError::InvalidArguments(error.to_string()))
}

/// What a relayed result needs before it reaches a legacy client, as rmcp's service would
/// shape it: nothing; dropping a `resultType` (done here, the other members as written); or
/// rmcp's types (structured output that is not an object is moved into the content, or the
/// result is not a plain object). Read once, and only where one of those keys appears.
enum Shaping<'a> {
    AsIs,
    WithoutResultType(Members<'a>),
    Typed,
}

fn shaping(raw: &RawValue) -> Shaping<'_> {
    static RESULT_TYPE: LazyLock<Finder<'static>> =
        LazyLock::new(|| Finder::new(b"\"resultType\""));
    static STRUCTURED: LazyLock<Finder<'static>> =
        LazyLock::new(|| Finder::new(b"\"structuredContent\""));
    let bytes = raw.get().as_bytes();
    if RESULT_TYPE.find(bytes).is_none() && STRUCTURED.find(bytes).is_none() {
        return Shaping::AsIs;
    }
    let Ok(members) = serde_json::from_str::<Members<'_>>(raw.get()) else {
        return Shaping::Typed;
    };
    let structured_not_object = members.0.iter().any(|(key, value)| {
        *key == "structuredContent" && !value.get().trim_start().starts_with('{')
    });
    if structured_not_object {
        Shaping::Typed
    } else if members.0.iter().any(|(key, _)| *key == "resultType") {
        Shaping::WithoutResultType(members)
    } else {
        Shaping::AsIs
    }
}

/// A relayed result in the shape rmcp's service gives a legacy client (see [`Shaping`]); `Err`
/// with the result when it needs rmcp's types.
pub(super) fn legacy_shape(raw: Box<RawValue>) -> Result<Box<RawValue>, Box<RawValue>> {
    let shaped = match shaping(&raw) {
        Shaping::AsIs => return Ok(raw),
        Shaping::Typed => return Err(raw),
        Shaping::WithoutResultType(Members(members)) => {
            let kept = members
                .iter()
                .filter(|(key, _)| *key != "resultType")
                .map(|(key, value)| (*key, *value));
            // Encoded once, never read back (`to_raw_value`).
            serde_json::value::to_raw_value(&Object(kept))
        }
    };
    shaped.map_err(|_| raw)
}

/// An object's members in their order, each value unparsed; keys with escapes do not borrow,
/// and fail (the caller then takes the typed path).
struct Members<'a>(Vec<(&'a str, &'a RawValue)>);

impl<'de> Deserialize<'de> for Members<'de> {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visit;
        impl<'de> serde::de::Visitor<'de> for Visit {
            type Value = Members<'de>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<Self::Value, A::Error> {
                let mut members = Vec::new();
                while let Some(member) = map.next_entry::<&'de str, &'de RawValue>()? {
                    members.push(member);
                }
                Ok(Members(members))
            }
        }
        deserializer.deserialize_map(Visit)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn needs_legacy_shaping(raw: &RawValue) -> bool {
        !matches!(shaping(raw), Shaping::AsIs)
    }

    fn raw(text: &str) -> Box<RawValue> {
        RawValue::from_string(text.to_owned()).unwrap()
    }

    #[test]
    fn a_plain_result_is_relayed_as_written() {
        assert!(!needs_legacy_shaping(&raw(
            r#"{"content":[{"type":"text","text":"hi"}]}"#
        )));
        assert!(!needs_legacy_shaping(&raw(
            r#"{"content":[],"structuredContent":{"a":1}}"#
        )));
        // The words inside a string are not keys.
        assert!(!needs_legacy_shaping(&raw(
            r#"{"content":[{"type":"text","text":"resultType structuredContent"}]}"#
        )));
    }

    #[test]
    fn a_result_in_the_modern_shape_is_shaped_for_the_legacy_client() {
        assert!(needs_legacy_shaping(&raw(
            r#"{"content":[],"resultType":"complete"}"#
        )));
        assert!(needs_legacy_shaping(&raw(
            r#"{"content":[],"structuredContent":["a","b"]}"#
        )));
    }

    #[test]
    fn the_legacy_shape_drops_result_type_and_keeps_the_rest_as_written() {
        let shaped = legacy_shape(raw(
            r#"{"content":[{"type":"text","text":"a"}], "resultType":"complete","_meta":{"n":1.50}}"#,
        ))
        .unwrap();
        assert_eq!(
            shaped.get(),
            r#"{"content":[{"type":"text","text":"a"}],"_meta":{"n":1.50}}"#
        );
        // Structured output that is not an object needs rmcp's types.
        assert!(
            legacy_shape(raw(
                r#"{"content":[],"structuredContent":[1],"resultType":"complete"}"#
            ))
            .is_err()
        );
        // Nothing to do: the same bytes.
        let plain = r#"{ "content" : [] }"#;
        assert_eq!(legacy_shape(raw(plain)).unwrap().get(), plain);
    }

    #[test]
    fn a_relayed_result_is_read_for_its_error_only_when_it_says_is_error_true() {
        let error = |text: &str| Relayed::Raw(raw(text)).tool_error();
        assert_eq!(error(r#"{"content":[],"isError":false}"#), None);
        assert_eq!(error(r#"{"content":[]}"#), None);
        assert_eq!(
            error(r#"{"content":[{"type":"text","text":"no such file"}],"isError" : true}"#),
            Some("no such file".to_owned())
        );
        // The words inside a text are read, and found not to be the result's.
        assert_eq!(
            error(r#"{"content":[{"type":"text","text":"\"isError\": true"}]}"#),
            None
        );
        assert!(may_say_is_error(br#"{"isError":true}"#));
        assert!(!may_say_is_error(br#"{"isError":false,"x":"isError"}"#));
    }

    /// The params `{"name":"t"}` as a lane call writes them with this `_meta`.
    fn written(
        lifecycle: Option<&str>,
        extra: &RequestMetaObject,
        trace: Option<&SpanContext>,
    ) -> String {
        let lifecycle = lifecycle.map(raw);
        let meta = LaneMeta {
            lifecycle: lifecycle.as_deref(),
            extra,
            trace,
        };
        let mut line = Vec::new();
        meta.write_params(&serde_json::json!({"name": "t"}), &mut line)
            .unwrap();
        let line = String::from_utf8(line).unwrap();
        serde_json::from_str::<serde_json::Value>(&line).expect("the line is JSON");
        line
    }

    #[test]
    fn a_requests_params_on_the_lane_carry_the_meta_made_for_them_once() {
        let mut params = rmcp::model::GetPromptRequestParams::new("greet");
        params.arguments = Some(serde_json::from_str(r#"{"who":"you"}"#).unwrap());
        let request = ClientRequest::GetPromptRequest(Request::new(params));
        let mut extra = RequestMetaObject::default();
        extra.set_progress_token(token("pluggedin:7"));
        let meta = LaneMeta {
            lifecycle: None,
            extra: &extra,
            trace: None,
        };
        let mut line = Vec::new();
        meta.write_params(&LaneRequestParams(&request), &mut line)
            .unwrap();
        assert_eq!(
            String::from_utf8(line).unwrap(),
            r#"{"name":"greet","arguments":{"who":"you"},"_meta":{"progressToken":"pluggedin:7"}}"#
        );
        let read = ClientRequest::ReadResourceRequest(Request::new(
            rmcp::model::ReadResourceRequestParams::new("demo://a"),
        ));
        let none = RequestMetaObject::default();
        let meta = LaneMeta {
            lifecycle: None,
            extra: &none,
            trace: None,
        };
        let mut line = Vec::new();
        meta.write_params(&LaneRequestParams(&read), &mut line)
            .unwrap();
        assert_eq!(String::from_utf8(line).unwrap(), r#"{"uri":"demo://a"}"#);
        // Params that are not an object take no `_meta`: an error, not a broken line.
        let meta = LaneMeta {
            lifecycle: None,
            extra: &extra,
            trace: None,
        };
        assert!(meta.write_params(&[1], &mut Vec::new()).is_err());
    }

    #[test]
    fn a_lane_calls_meta_is_the_lifecycle_then_the_calls_own_keys() {
        let mut extra = RequestMetaObject::default();
        assert_eq!(written(None, &extra, None), r#"{"name":"t"}"#);
        let lifecycle = r#"{"io.modelcontextprotocol/protocolVersion":"2026-07-28","z":{"c":[1]}}"#;
        assert_eq!(
            written(Some(lifecycle), &extra, None),
            format!(r#"{{"name":"t","_meta":{lifecycle}}}"#)
        );
        extra.set_progress_token(token("pluggedin:3"));
        assert_eq!(
            written(Some(lifecycle), &extra, None),
            r#"{"name":"t","_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","z":{"c":[1]},"progressToken":"pluggedin:3"}}"#
        );
        assert_eq!(
            written(Some("{ }"), &extra, None),
            r#"{"name":"t","_meta":{ "progressToken":"pluggedin:3"}}"#
        );
        assert_eq!(
            written(None, &extra, None),
            r#"{"name":"t","_meta":{"progressToken":"pluggedin:3"}}"#
        );
    }

    #[test]
    fn a_lane_calls_meta_carries_the_client_spans_context_last() {
        let mut trace = SpanContext::parse(
            "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
            Some("vendor=\"q\""),
        )
        .unwrap();
        let lifecycle = r#"{"io.modelcontextprotocol/protocolVersion":"2026-07-28"}"#;
        let mut extra = RequestMetaObject::default();
        assert_eq!(
            written(None, &extra, Some(&trace)),
            r#"{"name":"t","_meta":{"traceparent":"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01","tracestate":"vendor=\"q\""}}"#
        );
        extra.set_progress_token(token("pluggedin:3"));
        trace.trace_state = None;
        assert_eq!(
            written(Some(lifecycle), &extra, Some(&trace)),
            r#"{"name":"t","_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","progressToken":"pluggedin:3","traceparent":"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"}}"#
        );
    }
}
