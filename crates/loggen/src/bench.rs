//! A mail log of any size for benchmarks: the example's kind of traffic for
//! a larger organisation, over as many days as the size needs, with one
//! hijack burst (the story's spam run through `sales`) in the middle.
//!
//! The traffic is the same whatever the format: [`Render`] turns it into
//! lines, [`crate::kerio::KerioRender`] as Kerio's mail.log,
//! [`crate::postfix::PostfixRender`] as a Postfix and Dovecot syslog.
//!
//! Written as a stream: messages are generated in time order hour by hour,
//! the lines due when a message arrives are written at once and the later
//! ones (deliveries, disconnects) wait in a small heap until the clock passes
//! them, so the file is in time order without holding it in memory. Lines
//! are rendered straight into one reused buffer that is handed to the writer
//! in large chunks — no allocation per line — which keeps generation far
//! faster than the disk.

use std::cmp::{Ordering, Reverse};
use std::collections::BinaryHeap;
use std::fmt::Display;
use std::io::{self, Write};
use std::str::FromStr;

use crate::attack::SpamRun;
use crate::clock::{Wall, DAY, HOUR, MINUTE};
use crate::kerio::{Ip, KerioRender};
use crate::postfix::PostfixRender;
use crate::rng::Rng;
use crate::traffic::{is_office_hours, Message, Org};

/// The benchmark organisation's domain.
pub const DOMAIN: &str = "globex.example";

/// Its office NAT address.
pub const OFFICE_IP: Ip = [198, 51, 100, 20];

/// The server's clock: UTC+01:00, as in the example.
pub const UTC_OFFSET: i64 = HOUR;

/// Staff of the default benchmark organisation: 500 MB span about three
/// weeks of Kerio's log, eleven days of Postfix's (more lines per message).
pub const DEFAULT_STAFF: usize = 1_200;

/// The seed `loggen bench` uses unless told otherwise, so benchmark files
/// of one size are the same bytes everywhere.
pub const DEFAULT_SEED: u64 = 500;

/// Buffered bytes handed to the writer at once.
const CHUNK: usize = 1 << 20;

/// The log format a benchmark file is written in.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Format {
    /// Kerio Connect's mail.log.
    #[default]
    Kerio,
    /// Postfix and Dovecot lines in one syslog file (`/var/log/mail.log`).
    Postfix,
}

impl FromStr for Format {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        match text {
            "kerio" => Ok(Format::Kerio),
            "postfix" => Ok(Format::Postfix),
            _ => Err(format!(
                "unknown format {text:?}: expected kerio or postfix"
            )),
        }
    }
}

/// What to generate.
#[derive(Clone, Debug)]
pub struct BenchConfig {
    /// Stop after the message that reaches this many bytes (pending
    /// deliveries of the last messages are still written, so the file is a
    /// little longer).
    pub target_bytes: u64,
    /// Seed of the PRNG everything is drawn from: the same seed, size, staff
    /// and format give the same file.
    pub seed: u64,
    /// People in the organisation, besides its role mailboxes.
    pub staff: usize,
    /// Which server's log to write.
    pub format: Format,
}

impl BenchConfig {
    /// A Kerio log of about `target_bytes` with the default seed and staff.
    pub fn new(target_bytes: u64) -> Self {
        BenchConfig {
            target_bytes,
            seed: DEFAULT_SEED,
            staff: DEFAULT_STAFF,
            format: Format::default(),
        }
    }
}

/// What was generated.
#[derive(Clone, Debug, Default)]
pub struct BenchReport {
    /// Bytes written (at least the target: the last messages' deliveries
    /// are still written).
    pub bytes: u64,
    /// Lines written, of every kind.
    pub lines: u64,
    /// Messages the traffic model made (spam included); not counting the
    /// server's own, such as Postfix's non-delivery notifications.
    pub messages: u64,
    /// Time of the first line (server wall time).
    pub first: Wall,
    /// Time of the last line; the file's modification time is set to it, as
    /// readers take a syslog file's missing year from that.
    pub last: Wall,
    /// The first spam message's queue id and time, if the file reached the burst.
    pub burst: Option<(String, Wall)>,
    /// Messages of the hijack burst written (0 if the file ends before it).
    pub spam_messages: u64,
    /// The format's own counts, named, e.g. Postfix's in `pflogsumm`'s terms.
    pub tally: Vec<(&'static str, u64)>,
}

/// Whether a message came on a connection of its own or on one the sender
/// keeps open for several (the spammer's), for formats that log connections.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Connection {
    /// The client connected (and authenticated, if it does) for this message.
    pub opens: bool,
    /// The client disconnects after this message.
    pub closes: bool,
}

impl Connection {
    /// One message, one connection: ordinary clients and servers.
    pub const OWN: Connection = Connection {
        opens: true,
        closes: true,
    };
}

/// Lines already written, in the buffer that goes to the file.
#[derive(Debug, Default)]
pub struct Lines {
    buf: Vec<u8>,
    count: u64,
}

impl Lines {
    #[cfg(test)]
    pub(crate) fn as_bytes(&self) -> &[u8] {
        &self.buf
    }

    /// The buffer to append one more line to (with its `\n`).
    pub fn line(&mut self) -> &mut Vec<u8> {
        self.count += 1;
        &mut self.buf
    }
}

/// Lines waiting for their time, in time order, each kind `L` as its format
/// needs to render it.
#[derive(Debug)]
pub struct Schedule<L> {
    heap: BinaryHeap<Reverse<Pending<L>>>,
    /// Tie-break keeping lines of the same second in the order they were made.
    seq: u64,
}

impl<L> Schedule<L> {
    pub(crate) fn new() -> Self {
        Schedule {
            heap: BinaryHeap::new(),
            seq: 0,
        }
    }

    /// Renders `later` at `at`, after anything already scheduled for that
    /// second. `at` must not be before the line being rendered.
    pub fn push(&mut self, at: Wall, later: L) {
        self.seq += 1;
        self.heap.push(Reverse(Pending {
            at,
            seq: self.seq,
            later,
        }));
    }

    fn next_at(&self) -> Option<Wall> {
        self.heap.peek().map(|p| p.0.at)
    }

    fn pop(&mut self) -> Option<(Wall, L)> {
        self.heap.pop().map(|Reverse(p)| (p.at, p.later))
    }
}

/// How a log format writes the traffic.
pub trait Render<'a> {
    /// Something the format writes after a message's arrival: a delivery,
    /// a disconnect, the queue's removal of the message.
    type Later;
    /// How the format names a message (shown for the burst's first one).
    type QueueId: Display;

    /// Writes the lines of `msg` due at its arrival and schedules the rest.
    fn message(
        &mut self,
        msg: &Message<'a>,
        connection: Connection,
        lines: &mut Lines,
        schedule: &mut Schedule<Self::Later>,
    ) -> Self::QueueId;

    /// Writes `later`, due at `at`; it may schedule more.
    fn later(
        &mut self,
        at: Wall,
        later: Self::Later,
        lines: &mut Lines,
        schedule: &mut Schedule<Self::Later>,
    );

    /// The hijack starting at `run`'s first message has been planned at
    /// `now`: schedule whatever the format shows of it beforehand.
    fn hijack_planned(
        &mut self,
        _now: Wall,
        _run: &SpamRun<'a>,
        _schedule: &mut Schedule<Self::Later>,
    ) {
    }

    /// The file ends at `at`: close whatever is still open (the spammer's
    /// connection, if the file ends during the run).
    fn close(&mut self, _at: Wall, _lines: &mut Lines) {}

    /// The format's own counts, for [`BenchReport::tally`].
    fn tally(&self) -> Vec<(&'static str, u64)> {
        Vec::new()
    }
}

/// Writes a mail log of at least `cfg.target_bytes` to `out`.
pub fn generate<W: Write>(out: W, cfg: &BenchConfig) -> io::Result<BenchReport> {
    let root = Rng::new(cfg.seed);
    match cfg.format {
        Format::Kerio => stream(out, cfg, &root, KerioRender::new(UTC_OFFSET)),
        // Its own random stream: the traffic stays the same as Kerio's.
        Format::Postfix => stream(out, cfg, &root, PostfixRender::new(DOMAIN, root.fork(3))),
    }
}

fn stream<'a, W: Write, R: Render<'a>>(
    out: W,
    cfg: &BenchConfig,
    root: &Rng,
    render: R,
) -> io::Result<BenchReport> {
    let org = Org::synthetic(DOMAIN, OFFICE_IP, cfg.staff, &mut root.fork(0));
    let senders: Vec<usize> = (0..org.people.len())
        .filter(|&i| org.people[i].daily > 0)
        .collect();
    let victim = org.find("sales").expect("synthetic orgs have sales").addr;
    let mut rng = root.fork(1);
    let mut spam_rng = root.fork(2);
    let mut spam: Option<SpamRun<'_>> = None;

    let start = Wall::civil(2026, 11, 2, 0, 0, 0);
    let mut stream = Stream::new(out, render);
    stream.report.first = start;
    let mut offsets: Vec<i64> = Vec::new();
    let mut hour = start;
    while stream.bytes() < cfg.target_bytes {
        // Halfway through, schedule the hijack for the coming night.
        if spam.is_none() && stream.bytes() >= cfg.target_bytes / 2 {
            let night = hour.midnight().plus(if hour.hour() < 2 { 0 } else { DAY });
            let begin = night.at(2 * HOUR + 13 * MINUTE + spam_rng.between(0, 59));
            let run = SpamRun::new(victim, begin, night.at(6 * HOUR + 40 * MINUTE));
            stream
                .render
                .hijack_planned(hour, &run, &mut stream.schedule);
            spam = Some(run);
        }
        offsets.clear();
        offsets.extend((0..org.hourly_volume(&mut rng, hour)).map(|_| rng.between(0, HOUR - 1)));
        offsets.sort_unstable();
        for &offset in &offsets {
            let at = hour.plus(offset);
            stream.advance(at, spam.as_mut(), &mut spam_rng)?;
            let msg = if rng.percent(55) {
                let sender = &org.people[rng.pick(&senders)];
                let place = match sender.home {
                    Some(home) if !is_office_hours(at) => home,
                    _ => org.office_ip,
                };
                org.outbound(&mut rng, sender, at, sender.client.channel(place))
            } else {
                org.inbound(&mut rng, at)
            };
            stream.message(&msg, Connection::OWN)?;
            if stream.bytes() >= cfg.target_bytes {
                break;
            }
        }
        hour = hour.plus(HOUR);
    }
    stream.finish()
}

/// Something scheduled for its time.
#[derive(Debug)]
struct Pending<L> {
    at: Wall,
    seq: u64,
    later: L,
}

impl<L> PartialEq for Pending<L> {
    fn eq(&self, other: &Self) -> bool {
        (self.at, self.seq) == (other.at, other.seq)
    }
}

impl<L> Eq for Pending<L> {}

impl<L> PartialOrd for Pending<L> {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl<L> Ord for Pending<L> {
    fn cmp(&self, other: &Self) -> Ordering {
        (self.at, self.seq).cmp(&(other.at, other.seq))
    }
}

/// The output side: time ordering and buffered writing. The labelled weeks
/// write through it too, one per file that holds messages.
pub(crate) struct Stream<'a, W, R: Render<'a>> {
    out: W,
    pub(crate) render: R,
    lines: Lines,
    flushed: u64,
    pub(crate) schedule: Schedule<R::Later>,
    pub(crate) report: BenchReport,
}

impl<'a, W: Write, R: Render<'a>> Stream<'a, W, R> {
    pub(crate) fn new(out: W, render: R) -> Self {
        Stream {
            out,
            render,
            lines: Lines {
                buf: Vec::with_capacity(CHUNK + 64 * 1024),
                count: 0,
            },
            flushed: 0,
            schedule: Schedule::new(),
            report: BenchReport::default(),
        }
    }

    fn bytes(&self) -> u64 {
        self.flushed + self.lines.buf.len() as u64
    }

    /// Notes that lines stamped `at` were written; hands full chunks over.
    fn wrote(&mut self, at: Wall) -> io::Result<()> {
        self.report.last = at;
        if self.lines.buf.len() >= CHUNK {
            self.out.write_all(&self.lines.buf)?;
            self.flushed += self.lines.buf.len() as u64;
            self.lines.buf.clear();
        }
        Ok(())
    }

    /// Writes something scheduled.
    fn later(&mut self, at: Wall, later: R::Later) -> io::Result<()> {
        self.render
            .later(at, later, &mut self.lines, &mut self.schedule);
        self.wrote(at)
    }

    /// Writes the scheduled lines due up to `until`: a line due at the
    /// same second as what comes next goes first, its message was earlier.
    pub(crate) fn catch_up(&mut self, until: Wall) -> io::Result<()> {
        while self.schedule.next_at().is_some_and(|at| at <= until) {
            let (at, later) = self.schedule.pop().expect("peeked");
            self.later(at, later)?;
        }
        Ok(())
    }

    /// Lets the format write lines stamped `at` that belong to no message
    /// (logins, refused logins); they may schedule more.
    pub(crate) fn write_with(
        &mut self,
        at: Wall,
        write: impl FnOnce(&mut R, &mut Lines, &mut Schedule<R::Later>),
    ) -> io::Result<()> {
        write(&mut self.render, &mut self.lines, &mut self.schedule);
        self.wrote(at)
    }

    /// Writes everything due up to `until`: scheduled lines and spam
    /// messages, merged in time order.
    pub(crate) fn advance(
        &mut self,
        until: Wall,
        mut spam: Option<&mut SpamRun<'a>>,
        rng: &mut Rng,
    ) -> io::Result<()> {
        loop {
            let spam_at = spam
                .as_ref()
                .and_then(|run| run.next_at())
                .filter(|&t| t <= until);
            let later_at = self.schedule.next_at().filter(|&t| t <= until);
            // A line due at the same second as a spam message goes first:
            // its message was queued earlier.
            let spam_first = match (later_at, spam_at) {
                (None, None) => return Ok(()),
                (Some(later), Some(spam)) => spam < later,
                (later, _) => later.is_none(),
            };
            if spam_first {
                let run = spam.as_deref_mut().expect("spam_at implies a run");
                let spam = run.next(rng).expect("next_at said a message is due");
                let connection = Connection {
                    opens: spam.new_session,
                    closes: spam.ends_session,
                };
                let queue = self.message(&spam.msg, connection)?;
                self.report.spam_messages += 1;
                if self.report.burst.is_none() {
                    self.report.burst = Some((queue.to_string(), spam.msg.at));
                }
            } else {
                let (at, later) = self.schedule.pop().expect("peeked");
                self.later(at, later)?;
            }
        }
    }

    /// Writes the message's first lines and schedules the others.
    pub(crate) fn message(
        &mut self,
        msg: &Message<'a>,
        connection: Connection,
    ) -> io::Result<R::QueueId> {
        self.report.messages += 1;
        let queue = self
            .render
            .message(msg, connection, &mut self.lines, &mut self.schedule);
        self.wrote(msg.at)?;
        Ok(queue)
    }

    /// Writes the lines still scheduled and everything buffered.
    pub(crate) fn finish(mut self) -> io::Result<BenchReport> {
        while let Some((at, later)) = self.schedule.pop() {
            self.later(at, later)?;
        }
        self.render.close(self.report.last, &mut self.lines);
        self.out.write_all(&self.lines.buf)?;
        self.out.flush()?;
        self.report.bytes = self.bytes();
        self.report.lines = self.lines.count;
        self.report.tally = self.render.tally();
        Ok(self.report)
    }
}

/// Parses a size such as `500M`: a number with an optional binary suffix
/// `K`, `M` or `G` (KiB, MiB, GiB; case-insensitive, a trailing `B` or `iB`
/// allowed).
pub fn parse_size(text: &str) -> Result<u64, String> {
    let lower = text.trim().to_ascii_lowercase();
    let unit = lower.trim_end_matches("ib").trim_end_matches('b');
    let (digits, multiplier) = match unit.char_indices().last() {
        Some((i, 'k')) => (&unit[..i], 1u64 << 10),
        Some((i, 'm')) => (&unit[..i], 1 << 20),
        Some((i, 'g')) => (&unit[..i], 1 << 30),
        _ => (unit, 1),
    };
    let number: u64 = digits.trim().parse().map_err(|_| {
        format!("invalid size {text:?}: expected a number with an optional K, M or G suffix")
    })?;
    number
        .checked_mul(multiplier)
        .filter(|&n| n > 0)
        .ok_or_else(|| format!("invalid size {text:?}: must be between 1 byte and 16 EiB"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("500M"), Ok(500 << 20));
        assert_eq!(parse_size("2g"), Ok(2 << 30));
        assert_eq!(parse_size("10KiB"), Ok(10 << 10));
        assert_eq!(parse_size("64kb"), Ok(64 << 10));
        assert_eq!(parse_size("1234"), Ok(1234));
        assert!(parse_size("0").is_err());
        assert!(parse_size("M").is_err());
        assert!(parse_size("12T").is_err());
        assert!(parse_size("-1M").is_err());
        assert!(parse_size("99999999999G").is_err());
    }
}
