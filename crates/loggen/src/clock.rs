//! The mail server's wall clock, Kerio's `[DD/Mon/YYYY HH:MM:SS]` prefix and
//! syslog's `Mon DD HH:MM:SS` (RFC 3164).

use mailfuse_core::Timestamp;

/// Seconds in a minute, for readable offsets such as `7 * HOUR + 30 * MINUTE`.
pub const MINUTE: i64 = 60;
/// Seconds in an hour.
pub const HOUR: i64 = 3_600;
/// Seconds in a day; [`Wall`] has no daylight-saving jumps, so every day is
/// this long.
pub const DAY: i64 = 86_400;

/// A reading of the server's wall clock: seconds since 1970-01-01 00:00 of
/// *local* civil time, as if local time were UTC.
///
/// Kerio writes local time without an offset, and the scenarios are told in
/// local terms (office hours, "Thursday 02:13"), so generators work in wall
/// time; only queue ids need the UTC instant ([`Wall::utc`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Wall(pub i64);

/// Day of the week, which shapes the simulated office's traffic: people
/// come in Monday to Friday (a shorter Friday), the weekend is quiet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Weekday {
    /// Monday: an office day.
    Mon,
    /// Tuesday: an office day.
    Tue,
    /// Wednesday: an office day.
    Wed,
    /// Thursday: an office day.
    Thu,
    /// Friday: an office day, with somewhat less mail sent.
    Fri,
    /// Saturday: weekend, only some mail from home.
    Sat,
    /// Sunday: weekend, only some mail from home.
    Sun,
}

impl Weekday {
    /// Saturday or Sunday: no office arrivals, only a little mail from home
    /// and a low hourly volume in the benchmark.
    pub fn is_weekend(self) -> bool {
        matches!(self, Weekday::Sat | Weekday::Sun)
    }
}

impl Wall {
    /// The wall time of a civil date; panics on an impossible date, which
    /// can only be a typo in a scenario's constants.
    pub fn civil(year: i32, month: u8, day: u8, hour: u8, min: u8, sec: u8) -> Wall {
        let t = Timestamp::from_civil(year, month, day, hour, min, sec)
            .unwrap_or_else(|| panic!("impossible date {year}-{month}-{day} {hour}:{min}:{sec}"));
        Wall(t.0)
    }

    /// This time shifted by `secs` seconds.
    pub fn plus(self, secs: i64) -> Wall {
        Wall(self.0 + secs)
    }

    /// Midnight starting this time's day.
    pub fn midnight(self) -> Wall {
        Wall(self.0 - self.0.rem_euclid(DAY))
    }

    /// The time `secs` seconds after this time's midnight, e.g. `at(9 * HOUR)`.
    pub fn at(self, secs: i64) -> Wall {
        self.midnight().plus(secs)
    }

    /// Seconds since midnight.
    pub fn secs_of_day(self) -> i64 {
        self.0.rem_euclid(DAY)
    }

    /// The hour (0–23).
    pub fn hour(self) -> i64 {
        self.secs_of_day() / HOUR
    }

    /// The day of the week of this wall time (local, like the time itself).
    pub fn weekday(self) -> Weekday {
        // 1970-01-01 was a Thursday (index 3 counting from Monday = 0).
        const DAYS: [Weekday; 7] = [
            Weekday::Mon,
            Weekday::Tue,
            Weekday::Wed,
            Weekday::Thu,
            Weekday::Fri,
            Weekday::Sat,
            Weekday::Sun,
        ];
        DAYS[(self.0.div_euclid(DAY) + 3).rem_euclid(7) as usize]
    }

    /// The UTC instant of this wall time on a server `utc_offset` seconds
    /// ahead of UTC (3600 for Central European winter time).
    pub fn utc(self, utc_offset: i64) -> Timestamp {
        Timestamp(self.0 - utc_offset)
    }
}

const MONTHS: [&[u8; 3]; 12] = [
    b"Jan", b"Feb", b"Mar", b"Apr", b"May", b"Jun", b"Jul", b"Aug", b"Sep", b"Oct", b"Nov", b"Dec",
];

/// Writes Kerio's line prefix `[02/Nov/2026 08:13:05] `.
///
/// The date part changes once a day, so it is formatted only then and copied
/// otherwise: on the benchmark's hot path a stamp costs a few divisions.
#[derive(Clone, Debug)]
pub struct StampWriter {
    day: i64,
    date: [u8; 13],
}

impl Default for StampWriter {
    fn default() -> Self {
        StampWriter {
            day: i64::MIN,
            date: *b"[dd/Mon/yyyy ",
        }
    }
}

impl StampWriter {
    /// Appends the prefix for `at` (years 1000–9999) to `out`.
    pub fn write(&mut self, out: &mut Vec<u8>, at: Wall) {
        let day = at.0.div_euclid(DAY);
        if day != self.day {
            self.day = day;
            let (year, month, mday, ..) = Timestamp(at.0).to_civil();
            self.date[1..3].copy_from_slice(&two_digits(i64::from(mday)));
            self.date[4..7].copy_from_slice(MONTHS[usize::from(month) - 1]);
            let year = i64::from(year);
            self.date[8..10].copy_from_slice(&two_digits(year / 100));
            self.date[10..12].copy_from_slice(&two_digits(year % 100));
        }
        out.extend_from_slice(&self.date);
        out.extend_from_slice(&time_of_day(at));
        out.extend_from_slice(b"] ");
    }
}

/// Writes syslog's RFC 3164 prefix `Nov  2 08:13:05 `: no year, the day of
/// the month padded with a space. Like [`StampWriter`], it formats the date
/// once a day.
#[derive(Clone, Debug)]
pub struct SyslogStampWriter {
    day: i64,
    date: [u8; 7],
}

impl Default for SyslogStampWriter {
    fn default() -> Self {
        SyslogStampWriter {
            day: i64::MIN,
            date: *b"Mon dd ",
        }
    }
}

impl SyslogStampWriter {
    /// Appends the prefix for `at` to `out`.
    pub fn write(&mut self, out: &mut Vec<u8>, at: Wall) {
        let day = at.0.div_euclid(DAY);
        if day != self.day {
            self.day = day;
            let (_, month, mday, ..) = Timestamp(at.0).to_civil();
            self.date[..3].copy_from_slice(MONTHS[usize::from(month) - 1]);
            let [tens, ones] = two_digits(i64::from(mday));
            self.date[4] = if tens == b'0' { b' ' } else { tens };
            self.date[5] = ones;
        }
        out.extend_from_slice(&self.date);
        out.extend_from_slice(&time_of_day(at));
        out.push(b' ');
    }
}

/// `HH:MM:SS` of `at`.
fn time_of_day(at: Wall) -> [u8; 8] {
    let secs = at.secs_of_day();
    let h = two_digits(secs / HOUR);
    let m = two_digits(secs % HOUR / MINUTE);
    let s = two_digits(secs % MINUTE);
    [h[0], h[1], b':', m[0], m[1], b':', s[0], s[1]]
}

/// `n` (0–99) as two ASCII digits.
fn two_digits(n: i64) -> [u8; 2] {
    [b'0' + (n / 10) as u8, b'0' + (n % 10) as u8]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stamps_match_kerio_and_follow_day_changes() {
        let mut w = StampWriter::default();
        let mut out = Vec::new();
        let t = Wall::civil(2026, 11, 2, 23, 59, 59);
        w.write(&mut out, t);
        w.write(&mut out, t.plus(1));
        w.write(&mut out, Wall::civil(2012, 8, 3, 14, 3, 27));
        assert_eq!(
            out,
            b"[02/Nov/2026 23:59:59] [03/Nov/2026 00:00:00] [03/Aug/2012 14:03:27] ".as_slice()
        );
    }

    #[test]
    fn syslog_stamps_pad_the_day_with_a_space() {
        let mut w = SyslogStampWriter::default();
        let mut out = Vec::new();
        let t = Wall::civil(2026, 11, 9, 23, 59, 59);
        w.write(&mut out, t);
        w.write(&mut out, t.plus(1));
        w.write(&mut out, Wall::civil(2026, 1, 31, 8, 5, 0));
        assert_eq!(
            out,
            b"Nov  9 23:59:59 Nov 10 00:00:00 Jan 31 08:05:00 ".as_slice()
        );
    }

    #[test]
    fn weekdays_and_utc() {
        let monday = Wall::civil(2026, 11, 2, 0, 0, 0);
        assert_eq!(monday.weekday(), Weekday::Mon);
        assert_eq!(monday.plus(6 * DAY).weekday(), Weekday::Sun);
        assert!(monday.plus(5 * DAY).weekday().is_weekend());
        assert_eq!(monday.utc(HOUR).to_string(), "2026-11-01T23:00:00Z");
        assert_eq!(monday.plus(9 * HOUR + 5).at(HOUR), monday.plus(HOUR));
    }
}
