//! The policy's rules through configs as the App or a strict local file would give them; the
//! command-line tables of the interpreters and runners are in `command`.

mod command;

use super::*;
use crate::config::{Config, ServerConfig};
use std::path::Path;

fn server(origin: Origin, json: &str) -> ServerConfig {
    let config = Config::parse(
        Path::new("test.json"),
        &format!(r#"{{"mcpServers": {{"s": {json}}}}}"#),
    )
    .unwrap();
    let mut server = config.servers["s"].clone();
    server.origin = origin;
    server
}

fn rule(settings: &SecuritySettings, origin: Origin, json: &str) -> Option<&'static str> {
    server(origin, json)
        .check(settings)
        .err()
        .map(|refusal| refusal.rule)
}

#[test]
fn the_local_file_is_trusted_unless_strict() {
    let lax = SecuritySettings::default();
    assert_eq!(
        rule(
            &lax,
            Origin::LocalFile,
            r#"{"command": "bash", "args": ["-c", "x"]}"#
        ),
        None
    );
    assert_eq!(
        rule(
            &lax,
            Origin::LocalFile,
            r#"{"url": "http://127.0.0.1:1/mcp"}"#
        ),
        None
    );
    assert_eq!(
        rule(&lax, Origin::App, r#"{"command": "bash"}"#),
        Some("command-not-allowed")
    );
    let strict = SecuritySettings {
        strict_commands: true,
        strict_urls: true,
        ..SecuritySettings::default()
    };
    assert_eq!(
        rule(&strict, Origin::LocalFile, r#"{"command": "bash"}"#),
        Some("command-not-allowed")
    );
    assert_eq!(
        rule(
            &strict,
            Origin::LocalFile,
            r#"{"url": "http://127.0.0.1:1/mcp"}"#
        ),
        Some("url-loopback")
    );
}

#[test]
fn command_rules() {
    let settings = SecuritySettings {
        extra_commands: vec!["deno".into()],
        ..SecuritySettings::default()
    };
    let app = |json: &str| rule(&settings, Origin::App, json);
    assert_eq!(
        app(r#"{"command": "npx", "args": ["-y", "server"], "env": {"A_1": "x"}}"#),
        None
    );
    assert_eq!(app(r#"{"command": "deno"}"#), None);
    assert_eq!(
        app(r#"{"command": "/usr/bin/npx"}"#),
        Some("command-not-allowed")
    );
    assert_eq!(
        app(r#"{"command": "npx;rm"}"#),
        Some("command-metacharacter")
    );
    assert_eq!(
        app(r#"{"command": "npx $(id)"}"#),
        Some("command-metacharacter")
    );
    let long = "a".repeat(MAX_ARG_CHARS + 1);
    assert_eq!(
        app(&format!(r#"{{"command": "npx", "args": ["{long}"]}}"#)),
        Some("arg-too-long")
    );
    assert_eq!(
        app(&format!(
            r#"{{"command": "npx", "args": ["pkg", "{}"]}}"#,
            "é".repeat(MAX_ARG_CHARS)
        )),
        None
    );
    assert_eq!(
        app(r#"{"command": "npx", "env": {"1A": "x"}}"#),
        Some("env-key")
    );
    assert_eq!(
        app(r#"{"command": "npx", "env": {"A-B": "x"}}"#),
        Some("env-key")
    );
    assert_eq!(
        app(r#"{"command": "npx", "env": {"A": "x\ny"}}"#),
        Some("env-value")
    );
}

#[test]
fn url_rules() {
    let settings = SecuritySettings::default();
    let app = |json: &str| rule(&settings, Origin::App, json);
    assert_eq!(app(r#"{"url": "https://example.com/mcp"}"#), None);
    assert_eq!(
        app(r#"{"url": "http://10.0.0.5/mcp"}"#),
        Some("url-private")
    );
    assert_eq!(
        app(r#"{"url": "http://[::1]:8080/mcp"}"#),
        Some("url-loopback")
    );
    assert_eq!(
        app(r#"{"url": "http://169.254.169.254/latest"}"#),
        Some("url-metadata")
    );
    assert_eq!(
        app(r#"{"url": "http://metadata.google.internal/x"}"#),
        Some("url-metadata")
    );
    assert_eq!(
        app(r#"{"url": "http://example.com:6379/mcp"}"#),
        Some("url-blocked-port")
    );
    assert_eq!(
        app(r#"{"url": "http://2130706433/mcp"}"#),
        Some("url-loopback")
    );
    let local = SecuritySettings {
        allow_local_targets: true,
        ..SecuritySettings::default()
    };
    let app = |json: &str| rule(&local, Origin::App, json);
    assert_eq!(app(r#"{"url": "http://127.0.0.1:5432/mcp"}"#), None);
    assert_eq!(
        app(r#"{"url": "http://169.254.169.254/latest"}"#),
        Some("url-metadata")
    );
}

#[test]
fn header_rules() {
    let settings = SecuritySettings::default();
    let app = |headers: &str| {
        rule(
            &settings,
            Origin::App,
            &format!(r#"{{"url": "https://example.com/mcp", "headers": {headers}}}"#),
        )
    };
    assert_eq!(
        app(r#"{"Authorization": "Bearer x", "X-Api-Key": "k"}"#),
        None
    );
    assert_eq!(app(r#"{"Host": "internal"}"#), Some("header-forbidden"));
    assert_eq!(app(r#"{"cookie": "a=b"}"#), Some("header-forbidden"));
    assert_eq!(
        app(r#"{"X-Forwarded-For": "1.2.3.4"}"#),
        Some("header-forbidden")
    );
    assert_eq!(app(r#"{"Bad Name": "x"}"#), Some("header-name"));
    assert_eq!(app(r#"{"X-A": "a\r\nb"}"#), Some("header-value"));
    let long = "v".repeat(MAX_HEADER_VALUE_BYTES + 1);
    assert_eq!(
        app(&format!(r#"{{"X-A": "{long}"}}"#)),
        Some("header-too-long")
    );
}

#[test]
fn settings_parse_and_name_their_field() {
    let parsed = SecuritySettings::parse(Some(&serde_json::json!({
        "strictCommands": true, "allowedCommands": ["deno"], "allowLocalTargets": true,
        "maxMessageBytes": 1000, "notificationsPerSecond": 5
    })))
    .unwrap();
    assert!(parsed.strict_commands && parsed.allow_local_targets && !parsed.strict_urls);
    assert_eq!(parsed.extra_commands, ["deno"]);
    assert_eq!(parsed.max_message_bytes, 1000);
    assert_eq!(parsed.notifications_per_second, 5);
    let error = SecuritySettings::parse(Some(&serde_json::json!({"allowedCommands": ["sh -c"]})))
        .unwrap_err();
    assert_eq!(error.0, "security.allowedCommands[0]");
    let error = SecuritySettings::parse(Some(&serde_json::json!({"strict": true}))).unwrap_err();
    assert_eq!(error.0, "security.strict");
}
