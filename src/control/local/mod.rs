//! The local control plane: an embedded SQLite database, `store.db` in the data dir. WAL mode and
//! a busy timeout let several proxy processes share one data dir (readers never block, writers
//! wait their turn); `synchronous = NORMAL` in WAL mode keeps every committed transaction across a
//! crash of the process (`kill -9`), losing at most the last ones on a power cut. SQLite calls run
//! on tokio's blocking pool, never on the async workers. This module and its children are the
//! only place with SQL.

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

use rusqlite::Connection;

use crate::control::{
    Activity, ActivityStats, CachedServer, ClipboardEntry, ClipboardKey, ClipboardValue,
    ClipboardWrite, ControlError, ControlPlane, Document, DocumentCreate, DocumentHit,
    DocumentList, DocumentSearch, DocumentUpdate, DocumentVersion, Memory, MemoryHit, MemoryQuery,
    MemorySession, NewDocument, NewNotification, NewObservation, Notification, ObserveOutcome,
    Result, SessionEnd, Settings, Workspace,
};

/// The database's file name in the data dir.
pub const FILE_NAME: &str = "store.db";

/// How long a write waits for another process's write to finish before failing. Writes are
/// small (milliseconds), so a wait this long means something is stuck.
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

/// The SQLite store. Cheap to clone.
#[derive(Clone)]
pub struct LocalStore {
    connection: Arc<Mutex<Connection>>,
    path: Arc<str>,
}

impl LocalStore {
    /// Opens (creating and migrating as needed) `store.db` in `data_dir`, or an in-memory
    /// database when there is no data dir. Blocking: call it at start-up or from a blocking task.
    pub fn open(data_dir: Option<&Path>) -> Result<LocalStore> {
        let (connection, path) = match data_dir {
            Some(dir) => {
                let path = dir.join(FILE_NAME);
                let shown = path.display().to_string();
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
            settings::import_legacy_ids(&connection, &dir.join("server-ids.json"));
        }
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
        tokio::task::spawn_blocking(move || {
            let mut connection = connection
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            work(&mut connection)
        })
        .await
        .map_err(|error| ControlError::Worker(error.to_string()))?
    }
}

#[async_trait::async_trait]
impl ControlPlane for LocalStore {
    async fn create_notification(&self, new: NewNotification) -> Result<Notification> {
        self.run(move |c| notifications::create(c, new)).await
    }

    async fn list_notifications(
        &self,
        only_unread: bool,
        limit: Option<u32>,
    ) -> Result<Vec<Notification>> {
        self.run(move |c| notifications::list(c, only_unread, limit))
            .await
    }

    async fn complete_notification(&self, id: &str) -> Result<bool> {
        let id = id.to_owned();
        self.run(move |c| notifications::complete(c, &id)).await
    }

    async fn delete_notification(&self, id: &str) -> Result<bool> {
        let id = id.to_owned();
        self.run(move |c| notifications::delete(c, &id)).await
    }

    async fn clipboard_set(
        &self,
        name: Option<String>,
        idx: Option<i64>,
        value: ClipboardValue,
    ) -> Result<ClipboardWrite> {
        self.run(move |c| clipboard::set(c, name, idx, value)).await
    }

    async fn clipboard_get(
        &self,
        key: ClipboardKey,
        content_type: Option<String>,
    ) -> Result<Option<ClipboardEntry>> {
        let entry = self.run(move |c| clipboard::get(c, &key)).await?;
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
        self.run(move |c| clipboard::list(c, content_type.as_deref(), limit, offset))
            .await
    }

    async fn clipboard_delete(&self, key: Option<ClipboardKey>) -> Result<u64> {
        self.run(move |c| clipboard::delete(c, key.as_ref())).await
    }

    async fn clipboard_push(&self, value: ClipboardValue) -> Result<ClipboardEntry> {
        self.run(move |c| clipboard::push(c, value)).await
    }

    async fn clipboard_pop(&self) -> Result<Option<ClipboardEntry>> {
        self.run(clipboard::pop).await
    }

    async fn memory_session_start(
        &self,
        content_session_id: String,
        agent_uuid: Option<String>,
    ) -> Result<MemorySession> {
        self.run(move |c| memory::start(c, content_session_id, agent_uuid))
            .await
    }

    async fn memory_session_end(&self, memory_session_id: &str) -> Result<SessionEnd> {
        let id = memory_session_id.to_owned();
        self.run(move |c| memory::end(c, &id)).await
    }

    async fn memory_observe(
        &self,
        session_uuid: &str,
        observation: NewObservation,
    ) -> Result<ObserveOutcome> {
        let session = session_uuid.to_owned();
        self.run(move |c| memory::observe(c, &session, observation))
            .await
    }

    async fn memory_search(&self, query: MemoryQuery) -> Result<Vec<MemoryHit>> {
        self.run(move |c| memory::search(c, &query)).await
    }

    async fn memory_details(&self, uuids: Vec<String>) -> Result<Vec<Memory>> {
        self.run(move |c| memory::details(c, &uuids)).await
    }

    async fn create_document(&self, new: NewDocument) -> Result<DocumentCreate> {
        self.run(move |c| documents::create(c, new)).await
    }

    async fn create_documents(&self, batch: Vec<NewDocument>) -> Vec<Result<DocumentCreate>> {
        let count = batch.len();
        match self
            .run(move |c| Ok(documents::create_many(c, batch)))
            .await
        {
            Ok(results) => results,
            Err(error) => {
                let message = error.to_string();
                (0..count)
                    .map(|_| Err(ControlError::Worker(message.clone())))
                    .collect()
            }
        }
    }

    async fn list_documents(&self, list: DocumentList) -> Result<(Vec<Document>, u64)> {
        self.run(move |c| documents::list(c, &list)).await
    }

    async fn search_documents(&self, search: DocumentSearch) -> Result<Vec<DocumentHit>> {
        self.run(move |c| documents::search(c, &search)).await
    }

    async fn get_document(
        &self,
        id: &str,
        include_content: bool,
        include_versions: bool,
    ) -> Result<Option<(Document, Vec<DocumentVersion>)>> {
        let id = id.to_owned();
        self.run(move |c| documents::get(c, &id, include_content, include_versions))
            .await
    }

    async fn update_document(&self, id: &str, update: DocumentUpdate) -> Result<Option<Document>> {
        let id = id.to_owned();
        self.run(move |c| documents::update(c, &id, update)).await
    }

    async fn delete_document(&self, id: &str) -> Result<bool> {
        let id = id.to_owned();
        self.run(move |c| documents::delete(c, &id)).await
    }

    async fn server_uuid(&self, server: &str) -> Result<String> {
        let server = server.to_owned();
        self.run(move |c| settings::server_uuid(c, &server)).await
    }

    async fn cache_server(&self, server: CachedServer) -> Result<()> {
        self.run(move |c| settings::cache_server(c, &server)).await
    }

    async fn cached_servers(&self) -> Result<Vec<CachedServer>> {
        self.run(settings::cached_servers).await
    }

    async fn record_activity(&self, batch: Vec<Activity>) -> Result<()> {
        self.run(move |c| activity::record(c, &batch)).await
    }

    async fn activity_stats(&self, since: i64) -> Result<Vec<ActivityStats>> {
        self.run(move |c| activity::stats(c, since)).await
    }

    async fn prune_activity(&self, before: i64) -> Result<u64> {
        self.run(move |c| activity::prune(c, before)).await
    }

    async fn settings_version(&self) -> Result<i64> {
        self.run(settings::version).await
    }

    async fn settings(&self) -> Result<Settings> {
        self.run(settings::read).await
    }

    async fn set_server_enabled(&self, server: &str, enabled: bool) -> Result<()> {
        let server = server.to_owned();
        self.run(move |c| settings::set_enabled(c, "disabled_servers", &server, enabled))
            .await
    }

    async fn set_tool_enabled(&self, tool: &str, enabled: bool) -> Result<()> {
        let tool = tool.to_owned();
        self.run(move |c| settings::set_enabled(c, "disabled_tools", &tool, enabled))
            .await
    }

    async fn workspaces(&self) -> Result<Vec<Workspace>> {
        self.run(settings::workspaces).await
    }

    async fn create_workspace(&self, workspace: Workspace) -> Result<bool> {
        self.run(move |c| settings::create_workspace(c, &workspace))
            .await
    }

    async fn delete_workspace(&self, name: &str) -> Result<bool> {
        let name = name.to_owned();
        self.run(move |c| settings::delete_workspace(c, &name))
            .await
    }

    async fn switch_workspace(&self, name: Option<&str>) -> Result<bool> {
        let name = name.map(str::to_owned);
        self.run(move |c| settings::switch_workspace(c, name.as_deref()))
            .await
    }

    async fn active_workspace(&self) -> Result<Option<String>> {
        self.run(settings::active_workspace).await
    }
}

#[cfg(test)]
mod tests;
