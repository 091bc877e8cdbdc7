//! The rules every reader follows to choose how to read a log: which format
//! a file is in, and which zone its local times are in. `scan` (whole files)
//! and `watch` (live follow) both apply them, so they read the same files
//! the same way.

use crate::{kerio, syslog, Format, LocalZone};

/// Lines a [`Recogniser`] looks at before judging a file not a log it knows.
pub const LOOK_LINES: u64 = 1000;

/// What a [`Recogniser`] made of the lines fed so far.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Recognition {
    /// No line showed a format yet; keep feeding.
    Undecided,
    /// The file is in this format.
    Known(Format),
    /// [`LOOK_LINES`] lines showed no format: not a log mailfuse knows.
    NotALog,
}

/// Decides a file's format from its lines, one at a time, with one rule:
/// **the format of the first line some format recognises** (formats tried in
/// [`Format::ALL`] order; no line is recognised by two). Lines no format
/// recognises and over-long lines are looked past, up to [`LOOK_LINES`]
/// lines in all. The decision depends on the lines only, never on how their
/// bytes were read, and is final. Each file of a rotated set gets its own.
/// Syslog lines of programs mailfuse does not read are looked past without
/// counting: a shared `/var/log/syslog` is a log however long it goes
/// before its first mail line.
#[derive(Clone, Debug)]
pub struct Recogniser {
    looked: u64,
    state: Recognition,
}

impl Default for Recogniser {
    fn default() -> Self {
        Recogniser {
            looked: 0,
            state: Recognition::Undecided,
        }
    }
}

impl Recogniser {
    /// Where the decision stands.
    pub fn state(&self) -> Recognition {
        self.state
    }

    /// Looks at the next line of the file.
    pub fn feed(&mut self, line: &[u8]) -> Recognition {
        if self.state == Recognition::Undecided {
            match Format::ALL.iter().find(|f| f.recognizes(line)) {
                Some(&format) => self.state = Recognition::Known(format),
                None if syslog::is_other_program(line) => {}
                None => self.pass(),
            }
        }
        self.state
    }

    /// Notes a line too long to be read: looked past, counted in the window.
    pub fn feed_too_long(&mut self) -> Recognition {
        if self.state == Recognition::Undecided {
            self.pass();
        }
        self.state
    }

    fn pass(&mut self) {
        self.looked += 1;
        if self.looked >= LOOK_LINES {
            self.state = Recognition::NotALog;
        }
    }
}

/// Where a log's zone came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ZoneSource {
    /// Given by the user (`--timezone`, `watch.timezone`).
    Configured,
    /// Derived from a Kerio Queue-ID (see [`kerio::derive_offset`]).
    KerioQueueId,
    /// Derived from a Message-ID Postfix made itself (see
    /// [`syslog::derive_offset`]).
    PostfixMessageId,
    /// Nothing to derive it from: UTC.
    Assumed,
}

/// The zone chosen for the local times of every input of a run.
#[derive(Clone, Debug)]
pub struct ChosenZone {
    /// The zone that turns the logs' local wall-clock times into UTC.
    pub zone: LocalZone,
    /// Where it came from, for the run's summary: a zone that was only
    /// assumed (UTC) may shift every time, and the user should know it.
    pub source: ZoneSource,
}

/// Chooses the zone for a run's inputs, one rule for every reader: the
/// configured zone, else the offset derived from the first line among
/// `head_lines` (the first lines of the inputs, in the order named) that
/// names a UTC instant beside its local time — a Kerio Queue-ID or a
/// Message-ID Postfix made — else UTC. One zone serves all inputs: Kerio's
/// security.log and audit.log carry no Queue-ID to derive it from.
pub fn choose_zone<L: AsRef<[u8]>>(
    configured: Option<LocalZone>,
    head_lines: impl IntoIterator<Item = L>,
) -> ChosenZone {
    if let Some(zone) = configured {
        return ChosenZone {
            zone,
            source: ZoneSource::Configured,
        };
    }
    let derived = |line: &[u8]| {
        kerio::derive_offset(line)
            .map(|offset| (offset, ZoneSource::KerioQueueId))
            .or_else(|| syslog::derive_offset(line).map(|o| (o, ZoneSource::PostfixMessageId)))
    };
    match head_lines
        .into_iter()
        .find_map(|line| derived(line.as_ref()))
    {
        Some((offset, source)) => ChosenZone {
            zone: LocalZone::Fixed(offset),
            source,
        },
        None => ChosenZone {
            zone: LocalZone::default(),
            source: ZoneSource::Assumed,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KERIO: &[u8] = b"[11/Mar/2024 11:40:39] Recv: Queue-ID: 65ee8b47-00000009, Service: SMTP, From: <a@example.com>, To: <b@example.org>, Size: 1, Sender-Host: 192.0.2.1, User: a@example.com";
    const POSTFIX: &[u8] = b"Nov 22 21:41:33 mail postfix/qmgr[7072]: 2441AB4574: removed";
    const EXIM: &[u8] = b"2024-03-21 19:26:07 1rK9Xa-0001ab-Cd Completed";

    fn recognise(lines: &[&[u8]]) -> Recognition {
        let mut recogniser = Recogniser::default();
        for line in lines {
            recogniser.feed(line);
        }
        recogniser.state()
    }

    #[test]
    fn the_first_recognised_line_decides_and_the_decision_is_final() {
        assert_eq!(recognise(&[KERIO]), Recognition::Known(Format::Kerio));
        assert_eq!(
            recognise(&[b"", b"junk", POSTFIX, KERIO, KERIO]),
            Recognition::Known(Format::Syslog)
        );
        assert_eq!(
            recognise(&[EXIM, POSTFIX]),
            Recognition::Known(Format::Exim)
        );
        assert_eq!(recognise(&[b"junk"]), Recognition::Undecided);
    }

    #[test]
    fn over_long_and_unknown_lines_are_looked_past_within_the_window() {
        let mut recogniser = Recogniser::default();
        recogniser.feed_too_long();
        for _ in 0..LOOK_LINES - 2 {
            assert_eq!(recogniser.feed(b"not a log line"), Recognition::Undecided);
        }
        assert_eq!(recogniser.feed(KERIO), Recognition::Known(Format::Kerio));

        let mut recogniser = Recogniser::default();
        for _ in 0..LOOK_LINES - 1 {
            recogniser.feed(b"");
        }
        assert_eq!(recogniser.feed_too_long(), Recognition::NotALog);
        assert_eq!(recogniser.feed(KERIO), Recognition::NotALog);
    }

    #[test]
    fn other_programs_syslog_lines_do_not_use_up_the_window() {
        let cron: &[u8] =
            b"Nov 22 21:41:33 mail CRON[7072]: (root) CMD (run-parts /etc/cron.hourly)";
        let mut recogniser = Recogniser::default();
        for _ in 0..10 * LOOK_LINES {
            assert_eq!(recogniser.feed(cron), Recognition::Undecided);
        }
        assert_eq!(recogniser.feed(POSTFIX), Recognition::Known(Format::Syslog));
    }

    #[test]
    fn zone_is_configured_else_derived_from_a_queue_id_else_utc() {
        let prague = LocalZone::parse("Europe/Prague").unwrap();
        let chosen = choose_zone(Some(prague), [KERIO]);
        assert_eq!(chosen.source, ZoneSource::Configured);
        assert_eq!(chosen.zone.describe(), "Europe/Prague");

        let chosen = choose_zone(None, [POSTFIX, KERIO]);
        assert_eq!(chosen.source, ZoneSource::KerioQueueId);
        assert_eq!(chosen.zone.describe(), "UTC+07:00");

        let chosen = choose_zone(None, [POSTFIX, EXIM]);
        assert_eq!(chosen.source, ZoneSource::Assumed);
        assert_eq!(chosen.zone.describe(), "UTC+00:00");

        // A bounce notice's Message-ID, made by Postfix in UTC, logged at
        // 21:46:28 local time on a UTC+01:00 server.
        let cleanup: &[u8] = b"Dec 14 21:46:28 mx postfix/cleanup[3120]: 7C2201C2F: message-id=<20141214204627.7C2201C2F@mx.example>";
        let chosen = choose_zone(None, [POSTFIX, cleanup]);
        assert_eq!(chosen.source, ZoneSource::PostfixMessageId);
        assert_eq!(chosen.zone.describe(), "UTC+01:00");
    }
}
