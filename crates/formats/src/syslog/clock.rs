//! Turning syslog timestamps into UTC instants: the year RFC 3164 leaves
//! out, the local zone, and a cache of the last conversion.

use mailfuse_core::Timestamp;

use super::envelope::{Offset, Stamp, WallClock};
use crate::{LocalZone, ParseContext};

/// How far past the reference a line may seem to be before it is taken for
/// last year's: a day, for clocks that disagree and a file touched late.
const CLOCK_SKEW_SECS: i64 = 86_400;

/// Enough bytes to tell two timestamps apart: the date and time to the
/// second (15 or 19 bytes) and the offset (at most 6), fractions left out.
const KEY_LEN: usize = 25;

/// Why a line's time cannot be read.
pub(super) const NO_YEAR: &str = "syslog timestamp without a year reference";
pub(super) const INVALID: &str = "invalid syslog timestamp";

/// Converts the timestamps of one file.
pub(super) struct Clock {
    zone: LocalZone,
    year_reference: Option<YearReference>,
    /// The last timestamp converted (its bytes, see [`Clock::is_last`]) and
    /// its instant: lines come in second order, so most share their
    /// timestamp with the line before.
    last: Option<([u8; KEY_LEN], usize, Timestamp)>,
}

/// The year of RFC 3164 timestamps, from a moment at or after the file's
/// last line, in the file's local wall-clock time.
struct YearReference {
    year: i32,
    /// The latest wall-clock time a line of that year may have.
    latest: Timestamp,
}

impl Clock {
    pub(super) fn new(context: &ParseContext) -> Self {
        let zone = context.zone.clone();
        let year_reference = context.year_reference.map(|reference| {
            // The wall clock at the reference: the zone's offset there is
            // the gap between reading the reference as wall clock and UTC.
            let wall = reference.plus(reference.as_secs() - zone.to_utc(reference).as_secs());
            YearReference {
                year: wall.to_civil().0,
                latest: wall.plus(CLOCK_SKEW_SECS),
            }
        });
        Clock {
            zone,
            year_reference,
            last: None,
        }
    }

    /// The UTC instant of `stamp`, or why there is none. Inlined where
    /// called: most lines share their timestamp with the line before, and
    /// the comparison costs less than a call.
    #[inline]
    pub(super) fn instant(&mut self, stamp: &Stamp<'_>) -> Result<Timestamp, &'static str> {
        match self.is_last(stamp) {
            Some(at) => Ok(at),
            None => self.convert_and_keep(stamp),
        }
    }

    /// The instant of a timestamp other than the last one, which it becomes.
    #[inline(never)]
    fn convert_and_keep(&mut self, stamp: &Stamp<'_>) -> Result<Timestamp, &'static str> {
        let at = self.convert(stamp)?;
        if let Some((key, len)) = cache_key(stamp) {
            self.last = Some((key, len, at));
        }
        Ok(at)
    }

    /// The instant of `stamp` if it is the last one converted: its bytes
    /// compared where they lie (building a key first costs more than the
    /// comparison, at one call per line), the date and time as arrays of
    /// known length, which compile to a few word comparisons.
    #[inline]
    fn is_last(&self, stamp: &Stamp<'_>) -> Option<Timestamp> {
        let (key, len, at) = self.last.as_ref()?;
        let same = match stamp {
            Stamp::Bsd(text) => {
                *len == text.len() && key.first_chunk().is_some_and(|key| same_bsd(key, text))
            }
            Stamp::Iso { civil, zone } => {
                *len == civil.len() + zone.len()
                    && key.first_chunk() == Some(*civil)
                    && key.get(civil.len()..*len)? == *zone
            }
        };
        same.then_some(*at)
    }

    fn convert(&self, stamp: &Stamp<'_>) -> Result<Timestamp, &'static str> {
        let wall_clock = stamp.wall_clock().ok_or(INVALID)?;
        let offset = stamp.offset().ok_or(INVALID)?;
        let wall = match wall_clock.year {
            Some(year) => civil(year, &wall_clock),
            None => self.infer_year(&wall_clock)?,
        }
        .ok_or(INVALID)?;
        Ok(match offset {
            Offset::Local => self.zone.to_utc(wall),
            Offset::East(secs) => wall.plus(-i64::from(secs)),
        })
    }

    /// The wall-clock instant of a timestamp without a year: in the
    /// reference's year, or the year before if that would put it after the
    /// reference (a log that crosses New Year). `Ok(None)`: no such date
    /// (Feb 29 of a year that has none, Nov 31).
    fn infer_year(&self, wall_clock: &WallClock) -> Result<Option<Timestamp>, &'static str> {
        let reference = self.year_reference.as_ref().ok_or(NO_YEAR)?;
        Ok(civil(reference.year, wall_clock)
            .filter(|&this_year| this_year <= reference.latest)
            .or_else(|| civil(reference.year - 1, wall_clock)))
    }
}

/// Whether two RFC 3164 stamps are the same, compared as two overlapping
/// 8-byte words: the comparison of 15-byte arrays took some 20
/// instructions, at every line.
fn same_bsd(one: &[u8; 15], other: &[u8; 15]) -> bool {
    let words = |stamp: &[u8; 15]| {
        let (head, tail) = (stamp.first_chunk::<8>(), stamp.last_chunk::<8>());
        (
            head.map(|w| u64::from_ne_bytes(*w)),
            tail.map(|w| u64::from_ne_bytes(*w)),
        )
    };
    words(one) == words(other)
}

/// The instant of `wall_clock` in `year`, read as UTC.
pub(super) fn civil(year: i32, wall_clock: &WallClock) -> Option<Timestamp> {
    Timestamp::from_civil(
        year,
        wall_clock.month,
        wall_clock.day,
        wall_clock.hour,
        wall_clock.minute,
        wall_clock.second,
    )
}

/// The bytes that identify `stamp`'s instant, and how many; `None` if they
/// do not fit (an over-long offset, which is invalid anyway). An RFC 3164
/// stamp starts with a letter, an RFC 3339 one with a digit: their keys
/// never meet.
fn cache_key(stamp: &Stamp<'_>) -> Option<([u8; KEY_LEN], usize)> {
    let mut key = [0; KEY_LEN];
    let len = match stamp {
        Stamp::Bsd(text) => {
            key.get_mut(..text.len())?.copy_from_slice(*text);
            text.len()
        }
        Stamp::Iso { civil, zone } => {
            let (civil_part, zone_part) = key.split_at_mut(civil.len());
            civil_part.copy_from_slice(*civil);
            zone_part.get_mut(..zone.len())?.copy_from_slice(zone);
            civil.len() + zone.len()
        }
    };
    Some((key, len))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::syslog::envelope;

    fn utc(year: i32, month: u8, day: u8, hour: u8, min: u8, sec: u8) -> Timestamp {
        Timestamp::from_civil(year, month, day, hour, min, sec).unwrap()
    }

    fn clock(zone: &str, year_reference: Option<Timestamp>) -> Clock {
        Clock::new(&ParseContext {
            zone: LocalZone::parse(zone).unwrap(),
            year_reference,
            ..ParseContext::default()
        })
    }

    fn instant(clock: &mut Clock, line: &[u8]) -> Result<Timestamp, &'static str> {
        let (stamp, _) = envelope::stamp(line).expect("a timestamp");
        clock.instant(&stamp)
    }

    #[test]
    fn year_comes_from_the_reference_and_crosses_new_year() {
        let mut clock = clock("UTC", Some(utc(2027, 1, 2, 8, 0, 0)));
        assert_eq!(
            instant(&mut clock, b"Dec 31 23:59:59 h p: x"),
            Ok(utc(2026, 12, 31, 23, 59, 59))
        );
        assert_eq!(
            instant(&mut clock, b"Jan  1 00:00:01 h p: x"),
            Ok(utc(2027, 1, 1, 0, 0, 1))
        );
        // A day of skew past the reference stays in its year.
        assert_eq!(
            instant(&mut clock, b"Jan  3 07:00:00 h p: x"),
            Ok(utc(2027, 1, 3, 7, 0, 0))
        );
        assert_eq!(
            instant(&mut clock, b"Jan  4 07:00:00 h p: x"),
            Ok(utc(2026, 1, 4, 7, 0, 0))
        );
    }

    #[test]
    fn reference_year_is_read_in_local_time() {
        // 2026-12-31 22:00 UTC is already 2027 in UTC+5.
        let mut clock = clock("+05:00", Some(utc(2026, 12, 31, 22, 0, 0)));
        assert_eq!(
            instant(&mut clock, b"Jan  1 02:59:59 h p: x"),
            Ok(utc(2026, 12, 31, 21, 59, 59))
        );
    }

    #[test]
    fn leap_day_falls_back_to_the_year_that_has_one() {
        let mut clock = clock("UTC", Some(utc(2025, 3, 1, 0, 0, 0)));
        assert_eq!(
            instant(&mut clock, b"Feb 29 12:00:00 h p: x"),
            Ok(utc(2024, 2, 29, 12, 0, 0))
        );
        assert_eq!(instant(&mut clock, b"Nov 31 12:00:00 h p: x"), Err(INVALID));
        assert_eq!(instant(&mut clock, b"Nov 30 25:00:00 h p: x"), Err(INVALID));
    }

    #[test]
    fn no_reference_no_year() {
        let mut clock = clock("UTC", None);
        assert_eq!(instant(&mut clock, b"Nov 22 21:41:33 h p: x"), Err(NO_YEAR));
        assert_eq!(
            instant(&mut clock, b"2024-08-26T01:33:38Z h p: x"),
            Ok(utc(2024, 8, 26, 1, 33, 38))
        );
    }

    #[test]
    fn rfc_3339_offsets_fractions_and_local_time() {
        let mut clock = clock("Europe/Prague", None);
        assert_eq!(
            instant(&mut clock, b"2024-08-26T01:33:38.572449+02:00 h p: x"),
            Ok(utc(2024, 8, 25, 23, 33, 38))
        );
        assert_eq!(
            instant(&mut clock, b"2024-08-26T01:33:38.9-0130 h p: x"),
            Ok(utc(2024, 8, 26, 3, 3, 38))
        );
        // No offset: Prague's summer time.
        assert_eq!(
            instant(&mut clock, b"2024-08-26T01:33:38 h p: x"),
            Ok(utc(2024, 8, 25, 23, 33, 38))
        );
        assert_eq!(
            instant(&mut clock, b"2024-02-30T01:33:38Z h p: x"),
            Err(INVALID)
        );
        assert_eq!(
            instant(&mut clock, b"2024-08-26T01:33:38+99:00 h p: x"),
            Err(INVALID)
        );
        assert_eq!(
            instant(&mut clock, b"2024-08-26T01:33:38+00:00:00:00 h p: x"),
            Err(INVALID)
        );
    }

    #[test]
    fn cache_tells_stamps_apart() {
        let mut clock = clock("Europe/Prague", Some(utc(2024, 12, 1, 0, 0, 0)));
        for _ in 0..2 {
            assert_eq!(
                instant(&mut clock, b"Jan 10 12:00:00 h p: x"),
                Ok(utc(2024, 1, 10, 11, 0, 0))
            );
            assert_eq!(
                instant(&mut clock, b"Jul 10 12:00:00 h p: x"),
                Ok(utc(2024, 7, 10, 10, 0, 0))
            );
            assert_eq!(
                instant(&mut clock, b"2024-07-10T12:00:00Z h p: x"),
                Ok(utc(2024, 7, 10, 12, 0, 0))
            );
            assert_eq!(
                instant(&mut clock, b"2024-07-10T12:00:00 h p: x"),
                Ok(utc(2024, 7, 10, 10, 0, 0))
            );
        }
    }
}
