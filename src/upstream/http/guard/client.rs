//! Who a request comes from, for the rate limits of requests without a token: the peer's
//! address; or, when the peer is a load balancer or proxy named by `--trusted-proxies`, the
//! client address its `X-Forwarded-For` names — the right-most entry not itself trusted, since
//! each trusted hop appends the address it received the request from, and anything left of the
//! first untrusted one is what the client wrote. A header that does not parse, or has more
//! entries than [`MAX_ENTRIES`], counts as absent: the peer's address is used. In a fleet, a
//! request one replica passes to another carries the address the first resolved, sealed with
//! the fleet's key (`fleet::CLIENT_ADDRESS`), so it is counted as the client's wherever it is
//! served.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use axum::http::{Extensions, HeaderMap};

use super::{ClientAddr, Guard};
use crate::cli::Cidr;
use crate::upstream::http::fleet::CLIENT_ADDRESS;

/// Entries of `X-Forwarded-For` looked at, from the right: more hops than any real chain of
/// proxies has; past them the header is not believed.
const MAX_ENTRIES: usize = 32;

impl Guard {
    /// The client's address, as the rate limits count it.
    pub(crate) fn client_address(&self, headers: &HeaderMap, extensions: &Extensions) -> IpAddr {
        if let Some(fleet) = &self.fleet
            && let Some(sealed) = headers.get(CLIENT_ADDRESS)
            && let Ok(sealed) = sealed.to_str()
            && let Some(address) = fleet.open_address(sealed)
        {
            return address;
        }
        match extensions.get::<ClientAddr>() {
            Some(peer) => resolve(peer.0.ip(), headers, &self.config.trusted_proxies),
            None => Ipv4Addr::UNSPECIFIED.into(),
        }
    }
}

/// The client address of a request from `peer`: the peer's own unless it is `trusted` and
/// `X-Forwarded-For` names a client (see the module's comment).
pub(crate) fn resolve(peer: IpAddr, headers: &HeaderMap, trusted: &[Cidr]) -> IpAddr {
    if !is_trusted(peer, trusted) {
        return peer;
    }
    forwarded_client(headers, trusted).unwrap_or(peer)
}

fn is_trusted(address: IpAddr, trusted: &[Cidr]) -> bool {
    trusted.iter().any(|block| block.contains(address))
}

/// The right-most address in `X-Forwarded-For` (all its fields, in order) that is not trusted,
/// or the left-most when all are; `None` when it is absent, does not parse or is too long.
fn forwarded_client(headers: &HeaderMap, trusted: &[Cidr]) -> Option<IpAddr> {
    let fields: Vec<&str> = headers
        .get_all("x-forwarded-for")
        .iter()
        .map(|value| value.to_str().ok())
        .collect::<Option<_>>()?;
    let mut seen = 0;
    let mut leftmost = None;
    for field in fields.iter().rev() {
        for entry in field.rsplit(',') {
            seen += 1;
            if seen > MAX_ENTRIES {
                return None;
            }
            let address = entry_address(entry)?;
            if !is_trusted(address, trusted) {
                return Some(address);
            }
            leftmost = Some(address);
        }
    }
    leftmost
}

/// One entry: an address, or an address with a port (`192.0.2.1:443`, `[2001:db8::1]:443`),
/// or a bracketed IPv6 address.
fn entry_address(entry: &str) -> Option<IpAddr> {
    let entry = entry.trim();
    let address = entry
        .parse::<IpAddr>()
        .ok()
        .or_else(|| entry.parse::<SocketAddr>().ok().map(|socket| socket.ip()))
        .or_else(|| {
            entry
                .strip_prefix('[')?
                .strip_suffix(']')?
                .parse::<IpAddr>()
                .ok()
        })?;
    Some(match address {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(address, IpAddr::V4),
        IpAddr::V4(_) => address,
    })
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    fn blocks(list: &[&str]) -> Vec<Cidr> {
        list.iter().map(|block| block.parse().unwrap()).collect()
    }

    fn headers(fields: &[&str]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for field in fields {
            headers.append("x-forwarded-for", HeaderValue::from_str(field).unwrap());
        }
        headers
    }

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn blocks_parse_and_hold_their_addresses() {
        let block: Cidr = "10.1.0.0/16".parse().unwrap();
        assert!(block.contains(ip("10.1.200.3")));
        assert!(!block.contains(ip("10.2.0.1")));
        assert!(
            block.contains(ip("::ffff:10.1.0.9")),
            "an IPv4-mapped address"
        );
        let one: Cidr = " 127.0.0.1 ".parse().unwrap();
        assert!(one.contains(ip("127.0.0.1")) && !one.contains(ip("127.0.0.2")));
        let v6: Cidr = "2001:db8::/32".parse().unwrap();
        assert!(v6.contains(ip("2001:db8:ffff::1")) && !v6.contains(ip("2001:db9::1")));
        assert!(!v6.contains(ip("10.1.0.1")));
        let all: Cidr = "0.0.0.0/0".parse().unwrap();
        assert!(all.contains(ip("203.0.113.9")));
        for bad in [
            "10.0.0.0/33",
            "::/129",
            "10.0.0/8",
            "example.com",
            "10.0.0.1/x",
            "",
        ] {
            assert!(bad.parse::<Cidr>().is_err(), "{bad}");
        }
    }

    #[test]
    fn only_a_trusted_peers_header_names_the_client() {
        let trusted = blocks(&["127.0.0.1", "10.0.0.0/8"]);
        let forwarded = headers(&["203.0.113.7"]);
        // A trusted peer: the client it names.
        assert_eq!(
            resolve(ip("127.0.0.1"), &forwarded, &trusted),
            ip("203.0.113.7")
        );
        // Any other peer: its own address, whatever it claims.
        assert_eq!(
            resolve(ip("192.0.2.5"), &forwarded, &trusted),
            ip("192.0.2.5")
        );
        // No trusted proxies at all: the header is never read.
        assert_eq!(resolve(ip("127.0.0.1"), &forwarded, &[]), ip("127.0.0.1"));
        // A trusted peer without the header: its own address.
        assert_eq!(
            resolve(ip("127.0.0.1"), &HeaderMap::new(), &trusted),
            ip("127.0.0.1")
        );
    }

    #[test]
    fn the_right_most_untrusted_entry_is_the_client() {
        let trusted = blocks(&["127.0.0.1", "10.0.0.0/8"]);
        let peer = ip("127.0.0.1");
        // What the client wrote itself (198.51.100.1) is left of the address the first trusted
        // proxy saw; the hops between are trusted.
        let chain = headers(&["198.51.100.1, 203.0.113.7, 10.0.0.2"]);
        assert_eq!(resolve(peer, &chain, &trusted), ip("203.0.113.7"));
        // The same list over two header fields, in order.
        let split = headers(&["198.51.100.1", "203.0.113.7,10.0.0.2"]);
        assert_eq!(resolve(peer, &split, &trusted), ip("203.0.113.7"));
        // Every entry trusted: the left-most, the first hop.
        let inside = headers(&["10.0.0.9, 10.0.0.2"]);
        assert_eq!(resolve(peer, &inside, &trusted), ip("10.0.0.9"));
        // Ports and brackets as some proxies write them; an IPv4-mapped address as IPv4.
        for (field, client) in [
            ("203.0.113.7:5123", "203.0.113.7"),
            ("[2001:db8::7]:443", "2001:db8::7"),
            ("[2001:db8::7]", "2001:db8::7"),
            ("::ffff:203.0.113.7", "203.0.113.7"),
        ] {
            assert_eq!(resolve(peer, &headers(&[field]), &trusted), ip(client));
        }
    }

    #[test]
    fn a_malformed_or_overlong_header_counts_as_the_peers_own() {
        let trusted = blocks(&["127.0.0.1"]);
        let peer = ip("127.0.0.1");
        for field in [
            "",
            "unknown",
            "203.0.113.7,",
            "203.0.113.7, not-an-address",
            "example.com",
            "203.0.113.7 198.51.100.1",
        ] {
            assert_eq!(
                resolve(peer, &headers(&[field]), &trusted),
                peer,
                "{field:?}"
            );
        }
        // Not text.
        let mut binary = HeaderMap::new();
        binary.append(
            "x-forwarded-for",
            HeaderValue::from_bytes(b"203.0.113.7\xff").unwrap(),
        );
        assert_eq!(resolve(peer, &binary, &trusted), peer);
        // More entries than any real chain: not believed, even if the right-most would do.
        let long = vec!["127.0.0.1"; MAX_ENTRIES].join(",");
        assert_eq!(
            resolve(peer, &headers(&[&format!("203.0.113.7,{long}")]), &trusted),
            peer
        );
        let fits = vec!["127.0.0.1"; MAX_ENTRIES - 1].join(",");
        assert_eq!(
            resolve(peer, &headers(&[&format!("203.0.113.7,{fits}")]), &trusted),
            ip("203.0.113.7")
        );
    }
}
