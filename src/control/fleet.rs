//! What replicas of one fleet share through the store: who is serving (each replica's address
//! for the others, a heartbeat by the store's clock) and the HTTP sessions (a small row each:
//! the client's `initialize` parameters, who owns it, what it asked to hear, and which replica
//! holds it now). Only the PostgreSQL store keeps them ([`ControlPlane::fleet`](super::ControlPlane::fleet));
//! the serving side (`upstream::http::fleet`) decides what to do with them.

/// A replica as the store knows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Replica {
    pub id: i64,
    /// Where the other replicas reach it (`--replica-url`).
    pub url: String,
    pub draining: bool,
}

/// One shared HTTP session.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SessionRecord {
    pub id: String,
    /// The replica that holds it; `None` once that replica left and before another adopts it.
    pub home: Option<i64>,
    /// The client's `initialize` parameters, as JSON.
    pub init: String,
    /// The SHA-256 of the bearer token it is bound to.
    pub owner: Option<[u8; 32]>,
    /// Made without a token while tokens are required.
    pub anonymous: bool,
    /// What the client asked to hear (log level, resource subscriptions), as JSON.
    pub state: String,
}

/// How long a replica's heartbeat may be missing before the others count it gone (its row
/// deleted, its sessions left for another to adopt). Long next to the heartbeat, so that a
/// database restart, which stops every heartbeat at once, does not end a healthy fleet.
pub const REPLICA_GONE_MS: i64 = 30_000;

/// The fleet's part of the store.
#[async_trait::async_trait]
pub trait FleetStore: Send + Sync {
    /// Registers a replica reachable at `url`; its new id.
    async fn join(&self, url: &str, version: &str) -> super::Result<i64>;
    /// Replica `id` is alive (and draining or not): its row refreshed (made again if another
    /// replica counted it gone), replicas silent past [`REPLICA_GONE_MS`] removed with their
    /// sessions left homeless, homeless sessions unused for `session_ttl_ms` deleted. The
    /// replicas serving now.
    async fn beat(
        &self,
        id: i64,
        url: &str,
        draining: bool,
        session_ttl_ms: i64,
    ) -> super::Result<Vec<Replica>>;
    /// Replica `id` leaves: its row deleted, its sessions left homeless for another to adopt.
    async fn leave(&self, id: i64) -> super::Result<()>;
    /// The key that seals session ids, shared by the fleet: `fresh` stored unless one is already.
    async fn session_key(&self, fresh: &str) -> super::Result<String>;
    /// Writes a session's row (made or replaced).
    async fn save_session(&self, record: &SessionRecord) -> super::Result<()>;
    async fn session(&self, id: &str) -> super::Result<Option<SessionRecord>>;
    /// Makes replica `to` the session's home if it is still `from`'s: the row when it was.
    async fn adopt_session(
        &self,
        id: &str,
        from: Option<i64>,
        to: i64,
    ) -> super::Result<Option<SessionRecord>>;
    async fn set_session_state(&self, id: &str, state: &str) -> super::Result<()>;
    /// Marks sessions as used now (their idle expiry counts from here).
    async fn touch_sessions(&self, ids: &[String]) -> super::Result<()>;
    async fn delete_sessions(&self, ids: &[String]) -> super::Result<()>;
}
