//! `journalctl -o json`: one JSON object per line, every value a string,
//! an array of byte values (a value that is not UTF-8), an array of those
//! (a field given more than once), or `null` (a value over 4096 bytes,
//! unless journalctl was given `--all`).

use serde::Deserialize;

use super::Record;

/// A field's value as journalctl writes it.
#[derive(Deserialize)]
#[serde(untagged)]
enum Value {
    Text(String),
    Bytes(Vec<u8>),
    /// A field given more than once: its first value is kept.
    Many(Vec<Value>),
}

impl Value {
    fn into_bytes(self) -> Option<Vec<u8>> {
        match self {
            Value::Text(text) => Some(text.into_bytes()),
            Value::Bytes(bytes) => Some(bytes),
            Value::Many(values) => values.into_iter().next()?.into_bytes(),
        }
    }
}

/// The fields a line needs; the others are skipped unread.
#[derive(Deserialize)]
struct Fields {
    #[serde(rename = "__CURSOR")]
    cursor: Option<Value>,
    #[serde(rename = "__REALTIME_TIMESTAMP")]
    realtime: Option<Value>,
    #[serde(rename = "_HOSTNAME")]
    hostname: Option<Value>,
    #[serde(rename = "SYSLOG_IDENTIFIER")]
    identifier: Option<Value>,
    #[serde(rename = "SYSLOG_PID")]
    syslog_pid: Option<Value>,
    #[serde(rename = "_PID")]
    pid: Option<Value>,
    #[serde(rename = "_COMM")]
    comm: Option<Value>,
    #[serde(rename = "MESSAGE")]
    message: Option<Value>,
}

/// The record of one line of `journalctl -o json`, its message cut at
/// `max_value` bytes (and marked too long, as is a message journalctl
/// wrote `null`: over 4096 bytes); `None` if the line is not a JSON object.
pub fn record(line: &[u8], max_value: usize) -> Option<Record> {
    let fields: Fields = serde_json::from_slice(line).ok()?;
    let bytes = |value: Option<Value>| value.and_then(Value::into_bytes);
    let mut message = bytes(fields.message);
    let null = message.is_none() && memchr::memmem::find(line, b"\"MESSAGE\":null").is_some();
    if null {
        message = Some(Vec::new());
    }
    let too_long = null || message.as_ref().is_some_and(|m| m.len() > max_value);
    if let Some(message) = message.as_mut() {
        message.truncate(max_value);
    }
    Some(Record {
        cursor: bytes(fields.cursor),
        realtime: bytes(fields.realtime),
        hostname: bytes(fields.hostname),
        identifier: bytes(fields.identifier),
        syslog_pid: bytes(fields.syslog_pid),
        pid: bytes(fields.pid),
        comm: bytes(fields.comm),
        message,
        too_long,
    })
}

/// Whether `line` (a stream's first line) is an object of journalctl's
/// JSON output.
pub fn looks_like(line: &[u8]) -> bool {
    let line = line.trim_ascii_start();
    line.starts_with(b"{\"")
        && [
            &b"\"__REALTIME_TIMESTAMP\":"[..],
            b"\"__CURSOR\":",
            b"\"MESSAGE\":",
        ]
        .iter()
        .any(|key| memchr::memmem::find(line, key).is_some())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_bytes_repeats_and_nulls() {
        let line = br#"{"_PID":"7","MESSAGE":[99,97,102,233],"__CURSOR":"s=1","_HOSTNAME":["mx1","mx2"],"SYSLOG_IDENTIFIER":null,"__REALTIME_TIMESTAMP":"1796497596816378","OTHER":{"x":1}}"#;
        let record = record(line, 100).expect("an object");
        assert_eq!(record.message.as_deref(), Some(&b"caf\xe9"[..]));
        assert_eq!(record.hostname.as_deref(), Some(&b"mx1"[..]));
        assert_eq!(record.identifier, None);
        assert_eq!(record.cursor.as_deref(), Some(&b"s=1"[..]));
        assert_eq!(record.pid.as_deref(), Some(&b"7"[..]));
        assert!(!record.too_long);
    }

    #[test]
    fn a_long_message_is_cut_and_marked_and_junk_is_none() {
        let record = record(br#"{"MESSAGE":"abcdef"}"#, 4).expect("an object");
        assert_eq!(record.message.as_deref(), Some(&b"abcd"[..]));
        assert!(record.too_long);
        let null = super::record(br#"{"MESSAGE":null}"#, 4).expect("an object");
        assert!(null.too_long, "journalctl's null for a long value");
        let none = super::record(br#"{"_PID":"1"}"#, 4).expect("an object");
        assert!(none.message.is_none() && !none.too_long);
        for junk in [&b"{"[..], b"[1,2]", b"\xff", b"{\"MESSAGE\":[300]}"] {
            assert!(super::record(junk, 10).is_none());
        }
    }

    #[test]
    fn journal_json_is_told_by_its_first_line() {
        assert!(looks_like(br#"{"_PID":"1","__REALTIME_TIMESTAMP":"1"}"#));
        assert!(looks_like(br#"  {"MESSAGE":"x"}"#));
        assert!(!looks_like(br#"{"level":"info","msg":"x"}"#));
        assert!(!looks_like(
            b"Nov  2 00:02:57 mail postfix/smtpd[1]: {\"MESSAGE\":"
        ));
    }
}
