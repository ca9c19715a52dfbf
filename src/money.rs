//! Money at the edges: currencies, exact decimal amounts, and the integer
//! units they are stored in. No floating point anywhere.

use std::fmt;
use std::str::FromStr;

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

/// Scale of the spend counters: millionths of the policy's base currency.
/// Six places hold every supported currency exactly (USDC has six), so a
/// USDC payment counted against a USD policy sums without rounding.
pub const COUNTER_SCALE: u32 = 6;

/// Largest amount accepted anywhere (limits, payments, fees): keeps every
/// counter comfortably inside `i64` at `COUNTER_SCALE`.
pub const MAX_AMOUNT: Decimal = Decimal::from_parts(1_000_000_000, 0, 0, false, 0);

/// Currency code (case-sensitive). Fraction digits: JPY 0, USDC and EURC
/// 6, the others 2. USDC/EURC are counted at par against USD/EUR policies.
/// Precision is part of the contract: an amount with more fraction digits
/// than its currency allows is rejected.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, utoipa::ToSchema,
)]
pub enum Currency {
    #[serde(rename = "USD")]
    Usd,
    #[serde(rename = "EUR")]
    Eur,
    #[serde(rename = "GBP")]
    Gbp,
    #[serde(rename = "CHF")]
    Chf,
    #[serde(rename = "CAD")]
    Cad,
    #[serde(rename = "JPY")]
    Jpy,
    #[serde(rename = "USDC")]
    Usdc,
    #[serde(rename = "EURC")]
    Eurc,
}

impl Currency {
    pub const ALL: [Currency; 8] = [
        Currency::Usd,
        Currency::Eur,
        Currency::Gbp,
        Currency::Chf,
        Currency::Cad,
        Currency::Jpy,
        Currency::Usdc,
        Currency::Eurc,
    ];

    pub fn code(self) -> &'static str {
        match self {
            Currency::Usd => "USD",
            Currency::Eur => "EUR",
            Currency::Gbp => "GBP",
            Currency::Chf => "CHF",
            Currency::Cad => "CAD",
            Currency::Jpy => "JPY",
            Currency::Usdc => "USDC",
            Currency::Eurc => "EURC",
        }
    }

    /// Number of fraction digits the currency allows (ISO 4217 minor unit,
    /// or the token's on-chain decimals for stablecoins).
    pub fn exponent(self) -> u32 {
        match self {
            Currency::Jpy => 0,
            Currency::Usdc | Currency::Eurc => 6,
            _ => 2,
        }
    }

    /// The fiat currency a stablecoin is redeemable 1:1 for. Policies whose
    /// base currency is that fiat may accept the coin and count it at par.
    pub fn pegged_to(self) -> Option<Currency> {
        match self {
            Currency::Usdc => Some(Currency::Usd),
            Currency::Eurc => Some(Currency::Eur),
            _ => None,
        }
    }
}

impl fmt::Display for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown currency {0:?}; supported: USD, EUR, GBP, CHF, CAD, JPY, USDC, EURC")]
pub struct UnknownCurrency(pub String);

impl FromStr for Currency {
    type Err = UnknownCurrency;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Currency::ALL.into_iter().find(|c| c.code() == s).ok_or_else(|| UnknownCurrency(s.to_owned()))
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AmountError {
    #[error("amount must be a decimal string such as \"42.50\"")]
    Syntax,
    #[error("amount must be greater than zero")]
    NotPositive,
    #[error("{currency} allows at most {allowed} fraction digits")]
    TooPrecise { currency: Currency, allowed: u32 },
    #[error("amount exceeds the maximum of {MAX_AMOUNT}")]
    TooLarge,
}

/// Parses a decimal string strictly: digits, an optional single `.` followed
/// by digits. No sign, exponent, whitespace or thousands separators, so the
/// text a client sends is exactly the amount purser decides on.
pub fn parse_decimal(text: &str) -> Result<Decimal, AmountError> {
    let (int, frac) = match text.split_once('.') {
        Some((i, f)) => (i, Some(f)),
        None => (text, None),
    };
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if !digits(int) || frac.is_some_and(|f| !digits(f)) || text.len() > 40 {
        return Err(AmountError::Syntax);
    }
    let value = Decimal::from_str_exact(text).map_err(|_| AmountError::Syntax)?;
    if value > MAX_AMOUNT {
        return Err(AmountError::TooLarge);
    }
    Ok(value)
}

/// Parses an amount in `currency`: > 0, no more fraction digits than the
/// currency allows. Trailing zeros count as written ("1.50" is fine for USD,
/// "1.500" is not) because clients must send what the currency can hold.
pub fn parse_amount(text: &str, currency: Currency) -> Result<Decimal, AmountError> {
    let value = parse_decimal(text)?;
    check_precision(value, currency)?;
    if value.is_zero() {
        return Err(AmountError::NotPositive);
    }
    Ok(value)
}

/// Rejects values with more fraction digits than `currency` allows.
pub fn check_precision(value: Decimal, currency: Currency) -> Result<(), AmountError> {
    if value.scale() > currency.exponent() {
        return Err(AmountError::TooPrecise { currency, allowed: currency.exponent() });
    }
    Ok(())
}

/// Renders an amount with exactly the currency's number of fraction digits.
pub fn format_amount(value: Decimal, currency: Currency) -> String {
    let mut v = value;
    v.rescale(currency.exponent());
    v.to_string()
}

/// An amount exactly as it is: the currency's number of fraction digits, or
/// more when the value has them (USDC spend counted against a USD limit), so
/// a shown amount is never rounded (a `remaining` rounded up would promise
/// what a payment then cannot spend).
pub fn format_exact(value: Decimal, currency: Currency) -> String {
    let n = value.normalize();
    if n.scale() > currency.exponent() {
        n.to_string()
    } else {
        format_amount(value, currency)
    }
}

/// Integer minor units (cents for USD) of an amount already validated for
/// `currency`.
pub fn to_minor(value: Decimal, currency: Currency) -> i64 {
    to_scaled(value, currency.exponent())
}

pub fn from_minor(minor: i64, currency: Currency) -> Decimal {
    Decimal::new(minor, currency.exponent())
}

/// Counter units (see `COUNTER_SCALE`).
pub fn to_counter(value: Decimal) -> i64 {
    to_scaled(value, COUNTER_SCALE)
}

pub fn from_counter(units: i64) -> Decimal {
    Decimal::new(units, COUNTER_SCALE).normalize()
}

fn to_scaled(value: Decimal, scale: u32) -> i64 {
    let mut v = value;
    v.rescale(scale);
    // Amounts are bounded by MAX_AMOUNT and have at most `scale` digits, so
    // the mantissa always fits; a failure here is a programming error.
    i64::try_from(v.mantissa()).expect("amount within MAX_AMOUNT fits in i64")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> Decimal {
        Decimal::from_str_exact(s).unwrap()
    }

    #[test]
    fn parses_valid_amounts_per_currency_precision() {
        assert_eq!(parse_amount("42.50", Currency::Usd), Ok(d("42.50")));
        assert_eq!(parse_amount("42", Currency::Usd), Ok(d("42")));
        assert_eq!(parse_amount("1000", Currency::Jpy), Ok(d("1000")));
        assert_eq!(parse_amount("0.000001", Currency::Usdc), Ok(d("0.000001")));
    }

    #[test]
    fn rejects_too_many_fraction_digits() {
        assert!(matches!(parse_amount("1.001", Currency::Usd), Err(AmountError::TooPrecise { .. })));
        assert!(matches!(parse_amount("1.5", Currency::Jpy), Err(AmountError::TooPrecise { .. })));
        assert!(matches!(parse_amount("1.500", Currency::Usd), Err(AmountError::TooPrecise { .. })));
        assert!(matches!(parse_amount("0.0000001", Currency::Usdc), Err(AmountError::TooPrecise { .. })));
    }

    #[test]
    fn rejects_non_positive_and_malformed() {
        assert_eq!(parse_amount("0", Currency::Usd), Err(AmountError::NotPositive));
        assert_eq!(parse_amount("0.00", Currency::Usd), Err(AmountError::NotPositive));
        for bad in ["-1", "+1", "1e3", " 1", "1 ", "1,00", ".5", "5.", "", "abc", "1..2", "NaN", "0x10"] {
            assert_eq!(parse_amount(bad, Currency::Usd), Err(AmountError::Syntax), "{bad:?}");
        }
        assert_eq!(parse_amount("1000000001", Currency::Usd), Err(AmountError::TooLarge));
    }

    #[test]
    fn converts_between_decimal_and_integer_units() {
        assert_eq!(to_minor(d("42.5"), Currency::Usd), 4250);
        assert_eq!(from_minor(4250, Currency::Usd), d("42.50"));
        assert_eq!(to_counter(d("0.01")), 10_000);
        assert_eq!(to_counter(MAX_AMOUNT), 1_000_000_000_000_000);
        assert_eq!(from_counter(10_000), d("0.01"));
        assert_eq!(format_amount(d("42.5"), Currency::Usd), "42.50");
        assert_eq!(format_amount(d("7"), Currency::Jpy), "7");
        assert_eq!(format_exact(d("67.376543"), Currency::Usd), "67.376543");
        assert_eq!(format_exact(d("67.370000"), Currency::Usd), "67.37");
        assert_eq!(format_exact(d("67"), Currency::Usd), "67.00");
    }

    #[test]
    fn currency_codes_round_trip() {
        for c in Currency::ALL {
            assert_eq!(c.code().parse::<Currency>(), Ok(c));
        }
        assert!("usd".parse::<Currency>().is_err());
        assert!("XXX".parse::<Currency>().is_err());
    }
}
