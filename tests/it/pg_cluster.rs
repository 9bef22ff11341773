//! A throwaway PostgreSQL cluster for tests, shared by the library's store tests and the
//! integration tests (the library includes this file). It starts once per test process, on a
//! Unix socket in a temp dir, and each test gets a database of its own ([`database`]). It also
//! takes TLS on a loopback port (a certificate for `localhost` from a CA made with `openssl`,
//! [`Cluster::tls_url`]); should another process take the port first, it starts again on another.
//! As root it runs as the `postgres` user, since PostgreSQL refuses root.
//!
//! The cluster is held by a keeper: a shell that starts `postgres`, then reads its stdin until it
//! closes. This process keeps the other end of that pipe until it exits, however it exits (a
//! panic, a signal, `kill -9`), so the keeper then stops the cluster and removes its directory:
//! nothing is left running after the tests. A test that needs the database to go down and come
//! back takes a cluster of its own ([`private`]) and has the keeper stop and start it
//! ([`Cluster::stop`], [`Cluster::start`]); the shared one is never stopped. The postmaster's
//! command line names this checkout (`-c pluggedin.checkout=…`), so `scripts/leftovers.sh` finds
//! one that outlived its tests.
//!
//! The binaries come from `PG_BIN`, else the newest `/usr/lib/postgresql/*/bin` (Debian's
//! `postgresql` package, installed by `scripts/test-deps.sh` with `openssl`), else `PATH`.
//! Without them the tests fail, saying how to install them.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, Stdio};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

/// How long the cluster may take to accept connections: initdb and start take about a second;
/// a loaded machine may take many times that.
const START_WAIT: Duration = Duration::from_secs(90);

/// The running cluster.
pub(crate) struct Cluster {
    /// The directory of its Unix socket (and of its data, and its CA's certificate `ca.crt`).
    socket_dir: PathBuf,
    /// Its port: on loopback (TLS) and in the socket's name.
    port: u16,
    /// Where `pg_isready` is.
    bin: PathBuf,
    /// The keeper, whose stdin closes when this process exits, which stops the cluster; it
    /// takes `stop` and `start` on that stdin and says `stopped` and `started` on its stdout.
    keeper: Mutex<(Child, BufReader<ChildStdout>)>,
}

static CLUSTER: OnceLock<Cluster> = OnceLock::new();

/// The cluster of this test process, started on first use.
pub(crate) fn cluster() -> &'static Cluster {
    CLUSTER.get_or_init(start)
}

/// A cluster of the caller's own, which it may stop and start; it ends when dropped.
#[allow(
    dead_code,
    reason = "the integration tests stop a cluster, the library's do not"
)]
pub(crate) fn private() -> Cluster {
    start()
}

impl Cluster {
    /// A connection string for `database` (key=value form, for tokio-postgres).
    pub(crate) fn settings(&self, database: &str) -> String {
        format!(
            "host={} port={} user=postgres dbname={database}",
            self.socket_dir.display(),
            self.port
        )
    }

    /// A `postgres://` URL for `database`, as `--database-url` takes it.
    pub(crate) fn url(&self, database: &str) -> String {
        format!(
            "postgres:///{database}?host={}&port={}&user=postgres",
            self.socket_dir.display(),
            self.port
        )
    }

    /// Stops the postmaster (a fast shutdown: sessions are ended) and waits until it has exited;
    /// the data stays, and [`Cluster::start`] brings it back on the same socket and port.
    #[allow(
        dead_code,
        reason = "the integration tests stop a cluster, the library's do not"
    )]
    pub(crate) fn stop(&self) {
        self.tell("stop", "stopped");
    }

    /// Starts the postmaster again and waits until it accepts connections.
    #[allow(
        dead_code,
        reason = "the integration tests stop a cluster, the library's do not"
    )]
    pub(crate) fn start(&self) {
        self.tell("start", "started");
        let deadline = Instant::now() + START_WAIT;
        while !is_ready(&self.bin, &self.socket_dir, self.port) {
            assert!(
                Instant::now() < deadline,
                "the test cluster did not start again:\n{}",
                std::fs::read_to_string(self.socket_dir.join("postgres.log")).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Gives the keeper `command` and waits for its `answer`.
    fn tell(&self, command: &str, answer: &str) {
        let mut keeper = self.keeper.lock().unwrap_or_else(|e| e.into_inner());
        let (child, answers) = &mut *keeper;
        let stdin = child.stdin.as_mut().expect("the keeper's stdin is kept");
        writeln!(stdin, "{command}").expect("the keeper takes a command");
        stdin.flush().expect("the keeper takes a command");
        let mut line = String::new();
        answers.read_line(&mut line).expect("the keeper answers");
        assert_eq!(line.trim(), answer, "the keeper's answer to {command}");
    }

    /// A `postgres://` URL for `database` over TLS on loopback, verified against the cluster's CA.
    pub(crate) fn tls_url(&self, database: &str) -> String {
        format!(
            "postgres://postgres@localhost:{}/{database}?sslmode=verify-full&sslrootcert={}",
            self.port,
            self.socket_dir.join("ca.crt").display()
        )
    }
}

/// A fresh, empty database on the cluster; its `postgres://` URL.
pub(crate) async fn database() -> String {
    let cluster = tokio::task::spawn_blocking(cluster).await.unwrap();
    let name = format!("t_{}", uuid::Uuid::new_v4().simple());
    let (client, connection) =
        tokio_postgres::connect(&cluster.settings("postgres"), tokio_postgres::NoTls)
            .await
            .expect("the test cluster accepts connections");
    let connection = tokio::spawn(connection);
    client
        .batch_execute(&format!("CREATE DATABASE {name}"))
        .await
        .expect("a test database is created");
    drop(client);
    let _ = connection.await;
    cluster.url(&name)
}

/// The database of a URL from [`database`] (`postgres:///NAME?…`).
pub(crate) fn name_of(url: &str) -> String {
    let path = url.trim_start_matches("postgres:///");
    path.split('?').next().unwrap_or(path).to_owned()
}

/// Where the PostgreSQL binaries are, or a failure that says how to install them.
fn binaries() -> PathBuf {
    let has_all = |dir: &Path| {
        ["initdb", "postgres", "pg_isready"]
            .iter()
            .all(|b| dir.join(b).is_file())
    };
    if let Some(dir) = std::env::var_os("PG_BIN").map(PathBuf::from) {
        assert!(
            has_all(&dir),
            "PG_BIN={} has no initdb, postgres and pg_isready",
            dir.display()
        );
        return dir;
    }
    let mut debian: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .map(|entry| entry.path().join("bin"))
        .filter(|dir| has_all(dir))
        .collect();
    debian.sort_by_key(|dir| {
        let version = dir.parent().and_then(Path::file_name);
        version
            .and_then(|name| name.to_str()?.parse::<u32>().ok())
            .unwrap_or(0)
    });
    if let Some(dir) = debian.pop() {
        return dir;
    }
    let on_path = std::env::var_os("PATH")
        .map(|path| std::env::split_paths(&path).collect::<Vec<_>>())
        .unwrap_or_default()
        .into_iter()
        .find(|dir| has_all(dir));
    on_path.unwrap_or_else(|| {
        panic!(
            "PostgreSQL is missing (initdb, postgres and pg_isready; looked in PG_BIN, \
             /usr/lib/postgresql/*/bin and PATH): run scripts/test-deps.sh, which installs the \
             Debian package postgresql (as root: apt-get install postgresql), or set PG_BIN to \
             the directory of those binaries"
        )
    })
}

/// Whether this process is root, which PostgreSQL refuses to run as.
fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|out| String::from_utf8_lossy(&out.stdout).trim() == "0")
}

/// A numeric id of the `postgres` user (`-u`) or its group (`-g`).
fn postgres_id(which: &str) -> u32 {
    let out = Command::new("id")
        .args([which, "postgres"])
        .output()
        .expect("`id` runs");
    String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .unwrap_or_else(|_| {
            panic!(
                "running as root, the test cluster runs as the `postgres` user, and there is \
                 none: install the Debian package postgresql (scripts/test-deps.sh), which \
                 creates it"
            )
        })
}

/// A command that runs `program` as the cluster's owner: `postgres` when this process is root.
fn as_owner(program: &Path, root: bool) -> Command {
    if root {
        let mut command = Command::new("setpriv");
        command
            .args([
                "--reuid=postgres",
                "--regid=postgres",
                "--init-groups",
                "--",
            ])
            .arg(program);
        command
    } else {
        Command::new(program)
    }
}

/// How many ports the cluster tries: another process may take the one picked before PostgreSQL
/// binds it.
const ATTEMPTS: usize = 3;

fn start() -> Cluster {
    let bin = binaries();
    let root = is_root();
    let mut failures = Vec::new();
    for _ in 0..ATTEMPTS {
        match start_once(&bin, root) {
            Ok(cluster) => return cluster,
            Err(failure) => failures.push(failure),
        }
    }
    panic!(
        "the test cluster did not start:\n{}",
        failures.join("\n---\n")
    );
}

/// A port free on loopback now.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("a free loopback port")
        .port()
}

/// Runs `command` as the cluster's owner in `dir`, which must succeed.
fn run(mut command: Command, what: &str) {
    let output = command
        .output()
        .unwrap_or_else(|error| panic!("{what}: {error}"));
    assert!(
        output.status.success(),
        "{what} failed:\n{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// A CA and a certificate for `localhost` signed by it, in `dir`, made as the cluster's owner
/// (PostgreSQL wants its key file to be its own).
fn certificates(dir: &Path, root: bool) {
    let openssl = |args: &[&str], what: &str| {
        let mut command = as_owner(Path::new("openssl"), root);
        command.args(args).current_dir(dir);
        run(command, what);
    };
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
    ];
    let mut ca = vec![
        "req",
        "-x509",
        "-days",
        "2",
        "-subj",
        "/CN=pluggedin test CA",
    ];
    ca.extend(ec);
    ca.extend(["-keyout", "ca.key", "-out", "ca.crt"]);
    openssl(&ca, "openssl (the test CA)");
    let mut request = vec!["req", "-subj", "/CN=localhost", "-keyout", "server.key"];
    request.extend(ec);
    request.extend(["-out", "server.csr"]);
    openssl(&request, "openssl (the server's request)");
    std::fs::write(
        dir.join("server.ext"),
        "subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n",
    )
    .expect("the certificate's extensions are written");
    openssl(
        &[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "ca.crt",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-days",
            "2",
            "-extfile",
            "server.ext",
            "-out",
            "server.crt",
        ],
        "openssl (the server's certificate)",
    );
}

/// One try at starting the cluster: its log when it failed.
fn start_once(bin: &Path, root: bool) -> Result<Cluster, String> {
    let dir = tempfile::Builder::new()
        .prefix("pluggedin-pg-")
        .tempdir()
        .expect("a temp dir for the test cluster")
        .keep();
    if root {
        std::os::unix::fs::chown(&dir, Some(postgres_id("-u")), Some(postgres_id("-g")))
            .expect("the test cluster's dir is given to the postgres user");
    }
    let data = dir.join("data");
    certificates(&dir, root);
    let port = free_port();
    let initdb = as_owner(&bin.join("initdb"), root)
        .arg("-D")
        .arg(&data)
        .args([
            "-U",
            "postgres",
            "-A",
            "trust",
            "-E",
            "UTF8",
            "--locale=C",
            "--no-sync",
            "--no-instructions",
        ])
        .current_dir(&dir)
        .output()
        .expect("initdb runs");
    assert!(
        initdb.status.success(),
        "initdb failed:\n{}{}",
        String::from_utf8_lossy(&initdb.stdout),
        String::from_utf8_lossy(&initdb.stderr)
    );
    let checkout = format!("{}/", env!("CARGO_MANIFEST_DIR"));
    // $1: the binaries, $2: the cluster's dir, $3: this checkout, $4: the port. The keeper
    // starts the postmaster and reads commands until stdin closes (this process ended): `stop`
    // (a fast shutdown, waited for) and `start`, each acknowledged on stdout. Then it stops the
    // postmaster, waits for it and removes the dir.
    let script = r#"
        bin=$1 dir=$2 checkout=$3 port=$4
        start() {
            "$bin/postgres" -D "$dir/data" -k "$dir" -p "$port" -c listen_addresses=127.0.0.1 \
                -c ssl=on -c "ssl_cert_file=$dir/server.crt" -c "ssl_key_file=$dir/server.key" \
                -c fsync=off -c synchronous_commit=off -c full_page_writes=off \
                -c max_connections=200 -c "pluggedin.checkout=$checkout" \
                </dev/null >>"$dir/postgres.log" 2>&1 &
            postmaster=$!
        }
        start
        while read -r command; do
            case "$command" in
                stop) kill -INT "$postmaster" 2>/dev/null; wait "$postmaster"; echo stopped ;;
                start) start; echo started ;;
            esac
        done
        kill -INT "$postmaster" 2>/dev/null
        wait "$postmaster"
        rm -rf "$dir"
    "#;
    let mut keeper = as_owner(Path::new("/bin/sh"), root)
        .args(["-c", script, "pluggedin-test-cluster"])
        .arg(bin)
        .arg(&dir)
        .arg(&checkout)
        .arg(port.to_string())
        .current_dir(&dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("the test cluster's keeper starts");
    let answers = BufReader::new(keeper.stdout.take().expect("the keeper's stdout is piped"));
    let log = dir.join("postgres.log");
    let deadline = Instant::now() + START_WAIT;
    loop {
        if is_ready(bin, &dir, port) {
            break;
        }
        let text = std::fs::read(&log).unwrap_or_default();
        // The postmaster's own failures (a port taken, …); the startup refusals pg_isready meets
        // while it starts are not.
        let failed = text.lines().map_while(Result::ok).any(|line| {
            line.contains("FATAL:") && !line.contains("the database system is starting up")
        });
        if failed || Instant::now() >= deadline {
            // Dropping the keeper's stdin stops what started and removes the dir.
            drop(keeper);
            return Err(String::from_utf8_lossy(&text).into_owned());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Ok(Cluster {
        socket_dir: dir,
        port,
        bin: bin.to_owned(),
        keeper: Mutex::new((keeper, answers)),
    })
}

/// Whether the cluster on `dir`'s socket and `port` accepts connections.
fn is_ready(bin: &Path, dir: &Path, port: u16) -> bool {
    Command::new(bin.join("pg_isready"))
        .arg("-q")
        .arg("-h")
        .arg(dir)
        .args(["-p", &port.to_string(), "-U", "postgres", "-d", "postgres"])
        .status()
        .is_ok_and(|status| status.success())
}
