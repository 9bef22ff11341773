//! A server the proxy starts and reaches over HTTP: an entry with both `command` (with `args`,
//! `env`, `cwd`, `envFile`, as a stdio server has them) and `url` (with `type` and `headers`, as
//! an HTTP server has them). `{port}` in its args, env values and URL stands for a free loopback
//! port the proxy picks at each start. The URL must be loopback: the proxy reaches the process it
//! started, nothing else. Reading and checking such an entry live here; picking the port and
//! running the process are `downstream`'s.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde_json::{Map, Value};

use super::field::{FieldError, field_error, http_kind, parse_process, string_map};
use super::{Origin, TransportConfig};
use crate::secret::Secret;
use crate::security::{Refusal, SecuritySettings};

/// What `{port}` is written as in a started server's args, env values and URL.
pub const PORT_PLACEHOLDER: &str = "{port}";

/// A server the proxy starts as a local process and reaches over HTTP at `url`.
#[derive(Debug, Clone, PartialEq)]
pub struct StartedHttp {
    pub command: String,
    pub args: Vec<String>,
    pub env: BTreeMap<String, String>,
    pub cwd: Option<PathBuf>,
    /// The URL as written, `{port}` included: a valid loopback http(s) URL once a port is in.
    pub url: String,
    /// Legacy HTTP+SSE rather than Streamable HTTP.
    pub sse: bool,
    pub headers: BTreeMap<String, Secret>,
}

/// One start of a [`StartedHttp`]: its arguments, environment and URL with the port in.
#[derive(Debug, Clone, PartialEq)]
pub struct Launch {
    pub args: Vec<String>,
    pub env: BTreeMap<String, String>,
    pub url: url::Url,
}

impl StartedHttp {
    /// Whether the entry names `{port}`, so the proxy picks a port at each start. (Validation
    /// made sure the URL names it exactly when the command line or environment does.)
    pub fn uses_port(&self) -> bool {
        self.url.contains(PORT_PLACEHOLDER)
    }

    /// The arguments, environment and URL of one start, `{port}` replaced by `port` (`None` for
    /// an entry without `{port}`).
    pub fn launch(&self, port: Option<u16>) -> Result<Launch, String> {
        let fill = |text: &str| match port {
            Some(port) => text.replace(PORT_PLACEHOLDER, &port.to_string()),
            None => text.to_owned(),
        };
        let url = fill(&self.url);
        let url = url::Url::parse(&url).map_err(|error| format!("the URL {url:?}: {error}"))?;
        Ok(Launch {
            args: self.args.iter().map(|arg| fill(arg)).collect(),
            env: self
                .env
                .iter()
                .map(|(key, value)| (key.clone(), fill(value)))
                .collect(),
            url,
        })
    }

    /// The command line and URL as `servers` and logs show them.
    pub fn target(&self) -> String {
        let command = std::iter::once(self.command.as_str())
            .chain(self.args.iter().map(String::as_str))
            .collect::<Vec<_>>()
            .join(" ");
        // The URL as written, but for what `display_url` hides: a password and the query.
        let mut url = self.url.clone();
        if let Some(query) = url.find('?') {
            url.truncate(query);
            url.push_str("?[redacted]");
        }
        if let Some(authority) = url.find("://").map(|at| at + 3) {
            let end = url[authority..]
                .find('/')
                .map_or(url.len(), |end| authority + end);
            if let Some(at) = url[authority..end].rfind('@').map(|at| authority + at)
                && let Some(colon) = url[authority..at].find(':').map(|at| authority + at)
            {
                url.replace_range(colon + 1..at, "[redacted]");
            }
        }
        format!("{command} ({url})")
    }

    /// The security policy on a started server: the command policy on its command line and
    /// environment, as for a stdio server; its headers, as for an HTTP server. Its URL is
    /// loopback by construction; for an untrusted entry it must also name `{port}`, the port the
    /// proxy picked for the process, since a fixed port could be another service on this machine
    /// (unless local targets are allowed).
    pub(super) fn check(&self, origin: Origin, security: &SecuritySettings) -> Result<(), Refusal> {
        if security.commands_strict(origin) {
            security.check_command(&self.command, &self.args, &self.env)?;
        }
        if let Some(rules) = security.url_rules(origin) {
            if !rules.allow_local && !self.uses_port() {
                return Err(Refusal::new(
                    "started-url-port",
                    format!(
                        "{}: the URL of a server the proxy starts names a fixed port instead of \
                         {PORT_PLACEHOLDER}, and that port could be another service on this \
                         machine (set security.allowLocalTargets to permit it)",
                        self.url
                    ),
                ));
            }
            for (name, value) in &self.headers {
                crate::security::check_header(name, value.expose())?;
            }
        }
        Ok(())
    }
}

/// Reads an entry with both `command` and `url`; `kind` is its `type`.
pub(super) fn parse(
    server: &Map<String, Value>,
    kind: Option<&str>,
) -> Result<TransportConfig, FieldError> {
    let (command, args, env, cwd) = parse_process(server)?;
    let Some(Value::String(url)) = server.get("url") else {
        return Err(field_error("url", "must be a string"));
    };
    check_started_url(url).map_err(|message| field_error("url", message))?;
    let sample = url.replace(PORT_PLACEHOLDER, "1");
    let path = url::Url::parse(&sample)
        .map(|parsed| parsed.path().to_owned())
        .unwrap_or_default();
    let sse = match kind {
        Some("stdio") => {
            return Err(field_error(
                "type",
                "\"stdio\" does not go with \"url\": an entry with both \"command\" and \"url\" \
                 is a server the proxy starts and reaches over HTTP (\"streamable-http\" or \
                 \"sse\")",
            ));
        }
        kind => http_kind(kind, &path)?,
    };
    let passed = args.iter().any(|arg| arg.contains(PORT_PLACEHOLDER))
        || env.values().any(|value| value.contains(PORT_PLACEHOLDER));
    match (url.contains(PORT_PLACEHOLDER), passed) {
        (true, false) => {
            return Err(field_error(
                "url",
                format!(
                    "{url:?} names {PORT_PLACEHOLDER}, but neither \"args\" nor \"env\" passes \
                     {PORT_PLACEHOLDER} to the command, so it could not know which port to \
                     listen on"
                ),
            ));
        }
        (false, true) => {
            return Err(field_error(
                "url",
                format!(
                    "\"args\" or \"env\" pass {PORT_PLACEHOLDER} to the command, but {url:?} \
                     does not name it, so the proxy would not know where the server listens"
                ),
            ));
        }
        _ => {}
    }
    let headers = string_map(server, "headers")?
        .into_iter()
        .map(|(name, value)| (name, Secret::new(value)))
        .collect();
    Ok(TransportConfig::StartedHttp(StartedHttp {
        command,
        args,
        env,
        cwd,
        url: url.clone(),
        sse,
        headers,
    }))
}

/// Checks the URL of a server the proxy starts, `{port}` and all: no other `{variable}`, a valid
/// http(s) URL once a port is in, and a loopback host (`localhost`, `127.0.0.0/8`, `[::1]`). The
/// error says which rule it broke.
pub fn check_started_url(url: &str) -> Result<(), String> {
    let mut rest = url;
    while let Some(start) = rest.find('{') {
        let after = &rest[start..];
        let end = after.find('}').map_or(after.len(), |end| end + 1);
        let variable = &after[..end];
        if variable != PORT_PLACEHOLDER {
            return Err(format!(
                "{url:?}: {variable} is not filled in by the proxy (only {PORT_PLACEHOLDER} is, \
                 with the port it picks); write the value itself"
            ));
        }
        rest = &after[end..];
    }
    let sample = url.replace(PORT_PLACEHOLDER, "1");
    let parsed = url::Url::parse(&sample).map_err(|error| format!("{url:?}: {error}"))?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(format!("{url:?}: only http and https URLs are supported"));
    }
    if !is_loopback(&parsed) {
        return Err(format!(
            "{url:?} is not on this machine; the rule for a server the proxy starts (\"command\" \
             with \"url\") is that it is reached over loopback only: localhost, 127.0.0.0/8 or \
             [::1]"
        ));
    }
    Ok(())
}

/// Whether a URL's host is loopback: `localhost`, `127.0.0.0/8` or `[::1]`.
pub fn is_loopback(url: &url::Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(host)) => host.trim_end_matches('.') == "localhost",
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn started(args: &[&str], env: &[(&str, &str)], url: &str) -> StartedHttp {
        StartedHttp {
            command: "server".into(),
            args: args.iter().map(|arg| (*arg).to_owned()).collect(),
            env: env
                .iter()
                .map(|(key, value)| ((*key).to_owned(), (*value).to_owned()))
                .collect(),
            cwd: None,
            url: url.into(),
            sse: false,
            headers: BTreeMap::new(),
        }
    }

    #[test]
    fn the_port_replaces_every_placeholder_in_args_env_values_and_the_url() {
        let server = started(
            &["--listen", "127.0.0.1:{port}", "--port={port}"],
            &[("PORT", "{port}"), ("OTHER", "x{port}y")],
            "http://localhost:{port}/mcp",
        );
        assert!(server.uses_port());
        let launch = server.launch(Some(4321)).unwrap();
        assert_eq!(launch.args, ["--listen", "127.0.0.1:4321", "--port=4321"]);
        assert_eq!(launch.env["PORT"], "4321");
        assert_eq!(launch.env["OTHER"], "x4321y");
        assert_eq!(launch.url.as_str(), "http://localhost:4321/mcp");
    }

    #[test]
    fn an_entry_without_the_placeholder_keeps_its_fixed_port() {
        let server = started(&["--http", "8931"], &[], "http://127.0.0.1:8931/mcp");
        assert!(!server.uses_port());
        let launch = server.launch(None).unwrap();
        assert_eq!(launch.url.port(), Some(8931));
        assert_eq!(launch.args, ["--http", "8931"]);
    }

    #[test]
    fn only_loopback_http_urls_with_no_other_variable_pass() {
        for good in [
            "http://localhost:{port}/mcp",
            "http://127.0.0.1:{port}/sse",
            "http://127.3.2.1:8080/",
            "https://[::1]:{port}/mcp",
            "http://LOCALHOST:{port}",
        ] {
            assert_eq!(check_started_url(good), Ok(()), "{good}");
        }
        let not_loopback = check_started_url("http://example.com:{port}/mcp").unwrap_err();
        assert!(
            not_loopback.contains("not on this machine") && not_loopback.contains("loopback only"),
            "{not_loopback}"
        );
        assert!(check_started_url("http://0.0.0.0:{port}/mcp").is_err());
        assert!(check_started_url("http://192.168.1.2:{port}/mcp").is_err());
        let variable = check_started_url("http://localhost:{port}/{path}").unwrap_err();
        assert!(variable.contains("{path} is not filled in"), "{variable}");
        assert!(
            check_started_url("ftp://localhost:{port}/")
                .unwrap_err()
                .contains("only http and https")
        );
        assert!(check_started_url("http://localhost:{port/mcp").is_err());
    }

    #[test]
    fn the_target_shows_the_command_and_the_url_as_written() {
        let server = started(
            &["--http", "{port}"],
            &[],
            "http://me:pw@127.0.0.1:{port}/mcp?key=secret",
        );
        assert_eq!(
            server.target(),
            "server --http {port} (http://me:[redacted]@127.0.0.1:{port}/mcp?[redacted])"
        );
        let plain = started(&[], &[("PORT", "{port}")], "http://[::1]:{port}/mcp");
        assert_eq!(plain.target(), "server (http://[::1]:{port}/mcp)");
    }
}
