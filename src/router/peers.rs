//! The other replicas of a fleet, as the router meets them: what this replica's servers say
//! about themselves is announced to the others, and what theirs said is acted on here.
//!
//! A server may tell only the connection through which it changed (the official SDKs' servers
//! notify the session that made the change), so a list change heard by one replica is news for
//! every other with a connection to the same server. Each looks at that server's lists again
//! and tells its own clients only if its catalog changed, so the notice is idempotent. A
//! resource update is passed on to the subscribed sessions of the other replicas only for
//! servers each replica runs itself (a stdio child, a process it starts): a server reached by
//! its URL tells every connection subscribed to the resource itself, so a relayed update would
//! reach those clients twice. Notices are coalesced and sent in one statement per batch,
//! read from a bounded inbox; a replica that may have missed some (its listening connection
//! came back, or too many came at once) looks at every server again.
//!
//! The replicas also settle who runs each server of fleet scope ([`OWNERS_EVERY`]): each asks
//! the store, taking the servers nobody runs, and applies what it learns (`fleet`).

use std::collections::HashMap;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use rmcp::model::ResourceUpdatedNotificationParam;

use super::Router;
use super::fleet::{Credential, FleetOwner};
use crate::config::{Scope, ServerConfig, TransportConfig};
use crate::control::fleet::{FleetStore, Heard, Inbox, Notice, ServerOwner};

/// How often a replica asks who runs the servers of fleet scope and tries to take those that
/// nobody runs: a dead owner's servers run again elsewhere within about this long (its locks
/// end with its connection to the database).
const OWNERS_EVERY: Duration = Duration::from_secs(2);

/// This replica's place in a fleet, once [`Router::join_fleet`] ran.
#[derive(Default)]
pub(super) struct Peers {
    link: OnceLock<Link>,
}

struct Link {
    me: i64,
    /// What this replica's servers said, waiting to be announced.
    outbox: Arc<Inbox>,
}

impl Peers {
    /// Queues a notice for the other replicas (nothing outside a fleet).
    pub(super) fn announce(&self, server: &str, heard: Heard) {
        if let Some(link) = self.link.get() {
            link.outbox.deliver(Notice {
                from: link.me,
                server: server.to_owned(),
                heard,
            });
        }
    }
}

impl Router {
    /// Announces a resource update of `server` to the other replicas if each runs the server
    /// itself (the only ones they pass such an update on for).
    pub(super) fn announce_update(&self, server: &str, uri: &str) {
        if self.peers.link.get().is_none() {
            return;
        }
        if let Ok(downstream) = self.fleet.server(server)
            && runs_here(&downstream.config)
        {
            self.peers.announce(
                server,
                Heard::ResourceUpdated {
                    uri: uri.to_owned(),
                },
            );
        }
    }

    /// Joins the fleet as replica `me`: announces what this replica's servers say through
    /// `store`, acts on what the others announce, and settles who runs the servers of fleet
    /// scope (reaching the others' with `credential`), until shutdown.
    pub fn join_fleet(&self, me: i64, store: Arc<dyn FleetStore>, credential: Credential) {
        self.fleet.set_credential(credential);
        let outbox = Inbox::new();
        if self
            .peers
            .link
            .set(Link {
                me,
                outbox: outbox.clone(),
            })
            .is_err()
        {
            return;
        }
        let Some(router) = self.this.upgrade() else {
            return;
        };
        let inbox = store.notices();
        let cancel = self.cancel.child_token();
        self.tracker.spawn(
            router
                .clone()
                .keep_owners(me, store.clone(), cancel.clone()),
        );
        let sending = {
            let cancel = cancel.clone();
            async move {
                loop {
                    let mail = tokio::select! {
                        () = cancel.cancelled() => return,
                        mail = outbox.next() => mail,
                    };
                    if mail.resync {
                        tracing::warn!(
                            "too many server notices to announce at once: some were dropped, \
                             and the other replicas learn of those changes only when they next \
                             look at every server"
                        );
                    }
                    if let Err(error) = store.announce(&mail.notices).await {
                        tracing::debug!("server notices not announced: {error}");
                    }
                }
            }
        };
        self.tracker.spawn(sending);
        self.tracker.spawn(async move {
            loop {
                let mail = tokio::select! {
                    () = cancel.cancelled() => return,
                    mail = inbox.next() => mail,
                };
                router.act_on(me, mail.notices, mail.resync).await;
            }
        });
    }

    /// Every [`OWNERS_EVERY`] until shutdown: asks the store who runs each server of fleet
    /// scope (taking those nobody runs) and applies the answer. While the store does not answer,
    /// owners stay as they were.
    async fn keep_owners(
        self: Arc<Router>,
        me: i64,
        store: Arc<dyn FleetStore>,
        cancel: tokio_util::sync::CancellationToken,
    ) {
        let mut failing = false;
        // Whether the last answer had servers: one more claim, with none, lets their locks go.
        let mut had_servers = false;
        loop {
            let servers = self.fleet.fleet_scoped();
            if !servers.is_empty() || had_servers {
                match store.claim_servers(me, &servers).await {
                    Ok(found) => {
                        had_servers = !servers.is_empty();
                        if std::mem::take(&mut failing) {
                            tracing::info!("servers of fleet scope: the store answers again");
                        }
                        let mut owners = HashMap::new();
                        for (server, owner) in servers.into_iter().zip(found) {
                            let owner = match owner {
                                ServerOwner::Me => FleetOwner::Here { replica: me },
                                ServerOwner::Other(replica) => FleetOwner::There {
                                    replica: replica.id,
                                    url: replica.url,
                                },
                                ServerOwner::Unknown => continue,
                            };
                            owners.insert(server, owner);
                        }
                        if self.fleet.set_owners(owners) {
                            self.rebuild_catalog();
                        }
                    }
                    Err(error) => {
                        if !std::mem::replace(&mut failing, true) {
                            tracing::warn!(
                                "cannot tell who runs the servers of fleet scope (they stay \
                                 where they are): {error}"
                            );
                        }
                    }
                }
            }
            tokio::select! {
                () = cancel.cancelled() => return,
                () = tokio::time::sleep(OWNERS_EVERY) => {}
            }
        }
    }

    /// Acts on the other replicas' notices (this replica's own come back too, and are skipped).
    async fn act_on(&self, me: i64, notices: Vec<Notice>, resync: bool) {
        let servers = if resync {
            tracing::info!("looking at every server again: replicas' notices may have been missed");
            self.servers()
        } else {
            let mut servers = Vec::new();
            for notice in notices.into_iter().filter(|notice| notice.from != me) {
                let Ok(server) = self.fleet.server(&notice.server) else {
                    continue;
                };
                match notice.heard {
                    Heard::ListChanged => {
                        if !servers
                            .iter()
                            .any(|known: &Arc<_>| Arc::ptr_eq(known, &server))
                        {
                            servers.push(server);
                        }
                    }
                    Heard::ResourceUpdated { uri } if runs_here(&server.config) => {
                        self.deliver_resource_updated(ResourceUpdatedNotificationParam::new(uri));
                    }
                    Heard::ResourceUpdated { .. } => {}
                }
            }
            servers
        };
        // Rebuilt once for them all; clients are told only if the catalog changed.
        let mut listed = false;
        for server in servers {
            if server.connection().is_none() {
                continue;
            }
            match server.relist().await {
                Ok(()) => listed = true,
                Err(error) => {
                    tracing::debug!(server = %server.name, "not listed again: {error}");
                }
            }
        }
        if listed {
            self.rebuild_catalog();
        }
    }
}

/// Whether each replica runs its own instance of the server (one of fleet scope is reached
/// through the replica that runs it, which tells its subscribers itself).
fn runs_here(config: &ServerConfig) -> bool {
    config.scope == Scope::Replica
        && matches!(
            config.transport,
            TransportConfig::Stdio { .. } | TransportConfig::StartedHttp(_)
        )
}
