//! The security policy (see SECURITY.md for the threat model). Server configs from an untrusted
//! source — the plugged.in App — are checked before anything is started or dialled: the command
//! policy (an allow-list, no shell metacharacters, bounded arguments, clean environment), the URL
//! policy (http(s) only, no loopback/private/link-local/metadata destinations or blocked ports,
//! re-checked after DNS resolution and on every redirect by [`net`]) and the header rules. The
//! local config file is trusted unless `--strict-commands` / `--strict-urls` (or its own
//! `"security"` object) opts it in. [`Secret`](crate::secret::Secret) keeps secrets out of
//! logs; [`text`] redacts and bounds error text for clients and sanitises what downstream
//! servers name and describe.

mod command;
pub mod net;
pub mod text;

use std::fmt;

use serde_json::Value;

pub use command::AllowedPackage;

/// Where a server's configuration came from: what the policy trusts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Origin {
    /// The local config file its owner wrote: trusted unless `--strict-commands` asks otherwise.
    #[default]
    LocalFile,
    /// The plugged.in App's `/api/mcp-servers`: untrusted, checked by the security policy.
    App,
}

/// The commands an untrusted server may run: the plugged.in App's own list (exact match).
pub const DEFAULT_ALLOWED_COMMANDS: &[&str] = &[
    "npx", "pnpm", "uvx", "dnx", "uv", "uvenv", "node", "python", "python3",
];

/// Characters refused in a command: they mean something to a shell (we never use one, but a
/// command carrying them is not one of the allowed plain names either).
const COMMAND_METACHARACTERS: &[char] = &[
    ';', '&', '|', '`', '$', '(', ')', '{', '}', '[', ']', '<', '>', '\\', '\'', '"', '*', '?',
    '!', '~', '#', '\n', '\r', '\t', ' ',
];

/// The longest argument of an untrusted server, in characters.
pub const MAX_ARG_CHARS: usize = 4096;

/// The longest header value, in bytes.
pub const MAX_HEADER_VALUE_BYTES: usize = 8192;

/// Ports the App refuses unless local targets are allowed: remote shells, mail, DNS, databases.
pub const BLOCKED_PORTS: &[u16] = &[
    22, 23, 25, 53, 110, 143, 993, 995, 1433, 1521, 3306, 5432, 6379, 27017,
];

/// Header names never sent to a downstream server: they would let a config impersonate a
/// client, a browser page or a proxy hop.
const FORBIDDEN_HEADERS: &[&str] = &[
    "host",
    "cookie",
    "set-cookie",
    "x-real-ip",
    "origin",
    "referer",
    "forwarded",
];

/// The largest message accepted from a downstream server unless configured otherwise: 16 MiB.
pub const DEFAULT_MAX_MESSAGE_BYTES: usize = 16 * 1024 * 1024;

/// Notifications a server may send per second (sustained) before they are dropped.
pub const DEFAULT_NOTIFICATIONS_PER_SECOND: u32 = 500;

/// The security settings: the config file's `"security"` object, with `--strict-commands` and
/// `--strict-urls` on top.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecuritySettings {
    /// Apply the command policy to servers from the local file too.
    pub strict_commands: bool,
    /// Apply the URL and header policy to servers from the local file too.
    pub strict_urls: bool,
    /// Commands allowed besides [`DEFAULT_ALLOWED_COMMANDS`].
    pub extra_commands: Vec<String>,
    /// When set, the only packages runners (and `python -m`) may run.
    pub allowed_packages: Option<Vec<AllowedPackage>>,
    /// Arguments the command policy would refuse, accepted as written (a flag by its name, with
    /// any value).
    pub allowed_args: Vec<String>,
    /// Environment variable names the command policy would refuse, accepted.
    pub allowed_env: Vec<String>,
    /// Permit loopback and private destinations (never cloud metadata) and the blocked ports.
    pub allow_local_targets: bool,
    /// The largest message accepted from a downstream server, in bytes.
    pub max_message_bytes: usize,
    /// Notifications per second a server may send; beyond a burst of as many, they are dropped.
    pub notifications_per_second: u32,
}

impl Default for SecuritySettings {
    fn default() -> SecuritySettings {
        SecuritySettings {
            strict_commands: false,
            strict_urls: false,
            extra_commands: Vec::new(),
            allowed_packages: None,
            allowed_args: Vec::new(),
            allowed_env: Vec::new(),
            allow_local_targets: false,
            max_message_bytes: DEFAULT_MAX_MESSAGE_BYTES,
            notifications_per_second: DEFAULT_NOTIFICATIONS_PER_SECOND,
        }
    }
}

/// A list of non-empty strings, or an error naming `field`.
fn strings(value: &Value, field: &str) -> Result<Vec<String>, (String, String)> {
    let items = value
        .as_array()
        .ok_or_else(|| (field.to_owned(), "must be an array of strings".to_owned()))?;
    items
        .iter()
        .enumerate()
        .map(|(index, item)| match item {
            Value::String(text) if !text.is_empty() => Ok(text.clone()),
            _ => Err((
                format!("{field}[{index}]"),
                "must be a non-empty string".to_owned(),
            )),
        })
        .collect()
}

impl SecuritySettings {
    /// Parses the config file's `"security"` object; errors name the field.
    pub fn parse(value: Option<&Value>) -> Result<SecuritySettings, (String, String)> {
        let mut settings = SecuritySettings::default();
        let Some(value) = value.filter(|value| !value.is_null()) else {
            return Ok(settings);
        };
        let Value::Object(object) = value else {
            return Err(("security".into(), "must be an object".into()));
        };
        let field = |key: &str| format!("security.{key}");
        for (key, value) in object {
            match key.as_str() {
                "strictCommands" | "strictUrls" | "allowLocalTargets" => {
                    let Value::Bool(flag) = value else {
                        return Err((field(key), "must be true or false".into()));
                    };
                    match key.as_str() {
                        "strictCommands" => settings.strict_commands = *flag,
                        "strictUrls" => settings.strict_urls = *flag,
                        _ => settings.allow_local_targets = *flag,
                    }
                }
                "allowedCommands" => {
                    let Value::Array(items) = value else {
                        return Err((field(key), "must be an array of command names".into()));
                    };
                    for (index, item) in items.iter().enumerate() {
                        match item {
                            Value::String(command)
                                if !command.is_empty()
                                    && !command.contains(COMMAND_METACHARACTERS) =>
                            {
                                settings.extra_commands.push(command.clone());
                            }
                            _ => {
                                return Err((
                                    format!("security.allowedCommands[{index}]"),
                                    "must be a command name without shell metacharacters".into(),
                                ));
                            }
                        }
                    }
                }
                "allowedPackages" => {
                    let mut packages = Vec::new();
                    for (index, text) in strings(value, &field(key))?.into_iter().enumerate() {
                        let Some(package) = AllowedPackage::parse(&text) else {
                            return Err((
                                format!("security.allowedPackages[{index}]"),
                                "must be a package name, optionally with @version".into(),
                            ));
                        };
                        packages.push(package);
                    }
                    settings.allowed_packages = Some(packages);
                }
                "allowedArgs" => {
                    settings.allowed_args = strings(value, &field(key))?;
                }
                "allowedEnv" => {
                    settings.allowed_env = strings(value, &field(key))?;
                }
                "maxMessageBytes" | "notificationsPerSecond" => {
                    let number = value.as_u64().filter(|n| *n > 0);
                    let Some(number) = number else {
                        return Err((field(key), "must be a positive integer".into()));
                    };
                    if key == "maxMessageBytes" {
                        settings.max_message_bytes = usize::try_from(number).unwrap_or(usize::MAX);
                    } else {
                        settings.notifications_per_second =
                            u32::try_from(number).unwrap_or(u32::MAX);
                    }
                }
                other => {
                    return Err((
                        field(other),
                        "unknown key; expected strictCommands, strictUrls, allowedCommands, \
                         allowedPackages, allowedArgs, allowedEnv, allowLocalTargets, \
                         maxMessageBytes or notificationsPerSecond"
                            .into(),
                    ));
                }
            }
        }
        Ok(settings)
    }

    /// Whether the command policy applies to a server from `origin`.
    pub fn commands_strict(&self, origin: Origin) -> bool {
        origin == Origin::App || self.strict_commands
    }

    /// The URL rules for a server from `origin`, or `None` when its URLs are trusted.
    pub fn url_rules(&self, origin: Origin) -> Option<UrlRules> {
        (origin == Origin::App || self.strict_urls).then_some(UrlRules {
            allow_local: self.allow_local_targets,
        })
    }

    /// The command policy for a stdio server's command line and environment.
    pub fn check_command<'a>(
        &self,
        command: &str,
        args: &[String],
        env: impl IntoIterator<Item = (&'a String, &'a String)> + Clone,
    ) -> Result<(), Refusal> {
        if let Some(bad) = command
            .chars()
            .find(|ch| COMMAND_METACHARACTERS.contains(ch) || ch.is_control())
        {
            return Err(Refusal::new(
                "command-metacharacter",
                format!("the command {command:?} contains {bad:?}"),
            ));
        }
        let allowed = DEFAULT_ALLOWED_COMMANDS.contains(&command)
            || self.extra_commands.iter().any(|extra| extra == command);
        if !allowed {
            return Err(Refusal::new(
                "command-not-allowed",
                format!(
                    "{command:?} is not an allowed command ({}, and security.allowedCommands)",
                    DEFAULT_ALLOWED_COMMANDS.join(", ")
                ),
            ));
        }
        for (index, arg) in args.iter().enumerate() {
            if arg.contains('\0') {
                return Err(Refusal::new(
                    "arg-nul",
                    format!("args[{index}] contains NUL"),
                ));
            }
            if arg.chars().count() > MAX_ARG_CHARS {
                return Err(Refusal::new(
                    "arg-too-long",
                    format!("args[{index}] is longer than {MAX_ARG_CHARS} characters"),
                ));
            }
        }
        for (key, value) in env.clone() {
            let valid_key = key
                .chars()
                .next()
                .is_some_and(|first| first.is_ascii_alphabetic() || first == '_')
                && key
                    .chars()
                    .all(|ch| ch.is_ascii_alphanumeric() || ch == '_');
            if !valid_key {
                return Err(Refusal::new(
                    "env-key",
                    format!("the environment variable name {key:?} is not [A-Za-z_][A-Za-z0-9_]*"),
                ));
            }
            if value.contains(['\0', '\r', '\n']) {
                return Err(Refusal::new(
                    "env-value",
                    format!("the value of {key} contains NUL, CR or LF"),
                ));
            }
        }
        command::check(self, command, args, env)
    }
}

/// The URL policy for one server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UrlRules {
    /// Loopback and private destinations and the blocked ports are permitted (metadata never).
    pub allow_local: bool,
}

/// Checks a URL without resolving it: scheme, IP literals, metadata host names, ports. Host names
/// are checked again after resolution on every connection ([`net::FilteringResolver`]).
pub fn check_url(url: &url::Url, rules: &UrlRules) -> Result<(), Refusal> {
    if !matches!(url.scheme(), "http" | "https") {
        return Err(Refusal::new(
            "url-scheme",
            format!("{}: only http and https", url.scheme()),
        ));
    }
    match url.host() {
        None => return Err(Refusal::new("url-host", "the URL has no host")),
        Some(url::Host::Ipv4(ip)) => {
            if let Some(refusal) = net::address_refusal(ip.into(), rules.allow_local) {
                return Err(refusal);
            }
        }
        Some(url::Host::Ipv6(ip)) => {
            if let Some(refusal) = net::address_refusal(ip.into(), rules.allow_local) {
                return Err(refusal);
            }
        }
        Some(url::Host::Domain(host)) => {
            if let Some(refusal) = net::metadata_host(host) {
                return Err(refusal);
            }
        }
    }
    let port = url.port_or_known_default().unwrap_or(0);
    if !rules.allow_local && BLOCKED_PORTS.contains(&port) {
        return Err(Refusal::new(
            "url-blocked-port",
            format!("port {port} is blocked (set security.allowLocalTargets to permit it)"),
        ));
    }
    Ok(())
}

/// Checks one configured header: a valid token name, not one that impersonates a client or a
/// proxy hop, a value without CR, LF or NUL and at most 8 KB.
pub fn check_header(name: &str, value: &str) -> Result<(), Refusal> {
    let token = |ch: char| ch.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~".contains(ch);
    if name.is_empty() || !name.chars().all(token) {
        return Err(Refusal::new(
            "header-name",
            format!("{name:?} is not a valid header name"),
        ));
    }
    let lower = name.to_ascii_lowercase();
    if FORBIDDEN_HEADERS.contains(&lower.as_str()) || lower.starts_with("x-forwarded-") {
        return Err(Refusal::new(
            "header-forbidden",
            format!("the header {name} may not be configured"),
        ));
    }
    if value.contains(['\r', '\n', '\0']) {
        return Err(Refusal::new(
            "header-value",
            format!("the value of {name} contains CR, LF or NUL"),
        ));
    }
    if value.len() > MAX_HEADER_VALUE_BYTES {
        return Err(Refusal::new(
            "header-too-long",
            format!("the value of {name} is longer than {MAX_HEADER_VALUE_BYTES} bytes"),
        ));
    }
    Ok(())
}

/// A server refused by the security policy: the rule and what broke it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub rule: &'static str,
    pub detail: String,
}

impl Refusal {
    pub fn new(rule: &'static str, detail: impl Into<String>) -> Refusal {
        Refusal {
            rule,
            detail: detail.into(),
        }
    }

    /// The same refusal, for a redirect's destination.
    pub fn redirected(self) -> Refusal {
        Refusal {
            rule: self.rule,
            detail: format!("redirect to {}", self.detail),
        }
    }
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "refused by the security policy (rule {}): {}",
            self.rule, self.detail
        )
    }
}

impl std::error::Error for Refusal {}

#[cfg(test)]
mod tests;

/// Writes `bytes` to `path` readable by the owner only (it holds secrets: tokens, servers' env
/// and headers), replacing the file atomically: a temporary file beside it, synced, then renamed,
/// so a crash leaves the old file or the new one, never half of one.
pub fn write_private(path: &std::path::Path, bytes: &[u8]) -> std::io::Result<()> {
    let temporary = path.with_extension("tmp");
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(&temporary)?;
    std::io::Write::write_all(&mut file, bytes)?;
    file.sync_all()?;
    std::fs::rename(&temporary, path)
}
