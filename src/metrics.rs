//! Prometheus metrics: the process's counters and histograms, and the text they are read as
//! (`/metrics`: the Prometheus text format 0.0.4, or OpenMetrics 1.0 when the scraper asks for
//! it). Names follow the OpenTelemetry semantic conventions for MCP, rendered the Prometheus way
//! (`mcp.server.operation.duration`, unit `s` → `mcp_server_operation_duration_seconds`; the
//! attribute `mcp.method.name` → the label `mcp_method_name`), with the conventions' advisory
//! buckets; what a gateway adds is named `pluggedin_proxy_*`.
//!
//! Recording is one hash of a few short strings and a few atomic adds behind one short lock per
//! operation. Every label value comes from a bounded set whatever clients send: methods are the
//! protocol's (else `other`), error types JSON-RPC codes in the reserved range (else `_OTHER`),
//! protocol versions the known ones, servers the configured ones, and a tool gets a label of its
//! own only while fewer than [`Metrics::set_tool_labels`] tools have one (the first called); the
//! rest share `other`.
//! Numbers that already live elsewhere (sessions, servers, catalog sizes) are read when scraped
//! (the `elsewhere` of [`Metrics::render`]), not kept twice.

use std::collections::{HashMap, HashSet};
use std::fmt::Write as _;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use crate::sync::lock;

/// The conventions' advisory buckets for operation durations, in seconds.
pub const BUCKETS: [f64; 14] = [
    0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0,
];

/// Tools with a label of their own, by default.
pub const DEFAULT_TOOL_LABELS: usize = 100;

/// The most label sets one histogram keeps; past it, new ones are counted under `other`
/// throughout. The bounded label values keep far below it; this holds whatever they become.
const MAX_SERIES: usize = 4096;

/// The label value shared by whatever is not named on its own.
pub const OTHER: &str = "other";

/// What a request's outcome is called in `error.type`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Outcome {
    /// Answered with a result.
    Ok,
    /// A tool's result with `isError: true`: `tool_error`.
    ToolError,
    /// A JSON-RPC error with this code.
    Code(i32),
}

impl Outcome {
    /// A request's outcome, from the JSON-RPC code of its error.
    pub fn of<T, E: HasCode>(result: &Result<T, E>) -> Outcome {
        match result {
            Ok(_) => Outcome::Ok,
            Err(error) => Outcome::Code(error.code()),
        }
    }

    /// The `error.type` label: empty for success, as Prometheus reads an absent label.
    fn label(self, buffer: &mut itoa::Buffer) -> &str {
        match self {
            Outcome::Ok => "",
            Outcome::ToolError => "tool_error",
            Outcome::Code(code) if (-32768..=-32000).contains(&code) => buffer.format(code),
            Outcome::Code(_) => "_OTHER",
        }
    }
}

/// An error that has a JSON-RPC code.
pub trait HasCode {
    fn code(&self) -> i32;
}

impl HasCode for rmcp::model::ErrorData {
    fn code(&self) -> i32 {
        self.code.0
    }
}

/// The MCP methods named in labels; any other is `other`.
const METHODS: &[&str] = &[
    "initialize",
    "ping",
    "server/discover",
    "tools/list",
    "tools/call",
    "prompts/list",
    "prompts/get",
    "resources/list",
    "resources/templates/list",
    "resources/read",
    "resources/subscribe",
    "resources/unsubscribe",
    "subscriptions/listen",
    "completion/complete",
    "logging/setLevel",
    "tasks/get",
    "tasks/result",
    "tasks/list",
    "tasks/cancel",
    "tasks/update",
    "sampling/createMessage",
    "elicitation/create",
    "roots/list",
];

/// The protocol revisions named in labels.
const VERSIONS: &[&str] = &[
    "2024-11-05",
    "2025-03-26",
    "2025-06-18",
    "2025-11-25",
    "2026-07-28",
];

/// `method` as a label value from the bounded set.
pub fn method_label(method: &str) -> &'static str {
    METHODS
        .iter()
        .find(|known| **known == method)
        .copied()
        .unwrap_or(OTHER)
}

/// `version` as a label value from the bounded set (`""`: not known, as on the inspector's calls).
pub fn version_label(version: Option<&str>) -> &'static str {
    match version {
        None => "",
        Some(version) => VERSIONS
            .iter()
            .find(|known| **known == version)
            .copied()
            .unwrap_or(OTHER),
    }
}

/// One histogram: a count per bucket (the last is `+Inf`) and the sum, in nanoseconds.
#[derive(Default)]
struct Histogram {
    buckets: [AtomicU64; BUCKETS.len() + 1],
    sum_nanos: AtomicU64,
}

impl Histogram {
    fn observe(&self, elapsed: Duration) {
        let seconds = elapsed.as_secs_f64();
        let bucket = BUCKETS
            .iter()
            .position(|bound| seconds <= *bound)
            .unwrap_or(BUCKETS.len());
        self.buckets[bucket].fetch_add(1, Ordering::Relaxed);
        let nanos = u64::try_from(elapsed.as_nanos()).unwrap_or(u64::MAX);
        self.sum_nanos.fetch_add(nanos, Ordering::Relaxed);
    }
}

/// A histogram's label values: method, tool, error type, and the side's own (the protocol
/// version on the server side, the downstream server on the client side).
#[derive(Clone, PartialEq, Eq, Hash)]
struct Key {
    method: &'static str,
    tool: Arc<str>,
    outcome: Outcome,
    extra: Arc<str>,
}

/// One histogram per label set, at most [`MAX_SERIES`]; found on the recording path by the
/// values as recorded, so that a recording hashes a few short strings once and interns nothing.
#[derive(Default)]
struct Family(Mutex<Series>);

#[derive(Default)]
struct Series {
    /// By label values: what a scrape reads.
    labelled: HashMap<Key, Arc<Histogram>>,
    /// By the values as recorded (a tool's own name, before it became `other`), under their
    /// [`Quick`] hash, at most [`MAX_RECORDED`]; past it, a recording interns its labels.
    recorded: HashMap<u64, Vec<Recorded>, BuildHasherDefault<Identity>>,
    recorded_count: usize,
}

/// Values as recorded, before they are made labels, and their histogram.
struct Recorded {
    method: &'static str,
    tool: Option<Box<str>>,
    outcome: Outcome,
    extra: Box<str>,
    histogram: Arc<Histogram>,
}

/// The most recorded value sets remembered per histogram family.
const MAX_RECORDED: usize = 8192;

impl Family {
    /// Counts `elapsed` under the values given; `labels` makes their label set when they are new.
    fn observe(
        &self,
        (method, tool, outcome, extra): (&'static str, Option<&str>, Outcome, &str),
        labels: impl FnOnce() -> Key,
        elapsed: Duration,
    ) {
        let hash = {
            let mut hasher = Quick::default();
            hasher.write(method.as_bytes());
            hasher.write(tool.unwrap_or("\u{0}").as_bytes());
            hasher.write(extra.as_bytes());
            let outcome = match outcome {
                Outcome::Ok => 0,
                Outcome::ToolError => 1,
                Outcome::Code(code) => 2 + i64::from(code).unsigned_abs(),
            };
            hasher.write_u64(outcome);
            hasher.finish()
        };
        let mut series = lock(&self.0);
        let found = series.recorded.get(&hash).and_then(|entries| {
            entries.iter().find(|recorded| {
                recorded.method == method
                    && recorded.tool.as_deref() == tool
                    && recorded.outcome == outcome
                    && &*recorded.extra == extra
            })
        });
        if let Some(recorded) = found {
            recorded.histogram.observe(elapsed);
            return;
        }
        let histogram = series.labelled(labels());
        histogram.observe(elapsed);
        if series.recorded_count < MAX_RECORDED {
            series.recorded_count += 1;
            let recorded = Recorded {
                method,
                tool: tool.map(Into::into),
                outcome,
                extra: extra.into(),
                histogram,
            };
            series.recorded.entry(hash).or_default().push(recorded);
        }
    }

    fn snapshot(&self) -> Vec<(Key, Arc<Histogram>)> {
        let mut series: Vec<_> = lock(&self.0)
            .labelled
            .iter()
            .map(|(key, histogram)| (key.clone(), histogram.clone()))
            .collect();
        series.sort_by(|(a, _), (b, _)| {
            (a.method, &*a.tool, &*a.extra).cmp(&(b.method, &*b.tool, &*b.extra))
        });
        series
    }
}

impl Series {
    /// The histogram of `key`'s label set; past [`MAX_SERIES`] sets, the shared `other` one.
    fn labelled(&mut self, key: Key) -> Arc<Histogram> {
        let full = self.labelled.len() >= MAX_SERIES;
        if let Some(histogram) = self.labelled.get(&key) {
            return histogram.clone();
        }
        let key = if full {
            let other: Arc<str> = OTHER.into();
            Key {
                method: OTHER,
                tool: other.clone(),
                outcome: Outcome::Code(0),
                extra: other,
            }
        } else {
            key
        };
        self.labelled.entry(key).or_default().clone()
    }
}

/// A fast hash of a few short strings (the multiply-rotate of rustc's FxHash): the maps it keys
/// are bounded and compare the values on a hit, so collisions cost a longer scan, never a wrong
/// count.
#[derive(Default)]
struct Quick(u64);

impl Hasher for Quick {
    fn write(&mut self, bytes: &[u8]) {
        const K: u64 = 0x517c_c1b7_2722_0a95;
        let mut chunks = bytes.chunks_exact(8);
        for chunk in &mut chunks {
            let word = u64::from_le_bytes(chunk.try_into().expect("8 bytes"));
            self.0 = (self.0.rotate_left(5) ^ word).wrapping_mul(K);
        }
        let mut tail = [0; 8];
        tail[..chunks.remainder().len()].copy_from_slice(chunks.remainder());
        self.0 = (self.0.rotate_left(5) ^ u64::from_le_bytes(tail)).wrapping_mul(K);
    }

    fn write_u64(&mut self, value: u64) {
        const K: u64 = 0x517c_c1b7_2722_0a95;
        self.0 = (self.0.rotate_left(5) ^ value).wrapping_mul(K);
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

/// A hasher for keys that are hashes already.
#[derive(Default)]
struct Identity(u64);

impl Hasher for Identity {
    fn write(&mut self, bytes: &[u8]) {
        for byte in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(*byte);
        }
    }

    fn write_u64(&mut self, value: u64) {
        self.0 = value;
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

/// Label values kept once and shared (a lookup per use, no allocation): at most `limit` of them,
/// the rest `other`.
struct Labels {
    limit: AtomicUsize,
    named: Mutex<HashSet<Arc<str>>>,
    other: Arc<str>,
}

impl Labels {
    fn new(limit: usize) -> Labels {
        Labels {
            limit: AtomicUsize::new(limit),
            named: Mutex::default(),
            other: OTHER.into(),
        }
    }

    fn label(&self, value: &str) -> Arc<str> {
        let mut named = lock(&self.named);
        if let Some(label) = named.get(value) {
            return label.clone();
        }
        if named.len() < self.limit.load(Ordering::Relaxed) {
            let label: Arc<str> = value.into();
            named.insert(label.clone());
            return label;
        }
        self.other.clone()
    }
}

/// A request counted in flight while this lives.
pub struct InFlight(&'static AtomicU64);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// The process's metrics.
pub struct Metrics {
    server_operations: Family,
    client_operations: Family,
    /// The tools with a label of their own (`--metrics-tool-labels`).
    tools: Labels,
    /// Protocol versions (a bounded set already) and servers (the configured ones, at most 1,024
    /// over the process's life).
    extras: Labels,
    empty: Arc<str>,
    /// `pipe` (stdio) or `tcp` (Streamable HTTP): one per process.
    transport: OnceLock<&'static str>,
    pub sessions_opened: AtomicU64,
    pub sessions_closed: AtomicU64,
    /// Sessions taken over from a fleet replica that was gone.
    pub sessions_adopted: AtomicU64,
    /// Requests passed to the fleet replica that holds their session.
    pub fleet_forwarded: AtomicU64,
    pub store_errors: AtomicU64,
    /// `tools/call`, `prompts/get`, `resources/read` and `completion/complete` being answered.
    in_flight: AtomicU64,
}

static METRICS: OnceLock<Metrics> = OnceLock::new();

/// The process's metrics.
pub fn global() -> &'static Metrics {
    METRICS.get_or_init(|| Metrics {
        server_operations: Family::default(),
        client_operations: Family::default(),
        tools: Labels::new(DEFAULT_TOOL_LABELS),
        extras: Labels::new(1024),
        empty: "".into(),
        transport: OnceLock::new(),
        sessions_opened: AtomicU64::new(0),
        sessions_closed: AtomicU64::new(0),
        sessions_adopted: AtomicU64::new(0),
        fleet_forwarded: AtomicU64::new(0),
        store_errors: AtomicU64::new(0),
        in_flight: AtomicU64::new(0),
    })
}

impl Metrics {
    /// How many tools get a label of their own (`--metrics-tool-labels`).
    pub fn set_tool_labels(&self, limit: usize) {
        self.tools.limit.store(limit, Ordering::Relaxed);
    }

    /// `network.transport` for the server side: `pipe` or `tcp`.
    pub fn set_transport(&self, transport: &'static str) {
        let _ = self.transport.set(transport);
    }

    /// `network.transport` of the client side (`""` before serving: the commands).
    pub fn transport(&self) -> &'static str {
        self.transport.get().copied().unwrap_or("")
    }

    /// One request in flight until the guard is dropped.
    pub fn in_flight(&'static self) -> InFlight {
        self.in_flight.fetch_add(1, Ordering::Relaxed);
        InFlight(&self.in_flight)
    }

    fn tool_label(&self, tool: Option<&str>) -> Arc<str> {
        match tool {
            Some(tool) => self.tools.label(tool),
            None => self.empty.clone(),
        }
    }

    /// One client request answered (`mcp.server.operation.duration`).
    pub fn server_operation(
        &self,
        method: &'static str,
        tool: Option<&str>,
        outcome: Outcome,
        version: &'static str,
        elapsed: Duration,
    ) {
        self.server_operations.observe(
            (method, tool, outcome, version),
            || Key {
                method,
                tool: self.tool_label(tool),
                outcome,
                extra: self.extras.label(version),
            },
            elapsed,
        );
    }

    /// One request to a downstream server answered (`mcp.client.operation.duration`).
    pub fn client_operation(
        &self,
        method: &'static str,
        tool: Option<&str>,
        server: &str,
        outcome: Outcome,
        elapsed: Duration,
    ) {
        self.client_operations.observe(
            (method, tool, outcome, server),
            || Key {
                method,
                tool: self.tool_label(tool),
                outcome,
                extra: self.extras.label(server),
            },
            elapsed,
        );
    }

    /// Everything, in the format asked for; `elsewhere` writes the numbers kept elsewhere.
    pub fn render(&self, openmetrics: bool, elsewhere: impl FnOnce(&mut Exposition)) -> String {
        let mut out = Exposition {
            text: String::with_capacity(8192),
            openmetrics,
        };
        let transport = self.transport();
        out.histograms(
            "mcp_server_operation_duration_seconds",
            "Duration of the MCP requests the proxy answered, from receipt to answer.",
            &self.server_operations,
            (
                "mcp_protocol_version",
                Some(("network_transport", transport)),
            ),
        );
        out.histograms(
            "mcp_client_operation_duration_seconds",
            "Duration of the MCP requests the proxy sent to downstream servers.",
            &self.client_operations,
            ("server", None),
        );
        out.counter(
            "pluggedin_proxy_sessions_opened",
            "Client sessions opened.",
            &[],
            self.sessions_opened.load(Ordering::Relaxed),
        );
        out.counter(
            "pluggedin_proxy_sessions_closed",
            "Client sessions closed (deleted, expired or evicted).",
            &[],
            self.sessions_closed.load(Ordering::Relaxed),
        );
        out.counter(
            "pluggedin_proxy_sessions_adopted",
            "Client sessions taken over from a fleet replica that was gone.",
            &[],
            self.sessions_adopted.load(Ordering::Relaxed),
        );
        out.counter(
            "pluggedin_proxy_fleet_forwarded",
            "Requests passed to the fleet replica that holds their session.",
            &[],
            self.fleet_forwarded.load(Ordering::Relaxed),
        );
        out.counter(
            "pluggedin_proxy_store_errors",
            "Operations of the local store that its engine failed.",
            &[],
            self.store_errors.load(Ordering::Relaxed),
        );
        out.gauges(
            "pluggedin_proxy_requests_in_flight",
            "Client requests for a tool, prompt, resource or completion being answered.",
            [(vec![], self.in_flight.load(Ordering::Relaxed) as f64)],
        );
        elsewhere(&mut out);
        if openmetrics {
            out.text.push_str("# EOF\n");
        }
        out.text
    }
}

/// The text being written for one scrape.
pub struct Exposition {
    text: String,
    openmetrics: bool,
}

/// The content type of each format.
pub const TEXT_FORMAT: &str = "text/plain; version=0.0.4; charset=utf-8";
pub const OPENMETRICS_FORMAT: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Whether an `Accept` header asks for OpenMetrics.
pub fn wants_openmetrics(accept: &str) -> bool {
    accept.contains("application/openmetrics-text")
}

impl Exposition {
    fn header(&mut self, name: &str, kind: &str, help: &str) {
        let _ = writeln!(self.text, "# HELP {name} {help}");
        let _ = writeln!(self.text, "# TYPE {name} {kind}");
        if self.openmetrics
            && let Some(unit) = ["seconds", "bytes"].iter().find(|u| name.ends_with(*u))
        {
            let _ = writeln!(self.text, "# UNIT {name} {unit}");
        }
    }

    fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: impl std::fmt::Display) {
        self.text.push_str(name);
        let mut labels = labels.iter().filter(|(_, value)| !value.is_empty());
        if let Some(first) = labels.next() {
            self.text.push('{');
            for (index, (label, value)) in std::iter::once(first).chain(labels).enumerate() {
                if index > 0 {
                    self.text.push(',');
                }
                self.text.push_str(label);
                self.text.push_str("=\"");
                escape_into(&mut self.text, value);
                self.text.push('"');
            }
            self.text.push('}');
        }
        let _ = writeln!(self.text, " {value}");
    }

    /// A counter family with one sample (`name` without `_total`).
    pub fn counter(&mut self, name: &str, help: &str, labels: &[(&str, &str)], value: u64) {
        self.counters(name, help, [(labels.to_vec(), value)]);
    }

    /// A counter family with a sample per label set.
    pub fn counters<'a>(
        &mut self,
        name: &str,
        help: &str,
        samples: impl IntoIterator<Item = (Vec<(&'a str, &'a str)>, u64)>,
    ) {
        let total = format!("{name}_total");
        // OpenMetrics names the family without the suffix its samples carry; the text format
        // names it as its samples.
        let family = if self.openmetrics { name } else { &total };
        self.header(family, "counter", help);
        for (labels, value) in samples {
            self.sample(&total, &labels, value);
        }
    }

    /// A gauge family with a sample per label set.
    pub fn gauges<'a>(
        &mut self,
        name: &str,
        help: &str,
        samples: impl IntoIterator<Item = (Vec<(&'a str, &'a str)>, f64)>,
    ) {
        self.header(name, "gauge", help);
        for (labels, value) in samples {
            self.sample(name, &labels, value);
        }
    }

    fn histograms(
        &mut self,
        name: &str,
        help: &str,
        family: &Family,
        (extra, constant): (&str, Option<(&str, &str)>),
    ) {
        self.header(name, "histogram", help);
        let (bucket, sum, count) = (
            format!("{name}_bucket"),
            format!("{name}_sum"),
            format!("{name}_count"),
        );
        let mut code = itoa::Buffer::new();
        for (key, histogram) in family.snapshot() {
            let outcome = key.outcome.label(&mut code).to_owned();
            let mut labels = vec![
                ("mcp_method_name", key.method),
                ("gen_ai_tool_name", &*key.tool),
                ("error_type", &outcome),
                (extra, &*key.extra),
            ];
            if let Some(constant) = constant {
                labels.push(constant);
            }
            let mut cumulative = 0;
            for (index, counted) in histogram.buckets.iter().enumerate() {
                cumulative += counted.load(Ordering::Relaxed);
                let bound = BUCKETS
                    .get(index)
                    .map_or_else(|| "+Inf".to_owned(), ToString::to_string);
                let mut with_le = labels.clone();
                with_le.push(("le", &bound));
                self.sample(&bucket, &with_le, cumulative);
            }
            let seconds = histogram.sum_nanos.load(Ordering::Relaxed) as f64 / 1e9;
            self.sample(&sum, &labels, seconds);
            self.sample(&count, &labels, cumulative);
        }
    }
}

/// A label value, escaped as both formats want (`\\`, `\"`, `\n`).
fn escape_into(text: &mut String, value: &str) {
    for c in value.chars() {
        match c {
            '\\' => text.push_str("\\\\"),
            '"' => text.push_str("\\\""),
            '\n' => text.push_str("\\n"),
            c => text.push(c),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_histogram_counts_cumulatively_and_sums_in_seconds() {
        let metrics = global();
        metrics.server_operation(
            "tools/call",
            Some("demo__echo\"x"),
            Outcome::Code(-32602),
            "2025-11-25",
            Duration::from_millis(30),
        );
        let text = metrics.render(false, |_| {});
        let line = |needle: &str| {
            text.lines()
                .find(|line| line.contains("demo__echo") && line.contains(needle))
                .unwrap_or_else(|| panic!("no {needle} in {text}"))
                .to_owned()
        };
        assert!(line("le=\"0.02\"").ends_with(" 0"), "{text}");
        assert!(line("le=\"1\"").ends_with(" 1"), "{text}");
        assert!(line("le=\"0.05\"").ends_with(" 1"), "{text}");
        assert!(line("le=\"+Inf\"").ends_with(" 1"), "{text}");
        assert!(line("_sum").ends_with(" 0.03"), "{text}");
        assert!(line("_count").contains("error_type=\"-32602\""), "{text}");
        assert!(line("_count").contains("gen_ai_tool_name=\"demo__echo\\\"x\""));
        assert!(!text.contains("# EOF"));
        assert!(metrics.render(true, |_| {}).ends_with("# EOF\n"));
    }

    #[test]
    fn labels_stay_bounded() {
        assert_eq!(method_label("tools/call"), "tools/call");
        assert_eq!(method_label("x/anything"), OTHER);
        assert_eq!(version_label(Some("1999-01-01")), OTHER);
        let mut buffer = itoa::Buffer::new();
        assert_eq!(Outcome::Code(7).label(&mut buffer), "_OTHER");
        let tools = Labels::new(2);
        assert_eq!(&*tools.label("a"), "a");
        assert_eq!(&*tools.label("b"), "b");
        assert_eq!(&*tools.label("c"), OTHER);
        assert_eq!(&*tools.label("a"), "a");
    }
}
