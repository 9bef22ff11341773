//! The activity log: one row per recorded request, written in batches; figures per server and
//! item with percentiles computed here from the durations.

use std::collections::BTreeMap;

use rusqlite::{Connection, Transaction, params};

use crate::control::{Activity, ActivityStats, RateLimited, Result};

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
