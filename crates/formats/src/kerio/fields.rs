//! The `Key: value, Key: value` lists of Kerio `mail.log` lines.
//!
//! Kerio joins fields with `, ` and escapes nothing, yet several values come
//! from outside: the sender chooses the addresses, the Subject and the
//! Message-ID, a remote server the delivery Status. Any of them may hold
//! `, Key: `. A field boundary is therefore a `, ` followed by something
//! shaped like a key (`[A-Za-z][A-Za-z-]*: `), and each field says which of
//! those boundaries may end its value ([`Extent`]). With "the first occurrence
//! of a key wins", this keeps text a sender wrote from posing as the fields
//! the detectors trust (`User`, `Sender-Host`).

use crate::values::{find_byte, positions};

/// The longest local part RFC 5321 allows (§4.5.3.1.1).
const MAX_LOCAL_PART: usize = 64;

/// Where a field's value may end.
#[derive(Clone, Copy, Debug)]
pub(super) enum Extent {
    /// At the next `, Key: ` of any key: for values the server writes itself.
    AnyKey,
    /// An `<address>` the sender chose. A quoted local part
    /// (`<"a>, User: ceo"@example.com>`, valid RFC 5321) may hold `>` and
    /// `, Key: `, so boundaries before the address's closing `>` do not count;
    /// after it, as [`Extent::AnyKey`]. See [`closing_angle`].
    Address,
    /// Free text that only these keys, the ones Kerio writes after it, may
    /// end (else the line's end): a forged `, User: ` inside it stays text.
    OnlyKeys(&'static [&'static [u8]]),
}

/// A key a line parser wants, and how far its value reaches.
#[derive(Clone, Copy, Debug)]
pub(super) struct Field {
    key: &'static [u8],
    extent: Extent,
}

impl Field {
    /// A value the server writes itself: it ends at the next key.
    pub(super) const fn plain(key: &'static [u8]) -> Self {
        Field {
            key,
            extent: Extent::AnyKey,
        }
    }

    /// An `<address>` the sender chose (see [`Extent::Address`]).
    pub(super) const fn address(key: &'static [u8]) -> Self {
        Field {
            key,
            extent: Extent::Address,
        }
    }

    /// Free text that only the keys in `ended_by` may end (see [`Extent::OnlyKeys`]).
    pub(super) const fn free_text(key: &'static [u8], ended_by: &'static [&'static [u8]]) -> Self {
        Field {
            key,
            extent: Extent::OnlyKeys(ended_by),
        }
    }
}

/// The values of `fields` in `text`, in the order of `fields`, without
/// surrounding ASCII whitespace; `None` for a key the text does not have.
///
/// `text` must start with its first key. For each key only the first
/// occurrence counts. Keys not in `fields` still start a field (read as
/// [`Extent::AnyKey`]) whose value is skipped. Runs in one pass over `text`,
/// which ends once every key has its value (later fields change none).
pub(super) fn scan<'a, const N: usize>(
    text: &'a [u8],
    fields: &[Field; N],
) -> [Option<&'a [u8]>; N] {
    let mut values = [None; N];
    let mut found = 0;
    // Kerio writes the fields in the order `fields` lists them: the one
    // after the last found is tried first.
    let mut likely_next = 0;
    let mut next_field = leading_key(text);
    while let Some((key, value_and_rest)) = next_field {
        let wanted = fields
            .get(likely_next)
            .filter(|field| same_key(field.key, key))
            .map(|_| likely_next)
            .or_else(|| fields.iter().position(|field| same_key(field.key, key)));
        let extent = wanted
            .and_then(|i| fields.get(i))
            .map_or(Extent::AnyKey, |field| field.extent);
        let (value, following) = extent.split(value_and_rest);
        if let Some(i) = wanted {
            likely_next = i + 1;
            if let Some(slot @ None) = values.get_mut(i) {
                *slot = Some(value.trim_ascii());
                found += 1;
                if found == N {
                    break;
                }
            }
        }
        next_field = following;
    }
    values
}

/// A field's key and the text after its `: ` (its value and what follows).
type KeyAndRest<'a> = (&'a [u8], &'a [u8]);

impl Extent {
    /// Splits `text` (a value and what follows it) into the value and the
    /// next field, if any.
    fn split(self, text: &[u8]) -> (&[u8], Option<KeyAndRest<'_>>) {
        match self {
            Extent::AnyKey => split_at_boundary(text, 0, |_| true),
            Extent::Address => {
                let after_address = closing_angle(text).map_or(0, |close| close + 1);
                split_at_boundary(text, after_address, |_| true)
            }
            Extent::OnlyKeys(keys) => {
                split_at_boundary(text, 0, |key| keys.iter().any(|k| same_key(k, key)))
            }
        }
    }
}

/// Splits `text` at the first `, Key: ` at or after `from` whose key
/// `ends_value` accepts: `(value, Some(next field))`, or `(text, None)`.
fn split_at_boundary<'a>(
    text: &'a [u8],
    from: usize,
    ends_value: impl Fn(&[u8]) -> bool,
) -> (&'a [u8], Option<KeyAndRest<'a>>) {
    let searched = text.get(from..).unwrap_or_default();
    for comma in positions(b',', searched) {
        let Some((value, separator_and_rest)) = text.split_at_checked(from + comma) else {
            break;
        };
        let next_field = separator_and_rest.strip_prefix(b", ").and_then(leading_key);
        if let Some((key, rest)) = next_field.filter(|(key, _)| ends_value(key)) {
            return (value, Some((key, rest)));
        }
    }
    (text, None)
}

/// Whether two keys are equal. Keys are a few bytes long: an inlined loop
/// beats a call to `memcmp`, which slice equality makes, at several
/// comparisons per field.
fn same_key(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x == y)
}

/// The key at the start of `text` and what follows its `: `, if `text`
/// starts with `[A-Za-z][A-Za-z-]*: `.
fn leading_key(text: &[u8]) -> Option<KeyAndRest<'_>> {
    if !text.first()?.is_ascii_alphabetic() {
        return None;
    }
    let key_len = text
        .iter()
        .position(|&b| !(b.is_ascii_alphabetic() || b == b'-'))
        .unwrap_or(text.len());
    let (key, rest) = text.split_at_checked(key_len)?;
    Some((key, rest.strip_prefix(b": ")?))
}

/// The index of the `>` closing the `<address>` at the start of `text`.
///
/// A valid quoted local part (`<"…"@domain>`: the quote right after `<`,
/// closed within the 64 bytes a local part may have, and followed by `@`) is
/// skipped, since
/// it may hold `>`; the first `>` after it closes. Anything else closes at its
/// first `>`, so a stray quote cannot make one address swallow the fields
/// after it (`User`, `Sender-Host`).
///
/// The log is ambiguous in one case this cannot settle: an address left
/// unterminated (`<"x@evil.example>`, invalid, so only if Kerio's SMTP server
/// accepted it) followed, within 64 bytes, by sender text that reads `"@…>`
/// reads as one quoted local part.
fn closing_angle(text: &[u8]) -> Option<usize> {
    if text.first() != Some(&b'<') {
        return None;
    }
    let search_from = quoted_local_part_end(text).unwrap_or(0);
    let close = find_byte(b'>', text.get(search_from..)?)?;
    Some(search_from + close)
}

/// For `text` starting with `<"local part"@`, the index of that `@`.
fn quoted_local_part_end(text: &[u8]) -> Option<usize> {
    const OPENING: &[u8] = b"<\"";
    let quoted = text.strip_prefix(OPENING)?;
    let mut escaped = false;
    for (i, &b) in quoted.iter().enumerate().take(MAX_LOCAL_PART) {
        match b {
            _ if escaped => escaped = false,
            b'\\' => escaped = true,
            b'"' => {
                let at_sign = i + 1;
                return (quoted.get(at_sign) == Some(&b'@')).then_some(OPENING.len() + at_sign);
            }
            _ => {}
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    const FIELDS: [Field; 5] = [
        Field::plain(b"Queue-ID"),
        Field::address(b"From"),
        Field::plain(b"User"),
        Field::free_text(b"Subject", &[b"Msg-Id"]),
        Field::free_text(b"Msg-Id", &[b"Subject"]),
    ];

    fn scan_str(text: &str) -> [Option<&str>; 5] {
        scan(text.as_bytes(), &FIELDS)
            .map(|value| value.map(|v| std::str::from_utf8(v).expect("test input is UTF-8")))
    }

    #[test]
    fn reads_known_keys_in_any_order_and_skips_unknown_ones() {
        assert_eq!(
            scan_str("User: u@example.com, X-Note: a, b, Queue-ID: 1-2, From: <f@example.com>"),
            [
                Some("1-2"),
                Some("<f@example.com>"),
                Some("u@example.com"),
                None,
                None
            ]
        );
    }

    #[test]
    fn empty_values_and_trailing_blanks() {
        assert_eq!(
            scan_str("Queue-ID: 2.0.0 , From: , User: "),
            [Some("2.0.0"), Some(""), Some(""), None, None]
        );
    }

    #[test]
    fn a_comma_without_a_key_after_it_stays_in_the_value() {
        assert_eq!(
            scan_str("User: a, b,c, 2d: e, -x: f, Queue-ID: 9"),
            [Some("9"), None, Some("a, b,c, 2d: e, -x: f"), None, None]
        );
    }

    #[test]
    fn first_occurrence_wins() {
        assert_eq!(
            scan_str("User: real, Queue-ID: 1, User: forged"),
            [Some("1"), None, Some("real"), None, None]
        );
    }

    #[test]
    fn free_text_ends_only_at_its_partner_key() {
        assert_eq!(
            scan_str("Queue-ID: 1, Subject: hi, User: ceo@example.com, ok: yes, Msg-Id: <m@x>"),
            [
                Some("1"),
                None,
                None,
                Some("hi, User: ceo@example.com, ok: yes"),
                Some("<m@x>")
            ]
        );
        assert_eq!(
            scan_str("Queue-ID: 1, Msg-Id: <a>, User: ceo, Subject: s, User: x"),
            [
                Some("1"),
                None,
                None,
                Some("s, User: x"),
                Some("<a>, User: ceo")
            ]
        );
    }

    #[test]
    fn quoted_local_part_cannot_inject_fields() {
        assert_eq!(
            scan_str(r#"From: <"a>, User: ceo@example.com, \"x"@evil.example>, User: real"#),
            [
                None,
                Some(r#"<"a>, User: ceo@example.com, \"x"@evil.example>"#),
                Some("real"),
                None,
                None
            ]
        );
    }

    #[test]
    fn invalid_quotes_close_at_the_first_angle() {
        // A quote inside the local part, one not followed by `@`, and one
        // left open: none may swallow the `User` after the address.
        for from in [r#"<x"@evil.example>"#, r#"<"x">"#, r#"<"x@evil.example>"#] {
            let line = format!(r#"From: {from}, User: real, Subject: "hi""#);
            assert_eq!(scan_str(&line)[1..3], [Some(from), Some("real")], "{line}");
        }
        // Longer than any local part may be: not a quoted local part.
        let local_part = "a".repeat(MAX_LOCAL_PART);
        let line = format!(r#"From: <"{local_part}>, To: x"@y>"#);
        assert_eq!(
            scan_str(&line)[1],
            Some(format!(r#"<"{local_part}>"#).as_str())
        );
    }

    #[test]
    fn text_not_starting_with_a_key_has_no_fields() {
        assert_eq!(scan_str(" Queue-ID: 1"), [None; 5]);
        assert_eq!(scan_str("Queue-ID:1"), [None; 5]);
        assert_eq!(scan_str(""), [None; 5]);
    }
}
