//! The control plane: where the built-in tools' data and the proxy's settings live, behind one
//! boundary trait, [`ControlPlane`]. The built-in tools, the activity recorder and the management
//! commands talk only to this trait; [`local::LocalStore`] implements it on an embedded SQLite
//! database in the data dir, [`postgres::PostgresStore`] on a PostgreSQL database
//! (`--database-url`), and [`app::AppControl`] on the plugged.in App's HTTP API (App mode).
//! Nothing outside `local` and `postgres` contains SQL.

pub mod activity;
pub mod app;
pub mod fleet;
mod library;
pub mod local;
pub mod postgres;
pub mod time;

use std::collections::BTreeSet;

use serde::Serialize;

use crate::config::ToolExposure;

/// Why a control-plane operation failed. Not-found and conflict outcomes that a tool reports to
/// its caller are values in the operations' results, not errors.
#[derive(Debug, thiserror::Error)]
pub enum ControlError {
    #[error("the local store at {path}: {message}")]
    Open { path: String, message: String },
    /// The local store's engine failed (its message; the conversion lives with the store).
    #[error("the local store: {0}")]
    Store(String),
    #[error("the local store's worker ended: {0}")]
    Worker(String),
    #[error("{0}")]
    Invalid(String),
    /// The plugged.in App answered with an error or could not be reached (sanitised text).
    #[error("{0}")]
    App(app::AppError),
    /// The App may have done what was asked although no answer came (a document created or
    /// updated, then a timeout): said so, so that nobody repeats it blindly.
    #[error("{error}; {consequence}")]
    AppUnconfirmed {
        error: app::AppError,
        consequence: &'static str,
    },
}

pub type Result<T, E = ControlError> = std::result::Result<T, E>;

/// Notification severities, as the App spells them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Severity {
    #[serde(rename = "INFO")]
    Info,
    #[serde(rename = "SUCCESS")]
    Success,
    #[serde(rename = "WARNING")]
    Warning,
    #[serde(rename = "ALERT")]
    Alert,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "INFO",
            Severity::Success => "SUCCESS",
            Severity::Warning => "WARNING",
            Severity::Alert => "ALERT",
        }
    }

    pub fn parse(text: &str) -> Option<Severity> {
        Some(match text {
            "INFO" => Severity::Info,
            "SUCCESS" => Severity::Success,
            "WARNING" => Severity::Warning,
            "ALERT" => Severity::Alert,
            _ => return None,
        })
    }
}

/// A notification to create.
#[derive(Debug, Clone)]
pub struct NewNotification {
    /// `CUSTOM` for the send tool, `ALERT` for failures the activity log raises.
    pub kind: String,
    pub title: String,
    pub message: String,
    pub severity: Severity,
    pub link: Option<String>,
    pub ttl_ms: i64,
    /// Asks the control plane to e-mail it too, where it can ([`ControlPlane::sends_email`]).
    pub send_email: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Notification {
    pub id: String,
    pub kind: String,
    pub title: String,
    pub message: String,
    pub severity: Severity,
    pub link: Option<String>,
    pub read: bool,
    pub completed: bool,
    pub created_at: i64,
    pub expires_at: Option<i64>,
}

/// Which clipboard entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClipboardKey {
    Name(String),
    Index(i64),
}

/// The value and attributes of a clipboard write.
#[derive(Debug, Clone)]
pub struct ClipboardValue {
    pub value: String,
    pub content_type: String,
    pub encoding: String,
    pub visibility: String,
    pub created_by_tool: Option<String>,
    pub created_by_model: Option<String>,
    pub ttl_ms: i64,
}

/// A clipboard entry in the App's shape (camelCase on the wire).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ClipboardEntry {
    pub uuid: String,
    pub name: Option<String>,
    pub idx: Option<i64>,
    pub value: String,
    pub content_type: String,
    pub encoding: String,
    pub size_bytes: i64,
    pub visibility: String,
    pub created_by_tool: Option<String>,
    pub created_by_model: Option<String>,
    pub source: String,
    #[serde(serialize_with = "time::serialize_iso")]
    pub created_at: i64,
    #[serde(serialize_with = "time::serialize_iso")]
    pub updated_at: i64,
    #[serde(serialize_with = "time::serialize_iso_opt")]
    pub expires_at: Option<i64>,
}

/// What a clipboard write did.
#[derive(Debug)]
pub enum ClipboardWrite {
    Saved(Box<ClipboardEntry>),
    /// An indexed set found the index taken.
    IndexTaken(i64),
}

#[derive(Debug, Clone, PartialEq)]
pub struct MemorySession {
    pub uuid: String,
    pub memory_session_id: String,
    pub content_session_id: String,
    pub agent_uuid: Option<String>,
    pub active: bool,
    pub started_at: i64,
    pub ended_at: Option<i64>,
}

/// An observation to record.
#[derive(Debug, Clone)]
pub struct NewObservation {
    pub kind: String,
    pub content: String,
    pub outcome: Option<String>,
    pub metadata: Option<serde_json::Value>,
}

/// What recording an observation did.
#[derive(Debug)]
pub enum ObserveOutcome {
    Recorded { uuid: String },
    NoSession,
    SessionEnded,
}

/// What ending a memory session did.
#[derive(Debug)]
pub enum SessionEnd {
    /// Ended; with the number of observations the session recorded, when the store says (the
    /// App does not).
    Ended {
        observations: Option<u64>,
    },
    AlreadyEnded,
    NotFound,
}

/// A memory search.
#[derive(Debug, Clone)]
pub struct MemoryQuery {
    pub query: String,
    pub ring_types: Option<Vec<String>>,
    pub agent_uuid: Option<String>,
    pub top_k: u32,
    /// Also search the App's collective ("gut") memory; the local store has none.
    pub include_gut: bool,
}

/// One memory: a recorded observation, classified into a ring.
#[derive(Debug, Clone, PartialEq)]
pub struct Memory {
    pub uuid: String,
    pub session_uuid: String,
    pub ring_type: String,
    pub observation_type: String,
    pub content: String,
    pub outcome: Option<String>,
    pub metadata: Option<serde_json::Value>,
    pub access_count: i64,
    pub created_at: i64,
    /// How the App keeps the memory now (`full`, `compressed`, `summary`, `essence`) and its
    /// scores in `[0, 1]`; `None` locally, where the stage follows the memory's age and success
    /// its outcome.
    pub decay_stage: Option<String>,
    pub relevance_score: Option<f64>,
    pub success_score: Option<f64>,
    pub reinforcement_count: Option<i64>,
}

/// A search hit: the memory and its scores in `[0, 1]`.
#[derive(Debug, Clone, PartialEq)]
pub struct MemoryHit {
    pub memory: Memory,
    /// bm25 rank relative to the best hit; `None` where the search gives none (the App's gives
    /// only the similarity).
    pub relevance: Option<f64>,
    /// The share of the query's terms the memory contains.
    pub similarity: f64,
}

/// One server's lists as last seen, for answering discovery without waiting for the server.
#[derive(Debug, Clone, PartialEq)]
pub struct CachedServer {
    pub uuid: String,
    pub name: String,
    /// `catalog::ServerLists` as JSON: `{tools, prompts, resources, templates}`.
    pub lists: serde_json::Value,
    pub updated_at: i64,
}

/// Who wrote or changed a document: an AI model's attribution.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ModelInfo {
    pub name: String,
    pub provider: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
}

/// A document to add to the library. `content` is text: HTML and PDF arrive here already
/// extracted (see `ingest`).
#[derive(Debug, Clone, Default)]
pub struct NewDocument {
    pub title: String,
    pub description: Option<String>,
    pub content: String,
    /// `md`, `txt`, `json`, `html` or `pdf`.
    pub format: String,
    pub tags: Vec<String>,
    pub category: String,
    /// `ai_generated`, `upload` or `api`.
    pub source: String,
    /// `private`, `workspace` or `public`.
    pub visibility: String,
    pub model: Option<ModelInfo>,
    /// The rest of the creation metadata (prompt, context, generation parameters…), kept as
    /// given and shown by `pluggedin_get_document`.
    pub ai_metadata: serde_json::Map<String, serde_json::Value>,
    pub parent_id: Option<String>,
    /// The file it came from, for `docs add`.
    pub file_name: Option<String>,
}

/// A document of the library. `content` is empty unless it was asked for.
#[derive(Debug, Clone, PartialEq)]
pub struct Document {
    pub id: String,
    pub title: String,
    pub description: Option<String>,
    pub content: String,
    pub format: String,
    pub tags: Vec<String>,
    pub category: String,
    pub source: String,
    pub visibility: String,
    pub model: Option<ModelInfo>,
    pub ai_metadata: serde_json::Map<String, serde_json::Value>,
    pub parent_id: Option<String>,
    pub file_name: Option<String>,
    /// SHA-256 of the content, lower-case hex.
    pub content_hash: String,
    pub size_bytes: i64,
    /// 1 at creation, one more per update.
    pub version: i64,
    pub created_at: i64,
    pub updated_at: i64,
    /// Who wrote the current version, and why, when it came from an update.
    pub updated_by: Option<ModelInfo>,
    pub change_summary: Option<String>,
    pub update_reason: Option<String>,
    pub changes_from_prompt: Option<String>,
}

/// A version a document had before an update, and who made the update that replaced it.
#[derive(Debug, Clone, PartialEq)]
pub struct DocumentVersion {
    pub version: i64,
    pub content: String,
    pub content_hash: String,
    /// When this version was written.
    pub created_at: i64,
    /// Who wrote this version.
    pub created_by: Option<ModelInfo>,
    pub change_summary: Option<String>,
    pub update_reason: Option<String>,
}

/// What creating a document did.
#[derive(Debug, Clone)]
pub enum DocumentCreate {
    Created(Box<Document>),
    /// A document with the same content (SHA-256) already exists: this one.
    Duplicate(Box<Document>),
}

/// Filters shared by listing and searching; `None` or empty means "any".
#[derive(Debug, Clone, Default)]
pub struct DocumentFilter {
    pub source: Option<String>,
    pub model_name: Option<String>,
    pub model_provider: Option<String>,
    /// Every tag given must be on the document.
    pub tags: Vec<String>,
    pub category: Option<String>,
    pub visibility: Option<String>,
    /// Inclusive bounds on the creation time, in ms.
    pub created_from: Option<i64>,
    pub created_to: Option<i64>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum DocumentSort {
    #[default]
    DateDesc,
    DateAsc,
    Title,
    Size,
}

/// A page of the library.
#[derive(Debug, Clone, Default)]
pub struct DocumentList {
    pub filter: DocumentFilter,
    /// Full-text condition on title and content.
    pub search: Option<String>,
    pub sort: DocumentSort,
    pub limit: u32,
    pub offset: u64,
}

/// A ranked full-text search.
#[derive(Debug, Clone, Default)]
pub struct DocumentSearch {
    pub query: String,
    pub filter: DocumentFilter,
    /// At most this many documents (the best passage of each).
    pub limit: u32,
}

/// A search hit: a document (without content) and its best passage.
#[derive(Debug, Clone, PartialEq)]
pub struct DocumentHit {
    pub document: Document,
    /// The passage around the matched words, which are wrapped in `**`.
    pub snippet: String,
    /// The whole chunk the snippet is from.
    pub passage: String,
    /// bm25 relative to the best hit, in `(0, 1]`.
    pub relevance: f64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UpdateOperation {
    Replace,
    Append,
    Prepend,
}

impl UpdateOperation {
    pub fn parse(text: &str) -> Option<UpdateOperation> {
        Some(match text {
            "replace" => UpdateOperation::Replace,
            "append" => UpdateOperation::Append,
            "prepend" => UpdateOperation::Prepend,
            _ => return None,
        })
    }
}

/// An update: a new version of the content, with attribution.
#[derive(Debug, Clone)]
pub struct DocumentUpdate {
    pub operation: UpdateOperation,
    pub content: String,
    /// Replaces the tags when given.
    pub tags: Option<Vec<String>>,
    pub model: Option<ModelInfo>,
    pub change_summary: Option<String>,
    pub update_reason: Option<String>,
    pub changes_from_prompt: Option<String>,
}

/// The bound on one document's content, in bytes: the original App's limit (10 MB).
pub const MAX_DOCUMENT_BYTES: usize = 10 * 1024 * 1024;

/// What kind of request an activity entry records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ActivityAction {
    ToolCall,
    PromptGet,
    ResourceRead,
}

impl ActivityAction {
    pub fn as_str(self) -> &'static str {
        match self {
            ActivityAction::ToolCall => "tool_call",
            ActivityAction::PromptGet => "prompt_get",
            ActivityAction::ResourceRead => "resource_read",
        }
    }
}

/// One recorded request.
#[derive(Debug, Clone, PartialEq)]
pub struct Activity {
    pub at: i64,
    pub action: ActivityAction,
    pub server_name: String,
    pub server_uuid: String,
    pub item: String,
    pub duration_ms: i64,
    pub success: bool,
    /// Redacted and truncated.
    pub error: Option<String>,
    /// The request was answered, with a tool error (`isError: true`): a failure for the local
    /// log, but the request itself worked — the App is told so, as the original told it, and
    /// raises no alert for it.
    pub tool_error: bool,
}

/// Per server and item figures over a window.
#[derive(Debug, Clone, PartialEq)]
pub struct ActivityStats {
    pub server_name: String,
    pub item: String,
    pub calls: u64,
    pub errors: u64,
    pub p50_ms: i64,
    pub p95_ms: i64,
}

/// What the console's activity page asks for: a time range, cut into `buckets` equal parts, for
/// one server or item or all of them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActivityQuery {
    pub since: i64,
    pub until: i64,
    pub buckets: u32,
    pub server: Option<String>,
    pub item: Option<String>,
}

/// Calls, errors and durations of a set of requests.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Figures {
    pub calls: u64,
    pub errors: u64,
    pub p50_ms: i64,
    pub p95_ms: i64,
}

/// One recorded request, as the activity page and the export show it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActivityEntry {
    pub at: i64,
    pub action: String,
    pub server_name: String,
    pub item: String,
    pub duration_ms: i64,
    pub success: bool,
    pub error: Option<String>,
}

/// The activity over a range, bounded whatever it holds: figures per time bucket, per server and
/// per item (the busiest [`ActivityReport::MAX_ITEMS`]), and the slowest and the latest failed
/// requests ([`ActivityReport::MAX_ENTRIES`] each).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ActivityReport {
    pub bucket_ms: i64,
    /// Each bucket's start and figures, oldest first; every bucket, empty ones too.
    pub buckets: Vec<(i64, Figures)>,
    pub servers: Vec<(String, Figures)>,
    /// By (server, item), busiest first.
    pub items: Vec<((String, String), Figures)>,
    pub slowest: Vec<ActivityEntry>,
    pub failing: Vec<ActivityEntry>,
}

impl ActivityReport {
    /// The most buckets a report cuts its range into.
    pub const MAX_BUCKETS: u32 = 240;
    /// The most items a report lists.
    pub const MAX_ITEMS: usize = 100;
    /// The most slowest and failed requests a report lists.
    pub const MAX_ENTRIES: usize = 20;
}

/// Requests the HTTP rate limit refused over a period, recorded at its end (one row per
/// period with refusals, never one per refusal).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RateLimited {
    /// When the period ended (ms since the epoch).
    pub at: i64,
    pub tool_calls: u64,
    pub requests: u64,
}

/// What the proxy's operator turned off, and the workspace in force. A running proxy re-reads
/// these when [`ControlPlane::settings_version`] changes.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Settings {
    pub disabled_servers: BTreeSet<String>,
    pub disabled_tools: BTreeSet<String>,
    /// The active workspace and its servers; `None` means every server.
    pub workspace: Option<Workspace>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Workspace {
    pub name: String,
    pub servers: BTreeSet<String>,
    /// What a session's `tools/list` shows while this workspace is active, over the
    /// `--tool-exposure` flag (a token's own setting wins over both); `None` leaves it to the
    /// flag.
    pub tool_exposure: Option<ToolExposure>,
}

/// A workspace's stored `tool_exposure`; a value this build does not know (written by a newer
/// one) leaves the choice to the flag, with a warning, rather than failing every settings read.
pub(crate) fn stored_exposure(workspace: &str, stored: Option<&str>) -> Option<ToolExposure> {
    let stored = stored?;
    match stored.parse() {
        Ok(exposure) => Some(exposure),
        Err(why) => {
            tracing::warn!(workspace, "workspace's tool exposure ignored: {why}");
            None
        }
    }
}

/// Wake-ups from a store that tells running proxies when the settings may have changed (in any
/// process), so that they need not poll: each one means "re-read the settings version". Many
/// changes in a row may come as one wake-up; one also comes whenever the store may have missed
/// changes (it reconnected), so that nothing is skipped.
pub struct SettingsChanges(tokio::sync::watch::Receiver<u64>);

impl SettingsChanges {
    pub(crate) fn new(wakes: tokio::sync::watch::Receiver<u64>) -> SettingsChanges {
        SettingsChanges(wakes)
    }

    /// Waits for the next wake-up; `false` when the store will send none any more.
    pub async fn changed(&mut self) -> bool {
        self.0.changed().await.is_ok()
    }
}

/// The knowledge base's answer from a control plane that answers itself (the App's
/// `/api/rag/query` body: `{answer, sources, documentIds, …}` or a text).
#[derive(Debug, Clone, PartialEq)]
pub struct KnowledgeAnswer(pub serde_json::Value);

/// The boundary the built-in tools, the activity recorder and the management commands talk to.
#[async_trait::async_trait]
pub trait ControlPlane: Send + Sync {
    async fn create_notification(&self, new: NewNotification) -> Result<Notification>;
    /// Newest first; expired ones are left out.
    async fn list_notifications(
        &self,
        only_unread: bool,
        limit: Option<u32>,
    ) -> Result<Vec<Notification>>;
    /// Marks a notification done (and read). `false` when there is no such notification.
    async fn complete_notification(&self, id: &str) -> Result<bool>;
    async fn delete_notification(&self, id: &str) -> Result<bool>;

    /// With a name: upserts that name (taking `idx` too, if free). With only an index: fails
    /// when the index is taken.
    async fn clipboard_set(
        &self,
        name: Option<String>,
        idx: Option<i64>,
        value: ClipboardValue,
    ) -> Result<ClipboardWrite>;
    /// The live entry under `key`; with `content_type`, only if it has that type.
    async fn clipboard_get(
        &self,
        key: ClipboardKey,
        content_type: Option<String>,
    ) -> Result<Option<ClipboardEntry>>;
    /// A page of live entries (named first, then by index) and the total.
    async fn clipboard_list(
        &self,
        content_type: Option<String>,
        limit: u32,
        offset: u32,
    ) -> Result<(Vec<ClipboardEntry>, u64)>;
    /// Deletes one entry or all; returns how many went.
    async fn clipboard_delete(&self, key: Option<ClipboardKey>) -> Result<u64>;
    /// Stores at the next index (highest + 1, from 0).
    async fn clipboard_push(&self, value: ClipboardValue) -> Result<ClipboardEntry>;
    /// Removes and returns the highest-indexed entry.
    async fn clipboard_pop(&self) -> Result<Option<ClipboardEntry>>;

    async fn memory_session_start(
        &self,
        content_session_id: String,
        agent_uuid: Option<String>,
    ) -> Result<MemorySession>;
    async fn memory_session_end(&self, memory_session_id: &str) -> Result<SessionEnd>;
    async fn memory_observe(
        &self,
        session_uuid: &str,
        observation: NewObservation,
    ) -> Result<ObserveOutcome>;
    /// Ranked full-text search over observations.
    async fn memory_search(&self, query: MemoryQuery) -> Result<Vec<MemoryHit>>;
    /// The memories found, in the order asked; counts an access for each.
    async fn memory_details(&self, uuids: Vec<String>) -> Result<Vec<Memory>>;

    /// Adds a document, or finds the one with the same content. One transaction.
    async fn create_document(&self, new: NewDocument) -> Result<DocumentCreate>;
    /// Adds many; each document is atomic on its own (a failed one leaves no trace and the
    /// others stay), and the batch is committed together.
    async fn create_documents(&self, batch: Vec<NewDocument>) -> Vec<Result<DocumentCreate>>;
    /// A page (without content) and the total that match.
    async fn list_documents(&self, list: DocumentList) -> Result<(Vec<Document>, u64)>;
    /// Ranked by bm25 over chunks; ties broken by id, so the same library gives the same order.
    async fn search_documents(&self, search: DocumentSearch) -> Result<Vec<DocumentHit>>;
    /// A document with its content (if asked) and its versions, newest (the current one) first
    /// (if asked).
    async fn get_document(
        &self,
        id: &str,
        include_content: bool,
        include_versions: bool,
    ) -> Result<Option<(Document, Vec<DocumentVersion>)>>;
    /// Writes a new version, keeping the old one. `None` when there is no such document.
    async fn update_document(&self, id: &str, update: DocumentUpdate) -> Result<Option<Document>>;
    async fn delete_document(&self, id: &str) -> Result<bool>;

    /// A server's stable UUID, made on first use.
    async fn server_uuid(&self, server: &str) -> Result<String>;
    async fn cache_server(&self, server: CachedServer) -> Result<()>;
    async fn cached_servers(&self) -> Result<Vec<CachedServer>>;

    async fn record_activity(&self, batch: Vec<Activity>) -> Result<()>;
    async fn activity_stats(&self, since: i64) -> Result<Vec<ActivityStats>>;
    /// The console's view of a range of the activity log (bounded, see [`ActivityReport`]).
    async fn activity_report(&self, query: ActivityQuery) -> Result<ActivityReport>;
    /// The requests recorded in `[since, until)`, oldest first, `limit` at most.
    async fn activity_entries(
        &self,
        since: i64,
        until: i64,
        limit: u32,
    ) -> Result<Vec<ActivityEntry>>;
    async fn record_rate_limited(&self, entry: RateLimited) -> Result<()>;
    /// The refusals of the HTTP rate limit recorded since `since`, summed (`at` is `since`).
    async fn rate_limited(&self, since: i64) -> Result<RateLimited>;
    /// Deletes activity (and rate-limit records) older than `before`; returns how many activity
    /// rows went.
    async fn prune_activity(&self, before: i64) -> Result<u64>;

    /// A number that changes whenever [`Settings`] may have changed, in any process.
    async fn settings_version(&self) -> Result<i64>;
    /// Wake-ups when the settings may have changed, for a store that pushes them (PostgreSQL's
    /// `LISTEN`); `None` when the settings version must be polled.
    fn settings_changes(&self) -> Option<SettingsChanges> {
        None
    }
    /// What replicas of a fleet share, for a store several proxies can share (PostgreSQL).
    fn fleet(&self) -> Option<std::sync::Arc<dyn fleet::FleetStore>> {
        None
    }
    async fn settings(&self) -> Result<Settings>;
    async fn set_server_enabled(&self, server: &str, enabled: bool) -> Result<()>;
    async fn set_tool_enabled(&self, tool: &str, enabled: bool) -> Result<()>;
    async fn workspaces(&self) -> Result<Vec<Workspace>>;
    async fn create_workspace(&self, workspace: Workspace) -> Result<bool>;
    async fn delete_workspace(&self, name: &str) -> Result<bool>;
    /// Sets what a session's `tools/list` shows while workspace `name` is active (`None`: what
    /// the flag says). `false` if there is no such workspace.
    async fn set_workspace_exposure(
        &self,
        name: &str,
        exposure: Option<ToolExposure>,
    ) -> Result<bool>;
    /// Makes `name` the active workspace (`None`: every server). `false` if there is no such
    /// workspace.
    async fn switch_workspace(&self, name: Option<&str>) -> Result<bool>;
    async fn active_workspace(&self) -> Result<Option<String>>;

    /// Whether the store answers now, for readiness (`/health/ready`): one cheap round trip, its
    /// error naming the store (never its password). A store in the process (SQLite) answers by
    /// being open; App mode does not ask the App here (ARCHITECTURE.md says why).
    async fn ping(&self) -> Result<()> {
        Ok(())
    }

    /// Whether the activity recorder raises an ALERT notification per failure (the App raises
    /// its own from the activity it is told about).
    fn raises_alerts(&self) -> bool {
        true
    }

    /// Whether [`ControlPlane::create_notification`] sends the e-mail itself when asked (the App
    /// does; the local store leaves it to the mailer). Such a control plane answers with the
    /// notification whose `message` is its own account of what it did.
    fn sends_email(&self) -> bool {
        false
    }

    /// The knowledge base's answer when the control plane answers itself; `None`: the built-in
    /// tool searches the document library.
    async fn ask_knowledge_base(&self, _query: &str) -> Result<Option<KnowledgeAnswer>> {
        Ok(None)
    }

    /// Asks the control plane to (re)discover servers' tools; its message, or `None` when it
    /// has no discovery of its own (the local proxy lists servers live).
    async fn trigger_discovery(
        &self,
        _server_uuid: Option<&str>,
        _force_refresh: bool,
    ) -> Result<Option<String>> {
        Ok(None)
    }
}

#[cfg(test)]
pub(crate) mod tests;
