//! The URL policy at connection time (SSRF): every address a hostname resolves to is checked
//! before a socket is opened (a DNS resolver that filters, so a name that re-resolves to another
//! address — DNS rebinding — is caught on every connection), and every redirect hop is checked
//! before it is followed. IP literals never reach a resolver, so the static check
//! ([`super::check_url`]) and the redirect check cover them.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use reqwest::dns::{Addrs, Name, Resolve, Resolving};

use super::{Refusal, UrlRules};

/// Most redirect hops followed for one request.
const MAX_REDIRECTS: usize = 10;

/// Cloud metadata endpoints: refused even when local targets are allowed.
const METADATA_V4: [Ipv4Addr; 2] = [
    Ipv4Addr::new(169, 254, 169, 254), // AWS, GCP, Azure, OpenStack, …
    Ipv4Addr::new(100, 100, 100, 200), // Alibaba Cloud
];
/// AWS's IPv6 metadata address, `fd00:ec2::254`.
const METADATA_V6: Ipv6Addr = Ipv6Addr::new(0xfd00, 0xec2, 0, 0, 0, 0, 0, 0x254);

/// Host names of cloud metadata services: refused whatever they resolve to.
pub const METADATA_HOSTS: &[&str] = &[
    "metadata.google.internal",
    "metadata.goog",
    "metadata.azure.com",
    "instance-data",
    "instance-data.ec2.internal",
    "metadata",
];

/// Why an address may not be connected to, or `None` when it may. `allow_local` permits
/// loopback and private ranges, never the metadata addresses.
pub fn address_refusal(ip: IpAddr, allow_local: bool) -> Option<Refusal> {
    let ip = match ip {
        // ::ffff:a.b.c.d is a.b.c.d.
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6(v6),
        },
        v4 => v4,
    };
    let (rule, what) = match ip {
        IpAddr::V4(v4) if METADATA_V4.contains(&v4) => ("url-metadata", "a cloud metadata address"),
        IpAddr::V6(v6) if v6 == METADATA_V6 => ("url-metadata", "a cloud metadata address"),
        _ if allow_local => return None,
        IpAddr::V4(v4) => {
            let [a, b, ..] = v4.octets();
            if v4.is_loopback() {
                ("url-loopback", "a loopback address")
            } else if v4.is_unspecified() || a == 0 {
                ("url-unspecified", "an unspecified address")
            } else if v4.is_private() || (a == 100 && (64..128).contains(&b)) {
                ("url-private", "a private address")
            } else if v4.is_link_local() {
                ("url-link-local", "a link-local address")
            } else if v4.is_multicast() || v4.is_broadcast() || a >= 240 {
                (
                    "url-multicast",
                    "a multicast, broadcast or reserved address",
                )
            } else {
                return None;
            }
        }
        IpAddr::V6(v6) => {
            let first = v6.segments()[0];
            if v6.is_loopback() {
                ("url-loopback", "a loopback address")
            } else if v6.is_unspecified() {
                ("url-unspecified", "an unspecified address")
            } else if first & 0xfe00 == 0xfc00 {
                ("url-private", "a unique-local address")
            } else if first & 0xffc0 == 0xfe80 {
                ("url-link-local", "a link-local address")
            } else if v6.is_multicast() {
                ("url-multicast", "a multicast address")
            } else if let Some(v4) = v6.to_ipv4() {
                // IPv4-compatible (::a.b.c.d) and NAT64 forms carry an IPv4 address.
                return address_refusal(IpAddr::V4(v4), false).filter(|_| first == 0);
            } else {
                return None;
            }
        }
    };
    Some(Refusal::new(rule, format!("{ip} is {what}")))
}

/// Where a client's resolver and redirect policy put what they refused, so the connection's
/// owner can name the rule whatever the HTTP stack makes of the error on its way up.
pub type RefusalSlot = Arc<std::sync::Mutex<Option<Refusal>>>;

fn note(slot: &RefusalSlot, refusal: &Refusal) {
    let mut slot = slot
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    slot.get_or_insert_with(|| refusal.clone());
}

/// A DNS resolver that drops refused addresses; a name with nothing left is an error naming the
/// rule. Resolution itself is the system's (`getaddrinfo` on the blocking pool).
#[derive(Debug, Clone)]
pub struct FilteringResolver {
    pub allow_local: bool,
    pub refusals: RefusalSlot,
}

impl Resolve for FilteringResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let allow_local = self.allow_local;
        let slot = self.refusals.clone();
        let host = name.as_str().to_owned();
        Box::pin(async move {
            if let Some(refusal) = metadata_host(&host) {
                note(&slot, &refusal);
                return Err(Box::new(refusal) as Box<dyn std::error::Error + Send + Sync>);
            }
            let found: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0))
                .await
                .map_err(|e| Box::new(e) as Box<dyn std::error::Error + Send + Sync>)?
                .collect();
            let mut refused = None;
            let allowed: Vec<SocketAddr> = found
                .into_iter()
                .filter(|addr| match address_refusal(addr.ip(), allow_local) {
                    None => true,
                    Some(refusal) => {
                        refused.get_or_insert(refusal);
                        false
                    }
                })
                .collect();
            if allowed.is_empty() {
                let refusal = match refused {
                    Some(refusal) => Refusal::new(
                        refusal.rule,
                        format!(
                            "{host} resolves only to refused addresses ({})",
                            refusal.detail
                        ),
                    ),
                    None => Refusal::new("url-unresolved", format!("{host} has no address")),
                };
                note(&slot, &refusal);
                return Err(Box::new(refusal) as Box<dyn std::error::Error + Send + Sync>);
            }
            Ok(Box::new(allowed.into_iter()) as Addrs)
        })
    }
}

/// A refusal when `host` names a cloud metadata service.
pub fn metadata_host(host: &str) -> Option<Refusal> {
    let host = host.trim_end_matches('.').to_ascii_lowercase();
    METADATA_HOSTS
        .contains(&host.as_str())
        .then(|| Refusal::new("url-metadata", format!("{host} is a cloud metadata host")))
}

/// The HTTP client for one downstream server. With `rules`, the URL policy applies to every
/// connection and redirect hop, and proxies from the environment are ignored (a proxy would
/// resolve the name itself, out of our sight). Redirects follow rmcp's rule for MCP: only
/// same-origin 307/308 (which keep the method and body), at most ten hops.
pub fn http_client(
    rules: Option<UrlRules>,
    refusals: RefusalSlot,
) -> reqwest::Result<reqwest::Client> {
    let mut builder = reqwest::Client::builder().connect_timeout(Duration::from_secs(10));
    if let Some(rules) = &rules {
        builder = builder.no_proxy().dns_resolver(Arc::new(FilteringResolver {
            allow_local: rules.allow_local,
            refusals: refusals.clone(),
        }));
    }
    builder
        .redirect(reqwest::redirect::Policy::custom(move |attempt| {
            if let Some(rules) = &rules
                && let Err(refusal) = super::check_url(attempt.url(), rules)
            {
                let refusal = refusal.redirected();
                note(&refusals, &refusal);
                return attempt.error(refusal);
            }
            let keeps_body = matches!(
                attempt.status(),
                reqwest::StatusCode::TEMPORARY_REDIRECT | reqwest::StatusCode::PERMANENT_REDIRECT
            );
            let same_origin = attempt
                .previous()
                .first()
                .is_some_and(|first| first.origin() == attempt.url().origin());
            if !keeps_body || !same_origin {
                attempt.stop()
            } else if attempt.previous().len() > MAX_REDIRECTS {
                attempt.error(format!("more than {MAX_REDIRECTS} redirects"))
            } else {
                attempt.follow()
            }
        }))
        .build()
}

/// Whether an error (or one of its causes) is a refusal by the security policy, and which.
pub fn find_refusal<'a>(error: &'a (dyn std::error::Error + 'static)) -> Option<&'a Refusal> {
    let mut current = Some(error);
    while let Some(error) = current {
        if let Some(refusal) = error.downcast_ref::<Refusal>() {
            return Some(refusal);
        }
        current = error.source();
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(ip: &str, allow_local: bool) -> Option<&'static str> {
        address_refusal(ip.parse().unwrap(), allow_local).map(|refusal| refusal.rule)
    }

    #[test]
    fn classifies_addresses() {
        assert_eq!(refused("127.0.0.1", false), Some("url-loopback"));
        assert_eq!(refused("10.1.2.3", false), Some("url-private"));
        assert_eq!(refused("172.16.0.1", false), Some("url-private"));
        assert_eq!(refused("192.168.1.1", false), Some("url-private"));
        assert_eq!(refused("100.64.0.1", false), Some("url-private"));
        assert_eq!(refused("169.254.1.1", false), Some("url-link-local"));
        assert_eq!(refused("224.0.0.1", false), Some("url-multicast"));
        assert_eq!(refused("0.0.0.0", false), Some("url-unspecified"));
        assert_eq!(refused("::1", false), Some("url-loopback"));
        assert_eq!(refused("::", false), Some("url-unspecified"));
        assert_eq!(refused("fe80::1", false), Some("url-link-local"));
        assert_eq!(refused("fd12::1", false), Some("url-private"));
        assert_eq!(refused("ff02::1", false), Some("url-multicast"));
        assert_eq!(refused("::ffff:127.0.0.1", false), Some("url-loopback"));
        assert_eq!(refused("::ffff:10.0.0.1", false), Some("url-private"));
        assert_eq!(refused("8.8.8.8", false), None);
        assert_eq!(refused("2606:4700::1111", false), None);
    }

    #[test]
    fn metadata_is_refused_even_with_local_targets() {
        assert_eq!(refused("169.254.169.254", true), Some("url-metadata"));
        assert_eq!(
            refused("::ffff:169.254.169.254", true),
            Some("url-metadata")
        );
        assert_eq!(refused("fd00:ec2::254", true), Some("url-metadata"));
        assert_eq!(refused("127.0.0.1", true), None);
        assert_eq!(refused("10.0.0.1", true), None);
        assert!(metadata_host("Metadata.Google.Internal.").is_some());
        assert!(metadata_host("example.com").is_none());
    }
}
