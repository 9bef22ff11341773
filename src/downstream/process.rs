//! A server's process, however it is reached: the command it runs (no shell, a minimal
//! inherited environment) and the copy of its output into our log within a budget, with its last
//! lines kept to say why it exited. `connect` (stdio servers) and `started` (servers reached over
//! HTTP) spawn through these.

use std::collections::BTreeMap;
use std::sync::Arc;

use tokio::io::{AsyncBufReadExt, AsyncReadExt};

/// Environment variables a stdio server inherits from the proxy; the config's `env` goes on top.
/// Everything else (tokens, keys in the proxy's own environment) stays out.
const INHERITED_ENV: &[&str] = &[
    "PATH",
    "HOME",
    "USER",
    "LOGNAME",
    "SHELL",
    "TERM",
    "LANG",
    "LC_ALL",
    "LC_CTYPE",
    "TMPDIR",
    "TZ",
    "XDG_RUNTIME_DIR",
    "XDG_CONFIG_HOME",
    "XDG_DATA_HOME",
    "XDG_CACHE_HOME",
    "SYSTEMROOT",
    "APPDATA",
    "LOCALAPPDATA",
    "USERPROFILE",
    "NODE_EXTRA_CA_CERTS",
    "SSL_CERT_FILE",
];

/// A server's stderr lines longer than this are cut in our log.
const MAX_STDERR_LINE: usize = 4096;
/// A server's stderr lines logged in a burst (a crash's trace fits), then this many a second.
const STDERR_BURST: u32 = 200;
const STDERR_PER_SECOND: f64 = 20.0;

/// Which of a server's output streams a reader copies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Output {
    /// Logged at `info`: what a server says about itself.
    Stderr,
    /// A started server's stdout (a stdio server's is the protocol), logged at `debug`: servers
    /// print a line per request there.
    Stdout,
}

/// The last lines a server wrote on stderr, kept to say why it exited (redacted, bounded).
pub(super) type Tail = Arc<std::sync::Mutex<std::collections::VecDeque<String>>>;

/// Lines a [`Tail`] keeps.
const TAIL_LINES: usize = 5;
/// A [`Tail`] line's length at most, in characters.
const TAIL_LINE_CHARS: usize = 300;

/// Copies a server's stderr (or a started server's stdout) into our log within a budget (a
/// burst, then a few lines a second, with counts of what was not logged), and its last lines
/// into `tail`. Bytes, not text: a server's output is whatever it writes, and an overlong line is
/// never held whole.
pub(super) async fn log_output(
    output: impl tokio::io::AsyncRead + Unpin,
    stream: Output,
    tail: Option<Tail>,
) {
    let mut output = tokio::io::BufReader::new(output);
    let mut line = Vec::new();
    let mut budget = crate::telemetry::LogBudget::new(STDERR_BURST, STDERR_PER_SECOND);
    loop {
        line.clear();
        match (&mut output)
            .take(MAX_STDERR_LINE as u64)
            .read_until(b'\n', &mut line)
            .await
        {
            Ok(0) | Err(_) => break,
            Ok(_) => {}
        }
        if line.last() != Some(&b'\n') && line.len() == MAX_STDERR_LINE {
            skip_line(&mut output).await;
        }
        // A server may print its environment, a URL with credentials, a token: redacted as errors
        // are.
        let text = String::from_utf8_lossy(&line);
        if let Some(tail) = &tail
            && !text.trim().is_empty()
        {
            let mut tail = crate::sync::lock(tail);
            if tail.len() == TAIL_LINES {
                tail.pop_front();
            }
            tail.push_back(crate::security::text::redact_bounded(
                text.trim_end(),
                TAIL_LINE_CHARS,
            ));
        }
        let Some(suppressed) = budget.admit() else {
            continue;
        };
        let text = crate::security::text::redact_bounded(text.trim_end(), MAX_STDERR_LINE);
        let note = crate::telemetry::suppressed_note(suppressed);
        match stream {
            Output::Stderr => tracing::info!("stderr: {text}{note}"),
            Output::Stdout => tracing::debug!("stdout: {text}{note}"),
        }
    }
    let suppressed = budget.take_suppressed();
    if suppressed > 0 {
        match stream {
            Output::Stderr => tracing::info!("stderr: {suppressed} more lines not logged"),
            Output::Stdout => tracing::debug!("stdout: {suppressed} more lines not logged"),
        }
    }
}

/// Reads and drops the rest of a line.
async fn skip_line(reader: &mut (impl tokio::io::AsyncBufRead + Unpin)) {
    loop {
        let Ok(available) = reader.fill_buf().await else {
            return;
        };
        if available.is_empty() {
            return;
        }
        match available.iter().position(|byte| *byte == b'\n') {
            Some(at) => {
                reader.consume(at + 1);
                return;
            }
            None => {
                let len = available.len();
                reader.consume(len);
            }
        }
    }
}

/// A server's command: no shell, only [`INHERITED_ENV`] of the proxy's environment with the
/// server's `env` on top, in `cwd` when given. Its stdio and process group are the caller's.
pub(super) fn server_command(
    command: &str,
    args: &[String],
    env: &BTreeMap<String, String>,
    cwd: Option<&std::path::Path>,
) -> tokio::process::Command {
    let mut cmd = tokio::process::Command::new(command);
    cmd.args(args).env_clear();
    for key in INHERITED_ENV {
        if let Some(value) = std::env::var_os(key) {
            cmd.env(key, value);
        }
    }
    cmd.envs(env);
    if let Some(cwd) = cwd {
        cmd.current_dir(cwd);
    }
    cmd
}
