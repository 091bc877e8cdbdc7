//! `mailfuse-loggen replay`: sends a syslog file to a syslog receiver over
//! many TCP connections at once, as many mail servers would, for
//! `bench/ingest.sh`.
//!
//! Each connection is a host of its own (`mx01`, `mx02`…, written in place
//! of the file's host name) and carries a share of the file: the lines of
//! one queue id, or of one process (`smtpd[123]`), go to one connection,
//! so each message is told by one host, whole and in order. Lines are sent
//! octet-counted (RFC 6587), as fast as the receiver takes them or at a
//! given rate. When a line of each second of the log's clock was sent is
//! written to a file, so latency can be measured from the line that
//! tripped.

use std::collections::HashMap;
use std::fs;
use std::io::{BufWriter, Write};
use std::net::TcpStream;
use std::path::Path;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Length of an RFC 3164 stamp (`Nov 22 21:41:33`).
const STAMP: usize = 15;

/// When the lines of one second of the log were sent: the first and the
/// last, in nanoseconds since the Unix epoch.
type Sent = HashMap<Vec<u8>, (u128, u128)>;

/// How to send.
pub struct Replay<'a> {
    /// Where: `HOST:PORT`.
    pub to: &'a str,
    /// Connections sending at once.
    pub senders: usize,
    /// Lines per second over all connections; `None`: as fast as taken.
    pub rate: Option<u64>,
}

/// Sends `log` as `how` says; writes when each second of the log was sent
/// to `times` (`STAMP<TAB>FIRST_NS<TAB>LAST_NS`).
pub fn replay(log: &Path, how: &Replay<'_>, times: &Path) -> Result<(), String> {
    let text = fs::read(log).map_err(|e| format!("cannot read {}: {e}", log.display()))?;
    let senders = how.senders.max(1);
    // Lines per second over all connections: the file's n-th line is due
    // at n / pace, whichever connection sends it, so the lines of one
    // second of the log go out together.
    let pace = how.rate.map(|rate| (rate as f64).max(1e-3));
    let mut shares: Vec<Vec<(usize, &[u8])>> = vec![Vec::new(); senders];
    let lines = text.split(|&b| b == b'\n').filter(|l| l.len() > STAMP + 1);
    for (n, line) in lines.enumerate() {
        let key = queue_id(line).unwrap_or_else(|| process(line));
        let share = fnv(key) as usize % senders;
        if let Some(share) = shares.get_mut(share) {
            share.push((n, line));
        }
    }
    let epoch = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_err(|e| e.to_string())?
        .as_nanos();
    let started = Instant::now();
    let results: Vec<Result<Sent, String>> = std::thread::scope(|scope| {
        let handles: Vec<_> = shares
            .iter()
            .enumerate()
            .map(|(n, lines)| {
                let host = format!("mx{:02}", n + 1);
                scope.spawn(move || send(how.to, &host, lines, pace, (epoch, started)))
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or_else(|_| Err("a sender panicked".into())))
            .collect()
    });
    let seconds = started.elapsed().as_secs_f64();
    let mut all = Sent::new();
    for sent in results {
        for (stamp, (first, last)) in sent? {
            let entry = all.entry(stamp).or_insert((first, last));
            entry.0 = entry.0.min(first);
            entry.1 = entry.1.max(last);
        }
    }
    let mut out = String::new();
    for (stamp, (first, last)) in &all {
        out.push_str(&format!(
            "{}\t{first}\t{last}\n",
            String::from_utf8_lossy(stamp)
        ));
    }
    fs::write(times, out).map_err(|e| format!("cannot write {}: {e}", times.display()))?;
    let lines: usize = shares.iter().map(Vec::len).sum();
    eprintln!(
        "sent {lines} lines over {senders} connections in {seconds:.2} s ({:.0} lines/s)",
        lines as f64 / seconds.max(1e-9)
    );
    Ok(())
}

/// Sends `lines` (numbered in the file) as host `host`, the file at `pace`
/// lines a second if given (each line then flushed as it goes), noting when
/// each second's lines went; `clock` is the replay's start, since the
/// epoch and as an instant.
fn send(
    to: &str,
    host: &str,
    lines: &[(usize, &[u8])],
    pace: Option<f64>,
    (epoch, started): (u128, Instant),
) -> Result<Sent, String> {
    let stream = TcpStream::connect(to).map_err(|e| format!("cannot connect to {to}: {e}"))?;
    let mut out = BufWriter::with_capacity(64 * 1024, stream);
    let mut sent = Sent::new();
    let mut message = Vec::new();
    for &(n, line) in lines {
        if let Some(pace) = pace {
            let due = Duration::from_secs_f64(n as f64 / pace);
            if let Some(wait) = due.checked_sub(started.elapsed()) {
                std::thread::sleep(wait);
            }
        }
        let (Some(stamp), Some(rest)) = (line.get(..STAMP), line.get(STAMP + 1..)) else {
            continue;
        };
        // `host rest` → the file's host replaced by this sender's.
        let rest = rest
            .iter()
            .position(|&b| b == b' ')
            .and_then(|space| rest.get(space..))
            .unwrap_or(rest);
        message.clear();
        message.extend_from_slice(b"<22>");
        message.extend_from_slice(stamp);
        message.push(b' ');
        message.extend_from_slice(host.as_bytes());
        message.extend_from_slice(rest);
        let write = write!(out, "{} ", message.len()).and_then(|()| out.write_all(&message));
        write.map_err(|e| format!("{host}: cannot send: {e}"))?;
        if pace.is_some() {
            out.flush()
                .map_err(|e| format!("{host}: cannot send: {e}"))?;
        }
        let now = epoch + started.elapsed().as_nanos();
        let entry = sent.entry(stamp.to_vec()).or_insert((now, now));
        entry.1 = now;
    }
    out.flush()
        .map_err(|e| format!("{host}: cannot send: {e}"))?;
    Ok(sent)
}

/// A Postfix queue id after the program's tag (`…]: 3F2A1C0B9: …`).
fn queue_id(line: &[u8]) -> Option<&[u8]> {
    let after = line.windows(3).position(|w| w == b"]: ")? + 3;
    let rest = line.get(after..)?;
    let end = rest.iter().position(|&b| b == b':')?;
    let id = rest.get(..end)?;
    let shaped = id.len() >= 5 && id.iter().all(u8::is_ascii_alphanumeric);
    // A word such as `warning` is no queue id: every id has a digit.
    (shaped && id.iter().any(u8::is_ascii_digit)).then_some(id)
}

/// The program and pid (`postfix/smtpd[123]`), or the line itself.
fn process(line: &[u8]) -> &[u8] {
    line.windows(3)
        .position(|w| w == b"]: ")
        .and_then(|end| line.get(STAMP + 1..end))
        .unwrap_or(line)
}

/// FNV-1a, to share keys among the connections.
fn fnv(key: &[u8]) -> u64 {
    key.iter().fold(0xcbf2_9ce4_8422_2325, |hash, &b| {
        (hash ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_message_goes_by_its_queue_id_and_other_lines_by_their_process() {
        let line = b"Mar  2 10:00:00 mail postfix/qmgr[2010]: 3F2A1C0B9: from=<a@b>";
        assert_eq!(queue_id(line), Some(&b"3F2A1C0B9"[..]));
        let login = b"Mar  2 10:00:00 mail postfix/smtpd[77]: connect from x[1.2.3.4]";
        assert_eq!(queue_id(login), None);
        let warning = b"Mar  2 10:00:00 mail postfix/smtpd[77]: warning: unknown[1.2.3.4]: x";
        assert_eq!(queue_id(warning), None);
        assert_eq!(process(login), b"mail postfix/smtpd[77");
    }
}
