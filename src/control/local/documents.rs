//! The document library: documents, their earlier versions, and a BM25 full-text index over
//! chunks of their text. A chunk is a character range of the content, not a copy; the FTS5 index
//! reads its text through the `document_chunk_text` view (schema migration 2). Every write is one
//! transaction, so a failure leaves nothing half-written. Search order is bm25, then chunk id:
//! the same library answers the same query the same way.

use crate::control::library::{
    self, MARK_CLOSE, MARK_OPEN, MIN_RELEVANCE, Term, chunks, content_hash, highlight, model,
    writer,
};
use crate::control::time::now_ms;
use crate::control::{
    ControlError, Document, DocumentCreate, DocumentFilter, DocumentHit, DocumentList,
    DocumentSearch, DocumentSort, DocumentUpdate, DocumentVersion, NewDocument, Result,
    UpdateOperation,
};
use rusqlite::types::Value as SqlValue;
use rusqlite::{Connection, OptionalExtension, Row, Transaction, params, params_from_iter};

/// Words of context `snippet()` shows around the matches.
const SNIPPET_TOKENS: i32 = 24;
/// bm25 column weights: a match in the title counts double.
const BM25: &str = "bm25(document_chunks_fts, 2.0, 1.0)";

const COLUMNS: &str = "d.id, d.title, d.description, d.format, d.tags, d.category, d.source, \
     d.visibility, d.model_name, d.model_provider, d.model_version, d.ai_metadata, d.parent_id, \
     d.file_name, d.content_hash, d.size_bytes, d.version, d.created_at, d.updated_at, \
     d.updated_by_name, d.updated_by_provider, d.updated_by_version, d.change_summary, \
     d.update_reason, d.changes_from_prompt";

/// A document from a row of [`COLUMNS`] (and the content at index 25, if selected).
fn document_from_row(row: &Row<'_>) -> rusqlite::Result<Document> {
    let tags: String = row.get(4)?;
    let metadata: String = row.get(11)?;
    Ok(Document {
        id: row.get(0)?,
        title: row.get(1)?,
        description: row.get(2)?,
        format: row.get(3)?,
        tags: serde_json::from_str(&tags).unwrap_or_default(),
        category: row.get(5)?,
        source: row.get(6)?,
        visibility: row.get(7)?,
        model: model(row.get(8)?, row.get(9)?, row.get(10)?),
        ai_metadata: serde_json::from_str(&metadata).unwrap_or_default(),
        parent_id: row.get(12)?,
        file_name: row.get(13)?,
        content_hash: row.get(14)?,
        size_bytes: row.get(15)?,
        version: row.get(16)?,
        created_at: row.get(17)?,
        updated_at: row.get(18)?,
        updated_by: model(row.get(19)?, row.get(20)?, row.get(21)?),
        change_summary: row.get(22)?,
        update_reason: row.get(23)?,
        changes_from_prompt: row.get(24)?,
        content: row
            .get::<_, Option<String>>(25)
            .ok()
            .flatten()
            .unwrap_or_default(),
    })
}

/// The FTS5 queries for a user's text: all terms (AND), and any term (OR) as the fallback when
/// nothing has them all. Words are lower-cased and quoted, `"quoted phrases"` stay phrases and
/// a trailing `*` makes a prefix, so FTS5 syntax in the text never becomes an operator. `None`
/// when the text has no words.
pub(crate) fn fts_queries(text: &str) -> Option<(String, String)> {
    let terms: Vec<String> = library::search_terms(text)
        .into_iter()
        .map(|term| match term {
            Term::Phrase(words) => format!("\"{}\"", words.join(" ")),
            Term::Word { word, prefix } => format!("\"{word}\"{}", if prefix { "*" } else { "" }),
        })
        .collect();
    if terms.is_empty() {
        return None;
    }
    Some((terms.join(" "), terms.join(" OR ")))
}

/// The filter's conditions on `documents d`, with their parameters appended to `values`.
fn filter_sql(filter: &DocumentFilter, values: &mut Vec<SqlValue>) -> String {
    let mut sql = String::new();
    let mut equal = |column: &str, value: &Option<String>, nocase: bool, sql: &mut String| {
        if let Some(value) = value {
            values.push(SqlValue::Text(value.clone()));
            let collate = if nocase { " COLLATE NOCASE" } else { "" };
            sql.push_str(&format!(" AND d.{column} = ?{}{collate}", values.len()));
        }
    };
    let source = filter.source.clone().filter(|source| source != "all");
    equal("source", &source, false, &mut sql);
    equal("model_name", &filter.model_name, true, &mut sql);
    equal("model_provider", &filter.model_provider, true, &mut sql);
    equal("category", &filter.category, false, &mut sql);
    equal("visibility", &filter.visibility, false, &mut sql);
    for tag in &filter.tags {
        values.push(SqlValue::Text(tag.clone()));
        sql.push_str(&format!(
            " AND EXISTS (SELECT 1 FROM json_each(d.tags) WHERE value = ?{})",
            values.len()
        ));
    }
    if let Some(from) = filter.created_from {
        values.push(SqlValue::Integer(from));
        sql.push_str(&format!(" AND d.created_at >= ?{}", values.len()));
    }
    if let Some(to) = filter.created_to {
        values.push(SqlValue::Integer(to));
        sql.push_str(&format!(" AND d.created_at <= ?{}", values.len()));
    }
    sql
}

fn has_filters(filter: &DocumentFilter) -> bool {
    filter
        .source
        .as_deref()
        .is_some_and(|source| source != "all")
        || filter.model_name.is_some()
        || filter.model_provider.is_some()
        || !filter.tags.is_empty()
        || filter.category.is_some()
        || filter.visibility.is_some()
        || filter.created_from.is_some()
        || filter.created_to.is_some()
}

fn json_text(value: &impl serde::Serialize) -> String {
    serde_json::to_string(value).expect("tags and metadata serialize")
}

/// Adds chunks of document `pk` to the index.
fn index(transaction: &Connection, pk: i64, title: &str, content: &str) -> Result<()> {
    let mut chunk = transaction.prepare_cached(
        "INSERT INTO document_chunks (document, start, length) VALUES (?1, ?2, ?3)",
    )?;
    let mut fts = transaction.prepare_cached(
        "INSERT INTO document_chunks_fts (rowid, title, body) VALUES (?1, ?2, ?3)",
    )?;
    // The byte offset of each character, and of the end: chunks are in characters (SQLite's
    // substr counts characters), the text to index is sliced in bytes.
    let mut offsets = content
        .char_indices()
        .map(|(at, _)| at)
        .chain([content.len()]);
    let (mut from, mut next) = (0, 0);
    for (start, length) in chunks(content) {
        let end = start + length;
        let to = offsets.nth(end - next).unwrap_or(content.len());
        next = end + 1;
        chunk.execute(params![pk, start as i64, length as i64])?;
        fts.execute(params![
            transaction.last_insert_rowid(),
            title,
            &content[from..to]
        ])?;
        from = to;
    }
    Ok(())
}

/// Removes document `pk`'s chunks from the index (reading their text before it changes).
fn unindex(transaction: &Transaction<'_>, pk: i64) -> Result<()> {
    transaction.execute(
        "INSERT INTO document_chunks_fts (document_chunks_fts, rowid, title, body)
         SELECT 'delete', id, title, body FROM document_chunk_text
         WHERE id IN (SELECT id FROM document_chunks WHERE document = ?1)",
        [pk],
    )?;
    transaction.execute("DELETE FROM document_chunks WHERE document = ?1", [pk])?;
    Ok(())
}

fn find(transaction: &Connection, id: &str, with_content: bool) -> Result<Option<(i64, Document)>> {
    let content = if with_content { ", d.content" } else { "" };
    Ok(transaction
        .query_row(
            &format!("SELECT {COLUMNS}{content}, d.pk FROM documents d WHERE d.id = ?1"),
            [id],
            |row| {
                let pk: i64 = row.get(if with_content { 26 } else { 25 })?;
                let mut document = document_from_row(row)?;
                if !with_content {
                    document.content.clear();
                }
                Ok((pk, document))
            },
        )
        .optional()?)
}

fn insert(transaction: &Connection, new: NewDocument) -> Result<DocumentCreate> {
    let hash = content_hash(&new.content);
    let existing: Option<String> = transaction
        .query_row(
            "SELECT id FROM documents WHERE content_hash = ?1 ORDER BY pk LIMIT 1",
            [&hash],
            |row| row.get(0),
        )
        .optional()?;
    if let Some(id) = existing {
        let (_, document) = find(transaction, &id, false)?
            .ok_or_else(|| ControlError::Invalid(format!("document {id} vanished")))?;
        return Ok(DocumentCreate::Duplicate(Box::new(document)));
    }
    let id = uuid::Uuid::new_v4().to_string();
    let now = now_ms();
    let (model_name, model_provider, model_version) = match &new.model {
        Some(m) => (
            Some(m.name.clone()),
            Some(m.provider.clone()),
            m.version.clone(),
        ),
        None => (None, None, None),
    };
    transaction
        .prepare_cached(
            "INSERT INTO documents
                 (id, title, description, content, format, tags, category, source, visibility,
                  model_name, model_provider, model_version, ai_metadata, parent_id, file_name,
                  content_hash, size_bytes, version, created_at, updated_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17,
                     1, ?18, ?18)",
        )?
        .execute(params![
            id,
            new.title,
            new.description,
            new.content,
            new.format,
            json_text(&new.tags),
            new.category,
            new.source,
            new.visibility,
            model_name,
            model_provider,
            model_version,
            json_text(&new.ai_metadata),
            new.parent_id,
            new.file_name,
            hash,
            new.content.len() as i64,
            now,
        ])?;
    let pk = transaction.last_insert_rowid();
    index(transaction, pk, &new.title, &new.content)?;
    let (_, document) = find(transaction, &id, false)?
        .ok_or_else(|| ControlError::Invalid(format!("document {id} vanished")))?;
    Ok(DocumentCreate::Created(Box::new(document)))
}

pub(super) fn create(transaction: &Transaction<'_>, new: NewDocument) -> Result<DocumentCreate> {
    let created = insert(transaction, new)?;
    Ok(created)
}

/// Adds many documents in one transaction, each in a savepoint of its own: a document that
/// fails is rolled back whole and the others stay, and the batch costs one commit instead of one
/// per document (the commit, not the insert, dominates ingest time in WAL mode).
pub(super) fn create_many(
    transaction: &mut Transaction<'_>,
    batch: Vec<NewDocument>,
) -> Vec<Result<DocumentCreate>> {
    let mut results = Vec::with_capacity(batch.len());
    for new in batch {
        let outcome = (|| {
            let savepoint = transaction.savepoint()?;
            let created = insert(&savepoint, new)?;
            savepoint.commit()?;
            Ok(created)
        })();
        results.push(outcome);
    }
    results
}

pub(super) fn list(connection: &Connection, list: &DocumentList) -> Result<(Vec<Document>, u64)> {
    let mut values = Vec::new();
    let mut conditions = filter_sql(&list.filter, &mut values);
    if let Some(search) = list.search.as_deref() {
        match fts_queries(search) {
            Some((all, _)) => {
                values.push(SqlValue::Text(all));
                conditions.push_str(&format!(
                    " AND d.pk IN (SELECT c.document FROM document_chunks_fts f
                                   JOIN document_chunks c ON c.id = f.rowid
                                   WHERE document_chunks_fts MATCH ?{})",
                    values.len()
                ));
            }
            None => return Ok((Vec::new(), 0)),
        }
    }
    let total: i64 = connection.query_row(
        &format!("SELECT count(*) FROM documents d WHERE 1 = 1{conditions}"),
        params_from_iter(values.iter()),
        |row| row.get(0),
    )?;
    let order = match list.sort {
        DocumentSort::DateDesc => "d.created_at DESC, d.id",
        DocumentSort::DateAsc => "d.created_at, d.id",
        DocumentSort::Title => "d.title COLLATE NOCASE, d.id",
        DocumentSort::Size => "d.size_bytes DESC, d.id",
    };
    values.push(SqlValue::Integer(i64::from(list.limit)));
    values.push(SqlValue::Integer(list.offset.min(i64::MAX as u64) as i64));
    let mut statement = connection.prepare(&format!(
        "SELECT {COLUMNS} FROM documents d WHERE 1 = 1{conditions}
         ORDER BY {order} LIMIT ?{} OFFSET ?{}",
        values.len() - 1,
        values.len()
    ))?;
    let documents = statement
        .query_map(params_from_iter(values.iter()), document_from_row)?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok((documents, total.max(0) as u64))
}

/// The best chunk of up to `limit` documents for one FTS5 query, best first.
fn rank(
    connection: &Connection,
    query: &str,
    filter: &DocumentFilter,
    limit: usize,
) -> Result<Vec<(i64, i64, f64)>> {
    let mut values = vec![SqlValue::Text(query.to_owned())];
    let sql = if has_filters(filter) {
        let conditions = filter_sql(filter, &mut values);
        format!(
            "SELECT f.rowid, c.document, {BM25} AS score
             FROM document_chunks_fts f
             JOIN document_chunks c ON c.id = f.rowid
             JOIN documents d ON d.pk = c.document
             WHERE document_chunks_fts MATCH ?1{conditions}
             ORDER BY score, f.rowid"
        )
    } else {
        format!(
            "SELECT f.rowid, c.document, {BM25} AS score
             FROM document_chunks_fts f
             JOIN document_chunks c ON c.id = f.rowid
             WHERE document_chunks_fts MATCH ?1
             ORDER BY score, f.rowid"
        )
    };
    let mut statement = connection.prepare_cached(&sql)?;
    let mut rows = statement.query(params_from_iter(values.iter()))?;
    let mut best: Vec<(i64, i64, f64)> = Vec::with_capacity(limit);
    let mut seen = std::collections::HashSet::new();
    while best.len() < limit
        && let Some(row) = rows.next()?
    {
        let (chunk, document, score): (i64, i64, f64) = (row.get(0)?, row.get(1)?, row.get(2)?);
        if seen.insert(document) {
            best.push((chunk, document, score));
        }
    }
    Ok(best)
}

pub(super) fn search(connection: &Connection, search: &DocumentSearch) -> Result<Vec<DocumentHit>> {
    let Some((all, any)) = fts_queries(&search.query) else {
        return Ok(Vec::new());
    };
    let limit = search.limit.max(1) as usize;
    let mut query = all;
    let mut ranked = rank(connection, &query, &search.filter, limit)?;
    if ranked.is_empty() && any != query {
        query = any;
        ranked = rank(connection, &query, &search.filter, limit)?;
    }
    // bm25 is negative, lower is better: the best hit has relevance 1.
    let best = ranked.first().map_or(0.0, |(_, _, score)| *score);
    let relevance = |score: f64| {
        if best < 0.0 {
            (score / best).clamp(0.0, 1.0)
        } else {
            1.0
        }
    };
    ranked.retain(|(_, _, score)| relevance(*score) >= MIN_RELEVANCE);
    let mut snippet = connection.prepare_cached(&format!(
        "SELECT snippet(document_chunks_fts, 1, '{MARK_OPEN}', '{MARK_CLOSE}', '…', {SNIPPET_TOKENS}),
                body
         FROM document_chunks_fts WHERE document_chunks_fts MATCH ?1 AND rowid = ?2"
    ))?;
    let mut document = connection.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM documents d WHERE d.pk = ?1"
    ))?;
    let mut hits = Vec::with_capacity(ranked.len());
    for (chunk, pk, score) in ranked {
        let (snippet, passage): (String, String) =
            snippet.query_row(params![query, chunk], |row| Ok((row.get(0)?, row.get(1)?)))?;
        hits.push(DocumentHit {
            document: document.query_row([pk], document_from_row)?,
            snippet: highlight(&snippet),
            passage,
            relevance: relevance(score),
        });
    }
    Ok(hits)
}

pub(super) fn get(
    connection: &Connection,
    id: &str,
    include_content: bool,
    include_versions: bool,
) -> Result<Option<(Document, Vec<DocumentVersion>)>> {
    let Some((pk, document)) = find(connection, id, include_content || include_versions)? else {
        return Ok(None);
    };
    let mut versions = Vec::new();
    if include_versions {
        versions.push(DocumentVersion {
            version: document.version,
            content: document.content.clone(),
            content_hash: document.content_hash.clone(),
            created_at: document.updated_at,
            created_by: writer(&document),
            change_summary: document.change_summary.clone(),
            update_reason: document.update_reason.clone(),
        });
        let mut statement = connection.prepare(
            "SELECT version, content, content_hash, created_at, model_name, model_provider,
                    model_version, change_summary, update_reason
             FROM document_versions WHERE document = ?1 ORDER BY version DESC",
        )?;
        let earlier = statement.query_map([pk], |row| {
            Ok(DocumentVersion {
                version: row.get(0)?,
                content: row.get(1)?,
                content_hash: row.get(2)?,
                created_at: row.get(3)?,
                created_by: model(row.get(4)?, row.get(5)?, row.get(6)?),
                change_summary: row.get(7)?,
                update_reason: row.get(8)?,
            })
        })?;
        for version in earlier {
            versions.push(version?);
        }
    }
    let mut document = document;
    if !include_content {
        document.content.clear();
    }
    Ok(Some((document, versions)))
}

pub(super) fn update(
    transaction: &Transaction<'_>,
    id: &str,
    update: DocumentUpdate,
) -> Result<Option<Document>> {
    let Some((pk, old)) = find(transaction, id, true)? else {
        return Ok(None);
    };
    let content = match update.operation {
        UpdateOperation::Replace => update.content,
        UpdateOperation::Append => format!("{}\n\n{}", old.content, update.content),
        UpdateOperation::Prepend => format!("{}\n\n{}", update.content, old.content),
    };
    if content.len() > crate::control::MAX_DOCUMENT_BYTES {
        return Err(ControlError::Invalid(format!(
            "document {id}: the updated content is {} bytes, over the limit of {}",
            content.len(),
            crate::control::MAX_DOCUMENT_BYTES
        )));
    }
    // The version being replaced, with who wrote it.
    let writer = writer(&old);
    transaction.execute(
        "INSERT INTO document_versions
             (document, version, content, content_hash, created_at, model_name, model_provider,
              model_version, change_summary, update_reason, changes_from_prompt)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
        params![
            pk,
            old.version,
            old.content,
            old.content_hash,
            old.updated_at,
            writer.as_ref().map(|m| &m.name),
            writer.as_ref().map(|m| &m.provider),
            writer.as_ref().and_then(|m| m.version.as_ref()),
            old.change_summary,
            old.update_reason,
            old.changes_from_prompt,
        ],
    )?;
    unindex(transaction, pk)?;
    let tags = update.tags.unwrap_or(old.tags);
    transaction.execute(
        "UPDATE documents SET content = ?2, content_hash = ?3, size_bytes = ?4, tags = ?5,
             version = version + 1, updated_at = ?6, updated_by_name = ?7,
             updated_by_provider = ?8, updated_by_version = ?9, change_summary = ?10,
             update_reason = ?11, changes_from_prompt = ?12
         WHERE pk = ?1",
        params![
            pk,
            content,
            content_hash(&content),
            content.len() as i64,
            json_text(&tags),
            now_ms().max(old.updated_at),
            update.model.as_ref().map(|m| &m.name),
            update.model.as_ref().map(|m| &m.provider),
            update.model.as_ref().and_then(|m| m.version.as_ref()),
            update.change_summary,
            update.update_reason,
            update.changes_from_prompt,
        ],
    )?;
    index(transaction, pk, &old.title, &content)?;
    let (_, document) = find(transaction, id, false)?
        .ok_or_else(|| ControlError::Invalid(format!("document {id} vanished")))?;
    Ok(Some(document))
}

pub(super) fn delete(transaction: &Transaction<'_>, id: &str) -> Result<bool> {
    let pk: Option<i64> = transaction
        .query_row("SELECT pk FROM documents WHERE id = ?1", [id], |row| {
            row.get(0)
        })
        .optional()?;
    let Some(pk) = pk else {
        return Ok(false);
    };
    unindex(transaction, pk)?;
    transaction.execute("DELETE FROM documents WHERE pk = ?1", [pk])?;
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queries_quote_words_and_keep_phrases_and_prefixes() {
        assert_eq!(
            fts_queries("Rust sqlite"),
            Some((
                "\"rust\" \"sqlite\"".into(),
                "\"rust\" OR \"sqlite\"".into()
            ))
        );
        assert_eq!(
            fts_queries("\"knowledge base\" retriev*").unwrap().0,
            "\"knowledge base\" \"retriev\"*"
        );
        // FTS5 operators and punctuation in user text are only words.
        assert_eq!(
            fts_queries("title:x AND (y OR NEAR) -z").unwrap().0,
            "\"title\" \"x\" \"and\" \"y\" \"or\" \"near\" \"z\""
        );
        assert_eq!(fts_queries("  ** -- \"\" "), None);
    }
}
