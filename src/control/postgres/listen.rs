//! The listener: one connection of its own, outside the pool, that runs `LISTEN
//! pluggedin_settings` and turns each notification into a wake-up for the router's settings
//! task, so a change made through any proxy on the database reaches every other at once; and
//! `LISTEN pluggedin_fleet`, whose notifications are the replicas' [`Notice`]s, filed in the
//! fleet's [`Inbox`] (which asks for a resynchronisation after every reconnection: what was
//! announced meanwhile is lost).
//!
//! A wake-up is a counter in a `watch` channel: it holds one value whatever arrives, so a flood
//! of notifications coalesces into one re-read of the settings version, and nothing is kept per
//! notification. Notifications sent while the connection is down are lost, so every time
//! `LISTEN` takes effect (the first time and after each reconnection) the listener wakes the
//! settings task once, which re-reads the version. A lost connection is retried with a bounded
//! backoff; an outage logs one warning and, once over, one line saying so.

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use tokio::sync::watch;
use tokio_postgres::config::Host;
use tokio_postgres::{AsyncMessage, Client, Config};

use super::pool::{CONNECT_TIMEOUT, Messages, describe, dial, unavailable};
use super::tls::Tls;
use crate::control::Result;
use crate::control::fleet::{Inbox, Notice};

/// The channel of settings changes (the payload: the new settings version).
pub(super) const SETTINGS: &str = "pluggedin_settings";
/// The channel of the replicas' notices (the payload: a [`Notice`] as JSON).
pub(super) const FLEET: &str = "pluggedin_fleet";

/// The first wait before connecting again: long enough that a server ending sessions on purpose
/// is not answered by a storm of reconnections, short enough to be back before anyone notices.
const FIRST_RETRY: Duration = Duration::from_millis(250);
/// The longest wait between attempts while the database stays away: the settings task re-checks
/// on its own meanwhile, so this only bounds how late the listener comes back.
const LAST_RETRY: Duration = Duration::from_secs(10);
/// TCP keepalive on the listening connection, which is idle between notifications: without it,
/// a connection whose network was cut without a word would look alive forever. Probes start
/// after this much silence and, with [`PROBES`] unanswered [`PROBE_INTERVAL`] apart, the
/// connection is declared dead in about a minute.
const KEEPALIVE_IDLE: Duration = Duration::from_secs(30);
const PROBE_INTERVAL: Duration = Duration::from_secs(10);
const PROBES: u32 = 3;

/// Where the listener connects, and what it wakes.
pub(super) struct Listener {
    config: Config,
    tls: Option<Tls>,
    /// The database as logs name it (never the password).
    shown: Arc<str>,
    wakes: watch::Sender<u64>,
    inbox: Arc<Inbox>,
}

impl Listener {
    /// Starts listening on a task of its own; the receiver wakes when the settings may have
    /// changed, and notices go to `inbox`. The task ends once every receiver is dropped.
    pub(super) fn start(
        mut config: Config,
        tls: Option<Tls>,
        shown: Arc<str>,
        inbox: Arc<Inbox>,
    ) -> watch::Receiver<u64> {
        // A Unix socket cannot be cut off silently; keepalive is for TCP.
        if config
            .get_hosts()
            .iter()
            .any(|host| matches!(host, Host::Tcp(_)))
        {
            config
                .keepalives(true)
                .keepalives_idle(KEEPALIVE_IDLE)
                .keepalives_interval(PROBE_INTERVAL)
                .keepalives_retries(PROBES);
        }
        let (wakes, receiver) = watch::channel(0);
        let listener = Listener {
            config,
            tls,
            shown,
            wakes,
            inbox,
        };
        tokio::spawn(async move {
            tokio::select! {
                () = listener.wakes.closed() => {}
                () = listener.run() => {}
            }
        });
        receiver
    }

    /// Listens, and connects again whenever the connection is lost; never returns.
    async fn run(&self) {
        let database = &*self.shown;
        let mut delay = FIRST_RETRY;
        // Whether an outage is under way (and its warning already logged).
        let mut outage = false;
        loop {
            match self.listen().await {
                Ok((client, messages)) => {
                    if outage {
                        tracing::info!(database, "listening for settings changes again");
                    } else {
                        tracing::debug!(database, "listening for settings changes");
                    }
                    delay = FIRST_RETRY;
                    // What was sent while not listening is lost: the settings task re-reads,
                    // and the fleet looks at every server again.
                    self.wake();
                    if outage {
                        self.inbox.resync();
                    }
                    let why = self.follow(&client, messages).await;
                    tracing::warn!(
                        database,
                        "settings listener lost its connection ({why}); reconnecting, settings \
                         re-checked periodically meanwhile"
                    );
                    outage = true;
                }
                // Still away: said once already.
                Err(_) if outage => {}
                Err(error) => {
                    tracing::warn!(
                        database,
                        "settings listener not connected ({error}); retrying, settings \
                         re-checked periodically meanwhile"
                    );
                    outage = true;
                }
            }
            tokio::time::sleep(delay).await;
            delay = (delay * 2).min(LAST_RETRY);
        }
    }

    /// A new connection on which `LISTEN` has taken effect.
    async fn listen(&self) -> Result<(Client, Messages)> {
        let (client, mut messages) = dial(&self.config, self.tls.as_ref()).await?;
        let failed = |error: tokio_postgres::Error| unavailable(describe(&error));
        let listening = async {
            let statement = format!("LISTEN {SETTINGS}; LISTEN {FLEET}");
            let listen = client.batch_execute(&statement);
            tokio::pin!(listen);
            // The connection's messages are read while the statement runs, or it never ends.
            loop {
                tokio::select! {
                    done = &mut listen => return done.map_err(failed),
                    message = messages.next() => match message {
                        // A notice, or a notification the wake-up after `LISTEN` covers.
                        Some(Ok(_)) => {}
                        Some(Err(error)) => return Err(failed(error)),
                        None => return Err(unavailable("the server closed the connection")),
                    },
                }
            }
        };
        tokio::time::timeout(CONNECT_TIMEOUT, listening)
            .await
            .map_err(|_| {
                unavailable(format!("no answer to LISTEN within {CONNECT_TIMEOUT:?}"))
            })??;
        Ok((client, messages))
    }

    /// Wakes the settings task for each settings notification and files each notice, until the
    /// connection ends; why it ended. `_client` is held so that the connection stays open.
    async fn follow(&self, _client: &Client, mut messages: Messages) -> String {
        loop {
            match messages.next().await {
                Some(Ok(AsyncMessage::Notification(note))) if note.channel() == FLEET => {
                    match serde_json::from_str::<Notice>(note.payload()) {
                        Ok(notice) => self.inbox.deliver(notice),
                        Err(error) => tracing::debug!("a fleet notice that does not read: {error}"),
                    }
                }
                Some(Ok(AsyncMessage::Notification(_))) => self.wake(),
                Some(Ok(_)) => {}
                Some(Err(error)) => return describe(&error),
                None => return "the server closed it".to_owned(),
            }
        }
    }

    /// One wake-up; wake-ups not yet seen merge with it.
    fn wake(&self) {
        self.wakes
            .send_modify(|count| *count = count.wrapping_add(1));
    }
}
