//! Mail server log parsers: one module per server format.
//!
//! A parser takes one line (`&[u8]`, without its line ending) and says what it
//! means as an [`Event`]. Parsers do no I/O and never panic on any input: a
//! line they do not understand is reported as [`Parsed::Unknown`] or
//! [`Parsed::Malformed`] so the caller can count it, never as an error that
//! stops the run.
//!
//! Adding a format means one module here plus a variant of [`Format`].

pub mod exim;
#[cfg(test)]
mod expect;
pub mod kerio;
pub mod recognise;
pub mod syslog;
pub mod syslog5424;
mod values;
pub mod zone;

use mailfuse_core::{Event, Timestamp};

pub use recognise::{choose_zone, ChosenZone, Recogniser, Recognition, ZoneSource};
pub use zone::LocalZone;

/// What a parser made of one line.
#[derive(Debug, PartialEq, Eq)]
pub enum Parsed<'a> {
    /// The line reports something the detectors use.
    Event(Event<'a>),
    /// A line this format knows that carries nothing for detection
    /// (start-up notices, statistics…).
    Ignored,
    /// Not a line of this format, or a kind of line it does not know.
    Unknown,
    /// A line of this format whose content could not be read (bad timestamp,
    /// missing required field); the reason is for the skipped-lines summary.
    Malformed(&'static str),
}

/// What a parser needs to know of the file it reads, besides its lines.
#[derive(Clone, Debug, Default)]
pub struct ParseContext {
    /// The zone of timestamps written in local time without an offset.
    pub zone: LocalZone,
    /// A moment at or after the file's last line (its modification time;
    /// now, for a stream): the year of timestamps written without one (RFC
    /// 3164 `Nov 22 10:01:02`). Without it such lines are malformed.
    pub year_reference: Option<Timestamp>,
    /// How much of each line is read.
    pub detail: Detail,
}

/// How much of a line a parser reads.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Detail {
    /// Everything the line says: what `trace` shows.
    #[default]
    Whole,
    /// What the detectors look at. Text a sender wrote that no detector
    /// reads is left unread: a Kerio `Recv:` line's Subject and Msg-Id, the
    /// values whose ends cost the most to find (a subject may hold any
    /// comma): 6 % of the instructions of a Kerio scan. Kerio `Recv:` and
    /// `Sent:` lines in the layout Kerio writes are read as written (the
    /// same values, for fewer instructions); `Whole` reads them by the
    /// general rule.
    Detection,
}

/// The log formats mailfuse reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Format {
    /// Kerio Connect `mail.log`, `security.log`, `audit.log` (also exported through RFC 5424 syslog).
    Kerio,
    /// Syslog files of a Postfix and Dovecot server (`/var/log/mail.log`,
    /// Postfix's `maillog_file`, Dovecot's `log_path`): both programs'
    /// lines, mixed, in RFC 3164 or RFC 3339 syslog.
    Syslog,
    /// Exim's `mainlog`.
    Exim,
}

impl Format {
    /// Every format, in the order a [`Recogniser`] tries them.
    pub const ALL: &'static [Format] = &[Format::Kerio, Format::Syslog, Format::Exim];

    /// Short lower-case name used in reports and flags.
    pub fn name(self) -> &'static str {
        match self {
            Format::Kerio => "kerio",
            Format::Syslog => "syslog",
            Format::Exim => "exim",
        }
    }

    /// Whether `line` looks like a line of this format (a [`Recogniser`]
    /// asks, to pick the parser for a file from its first lines).
    pub fn recognizes(self, line: &[u8]) -> bool {
        match self {
            Format::Kerio => kerio::recognizes(line),
            Format::Syslog => syslog::recognizes(line),
            Format::Exim => exim::recognizes(line),
        }
    }

    /// A parser for a file of this format.
    pub fn parser(self, context: &ParseContext) -> Box<dyn LineParser> {
        match self {
            Format::Kerio => {
                Box::new(kerio::KerioParser::new(context.zone.clone()).reading(context.detail))
            }
            Format::Syslog => Box::new(syslog::SyslogParser::new(context)),
            Format::Exim => Box::new(exim::EximParser::new(context)),
        }
    }
}

/// A stateful parser for one log file (state: time-zone cache, year inference…).
///
/// Parsing has two steps, so that one file can be read in pieces on several
/// threads and still mean the same: [`read`](Self::read) takes a line on its
/// own (any parser of the file may read any line, in any order), then
/// [`settle`](Self::settle), called by one parser for every line in file
/// order, completes what depends on the lines before (a syslog repeat
/// notice repeats the line before it). [`parse`](Self::parse) does both.
pub trait LineParser: Send {
    /// The UTC instant of a line from its timestamp alone, cheaply: used to
    /// merge several files in time order before full parsing.
    fn timestamp(&mut self, line: &[u8]) -> Option<Timestamp>;

    /// What the line says on its own, and what [`settle`](Self::settle)
    /// must know of it.
    fn read<'a>(&mut self, line: &'a [u8]) -> Reading<'a>;

    /// [`read`](Self::read) into `reading`, over what it held. Called
    /// through the trait object, this default is compiled for each parser,
    /// its `read` inlined: a caller keeping readings in a vector saves a
    /// copy of each (some 250 bytes a line) over assigning `read`'s result.
    fn read_into<'a>(&mut self, line: &'a [u8], reading: &mut Reading<'a>) {
        *reading = self.read(line);
    }

    /// Completes a line [`read`](Self::read) with what the lines before it
    /// said; called for every line of the file, in order.
    fn settle(&mut self, _parsed: &mut Parsed<'_>, _carry: Carry) {}

    /// Whether [`settle`](Self::settle) may change a line: when it cannot,
    /// callers skip it.
    fn settles(&self) -> bool {
        false
    }

    /// Everything the line says, the lines before it having been parsed.
    fn parse<'a>(&mut self, line: &'a [u8]) -> Parsed<'a> {
        let mut reading = self.read(line);
        self.settle(&mut reading.parsed, reading.carry);
        reading.parsed
    }
}

/// A line read on its own (see [`LineParser::read`]).
#[derive(Debug)]
pub struct Reading<'a> {
    /// What the line says on its own.
    pub parsed: Parsed<'a>,
    /// The line's time, as [`LineParser::timestamp`] reads it: found on
    /// the way, it need not be read again.
    pub at: Option<Timestamp>,
    /// What [`LineParser::settle`] must know of the line.
    pub carry: Carry,
}

impl<'a> Reading<'a> {
    /// `parsed`, of a line whose time is `at`, that leaves nothing to settle.
    fn settled(parsed: Parsed<'a>, at: Option<Timestamp>) -> Self {
        Reading {
            parsed,
            at,
            carry: Carry::default(),
        }
    }
}

/// What a line read on its own leaves for [`LineParser::settle`]; opaque.
#[derive(Clone, Copy, Debug, Default)]
pub struct Carry(Option<syslog::Pending>);
