//! Notifications: created by the send tool and by failures in the activity log; expired ones are
//! hidden and purged on the next write.

use rusqlite::{Connection, Row, Transaction, params};

use crate::control::time::now_ms;
use crate::control::{NewNotification, Notification, Result, Severity};

const COLUMNS: &str =
    "id, kind, title, message, severity, link, read, completed, created_at, expires_at";

fn from_row(row: &Row<'_>) -> rusqlite::Result<Notification> {
    let severity: String = row.get(4)?;
    Ok(Notification {
        id: row.get(0)?,
        kind: row.get(1)?,
        title: row.get(2)?,
        message: row.get(3)?,
        severity: Severity::parse(&severity).unwrap_or(Severity::Info),
        link: row.get(5)?,
        read: row.get(6)?,
        completed: row.get(7)?,
        created_at: row.get(8)?,
        expires_at: row.get(9)?,
    })
}

pub(super) fn create(transaction: &Transaction<'_>, new: NewNotification) -> Result<Notification> {
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
    transaction.execute(
        "DELETE FROM notifications WHERE expires_at IS NOT NULL AND expires_at <= ?1",
        [now],
    )?;
    transaction.execute(
        &format!(
            "INSERT INTO notifications ({COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, 0, 0, ?7, ?8)"
        ),
        params![
            notification.id,
            notification.kind,
            notification.title,
            notification.message,
            notification.severity.as_str(),
            notification.link,
            notification.created_at,
            notification.expires_at
        ],
    )?;
    Ok(notification)
}

pub(super) fn list(
    connection: &Connection,
    only_unread: bool,
    limit: Option<u32>,
) -> Result<Vec<Notification>> {
    let mut statement = connection.prepare(&format!(
        "SELECT {COLUMNS} FROM notifications
         WHERE (expires_at IS NULL OR expires_at > ?1) AND (?2 = 0 OR read = 0)
         ORDER BY created_at DESC, rowid DESC LIMIT ?3"
    ))?;
    let limit = limit.map_or(-1, i64::from);
    let rows = statement.query_map(params![now_ms(), only_unread, limit], from_row)?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

pub(super) fn complete(transaction: &Transaction<'_>, id: &str) -> Result<bool> {
    Ok(transaction.execute(
        "UPDATE notifications SET completed = 1, read = 1 WHERE id = ?1",
        [id],
    )? == 1)
}

pub(super) fn delete(transaction: &Transaction<'_>, id: &str) -> Result<bool> {
    Ok(transaction.execute("DELETE FROM notifications WHERE id = ?1", [id])? == 1)
}
