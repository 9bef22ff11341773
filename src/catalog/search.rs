//! Search over a catalog's tools, for clients that see only the search meta-tools: a query in a
//! person's words ranked against every tool's name, title, description and parameters, the same
//! answer for the same catalog and query.
//!
//! The ranking is BM25F: a tool is one document of several fields (its server, the words of its
//! name, title, description, search hint, parameter names and parameter descriptions), each with
//! a weight and a length normalisation of its own ([`FIELDS`]). A term's weighted, normalised
//! counts over the fields are added up before BM25's saturation, so a word in a tool's name
//! counts more than the same word in its description, and ten mentions in a long description do
//! not outweigh one in the name. Words are lower-cased, split at `_ - .` and case changes, and
//! lightly stemmed (plural and verb endings); stop words are dropped; a word of a name made of
//! two words the catalog has (`worklog`) counts as both too. A query word also looks for a few
//! related words (a hand-written table of general vocabulary), at a fraction of its weight
//! ([`RELATED_WEIGHT`]). A tool gains for the share of its name's words the query covers
//! ([`NAME_COVERAGE`]), and a query that names a tool exactly puts that tool first
//! ([`EXACT_NAME_BOOST`]). Every figure of a score can be read back with [`ToolIndex::explain`].
//!
//! The index is built once per catalog: catalogs are immutable snapshots. Each term's postings
//! hold the tools that have it and its saturated BM25F weight in each, computed at build time, so
//! a search only adds up posting weights in a reusable array of scores and selects the best.

use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::OnceLock;

use rmcp::model::Tool;

/// The `_meta` key of a tool's search hint: words a client's tool search (and ours) should match.
pub const SEARCH_HINT: &str = "anthropic/searchHint";

/// Between a server's slug and its tool's name in a qualified name (`names::SEPARATOR`).
const SEPARATOR: &str = "__";

/// One tool found, by its index in the tools the index was built from.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Hit {
    pub tool: usize,
    pub score: f32,
}

/// A part of a tool that a search matches, each with its own weight.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Field {
    /// The server's slug, the part of a qualified name before `__`, in words.
    Server,
    /// The tool's own name (after the server's `__`), in words.
    Name,
    Title,
    Description,
    /// `_meta["anthropic/searchHint"]`.
    Hint,
    /// The names of the input schema's properties, in words.
    Parameter,
    /// The descriptions of the input schema's properties.
    ParameterDescription,
}

/// The number of fields.
pub const FIELD_COUNT: usize = 7;

impl Field {
    const ALL: [Field; FIELD_COUNT] = [
        Field::Server,
        Field::Name,
        Field::Title,
        Field::Description,
        Field::Hint,
        Field::Parameter,
        Field::ParameterDescription,
    ];

    /// How the field is called in an explanation.
    pub fn label(self) -> &'static str {
        match self {
            Field::Server => "server",
            Field::Name => "name",
            Field::Title => "title",
            Field::Description => "description",
            Field::Hint => "search hint",
            Field::Parameter => "parameter name",
            Field::ParameterDescription => "parameter description",
        }
    }

    /// Whether the field holds identifiers (`listMergeRequests`), split at case changes, rather
    /// than prose, where a capital inside a word is part of a name (`GitHub`, `JavaScript`).
    fn is_identifier(self) -> bool {
        matches!(self, Field::Server | Field::Name | Field::Parameter)
    }

    fn bit(self) -> u8 {
        1 << self as u8
    }
}

/// A field's part in BM25F: how much one occurrence counts (`weight`) and how much the field's
/// length relative to its average damps that (`b`, 0 none, 1 fully).
#[derive(Debug, Clone, Copy)]
pub struct FieldRule {
    pub field: Field,
    pub weight: f32,
    pub b: f32,
}

/// The fields' rules, in [`Field`]'s order. The name is the strongest evidence of what a tool
/// does, a title or hint is written for exactly this, the description is long and says much
/// besides, and parameters say what a tool takes rather than what it does. A server's words are
/// shared by all its tools: they decide between servers when the query names one (Jira, Slack),
/// and are not normalised by length.
pub const FIELDS: [FieldRule; FIELD_COUNT] = [
    FieldRule {
        field: Field::Server,
        weight: 3.0,
        b: 0.0,
    },
    FieldRule {
        field: Field::Name,
        weight: 3.0,
        b: 0.5,
    },
    FieldRule {
        field: Field::Title,
        weight: 2.0,
        b: 0.5,
    },
    FieldRule {
        field: Field::Description,
        weight: 1.0,
        b: 0.75,
    },
    FieldRule {
        field: Field::Hint,
        weight: 2.0,
        b: 0.5,
    },
    FieldRule {
        field: Field::Parameter,
        weight: 0.5,
        b: 0.5,
    },
    FieldRule {
        field: Field::ParameterDescription,
        weight: 0.1,
        b: 0.75,
    },
];

/// The shortest part of a compound word that is split (`worklog` → `work`, `log`).
const MIN_PART: usize = 3;

/// BM25's saturation: how fast more occurrences stop adding.
pub const K1: f32 = 2.0;

/// What a related word counts for, against the query's own word.
pub const RELATED_WEIGHT: f32 = 0.6;

/// What a tool gains when the query covers every word of its name: times the square of the
/// share of the name's words the query has (related words at their weight).
pub const NAME_COVERAGE: f32 = 2.0;

/// The ranking's parameters together, so that a benchmark can try others.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Tuning {
    pub(crate) fields: [FieldRule; FIELD_COUNT],
    pub(crate) k1: f32,
    pub(crate) related: f32,
    pub(crate) coverage: f32,
}

/// The parameters [`ToolIndex::build`] ranks with.
pub(crate) const TUNING: Tuning = Tuning {
    fields: FIELDS,
    k1: K1,
    related: RELATED_WEIGHT,
    coverage: NAME_COVERAGE,
};

/// Added to the score of a tool whose exact name the query holds: more than any sum of word
/// scores reaches, so that tool comes first.
pub const EXACT_NAME_BOOST: f32 = 1000.0;

/// One term's postings, as a range of the index's posting arrays.
#[derive(Debug, Clone, Copy, Default)]
struct Postings {
    start: u32,
    end: u32,
    /// BM25's inverse document frequency of the term in this catalog.
    idf: f32,
}

/// An index of tools, searched by [`ToolIndex::search`].
#[derive(Debug, Default)]
pub struct ToolIndex {
    /// Term → its id, an index into `postings`.
    terms: HashMap<String, u32>,
    postings: Vec<Postings>,
    /// The postings of every term, one after the other, each term's in tool order: the tool,
    /// the term's saturated BM25F weight in it, and the fields it occurs in (bits of [`Field`]).
    posting_tools: Vec<u32>,
    posting_weights: Vec<f32>,
    posting_fields: Vec<u8>,
    /// For each posting in a tool's name: the share of the name's distinct terms it is.
    posting_name_shares: Vec<f32>,
    coverage: f32,
    /// Lower-cased qualified name, and bare name (after `__`), → the tools of that name.
    names: HashMap<String, Vec<u32>>,
    tools: usize,
    /// The query's weight of a related word.
    related: f32,
}

/// Why a tool scored what it did for a query.
#[derive(Debug, Clone, PartialEq)]
pub struct Explanation {
    /// The tool's score, as [`ToolIndex::search`] gives it.
    pub score: f32,
    /// Whether the query holds the tool's exact name ([`EXACT_NAME_BOOST`] is in the score).
    pub exact_name: bool,
    /// What the tool gains for the share of its name's words the query has
    /// ([`NAME_COVERAGE`]), in the score.
    pub name_coverage: f32,
    /// Every query term the tool has, in the query's order.
    pub terms: Vec<TermMatch>,
}

/// One term of a query that a tool has.
#[derive(Debug, Clone, PartialEq)]
pub struct TermMatch {
    /// The term (stemmed) as the index holds it.
    pub term: String,
    /// The query's word it comes from: the word the term is the stem of, or a word it is
    /// related to.
    pub from: String,
    /// The query's weight of the term: 1, or [`RELATED_WEIGHT`] for a related word.
    pub weight: f32,
    /// The tool's fields that hold the term.
    pub fields: Vec<Field>,
    /// What the term adds to the score.
    pub score: f32,
}

/// A search's scratch space, kept per thread: a score per tool and the tools touched.
#[derive(Default)]
struct Scratch {
    scores: Vec<f32>,
    touched: Vec<u32>,
    covered: Vec<f32>,
}

thread_local! {
    static SCRATCH: RefCell<Scratch> = RefCell::new(Scratch::default());
}

/// One term of a query: its id, the query's weight of it, and the word it comes from.
struct QueryTerm {
    id: u32,
    weight: f32,
    from: String,
}

impl ToolIndex {
    /// Indexes `tools`; a [`Hit`]'s `tool` is an index into this slice.
    pub fn build(tools: &[Tool]) -> ToolIndex {
        ToolIndex::build_tuned(tools, &TUNING)
    }

    pub(crate) fn build_tuned(tools: &[Tool], tuning: &Tuning) -> ToolIndex {
        let mut index = ToolIndex {
            tools: tools.len(),
            related: tuning.related,
            coverage: tuning.coverage,
            ..ToolIndex::default()
        };
        // Each tool's (term, field) occurrences, every field's total length, and the long
        // words of names, which may be compounds.
        let mut occurrences: Vec<Vec<(u32, Field)>> = Vec::with_capacity(tools.len());
        let mut lengths: Vec<[u32; FIELD_COUNT]> = Vec::with_capacity(tools.len());
        let mut totals = [0f64; FIELD_COUNT];
        let mut compounds: Vec<(usize, String)> = Vec::new();
        let mut term = String::new();
        let mut known: HashMap<String, Option<u32>> = HashMap::new();
        for (position, tool) in tools.iter().enumerate() {
            let mut tool_terms = Vec::new();
            let mut tool_lengths = [0u32; FIELD_COUNT];
            for_each_text(tool, |field, text| {
                // A field that counts for nothing is left out: every posting adds to a score.
                if tuning.fields[field as usize].weight <= 0.0 {
                    return;
                }
                each_word(text, field.is_identifier(), |word| {
                    // Catalogs repeat their words: each is stemmed and looked up once.
                    let id = match known.get(word) {
                        Some(&id) => id,
                        None => {
                            let id = (!is_stop_word(word)).then(|| {
                                stem_into(word, &mut term);
                                index.term_id(&term)
                            });
                            known.insert(word.to_owned(), id);
                            id
                        }
                    };
                    let Some(id) = id else {
                        return;
                    };
                    tool_terms.push((id, field));
                    tool_lengths[field as usize] += 1;
                    if field == Field::Name && word.len() >= 2 * MIN_PART && word.is_ascii() {
                        compounds.push((position, word.to_owned()));
                    }
                });
            });
            for (total, length) in totals.iter_mut().zip(tool_lengths) {
                *total += f64::from(length);
            }
            occurrences.push(tool_terms);
            lengths.push(tool_lengths);
            index.add_names(tool, position);
        }
        // A name's word made of two words the catalog has elsewhere (`worklog`, `heapsnapshot`)
        // has its parts in the name too, as extra occurrences that do not lengthen it.
        for (position, word) in compounds {
            if let Some((head, tail)) = index.split_compound(&word) {
                occurrences[position].push((head, Field::Name));
                occurrences[position].push((tail, Field::Name));
            }
        }
        // Each term once per tool for its document frequency.
        let mut frequencies: Vec<u32> = vec![0; index.terms.len()];
        for tool_terms in &mut occurrences {
            tool_terms.sort_unstable();
            let mut previous = None;
            for &(id, _) in tool_terms.iter() {
                if previous != Some(id) {
                    frequencies[id as usize] += 1;
                    previous = Some(id);
                }
            }
        }
        frequencies.resize(index.terms.len(), 0);
        let count = tools.len().max(1) as f64;
        let averages = totals.map(|total| (total / count).max(1.0) as f32);

        // Each term's postings start where the previous term's end.
        let mut next = 0u32;
        index.postings = frequencies
            .iter()
            .map(|&frequency| {
                let n = tools.len() as f32;
                let df = frequency as f32;
                let postings = Postings {
                    start: next,
                    end: next,
                    idf: (1.0 + (n - df + 0.5) / (df + 0.5)).ln(),
                };
                next += frequency;
                postings
            })
            .collect();
        let size = next as usize;
        index.posting_tools = vec![0; size];
        index.posting_weights = vec![0.0; size];
        index.posting_fields = vec![0; size];
        index.posting_name_shares = vec![0.0; size];
        for (tool, (tool_terms, tool_lengths)) in occurrences.iter().zip(&lengths).enumerate() {
            let name_terms = {
                let mut names: Vec<u32> = tool_terms
                    .iter()
                    .filter(|(_, field)| *field == Field::Name)
                    .map(|(id, _)| *id)
                    .collect();
                names.dedup();
                names.len().max(1) as f32
            };
            // The tool's terms are sorted: each run is one term, its fields in order.
            let mut at = 0;
            while at < tool_terms.len() {
                let id = tool_terms[at].0;
                let mut frequency = 0f32;
                let mut fields = 0u8;
                while at < tool_terms.len() && tool_terms[at].0 == id {
                    let field = tool_terms[at].1;
                    let rule = tuning.fields[field as usize];
                    let length = tool_lengths[field as usize] as f32;
                    let norm = 1.0 - rule.b + rule.b * length / averages[field as usize];
                    frequency += rule.weight / norm;
                    fields |= field.bit();
                    at += 1;
                }
                let postings = &mut index.postings[id as usize];
                let slot = postings.end as usize;
                postings.end += 1;
                index.posting_tools[slot] = tool as u32;
                index.posting_weights[slot] = frequency / (tuning.k1 + frequency);
                index.posting_fields[slot] = fields;
                if fields & Field::Name.bit() != 0 {
                    index.posting_name_shares[slot] = 1.0 / name_terms;
                }
            }
        }
        index
    }

    /// The id of `term`, new if the index has not seen it.
    fn term_id(&mut self, term: &str) -> u32 {
        if let Some(&id) = self.terms.get(term) {
            return id;
        }
        let id = self.terms.len() as u32;
        self.terms.insert(term.to_owned(), id);
        id
    }

    /// The two terms `word` is made of, if it is two words the index has, each at least
    /// [`MIN_PART`] letters and neither a stop word, the longest head first.
    fn split_compound(&self, word: &str) -> Option<(u32, u32)> {
        (MIN_PART..=word.len() - MIN_PART).rev().find_map(|at| {
            let (head, tail) = word.split_at(at);
            let head = self.terms.get(&term_of(head)?)?;
            let tail = self.terms.get(&term_of(tail)?)?;
            Some((*head, *tail))
        })
    }

    fn add_names(&mut self, tool: &Tool, position: usize) {
        let full = tool.name.to_lowercase();
        let bare = full
            .split_once(SEPARATOR)
            .map(|(_, bare)| bare.to_owned())
            .filter(|bare| !bare.is_empty());
        for name in std::iter::once(full).chain(bare) {
            let tools = self.names.entry(name).or_default();
            if tools.last() != Some(&(position as u32)) {
                tools.push(position as u32);
            }
        }
    }

    /// The number of tools indexed.
    pub fn len(&self) -> usize {
        self.tools
    }

    /// Whether no tool is indexed.
    pub fn is_empty(&self) -> bool {
        self.tools == 0
    }

    /// The `limit` best tools for `query` among those `keep` accepts, best first; ties in
    /// the tools' order.
    pub fn search(&self, query: &str, limit: usize, keep: impl Fn(usize) -> bool) -> Vec<Hit> {
        if limit == 0 || self.tools == 0 {
            return Vec::new();
        }
        let terms = self.query_terms(query);
        let exact = self.exact_names(query);
        // A `keep` that searches again finds this thread's scratch in use: it gets its own.
        SCRATCH.with(|cell| match cell.try_borrow_mut() {
            Ok(mut scratch) => self.rank(&terms, &exact, limit, &keep, &mut scratch),
            Err(_) => self.rank(&terms, &exact, limit, &keep, &mut Scratch::default()),
        })
    }

    fn rank(
        &self,
        terms: &[QueryTerm],
        exact: &[u32],
        limit: usize,
        keep: &impl Fn(usize) -> bool,
        scratch: &mut Scratch,
    ) -> Vec<Hit> {
        let Scratch {
            scores,
            touched,
            covered,
        } = scratch;
        if scores.len() < self.tools {
            scores.resize(self.tools, 0.0);
            covered.resize(self.tools, 0.0);
        }
        // Every addition is positive, so a score of zero means "not touched yet".
        for term in terms {
            let postings = self.postings[term.id as usize];
            let factor = term.weight * postings.idf;
            let range = postings.start as usize..postings.end as usize;
            for ((&tool, &weight), &share) in self.posting_tools[range.clone()]
                .iter()
                .zip(&self.posting_weights[range.clone()])
                .zip(&self.posting_name_shares[range])
            {
                let score = &mut scores[tool as usize];
                if *score == 0.0 {
                    touched.push(tool);
                }
                *score += factor * weight;
                covered[tool as usize] += term.weight * share;
            }
        }
        for &tool in exact {
            let score = &mut scores[tool as usize];
            if *score == 0.0 {
                touched.push(tool);
            }
            *score += EXACT_NAME_BOOST;
        }
        // The scratch is left clean before `keep` runs, whatever `keep` does.
        let mut hits: Vec<Hit> = touched
            .drain(..)
            .map(|tool| {
                let cover = std::mem::take(&mut covered[tool as usize]);
                let score = std::mem::take(&mut scores[tool as usize]);
                Hit {
                    tool: tool as usize,
                    score: score + self.coverage * cover * cover,
                }
            })
            .collect();
        hits.retain(|hit| keep(hit.tool));
        let order = |a: &Hit, b: &Hit| b.score.total_cmp(&a.score).then(a.tool.cmp(&b.tool));
        if hits.len() > limit {
            hits.select_nth_unstable_by(limit - 1, order);
            hits.truncate(limit);
        }
        hits.sort_unstable_by(order);
        hits
    }

    /// Why `tool` scores what it does for `query`: the same figures [`ToolIndex::search`] adds.
    pub fn explain(&self, query: &str, tool: usize) -> Explanation {
        let mut explanation = Explanation {
            score: 0.0,
            exact_name: self.exact_names(query).contains(&(tool as u32)),
            name_coverage: 0.0,
            terms: Vec::new(),
        };
        let mut covered = 0.0;
        let names: HashMap<u32, &str> = self
            .terms
            .iter()
            .map(|(term, &id)| (id, term.as_str()))
            .collect();
        for term in self.query_terms(query) {
            let postings = self.postings[term.id as usize];
            let range = postings.start as usize..postings.end as usize;
            let Ok(at) = self.posting_tools[range.clone()].binary_search(&(tool as u32)) else {
                continue;
            };
            let slot = range.start + at;
            let score = term.weight * postings.idf * self.posting_weights[slot];
            explanation.score += score;
            covered += term.weight * self.posting_name_shares[slot];
            let fields = self.posting_fields[slot];
            explanation.terms.push(TermMatch {
                term: names.get(&term.id).copied().unwrap_or_default().to_owned(),
                from: term.from,
                weight: term.weight,
                fields: Field::ALL
                    .into_iter()
                    .filter(|field| fields & field.bit() != 0)
                    .collect(),
                score,
            });
        }
        if explanation.exact_name {
            explanation.score += EXACT_NAME_BOOST;
        }
        explanation.name_coverage = self.coverage * covered * covered;
        explanation.score += explanation.name_coverage;
        explanation
    }

    /// The query's terms the index has, each once: the query's own words at weight 1 (stop
    /// words left out), then the words related to them at [`RELATED_WEIGHT`] (a stop word may
    /// have some: "who" looks for users). A word both in the query and related to one of its
    /// words counts as the query's.
    fn query_terms(&self, query: &str) -> Vec<QueryTerm> {
        let words: Vec<(String, String)> = words(query, false)
            .into_iter()
            .map(|word| {
                let stem = stem(&word);
                (word, stem)
            })
            .collect();
        let mut terms: Vec<QueryTerm> = Vec::new();
        let mut add = |term: &str, weight: f32, from: &str| {
            let Some(&id) = self.terms.get(term) else {
                return;
            };
            if !terms.iter().any(|known| known.id == id) {
                terms.push(QueryTerm {
                    id,
                    weight,
                    from: from.to_owned(),
                });
            }
        };
        for (word, stem) in &words {
            if !is_stop_word(word) {
                add(stem, 1.0, word);
            }
        }
        for (word, stem) in &words {
            for related in related(stem) {
                add(related, self.related, word);
            }
        }
        terms
    }

    /// The tools whose exact name the query holds, case aside: a word of the query (split at
    /// white space, quotes and sentence punctuation trimmed) that is a tool's qualified name,
    /// or its bare name (after `__`) when that is an identifier (`take_screenshot`, not
    /// `search`), or a whole query that is a bare name.
    fn exact_names(&self, query: &str) -> Vec<u32> {
        let mut found: Vec<u32> = Vec::new();
        let whole = query.trim();
        let candidates = query
            .split_whitespace()
            .map(|word| {
                word.trim_matches(|ch: char| !(ch.is_alphanumeric() || ch == '_' || ch == '-'))
            })
            .filter(|word| {
                word.contains(SEPARATOR)
                    || word.contains(['_', '-', '.'])
                    || word.chars().skip(1).any(char::is_uppercase)
            })
            .chain((!whole.contains(char::is_whitespace)).then_some(whole));
        for word in candidates {
            if word.is_empty() {
                continue;
            }
            if let Some(tools) = self.names.get(&word.to_lowercase()) {
                for &tool in tools {
                    if !found.contains(&tool) {
                        found.push(tool);
                    }
                }
            }
        }
        found
    }
}

/// Calls `each` with every text of `tool` that a search matches, with its field.
fn for_each_text(tool: &Tool, mut each: impl FnMut(Field, &str)) {
    match tool.name.split_once(SEPARATOR) {
        Some((server, name)) => {
            each(Field::Server, server);
            each(Field::Name, name);
        }
        None => each(Field::Name, &tool.name),
    }
    if let Some(title) = &tool.title {
        each(Field::Title, title);
    }
    if let Some(description) = &tool.description {
        each(Field::Description, description);
    }
    if let Some(hint) = tool
        .meta
        .as_ref()
        .and_then(|meta| meta.get(SEARCH_HINT))
        .and_then(|hint| hint.as_str())
    {
        each(Field::Hint, hint);
    }
    if let Some(properties) = tool
        .input_schema
        .get("properties")
        .and_then(|properties| properties.as_object())
    {
        for (name, property) in properties {
            each(Field::Parameter, name);
            if let Some(description) = property.get("description").and_then(|d| d.as_str()) {
                each(Field::ParameterDescription, description);
            }
        }
    }
}

/// Calls `each` with the lower-case words of `text`, split at anything not alphanumeric (so at
/// `_ - .` and spaces). With `split_case`, also between a lower-case letter or digit and an
/// upper-case one (`camelCase`), and before the last capital of a run followed by a lower-case
/// word (`URLPath` → `url`, `path`; but `APIs` → `apis`).
fn each_word(text: &str, split_case: bool, mut each: impl FnMut(&str)) {
    let mut word = String::new();
    let mut previous = ' ';
    for (at, ch) in text.char_indices() {
        if !ch.is_alphanumeric() {
            if !word.is_empty() {
                each(&word);
                word.clear();
            }
            continue;
        }
        if split_case && ch.is_uppercase() && !word.is_empty() {
            let mut rest = text[at + ch.len_utf8()..].chars();
            let (one, two) = (rest.next(), rest.next());
            // A lower-case `s` alone is a plural (`APIs`), not the start of a word.
            let lower_word_follows = one.is_some_and(char::is_lowercase)
                && (one != Some('s') || two.is_some_and(char::is_lowercase));
            if previous.is_lowercase()
                || previous.is_ascii_digit()
                || previous.is_uppercase() && lower_word_follows
            {
                each(&word);
                word.clear();
            }
        }
        previous = ch;
        if ch.is_ascii() {
            word.push(ch.to_ascii_lowercase());
        } else {
            word.extend(ch.to_lowercase());
        }
    }
    if !word.is_empty() {
        each(&word);
    }
}

/// The lower-case words of `text` (see [`each_word`]).
fn words(text: &str, split_case: bool) -> Vec<String> {
    let mut words = Vec::new();
    each_word(text, split_case, |word| words.push(word.to_owned()));
    words
}

/// The index's term for a lower-case word: none for a stop word, else its stem.
fn term_of(word: &str) -> Option<String> {
    (!is_stop_word(word)).then(|| stem(word))
}

fn is_stop_word(word: &str) -> bool {
    STOP_WORDS.binary_search(&word).is_ok()
}

/// Words too common to tell tools apart, in queries and in tools alike; sorted.
const STOP_WORDS: &[&str] = &[
    "a", "about", "all", "also", "am", "an", "and", "any", "are", "as", "at", "be", "been", "but",
    "by", "can", "could", "did", "do", "does", "e", "for", "from", "g", "had", "has", "have", "he",
    "her", "here", "his", "how", "i", "if", "in", "into", "is", "it", "its", "just", "let", "me",
    "my", "of", "on", "or", "our", "please", "s", "she", "should", "so", "some", "than", "that",
    "the", "their", "them", "then", "there", "these", "they", "this", "those", "to", "up", "us",
    "was", "we", "were", "what", "when", "where", "which", "while", "who", "why", "will", "with",
    "would", "you", "your",
];

/// The stem of a lower-case word (see [`stem_into`]).
fn stem(word: &str) -> String {
    let mut stem = String::new();
    stem_into(word, &mut stem);
    stem
}

/// A light stemmer: a plural or verb ending off, then a final `e`, so that `entries`/`entry`,
/// `creates`/`created`/`creating`/`create` and `running`/`run` meet. A step that would leave
/// fewer than three letters is not taken; words that are not ASCII are kept as they are.
/// Writes the stem into `stem`.
fn stem_into(word: &str, stem: &mut String) {
    stem.clear();
    stem.push_str(word);
    if !word.is_ascii() {
        return;
    }
    let long = |length: usize| length >= 3;
    if let Some(root) = word
        .strip_suffix("ies")
        .or_else(|| word.strip_suffix("ied"))
        .filter(|root| long(root.len()))
    {
        stem.truncate(root.len());
        stem.push('y');
    } else if word.ends_with("sses")
        || ["xes", "ches", "shes", "zes"]
            .iter()
            .any(|suffix| word.ends_with(suffix))
    {
        stem.truncate(word.len() - 2);
    } else if word.ends_with('s') && !["ss", "us", "is"].iter().any(|end| word.ends_with(end)) {
        if long(word.len() - 1) {
            stem.truncate(word.len() - 1);
        }
    } else if let Some(root) = word
        .strip_suffix("ing")
        .or_else(|| word.strip_suffix("ed"))
        .filter(|root| long(root.len()))
    {
        stem.truncate(undoubled(root).len());
    }
    if stem.ends_with('e') && long(stem.len() - 1) && !stem.ends_with("ee") {
        stem.pop();
    }
}

/// `runn` → `run`, `stopp` → `stop`: a verb's doubled last consonant before `-ing`/`-ed`, but
/// not where a word ends so (`call`, `pass`, `add`).
fn undoubled(base: &str) -> &str {
    let bytes = base.as_bytes();
    let n = bytes.len();
    if n >= 4
        && bytes[n - 1] == bytes[n - 2]
        && !matches!(
            bytes[n - 1],
            b'a' | b'e' | b'i' | b'o' | b'u' | b'l' | b's' | b'z' | b'f'
        )
    {
        &base[..n - 1]
    } else {
        base
    }
}

/// Words and the words they are related to: a query's word also looks for these at
/// [`RELATED_WEIGHT`]. General vocabulary of tools and of the people asking for them (a verb's
/// near-synonyms, a thing's other names, the tool word for a person's word), never a catalog's
/// own names; stemmed when the table is first used.
const RELATED: &[(&str, &[&str])] = &[
    // Acting on things.
    ("add", &["create", "insert", "new", "append", "sum"]),
    ("append", &["add", "insert"]),
    ("create", &["add", "new", "make"]),
    ("make", &["create", "new", "generate"]),
    ("new", &["create", "add"]),
    ("insert", &["add", "create", "write"]),
    ("open", &["create", "read", "navigate", "launch"]),
    ("write", &["create", "save", "set", "update", "edit"]),
    ("put", &["write", "set", "insert", "upload"]),
    ("save", &["write", "store", "export", "download"]),
    ("store", &["save", "write"]),
    ("keep", &["store", "save"]),
    ("prefer", &["preference", "setting"]),
    ("remember", &["memory", "store", "save", "observation"]),
    ("forget", &["delete", "remove", "memory"]),
    ("remove", &["delete", "drop", "erase", "clear"]),
    ("delete", &["remove", "drop", "erase"]),
    ("drop", &["delete", "remove"]),
    ("erase", &["delete", "remove", "clear"]),
    ("clear", &["delete", "remove", "reset"]),
    ("update", &["edit", "modify", "change", "set"]),
    ("change", &["update", "edit", "modify", "set", "diff"]),
    ("edit", &["update", "modify", "change", "replace"]),
    ("modify", &["update", "edit", "change"]),
    ("set", &["update", "configure", "change"]),
    ("replace", &["edit", "update", "substitute"]),
    ("swap", &["replace"]),
    ("rename", &["move", "name"]),
    ("move", &["rename", "drag", "transfer"]),
    ("copy", &["duplicate", "clone"]),
    ("duplicate", &["copy", "clone"]),
    ("clone", &["copy", "fork"]),
    ("fork", &["clone", "copy"]),
    // Reading and finding.
    ("get", &["read", "fetch", "retrieve"]),
    ("read", &["get", "view", "open", "fetch"]),
    (
        "show",
        &["get", "read", "view", "list", "display", "describe"],
    ),
    ("see", &["get", "read", "view", "show", "list"]),
    ("view", &["get", "read", "show"]),
    ("display", &["show", "get"]),
    ("fetch", &["get", "download", "retrieve", "read"]),
    ("retrieve", &["get", "fetch", "read"]),
    ("download", &["fetch", "get", "save", "export"]),
    ("upload", &["put", "attach", "import"]),
    ("find", &["search", "lookup", "query", "locate", "get"]),
    ("search", &["find", "query", "lookup"]),
    ("look", &["search", "find", "view", "get"]),
    ("lookup", &["search", "find", "get"]),
    ("locate", &["find", "search"]),
    ("check", &["get", "status", "validate", "verify", "inspect"]),
    ("verify", &["validate", "check"]),
    ("validate", &["check", "verify", "lint"]),
    ("inspect", &["get", "describe", "check"]),
    ("describe", &["schema", "info", "detail", "structure"]),
    ("explain", &["describe", "analyze"]),
    ("why", &["reason", "explain", "analyze", "debug", "cause"]),
    ("who", &["user", "member", "author", "people"]),
    ("when", &["date", "time"]),
    ("many", &["count", "number", "total"]),
    ("count", &["number", "total"]),
    ("number", &["count", "total"]),
    ("total", &["count", "sum"]),
    ("sum", &["add", "total"]),
    ("plus", &["add", "sum"]),
    ("calculate", &["compute", "sum", "evaluate"]),
    // Running and stopping.
    ("run", &["execute", "start", "launch", "call", "trigger"]),
    ("execute", &["run", "call", "invoke"]),
    ("start", &["run", "launch", "begin", "create"]),
    ("launch", &["start", "run", "open"]),
    ("trigger", &["run", "start"]),
    ("restart", &["rerun", "retry", "start"]),
    ("retry", &["rerun", "restart"]),
    ("rerun", &["retry", "run"]),
    ("stop", &["kill", "terminate", "cancel", "end", "abort"]),
    ("cancel", &["stop", "abort", "terminate", "kill"]),
    ("kill", &["stop", "terminate", "force"]),
    ("terminate", &["kill", "stop"]),
    ("abort", &["cancel", "stop"]),
    ("end", &["stop", "close", "terminate"]),
    ("quit", &["close", "exit", "stop"]),
    ("close", &["end", "stop", "state"]),
    ("wait", &["poll", "status"]),
    ("continue", &["next", "resume", "more"]),
    ("rest", &["remaining", "more", "continue"]),
    // Pages and browsers.
    ("go", &["navigate", "visit", "open"]),
    ("visit", &["navigate", "open", "go"]),
    ("navigate", &["go", "open", "visit"]),
    ("click", &["press", "select"]),
    ("press", &["click", "key", "type"]),
    ("hit", &["press", "click", "key"]),
    ("type", &["fill", "enter", "input"]),
    ("fill", &["type", "enter", "input", "form"]),
    ("enter", &["type", "fill", "input", "press", "key"]),
    ("choose", &["select", "pick", "option"]),
    ("pick", &["select", "choose"]),
    ("mouse", &["hover", "click", "drag"]),
    ("drag", &["drop", "move"]),
    ("screenshot", &["capture", "image", "snapshot"]),
    ("image", &["screenshot", "picture", "photo", "snapshot"]),
    ("picture", &["image", "screenshot", "photo"]),
    ("photo", &["image", "picture"]),
    ("capture", &["screenshot", "snapshot", "record"]),
    ("snapshot", &["screenshot", "capture"]),
    ("popup", &["dialog", "alert", "modal"]),
    ("dialog", &["popup", "alert", "modal", "confirm"]),
    ("modal", &["dialog", "popup"]),
    ("alert", &["dialog", "popup", "notification"]),
    ("accept", &["confirm", "approve", "dialog"]),
    ("confirm", &["accept", "approve"]),
    ("dismiss", &["close", "reject", "cancel"]),
    ("website", &["site", "page", "web", "url"]),
    ("site", &["website", "page", "web"]),
    ("page", &["tab", "site"]),
    ("tab", &["page", "window"]),
    ("url", &["link", "address", "page"]),
    ("link", &["url", "address", "relation"]),
    ("relation", &["link", "relationship", "connection"]),
    ("address", &["url", "location", "link"]),
    ("crawl", &["scrape", "spider"]),
    ("scrape", &["crawl", "extract", "fetch"]),
    ("extract", &["parse", "scrape", "get"]),
    ("parse", &["extract", "convert"]),
    ("convert", &["transform", "export", "parse"]),
    ("export", &["download", "save", "convert"]),
    ("import", &["load", "upload"]),
    ("load", &["import", "open", "read"]),
    ("web", &["internet", "online", "search"]),
    ("internet", &["web", "online"]),
    ("online", &["web", "internet"]),
    ("news", &["search", "web", "recent"]),
    ("console", &["log", "output"]),
    ("print", &["output", "log", "stdout", "console"]),
    ("output", &["log", "result", "print", "stdout"]),
    ("log", &["history", "output", "record", "console"]),
    ("trace", &["profile", "performance", "record"]),
    ("performance", &["trace", "speed", "profile"]),
    ("slow", &["performance", "throttle", "speed"]),
    ("simulate", &["emulate", "mock"]),
    ("emulate", &["simulate"]),
    ("leak", &["heap", "memory"]),
    ("memory", &["heap", "ram"]),
    ("heap", &["memory"]),
    // Files, folders and documents.
    ("folder", &["directory", "dir"]),
    ("directory", &["folder", "dir"]),
    ("file", &["document", "doc"]),
    ("document", &["file", "doc"]),
    ("doc", &["document", "documentation", "docs"]),
    ("docs", &["documentation", "doc"]),
    (
        "documentation",
        &["doc", "docs", "guide", "manual", "reference"],
    ),
    ("content", &["text", "body"]),
    ("text", &["content", "string"]),
    ("size", &["big", "space", "bytes", "length"]),
    ("big", &["size", "large"]),
    ("large", &["size", "big"]),
    ("space", &["size", "disk"]),
    ("spreadsheet", &["excel", "workbook", "sheet", "xlsx"]),
    ("workbook", &["spreadsheet", "excel", "xlsx"]),
    ("excel", &["spreadsheet", "workbook", "xlsx"]),
    ("sheet", &["spreadsheet", "worksheet", "tab"]),
    ("cell", &["range", "cells"]),
    ("row", &["record", "entry", "line", "item"]),
    ("column", &["field"]),
    ("field", &["column", "property", "attribute", "schema"]),
    ("structure", &["schema", "outline", "tree", "layout"]),
    ("schema", &["structure", "field", "column"]),
    ("outline", &["structure", "heading"]),
    ("heading", &["title", "header"]),
    ("header", &["heading"]),
    ("title", &["heading", "name"]),
    ("chart", &["graph", "plot", "diagram"]),
    ("graph", &["chart", "plot"]),
    ("highlight", &["format", "color", "style", "mark"]),
    ("color", &["colour", "format", "style"]),
    ("colour", &["color", "format", "style"]),
    ("red", &["color"]),
    ("style", &["format", "css"]),
    ("css", &["style"]),
    ("sort", &["order"]),
    ("order", &["sort"]),
    ("word", &["docx", "document"]),
    ("docx", &["word", "document"]),
    ("pdf", &["document"]),
    ("password", &["protect", "secret", "credential"]),
    ("protect", &["password", "lock", "secure"]),
    // Code, forges and trackers.
    ("repository", &["repo", "project"]),
    ("repo", &["repository", "project"]),
    ("project", &["repository", "repo", "workspace"]),
    ("issue", &["ticket", "bug", "problem"]),
    ("ticket", &["issue", "bug", "task"]),
    ("bug", &["issue", "ticket", "error", "defect"]),
    ("problem", &["issue", "error"]),
    ("error", &["exception", "issue", "failure", "bug", "fail"]),
    ("fail", &["error", "failure", "failed"]),
    ("crash", &["error", "exception"]),
    ("pr", &["pull", "request", "merge"]),
    ("mr", &["merge", "request"]),
    ("comment", &["note", "reply", "discussion", "remark"]),
    ("reply", &["comment", "respond", "answer", "thread"]),
    ("answer", &["reply", "respond"]),
    ("note", &["comment", "observation", "memo"]),
    ("approve", &["accept", "review", "approval"]),
    ("reject", &["decline", "deny", "dismiss"]),
    ("history", &["log", "changelog", "revision", "version"]),
    ("version", &["revision", "history", "release"]),
    ("commit", &["change", "revision"]),
    ("diff", &["compare", "change", "difference"]),
    ("compare", &["diff", "difference"]),
    ("difference", &["diff", "compare"]),
    ("stage", &["add", "staged", "index"]),
    ("revert", &["undo", "rollback", "reset"]),
    ("undo", &["revert", "reset"]),
    ("rollback", &["revert", "undo"]),
    ("deploy", &["release", "publish", "ship"]),
    ("release", &["deploy", "version", "publish"]),
    ("pipeline", &["workflow", "build", "job", "ci"]),
    ("workflow", &["pipeline", "job"]),
    ("build", &["pipeline", "job", "compile"]),
    ("job", &["pipeline", "build", "task"]),
    ("test", &["spec", "check"]),
    ("flaky", &["flake", "intermittent", "unstable"]),
    ("tag", &["label"]),
    ("label", &["tag"]),
    ("assign", &["assignee", "owner"]),
    ("blame", &["annotate", "author"]),
    ("author", &["owner", "creator", "user"]),
    // People, messages and accounts.
    (
        "user",
        &["member", "person", "account", "people", "profile"],
    ),
    ("person", &["user", "member", "people", "contact"]),
    ("people", &["user", "member", "person"]),
    ("member", &["user", "people"]),
    ("account", &["user", "profile", "login"]),
    ("profile", &["user", "account"]),
    ("login", &["auth", "sign", "account", "user"]),
    ("team", &["group", "member", "organization"]),
    ("organization", &["org", "team", "company"]),
    ("org", &["organization"]),
    ("message", &["post", "chat", "send", "text"]),
    ("send", &["post", "message", "publish", "notify"]),
    ("post", &["send", "message", "publish"]),
    ("tell", &["message", "send", "comment", "notify"]),
    ("say", &["message", "post", "comment"]),
    ("said", &["message", "post", "comment"]),
    ("chat", &["message", "channel"]),
    ("channel", &["chat", "room"]),
    ("email", &["mail", "address"]),
    ("mail", &["email"]),
    ("notify", &["notification", "alert", "message"]),
    ("watch", &["monitor", "subscribe", "follow", "alert"]),
    ("monitor", &["watch", "track"]),
    ("follow", &["watch", "subscribe"]),
    ("subscribe", &["watch", "follow"]),
    ("permission", &["access", "allowed", "restriction", "role"]),
    ("permit", &["allow", "permission", "access"]),
    ("allowed", &["permission", "access", "permit"]),
    ("access", &["permission", "allow"]),
    ("secret", &["password", "key", "credential", "token"]),
    ("key", &["secret", "token", "credential"]),
    ("token", &["key", "secret"]),
    ("config", &["configuration", "setting", "option"]),
    ("configuration", &["config", "setting"]),
    (
        "setting",
        &["config", "configuration", "option", "preference"],
    ),
    ("option", &["setting", "config"]),
    ("env", &["environment", "variable"]),
    ("environment", &["env", "variable"]),
    // Time and place.
    ("time", &["clock", "date", "hour", "zone"]),
    ("clock", &["time"]),
    ("now", &["current", "time"]),
    ("moment", &["now", "current"]),
    ("today", &["date", "current", "recent"]),
    ("date", &["time", "day"]),
    ("recent", &["latest", "last", "new"]),
    ("latest", &["recent", "last", "newest", "current"]),
    ("last", &["latest", "recent", "previous"]),
    ("previous", &["last", "prior"]),
    ("current", &["now", "active"]),
    ("place", &["location", "business", "nearby"]),
    ("near", &["nearby", "location", "local"]),
    ("nearby", &["near", "local"]),
    ("location", &["place", "address", "coordinate"]),
    (
        "coordinate",
        &["geocode", "latitude", "longitude", "location"],
    ),
    ("drive", &["direction", "route", "distance", "travel"]),
    ("travel", &["direction", "route", "distance"]),
    ("direction", &["route", "travel"]),
    ("route", &["direction", "path"]),
    ("distance", &["travel", "direction"]),
    ("far", &["distance"]),
    // Data and money.
    ("database", &["db", "sql"]),
    ("db", &["database"]),
    ("query", &["sql", "search", "select"]),
    ("select", &["query", "sql", "choose"]),
    ("sql", &["query", "database"]),
    ("collection", &["table"]),
    ("table", &["collection", "sheet"]),
    ("record", &["row", "entry", "capture"]),
    ("payment", &["pay", "charge", "invoice", "checkout"]),
    ("checkout", &["payment", "pay"]),
    ("invoice", &["bill", "payment"]),
    ("customer", &["client", "user"]),
    ("subscription", &["plan", "recurring"]),
    ("plan", &["subscription", "price"]),
    ("price", &["cost", "plan"]),
    ("discount", &["coupon", "promo"]),
    ("coupon", &["discount", "promo"]),
    ("paper", &["article", "publication"]),
    ("article", &["paper", "post"]),
    ("citation", &["cite", "bibtex", "reference"]),
    ("bibtex", &["citation"]),
    ("cite", &["citation"]),
    ("summary", &["summarize", "overview", "abstract"]),
    ("summarize", &["summary"]),
    ("abstract", &["summary"]),
    ("repeat", &["echo"]),
    ("echo", &["repeat"]),
    ("process", &["program", "task", "pid"]),
    ("program", &["process", "application"]),
    ("terminal", &["shell", "session", "console", "process"]),
    ("shell", &["terminal", "command"]),
    ("command", &["shell", "terminal", "execute"]),
];

/// The stemmed words related to a stemmed `term` ([`RELATED`]).
fn related(term: &str) -> impl Iterator<Item = &'static str> + '_ {
    static TABLE: OnceLock<HashMap<String, Vec<String>>> = OnceLock::new();
    let table = TABLE.get_or_init(|| {
        let mut table: HashMap<String, Vec<String>> = HashMap::new();
        for (word, others) in RELATED {
            let entry = table.entry(stem(word)).or_default();
            for other in others.iter().map(|other| stem(other)) {
                if !entry.contains(&other) {
                    entry.push(other);
                }
            }
        }
        table
    });
    table.get(term).into_iter().flatten().map(String::as_str)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tool(name: &str, description: &str) -> Tool {
        Tool::new(
            name.to_owned(),
            description.to_owned(),
            std::sync::Arc::new(serde_json::Map::new()),
        )
    }

    /// A tool with parameters: (name, description) pairs.
    fn tool_with(name: &str, description: &str, parameters: &[(&str, &str)]) -> Tool {
        let properties: serde_json::Map<String, serde_json::Value> = parameters
            .iter()
            .map(|(name, description)| {
                (
                    (*name).to_owned(),
                    serde_json::json!({"type": "string", "description": description}),
                )
            })
            .collect();
        let schema = serde_json::json!({"type": "object", "properties": properties});
        let serde_json::Value::Object(schema) = schema else {
            unreachable!("a JSON object literal")
        };
        Tool::new(
            name.to_owned(),
            description.to_owned(),
            std::sync::Arc::new(schema),
        )
    }

    fn first(index: &ToolIndex, query: &str) -> Option<usize> {
        index.search(query, 5, |_| true).first().map(|hit| hit.tool)
    }

    #[test]
    fn the_tool_whose_words_the_query_uses_comes_first() {
        let tools = [
            tool("git__create_branch", "Creates a new branch"),
            tool("time__get_current_time", "The current time in a time zone"),
        ];
        let index = ToolIndex::build(&tools);
        let hits = index.search("what time is it in Tokyo", 5, |_| true);
        assert_eq!(hits.first().map(|hit| hit.tool), Some(1));
        assert!(
            index
                .search("what time is it", 5, |tool| tool != 1)
                .is_empty()
        );
    }

    #[test]
    fn a_query_naming_a_tool_exactly_puts_it_first() {
        let tools = [
            tool(
                "web__search",
                "Search the web for pages about anything: search, search.",
            ),
            tool("files__search_files", "Search files by name"),
            tool("files__read_file", "Read a file"),
        ];
        let index = ToolIndex::build(&tools);
        // The qualified name, and the bare name when it is an identifier.
        assert_eq!(
            first(&index, "search with files__read_file please"),
            Some(2)
        );
        assert_eq!(first(&index, "use `read_file` to search the web"), Some(2));
        let explanation = index.explain("use `read_file` to search the web", 2);
        assert!(explanation.exact_name);
        assert!(explanation.score >= EXACT_NAME_BOOST);
        // A bare name that is an ordinary word is a word like any other inside a sentence...
        let hits = index.search("search files for the report", 5, |_| true);
        assert_eq!(hits.first().map(|hit| hit.tool), Some(1));
        assert!(hits.iter().all(|hit| hit.score < EXACT_NAME_BOOST));
        // ...and a name when it is the whole query.
        assert!(index.explain("search", 0).exact_name);
    }

    #[test]
    fn a_word_counts_most_in_the_name_then_the_description_then_a_parameter() {
        let tools = [
            tool_with("a__archive", "Keeps things.", &[("id", "What to keep")]),
            tool_with("b__keep", "Stores things.", &[("id", "What to store")]),
            tool_with("c__store", "Archives things.", &[("id", "What to store")]),
            tool_with(
                "d__store",
                "Stores things.",
                &[("id", "The archive to use")],
            ),
        ];
        let index = ToolIndex::build(&tools);
        let order: Vec<usize> = index
            .search("archive", 5, |_| true)
            .iter()
            .map(|hit| hit.tool)
            .collect();
        assert_eq!(order, [0, 2, 3]);
        let fields = |tool| index.explain("archive", tool).terms[0].fields.clone();
        assert_eq!(fields(0), [Field::Name]);
        assert_eq!(fields(2), [Field::Description]);
        assert_eq!(fields(3), [Field::ParameterDescription]);
        // The server's words are a field of their own.
        let tools = [
            tool("jira__create_issue", "Create an issue"),
            tool("github__create_issue", "Create an issue"),
        ];
        let index = ToolIndex::build(&tools);
        assert_eq!(first(&index, "create an issue in GitHub"), Some(1));
        assert_eq!(index.explain("github", 1).terms[0].fields, [Field::Server]);
    }

    #[test]
    fn the_search_hint_and_title_are_matched() {
        let mut hinted = tool("x__run", "Runs it.");
        let mut meta = serde_json::Map::new();
        meta.insert(
            SEARCH_HINT.to_owned(),
            serde_json::json!("deploy release ship"),
        );
        hinted.meta = Some(meta.into());
        let mut titled = tool("y__run", "Runs it.");
        titled.title = Some("Rollback".to_owned());
        let index = ToolIndex::build(&[tool("z__run", "Runs it."), hinted, titled]);
        assert_eq!(first(&index, "ship it"), Some(1));
        assert_eq!(index.explain("ship", 1).terms[0].fields, [Field::Hint]);
        assert_eq!(first(&index, "rollback"), Some(2));
        assert_eq!(index.explain("rollback", 2).terms[0].fields, [Field::Title]);
    }

    #[test]
    fn the_same_query_ranks_the_same_and_ties_keep_the_tools_order() {
        let tools: Vec<Tool> = (0..20)
            .map(|n| tool(&format!("s{}__get_page", n % 7), "Gets a page"))
            .chain([tool("t__list_pages", "Lists pages")])
            .collect();
        let index = ToolIndex::build(&tools);
        let hits = index.search("get the page", 10, |_| true);
        assert_eq!(hits.len(), 10);
        let order: Vec<usize> = hits.iter().map(|hit| hit.tool).collect();
        assert_eq!(
            order,
            (0..10).collect::<Vec<_>>(),
            "equal scores in the tools' order"
        );
        for _ in 0..3 {
            assert_eq!(index.search("get the page", 10, |_| true), hits);
            assert_eq!(
                ToolIndex::build(&tools).search("get the page", 10, |_| true),
                hits
            );
        }
        for hit in &hits {
            assert_eq!(index.explain("get the page", hit.tool).score, hit.score);
        }
    }

    #[test]
    fn keep_decides_which_tools_can_be_found_and_limit_counts_only_those() {
        let tools: Vec<Tool> = (0..10)
            .map(|n| tool(&format!("s__take_screenshot_{n}"), "Takes a screenshot"))
            .collect();
        let index = ToolIndex::build(&tools);
        let hits = index.search("screenshot", 3, |tool| tool % 2 == 1);
        assert_eq!(
            hits.iter().map(|hit| hit.tool).collect::<Vec<_>>(),
            [1, 3, 5]
        );
        assert!(
            index
                .search("s__take_screenshot_4", 5, |tool| tool != 4)
                .iter()
                .all(|hit| hit.tool != 4 && hit.score < EXACT_NAME_BOOST)
        );
        assert!(index.search("screenshot", 0, |_| true).is_empty());
        // A `keep` that searches the same index again gets an answer, not a panic.
        let nested = index.search("screenshot", 2, |tool| {
            !index.search("screenshot", 1, |_| true).is_empty() && tool > 7
        });
        assert_eq!(
            nested.iter().map(|hit| hit.tool).collect::<Vec<_>>(),
            [8, 9]
        );
    }

    #[test]
    fn plural_and_verb_endings_meet_their_word() {
        for (word, same) in [
            ("entries", "entry"),
            ("creates", "create"),
            ("created", "create"),
            ("creating", "create"),
            ("running", "run"),
            ("stopped", "stop"),
            ("branches", "branch"),
            ("files", "file"),
            ("copied", "copy"),
            ("added", "add"),
            ("processes", "process"),
        ] {
            assert_eq!(stem(word), stem(same), "{word} and {same}");
        }
        for (word, other) in [("status", "statu"), ("analysis", "analysi"), ("bus", "bu")] {
            assert_ne!(stem(word), stem(other), "{word} is kept whole");
        }
        let index = ToolIndex::build(&[
            tool("git__create_branch", "Create a new branch"),
            tool("git__list_tags", "List tags"),
        ]);
        assert_eq!(first(&index, "creating branches"), Some(0));
    }

    #[test]
    fn names_split_into_words_and_prose_keeps_product_names_whole() {
        assert_eq!(
            words("listMergeRequests get_URLPath APIs", true),
            ["list", "merge", "requests", "get", "url", "path", "apis"]
        );
        assert_eq!(
            words("Search GitHub's API", false),
            ["search", "github", "s", "api"]
        );
        let index = ToolIndex::build(&[
            tool("gl__listMergeRequests", "Lists them"),
            tool("gh__search_code", "Search code on GitHub"),
            tool("git__log", "Shows the log of a git repository"),
        ]);
        assert_eq!(first(&index, "merge requests"), Some(0));
        assert_eq!(first(&index, "github code"), Some(1));
        assert!(index.search("hub", 5, |_| true).is_empty());
    }

    #[test]
    fn related_words_are_found_at_a_lower_weight_and_explained() {
        let index = ToolIndex::build(&[
            tool("fs__delete_file", "Deletes a file"),
            tool("fs__remove_file", "Removes a file"),
            tool("fs__read_file", "Reads a file"),
        ]);
        let hits = index.search("remove the file", 5, |_| true);
        assert_eq!(
            hits.iter().map(|hit| hit.tool).collect::<Vec<_>>()[..2],
            [1, 0],
            "the query's own word before a related one"
        );
        let explanation = index.explain("remove the file", 0);
        let delete = explanation
            .terms
            .iter()
            .find(|term| term.term == "delet")
            .expect("delete is related to remove");
        assert_eq!(delete.from, "remove");
        assert_eq!(delete.weight, RELATED_WEIGHT);
        // A stop word can have related words: "who" asks for people.
        let index = ToolIndex::build(&[
            tool("chat__list_users", "Lists the workspace's users"),
            tool("chat__list_channels", "Lists the workspace's channels"),
        ]);
        assert_eq!(first(&index, "who is in the workspace"), Some(0));
    }

    #[test]
    fn a_compound_word_in_a_name_is_found_by_its_parts() {
        let index = ToolIndex::build(&[
            tool("jira__add_worklog", "Adds time spent"),
            tool("jira__get_log", "Gets the log of work done"),
            tool("jira__add_comment", "Adds a comment"),
        ]);
        let explanation = index.explain("log work", 0);
        assert!(
            explanation
                .terms
                .iter()
                .all(|term| term.fields == [Field::Name])
        );
        assert_eq!(explanation.terms.len(), 2);
    }

    #[test]
    fn a_name_covered_whole_gains_over_a_name_covered_in_part() {
        let index = ToolIndex::build(&[
            tool("a__issue_create_comment", "Does it"),
            tool("b__issue_create", "Does it"),
        ]);
        assert_eq!(first(&index, "create issue"), Some(1));
        let whole = index.explain("create issue", 1);
        let part = index.explain("create issue", 0);
        assert!(whole.name_coverage > part.name_coverage);
    }

    #[test]
    fn an_empty_index_or_query_finds_nothing() {
        assert!(
            ToolIndex::build(&[])
                .search("anything", 5, |_| true)
                .is_empty()
        );
        let index = ToolIndex::build(&[tool("a__b", "c")]);
        assert!(index.search("", 5, |_| true).is_empty());
        assert!(index.search("the of and", 5, |_| true).is_empty());
    }

    #[test]
    fn the_stop_words_are_sorted_for_their_binary_search() {
        assert!(STOP_WORDS.windows(2).all(|pair| pair[0] < pair[1]));
    }
}
