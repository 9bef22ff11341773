//! Sealed session ids for a fleet: the replica that made a session, and 64 random bits,
//! encrypted and authenticated with the fleet's key (AES-256-GCM, a random 96-bit nonce each).
//! Any replica reads which replica holds a session without asking the store, and refuses an id
//! nobody in the fleet made without any work beyond one decryption. The key is derived once,
//! at start: no per-request key derivation.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use sha2::{Digest, Sha256};

/// Bound into every sealed id: an id sealed for another purpose with the same key never opens.
const PURPOSE: &[u8] = b"pluggedin-mcp-proxy session id";
/// The replica (8 bytes) and 64 random bits.
const PLAIN: usize = 16;
const TAG: usize = 16;
/// A sealed id's bytes: nonce, ciphertext, tag.
const SEALED: usize = NONCE_LEN + PLAIN + TAG;

pub(crate) struct Sealer {
    key: LessSafeKey,
}

impl Sealer {
    /// A sealer keyed by `secret` (the fleet's `--session-key`, or the one kept in the store).
    pub(crate) fn new(secret: &str) -> Sealer {
        let digest = Sha256::digest(secret.as_bytes());
        let key = UnboundKey::new(&AES_256_GCM, digest.as_slice())
            .unwrap_or_else(|_| unreachable!("a SHA-256 digest is an AES-256 key"));
        Sealer {
            key: LessSafeKey::new(key),
        }
    }

    /// A new session id naming replica `home`.
    pub(crate) fn seal(&self, home: i64) -> String {
        let mut random = [0u8; NONCE_LEN + 8];
        fill(&mut random);
        let mut nonce = [0u8; NONCE_LEN];
        nonce.copy_from_slice(&random[..NONCE_LEN]);
        let mut sealed = Vec::with_capacity(SEALED);
        sealed.extend_from_slice(&nonce);
        sealed.extend_from_slice(&home.to_be_bytes());
        sealed.extend_from_slice(&random[NONCE_LEN..]);
        let mut body = sealed.split_off(NONCE_LEN);
        self.key
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(PURPOSE),
                &mut body,
            )
            .unwrap_or_else(|_| unreachable!("16 bytes are within AES-GCM's limits"));
        sealed.extend_from_slice(&body);
        URL_SAFE_NO_PAD.encode(sealed)
    }

    /// The replica a sealed id names; `None` for an id this fleet's key did not seal.
    pub(crate) fn open(&self, id: &str) -> Option<i64> {
        if id.len() != URL_SAFE_NO_PAD.encode([0u8; SEALED]).len() {
            return None;
        }
        let mut bytes = URL_SAFE_NO_PAD.decode(id).ok()?;
        if bytes.len() != SEALED {
            return None;
        }
        let mut body = bytes.split_off(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(&bytes).ok()?;
        let plain = self
            .key
            .open_in_place(nonce, Aad::from(PURPOSE), &mut body)
            .ok()?;
        let home: [u8; 8] = plain.get(..8)?.try_into().ok()?;
        Some(i64::from_be_bytes(home))
    }
}

/// Random bytes from the OS CSPRNG (a v4 UUID's on the broken system where it fails).
fn fill(bytes: &mut [u8]) {
    if getrandom::fill(bytes).is_err() {
        for chunk in bytes.chunks_mut(16) {
            let uuid = uuid::Uuid::new_v4().into_bytes();
            chunk.copy_from_slice(&uuid[..chunk.len()]);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sealed_id_names_its_replica_only_under_its_key() {
        let sealer = Sealer::new("fleet key");
        let id = sealer.seal(42);
        assert_eq!(sealer.open(&id), Some(42));
        assert_ne!(sealer.seal(42), id, "every id is new");
        assert_eq!(Sealer::new("another key").open(&id), None);
        assert!(
            id.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        );
    }

    #[test]
    fn a_changed_or_made_up_id_does_not_open() {
        let sealer = Sealer::new("fleet key");
        let id = sealer.seal(7);
        let mut changed = id.clone().into_bytes();
        changed[20] = if changed[20] == b'A' { b'B' } else { b'A' };
        assert_eq!(sealer.open(&String::from_utf8(changed).unwrap()), None);
        for made_up in [
            "",
            "0123456789abcdef0123456789abcdef",
            &"A".repeat(id.len()),
            "é",
        ] {
            assert_eq!(sealer.open(made_up), None, "{made_up}");
        }
        assert_eq!(sealer.open(&format!("{id}A")), None);
    }
}
