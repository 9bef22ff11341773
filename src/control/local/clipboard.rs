//! The clipboard: named entries (upserted) and indexed ones (a stack for push and pop), each with
//! an expiry. Expired entries are invisible and purged on the next write.

use rusqlite::{Connection, OptionalExtension, Row, Transaction, params};

use crate::control::time::now_ms;
use crate::control::{ClipboardEntry, ClipboardKey, ClipboardValue, ClipboardWrite, Result};

const COLUMNS: &str = "uuid, name, idx, value, content_type, encoding, size_bytes, visibility, \
                       created_by_tool, created_by_model, source, created_at, updated_at, expires_at";

/// Entries written through MCP, as the original marks them.
const SOURCE: &str = "mcp";

const LIVE: &str = "(expires_at IS NULL OR expires_at > ?1)";

fn from_row(row: &Row<'_>) -> rusqlite::Result<ClipboardEntry> {
    Ok(ClipboardEntry {
        uuid: row.get(0)?,
        name: row.get(1)?,
        idx: row.get(2)?,
        value: row.get(3)?,
        content_type: row.get(4)?,
        encoding: row.get(5)?,
        size_bytes: row.get(6)?,
        visibility: row.get(7)?,
        created_by_tool: row.get(8)?,
        created_by_model: row.get(9)?,
        source: row.get(10)?,
        created_at: row.get(11)?,
        updated_at: row.get(12)?,
        expires_at: row.get(13)?,
    })
}

fn purge(transaction: &Transaction<'_>, now: i64) -> Result<()> {
    transaction.execute(
        "DELETE FROM clipboard WHERE expires_at IS NOT NULL AND expires_at <= ?1",
        [now],
    )?;
    Ok(())
}

fn insert(
    transaction: &Transaction<'_>,
    name: Option<&str>,
    idx: Option<i64>,
    value: &ClipboardValue,
    now: i64,
) -> Result<ClipboardEntry> {
    let uuid = uuid::Uuid::new_v4().to_string();
    transaction.execute(
        &format!(
            "INSERT INTO clipboard ({COLUMNS})
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?12, ?13)"
        ),
        params![
            uuid,
            name,
            idx,
            value.value,
            value.content_type,
            value.encoding,
            value.value.len() as i64,
            value.visibility,
            value.created_by_tool,
            value.created_by_model,
            SOURCE,
            now,
            now.saturating_add(value.ttl_ms)
        ],
    )?;
    Ok(transaction.query_row(
        &format!("SELECT {COLUMNS} FROM clipboard WHERE uuid = ?1"),
        [&uuid],
        from_row,
    )?)
}

fn index_taken(transaction: &Transaction<'_>, idx: i64, except_name: Option<&str>) -> Result<bool> {
    Ok(transaction
        .query_row(
            "SELECT 1 FROM clipboard WHERE idx = ?1 AND (?2 IS NULL OR name IS NOT ?2)",
            params![idx, except_name],
            |_| Ok(()),
        )
        .optional()?
        .is_some())
}

pub(super) fn set(
    transaction: &Transaction<'_>,
    name: Option<String>,
    idx: Option<i64>,
    value: ClipboardValue,
) -> Result<ClipboardWrite> {
    let now = now_ms();
    purge(transaction, now)?;
    if let Some(idx) = idx
        && index_taken(transaction, idx, name.as_deref())?
    {
        return Ok(ClipboardWrite::IndexTaken(idx));
    }
    // A named entry is updated in place: it keeps its uuid and creation time.
    let updated = match &name {
        Some(name) => {
            transaction.execute(
                "UPDATE clipboard SET idx = ?2, value = ?3, content_type = ?4, encoding = ?5,
                 size_bytes = ?6, visibility = ?7, created_by_tool = ?8, created_by_model = ?9,
                 source = ?10, updated_at = ?11, expires_at = ?12
             WHERE name = ?1",
                params![
                    name,
                    idx,
                    value.value,
                    value.content_type,
                    value.encoding,
                    value.value.len() as i64,
                    value.visibility,
                    value.created_by_tool,
                    value.created_by_model,
                    SOURCE,
                    now,
                    now.saturating_add(value.ttl_ms)
                ],
            )? == 1
        }
        None => false,
    };
    let entry = if updated {
        transaction.query_row(
            &format!("SELECT {COLUMNS} FROM clipboard WHERE name = ?1"),
            [&name],
            from_row,
        )?
    } else {
        insert(transaction, name.as_deref(), idx, &value, now)?
    };
    Ok(ClipboardWrite::Saved(Box::new(entry)))
}

pub(super) fn get(connection: &Connection, key: &ClipboardKey) -> Result<Option<ClipboardEntry>> {
    let now = now_ms();
    let entry = match key {
        ClipboardKey::Name(name) => connection.query_row(
            &format!("SELECT {COLUMNS} FROM clipboard WHERE name = ?2 AND {LIVE}"),
            params![now, name],
            from_row,
        ),
        ClipboardKey::Index(idx) => connection.query_row(
            &format!("SELECT {COLUMNS} FROM clipboard WHERE idx = ?2 AND {LIVE}"),
            params![now, idx],
            from_row,
        ),
    };
    Ok(entry.optional()?)
}

pub(super) fn list(
    connection: &Connection,
    content_type: Option<&str>,
    limit: u32,
    offset: u32,
) -> Result<(Vec<ClipboardEntry>, u64)> {
    let now = now_ms();
    let filter = format!("{LIVE} AND (?2 IS NULL OR content_type = ?2)");
    let total: i64 = connection.query_row(
        &format!("SELECT count(*) FROM clipboard WHERE {filter}"),
        params![now, content_type],
        |row| row.get(0),
    )?;
    let mut statement = connection.prepare(&format!(
        "SELECT {COLUMNS} FROM clipboard WHERE {filter}
         ORDER BY name IS NULL, name, idx LIMIT ?3 OFFSET ?4"
    ))?;
    let rows = statement.query_map(params![now, content_type, limit, offset], from_row)?;
    let entries = rows.collect::<rusqlite::Result<_>>()?;
    Ok((entries, total.max(0) as u64))
}

pub(super) fn delete(transaction: &Transaction<'_>, key: Option<&ClipboardKey>) -> Result<u64> {
    let now = now_ms();
    purge(transaction, now)?;
    let deleted = match key {
        None => transaction.execute("DELETE FROM clipboard", [])?,
        Some(ClipboardKey::Name(name)) => {
            transaction.execute("DELETE FROM clipboard WHERE name = ?1", [name])?
        }
        Some(ClipboardKey::Index(idx)) => {
            transaction.execute("DELETE FROM clipboard WHERE idx = ?1", [idx])?
        }
    };
    Ok(deleted as u64)
}

pub(super) fn push(transaction: &Transaction<'_>, value: ClipboardValue) -> Result<ClipboardEntry> {
    let now = now_ms();
    purge(transaction, now)?;
    let next: i64 = transaction.query_row(
        "SELECT coalesce(max(idx) + 1, 0) FROM clipboard WHERE idx >= 0",
        [],
        |row| row.get(0),
    )?;
    let entry = insert(transaction, None, Some(next), &value, now)?;
    Ok(entry)
}

pub(super) fn pop(transaction: &Transaction<'_>) -> Result<Option<ClipboardEntry>> {
    let now = now_ms();
    purge(transaction, now)?;
    let entry = transaction
        .query_row(
            &format!(
                "SELECT {COLUMNS} FROM clipboard WHERE idx IS NOT NULL ORDER BY idx DESC LIMIT 1"
            ),
            [],
            from_row,
        )
        .optional()?;
    if let Some(entry) = &entry {
        transaction.execute("DELETE FROM clipboard WHERE uuid = ?1", [&entry.uuid])?;
    }
    Ok(entry)
}
