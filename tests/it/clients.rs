//! Third-party clients: the official MCP Python SDK drives the proxy over stdio (and reads the
//! config's tool hints in `_meta`).

use serde_json::{Value, json};

use crate::support::*;

#[tokio::test]
async fn the_python_sdk_client_lists_calls_samples_and_sees_progress() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("mcp.json");
    let mut server = demo();
    server["toolHints"] = json!({
        "*": {"searchHint": "demo toolbox"},
        "echo": {"alwaysLoad": true, "description": "Says it back."}
    });
    std::fs::write(&config, json!({"mcpServers": {"demo": server}}).to_string()).unwrap();
    let script =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/clients/python_sdk_client.py");
    let output = tokio::process::Command::new(venv_python())
        .arg(script)
        .arg("stdio")
        .arg(proxy_bin())
        .arg(&config)
        .arg(dir.path().join("data"))
        .output()
        .await
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "the Python client failed:\n{stderr}"
    );
    let seen: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(seen["server"], "PluggedinMCP");
    assert!(
        seen["tools"]
            .as_array()
            .unwrap()
            .contains(&json!("demo__echo")),
        "{seen}"
    );
    assert_eq!(seen["echo"], "Echo: from python");
    // The config's hints, as the SDK reads the tool: its own entry over "*".
    assert_eq!(
        seen["echo_meta"],
        json!({"anthropic/alwaysLoad": true, "anthropic/searchHint": "demo toolbox"})
    );
    assert_eq!(seen["echo_description"], "Says it back.");
    assert!(
        seen["sampling"]
            .as_str()
            .unwrap()
            .contains("sampled by the python client"),
        "{seen}"
    );
    assert_eq!(seen["progress"], json!([0.0, 50.0, 100.0]));
    assert_eq!(seen["unknown"]["code"], -32602);
}
