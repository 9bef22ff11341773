//! Property tests for name encoding, with a small deterministic generator (no dependency): for
//! random server names and tool names — long ones, ones with `__`, `-`, non-ASCII and control
//! characters, repeated ones — in every prefix mode, exposed names are unique, at most 64 bytes,
//! free of control characters, and each resolves back to its server and original name; and
//! `qualify`/`split` round-trip whenever nothing had to be shortened.

use std::collections::HashSet;
use std::sync::Arc;

use rmcp::model::Tool;

use super::*;

/// xorshift64*: deterministic, so a failure names its seed and replays.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    /// A name built from pieces that stress the encoding.
    fn name(&mut self, max_pieces: usize) -> String {
        const PIECES: &[&str] = &[
            "a",
            "b",
            "get",
            "time",
            "x",
            "_",
            "__",
            "-",
            "é",
            "名",
            " ",
            ".",
            "\u{7}",
            "\u{202e}",
            "0",
            "9",
            "Z",
            "tool",
            "read_file",
            "xxxxxxxxxxxxxxxx",
        ];
        let pieces = 1 + self.below(max_pieces);
        (0..pieces)
            .map(|_| PIECES[self.below(PIECES.len())])
            .collect()
    }
}

fn tool(name: &str) -> Tool {
    Tool::new(name.to_owned(), "t", Arc::new(serde_json::Map::new()))
}

#[test]
fn exposed_names_are_unique_bounded_clean_and_route_back() {
    for seed in 1..=400u64 {
        let mut rng = Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15));
        let servers = 1 + rng.below(4);
        let names: Vec<String> = (0..servers)
            .map(|i| format!("{}{i}", rng.name(8)))
            .collect();
        let slugs = names::unique_slugs(names.iter().map(String::as_str));
        let uuids: Vec<String> = (0..servers)
            .map(|i| format!("00000000-0000-4000-8000-{i:012}"))
            .collect();
        let lists: Vec<ServerLists> = (0..servers)
            .map(|_| {
                let mut seen = HashSet::new();
                ServerLists {
                    tools: (0..rng.below(12))
                        .map(|_| rng.name(30))
                        .filter(|name| seen.insert(name.clone()))
                        .map(|name| tool(&name))
                        .collect(),
                    ..ServerLists::default()
                }
            })
            .collect();
        let filter = ToolFilter::default();
        let hints = crate::config::ToolHints::default();
        let entries: Vec<ServerEntry<'_>> = (0..servers)
            .map(|i| ServerEntry {
                name: &names[i],
                slug: &slugs[i],
                uuid: &uuids[i],
                filter: &filter,
                lists: &lists[i],
                instructions: None,
                hints: &hints,
            })
            .collect();
        for mode in [PrefixMode::Always, PrefixMode::Auto, PrefixMode::Never] {
            let catalog = Catalog::build(&entries, mode);
            let mut exposed = HashSet::new();
            for tool in &catalog.tools {
                let name = tool.name.as_ref();
                assert!(
                    exposed.insert(name.to_owned()),
                    "seed {seed} {mode:?}: {name:?} twice"
                );
                assert!(
                    name.len() <= names::MAX_NAME_LEN,
                    "seed {seed} {mode:?}: {name:?} is {} bytes",
                    name.len()
                );
                assert!(
                    !name.chars().any(char::is_control),
                    "seed {seed} {mode:?}: {name:?}"
                );
                let route = catalog.resolve_tool(name).unwrap_or_else(|error| {
                    panic!("seed {seed} {mode:?}: {name:?} does not resolve: {error}")
                });
                let owner = names.iter().position(|n| *n == route.server).unwrap();
                assert!(
                    lists[owner].tools.iter().any(|t| t.name == route.original),
                    "seed {seed} {mode:?}: {name:?} routes to {route:?}"
                );
            }
            // Every tool is exposed exactly once, unless `never` refuses an ambiguous name.
            let total: usize = lists.iter().map(|list| list.tools.len()).sum();
            if mode != PrefixMode::Never {
                assert_eq!(catalog.tools.len(), total, "seed {seed} {mode:?}");
            }
        }
    }
}

#[test]
fn qualify_and_split_round_trip_and_shortening_stays_distinct() {
    let mut rng = Rng(0x5EED);
    let mut shortened = HashSet::new();
    for _ in 0..5000 {
        let slug = names::slugify(&rng.name(6));
        let name = rng.name(40);
        let qualified = names::qualify(&slug, &name);
        assert!(qualified.len() <= names::MAX_NAME_LEN, "{qualified:?}");
        assert_eq!(qualified, names::qualify(&slug, &name), "deterministic");
        let whole = slug.len() + names::SEPARATOR.len() + name.len() <= names::MAX_NAME_LEN;
        if whole {
            assert_eq!(
                names::split(&qualified),
                Some((slug.as_str(), name.as_str())),
                "{qualified:?}"
            );
        } else {
            assert!(qualified.starts_with(&format!("{slug}__")) || slug.len() > 50);
            shortened.insert((format!("{slug}\u{0}{name}"), qualified));
        }
    }
    // Different long inputs never shorten to the same name.
    let mut outputs = HashSet::new();
    for (_, qualified) in &shortened {
        outputs.insert(qualified.clone());
    }
    assert_eq!(outputs.len(), shortened.len());
}
