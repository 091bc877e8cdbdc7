//! State held packed while idle: a provider's million mailboxes and a
//! botnet's hundreds of thousands of IPs are mostly quiet, and a quiet
//! entry packed into the bytes of its saved row (MessagePack, its fields in
//! order) costs a few hundred bytes instead of a few kilobytes of boxes,
//! maps and strings. It is unpacked at its next event.
//!
//! Packing changes how an entry is held, never what it is: a [`Packed`]
//! saves, restores and reads as the value it holds. [`IdleQueue`] finds the
//! entries to pack without a pass over the whole table.

use std::collections::VecDeque;
use std::ops::Deref;

use mailfuse_core::Timestamp;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// What a value must tell to be packed.
pub(crate) trait Pack: Serialize + DeserializeOwned {
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
            match rmp_serde::encode::write(buffer, &value) {
                Ok(()) => Packed::Bytes {
                    last_seen: value.last_seen(),
                    bytes: Box::from(buffer.as_slice()),
                },
                Err(_) => Packed::Live(value),
            }
        })
    }

    fn unpack(bytes: &[u8]) -> Box<T> {
        rmp_serde::from_slice(bytes).unwrap_or_else(|_| Box::new(T::salvage(bytes)))
    }

    /// Whether it is packed.
    pub(crate) fn is_packed(&self) -> bool {
        matches!(self, Packed::Bytes { .. })
    }

    /// The packed bytes, if packed.
    pub(crate) fn bytes(&self) -> Option<&[u8]> {
        match self {
            Packed::Live(_) => None,
            Packed::Bytes { bytes, .. } => Some(bytes),
        }
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
            Packed::Bytes { bytes, .. } => Held::Unpacked(Packed::unpack(bytes)),
        }
    }

    /// The value, unpacked for good if it was packed.
    pub(crate) fn live(&mut self) -> &mut T {
        if let Packed::Bytes { bytes, .. } = self {
            *self = Packed::Live(Packed::unpack(bytes));
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
            Packed::Bytes { bytes, .. } => Packed::unpack(&bytes),
        }
    }
}

/// Saved as the value it holds: rows read the same packed or not.
impl<T: Pack> Serialize for Packed<T> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Packed::Live(value) => value.serialize(serializer),
            Packed::Bytes { bytes, .. } => rmp_serde::from_slice::<T>(bytes)
                .map_err(serde::ser::Error::custom)?
                .serialize(serializer),
        }
    }
}

/// Restored packed (when it may be): a restored state's entries are idle
/// until their next event, and a million of them live would take
/// gigabytes at start-up.
impl<'de, T: Pack> Deserialize<'de> for Packed<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        T::deserialize(deserializer).map(|value| Packed::pack(Box::new(value)))
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
