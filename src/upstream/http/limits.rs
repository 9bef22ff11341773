//! Rate limits on the MCP endpoint. Off unless configured (`--rate-limit-tools`,
//! `--rate-limit-requests`); when on, each token has a budget per minute (a fixed window from its
//! first request), and so does each client address for requests without a token (an IPv6 address
//! counts by its /64, the block one host is usually given, so one host cannot multiply its budget).
//!
//! Refusals are counted for `/health` and, through [`RateLimits::summarise`], for `stats`; the
//! log gets one warning at the first refusal of a period and then one summary line per period,
//! never a line per refusal. The windows are bounded: expired ones go at every summary and when
//! the map is full; at [`MAX_KEYS`] live windows a new key goes unlimited until room frees up, so
//! a flood of addresses cannot make the limiter refuse everyone else.
//!
//! In a fleet (replicas on one PostgreSQL store) a budget is the fleet's. Each replica counts
//! here and, every [`SHARE_EVERY`], adds what it admitted since to the store's row for each key
//! and reads the fleet's totals back, in one statement ([`RateLimits::share`]). A request is
//! admitted while the fleet's total at the last share plus what this replica admitted since is
//! under the limit, and, without a share, only while what this replica admitted since is under
//! its fair part of what remained ([`fair_part`]: `⌈(limit − shared) / r⌉` for the `r` live
//! replicas its heartbeat sees). A request past that part waits for an early share — one in
//! flight serves every request that needs one meanwhile — and is decided with the fresh total
//! ([`RateLimits::admit`]). So the fleet admits at most the limit plus what the other replicas
//! admitted within their own fair parts since their last share: the replica whose share the store
//! took last admitted at most what remained then, each other one at most its part since its own
//! last share, `limit + (r − 1)·⌈limit / r⌉` in a window at worst. A replica spending a budget
//! alone shares about log(limit) times a window, each share leaving it a part of what remains.
//! A key's window is its row's, so it is the same on every replica: it starts at the key's first
//! request anywhere, by the database's clock (a replica's own window until its first share for
//! the key). Every share also reads the keys that reached their limit, whoever counted them, so a
//! replica that never saw a key refuses it as soon as the others do. An early share that fails
//! or does not answer within [`EARLY_WAIT`] leaves the request to the rule without parts, and so
//! every request until a share succeeds (as it does a request still past its part after
//! [`EARLY_WAIT`] of early shares): while the store does not answer, each replica limits by
//! what it knew and what it counts itself (at worst the limit on each), and shares again when
//! the store is back. Outside a fleet [`RateLimits::check`] is that rule alone, and nothing waits.

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

use crate::control::ControlError;
use crate::control::fleet::{FleetStore, RateCount, SharedRates};
use crate::sync::lock;

/// The window of the rate limits.
pub(crate) const WINDOW: Duration = Duration::from_secs(60);
/// How often a replica of a fleet shares its counts.
pub(crate) const SHARE_EVERY: Duration = Duration::from_secs(1);
/// Keys one share sends at most; the rest wait for the next.
const SHARE_MAX: usize = 10_000;
/// How long an early share waits for the store's answer, and how long a request past its
/// replica's fair part goes on asking for early shares; then it is decided from what this
/// replica knows. A request so waits about twice this at most (its last share in flight).
const EARLY_WAIT: Duration = Duration::from_millis(500);
/// Live windows kept at most (about 100 bytes each: 10 MB). Past this many distinct tokens and
/// addresses within a minute, per-key limits mean little anyway.
const MAX_KEYS: usize = 100_000;
/// How often a full map may be swept for expired windows on the request path (a sweep walks the
/// whole map).
const FULL_SWEEP_EVERY: Duration = Duration::from_secs(1);

/// Who a budget belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum Key {
    /// The SHA-256 of a bearer token the guard accepted.
    Token([u8; 32]),
    /// A client address (IPv6 cut to its /64).
    Address(IpAddr),
}

impl Key {
    /// The budget of a client address: IPv4 as is, IPv6 by its /64 (an IPv4-mapped address as
    /// the IPv4 address).
    pub(crate) fn address(address: IpAddr) -> Key {
        Key::Address(match address {
            IpAddr::V4(v4) => IpAddr::V4(v4),
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => IpAddr::V4(v4),
                None => IpAddr::V6(Ipv6Addr::from(u128::from(v6) & !u128::from(u64::MAX))),
            },
        })
    }

    /// The key as the store keeps it: a tag and the hash or the address's bytes.
    fn bytes(&self) -> Vec<u8> {
        match self {
            Key::Token(hash) => [&[b't'][..], hash].concat(),
            Key::Address(IpAddr::V4(v4)) => [&[b'4'][..], &v4.octets()].concat(),
            Key::Address(IpAddr::V6(v6)) => [&[b'6'][..], &v6.octets()].concat(),
        }
    }

    /// The key [`Key::bytes`] made; `None` for anything else.
    fn from_bytes(bytes: &[u8]) -> Option<Key> {
        let (tag, rest) = bytes.split_first()?;
        match tag {
            b't' => Some(Key::Token(rest.try_into().ok()?)),
            b'4' => Some(Key::Address(IpAddr::V4(Ipv4Addr::from(
                <[u8; 4]>::try_from(rest).ok()?,
            )))),
            b'6' => Some(Key::Address(IpAddr::V6(Ipv6Addr::from(
                <[u8; 16]>::try_from(rest).ok()?,
            )))),
            _ => None,
        }
    }

    /// How the log names the key: a token by the start of its SHA-256 (never the token).
    fn describe(&self) -> String {
        match self {
            Key::Token(hash) => {
                let start: String = hash[..4].iter().map(|b| format!("{b:02x}")).collect();
                format!("the token with SHA-256 {start}…")
            }
            Key::Address(IpAddr::V6(v6)) => format!("client addresses {v6}/64"),
            Key::Address(address) => format!("client address {address}"),
        }
    }
}

/// What a budget counts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum Kind {
    ToolCalls,
    /// Every other request (notifications are not counted).
    Requests,
}

impl Kind {
    /// As the store keeps it.
    fn code(self) -> i16 {
        match self {
            Kind::ToolCalls => 0,
            Kind::Requests => 1,
        }
    }

    fn from_code(code: i16) -> Option<Kind> {
        match code {
            0 => Some(Kind::ToolCalls),
            1 => Some(Kind::Requests),
            _ => None,
        }
    }

    fn noun(self) -> &'static str {
        match self {
            Kind::ToolCalls => "tool calls",
            Kind::Requests => "requests",
        }
    }
}

/// A request over its budget.
#[derive(Debug, PartialEq)]
pub(crate) struct Refusal {
    pub(crate) kind: Kind,
    pub(crate) limit: u32,
    /// Until the window ends.
    pub(crate) retry_after: Duration,
    pub(crate) by_token: bool,
}

impl Refusal {
    /// Whole seconds until a retry can pass (at least 1), for `Retry-After`.
    pub(crate) fn retry_after_secs(&self) -> u64 {
        let secs = self.retry_after.as_secs() + u64::from(self.retry_after.subsec_nanos() > 0);
        secs.max(1)
    }

    /// The client's error message: the limit, whose budget, and when to retry.
    pub(crate) fn message(&self) -> String {
        let whose = if self.by_token {
            "this token"
        } else {
            "this client address"
        };
        format!(
            "rate limit of {} {} per minute for {whose} exceeded; retry in {} s",
            self.limit,
            self.kind.noun(),
            self.retry_after_secs()
        )
    }
}

/// Refusals since the last summary.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Refused {
    pub(crate) tool_calls: u64,
    pub(crate) requests: u64,
}

struct Window {
    started: Instant,
    /// The fleet's count in this window at the last share, this replica's shared admissions
    /// included (0 outside a fleet).
    shared: u32,
    /// Admitted here and not shared yet (outside a fleet: every admission).
    pending: u32,
    /// The window's start by the store's clock, once it is the fleet's row's.
    origin: Option<i64>,
    /// Which of this key's windows here it is: a share's answer for an earlier one is not taken
    /// off a later one.
    generation: u32,
    /// In the queue of windows to share.
    queued: bool,
}

impl Window {
    fn new(now: Instant, generation: u32) -> Window {
        Window {
            started: now,
            shared: 0,
            pending: 0,
            origin: None,
            generation,
            queued: false,
        }
    }

    fn used(&self) -> u32 {
        self.shared.saturating_add(self.pending)
    }
}

struct Windows {
    map: HashMap<(Key, Kind), Window>,
    swept: Instant,
    /// Windows with admissions to share (in a fleet), each at most once while its `queued`
    /// holds: no longer than the map, and emptied by every share.
    queue: Vec<(Key, Kind)>,
}

/// The store's clock as this replica reads it: `ms` (milliseconds since the epoch) at `at`.
#[derive(Clone, Copy, Debug)]
struct Clock {
    at: Instant,
    ms: i64,
}

impl Clock {
    /// The local clock's reading, until the store's is known.
    fn local() -> Clock {
        Clock {
            at: Instant::now(),
            ms: crate::control::time::now_ms(),
        }
    }

    fn ms_of(&self, instant: Instant) -> i64 {
        let since = |later: Instant, earlier: Instant| {
            i64::try_from(later.duration_since(earlier).as_millis()).unwrap_or(i64::MAX)
        };
        if instant >= self.at {
            self.ms.saturating_add(since(instant, self.at))
        } else {
            self.ms.saturating_sub(since(self.at, instant))
        }
    }

    fn instant_of(&self, ms: i64) -> Option<Instant> {
        let apart = Duration::from_millis(ms.abs_diff(self.ms));
        if ms >= self.ms {
            self.at.checked_add(apart)
        } else {
            self.at.checked_sub(apart)
        }
    }
}

/// A fleet's side of the limiter.
struct Sharing {
    clock: Mutex<Clock>,
    shares: AtomicU64,
    failed: AtomicU64,
    /// Where early shares go; `None` when only [`share_with_fleet`]'s shares are made.
    store: Option<Arc<dyn FleetStore>>,
    /// [`EARLY_WAIT`], but for tests that must not depend on how fast the store answers.
    early_wait: Duration,
    /// The live replicas of the fleet, this one included, as its heartbeat last saw them.
    replicas: AtomicU32,
    /// Held by the one early share in flight: requests that need one meanwhile wait for it
    /// and take its answer instead of sharing again.
    early: tokio::sync::Mutex<()>,
    /// Early shares ended (answered or not), so a waiter knows whether one ended since it came.
    rounds: AtomicU64,
    /// The last share failed or timed out: until one succeeds, nothing waits for the store.
    failing: AtomicBool,
}

/// How one request fares against its budget.
enum Verdict {
    Admitted,
    Refused(Refusal),
    /// Past this replica's fair part of what remains: decided after a share.
    Share,
}

/// A replica's fair part of what remains of a budget: what it may admit without a share, of
/// `limit` when the fleet's count at its last share was `shared` and the fleet has `replicas`
/// live replicas. At least 1 while anything remains, so a share always lets something through.
pub(crate) fn fair_part(limit: u32, shared: u32, replicas: u32) -> u32 {
    (limit.saturating_sub(shared)).div_ceil(replicas.max(1))
}

/// How a fleet's shares went, for `/health`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Shares {
    pub(crate) done: u64,
    pub(crate) failed: u64,
    /// The live replicas the fair parts are counted for.
    pub(crate) replicas: u32,
}

/// What one share sent: for each key, its window's generation and the count.
#[derive(Default)]
struct Batch {
    counts: Vec<RateCount>,
    sent: HashMap<(Key, Kind), (u32, u32)>,
}

/// The limiter, its counters and its summaries.
pub(crate) struct RateLimits {
    tool_calls: u32,
    requests: u32,
    windows: Mutex<Windows>,
    /// Since start, for `/health`.
    refused_tool_calls: AtomicU64,
    refused_requests: AtomicU64,
    /// Since the last summary.
    period_tool_calls: AtomicU64,
    period_requests: AtomicU64,
    period_started: Mutex<Instant>,
    /// The first refusal of the period was logged.
    announced: AtomicBool,
    /// The map was full in this period (logged once).
    full_announced: AtomicBool,
    /// Set when the limiter shares its counts with a fleet.
    sharing: OnceLock<Sharing>,
}

impl RateLimits {
    /// Limits per minute; 0 turns a limit off.
    pub(crate) fn new(tool_calls: u32, requests: u32) -> RateLimits {
        let now = Instant::now();
        RateLimits {
            tool_calls,
            requests,
            windows: Mutex::new(Windows {
                map: HashMap::new(),
                swept: now,
                queue: Vec::new(),
            }),
            refused_tool_calls: AtomicU64::new(0),
            refused_requests: AtomicU64::new(0),
            period_tool_calls: AtomicU64::new(0),
            period_requests: AtomicU64::new(0),
            period_started: Mutex::new(now),
            announced: AtomicBool::new(false),
            full_announced: AtomicBool::new(false),
            sharing: OnceLock::new(),
        }
    }

    /// Whether any limit is on.
    pub(crate) fn any(&self) -> bool {
        self.tool_calls > 0 || self.requests > 0
    }

    /// How the fleet's shares went; `None` outside a fleet.
    pub(crate) fn shares(&self) -> Option<Shares> {
        self.sharing.get().map(|sharing| Shares {
            done: sharing.shares.load(Ordering::Relaxed),
            failed: sharing.failed.load(Ordering::Relaxed),
            replicas: sharing.replicas.load(Ordering::Relaxed),
        })
    }

    /// The limits per minute (tool calls, other requests); 0 is off.
    pub(crate) fn limits(&self) -> (u32, u32) {
        (self.tool_calls, self.requests)
    }

    /// Live windows (one per token or client address and kind), for `/health`.
    pub(crate) fn windows(&self) -> usize {
        lock(&self.windows).map.len()
    }

    /// Refusals since start.
    pub(crate) fn refused_total(&self) -> Refused {
        Refused {
            tool_calls: self.refused_tool_calls.load(Ordering::Relaxed),
            requests: self.refused_requests.load(Ordering::Relaxed),
        }
    }

    /// Counts one request of `kind` against `key`'s budget; a [`Refusal`] when it is spent.
    /// Decides from what this replica knows, without waiting: outside a fleet that is all there
    /// is, and in a fleet it is what [`RateLimits::admit`] falls back to.
    pub(crate) fn check(&self, key: Key, kind: Kind) -> Result<(), Refusal> {
        match self.decide(key, kind, 1) {
            Verdict::Admitted | Verdict::Share => Ok(()),
            Verdict::Refused(refusal) => Err(self.refuse(key, kind, refusal)),
        }
    }

    /// [`RateLimits::check`], but in a fleet a request past this replica's fair part of what
    /// remains of the budget ([`fair_part`]) waits for an early share (one in flight serves
    /// every request that needs one) and is decided with the fleet's fresh count. A store that
    /// does not answer within [`EARLY_WAIT`] leaves it to [`RateLimits::check`]'s rule.
    pub(crate) async fn admit(&self, key: Key, kind: Kind) -> Result<(), Refusal> {
        let Some(sharing) = self.sharing.get().filter(|sharing| sharing.store.is_some()) else {
            return self.check(key, kind);
        };
        let deadline = tokio::time::Instant::now() + sharing.early_wait;
        let verdict = loop {
            let late = tokio::time::Instant::now() >= deadline;
            let replicas = if sharing.failing.load(Ordering::Acquire) || late {
                1
            } else {
                sharing.replicas.load(Ordering::Relaxed).max(1)
            };
            match self.decide(key, kind, replicas) {
                Verdict::Share => {}
                verdict => break verdict,
            }
            self.share_early(sharing, deadline).await;
        };
        match verdict {
            Verdict::Admitted | Verdict::Share => Ok(()),
            Verdict::Refused(refusal) => Err(self.refuse(key, kind, refusal)),
        }
    }

    /// Waits for an early share: the one in flight if there is one, else a new one, begun
    /// before `deadline`.
    async fn share_early(&self, sharing: &Sharing, deadline: tokio::time::Instant) {
        let Some(store) = &sharing.store else {
            return;
        };
        let seen = sharing.rounds.load(Ordering::Acquire);
        let Ok(_one) = tokio::time::timeout_at(deadline, sharing.early.lock()).await else {
            return;
        };
        if sharing.rounds.load(Ordering::Acquire) != seen {
            // A share ended while this request waited for its turn: its answer is fresh.
            return;
        }
        if let Err(error) = self
            .share_within(store.as_ref(), Some(sharing.early_wait))
            .await
        {
            tracing::debug!("rate limits: an early share failed ({error}); deciding locally");
        }
        sharing.rounds.fetch_add(1, Ordering::Release);
    }

    /// Counts a refusal for `/health` and the summaries, and logs the first of a period.
    fn refuse(&self, key: Key, kind: Kind, refusal: Refusal) -> Refusal {
        let (total, period) = match kind {
            Kind::ToolCalls => (&self.refused_tool_calls, &self.period_tool_calls),
            Kind::Requests => (&self.refused_requests, &self.period_requests),
        };
        total.fetch_add(1, Ordering::Relaxed);
        period.fetch_add(1, Ordering::Relaxed);
        if !self.announced.swap(true, Ordering::Relaxed) {
            tracing::warn!(
                "rate limit of {} {} per minute exceeded by {}; further refusals are \
                 summarised once a minute",
                refusal.limit,
                kind.noun(),
                key.describe()
            );
        }
        refusal
    }

    /// Decides one request, counting it when admitted. With `replicas` above 1, a key whose
    /// admissions since the last share reached this replica's fair part is left to a share.
    fn decide(&self, key: Key, kind: Kind, replicas: u32) -> Verdict {
        let limit = match kind {
            Kind::ToolCalls => self.tool_calls,
            Kind::Requests => self.requests,
        };
        if limit == 0 {
            return Verdict::Admitted;
        }
        let now = Instant::now();
        let sharing = self.sharing.get().is_some();
        {
            let mut guard = lock(&self.windows);
            let windows = &mut *guard;
            if let Some(window) = windows.map.get_mut(&(key, kind)) {
                let elapsed = now.duration_since(window.started);
                if elapsed >= WINDOW {
                    let queued = window.queued;
                    *window = Window::new(now, window.generation.wrapping_add(1));
                    window.queued = queued;
                }
                if window.used() < limit {
                    if replicas > 1 && window.pending >= fair_part(limit, window.shared, replicas) {
                        return Verdict::Share;
                    }
                    window.pending += 1;
                    if sharing && !window.queued {
                        window.queued = true;
                        windows.queue.push((key, kind));
                    }
                    return Verdict::Admitted;
                }
                Verdict::Refused(Refusal {
                    kind,
                    limit,
                    retry_after: WINDOW.saturating_sub(now.duration_since(window.started)),
                    by_token: matches!(key, Key::Token(_)),
                })
            } else {
                if windows.map.len() >= MAX_KEYS
                    && now.duration_since(windows.swept) >= FULL_SWEEP_EVERY
                {
                    windows.swept = now;
                    windows
                        .map
                        .retain(|_, window| now.duration_since(window.started) < WINDOW);
                }
                if windows.map.len() >= MAX_KEYS {
                    drop(guard);
                    if !self.full_announced.swap(true, Ordering::Relaxed) {
                        tracing::warn!(
                            max = MAX_KEYS,
                            "rate limit: tracking its maximum of clients within a minute; new \
                             tokens and addresses pass unlimited until windows expire"
                        );
                    }
                    return Verdict::Admitted;
                }
                let mut window = Window::new(now, 0);
                window.pending = 1;
                window.queued = sharing;
                windows.map.insert((key, kind), window);
                if sharing {
                    windows.queue.push((key, kind));
                }
                Verdict::Admitted
            }
        }
    }

    /// From now on, counts are shared with a fleet ([`RateLimits::share`]); with `store`, a
    /// request past this replica's fair part also shares at once ([`RateLimits::admit`]).
    fn start_sharing(&self, store: Option<Arc<dyn FleetStore>>, early_wait: Duration) {
        let _ = self.sharing.set(Sharing {
            clock: Mutex::new(Clock::local()),
            shares: AtomicU64::new(0),
            failed: AtomicU64::new(0),
            store,
            early_wait,
            replicas: AtomicU32::new(1),
            early: tokio::sync::Mutex::new(()),
            rounds: AtomicU64::new(0),
            failing: AtomicBool::new(false),
        });
    }

    /// The fleet's live replicas, this one included, for the fair parts (at least 1).
    pub(crate) fn set_replicas(&self, replicas: usize) {
        if let Some(sharing) = self.sharing.get() {
            let replicas = u32::try_from(replicas.max(1)).unwrap_or(u32::MAX);
            sharing.replicas.store(replicas, Ordering::Relaxed);
        }
    }

    /// Adds what this replica admitted since the last share to the fleet's counts and takes
    /// the fleet's totals back (see the module's comment). On failure nothing is lost: the
    /// counts wait for the next share, and decisions go on from what is known.
    pub(crate) async fn share(&self, store: &dyn FleetStore) -> Result<(), ControlError> {
        self.share_within(store, None).await
    }

    /// [`RateLimits::share`], given up after `wait` if the store has not answered by then (what
    /// it took waits for the next share, as after a failure; should the store have added it
    /// after all, the fleet counts it twice, erring toward refusing).
    async fn share_within(
        &self,
        store: &dyn FleetStore,
        wait: Option<Duration>,
    ) -> Result<(), ControlError> {
        let Some(sharing) = self.sharing.get() else {
            return Ok(());
        };
        let clock = *lock(&sharing.clock);
        let asked = Instant::now();
        let batch = self.batch(clock, asked);
        let full_at = [self.tool_calls, self.requests].map(|limit| {
            if limit == 0 {
                i64::MAX
            } else {
                i64::from(limit)
            }
        });
        let window_ms = i64::try_from(WINDOW.as_millis()).unwrap_or(i64::MAX);
        let answer = store.share_rate_counts(&batch.counts, window_ms, full_at);
        let answer = match wait {
            Some(wait) => match tokio::time::timeout(wait, answer).await {
                Ok(answer) => answer,
                Err(_) => Err(ControlError::Store(format!(
                    "no answer within {} ms",
                    wait.as_millis()
                ))),
            },
            None => answer.await,
        };
        match answer {
            Ok(shared) => {
                let answered = Instant::now();
                // The store read its clock about halfway through the round trip.
                let clock = Clock {
                    at: asked + answered.duration_since(asked) / 2,
                    ms: shared.now_ms,
                };
                *lock(&sharing.clock) = clock;
                self.settle(&batch, &shared, clock, answered);
                sharing.shares.fetch_add(1, Ordering::Relaxed);
                sharing.failing.store(false, Ordering::Release);
                Ok(())
            }
            Err(error) => {
                self.requeue(&batch);
                sharing.failed.fetch_add(1, Ordering::Relaxed);
                sharing.failing.store(true, Ordering::Release);
                Err(error)
            }
        }
    }

    /// Takes the queued windows with admissions not shared yet (at most [`SHARE_MAX`]).
    fn batch(&self, clock: Clock, now: Instant) -> Batch {
        let mut guard = lock(&self.windows);
        let windows = &mut *guard;
        let take = windows.queue.len().min(SHARE_MAX);
        let mut batch = Batch::default();
        for (key, kind) in windows.queue.drain(..take) {
            let Some(window) = windows.map.get_mut(&(key, kind)) else {
                continue;
            };
            if !std::mem::take(&mut window.queued)
                || window.pending == 0
                || now.duration_since(window.started) >= WINDOW
            {
                continue;
            }
            batch.counts.push(RateCount {
                kind: kind.code(),
                key: key.bytes(),
                started_ms: window.origin.unwrap_or_else(|| clock.ms_of(window.started)),
                count: i64::from(window.pending),
            });
            batch
                .sent
                .insert((key, kind), (window.generation, window.pending));
        }
        batch
    }

    /// A share failed: what it took waits for the next.
    fn requeue(&self, batch: &Batch) {
        let mut guard = lock(&self.windows);
        let windows = &mut *guard;
        for key in batch.sent.keys() {
            if let Some(window) = windows.map.get_mut(key)
                && window.pending > 0
                && !window.queued
            {
                window.queued = true;
                windows.queue.push(*key);
            }
        }
    }

    /// Takes a share's answer: what was sent is no longer pending, each key's window becomes its
    /// row's (its start and the fleet's count), and keys at their limit elsewhere are known
    /// here too (while there is room).
    fn settle(&self, batch: &Batch, shared: &SharedRates, clock: Clock, now: Instant) {
        let mut guard = lock(&self.windows);
        let windows = &mut *guard;
        let rows = shared.added.iter().map(|row| (row, true));
        for (row, added) in rows.chain(shared.full.iter().map(|row| (row, false))) {
            let (Some(key), Some(kind)) = (Key::from_bytes(&row.key), Kind::from_code(row.kind))
            else {
                continue;
            };
            let sent = if added {
                batch.sent.get(&(key, kind)).copied()
            } else {
                None
            };
            let start = clock.instant_of(row.started_ms);
            let live = start.is_some_and(|start| now.saturating_duration_since(start) < WINDOW);
            let count = u32::try_from(row.count.max(0)).unwrap_or(u32::MAX);
            let room = windows.map.len() < MAX_KEYS;
            let window = match windows.map.entry((key, kind)) {
                Entry::Occupied(window) => window.into_mut(),
                Entry::Vacant(vacant) if live && !added && room => {
                    vacant.insert(Window::new(now, 0))
                }
                Entry::Vacant(_) => continue,
            };
            if let Some((generation, sent)) = sent
                && window.generation == generation
            {
                window.pending = window.pending.saturating_sub(sent);
            }
            if let (true, Some(start)) = (live, start) {
                if window.origin == Some(row.started_ms) {
                    window.shared = window.shared.max(count);
                } else {
                    window.origin = Some(row.started_ms);
                    window.started = start.min(now);
                    window.shared = count;
                }
            }
            if window.pending > 0 && !window.queued {
                window.queued = true;
                windows.queue.push((key, kind));
            }
        }
    }

    /// Ends a period: drops expired windows, logs what was refused in it (one line, only when
    /// something was) and returns it for the store.
    pub(crate) fn summarise(&self) -> Refused {
        let now = Instant::now();
        {
            let mut windows = lock(&self.windows);
            windows.swept = now;
            windows
                .map
                .retain(|_, window| now.duration_since(window.started) < WINDOW);
        }
        let refused = Refused {
            tool_calls: self.period_tool_calls.swap(0, Ordering::Relaxed),
            requests: self.period_requests.swap(0, Ordering::Relaxed),
        };
        let started = std::mem::replace(&mut *lock(&self.period_started), now);
        self.announced.store(false, Ordering::Relaxed);
        self.full_announced.store(false, Ordering::Relaxed);
        let total = refused.tool_calls + refused.requests;
        if total > 0 {
            tracing::warn!(
                "{total} requests refused by the rate limit in the last {} s ({} tool calls, {} \
                 other requests)",
                now.duration_since(started).as_secs().max(1),
                refused.tool_calls,
                refused.requests
            );
        }
        refused
    }
}

/// Shares `limits`' counts with the fleet on `store` every [`SHARE_EVERY`] until `stop`, then
/// once more, so that what this replica admitted still counts after it leaves. A store that
/// does not answer is said once in the log, and again when it answers.
pub(crate) async fn share_with_fleet(
    limits: &RateLimits,
    store: Arc<dyn FleetStore>,
    replicas: impl Fn() -> usize,
    stop: CancellationToken,
) {
    limits.start_sharing(Some(store.clone()), EARLY_WAIT);
    limits.set_replicas(replicas());
    let mut failing = false;
    loop {
        tokio::select! {
            () = stop.cancelled() => break,
            () = tokio::time::sleep(SHARE_EVERY) => {}
        }
        limits.set_replicas(replicas());
        match limits.share(store.as_ref()).await {
            Ok(()) if std::mem::take(&mut failing) => {
                tracing::info!(
                    "rate limits: the store answers again; counts shared with the fleet"
                );
            }
            Ok(()) => {}
            Err(error) => {
                if !std::mem::replace(&mut failing, true) {
                    tracing::warn!(
                        "rate limits: cannot share counts with the fleet ({error}); each replica \
                         limits by what it knew and what it counts itself until the store answers"
                    );
                }
            }
        }
    }
    match tokio::time::timeout(Duration::from_secs(2), limits.share(store.as_ref())).await {
        Ok(Ok(())) => {}
        Ok(Err(error)) => tracing::debug!("rate limits: the last share failed: {error}"),
        Err(_) => tracing::debug!("rate limits: the last share timed out"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn address(last: u8) -> Key {
        Key::address(IpAddr::V4(Ipv4Addr::new(10, 0, 0, last)))
    }

    #[test]
    fn limits_count_per_key_and_kind_and_zero_is_off() {
        let limits = RateLimits::new(2, 0);
        assert!(limits.check(address(1), Kind::ToolCalls).is_ok());
        assert!(limits.check(address(1), Kind::ToolCalls).is_ok());
        let refusal = limits.check(address(1), Kind::ToolCalls).unwrap_err();
        assert_eq!((refusal.limit, refusal.kind), (2, Kind::ToolCalls));
        assert!(refusal.retry_after <= WINDOW);
        assert!(limits.check(address(2), Kind::ToolCalls).is_ok());
        assert!(limits.check(Key::Token([7; 32]), Kind::ToolCalls).is_ok());
        for _ in 0..10 {
            assert!(limits.check(address(1), Kind::Requests).is_ok());
        }
        assert_eq!(
            limits.refused_total(),
            Refused {
                tool_calls: 1,
                requests: 0
            }
        );
    }

    #[test]
    fn the_refusal_names_the_limit_and_when_to_retry() {
        let refusal = Refusal {
            kind: Kind::ToolCalls,
            limit: 60,
            retry_after: Duration::from_millis(11_200),
            by_token: true,
        };
        assert_eq!(
            refusal.message(),
            "rate limit of 60 tool calls per minute for this token exceeded; retry in 12 s"
        );
        let refusal = Refusal {
            kind: Kind::Requests,
            limit: 100,
            retry_after: Duration::ZERO,
            by_token: false,
        };
        assert_eq!(refusal.retry_after_secs(), 1);
        assert!(
            refusal
                .message()
                .contains("100 requests per minute for this client address")
        );
    }

    #[test]
    fn an_ipv6_host_counts_by_its_64_block() {
        let one = Key::address("2001:db8:1:2:aaaa::1".parse().unwrap());
        let other = Key::address("2001:db8:1:2:bbbb::9".parse().unwrap());
        let elsewhere = Key::address("2001:db8:1:3::1".parse().unwrap());
        assert_eq!(one, other);
        assert_ne!(one, elsewhere);
        assert_eq!(Key::address("::ffff:10.0.0.1".parse().unwrap()), address(1));
    }

    #[test]
    fn a_summary_drops_expired_windows_and_resets_the_period() {
        let limits = RateLimits::new(1, 0);
        limits.check(address(1), Kind::ToolCalls).unwrap();
        limits.check(address(1), Kind::ToolCalls).unwrap_err();
        limits.check(address(1), Kind::ToolCalls).unwrap_err();
        // Age the window past its minute.
        for window in lock(&limits.windows).map.values_mut() {
            window.started = Instant::now() - WINDOW;
        }
        assert_eq!(
            limits.summarise(),
            Refused {
                tool_calls: 2,
                requests: 0
            }
        );
        assert_eq!(limits.windows(), 0);
        assert_eq!(limits.summarise(), Refused::default());
        assert_eq!(limits.refused_total().tool_calls, 2);
    }

    #[test]
    fn a_full_map_lets_new_keys_through_instead_of_growing() {
        let limits = RateLimits::new(1, 0);
        {
            let mut windows = lock(&limits.windows);
            let now = Instant::now();
            for n in 0..MAX_KEYS as u32 {
                windows.map.insert(
                    (Key::Address(IpAddr::V4(Ipv4Addr::from(n))), Kind::ToolCalls),
                    Window {
                        pending: 1,
                        ..Window::new(now, 0)
                    },
                );
            }
        }
        let newcomer = Key::address(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1)));
        assert!(limits.check(newcomer, Kind::ToolCalls).is_ok());
        assert!(limits.check(newcomer, Kind::ToolCalls).is_ok());
        assert_eq!(limits.windows(), MAX_KEYS);
        // A known key still has its budget counted.
        let known = Key::Address(IpAddr::V4(Ipv4Addr::from(5)));
        assert!(limits.check(known, Kind::ToolCalls).is_err());
    }

    fn row(key: Key, kind: Kind, started_ms: i64, count: i64) -> RateCount {
        RateCount {
            kind: kind.code(),
            key: key.bytes(),
            started_ms,
            count,
        }
    }

    fn shared(now_ms: i64, added: Vec<RateCount>, full: Vec<RateCount>) -> SharedRates {
        SharedRates {
            now_ms,
            added,
            full,
        }
    }

    #[test]
    fn keys_go_to_the_store_and_back_as_bytes() {
        for key in [
            Key::Token([9; 32]),
            address(7),
            Key::address("2001:db8:1:2::5".parse().unwrap()),
        ] {
            assert_eq!(Key::from_bytes(&key.bytes()), Some(key));
        }
        for bad in [&b""[..], b"x1234", b"4123", b"t12"] {
            assert_eq!(Key::from_bytes(bad), None);
        }
        assert_eq!(Kind::from_code(Kind::Requests.code()), Some(Kind::Requests));
        assert_eq!(Kind::from_code(7), None);
    }

    #[test]
    fn outside_a_fleet_nothing_waits_to_be_shared() {
        let limits = RateLimits::new(5, 5);
        limits.check(address(1), Kind::ToolCalls).unwrap();
        limits.check(address(1), Kind::Requests).unwrap();
        assert!(lock(&limits.windows).queue.is_empty());
        assert_eq!(limits.shares(), None);
    }

    #[test]
    fn a_share_sends_what_is_pending_and_takes_the_fleets_count_and_window() {
        let limits = RateLimits::new(5, 0);
        limits.start_sharing(None, EARLY_WAIT);
        let clock = Clock::local();
        let token = Key::Token([1; 32]);
        limits.check(token, Kind::ToolCalls).unwrap();
        limits.check(token, Kind::ToolCalls).unwrap();
        let batch = limits.batch(clock, Instant::now());
        assert_eq!(batch.counts.len(), 1);
        assert_eq!(batch.counts[0].count, 2);
        assert!((batch.counts[0].started_ms - clock.ms).abs() < 1_000);
        // Admitted while the share is under way: still to share after it.
        limits.check(token, Kind::ToolCalls).unwrap();
        // The fleet's row began 10 s earlier and counts 5 with these two.
        let origin = clock.ms - 10_000;
        let answer = shared(
            clock.ms,
            vec![row(token, Kind::ToolCalls, origin, 5)],
            vec![],
        );
        limits.settle(&batch, &answer, clock, Instant::now());
        let refusal = limits.check(token, Kind::ToolCalls).unwrap_err();
        assert!(refusal.retry_after <= WINDOW - Duration::from_secs(10));
        // The one admitted meanwhile goes with the next share, to the row's window.
        let next = limits.batch(clock, Instant::now());
        assert_eq!(next.counts, vec![row(token, Kind::ToolCalls, origin, 1)]);
        // Nothing left to share.
        assert!(limits.batch(clock, Instant::now()).counts.is_empty());
    }

    #[test]
    fn keys_at_their_limit_elsewhere_are_refused_here() {
        let limits = RateLimits::new(2, 0);
        limits.start_sharing(None, EARLY_WAIT);
        let clock = Clock::local();
        let (full, over) = (address(8), address(9));
        let answer = shared(
            clock.ms,
            vec![],
            vec![
                row(full, Kind::ToolCalls, clock.ms - 1_000, 2),
                // A window already over is not taken.
                row(over, Kind::ToolCalls, clock.ms - 61_000, 2),
            ],
        );
        limits.settle(&Batch::default(), &answer, clock, Instant::now());
        assert!(limits.check(full, Kind::ToolCalls).is_err());
        assert!(limits.check(over, Kind::ToolCalls).is_ok());
    }

    #[test]
    fn a_failed_share_loses_nothing_and_a_new_window_is_not_charged_for_the_old() {
        let limits = RateLimits::new(10, 0);
        limits.start_sharing(None, EARLY_WAIT);
        let clock = Clock::local();
        let key = address(3);
        limits.check(key, Kind::ToolCalls).unwrap();
        let failed = limits.batch(clock, Instant::now());
        limits.requeue(&failed);
        limits.check(key, Kind::ToolCalls).unwrap();
        let batch = limits.batch(clock, Instant::now());
        assert_eq!(batch.counts.len(), 1);
        assert_eq!(batch.counts[0].count, 2, "both admissions, once");
        // The window ends and another begins before the answer comes: the answer's row is
        // over, and the new window's admission stays to share.
        for window in lock(&limits.windows).map.values_mut() {
            window.started = Instant::now() - WINDOW;
        }
        limits.check(key, Kind::ToolCalls).unwrap();
        let started = batch.counts[0].started_ms;
        let answer = shared(
            clock.ms,
            vec![row(key, Kind::ToolCalls, started - 60_000, 2)],
            vec![],
        );
        limits.settle(&batch, &answer, clock, Instant::now());
        let next = limits.batch(clock, Instant::now());
        assert_eq!(next.counts.len(), 1);
        assert_eq!(next.counts[0].count, 1);
    }

    #[test]
    fn a_fair_part_is_what_remains_split_among_the_replicas_rounded_up() {
        assert_eq!(fair_part(6, 0, 3), 2);
        assert_eq!(fair_part(6, 4, 3), 1);
        assert_eq!(fair_part(7, 0, 3), 3);
        assert_eq!(fair_part(6, 6, 3), 0);
        assert_eq!(fair_part(6, 9, 3), 0);
        assert_eq!(fair_part(1, 0, 5), 1, "something remains: at least one");
        // Outside a fleet, or alone in it, the part is all that remains.
        assert_eq!(fair_part(60, 15, 1), 45);
        assert_eq!(fair_part(60, 15, 0), 45);
    }

    #[test]
    fn past_its_fair_part_a_replica_asks_for_a_share_and_check_decides_alone() {
        let limits = RateLimits::new(6, 0);
        limits.start_sharing(None, EARLY_WAIT);
        limits.set_replicas(3);
        let key = Key::Token([3; 32]);
        for _ in 0..2 {
            assert!(matches!(
                limits.decide(key, Kind::ToolCalls, 3),
                Verdict::Admitted
            ));
        }
        assert!(matches!(
            limits.decide(key, Kind::ToolCalls, 3),
            Verdict::Share
        ));
        // The fleet's count comes back at 5 with these two: one remains, this replica's part.
        let clock = Clock::local();
        let batch = limits.batch(clock, Instant::now());
        let origin = batch.counts[0].started_ms;
        let answer = shared(clock.ms, vec![row(key, Kind::ToolCalls, origin, 5)], vec![]);
        limits.settle(&batch, &answer, clock, Instant::now());
        assert!(matches!(
            limits.decide(key, Kind::ToolCalls, 3),
            Verdict::Admitted
        ));
        assert!(matches!(
            limits.decide(key, Kind::ToolCalls, 3),
            Verdict::Refused(_)
        ));
        // Without a store to share with, `admit` decides as `check` does.
        let other = Key::Token([4; 32]);
        for _ in 0..6 {
            limits.check(other, Kind::ToolCalls).unwrap();
        }
        assert!(limits.check(other, Kind::ToolCalls).is_err());
        assert_eq!(limits.shares().map(|shares| shares.replicas), Some(3));
    }

    /// Requests past the fair part at once wait for one early share, not one each; a replica
    /// that spends a large budget alone shares about log(limit) times, never once per request.
    #[tokio::test]
    async fn requests_past_the_fair_part_wait_for_one_share_together() {
        use crate::control::postgres::PostgresStore;
        use crate::control::tests::cluster;
        let url = cluster::database().await;
        let store: Arc<dyn FleetStore> = Arc::new(PostgresStore::connect(&url).await.unwrap());
        let limits = RateLimits::new(60, 0);
        // However slow the store, the requests wait for their shares.
        limits.start_sharing(Some(store), Duration::from_secs(3_600));
        limits.set_replicas(3);
        let key = Key::Token([6; 32]);
        for _ in 0..20 {
            limits.admit(key, Kind::ToolCalls).await.unwrap();
        }
        assert_eq!(limits.shares().map(|shares| shares.done), Some(0));
        let waiting = (0..10).map(|_| limits.admit(key, Kind::ToolCalls));
        let decided = futures::future::join_all(waiting).await;
        assert!(decided.iter().all(Result::is_ok), "{decided:?}");
        assert_eq!(limits.shares().map(|shares| shares.done), Some(1));
        let mut admitted = 30;
        while limits.admit(key, Kind::ToolCalls).await.is_ok() {
            admitted += 1;
        }
        // Alone on the store, the replica admits exactly the limit.
        assert_eq!(admitted, 60);
        let shares = limits.shares().unwrap().done;
        assert!(shares <= 12, "{shares} shares for 60 admissions");
    }

    /// Shares until the store takes the counts (a few tries: one per pooled connection the
    /// server may have ended).
    async fn share_until_done(limits: &RateLimits, store: &dyn FleetStore) {
        for _ in 0..8 {
            if limits.share(store).await.is_ok() {
                return;
            }
        }
        panic!("the store does not take the counts");
    }

    /// Two replicas' limiters on one PostgreSQL database: while it is away, one limits alone and
    /// keeps what it counted; once it is back, that reaches the other.
    #[tokio::test]
    async fn counts_wait_out_a_store_that_is_away_and_reach_the_fleet_when_it_is_back() {
        use crate::control::postgres::PostgresStore;
        use crate::control::tests::cluster;
        let url = cluster::database().await;
        let name = cluster::name_of(&url);
        let (mine, theirs) = (
            PostgresStore::connect(&url).await.unwrap(),
            PostgresStore::connect(&url).await.unwrap(),
        );
        let (here, there) = (RateLimits::new(3, 0), RateLimits::new(3, 0));
        here.start_sharing(None, EARLY_WAIT);
        there.start_sharing(None, EARLY_WAIT);
        let key = Key::Token([5; 32]);
        here.check(key, Kind::ToolCalls).unwrap();
        let (admin, connection) = tokio_postgres::connect(
            &cluster::cluster().settings("postgres"),
            tokio_postgres::NoTls,
        )
        .await
        .unwrap();
        tokio::spawn(connection);
        admin
            .batch_execute(&format!(
                "ALTER DATABASE {name} ALLOW_CONNECTIONS false;
                 SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}'"
            ))
            .await
            .unwrap();
        assert!(here.share(&mine).await.is_err());
        // Limiting alone meanwhile, the first admission still counted.
        here.check(key, Kind::ToolCalls).unwrap();
        here.check(key, Kind::ToolCalls).unwrap();
        assert!(here.check(key, Kind::ToolCalls).is_err());
        assert_eq!(
            here.shares(),
            Some(Shares {
                done: 0,
                failed: 1,
                replicas: 1
            })
        );
        admin
            .batch_execute(&format!("ALTER DATABASE {name} ALLOW_CONNECTIONS true"))
            .await
            .unwrap();
        // The first shares after it may meet pooled connections the server ended (each is
        // dropped by the pool), and fail as the one above did, losing nothing.
        share_until_done(&here, &mine).await;
        // The other replica never saw the token, and refuses it: the three are the fleet's.
        share_until_done(&there, &theirs).await;
        assert!(there.check(key, Kind::ToolCalls).is_err());
        assert_eq!(there.shares().map(|shares| shares.done), Some(1));
    }
}
