//! The schema owner: every table, index and trigger of the local store, as numbered migrations.
//! `PRAGMA user_version` holds the number applied; [`migrate`] applies the missing ones in one
//! `BEGIN IMMEDIATE` transaction, so two processes starting together cannot both apply them, and
//! refuses a database written by a newer version instead of guessing at it.

use rusqlite::{Connection, TransactionBehavior};

use crate::control::{ControlError, Result};

/// The migrations, in order; migration `n` (1-based) brings the schema to version `n`. Never
/// edit one that has shipped: add another.
const MIGRATIONS: &[&str] = &[
    // 1: settings, server ids, catalog cache, notifications, clipboard, memory, activity.
    r#"
    CREATE TABLE meta (
        key   TEXT PRIMARY KEY,
        value TEXT NOT NULL
    );
    INSERT INTO meta (key, value) VALUES ('settings_version', '0');

    CREATE TABLE server_ids (
        name TEXT PRIMARY KEY,
        uuid TEXT NOT NULL UNIQUE
    );

    CREATE TABLE catalog_cache (
        uuid       TEXT PRIMARY KEY,
        name       TEXT NOT NULL,
        lists      TEXT NOT NULL,
        updated_at INTEGER NOT NULL
    );

    CREATE TABLE notifications (
        id         TEXT PRIMARY KEY,
        kind       TEXT NOT NULL,
        title      TEXT NOT NULL,
        message    TEXT NOT NULL,
        severity   TEXT NOT NULL,
        link       TEXT,
        read       INTEGER NOT NULL DEFAULT 0,
        completed  INTEGER NOT NULL DEFAULT 0,
        created_at INTEGER NOT NULL,
        expires_at INTEGER
    );
    CREATE INDEX notifications_by_time ON notifications (created_at);

    CREATE TABLE clipboard (
        uuid             TEXT PRIMARY KEY,
        name             TEXT UNIQUE,
        idx              INTEGER UNIQUE,
        value            TEXT NOT NULL,
        content_type     TEXT NOT NULL,
        encoding         TEXT NOT NULL,
        size_bytes       INTEGER NOT NULL,
        visibility       TEXT NOT NULL,
        created_by_tool  TEXT,
        created_by_model TEXT,
        source           TEXT NOT NULL,
        created_at       INTEGER NOT NULL,
        updated_at       INTEGER NOT NULL,
        expires_at       INTEGER
    );

    CREATE TABLE memory_sessions (
        uuid               TEXT PRIMARY KEY,
        memory_session_id  TEXT NOT NULL UNIQUE,
        content_session_id TEXT NOT NULL,
        agent_uuid         TEXT,
        active             INTEGER NOT NULL DEFAULT 1,
        started_at         INTEGER NOT NULL,
        ended_at           INTEGER
    );

    CREATE TABLE observations (
        id           INTEGER PRIMARY KEY,
        uuid         TEXT NOT NULL UNIQUE,
        session_uuid TEXT NOT NULL REFERENCES memory_sessions (uuid) ON DELETE CASCADE,
        type         TEXT NOT NULL,
        ring_type    TEXT NOT NULL,
        content      TEXT NOT NULL,
        outcome      TEXT,
        metadata     TEXT,
        access_count INTEGER NOT NULL DEFAULT 0,
        created_at   INTEGER NOT NULL
    );
    CREATE VIRTUAL TABLE observations_fts USING fts5 (
        content, content = 'observations', content_rowid = 'id', tokenize = 'porter unicode61'
    );
    CREATE TRIGGER observations_ai AFTER INSERT ON observations BEGIN
        INSERT INTO observations_fts (rowid, content) VALUES (new.id, new.content);
    END;
    CREATE TRIGGER observations_ad AFTER DELETE ON observations BEGIN
        INSERT INTO observations_fts (observations_fts, rowid, content)
        VALUES ('delete', old.id, old.content);
    END;

    CREATE TABLE activity (
        id          INTEGER PRIMARY KEY,
        at          INTEGER NOT NULL,
        action      TEXT NOT NULL,
        server_name TEXT NOT NULL,
        server_uuid TEXT NOT NULL,
        item        TEXT NOT NULL,
        duration_ms INTEGER NOT NULL,
        success     INTEGER NOT NULL,
        error       TEXT
    );
    CREATE INDEX activity_by_time ON activity (at);

    CREATE TABLE disabled_servers (name TEXT PRIMARY KEY);
    CREATE TABLE disabled_tools (name TEXT PRIMARY KEY);
    CREATE TABLE workspaces (
        name       TEXT PRIMARY KEY,
        created_at INTEGER NOT NULL
    );
    CREATE TABLE workspace_servers (
        workspace TEXT NOT NULL REFERENCES workspaces (name) ON DELETE CASCADE,
        server    TEXT NOT NULL,
        PRIMARY KEY (workspace, server)
    );
    "#,
    // 2: the document library. `documents` holds the current text; `document_versions` the
    // earlier ones. Long documents are split into chunks, which the full-text index covers: a
    // chunk is a character range of its document's content (no copy of the text), and the FTS5
    // table is an external-content index over the view `document_chunk_text`, so `snippet()`
    // reads the text from the document itself. The index is written by the documents module,
    // not by triggers, because deleting from it needs the old text.
    r#"
    CREATE TABLE documents (
        pk             INTEGER PRIMARY KEY,
        id             TEXT NOT NULL UNIQUE,
        title          TEXT NOT NULL,
        description    TEXT,
        content        TEXT NOT NULL,
        format         TEXT NOT NULL,
        tags           TEXT NOT NULL,
        category       TEXT NOT NULL,
        source         TEXT NOT NULL,
        visibility     TEXT NOT NULL,
        model_name     TEXT,
        model_provider TEXT,
        model_version  TEXT,
        ai_metadata    TEXT NOT NULL,
        parent_id      TEXT,
        file_name      TEXT,
        content_hash   TEXT NOT NULL,
        size_bytes     INTEGER NOT NULL,
        version        INTEGER NOT NULL,
        created_at     INTEGER NOT NULL,
        updated_at     INTEGER NOT NULL,
        updated_by_name     TEXT,
        updated_by_provider TEXT,
        updated_by_version  TEXT,
        change_summary      TEXT,
        update_reason       TEXT,
        changes_from_prompt TEXT
    );
    CREATE INDEX documents_by_time ON documents (created_at, id);
    -- Not unique: creating deduplicates, but an update may arrive at another document's text.
    CREATE INDEX documents_by_hash ON documents (content_hash);

    CREATE TABLE document_versions (
        document            INTEGER NOT NULL REFERENCES documents (pk) ON DELETE CASCADE,
        version             INTEGER NOT NULL,
        content             TEXT NOT NULL,
        content_hash        TEXT NOT NULL,
        created_at          INTEGER NOT NULL,
        model_name          TEXT,
        model_provider      TEXT,
        model_version       TEXT,
        change_summary      TEXT,
        update_reason       TEXT,
        changes_from_prompt TEXT,
        PRIMARY KEY (document, version)
    ) WITHOUT ROWID;

    CREATE TABLE document_chunks (
        id       INTEGER PRIMARY KEY,
        document INTEGER NOT NULL REFERENCES documents (pk) ON DELETE CASCADE,
        start    INTEGER NOT NULL,
        length   INTEGER NOT NULL
    );
    CREATE INDEX document_chunks_by_document ON document_chunks (document);

    CREATE VIEW document_chunk_text (id, title, body) AS
        SELECT c.id, d.title, substr(d.content, c.start + 1, c.length)
        FROM document_chunks c JOIN documents d ON d.pk = c.document;

    CREATE VIRTUAL TABLE document_chunks_fts USING fts5 (
        title, body,
        content = 'document_chunk_text', content_rowid = 'id',
        tokenize = 'porter unicode61'
    );
    "#,
    // 3: what the HTTP rate limit refused, one row per period (a minute) with refusals.
    r#"
    CREATE TABLE rate_limited (
        at         INTEGER NOT NULL,
        tool_calls INTEGER NOT NULL,
        requests   INTEGER NOT NULL
    );
    CREATE INDEX rate_limited_by_time ON rate_limited (at);
    "#,
    // 4: what a session's `tools/list` shows while a workspace is active (`all`, `search`, or
    // NULL: what the flag says).
    r#"
    ALTER TABLE workspaces ADD COLUMN tool_exposure TEXT;
    "#,
];

/// The schema version this build writes.
pub(super) const VERSION: i64 = MIGRATIONS.len() as i64;

/// Applies the missing migrations; refuses a database from a newer version.
pub(super) fn migrate(connection: &mut Connection, path: &str) -> Result<()> {
    let transaction = connection.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let current: i64 = transaction.query_row("PRAGMA user_version", [], |row| row.get(0))?;
    if current > VERSION {
        return Err(ControlError::Open {
            path: path.to_owned(),
            message: format!(
                "it has schema version {current}, written by a newer pluggedin-mcp-proxy \
                 (this one knows up to {VERSION}); upgrade this binary or use another --data-dir"
            ),
        });
    }
    for (index, migration) in MIGRATIONS.iter().enumerate().skip(current as usize) {
        transaction.execute_batch(migration)?;
        transaction.pragma_update(None, "user_version", index as i64 + 1)?;
        tracing::info!(version = index + 1, "local store migrated");
    }
    transaction.commit()?;
    Ok(())
}
