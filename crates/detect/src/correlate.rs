//! Joining the lines of one message by queue id.
//!
//! A message shows up in several lines (Kerio: one `Recv:` then a `Sent:` per
//! recipient; Postfix: `smtpd`, `qmgr`, then one delivery line per
//! recipient). The table keeps what is needed to attribute each recipient's
//! fate to the account and IP that submitted the message. Memory is bounded by
//! the messages still open: an entry is dropped once every recipient has its
//! final fate, or when the server says the message is gone, or at the latest
//! once it is older than the configured time to live (deliveries after that
//! are counted as orphans).
//!
//! A content filter (amavis, spampd, an rspamd proxy behind Postfix's
//! `content_filter`) takes the message over loopback and re-injects it
//! under a new queue id (`status=sent (250 … queued as NEW)`): that hop is
//! no delivery. The new id becomes an alias of the original, so the
//! original (the authenticated submission) owns the final deliveries and
//! bounces, and the re-injected copy is not a second message. The copy
//! must already be in the table (filters re-inject before they answer,
//! and the copy came over loopback with no login; such a message is kept
//! for the settled grace after its `removed`, as a fast relay may deliver
//! the copy before the filter's answer is logged); a filter answering
//! before its copy is logged is not recognised (the hop then counts as a
//! delivery, and the copy as a message of its own).

use std::collections::VecDeque;
use std::hash::{Hash, Hasher};
use std::net::IpAddr;

use mailfuse_core::net::parse_ip;
use mailfuse_core::rows::{Rows, RowsOf, TrackedMap};
use mailfuse_core::slab_map::{Handle, SlabMap};
use mailfuse_core::{Delivery, DeliveryStatus, Timestamp};
use memchr::{memchr, memmem};
use rustc_hash::FxHasher;
use serde::{Deserialize, Serialize};
use smallvec::SmallVec;

use crate::account_id::AccountId;

/// Most recipients remembered per message for de-duplication; a larger
/// message still counts each delivery line, without de-duplication.
const MAX_TRACKED_RECIPIENTS: usize = 4096;

/// What the table knows of one message still in flight.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct OpenMessage {
    /// The time of its first line: the time to live counts from here.
    pub first_seen: Timestamp,
    /// The time of its latest line.
    pub last_seen: Timestamp,
    /// The authenticated account that submitted it (the SASL login of
    /// Postfix's `smtpd` line, Kerio's `User:`); `None` for mail that came
    /// in unauthenticated, which no account detector counts.
    pub account: Option<AccountId>,
    /// The client IP that submitted it, from the first line naming one; once
    /// the message counts, the IP it was attributed to (webmail's `0.0.0.0`
    /// resolved to the IP of the account's webmail login of the last day, if
    /// any), so its recipients' fates land in the same per-IP stream.
    pub ip: Option<IpAddr>,
    /// The message was counted as submitted (its envelope sender is known).
    pub counted: bool,
    /// How many recipients the server said the message has (Postfix `nrcpt`).
    pub expected_recipients: Option<u32>,
    /// Recipients seen so far: a hash of the address whose two low bits are
    /// [`FAILED`] and [`SETTLED`]. Most messages have one or two: those stay
    /// inline, unallocated.
    recipients: SmallVec<[u64; 2]>,
    /// More recipients than [`MAX_TRACKED_RECIPIENTS`] were seen.
    overflowed: bool,
    /// The line that named the login, kept until the message counts (when
    /// a later line gives its sender) to serve as evidence.
    pub first_line: Option<Box<[u8]>>,
    /// Recipients were handed to a content filter: their fates come under
    /// the re-injected queue id, so the server's `removed` of this id does
    /// not end the message.
    #[serde(default)]
    pub filtered: bool,
    /// Recipients counted for the message so far: the most of the server's
    /// count (`nrcpt`, known before any delivery, so a backed-up queue's
    /// recipients still count) and the distinct recipients seen.
    #[serde(default)]
    pub counted_recipients: u32,
    /// A line named the client that submitted it (Postfix `smtpd`'s
    /// `client=`, `pickup`'s `uid=`).
    #[serde(default)]
    pub arrival_seen: bool,
    /// Not a submission: a notice the server generated, an
    /// address-verification probe, or a retry of mail queued before the log
    /// began (its queue pass came with no arrival). Never counted.
    #[serde(default)]
    pub not_submission: bool,
    /// Its number in `simulate`'s sending events ([`crate::sends`]), 0
    /// when they are not collected; not stored.
    #[serde(skip)]
    pub send_number: u64,
}

/// Recipient flag: the recipient failed permanently.
const FAILED: u64 = 0b01;
/// Recipient flag: the recipient's fate is final (delivered or failed).
const SETTLED: u64 = 0b10;
const FLAGS: u64 = FAILED | SETTLED;

/// What a newly seen recipient line changed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RecipientChange {
    /// The recipient raises the message's count: not seen before, and not
    /// already counted by the server's `nrcpt`.
    pub new_recipient: bool,
    /// The recipient's address is named for the first time (also when
    /// `nrcpt` counted it already): whether it is external is known now.
    pub new_address: bool,
    /// The recipient failed permanently for the first time.
    pub new_failure: bool,
}

impl RecipientChange {
    /// Whether the line told anything new of its recipient: a line that
    /// only names a recipient again (Kerio's delivery lines repeat the
    /// `Recv:` line's) leaves every count and window as it was.
    pub fn is_news(self) -> bool {
        self.new_recipient || self.new_address || self.new_failure
    }
}

impl OpenMessage {
    /// Records `recipient` and, from a delivery line, its `status`
    /// (`None`: a submission line naming it).
    pub fn note_recipient(
        &mut self,
        recipient: &[u8],
        status: Option<DeliveryStatus>,
    ) -> RecipientChange {
        let flags = match status {
            None | Some(DeliveryStatus::Deferred) => 0,
            Some(DeliveryStatus::Delivered) => SETTLED,
            Some(DeliveryStatus::Failed) => SETTLED | FAILED,
        };
        let key = recipient_hash(recipient) & !FLAGS;
        if let Some(entry) = self.recipients.iter_mut().find(|k| **k & !FLAGS == key) {
            let new_failure = flags & FAILED != 0 && *entry & FAILED == 0;
            *entry |= flags;
            return RecipientChange {
                new_recipient: false,
                new_address: false,
                new_failure,
            };
        }
        if self.recipients.len() < MAX_TRACKED_RECIPIENTS {
            self.recipients.push(key | flags);
        } else {
            self.overflowed = true;
        }
        RecipientChange {
            new_recipient: self.overflowed || self.one_more_recipient(),
            new_address: true,
            new_failure: flags & FAILED != 0,
        }
    }

    /// A recipient was first seen: whether it raises the count (it does not
    /// when the server's `nrcpt` already counted it).
    fn one_more_recipient(&mut self) -> bool {
        let seen = self.recipient_count();
        let more = seen > self.counted_recipients;
        self.counted_recipients = self.counted_recipients.max(seen);
        more
    }

    /// The server says the message has `n` recipients: how many more than
    /// already counted that makes.
    pub fn count_recipients_up_to(&mut self, n: u32) -> u32 {
        let more = n.saturating_sub(self.counted_recipients);
        self.counted_recipients += more;
        more
    }

    /// Distinct recipients seen so far.
    pub fn recipient_count(&self) -> u32 {
        self.recipients.len() as u32
    }

    /// Distinct recipients that failed permanently so far.
    pub fn failed_count(&self) -> u32 {
        self.recipients.iter().filter(|k| *k & FAILED != 0).count() as u32
    }

    /// Came in over loopback without a login: may be a content filter's
    /// re-injected copy.
    pub fn is_possible_copy(&self) -> bool {
        self.account.is_none() && self.ip.is_some_and(|ip| ip.is_loopback())
    }

    /// Every recipient has its final fate: the server is done with the
    /// message. (Kerio names all recipients in `Recv:` lines before any
    /// `Sent:`; Postfix gives their number, `nrcpt`.)
    pub fn is_settled(&self) -> bool {
        let all_named = self
            .expected_recipients
            .is_none_or(|n| self.recipients.len() >= n as usize);
        !self.overflowed
            && all_named
            && !self.recipients.is_empty()
            && self.recipients.iter().all(|k| k & SETTLED != 0)
    }
}

/// The queue id a content filter re-injected the message under, when
/// `delivery` is the hop into the filter: handed over to a loopback relay
/// (`relay=127.0.0.1[127.0.0.1]:10024`) that accepted it with `queued as
/// ID`. A remote server's `queued as` names that server's queue: not
/// followed.
pub fn filter_hop<'a>(delivery: &Delivery<'a>) -> Option<&'a [u8]> {
    if delivery.status != DeliveryStatus::Delivered {
        return None;
    }
    let relay = delivery.relay?;
    // A plain scan: relays are short (Kerio's is a bare IP, with no `[`),
    // shorter than what pays for `memchr`'s call.
    let open = relay.iter().position(|&b| b == b'[')?;
    let inside = relay.get(open + 1..)?;
    // A loopback address is written `127.…` or, in IPv6, starts with `0` or
    // `:`: a socket (`[private/dovecot-lmtp]`) or a remote host's address
    // is ruled out before it is looked for its end and parsed.
    if !(inside.starts_with(b"127.") || matches!(inside.first(), Some(b'0' | b':'))) {
        return None;
    }
    let ip = parse_ip(inside.get(..memchr(b']', inside)?)?)?;
    if !ip.is_loopback() {
        return None;
    }
    let detail = delivery.detail;
    let start = memmem::rfind(detail, b"queued as ")? + b"queued as ".len();
    let id = detail.get(start..)?;
    let end = id
        .iter()
        .position(|b| !b.is_ascii_alphanumeric())
        .unwrap_or(id.len());
    let id = id.get(..end)?;
    (!id.is_empty()).then_some(id)
}

/// What joining a re-injected message to its original changed in counts
/// already made for the re-injected one.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Merged {
    /// The re-injected copy had been counted as a message of its own.
    pub was_counted: bool,
    /// Recipients counted for the copy, to uncount (the original counts
    /// its own).
    pub uncounted_recipients: u32,
    /// Its recipients that raise the original's count.
    pub new_recipients: u32,
    /// Its permanent failures the original did not have yet.
    pub new_failures: u32,
}

/// Case-insensitive hash of an address (mail domains are case-insensitive,
/// and local parts are in practice).
///
/// Eight bytes at a time: an address is hashed at every recipient line.
/// (Before 0.2 it went byte by byte: a message open across the upgrade may
/// count a recipient named before it once more.)
fn recipient_hash(address: &[u8]) -> u64 {
    let mut h = FxHasher::default();
    let mut chunks = address.chunks_exact(8);
    for chunk in &mut chunks {
        let mut eight = [0u8; 8];
        eight.copy_from_slice(chunk);
        h.write_u64(ascii_lowercase_word(u64::from_le_bytes(eight)));
    }
    h.write_u64(ascii_lowercase_word(le_word(chunks.remainder())));
    h.write_usize(address.len());
    h.finish()
}

/// Up to eight bytes as a little-endian word, zero-padded: what copying
/// them into a zeroed `[u8; 8]` gives, without the call to `memcpy` a
/// length known only at run time costs (at every recipient line). Four to
/// seven bytes are two overlapping four-byte loads, fewer one byte at a
/// time; the overlap ORs a byte with itself.
fn le_word(bytes: &[u8]) -> u64 {
    if let Some(eight) = bytes.first_chunk::<8>() {
        return u64::from_le_bytes(*eight);
    }
    if let (Some(low), Some(high)) = (bytes.first_chunk::<4>(), bytes.last_chunk::<4>()) {
        let high_shift = 8 * (bytes.len() - 4);
        return u64::from(u32::from_le_bytes(*low))
            | u64::from(u32::from_le_bytes(*high)) << high_shift;
    }
    match *bytes {
        [a] => u64::from(a),
        [a, b] => u64::from(a) | u64::from(b) << 8,
        [a, b, c] => u64::from(a) | u64::from(b) << 8 | u64::from(c) << 16,
        _ => 0,
    }
}

/// `word`'s eight bytes with `A`–`Z` lower-cased and every other byte
/// left alone (the bytes' own `to_ascii_lowercase`, without a loop).
fn ascii_lowercase_word(word: u64) -> u64 {
    const LOW7: u64 = 0x7f7f_7f7f_7f7f_7f7f;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    const ONES: u64 = 0x0101_0101_0101_0101;
    let low = word & LOW7;
    // The high bit of each byte: set when the byte's low 7 bits are ≥ 'A',
    // resp. > 'Z'; no carry crosses bytes, as each sum stays below 0x100.
    let from_a = low + ONES * (0x80 - u64::from(b'A'));
    let past_z = low + ONES * (0x80 - u64::from(b'Z') - 1);
    let upper = (from_a ^ past_z) & !word & HIGH;
    word | (upper >> 2)
}

/// A queue id as a fixed-size value: hashing and comparing it touches no
/// heap memory and no byte loop, which matters at several lookups per log
/// line.
///
/// Ids of up to 31 bytes (every format known: Kerio 17, Postfix ≤ 17, Exim
/// ≤ 23) are stored as they are, zero-padded, with their length in the last
/// byte; a longer one is reduced to two independent 64-bit hashes, marked by
/// a length byte no real id has. Queue ids are each mail server's own:
/// `host` tells apart the servers sending to one `watch` (0: its own files;
/// left out of the saved key, which is then the key saved before hosts
/// were). Saved as `{len, bytes, host}` ([`SavedQueueKey`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(from = "SavedQueueKey", into = "SavedQueueKey")]
pub struct QueueKey {
    /// The id's bytes then its length, as four words compared and hashed whole.
    words: [u64; 4],
    /// The mail server's number, held in a whole word: as a `u32` the key
    /// had four bytes of padding, and copying the key (as every look-up
    /// does) read the number and the padding in one 8-byte load from the
    /// 4-byte store that had just written the number, a load the CPU
    /// cannot forward and waits for.
    host: u64,
}

impl Hash for QueueKey {
    fn hash<H: Hasher>(&self, state: &mut H) {
        let [a, b, c, d] = self.words;
        // Folded to one word: the hashers in use take a word per step.
        state.write_u64(a ^ b.rotate_left(17) ^ c.rotate_left(31) ^ d.rotate_left(47));
        state.write_u64(self.host);
    }
}

/// How a [`QueueKey`] is saved (the shape it had before it was held as words).
#[derive(Serialize, Deserialize)]
struct SavedQueueKey {
    len: u8,
    bytes: [u8; 31],
    #[serde(default, skip_serializing_if = "is_local")]
    host: u32,
}

/// Whether `host` is `watch`'s own files.
fn is_local(host: &u32) -> bool {
    *host == 0
}

impl From<SavedQueueKey> for QueueKey {
    fn from(saved: SavedQueueKey) -> Self {
        let mut all = [0u8; 32];
        all[..31].copy_from_slice(&saved.bytes);
        all[31] = saved.len;
        QueueKey::from_bytes(all, saved.host)
    }
}

impl From<QueueKey> for SavedQueueKey {
    fn from(key: QueueKey) -> Self {
        let mut all = [0u8; 32];
        for (chunk, word) in all.chunks_exact_mut(8).zip(key.words) {
            chunk.copy_from_slice(&word.to_le_bytes());
        }
        let [bytes @ .., len] = all;
        SavedQueueKey {
            len,
            bytes,
            // Made from a `u32` (see `QueueKey::on`).
            host: key.host as u32,
        }
    }
}

impl QueueKey {
    /// The key of `queue_id`. An id that fits is read into the words in
    /// place, a word's bytes at a time ([`le_word`]): copying it into a
    /// zeroed array first cost a call to `memcpy` (its length is known only
    /// at run time) at every line.
    #[inline(always)]
    pub fn new(queue_id: &[u8]) -> Self {
        let len = queue_id.len();
        if len >= 32 {
            return QueueKey::hashed(queue_id);
        }
        let mut words = [0u64; 4];
        for (i, word) in words.iter_mut().enumerate() {
            let start = 8 * i;
            *word = queue_id.get(start..len.min(start + 8)).map_or(0, le_word);
        }
        // The length in the last byte, which no id of up to 31 bytes fills.
        words[3] |= (len as u64) << 56;
        QueueKey { words, host: 0 }
    }

    /// The key of an id too long to be held: two independent hashes of it.
    #[cold]
    fn hashed(queue_id: &[u8]) -> Self {
        let mut all = [0u8; 32];
        for (seed, half) in [(0x9e37_79b9_u64, 0..8), (0x85eb_ca6b_u64, 8..16)] {
            let mut h = FxHasher::with_seed(seed as usize);
            queue_id.hash(&mut h);
            all[half].copy_from_slice(&h.finish().to_le_bytes());
        }
        all[31] = u8::MAX;
        QueueKey::from_bytes(all, 0)
    }

    /// The key of `queue_id` on mail server `host`.
    #[inline(always)]
    pub fn on(host: u32, queue_id: &[u8]) -> Self {
        QueueKey {
            host: u64::from(host),
            ..QueueKey::new(queue_id)
        }
    }

    /// The key of an id's 31 bytes followed by its length byte.
    fn from_bytes(all: [u8; 32], host: u32) -> Self {
        let mut words = [0u64; 4];
        for (word, chunk) in words.iter_mut().zip(all.chunks_exact(8)) {
            let mut eight = [0u8; 8];
            eight.copy_from_slice(chunk);
            *word = u64::from_le_bytes(eight);
        }
        QueueKey {
            words,
            host: u64::from(host),
        }
    }
}

/// How long messages stay open.
#[derive(Clone, Copy, Debug, Serialize, Deserialize)]
pub struct Lifetimes {
    /// Seconds after its first line that any message is forgotten.
    pub ttl_secs: i64,
    /// Seconds of silence after which a settled message (every recipient
    /// seen has its final fate) is forgotten. Kerio names one recipient in
    /// `Recv:`, so more `Sent:` lines may follow a settled message: the
    /// grace must outlast the pauses between them.
    pub settled_grace_secs: i64,
}

/// How far down the settled queue a message's entry is fetched into the
/// cache ahead of its expiry.
const SETTLED_PREFETCHED_AHEAD: usize = 4;

/// Ages of gone messages kept before they are dropped (beyond twice the
/// open ones): a pass over the ages every few thousand messages at most.
const GONE_AGES_KEPT: usize = 4096;

/// Open messages by queue id, forgotten once settled and quiet, or too old.
///
/// The messages and aliases are saved as rows (`mailfuse_core::rows`); the
/// queues of what to forget when are rebuilt from them after a restore
/// ([`MessageTable::rebuild_queues`]), so a save never writes them.
#[derive(Debug, Serialize, Deserialize)]
pub struct MessageTable {
    /// In a slab: most messages are gone within the settled grace, and a
    /// new one takes the slot of one just forgotten, still in the cache.
    open: TrackedMap<QueueKey, OpenMessage, SlabMap<QueueKey, OpenMessage>>,
    /// Open messages (their handles: 8 bytes, no key to hash again) in
    /// order of first sighting, for the time to live (those of messages
    /// gone meanwhile are dropped in bulk: [`MessageTable::forget_gone_ages`]).
    #[serde(skip)]
    by_age: VecDeque<(Timestamp, Handle)>,
    /// Messages found settled, by the time they were.
    #[serde(skip)]
    settled: VecDeque<(Timestamp, Handle)>,
    lifetimes: Lifetimes,
    expired: u64,
    /// Queue ids a content filter re-injected a message under, each to the
    /// original's id, with when the hop was seen (forgotten after the time
    /// to live).
    #[serde(default)]
    aliases: TrackedMap<QueueKey, (QueueKey, Timestamp)>,
    #[serde(skip)]
    aliases_by_age: VecDeque<(Timestamp, QueueKey)>,
    /// The mail server whose lines are being read (see [`QueueKey`]).
    #[serde(skip)]
    host: u32,
    /// A time up to which [`MessageTable::expire`] has nothing to do: it
    /// found no queue's front due at it, and a front due later is not due
    /// earlier. Most lines share their second with the line before, so
    /// most look-ups skip the three queues. Cleared whenever a front
    /// changes otherwise than by expiry (a push onto an empty queue, a
    /// sweep, a rebuild, new lifetimes); not saved.
    #[serde(skip)]
    quiet_through: Option<Timestamp>,
}

/// Appends `item` to `queue`, clearing `quiet_through` if the queue was
/// empty: its new front was never looked at by `expire`.
fn enqueue<T>(
    queue: &mut VecDeque<(Timestamp, T)>,
    item: (Timestamp, T),
    quiet_through: &mut Option<Timestamp>,
) {
    if queue.is_empty() {
        *quiet_through = None;
    }
    queue.push_back(item);
}

impl MessageTable {
    /// A table that forgets messages after `lifetimes`.
    pub fn new(lifetimes: Lifetimes) -> Self {
        MessageTable {
            open: TrackedMap::default(),
            by_age: VecDeque::new(),
            settled: VecDeque::new(),
            lifetimes,
            expired: 0,
            aliases: TrackedMap::default(),
            aliases_by_age: VecDeque::new(),
            host: 0,
            quiet_through: None,
        }
    }

    /// Reads the queue ids of the lines to come as mail server `host`'s.
    pub fn set_host(&mut self, host: u32) {
        self.host = host;
    }

    /// The tracked collections, for saving and loading rows.
    pub fn rows(&mut self) -> RowsOf<'_> {
        vec![
            ("messages", &mut self.open as &mut dyn Rows),
            ("message_aliases", &mut self.aliases),
        ]
    }

    /// The accounts the open messages were submitted by.
    pub fn accounts(&self) -> impl Iterator<Item = AccountId> + '_ {
        self.open.values().filter_map(|message| message.account)
    }

    /// Rebuilds the queues of what to forget when from the open messages
    /// and aliases (after a restore: they are not saved).
    pub fn rebuild_queues(&mut self) {
        let open = || self.open.iter_with_handles();
        let mut by_age: Vec<_> = open().map(|(h, _, m)| (m.first_seen, h)).collect();
        by_age.sort_unstable_by_key(|&(at, _)| at);
        self.by_age = by_age.into();
        let mut settled: Vec<_> = open()
            .filter(|(_, _, m)| m.is_settled())
            .map(|(h, _, m)| (m.last_seen, h))
            .collect();
        settled.sort_unstable_by_key(|&(at, _)| at);
        self.settled = settled.into();
        let mut aliases: Vec<_> = self.aliases.iter().map(|(k, &(_, at))| (at, *k)).collect();
        aliases.sort_unstable_by_key(|&(at, _)| at);
        self.aliases_by_age = aliases.into();
        self.quiet_through = None;
    }

    /// The key of `queue_id`, or of the original message when it is a
    /// content filter's re-injection. Always inlined, with the key's own
    /// constructors: called, it returned the key through the stack, whose
    /// words were written one by one and read back two at a time, a load the
    /// CPU cannot forward from the stores and waits for (3.6 % of a Postfix
    /// scan's samples stalled there).
    #[inline(always)]
    fn key(&self, queue_id: &[u8]) -> QueueKey {
        let key = QueueKey::on(self.host, queue_id);
        if self.aliases.is_empty() {
            // No content filter: no lookup (a line's worth of hashing).
            return key;
        }
        self.aliases
            .get(&key)
            .map_or(key, |&(original, _)| original)
    }

    /// Whether `queue_id` is open as a content filter's copy: it came in
    /// over loopback without a login. A loopback relay's `queued as` that
    /// names no such message is a delivery (a local smarthost, an LMTP
    /// server, a relay on the same host).
    pub fn is_filter_copy(&self, queue_id: &[u8]) -> bool {
        let key = QueueKey::on(self.host, queue_id);
        // A message's later recipients name the copy again.
        self.aliases.contains_key(&key)
            || self
                .open
                .get(&key)
                .is_some_and(OpenMessage::is_possible_copy)
    }

    /// The hop of `original`'s recipients into a content filter that
    /// re-injected them as `reinjected`: from now on `reinjected`'s lines
    /// are `original`'s. If the re-injected copy's own lines came first (the
    /// filter re-injects before it answers), its entry is folded into the
    /// original and what it had counted is returned, for the caller to undo.
    pub fn hand_off(&mut self, original: &[u8], reinjected: &[u8], at: Timestamp) -> Merged {
        let original = self.key(original);
        let alias = QueueKey::on(self.host, reinjected);
        if alias == original || !self.open.contains_key(&original) {
            return Merged::default();
        }
        let mut merged = Merged::default();
        if let Some(copy) = self.open.remove(&alias) {
            merged.was_counted = copy.counted;
            merged.uncounted_recipients = copy.counted_recipients;
            if let Some(message) = self.open.get_mut(&original) {
                for key in copy.recipients {
                    match message
                        .recipients
                        .iter_mut()
                        .find(|k| **k & !FLAGS == key & !FLAGS)
                    {
                        Some(known) => {
                            merged.new_failures +=
                                u32::from(key & FAILED != 0 && *known & FAILED == 0);
                            *known |= key & FLAGS;
                        }
                        None => {
                            merged.new_failures += u32::from(key & FAILED != 0);
                            message.recipients.push(key);
                            merged.new_recipients += u32::from(message.one_more_recipient());
                        }
                    }
                }
            }
        }
        if let Some(message) = self.open.get_mut(&original) {
            message.filtered = true;
        }
        if self.aliases.insert(alias, (original, at)).is_none() {
            enqueue(
                &mut self.aliases_by_age,
                (at, alias),
                &mut self.quiet_through,
            );
        }
        merged
    }

    /// Takes new lifetimes (after a restore with a changed configuration).
    pub fn set_lifetimes(&mut self, lifetimes: Lifetimes) {
        self.lifetimes = lifetimes;
        self.quiet_through = None;
    }

    /// The message with `queue_id`, created if unknown.
    pub fn entry(&mut self, queue_id: &[u8], at: Timestamp) -> &mut OpenMessage {
        self.expire(at);
        self.forget_gone_ages();
        let key = self.key(queue_id);
        let (handle, message, new) = self.open.get_or_insert_with(key, || OpenMessage {
            first_seen: at,
            last_seen: at,
            ..OpenMessage::default()
        });
        if new {
            enqueue(&mut self.by_age, (at, handle), &mut self.quiet_through);
        } else {
            message.last_seen = message.last_seen.max(at);
        }
        message
    }

    /// The message with `queue_id`, if it is open.
    pub fn get(&mut self, queue_id: &[u8], at: Timestamp) -> Option<&mut OpenMessage> {
        self.get_with_handle(queue_id, at)
            .map(|(_, message)| message)
    }

    /// [`MessageTable::get`], with the message's handle, for
    /// [`MessageTable::settle_handle`] after it: a delivery line's message
    /// is then looked up once, not twice.
    pub fn get_with_handle(
        &mut self,
        queue_id: &[u8],
        at: Timestamp,
    ) -> Option<(Handle, &mut OpenMessage)> {
        self.expire(at);
        let key = self.key(queue_id);
        let (handle, message) = self.open.get_mut_with_handle(&key)?;
        message.last_seen = message.last_seen.max(at);
        Some((handle, message))
    }

    /// Notes that the message `queue_id` may be settled: it is forgotten
    /// after the grace if it still is and nothing more came for it. Most
    /// messages settle within seconds, so the table holds those of the last
    /// grace period and the deferred ones: small enough for the CPU cache.
    pub fn settle(&mut self, queue_id: &[u8], at: Timestamp) {
        let key = self.key(queue_id);
        if let Some(handle) = self.open.handle_of(&key) {
            self.settle_handle(handle, at);
        }
    }

    /// [`MessageTable::settle`] by the handle
    /// [`MessageTable::get_with_handle`] gave. A message settled again in
    /// the same second (Kerio: a line per recipient) is queued once: a
    /// second entry would be looked at for nothing, as the first decides
    /// the same.
    pub fn settle_handle(&mut self, handle: Handle, at: Timestamp) {
        if self.settled.back() != Some(&(at, handle)) {
            enqueue(&mut self.settled, (at, handle), &mut self.quiet_through);
        }
    }

    /// Forgets a message the server says is gone (Postfix `removed`, Exim
    /// `Completed`). A message handed to a content filter lives on under
    /// its re-injected id; once that is removed too, the message is
    /// forgotten if settled (else the time to live ends it).
    pub fn remove(&mut self, queue_id: &[u8]) {
        let key = QueueKey::on(self.host, queue_id);
        // No content filter: no alias to look up (a line's worth of hashing).
        if !self.aliases.is_empty() {
            if let Some((original, _)) = self.aliases.remove(&key) {
                self.open.remove_if(original, OpenMessage::is_settled);
                return;
            }
        }
        // Mostly removed: found once, by `remove_if`. A message it keeps
        // (rare) is looked at again.
        let kept = |message: &OpenMessage| {
            message.filtered || (message.is_settled() && message.is_possible_copy())
        };
        if self.open.remove_if(key, |message| !kept(message)).is_some() {
            return;
        }
        // Maybe a content filter's copy whose hop is not logged yet (a fast
        // relay delivers the copy before the filter answers): kept for the
        // settled grace, for the hop to find it.
        let kept = self.open.get_with_handle(&key);
        if let Some((handle, message)) = kept.filter(|(_, m)| !m.filtered) {
            let queued = (message.last_seen, handle);
            enqueue(&mut self.settled, queued, &mut self.quiet_through);
        }
    }

    /// Messages currently open.
    pub fn len(&self) -> usize {
        self.open.len()
    }

    /// Whether no message is open.
    pub fn is_empty(&self) -> bool {
        self.open.is_empty()
    }

    /// Messages forgotten because they outlived the time to live.
    pub fn expired(&self) -> u64 {
        self.expired
    }

    /// Drops the ages of messages already gone once they outnumber the open
    /// ones: most messages go within seconds of arriving, and their ages
    /// would otherwise wait out the two-day time to live (a provider's
    /// 700,000 messages, 50 MB). Expiry skips such ages anyway.
    fn forget_gone_ages(&mut self) {
        if self.by_age.len() <= 2 * self.open.len() + GONE_AGES_KEPT {
            return;
        }
        self.quiet_through = None;
        // Told by the handles, not from the messages: the pass reads none
        // of them, most untouched for the grace (out of the cache). A
        // reused id is a new message, with a handle of its own.
        let open = &self.open;
        self.by_age.retain(|&(_, handle)| open.is_live(handle));
    }

    /// Forgets what is due at `now`. Inline, as most lines find nothing
    /// due (`quiet_through`): the check costs less than the call.
    #[inline]
    fn expire(&mut self, now: Timestamp) {
        if self.quiet_through.is_some_and(|quiet| now <= quiet) {
            return;
        }
        self.expire_due(now);
    }

    fn expire_due(&mut self, now: Timestamp) {
        let Lifetimes {
            ttl_secs,
            settled_grace_secs,
        } = self.lifetimes;
        while let Some(&(settled_at, handle)) = self.settled.front() {
            if now.as_secs() - settled_at.as_secs() <= settled_grace_secs {
                break;
            }
            self.settled.pop_front();
            // The message that comes fourth in the queue now is forgotten a
            // few lines later: its entry, untouched for the grace, is
            // fetched meanwhile.
            if let Some(&(_, coming)) = self.settled.get(SETTLED_PREFETCHED_AHEAD) {
                self.open.prefetch(coming);
            }
            // Forget it unless a line came since (it was then noted again,
            // or is no longer settled).
            self.open
                .forget_handle_if(handle, |m| m.last_seen == settled_at && m.is_settled());
        }
        while let Some(&(seen, alias)) = self.aliases_by_age.front() {
            if now.as_secs() - seen.as_secs() <= ttl_secs {
                break;
            }
            self.aliases_by_age.pop_front();
            self.aliases.remove_if(alias, |&(_, at)| at == seen);
        }
        while let Some(&(first_seen, handle)) = self.by_age.front() {
            if now.as_secs() - first_seen.as_secs() <= ttl_secs {
                break;
            }
            self.by_age.pop_front();
            // The message may since have been removed (its handle then
            // finds nothing, even if its id was reused).
            let gone = self.open.forget_handle_if(handle, |_| true);
            self.expired += u64::from(gone);
        }
        self.quiet_through = Some(now);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_are_lower_cased_as_their_bytes_are() {
        for first in 0..=255u8 {
            let bytes = [
                first,
                b'Z',
                b'a',
                b'@',
                b'[',
                0x80 | b'A',
                first ^ 0x20,
                b'A',
            ];
            let word = u64::from_le_bytes(bytes);
            let lowered = ascii_lowercase_word(word).to_le_bytes();
            assert_eq!(lowered, bytes.map(|b| b.to_ascii_lowercase()), "{bytes:?}");
        }
    }

    #[test]
    fn recipients_are_told_apart_by_address_not_by_case() {
        let same = [
            &b"Alice.Novak@Example.COM"[..],
            b"alice.novak@example.com",
            b"ALICE.NOVAK@EXAMPLE.COM",
        ];
        assert!(same
            .iter()
            .all(|a| recipient_hash(a) == recipient_hash(same[0])));
        // Zero bytes padding the last word are no part of the address.
        assert_ne!(recipient_hash(b"bob@x.org"), recipient_hash(b"bob@x.org\0"));
        assert_ne!(recipient_hash(b"bob@x.org"), recipient_hash(b"bob@x.orh"));
    }

    /// The hash is saved with open messages: it must stay that of the
    /// lowered address in zero-padded words, then its length.
    #[test]
    fn recipient_hashes_are_those_saved_before() {
        fn as_saved(address: &[u8]) -> u64 {
            let mut h = FxHasher::default();
            let mut padded = address.to_ascii_lowercase();
            padded.resize(address.len() / 8 * 8 + 8, 0);
            for word in padded.chunks_exact(8) {
                h.write_u64(u64::from_le_bytes(word.try_into().unwrap()));
            }
            h.write_usize(address.len());
            h.finish()
        }
        for len in 0..40 {
            let address: Vec<u8> = (0..len).map(|i| b"Ab.@x-Z\xc3"[i % 8]).collect();
            assert_eq!(recipient_hash(&address), as_saved(&address), "{len}");
        }
    }

    #[test]
    fn words_read_in_place_are_those_of_the_bytes_copied() {
        let bytes: Vec<u8> = (1..=8u8).map(|b| b.wrapping_mul(37) | 0x80).collect();
        for len in 0..=bytes.len() {
            let mut eight = [0u8; 8];
            eight[..len].copy_from_slice(&bytes[..len]);
            assert_eq!(le_word(&bytes[..len]), u64::from_le_bytes(eight), "{len}");
        }
    }

    #[test]
    fn ids_read_in_place_make_the_keys_saved_before() {
        let id: Vec<u8> = (0..31u8).map(|b| b.wrapping_mul(71) | 0x41).collect();
        for len in 0..=id.len() {
            let mut bytes = [0u8; 31];
            bytes[..len].copy_from_slice(&id[..len]);
            let saved = SavedQueueKey {
                len: len as u8,
                bytes,
                host: 0,
            };
            assert_eq!(QueueKey::new(&id[..len]), QueueKey::from(saved), "{len}");
        }
    }

    #[test]
    fn long_queue_ids_round_trip_and_lengths_tell_keys_apart() {
        let long = QueueKey::new(&[b'x'; 40]);
        let saved = rmp_serde::to_vec_named(&long).unwrap();
        assert_eq!(rmp_serde::from_slice::<QueueKey>(&saved).unwrap(), long);
        assert_ne!(long, QueueKey::new(&[b'x'; 41]));
        assert_ne!(QueueKey::new(b"abc"), QueueKey::new(b"abc\0"));
    }

    #[test]
    fn ages_of_gone_messages_do_not_pile_up_and_the_open_ones_still_expire() {
        let mut table = table(1_000_000);
        let mut kept = Vec::new();
        for n in 0..100_000u32 {
            let id = format!("q{n}");
            table.entry(id.as_bytes(), Timestamp(i64::from(n)));
            if n % 1000 == 0 {
                kept.push(id);
            } else {
                table.remove(id.as_bytes());
            }
            assert!(table.by_age.len() <= 2 * table.len() + GONE_AGES_KEPT + 1);
        }
        assert_eq!(table.len(), kept.len());
        // A reused id is a new message: its old age must not end it early.
        table.remove(b"q0");
        table.entry(b"q0", Timestamp(999_990));
        table.entry(b"later", Timestamp(1_100_000));
        assert_eq!(
            table.len(),
            2,
            "the kept messages expired, the reused one not"
        );
        assert!(table.get(b"q0", Timestamp(1_100_000)).is_some());
    }

    #[test]
    fn ages_of_ids_reused_while_open_do_not_pile_up_either() {
        // Each id is used three times in a row, the first two gone: two
        // ages of each open message are of messages gone.
        let mut table = table(1_000_000);
        let mut at = 0;
        for n in 0..6_000u32 {
            let id = format!("q{n}");
            for round in 0..3 {
                at += 1;
                table.entry(id.as_bytes(), Timestamp(at));
                if round < 2 {
                    table.remove(id.as_bytes());
                }
                assert!(table.by_age.len() <= 2 * table.len() + GONE_AGES_KEPT + 1);
            }
        }
        assert_eq!(table.len(), 6_000);
        table.entry(b"one more", Timestamp(at + 1));
        assert!(
            table.by_age.len() <= table.len() + GONE_AGES_KEPT,
            "{} ages kept of {} messages",
            table.by_age.len(),
            table.len()
        );
        // Every open message still expires at its own time to live.
        table.entry(b"later", Timestamp(1_000_000 + at + 1));
        assert_eq!(table.len(), 1 + 1, "`one more` and `later` are left");
    }

    /// A table whose messages live `ttl_secs`, settled or not.
    fn table(ttl_secs: i64) -> MessageTable {
        table_with_grace(ttl_secs, ttl_secs)
    }

    /// A table whose messages live `ttl_secs`, or `settled_grace_secs`
    /// once settled.
    fn table_with_grace(ttl_secs: i64, settled_grace_secs: i64) -> MessageTable {
        MessageTable::new(Lifetimes {
            ttl_secs,
            settled_grace_secs,
        })
    }

    #[test]
    fn recipients_are_counted_once_and_failures_once() {
        let mut table = table(3600);
        let m = table.entry(b"q1", Timestamp(100));
        assert!(m.note_recipient(b"a@x.test", None).new_recipient);
        let again = m.note_recipient(b"A@X.test", Some(DeliveryStatus::Failed));
        assert_eq!(
            again,
            RecipientChange {
                new_recipient: false,
                new_address: false,
                new_failure: true
            }
        );
        assert!(
            !m.note_recipient(b"a@x.test", Some(DeliveryStatus::Failed))
                .new_failure
        );
        assert_eq!((m.recipient_count(), m.failed_count()), (1, 1));
    }

    #[test]
    fn only_a_line_naming_a_recipient_again_is_no_news() {
        let mut table = table(3600);
        let m = table.entry(b"q1", Timestamp(100));
        assert!(m.note_recipient(b"a@x.test", None).is_news());
        for status in [DeliveryStatus::Deferred, DeliveryStatus::Delivered] {
            assert!(!m.note_recipient(b"A@x.test", Some(status)).is_news());
        }
        assert!(m
            .note_recipient(b"a@x.test", Some(DeliveryStatus::Failed))
            .is_news());
        assert!(!m
            .note_recipient(b"a@x.test", Some(DeliveryStatus::Failed))
            .is_news());
        assert!(m
            .note_recipient(b"b@x.test", Some(DeliveryStatus::Delivered))
            .is_news());
    }

    #[test]
    fn a_message_is_settled_when_every_recipient_has_its_final_fate() {
        let mut m = OpenMessage::default();
        assert!(!m.is_settled(), "no recipient yet");
        m.note_recipient(b"a@x.test", None);
        m.note_recipient(b"b@x.test", None);
        m.note_recipient(b"a@x.test", Some(DeliveryStatus::Delivered));
        m.note_recipient(b"b@x.test", Some(DeliveryStatus::Deferred));
        assert!(!m.is_settled(), "b is only deferred");
        m.note_recipient(b"B@x.test", Some(DeliveryStatus::Failed));
        assert!(m.is_settled());
        assert_eq!(m.failed_count(), 1);
    }

    #[test]
    fn a_known_recipient_count_must_be_reached_before_settling() {
        let mut m = OpenMessage {
            expected_recipients: Some(2),
            ..OpenMessage::default()
        };
        m.note_recipient(b"a@x.test", Some(DeliveryStatus::Delivered));
        assert!(!m.is_settled());
        m.note_recipient(b"b@x.test", Some(DeliveryStatus::Delivered));
        assert!(m.is_settled());
    }

    #[test]
    fn nrcpt_counts_recipients_until_deliveries_name_more() {
        let mut m = OpenMessage::default();
        assert_eq!(m.count_recipients_up_to(2), 2);
        assert!(!m.note_recipient(b"a@x.test", None).new_recipient);
        assert!(!m.note_recipient(b"b@x.test", None).new_recipient);
        assert!(m.note_recipient(b"c@x.test", None).new_recipient, "a third");
        assert_eq!(m.count_recipients_up_to(2), 0, "a retry's qmgr line");
    }

    #[test]
    fn a_filter_copy_becomes_the_original_for_every_recipient() {
        let mut table = table(3600);
        let original = table.entry(b"ORIG", Timestamp(0));
        original.account = Some(AccountId::from_index(0));
        original.counted = true;
        original.count_recipients_up_to(2);
        let copy = table.entry(b"COPY", Timestamp(1));
        copy.ip = Some(IpAddr::from([127, 0, 0, 1]));
        copy.counted = true;
        copy.count_recipients_up_to(2);
        assert!(table.is_filter_copy(b"COPY"));
        assert!(!table.is_filter_copy(b"ORIG"), "it has a login");
        assert!(!table.is_filter_copy(b"SINK1"), "a relay's own queue");
        let merged = table.hand_off(b"ORIG", b"COPY", Timestamp(1));
        assert!(merged.was_counted);
        assert_eq!(merged.uncounted_recipients, 2);
        assert!(table.is_filter_copy(b"COPY"), "the second recipient's hop");
        assert_eq!(
            table.hand_off(b"ORIG", b"COPY", Timestamp(1)),
            Merged::default()
        );
        table.remove(b"ORIG");
        let m = table
            .get(b"COPY", Timestamp(2))
            .expect("the original lives on");
        assert!(m.account.is_some());
        m.note_recipient(b"a@x.test", Some(DeliveryStatus::Failed));
        m.note_recipient(b"b@x.test", Some(DeliveryStatus::Failed));
        assert_eq!(m.failed_count(), 2);
        table.remove(b"COPY");
        assert!(table.is_empty(), "settled and removed under both ids");
    }

    #[test]
    fn memory_is_bounded_by_open_messages() {
        let mut table = table(60);
        for i in 0..1000i64 {
            table.entry(format!("q{i}").as_bytes(), Timestamp(i));
        }
        assert!(
            table.len() <= 61,
            "only the last minute stays open: {}",
            table.len()
        );
        assert_eq!(table.expired(), 1000 - table.len() as u64);
        assert!(table.get(b"q0", Timestamp(1000)).is_none());
        assert!(table.get(b"q999", Timestamp(1000)).is_some());
    }

    #[test]
    fn long_queue_ids_still_have_distinct_keys() {
        let a = QueueKey::new(&[b'a'; 40]);
        let mut other = [b'a'; 40];
        other[39] = b'b';
        assert_ne!(a, QueueKey::new(&other));
        assert_eq!(a, QueueKey::new(&[b'a'; 40]));
        assert_ne!(QueueKey::new(b"ab"), QueueKey::new(b"ab\0"));
    }

    #[test]
    fn the_same_queue_id_on_two_hosts_is_two_messages() {
        let mut table = table(60);
        table.set_host(1);
        table.entry(b"ABC", Timestamp(0)).counted = true;
        table.set_host(2);
        assert!(table.get(b"ABC", Timestamp(1)).is_none());
        table.entry(b"ABC", Timestamp(1));
        table.remove(b"ABC");
        table.set_host(1);
        assert!(table.get(b"ABC", Timestamp(2)).is_some_and(|m| m.counted));
        assert_ne!(QueueKey::on(1, b"ABC"), QueueKey::on(2, b"ABC"));
    }

    #[test]
    fn a_local_key_is_saved_as_before_hosts_and_a_host_key_round_trips() {
        #[derive(Serialize)]
        struct Before {
            len: u8,
            bytes: [u8; 31],
        }
        let local = QueueKey::new(b"ABC");
        let mut bytes = [0u8; 31];
        bytes[..3].copy_from_slice(b"ABC");
        let before = rmp_serde::to_vec(&Before { len: 3, bytes }).unwrap();
        assert_eq!(rmp_serde::to_vec(&local).unwrap(), before);
        assert_eq!(rmp_serde::from_slice::<QueueKey>(&before).unwrap(), local);
        let remote = QueueKey::on(7, b"ABC");
        let saved = rmp_serde::to_vec(&remote).unwrap();
        assert_eq!(rmp_serde::from_slice::<QueueKey>(&saved).unwrap(), remote);
    }

    #[test]
    fn removed_messages_are_forgotten_and_a_reused_id_survives_old_expiry() {
        let mut table = table(60);
        table.entry(b"q1", Timestamp(0));
        table.remove(b"q1");
        assert!(table.is_empty());
        table.entry(b"q1", Timestamp(50)).counted = true;
        assert!(
            table.get(b"q1", Timestamp(100)).is_some(),
            "expiry of the first q1 spares the second"
        );
        assert!(table.get(b"q1", Timestamp(111)).is_none());
    }

    #[test]
    fn a_message_settled_twice_in_a_second_is_queued_once_and_still_forgotten() {
        let mut table = table_with_grace(10_000, 60);
        table.entry(b"two", Timestamp(0));
        for recipient in [&b"a@x.test"[..], b"b@x.test"] {
            let (handle, m) = table.get_with_handle(b"two", Timestamp(5)).expect("open");
            m.note_recipient(recipient, Some(DeliveryStatus::Delivered));
            table.settle_handle(handle, Timestamp(5));
        }
        assert_eq!(table.settled.len(), 1);
        table.settle(b"two", Timestamp(6));
        assert_eq!(table.settled.len(), 2, "another second is queued again");
        table.entry(b"clock", Timestamp(66));
        assert!(table.get(b"two", Timestamp(66)).is_none());
    }

    #[test]
    fn what_is_queued_within_a_second_already_looked_at_still_expires_in_it() {
        let mut table = table_with_grace(10_000, 60);
        let copy = table.entry(b"copy", Timestamp(0));
        copy.ip = Some(IpAddr::from([127, 0, 0, 1]));
        copy.note_recipient(b"a@x.test", Some(DeliveryStatus::Delivered));
        // Nothing is due at 100.
        table.entry(b"clock", Timestamp(100));
        // A settled copy the server removed waits out the grace from its
        // last line, long past: due in this very second.
        table.remove(b"copy");
        assert!(table.get(b"copy", Timestamp(100)).is_none());
        assert!(table.get(b"clock", Timestamp(100)).is_some());
    }

    #[test]
    fn a_settled_message_is_forgotten_after_a_quiet_grace_only() {
        let mut table = table_with_grace(10_000, 60);
        for id in [&b"quiet"[..], b"busy", b"deferred"] {
            let m = table.entry(id, Timestamp(0));
            m.note_recipient(b"a@x.test", Some(DeliveryStatus::Delivered));
            table.settle(id, Timestamp(0));
        }
        let deferred = table.get(b"deferred", Timestamp(10)).expect("open");
        deferred.note_recipient(b"b@x.test", Some(DeliveryStatus::Deferred));
        // Kerio: a second recipient's line after the first one settled.
        let busy = table.get(b"busy", Timestamp(30)).expect("open");
        busy.note_recipient(b"c@x.test", Some(DeliveryStatus::Delivered));
        table.settle(b"busy", Timestamp(30));

        let mut open_at = |secs| {
            table.entry(b"clock", Timestamp(secs)); // time passes
            let open = |id: &[u8]| table.open.contains_key(&QueueKey::new(id));
            [open(b"quiet"), open(b"busy"), open(b"deferred")]
        };
        assert_eq!(open_at(61), [false, true, true], "busy had a line since");
        assert_eq!(open_at(91), [false, false, true], "deferred is not settled");
        assert_eq!(table.expired(), 0, "settled messages are not expired ones");
    }
}
