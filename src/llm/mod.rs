//! Language-model providers, each spoken in its own HTTP API: Anthropic Messages, OpenAI Chat
//! Completions (also xAI's API and any OpenAI-compatible server: Ollama, LM Studio, llama.cpp,
//! vLLM, OpenRouter) and Google Gemini. One neutral conversation ([`Message`]) and one stream of
//! [`Delta`]s, whatever the provider; what each provider refuses (tool count, name characters,
//! schema keywords) is handled before sending ([`names`], [`schema`]) and what it answers with an
//! error reaches the caller with the provider's own reason ([`LlmError`]).
//!
//! The playground (`upstream::http::playground`) drives a conversation with these; nothing here
//! knows about MCP beyond a tool's name, description and input schema.

use std::fmt;
use std::pin::Pin;

use futures::Stream;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::secret::Secret;

pub mod anthropic;
pub mod gemini;
pub mod keys;
pub mod names;
pub mod openai;
pub mod schema;
mod sse;

/// The providers the playground speaks to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ProviderKind {
    Anthropic,
    OpenAi,
    Gemini,
    Xai,
    /// Any server speaking OpenAI's Chat Completions at a base URL of the user's choice.
    Compatible,
}

impl ProviderKind {
    pub const ALL: [ProviderKind; 5] = [
        ProviderKind::Anthropic,
        ProviderKind::OpenAi,
        ProviderKind::Gemini,
        ProviderKind::Xai,
        ProviderKind::Compatible,
    ];

    /// The id used in the API and the key file: `anthropic`, `openai`, `gemini`, `xai`,
    /// `compatible`.
    pub fn id(self) -> &'static str {
        match self {
            ProviderKind::Anthropic => "anthropic",
            ProviderKind::OpenAi => "openai",
            ProviderKind::Gemini => "gemini",
            ProviderKind::Xai => "xai",
            ProviderKind::Compatible => "compatible",
        }
    }

    pub fn from_id(id: &str) -> Option<ProviderKind> {
        ProviderKind::ALL.into_iter().find(|kind| kind.id() == id)
    }

    /// The provider's name for people.
    pub fn title(self) -> &'static str {
        match self {
            ProviderKind::Anthropic => "Anthropic",
            ProviderKind::OpenAi => "OpenAI",
            ProviderKind::Gemini => "Google Gemini",
            ProviderKind::Xai => "xAI",
            ProviderKind::Compatible => "OpenAI-compatible",
        }
    }

    /// The base URL requests go to unless configured otherwise (`None`: the user must give one).
    pub fn default_base_url(self) -> Option<&'static str> {
        match self {
            ProviderKind::Anthropic => Some("https://api.anthropic.com"),
            ProviderKind::OpenAi => Some("https://api.openai.com/v1"),
            ProviderKind::Gemini => Some("https://generativelanguage.googleapis.com"),
            ProviderKind::Xai => Some("https://api.x.ai/v1"),
            ProviderKind::Compatible => None,
        }
    }

    /// The environment variables a key is read from, in order.
    pub fn key_variables(self) -> &'static [&'static str] {
        match self {
            ProviderKind::Anthropic => &["ANTHROPIC_API_KEY"],
            ProviderKind::OpenAi => &["OPENAI_API_KEY"],
            ProviderKind::Gemini => &["GEMINI_API_KEY", "GOOGLE_API_KEY"],
            ProviderKind::Xai => &["XAI_API_KEY"],
            ProviderKind::Compatible => &["OPENAI_COMPATIBLE_API_KEY"],
        }
    }

    /// A model to offer first.
    pub fn default_model(self) -> &'static str {
        match self {
            ProviderKind::Anthropic => "claude-sonnet-4-5",
            ProviderKind::OpenAi => "gpt-4.1",
            ProviderKind::Gemini => "gemini-2.5-flash",
            ProviderKind::Xai => "grok-4",
            ProviderKind::Compatible => "llama3.2",
        }
    }

    /// The most tools one request may carry (`None`: no published limit).
    pub fn max_tools(self) -> Option<usize> {
        match self {
            ProviderKind::OpenAi => Some(128),
            // xAI's function-calling guide: up to 200 tools.
            ProviderKind::Xai => Some(200),
            ProviderKind::Anthropic | ProviderKind::Gemini | ProviderKind::Compatible => None,
        }
    }

    /// What a tool name may look like for this provider.
    pub fn name_rule(self) -> names::NameRule {
        match self {
            ProviderKind::Gemini => names::NameRule::Gemini,
            _ => names::NameRule::Plain,
        }
    }
}

/// Where and how to reach one provider.
#[derive(Clone, Debug)]
pub struct Endpoint {
    pub kind: ProviderKind,
    /// Without a trailing slash: `https://api.openai.com/v1`, `http://127.0.0.1:11434/v1`.
    pub base_url: String,
    /// `None` for a local server that takes none.
    pub key: Option<Secret>,
}

/// One message of the neutral conversation. Tool results travel in `User` messages (as in
/// Anthropic's API); each provider's module maps roles and parts to its own shape.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Message {
    pub role: Role,
    pub content: Vec<Part>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    User,
    Assistant,
}

/// A piece of a message.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Part {
    Text {
        text: String,
    },
    /// The model asks for a tool; `name` is the name the provider was given (see [`names`]).
    ToolCall {
        id: String,
        name: String,
        arguments: Value,
    },
    /// A tool's answer to the call with the same `id`, as text.
    ToolResult {
        id: String,
        name: String,
        content: String,
        #[serde(default, rename = "isError")]
        is_error: bool,
    },
}

/// A tool offered to the model, already in the provider's terms: a name it accepts and a schema
/// it takes (see [`names::ToolNames`] and [`schema::for_provider`]).
#[derive(Clone, Debug, PartialEq)]
pub struct ToolSpec {
    pub name: String,
    pub description: String,
    pub input_schema: Value,
}

/// One request: the conversation so far and what the model may use.
#[derive(Clone, Debug)]
pub struct Request {
    pub model: String,
    pub system: Option<String>,
    pub messages: Vec<Message>,
    pub tools: Vec<ToolSpec>,
    pub max_tokens: u32,
}

/// What a streamed answer brings, in order.
#[derive(Clone, Debug, PartialEq)]
pub enum Delta {
    /// A piece of the model's text.
    Text(String),
    /// A whole tool call (its arguments gathered from the stream's pieces).
    ToolCall {
        id: String,
        name: String,
        arguments: Value,
    },
    /// The end: why the model stopped, and the tokens counted when the provider says.
    Done { stop: Stop, usage: Option<Usage> },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Stop {
    EndTurn,
    ToolUse,
    MaxTokens,
    /// Refused or filtered by the provider (safety, recitation, …).
    Refused,
    Other,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Usage {
    pub input_tokens: u64,
    pub output_tokens: u64,
}

/// The stream of one answer.
pub type Deltas = Pin<Box<dyn Stream<Item = Result<Delta, LlmError>> + Send>>;

/// Why a request failed, with the provider's own reason.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct LlmError {
    pub kind: ErrorKind,
    /// The provider's HTTP status (`None`: it was not reached, or the stream broke).
    pub status: Option<u16>,
    /// The provider's message, as it gave it (or what went wrong before reaching it).
    pub message: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    /// No key, or the key was refused (401/403).
    Auth,
    /// 429: rate or quota.
    RateLimit,
    /// The conversation does not fit the model's context.
    ContextLength,
    /// Any other 4xx: the request itself was refused.
    InvalidRequest,
    /// The provider could not be reached, answered 5xx, or broke off the stream.
    Unavailable,
}

impl fmt::Display for LlmError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.status {
            Some(status) => write!(f, "{} ({status}): {}", self.kind.describe(), self.message),
            None => write!(f, "{}: {}", self.kind.describe(), self.message),
        }
    }
}

impl std::error::Error for LlmError {}

impl ErrorKind {
    fn describe(self) -> &'static str {
        match self {
            ErrorKind::Auth => "the provider refused the key",
            ErrorKind::RateLimit => "the provider's rate limit",
            ErrorKind::ContextLength => "the conversation is too long for the model",
            ErrorKind::InvalidRequest => "the provider refused the request",
            ErrorKind::Unavailable => "the provider is unavailable",
        }
    }
}

/// Sends `request` and streams the answer, in the provider's own API.
pub async fn stream(
    http: &reqwest::Client,
    endpoint: &Endpoint,
    request: &Request,
) -> Result<Deltas, LlmError> {
    match endpoint.kind {
        ProviderKind::Anthropic => anthropic::stream(http, endpoint, request).await,
        ProviderKind::Gemini => gemini::stream(http, endpoint, request).await,
        ProviderKind::OpenAi | ProviderKind::Xai | ProviderKind::Compatible => {
            openai::stream(http, endpoint, request).await
        }
    }
}

/// The models the provider lists (`GET …/models`), by id.
pub async fn models(http: &reqwest::Client, endpoint: &Endpoint) -> Result<Vec<String>, LlmError> {
    match endpoint.kind {
        ProviderKind::Anthropic => anthropic::models(http, endpoint).await,
        ProviderKind::Gemini => gemini::models(http, endpoint).await,
        ProviderKind::OpenAi | ProviderKind::Xai | ProviderKind::Compatible => {
            openai::models(http, endpoint).await
        }
    }
}
