//! The values of one registry entry: its inputs (fixed `value`s with `{variables}`,
//! `default`s, `choices`) filled from the user's `--env`, `--header` and `--arg`, arguments into
//! command-line words (named flags, booleans, repeats), environment variables and headers into
//! the entry. A required value nobody gave is recorded, never guessed; a secret one goes to the
//! secrets file and the entry references it (`${NAME}`), and literal text is escaped so the
//! config reads it back as it is.

use std::collections::BTreeMap;

use serde_json::{Map, Value, json};

use super::{AddError, AddRequest, Needed};
use crate::registry::{Argument, Input, KeyValueInput};

/// The values being gathered for one entry.
pub(super) struct Values<'a> {
    pub(super) request: &'a AddRequest,
    /// Required values nobody gave, all reported at once.
    pub(super) missing: Vec<Needed>,
    /// Secret values, by the variable the entry references them as.
    pub(super) secrets: BTreeMap<String, String>,
    /// The argument values given, as written into the entry (secret ones as references).
    pub(super) used_args: BTreeMap<String, Vec<String>>,
}

/// A value ready for the entry, or a reference to the secrets file.
pub(super) struct Resolved {
    pub(super) text: String,
    secret: bool,
    /// Already written for the config (references kept, literal `${` escaped).
    escaped: bool,
}

impl<'a> Values<'a> {
    pub(super) fn new(request: &'a AddRequest) -> Values<'a> {
        Values {
            request,
            missing: Vec::new(),
            secrets: BTreeMap::new(),
            used_args: BTreeMap::new(),
        }
    }

    /// The value of one input: its fixed `value` (with `{variables}`), else the user's, else its
    /// default; `None` when it has none (a required one is then recorded as missing).
    fn input(
        &mut self,
        kind: &'static str,
        name: &str,
        input: &Input,
        given: Option<&str>,
    ) -> Result<Option<Resolved>, AddError> {
        if let Some(template) = &input.value {
            return self.template(template, &input.variables, input.is_secret);
        }
        let value = match (given, &input.default) {
            (Some(given), _) => Some(given.to_owned()),
            (None, Some(default)) => Some(default.clone()),
            (None, None) => None,
        };
        let Some(value) = value else {
            if input.is_required {
                self.missing.push(Needed {
                    kind,
                    name: name.to_owned(),
                    description: input.description.clone(),
                    secret: input.is_secret,
                    choices: input.choices.clone(),
                });
            }
            return Ok(None);
        };
        if !input.choices.is_empty() && !input.choices.contains(&value) && !is_reference(&value) {
            return Err(AddError::Invalid(format!(
                "{name}: {value:?} is not one of {}",
                input.choices.join(", ")
            )));
        }
        Ok(Some(Resolved {
            secret: input.is_secret && !is_reference(&value),
            text: value,
            escaped: false,
        }))
    }

    /// A fixed value with its `{variables}` filled in (a variable nobody gave, without a
    /// default, stays as written unless it is required). The text comes back written for the
    /// config: a secret variable's value goes to the secrets file and the text references it
    /// (`Bearer ${TOKEN}`), the rest is escaped as literal text.
    pub(super) fn template(
        &mut self,
        template: &str,
        variables: &BTreeMap<String, Input>,
        secret: bool,
    ) -> Result<Option<Resolved>, AddError> {
        let mut text = escape_literal(template);
        let mut complete = true;
        let mut replaced = false;
        for (variable, input) in variables {
            let placeholder = format!("{{{variable}}}");
            if !text.contains(&placeholder) {
                continue;
            }
            let given = self
                .request
                .args
                .get(variable)
                .and_then(|values| values.first())
                .cloned();
            // The whole value is secret: so is each of its parts.
            let mut input = input.clone();
            input.is_secret |= secret;
            match self.input("arg", variable, &input, given.as_deref())? {
                Some(value) => {
                    replaced = true;
                    let written = if value.secret {
                        self.keep_secret(&variable_name(variable), value.text)
                    } else if is_reference(&value.text) {
                        value.text
                    } else {
                        escape_literal(&value.text)
                    };
                    if given.is_some() {
                        self.used_args
                            .insert(variable.clone(), vec![written.clone()]);
                    }
                    text = text.replace(&placeholder, &written);
                }
                None if input.is_required => complete = false,
                None => {}
            }
        }
        Ok(complete.then_some(Resolved {
            text,
            secret: secret && !replaced,
            escaped: true,
        }))
    }

    /// Puts a secret value in the secrets file under `variable`; the reference to write.
    fn keep_secret(&mut self, variable: &str, value: String) -> String {
        self.secrets.insert(variable.to_owned(), value);
        format!("${{{variable}}}")
    }

    /// An argument's words (none when it has no value and needs none).
    fn argument(&mut self, argument: &Argument) -> Result<Vec<String>, AddError> {
        let key = argument.key().unwrap_or_default();
        let given: Vec<String> = self.request.args.get(&key).cloned().unwrap_or_default();
        let values = self.argument_values(argument, &key, &given)?;
        let mut words = Vec::new();
        let mut written = Vec::new();
        for (index, value) in values.into_iter().enumerate() {
            let text = if value.secret {
                let variable = variable_name(&format!(
                    "{key}{}",
                    if index > 0 {
                        format!("_{index}")
                    } else {
                        String::new()
                    }
                ));
                self.keep_secret(&variable, value.text)
            } else {
                value.text
            };
            if argument.input.value.is_none() && !given.is_empty() {
                written.push(text.clone());
            }
            push_words(argument, text, &mut words)?;
        }
        if !written.is_empty() {
            self.used_args.insert(key, written);
        }
        Ok(words)
    }

    /// An argument's values: its fixed one, else the one given (or its default), else, when it
    /// repeats, each one given.
    fn argument_values(
        &mut self,
        argument: &Argument,
        key: &str,
        given: &[String],
    ) -> Result<Vec<Resolved>, AddError> {
        let mut values = Vec::new();
        if argument.input.value.is_some() || given.len() <= 1 {
            if let Some(value) = self.input(
                "arg",
                key,
                &argument.input,
                given.first().map(String::as_str),
            )? {
                values.push(value);
            }
        } else if argument.is_repeated {
            for value in given {
                if let Some(value) = self.input("arg", key, &argument.input, Some(value))? {
                    values.push(value);
                }
            }
        } else {
            return Err(AddError::Invalid(format!(
                "--arg {key} is given {} times, and the argument does not repeat",
                given.len()
            )));
        }
        Ok(values)
    }

    pub(super) fn arguments(&mut self, arguments: &[Argument]) -> Result<Vec<String>, AddError> {
        let mut words = Vec::new();
        for argument in arguments {
            words.extend(self.argument(argument)?);
        }
        Ok(words)
    }

    /// Environment variables or headers into `out`, secret ones as references.
    pub(super) fn key_values(
        &mut self,
        kind: &'static str,
        items: &[KeyValueInput],
        given: &BTreeMap<String, String>,
        out: &mut Map<String, Value>,
    ) -> Result<(), AddError> {
        for item in items {
            let Some(value) = self.input(
                kind,
                &item.name,
                &item.input,
                given.get(&item.name).map(String::as_str),
            )?
            else {
                continue;
            };
            let text = if value.secret {
                let variable = if kind == "env" {
                    item.name.clone()
                } else {
                    variable_name(&item.name)
                };
                self.keep_secret(&variable, value.text)
            } else if value.escaped {
                value.text
            } else {
                escape_literal(&value.text)
            };
            out.insert(item.name.clone(), json!(text));
        }
        // Values given for names the entry does not list are passed too: the user knows the
        // server.
        for (name, value) in given {
            if !out.contains_key(name) {
                out.insert(name.clone(), json!(value));
            }
        }
        Ok(())
    }
}

/// One value's words: a named argument's flag, then the value; a boolean flag alone, and only
/// when it is true.
fn push_words(argument: &Argument, text: String, words: &mut Vec<String>) -> Result<(), AddError> {
    if argument.kind == "named" {
        let flag = argument.name.clone().unwrap_or_default();
        if flag.is_empty() || !flag.starts_with('-') {
            return Err(AddError::Invalid(format!(
                "a named argument's name {flag:?} is not a flag"
            )));
        }
        if argument.input.format.as_deref() == Some("boolean") {
            if text == "true" {
                words.push(flag);
            }
            return Ok(());
        }
        words.push(flag);
    }
    words.push(text);
    Ok(())
}

/// Whether a value is exactly one `${NAME}` reference (an entry's own, when updating).
fn is_reference(value: &str) -> bool {
    value
        .strip_prefix("${")
        .and_then(|rest| rest.strip_suffix('}'))
        .is_some_and(crate::config::vars::is_name)
}

/// A literal value written so the config reads it back as it is.
fn escape_literal(text: &str) -> String {
    if is_reference(text) {
        text.to_owned()
    } else {
        text.replace("${", "$${")
    }
}

/// An environment variable name for a header's or an argument's secret.
fn variable_name(name: &str) -> String {
    crate::import::clients::input_variable(name)
}
