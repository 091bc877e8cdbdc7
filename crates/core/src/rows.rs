//! Keyed state that remembers which keys changed, so a daemon saves only
//! those rows: a save costs in proportion to the change since the last
//! one, not to the whole state (a provider's million accounts, most idle).
//!
//! [`TrackedMap`] and [`TrackedVec`] read like the map and vector they wrap
//! (they dereference to them); every way to change an entry goes through
//! them and, once [`Rows::track`] was called, notes its key. Until then
//! nothing is noted (`scan` never saves). Each detector lists its tracked
//! collections under stable names ([`RowsOf`]); the daemon writes
//! [`Rows::changes`] to its store, calls [`Rows::saved`] once they are
//! durable, and after a restart [`Rows::load`]s every stored row back.
//!
//! Rows are MessagePack: the key serialised on its own (a vector's key is
//! its index as 4 big-endian bytes, so a store that sorts keys bytewise
//! gives the rows back in index order) and the value, structs as arrays
//! without their field names (a million rows would repeat them a million
//! times): a field is only ever added at the end of its struct, with
//! `#[serde(default)]`, so older rows still read.
//!
//! The collections serialise as what they wrap, which keeps whole
//! snapshots working; inside [`apart`] they serialise as empty, so the rest
//! of a state can be saved whole while the rows go separately.

use std::borrow::Borrow;
use std::cell::Cell;
use std::collections::hash_map::Entry;
use std::hash::Hash;
use std::marker::PhantomData;
use std::ops::{Deref, Index};

use rustc_hash::{FxHashMap, FxHashSet};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::slab_map::{Handle, SlabMap};

/// A row that could not be written or read back.
#[derive(Debug, thiserror::Error)]
pub enum RowError {
    /// Serialising a key or a value failed (a bug).
    #[error("cannot write a row of {map}: {reason}")]
    Write {
        /// The collection.
        map: &'static str,
        /// What the serialiser said.
        reason: String,
    },
    /// A stored row does not read as this version's key or value.
    #[error("cannot read a row of {map}: {reason}")]
    Read {
        /// The collection.
        map: &'static str,
        /// What went wrong.
        reason: String,
    },
}

/// One changed row: its key, and its value (`None`: the entry is gone).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RowChange {
    /// The collection's name.
    pub map: &'static str,
    /// The entry's key, serialised.
    pub key: Vec<u8>,
    /// The entry's value, serialised; `None` when it was removed.
    pub value: Option<Vec<u8>>,
}

/// A compression dictionary some rows need to be read: saved once, before
/// the rows, and registered again before they are loaded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RowDictionary {
    /// Its id, which each row compressed with it names.
    pub id: u32,
    /// The collection whose rows trained it.
    pub table: String,
    /// The zstd dictionary.
    pub bytes: Vec<u8>,
}

/// A collection whose changed entries can be saved as rows.
pub trait Rows {
    /// Starts noting changes from now: what is held counts as saved.
    fn track(&mut self);
    /// Counts every entry held as changed, so the next save writes them
    /// all (a state not saved as rows yet); starts noting changes.
    fn mark_all(&mut self);
    /// Appends a [`RowChange`] for each entry changed since the last
    /// [`Rows::saved`] (nothing when not tracking).
    fn changes(&self, map: &'static str, out: &mut Vec<RowChange>) -> Result<(), RowError>;
    /// The changes were saved: forget them.
    fn saved(&mut self);
    /// Puts back one saved row (rows of a [`TrackedVec`] must come in key
    /// order, as saved).
    fn load(&mut self, map: &'static str, key: &[u8], value: &[u8]) -> Result<(), RowError>;
    /// Entries held.
    fn len(&self) -> usize;
    /// Whether no entry is held.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The tracked collections of a state, each with its stable name: what a
/// component hands its owner so rows can be saved and loaded without the
/// owner knowing its fields.
pub type RowsOf<'a> = Vec<(&'static str, &'a mut dyn Rows)>;

thread_local! {
    static APART: Cell<bool> = const { Cell::new(false) };
    static IN_ROW: Cell<bool> = const { Cell::new(false) };
}

/// Runs `f` with `flag` set, and puts it back as it was after, even if
/// `f` panics.
fn with_flag<R>(flag: &'static std::thread::LocalKey<Cell<bool>>, f: impl FnOnce() -> R) -> R {
    struct Reset(&'static std::thread::LocalKey<Cell<bool>>, bool);
    impl Drop for Reset {
        fn drop(&mut self) {
            self.0.with(|flag| flag.set(self.1));
        }
    }
    let _reset = Reset(flag, flag.with(|flag| flag.replace(true)));
    f()
}

/// Runs `f` with every tracked collection serialising as empty: the rest of
/// a state, saved beside its rows.
pub fn apart<R>(f: impl FnOnce() -> R) -> R {
    with_flag(&APART, f)
}

/// Whether a row is being written: a value may then be written in a form
/// only rows need to read (packed entries, compressed), where a whole
/// snapshot has it plain.
pub fn in_row() -> bool {
    IN_ROW.with(Cell::get)
}

fn is_apart() -> bool {
    APART.with(Cell::get)
}

fn write<T: Serialize>(map: &'static str, value: &T) -> Result<Vec<u8>, RowError> {
    with_flag(&IN_ROW, || rmp_serde::to_vec(value)).map_err(|e| RowError::Write {
        map,
        reason: e.to_string(),
    })
}

fn read<T: DeserializeOwned>(map: &'static str, bytes: &[u8]) -> Result<T, RowError> {
    rmp_serde::from_slice(bytes).map_err(|e| RowError::Read {
        map,
        reason: e.to_string(),
    })
}

/// What a [`TrackedMap`] keeps its entries in: a hash map, or a
/// [`SlabMap`] for state with churn (entries made and dropped all the time).
pub trait Storage<K, V>: Default {
    /// `key`'s entry, with the key as held.
    fn get_key_value<Q>(&self, key: &Q) -> Option<(&K, &V)>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized;
    /// `key`'s value, mutable.
    fn get_mut<Q>(&mut self, key: &Q) -> Option<&mut V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized;
    /// Sets `key`'s value, returning the old one.
    fn insert(&mut self, key: K, value: V) -> Option<V>;
    /// Removes `key`'s entry if `remove` says so of its value.
    fn remove_if(&mut self, key: K, remove: impl FnOnce(&V) -> bool) -> Option<(K, V)>;
    /// Removes `key`'s entry.
    fn remove_entry<Q>(&mut self, key: &Q) -> Option<(K, V)>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized;
    /// Keeps the entries `keep` returns true for.
    fn retain(&mut self, keep: impl FnMut(&K, &mut V) -> bool);
    /// Every entry.
    fn entries<'a>(&'a self) -> impl Iterator<Item = (&'a K, &'a V)>
    where
        K: 'a,
        V: 'a;
    /// The number of entries.
    fn count(&self) -> usize;
}

/// Implements [`Storage`] for `$map` by its own methods of the same names,
/// and `$remove_if`, which differs.
macro_rules! storage_by_own_methods {
    ($map:ident, $remove_if:item) => {
        impl<K: Hash + Eq, V> Storage<K, V> for $map<K, V> {
            fn get_key_value<Q>(&self, key: &Q) -> Option<(&K, &V)>
            where
                K: Borrow<Q>,
                Q: Hash + Eq + ?Sized,
            {
                self.get_key_value(key)
            }

            fn get_mut<Q>(&mut self, key: &Q) -> Option<&mut V>
            where
                K: Borrow<Q>,
                Q: Hash + Eq + ?Sized,
            {
                self.get_mut(key)
            }

            fn insert(&mut self, key: K, value: V) -> Option<V> {
                self.insert(key, value)
            }

            $remove_if

            fn remove_entry<Q>(&mut self, key: &Q) -> Option<(K, V)>
            where
                K: Borrow<Q>,
                Q: Hash + Eq + ?Sized,
            {
                self.remove_entry(key)
            }

            fn retain(&mut self, keep: impl FnMut(&K, &mut V) -> bool) {
                self.retain(keep);
            }

            fn entries<'a>(&'a self) -> impl Iterator<Item = (&'a K, &'a V)>
            where
                K: 'a,
                V: 'a,
            {
                self.iter()
            }

            fn count(&self) -> usize {
                self.len()
            }
        }
    };
}

storage_by_own_methods!(
    FxHashMap,
    fn remove_if(&mut self, key: K, remove: impl FnOnce(&V) -> bool) -> Option<(K, V)> {
        match self.entry(key) {
            Entry::Occupied(entry) if remove(entry.get()) => Some(entry.remove_entry()),
            _ => None,
        }
    }
);

storage_by_own_methods!(
    SlabMap,
    fn remove_if(&mut self, key: K, remove: impl FnOnce(&V) -> bool) -> Option<(K, V)> {
        self.remove_if(&key, remove)
    }
);

/// A map that notes the keys changed through it, its entries kept in `S`.
#[derive(Debug)]
pub struct TrackedMap<K, V, S = FxHashMap<K, V>> {
    map: S,
    /// Keys changed since the last save, each with whether it was held
    /// then (so it may have a row to delete); `None` while not tracking.
    changed: Option<FxHashMap<K, HeldAtSave>>,
    values: PhantomData<V>,
}

/// Whether a changed key was in its map at the last save. The store holds
/// the map's rows as of each save, so a key added since and removed again
/// has no row: its removal writes nothing. A key is so judged when first
/// changed after a save: held then, it was held at the save (any change in
/// between would have been noted first).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum HeldAtSave {
    Yes,
    No,
}

/// Notes a change of `key` in `changed`, if it is tracked. The first since
/// the last save also notes whether `key` was held then, which `held`
/// tells (asked only then: a look-up saved otherwise). Apart from the map,
/// for changes made while it is borrowed.
fn note_in<K: Hash + Eq + Clone>(
    changed: &mut Option<FxHashMap<K, HeldAtSave>>,
    key: &K,
    held: impl FnOnce() -> bool,
) {
    if let Some(changed) = changed {
        if !changed.contains_key(key) {
            let held = if held() {
                HeldAtSave::Yes
            } else {
                HeldAtSave::No
            };
            changed.insert(key.clone(), held);
        }
    }
}

/// [`note_in`] for a key the map holds.
fn note_held<K: Hash + Eq + Clone>(changed: &mut Option<FxHashMap<K, HeldAtSave>>, key: &K) {
    note_in(changed, key, || true);
}

impl<K, V, S: Default> Default for TrackedMap<K, V, S> {
    fn default() -> Self {
        TrackedMap {
            map: S::default(),
            changed: None,
            values: PhantomData,
        }
    }
}

impl<K: Hash + Eq + Clone, V, S: Storage<K, V>> TrackedMap<K, V, S> {
    /// Notes a change of `key`, which the map held before it.
    fn note(&mut self, key: &K) {
        note_held(&mut self.changed, key);
    }

    /// Notes a change of `key`, held or not before it (the map as it is
    /// before the change tells).
    fn note_any(&mut self, key: &K) {
        let map = &self.map;
        note_in(&mut self.changed, key, || map.get_key_value(key).is_some());
    }

    /// The entry of `key`, mutable.
    pub fn get_mut<Q>(&mut self, key: &Q) -> Option<&mut V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        if self.changed.is_some() {
            let (known, _) = self.map.get_key_value(key)?;
            let known = known.clone();
            self.note(&known);
        }
        self.map.get_mut(key)
    }

    /// The entry of `key`, mutable, for changes that leave what it saves as
    /// alone: dropping what time has expired (old seconds leaving a window:
    /// the saved older copy expires the same way after a restore), or
    /// packing it (the same value held otherwise). Not counted as changed.
    pub fn get_mut_unchanged<Q>(&mut self, key: &Q) -> Option<&mut V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.map.get_mut(key)
    }

    /// Sets `key`'s value, returning the old one.
    pub fn insert(&mut self, key: K, value: V) -> Option<V> {
        self.note_any(&key);
        self.map.insert(key, value)
    }

    /// Removes `key`'s entry.
    pub fn remove<Q>(&mut self, key: &Q) -> Option<V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let (key, value) = self.map.remove_entry(key)?;
        self.note(&key);
        Some(value)
    }

    /// Removes `key`'s entry if `remove` says so of its value: one look-up,
    /// where a look-up then a removal would find the key twice.
    pub fn remove_if(&mut self, key: K, remove: impl FnOnce(&V) -> bool) -> Option<V> {
        let (key, value) = self.map.remove_if(key, remove)?;
        self.note(&key);
        Some(value)
    }

    /// Keeps the entries `keep` returns true for; it may change them, so
    /// each it is shown counts as changed: sweep with it rarely, or use
    /// [`TrackedMap::retain_unchanged`].
    pub fn retain(&mut self, mut keep: impl FnMut(&K, &mut V) -> bool) {
        let changed = &mut self.changed;
        self.map.retain(|key, value| {
            note_held(changed, key);
            keep(key, value)
        });
    }

    /// Keeps the entries `keep` returns true for, without changing any:
    /// only the removed ones count as changed.
    pub fn retain_unchanged(&mut self, mut keep: impl FnMut(&K, &V) -> bool) {
        let changed = &mut self.changed;
        self.map.retain(|key, value| {
            let kept = keep(key, value);
            if !kept {
                note_held(changed, key);
            }
            kept
        });
    }
}

impl<K: Hash + Eq + Clone, V> TrackedMap<K, V> {
    /// The entry of `key`, to fill or change (counted as changed).
    pub fn entry(&mut self, key: K) -> Entry<'_, K, V> {
        self.note_any(&key);
        self.map.entry(key)
    }
}

impl<K: Hash + Eq + Clone, V> TrackedMap<K, V, SlabMap<K, V>> {
    /// The value of `key`, made by `make` if not held; with its handle and
    /// whether it was made (counted as changed either way).
    pub fn get_or_insert_with(
        &mut self,
        key: K,
        make: impl FnOnce() -> V,
    ) -> (Handle, &mut V, bool) {
        self.note_any(&key);
        self.map.get_or_insert_with(key, make)
    }

    /// The entry of `key`, mutable, with its handle.
    pub fn get_mut_with_handle(&mut self, key: &K) -> Option<(Handle, &mut V)> {
        if self.changed.is_some() && self.map.contains_key(key) {
            self.note(key);
        }
        self.map.get_mut_with_handle(key)
    }

    /// Drops `handle`'s entry where it lies (see
    /// [`SlabMap::forget_handle_if`]) if it is still there and `forget`
    /// says so of its value; whether it was dropped.
    pub fn forget_handle_if(&mut self, handle: Handle, forget: impl FnOnce(&V) -> bool) -> bool {
        let changed = &mut self.changed;
        self.map
            .forget_handle_if(handle, forget, |key| note_held(changed, key))
    }
}

impl<K, V> TrackedMap<K, V> {
    /// The map, no longer tracked.
    pub fn into_map(self) -> FxHashMap<K, V> {
        self.map
    }
}

impl<K, V, S> Deref for TrackedMap<K, V, S> {
    type Target = S;
    fn deref(&self) -> &Self::Target {
        &self.map
    }
}

impl<K, V> From<FxHashMap<K, V>> for TrackedMap<K, V> {
    fn from(map: FxHashMap<K, V>) -> Self {
        TrackedMap {
            map,
            changed: None,
            values: PhantomData,
        }
    }
}

impl<K, V, S> Rows for TrackedMap<K, V, S>
where
    K: Hash + Eq + Clone + Serialize + DeserializeOwned,
    V: Serialize + DeserializeOwned,
    S: Storage<K, V>,
{
    fn track(&mut self) {
        self.changed.get_or_insert_with(FxHashMap::default);
    }

    fn mark_all(&mut self) {
        let held = self
            .map
            .entries()
            .map(|(key, _)| (key.clone(), HeldAtSave::Yes));
        self.changed = Some(held.collect());
    }

    fn changes(&self, map: &'static str, out: &mut Vec<RowChange>) -> Result<(), RowError> {
        for (key, held) in self.changed.iter().flatten() {
            let value = self.map.get_key_value(key).map(|(_, value)| value);
            if value.is_none() && *held == HeldAtSave::No {
                continue;
            }
            out.push(RowChange {
                map,
                key: write(map, key)?,
                value: value.map(|value| write(map, value)).transpose()?,
            });
        }
        Ok(())
    }

    fn saved(&mut self) {
        if let Some(changed) = &mut self.changed {
            changed.clear();
        }
    }

    fn load(&mut self, map: &'static str, key: &[u8], value: &[u8]) -> Result<(), RowError> {
        self.map.insert(read(map, key)?, read(map, value)?);
        Ok(())
    }

    fn len(&self) -> usize {
        self.map.count()
    }
}

impl<K, V, S: Serialize + Default> Serialize for TrackedMap<K, V, S> {
    fn serialize<S2: Serializer>(&self, serializer: S2) -> Result<S2::Ok, S2::Error> {
        if is_apart() {
            S::default().serialize(serializer)
        } else {
            self.map.serialize(serializer)
        }
    }
}

impl<'de, K, V, S: Deserialize<'de>> Deserialize<'de> for TrackedMap<K, V, S> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Ok(TrackedMap {
            map: S::deserialize(deserializer)?,
            changed: None,
            values: PhantomData,
        })
    }
}

/// A vector (entries are never removed) that notes the indexes changed
/// through it.
#[derive(Debug)]
pub struct TrackedVec<V> {
    items: Vec<V>,
    /// Indexes changed since the last save; `None` while not tracking.
    changed: Option<FxHashSet<u32>>,
}

impl<V> Default for TrackedVec<V> {
    fn default() -> Self {
        TrackedVec {
            items: Vec::new(),
            changed: None,
        }
    }
}

/// An index as a row's key number (its 4 big-endian bytes sort as the
/// indexes do): vectors of tracked state are indexed by ids that fit in
/// `u32`.
fn index_u32(index: usize) -> u32 {
    u32::try_from(index).unwrap_or(u32::MAX)
}

impl<V> TrackedVec<V> {
    fn note(&mut self, index: usize) {
        if let Some(changed) = &mut self.changed {
            changed.insert(index_u32(index));
        }
    }

    /// Appends `value` (its index counts as changed).
    pub fn push(&mut self, value: V) {
        self.note(self.items.len());
        self.items.push(value);
    }

    /// The entry at `index`, mutable.
    pub fn get_mut(&mut self, index: usize) -> Option<&mut V> {
        if index < self.items.len() {
            self.note(index);
        }
        self.items.get_mut(index)
    }

    /// The entry at `index`, mutable, for a change that leaves what it
    /// saves as alone, as [`TrackedMap::get_mut_unchanged`] (its index is
    /// not noted).
    pub fn get_mut_unchanged(&mut self, index: usize) -> Option<&mut V> {
        self.items.get_mut(index)
    }

    /// Shows every entry to `change`, which says whether it changed it:
    /// only those count as changed.
    pub fn update_each(&mut self, mut change: impl FnMut(&mut V) -> bool) {
        for (index, item) in self.items.iter_mut().enumerate() {
            if change(item) {
                if let Some(changed) = &mut self.changed {
                    changed.insert(index_u32(index));
                }
            }
        }
    }
}

impl<V> IntoIterator for TrackedVec<V> {
    type Item = V;
    type IntoIter = std::vec::IntoIter<V>;
    fn into_iter(self) -> Self::IntoIter {
        self.items.into_iter()
    }
}

impl<V> Deref for TrackedVec<V> {
    type Target = [V];
    fn deref(&self) -> &[V] {
        &self.items
    }
}

impl<V> Index<usize> for TrackedVec<V> {
    type Output = V;
    fn index(&self, index: usize) -> &V {
        &self.items[index]
    }
}

impl<V> std::ops::IndexMut<usize> for TrackedVec<V> {
    fn index_mut(&mut self, index: usize) -> &mut V {
        self.note(index);
        &mut self.items[index]
    }
}

impl<V: Serialize + DeserializeOwned> Rows for TrackedVec<V> {
    fn track(&mut self) {
        self.changed.get_or_insert_with(FxHashSet::default);
    }

    fn mark_all(&mut self) {
        self.changed = Some((0..self.items.len()).map(index_u32).collect());
    }

    fn changes(&self, map: &'static str, out: &mut Vec<RowChange>) -> Result<(), RowError> {
        for &index in self.changed.iter().flatten() {
            let value = usize::try_from(index)
                .ok()
                .and_then(|i| self.items.get(i))
                .map(|value| write(map, value))
                .transpose()?;
            out.push(RowChange {
                map,
                key: index.to_be_bytes().to_vec(),
                value,
            });
        }
        Ok(())
    }

    fn saved(&mut self) {
        if let Some(changed) = &mut self.changed {
            changed.clear();
        }
    }

    fn load(&mut self, map: &'static str, key: &[u8], value: &[u8]) -> Result<(), RowError> {
        let index = <[u8; 4]>::try_from(key)
            .map(u32::from_be_bytes)
            .map_err(|_| RowError::Read {
                map,
                reason: format!("a key of {} bytes, not 4", key.len()),
            })?;
        if usize::try_from(index).ok() != Some(self.items.len()) {
            return Err(RowError::Read {
                map,
                reason: format!(
                    "entry {index} where entry {} was expected: rows missing",
                    self.items.len()
                ),
            });
        }
        self.items.push(read(map, value)?);
        Ok(())
    }

    fn len(&self) -> usize {
        self.items.len()
    }
}

impl<V: Serialize> Serialize for TrackedVec<V> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        if is_apart() {
            Vec::<V>::new().serialize(serializer)
        } else {
            self.items.serialize(serializer)
        }
    }
}

impl<'de, V: Deserialize<'de>> Deserialize<'de> for TrackedVec<V> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Vec::deserialize(deserializer).map(|items| TrackedVec {
            items,
            changed: None,
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn keys(changes: &[RowChange]) -> Vec<(Vec<u8>, bool)> {
        let mut keys: Vec<_> = changes
            .iter()
            .map(|c| (c.key.clone(), c.value.is_some()))
            .collect();
        keys.sort();
        keys
    }

    #[test]
    fn a_map_notes_only_what_changed_after_tracking_starts() {
        let mut map: TrackedMap<u8, u32> = TrackedMap::default();
        map.insert(1, 10);
        let mut out = Vec::new();
        map.changes("m", &mut out).unwrap();
        assert!(out.is_empty(), "nothing noted before tracking");

        map.mark_all();
        map.insert(2, 20);
        map.changes("m", &mut out).unwrap();
        assert_eq!(
            keys(&out).len(),
            2,
            "all present count once tracking starts"
        );
        map.saved();

        out.clear();
        *map.get_mut(&1).unwrap() += 1;
        assert!(map.get_mut(&9).is_none());
        map.remove(&2);
        map.retain_unchanged(|_, _| true);
        *map.get_mut_unchanged(&1).unwrap() += 0;
        map.changes("m", &mut out).unwrap();
        let one = rmp_serde::to_vec_named(&1u8).unwrap();
        let two = rmp_serde::to_vec_named(&2u8).unwrap();
        assert_eq!(keys(&out), vec![(one, true), (two, false)]);
    }

    #[test]
    fn a_key_added_and_removed_between_saves_writes_nothing() {
        let mut map: TrackedMap<u8, u32> = TrackedMap::default();
        map.insert(1, 10);
        map.mark_all();
        map.insert(2, 20);
        map.remove(&2);
        map.entry(3).or_insert(30);
        map.retain_unchanged(|key, _| *key != 3);
        let mut out = Vec::new();
        map.changes("m", &mut out).unwrap();
        let one = rmp_serde::to_vec_named(&1u8).unwrap();
        assert_eq!(
            keys(&out),
            vec![(one.clone(), true)],
            "never saved: no delete"
        );
        map.saved();

        // Saved once, a key's removal is written, even after it changed.
        out.clear();
        *map.get_mut(&1).unwrap() += 1;
        map.remove(&1);
        map.insert(4, 40);
        map.changes("m", &mut out).unwrap();
        let four = rmp_serde::to_vec_named(&4u8).unwrap();
        assert_eq!(keys(&out), vec![(one.clone(), false), (four, true)]);
        map.saved();

        // Removed, then set again before the save: written whole.
        out.clear();
        map.remove(&4);
        map.insert(4, 41);
        map.insert(1, 11);
        map.remove(&1);
        map.changes("m", &mut out).unwrap();
        let four = rmp_serde::to_vec_named(&4u8).unwrap();
        assert_eq!(keys(&out), vec![(four, true)]);
    }

    #[test]
    fn a_conditional_removal_removes_and_notes_only_what_it_removes() {
        let mut map: TrackedMap<u8, u32> = TrackedMap::default();
        map.insert(1, 10);
        map.insert(2, 20);
        map.mark_all();
        map.saved();
        assert_eq!(map.remove_if(1, |v| *v == 11), None, "kept: not as asked");
        assert_eq!(map.remove_if(3, |_| true), None, "not held");
        assert_eq!(map.remove_if(2, |v| *v == 20), Some(20));
        assert_eq!(map.len(), 1);
        let mut out = Vec::new();
        map.changes("m", &mut out).unwrap();
        let two = rmp_serde::to_vec_named(&2u8).unwrap();
        assert_eq!(keys(&out), vec![(two, false)]);
    }

    #[test]
    fn rows_load_back_into_an_equal_map_and_apart_leaves_them_out() {
        let mut map: TrackedMap<String, Vec<u16>> = TrackedMap::default();
        map.track();
        map.insert("a".into(), vec![1, 2]);
        map.insert("b".into(), vec![]);
        let mut out = Vec::new();
        map.changes("m", &mut out).unwrap();
        let mut back: TrackedMap<String, Vec<u16>> = TrackedMap::default();
        for row in &out {
            back.load("m", &row.key, row.value.as_deref().unwrap())
                .unwrap();
        }
        assert_eq!(*back, *map);

        let whole = rmp_serde::to_vec_named(&map).unwrap();
        let rest = apart(|| rmp_serde::to_vec_named(&map).unwrap());
        let whole: FxHashMap<String, Vec<u16>> = rmp_serde::from_slice(&whole).unwrap();
        let rest: FxHashMap<String, Vec<u16>> = rmp_serde::from_slice(&rest).unwrap();
        assert_eq!((whole.len(), rest.len()), (2, 0));
        assert!(!is_apart(), "apart ends with its closure");
    }

    #[test]
    fn a_vector_saves_changed_indexes_and_loads_only_in_order() {
        let mut items: TrackedVec<String> = TrackedVec::default();
        items.push("a".into());
        items.track();
        items.push("b".into());
        items[0].push('!');
        items.update_each(|item| item == "b");
        let mut out = Vec::new();
        items.changes("v", &mut out).unwrap();
        let mut changed: Vec<_> = out.iter().map(|c| c.key.clone()).collect();
        changed.sort();
        assert_eq!(changed, vec![vec![0, 0, 0, 0], vec![0, 0, 0, 1]]);

        let mut back: TrackedVec<String> = TrackedVec::default();
        let value = rmp_serde::to_vec_named("x").unwrap();
        let err = back.load("v", &[0, 0, 0, 1], &value).unwrap_err();
        assert!(err.to_string().contains("rows missing"), "{err}");
        back.load("v", &[0, 0, 0, 0], &value).unwrap();
        assert!(back.load("v", &[0, 1], &value).is_err(), "a short key");
        assert_eq!(&*back, &["x".to_string()]);
    }
}
