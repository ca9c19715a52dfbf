//! Checks of request fields that several endpoints share, each failing
//! with `400 invalid_request` at the field's JSON pointer.

use utoipa::ToSchema;

use crate::error::{Error, ErrorCode, Result};

/// One entry of a credential's `allowed_cidrs`: an IPv4 or IPv6 network in
/// CIDR notation, or a single address. Only its schema exists; requests
/// carry plain strings, checked by [`allowed_cidrs`].
pub struct Cidr;

impl utoipa::PartialSchema for Cidr {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use utoipa::openapi::schema::{ObjectBuilder, Type};
        ObjectBuilder::new()
            .schema_type(Type::String)
            .pattern(Some(CIDR_PATTERN))
            .examples(["203.0.113.0/24"])
            .description(Some("An IPv4 or IPv6 network in CIDR notation, or a single address."))
            .into()
    }
}

impl ToSchema for Cidr {}

/// IPv4 or IPv6, each with an optional prefix length, no leading zeros.
const CIDR_PATTERN: &str = "^((25[0-5]|(2[0-4]|1[0-9]|[1-9]|)[0-9])(\\.(25[0-5]|(2[0-4]|1[0-9]|[1-9]|)[0-9])){3}(/(3[0-2]|[12]?[0-9]))?|(([0-9a-fA-F]{1,4}:){7}[0-9a-fA-F]{1,4}|([0-9a-fA-F]{1,4}:){1,7}:|([0-9a-fA-F]{1,4}:){1,6}:[0-9a-fA-F]{1,4}|([0-9a-fA-F]{1,4}:){1,5}(:[0-9a-fA-F]{1,4}){1,2}|([0-9a-fA-F]{1,4}:){1,4}(:[0-9a-fA-F]{1,4}){1,3}|([0-9a-fA-F]{1,4}:){1,3}(:[0-9a-fA-F]{1,4}){1,4}|([0-9a-fA-F]{1,4}:){1,2}(:[0-9a-fA-F]{1,4}){1,5}|[0-9a-fA-F]{1,4}:(:[0-9a-fA-F]{1,4}){1,6}|:((:[0-9a-fA-F]{1,4}){1,7}|:))(/(12[0-8]|1[01][0-9]|[1-9]?[0-9]))?)$";

/// Longest name of an agent, approver or administrator, in characters.
pub const MAX_NAME: usize = 200;

/// `text` is not blank and at most `max` characters. Blank means only
/// ECMAScript's white space, the characters the published name pattern
/// lists one by one (regex dialects disagree on `\s`), so clients that
/// check the schema agree with it.
pub fn check_len(field: &str, text: &str, max: usize) -> Result<()> {
    if text.chars().all(ecma_space) || text.chars().count() > max {
        return Err(Error::invalid(ErrorCode::InvalidRequest, format!("{field} must be 1-{max} characters"))
            .at(format!("/{field}")));
    }
    Ok(())
}

fn ecma_space(c: char) -> bool {
    matches!(
        c,
        '\t' | '\n' | '\u{b}' | '\u{c}' | '\r' | ' ' | '\u{a0}' | '\u{1680}' | '\u{2000}'
            ..='\u{200a}' | '\u{2028}' | '\u{2029}' | '\u{202f}' | '\u{205f}' | '\u{3000}' | '\u{feff}'
    )
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
    fn names_are_blank_as_the_schema_pattern_says() {
        assert!(check_len("name", "\u{b}\u{feff} ", 200).is_err());
        assert!(check_len("name", "\u{85}", 200).is_ok(), "not white space to JSON Schema");
        assert!(check_len("name", "a", 1).is_ok() && check_len("name", "ab", 1).is_err());
    }

    #[test]
    fn cidrs_are_checked_and_made_canonical() {
        let ok = allowed_cidrs(&["10.9.3.4/16".into(), "192.0.2.7".into(), "2001:db8::1/32".into()]).unwrap();
        assert_eq!(ok, ["10.9.0.0/16", "192.0.2.7/32", "2001:db8::/32"]);
        let bad = allowed_cidrs(&["10.0.0.0/8".into(), "nope".into()]).unwrap_err();
        assert!(matches!(bad, Error::Invalid { param: Some(p), .. } if p == "/allowed_cidrs/1"));
    }
}
