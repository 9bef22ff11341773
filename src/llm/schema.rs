//! Tool input schemas as each provider takes them. MCP tools describe their input in JSON Schema;
//! Anthropic, OpenAI, xAI and OpenAI-compatible servers take it as it is but refuse a root that
//! is not an object or that combines schemas there (`oneOf`, `anyOf`, `allOf`, `enum`, `const`,
//! `not`), and Gemini's `parameters` take only a subset of OpenAPI 3's Schema object. Whatever a
//! conversion cannot keep is said in [`Converted::lost`], one entry per loss, naming where
//! (a JSON pointer into the tool's schema) and what.

use serde_json::{Map, Value, json};

use super::ProviderKind;

/// How many `$ref`s deep a schema is inlined for Gemini before a recursive one is cut.
const MAX_REF_DEPTH: usize = 8;

/// A schema converted for one provider, and what the conversion could not keep.
#[derive(Clone, Debug, PartialEq)]
pub struct Converted {
    pub schema: Value,
    /// For people: `"/properties/when: format \"date-time\" dropped"`, one entry per loss.
    pub lost: Vec<String>,
}

/// `input_schema` as `kind` takes it. For Gemini, `schema` is `Value::Null` when the tool has no
/// parameters to declare (Gemini refuses an object without properties).
pub fn for_provider(kind: ProviderKind, input_schema: &Value) -> Converted {
    let mut lost = Vec::new();
    let root = object_root(input_schema, &mut lost);
    let schema = match kind {
        ProviderKind::Gemini => Gemini {
            root: &root,
            lost: &mut lost,
        }
        .convert_root(),
        ProviderKind::Anthropic
        | ProviderKind::OpenAi
        | ProviderKind::Xai
        | ProviderKind::Compatible => Value::Object(root),
    };
    Converted { schema, lost }
}

/// Where a loss is, for people: the root is `/`.
fn place(at: &str) -> &str {
    if at.is_empty() { "/" } else { at }
}

/// `at` followed by one more step of a JSON pointer.
fn child(at: &str, step: &str) -> String {
    format!("{at}/{}", step.replace('~', "~0").replace('/', "~1"))
}

fn empty_object() -> Map<String, Value> {
    let mut map = Map::new();
    map.insert("type".to_owned(), json!("object"));
    map.insert("properties".to_owned(), json!({}));
    map
}

/// A schema in a few words, for a note.
fn describe(value: &Value) -> String {
    match value {
        Value::Null => "no schema".to_owned(),
        Value::String(text) => format!("{text:?}"),
        other => {
            let text = other.to_string();
            match text.char_indices().nth(60) {
                Some((end, _)) => format!("{}…", &text[..end]),
                None => text,
            }
        }
    }
}

/// The `$ref` target inside `root` (`#/$defs/…` or `#/definitions/…`), if there is one.
fn resolve<'a>(root: &'a Map<String, Value>, reference: &str) -> Option<&'a Value> {
    let path = reference.strip_prefix("#/")?;
    let mut steps = path.split('/');
    let section = steps.next()?;
    if section != "$defs" && section != "definitions" {
        return None;
    }
    let mut target = root.get(section)?;
    for step in steps {
        let step = step.replace("~1", "/").replace("~0", "~");
        target = target.as_object()?.get(&step)?;
    }
    Some(target)
}

/// The root every provider takes: an object schema with `properties`, and no `oneOf`, `anyOf`,
/// `allOf`, `enum`, `const` or `not` beside it (Anthropic and OpenAI refuse those at the top
/// level; the branches' properties are kept, as optional ones unless under `allOf`).
fn object_root(input: &Value, lost: &mut Vec<String>) -> Map<String, Value> {
    let Some(input) = input.as_object() else {
        lost.push(format!(
            "/: {} is not an object schema; the tool takes no parameters",
            describe(input)
        ));
        return empty_object();
    };
    let mut root = input.clone();
    match root.get("type") {
        None => {
            root.insert("type".to_owned(), json!("object"));
        }
        Some(Value::String(kind)) if kind == "object" => {}
        Some(Value::Array(kinds)) if kinds.iter().any(|kind| kind == "object") => {
            lost.push(format!(
                "/: type {} narrowed to \"object\"",
                describe(&Value::Array(kinds.clone()))
            ));
            root.insert("type".to_owned(), json!("object"));
        }
        Some(other) => {
            lost.push(format!(
                "/: type {} is not an object; the tool takes no parameters",
                describe(other)
            ));
            return empty_object();
        }
    }
    let mut properties = match root.remove("properties") {
        Some(Value::Object(properties)) => properties,
        Some(other) => {
            lost.push(format!("/: properties {} dropped", describe(&other)));
            Map::new()
        }
        None => Map::new(),
    };
    let mut required: Vec<Value> = match root.get("required") {
        Some(Value::Array(names)) => names.clone(),
        _ => Vec::new(),
    };
    for keyword in ["oneOf", "anyOf", "allOf"] {
        let Some(branches) = root.remove(keyword) else {
            continue;
        };
        for branch in branches.as_array().into_iter().flatten() {
            let branch = match branch.get("$ref").and_then(Value::as_str) {
                Some(reference) => resolve(input, reference).unwrap_or(branch),
                None => branch,
            };
            if let Some(Value::Object(more)) = branch.get("properties") {
                for (name, schema) in more {
                    properties
                        .entry(name.clone())
                        .or_insert_with(|| schema.clone());
                }
            }
            if keyword == "allOf"
                && let Some(Value::Array(names)) = branch.get("required")
            {
                for name in names {
                    if !required.contains(name) {
                        required.push(name.clone());
                    }
                }
            }
        }
        lost.push(if keyword == "allOf" {
            "/: allOf dropped (refused at the top level); its branches' properties are kept"
                .to_owned()
        } else {
            format!(
                "/: {keyword} dropped (refused at the top level); its branches' properties are \
                 kept, none of them required"
            )
        });
    }
    for keyword in ["enum", "const", "not"] {
        if root.remove(keyword).is_some() {
            lost.push(format!("/: {keyword} dropped (refused at the top level)"));
        }
    }
    root.insert("properties".to_owned(), Value::Object(properties));
    if !required.is_empty() {
        root.insert("required".to_owned(), Value::Array(required));
    }
    root
}

/// The conversion to Gemini's Schema object.
struct Gemini<'a> {
    /// The whole schema, where `$ref`s point.
    root: &'a Map<String, Value>,
    lost: &'a mut Vec<String>,
}

/// The JSON Schema types Gemini knows, with its names for them.
fn gemini_type(kind: &str) -> Option<&'static str> {
    Some(match kind {
        "string" => "STRING",
        "number" => "NUMBER",
        "integer" => "INTEGER",
        "boolean" => "BOOLEAN",
        "array" => "ARRAY",
        "object" => "OBJECT",
        _ => return None,
    })
}

/// The formats Gemini knows for a type.
fn known_format(kind: &str, format: &str) -> bool {
    matches!(
        (kind, format),
        ("STRING", "enum" | "date-time")
            | ("INTEGER", "int32" | "int64")
            | ("NUMBER", "float" | "double")
    )
}

/// The keywords Gemini takes only for one type.
fn keyword_type(keyword: &str) -> Option<&'static [&'static str]> {
    Some(match keyword {
        "properties" | "required" | "minProperties" | "maxProperties" | "propertyOrdering" => {
            &["OBJECT"]
        }
        "items" | "minItems" | "maxItems" => &["ARRAY"],
        "minLength" | "maxLength" | "pattern" | "enum" => &["STRING"],
        "minimum" | "maximum" => &["NUMBER", "INTEGER"],
        _ => return None,
    })
}

fn is_null_schema(schema: &Value) -> bool {
    schema.get("type").and_then(Value::as_str) == Some("null")
}

impl Gemini<'_> {
    fn lose(&mut self, at: &str, what: impl std::fmt::Display) {
        self.lost.push(format!("{}: {what}", place(at)));
    }

    /// The root's parameters, or `Null` when none are left to declare.
    fn convert_root(mut self) -> Value {
        let root = Value::Object(self.root.clone());
        match self.node(&root, "", 0) {
            Some(schema)
                if schema
                    .get("properties")
                    .and_then(Value::as_object)
                    .is_some_and(|properties| !properties.is_empty()) =>
            {
                Value::Object(schema)
            }
            _ => Value::Null,
        }
    }

    /// One schema converted, or `None` when nothing Gemini takes is left of it (the caller drops
    /// it; the reason is noted).
    fn node(&mut self, schema: &Value, at: &str, refs: usize) -> Option<Map<String, Value>> {
        let mut map = match schema {
            Value::Object(map) => map.clone(),
            Value::Bool(true) => Map::new(),
            other => {
                self.lose(
                    at,
                    format_args!("{} is not a schema; dropped", describe(other)),
                );
                return None;
            }
        };
        if let Some(reference) = map.remove("$ref") {
            return self.reference(&reference, map, at, refs);
        }
        if let Some(all) = map.remove("allOf") {
            self.merge_all_of(&mut map, &all, at);
            if map.contains_key("$ref") {
                return self.node(&Value::Object(map), at, refs);
            }
        }
        // `oneOf` is taken as `anyOf`: Gemini has no "exactly one".
        let mut branches: Vec<Value> = Vec::new();
        for keyword in ["anyOf", "oneOf"] {
            match map.remove(keyword) {
                Some(Value::Array(list)) => branches.extend(list),
                Some(other) => {
                    self.lose(at, format_args!("{keyword} {} dropped", describe(&other)));
                }
                None => {}
            }
        }
        let mut nullable = false;
        if !branches.is_empty() {
            let before = branches.len();
            branches.retain(|branch| !is_null_schema(branch));
            nullable = branches.len() < before;
            if branches.len() == 1 && !map.contains_key("type") {
                // `X | null`, or one choice: the choice itself, with this node's words on it.
                let mut merged = match branches.pop() {
                    Some(Value::Object(branch)) => branch,
                    _ => Map::new(),
                };
                for (keyword, value) in map {
                    merged.insert(keyword, value);
                }
                if nullable {
                    merged.insert("nullable".to_owned(), json!(true));
                }
                return self.node(&Value::Object(merged), at, refs);
            }
        }
        if !branches.is_empty() {
            return self.any_of(map, branches, nullable, at, refs);
        }
        self.typed(map, nullable, at, refs)
    }

    fn reference(
        &mut self,
        reference: &Value,
        siblings: Map<String, Value>,
        at: &str,
        refs: usize,
    ) -> Option<Map<String, Value>> {
        let shown = describe(reference);
        let Some(target) = reference.as_str().and_then(|r| resolve(self.root, r)) else {
            self.lose(
                at,
                format_args!(
                    "$ref {shown} dropped (only #/$defs/… and #/definitions/… are inlined)"
                ),
            );
            return None;
        };
        if refs >= MAX_REF_DEPTH {
            self.lose(
                at,
                format_args!("$ref {shown} cut: schemas nest deeper than {MAX_REF_DEPTH} levels"),
            );
            return None;
        }
        // The words beside a `$ref` (a description, a default) win over the target's.
        let mut merged = match target {
            Value::Object(target) => target.clone(),
            other => return self.node(other, at, refs + 1),
        };
        for (keyword, value) in siblings {
            merged.insert(keyword, value);
        }
        self.node(&Value::Object(merged), at, refs + 1)
    }

    /// Folds `allOf` into `map` when its branches agree on a type (objects: properties and
    /// `required` joined); otherwise drops it.
    fn merge_all_of(&mut self, map: &mut Map<String, Value>, all: &Value, at: &str) {
        let Some(list) = all.as_array() else {
            self.lose(at, format_args!("allOf {} dropped", describe(all)));
            return;
        };
        let mut branches = Vec::new();
        for branch in list {
            let branch = match branch.get("$ref").and_then(Value::as_str) {
                Some(reference) => match resolve(self.root, reference) {
                    Some(target) => {
                        let mut merged = target.as_object().cloned().unwrap_or_default();
                        if let Some(own) = branch.as_object() {
                            for (keyword, value) in own {
                                if keyword != "$ref" {
                                    merged.insert(keyword.clone(), value.clone());
                                }
                            }
                        }
                        merged
                    }
                    None => {
                        self.lose(at, "allOf dropped: it points outside the schema");
                        return;
                    }
                },
                None => match branch.as_object() {
                    Some(branch) => branch.clone(),
                    None => {
                        self.lose(at, "allOf dropped: one of its branches is not a schema");
                        return;
                    }
                },
            };
            branches.push(branch);
        }
        let mut kind = map.get("type").cloned();
        for branch in &branches {
            let branch_kind = branch
                .get("type")
                .cloned()
                .or_else(|| branch.contains_key("properties").then(|| json!("object")));
            match (&kind, branch_kind) {
                (_, None) => {}
                (None, Some(branch_kind)) => kind = Some(branch_kind),
                (Some(kind), Some(branch_kind)) if *kind == branch_kind => {}
                _ => {
                    self.lose(at, "allOf dropped: its branches are of different types");
                    return;
                }
            }
        }
        for branch in branches {
            for (keyword, value) in branch {
                match (keyword.as_str(), map.get_mut(&keyword)) {
                    ("properties", Some(Value::Object(properties))) => {
                        if let Value::Object(more) = value {
                            for (name, schema) in more {
                                properties.entry(name).or_insert(schema);
                            }
                        }
                    }
                    ("required", Some(Value::Array(names))) => {
                        for name in value.as_array().into_iter().flatten() {
                            if !names.contains(name) {
                                names.push(name.clone());
                            }
                        }
                    }
                    (_, Some(_)) => {}
                    (_, None) => {
                        map.insert(keyword, value);
                    }
                }
            }
        }
        if let Some(kind) = kind {
            map.insert("type".to_owned(), kind);
        }
    }

    /// A node of several choices: `anyOf`, each choice converted (a choice without a type takes
    /// this node's), the node's own type left to the choices.
    fn any_of(
        &mut self,
        mut map: Map<String, Value>,
        branches: Vec<Value>,
        nullable: bool,
        at: &str,
        refs: usize,
    ) -> Option<Map<String, Value>> {
        let outer_type = map.remove("type");
        let mut kept = Vec::new();
        for (index, branch) in branches.into_iter().enumerate() {
            let branch_at = child(&child(at, "anyOf"), &index.to_string());
            let branch = match (branch, &outer_type) {
                (Value::Object(mut branch), Some(kind)) if !branch.contains_key("type") => {
                    branch.insert("type".to_owned(), kind.clone());
                    Value::Object(branch)
                }
                (branch, _) => branch,
            };
            if let Some(converted) = self.node(&branch, &branch_at, refs) {
                kept.push(Value::Object(converted));
            }
        }
        if kept.is_empty() {
            self.lose(at, "anyOf dropped: none of its choices could be kept");
            return None;
        }
        let mut out = Map::new();
        out.insert("anyOf".to_owned(), Value::Array(kept));
        if nullable || map.get("nullable") == Some(&json!(true)) {
            out.insert("nullable".to_owned(), json!(true));
        }
        for keyword in ["title", "description", "default", "example"] {
            if let Some(value) = map.remove(keyword) {
                out.insert(keyword.to_owned(), value);
            }
        }
        map.remove("nullable");
        for keyword in map.keys() {
            self.lose(at, format_args!("{keyword} dropped"));
        }
        Some(out)
    }

    /// The type of a node: its own (a list with `"null"` makes it nullable), else the one its
    /// keywords imply, else `STRING` (noted).
    fn node_type(
        &mut self,
        map: &mut Map<String, Value>,
        nullable: &mut bool,
        at: &str,
    ) -> Option<&'static str> {
        let named = match map.remove("type") {
            None => None,
            Some(Value::String(kind)) => Some(kind),
            Some(Value::Array(kinds)) => {
                let mut names: Vec<&str> = kinds.iter().filter_map(Value::as_str).collect();
                if names.contains(&"null") {
                    *nullable = true;
                    names.retain(|kind| *kind != "null");
                }
                if names.len() > 1 {
                    self.lose(
                        at,
                        format_args!(
                            "type {} narrowed to {:?}",
                            describe(&Value::Array(kinds.clone())),
                            names[0]
                        ),
                    );
                }
                match names.first() {
                    Some(kind) => Some((*kind).to_owned()),
                    None => Some("null".to_owned()),
                }
            }
            Some(other) => {
                self.lose(at, format_args!("type {} dropped", describe(&other)));
                None
            }
        };
        if let Some(named) = named {
            if named == "null" {
                self.lose(at, "a value that can only be null dropped");
                return None;
            }
            match gemini_type(&named) {
                Some(kind) => return Some(kind),
                None => self.lose(at, format_args!("type {named:?} dropped")),
            }
        }
        if map.contains_key("properties") {
            return Some("OBJECT");
        }
        if map.contains_key("items") {
            return Some("ARRAY");
        }
        if map.contains_key("enum")
            || map.get("const").is_some_and(Value::is_string)
            || map.contains_key("pattern")
            || map.contains_key("minLength")
            || map.contains_key("maxLength")
        {
            return Some("STRING");
        }
        if map.contains_key("minimum") || map.contains_key("maximum") {
            return Some("NUMBER");
        }
        self.lose(at, "no type: declared as a STRING");
        Some("STRING")
    }

    /// A node of one type, its keywords converted one by one.
    fn typed(
        &mut self,
        mut map: Map<String, Value>,
        mut nullable: bool,
        at: &str,
        refs: usize,
    ) -> Option<Map<String, Value>> {
        let kind = self.node_type(&mut map, &mut nullable, at)?;
        if let Some(constant) = map.remove("const") {
            match constant {
                Value::String(_) if !map.contains_key("enum") => {
                    map.insert("enum".to_owned(), json!([constant]));
                }
                other => self.lose(at, format_args!("const {} dropped", describe(&other))),
            }
        }
        let mut out = Map::new();
        out.insert("type".to_owned(), json!(kind));
        let mut properties: Option<Map<String, Value>> = None;
        let mut required: Option<Vec<Value>> = None;
        let mut ordering: Option<Vec<Value>> = None;
        for (keyword, value) in map {
            if let Some(types) = keyword_type(&keyword)
                && !types.contains(&kind)
            {
                self.lose(at, format_args!("{keyword} dropped (not taken for {kind})"));
                continue;
            }
            match keyword.as_str() {
                "nullable" => {
                    nullable |= value == json!(true);
                }
                "title" | "description" | "pattern" if value.is_string() => {
                    out.insert(keyword, value);
                }
                "default" | "example" => {
                    out.insert(keyword, value);
                }
                "minItems" | "maxItems" | "minProperties" | "maxProperties" | "minLength"
                | "maxLength"
                    if value.is_u64() =>
                {
                    out.insert(keyword, value);
                }
                "minimum" | "maximum" if value.is_number() => {
                    out.insert(keyword, value);
                }
                "format" => match value.as_str() {
                    Some(format) if known_format(kind, format) => {
                        out.insert(keyword, value);
                    }
                    _ => self.lose(at, format_args!("format {} dropped", describe(&value))),
                },
                "enum" => match value.as_array() {
                    Some(values) if values.iter().all(|v| v.is_string() || v.is_null()) => {
                        if values.iter().any(Value::is_null) {
                            nullable = true;
                        }
                        let values: Vec<Value> =
                            values.iter().filter(|v| v.is_string()).cloned().collect();
                        if !values.is_empty() {
                            out.insert(keyword, Value::Array(values));
                        }
                    }
                    _ => self.lose(
                        at,
                        format_args!("enum {} dropped: Gemini takes strings only", {
                            describe(&value)
                        }),
                    ),
                },
                "items" => match &value {
                    Value::Object(_) | Value::Bool(true) => {
                        if let Some(items) = self.node(&value, &child(at, "items"), refs) {
                            out.insert(keyword, Value::Object(items));
                        }
                    }
                    _ => self.lose(at, format_args!("items {} dropped", describe(&value))),
                },
                "properties" => match value {
                    Value::Object(list) => {
                        let mut kept = Map::new();
                        for (name, schema) in list {
                            let property_at = child(&child(at, "properties"), &name);
                            if let Some(converted) = self.node(&schema, &property_at, refs) {
                                kept.insert(name, Value::Object(converted));
                            }
                        }
                        properties = Some(kept);
                    }
                    other => self.lose(at, format_args!("properties {} dropped", describe(&other))),
                },
                "required" => match value {
                    Value::Array(names) => required = Some(names),
                    other => self.lose(at, format_args!("required {} dropped", describe(&other))),
                },
                "propertyOrdering" => match value {
                    Value::Array(names) => ordering = Some(names),
                    other => self.lose(
                        at,
                        format_args!("propertyOrdering {} dropped", describe(&other)),
                    ),
                },
                "$defs" | "definitions" if at.is_empty() => {}
                // Annotations for schema tools, not constraints: nothing is lost without them.
                "$schema" | "$id" | "$comment" | "$anchor" => {}
                _ => self.lose(at, format_args!("{keyword} dropped")),
            }
        }
        if nullable {
            out.insert("nullable".to_owned(), json!(true));
        }
        match kind {
            "OBJECT" => {
                let properties = properties.unwrap_or_default();
                if properties.is_empty() {
                    if !at.is_empty() {
                        self.lose(
                            at,
                            "an object without properties dropped (Gemini refuses one)",
                        );
                        return None;
                    }
                    return Some(out);
                }
                if let Some(names) = required {
                    let names: Vec<Value> = names
                        .into_iter()
                        .filter(|name| {
                            let known = name.as_str().is_some_and(|n| properties.contains_key(n));
                            if !known && !self.was_dropped(at, name) {
                                self.lose(
                                    at,
                                    format_args!("required {} names no property", describe(name)),
                                );
                            }
                            known
                        })
                        .collect();
                    if !names.is_empty() {
                        out.insert("required".to_owned(), Value::Array(names));
                    }
                }
                if let Some(names) = ordering {
                    let names: Vec<Value> = names
                        .into_iter()
                        .filter(|name| name.as_str().is_some_and(|n| properties.contains_key(n)))
                        .collect();
                    if !names.is_empty() {
                        out.insert("propertyOrdering".to_owned(), Value::Array(names));
                    }
                }
                out.insert("properties".to_owned(), Value::Object(properties));
            }
            "ARRAY" if !out.contains_key("items") => {
                self.lose(at, "an array without a schema for its items dropped");
                return None;
            }
            _ => {}
        }
        Some(out)
    }

    /// Whether a property `name` of the object at `at` was dropped with a note already.
    fn was_dropped(&self, at: &str, name: &Value) -> bool {
        let Some(name) = name.as_str() else {
            return false;
        };
        let property_at = child(&child(at, "properties"), name);
        self.lost.iter().any(|note| {
            note.strip_prefix(property_at.as_str())
                .is_some_and(|rest| rest.starts_with(':') || rest.starts_with('/'))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gemini(schema: Value) -> Converted {
        for_provider(ProviderKind::Gemini, &schema)
    }

    #[test]
    fn an_object_schema_reaches_anthropic_and_openai_as_it_is() {
        let schema = json!({
            "type": "object",
            "properties": {"q": {"type": "string", "format": "email"}},
            "required": ["q"],
            "additionalProperties": false,
            "$schema": "http://json-schema.org/draft-07/schema#"
        });
        for kind in [
            ProviderKind::Anthropic,
            ProviderKind::OpenAi,
            ProviderKind::Xai,
            ProviderKind::Compatible,
        ] {
            let converted = for_provider(kind, &schema);
            assert_eq!(converted.schema, schema, "{kind:?}");
            assert!(converted.lost.is_empty(), "{:?}", converted.lost);
        }
    }

    #[test]
    fn a_missing_or_non_object_root_becomes_an_empty_object_with_a_note() {
        for input in [Value::Null, json!("x"), json!({"type": "string"})] {
            let converted = for_provider(ProviderKind::OpenAi, &input);
            assert_eq!(
                converted.schema,
                json!({"type": "object", "properties": {}}),
                "{input}"
            );
            assert_eq!(converted.lost.len(), 1, "{input}: {:?}", converted.lost);
            assert!(converted.lost[0].starts_with("/: "), "{:?}", converted.lost);
        }
        // A root without a type but with properties is an object: nothing is lost.
        let converted = for_provider(
            ProviderKind::Anthropic,
            &json!({"properties": {"a": {"type": "string"}}}),
        );
        assert_eq!(
            converted.schema,
            json!({"type": "object", "properties": {"a": {"type": "string"}}})
        );
        assert!(converted.lost.is_empty());
        let converted = for_provider(ProviderKind::Anthropic, &json!({"type": "object"}));
        assert_eq!(
            converted.schema,
            json!({"type": "object", "properties": {}})
        );
    }

    #[test]
    fn a_union_at_the_root_is_flattened_into_optional_properties() {
        let schema = json!({
            "type": "object",
            "properties": {"action": {"type": "string"}},
            "required": ["action"],
            "oneOf": [
                {"properties": {"path": {"type": "string"}}, "required": ["path"]},
                {"properties": {"url": {"type": "string"}}, "required": ["url"]}
            ]
        });
        let converted = for_provider(ProviderKind::Anthropic, &schema);
        assert_eq!(
            converted.schema,
            json!({
                "type": "object",
                "properties": {
                    "action": {"type": "string"},
                    "path": {"type": "string"},
                    "url": {"type": "string"}
                },
                "required": ["action"]
            })
        );
        assert_eq!(converted.lost.len(), 1);
        assert!(
            converted.lost[0].starts_with("/: oneOf dropped"),
            "{:?}",
            converted.lost
        );
    }

    #[test]
    fn gemini_gets_upper_case_types_and_keeps_what_its_schema_takes() {
        let converted = gemini(json!({
            "type": "object",
            "title": "Search",
            "description": "Search the docs",
            "properties": {
                "query": {"type": "string", "minLength": 1, "maxLength": 200, "pattern": "^.+$"},
                "limit": {"type": "integer", "format": "int32", "minimum": 1, "maximum": 50,
                          "default": 10},
                "tags": {"type": "array", "items": {"type": "string"}, "minItems": 0,
                         "maxItems": 5},
                "when": {"type": "string", "format": "date-time", "example": "2025-01-01T00:00:00Z"}
            },
            "required": ["query"],
            "propertyOrdering": ["query", "limit"]
        }));
        assert!(converted.lost.is_empty(), "{:?}", converted.lost);
        assert_eq!(
            converted.schema,
            json!({
                "type": "OBJECT",
                "title": "Search",
                "description": "Search the docs",
                "properties": {
                    "query": {"type": "STRING", "minLength": 1, "maxLength": 200,
                              "pattern": "^.+$"},
                    "limit": {"type": "INTEGER", "format": "int32", "minimum": 1, "maximum": 50,
                              "default": 10},
                    "tags": {"type": "ARRAY", "items": {"type": "STRING"}, "minItems": 0,
                             "maxItems": 5},
                    "when": {"type": "STRING", "format": "date-time",
                             "example": "2025-01-01T00:00:00Z"}
                },
                "required": ["query"],
                "propertyOrdering": ["query", "limit"]
            })
        );
    }

    #[test]
    fn gemini_drops_other_keywords_with_one_note_each() {
        let converted = gemini(json!({
            "$schema": "http://json-schema.org/draft-07/schema#",
            "type": "object",
            "additionalProperties": false,
            "properties": {
                "options": {
                    "type": "object",
                    "properties": {"depth": {"type": "number", "exclusiveMinimum": 0}},
                    "additionalProperties": {"type": "string"},
                    "patternProperties": {"^x": {"type": "string"}}
                },
                "email": {"type": "string", "format": "email"}
            }
        }));
        let mut lost = converted.lost.clone();
        lost.sort();
        assert_eq!(
            lost,
            // `$schema` goes without a note: an annotation, not a constraint.
            vec![
                "/: additionalProperties dropped",
                "/properties/email: format \"email\" dropped",
                "/properties/options/properties/depth: exclusiveMinimum dropped",
                "/properties/options: additionalProperties dropped",
                "/properties/options: patternProperties dropped",
            ]
        );
        assert_eq!(
            converted.schema["properties"]["email"],
            json!({"type": "STRING"})
        );
        assert_eq!(
            converted.schema["properties"]["options"],
            json!({"type": "OBJECT", "properties": {"depth": {"type": "NUMBER"}}})
        );
    }

    #[test]
    fn gemini_inlines_refs_to_defs_and_definitions() {
        let converted = gemini(json!({
            "type": "object",
            "properties": {
                "home": {"$ref": "#/$defs/Address", "description": "Where they live"},
                "work": {"$ref": "#/definitions/Address"}
            },
            "$defs": {"Address": {"type": "object", "properties": {"city": {"type": "string"}},
                                  "description": "An address"}},
            "definitions": {"Address": {"type": "object",
                                        "properties": {"street": {"type": "string"}}}}
        }));
        assert!(converted.lost.is_empty(), "{:?}", converted.lost);
        assert_eq!(
            converted.schema["properties"]["home"],
            json!({"type": "OBJECT", "description": "Where they live",
                   "properties": {"city": {"type": "STRING"}}})
        );
        assert_eq!(
            converted.schema["properties"]["work"],
            json!({"type": "OBJECT", "properties": {"street": {"type": "STRING"}}})
        );
    }

    #[test]
    fn gemini_cuts_a_recursive_ref_at_depth_eight_with_a_note() {
        let converted = gemini(json!({
            "type": "object",
            "properties": {"tree": {"$ref": "#/$defs/Node"}},
            "$defs": {"Node": {
                "type": "object",
                "properties": {
                    "name": {"type": "string"},
                    "child": {"$ref": "#/$defs/Node"}
                }
            }}
        }));
        assert_eq!(converted.lost.len(), 1, "{:?}", converted.lost);
        let note = &converted.lost[0];
        assert!(note.contains("$ref \"#/$defs/Node\" cut"), "{note}");
        assert_eq!(note.matches("/child").count(), 8, "{note}");
        let mut depth = 0;
        let mut node = &converted.schema["properties"]["tree"];
        while let Some(next) = node["properties"].get("child") {
            depth += 1;
            node = next;
        }
        assert_eq!(depth, 7);
        assert_eq!(node["properties"]["name"], json!({"type": "STRING"}));
    }

    #[test]
    fn a_type_list_with_null_becomes_nullable() {
        let converted = gemini(json!({
            "type": "object",
            "properties": {
                "a": {"type": ["string", "null"]},
                "b": {"anyOf": [{"type": "integer"}, {"type": "null"}], "default": null},
                "c": {"type": ["string", "integer"]}
            }
        }));
        assert_eq!(
            converted.schema["properties"]["a"],
            json!({"type": "STRING", "nullable": true})
        );
        assert_eq!(
            converted.schema["properties"]["b"],
            json!({"type": "INTEGER", "nullable": true, "default": null})
        );
        assert_eq!(
            converted.schema["properties"]["c"],
            json!({"type": "STRING"})
        );
        assert_eq!(
            converted.lost,
            vec!["/properties/c: type [\"string\",\"integer\"] narrowed to \"string\""]
        );
    }

    #[test]
    fn const_becomes_an_enum_and_non_string_enums_are_dropped() {
        let converted = gemini(json!({
            "type": "object",
            "properties": {
                "kind": {"const": "file"},
                "level": {"type": "integer", "enum": [1, 2, 3]},
                "mode": {"type": "string", "enum": ["r", "w", null]},
                "flag": {"type": "boolean", "const": true}
            }
        }));
        assert_eq!(
            converted.schema["properties"]["kind"],
            json!({"type": "STRING", "enum": ["file"]})
        );
        assert_eq!(
            converted.schema["properties"]["level"],
            json!({"type": "INTEGER"})
        );
        assert_eq!(
            converted.schema["properties"]["mode"],
            json!({"type": "STRING", "enum": ["r", "w"], "nullable": true})
        );
        assert_eq!(
            converted.schema["properties"]["flag"],
            json!({"type": "BOOLEAN"})
        );
        let mut lost = converted.lost.clone();
        lost.sort();
        assert_eq!(
            lost,
            vec![
                "/properties/flag: const true dropped",
                "/properties/level: enum dropped (not taken for INTEGER)",
            ]
        );
    }

    #[test]
    fn one_of_becomes_any_of_and_branches_inherit_the_type() {
        let converted = gemini(json!({
            "type": "object",
            "properties": {
                "target": {
                    "description": "A file or a URL",
                    "oneOf": [
                        {"type": "object", "properties": {"path": {"type": "string"}}},
                        {"type": "object", "properties": {"url": {"type": "string"}}}
                    ]
                },
                "size": {"type": "number", "anyOf": [{"minimum": 0}, {"maximum": -10}]}
            }
        }));
        assert!(converted.lost.is_empty(), "{:?}", converted.lost);
        assert_eq!(
            converted.schema["properties"]["target"],
            json!({
                "description": "A file or a URL",
                "anyOf": [
                    {"type": "OBJECT", "properties": {"path": {"type": "STRING"}}},
                    {"type": "OBJECT", "properties": {"url": {"type": "STRING"}}}
                ]
            })
        );
        assert_eq!(
            converted.schema["properties"]["size"],
            json!({"anyOf": [{"type": "NUMBER", "minimum": 0}, {"type": "NUMBER", "maximum": -10}]})
        );
    }

    #[test]
    fn all_of_objects_are_merged_and_mixed_ones_dropped() {
        let converted = gemini(json!({
            "type": "object",
            "properties": {
                "person": {"allOf": [
                    {"$ref": "#/$defs/Named"},
                    {"type": "object", "properties": {"age": {"type": "integer"}},
                     "required": ["age"]}
                ]},
                "odd": {"allOf": [{"type": "string"}, {"type": "integer"}], "description": "?"}
            },
            "$defs": {"Named": {"type": "object", "properties": {"name": {"type": "string"}},
                                "required": ["name"]}}
        }));
        assert_eq!(
            converted.schema["properties"]["person"],
            json!({
                "type": "OBJECT",
                "properties": {"name": {"type": "STRING"}, "age": {"type": "INTEGER"}},
                "required": ["name", "age"]
            })
        );
        assert_eq!(
            converted.lost,
            vec![
                "/properties/odd: allOf dropped: its branches are of different types",
                "/properties/odd: no type: declared as a STRING",
            ]
        );
    }

    #[test]
    fn required_names_are_pruned_to_the_properties_kept() {
        let converted = gemini(json!({
            "type": "object",
            "properties": {
                "name": {"type": "string"},
                "meta": {"type": "object", "properties": {}}
            },
            "required": ["name", "meta", "ghost"]
        }));
        assert_eq!(converted.schema["required"], json!(["name"]));
        assert_eq!(
            converted.lost,
            vec![
                "/properties/meta: an object without properties dropped (Gemini refuses one)",
                "/: required \"ghost\" names no property",
            ]
        );
    }

    #[test]
    fn an_object_without_properties_at_the_root_is_declared_without_parameters() {
        for schema in [
            json!({"type": "object"}),
            json!({"type": "object", "properties": {}}),
            json!({"type": "object", "properties": {"x": {"type": "object"}}}),
        ] {
            let converted = gemini(schema.clone());
            assert_eq!(converted.schema, Value::Null, "{schema}");
        }
        let converted = gemini(json!({"type": "object", "properties": {"x": {"type": "object"}}}));
        assert_eq!(
            converted.lost,
            vec!["/properties/x: an object without properties dropped (Gemini refuses one)"]
        );
    }

    #[test]
    fn nested_empty_objects_and_arrays_of_them_are_dropped() {
        let converted = gemini(json!({
            "type": "object",
            "properties": {
                "keep": {"type": "string"},
                "list": {"type": "array", "items": {"type": "object"}},
                "bare": {"type": "array"}
            }
        }));
        assert_eq!(
            converted.schema,
            json!({"type": "OBJECT", "properties": {"keep": {"type": "STRING"}}})
        );
        assert_eq!(
            converted.lost,
            vec![
                "/properties/bare: an array without a schema for its items dropped",
                "/properties/list/items: an object without properties dropped (Gemini refuses one)",
                "/properties/list: an array without a schema for its items dropped",
            ]
        );
    }

    #[test]
    fn pointers_escape_slashes_and_tildes_in_property_names() {
        let converted = gemini(json!({
            "type": "object",
            "properties": {"a/b~c": {"type": "string", "format": "uri"}}
        }));
        assert_eq!(
            converted.lost,
            vec!["/properties/a~1b~0c: format \"uri\" dropped"]
        );
    }

    #[test]
    fn keywords_of_another_type_are_dropped_for_gemini() {
        let converted = gemini(json!({
            "type": "object",
            "properties": {"n": {"type": "integer", "maxLength": 3, "items": {"type": "string"}}}
        }));
        assert_eq!(
            converted.schema["properties"]["n"],
            json!({"type": "INTEGER"})
        );
        let mut lost = converted.lost.clone();
        lost.sort();
        assert_eq!(
            lost,
            vec![
                "/properties/n: items dropped (not taken for INTEGER)",
                "/properties/n: maxLength dropped (not taken for INTEGER)",
            ]
        );
    }
}
