//! Connections to the database: the URL read (`sslmode`, `sslrootcert`), a description of it that
//! never holds the password, and a small pool. A connection is made when a call finds none idle,
//! with a connect timeout and the server's `statement_timeout` set for its session; one that the
//! server or the network closed is dropped and the next call makes a fresh one, so the store
//! recovers by itself once the database is back. Failing to reach the database is `store
//! unavailable: …`.

use std::str::FromStr;
use std::sync::Mutex;
use std::time::Duration;

use futures::StreamExt;
use futures::stream::BoxStream;
use tokio::sync::{Semaphore, SemaphorePermit};
use tokio_postgres::config::{Host, SslMode};
use tokio_postgres::{AsyncMessage, Client, Config, NoTls};

use super::tls::Tls;
use crate::control::{ControlError, Result};

/// How long making a connection may take. A database on the same host or network answers in
/// milliseconds; past this it is down or unreachable, and the call says so.
pub(super) const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// The server's bound on one statement (`statement_timeout`): as long as SQLite's busy timeout,
/// far above the longest write (indexing a 10 MB document), so hitting it means something is
/// stuck.
const STATEMENT_TIMEOUT: Duration = Duration::from_secs(30);
/// The bound on a whole call on our side, for a server that stopped answering without closing
/// the connection (a network partition), which `statement_timeout` cannot see.
pub(super) const CALL_TIMEOUT: Duration = Duration::from_secs(45);
/// Connections open at once. Calls are short and a proxy makes few at a time (the recorder's
/// batches, built-in tools, the settings poll); a few connections keep one slow search from
/// holding up the rest without taking many of the server's `max_connections`.
const POOL_SIZE: usize = 4;

/// What a connection's server sends outside answers to calls, until the connection ends (then
/// `None`, or an error for a failure).
pub(super) type Messages =
    BoxStream<'static, std::result::Result<AsyncMessage, tokio_postgres::Error>>;

/// The database's URL, read: its connection settings, TLS when asked for, and how to name it in
/// logs and errors.
pub(super) struct Target {
    pub(super) config: Config,
    pub(super) tls: Option<Tls>,
    /// `postgres://user@host:port/dbname`: never the password.
    pub(super) shown: String,
}

impl Target {
    /// Reads `postgres://user:password@host:port/dbname?…` (or `postgresql://`). `sslmode`
    /// `disable`, `allow` and `prefer` (and none) connect without TLS; `require`, `verify-ca` and
    /// `verify-full` all require TLS and verify the server's certificate and name, against
    /// `sslrootcert` (a PEM file) when given, else the platform's roots.
    pub(super) fn parse(url: &str) -> Result<Target> {
        let scheme = url.split_once("://").map(|(scheme, _)| scheme);
        if !matches!(scheme, Some("postgres" | "postgresql")) {
            return Err(ControlError::Invalid(
                "--database-url: expected postgres://user:password@host:port/dbname (or \
                 postgresql://…)"
                    .into(),
            ));
        }
        // `sslmode` and `sslrootcert` are taken out before tokio-postgres reads the rest: it
        // knows fewer modes than libpq, and no root file.
        let (base, query) = url.split_once('?').unwrap_or((url, ""));
        let (mut ssl_mode, mut root_file) = (None, None);
        let mut rest = url::form_urlencoded::Serializer::new(String::new());
        for (key, value) in url::form_urlencoded::parse(query.as_bytes()) {
            match &*key {
                "sslmode" => ssl_mode = Some(value.into_owned()),
                "sslrootcert" => root_file = Some(std::path::PathBuf::from(&*value)),
                _ => {
                    rest.append_pair(&key, &value);
                }
            }
        }
        let rest = rest.finish();
        let url = if rest.is_empty() {
            base.to_owned()
        } else {
            format!("{base}?{rest}")
        };
        let mut config = Config::from_str(&url).map_err(|error| {
            ControlError::Invalid(format!("--database-url: {}", describe(&error)))
        })?;
        let shown = show(&config);
        let tls = match ssl_mode.as_deref() {
            None | Some("disable" | "allow" | "prefer") => {
                config.ssl_mode(SslMode::Disable);
                None
            }
            Some("require" | "verify-ca" | "verify-full") => {
                config.ssl_mode(SslMode::Require);
                let tls = Tls::new(root_file.as_deref()).map_err(|message| ControlError::Open {
                    path: shown.clone(),
                    message,
                })?;
                Some(tls)
            }
            Some(other) => {
                return Err(ControlError::Invalid(format!(
                    "--database-url: sslmode={other} is not a PostgreSQL sslmode (disable, allow, \
                     prefer, require, verify-ca or verify-full)"
                )));
            }
        };
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(CONNECT_TIMEOUT);
        }
        if config.get_application_name().is_none() {
            config.application_name("pluggedin-mcp-proxy");
        }
        let timeout = format!("-c statement_timeout={}", STATEMENT_TIMEOUT.as_millis());
        let options = match config.get_options() {
            Some(given) => format!("{given} {timeout}"),
            None => timeout,
        };
        config.options(options);
        Ok(Target { config, tls, shown })
    }
}

/// `postgres://user@host:port/dbname` from the settings, without the password; a Unix socket's
/// directory as `?host=/path`, as libpq writes it.
fn show(config: &Config) -> String {
    let ports = config.get_ports();
    let mut tcp = Vec::new();
    let mut sockets = Vec::new();
    for (index, host) in config.get_hosts().iter().enumerate() {
        let port = ports.get(index).or(ports.first());
        match host {
            Host::Tcp(name) => tcp.push(match port {
                Some(port) => format!("{name}:{port}"),
                None => name.clone(),
            }),
            #[cfg(unix)]
            Host::Unix(path) => sockets.push(format!("host={}", path.display())),
        }
    }
    let user = config
        .get_user()
        .map(|user| format!("{user}@"))
        .unwrap_or_default();
    let query = if sockets.is_empty() {
        String::new()
    } else {
        format!("?{}", sockets.join("&"))
    };
    format!(
        "postgres://{user}{}/{}{query}",
        tcp.join(","),
        config.get_dbname().unwrap_or_default()
    )
}

/// The client's error as one line: the server's own message for a database error, else what
/// went wrong with its cause (tokio-postgres keeps the cause apart from its message).
pub(super) fn describe(error: &tokio_postgres::Error) -> String {
    if let Some(database) = error.as_db_error() {
        return format!("{}: {}", database.severity(), database.message());
    }
    match std::error::Error::source(error) {
        Some(cause) => format!("{error}: {cause}"),
        None => error.to_string(),
    }
}

/// The error a call answers with when the database cannot be reached.
pub(super) fn unavailable(why: impl std::fmt::Display) -> ControlError {
    ControlError::Store(format!("store unavailable: {why}"))
}

impl From<tokio_postgres::Error> for ControlError {
    fn from(error: tokio_postgres::Error) -> ControlError {
        use tokio_postgres::error::SqlState;
        let text = describe(&error);
        let gone = match error.code() {
            // The server is shutting down, starting up, or ended this session.
            Some(code) => [
                SqlState::ADMIN_SHUTDOWN,
                SqlState::CRASH_SHUTDOWN,
                SqlState::CANNOT_CONNECT_NOW,
            ]
            .contains(code),
            // No answer from the server: the socket failed or closed.
            None => {
                error.is_closed()
                    || ["error communicating", "error connecting", "timeout waiting"]
                        .iter()
                        .any(|start| text.starts_with(start))
            }
        };
        if gone {
            unavailable(text)
        } else {
            ControlError::Store(text)
        }
    }
}

/// Up to [`POOL_SIZE`] connections, kept open between calls.
pub(super) struct Pool {
    config: Config,
    tls: Option<Tls>,
    idle: Mutex<Vec<Client>>,
    slots: Semaphore,
}

/// A connection taken from the pool. It goes back when dropped after [`Pooled::finished`], unless
/// it closed; one dropped in the middle of a call (its call timed out or was cancelled) is closed
/// instead, since a statement may still be running on it.
pub(super) struct Pooled<'a> {
    client: Option<Client>,
    finished: bool,
    pool: &'a Pool,
    _slot: SemaphorePermit<'a>,
}

impl Pool {
    pub(super) fn new(config: Config, tls: Option<Tls>) -> Pool {
        Pool {
            config,
            tls,
            idle: Mutex::new(Vec::new()),
            slots: Semaphore::new(POOL_SIZE),
        }
    }

    /// An open connection: an idle one, else a new one.
    pub(super) async fn get(&self) -> Result<Pooled<'_>> {
        let slot = self
            .slots
            .acquire()
            .await
            .expect("the pool's semaphore is never closed");
        let idle = loop {
            let Some(client) = crate::sync::lock(&self.idle).pop() else {
                break None;
            };
            if !client.is_closed() {
                break Some(client);
            }
        };
        let client = match idle {
            Some(client) => client,
            None => self.connect().await?,
        };
        Ok(Pooled {
            client: Some(client),
            finished: false,
            pool: self,
            _slot: slot,
        })
    }

    async fn connect(&self) -> Result<Client> {
        let (client, mut messages) = dial(&self.config, self.tls.as_ref()).await?;
        // The connection's I/O runs on its own task, which ends when the client is dropped (by
        // the pool, or when it sees the connection closed) or the server goes away.
        tokio::spawn(async move {
            while let Some(message) = messages.next().await {
                if let Err(error) = message {
                    tracing::debug!("a connection to the PostgreSQL store ended: {error}");
                    break;
                }
            }
        });
        Ok(client)
    }

    /// The connection settings and TLS, for a connection of its own outside the pool.
    pub(super) fn target(&self) -> (Config, Option<Tls>) {
        (self.config.clone(), self.tls.clone())
    }
}

/// Opens a connection: its client, and what the server sends on its own (notices,
/// notifications), which must be polled for the connection's I/O to run at all.
pub(super) async fn dial(config: &Config, tls: Option<&Tls>) -> Result<(Client, Messages)> {
    let timed_out = |_| unavailable(format!("no connection within {CONNECT_TIMEOUT:?}"));
    // Down, unreachable, or refusing us (a login, a database that is gone or closed to
    // connections): unavailable either way, and the next call tries again.
    let refused = |error: tokio_postgres::Error| unavailable(describe(&error));
    let opened = match tls {
        None => {
            let connecting = config.connect(NoTls);
            let (client, mut connection) = tokio::time::timeout(CONNECT_TIMEOUT, connecting)
                .await
                .map_err(timed_out)?
                .map_err(refused)?;
            let messages = futures::stream::poll_fn(move |cx| connection.poll_message(cx));
            (client, messages.boxed())
        }
        Some(tls) => {
            let connecting = config.connect(tls.clone());
            let (client, mut connection) = tokio::time::timeout(CONNECT_TIMEOUT, connecting)
                .await
                .map_err(timed_out)?
                .map_err(refused)?;
            let messages = futures::stream::poll_fn(move |cx| connection.poll_message(cx));
            (client, messages.boxed())
        }
    };
    Ok(opened)
}

impl Pooled<'_> {
    /// The call is over (whatever its outcome): the connection may serve another.
    pub(super) fn finished(&mut self) {
        self.finished = true;
    }
}

impl std::ops::Deref for Pooled<'_> {
    type Target = Client;
    fn deref(&self) -> &Client {
        self.client.as_ref().expect("present until dropped")
    }
}

impl std::ops::DerefMut for Pooled<'_> {
    fn deref_mut(&mut self) -> &mut Client {
        self.client.as_mut().expect("present until dropped")
    }
}

impl Drop for Pooled<'_> {
    fn drop(&mut self) {
        // A transaction dropped unfinished has already queued its rollback on the connection.
        if let Some(client) = self.client.take()
            && self.finished
            && !client.is_closed()
        {
            crate::sync::lock(&self.pool.idle).push(client);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shown_url_never_has_the_password() {
        let target =
            Target::parse("postgres://proxy:s3cret@db.example:5433/plugged?sslmode=disable")
                .unwrap();
        assert_eq!(target.shown, "postgres://proxy@db.example:5433/plugged");
        let socket = Target::parse("postgresql://proxy:s3cret@/plugged?host=/run/pg").unwrap();
        assert_eq!(socket.shown, "postgres://proxy@/plugged?host=/run/pg");
    }

    #[test]
    fn tls_modes_and_other_urls_are_read_or_refused_with_what_to_do() {
        let disabled = Target::parse("postgres://u:s3cret@db/x?sslmode=disable").unwrap();
        assert!(disabled.tls.is_none());
        let verified = Target::parse("postgres://u:s3cret@db/x?sslmode=verify-full").unwrap();
        assert!(verified.tls.is_some());
        assert_eq!(verified.config.get_ssl_mode(), SslMode::Require);
        let error = |url: &str| Target::parse(url).err().unwrap().to_string();
        let missing = error("postgres://u:s3cret@db/x?sslmode=require&sslrootcert=/nonexistent");
        assert!(missing.contains("sslrootcert=/nonexistent"), "{missing}");
        assert!(!missing.contains("s3cret"), "{missing}");
        let unknown = error("postgres://u:s3cret@db/x?sslmode=sometimes");
        assert!(unknown.contains("not a PostgreSQL sslmode"), "{unknown}");
        let mysql = error("mysql://u:s3cret@db/x");
        assert!(mysql.contains("expected postgres://"), "{mysql}");
        assert!(!mysql.contains("s3cret"), "{mysql}");
        let option = error("postgres://u:s3cret@db/x?nonsense=1");
        assert!(!option.contains("s3cret"), "{option}");
    }
}
