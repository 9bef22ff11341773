//! The App's memory: sessions, observations, search and details, as the App answers them.

use super::*;

pub(super) async fn memory_session_start(
    plane: &AppControl,
    content_session_id: String,
    agent_uuid: Option<String>,
) -> Result<MemorySession> {
    let mut body = json!({"content_session_id": content_session_id});
    if let Some(agent) = &agent_uuid {
        body["agent_uuid"] = json!(agent);
    }
    let answer = data(
        plane
            .call(
                Method::POST,
                "/api/memory/sessions",
                Some(body),
                Call::Write,
            )
            .await?,
    );
    Ok(MemorySession {
        uuid: text(&answer, "uuid").unwrap_or_default(),
        memory_session_id: text(&answer, "memorySessionId").unwrap_or_default(),
        content_session_id,
        agent_uuid,
        active: true,
        started_at: now_ms(),
        ended_at: None,
    })
}

pub(super) async fn memory_session_end(
    plane: &AppControl,
    memory_session_id: &str,
) -> Result<SessionEnd> {
    let path = format!("/api/memory/sessions/{}", encode_path(memory_session_id));
    match plane
        .client
        .request(
            Method::PATCH,
            &path,
            Some(&json!({"action": "end"})),
            Call::Write,
        )
        .await
    {
        // `{success, data: {uuid}}`: the App says nothing of the observations.
        Ok(_) => Ok(SessionEnd::Ended { observations: None }),
        Err(error) if is_status(&error, 404) => Ok(SessionEnd::NotFound),
        // A session the key owns that does not end has ended already: `endSession` only
        // ends active ones, and answers `200 {success: false}` otherwise.
        Err(error @ AppError::Refused { .. })
            if error
                .detail()
                .is_some_and(|detail| detail.contains("already ended")) =>
        {
            Ok(SessionEnd::AlreadyEnded)
        }
        Err(error) => Err(error.into()),
    }
}

pub(super) async fn memory_observe(
    plane: &AppControl,
    session_uuid: &str,
    observation: NewObservation,
) -> Result<ObserveOutcome> {
    let mut body = json!({"type": observation.kind, "content": observation.content});
    if let Some(outcome) = observation.outcome {
        body["outcome"] = json!(outcome);
    }
    if let Some(metadata) = observation.metadata {
        body["metadata"] = metadata;
    }
    let path = format!(
        "/api/memory/sessions/{}/observations",
        encode_path(session_uuid)
    );
    match plane
        .client
        .request(Method::POST, &path, Some(&body), Call::Write)
        .await
    {
        Ok(answer) => Ok(ObserveOutcome::Recorded {
            uuid: text(&data(answer), "uuid").unwrap_or_else(|| "recorded".into()),
        }),
        Err(error) if is_status(&error, 404) => Ok(ObserveOutcome::NoSession),
        Err(error)
            if is_status(&error, 400)
                && error
                    .detail()
                    .is_some_and(|detail| detail.to_ascii_lowercase().contains("not active")) =>
        {
            Ok(ObserveOutcome::SessionEnded)
        }
        Err(error) => Err(error.into()),
    }
}

pub(super) async fn memory_search(
    plane: &AppControl,
    query: MemoryQuery,
) -> Result<Vec<MemoryHit>> {
    let mut body =
        json!({"query": query.query, "top_k": query.top_k, "include_gut": query.include_gut});
    if let Some(rings) = query.ring_types {
        body["ring_types"] = json!(rings);
    }
    if let Some(agent) = query.agent_uuid {
        body["agent_uuid"] = json!(agent);
    }
    let answer = data(
        plane
            .call(Method::POST, "/api/memory/search", Some(body), Call::Read)
            .await?,
    );
    Ok(answer
        .as_array()
        .map(|items| {
            items
                .iter()
                .map(|item| {
                    // Layer 1 of the App's search: `similarity` and `decayStage`, no relevance.
                    MemoryHit {
                        memory: memory_of(item),
                        relevance: item.get("relevanceScore").and_then(Value::as_f64),
                        similarity: item
                            .get("similarity")
                            .and_then(Value::as_f64)
                            .unwrap_or(0.0),
                    }
                })
                .collect()
        })
        .unwrap_or_default())
}

pub(super) async fn memory_details(plane: &AppControl, uuids: Vec<String>) -> Result<Vec<Memory>> {
    let answer = data(
        plane
            .call(
                Method::POST,
                "/api/memory/search/details",
                Some(json!({"memory_uuids": uuids})),
                Call::Read,
            )
            .await?,
    );
    Ok(answer
        .as_array()
        .map(|items| items.iter().map(memory_of).collect())
        .unwrap_or_default())
}
