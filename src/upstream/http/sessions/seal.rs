//! Sealed session ids for a fleet: the replica that made a session, and 64 random bits,
//! encrypted and authenticated with the fleet's key (AES-256-GCM, a random 96-bit nonce each).
//! Any replica reads which replica holds a session without asking the store, and refuses an id
//! nobody in the fleet made without any work beyond one decryption. The key is derived once,
//! at start: no per-request key derivation.
//!
//! The same key seals a client's address on a request one replica passes to another, so the
//! replica that serves it counts the client's rate-limit budget, not the passing replica's,
//! and no client can name an address of its choosing.

use std::net::{IpAddr, Ipv6Addr};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use sha2::{Digest, Sha256};

/// Bound into every sealed id: an id sealed for another purpose with the same key never opens.
const PURPOSE: &[u8] = b"pluggedin-mcp-proxy session id";
/// Bound into every sealed client address.
const ADDRESS_PURPOSE: &[u8] = b"pluggedin-mcp-proxy client address";
/// The replica (8 bytes) and 64 random bits; or an address as IPv6 (IPv4 mapped).
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
        let mut plain = [0u8; PLAIN];
        plain[..8].copy_from_slice(&home.to_be_bytes());
        fill(&mut plain[8..]);
        self.seal_plain(PURPOSE, plain)
    }

    /// The replica a sealed id names; `None` for an id this fleet's key did not seal.
    pub(crate) fn open(&self, id: &str) -> Option<i64> {
        let plain = self.open_plain(PURPOSE, id)?;
        let home: [u8; 8] = plain.get(..8)?.try_into().ok()?;
        Some(i64::from_be_bytes(home))
    }

    /// A client's address, sealed for the header a replica adds when it passes a request on.
    pub(crate) fn seal_address(&self, address: IpAddr) -> String {
        let v6 = match address {
            IpAddr::V4(v4) => v4.to_ipv6_mapped(),
            IpAddr::V6(v6) => v6,
        };
        self.seal_plain(ADDRESS_PURPOSE, v6.octets())
    }

    /// The address [`Sealer::seal_address`] sealed; `None` for anything else.
    pub(crate) fn open_address(&self, sealed: &str) -> Option<IpAddr> {
        let plain: [u8; PLAIN] = self.open_plain(ADDRESS_PURPOSE, sealed)?;
        let v6 = Ipv6Addr::from(plain);
        Some(match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6(v6),
        })
    }

    /// `plain` sealed for `purpose` under a random nonce, as URL-safe base64.
    fn seal_plain(&self, purpose: &'static [u8], plain: [u8; PLAIN]) -> String {
        let mut nonce = [0u8; NONCE_LEN];
        fill(&mut nonce);
        let mut sealed = Vec::with_capacity(SEALED);
        sealed.extend_from_slice(&nonce);
        let mut body = plain.to_vec();
        self.key
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(purpose),
                &mut body,
            )
            .unwrap_or_else(|_| unreachable!("16 bytes are within AES-GCM's limits"));
        sealed.extend_from_slice(&body);
        URL_SAFE_NO_PAD.encode(sealed)
    }

    /// What `text` seals for `purpose` under this key, if it does.
    fn open_plain(&self, purpose: &'static [u8], text: &str) -> Option<[u8; PLAIN]> {
        if text.len() != URL_SAFE_NO_PAD.encode([0u8; SEALED]).len() {
            return None;
        }
        let mut bytes = URL_SAFE_NO_PAD.decode(text).ok()?;
        if bytes.len() != SEALED {
            return None;
        }
        let mut body = bytes.split_off(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(&bytes).ok()?;
        let plain = self
            .key
            .open_in_place(nonce, Aad::from(purpose), &mut body)
            .ok()?;
        plain.try_into().ok()
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

    #[test]
    fn a_sealed_address_opens_only_as_an_address_under_its_key() {
        let sealer = Sealer::new("fleet key");
        for address in ["127.0.0.2", "2001:db8::7"] {
            let address: IpAddr = address.parse().unwrap();
            let sealed = sealer.seal_address(address);
            assert_eq!(sealer.open_address(&sealed), Some(address));
            assert_eq!(Sealer::new("another key").open_address(&sealed), None);
            // Sealed for another purpose: an address is no session id, nor the other way.
            assert_eq!(sealer.open(&sealed), None);
        }
        assert_eq!(sealer.open_address(&sealer.seal(3)), None);
        assert_eq!(sealer.open_address("10.0.0.1"), None);
    }
}
