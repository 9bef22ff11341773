//! Memory: sessions and their observations. Each observation is a memory, put in a ring by its
//! type; search is FTS5 full text (porter stemming, bm25 ranking) over the observations.

use rusqlite::{Connection, OptionalExtension, Row, Transaction, params};

use crate::control::library::ring_of;
use crate::control::time::now_ms;
use crate::control::{
    Memory, MemoryHit, MemoryQuery, MemorySession, NewObservation, ObserveOutcome, Result,
    SessionEnd,
};

const MEMORY_COLUMNS: &str = "o.uuid, o.session_uuid, o.ring_type, o.type, o.content, o.outcome, \
                              o.metadata, o.access_count, o.created_at";

fn memory_from_row(row: &Row<'_>) -> rusqlite::Result<Memory> {
    let metadata: Option<String> = row.get(6)?;
    Ok(Memory {
        uuid: row.get(0)?,
        session_uuid: row.get(1)?,
        ring_type: row.get(2)?,
        observation_type: row.get(3)?,
        content: row.get(4)?,
        outcome: row.get(5)?,
        metadata: metadata.and_then(|text| serde_json::from_str(&text).ok()),
        access_count: row.get(7)?,
        created_at: row.get(8)?,
        decay_stage: None,
        relevance_score: None,
        success_score: None,
        reinforcement_count: None,
    })
}

pub(super) fn start(
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
    transaction.execute(
        "INSERT INTO memory_sessions
             (uuid, memory_session_id, content_session_id, agent_uuid, active, started_at)
         VALUES (?1, ?2, ?3, ?4, 1, ?5)",
        params![
            session.uuid,
            session.memory_session_id,
            session.content_session_id,
            session.agent_uuid,
            session.started_at
        ],
    )?;
    Ok(session)
}

pub(super) fn end(transaction: &Transaction<'_>, memory_session_id: &str) -> Result<SessionEnd> {
    let session: Option<(String, bool)> = transaction
        .query_row(
            "SELECT uuid, active FROM memory_sessions WHERE memory_session_id = ?1",
            [memory_session_id],
            |row| Ok((row.get(0)?, row.get(1)?)),
        )
        .optional()?;
    let outcome = match session {
        None => SessionEnd::NotFound,
        Some((_, false)) => SessionEnd::AlreadyEnded,
        Some((uuid, true)) => {
            transaction.execute(
                "UPDATE memory_sessions SET active = 0, ended_at = ?2 WHERE uuid = ?1",
                params![uuid, now_ms()],
            )?;
            let observations: i64 = transaction.query_row(
                "SELECT count(*) FROM observations WHERE session_uuid = ?1",
                [&uuid],
                |row| row.get(0),
            )?;
            SessionEnd::Ended {
                observations: Some(observations.max(0) as u64),
            }
        }
    };
    Ok(outcome)
}

pub(super) fn observe(
    transaction: &Transaction<'_>,
    session_uuid: &str,
    observation: NewObservation,
) -> Result<ObserveOutcome> {
    let active: Option<bool> = transaction
        .query_row(
            "SELECT active FROM memory_sessions WHERE uuid = ?1",
            [session_uuid],
            |row| row.get(0),
        )
        .optional()?;
    let outcome = match active {
        None => ObserveOutcome::NoSession,
        Some(false) => ObserveOutcome::SessionEnded,
        Some(true) => {
            let uuid = uuid::Uuid::new_v4().to_string();
            transaction.execute(
                "INSERT INTO observations
                     (uuid, session_uuid, type, ring_type, content, outcome, metadata, created_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                params![
                    uuid,
                    session_uuid,
                    observation.kind,
                    ring_of(&observation.kind),
                    observation.content,
                    observation.outcome,
                    observation.metadata.as_ref().map(|m| m.to_string()),
                    now_ms()
                ],
            )?;
            ObserveOutcome::Recorded { uuid }
        }
    };
    Ok(outcome)
}

/// The query's words, lower-cased: FTS5 syntax in user text must not become operators.
fn terms(query: &str) -> Vec<String> {
    query
        .split(|c: char| !c.is_alphanumeric())
        .filter(|word| !word.is_empty())
        .map(str::to_lowercase)
        .collect()
}

pub(super) fn search(connection: &Connection, query: &MemoryQuery) -> Result<Vec<MemoryHit>> {
    let terms = terms(&query.query);
    if terms.is_empty() {
        return Ok(Vec::new());
    }
    let fts = terms
        .iter()
        .map(|term| format!("\"{term}\""))
        .collect::<Vec<_>>()
        .join(" OR ");
    let rings = query
        .ring_types
        .as_ref()
        .map(|rings| serde_json::to_string(rings).unwrap_or_default());
    let mut statement = connection.prepare(&format!(
        "SELECT {MEMORY_COLUMNS}, bm25(observations_fts) AS rank
         FROM observations_fts f
         JOIN observations o ON o.id = f.rowid
         JOIN memory_sessions s ON s.uuid = o.session_uuid
         WHERE observations_fts MATCH ?1
           AND (?2 IS NULL OR o.ring_type IN (SELECT value FROM json_each(?2)))
           AND (?3 IS NULL OR s.agent_uuid = ?3)
         ORDER BY rank LIMIT ?4"
    ))?;
    let rows = statement.query_map(params![fts, rings, query.agent_uuid, query.top_k], |row| {
        Ok((memory_from_row(row)?, row.get::<_, f64>(9)?))
    })?;
    let found: Vec<(Memory, f64)> = rows.collect::<rusqlite::Result<_>>()?;
    // bm25 is negative, lower is better: the best hit has relevance 1.
    let best = found.first().map_or(0.0, |(_, rank)| *rank);
    Ok(found
        .into_iter()
        .map(|(memory, rank)| {
            let relevance = if best < 0.0 {
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

pub(super) fn details(transaction: &Transaction<'_>, uuids: &[String]) -> Result<Vec<Memory>> {
    let mut found = Vec::new();
    for uuid in uuids {
        let updated = transaction.execute(
            "UPDATE observations SET access_count = access_count + 1 WHERE uuid = ?1",
            [uuid],
        )?;
        if updated == 0 {
            continue;
        }
        found.push(transaction.query_row(
            &format!("SELECT {MEMORY_COLUMNS} FROM observations o WHERE o.uuid = ?1"),
            [uuid],
            memory_from_row,
        )?);
    }
    Ok(found)
}
