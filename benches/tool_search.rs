//! The tool-search benchmark: how well and how fast `catalog::search::ToolIndex` finds the tools
//! a person asks for, and what listing every tool costs in tokens against listing only the
//! search meta-tools.
//!
//! `cargo bench --bench tool_search` (`-- --quick` for a 2,000-tool synthetic catalog and one
//! round of timed searches, only to keep it working; `-- --misses` also prints the tasks of the
//! tuning half that the real catalog misses at 5, with the scores of their top tools; the held-out
//! half's misses are never printed, so that nobody tunes against them). The data is
//! `benches/tool_search/` (its README): the `tools/list` answers of 35 real MCP servers, 321
//! labelled tasks split by id into a tuning half and a held-out half, and a generator that grows
//! the real catalog into a synthetic one of 10,000 tools with near-duplicates on made-up servers.
//!
//! The catalogs go through `Catalog::build`, as the proxy builds its own (names qualified as
//! `<server>__<tool>`, text sanitised), and the index is built over the catalog's tools, as the
//! proxy would. A task is right at k if any of its expected tools is among the first k; MRR is
//! over the first expected tool's rank in the whole ranking (0 if no expected tool matched).
//! Latency is one search of limit 10 (the search meta-tool's default) per task text, in rounds,
//! each timed alone. Tokens are those of the compact JSON `tools` array a `tools/list` returns,
//! counted by `benches/tool_search/tokens.js` (gpt-tokenizer's o200k_base, offline), installed
//! by `scripts/bench-deps.sh`; without it the token rows say so, unless `--require-tokenizer`
//! makes that an error (CI).
#![allow(clippy::print_stdout, clippy::print_stderr, clippy::unwrap_used)]

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use pluggedin_mcp_proxy::catalog::search::ToolIndex;
use pluggedin_mcp_proxy::catalog::{Catalog, ServerEntry, ServerLists};
use pluggedin_mcp_proxy::config::{ToolFilter, ToolHints};
use pluggedin_mcp_proxy::names::PrefixMode;

#[path = "tool_search/data.rs"]
#[allow(
    dead_code,
    unreachable_pub,
    reason = "the data's module, shared with its check, of which this uses a part"
)]
mod data;

use data::{Split, Task};

/// The synthetic catalog's seed: the one its check (`tests/it/tool_search.rs`) verifies.
const SYNTHETIC_SEED: u64 = 0x7005_5ea7_c400_0001;
const SYNTHETIC_SIZE: usize = 10_000;
const QUICK_SYNTHETIC_SIZE: usize = 2_000;
/// The search meta-tool's default limit.
const SEARCH_LIMIT: usize = 10;
/// gpt-tokenizer, pinned in `scripts/bench-deps.sh`, under `.deps/`.
const TOKENIZER: &str = ".deps/tool-search/node_modules/gpt-tokenizer";

struct Options {
    quick: bool,
    misses: bool,
    require_tokenizer: bool,
}

fn main() {
    let mut options = Options {
        quick: false,
        misses: false,
        require_tokenizer: false,
    };
    for argument in std::env::args().skip(1) {
        match argument.as_str() {
            "--quick" => options.quick = true,
            "--misses" => options.misses = true,
            "--require-tokenizer" => options.require_tokenizer = true,
            // `cargo bench` passes `--bench` to every bench binary.
            "--bench" => {}
            other => {
                eprintln!(
                    "tool_search: unknown argument {other:?} (--quick, --misses, \
                     --require-tokenizer)"
                );
                std::process::exit(2);
            }
        }
    }
    let folder = data::folder();
    let captures = data::load_catalog(&folder).unwrap_or_else(|error| panic!("{error}"));
    let tasks = data::load_tasks(&folder).unwrap_or_else(|error| panic!("{error}"));
    let real: Vec<data::Tool> = captures
        .iter()
        .flat_map(|capture| capture.tools.iter().cloned())
        .collect();
    let size = if options.quick {
        QUICK_SYNTHETIC_SIZE
    } else {
        SYNTHETIC_SIZE
    };
    let synthetic = data::synthetic_catalog(&real, size, SYNTHETIC_SEED);
    let real_catalog = catalog_of(&real);
    let synthetic_catalog = catalog_of(&synthetic);
    println!("# Tool search\n");
    println!(
        "{} real tools from {} servers; {} synthetic; {} tasks ({} tune, {} held-out)\n",
        real_catalog.tools.len(),
        captures.len(),
        synthetic_catalog.tools.len(),
        tasks.len(),
        tasks
            .iter()
            .filter(|task| task.split == Split::Tune)
            .count(),
        tasks
            .iter()
            .filter(|task| task.split == Split::HeldOut)
            .count(),
    );

    let real_index = ToolIndex::build(&real_catalog.tools);
    let synthetic_index = ToolIndex::build(&synthetic_catalog.tools);
    println!("## Retrieval\n");
    println!("| catalog | split | tasks | recall@1 | recall@5 | MRR |");
    println!("|---|---|---:|---:|---:|---:|");
    for (label, catalog, index) in [
        ("real", &real_catalog, &real_index),
        ("synthetic", &synthetic_catalog, &synthetic_index),
    ] {
        let names: Vec<&str> = catalog
            .tools
            .iter()
            .map(|tool| tool.name.as_ref())
            .collect();
        for split in [Split::HeldOut, Split::Tune] {
            let figures = retrieval(index, &names, &tasks, split);
            println!(
                "| {label} ({} tools) | {} | {} | {:.3} | {:.3} | {:.3} |",
                names.len(),
                split_label(split),
                figures.tasks,
                figures.recall_1,
                figures.recall_5,
                figures.mrr,
            );
        }
    }
    println!();
    if options.misses {
        let names: Vec<&str> = real_catalog
            .tools
            .iter()
            .map(|tool| tool.name.as_ref())
            .collect();
        print_tune_misses(&real_index, &names, &tasks);
    }

    println!("## Latency at {} tools\n", synthetic_catalog.tools.len());
    let builds = if options.quick { 1 } else { 5 };
    let mut build_times: Vec<Duration> = (0..builds)
        .map(|_| {
            let start = Instant::now();
            let index = ToolIndex::build(&synthetic_catalog.tools);
            let elapsed = start.elapsed();
            assert_eq!(index.len(), synthetic_catalog.tools.len());
            elapsed
        })
        .collect();
    build_times.sort();
    let rounds = if options.quick { 1 } else { 20 };
    let mut times = Vec::with_capacity(rounds * tasks.len());
    // Each task's best time over the rounds: what the search costs with the machine's other
    // work (a preempted search waits out another process's time slice) left out.
    let mut best = vec![Duration::MAX; tasks.len()];
    let mut found = 0usize;
    for _ in 0..rounds {
        for (task, best) in tasks.iter().zip(&mut best) {
            let start = Instant::now();
            let hits = synthetic_index.search(&task.task, SEARCH_LIMIT, |_| true);
            let elapsed = start.elapsed();
            times.push(elapsed);
            *best = (*best).min(elapsed);
            found += hits.len();
        }
    }
    times.sort();
    best.sort();
    println!("| figure | value |");
    println!("|---|---|");
    println!(
        "| index build (median of {builds}) | {} |",
        millis(build_times[build_times.len() / 2])
    );
    println!(
        "| search, limit {SEARCH_LIMIT}, {} searches | p50 {}, p99 {}, max {} |",
        times.len(),
        millis(percentile(&times, 50.0)),
        millis(percentile(&times, 99.0)),
        millis(*times.last().unwrap()),
    );
    println!(
        "| each task's best of {rounds} rounds | median {}, slowest task {} |",
        millis(best[best.len() / 2]),
        millis(*best.last().unwrap()),
    );
    println!(
        "| tools returned per search (mean) | {:.1} |\n",
        found as f64 / times.len() as f64
    );

    tokens(&real_catalog, &synthetic_catalog, &options);
}

/// The catalog the proxy would build from these tools: one server per distinct server name, in
/// first-seen order, every tool permitted, names qualified.
fn catalog_of(tools: &[data::Tool]) -> Catalog {
    let mut servers: Vec<(String, ServerLists)> = Vec::new();
    let mut at: BTreeMap<String, usize> = BTreeMap::new();
    for tool in tools {
        let slot = *at.entry(tool.server.clone()).or_insert_with(|| {
            servers.push((tool.server.clone(), ServerLists::default()));
            servers.len() - 1
        });
        let definition = serde_json::Value::Object(tool.definition.clone());
        let parsed = serde_json::from_value(definition)
            .unwrap_or_else(|error| panic!("{}: {error}", tool.qualified()));
        servers[slot].1.tools.push(parsed);
    }
    let filter = ToolFilter::default();
    let hints = ToolHints::default();
    let uuids: Vec<String> = (0..servers.len())
        .map(|n| format!("00000000-0000-4000-8000-{n:012}"))
        .collect();
    let entries: Vec<ServerEntry<'_>> = servers
        .iter()
        .zip(&uuids)
        .map(|((name, lists), uuid)| ServerEntry {
            name,
            slug: name,
            uuid,
            filter: &filter,
            lists,
            instructions: None,
            hints: &hints,
        })
        .collect();
    Catalog::build(&entries, PrefixMode::Always)
}

struct Figures {
    tasks: usize,
    recall_1: f64,
    recall_5: f64,
    mrr: f64,
}

/// The rank (from 1) of the first expected tool in the whole ranking for `task`, if any matched.
fn first_rank(index: &ToolIndex, names: &[&str], task: &Task) -> Option<usize> {
    let expected: HashSet<&str> = task.expected.iter().map(String::as_str).collect();
    index
        .search(&task.task, index.len(), |_| true)
        .iter()
        .position(|hit| expected.contains(names[hit.tool]))
        .map(|position| position + 1)
}

fn retrieval(index: &ToolIndex, names: &[&str], tasks: &[Task], split: Split) -> Figures {
    let mut figures = Figures {
        tasks: 0,
        recall_1: 0.0,
        recall_5: 0.0,
        mrr: 0.0,
    };
    for task in tasks.iter().filter(|task| task.split == split) {
        figures.tasks += 1;
        if let Some(rank) = first_rank(index, names, task) {
            figures.recall_1 += f64::from(u8::from(rank <= 1));
            figures.recall_5 += f64::from(u8::from(rank <= 5));
            figures.mrr += 1.0 / rank as f64;
        }
    }
    let count = figures.tasks.max(1) as f64;
    figures.recall_1 /= count;
    figures.recall_5 /= count;
    figures.mrr /= count;
    figures
}

/// The tuning half's tasks that the real catalog misses at 5: the expected tools, the top five
/// with their scores, and why the best expected tool scored what it did. Never the held-out's.
fn print_tune_misses(index: &ToolIndex, names: &[&str], tasks: &[Task]) {
    println!("## Tuning half: misses at 5 on the real catalog\n");
    for task in tasks.iter().filter(|task| task.split == Split::Tune) {
        let rank = first_rank(index, names, task);
        if rank.is_some_and(|rank| rank <= 5) {
            continue;
        }
        println!(
            "- {} {:?} (first expected at {})",
            task.id,
            task.task,
            rank.map_or("none".to_owned(), |rank| rank.to_string())
        );
        println!("  expected: {}", task.expected.join(" "));
        for hit in index.search(&task.task, 5, |_| true) {
            println!("  {:7.3} {}", hit.score, names[hit.tool]);
        }
        let best = task
            .expected
            .iter()
            .filter_map(|name| names.iter().position(|known| known == name))
            .map(|tool| (tool, index.explain(&task.task, tool)))
            .max_by(|a, b| a.1.score.total_cmp(&b.1.score));
        if let Some((tool, explanation)) = best {
            let terms: Vec<String> = explanation
                .terms
                .iter()
                .map(|term| {
                    let fields: Vec<&str> = term.fields.iter().map(|field| field.label()).collect();
                    // A related word shows the query's word it stands for.
                    let from = if term.from.starts_with(&term.term) {
                        String::new()
                    } else {
                        format!("←{}", term.from)
                    };
                    let fields = fields.join("+");
                    format!("{}{from}({fields}) {:.2}", term.term, term.score)
                })
                .collect();
            println!(
                "  {} {:.3}: {}; name coverage {:.2}",
                names[tool],
                explanation.score,
                terms.join(", "),
                explanation.name_coverage,
            );
        }
    }
    println!();
}

fn split_label(split: Split) -> &'static str {
    match split {
        Split::Tune => "tune",
        Split::HeldOut => "**held-out**",
    }
}

/// The tokens of `tools/list` in each mode, for the real and the synthetic catalog.
fn tokens(real: &Catalog, synthetic: &Catalog, options: &Options) {
    println!("## Tokens of tools/list\n");
    let folder = data::folder();
    let meta_tools: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("src/builtin/search_tools.json"),
        )
        .unwrap(),
    )
    .unwrap();
    let work = tempfile::tempdir().unwrap();
    let write = |name: &str, tools: &serde_json::Value| -> PathBuf {
        let path = work.path().join(name);
        std::fs::write(&path, serde_json::to_string(tools).unwrap()).unwrap();
        path
    };
    let files = [
        write("real.json", &serde_json::to_value(&real.tools).unwrap()),
        write(
            "synthetic.json",
            &serde_json::to_value(&synthetic.tools).unwrap(),
        ),
        write("search.json", &meta_tools),
    ];
    let tokenizer = Path::new(env!("CARGO_MANIFEST_DIR")).join(TOKENIZER);
    let counted = if tokenizer.join("package.json").is_file() {
        Command::new("node")
            .arg(folder.join("tokens.js"))
            .arg(&tokenizer)
            .args(&files)
            .output()
            .map_err(|error| format!("node: {error}"))
            .and_then(|output| {
                if output.status.success() {
                    serde_json::from_slice::<serde_json::Value>(&output.stdout)
                        .map_err(|error| format!("tokens.js: {error}"))
                } else {
                    Err(format!(
                        "tokens.js failed: {}",
                        String::from_utf8_lossy(&output.stderr)
                    ))
                }
            })
    } else {
        Err(format!(
            "no tokenizer at {TOKENIZER}: run scripts/bench-deps.sh"
        ))
    };
    let counted = match counted {
        Ok(counted) => counted,
        Err(reason) if options.require_tokenizer => {
            eprintln!("tool_search: {reason}");
            std::process::exit(1);
        }
        Err(reason) => {
            println!("Not counted: {reason}.\n");
            return;
        }
    };
    let counts: Vec<u64> = counted["counts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|count| count.as_u64().unwrap())
        .collect();
    let bytes: Vec<u64> = files
        .iter()
        .map(|file| std::fs::metadata(file).unwrap().len())
        .collect();
    println!("Tokenizer: {}.\n", counted["tokenizer"].as_str().unwrap());
    println!("| mode | tools listed | bytes | tokens |");
    println!("|---|---:|---:|---:|");
    let search_tools = meta_tools.as_array().map_or(0, Vec::len);
    let rows = [
        ("all, real catalog", real.tools.len()),
        ("all, synthetic catalog", synthetic.tools.len()),
        ("search (the meta-tools only)", search_tools),
    ];
    for (at, (label, tools)) in rows.into_iter().enumerate() {
        println!("| {label} | {tools} | {} | {} |", bytes[at], counts[at]);
    }
    let fewer = |all: u64| 100.0 * (1.0 - counts[2] as f64 / all as f64);
    println!(
        "\nSearch mode lists {:.1}% fewer tokens than all at {} tools, {:.2}% fewer at {}.\n",
        fewer(counts[0]),
        real.tools.len(),
        fewer(counts[1]),
        synthetic.tools.len(),
    );
}

fn percentile(sorted: &[Duration], percent: f64) -> Duration {
    let rank = ((percent / 100.0) * (sorted.len() - 1) as f64).round() as usize;
    sorted[rank.min(sorted.len() - 1)]
}

fn millis(duration: Duration) -> String {
    format!("{:.3} ms", duration.as_secs_f64() * 1000.0)
}
