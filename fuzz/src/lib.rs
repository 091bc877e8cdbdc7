//! What the fuzz targets share: how an input becomes log lines and a parse
//! context, the parse every line target checks, and the framing of a saved
//! detector state (the seeds example writes it, `detector_restore` reads it).

use mailfuse_core::{Event, Timestamp};
use mailfuse_detect::{DetectConfig, Detector, SnapshotError};
use mailfuse_formats::{
    choose_zone, Detail, Format, ParseContext, Parsed, Recogniser, Recognition,
};

/// Lines the zone is derived from, as `scan` reads a member's head.
const HEAD_LINES: usize = 100;

/// The input's lines, without their `\n` (a reader strips line endings).
pub fn lines(data: &[u8]) -> Vec<&[u8]> {
    data.split(|&b| b == b'\n').collect()
}

/// The context a reader would build for these lines: the zone derived from
/// their head, and a fixed year reference (RFC 3164 stamps carry no year);
/// lines read whole, as `trace` reads them.
pub fn context(lines: &[&[u8]]) -> ParseContext {
    ParseContext {
        zone: choose_zone(None, lines.iter().take(HEAD_LINES)).zone,
        year_reference: Timestamp::from_civil(2026, 6, 1, 0, 0, 0),
        detail: Detail::Whole,
    }
}

/// Whether `detected`, a line read for the detectors, means what `whole`,
/// the line read whole, means: the same, but for sender text a parser may
/// leave unread (`None`).
fn reads_as_detected(detected: &Parsed<'_>, whole: &Parsed<'_>) -> bool {
    match (detected, whole) {
        (Parsed::Event(Event::Submission(detected)), Parsed::Event(Event::Submission(whole))) => {
            let unread_or_same = |d: Option<&[u8]>, w: Option<&[u8]>| d.is_none() || d == w;
            unread_or_same(detected.subject, whole.subject)
                && unread_or_same(detected.message_id, whole.message_id)
                && *detected
                    == mailfuse_core::Submission {
                        subject: detected.subject,
                        message_id: detected.message_id,
                        ..whole.clone()
                    }
        }
        _ => detected == whole,
    }
}

/// Parses `lines` as `format` the two ways the readers do, and panics
/// (a finding) when they disagree: one parser `parse`s each line in order
/// (`watch`, `scan` on one core), and another `read`s them all in reverse
/// order (any parser, any order) before a third `settle`s them in file
/// order (`scan`'s split files); and a fourth, reading for the detectors
/// (`Detail::Detection`), must read each line as read whole but for the
/// sender text it may leave unread. Hands each line and what it means to
/// `visit` (read for the detectors, as `scan` and `watch` read it).
pub fn parse_both_ways<'a>(
    format: Format,
    lines: &[&'a [u8]],
    mut visit: impl FnMut(&Parsed<'a>, &'a [u8]),
) {
    let context = context(lines);
    let mut reader = format.parser(&context);
    let mut readings: Vec<_> = lines.iter().rev().map(|line| reader.read(line)).collect();
    readings.reverse();
    let mut settler = format.parser(&context);
    let mut parser = format.parser(&context);
    let mut detecting = format.parser(&ParseContext {
        detail: Detail::Detection,
        ..context.clone()
    });
    for (line, mut reading) in lines.iter().zip(readings) {
        settler.settle(&mut reading.parsed, reading.carry);
        let parsed = parser.parse(line);
        assert_eq!(
            parsed,
            reading.parsed,
            "parse and read+settle differ on {:?}",
            String::from_utf8_lossy(line)
        );
        let detected = detecting.parse(line);
        assert!(
            reads_as_detected(&detected, &parsed),
            "reading for the detectors differs on {:?}: {detected:?} against {parsed:?}",
            String::from_utf8_lossy(line)
        );
        visit(&detected, line);
    }
}

/// A detector fed what the parsers make of `lines`, in the format the
/// `Recogniser` picks (syslog if none), through [`parse_both_ways`].
pub fn feed(lines: &[&[u8]]) -> Detector {
    let mut recogniser = Recogniser::default();
    let format = lines
        .iter()
        .find_map(|line| match recogniser.feed(line) {
            Recognition::Known(format) => Some(format),
            _ => None,
        })
        .unwrap_or(Format::Syslog);
    let mut detector = Detector::new(DetectConfig::default());
    detector.track_changes();
    parse_both_ways(format, lines, |parsed, line| {
        if let Parsed::Event(event) = parsed {
            detector.observe(event, line);
        }
    });
    detector
}

/// `detector`'s state saved both ways `watch` and `restore` know, as the
/// inputs of `detector_restore`: (whole snapshot, rest and rows).
pub fn save(
    detector: &mut Detector,
    names: &[&'static str],
) -> Result<(Vec<u8>, Vec<u8>), SnapshotError> {
    let whole = Saved::Whole(&detector.snapshot()?).encode(names);
    let changes = detector.changes()?;
    let mut rows: Vec<_> = changes
        .rows
        .iter()
        .filter_map(|row| Some((row.map, &row.key[..], row.value.as_deref()?)))
        .collect();
    // As the store hands them back (`ORDER BY map, key`).
    rows.sort_unstable_by(|a, b| (a.0, a.1).cmp(&(b.0, b.1)));
    Ok((whole, Saved::Rows(&changes.rest, rows).encode(names)))
}

/// The names `Detector::restore_rows` knows rows by (and one it does not,
/// `accounts_packed`, a count rather than a collection).
pub fn row_names() -> Vec<&'static str> {
    Detector::new(DetectConfig::default())
        .entries()
        .into_iter()
        .map(|(name, _)| name)
        .collect()
}

/// A saved detector state as one input: a first byte saying which form
/// (even: a whole [`Detector::snapshot`]; odd: [`Detector::changes`]' rest,
/// then rows), then length-prefixed frames.
pub enum Saved<'a> {
    /// A whole snapshot.
    Whole(&'a [u8]),
    /// The rest of the state, and rows: (collection name, key, value).
    Rows(&'a [u8], Vec<(&'static str, &'a [u8], &'a [u8])>),
}

impl<'a> Saved<'a> {
    /// Reads any bytes as a saved state (a frame cut short takes what is left).
    pub fn decode(data: &'a [u8], names: &[&'static str]) -> Self {
        let Some((&form, mut data)) = data.split_first() else {
            return Saved::Whole(&[]);
        };
        if form % 2 == 0 {
            return Saved::Whole(data);
        }
        let rest = frame(&mut data);
        let mut rows = Vec::new();
        while let Some((&index, tail)) = data.split_first() {
            data = tail;
            let name = names[usize::from(index) % names.len()];
            let key = frame(&mut data);
            let value = frame(&mut data);
            rows.push((name, key, value));
        }
        Saved::Rows(rest, rows)
    }

    /// The bytes [`Saved::decode`] reads back as `self`.
    pub fn encode(&self, names: &[&'static str]) -> Vec<u8> {
        let mut out = Vec::new();
        match self {
            Saved::Whole(snapshot) => {
                out.push(0);
                out.extend_from_slice(snapshot);
            }
            Saved::Rows(rest, rows) => {
                out.push(1);
                put_frame(&mut out, rest);
                for (name, key, value) in rows {
                    let index = names.iter().position(|n| n == name).unwrap_or(0);
                    out.push(u8::try_from(index).unwrap_or(0));
                    put_frame(&mut out, key);
                    put_frame(&mut out, value);
                }
            }
        }
        out
    }
}

/// Takes a frame (a little-endian u32 length, then that many bytes) off
/// the front of `data`.
fn frame<'a>(data: &mut &'a [u8]) -> &'a [u8] {
    let (length, tail) = data.split_at(data.len().min(4));
    let mut bytes = [0; 4];
    bytes[..length.len()].copy_from_slice(length);
    let length = (u32::from_le_bytes(bytes) as usize).min(tail.len());
    let (body, tail) = tail.split_at(length);
    *data = tail;
    body
}

fn put_frame(out: &mut Vec<u8>, body: &[u8]) {
    out.extend_from_slice(&u32::try_from(body.len()).unwrap_or(u32::MAX).to_le_bytes());
    out.extend_from_slice(body);
}

/// Restores a saved state the way `watch` does (`restore_rows` given the
/// rows collection by collection). `Err` is the expected answer to most
/// bytes; only a panic is a finding.
pub fn restore(saved: &Saved<'_>) -> Result<Detector, SnapshotError> {
    match saved {
        Saved::Whole(snapshot) => Detector::restore(snapshot, DetectConfig::default()),
        Saved::Rows(rest, rows) => {
            Detector::restore_rows(rest, DetectConfig::default(), &[], |loader| {
                rows.iter()
                    .try_for_each(|(name, key, value)| loader.load(name, key, value))
            })
        }
    }
}
