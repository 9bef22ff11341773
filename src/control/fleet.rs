//! What replicas of one fleet share through the store: who is serving (each replica's address
//! for the others, a heartbeat by the store's clock) and the HTTP sessions (a small row each:
//! the client's `initialize` parameters, who owns it, what it asked to hear, and which replica
//! holds it now). Only the PostgreSQL store keeps them ([`ControlPlane::fleet`](super::ControlPlane::fleet));
//! the serving side (`upstream::http::fleet`) decides what to do with them.
//!
//! Replicas also tell each other what their servers said ([`Notice`]: a list changed, a
//! resource was updated), through the store (`NOTIFY`), into a bounded [`Inbox`] on each, and
//! share what their rate limits counted ([`RateCount`]): each adds its own counts once a second
//! and reads the fleet's totals back, so no request waits on the store.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};

use crate::sync::lock;

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
    /// Replica `id`, if it is serving (its heartbeat within [`REPLICA_GONE_MS`]).
    async fn replica(&self, id: i64) -> super::Result<Option<Replica>>;
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
    /// Keeps what session `id`'s client asked to hear, if replica `me` is its home.
    async fn set_session_state(&self, me: i64, id: &str, state: &str) -> super::Result<()>;
    /// Binds a session made without a token to the token first used with it (the SHA-256),
    /// unless it is bound already.
    async fn bind_session(&self, id: &str, owner: &[u8; 32]) -> super::Result<()>;
    /// Marks replica `me`'s sessions `ids` as used now (their idle expiry counts from here),
    /// taking back those left homeless while `me` was counted gone. The ones among `ids` whose
    /// home is another replica: adopted there while `me` could not be reached, so that the copy
    /// `me` still holds is stale.
    async fn touch_sessions(&self, me: i64, ids: &[String]) -> super::Result<Vec<String>>;
    /// Deletes the rows of sessions `ids` that are replica `me`'s (or homeless).
    async fn delete_sessions(&self, me: i64, ids: &[String]) -> super::Result<()>;
    /// Adds this replica's rate-limit counts to the fleet's (one statement; windows over by
    /// `window_ms` start again with the count added) and reads back the totals: each key's
    /// sent, then up to [`RATE_FULL_MAX`] keys of any replica whose count in a live window
    /// reached `full_at` (by kind; `i64::MAX` for a limit that is off). Windows over for a while
    /// are deleted.
    async fn share_rate_counts(
        &self,
        counts: &[RateCount],
        window_ms: i64,
        full_at: [i64; 2],
    ) -> super::Result<SharedRates>;
    /// For each of `servers` (those of fleet scope), in order: this replica runs it if it holds
    /// its lock, or takes the lock if nobody holds it; otherwise the replica that runs it, if
    /// it said so and serves. Locks live on a connection of their own and end with it, so a
    /// replica that dies gives its servers up at once; one that left takes none again.
    async fn claim_servers(&self, me: i64, servers: &[String]) -> super::Result<Vec<ServerOwner>>;
    /// The servers of fleet scope whose owners serve, by name, each with its owner.
    async fn server_owners(&self) -> super::Result<Vec<(String, Replica)>>;
    /// Tells every replica listening on the store (the sender too) what a server said.
    async fn announce(&self, notices: &[Notice]) -> super::Result<()>;
    /// What the replicas announce, from a connection the store keeps listening (the one that
    /// carries the settings' wake-ups).
    fn notices(&self) -> Arc<Inbox>;
}

/// One rate-limit window's count: what a replica adds, or the fleet's total.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RateCount {
    /// What is counted: 0 tool calls, 1 other requests.
    pub kind: i16,
    /// Whose budget: a token's SHA-256 or a client address, as bytes (never a token).
    pub key: Vec<u8>,
    /// When the window started, in milliseconds by the store's clock.
    pub started_ms: i64,
    pub count: i64,
}

/// The fleet's rate-limit totals, as [`FleetStore::share_rate_counts`] read them.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SharedRates {
    /// The store's clock when it answered, in milliseconds since the epoch.
    pub now_ms: i64,
    /// The totals of the keys sent, each after what was added.
    pub added: Vec<RateCount>,
    /// Keys whose count reached their limit in a live window, whoever counted them.
    pub full: Vec<RateCount>,
}

/// The most keys at their limit one share reads back.
pub const RATE_FULL_MAX: i64 = 1_000;

/// Who runs a server of fleet scope, as [`FleetStore::claim_servers`] found it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ServerOwner {
    /// This replica: it holds the server's lock.
    Me,
    /// Another replica, which serves.
    Other(Replica),
    /// Another replica holds the lock but has not said so yet, or the one named is gone.
    Unknown,
}

/// What one replica heard from one of its servers, for the others: they look again at that
/// server themselves, since a server may tell only the connection through which it changed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Notice {
    /// The replica that heard it.
    pub from: i64,
    /// The server, by its configured name.
    pub server: String,
    #[serde(flatten)]
    pub heard: Heard,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "heard", rename_all = "camelCase")]
pub enum Heard {
    /// One of its lists (tools, prompts, resources) changed.
    ListChanged,
    /// A resource was updated.
    ResourceUpdated { uri: String },
}

/// The most a notice may take as text: PostgreSQL's `NOTIFY` payload is under 8,000 bytes.
pub const NOTICE_BYTES: usize = 7_900;

/// How many notices an inbox holds before it gives them up for one resynchronisation.
const INBOX_NOTICES: usize = 1_024;

/// Notices from other replicas, waiting to be acted on. Bounded: past `INBOX_NOTICES` (a
/// flood, or a reader that fell behind) they are dropped and the inbox asks for a
/// resynchronisation instead, as it does when its connection was lost (notices sent meanwhile
/// are gone), so nothing is missed for good and nothing grows.
#[derive(Default)]
pub struct Inbox {
    state: Mutex<Waiting>,
    arrived: tokio::sync::Notify,
}

#[derive(Default)]
struct Waiting {
    notices: VecDeque<Notice>,
    resync: bool,
}

/// What an inbox held when it was read.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Mail {
    pub notices: Vec<Notice>,
    /// Notices may have been missed: look at everything again.
    pub resync: bool,
}

impl Inbox {
    pub fn new() -> Arc<Inbox> {
        Arc::default()
    }

    /// Files a notice (one already waiting is not filed twice).
    pub fn deliver(&self, notice: Notice) {
        let mut waiting = lock(&self.state);
        if waiting.resync || waiting.notices.contains(&notice) {
            return;
        }
        if waiting.notices.len() == INBOX_NOTICES {
            waiting.notices.clear();
            waiting.resync = true;
        } else {
            waiting.notices.push_back(notice);
        }
        drop(waiting);
        self.arrived.notify_one();
    }

    /// Notices may have been missed.
    pub fn resync(&self) {
        let mut waiting = lock(&self.state);
        waiting.notices.clear();
        waiting.resync = true;
        drop(waiting);
        self.arrived.notify_one();
    }

    /// Waits until something is waiting, and takes it all.
    pub async fn next(&self) -> Mail {
        loop {
            let arrived = self.arrived.notified();
            {
                let mut waiting = lock(&self.state);
                if waiting.resync || !waiting.notices.is_empty() {
                    return Mail {
                        notices: waiting.notices.drain(..).collect(),
                        resync: std::mem::take(&mut waiting.resync),
                    };
                }
            }
            arrived.await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn notice(server: &str) -> Notice {
        Notice {
            from: 1,
            server: server.to_owned(),
            heard: Heard::ListChanged,
        }
    }

    #[test]
    fn a_notice_reads_as_small_json_and_back() {
        let updated = Notice {
            from: 7,
            server: "files".to_owned(),
            heard: Heard::ResourceUpdated {
                uri: "file:///a".to_owned(),
            },
        };
        let text = serde_json::to_string(&updated).unwrap();
        assert_eq!(
            text,
            r#"{"from":7,"server":"files","heard":"resourceUpdated","uri":"file:///a"}"#
        );
        assert_eq!(serde_json::from_str::<Notice>(&text).unwrap(), updated);
        let listed = serde_json::to_string(&notice("files")).unwrap();
        assert_eq!(
            listed,
            r#"{"from":1,"server":"files","heard":"listChanged"}"#
        );
    }

    #[tokio::test]
    async fn the_inbox_coalesces_repeats_and_gives_a_flood_up_for_one_resync() {
        let inbox = Inbox::new();
        inbox.deliver(notice("a"));
        inbox.deliver(notice("a"));
        inbox.deliver(notice("b"));
        assert_eq!(
            inbox.next().await,
            Mail {
                notices: vec![notice("a"), notice("b")],
                resync: false
            }
        );
        for n in 0..=INBOX_NOTICES {
            inbox.deliver(notice(&n.to_string()));
        }
        inbox.deliver(notice("late"));
        assert_eq!(
            inbox.next().await,
            Mail {
                notices: vec![],
                resync: true
            }
        );
        let waiting = tokio::spawn({
            let inbox = inbox.clone();
            async move { inbox.next().await }
        });
        inbox.resync();
        assert!(waiting.await.unwrap().resync);
    }
}
