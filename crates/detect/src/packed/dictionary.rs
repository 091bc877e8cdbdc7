//! Packed entries compressed with a dictionary. An idle account's row is a
//! few hundred bytes of MessagePack, most of it what every row of its table
//! holds too (the layout, the domain, the fixed words of a log line): zstd
//! with a dictionary trained on the table's packed rows keeps about a third
//! of it.
//!
//! A table trains its dictionary once it has packed [`SAMPLES`] entries; a
//! small server never packs, never trains and keeps plain rows. Its first
//! rows are those of the log's first hours, shorter than what accounts hold
//! after days: after [`RETRAIN_AFTER`] more rows the table trains again on
//! a sample of them, then after twice as many, and so on (a state that
//! grows is sampled as it grows, at a cost that does not), keeping each new
//! dictionary that packs its sample at least [`RETRAIN_GAIN`] smaller (a
//! provider's accounts: 192 bytes a row with the first, 160 with the one
//! trained on a million). The newest dictionary of a table (the highest
//! id) packs its rows and writes every row saved (see [`recompressed`]); the
//! older ones still read the rows packed with them. Each compressed entry
//! names its dictionary by a small id of ours (see [`COMPRESSED`]), and
//! dictionaries are process-wide and never freed (a table keeps at most
//! [`MAX_PER_TABLE`], and a process loads those of the state it restores),
//! so a row reads back wherever it was written. `watch` saves each
//! dictionary beside the rows that need it ([`registered`]) and registers
//! them again before it loads the rows ([`register`]).

use std::cell::RefCell;
use std::sync::{PoisonError, RwLock};

use mailfuse_core::rows::RowDictionary;
use zstd::bulk::{Compressor, Decompressor};
use zstd::dict::{DecoderDictionary, EncoderDictionary};
use zstd::zstd_safe::{self, CParameter};

/// Packed rows of a table that train its dictionary…
const SAMPLES: usize = 1_000;
/// …or fewer, once they hold this many bytes.
const SAMPLE_BYTES: usize = 1 << 20;
/// Past about this size, rows of a few hundred bytes gain little.
const DICTIONARY_BYTES: usize = 16 * 1024;
/// zstd's fastest level: a few microseconds a row. Level 3 keeps 5 % less
/// but takes half as long again, which a live save of 15,000 rows feels.
///
/// A row of a few hundred bytes costs about 9,000-10,000 instructions,
/// most of them fixed per frame (sequence tables 4,100, frame set-up
/// 1,900, literals 1,100; the dictionary matching 3,900): measured on
/// 20,000 real rows each of a provider's accounts and a botnet's guessers,
/// uncompressed literals save 5-6 % for rows 7-17 % bigger, level -1 3-5 %
/// for 6-18 % bigger, level -5 14 % for 28-36 % bigger; forcing the
/// dictionary attached changes nothing (it is already), and hash, chain
/// and window logs are the prepared dictionary's. Memory is the tighter
/// budget: none is used.
const LEVEL: i32 = 1;
/// Rows a table packs with a dictionary before it first trains again;
/// each later attempt comes after twice as many rows as the one before.
const RETRAIN_AFTER: usize = 100_000;
/// Dictionaries a table keeps at most: past them it trains no more.
const MAX_PER_TABLE: usize = 8;
/// A new dictionary is kept when it packs the sample at most this share of
/// what the current one does.
const RETRAIN_GAIN: f64 = 0.95;
/// The first byte of a compressed entry, one MessagePack never uses (so a
/// plain entry never starts with it); then the id of its dictionary (a
/// MessagePack integer: one byte, for the first 127), then the zstd frame
/// without its magic number and without the dictionary's id, four bytes
/// each that every row would repeat.
const COMPRESSED: u8 = 0xC1;
/// The first bytes of every zstd frame.
const FRAME_MAGIC: [u8; 4] = [0x28, 0xB5, 0x2F, 0xFD];
/// The first bytes of a zstd dictionary; zstd's id for it follows (which
/// frames written before [`COMPRESSED`] name it by).
const DICTIONARY_MAGIC: [u8; 4] = [0x37, 0xA4, 0x30, 0xEC];
/// A packed row never grows past this; a frame claiming more is corrupt.
const MAX_ROW_BYTES: u64 = 16 << 20;

/// A saved dictionary that cannot be used.
#[derive(Debug, thiserror::Error)]
pub(crate) enum DictionaryError {
    /// Its bytes are not a zstd dictionary.
    #[error("row dictionary {id} is damaged")]
    Damaged {
        /// The id it was saved under.
        id: u32,
    },
    /// Another dictionary already has its id.
    #[error("two different row dictionaries have the id {id}")]
    Clash {
        /// The id both have.
        id: u32,
    },
}

/// A dictionary ready for use, leaked: see the module's comment.
struct Dictionary {
    saved: RowDictionary,
    encoder: EncoderDictionary<'static>,
    decoder: DecoderDictionary<'static>,
}

/// What a table packed while it had no dictionary yet, to train one on.
struct Learning {
    table: &'static str,
    samples: Vec<u8>,
    sizes: Vec<usize>,
    /// Training failed (samples too alike or too few): rows stay plain.
    failed: bool,
}

/// A sample of what a table packed lately, to train a better dictionary
/// on.
struct Drift {
    table: &'static str,
    /// Rows packed since the table first had a dictionary in this process.
    packed: usize,
    /// When `packed` reaches this, the table trains again…
    next: usize,
    /// …on one in this many of the rows packed until then.
    stride: usize,
    samples: Vec<u8>,
    sizes: Vec<usize>,
}

struct Registry {
    /// In the order registered; the one of a table with the highest id
    /// compresses its rows.
    dictionaries: Vec<&'static Dictionary>,
    learning: Vec<Learning>,
}

static REGISTRY: RwLock<Registry> = RwLock::new(Registry {
    dictionaries: Vec::new(),
    learning: Vec::new(),
});

thread_local! {
    /// zstd contexts by dictionary id: made once per thread and reused.
    static COMPRESSORS: RefCell<Vec<(u32, Compressor<'static>)>> = const { RefCell::new(Vec::new()) };
    static DECOMPRESSORS: RefCell<Vec<(u32, Decompressor<'static>)>> = const { RefCell::new(Vec::new()) };
    /// Compressed into, then copied out at its size; and a frame given its
    /// magic number back, to decompress.
    static SCRATCH: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
    /// What the tables packed lately, to train again on (a detector packs
    /// on its own thread).
    static DRIFTS: RefCell<Vec<Drift>> = const { RefCell::new(Vec::new()) };
}

/// Whether `bytes` are a compressed entry rather than plain MessagePack.
pub(crate) fn is_compressed(bytes: &[u8]) -> bool {
    bytes.first() == Some(&COMPRESSED)
}

/// A compressed entry without its first byte, which every one has: what
/// its row holds.
pub(crate) fn unmarked(compressed: &[u8]) -> &[u8] {
    compressed.strip_prefix(&[COMPRESSED]).unwrap_or(compressed)
}

/// The compressed entry a row holds [`unmarked`].
pub(crate) fn marked(unmarked: &[u8]) -> Box<[u8]> {
    let mut compressed = Vec::with_capacity(1 + unmarked.len());
    compressed.push(COMPRESSED);
    compressed.extend_from_slice(unmarked);
    compressed.into_boxed_slice()
}

/// The id of the dictionary a compressed entry names, and its frame
/// without the magic number.
fn parts(compressed: &[u8]) -> Option<(u32, &[u8])> {
    let mut rest = compressed.strip_prefix(&[COMPRESSED])?;
    let id = rmp::decode::read_int(&mut rest).ok()?;
    Some((id, rest))
}

/// Whether the dictionary a compressed entry names is registered.
pub(crate) fn can_read(compressed: &[u8]) -> bool {
    parts(compressed).is_some_and(|(id, _)| find(id).is_some())
}

/// `plain`, a packed row of `table`, compressed with the table's
/// dictionary; `None` while it has none (`plain` then helps train it) or
/// when compressing does not make it smaller.
pub(crate) fn compress(table: &'static str, plain: &[u8]) -> Option<Box<[u8]>> {
    let dictionary = match current(table) {
        Some(dictionary) => retrained(table, plain).unwrap_or(dictionary),
        None => learn(table, plain)?,
    };
    compress_with(dictionary, plain)
}

/// `compressed`, an entry of `table` compressed with an older dictionary
/// than the table's newest, compressed again with the newest; `None` if it
/// is already, or does not read. Not a packing: it trains nothing.
pub(crate) fn recompressed(table: &str, compressed: &[u8]) -> Option<Box<[u8]>> {
    let newest = current(table)?;
    if parts(compressed)?.0 == newest.saved.id {
        return None;
    }
    let mut plain = Vec::new();
    if !decompress(compressed, &mut plain) {
        return None;
    }
    compress_with(newest, &plain)
}

fn compress_with(dictionary: &'static Dictionary, plain: &[u8]) -> Option<Box<[u8]>> {
    let id = dictionary.saved.id;
    COMPRESSORS.with_borrow_mut(|compressors| {
        let index = match compressors.iter().position(|(known, _)| *known == id) {
            Some(index) => index,
            None => {
                compressors.push((id, compressor(dictionary).ok()?));
                compressors.len() - 1
            }
        };
        let compressor = &mut compressors[index].1;
        SCRATCH.with_borrow_mut(|scratch| {
            scratch.clear();
            scratch.reserve(zstd_safe::compress_bound(plain.len()));
            compressor.compress_to_buffer(plain, scratch).ok()?;
            let frame = scratch.strip_prefix(&FRAME_MAGIC)?;
            // The marker and the id (at most 1 + 5 bytes), then the frame:
            // sized exactly, one allocation kept as it is.
            let mut header = [COMPRESSED; 6];
            let mut id_bytes = &mut header[1..];
            rmp::encode::write_uint(&mut id_bytes, u64::from(id)).ok()?;
            let header_len = 6 - id_bytes.len();
            let mut compressed = Vec::with_capacity(header_len + frame.len());
            compressed.extend_from_slice(&header[..header_len]);
            compressed.extend_from_slice(frame);
            (compressed.len() < plain.len()).then(|| compressed.into_boxed_slice())
        })
    })
}

fn compressor(dictionary: &'static Dictionary) -> std::io::Result<Compressor<'static>> {
    let mut compressor = Compressor::with_prepared_dictionary(&dictionary.encoder)?;
    // Rows are checked by reading them back; their size is kept so that
    // reading allocates once; the entry names the dictionary.
    compressor.set_parameter(CParameter::ChecksumFlag(false))?;
    compressor.set_parameter(CParameter::ContentSizeFlag(true))?;
    compressor.set_parameter(CParameter::DictIdFlag(false))?;
    Ok(compressor)
}

/// Decompresses a compressed entry into `out` (replacing what it held);
/// false if it does not read (a dictionary not registered, damaged bytes).
pub(crate) fn decompress(compressed: &[u8], out: &mut Vec<u8>) -> bool {
    let Some((id, frame)) = parts(compressed) else {
        return false;
    };
    let Some(dictionary) = find(id) else {
        return false;
    };
    SCRATCH.with_borrow_mut(|whole| {
        whole.clear();
        whole.extend_from_slice(&FRAME_MAGIC);
        whole.extend_from_slice(frame);
        decompress_frame(dictionary, whole, out)
    })
}

/// Decompresses a whole zstd frame that names its dictionary by zstd's id
/// (as rows did before [`COMPRESSED`]) into `out`; false if it does not
/// read.
pub(crate) fn decompress_named(frame: &[u8], out: &mut Vec<u8>) -> bool {
    let Some(named) = zstd_safe::get_dict_id_from_frame(frame) else {
        return false;
    };
    let dictionary = read_registry()
        .dictionaries
        .iter()
        .find(|dictionary| zstd_id(&dictionary.saved.bytes) == Some(named.get()))
        .copied();
    dictionary.is_some_and(|dictionary| decompress_frame(dictionary, frame, out))
}

/// The id zstd's header of a dictionary gives it.
fn zstd_id(dictionary: &[u8]) -> Option<u32> {
    zstd_safe::get_dict_id_from_dict(dictionary).map(|id| id.get())
}

fn decompress_frame(dictionary: &'static Dictionary, frame: &[u8], out: &mut Vec<u8>) -> bool {
    let size = match zstd_safe::get_frame_content_size(frame) {
        Ok(Some(size)) if size <= MAX_ROW_BYTES => size as usize,
        _ => return false,
    };
    let id = dictionary.saved.id;
    DECOMPRESSORS.with_borrow_mut(|decompressors| {
        let index = match decompressors.iter().position(|(known, _)| *known == id) {
            Some(index) => index,
            None => match Decompressor::with_prepared_dictionary(&dictionary.decoder) {
                Ok(decompressor) => {
                    decompressors.push((id, decompressor));
                    decompressors.len() - 1
                }
                Err(_) => return false,
            },
        };
        out.clear();
        out.reserve(size);
        decompressors[index]
            .1
            .decompress_to_buffer(frame, out)
            .is_ok()
    })
}

/// Every dictionary registered in this process, to be saved beside the
/// rows compressed with them.
pub(crate) fn registered() -> Vec<RowDictionary> {
    read_registry()
        .dictionaries
        .iter()
        .map(|dictionary| dictionary.saved.clone())
        .collect()
}

/// Makes a saved dictionary usable for reading rows (and, for a table
/// without one yet, for compressing its rows). Registering one again is
/// harmless.
pub(crate) fn register(saved: &RowDictionary) -> Result<(), DictionaryError> {
    let id = saved.id;
    let valid = saved.bytes.starts_with(&DICTIONARY_MAGIC) && zstd_id(&saved.bytes).is_some();
    if !valid {
        return Err(DictionaryError::Damaged { id });
    }
    let mut registry = write_registry();
    match registry.dictionaries.iter().find(|d| d.saved.id == id) {
        Some(known) if known.saved.bytes == saved.bytes => Ok(()),
        Some(_) => Err(DictionaryError::Clash { id }),
        None => {
            registry.dictionaries.push(leak(saved.clone()));
            Ok(())
        }
    }
}

fn leak(saved: RowDictionary) -> &'static Dictionary {
    Box::leak(Box::new(Dictionary {
        encoder: EncoderDictionary::copy(&saved.bytes, LEVEL),
        decoder: DecoderDictionary::copy(&saved.bytes),
        saved,
    }))
}

fn find(id: u32) -> Option<&'static Dictionary> {
    read_registry()
        .dictionaries
        .iter()
        .find(|dictionary| dictionary.saved.id == id)
        .copied()
}

fn current(table: &str) -> Option<&'static Dictionary> {
    read_registry()
        .dictionaries
        .iter()
        .filter(|dictionary| dictionary.saved.table == table)
        .max_by_key(|dictionary| dictionary.saved.id)
        .copied()
}

/// Samples `plain`, a row `table` packs, and once the sample is complete
/// trains a dictionary on it: the new one if it packs the sample smaller
/// enough than the table's newest (registered, with an id above the
/// table's others).
fn retrained(table: &'static str, plain: &[u8]) -> Option<&'static Dictionary> {
    let (samples, sizes) = DRIFTS.with_borrow_mut(|drifts| {
        let index = match drifts.iter().position(|d| d.table == table) {
            Some(index) => index,
            None => {
                drifts.push(Drift {
                    table,
                    packed: 0,
                    next: RETRAIN_AFTER,
                    stride: RETRAIN_AFTER / SAMPLES,
                    samples: Vec::new(),
                    sizes: Vec::new(),
                });
                drifts.len() - 1
            }
        };
        let drift = &mut drifts[index];
        drift.packed += 1;
        if drift.packed % drift.stride == 0 {
            drift.samples.extend_from_slice(plain);
            drift.sizes.push(plain.len());
        }
        if drift.packed < drift.next {
            return None;
        }
        // The next sample spans as many rows as were packed until now.
        drift.stride = (drift.packed / SAMPLES).max(1);
        drift.next = drift.packed.saturating_mul(2);
        Some((
            std::mem::take(&mut drift.samples),
            std::mem::take(&mut drift.sizes),
        ))
    })?;
    let current = current(table)?;
    if read_registry()
        .dictionaries
        .iter()
        .filter(|dictionary| dictionary.saved.table == table)
        .count()
        >= MAX_PER_TABLE
    {
        return None;
    }
    let bytes = zstd::dict::from_continuous(&samples, &sizes, DICTIONARY_BYTES).ok()?;
    let packed_with = |dictionary: &[u8]| -> Option<usize> {
        let mut compressor = zstd::bulk::Compressor::with_dictionary(LEVEL, dictionary).ok()?;
        let mut total = 0;
        let mut start = 0;
        for size in &sizes {
            total += compressor
                .compress(samples.get(start..start + size)?)
                .ok()?
                .len();
            start += size;
        }
        Some(total)
    };
    let before = packed_with(&current.saved.bytes)?;
    let after = packed_with(&bytes)?;
    if after as f64 > before as f64 * RETRAIN_GAIN {
        return None;
    }
    let mut registry = write_registry();
    Some(adopt(&mut registry, table, bytes))
}

/// Registers `bytes`, a dictionary trained for `table`, under the id after
/// every other (so a table's newest has its highest id, and ids stay
/// small).
fn adopt(registry: &mut Registry, table: &str, bytes: Vec<u8>) -> &'static Dictionary {
    let id = registry
        .dictionaries
        .iter()
        .map(|dictionary| dictionary.saved.id)
        .max()
        .unwrap_or(0)
        .saturating_add(1);
    let dictionary = leak(RowDictionary {
        id,
        table: table.to_string(),
        bytes,
    });
    registry.dictionaries.push(dictionary);
    dictionary
}

/// Keeps `plain` to train `table`'s dictionary, and trains it once there
/// are samples enough.
fn learn(table: &'static str, plain: &[u8]) -> Option<&'static Dictionary> {
    let mut registry = write_registry();
    if let Some(dictionary) = registry
        .dictionaries
        .iter()
        .find(|dictionary| dictionary.saved.table == table)
    {
        return Some(dictionary);
    }
    let index = match registry.learning.iter().position(|l| l.table == table) {
        Some(index) => index,
        None => {
            registry.learning.push(Learning {
                table,
                samples: Vec::new(),
                sizes: Vec::new(),
                failed: false,
            });
            registry.learning.len() - 1
        }
    };
    let learning = &mut registry.learning[index];
    if learning.failed {
        return None;
    }
    learning.samples.extend_from_slice(plain);
    learning.sizes.push(plain.len());
    if learning.sizes.len() < SAMPLES && learning.samples.len() < SAMPLE_BYTES {
        return None;
    }
    let trained = zstd::dict::from_continuous(&learning.samples, &learning.sizes, DICTIONARY_BYTES);
    let Ok(bytes) = trained else {
        learning.failed = true;
        learning.samples = Vec::new();
        learning.sizes = Vec::new();
        return None;
    };
    registry.learning.swap_remove(index);
    Some(adopt(&mut registry, table, bytes))
}

fn read_registry() -> std::sync::RwLockReadGuard<'static, Registry> {
    // The registry is consistent between statements: a panic elsewhere
    // leaves nothing half done in it.
    REGISTRY.read().unwrap_or_else(PoisonError::into_inner)
}

fn write_registry() -> std::sync::RwLockWriteGuard<'static, Registry> {
    REGISTRY.write().unwrap_or_else(PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Rows alike as a table's are, each a little different.
    fn row(n: usize) -> Vec<u8> {
        format!(
            "u{n}@mail.example.org Nov  2 07:10:{:02} mail postfix/submission/smtpd[{}]: client=unknown[81.1.{}.{}], sasl_method=LOGIN, sasl_username=u{n}@mail.example.org",
            n % 60,
            1000 + n * 7,
            n % 250,
            n % 200
        )
        .into_bytes()
    }

    #[test]
    fn a_table_trains_once_then_compresses_rows_that_read_back() {
        const TABLE: &str = "dictionary_test_rows";
        let mut trained_at = None;
        for n in 0..SAMPLES + 10 {
            let plain = row(n);
            if let Some(compressed) = compress(TABLE, &plain) {
                trained_at.get_or_insert(n);
                assert!(is_compressed(&compressed) && can_read(&compressed));
                assert!(
                    compressed.len() * 2 < plain.len(),
                    "{} of {}",
                    compressed.len(),
                    plain.len()
                );
                let mut out = Vec::new();
                assert!(decompress(&compressed, &mut out));
                assert_eq!(out, plain);
            } else {
                assert!(!is_compressed(&plain));
            }
        }
        assert_eq!(trained_at, Some(SAMPLES - 1), "trained on the last sample");
        let saved = registered()
            .into_iter()
            .find(|d| d.table == TABLE)
            .expect("registered");
        // The entry names its dictionary in a byte, and zstd's frame loses
        // its magic number and its own naming of the dictionary.
        let plain = row(7);
        let compressed = compress(TABLE, &plain).expect("compressed");
        assert_eq!(parts(&compressed).map(|(id, _)| id), Some(saved.id));
        assert!(saved.id < 128, "a one-byte id: {}", saved.id);
        let whole = zstd::bulk::Compressor::with_dictionary(LEVEL, &saved.bytes)
            .and_then(|mut zstd| zstd.compress(&plain))
            .expect("zstd's frame");
        assert!(
            compressed.len() + 4 <= whole.len(),
            "{} then {}",
            whole.len(),
            compressed.len()
        );
        // That frame, as rows held it before, reads too.
        let mut out = Vec::new();
        assert!(decompress_named(&whole, &mut out) && out == plain);

        register(&saved).expect("registering the same again is harmless");
        let mut other = saved.clone();
        other.bytes[100] ^= 1;
        assert!(matches!(
            register(&other),
            Err(DictionaryError::Clash { .. })
        ));
        other.bytes[0] ^= 1;
        assert!(matches!(
            register(&other),
            Err(DictionaryError::Damaged { .. })
        ));
    }

    /// Rows that grew since the dictionary was trained: more lines each.
    fn grown_row(n: usize) -> Vec<u8> {
        let mut grown = row(n);
        for stream in 1..4 {
            grown.extend_from_slice(
                format!(
                    " Nov  3 1{stream}:2{}:00 mail postfix/smtp[{}]: {:X}: to=<r{}@elsewhere.example.net>, relay=mx.elsewhere.example.net[198.51.100.{}]:25, status=sent (250 2.0.0 Ok)",
                    n % 10,
                    2000 + n * 3,
                    n * 7919,
                    n % 97,
                    n % 200
                )
                .as_bytes(),
            );
        }
        grown
    }

    #[test]
    fn a_table_trains_again_on_rows_that_grew_and_reads_both() {
        const TABLE: &str = "dictionary_test_grown_rows";
        // In order: each row packed feeds the training.
        let mut first = None;
        for n in 0..SAMPLES {
            first = compress(TABLE, &row(n)).or(first);
        }
        let first = first.expect("the first dictionary was trained");
        let first_id = current(TABLE).map(|d| d.saved.id);
        let before = compress(TABLE, &grown_row(1)).expect("compressed").len();
        for n in 0..RETRAIN_AFTER {
            compress(TABLE, &grown_row(n));
        }
        let second_id = current(TABLE).map(|d| d.saved.id);
        assert!(second_id > first_id, "{second_id:?} after {first_id:?}");
        let after = compress(TABLE, &grown_row(1)).expect("compressed");
        assert!(
            after.len() * 10 < before * 9,
            "{} then {before}",
            after.len()
        );
        let mut out = Vec::new();
        assert!(decompress(&first, &mut out) && out == row(SAMPLES - 1));
        assert!(decompress(&after, &mut out) && out == grown_row(1));
        // Rows are saved with the newest.
        let again = recompressed(TABLE, &first).expect("compressed with the newest");
        assert_eq!(parts(&again).map(|(id, _)| id), second_id);
        assert!(decompress(&again, &mut out) && out == row(SAMPLES - 1));
        assert!(recompressed(TABLE, &after).is_none(), "already the newest");
        // It trains again after twice as many rows.
        let next = DRIFTS.with_borrow(|drifts| {
            drifts
                .iter()
                .find(|d| d.table == TABLE)
                .map(|d| (d.next, d.stride))
        });
        assert_eq!(
            next,
            Some((2 * RETRAIN_AFTER, RETRAIN_AFTER / SAMPLES)),
            "the next sample spans the next {RETRAIN_AFTER} rows"
        );
        let tables: Vec<RowDictionary> = registered()
            .into_iter()
            .filter(|d| d.table == TABLE)
            .collect();
        assert_eq!(tables.len(), 2, "both saved: rows of each still read");
    }

    #[test]
    fn frames_that_do_not_read_are_refused_not_trusted() {
        let mut out = Vec::new();
        // A dictionary id nobody registered, then a frame's first bytes.
        let unknown = [COMPRESSED, 0xce, 0x7f, 0, 0, 0, 0x20, 0x10];
        assert!(is_compressed(&unknown));
        assert!(!can_read(&unknown) && !decompress(&unknown, &mut out));
        assert!(!can_read(&[COMPRESSED]) && !decompress(&[COMPRESSED, 1], &mut out));
        let named = [0x28, 0xB5, 0x2F, 0xFD, 0x23, 0x07, 0x00, 0x00, 0x00, 0x10];
        assert!(!decompress_named(&named, &mut out));
        assert!(!is_compressed(b"\x92\x01\x02") && !decompress(b"\x92\x01\x02", &mut out));
    }
}
