//! What a request must look like before its body is read: an HTTP method the MCP endpoint
//! serves (405 otherwise), headers within [`MAX_HEADER_BYTES`] (431), and an
//! `MCP-Protocol-Version` the proxy speaks, when it names one (400, answered once the body's id
//! is known). hyper refuses larger heads itself; this check covers what it let through.

use axum::http::{HeaderMap, Method};
use rmcp::model::ProtocolVersion;

use super::refusals::{self, Refused};

/// The most header bytes a request may carry.
pub(crate) const MAX_HEADER_BYTES: usize = 64 * 1024;

/// POST, GET and DELETE: what the Streamable HTTP transport uses.
pub(super) fn check_method(method: &Method) -> Result<(), Refused> {
    if matches!(*method, Method::POST | Method::GET | Method::DELETE) {
        Ok(())
    } else {
        Err(refusals::method_not_allowed(method))
    }
}

pub(super) fn check_header_size(headers: &HeaderMap) -> Result<(), Refused> {
    let header_bytes: usize = headers
        .iter()
        .map(|(name, value)| name.as_str().len() + value.len())
        .sum();
    if header_bytes > MAX_HEADER_BYTES {
        Err(refusals::headers_too_large(MAX_HEADER_BYTES))
    } else {
        Ok(())
    }
}

/// The `MCP-Protocol-Version` header, when it names a version the proxy does not speak.
pub(super) fn unknown_version(headers: &HeaderMap) -> Option<String> {
    headers
        .get("mcp-protocol-version")
        .map(|value| value.to_str().unwrap_or("").to_owned())
        .filter(|version| {
            !ProtocolVersion::KNOWN_VERSIONS
                .iter()
                .any(|known| known.as_str() == version)
        })
}
