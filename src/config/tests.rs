use super::*;

fn parse(text: &str) -> Result<Config, ConfigError> {
    Config::parse(Path::new("test.json"), text)
}

#[test]
fn parses_the_three_transports_and_options() {
    let config = parse(
        r#"{"mcpServers": {
            "time": {"command": "uvx", "args": ["mcp-server-time", 3], "env": {"TZ": "UTC", "PORT": 8080}, "cwd": "/tmp"},
            "legacy": {"url": "http://127.0.0.1:3001/sse"},
            "remote": {"url": "https://example.com/mcp", "type": "http", "headers": {"Authorization": "Bearer x"},
                       "timeout": 5, "disabled": true, "tools": {"allow": ["get_*"], "deny": ["get_secret"]},
                       "instructions": [{"role": "system", "content": "Be careful"}, "Read only"]}
        }}"#,
    )
    .unwrap();
    let time = &config.servers["time"];
    assert_eq!(
        time.transport,
        TransportConfig::Stdio {
            command: "uvx".into(),
            args: vec!["mcp-server-time".into(), "3".into()],
            env: [("PORT".into(), "8080".into()), ("TZ".into(), "UTC".into())].into(),
            cwd: Some("/tmp".into()),
        }
    );
    assert_eq!(time.timeout, DEFAULT_TIMEOUT);
    assert!(matches!(
        config.servers["legacy"].transport,
        TransportConfig::Sse { .. }
    ));
    let remote = &config.servers["remote"];
    assert!(matches!(
        remote.transport,
        TransportConfig::StreamableHttp { .. }
    ));
    assert!(remote.disabled);
    assert_eq!(remote.timeout, Duration::from_secs(5));
    assert!(remote.tools.permits("get_time"));
    assert!(!remote.tools.permits("get_secret"));
    assert!(!remote.tools.permits("set_time"));
    let instructions = remote.instructions.as_ref().unwrap();
    assert_eq!(instructions[0].text, "System: Be careful");
    assert_eq!(instructions[1].text, "Read only");
}

#[test]
fn accepts_vs_code_servers_spelling() {
    let config = parse(r#"{"servers": {"a": {"type": "stdio", "command": "x"}}}"#).unwrap();
    assert!(config.servers.contains_key("a"));
}

#[test]
fn errors_name_file_server_and_field() {
    let error = parse(r#"{"mcpServers": {"bad": {"command": "x", "args": "nope"}}}"#).unwrap_err();
    assert_eq!(
        error.to_string(),
        "config test.json: server \"bad\": field \"args\": must be an array of strings"
    );
    let error = parse(r#"{"mcpServers": {"web": {"url": "ftp://x"}}}"#).unwrap_err();
    assert_eq!(error.server.as_deref(), Some("web"));
    assert_eq!(error.field.as_deref(), Some("url"));
    let error = parse(r#"{"mcpServers": {"t": {"command": "x", "timeout": -1}}}"#).unwrap_err();
    assert_eq!(error.field.as_deref(), Some("timeout"));
    let error = parse(r#"{"mcpServers": {"e": {}}}"#).unwrap_err();
    assert!(error.to_string().contains("needs \"command\""), "{error}");
}

#[test]
fn invalid_json_reports_position() {
    let error = parse("{\"mcpServers\": {").unwrap_err();
    assert!(error.message.contains("line 1"), "{error}");
    assert!(error.server.is_none());
}

#[test]
fn missing_servers_object_is_an_error() {
    let error = parse(r#"{"other": {}}"#).unwrap_err();
    assert!(error.message.contains("mcpServers"), "{error}");
}

#[test]
fn a_servers_protocol_defaults_to_auto() {
    let config = parse(
        r#"{"mcpServers": {
            "plain": {"command": "x"},
            "pinned": {"command": "x", "protocol": "legacy"},
            "new": {"url": "http://127.0.0.1:1/mcp", "protocol": "modern"}
        }}"#,
    )
    .unwrap();
    assert_eq!(config.servers["plain"].protocol, Protocol::Auto);
    assert_eq!(config.servers["pinned"].protocol, Protocol::Legacy);
    assert_eq!(config.servers["new"].protocol, Protocol::Modern);
    let error = parse(r#"{"mcpServers": {"s": {"command": "x", "protocol": "newest"}}}"#)
        .unwrap_err()
        .to_string();
    assert!(error.contains("unknown protocol \"newest\""), "{error}");
}

#[test]
fn a_servers_scope_is_replica_unless_fleet_is_asked_for_one_the_proxy_runs() {
    let config = parse(
        r#"{"mcpServers": {
            "plain": {"command": "x"},
            "own": {"command": "x", "scope": "replica"},
            "shared": {"command": "x", "scope": "fleet"},
            "started": {"command": "x", "args": ["--port", "{port}"],
                        "url": "http://127.0.0.1:{port}/mcp", "scope": "fleet"},
            "remote": {"url": "http://127.0.0.1:1/mcp", "scope": "replica"}
        }}"#,
    )
    .unwrap();
    assert_eq!(config.servers["plain"].scope, Scope::Replica);
    assert_eq!(config.servers["own"].scope, Scope::Replica);
    assert_eq!(config.servers["shared"].scope, Scope::Fleet);
    assert_eq!(config.servers["started"].scope, Scope::Fleet);
    assert_eq!(config.servers["remote"].scope, Scope::Replica);
    let error =
        parse(r#"{"mcpServers": {"r": {"url": "http://127.0.0.1:1/mcp", "scope": "fleet"}}}"#)
            .unwrap_err()
            .to_string();
    assert_eq!(
        error,
        "config test.json: server \"r\": field \"scope\": \"fleet\" is for a server the proxy \
         runs itself (one with \"command\"); a server reached by its URL is already one server \
         for every replica: leave \"scope\" out"
    );
    let error = parse(r#"{"mcpServers": {"s": {"command": "x", "scope": "everywhere"}}}"#)
        .unwrap_err()
        .to_string();
    assert!(error.contains("unknown scope \"everywhere\""), "{error}");
}

#[test]
fn parses_oauth_settings() {
    let config = parse(
        r#"{"mcpServers": {"remote": {"url": "https://example.com/mcp",
            "oauth": {"clientId": "me", "clientSecret": "s", "scopes": "read write", "redirectPort": 8977}}}}"#,
    )
    .unwrap();
    let oauth = &config.servers["remote"].oauth;
    assert_eq!(oauth.client_id.as_deref(), Some("me"));
    assert_eq!(oauth.client_secret.as_ref().map(|s| s.expose()), Some("s"));
    assert_eq!(
        oauth.scopes.as_deref(),
        Some(&["read".to_owned(), "write".to_owned()][..])
    );
    assert_eq!(oauth.redirect_port, 8977);
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("key.pem");
    std::fs::write(&key, "PEM").unwrap();
    let text = format!(
        r#"{{"mcpServers": {{"m2m": {{"url": "https://example.com/mcp",
            "oauth": {{"clientId": "me", "privateKeyFile": "{}", "assertionFile": "/run/token"}}}}}}}}"#,
        key.display()
    );
    let oauth = &parse(&text).unwrap().servers["m2m"].oauth;
    assert_eq!(
        oauth.private_key_pem.as_ref().map(|s| s.expose()),
        Some("PEM")
    );
    assert_eq!(
        oauth.assertion_file.as_deref(),
        Some(Path::new("/run/token"))
    );
    let none = parse(r#"{"mcpServers": {"remote": {"url": "https://example.com/mcp"}}}"#).unwrap();
    assert_eq!(none.servers["remote"].oauth, Default::default());
    for (bad, field) in [
        (r#"{"clientSecret": "s"}"#, "oauth.clientId"),
        (r#"{"redirectPort": 70000}"#, "oauth.redirectPort"),
        (r#"{"scopes": [1]}"#, "oauth.scopes"),
        (r#"{"clientid": "typo"}"#, "oauth.clientid"),
        (
            r#"{"clientId": "me", "privateKeyFile": "/nonexistent/key.pem"}"#,
            "cannot read /nonexistent/key.pem",
        ),
    ] {
        let text = format!(
            r#"{{"mcpServers": {{"remote": {{"url": "https://example.com/mcp", "oauth": {bad}}}}}}}"#
        );
        let error = parse(&text).unwrap_err().to_string();
        assert!(error.contains(field), "{bad}: {error}");
    }
}

#[test]
fn roots_take_paths_uris_and_named_objects() {
    let config = parse(
        r#"{"mcpServers": {"files": {"command": "x", "roots": [
            "/srv/data",
            "file:///home/me/project",
            {"uri": "/srv/with space", "name": "Shared"},
            {"uri": "file:///opt"}
        ]}}}"#,
    )
    .unwrap();
    let roots = &config.servers["files"].roots;
    let root = |uri: &str, name: Option<&str>| RootConfig {
        uri: uri.into(),
        name: name.map(str::to_owned),
    };
    assert_eq!(
        roots,
        &[
            root("file:///srv/data", None),
            root("file:///home/me/project", None),
            root("file:///srv/with%20space", Some("Shared")),
            root("file:///opt", None),
        ]
    );
    let none = parse(r#"{"mcpServers": {"files": {"command": "x"}}}"#).unwrap();
    assert!(none.servers["files"].roots.is_empty());
}

#[test]
fn a_home_relative_root_is_expanded() {
    let Some(home) = dirs::home_dir() else {
        return;
    };
    let config =
        parse(r#"{"mcpServers": {"files": {"command": "x", "roots": ["~/project"]}}}"#).unwrap();
    let expected = url::Url::from_file_path(home.join("project")).unwrap();
    assert_eq!(config.servers["files"].roots[0].uri, expected.as_str());
}

#[test]
fn bad_roots_name_the_entry_and_why() {
    let error = |roots: &str| {
        parse(&format!(
            r#"{{"mcpServers": {{"files": {{"command": "x", "roots": {roots}}}}}}}"#
        ))
        .unwrap_err()
        .to_string()
    };
    assert_eq!(
        error(r#""/srv""#),
        "config test.json: server \"files\": field \"roots\": must be an array of paths, \
         file:// URIs or {\"uri\", \"name\"} objects"
    );
    assert_eq!(
        error(r#"["/srv", "data"]"#),
        "config test.json: server \"files\": field \"roots[1]\": \"data\" is a relative path; \
         write an absolute path, a ~/ path or a file:// URI"
    );
    assert_eq!(
        error(r#"["https://example.com/x"]"#),
        "config test.json: server \"files\": field \"roots[0]\": \"https://example.com/x\": \
         roots are file:// URIs (or paths), not https: URIs"
    );
    assert_eq!(
        error(r#"[{"uri": "/srv", "label": "x"}]"#),
        "config test.json: server \"files\": field \"roots[0].label\": unknown field; \
         expected \"uri\" and \"name\""
    );
    assert_eq!(
        error(r#"[{"name": "x"}]"#),
        "config test.json: server \"files\": field \"roots[0].uri\": must be a path or a \
         file:// URI"
    );
    assert_eq!(
        error(r#"[{"uri": "/srv", "name": ""}]"#),
        "config test.json: server \"files\": field \"roots[0].name\": must be a non-empty string"
    );
    assert_eq!(
        error("[3]"),
        "config test.json: server \"files\": field \"roots[0]\": must be a path, a file:// URI \
         or a {\"uri\", \"name\"} object"
    );
}

#[test]
fn relative_command_paths_and_cwd_are_taken_from_the_config_files_directory() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("mcp.json");
    std::fs::write(
        &file,
        r#"{"mcpServers": {
            "local": {"command": "./bin/server", "args": ["./data"], "cwd": "work"},
            "up":    {"command": "../tools/server"},
            "bare":  {"command": "npx", "args": ["-y", "pkg"]},
            "fixed": {"command": "/usr/bin/server", "cwd": "/srv"}
        }}"#,
    )
    .unwrap();
    let config = Config::load(&file).unwrap();
    let stdio = |name: &str| match &config.servers[name].transport {
        TransportConfig::Stdio {
            command, args, cwd, ..
        } => (command.clone(), args.clone(), cwd.clone()),
        other => panic!("{name} is not stdio: {other:?}"),
    };
    let base = std::path::absolute(dir.path()).unwrap();
    assert_eq!(
        stdio("local"),
        (
            base.join("bin/server").display().to_string(),
            vec!["./data".to_owned()],
            Some(base.join("work"))
        )
    );
    assert_eq!(
        stdio("up").0,
        base.join("../tools/server").display().to_string()
    );
    assert_eq!(stdio("bare").0, "npx");
    assert_eq!(
        stdio("fixed"),
        (
            "/usr/bin/server".to_owned(),
            Vec::new(),
            Some("/srv".into())
        )
    );
}

#[test]
fn environment_references_resolve_in_every_field_that_takes_them() {
    let lookup = |name: &str| match name {
        "TOKEN" => Some("t0k3n".to_owned()),
        "BIN" => Some("/opt/bin".to_owned()),
        _ => None,
    };
    let config = Config::parse_with_env(
        Path::new("test.json"),
        r#"{"mcpServers": {
            "stdio": {"command": "${BIN}/server", "args": ["--token", "${TOKEN}", "${MODE:-fast}"],
                      "env": {"KEY": "${TOKEN}", "LITERAL": "$${TOKEN}"}, "cwd": "${HOME_DIR:-/tmp}"},
            "http": {"url": "https://${HOST:-example.com}/mcp", "headers": {"Authorization": "Bearer ${TOKEN}"}}
        }}"#,
        &lookup,
    )
    .unwrap();
    let TransportConfig::Stdio {
        command,
        args,
        env,
        cwd,
    } = &config.servers["stdio"].transport
    else {
        panic!("stdio expected");
    };
    assert_eq!(command, "/opt/bin/server");
    assert_eq!(args, &["--token", "t0k3n", "fast"]);
    assert_eq!(env["KEY"], "t0k3n");
    assert_eq!(env["LITERAL"], "${TOKEN}");
    assert_eq!(cwd.as_deref(), Some(Path::new("/tmp")));
    let TransportConfig::StreamableHttp { url, headers } = &config.servers["http"].transport else {
        panic!("http expected");
    };
    assert_eq!(url.as_str(), "https://example.com/mcp");
    assert_eq!(headers["Authorization"].expose(), "Bearer t0k3n");
}

#[test]
fn a_missing_variable_is_an_error_naming_server_field_and_variable() {
    let error = Config::parse_with_env(
        Path::new("test.json"),
        r#"{"mcpServers": {"gh": {"command": "x", "env": {"GITHUB_TOKEN": "${GITHUB_TOKEN}"}}}}"#,
        &|_| None,
    )
    .unwrap_err();
    assert_eq!(error.server.as_deref(), Some("gh"));
    assert_eq!(error.field.as_deref(), Some("env.GITHUB_TOKEN"));
    assert!(error.message.contains("GITHUB_TOKEN is not set"), "{error}");
    let error = parse(r#"{"mcpServers": {"v": {"command": "x", "args": ["${input:token}"]}}}"#)
        .unwrap_err();
    assert_eq!(error.field.as_deref(), Some("args[0]"));
    assert!(
        error.message.contains("not an environment reference"),
        "{error}"
    );
}

#[test]
fn an_env_file_gives_variables_to_references_and_to_a_stdio_servers_environment() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("secrets.env"),
        "API_KEY=from-file\nEXTRA=1\n",
    )
    .unwrap();
    let config = Config::parse_with_env(
        &dir.path().join("mcp.json"),
        r#"{"mcpServers": {
            "s": {"command": "x", "envFile": "secrets.env", "env": {"EXTRA": "mine"}, "args": ["${API_KEY}"]},
            "h": {"url": "https://example.com/mcp", "envFile": "secrets.env", "headers": {"X-Key": "${API_KEY}"}},
            "r": {"command": "npx", "registry": {"name": "io.github.x/y", "version": "1.0.0"}}
        }}"#,
        &|name| (name == "API_KEY").then(|| "from-environment".to_owned()),
    )
    .unwrap();
    let TransportConfig::Stdio { args, env, .. } = &config.servers["s"].transport else {
        panic!("stdio expected");
    };
    assert_eq!(args, &["from-file"], "the env file is looked up first");
    assert_eq!(env["API_KEY"], "from-file");
    assert_eq!(env["EXTRA"], "mine", "the entry's own env wins");
    let TransportConfig::StreamableHttp { headers, .. } = &config.servers["h"].transport else {
        panic!("http expected");
    };
    assert_eq!(headers["X-Key"].expose(), "from-file");
    assert_eq!(config.servers["s"].origin, Origin::LocalFile);
    assert_eq!(config.servers["r"].origin, Origin::Registry);
    let error = Config::parse(
        &dir.path().join("mcp.json"),
        r#"{"mcpServers": {"s": {"command": "x", "envFile": "missing.env"}}}"#,
    )
    .unwrap_err();
    assert_eq!(error.field.as_deref(), Some("envFile"));
}

#[test]
fn a_command_with_a_url_is_a_server_the_proxy_starts_and_reaches_over_http() {
    let config = parse(
        r#"{"mcpServers": {
            "http": {"command": "./bin/server", "args": ["--port", "{port}"], "env": {"LOG": "debug"},
                     "url": "http://127.0.0.1:{port}/mcp", "headers": {"X-Key": "k"}, "cwd": "work"},
            "sse": {"command": "server", "env": {"PORT": "{port}"}, "url": "http://localhost:{port}/sse"},
            "fixed": {"command": "server", "args": ["--http", "8931"], "url": "http://[::1]:8931/mcp", "type": "sse"}
        }}"#,
    )
    .unwrap();
    let TransportConfig::StartedHttp(http) = &config.servers["http"].transport else {
        panic!("{:?}", config.servers["http"].transport);
    };
    assert_eq!(http.command, "./bin/server");
    assert_eq!(http.args, ["--port", "{port}"]);
    assert_eq!(http.url, "http://127.0.0.1:{port}/mcp");
    assert!(!http.sse && http.uses_port());
    assert_eq!(http.headers["X-Key"].expose(), "k");
    assert_eq!(config.servers["http"].transport.kind(), "streamable-http");
    let TransportConfig::StartedHttp(sse) = &config.servers["sse"].transport else {
        panic!("a started SSE server");
    };
    assert!(sse.sse, "a path ending in /sse without a type is SSE");
    let TransportConfig::StartedHttp(fixed) = &config.servers["fixed"].transport else {
        panic!("a started server on a fixed port");
    };
    assert!(fixed.sse && !fixed.uses_port());

    // Relative paths are the file's, as for a stdio server.
    let mut config = config;
    config.resolve_paths(Path::new("/etc/proxy"));
    let TransportConfig::StartedHttp(http) = &config.servers["http"].transport else {
        panic!("still started");
    };
    assert_eq!(http.command, "/etc/proxy/bin/server");
    assert_eq!(http.cwd.as_deref(), Some(Path::new("/etc/proxy/work")));
}

#[test]
fn a_started_servers_url_and_port_errors_name_file_server_and_field() {
    let error = |entry: &str| {
        parse(&format!(r#"{{"mcpServers": {{"web": {entry}}}}}"#))
            .unwrap_err()
            .to_string()
    };
    assert_eq!(
        error(r#"{"command": "s", "args": ["{port}"], "url": "http://example.com:{port}/mcp"}"#),
        "config test.json: server \"web\": field \"url\": \"http://example.com:{port}/mcp\" is not \
         on this machine; the rule for a server the proxy starts (\"command\" with \"url\") is \
         that it is reached over loopback only: localhost, 127.0.0.0/8 or [::1]"
    );
    let untold = error(r#"{"command": "s", "url": "http://localhost:{port}/mcp"}"#);
    assert!(
        untold.starts_with("config test.json: server \"web\": field \"url\": ")
            && untold.contains("neither \"args\" nor \"env\" passes {port}"),
        "{untold}"
    );
    let unnamed =
        error(r#"{"command": "s", "env": {"PORT": "{port}"}, "url": "http://localhost:9/mcp"}"#);
    assert!(
        unnamed.contains("field \"url\"") && unnamed.contains("does not name it"),
        "{unnamed}"
    );
    let variable = error(r#"{"command": "s", "url": "http://localhost:{port}/{path}"}"#);
    assert!(variable.contains("{path} is not filled in"), "{variable}");
    let stdio = error(r#"{"command": "s", "url": "http://localhost:9/mcp", "type": "stdio"}"#);
    assert!(
        stdio.contains("field \"type\"") && stdio.contains("does not go with \"url\""),
        "{stdio}"
    );
    let command = error(r#"{"command": "", "url": "http://localhost:9/mcp"}"#);
    assert!(command.contains("field \"command\""), "{command}");
}

#[test]
fn a_started_server_from_an_untrusted_entry_passes_the_command_policy_and_names_port() {
    let config = parse(
        r#"{"mcpServers": {
            "ok": {"command": "npx", "args": ["-y", "server@1.0.0"], "env": {"PORT": "{port}"},
                   "url": "http://localhost:{port}/mcp", "registry": {"name": "io.example/ok"}},
            "shell": {"command": "sh", "args": ["-c", "{port}"], "url": "http://localhost:{port}/mcp",
                      "registry": {"name": "io.example/shell"}},
            "fixed": {"command": "npx", "args": ["-y", "server@1.0.0"], "url": "http://localhost:6379/",
                      "registry": {"name": "io.example/fixed"}}
        }}"#,
    )
    .unwrap();
    let security = SecuritySettings::default();
    assert_eq!(config.servers["ok"].check(&security), Ok(()));
    assert_eq!(
        config.servers["shell"].check(&security).unwrap_err().rule,
        "command-not-allowed"
    );
    let fixed = config.servers["fixed"].check(&security).unwrap_err();
    assert_eq!(fixed.rule, "started-url-port", "{fixed}");
    let local = SecuritySettings {
        allow_local_targets: true,
        ..SecuritySettings::default()
    };
    assert_eq!(config.servers["fixed"].check(&local), Ok(()));
}

#[test]
fn tool_hints_are_read_per_tool_with_a_default_for_every_tool() {
    let config = parse(
        r#"{"mcpServers": {"demo": {"command": "x", "toolHints": {
            "*": {"alwaysLoad": false, "searchHint": "words for all"},
            "echo": {"alwaysLoad": true, "description": "  Says it back.  "},
            "add": {"searchHint": "sum numbers"}
        }}}}"#,
    )
    .unwrap();
    let hints = &config.servers["demo"].tool_hints;
    // A tool's own entry wins field by field; what it leaves out comes from "*".
    assert_eq!(
        hints.for_tool("echo"),
        ToolHint {
            always_load: Some(true),
            search_hint: Some("words for all".into()),
            description: Some("Says it back.".into()),
        }
    );
    assert_eq!(
        hints.for_tool("add"),
        ToolHint {
            always_load: Some(false),
            search_hint: Some("sum numbers".into()),
            description: None,
        }
    );
    assert_eq!(hints.for_tool("other"), hints.every);
    let none = parse(r#"{"mcpServers": {"demo": {"command": "x"}}}"#).unwrap();
    assert!(none.servers["demo"].tool_hints.is_empty());
    assert!(none.servers["demo"].tool_hints.for_tool("echo").is_empty());
}

#[test]
fn bad_tool_hints_name_the_tool_and_the_field() {
    let long = "x".repeat(MAX_SEARCH_HINT + 1);
    for (hints, field, message) in [
        (r#"[]"#.to_owned(), "toolHints", "must be an object"),
        (
            r#"{"echo": true}"#.to_owned(),
            "toolHints.echo",
            "must be an object",
        ),
        (
            r#"{"echo": {"alwaysload": true}}"#.to_owned(),
            "toolHints.echo.alwaysload",
            "unknown field; expected \"alwaysLoad\", \"searchHint\" and \"description\"",
        ),
        (
            r#"{"*": {"description": "for all"}}"#.to_owned(),
            "toolHints.*.description",
            "unknown field; expected \"alwaysLoad\" and \"searchHint\" (a description is per tool)",
        ),
        (
            r#"{"echo": {"alwaysLoad": "yes"}}"#.to_owned(),
            "toolHints.echo.alwaysLoad",
            "must be true or false",
        ),
        (
            r#"{"echo": {"searchHint": 3}}"#.to_owned(),
            "toolHints.echo.searchHint",
            "must be a string",
        ),
        (
            r#"{"echo": {"description": " "}}"#.to_owned(),
            "toolHints.echo.description",
            "must not be empty",
        ),
        (
            format!(r#"{{"echo": {{"searchHint": "{long}"}}}}"#),
            "toolHints.echo.searchHint",
            "at most 1000 are taken",
        ),
        (
            r#"{"": {}}"#.to_owned(),
            "toolHints",
            "a tool name is empty",
        ),
    ] {
        let text =
            format!(r#"{{"mcpServers": {{"demo": {{"command": "x", "toolHints": {hints}}}}}}}"#);
        let error = parse(&text).unwrap_err();
        assert_eq!(error.server.as_deref(), Some("demo"), "{hints}");
        assert_eq!(error.field.as_deref(), Some(field), "{hints}");
        assert!(
            error.message.contains(message),
            "{hints}: {}",
            error.message
        );
    }
}

#[test]
fn auth_tokens_are_strings_or_objects_with_a_tool_exposure() {
    let config = parse(
        r#"{"mcpServers": {}, "authTokens": [
            "plain-token",
            {"token": " searcher ", "toolExposure": "search"},
            {"token": "lister", "toolExposure": "all"},
            {"token": "bare"}
        ]}"#,
    )
    .unwrap();
    let tokens: Vec<&str> = config.auth_tokens.iter().map(Secret::expose).collect();
    assert_eq!(tokens, ["plain-token", "searcher", "lister", "bare"]);
    let exposures = &config.token_exposures;
    assert_eq!(
        exposures.of_authorization("Bearer searcher"),
        Some(ToolExposure::Search)
    );
    assert_eq!(
        exposures.of_authorization("bearer  searcher "),
        Some(ToolExposure::Search)
    );
    assert_eq!(
        exposures.of_authorization("Bearer lister"),
        Some(ToolExposure::All)
    );
    assert_eq!(exposures.of_authorization("Bearer bare"), None);
    assert_eq!(exposures.of_authorization("Bearer plain-token"), None);
    assert_eq!(exposures.of_authorization("Basic searcher"), None);
    use sha2::Digest;
    let digest: [u8; 32] = sha2::Sha256::digest(b"searcher").into();
    assert_eq!(exposures.of_token_hash(&digest), Some(ToolExposure::Search));
    // The principal the HTTP transport gives the router's callers.
    let mut headers = axum::http::HeaderMap::new();
    headers.insert(
        axum::http::header::AUTHORIZATION,
        "Bearer searcher".parse().unwrap(),
    );
    let principal = crate::upstream::http_principal(&headers);
    assert_eq!(
        exposures.of_principal(&principal),
        Some(ToolExposure::Search)
    );
    // Neither the tokens nor their digests are printed.
    let shown = format!("{config:?}");
    assert!(!shown.contains("searcher"), "{shown}");
    assert!(shown.contains("TokenExposures(2 tokens)"), "{shown}");
}

#[test]
fn bad_auth_tokens_name_the_entry_and_the_field() {
    for (tokens, field, message) in [
        (r#""one""#, "authTokens", "must be an array of tokens"),
        (r#"[3]"#, "authTokens[0]", "must be a string or a"),
        (
            r#"[{"token": "t", "exposure": "search"}]"#,
            "authTokens[0].exposure",
            "unknown field; expected \"token\" and \"toolExposure\"",
        ),
        (
            r#"[{"toolExposure": "all"}]"#,
            "authTokens[0].token",
            "must be a non-empty string",
        ),
        (
            r#"[{"token": "t", "toolExposure": "some"}]"#,
            "authTokens[0].toolExposure",
            "tool exposure \"some\" is neither \"all\" nor \"search\"",
        ),
        (
            r#"["x", {"token": "t", "toolExposure": "all"},
                {"token": "t", "toolExposure": "search"}]"#,
            "authTokens[2].toolExposure",
            "listed earlier with another toolExposure",
        ),
    ] {
        let text = format!(r#"{{"mcpServers": {{}}, "authTokens": {tokens}}}"#);
        let error = parse(&text).unwrap_err();
        assert_eq!(error.server, None, "{tokens}");
        assert_eq!(error.field.as_deref(), Some(field), "{tokens}");
        assert!(
            error.message.contains(message),
            "{tokens}: {}",
            error.message
        );
    }
}
