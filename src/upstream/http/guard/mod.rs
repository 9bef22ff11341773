//! The guard in front of the MCP endpoint: [`check`] runs its layers in order, each a file of its
//! own — the request's shape (`shape.rs`: method 405, header size 431), `Host` and `Origin`
//! (`hosts.rs`, DNS-rebinding protection that `/health` shares), the body (`body.rs`: size 413,
//! read once, JSON 400) and the protocol version (400), a new session while the replica drains
//! (`draining.rs`: 503), bearer auth and the session's owner
//! (`auth.rs`: 401, 404), the resumption of a request stream that ended (`resumption.rs`: 405),
//! the session a DELETE names (`delete.rs`: 404), rate limits (`rate.rs`: 429) — then hands the
//! bytes it read to rmcp's service and shapes the answer on its way back (`answers.rs`, the
//! DELETE's answer, the 2025-11-25 core-task renaming of `wire::core_tasks`). Every refusal has a
//! JSON-RPC body (`refusals.rs`); `in_flight.rs` counts requests for shutdown; `cors.rs` is the
//! CORS middleware on every route.

pub(crate) use sign_in::{COOKIE as SIGN_IN_COOKIE, TTL as SIGN_IN_TTL};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::Method;
use axum::http::request::Parts;
use axum::middleware::Next;
use axum::response::Response;
use serde_json::Value;

use super::drain::Drain;
use super::fleet::{FORWARDED_BY, Fleet, Forwarded, Place};
use super::limits::RateLimits;
use super::sessions::{BoundedSessions, CREATOR, Creator, TokenHash};
use crate::cli::Cors;
use crate::router::Router;
use crate::secret::Secret;
use answers::Answers;
use in_flight::InFlight;
use refusals::Refused;

mod answers;
mod auth;
mod body;
mod client;
mod cors;
mod delete;
mod draining;
mod fast;
mod hosts;
mod in_flight;
mod rate;
mod refusals;
mod resumption;
mod shape;
mod sign_in;

pub(crate) use auth::HealthView;
pub(crate) use cors::cors;
pub(crate) use hosts::Hosts;
pub(crate) use shape::MAX_HEADER_BYTES;

/// The client's address, put on every request by the accept loop.
#[derive(Clone, Copy, Debug)]
pub(crate) struct ClientAddr(pub(crate) SocketAddr);

/// The guard's settings.
pub struct GuardConfig {
    pub require_auth: bool,
    /// Accepted bearer tokens (never logged).
    pub tokens: Vec<Secret>,
    /// Tool calls per minute per token (or client address); 0 is off.
    pub rate_limit_tools: u32,
    /// Other requests per minute per token (or client address); 0 is off.
    pub rate_limit_requests: u32,
    /// Peers whose `X-Forwarded-For` names the client (`--trusted-proxies`).
    pub trusted_proxies: Vec<crate::cli::Cidr>,
    /// `None`: any origin; `Some(list)`: only these (`scheme://host[:port]`, port `*` for any).
    pub allowed_origins: Option<Vec<String>>,
    /// Origins named by `--allowed-origin` itself (not `*`, not the loopback default): the only
    /// foreign ones the JSON API takes (`check_api`).
    pub named_origins: Vec<String>,
    pub max_body_bytes: usize,
    /// Always answer a session's requests on an SSE stream (rmcp's way), never with the JSON
    /// body the guard makes of a quick answer (`answers.rs`).
    pub stream_answers: bool,
}

pub(crate) struct Guard {
    config: GuardConfig,
    cors: Cors,
    hosts: Hosts,
    tokens: Vec<TokenHash>,
    pub(crate) limits: RateLimits,
    /// The sessions (none when stateless): which exist, whose they are, which streams ended.
    sessions: Option<Arc<BoundedSessions>>,
    in_flight: Arc<InFlight>,
    /// Runs the calls the session layer answers itself (`fast.rs`); none in the unit tests.
    router: Option<Arc<Router>>,
    /// The console's sign-ins (`sign_in.rs`).
    sign_ins: sign_in::SignIns,
    /// This replica's fleet: requests for sessions held elsewhere are passed there.
    fleet: Option<Arc<Fleet>>,
    /// The replica's drain: while it lasts, no session begins (`draining.rs`).
    drain: Drain,
}

impl Guard {
    /// The largest request body taken (`--max-body-bytes`).
    pub(crate) fn max_body_bytes(&self) -> usize {
        self.config.max_body_bytes
    }
}

/// Where a request that passed the refusals goes.
enum Admission {
    /// To rmcp's service here.
    Here(Admitted),
    /// To the fleet replica that holds its session.
    Elsewhere(Elsewhere),
}

/// A request for a session (or a parked call) another replica holds.
struct Elsewhere {
    replica: i64,
    url: String,
    /// The session; none for a modern client's retry of a parked call.
    session: Option<String>,
    parts: Parts,
    bytes: Bytes,
    id: Value,
}

/// A request that passed every refusal, on its way to rmcp's service.
struct Admitted {
    method: Method,
    parts: Parts,
    /// The body, read once.
    bytes: Bytes,
    /// The first message's id (for error bodies).
    id: Value,
    methods: Vec<String>,
    token: Option<TokenHash>,
}

impl Guard {
    pub(crate) fn new(
        config: GuardConfig,
        cors: Cors,
        hosts: Hosts,
        sessions: Option<Arc<BoundedSessions>>,
    ) -> Guard {
        let tokens = config
            .tokens
            .iter()
            .map(|token| auth::hash(token.expose()))
            .collect();
        let limits = RateLimits::new(config.rate_limit_tools, config.rate_limit_requests);
        Guard {
            config,
            cors,
            hosts,
            tokens,
            limits,
            sessions,
            in_flight: Arc::default(),
            router: None,
            sign_ins: sign_in::SignIns::default(),
            fleet: None,
            drain: Drain::new(),
        }
    }

    /// Passes requests for sessions other replicas hold to them.
    pub(crate) fn with_fleet(mut self, fleet: Arc<Fleet>) -> Guard {
        self.fleet = Some(fleet);
        self
    }

    /// Follows `drain`: new sessions are refused while it lasts.
    pub(crate) fn with_drain(mut self, drain: Drain) -> Guard {
        self.drain = drain;
        self
    }

    /// Lets the session layer run quick calls itself (`fast.rs`) through `router`.
    pub(crate) fn with_fast_calls(mut self, router: Arc<Router>) -> Guard {
        self.router = Some(router);
        self
    }

    pub(crate) fn requires_auth(&self) -> bool {
        self.config.require_auth
    }

    pub(crate) fn auth_summary(&self) -> String {
        if self.config.require_auth {
            format!("bearer auth required, {} token(s)", self.tokens.len())
        } else {
            "no auth".to_owned()
        }
    }

    /// Waits until no request is in flight, or the grace period ends.
    pub(crate) async fn drain(&self, grace: Duration) {
        self.in_flight.drain(grace).await;
    }

    /// How many requests are in flight now.
    pub(crate) fn in_flight(&self) -> usize {
        self.in_flight.count()
    }

    /// Resolves once no request is in flight.
    pub(crate) async fn idle(&self) {
        self.in_flight.idle().await;
    }

    /// The refusals, in order; a request that passes them all is [`Admitted`], or passed to
    /// the fleet replica that holds its session once its token is known good.
    async fn admit(&self, request: Request) -> Result<Admission, Refused> {
        let method = request.method().clone();
        shape::check_method(&method)?;
        shape::check_header_size(request.headers())?;
        self.check_host_and_origin(request.headers(), false)?;
        let unknown_version = shape::unknown_version(request.headers());
        let (parts, body) = request.into_parts();
        let (bytes, parsed) = self.read_body(&method, &parts.headers, body).await?;
        let id = parsed.id;
        if let Some(version) = unknown_version {
            return Err(refusals::unsupported_version(id, version));
        }
        let methods = parsed.methods;
        self.check_draining(&methods, &id)?;
        let session = parts
            .headers
            .get("mcp-session-id")
            .and_then(|value| value.to_str().ok())
            .map(str::to_owned);
        let session = session.as_deref();
        let token = self.authenticate(&method, &parts.headers, &methods, session, &id)?;
        if let (Some(fleet), Some(session)) = (&self.fleet, session) {
            let hops = parts.headers.get_all(FORWARDED_BY).iter().count();
            match fleet.place(session, hops).await {
                Place::Here => {}
                Place::There { replica, url } => {
                    return Ok(Admission::Elsewhere(Elsewhere {
                        replica,
                        url,
                        session: Some(session.to_owned()),
                        parts,
                        bytes,
                        id,
                    }));
                }
                Place::Unknown => return Err(refusals::session_not_found(id)),
                Place::Unavailable(error) => return Err(refusals::store_unavailable(id, &error)),
            }
        }
        // A modern client's retry of a call parked on another replica goes there.
        if let (Some(fleet), None) = (&self.fleet, session)
            && method == Method::POST
            && let Some(replica) = super::fleet::parked_replica(&bytes)
            && replica != fleet.me()
        {
            let Some(url) = fleet.url_of(replica) else {
                return Err(refusals::parked_elsewhere_gone(id, replica));
            };
            return Ok(Admission::Elsewhere(Elsewhere {
                replica,
                url,
                session: None,
                parts,
                bytes,
                id,
            }));
        }
        self.check_resumption(&method, &parts.headers, session)?;
        self.check_delete(&method, session)?;
        self.check_rate(&method, &methods, token.as_ref(), &parts, &id)
            .await?;
        self.bind_session(session, token.as_ref(), &id).await?;
        Ok(Admission::Here(Admitted {
            method,
            parts,
            bytes,
            id,
            methods,
            token,
        }))
    }

    /// Passes a request to the replica holding its session; a replica that turns out gone is
    /// dropped from the view and the request placed again (adopted here, most often).
    async fn pass_on(self: &Arc<Self>, elsewhere: Elsewhere, next: Next) -> Response {
        let Some(fleet) = &self.fleet else {
            return *refusals::session_not_found(elsewhere.id);
        };
        let Elsewhere {
            replica,
            url,
            session,
            parts,
            bytes,
            id,
        } = elsewhere;
        // The client's address goes along, sealed: the home counts its rate limits by it.
        let client = fleet.seal_address(self.client_address(&parts.headers, &parts.extensions));
        let mut target = (replica, url);
        let mut adopted = false;
        // The home, and at most one more replica if the home turns out gone and the store
        // says another took the session.
        for _ in 0..super::fleet::MAX_HOPS {
            // Counted in flight here too: a draining replica waits for what it passed on,
            // but not for a `GET` stream, which lives as long as its session (as here).
            let held = (parts.method != Method::GET).then(|| self.in_flight.enter());
            let forwarded = super::fleet::forward(
                &fleet.client,
                &target.1,
                fleet.me(),
                &parts,
                &client,
                bytes.clone(),
                &id,
            )
            .await;
            let error = match forwarded {
                Forwarded::Answered(response) => return in_flight::hold(response, held),
                Forwarded::Unreachable(error) => error,
            };
            drop(held);
            tracing::info!(
                replica = target.0,
                url = target.1,
                "fleet replica unreachable: {error}"
            );
            let Some(session) = &session else {
                fleet.forget(target.0);
                return *refusals::parked_elsewhere_gone(id, target.0);
            };
            match fleet.unreachable(target.0, session).await {
                Place::Here => {
                    adopted = true;
                    break;
                }
                Place::There { replica, url } => target = (replica, url),
                Place::Unknown => return *refusals::session_not_found(id),
                Place::Unavailable(error) => return *refusals::store_unavailable(id, &error),
            }
        }
        if !adopted {
            return *refusals::session_not_found(id);
        }
        // Adopted here: the request goes through the refusals again, now for a local session.
        let request = Request::from_parts(parts, Body::from(bytes));
        match self.admit(request).await {
            Ok(Admission::Here(admitted)) => serve(self, admitted, next).await,
            Ok(Admission::Elsewhere(_)) => *refusals::session_not_found(id),
            Err(refused) => *refused,
        }
    }
}

/// The guard middleware on `/mcp` and `/`: the refusals ([`Guard::admit`]), then rmcp's service
/// ([`serve`]).
pub(crate) async fn check(
    State(guard): State<Arc<Guard>>,
    request: Request,
    next: Next,
) -> Response {
    match guard.admit(request).await {
        Ok(Admission::Here(admitted)) => serve(&guard, admitted, next).await,
        Ok(Admission::Elsewhere(elsewhere)) => guard.pass_on(elsewhere, next).await,
        Err(refused) => *refused,
    }
}

/// Runs an admitted request through rmcp's service and shapes its answer for the client.
async fn serve(guard: &Guard, admitted: Admitted, next: Next) -> Response {
    let Admitted {
        method,
        mut parts,
        bytes,
        id,
        methods,
        token,
    } = admitted;
    let answers = Answers::negotiate(&method, &mut parts.headers, guard.config.stream_answers);
    // GET streams live as long as the session; only requests count as in flight.
    let held = (method != Method::GET).then(|| guard.in_flight.enter());
    if let (Some(sessions), Some(router)) = (&guard.sessions, &guard.router)
        && let Some(response) = fast::answer(
            sessions,
            router,
            &method,
            &parts.headers,
            &bytes,
            &methods,
            &answers,
        )
        .await
    {
        return in_flight::hold(response, held);
    }
    // 2025-11-25 core tasks take the handler's raw path (`router::core_tasks`).
    let bytes = crate::wire::core_tasks::rename_post(&mut parts.headers, bytes);
    // Who creates the session, should this request create one (an `initialize`).
    let creator = Creator {
        owner: token,
        anonymous: guard.config.require_auth && token.is_none(),
    };
    let mut response = CREATOR
        .scope(
            creator,
            next.run(Request::from_parts(parts, Body::from(bytes))),
        )
        .await;
    if crate::wire::core_tasks::answers_need_unstash(&methods) {
        response = crate::wire::core_tasks::unstash_response(response).await;
    }
    let response = answers.first(response).await;
    let response = in_flight::hold(response, held);
    if let Some(deleted) = delete::deleted(&method, &response) {
        return deleted;
    }
    answers.last(response, id).await
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    pub(in crate::upstream::http) fn guard(origins: Option<Vec<&str>>) -> Guard {
        Guard::new(
            GuardConfig {
                require_auth: true,
                tokens: vec!["secret-token".into()],
                rate_limit_tools: 2,
                rate_limit_requests: 0,
                trusted_proxies: Vec::new(),
                allowed_origins: origins.map(|o| o.into_iter().map(str::to_owned).collect()),
                named_origins: Vec::new(),
                max_body_bytes: 1024,
                stream_answers: false,
            },
            Cors::Permissive,
            Hosts::new(["localhost"]),
            None,
        )
    }

    pub(in crate::upstream::http) fn guard_config() -> GuardConfig {
        GuardConfig {
            require_auth: false,
            tokens: Vec::new(),
            rate_limit_tools: 0,
            rate_limit_requests: 0,
            trusted_proxies: Vec::new(),
            allowed_origins: None,
            named_origins: Vec::new(),
            max_body_bytes: 1024,
            stream_answers: false,
        }
    }
}
