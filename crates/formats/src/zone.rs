//! Turning the local wall-clock times some servers log into UTC instants.
//!
//! Kerio writes server-local time with no offset. The offset is either given
//! (`--timezone`, an IANA name or `+07:00`) or derived from a line that
//! names a UTC instant beside its local time: a Kerio queue id, whose first
//! 8 hex digits are the UTC time the message was queued, or a Message-ID
//! Postfix made itself, `<YYYYMMDDhhmmss.QUEUEID@host>` in UTC.

use jiff::civil::DateTime;
use jiff::tz::TimeZone;
use mailfuse_core::Timestamp;

/// How to read a log's local times.
#[derive(Clone, Debug)]
pub enum LocalZone {
    /// A fixed offset east of UTC, in seconds.
    Fixed(i32),
    /// A named zone with its daylight-saving rules.
    Named(TimeZone),
}

impl Default for LocalZone {
    fn default() -> Self {
        LocalZone::Fixed(0)
    }
}

impl LocalZone {
    /// Parses `UTC`, `+07:00`, `-0530` or an IANA name such as `Europe/Prague`.
    pub fn parse(spec: &str) -> Result<Self, String> {
        if spec.eq_ignore_ascii_case("utc") || spec == "Z" {
            return Ok(LocalZone::Fixed(0));
        }
        if let Some(secs) = parse_offset(spec.as_bytes()) {
            return Ok(LocalZone::Fixed(secs));
        }
        TimeZone::get(spec).map(LocalZone::Named).map_err(|e| {
            format!("unknown time zone {spec:?} ({e}); use an IANA name like Europe/Prague or an offset like +07:00")
        })
    }

    /// The UTC instant of a local wall-clock time, given as the instant it
    /// would be if the wall clock were UTC. An ambiguous local time (the hour
    /// repeated when daylight saving ends) resolves to the earlier instant; a
    /// skipped one (spring forward) to the later offset.
    pub fn to_utc(&self, wall: Timestamp) -> Timestamp {
        match self {
            LocalZone::Fixed(offset) => wall.plus(-i64::from(*offset)),
            LocalZone::Named(tz) => {
                let (y, mo, d, h, mi, s) = wall.to_civil();
                let civil = DateTime::new(
                    y as i16,
                    mo as i8,
                    d as i8,
                    h as i8,
                    mi as i8,
                    s.min(59) as i8,
                    0,
                );
                civil
                    .ok()
                    .and_then(|dt| tz.to_ambiguous_timestamp(dt).compatible().ok())
                    .map(|ts| Timestamp(ts.as_second()))
                    .unwrap_or(wall)
            }
        }
    }

    /// Human description, e.g. `UTC+07:00` or `Europe/Prague`.
    pub fn describe(&self) -> String {
        match self {
            LocalZone::Fixed(secs) => {
                let sign = if *secs < 0 { '-' } else { '+' };
                let abs = secs.unsigned_abs();
                format!("UTC{sign}{:02}:{:02}", abs / 3600, abs % 3600 / 60)
            }
            LocalZone::Named(tz) => tz.iana_name().unwrap_or("named zone").to_string(),
        }
    }
}

/// Offsets are derived in whole quarter hours: every zone in use is one.
const QUARTER_HOUR: i64 = 15 * 60;

/// Zones span UTC−12 to UTC+14: a derived offset beyond ±14 h (in seconds)
/// means a wrong clock, not a zone.
const MAX_OFFSET: i64 = 14 * 3600;

/// The server's offset east of UTC, in seconds, from a local wall-clock time
/// it logged (read as if it were UTC) and the UTC instant the same line
/// names. Rounded to the nearest quarter hour, which absorbs the seconds
/// between the instant and the logging; `None` beyond ±14 h.
pub(crate) fn derived_offset(logged_wall: Timestamp, utc: Timestamp) -> Option<i32> {
    let offset = (logged_wall.as_secs() - utc.as_secs() + QUARTER_HOUR / 2)
        .div_euclid(QUARTER_HOUR)
        * QUARTER_HOUR;
    if offset.abs() > MAX_OFFSET {
        return None;
    }
    i32::try_from(offset).ok()
}

/// Parses `+07:00`, `-0530`, `+07` into seconds east of UTC.
pub fn parse_offset(spec: &[u8]) -> Option<i32> {
    let (sign, rest) = match spec.first()? {
        b'+' => (1, &spec[1..]),
        b'-' => (-1, &spec[1..]),
        _ => return None,
    };
    let hours = mailfuse_core::time::parse_digits::<2>(rest)?;
    let rest = &rest[2..];
    let rest = rest.strip_prefix(b":").unwrap_or(rest);
    let minutes = match rest.len() {
        0 => 0,
        2 => mailfuse_core::time::parse_digits::<2>(rest)?,
        _ => return None,
    };
    if hours > 14 || minutes > 59 {
        return None;
    }
    Some(sign * (hours * 3600 + minutes * 60) as i32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fixed_offsets() {
        let wall = Timestamp::from_civil(2024, 3, 11, 11, 40, 39).unwrap();
        let zone = LocalZone::parse("+07:00").unwrap();
        assert_eq!(zone.to_utc(wall).0, 0x65ee8b47);
        assert_eq!(zone.describe(), "UTC+07:00");
        assert_eq!(LocalZone::parse("-0530").unwrap().describe(), "UTC-05:30");
        assert!(LocalZone::parse("+25:00").is_err());
    }

    #[test]
    fn named_zone_follows_daylight_saving() {
        let zone = LocalZone::parse("Europe/Prague").unwrap();
        let winter = Timestamp::from_civil(2024, 1, 10, 12, 0, 0).unwrap();
        let summer = Timestamp::from_civil(2024, 7, 10, 12, 0, 0).unwrap();
        assert_eq!(zone.to_utc(winter), winter.plus(-3600));
        assert_eq!(zone.to_utc(summer), summer.plus(-7200));
    }

    #[test]
    fn unknown_zone_says_what_to_do() {
        let err = LocalZone::parse("Mars/Olympus").unwrap_err();
        assert!(err.contains("IANA"), "{err}");
    }
}
