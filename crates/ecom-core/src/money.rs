//! Exact money: `NUMERIC(12,2)` in the database, a decimal in Rust, a two-place string in JSON.

use std::fmt;
use std::str::FromStr;

use diesel::deserialize::{self, FromSql, FromSqlRow};
use diesel::expression::AsExpression;
use diesel::pg::{Pg, PgValue};
use diesel::serialize::{self, Output, ToSql};
use diesel::sql_types::Numeric;
use rust_decimal::Decimal;
use serde::de::{self, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use utoipa::openapi::RefOr;
use utoipa::openapi::schema::{ObjectBuilder, Schema, SchemaFormat, Type};

/// Largest amount the store accepts: 99,999,999.99 (what `NUMERIC(12,2)` holds).
pub const MAX_AMOUNT: Decimal = Decimal::from_parts(1_410_065_407, 2, 0, false, 2);

/// A non-negative amount of money with at most two decimal places.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, AsExpression, FromSqlRow)]
#[diesel(sql_type = Numeric)]
pub struct Money(Decimal);

/// Why a value is not money.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MoneyError {
    #[error("must be a decimal number")]
    NotANumber,
    #[error("must have at most 2 decimal places")]
    TooPrecise,
    #[error("must not be negative")]
    Negative,
    #[error("must not exceed 99999999.99")]
    TooLarge,
}

impl Money {
    pub const ZERO: Money = Money(Decimal::ZERO);

    /// Validates scale and range.
    pub fn new(value: Decimal) -> Result<Self, MoneyError> {
        let value = value.normalize();
        if value.scale() > 2 {
            return Err(MoneyError::TooPrecise);
        }
        if value.is_sign_negative() && !value.is_zero() {
            return Err(MoneyError::Negative);
        }
        if value > MAX_AMOUNT {
            return Err(MoneyError::TooLarge);
        }
        Ok(Money(value))
    }

    /// Whole currency units and cents, e.g. `Money::from_cents(999)` is 9.99.
    pub fn from_cents(cents: i64) -> Result<Self, MoneyError> {
        Self::new(Decimal::new(cents, 2))
    }

    /// An amount read from the database or summed from stored amounts: rounded to cents,
    /// not range-checked (a period's revenue may exceed what one price may be).
    pub fn from_db(value: Decimal) -> Self {
        Money(value.round_dp(2))
    }

    pub fn as_decimal(&self) -> Decimal {
        self.0
    }

    /// The amount in cents, for integer arithmetic and comparisons (money has at most two
    /// decimals); saturates far beyond any amount the store handles.
    pub fn cents(&self) -> i64 {
        let scale = self.0.scale().min(2);
        i64::try_from(self.0.mantissa() * 10_i128.pow(2 - scale)).unwrap_or(i64::MAX)
    }

    pub fn is_zero(&self) -> bool {
        self.0.is_zero()
    }

    /// `self × quantity`, failing beyond the storable range.
    pub fn times(&self, quantity: i64) -> Result<Self, MoneyError> {
        let product = self
            .0
            .checked_mul(Decimal::from(quantity))
            .ok_or(MoneyError::TooLarge)?;
        Self::new(product)
    }

    /// `self + other`, failing beyond the storable range.
    pub fn plus(&self, other: Money) -> Result<Self, MoneyError> {
        let sum = self.0.checked_add(other.0).ok_or(MoneyError::TooLarge)?;
        Self::new(sum)
    }
}

impl FromStr for Money {
    type Err = MoneyError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        let plain = !s.is_empty()
            && s.bytes()
                .all(|b| b.is_ascii_digit() || b == b'.' || b == b'-');
        if !plain {
            return Err(MoneyError::NotANumber);
        }
        let d = Decimal::from_str_exact(s).map_err(|_| MoneyError::NotANumber)?;
        Money::new(d)
    }
}

impl fmt::Display for Money {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:.2}", self.0)
    }
}

impl fmt::Debug for Money {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Money({self})")
    }
}

impl Serialize for Money {
    /// `"{units}.{cents}"` written into a stack buffer: `collect_str` would format through
    /// `fmt` and escape char by char, and a page of products writes one per line.
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let cents = Some(self.cents())
            .filter(|&c| self.0.scale() <= 2 && c != i64::MAX)
            .and_then(|c| u64::try_from(c).ok());
        let Some(cents) = cents else {
            return serializer.collect_str(self);
        };
        let mut units = itoa::Buffer::new();
        let units = units.format(cents / 100).as_bytes();
        let fraction = cents % 100;
        let mut text = [0_u8; 24];
        let end = units.len() + 3;
        text[..units.len()].copy_from_slice(units);
        text[units.len()..end].copy_from_slice(&[
            b'.',
            b'0' + (fraction / 10) as u8,
            b'0' + (fraction % 10) as u8,
        ]);
        let text = std::str::from_utf8(&text[..end]).map_err(serde::ser::Error::custom)?;
        serializer.serialize_str(text)
    }
}

impl<'de> Deserialize<'de> for Money {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(MoneyVisitor)
    }
}

struct MoneyVisitor;

impl Visitor<'_> for MoneyVisitor {
    type Value = Money;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an amount as a JSON number or a decimal string, with at most 2 decimal places")
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Money, E> {
        v.parse().map_err(E::custom)
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Money, E> {
        Money::new(Decimal::from(v)).map_err(E::custom)
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Money, E> {
        Money::new(Decimal::from(v)).map_err(E::custom)
    }

    /// JSON numbers arrive as f64; its shortest round-trip text is the digits the client
    /// wrote for any amount in range, so `19.99` stays exactly 19.99 and `1.005` is refused.
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Money, E> {
        if !v.is_finite() {
            return Err(E::custom(MoneyError::NotANumber));
        }
        format!("{v}").parse().map_err(E::custom)
    }
}

impl ToSql<Numeric, Pg> for Money {
    fn to_sql<'b>(&'b self, out: &mut Output<'b, '_, Pg>) -> serialize::Result {
        <Decimal as ToSql<Numeric, Pg>>::to_sql(&self.0, out)
    }
}

impl FromSql<Numeric, Pg> for Money {
    fn from_sql(bytes: PgValue<'_>) -> deserialize::Result<Self> {
        if let Some(cents) = numeric_cents(bytes.as_bytes()) {
            return Ok(Money(Decimal::new(cents, 2)));
        }
        let d = <Decimal as FromSql<Numeric, Pg>>::from_sql(bytes)?;
        Ok(Money::from_db(d))
    }
}

/// The cents of a binary `NUMERIC` (base-10000 digits after a header of digit count,
/// weight, sign and scale) with at most two decimals that fits: read without the general
/// decoder's allocation and division, which were a twentieth of a listed page's server
/// time. `None` leaves anything else (NaN, more decimals, huge sums) to that decoder.
fn numeric_cents(bytes: &[u8]) -> Option<i64> {
    let word = |i: usize| {
        let pair = bytes.get(2 * i..2 * i + 2)?;
        Some(i16::from_be_bytes([pair[0], pair[1]]))
    };
    let digits = usize::try_from(word(0)?).ok()?;
    let weight = i32::from(word(1)?);
    if bytes.len() != 8 + 2 * digits {
        return None;
    }
    let negative = match bytes.get(4..6)? {
        [0x00, 0x00] => false,
        [0x40, 0x00] => true,
        _ => return None,
    };
    let mut cents = 0_i64;
    for i in 0..digits {
        let digit = i64::from(word(4 + i)?);
        // This digit counts 10^exponent cents.
        let exponent = 4 * (weight - i32::try_from(i).ok()?) + 2;
        let part = match exponent {
            e if e >= 0 => digit.checked_mul(10_i64.checked_pow(u32::try_from(e).ok()?)?)?,
            -2 if digit % 100 == 0 => digit / 100,
            _ if digit == 0 => 0,
            _ => return None,
        };
        cents = cents.checked_add(part)?;
    }
    Some(if negative { -cents } else { cents })
}

impl utoipa::PartialSchema for Money {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .format(Some(SchemaFormat::Custom("decimal".into())))
            .pattern(Some(r"^\d{1,8}(\.\d{1,2})?$"))
            .description(Some(
                "Exact amount with two decimal places, sent as a string (\"999.99\"). \
                 Requests may also send a JSON number; more than 2 decimal places is refused.",
            ))
            .examples(["999.99"])
            .into()
    }
}

impl utoipa::ToSchema for Money {}

/// Schema of an amount a request sends: the [`Money`] string, or a JSON number (as the
/// contract allows). Responses always carry the string. Use with
/// `#[schema(value_type = MoneyInput)]` on request fields.
#[derive(Debug)]
pub struct MoneyInput;

impl utoipa::PartialSchema for MoneyInput {
    fn schema() -> RefOr<Schema> {
        use utoipa::openapi::schema::{OneOfBuilder, Ref};
        let number = ObjectBuilder::new()
            .schema_type(Type::Number)
            .minimum(Some(0.0))
            .maximum(Some(99_999_999.99))
            .description(Some("At most two decimal places; more is refused."));
        OneOfBuilder::new()
            .item(Ref::from_schema_name("Money"))
            .item(number)
            .description(Some(
                "An exact amount: the decimal string (\"999.99\") or a JSON number with at most two decimal places.",
            ))
            .into()
    }
}

impl utoipa::ToSchema for MoneyInput {}

/// Schema of a sum of amounts (a period's revenue): the same decimal string as
/// [`Money`], without its per-price upper bound. Use with `#[schema(schema_with = ...)]`.
pub fn total_schema() -> ObjectBuilder {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .format(Some(SchemaFormat::Custom("decimal".into())))
        .pattern(Some(r"^\d+\.\d{2}$"))
        .description(Some(
            "Exact sum of amounts with two decimal places, as a string.",
        ))
        .examples(["432701792.70"])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_and_strings_parse_exactly() {
        let m: Money = serde_json::from_str("19.99").expect("number");
        assert_eq!(m.to_string(), "19.99");
        let m: Money = serde_json::from_str("\"0.10\"").expect("string");
        assert_eq!(m.times(3).expect("in range").to_string(), "0.30");
        let m: Money = serde_json::from_str("7").expect("integer");
        assert_eq!(serde_json::to_string(&m).expect("ser"), "\"7.00\"");
    }

    #[test]
    fn bad_amounts_are_refused() {
        assert!(serde_json::from_str::<Money>("1.005").is_err());
        assert!(serde_json::from_str::<Money>("\"1.005\"").is_err());
        assert!(serde_json::from_str::<Money>("-1").is_err());
        assert!(serde_json::from_str::<Money>("100000000").is_err());
        assert!(serde_json::from_str::<Money>("\"1e3\"").is_err());
        assert!(serde_json::from_str::<Money>("\"abc\"").is_err());
        assert!(serde_json::from_str::<Money>("99999999.99").is_ok());
        assert_eq!(MAX_AMOUNT.to_string(), "99999999.99");
    }

    #[test]
    fn cents_count_whole_units_and_cents_at_any_scale() {
        for (amount, cents) in [
            ("7", 700),
            ("0.1", 10),
            ("19.99", 1999),
            ("99999999.99", 9_999_999_999),
        ] {
            let m: Money = serde_json::from_str(&format!("\"{amount}\"")).expect("amount");
            assert_eq!(m.cents(), cents, "{amount}");
        }
        // Read from NUMERIC(12,2): scale 2 whatever the value.
        assert_eq!(Money::from_db(Decimal::new(500, 2)).cents(), 500);
        assert_eq!(Money::ZERO.cents(), 0);
    }

    #[test]
    fn json_shows_what_display_shows() {
        let amounts = [
            Money::ZERO,
            Money::from_cents(1).expect("cents"),
            Money::from_cents(10).expect("cents"),
            Money::from_cents(999).expect("cents"),
            Money::from_cents(100_000).expect("cents"),
            MAX_AMOUNT_MONEY,
            // Normalized on the way in: scale 0 and 1.
            serde_json::from_str("\"7\"").expect("amount"),
            serde_json::from_str("0.5").expect("amount"),
            // A period's revenue beyond one price's range, and a negative sum.
            Money::from_db(Decimal::new(123_456_789_012_345, 2)),
            Money::from_db(Decimal::new(-1_050, 2)),
            Money::from_db(Decimal::new(12_345, 3)),
        ];
        for money in amounts {
            let json = serde_json::to_string(&money).expect("json");
            assert_eq!(json, format!("\"{money}\""));
        }
    }

    const MAX_AMOUNT_MONEY: Money = Money(MAX_AMOUNT);

    /// PostgreSQL's binary `NUMERIC`: digit count, weight, sign, scale, base-10000 digits.
    fn numeric(weight: i16, negative: bool, digits: &[i16]) -> Vec<u8> {
        let count = i16::try_from(digits.len()).expect("digits");
        let sign: u16 = if negative { 0x4000 } else { 0 };
        let mut bytes = Vec::new();
        for word in [
            count.to_be_bytes(),
            weight.to_be_bytes(),
            sign.to_be_bytes(),
        ] {
            bytes.extend(word);
        }
        bytes.extend(2_u16.to_be_bytes());
        digits.iter().for_each(|d| bytes.extend(d.to_be_bytes()));
        bytes
    }

    #[test]
    fn numerics_with_two_decimals_are_read_as_cents() {
        for (weight, negative, digits, cents) in [
            (0, false, &[][..], Some(0)),
            (0, false, &[102, 2100][..], Some(10_221)),
            (1, false, &[9999, 9999, 9900][..], Some(9_999_999_999)),
            (-1, false, &[500][..], Some(5)),
            (1, false, &[1][..], Some(1_000_000)),
            (0, true, &[10, 5000][..], Some(-1_050)),
            // 1.005 and 0.0001: more than two decimals, left to the general decoder.
            (0, false, &[1, 50][..], None),
            (-1, false, &[0, 1][..], None),
            // Beyond i64 cents.
            (5, false, &[9999][..], None),
        ] {
            assert_eq!(
                numeric_cents(&numeric(weight, negative, digits)),
                cents,
                "{digits:?} at weight {weight}"
            );
        }
        let nan = [0, 0, 0, 0, 0xC0, 0, 0, 0];
        assert_eq!(numeric_cents(&nan), None);
        assert_eq!(numeric_cents(&[0, 1, 0, 0]), None, "truncated");
    }
}
