//! What only the PostgreSQL store does: its schema table, losing and finding the database again,
//! `NOTIFY` on settings changes and the listener that wakes other stores on them, its write
//! transaction, URLs with passwords, and ranking documents as the SQLite store does with the
//! statistics it keeps for that. The control
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
async fn a_workspaces_tool_exposure_leaves_the_schema_to_the_builds_before_it() {
    let url = cluster::database().await;
    let store = PostgresStore::connect(&url).await.unwrap();
    let admin = admin(&name_of(&url)).await;
    let readable_by: String = admin
        .query_one(
            "SELECT value FROM meta WHERE key = 'schema_readable_by'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(readable_by, schema::BM25_STATISTICS.to_string());
    // A workspace as a build before the column writes it: the flag decides for it.
    admin
        .batch_execute(
            "INSERT INTO workspaces (name, created_at) VALUES ('older', 0);
             INSERT INTO workspace_servers (workspace, server) VALUES ('older', 'demo');",
        )
        .await
        .unwrap();
    let workspaces = store.workspaces().await.unwrap();
    assert_eq!(workspaces[0].name, "older");
    assert_eq!(workspaces[0].tool_exposure, None);
    // A value this build does not know (a newer build's) is left to the flag, not an error.
    admin
        .batch_execute("UPDATE workspaces SET tool_exposure = 'later' WHERE name = 'older'")
        .await
        .unwrap();
    assert_eq!(store.workspaces().await.unwrap()[0].tool_exposure, None);
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
        tool_exposure: None,
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

/// A small library where BM25 and `ts_rank_cd` disagree: `ts_rank_cd` counts every match and
/// knows no IDF, so it puts the long chunk that says "falcon" three times first, and a word
/// found everywhere above a rare one; BM25 weighs the short chunk's one match by its length and
/// the rare word by its rarity.
const FALCONS: [(&str, &str); 5] = [
    ("Hunting birds", "A falcon hunts small prey."),
    ("Gardening", "Tomatoes need sunshine, water, patience."),
    ("Cooking", "Onions, garlic, basil make sauces richer."),
    ("Travel", "Trains cross mountains through long tunnels."),
    ("Field notes", ""),
];

fn falcon_notes() -> String {
    format!(
        "Falcon sightings near river. {}Another falcon circled overhead. A third falcon rested.",
        "Observers counted herons, egrets, cormorants, kingfishers along muddy banks during \
         morning walks. "
            .repeat(6)
    )
}

async fn falcon_library(place: &crate::control::tests::Place) -> Arc<dyn ControlPlane> {
    let store = place.open().await;
    for (title, content) in FALCONS {
        let content = if content.is_empty() {
            falcon_notes()
        } else {
            content.to_owned()
        };
        let new = crate::control::NewDocument {
            title: title.into(),
            content,
            format: "md".into(),
            category: "other".into(),
            source: "ai_generated".into(),
            visibility: "private".into(),
            ..crate::control::NewDocument::default()
        };
        store.create_document(new).await.unwrap();
    }
    store
}

/// The titles and relevances of a search's hits.
async fn ranked(store: &Arc<dyn ControlPlane>, query: &str) -> Vec<(String, f64)> {
    let search = crate::control::DocumentSearch {
        query: query.into(),
        filter: crate::control::DocumentFilter::default(),
        limit: 10,
    };
    let hits = store.search_documents(search).await.unwrap();
    hits.into_iter()
        .map(|hit| (hit.document.title, hit.relevance))
        .collect()
}

#[tokio::test]
async fn documents_rank_as_on_sqlite_where_ts_rank_cd_would_not() {
    use crate::control::tests::Place;
    let sqlite = falcon_library(&Place::sqlite()).await;
    let place = Place::postgres().await;
    let postgres = falcon_library(&place).await;
    let expected: [(&str, &[&str]); 2] = [
        ("falcon", &["Hunting birds", "Field notes"]),
        // No document has both words: any will do, the rare one first.
        (
            "falcon tomatoes",
            &["Gardening", "Hunting birds", "Field notes"],
        ),
    ];
    // A prefix and a phrase, alone and with a word no document shares with them.
    let alike: [(&str, &[&str]); 4] = [
        ("falc*", &[]),
        ("\"falcon circled\"", &[]),
        ("falc* tomatoes", &[]),
        ("\"falcon circled\" tomatoes", &[]),
    ];
    for (query, titles) in expected.into_iter().chain(alike) {
        let on_sqlite = ranked(&sqlite, query).await;
        let on_postgres = ranked(&postgres, query).await;
        let names: Vec<&str> = on_postgres
            .iter()
            .map(|(title, _)| title.as_str())
            .collect();
        if titles.is_empty() {
            assert!(!names.is_empty(), "{query}");
        } else {
            assert_eq!(names, titles, "{query}");
        }
        for ((title, relevance), (same, other)) in on_postgres.iter().zip(&on_sqlite) {
            assert_eq!(
                title, same,
                "{query}: {on_postgres:?} on SQLite {on_sqlite:?}"
            );
            assert!(
                (relevance - other).abs() < 1e-9,
                "{query}: {on_postgres:?} on SQLite {on_sqlite:?}"
            );
        }
        assert_eq!(on_postgres.len(), on_sqlite.len(), "{query}");
    }
    // `ts_rank_cd` alone orders both queries otherwise: the library tells the two apart.
    let Place::Postgres(url) = &place else {
        unreachable!()
    };
    let admin = admin(&name_of(url)).await;
    for (query, best) in [
        ("'falcon'", "Field notes"),
        ("'falcon' | 'tomato'", "Field notes"),
    ] {
        let top: String = admin
            .query_one(
                "SELECT d.title FROM document_chunks c JOIN documents d ON d.pk = c.document,
                        to_tsquery('english', $1) q
                 WHERE c.search @@ q
                 ORDER BY ts_rank_cd('{0.1, 0.2, 0.5, 1.0}', c.search, q) DESC, c.id LIMIT 1",
                &[&query],
            )
            .await
            .unwrap()
            .get(0);
        assert_eq!(top, best, "{query}");
    }
}

/// The index's statistics, and the same counted afresh from its chunks.
async fn statistics(admin: &tokio_postgres::Client) -> [(Vec<(String, i64)>, i64, i64); 2] {
    let kept = admin
        .query(
            "SELECT lexeme, chunks FROM document_terms ORDER BY lexeme",
            &[],
        )
        .await
        .unwrap();
    let counted = admin
        .query(
            "SELECT lexeme, count(*) FROM document_chunks,
                    unnest(tsvector_to_array(search)) AS lexeme
             GROUP BY lexeme ORDER BY lexeme",
            &[],
        )
        .await
        .unwrap();
    let pairs = |rows: Vec<tokio_postgres::Row>| -> Vec<(String, i64)> {
        rows.iter().map(|row| (row.get(0), row.get(1))).collect()
    };
    let totals = admin
        .query_one("SELECT chunks, words FROM document_index", &[])
        .await
        .unwrap();
    let recount = admin
        .query_one(
            "SELECT count(*), coalesce(sum(words), 0)::bigint FROM document_chunks",
            &[],
        )
        .await
        .unwrap();
    [
        (pairs(kept), totals.get(0), totals.get(1)),
        (pairs(counted), recount.get(0), recount.get(1)),
    ]
}

#[tokio::test]
async fn bm25_statistics_follow_creates_batches_updates_and_deletes() {
    use crate::control::{DocumentCreate, DocumentUpdate, UpdateOperation};
    let place = crate::control::tests::Place::postgres().await;
    let crate::control::tests::Place::Postgres(url) = &place else {
        unreachable!()
    };
    let admin = admin(&name_of(url)).await;
    let store = falcon_library(&place).await;
    let [kept, counted] = statistics(&admin).await;
    assert_eq!(kept, counted);
    assert_eq!(kept.1, 5, "a chunk each");
    // The notes' words: its title's two and its text's, as FTS5 counts them.
    let words: i32 = admin
        .query_one(
            "SELECT c.words FROM document_chunks c JOIN documents d ON d.pk = c.document
             WHERE d.title = 'Field notes'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(words, 86);

    // A batch with a duplicate and a document PostgreSQL refuses (text with a NUL, rolled back
    // to its savepoint): only the good one counts.
    let batch = [
        ("Hunting birds", "A falcon hunts small prey."),
        ("Kites", "A kite soars"),
        ("Refused", "an albatross\0 here"),
    ]
    .into_iter()
    .map(|(title, content)| crate::control::NewDocument {
        title: title.into(),
        content: content.into(),
        format: "md".into(),
        category: "other".into(),
        source: "ai_generated".into(),
        visibility: "private".into(),
        ..crate::control::NewDocument::default()
    })
    .collect();
    let results = store.create_documents(batch).await;
    assert!(matches!(results[0], Ok(DocumentCreate::Duplicate(_))));
    let Ok(DocumentCreate::Created(kite)) = &results[1] else {
        panic!("{:?}", results[1]);
    };
    assert!(results[2].is_err());
    let [kept, counted] = statistics(&admin).await;
    assert_eq!(kept, counted);
    assert!(kept.0.contains(&("kite".into(), 1)), "{:?}", kept.0);
    assert!(!kept.0.iter().any(|(lexeme, _)| lexeme == "albatross"));

    // Replaced text: the old words go out and the new ones in; appended: a second chunk.
    let update = |operation, content: &str| DocumentUpdate {
        operation,
        content: content.into(),
        tags: None,
        model: None,
        change_summary: None,
        update_reason: None,
        changes_from_prompt: None,
    };
    store
        .update_document(&kite.id, update(UpdateOperation::Replace, "A kite glides"))
        .await
        .unwrap()
        .unwrap();
    let [kept, counted] = statistics(&admin).await;
    assert_eq!(kept, counted);
    assert!(
        !kept.0.iter().any(|(lexeme, _)| lexeme == "soar"),
        "{:?}",
        kept.0
    );
    store
        .update_document(
            &kite.id,
            update(UpdateOperation::Append, &"glide ".repeat(400)),
        )
        .await
        .unwrap()
        .unwrap();
    let [kept, counted] = statistics(&admin).await;
    assert_eq!(kept, counted);
    assert_eq!(kept.1, 7, "the kite's text is two chunks now");

    // Deleted: nothing of it stays, and an empty library has no statistics left.
    assert!(store.delete_document(&kite.id).await.unwrap());
    let [kept, counted] = statistics(&admin).await;
    assert_eq!(kept, counted);
    let listed = store
        .list_documents(crate::control::DocumentList {
            limit: 100,
            ..crate::control::DocumentList::default()
        })
        .await
        .unwrap()
        .0;
    for document in listed {
        assert!(store.delete_document(&document.id).await.unwrap());
    }
    assert_eq!(statistics(&admin).await[0], (Vec::new(), 0, 0));
}

#[tokio::test]
async fn the_migration_to_bm25_counts_the_statistics_of_a_library_already_there() {
    let place = crate::control::tests::Place::postgres().await;
    let crate::control::tests::Place::Postgres(url) = &place else {
        unreachable!()
    };
    let admin = admin(&name_of(url)).await;
    drop(falcon_library(&place).await);
    let words = "SELECT array_agg(words ORDER BY id) FROM document_chunks";
    let counted: Vec<i32> = admin.query_one(words, &[]).await.unwrap().get(0);
    // The library as a build before the statistics left it (and without what later
    // migrations add).
    admin
        .batch_execute(&format!(
            "DROP TABLE document_terms, document_index;
             ALTER TABLE document_chunks DROP COLUMN words;
             ALTER TABLE workspaces DROP COLUMN tool_exposure;
             DELETE FROM pluggedin_schema WHERE version >= {};",
            schema::BM25_STATISTICS
        ))
        .await
        .unwrap();
    let store = PostgresStore::connect(url).await.unwrap();
    let [kept, recounted] = statistics(&admin).await;
    assert_eq!(kept, recounted);
    assert_eq!(kept.1, 5);
    let migrated: Vec<i32> = admin.query_one(words, &[]).await.unwrap().get(0);
    assert_eq!(
        migrated, counted,
        "the words as the documents module counts them"
    );
    assert_eq!(
        ranked(&(Arc::new(store) as Arc<dyn ControlPlane>), "falcon").await[0].0,
        "Hunting birds"
    );
}
