//! The two session pools and who owns each session. With `--require-api-auth`, a session made
//! without a token (`initialize` needs none, for the original's lazy discovery) is *anonymous*:
//! anonymous sessions have a pool of their own (`--max-anonymous-sessions`) and evict only each
//! other, so requests without a token never push out a session that has one. A token's first use
//! of an anonymous session binds it to that token and moves it to the main pool (`--max-sessions`).

use std::sync::atomic::Ordering;

use rmcp::transport::streamable_http_server::session::{SessionId, SessionManager};
use subtle::ConstantTimeEq;

use super::{BoundedSessions, closed, shrink};
use crate::sync::lock;

/// The SHA-256 of a bearer token: who owns a session.
pub(crate) type TokenHash = [u8; 32];

tokio::task_local! {
    /// Who is creating a session: set by the guard around an `initialize`, read by
    /// [`BoundedSessions::create_session`](rmcp::transport::streamable_http_server::session::SessionManager::create_session),
    /// which rmcp calls within that request.
    pub(crate) static CREATOR: Creator;
}

/// Who creates a session.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Creator {
    /// The token of the request, if it had one.
    pub(crate) owner: Option<TokenHash>,
    /// Made without a token while tokens are required: the anonymous pool.
    pub(crate) anonymous: bool,
}

/// What [`BoundedSessions::bind`] found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Binding {
    /// The session belongs to this token (now, or already).
    Owner,
    /// It belongs to another token.
    Foreign,
    /// No such session: nothing is kept (rmcp answers 404).
    Unknown,
}

impl BoundedSessions {
    /// Binds session `id` to `token` if it has no owner yet (moving it out of the anonymous
    /// pool), or says whose it is. An unknown id is not remembered.
    pub(crate) async fn bind(&self, id: &str, token: &TokenHash) -> Binding {
        let id = SessionId::from(id.to_owned());
        let moved = {
            let mut entries = lock(&self.entries);
            let Some(entry) = entries.get_mut(&id) else {
                return Binding::Unknown;
            };
            match &entry.owner {
                Some(owner) if bool::from(owner.ct_eq(token)) => return Binding::Owner,
                Some(_) => return Binding::Foreign,
                None => {
                    entry.owner = Some(*token);
                    std::mem::replace(&mut entry.anonymous, false)
                }
            }
        };
        self.keep_owner(&id, token).await;
        if moved {
            self.make_room(false, Some(&id)).await;
        }
        Binding::Owner
    }

    /// Whether session `id` belongs to a token other than `token` (no change made).
    pub(crate) fn owned_by_another(&self, id: &str, token: &TokenHash) -> bool {
        lock(&self.entries)
            .get(&SessionId::from(id.to_owned()))
            .and_then(|entry| entry.owner.as_ref())
            .is_some_and(|owner| !bool::from(owner.ct_eq(token)))
    }

    /// Makes room for one more session in a pool (the anonymous one, or the main one): evicts
    /// that pool's least recently used sessions beyond its ceiling, never `keep`'s.
    pub(super) async fn make_room(&self, anonymous: bool, keep: Option<&SessionId>) {
        let max = if anonymous {
            self.max_anonymous
        } else {
            self.max
        };
        let victims = self.victims(anonymous, max, keep);
        for id in &victims {
            // One line per eviction would be one per `initialize` from anyone: debug.
            tracing::debug!(session = %id, max, anonymous, "session limit reached, evicting the least recently used session");
            if lock(&self.entries).remove(id).is_some() {
                closed(1);
            }
            let _ = self.inner.close_session(id).await;
        }
        self.forget_rows(victims.iter().map(ToString::to_string).collect())
            .await;
        shrink(&mut lock(&self.entries));
        self.shrink_workers().await;
    }

    /// The least recently used sessions of a pool that must go for one more to fit under `max`.
    fn victims(&self, anonymous: bool, max: usize, keep: Option<&SessionId>) -> Vec<SessionId> {
        let entries = lock(&self.entries);
        let pool = || {
            entries
                .iter()
                .filter(|(id, entry)| entry.anonymous == anonymous && keep != Some(*id))
        };
        let excess = (pool().count() + 1).saturating_sub(max);
        if excess == 0 {
            return Vec::new();
        }
        let mut by_age: Vec<_> = pool()
            .map(|(id, entry)| (entry.activity.order.load(Ordering::Relaxed), id.clone()))
            .collect();
        by_age.sort();
        by_age.into_iter().take(excess).map(|(_, id)| id).collect()
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use rmcp::transport::streamable_http_server::session::SessionManager;

    use super::*;

    #[tokio::test]
    async fn the_least_recently_used_session_is_evicted_at_the_limit() {
        let sessions = BoundedSessions::new(2, 2, Duration::from_secs(60), None);
        let (first, _t1) = sessions.create_session().await.unwrap();
        let (second, _t2) = sessions.create_session().await.unwrap();
        sessions.touch(&first);
        let (third, _t3) = sessions.create_session().await.unwrap();
        assert_eq!(sessions.counts().await.sessions, 2);
        assert!(sessions.has_session(&first).await.unwrap());
        assert!(!sessions.has_session(&second).await.unwrap());
        assert!(sessions.has_session(&third).await.unwrap());
    }

    #[tokio::test]
    async fn anonymous_sessions_evict_only_each_other_and_a_token_moves_one_out() {
        let sessions = BoundedSessions::new(2, 2, Duration::from_secs(60), None);
        let with_token = Creator {
            owner: Some([1; 32]),
            anonymous: false,
        };
        let without = Creator {
            owner: None,
            anonymous: true,
        };
        let (owned, _owned) = CREATOR
            .scope(with_token, sessions.create_session())
            .await
            .unwrap();
        let mut anonymous = Vec::new();
        for _ in 0..5 {
            anonymous.push(
                CREATOR
                    .scope(without, sessions.create_session())
                    .await
                    .unwrap(),
            );
        }
        let counts = sessions.counts().await;
        assert_eq!((counts.sessions, counts.anonymous, counts.owned), (3, 2, 1));
        assert!(sessions.has_session(&owned).await.unwrap());
        // A token's first use binds the session and moves it to the main pool.
        let (lazy, _) = anonymous.last().unwrap();
        assert_eq!(sessions.bind(lazy, &[2; 32]).await, Binding::Owner);
        assert_eq!(sessions.bind(lazy, &[2; 32]).await, Binding::Owner);
        assert_eq!(sessions.bind(lazy, &[3; 32]).await, Binding::Foreign);
        assert!(sessions.owned_by_another(lazy, &[3; 32]));
        // An unknown id is not remembered.
        assert_eq!(sessions.bind("made-up", &[2; 32]).await, Binding::Unknown);
        let counts = sessions.counts().await;
        assert_eq!((counts.sessions, counts.anonymous, counts.owned), (3, 1, 2));
    }
}
