//! The `Host` and `Origin` rules: DNS-rebinding protection, on `/mcp` and on `/health` alike. A
//! request carries one `Host` that the allow-list names (`--allowed-host`; loopback names by
//! default) and at most one `Origin` that `--allowed-origin` names; `/health` also takes an IP
//! address or `localhost` as `Host`, as probes send. rmcp's own `Host` check is turned off
//! (ARCHITECTURE.md says why).

use std::net::IpAddr;

use axum::http::{HeaderMap, StatusCode, header};

use super::Guard;
use super::refusals::{self, Refused};

/// The `Host` headers accepted (DNS-rebinding protection).
pub(crate) struct Hosts {
    /// `None`: any (bound beyond loopback without `--allowed-host`).
    allowed: Option<Vec<Authority>>,
}

/// A host, lowercase and without brackets, and a port when one is given.
#[derive(Debug, PartialEq, Eq)]
struct Authority {
    host: String,
    port: Option<u16>,
}

impl Authority {
    fn parse(text: &str) -> Option<Authority> {
        let text = text.trim();
        if text.is_empty() {
            return None;
        }
        let authority = axum::http::uri::Authority::try_from(text).ok()?;
        Some(Authority {
            host: authority
                .host()
                .trim_start_matches('[')
                .trim_end_matches(']')
                .to_ascii_lowercase(),
            port: authority.port_u16(),
        })
    }
}

impl Hosts {
    /// `allowed` as `host` or `host:port` entries; none means any host. Entries that are not a
    /// host match nothing: a list of only such entries allows no host, never every host.
    pub(crate) fn new<S: AsRef<str>>(allowed: impl IntoIterator<Item = S>) -> Hosts {
        let mut given = false;
        let allowed: Vec<Authority> = allowed
            .into_iter()
            .inspect(|_| given = true)
            .filter_map(|entry| {
                let entry = entry.as_ref();
                Authority::parse(entry).or_else(|| {
                    // A bare IPv6 address (`::1`) is not an authority until bracketed.
                    Authority::parse(&format!("[{entry}]"))
                })
            })
            .collect();
        Hosts {
            allowed: given.then_some(allowed),
        }
    }

    fn allows(&self, host: &Authority) -> bool {
        let Some(allowed) = &self.allowed else {
            return true;
        };
        allowed.iter().any(|entry| {
            entry.host == host.host && entry.port.is_none_or(|port| Some(port) == host.port)
        })
    }

    /// For `/health`: also an IP address or `localhost`, as load balancers and container health
    /// checks send. A DNS-rebinding page can only send a name it controls.
    fn allows_probe(&self, host: &Authority) -> bool {
        self.allows(host) || host.host == "localhost" || host.host.parse::<IpAddr>().is_ok()
    }
}

impl Guard {
    pub(super) fn origin_allowed(&self, origin: &str) -> bool {
        match &self.config.allowed_origins {
            Some(allowed) => origin_listed(allowed, origin),
            None => true,
        }
    }
}

/// Whether `origin` is the origin of a page served by the same `host` (a `Host` header): same
/// host and port, over http or https. `null` and anything unparsable are not.
pub(super) fn same_origin(origin: &str, host: &str) -> bool {
    let (Ok(url), Some(host)) = (url::Url::parse(origin), Authority::parse(host)) else {
        return false;
    };
    let origin_host = url
        .host_str()
        .map(|name| name.trim_start_matches('[').trim_end_matches(']'));
    matches!(url.scheme(), "http" | "https")
        && origin_host.is_some_and(|name| name.eq_ignore_ascii_case(&host.host))
        && url.port_or_known_default() == host.port.or(url.port_or_known_default())
}

/// Whether an entry of `allowed` (`scheme://host[:port]`, port `*` for any, `*` for all) names
/// `origin`.
pub(super) fn origin_listed(allowed: &[String], origin: &str) -> bool {
    let Ok(url) = url::Url::parse(origin) else {
        return false;
    };
    let port = url.port_or_known_default();
    allowed.iter().any(|entry| {
        if entry == "*" {
            return true;
        }
        let (base, any_port) = match entry.strip_suffix(":*") {
            Some(base) => (base, true),
            None => (entry.as_str(), false),
        };
        let Ok(allowed) = url::Url::parse(base) else {
            return false;
        };
        allowed.scheme() == url.scheme()
            && allowed.host_str() == url.host_str()
            && (any_port || allowed.port_or_known_default() == port)
    })
}

impl Guard {
    /// The `Host` and `Origin` checks, on `/mcp` and on `/health` (`probe`: an IP address or
    /// `localhost` passes too). A request with several of either is refused: which one a
    /// server or a proxy in front of it believes is anyone's guess.
    pub(super) fn check_host_and_origin(
        &self,
        headers: &HeaderMap,
        probe: bool,
    ) -> Result<(), Refused> {
        self.check_host(headers, probe)?;
        self.check_origin(headers)
    }

    fn check_host(&self, headers: &HeaderMap, probe: bool) -> Result<(), Refused> {
        let mut hosts = headers.get_all(header::HOST).iter();
        match (hosts.next(), hosts.next()) {
            (Some(_), Some(_)) => Err(refusals::invalid(
                StatusCode::BAD_REQUEST,
                "several Host headers: a request carries exactly one",
            )),
            (Some(host), None) => {
                let text = host.to_str().unwrap_or("");
                let allowed = Authority::parse(text).is_some_and(|host| {
                    if probe {
                        self.hosts.allows_probe(&host)
                    } else {
                        self.hosts.allows(&host)
                    }
                });
                if allowed {
                    Ok(())
                } else {
                    Err(refusals::invalid(
                        StatusCode::FORBIDDEN,
                        format!(
                            "Host {} is not allowed (see --allowed-host)",
                            String::from_utf8_lossy(host.as_bytes())
                        ),
                    ))
                }
            }
            (None, _) if self.hosts.allowed.is_some() => Err(refusals::invalid(
                StatusCode::BAD_REQUEST,
                "missing Host header",
            )),
            (None, _) => Ok(()),
        }
    }

    fn check_origin(&self, headers: &HeaderMap) -> Result<(), Refused> {
        let mut origins = headers.get_all(header::ORIGIN).iter();
        match (origins.next(), origins.next()) {
            (Some(_), Some(_)) => Err(refusals::invalid(
                StatusCode::FORBIDDEN,
                "several Origin headers: a request carries one at most",
            )),
            (Some(origin), None) => {
                let text = origin.to_str().unwrap_or("");
                if self.origin_allowed(text) {
                    Ok(())
                } else {
                    Err(refusals::invalid(
                        StatusCode::FORBIDDEN,
                        format!(
                            "origin {} is not allowed (see --allowed-origin)",
                            String::from_utf8_lossy(origin.as_bytes())
                        ),
                    ))
                }
            }
            (None, _) => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::Cors;
    use crate::upstream::http::guard::GuardConfig;
    use crate::upstream::http::guard::tests::{guard, guard_config};

    #[test]
    fn origins_match_scheme_host_and_port() {
        let guard = guard(Some(vec!["http://localhost:*", "https://app.example.com"]));
        assert!(guard.origin_allowed("http://localhost:3000"));
        assert!(guard.origin_allowed("https://app.example.com"));
        assert!(!guard.origin_allowed("https://app.example.com:8443"));
        assert!(!guard.origin_allowed("http://evil.example"));
        assert!(!guard.origin_allowed("not a url"));
        assert!(
            Guard::new(
                GuardConfig {
                    allowed_origins: None,
                    named_origins: Vec::new(),
                    ..guard_config()
                },
                Cors::Off,
                Hosts::new(Vec::<String>::new()),
                None
            )
            .origin_allowed("http://anything.example")
        );
    }

    #[test]
    fn a_page_is_same_origin_only_with_the_host_and_port_it_was_sent_to() {
        assert!(same_origin("http://127.0.0.1:12006", "127.0.0.1:12006"));
        assert!(same_origin("http://LOCALHOST:12006", "localhost:12006"));
        assert!(same_origin("http://[::1]:12006", "[::1]:12006"));
        assert!(same_origin("http://proxy.example", "proxy.example"));
        assert!(!same_origin("http://localhost:3000", "localhost:12006"));
        assert!(!same_origin("http://evil.example:12006", "localhost:12006"));
        assert!(!same_origin("null", "localhost:12006"));
        assert!(!same_origin("file://", "localhost:12006"));
        assert!(!same_origin("http://localhost:12006", ""));
    }

    #[test]
    fn hosts_match_name_and_port_and_probes_may_use_an_address() {
        let host = |text: &str| Authority::parse(text).unwrap();
        let hosts = Hosts::new(["localhost", "127.0.0.1", "::1", "proxy.example:8443"]);
        assert!(hosts.allows(&host("localhost:12006")));
        assert!(hosts.allows(&host("LOCALHOST")));
        assert!(hosts.allows(&host("[::1]:12006")));
        assert!(hosts.allows(&host("proxy.example:8443")));
        assert!(!hosts.allows(&host("proxy.example:80")));
        assert!(!hosts.allows(&host("evil.example")));
        assert!(!hosts.allows(&host("10.0.0.5:8081")));
        assert!(hosts.allows_probe(&host("10.0.0.5:8081")));
        assert!(hosts.allows_probe(&host("[fd00::5]")));
        assert!(!hosts.allows_probe(&host("evil.example:12006")));
        assert!(Hosts::new(Vec::<String>::new()).allows(&host("anything.example")));
        assert!(!Hosts::new(["not a host"]).allows(&host("anything.example")));
    }
}
