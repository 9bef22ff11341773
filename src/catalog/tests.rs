use std::sync::Arc;

use rmcp::model::{Prompt, Resource, ResourceTemplate, Tool};

use super::*;

fn tool(name: &str) -> Tool {
    Tool::new(name.to_owned(), "a tool", Arc::new(serde_json::Map::new()))
}

struct Fixture {
    names: Vec<String>,
    slugs: Vec<String>,
    uuids: Vec<String>,
    lists: Vec<ServerLists>,
    filter: ToolFilter,
    hints: ToolHints,
}

impl Fixture {
    fn new(servers: &[(&str, &[&str])]) -> Fixture {
        let names: Vec<String> = servers.iter().map(|(name, _)| (*name).to_owned()).collect();
        Fixture {
            slugs: names::unique_slugs(names.iter().map(String::as_str)),
            uuids: (0..servers.len())
                .map(|i| format!("00000000-0000-4000-8000-00000000000{i}"))
                .collect(),
            lists: servers
                .iter()
                .map(|(_, tools)| ServerLists {
                    tools: tools.iter().map(|name| tool(name)).collect(),
                    ..ServerLists::default()
                })
                .collect(),
            names,
            filter: ToolFilter::default(),
            hints: ToolHints::default(),
        }
    }

    fn build(&self, mode: PrefixMode) -> Catalog {
        let entries: Vec<_> = (0..self.names.len())
            .map(|i| ServerEntry {
                name: &self.names[i],
                slug: &self.slugs[i],
                uuid: &self.uuids[i],
                filter: &self.filter,
                lists: &self.lists[i],
                instructions: None,
                hints: &self.hints,
            })
            .collect();
        Catalog::build(&entries, mode)
    }
}

fn names(catalog: &Catalog) -> Vec<&str> {
    catalog.tools.iter().map(|t| t.name.as_ref()).collect()
}

#[test]
fn always_prefixes_every_tool_and_routes_back() {
    let fixture = Fixture::new(&[("Time Server", &["now", "echo"]), ("demo", &["echo"])]);
    let catalog = fixture.build(PrefixMode::Always);
    assert_eq!(
        names(&catalog),
        ["time-server__now", "time-server__echo", "demo__echo"]
    );
    assert_eq!(
        catalog.resolve_tool("demo__echo").unwrap(),
        Route::new("demo".into(), "echo".into())
    );
    // The UUID prefix is accepted on calls too.
    let by_uuid = format!("{}__now", fixture.uuids[0]);
    assert_eq!(
        catalog.resolve_tool(&by_uuid).unwrap().server,
        "Time Server"
    );
    assert!(matches!(
        catalog.resolve_tool("echo"),
        Err(ResolveError::Unknown { .. })
    ));
    assert!(matches!(
        catalog.resolve_tool("demo__nope"),
        Err(ResolveError::Unknown { .. })
    ));
}

#[test]
fn auto_prefixes_only_collisions() {
    let fixture = Fixture::new(&[("a", &["now", "echo"]), ("b", &["echo"])]);
    let catalog = fixture.build(PrefixMode::Auto);
    assert_eq!(names(&catalog), ["now", "a__echo", "b__echo"]);
    assert_eq!(catalog.resolve_tool("now").unwrap().server, "a");
    assert_eq!(catalog.resolve_tool("a__now").unwrap().original, "now");
}

#[test]
fn never_refuses_ambiguous_names_with_the_servers_named() {
    let fixture = Fixture::new(&[("a", &["now", "echo"]), ("b", &["echo"])]);
    let catalog = fixture.build(PrefixMode::Never);
    assert_eq!(names(&catalog), ["now"]);
    let error = catalog.resolve_tool("echo").unwrap_err();
    assert_eq!(
        error.to_string(),
        "tool \"echo\" is offered by several servers (a, b); call it as <server>__echo"
    );
    assert_eq!(catalog.resolve_tool("b__echo").unwrap().server, "b");
}

#[test]
fn filtered_tools_are_neither_listed_nor_callable() {
    let mut fixture = Fixture::new(&[("a", &["read", "write"])]);
    fixture.filter = ToolFilter {
        allow: None,
        deny: vec!["write".into()],
    };
    let catalog = fixture.build(PrefixMode::Always);
    assert_eq!(names(&catalog), ["a__read"]);
    assert!(catalog.resolve_tool("a__write").is_err());
}

#[test]
fn tools_per_server_counts_what_is_listed_after_filters() {
    let mut fixture = Fixture::new(&[("a", &["read", "write", "delete"]), ("b", &["x"])]);
    fixture.filter = ToolFilter {
        allow: Some(vec!["read".into(), "x".into()]),
        deny: Vec::new(),
    };
    let catalog = fixture.build(PrefixMode::Always);
    let counts = catalog.tools_per_server();
    assert_eq!((counts.get("a"), counts.get("b")), (Some(&1), Some(&1)));
}

#[test]
fn generated_names_never_collide() {
    // Server "a" offers "b__x" unprefixed (auto mode, unique) while "b__x" is also b's "x".
    let fixture = Fixture::new(&[("a", &["b__x", "x"]), ("b", &["x"])]);
    let catalog = fixture.build(PrefixMode::Auto);
    let listed = names(&catalog);
    let unique: HashSet<_> = listed.iter().collect();
    assert_eq!(unique.len(), listed.len(), "{listed:?}");
}

#[test]
fn long_names_fit_and_stay_unique() {
    let long_a = format!("{}_a", "very_long_tool_name".repeat(4));
    let long_b = format!("{}_b", "very_long_tool_name".repeat(4));
    let fixture = Fixture::new(&[("server", &[long_a.as_str(), long_b.as_str()])]);
    let catalog = fixture.build(PrefixMode::Always);
    let listed = names(&catalog);
    assert!(listed.iter().all(|name| name.len() <= 64), "{listed:?}");
    assert_ne!(listed[0], listed[1]);
    assert_eq!(catalog.resolve_tool(listed[1]).unwrap().original, long_b);
}

#[test]
fn resources_route_by_uri_then_template() {
    let mut fixture = Fixture::new(&[("a", &[]), ("b", &[])]);
    fixture.lists[0]
        .resources
        .push(Resource::new("test://static-text", "static"));
    fixture.lists[1]
        .resources
        .push(Resource::new("test://static-text", "dup"));
    fixture.lists[1]
        .templates
        .push(ResourceTemplate::new("test://template/{id}/data", "t"));
    fixture.lists[1]
        .prompts
        .push(Prompt::new("greet", None::<String>, None));
    let catalog = fixture.build(PrefixMode::Always);
    assert_eq!(catalog.resources.len(), 1);
    assert_eq!(catalog.resolve_resource("test://static-text"), Some("a"));
    assert_eq!(
        catalog.resolve_resource("test://template/7/data"),
        Some("b")
    );
    assert_eq!(catalog.resolve_resource("test://unknown"), None);
    assert_eq!(
        catalog.resolve_prompt("b__greet").unwrap(),
        PromptRoute::Downstream(Route::new("b".into(), "greet".into()))
    );
}

#[test]
fn instructions_become_a_prompt() {
    let fixture = Fixture::new(&[("My Server", &[])]);
    let messages = vec![InstructionMessage {
        role: InstructionRole::User,
        text: "Be nice".into(),
    }];
    let entries = [ServerEntry {
        name: &fixture.names[0],
        slug: &fixture.slugs[0],
        uuid: &fixture.uuids[0],
        filter: &fixture.filter,
        lists: &fixture.lists[0],
        instructions: Some(&messages),
        hints: &fixture.hints,
    }];
    let catalog = Catalog::build(&entries, PrefixMode::Always);
    assert_eq!(catalog.prompts[0].name, "my-server__instructions");
    assert_eq!(
        catalog.resolve_prompt("my-server__instructions").unwrap(),
        PromptRoute::Instructions {
            server: "My Server".into()
        }
    );
    assert_eq!(catalog.instructions("My Server").unwrap().len(), 1);
}

#[test]
fn pages_follow_cursors() {
    let items: Vec<u32> = (0..5).collect();
    let (first, next) = page(&items, None, 2).unwrap();
    assert_eq!(first, [0, 1]);
    let (second, next) = page(&items, next.as_deref(), 2).unwrap();
    assert_eq!(second, [2, 3]);
    let (last, next) = page(&items, next.as_deref(), 2).unwrap();
    assert_eq!((last, next), (vec![4], None));
    assert!(page(&items, Some("nope"), 2).is_err());
    assert!(page(&items, Some("9"), 2).is_err());
}

#[test]
fn configured_hints_merge_into_meta_and_replace_the_description() {
    let mut fixture = Fixture::new(&[("demo", &["echo", "add", "plain"])]);
    // The server's own `_meta` on `echo`: a key of its own, and a search hint the config
    // overrides.
    let own: serde_json::Map<String, serde_json::Value> = serde_json::from_value(
        serde_json::json!({"vendor/x": 1, "anthropic/searchHint": "the server's words"}),
    )
    .unwrap();
    fixture.lists[0].tools[0].meta = Some(own.into());
    fixture.hints = ToolHints {
        every: ToolHint {
            always_load: Some(false),
            search_hint: Some("arithmetic and text".into()),
            description: None,
        },
        tools: [(
            "echo".to_owned(),
            ToolHint {
                always_load: Some(true),
                search_hint: Some("repeat say back".into()),
                description: Some("Says the text back.".into()),
            },
        )]
        .into(),
    };
    let catalog = fixture.build(PrefixMode::Always);
    let meta = |index: usize| catalog.tools[index].meta.clone().unwrap().0;
    let echo = meta(0);
    assert_eq!(echo["vendor/x"], 1, "the server's other keys are kept");
    assert_eq!(echo[ALWAYS_LOAD], true);
    assert_eq!(echo[search::SEARCH_HINT], "repeat say back");
    assert_eq!(
        catalog.tools[0].description.as_deref(),
        Some("Says the text back.")
    );
    // `"*"` alone: its fields, and the server's description.
    let add = meta(1);
    assert_eq!(add[ALWAYS_LOAD], false);
    assert_eq!(add[search::SEARCH_HINT], "arithmetic and text");
    assert_eq!(catalog.tools[1].description.as_deref(), Some("a tool"));
    // Without hints a tool is as the server listed it.
    fixture.hints = ToolHints::default();
    let catalog = fixture.build(PrefixMode::Always);
    assert_eq!(catalog.tools[2].meta, None);
    assert_eq!(
        catalog.tools[0].meta.clone().unwrap().0["anthropic/searchHint"],
        "the server's words"
    );
}
