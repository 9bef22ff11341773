//! The notification tools: send (with optional e-mail), list, mark done, delete.

use rmcp::model::JsonObject;

use super::{Builtins, Outcome, boolean, integer, store_error, string, text};
use crate::control::{NewNotification, Severity};

/// How long a custom notification lives, as in the App.
const CUSTOM_TTL_MS: i64 = 30 * 86_400_000;
/// The App's title when none is given.
const DEFAULT_TITLE: &str = "Custom notification";

pub(super) async fn send(builtins: &Builtins, args: &JsonObject) -> Outcome {
    // The wire schema (the original's) has no minLength; its validation did refuse "".
    let message = string(args, "message").unwrap_or_default();
    if message.is_empty() {
        return Err(
            "Invalid arguments for pluggedin_send_notification: \"message\" must not be empty"
                .into(),
        );
    }
    let title = string(args, "title")
        .filter(|title| !title.trim().is_empty())
        .unwrap_or_else(|| DEFAULT_TITLE.into());
    let severity = string(args, "severity")
        .and_then(|severity| Severity::parse(&severity))
        .unwrap_or(Severity::Info);
    let notification = builtins
        .control
        .create_notification(NewNotification {
            kind: "CUSTOM".into(),
            title,
            message,
            severity,
            link: None,
            ttl_ms: CUSTOM_TTL_MS,
            send_email: boolean(args, "sendEmail"),
        })
        .await
        .map_err(|error| store_error("create the notification", error))?;
    if builtins.control.sends_email() {
        // The App created it (and sent the e-mail if asked) and said how it went.
        return Ok(text(notification.message));
    }
    if !boolean(args, "sendEmail") {
        return Ok(text("Notification created successfully"));
    }
    let Some(mailer) = &builtins.mailer else {
        return Ok(text(
            "Notification created successfully. No email was sent: SMTP is not configured \
             (set \"smtp\" in the config file or the PLUGGEDIN_SMTP_* environment variables).",
        ));
    };
    Ok(text(match mailer.send(&notification).await {
        Ok(()) => "Notification created and email sent".to_owned(),
        Err(error) => {
            tracing::warn!("notification email not sent: {error}");
            format!("Notification created (email failed: {error})")
        }
    }))
}

pub(super) async fn list(builtins: &Builtins, args: &JsonObject) -> Outcome {
    let only_unread = boolean(args, "onlyUnread");
    let limit = integer(args, "limit").map(|limit| limit as u32);
    let notifications = builtins
        .control
        .list_notifications(only_unread, limit)
        .await
        .map_err(|error| store_error("list notifications", error))?;
    let count = notifications.len();
    let mut out = format!(
        "Found {count} notification{}{}:\n\n",
        if count == 1 { "" } else { "s" },
        if only_unread { " (unread only)" } else { "" }
    );
    if notifications.is_empty() {
        out.push_str("No notifications found.");
        return Ok(text(out));
    }
    for (index, n) in notifications.iter().enumerate() {
        out.push_str(&format!(
            "{}. **{}**\n   ID: {} (use this ID for operations)\n   Type: {} | Severity: {}\n   Status: {}{}\n   Created: {}\n   Message: {}\n",
            index + 1,
            n.title,
            n.id,
            n.kind,
            n.severity.as_str(),
            if n.read { "Read" } else { "Unread" },
            if n.completed { " | Completed" } else { "" },
            crate::control::time::locale(n.created_at),
            n.message,
        ));
        if let Some(link) = &n.link {
            out.push_str(&format!("   Link: {link}\n"));
        }
        out.push('\n');
    }
    out.push_str(
        "💡 **Tip**: Use the UUID shown in the ID field when marking as read or deleting notifications.",
    );
    Ok(text(out))
}

pub(super) async fn mark_done(builtins: &Builtins, args: &JsonObject) -> Outcome {
    let id = notification_id(args)?;
    match builtins.control.complete_notification(&id).await {
        Ok(true) => Ok(text("Notification marked as done")),
        Ok(false) => Err(format!("Notification not found: {id}")),
        Err(error) => Err(store_error("mark the notification as done", error)),
    }
}

pub(super) async fn delete(builtins: &Builtins, args: &JsonObject) -> Outcome {
    let id = notification_id(args)?;
    match builtins.control.delete_notification(&id).await {
        Ok(true) => Ok(text("Notification deleted successfully")),
        Ok(false) => Err(format!("Notification not found: {id}")),
        Err(error) => Err(store_error("delete the notification", error)),
    }
}

fn notification_id(args: &JsonObject) -> Result<String, String> {
    match string(args, "notificationId") {
        Some(id) if !id.trim().is_empty() => Ok(id),
        _ => Err("Invalid arguments: \"notificationId\" must not be empty".into()),
    }
}
