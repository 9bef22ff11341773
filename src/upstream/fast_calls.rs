//! The fast entries' requests (`Job`: `tools/call`, `prompts/get`, `resources/read`,
//! `completion/complete`, read in one pass, shared with the HTTP session layer) and the stdio
//! server's fast entry. rmcp's service takes every request through its loop: a channel from the
//! transport, a task per request, the typed decode of the params, the typed encode of the result,
//! a channel and a task per response. A request the proxy relays needs none of it: a legacy
//! session's request goes from its line straight to the router (`Router::call_tool_relayed` and
//! its siblings, the one path each takes) with a call's arguments unparsed, and a result relayed
//! on a server's lane is written back as the server wrote it.
//!
//! Only what the service would answer the same way is taken here: a session that initialized
//! on a protocol before 2026-07-28 (`tool_pages::Shortcut` follows the handshake), a call whose
//! params are exactly `name`, `arguments` (an object) and `_meta` (the other three: their typed
//! params without a modern retry's input responses or request state), an id not already in
//! flight here. Everything else goes to the service. The service's work on a legacy peer's
//! result is done here too (no `resultType`, non-object structured output moved into the
//! content: a relayed result that needs it comes back typed, see `router::relay`), and a
//! cancelled call gets no answer, as from the service.
//!
//! It steps around rmcp (see `wire`): if rmcp's service could hand a request's params over raw
//! and send a result encoded elsewhere, this entry could go.

use std::collections::HashMap;
use std::sync::{Arc, LazyLock, Mutex};

use memchr::memmem::Finder;

use rmcp::model::{
    CallToolRequestParams, CompleteRequestParams, ErrorData, GetPromptRequestParams,
    JsonRpcMessage, ReadResourceRequestParams, RequestId, RequestMetaObject, ServerResult,
};
use rmcp::{RoleServer, service::TxJsonRpcMessage};
use serde::Deserialize;
use serde_json::value::RawValue;
use tokio_util::sync::CancellationToken;

use crate::router::{Caller, Relayed, RouteError, Router, Session};
use crate::sync::lock;

/// Calls in flight through the fast entry at once; past it a call takes the service's path.
const MAX_IN_FLIGHT: usize = 4096;

/// One stdio session's fast entry.
pub struct FastCalls {
    router: Arc<Router>,
    session: Arc<Session>,
    principal: Arc<str>,
    /// The calls in flight here, for the client's `notifications/cancelled`. A cancelled call's
    /// entry leaves with the cancellation, so the client may reuse its id at once.
    in_flight: Mutex<HashMap<RequestId, CancellationToken>>,
}

/// A request's envelope, read in one pass: any other params (or method) fail it, and the line
/// goes to the service.
#[derive(Deserialize)]
struct Envelope<'a> {
    jsonrpc: &'a str,
    id: RequestId,
    method: &'a str,
    params: Option<Params>,
}

/// The params the fast entry takes: nothing else (a task, input responses…) may be present.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Params {
    name: String,
    arguments: Option<Box<RawValue>>,
    #[serde(rename = "_meta")]
    meta: Option<RequestMetaObject>,
}

/// A request taken by the fast entry, to run.
pub struct Taken {
    id: RequestId,
    job: Job,
    caller: Caller,
}

/// A request a fast entry runs: a `tools/call` (its arguments raw), or a `prompts/get`,
/// `resources/read` or `completion/complete` (their small params typed); each answered with the
/// server's result as it wrote it where it was relayed on a lane (`router::relay`).
pub(crate) enum Job {
    Tool(CallToolRequestParams, Option<Box<RawValue>>),
    Prompt(GetPromptRequestParams),
    Resource(ReadResourceRequestParams),
    Complete(CompleteRequestParams),
}

/// A request's envelope, for the methods other than `tools/call`.
#[derive(Deserialize)]
struct AnyEnvelope<'a> {
    jsonrpc: &'a str,
    id: RequestId,
    method: &'a str,
    #[serde(borrow)]
    params: &'a RawValue,
}

impl Job {
    /// Reads `message` as a request a fast entry runs, with its id and `_meta`; `None` (for
    /// rmcp's service to answer, or to say what is wrong) for anything else, or for params a
    /// modern client's retry carries (input responses, request state).
    pub(crate) fn parse(message: &[u8]) -> Option<(RequestId, Job, RequestMetaObject)> {
        if let Some(call) = parse(message) {
            let params = CallToolRequestParams::new(call.name);
            return Some((call.id, Job::Tool(params, call.arguments), call.meta));
        }
        static METHODS: LazyLock<[Finder<'static>; 3]> = LazyLock::new(|| {
            [
                Finder::new(b"prompts/get"),
                Finder::new(b"resources/read"),
                Finder::new(b"completion/complete"),
            ]
        });
        if METHODS.iter().all(|method| method.find(message).is_none()) {
            return None;
        }
        let envelope: AnyEnvelope<'_> = serde_json::from_slice(message).ok()?;
        if envelope.jsonrpc != "2.0" {
            return None;
        }
        let params = envelope.params.get();
        let (job, meta) = match envelope.method {
            "prompts/get" => {
                let mut params: GetPromptRequestParams = serde_json::from_str(params).ok()?;
                if params.input_responses.is_some() || params.request_state.is_some() {
                    return None;
                }
                let meta = params.meta.take();
                (Job::Prompt(params), meta)
            }
            "resources/read" => {
                let mut params: ReadResourceRequestParams = serde_json::from_str(params).ok()?;
                if params.input_responses.is_some() || params.request_state.is_some() {
                    return None;
                }
                let meta = params.meta.take();
                (Job::Resource(params), meta)
            }
            "completion/complete" => {
                let mut params: CompleteRequestParams = serde_json::from_str(params).ok()?;
                let meta = params.meta.take();
                (Job::Complete(params), meta)
            }
            _ => return None,
        };
        Some((envelope.id, job, meta.unwrap_or_default()))
    }

    /// Runs it through the router, as rmcp's handler would (`ProxyHandler`), for a legacy
    /// client: a relayed result comes back unparsed, in the legacy shape.
    pub(crate) async fn run(self, router: &Router, caller: &Caller) -> Result<Relayed, RouteError> {
        match self {
            Job::Tool(params, arguments) => {
                router.call_tool_relayed(caller, params, arguments).await
            }
            // Boxed: a call's future, which every fast request's task is as large as, does not
            // carry theirs (larger: the App's owners, the library's documents).
            Job::Prompt(params) => Box::pin(router.get_prompt_relayed(caller, params, true)).await,
            Job::Resource(params) => {
                Box::pin(router.read_resource_relayed(caller, params, true)).await
            }
            Job::Complete(params) => Box::pin(router.complete_relayed(caller, params, true)).await,
        }
    }
}

/// A `tools/call` read in one pass, its arguments left raw: what both servers' fast entries take
/// (this one, and the HTTP session layer's, `upstream::http::sessions::fast`).
pub(crate) struct Call {
    pub(crate) id: RequestId,
    pub(crate) name: String,
    /// An object, or none.
    pub(crate) arguments: Option<Box<RawValue>>,
    pub(crate) meta: RequestMetaObject,
}

/// Reads `message` as a `tools/call` whose params are exactly `name`, `arguments` (an object)
/// and `_meta`; anything else is `None`, for the service to answer.
pub(crate) fn parse(message: &[u8]) -> Option<Call> {
    // Cheap refusals first: most messages are not calls.
    static METHOD: LazyLock<Finder<'static>> = LazyLock::new(|| Finder::new(b"tools/call"));
    METHOD.find(message)?;
    let envelope: Envelope<'_> = serde_json::from_slice(message).ok()?;
    if envelope.jsonrpc != "2.0" || envelope.method != "tools/call" {
        return None;
    }
    let params = envelope.params?;
    let arguments = match params.arguments {
        Some(raw) if raw.get().trim_start().starts_with('{') => Some(raw),
        Some(raw) if raw.get() == "null" => None,
        // Not an object: the service says why.
        Some(_) => return None,
        None => None,
    };
    Some(Call {
        id: envelope.id,
        name: params.name,
        arguments,
        meta: params.meta.unwrap_or_default(),
    })
}

impl FastCalls {
    pub(super) fn new(
        router: Arc<Router>,
        session: Arc<Session>,
        principal: Arc<str>,
    ) -> Arc<FastCalls> {
        Arc::new(FastCalls {
            router,
            session,
            principal,
            in_flight: Mutex::new(HashMap::new()),
        })
    }

    /// Takes `line` if it is a request the fast entry answers as the service would.
    pub fn take(&self, line: &[u8]) -> Option<Taken> {
        let (id, job, meta) = Job::parse(line)?;
        let ct = CancellationToken::new();
        {
            let mut in_flight = lock(&self.in_flight);
            if in_flight.len() >= MAX_IN_FLIGHT || in_flight.contains_key(&id) {
                return None;
            }
            in_flight.insert(id.clone(), ct.clone());
        }
        Some(Taken {
            caller: Caller {
                session: Some(self.session.clone()),
                request_id: Some(id.clone()),
                meta,
                ct,
                principal: Some(self.principal.to_string()),
                park: None,
                http: None,
            },
            id,
            job,
        })
    }

    /// The client cancelled `id`: a call taken here stops (and gets no answer).
    pub fn cancel(&self, id: &RequestId) {
        if let Some(ct) = lock(&self.in_flight).remove(id) {
            ct.cancel();
        }
    }

    /// Runs a taken call; the answer to write, or `None` when it was cancelled.
    pub async fn run(&self, taken: Taken) -> Option<Answer> {
        let Taken { id, job, caller } = taken;
        let outcome = job.run(&self.router, &caller).await;
        if caller.ct.is_cancelled() {
            // Its entry left with the cancellation; one under the same id is a later call's.
            return None;
        }
        lock(&self.in_flight).remove(&id);
        Some(Answer::new(id, outcome))
    }
}

/// What the fast entry writes back.
pub enum Answer {
    /// A server's result, relayed as it wrote it.
    Raw(RequestId, Box<RawValue>),
    /// A result made or decoded here, or an error.
    Message(Box<TxJsonRpcMessage<RoleServer>>),
}

impl Answer {
    /// The answer to call `id` that ended with `outcome`.
    pub(crate) fn new(id: RequestId, outcome: Result<Relayed, RouteError>) -> Answer {
        match outcome {
            Ok(Relayed::Raw(raw)) => Answer::Raw(id, raw),
            Ok(Relayed::Typed(result)) => Answer::message(id, Ok(*result)),
            Err(error) => Answer::message(id, Err(error)),
        }
    }

    /// The answer as one JSON-RPC message, written into `out`; a relayed result is not parsed.
    pub(crate) fn encode(&self, out: &mut Vec<u8>) -> serde_json::Result<()> {
        match self {
            Answer::Raw(id, result) => {
                out.extend_from_slice(br#"{"jsonrpc":"2.0","id":"#);
                serde_json::to_writer(&mut *out, id)?;
                out.extend_from_slice(br#","result":"#);
                out.extend_from_slice(result.get().as_bytes());
                out.push(b'}');
                Ok(())
            }
            Answer::Message(message) => serde_json::to_writer(out, &**message),
        }
    }

    fn message(id: RequestId, outcome: Result<ServerResult, RouteError>) -> Answer {
        Answer::Message(Box::new(match outcome {
            Ok(mut result) => {
                // What rmcp's service does to a result for a peer before 2026-07-28.
                result.strip_result_type_for_legacy_peer();
                result.strip_non_object_output_for_legacy_peer();
                JsonRpcMessage::response(result, id)
            }
            Err(error) => JsonRpcMessage::error(ErrorData::from(error), Some(id)),
        }))
    }
}
