//! A syslog message's header: the sending host, and the line the format
//! parsers read.
//!
//! RFC 3164 (`<PRI>Mon DD HH:MM:SS host prog[pid]: msg`, or rsyslog's
//! RFC 3339 stamp in its place) is, after `<PRI>`, the layout of a syslog
//! file: the parsers read it as it is. RFC 5424 (`<PRI>1 TIMESTAMP HOST APP
//! PROCID MSGID SD MSG`) is read whole by the Kerio parser (Kerio exports
//! it so), and put back in the file layout, `TIMESTAMP HOST APP[PROCID]:
//! MSG`, for the others.

use mailfuse_formats::syslog5424;

/// The longest host name kept (RFC 5424's HOSTNAME limit): a longer one is
/// no host's, and the peer's address stands for it, so hosts held cost at
/// most this each, whatever a sender writes.
const MAX_HOST: usize = 255;

/// What a message's header says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Header<'a> {
    /// The host it names, if any (else the peer's address stands for it).
    pub host: Option<&'a [u8]>,
    /// The message in the shape it came.
    pub form: Form<'a>,
}

/// The two shapes of a syslog message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Form<'a> {
    /// RFC 3164, or a line with no `<PRI>`: the text after `<PRI>`.
    File(&'a [u8]),
    /// RFC 5424: the whole message and its header.
    Rfc5424 {
        whole: &'a [u8],
        header: syslog5424::Header<'a>,
    },
}

/// Reads the header of `message` (never fails: a message with no header is
/// a line of its own).
pub fn parse(message: &[u8]) -> Header<'_> {
    if let Some(header) = syslog5424::header(message) {
        let host = (header.hostname != b"-").then_some(header.hostname);
        return Header {
            host: host.filter(|host| host.len() <= MAX_HOST),
            form: Form::Rfc5424 {
                whole: message,
                header,
            },
        };
    }
    let line = without_priority(message);
    Header {
        host: mailfuse_formats::syslog::host(line).filter(|host| host.len() <= MAX_HOST),
        form: Form::File(line),
    }
}

impl Form<'_> {
    /// The line a parser reads: the Kerio parser (`whole_5424`) takes RFC
    /// 5424 whole, the others in the file layout, rebuilt in `scratch`.
    pub fn line<'b>(&'b self, whole_5424: bool, scratch: &'b mut Vec<u8>) -> &'b [u8] {
        match *self {
            Form::File(line) => line,
            Form::Rfc5424 { whole, .. } if whole_5424 => whole,
            Form::Rfc5424 { header, .. } => {
                scratch.clear();
                scratch.extend_from_slice(header.timestamp);
                if header.hostname != b"-" {
                    scratch.push(b' ');
                    scratch.extend_from_slice(header.hostname);
                }
                if header.app_name != b"-" {
                    scratch.push(b' ');
                    scratch.extend_from_slice(header.app_name);
                    if header.proc_id != b"-" {
                        scratch.push(b'[');
                        scratch.extend_from_slice(header.proc_id);
                        scratch.push(b']');
                    }
                    scratch.push(b':');
                }
                scratch.push(b' ');
                scratch.extend_from_slice(header.text);
                scratch
            }
        }
    }
}

/// `message` without its `<PRI>` (1 to 3 digits, at most 191), if it has
/// one.
fn without_priority(message: &[u8]) -> &[u8] {
    let Some(rest) = message.strip_prefix(b"<") else {
        return message;
    };
    let digits = rest
        .iter()
        .take(4)
        .take_while(|b| b.is_ascii_digit())
        .count();
    let (priority, after) = rest.split_at(digits);
    match after.strip_prefix(b">") {
        Some(line) if (1..=3).contains(&digits) && (digits < 3 || priority <= &b"191"[..]) => line,
        _ => message,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line_of(message: &[u8], whole_5424: bool) -> (Option<String>, String) {
        let header = parse(message);
        let mut scratch = Vec::new();
        let line = header.form.line(whole_5424, &mut scratch);
        (
            header.host.map(|h| String::from_utf8_lossy(h).into_owned()),
            String::from_utf8_lossy(line).into_owned(),
        )
    }

    fn some(host: &str, line: &str) -> (Option<String>, String) {
        (Some(host.into()), line.into())
    }

    #[test]
    fn rfc_3164_is_the_file_layout_after_its_priority() {
        let line = "Dec  5 01:02:03 mx1 postfix/smtpd[7]: 3B1: client=x[1.2.3.4]";
        assert_eq!(
            line_of(format!("<22>{line}").as_bytes(), false),
            some("mx1", line)
        );
        // rsyslog's RSYSLOG_ForwardFormat: an RFC 3339 stamp.
        let iso = "2026-12-05T01:02:03.123456+01:00 mx2 dovecot: imap-login: x";
        assert_eq!(
            line_of(format!("<30>{iso}").as_bytes(), true),
            some("mx2", iso)
        );
    }

    #[test]
    fn rfc_3164_without_a_host_or_a_priority() {
        let no_host = "Dec  5 01:02:03 postfix/smtpd[7]: x";
        assert_eq!(
            line_of(format!("<13>{no_host}").as_bytes(), false),
            (None, no_host.into())
        );
        let bare = "Dec  5 01:02:03 mx3 postfix/qmgr[2]: x";
        assert_eq!(line_of(bare.as_bytes(), false), some("mx3", bare));
        for odd in ["<192>x y z", "<>x", "<1234>x", "<12x"] {
            assert_eq!(line_of(odd.as_bytes(), false), (None, odd.into()), "{odd}");
        }
    }

    #[test]
    fn a_host_name_longer_than_rfc_5424_allows_is_none() {
        let long = "h".repeat(MAX_HOST + 1);
        let fits = "h".repeat(MAX_HOST);
        for (host, kept) in [(&long, false), (&fits, true)] {
            for message in [
                format!("<22>1 2026-12-05T01:02:03Z {host} postfix/smtpd 7 - - x"),
                format!("<22>Dec  5 01:02:03 {host} postfix/smtpd[7]: x"),
            ] {
                let header = parse(message.as_bytes());
                assert_eq!(header.host.is_some(), kept, "{message}");
            }
        }
    }

    #[test]
    fn rfc_5424_whole_for_kerio_and_rebuilt_for_the_others() {
        let message = "<22>1 2026-12-05T01:02:03Z mx4 postfix/smtpd 7 - - 3B1: client=x";
        assert_eq!(line_of(message.as_bytes(), true), some("mx4", message));
        assert_eq!(
            line_of(message.as_bytes(), false),
            some(
                "mx4",
                "2026-12-05T01:02:03Z mx4 postfix/smtpd[7]: 3B1: client=x"
            )
        );
        let nil = r#"<22>1 2026-12-05T01:02:03Z - dovecot - ID [x@1 a="b"] imap: y"#;
        assert_eq!(
            line_of(nil.as_bytes(), false),
            (None, "2026-12-05T01:02:03Z dovecot: imap: y".into())
        );
    }
}
