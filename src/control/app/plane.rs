//! [`AppControl`]: the [`ControlPlane`] on the plugged.in App's HTTP API. The built-in tools'
//! data (notifications, clipboard, memory, documents), the knowledge base and discovery go to the
//! App with the original proxy's request bodies; activity is reported to
//! `/api/notifications/mcp-activity`. What the App does not hold — the operator's settings and
//! workspaces, the activity statistics of `stats`, the catalog cache — stays in the local store.

use std::sync::Arc;

use reqwest::Method;
use serde_json::{Map, Value, json};

use super::client::{AppClient, AppError, Call, encode};
use crate::control::time::{now_ms, parse_iso};
use crate::control::{
    Activity, ActivityStats, CachedServer, ClipboardEntry, ClipboardKey, ClipboardValue,
    ClipboardWrite, ControlError, ControlPlane, Document, DocumentCreate, DocumentHit,
    DocumentList, DocumentSearch, DocumentSort, DocumentUpdate, DocumentVersion, KnowledgeAnswer,
    Memory, MemoryHit, MemoryQuery, MemorySession, ModelInfo, NewDocument, NewNotification,
    NewObservation, Notification, ObserveOutcome, RateLimited, Result, SessionEnd, Settings,
    Severity, UpdateOperation, Workspace, local::LocalStore,
};

/// What a create or update that timed out may have done, in its error.
const CREATE_UNCONFIRMED: &str = "the document may have been created anyway: look for it \
     (pluggedin_list_documents) before creating it again";
const UPDATE_UNCONFIRMED: &str = "the update may have been applied anyway: look at the \
     document (pluggedin_get_document) before sending it again";

/// The App as the control plane, with the local store for what stays local.
pub struct AppControl {
    client: AppClient,
    local: LocalStore,
    servers: Arc<dyn Fn() -> Arc<super::AppServers> + Send + Sync>,
}

impl AppControl {
    /// `servers` gives the App's current server list (for server UUIDs).
    pub fn new(
        client: AppClient,
        local: LocalStore,
        servers: Arc<dyn Fn() -> Arc<super::AppServers> + Send + Sync>,
    ) -> AppControl {
        AppControl {
            client,
            local,
            servers,
        }
    }

    async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
        kind: Call,
    ) -> Result<Value> {
        Ok(self
            .client
            .request(method, path, body.as_ref(), kind)
            .await?)
    }
}

impl From<AppError> for ControlError {
    fn from(error: AppError) -> ControlError {
        ControlError::App(error)
    }
}

fn text(value: &Value, key: &str) -> Option<String> {
    value.get(key).and_then(Value::as_str).map(str::to_owned)
}

fn number(value: &Value, key: &str) -> Option<i64> {
    value
        .get(key)
        .and_then(|v| v.as_i64().or_else(|| v.as_f64().map(|f| f as i64)))
}

fn time(value: &Value, key: &str) -> Option<i64> {
    match value.get(key)? {
        Value::String(text) => parse_iso(text),
        Value::Number(number) => number.as_i64(),
        _ => None,
    }
}

/// The `data` of `{success, data}`, or the body itself.
fn data(body: Value) -> Value {
    match body {
        Value::Object(mut map) if map.contains_key("data") => {
            map.remove("data").unwrap_or(Value::Null)
        }
        other => other,
    }
}

fn is_status(error: &AppError, status: u16) -> bool {
    error.status() == Some(status)
}

/// A create or update whose answer never came: the error says it may have been done.
fn unconfirmed(error: AppError, consequence: &'static str) -> ControlError {
    if error.maybe_done() {
        ControlError::AppUnconfirmed { error, consequence }
    } else {
        ControlError::App(error)
    }
}

/// Whether `id` has the shape of a UUID, which the App's notification routes check first (and
/// refuse with 400 otherwise): such an id names no notification.
fn uuid_shaped(id: &str) -> bool {
    id.len() == 36 && uuid::Uuid::try_parse(id).is_ok()
}

fn notification_of(value: &Value) -> Notification {
    Notification {
        id: text(value, "id").unwrap_or_default(),
        kind: text(value, "type").unwrap_or_default(),
        title: text(value, "title").unwrap_or_default(),
        message: text(value, "message").unwrap_or_default(),
        severity: text(value, "severity")
            .and_then(|s| Severity::parse(&s))
            .unwrap_or(Severity::Info),
        link: text(value, "link"),
        read: value.get("read").and_then(Value::as_bool).unwrap_or(false),
        completed: value
            .get("completed")
            .and_then(Value::as_bool)
            .unwrap_or(false),
        created_at: time(value, "created_at").unwrap_or_default(),
        expires_at: time(value, "expires_at"),
    }
}

fn clipboard_of(value: &Value) -> ClipboardEntry {
    ClipboardEntry {
        uuid: text(value, "uuid").unwrap_or_default(),
        name: text(value, "name"),
        idx: number(value, "idx"),
        value: text(value, "value").unwrap_or_default(),
        content_type: text(value, "contentType").unwrap_or_else(|| "text/plain".into()),
        encoding: text(value, "encoding").unwrap_or_else(|| "utf-8".into()),
        size_bytes: number(value, "sizeBytes").unwrap_or_default(),
        visibility: text(value, "visibility").unwrap_or_else(|| "private".into()),
        created_by_tool: text(value, "createdByTool"),
        created_by_model: text(value, "createdByModel"),
        source: text(value, "source").unwrap_or_else(|| "mcp".into()),
        created_at: time(value, "createdAt").unwrap_or_default(),
        updated_at: time(value, "updatedAt").unwrap_or_default(),
        expires_at: time(value, "expiresAt"),
    }
}

/// The body of a clipboard write, as the original sends it (`source: "mcp"` added).
fn clipboard_body(name: Option<String>, idx: Option<i64>, value: ClipboardValue) -> Value {
    let mut body = Map::new();
    if let Some(name) = name {
        body.insert("name".into(), json!(name));
    }
    if let Some(idx) = idx {
        body.insert("idx".into(), json!(idx));
    }
    body.insert("value".into(), json!(value.value));
    body.insert("contentType".into(), json!(value.content_type));
    body.insert("encoding".into(), json!(value.encoding));
    body.insert("visibility".into(), json!(value.visibility));
    if let Some(tool) = value.created_by_tool {
        body.insert("createdByTool".into(), json!(tool));
    }
    if let Some(model) = value.created_by_model {
        body.insert("createdByModel".into(), json!(model));
    }
    body.insert("ttlSeconds".into(), json!(value.ttl_ms / 1000));
    body.insert("source".into(), json!("mcp"));
    Value::Object(body)
}

fn model_of(value: Option<&Value>) -> Option<ModelInfo> {
    let value = value?;
    Some(ModelInfo {
        name: text(value, "name")?,
        provider: text(value, "provider").unwrap_or_default(),
        version: text(value, "version"),
    })
}

fn model_json(model: &ModelInfo) -> Value {
    serde_json::to_value(model).unwrap_or(Value::Null)
}

fn document_of(value: &Value) -> Document {
    let ai_metadata = value
        .get("aiMetadata")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    let model = model_of(ai_metadata.get("model"));
    let mut extra = ai_metadata.clone();
    extra.remove("model");
    Document {
        id: text(value, "id").unwrap_or_default(),
        title: text(value, "title").unwrap_or_default(),
        description: text(value, "description"),
        content: text(value, "content").unwrap_or_default(),
        format: text(value, "mimeType")
            .map(|mime| match mime.as_str() {
                "text/markdown" => "md".to_owned(),
                "application/json" => "json".to_owned(),
                "text/html" => "html".to_owned(),
                _ => "txt".to_owned(),
            })
            .unwrap_or_else(|| "md".to_owned()),
        tags: value
            .get("tags")
            .and_then(Value::as_array)
            .map(|tags| {
                tags.iter()
                    .filter_map(|tag| tag.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default(),
        category: text(value, "category").unwrap_or_else(|| "other".into()),
        source: text(value, "source").unwrap_or_default(),
        visibility: text(value, "visibility").unwrap_or_else(|| "private".into()),
        model,
        ai_metadata: extra,
        parent_id: text(value, "parentDocumentId"),
        file_name: text(value, "fileName"),
        content_hash: text(value, "contentHash").unwrap_or_default(),
        size_bytes: number(value, "fileSize").unwrap_or_default(),
        version: number(value, "version").unwrap_or(1),
        created_at: time(value, "createdAt").unwrap_or_default(),
        updated_at: time(value, "updatedAt").unwrap_or_default(),
        updated_by: model_of(ai_metadata.get("lastUpdatedBy")),
        change_summary: ai_metadata
            .get("changeSummary")
            .and_then(Value::as_str)
            .map(str::to_owned),
        update_reason: ai_metadata
            .get("updateReason")
            .and_then(Value::as_str)
            .map(str::to_owned),
        changes_from_prompt: ai_metadata
            .get("changesFromPrompt")
            .and_then(Value::as_str)
            .map(str::to_owned),
    }
}

/// The query of `GET /api/documents` (§8.5): filters when set, then sort, limit, offset.
fn filter_query(query: &mut Vec<(String, String)>, list: &DocumentList, with_source: bool) {
    let filter = &list.filter;
    if with_source {
        query.push((
            "source".into(),
            filter.source.clone().unwrap_or_else(|| "all".into()),
        ));
    }
    let optional = [
        ("modelName", filter.model_name.clone()),
        ("modelProvider", filter.model_provider.clone()),
        (
            "dateFrom",
            filter.created_from.map(crate::control::time::iso),
        ),
        ("dateTo", filter.created_to.map(crate::control::time::iso)),
    ];
    for (key, value) in optional {
        if let Some(value) = value {
            query.push((key.into(), value));
        }
    }
    for tag in &filter.tags {
        query.push(("tags".into(), tag.clone()));
    }
    for (key, value) in [
        ("category", &filter.category),
        ("visibility", &filter.visibility),
        ("searchQuery", &list.search),
    ] {
        if let Some(value) = value {
            query.push((key.into(), value.clone()));
        }
    }
}

fn query_string(pairs: &[(String, String)]) -> String {
    pairs
        .iter()
        .map(|(key, value)| format!("{key}={}", encode(value)))
        .collect::<Vec<_>>()
        .join("&")
}

fn memory_of(value: &Value) -> Memory {
    let content = ["contentFull", "content", "contentSummary", "contentEssence"]
        .iter()
        .find_map(|key| text(value, key))
        .unwrap_or_default();
    // The builtin reads tags from the metadata (where the local store keeps them).
    let mut metadata = value.get("metadata").cloned().filter(|m| !m.is_null());
    if let Some(tags) = value.get("tags").filter(|tags| !tags.is_null())
        && let Some(map) = metadata.get_or_insert_with(|| json!({})).as_object_mut()
    {
        map.insert("tags".into(), tags.clone());
    }
    Memory {
        uuid: text(value, "uuid").unwrap_or_default(),
        session_uuid: text(value, "sessionUuid").unwrap_or_default(),
        ring_type: text(value, "ringType").unwrap_or_default(),
        observation_type: text(value, "observationType").unwrap_or_default(),
        content,
        outcome: text(value, "outcome"),
        metadata,
        access_count: number(value, "accessCount").unwrap_or_default(),
        created_at: time(value, "createdAt").unwrap_or_default(),
        // Search results say `decayStage`, details `currentDecayStage`.
        decay_stage: text(value, "currentDecayStage").or_else(|| text(value, "decayStage")),
        relevance_score: value.get("relevanceScore").and_then(Value::as_f64),
        success_score: value.get("successScore").and_then(Value::as_f64),
        reinforcement_count: number(value, "reinforcementCount"),
    }
}

#[async_trait::async_trait]
impl ControlPlane for AppControl {
    async fn create_notification(&self, new: NewNotification) -> Result<Notification> {
        // The original's body: {title?, message, severity, sendEmail}; the App sends the e-mail.
        let body = json!({
            "title": new.title,
            "message": new.message,
            "severity": new.severity.as_str(),
            "sendEmail": new.send_email,
        });
        let answer = self
            .client
            .request(
                Method::POST,
                "/api/notifications/custom",
                Some(&body),
                Call::Slow,
            )
            .await?;
        Ok(Notification {
            id: String::new(),
            kind: new.kind,
            title: new.title,
            message: text(&answer, "message")
                .unwrap_or_else(|| "Notification sent successfully".into()),
            severity: new.severity,
            link: None,
            read: false,
            completed: false,
            created_at: now_ms(),
            expires_at: None,
        })
    }

    async fn list_notifications(
        &self,
        only_unread: bool,
        limit: Option<u32>,
    ) -> Result<Vec<Notification>> {
        let mut query = Vec::new();
        if only_unread {
            query.push("onlyUnread=true".to_owned());
        }
        if let Some(limit) = limit {
            query.push(format!("limit={limit}"));
        }
        let path = if query.is_empty() {
            "/api/notifications".to_owned()
        } else {
            format!("/api/notifications?{}", query.join("&"))
        };
        let body = self
            .client
            .request(Method::GET, &path, None, Call::Read)
            .await?;
        Ok(body
            .get("notifications")
            .and_then(Value::as_array)
            .map(|items| items.iter().map(notification_of).collect())
            .unwrap_or_default())
    }

    async fn complete_notification(&self, id: &str) -> Result<bool> {
        if !uuid_shaped(id) {
            return Ok(false);
        }
        // The App toggles the flag; the tool promises "done" (and says it is idempotent). So a
        // notification the App already lists as completed is left alone.
        if let Ok(listed) = self.list_notifications(false, None).await
            && listed
                .iter()
                .any(|notification| notification.id == id && notification.completed)
        {
            return Ok(true);
        }
        // The id is path-encoded (the original put it in the path as given).
        let path = format!("/api/notifications/{}/completed", encode_path(id));
        match self
            .client
            .request(Method::PATCH, &path, Some(&json!({})), Call::Write)
            .await
        {
            Ok(_) => Ok(true),
            // 400: an id the App's stricter check (`uuid`'s `validate`) refuses.
            Err(error) if is_status(&error, 404) || is_status(&error, 400) => Ok(false),
            Err(error) => Err(error.into()),
        }
    }

    async fn delete_notification(&self, id: &str) -> Result<bool> {
        if !uuid_shaped(id) {
            return Ok(false);
        }
        let path = format!("/api/notifications/{}", encode_path(id));
        match self
            .client
            .request(Method::DELETE, &path, None, Call::Write)
            .await
        {
            Ok(_) => Ok(true),
            Err(error) if is_status(&error, 404) || is_status(&error, 400) => Ok(false),
            Err(error) => Err(error.into()),
        }
    }

    async fn clipboard_set(
        &self,
        name: Option<String>,
        idx: Option<i64>,
        value: ClipboardValue,
    ) -> Result<ClipboardWrite> {
        let body = clipboard_body(name, idx, value);
        match self
            .client
            .request(Method::POST, "/api/clipboard", Some(&body), Call::Write)
            .await
        {
            Ok(answer) => Ok(ClipboardWrite::Saved(Box::new(clipboard_of(
                answer.get("entry").unwrap_or(&answer),
            )))),
            Err(error) if is_status(&error, 409) => {
                Ok(ClipboardWrite::IndexTaken(idx.unwrap_or_default()))
            }
            Err(error) => Err(error.into()),
        }
    }

    async fn clipboard_get(
        &self,
        key: ClipboardKey,
        content_type: Option<String>,
    ) -> Result<Option<ClipboardEntry>> {
        let mut query = match &key {
            ClipboardKey::Name(name) => format!("name={}", encode(name)),
            ClipboardKey::Index(idx) => format!("idx={idx}"),
        };
        if let Some(content_type) = content_type {
            query.push_str(&format!("&contentType={}", encode(&content_type)));
        }
        match self
            .client
            .request(
                Method::GET,
                &format!("/api/clipboard?{query}&limit=50&offset=0"),
                None,
                Call::Read,
            )
            .await
        {
            Ok(answer) => Ok(answer.get("entry").map(clipboard_of)),
            Err(error) if is_status(&error, 404) => Ok(None),
            Err(error) => Err(error.into()),
        }
    }

    async fn clipboard_list(
        &self,
        content_type: Option<String>,
        limit: u32,
        offset: u32,
    ) -> Result<(Vec<ClipboardEntry>, u64)> {
        let mut query = String::new();
        if let Some(content_type) = content_type {
            query.push_str(&format!("contentType={}&", encode(&content_type)));
        }
        query.push_str(&format!("limit={limit}&offset={offset}"));
        let answer = self
            .call(
                Method::GET,
                &format!("/api/clipboard?{query}"),
                None,
                Call::Read,
            )
            .await?;
        let entries: Vec<ClipboardEntry> = answer
            .get("entries")
            .and_then(Value::as_array)
            .map(|items| items.iter().map(clipboard_of).collect())
            .unwrap_or_default();
        let total = number(&answer, "total").map_or(entries.len() as u64, |n| n as u64);
        Ok((entries, total))
    }

    async fn clipboard_delete(&self, key: Option<ClipboardKey>) -> Result<u64> {
        let body = match key {
            None => json!({"clearAll": true}),
            Some(ClipboardKey::Name(name)) => json!({"name": name, "clearAll": false}),
            Some(ClipboardKey::Index(idx)) => json!({"idx": idx, "clearAll": false}),
        };
        match self
            .client
            .request(Method::DELETE, "/api/clipboard", Some(&body), Call::Write)
            .await
        {
            Ok(answer) => Ok(number(&answer, "deleted").unwrap_or(1).max(0) as u64),
            Err(error) if is_status(&error, 404) => Ok(0),
            Err(error) => Err(error.into()),
        }
    }

    async fn clipboard_push(&self, value: ClipboardValue) -> Result<ClipboardEntry> {
        let body = clipboard_body(None, None, value);
        let answer = self
            .call(Method::POST, "/api/clipboard/push", Some(body), Call::Write)
            .await?;
        Ok(clipboard_of(answer.get("entry").unwrap_or(&answer)))
    }

    async fn clipboard_pop(&self) -> Result<Option<ClipboardEntry>> {
        match self
            .client
            .request(
                Method::POST,
                "/api/clipboard/pop",
                Some(&json!({})),
                Call::Write,
            )
            .await
        {
            Ok(answer) => Ok(answer.get("entry").map(clipboard_of)),
            Err(error) if is_status(&error, 404) => Ok(None),
            Err(error) => Err(error.into()),
        }
    }

    async fn memory_session_start(
        &self,
        content_session_id: String,
        agent_uuid: Option<String>,
    ) -> Result<MemorySession> {
        let mut body = json!({"content_session_id": content_session_id});
        if let Some(agent) = &agent_uuid {
            body["agent_uuid"] = json!(agent);
        }
        let answer = data(
            self.call(
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

    async fn memory_session_end(&self, memory_session_id: &str) -> Result<SessionEnd> {
        let path = format!("/api/memory/sessions/{}", encode_path(memory_session_id));
        match self
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

    async fn memory_observe(
        &self,
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
        match self
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
                    && error.detail().is_some_and(|detail| {
                        detail.to_ascii_lowercase().contains("not active")
                    }) =>
            {
                Ok(ObserveOutcome::SessionEnded)
            }
            Err(error) => Err(error.into()),
        }
    }

    async fn memory_search(&self, query: MemoryQuery) -> Result<Vec<MemoryHit>> {
        let mut body =
            json!({"query": query.query, "top_k": query.top_k, "include_gut": query.include_gut});
        if let Some(rings) = query.ring_types {
            body["ring_types"] = json!(rings);
        }
        if let Some(agent) = query.agent_uuid {
            body["agent_uuid"] = json!(agent);
        }
        let answer = data(
            self.call(Method::POST, "/api/memory/search", Some(body), Call::Read)
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

    async fn memory_details(&self, uuids: Vec<String>) -> Result<Vec<Memory>> {
        let answer = data(
            self.call(
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

    async fn create_document(&self, new: NewDocument) -> Result<DocumentCreate> {
        let mut metadata = new.ai_metadata.clone();
        if let Some(model) = &new.model {
            metadata.insert("model".into(), model_json(model));
        }
        metadata.insert("visibility".into(), json!(new.visibility));
        let body = json!({
            "title": new.title,
            "content": new.content,
            "format": new.format,
            "tags": new.tags,
            "category": new.category,
            "metadata": metadata,
        });
        let answer = self
            .client
            .request(
                Method::POST,
                "/api/documents/ai",
                Some(&body),
                Call::Document,
            )
            .await
            .map_err(|error| unconfirmed(error, CREATE_UNCONFIRMED))?;
        Ok(DocumentCreate::Created(Box::new(Document {
            id: text(&answer, "documentId").unwrap_or_default(),
            title: new.title,
            description: None,
            content: String::new(),
            format: new.format,
            tags: new.tags,
            category: new.category,
            source: "ai_generated".into(),
            visibility: new.visibility,
            model: new.model,
            ai_metadata: new.ai_metadata,
            parent_id: None,
            file_name: None,
            content_hash: String::new(),
            size_bytes: new.content.len() as i64,
            version: 1,
            created_at: now_ms(),
            updated_at: now_ms(),
            updated_by: None,
            change_summary: None,
            update_reason: None,
            changes_from_prompt: None,
        })))
    }

    async fn create_documents(&self, batch: Vec<NewDocument>) -> Vec<Result<DocumentCreate>> {
        let mut results = Vec::with_capacity(batch.len());
        for document in batch {
            results.push(self.create_document(document).await);
        }
        results
    }

    async fn list_documents(&self, list: DocumentList) -> Result<(Vec<Document>, u64)> {
        let mut query = Vec::new();
        filter_query(&mut query, &list, list.filter.source.is_some());
        let sort = match list.sort {
            DocumentSort::DateDesc => "date_desc",
            DocumentSort::DateAsc => "date_asc",
            DocumentSort::Title => "title",
            DocumentSort::Size => "size",
        };
        query.push(("sort".into(), sort.into()));
        query.push(("limit".into(), list.limit.to_string()));
        query.push(("offset".into(), list.offset.to_string()));
        let answer = self
            .call(
                Method::GET,
                &format!("/api/documents?{}", query_string(&query)),
                None,
                Call::Read,
            )
            .await?;
        let documents: Vec<Document> = answer
            .get("documents")
            .and_then(Value::as_array)
            .map(|items| items.iter().map(document_of).collect())
            .unwrap_or_default();
        let total = number(&answer, "total").map_or(documents.len() as u64, |n| n as u64);
        Ok((documents, total))
    }

    async fn search_documents(&self, search: DocumentSearch) -> Result<Vec<DocumentHit>> {
        let filter = &search.filter;
        let mut filters = Map::new();
        let mut put = |key: &str, value: Option<Value>| {
            if let Some(value) = value {
                filters.insert(key.into(), value);
            }
        };
        put("modelName", filter.model_name.clone().map(Value::from));
        put(
            "modelProvider",
            filter.model_provider.clone().map(Value::from),
        );
        put(
            "dateFrom",
            filter
                .created_from
                .map(|at| Value::from(crate::control::time::iso(at))),
        );
        put(
            "dateTo",
            filter
                .created_to
                .map(|at| Value::from(crate::control::time::iso(at))),
        );
        put(
            "tags",
            (!filter.tags.is_empty()).then(|| json!(filter.tags.clone())),
        );
        put("source", filter.source.clone().map(Value::from));
        let mut body = json!({"query": search.query, "limit": search.limit});
        if !filters.is_empty() {
            body["filters"] = Value::Object(filters);
        }
        let answer = self
            .call(
                Method::POST,
                "/api/documents/search",
                Some(body),
                Call::Read,
            )
            .await?;
        // The App's search has no visibility filter; each result says its visibility.
        let visible = |item: &&Value| {
            filter
                .visibility
                .as_deref()
                .is_none_or(|wanted| item.get("visibility").and_then(Value::as_str) == Some(wanted))
        };
        Ok(answer
            .get("results")
            .and_then(Value::as_array)
            .map(|items| {
                items
                    .iter()
                    .filter(visible)
                    .map(|item| DocumentHit {
                        document: document_of(item),
                        snippet: text(item, "snippet").unwrap_or_default(),
                        passage: text(item, "snippet").unwrap_or_default(),
                        relevance: item
                            .get("relevanceScore")
                            .and_then(Value::as_f64)
                            .unwrap_or(0.0),
                    })
                    .collect()
            })
            .unwrap_or_default())
    }

    async fn get_document(
        &self,
        id: &str,
        include_content: bool,
        include_versions: bool,
    ) -> Result<Option<(Document, Vec<DocumentVersion>)>> {
        let path = format!(
            "/api/documents/{}?includeContent={include_content}&includeVersions={include_versions}",
            encode_path(id)
        );
        let answer = match self
            .client
            .request(Method::GET, &path, None, Call::Read)
            .await
        {
            Ok(answer) => answer,
            Err(error) if is_status(&error, 404) => return Ok(None),
            Err(error) => return Err(error.into()),
        };
        let versions = answer
            .get("versions")
            .and_then(Value::as_array)
            .map(|items| {
                items
                    .iter()
                    .map(|item| DocumentVersion {
                        version: number(item, "versionNumber").unwrap_or_default(),
                        content: String::new(),
                        content_hash: String::new(),
                        created_at: time(item, "createdAt").unwrap_or_default(),
                        created_by: model_of(item.get("createdByModel")),
                        change_summary: text(item, "changeSummary"),
                        update_reason: None,
                    })
                    .collect()
            })
            .unwrap_or_default();
        Ok(Some((document_of(&answer), versions)))
    }

    async fn update_document(&self, id: &str, update: DocumentUpdate) -> Result<Option<Document>> {
        let operation = match update.operation {
            UpdateOperation::Replace => "replace",
            UpdateOperation::Append => "append",
            UpdateOperation::Prepend => "prepend",
        };
        let mut body = json!({"documentId": id, "operation": operation, "content": update.content});
        let mut metadata = Map::new();
        if let Some(tags) = &update.tags {
            metadata.insert("tags".into(), json!(tags));
        }
        for (key, value) in [
            ("changeSummary", &update.change_summary),
            ("updateReason", &update.update_reason),
            ("changesFromPrompt", &update.changes_from_prompt),
        ] {
            if let Some(value) = value {
                metadata.insert(key.into(), json!(value));
            }
        }
        if let Some(model) = &update.model {
            metadata.insert("model".into(), model_json(model));
        }
        if !metadata.is_empty() {
            body["metadata"] = Value::Object(metadata);
        }
        let path = format!("/api/documents/{}", encode_path(id));
        match self
            .client
            .request(Method::PATCH, &path, Some(&body), Call::Document)
            .await
        {
            Ok(answer) => Ok(Some(Document {
                id: text(&answer, "documentId").unwrap_or_else(|| id.to_owned()),
                version: number(&answer, "version").unwrap_or_default(),
                ..document_of(&json!({}))
            })),
            Err(error) if is_status(&error, 404) => Ok(None),
            // The App's CSRF check allows only its own origin (its `NEXTAUTH_URL`) and
            // plugged.in's; ours is the base URL's.
            Err(error) if error.code().is_some_and(|code| code.starts_with("CSRF_")) => {
                Err(ControlError::AppUnconfirmed {
                    error,
                    consequence: "the App accepts document updates only from its own origin \
                         (its NEXTAUTH_URL): give --pluggedin-api-base-url as that URL",
                })
            }
            Err(error) => Err(unconfirmed(error, UPDATE_UNCONFIRMED)),
        }
    }

    async fn delete_document(&self, _id: &str) -> Result<bool> {
        Err(ControlError::Invalid(
            "documents are deleted in the plugged.in App, not through the proxy".into(),
        ))
    }

    async fn server_uuid(&self, server: &str) -> Result<String> {
        match (self.servers)().uuid_of(server) {
            Some(uuid) => Ok(uuid.to_owned()),
            None => self.local.server_uuid(server).await,
        }
    }

    async fn cache_server(&self, server: CachedServer) -> Result<()> {
        self.local.cache_server(server).await
    }

    async fn cached_servers(&self) -> Result<Vec<CachedServer>> {
        self.local.cached_servers().await
    }

    /// Each entry goes to the App, with the original's body; the local log keeps them too, for
    /// `stats`. Called by the recorder's writer task, never on a request's path.
    async fn record_activity(&self, batch: Vec<Activity>) -> Result<()> {
        let mut failed = 0usize;
        let mut last_error = None;
        for entry in &batch {
            // The original's `success` is "no exception": a tool that answered with `isError`
            // worked, and the App raises no alert for it (the local log still counts it).
            let success = entry.success || entry.tool_error;
            let mut body = json!({
                "action": entry.action.as_str(),
                "serverName": entry.server_name,
                "serverUuid": entry.server_uuid,
                "itemName": entry.item,
                "success": success,
                "executionTime": entry.duration_ms,
            });
            if let Some(error) = entry.error.as_ref().filter(|_| !success) {
                body["errorMessage"] = json!(error);
            }
            if let Err(error) = self
                .client
                .request(
                    Method::POST,
                    "/api/notifications/mcp-activity",
                    Some(&body),
                    Call::Report,
                )
                .await
            {
                failed += 1;
                last_error = Some(error);
            }
        }
        let local = self.local.record_activity(batch).await;
        if let Some(error) = last_error {
            tracing::warn!(failed, "activity not reported to the App: {error}");
        }
        local
    }

    async fn activity_stats(&self, since: i64) -> Result<Vec<ActivityStats>> {
        self.local.activity_stats(since).await
    }

    async fn record_rate_limited(&self, entry: RateLimited) -> Result<()> {
        self.local.record_rate_limited(entry).await
    }

    async fn rate_limited(&self, since: i64) -> Result<RateLimited> {
        self.local.rate_limited(since).await
    }

    async fn prune_activity(&self, before: i64) -> Result<u64> {
        self.local.prune_activity(before).await
    }

    async fn settings_version(&self) -> Result<i64> {
        self.local.settings_version().await
    }

    async fn settings(&self) -> Result<Settings> {
        self.local.settings().await
    }

    async fn set_server_enabled(&self, server: &str, enabled: bool) -> Result<()> {
        self.local.set_server_enabled(server, enabled).await
    }

    async fn set_tool_enabled(&self, tool: &str, enabled: bool) -> Result<()> {
        self.local.set_tool_enabled(tool, enabled).await
    }

    async fn workspaces(&self) -> Result<Vec<Workspace>> {
        self.local.workspaces().await
    }

    async fn create_workspace(&self, workspace: Workspace) -> Result<bool> {
        self.local.create_workspace(workspace).await
    }

    async fn delete_workspace(&self, name: &str) -> Result<bool> {
        self.local.delete_workspace(name).await
    }

    async fn switch_workspace(&self, name: Option<&str>) -> Result<bool> {
        self.local.switch_workspace(name).await
    }

    async fn active_workspace(&self) -> Result<Option<String>> {
        self.local.active_workspace().await
    }

    fn raises_alerts(&self) -> bool {
        // The App raises its own ALERT for each failure it is told about.
        false
    }

    fn sends_email(&self) -> bool {
        true
    }

    async fn ask_knowledge_base(&self, query: &str) -> Result<Option<KnowledgeAnswer>> {
        let body = json!({"query": query, "includeMetadata": true});
        let answer = self
            .client
            .request(Method::POST, "/api/rag/query", Some(&body), Call::Slow)
            .await?;
        Ok(Some(KnowledgeAnswer(answer)))
    }

    async fn trigger_discovery(
        &self,
        server_uuid: Option<&str>,
        force_refresh: bool,
    ) -> Result<Option<String>> {
        let target = server_uuid.map_or_else(|| "all".to_owned(), encode_path);
        let answer = self
            .client
            .request(
                Method::POST,
                &format!("/api/discover/{target}"),
                Some(&json!({"force_refresh": force_refresh})),
                Call::Slow,
            )
            .await?;
        Ok(Some(
            text(&answer, "message").unwrap_or_else(|| "Discovery process initiated.".into()),
        ))
    }
}

/// A path segment, percent-encoded (the original put ids into paths unencoded).
fn encode_path(segment: &str) -> String {
    url::form_urlencoded::byte_serialize(segment.as_bytes())
        .collect::<String>()
        .replace('+', "%20")
}
