//! Calendar windows. Spend counters are keyed by the label of the window a
//! payment falls in, computed in the policy's time zone: a window "rolls
//! over" at local midnight simply because the label changes.

use chrono::{DateTime, Datelike, Days, LocalResult, NaiveDate, NaiveTime, TimeZone, Utc};
use chrono_tz::Tz;

/// Labels of the calendar windows containing an instant, in a time zone.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct WindowKeys {
    /// Local date, `2026-11-26`.
    pub day: String,
    /// ISO 8601 week (Monday first; the ISO week-year may differ from the
    /// calendar year around New Year), `2026-W48`.
    pub week: String,
    /// Local month, `2026-11`.
    pub month: String,
}

impl WindowKeys {
    /// The windows containing `now` as seen in `tz`.
    pub fn at(now: DateTime<Utc>, tz: Tz) -> WindowKeys {
        let local = now.with_timezone(&tz);
        let date = local.date_naive();
        let iso = date.iso_week();
        WindowKeys {
            day: format!("{:04}-{:02}-{:02}", date.year(), date.month(), date.day()),
            week: format!("{:04}-W{:02}", iso.year(), iso.week()),
            month: format!("{:04}-{:02}", date.year(), date.month()),
        }
    }
}

/// When the calendar windows containing an instant end: the first instant
/// of the next local day, ISO week (Monday) and month, where the
/// [`WindowKeys`] labels change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WindowEnds {
    pub day: DateTime<Utc>,
    pub week: DateTime<Utc>,
    pub month: DateTime<Utc>,
}

impl WindowEnds {
    pub fn at(now: DateTime<Utc>, tz: Tz) -> WindowEnds {
        let date = now.with_timezone(&tz).date_naive();
        let next_day = date + Days::new(1);
        let next_week = date + Days::new(7 - u64::from(date.weekday().num_days_from_monday()));
        let (year, month) =
            if date.month() == 12 { (date.year() + 1, 1) } else { (date.year(), date.month() + 1) };
        let next_month = NaiveDate::from_ymd_opt(year, month, 1).expect("the first of a month exists");
        WindowEnds {
            day: first_instant(next_day, tz),
            week: first_instant(next_week, tz),
            month: first_instant(next_month, tz),
        }
    }
}

/// The first instant of local `date`: midnight, or, where a daylight-saving
/// jump skips midnight (as in Chile), the minute the clocks jump to.
fn first_instant(date: NaiveDate, tz: Tz) -> DateTime<Utc> {
    let mut local = date.and_time(NaiveTime::MIN);
    loop {
        match tz.from_local_datetime(&local) {
            LocalResult::Single(t) | LocalResult::Ambiguous(t, _) => return t.with_timezone(&Utc),
            LocalResult::None => local += chrono::Duration::minutes(1),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn utc(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    fn keys(s: &str, tz: Tz) -> (String, String, String) {
        let k = WindowKeys::at(utc(s), tz);
        (k.day, k.week, k.month)
    }

    #[test]
    fn labels_in_utc() {
        assert_eq!(
            keys("2026-11-26T12:00:00Z", Tz::UTC),
            ("2026-11-26".into(), "2026-W48".into(), "2026-11".into())
        );
    }

    #[test]
    fn day_rolls_over_at_local_midnight_new_york() {
        let ny = chrono_tz::America::New_York;
        // 23:59:59 local (EST, UTC-5) on Nov 26 and 00:00:00 local on Nov 27.
        let before = keys("2026-11-27T04:59:59Z", ny);
        let after = keys("2026-11-27T05:00:00Z", ny);
        assert_eq!(before.0, "2026-11-26");
        assert_eq!(after.0, "2026-11-27");
        // In UTC both instants are already on the 27th.
        assert_eq!(keys("2026-11-27T04:59:59Z", Tz::UTC).0, "2026-11-27");
    }

    #[test]
    fn day_rolls_over_at_local_midnight_kolkata() {
        let ist = chrono_tz::Asia::Kolkata; // UTC+05:30
        let before = keys("2026-11-26T18:29:59Z", ist);
        let after = keys("2026-11-26T18:30:00Z", ist);
        assert_eq!(before.0, "2026-11-26");
        assert_eq!(after.0, "2026-11-27");
        let local = ist.with_ymd_and_hms(2026, 11, 27, 0, 0, 0).unwrap().with_timezone(&Utc);
        assert_eq!(WindowKeys::at(local, ist).day, "2026-11-27");
    }

    #[test]
    fn week_starts_monday_local() {
        let ny = chrono_tz::America::New_York;
        // Sunday 2026-11-29 23:59:59 EST is still W48; Monday 00:00 is W49.
        assert_eq!(keys("2026-11-30T04:59:59Z", ny).1, "2026-W48");
        assert_eq!(keys("2026-11-30T05:00:00Z", ny).1, "2026-W49");
    }

    #[test]
    fn iso_week_year_differs_from_calendar_year() {
        // 2027-01-01 is a Friday: ISO week 53 of 2026.
        let k = keys("2027-01-01T12:00:00Z", Tz::UTC);
        assert_eq!(k, ("2027-01-01".into(), "2026-W53".into(), "2027-01".into()));
        // 2025-12-29 is a Monday: ISO week 1 of 2026.
        assert_eq!(keys("2025-12-29T00:00:00Z", Tz::UTC).1, "2026-W01");
        assert_eq!(keys("2025-12-28T23:59:59Z", Tz::UTC).1, "2025-W52");
    }

    #[test]
    fn month_rolls_over_at_local_midnight() {
        let ist = chrono_tz::Asia::Kolkata;
        // 2026-11-30 23:59:59 IST = 18:29:59Z; 2026-12-01 00:00 IST = 18:30Z.
        assert_eq!(keys("2026-11-30T18:29:59Z", ist).2, "2026-11");
        assert_eq!(keys("2026-11-30T18:30:00Z", ist).2, "2026-12");
        let ny = chrono_tz::America::New_York;
        assert_eq!(
            keys("2027-01-01T04:59:59Z", ny),
            ("2026-12-31".into(), "2026-W53".into(), "2026-12".into())
        );
        assert_eq!(
            keys("2027-01-01T05:00:00Z", ny),
            ("2027-01-01".into(), "2026-W53".into(), "2027-01".into())
        );
    }

    #[test]
    fn dst_days_keep_local_midnight() {
        let ny = chrono_tz::America::New_York;
        // 2026-03-08: clocks spring forward (EST -> EDT). The day is 23 h long.
        assert_eq!(keys("2026-03-08T04:59:59Z", ny).0, "2026-03-07");
        assert_eq!(keys("2026-03-08T05:00:00Z", ny).0, "2026-03-08");
        assert_eq!(keys("2026-03-09T03:59:59Z", ny).0, "2026-03-08");
        assert_eq!(keys("2026-03-09T04:00:00Z", ny).0, "2026-03-09");
        // 2026-11-01: fall back (EDT -> EST). The day is 25 h long.
        assert_eq!(keys("2026-11-01T03:59:59Z", ny).0, "2026-10-31");
        assert_eq!(keys("2026-11-01T04:00:00Z", ny).0, "2026-11-01");
        assert_eq!(keys("2026-11-02T04:59:59Z", ny).0, "2026-11-01");
        assert_eq!(keys("2026-11-02T05:00:00Z", ny).0, "2026-11-02");
    }

    #[test]
    fn windows_end_exactly_where_their_labels_change() {
        let zones =
            [Tz::UTC, chrono_tz::America::New_York, chrono_tz::Asia::Kolkata, chrono_tz::America::Santiago];
        let starts =
            ["2026-11-26T17:00:00Z", "2026-12-31T23:30:00Z", "2026-03-08T06:00:00Z", "2026-09-05T12:00:00Z"];
        for tz in zones {
            for start in starts {
                let now = utc(start);
                let (keys, ends) = (WindowKeys::at(now, tz), WindowEnds::at(now, tz));
                let second = chrono::Duration::seconds(1);
                let labels = |k: WindowKeys| [k.day, k.week, k.month];
                let now_labels = labels(keys);
                for (n, end) in [ends.day, ends.week, ends.month].into_iter().enumerate() {
                    assert!(end > now, "{tz} {start}");
                    let before = labels(WindowKeys::at(end - second, tz));
                    assert_eq!(before[n], now_labels[n], "{tz} {start}: still the same window");
                    assert_ne!(
                        labels(WindowKeys::at(end, tz))[n],
                        now_labels[n],
                        "{tz} {start}: the next window"
                    );
                }
            }
        }
    }

    #[test]
    fn a_day_whose_midnight_is_skipped_starts_when_the_clocks_jump() {
        // Chile springs forward at 00:00 on 2026-09-06: 23:59:59 on the 5th
        // (UTC-4) is followed by 01:00 on the 6th (UTC-3), 04:00Z.
        let santiago = chrono_tz::America::Santiago;
        let ends = WindowEnds::at(utc("2026-09-05T12:00:00Z"), santiago);
        assert_eq!(ends.day, utc("2026-09-06T04:00:00Z"));
        // Monday 2026-11-30 00:00 in New York (EST) and the first of December.
        let ny = WindowEnds::at(utc("2026-11-26T17:00:00Z"), chrono_tz::America::New_York);
        assert_eq!(
            (ny.day, ny.week, ny.month),
            (utc("2026-11-27T05:00:00Z"), utc("2026-11-30T05:00:00Z"), utc("2026-12-01T05:00:00Z"))
        );
    }
}
