//! A package into an entry. A package runs under its registry type's runner — `npx -y`
//! (npm), `uvx` (PyPI), `dnx` (NuGet), `docker run -i --rm` (OCI) — unless the entry's
//! `runtimeHint` names another (`pipx`, `python` for `python -m`, `podman`, …), with its runtime
//! arguments before the package and its package arguments after. A container gets each of the
//! entry's variables passed in by name. A package that serves stdio becomes a stdio entry; one
//! that serves Streamable HTTP or SSE becomes an entry with its transport's `url` too, which the
//! proxy starts and reaches there: `{port}` in the URL is the port the proxy picks, passed through
//! the package's inputs named `port`. The values themselves are `values`'s job.

use serde_json::{Map, Value, json};

use super::values::Values;
use super::{AddError, unsupported_kind};
use crate::config::PORT_PLACEHOLDER;
use crate::registry::{Package, Transport};

/// The command line and environment that run `package`.
pub(super) fn package_entry(
    package: &Package,
    values: &mut Values<'_>,
) -> Result<Map<String, Value>, AddError> {
    let identifier = check(package)?;
    let http = http_transport(package)?;
    if let Some((_, url, _)) = &http {
        values.port = names_port(url);
    }
    let command = command(package);
    let runner = command
        .rsplit(['/', '\\'])
        .next()
        .unwrap_or(&command)
        .to_ascii_lowercase();
    let version = package
        .version
        .as_deref()
        .filter(|version| !version.is_empty());
    let (prefix, spec) = launch(&runner, identifier, version);
    let mut args: Vec<String> = prefix.into_iter().map(str::to_owned).collect();
    let mut env = Map::new();
    values.key_values(
        "env",
        &package.environment_variables,
        &values.request.env.clone(),
        &mut env,
    )?;
    let runtime = values.arguments(&package.runtime_arguments)?;
    let container = matches!(runner.as_str(), "docker" | "podman");
    args.extend(runtime);
    if container {
        // A container sees no environment but what `-e` passes: each variable by name, its
        // value from the entry's env.
        for name in env.keys() {
            args.push("-e".into());
            args.push(name.clone());
        }
    }
    args.push(spec);
    let package_args = values.arguments(&package.package_arguments)?;
    if runner == "dnx" {
        args.push("--yes".into());
        if !package_args.is_empty() {
            args.push("--".into());
        }
    }
    args.extend(package_args);
    let mut entry = Map::new();
    entry.insert("command".into(), json!(command));
    entry.insert("args".into(), json!(args));
    if let Some((kind, template, transport)) = http {
        let passed = args.iter().any(|arg| arg.contains(PORT_PLACEHOLDER))
            || env
                .values()
                .any(|value| value.as_str().is_some_and(|v| v.contains(PORT_PLACEHOLDER)));
        if values.port && !passed {
            return Err(AddError::Invalid(format!(
                "its package serves at {template}, but none of its arguments or environment \
                 variables is named port, so the proxy cannot tell it which port to listen on"
            )));
        }
        let url = values.package_url(template);
        let mut headers = Map::new();
        values.key_values(
            "header",
            &transport.headers,
            &values.request.headers.clone(),
            &mut headers,
        )?;
        if values.missing.is_empty() {
            check_url(&url)?;
        }
        entry.insert("type".into(), json!(kind));
        entry.insert("url".into(), json!(url));
        if !headers.is_empty() {
            entry.insert("headers".into(), Value::Object(headers));
        }
    }
    if !env.is_empty() {
        entry.insert("env".into(), Value::Object(env));
    }
    Ok(entry)
}

/// A package's HTTP transport: its kind as the config writes it, its URL template, the
/// transport; `None` for stdio.
fn http_transport(package: &Package) -> Result<Option<(&'static str, &str, &Transport)>, AddError> {
    let Some(transport) = &package.transport else {
        return Ok(None);
    };
    let kind = match transport.kind.as_str() {
        "stdio" => return Ok(None),
        "streamable-http" | "http" | "streamableHttp" => "streamable-http",
        "sse" => "sse",
        other => {
            return Err(AddError::Invalid(format!(
                "its package's transport \"{other}\" is neither stdio, streamable-http nor sse"
            )));
        }
    };
    let Some(url) = transport
        .url
        .as_deref()
        .filter(|url| !url.trim().is_empty())
    else {
        return Err(AddError::Invalid(format!(
            "its package serves {kind} but names no URL to reach it at"
        )));
    };
    Ok(Some((kind, url, transport)))
}

/// Whether a package URL names the `{port}` variable (in any case: its inputs name it `PORT`,
/// `--port` or `port`).
fn names_port(url: &str) -> bool {
    url.to_ascii_lowercase().contains(PORT_PLACEHOLDER)
}

/// A package's URL, filled in: loopback (the proxy reaches the process it starts, nothing else)
/// and valid once a port is in.
fn check_url(url: &str) -> Result<(), AddError> {
    let sample = url.replace(PORT_PLACEHOLDER, "1");
    if let Ok(parsed) = url::Url::parse(&sample)
        && !crate::config::is_loopback(&parsed)
    {
        return Err(AddError::Refused(format!(
            "refused: its package serves at {url}, which is not on this machine; the proxy \
             reaches a package it starts over loopback only (localhost, 127.0.0.0/8 or [::1])"
        )));
    }
    crate::config::check_started_url(url)
        .map_err(|message| AddError::Invalid(format!("its package's URL: {message}")))
}

/// A package the proxy can run: of a type it knows, with an identifier that is a package name
/// (not a flag, no spaces). The identifier, trimmed.
fn check(package: &Package) -> Result<&str, AddError> {
    let kind = package.registry_type.to_ascii_lowercase();
    if !matches!(kind.as_str(), "npm" | "pypi" | "nuget" | "oci") {
        return Err(unsupported_kind(&package.registry_type));
    }
    let identifier = package.identifier.trim();
    if identifier.is_empty()
        || identifier.starts_with('-')
        || identifier.contains(char::is_whitespace)
    {
        return Err(AddError::Refused(format!(
            "refused: the package identifier {identifier:?} is not a package name"
        )));
    }
    Ok(identifier)
}

/// The command that runs the package: its `runtimeHint`, else its registry type's runner.
fn command(package: &Package) -> String {
    let hint = package
        .runtime_hint
        .as_deref()
        .map(str::trim)
        .filter(|hint| !hint.is_empty());
    let default_runner = match package.registry_type.to_ascii_lowercase().as_str() {
        "npm" => "npx",
        "pypi" => "uvx",
        "nuget" => "dnx",
        _ => "docker",
    };
    hint.unwrap_or(default_runner).to_owned()
}

/// The runner's own words before the package, and the package as the runner names it (with its
/// version in the runner's syntax).
fn launch(runner: &str, identifier: &str, version: Option<&str>) -> (Vec<&'static str>, String) {
    match runner {
        "npx" => (vec!["-y"], versioned(identifier, version, "@")),
        "docker" | "podman" => {
            let tagged = identifier
                .rsplit('/')
                .next()
                .is_some_and(|last| last.contains(':'))
                || identifier.contains('@');
            let image = match version {
                Some(version) if !tagged => format!("{identifier}:{version}"),
                _ => identifier.to_owned(),
            };
            (vec!["run", "-i", "--rm"], image)
        }
        "pipx" => (vec!["run"], versioned(identifier, version, "==")),
        "python" | "python3" => (
            vec!["-m"],
            identifier.to_ascii_lowercase().replace(['-', '.'], "_"),
        ),
        _ => (Vec::new(), versioned(identifier, version, "@")),
    }
}

fn versioned(identifier: &str, version: Option<&str>, separator: &str) -> String {
    match version {
        Some(version) => format!("{identifier}{separator}{version}"),
        None => identifier.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::launch;
    use crate::registry::install::{AddError, AddRequest, plan};

    /// The entry `plan` makes for an npm package with `transport` and `extra` fields.
    fn http_entry(transport: Value, extra: Value, request: &AddRequest) -> Result<Value, AddError> {
        let mut package = json!({"registryType": "npm", "identifier": "some-server",
                                 "version": "1.0.0", "transport": transport});
        for (key, value) in extra.as_object().unwrap() {
            package[key] = value.clone();
        }
        let detail = serde_json::from_value(json!({"name": "io.example/some", "version": "1.0.0",
                                                   "packages": [package]}))
        .unwrap();
        plan("https://registry.example", &detail, request).map(|plan| plan.entry)
    }

    #[test]
    fn an_http_package_passes_the_proxys_port_through_its_input_named_port() {
        let entry = http_entry(
            json!({"type": "streamable-http", "url": "http://localhost:{port}/mcp"}),
            json!({"environmentVariables": [{"name": "PORT", "isRequired": true, "default": "3001"},
                                            {"name": "LOG", "default": "info"}],
                   "packageArguments": [{"type": "positional", "value": "streamableHttp"}]}),
            &AddRequest::default(),
        )
        .unwrap();
        assert_eq!(entry["command"], json!("npx"));
        assert_eq!(
            entry["args"],
            json!(["-y", "some-server@1.0.0", "streamableHttp"])
        );
        assert_eq!(entry["env"], json!({"PORT": "{port}", "LOG": "info"}));
        assert_eq!(entry["type"], json!("streamable-http"));
        assert_eq!(entry["url"], json!("http://localhost:{port}/mcp"));

        // A named argument, and a value template's variable, carry it the same way.
        let entry = http_entry(
            json!({"type": "sse", "url": "http://127.0.0.1:{PORT}/sse"}),
            json!({"packageArguments": [
                {"type": "named", "name": "--port", "isRequired": true},
                {"type": "named", "name": "--listen", "value": "127.0.0.1:{port}",
                 "variables": {"port": {"isRequired": true}}}]}),
            &AddRequest::default(),
        )
        .unwrap();
        assert_eq!(
            entry["args"],
            json!([
                "-y",
                "some-server@1.0.0",
                "--port",
                "{port}",
                "--listen",
                "127.0.0.1:{port}"
            ])
        );
        assert_eq!(entry["type"], json!("sse"));
        assert_eq!(entry["url"], json!("http://127.0.0.1:{port}/sse"));
    }

    #[test]
    fn literal_dollar_braces_in_given_values_are_written_so_the_config_reads_them_back() {
        let request = AddRequest {
            args: [("pattern".to_owned(), vec!["${HOME}/*.md".to_owned()])].into(),
            env: [("GREETING".to_owned(), "hi ${USER}".to_owned())].into(),
            ..AddRequest::default()
        };
        let mut package = json!({"registryType": "npm", "identifier": "some-server",
            "version": "1.0.0",
            "environmentVariables": [{"name": "GREETING"}],
            "packageArguments": [{"type": "named", "name": "--pattern", "valueHint": "pattern"}]});
        package["transport"] = json!({"type": "stdio"});
        let detail = serde_json::from_value(json!({"name": "io.example/some", "version": "1.0.0",
                                                   "packages": [package]}))
        .unwrap();
        let entry = plan("https://registry.example", &detail, &request)
            .unwrap()
            .entry;
        assert_eq!(
            entry["args"],
            json!(["-y", "some-server@1.0.0", "--pattern", "$${HOME}/*.md"])
        );
        assert_eq!(entry["env"], json!({"GREETING": "hi $${USER}"}));
        // An update reads them back as written and keeps them so, not escaped twice.
        let again = AddRequest {
            args: [("pattern".to_owned(), vec!["$${HOME}/*.md".to_owned()])].into(),
            env: [("GREETING".to_owned(), "hi $${USER}".to_owned())].into(),
            written: true,
            ..AddRequest::default()
        };
        let updated = plan("https://registry.example", &detail, &again)
            .unwrap()
            .entry;
        assert_eq!(updated["args"], entry["args"]);
        assert_eq!(updated["env"], entry["env"]);
        // What the config's loader makes of them: the literal text given.
        let nothing = |_: &str| None;
        assert_eq!(
            crate::config::vars::expand("$${HOME}/*.md", &nothing).unwrap(),
            "${HOME}/*.md"
        );
    }

    #[test]
    fn other_url_variables_are_filled_from_the_inputs_they_name() {
        let request = AddRequest {
            args: [("base".to_owned(), vec!["api".to_owned()])].into(),
            ..AddRequest::default()
        };
        let entry = http_entry(
            json!({"type": "streamable-http", "url": "http://localhost:{port}/{base}/{TENANT}"}),
            json!({"environmentVariables": [{"name": "PORT"}, {"name": "TENANT", "default": "t1"}],
                   "packageArguments": [{"type": "named", "name": "--base", "valueHint": "base"}]}),
            &request,
        )
        .unwrap();
        assert_eq!(entry["url"], json!("http://localhost:{port}/api/t1"));
        assert_eq!(
            entry["args"],
            json!(["-y", "some-server@1.0.0", "--base", "api"])
        );

        let Err(AddError::Missing(missing)) = http_entry(
            json!({"type": "streamable-http", "url": "http://localhost:{port}/{region}"}),
            json!({"environmentVariables": [{"name": "PORT"}]}),
            &AddRequest::default(),
        ) else {
            panic!("a URL variable nobody gave is missing");
        };
        assert_eq!(missing[0].name, "region");
    }

    #[test]
    fn an_http_package_that_cannot_be_reached_or_told_its_port_is_refused() {
        let remote = http_entry(
            json!({"type": "streamable-http", "url": "http://example.com:{port}/mcp"}),
            json!({"environmentVariables": [{"name": "PORT"}]}),
            &AddRequest::default(),
        )
        .unwrap_err();
        assert!(
            matches!(&remote, AddError::Refused(message) if message.contains("not on this machine")),
            "{remote}"
        );
        let untold = http_entry(
            json!({"type": "streamable-http", "url": "http://localhost:{port}/mcp"}),
            json!({"environmentVariables": [{"name": "HTTP_PORT"}]}),
            &AddRequest::default(),
        )
        .unwrap_err();
        assert!(
            untold
                .to_string()
                .contains("none of its arguments or environment variables is named port"),
            "{untold}"
        );
        let unknown = http_entry(
            json!({"type": "websocket", "url": "ws://localhost:{port}"}),
            json!({}),
            &AddRequest::default(),
        )
        .unwrap_err();
        assert!(
            unknown.to_string().contains("\"websocket\" is neither"),
            "{unknown}"
        );
    }

    #[test]
    fn each_runner_names_the_package_and_its_version_in_its_own_syntax() {
        assert_eq!(
            launch("npx", "@scope/server", Some("1.2.0")),
            (vec!["-y"], "@scope/server@1.2.0".to_owned())
        );
        assert_eq!(
            launch("uvx", "mcp-server-time", Some("0.6.2")),
            (vec![], "mcp-server-time@0.6.2".to_owned())
        );
        assert_eq!(
            launch("pipx", "mcp-server-time", Some("0.6.2")),
            (vec!["run"], "mcp-server-time==0.6.2".to_owned())
        );
        assert_eq!(
            launch("python", "Mcp-Server.Time", Some("0.6.2")),
            (vec!["-m"], "mcp_server_time".to_owned())
        );
        assert_eq!(
            launch("docker", "ghcr.io/org/server", Some("1.0")),
            (
                vec!["run", "-i", "--rm"],
                "ghcr.io/org/server:1.0".to_owned()
            )
        );
        // An image that names its tag or digest keeps it.
        for image in ["ghcr.io/org/server:2.0", "server@sha256:abc"] {
            assert_eq!(launch("podman", image, Some("1.0")).1, image);
        }
        assert_eq!(launch("npx", "server", None).1, "server");
    }
}
