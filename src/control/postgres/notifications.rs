//! Notifications: created by the send tool and by failures in the activity log; expired ones are
//! hidden and purged on the next write.

use tokio_postgres::{Client, Row, Transaction};

use crate::control::time::now_ms;
use crate::control::{NewNotification, Notification, Result, Severity};

const COLUMNS: &str =
    "id, kind, title, message, severity, link, read, completed, created_at, expires_at";

fn from_row(row: &Row) -> Result<Notification> {
    let severity: String = row.try_get(4)?;
    Ok(Notification {
        id: row.try_get(0)?,
        kind: row.try_get(1)?,
        title: row.try_get(2)?,
        message: row.try_get(3)?,
        severity: Severity::parse(&severity).unwrap_or(Severity::Info),
        link: row.try_get(5)?,
        read: row.try_get(6)?,
        completed: row.try_get(7)?,
        created_at: row.try_get(8)?,
        expires_at: row.try_get(9)?,
    })
}

pub(super) async fn create(
    transaction: &Transaction<'_>,
    new: NewNotification,
) -> Result<Notification> {
    let now = now_ms();
    let notification = Notification {
        id: uuid::Uuid::new_v4().to_string(),
        kind: new.kind,
        title: new.title,
        message: new.message,
        severity: new.severity,
        link: new.link,
        read: false,
        completed: false,
        created_at: now,
        expires_at: Some(now.saturating_add(new.ttl_ms)),
    };
    transaction
        .execute(
            "DELETE FROM notifications WHERE expires_at IS NOT NULL AND expires_at <= $1",
            &[&now],
        )
        .await?;
    transaction
        .execute(
            &format!(
                "INSERT INTO notifications ({COLUMNS})
                 VALUES ($1, $2, $3, $4, $5, $6, FALSE, FALSE, $7, $8)"
            ),
            &[
                &notification.id,
                &notification.kind,
                &notification.title,
                &notification.message,
                &notification.severity.as_str(),
                &notification.link,
                &notification.created_at,
                &notification.expires_at,
            ],
        )
        .await?;
    Ok(notification)
}

pub(super) async fn list(
    client: &Client,
    only_unread: bool,
    limit: Option<u32>,
) -> Result<Vec<Notification>> {
    // `LIMIT NULL` is no limit.
    let limit = limit.map(i64::from);
    let rows = client
        .query(
            &format!(
                "SELECT {COLUMNS} FROM notifications
                 WHERE (expires_at IS NULL OR expires_at > $1) AND (NOT $2 OR NOT read)
                 ORDER BY created_at DESC, seq DESC LIMIT $3"
            ),
            &[&now_ms(), &only_unread, &limit],
        )
        .await?;
    rows.iter().map(from_row).collect()
}

pub(super) async fn complete(transaction: &Transaction<'_>, id: &str) -> Result<bool> {
    Ok(transaction
        .execute(
            "UPDATE notifications SET completed = TRUE, read = TRUE WHERE id = $1",
            &[&id],
        )
        .await?
        == 1)
}

pub(super) async fn delete(transaction: &Transaction<'_>, id: &str) -> Result<bool> {
    Ok(transaction
        .execute("DELETE FROM notifications WHERE id = $1", &[&id])
        .await?
        == 1)
}
