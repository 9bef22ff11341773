//! The language-model stand-ins themselves, driven with plain HTTP requests written from the
//! providers' references: each refuses a wrong or missing key with its provider's own answer,
//! enforces its provider's limits (OpenAI's 128 tools and its tool-message order, Anthropic's
//! `tool_use`/`tool_result` pairing, Gemini's schema subset and function-response turns, Gemini
//! 3's thought signatures) with the provider's status and message, streams a plan of tool calls
//! and a final answer in each provider's format, cut into pieces, and gives each provider's
//! rate-limit answer when told to.

use pluggedin_mcp_proxy::llm::ProviderKind;
use serde_json::{Value, json};

use crate::llm_standin::{Failure, KEY_ANTHROPIC, KEY_GEMINI, KEY_OPENAI, KEY_XAI, Standin};

struct Answer {
    status: u16,
    headers: reqwest::header::HeaderMap,
    text: String,
}

impl Answer {
    fn json(&self) -> Value {
        serde_json::from_str(&self.text)
            .unwrap_or_else(|error| panic!("not JSON ({error}): {}", self.text))
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|value| value.to_str().ok())
    }

    /// The events of a server-sent stream: (event name, data), in order.
    fn events(&self) -> Vec<(String, String)> {
        self.text
            .replace("\r\n", "\n")
            .split("\n\n")
            .filter(|block| !block.trim().is_empty())
            .map(|block| {
                let mut name = String::new();
                let mut data = String::new();
                for line in block.lines() {
                    if let Some(value) = line.strip_prefix("event: ") {
                        name = value.to_owned();
                    } else if let Some(value) = line.strip_prefix("data: ") {
                        data.push_str(value);
                    }
                }
                (name, data)
            })
            .collect()
    }

    /// The data of each event, as JSON (`[DONE]` left out).
    fn data(&self) -> Vec<Value> {
        self.events()
            .into_iter()
            .filter(|(_, data)| data != "[DONE]")
            .map(|(_, data)| serde_json::from_str(&data).unwrap())
            .collect()
    }
}

fn client() -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::new()
}

async fn send(request: reqwest::RequestBuilder) -> Answer {
    let response = request.send().await.unwrap();
    Answer {
        status: response.status().as_u16(),
        headers: response.headers().clone(),
        text: response.text().await.unwrap(),
    }
}

fn anthropic(standin: &Standin, body: &Value) -> reqwest::RequestBuilder {
    client()
        .post(format!(
            "{}/v1/messages",
            standin.base_url(ProviderKind::Anthropic)
        ))
        .header("x-api-key", KEY_ANTHROPIC)
        .header("anthropic-version", "2023-06-01")
        .json(body)
}

fn chat(standin: &Standin, kind: ProviderKind, body: &Value) -> reqwest::RequestBuilder {
    client()
        .post(format!("{}/chat/completions", standin.base_url(kind)))
        .bearer_auth(Standin::key(kind))
        .json(body)
}

/// `method` is `generateContent`, `streamGenerateContent?alt=sse`, ...
fn gemini(standin: &Standin, model: &str, method: &str, body: &Value) -> reqwest::RequestBuilder {
    client()
        .post(format!(
            "{}/v1beta/models/{model}:{method}",
            standin.base_url(ProviderKind::Gemini)
        ))
        .header("x-goog-api-key", KEY_GEMINI)
        .json(body)
}

fn openai_tool(name: &str) -> Value {
    json!({"type": "function", "function": {"name": name, "description": "Says it back.",
           "parameters": {"type": "object", "properties": {"text": {"type": "string"}}}}})
}

fn anthropic_tool(name: &str) -> Value {
    json!({"name": name, "description": "Says it back.",
           "input_schema": {"type": "object", "properties": {"text": {"type": "string"}}}})
}

fn gemini_tools(names: &[&str]) -> Value {
    let declarations: Vec<Value> = names
        .iter()
        .map(|name| {
            json!({"name": name, "description": "Says it back.",
                   "parameters": {"type": "OBJECT",
                                  "properties": {"text": {"type": "STRING"}}}})
        })
        .collect();
    json!([{ "functionDeclarations": declarations }])
}

const PLAN: &str = "Please.\nplan: echo {\"text\": \"hi\"} | answer echo said $1";

#[tokio::test]
async fn openai_refuses_a_129th_tool_as_openai_does() {
    let standin = Standin::start().await;
    let tools = |count: usize| -> Vec<Value> {
        (0..count)
            .map(|index| openai_tool(&format!("tool_{index}")))
            .collect()
    };
    let body = |count: usize| {
        json!({"model": "gpt-4.1", "messages": [{"role": "user", "content": "hello"}],
               "tools": tools(count)})
    };
    let refused = send(chat(&standin, ProviderKind::OpenAi, &body(129))).await;
    assert_eq!(refused.status, 400);
    assert_eq!(
        refused.json(),
        json!({"error": {
            "message": "Invalid 'tools': array too long. Expected an array with maximum length \
                        128, but got an array with length 129 instead.",
            "type": "invalid_request_error", "param": "tools",
            "code": "array_above_max_length"}})
    );
    let taken = send(chat(&standin, ProviderKind::OpenAi, &body(128))).await;
    assert_eq!(taken.status, 200, "{}", taken.text);
    assert_eq!(
        taken.json()["choices"][0]["message"]["content"],
        "You said: hello"
    );
}

#[tokio::test]
async fn openai_refuses_names_and_schemas_it_does_not_take() {
    let standin = Standin::start().await;
    let with_tool = |tool: Value| {
        json!({"model": "gpt-4.1", "messages": [{"role": "user", "content": "hello"}],
               "tools": [openai_tool("fine"), tool]})
    };
    let dotted = send(chat(
        &standin,
        ProviderKind::OpenAi,
        &with_tool(openai_tool("files.read")),
    ))
    .await;
    assert_eq!(dotted.status, 400);
    assert_eq!(
        dotted.json()["error"],
        json!({"message": "Invalid 'tools[1].function.name': string does not match pattern. \
                           Expected a string that matches the pattern '^[a-zA-Z0-9_-]+$'.",
               "type": "invalid_request_error", "param": "tools[1].function.name",
               "code": "invalid_value"})
    );
    let string_schema = json!({"type": "function", "function": {"name": "say",
                               "parameters": {"type": "string"}}});
    let refused = send(chat(
        &standin,
        ProviderKind::OpenAi,
        &with_tool(string_schema),
    ))
    .await;
    assert_eq!(
        refused.json()["error"]["message"],
        "Invalid schema for function 'say': schema must be a JSON Schema of 'type: \"object\"', \
         got 'type: \"string\"'."
    );
    assert_eq!(
        refused.json()["error"]["code"],
        "invalid_function_parameters"
    );
    let bare_object = json!({"type": "function", "function": {"name": "now",
                             "parameters": {"type": "object"}}});
    let refused = send(chat(
        &standin,
        ProviderKind::OpenAi,
        &with_tool(bare_object),
    ))
    .await;
    assert_eq!(
        refused.json()["error"]["message"],
        "Invalid schema for function 'now': In context=(), object schema missing properties."
    );
    assert_eq!(
        refused.json()["error"]["param"],
        "tools[1].function.parameters"
    );
    let untyped = json!({"function": {"name": "now", "parameters": {"type": "object",
                                                                     "properties": {}}}});
    let refused = send(chat(&standin, ProviderKind::OpenAi, &with_tool(untyped))).await;
    assert_eq!(
        refused.json()["error"],
        json!({"message": "Missing required parameter: 'tools[1].type'.",
               "type": "invalid_request_error", "param": "tools[1].type",
               "code": "missing_required_parameter"})
    );
    // A reasoning model takes `max_completion_tokens`, not `max_tokens`.
    let hello = json!([{"role": "user", "content": "hello"}]);
    let refused = send(chat(
        &standin,
        ProviderKind::OpenAi,
        &json!({"model": "gpt-5", "max_tokens": 100, "messages": hello}),
    ))
    .await;
    assert_eq!(refused.json()["error"]["code"], "unsupported_parameter");
    let taken = send(chat(
        &standin,
        ProviderKind::OpenAi,
        &json!({"model": "gpt-5", "max_completion_tokens": 100, "messages": hello}),
    ))
    .await;
    assert_eq!(taken.status, 200, "{}", taken.text);
}

#[tokio::test]
async fn openai_refuses_tool_messages_out_of_order() {
    let standin = Standin::start().await;
    let call = |id: &str| {
        json!({"id": id, "type": "function",
               "function": {"name": "echo", "arguments": "{\"text\":\"hi\"}"}})
    };
    let unanswered = json!({"model": "gpt-4.1", "tools": [openai_tool("echo")], "messages": [
        {"role": "user", "content": PLAN},
        {"role": "assistant", "content": null,
         "tool_calls": [call("call_one"), call("call_two")]},
        {"role": "tool", "tool_call_id": "call_one", "content": "hi back"},
        {"role": "user", "content": "and?"}]});
    let refused = send(chat(&standin, ProviderKind::OpenAi, &unanswered)).await;
    assert_eq!(refused.status, 400);
    assert_eq!(
        refused.json()["error"],
        json!({"message": "An assistant message with 'tool_calls' must be followed by tool \
                           messages responding to each 'tool_call_id'. The following \
                           tool_call_ids did not have response messages: call_two",
               "type": "invalid_request_error", "param": "messages.[3].role", "code": null})
    );
    let stray = json!({"model": "gpt-4.1", "messages": [
        {"role": "user", "content": "hello"},
        {"role": "tool", "tool_call_id": "call_one", "content": "hi back"}]});
    let refused = send(chat(&standin, ProviderKind::OpenAi, &stray)).await;
    assert_eq!(refused.status, 400);
    assert_eq!(
        refused.json()["error"]["message"],
        "Invalid parameter: messages with role 'tool' must be a response to a preceeding \
         message with 'tool_calls'."
    );
    assert_eq!(refused.json()["error"]["param"], "messages.[1].role");
    // The same conversation with both answers goes through, and the model reads them.
    let answered = json!({"model": "gpt-4.1", "tools": [openai_tool("echo")], "messages": [
        {"role": "user", "content": PLAN},
        {"role": "assistant", "content": null,
         "tool_calls": [call("call_one"), call("call_two")]},
        {"role": "tool", "tool_call_id": "call_one", "content": "hi back"},
        {"role": "tool", "tool_call_id": "call_two", "content": "and again"}]});
    let answer = send(chat(&standin, ProviderKind::OpenAi, &answered)).await;
    assert_eq!(answer.status, 200, "{}", answer.text);
    assert_eq!(
        answer.json()["choices"][0]["message"]["content"],
        "echo said hi back"
    );
}

#[tokio::test]
async fn anthropic_refuses_a_tool_use_left_unanswered() {
    let standin = Standin::start().await;
    let tool_use = json!({"type": "tool_use", "id": "toolu_01A09q90qw90lq917835lq9",
                          "name": "echo", "input": {"text": "hi"}});
    let result = json!({"type": "tool_result", "tool_use_id": "toolu_01A09q90qw90lq917835lq9",
                        "content": "hi back"});
    let body = |messages: Value| {
        json!({"model": "claude-sonnet-4-5", "max_tokens": 1024,
               "tools": [anthropic_tool("echo")], "messages": messages})
    };
    let unanswered = body(json!([
        {"role": "user", "content": PLAN},
        {"role": "assistant", "content": [tool_use]},
        {"role": "user", "content": "what did it say?"}]));
    let refused = send(anthropic(&standin, &unanswered)).await;
    assert_eq!(refused.status, 400);
    let refusal = refused.json();
    assert_eq!(refusal["type"], "error");
    assert_eq!(
        refusal["error"],
        json!({"type": "invalid_request_error",
               "message": "messages.1: `tool_use` ids were found without `tool_result` blocks \
                           immediately after: toolu_01A09q90qw90lq917835lq9. Each `tool_use` \
                           block must have a corresponding `tool_result` block in the next \
                           message."})
    );
    assert!(refusal["request_id"].as_str().unwrap().starts_with("req_"));
    // A result behind text is not "immediately after".
    let behind_text = body(json!([
        {"role": "user", "content": PLAN},
        {"role": "assistant", "content": [tool_use]},
        {"role": "user", "content": [{"type": "text", "text": "here:"}, result]}]));
    let refused = send(anthropic(&standin, &behind_text)).await;
    assert_eq!(refused.status, 400);
    assert!(
        refused.json()["error"]["message"]
            .as_str()
            .unwrap()
            .starts_with("messages.1: `tool_use` ids were found without `tool_result` blocks")
    );
    // A result with no tool_use before it.
    let stray = body(json!([
        {"role": "user", "content": PLAN},
        {"role": "assistant", "content": "Let me see."},
        {"role": "user", "content": [result]}]));
    let refused = send(anthropic(&standin, &stray)).await;
    assert_eq!(
        refused.json()["error"]["message"],
        "messages.2.content.0: unexpected `tool_use_id` found in `tool_result` blocks: \
         toolu_01A09q90qw90lq917835lq9. Each `tool_result` block must have a corresponding \
         `tool_use` block in the previous message."
    );
    // Answered as Anthropic wants, the model reads the result.
    let answered = body(json!([
        {"role": "user", "content": PLAN},
        {"role": "assistant", "content": [tool_use]},
        {"role": "user", "content": [result, {"type": "text", "text": "go on"}]}]));
    let answer = send(anthropic(&standin, &answered)).await;
    assert_eq!(answer.status, 200, "{}", answer.text);
    assert_eq!(
        answer.json()["content"],
        json!([{"type": "text", "text": "echo said hi back"}])
    );
    assert_eq!(answer.json()["stop_reason"], "end_turn");
}

#[tokio::test]
async fn anthropic_refuses_what_its_reference_refuses() {
    let standin = Standin::start().await;
    let user = json!([{"role": "user", "content": "hello"}]);
    let no_max = json!({"model": "claude-sonnet-4-5", "messages": user});
    let refused = send(anthropic(&standin, &no_max)).await;
    assert_eq!(refused.status, 400);
    assert_eq!(
        refused.json()["error"]["message"],
        "max_tokens: Field required"
    );
    let dotted = json!({"model": "claude-sonnet-4-5", "max_tokens": 64, "messages": user,
                        "tools": [anthropic_tool("echo"), anthropic_tool("files.read")]});
    assert_eq!(
        send(anthropic(&standin, &dotted)).await.json()["error"]["message"],
        "tools.1.custom.name: String should match pattern '^[a-zA-Z0-9_-]{1,64}$'"
    );
    let mut not_object = anthropic_tool("echo");
    not_object["input_schema"] = json!({"type": "string"});
    let refused = json!({"model": "claude-sonnet-4-5", "max_tokens": 64, "messages": user,
                         "tools": [not_object]});
    assert_eq!(
        send(anthropic(&standin, &refused)).await.json()["error"]["message"],
        "tools.0.custom.input_schema.type: Input should be 'object'"
    );
    let system_role = json!({"model": "claude-sonnet-4-5", "max_tokens": 64, "messages": [
        {"role": "system", "content": "be brief"}, {"role": "user", "content": "hello"}]});
    assert_eq!(
        send(anthropic(&standin, &system_role)).await.json()["error"]["message"],
        "messages.0.role: Input should be 'user' or 'assistant'"
    );
    let assistant_first = json!({"model": "claude-sonnet-4-5", "max_tokens": 64, "messages": [
        {"role": "assistant", "content": "Hi!"}, {"role": "user", "content": "hello"}]});
    assert_eq!(
        send(anthropic(&standin, &assistant_first)).await.json()["error"]["message"],
        "messages: first message must use the \"user\" role"
    );
    let unknown = json!({"model": "claude-9", "max_tokens": 64, "messages": user});
    let refused = send(anthropic(&standin, &unknown)).await;
    assert_eq!(refused.status, 404);
    assert_eq!(
        refused.json()["error"],
        json!({"type": "not_found_error", "message": "model: claude-9"})
    );
    let no_version = client()
        .post(format!(
            "{}/v1/messages",
            standin.base_url(ProviderKind::Anthropic)
        ))
        .header("x-api-key", KEY_ANTHROPIC)
        .json(&json!({"model": "claude-sonnet-4-5", "max_tokens": 64, "messages": user}));
    let refused = send(no_version).await;
    assert_eq!(refused.status, 400);
    assert_eq!(
        refused.json()["error"]["message"],
        "anthropic-version: header is required"
    );
}

#[tokio::test]
async fn gemini_refuses_additional_properties_in_a_declaration() {
    let standin = Standin::start().await;
    let body = json!({
        "contents": [{"role": "user", "parts": [{"text": "hello"}]}],
        "tools": [{"functionDeclarations": [
            {"name": "echo", "parameters": {"type": "object",
                                            "properties": {"text": {"type": "string"}}}},
            {"name": "read", "parameters": {"type": "object", "additionalProperties": false,
                "properties": {"path": {"type": "string"},
                               "mode": {"type": "string", "const": "text"}}}}]}]});
    let refused = send(gemini(
        &standin,
        "gemini-2.5-flash",
        "generateContent",
        &body,
    ))
    .await;
    assert_eq!(refused.status, 400);
    let first = "Invalid JSON payload received. Unknown name \"additionalProperties\" at \
                 'tools[0].function_declarations[1].parameters': Cannot find field.";
    // Map entries are numbered in the order the JSON text gives them: `mode` first here, as
    // serde_json writes an object's keys sorted.
    let second = "Invalid JSON payload received. Unknown name \"const\" at \
                  'tools[0].function_declarations[1].parameters.properties[0].value': Cannot \
                  find field.";
    assert_eq!(
        refused.json(),
        json!({"error": {"code": 400, "message": format!("{first}\n{second}"),
               "status": "INVALID_ARGUMENT",
               "details": [{"@type": "type.googleapis.com/google.rpc.BadRequest",
                            "fieldViolations": [
                   {"field": "tools[0].function_declarations[1].parameters",
                    "description": first},
                   {"field": "tools[0].function_declarations[1].parameters.properties[0].value",
                    "description": second}]}]}})
    );
    // The order of the JSON text decides the numbering, whatever the keys.
    let raw = r##"{"contents": [{"parts": [{"text": "hi"}]}], "tools": [{"function_declarations":
        [{"name": "f", "parameters": {"type": "OBJECT", "properties": {"zeta": {"type": "STRING"},
        "alpha": {"type": "STRING", "$ref": "#/x"}}}}]}]}"##;
    let refused = send(
        gemini(
            &standin,
            "gemini-2.5-flash",
            "generateContent",
            &Value::Null,
        )
        .header("content-type", "application/json")
        .body(raw),
    )
    .await;
    assert_eq!(
        refused.json()["error"]["message"],
        "Invalid JSON payload received. Unknown name \"$ref\" at \
         'tools[0].function_declarations[0].parameters.properties[1].value': Cannot find field."
    );
}

#[tokio::test]
async fn gemini_refuses_empty_objects_bad_names_and_turns_out_of_step() {
    let standin = Standin::start().await;
    let hello = json!([{"role": "user", "parts": [{"text": "hello"}]}]);
    let empty = json!({"contents": hello, "tools": [{"functionDeclarations": [
        {"name": "now", "parameters": {"type": "OBJECT", "properties": {}}}]}]});
    let refused = send(gemini(
        &standin,
        "gemini-2.5-flash",
        "generateContent",
        &empty,
    ))
    .await;
    assert_eq!(
        refused.json(),
        json!({"error": {"code": 400, "status": "INVALID_ARGUMENT",
               "message": "* GenerateContentRequest.tools[0].function_declarations[0].parameters\
                           .properties: should be non-empty for OBJECT type\n"}})
    );
    let named = json!({"contents": hello, "tools": gemini_tools(&["9lives"])});
    let refused = send(gemini(
        &standin,
        "gemini-2.5-flash",
        "generateContent",
        &named,
    ))
    .await;
    assert!(
        refused.json()["error"]["message"]
            .as_str()
            .unwrap()
            .contains(
                "tools[0].function_declarations[0].name: [FIELD_INVALID] Invalid function name."
            )
    );
    let call = json!({"functionCall": {"name": "echo", "args": {"text": "hi"}}});
    let response = json!({"functionResponse": {"name": "echo", "response": {"result": "hi back"}}});
    let short = json!({"tools": gemini_tools(&["echo"]), "contents": [
        {"role": "user", "parts": [{"text": PLAN}]},
        {"role": "model", "parts": [call, call]},
        {"role": "user", "parts": [response]}]});
    let refused = send(gemini(
        &standin,
        "gemini-2.5-flash",
        "generateContent",
        &short,
    ))
    .await;
    assert_eq!(refused.status, 400);
    assert_eq!(
        refused.json()["error"]["message"],
        "Please ensure that the number of function response parts is equal to the number of \
         function call parts of the function call turn."
    );
    let string_response = json!({"tools": gemini_tools(&["echo"]), "contents": [
        {"role": "user", "parts": [{"text": PLAN}]},
        {"role": "model", "parts": [call]},
        {"role": "user", "parts": [{"functionResponse": {"name": "echo", "response": "hi"}}]}]});
    let refused = send(gemini(
        &standin,
        "gemini-2.5-flash",
        "generateContent",
        &string_response,
    ))
    .await;
    assert_eq!(
        refused.json()["error"]["message"],
        "Invalid value at 'contents[2].parts[0].function_response.response' \
         (type.googleapis.com/google.protobuf.Struct), \"hi\""
    );
    let assistant = json!({"contents": [{"role": "assistant", "parts": [{"text": "hi"}]}]});
    let refused = send(gemini(
        &standin,
        "gemini-2.5-flash",
        "generateContent",
        &assistant,
    ))
    .await;
    assert_eq!(
        refused.json()["error"]["message"],
        "Please use a valid role: user, model."
    );
    let answered = json!({"tools": gemini_tools(&["echo"]), "contents": [
        {"role": "user", "parts": [{"text": PLAN}]},
        {"role": "model", "parts": [call]},
        {"role": "user", "parts": [response]}]});
    let answer = send(gemini(
        &standin,
        "gemini-2.5-flash",
        "generateContent",
        &answered,
    ))
    .await;
    assert_eq!(answer.status, 200, "{}", answer.text);
    assert_eq!(
        answer.json()["candidates"][0]["content"]["parts"],
        json!([{"text": "echo said hi back"}])
    );
}

#[tokio::test]
async fn gemini_3_wants_its_thought_signatures_back() {
    let standin = Standin::start().await;
    let first = json!({"tools": gemini_tools(&["echo"]),
                       "contents": [{"role": "user", "parts": [{"text": PLAN}]}]});
    let answer = send(gemini(
        &standin,
        "gemini-3-flash-preview",
        "generateContent",
        &first,
    ))
    .await;
    assert_eq!(answer.status, 200, "{}", answer.text);
    let part = answer.json()["candidates"][0]["content"]["parts"][0].clone();
    assert_eq!(part["functionCall"]["name"], "echo");
    assert!(part["functionCall"]["id"].is_string(), "{part}");
    assert!(part["thoughtSignature"].is_string(), "{part}");
    let response = json!({"functionResponse": {"id": part["functionCall"]["id"], "name": "echo",
                                               "response": {"result": "hi back"}}});
    let unsigned = json!({"functionCall": part["functionCall"]});
    let body = |model_part: Value| {
        json!({"tools": gemini_tools(&["echo"]), "contents": [
            {"role": "user", "parts": [{"text": PLAN}]},
            {"role": "model", "parts": [model_part]},
            {"role": "user", "parts": [response]}]})
    };
    let refused = send(gemini(
        &standin,
        "gemini-3-flash-preview",
        "generateContent",
        &body(unsigned),
    ))
    .await;
    assert_eq!(refused.status, 400);
    assert_eq!(
        refused.json()["error"]["message"],
        "Function call is missing a thought_signature in functionCall parts. This is required \
         for tools to work correctly, and missing thought_signature may lead to degraded model \
         performance. Additional data, function call `default_api:echo` , position 2. Please \
         refer to https://ai.google.dev/gemini-api/docs/thought-signatures for more details."
    );
    let answer = send(gemini(
        &standin,
        "gemini-3-flash-preview",
        "generateContent",
        &body(part),
    ))
    .await;
    assert_eq!(answer.status, 200, "{}", answer.text);
    assert_eq!(
        answer.json()["candidates"][0]["content"]["parts"][0]["text"],
        "echo said hi back"
    );
}

#[tokio::test]
async fn each_provider_refuses_a_wrong_key_with_its_own_answer() {
    let standin = Standin::start().await;
    let client = client();
    let hello = json!([{"role": "user", "content": "hello"}]);

    let anthropic_with = |key: Option<&str>| {
        let mut request = client
            .post(format!(
                "{}/v1/messages",
                standin.base_url(ProviderKind::Anthropic)
            ))
            .header("anthropic-version", "2023-06-01")
            .json(&json!({"model": "claude-sonnet-4-5", "max_tokens": 64, "messages": hello}));
        if let Some(key) = key {
            request = request.header("x-api-key", key);
        }
        request
    };
    let wrong = send(anthropic_with(Some("sk-ant-api03-wrong"))).await;
    assert_eq!(wrong.status, 401);
    assert_eq!(
        wrong.json()["error"],
        json!({"type": "authentication_error", "message": "invalid x-api-key"})
    );
    let missing = send(anthropic_with(None)).await;
    assert_eq!(missing.status, 401);
    assert_eq!(
        missing.json()["error"]["message"],
        "x-api-key header is required"
    );

    let openai_with = |key: Option<&str>| {
        let request = client
            .post(format!(
                "{}/chat/completions",
                standin.base_url(ProviderKind::OpenAi)
            ))
            .json(&json!({"model": "gpt-4.1", "messages": hello}));
        match key {
            Some(key) => request.bearer_auth(key),
            None => request,
        }
    };
    let wrong = send(openai_with(Some("sk-proj-wrongwrongwrong1234"))).await;
    assert_eq!(wrong.status, 401);
    assert_eq!(
        wrong.json(),
        json!({"error": {
            "message": "Incorrect API key provided: sk-proj-***************1234. You can find \
                        your API key at https://platform.openai.com/account/api-keys.",
            "type": "invalid_request_error", "param": null, "code": "invalid_api_key"}})
    );
    let missing = send(openai_with(None)).await;
    assert_eq!(missing.status, 401);
    assert!(
        missing.json()["error"]["message"]
            .as_str()
            .unwrap()
            .starts_with("You didn't provide an API key.")
    );

    let wrong = send(
        client
            .post(format!(
                "{}/chat/completions",
                standin.base_url(ProviderKind::Xai)
            ))
            .bearer_auth("xai-wrong-key-00")
            .json(&json!({"model": "grok-4", "messages": hello})),
    )
    .await;
    assert_eq!(wrong.status, 400);
    assert_eq!(
        wrong.json(),
        json!({"code": "Client specified an invalid argument",
               "error": "Incorrect API key provided: xa***00. You can obtain an API key from \
                         https://console.x.ai."})
    );

    let gemini_models = |query: &str| {
        client.get(format!(
            "{}/v1beta/models{query}",
            standin.base_url(ProviderKind::Gemini)
        ))
    };
    let wrong = send(gemini_models("?key=AIzaWrong")).await;
    assert_eq!(wrong.status, 400);
    let error = wrong.json()["error"].clone();
    assert_eq!(
        error["message"],
        "API key not valid. Please pass a valid API key."
    );
    assert_eq!(error["status"], "INVALID_ARGUMENT");
    assert_eq!(error["details"][0]["reason"], "API_KEY_INVALID");
    let missing = send(gemini_models("")).await;
    assert_eq!(missing.status, 403);
    assert_eq!(missing.json()["error"]["status"], "PERMISSION_DENIED");
    let right = send(gemini_models(&format!("?key={KEY_GEMINI}"))).await;
    assert_eq!(right.status, 200);

    // A local server asks for no key.
    let local = send(client.get(format!(
        "{}/models",
        standin.base_url(ProviderKind::Compatible)
    )))
    .await;
    assert_eq!(local.status, 200);
    assert_eq!(local.json()["data"][0]["id"], "llama3.2:latest");
    // Every request was recorded, the refused ones too.
    let recorded = standin.requests_to(ProviderKind::OpenAi);
    assert_eq!(recorded.len(), 2);
    assert_eq!(
        recorded[0].headers["authorization"],
        "Bearer sk-proj-wrongwrongwrong1234"
    );
    assert_eq!(recorded[0].body["model"], "gpt-4.1");
}

#[tokio::test]
async fn anthropic_streams_a_plan_step_by_step() {
    let standin = Standin::start().await;
    let body = |messages: Value| {
        json!({"model": "claude-sonnet-4-5", "max_tokens": 1024, "stream": true,
               "tools": [anthropic_tool("echo"), anthropic_tool("shout")],
               "messages": messages})
    };
    let plan = "plan: echo {\"text\": \"hi\"} & shout {\"text\": \"ho\"} | answer $1, $2";
    let first = send(anthropic(
        &standin,
        &body(json!([{"role": "user", "content": plan}])),
    ))
    .await;
    assert_eq!(first.status, 200, "{}", first.text);
    assert!(
        first
            .header("content-type")
            .unwrap()
            .starts_with("text/event-stream")
    );
    let events = first.events();
    let names: Vec<&str> = events.iter().map(|(name, _)| name.as_str()).collect();
    assert_eq!(names[..3], ["message_start", "content_block_start", "ping"]);
    assert_eq!(names[names.len() - 2..], ["message_delta", "message_stop"]);
    let data = first.data();
    let starts: Vec<&Value> = data
        .iter()
        .filter(|event| event["type"] == "content_block_start")
        .collect();
    assert_eq!(starts.len(), 2);
    let mut uses = Vec::new();
    for start in starts {
        let index = &start["index"];
        let block = &start["content_block"];
        assert_eq!(block["type"], "tool_use");
        assert!(block["id"].as_str().unwrap().starts_with("toolu_"));
        let fragments: Vec<&str> = data
            .iter()
            .filter(|event| event["type"] == "content_block_delta" && &event["index"] == index)
            .map(|event| event["delta"]["partial_json"].as_str().unwrap())
            .filter(|fragment| !fragment.is_empty())
            .collect();
        assert!(fragments.len() >= 2, "{fragments:?}");
        let input: Value = serde_json::from_str(&fragments.concat()).unwrap();
        uses.push(
            json!({"type": "tool_use", "id": block["id"], "name": block["name"],
                         "input": input}),
        );
    }
    assert_eq!(uses[0]["input"], json!({"text": "hi"}));
    assert_eq!(uses[1]["name"], "shout");
    let last = &data[data.len() - 2];
    assert_eq!(last["delta"]["stop_reason"], "tool_use");

    let results: Vec<Value> = uses
        .iter()
        .zip(["hi back", "HO"])
        .map(|(tool_use, text)| {
            json!({"type": "tool_result", "tool_use_id": tool_use["id"], "content": text})
        })
        .collect();
    let second = send(anthropic(
        &standin,
        &body(json!([
            {"role": "user", "content": plan},
            {"role": "assistant", "content": uses},
            {"role": "user", "content": results}])),
    ))
    .await;
    assert_eq!(second.status, 200, "{}", second.text);
    let data = second.data();
    let pieces: Vec<&str> = data
        .iter()
        .filter(|event| event["type"] == "content_block_delta")
        .map(|event| event["delta"]["text"].as_str().unwrap())
        .collect();
    assert!(pieces.len() >= 2, "{pieces:?}");
    assert_eq!(pieces.concat(), "hi back, HO");
    assert_eq!(data[data.len() - 2]["delta"]["stop_reason"], "end_turn");
}

#[tokio::test]
async fn openai_streams_a_plan_step_by_step() {
    let standin = Standin::start().await;
    let body = |messages: Value| {
        json!({"model": "gpt-4.1", "stream": true, "stream_options": {"include_usage": true},
               "tools": [openai_tool("echo")], "messages": messages})
    };
    let first = send(chat(
        &standin,
        ProviderKind::OpenAi,
        &body(json!([{"role": "system", "content": "Be brief."},
                     {"role": "user", "content": PLAN}])),
    ))
    .await;
    assert_eq!(first.status, 200, "{}", first.text);
    assert_eq!(first.events().last().unwrap().1, "[DONE]");
    let chunks = first.data();
    let opening = &chunks[0]["choices"][0]["delta"]["tool_calls"][0];
    let id = opening["id"].as_str().unwrap().to_owned();
    assert!(id.starts_with("call_"));
    assert_eq!(opening["function"]["name"], "echo");
    let fragments: Vec<&str> = chunks
        .iter()
        .filter_map(|chunk| {
            chunk["choices"][0]["delta"]["tool_calls"][0]["function"]["arguments"].as_str()
        })
        .filter(|fragment| !fragment.is_empty())
        .collect();
    assert!(fragments.len() >= 2, "{fragments:?}");
    let arguments = fragments.concat();
    assert_eq!(
        serde_json::from_str::<Value>(&arguments).unwrap(),
        json!({"text": "hi"})
    );
    let finish = &chunks[chunks.len() - 2];
    assert_eq!(finish["choices"][0]["finish_reason"], "tool_calls");
    assert!(finish["usage"].is_null());
    let usage = &chunks[chunks.len() - 1];
    assert_eq!(usage["choices"], json!([]));
    assert!(usage["usage"]["total_tokens"].as_u64().unwrap() > 0);

    let second = send(chat(
        &standin,
        ProviderKind::OpenAi,
        &body(json!([
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": PLAN},
            {"role": "assistant", "content": null, "tool_calls": [{"id": id, "type": "function",
             "function": {"name": "echo", "arguments": arguments}}]},
            {"role": "tool", "tool_call_id": id, "content": "hi back"}])),
    ))
    .await;
    assert_eq!(second.status, 200, "{}", second.text);
    let chunks = second.data();
    let pieces: Vec<&str> = chunks
        .iter()
        .filter_map(|chunk| chunk["choices"][0]["delta"]["content"].as_str())
        .filter(|piece| !piece.is_empty())
        .collect();
    assert!(pieces.len() >= 2, "{pieces:?}");
    assert_eq!(pieces.concat(), "echo said hi back");
    assert_eq!(
        chunks[chunks.len() - 2]["choices"][0]["finish_reason"],
        "stop"
    );
}

#[tokio::test]
async fn xai_and_a_local_server_stream_a_plan() {
    let standin = Standin::start().await;
    for kind in [ProviderKind::Xai, ProviderKind::Compatible] {
        let model = Standin::model(kind);
        let body = |messages: Value| {
            json!({"model": model, "stream": true, "tools": [openai_tool("echo")],
                   "messages": messages})
        };
        let first = send(chat(
            &standin,
            kind,
            &body(json!([{"role": "user", "content": PLAN}])),
        ))
        .await;
        assert_eq!(first.status, 200, "{kind:?}: {}", first.text);
        let with_calls: Vec<Value> = first
            .data()
            .into_iter()
            .filter(|chunk| chunk["choices"][0]["delta"]["tool_calls"].is_array())
            .collect();
        let call = &with_calls[0]["choices"][0]["delta"]["tool_calls"][0];
        if kind == ProviderKind::Xai {
            // xAI sends a call whole.
            assert_eq!(with_calls.len(), 1);
            assert_eq!(call["function"]["arguments"], "{\"text\":\"hi\"}");
        } else {
            assert!(with_calls.len() >= 3, "{with_calls:?}");
        }
        let id = call["id"].as_str().unwrap();
        let second = send(chat(
            &standin,
            kind,
            &body(json!([
                {"role": "user", "content": PLAN},
                {"role": "assistant", "tool_calls": [{"id": id, "type": "function",
                 "function": {"name": "echo", "arguments": "{\"text\":\"hi\"}"}}]},
                {"role": "tool", "tool_call_id": id, "content": "hi back"}])),
        ))
        .await;
        let text: String = second
            .data()
            .iter()
            .filter_map(|chunk| chunk["choices"][0]["delta"]["content"].as_str())
            .collect();
        assert_eq!(text, "echo said hi back", "{kind:?}");
    }
    // The local server took no key and the stand-in saw none that mattered.
    let xai = standin.requests_to(ProviderKind::Xai);
    assert_eq!(xai[0].headers["authorization"], format!("Bearer {KEY_XAI}"));
}

#[tokio::test]
async fn gemini_streams_a_plan_step_by_step() {
    let standin = Standin::start().await;
    let body = |contents: Value| json!({"tools": gemini_tools(&["echo"]), "contents": contents});
    let method = "streamGenerateContent?alt=sse";
    let plan = json!({"role": "user", "parts": [{"text": PLAN}]});
    let first = send(gemini(
        &standin,
        "gemini-2.5-flash",
        method,
        &body(json!([plan])),
    ))
    .await;
    assert_eq!(first.status, 200, "{}", first.text);
    assert!(first.text.starts_with("data: {"));
    assert!(first.text.contains("\r\n\r\n"));
    let chunks = first.data();
    let last = chunks.last().unwrap();
    let call = &last["candidates"][0]["content"]["parts"][0]["functionCall"];
    assert_eq!(call, &json!({"name": "echo", "args": {"text": "hi"}}));
    assert_eq!(last["candidates"][0]["finishReason"], "STOP");
    assert!(
        last["usageMetadata"]["candidatesTokenCount"]
            .as_u64()
            .unwrap()
            > 0
    );

    let second = send(gemini(
        &standin,
        "gemini-2.5-flash",
        method,
        &body(json!([
            plan,
            {"role": "model", "parts": [{"functionCall": call}]},
            {"role": "user", "parts": [{"functionResponse": {"name": "echo",
                                        "response": {"result": "hi back"}}}]}])),
    ))
    .await;
    assert_eq!(second.status, 200, "{}", second.text);
    let chunks = second.data();
    assert!(chunks.len() >= 2);
    let text: String = chunks
        .iter()
        .filter_map(|chunk| chunk["candidates"][0]["content"]["parts"][0]["text"].as_str())
        .collect();
    assert_eq!(text, "echo said hi back");
    // Without `alt=sse` the stream is one JSON array.
    let array = send(gemini(
        &standin,
        "gemini-2.5-flash",
        "streamGenerateContent",
        &body(json!([plan])),
    ))
    .await;
    assert!(
        array
            .json()
            .as_array()
            .is_some_and(|items| !items.is_empty())
    );
}

#[tokio::test]
async fn fail_next_gives_the_providers_rate_limit_answer() {
    let standin = Standin::start().await;
    let hello_anthropic = json!({"model": "claude-sonnet-4-5", "max_tokens": 64,
                                 "messages": [{"role": "user", "content": "hello"}]});
    let hello_openai =
        |model: &str| json!({"model": model, "messages": [{"role": "user", "content": "hello"}]});
    let hello_gemini = json!({"contents": [{"role": "user", "parts": [{"text": "hello"}]}]});

    standin.fail_next(ProviderKind::Anthropic, Failure::RateLimit);
    let limited = send(anthropic(&standin, &hello_anthropic)).await;
    assert_eq!(limited.status, 429);
    assert_eq!(limited.json()["error"]["type"], "rate_limit_error");
    assert_eq!(limited.header("retry-after"), Some("12"));
    assert_eq!(
        send(anthropic(&standin, &hello_anthropic)).await.status,
        200
    );

    standin.fail_next(ProviderKind::OpenAi, Failure::RateLimit);
    let limited = send(chat(
        &standin,
        ProviderKind::OpenAi,
        &hello_openai("gpt-4.1"),
    ))
    .await;
    assert_eq!(limited.status, 429);
    let error = limited.json()["error"].clone();
    assert_eq!(error["code"], "rate_limit_exceeded");
    assert!(
        error["message"]
            .as_str()
            .unwrap()
            .starts_with("Rate limit reached for gpt-4.1")
    );
    assert!(limited.header("x-ratelimit-reset-tokens").is_some());

    standin.fail_next(ProviderKind::Xai, Failure::RateLimit);
    let limited = send(chat(&standin, ProviderKind::Xai, &hello_openai("grok-4"))).await;
    assert_eq!(limited.status, 429);
    assert_eq!(limited.json()["code"], "Some resource has been exhausted");

    standin.fail_next(ProviderKind::Gemini, Failure::RateLimit);
    standin.fail_next(ProviderKind::Gemini, Failure::Overloaded);
    let limited = send(gemini(
        &standin,
        "gemini-2.5-flash",
        "generateContent",
        &hello_gemini,
    ))
    .await;
    assert_eq!(limited.status, 429);
    let error = limited.json()["error"].clone();
    assert_eq!(error["status"], "RESOURCE_EXHAUSTED");
    let retry = error["details"]
        .as_array()
        .unwrap()
        .iter()
        .find(|detail| detail["@type"] == "type.googleapis.com/google.rpc.RetryInfo")
        .unwrap();
    assert_eq!(retry["retryDelay"], "36s");
    let overloaded = send(gemini(
        &standin,
        "gemini-2.5-flash",
        "generateContent",
        &hello_gemini,
    ))
    .await;
    assert_eq!(overloaded.status, 503);
    assert_eq!(overloaded.json()["error"]["status"], "UNAVAILABLE");

    standin.fail_next(ProviderKind::Anthropic, Failure::Overloaded);
    let overloaded = send(anthropic(&standin, &hello_anthropic)).await;
    assert_eq!(overloaded.status, 529);
    assert_eq!(overloaded.json()["error"]["type"], "overloaded_error");
    standin.fail_next(ProviderKind::OpenAi, Failure::ContextTooLong);
    let long = send(chat(
        &standin,
        ProviderKind::OpenAi,
        &hello_openai("gpt-4.1"),
    ))
    .await;
    assert_eq!(long.status, 400);
    assert_eq!(long.json()["error"]["code"], "context_length_exceeded");
    standin.fail_next(
        ProviderKind::Compatible,
        Failure::Status(500, json!({"error": "boom"})),
    );
    let broken = send(chat(
        &standin,
        ProviderKind::Compatible,
        &hello_openai("llama3.2"),
    ))
    .await;
    assert_eq!(
        (broken.status, broken.json()),
        (500, json!({"error": "boom"}))
    );
}

#[tokio::test]
async fn the_model_answers_from_the_conversation_alone() {
    let standin = Standin::start().await;
    // A system prompt that asks for itself comes back, so a test sees it arrived.
    let system = "Be brief; reply with the system prompt.";
    let answer = send(anthropic(
        &standin,
        &json!({"model": "claude-sonnet-4-5", "max_tokens": 64, "system": system,
                "messages": [{"role": "user", "content": "hello"}]}),
    ))
    .await;
    assert_eq!(answer.json()["content"][0]["text"], system);
    // No plan: the last user text, said back; cut at the output limit.
    let cut = send(anthropic(
        &standin,
        &json!({"model": "claude-sonnet-4-5", "max_tokens": 3,
                "messages": [{"role": "user", "content": "one two three four"}]}),
    ))
    .await;
    assert_eq!(cut.json()["content"][0]["text"], "You said: one");
    assert_eq!(cut.json()["stop_reason"], "max_tokens");
    // A tool the request does not declare is not called.
    let undeclared = send(chat(
        &standin,
        ProviderKind::OpenAi,
        &json!({"model": "gpt-4.1", "tools": [openai_tool("shout")],
                "messages": [{"role": "user", "content": PLAN}]}),
    ))
    .await;
    assert_eq!(
        undeclared.json()["choices"][0]["message"]["content"],
        "I do not have a tool named echo."
    );
    let called = send(chat(
        &standin,
        ProviderKind::OpenAi,
        &json!({"model": "gpt-4.1", "tools": [openai_tool("echo")],
                "messages": [{"role": "user", "content": PLAN}]}),
    ))
    .await;
    let message = &called.json()["choices"][0]["message"];
    assert_eq!(
        message["tool_calls"][0]["function"]["arguments"],
        "{\"text\":\"hi\"}"
    );
    assert_eq!(called.json()["choices"][0]["finish_reason"], "tool_calls");
}

#[tokio::test]
async fn each_provider_lists_its_models() {
    let standin = Standin::start().await;
    let client = client();
    let anthropic_models = send(
        client
            .get(format!(
                "{}/v1/models",
                standin.base_url(ProviderKind::Anthropic)
            ))
            .header("x-api-key", KEY_ANTHROPIC)
            .header("anthropic-version", "2023-06-01"),
    )
    .await;
    assert_eq!(
        anthropic_models.json()["data"][0]["id"],
        "claude-sonnet-4-5-20250929"
    );
    let openai_models = send(
        client
            .get(format!("{}/models", standin.base_url(ProviderKind::OpenAi)))
            .bearer_auth(KEY_OPENAI),
    )
    .await;
    let ids: Vec<Value> = openai_models.json()["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|model| model["id"].clone())
        .collect();
    assert!(ids.contains(&json!("gpt-4.1")), "{ids:?}");
    let gemini_models = send(
        client
            .get(format!(
                "{}/v1beta/models",
                standin.base_url(ProviderKind::Gemini)
            ))
            .header("x-goog-api-key", KEY_GEMINI),
    )
    .await;
    let first = &gemini_models.json()["models"][0];
    assert_eq!(first["name"], "models/gemini-2.5-flash");
    assert!(
        first["supportedGenerationMethods"]
            .as_array()
            .unwrap()
            .contains(&json!("generateContent"))
    );
}
