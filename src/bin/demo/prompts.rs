//! The prompts: the conformance fixture's four (plain, with arguments, with an embedded
//! resource, with an image), the MRTR prompt that asks for context first, and the runtime prompt
//! that `test_trigger_prompt_change` toggles. Completion lives here too, since its candidates are
//! the prompts' arguments (and the resource template's `id`).

use std::sync::atomic::Ordering;

use rmcp::{ErrorData as McpError, model::*};
use serde_json::Value;

use crate::{
    conformance,
    resources::{STATIC_BINARY_URI, STATIC_TEXT_URI, TEMPLATE_URI, TEST_IMAGE_BASE64, WATCHED_URI},
    shared::Shared,
};

/// The prompt that `test_trigger_prompt_change` adds to / removes from the prompt list.
pub(crate) const DYNAMIC_PROMPT: &str = "test_dynamic_prompt";
/// The prompt that asks for input first (MRTR).
const MRTR_PROMPT: &str = "test_input_required_result_prompt";

/// The prompts of `prompts/list`.
pub(crate) fn list(shared: &Shared) -> Vec<Prompt> {
    let mut prompts = fixed();
    prompts.push(
        Prompt::new(
            MRTR_PROMPT,
            Some("Asks the client for context first (MRTR)"),
            None,
        )
        .with_title("Prompt Asking For Input"),
    );
    if shared.dynamic_prompt_enabled.load(Ordering::Relaxed) {
        prompts.push(Prompt::new(
            DYNAMIC_PROMPT,
            Some("A prompt registered at runtime by test_trigger_prompt_change"),
            None,
        ));
    }
    prompts
}

/// Answers `prompts/get`.
pub(crate) fn get(
    shared: &Shared,
    request: &GetPromptRequestParams,
) -> Result<GetPromptResponse, McpError> {
    match request.name.as_str() {
        MRTR_PROMPT => conformance::mrtr_prompt(request),
        DYNAMIC_PROMPT if shared.dynamic_prompt_enabled.load(Ordering::Relaxed) => {
            Ok(GetPromptResult::new(vec![PromptMessage::new_text(
                Role::User,
                "This prompt was added at runtime.",
            )])
            .into())
        }
        _ => fixed_prompt(request).map(Into::into),
    }
}

/// The fixture's fixed prompts.
fn fixed() -> Vec<Prompt> {
    let arg = |name: &str, description: &str| {
        PromptArgument::new(name)
            .with_description(description)
            .with_required(true)
    };
    vec![
        Prompt::new(
            "test_simple_prompt",
            Some("A simple prompt without arguments"),
            None,
        )
        .with_title("Simple Test Prompt"),
        Prompt::new(
            "test_prompt_with_arguments",
            Some("A prompt with required arguments"),
            Some(vec![
                arg("arg1", "First test argument"),
                arg("arg2", "Second test argument"),
            ]),
        )
        .with_title("Prompt With Arguments"),
        Prompt::new(
            "test_prompt_with_embedded_resource",
            Some("A prompt that includes an embedded resource"),
            Some(vec![arg("resourceUri", "URI of the resource to embed")]),
        )
        .with_title("Prompt With Embedded Resource"),
        Prompt::new(
            "test_prompt_with_image",
            Some("A prompt that includes image content"),
            None,
        )
        .with_title("Prompt With Image"),
    ]
}

fn fixed_prompt(request: &GetPromptRequestParams) -> Result<GetPromptResult, McpError> {
    let arg = |name: &str| {
        request
            .arguments
            .as_ref()
            .and_then(|args| args.get(name))
            .and_then(Value::as_str)
            .map(str::to_owned)
            .ok_or_else(|| {
                McpError::invalid_params(format!("missing required argument: {name}"), None)
            })
    };
    let messages = match request.name.as_str() {
        "test_simple_prompt" => vec![PromptMessage::new_text(
            Role::User,
            "This is a simple prompt for testing.",
        )],
        "test_prompt_with_arguments" => {
            let (arg1, arg2) = (arg("arg1")?, arg("arg2")?);
            vec![PromptMessage::new_text(
                Role::User,
                format!("Prompt with arguments: arg1='{arg1}', arg2='{arg2}'"),
            )]
        }
        "test_prompt_with_embedded_resource" => vec![
            PromptMessage::new(
                Role::User,
                ContentBlock::embedded_text(
                    arg("resourceUri")?,
                    "Embedded resource content for testing.",
                ),
            ),
            PromptMessage::new_text(Role::User, "Please process the embedded resource above."),
        ],
        "test_prompt_with_image" => vec![
            PromptMessage::new(
                Role::User,
                ContentBlock::image(TEST_IMAGE_BASE64, "image/png"),
            ),
            PromptMessage::new_text(Role::User, "Please analyze the image above."),
        ],
        unknown => {
            return Err(McpError::invalid_params(
                format!("unknown prompt: {unknown}"),
                None,
            ));
        }
    };
    Ok(GetPromptResult::new(messages))
}

/// Answers `completion/complete`: the candidates that start with what was typed.
pub(crate) fn complete(request: &CompleteRequestParams) -> Result<CompleteResult, McpError> {
    let reference = &request.r#ref;
    let candidates: &[&str] = match (
        reference.as_prompt_name(),
        reference.as_resource_uri(),
        request.argument.name.as_str(),
    ) {
        (Some("test_prompt_with_arguments"), _, "arg1") => {
            &["paris", "park", "party", "test", "testing"]
        }
        (Some("test_prompt_with_arguments"), _, "arg2") => &["hello", "help", "world", "wonder"],
        (Some("test_prompt_with_embedded_resource"), _, "resourceUri") => {
            &[STATIC_TEXT_URI, STATIC_BINARY_URI, WATCHED_URI]
        }
        (_, Some(TEMPLATE_URI), "id") => &["1", "2", "3", "42", "123"],
        _ => &[],
    };
    let prefix = request.argument.value.as_str();
    let values = candidates
        .iter()
        .filter(|value| value.starts_with(prefix))
        .map(|value| value.to_string())
        .collect();
    let completion = CompletionInfo::with_all_values(values)
        .map_err(|error| McpError::internal_error(error, None))?;
    Ok(CompleteResult::new(completion))
}
