//! Who runs each server of fleet scope (`"scope": "fleet"`): the replica holding the server's
//! session-level advisory lock, taken on a connection of its own outside the pool, so that the
//! lock ends with that connection — a replica that dies, or loses its connection, gives the
//! server up without a word, and the next replica to try takes it. The holder writes itself
//! into `server_owners` so the others find its address; a row is only a pointer, taken over by
//! the next holder, and believed only while the replica it names serves.
//!
//! A replica whose machine vanished without closing its connection would keep its locks until
//! the database's keepalives found the connection dead. So once the others count that replica
//! gone (its heartbeat missing for [`REPLICA_GONE_MS`]), the first to look ends the backend
//! that still holds the lock — the one the row names by process id, and only while it holds
//! that very lock, so a new holder that has not written its row yet is never touched.

use std::collections::HashSet;

use futures::StreamExt;
use sha2::{Digest, Sha256};
use tokio::sync::Mutex;
use tokio_postgres::{Client, Config};

use super::pool::{dial, unavailable};
use super::tls::Tls;
use crate::control::Result;
use crate::control::fleet::{REPLICA_GONE_MS, Replica, ServerOwner};

/// The database's clock, in milliseconds since the epoch.
const NOW_MS: &str = "(extract(epoch from clock_timestamp()) * 1000)::BIGINT";

/// The lock key of a server: the first eight bytes of a SHA-256 over a fixed namespace and the
/// server's name, so that it meets no other application's keys and no other server's.
pub(super) fn lock_key(server: &str) -> i64 {
    let digest = Sha256::new()
        .chain_update(b"pluggedin-mcp-proxy server owner\0")
        .chain_update(server.as_bytes())
        .finalize();
    let mut bytes = [0u8; 8];
    bytes.copy_from_slice(&digest[..8]);
    i64::from_be_bytes(bytes)
}

/// The connection holding this replica's locks, and which servers it holds.
#[derive(Default)]
pub(super) struct Owners {
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    client: Option<Client>,
    held: HashSet<String>,
    /// The replica left the fleet: it takes no server again.
    left: bool,
}

impl Owners {
    /// Takes the lock of each of `servers` that nobody holds, writes this replica (`me`) as the
    /// owner of those it holds, lets go of servers no longer asked about, and says who owns
    /// each, in order. A connection that was lost took its locks with it: a new one starts
    /// with none.
    pub(super) async fn claim(
        &self,
        config: &Config,
        tls: Option<&Tls>,
        me: i64,
        servers: &[String],
    ) -> Result<Vec<ServerOwner>> {
        let mut state = self.state.lock().await;
        if state.client.as_ref().is_some_and(Client::is_closed) {
            if !state.held.is_empty() {
                tracing::warn!(
                    servers = ?state.held,
                    "the connection holding this replica's servers of fleet scope was lost; \
                     another replica may run them now"
                );
            }
            state.client = None;
            state.held.clear();
        }
        if state.client.is_none() && !state.left {
            let (client, mut messages) = dial(config, tls).await?;
            tokio::spawn(async move {
                while let Some(message) = messages.next().await {
                    if let Err(error) = message {
                        tracing::debug!("the connection holding server locks ended: {error}");
                        break;
                    }
                }
            });
            state.client = Some(client);
        }
        let State { client, held, .. } = &mut *state;
        let Some(client) = client.as_ref() else {
            return Err(unavailable("this replica left the fleet"));
        };
        let result = claim_on(client, held, me, servers).await;
        if result.is_err() && client.is_closed() {
            state.client = None;
            state.held.clear();
        }
        result
    }

    /// This replica leaves: its connection closed, which ends its locks (its rows go with its
    /// `replicas` row). It takes no server again.
    pub(super) async fn release(&self) {
        let mut state = self.state.lock().await;
        state.left = true;
        state.held.clear();
        state.client = None;
    }
}

async fn claim_on(
    client: &Client,
    held: &mut HashSet<String>,
    me: i64,
    servers: &[String],
) -> Result<Vec<ServerOwner>> {
    let wanted: HashSet<&str> = servers.iter().map(String::as_str).collect();
    let dropped: Vec<String> = held
        .iter()
        .filter(|server| !wanted.contains(server.as_str()))
        .cloned()
        .collect();
    for server in dropped {
        client
            .execute("SELECT pg_advisory_unlock($1)", &[&lock_key(&server)])
            .await?;
        client
            .execute(
                "DELETE FROM server_owners WHERE server = $1 AND replica = $2",
                &[&server, &me],
            )
            .await?;
        held.remove(&server);
    }
    for server in servers {
        if held.contains(server) {
            continue;
        }
        let taken: bool = client
            .query_one("SELECT pg_try_advisory_lock($1)", &[&lock_key(server)])
            .await?
            .try_get(0)?;
        if taken {
            tracing::info!(server = %server, "this replica runs the server for the fleet");
            held.insert(server.clone());
        }
    }
    let mine: Vec<&String> = servers.iter().filter(|s| held.contains(*s)).collect();
    if !mine.is_empty() {
        // The rows of the servers held here, written only where they name another replica.
        client
            .execute(
                "INSERT INTO server_owners (server, replica, holder)
                 SELECT server, $2, pg_backend_pid() FROM unnest($1::TEXT[]) AS server
                 ON CONFLICT (server) DO UPDATE
                 SET replica = excluded.replica, holder = excluded.holder
                 WHERE server_owners.replica <> excluded.replica
                    OR server_owners.holder <> excluded.holder",
                &[&mine, &me],
            )
            .await?;
    }
    let others: Vec<&String> = servers.iter().filter(|s| !held.contains(*s)).collect();
    let rows = if others.is_empty() {
        Vec::new()
    } else {
        client
            .query(
                &format!(
                    "SELECT o.server, r.id, r.url, r.draining FROM server_owners o
                     JOIN replicas r ON r.id = o.replica
                     WHERE o.server = ANY($1) AND r.id <> $2
                       AND r.seen_at >= {NOW_MS} - {REPLICA_GONE_MS}"
                ),
                &[&others, &me],
            )
            .await?
    };
    let mut found = std::collections::HashMap::new();
    for row in &rows {
        let server: String = row.try_get(0)?;
        let replica = Replica {
            id: row.try_get(1)?,
            url: row.try_get(2)?,
            draining: row.try_get(3)?,
        };
        found.insert(server, replica);
    }
    for server in servers {
        if !held.contains(server) && !found.contains_key(server) {
            end_lost_holder(client, server, me).await;
        }
    }
    Ok(servers
        .iter()
        .map(|server| {
            if held.contains(server) {
                ServerOwner::Me
            } else {
                found
                    .remove(server)
                    .map_or(ServerOwner::Unknown, ServerOwner::Other)
            }
        })
        .collect())
}

/// Ends the database backend that holds `server`'s lock for a replica counted gone, if the row
/// names it and it holds that lock still (see the module's comment). The lock is free for the
/// next try. A refusal (a role that may not end others' backends) is logged and changes
/// nothing.
async fn end_lost_holder(client: &Client, server: &str, me: i64) {
    let key = lock_key(server);
    let ended = client
        .query(
            &format!(
                "SELECT pg_terminate_backend(o.holder) FROM server_owners o
                 JOIN pg_locks l ON l.pid = o.holder AND l.locktype = 'advisory' AND l.granted
                     AND l.objsubid = 1
                     AND l.classid::BIGINT = (($2::BIGINT >> 32) & 4294967295)
                     AND l.objid::BIGINT = ($2::BIGINT & 4294967295)
                 WHERE o.server = $1 AND o.replica <> $3
                   AND NOT EXISTS (SELECT 1 FROM replicas r WHERE r.id = o.replica
                                   AND r.seen_at >= {NOW_MS} - {REPLICA_GONE_MS})"
            ),
            &[&server, &key, &me],
        )
        .await;
    match ended {
        Ok(rows) if !rows.is_empty() => tracing::warn!(
            server = %server,
            "the replica that ran this server is gone but its database connection held on; \
             ended that connection, so another replica can take the server over"
        ),
        Ok(_) => {}
        Err(error) => tracing::warn!(
            server = %server,
            "could not end the database connection of a gone replica that still holds the \
             server: {error}"
        ),
    }
}
