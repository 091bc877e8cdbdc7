//! The RFC 5424 syslog envelope, for servers that export their logs through
//! syslog instead of writing files.
//!
//! `<PRI>VERSION TIMESTAMP HOSTNAME APP-NAME PROCID MSGID STRUCTURED-DATA MSG`,
//! e.g. `<22>1 2026-04-01T14:59:31+07:00 host mail - - - Sent: …`. Only what a
//! format parser needs is read: the instant (the header carries its own UTC
//! offset, so no local time zone is involved) and the MSG the server wrote,
//! which the format's parser reads like a line of its own log file.

use mailfuse_core::time::parse_digits;
use mailfuse_core::Timestamp;
use memchr::memchr;

use crate::zone::parse_offset;

/// The byte-order mark RFC 5424 allows at the start of a UTF-8 MSG.
const BOM: &[u8] = b"\xEF\xBB\xBF";

/// What an RFC 5424 line carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Message<'a> {
    /// The UTC instant of the header; `None` when the header has the nil
    /// timestamp `-` or one that is not a valid RFC 3339 time.
    pub at: Option<Timestamp>,
    /// The MSG part, without a leading byte-order mark; empty if absent.
    pub text: &'a [u8],
}

/// The fields of an RFC 5424 header a receiver of syslog needs to put the
/// message back in the layout of a log file (`watch`'s syslog listeners).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Header<'a> {
    /// TIMESTAMP as written (`-`: nil).
    pub timestamp: &'a [u8],
    /// HOSTNAME (`-`: nil).
    pub hostname: &'a [u8],
    /// APP-NAME (`-`: nil).
    pub app_name: &'a [u8],
    /// PROCID (`-`: nil).
    pub proc_id: &'a [u8],
    /// The MSG part, without a leading byte-order mark; empty if absent.
    pub text: &'a [u8],
}

/// The header of `line`, or `None` if it is not an RFC 5424 line.
pub fn header(line: &[u8]) -> Option<Header<'_>> {
    let (timestamp, rest) = header_timestamp(line)?;
    let (hostname, rest) = token(rest)?;
    let (app_name, rest) = token(rest)?;
    let (proc_id, rest) = token(rest)?;
    let (_msg_id, rest) = token(rest)?;
    let text = match skip_structured_data(rest)? {
        [] => &[][..],
        [b' ', msg @ ..] => msg,
        _ => return None,
    };
    Some(Header {
        timestamp,
        hostname,
        app_name,
        proc_id,
        text: text.strip_prefix(BOM).unwrap_or(text),
    })
}

/// The envelope of `line`, or `None` if it is not an RFC 5424 line.
pub fn parse(line: &[u8]) -> Option<Message<'_>> {
    let header = header(line)?;
    Some(Message {
        at: parse_timestamp(header.timestamp),
        text: header.text,
    })
}

/// The UTC instant in the header of `line`, reading no further than the
/// timestamp: cheap enough to order lines before parsing them.
pub fn timestamp(line: &[u8]) -> Option<Timestamp> {
    parse_timestamp(header_timestamp(line)?.0)
}

/// The TIMESTAMP field and the text after it, once `<PRI>VERSION ` is checked.
fn header_timestamp(line: &[u8]) -> Option<(&[u8], &[u8])> {
    let rest = line.strip_prefix(b"<")?;
    let priority_len = memchr(b'>', rest.get(..4).unwrap_or(rest))?;
    let (priority, rest) = rest.split_at_checked(priority_len)?;
    // PRIVAL is 0 to 191; among three digits, byte order is numeric order.
    if !is_number(priority, 3) || (priority.len() == 3 && priority > &b"191"[..]) {
        return None;
    }
    let (version, rest) = token(rest.strip_prefix(b">")?)?;
    if !is_number(version, 3) || version.first() == Some(&b'0') {
        return None;
    }
    token(rest)
}

/// The RFC 5424 timestamp `YYYY-MM-DDTHH:MM:SS[.fraction](Z|±HH:MM)` as a
/// UTC instant (the fraction is dropped: events keep whole seconds).
pub fn parse_timestamp(text: &[u8]) -> Option<Timestamp> {
    let (civil, zone) = text.split_first_chunk::<19>()?;
    let [y0, y1, y2, y3, b'-', mo0, mo1, b'-', d0, d1, b'T', h0, h1, b':', mi0, mi1, b':', s0, s1] =
        *civil
    else {
        return None;
    };
    let zone = match zone.strip_prefix(b".") {
        Some(fraction) => {
            let digits = fraction.iter().take_while(|b| b.is_ascii_digit()).count();
            if digits == 0 {
                return None;
            }
            fraction.get(digits..)?
        }
        None => zone,
    };
    let offset = if zone == b"Z" { 0 } else { parse_offset(zone)? };
    // Two digits are at most 99 and four at most 9999: the casts are lossless.
    let local = Timestamp::from_civil(
        parse_digits::<4>(&[y0, y1, y2, y3])? as i32,
        parse_digits::<2>(&[mo0, mo1])? as u8,
        parse_digits::<2>(&[d0, d1])? as u8,
        parse_digits::<2>(&[h0, h1])? as u8,
        parse_digits::<2>(&[mi0, mi1])? as u8,
        parse_digits::<2>(&[s0, s1])? as u8,
    )?;
    Some(local.plus(-i64::from(offset)))
}

/// The non-empty field before the next space, and the text after that space.
fn token(text: &[u8]) -> Option<(&[u8], &[u8])> {
    let end = memchr(b' ', text)?;
    let (field, rest) = text.split_at_checked(end)?;
    if field.is_empty() {
        return None;
    }
    Some((field, rest.get(1..)?))
}

/// The text after STRUCTURED-DATA: the nil value `-`, or one or more
/// `[id name="value" …]` elements, whose quoted values may hold `]` and the
/// escapes `\"`, `\\`, `\]`.
fn skip_structured_data(text: &[u8]) -> Option<&[u8]> {
    if let Some(rest) = text.strip_prefix(b"-") {
        return Some(rest);
    }
    let mut rest = text.strip_prefix(b"[")?;
    loop {
        rest = rest.get(element_end(rest)? + 1..)?;
        match rest.strip_prefix(b"[") {
            Some(next_element) => rest = next_element,
            None => return Some(rest),
        }
    }
}

/// The index of the `]` that closes an SD-ELEMENT (its `[` already read).
fn element_end(element: &[u8]) -> Option<usize> {
    let mut in_value = false;
    let mut escaped = false;
    for (i, &b) in element.iter().enumerate() {
        match b {
            _ if escaped => escaped = false,
            b'\\' if in_value => escaped = true,
            b'"' => in_value = !in_value,
            b']' if !in_value => return Some(i),
            _ => {}
        }
    }
    None
}

/// Whether `text` is 1 to `max_len` ASCII digits.
fn is_number(text: &[u8], max_len: usize) -> bool {
    (1..=max_len).contains(&text.len()) && text.iter().all(u8::is_ascii_digit)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc(y: i32, mo: u8, d: u8, h: u8, mi: u8, s: u8) -> Timestamp {
        Timestamp::from_civil(y, mo, d, h, mi, s).unwrap()
    }

    #[test]
    fn splits_header_from_message() {
        let line = b"<22>1 2026-04-01T14:59:31+07:00 mail.example.com mail - - - Sent: Queue-ID: x";
        assert_eq!(
            parse(line),
            Some(Message {
                at: Some(utc(2026, 4, 1, 7, 59, 31)),
                text: b"Sent: Queue-ID: x",
            })
        );
        assert_eq!(timestamp(line), Some(utc(2026, 4, 1, 7, 59, 31)));
    }

    #[test]
    fn the_header_names_host_program_and_pid() {
        let line = b"<22>1 2026-04-01T14:59:31Z mx1 postfix/smtpd 42 - - 3B1: client=x";
        assert_eq!(
            header(line),
            Some(Header {
                timestamp: b"2026-04-01T14:59:31Z",
                hostname: b"mx1",
                app_name: b"postfix/smtpd",
                proc_id: b"42",
                text: b"3B1: client=x",
            })
        );
    }

    #[test]
    fn timestamps_with_fractions_z_and_negative_offsets() {
        assert_eq!(
            parse_timestamp(b"2026-04-01T14:59:31.123+07:00"),
            Some(utc(2026, 4, 1, 7, 59, 31))
        );
        assert_eq!(
            parse_timestamp(b"2026-04-01T14:59:31.5Z"),
            Some(utc(2026, 4, 1, 14, 59, 31))
        );
        assert_eq!(
            parse_timestamp(b"2026-04-01T23:30:00-03:30"),
            Some(utc(2026, 4, 2, 3, 0, 0))
        );
        assert_eq!(parse_timestamp(b"2026-04-01T14:59:31"), None);
        assert_eq!(parse_timestamp(b"2026-04-01T14:59:31.Z"), None);
        assert_eq!(parse_timestamp(b"2026-02-30T14:59:31Z"), None);
        assert_eq!(parse_timestamp(b"2026-04-01 14:59:31Z"), None);
        assert_eq!(parse_timestamp(b"-"), None);
    }

    #[test]
    fn structured_data_elements_may_hold_brackets_and_escapes() {
        let line = br#"<165>1 2026-04-01T14:59:31Z h app 12 ID47 [a@1 x="]\"\]"][b@1] Recv: y"#;
        assert_eq!(parse(line).map(|m| m.text), Some(&b"Recv: y"[..]));
        let bom = b"<13>1 2026-04-01T14:59:31Z h app - - - \xEF\xBB\xBFRecv: y";
        assert_eq!(parse(bom).map(|m| m.text), Some(&b"Recv: y"[..]));
    }

    #[test]
    fn nil_timestamp_and_empty_message() {
        assert_eq!(
            parse(b"<13>1 - h app - - -"),
            Some(Message {
                at: None,
                text: b""
            })
        );
    }

    #[test]
    fn rejects_what_is_not_rfc_5424() {
        for line in [
            &b"<22> 2026-04-01T14:59:31Z h a - - - x"[..],
            b"<192>1 2026-04-01T14:59:31Z h a - - - x",
            b"<22>01 2026-04-01T14:59:31Z h a - - - x",
            b"<22>1 2026-04-01T14:59:31Z h a - - [unclosed x",
            b"<22>1 2026-04-01T14:59:31Z h a - - -x",
            b"<22>1 2026-04-01T14:59:31Z h  a - - - x",
            b"<22>1 2026-04-01T14:59:31Z",
            b"<2222>1 x",
            b"Apr  1 14:59:31 host mail: x",
        ] {
            assert_eq!(parse(line), None, "{}", String::from_utf8_lossy(line));
        }
    }
}
