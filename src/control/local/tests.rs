//! What only the SQLite store does: the server ids of its JSON file, its schema version in
//! `PRAGMA user_version`, its write helper. The control plane's contract is tested on both
//! stores in `control::tests`.

use super::*;

#[tokio::test]
async fn server_uuids_are_stable_and_legacy_ids_are_imported() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("server-ids.json"),
        r#"{"old": "550e8400-e29b-41d4-a716-446655440000"}"#,
    )
    .unwrap();
    let store = LocalStore::open(Some(dir.path())).unwrap();
    assert_eq!(
        store.server_uuid("old").await.unwrap(),
        "550e8400-e29b-41d4-a716-446655440000"
    );
    let new = store.server_uuid("new").await.unwrap();
    drop(store);
    let again = LocalStore::open(Some(dir.path())).unwrap();
    assert_eq!(again.server_uuid("new").await.unwrap(), new);
}

#[test]
fn a_store_from_a_newer_version_is_refused_with_a_clear_message() {
    let dir = tempfile::tempdir().unwrap();
    drop(LocalStore::open(Some(dir.path())).unwrap());
    let connection = rusqlite::Connection::open(dir.path().join(FILE_NAME)).unwrap();
    connection.pragma_update(None, "user_version", 99).unwrap();
    drop(connection);
    let error = LocalStore::open(Some(dir.path()))
        .err()
        .unwrap()
        .to_string();
    assert!(error.contains("schema version 99"), "{error}");
    assert!(error.contains("newer pluggedin-mcp-proxy"), "{error}");
}

#[tokio::test]
async fn writes_outside_the_write_helper_are_refused_and_a_failed_write_leaves_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let store = LocalStore::open(Some(dir.path())).unwrap();
    let stray = |store: LocalStore| async move {
        store
            .read(|c| Ok(c.execute("DELETE FROM clipboard", [])?))
            .await
    };
    let error = stray(store.clone()).await.unwrap_err().to_string();
    assert!(error.contains("readonly database"), "{error}");

    let failed = store
        .write(|t| {
            t.execute("INSERT INTO meta (key, value) VALUES ('probe', '1')", [])?;
            Err::<(), _>(ControlError::Invalid("stopped halfway".into()))
        })
        .await;
    assert!(failed.is_err());
    let probes: i64 = store
        .read(|c| {
            Ok(
                c.query_row("SELECT count(*) FROM meta WHERE key = 'probe'", [], |row| {
                    row.get(0)
                })?,
            )
        })
        .await
        .unwrap();
    assert_eq!(probes, 0, "a failed write was rolled back");
    // After a write, the connection is read-only again.
    assert!(stray(store).await.is_err());
}
