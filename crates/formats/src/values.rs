//! Small value readers every format needs.

use std::net::{IpAddr, Ipv4Addr};
use std::sync::LazyLock;

use mailfuse_core::net::parse_ip;
use memchr::memmem;

/// An address or message id without its angle brackets (`<>` gives `""`).
pub(crate) fn without_angles(value: &[u8]) -> &[u8] {
    value
        .strip_prefix(b"<")
        .and_then(|inner| inner.strip_suffix(b">"))
        .unwrap_or(value)
}

/// A non-negative decimal number that fits in `u64`.
pub(crate) fn decimal(digits: &[u8]) -> Option<u64> {
    if digits.is_empty() {
        return None;
    }
    digits.iter().try_fold(0u64, |acc, &b| {
        let digit = b.wrapping_sub(b'0');
        if digit > 9 {
            return None;
        }
        acc.checked_mul(10)?.checked_add(u64::from(digit))
    })
}

/// A phrase searched for in many lines, its searcher built once: building
/// one costs more than a search in a line (`memmem::find` builds one at
/// every call).
pub(crate) type Phrase = LazyLock<memmem::Finder<'static>>;

/// Where `byte` first occurs in `text`.
///
/// The parsers search a line for the next separator dozens of times, and
/// the separator is mostly a few bytes away: memchr's entry point then costs
/// more than the search (about 50 instructions a call to pick and set up its
/// AVX2 routine). On x86_64, where SSE2 is always there, memchr's SSE2
/// searcher is called directly: about 20.
#[inline]
pub(crate) fn find_byte(byte: u8, text: &[u8]) -> Option<usize> {
    #[cfg(target_arch = "x86_64")]
    if let Some(searcher) = memchr::arch::x86_64::sse2::memchr::One::new(byte) {
        return searcher.find(text);
    }
    memchr::memchr(byte, text)
}

/// Where `one` or `other` first occurs in `text`: [`find_byte`] for two.
#[inline]
pub(crate) fn find_either(one: u8, other: u8, text: &[u8]) -> Option<usize> {
    #[cfg(target_arch = "x86_64")]
    if let Some(searcher) = memchr::arch::x86_64::sse2::memchr::Two::new(one, other) {
        return searcher.find(text);
    }
    memchr::memchr2(one, other, text)
}

/// Where each `byte` of `text` lies, in order: [`find_byte`] repeated, as
/// `memchr_iter` repeats memchr's entry point.
pub(crate) fn positions(byte: u8, text: &[u8]) -> impl Iterator<Item = usize> + '_ {
    let mut from = 0;
    std::iter::from_fn(move || {
        let at = from + find_byte(byte, text.get(from..)?)?;
        from = at + 1;
        Some(at)
    })
}

/// Where `byte` last occurs in `text`: [`find_byte`] from the end.
#[inline]
pub(crate) fn rfind_byte(byte: u8, text: &[u8]) -> Option<usize> {
    #[cfg(target_arch = "x86_64")]
    if let Some(searcher) = memchr::arch::x86_64::sse2::memchr::One::new(byte) {
        return searcher.rfind(text);
    }
    memchr::memrchr(byte, text)
}

/// Where the last `phrase` starts in `text`. Reverse substring search has no
/// vector prefilter, and the phrases searched for end in a rare byte: scan
/// for it. Inlined, so that the comparison with a constant phrase is too.
#[inline]
pub(crate) fn rfind(text: &[u8], phrase: &[u8]) -> Option<usize> {
    let (&last, _) = phrase.split_last()?;
    let mut before = text.len();
    loop {
        let end = rfind_byte(last, text.get(..before)?)?;
        let start = (end + 1).checked_sub(phrase.len());
        if let Some(start) = start.filter(|&start| text.get(start..=end) == Some(phrase)) {
            return Some(start);
        }
        before = end;
    }
}

/// An IP address as [`parse_ip`] reads it, sooner for the dotted IPv4
/// address most lines carry: `str::parse` costs some 300 instructions on
/// one, checking UTF-8 first, this about 50. Anything else goes to
/// [`parse_ip`].
pub(crate) fn ip_address(text: &[u8]) -> Option<IpAddr> {
    match ipv4(text) {
        Some(v4) => Some(IpAddr::V4(v4)),
        None => parse_ip(text),
    }
}

/// `a.b.c.d` exactly as the standard library reads it: four decimal octets
/// of one to three digits, none above 255, no leading zero (`01` could be
/// octal to another reader); `None` for anything else.
fn ipv4(text: &[u8]) -> Option<Ipv4Addr> {
    let mut octets = [0u8; 4];
    let mut rest = text;
    for (index, octet) in octets.iter_mut().enumerate() {
        if index > 0 {
            rest = rest.strip_prefix(b".")?;
        }
        let (value, after) = leading_octet(rest)?;
        *octet = value;
        rest = after;
    }
    rest.is_empty().then_some(Ipv4Addr::from(octets))
}

/// The octet `text` starts with (as many digits as there are, up to three,
/// no leading zero) and the text after it.
fn leading_octet(text: &[u8]) -> Option<(u8, &[u8])> {
    let digit = |byte: u8| u16::from(byte - b'0');
    let (value, rest) = match text {
        [a @ b'1'..=b'9', b @ b'0'..=b'9', c @ b'0'..=b'9', rest @ ..] => {
            (digit(*a) * 100 + digit(*b) * 10 + digit(*c), rest)
        }
        [a @ b'1'..=b'9', b @ b'0'..=b'9', rest @ ..] => (digit(*a) * 10 + digit(*b), rest),
        [a @ b'0'..=b'9', rest @ ..] => (digit(*a), rest),
        _ => return None,
    };
    Some((u8::try_from(value).ok()?, rest))
}

/// Whether `code` is an RFC 3463 enhanced status code: class 2, 4 or 5,
/// then subject and detail of 1 to 3 digits (`2.0.0`, `5.7.26`).
pub(crate) fn is_enhanced_status_code(code: &[u8]) -> bool {
    let is_number =
        |part: &[u8]| (1..=3).contains(&part.len()) && part.iter().all(u8::is_ascii_digit);
    let mut parts = code.split(|&b| b == b'.');
    matches!(parts.next(), Some([b'2' | b'4' | b'5']))
        && parts.next().is_some_and(is_number)
        && parts.next().is_some_and(is_number)
        && parts.next().is_none()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn angles_numbers_and_status_codes() {
        assert_eq!(without_angles(b"<a@b>"), b"a@b");
        assert_eq!(without_angles(b"<>"), b"");
        assert_eq!(without_angles(b"<a@b"), b"<a@b");
        assert_eq!(decimal(b"2275"), Some(2275));
        assert_eq!(decimal(b""), None);
        assert_eq!(decimal(b"12a"), None);
        assert_eq!(decimal(b"99999999999999999999999"), None);
        assert!(is_enhanced_status_code(b"5.1.1"));
        assert!(is_enhanced_status_code(b"2.0.0"));
        assert!(is_enhanced_status_code(b"5.7.26"));
        assert!(!is_enhanced_status_code(b"3.1.1"));
        assert!(!is_enhanced_status_code(b"5.1"));
        assert!(!is_enhanced_status_code(b"5.1.1.1"));
        assert!(!is_enhanced_status_code(b"5.1234.1"));
    }

    #[test]
    fn finds_the_last_phrase() {
        assert_eq!(rfind(b"a, rip=1, rip=2", b", rip="), Some(8));
        assert_eq!(rfind(b", rip=", b", rip="), Some(0));
        assert_eq!(rfind(b"rip=", b", rip="), None);
        assert_eq!(rfind(b"", b", rip="), None);
        assert_eq!(rfind(b"x", b""), None);
    }

    #[test]
    fn byte_searches_find_what_memchr_finds() {
        let text = b"mail postfix/smtpd[1103]: connect from unknown[192.0.2.22] and more, and more";
        for byte in [b' ', b'[', b']', b',', b':', b'z', b'\0'] {
            for start in 0..=text.len() {
                for end in start..=text.len() {
                    let part = &text[start..end];
                    assert_eq!(find_byte(byte, part), memchr::memchr(byte, part));
                    assert_eq!(rfind_byte(byte, part), memchr::memrchr(byte, part));
                    assert_eq!(
                        find_either(byte, b'a', part),
                        memchr::memchr2(byte, b'a', part)
                    );
                }
            }
        }
        let found: Vec<usize> = positions(b',', b",a,, b,").collect();
        assert_eq!(found, [0, 2, 3, 6]);
    }

    /// Every string of up to 7 bytes over digits and dots, and longer ones
    /// built from octet-like pieces, read as the standard library reads
    /// them (through `parse_ip`).
    #[test]
    fn ip_reads_ipv4_as_the_standard_library_does() {
        let alphabet = b"0125689.";
        let mut texts: Vec<Vec<u8>> = vec![Vec::new()];
        let mut last: Vec<Vec<u8>> = vec![Vec::new()];
        for _ in 0..7 {
            last = last
                .iter()
                .flat_map(|text| {
                    alphabet.iter().map(move |&b| {
                        let mut longer = text.clone();
                        longer.push(b);
                        longer
                    })
                })
                .collect();
            texts.extend(last.iter().cloned());
        }
        let pieces: [&[u8]; 12] = [
            b"0", b"00", b"1", b"01", b"10", b"199", b"255", b"256", b"999", b"1000", b"", b"a",
        ];
        for a in pieces {
            for b in pieces {
                for c in [&b"2"[..], b"0", b"255", b"256", b"012"] {
                    for d in pieces {
                        texts.push([a, b, c, d].join(&b'.'));
                    }
                }
            }
        }
        texts.extend(
            [
                &b"192.0.2.22"[..],
                b"1.2.3.4.",
                b".1.2.3.4",
                b"1.2.3",
                b"1..2.3",
                b"1.2.3.4 ",
                b" 1.2.3.4",
                b"[1.2.3.4]",
                b"2001:db8::1",
                b"::ffff:1.2.3.4",
                b"1.2.3.4\xff",
                b"\xff",
            ]
            .map(<[u8]>::to_vec),
        );
        for text in &texts {
            assert_eq!(
                ip_address(text),
                parse_ip(text),
                "{}",
                String::from_utf8_lossy(text)
            );
        }
    }
}
