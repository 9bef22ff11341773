//! What only the PostgreSQL store does: its schema table, losing and finding the database again,
//! `NOTIFY` on settings changes and the listener that wakes other stores on them, its write
//! transaction, and URLs with passwords. The control
//! plane's contract is tested on both stores in `control::tests`.

use std::time::Duration;

use futures::StreamExt;
use tokio_postgres::AsyncMessage;

use super::*;
use crate::control::fleet::FleetStore;
use crate::control::tests::cluster;

/// A client of the test cluster as its superuser, on `database`.
async fn admin(database: &str) -> tokio_postgres::Client {
    let settings = cluster::cluster().settings(database);
    let (client, connection) = tokio_postgres::connect(&settings, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(connection);
    client
}

use cluster::name_of;

#[tokio::test]
async fn a_database_from_a_newer_version_is_used_only_if_it_says_this_one_can() {
    let url = cluster::database().await;
    drop(PostgresStore::connect(&url).await.unwrap());
    let admin = admin(&name_of(&url)).await;
    // A newer build's migration that this one can still run on (it says so): a rolling
    // restart, where both versions serve from one schema for a while.
    admin
        .batch_execute(&format!(
            "INSERT INTO pluggedin_schema (version) VALUES (98);
             UPDATE meta SET value = '{}' WHERE key = 'schema_readable_by'",
            schema::VERSION
        ))
        .await
        .unwrap();
    let store = PostgresStore::connect(&url).await.unwrap();
    store.set_tool_enabled("demo__echo", false).await.unwrap();
    drop(store);
    // One it cannot: refused.
    admin
        .batch_execute(
            "INSERT INTO pluggedin_schema (version) VALUES (99);
             UPDATE meta SET value = '99' WHERE key = 'schema_readable_by'",
        )
        .await
        .unwrap();
    let error = PostgresStore::connect(&url)
        .await
        .err()
        .unwrap()
        .to_string();
    assert!(error.contains("schema version 99"), "{error}");
    assert!(error.contains("newer pluggedin-mcp-proxy"), "{error}");
    assert!(
        error.contains(&format!("knows up to {}", schema::VERSION)),
        "{error}"
    );
}

#[tokio::test]
async fn opening_twice_migrates_once_and_keeps_the_data() {
    let url = cluster::database().await;
    let (one, two) = tokio::join!(PostgresStore::connect(&url), PostgresStore::connect(&url));
    let (one, two) = (one.unwrap(), two.unwrap());
    one.set_tool_enabled("demo__echo", false).await.unwrap();
    drop(one);
    let again = PostgresStore::connect(&url).await.unwrap();
    assert!(
        again
            .settings()
            .await
            .unwrap()
            .disabled_tools
            .contains("demo__echo")
    );
    assert!(
        two.settings()
            .await
            .unwrap()
            .disabled_tools
            .contains("demo__echo")
    );
    let versions: i64 = admin(&name_of(&url))
        .await
        .query_one("SELECT count(*) FROM pluggedin_schema", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(versions, schema::VERSION);
}

#[tokio::test]
async fn calls_say_the_store_is_unavailable_while_the_database_is_down_and_recover_after() {
    let url = cluster::database().await;
    let name = name_of(&url);
    let store = PostgresStore::connect(&url).await.unwrap();
    store.server_uuid("before").await.unwrap();
    // The database goes away: no new connections, and the store's are ended by the server.
    let postgres = admin("postgres").await;
    postgres
        .batch_execute(&format!(
            "ALTER DATABASE {name} ALLOW_CONNECTIONS false;
             SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}'"
        ))
        .await
        .unwrap();
    // Each call fails with a clear error, on the connection the server ended or a new one it
    // refuses; none hangs.
    for _ in 0..3 {
        let error = store.settings_version().await.unwrap_err();
        assert!(
            matches!(&error, ControlError::Store(text) if text.starts_with("store unavailable")),
            "{error}"
        );
    }
    postgres
        .batch_execute(&format!("ALTER DATABASE {name} ALLOW_CONNECTIONS true"))
        .await
        .unwrap();
    // Back: the next call connects afresh.
    assert_eq!(store.settings_version().await.unwrap(), 0);
    store.server_uuid("after").await.unwrap();
}

#[tokio::test]
async fn a_ping_answers_while_the_database_does_and_names_it_without_the_password_when_not() {
    let url = cluster::database().await;
    let name = name_of(&url);
    let with_password = url
        .replace("postgres:///", "postgres://postgres:s3cret@/")
        .replace("&user=postgres", "");
    let store = PostgresStore::connect(&with_password).await.unwrap();
    store.ping().await.unwrap();
    let postgres = admin("postgres").await;
    postgres
        .batch_execute(&format!(
            "ALTER DATABASE {name} ALLOW_CONNECTIONS false;
             SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}'"
        ))
        .await
        .unwrap();
    let error = store.ping().await.unwrap_err().to_string();
    assert!(error.contains("store unavailable"), "{error}");
    assert!(
        error.contains(&format!("postgres://postgres@/{name}")),
        "{error}"
    );
    assert!(!error.contains("s3cret"), "{error}");
    postgres
        .batch_execute(&format!("ALTER DATABASE {name} ALLOW_CONNECTIONS true"))
        .await
        .unwrap();
    store.ping().await.unwrap();
}

#[tokio::test]
async fn settings_changes_are_notified_at_commit_with_the_new_version() {
    let url = cluster::database().await;
    let store = PostgresStore::connect(&url).await.unwrap();
    let settings = cluster::cluster().settings(&name_of(&url));
    let (listener, mut connection) = tokio_postgres::connect(&settings, tokio_postgres::NoTls)
        .await
        .unwrap();
    let (sender, mut notices) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        let mut messages = futures::stream::poll_fn(move |cx| connection.poll_message(cx));
        while let Some(Ok(message)) = messages.next().await {
            if let AsyncMessage::Notification(notice) = message {
                let _ = sender.send((notice.channel().to_owned(), notice.payload().to_owned()));
            }
        }
    });
    listener
        .batch_execute("LISTEN pluggedin_settings")
        .await
        .unwrap();
    store.set_server_enabled("demo", false).await.unwrap();
    let workspace = Workspace {
        name: "work".into(),
        servers: ["demo".to_owned()].into(),
    };
    store.create_workspace(workspace).await.unwrap();
    for expected in ["1", "2"] {
        let notice = tokio::time::timeout(Duration::from_secs(30), notices.recv())
            .await
            .expect("a notification within the wait")
            .unwrap();
        assert_eq!(
            notice,
            ("pluggedin_settings".to_owned(), expected.to_owned())
        );
    }
    assert_eq!(store.settings_version().await.unwrap(), 2);
}

/// How long a test waits for a wake-up: far above what it takes, even on a loaded machine.
const WAKE_WAIT: Duration = Duration::from_secs(60);

/// Waits for the next wake-up of `changes`.
async fn woken(changes: &mut SettingsChanges) {
    let woken = tokio::time::timeout(WAKE_WAIT, changes.changed())
        .await
        .expect("a wake-up within the wait");
    assert!(woken, "the listener is still running");
}

#[tokio::test]
async fn a_settings_change_through_one_store_wakes_another_stores_listener() {
    let url = cluster::database().await;
    let (one, two) = (
        PostgresStore::connect(&url).await.unwrap(),
        PostgresStore::connect(&url).await.unwrap(),
    );
    let mut changes = two
        .settings_changes()
        .expect("PostgreSQL announces changes");
    // The first wake-up says `LISTEN` took effect (the re-read every new listening connection
    // asks for); from then on a change is announced.
    woken(&mut changes).await;
    one.set_tool_enabled("demo__echo", false).await.unwrap();
    woken(&mut changes).await;
    assert_eq!(two.settings_version().await.unwrap(), 1);
    assert!(
        two.settings()
            .await
            .unwrap()
            .disabled_tools
            .contains("demo__echo")
    );
    // A management command (a store nobody asked for changes) opens no listening connection.
    let listening: i64 = admin(&name_of(&url))
        .await
        .query_one(
            "SELECT count(*) FROM pg_stat_activity \
             WHERE datname = current_database() AND query LIKE 'LISTEN%'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(listening, 1, "only the store asked for changes listens");
}

#[tokio::test]
async fn a_listener_whose_connection_is_ended_reconnects_rereads_and_hears_later_changes() {
    let url = cluster::database().await;
    let name = name_of(&url);
    let (one, two) = (
        PostgresStore::connect(&url).await.unwrap(),
        PostgresStore::connect(&url).await.unwrap(),
    );
    let mut changes = two
        .settings_changes()
        .expect("PostgreSQL announces changes");
    woken(&mut changes).await;
    // The listener's session is ended by the server (as a restart or an administrator would),
    // and it cannot connect again for now; the stores' pooled connections stay.
    let admin = admin("postgres").await;
    admin
        .batch_execute(&format!("ALTER DATABASE {name} ALLOW_CONNECTIONS false"))
        .await
        .unwrap();
    let ended = admin
        .query(
            "SELECT pg_terminate_backend(pid, 60000) FROM pg_stat_activity \
             WHERE datname = $1 AND query LIKE 'LISTEN%'",
            &[&name],
        )
        .await
        .unwrap();
    assert_eq!(ended.len(), 1, "one listening session");
    assert!(ended[0].get::<_, bool>(0), "it ended");
    // A change while nobody listens is announced to nobody.
    one.set_tool_enabled("demo__echo", false).await.unwrap();
    admin
        .batch_execute(&format!("ALTER DATABASE {name} ALLOW_CONNECTIONS true"))
        .await
        .unwrap();
    // Listening again, the listener asks for a re-read, which finds the change, and the
    // fleet's inbox asks for a resynchronisation: notices sent meanwhile are lost.
    woken(&mut changes).await;
    let mail = tokio::time::timeout(WAKE_WAIT, two.notices().next())
        .await
        .expect("the inbox asks within the wait");
    assert!(mail.resync, "{mail:?}");
    assert!(
        two.settings()
            .await
            .unwrap()
            .disabled_tools
            .contains("demo__echo")
    );
    // And a later change is announced on the new connection (the only wake-up left to come).
    let before = two.settings_version().await.unwrap();
    one.set_tool_enabled("demo__add", false).await.unwrap();
    woken(&mut changes).await;
    assert!(two.settings_version().await.unwrap() > before);
}

#[tokio::test]
async fn a_notice_announced_through_one_store_reaches_every_listening_store() {
    use crate::control::fleet::{Heard, Notice};
    let url = cluster::database().await;
    let (one, two) = (
        PostgresStore::connect(&url).await.unwrap(),
        PostgresStore::connect(&url).await.unwrap(),
    );
    let (mine, theirs) = (one.notices(), two.notices());
    // Both listening: each store's first wake-up says its `LISTEN` took effect.
    woken(&mut one.settings_changes().unwrap()).await;
    woken(&mut two.settings_changes().unwrap()).await;
    let notices = [
        Notice {
            from: 1,
            server: "files".into(),
            heard: Heard::ListChanged,
        },
        Notice {
            from: 1,
            server: "files".into(),
            heard: Heard::ResourceUpdated {
                uri: "file:///notes.md".into(),
            },
        },
    ];
    // One too large for a notification is left out, and the rest still go.
    let huge = Notice {
        from: 1,
        server: "files".into(),
        heard: Heard::ResourceUpdated {
            uri: format!("file:///{}", "x".repeat(8_000)),
        },
    };
    let mut sent = notices.to_vec();
    sent.insert(1, huge);
    one.announce(&sent).await.unwrap();
    for inbox in [&mine, &theirs] {
        let mut heard = Vec::new();
        while heard.len() < notices.len() {
            let mail = tokio::time::timeout(WAKE_WAIT, inbox.next())
                .await
                .expect("notices within the wait");
            assert!(!mail.resync, "{mail:?}");
            heard.extend(mail.notices);
        }
        assert_eq!(heard, notices);
    }
}

#[tokio::test]
async fn rate_counts_add_up_across_stores_in_one_window_each_and_expired_rows_go() {
    use crate::control::fleet::RateCount;
    let url = cluster::database().await;
    let (one, two) = (
        PostgresStore::connect(&url).await.unwrap(),
        PostgresStore::connect(&url).await.unwrap(),
    );
    let count = |key: &[u8], started_ms: i64, count: i64| RateCount {
        kind: 0,
        key: key.to_vec(),
        started_ms,
        count,
    };
    let limits = [5, i64::MAX];
    // The first count makes the row; its window starts when that replica's did (never later
    // than the database's clock).
    let first = one
        .share_rate_counts(&[count(b"ta", 1_000, 2)], 60_000, limits)
        .await
        .unwrap();
    assert!(first.now_ms > 1_000_000_000_000, "the database's clock");
    assert_eq!(first.added, vec![count(b"ta", 1_000, 2)]);
    assert!(first.full.is_empty(), "{first:?}");
    // Today's windows: one key from each store, the other adds to the first's row.
    let now = first.now_ms;
    let shared = one
        .share_rate_counts(&[count(b"tb", now - 5_000, 3)], 60_000, limits)
        .await
        .unwrap();
    assert_eq!(shared.added, vec![count(b"tb", now - 5_000, 3)]);
    let shared = two
        .share_rate_counts(
            &[count(b"tb", now - 1_000, 2), count(b"tc", now + 999_999, 1)],
            60_000,
            limits,
        )
        .await
        .unwrap();
    // "tb" is the first's window, with both counts; "tc" starts no later than the clock.
    assert_eq!(shared.added.len(), 2);
    assert_eq!(shared.added[0], count(b"tb", now - 5_000, 5));
    assert!(shared.added[1].started_ms <= shared.now_ms);
    // "tb" reached the limit of 5 (read before this statement's own counts are in): the next
    // share of either store names it, with nothing to send.
    let seen = one.share_rate_counts(&[], 60_000, limits).await.unwrap();
    assert_eq!(seen.full, vec![count(b"tb", now - 5_000, 5)]);
    assert!(seen.added.is_empty());
    // A limit that is off names nothing; another kind does not count against this one.
    let off = two
        .share_rate_counts(&[], 60_000, [i64::MAX, 1])
        .await
        .unwrap();
    assert!(off.full.is_empty(), "{off:?}");

    // A count from a window that started a whole window after the row's starts it again.
    let admin = admin(&name_of(&url)).await;
    admin
        .execute(
            "UPDATE rate_windows SET started = started - 61000 WHERE key = 'tb'",
            &[],
        )
        .await
        .unwrap();
    let again = two
        .share_rate_counts(&[count(b"tb", now, 1)], 60_000, limits)
        .await
        .unwrap();
    assert_eq!(again.added, vec![count(b"tb", now, 1)]);
    // "ta" (started at 1 000) is long over: deleted by that share.
    let left: Vec<Vec<u8>> = admin
        .query("SELECT key FROM rate_windows ORDER BY key", &[])
        .await
        .unwrap()
        .iter()
        .map(|row| row.get(0))
        .collect();
    assert_eq!(left, vec![b"tb".to_vec(), b"tc".to_vec()]);
}

#[tokio::test]
async fn a_failed_write_leaves_nothing() {
    let url = cluster::database().await;
    let store = PostgresStore::connect(&url).await.unwrap();
    let failed: Result<()> = write_tx!(store, |t| async {
        t.execute("INSERT INTO meta (key, value) VALUES ('probe', '1')", &[])
            .await?;
        Err::<(), _>(ControlError::Invalid("stopped halfway".into()))
    });
    assert!(failed.is_err());
    let store = &store;
    let probes: i64 = read!(store, |c| async {
        Ok::<_, ControlError>(
            c.query_one("SELECT count(*) FROM meta WHERE key = 'probe'", &[])
                .await?
                .get(0),
        )
    })
    .unwrap();
    assert_eq!(probes, 0, "a failed write was rolled back");
}

#[tokio::test]
async fn errors_name_the_database_without_its_password() {
    let url = cluster::database().await;
    let wrong = url
        .replace("postgres:///", "postgres://postgres:s3cret@/")
        .replace("&user=postgres", "")
        .replace(&name_of(&url), "no_such_database");
    let error = PostgresStore::connect(&wrong)
        .await
        .err()
        .unwrap()
        .to_string();
    assert!(error.contains("no_such_database"), "{error}");
    assert!(error.contains("postgres://postgres@"), "{error}");
    assert!(!error.contains("s3cret"), "{error}");
}

#[tokio::test]
async fn a_connection_left_in_the_middle_of_a_call_is_closed_not_reused() {
    let url = cluster::database().await;
    let store = PostgresStore::connect(&url).await.unwrap();
    let backend = async |store: &PostgresStore| -> i32 {
        read!(store, |c| async {
            Ok::<_, ControlError>(c.query_one("SELECT pg_backend_pid()", &[]).await?.get(0))
        })
        .unwrap()
    };
    let first = backend(&store).await;
    assert_eq!(
        backend(&store).await,
        first,
        "a finished call's connection is reused"
    );
    // A call cancelled while its statement runs (as a call past its bound is).
    let running = store.clone();
    let call = tokio::spawn(async move {
        let store = &running;
        read!(store, |c| async {
            c.batch_execute("SELECT pg_sleep(600)").await?;
            Ok::<_, ControlError>(())
        })
    });
    let admin = admin("postgres").await;
    let sleeping = "SELECT count(*) FROM pg_stat_activity WHERE query = 'SELECT pg_sleep(600)'";
    while admin
        .query_one(sleeping, &[])
        .await
        .unwrap()
        .get::<_, i64>(0)
        == 0
    {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    call.abort();
    let _ = call.await;
    let next = backend(&store).await;
    assert_ne!(next, first, "a fresh connection, not the busy one");
}

#[tokio::test]
async fn tls_connections_verify_the_servers_certificate() {
    let url = cluster::database().await;
    let tls = cluster::cluster().tls_url(&name_of(&url));
    let store = PostgresStore::connect(&tls).await.unwrap();
    store.set_tool_enabled("demo__echo", false).await.unwrap();
    let ssl: bool = read!(store, |c| async {
        Ok::<_, ControlError>(
            c.query_one(
                "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
                &[],
            )
            .await?
            .get(0),
        )
    })
    .unwrap();
    assert!(ssl, "the connection is encrypted");
    // The same server, its certificate checked against the platform's roots, which do not
    // have the test CA: refused, saying why.
    let untrusted = tls.split("&sslrootcert=").next().unwrap();
    let error = PostgresStore::connect(untrusted)
        .await
        .err()
        .unwrap()
        .to_string();
    assert!(error.contains("store unavailable"), "{error}");
    assert!(error.to_lowercase().contains("certificate"), "{error}");
}
