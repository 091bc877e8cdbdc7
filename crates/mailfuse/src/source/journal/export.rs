//! The journal's export format (`journalctl -o export`, systemd's
//! "Journal Export Format"), read as a stream of bytes in chunks of any
//! size: a record is fields, one after another, ended by an empty line; a
//! field is `NAME=value\n`, or, binary-safe, `NAME\n`, the value's length
//! as a little-endian 64-bit number, the value and `\n`.
//!
//! Only the fields a log line needs are kept ([`Record`]), each at most
//! `max_value` bytes: memory stays bounded whatever a record holds (a
//! core dump's fields are megabytes). A record that breaks the format is
//! skipped up to the next empty line and counted, never a panic.

use super::{Record, Wanted};

/// Longest field name read (the journal allows 64).
const MAX_NAME: usize = 64;

/// Longest binary value believed: a longer length is damage, not data
/// (journald keeps no field that big).
const MAX_BINARY: u64 = 1 << 32;

/// What the parser hands out for each record.
#[derive(Debug)]
pub enum Parsed<'a> {
    /// A whole record.
    Record(&'a Record),
    /// A record that broke the format (a bad field name, a length past
    /// reason, the stream cut mid-field): skipped.
    Malformed,
}

/// Where in a record the parser is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    /// At the start of a line: a field's name, or the empty line that ends
    /// the record.
    LineStart,
    /// In a field's name.
    Name,
    /// In a text field's value, up to its newline.
    Text,
    /// In a binary field's length (`got` bytes of 8 read).
    Length { got: usize },
    /// In a binary field's value, `left` bytes to go.
    Binary { left: u64 },
    /// After a binary value: its newline.
    BinaryEnd,
    /// In a damaged record, skipping to its end; `line_start` after a
    /// newline.
    Skip { line_start: bool },
}

/// Reads records out of export-format chunks.
pub struct ExportParser {
    state: State,
    name: Vec<u8>,
    length: [u8; 8],
    /// The field being read, if it is one [`Record`] keeps.
    wanted: Option<Wanted>,
    record: Record,
    /// Fields read in the current record.
    fields: usize,
    max_value: usize,
}

impl ExportParser {
    /// A parser keeping values of at most `max_value` bytes (a longer
    /// message marks its record [`Record::too_long`]).
    pub fn new(max_value: usize) -> Self {
        ExportParser {
            state: State::LineStart,
            name: Vec::new(),
            length: [0; 8],
            wanted: None,
            record: Record::default(),
            fields: 0,
            max_value,
        }
    }

    /// Reads `chunk`, handing each record it completes to `on_record`.
    pub fn feed(&mut self, chunk: &[u8], on_record: &mut dyn FnMut(Parsed<'_>)) {
        let mut rest = chunk;
        while let Some((&byte, after)) = rest.split_first() {
            match self.state {
                State::LineStart if byte == b'\n' => {
                    self.end_record(on_record);
                    rest = after;
                }
                State::LineStart => {
                    self.name.clear();
                    self.state = State::Name;
                }
                State::Name => {
                    rest = after;
                    match byte {
                        b'=' => self.start_value(State::Text),
                        b'\n' => self.start_value(State::Length { got: 0 }),
                        _ if self.name.len() < MAX_NAME && is_name_byte(byte) => {
                            self.name.push(byte);
                        }
                        _ => self.damage(byte),
                    }
                }
                State::Text => {
                    let line_end = memchr::memchr(b'\n', rest);
                    let value = rest.get(..line_end.unwrap_or(rest.len()));
                    self.keep(value.unwrap_or_default());
                    match line_end {
                        Some(at) => {
                            self.end_field();
                            rest = rest.get(at + 1..).unwrap_or_default();
                        }
                        None => rest = &[],
                    }
                }
                State::Length { got } => {
                    if let Some(slot) = self.length.get_mut(got) {
                        *slot = byte;
                    }
                    rest = after;
                    self.state = match got + 1 {
                        8 => match u64::from_le_bytes(self.length) {
                            left if left > MAX_BINARY => {
                                self.damage(b'\0');
                                continue;
                            }
                            0 => State::BinaryEnd,
                            left => State::Binary { left },
                        },
                        got => State::Length { got },
                    };
                }
                State::Binary { left } => {
                    let take = usize::try_from(left).map_or(rest.len(), |l| l.min(rest.len()));
                    let (value, after) = rest.split_at(take);
                    self.keep(value);
                    rest = after;
                    let left = left - take as u64;
                    self.state = match left {
                        0 => State::BinaryEnd,
                        left => State::Binary { left },
                    };
                }
                State::BinaryEnd => {
                    rest = after;
                    match byte {
                        b'\n' => self.end_field(),
                        _ => self.damage(byte),
                    }
                }
                State::Skip { line_start } => {
                    rest = after;
                    match (byte, line_start) {
                        (b'\n', true) => {
                            on_record(Parsed::Malformed);
                            self.reset();
                        }
                        (b'\n', false) => self.state = State::Skip { line_start: true },
                        _ => self.state = State::Skip { line_start: false },
                    }
                }
            }
        }
    }

    /// The stream ended: a record without its closing empty line is whole
    /// if its last field is; one cut mid-field is malformed.
    pub fn finish(&mut self, on_record: &mut dyn FnMut(Parsed<'_>)) {
        match self.state {
            State::LineStart => self.end_record(on_record),
            _ => {
                on_record(Parsed::Malformed);
                self.reset();
            }
        }
    }

    /// Starts reading the value of the field just named.
    fn start_value(&mut self, state: State) {
        if self.name.is_empty() || self.name.first().is_some_and(u8::is_ascii_digit) {
            self.damage(b'\0');
            return;
        }
        self.wanted = Wanted::of(&self.name);
        if let Some(wanted) = self.wanted {
            self.record.field(wanted).clear();
        }
        self.state = state;
    }

    /// Keeps `bytes` of the current value if its field is wanted, up to
    /// `max_value` bytes.
    fn keep(&mut self, bytes: &[u8]) {
        let Some(wanted) = self.wanted else {
            return;
        };
        let max_value = self.max_value;
        let value = self.record.field(wanted);
        let room = max_value.saturating_sub(value.len());
        value.extend_from_slice(bytes.get(..room).unwrap_or(bytes));
        if bytes.len() > room && wanted == Wanted::Message {
            self.record.too_long = true;
        }
    }

    fn end_field(&mut self) {
        self.wanted = None;
        self.fields += 1;
        self.state = State::LineStart;
    }

    /// The empty line: hands out the record, if it has fields.
    fn end_record(&mut self, on_record: &mut dyn FnMut(Parsed<'_>)) {
        if self.fields > 0 {
            on_record(Parsed::Record(&self.record));
        }
        self.reset();
    }

    /// The record is damaged: its rest is skipped (`byte` was just read).
    fn damage(&mut self, byte: u8) {
        self.wanted = None;
        self.state = State::Skip {
            line_start: byte == b'\n',
        };
    }

    fn reset(&mut self) {
        self.record.clear();
        self.wanted = None;
        self.fields = 0;
        self.state = State::LineStart;
    }
}

/// Whether `byte` may be in a field name: upper-case letters, digits and
/// `_` (systemd's rule; a lower-case name is some other text).
fn is_name_byte(byte: u8) -> bool {
    byte.is_ascii_uppercase() || byte.is_ascii_digit() || byte == b'_'
}

/// Whether `line` (a stream's first line) starts like an export: a field
/// name and `=`.
pub fn looks_like(line: &[u8]) -> bool {
    let name_len = line.iter().take_while(|&&b| is_name_byte(b)).count();
    (1..=MAX_NAME).contains(&name_len)
        && !line.first().is_some_and(u8::is_ascii_digit)
        && line.get(name_len) == Some(&b'=')
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What the parser reads from `chunks`: per record, its message (or
    /// `malformed`) and its cursor.
    fn parse(chunks: &[&[u8]], max_value: usize) -> Vec<(String, String)> {
        let mut parser = ExportParser::new(max_value);
        let mut out = Vec::new();
        let mut on_record = |parsed: Parsed<'_>| {
            out.push(match parsed {
                Parsed::Record(r) => (
                    format!(
                        "{}{}",
                        String::from_utf8_lossy(r.message.as_deref().unwrap_or(b"-")),
                        if r.too_long { " (too long)" } else { "" }
                    ),
                    String::from_utf8_lossy(r.cursor.as_deref().unwrap_or(b"-")).into_owned(),
                ),
                Parsed::Malformed => ("malformed".into(), String::new()),
            })
        };
        for chunk in chunks {
            parser.feed(chunk, &mut on_record);
        }
        parser.finish(&mut on_record);
        out
    }

    fn binary(name: &str, value: &[u8]) -> Vec<u8> {
        let mut field = format!("{name}\n").into_bytes();
        field.extend_from_slice(&(value.len() as u64).to_le_bytes());
        field.extend_from_slice(value);
        field.push(b'\n');
        field
    }

    fn export() -> Vec<u8> {
        let mut bytes = b"__CURSOR=c1\n__REALTIME_TIMESTAMP=1\nMESSAGE=one\nOTHER=x\n\n".to_vec();
        bytes.extend_from_slice(b"__CURSOR=c2\n");
        bytes.extend_from_slice(&binary("MESSAGE", b"two\nlines\0"));
        bytes.extend_from_slice(&binary("COREDUMP", &[0xff; 300]));
        bytes.extend_from_slice(b"\n");
        bytes
    }

    #[test]
    fn text_and_binary_fields_in_chunks_of_any_size() {
        let bytes = export();
        let whole = parse(&[&bytes], 100);
        assert_eq!(
            whole,
            [
                ("one".to_string(), "c1".to_string()),
                ("two\nlines\0".to_string(), "c2".to_string())
            ]
        );
        for size in 1..bytes.len() {
            let chunks: Vec<&[u8]> = bytes.chunks(size).collect();
            assert_eq!(parse(&chunks, 100), whole, "chunks of {size}");
        }
    }

    #[test]
    fn only_the_wanted_fields_are_kept_each_within_its_bound() {
        let mut bytes = binary("MESSAGE", &[b'm'; 50]);
        bytes.extend_from_slice(b"__CURSOR=c3\n\nMESSAGE=short\n\n");
        assert_eq!(
            parse(&[&bytes], 10),
            [
                ("mmmmmmmmmm (too long)".to_string(), "c3".to_string()),
                ("short".to_string(), "-".to_string())
            ]
        );
    }

    #[test]
    fn a_damaged_record_is_counted_and_the_next_one_read() {
        let cases: [&[u8]; 4] = [
            b"bad name=1\nMESSAGE=x\n\nMESSAGE=next\n\n",
            b"MESSAGE\n\xff\xff\xff\xff\xff\xff\xff\xffxx\n\nMESSAGE=next\n\n",
            b"MESSAGE\n\x01\0\0\0\0\0\0\0ab\n\nMESSAGE=next\n\n",
            b"=x\n\nMESSAGE=next\n\n",
        ];
        for bytes in cases {
            assert_eq!(
                parse(&[bytes], 100),
                [
                    ("malformed".to_string(), String::new()),
                    ("next".to_string(), "-".to_string())
                ],
                "{}",
                String::from_utf8_lossy(bytes)
            );
        }
    }

    #[test]
    fn the_end_of_the_stream_ends_a_whole_record_and_cuts_a_broken_one() {
        assert_eq!(
            parse(&[b"MESSAGE=last\n"], 100),
            [("last".to_string(), "-".to_string())]
        );
        assert_eq!(
            parse(&[b"MESSAGE=cut"], 100),
            [("malformed".to_string(), String::new())]
        );
        assert!(
            parse(&[b"\n\n\n"], 100).is_empty(),
            "empty lines hold no record"
        );
    }

    #[test]
    fn garbage_never_panics() {
        let mut seed = 7u64;
        let mut bytes = Vec::new();
        for _ in 0..20_000 {
            seed = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
            let b = (seed >> 33) as u8;
            bytes.push(match b % 5 {
                0 => b'\n',
                1 => b'=',
                2 => b'A',
                _ => b,
            });
        }
        for size in [1, 7, 4096] {
            let chunks: Vec<&[u8]> = bytes.chunks(size).collect();
            parse(&chunks, 64);
        }
    }

    #[test]
    fn an_export_is_told_by_its_first_line() {
        assert!(looks_like(b"__CURSOR=s=abc;i=1"));
        assert!(looks_like(b"MESSAGE=hello"));
        for other in [
            &b"Nov  2 00:02:57 mail postfix/smtpd[1]: x"[..],
            b"2026-11-02 00:02:57 1tAbC-000123-AB <= x",
            b"[05/Nov/2026 02:13:00] Recv: x",
            b"9LIVES=x",
            b"{\"MESSAGE\":\"x\"}",
        ] {
            assert!(!looks_like(other), "{}", String::from_utf8_lossy(other));
        }
    }
}
