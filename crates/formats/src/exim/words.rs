//! Reading Exim's space-separated log text: words, `KEY=value` fields, the
//! host text `name (helo) [ip]:port`, and the reply codes in error texts.
//!
//! Much of a line comes from outside: the envelope addresses and the HELO
//! name from the client, the Subject and Message-ID from the message, error
//! texts from remote servers. Exim keeps the quotes and backslashes of an
//! address (`"a b"@example.com`, `a\ b@example.com`) and quotes the values
//! it knows to be free text (`T="…"` with `\"` escapes, `C="…"`), so words
//! are split the way Exim's own address parser reads them: a space inside
//! `"…"` or after `\` does not end a word. An unbalanced quote swallows the
//! rest of the line into one word: fields after it are lost, never forged.

use std::net::IpAddr;

use mailfuse_core::{net, Client};
use memchr::memchr;

use crate::values::is_enhanced_status_code;

/// The words of a text, split at spaces outside quotes and escapes.
#[derive(Clone, Debug)]
pub(super) struct Words<'a> {
    rest: &'a [u8],
    stops_at_colon: bool,
    reason: Option<&'a [u8]>,
}

impl<'a> Words<'a> {
    /// All the words of `text`.
    pub(super) fn new(text: &'a [u8]) -> Self {
        Words {
            rest: text,
            stops_at_colon: false,
            reason: None,
        }
    }

    /// The words of `text` up to the first one ending with `:`, which is
    /// given without its colon: Exim ends its fields so and writes the
    /// error or reason after the `: ` ([`Words::reason`]).
    pub(super) fn until_reason(text: &'a [u8]) -> Self {
        Words {
            stops_at_colon: true,
            ..Words::new(text)
        }
    }

    /// The text after the word that ended the fields, once it has been read.
    pub(super) fn reason(&self) -> Option<&'a [u8]> {
        self.reason
    }

    /// The text after the word that ended the fields, skipping the words
    /// before it.
    pub(super) fn into_reason(mut self) -> Option<&'a [u8]> {
        self.by_ref().for_each(drop);
        self.reason
    }

    /// The text not split yet.
    pub(super) fn rest(&self) -> &'a [u8] {
        self.rest
    }

    /// The next word if `wanted` accepts it; otherwise nothing is consumed.
    pub(super) fn next_if(&mut self, wanted: impl Fn(&[u8]) -> bool) -> Option<&'a [u8]> {
        let mut ahead = self.clone();
        let word = ahead.next().filter(|word| wanted(word))?;
        *self = ahead;
        Some(word)
    }
}

impl<'a> Iterator for Words<'a> {
    type Item = &'a [u8];

    fn next(&mut self) -> Option<&'a [u8]> {
        if self.reason.is_some() {
            return None;
        }
        let text = self.rest.trim_ascii_start();
        if text.is_empty() {
            return None;
        }
        let (word, rest) = text.split_at_checked(word_end(text))?;
        self.rest = rest.strip_prefix(b" ").unwrap_or(rest);
        if self.stops_at_colon {
            if let Some(word) = word.strip_suffix(b":") {
                self.reason = Some(self.rest);
                self.rest = b"";
                return Some(word);
            }
        }
        Some(word)
    }
}

/// Where the word at the start of `text` ends: at the first space that is
/// neither inside `"…"` nor escaped by `\`, else at the end of `text`.
fn word_end(text: &[u8]) -> usize {
    let mut from = 0;
    let mut quoted = false;
    loop {
        let rest = text.get(from..).unwrap_or_default();
        let Some(at) = next_stop(rest, quoted).map(|offset| from + offset) else {
            return text.len();
        };
        match text.get(at) {
            Some(b' ') => return at,
            Some(b'"') => {
                quoted = !quoted;
                from = at + 1;
            }
            // A backslash: the byte after it is taken as it is.
            _ => from = at + 2,
        }
    }
}

/// The first `"` or `\` in `text`, or space unless `quoted`.
///
/// Eight bytes at a time in a register: words are a dozen bytes, too short
/// for a vector search to pay for its setup, long enough for this to beat
/// a byte loop.
fn next_stop(text: &[u8], quoted: bool) -> Option<usize> {
    const ONES: u64 = u64::from_ne_bytes([0x01; 8]);
    const HIGHS: u64 = u64::from_ne_bytes([0x80; 8]);
    // The high bit of each byte of `chunk` equal to `byte`; exact up to
    // the first match, which is all that is read.
    let matches = |chunk: u64, byte: u8| {
        let diff = chunk ^ (ONES * u64::from(byte));
        diff.wrapping_sub(ONES) & !diff & HIGHS
    };
    let chunks = text.chunks_exact(8);
    let tail = chunks.remainder();
    for (i, chunk) in chunks.enumerate() {
        let chunk = u64::from_le_bytes(chunk.try_into().ok()?);
        let mut found = matches(chunk, b'"') | matches(chunk, b'\\');
        if !quoted {
            found |= matches(chunk, b' ');
        }
        if found != 0 {
            return Some(i * 8 + found.trailing_zeros() as usize / 8);
        }
    }
    let in_tail = tail
        .iter()
        .position(|&b| b == b'"' || b == b'\\' || (b == b' ' && !quoted))?;
    Some(text.len() - tail.len() + in_tail)
}

/// Splits a `KEY=value` word; keys are short ASCII names (`H`, `CV`,
/// `M8S`, `id`), so a word such as an address with `=` in it is no field.
pub(super) fn field(word: &[u8]) -> Option<(&[u8], &[u8])> {
    const MAX_KEY: usize = 4;
    // Too short a span for a vector search to pay off.
    let equals = word.iter().take(MAX_KEY + 1).position(|&b| b == b'=')?;
    let (key, value) = word.split_at_checked(equals)?;
    if key.is_empty() || !key.iter().all(u8::is_ascii_alphanumeric) {
        return None;
    }
    Some((key, value.get(1..).unwrap_or_default()))
}

/// A quoted value (`"Quarterly report"`) without its quotes, escapes kept;
/// a value cut short by a truncated line keeps what it has.
pub(super) fn unquoted(value: &[u8]) -> &[u8] {
    let inner = value.strip_prefix(b"\"").unwrap_or(value);
    inner.strip_suffix(b"\"").unwrap_or(inner)
}

/// A host as Exim writes it (`H=`, `authenticator failed for`): an
/// optional name (from DNS), an optional `(helo)` and an optional
/// `[ip]:port`, in that order.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(super) struct Host<'a> {
    pub(super) name: Option<&'a [u8]>,
    /// The text between the brackets.
    pub(super) literal: Option<&'a [u8]>,
}

impl<'a> Host<'a> {
    /// Reads the host starting with `first` (the value after `H=`), taking
    /// the words after it while they are its `(helo)` and `[ip]` parts.
    ///
    /// Exim only accepts HELO names of letters, digits, `.`, `-` or a
    /// `[literal]`, so the helo is one word; a helo with spaces
    /// (`helo_accept_junk_hosts`) is read up to a word ending in `)`. Such a
    /// junk helo can imitate the parts after it: nothing tells them apart.
    pub(super) fn read(first: &'a [u8], words: &mut Words<'a>) -> Self {
        let starts_helo = |word: &[u8]| word.starts_with(b"(");
        let starts_literal = |word: &[u8]| word.starts_with(b"[");
        let mut host = Host::default();
        let mut word = Some(first);
        if let Some(name) = word.filter(|w| !starts_helo(w) && !starts_literal(w)) {
            host.name = Some(name).filter(|name| !name.is_empty());
            word = words.next_if(|w| starts_helo(w) || starts_literal(w));
        }
        if word.is_some_and(starts_helo) {
            while word.is_some_and(|w| !w.ends_with(b")")) {
                word = words.next();
            }
            word = words.next_if(starts_literal);
        }
        host.literal = word.and_then(bracketed);
        host
    }

    /// The client this host is: its IP, else its name.
    pub(super) fn client(&self) -> Client<'a> {
        match (self.ip(), self.name) {
            (Some(ip), _) => Client::Ip(ip),
            (None, Some(name)) => Client::Host(name),
            (None, None) => Client::Unknown,
        }
    }

    pub(super) fn ip(&self) -> Option<IpAddr> {
        self.literal.and_then(net::parse_ip)
    }

    /// How a delivery names the host it handed the message to: its name,
    /// else its address.
    pub(super) fn relay(&self) -> Option<&'a [u8]> {
        self.name.or(self.literal)
    }
}

/// The text inside `[…]` in `[ip]` or `[ip]:port`.
fn bracketed(word: &[u8]) -> Option<&[u8]> {
    let inner = word.strip_prefix(b"[")?;
    let close = memchr(b']', inner)?;
    let (literal, after) = inner.split_at_checked(close)?;
    let after = after.get(1..).unwrap_or_default();
    (after.is_empty() || after.starts_with(b":")).then_some(literal)
}

/// The enhanced status code (`5.1.1`) of the first SMTP reply in `text`
/// that has one: a 3-digit code followed by ` ` or `-` and an enhanced code
/// of the same class (`550 5.1.1 User unknown`, `550-5.7.1 …`).
pub(super) fn enhanced_code(text: &[u8]) -> Option<&[u8]> {
    let mut words = text.split(|&b| b == b' ').peekable();
    while let Some(word) = words.next() {
        let Some((reply, joined)) = word.split_at_checked(3) else {
            continue;
        };
        let code = match joined {
            b"" => words.peek().copied(),
            _ => joined.strip_prefix(b"-"),
        };
        let Some(&class) = reply.first() else {
            continue;
        };
        let is_reply = matches!(class, b'2' | b'4' | b'5') && reply.iter().all(u8::is_ascii_digit);
        if let Some(code) = code.filter(|code| {
            is_reply && code.first() == Some(&class) && is_enhanced_status_code(code)
        }) {
            return Some(code);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(text: &[u8]) -> Vec<&[u8]> {
        Words::new(text).collect()
    }

    #[test]
    fn quotes_and_escapes_keep_spaces_inside_a_word() {
        assert_eq!(
            words(br#"<= "a b A=x:y"@example.com T="say \"hi\" A=evil:ceo" K"#),
            [
                &b"<="[..],
                br#""a b A=x:y"@example.com"#,
                br#"T="say \"hi\" A=evil:ceo""#,
                b"K"
            ]
        );
        assert_eq!(
            words(br"a\ b@example.com  S=1 "),
            [&br"a\ b@example.com"[..], b"S=1"]
        );
        assert_eq!(
            words(br#"T="unbalanced S=1"#),
            [&br#"T="unbalanced S=1"#[..]]
        );
        assert_eq!(words(b"ends with \\"), [&b"ends"[..], b"with", b"\\"]);
        assert!(words(b"").is_empty());
    }

    #[test]
    fn stops_are_found_at_every_offset() {
        for len in 0..20 {
            for at in 0..len {
                for stop in [b' ', b'"', b'\\'] {
                    let mut text = vec![b'x'; len];
                    text[at] = stop;
                    text.extend(b" \"");
                    assert_eq!(next_stop(&text, false), Some(at), "{len} {at} {stop}");
                    let quoted = if stop == b' ' { len + 1 } else { at };
                    assert_eq!(next_stop(&text, true), Some(quoted), "{len} {at} {stop}");
                }
            }
            assert_eq!(next_stop(&vec![0xff; len], false), None);
        }
    }

    #[test]
    fn reason_follows_the_word_ending_in_a_colon() {
        let mut words = Words::until_reason(br#"x@y "a: b"@c R=r: 550 5.1.1 no: really"#);
        assert_eq!(words.next(), Some(&b"x@y"[..]));
        assert_eq!(words.next(), Some(&br#""a: b"@c"#[..]));
        assert_eq!(words.next(), Some(&b"R=r"[..]));
        assert_eq!(words.next(), None);
        assert_eq!(words.reason(), Some(&b"550 5.1.1 no: really"[..]));
    }

    #[test]
    fn fields_have_short_alphanumeric_keys() {
        assert_eq!(field(b"S=2275"), Some((&b"S"[..], &b"2275"[..])));
        assert_eq!(field(b"id=a=b@c"), Some((&b"id"[..], &b"a=b@c"[..])));
        assert_eq!(field(b"M8S=0"), Some((&b"M8S"[..], &b"0"[..])));
        assert_eq!(
            field(b"a=b@example.com"),
            Some((&b"a"[..], &b"b@example.com"[..]))
        );
        assert_eq!(field(b"alice=x@example.com"), None);
        assert_eq!(field(b"<a=b>"), None);
        assert_eq!(field(b"=x"), None);
        assert_eq!(field(b"K"), None);
    }

    #[test]
    fn host_parts() {
        let read = |text: &'static [u8]| {
            let mut words = Words::until_reason(text);
            let first = words.next().unwrap();
            (Host::read(first, &mut words), words.next())
        };
        let ip = |text: &str| Client::Ip(text.parse().unwrap());
        let (host, after) = read(b"(laptop) [203.0.113.7]:51234 P=esmtpsa");
        assert_eq!((host.client(), host.name), (ip("203.0.113.7"), None));
        assert_eq!(after, Some(&b"P=esmtpsa"[..]));
        let (host, _) = read(b"mx.partner.test [198.51.100.5]: 550 x");
        assert_eq!(host.client(), ip("198.51.100.5"));
        assert_eq!(host.relay(), Some(&b"mx.partner.test"[..]));
        let (host, _) = read(b"rrcs.example ([192.168.2.33]) [24.106.174.74]: 535");
        assert_eq!(host.client(), ip("24.106.174.74"));
        let (host, _) = read(b"[2001:db8::1]:25 I=[2001:db8::2]:25");
        assert_eq!(host.client(), ip("2001:db8::1"));
        let (host, after) = read(b"(junk helo [6.6.6.6]) [192.0.2.1] F=<a@b>");
        assert_eq!(
            (host.client(), after),
            (ip("192.0.2.1"), Some(&b"F=<a@b>"[..]))
        );
        let (host, _) = read(b"localhost F=<a@b>");
        assert_eq!(host.client(), Client::Host(b"localhost"));
        let (host, _) = read(b"(unclosed helo");
        assert_eq!(host.client(), Client::Unknown);
        let (host, _) = read(b"[not an ip]");
        assert_eq!(host.client(), Client::Unknown);
    }

    #[test]
    fn enhanced_codes_follow_a_reply_of_their_class() {
        let code = |text: &[u8]| enhanced_code(text).map(<[u8]>::to_vec);
        assert_eq!(
            code(b"SMTP error from remote mail server after RCPT TO:<a@b>: 550 5.1.1 User unknown"),
            Some(b"5.1.1".to_vec())
        );
        assert_eq!(code(b"550-5.7.1 blocked"), Some(b"5.7.1".to_vec()));
        assert_eq!(code(b"250 2.0.0 OK"), Some(b"2.0.0".to_vec()));
        assert_eq!(code(b"550 4.1.1 mismatched class"), None);
        assert_eq!(code(b"Unrouteable address"), None);
        assert_eq!(code(b"5.1.1 without a reply"), None);
        assert_eq!(code(b"550 5.1.1234 too long"), None);
        assert_eq!(code(b"550"), None);
    }
}
