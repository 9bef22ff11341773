//! `import`: each client's config, written here in the client's own documented shape (Windows
//! paths, variables, comments, TOML), merged into ours; `--replace` and `--restore`; a running
//! proxy serving what was imported.

use std::path::{Path, PathBuf};

use serde_json::{Value, json};

use crate::support::*;

/// A home directory with clients' configs, a project, and our config and data dir.
struct Machine {
    dir: tempfile::TempDir,
}

impl Machine {
    fn new() -> Machine {
        let machine = Machine {
            dir: tempfile::tempdir().unwrap(),
        };
        std::fs::create_dir_all(machine.project()).unwrap();
        machine
    }

    fn home(&self) -> PathBuf {
        self.dir.path().join("home")
    }

    fn project(&self) -> PathBuf {
        self.dir.path().join("project")
    }

    fn config(&self) -> PathBuf {
        self.dir.path().join("ours/mcp.json")
    }

    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    fn write(&self, relative_to_home: &str, text: &str) -> PathBuf {
        let path = self.home().join(relative_to_home);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, text).unwrap();
        path
    }

    /// Runs `pluggedin-mcp-proxy import ARGS` as the user of this home, in the project.
    fn import(&self, args: &[&str]) -> std::process::Output {
        std::process::Command::new(proxy_bin())
            .arg("--config")
            .arg(self.config())
            .arg("--data-dir")
            .arg(self.data())
            .arg("import")
            .args(args)
            .current_dir(self.project())
            .env("HOME", self.home())
            .env("XDG_CONFIG_HOME", self.home().join(".config"))
            .env_remove("APPDATA")
            .env_remove("CODEX_HOME")
            .env_remove("CLAUDE_CONFIG_DIR")
            .env_remove("PLUGGEDIN_API_KEY")
            .env_remove("PLUGGEDIN_CONFIG")
            .output()
            .unwrap()
    }

    fn ours(&self) -> Value {
        serde_json::from_str(&std::fs::read_to_string(self.config()).unwrap()).unwrap()
    }
}

fn text(output: &std::process::Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// Every client's config, in its own shape.
fn write_every_client(machine: &Machine) {
    let demo = demo_bin();
    let time = time_server();
    machine.write(
        ".config/Claude/claude_desktop_config.json",
        &json!({"mcpServers": {
            "time": {"command": time},
            "windows-files": {
                "command": "C:\\Program Files\\nodejs\\npx.cmd",
                "args": ["-y", "@modelcontextprotocol/server-filesystem", "C:\\Users\\me\\Documents"],
                "env": {"APPDATA": "C:\\Users\\me\\AppData\\Roaming", "PRICE": "${NOT_A_VARIABLE}"}
            }
        }, "globalShortcut": "Ctrl+Space"})
        .to_string(),
    );
    let project = machine.project().to_string_lossy().into_owned();
    machine.write(
        ".claude.json",
        &json!({"numStartups": 12, "mcpServers": {
            "demo": {"type": "stdio", "command": demo, "env": {"TOKEN": "${DEMO_TOKEN:-fallback}"}}
        }, "projects": {project: {"mcpServers": {"local-one": {"command": demo, "args": ["--name", "local"]}}}}})
        .to_string(),
    );
    std::fs::write(
        machine.project().join(".mcp.json"),
        json!({"mcpServers": {"remote": {"type": "http", "url": "https://api.example.com/mcp",
            "headers": {"Authorization": "Bearer ${API_TOKEN}"}}}})
        .to_string(),
    )
    .unwrap();
    machine.write(
        ".cursor/mcp.json",
        &json!({"mcpServers": {
            "time": {"command": time},
            "demo": {"command": demo, "args": ["--name", "cursor-demo"]}
        }})
        .to_string(),
    );
    machine.write(
        ".config/Code/User/mcp.json",
        &format!(
            r#"{{
  // VS Code's user-level servers
  "inputs": [
    {{"type": "promptString", "id": "api-key", "description": "The demo's API key", "password": true}},
  ],
  "servers": {{
    "keyed": {{"type": "stdio", "command": {demo:?}, "env": {{"KEY": "${{input:api-key}}", "HOME_DIR": "${{userHome}}"}}}},
    "site": {{"type": "sse", "url": "http://127.0.0.1:9/sse"}}, /* a legacy one */
  }},
}}"#
        ),
    );
    machine.write(
        ".codeium/windsurf/mcp_config.json",
        &json!({"mcpServers": {"wind": {"serverUrl": "https://wind.example.com/mcp",
            "headers": {"X-Key": "${env:WIND_KEY}"}}}})
        .to_string(),
    );
    machine.write(
        ".config/Code/User/globalStorage/saoudrizwan.claude-dev/settings/cline_mcp_settings.json",
        &json!({"mcpServers": {"off": {"command": demo, "disabled": true, "autoApprove": [], "timeout": 30}}})
            .to_string(),
    );
    machine.write(
        ".codex/config.toml",
        &format!(
            "model = \"o3\"\n\n[mcp_servers.codex-demo]\ncommand = {demo:?}\nargs = [\"--name\", \"codex\"]\nenv_vars = [\"DEMO_TOKEN\"]\n\n[mcp_servers.codex-http]\nurl = \"https://codex.example.com/mcp\"\nbearer_token_env_var = \"CODEX_TOKEN\"\nenabled = false\n"
        ),
    );
}

#[test]
fn every_clients_servers_merge_into_ours_with_conflicts_reported() {
    let machine = Machine::new();
    write_every_client(&machine);

    let dry = machine.import(&["--dry-run", "--input", "api-key=s3cret-value"]);
    assert!(dry.status.success(), "{}", text(&dry));
    assert!(text(&dry).contains("would add"), "{}", text(&dry));
    assert!(!machine.config().exists(), "a dry run writes nothing");

    // Without the value only VS Code knew, that server is named with what it needs.
    let partial = machine.import(&["vscode", "--dry-run"]);
    assert!(!partial.status.success());
    let report = text(&partial);
    assert!(
        report.contains("not imported: keyed from vscode")
            && report.contains("--input api-key=VALUE")
            && report.contains("The demo's API key"),
        "{report}"
    );

    let output = machine.import(&["--input", "api-key=s3cret-value"]);
    let report = text(&output);
    println!("{report}");
    assert!(output.status.success(), "{report}");
    assert!(
        !report.contains("s3cret-value"),
        "secrets are never printed"
    );
    assert!(
        report.contains(
            "demo-cursor  from cursor (renamed: the config already has a different \"demo\")"
        ),
        "{report}"
    );
    assert!(
        report.contains("already there: time (same as cursor's)"),
        "{report}"
    );

    let ours = machine.ours();
    let servers = ours["mcpServers"].as_object().unwrap();
    let mut names: Vec<&str> = servers.keys().map(String::as_str).collect();
    names.sort_unstable();
    assert_eq!(
        names,
        [
            "codex-demo",
            "codex-http",
            "demo",
            "demo-cursor",
            "keyed",
            "local-one",
            "off",
            "remote",
            "site",
            "time",
            "wind",
            "windows-files"
        ]
    );
    // Windows paths and literal values as written; `${` in a client that does not expand is
    // escaped so ours does not either.
    assert_eq!(
        servers["windows-files"],
        json!({"command": "C:\\Program Files\\nodejs\\npx.cmd",
               "args": ["-y", "@modelcontextprotocol/server-filesystem", "C:\\Users\\me\\Documents"],
               "env": {"APPDATA": "C:\\Users\\me\\AppData\\Roaming", "PRICE": "$${NOT_A_VARIABLE}"}})
    );
    // Claude Code's references are ours already.
    assert_eq!(
        servers["demo"]["env"]["TOKEN"],
        json!("${DEMO_TOKEN:-fallback}")
    );
    assert_eq!(
        servers["remote"],
        json!({"url": "https://api.example.com/mcp", "type": "streamable-http",
               "headers": {"Authorization": "Bearer ${API_TOKEN}"}})
    );
    // VS Code: the input's value in an owner-only file the entry references.
    let keyed = &servers["keyed"];
    assert_eq!(keyed["env"]["KEY"], json!("${API_KEY}"));
    assert_eq!(
        keyed["env"]["HOME_DIR"],
        json!(machine.home().to_string_lossy())
    );
    let secrets = PathBuf::from(keyed["envFile"].as_str().unwrap());
    assert!(
        std::fs::read_to_string(&secrets)
            .unwrap()
            .contains("API_KEY=\"s3cret-value\"")
    );
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&secrets).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    assert!(
        !std::fs::read_to_string(machine.config())
            .unwrap()
            .contains("s3cret-value")
    );
    assert_eq!(
        servers["site"],
        json!({"url": "http://127.0.0.1:9/sse", "type": "sse"})
    );
    assert_eq!(
        servers["wind"],
        json!({"url": "https://wind.example.com/mcp", "headers": {"X-Key": "${WIND_KEY}"}})
    );
    assert_eq!(
        servers["off"],
        json!({"command": demo_bin(), "disabled": true, "timeout": 30.0})
    );
    assert_eq!(
        servers["codex-demo"],
        json!({"command": demo_bin(), "args": ["--name", "codex"], "env": {"DEMO_TOKEN": "${DEMO_TOKEN}"}})
    );
    assert_eq!(
        servers["codex-http"],
        json!({"url": "https://codex.example.com/mcp", "type": "streamable-http",
               "headers": {"Authorization": "Bearer ${CODEX_TOKEN}"}, "disabled": true})
    );

    // Importing again adds nothing: every server is there once.
    let again = machine.import(&["--input", "api-key=s3cret-value"]);
    assert!(again.status.success(), "{}", text(&again));
    assert!(
        text(&again).contains("nothing new to add"),
        "{}",
        text(&again)
    );
}

#[test]
fn replace_then_restore_leaves_the_clients_files_byte_identical() {
    let machine = Machine::new();
    let desktop = machine.write(
        ".config/Claude/claude_desktop_config.json",
        &serde_json::to_string_pretty(
            &json!({"mcpServers": {"demo": {"command": demo_bin()}}, "theme": "dark"}),
        )
        .unwrap(),
    );
    let vscode = machine.write(
        ".config/Code/User/mcp.json",
        &format!("{{\n  // mine\n  \"servers\": {{\n    \"vs-demo\": {{\"command\": {:?}, \"args\": [\"--name\", \"vs\"]}},\n  }}\n}}\n", demo_bin()),
    );
    let codex = machine.write(
        ".codex/config.toml",
        &format!("model = \"o3\"\n\n[mcp_servers.codex-demo]\ncommand = {:?}\nargs = [\"--name\", \"codex\"]\n\n[mcp_servers.codex-demo.env]\nA = \"1\"\n\n[profiles.fast]\nmodel = \"o4\"\n", demo_bin()),
    );
    let claude = machine.write(
        ".claude.json",
        &serde_json::to_string_pretty(&json!({"numStartups": 1, "mcpServers": {"cc-demo": {"command": demo_bin(), "args": ["--name", "cc"]}}}))
            .unwrap(),
    );
    let originals: Vec<(PathBuf, Vec<u8>)> = [&desktop, &vscode, &codex, &claude]
        .iter()
        .map(|path| ((*path).clone(), std::fs::read(path).unwrap()))
        .collect();

    let output = machine.import(&["--replace"]);
    assert!(output.status.success(), "{}", text(&output));
    let proxy_only = |path: &Path, key: &str| {
        let value = if path.extension().is_some_and(|e| e == "toml") {
            basic_toml::from_str::<Value>(&std::fs::read_to_string(path).unwrap()).unwrap()
        } else {
            pluggedin_mcp_proxy::config::jsonc::parse(&std::fs::read_to_string(path).unwrap())
                .unwrap()
        };
        let servers = value[key].as_object().unwrap().clone();
        assert_eq!(
            servers.keys().collect::<Vec<_>>(),
            ["pluggedin"],
            "{}",
            path.display()
        );
        let args = servers["pluggedin"]["args"].as_array().unwrap().clone();
        assert!(
            args.contains(&json!(machine.config().to_string_lossy())),
            "{args:?}"
        );
        value
    };
    assert_eq!(proxy_only(&desktop, "mcpServers")["theme"], json!("dark"));
    proxy_only(&vscode, "servers");
    assert_eq!(
        proxy_only(&codex, "mcp_servers")["profiles"]["fast"]["model"],
        json!("o4")
    );
    proxy_only(&claude, "mcpServers");
    assert!(
        std::fs::read_to_string(&vscode)
            .unwrap()
            .contains("// mine"),
        "comments stay"
    );
    assert_eq!(machine.ours()["mcpServers"].as_object().unwrap().len(), 4);

    let restored = machine.import(&["--restore"]);
    assert!(restored.status.success(), "{}", text(&restored));
    for (path, bytes) in &originals {
        assert_eq!(
            &std::fs::read(path).unwrap(),
            bytes,
            "{} is as it was",
            path.display()
        );
    }

    // Replaced again; then the user adds a server to Claude Desktop's file, and Claude Code
    // rewrites its own (another key): the first is refused, the second gets its servers back
    // with its newer rest kept.
    let output = machine.import(&["--replace"]);
    assert!(output.status.success(), "{}", text(&output));
    let mut edited: Value =
        serde_json::from_str(&std::fs::read_to_string(&desktop).unwrap()).unwrap();
    edited["mcpServers"]["added-later"] = json!({"command": "x"});
    std::fs::write(&desktop, serde_json::to_string_pretty(&edited).unwrap()).unwrap();
    let claude_text = std::fs::read_to_string(&claude).unwrap();
    std::fs::write(
        &claude,
        claude_text.replace("\"numStartups\": 1", "\"numStartups\": 2"),
    )
    .unwrap();

    let restored = machine.import(&["--restore"]);
    let report = text(&restored);
    assert!(!restored.status.success(), "{report}");
    assert!(
        report.contains("not restored:")
            && report.contains("claude_desktop_config.json")
            && report.contains("changed since"),
        "{report}"
    );
    assert!(
        report.contains("restored the servers of") && report.contains(".claude.json"),
        "{report}"
    );
    let claude_now: Value =
        serde_json::from_str(&std::fs::read_to_string(&claude).unwrap()).unwrap();
    assert_eq!(claude_now["numStartups"], json!(2));
    assert!(claude_now["mcpServers"]["cc-demo"].is_object());
    // The refused file keeps its record: once the user undoes their edit, restore works.
    for (path, bytes) in &originals[1..3] {
        assert_eq!(
            &std::fs::read(path).unwrap(),
            bytes,
            "{} is as it was",
            path.display()
        );
    }
}

#[tokio::test]
async fn a_running_proxy_serves_the_imported_servers_with_their_variables_resolved() {
    let machine = Machine::new();
    machine.write(
        ".claude.json",
        &json!({"mcpServers": {"everything": {"command": "node", "args": [everything_js(), "stdio"],
            "env": {"GREETING": "${IMPORT_GREETING:-hello from the default}", "SECRET_TOKEN": "${IMPORT_TOKEN}"}}}})
        .to_string(),
    );
    std::fs::create_dir_all(machine.config().parent().unwrap()).unwrap();
    std::fs::write(machine.config(), "{\"mcpServers\": {}}\n").unwrap();
    let mut proxy = proxy()
        .config_file(&machine.config())
        .env("IMPORT_TOKEN", "tok-from-the-environment")
        .start()
        .await;
    let output = std::process::Command::new(proxy_bin())
        .arg("--config")
        .arg(machine.config())
        .arg("--data-dir")
        .arg(proxy.data_dir())
        .args(["import", "claude-code"])
        .current_dir(machine.project())
        .env("HOME", machine.home())
        .env_remove("CLAUDE_CONFIG_DIR")
        .env_remove("PLUGGEDIN_API_KEY")
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", text(&output));
    proxy
        .tools_changed_until(|names| names.iter().any(|name| name == "everything__get-env"))
        .await;
    let env = proxy.call_text("everything__get-env", json!({})).await;
    assert!(env.contains("tok-from-the-environment"), "{env}");
    assert!(env.contains("hello from the default"), "{env}");
}
