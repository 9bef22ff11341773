//! The four meta-tools of search mode (`search_tools.json`, fixed definitions): search,
//! describe, call and activate the tools a session's `tools/list` does not show. Their
//! definitions and the check of their arguments live here, with the other built-ins'; what they
//! do needs the catalog, the session and the call path, and is the router's (`exposure`).

use std::sync::OnceLock;

use rmcp::model::{JsonObject, Tool};

/// Finds tools by words.
pub const SEARCH: &str = "pluggedin_search_tools";
/// Gives tools' full definitions.
pub const DESCRIBE: &str = "pluggedin_describe_tools";
/// Calls a tool by name, as a direct call would.
pub const CALL: &str = "pluggedin_call_tool";
/// Adds tools to the session's `tools/list`.
pub const ACTIVATE: &str = "pluggedin_activate_tools";

/// The meta-tools, in list order.
pub fn tools() -> &'static [Tool] {
    static TOOLS: OnceLock<Vec<Tool>> = OnceLock::new();
    TOOLS.get_or_init(|| {
        serde_json::from_str(include_str!("search_tools.json"))
            .expect("search_tools.json is valid (a unit test parses it)")
    })
}

/// The meta-tool `name` is, if it is one.
pub fn canonical(name: &str) -> Option<&'static str> {
    [SEARCH, DESCRIBE, CALL, ACTIVATE]
        .into_iter()
        .find(|known| *known == name)
}

/// Meta-tool `name`'s arguments with their defaults, or why they do not fit its schema (a
/// message naming the field, for a tool error).
pub fn arguments(name: &str, arguments: Option<&JsonObject>) -> Result<JsonObject, String> {
    let Some(tool) = tools().iter().find(|tool| tool.name == name) else {
        return Err(format!("Unknown tool: {name}"));
    };
    if let Some(unknown) = arguments
        .into_iter()
        .flat_map(|arguments| arguments.keys())
        .find(|key| {
            tool.input_schema
                .get("properties")
                .and_then(|properties| properties.get(key.as_str()))
                .is_none()
        })
    {
        return Err(format!(
            "Invalid arguments for {name}: \"{unknown}\" is not one of its arguments"
        ));
    }
    super::validate::arguments(&tool.input_schema, arguments)
        .map_err(|message| format!("Invalid arguments for {name}: {message}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_meta_tools_parse_and_check_their_arguments() {
        let names: Vec<&str> = tools().iter().map(|tool| tool.name.as_ref()).collect();
        assert_eq!(names, [SEARCH, DESCRIBE, CALL, ACTIVATE]);
        let args = |value: serde_json::Value| value.as_object().cloned();
        let search = arguments(SEARCH, args(serde_json::json!({"query": "time"})).as_ref());
        assert_eq!(search.unwrap()["limit"], 10);
        let error = arguments(SEARCH, args(serde_json::json!({"limit": 5})).as_ref());
        assert!(error.unwrap_err().contains("\"query\" is required"));
        let error = arguments(
            SEARCH,
            args(serde_json::json!({"query": "a", "x": 1})).as_ref(),
        );
        assert!(error.unwrap_err().contains("\"x\""));
        let error = arguments(
            SEARCH,
            args(serde_json::json!({"query": "a", "limit": 51})).as_ref(),
        );
        assert!(error.unwrap_err().contains("limit"));
        assert_eq!(canonical(CALL), Some(CALL));
        assert_eq!(canonical("pluggedin_setup"), None);
    }
}
