//! Who created each 2025-11-25 core task the proxy handed out ([`Owners`]): the caller's
//! principal, to bind the task to it, and its session, for the task's status notifications. A
//! status that arrives before its task's creation has passed the proxy is kept for it. Both
//! tables are bounded, the oldest entries going first. Answering core-task requests is
//! `core_tasks`' business.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, Weak};

use serde_json::Value;

use super::session::{Caller, Session};
use crate::sync::lock;
use crate::wire::core_tasks::{MAX_EARLY, MAX_OWNERS};

/// Who created each task the proxy handed out: the caller's principal (its bearer token over
/// HTTP, its session on stdio), for binding the task to it, and its session, for status
/// notifications. Bounded: the oldest entries go first.
#[derive(Default)]
pub(super) struct Owners(Mutex<OwnerTable>);

#[derive(Default)]
struct OwnerTable {
    owners: HashMap<String, Owner>,
    order: VecDeque<String>,
    /// The latest status of tasks whose creation has not come back through the proxy yet (a
    /// server may report "working" before its `CreateTaskResult` is on its way).
    early: HashMap<String, Value>,
    early_order: VecDeque<String>,
}

struct Owner {
    principal: Option<String>,
    session: Weak<Session>,
}

/// Whether a caller may use a task: the task's creator, or anyone when the proxy does not know
/// the task (created before a restart, or forgotten): then the unguessable id is the key.
pub(super) enum Access {
    Own,
    Unknown,
    Foreign,
}

impl Owners {
    /// Remembers the caller as the task's creator; the status that came before, if one did.
    pub(super) fn insert(&self, task: String, caller: &Caller) -> Option<Value> {
        let mut table = lock(&self.0);
        while table.owners.len() >= MAX_OWNERS {
            let Some(oldest) = table.order.pop_front() else {
                break;
            };
            table.owners.remove(&oldest);
        }
        let owner = Owner {
            principal: caller.principal.clone(),
            session: caller
                .session
                .as_ref()
                .map(Arc::downgrade)
                .unwrap_or_default(),
        };
        let early = table.early.remove(&task);
        if table.owners.insert(task.clone(), owner).is_none() {
            table.order.push_back(task);
        }
        early
    }

    /// The session a status notification goes to; a status for a task not (yet) known is kept
    /// until its creation passes (the latest one, for the most recent tasks only).
    pub(super) fn route(&self, task: String, params: Value) -> Option<(Arc<Session>, Value)> {
        let mut table = lock(&self.0);
        if let Some(owner) = table.owners.get(&task) {
            return Some((owner.session.upgrade()?, params));
        }
        while table.early.len() >= MAX_EARLY {
            let Some(oldest) = table.early_order.pop_front() else {
                break;
            };
            table.early.remove(&oldest);
        }
        if table.early.insert(task.clone(), params).is_none() {
            table.early_order.push_back(task);
        }
        None
    }

    pub(super) fn access(&self, task: &str, caller: &Caller) -> Access {
        match lock(&self.0).owners.get(task) {
            None => Access::Unknown,
            Some(owner) if owner.principal == caller.principal => Access::Own,
            Some(_) => Access::Foreign,
        }
    }
}
