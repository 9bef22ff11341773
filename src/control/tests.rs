//! The control plane's contract as both local stores keep it: every test here runs on SQLite
//! (`local`) and on PostgreSQL (`postgres`, a throwaway cluster per test process, a database per
//! test), as `control::tests::sqlite::…` and `control::tests::postgres::…`.

use std::sync::Arc;

use crate::control::local::LocalStore;
use crate::control::postgres::PostgresStore;
use crate::control::*;

#[path = "../../tests/it/pg_cluster.rs"]
pub(crate) mod cluster;

/// Where a test's store lives; each [`Place::open`] is another process's view of it.
pub(crate) enum Place {
    Sqlite(tempfile::TempDir),
    Postgres(String),
}

impl Place {
    pub(crate) fn sqlite() -> Place {
        Place::Sqlite(tempfile::tempdir().unwrap())
    }

    pub(crate) async fn postgres() -> Place {
        Place::Postgres(cluster::database().await)
    }

    pub(crate) async fn open(&self) -> Arc<dyn ControlPlane> {
        match self {
            Place::Sqlite(dir) => Arc::new(
                LocalStore::open_async(Some(dir.path().to_owned()))
                    .await
                    .unwrap(),
            ),
            Place::Postgres(url) => Arc::new(PostgresStore::connect(url).await.unwrap()),
        }
    }
}

/// Each test, once per store: `async fn test(place: &Place)` in the calling module becomes
/// `sqlite::test` and `postgres::test`.
macro_rules! on_both_stores {
    ($($test:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test]
                async fn $test() {
                    super::$test(&$crate::control::tests::Place::sqlite()).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test]
                async fn $test() {
                    super::$test(&$crate::control::tests::Place::postgres().await).await;
                }
            )*
        }
    };
}

pub(crate) use on_both_stores;

on_both_stores!(
    notifications_list_newest_first_and_complete_by_id,
    clipboard_names_upsert_indexes_conflict_and_pop_is_lifo,
    expired_clipboard_entries_are_invisible,
    memory_search_ranks_by_full_text_relevance,
    settings_changes_bump_the_version_and_reach_another_connection,
    a_workspaces_tool_exposure_is_kept_changed_and_seen_in_the_settings,
    server_uuids_are_stable_across_openings,
    activity_figures_group_by_server_and_item,
    an_activity_report_cuts_its_range_into_buckets_and_stays_bounded,
    rate_limit_refusals_sum_over_the_window_and_are_pruned_with_activity,
    documents_are_created_deduplicated_listed_filtered_and_versioned,
    search_ranks_highlights_falls_back_to_any_word_and_is_deterministic,
    a_batch_keeps_the_good_documents_and_reports_the_bad,
);

fn text(value: &str) -> ClipboardValue {
    ClipboardValue {
        value: value.into(),
        content_type: "text/plain".into(),
        encoding: "utf-8".into(),
        visibility: "private".into(),
        created_by_tool: None,
        created_by_model: None,
        ttl_ms: 60_000,
    }
}

fn note(title: &str) -> NewNotification {
    NewNotification {
        kind: "CUSTOM".into(),
        title: title.into(),
        message: "m".into(),
        severity: Severity::Info,
        link: None,
        ttl_ms: 60_000,
        send_email: false,
    }
}

async fn notifications_list_newest_first_and_complete_by_id(place: &Place) {
    let store = place.open().await;
    let first = store.create_notification(note("first")).await.unwrap();
    let second = store.create_notification(note("second")).await.unwrap();
    let listed = store.list_notifications(false, None).await.unwrap();
    assert_eq!(listed, vec![second.clone(), first.clone()]);
    assert!(store.complete_notification(&first.id).await.unwrap());
    assert!(!store.complete_notification("nope").await.unwrap());
    let unread = store.list_notifications(true, None).await.unwrap();
    assert_eq!(unread.len(), 1);
    assert_eq!(unread[0].id, second.id);
    assert_eq!(
        store
            .list_notifications(false, Some(1))
            .await
            .unwrap()
            .len(),
        1
    );
    assert!(store.delete_notification(&second.id).await.unwrap());
    assert!(!store.delete_notification(&second.id).await.unwrap());
}

async fn clipboard_names_upsert_indexes_conflict_and_pop_is_lifo(place: &Place) {
    let store = place.open().await;
    let ClipboardWrite::Saved(first) = store
        .clipboard_set(Some("k".into()), None, text("one"))
        .await
        .unwrap()
    else {
        panic!("a named set is saved");
    };
    store
        .clipboard_set(Some("k".into()), None, text("two"))
        .await
        .unwrap();
    let entry = store
        .clipboard_get(ClipboardKey::Name("k".into()), None)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(entry.value, "two");
    assert_eq!(
        (&entry.uuid, entry.created_at),
        (&first.uuid, first.created_at)
    );
    assert!(matches!(
        store.clipboard_set(None, Some(0), text("a")).await.unwrap(),
        ClipboardWrite::Saved(_)
    ));
    assert!(matches!(
        store.clipboard_set(None, Some(0), text("b")).await.unwrap(),
        ClipboardWrite::IndexTaken(0)
    ));
    let pushed = store.clipboard_push(text("c")).await.unwrap();
    assert_eq!(pushed.idx, Some(1));
    assert_eq!(store.clipboard_pop().await.unwrap().unwrap().value, "c");
    assert_eq!(store.clipboard_pop().await.unwrap().unwrap().value, "a");
    assert!(store.clipboard_pop().await.unwrap().is_none());
    let (entries, total) = store.clipboard_list(None, 50, 0).await.unwrap();
    assert_eq!((entries.len(), total), (1, 1));
    assert_eq!(store.clipboard_delete(None).await.unwrap(), 1);
}

async fn expired_clipboard_entries_are_invisible(place: &Place) {
    let store = place.open().await;
    let mut value = text("old");
    value.ttl_ms = -1;
    store
        .clipboard_set(Some("gone".into()), None, value)
        .await
        .unwrap();
    assert!(
        store
            .clipboard_get(ClipboardKey::Name("gone".into()), None)
            .await
            .unwrap()
            .is_none()
    );
}

async fn memory_search_ranks_by_full_text_relevance(place: &Place) {
    let store = place.open().await;
    let session = store
        .memory_session_start("chat".into(), None)
        .await
        .unwrap();
    for (kind, content) in [
        ("insight", "JWT tokens belong in httpOnly cookies"),
        ("tool_call", "deployed the service to kubernetes with helm"),
        (
            "error_pattern",
            "kubernetes deployment failed: kubernetes image pull backoff",
        ),
    ] {
        let observation = NewObservation {
            kind: kind.into(),
            content: content.into(),
            outcome: None,
            metadata: None,
        };
        store
            .memory_observe(&session.uuid, observation)
            .await
            .unwrap();
    }
    let query = MemoryQuery {
        query: "kubernetes deployment".into(),
        ring_types: None,
        agent_uuid: None,
        top_k: 10,
        include_gut: false,
    };
    let hits = store.memory_search(query.clone()).await.unwrap();
    assert_eq!(hits.len(), 2);
    assert_eq!(hits[0].memory.ring_type, "shocks");
    assert_eq!(hits[0].relevance, Some(1.0));
    assert!(hits[1].relevance < Some(1.0));
    let shocks_only = MemoryQuery {
        ring_types: Some(vec!["practice".into()]),
        ..query
    };
    let hits = store.memory_search(shocks_only).await.unwrap();
    assert_eq!(hits.len(), 1);
    assert!(hits[0].memory.content.contains("helm"));

    let details = store
        .memory_details(vec![hits[0].memory.uuid.clone(), "missing".into()])
        .await
        .unwrap();
    assert_eq!(details.len(), 1);
    assert_eq!(details[0].access_count, 1);

    assert!(matches!(
        store
            .memory_session_end(&session.memory_session_id)
            .await
            .unwrap(),
        SessionEnd::Ended {
            observations: Some(3)
        }
    ));
    let late = NewObservation {
        kind: "insight".into(),
        content: "x".into(),
        outcome: None,
        metadata: None,
    };
    assert!(matches!(
        store.memory_observe(&session.uuid, late).await.unwrap(),
        ObserveOutcome::SessionEnded
    ));
}

async fn settings_changes_bump_the_version_and_reach_another_connection(place: &Place) {
    let one = place.open().await;
    let two = place.open().await;
    let before = two.settings_version().await.unwrap();
    one.set_tool_enabled("demo__echo", false).await.unwrap();
    one.create_workspace(Workspace {
        name: "work".into(),
        servers: ["demo".to_owned()].into(),
        tool_exposure: None,
    })
    .await
    .unwrap();
    assert!(one.switch_workspace(Some("work")).await.unwrap());
    assert!(!one.switch_workspace(Some("nope")).await.unwrap());
    assert!(two.settings_version().await.unwrap() > before);
    let settings = two.settings().await.unwrap();
    assert!(settings.disabled_tools.contains("demo__echo"));
    assert_eq!(settings.workspace.unwrap().name, "work");
    assert!(one.delete_workspace("work").await.unwrap());
    assert_eq!(two.settings().await.unwrap().workspace, None);
}

async fn a_workspaces_tool_exposure_is_kept_changed_and_seen_in_the_settings(place: &Place) {
    use crate::config::ToolExposure;
    let one = place.open().await;
    let two = place.open().await;
    let workspace = |name: &str, tool_exposure| Workspace {
        name: name.into(),
        servers: ["demo".to_owned()].into(),
        tool_exposure,
    };
    assert!(
        one.create_workspace(workspace("focus", Some(ToolExposure::Search)))
            .await
            .unwrap()
    );
    assert!(
        one.create_workspace(workspace("plain", None))
            .await
            .unwrap()
    );
    assert_eq!(
        two.workspaces().await.unwrap(),
        [
            workspace("focus", Some(ToolExposure::Search)),
            workspace("plain", None)
        ]
    );
    assert!(one.switch_workspace(Some("plain")).await.unwrap());
    let before = two.settings_version().await.unwrap();
    // A change to the active workspace's exposure moves the version, as a switch does.
    assert!(
        one.set_workspace_exposure("plain", Some(ToolExposure::All))
            .await
            .unwrap()
    );
    assert!(two.settings_version().await.unwrap() > before);
    let active = two.settings().await.unwrap().workspace.unwrap();
    assert_eq!(active.tool_exposure, Some(ToolExposure::All));
    assert!(one.set_workspace_exposure("focus", None).await.unwrap());
    assert_eq!(two.workspaces().await.unwrap()[0].tool_exposure, None);
    assert!(
        !one.set_workspace_exposure("nope", Some(ToolExposure::Search))
            .await
            .unwrap()
    );
}

async fn activity_figures_group_by_server_and_item(place: &Place) {
    let store = place.open().await;
    let entry = |item: &str, duration_ms, success| Activity {
        at: 1000,
        action: crate::control::ActivityAction::ToolCall,
        server_name: "demo".into(),
        server_uuid: "u".into(),
        item: item.into(),
        duration_ms,
        success,
        error: None,
        tool_error: false,
    };
    store
        .record_activity(vec![
            entry("echo", 10, true),
            entry("echo", 30, false),
            entry("add", 5, true),
        ])
        .await
        .unwrap();
    let stats = store.activity_stats(0).await.unwrap();
    assert_eq!(stats.len(), 2);
    assert_eq!(
        (stats[1].item.as_str(), stats[1].calls, stats[1].errors),
        ("echo", 2, 1)
    );
    assert_eq!((stats[1].p50_ms, stats[1].p95_ms), (10, 30));
    assert!(store.activity_stats(2000).await.unwrap().is_empty());
    assert_eq!(store.prune_activity(2000).await.unwrap(), 3);
}

async fn an_activity_report_cuts_its_range_into_buckets_and_stays_bounded(place: &Place) {
    let store = place.open().await;
    let entry = |at, server: &str, item: &str, duration_ms, success| Activity {
        at,
        action: crate::control::ActivityAction::ToolCall,
        server_name: server.into(),
        server_uuid: "u".into(),
        item: item.into(),
        duration_ms,
        success,
        error: (!success).then(|| "=boom".to_owned()),
        tool_error: false,
    };
    let mut batch = vec![
        entry(1_000, "demo", "echo", 10, true),
        entry(1_500, "demo", "echo", 30, false),
        entry(3_500, "other", "add", 5, true),
        // Outside the range: neither counted nor listed.
        entry(4_000, "demo", "echo", 999, true),
    ];
    // More items than a report lists: the busiest come first.
    batch.extend((0..150).map(|i| entry(2_000, "many", &format!("tool_{i}"), 1, true)));
    store.record_activity(batch).await.unwrap();
    let query = |server: Option<&str>| ActivityQuery {
        since: 0,
        until: 4_000,
        buckets: 4,
        server: server.map(str::to_owned),
        item: None,
    };
    let report = store.activity_report(query(None)).await.unwrap();
    assert_eq!(report.bucket_ms, 1_000);
    let calls: Vec<u64> = report.buckets.iter().map(|(_, f)| f.calls).collect();
    assert_eq!(calls, [0, 2, 150, 1]);
    assert_eq!(report.buckets[1].1.errors, 1);
    assert_eq!(
        (report.buckets[1].1.p50_ms, report.buckets[1].1.p95_ms),
        (10, 30)
    );
    assert_eq!(report.items.len(), ActivityReport::MAX_ITEMS);
    assert_eq!(report.items[0].0, ("demo".to_owned(), "echo".to_owned()));
    assert_eq!(report.slowest.len(), ActivityReport::MAX_ENTRIES);
    assert_eq!(report.slowest[0].duration_ms, 30);
    assert_eq!(report.failing.len(), 1);
    assert_eq!(report.failing[0].error.as_deref(), Some("=boom"));
    // One server alone.
    let report = store.activity_report(query(Some("other"))).await.unwrap();
    assert_eq!(report.servers.len(), 1);
    assert_eq!(report.servers[0].1.calls, 1);
    // A report never has more buckets than its bound.
    let many = ActivityQuery {
        buckets: 100_000,
        ..query(None)
    };
    let report = store.activity_report(many).await.unwrap();
    assert_eq!(report.buckets.len(), ActivityReport::MAX_BUCKETS as usize);
    // The export: oldest first, within the range, up to the limit.
    let entries = store.activity_entries(0, 4_000, 2).await.unwrap();
    assert_eq!(
        entries.iter().map(|e| e.at).collect::<Vec<_>>(),
        [1_000, 1_500]
    );
}

async fn rate_limit_refusals_sum_over_the_window_and_are_pruned_with_activity(place: &Place) {
    let store = place.open().await;
    for (at, tool_calls, requests) in [(1000, 90, 0), (2000, 5, 7), (3000, 1, 1)] {
        store
            .record_rate_limited(RateLimited {
                at,
                tool_calls,
                requests,
            })
            .await
            .unwrap();
    }
    let since = store.rate_limited(2000).await.unwrap();
    assert_eq!((since.tool_calls, since.requests), (6, 8));
    assert_eq!(store.rate_limited(5000).await.unwrap().tool_calls, 0);
    store.prune_activity(2500).await.unwrap();
    let left = store.rate_limited(0).await.unwrap();
    assert_eq!((left.tool_calls, left.requests), (1, 1));
}

async fn server_uuids_are_stable_across_openings(place: &Place) {
    let store = place.open().await;
    let new = store.server_uuid("new").await.unwrap();
    assert_eq!(store.server_uuid("new").await.unwrap(), new);
    assert_ne!(store.server_uuid("other").await.unwrap(), new);
    drop(store);
    let again = place.open().await;
    assert_eq!(again.server_uuid("new").await.unwrap(), new);
}

fn document(title: &str, content: &str) -> NewDocument {
    NewDocument {
        title: title.into(),
        content: content.into(),
        format: "md".into(),
        category: "other".into(),
        source: "ai_generated".into(),
        visibility: "private".into(),
        ..NewDocument::default()
    }
}

fn created(outcome: DocumentCreate) -> Document {
    match outcome {
        DocumentCreate::Created(document) => *document,
        DocumentCreate::Duplicate(document) => panic!("{} was a duplicate", document.id),
    }
}

async fn documents_are_created_deduplicated_listed_filtered_and_versioned(place: &Place) {
    let store = place.open().await;
    let mut tagged = document("Alpha notes", "alpha text about rust");
    tagged.tags = vec!["a".into(), "b".into()];
    tagged.model = Some(ModelInfo {
        name: "Claude".into(),
        provider: "Anthropic".into(),
        version: None,
    });
    let alpha = created(store.create_document(tagged.clone()).await.unwrap());
    assert_eq!(
        (alpha.version, alpha.tags.clone()),
        (1, vec!["a".into(), "b".into()])
    );
    let DocumentCreate::Duplicate(same) = store.create_document(tagged).await.unwrap() else {
        panic!("the same content is a duplicate");
    };
    assert_eq!(same.id, alpha.id);
    let mut other = document("beta notes", "beta text about sql");
    other.source = "upload".into();
    let beta = created(store.create_document(other).await.unwrap());

    let page = |filter: DocumentFilter, sort: DocumentSort| DocumentList {
        filter,
        search: None,
        sort,
        limit: 10,
        offset: 0,
    };
    let ids = |listed: (Vec<Document>, u64)| -> (Vec<String>, u64) {
        (listed.0.into_iter().map(|d| d.id).collect(), listed.1)
    };
    let by_title = store
        .list_documents(page(DocumentFilter::default(), DocumentSort::Title))
        .await
        .unwrap();
    assert_eq!(ids(by_title), (vec![alpha.id.clone(), beta.id.clone()], 2));
    let filters = [
        DocumentFilter {
            tags: vec!["b".into()],
            ..DocumentFilter::default()
        },
        DocumentFilter {
            model_name: Some("claude".into()),
            ..DocumentFilter::default()
        },
        DocumentFilter {
            source: Some("ai_generated".into()),
            ..DocumentFilter::default()
        },
    ];
    for filter in filters {
        let listed = store
            .list_documents(page(filter, DocumentSort::DateDesc))
            .await
            .unwrap();
        assert_eq!(ids(listed), (vec![alpha.id.clone()], 1));
    }
    let mut searched = page(DocumentFilter::default(), DocumentSort::DateAsc);
    searched.search = Some("sql".into());
    assert_eq!(
        ids(store.list_documents(searched).await.unwrap()),
        (vec![beta.id.clone()], 1)
    );

    let update = DocumentUpdate {
        operation: UpdateOperation::Append,
        content: "more about rust".into(),
        tags: None,
        model: None,
        change_summary: Some("added".into()),
        update_reason: None,
        changes_from_prompt: None,
    };
    let updated = store
        .update_document(&alpha.id, update)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(updated.version, 2);
    let (full, versions) = store
        .get_document(&alpha.id, true, true)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(full.content, "alpha text about rust\n\nmore about rust");
    assert_eq!(
        versions.iter().map(|v| v.version).collect::<Vec<_>>(),
        [2, 1]
    );
    assert_eq!(versions[1].content, "alpha text about rust");
    assert_eq!(versions[1].created_by.as_ref().unwrap().name, "Claude");
    let (plain, none) = store
        .get_document(&alpha.id, false, false)
        .await
        .unwrap()
        .unwrap();
    assert!(plain.content.is_empty() && none.is_empty());

    assert!(store.delete_document(&alpha.id).await.unwrap());
    assert!(!store.delete_document(&alpha.id).await.unwrap());
    assert!(
        store
            .get_document(&alpha.id, false, false)
            .await
            .unwrap()
            .is_none()
    );
    let search = DocumentSearch {
        query: "rust".into(),
        filter: DocumentFilter::default(),
        limit: 10,
    };
    assert!(
        store.search_documents(search).await.unwrap().is_empty(),
        "its index went too"
    );
}

async fn search_ranks_highlights_falls_back_to_any_word_and_is_deterministic(place: &Place) {
    let store = place.open().await;
    let strong = created(
        store
            .create_document(document(
                "Vector databases",
                "Vector databases store embeddings. Vector search over embeddings needs an index.",
            ))
            .await
            .unwrap(),
    );
    let weak = created(
        store
            .create_document(document(
                "Cooking",
                "A recipe that mentions a vector once, among onions, garlic, tomatoes and basil.",
            ))
            .await
            .unwrap(),
    );
    let filler = "Unrelated filler sentence about the weather. ".repeat(80);
    let long = created(
        store
            .create_document(document(
                "Annual report",
                &format!("{filler}\n\nThe zeppelin section explains airships.\n\n{filler}"),
            ))
            .await
            .unwrap(),
    );
    let battery = created(
        store
            .create_document(document(
                "Battery",
                "The battery lasts **two hours** on a full charge. Charging takes one hour.",
            ))
            .await
            .unwrap(),
    );
    let search = |query: &str, limit| DocumentSearch {
        query: query.into(),
        filter: DocumentFilter::default(),
        limit,
    };
    let ids = |hits: &[DocumentHit]| -> Vec<String> {
        hits.iter().map(|hit| hit.document.id.clone()).collect()
    };

    let hits = store.search_documents(search("vector", 10)).await.unwrap();
    assert_eq!(ids(&hits), [strong.id.clone(), weak.id.clone()]);
    assert_eq!(hits[0].relevance, 1.0);
    assert!(hits[1].relevance < 1.0);
    assert!(
        hits[0].snippet.contains("**Vector** databases store"),
        "{}",
        hits[0].snippet
    );
    assert!(hits[0].document.content.is_empty());
    let again = store.search_documents(search("vector", 10)).await.unwrap();
    assert_eq!(hits, again, "same library, same answer");
    let one = store.search_documents(search("vector", 1)).await.unwrap();
    assert_eq!(ids(&one), [strong.id.as_str()]);

    // The matching passage deep in a long document is its own chunk.
    let deep = store
        .search_documents(search("zeppelin airships", 10))
        .await
        .unwrap();
    assert_eq!(ids(&deep), [long.id.as_str()]);
    assert!(
        deep[0]
            .snippet
            .contains("**zeppelin** section explains **airships**")
    );
    assert!(deep[0].passage.contains("zeppelin") && deep[0].passage.len() <= 1600);

    // No document has both words: any of them will do. Query syntax is only text.
    let either = store
        .search_documents(search("garlic embeddings", 10))
        .await
        .unwrap();
    assert_eq!(either.len(), 2);
    for odd in [
        "title:vector AND (NEAR \"x",
        "a & !b | c <-> 'd'",
        "\\ ' \" :*",
    ] {
        store.search_documents(search(odd, 10)).await.unwrap();
    }

    // The text's own bold never doubles a highlight; adjacent matches are one run.
    let found = store
        .search_documents(search("two hours", 10))
        .await
        .unwrap();
    assert_eq!(ids(&found), [battery.id.as_str()]);
    assert!(
        found[0].snippet.contains("lasts **two hours** on"),
        "{}",
        found[0].snippet
    );
    assert!(!found[0].snippet.contains("****"), "{}", found[0].snippet);
    let question = store
        .search_documents(search("how long does the battery last", 10))
        .await
        .unwrap();
    assert_eq!(ids(&question), [battery.id]);
}

async fn a_batch_keeps_the_good_documents_and_reports_the_bad(place: &Place) {
    let store = place.open().await;
    let first = document("One", "the first text");
    let results = store
        .create_documents(vec![
            first.clone(),
            document("Two", "the second text"),
            first,
        ])
        .await;
    assert_eq!(results.len(), 3);
    assert!(matches!(results[0], Ok(DocumentCreate::Created(_))));
    assert!(matches!(results[1], Ok(DocumentCreate::Created(_))));
    assert!(matches!(results[2], Ok(DocumentCreate::Duplicate(_))));
    let all = DocumentList {
        limit: 10,
        ..DocumentList::default()
    };
    assert_eq!(store.list_documents(all).await.unwrap().1, 2);
}
