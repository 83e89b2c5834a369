//! UTC days as instant ranges: reports, listings and the audit trail filter by whole
//! UTC days (`from..=to`), which the database sees as `[start of from, start of to+1)`.
//! And instants in JSON, written without `fmt` where pages carry many of them.

use chrono::{DateTime, Datelike, NaiveDate, NaiveTime, Timelike, Utc};
use serde::{Serialize, Serializer};

/// Midnight UTC at the start of `day`.
pub fn utc_day_start(day: NaiveDate) -> DateTime<Utc> {
    day.and_time(NaiveTime::MIN).and_utc()
}

/// Midnight UTC after `day` (an exclusive upper bound), saturating at the calendar's end.
pub fn utc_day_end(day: NaiveDate) -> DateTime<Utc> {
    day.succ_opt()
        .map_or(DateTime::<Utc>::MAX_UTC, utc_day_start)
}

/// For `#[serde(serialize_with = "ecom_core::calendar::rfc3339")]`: exactly what chrono's
/// own serializer writes (RFC 3339, `Z`, 0, 3, 6 or 9 fraction digits), from a stack
/// buffer. chrono's goes through `fmt` and serde_json's escaping char by char: a third of
/// a product page's serializing, 40 times per listed page.
pub fn rfc3339<S: Serializer>(at: &DateTime<Utc>, serializer: S) -> Result<S::Ok, S::Error> {
    let (year, nanos) = (at.year(), at.nanosecond());
    let Ok(year) = u32::try_from(year) else {
        return at.serialize(serializer);
    };
    if year > 9999 || nanos >= 1_000_000_000 {
        // Years chrono writes with a sign or more digits, and leap seconds.
        return at.serialize(serializer);
    }
    let mut text = [0_u8; 30];
    let mut put = |at: usize, value: u32, digits: usize| {
        let mut value = value;
        for i in (0..digits).rev() {
            text[at + i] = b'0' + (value % 10) as u8;
            value /= 10;
        }
    };
    put(0, year, 4);
    put(5, at.month(), 2);
    put(8, at.day(), 2);
    put(11, at.hour(), 2);
    put(14, at.minute(), 2);
    put(17, at.second(), 2);
    let digits = match nanos {
        0 => 0,
        n if n % 1_000_000 == 0 => 3,
        n if n % 1_000 == 0 => 6,
        _ => 9,
    };
    if digits > 0 {
        put(20, nanos / 10_u32.pow(9 - digits as u32), digits);
    }
    for (at, mark) in [(4, b'-'), (7, b'-'), (10, b'T'), (13, b':'), (16, b':')] {
        text[at] = mark;
    }
    let mut end = 19;
    if digits > 0 {
        text[19] = b'.';
        end = 20 + digits;
    }
    text[end] = b'Z';
    let text = std::str::from_utf8(&text[..=end]).map_err(serde::ser::Error::custom)?;
    serializer.serialize_str(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Serialize)]
    struct Fast(#[serde(serialize_with = "rfc3339")] DateTime<Utc>);

    #[test]
    fn instants_are_written_as_chrono_writes_them() {
        let day = |y, m, d| NaiveDate::from_ymd_opt(y, m, d).expect("date");
        let mut instants = Vec::new();
        for date in [
            day(2026, 12, 5),
            day(1, 1, 1),
            day(999, 2, 28),
            day(9999, 12, 31),
        ] {
            for (h, mi, s) in [(0, 0, 0), (9, 5, 7), (23, 59, 59)] {
                for nanos in [0, 1, 5_000_000, 120_000_000, 305_984_000, 999_999_999, 42] {
                    let time = NaiveTime::from_hms_nano_opt(h, mi, s, nanos).expect("time");
                    instants.push(date.and_time(time).and_utc());
                }
            }
        }
        // chrono's own path: negative years, five digits, a leap second.
        instants.push(day(-44, 3, 15).and_time(NaiveTime::MIN).and_utc());
        instants.push(day(10_000, 1, 1).and_time(NaiveTime::MIN).and_utc());
        let leap = NaiveTime::from_hms_nano_opt(23, 59, 59, 1_500_000_000).expect("leap");
        instants.push(day(2016, 12, 31).and_time(leap).and_utc());
        for at in instants {
            let fast = serde_json::to_string(&Fast(at)).expect("json");
            assert_eq!(fast, serde_json::to_string(&at).expect("json"), "{at:?}");
        }
    }

    #[test]
    fn a_day_is_midnight_to_midnight() {
        let day = NaiveDate::from_ymd_opt(2026, 2, 28).expect("date");
        assert_eq!(utc_day_start(day).to_rfc3339(), "2026-02-28T00:00:00+00:00");
        assert_eq!(utc_day_end(day).to_rfc3339(), "2026-03-01T00:00:00+00:00");
        assert_eq!(utc_day_end(NaiveDate::MAX), DateTime::<Utc>::MAX_UTC);
    }
}
