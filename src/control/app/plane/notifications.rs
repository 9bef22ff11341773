//! The App's notifications: create (the App sends the e-mail), list, mark done, delete.

use super::*;

pub(super) async fn create_notification(
    plane: &AppControl,
    new: NewNotification,
) -> Result<Notification> {
    // The original's body: {title?, message, severity, sendEmail}; the App sends the e-mail.
    let body = json!({
        "title": new.title,
        "message": new.message,
        "severity": new.severity.as_str(),
        "sendEmail": new.send_email,
    });
    let answer = plane
        .client
        .request(
            Method::POST,
            "/api/notifications/custom",
            Some(&body),
            Call::Slow,
        )
        .await?;
    Ok(Notification {
        id: String::new(),
        kind: new.kind,
        title: new.title,
        message: text(&answer, "message")
            .unwrap_or_else(|| "Notification sent successfully".into()),
        severity: new.severity,
        link: None,
        read: false,
        completed: false,
        created_at: now_ms(),
        expires_at: None,
    })
}

pub(super) async fn list_notifications(
    plane: &AppControl,
    only_unread: bool,
    limit: Option<u32>,
) -> Result<Vec<Notification>> {
    let mut query = Vec::new();
    if only_unread {
        query.push("onlyUnread=true".to_owned());
    }
    if let Some(limit) = limit {
        query.push(format!("limit={limit}"));
    }
    let path = if query.is_empty() {
        "/api/notifications".to_owned()
    } else {
        format!("/api/notifications?{}", query.join("&"))
    };
    let body = plane
        .client
        .request(Method::GET, &path, None, Call::Read)
        .await?;
    Ok(body
        .get("notifications")
        .and_then(Value::as_array)
        .map(|items| items.iter().map(notification_of).collect())
        .unwrap_or_default())
}

pub(super) async fn complete_notification(plane: &AppControl, id: &str) -> Result<bool> {
    if !uuid_shaped(id) {
        return Ok(false);
    }
    // The App toggles the flag; the tool promises "done" (and says it is idempotent). So a
    // notification the App already lists as completed is left alone.
    if let Ok(listed) = plane.list_notifications(false, None).await
        && listed
            .iter()
            .any(|notification| notification.id == id && notification.completed)
    {
        return Ok(true);
    }
    // The id is path-encoded (the original put it in the path as given).
    let path = format!("/api/notifications/{}/completed", encode_path(id));
    match plane
        .client
        .request(Method::PATCH, &path, Some(&json!({})), Call::Write)
        .await
    {
        Ok(_) => Ok(true),
        // 400: an id the App's stricter check (`uuid`'s `validate`) refuses.
        Err(error) if is_status(&error, 404) || is_status(&error, 400) => Ok(false),
        Err(error) => Err(error.into()),
    }
}

pub(super) async fn delete_notification(plane: &AppControl, id: &str) -> Result<bool> {
    if !uuid_shaped(id) {
        return Ok(false);
    }
    let path = format!("/api/notifications/{}", encode_path(id));
    match plane
        .client
        .request(Method::DELETE, &path, None, Call::Write)
        .await
    {
        Ok(_) => Ok(true),
        Err(error) if is_status(&error, 404) || is_status(&error, 400) => Ok(false),
        Err(error) => Err(error.into()),
    }
}
