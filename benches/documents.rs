//! The document library's benchmark: ingest and search over a generated corpus.
//!
//! `cargo bench --bench documents` (set `DOCS_BENCH_N` for another corpus size; default
//! 100,000). The corpus is deterministic: a fixed-seed generator writes ~2 KB documents from a
//! 20,000-word vocabulary with Zipf-distributed word frequencies, like natural text. Documents go
//! in through `ControlPlane::create_documents` in batches of 256, one transaction each, as
//! `docs add` does; searches go through `ControlPlane::search_documents`, as the tools do.
//! Query words are drawn from vocabulary ranks 100 and up: the 100 most frequent words play
//! the part of stop words, which nobody searches for alone.
#![allow(clippy::print_stdout, clippy::unwrap_used)]

use std::time::{Duration, Instant};

use pluggedin_mcp_proxy::control::local::LocalStore;
use pluggedin_mcp_proxy::control::{
    ControlPlane, DocumentFilter, DocumentSearch, ModelInfo, NewDocument,
};

const VOCABULARY: usize = 20_000;
const SYLLABLES: [&str; 16] = [
    "ka", "lo", "mi", "ne", "ru", "ta", "vi", "so", "pe", "du", "ra", "chi", "zen", "mor", "lu",
    "fa",
];
const BATCH: usize = 256;
const QUERIES: usize = 2_000;

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

async fn latencies(
    store: &LocalStore,
    corpus: &mut Corpus,
    filter: DocumentFilter,
    limit: u32,
) -> (Vec<Duration>, usize) {
    let mut times = Vec::with_capacity(QUERIES);
    let mut empty = 0;
    for _ in 0..QUERIES {
        let query = corpus.query();
        let started = Instant::now();
        let hits = store
            .search_documents(DocumentSearch {
                query,
                filter: filter.clone(),
                limit,
            })
            .await
            .unwrap();
        times.push(started.elapsed());
        empty += usize::from(hits.is_empty());
    }
    times.sort();
    (times, empty)
}

fn disk_size(dir: &std::path::Path) -> u64 {
    std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|entry| entry.ok()?.metadata().ok())
        .map(|meta| meta.len())
        .sum()
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let count: usize = std::env::var("DOCS_BENCH_N")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(100_000);
    let dir = tempfile::tempdir().unwrap();
    let store = LocalStore::open_async(Some(dir.path().to_owned()))
        .await
        .unwrap();
    let mut corpus = Corpus::new(0x5eed_0008);

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
    let rate = count as f64 / ingest.as_secs_f64();
    println!("documents: {count}, content {:.1} MB", bytes as f64 / 1e6);
    println!(
        "ingest: {:.1} s, {rate:.0} documents/s",
        ingest.as_secs_f64()
    );

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
    for (name, filter, limit) in runs {
        let (times, empty) = latencies(&store, &mut corpus, filter, limit).await;
        println!(
            "{name}: {QUERIES} queries, p50 {:.2} ms, p95 {:.2} ms, p99 {:.2} ms, max {:.2} ms ({empty} without hits)",
            percentile(&times, 0.50),
            percentile(&times, 0.95),
            percentile(&times, 0.99),
            percentile(&times, 1.0),
        );
    }
    drop(store);
    println!(
        "store on disk: {:.1} MB ({:.2}x the content)",
        disk_size(dir.path()) as f64 / 1e6,
        disk_size(dir.path()) as f64 / bytes as f64
    );
}
