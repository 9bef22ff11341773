//! The document library: documents, their earlier versions, and a full-text index over chunks of
//! their text. A chunk is a character range of the content (the chunks of `library::chunks`, as
//! the SQLite store cuts them) with its own `tsvector`: the title weighted A, the chunk's text B,
//! so a match in the title counts double (`ts_rank_cd`'s weights below). Chunks also keep each
//! `tsvector` under PostgreSQL's bound of 1 MB, which a whole 10 MB document would pass. Every
//! write is one transaction. Search order is `ts_rank_cd`, then chunk id: the same library
//! answers the same query the same way.

use tokio_postgres::types::ToSql;
use tokio_postgres::{Client, GenericClient, Row, Transaction};

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

/// `ts_rank_cd`'s weights for D, C, B and A: a title match (A) counts double a text match (B).
const WEIGHTS: &str = "'{0.1, 0.2, 0.5, 1.0}'";
/// How `ts_headline` cuts a snippet: about the words SQLite's `snippet()` shows around the
/// matches, between the markers `library::highlight` turns into bold.
fn headline_options() -> String {
    format!(
        "StartSel=\"{MARK_OPEN}\", StopSel=\"{MARK_CLOSE}\", MaxWords=24, MinWords=12, \
         ShortWord=2, MaxFragments=1, FragmentDelimiter=\" … \""
    )
}

const COLUMNS: &str = "d.id, d.title, d.description, d.format, d.tags, d.category, d.source, \
     d.visibility, d.model_name, d.model_provider, d.model_version, d.ai_metadata, d.parent_id, \
     d.file_name, d.content_hash, d.size_bytes, d.version, d.created_at, d.updated_at, \
     d.updated_by_name, d.updated_by_provider, d.updated_by_version, d.change_summary, \
     d.update_reason, d.changes_from_prompt";

/// Parameters built along with a statement's text.
type Values = Vec<Box<dyn ToSql + Sync + Send>>;

fn refs(values: &Values) -> Vec<&(dyn ToSql + Sync)> {
    values
        .iter()
        .map(|value| value.as_ref() as &(dyn ToSql + Sync))
        .collect()
}

/// A document from a row of [`COLUMNS`], and the content at index 25 when `with_content`.
fn document_from_row(row: &Row, with_content: bool) -> Result<Document> {
    let metadata: String = row.try_get(11)?;
    let content = if with_content {
        row.try_get(25)?
    } else {
        String::new()
    };
    Ok(Document {
        id: row.try_get(0)?,
        title: row.try_get(1)?,
        description: row.try_get(2)?,
        format: row.try_get(3)?,
        tags: row.try_get(4)?,
        category: row.try_get(5)?,
        source: row.try_get(6)?,
        visibility: row.try_get(7)?,
        model: model(row.try_get(8)?, row.try_get(9)?, row.try_get(10)?),
        ai_metadata: serde_json::from_str(&metadata).unwrap_or_default(),
        parent_id: row.try_get(12)?,
        file_name: row.try_get(13)?,
        content_hash: row.try_get(14)?,
        size_bytes: row.try_get(15)?,
        version: row.try_get(16)?,
        created_at: row.try_get(17)?,
        updated_at: row.try_get(18)?,
        updated_by: model(row.try_get(19)?, row.try_get(20)?, row.try_get(21)?),
        change_summary: row.try_get(22)?,
        update_reason: row.try_get(23)?,
        changes_from_prompt: row.try_get(24)?,
        content,
    })
}

/// The `to_tsquery` texts for a user's text: all terms (AND), and any term (OR) as the fallback
/// when nothing has them all. Only letters and digits reach the query, each word quoted (`'x'`),
/// `"quoted phrases"` stay phrases (`<->`) and a trailing `*` makes a prefix (`:*`), so nothing
/// in user text becomes an operator. `None` when the text has no words.
pub(super) fn tsqueries(text: &str) -> Option<(String, String)> {
    let terms: Vec<String> = library::search_terms(text)
        .into_iter()
        .map(|term| match term {
            Term::Phrase(words) => {
                let quoted: Vec<String> = words.iter().map(|word| format!("'{word}'")).collect();
                format!("({})", quoted.join(" <-> "))
            }
            Term::Word { word, prefix } => format!("'{word}'{}", if prefix { ":*" } else { "" }),
        })
        .collect();
    if terms.is_empty() {
        return None;
    }
    Some((terms.join(" & "), terms.join(" | ")))
}

/// The filter's conditions on `documents d`, with their parameters appended to `values`.
fn filter_sql(filter: &DocumentFilter, values: &mut Values) -> String {
    let mut sql = String::new();
    let mut equal = |column: &str, value: &Option<String>, nocase: bool, sql: &mut String| {
        if let Some(value) = value {
            values.push(Box::new(value.clone()));
            let at = values.len();
            if nocase {
                sql.push_str(&format!(" AND lower(d.{column}) = lower(${at})"));
            } else {
                sql.push_str(&format!(" AND d.{column} = ${at}"));
            }
        }
    };
    let source = filter.source.clone().filter(|source| source != "all");
    equal("source", &source, false, &mut sql);
    equal("model_name", &filter.model_name, true, &mut sql);
    equal("model_provider", &filter.model_provider, true, &mut sql);
    equal("category", &filter.category, false, &mut sql);
    equal("visibility", &filter.visibility, false, &mut sql);
    if !filter.tags.is_empty() {
        values.push(Box::new(filter.tags.clone()));
        sql.push_str(&format!(" AND d.tags @> ${}::text[]", values.len()));
    }
    if let Some(from) = filter.created_from {
        values.push(Box::new(from));
        sql.push_str(&format!(" AND d.created_at >= ${}", values.len()));
    }
    if let Some(to) = filter.created_to {
        values.push(Box::new(to));
        sql.push_str(&format!(" AND d.created_at <= ${}", values.len()));
    }
    sql
}

/// Adds the chunks of document `pk` to the index, in one statement.
async fn index(
    transaction: &impl GenericClient,
    pk: i64,
    title: &str,
    content: &str,
) -> Result<()> {
    let spans = chunks(content);
    let mut starts = Vec::with_capacity(spans.len());
    let mut lengths = Vec::with_capacity(spans.len());
    let mut bodies = Vec::with_capacity(spans.len());
    // The byte offset of each character, and of the end: chunks are in characters (as
    // PostgreSQL's substr counts them), the text to index is sliced in bytes.
    let mut offsets = content
        .char_indices()
        .map(|(at, _)| at)
        .chain([content.len()]);
    let (mut from, mut next) = (0, 0);
    for (start, length) in spans {
        let end = start + length;
        let to = offsets.nth(end - next).unwrap_or(content.len());
        next = end + 1;
        starts.push(i32::try_from(start).unwrap_or(i32::MAX));
        lengths.push(i32::try_from(length).unwrap_or(i32::MAX));
        bodies.push(&content[from..to]);
        from = to;
    }
    transaction
        .execute(
            "INSERT INTO document_chunks (document, start, length, search)
             SELECT $1, chunk.start, chunk.length,
                    setweight(to_tsvector('english', $2), 'A')
                    || setweight(to_tsvector('english', chunk.body), 'B')
             FROM unnest($3::integer[], $4::integer[], $5::text[])
                  AS chunk (start, length, body)",
            &[&pk, &title, &starts, &lengths, &bodies],
        )
        .await?;
    Ok(())
}

async fn find(
    client: &impl GenericClient,
    id: &str,
    with_content: bool,
) -> Result<Option<(i64, Document)>> {
    let content = if with_content { ", d.content" } else { "" };
    let sql = format!("SELECT {COLUMNS}{content}, d.pk FROM documents d WHERE d.id = $1");
    let Some(row) = client.query_opt(&sql, &[&id]).await? else {
        return Ok(None);
    };
    let pk: i64 = row.try_get(if with_content { 26 } else { 25 })?;
    Ok(Some((pk, document_from_row(&row, with_content)?)))
}

async fn insert(transaction: &impl GenericClient, new: NewDocument) -> Result<DocumentCreate> {
    let hash = content_hash(&new.content);
    let existing = transaction
        .query_opt(
            "SELECT id FROM documents WHERE content_hash = $1 ORDER BY pk LIMIT 1",
            &[&hash],
        )
        .await?;
    if let Some(row) = existing {
        let id: String = row.try_get(0)?;
        let (_, document) = find(transaction, &id, false)
            .await?
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
    let metadata = serde_json::to_string(&new.ai_metadata).expect("metadata serializes");
    let pk: i64 = transaction
        .query_one(
            "INSERT INTO documents
                 (id, title, description, content, format, tags, category, source, visibility,
                  model_name, model_provider, model_version, ai_metadata, parent_id, file_name,
                  content_hash, size_bytes, version, created_at, updated_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17,
                     1, $18, $18)
             RETURNING pk",
            &[
                &id,
                &new.title,
                &new.description,
                &new.content,
                &new.format,
                &new.tags,
                &new.category,
                &new.source,
                &new.visibility,
                &model_name,
                &model_provider,
                &model_version,
                &metadata,
                &new.parent_id,
                &new.file_name,
                &hash,
                &(new.content.len() as i64),
                &now,
            ],
        )
        .await?
        .try_get(0)?;
    index(transaction, pk, &new.title, &new.content).await?;
    let (_, document) = find(transaction, &id, false)
        .await?
        .ok_or_else(|| ControlError::Invalid(format!("document {id} vanished")))?;
    Ok(DocumentCreate::Created(Box::new(document)))
}

pub(super) async fn create(
    transaction: &Transaction<'_>,
    new: NewDocument,
) -> Result<DocumentCreate> {
    insert(transaction, new).await
}

/// Adds many documents in one transaction, each in a savepoint of its own: a document that
/// fails is rolled back whole and the others stay, and the batch costs one commit.
pub(super) async fn create_many(
    transaction: &mut Transaction<'_>,
    batch: Vec<NewDocument>,
) -> Vec<Result<DocumentCreate>> {
    let mut results = Vec::with_capacity(batch.len());
    for new in batch {
        let outcome = async {
            let savepoint = transaction.savepoint("document").await?;
            let created = insert(&savepoint, new).await?;
            savepoint.commit().await?;
            Ok(created)
        }
        .await;
        results.push(outcome);
    }
    results
}

pub(super) async fn list(client: &Client, list: &DocumentList) -> Result<(Vec<Document>, u64)> {
    let mut values = Values::new();
    let mut conditions = filter_sql(&list.filter, &mut values);
    if let Some(search) = list.search.as_deref() {
        match tsqueries(search) {
            Some((all, _)) => {
                values.push(Box::new(all));
                conditions.push_str(&format!(
                    " AND d.pk IN (SELECT c.document FROM document_chunks c
                                   WHERE c.search @@ to_tsquery('english', ${}))",
                    values.len()
                ));
            }
            None => return Ok((Vec::new(), 0)),
        }
    }
    let total: i64 = client
        .query_one(
            &format!("SELECT count(*) FROM documents d WHERE TRUE{conditions}"),
            &refs(&values),
        )
        .await?
        .try_get(0)?;
    let order = match list.sort {
        DocumentSort::DateDesc => "d.created_at DESC, d.id",
        DocumentSort::DateAsc => "d.created_at, d.id",
        DocumentSort::Title => "lower(d.title) COLLATE \"C\", d.id",
        DocumentSort::Size => "d.size_bytes DESC, d.id",
    };
    values.push(Box::new(i64::from(list.limit)));
    values.push(Box::new(list.offset.min(i64::MAX as u64) as i64));
    let rows = client
        .query(
            &format!(
                "SELECT {COLUMNS} FROM documents d WHERE TRUE{conditions}
                 ORDER BY {order} LIMIT ${} OFFSET ${}",
                values.len() - 1,
                values.len()
            ),
            &refs(&values),
        )
        .await?;
    let documents = rows
        .iter()
        .map(|row| document_from_row(row, false))
        .collect::<Result<_>>()?;
    Ok((documents, total.max(0) as u64))
}

/// The best chunk of up to `limit` documents for one query, best first: (chunk, document pk,
/// score).
async fn rank(
    client: &Client,
    query: &str,
    filter: &DocumentFilter,
    limit: usize,
) -> Result<Vec<(i64, i64, f32)>> {
    let mut values: Values = vec![Box::new(query.to_owned())];
    let conditions = filter_sql(filter, &mut values);
    values.push(Box::new(i64::try_from(limit).unwrap_or(i64::MAX)));
    let rows = client
        .query(
            &format!(
                "WITH hits AS (
                     SELECT c.id, c.document, ts_rank_cd({WEIGHTS}, c.search, q) AS score
                     FROM document_chunks c
                     JOIN documents d ON d.pk = c.document,
                          to_tsquery('english', $1) q
                     WHERE c.search @@ q{conditions}
                 ),
                 best AS (
                     SELECT DISTINCT ON (document) id, document, score FROM hits
                     ORDER BY document, score DESC, id
                 )
                 SELECT id, document, score FROM best ORDER BY score DESC, id LIMIT ${}",
                values.len()
            ),
            &refs(&values),
        )
        .await?;
    rows.iter()
        .map(|row| Ok((row.try_get(0)?, row.try_get(1)?, row.try_get(2)?)))
        .collect()
}

pub(super) async fn search(client: &Client, search: &DocumentSearch) -> Result<Vec<DocumentHit>> {
    let Some((all, any)) = tsqueries(&search.query) else {
        return Ok(Vec::new());
    };
    let limit = search.limit.max(1) as usize;
    let mut query = all;
    let mut ranked = rank(client, &query, &search.filter, limit).await?;
    if ranked.is_empty() && any != query {
        query = any;
        ranked = rank(client, &query, &search.filter, limit).await?;
    }
    // Higher is better: the best hit has relevance 1.
    let best = ranked
        .first()
        .map_or(0.0, |(_, _, score)| f64::from(*score));
    let relevance = |score: f32| {
        if best > 0.0 {
            (f64::from(score) / best).clamp(0.0, 1.0)
        } else {
            1.0
        }
    };
    ranked.retain(|(_, _, score)| relevance(*score) >= MIN_RELEVANCE);
    let options = headline_options();
    let mut hits = Vec::with_capacity(ranked.len());
    for (chunk, _, score) in ranked {
        let row = client
            .query_one(
                &format!(
                    "SELECT {COLUMNS}, passage.body,
                            ts_headline('english', passage.body, to_tsquery('english', $2), $3)
                     FROM documents d
                     JOIN document_chunks c ON c.document = d.pk,
                          substr(d.content, c.start + 1, c.length) AS passage (body)
                     WHERE c.id = $1"
                ),
                &[&chunk, &query, &options],
            )
            .await?;
        let passage: String = row.try_get(25)?;
        let snippet: String = row.try_get(26)?;
        hits.push(DocumentHit {
            document: document_from_row(&row, false)?,
            snippet: highlight(&snippet),
            passage,
            relevance: relevance(score),
        });
    }
    Ok(hits)
}

pub(super) async fn get(
    client: &Client,
    id: &str,
    include_content: bool,
    include_versions: bool,
) -> Result<Option<(Document, Vec<DocumentVersion>)>> {
    let Some((pk, document)) = find(client, id, include_content || include_versions).await? else {
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
        let rows = client
            .query(
                "SELECT version, content, content_hash, created_at, model_name, model_provider,
                        model_version, change_summary, update_reason
                 FROM document_versions WHERE document = $1 ORDER BY version DESC",
                &[&pk],
            )
            .await?;
        for row in rows {
            versions.push(DocumentVersion {
                version: row.try_get(0)?,
                content: row.try_get(1)?,
                content_hash: row.try_get(2)?,
                created_at: row.try_get(3)?,
                created_by: model(row.try_get(4)?, row.try_get(5)?, row.try_get(6)?),
                change_summary: row.try_get(7)?,
                update_reason: row.try_get(8)?,
            });
        }
    }
    let mut document = document;
    if !include_content {
        document.content.clear();
    }
    Ok(Some((document, versions)))
}

pub(super) async fn update(
    transaction: &Transaction<'_>,
    id: &str,
    update: DocumentUpdate,
) -> Result<Option<Document>> {
    let Some((pk, old)) = find(transaction, id, true).await? else {
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
    transaction
        .execute(
            "INSERT INTO document_versions
                 (document, version, content, content_hash, created_at, model_name,
                  model_provider, model_version, change_summary, update_reason,
                  changes_from_prompt)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
            &[
                &pk,
                &old.version,
                &old.content,
                &old.content_hash,
                &old.updated_at,
                &writer.as_ref().map(|m| &m.name),
                &writer.as_ref().map(|m| &m.provider),
                &writer.as_ref().and_then(|m| m.version.as_ref()),
                &old.change_summary,
                &old.update_reason,
                &old.changes_from_prompt,
            ],
        )
        .await?;
    transaction
        .execute("DELETE FROM document_chunks WHERE document = $1", &[&pk])
        .await?;
    let tags = update.tags.unwrap_or(old.tags);
    transaction
        .execute(
            "UPDATE documents SET content = $2, content_hash = $3, size_bytes = $4, tags = $5,
                 version = version + 1, updated_at = $6, updated_by_name = $7,
                 updated_by_provider = $8, updated_by_version = $9, change_summary = $10,
                 update_reason = $11, changes_from_prompt = $12
             WHERE pk = $1",
            &[
                &pk,
                &content,
                &content_hash(&content),
                &(content.len() as i64),
                &tags,
                &now_ms().max(old.updated_at),
                &update.model.as_ref().map(|m| &m.name),
                &update.model.as_ref().map(|m| &m.provider),
                &update.model.as_ref().and_then(|m| m.version.as_ref()),
                &update.change_summary,
                &update.update_reason,
                &update.changes_from_prompt,
            ],
        )
        .await?;
    index(transaction, pk, &old.title, &content).await?;
    let (_, document) = find(transaction, id, false)
        .await?
        .ok_or_else(|| ControlError::Invalid(format!("document {id} vanished")))?;
    Ok(Some(document))
}

pub(super) async fn delete(transaction: &Transaction<'_>, id: &str) -> Result<bool> {
    // Chunks and versions go with it (`ON DELETE CASCADE`).
    Ok(transaction
        .execute("DELETE FROM documents WHERE id = $1", &[&id])
        .await?
        == 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queries_quote_words_and_keep_phrases_and_prefixes() {
        assert_eq!(
            tsqueries("Rust sqlite"),
            Some(("'rust' & 'sqlite'".into(), "'rust' | 'sqlite'".into()))
        );
        assert_eq!(
            tsqueries("\"knowledge base\" retriev*").unwrap().0,
            "('knowledge' <-> 'base') & 'retriev':*"
        );
        // tsquery operators and punctuation in user text are only words.
        assert_eq!(
            tsqueries("title:x & (y | !z) <-> 'w'").unwrap().0,
            "'title' & 'x' & 'y' & 'z' & 'w'"
        );
        assert_eq!(tsqueries("  ** -- \"\" ! & "), None);
    }
}
