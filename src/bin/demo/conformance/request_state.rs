//! The MRTR tools' `requestState`: the state a tool hands the client between rounds, sealed so
//! that the client can only return it untouched. A state is bound to the tool that issued it and
//! carries an HMAC-SHA256 under a key drawn fresh for each process; anything tampered, foreign or
//! truncated fails to open. What goes into the state is the MRTR tools' business (`mrtr.rs`).

use base64::Engine as _;
use rmcp::ErrorData as McpError;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

/// Seals and opens `requestState` values under this process's key.
pub(super) struct RequestSeal {
    key: [u8; 32],
}

impl RequestSeal {
    pub(super) fn new() -> Self {
        let mut key = [0u8; 32];
        // A fresh key per process; without randomness the state is still sealed, just guessable.
        if getrandom::fill(&mut key).is_err() {
            key = Sha256::digest(std::process::id().to_le_bytes()).into();
        }
        Self { key }
    }

    /// HMAC-SHA256 of `message` under the process key.
    fn mac(&self, message: &[u8]) -> [u8; 32] {
        let mut inner_key = [0x36u8; 64];
        let mut outer_key = [0x5cu8; 64];
        for (index, byte) in self.key.iter().enumerate() {
            inner_key[index] ^= byte;
            outer_key[index] ^= byte;
        }
        let inner = Sha256::new()
            .chain_update(inner_key)
            .chain_update(message)
            .finalize();
        Sha256::new()
            .chain_update(outer_key)
            .chain_update(inner)
            .finalize()
            .into()
    }

    /// Seals `state` (bound to `tool`) into an opaque, integrity-protected `requestState`.
    pub(super) fn seal(&self, tool: &str, state: Value) -> String {
        let engine = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let payload = json!({ "tool": tool, "state": state }).to_string();
        let mac = self.mac(payload.as_bytes());
        format!("{}.{}", engine.encode(payload), engine.encode(mac))
    }

    /// Opens a `requestState` sealed by [`Self::seal`] for `tool`; tampering is an error.
    pub(super) fn open(&self, tool: &str, sealed: &str) -> Result<Value, McpError> {
        let engine = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let invalid = || {
            McpError::invalid_params(
                "requestState failed its integrity check (tampered, foreign or truncated)",
                None,
            )
        };
        let (payload, mac) = sealed.split_once('.').ok_or_else(invalid)?;
        let payload = engine.decode(payload).map_err(|_| invalid())?;
        let mac = engine.decode(mac).map_err(|_| invalid())?;
        let expected = self.mac(&payload);
        if !bool::from(subtle::ConstantTimeEq::ct_eq(&expected[..], &mac[..])) {
            return Err(invalid());
        }
        let value: Value = serde_json::from_slice(&payload).map_err(|_| invalid())?;
        if value["tool"] != tool {
            return Err(invalid());
        }
        Ok(value["state"].clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_state_opens_only_untouched_and_for_its_tool() {
        let seal = RequestSeal::new();
        let sealed = seal.seal("tool_a", json!({"round": 2, "name": "Ann"}));
        assert_eq!(
            seal.open("tool_a", &sealed).unwrap(),
            json!({"round": 2, "name": "Ann"})
        );
        // Another tool's state, an appended suffix, a flipped byte, garbage: all refused.
        assert!(seal.open("tool_b", &sealed).is_err());
        assert!(seal.open("tool_a", &format!("{sealed}-TAMPERED")).is_err());
        let mut flipped = sealed.clone().into_bytes();
        flipped[3] ^= 1;
        assert!(
            seal.open("tool_a", &String::from_utf8_lossy(&flipped))
                .is_err()
        );
        assert!(seal.open("tool_a", "not a state").is_err());
        // A state sealed by another process (another key) is refused too.
        assert!(RequestSeal::new().open("tool_a", &sealed).is_err());
    }
}
