//! The schema owner of the PostgreSQL store, as numbered migrations: the table
//! `pluggedin_schema` holds one row per migration applied. [`migrate`] applies the missing ones
//! in one transaction under the store's write lock, so proxies starting together cannot both
//! apply them, and refuses a database written by a newer version instead of guessing at it.
//! The tables are the SQLite store's, in PostgreSQL's types; full-text search is a `tsvector`
//! per document chunk and per observation, each with a GIN index.

use tokio_postgres::Client;

use super::WRITE_LOCK;
use crate::control::{ControlError, Result};

/// The migrations, in order; migration `n` (1-based) brings the schema to version `n`. Never
/// edit one that has shipped: add another.
const MIGRATIONS: &[&str] = &[
    // 1: everything the SQLite store has after its third migration. Text is compared and sorted
    // in the "C" collation where order matters, as SQLite compares bytes.
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
        updated_at BIGINT NOT NULL
    );

    CREATE TABLE notifications (
        seq        BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        id         TEXT NOT NULL UNIQUE,
        kind       TEXT NOT NULL,
        title      TEXT NOT NULL,
        message    TEXT NOT NULL,
        severity   TEXT NOT NULL,
        link       TEXT,
        read       BOOLEAN NOT NULL DEFAULT FALSE,
        completed  BOOLEAN NOT NULL DEFAULT FALSE,
        created_at BIGINT NOT NULL,
        expires_at BIGINT
    );
    CREATE INDEX notifications_by_time ON notifications (created_at);

    CREATE TABLE clipboard (
        uuid             TEXT PRIMARY KEY,
        name             TEXT COLLATE "C" UNIQUE,
        idx              BIGINT UNIQUE,
        value            TEXT NOT NULL,
        content_type     TEXT NOT NULL,
        encoding         TEXT NOT NULL,
        size_bytes       BIGINT NOT NULL,
        visibility       TEXT NOT NULL,
        created_by_tool  TEXT,
        created_by_model TEXT,
        source           TEXT NOT NULL,
        created_at       BIGINT NOT NULL,
        updated_at       BIGINT NOT NULL,
        expires_at       BIGINT
    );

    CREATE TABLE memory_sessions (
        uuid               TEXT PRIMARY KEY,
        memory_session_id  TEXT NOT NULL UNIQUE,
        content_session_id TEXT NOT NULL,
        agent_uuid         TEXT,
        active             BOOLEAN NOT NULL DEFAULT TRUE,
        started_at         BIGINT NOT NULL,
        ended_at           BIGINT
    );

    CREATE TABLE observations (
        id           BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        uuid         TEXT NOT NULL UNIQUE,
        session_uuid TEXT NOT NULL REFERENCES memory_sessions (uuid) ON DELETE CASCADE,
        type         TEXT NOT NULL,
        ring_type    TEXT NOT NULL,
        content      TEXT NOT NULL,
        outcome      TEXT,
        metadata     TEXT,
        access_count BIGINT NOT NULL DEFAULT 0,
        created_at   BIGINT NOT NULL,
        search       TSVECTOR GENERATED ALWAYS AS (to_tsvector('english', content)) STORED
    );
    CREATE INDEX observations_by_session ON observations (session_uuid);
    CREATE INDEX observations_search ON observations USING GIN (search);

    CREATE TABLE activity (
        id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        at          BIGINT NOT NULL,
        action      TEXT NOT NULL,
        server_name TEXT COLLATE "C" NOT NULL,
        server_uuid TEXT NOT NULL,
        item        TEXT COLLATE "C" NOT NULL,
        duration_ms BIGINT NOT NULL,
        success     BOOLEAN NOT NULL,
        error       TEXT
    );
    CREATE INDEX activity_by_time ON activity (at);

    CREATE TABLE rate_limited (
        at         BIGINT NOT NULL,
        tool_calls BIGINT NOT NULL,
        requests   BIGINT NOT NULL
    );
    CREATE INDEX rate_limited_by_time ON rate_limited (at);

    CREATE TABLE disabled_servers (name TEXT PRIMARY KEY);
    CREATE TABLE disabled_tools (name TEXT PRIMARY KEY);
    CREATE TABLE workspaces (
        name       TEXT PRIMARY KEY,
        created_at BIGINT NOT NULL
    );
    CREATE TABLE workspace_servers (
        workspace TEXT NOT NULL REFERENCES workspaces (name) ON DELETE CASCADE,
        server    TEXT NOT NULL,
        PRIMARY KEY (workspace, server)
    );

    -- The document library: `documents` holds the current text, `document_versions` the
    -- earlier ones. A chunk is a character range of its document's content (no copy of the
    -- text) with its own `tsvector` (the title weighted A, the chunk's text B), written by the
    -- documents module with the chunk; snippets read the text from the document.
    CREATE TABLE documents (
        pk             BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        id             TEXT NOT NULL UNIQUE,
        title          TEXT NOT NULL,
        description    TEXT,
        content        TEXT NOT NULL,
        format         TEXT NOT NULL,
        tags           TEXT[] NOT NULL,
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
        size_bytes     BIGINT NOT NULL,
        version        BIGINT NOT NULL,
        created_at     BIGINT NOT NULL,
        updated_at     BIGINT NOT NULL,
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
        document            BIGINT NOT NULL REFERENCES documents (pk) ON DELETE CASCADE,
        version             BIGINT NOT NULL,
        content             TEXT NOT NULL,
        content_hash        TEXT NOT NULL,
        created_at          BIGINT NOT NULL,
        model_name          TEXT,
        model_provider      TEXT,
        model_version       TEXT,
        change_summary      TEXT,
        update_reason       TEXT,
        changes_from_prompt TEXT,
        PRIMARY KEY (document, version)
    );

    CREATE TABLE document_chunks (
        id       BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        document BIGINT NOT NULL REFERENCES documents (pk) ON DELETE CASCADE,
        start    INTEGER NOT NULL,
        length   INTEGER NOT NULL,
        search   TSVECTOR NOT NULL
    );
    CREATE INDEX document_chunks_by_document ON document_chunks (document);
    CREATE INDEX document_chunks_search ON document_chunks USING GIN (search);
    "#,
    // 2: a fleet of proxies on one database: the replicas serving (their address for each
    // other, a heartbeat by the database's clock) and the HTTP sessions they share. Additive:
    // a build that knows only version 1 runs on it unchanged.
    r#"
    CREATE TABLE replicas (
        id         BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        url        TEXT NOT NULL,
        version    TEXT NOT NULL,
        started_at BIGINT NOT NULL,
        seen_at    BIGINT NOT NULL,
        draining   BOOLEAN NOT NULL DEFAULT FALSE
    );

    CREATE TABLE sessions (
        id         TEXT PRIMARY KEY,
        home       BIGINT,
        init       TEXT NOT NULL,
        owner      BYTEA,
        anonymous  BOOLEAN NOT NULL,
        state      TEXT NOT NULL,
        created_at BIGINT NOT NULL,
        used_at    BIGINT NOT NULL
    );
    CREATE INDEX sessions_by_home ON sessions (home);
    "#,
    // 3: rate limits shared by a fleet: per key (a token's SHA-256 or a client address, as
    // bytes) and kind (0 tool calls, 1 other requests), the window's start by the database's
    // clock and the fleet's count in it. Additive.
    r#"
    CREATE TABLE rate_windows (
        kind    SMALLINT NOT NULL,
        key     BYTEA NOT NULL,
        started BIGINT NOT NULL,
        count   BIGINT NOT NULL,
        PRIMARY KEY (kind, key)
    );
    CREATE INDEX rate_windows_by_start ON rate_windows (started);
    "#,
    // 4: which replica runs each server of fleet scope (the holder of its advisory lock says
    // so here, with its backend's process id, for the others to find its address). Additive.
    r#"
    CREATE TABLE server_owners (
        server  TEXT PRIMARY KEY,
        replica BIGINT NOT NULL,
        holder  INTEGER NOT NULL
    );
    "#,
    // 5: the statistics BM25 ranks documents with, which a `tsvector` does not keep: each
    // chunk's length in words (its title's and its text's, as FTS5 counts them), how many
    // chunks hold each lexeme, and the chunks and their words in total. The documents module
    // keeps them with every write; here they are counted once from what the index holds.
    r#"
    ALTER TABLE document_chunks ADD COLUMN words INTEGER NOT NULL DEFAULT 0;
    UPDATE document_chunks c
    SET words = (SELECT count(*) FROM regexp_matches(d.title, '[[:alnum:]]+', 'g'))
              + (SELECT count(*)
                 FROM regexp_matches(substr(d.content, c.start + 1, c.length),
                                     '[[:alnum:]]+', 'g'))
    FROM documents d WHERE d.pk = c.document;

    CREATE TABLE document_terms (
        lexeme TEXT COLLATE "C" PRIMARY KEY,
        chunks BIGINT NOT NULL
    );
    INSERT INTO document_terms (lexeme, chunks)
    SELECT lexeme, count(*)
    FROM document_chunks, unnest(tsvector_to_array(search)) AS lexeme
    GROUP BY lexeme;

    CREATE TABLE document_index (
        one    BOOLEAN PRIMARY KEY DEFAULT TRUE CHECK (one),
        chunks BIGINT NOT NULL,
        words  BIGINT NOT NULL
    );
    INSERT INTO document_index (chunks, words)
    SELECT count(*), coalesce(sum(words), 0) FROM document_chunks;
    "#,
    // 6: what a session's `tools/list` shows while a workspace is active (`all`, `search`, or
    // NULL: what the flag says). Additive: a build that knows only the ones before it creates
    // workspaces without it (NULL) and serves every tool, as it always did.
    r#"
    ALTER TABLE workspaces ADD COLUMN tool_exposure TEXT;
    "#,
];

/// For each migration, the oldest schema version whose builds still run on the schema it makes:
/// an additive migration keeps the previous one's, so a fleet can restart one replica at a time
/// onto a new version while the others still run the old one on the same database.
/// The BM25 statistics' migration is not additive: a build that knows only the ones before it
/// would write documents without counting them in the statistics BM25 ranks with.
const READABLE_BY: [i64; MIGRATIONS.len()] = [1, 1, 1, 1, BM25_STATISTICS, BM25_STATISTICS];

/// The migration that adds the statistics BM25 ranks documents with.
pub(super) const BM25_STATISTICS: i64 = 5;

/// The schema version this build writes.
pub(super) const VERSION: i64 = MIGRATIONS.len() as i64;

/// Applies the missing migrations; refuses a database from a newer version. `shown` names the
/// database in errors.
pub(super) async fn migrate(client: &mut Client, shown: &str) -> Result<()> {
    let transaction = client.transaction().await?;
    transaction
        .execute("SELECT pg_advisory_xact_lock($1)", &[&WRITE_LOCK])
        .await?;
    transaction
        .batch_execute(
            "CREATE TABLE IF NOT EXISTS pluggedin_schema (
                 version    BIGINT PRIMARY KEY,
                 applied_at TIMESTAMPTZ NOT NULL DEFAULT now()
             )",
        )
        .await?;
    let current: i64 = transaction
        .query_one(
            "SELECT coalesce(max(version), 0) FROM pluggedin_schema",
            &[],
        )
        .await?
        .try_get(0)?;
    // A newer schema says which builds still run on it; without the row, none older does.
    let readable_by = if current > VERSION {
        transaction
            .query_opt(
                "SELECT value FROM meta WHERE key = 'schema_readable_by'",
                &[],
            )
            .await?
            .and_then(|row| row.try_get::<_, String>(0).ok())
            .and_then(|value| value.parse().ok())
            .unwrap_or(current)
    } else {
        current
    };
    if current > VERSION && readable_by <= VERSION {
        tracing::info!(
            schema = current,
            this = VERSION,
            "PostgreSQL store written by a newer pluggedin-mcp-proxy whose schema this one still \
             runs on (a rolling restart)"
        );
        transaction.commit().await?;
        return Ok(());
    }
    if current > VERSION {
        return Err(ControlError::Open {
            path: shown.to_owned(),
            message: format!(
                "it has schema version {current}, written by a newer pluggedin-mcp-proxy \
                 (this one knows up to {VERSION}); upgrade this binary or use another \
                 --database-url"
            ),
        });
    }
    for (index, migration) in MIGRATIONS.iter().enumerate().skip(current as usize) {
        let version = index as i64 + 1;
        transaction.batch_execute(migration).await?;
        transaction
            .execute(
                "INSERT INTO pluggedin_schema (version) VALUES ($1)",
                &[&version],
            )
            .await?;
        tracing::info!(version, "PostgreSQL store migrated");
    }
    if current < VERSION {
        let readable_by = READABLE_BY[VERSION as usize - 1].to_string();
        transaction
            .execute(
                "INSERT INTO meta (key, value) VALUES ('schema_readable_by', $1)
                 ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                &[&readable_by],
            )
            .await?;
    }
    transaction.commit().await?;
    Ok(())
}
