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

use crate::values::find_byte;

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
    let mut missing = N;
    // Kerio writes the fields in the order `fields` lists them: the one
    // after the last found is tried first.
    let mut likely_next = 0;
    let mut next_field = key_at(text, 0, None);
    while let Some((key, value_start)) = next_field {
        let wanted = fields
            .get(likely_next)
            .filter(|field| same_key(field.key, key))
            .map(|_| likely_next)
            .or_else(|| fields.iter().position(|field| same_key(field.key, key)));
        let (extent, expected) = match wanted {
            Some(i) => (
                fields.get(i).map_or(Extent::AnyKey, |field| field.extent),
                fields.get(i + 1).map(|field| field.key),
            ),
            None => (Extent::AnyKey, None),
        };
        let boundary = next_boundary(text, value_start, extent, expected);
        if let Some(i) = wanted {
            likely_next = i + 1;
            if let Some(slot @ None) = values.get_mut(i) {
                let value_end = boundary.map_or(text.len(), |(comma, _)| comma);
                *slot = Some(
                    text.get(value_start..value_end)
                        .unwrap_or_default()
                        .trim_ascii(),
                );
                missing -= 1;
                if missing == 0 {
                    break;
                }
            }
        }
        next_field = boundary.map(|(_, next)| next);
    }
    values
}

/// A field's key and where its value starts (after the key's `: `).
type KeyAt<'a> = (&'a [u8], usize);

/// The first boundary that ends the value starting at `value_start` in
/// `text`, as `extent` reads it: the comma of its `, Key: `, with that key
/// and where its value starts. `expected` is the key Kerio writes next:
/// tried first at each comma (see [`key_at`]).
fn next_boundary<'a>(
    text: &'a [u8],
    value_start: usize,
    extent: Extent,
    expected: Option<&'static [u8]>,
) -> Option<(usize, KeyAt<'a>)> {
    let mut from = match extent {
        Extent::Address => {
            let value = text.get(value_start..)?;
            value_start + closing_angle(value).map_or(0, |close| close + 1)
        }
        Extent::AnyKey | Extent::OnlyKeys(_) => value_start,
    };
    loop {
        let comma = from + find_byte(b',', text.get(from..)?)?;
        from = comma + 1;
        if text.get(from) != Some(&b' ') {
            continue;
        }
        let Some((key, next_value)) = key_at(text, comma + 2, expected) else {
            continue;
        };
        let ends_value = match extent {
            Extent::AnyKey | Extent::Address => true,
            Extent::OnlyKeys(keys) => keys.iter().any(|k| same_key(k, key)),
        };
        if ends_value {
            return Some((comma, (key, next_value)));
        }
    }
}

/// The key at `start` in `text` and where its value starts, if `text`
/// reads `[A-Za-z][A-Za-z-]*: ` there. Most boundaries start the key Kerio
/// writes next: `expected` is compared first, which spares reading the
/// key's shape byte by byte (the same answer: a key followed by `: ` is the
/// whole key there).
fn key_at<'a>(text: &'a [u8], start: usize, expected: Option<&'static [u8]>) -> Option<KeyAt<'a>> {
    let rest = text.get(start..)?;
    if let Some(key) = expected {
        let after_key = start + key.len();
        let shows = rest.get(..key.len()).is_some_and(|k| same_key(k, key))
            && text.get(after_key..after_key + 2) == Some(b": ");
        if shows {
            return Some((key, after_key + 2));
        }
    }
    if !rest.first()?.is_ascii_alphabetic() {
        return None;
    }
    let key_len = rest
        .iter()
        .position(|&b| !(b.is_ascii_alphabetic() || b == b'-'))
        .unwrap_or(rest.len());
    let after_key = start + key_len;
    (text.get(after_key..after_key + 2) == Some(b": "))
        .then(|| (rest.get(..key_len).unwrap_or_default(), after_key + 2))
}

/// Whether two keys are equal. Keys are a few bytes long and compared
/// several times a field: two overlapping words from each end beat a call
/// to `memcmp` (which slice equality makes) and a byte loop. The same
/// `'static` key (found by [`key_at`], then looked up among the fields) is
/// equal at once.
fn same_key(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    if a.as_ptr() == b.as_ptr() {
        return true;
    }
    match (a.first_chunk::<4>(), a.last_chunk::<4>()) {
        (Some(a_start), Some(a_end)) if a.len() <= 8 => {
            b.first_chunk::<4>() == Some(a_start) && b.last_chunk::<4>() == Some(a_end)
        }
        _ => match (a.first_chunk::<8>(), a.last_chunk::<8>()) {
            (Some(a_start), Some(a_end)) if a.len() <= 16 => {
                b.first_chunk::<8>() == Some(a_start) && b.last_chunk::<8>() == Some(a_end)
            }
            _ => a == b,
        },
    }
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
    fn keys_are_compared_whole_at_every_length() {
        let key = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ";
        for len in 0..=key.len() {
            let a = key[..len].to_vec();
            assert!(same_key(&a, &key[..len]), "{len}");
            for differing in 0..len {
                let mut b = a.clone();
                b[differing] = b'-';
                assert!(!same_key(&a, &b), "{len} {differing}");
            }
            assert!(!same_key(&a, &key[..len.saturating_sub(1)]) || len == 0);
        }
    }

    #[test]
    fn text_not_starting_with_a_key_has_no_fields() {
        assert_eq!(scan_str(" Queue-ID: 1"), [None; 5]);
        assert_eq!(scan_str("Queue-ID:1"), [None; 5]);
        assert_eq!(scan_str(""), [None; 5]);
    }
}
