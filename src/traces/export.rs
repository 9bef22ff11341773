//! The exporter: ended spans, encoded already, go into a bounded buffer (full: dropped and
//! counted, never waited for), and a task sends them in batches to the OTLP/HTTP endpoint — when
//! the delay passed or a batch is full, so a span costs a copy, not a task wake-up — and at
//! shutdown what is left within a bounded time. Which spans are kept is the sampler's call.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use hyper::body::Bytes;
use tokio::sync::{Notify, mpsc, oneshot};

use super::context::SpanContext;
use super::data::Value;
use super::proto;
use crate::sync::lock;

/// Spans waiting to be sent, at most (`OTEL_BSP_MAX_QUEUE_SIZE`'s default).
const QUEUE: usize = 2048;
/// The most bytes of spans waiting (a span is a few hundred).
const QUEUE_BYTES: usize = 4 << 20;
/// Spans per request, at most (`OTEL_BSP_MAX_EXPORT_BATCH_SIZE`'s default); a full batch wakes
/// the batch task before its delay has passed.
const BATCH: usize = 512;
/// How long one export may take.
const EXPORT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long shutdown waits for the last batch.
const SHUTDOWN_WAIT: Duration = Duration::from_secs(3);

/// Which new spans are recorded (`OTEL_TRACES_SAMPLER`).
#[derive(Clone, Debug, PartialEq)]
pub enum Sampler {
    AlwaysOn,
    AlwaysOff,
    /// A share of traces, chosen by trace id (so every process keeps the same ones).
    Ratio(f64),
    /// A span with a parent does as the parent did; a root as the inner sampler says.
    ParentBased(Box<Sampler>),
}

impl Sampler {
    /// From `OTEL_TRACES_SAMPLER` and `OTEL_TRACES_SAMPLER_ARG`; the default is
    /// `parentbased_always_on`.
    pub fn from_env(name: Option<&str>, argument: Option<&str>) -> Result<Sampler, String> {
        let ratio = || {
            let ratio = argument.map_or(Ok(1.0), |text| text.trim().parse::<f64>());
            match ratio {
                Ok(ratio) if (0.0..=1.0).contains(&ratio) => Ok(Sampler::Ratio(ratio)),
                _ => Err(format!(
                    "OTEL_TRACES_SAMPLER_ARG must be a number from 0 to 1, not {argument:?}"
                )),
            }
        };
        let parent_based = |inner: Sampler| Sampler::ParentBased(Box::new(inner));
        Ok(
            match name.map(str::trim).unwrap_or("parentbased_always_on") {
                "always_on" => Sampler::AlwaysOn,
                "always_off" => Sampler::AlwaysOff,
                "traceidratio" => ratio()?,
                "parentbased_always_on" | "" => parent_based(Sampler::AlwaysOn),
                "parentbased_always_off" => parent_based(Sampler::AlwaysOff),
                "parentbased_traceidratio" => parent_based(ratio()?),
                other => {
                    return Err(format!(
                        "OTEL_TRACES_SAMPLER {other:?} is not one of always_on, always_off, \
                     traceidratio, parentbased_always_on, parentbased_always_off, \
                     parentbased_traceidratio"
                    ));
                }
            },
        )
    }

    pub(super) fn sample(&self, parent: Option<&SpanContext>, trace_id: &[u8; 16]) -> bool {
        match self {
            Sampler::AlwaysOn => true,
            Sampler::AlwaysOff => false,
            Sampler::Ratio(ratio) => {
                let low = u64::from_be_bytes(trace_id[8..].try_into().expect("8 bytes"));
                (low as f64) < ratio * (u64::MAX as f64)
            }
            Sampler::ParentBased(root) => match parent {
                Some(parent) => parent.sampled,
                None => root.sample(None, trace_id),
            },
        }
    }
}

/// What the exporter was configured with.
struct Settings {
    endpoint: String,
    /// The endpoint read once, not per export.
    url: reqwest::Url,
    /// Checked at start, so that a bad one is an error that names it, not a failed export.
    headers: reqwest::header::HeaderMap,
    delay: Duration,
}

pub(super) struct Exporter {
    pub(super) sampler: Sampler,
    /// The start of every export request, the resource's attributes in it
    /// ([`proto::export_head`]).
    head: Box<[u8]>,
    /// Ended spans not sent yet, at most [`QUEUE`].
    buffer: Mutex<Waiting>,
    /// A batch is full.
    full: Notify,
    flush: mpsc::Sender<oneshot::Sender<()>>,
    dropped: AtomicU64,
}

/// Ended spans in export requests of at most [`BATCH`] spans, one after the other: each request
/// the exporter's head, then its spans, each an encoded `ScopeSpans.spans` field.
#[derive(Default)]
struct Waiting {
    bytes: Vec<u8>,
    spans: usize,
    /// Where each request starts in `bytes`.
    batch_starts: Vec<usize>,
}

impl Waiting {
    /// The export requests, their lengths filled in, each with its number of spans: slices of
    /// one buffer, not copies; and the whole buffer, to take back once they are sent.
    fn requests(mut self, head_len: usize) -> (Bytes, Vec<(Bytes, usize)>) {
        let mut ends: Vec<usize> = self.batch_starts.iter().skip(1).copied().collect();
        ends.push(self.bytes.len());
        for (&start, &end) in self.batch_starts.iter().zip(&ends) {
            proto::finish_export(&mut self.bytes[start..end], head_len);
        }
        let bytes = Bytes::from(self.bytes);
        let mut left = self.spans;
        let requests = self
            .batch_starts
            .iter()
            .zip(&ends)
            .map(|(&start, &end)| {
                let count = left.min(BATCH);
                left -= count;
                (bytes.slice(start..end), count)
            })
            .collect();
        (bytes, requests)
    }
}

/// The monotonic clock's reading the wall clock is reckoned from ([`anchor_clock`]).
static BASE: OnceLock<Instant> = OnceLock::new();
/// The wall clock (Unix nanoseconds) less the monotonic clock's nanoseconds since [`BASE`].
static WALL_OFFSET: AtomicU64 = AtomicU64::new(0);

/// Ties the wall clock to the monotonic one, so that a span's start can be worked out from the
/// `Instant` its owner read to time the work for its metrics: one clock read for both. The
/// exporter ties them again before each batch, so that an adjusted wall clock (NTP) reaches the
/// spans within a batch's delay.
pub(super) fn anchor_clock() {
    let base = *BASE.get_or_init(Instant::now);
    let since = nanos(Instant::now().saturating_duration_since(base));
    WALL_OFFSET.store(wall_now().wrapping_sub(since), Ordering::Relaxed);
}

/// The wall clock's time at `at`, in Unix nanoseconds.
pub(super) fn wall_at(at: Instant) -> u64 {
    match BASE.get() {
        Some(base) => WALL_OFFSET
            .load(Ordering::Relaxed)
            .wrapping_add(nanos(at.saturating_duration_since(*base))),
        None => wall_now(),
    }
}

/// The wall clock now, in Unix nanoseconds.
fn wall_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, nanos)
}

fn nanos(duration: Duration) -> u64 {
    u64::try_from(duration.as_nanos()).unwrap_or(u64::MAX)
}

static EXPORTER: OnceLock<Exporter> = OnceLock::new();

pub(super) fn exporter() -> Option<&'static Exporter> {
    EXPORTER.get()
}

/// Whether spans are being made.
pub fn enabled() -> bool {
    EXPORTER.get().is_some()
}

/// Spans the full queue dropped.
pub fn dropped() -> u64 {
    EXPORTER
        .get()
        .map_or(0, |exporter| exporter.dropped.load(Ordering::Relaxed))
}

/// Queues an ended span, `fields` its encoded `Span` fields.
pub(super) fn submit(fields: &[u8]) {
    if let Some(exporter) = EXPORTER.get() {
        queue(exporter, fields);
    }
}

fn queue(exporter: &Exporter, fields: &[u8]) {
    let mut waiting = lock(&exporter.buffer);
    if waiting.spans >= QUEUE || waiting.bytes.len() + fields.len() > QUEUE_BYTES {
        exporter.dropped.fetch_add(1, Ordering::Relaxed);
        return;
    }
    if waiting.spans.is_multiple_of(BATCH) {
        let start = waiting.bytes.len();
        waiting.batch_starts.push(start);
        waiting.bytes.extend_from_slice(&exporter.head);
    }
    proto::tag(&mut waiting.bytes, 2, proto::LEN);
    proto::varint(&mut waiting.bytes, fields.len() as u64);
    waiting.bytes.extend_from_slice(fields);
    waiting.spans += 1;
    if waiting.spans.is_multiple_of(BATCH) {
        exporter.full.notify_one();
    }
}

/// Starts the exporter when the environment names an endpoint (and does not turn the SDK or the
/// trace exporter off); says where spans go. Needs a Tokio runtime.
pub fn init_from_env() -> Result<Option<String>, String> {
    let var = |name: &str| {
        std::env::var(name)
            .ok()
            .filter(|value| !value.trim().is_empty())
    };
    if var("OTEL_SDK_DISABLED").is_some_and(|value| value.trim().eq_ignore_ascii_case("true"))
        || var("OTEL_TRACES_EXPORTER").is_some_and(|value| value.trim() == "none")
    {
        return Ok(None);
    }
    let endpoint = match (
        var("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"),
        var("OTEL_EXPORTER_OTLP_ENDPOINT"),
    ) {
        (Some(traces), _) => traces.trim().to_owned(),
        (None, Some(base)) => format!("{}/v1/traces", base.trim().trim_end_matches('/')),
        (None, None) => return Ok(None),
    };
    let url = url::Url::parse(&endpoint)
        .map_err(|error| format!("the OTLP endpoint {endpoint:?} is not a URL: {error}"))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(format!("the OTLP endpoint {endpoint:?} is not http(s)"));
    }
    let protocol = var("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL").or(var("OTEL_EXPORTER_OTLP_PROTOCOL"));
    if let Some(protocol) = protocol.filter(|protocol| protocol.trim() != "http/protobuf") {
        return Err(format!(
            "OTLP protocol {protocol:?} is not spoken here: only http/protobuf"
        ));
    }
    let sampler = Sampler::from_env(
        var("OTEL_TRACES_SAMPLER").as_deref(),
        var("OTEL_TRACES_SAMPLER_ARG").as_deref(),
    )?;
    let headers = headers(
        var("OTEL_EXPORTER_OTLP_TRACES_HEADERS")
            .or(var("OTEL_EXPORTER_OTLP_HEADERS"))
            .map(|text| parse_pairs(&text))
            .unwrap_or_default(),
    )?;
    let service = var("OTEL_SERVICE_NAME").unwrap_or_else(|| env!("CARGO_PKG_NAME").to_owned());
    let mut resource = Vec::with_capacity(256);
    let mut attribute = |key: &str, value: &str| {
        proto::key_value(&mut resource, 1, key, Value::Str(value));
    };
    attribute("service.name", &service);
    attribute("service.version", env!("CARGO_PKG_VERSION"));
    attribute("telemetry.sdk.name", env!("CARGO_PKG_NAME"));
    attribute("telemetry.sdk.language", "rust");
    // Known keys only.
    for (key, value) in var("OTEL_RESOURCE_ATTRIBUTES")
        .map(|text| parse_pairs(&text))
        .unwrap_or_default()
    {
        let known = [
            "deployment.environment.name",
            "deployment.environment",
            "service.namespace",
            "service.instance.id",
            "host.name",
        ];
        if known.contains(&key.as_str()) {
            attribute(&key, &value);
        }
    }
    let delay = var("OTEL_BSP_SCHEDULE_DELAY")
        .and_then(|ms| ms.trim().parse::<u64>().ok())
        .map_or(Duration::from_secs(5), Duration::from_millis);
    // reqwest is built without a default TLS provider (an https endpoint needs one).
    let _ = rustls::crypto::ring::default_provider().install_default();
    let (flush, flushes) = mpsc::channel(1);
    let settings = Settings {
        endpoint: endpoint.clone(),
        url,
        headers,
        delay,
    };
    let exporter = Exporter {
        sampler,
        head: proto::export_head(&resource).into_boxed_slice(),
        buffer: Mutex::default(),
        full: Notify::new(),
        flush,
        dropped: AtomicU64::new(0),
    };
    anchor_clock();
    if EXPORTER.set(exporter).is_err() {
        return Ok(Some(endpoint));
    }
    let exporter = EXPORTER.get().expect("set just now");
    tokio::spawn(run(settings, exporter, flushes));
    Ok(Some(endpoint))
}

/// The exporter's extra headers, each checked: the error names a bad one, never its value (it may
/// be a key).
fn headers(pairs: Vec<(String, String)>) -> Result<reqwest::header::HeaderMap, String> {
    use reqwest::header::{HeaderName, HeaderValue};
    let mut headers = reqwest::header::HeaderMap::new();
    for (key, value) in pairs {
        let name = HeaderName::from_bytes(key.as_bytes()).map_err(|_| {
            format!("OTEL_EXPORTER_OTLP_HEADERS: {key:?} is not an HTTP header name")
        })?;
        let mut value = HeaderValue::from_str(&value).map_err(|_| {
            format!("OTEL_EXPORTER_OTLP_HEADERS: the value of {key:?} is not a valid header value")
        })?;
        value.set_sensitive(true);
        headers.insert(name, value);
    }
    Ok(headers)
}

/// `key=value,key=value`, values percent-decoded (the W3C Baggage format the variables use).
fn parse_pairs(text: &str) -> Vec<(String, String)> {
    text.split(',')
        .filter_map(|pair| {
            let (key, value) = pair.split_once('=')?;
            let value = url::form_urlencoded::parse(format!("v={}", value.trim()).as_bytes())
                .next()
                .map(|(_, value)| value.into_owned())?;
            Some((key.trim().to_owned(), value))
        })
        .filter(|(key, _)| !key.is_empty())
        .collect()
}

/// Sends what is left, waiting at most a few seconds.
pub async fn shutdown() {
    let Some(exporter) = EXPORTER.get() else {
        return;
    };
    let (done, sent) = oneshot::channel();
    if exporter.flush.send(done).await.is_ok() {
        let _ = tokio::time::timeout(SHUTDOWN_WAIT, sent).await;
    }
}

/// The batch task: sends what is buffered when the delay has passed, when a batch is full, and
/// when asked to flush.
async fn run(
    settings: Settings,
    exporter: &'static Exporter,
    mut flushes: mpsc::Receiver<oneshot::Sender<()>>,
) {
    let client = match reqwest::Client::builder().timeout(EXPORT_TIMEOUT).build() {
        Ok(client) => client,
        Err(error) => {
            tracing::warn!("traces are not exported: no HTTP client ({error})");
            return;
        }
    };
    let mut failures = 0u64;
    // The buffer the last batch went out from, taken back once its requests let go of it: the
    // next batch's room, so that a batch costs no large allocation and free (each of which also
    // has the allocator gather its small free chunks).
    let mut spare: Option<Vec<u8>> = None;
    loop {
        let flushed = tokio::select! {
            () = tokio::time::sleep(settings.delay) => None,
            () = exporter.full.notified() => None,
            done = flushes.recv() => done,
        };
        anchor_clock();
        // The next batch's room, made before the lock is taken: as much as this one took and a
        // quarter more, so that a busier next batch need not grow it; the last one's buffer
        // unless a burst left it far larger than that.
        let last = lock(&exporter.buffer).bytes.len();
        let want = (last + last / 4).max(4096);
        let bytes = match spare.take() {
            Some(mut bytes) if bytes.capacity() <= want * 4 => {
                bytes.reserve(want);
                bytes
            }
            _ => Vec::with_capacity(want),
        };
        let room = Waiting {
            bytes,
            ..Waiting::default()
        };
        let waiting = std::mem::replace(&mut *lock(&exporter.buffer), room);
        let (whole, requests) = waiting.requests(exporter.head.len());
        for request in requests {
            send(&client, &settings, request, &mut failures).await;
        }
        spare = whole.try_into_mut().ok().map(|mut bytes| {
            bytes.clear();
            Vec::from(bytes)
        });
        if let Some(done) = flushed {
            let _ = done.send(());
        }
    }
}

async fn send(
    client: &reqwest::Client,
    settings: &Settings,
    (body, count): (Bytes, usize),
    failures: &mut u64,
) {
    let mut request = client
        .post(settings.url.clone())
        .header("content-type", "application/x-protobuf")
        .body(body);
    request = request.headers(settings.headers.clone());
    let failure = match request.send().await {
        Ok(response) if response.status().is_success() => None,
        Ok(response) => Some(format!("the collector answered {}", response.status())),
        // The error's text names the endpoint, never the headers (they may hold a key).
        Err(error) => Some(format!("{error}")),
    };
    match failure {
        None => *failures = 0,
        Some(why) => {
            *failures += 1;
            // The first failure of a run is a warning; the rest would be one per batch.
            if *failures == 1 {
                tracing::warn!(
                    endpoint = settings.endpoint,
                    spans = count,
                    "traces could not be exported: {why}"
                );
            } else {
                tracing::debug!(spans = count, "traces could not be exported: {why}");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn samplers_read_the_standard_names() {
        assert_eq!(
            Sampler::from_env(None, None).unwrap(),
            Sampler::ParentBased(Box::new(Sampler::AlwaysOn))
        );
        assert_eq!(
            Sampler::from_env(Some("traceidratio"), Some("0.25")).unwrap(),
            Sampler::Ratio(0.25)
        );
        assert!(Sampler::from_env(Some("traceidratio"), Some("2")).is_err());
        assert!(Sampler::from_env(Some("sometimes"), None).is_err());
        let parent = SpanContext::parse(
            "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-00",
            None,
        )
        .unwrap();
        let sampler = Sampler::from_env(None, None).unwrap();
        assert!(!sampler.sample(Some(&parent), &parent.trace_id));
        assert!(sampler.sample(None, &parent.trace_id));
        assert!(!Sampler::Ratio(0.0).sample(None, &[0xff; 16]));
        assert!(Sampler::Ratio(1.0).sample(None, &[0xfe; 16]));
    }

    #[test]
    fn a_bad_header_is_named_and_its_value_kept_out() {
        let error = headers(vec![("bad name".into(), "secret-1".into())]).unwrap_err();
        assert!(
            error.contains("\"bad name\" is not an HTTP header name"),
            "{error}"
        );
        let error = headers(vec![("api-key".into(), "sec\nret-2".into())]).unwrap_err();
        assert!(error.contains("the value of \"api-key\""), "{error}");
        assert!(!error.contains("ret-2"), "{error}");
        assert_eq!(
            headers(vec![("api-key".into(), "k".into())]).unwrap().len(),
            1
        );
    }

    #[test]
    fn waiting_spans_go_out_in_requests_of_at_most_batch() {
        let head = proto::export_head(&[]);
        let span = [0x2a, 1, b'x'];
        let exporter = Exporter {
            sampler: Sampler::AlwaysOn,
            head: head.clone().into_boxed_slice(),
            buffer: Mutex::default(),
            full: Notify::new(),
            flush: mpsc::channel(1).0,
            dropped: AtomicU64::new(0),
        };
        let take = || {
            std::mem::take(&mut *lock(&exporter.buffer))
                .requests(head.len())
                .1
        };
        assert!(take().is_empty());
        // A span as a request carries it: field 2, its length, its bytes.
        let each = 2 + span.len();
        for spans in [BATCH * 2 + 3, BATCH * 2] {
            for _ in 0..spans {
                queue(&exporter, &span);
            }
            let requests: Vec<_> = take()
                .into_iter()
                .map(|(bytes, n)| (bytes.len() - head.len(), n))
                .collect();
            let mut expected = vec![(BATCH * each, BATCH), (BATCH * each, BATCH)];
            if spans % BATCH != 0 {
                expected.push((3 * each, 3));
            }
            assert_eq!(requests, expected);
        }
    }

    #[test]
    fn header_pairs_are_percent_decoded() {
        assert_eq!(
            parse_pairs("api-key=a%20b, x = y ,broken"),
            [
                ("api-key".to_owned(), "a b".to_owned()),
                ("x".to_owned(), "y".to_owned())
            ]
        );
    }
}
