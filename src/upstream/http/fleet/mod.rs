//! A replica of a fleet: several proxies in Streamable HTTP mode on one PostgreSQL store,
//! behind a load balancer that may send any request anywhere. A session lives on its *home*
//! replica (`sessions::shared`); a request for it that lands elsewhere is passed there
//! ([`forward`]), and its answer streamed back, so everything of one session — its calls in
//! flight, the server's questions and the client's answers, resumed streams, the GET stream,
//! cancellations — meets in one process, as on a single proxy. Requests without a session (an
//! `initialize`, a modern client's) are served where they land.
//!
//! Where a session lives: its sealed id names the replica that made it, so no store lookup is
//! needed while that replica serves. The replicas' addresses come from the store's `replicas`
//! table, refreshed by a heartbeat ([`Fleet::start`]). When the home is gone — not in the table,
//! or refusing connections — the row says where the session went, or this replica adopts it.

mod forward;
pub(crate) mod servers;

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::sessions::{BoundedSessions, Membership, Sealer};
use crate::control::ControlError;
use crate::control::fleet::FleetStore;
use crate::sync::{lock, read, write};
pub(crate) use forward::{CLIENT_ADDRESS, FORWARDED_BY, Forwarded, forward};

/// How often a replica says it is alive and reads who else is.
const HEARTBEAT: Duration = Duration::from_secs(2);
/// Sessions remembered as living elsewhere than their id says (adopted): a bounded map,
/// emptied when full (a forgotten one costs one store lookup).
const MOVED_MAX: usize = 4096;
/// How many replicas one request may pass through: the one it landed on, and at most one more
/// when the first it was passed to says the session moved.
pub(crate) const MAX_HOPS: usize = 2;

/// Where a request for a session goes.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Place {
    /// This replica holds it (or adopted it just now).
    Here,
    /// Replica `replica`, at `url`.
    There { replica: i64, url: String },
    /// No such session in the fleet (ended, expired, or never made by it): 404.
    Unknown,
    /// The store could not say: 503.
    Unavailable(String),
}

/// This replica in its fleet.
pub(crate) struct Fleet {
    membership: Arc<Membership>,
    /// Where the other replicas reach this one.
    url: String,
    sessions: Arc<BoundedSessions>,
    /// The other replicas serving, by id: their URLs.
    others: RwLock<HashMap<i64, String>>,
    /// Sessions known to live elsewhere than their id says.
    moved: Mutex<HashMap<String, i64>>,
    pub(crate) client: reqwest::Client,
    session_ttl_ms: i64,
}

/// What a replica needs to join its fleet.
pub(crate) struct Joining {
    pub(crate) store: Arc<dyn FleetStore>,
    /// `--session-key`, if given; otherwise the fleet's key kept in the store.
    pub(crate) session_key: Option<String>,
    /// Where the other replicas reach this one.
    pub(crate) url: String,
    pub(crate) session_ttl: Duration,
}

impl Joining {
    /// Registers this replica in the store: its id and the sealer of the fleet's session ids.
    pub(crate) async fn join(self) -> Result<(Arc<Membership>, Joined), ControlError> {
        let key = match self.session_key {
            Some(key) => key,
            None => self.store.session_key(&fresh_key()).await?,
        };
        let me = self
            .store
            .join(&self.url, env!("CARGO_PKG_VERSION"))
            .await?;
        tracing::info!(replica = me, url = %self.url, "joined the fleet on the shared store");
        let membership = Arc::new(Membership::new(me, Sealer::new(&key), self.store));
        Ok((
            membership,
            Joined {
                url: self.url,
                session_ttl: self.session_ttl,
                servers_key: Arc::new(servers::ServersKey::new(&key)),
            },
        ))
    }
}

/// A replica registered in the store, before its sessions exist.
pub(crate) struct Joined {
    url: String,
    session_ttl: Duration,
    /// Makes and checks the credentials of the route to servers of fleet scope.
    pub(crate) servers_key: Arc<servers::ServersKey>,
}

impl Joined {
    /// How this replica proves itself at the others' routes to their servers of fleet scope.
    pub(crate) fn credential(&self) -> crate::router::Credential {
        let key = self.servers_key.clone();
        Arc::new(move |name: &str| key.credential(name))
    }

    pub(crate) fn fleet(
        self,
        membership: Arc<Membership>,
        sessions: Arc<BoundedSessions>,
    ) -> Fleet {
        let client = reqwest::Client::builder()
            .no_proxy()
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(Duration::from_secs(2))
            .tcp_nodelay(true)
            .build()
            .unwrap_or_default();
        Fleet {
            membership,
            url: self.url,
            sessions,
            others: RwLock::default(),
            moved: Mutex::default(),
            client,
            session_ttl_ms: i64::try_from(self.session_ttl.as_millis()).unwrap_or(i64::MAX),
        }
    }
}

/// The replica named by the `requestState` of a modern client's retry in `body` (a call parked
/// on that replica for the client's input), if there is one. Only a body that contains our
/// state's prefix is parsed.
pub(crate) fn parked_replica(body: &[u8]) -> Option<i64> {
    #[derive(serde::Deserialize)]
    struct Retry {
        params: Option<Params>,
    }
    #[derive(serde::Deserialize)]
    struct Params {
        #[serde(rename = "requestState")]
        request_state: Option<String>,
    }
    memchr::memmem::find(body, b"pluggedin-parked.r")?;
    let retry: Retry = serde_json::from_slice(body).ok()?;
    crate::router::parked::replica_of_state(&retry.params?.request_state?)
}

/// A new key for the fleet's session ids, when none was given and the store has none: 256 bits
/// from the OS CSPRNG, as hex.
fn fresh_key() -> String {
    let mut bytes = [0u8; 32];
    if getrandom::fill(&mut bytes).is_err() {
        bytes[..16].copy_from_slice(&uuid::Uuid::new_v4().into_bytes());
        bytes[16..].copy_from_slice(&uuid::Uuid::new_v4().into_bytes());
    }
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

impl Fleet {
    /// This replica's id.
    pub(crate) fn me(&self) -> i64 {
        self.membership.me
    }

    /// Starts the heartbeat: every [`HEARTBEAT`], this replica's row refreshed and the other
    /// replicas read, until `stop`; then the replica leaves the store (its sessions left for the
    /// others to adopt).
    pub(crate) fn start(
        fleet: &Arc<Fleet>,
        stop: CancellationToken,
        drain: super::Drain,
    ) -> tokio::task::JoinHandle<()> {
        let fleet = fleet.clone();
        tokio::spawn(async move {
            let mut failing = false;
            loop {
                let beat = fleet.membership.store.beat(
                    fleet.me(),
                    &fleet.url,
                    drain.is_draining(),
                    fleet.session_ttl_ms,
                );
                match beat.await {
                    Ok(replicas) => {
                        if std::mem::take(&mut failing) {
                            tracing::info!("fleet heartbeat: the store answers again");
                        }
                        let me = fleet.me();
                        *write(&fleet.others) = replicas
                            .into_iter()
                            .filter(|replica| replica.id != me)
                            .map(|replica| (replica.id, replica.url))
                            .collect();
                    }
                    Err(error) => {
                        if !std::mem::replace(&mut failing, true) {
                            tracing::warn!(
                                "fleet heartbeat failed (replicas keep their last view): {error}"
                            );
                        }
                    }
                }
                tokio::select! {
                    () = stop.cancelled() => break,
                    () = tokio::time::sleep(HEARTBEAT) => {}
                }
            }
            fleet.membership.left.store(true, Ordering::Release);
            match fleet.membership.store.leave(fleet.me()).await {
                Ok(()) => tracing::info!(replica = fleet.me(), "left the fleet"),
                Err(error) => tracing::warn!("could not leave the fleet cleanly: {error}"),
            }
        })
    }

    /// A client's address, sealed for a request passed to another replica.
    pub(crate) fn seal_address(&self, address: std::net::IpAddr) -> String {
        self.membership.sealer.seal_address(address)
    }

    /// The client's address a replica of this fleet sealed; `None` for anything else.
    pub(crate) fn open_address(&self, sealed: &str) -> Option<std::net::IpAddr> {
        self.membership.sealer.open_address(sealed)
    }

    /// The replicas serving as this one last saw them, itself included (the rate limits' fair
    /// parts are counted for as many).
    pub(crate) fn replicas(&self) -> usize {
        read(&self.others).len() + 1
    }

    /// Where another replica is reached, if it serves.
    pub(crate) fn url_of(&self, replica: i64) -> Option<String> {
        read(&self.others).get(&replica).cloned()
    }

    /// Where a request for session `id` goes; `hops` replicas passed it on already.
    pub(crate) async fn place(&self, id: &str, hops: usize) -> Place {
        let Some(made_by) = self.membership.sealer.open(id) else {
            return Place::Unknown;
        };
        if self.sessions.knows(id) {
            return Place::Here;
        }
        let home = lock(&self.moved).get(id).copied().unwrap_or(made_by);
        if home != self.me()
            && hops == 0
            && let Some(url) = read(&self.others).get(&home).cloned()
        {
            return Place::There { replica: home, url };
        }
        self.locate(id, hops, None).await
    }

    /// Replica `replica` refused a connection: gone, for this replica, until a heartbeat says
    /// it serves again.
    pub(crate) fn forget(&self, replica: i64) {
        write(&self.others).remove(&replica);
    }

    /// Replica `replica` refused a connection ([`Fleet::forget`]): where its session `id` goes
    /// now.
    pub(crate) async fn unreachable(&self, replica: i64, id: &str) -> Place {
        self.forget(replica);
        self.locate(id, 0, Some(replica)).await
    }

    /// Asks the store where session `id` lives: passed on to its home if that serves, adopted
    /// if its home is gone — it left, its heartbeat stopped, or it is `unreachable`. A home this
    /// replica has not heard of yet (it joined since the last heartbeat) is looked up first:
    /// a session is never taken from a replica that serves it.
    async fn locate(&self, id: &str, hops: usize, unreachable: Option<i64>) -> Place {
        let record = match self.membership.store.session(id).await {
            Ok(Some(record)) => record,
            Ok(None) => return Place::Unknown,
            Err(error) => return Place::Unavailable(error.to_string()),
        };
        match record.home {
            Some(home) if home == self.me() => {}
            Some(home) => {
                let known = read(&self.others).get(&home).cloned();
                let url = match known {
                    Some(url) => Some(url),
                    None if unreachable == Some(home) => None,
                    None => match self.membership.store.replica(home).await {
                        Ok(Some(replica)) => {
                            write(&self.others).insert(replica.id, replica.url.clone());
                            Some(replica.url)
                        }
                        Ok(None) => None,
                        Err(error) => return Place::Unavailable(error.to_string()),
                    },
                };
                if let Some(url) = url {
                    if hops >= MAX_HOPS {
                        return Place::Unknown;
                    }
                    let mut moved = lock(&self.moved);
                    if moved.len() >= MOVED_MAX {
                        moved.clear();
                    }
                    moved.insert(id.to_owned(), home);
                    return Place::There { replica: home, url };
                }
            }
            None => {}
        }
        let adopted = match self
            .membership
            .store
            .adopt_session(id, record.home, self.me())
            .await
        {
            Ok(Some(record)) => record,
            // Another replica adopted it first: ask again where it went.
            Ok(None) => {
                return match self.membership.store.session(id).await {
                    Ok(Some(record)) => match record.home {
                        Some(home) if home != self.me() => read(&self.others)
                            .get(&home)
                            .cloned()
                            .map_or(Place::Unknown, |url| Place::There { replica: home, url }),
                        _ => Place::Unknown,
                    },
                    Ok(None) => Place::Unknown,
                    Err(error) => Place::Unavailable(error.to_string()),
                };
            }
            Err(error) => return Place::Unavailable(error.to_string()),
        };
        tracing::info!(
            session = %id,
            from = ?record.home,
            "adopted a session whose replica is gone"
        );
        if self.sessions.adopt(adopted) {
            Place::Here
        } else {
            Place::Unknown
        }
    }
}
