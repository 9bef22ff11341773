//! The local control plane on PostgreSQL (`--database-url`), for proxies that share one store
//! across machines: the same tables, rules and answers as the SQLite store (`local`), in
//! PostgreSQL's types, full-text search on `tsvector`s with GIN indexes (documents ranked by
//! BM25 as SQLite's FTS5 ranks them, `ts_headline` snippets). This module and its children,
//! with `local`, are the only places with SQL.
//!
//! Every write is one transaction that first takes a transaction-scoped advisory lock
//! (`WRITE_LOCK`): writes are serialized across every proxy on the database, as SQLite's
//! `BEGIN IMMEDIATE` serializes them, so read-then-write steps (the clipboard's next index, a
//! document's dedup, a server's UUID) need no retry logic of their own. Writes are small next to
//! the network around them. Reads take a connection and no transaction. A settings change bumps
//! `meta.settings_version` and sends `NOTIFY pluggedin_settings` with the new version in the
//! same transaction (delivered at commit); a running proxy hears it on a connection of its own
//! (`listen`), started on first use.

mod activity;
mod clipboard;
mod documents;
mod fleet;
mod listen;
mod memory;
mod notifications;
mod owners;
mod pool;
mod schema;
mod settings;
mod tls;

use std::future::Future;
use std::sync::{Arc, OnceLock};

use tokio_postgres::Transaction;

use crate::config::ToolExposure;
use crate::control::{
    Activity, ActivityEntry, ActivityQuery, ActivityReport, ActivityStats, CachedServer,
    ClipboardEntry, ClipboardKey, ClipboardValue, ClipboardWrite, ControlError, ControlPlane,
    Document, DocumentCreate, DocumentHit, DocumentList, DocumentSearch, DocumentUpdate,
    DocumentVersion, Memory, MemoryHit, MemoryQuery, MemorySession, NewDocument, NewNotification,
    NewObservation, Notification, ObserveOutcome, RateLimited, Result, SessionEnd, Settings,
    SettingsChanges, Workspace,
};
use pool::{CALL_TIMEOUT, Pool, Target, unavailable};

/// The advisory lock every write transaction takes: "pluggedi" in ASCII, a key no other
/// application on a shared server is likely to pick.
const WRITE_LOCK: i64 = 0x706c_7567_6765_6469;

/// The PostgreSQL store. Cheap to clone.
#[derive(Clone)]
pub struct PostgresStore {
    pool: Arc<Pool>,
    shown: Arc<str>,
    /// The settings listener's wake-ups, once something asked for them (a running proxy; a
    /// management command never does, and opens no listening connection).
    changes: Arc<OnceLock<tokio::sync::watch::Receiver<u64>>>,
    /// Where the listener files the replicas' notices.
    inbox: Arc<crate::control::fleet::Inbox>,
    /// The locks of the servers of fleet scope this replica runs, on a connection of their own.
    owners: Arc<owners::Owners>,
}

impl PostgresStore {
    /// The listener's wake-ups, the listener started on first use (management commands, which
    /// never ask, open no listening connection).
    fn listening(&self) -> &tokio::sync::watch::Receiver<u64> {
        self.changes.get_or_init(|| {
            let (config, tls) = self.pool.target();
            listen::Listener::start(config, tls, self.shown.clone(), self.inbox.clone())
        })
    }

    /// Connects to the database at `url` (`postgres://user:password@host:port/dbname`) and
    /// migrates it. Fails when it cannot be reached, refuses the login, or was written by a
    /// newer version; errors name the database without the password.
    pub async fn connect(url: &str) -> Result<PostgresStore> {
        let Target { config, tls, shown } = Target::parse(url)?;
        let pool = Pool::new(config, tls);
        let opened = async {
            let mut client = pool.get().await?;
            let migrated = schema::migrate(&mut client, &shown).await;
            client.finished();
            migrated
        };
        match tokio::time::timeout(CALL_TIMEOUT, opened).await {
            Ok(Ok(())) => {}
            Ok(Err(open @ ControlError::Open { .. })) => return Err(open),
            Ok(Err(ControlError::Store(message))) => {
                return Err(ControlError::Open {
                    path: shown,
                    message,
                });
            }
            Ok(Err(other)) => {
                return Err(ControlError::Open {
                    path: shown,
                    message: other.to_string(),
                });
            }
            Err(_) => {
                return Err(ControlError::Open {
                    path: shown,
                    message: format!("no answer within {CALL_TIMEOUT:?}"),
                });
            }
        }
        Ok(PostgresStore {
            pool: Arc::new(pool),
            shown: shown.into(),
            changes: Arc::default(),
            inbox: crate::control::fleet::Inbox::new(),
            owners: Arc::default(),
        })
    }

    /// The database, as `postgres://user@host:port/dbname` (never the password).
    pub fn path(&self) -> &str {
        &self.shown
    }

    /// Runs one call: bounded by [`CALL_TIMEOUT`], in a span, its engine failures counted.
    async fn observed<T>(&self, work: impl Future<Output = Result<T>>) -> Result<T> {
        let mut span =
            crate::traces::Span::child(crate::traces::Kind::Internal, ("local store", None));
        span.set("db.system.name", "postgresql");
        let result = tokio::time::timeout(CALL_TIMEOUT, work)
            .await
            .unwrap_or_else(|_| Err(unavailable(format!("no answer within {CALL_TIMEOUT:?}"))));
        if let Err(error @ (ControlError::Store(_) | ControlError::Worker(_))) = &result {
            crate::metrics::global()
                .store_errors
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            span.fail("store", &error.to_string());
        }
        result
    }
}

/// Opens the one kind of write transaction: the write lock taken first (see the module's
/// comment). Rolled back if dropped before `commit`.
async fn begin_write(client: &mut tokio_postgres::Client) -> Result<Transaction<'_>> {
    let transaction = client.transaction().await?;
    transaction
        .execute("SELECT pg_advisory_xact_lock($1)", &[&WRITE_LOCK])
        .await?;
    Ok(transaction)
}

/// A read, or a single statement outside the write lock (the fleet's): `$work` with a pooled
/// connection bound to `$client`.
macro_rules! read {
    ($store:ident, |$client:ident| $work:expr) => {
        $store
            .observed(async {
                let mut pooled = $store.pool.get().await?;
                let result = {
                    let $client: &tokio_postgres::Client = &pooled;
                    $work.await
                };
                pooled.finished();
                result
            })
            .await
    };
}

/// A write: `$work` in one write transaction bound to `$transaction`, committed when it
/// returns `Ok` and rolled back otherwise.
macro_rules! write_tx {
    ($store:ident, |$transaction:ident| $work:expr) => {
        $store
            .observed(async {
                let mut pooled = $store.pool.get().await?;
                let result = async {
                    #[allow(unused_mut, reason = "a savepoint needs the transaction mutable")]
                    let mut $transaction = begin_write(&mut pooled).await?;
                    let value = $work.await?;
                    $transaction.commit().await?;
                    Ok(value)
                }
                .await;
                pooled.finished();
                result
            })
            .await
    };
}

#[async_trait::async_trait]
impl ControlPlane for PostgresStore {
    async fn create_notification(&self, new: NewNotification) -> Result<Notification> {
        write_tx!(self, |t| notifications::create(&t, new))
    }

    async fn list_notifications(
        &self,
        only_unread: bool,
        limit: Option<u32>,
    ) -> Result<Vec<Notification>> {
        read!(self, |c| notifications::list(c, only_unread, limit))
    }

    async fn complete_notification(&self, id: &str) -> Result<bool> {
        write_tx!(self, |t| notifications::complete(&t, id))
    }

    async fn delete_notification(&self, id: &str) -> Result<bool> {
        write_tx!(self, |t| notifications::delete(&t, id))
    }

    async fn clipboard_set(
        &self,
        name: Option<String>,
        idx: Option<i64>,
        value: ClipboardValue,
    ) -> Result<ClipboardWrite> {
        write_tx!(self, |t| clipboard::set(&t, name, idx, value))
    }

    async fn clipboard_get(
        &self,
        key: ClipboardKey,
        content_type: Option<String>,
    ) -> Result<Option<ClipboardEntry>> {
        let entry = read!(self, |c| clipboard::get(c, &key))?;
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
        read!(self, |c| clipboard::list(
            c,
            content_type.as_deref(),
            limit,
            offset
        ))
    }

    async fn clipboard_delete(&self, key: Option<ClipboardKey>) -> Result<u64> {
        write_tx!(self, |t| clipboard::delete(&t, key.as_ref()))
    }

    async fn clipboard_push(&self, value: ClipboardValue) -> Result<ClipboardEntry> {
        write_tx!(self, |t| clipboard::push(&t, value))
    }

    async fn clipboard_pop(&self) -> Result<Option<ClipboardEntry>> {
        write_tx!(self, |t| clipboard::pop(&t))
    }

    async fn memory_session_start(
        &self,
        content_session_id: String,
        agent_uuid: Option<String>,
    ) -> Result<MemorySession> {
        write_tx!(self, |t| memory::start(&t, content_session_id, agent_uuid))
    }

    async fn memory_session_end(&self, memory_session_id: &str) -> Result<SessionEnd> {
        write_tx!(self, |t| memory::end(&t, memory_session_id))
    }

    async fn memory_observe(
        &self,
        session_uuid: &str,
        observation: NewObservation,
    ) -> Result<ObserveOutcome> {
        write_tx!(self, |t| memory::observe(&t, session_uuid, observation))
    }

    async fn memory_search(&self, query: MemoryQuery) -> Result<Vec<MemoryHit>> {
        read!(self, |c| memory::search(c, &query))
    }

    async fn memory_details(&self, uuids: Vec<String>) -> Result<Vec<Memory>> {
        write_tx!(self, |t| memory::details(&t, &uuids))
    }

    async fn create_document(&self, new: NewDocument) -> Result<DocumentCreate> {
        write_tx!(self, |t| documents::create(&t, new))
    }

    async fn create_documents(&self, batch: Vec<NewDocument>) -> Vec<Result<DocumentCreate>> {
        let count = batch.len();
        let written: Result<Vec<Result<DocumentCreate>>> =
            write_tx!(self, |t| documents::create_many(&mut t, batch));
        match written {
            Ok(results) => results,
            Err(error) => (0..count)
                .map(|_| Err(ControlError::Invalid(format!("the batch failed: {error}"))))
                .collect(),
        }
    }

    async fn list_documents(&self, list: DocumentList) -> Result<(Vec<Document>, u64)> {
        read!(self, |c| documents::list(c, &list))
    }

    async fn search_documents(&self, search: DocumentSearch) -> Result<Vec<DocumentHit>> {
        read!(self, |c| documents::search(c, &search))
    }

    async fn get_document(
        &self,
        id: &str,
        include_content: bool,
        include_versions: bool,
    ) -> Result<Option<(Document, Vec<DocumentVersion>)>> {
        read!(self, |c| documents::get(
            c,
            id,
            include_content,
            include_versions
        ))
    }

    async fn update_document(&self, id: &str, update: DocumentUpdate) -> Result<Option<Document>> {
        write_tx!(self, |t| documents::update(&t, id, update))
    }

    async fn delete_document(&self, id: &str) -> Result<bool> {
        write_tx!(self, |t| documents::delete(&t, id))
    }

    async fn server_uuid(&self, server: &str) -> Result<String> {
        write_tx!(self, |t| settings::server_uuid(&t, server))
    }

    async fn cache_server(&self, server: CachedServer) -> Result<()> {
        write_tx!(self, |t| settings::cache_server(&t, &server))
    }

    async fn cached_servers(&self) -> Result<Vec<CachedServer>> {
        read!(self, |c| settings::cached_servers(c))
    }

    async fn record_activity(&self, batch: Vec<Activity>) -> Result<()> {
        write_tx!(self, |t| activity::record(&t, &batch))
    }

    async fn activity_stats(&self, since: i64) -> Result<Vec<ActivityStats>> {
        read!(self, |c| activity::stats(c, since))
    }

    async fn activity_report(&self, query: ActivityQuery) -> Result<ActivityReport> {
        read!(self, |c| activity::report(c, &query))
    }

    async fn activity_entries(
        &self,
        since: i64,
        until: i64,
        limit: u32,
    ) -> Result<Vec<ActivityEntry>> {
        read!(self, |c| activity::entries(c, since, until, limit))
    }

    async fn record_rate_limited(&self, entry: RateLimited) -> Result<()> {
        write_tx!(self, |t| activity::record_rate_limited(&t, entry))
    }

    async fn rate_limited(&self, since: i64) -> Result<RateLimited> {
        read!(self, |c| activity::rate_limited(c, since))
    }

    async fn prune_activity(&self, before: i64) -> Result<u64> {
        write_tx!(self, |t| activity::prune(&t, before))
    }

    async fn settings_version(&self) -> Result<i64> {
        read!(self, |c| settings::version(c))
    }

    async fn settings(&self) -> Result<Settings> {
        read!(self, |c| settings::read(c))
    }

    fn fleet(&self) -> Option<Arc<dyn crate::control::fleet::FleetStore>> {
        Some(Arc::new(self.clone()))
    }

    fn settings_changes(&self) -> Option<SettingsChanges> {
        Some(SettingsChanges::new(self.listening().clone()))
    }

    async fn set_server_enabled(&self, server: &str, enabled: bool) -> Result<()> {
        write_tx!(self, |t| settings::set_enabled(
            &t,
            settings::Switch::Server,
            server,
            enabled
        ))
    }

    async fn set_tool_enabled(&self, tool: &str, enabled: bool) -> Result<()> {
        write_tx!(self, |t| settings::set_enabled(
            &t,
            settings::Switch::Tool,
            tool,
            enabled
        ))
    }

    async fn workspaces(&self) -> Result<Vec<Workspace>> {
        read!(self, |c| settings::workspaces(c))
    }

    async fn create_workspace(&self, workspace: Workspace) -> Result<bool> {
        write_tx!(self, |t| settings::create_workspace(&t, &workspace))
    }

    async fn delete_workspace(&self, name: &str) -> Result<bool> {
        write_tx!(self, |t| settings::delete_workspace(&t, name))
    }

    async fn switch_workspace(&self, name: Option<&str>) -> Result<bool> {
        write_tx!(self, |t| settings::switch_workspace(&t, name))
    }

    async fn set_workspace_exposure(
        &self,
        name: &str,
        exposure: Option<ToolExposure>,
    ) -> Result<bool> {
        write_tx!(self, |t| settings::set_workspace_exposure(
            &t, name, exposure
        ))
    }

    async fn active_workspace(&self) -> Result<Option<String>> {
        read!(self, |c| settings::active_workspace(c))
    }

    /// `SELECT 1` on a pooled connection (made afresh when none is idle). Not through `observed`:
    /// a load balancer asks every second, and an outage is not a store error per poll nor a span.
    async fn ping(&self) -> Result<()> {
        let answered = tokio::time::timeout(CALL_TIMEOUT, async {
            let mut pooled = self.pool.get().await?;
            pooled.simple_query("SELECT 1").await?;
            pooled.finished();
            Ok(())
        })
        .await
        .unwrap_or_else(|_| Err(unavailable(format!("no answer within {CALL_TIMEOUT:?}"))));
        answered.map_err(|error| match error {
            ControlError::Store(message) => {
                ControlError::Store(format!("{}: {message}", self.shown))
            }
            other => other,
        })
    }
}

#[cfg(test)]
mod tests;

#[async_trait::async_trait]
impl crate::control::fleet::FleetStore for PostgresStore {
    async fn announce(&self, notices: &[crate::control::fleet::Notice]) -> Result<()> {
        let texts: Vec<String> = notices
            .iter()
            .filter_map(|notice| serde_json::to_string(notice).ok())
            .filter(|text| text.len() <= crate::control::fleet::NOTICE_BYTES)
            .collect();
        if texts.is_empty() {
            return Ok(());
        }
        read!(self, |c| fleet::announce(c, &texts))
    }

    async fn bind_session(&self, id: &str, owner: &[u8; 32]) -> Result<()> {
        read!(self, |c| fleet::bind_session(c, id, owner))
    }

    async fn share_rate_counts(
        &self,
        counts: &[crate::control::fleet::RateCount],
        window_ms: i64,
        full_at: [i64; 2],
    ) -> Result<crate::control::fleet::SharedRates> {
        read!(self, |c| fleet::share_rate_counts(
            c, counts, window_ms, full_at
        ))
    }

    fn notices(&self) -> Arc<crate::control::fleet::Inbox> {
        self.listening();
        self.inbox.clone()
    }

    async fn join(&self, url: &str, version: &str) -> Result<i64> {
        read!(self, |c| fleet::join(c, url, version))
    }

    async fn beat(
        &self,
        id: i64,
        url: &str,
        draining: bool,
        session_ttl_ms: i64,
    ) -> Result<Vec<crate::control::fleet::Replica>> {
        read!(self, |c| fleet::beat(c, id, url, draining, session_ttl_ms))
    }

    async fn replica(&self, id: i64) -> Result<Option<crate::control::fleet::Replica>> {
        read!(self, |c| fleet::replica(c, id))
    }

    async fn leave(&self, id: i64) -> Result<()> {
        self.owners.release().await;
        read!(self, |c| fleet::leave(c, id))
    }

    async fn server_owners(&self) -> Result<Vec<(String, crate::control::fleet::Replica)>> {
        read!(self, |c| fleet::server_owners(c))
    }

    async fn claim_servers(
        &self,
        me: i64,
        servers: &[String],
    ) -> Result<Vec<crate::control::fleet::ServerOwner>> {
        let (config, tls) = self.pool.target();
        self.observed(self.owners.claim(&config, tls.as_ref(), me, servers))
            .await
    }

    async fn session_key(&self, fresh: &str) -> Result<String> {
        read!(self, |c| fleet::session_key(c, fresh))
    }

    async fn save_session(&self, record: &crate::control::fleet::SessionRecord) -> Result<()> {
        read!(self, |c| fleet::save_session(c, record))
    }

    async fn session(&self, id: &str) -> Result<Option<crate::control::fleet::SessionRecord>> {
        read!(self, |c| fleet::session(c, id))
    }

    async fn adopt_session(
        &self,
        id: &str,
        from: Option<i64>,
        to: i64,
    ) -> Result<Option<crate::control::fleet::SessionRecord>> {
        read!(self, |c| fleet::adopt_session(c, id, from, to))
    }

    async fn set_session_state(&self, me: i64, id: &str, state: &str) -> Result<()> {
        read!(self, |c| fleet::set_session_state(c, me, id, state))
    }

    async fn touch_sessions(&self, me: i64, ids: &[String]) -> Result<Vec<String>> {
        read!(self, |c| fleet::touch_sessions(c, me, ids))
    }

    async fn delete_sessions(&self, me: i64, ids: &[String]) -> Result<()> {
        read!(self, |c| fleet::delete_sessions(c, me, ids))
    }
}
