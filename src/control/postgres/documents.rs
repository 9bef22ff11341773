//! The document library: documents, their earlier versions, and a full-text index over chunks of
//! their text. A chunk is a character range of the content (the chunks of `library::chunks`, as
//! the SQLite store cuts them) with its own `tsvector`: the title weighted A, the chunk's text B.
//! Chunks also keep each `tsvector` under PostgreSQL's bound of 1 MB, which a whole 10 MB
//! document would pass. Every write is one transaction.
//!
//! Search ranks as the SQLite store's FTS5 does, by BM25 (`library::bm25`): the GIN index finds
//! the chunks that match (`@@`), `ts_rank` picks the best [`candidates`] of them, and those are
//! scored in Rust from the positions of the query's lexemes in each chunk, with a title match
//! counting double. BM25 needs corpus statistics that `tsvector`s do not keep, so the index
//! keeps them itself: each chunk's length in words (`document_chunks.words`), how many chunks
//! hold each lexeme (`document_terms`), and the number of chunks and their words in total
//! (`document_index`). Every write counts what it adds and removes in two statements at its end
//! ([`count`]), however many documents it wrote. Order is the score, then chunk id: the same
//! library answers the same query the same way.

use std::collections::{HashMap, HashSet};

use tokio_postgres::types::ToSql;
use tokio_postgres::{Client, GenericClient, Row, Transaction};

use crate::control::library::{
    self, MARK_CLOSE, MARK_OPEN, MIN_RELEVANCE, TITLE_WEIGHT, Term, bm25, bm25_idf, chunks,
    content_hash, highlight, model, word_count, writer,
};
use crate::control::time::now_ms;
use crate::control::{
    ControlError, Document, DocumentCreate, DocumentFilter, DocumentHit, DocumentList,
    DocumentSearch, DocumentSort, DocumentUpdate, DocumentVersion, NewDocument, Result,
    UpdateOperation,
};

/// `ts_rank`'s weights for D, C, B and A: a title match (A) counts double a text match (B).
const WEIGHTS: &str = "'{0.1, 0.2, 0.5, 1.0}'";

/// How many matching chunks `ts_rank` hands to BM25 for a search of `limit` documents. A query
/// matching no more chunks than this is ranked exactly as BM25 ranks it; one matching more (a
/// single common word) is ranked among the chunks `ts_rank` likes best, which BM25's best are
/// nearly always among (the benchmark measures how often).
fn candidates(limit: usize) -> i64 {
    i64::try_from(100 + 20 * limit).unwrap_or(i64::MAX)
}
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
    let terms: Vec<String> = library::search_terms(text).iter().map(tsquery).collect();
    if terms.is_empty() {
        return None;
    }
    Some((terms.join(" & "), terms.join(" | ")))
}

/// One term's `to_tsquery` text.
fn tsquery(term: &Term) -> String {
    match term {
        Term::Phrase(words) => {
            let quoted: Vec<String> = words.iter().map(|word| format!("'{word}'")).collect();
            format!("({})", quoted.join(" <-> "))
        }
        Term::Word { word, prefix } => format!("'{word}'{}", if *prefix { ":*" } else { "" }),
    }
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

/// Adds the chunks of document `pk` to the index, in one statement; their ids, for [`count`].
async fn index(
    transaction: &impl GenericClient,
    pk: i64,
    title: &str,
    content: &str,
) -> Result<Vec<i64>> {
    let spans = chunks(content);
    let mut starts = Vec::with_capacity(spans.len());
    let mut lengths = Vec::with_capacity(spans.len());
    let mut words = Vec::with_capacity(spans.len());
    let mut bodies = Vec::with_capacity(spans.len());
    let title_words = word_count(title);
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
        let body = &content[from..to];
        starts.push(i32::try_from(start).unwrap_or(i32::MAX));
        lengths.push(i32::try_from(length).unwrap_or(i32::MAX));
        words.push(i32::try_from(title_words + word_count(body)).unwrap_or(i32::MAX));
        bodies.push(body);
        from = to;
    }
    let rows = transaction
        .query(
            "INSERT INTO document_chunks (document, start, length, words, search)
             SELECT $1, chunk.start, chunk.length, chunk.words,
                    setweight(to_tsvector('english', $2), 'A')
                    || setweight(to_tsvector('english', chunk.body), 'B')
             FROM unnest($3::integer[], $4::integer[], $5::integer[], $6::text[])
                  AS chunk (start, length, words, body)
             RETURNING id",
            &[&pk, &title, &starts, &lengths, &words, &bodies],
        )
        .await?;
    rows.iter().map(|row| Ok(row.try_get(0)?)).collect()
}

/// Brings the index's statistics up to date with the chunks `added` (already written) and
/// `removed` (not yet deleted): one upsert of every lexeme's count of chunks, summed over all
/// of them, and one update of the totals. A lexeme no chunk holds any more is forgotten.
async fn count(transaction: &impl GenericClient, added: &[i64], removed: &[i64]) -> Result<()> {
    if added.is_empty() && removed.is_empty() {
        return Ok(());
    }
    let counted = transaction
        .query(
            "INSERT INTO document_terms (lexeme, chunks)
             SELECT lexeme, sum(CASE WHEN c.id = ANY($2) THEN -1 ELSE 1 END)
             FROM document_chunks c, unnest(tsvector_to_array(c.search)) AS lexeme
             WHERE c.id = ANY($1) OR c.id = ANY($2)
             GROUP BY lexeme
             HAVING sum(CASE WHEN c.id = ANY($2) THEN -1 ELSE 1 END) <> 0
             ON CONFLICT (lexeme) DO UPDATE SET chunks = document_terms.chunks + excluded.chunks
             RETURNING lexeme, chunks",
            &[&added, &removed],
        )
        .await?;
    if !removed.is_empty() {
        let gone: Vec<String> = counted
            .iter()
            .filter(|row| row.try_get::<_, i64>(1).is_ok_and(|chunks| chunks <= 0))
            .map(|row| row.try_get(0))
            .collect::<std::result::Result<_, _>>()?;
        if !gone.is_empty() {
            transaction
                .execute(
                    "DELETE FROM document_terms WHERE lexeme = ANY($1)",
                    &[&gone],
                )
                .await?;
        }
    }
    transaction
        .execute(
            "UPDATE document_index SET
                 chunks = document_index.chunks + change.chunks,
                 words = document_index.words + change.words
             FROM (SELECT coalesce(sum(CASE WHEN id = ANY($2) THEN -1 ELSE 1 END), 0) AS chunks,
                          coalesce(sum(CASE WHEN id = ANY($2) THEN -words ELSE words END), 0)
                              AS words
                   FROM document_chunks WHERE id = ANY($1) OR id = ANY($2)) AS change",
            &[&added, &removed],
        )
        .await?;
    Ok(())
}

/// The ids of document `pk`'s chunks.
async fn chunk_ids(transaction: &impl GenericClient, pk: i64) -> Result<Vec<i64>> {
    let rows = transaction
        .query("SELECT id FROM document_chunks WHERE document = $1", &[&pk])
        .await?;
    rows.iter().map(|row| Ok(row.try_get(0)?)).collect()
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

/// Adds a document, or finds the one with its content; with the chunks it indexed.
async fn insert(
    transaction: &impl GenericClient,
    new: NewDocument,
) -> Result<(DocumentCreate, Vec<i64>)> {
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
        return Ok((DocumentCreate::Duplicate(Box::new(document)), Vec::new()));
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
    let indexed = index(transaction, pk, &new.title, &new.content).await?;
    let (_, document) = find(transaction, &id, false)
        .await?
        .ok_or_else(|| ControlError::Invalid(format!("document {id} vanished")))?;
    Ok((DocumentCreate::Created(Box::new(document)), indexed))
}

pub(super) async fn create(
    transaction: &Transaction<'_>,
    new: NewDocument,
) -> Result<DocumentCreate> {
    let (created, indexed) = insert(transaction, new).await?;
    count(transaction, &indexed, &[]).await?;
    Ok(created)
}

/// Adds many documents in one transaction, each in a savepoint of its own: a document that
/// fails is rolled back whole and the others stay, and the batch costs one commit and one count
/// of the index's statistics. An error here (the count failing) fails the whole batch.
pub(super) async fn create_many(
    transaction: &mut Transaction<'_>,
    batch: Vec<NewDocument>,
) -> Result<Vec<Result<DocumentCreate>>> {
    let mut results = Vec::with_capacity(batch.len());
    let mut indexed = Vec::new();
    for new in batch {
        let outcome = async {
            let savepoint = transaction.savepoint("document").await?;
            let created = insert(&savepoint, new).await?;
            savepoint.commit().await?;
            Ok(created)
        }
        .await;
        results.push(outcome.map(|(created, chunks)| {
            indexed.extend(chunks);
            created
        }));
    }
    count(transaction, &indexed, &[]).await?;
    Ok(results)
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

/// A term of a query as the index holds it: its lexemes with their positions in the term (one,
/// at 0, for a word; a phrase's keep the gaps of the stop words between them), whether it is a
/// prefix, and its BM25 IDF.
struct Needle {
    lexemes: Vec<(String, i32)>,
    prefix: bool,
    idf: f64,
}

/// Where a chunk holds the query's lexemes: each one's positions, and whether each is in the
/// title (weight A) rather than the text.
type Occurrences = HashMap<String, Vec<(i32, bool)>>;

impl Needle {
    /// The term's frequency in a chunk as FTS5's BM25 counts it: every instance (of the whole
    /// phrase, words in order in one field) counts its field's weight.
    fn frequency(&self, chunk: &Occurrences) -> f64 {
        let weight = |title: bool| if title { TITLE_WEIGHT } else { 1.0 };
        match self.lexemes.as_slice() {
            [(prefix, _)] if self.prefix => chunk
                .iter()
                .filter(|(lexeme, _)| lexeme.starts_with(prefix.as_str()))
                .flat_map(|(_, found)| found)
                .map(|(_, title)| weight(*title))
                .sum(),
            [(first, start), rest @ ..] => {
                let Some(found) = chunk.get(first) else {
                    return 0.0;
                };
                found
                    .iter()
                    .filter(|(at, title)| {
                        rest.iter().all(|(lexeme, offset)| {
                            chunk.get(lexeme).is_some_and(|others| {
                                others.contains(&(at + offset - start, *title))
                            })
                        })
                    })
                    .map(|(_, title)| weight(*title))
                    .sum()
            }
            [] => 0.0,
        }
    }
}

/// Adds the lexemes and positions of a `tsvector`'s text (`'word':3,7 'other':5`) to a
/// chunk's occurrences, as in the title or not.
fn read_positions(text: &str, title: bool, occurrences: &mut Occurrences) {
    let mut chars = text.chars().peekable();
    while let Some(ch) = chars.next() {
        if ch != '\'' {
            continue;
        }
        // The lexeme, `''` and `\\` escaping a quote and a backslash.
        let mut lexeme = String::new();
        while let Some(ch) = chars.next() {
            match ch {
                '\'' if chars.peek() == Some(&'\'') => {
                    chars.next();
                    lexeme.push('\'');
                }
                '\'' => break,
                '\\' => lexeme.extend(chars.next()),
                _ => lexeme.push(ch),
            }
        }
        if chars.peek() != Some(&':') {
            continue;
        }
        chars.next();
        // Positions: digits, each with its weight's letter unless D, separated by commas.
        let found = occurrences.entry(lexeme).or_default();
        let mut position = 0i32;
        while let Some(&ch) = chars.peek() {
            if ch == ' ' {
                break;
            }
            chars.next();
            if let Some(digit) = ch.to_digit(10) {
                position = position * 10 + digit as i32;
            } else if ch == ',' {
                found.push((position, title));
                position = 0;
            }
        }
        found.push((position, title));
    }
}

/// The query's terms as lexemes, with their IDF over the whole index (filters do not change
/// it, as in FTS5), and the index's chunks and their mean length in words. A word's chunk count
/// comes from `document_terms`; a phrase's or a prefix's is counted with the GIN index.
async fn needles(client: &Client, terms: &[Term]) -> Result<(Vec<Needle>, f64, f64)> {
    let texts: Vec<String> = terms
        .iter()
        .map(|term| match term {
            Term::Phrase(words) => words.join(" "),
            Term::Word { word, .. } => word.clone(),
        })
        .collect();
    let rows = client
        .query(
            "SELECT t.i, u.lexeme, u.positions,
                    (SELECT dt.chunks FROM document_terms dt WHERE dt.lexeme = u.lexeme),
                    x.chunks, x.words
             FROM unnest($1::text[]) WITH ORDINALITY AS t (text, i),
                  unnest(to_tsvector('english', t.text)) AS u,
                  document_index x
             ORDER BY t.i",
            &[&texts],
        )
        .await?;
    let (mut rows_total, mut words_total) = (0i64, 0i64);
    // Each term's lexemes with their positions, and its chunk count from `document_terms`.
    type Found = (Vec<(String, i32)>, Option<i64>);
    let mut lexemes: Vec<Found> = vec![(Vec::new(), None); terms.len()];
    for row in &rows {
        let at: i64 = row.try_get(0)?;
        let lexeme: String = row.try_get(1)?;
        let positions: Vec<i16> = row.try_get(2)?;
        let hits: Option<i64> = row.try_get(3)?;
        (rows_total, words_total) = (row.try_get(4)?, row.try_get(5)?);
        let Some((found, chunks)) = usize::try_from(at - 1)
            .ok()
            .and_then(|i| lexemes.get_mut(i))
        else {
            continue;
        };
        found.extend(positions.iter().map(|p| (lexeme.clone(), i32::from(*p))));
        *chunks = Some(hits.unwrap_or(0));
    }
    let mut needles = Vec::with_capacity(terms.len());
    for (term, (mut found, hits)) in terms.iter().zip(lexemes) {
        // A term of stop words only is no term, as `to_tsquery` drops it.
        if found.is_empty() {
            continue;
        }
        found.sort_by_key(|(_, at)| *at);
        let prefix = matches!(term, Term::Word { prefix: true, .. });
        let hits = match hits {
            Some(hits) if found.len() == 1 && !prefix => hits,
            _ => client
                .query_one(
                    "SELECT count(*) FROM document_chunks
                     WHERE search @@ to_tsquery('english', $1)",
                    &[&tsquery(term)],
                )
                .await?
                .try_get(0)?,
        };
        needles.push(Needle {
            lexemes: found,
            prefix,
            idf: bm25_idf(rows_total as f64, hits as f64),
        });
    }
    let average = if rows_total > 0 {
        words_total as f64 / rows_total as f64
    } else {
        1.0
    };
    Ok((needles, rows_total as f64, average))
}

/// The best chunk of up to `limit` documents for one query, best first: (chunk, document pk,
/// BM25 score). `ts_rank` chooses the [`candidates`] among the chunks that match; BM25 orders
/// them, ties by chunk id.
async fn rank(
    client: &Client,
    query: &str,
    needles: &[Needle],
    average: f64,
    filter: &DocumentFilter,
    limit: usize,
) -> Result<Vec<(i64, i64, f64)>> {
    let mut values: Values = vec![Box::new(query.to_owned())];
    let conditions = filter_sql(filter, &mut values);
    let (mut exact, mut prefixes) = (Vec::new(), Vec::new());
    for needle in needles {
        for (lexeme, _) in &needle.lexemes {
            if needle.prefix {
                prefixes.push(lexeme.clone());
            } else {
                exact.push(lexeme.clone());
            }
        }
    }
    values.push(Box::new(candidates(limit)));
    let top = values.len();
    let candidates = format!(
        "WITH top AS (
             SELECT c.id, c.document, c.words, c.search
             FROM document_chunks c
             JOIN documents d ON d.pk = c.document,
                  to_tsquery('english', $1) q
             WHERE c.search @@ q{conditions}
             ORDER BY ts_rank({WEIGHTS}, c.search, q, 1) DESC, c.id
             LIMIT ${top}
         )"
    );
    let mut chunks: HashMap<i64, (i64, i32, Occurrences)> = HashMap::new();
    if prefixes.is_empty() {
        // The query's lexemes alone, from the title (A) and from the text (B): `setweight`
        // marks them D and `ts_filter` keeps what is marked, cheaper than `unnest` over every
        // lexeme of every candidate.
        values.push(Box::new(exact));
        let rows = client
            .query(
                &format!(
                    "{candidates}
                     SELECT id, document, words,
                            ts_filter(setweight(ts_filter(search, '{{a}}'), 'd', ${at}), '{{d}}')
                                ::text,
                            ts_filter(setweight(ts_filter(search, '{{b}}'), 'd', ${at}), '{{d}}')
                                ::text
                     FROM top",
                    at = top + 1
                ),
                &refs(&values),
            )
            .await?;
        for row in &rows {
            let mut occurrences = Occurrences::new();
            read_positions(row.try_get(3)?, true, &mut occurrences);
            read_positions(row.try_get(4)?, false, &mut occurrences);
            chunks.insert(
                row.try_get(0)?,
                (row.try_get(1)?, row.try_get(2)?, occurrences),
            );
        }
    } else {
        values.push(Box::new(exact));
        values.push(Box::new(prefixes));
        let rows = client
            .query(
                &format!(
                    "{candidates}
                     SELECT top.id, top.document, top.words, u.lexeme, u.positions, u.weights
                     FROM top
                     LEFT JOIN LATERAL (
                         SELECT * FROM unnest(top.search) AS u
                         WHERE u.lexeme = ANY(${}::text[]) OR u.lexeme ^@ ANY(${}::text[])
                     ) u ON TRUE",
                    top + 1,
                    top + 2
                ),
                &refs(&values),
            )
            .await?;
        for row in &rows {
            let (id, document, words): (i64, i64, i32) =
                (row.try_get(0)?, row.try_get(1)?, row.try_get(2)?);
            let (_, _, occurrences) = chunks
                .entry(id)
                .or_insert_with(|| (document, words, Occurrences::new()));
            let lexeme: Option<String> = row.try_get(3)?;
            let positions: Option<Vec<i16>> = row.try_get(4)?;
            let weights: Option<Vec<String>> = row.try_get(5)?;
            if let (Some(lexeme), Some(positions), Some(weights)) = (lexeme, positions, weights) {
                let found = positions
                    .iter()
                    .zip(&weights)
                    .map(|(at, weight)| (i32::from(*at), weight == "A"))
                    .collect();
                occurrences.insert(lexeme, found);
            }
        }
    }
    let mut scored: Vec<(i64, i64, f64)> = chunks
        .into_iter()
        .map(|(id, (document, words, occurrences))| {
            let terms: Vec<(f64, f64)> = needles
                .iter()
                .map(|needle| (needle.idf, needle.frequency(&occurrences)))
                .collect();
            (id, document, bm25(&terms, f64::from(words), average))
        })
        .collect();
    scored.sort_by(|a, b| b.2.total_cmp(&a.2).then(a.0.cmp(&b.0)));
    let mut seen = HashSet::new();
    scored.retain(|(_, document, _)| seen.insert(*document));
    scored.truncate(limit);
    Ok(scored)
}

pub(super) async fn search(client: &Client, search: &DocumentSearch) -> Result<Vec<DocumentHit>> {
    let Some((all, any)) = tsqueries(&search.query) else {
        return Ok(Vec::new());
    };
    let (needles, chunks, average) = needles(client, &library::search_terms(&search.query)).await?;
    if needles.is_empty() || chunks == 0.0 {
        return Ok(Vec::new());
    }
    let limit = search.limit.max(1) as usize;
    let mut query = all;
    let mut ranked = rank(client, &query, &needles, average, &search.filter, limit).await?;
    if ranked.is_empty() && any != query {
        query = any;
        ranked = rank(client, &query, &needles, average, &search.filter, limit).await?;
    }
    // Higher is better: the best hit has relevance 1.
    let best = ranked.first().map_or(0.0, |(_, _, score)| *score);
    let relevance = |score: f64| {
        if best > 0.0 {
            (score / best).clamp(0.0, 1.0)
        } else {
            1.0
        }
    };
    ranked.retain(|(_, _, score)| relevance(*score) >= MIN_RELEVANCE);
    // Every hit's document, passage and snippet in one statement, put back in rank order.
    let chunk_ids: Vec<i64> = ranked.iter().map(|(chunk, _, _)| *chunk).collect();
    let rows = client
        .query(
            &format!(
                "SELECT {COLUMNS}, passage.body,
                        ts_headline('english', passage.body, to_tsquery('english', $2), $3), c.id
                 FROM documents d
                 JOIN document_chunks c ON c.document = d.pk,
                      substr(d.content, c.start + 1, c.length) AS passage (body)
                 WHERE c.id = ANY($1)"
            ),
            &[&chunk_ids, &query, &headline_options()],
        )
        .await?;
    let mut found = HashMap::with_capacity(rows.len());
    for row in &rows {
        found.insert(row.try_get::<_, i64>(27)?, row);
    }
    let mut hits = Vec::with_capacity(ranked.len());
    for (chunk, _, score) in ranked {
        // A chunk another write replaced since it was ranked is left out.
        let Some(row) = found.get(&chunk) else {
            continue;
        };
        let passage: String = row.try_get(25)?;
        let snippet: String = row.try_get(26)?;
        hits.push(DocumentHit {
            document: document_from_row(row, false)?,
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
    let unindexed = chunk_ids(transaction, pk).await?;
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
    // The new chunks are counted in and the old ones out before the old ones go.
    let indexed = index(transaction, pk, &old.title, &content).await?;
    count(transaction, &indexed, &unindexed).await?;
    transaction
        .execute(
            "DELETE FROM document_chunks WHERE id = ANY($1)",
            &[&unindexed],
        )
        .await?;
    let (_, document) = find(transaction, id, false)
        .await?
        .ok_or_else(|| ControlError::Invalid(format!("document {id} vanished")))?;
    Ok(Some(document))
}

pub(super) async fn delete(transaction: &Transaction<'_>, id: &str) -> Result<bool> {
    let Some(row) = transaction
        .query_opt("SELECT pk FROM documents WHERE id = $1", &[&id])
        .await?
    else {
        return Ok(false);
    };
    let pk: i64 = row.try_get(0)?;
    count(transaction, &[], &chunk_ids(transaction, pk).await?).await?;
    // Chunks and versions go with it (`ON DELETE CASCADE`).
    transaction
        .execute("DELETE FROM documents WHERE pk = $1", &[&pk])
        .await?;
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tsvector_text_reads_as_lexemes_and_positions() {
        let mut found = Occurrences::new();
        read_positions("'kite':2,7 'it''s':4A 'back\\\\slash':1", false, &mut found);
        read_positions("'kite':1A", true, &mut found);
        read_positions("", true, &mut found);
        assert_eq!(found["kite"], [(2, false), (7, false), (1, true)]);
        assert_eq!(found["it's"], [(4, false)]);
        assert_eq!(found["back\\slash"], [(1, false)]);
        assert_eq!(found.len(), 3);
    }

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
