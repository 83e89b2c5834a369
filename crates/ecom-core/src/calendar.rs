//! UTC days as instant ranges: reports, listings and the audit trail filter by whole
//! UTC days (`from..=to`), which the database sees as `[start of from, start of to+1)`.

use chrono::{DateTime, NaiveDate, NaiveTime, Utc};

/// Midnight UTC at the start of `day`.
pub fn utc_day_start(day: NaiveDate) -> DateTime<Utc> {
    day.and_time(NaiveTime::MIN).and_utc()
}

/// Midnight UTC after `day` (an exclusive upper bound), saturating at the calendar's end.
pub fn utc_day_end(day: NaiveDate) -> DateTime<Utc> {
    day.succ_opt()
        .map_or(DateTime::<Utc>::MAX_UTC, utc_day_start)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_day_is_midnight_to_midnight() {
        let day = NaiveDate::from_ymd_opt(2026, 2, 28).expect("date");
        assert_eq!(utc_day_start(day).to_rfc3339(), "2026-02-28T00:00:00+00:00");
        assert_eq!(utc_day_end(day).to_rfc3339(), "2026-03-01T00:00:00+00:00");
        assert_eq!(utc_day_end(NaiveDate::MAX), DateTime::<Utc>::MAX_UTC);
    }
}
