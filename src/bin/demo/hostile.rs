//! `--hostile`: tools that behave like a hostile server, for the proxy's security tests. One has
//! control and bidi characters in its name and description, `flood` sends log notifications as
//! fast as it can, and `big` answers with as many bytes of text as asked. They appear in the
//! catalog and answer only with the switch on.

use rmcp::{
    RoleServer, handler::server::common::schema_for_empty_input, model::*, schemars::JsonSchema,
    service::RequestContext,
};
use serde::Deserialize;
use serde_json::json;

use crate::{catalog::input_schema, tools::text_result};

/// The hostile tool's name: a bell and an escape sequence in it.
pub(crate) const HOSTILE_TOOL: &str = "bell\u{7}\u{1b}[31mtool";

#[derive(Deserialize, JsonSchema)]
pub(crate) struct FloodArgs {
    /// How many log notifications to send.
    pub(crate) count: u32,
}

#[derive(Deserialize, JsonSchema)]
pub(crate) struct BigArgs {
    /// How many bytes of text to answer with.
    pub(crate) bytes: usize,
}

/// The hostile tools, in `tools/list` order.
pub(crate) fn tools() -> [Tool; 3] {
    [
        Tool::new(
            HOSTILE_TOOL,
            "Rings\u{1b}[31m red\u{0} and \u{202e}reversed\u{202c} text\u{200b}",
            schema_for_empty_input(),
        ),
        Tool::new(
            "flood",
            "Sends `count` log notifications as fast as it can",
            input_schema::<FloodArgs>(),
        ),
        Tool::new(
            "big",
            "Answers with `bytes` bytes of text",
            input_schema::<BigArgs>(),
        ),
    ]
}

/// `flood`: sends `count` log notifications without waiting for anything between them.
#[allow(deprecated)] // logging is SEP-2577-deprecated but part of the legacy protocol
pub(crate) async fn flood(context: &RequestContext<RoleServer>, count: u32) -> CallToolResult {
    let mut sent = 0;
    for index in 0..count {
        let param = LoggingMessageNotificationParam::new(
            LoggingLevel::Info,
            json!(format!("flood {index}")),
        );
        if context.peer.notify_logging_message(param).await.is_err() {
            break;
        }
        sent += 1;
    }
    text_result(format!("sent {sent}"))
}
