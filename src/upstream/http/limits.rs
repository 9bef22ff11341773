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

use std::collections::HashMap;
use std::net::{IpAddr, Ipv6Addr};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::sync::lock;

/// The window of the rate limits.
pub(crate) const WINDOW: Duration = Duration::from_secs(60);
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
    count: u32,
}

struct Windows {
    map: HashMap<(Key, Kind), Window>,
    swept: Instant,
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
            }),
            refused_tool_calls: AtomicU64::new(0),
            refused_requests: AtomicU64::new(0),
            period_tool_calls: AtomicU64::new(0),
            period_requests: AtomicU64::new(0),
            period_started: Mutex::new(now),
            announced: AtomicBool::new(false),
            full_announced: AtomicBool::new(false),
        }
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
    pub(crate) fn check(&self, key: Key, kind: Kind) -> Result<(), Refusal> {
        let limit = match kind {
            Kind::ToolCalls => self.tool_calls,
            Kind::Requests => self.requests,
        };
        if limit == 0 {
            return Ok(());
        }
        let now = Instant::now();
        let refusal = {
            let mut windows = lock(&self.windows);
            if let Some(window) = windows.map.get_mut(&(key, kind)) {
                let elapsed = now.duration_since(window.started);
                if elapsed >= WINDOW {
                    *window = Window {
                        started: now,
                        count: 0,
                    };
                }
                if window.count < limit {
                    window.count += 1;
                    return Ok(());
                }
                Refusal {
                    kind,
                    limit,
                    retry_after: WINDOW.saturating_sub(now.duration_since(window.started)),
                    by_token: matches!(key, Key::Token(_)),
                }
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
                    drop(windows);
                    if !self.full_announced.swap(true, Ordering::Relaxed) {
                        tracing::warn!(
                            max = MAX_KEYS,
                            "rate limit: tracking its maximum of clients within a minute; new \
                             tokens and addresses pass unlimited until windows expire"
                        );
                    }
                    return Ok(());
                }
                windows.map.insert(
                    (key, kind),
                    Window {
                        started: now,
                        count: 1,
                    },
                );
                return Ok(());
            }
        };
        let (total, period) = match kind {
            Kind::ToolCalls => (&self.refused_tool_calls, &self.period_tool_calls),
            Kind::Requests => (&self.refused_requests, &self.period_requests),
        };
        total.fetch_add(1, Ordering::Relaxed);
        period.fetch_add(1, Ordering::Relaxed);
        if !self.announced.swap(true, Ordering::Relaxed) {
            tracing::warn!(
                "rate limit of {limit} {} per minute exceeded by {}; further refusals are \
                 summarised once a minute",
                kind.noun(),
                key.describe()
            );
        }
        Err(refusal)
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

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;

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
                        started: now,
                        count: 1,
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
}
