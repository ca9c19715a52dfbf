//! Where webhooks may be delivered: server-side request forgery (SSRF) protection.
//!
//! Merchants choose webhook URLs, and purser then makes requests to them from inside the
//! operator's network. Without checks, a merchant could point an endpoint at the cloud metadata
//! service (`169.254.169.254`, which hands out instance credentials), at an admin interface on
//! `localhost`, or at anything else on the private network, and use purser as a proxy into it.
//!
//! Two layers are needed:
//!
//! * [`check_url`] at registration *and* before each delivery: rejects bad schemes, embedded
//!   credentials and IP-literal hosts in forbidden ranges. IP literals never reach a DNS resolver,
//!   so this is the only place they are checked.
//! * [`GuardedResolver`], installed on the delivery `reqwest::Client`: checks every address a
//!   host name resolves to at every connection. A name that resolved to a public address when the
//!   endpoint was registered can later be re-pointed at `127.0.0.1` (DNS rebinding); checking at
//!   connection time, on the very addresses that will be dialled, closes that gap.
//!
//! The delivery client should also be built with `.no_proxy()` (through a proxy the resolver only
//! sees the proxy's name, not the target's) and `.redirect(reqwest::redirect::Policy::none())`
//! (a redirect to an IP literal would bypass the resolver and [`check_url`]).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use ipnet::{IpNet, Ipv4Net, Ipv6Net};
use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use reqwest::Url;

/// Which webhook targets are acceptable.
#[derive(Clone, Debug)]
pub struct TargetPolicy {
    /// Also accept plain `http://` URLs. Only for development (`--dev`): over http, anyone on the
    /// path can read payment events and replay them within the signature's timestamp tolerance.
    pub allow_http: bool,
    /// Networks that are permitted even though they are in a forbidden range, e.g. an internal
    /// webhook relay explicitly configured by the operator, or `127.0.0.0/8` in development.
    pub allowed_nets: Vec<IpNet>,
}

/// Why a webhook target was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TargetError {
    #[error("webhook URL is not a valid absolute URL: {0}")]
    BadUrl(String),
    #[error("webhook URL scheme `{0}` is not allowed (use https)")]
    SchemeNotAllowed(String),
    #[error("webhook URL must not contain a user name or password")]
    Credentials,
    #[error(
        "webhook target address {0} is forbidden: loopback, private, link-local and other internal \
         addresses are not allowed unless explicitly permitted in the configuration"
    )]
    ForbiddenAddress(IpAddr),
    #[error("webhook host {0} could not be resolved")]
    Unresolvable(String),
}

/// Validates a webhook URL and returns it parsed.
///
/// Only `https` is accepted (plus `http` when `policy.allow_http`): other schemes could reach
/// unrelated services, and http would expose events in transit. User info (`user:pw@`) is refused
/// because it would be sent to the target and logged, and is a common trick to make a URL look
/// like it points somewhere else. IP-literal hosts are checked with [`is_forbidden`] here, since
/// no resolver sees them; host names are left to [`GuardedResolver`].
pub fn check_url(url: &str, policy: &TargetPolicy) -> Result<Url, TargetError> {
    let parsed = Url::parse(url).map_err(|e| TargetError::BadUrl(e.to_string()))?;
    match parsed.scheme() {
        "https" => {}
        "http" if policy.allow_http => {}
        other => return Err(TargetError::SchemeNotAllowed(other.to_owned())),
    }
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err(TargetError::Credentials);
    }
    let host = parsed.host_str().ok_or_else(|| TargetError::BadUrl("the URL has no host".to_owned()))?;
    // The URL parser has already normalised odd IPv4 spellings (`0x7f.1`, `2130706433`) to dotted
    // form; IPv6 literals come back in brackets.
    let literal = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')).unwrap_or(host);
    if let Ok(ip) = literal.parse::<IpAddr>() {
        if is_forbidden(ip, policy) {
            return Err(TargetError::ForbiddenAddress(ip));
        }
    }
    Ok(parsed)
}

const fn net4(addr: Ipv4Addr, prefix_len: u8) -> Ipv4Net {
    Ipv4Net::new_assert(addr, prefix_len)
}

const fn net6(addr: Ipv6Addr, prefix_len: u8) -> Ipv6Net {
    Ipv6Net::new_assert(addr, prefix_len)
}

/// IPv4 ranges that must never be webhook targets: not publicly routable, or special-purpose.
const FORBIDDEN_V4: &[Ipv4Net] = &[
    net4(Ipv4Addr::new(0, 0, 0, 0), 8), // "this network", includes the unspecified address
    net4(Ipv4Addr::new(10, 0, 0, 0), 8), // private
    net4(Ipv4Addr::new(100, 64, 0, 0), 10), // carrier-grade NAT, often internal infrastructure
    net4(Ipv4Addr::new(127, 0, 0, 0), 8), // loopback
    net4(Ipv4Addr::new(169, 254, 0, 0), 16), // link-local, includes the metadata service 169.254.169.254
    net4(Ipv4Addr::new(172, 16, 0, 0), 12), // private
    net4(Ipv4Addr::new(192, 0, 0, 0), 24), // IETF protocol assignments
    net4(Ipv4Addr::new(192, 0, 2, 0), 24), // documentation (TEST-NET-1)
    net4(Ipv4Addr::new(192, 168, 0, 0), 16), // private
    net4(Ipv4Addr::new(198, 18, 0, 0), 15), // benchmarking
    net4(Ipv4Addr::new(198, 51, 100, 0), 24), // documentation (TEST-NET-2)
    net4(Ipv4Addr::new(203, 0, 113, 0), 24), // documentation (TEST-NET-3)
    net4(Ipv4Addr::new(224, 0, 0, 0), 4), // multicast
    net4(Ipv4Addr::new(240, 0, 0, 0), 4), // reserved, includes broadcast 255.255.255.255
];

/// IPv6 ranges that must never be webhook targets. Ranges that embed an IPv4 address
/// (mapped, compatible, NAT64, 6to4) are handled separately by checking the embedded address;
/// that also covers the unspecified `::` and loopback `::1`, which fall in the IPv4-compatible
/// range as `0.0.0.0` and `0.0.0.1`.
const FORBIDDEN_V6: &[Ipv6Net] = &[
    net6(Ipv6Addr::new(0x64, 0xff9b, 1, 0, 0, 0, 0, 0), 48), // local-use NAT64 (RFC 8215)
    net6(Ipv6Addr::new(0x100, 0, 0, 0, 0, 0, 0, 0), 64),     // discard-only
    net6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0), 32), // documentation
    net6(Ipv6Addr::new(0x3fff, 0, 0, 0, 0, 0, 0, 0), 20),    // documentation (RFC 9637)
    net6(Ipv6Addr::new(0xfc00, 0, 0, 0, 0, 0, 0, 0), 7), // unique local, includes AWS metadata fd00:ec2::254
    net6(Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 0), 10), // link-local
    net6(Ipv6Addr::new(0xfec0, 0, 0, 0, 0, 0, 0, 0), 10), // site-local (deprecated, still private)
    net6(Ipv6Addr::new(0xff00, 0, 0, 0, 0, 0, 0, 0), 8), // multicast
];

/// Whether `ip` must not be used as a webhook target under `policy`.
///
/// True for loopback, private, link-local (including the cloud metadata addresses
/// `169.254.169.254` and `fd00:ec2::254`), carrier-grade NAT, unspecified, broadcast, multicast,
/// documentation and other reserved ranges. IPv6 addresses that embed an IPv4 address
/// (IPv4-mapped `::ffff:a.b.c.d`, IPv4-compatible `::a.b.c.d`, NAT64 `64:ff9b::a.b.c.d`, 6to4
/// `2002:AABB:CCDD::`) are judged by the embedded address, because the operating system or a
/// gateway on the path will deliver them to that IPv4 address. Anything inside one of
/// `policy.allowed_nets` is permitted regardless: the operator has explicitly opted in.
pub fn is_forbidden(ip: IpAddr, policy: &TargetPolicy) -> bool {
    if policy.allowed_nets.iter().any(|net| net.contains(&ip)) {
        return false;
    }
    match ip {
        IpAddr::V4(v4) => FORBIDDEN_V4.iter().any(|net| net.contains(&v4)),
        IpAddr::V6(v6) => match embedded_v4(v6) {
            Some(v4) => is_forbidden(IpAddr::V4(v4), policy),
            None => FORBIDDEN_V6.iter().any(|net| net.contains(&v6)),
        },
    }
}

/// The IPv4 address an IPv6 address stands for, if it is one of the embedding formats.
fn embedded_v4(v6: Ipv6Addr) -> Option<Ipv4Addr> {
    let segments = v6.segments();
    let octets = v6.octets();
    let last_32 = Ipv4Addr::new(octets[12], octets[13], octets[14], octets[15]);
    match segments {
        // IPv4-mapped ::ffff:0:0/96.
        [0, 0, 0, 0, 0, 0xffff, _, _] => Some(last_32),
        // IPv4-compatible ::/96 (deprecated). `::` and `::1` are matched here too and map to
        // 0.0.0.0 and 0.0.0.1, both in the forbidden 0.0.0.0/8.
        [0, 0, 0, 0, 0, 0, _, _] => Some(last_32),
        // NAT64 well-known prefix 64:ff9b::/96.
        [0x64, 0xff9b, 0, 0, 0, 0, _, _] => Some(last_32),
        // 6to4 2002::/16: the IPv4 address is in bits 16..48.
        [0x2002, _, _, _, _, _, _, _] => Some(Ipv4Addr::new(octets[2], octets[3], octets[4], octets[5])),
        _ => None,
    }
}

/// A `reqwest` DNS resolver that refuses to connect to forbidden addresses.
///
/// Install it with `reqwest::ClientBuilder::dns_resolver(Arc::new(GuardedResolver::new(policy)))`.
/// It runs for every new connection, so each delivery is protected, not only registration. If
/// *any* resolved address is forbidden, the whole resolution fails rather than dropping that
/// address: otherwise a DNS-rebinding answer mixing a public and a private address could still get
/// a connection to the private one (e.g. when the public one is unreachable).
#[derive(Clone, Debug)]
pub struct GuardedResolver {
    policy: TargetPolicy,
}

impl GuardedResolver {
    pub fn new(policy: TargetPolicy) -> Self {
        GuardedResolver { policy }
    }
}

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let policy = self.policy.clone();
        Box::pin(async move {
            let addrs = resolve_checked(name.as_str(), &policy).await?;
            Ok(Box::new(addrs.into_iter()) as Addrs)
        })
    }
}

/// Resolves `host` with the system resolver and fails if any address is forbidden or none is
/// found. Ports are 0; reqwest fills in the URL's port. [`GuardedResolver`] calls this at every
/// connection; calling it at registration as well gives the merchant an early, clear refusal, but
/// is not a substitute for the resolver (the name may resolve differently later).
pub async fn resolve_checked(host: &str, policy: &TargetPolicy) -> Result<Vec<SocketAddr>, TargetError> {
    let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host, 0))
        .await
        .map_err(|e| TargetError::Unresolvable(format!("{host}: {e}")))?
        .collect();
    if let Some(bad) = addrs.iter().map(SocketAddr::ip).find(|&ip| is_forbidden(ip, policy)) {
        return Err(TargetError::ForbiddenAddress(bad));
    }
    if addrs.is_empty() {
        return Err(TargetError::Unresolvable(host.to_owned()));
    }
    Ok(addrs)
}

#[cfg(test)]
mod tests {
    use std::error::Error as _;
    use std::sync::Arc;

    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::*;

    fn strict() -> TargetPolicy {
        TargetPolicy { allow_http: false, allowed_nets: vec![] }
    }

    fn loopback_allowed(allow_http: bool) -> TargetPolicy {
        TargetPolicy {
            allow_http,
            allowed_nets: vec!["127.0.0.0/8".parse().unwrap(), "::1/128".parse().unwrap()],
        }
    }

    fn forbidden(ip: &str) -> TargetError {
        TargetError::ForbiddenAddress(ip.parse().unwrap())
    }

    #[test]
    fn url_checks() {
        let p = strict();
        assert_eq!(
            check_url("https://hooks.example.com/purser?x=1", &p).unwrap().host_str(),
            Some("hooks.example.com")
        );
        assert!(check_url("https://93.184.216.34/", &p).is_ok());
        assert!(check_url("https://[2606:2800:220:1:248:1893:25c8:1946]/", &p).is_ok());

        assert_eq!(
            check_url("http://hooks.example.com/", &p),
            Err(TargetError::SchemeNotAllowed("http".into()))
        );
        let dev = TargetPolicy { allow_http: true, allowed_nets: vec![] };
        assert!(check_url("http://hooks.example.com/", &dev).is_ok());
        assert!(check_url("https://hooks.example.com/", &dev).is_ok());
        assert_eq!(
            check_url("ftp://hooks.example.com/", &dev),
            Err(TargetError::SchemeNotAllowed("ftp".into()))
        );
        assert_eq!(check_url("file:///etc/passwd", &dev), Err(TargetError::SchemeNotAllowed("file".into())));

        assert_eq!(check_url("https://user:pw@x", &p), Err(TargetError::Credentials));
        assert_eq!(check_url("https://user@x", &p), Err(TargetError::Credentials));
        assert_eq!(check_url("https://:pw@x", &p), Err(TargetError::Credentials));

        assert!(matches!(check_url("not a url", &p), Err(TargetError::BadUrl(_))));
        assert!(matches!(check_url("/relative", &p), Err(TargetError::BadUrl(_))));
        assert!(matches!(check_url("https://", &p), Err(TargetError::BadUrl(_))));

        assert_eq!(check_url("https://127.0.0.1/", &p), Err(forbidden("127.0.0.1")));
        assert_eq!(check_url("https://[::1]/", &p), Err(forbidden("::1")));
        assert_eq!(
            check_url("https://169.254.169.254/latest/meta-data", &p),
            Err(forbidden("169.254.169.254"))
        );
        assert_eq!(check_url("https://10.1.2.3", &p), Err(forbidden("10.1.2.3")));
        assert_eq!(check_url("https://[::ffff:127.0.0.1]/", &p), Err(forbidden("::ffff:127.0.0.1")));
        assert_eq!(check_url("https://[fd00:ec2::254]/", &p), Err(forbidden("fd00:ec2::254")));
        // Alternative IPv4 spellings are normalised by the URL parser before the check.
        assert_eq!(check_url("https://0x7f.1/", &p), Err(forbidden("127.0.0.1")));
        assert_eq!(check_url("https://2130706433/", &p), Err(forbidden("127.0.0.1")));
        assert_eq!(check_url("https://0/", &p), Err(forbidden("0.0.0.0")));

        assert!(check_url("https://127.0.0.1:8443/hook", &loopback_allowed(false)).is_ok());
        assert!(check_url("https://[::1]/", &loopback_allowed(false)).is_ok());
    }

    #[test]
    fn forbidden_table() {
        let p = strict();
        let cases = [
            ("127.0.0.1", true),
            ("127.255.255.254", true),
            ("10.0.0.1", true),
            ("172.16.0.1", true),
            ("172.31.255.255", true),
            ("172.32.0.1", false),
            ("192.168.1.1", true),
            ("169.254.169.254", true),
            ("169.254.0.1", true),
            ("100.64.0.1", true),
            ("100.127.255.255", true),
            ("100.128.0.1", false),
            ("0.0.0.0", true),
            ("0.1.2.3", true),
            ("255.255.255.255", true),
            ("224.0.0.1", true),
            ("239.255.255.250", true),
            ("192.0.2.1", true),
            ("198.51.100.7", true),
            ("203.0.113.9", true),
            ("192.0.0.8", true),
            ("198.18.0.1", true),
            ("240.0.0.1", true),
            ("93.184.216.34", false),
            ("8.8.8.8", false),
            ("1.1.1.1", false),
            ("::1", true),
            ("::", true),
            ("fc00::1", true),
            ("fd12:3456::1", true),
            ("fd00:ec2::254", true),
            ("fe80::1", true),
            ("febf::1", true),
            ("fec0::1", true),
            ("ff02::1", true),
            ("2001:db8::1", true),
            ("3fff::1", true),
            ("100::1", true),
            ("::ffff:127.0.0.1", true),
            ("::ffff:169.254.169.254", true),
            ("::ffff:10.0.0.1", true),
            ("::ffff:93.184.216.34", false),
            ("::127.0.0.1", true),
            ("::10.0.0.1", true),
            ("::93.184.216.34", false),
            ("64:ff9b::127.0.0.1", true),
            ("64:ff9b::a9fe:a9fe", true),
            ("64:ff9b::93.184.216.34", false),
            ("64:ff9b:1::8.8.8.8", true),
            ("2002:7f00:1::", true),
            ("2002:a9fe:a9fe::1", true),
            ("2002:5db8:d822::1", false),
            ("2606:2800:220:1:248:1893:25c8:1946", false),
            ("2001:4860:4860::8888", false),
        ];
        for (ip, expected) in cases {
            assert_eq!(is_forbidden(ip.parse().unwrap(), &p), expected, "{ip}");
        }
    }

    #[test]
    fn allowed_nets_override() {
        let p = loopback_allowed(false);
        for ip in ["127.0.0.1", "127.1.2.3", "::1", "::ffff:127.0.0.1", "64:ff9b::127.0.0.1"] {
            assert!(!is_forbidden(ip.parse().unwrap(), &p), "{ip}");
        }
        for ip in ["10.0.0.1", "169.254.169.254", "::2", "fe80::1", "::ffff:10.0.0.1"] {
            assert!(is_forbidden(ip.parse().unwrap(), &p), "{ip}");
        }
        let relay = TargetPolicy { allow_http: false, allowed_nets: vec!["10.20.0.0/16".parse().unwrap()] };
        assert!(!is_forbidden("10.20.30.40".parse().unwrap(), &relay));
        assert!(is_forbidden("10.21.0.1".parse().unwrap(), &relay));
        assert_eq!(check_url("https://10.21.0.1/", &relay), Err(forbidden("10.21.0.1")));
        assert!(check_url("https://10.20.30.40/", &relay).is_ok());
    }

    async fn resolve(host: &str, policy: TargetPolicy) -> Result<Vec<SocketAddr>, String> {
        let name: Name = host.parse().unwrap();
        match GuardedResolver::new(policy).resolve(name).await {
            Ok(addrs) => Ok(addrs.collect()),
            Err(e) => Err(e.to_string()),
        }
    }

    #[tokio::test]
    async fn resolver_refuses_localhost_unless_allowed() {
        let err = resolve("localhost", strict()).await.unwrap_err();
        assert!(err.contains("is forbidden"), "{err}");
        assert!(matches!(
            resolve_checked("localhost", &strict()).await,
            Err(TargetError::ForbiddenAddress(ip)) if ip.is_loopback()
        ));

        let addrs = resolve("localhost", loopback_allowed(false)).await.unwrap();
        assert!(!addrs.is_empty());
        assert!(addrs.iter().all(|a| a.ip().is_loopback()), "{addrs:?}");
    }

    #[tokio::test]
    async fn resolver_reports_unresolvable() {
        // `.invalid` is reserved (RFC 2606) and never resolves.
        assert!(matches!(
            resolve_checked("purser-test.invalid", &strict()).await,
            Err(TargetError::Unresolvable(_))
        ));
    }

    /// Serves `ok` to every request on a fresh loopback port until the test ends.
    async fn local_server() -> u16 {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        tokio::spawn(async move {
            while let Ok((mut conn, _)) = listener.accept().await {
                tokio::spawn(async move {
                    let mut buf = [0u8; 4096];
                    let _ = conn.read(&mut buf).await;
                    let response = "HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok";
                    let _ = conn.write_all(response.as_bytes()).await;
                });
            }
        });
        port
    }

    fn guarded_client(policy: TargetPolicy) -> reqwest::Client {
        reqwest::Client::builder()
            .dns_resolver(Arc::new(GuardedResolver::new(policy)))
            .no_proxy()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap()
    }

    #[tokio::test]
    async fn real_client_refuses_forbidden_target() {
        let port = local_server().await;
        let url = format!("http://localhost:{port}/");

        let policy = TargetPolicy { allow_http: true, allowed_nets: vec![] };
        assert!(check_url(&url, &policy).is_ok(), "names are left to the resolver");
        let err = guarded_client(policy).get(&url).send().await.unwrap_err();
        let mut chain = vec![err.to_string()];
        let mut source = err.source();
        while let Some(e) = source {
            chain.push(e.to_string());
            source = e.source();
        }
        assert!(
            chain.iter().any(|m| m.contains("webhook target address") && m.contains("is forbidden")),
            "{chain:?}"
        );

        let response = guarded_client(loopback_allowed(true)).get(&url).send().await.unwrap();
        assert_eq!(response.status(), 200);
        assert_eq!(response.text().await.unwrap(), "ok");
    }
}
