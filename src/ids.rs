//! Stable server UUIDs: every configured server gets one, kept in the control plane's store, so
//! `<uuid>__<tool>` names survive restarts and are the same for every proxy on one data dir.
//! [`ServerIds::ensure`] fetches (or makes) the ids of a config's servers before the config is
//! applied; [`ServerIds::get`] then answers from memory, without touching the store.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use crate::control::ControlPlane;

pub struct ServerIds {
    store: Arc<dyn ControlPlane>,
    ids: Mutex<BTreeMap<String, String>>,
}

impl ServerIds {
    pub fn new(store: Arc<dyn ControlPlane>) -> ServerIds {
        ServerIds {
            store,
            ids: Mutex::default(),
        }
    }

    /// Loads (or makes and saves) the ids of `servers` not known yet.
    pub async fn ensure<'a>(&self, servers: impl IntoIterator<Item = &'a String>) {
        for server in servers {
            if self.lock().contains_key(server) {
                continue;
            }
            match self.store.server_uuid(server).await {
                Ok(id) => {
                    self.lock().insert(server.clone(), id);
                }
                Err(error) => tracing::warn!(server = %server, "server id not stored: {error}"),
            }
        }
    }

    /// Gives `server` the id another control plane assigned (the App's server UUID), for this
    /// process only.
    pub fn set(&self, server: &str, uuid: &str) {
        self.lock().insert(server.to_owned(), uuid.to_owned());
    }

    /// The UUID of a server. One not [`ensure`](Self::ensure)d (the store failed) gets an id for
    /// this process only.
    pub fn get(&self, server: &str) -> String {
        self.lock()
            .entry(server.to_owned())
            .or_insert_with(|| uuid::Uuid::new_v4().to_string())
            .clone()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, String>> {
        self.ids
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::control::tests::{Place, on_both_stores};

    on_both_stores!(ids_are_stable_across_loads);

    async fn ids_are_stable_across_loads(place: &Place) {
        let names = ["time".to_owned(), "other".to_owned()];
        let first = ServerIds::new(place.open().await);
        first.ensure(&names).await;
        let time = first.get("time");
        assert!(uuid::Uuid::parse_str(&time).is_ok());
        let again = ServerIds::new(place.open().await);
        again.ensure(&names).await;
        assert_eq!(again.get("time"), time);
        assert_ne!(again.get("other"), time);
    }
}
