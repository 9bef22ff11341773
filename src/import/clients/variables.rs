//! The clients' variable syntaxes into ours. Claude Code writes ours already (`${VAR}`,
//! `${VAR:-default}`); the editors (Cursor, VS Code, Windsurf) write `${env:NAME}`, which becomes
//! `${NAME}`, `${input:id}`, whose value the user gives and which is kept as a secret, and
//! `${workspaceFolder}`, `${userHome}`, … which are filled in now; the rest write values
//! literally, so a `${` of theirs is escaped to stay text.

use std::collections::BTreeMap;

use serde::Serialize;

use super::{Client, Context, Os};
use crate::config::vars;

/// A value only the client knew, which the import needs from the user.
#[derive(Debug, Clone, Serialize)]
pub struct Input {
    pub id: String,
    pub description: String,
    pub secret: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Variables {
    /// `${VAR}` and `${VAR:-default}`: our own syntax.
    Shell,
    /// `${env:VAR}`, `${input:id}`, `${workspaceFolder}`, `${userHome}`, …
    Editor,
    /// Values are taken as written.
    Literal,
}

impl Client {
    /// How the client writes variables in its values.
    fn variables(self) -> Variables {
        match self {
            Client::ClaudeCode => Variables::Shell,
            Client::Cursor | Client::Vscode | Client::Windsurf => Variables::Editor,
            Client::ClaudeDesktop | Client::Cline | Client::Codex => Variables::Literal,
        }
    }
}

/// `${` in a literal value, written so our config reads it back as written.
pub(super) fn escape_literal(text: &str) -> String {
    text.replace("${", "$${")
}

/// One of the client's values in our syntax.
pub(super) fn convert_text(
    text: &str,
    context: &mut Context<'_>,
    secrets: &mut BTreeMap<String, String>,
) -> Result<String, String> {
    match context.client.variables() {
        Variables::Literal => Ok(escape_literal(text)),
        Variables::Shell => {
            // Already our syntax; anything else between `${` and `}` would not load.
            match vars::expand(text, &|_| Some("x".into())) {
                Err(vars::VarError::Unsupported(reference)) => Err(format!(
                    "${{{reference}}} is not a variable the proxy can resolve"
                )),
                _ => Ok(text.to_owned()),
            }
        }
        Variables::Editor => {
            let mut out = String::with_capacity(text.len());
            let mut rest = text;
            while let Some(at) = rest.find("${") {
                out.push_str(&escape_literal(&rest[..at]));
                let Some(close) = rest[at..].find('}') else {
                    out.push_str(&escape_literal(&rest[at..]));
                    return Ok(out);
                };
                let inner = &rest[at + 2..at + close];
                out.push_str(&editor_variable(inner, context, secrets)?);
                rest = &rest[at + close + 1..];
            }
            out.push_str(&escape_literal(rest));
            Ok(out)
        }
    }
}

/// An editor variable (`env:NAME`, `input:id`, `workspaceFolder`, …) in our syntax.
fn editor_variable(
    inner: &str,
    context: &mut Context<'_>,
    secrets: &mut BTreeMap<String, String>,
) -> Result<String, String> {
    let separator = if context.platform.os == Os::Windows {
        "\\"
    } else {
        "/"
    };
    if let Some(name) = inner.strip_prefix("env:") {
        return if vars::is_name(name) {
            Ok(format!("${{{name}}}"))
        } else {
            Err(format!("${{{inner}}}: {name:?} is not a variable name"))
        };
    }
    if let Some(id) = inner.strip_prefix("input:") {
        let (description, secret) = context
            .inputs
            .get(id)
            .cloned()
            .unwrap_or((String::new(), true));
        let input = Input {
            id: id.to_owned(),
            description,
            secret,
        };
        let Some(value) = (context.input_value)(&input) else {
            return Err(format!(
                "it needs ${{input:{id}}}{}, a value {} asks for and keeps in its own store: give \
                 it with --input {id}=VALUE, or run the import in a terminal to be asked",
                if input.description.is_empty() {
                    String::new()
                } else {
                    format!(" ({})", input.description)
                },
                match context.client {
                    Client::Cursor => "Cursor",
                    Client::Windsurf => "Windsurf",
                    _ => "VS Code",
                },
            ));
        };
        let name = input_variable(id);
        secrets.insert(name.clone(), value);
        return Ok(format!("${{{name}}}"));
    }
    let project = context.project;
    let value = match inner {
        "userHome" => context.platform.home.to_string_lossy().into_owned(),
        "workspaceFolder" | "workspaceRoot" => project.to_string_lossy().into_owned(),
        "workspaceFolderBasename" => project
            .file_name()
            .map(|name| name.to_string_lossy().into_owned())
            .unwrap_or_default(),
        "pathSeparator" | "/" => separator.to_owned(),
        other => {
            return Err(format!(
                "${{{other}}} is a variable only the client can resolve; replace it with a value \
                 or an environment reference and import again"
            ));
        }
    };
    Ok(escape_literal(&value))
}

/// The environment variable an input's value is kept under: its id in upper case, other
/// characters as `_`.
pub fn input_variable(id: &str) -> String {
    let mut name: String = id
        .chars()
        .map(|ch| {
            if ch.is_ascii_alphanumeric() {
                ch.to_ascii_uppercase()
            } else {
                '_'
            }
        })
        .collect();
    if !name.starts_with(|ch: char| ch.is_ascii_alphabetic() || ch == '_') {
        name.insert(0, '_');
    }
    name
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::super::Client;
    use super::super::fixtures::translate_for;

    #[test]
    fn editor_variables_become_references_or_values() {
        let translated = translate_for(
            Client::Vscode,
            json!({"type": "stdio", "command": "node", "args": ["${workspaceFolder}/server.js", "${userHome}"],
                   "env": {"TOKEN": "${input:gh}", "PATH_X": "${env:HOME}", "COST": "$5 ${"}}),
            &[("gh", "s3cret")],
        )
        .unwrap();
        assert_eq!(
            translated.entry,
            json!({"command": "node", "args": ["/work/app/server.js", "/home/me"],
                   "env": {"TOKEN": "${GH}", "PATH_X": "${HOME}", "COST": "$5 $${"}})
        );
        assert_eq!(translated.secrets["GH"], "s3cret");
        let missing = translate_for(
            Client::Vscode,
            json!({"command": "x", "env": {"T": "${input:gh}"}}),
            &[],
        )
        .unwrap_err();
        assert!(
            missing.contains("--input gh=VALUE") && missing.contains("GitHub token"),
            "{missing}"
        );
    }
}
