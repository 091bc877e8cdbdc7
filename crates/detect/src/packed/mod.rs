//! State held packed while idle: a provider's million mailboxes and a
//! botnet's hundreds of thousands of IPs are mostly quiet, and a quiet
//! entry packed into the bytes of its row (MessagePack, its fields in
//! order, compressed with its table's [`dictionary`] once the table has
//! one) costs a hundred or two bytes instead of a few kilobytes of boxes,
//! maps and strings. It is unpacked at its next event.
//!
//! Packing changes how an entry is held, never what it is: a [`Packed`]
//! restores and reads as the value it holds, and a whole snapshot holds the
//! value. Packed, its times are written relative to when it was last seen
//! (`time::relative_to`), which is kept beside the bytes. Its row holds it
//! compressed when its table has a dictionary (see [`ROW_EXT`]), so that a
//! packed entry is saved and restored as it is, never unpacked.
//! [`IdleQueue`] finds the entries to pack without a pass over the whole
//! table.

mod dictionary;

use std::borrow::Cow;
use std::collections::VecDeque;
use std::fmt;
use std::marker::PhantomData;
use std::ops::Deref;

use mailfuse_core::{rows, time, Timestamp};
use serde::de::value::{MapAccessDeserializer, SeqAccessDeserializer};
use serde::de::{DeserializeOwned, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

pub(crate) use dictionary::{register, registered};

/// The MessagePack extension type of a compressed row: when its entry was
/// last seen (a MessagePack integer), then the compressed entry (see
/// `dictionary`) but for its first byte, which says what every row says;
/// the entry's times are relative to when it was last seen. Rows written before times were
/// relative are a `bin` (8 bytes of last seen, little-endian, then the
/// frame): they are unpacked and packed anew when they are restored
/// ([`take_converted`] counts them).
const ROW_EXT: i8 = 1;

thread_local! {
    /// Rows of the older form restored since [`take_converted`] last
    /// looked.
    static CONVERTED: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

/// How many rows of the form before [`ROW_EXT`] were restored (and packed
/// anew) on this thread since the last call: the state should then be
/// saved whole again.
pub(crate) fn take_converted() -> usize {
    CONVERTED.with(|converted| converted.replace(0))
}

/// What a value must tell to be packed.
pub(crate) trait Pack: Serialize + DeserializeOwned {
    /// The table it is packed in: each trains its own dictionary.
    const TABLE: &'static str;
    /// When it last changed: it is idle from then on.
    fn last_seen(&self) -> Timestamp;
    /// Whether it may be packed (one read often, an incident's, stays live).
    fn packable(&self) -> bool {
        true
    }
    /// What can be saved of bytes that do not read back. Bytes `pack` wrote
    /// always do; should they not, the entry restarts rather than take the
    /// process down.
    fn salvage(bytes: &[u8]) -> Self;
}

/// A value live in its box, or packed with the time it was last seen.
#[derive(Debug)]
pub(crate) enum Packed<T> {
    Live(Box<T>),
    Bytes {
        last_seen: Timestamp,
        bytes: Box<[u8]>,
    },
}

impl<T: Pack> Packed<T> {
    /// A live value.
    pub(crate) fn new(value: T) -> Self {
        Packed::Live(Box::new(value))
    }

    /// `value` packed if it may be; live if it may not (or, never, if it
    /// cannot be written).
    fn pack(value: Box<T>) -> Self {
        thread_local! {
            /// Written into, then copied out at the packed size: one
            /// allocation per packing, not a growing vector's several.
            static BUFFER: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
        }
        if !value.packable() {
            return Packed::Live(value);
        }
        BUFFER.with_borrow_mut(|buffer| {
            buffer.clear();
            let last_seen = value.last_seen();
            match time::relative_to(last_seen, || rmp_serde::encode::write(buffer, &value)) {
                Ok(()) => Packed::Bytes {
                    last_seen,
                    bytes: dictionary::compress(T::TABLE, buffer)
                        .unwrap_or_else(|| Box::from(buffer.as_slice())),
                },
                Err(_) => Packed::Live(value),
            }
        })
    }

    fn unpack(last_seen: Timestamp, bytes: &[u8]) -> Box<T> {
        with_plain(bytes, |plain| {
            time::relative_to(last_seen, || rmp_serde::from_slice(plain))
                .unwrap_or_else(|_| Box::new(T::salvage(plain)))
        })
    }

    /// `f` of the packed value's MessagePack (decompressed if need be;
    /// empty if it does not read), whose times read back as they were
    /// written (relative to when it was last seen); `None` if it is live.
    pub(crate) fn read_packed<R>(&self, f: impl FnOnce(&[u8]) -> R) -> Option<R> {
        match self {
            Packed::Live(_) => None,
            Packed::Bytes { last_seen, bytes } => Some(with_plain(bytes, |plain| {
                time::relative_to(*last_seen, || f(plain))
            })),
        }
    }

    /// Its row's bytes in the compressed form ([`ROW_EXT`]'s), if its table
    /// has a dictionary: compressed with the newest.
    fn compressed_row(&self) -> Option<Vec<u8>> {
        let compressed;
        let (last_seen, entry): (Timestamp, &[u8]) = match self {
            Packed::Bytes { last_seen, bytes } if dictionary::is_compressed(bytes) => {
                match dictionary::recompressed(T::TABLE, bytes) {
                    Some(newer) => {
                        compressed = newer;
                        (*last_seen, &compressed)
                    }
                    None => (*last_seen, bytes),
                }
            }
            Packed::Bytes { last_seen, bytes } => {
                compressed = dictionary::compress(T::TABLE, bytes)?;
                (*last_seen, &compressed)
            }
            Packed::Live(value) => {
                let plain =
                    time::relative_to(value.last_seen(), || rmp_serde::to_vec(value)).ok()?;
                compressed = dictionary::compress(T::TABLE, &plain)?;
                (value.last_seen(), &compressed)
            }
        };
        let mut row = Vec::with_capacity(9 + entry.len());
        rmp::encode::write_sint(&mut row, last_seen.as_secs()).ok()?;
        row.extend_from_slice(dictionary::unmarked(entry));
        Some(row)
    }

    /// Whether it is packed.
    pub(crate) fn is_packed(&self) -> bool {
        matches!(self, Packed::Bytes { .. })
    }

    /// Whether it is live and may not be packed (an incident's).
    pub(crate) fn pinned(&self) -> bool {
        match self {
            Packed::Live(value) => !value.packable(),
            Packed::Bytes { .. } => false,
        }
    }

    /// When the value last changed, without unpacking it.
    pub(crate) fn last_seen(&self) -> Timestamp {
        match self {
            Packed::Live(value) => value.last_seen(),
            Packed::Bytes { last_seen, .. } => *last_seen,
        }
    }

    /// The value, read in place or unpacked into a copy.
    pub(crate) fn read(&self) -> Held<'_, T> {
        match self {
            Packed::Live(value) => Held::InPlace(value),
            Packed::Bytes { last_seen, bytes } => Held::Unpacked(Packed::unpack(*last_seen, bytes)),
        }
    }

    /// The value, unpacked for good if it was packed.
    pub(crate) fn live(&mut self) -> &mut T {
        if let Packed::Bytes { last_seen, bytes } = self {
            *self = Packed::Live(Packed::unpack(*last_seen, bytes));
        }
        match self {
            Packed::Live(value) => value,
            Packed::Bytes { .. } => unreachable!("unpacked just above"),
        }
    }

    /// Packs a live value (if it may be packed).
    pub(crate) fn repack(&mut self) {
        if let Packed::Live(_) = self {
            let placeholder = Packed::Bytes {
                last_seen: Timestamp::default(),
                bytes: Box::default(),
            };
            if let Packed::Live(value) = std::mem::replace(self, placeholder) {
                *self = Packed::pack(value);
            }
        }
    }

    /// The value, unpacked if it was packed.
    pub(crate) fn into_inner(self) -> Box<T> {
        match self {
            Packed::Live(value) => value,
            Packed::Bytes { last_seen, bytes } => Packed::unpack(last_seen, &bytes),
        }
    }
}

/// `f` of `bytes`' MessagePack: themselves, or decompressed (empty if
/// they do not decompress).
fn with_plain<R>(bytes: &[u8], f: impl FnOnce(&[u8]) -> R) -> R {
    thread_local! {
        static PLAIN: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
    }
    if !dictionary::is_compressed(bytes) {
        return f(bytes);
    }
    PLAIN.with_borrow_mut(|plain| {
        if dictionary::decompress(bytes, plain) {
            f(plain)
        } else {
            f(&[])
        }
    })
}

/// Saved as the value it holds, or in a row compressed (see the module's
/// comment).
impl<T: Pack> Serialize for Packed<T> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        if rows::in_row() {
            if let Some(row) = self.compressed_row() {
                return serializer.serialize_newtype_struct(
                    rmp_serde::MSGPACK_EXT_STRUCT_NAME,
                    &(ROW_EXT, RowBytes(&row)),
                );
            }
        }
        match self {
            Packed::Live(value) => value.serialize(serializer),
            Packed::Bytes { .. } => self.read().serialize(serializer),
        }
    }
}

/// Restored packed (when it may be): a restored state's entries are idle
/// until their next event, and a million of them live would take
/// gigabytes at start-up. A compressed row stays as it is.
impl<'de, T: Pack> Deserialize<'de> for Packed<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(PackedVisitor(PhantomData))
    }
}

struct PackedVisitor<T>(PhantomData<T>);

impl<'de, T: Pack> Visitor<'de> for PackedVisitor<T> {
    type Value = Packed<T>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "a row of {}", T::TABLE)
    }

    /// A compressed row ([`ROW_EXT`]).
    fn visit_newtype_struct<D: Deserializer<'de>>(self, ext: D) -> Result<Packed<T>, D::Error> {
        use serde::de::Error;
        let (kind, row) = <(i8, RowBuf)>::deserialize(ext)?;
        if kind != ROW_EXT {
            return Err(D::Error::custom(format!(
                "a row of {} of an unknown kind ({kind})",
                T::TABLE
            )));
        }
        let mut rest = &*row.0;
        let last_seen = rmp::decode::read_int(&mut rest)
            .map_err(|_| D::Error::custom("a compressed row without its time"))?;
        let bytes = dictionary::marked(rest);
        if !dictionary::can_read(&bytes) {
            return Err(D::Error::custom(UNREADABLE));
        }
        Ok(Packed::Bytes {
            last_seen: Timestamp(last_seen),
            bytes,
        })
    }

    /// A compressed row of the form before [`ROW_EXT`]: its times are
    /// absolute, so it is packed anew.
    fn visit_bytes<E: serde::de::Error>(self, row: &[u8]) -> Result<Packed<T>, E> {
        let Some((_, frame)) = row.split_first_chunk::<8>() else {
            return Err(E::custom("a compressed row too short to hold one"));
        };
        let mut plain = Vec::new();
        if !dictionary::decompress_named(frame, &mut plain) {
            return Err(E::custom(UNREADABLE));
        }
        let value: Box<T> = rmp_serde::from_slice(&plain)
            .map_err(|e| E::custom(format!("a compressed row of {}: {e}", T::TABLE)))?;
        CONVERTED.with(|converted| converted.set(converted.get() + 1));
        Ok(Packed::pack(value))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Packed<T>, A::Error> {
        T::deserialize(SeqAccessDeserializer::new(seq)).map(|value| Packed::pack(Box::new(value)))
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Packed<T>, A::Error> {
        T::deserialize(MapAccessDeserializer::new(map)).map(|value| Packed::pack(Box::new(value)))
    }
}

/// Why a compressed row is refused.
const UNREADABLE: &str = "a compressed row whose dictionary was not saved with it, or damaged";

/// A row's bytes, written as MessagePack `bin` (in [`ROW_EXT`]'s
/// extension).
struct RowBytes<'a>(&'a [u8]);

impl Serialize for RowBytes<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_bytes(self.0)
    }
}

/// A row's bytes, read back: borrowed from the row when they can be.
struct RowBuf<'de>(Cow<'de, [u8]>);

impl<'de> Deserialize<'de> for RowBuf<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Bytes;
        impl<'de> Visitor<'de> for Bytes {
            type Value = RowBuf<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a compressed row's bytes")
            }
            fn visit_borrowed_bytes<E: serde::de::Error>(
                self,
                bytes: &'de [u8],
            ) -> Result<RowBuf<'de>, E> {
                Ok(RowBuf(Cow::Borrowed(bytes)))
            }
            fn visit_bytes<E: serde::de::Error>(self, bytes: &[u8]) -> Result<RowBuf<'de>, E> {
                Ok(RowBuf(Cow::Owned(bytes.to_vec())))
            }
        }
        deserializer.deserialize_bytes(Bytes)
    }
}

/// A value to read: a live one in place, or a packed one's copy.
pub(crate) enum Held<'a, T> {
    InPlace(&'a T),
    Unpacked(Box<T>),
}

impl<T> Deref for Held<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        match self {
            Held::InPlace(value) => value,
            Held::Unpacked(value) => value,
        }
    }
}

/// Live entries a table keeps however idle they are: packing and
/// unpacking cost a few microseconds each, which a server of a few
/// thousand accounts need not pay (their state is a few megabytes).
const KEEP_LIVE: usize = 10_000;

/// The keys of live entries, each with when it may be idle enough to pack,
/// in about that order (events come in time order): a look at the front
/// at each event finds those due.
#[derive(Debug)]
pub(crate) struct IdleQueue<K> {
    due: VecDeque<(Timestamp, K)>,
    /// Seconds without a change before an entry is packed.
    idle_secs: i64,
    /// Entries kept live before any is packed.
    keep_live: usize,
}

impl<K> Default for IdleQueue<K> {
    fn default() -> Self {
        IdleQueue::new(i64::MAX)
    }
}

impl<K> IdleQueue<K> {
    /// A queue packing after `idle_secs` once more than [`KEEP_LIVE`]
    /// entries are live (0: at the next event, however few: for tests).
    pub(crate) fn new(idle_secs: i64) -> Self {
        let mut queue = IdleQueue {
            due: VecDeque::new(),
            idle_secs: 0,
            keep_live: 0,
        };
        queue.set_idle_secs(idle_secs);
        queue
    }

    /// Takes a new idle time (after a restore with a changed configuration).
    pub(crate) fn set_idle_secs(&mut self, idle_secs: i64) {
        self.idle_secs = idle_secs.max(0);
        self.keep_live = if self.idle_secs == 0 { 0 } else { KEEP_LIVE };
    }

    /// `key` is live, last seen at `last_seen`.
    pub(crate) fn note(&mut self, key: K, last_seen: Timestamp) {
        self.due.push_back((last_seen.plus(self.idle_secs), key));
    }

    /// `key`'s entry, unpacked for good if it was packed, and then queued
    /// to be packed again once idle.
    pub(crate) fn unpack<'a, T: Pack>(&mut self, key: K, entry: &'a mut Packed<T>) -> &'a mut T {
        let packed = entry.is_packed();
        let value = entry.live();
        if packed {
            self.note(key, value.last_seen());
        }
        value
    }

    /// Forgets every key (their entries went).
    pub(crate) fn clear(&mut self) {
        self.due.clear();
    }

    /// The next key due to be looked at by [`IdleQueue::settle`], if any.
    pub(crate) fn next_due(&mut self, now: Timestamp) -> Option<K> {
        if self.due.len() <= self.keep_live {
            return None;
        }
        match self.due.front() {
            Some((due, _)) if *due <= now => self.due.pop_front().map(|(_, key)| key),
            _ => None,
        }
    }

    /// Packs `key`'s entry if it was idle long enough; one seen since is due
    /// again that long after it was last seen.
    pub(crate) fn settle<T: Pack>(&mut self, key: K, entry: &mut Packed<T>, now: Timestamp) {
        let Packed::Live(value) = entry else { return };
        let last_seen = value.last_seen();
        if now.as_secs() - last_seen.as_secs() < self.idle_secs {
            self.due.push_back((last_seen.plus(self.idle_secs), key));
            return;
        }
        entry.repack();
        if !entry.is_packed() {
            // Not packable now (an incident's): looked at again later.
            self.due.push_back((now.plus(self.idle_secs.max(1)), key));
        }
    }
}

#[cfg(test)]
mod tests {
    use mailfuse_core::rows::{Rows, TrackedVec};
    use serde::{Deserialize, Serialize};

    use super::*;
    use crate::window::HourWindow;

    #[derive(Debug, Clone, Serialize, Deserialize)]
    struct Entry {
        name: String,
        last_seen: Timestamp,
        line: String,
        first_seen: Timestamp,
        hour: HourWindow,
    }

    /// Equal, the window too (as it saves: its buckets, absolute).
    impl PartialEq for Entry {
        fn eq(&self, other: &Entry) -> bool {
            let window = |entry: &Entry| rmp_serde::to_vec(&entry.hour).expect("window");
            (&self.name, self.last_seen, &self.line, self.first_seen)
                == (&other.name, other.last_seen, &other.line, other.first_seen)
                && window(self) == window(other)
        }
    }

    impl Pack for Entry {
        const TABLE: &'static str = "packed_test_entries";

        fn last_seen(&self) -> Timestamp {
            self.last_seen
        }

        fn salvage(_: &[u8]) -> Entry {
            Entry {
                name: String::new(),
                last_seen: Timestamp::default(),
                line: String::new(),
                first_seen: Timestamp::default(),
                hour: HourWindow::hour(),
            }
        }
    }

    fn entry(n: i64) -> Entry {
        let last_seen = Timestamp(1_700_000_000 + n);
        let mut hour = HourWindow::hour();
        hour.add(last_seen.plus(-120), 2);
        hour.add(last_seen, 1);
        Entry {
            name: format!("user{n}@example.org"),
            last_seen,
            first_seen: last_seen.plus(-86_400 - n),
            hour,
            line: format!(
                "Nov  2 07:10:{:02} mail postfix/submission/smtpd[{}]: client=unknown[81.1.{}.7], sasl_username=user{n}@example.org",
                n % 60,
                1000 + n,
                n % 250
            ),
        }
    }

    #[test]
    fn packed_entries_compress_once_trained_and_save_and_restore_as_they_are() {
        let mut table: TrackedVec<Packed<Entry>> = TrackedVec::default();
        let mut n = 0;
        // Entries pack plain until the table's dictionary is trained.
        let compressed = |slot: &Packed<Entry>| matches!(slot, Packed::Bytes { bytes, .. } if dictionary::is_compressed(bytes));
        while !table.last().is_some_and(compressed) {
            assert!(n <= 2_000, "no dictionary after {n} entries");
            table.push(Packed::pack(Box::new(entry(n))));
            n += 1;
        }
        let first_plain = table
            .first()
            .and_then(|e| e.read_packed(|plain| plain.len()));
        assert!(
            first_plain.is_some(),
            "entries packed before training stay readable"
        );
        table.push(Packed::new(entry(n)));
        let count = table.len();

        // Rows: compressed (plain-packed and live ones too, now), and they
        // load back packed, as the same values.
        table.mark_all();
        let mut rows = Vec::new();
        table.changes("entries", &mut rows).expect("rows");
        // As the store gives them back: by key.
        rows.sort_by(|a, b| a.key.cmp(&b.key));
        let mut restored: TrackedVec<Packed<Entry>> = TrackedVec::default();
        for row in &rows {
            let value = row.value.as_deref().expect("a value");
            assert!(matches!(value.first(), Some(0xc7..=0xc9)), "an ext row");
            restored.load("entries", &row.key, value).expect("loads");
        }
        assert_eq!(restored.len(), count);
        for (n, slot) in restored.iter().enumerate() {
            assert!(slot.is_packed());
            assert_eq!(*slot.read(), entry(n as i64));
            assert_eq!(slot.last_seen(), entry(n as i64).last_seen);
        }

        // A whole snapshot holds the values themselves.
        let snapshot = rmp_serde::to_vec(&table).expect("snapshot");
        let entries: Vec<Entry> = rmp_serde::from_slice(&snapshot).expect("plain values");
        assert_eq!(entries, (0..count as i64).map(entry).collect::<Vec<_>>());

        // A row of the form before times were relative: 8 bytes of last
        // seen, then zstd's frame (naming its dictionary by zstd's id) of
        // the value as it was, read and packed anew.
        let old = entry(7);
        let absolute = rmp_serde::to_vec(&old).expect("plain");
        let saved = dictionary::registered()
            .into_iter()
            .find(|d| d.table == Entry::TABLE)
            .expect("trained");
        let frame = zstd::bulk::Compressor::with_dictionary(1, &saved.bytes)
            .and_then(|mut zstd| zstd.compress(&absolute))
            .expect("zstd's frame");
        let mut bin = old.last_seen.as_secs().to_le_bytes().to_vec();
        bin.extend_from_slice(&frame);
        let row = rmp_serde::to_vec(&serde_bytes_of(&bin)).expect("a bin row");
        take_converted();
        let mut older: TrackedVec<Packed<Entry>> = TrackedVec::default();
        older.load("entries", &[0; 4], &row).expect("loads");
        assert_eq!(take_converted(), 1, "counted, to be saved anew");
        assert_eq!(*older[0].read(), old);
        assert_eq!(older[0].last_seen(), old.last_seen);
    }

    fn serde_bytes_of(bytes: &[u8]) -> RowBytes<'_> {
        RowBytes(bytes)
    }

    /// Every time of an entry shifted by a day, or by a year: the same
    /// packed bytes, which the table's dictionary keeps matching as days go.
    #[test]
    fn entries_alike_but_for_when_pack_alike() {
        let packed_at = |shift: i64| {
            let mut shifted = entry(3);
            shifted.last_seen = shifted.last_seen.plus(shift);
            shifted.first_seen = shifted.first_seen.plus(shift);
            shifted.hour = HourWindow::hour();
            shifted.hour.add(shifted.last_seen.plus(-120), 2);
            shifted.hour.add(shifted.last_seen, 1);
            let expected = shifted.clone();
            let packed = Packed::pack(Box::new(shifted));
            assert_eq!(*packed.read(), expected, "reads back as it was");
            packed.read_packed(<[u8]>::to_vec).expect("packed")
        };
        let today = packed_at(0);
        assert_eq!(packed_at(86_400), today);
        assert_eq!(packed_at(365 * 86_400 + 17), today);
    }
}
