//! Why a request could not be served: [`RouteError`], with a parked call's share of it
//! ([`ParkedError`]), each message naming its cause and subject; and the one conversion of them
//! to JSON-RPC errors, redacted and bounded for the client. [`service_error`] turns a failed
//! downstream request into a `RouteError`; deciding what to send, and where, is left to the parts
//! that forward.

use std::time::Duration;

use rmcp::model::{ErrorCode, ErrorData};
use rmcp::service::ServiceError;

use crate::catalog::{InvalidCursor, ResolveError};
use crate::downstream::{self, ServerState};

/// JSON-RPC `-32001`, the request-timeout code the official SDKs use.
const REQUEST_TIMEOUT: ErrorCode = ErrorCode(-32001);

/// Why a request could not be served. Converted to a JSON-RPC error in one place.
#[derive(Debug, thiserror::Error)]
pub enum RouteError {
    #[error(transparent)]
    Resolve(#[from] ResolveError),
    #[error("unknown resource \"{0}\"")]
    UnknownResource(String),
    /// A tool that exists but is not served: disabled, its server off, filtered out.
    #[error("tool \"{tool}\" {why}")]
    NotServed { tool: String, why: String },
    #[error(transparent)]
    Cursor(#[from] InvalidCursor),
    #[error("server \"{server}\" is not connected ({state})")]
    NotConnected { server: String, state: ServerState },
    /// The server is starting, restarting, failed or refused; the text says which.
    #[error(transparent)]
    Unavailable(downstream::Unavailable),
    #[error("server \"{server}\" does not support {what}")]
    Unsupported { server: String, what: &'static str },
    #[error("server \"{server}\": {method} timed out after {}s", timeout.as_secs_f32())]
    Timeout {
        server: String,
        method: String,
        timeout: Duration,
    },
    #[error("server \"{server}\": connection lost during {method}")]
    ConnectionLost { server: String, method: String },
    #[error("server \"{server}\": {method} failed: {message}")]
    Transport {
        server: String,
        method: String,
        message: String,
    },
    /// The server's own JSON-RPC error, passed on with its code and message.
    #[error("{}", .0.message)]
    Downstream(ErrorData),
    #[error("server \"{server}\" answered {method} with an unexpected result")]
    UnexpectedResult { server: String, method: String },
    #[error("the request was cancelled")]
    Cancelled,
    /// The proxy stopped its servers to shut down while this request waited for one.
    #[error(
        "the proxy is shutting down: server \"{server}\" was stopped before it answered {method}, \
         which may or may not have taken effect"
    )]
    ShuttingDown { server: String, method: String },
    /// A call's arguments that are not a JSON object.
    #[error("invalid arguments: {0}")]
    InvalidArguments(String),
    /// The local document library failed (listing or reading documents as resources).
    #[error("the document library: {0}")]
    Library(String),
    /// A parked call (modern client, legacy server asking for input) could not go on.
    #[error(transparent)]
    Parked(#[from] ParkedError),
    /// The plugged.in App could not answer what was asked (its sanitised error).
    #[error("{0}")]
    App(String),
}

/// Why a parked call could not be started or resumed.
#[derive(Debug, thiserror::Error)]
pub enum ParkedError {
    #[error(
        "requestState \"{0}\" names no parked call: it is unknown, was already used, belongs to \
         another caller or request, or expired (parked calls wait {1}s for the retry); call again \
         without requestState"
    )]
    Unknown(String, u64),
    /// The server, and how many calls may be parked at once.
    #[error(
        "server \"{0}\" asks for input, but {1} calls already wait for their clients' answers; \
         try again later"
    )]
    Full(String, usize),
}

impl From<downstream::Unavailable> for RouteError {
    fn from(unavailable: downstream::Unavailable) -> RouteError {
        match unavailable {
            downstream::Unavailable::Cancelled => RouteError::Cancelled,
            down => RouteError::Unavailable(down),
        }
    }
}

/// Every error message that leaves for a client is redacted (`token=…`, `Bearer …`, …) and
/// bounded ([`crate::security::text::for_client`]): downstream servers and URLs can put secrets
/// into error text.
impl From<RouteError> for ErrorData {
    fn from(error: RouteError) -> ErrorData {
        let message = crate::security::text::for_client(&error.to_string());
        match error {
            RouteError::Downstream(mut data) => {
                data.message = message.into();
                data
            }
            RouteError::Parked(error) => error.into(),
            RouteError::Resolve(_)
            | RouteError::Cursor(_)
            | RouteError::NotServed { .. }
            | RouteError::InvalidArguments(_) => ErrorData::invalid_params(message, None),
            RouteError::UnknownResource(uri) => {
                ErrorData::resource_not_found(message, Some(serde_json::json!({ "uri": uri })))
            }
            RouteError::Unsupported { .. } => {
                ErrorData::new(ErrorCode::METHOD_NOT_FOUND, message, None)
            }
            RouteError::Timeout { .. } => ErrorData::new(REQUEST_TIMEOUT, message, None),
            RouteError::NotConnected { .. }
            | RouteError::Unavailable(_)
            | RouteError::ConnectionLost { .. }
            | RouteError::Transport { .. }
            | RouteError::UnexpectedResult { .. }
            | RouteError::Cancelled
            | RouteError::ShuttingDown { .. }
            | RouteError::Library(_)
            | RouteError::App(_) => ErrorData::internal_error(message, None),
        }
    }
}

impl crate::metrics::HasCode for RouteError {
    /// The JSON-RPC code the client is answered with (the one conversion below).
    fn code(&self) -> i32 {
        match self {
            RouteError::Downstream(data) => data.code.0,
            RouteError::Parked(ParkedError::Unknown(..))
            | RouteError::Resolve(_)
            | RouteError::Cursor(_)
            | RouteError::NotServed { .. }
            | RouteError::InvalidArguments(_) => ErrorCode::INVALID_PARAMS.0,
            RouteError::UnknownResource(_) => ErrorCode::RESOURCE_NOT_FOUND.0,
            RouteError::Unsupported { .. } => ErrorCode::METHOD_NOT_FOUND.0,
            RouteError::Timeout { .. } => REQUEST_TIMEOUT.0,
            _ => ErrorCode::INTERNAL_ERROR.0,
        }
    }
}

impl From<ParkedError> for ErrorData {
    fn from(error: ParkedError) -> ErrorData {
        let message = error.to_string();
        match error {
            ParkedError::Unknown(..) => ErrorData::invalid_params(message, None),
            ParkedError::Full(..) => ErrorData::internal_error(message, None),
        }
    }
}

/// A downstream request's failure as the client hears of it: the server's own error, a timeout
/// after `timeout`, a lost connection, or the transport's message.
pub(super) fn service_error(
    server: &str,
    method: &str,
    timeout: Duration,
    error: ServiceError,
) -> RouteError {
    match error {
        ServiceError::McpError(data) => RouteError::Downstream(data),
        ServiceError::Timeout { .. } => RouteError::Timeout {
            server: server.to_owned(),
            method: method.to_owned(),
            timeout,
        },
        ServiceError::TransportClosed => RouteError::ConnectionLost {
            server: server.to_owned(),
            method: method.to_owned(),
        },
        other => RouteError::Transport {
            server: server.to_owned(),
            method: method.to_owned(),
            message: other.to_string(),
        },
    }
}
