//! The tool-search benchmark's data holds together: the real catalog is large and varied enough,
//! every tool has the MCP shape, every task is labelled with tools that exist, the two halves of
//! the tasks are both used and never share a task, and the synthetic catalog is reproducible.
//! Files only: no server is started and nothing goes over the network.

use std::collections::{BTreeMap, BTreeSet};

use pluggedin_mcp_proxy::names::slugify;

use crate::tool_search_data::{
    Capture, SEPARATOR, Split, Task, Tool, folder, load_catalog, load_tasks, shape_problem,
    synthetic_catalog,
};

/// What the benchmark needs to be worth running: real servers with overlapping tools.
const MIN_SERVERS: usize = 15;
const MIN_TOOLS: usize = 300;
const MIN_TASKS: usize = 150;
/// The size the benchmark searches at; the seed it uses.
const SYNTHETIC_SIZE: usize = 10_000;
const SYNTHETIC_SEED: u64 = 0x7005_5ea7_c400_0001;

fn catalog() -> Vec<Capture> {
    load_catalog(&folder()).unwrap_or_else(|error| panic!("{error}"))
}

fn real_tools(captures: &[Capture]) -> Vec<Tool> {
    captures
        .iter()
        .flat_map(|capture| capture.tools.iter().cloned())
        .collect()
}

fn tasks() -> Vec<Task> {
    load_tasks(&folder()).unwrap_or_else(|error| panic!("{error}"))
}

#[test]
fn catalog_has_enough_real_servers_each_with_its_provenance() {
    let captures = catalog();
    let tools: usize = captures.iter().map(|capture| capture.tools.len()).sum();
    assert!(
        captures.len() >= MIN_SERVERS,
        "{} servers, want {MIN_SERVERS}",
        captures.len()
    );
    assert!(tools >= MIN_TOOLS, "{tools} tools, want {MIN_TOOLS}");
    let mut servers = BTreeSet::new();
    for capture in &captures {
        let server = &capture.server;
        assert_eq!(
            &slugify(server),
            server,
            "server name {server:?} is not a slug"
        );
        assert!(
            servers.insert(server.clone()),
            "server {server} captured twice"
        );
        assert!(!capture.tools.is_empty(), "{server}: no tools");
        assert!(
            matches!(capture.registry.as_str(), "npm" | "pypi"),
            "{server}: registry {:?}",
            capture.registry
        );
        for (field, value) in [
            ("package", &capture.package),
            ("version", &capture.version),
            ("command", &capture.command),
        ] {
            assert!(!value.trim().is_empty(), "{server}: no {field}");
        }
        assert!(
            capture.command.contains(&capture.package)
                && capture.command.contains(&capture.version),
            "{server}: the command {:?} does not name the package and version",
            capture.command
        );
        let date = capture.captured.as_bytes();
        let is_date = date.len() == 10
            && date.iter().enumerate().all(|(index, byte)| match index {
                4 | 7 => *byte == b'-',
                _ => byte.is_ascii_digit(),
            });
        assert!(
            is_date,
            "{server}: capture date {:?} is not YYYY-MM-DD",
            capture.captured
        );
    }
}

#[test]
fn every_real_tool_has_the_mcp_shape_and_a_unique_qualified_name() {
    let captures = catalog();
    let mut names = BTreeSet::new();
    for capture in &captures {
        for tool in &capture.tools {
            // A server whose answer the official SDK refused may leave out the schema's type;
            // every other server must send the full shape.
            let strict = capture.sdk_rejected.is_empty();
            if let Some(problem) = shape_problem(&tool.definition, strict) {
                panic!("{}: {problem}", capture.server);
            }
            let qualified = tool.qualified();
            assert!(names.insert(qualified.clone()), "{qualified} listed twice");
        }
        if !capture.sdk_rejected.is_empty() {
            let lax = capture
                .tools
                .iter()
                .any(|tool| shape_problem(&tool.definition, true).is_some());
            assert!(
                lax,
                "{}: marked as refused by the SDK, yet every tool is well-formed",
                capture.server
            );
        }
    }
}

#[test]
fn every_task_is_labelled_with_tools_that_exist() {
    let tools: BTreeSet<String> = real_tools(&catalog()).iter().map(Tool::qualified).collect();
    let tasks = tasks();
    assert!(
        tasks.len() >= MIN_TASKS,
        "{} tasks, want {MIN_TASKS}",
        tasks.len()
    );
    let mut ids = BTreeSet::new();
    let mut texts = BTreeSet::new();
    let mut servers_asked = BTreeSet::new();
    for task in &tasks {
        assert!(!task.id.trim().is_empty(), "a task without an id");
        assert!(
            ids.insert(task.id.clone()),
            "task id {} used twice",
            task.id
        );
        assert!(!task.task.trim().is_empty(), "{}: no text", task.id);
        assert!(
            texts.insert(task.task.trim().to_lowercase()),
            "{}: the same text as another task",
            task.id
        );
        assert!(
            !task.source.trim().is_empty(),
            "{}: no source document",
            task.id
        );
        assert!(!task.expected.is_empty(), "{}: no expected tool", task.id);
        let unique: BTreeSet<&String> = task.expected.iter().collect();
        assert_eq!(
            unique.len(),
            task.expected.len(),
            "{}: an expected tool repeated",
            task.id
        );
        for expected in &task.expected {
            assert!(
                tools.contains(expected),
                "{}: no tool {expected} in the catalog",
                task.id
            );
            let (server, _) = expected
                .split_once(SEPARATOR)
                .expect("qualified names have a separator");
            servers_asked.insert(server.to_owned());
        }
    }
    assert!(
        servers_asked.len() >= MIN_SERVERS,
        "tasks reach {} servers, want {MIN_SERVERS}",
        servers_asked.len()
    );
}

#[test]
fn tasks_split_by_their_id_hash_into_two_used_disjoint_halves() {
    let tasks = tasks();
    let mut halves: BTreeMap<Split, BTreeSet<&str>> = BTreeMap::new();
    for task in &tasks {
        assert_eq!(
            task.split,
            Split::of(&task.id),
            "{}: recorded in the wrong half",
            task.id
        );
        halves
            .entry(task.split)
            .or_default()
            .insert(task.id.as_str());
    }
    let tune = halves.get(&Split::Tune).cloned().unwrap_or_default();
    let held_out = halves.get(&Split::HeldOut).cloned().unwrap_or_default();
    assert!(
        !tune.is_empty() && !held_out.is_empty(),
        "{} tune, {} held out",
        tune.len(),
        held_out.len()
    );
    assert!(tune.is_disjoint(&held_out));
    assert_eq!(tune.len() + held_out.len(), tasks.len());
}

#[test]
fn synthetic_catalog_is_reproducible_well_formed_and_keeps_the_real_tools() {
    let real = real_tools(&catalog());
    let synthetic = synthetic_catalog(&real, SYNTHETIC_SIZE, SYNTHETIC_SEED);
    assert_eq!(synthetic.len(), SYNTHETIC_SIZE);
    assert_eq!(
        synthetic[..real.len()],
        real[..],
        "the real tools come first, unchanged"
    );
    assert_eq!(
        synthetic,
        synthetic_catalog(&real, SYNTHETIC_SIZE, SYNTHETIC_SEED),
        "same seed, same catalog"
    );
    // A catalog is made in order, so a smaller one with another seed shows the seed matters.
    let smaller = real.len() + 1_000;
    assert_ne!(
        synthetic[..smaller],
        synthetic_catalog(&real, smaller, SYNTHETIC_SEED + 1)[..],
        "another seed, another catalog"
    );

    let mut names = BTreeSet::new();
    let mut servers = BTreeSet::new();
    for tool in &synthetic[real.len()..] {
        if let Some(problem) = shape_problem(&tool.definition, true) {
            panic!("synthetic {}: {problem}", tool.server);
        }
        assert_eq!(
            slugify(&tool.server),
            tool.server,
            "synthetic server {:?} is not a slug",
            tool.server
        );
        servers.insert(tool.server.as_str());
    }
    for tool in &synthetic {
        let qualified = tool.qualified();
        assert!(
            names.insert(qualified.clone()),
            "{qualified} twice in the synthetic catalog"
        );
    }
    // Variation, not copies: most synthetic tools differ from every real one in name.
    let real_names: BTreeSet<&str> = real.iter().map(Tool::name).collect();
    let renamed = synthetic[real.len()..]
        .iter()
        .filter(|tool| !real_names.contains(tool.name()))
        .count();
    assert!(
        renamed * 2 > SYNTHETIC_SIZE - real.len(),
        "only {renamed} synthetic tools renamed"
    );
    let real_descriptions: BTreeSet<&str> = real.iter().map(Tool::description).collect();
    let redescribed = synthetic[real.len()..]
        .iter()
        .filter(|tool| !real_descriptions.contains(tool.description()))
        .count();
    assert!(
        redescribed * 2 > SYNTHETIC_SIZE - real.len(),
        "only {redescribed} synthetic descriptions differ from the real ones"
    );
    assert!(
        servers.len() > 100,
        "only {} synthetic servers",
        servers.len()
    );
    for task in tasks() {
        for expected in &task.expected {
            assert!(
                names.contains(expected),
                "{}: {expected} missing from the synthetic catalog",
                task.id
            );
        }
    }
}
