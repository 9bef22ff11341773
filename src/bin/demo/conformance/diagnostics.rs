//! The stateless one-answer fixtures: `test_missing_capability`, which fails with the
//! missing-capability error (-32021) unless the client declared sampling, and
//! `test_header_params`, whose `region` argument a client mirrors into the `Mcp-Param-Region`
//! header (SEP-2243; the tool's `x-mcp-header` schema is in the catalog). Neither keeps state or
//! asks the client anything.

use rmcp::{ErrorData as McpError, RoleServer, model::*, service::RequestContext};
use serde_json::{Value, json};

use super::{
    input::{client_has, missing},
    text,
};

/// `test_missing_capability`: answers only a client that declared sampling.
pub(super) fn missing_capability(
    context: &RequestContext<RoleServer>,
) -> Result<CallToolResponse, McpError> {
    if client_has(context, "sampling") {
        Ok(text("the client declared sampling").into())
    } else {
        Err(missing(json!({"sampling": {}})))
    }
}

/// `test_header_params`: answers with the region it was given.
pub(super) fn header_params(args: &JsonObject) -> CallToolResponse {
    let region = args.get("region").and_then(Value::as_str).unwrap_or("");
    text(format!("region: {region}")).into()
}
