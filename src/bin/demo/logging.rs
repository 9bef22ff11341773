//! Log notifications (`notifications/message`): the level a request asks for in its `_meta`, or
//! on the `initialize` lifecycle the session's `logging/setLevel`, decides what is sent. The
//! logging fixtures (`test_tool_with_logging`, `test_logging_tool`) log through it; `--hostile`'s
//! `flood` deliberately does not.

use std::time::Duration;

use pluggedin_mcp_proxy::sync::lock;
use rmcp::{RoleServer, model::*, service::RequestContext};
use serde_json::json;
use tracing::debug;

use crate::{
    server::{DemoServer, is_modern},
    tools::text_result,
};

impl DemoServer {
    /// Sends a `notifications/message` if the request's effective log level allows it:
    /// the request's `_meta` logLevel, else (legacy only) the session's `logging/setLevel`.
    #[allow(deprecated)] // logging is SEP-2577-deprecated but part of the legacy protocol
    async fn log(&self, context: &RequestContext<RoleServer>, level: LoggingLevel, message: &str) {
        let threshold = match context.meta.log_level() {
            Some(level) => level,
            None if is_modern(context) => return,
            None => lock(&self.log_level).unwrap_or(LoggingLevel::Debug),
        };
        if level_rank(level) < level_rank(threshold) {
            return;
        }
        let param = LoggingMessageNotificationParam::new(level, json!(message))
            .with_logger(&self.shared.name);
        if let Err(error) = context.peer.notify_logging_message(param).await {
            debug!(%error, "log notification not delivered");
        }
    }

    #[allow(deprecated)] // logging is SEP-2577-deprecated but part of the legacy protocol
    pub(crate) async fn tool_with_logging(
        &self,
        context: &RequestContext<RoleServer>,
    ) -> CallToolResult {
        let steps = [
            "Tool execution started",
            "Tool processing data",
            "Tool execution completed",
        ];
        for (index, step) in steps.into_iter().enumerate() {
            if index > 0 {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            self.log(context, LoggingLevel::Info, step).await;
        }
        text_result("Tool with logging executed successfully")
    }

    /// `logging/setLevel`: the session's level for requests that name none.
    #[allow(deprecated)] // logging is SEP-2577-deprecated but part of the legacy protocol
    pub(crate) fn set_log_level(&self, level: LoggingLevel) {
        *lock(&self.log_level) = Some(level);
    }
}

#[allow(deprecated)] // logging is SEP-2577-deprecated but part of the legacy protocol
fn level_rank(level: LoggingLevel) -> u8 {
    match level {
        LoggingLevel::Debug => 0,
        LoggingLevel::Info => 1,
        LoggingLevel::Notice => 2,
        LoggingLevel::Warning => 3,
        LoggingLevel::Error => 4,
        LoggingLevel::Critical => 5,
        LoggingLevel::Alert => 6,
        LoggingLevel::Emergency => 7,
    }
}
