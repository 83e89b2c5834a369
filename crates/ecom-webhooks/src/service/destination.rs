//! Where deliveries may go: never to a private, loopback, link-local, unspecified or
//! multicast address unless `WEBHOOK_ALLOW_PRIVATE`. Checked when an endpoint is written
//! (host names resolved) and again at every attempt by the delivery client's resolver,
//! which hands the connector only the addresses it checked, so a name that resolves to a
//! public address at the check and a private one at the connect (DNS rebinding) cannot
//! slip through. Kept-alive connections are reused only to the address they were opened
//! to, which was checked then; a new connection (another host, or after the idle timeout)
//! resolves and checks again.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use reqwest::Url;
use reqwest::dns::{Addrs, Name, Resolve, Resolving};

use crate::error::WebhooksError;

/// Longest accepted URL.
pub const MAX_URL_LEN: usize = 2048;

/// Whether deliveries may go to `ip`: a public unicast address.
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_public_v4(v4),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => is_public_v4(v4),
            None => is_public_v6(v6),
        },
    }
}

fn is_public_v4(ip: Ipv4Addr) -> bool {
    let [a, b, c, _] = ip.octets();
    !(ip.is_private()
        || ip.is_loopback()
        || ip.is_link_local()
        || ip.is_unspecified()
        || ip.is_multicast()
        || ip.is_broadcast()
        || ip.is_documentation()
        || a == 0 // "this network"
        || (a == 100 && (64..128).contains(&b)) // shared address space (CGNAT)
        || (a == 192 && b == 0 && c == 0) // IETF protocol assignments
        || (a == 198 && (b == 18 || b == 19)) // benchmarking
        || a >= 240) // reserved
}

fn is_public_v6(ip: Ipv6Addr) -> bool {
    let first = ip.segments()[0];
    !(ip.is_loopback()
        || ip.is_unspecified()
        || ip.is_multicast()
        || (first & 0xfe00) == 0xfc00 // unique local
        || (first & 0xffc0) == 0xfe80 // link-local
        || (first & 0xffc0) == 0xfec0 // site-local (deprecated)
        || (first == 0x2001 && ip.segments()[1] == 0xdb8) // documentation
        || ip.to_ipv4().is_some_and(|v4| !is_public_v4(v4) && ip.segments()[..6] == [0; 6]))
}

/// Parses and checks a webhook URL's shape: http(s), a host, at most [`MAX_URL_LEN`].
pub fn parse_url(raw: &str) -> Result<Url, WebhooksError> {
    let raw = raw.trim();
    if raw.len() > MAX_URL_LEN {
        return Err(WebhooksError::invalid(
            "url",
            format!("at most {MAX_URL_LEN} characters"),
        ));
    }
    let url = Url::parse(raw)
        .map_err(|_| WebhooksError::invalid("url", "must be an absolute http(s) URL"))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(WebhooksError::invalid(
            "url",
            "must be an http or https URL",
        ));
    }
    if url.host().is_none() {
        return Err(WebhooksError::invalid("url", "must name a host"));
    }
    Ok(url)
}

/// The address of a URL whose host is an IP literal (the resolver is not asked for those).
pub fn literal_ip(url: &Url) -> Option<IpAddr> {
    let host = url.host_str()?;
    let host = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    host.parse().ok()
}

/// The write-time check: with private destinations refused, every address the host has
/// (an IP literal, or what its name resolves to now) must be public; a name that does not
/// resolve is refused too.
pub async fn check_destination(url: &Url, allow_private: bool) -> Result<(), WebhooksError> {
    if allow_private {
        return Ok(());
    }
    if let Some(ip) = literal_ip(url) {
        return if is_public(ip) {
            Ok(())
        } else {
            Err(WebhooksError::UrlNotAllowed)
        };
    }
    let host = url.host_str().unwrap_or_default();
    let port = url.port_or_known_default().unwrap_or(443);
    let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host, port))
        .await
        .map_err(|_| WebhooksError::invalid("url", "the host name does not resolve"))?
        .collect();
    if addrs.is_empty() {
        return Err(WebhooksError::invalid(
            "url",
            "the host name does not resolve",
        ));
    }
    if addrs.iter().all(|a| is_public(a.ip())) {
        Ok(())
    } else {
        Err(WebhooksError::UrlNotAllowed)
    }
}

/// The resolver of the delivery client: resolves as the system does, then keeps only the
/// addresses deliveries may go to (all of them with `allow_private`). When none is left
/// the connect fails with [`DestinationNotAllowed`] in its error chain.
#[derive(Debug, Clone, Copy)]
pub struct CheckedResolver {
    pub allow_private: bool,
}

/// A delivery's host resolved only to addresses deliveries may not go to.
#[derive(Debug, thiserror::Error)]
#[error("destination_not_allowed")]
pub struct DestinationNotAllowed;

impl Resolve for CheckedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let allow_private = self.allow_private;
        Box::pin(async move {
            let found: Vec<SocketAddr> = tokio::net::lookup_host((name.as_str(), 0))
                .await?
                .filter(|a| allow_private || is_public(a.ip()))
                .collect();
            if found.is_empty() {
                return Err(
                    Box::new(DestinationNotAllowed) as Box<dyn std::error::Error + Send + Sync>
                );
            }
            Ok(Box::new(found.into_iter()) as Addrs)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn private_and_special_addresses_are_not_public() {
        for refused in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "0.0.0.0",
            "224.0.0.1",
            "255.255.255.255",
            "100.64.0.1",
            "::1",
            "::",
            "fe80::1",
            "fd00::1",
            "ff02::1",
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.1",
        ] {
            let ip: IpAddr = refused.parse().expect("address");
            assert!(!is_public(ip), "{refused} must be refused");
        }
        for allowed in [
            "93.184.216.34",
            "8.8.8.8",
            "2606:4700::1111",
            "::ffff:8.8.8.8",
        ] {
            let ip: IpAddr = allowed.parse().expect("address");
            assert!(is_public(ip), "{allowed} must be allowed");
        }
    }

    #[test]
    fn urls_must_be_http_with_a_host() {
        assert!(parse_url("https://example.com/hook").is_ok());
        assert!(parse_url("http://127.0.0.1:9000/").is_ok());
        for bad in [
            "ftp://example.com/",
            "example.com",
            "file:///etc/passwd",
            "mailto:a@b.c",
        ] {
            assert!(parse_url(bad).is_err(), "{bad} must be refused");
        }
    }
}
