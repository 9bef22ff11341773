//! The tool-search benchmark's data: the real catalog (the `tools/list` answers of real MCP
//! servers under `catalog/`), the labelled tasks (`tasks.json`), and a generator that grows the
//! real catalog into a synthetic one of any size by varying its tools' names, descriptions and
//! parameters. Loading and generating only: how tools are ranked is left to the code under test.
//! Shared by the benchmark and by the test that validates the data (`#[path]`-included, so it
//! depends on nothing but serde).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde_json::{Map, Value};

/// Between a server's name and its tool's, as the proxy namespaces tools (`<slug>__<name>`).
pub const SEPARATOR: &str = "__";

/// The benchmark's folder, from the repository's root.
pub fn folder() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/tool_search")
}

/// A failure reading the data, naming the file and what is wrong with it.
#[derive(Debug)]
pub struct DataError {
    pub path: PathBuf,
    pub reason: String,
}

impl fmt::Display for DataError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path.display(), self.reason)
    }
}

impl std::error::Error for DataError {}

/// One tool: the server it belongs to and its definition as the server listed it.
#[derive(Debug, Clone, PartialEq)]
pub struct Tool {
    pub server: String,
    pub definition: Map<String, Value>,
}

impl Tool {
    pub fn name(&self) -> &str {
        self.definition
            .get("name")
            .and_then(Value::as_str)
            .unwrap_or("")
    }

    pub fn description(&self) -> &str {
        self.definition
            .get("description")
            .and_then(Value::as_str)
            .unwrap_or("")
    }

    /// `<server>__<tool>`, the name a client of the proxy sees.
    pub fn qualified(&self) -> String {
        format!("{}{SEPARATOR}{}", self.server, self.name())
    }
}

/// One server's capture: where it came from, and the tools of every page of its answer.
#[derive(Debug, Clone)]
pub struct Capture {
    pub server: String,
    pub registry: String,
    pub package: String,
    pub version: String,
    pub command: String,
    pub captured: String,
    /// Set when the official Python SDK refused the answer (a schema the MCP schema does not
    /// allow); the answer is kept as the server sent it.
    pub sdk_rejected: Vec<String>,
    pub tools: Vec<Tool>,
}

#[derive(Deserialize)]
struct CaptureFile {
    server: String,
    registry: String,
    package: String,
    version: String,
    command: String,
    captured: String,
    #[serde(default, rename = "sdkRejected")]
    sdk_rejected: Vec<String>,
    pages: Vec<Page>,
}

#[derive(Deserialize)]
struct Page {
    tools: Vec<Value>,
}

/// Which half of the tasks a task belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Deserialize)]
pub enum Split {
    /// For tuning a ranker: look at these as often as you like.
    #[serde(rename = "tune")]
    Tune,
    /// For the figures that are reported: never tuned against.
    #[serde(rename = "held-out")]
    HeldOut,
}

impl Split {
    /// The half a task id falls in: FNV-1a (64-bit) of the id's bytes, even to `Tune`, odd to
    /// `HeldOut`. Stable across runs, machines and additions of other tasks.
    pub fn of(id: &str) -> Split {
        let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
        for byte in id.bytes() {
            hash ^= u64::from(byte);
            hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
        }
        if hash.is_multiple_of(2) {
            Split::Tune
        } else {
            Split::HeldOut
        }
    }
}

/// A request a user would make, and the tools that do it (any one of them is a right answer).
#[derive(Debug, Clone, Deserialize)]
pub struct Task {
    pub id: String,
    pub task: String,
    pub expected: Vec<String>,
    pub split: Split,
    pub source: String,
}

#[derive(Deserialize)]
struct TaskFile {
    tasks: Vec<Task>,
}

/// Every capture under `catalog/`, by file name.
pub fn load_catalog(folder: &Path) -> Result<Vec<Capture>, DataError> {
    let dir = folder.join("catalog");
    let fail = |path: &Path, reason: String| DataError {
        path: path.to_owned(),
        reason,
    };
    let mut paths: Vec<PathBuf> = std::fs::read_dir(&dir)
        .map_err(|error| fail(&dir, error.to_string()))?
        .filter_map(|entry| entry.ok().map(|entry| entry.path()))
        .filter(|path| path.extension().is_some_and(|ext| ext == "json"))
        .collect();
    paths.sort();
    let mut captures = Vec::with_capacity(paths.len());
    for path in paths {
        let text =
            std::fs::read_to_string(&path).map_err(|error| fail(&path, error.to_string()))?;
        let file: CaptureFile =
            serde_json::from_str(&text).map_err(|error| fail(&path, error.to_string()))?;
        let mut tools = Vec::new();
        for value in file.pages.into_iter().flat_map(|page| page.tools) {
            let Value::Object(definition) = value else {
                return Err(fail(&path, "a tool that is not a JSON object".to_owned()));
            };
            tools.push(Tool {
                server: file.server.clone(),
                definition,
            });
        }
        captures.push(Capture {
            server: file.server,
            registry: file.registry,
            package: file.package,
            version: file.version,
            command: file.command,
            captured: file.captured,
            sdk_rejected: file.sdk_rejected,
            tools,
        });
    }
    Ok(captures)
}

/// The labelled tasks of `tasks.json`.
pub fn load_tasks(folder: &Path) -> Result<Vec<Task>, DataError> {
    let path = folder.join("tasks.json");
    let fail = |reason: String| DataError {
        path: path.clone(),
        reason,
    };
    let text = std::fs::read_to_string(&path).map_err(|error| fail(error.to_string()))?;
    let file: TaskFile = serde_json::from_str(&text).map_err(|error| fail(error.to_string()))?;
    Ok(file.tasks)
}

/// What is wrong with a tool definition by the MCP schema's `Tool` (2025-11-25): a `name` of 1
/// to 128 of `A-Za-z0-9_-.`, a string `description`, an `inputSchema` object whose `type` is
/// `"object"`, with an object of `properties` and a list of `required` names if present. A
/// schema without `type` is reported apart (`strict: false` lets it through), as some real
/// servers send one.
pub fn shape_problem(definition: &Map<String, Value>, strict: bool) -> Option<String> {
    let Some(name) = definition.get("name").and_then(Value::as_str) else {
        return Some("no string name".to_owned());
    };
    let name_chars = |ch: char| ch.is_ascii_alphanumeric() || matches!(ch, '_' | '-' | '.');
    if name.is_empty() || name.len() > 128 || !name.chars().all(name_chars) {
        return Some(format!("name {name:?} is not 1-128 of A-Za-z0-9_-."));
    }
    if !definition.get("description").is_some_and(Value::is_string) {
        return Some(format!("{name}: no string description"));
    }
    let Some(schema) = definition.get("inputSchema").and_then(Value::as_object) else {
        return Some(format!("{name}: inputSchema is not an object"));
    };
    match schema.get("type") {
        Some(Value::String(kind)) if kind == "object" => {}
        None if !strict => {}
        other => {
            return Some(format!(
                "{name}: inputSchema type is {other:?}, not \"object\""
            ));
        }
    }
    if schema
        .get("properties")
        .is_some_and(|properties| !properties.is_object())
    {
        return Some(format!("{name}: inputSchema properties is not an object"));
    }
    if let Some(required) = schema.get("required") {
        let names = required
            .as_array()
            .map(|list| list.iter().all(Value::is_string));
        if names != Some(true) {
            return Some(format!(
                "{name}: inputSchema required is not a list of names"
            ));
        }
    }
    None
}

/// A synthetic catalog of `size` tools: the real ones first, unchanged, then variants of them
/// on made-up servers (`<vendor>-<server>`, each a copy of one real server's tool set with every
/// tool varied), until there are `size`. The same `real`, `size` and `seed` give the same
/// catalog. Names are varied by synonyms and casing, descriptions by synonyms, a vendor's
/// sentence and trimming, parameters by renaming, dropping optional ones and adding others: the
/// near-duplicates a large real catalog has. Every synthetic tool has the MCP shape.
pub fn synthetic_catalog(real: &[Tool], size: usize, seed: u64) -> Vec<Tool> {
    assert!(
        size >= real.len(),
        "a catalog of {size} cannot hold the {} real tools",
        real.len()
    );
    let mut servers: BTreeMap<&str, Vec<&Tool>> = BTreeMap::new();
    for tool in real {
        servers.entry(tool.server.as_str()).or_default().push(tool);
    }
    let servers: Vec<(&str, Vec<&Tool>)> = servers.into_iter().collect();
    let mut varier = Varier::new(seed);
    let mut catalog = real.to_vec();
    let mut server_names: BTreeSet<String> = real.iter().map(|tool| tool.server.clone()).collect();
    while catalog.len() < size && !servers.is_empty() {
        let (base, tools) = &servers[varier.random.below(servers.len())];
        let vendor = VENDORS[varier.random.below(VENDORS.len())];
        let mut server = format!("{vendor}-{base}");
        let mut round = 2;
        while server_names.contains(&server) {
            server = format!("{vendor}-{base}-{round}");
            round += 1;
        }
        server_names.insert(server.clone());
        let style = Style::pick(&mut varier.random);
        let mut names = BTreeSet::new();
        for tool in tools {
            if catalog.len() == size {
                break;
            }
            let mut definition = varier.tool(&tool.definition, vendor, style);
            let base_name = definition["name"].as_str().unwrap_or_default().to_owned();
            let mut name = base_name.clone();
            let mut suffix = 2;
            while names.contains(&name) {
                name = format!("{base_name}_{suffix}");
                suffix += 1;
            }
            definition.insert("name".to_owned(), Value::String(name.clone()));
            names.insert(name);
            catalog.push(Tool {
                server: server.clone(),
                definition,
            });
        }
    }
    catalog
}

/// Made-up vendors for the synthetic servers.
const VENDORS: &[&str] = &[
    "acme",
    "globex",
    "initech",
    "umbrella",
    "hooli",
    "vandelay",
    "stark",
    "wayne",
    "wonka",
    "tyrell",
    "cyberdyne",
    "soylent",
    "aperture",
    "blackmesa",
    "oscorp",
    "massive",
    "northwind",
    "contoso",
    "fabrikam",
    "tailspin",
    "adatum",
    "litware",
    "proseware",
    "wingtip",
    "fourth",
    "lucerne",
    "margie",
    "woodgrove",
    "alpine",
    "coho",
    "datum",
    "relecloud",
    "trey",
    "nod",
    "southridge",
    "vanarsdel",
    "bluesky",
    "redwood",
    "ironclad",
    "quantum",
];

/// Words and their stand-ins, for names, descriptions and parameter names alike. Each group is
/// interchangeable; a word is replaced by another of its group.
const SYNONYMS: &[&[&str]] = &[
    &["get", "fetch", "retrieve", "read", "load"],
    &["list", "enumerate", "browse", "show"],
    &["create", "add", "new", "make", "insert"],
    &["delete", "remove", "drop", "destroy", "erase"],
    &["update", "edit", "modify", "change", "patch"],
    &["search", "find", "query", "lookup", "locate"],
    &["run", "execute", "invoke", "start", "launch"],
    &["stop", "halt", "terminate", "cancel", "end"],
    &["file", "document", "doc"],
    &["directory", "folder", "dir"],
    &["repository", "repo", "project"],
    &["issue", "ticket", "bug"],
    &["comment", "note", "remark"],
    &["message", "post", "msg"],
    &["user", "member", "account", "person"],
    &["page", "tab", "view"],
    &["path", "filepath", "location"],
    &["content", "contents", "body", "text"],
    &["limit", "max", "count", "size"],
    &["id", "identifier", "key", "ref"],
    &["screenshot", "capture", "snapshot"],
    &["navigate", "goto", "open", "visit"],
    &["database", "db", "datastore"],
    &["table", "collection", "dataset"],
    &["branch", "ref", "line"],
    &["details", "info", "metadata"],
    &["items", "entries", "records", "rows"],
    &["status", "state", "health"],
];

/// No word of `SYNONYMS` is longer.
const LONGEST_SYNONYM: usize = 12;

/// Sentences a vendor adds to a description.
const VENDOR_SENTENCES: &[&str] = &[
    "Requires a {vendor} account.",
    "Provided by the {vendor} integration.",
    "Works with {vendor} workspaces only.",
    "Calls the {vendor} API; rate limits apply.",
    "Part of the {vendor} toolkit for assistants.",
    "Results are cached by {vendor} for a few minutes.",
];

/// Optional parameters a variant may gain.
const EXTRA_PARAMETERS: &[(&str, &str, &str)] = &[
    (
        "timeout_ms",
        "integer",
        "How long to wait before giving up, in milliseconds",
    ),
    ("verbose", "boolean", "Include extra detail in the result"),
    ("format", "string", "Output format: json, text or markdown"),
    (
        "dry_run",
        "boolean",
        "Report what would change without changing anything",
    ),
    ("page_size", "integer", "How many results per page"),
    (
        "cursor",
        "string",
        "Where to continue from, as returned by a previous call",
    ),
    ("workspace", "string", "The workspace to act in"),
    ("region", "string", "The region to use, such as eu-west-1"),
    ("tags", "array", "Labels to filter or attach"),
    (
        "include_archived",
        "boolean",
        "Also consider archived items",
    ),
];

/// How a synthetic server spells its tool names.
#[derive(Debug, Clone, Copy)]
enum Style {
    Snake,
    Kebab,
    Camel,
    Dotted,
}

impl Style {
    fn pick(random: &mut Random) -> Style {
        match random.below(10) {
            0..=4 => Style::Snake,
            5 | 6 => Style::Kebab,
            7 | 8 => Style::Camel,
            _ => Style::Dotted,
        }
    }

    fn join(self, words: &[String]) -> String {
        match self {
            Style::Snake => words.join("_"),
            Style::Kebab => words.join("-"),
            Style::Dotted => words.join("."),
            Style::Camel => {
                let mut name = String::new();
                for (index, word) in words.iter().enumerate() {
                    if index == 0 {
                        name.push_str(word);
                    } else {
                        let mut chars = word.chars();
                        if let Some(first) = chars.next() {
                            name.extend(first.to_uppercase());
                            name.push_str(chars.as_str());
                        }
                    }
                }
                name
            }
        }
    }
}

/// Varies tool definitions: the random numbers, and the synonym groups by word.
struct Varier {
    random: Random,
    thesaurus: HashMap<&'static str, &'static [&'static str]>,
}

impl Varier {
    fn new(seed: u64) -> Varier {
        let mut thesaurus = HashMap::new();
        for group in SYNONYMS {
            for word in *group {
                assert!(
                    word.len() <= LONGEST_SYNONYM,
                    "{word} is longer than LONGEST_SYNONYM"
                );
                // A word in two groups keeps its first.
                thesaurus.entry(*word).or_insert(*group);
            }
        }
        Varier {
            random: Random(seed),
            thesaurus,
        }
    }

    fn tool(
        &mut self,
        definition: &Map<String, Value>,
        vendor: &str,
        style: Style,
    ) -> Map<String, Value> {
        let name = definition
            .get("name")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let mut words: Vec<String> = split_words(name)
            .iter()
            .map(|word| self.swap(word, 2))
            .collect();
        if words.is_empty() {
            words.push("tool".to_owned());
        }
        if self.random.below(5) == 0 {
            words.insert(0, vendor.to_owned());
        }
        let mut varied = Map::new();
        for (key, value) in definition {
            let value = match key.as_str() {
                "name" => Value::String(style.join(&words)),
                "title" => {
                    let title: Vec<String> = words.iter().map(|word| capitalized(word)).collect();
                    Value::String(title.join(" "))
                }
                "description" => {
                    let text = value.as_str().unwrap_or_default();
                    Value::String(self.description(text, vendor))
                }
                "inputSchema" => match value {
                    Value::Object(schema) => Value::Object(with_object_type(self.schema(schema))),
                    _ => Value::Object(with_object_type(Map::new())),
                },
                "_meta" => continue,
                _ => value.clone(),
            };
            varied.insert(key.clone(), value);
        }
        if !varied.contains_key("description") {
            varied.insert(
                "description".to_owned(),
                Value::String(self.description("", vendor)),
            );
        }
        if !varied.contains_key("inputSchema") {
            varied.insert(
                "inputSchema".to_owned(),
                Value::Object(with_object_type(Map::new())),
            );
        }
        varied
    }

    fn description(&mut self, description: &str, vendor: &str) -> String {
        let mut text = description.trim();
        // Some variants keep only the first sentence, as terse servers do.
        if self.random.below(4) == 0
            && let Some(end) = text.find(". ")
        {
            text = &text[..=end];
        }
        let mut out = self.prose(text);
        if self.random.below(3) == 0 {
            let sentence = VENDOR_SENTENCES[self.random.below(VENDOR_SENTENCES.len())];
            let trimmed = out.trim_end().len();
            out.truncate(trimmed);
            if !out.is_empty() && !out.ends_with(['.', '!', '?', ':']) {
                out.push('.');
            }
            if !out.is_empty() {
                out.push(' ');
            }
            out.push_str(&sentence.replace("{vendor}", &capitalized(vendor)));
        }
        out
    }

    /// Prose with some of its words swapped, spacing and punctuation kept.
    fn prose(&mut self, text: &str) -> String {
        let mut out = String::with_capacity(text.len() + 64);
        for (index, token) in text.split(' ').enumerate() {
            if index > 0 {
                out.push(' ');
            }
            self.push_token(token, &mut out);
        }
        out
    }

    fn schema(&mut self, schema: &Map<String, Value>) -> Map<String, Value> {
        let Some(Value::Object(properties)) = schema.get("properties") else {
            return schema.clone();
        };
        let required: BTreeSet<&str> = schema
            .get("required")
            .and_then(Value::as_array)
            .map(|list| list.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        let optional: Vec<&String> = properties
            .keys()
            .filter(|key| !required.contains(key.as_str()))
            .collect();
        let dropped = (!optional.is_empty() && self.random.below(3) == 0)
            .then(|| optional[self.random.below(optional.len())].clone());
        let mut renamed_properties = Map::new();
        let mut renamed_required = Vec::new();
        for (key, value) in properties {
            if dropped.as_ref() == Some(key) {
                continue;
            }
            let mut new_key = if self.random.below(3) == 0 {
                self.identifier(key)
            } else {
                key.clone()
            };
            // A new name must not take another parameter's.
            if renamed_properties.contains_key(&new_key)
                || (new_key != *key && properties.contains_key(&new_key))
            {
                new_key = key.clone();
            }
            let mut value = value.clone();
            if let Value::Object(property) = &mut value
                && let Some(Value::String(text)) = property.get("description")
            {
                let text = self.prose(text);
                property.insert("description".to_owned(), Value::String(text));
            }
            if required.contains(key.as_str()) {
                renamed_required.push(Value::String(new_key.clone()));
            }
            renamed_properties.insert(new_key, value);
        }
        if self.random.below(3) == 0 {
            let (key, kind, description) =
                EXTRA_PARAMETERS[self.random.below(EXTRA_PARAMETERS.len())];
            if !renamed_properties.contains_key(key) {
                let mut property = Map::new();
                property.insert("type".to_owned(), Value::String(kind.to_owned()));
                property.insert(
                    "description".to_owned(),
                    Value::String(description.to_owned()),
                );
                if kind == "array" {
                    property.insert("items".to_owned(), serde_json::json!({"type": "string"}));
                }
                renamed_properties.insert(key.to_owned(), Value::Object(property));
            }
        }
        let mut varied = Map::new();
        for (key, value) in schema {
            let value = match key.as_str() {
                "properties" => Value::Object(std::mem::take(&mut renamed_properties)),
                "required" => Value::Array(std::mem::take(&mut renamed_required)),
                _ => value.clone(),
            };
            varied.insert(key.clone(), value);
        }
        varied
    }

    /// A parameter name with some of its words swapped, in its own spelling (camel or snake).
    fn identifier(&mut self, identifier: &str) -> String {
        let words: Vec<String> = split_words(identifier)
            .iter()
            .map(|word| self.swap(word, 1))
            .collect();
        if words.is_empty() {
            return identifier.to_owned();
        }
        if identifier.contains('_') || !identifier.chars().any(char::is_uppercase) {
            Style::Snake.join(&words)
        } else {
            Style::Camel.join(&words)
        }
    }

    /// A lowercase word, replaced by one of its synonyms with probability 1/`odds` when it has
    /// some.
    fn swap(&mut self, word: &str, odds: usize) -> String {
        if let Some(group) = self.thesaurus.get(word)
            && self.random.below(odds) == 0
        {
            return group[self.random.below(group.len())].to_owned();
        }
        word.to_owned()
    }

    /// A token of prose (a word with punctuation around it), its word sometimes swapped, a
    /// leading capital kept; mixed-case words (identifiers, acronyms) are left alone.
    fn push_token(&mut self, token: &str, out: &mut String) {
        let start = token.find(char::is_alphanumeric).unwrap_or(token.len());
        let end = token.rfind(char::is_alphanumeric).map_or(start, |index| {
            index + token[index..].chars().next().map_or(1, char::len_utf8)
        });
        let word = &token[start..end.max(start)];
        // Every synonym is a short ASCII word: anything else is copied without a look-up.
        if word.len() < 2 || word.len() > LONGEST_SYNONYM || !word.is_ascii() {
            out.push_str(token);
            return;
        }
        let mut buffer = [0u8; LONGEST_SYNONYM];
        for (slot, byte) in buffer.iter_mut().zip(word.bytes()) {
            *slot = byte.to_ascii_lowercase();
        }
        let lower = std::str::from_utf8(&buffer[..word.len()]).expect("ASCII lowercased is UTF-8");
        let capital = word.as_bytes()[0].is_ascii_uppercase();
        let lower_rest = !word.bytes().skip(1).any(|byte| byte.is_ascii_uppercase());
        if !lower_rest || !self.thesaurus.contains_key(lower) {
            out.push_str(token);
            return;
        }
        let swapped = self.swap(lower, 3);
        out.push_str(&token[..start]);
        if capital {
            out.push_str(&capitalized(&swapped));
        } else {
            out.push_str(&swapped);
        }
        out.push_str(&token[end..]);
    }
}

/// A synthetic schema always says `"type": "object"`, even when the tool it varies did not.
fn with_object_type(mut schema: Map<String, Value>) -> Map<String, Value> {
    schema.insert("type".to_owned(), Value::String("object".to_owned()));
    schema
}

/// The words of an identifier: split at `_`, `-`, `.`, spaces and lower-to-upper case changes,
/// lowercased.
fn split_words(identifier: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut previous_lower = false;
    for ch in identifier.chars() {
        if matches!(ch, '_' | '-' | '.' | ' ') {
            if !word.is_empty() {
                words.push(std::mem::take(&mut word));
            }
            previous_lower = false;
            continue;
        }
        if ch.is_uppercase() && previous_lower && !word.is_empty() {
            words.push(std::mem::take(&mut word));
        }
        previous_lower = ch.is_lowercase() || ch.is_ascii_digit();
        word.extend(ch.to_lowercase());
    }
    if !word.is_empty() {
        words.push(word);
    }
    words
}

fn capitalized(word: &str) -> String {
    let mut chars = word.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// SplitMix64: small, fast and the same everywhere.
struct Random(u64);

impl Random {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A number in `0..bound` (`bound` > 0).
    fn below(&mut self, bound: usize) -> usize {
        (self.next() % bound as u64) as usize
    }
}
