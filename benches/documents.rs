//! The document library's benchmark: ingest and search over a generated corpus, on the SQLite
//! store and on the PostgreSQL store, the same documents and the same queries on each.
//!
//! `cargo bench --bench documents` (set `DOCS_BENCH_N` for another corpus size; default
//! 100,000; `-- --quick` for 1,000 documents and 50 queries a run, only to keep it working).
//! The corpus is deterministic: a fixed-seed generator writes ~2 KB documents from a
//! 20,000-word vocabulary with Zipf-distributed word frequencies, like natural text. Documents go
//! in through `ControlPlane::create_documents` in batches of 256, one transaction each, as
//! `docs add` does; searches go through `ControlPlane::search_documents`, as the tools do.
//! Query words are drawn from vocabulary ranks 100 and up: the 100 most frequent words play
//! the part of stop words, which nobody searches for alone. PostgreSQL is a throwaway cluster
//! of the run's own (the tests' `pg_cluster.rs`: `initdb` into a temp dir, a Unix socket,
//! stopped and removed when the run ends, however it ends).
//!
//! Besides the times, each run compares the two stores' answers: the share of the top ranks
//! where PostgreSQL has SQLite's document, and NDCG@10 of each against graded labels (per query
//! word, twice its count in the title plus its count in the text, at most 3; the ideal order is
//! that of the documents either store found).
#![allow(clippy::print_stdout, clippy::unwrap_used)]

use std::time::{Duration, Instant};

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use pluggedin_mcp_proxy::control::local::LocalStore;
use pluggedin_mcp_proxy::control::postgres::PostgresStore;
use pluggedin_mcp_proxy::control::{
    ControlPlane, DocumentFilter, DocumentHit, DocumentSearch, ModelInfo, NewDocument,
};

#[path = "../tests/it/pg_cluster.rs"]
#[allow(
    dead_code,
    unreachable_pub,
    reason = "the tests' cluster, of which this uses a part"
)]
mod cluster;

const VOCABULARY: usize = 20_000;
const SYLLABLES: [&str; 16] = [
    "ka", "lo", "mi", "ne", "ru", "ta", "vi", "so", "pe", "du", "ra", "chi", "zen", "mor", "lu",
    "fa",
];
const BATCH: usize = 256;
const CORPUS_SEED: u64 = 0x5eed_0008;
const QUERY_SEED: u64 = 0x5eed_0009;

/// xorshift64*: small, fast and the same everywhere.
struct Random(u64);

impl Random {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

fn word(mut index: usize) -> String {
    let mut word = String::new();
    for _ in 0..2 {
        word.push_str(SYLLABLES[index % 16]);
        index /= 16;
    }
    while index > 0 {
        word.push_str(SYLLABLES[index % 16]);
        index /= 16;
    }
    word
}

struct Corpus {
    words: Vec<String>,
    cumulative: Vec<f64>,
    random: Random,
}

impl Corpus {
    fn new(seed: u64) -> Corpus {
        let words = (0..VOCABULARY).map(word).collect();
        let mut total = 0.0;
        let cumulative = (1..=VOCABULARY)
            .map(|rank| {
                total += 1.0 / rank as f64;
                total
            })
            .collect();
        Corpus {
            words,
            cumulative,
            random: Random(seed),
        }
    }

    fn zipf_word(&mut self) -> &str {
        let target = self.random.unit() * self.cumulative[VOCABULARY - 1];
        let rank = self.cumulative.partition_point(|c| *c < target);
        &self.words[rank.min(VOCABULARY - 1)]
    }

    fn document(&mut self, n: usize) -> NewDocument {
        let title: Vec<String> = (0..4).map(|_| self.zipf_word().to_owned()).collect();
        let mut content = String::with_capacity(2200);
        while content.len() < 2000 {
            let length = 8 + self.random.below(8);
            for at in 0..length {
                let word = self.zipf_word().to_owned();
                if at > 0 {
                    content.push(' ');
                }
                content.push_str(&word);
            }
            content.push_str(if n.is_multiple_of(7) { ".\n\n" } else { ". " });
        }
        let models = [
            ("claude-3-opus", "anthropic"),
            ("gpt-4", "openai"),
            ("gemini-pro", "google"),
            ("llama-3", "meta"),
        ];
        let (name, provider) = models[n % models.len()];
        NewDocument {
            title: title.join(" "),
            content,
            format: "md".into(),
            tags: vec![format!("tag{}", n % 10)],
            category: "other".into(),
            source: "ai_generated".into(),
            visibility: "private".into(),
            model: Some(ModelInfo {
                name: name.into(),
                provider: provider.into(),
                version: None,
            }),
            ..NewDocument::default()
        }
    }

    fn query(&mut self) -> String {
        let terms = 1 + self.random.below(3);
        (0..terms)
            .map(|_| self.words[100 + self.random.below(VOCABULARY - 100)].clone())
            .collect::<Vec<_>>()
            .join(" ")
    }
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[index].as_secs_f64() * 1000.0
}

/// One store's answers to a run: each query's time and its hits (content hash and id).
struct Answers {
    times: Vec<Duration>,
    hits: Vec<Vec<(String, String)>>,
}

async fn answers(
    store: &dyn ControlPlane,
    queries: &[String],
    filter: &DocumentFilter,
    limit: u32,
) -> Answers {
    let mut times = Vec::with_capacity(queries.len());
    let mut hits = Vec::with_capacity(queries.len());
    for query in queries {
        let started = Instant::now();
        let found: Vec<DocumentHit> = store
            .search_documents(DocumentSearch {
                query: query.clone(),
                filter: filter.clone(),
                limit,
            })
            .await
            .unwrap();
        times.push(started.elapsed());
        hits.push(
            found
                .into_iter()
                .map(|hit| (hit.document.content_hash, hit.document.id))
                .collect(),
        );
    }
    times.sort();
    Answers { times, hits }
}

fn report(name: &str, store: &str, answers: &Answers) {
    let times = &answers.times;
    let empty = answers.hits.iter().filter(|hits| hits.is_empty()).count();
    println!(
        "{name}, {store}: {} queries, p50 {:.2} ms, p95 {:.2} ms, p99 {:.2} ms, max {:.2} ms \
         ({empty} without hits)",
        times.len(),
        percentile(times, 0.50),
        percentile(times, 0.95),
        percentile(times, 0.99),
        percentile(times, 1.0),
    );
}

/// A document's grade for a query: per query word, twice its count in the title plus its count
/// in the text, at most 3.
fn grade(title: &str, content: &str, query: &str) -> u32 {
    let count = |text: &str, word: &str| {
        text.split(|c: char| !c.is_alphanumeric())
            .filter(|token| token.eq_ignore_ascii_case(word))
            .count()
    };
    query
        .split_whitespace()
        .map(|word| (2 * count(title, word) + count(content, word)).min(3) as u32)
        .sum()
}

fn dcg(grades: impl Iterator<Item = u32>) -> f64 {
    grades
        .enumerate()
        .map(|(rank, grade)| (2f64.powi(grade as i32) - 1.0) / (rank as f64 + 2.0).log2())
        .sum()
}

/// How the stores' answers to one run compare: the share of ranks (of those either filled)
/// where PostgreSQL has SQLite's document, the share of SQLite's documents PostgreSQL found at
/// any rank, and each one's mean NDCG at `limit` against the graded labels.
async fn compare(
    sqlite: &dyn ControlPlane,
    postgres: &dyn ControlPlane,
    queries: &[String],
    on_sqlite: &Answers,
    on_postgres: &Answers,
    limit: usize,
) -> (f64, f64, f64, f64) {
    let (mut same_rank, mut ranks, mut found, mut listed) = (0, 0, 0, 0);
    let (mut ndcg_sqlite, mut ndcg_postgres, mut graded) = (0.0, 0.0, 0);
    for ((query, a), b) in queries.iter().zip(&on_sqlite.hits).zip(&on_postgres.hits) {
        ranks += a.len().max(b.len());
        same_rank += a.iter().zip(b).filter(|(x, y)| x.0 == y.0).count();
        let in_b: HashSet<&String> = b.iter().map(|(hash, _)| hash).collect();
        listed += a.len();
        found += a.iter().filter(|(hash, _)| in_b.contains(hash)).count();
        let mut grades: HashMap<String, u32> = HashMap::new();
        for (hits, store) in [(a, sqlite), (b, postgres)] {
            for (hash, id) in hits {
                if grades.contains_key(hash) {
                    continue;
                }
                let (document, _) = store.get_document(id, true, false).await.unwrap().unwrap();
                grades.insert(
                    hash.clone(),
                    grade(&document.title, &document.content, query),
                );
            }
        }
        let mut ideal: Vec<u32> = grades.values().copied().collect();
        ideal.sort_unstable_by(|x, y| y.cmp(x));
        let best = dcg(ideal.into_iter().take(limit));
        if best > 0.0 {
            graded += 1;
            ndcg_sqlite += dcg(a.iter().take(limit).map(|(hash, _)| grades[hash])) / best;
            ndcg_postgres += dcg(b.iter().take(limit).map(|(hash, _)| grades[hash])) / best;
        }
    }
    let share = |part: usize, whole: usize| part as f64 / whole.max(1) as f64;
    (
        share(same_rank, ranks),
        share(found, listed),
        ndcg_sqlite / graded.max(1) as f64,
        ndcg_postgres / graded.max(1) as f64,
    )
}

/// Writes the corpus into a store; its content's bytes and the time it took.
async fn ingest(store: &dyn ControlPlane, count: usize) -> (usize, Duration) {
    let mut corpus = Corpus::new(CORPUS_SEED);
    let mut bytes = 0usize;
    let mut ingest = Duration::ZERO;
    let mut generated = 0;
    while generated < count {
        let batch: Vec<NewDocument> = (generated..(generated + BATCH).min(count))
            .map(|n| corpus.document(n))
            .collect();
        generated += batch.len();
        bytes += batch.iter().map(|d| d.content.len()).sum::<usize>();
        let started = Instant::now();
        for outcome in store.create_documents(batch).await {
            outcome.unwrap();
        }
        ingest += started.elapsed();
    }
    (bytes, ingest)
}

fn disk_size(dir: &std::path::Path) -> u64 {
    std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|entry| entry.ok()?.metadata().ok())
        .map(|meta| meta.len())
        .sum()
}

fn load() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|text| {
            text.split_whitespace()
                .take(3)
                .collect::<Vec<_>>()
                .join(" ")
        })
        .unwrap_or_default()
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let quick = std::env::args().any(|arg| arg == "--quick");
    let count: usize = std::env::var("DOCS_BENCH_N")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(if quick { 1_000 } else { 100_000 });
    let queries_per_run = if quick { 50 } else { 2_000 };
    println!("load average at the start: {}", load());
    let dir = tempfile::tempdir().unwrap();
    let sqlite: Arc<dyn ControlPlane> = Arc::new(
        LocalStore::open_async(Some(dir.path().to_owned()))
            .await
            .unwrap(),
    );
    let url = cluster::database().await;
    let postgres: Arc<dyn ControlPlane> = Arc::new(PostgresStore::connect(&url).await.unwrap());

    let mut bytes = 0;
    for (name, store) in [("SQLite", &sqlite), ("PostgreSQL", &postgres)] {
        let (content, took) = ingest(store.as_ref(), count).await;
        bytes = content;
        println!(
            "ingest, {name}: {count} documents ({:.1} MB) in {:.1} s, {:.0} documents/s",
            content as f64 / 1e6,
            took.as_secs_f64(),
            count as f64 / took.as_secs_f64()
        );
    }

    let runs = [
        ("search, no filter, limit 10", DocumentFilter::default(), 10),
        (
            "search, model + tag filter, limit 10",
            DocumentFilter {
                model_name: Some("gpt-4".into()),
                tags: vec!["tag3".into()],
                ..DocumentFilter::default()
            },
            10,
        ),
        ("knowledge base (limit 5)", DocumentFilter::default(), 5),
    ];
    let mut picker = Corpus::new(QUERY_SEED);
    for (name, filter, limit) in runs {
        let queries: Vec<String> = (0..queries_per_run).map(|_| picker.query()).collect();
        let on_sqlite = answers(sqlite.as_ref(), &queries, &filter, limit).await;
        report(name, "SQLite", &on_sqlite);
        let on_postgres = answers(postgres.as_ref(), &queries, &filter, limit).await;
        report(name, "PostgreSQL", &on_postgres);
        let (same_rank, found, ndcg_sqlite, ndcg_postgres) = compare(
            sqlite.as_ref(),
            postgres.as_ref(),
            &queries,
            &on_sqlite,
            &on_postgres,
            limit as usize,
        )
        .await;
        println!(
            "{name}: PostgreSQL has SQLite's document at {:.1}% of the top-{limit} ranks and \
             {:.1}% of its documents at any rank; NDCG@{limit} SQLite {ndcg_sqlite:.3}, \
             PostgreSQL {ndcg_postgres:.3}",
            same_rank * 100.0,
            found * 100.0,
        );
    }
    drop(sqlite);
    println!(
        "SQLite store on disk: {:.1} MB ({:.2}x the content)",
        disk_size(dir.path()) as f64 / 1e6,
        disk_size(dir.path()) as f64 / bytes as f64
    );
    let cluster = cluster::cluster();
    let (client, connection) = tokio_postgres::connect(
        &cluster.settings(&cluster::name_of(&url)),
        tokio_postgres::NoTls,
    )
    .await
    .unwrap();
    tokio::spawn(connection);
    let size: i64 = client
        .query_one("SELECT pg_database_size(current_database())", &[])
        .await
        .unwrap()
        .get(0);
    println!(
        "PostgreSQL database on disk: {:.1} MB ({:.2}x the content)",
        size as f64 / 1e6,
        size as f64 / bytes as f64
    );
    println!("load average at the end: {}", load());
}
