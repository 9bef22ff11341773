//! Checks a built-in tool's arguments against its own input schema (the subset of JSON Schema
//! our schemas use: types, enums, lengths, bounds, `format: uuid`, two patterns, array items) and
//! fills in the defaults. Unknown keys are dropped, as the original's zod schemas drop them. A
//! violation becomes a message naming the field.

use serde_json::{Map, Value};

/// The MIME type pattern of the clipboard schemas.
const MIME_PATTERN: &str = "^[\\w.-]+\\/[\\w.+-]+$";
/// The memory session id pattern.
const SESSION_ID_PATTERN: &str = "^[a-zA-Z0-9_-]+$";

/// The arguments with defaults filled in, or why they do not fit the schema.
pub(crate) fn arguments(
    schema: &Map<String, Value>,
    arguments: Option<&Map<String, Value>>,
) -> Result<Map<String, Value>, String> {
    let empty = Map::new();
    fields("", schema, arguments.unwrap_or(&empty))
}

/// The properties of one object (nested ones named `outer.inner` in messages).
fn fields(
    prefix: &str,
    schema: &Map<String, Value>,
    arguments: &Map<String, Value>,
) -> Result<Map<String, Value>, String> {
    let properties = schema
        .get("properties")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    let mut checked = Map::new();
    for (name, property) in &properties {
        let field = format!("{prefix}{name}");
        match arguments.get(name) {
            // A null is taken as "not given", as clients often send it for optional fields.
            Some(value) if !value.is_null() => {
                check(&field, property, value)?;
                let value = match (property.as_object(), value.as_object()) {
                    (Some(nested), Some(object)) if nested.contains_key("properties") => {
                        Value::Object(fields(&format!("{field}."), nested, object)?)
                    }
                    _ => value.clone(),
                };
                checked.insert(name.clone(), value);
            }
            _ => {
                if let Some(default) = property.get("default") {
                    checked.insert(name.clone(), default.clone());
                }
            }
        }
    }
    for required in schema
        .get("required")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
    {
        if !checked.contains_key(required) {
            return Err(format!("\"{prefix}{required}\" is required"));
        }
    }
    Ok(checked)
}

fn check(field: &str, schema: &Value, value: &Value) -> Result<(), String> {
    let kind = schema.get("type").and_then(Value::as_str).unwrap_or("");
    let fits = match kind {
        "string" => value.is_string(),
        "boolean" => value.is_boolean(),
        "integer" => value.is_i64() || value.as_f64().is_some_and(|n| n.fract() == 0.0),
        "number" => value.is_number(),
        "array" => value.is_array(),
        "object" => value.is_object(),
        _ => true,
    };
    if !fits {
        let article = if kind == "integer" || kind == "array" || kind == "object" {
            "an"
        } else {
            "a"
        };
        return Err(format!("\"{field}\" must be {article} {kind}"));
    }
    if let Some(allowed) = schema.get("enum").and_then(Value::as_array)
        && !allowed.contains(value)
    {
        let names: Vec<String> = allowed.iter().map(Value::to_string).collect();
        return Err(format!("\"{field}\" must be one of {}", names.join(", ")));
    }
    if let Some(text) = value.as_str() {
        let length = text.chars().count() as u64;
        if let Some(min) = schema.get("minLength").and_then(Value::as_u64)
            && length < min
        {
            return Err(if min == 1 {
                format!("\"{field}\" must not be empty")
            } else {
                format!("\"{field}\" must be at least {min} characters")
            });
        }
        if let Some(max) = schema.get("maxLength").and_then(Value::as_u64)
            && length > max
        {
            return Err(format!("\"{field}\" must be at most {max} characters"));
        }
        if schema.get("format").and_then(Value::as_str) == Some("uuid")
            && uuid::Uuid::parse_str(text).is_err()
        {
            return Err(format!("\"{field}\" must be a UUID"));
        }
        if schema.get("format").and_then(Value::as_str) == Some("date-time")
            && crate::control::time::parse_iso(text).is_none()
        {
            return Err(format!(
                "\"{field}\" must be an ISO 8601 date-time such as 2025-01-02T03:04:05Z"
            ));
        }
        match schema.get("pattern").and_then(Value::as_str) {
            Some(MIME_PATTERN) if !is_mime_type(text) => {
                return Err(format!(
                    "\"{field}\" must be a MIME type such as text/plain"
                ));
            }
            Some(SESSION_ID_PATTERN)
                if !text
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-') =>
            {
                return Err(format!(
                    "\"{field}\" may only contain letters, digits, '_' and '-'"
                ));
            }
            _ => {}
        }
    }
    if let Some(number) = value.as_f64() {
        if let Some(min) = schema.get("minimum").and_then(Value::as_f64)
            && number < min
        {
            return Err(format!("\"{field}\" must be at least {min}"));
        }
        if let Some(min) = schema.get("exclusiveMinimum").and_then(Value::as_f64)
            && number <= min
        {
            return Err(format!("\"{field}\" must be greater than {min}"));
        }
        if let Some(max) = schema.get("maximum").and_then(Value::as_f64)
            && number > max
        {
            return Err(format!("\"{field}\" must be at most {max}"));
        }
    }
    if let Some(items) = value.as_array() {
        let count = items.len() as u64;
        if let Some(min) = schema.get("minItems").and_then(Value::as_u64)
            && count < min
        {
            return Err(format!("\"{field}\" must have at least {min} item(s)"));
        }
        if let Some(max) = schema.get("maxItems").and_then(Value::as_u64)
            && count > max
        {
            return Err(format!("\"{field}\" must have at most {max} items"));
        }
        if let Some(item_schema) = schema.get("items") {
            for (index, item) in items.iter().enumerate() {
                check(&format!("{field}[{index}]"), item_schema, item)?;
            }
        }
    }
    Ok(())
}

/// `type/subtype` with word characters, `.`, `-` (and `+` in the subtype).
fn is_mime_type(text: &str) -> bool {
    let word = |c: char| c.is_ascii_alphanumeric() || c == '_' || c == '.' || c == '-';
    match text.split_once('/') {
        Some((kind, subtype)) => {
            !kind.is_empty()
                && !subtype.is_empty()
                && kind.chars().all(word)
                && subtype.chars().all(|c| word(c) || c == '+')
        }
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn run(schema: Value, args: Value) -> Result<Map<String, Value>, String> {
        arguments(schema.as_object().unwrap(), args.as_object())
    }

    #[test]
    fn defaults_are_filled_and_unknown_keys_dropped() {
        let schema = json!({"properties": {"limit": {"type": "integer", "default": 50}}});
        let checked = run(schema, json!({"other": 1})).unwrap();
        assert_eq!(Value::Object(checked), json!({"limit": 50}));
    }

    #[test]
    fn violations_name_the_field() {
        let schema = json!({"properties": {
            "limit": {"type": "integer", "minimum": 1, "maximum": 100},
            "id": {"type": "string", "format": "uuid"},
            "ids": {"type": "array", "items": {"type": "string", "format": "uuid"}, "maxItems": 2},
            "kind": {"type": "string", "pattern": MIME_PATTERN},
            "message": {"type": "string", "minLength": 1}
        }, "required": ["message"]});
        let error = |args| run(schema.clone(), args).unwrap_err();
        assert_eq!(
            error(json!({"message": "m", "limit": 101})),
            "\"limit\" must be at most 100"
        );
        assert_eq!(
            error(json!({"message": "m", "limit": "x"})),
            "\"limit\" must be an integer"
        );
        assert_eq!(
            error(json!({"message": "m", "id": "nope"})),
            "\"id\" must be a UUID"
        );
        assert_eq!(
            error(json!({"message": "m", "ids": ["x"]})),
            "\"ids[0]\" must be a UUID"
        );
        assert!(error(json!({"message": "m", "kind": "text"})).starts_with("\"kind\""));
        assert_eq!(error(json!({})), "\"message\" is required");
        assert_eq!(
            error(json!({"message": ""})),
            "\"message\" must not be empty"
        );
        let nested = json!({"properties": {"metadata": {"type": "object", "properties": {
            "model": {"type": "object", "properties": {"name": {"type": "string"}},
                      "required": ["name"]},
            "visibility": {"type": "string", "default": "private"},
            "at": {"type": "string", "format": "date-time"}
        }, "required": ["model"]}}});
        assert_eq!(
            run(nested.clone(), json!({"metadata": {}})).unwrap_err(),
            "\"metadata.model\" is required"
        );
        assert_eq!(
            run(nested.clone(), json!({"metadata": {"model": {}}})).unwrap_err(),
            "\"metadata.model.name\" is required"
        );
        assert!(
            run(
                nested.clone(),
                json!({"metadata": {"model": {"name": "m"}, "at": "soon"}})
            )
            .unwrap_err()
            .starts_with("\"metadata.at\" must be an ISO 8601 date-time")
        );
        assert_eq!(
            Value::Object(
                run(
                    nested,
                    json!({"metadata": {"model": {"name": "m", "x": 1}}})
                )
                .unwrap()
            ),
            json!({"metadata": {"model": {"name": "m"}, "visibility": "private"}})
        );
        assert!(
            run(
                schema,
                json!({"message": "m", "kind": "application/vnd.a+json"})
            )
            .is_ok()
        );
    }
}
