//! Small value readers every format needs.

use std::sync::LazyLock;

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
    rfind_by(text, phrase, rfind_byte)
}

/// Where the last `phrase` starts in a `text` that mostly ends with it and
/// a few bytes more (Postfix's `, nrcpt=1`): its last byte is looked for a
/// byte at a time, as a vector search costs more to set up than such a
/// scan.
#[inline]
pub(crate) fn rfind_near_end(text: &[u8], phrase: &[u8]) -> Option<usize> {
    rfind_by(text, phrase, |byte, text| {
        text.iter().rposition(|&b| b == byte)
    })
}

/// Where the last `phrase` starts in `text`, its last byte looked for by
/// `rfind_last` (where a byte last occurs in a text).
#[inline(always)]
fn rfind_by(
    text: &[u8],
    phrase: &[u8],
    rfind_last: impl Fn(u8, &[u8]) -> Option<usize>,
) -> Option<usize> {
    let (&last, _) = phrase.split_last()?;
    let mut before = text.len();
    loop {
        let end = rfind_last(last, text.get(..before)?)?;
        let start = (end + 1).checked_sub(phrase.len());
        if let Some(start) = start.filter(|&start| text.get(start..=end) == Some(phrase)) {
            return Some(start);
        }
        before = end;
    }
}

/// Whether `code` is an RFC 3463 enhanced status code: class 2, 4 or 5,
/// then subject and detail of 1 to 3 digits (`2.0.0`, `5.7.26`).
pub(crate) fn is_enhanced_status_code(code: &[u8]) -> bool {
    leading_status_code_len(code) == Some(code.len())
}

/// The length of the enhanced status code (see [`is_enhanced_status_code`])
/// `text` starts with, if any; other text may follow it (`2.0.0 250 OK`,
/// or `2.0.0x`, which the caller judges).
///
/// Read as patterns and digit runs rather than by splitting at dots: every
/// delivery line asks, and the splitting iterator cost about 120
/// instructions a code.
pub(crate) fn leading_status_code_len(text: &[u8]) -> Option<usize> {
    let [b'2' | b'4' | b'5', b'.', rest @ ..] = text else {
        return None;
    };
    let subject_len = leading_digits(rest);
    let Some([b'.', detail @ ..]) = rest.get(subject_len..) else {
        return None;
    };
    let detail_len = leading_digits(detail);
    ((1..=3).contains(&subject_len) && (1..=3).contains(&detail_len))
        .then_some(2 + subject_len + 1 + detail_len)
}

/// How many ASCII digits `text` starts with.
fn leading_digits(text: &[u8]) -> usize {
    text.iter().take_while(|b| b.is_ascii_digit()).count()
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
    fn status_codes_are_read_as_split_at_dots() {
        // The definition, by splitting at dots, against every text of up to
        // 7 bytes made of digits, dots and a letter.
        fn by_parts(code: &[u8]) -> bool {
            let is_number =
                |part: &[u8]| (1..=3).contains(&part.len()) && part.iter().all(u8::is_ascii_digit);
            let mut parts = code.split(|&b| b == b'.');
            matches!(parts.next(), Some([b'2' | b'4' | b'5']))
                && parts.next().is_some_and(is_number)
                && parts.next().is_some_and(is_number)
                && parts.next().is_none()
        }
        const ALPHABET: [u8; 5] = [b'5', b'1', b'0', b'.', b'a'];
        let mut codes: Vec<Vec<u8>> = vec![Vec::new()];
        let mut valid = 0;
        for _ in 0..7 {
            codes = codes
                .iter()
                .flat_map(|code| {
                    ALPHABET
                        .iter()
                        .map(move |&b| [code.as_slice(), &[b]].concat())
                })
                .collect();
            for code in &codes {
                assert_eq!(is_enhanced_status_code(code), by_parts(code), "{code:?}");
                valid += usize::from(by_parts(code));
            }
        }
        assert!(valid > 0, "the alphabet makes valid codes too");
    }

    #[test]
    fn the_last_phrase_near_the_end_is_the_last_phrase() {
        let texts: [&[u8]; 6] = [
            b"",
            b"from=<a@b>, size=10, nrcpt=1",
            b"from=<, nrcpt=9@b>, size=10, nrcpt=12",
            b"nrcpt=",
            b"=, nrcpt, nrcpt==",
            b"from=<a@b>, size=10",
        ];
        for text in texts {
            for phrase in [&b", nrcpt="[..], b", size=", b"="] {
                assert_eq!(
                    rfind_near_end(text, phrase),
                    rfind(text, phrase),
                    "{text:?} {phrase:?}"
                );
            }
        }
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
}
