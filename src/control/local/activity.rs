//! The activity log: one row per recorded request, written in batches; figures per server and
//! item with percentiles computed here from the durations.

use std::collections::BTreeMap;

use rusqlite::{Connection, Transaction, params};

use crate::control::{
    Activity, ActivityEntry, ActivityQuery, ActivityReport, ActivityStats, Figures, RateLimited,
    Result,
};

pub(super) fn record(transaction: &Transaction<'_>, batch: &[Activity]) -> Result<()> {
    let mut insert = transaction.prepare_cached(
        "INSERT INTO activity
             (at, action, server_name, server_uuid, item, duration_ms, success, error)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
    )?;
    for entry in batch {
        insert.execute(params![
            entry.at,
            entry.action.as_str(),
            entry.server_name,
            entry.server_uuid,
            entry.item,
            entry.duration_ms,
            entry.success,
            entry.error
        ])?;
    }
    Ok(())
}

/// The value below which `share` of the sorted values fall (nearest rank).
fn percentile(sorted: &[i64], share: f64) -> i64 {
    if sorted.is_empty() {
        return 0;
    }
    let rank = (share * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

pub(super) fn stats(connection: &Connection, since: i64) -> Result<Vec<ActivityStats>> {
    let mut statement = connection.prepare(
        "SELECT server_name, item, duration_ms, success FROM activity WHERE at >= ?1
         ORDER BY server_name, item, duration_ms",
    )?;
    let rows = statement.query_map([since], |row| {
        Ok((
            row.get::<_, String>(0)?,
            row.get::<_, String>(1)?,
            row.get::<_, i64>(2)?,
            row.get::<_, bool>(3)?,
        ))
    })?;
    let mut groups: BTreeMap<(String, String), (Vec<i64>, u64)> = BTreeMap::new();
    for row in rows {
        let (server, item, duration, success) = row?;
        let group = groups.entry((server, item)).or_default();
        group.0.push(duration);
        group.1 += u64::from(!success);
    }
    Ok(groups
        .into_iter()
        .map(|((server_name, item), (durations, errors))| ActivityStats {
            server_name,
            item,
            calls: durations.len() as u64,
            errors,
            p50_ms: percentile(&durations, 0.50),
            p95_ms: percentile(&durations, 0.95),
        })
        .collect())
}

/// Figures of a set of durations (sorted here) with `errors` among them.
fn figures(durations: &mut [i64], errors: u64) -> Figures {
    durations.sort_unstable();
    Figures {
        calls: durations.len() as u64,
        errors,
        p50_ms: percentile(durations, 0.50),
        p95_ms: percentile(durations, 0.95),
    }
}

/// Durations and errors gathered for one group.
#[derive(Default)]
struct Gathered {
    durations: Vec<i64>,
    errors: u64,
}

impl Gathered {
    fn add(&mut self, duration: i64, success: bool) {
        self.durations.push(duration);
        self.errors += u64::from(!success);
    }

    fn figures(mut self) -> Figures {
        figures(&mut self.durations, self.errors)
    }
}

const ENTRY_COLUMNS: &str = "at, action, server_name, item, duration_ms, success, error";

fn entry(row: &rusqlite::Row<'_>) -> rusqlite::Result<ActivityEntry> {
    Ok(ActivityEntry {
        at: row.get(0)?,
        action: row.get(1)?,
        server_name: row.get(2)?,
        item: row.get(3)?,
        duration_ms: row.get(4)?,
        success: row.get(5)?,
        error: row.get(6)?,
    })
}

/// The activity page's report: one pass over the range's rows for the figures, two bounded
/// queries for the slowest and the failed requests.
pub(super) fn report(connection: &Connection, query: &ActivityQuery) -> Result<ActivityReport> {
    let until = query.until.max(query.since + 1);
    let buckets = query.buckets.clamp(1, ActivityReport::MAX_BUCKETS);
    let bucket_ms = ((until - query.since) + i64::from(buckets) - 1) / i64::from(buckets);
    let bucket_ms = bucket_ms.max(1);
    let filter = "at >= ?1 AND at < ?2 AND (?3 IS NULL OR server_name = ?3)
                  AND (?4 IS NULL OR item = ?4)";
    let bind = params![query.since, until, query.server, query.item];
    let mut per_bucket: Vec<Gathered> = (0..buckets).map(|_| Gathered::default()).collect();
    let mut per_server: BTreeMap<String, Gathered> = BTreeMap::new();
    let mut per_item: BTreeMap<(String, String), Gathered> = BTreeMap::new();
    let mut statement = connection.prepare(&format!(
        "SELECT at, server_name, item, duration_ms, success FROM activity WHERE {filter}"
    ))?;
    let mut rows = statement.query(bind)?;
    while let Some(row) = rows.next()? {
        let (at, server, item): (i64, String, String) = (row.get(0)?, row.get(1)?, row.get(2)?);
        let (duration, success): (i64, bool) = (row.get(3)?, row.get(4)?);
        let index = usize::try_from((at - query.since) / bucket_ms).unwrap_or(0);
        if let Some(bucket) = per_bucket.get_mut(index) {
            bucket.add(duration, success);
        }
        per_server
            .entry(server.clone())
            .or_default()
            .add(duration, success);
        per_item
            .entry((server, item))
            .or_default()
            .add(duration, success);
    }
    let mut items: Vec<((String, String), Figures)> = per_item
        .into_iter()
        .map(|(key, gathered)| (key, gathered.figures()))
        .collect();
    items.sort_by(|a, b| b.1.calls.cmp(&a.1.calls).then_with(|| a.0.cmp(&b.0)));
    items.truncate(ActivityReport::MAX_ITEMS);
    let limit = ActivityReport::MAX_ENTRIES as i64;
    let slowest = connection
        .prepare(&format!(
            "SELECT {ENTRY_COLUMNS} FROM activity WHERE {filter}
             ORDER BY duration_ms DESC, at DESC LIMIT ?5"
        ))?
        .query_map(
            params![query.since, until, query.server, query.item, limit],
            entry,
        )?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    let failing = connection
        .prepare(&format!(
            "SELECT {ENTRY_COLUMNS} FROM activity WHERE {filter} AND success = 0
             ORDER BY at DESC LIMIT ?5"
        ))?
        .query_map(
            params![query.since, until, query.server, query.item, limit],
            entry,
        )?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(ActivityReport {
        bucket_ms,
        buckets: per_bucket
            .into_iter()
            .enumerate()
            .map(|(index, gathered)| (query.since + index as i64 * bucket_ms, gathered.figures()))
            .collect(),
        servers: per_server
            .into_iter()
            .map(|(server, gathered)| (server, gathered.figures()))
            .collect(),
        items,
        slowest,
        failing,
    })
}

/// The requests of `[since, until)`, oldest first, `limit` at most (the export).
pub(super) fn entries(
    connection: &Connection,
    since: i64,
    until: i64,
    limit: u32,
) -> Result<Vec<ActivityEntry>> {
    let mut statement = connection.prepare(&format!(
        "SELECT {ENTRY_COLUMNS} FROM activity WHERE at >= ?1 AND at < ?2 ORDER BY at, id LIMIT ?3"
    ))?;
    let rows = statement.query_map(params![since, until, limit], entry)?;
    Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
}

pub(super) fn prune(transaction: &Transaction<'_>, before: i64) -> Result<u64> {
    transaction.execute("DELETE FROM rate_limited WHERE at < ?1", [before])?;
    Ok(transaction.execute("DELETE FROM activity WHERE at < ?1", [before])? as u64)
}

pub(super) fn record_rate_limited(transaction: &Transaction<'_>, entry: RateLimited) -> Result<()> {
    transaction.execute(
        "INSERT INTO rate_limited (at, tool_calls, requests) VALUES (?1, ?2, ?3)",
        params![
            entry.at,
            i64::try_from(entry.tool_calls).unwrap_or(i64::MAX),
            i64::try_from(entry.requests).unwrap_or(i64::MAX)
        ],
    )?;
    Ok(())
}

pub(super) fn rate_limited(connection: &Connection, since: i64) -> Result<RateLimited> {
    let (tool_calls, requests) = connection.query_row(
        "SELECT COALESCE(SUM(tool_calls), 0), COALESCE(SUM(requests), 0)
         FROM rate_limited WHERE at >= ?1",
        [since],
        |row| Ok((row.get::<_, i64>(0)?, row.get::<_, i64>(1)?)),
    )?;
    Ok(RateLimited {
        at: since,
        tool_calls: u64::try_from(tool_calls).unwrap_or(0),
        requests: u64::try_from(requests).unwrap_or(0),
    })
}

#[cfg(test)]
mod tests {
    use super::percentile;

    #[test]
    fn percentiles_use_the_nearest_rank() {
        let values: Vec<i64> = (1..=20).collect();
        assert_eq!(percentile(&values, 0.5), 10);
        assert_eq!(percentile(&values, 0.95), 19);
        assert_eq!(percentile(&[7], 0.95), 7);
        assert_eq!(percentile(&[], 0.5), 0);
    }
}
