//! What both stores do alike with the document library and memory, apart from SQL: chunks of a
//! document's text, content hashes, snippets in Markdown bold, how relevant a hit must be to be
//! kept, and the ring an observation belongs to. The SQLite store (`local`) and the PostgreSQL
//! store (`postgres`) index, rank and answer with these, so one library reads the same way on
//! either.

use sha2::{Digest, Sha256};

use crate::control::{Document, ModelInfo};

/// A chunk's target length, in characters: about 300 tokens, a passage long enough to answer
/// from and short enough for bm25 to tell passages of one long document apart.
pub(crate) const CHUNK_CHARS: usize = 1500;
/// How far back from the target a chunk may end to end at a paragraph, sentence or word.
pub(crate) const CHUNK_SLACK: usize = 400;
/// Markers the stores' snippet functions put around matched words: private-use characters no
/// text has, turned into Markdown bold by [`highlight`] once the text's own `**` are gone.
pub(crate) const MARK_OPEN: char = '\u{E000}';
pub(crate) const MARK_CLOSE: char = '\u{E001}';
/// Hits scoring below this fraction of the best are left out: FTS5 gives a word found in more
/// than half of the chunks an IDF of 1e-6, so a passage matched only by such words (`the`, `is`)
/// scores about a millionth of one matched by the question's real words. Real matches are
/// within a few orders of magnitude of each other; the threshold sits between. The PostgreSQL
/// store scores with the same BM25 ([`bm25`]), so the cut works alike there.
pub(crate) const MIN_RELEVANCE: f64 = 0.001;

/// BM25's parameters as FTS5's `bm25()` has them (k1 and b), and the weight of a match in the
/// title against one in the text (`bm25(document_chunks_fts, 2.0, 1.0)`): the PostgreSQL store
/// scores its candidates with the same formula, so both stores rank a library alike.
pub(crate) const BM25_K1: f64 = 1.2;
pub(crate) const BM25_B: f64 = 0.75;
pub(crate) const TITLE_WEIGHT: f64 = 2.0;

/// How many words a text has as FTS5's `unicode61` tokenizer counts them: runs of letters and
/// digits. A chunk's length for BM25 is the words of its title and its text together.
pub(crate) fn word_count(text: &str) -> usize {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|word| !word.is_empty())
        .count()
}

/// FTS5's BM25 term weight: the inverse document frequency of a term found in `hits` of
/// `rows` chunks, a millionth when the term is in more than half of them (so it never
/// subtracts).
pub(crate) fn bm25_idf(rows: f64, hits: f64) -> f64 {
    let idf = ((rows - hits + 0.5) / (hits + 0.5)).ln();
    if idf <= 0.0 { 1e-6 } else { idf }
}

/// FTS5's BM25 score of one chunk (higher is better; `bm25()` returns it negated): for each
/// term in the query's order, its IDF and its weighted frequency in the chunk; `length` is the
/// chunk's words and `average` the mean over every chunk.
pub(crate) fn bm25(terms: &[(f64, f64)], length: f64, average: f64) -> f64 {
    let mut score = 0.0;
    for (idf, frequency) in terms {
        score += idf
            * ((frequency * (BM25_K1 + 1.0))
                / (frequency + BM25_K1 * (1.0 - BM25_B + BM25_B * length / average)));
    }
    score
}

/// An attribution from its stored columns: none without a model name.
pub(crate) fn model(
    name: Option<String>,
    provider: Option<String>,
    version: Option<String>,
) -> Option<ModelInfo> {
    Some(ModelInfo {
        name: name?,
        provider: provider.unwrap_or_default(),
        version,
    })
}

/// Who wrote a document's current version: its creator for the first, else the update's
/// attribution (none when the update gave none).
pub(crate) fn writer(document: &Document) -> Option<ModelInfo> {
    if document.version == 1 {
        document.model.clone()
    } else {
        document.updated_by.clone()
    }
}

/// SHA-256 of the text, lower-case hex.
pub(crate) fn content_hash(content: &str) -> String {
    Sha256::digest(content.as_bytes())
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect()
}

/// Splits text into contiguous chunks of about [`CHUNK_CHARS`] characters, ending each at a
/// paragraph break, else a sentence end or line break, else a space, when one is near the
/// target. Returns `(start, length)` in characters; together they cover the text exactly.
pub(crate) fn chunks(text: &str) -> Vec<(usize, usize)> {
    let chars: Vec<char> = text.chars().collect();
    let total = chars.len();
    let mut spans = Vec::with_capacity(total / CHUNK_CHARS + 1);
    let mut start = 0;
    while start < total {
        let mut end = (start + CHUNK_CHARS).min(total);
        if end < total {
            let floor = end.saturating_sub(CHUNK_SLACK).max(start + 1);
            let window = floor..end;
            let after = |at: usize, what: &dyn Fn(usize) -> bool| {
                window
                    .clone()
                    .rev()
                    .find(|&i| what(i))
                    .map(|i| i + 1)
                    .filter(|&cut| cut > at)
            };
            let paragraph = |i: usize| chars[i] == '\n' && i > 0 && chars[i - 1] == '\n';
            let sentence = |i: usize| {
                chars[i] == '\n'
                    || (chars[i].is_whitespace()
                        && i > 0
                        && matches!(chars[i - 1], '.' | '!' | '?'))
            };
            let space = |i: usize| chars[i].is_whitespace();
            end = after(start, &paragraph)
                .or_else(|| after(start, &sentence))
                .or_else(|| after(start, &space))
                .unwrap_or(end);
        }
        spans.push((start, end - start));
        start = end;
    }
    spans
}

/// A snippet as shown: on one line, the matched words in Markdown bold, adjacent ones in one
/// run (`**two hours**`). The text's own `**` go first — a snippet shows the matches in bold
/// and nothing else, and `snippet()` marks words, so stored bold around a match would double
/// (`****two**`).
pub(crate) fn highlight(marked: &str) -> String {
    let mut text = String::with_capacity(marked.len());
    let mut chars = marked.chars().peekable();
    while let Some(ch) = chars.next() {
        if ch == '*' && chars.peek() == Some(&'*') {
            while chars.peek() == Some(&'*') {
                chars.next();
            }
            continue;
        }
        text.push(ch);
    }
    let words: Vec<&str> = text.split_whitespace().collect();
    // Two highlighted words next to each other become one highlighted run.
    words
        .join(" ")
        .replace(&format!("{MARK_CLOSE} {MARK_OPEN}"), " ")
        .replace(&format!("{MARK_CLOSE}{MARK_OPEN}"), "")
        .replace([MARK_OPEN, MARK_CLOSE], "**")
}

/// The ring a type of observation belongs to: how-to knowledge (procedures), what happened while
/// working (practice), lasting facts and preferences (longterm), and failures to remember
/// (shocks).
pub(crate) fn ring_of(observation_type: &str) -> &'static str {
    match observation_type {
        "success_pattern" | "decision" | "workflow_step" => "procedures",
        "user_preference" | "insight" => "longterm",
        "error_pattern" | "failure_pattern" => "shocks",
        _ => "practice",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snippets_bold_the_matches_once_whatever_the_text_had() {
        let marked = |text: &str| text.replace('[', "\u{E000}").replace(']', "\u{E001}");
        assert_eq!(
            highlight(&marked("lasts **[two] [hours]** on a\n full charge")),
            "lasts **two hours** on a full charge"
        );
        assert_eq!(
            highlight(&marked("**Bold** text, a [match] and ***more***")),
            "Bold text, a **match** and more"
        );
        assert_eq!(highlight(&marked("2 * 3 = [six]")), "2 * 3 = **six**");
        assert!(!highlight(&marked("**[a]** **[b]**")).contains("****"));
    }

    #[test]
    fn chunks_cover_the_text_and_end_at_boundaries() {
        assert!(chunks("").is_empty());
        assert_eq!(chunks("short"), vec![(0, 5)]);
        let paragraph = "word ".repeat(240); // 1200 chars
        let text = format!("{paragraph}\n\n{paragraph}\n\n{paragraph}");
        let spans = chunks(&text);
        let total: usize = spans.iter().map(|(_, length)| length).sum();
        assert_eq!(total, text.chars().count());
        for pair in spans.windows(2) {
            assert_eq!(pair[0].0 + pair[0].1, pair[1].0, "contiguous");
        }
        // The first chunk ends after the first paragraph break (within the slack).
        assert_eq!(spans[0], (0, 1202));
        assert!(spans.iter().all(|(_, length)| *length <= CHUNK_CHARS));
    }

    #[test]
    fn chunks_without_boundaries_are_cut_at_the_target() {
        let text = "x".repeat(CHUNK_CHARS * 2 + 10);
        assert_eq!(
            chunks(&text),
            vec![
                (0, CHUNK_CHARS),
                (CHUNK_CHARS, CHUNK_CHARS),
                (CHUNK_CHARS * 2, 10)
            ]
        );
        // Characters, not bytes.
        let text = "é".repeat(CHUNK_CHARS + 1);
        assert_eq!(chunks(&text), vec![(0, CHUNK_CHARS), (CHUNK_CHARS, 1)]);
    }

    #[test]
    fn hashes_are_lowercase_hex_sha256() {
        assert_eq!(
            content_hash("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}

/// One term of a user's search text: a `"quoted phrase"` (its words in order) or a word, a
/// prefix when it ended in `*`. Only letters and digits reach a term, lower-cased, so that no
/// query syntax in the text becomes an operator of either store's full-text language.
#[derive(Debug, PartialEq)]
pub(crate) enum Term {
    Phrase(Vec<String>),
    Word { word: String, prefix: bool },
}

/// The terms of a user's search text, in order, repeats next to each other dropped.
pub(crate) fn search_terms(text: &str) -> Vec<Term> {
    let words = |part: &str| -> Vec<String> {
        part.split(|c: char| !c.is_alphanumeric())
            .filter(|word| !word.is_empty())
            .map(str::to_lowercase)
            .collect()
    };
    let mut terms = Vec::new();
    for (index, part) in text.split('"').enumerate() {
        if index % 2 == 1 {
            let mut phrase = words(part);
            match phrase.len() {
                0 => {}
                1 => terms.push(Term::Word {
                    word: phrase.remove(0),
                    prefix: false,
                }),
                _ => terms.push(Term::Phrase(phrase)),
            }
            continue;
        }
        for token in part.split_whitespace() {
            let prefix = token.ends_with('*');
            let parts = words(token);
            let last = parts.len().saturating_sub(1);
            for (at, word) in parts.into_iter().enumerate() {
                terms.push(Term::Word {
                    word,
                    prefix: prefix && at == last,
                });
            }
        }
    }
    terms.dedup();
    terms
}
