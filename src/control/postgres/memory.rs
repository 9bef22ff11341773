//! Memory: sessions and their observations. Each observation is a memory, put in a ring by its
//! type; search is PostgreSQL full text (the `english` configuration, a stemmer like SQLite's
//! porter) over the observations, ranked by `ts_rank_cd`, ties broken by the order recorded.

use tokio_postgres::{Client, Row, Transaction};

use crate::control::library::ring_of;
use crate::control::time::now_ms;
use crate::control::{
    Memory, MemoryHit, MemoryQuery, MemorySession, NewObservation, ObserveOutcome, Result,
    SessionEnd,
};

const MEMORY_COLUMNS: &str = "o.uuid, o.session_uuid, o.ring_type, o.type, o.content, o.outcome, \
                              o.metadata, o.access_count, o.created_at";

fn memory_from_row(row: &Row) -> Result<Memory> {
    let metadata: Option<String> = row.try_get(6)?;
    Ok(Memory {
        uuid: row.try_get(0)?,
        session_uuid: row.try_get(1)?,
        ring_type: row.try_get(2)?,
        observation_type: row.try_get(3)?,
        content: row.try_get(4)?,
        outcome: row.try_get(5)?,
        metadata: metadata.and_then(|text| serde_json::from_str(&text).ok()),
        access_count: row.try_get(7)?,
        created_at: row.try_get(8)?,
        decay_stage: None,
        relevance_score: None,
        success_score: None,
        reinforcement_count: None,
    })
}

pub(super) async fn start(
    transaction: &Transaction<'_>,
    content_session_id: String,
    agent_uuid: Option<String>,
) -> Result<MemorySession> {
    let session = MemorySession {
        uuid: uuid::Uuid::new_v4().to_string(),
        memory_session_id: format!("ms_{}", uuid::Uuid::new_v4().simple()),
        content_session_id,
        agent_uuid,
        active: true,
        started_at: now_ms(),
        ended_at: None,
    };
    transaction
        .execute(
            "INSERT INTO memory_sessions
                 (uuid, memory_session_id, content_session_id, agent_uuid, active, started_at)
             VALUES ($1, $2, $3, $4, TRUE, $5)",
            &[
                &session.uuid,
                &session.memory_session_id,
                &session.content_session_id,
                &session.agent_uuid,
                &session.started_at,
            ],
        )
        .await?;
    Ok(session)
}

pub(super) async fn end(
    transaction: &Transaction<'_>,
    memory_session_id: &str,
) -> Result<SessionEnd> {
    let session = transaction
        .query_opt(
            "SELECT uuid, active FROM memory_sessions WHERE memory_session_id = $1",
            &[&memory_session_id],
        )
        .await?;
    let Some(session) = session else {
        return Ok(SessionEnd::NotFound);
    };
    let (uuid, active): (String, bool) = (session.try_get(0)?, session.try_get(1)?);
    if !active {
        return Ok(SessionEnd::AlreadyEnded);
    }
    transaction
        .execute(
            "UPDATE memory_sessions SET active = FALSE, ended_at = $2 WHERE uuid = $1",
            &[&uuid, &now_ms()],
        )
        .await?;
    let observations: i64 = transaction
        .query_one(
            "SELECT count(*) FROM observations WHERE session_uuid = $1",
            &[&uuid],
        )
        .await?
        .try_get(0)?;
    Ok(SessionEnd::Ended {
        observations: Some(observations.max(0) as u64),
    })
}

pub(super) async fn observe(
    transaction: &Transaction<'_>,
    session_uuid: &str,
    observation: NewObservation,
) -> Result<ObserveOutcome> {
    let active = transaction
        .query_opt(
            "SELECT active FROM memory_sessions WHERE uuid = $1",
            &[&session_uuid],
        )
        .await?;
    let Some(active) = active else {
        return Ok(ObserveOutcome::NoSession);
    };
    if !active.try_get::<_, bool>(0)? {
        return Ok(ObserveOutcome::SessionEnded);
    }
    let uuid = uuid::Uuid::new_v4().to_string();
    transaction
        .execute(
            "INSERT INTO observations
                 (uuid, session_uuid, type, ring_type, content, outcome, metadata, created_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
            &[
                &uuid,
                &session_uuid,
                &observation.kind,
                &ring_of(&observation.kind),
                &observation.content,
                &observation.outcome,
                &observation.metadata.as_ref().map(|m| m.to_string()),
                &now_ms(),
            ],
        )
        .await?;
    Ok(ObserveOutcome::Recorded { uuid })
}

/// The query's words, lower-cased: only letters and digits reach `to_tsquery`, each quoted, so
/// nothing in user text becomes an operator.
fn terms(query: &str) -> Vec<String> {
    query
        .split(|c: char| !c.is_alphanumeric())
        .filter(|word| !word.is_empty())
        .map(str::to_lowercase)
        .collect()
}

pub(super) async fn search(client: &Client, query: &MemoryQuery) -> Result<Vec<MemoryHit>> {
    let terms = terms(&query.query);
    if terms.is_empty() {
        return Ok(Vec::new());
    }
    let any = terms
        .iter()
        .map(|term| format!("'{term}'"))
        .collect::<Vec<_>>()
        .join(" | ");
    let rows = client
        .query(
            &format!(
                "SELECT {MEMORY_COLUMNS}, ts_rank_cd(o.search, q) AS rank
                 FROM observations o
                 JOIN memory_sessions s ON s.uuid = o.session_uuid,
                      to_tsquery('english', $1) q
                 WHERE o.search @@ q
                   AND ($2::text[] IS NULL OR o.ring_type = ANY ($2))
                   AND ($3::text IS NULL OR s.agent_uuid = $3)
                 ORDER BY rank DESC, o.id LIMIT $4"
            ),
            &[
                &any,
                &query.ring_types,
                &query.agent_uuid,
                &i64::from(query.top_k),
            ],
        )
        .await?;
    let mut found = Vec::with_capacity(rows.len());
    for row in &rows {
        let rank: f32 = row.try_get(9)?;
        found.push((memory_from_row(row)?, f64::from(rank)));
    }
    // Higher is better: the best hit has relevance 1.
    let best = found.first().map_or(0.0, |(_, rank)| *rank);
    Ok(found
        .into_iter()
        .map(|(memory, rank)| {
            let relevance = if best > 0.0 {
                (rank / best).clamp(0.0, 1.0)
            } else {
                1.0
            };
            let content = memory.content.to_lowercase();
            let matched = terms
                .iter()
                .filter(|term| content.contains(term.as_str()))
                .count();
            MemoryHit {
                similarity: matched as f64 / terms.len() as f64,
                relevance: Some(relevance),
                memory,
            }
        })
        .collect())
}

pub(super) async fn details(
    transaction: &Transaction<'_>,
    uuids: &[String],
) -> Result<Vec<Memory>> {
    let mut found = Vec::new();
    for uuid in uuids {
        let row = transaction
            .query_opt(
                &format!(
                    "UPDATE observations o SET access_count = access_count + 1
                     WHERE o.uuid = $1 RETURNING {MEMORY_COLUMNS}"
                ),
                &[uuid],
            )
            .await?;
        if let Some(row) = row {
            found.push(memory_from_row(&row)?);
        }
    }
    Ok(found)
}
