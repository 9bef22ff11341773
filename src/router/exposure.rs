//! Tool exposure: what a session's `tools/list` shows, and the meta-tools of search mode.
//!
//! In `all` mode a session lists the catalog. In `search` mode it lists the four meta-tools
//! (`builtin::search_tools`), the pinned tools (`_meta["anthropic/alwaysLoad"]: true`) and the
//! tools it activated; the rest it finds with `pluggedin_search_tools` (the catalog's search
//! index, built once per catalog), reads with `pluggedin_describe_tools` and calls with
//! `pluggedin_call_tool`. Search and describe see exactly the catalog, so what `tools/list`
//! would not show in `all` mode (a tool switched off, a server outside the workspace) is never
//! found. A call through `pluggedin_call_tool` is rewritten into the direct call it stands for
//! where every call begins (`Router::call_tool_relayed`), before anything is decided about it:
//! it takes the direct call's path, progress, cancellation, input requests, parking and
//! activity entry. Exposure decides what is listed, not what may be called: any tool the
//! catalog serves may be called directly in either mode, and the meta-tools may be called in
//! `all` mode too (a client told to use them keeps working when its session's exposure
//! changes).

use std::collections::{HashMap, HashSet};
use std::sync::atomic::Ordering;

use rmcp::model::{CallToolRequestParams, CallToolResult, ContentBlock, JsonObject, Tool};
use serde_json::value::RawValue;
use serde_json::{Map, Value, json};

use super::Router;
use super::error::RouteError;
use super::session::{Caller, MAX_ACTIVATED, Session};
use crate::builtin::search_tools::{self, ACTIVATE, CALL, DESCRIBE, SEARCH};
use crate::catalog::{ALWAYS_LOAD, Catalog, page};
use crate::config::ToolExposure;
use crate::sync::{lock, read};

/// The longest one-line description a search result carries, in characters.
const LINE: usize = 200;

impl Router {
    /// Sets the exposure of sessions that neither their token nor the active workspace decide
    /// (`--tool-exposure`).
    pub fn set_tool_exposure(&self, exposure: ToolExposure) {
        let _ = self.exposure.set(exposure);
    }

    /// What the `tools/list` of a session shows, for the principal that identifies it: the
    /// digest of its bearer token over HTTP (see [`Caller`]), `None` on stdio. The token's own
    /// exposure comes first, then the active workspace's, then `--tool-exposure`. Cheap: read
    /// for every `tools/list`.
    pub fn tool_exposure(&self, token: Option<&str>) -> ToolExposure {
        self.token_exposure(token)
            .or_else(|| self.workspace_exposure())
            .unwrap_or_else(|| self.exposure.get().copied().unwrap_or_default())
    }

    /// The exposure configured for a bearer token (its `authTokens` entry), if any.
    fn token_exposure(&self, token: Option<&str>) -> Option<ToolExposure> {
        read(&self.token_exposures).of_principal(token?)
    }

    /// The exposure of the workspace in force, if it sets one.
    fn workspace_exposure(&self) -> Option<ToolExposure> {
        self.visibility.active_exposure()
    }

    /// A page of the tools `session` lists under `exposure`: the catalog's in `all` mode; in
    /// `search` mode the meta-tools, the pinned tools in catalog order, then the tools the
    /// session activated in the order it activated them (so activating one only adds to the end
    /// of the list, and a client's prompt cache keeps what came before).
    pub fn list_tools_for(
        &self,
        session: &Session,
        exposure: ToolExposure,
        cursor: Option<&str>,
    ) -> Result<(Vec<Tool>, Option<String>), RouteError> {
        if exposure == ToolExposure::All {
            return self.list_tools(cursor);
        }
        if cursor.is_none() {
            self.tools_listed();
        }
        let tools = search_mode_tools(&self.catalog(), session);
        Ok(page(&tools, cursor, self.page_size)?)
    }

    /// Runs meta-tool `name` (canonical) with `arguments`. A `pluggedin_call_tool` whose
    /// arguments name a tool was made the direct call before routing ([`direct_call`]); one that
    /// reaches here has arguments that do not fit, said as a tool error.
    pub(super) fn call_meta_tool(
        &self,
        caller: &Caller,
        name: &str,
        arguments: Option<&JsonObject>,
    ) -> CallToolResult {
        let args = match search_tools::arguments(name, arguments) {
            Ok(args) => args,
            Err(message) => return failure(message),
        };
        match name {
            SEARCH => self.search_tools(&args),
            DESCRIBE => self.describe_tools(&args),
            ACTIVATE => self.activate_tools(caller, &args),
            _ if args.get("name").and_then(Value::as_str) == Some(CALL) => {
                failure(format!("{CALL} calls other tools, not itself"))
            }
            _ => failure(format!(
                "Invalid arguments for {CALL}: give the tool's \"name\" and its \"arguments\" \
                 as an object"
            )),
        }
    }

    fn search_tools(&self, args: &JsonObject) -> CallToolResult {
        let query = args.get("query").and_then(Value::as_str).unwrap_or("");
        let limit = args
            .get("limit")
            .and_then(Value::as_u64)
            .map_or(10, |limit| limit.clamp(1, 50) as usize);
        let server = match args.get("server").and_then(Value::as_str) {
            None => None,
            Some(wanted) => {
                let servers = self.visible_servers();
                match servers
                    .iter()
                    .find(|server| server.name == wanted || server.slug == wanted)
                {
                    Some(server) => Some(server.name.clone()),
                    None => {
                        let names: Vec<&str> = servers.iter().map(|s| s.name.as_str()).collect();
                        return failure(format!(
                            "Invalid arguments for {SEARCH}: no server named \"{wanted}\" is on \
                             (the servers on: {})",
                            if names.is_empty() {
                                "none".to_owned()
                            } else {
                                names.join(", ")
                            }
                        ));
                    }
                }
            }
        };
        let catalog = self.catalog();
        let index = self.catalog.index(&catalog);
        let server_of = |tool: &Tool| catalog.resolve_tool(&tool.name).ok().map(|r| r.server);
        let hits = index.search(query, limit, |position| match &server {
            None => true,
            Some(server) => server_of(&catalog.tools[position]).as_ref() == Some(server),
        });
        let mut lines = Vec::with_capacity(hits.len());
        let mut found = Vec::with_capacity(hits.len());
        for hit in &hits {
            let tool = &catalog.tools[hit.tool];
            let description = one_line(tool.description.as_deref().unwrap_or(""));
            // Three decimals: enough to order by, and the same text for the same catalog.
            let score = (f64::from(hit.score) * 1000.0).round() / 1000.0;
            lines.push(format!("{} ({score:.3}): {description}", tool.name));
            let mut entry = Map::new();
            entry.insert("name".into(), tool.name.as_ref().into());
            if let Some(server) = server_of(tool) {
                entry.insert("server".into(), server.into());
            }
            entry.insert("description".into(), description.into());
            entry.insert("score".into(), score.into());
            found.push(Value::Object(entry));
        }
        let text = if lines.is_empty() {
            format!("No tool matches \"{query}\". Search again with other words.")
        } else {
            format!(
                "{} tool(s) for \"{query}\", best first (name, score, description). Describe \
                 them with {DESCRIBE}, call them with {CALL}.\n{}",
                lines.len(),
                lines.join("\n")
            )
        };
        structured(text, json!({ "tools": found }))
    }

    fn describe_tools(&self, args: &JsonObject) -> CallToolResult {
        let catalog = self.catalog();
        let mut tools = Vec::new();
        let mut unknown = Vec::new();
        for name in strings(args, "names") {
            let tool = catalog
                .tools
                .iter()
                .chain(search_tools::tools())
                .find(|tool| tool.name == name);
            match tool.map(serde_json::to_value) {
                Some(Ok(tool)) => tools.push(tool),
                _ => unknown.push(name),
            }
        }
        if tools.is_empty() {
            return failure(format!(
                "No tool named {}; find tools with {SEARCH}",
                quoted(&unknown)
            ));
        }
        let mut described = json!({ "tools": tools });
        // As `tools/list` gives them: a 2025-11-25 `execution` back in place.
        crate::wire::core_tasks::unstash_result(&mut described);
        if !unknown.is_empty() {
            described["unknown"] = json!(unknown);
        }
        let text = serde_json::to_string(&described).unwrap_or_default();
        structured(text, described)
    }

    fn activate_tools(&self, caller: &Caller, args: &JsonObject) -> CallToolResult {
        let Some(session) = caller.session.as_ref() else {
            return failure("Only a client session has a tool list to add tools to");
        };
        let catalog = self.catalog();
        let listed: HashMap<&str, &Tool> = catalog
            .tools
            .iter()
            .map(|tool| (tool.name.as_ref(), tool))
            .collect();
        let mut unknown = Vec::new();
        let mut known = Vec::new();
        for name in strings(args, "names") {
            match listed.get(name.as_str()) {
                Some(tool) => known.push((name, is_pinned(tool))),
                None => unknown.push(name),
            }
        }
        let search_mode = self.tool_exposure(caller.token()) == ToolExposure::Search;
        let mut added = Vec::new();
        let mut already = Vec::new();
        let mut refused = Vec::new();
        {
            let mut activated = lock(&session.activated);
            // Tools gone from the catalog leave room for others.
            activated.retain(|name| listed.contains_key(name.as_str()));
            for (name, pinned) in known {
                if !search_mode || pinned || activated.contains(&name) {
                    already.push(name);
                } else if activated.len() >= MAX_ACTIVATED {
                    refused.push(name);
                } else {
                    activated.push(name.clone());
                    added.push(name);
                }
            }
        }
        if !added.is_empty() {
            session.interests_changed.store(true, Ordering::Relaxed);
            session.notify_tools_changed(&self.tracker);
        }
        let mut text = Vec::new();
        if !added.is_empty() {
            text.push(format!(
                "Added to this session's tool list: {}. Call them directly.",
                quoted(&added)
            ));
        }
        if !already.is_empty() {
            text.push(format!("Listed already: {}.", quoted(&already)));
        }
        if !refused.is_empty() {
            text.push(format!(
                "Not added, as this session has {MAX_ACTIVATED} tools activated already (call \
                 them with {CALL}): {}.",
                quoted(&refused)
            ));
        }
        if !unknown.is_empty() {
            text.push(format!(
                "No tool named {}; find tools with {SEARCH}.",
                quoted(&unknown)
            ));
        }
        let outcome = json!({
            "activated": added,
            "listedAlready": already,
            "refused": refused,
            "unknown": unknown,
        });
        let mut result = structured(text.join(" "), outcome);
        if added.is_empty() && already.is_empty() {
            result.is_error = Some(true);
        }
        result
    }
}

/// The tools a session lists in search mode (see [`Router::list_tools_for`]).
fn search_mode_tools(catalog: &Catalog, session: &Session) -> Vec<Tool> {
    let mut tools = search_tools::tools().to_vec();
    let activated = lock(&session.activated);
    let order: HashMap<&str, usize> = activated
        .iter()
        .enumerate()
        .map(|(position, name)| (name.as_str(), position))
        .collect();
    let mut chosen = Vec::new();
    for tool in &catalog.tools {
        if is_pinned(tool) {
            tools.push(tool.clone());
        } else if let Some(position) = order.get(tool.name.as_ref()) {
            chosen.push((*position, tool));
        }
    }
    chosen.sort_by_key(|(position, _)| *position);
    tools.extend(chosen.into_iter().map(|(_, tool)| tool.clone()));
    tools
}

/// Whether `tool` is pinned: listed in search mode too.
pub fn is_pinned(tool: &Tool) -> bool {
    tool.meta
        .as_ref()
        .and_then(|meta| meta.get(ALWAYS_LOAD))
        .and_then(Value::as_bool)
        == Some(true)
}

/// A call of `pluggedin_call_tool` whose arguments name a tool (another than itself) and give
/// its arguments as an object, as the direct call of that tool: the name and arguments replaced,
/// everything else (`_meta`, a retry's input responses and request state) kept. `raw`, the
/// arguments as the client wrote them (a fast entry's), gives the inner arguments as written.
/// Any other call is returned as it is.
pub(super) fn direct_call(
    mut params: CallToolRequestParams,
    raw: Option<Box<RawValue>>,
) -> (CallToolRequestParams, Option<Box<RawValue>>) {
    if params.name != CALL {
        return (params, raw);
    }
    match raw {
        Some(outer) => {
            #[derive(serde::Deserialize)]
            #[serde(deny_unknown_fields)]
            struct Inner {
                name: String,
                arguments: Option<Box<RawValue>>,
            }
            let Ok(inner) = serde_json::from_str::<Inner>(outer.get()) else {
                return (params, Some(outer));
            };
            let arguments = match inner.arguments {
                Some(raw) if raw.get().trim_start().starts_with('{') => Some(raw),
                None => None,
                Some(_) => return (params, Some(outer)),
            };
            if inner.name == CALL {
                return (params, Some(outer));
            }
            params.name = inner.name.into();
            params.arguments = None;
            (params, arguments)
        }
        None => {
            let Some(outer) = &params.arguments else {
                return (params, None);
            };
            let Some((name, arguments)) = inner_call(outer) else {
                return (params, None);
            };
            params.name = name.into();
            params.arguments = arguments;
            (params, None)
        }
    }
}

/// [`direct_call`] for a task-augmented call's params as JSON (`core_tasks`).
pub(super) fn direct_task_call(params: &mut Map<String, Value>) {
    if params.get("name").and_then(Value::as_str) != Some(CALL) {
        return;
    }
    let Some((name, arguments)) = params
        .get("arguments")
        .and_then(Value::as_object)
        .and_then(inner_call)
    else {
        return;
    };
    params.insert("name".into(), name.into());
    match arguments {
        Some(arguments) => params.insert("arguments".into(), Value::Object(arguments)),
        None => params.remove("arguments"),
    };
}

/// The tool and arguments `pluggedin_call_tool`'s arguments name, when they fit its schema
/// and name another tool.
fn inner_call(outer: &JsonObject) -> Option<(String, Option<JsonObject>)> {
    if outer.keys().any(|key| key != "name" && key != "arguments") {
        return None;
    }
    let name = outer.get("name")?.as_str().filter(|name| *name != CALL)?;
    let arguments = match outer.get("arguments") {
        None | Some(Value::Null) => None,
        Some(Value::Object(arguments)) => Some(arguments.clone()),
        Some(_) => return None,
    };
    Some((name.to_owned(), arguments))
}

/// The first line of a description, at most [`LINE`] characters.
fn one_line(description: &str) -> String {
    let line = description.trim().lines().next().unwrap_or("").trim();
    if line.chars().count() <= LINE {
        return line.to_owned();
    }
    let mut cut: String = line.chars().take(LINE - 1).collect();
    cut.push('…');
    cut
}

/// The strings of an array argument, each once, in order.
fn strings(args: &JsonObject, key: &str) -> Vec<String> {
    let mut seen = HashSet::new();
    args.get(key)
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .filter(|name| seen.insert(*name))
        .map(str::to_owned)
        .collect()
}

fn quoted(names: &[String]) -> String {
    let quoted: Vec<String> = names.iter().map(|name| format!("\"{name}\"")).collect();
    quoted.join(", ")
}

fn structured(text: String, content: Value) -> CallToolResult {
    let mut result = CallToolResult::success(vec![ContentBlock::text(text)]);
    result.structured_content = Some(content);
    result
}

fn failure(message: impl Into<String>) -> CallToolResult {
    CallToolResult::error(vec![ContentBlock::text(message.into())])
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    fn call(arguments: Value) -> CallToolRequestParams {
        CallToolRequestParams::new(CALL).with_arguments(arguments.as_object().unwrap().clone())
    }

    #[test]
    fn a_meta_call_becomes_the_direct_call_and_anything_else_stays() {
        let (direct, _) = direct_call(
            call(json!({"name": "demo__echo", "arguments": {"text": "hi"}})),
            None,
        );
        assert_eq!(direct.name, "demo__echo");
        assert_eq!(direct.arguments.unwrap()["text"], "hi");

        let raw = RawValue::from_string(
            r#"{"name":"demo__echo","arguments":{"text": "as written"}}"#.to_owned(),
        )
        .unwrap();
        let (direct, raw) = direct_call(CallToolRequestParams::new(CALL), Some(raw));
        assert_eq!(direct.name, "demo__echo");
        assert_eq!(raw.unwrap().get(), r#"{"text": "as written"}"#);

        for unfit in [
            json!({"name": CALL, "arguments": {}}),
            json!({"name": "demo__echo", "arguments": "text"}),
            json!({"name": "demo__echo", "extra": 1}),
            json!({"arguments": {}}),
        ] {
            let (kept, _) = direct_call(call(unfit.clone()), None);
            assert_eq!(kept.name, CALL, "{unfit}");
            let raw = RawValue::from_string(unfit.to_string()).unwrap();
            let (kept, raw) = direct_call(CallToolRequestParams::new(CALL), Some(raw));
            assert_eq!(kept.name, CALL, "{unfit}");
            assert_eq!(raw.unwrap().get(), unfit.to_string());
        }

        let mut task = json!({"name": CALL, "arguments": {"name": "demo__slow"}, "task": {}});
        direct_task_call(task.as_object_mut().unwrap());
        assert_eq!(task, json!({"name": "demo__slow", "task": {}}));
    }

    #[test]
    fn search_mode_lists_meta_tools_then_pinned_tools_then_activated_ones_as_activated() {
        let tool = |name: &str, pinned: bool| {
            let mut tool = Tool::new(name.to_owned(), "", Arc::new(JsonObject::new()));
            if pinned {
                let mut meta = rmcp::model::MetaObject::new();
                meta.insert(ALWAYS_LOAD.into(), true.into());
                tool.meta = Some(meta);
            }
            tool
        };
        let mut catalog = Catalog::default();
        catalog.tools = vec![
            tool("a__first", false),
            tool("a__pinned", true),
            tool("b__second", false),
            tool("b__pinned", true),
        ];
        let session = Session::default();
        *lock(&session.activated) =
            vec!["b__second".into(), "gone__tool".into(), "a__first".into()];
        let names: Vec<String> = search_mode_tools(&catalog, &session)
            .into_iter()
            .map(|tool| tool.name.into_owned())
            .collect();
        let mut expected: Vec<&str> = vec![SEARCH, DESCRIBE, CALL, ACTIVATE];
        expected.extend(["a__pinned", "b__pinned", "b__second", "a__first"]);
        assert_eq!(names, expected);
    }

    #[test]
    fn descriptions_are_cut_to_one_line() {
        assert_eq!(one_line("  Echoes.\nMore text."), "Echoes.");
        let long = "x".repeat(500);
        assert_eq!(one_line(&long).chars().count(), LINE);
    }
}
