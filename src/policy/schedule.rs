//! Allowed days and hours, evaluated in the policy's time zone.
//!
//! `schedule = { days = ["mon", "tue", "wed", "thu", "fri"], hours = "09:00-17:00" }`
//!
//! Both parts are optional (at least one is required). `hours` is a
//! half-open range `start-end` (the end minute is excluded) in local wall
//! clock time; `start > end` wraps midnight ("22:00-06:00"), and "24:00" may
//! end a range. Days and hours are checked independently against the local
//! date and time of the payment: with `days = ["fri"]` and
//! `hours = "22:00-06:00"`, Friday 23:00 and Friday 02:00 match, Saturday
//! 02:00 does not.

use std::fmt;

use chrono::{DateTime, Datelike, Timelike, Weekday};
use chrono_tz::Tz;

const ALL_DAYS: u8 = 0b111_1111;
const DAY_NAMES: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];
const MINUTES_PER_DAY: u16 = 24 * 60;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Schedule {
    /// Bit `n` set = `Weekday::num_days_from_monday() == n` allowed.
    days: u8,
    /// Minutes since local midnight, `[start, end)`; wraps if start > end.
    hours: Option<(u16, u16)>,
}

impl Schedule {
    /// Parses the two parts of a schedule table. Day names are `mon`..`sun`
    /// or full English names, case-insensitive.
    pub fn parse(days: Option<&[&str]>, hours: Option<&str>) -> Result<Schedule, String> {
        if days.is_none() && hours.is_none() {
            return Err("schedule needs `days`, `hours` or both".into());
        }
        let mut mask = ALL_DAYS;
        if let Some(days) = days {
            if days.is_empty() {
                return Err("schedule days is empty, so it would never match".into());
            }
            mask = 0;
            for d in days {
                let wd = parse_day(d)
                    .ok_or_else(|| format!("unknown day {d:?}; use mon, tue, wed, thu, fri, sat, sun"))?;
                mask |= 1 << wd.num_days_from_monday();
            }
        }
        let hours = match hours {
            Some(h) => Some(parse_hours(h)?),
            None => None,
        };
        Ok(Schedule { days: mask, hours })
    }

    /// Whether the local instant falls inside the schedule.
    pub fn contains(&self, local: &DateTime<Tz>) -> bool {
        let minute = (local.hour() * 60 + local.minute()) as u16;
        self.contains_parts(local.weekday(), minute)
    }

    pub(crate) fn contains_parts(&self, day: Weekday, minute: u16) -> bool {
        if self.days & (1 << day.num_days_from_monday()) == 0 {
            return false;
        }
        match self.hours {
            None => true,
            Some((start, end)) if start < end => minute >= start && minute < end,
            Some((start, end)) => minute >= start || minute < end,
        }
    }

    /// Allowed days, Monday first.
    pub fn days(&self) -> Vec<Weekday> {
        (0..7u8)
            .filter(|n| self.days & (1 << n) != 0)
            .map(|n| Weekday::try_from(n).expect("0..7 is a weekday"))
            .collect()
    }

    /// `(start, end)` in minutes since local midnight, end excluded.
    pub fn hours(&self) -> Option<(u16, u16)> {
        self.hours
    }
}

/// `mon,tue,wed 09:00-17:00`; the form used in reason messages.
impl fmt::Display for Schedule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut first = true;
        if self.days != ALL_DAYS {
            for (n, name) in DAY_NAMES.iter().enumerate() {
                if self.days & (1 << n) != 0 {
                    if !first {
                        f.write_str(",")?;
                    }
                    f.write_str(name)?;
                    first = false;
                }
            }
        } else if self.hours.is_none() {
            f.write_str("every day")?;
            first = false;
        }
        if let Some((s, e)) = self.hours {
            if !first {
                f.write_str(" ")?;
            }
            write!(f, "{:02}:{:02}-{:02}:{:02}", s / 60, s % 60, e / 60, e % 60)?;
        }
        Ok(())
    }
}

fn parse_day(text: &str) -> Option<Weekday> {
    let lower = text.to_ascii_lowercase();
    let full = ["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"];
    let n = DAY_NAMES.iter().position(|d| *d == lower).or_else(|| full.iter().position(|d| *d == lower))?;
    Weekday::try_from(n as u8).ok()
}

fn parse_hours(text: &str) -> Result<(u16, u16), String> {
    let bad = || format!("hours {text:?} must look like \"09:00-17:00\" (24-hour HH:MM-HH:MM, end excluded)");
    let (start, end) = text.split_once('-').ok_or_else(bad)?;
    let start = parse_hm(start.trim(), false).ok_or_else(bad)?;
    let end = parse_hm(end.trim(), true).ok_or_else(bad)?;
    if start == end {
        return Err(format!("hours {text:?} is an empty range; use \"00:00-24:00\" for all day"));
    }
    if start == MINUTES_PER_DAY {
        return Err(bad());
    }
    Ok((start, end))
}

/// `HH:MM` in minutes; `24:00` only when `allow_end_of_day`.
fn parse_hm(text: &str, allow_end_of_day: bool) -> Option<u16> {
    let (h, m) = text.split_once(':')?;
    if h.len() != 2 || m.len() != 2 || !h.bytes().chain(m.bytes()).all(|b| b.is_ascii_digit()) {
        return None;
    }
    let (h, m): (u16, u16) = (h.parse().ok()?, m.parse().ok()?);
    match (h, m) {
        (24, 0) if allow_end_of_day => Some(MINUTES_PER_DAY),
        (0..=23, 0..=59) => Some(h * 60 + m),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{TimeZone, Utc};

    fn weekdays() -> Schedule {
        Schedule::parse(Some(&["mon", "tue", "wed", "thu", "fri"]), Some("09:00-17:00")).unwrap()
    }

    #[test]
    fn hours_are_half_open() {
        let s = weekdays();
        assert!(!s.contains_parts(Weekday::Wed, 8 * 60 + 59));
        assert!(s.contains_parts(Weekday::Wed, 9 * 60));
        assert!(s.contains_parts(Weekday::Wed, 16 * 60 + 59));
        assert!(!s.contains_parts(Weekday::Wed, 17 * 60));
        assert!(!s.contains_parts(Weekday::Sat, 12 * 60));
        assert!(!s.contains_parts(Weekday::Sun, 12 * 60));
    }

    #[test]
    fn wrapping_range_crosses_midnight() {
        let s = Schedule::parse(None, Some("22:00-06:00")).unwrap();
        assert!(s.contains_parts(Weekday::Mon, 22 * 60));
        assert!(s.contains_parts(Weekday::Mon, 23 * 60 + 59));
        assert!(s.contains_parts(Weekday::Tue, 0));
        assert!(s.contains_parts(Weekday::Tue, 5 * 60 + 59));
        assert!(!s.contains_parts(Weekday::Tue, 6 * 60));
        assert!(!s.contains_parts(Weekday::Tue, 21 * 60 + 59));
        // Days are checked against the local date independently.
        let fri = Schedule::parse(Some(&["fri"]), Some("22:00-06:00")).unwrap();
        assert!(fri.contains_parts(Weekday::Fri, 2 * 60));
        assert!(!fri.contains_parts(Weekday::Sat, 2 * 60));
    }

    #[test]
    fn end_of_day_and_days_only() {
        let s = Schedule::parse(None, Some("18:00-24:00")).unwrap();
        assert!(s.contains_parts(Weekday::Sun, 23 * 60 + 59));
        assert!(!s.contains_parts(Weekday::Sun, 17 * 60 + 59));
        let weekend = Schedule::parse(Some(&["Saturday", "SUN"]), None).unwrap();
        assert!(weekend.contains_parts(Weekday::Sat, 0));
        assert!(!weekend.contains_parts(Weekday::Fri, 23 * 60 + 59));
        assert_eq!(weekend.to_string(), "sat,sun");
        assert_eq!(weekdays().to_string(), "mon,tue,wed,thu,fri 09:00-17:00");
    }

    #[test]
    fn contains_uses_the_local_clock() {
        let ny = chrono_tz::America::New_York;
        let s = weekdays();
        // Friday 2026-11-27 16:59 EST = 21:59Z; 17:00 EST = 22:00Z.
        let inside = Utc.with_ymd_and_hms(2026, 11, 27, 21, 59, 59).unwrap().with_timezone(&ny);
        let outside = Utc.with_ymd_and_hms(2026, 11, 27, 22, 0, 0).unwrap().with_timezone(&ny);
        assert!(s.contains(&inside));
        assert!(!s.contains(&outside));
        // 13:00Z on Friday is 08:00 in New York: before opening.
        let early = Utc.with_ymd_and_hms(2026, 11, 27, 13, 0, 0).unwrap().with_timezone(&ny);
        assert!(!s.contains(&early));
    }

    #[test]
    fn rejects_bad_schedules() {
        for (days, hours) in [
            (None, None),
            (Some(&[][..]), None),
            (Some(&["funday"][..]), None),
            (None, Some("9-17")),
            (None, Some("09:00-09:00")),
            (None, Some("24:00-06:00")),
            (None, Some("09:00-25:00")),
            (None, Some("09:60-10:00")),
            (None, Some("09:00")),
        ] {
            assert!(Schedule::parse(days, hours).is_err(), "{days:?} {hours:?}");
        }
        assert!(Schedule::parse(None, Some("00:00-24:00")).is_ok());
    }
}
