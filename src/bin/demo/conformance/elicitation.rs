//! The elicitation fixtures: `test_elicitation_sep1034_defaults` (a default for every primitive
//! type, SEP-1034), `test_elicitation_sep1330_enums` (every enum schema variant, SEP-1330) and
//! `test_streaming_elicitation`. Each asks the client to fill a form: with a server-to-client
//! request on the `initialize` lifecycle, with an `InputRequiredResult` on 2026-07-28.

use rmcp::{ErrorData as McpError, RoleServer, model::*, service::RequestContext};
use serde_json::{Value, json};

use super::{
    Call,
    input::{client_has, elicitation_params, missing, name_schema, pending, valid_answer},
    text,
};

/// `test_elicitation_sep1034_defaults`: a profile form with a default for every field.
pub(super) async fn defaults(
    call: Call<'_>,
    context: &RequestContext<RoleServer>,
) -> Result<CallToolResponse, McpError> {
    let schema = json!({
        "type": "object",
        "properties": {
            "name": {"type": "string", "description": "User name", "default": "John Doe"},
            "age": {"type": "integer", "description": "User age", "default": 30},
            "score": {"type": "number", "description": "User score", "default": 95.5},
            "status": {"type": "string", "description": "User status", "enum": ["active", "inactive", "pending"], "default": "active"},
            "verified": {"type": "boolean", "description": "Verification status", "default": true}
        },
        "required": []
    });
    elicit(
        call,
        context,
        "Please review your profile (defaults filled in)",
        schema,
    )
    .await
}

/// `test_elicitation_sep1330_enums`: one field per enum schema variant.
pub(super) async fn enums(
    call: Call<'_>,
    context: &RequestContext<RoleServer>,
) -> Result<CallToolResponse, McpError> {
    let schema = json!({
        "type": "object",
        "properties": {
            "untitledSingle": {"type": "string", "enum": ["option1", "option2", "option3"]},
            "titledSingle": {"type": "string", "oneOf": [
                {"const": "value1", "title": "First Option"},
                {"const": "value2", "title": "Second Option"},
                {"const": "value3", "title": "Third Option"}
            ]},
            "legacyEnum": {"type": "string", "enum": ["opt1", "opt2", "opt3"], "enumNames": ["Option One", "Option Two", "Option Three"]},
            "untitledMulti": {"type": "array", "items": {"type": "string", "enum": ["option1", "option2", "option3"]}},
            "titledMulti": {"type": "array", "items": {"anyOf": [
                {"const": "value1", "title": "First Choice"},
                {"const": "value2", "title": "Second Choice"},
                {"const": "value3", "title": "Third Choice"}
            ]}}
        },
        "required": []
    });
    elicit(call, context, "Pick your options", schema).await
}

/// `test_streaming_elicitation`: asks for a name.
pub(super) async fn streaming(
    call: Call<'_>,
    context: &RequestContext<RoleServer>,
) -> Result<CallToolResponse, McpError> {
    let schema = name_schema("name");
    elicit(call, context, "What is your name?", schema).await
}

/// Asks the client to fill `schema`: a server-to-client request on the legacy lifecycle,
/// an `InputRequiredResult` (key `answer`) on 2026-07-28.
async fn elicit(
    call: Call<'_>,
    context: &RequestContext<RoleServer>,
    message: &str,
    schema: Value,
) -> Result<CallToolResponse, McpError> {
    if !client_has(context, "elicitation") {
        return Err(missing(json!({"elicitation": {}})));
    }
    let params = elicitation_params(message, schema)?;
    let modern = context
        .protocol_version()
        .is_some_and(|version| !version.has_initialize());
    let answer = if modern {
        match call.responses.and_then(|responses| responses.get("answer")) {
            Some(answer) if valid_answer("elicitation", Some(answer)) => answer.clone(),
            _ => {
                let request = InputRequest::Elicitation(ElicitRequest::new(params));
                return Ok(pending(vec![("answer", request)], None));
            }
        }
    } else {
        let result = context
            .peer
            .create_elicitation(params)
            .await
            .map_err(|error| McpError::internal_error(error.to_string(), None))?;
        serde_json::to_value(result).unwrap_or_default()
    };
    let action = answer["action"].as_str().unwrap_or("unknown");
    let content = answer.get("content").cloned().unwrap_or(json!({}));
    Ok(text(format!(
        "Elicitation completed: action={action}, content={content}"
    ))
    .into())
}
