//! Journals for the tests: a syslog log's lines as journal records (the
//! export format and journalctl's JSON, built here from systemd's
//! documented format), and real journal files written from them by
//! Debian's `systemd-journal-remote` (the test machines run no journald:
//! they are containers without systemd as PID 1).

// Each test uses the part it needs.
#![allow(dead_code)]

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};

use mailfuse_core::time::month_from_abbrev;
use mailfuse_core::Timestamp;

/// Where Debian installs `systemd-journal-remote` (not on the PATH).
const JOURNAL_REMOTE: [&str; 2] = [
    "/lib/systemd/systemd-journal-remote",
    "/usr/lib/systemd/systemd-journal-remote",
];

/// `systemd-journal-remote`, or a test failure saying how to get it.
pub fn journal_remote() -> PathBuf {
    JOURNAL_REMOTE
        .iter()
        .map(PathBuf::from)
        .find(|path| path.is_file())
        .unwrap_or_else(|| {
            panic!(
                "systemd-journal-remote is not installed: run scripts/install-test-deps (as root) first"
            )
        })
}

/// `journalctl`, or a test failure saying how to get it.
pub fn journalctl() -> PathBuf {
    ["/usr/bin/journalctl", "/bin/journalctl"]
        .iter()
        .map(PathBuf::from)
        .find(|path| path.is_file())
        .unwrap_or_else(|| {
            panic!("journalctl is not installed: run scripts/install-test-deps (as root) first")
        })
}

/// A record's fields: name and value.
pub type Fields = Vec<(&'static str, Vec<u8>)>;

/// The journal record of syslog `line` (`Nov  2 00:02:57 mail
/// postfix/smtpd[1103]: message`, a time of `year` in UTC), as journald
/// would have stored it (unit, boot, monotonic time beside it); `None` for
/// a line of another shape.
pub fn record(line: &str, year: i32, seq: u64) -> Option<Fields> {
    let month = month_from_abbrev(line.get(..3)?.as_bytes())?;
    let day: u8 = line.get(4..6)?.trim().parse().ok()?;
    let time = line.get(7..15)?;
    let [hour, minute, second] = [0..2, 3..5, 6..8].map(|r| time.get(r)?.parse::<u8>().ok());
    let at = Timestamp::from_civil(year, month, day, hour?, minute?, second?)?;
    let rest = line.get(16..)?;
    let (host, rest) = rest.split_once(' ')?;
    let (tag, message) = rest.split_once(": ")?;
    let (identifier, pid) = match tag.split_once('[') {
        Some((identifier, pid)) => (identifier, pid.strip_suffix(']')),
        None => (tag, None),
    };
    let unit = match identifier {
        "dovecot" => "dovecot.service",
        _ => "postfix@-.service",
    };
    let micros = at.as_secs() * 1_000_000 + (seq % 1_000_000) as i64;
    let mut fields: Fields = vec![
        ("__REALTIME_TIMESTAMP", micros.to_string().into_bytes()),
        ("__MONOTONIC_TIMESTAMP", (seq + 1).to_string().into_bytes()),
        ("_BOOT_ID", b"0123456789abcdef0123456789abcdef".to_vec()),
        ("PRIORITY", b"6".to_vec()),
        ("SYSLOG_FACILITY", b"2".to_vec()),
        ("_HOSTNAME", host.as_bytes().to_vec()),
        ("SYSLOG_IDENTIFIER", identifier.as_bytes().to_vec()),
        ("_SYSTEMD_UNIT", unit.as_bytes().to_vec()),
        ("MESSAGE", message.as_bytes().to_vec()),
    ];
    if let Some(pid) = pid {
        fields.push(("SYSLOG_PID", pid.as_bytes().to_vec()));
        fields.push(("_PID", pid.as_bytes().to_vec()));
    }
    Some(fields)
}

/// The records of `log`'s lines, in order.
pub fn records(log: &str, year: i32) -> Vec<Fields> {
    log.lines()
        .enumerate()
        .map(|(seq, line)| {
            record(line, year, seq as u64).unwrap_or_else(|| panic!("not a syslog line: {line}"))
        })
        .collect()
}

/// `records` in the export format, with a `__CURSOR` each; every
/// `binary_every`th message binary-safe (a length, then the bytes).
pub fn export(records: &[Fields], binary_every: usize) -> Vec<u8> {
    let mut out = Vec::new();
    for (i, fields) in records.iter().enumerate() {
        out.extend_from_slice(format!("__CURSOR=s=test;i={i:x}\n").as_bytes());
        for (name, value) in fields {
            if *name == "MESSAGE" && binary_every > 0 && i % binary_every == 0 {
                out.extend_from_slice(format!("{name}\n").as_bytes());
                out.extend_from_slice(&(value.len() as u64).to_le_bytes());
                out.extend_from_slice(value);
            } else {
                out.extend_from_slice(name.as_bytes());
                out.push(b'=');
                out.extend_from_slice(value);
            }
            out.push(b'\n');
        }
        out.push(b'\n');
    }
    out
}

/// `records` as `journalctl -o json` writes them, one object a line; every
/// `bytes_every`th message as an array of byte values.
pub fn json(records: &[Fields], bytes_every: usize) -> Vec<u8> {
    let mut out = Vec::new();
    for (i, fields) in records.iter().enumerate() {
        let mut object = serde_json::Map::new();
        object.insert("__CURSOR".into(), format!("s=test;i={i:x}").into());
        for (name, value) in fields {
            let text = String::from_utf8(value.clone()).expect("UTF-8");
            let value = if *name == "MESSAGE" && bytes_every > 0 && i % bytes_every == 0 {
                serde_json::Value::from(value.clone())
            } else {
                text.into()
            };
            object.insert((*name).into(), value);
        }
        serde_json::to_writer(&mut out, &object).unwrap();
        out.push(b'\n');
    }
    out
}

/// A running `systemd-journal-remote` writing the records it is given
/// into one journal file; stopped when dropped (even when the test fails).
pub struct JournalRemote {
    child: Child,
    stdin: Option<ChildStdin>,
}

impl JournalRemote {
    /// Starts writing `file` (named `*.journal`; its directory must exist).
    pub fn start(file: &Path) -> JournalRemote {
        let mut child = Command::new(journal_remote())
            .arg(format!("--output={}", file.display()))
            .arg("-")
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("systemd-journal-remote starts");
        let stdin = child.stdin.take();
        JournalRemote { child, stdin }
    }

    /// Hands it records in the export format.
    pub fn append(&mut self, export: &[u8]) {
        let stdin = self.stdin.as_mut().expect("running");
        stdin.write_all(export).unwrap();
        stdin.flush().unwrap();
    }

    /// Ends its input and waits until it wrote everything and closed the
    /// file.
    pub fn finish(mut self) {
        drop(self.stdin.take());
        let status = self.child.wait().expect("it ends");
        assert!(status.success(), "systemd-journal-remote failed: {status}");
    }
}

impl Drop for JournalRemote {
    fn drop(&mut self) {
        drop(self.stdin.take());
        if !matches!(self.child.try_wait(), Ok(Some(_))) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Writes `export`'s records into the journal file `file` and waits until
/// they are there.
pub fn write_journal(file: &Path, export: &[u8]) {
    let mut remote = JournalRemote::start(file);
    remote.append(export);
    remote.finish();
}
