//! The activity log: one row per recorded request, written in batches; figures per server and
//! item computed by the database. `percentile_disc` is the nearest-rank percentile the SQLite
//! store computes in Rust, so both give the same figures.

use tokio_postgres::types::ToSql;
use tokio_postgres::{Client, Row, Transaction};

use crate::control::{
    Activity, ActivityEntry, ActivityQuery, ActivityReport, ActivityStats, Figures, RateLimited,
    Result,
};

/// Calls, errors, p50 and p95 of the rows grouped (columns in this order).
const FIGURES: &str = "count(*), count(*) FILTER (WHERE NOT success),
     percentile_disc(0.5) WITHIN GROUP (ORDER BY duration_ms),
     percentile_disc(0.95) WITHIN GROUP (ORDER BY duration_ms)";

/// [`FIGURES`] from a row, starting at column `at`.
fn figures(row: &Row, at: usize) -> Result<Figures> {
    let calls: i64 = row.try_get(at)?;
    let errors: i64 = row.try_get(at + 1)?;
    Ok(Figures {
        calls: calls.max(0) as u64,
        errors: errors.max(0) as u64,
        p50_ms: row.try_get(at + 2)?,
        p95_ms: row.try_get(at + 3)?,
    })
}

pub(super) async fn record(transaction: &Transaction<'_>, batch: &[Activity]) -> Result<()> {
    if batch.is_empty() {
        return Ok(());
    }
    // One statement for the batch: its columns as arrays, unnested into rows.
    let mut at = Vec::with_capacity(batch.len());
    let mut action = Vec::with_capacity(batch.len());
    let mut server_name = Vec::with_capacity(batch.len());
    let mut server_uuid = Vec::with_capacity(batch.len());
    let mut item = Vec::with_capacity(batch.len());
    let mut duration = Vec::with_capacity(batch.len());
    let mut success = Vec::with_capacity(batch.len());
    let mut error = Vec::with_capacity(batch.len());
    for entry in batch {
        at.push(entry.at);
        action.push(entry.action.as_str());
        server_name.push(entry.server_name.as_str());
        server_uuid.push(entry.server_uuid.as_str());
        item.push(entry.item.as_str());
        duration.push(entry.duration_ms);
        success.push(entry.success);
        error.push(entry.error.as_deref());
    }
    transaction
        .execute(
            "INSERT INTO activity
                 (at, action, server_name, server_uuid, item, duration_ms, success, error)
             SELECT * FROM unnest($1::bigint[], $2::text[], $3::text[], $4::text[], $5::text[],
                                  $6::bigint[], $7::boolean[], $8::text[])",
            &[
                &at,
                &action,
                &server_name,
                &server_uuid,
                &item,
                &duration,
                &success,
                &error,
            ],
        )
        .await?;
    Ok(())
}

pub(super) async fn stats(client: &Client, since: i64) -> Result<Vec<ActivityStats>> {
    let rows = client
        .query(
            &format!(
                "SELECT server_name, item, {FIGURES} FROM activity WHERE at >= $1
                 GROUP BY server_name, item ORDER BY server_name, item"
            ),
            &[&since],
        )
        .await?;
    rows.iter()
        .map(|row| {
            let figures = figures(row, 2)?;
            Ok(ActivityStats {
                server_name: row.try_get(0)?,
                item: row.try_get(1)?,
                calls: figures.calls,
                errors: figures.errors,
                p50_ms: figures.p50_ms,
                p95_ms: figures.p95_ms,
            })
        })
        .collect()
}

const ENTRY_COLUMNS: &str = "at, action, server_name, item, duration_ms, success, error";

fn entry(row: &Row) -> Result<ActivityEntry> {
    Ok(ActivityEntry {
        at: row.try_get(0)?,
        action: row.try_get(1)?,
        server_name: row.try_get(2)?,
        item: row.try_get(3)?,
        duration_ms: row.try_get(4)?,
        success: row.try_get(5)?,
        error: row.try_get(6)?,
    })
}

/// The activity page's report: figures per bucket, server and item grouped by the database,
/// and two bounded queries for the slowest and the failed requests.
pub(super) async fn report(client: &Client, query: &ActivityQuery) -> Result<ActivityReport> {
    let until = query.until.max(query.since + 1);
    let buckets = query.buckets.clamp(1, ActivityReport::MAX_BUCKETS);
    let bucket_ms = ((until - query.since) + i64::from(buckets) - 1) / i64::from(buckets);
    let bucket_ms = bucket_ms.max(1);
    let filter = "at >= $1 AND at < $2 AND ($3::text IS NULL OR server_name = $3)
                  AND ($4::text IS NULL OR item = $4)";
    let bind: [&(dyn ToSql + Sync); 4] = [&query.since, &until, &query.server, &query.item];
    let with = |extra: &'static (dyn ToSql + Sync)| -> Vec<&(dyn ToSql + Sync)> {
        let mut values = bind.to_vec();
        values.push(extra);
        values
    };
    let mut per_bucket = vec![Figures::default(); buckets as usize];
    let bucket_width: &(dyn ToSql + Sync) = &bucket_ms;
    let mut values = bind.to_vec();
    values.push(bucket_width);
    for row in client
        .query(
            &format!(
                "SELECT (at - $1) / $5 AS bucket, {FIGURES} FROM activity WHERE {filter}
                 GROUP BY bucket"
            ),
            &values,
        )
        .await?
    {
        let index: i64 = row.try_get(0)?;
        if let Some(bucket) = usize::try_from(index)
            .ok()
            .and_then(|index| per_bucket.get_mut(index))
        {
            *bucket = figures(&row, 1)?;
        }
    }
    let servers = client
        .query(
            &format!(
                "SELECT server_name, {FIGURES} FROM activity WHERE {filter}
                 GROUP BY server_name ORDER BY server_name"
            ),
            &bind,
        )
        .await?
        .iter()
        .map(|row| Ok((row.try_get(0)?, figures(row, 1)?)))
        .collect::<Result<Vec<_>>>()?;
    static MAX_ITEMS: i64 = ActivityReport::MAX_ITEMS as i64;
    static MAX_ENTRIES: i64 = ActivityReport::MAX_ENTRIES as i64;
    let items = client
        .query(
            &format!(
                "SELECT server_name, item, {FIGURES} FROM activity WHERE {filter}
                 GROUP BY server_name, item ORDER BY count(*) DESC, server_name, item LIMIT $5"
            ),
            &with(&MAX_ITEMS),
        )
        .await?
        .iter()
        .map(|row| Ok(((row.try_get(0)?, row.try_get(1)?), figures(row, 2)?)))
        .collect::<Result<Vec<_>>>()?;
    let slowest = client
        .query(
            &format!(
                "SELECT {ENTRY_COLUMNS} FROM activity WHERE {filter}
                 ORDER BY duration_ms DESC, at DESC, id DESC LIMIT $5"
            ),
            &with(&MAX_ENTRIES),
        )
        .await?
        .iter()
        .map(entry)
        .collect::<Result<Vec<_>>>()?;
    let failing = client
        .query(
            &format!(
                "SELECT {ENTRY_COLUMNS} FROM activity WHERE {filter} AND NOT success
                 ORDER BY at DESC, id DESC LIMIT $5"
            ),
            &with(&MAX_ENTRIES),
        )
        .await?
        .iter()
        .map(entry)
        .collect::<Result<Vec<_>>>()?;
    Ok(ActivityReport {
        bucket_ms,
        buckets: per_bucket
            .into_iter()
            .enumerate()
            .map(|(index, figures)| (query.since + index as i64 * bucket_ms, figures))
            .collect(),
        servers,
        items,
        slowest,
        failing,
    })
}

/// The requests of `[since, until)`, oldest first, `limit` at most (the export).
pub(super) async fn entries(
    client: &Client,
    since: i64,
    until: i64,
    limit: u32,
) -> Result<Vec<ActivityEntry>> {
    client
        .query(
            &format!(
                "SELECT {ENTRY_COLUMNS} FROM activity WHERE at >= $1 AND at < $2
                 ORDER BY at, id LIMIT $3"
            ),
            &[&since, &until, &i64::from(limit)],
        )
        .await?
        .iter()
        .map(entry)
        .collect()
}

pub(super) async fn prune(transaction: &Transaction<'_>, before: i64) -> Result<u64> {
    transaction
        .execute("DELETE FROM rate_limited WHERE at < $1", &[&before])
        .await?;
    Ok(transaction
        .execute("DELETE FROM activity WHERE at < $1", &[&before])
        .await?)
}

pub(super) async fn record_rate_limited(
    transaction: &Transaction<'_>,
    entry: RateLimited,
) -> Result<()> {
    transaction
        .execute(
            "INSERT INTO rate_limited (at, tool_calls, requests) VALUES ($1, $2, $3)",
            &[
                &entry.at,
                &i64::try_from(entry.tool_calls).unwrap_or(i64::MAX),
                &i64::try_from(entry.requests).unwrap_or(i64::MAX),
            ],
        )
        .await?;
    Ok(())
}

pub(super) async fn rate_limited(client: &Client, since: i64) -> Result<RateLimited> {
    let row = client
        .query_one(
            "SELECT coalesce(sum(tool_calls), 0)::bigint, coalesce(sum(requests), 0)::bigint
             FROM rate_limited WHERE at >= $1",
            &[&since],
        )
        .await?;
    let (tool_calls, requests): (i64, i64) = (row.try_get(0)?, row.try_get(1)?);
    Ok(RateLimited {
        at: since,
        tool_calls: u64::try_from(tool_calls).unwrap_or(0),
        requests: u64::try_from(requests).unwrap_or(0),
    })
}
