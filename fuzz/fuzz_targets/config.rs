//! The config parser and the security policy on what it parsed: any text either parses into
//! servers or is refused with an error naming the file; never a panic. Every parsed server is
//! checked as if it came from the App (the untrusted path), and a refusal always names its rule.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use pluggedin_mcp_proxy::config::{Config, Origin};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match Config::parse(Path::new("fuzz.json"), text) {
        Ok(config) => {
            for server in config.servers.values() {
                let mut untrusted = server.clone();
                untrusted.origin = Origin::App;
                if let Err(refusal) = untrusted.check(&config.security) {
                    assert!(!refusal.rule.is_empty());
                    assert!(refusal.to_string().contains(refusal.rule));
                }
                // Shown to people: never the headers' values.
                let _ = server.transport.target();
            }
            let _ = format!("{config:?}");
        }
        Err(error) => assert!(error.to_string().starts_with("config fuzz.json")),
    }
});
