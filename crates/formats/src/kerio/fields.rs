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
    scan_wanted::<N, N>(text, fields)
}

/// [`scan`] for the values of the first `W` of `fields` only; the
/// others are `None`. The fields after the wanted ones must be trailing
/// free text ([`Extent::OnlyKeys`]) that only one another's keys end, as
/// Kerio's Subject and Msg-Id: once one of them starts, every boundary
/// after it is inside it or starts another of them, so no wanted field can
/// start any more and the scan stops there, sparing the search for the
/// ends of the longest values of the line (the tests check that the wanted
/// values are those of the whole scan).
pub(super) fn scan_wanted<'a, const N: usize, const W: usize>(
    text: &'a [u8],
    fields: &[Field; N],
) -> [Option<&'a [u8]>; N] {
    let mut values = [None; N];
    let first_value = fields
        .first()
        .and_then(|first| key_shows(text, 0, first.key));
    let resume = match first_value {
        Some(value_start) => in_written_order::<N, W>(text, fields, value_start, &mut values),
        None => Some(Resume {
            likely_next: 0,
            next_field: key_at(text, 0, None),
        }),
    };
    if let Some(resume) = resume {
        in_any_order::<N, W>(text, fields, resume, &mut values);
    }
    values
}

/// Reads a line laid out exactly as Kerio writes it, field after field:
/// each value ends where the next field's `, Key: ` starts, at the value's
/// first comma (after an address's closing `>`). The keys are literals at
/// the call site, so each boundary is one comparison of known length, and
/// nothing is looked up: a third of the instructions of [`scan`] on a
/// `Sent:` line.
///
/// Any departure from the layout (a comma inside a value, a key left out
/// or another in its place, a line cut short) gives `None` and the caller
/// reads the line by the general rule ([`scan`]), which gives the same
/// values whenever this gives any: the first comma of a value ending it
/// leaves no earlier boundary that [`scan`] could take, and free text ends
/// at the same keys. The tests check it on crafted and random lines.
pub(super) struct AsWritten<'a> {
    text: &'a [u8],
    /// Where the value being read starts.
    value_start: usize,
}

impl<'a> AsWritten<'a> {
    /// A reader of `text`, which must start with `first` (`Key: `).
    #[inline(always)]
    pub(super) fn new(text: &'a [u8], first: &[u8]) -> Option<Self> {
        text.starts_with(first).then_some(AsWritten {
            text,
            value_start: first.len(),
        })
    }

    /// A value the server writes itself, whose first comma starts `next`
    /// (`, Key: `).
    #[inline(always)]
    pub(super) fn plain(&mut self, next: &[u8]) -> Option<&'a [u8]> {
        let comma = comma_from(self.text, self.value_start)?;
        self.end_at(comma, next)
    }

    /// [`Self::plain`] followed by `next` or, when a field is left out (a
    /// `User` on inbound mail), by `after_next`: the value and whether
    /// `next` came.
    #[inline(always)]
    pub(super) fn plain_then(
        &mut self,
        next: &[u8],
        after_next: &[u8],
    ) -> Option<(&'a [u8], bool)> {
        let comma = comma_from(self.text, self.value_start)?;
        match self.end_at(comma, next) {
            Some(value) => Some((value, true)),
            None => self.end_at(comma, after_next).map(|value| (value, false)),
        }
    }

    /// An `<address>` (see [`closing_angle`]) whose `>` `next` follows.
    #[inline(always)]
    pub(super) fn address(&mut self, next: &[u8]) -> Option<&'a [u8]> {
        let value = self.text.get(self.value_start..)?;
        let after_close = self.value_start + closing_angle(value)? + 1;
        self.end_at(after_close, next)
    }

    /// Free text that `next` ends, read past commas that start no key;
    /// `None` if `other_end`, the other key that may end it, comes first.
    #[inline(always)]
    pub(super) fn free_text(&mut self, next: &[u8], other_end: &[u8]) -> Option<&'a [u8]> {
        let mut from = self.value_start;
        loop {
            let comma = comma_from(self.text, from)?;
            if let Some(value) = self.end_at(comma, next) {
                return Some(value);
            }
            if self.text.get(comma..comma + other_end.len()) == Some(other_end) {
                return None;
            }
            from = comma + 1;
        }
    }

    /// The last value wanted: to the end of the text, or to `next`.
    #[inline(always)]
    pub(super) fn last(mut self, next: &[u8]) -> Option<&'a [u8]> {
        match comma_from(self.text, self.value_start) {
            Some(comma) => self.end_at(comma, next),
            None => Some(value_in(self.text, self.value_start, self.text.len())),
        }
    }

    /// The value ending at `end` if `next` starts there; the reader then
    /// moves to the value after it.
    #[inline(always)]
    fn end_at(&mut self, end: usize, next: &[u8]) -> Option<&'a [u8]> {
        let after = end + next.len();
        if self.text.get(end..after)? != next {
            return None;
        }
        let value = value_in(self.text, self.value_start, end);
        self.value_start = after;
        Some(value)
    }
}

/// Where [`in_any_order`] takes over from [`in_written_order`].
struct Resume<'a> {
    /// The field tried first for the next key.
    likely_next: usize,
    /// The next field's key and where its value starts, if any.
    next_field: Option<KeyAt<'a>>,
}

/// Reads `fields` into `values` while `text` holds them as Kerio writes
/// them: in the order of `fields`, one left out at times (`User` on inbound
/// mail), each value ended by the first boundary [`in_any_order`] would
/// take, the key after it one of the next two fields'. The first field's
/// value starts at `value_start`. `None` when nothing is left to read; else
/// where [`in_any_order`] goes on: the field being read, from its value.
///
/// The same answer as [`in_any_order`] from the start (the tests compare
/// them on crafted and random lines), for fewer instructions: at each
/// boundary it compares the two keys Kerio may write next instead of
/// reading the key's shape and looking it up, and it carries less state.
/// Nearly every field of a real log is read here.
fn in_written_order<'a, const N: usize, const W: usize>(
    text: &'a [u8],
    fields: &[Field; N],
    mut value_start: usize,
    values: &mut [Option<&'a [u8]>; N],
) -> Option<Resume<'a>> {
    let mut index = 0;
    let mut skipped_any = false;
    while let (Some(field), Some(slot)) = (fields.get(index), values.get_mut(index)) {
        if index >= W {
            // Trailing free text: no wanted field can follow.
            return None;
        }
        let resume = Resume {
            likely_next: index,
            next_field: Some((field.key, value_start)),
        };
        let Some(following) = fields.get(index + 1) else {
            // The last field: any key ends it.
            let boundary = next_boundary(text, value_start, field.extent, None);
            let value_end = boundary.map_or(text.len(), |(comma, _)| comma);
            *slot = Some(value_in(text, value_start, value_end));
            return skipped_any.then_some(Resume {
                likely_next: N,
                next_field: boundary.map(|(_, next)| next),
            });
        };
        let after_next = fields.get(index + 2);
        let mut from = value_search_start(text, value_start, field.extent);
        let (comma, next_index, next_value_start) = loop {
            let Some(comma) = comma_from(text, from) else {
                // The text ends this value: no field follows.
                *slot = Some(value_in(text, value_start, text.len()));
                return None;
            };
            from = comma + 1;
            if text.get(from) != Some(&b' ') {
                continue;
            }
            let key_start = comma + 2;
            if let Some(start) = key_shows(text, key_start, following.key) {
                break (comma, index + 1, start);
            }
            if let Some(start) = after_next.and_then(|field| key_shows(text, key_start, field.key))
            {
                break (comma, index + 2, start);
            }
            match field.extent {
                // Not one of the keys that may end this text: part of it.
                Extent::OnlyKeys(keys)
                    if !keys
                        .iter()
                        .any(|key| key_shows(text, key_start, key).is_some()) => {}
                // Another key, or text [`in_any_order`] reads apart.
                _ => return Some(resume),
            }
        };
        let next_key = fields.get(next_index).map_or(&b""[..], |field| field.key);
        let ends_value = match field.extent {
            Extent::AnyKey | Extent::Address => true,
            Extent::OnlyKeys(keys) => keys.iter().any(|key| same_key(key, next_key)),
        };
        if !ends_value {
            return Some(resume);
        }
        *slot = Some(value_in(text, value_start, comma));
        skipped_any |= next_index > index + 1;
        index = next_index;
        value_start = next_value_start;
    }
    None
}

/// Reads the fields from `resume` on into `values`, whatever their order,
/// unknown keys included (the general rule, see [`scan`]).
fn in_any_order<'a, const N: usize, const W: usize>(
    text: &'a [u8],
    fields: &[Field; N],
    resume: Resume<'a>,
    values: &mut [Option<&'a [u8]>; N],
) {
    let wanted_values = values.get(..W).unwrap_or_default();
    let mut missing = wanted_values.iter().filter(|value| value.is_none()).count();
    if missing == 0 {
        return;
    }
    // Kerio writes the fields in the order `fields` lists them: the one
    // after the last found is tried first.
    let mut likely_next = resume.likely_next;
    let mut next_field = resume.next_field;
    while let Some((key, value_start)) = next_field {
        let listed = fields
            .get(likely_next)
            .filter(|field| same_key(field.key, key))
            .map(|_| likely_next)
            .or_else(|| fields.iter().position(|field| same_key(field.key, key)));
        if listed.is_some_and(|i| i >= W) {
            // Trailing free text: no wanted field can follow.
            return;
        }
        let (extent, expected) = match listed {
            Some(i) => (
                fields.get(i).map_or(Extent::AnyKey, |field| field.extent),
                fields.get(i + 1).map(|field| field.key),
            ),
            None => (Extent::AnyKey, None),
        };
        let boundary = next_boundary(text, value_start, extent, expected);
        if let Some(i) = listed {
            likely_next = i + 1;
            if let Some(slot @ None) = values.get_mut(i) {
                let value_end = boundary.map_or(text.len(), |(comma, _)| comma);
                *slot = Some(value_in(text, value_start, value_end));
                missing -= 1;
                if missing == 0 {
                    break;
                }
            }
        }
        next_field = boundary.map(|(_, next)| next);
    }
}

/// The value between `start` and `end` without surrounding ASCII whitespace.
#[inline(always)] // A call for each value of a line: 5 % of a scan's instructions.
fn value_in(text: &[u8], start: usize, end: usize) -> &[u8] {
    let value = text.get(start..end).unwrap_or_default();
    // Kerio's values seldom start or end with a blank: two looks, not trim's loops.
    match (value.first(), value.last()) {
        (Some(first), Some(last))
            if !first.is_ascii_whitespace() && !last.is_ascii_whitespace() =>
        {
            value
        }
        _ => value.trim_ascii(),
    }
}

/// Where `key` followed by `: ` shows at `at` in `text`: where its value starts.
fn key_shows(text: &[u8], at: usize, key: &[u8]) -> Option<usize> {
    let after_key = at + key.len();
    let shows = text.get(at..after_key).is_some_and(|k| same_key(k, key))
        && text.get(after_key..after_key + 2) == Some(b": ");
    shows.then_some(after_key + 2)
}

/// The first comma at or after `from`.
#[inline(always)]
fn comma_from(text: &[u8], from: usize) -> Option<usize> {
    // An address's `>` is mostly right before its boundary's comma.
    if text.get(from) == Some(&b',') {
        return Some(from);
    }
    Some(from + find_byte(b',', text.get(from..)?)?)
}

/// Where the boundary of a value starting at `value_start` may begin: after
/// an address's closing `>` (see [`Extent::Address`]).
#[inline(always)] // With the next two: as calls, 5 % more instructions a line.
fn value_search_start(text: &[u8], value_start: usize, extent: Extent) -> usize {
    match extent {
        Extent::Address => {
            let value = text.get(value_start..).unwrap_or_default();
            value_start + closing_angle(value).map_or(0, |close| close + 1)
        }
        Extent::AnyKey | Extent::OnlyKeys(_) => value_start,
    }
}

/// A field's key and where its value starts (after the key's `: `).
type KeyAt<'a> = (&'a [u8], usize);

/// The first boundary that ends the value starting at `value_start` in
/// `text`, as `extent` reads it: the comma of its `, Key: `, with that key
/// and where its value starts. `expected` is the key Kerio writes next:
/// tried first at each comma (see [`key_at`]).
#[inline(always)]
fn next_boundary<'a>(
    text: &'a [u8],
    value_start: usize,
    extent: Extent,
    expected: Option<&'static [u8]>,
) -> Option<(usize, KeyAt<'a>)> {
    let mut from = value_search_start(text, value_start, extent);
    loop {
        let comma = comma_from(text, from)?;
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
#[inline(always)]
fn key_at<'a>(text: &'a [u8], start: usize, expected: Option<&'static [u8]>) -> Option<KeyAt<'a>> {
    let rest = text.get(start..)?;
    if let Some(value_start) = expected.and_then(|key| key_shows(text, start, key)) {
        return expected.map(|key| (key, value_start));
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

    /// The fields read by the general rule alone ([`in_any_order`] from the
    /// start), which [`scan`]'s shortcut ([`in_written_order`]) must match.
    fn by_the_general_rule<'a, const N: usize>(
        text: &'a [u8],
        fields: &[Field; N],
    ) -> [Option<&'a [u8]>; N] {
        let mut values = [None; N];
        let resume = Resume {
            likely_next: 0,
            next_field: key_at(text, 0, None),
        };
        in_any_order::<N, N>(text, fields, resume, &mut values);
        values
    }

    /// Lines as Kerio writes them, and as senders and remote servers bend them.
    const CRAFTED: [&str; 12] = [
        "Queue-ID: 6ae7c489-00100000, Service: SMTP, From: <a@example.com>, To: <b@example.com>, Size: 79894, Sender-Host: 192.0.2.22, SSL: yes, Subject: Your invoice, Msg-Id: <1@example.com>",
        "Queue-ID: 6ae7c48b-00100001, Service: Kerio Connect Client, From: <a@example.com>, To: <b@example.com>, Size: 123511, Sender-Host: 0.0.0.0, User: a@example.com, SSL: yes, Subject: Re: a, b: c, User: ceo, Msg-Id: <x@example.com>",
        "Queue-ID: 438dd9ea-00000000, Service: SMTP, From: <j@example.com>, To: <j@example.com>, Size: 1229, User: j@example.com, Sender-Host: 195.39.55.2, SSL: yes",
        "Queue-ID: 438db7cc-00000000, Service: DSN, From: , To: , Size: 1650, Report: failed",
        "Queue-ID: 1, From: <\"a>, User: ceo, \"@evil.example>, To: <b>, Size: 9, Sender-Host: 10.0.0.1, User: real",
        "Queue-ID: 1, Service: SMTP, From: <x\"@evil.example>, User: real, Subject: \"hi\"",
        "Queue-ID: 1, Service: SMTP, Msg-Id: <a>, User: ceo, Subject: hello, world, Msg-Id: <b>",
        "Queue-ID: 1, Queue-ID: 2, Service: , Service: SMTP,, To: <t>,From: <f>, To: <u>",
        "Queue-ID: 65ee8b47-00000009, Recipient: <b@example.vn>, Result: delivered, Status: 2.0.0 , Remote-Host: 127.0.0.1, Msg-Id: <x@example.vn>",
        "Queue-ID: 1, Recipient: <d>, Result: deferred, Status: 4.4.1 421 <mx>: busy, Result: delivered, try: later, Remote-Host: mx, Msg-Id: <m@x>",
        "Queue-ID: 1, Recipient: <c>, Result: failed, Status: 5.1.1 550 <c>: rejected, Msg-Id: <m>, Remote-Host: r",
        "Queue-ID: 1, Recipient: <c>, Status: x, Result: failed, Remote-Host: r, Result: delivered",
    ];

    /// Pieces random lines are made of: every key the parsers want, keys
    /// they skip, and the bytes that start, end or hide a boundary.
    const PIECES: [&str; 30] = [
        "Queue-ID: ",
        "Service: ",
        "From: ",
        "To: ",
        "Size: ",
        "Sender-Host: ",
        "User: ",
        "SSL: ",
        "Subject: ",
        "Msg-Id: ",
        "Recipient: ",
        "Result: ",
        "Status: ",
        "Remote-Host: ",
        "X-Note: ",
        "2d: ",
        ", ",
        ", ",
        ",",
        " ",
        ": ",
        "<",
        ">",
        "\"",
        "\\",
        "@",
        "a",
        "example.com",
        "<\"",
        "\"@",
    ];

    /// A small deterministic generator (xorshift64*): the same lines at
    /// every run, no dependency.
    struct Random(u64);

    impl Random {
        fn below(&mut self, n: usize) -> usize {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            let mixed = self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 32;
            usize::try_from(mixed).expect("32 bits fit") % n
        }

        /// `line` with `pieces` of [`PIECES`] spliced in at random places.
        fn spliced(&mut self, line: &str, pieces: usize) -> Vec<u8> {
            let mut line = line.as_bytes().to_vec();
            for _ in 0..pieces {
                let piece = PIECES[self.below(PIECES.len())].as_bytes();
                let at = self.below(line.len() + 1);
                line.splice(at..at, piece.iter().copied());
            }
            line
        }
    }

    /// Asserts that `scan` reads `line` as the general rule does, for the
    /// fields of both Kerio lines and of these tests.
    fn assert_scans_as_the_general_rule(line: &[u8]) {
        let recv = &crate::kerio::mail::RECV_FIELDS;
        let sent = &crate::kerio::mail::SENT_FIELDS;
        let shown = String::from_utf8_lossy(line);
        let whole = scan(line, recv);
        assert_eq!(whole, by_the_general_rule(line, recv), "{shown}");
        // Without the trailing free text, the other fields read the same.
        const WANTED: usize = crate::kerio::mail::RECV_DETECTED;
        let detected = scan_wanted::<_, WANTED>(line, recv);
        assert_eq!(detected[..WANTED], whole[..WANTED], "{shown}");
        assert!(detected[WANTED..].iter().all(Option::is_none), "{shown}");
        assert_eq!(scan(line, sent), by_the_general_rule(line, sent), "{shown}");
        // Read as written, when the layout is Kerio's: the same values.
        if let Some(as_written) = crate::kerio::mail::recv_as_written(line) {
            assert_eq!(as_written, detected, "{shown}");
        }
        if let Some(as_written) = crate::kerio::mail::sent_as_written(line) {
            assert_eq!(as_written, scan(line, sent), "{shown}");
        }
        assert_eq!(
            scan(line, &FIELDS),
            by_the_general_rule(line, &FIELDS),
            "{shown}"
        );
    }

    #[test]
    fn the_shortcut_reads_crafted_lines_as_the_general_rule() {
        for line in CRAFTED {
            assert_scans_as_the_general_rule(line.as_bytes());
            // Every prefix: lines cut anywhere, values ending with the text.
            for end in 0..line.len() {
                assert_scans_as_the_general_rule(&line.as_bytes()[..end]);
            }
        }
    }

    #[test]
    fn kerio_layouts_are_read_as_written() {
        use crate::kerio::mail::{recv_as_written, sent_as_written};
        // Inbound mail (no User), submitted mail (a subject posing as
        // fields after the detected ones), a delivery.
        for recv in [CRAFTED[0], CRAFTED[1]] {
            assert!(recv_as_written(recv.as_bytes()).is_some(), "{recv}");
        }
        assert!(sent_as_written(CRAFTED[8].as_bytes()).is_some());
        // Kerio 6.7's order, a field left empty, a status ended by Msg-Id:
        // read by the general rule.
        for other in [CRAFTED[2], CRAFTED[3], CRAFTED[10]] {
            assert!(recv_as_written(other.as_bytes()).is_none(), "{other}");
            assert!(sent_as_written(other.as_bytes()).is_none(), "{other}");
        }
    }

    #[test]
    fn the_shortcut_reads_random_lines_as_the_general_rule() {
        let mut random = Random(0x9e37_79b9_7f4a_7c15);
        for _ in 0..20_000 {
            // Half start from a real line with pieces spliced in, half are
            // pieces alone.
            let line = if random.below(2) == 0 {
                CRAFTED[random.below(CRAFTED.len())]
            } else {
                ""
            };
            let pieces = random.below(12);
            assert_scans_as_the_general_rule(&random.spliced(line, pieces));
        }
        // Kerio's own layouts bent a little: mostly still read as written.
        for _ in 0..20_000 {
            let line = [CRAFTED[0], CRAFTED[1], CRAFTED[8]][random.below(3)];
            let pieces = 1 + random.below(2);
            assert_scans_as_the_general_rule(&random.spliced(line, pieces));
        }
    }

    #[test]
    fn recv_fields_past_the_detected_ones_are_trailing_free_text() {
        // What lets `scan_wanted` stop at the first of them.
        let (detected, trailing) = crate::kerio::mail::RECV_FIELDS
            .split_at_checked(crate::kerio::mail::RECV_DETECTED)
            .expect("fewer detected fields than fields");
        assert!(!trailing.is_empty() && !detected.is_empty());
        let trailing_keys: Vec<&[u8]> = trailing.iter().map(|field| field.key).collect();
        for field in trailing {
            let Extent::OnlyKeys(ended_by) = field.extent else {
                panic!("{:?} is not free text", field.key);
            };
            assert!(ended_by.iter().all(|key| trailing_keys.contains(key)));
        }
    }

    #[test]
    fn the_keys_of_each_line_are_distinct() {
        // The shortcut takes a key two fields ahead for that field: right
        // only while no key is listed twice.
        let keys = |fields: &[Field]| -> Vec<&[u8]> { fields.iter().map(|f| f.key).collect() };
        for fields in [
            keys(&crate::kerio::mail::RECV_FIELDS),
            keys(&crate::kerio::mail::SENT_FIELDS),
            keys(&FIELDS),
        ] {
            let mut sorted = fields.clone();
            sorted.sort_unstable();
            sorted.dedup();
            assert_eq!(sorted.len(), fields.len(), "{fields:?}");
        }
    }

    #[test]
    fn text_not_starting_with_a_key_has_no_fields() {
        assert_eq!(scan_str(" Queue-ID: 1"), [None; 5]);
        assert_eq!(scan_str("Queue-ID:1"), [None; 5]);
        assert_eq!(scan_str(""), [None; 5]);
    }
}
