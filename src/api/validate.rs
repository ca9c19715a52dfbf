//! Checks of request fields that several endpoints share, each failing
//! with `400 invalid_request` at the field's JSON pointer.

use crate::error::{Error, ErrorCode, Result};

/// Longest name of an agent, approver or administrator, in characters.
pub const MAX_NAME: usize = 200;

/// `text` is not blank and at most `max` characters.
pub fn check_len(field: &str, text: &str, max: usize) -> Result<()> {
    if text.trim().is_empty() || text.chars().count() > max {
        return Err(Error::invalid(ErrorCode::InvalidRequest, format!("{field} must be 1-{max} characters"))
            .at(format!("/{field}")));
    }
    Ok(())
}

/// A credential's `allowed_cidrs`: each a CIDR or a single address,
/// answered in canonical form (host bits cleared).
pub fn allowed_cidrs(list: &[String]) -> Result<Vec<String>> {
    list.iter()
        .enumerate()
        .map(|(i, c)| {
            let net: ipnet::IpNet = c
                .parse()
                .or_else(|_| c.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
                .map_err(|_| {
                    Error::invalid(
                        ErrorCode::InvalidRequest,
                        format!("{c:?} is not a CIDR such as 203.0.113.0/24"),
                    )
                    .at(format!("/allowed_cidrs/{i}"))
                })?;
            Ok(net.trunc().to_string())
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cidrs_are_checked_and_made_canonical() {
        let ok = allowed_cidrs(&["10.9.3.4/16".into(), "192.0.2.7".into(), "2001:db8::1/32".into()]).unwrap();
        assert_eq!(ok, ["10.9.0.0/16", "192.0.2.7/32", "2001:db8::/32"]);
        let bad = allowed_cidrs(&["10.0.0.0/8".into(), "nope".into()]).unwrap_err();
        assert!(matches!(bad, Error::Invalid { param: Some(p), .. } if p == "/allowed_cidrs/1"));
    }
}
