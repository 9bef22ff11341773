//! The local control plane: an embedded SQLite database, `store.db` in the data dir. WAL mode and
//! a busy timeout let several proxy processes share one data dir (readers never block, writers
//! wait their turn); `synchronous = NORMAL` in WAL mode keeps every committed transaction across a
//! crash of the process (`kill -9`), losing at most the last ones on a power cut. SQLite calls run
//! on tokio's blocking pool, never on the async workers. This module and its children are the
//! only place with SQL.
//!
//! Every write goes through `LocalStore::write` (at start-up, `immediate`): one
//! `BEGIN IMMEDIATE` transaction, which takes the database's write lock before its first
//! statement, where the busy timeout waits for another process's write to finish. A deferred
//! transaction that reads first and writes after would hold a read snapshot while asking for the
//! lock, and SQLite refuses that at once with `database is locked` (waiting could deadlock two
//! such transactions), so with several processes on one data dir a share of such writes would
//! fail. Outside `write` the connection is `query_only`: a write that forgets the helper fails on
//! its first test run with `attempt to write a readonly database` instead of failing now and
//! then under load.

mod activity;
mod clipboard;
mod documents;
mod memory;
mod notifications;
mod schema;
mod settings;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rusqlite::{Connection, Transaction, TransactionBehavior};

use crate::config::ToolExposure;
use crate::control::{
    Activity, ActivityEntry, ActivityQuery, ActivityReport, ActivityStats, CachedServer,
    ClipboardEntry, ClipboardKey, ClipboardValue, ClipboardWrite, ControlError, ControlPlane,
    Document, DocumentCreate, DocumentHit, DocumentList, DocumentSearch, DocumentUpdate,
    DocumentVersion, Memory, MemoryHit, MemoryQuery, MemorySession, NewDocument, NewNotification,
    NewObservation, Notification, ObserveOutcome, RateLimited, Result, SessionEnd, Settings,
    Workspace,
};

/// The database's file name in the data dir.
pub const FILE_NAME: &str = "store.db";

/// How long a write waits for other processes' writes to finish before failing. Most writes
/// take milliseconds; the longest hold the lock about a second (a `docs add` batch is bounded in
/// bytes, a single document is at most 10 MB to index). The wait covers a queue of those behind
/// one another with room to spare, since a write refused here is a tool call that fails; a wait
/// this long means something is stuck.
const BUSY_TIMEOUT: Duration = Duration::from_secs(30);

/// The SQLite store. Cheap to clone.
#[derive(Clone)]
pub struct LocalStore {
    connection: Arc<Mutex<Connection>>,
    path: Arc<str>,
}

impl From<rusqlite::Error> for ControlError {
    fn from(error: rusqlite::Error) -> ControlError {
        ControlError::Store(error.to_string())
    }
}

/// The store holds notifications, memories, documents and the servers' catalogs: readable by its
/// owner only. A new database file is made so before SQLite opens it (its `-wal` and `-shm` files
/// take the database's mode); an existing one, and those files, are made so too.
fn keep_private(path: &Path) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
        let _ = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(path);
        for suffix in ["", "-wal", "-shm"] {
            let mut file = path.as_os_str().to_owned();
            file.push(suffix);
            let file = std::path::PathBuf::from(file);
            if let Ok(metadata) = std::fs::metadata(&file)
                && metadata.permissions().mode() & 0o077 != 0
            {
                let _ = std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600));
            }
        }
    }
    #[cfg(not(unix))]
    let _ = path;
}

impl LocalStore {
    /// Opens (creating and migrating as needed) `store.db` in `data_dir`, or an in-memory
    /// database when there is no data dir. Blocking: call it at start-up or from a blocking task.
    pub fn open(data_dir: Option<&Path>) -> Result<LocalStore> {
        let (connection, path) = match data_dir {
            Some(dir) => {
                let path = dir.join(FILE_NAME);
                let shown = path.display().to_string();
                keep_private(&path);
                let connection = Connection::open(&path).map_err(|error| ControlError::Open {
                    path: shown.clone(),
                    message: error.to_string(),
                })?;
                (connection, shown)
            }
            None => (Connection::open_in_memory()?, ":memory:".to_owned()),
        };
        let mut connection = connection;
        let opened = (|| -> Result<()> {
            connection.busy_timeout(BUSY_TIMEOUT)?;
            let mode: String =
                connection.query_row("PRAGMA journal_mode = WAL", [], |row| row.get(0))?;
            if data_dir.is_some() && !mode.eq_ignore_ascii_case("wal") {
                return Err(ControlError::Invalid(format!(
                    "cannot switch to WAL mode (got {mode}); is the data dir on a network file system?"
                )));
            }
            connection.pragma_update(None, "synchronous", "NORMAL")?;
            connection.pragma_update(None, "foreign_keys", "ON")?;
            // The document index is the one large structure: a 32 MiB page cache (the default is
            // 2 MiB; memory is taken only as pages are read) keeps its hot pages in memory for
            // ingest and search, and sorts of many bm25 scores stay off disk.
            connection.pragma_update(None, "cache_size", -32_768)?;
            connection.pragma_update(None, "temp_store", "MEMORY")?;
            schema::migrate(&mut connection, &path)
        })();
        opened.map_err(|error| match error {
            open @ ControlError::Open { .. } => open,
            other => ControlError::Open {
                path: path.clone(),
                message: other.to_string(),
            },
        })?;
        if let Some(dir) = data_dir {
            settings::import_legacy_ids(&mut connection, &dir.join("server-ids.json"));
        }
        connection
            .pragma_update(None, "query_only", true)
            .map_err(|error| ControlError::Open {
                path: path.clone(),
                message: error.to_string(),
            })?;
        Ok(LocalStore {
            connection: Arc::new(Mutex::new(connection)),
            path: path.into(),
        })
    }

    /// Opens the store on the blocking pool.
    pub async fn open_async(data_dir: Option<PathBuf>) -> Result<LocalStore> {
        tokio::task::spawn_blocking(move || LocalStore::open(data_dir.as_deref()))
            .await
            .map_err(|error| ControlError::Worker(error.to_string()))?
    }

    /// Where the database lives (`:memory:` without a data dir).
    pub fn path(&self) -> &str {
        &self.path
    }

    /// Runs `work` on the connection on the blocking pool.
    async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce(&mut Connection) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        let connection = self.connection.clone();
        let mut span =
            crate::traces::Span::child(crate::traces::Kind::Internal, ("local store", None));
        span.set("db.system.name", "sqlite");
        let result = tokio::task::spawn_blocking(move || {
            let mut connection = connection
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            work(&mut connection)
        })
        .await
        .map_err(|error| ControlError::Worker(error.to_string()))
        .flatten();
        // The engine's failures, not a refusal of what was asked (`Invalid`).
        if let Err(error @ (ControlError::Store(_) | ControlError::Worker(_))) = &result {
            crate::metrics::global()
                .store_errors
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            span.fail("store", &error.to_string());
        }
        result
    }

    /// Runs `work`, which only reads, on the blocking pool (the connection is `query_only`).
    async fn read<T: Send + 'static>(
        &self,
        work: impl FnOnce(&Connection) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        self.run(move |connection| work(connection)).await
    }

    /// Runs `work` in one immediate transaction on the blocking pool (see [`immediate`]).
    async fn write<T: Send + 'static>(
        &self,
        work: impl FnOnce(&mut Transaction<'_>) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        self.run(move |connection| immediate(connection, work))
            .await
    }
}

/// The one way to write: `work` runs in a `BEGIN IMMEDIATE` transaction, committed when it
/// returns `Ok` and rolled back otherwise. The write lock is taken at `BEGIN`, where the busy
/// timeout applies, so a write waits for other processes' writes instead of being refused.
fn immediate<T>(
    connection: &mut Connection,
    work: impl FnOnce(&mut Transaction<'_>) -> Result<T>,
) -> Result<T> {
    connection.pragma_update(None, "query_only", false)?;
    let written = (|| {
        let mut transaction =
            connection.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let value = work(&mut transaction)?;
        transaction.commit()?;
        Ok(value)
    })();
    if let Err(error) = connection.pragma_update(None, "query_only", true) {
        // Setting a flag on the handle; it does not fail in practice, and the write is done.
        tracing::warn!("the local store stays writable outside transactions: {error}");
    }
    written
}

#[async_trait::async_trait]
impl ControlPlane for LocalStore {
    async fn create_notification(&self, new: NewNotification) -> Result<Notification> {
        self.write(move |c| notifications::create(c, new)).await
    }

    async fn list_notifications(
        &self,
        only_unread: bool,
        limit: Option<u32>,
    ) -> Result<Vec<Notification>> {
        self.read(move |c| notifications::list(c, only_unread, limit))
            .await
    }

    async fn complete_notification(&self, id: &str) -> Result<bool> {
        let id = id.to_owned();
        self.write(move |c| notifications::complete(c, &id)).await
    }

    async fn delete_notification(&self, id: &str) -> Result<bool> {
        let id = id.to_owned();
        self.write(move |c| notifications::delete(c, &id)).await
    }

    async fn clipboard_set(
        &self,
        name: Option<String>,
        idx: Option<i64>,
        value: ClipboardValue,
    ) -> Result<ClipboardWrite> {
        self.write(move |c| clipboard::set(c, name, idx, value))
            .await
    }

    async fn clipboard_get(
        &self,
        key: ClipboardKey,
        content_type: Option<String>,
    ) -> Result<Option<ClipboardEntry>> {
        let entry = self.read(move |c| clipboard::get(c, &key)).await?;
        Ok(entry.filter(|entry| {
            content_type
                .as_deref()
                .is_none_or(|wanted| entry.content_type == wanted)
        }))
    }

    async fn clipboard_list(
        &self,
        content_type: Option<String>,
        limit: u32,
        offset: u32,
    ) -> Result<(Vec<ClipboardEntry>, u64)> {
        self.read(move |c| clipboard::list(c, content_type.as_deref(), limit, offset))
            .await
    }

    async fn clipboard_delete(&self, key: Option<ClipboardKey>) -> Result<u64> {
        self.write(move |c| clipboard::delete(c, key.as_ref()))
            .await
    }

    async fn clipboard_push(&self, value: ClipboardValue) -> Result<ClipboardEntry> {
        self.write(move |c| clipboard::push(c, value)).await
    }

    async fn clipboard_pop(&self) -> Result<Option<ClipboardEntry>> {
        self.write(|t| clipboard::pop(t)).await
    }

    async fn memory_session_start(
        &self,
        content_session_id: String,
        agent_uuid: Option<String>,
    ) -> Result<MemorySession> {
        self.write(move |c| memory::start(c, content_session_id, agent_uuid))
            .await
    }

    async fn memory_session_end(&self, memory_session_id: &str) -> Result<SessionEnd> {
        let id = memory_session_id.to_owned();
        self.write(move |c| memory::end(c, &id)).await
    }

    async fn memory_observe(
        &self,
        session_uuid: &str,
        observation: NewObservation,
    ) -> Result<ObserveOutcome> {
        let session = session_uuid.to_owned();
        self.write(move |c| memory::observe(c, &session, observation))
            .await
    }

    async fn memory_search(&self, query: MemoryQuery) -> Result<Vec<MemoryHit>> {
        self.read(move |c| memory::search(c, &query)).await
    }

    async fn memory_details(&self, uuids: Vec<String>) -> Result<Vec<Memory>> {
        self.write(move |c| memory::details(c, &uuids)).await
    }

    async fn create_document(&self, new: NewDocument) -> Result<DocumentCreate> {
        self.write(move |c| documents::create(c, new)).await
    }

    async fn create_documents(&self, batch: Vec<NewDocument>) -> Vec<Result<DocumentCreate>> {
        let count = batch.len();
        match self
            .write(move |t| Ok(documents::create_many(t, batch)))
            .await
        {
            Ok(results) => results,
            Err(error) => (0..count)
                .map(|_| Err(ControlError::Invalid(format!("the batch failed: {error}"))))
                .collect(),
        }
    }

    async fn list_documents(&self, list: DocumentList) -> Result<(Vec<Document>, u64)> {
        self.read(move |c| documents::list(c, &list)).await
    }

    async fn search_documents(&self, search: DocumentSearch) -> Result<Vec<DocumentHit>> {
        self.read(move |c| documents::search(c, &search)).await
    }

    async fn get_document(
        &self,
        id: &str,
        include_content: bool,
        include_versions: bool,
    ) -> Result<Option<(Document, Vec<DocumentVersion>)>> {
        let id = id.to_owned();
        self.read(move |c| documents::get(c, &id, include_content, include_versions))
            .await
    }

    async fn update_document(&self, id: &str, update: DocumentUpdate) -> Result<Option<Document>> {
        let id = id.to_owned();
        self.write(move |c| documents::update(c, &id, update)).await
    }

    async fn delete_document(&self, id: &str) -> Result<bool> {
        let id = id.to_owned();
        self.write(move |c| documents::delete(c, &id)).await
    }

    async fn server_uuid(&self, server: &str) -> Result<String> {
        let server = server.to_owned();
        self.write(move |c| settings::server_uuid(c, &server)).await
    }

    async fn cache_server(&self, server: CachedServer) -> Result<()> {
        self.write(move |c| settings::cache_server(c, &server))
            .await
    }

    async fn cached_servers(&self) -> Result<Vec<CachedServer>> {
        self.read(settings::cached_servers).await
    }

    async fn record_activity(&self, batch: Vec<Activity>) -> Result<()> {
        self.write(move |c| activity::record(c, &batch)).await
    }

    async fn activity_stats(&self, since: i64) -> Result<Vec<ActivityStats>> {
        self.read(move |c| activity::stats(c, since)).await
    }

    async fn activity_report(&self, query: ActivityQuery) -> Result<ActivityReport> {
        self.read(move |c| activity::report(c, &query)).await
    }

    async fn activity_entries(
        &self,
        since: i64,
        until: i64,
        limit: u32,
    ) -> Result<Vec<ActivityEntry>> {
        self.read(move |c| activity::entries(c, since, until, limit))
            .await
    }

    async fn record_rate_limited(&self, entry: RateLimited) -> Result<()> {
        self.write(move |c| activity::record_rate_limited(c, entry))
            .await
    }

    async fn rate_limited(&self, since: i64) -> Result<RateLimited> {
        self.read(move |c| activity::rate_limited(c, since)).await
    }

    async fn prune_activity(&self, before: i64) -> Result<u64> {
        self.write(move |c| activity::prune(c, before)).await
    }

    async fn settings_version(&self) -> Result<i64> {
        self.read(settings::version).await
    }

    async fn settings(&self) -> Result<Settings> {
        self.read(settings::read).await
    }

    async fn set_server_enabled(&self, server: &str, enabled: bool) -> Result<()> {
        let server = server.to_owned();
        self.write(move |c| settings::set_enabled(c, "disabled_servers", &server, enabled))
            .await
    }

    async fn set_tool_enabled(&self, tool: &str, enabled: bool) -> Result<()> {
        let tool = tool.to_owned();
        self.write(move |c| settings::set_enabled(c, "disabled_tools", &tool, enabled))
            .await
    }

    async fn workspaces(&self) -> Result<Vec<Workspace>> {
        self.read(settings::workspaces).await
    }

    async fn create_workspace(&self, workspace: Workspace) -> Result<bool> {
        self.write(move |c| settings::create_workspace(c, &workspace))
            .await
    }

    async fn delete_workspace(&self, name: &str) -> Result<bool> {
        let name = name.to_owned();
        self.write(move |c| settings::delete_workspace(c, &name))
            .await
    }

    async fn set_workspace_exposure(
        &self,
        name: &str,
        exposure: Option<ToolExposure>,
    ) -> Result<bool> {
        let name = name.to_owned();
        self.write(move |c| settings::set_workspace_exposure(c, &name, exposure))
            .await
    }

    async fn switch_workspace(&self, name: Option<&str>) -> Result<bool> {
        let name = name.map(str::to_owned);
        self.write(move |c| settings::switch_workspace(c, name.as_deref()))
            .await
    }

    async fn active_workspace(&self) -> Result<Option<String>> {
        self.read(settings::active_workspace).await
    }
}

#[cfg(test)]
mod tests;
