//! [`AppControl`]: the [`ControlPlane`] on the plugged.in App's HTTP API. The built-in tools'
//! data (notifications, clipboard, memory, documents), the knowledge base and discovery go to the
//! App with the original proxy's request bodies; activity is reported to
//! `/api/notifications/mcp-activity`. What the App does not hold — the operator's settings and
//! workspaces, the activity statistics of `stats`, the catalog cache — stays in the local store.

mod activity;
mod clipboard;
mod documents;
mod memory;
mod notifications;

use std::sync::Arc;

use reqwest::Method;
use serde_json::{Map, Value, json};

use super::client::{AppClient, AppError, Call, encode};
use crate::config::ToolExposure;
use crate::control::time::{now_ms, parse_iso};
use crate::control::{
    Activity, ActivityEntry, ActivityQuery, ActivityReport, ActivityStats, CachedServer,
    ClipboardEntry, ClipboardKey, ClipboardValue, ClipboardWrite, ControlError, ControlPlane,
    Document, DocumentCreate, DocumentHit, DocumentList, DocumentSearch, DocumentSort,
    DocumentUpdate, DocumentVersion, KnowledgeAnswer, Memory, MemoryHit, MemoryQuery,
    MemorySession, ModelInfo, NewDocument, NewNotification, NewObservation, Notification,
    ObserveOutcome, RateLimited, Result, SessionEnd, Settings, Severity, UpdateOperation,
    Workspace, local::LocalStore,
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
        notifications::create_notification(self, new).await
    }

    async fn list_notifications(
        &self,
        only_unread: bool,
        limit: Option<u32>,
    ) -> Result<Vec<Notification>> {
        notifications::list_notifications(self, only_unread, limit).await
    }

    async fn complete_notification(&self, id: &str) -> Result<bool> {
        notifications::complete_notification(self, id).await
    }

    async fn delete_notification(&self, id: &str) -> Result<bool> {
        notifications::delete_notification(self, id).await
    }

    async fn clipboard_set(
        &self,
        name: Option<String>,
        idx: Option<i64>,
        value: ClipboardValue,
    ) -> Result<ClipboardWrite> {
        clipboard::clipboard_set(self, name, idx, value).await
    }

    async fn clipboard_get(
        &self,
        key: ClipboardKey,
        content_type: Option<String>,
    ) -> Result<Option<ClipboardEntry>> {
        clipboard::clipboard_get(self, key, content_type).await
    }

    async fn clipboard_list(
        &self,
        content_type: Option<String>,
        limit: u32,
        offset: u32,
    ) -> Result<(Vec<ClipboardEntry>, u64)> {
        clipboard::clipboard_list(self, content_type, limit, offset).await
    }

    async fn clipboard_delete(&self, key: Option<ClipboardKey>) -> Result<u64> {
        clipboard::clipboard_delete(self, key).await
    }

    async fn clipboard_push(&self, value: ClipboardValue) -> Result<ClipboardEntry> {
        clipboard::clipboard_push(self, value).await
    }

    async fn clipboard_pop(&self) -> Result<Option<ClipboardEntry>> {
        clipboard::clipboard_pop(self).await
    }

    async fn memory_session_start(
        &self,
        content_session_id: String,
        agent_uuid: Option<String>,
    ) -> Result<MemorySession> {
        memory::memory_session_start(self, content_session_id, agent_uuid).await
    }

    async fn memory_session_end(&self, memory_session_id: &str) -> Result<SessionEnd> {
        memory::memory_session_end(self, memory_session_id).await
    }

    async fn memory_observe(
        &self,
        session_uuid: &str,
        observation: NewObservation,
    ) -> Result<ObserveOutcome> {
        memory::memory_observe(self, session_uuid, observation).await
    }

    async fn memory_search(&self, query: MemoryQuery) -> Result<Vec<MemoryHit>> {
        memory::memory_search(self, query).await
    }

    async fn memory_details(&self, uuids: Vec<String>) -> Result<Vec<Memory>> {
        memory::memory_details(self, uuids).await
    }

    async fn create_document(&self, new: NewDocument) -> Result<DocumentCreate> {
        documents::create_document(self, new).await
    }

    async fn create_documents(&self, batch: Vec<NewDocument>) -> Vec<Result<DocumentCreate>> {
        documents::create_documents(self, batch).await
    }

    async fn list_documents(&self, list: DocumentList) -> Result<(Vec<Document>, u64)> {
        documents::list_documents(self, list).await
    }

    async fn search_documents(&self, search: DocumentSearch) -> Result<Vec<DocumentHit>> {
        documents::search_documents(self, search).await
    }

    async fn get_document(
        &self,
        id: &str,
        include_content: bool,
        include_versions: bool,
    ) -> Result<Option<(Document, Vec<DocumentVersion>)>> {
        documents::get_document(self, id, include_content, include_versions).await
    }

    async fn update_document(&self, id: &str, update: DocumentUpdate) -> Result<Option<Document>> {
        documents::update_document(self, id, update).await
    }

    async fn delete_document(&self, _id: &str) -> Result<bool> {
        documents::delete_document(self, _id).await
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
        activity::record_activity(self, batch).await
    }

    async fn activity_stats(&self, since: i64) -> Result<Vec<ActivityStats>> {
        self.local.activity_stats(since).await
    }

    async fn activity_report(&self, query: ActivityQuery) -> Result<ActivityReport> {
        self.local.activity_report(query).await
    }

    async fn activity_entries(
        &self,
        since: i64,
        until: i64,
        limit: u32,
    ) -> Result<Vec<ActivityEntry>> {
        self.local.activity_entries(since, until, limit).await
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

    async fn set_workspace_exposure(
        &self,
        name: &str,
        exposure: Option<ToolExposure>,
    ) -> Result<bool> {
        self.local.set_workspace_exposure(name, exposure).await
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
        documents::ask_knowledge_base(self, query).await
    }

    async fn trigger_discovery(
        &self,
        server_uuid: Option<&str>,
        force_refresh: bool,
    ) -> Result<Option<String>> {
        documents::trigger_discovery(self, server_uuid, force_refresh).await
    }
}

/// A path segment, percent-encoded (the original put ids into paths unencoded).
fn encode_path(segment: &str) -> String {
    url::form_urlencoded::byte_serialize(segment.as_bytes())
        .collect::<String>()
        .replace('+', "%20")
}
