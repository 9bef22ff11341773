//! The memory tools: sessions, observations, ranked full-text search and details. Locally a
//! memory is one observation, put in a ring by its type; its decay stage follows its age. The
//! App keeps its own decay stage and scores for each memory, and those are shown as it says.

use rmcp::model::JsonObject;
use serde_json::Value;

use super::{Builtins, Outcome, integer, store_error, string, text};
use crate::control::time::now_ms;
use crate::control::{Memory, MemoryQuery, NewObservation, ObserveOutcome, SessionEnd};

/// How much of a memory a search result shows.
const SUMMARY_CHARS: usize = 150;

/// The App's decay stage, or locally one that follows the memory's age.
fn decay_stage(memory: &Memory) -> &str {
    if let Some(stage) = &memory.decay_stage {
        return stage;
    }
    let age_days = (now_ms() - memory.created_at) / 86_400_000;
    match age_days {
        ..=0 => "fresh",
        1..=6 => "recent",
        7..=29 => "fading",
        _ => "faded",
    }
}

fn tags(memory: &Memory) -> Option<String> {
    let tags = memory.metadata.as_ref()?.get("tags")?.as_array()?;
    let tags: Vec<&str> = tags.iter().filter_map(Value::as_str).collect();
    (!tags.is_empty()).then(|| tags.join(", "))
}

fn percent(share: f64) -> i64 {
    (share * 100.0).round() as i64
}

pub(super) async fn start(builtins: &Builtins, args: &JsonObject) -> Outcome {
    let session = builtins
        .control
        .memory_session_start(
            string(args, "content_session_id").unwrap_or_default(),
            string(args, "agent_uuid"),
        )
        .await
        .map_err(|error| store_error("start memory session", error))?;
    Ok(text(format!(
        "Memory session started!\nSession UUID: {}\nMemory Session ID: {}\n\nUse the session UUID for pluggedin_memory_observe calls, and the memory_session_id for pluggedin_memory_session_end.",
        session.uuid, session.memory_session_id
    )))
}

pub(super) async fn end(builtins: &Builtins, args: &JsonObject) -> Outcome {
    let id = string(args, "memory_session_id").unwrap_or_default();
    match builtins.control.memory_session_end(&id).await {
        Ok(SessionEnd::Ended {
            observations: Some(observations),
        }) => Ok(text(format!(
            "Memory session ended successfully.\nZ-report: {observations} observation{} recorded in this session; they stay searchable with pluggedin_memory_search.",
            if observations == 1 { "" } else { "s" }
        ))),
        // The App makes the Z-report itself, after it answered.
        Ok(SessionEnd::Ended { observations: None }) => Ok(text(
            "Memory session ended successfully.\nZ-report generation has been triggered and will process in the background.",
        )),
        Ok(SessionEnd::AlreadyEnded) => Err(format!("Memory session {id} has already ended")),
        Ok(SessionEnd::NotFound) => Err(format!("Memory session not found: {id}")),
        Err(error) => Err(store_error("end memory session", error)),
    }
}

pub(super) async fn observe(builtins: &Builtins, args: &JsonObject) -> Outcome {
    let session = string(args, "session_uuid").unwrap_or_default();
    let kind = string(args, "type").unwrap_or_default();
    let observation = NewObservation {
        kind: kind.clone(),
        content: string(args, "content").unwrap_or_default(),
        outcome: string(args, "outcome"),
        metadata: args.get("metadata").cloned(),
    };
    match builtins.control.memory_observe(&session, observation).await {
        Ok(ObserveOutcome::Recorded { uuid }) => Ok(text(format!(
            "Observation recorded.\nUUID: {uuid}\nType: {kind}"
        ))),
        Ok(ObserveOutcome::NoSession) => Err(format!("Memory session not found: {session}")),
        Ok(ObserveOutcome::SessionEnded) => Err(format!(
            "Memory session {session} has ended; start a new one with pluggedin_memory_session_start"
        )),
        Err(error) => Err(store_error("record observation", error)),
    }
}

pub(super) async fn search(builtins: &Builtins, args: &JsonObject) -> Outcome {
    let query = string(args, "query").unwrap_or_default();
    let ring_types = args
        .get("ring_types")
        .and_then(Value::as_array)
        .map(|rings| {
            rings
                .iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect()
        });
    let hits = builtins
        .control
        .memory_search(MemoryQuery {
            query: query.clone(),
            ring_types,
            agent_uuid: string(args, "agent_uuid"),
            top_k: integer(args, "top_k").unwrap_or(10) as u32,
            include_gut: super::boolean(args, "include_gut"),
        })
        .await
        .map_err(|error| store_error("search memories", error))?;
    if hits.is_empty() {
        return Ok(text(format!("No memories found for query: \"{query}\"")));
    }
    let mut out = format!("Found {} memories for: \"{query}\"\n\n", hits.len());
    for hit in &hits {
        let memory = &hit.memory;
        let summary: String = memory.content.chars().take(SUMMARY_CHARS).collect();
        let more = memory.content.chars().count() > SUMMARY_CHARS;
        let scores = match hit.relevance {
            Some(relevance) => format!(
                "Relevance: {}% | Similarity: {}%",
                percent(relevance),
                percent(hit.similarity)
            ),
            None => format!("Similarity: {}%", percent(hit.similarity)),
        };
        out.push_str(&format!(
            "---\nUUID: {}\nRing: {} | Decay: {}\n{scores}\nSummary: {summary}{}\n",
            memory.uuid,
            memory.ring_type,
            decay_stage(memory),
            if more { "..." } else { "" }
        ));
        if let Some(tags) = tags(memory) {
            out.push_str(&format!("Tags: {tags}\n"));
        }
        out.push('\n');
    }
    out.push_str("Use pluggedin_memory_details with specific UUIDs to get full content.");
    Ok(text(out))
}

pub(super) async fn details(builtins: &Builtins, args: &JsonObject) -> Outcome {
    let uuids: Vec<String> = args
        .get("memory_uuids")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .map(str::to_owned)
        .collect();
    let memories = builtins
        .control
        .memory_details(uuids.clone())
        .await
        .map_err(|error| store_error("get memory details", error))?;
    let missing: Vec<&str> = uuids
        .iter()
        .filter(|uuid| !memories.iter().any(|memory| &memory.uuid == *uuid))
        .map(String::as_str)
        .collect();
    if memories.is_empty() {
        return Err(format!("Memory not found: {}", missing.join(", ")));
    }
    let mut out = format!("Memory Details ({} items):\n\n", memories.len());
    for memory in &memories {
        out.push_str(&format!(
            "===== {} =====\nRing: {} | Decay Stage: {}\n",
            memory.uuid,
            memory.ring_type,
            decay_stage(memory),
        ));
        if !memory.observation_type.is_empty() {
            out.push_str(&format!("Type: {}\n", memory.observation_type));
        }
        if let Some(relevance) = memory.relevance_score {
            out.push_str(&format!("Relevance: {}%\n", percent(relevance)));
        }
        match (memory.success_score, memory.outcome.as_deref()) {
            (Some(score), _) => out.push_str(&format!("Success: {}%\n", percent(score))),
            (None, Some("success")) => out.push_str("Success: 100%\n"),
            (None, Some("failure")) => out.push_str("Success: 0%\n"),
            _ => {}
        }
        out.push_str(&format!(
            "Reinforcements: {} | Accessed: {} times\n\nFull Content:\n{}\n",
            memory.reinforcement_count.unwrap_or(0),
            memory.access_count,
            memory.content
        ));
        if let Some(tags) = tags(memory) {
            out.push_str(&format!("Tags: {tags}\n"));
        }
        out.push('\n');
    }
    if !missing.is_empty() {
        out.push_str(&format!("Not found: {}\n", missing.join(", ")));
    }
    Ok(text(out.trim_end().to_owned()))
}
