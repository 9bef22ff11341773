//! The input-required (MRTR, SEP-2322) fixtures: the `test_input_required_result_*` tools and
//! the prompt `test_input_required_result_prompt`. Each answers with an `InputRequiredResult`
//! until the client's retry carries the answers it asked for; the multi-round ones carry their
//! progress in a sealed `requestState` (`request_state.rs`), so the server keeps nothing
//! between rounds.

use std::collections::BTreeMap;

use rmcp::{ErrorData as McpError, RoleServer, model::*, service::RequestContext};
use serde_json::{Value, json};

use super::{
    Call,
    input::{
        accepted_field, client_has, elicitation, name_schema, pending, roots, sampling,
        valid_answer,
    },
    request_state::RequestSeal,
    text,
};

/// The `test_input_required_result_*` tools (stateless MRTR, SEP-2322) other than
/// `test_input_required_result_capabilities`.
pub(super) fn call(
    request_state: &RequestSeal,
    call: Call<'_>,
) -> Result<CallToolResponse, McpError> {
    let tool = call.name;
    let responses = call.responses;
    let answer = |key: &str| responses.and_then(|responses| responses.get(key));
    // A state that was sent back must be ours; a missing one starts over at round 1.
    let state = match call.state {
        Some(sealed) => Some(request_state.open(tool, sealed)?),
        None => None,
    };
    let ask_name = || elicitation("What is your name?", name_schema("name"));
    Ok(match tool {
        "test_input_required_result_elicitation" => {
            match accepted_field(answer("user_name"), "name") {
                Some(name) => text(format!("Hello, {name}!")).into(),
                None => pending(vec![("user_name", ask_name()?)], None),
            }
        }
        "test_input_required_result_sampling" => {
            if valid_answer("sampling", answer("capital_question")) {
                let reply = &answer("capital_question").cloned().unwrap_or_default();
                let said = reply["content"]["text"].as_str().unwrap_or("");
                text(format!("The model said: {said}")).into()
            } else {
                let question = sampling("What is the capital of France?", 100);
                pending(vec![("capital_question", question)], None)
            }
        }
        "test_input_required_result_list_roots" => {
            if valid_answer("roots", answer("client_roots")) {
                let roots = &answer("client_roots").cloned().unwrap_or_default()["roots"];
                text(format!("Client roots: {roots}")).into()
            } else {
                pending(vec![("client_roots", roots())], None)
            }
        }
        "test_input_required_result_request_state"
        | "test_input_required_result_tampered_state" => {
            let confirmed = answer("confirm").filter(|answer| answer["action"] == "accept");
            match (state, confirmed) {
                (Some(state), Some(_)) if state["round"] == 1 => {
                    text("state-ok: confirmation received").into()
                }
                _ => {
                    let schema = json!({"type": "object", "properties": {"ok": {"type": "boolean"}}, "required": ["ok"]});
                    let request = elicitation("Please confirm", schema)?;
                    let state = request_state.seal(tool, json!({"round": 1}));
                    pending(vec![("confirm", request)], Some(state))
                }
            }
        }
        "test_input_required_result_multiple_inputs" => {
            let complete = valid_answer("elicitation", answer("user_name"))
                && valid_answer("sampling", answer("greeting"))
                && valid_answer("roots", answer("client_roots"));
            if complete && state.is_some() {
                let name = accepted_field(answer("user_name"), "name").unwrap_or_default();
                text(format!("Got all three answers, {name}")).into()
            } else {
                let state = request_state.seal(tool, json!({"round": 1}));
                pending(
                    vec![
                        ("user_name", ask_name()?),
                        ("greeting", sampling("Generate a greeting", 50)),
                        ("client_roots", roots()),
                    ],
                    Some(state),
                )
            }
        }
        "test_input_required_result_multi_round" => {
            let round = state.as_ref().and_then(|state| state["round"].as_u64());
            let step1 = || elicitation("Step 1: What is your name?", name_schema("name"));
            match round {
                Some(1) => match accepted_field(answer("step1"), "name") {
                    Some(name) => {
                        let request = elicitation(
                            "Step 2: What is your favorite color?",
                            name_schema("color"),
                        )?;
                        let state = request_state.seal(tool, json!({"round": 2, "name": name}));
                        pending(vec![("step2", request)], Some(state))
                    }
                    None => {
                        let state = request_state.seal(tool, json!({"round": 1}));
                        pending(vec![("step1", step1()?)], Some(state))
                    }
                },
                Some(2) => {
                    let name = state.as_ref().map(|state| state["name"].clone());
                    let name = name.as_ref().and_then(Value::as_str).unwrap_or("");
                    match accepted_field(answer("step2"), "color") {
                        Some(color) => text(format!("{name} likes {color}")).into(),
                        None => {
                            let request = elicitation(
                                "Step 2: What is your favorite color?",
                                name_schema("color"),
                            )?;
                            let state = request_state.seal(tool, json!({"round": 2, "name": name}));
                            pending(vec![("step2", request)], Some(state))
                        }
                    }
                }
                _ => {
                    let state = request_state.seal(tool, json!({"round": 1}));
                    pending(vec![("step1", step1()?)], Some(state))
                }
            }
        }
        other => {
            return Err(McpError::invalid_params(
                format!("unknown tool: {other}"),
                Some(json!({ "name": other })),
            ));
        }
    })
}

/// `test_input_required_result_capabilities`: asks only for what the client declared.
pub(super) fn capability_requests(
    context: &RequestContext<RoleServer>,
    responses: Option<&InputResponses>,
) -> Result<CallToolResponse, McpError> {
    let mut requests = Vec::new();
    if client_has(context, "sampling") {
        requests.push(("question", sampling("Say something", 20)));
    }
    if client_has(context, "elicitation") {
        requests.push((
            "user_name",
            elicitation("What is your name?", name_schema("name"))?,
        ));
    }
    if client_has(context, "roots") {
        requests.push(("client_roots", roots()));
    }
    let answered = requests
        .iter()
        .all(|(key, _)| responses.is_some_and(|responses| responses.contains_key(*key)));
    if requests.is_empty() {
        return Ok(text("the client declared no capability to ask with").into());
    }
    if answered {
        return Ok(text("all declared capabilities answered").into());
    }
    Ok(pending(requests, None))
}

/// The prompt `test_input_required_result_prompt`: asks for context first (MRTR).
pub(crate) fn mrtr_prompt(request: &GetPromptRequestParams) -> Result<GetPromptResponse, McpError> {
    let answer = request
        .input_responses
        .as_ref()
        .and_then(|responses| responses.get("user_context"));
    match accepted_field(answer, "context") {
        Some(context) => Ok(GetPromptResult::new(vec![PromptMessage::new_text(
            Role::User,
            format!("Answer with this context in mind: {context}"),
        )])
        .into()),
        None => {
            let request = elicitation(
                "What context should the prompt use?",
                name_schema("context"),
            )?;
            let requests = BTreeMap::from([("user_context".to_string(), request)]);
            Ok(InputRequiredResult::from_input_requests(requests).into())
        }
    }
}
