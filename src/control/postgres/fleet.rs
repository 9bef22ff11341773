//! The fleet's tables: `replicas` (a heartbeat by the database's clock, so replicas' clocks
//! need not agree), `sessions` (one small row per shared HTTP session) and `rate_windows` (one
//! row per rate-limit key and kind: the window's start by the database's clock, and the
//! fleet's count in it). Single statements outside the write lock: no read-then-write step
//! here needs it, and a heartbeat must not queue behind a document's ingest.

use tokio_postgres::{Client, Row};

use crate::control::Result;
use crate::control::fleet::{
    RATE_FULL_MAX, REPLICA_GONE_MS, RateCount, Replica, SessionRecord, SharedRates,
};

/// The database's clock, in milliseconds since the epoch.
const NOW_MS: &str = "(extract(epoch from clock_timestamp()) * 1000)::BIGINT";

const SESSION_COLUMNS: &str = "id, home, init, owner, anonymous, state";

fn session_from(row: &Row) -> Result<SessionRecord> {
    let owner: Option<Vec<u8>> = row.try_get(3)?;
    Ok(SessionRecord {
        id: row.try_get(0)?,
        home: row.try_get(1)?,
        init: row.try_get(2)?,
        owner: owner.and_then(|bytes| bytes.try_into().ok()),
        anonymous: row.try_get(4)?,
        state: row.try_get(5)?,
    })
}

pub(super) async fn join(client: &Client, url: &str, version: &str) -> Result<i64> {
    let row = client
        .query_one(
            &format!(
                "INSERT INTO replicas (url, version, started_at, seen_at)
                 VALUES ($1, $2, {NOW_MS}, {NOW_MS}) RETURNING id"
            ),
            &[&url, &version],
        )
        .await?;
    Ok(row.try_get(0)?)
}

pub(super) async fn beat(
    client: &Client,
    id: i64,
    url: &str,
    draining: bool,
    session_ttl_ms: i64,
) -> Result<Vec<Replica>> {
    let refreshed = client
        .execute(
            &format!("UPDATE replicas SET seen_at = {NOW_MS}, draining = $2 WHERE id = $1"),
            &[&id, &draining],
        )
        .await?;
    if refreshed == 0 {
        // Counted gone by another replica (a long pause, or the database away): back, same id.
        client
            .execute(
                &format!(
                    "INSERT INTO replicas (id, url, version, started_at, seen_at, draining)
                     OVERRIDING SYSTEM VALUE
                     VALUES ($1, $2, '', {NOW_MS}, {NOW_MS}, $3) ON CONFLICT (id) DO NOTHING"
                ),
                &[&id, &url, &draining],
            )
            .await?;
    }
    let gone = client
        .query(
            &format!("DELETE FROM replicas WHERE seen_at < {NOW_MS} - $1 RETURNING id"),
            &[&REPLICA_GONE_MS],
        )
        .await?;
    let gone: Vec<i64> = gone
        .iter()
        .map(|row| row.try_get(0))
        .collect::<std::result::Result<_, _>>()?;
    if !gone.is_empty() {
        client
            .execute(
                "UPDATE sessions SET home = NULL WHERE home = ANY($1)",
                &[&gone],
            )
            .await?;
    }
    client
        .execute(
            &format!("DELETE FROM sessions WHERE home IS NULL AND used_at < {NOW_MS} - $1"),
            &[&session_ttl_ms],
        )
        .await?;
    let rows = client
        .query("SELECT id, url, draining FROM replicas ORDER BY id", &[])
        .await?;
    rows.iter()
        .map(|row| {
            Ok(Replica {
                id: row.try_get(0)?,
                url: row.try_get(1)?,
                draining: row.try_get(2)?,
            })
        })
        .collect()
}

pub(super) async fn replica(client: &Client, id: i64) -> Result<Option<Replica>> {
    let row = client
        .query_opt(
            &format!(
                "SELECT id, url, draining FROM replicas
                 WHERE id = $1 AND seen_at >= {NOW_MS} - {REPLICA_GONE_MS}"
            ),
            &[&id],
        )
        .await?;
    row.map(|row| {
        Ok(Replica {
            id: row.try_get(0)?,
            url: row.try_get(1)?,
            draining: row.try_get(2)?,
        })
    })
    .transpose()
}

pub(super) async fn leave(client: &Client, id: i64) -> Result<()> {
    client
        .execute("DELETE FROM replicas WHERE id = $1", &[&id])
        .await?;
    client
        .execute("DELETE FROM server_owners WHERE replica = $1", &[&id])
        .await?;
    client
        .execute(
            &format!("UPDATE sessions SET home = NULL, used_at = {NOW_MS} WHERE home = $1"),
            &[&id],
        )
        .await?;
    Ok(())
}

pub(super) async fn session_key(client: &Client, fresh: &str) -> Result<String> {
    client
        .execute(
            "INSERT INTO meta (key, value) VALUES ('session_key', $1) ON CONFLICT (key) DO NOTHING",
            &[&fresh],
        )
        .await?;
    let row = client
        .query_one("SELECT value FROM meta WHERE key = 'session_key'", &[])
        .await?;
    Ok(row.try_get(0)?)
}

pub(super) async fn save_session(client: &Client, record: &SessionRecord) -> Result<()> {
    let owner = record.owner.map(|owner| owner.to_vec());
    client
        .execute(
            &format!(
                "INSERT INTO sessions ({SESSION_COLUMNS}, created_at, used_at)
                 VALUES ($1, $2, $3, $4, $5, $6, {NOW_MS}, {NOW_MS})
                 ON CONFLICT (id) DO UPDATE SET home = excluded.home, init = excluded.init,
                     owner = excluded.owner, anonymous = excluded.anonymous,
                     state = excluded.state, used_at = excluded.used_at"
            ),
            &[
                &record.id,
                &record.home,
                &record.init,
                &owner,
                &record.anonymous,
                &record.state,
            ],
        )
        .await?;
    Ok(())
}

pub(super) async fn session(client: &Client, id: &str) -> Result<Option<SessionRecord>> {
    client
        .query_opt(
            &format!("SELECT {SESSION_COLUMNS} FROM sessions WHERE id = $1"),
            &[&id],
        )
        .await?
        .as_ref()
        .map(session_from)
        .transpose()
}

pub(super) async fn adopt_session(
    client: &Client,
    id: &str,
    from: Option<i64>,
    to: i64,
) -> Result<Option<SessionRecord>> {
    client
        .query_opt(
            &format!(
                "UPDATE sessions SET home = $3, used_at = {NOW_MS}
                 WHERE id = $1 AND home IS NOT DISTINCT FROM $2
                 RETURNING {SESSION_COLUMNS}"
            ),
            &[&id, &from, &to],
        )
        .await?
        .as_ref()
        .map(session_from)
        .transpose()
}

/// A row is written only by the session's home (or by the last one, while it has none): a
/// replica that was cut off for a moment while its session was adopted elsewhere must not
/// change the adopter's row through its stale copy.
const MINE: &str = "(home = $2 OR home IS NULL)";

pub(super) async fn set_session_state(
    client: &Client,
    me: i64,
    id: &str,
    state: &str,
) -> Result<()> {
    client
        .execute(
            &format!("UPDATE sessions SET state = $3 WHERE id = $1 AND {MINE}"),
            &[&id, &me, &state],
        )
        .await?;
    Ok(())
}

pub(super) async fn bind_session(client: &Client, id: &str, owner: &[u8; 32]) -> Result<()> {
    client
        .execute(
            "UPDATE sessions SET owner = $2, anonymous = FALSE WHERE id = $1 AND owner IS NULL",
            &[&id, &owner.as_slice()],
        )
        .await?;
    Ok(())
}

/// Marks replica `me`'s sessions `ids` as used now (and takes back those left homeless while it
/// was counted gone); the ones among them whose row names another home: adopted elsewhere.
pub(super) async fn touch_sessions(
    client: &Client,
    me: i64,
    ids: &[String],
) -> Result<Vec<String>> {
    let moved = client
        .query(
            &format!(
                "WITH mine AS (
                     UPDATE sessions SET used_at = {NOW_MS}, home = $2
                     WHERE id = ANY($1) AND {MINE} RETURNING id)
                 SELECT id FROM sessions WHERE id = ANY($1) AND home <> $2"
            ),
            &[&ids, &me],
        )
        .await?;
    moved
        .iter()
        .map(|row| row.try_get(0).map_err(Into::into))
        .collect()
}

pub(super) async fn delete_sessions(client: &Client, me: i64, ids: &[String]) -> Result<()> {
    client
        .execute(
            &format!("DELETE FROM sessions WHERE id = ANY($1) AND {MINE}"),
            &[&ids, &me],
        )
        .await?;
    Ok(())
}

/// Sends each text as a notification on the fleet's channel (one statement for them all).
pub(super) async fn announce(client: &Client, texts: &[String]) -> Result<()> {
    client
        .execute(
            &format!(
                "SELECT pg_notify('{}', text) FROM unnest($1::TEXT[]) AS text",
                super::listen::FLEET
            ),
            &[&texts],
        )
        .await?;
    Ok(())
}

/// How long a rate window's row outlives its window before it is deleted: a replica whose clock
/// reading is a little behind may still add to it.
const RATE_ROW_GRACE_MS: i64 = 10_000;

/// Adds the counts to their windows and reads the totals back, in one statement: a count whose
/// window started a whole window after the row's starts the row again (the window is the row's:
/// the same on every replica); keys at their limit come back too, whoever counted them. The
/// counts go in key order, so two replicas adding the same keys lock their rows in one order.
/// Then rows over for a while are deleted, those another replica is writing skipped (never
/// waited for).
pub(super) async fn share_rate_counts(
    client: &Client,
    counts: &[RateCount],
    window_ms: i64,
    full_at: [i64; 2],
) -> Result<SharedRates> {
    let mut sorted: Vec<&RateCount> = counts.iter().collect();
    sorted.sort_by(|a, b| (a.kind, &a.key).cmp(&(b.kind, &b.key)));
    let kinds: Vec<i16> = sorted.iter().map(|count| count.kind).collect();
    let keys: Vec<&[u8]> = sorted.iter().map(|count| count.key.as_slice()).collect();
    let starts: Vec<i64> = sorted.iter().map(|count| count.started_ms).collect();
    let added: Vec<i64> = sorted.iter().map(|count| count.count).collect();
    let rows = client
        .query(
            &format!(
                "WITH clock AS (SELECT {NOW_MS} AS now, $5::BIGINT AS window_ms),
                 counts AS (
                     SELECT d.kind, d.key, least(d.started, clock.now) AS started, d.count
                     FROM unnest($1::SMALLINT[], $2::BYTEA[], $3::BIGINT[], $4::BIGINT[])
                         WITH ORDINALITY AS d(kind, key, started, count, n), clock
                     ORDER BY d.n
                 ),
                 added AS (
                     INSERT INTO rate_windows AS w (kind, key, started, count)
                     SELECT kind, key, started, count FROM counts
                     ON CONFLICT (kind, key) DO UPDATE SET
                         started = CASE WHEN excluded.started >= w.started + $5::BIGINT
                             THEN excluded.started ELSE w.started END,
                         count = CASE WHEN excluded.started >= w.started + $5::BIGINT
                             THEN excluded.count ELSE w.count + excluded.count END
                     RETURNING w.kind, w.key, w.started, w.count
                 ),
                 full_keys AS (
                     SELECT w.kind, w.key, w.started, w.count FROM rate_windows AS w, clock
                     WHERE w.started > clock.now - clock.window_ms
                         AND w.count >= CASE WHEN w.kind = 0 THEN $6::BIGINT ELSE $7::BIGINT END
                     LIMIT $8::BIGINT
                 )
                 SELECT clock.now, r.sent, r.kind, r.key, r.started, r.count
                 FROM clock LEFT JOIN (
                     SELECT TRUE AS sent, added.* FROM added
                     UNION ALL SELECT FALSE, full_keys.* FROM full_keys
                 ) AS r ON TRUE"
            ),
            &[
                &kinds,
                &keys,
                &starts,
                &added,
                &window_ms,
                &full_at[0],
                &full_at[1],
                &RATE_FULL_MAX,
            ],
        )
        .await?;
    let mut shared = SharedRates::default();
    for row in &rows {
        shared.now_ms = row.try_get(0)?;
        let Some(sent) = row.try_get::<_, Option<bool>>(1)? else {
            continue;
        };
        let count = RateCount {
            kind: row.try_get(2)?,
            key: row.try_get(3)?,
            started_ms: row.try_get(4)?,
            count: row.try_get(5)?,
        };
        if sent {
            shared.added.push(count);
        } else {
            shared.full.push(count);
        }
    }
    client
        .execute(
            &format!(
                "DELETE FROM rate_windows WHERE (kind, key) IN (
                     SELECT kind, key FROM rate_windows WHERE started < {NOW_MS} - $1
                     LIMIT 10000 FOR UPDATE SKIP LOCKED)"
            ),
            &[&(window_ms + RATE_ROW_GRACE_MS)],
        )
        .await?;
    Ok(shared)
}

pub(super) async fn server_owners(client: &Client) -> Result<Vec<(String, Replica)>> {
    let rows = client
        .query(
            &format!(
                "SELECT o.server, r.id, r.url, r.draining FROM server_owners o
                 JOIN replicas r ON r.id = o.replica
                 WHERE r.seen_at >= {NOW_MS} - {REPLICA_GONE_MS}
                 ORDER BY o.server"
            ),
            &[],
        )
        .await?;
    rows.iter()
        .map(|row| {
            Ok((
                row.try_get(0)?,
                Replica {
                    id: row.try_get(1)?,
                    url: row.try_get(2)?,
                    draining: row.try_get(3)?,
                },
            ))
        })
        .collect()
}
