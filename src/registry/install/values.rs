//! The values of one registry entry: its inputs (fixed `value`s with `{variables}`,
//! `default`s, `choices`) filled from the user's `--env`, `--header` and `--arg`, arguments into
//! command-line words (named flags, booleans, repeats), environment variables and headers into
//! the entry. A required value nobody gave is recorded, never guessed; a secret one goes to the
//! secrets file and the entry references it (`${NAME}`), and literal text is escaped so the
//! config reads it back as it is. For a package that serves HTTP on `{port}`, the inputs named
//! `port` are the proxy's: they get the `{port}` placeholder, and nobody is asked for them.

use std::collections::BTreeMap;

use serde_json::{Map, Value, json};

use super::{AddError, AddRequest, Needed};
use crate::config::PORT_PLACEHOLDER;
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
    /// The package serves HTTP on a URL that names `{port}`: its inputs named `port` carry the
    /// port the proxy picks at each start.
    pub(super) port: bool,
    /// Each input's value as written into the entry, by the names a package URL's variables use
    /// for it (an argument's value hint and flag name without dashes, an environment variable's
    /// name), lowercase.
    provided: BTreeMap<String, String>,
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
            port: false,
            provided: BTreeMap::new(),
        }
    }

    /// Whether `name` is the port the proxy fills in.
    fn is_port(&self, name: &str) -> bool {
        self.port && name.trim_start_matches('-').eq_ignore_ascii_case("port")
    }

    /// The placeholder for the port the proxy picks, as the entry writes it.
    fn port_value() -> Resolved {
        Resolved {
            text: PORT_PLACEHOLDER.to_owned(),
            secret: false,
            escaped: true,
        }
    }

    /// Notes the value written for an input known by `names`.
    fn provide<'n>(&mut self, names: impl IntoIterator<Item = &'n str>, text: &str) {
        for name in names {
            let name = name.trim_start_matches('-').to_ascii_lowercase();
            if !name.is_empty() {
                self.provided.entry(name).or_insert_with(|| text.to_owned());
            }
        }
    }

    /// A package's transport URL with its `{variables}` filled in from the package's inputs (an
    /// argument's value hint or name, an environment variable's name), else from `--arg`;
    /// `{port}` stays for the proxy when the inputs carry it. A variable nobody gave is missing.
    pub(super) fn package_url(&mut self, template: &str) -> String {
        let mut url = String::new();
        let mut rest = template;
        while let Some(start) = rest.find('{') {
            let Some(length) = rest[start..].find('}') else {
                break;
            };
            url.push_str(&rest[..start]);
            let variable = &rest[start + 1..start + length];
            rest = &rest[start + length + 1..];
            if self.is_port(variable) {
                url.push_str(PORT_PLACEHOLDER);
                continue;
            }
            let given = self
                .request
                .args
                .get(variable)
                .and_then(|values| values.first());
            match (self.provided.get(&variable.to_ascii_lowercase()), given) {
                (Some(value), _) => url.push_str(value),
                (None, Some(value)) => {
                    let written = if self.request.written {
                        value.clone()
                    } else {
                        escape_literal(value)
                    };
                    self.used_args
                        .insert(variable.to_owned(), vec![written.clone()]);
                    url.push_str(&written);
                }
                (None, None) => {
                    self.missing.push(Needed {
                        kind: "arg",
                        name: variable.to_owned(),
                        description: Some("a variable of the package's URL".into()),
                        secret: false,
                        choices: Vec::new(),
                    });
                    url.push('{');
                    url.push_str(variable);
                    url.push('}');
                }
            }
        }
        url.push_str(rest);
        url
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
        let (value, given) = match (given, &input.default) {
            (Some(given), _) => (Some(given.to_owned()), true),
            (None, Some(default)) => (Some(default.clone()), false),
            (None, None) => (None, false),
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
            escaped: given && self.request.written,
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
            if self.is_port(variable) {
                text = text.replace(&placeholder, PORT_PLACEHOLDER);
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
                    } else if value.escaped || is_reference(&value.text) {
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
        let names = [argument.value_hint.as_deref(), argument.name.as_deref()];
        if names.into_iter().flatten().any(|name| self.is_port(name)) {
            let mut words = Vec::new();
            push_words(argument, Self::port_value().text, &mut words)?;
            return Ok(words);
        }
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
            } else if value.escaped {
                value.text
            } else {
                escape_literal(&value.text)
            };
            if argument.input.value.is_none() && !given.is_empty() {
                written.push(text.clone());
            }
            self.provide(names.into_iter().flatten(), &text);
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
            let value = if kind == "env" && self.is_port(&item.name) {
                Some(Self::port_value())
            } else {
                self.input(
                    kind,
                    &item.name,
                    &item.input,
                    given.get(&item.name).map(String::as_str),
                )?
            };
            let Some(value) = value else {
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
            if kind == "env" {
                self.provide([item.name.as_str()], &text);
            }
            out.insert(item.name.clone(), json!(text));
        }
        // Values given for names the entry does not list are passed too: the user knows the
        // server.
        for (name, value) in given {
            if !out.contains_key(name) {
                if kind == "env" {
                    self.provide([name.as_str()], value);
                }
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
