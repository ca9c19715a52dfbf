//! The client's address: the TCP peer, or, when the peer is a proxy the
//! operator declared (`PURSER_TRUSTED_PROXIES`), the address that proxy
//! reports in `X-Forwarded-For`. Per-address rate limits, the failed-
//! authentication brake, key CIDR allowlists and audit records all use it.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;
use axum::http::{Extensions, HeaderMap};
use ipnet::IpNet;

use super::AppState;

pub fn client_ip(headers: &HeaderMap, extensions: &Extensions, trusted: &[IpNet]) -> Option<IpAddr> {
    let peer = extensions.get::<ConnectInfo<SocketAddr>>()?.0.ip();
    Some(forwarded_for(peer, headers, trusted))
}

/// The client's address, for handlers that act without a bearer
/// credential (the console); `None` only when the server runs without
/// connection info (in-process tests).
pub struct ClientAddr(pub Option<IpAddr>);

impl FromRequestParts<Arc<AppState>> for ClientAddr {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, state: &Arc<AppState>) -> Result<Self, Self::Rejection> {
        Ok(ClientAddr(client_ip(&parts.headers, &parts.extensions, &state.config.trusted_proxies)))
    }
}

fn forwarded_for(peer: IpAddr, headers: &HeaderMap, trusted: &[IpNet]) -> IpAddr {
    let is_trusted = |ip: &IpAddr| trusted.iter().any(|net| net.contains(ip));
    if !is_trusted(&peer) {
        return peer;
    }
    let hops: Vec<&str> = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .collect();
    // Right to left, nearest hop first: each trusted proxy appended the
    // address it saw, so the first one that is not a proxy of ours is the
    // client. Entries further left came from the client and can be forged.
    let mut client = peer;
    for hop in hops.iter().rev() {
        match hop.parse::<IpAddr>() {
            Ok(ip) => {
                client = ip;
                if !is_trusted(&ip) {
                    break;
                }
            }
            // Unreadable: stop at the last address a trusted hop vouched for.
            Err(_) => break,
        }
    }
    client
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with(xff: &[&str]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for value in xff {
            headers.append("x-forwarded-for", value.parse().unwrap());
        }
        headers
    }

    fn nets(list: &[&str]) -> Vec<IpNet> {
        list.iter().map(|n| n.parse().unwrap()).collect()
    }

    #[test]
    fn only_a_trusted_peer_is_believed_and_only_from_the_right() {
        let proxy: IpAddr = "10.0.0.2".parse().unwrap();
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        let trusted = nets(&["10.0.0.0/24"]);
        // No proxies declared: the header is ignored.
        assert_eq!(forwarded_for(proxy, &with(&["203.0.113.9"]), &[]), proxy);
        // An untrusted peer cannot claim another address.
        assert_eq!(forwarded_for(ip("198.51.100.1"), &with(&["203.0.113.9"]), &trusted), ip("198.51.100.1"));
        // Through our proxy: the address it appended.
        assert_eq!(forwarded_for(proxy, &with(&["203.0.113.9"]), &trusted), ip("203.0.113.9"));
        // A forged entry on the left is skipped; chains of our proxies are walked.
        assert_eq!(
            forwarded_for(proxy, &with(&["1.2.3.4, 203.0.113.9, 10.0.0.7"]), &trusted),
            ip("203.0.113.9")
        );
        assert_eq!(forwarded_for(proxy, &with(&["1.2.3.4", "203.0.113.9"]), &trusted), ip("203.0.113.9"));
        // Nothing usable: the proxy itself.
        assert_eq!(forwarded_for(proxy, &with(&[]), &trusted), proxy);
        assert_eq!(forwarded_for(proxy, &with(&["garbage"]), &trusted), proxy);
    }
}
