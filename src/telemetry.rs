//! Logging: `tracing` to stderr only, filtered by `RUST_LOG` or `--log-level`, as text or as JSON
//! lines (`--log-format`). In stdio mode stdout carries protocol messages and nothing else, so no
//! log line may ever reach it. Secrets stay out of both formats the same way: what is logged never
//! holds one (a server's output and errors are redacted before they are logged).

use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::FmtContext;
use tracing_subscriber::fmt::format::{self, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// One line of text per event.
    Human,
    /// One JSON object per line: `timestamp`, `level`, `target`, `fields` (with `message`),
    /// `span` (the innermost span's name and fields) and `spans` (all of them, outermost first),
    /// for a log pipeline to read.
    Json,
}

/// The format `init` installed.
static FORMAT: std::sync::OnceLock<LogFormat> = std::sync::OnceLock::new();

/// Whether log lines are JSON: then what the proxy writes on stderr for people (the start-up
/// line, a fatal error) goes out as a log event too, so that every line parses.
pub fn json() -> bool {
    FORMAT.get() == Some(&LogFormat::Json)
}

/// Installs the global subscriber. `RUST_LOG` wins over `--log-level`; without either, serving
/// logs at `info` and the commands for people (`tools`, `servers`, `docs`, …) at `warn`, so their
/// output is not buried under lifecycle lines.
pub fn init(log_level: Option<&str>, format: LogFormat, command: bool) {
    let filter = std::env::var("RUST_LOG")
        .ok()
        .filter(|value| !value.trim().is_empty())
        .or_else(|| log_level.map(str::to_owned))
        .unwrap_or_else(|| if command { "warn" } else { "info" }.to_owned());
    let filter =
        EnvFilter::try_new(with_rmcp_quieted(&filter)).unwrap_or_else(|_| EnvFilter::new("info"));
    let _ = FORMAT.set(format);
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(false);
    let _ = match format {
        LogFormat::Human => builder
            .event_format(WithTraceIds {
                inner: format::format().with_target(false).with_ansi(false),
                json: false,
            })
            .try_init(),
        LogFormat::Json => builder
            .fmt_fields(format::JsonFields::new())
            .event_format(WithTraceIds {
                inner: format::format()
                    .json()
                    .with_current_span(true)
                    .with_span_list(true),
                json: true,
            })
            .try_init(),
    };
}

/// An event format that adds the ids of the trace a line was written in (`traces::current`):
/// `trace_id` and `span_id` members of a JSON line, or `trace_id=… span_id=…` at the end of a
/// line of text. Read when a line is written, so a request costs nothing for it.
struct WithTraceIds<F> {
    inner: F,
    json: bool,
}

impl<S, N, F> FormatEvent<S, N> for WithTraceIds<F>
where
    S: tracing::Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
    F: FormatEvent<S, N>,
{
    fn format_event(
        &self,
        context: &FmtContext<'_, S, N>,
        mut writer: format::Writer<'_>,
        event: &tracing::Event<'_>,
    ) -> std::fmt::Result {
        let Some(trace) = crate::traces::current() else {
            return self.inner.format_event(context, writer, event);
        };
        let mut line = String::with_capacity(256);
        self.inner
            .format_event(context, format::Writer::new(&mut line), event)?;
        let (trace_id, span_id) = (trace.trace_id_hex(), trace.span_id_hex());
        let end = line.trim_end().len();
        let ids = if self.json && line[..end].ends_with('}') {
            format!(r#","trace_id":"{trace_id}","span_id":"{span_id}""#)
        } else {
            format!(" trace_id={trace_id} span_id={span_id}")
        };
        let at = if self.json { end - 1 } else { end };
        line.insert_str(at, &ids);
        writer.write_str(&line)
    }
}

/// rmcp logs every handshake and notification at info (that is our debug), and warns about every
/// error answer its service loop sends or receives — one line per outside input, with a `Debug`
/// dump of the error. The router answers and records those calls itself, so rmcp's service loop
/// speaks only of its own failures, unless the filter names rmcp. Its Streamable HTTP server
/// warns about what clients send too (an `initialize` whose version header and body differ, a
/// resumption of an unknown stream, a 33rd GET stream): each is answered to the client, so only
/// its errors are logged.
fn with_rmcp_quieted(filter: &str) -> String {
    if filter.contains("rmcp") {
        filter.to_owned()
    } else {
        format!(
            "{filter},rmcp=warn,rmcp::service=error,rmcp::transport::streamable_http_server=error"
        )
    }
}

/// An error and its sources, `: `-separated, without repeating a cause its parent already says.
pub fn error_chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

/// A budget for log lines that something outside the proxy causes (a server's stderr, its stray
/// output): a burst, then a steady rate. Lines over the budget are counted, not logged, and the
/// count goes out with the next line let through, so a flood costs a few lines a second however
/// fast it comes — never a line per input.
#[derive(Debug)]
pub struct LogBudget {
    burst: f64,
    per_second: f64,
    tokens: f64,
    refilled: std::time::Instant,
    suppressed: u64,
}

impl LogBudget {
    pub fn new(burst: u32, per_second: f64) -> LogBudget {
        LogBudget {
            burst: f64::from(burst),
            per_second,
            tokens: f64::from(burst),
            refilled: std::time::Instant::now(),
            suppressed: 0,
        }
    }

    /// Whether one more line may be logged now: `Some(n)`, with the number of lines suppressed
    /// since the last one let through (say so in the line), or `None` to drop this one.
    pub fn admit(&mut self) -> Option<u64> {
        let now = std::time::Instant::now();
        let earned = now.duration_since(self.refilled).as_secs_f64() * self.per_second;
        self.tokens = (self.tokens + earned).min(self.burst);
        self.refilled = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            Some(std::mem::take(&mut self.suppressed))
        } else {
            self.suppressed += 1;
            None
        }
    }

    /// When lines were suppressed and the budget has room again: their number, to report in a
    /// line of its own (the source went quiet, or sends good input now), and the count starts
    /// over.
    pub fn summary(&mut self) -> Option<u64> {
        if self.suppressed == 0 {
            return None;
        }
        let suppressed = self.suppressed;
        self.suppressed = 0;
        match self.admit() {
            Some(_) => Some(suppressed),
            None => {
                // `admit` counted the summary itself as one more suppressed line.
                self.suppressed = suppressed;
                None
            }
        }
    }

    /// The lines suppressed since the last one let through (for a last word when the source
    /// ends), and the count starts over.
    pub fn take_suppressed(&mut self) -> u64 {
        std::mem::take(&mut self.suppressed)
    }
}

/// ` (N similar lines not logged)` after a line that a [`LogBudget`] let through, or nothing.
pub fn suppressed_note(suppressed: u64) -> String {
    match suppressed {
        0 => String::new(),
        1 => " (1 similar line before this one not logged)".to_owned(),
        n => format!(" ({n} similar lines before this one not logged)"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rmcp_service_warnings_are_off_unless_the_filter_names_rmcp() {
        assert_eq!(
            with_rmcp_quieted("info"),
            "info,rmcp=warn,rmcp::service=error,rmcp::transport::streamable_http_server=error"
        );
        assert_eq!(with_rmcp_quieted("debug,rmcp=trace"), "debug,rmcp=trace");
    }

    #[test]
    fn a_budget_lets_a_burst_through_then_counts_what_it_drops() {
        let mut budget = LogBudget::new(3, 0.0);
        assert_eq!(budget.admit(), Some(0));
        assert_eq!(budget.admit(), Some(0));
        assert_eq!(budget.admit(), Some(0));
        for _ in 0..1000 {
            assert_eq!(budget.admit(), None);
        }
        assert_eq!(budget.take_suppressed(), 1000);
        assert_eq!(budget.take_suppressed(), 0);
        let mut refilling = LogBudget::new(1, 1e9);
        assert_eq!(refilling.admit(), Some(0));
        // With a huge rate the next line is earned at once.
        assert_eq!(refilling.admit(), Some(0));
    }
}
