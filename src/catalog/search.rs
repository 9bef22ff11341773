//! Search over a catalog's tools, for clients that see only the search meta-tools: a query in a
//! person's words ranked against every tool's name, title, description and parameters, the same
//! answer for the same catalog and query.
//!
//! The index is built once per catalog: catalogs are immutable snapshots.

use std::collections::HashMap;

use rmcp::model::Tool;

/// The `_meta` key of a tool's search hint: words a client's tool search (and ours) should match.
pub const SEARCH_HINT: &str = "anthropic/searchHint";

/// One tool found, by its index in the tools the index was built from.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Hit {
    pub tool: usize,
    pub score: f32,
}

/// An index of tools, searched by [`ToolIndex::search`].
#[derive(Debug, Default)]
pub struct ToolIndex {
    /// Term → the tools that contain it, with the term's count in each.
    postings: HashMap<String, Vec<(usize, u32)>>,
    lengths: Vec<u32>,
}

impl ToolIndex {
    /// Indexes `tools`; a [`Hit`]'s `tool` is an index into this slice.
    pub fn build(tools: &[Tool]) -> ToolIndex {
        let mut index = ToolIndex::default();
        for (position, tool) in tools.iter().enumerate() {
            let mut counts: HashMap<String, u32> = HashMap::new();
            let mut length = 0;
            for term in tool_text(tool).iter().flat_map(|text| terms(text)) {
                *counts.entry(term).or_default() += 1;
                length += 1;
            }
            for (term, count) in counts {
                index
                    .postings
                    .entry(term)
                    .or_default()
                    .push((position, count));
            }
            index.lengths.push(length);
        }
        index
    }

    /// The `limit` best tools for `query` among those `keep` accepts, best first; ties in
    /// the tools' order.
    pub fn search(&self, query: &str, limit: usize, keep: impl Fn(usize) -> bool) -> Vec<Hit> {
        let mut scores: HashMap<usize, f32> = HashMap::new();
        let tools = self.lengths.len() as f32;
        for term in terms(query) {
            let Some(postings) = self.postings.get(&term) else {
                continue;
            };
            let idf =
                (1.0 + (tools - postings.len() as f32 + 0.5) / (postings.len() as f32 + 0.5)).ln();
            for &(tool, count) in postings {
                *scores.entry(tool).or_default() += idf * count as f32 / (count as f32 + 1.0);
            }
        }
        let mut hits: Vec<Hit> = scores
            .into_iter()
            .filter(|&(tool, _)| keep(tool))
            .map(|(tool, score)| Hit { tool, score })
            .collect();
        hits.sort_by(|a, b| b.score.total_cmp(&a.score).then(a.tool.cmp(&b.tool)));
        hits.truncate(limit);
        hits
    }
}

/// The texts of a tool that a search matches.
fn tool_text(tool: &Tool) -> Vec<String> {
    let mut texts = vec![tool.name.to_string()];
    texts.extend(tool.title.clone());
    texts.extend(tool.description.as_deref().map(str::to_owned));
    if let Some(hint) = tool
        .meta
        .as_ref()
        .and_then(|meta| meta.get(SEARCH_HINT))
        .and_then(|hint| hint.as_str())
    {
        texts.push(hint.to_owned());
    }
    if let Some(properties) = tool
        .input_schema
        .get("properties")
        .and_then(|properties| properties.as_object())
    {
        for (name, property) in properties {
            texts.push(name.clone());
            if let Some(description) = property.get("description").and_then(|d| d.as_str()) {
                texts.push(description.to_owned());
            }
        }
    }
    texts
}

/// Lower-case words of `text`, split at anything not alphanumeric and at case changes.
fn terms(text: &str) -> impl Iterator<Item = String> + '_ {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut previous_lower = false;
    for character in text.chars() {
        if !character.is_alphanumeric() {
            previous_lower = false;
            if !word.is_empty() {
                words.push(std::mem::take(&mut word));
            }
            continue;
        }
        if character.is_uppercase() && previous_lower && !word.is_empty() {
            words.push(std::mem::take(&mut word));
        }
        previous_lower = character.is_lowercase();
        word.extend(character.to_lowercase());
    }
    if !word.is_empty() {
        words.push(word);
    }
    words.into_iter()
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
}
