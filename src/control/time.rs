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
    fn windows_parse_with_units() {
        assert_eq!(parse_window("90s"), Some(90_000));
        assert_eq!(parse_window("24h"), Some(86_400_000));
        assert_eq!(parse_window("7d"), Some(7 * 86_400_000));
        assert_eq!(parse_window("h"), None);
        assert_eq!(parse_window("5y"), None);
    }
}
