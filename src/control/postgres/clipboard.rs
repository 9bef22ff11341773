//! The clipboard: named entries (upserted) and indexed ones (a stack for push and pop), each with
//! an expiry. Expired entries are invisible and purged on the next write.

use tokio_postgres::{Client, Row, Transaction};

use crate::control::time::now_ms;
use crate::control::{ClipboardEntry, ClipboardKey, ClipboardValue, ClipboardWrite, Result};

const COLUMNS: &str = "uuid, name, idx, value, content_type, encoding, size_bytes, visibility, \
     created_by_tool, created_by_model, source, created_at, updated_at, expires_at";

/// Entries written through MCP, as the original marks them.
const SOURCE: &str = "mcp";

const LIVE: &str = "(expires_at IS NULL OR expires_at > $1)";

fn from_row(row: &Row) -> Result<ClipboardEntry> {
    Ok(ClipboardEntry {
        uuid: row.try_get(0)?,
        name: row.try_get(1)?,
        idx: row.try_get(2)?,
        value: row.try_get(3)?,
        content_type: row.try_get(4)?,
        encoding: row.try_get(5)?,
        size_bytes: row.try_get(6)?,
        visibility: row.try_get(7)?,
        created_by_tool: row.try_get(8)?,
        created_by_model: row.try_get(9)?,
        source: row.try_get(10)?,
        created_at: row.try_get(11)?,
        updated_at: row.try_get(12)?,
        expires_at: row.try_get(13)?,
    })
}

async fn purge(transaction: &Transaction<'_>, now: i64) -> Result<()> {
    transaction
        .execute(
            "DELETE FROM clipboard WHERE expires_at IS NOT NULL AND expires_at <= $1",
            &[&now],
        )
        .await?;
    Ok(())
}

async fn insert(
    transaction: &Transaction<'_>,
    name: Option<&str>,
    idx: Option<i64>,
    value: &ClipboardValue,
    now: i64,
) -> Result<ClipboardEntry> {
    let uuid = uuid::Uuid::new_v4().to_string();
    let row = transaction
        .query_one(
            &format!(
                "INSERT INTO clipboard ({COLUMNS})
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $12, $13)
                 RETURNING {COLUMNS}"
            ),
            &[
                &uuid,
                &name,
                &idx,
                &value.value,
                &value.content_type,
                &value.encoding,
                &(value.value.len() as i64),
                &value.visibility,
                &value.created_by_tool,
                &value.created_by_model,
                &SOURCE,
                &now,
                &now.saturating_add(value.ttl_ms),
            ],
        )
        .await?;
    from_row(&row)
}

async fn index_taken(
    transaction: &Transaction<'_>,
    idx: i64,
    except_name: Option<&str>,
) -> Result<bool> {
    Ok(transaction
        .query_opt(
            "SELECT 1 FROM clipboard
             WHERE idx = $1 AND ($2::text IS NULL OR name IS DISTINCT FROM $2)",
            &[&idx, &except_name],
        )
        .await?
        .is_some())
}

pub(super) async fn set(
    transaction: &Transaction<'_>,
    name: Option<String>,
    idx: Option<i64>,
    value: ClipboardValue,
) -> Result<ClipboardWrite> {
    let now = now_ms();
    purge(transaction, now).await?;
    if let Some(idx) = idx
        && index_taken(transaction, idx, name.as_deref()).await?
    {
        return Ok(ClipboardWrite::IndexTaken(idx));
    }
    // A named entry is updated in place: it keeps its uuid and creation time.
    let updated = match &name {
        Some(name) => {
            transaction
                .query_opt(
                    &format!(
                        "UPDATE clipboard SET idx = $2, value = $3, content_type = $4,
                             encoding = $5, size_bytes = $6, visibility = $7,
                             created_by_tool = $8, created_by_model = $9, source = $10,
                             updated_at = $11, expires_at = $12
                         WHERE name = $1 RETURNING {COLUMNS}"
                    ),
                    &[
                        name,
                        &idx,
                        &value.value,
                        &value.content_type,
                        &value.encoding,
                        &(value.value.len() as i64),
                        &value.visibility,
                        &value.created_by_tool,
                        &value.created_by_model,
                        &SOURCE,
                        &now,
                        &now.saturating_add(value.ttl_ms),
                    ],
                )
                .await?
        }
        None => None,
    };
    let entry = match updated {
        Some(row) => from_row(&row)?,
        None => insert(transaction, name.as_deref(), idx, &value, now).await?,
    };
    Ok(ClipboardWrite::Saved(Box::new(entry)))
}

pub(super) async fn get(client: &Client, key: &ClipboardKey) -> Result<Option<ClipboardEntry>> {
    let now = now_ms();
    let row = match key {
        ClipboardKey::Name(name) => {
            client
                .query_opt(
                    &format!("SELECT {COLUMNS} FROM clipboard WHERE name = $2 AND {LIVE}"),
                    &[&now, name],
                )
                .await?
        }
        ClipboardKey::Index(idx) => {
            client
                .query_opt(
                    &format!("SELECT {COLUMNS} FROM clipboard WHERE idx = $2 AND {LIVE}"),
                    &[&now, idx],
                )
                .await?
        }
    };
    row.as_ref().map(from_row).transpose()
}

pub(super) async fn list(
    client: &Client,
    content_type: Option<&str>,
    limit: u32,
    offset: u32,
) -> Result<(Vec<ClipboardEntry>, u64)> {
    let now = now_ms();
    let filter = format!("{LIVE} AND ($2::text IS NULL OR content_type = $2)");
    let total: i64 = client
        .query_one(
            &format!("SELECT count(*) FROM clipboard WHERE {filter}"),
            &[&now, &content_type],
        )
        .await?
        .try_get(0)?;
    let rows = client
        .query(
            &format!(
                "SELECT {COLUMNS} FROM clipboard WHERE {filter}
                 ORDER BY name IS NULL, name, idx LIMIT $3 OFFSET $4"
            ),
            &[&now, &content_type, &i64::from(limit), &i64::from(offset)],
        )
        .await?;
    let entries = rows.iter().map(from_row).collect::<Result<_>>()?;
    Ok((entries, total.max(0) as u64))
}

pub(super) async fn delete(
    transaction: &Transaction<'_>,
    key: Option<&ClipboardKey>,
) -> Result<u64> {
    let now = now_ms();
    purge(transaction, now).await?;
    let deleted = match key {
        None => transaction.execute("DELETE FROM clipboard", &[]).await?,
        Some(ClipboardKey::Name(name)) => {
            transaction
                .execute("DELETE FROM clipboard WHERE name = $1", &[name])
                .await?
        }
        Some(ClipboardKey::Index(idx)) => {
            transaction
                .execute("DELETE FROM clipboard WHERE idx = $1", &[idx])
                .await?
        }
    };
    Ok(deleted)
}

pub(super) async fn push(
    transaction: &Transaction<'_>,
    value: ClipboardValue,
) -> Result<ClipboardEntry> {
    let now = now_ms();
    purge(transaction, now).await?;
    let next: i64 = transaction
        .query_one(
            "SELECT coalesce(max(idx) + 1, 0) FROM clipboard WHERE idx >= 0",
            &[],
        )
        .await?
        .try_get(0)?;
    insert(transaction, None, Some(next), &value, now).await
}

pub(super) async fn pop(transaction: &Transaction<'_>) -> Result<Option<ClipboardEntry>> {
    let now = now_ms();
    purge(transaction, now).await?;
    let row = transaction
        .query_opt(
            &format!(
                "DELETE FROM clipboard WHERE uuid = (
                     SELECT uuid FROM clipboard WHERE idx IS NOT NULL ORDER BY idx DESC LIMIT 1
                 ) RETURNING {COLUMNS}"
            ),
            &[],
        )
        .await?;
    row.as_ref().map(from_row).transpose()
}
