//! The client's address: the TCP peer, or, when the peer is a trusted proxy
//! (`TRUSTED_PROXIES`), the right-most `X-Forwarded-For` entry that is not one.
//!
//! Right-most, because every proxy appends the address it saw: entries to the left of
//! the first untrusted one were written by the client and prove nothing. A header sent
//! by an untrusted peer is ignored, so spoofing it changes nothing.

use std::future::{Ready, ready};
use std::net::IpAddr;

use actix_web::dev::Payload;
use actix_web::http::header::HeaderMap;
use actix_web::{FromRequest, HttpMessage, HttpRequest};
use ipnet::IpNet;

use crate::error::AppError;

/// The address a request is attributed to (throttling, logs). Set by the request
/// middleware on every request; `None` only when the peer is unknown (in-process tests
/// without a peer).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientAddress(pub Option<IpAddr>);

impl ClientAddress {
    /// The address as text, `unknown` without one.
    pub fn to_key(self) -> String {
        self.0
            .map_or_else(|| "unknown".to_string(), |ip| ip.to_string())
    }
}

/// `TRUSTED_PROXIES`, parsed once when the app is built (app data), not per request.
#[derive(Debug, Clone, Default)]
pub struct TrustedProxies(pub Vec<IpNet>);

/// Whom to believe: `peer` is the TCP peer, `headers` the request's.
pub fn resolve(peer: Option<IpAddr>, headers: &HeaderMap, trusted: &[IpNet]) -> Option<IpAddr> {
    let peer = peer.map(canonical)?;
    if !is_trusted(peer, trusted) {
        return Some(peer);
    }
    // Every X-Forwarded-For header line, in order, as one comma-separated list.
    let forwarded: Vec<&str> = headers
        .get_all("x-forwarded-for")
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .collect();
    for entry in forwarded.iter().rev() {
        let Some(ip) = parse_entry(entry) else {
            // A malformed hop: nothing left of it can be trusted, and it is not an address.
            return Some(peer);
        };
        if !is_trusted(ip, trusted) {
            return Some(ip);
        }
    }
    // Every hop was a trusted proxy: the left-most one is as far as we can see.
    forwarded
        .first()
        .and_then(|e| parse_entry(e))
        .or(Some(peer))
}

fn is_trusted(ip: IpAddr, trusted: &[IpNet]) -> bool {
    trusted.iter().any(|net| net.contains(&ip))
}

/// `::ffff:10.0.0.1` is the IPv4 address it maps.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4),
        v4 => v4,
    }
}

/// An entry is an address, optionally with a port (`1.2.3.4:5678`, `[::1]:80`).
fn parse_entry(entry: &str) -> Option<IpAddr> {
    if let Ok(ip) = entry.parse::<IpAddr>() {
        return Some(canonical(ip));
    }
    if let Ok(sock) = entry.parse::<std::net::SocketAddr>() {
        return Some(canonical(sock.ip()));
    }
    None
}

impl FromRequest for ClientAddress {
    type Error = AppError;
    type Future = Ready<Result<Self, AppError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let found = req.extensions().get::<ClientAddress>().copied();
        ready(Ok(found.unwrap_or_else(|| {
            ClientAddress(req.peer_addr().map(|a| canonical(a.ip())))
        })))
    }
}

#[cfg(test)]
mod tests {
    use actix_web::http::header::{HeaderName, HeaderValue};

    use super::*;

    fn headers(xff: &[&str]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for v in xff {
            map.append(
                HeaderName::from_static("x-forwarded-for"),
                HeaderValue::from_str(v).expect("header"),
            );
        }
        map
    }

    fn nets(list: &[&str]) -> Vec<IpNet> {
        list.iter().map(|s| s.parse().expect("cidr")).collect()
    }

    fn ip(s: &str) -> Option<IpAddr> {
        Some(s.parse().expect("ip"))
    }

    #[test]
    fn an_untrusted_peer_is_the_client_whatever_it_claims() {
        let h = headers(&["6.6.6.6"]);
        assert_eq!(resolve(ip("203.0.113.9"), &h, &[]), ip("203.0.113.9"));
        assert_eq!(
            resolve(ip("203.0.113.9"), &h, &nets(&["10.0.0.0/8"])),
            ip("203.0.113.9")
        );
    }

    #[test]
    fn behind_trusted_proxies_the_right_most_untrusted_hop_is_the_client() {
        let trusted = nets(&["10.0.0.0/8", "192.168.1.1/32"]);
        // The client spoofed 6.6.6.6; the edge proxy appended what it saw (198.51.100.7).
        let h = headers(&["6.6.6.6, 198.51.100.7", "10.1.2.3"]);
        assert_eq!(resolve(ip("192.168.1.1"), &h, &trusted), ip("198.51.100.7"));
        assert_eq!(
            resolve(ip("10.0.0.5"), &headers(&[]), &trusted),
            ip("10.0.0.5"),
            "no header: the proxy itself"
        );
        assert_eq!(
            resolve(ip("10.0.0.5"), &headers(&["garbage, 10.0.0.9"]), &trusted),
            ip("10.0.0.5"),
            "a malformed hop stops the walk"
        );
        assert_eq!(
            resolve(
                ip("::ffff:10.0.0.5"),
                &headers(&["[2001:db8::1]:443"]),
                &trusted
            ),
            ip("2001:db8::1"),
            "mapped IPv4 peers and bracketed IPv6 entries"
        );
        assert_eq!(
            resolve(ip("10.0.0.5"), &headers(&["10.0.0.7, 10.0.0.8"]), &trusted),
            ip("10.0.0.7"),
            "all hops trusted: the left-most"
        );
    }
}
