//! The shape of the code, read from its own imports: every module lives on a floor and imports
//! only from its own floor or below; the top-level modules, and the parts of any one module,
//! import each other without a circle; and a few facts stay where they belong (only the stdio
//! transports write stdout, only the local store speaks SQL, nothing that serves clients starts a
//! process). Test code is exempt: a unit test may build its fixtures from any floor.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// The floors, from the ground up. A module not listed fails the test: place it first.
const FLOORS: &[(u8, &[&str])] = &[
    // Vocabulary, and the leaves every floor may use: logs, metrics, traces.
    (
        0,
        &["metrics", "names", "secret", "sync", "telemetry", "traces"],
    ),
    // Data and policy: the config file, the flags, the security policy, the store and the App
    // client, mail.
    (
        1,
        &["config", "cli", "security", "control", "mail", "ids", "llm"],
    ),
    // Every place the proxy steps around rmcp at the byte level.
    (2, &["wire"]),
    // The two sides' data: one supervised connection per server; the merged catalog.
    (3, &["downstream", "catalog"]),
    // Routing: name to owner, forwarding both ways; the built-in tools.
    (4, &["router", "builtin"]),
    // What clients and people touch.
    (
        5,
        &[
            "upstream", "inspect", "manage", "ingest", "import", "registry",
        ],
    ),
];

/// Facts about where things live: (what, the text that shows it, the modules allowed to have it).
const PLACES: &[(&str, &str, &[&str])] = &[
    (
        "only the stdio transport writes stdout (the protocol's channel)",
        "stdout()",
        // The downstream ones read a child's stdout: the protocol, or a started server's log.
        // `wire::process_io` makes the stream the stdio transport writes, and writes nothing.
        &[
            "upstream::stdio",
            "wire::process_io",
            "downstream::child",
            "downstream::started",
        ],
    ),
    (
        "only the SQLite store speaks SQLite",
        "rusqlite",
        &["control::local"],
    ),
    (
        "only the PostgreSQL store speaks PostgreSQL",
        "tokio_postgres",
        &["control::postgres"],
    ),
    (
        "nothing that serves clients starts a process",
        "process::Command",
        &["downstream", "manage", "lib"],
    ),
];

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

/// Every library source file (not the binaries), as (module path, text without test code).
fn sources() -> Vec<(String, String)> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        for entry in std::fs::read_dir(dir).unwrap().flatten() {
            let path = entry.path();
            if path.is_dir() {
                walk(&path, out);
            } else if path.extension().is_some_and(|ext| ext == "rs") {
                out.push(path);
            }
        }
    }
    let mut files = Vec::new();
    walk(&src(), &mut files);
    files.sort();
    files
        .into_iter()
        .filter_map(|path| {
            let relative = path.strip_prefix(src()).unwrap().to_owned();
            let parts: Vec<String> = relative
                .with_extension("")
                .components()
                .map(|part| part.as_os_str().to_string_lossy().into_owned())
                .collect();
            if parts[0] == "bin" || parts[0] == "main" {
                return None;
            }
            if parts
                .iter()
                .any(|part| part == "tests" || part == "properties")
            {
                return None;
            }
            let module: Vec<&str> = parts
                .iter()
                .map(String::as_str)
                .filter(|part| *part != "mod")
                .collect();
            let text = std::fs::read_to_string(&path).unwrap();
            // Test code sits at the bottom of a file, after `#[cfg(test)]`.
            let code = match text.find("#[cfg(test)]") {
                Some(at) => text[..at].to_owned(),
                None => text,
            };
            Some((module.join("::"), without_comments(&code)))
        })
        .collect()
}

/// The text without `//` comments (docs name modules they do not import).
fn without_comments(code: &str) -> String {
    code.lines()
        .map(|line| match line.find("//") {
            // Not inside a string on this line (a URL in a literal keeps its `//`).
            Some(at) if line[..at].matches('"').count() % 2 == 0 => &line[..at],
            _ => line,
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn floor_of(module: &str) -> Option<u8> {
    let top = module.split("::").next().unwrap_or(module);
    FLOORS
        .iter()
        .find(|(_, modules)| modules.contains(&top))
        .map(|(floor, _)| *floor)
}

/// The crate's top-level modules a file names: `crate::X` anywhere, and `X::` in a grouped
/// `use crate::{X, …}`.
fn named_modules(code: &str) -> BTreeSet<String> {
    let mut named = BTreeSet::new();
    let mut rest = code;
    while let Some(at) = rest.find("crate::") {
        rest = &rest[at + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            let end = group.find('}').unwrap_or(group.len());
            for item in group[..end].split(',') {
                let name: String = item
                    .trim()
                    .chars()
                    .take_while(|ch| ch.is_ascii_alphanumeric() || *ch == '_')
                    .collect();
                if !name.is_empty() {
                    named.insert(name);
                }
            }
            continue;
        }
        let name: String = rest
            .chars()
            .take_while(|ch| ch.is_ascii_alphanumeric() || *ch == '_')
            .collect();
        if !name.is_empty() {
            named.insert(name);
        }
    }
    named
}

#[test]
fn every_module_imports_only_from_its_floor_or_below() {
    let mut wrong = Vec::new();
    for (module, code) in sources() {
        if module == "lib" {
            continue; // wires every floor together
        }
        let Some(floor) = floor_of(&module) else {
            wrong.push(format!("{module}: on no floor (add it to FLOORS)"));
            continue;
        };
        for named in named_modules(&code) {
            match floor_of(&named) {
                Some(theirs) if theirs <= floor => {}
                Some(theirs) => wrong.push(format!(
                    "{module} (floor {floor}) imports {named} (floor {theirs})"
                )),
                None => wrong.push(format!("{module}: imports {named}, on no floor")),
            }
        }
    }
    assert!(wrong.is_empty(), "forbidden imports:\n{}", wrong.join("\n"));
}

/// The module paths a file at `module` names, resolved: `crate::a::b` and `super::…`/`self::…`
/// paths (grouped `use` lists too), each cut to the longest path that is a module in `known`.
fn named_paths(module: &str, code: &str, known: &BTreeSet<String>) -> BTreeSet<String> {
    let here: Vec<&str> = if module == "lib" {
        Vec::new()
    } else {
        module.split("::").collect()
    };
    let is_ident = |ch: char| ch.is_ascii_alphanumeric() || ch == '_';
    // The longest module in `known` that `base` followed by the path at the start of `text` names.
    let resolve = |mut base: Vec<String>, text: &str| -> Option<String> {
        let mut rest = text.trim_start();
        let mut longest = None;
        loop {
            let end = rest.find(|ch: char| !is_ident(ch)).unwrap_or(rest.len());
            if end == 0 {
                break;
            }
            base.push(rest[..end].to_owned());
            let joined = base.join("::");
            if known.contains(&joined) {
                longest = Some(joined);
            }
            match rest[end..].strip_prefix("::") {
                Some(after) => rest = after,
                None => break,
            }
        }
        longest
    };
    let mut named = BTreeSet::new();
    for (at, _) in code.char_indices() {
        let rest = &code[at..];
        let boundary = code[..at]
            .chars()
            .next_back()
            .is_none_or(|ch| !(is_ident(ch) || ch == ':'));
        if !boundary {
            continue;
        }
        let (mut base, mut path): (Vec<String>, &str) =
            if let Some(after) = rest.strip_prefix("crate::") {
                (Vec::new(), after)
            } else if rest.starts_with("super::") || rest.starts_with("self::") {
                (here.iter().map(|part| (*part).to_owned()).collect(), rest)
            } else {
                continue;
            };
        loop {
            if let Some(after) = path.strip_prefix("super::") {
                base.pop();
                path = after;
            } else if let Some(after) = path.strip_prefix("self::") {
                path = after;
            } else {
                break;
            }
        }
        // A grouped `use …::{a, b::c}`: each member is a path of its own.
        if let Some(group) = path.strip_prefix('{') {
            let end = group.find('}').unwrap_or(group.len());
            named.extend(
                group[..end]
                    .split(',')
                    .filter_map(|member| resolve(base.clone(), member)),
            );
        } else {
            named.extend(resolve(base, path));
        }
    }
    named
}

/// At every level of the module tree, the parts of one module (its files and folders) import
/// each other without a circle, as the top-level modules do: a part is read from the parts below
/// it, never the other way round.
#[test]
fn the_parts_of_every_module_import_each_other_without_a_circle() {
    let sources = sources();
    let known: BTreeSet<String> = sources.iter().map(|(module, _)| module.clone()).collect();
    // (parent module, its part that imports, its part imported)
    let mut edges: BTreeMap<String, BTreeMap<String, BTreeSet<String>>> = BTreeMap::new();
    for (module, code) in &sources {
        if module == "lib" {
            continue;
        }
        let from: Vec<&str> = module.split("::").collect();
        for named in named_paths(module, code, &known) {
            let to: Vec<&str> = named.split("::").collect();
            let common = from.iter().zip(&to).take_while(|(a, b)| a == b).count();
            // Only between two parts of one module: not a part and its own module or sub-part.
            if common < from.len() && common < to.len() {
                edges
                    .entry(from[..common].join("::"))
                    .or_default()
                    .entry(from[common].to_owned())
                    .or_default()
                    .insert(to[common].to_owned());
            }
        }
    }
    // Depth-first search for a back edge.
    fn visit(
        node: &str,
        edges: &BTreeMap<String, BTreeSet<String>>,
        path: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(at) = path.iter().position(|seen| seen == node) {
            let mut circle = path[at..].to_vec();
            circle.push(node.to_owned());
            return Some(circle);
        }
        if done.contains(node) {
            return None;
        }
        path.push(node.to_owned());
        for next in edges.get(node).into_iter().flatten() {
            if let Some(circle) = visit(next, edges, path, done) {
                return Some(circle);
            }
        }
        path.pop();
        done.insert(node.to_owned());
        None
    }
    let mut circles = Vec::new();
    for (parent, parts) in &edges {
        let mut done = BTreeSet::new();
        for part in parts.keys() {
            if let Some(circle) = visit(part, parts, &mut Vec::new(), &mut done) {
                let inside = if parent.is_empty() { "crate" } else { parent };
                circles.push(format!("in {inside}: {}", circle.join(" -> ")));
                break;
            }
        }
    }
    assert!(
        circles.is_empty(),
        "import circles:\n{}",
        circles.join("\n")
    );
}

#[test]
fn facts_stay_where_they_belong() {
    let mut wrong = Vec::new();
    for (module, code) in sources() {
        for (fact, text, allowed) in PLACES {
            let here = allowed
                .iter()
                .any(|place| module == *place || module.starts_with(&format!("{place}::")));
            if code.contains(text) && !here {
                wrong.push(format!("{module} has `{text}`: {fact}"));
            }
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}
