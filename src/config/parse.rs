//! Reading a config file: the `mcpServers` (or `servers`) object into [`Config`], each server's
//! `${VAR}` references resolved, its transport and fields validated, relative paths taken from the
//! file's directory. Every error names the file, the server and the field.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use serde_json::{Map, Value};

use super::field::{
    FieldError, field_error, http_kind, optional_string, parse_process, string_map,
};
use super::fields::{parse_instructions, parse_oauth, parse_roots, parse_tool_filter};
use super::hints::parse_tool_hints;
use super::tokens::parse_auth_tokens;
use super::*;

impl Config {
    /// Reads and validates a config file. Relative paths in it (a stdio server's `command` when
    /// it names a file, like `./bin/server`, and its `cwd`) are taken from the file's directory,
    /// so the file means the same wherever the proxy is started from.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|error| ConfigError {
            file: path.to_owned(),
            server: None,
            field: None,
            message: format!("cannot read: {error}"),
        })?;
        let mut config = Config::parse(path, &text)?;
        let base = std::path::absolute(path)
            .ok()
            .and_then(|file| file.parent().map(Path::to_owned));
        if let Some(base) = base {
            config.resolve_paths(&base);
        }
        Ok(config)
    }

    /// Makes the stdio servers' relative `command` paths and `cwd`s relative to `base`. A bare
    /// command (`npx`, `uvx`) is left to the `PATH` search; `args` are passed as written.
    pub fn resolve_paths(&mut self, base: &Path) {
        for server in self.servers.values_mut() {
            let (command, cwd) = match &mut server.transport {
                TransportConfig::Stdio { command, cwd, .. } => (command, cwd),
                TransportConfig::StartedHttp(started) => (&mut started.command, &mut started.cwd),
                _ => continue,
            };
            let program = Path::new(command.as_str());
            // Collecting the components drops the `.` ones (`./bin/x`).
            if program.is_relative() && program.components().count() > 1 {
                let resolved: PathBuf = base.join(program).components().collect();
                *command = resolved.to_string_lossy().into_owned();
            }
            if let Some(dir) = cwd
                && dir.is_relative()
            {
                *dir = base.join(&*dir).components().collect();
            }
        }
    }

    /// Validates config text; `path` names the file in error messages, and a server's relative
    /// `envFile` is taken from its directory. `${VAR}` references are resolved from the process
    /// environment.
    pub fn parse(path: &Path, text: &str) -> Result<Config, ConfigError> {
        Config::parse_with_env(path, text, &|name| std::env::var(name).ok())
    }

    /// [`Config::parse`] with `${VAR}` references resolved by `lookup` (after each server's
    /// `envFile`).
    pub fn parse_with_env(
        path: &Path,
        text: &str,
        lookup: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Config, ConfigError> {
        let error = |server: Option<&str>, field: Option<&str>, message: String| ConfigError {
            file: path.to_owned(),
            server: server.map(str::to_owned),
            field: field.map(str::to_owned),
            message,
        };
        let root: Value = serde_json::from_str(text).map_err(|e| {
            error(
                None,
                None,
                format!(
                    "not valid JSON (line {}, column {}): {e}",
                    e.line(),
                    e.column()
                ),
            )
        })?;
        let Value::Object(root) = root else {
            return Err(error(
                None,
                None,
                "the top level must be a JSON object".into(),
            ));
        };
        let (key, servers) = match (root.get("mcpServers"), root.get("servers")) {
            (Some(servers), _) => ("mcpServers", servers),
            (None, Some(servers)) => ("servers", servers),
            (None, None) => {
                return Err(error(
                    None,
                    None,
                    "no \"mcpServers\" (or \"servers\") object at the top level".into(),
                ));
            }
        };
        let Value::Object(servers) = servers else {
            return Err(error(
                None,
                Some(key),
                "must be an object of servers by name".into(),
            ));
        };
        let mut config = Config::default();
        (config.auth_tokens, config.token_exposures) = parse_auth_tokens(root.get("authTokens"))
            .map_err(|(field, message)| error(None, Some(&field), message))?;
        for (name, server) in servers {
            if name.trim().is_empty() {
                return Err(error(None, Some(key), "a server name is empty".into()));
            }
            let base = path.parent().unwrap_or(Path::new(""));
            let server = resolve_server(server, base, lookup)
                .and_then(|server| parse_server(&server))
                .map_err(|(field, message)| error(Some(name), field.as_deref(), message))?;
            config.servers.insert(name.clone(), server);
        }
        config.smtp = root.get("smtp").cloned();
        config.security = SecuritySettings::parse(root.get("security"))
            .map_err(|(field, message)| error(None, Some(&field), message))?;
        Ok(config)
    }
}

/// The server's entry with its `${VAR}` references resolved (see `vars`): in `command`,
/// `args`, `env` values, `cwd`, `url` and `headers` values, looked up in its `envFile` first and
/// then with `lookup`. The `envFile`'s variables also go into a stdio server's `env` (its own
/// `env` wins), as VS Code and Cursor start servers.
fn resolve_server(
    value: &Value,
    base: &Path,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<Value, FieldError> {
    let Value::Object(server) = value else {
        return Err((None, "must be an object".into()));
    };
    let mut server = server.clone();
    let file_vars = match server.get("envFile") {
        None | Some(Value::Null) => BTreeMap::new(),
        Some(Value::String(file)) => {
            let file = vars::expand(file, lookup)
                .map_err(|error| field_error("envFile", error.to_string()))?;
            let file = match file.strip_prefix("~/") {
                Some(rest) => dirs::home_dir().unwrap_or_default().join(rest),
                None => base.join(file),
            };
            vars::read_env_file(&file).map_err(|message| field_error("envFile", message))?
        }
        Some(_) => return Err(field_error("envFile", "must be a path")),
    };
    let resolve = |text: &str| {
        vars::expand(text, &|name| {
            file_vars.get(name).cloned().or_else(|| lookup(name))
        })
    };
    for field in ["command", "cwd", "url"] {
        if let Some(Value::String(text)) = server.get(field) {
            let resolved = resolve(text).map_err(|error| field_error(field, error.to_string()))?;
            server.insert(field.to_owned(), Value::String(resolved));
        }
    }
    if let Some(Value::Array(args)) = server.get_mut("args") {
        for (index, arg) in args.iter_mut().enumerate() {
            if let Value::String(text) = arg {
                *text = resolve(text)
                    .map_err(|error| field_error(&format!("args[{index}]"), error.to_string()))?;
            }
        }
    }
    for field in ["env", "headers"] {
        if let Some(Value::Object(map)) = server.get_mut(field) {
            for (key, item) in map.iter_mut() {
                if let Value::String(text) = item {
                    *text = resolve(text).map_err(|error| {
                        field_error(&format!("{field}.{key}"), error.to_string())
                    })?;
                }
            }
        }
    }
    if !file_vars.is_empty() && server.contains_key("command") {
        let env = server
            .entry("env")
            .or_insert_with(|| Value::Object(Map::new()));
        if let Value::Object(env) = env {
            for (key, value) in file_vars {
                env.entry(key).or_insert(Value::String(value));
            }
        }
    }
    Ok(Value::Object(server))
}

fn parse_server(value: &Value) -> Result<ServerConfig, FieldError> {
    let Value::Object(server) = value else {
        return Err((None, "must be an object".into()));
    };
    let kind = optional_string(server, "type")?;
    let has_command = server.contains_key("command");
    let has_url = server.contains_key("url");
    let transport = match (kind.as_deref(), has_command, has_url) {
        // Both: a server the proxy starts and reaches over HTTP.
        (kind, true, true) => super::started::parse(server, kind)?,
        (Some("stdio") | None, true, false) => parse_stdio(server)?,
        (Some(other), true, false) => {
            return Err(field_error(
                "type",
                format!("\"{other}\" does not go with \"command\"; use \"stdio\" or leave it out"),
            ));
        }
        (kind, false, true) => {
            let url = parse_url(server)?;
            let headers = string_map(server, "headers")?
                .into_iter()
                .map(|(name, value)| (name, Secret::new(value)))
                .collect();
            let sse = http_kind(kind, url.path())?;
            if sse {
                TransportConfig::Sse { url, headers }
            } else {
                TransportConfig::StreamableHttp { url, headers }
            }
        }
        (_, false, false) => {
            return Err((
                None,
                "needs \"command\" (a stdio server), \"url\" (an HTTP server), or both (a \
                 server the proxy starts and reaches over HTTP)"
                    .into(),
            ));
        }
    };
    let disabled = match server.get("disabled") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(disabled)) => *disabled,
        Some(_) => return Err(field_error("disabled", "must be true or false")),
    };
    let timeout = match server.get("timeout") {
        None | Some(Value::Null) => DEFAULT_TIMEOUT,
        Some(Value::Number(seconds)) => match seconds.as_f64() {
            Some(seconds) if seconds > 0.0 && seconds <= 86_400.0 => {
                Duration::from_secs_f64(seconds)
            }
            _ => {
                return Err(field_error(
                    "timeout",
                    "must be a number of seconds greater than 0 and at most 86400",
                ));
            }
        },
        Some(_) => return Err(field_error("timeout", "must be a number of seconds")),
    };
    Ok(ServerConfig {
        transport,
        disabled,
        timeout,
        tools: parse_tool_filter(server)?,
        instructions: parse_instructions(server)?,
        protocol: match optional_string(server, "protocol")?.as_deref() {
            Some("legacy") => Protocol::Legacy,
            Some("modern") => Protocol::Modern,
            None | Some("auto") => Protocol::Auto,
            Some(other) => {
                return Err(field_error(
                    "protocol",
                    format!(
                        "unknown protocol \"{other}\"; expected \"legacy\", \"modern\" or \"auto\""
                    ),
                ));
            }
        },
        origin: match server.get("registry") {
            None | Some(Value::Null) => Origin::LocalFile,
            Some(Value::Object(source)) if source.get("name").is_some_and(Value::is_string) => {
                Origin::Registry
            }
            Some(_) => {
                return Err(field_error(
                    "registry",
                    "must be an object naming the registry entry ({\"url\", \"name\", \"version\"})",
                ));
            }
        },
        oauth: parse_oauth(server)?,
        roots: parse_roots(server)?,
        scope: parse_scope(server, has_command)?,
        tool_hints: parse_tool_hints(server)?,
    })
}

/// `"scope"`: `"replica"` or `"fleet"`; the latter only for a server the proxy runs itself.
fn parse_scope(server: &Map<String, Value>, has_command: bool) -> Result<Scope, FieldError> {
    match optional_string(server, "scope")?.as_deref() {
        None | Some("replica") => Ok(Scope::Replica),
        Some("fleet") if has_command => Ok(Scope::Fleet),
        Some("fleet") => Err(field_error(
            "scope",
            "\"fleet\" is for a server the proxy runs itself (one with \"command\"); a server \
             reached by its URL is already one server for every replica: leave \"scope\" out",
        )),
        Some(other) => Err(field_error(
            "scope",
            format!("unknown scope \"{other}\"; expected \"replica\" or \"fleet\""),
        )),
    }
}

fn parse_stdio(server: &Map<String, Value>) -> Result<TransportConfig, FieldError> {
    let (command, args, env, cwd) = parse_process(server)?;
    Ok(TransportConfig::Stdio {
        command,
        args,
        env,
        cwd,
    })
}

fn parse_url(server: &Map<String, Value>) -> Result<url::Url, FieldError> {
    let Some(Value::String(text)) = server.get("url") else {
        return Err(field_error("url", "must be a string"));
    };
    let url = url::Url::parse(text).map_err(|e| field_error("url", format!("\"{text}\": {e}")))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(field_error(
            "url",
            format!("\"{text}\": only http and https URLs are supported"),
        ));
    }
    Ok(url)
}
