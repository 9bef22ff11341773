//! Activity reports to the App (`/api/notifications/mcp-activity`), beside the local log.

use super::*;

/// Each entry goes to the App, with the original's body; the local log keeps them too, for
/// `stats`. Called by the recorder's writer task, never on a request's path.
pub(super) async fn record_activity(plane: &AppControl, batch: Vec<Activity>) -> Result<()> {
    let mut failed = 0usize;
    let mut last_error = None;
    for entry in &batch {
        // The original's `success` is "no exception": a tool that answered with `isError`
        // worked, and the App raises no alert for it (the local log still counts it).
        let success = entry.success || entry.tool_error;
        let mut body = json!({
            "action": entry.action.as_str(),
            "serverName": entry.server_name,
            "serverUuid": entry.server_uuid,
            "itemName": entry.item,
            "success": success,
            "executionTime": entry.duration_ms,
        });
        if let Some(error) = entry.error.as_ref().filter(|_| !success) {
            body["errorMessage"] = json!(error);
        }
        if let Err(error) = plane
            .client
            .request(
                Method::POST,
                "/api/notifications/mcp-activity",
                Some(&body),
                Call::Report,
            )
            .await
        {
            failed += 1;
            last_error = Some(error);
        }
    }
    let local = plane.local.record_activity(batch).await;
    if let Some(error) = last_error {
        tracing::warn!(failed, "activity not reported to the App: {error}");
    }
    local
}
