//! Timestamps: the store keeps milliseconds since the Unix epoch; tools print them as ISO 8601
//! (JSON) or in the en-US style the original printed (`1/2/2025, 3:04:05 AM`), always in UTC and
//! saying so, rather than in whatever zone the proxy's host happens to be in.

use std::time::{SystemTime, UNIX_EPOCH};

/// Milliseconds since the Unix epoch, now.
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|elapsed| i64::try_from(elapsed.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// The civil date and time of a millisecond timestamp, in UTC.
struct Civil {
    year: i64,
    month: i64,
    day: i64,
    hour: i64,
    minute: i64,
    second: i64,
    millis: i64,
}

fn civil(ms: i64) -> Civil {
    let days = ms.div_euclid(86_400_000);
    let in_day = ms.rem_euclid(86_400_000);
    // Howard Hinnant's days-to-civil algorithm.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    Civil {
        year,
        month,
        day,
        hour: in_day / 3_600_000,
        minute: in_day / 60_000 % 60,
        second: in_day / 1000 % 60,
        millis: in_day % 1000,
    }
}

/// `2025-01-02T03:04:05.000Z`.
pub fn iso(ms: i64) -> String {
    let c = civil(ms);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
        c.year, c.month, c.day, c.hour, c.minute, c.second, c.millis
    )
}

/// `1/2/2025, 3:04:05 AM UTC`.
pub fn locale(ms: i64) -> String {
    let c = civil(ms);
    let (hour, half) = match c.hour {
        0 => (12, "AM"),
        1..=11 => (c.hour, "AM"),
        12 => (12, "PM"),
        _ => (c.hour - 12, "PM"),
    };
    format!(
        "{}/{}/{}, {}:{:02}:{:02} {half} UTC",
        c.month, c.day, c.year, hour, c.minute, c.second
    )
}

/// `1/2/2025`: the original's `toLocaleDateString()` in en-US, in UTC.
pub fn locale_date(ms: i64) -> String {
    let c = civil(ms);
    format!("{}/{}/{}", c.month, c.day, c.year)
}

/// Days since the epoch of a civil date (Howard Hinnant's days-from-civil).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let yoe = year.rem_euclid(400);
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Parses an ISO 8601 date (`2025-01-02`) or date-time (`2025-01-02T03:04:05[.sss](Z|±hh:mm)`;
/// no zone means UTC) into milliseconds since the epoch.
pub fn parse_iso(text: &str) -> Option<i64> {
    let text = text.trim();
    let number = |range: std::ops::Range<usize>| -> Option<i64> {
        let part = text.get(range)?;
        part.bytes()
            .all(|b| b.is_ascii_digit())
            .then(|| part.parse().ok())?
    };
    let (year, month, day) = (number(0..4)?, number(5..7)?, number(8..10)?);
    if text.get(4..5)? != "-" || text.get(7..8)? != "-" || !(1..=12).contains(&month) {
        return None;
    }
    if !(1..=31).contains(&day) {
        return None;
    }
    let mut ms = days_from_civil(year, month, day) * 86_400_000;
    let rest = &text[10..];
    if rest.is_empty() {
        return Some(ms);
    }
    let rest = rest.strip_prefix(['T', 't', ' '])?;
    let field = |range: std::ops::Range<usize>| -> Option<i64> {
        let part = rest.get(range)?;
        part.bytes()
            .all(|b| b.is_ascii_digit())
            .then(|| part.parse().ok())?
    };
    let (hour, minute) = (field(0..2)?, field(3..5)?);
    if rest.get(2..3)? != ":" || hour > 23 || minute > 59 {
        return None;
    }
    let mut at = 5;
    let mut second = 0;
    if rest.get(5..6) == Some(":") {
        second = field(6..8)?;
        at = 8;
    }
    ms += (hour * 3600 + minute * 60 + second) * 1000;
    let mut zone = &rest[at..];
    if let Some(fraction) = zone.strip_prefix('.') {
        let digits = fraction.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return None;
        }
        let millis: String = fraction[..digits]
            .chars()
            .chain("000".chars())
            .take(3)
            .collect();
        ms += millis.parse::<i64>().ok()?;
        zone = &fraction[digits..];
    }
    match zone {
        "" | "Z" | "z" => Some(ms),
        _ => {
            let sign = match zone.get(0..1)? {
                "+" => 1,
                "-" => -1,
                _ => return None,
            };
            let hours: i64 = zone.get(1..3)?.parse().ok()?;
            let minutes: i64 = zone
                .get(3..)?
                .trim_start_matches(':')
                .parse()
                .ok()
                .unwrap_or(0);
            Some(ms - sign * (hours * 60 + minutes) * 60_000)
        }
    }
}

pub(crate) fn serialize_iso<S: serde::Serializer>(
    ms: &i64,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(&iso(*ms))
}

pub(crate) fn serialize_iso_opt<S: serde::Serializer>(
    ms: &Option<i64>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    match ms {
        Some(ms) => serializer.serialize_str(&iso(*ms)),
        None => serializer.serialize_none(),
    }
}

/// Parses a window like `90s`, `15m`, `24h`, `7d` into milliseconds.
pub fn parse_window(text: &str) -> Option<i64> {
    let text = text.trim();
    let split = text.find(|c: char| !c.is_ascii_digit())?;
    let (number, unit) = text.split_at(split);
    let number: i64 = number.parse().ok()?;
    let unit_ms = match unit {
        "s" => 1000,
        "m" => 60_000,
        "h" => 3_600_000,
        "d" => 86_400_000,
        "w" => 7 * 86_400_000,
        _ => return None,
    };
    number.checked_mul(unit_ms)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_print_as_iso_and_en_us_in_utc() {
        // 2025-01-02T03:04:05.006Z
        let ms = 1_735_787_045_006;
        assert_eq!(iso(ms), "2025-01-02T03:04:05.006Z");
        assert_eq!(locale(ms), "1/2/2025, 3:04:05 AM UTC");
        assert_eq!(locale(ms + 12 * 3_600_000), "1/2/2025, 3:04:05 PM UTC");
        assert_eq!(iso(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(locale(951_782_400_000), "2/29/2000, 12:00:00 AM UTC");
    }

    #[test]
    fn iso_dates_parse_with_zones() {
        assert_eq!(
            parse_iso("2025-01-02T03:04:05.006Z"),
            Some(1_735_787_045_006)
        );
        assert_eq!(
            parse_iso("2025-01-02T04:04:05.006+01:00"),
            Some(1_735_787_045_006)
        );
        assert_eq!(parse_iso("2025-01-02"), Some(1_735_776_000_000));
        assert_eq!(parse_iso("2000-02-29T00:00:00Z"), Some(951_782_400_000));
        assert_eq!(parse_iso("yesterday"), None);
        assert_eq!(parse_iso("2025-13-01"), None);
        assert_eq!(locale_date(1_735_787_045_006), "1/2/2025");
    }

    #[test]
    fn windows_parse_with_units() {
        assert_eq!(parse_window("90s"), Some(90_000));
        assert_eq!(parse_window("24h"), Some(86_400_000));
        assert_eq!(parse_window("7d"), Some(7 * 86_400_000));
        assert_eq!(parse_window("h"), None);
        assert_eq!(parse_window("5y"), None);
    }
}
