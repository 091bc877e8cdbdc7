//! A Kerio mail.log of any size for benchmarks: the example's kind of traffic
//! for a larger organisation, over as many days as the size needs, with one
//! hijack burst (the story's spam run through `sales`) in the middle.
//!
//! Written as a stream: messages are generated in time order hour by hour,
//! their `Recv:` line is written at once and their `Sent:` lines wait in a
//! small heap until the clock passes them, so the file is in time order
//! without holding it in memory. Lines are rendered straight into one reused
//! buffer that is handed to the writer in large chunks — no allocation per
//! line — which keeps generation far faster than the disk.

use std::cmp::{Ordering, Reverse};
use std::collections::BinaryHeap;
use std::io::{self, Write};

use crate::attack::SpamRun;
use crate::clock::{Wall, DAY, HOUR, MINUTE};
use crate::kerio::{Ip, Line, LineWriter, QueueId, Sent};
use crate::rng::Rng;
use crate::traffic::{is_office_hours, Message, Org};

/// The benchmark organisation's domain.
pub const DOMAIN: &str = "globex.example";

/// Its office NAT address.
pub const OFFICE_IP: Ip = [198, 51, 100, 20];

/// The server's clock: UTC+01:00, as in the example.
pub const UTC_OFFSET: i64 = HOUR;

/// Staff of the default benchmark organisation: enough mail for ~15 MB a
/// working day, so 500 MB spans about seven weeks.
pub const DEFAULT_STAFF: usize = 1_200;

pub const DEFAULT_SEED: u64 = 500;

/// Buffered bytes handed to the writer at once.
const CHUNK: usize = 1 << 20;

/// What to generate.
#[derive(Clone, Debug)]
pub struct BenchConfig {
    /// Stop after the line that reaches this many bytes (pending deliveries
    /// of the last messages are still written, so the file is a little longer).
    pub target_bytes: u64,
    pub seed: u64,
    /// People in the organisation, besides its role mailboxes.
    pub staff: usize,
}

impl BenchConfig {
    pub fn new(target_bytes: u64) -> Self {
        BenchConfig {
            target_bytes,
            seed: DEFAULT_SEED,
            staff: DEFAULT_STAFF,
        }
    }
}

/// What was generated.
#[derive(Clone, Debug, Default)]
pub struct BenchReport {
    pub bytes: u64,
    pub lines: u64,
    pub messages: u64,
    /// Time of the first and last line.
    pub first: Wall,
    pub last: Wall,
    /// The first spam message's queue id and time, if the file reached the burst.
    pub burst: Option<(QueueId, Wall)>,
    pub spam_messages: u64,
}

/// Writes a mail.log of at least `cfg.target_bytes` to `out`.
pub fn generate<W: Write>(out: W, cfg: &BenchConfig) -> io::Result<BenchReport> {
    let root = Rng::new(cfg.seed);
    let org = Org::synthetic(DOMAIN, OFFICE_IP, cfg.staff, &mut root.fork(0));
    let senders: Vec<usize> = (0..org.people.len())
        .filter(|&i| org.people[i].daily > 0)
        .collect();
    let victim = org.find("sales").expect("synthetic orgs have sales").addr;
    let mut rng = root.fork(1);
    let mut spam_rng = root.fork(2);
    let mut spam: Option<SpamRun<'_>> = None;

    let start = Wall::civil(2026, 11, 2, 0, 0, 0);
    let mut stream = Stream::new(out);
    stream.report.first = start;
    let mut offsets: Vec<i64> = Vec::new();
    let mut hour = start;
    while stream.bytes() < cfg.target_bytes {
        // Halfway through, schedule the hijack for the coming night.
        if spam.is_none() && stream.bytes() >= cfg.target_bytes / 2 {
            let night = hour.midnight().plus(if hour.hour() < 2 { 0 } else { DAY });
            let begin = night.at(2 * HOUR + 13 * MINUTE + spam_rng.between(0, 59));
            spam = Some(SpamRun::new(
                victim,
                begin,
                night.at(6 * HOUR + 40 * MINUTE),
            ));
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
            stream.message(&msg)?;
            if stream.bytes() >= cfg.target_bytes {
                break;
            }
        }
        hour = hour.plus(HOUR);
    }
    stream.finish()
}

/// A `Sent:` line waiting for its time.
struct Pending<'a> {
    at: Wall,
    /// Tie-break keeping lines of the same second in the order they were made.
    seq: u64,
    sent: Sent<'a>,
}

impl PartialEq for Pending<'_> {
    fn eq(&self, other: &Self) -> bool {
        (self.at, self.seq) == (other.at, other.seq)
    }
}

impl Eq for Pending<'_> {}

impl PartialOrd for Pending<'_> {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Pending<'_> {
    fn cmp(&self, other: &Self) -> Ordering {
        (self.at, self.seq).cmp(&(other.at, other.seq))
    }
}

/// The output side: numbering, time ordering and buffered writing.
struct Stream<'a, W> {
    out: W,
    buf: Vec<u8>,
    flushed: u64,
    writer: LineWriter,
    pending: BinaryHeap<Reverse<Pending<'a>>>,
    seq: u64,
    counter: u32,
    report: BenchReport,
}

impl<'a, W: Write> Stream<'a, W> {
    fn new(out: W) -> Self {
        Stream {
            out,
            buf: Vec::with_capacity(CHUNK + 4096),
            flushed: 0,
            writer: LineWriter::default(),
            pending: BinaryHeap::new(),
            seq: 0,
            counter: 0x0010_0000,
            report: BenchReport::default(),
        }
    }

    fn bytes(&self) -> u64 {
        self.flushed + self.buf.len() as u64
    }

    fn write(&mut self, at: Wall, line: &Line<'_>) -> io::Result<()> {
        self.writer.write(&mut self.buf, at, line);
        self.report.lines += 1;
        self.report.last = at;
        if self.buf.len() >= CHUNK {
            self.out.write_all(&self.buf)?;
            self.flushed += self.buf.len() as u64;
            self.buf.clear();
        }
        Ok(())
    }

    /// Writes everything due up to `until`: pending deliveries and spam
    /// messages, merged in time order.
    fn advance(
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
            let sent_at = self.pending.peek().map(|p| p.0.at).filter(|&t| t <= until);
            // A delivery due at the same second as a spam message goes first:
            // it was queued earlier.
            let spam_first = match (sent_at, spam_at) {
                (None, None) => return Ok(()),
                (Some(sent), Some(spam)) => spam < sent,
                (sent, _) => sent.is_none(),
            };
            if spam_first {
                let run = spam.as_deref_mut().expect("spam_at implies a run");
                let spam = run.next(rng).expect("next_at said a message is due");
                let queue = self.message(&spam.msg)?;
                self.report.spam_messages += 1;
                self.report.burst.get_or_insert((queue, spam.msg.at));
            } else {
                let Reverse(p) = self.pending.pop().expect("peeked");
                self.write(p.at, &Line::Sent(p.sent))?;
            }
        }
    }

    /// Writes the message's `Recv:` line and queues its deliveries.
    fn message(&mut self, msg: &Message<'a>) -> io::Result<QueueId> {
        let queue = QueueId::new(msg.at.utc(UTC_OFFSET), self.counter);
        self.counter = self.counter.wrapping_add(1);
        self.report.messages += 1;
        self.write(msg.at, &Line::Recv(msg.recv(queue)))?;
        for (at, sent) in msg.sents(queue) {
            self.seq += 1;
            self.pending.push(Reverse(Pending {
                at,
                seq: self.seq,
                sent,
            }));
        }
        Ok(queue)
    }

    /// Writes the deliveries still pending and everything buffered.
    fn finish(mut self) -> io::Result<BenchReport> {
        while let Some(Reverse(p)) = self.pending.pop() {
            self.write(p.at, &Line::Sent(p.sent))?;
        }
        self.out.write_all(&self.buf)?;
        self.out.flush()?;
        self.report.bytes = self.bytes();
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
