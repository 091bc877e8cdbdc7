//! Postfix lines.
//!
//! A message's story is spread over its daemons' lines, joined by queue id
//! (`2441AB4574: …`): `smtpd` names the client and SASL login (or `pickup` a
//! local submission), `cleanup` the Message-ID, `qmgr` the envelope sender,
//! size and recipient count, each delivery agent (`smtp`, `lmtp`, `local`,
//! `virtual`, `pipe`, `error`…) one recipient's outcome, and `qmgr` the end
//! (`removed`). Lines without a queue id report refused clients (`NOQUEUE:
//! reject: …`) and failed SMTP AUTH (`warning: host[ip]: SASL LOGIN
//! authentication failed: …`).
//!
//! Much of a line is written by others: addresses (MAIL FROM, RCPT TO),
//! Message-IDs, HELO names, SASL logins tried, remote servers' replies.
//! Each value is therefore read from the end Postfix controls:
//! - `qmgr`'s sender from the end of the line, which Postfix writes last
//!   (`>, size=N, nrcpt=N (queue active)`);
//! - a delivery's recipient up to its closing `>`, skipping quoted local
//!   parts (Postfix ≥ 3.5 logs addresses quoted, so `"a>, status=sent"@x`
//!   stays one address); then fields in order up to `status=`, whose
//!   remote reply runs to the end of the line;
//! - a SASL login that was tried runs to the end of the line; a successful
//!   one (`client=…, sasl_username=`) is the first, up to `, sasl_sender=`
//!   (which the client chose and Postfix writes after it);
//! - a block's reason is the reply before the first `; from=<`.
//!
//! Ambiguities left: Postfix before 3.5 logs addresses unquoted, so a
//! recipient containing `>, relay=…, status=sent (` reads as that status; a
//! recipient or HELO can shorten a block's reply (a `; from=<` of its own)
//! and, in the `<address>` before the reason, choose the block's kind.

use mailfuse_core::net::parse_ip;
use mailfuse_core::time::parse_digits;
use mailfuse_core::{
    AuthFailure, AuthFailureKind, BlockKind, Client, Delivery, DeliveryStatus, Event, Removed,
    ServerBlock, Submission, Timestamp,
};
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::LazyLock;

use memchr::memmem;

use crate::values::{
    decimal, find_byte, find_either, positions, rfind_near_end, without_angles, Phrase,
};
use crate::Parsed;

/// Short queue ids are at least 6 upper-case hex digits (5 for the
/// microseconds, then the inode number).
const SHORT_QUEUE_ID: std::ops::RangeInclusive<usize> = 6..=16;

/// Long queue ids (`enable_long_queue_ids`): 10 base-52 characters of time,
/// `z`, the inode number in base 51.
const LONG_QUEUE_ID: std::ops::RangeInclusive<usize> = 12..=24;

/// The daemons whose lines say nothing about mail or logins, apart from the
/// queue lines and `NOQUEUE` refusals read before these are consulted
/// (`postsuper: QID: removed`, postscreen's DNSBL refusals).
const QUIET_DAEMONS: &[&[u8]] = &[
    b"postscreen",
    b"anvil",
    b"master",
    b"dnsblog",
    b"tlsproxy",
    b"scache",
    b"tlsmgr",
    b"verify",
    b"proxymap",
    b"trivial-rewrite",
    b"postfix-script",
    b"postlogd",
    b"postsuper",
    b"postqueue",
    b"postdrop",
    b"sendmail",
    b"postmap",
];

/// Lines without a queue id that carry nothing for detection: connections
/// (a broken-off AUTH is counted from the disconnect's `auth=0/1`), TLS,
/// start-up, statistics, trouble of the server itself.
const NOISE: &[&[u8]] = &[
    b"connect from ",
    b"lost connection after ",
    b"timeout after ",
    b"too many errors after ",
    b"improper command pipelining after ",
    b"Anonymous TLS connection established ",
    b"Untrusted TLS connection established ",
    b"Trusted TLS connection established ",
    b"Verified TLS connection established ",
    b"SSL_accept error from ",
    b"TLS library problem",
    b"connect to ",
    b"statistics: ",
    b"daemon started",
    b"reload ",
    b"terminating on signal",
    b"fatal: ",
    b"panic: ",
    b"error: ",
];

/// The notices the server generates about a message (`bounce`, `defer`…:
/// `ID: sender non-delivery notification: NEW`): `NEW` is a message of its
/// own that no account submitted.
const NOTIFICATIONS: &[&[u8]] = &[
    b"sender non-delivery notification: ",
    b"sender delivery status notification: ",
    b"sender delay notification: ",
    b"postmaster non-delivery notification: ",
];

/// Queue lines that carry nothing for detection: a remote
/// server's words before the `to=<…>` line that settles the recipient,
/// actions that let the message through or drop it silently, queue
/// administration, header and body checks (see [`queue_event`]).
const QUEUE_NOISE: &[&[u8]] = &[
    b"resent-message-id=",
    b"host ",
    b"lost connection with ",
    b"conversation with ",
    b"enabling PIX workarounds",
    b"Cannot start TLS",
    b"SASL authentication failed",
    b"warning: ",
    b"info: ",
    b"warn: ",
    b"reject_warning: ",
    b"hold: ",
    b"discard: ",
    b"filter: ",
    b"redirect: ",
    b"replace: ",
    b"prepend: ",
    b"placed on hold",
    b"released from hold",
    b"requeued",
    b"skipped, still being delivered",
];

/// `NOQUEUE:` actions that did not refuse the client.
const NOQUEUE_NOISE: &[&[u8]] = &[
    b"reject_warning: ",
    b"warn: ",
    b"hold: ",
    b"discard: ",
    b"filter: ",
    b"redirect: ",
    b"info: ",
];

/// The refusal actions: `reject` (smtpd's restrictions, postscreen) and
/// `milter-reject` (a milter's verdict).
const REFUSALS: &[&[u8]] = &[b"reject: ", b"milter-reject: "];

/// Where a successful SASL login's name ends: the field Postfix writes
/// after it, when there is one (each starts with `,`: see [`before_first`]).
const AFTER_SASL_USERNAME: &[&[u8]] = &[b", sasl_sender=", b", orig_queue_id=", b", orig_client="];

/// What the Postfix parser remembers between lines: how many failed logins
/// each client's SASL warnings reported, so that its `disconnect from …
/// auth=0/N` counts only the attempts no warning told of — an AUTH the
/// client broke off, which probes and floods leave by the thousand.
#[derive(Debug, Default)]
pub(super) struct Sessions {
    warned: HashMap<IpAddr, u32>,
}

/// Most clients whose warnings are remembered: past it the memory is
/// cleared, and a disconnect may count a warned failure again.
const MAX_SESSIONS: usize = 10_000;

/// What a line tells [`Sessions`], settled in file order.
#[derive(Clone, Copy, Debug)]
pub(crate) enum SessionNote {
    /// A SASL warning: the client failed `attempts` logins.
    Warned { client: IpAddr, attempts: u32 },
    /// A disconnect with AUTH counters: its failure (all the failed AUTH
    /// commands, as read) counts only those no warning reported.
    Disconnected { client: Option<IpAddr> },
}

impl Sessions {
    /// Completes the line that left `note`: a disconnect's failure less what
    /// the client's warnings told, then counted `repeats` times.
    pub(super) fn settle(&mut self, note: SessionNote, parsed: &mut Parsed<'_>, repeats: u32) {
        match note {
            SessionNote::Warned { client, attempts } => {
                if self.warned.len() >= MAX_SESSIONS && !self.warned.contains_key(&client) {
                    self.warned.clear();
                }
                let warned = self.warned.entry(client).or_default();
                *warned = warned.saturating_add(attempts);
            }
            SessionNote::Disconnected { client } => {
                // Most servers see no failed login for hours: no key to hash.
                let warned = client
                    .filter(|_| !self.warned.is_empty())
                    .and_then(|ip| self.warned.remove(&ip))
                    .unwrap_or(0);
                let Parsed::Event(Event::AuthFailure(failure)) = parsed else {
                    return;
                };
                match failure.attempts.saturating_sub(warned) {
                    0 => *parsed = Parsed::Ignored,
                    attempts => failure.attempts = attempts.saturating_mul(repeats),
                }
            }
        }
    }
}

/// `disconnect from host[ip] ehlo=1 auth=0/2 quit=1 commands=2/4`: all the
/// failed AUTH commands (`auth=succeeded/total`), for [`Sessions::settle`]
/// to leave out those a warning reported (in `note`).
fn disconnect<'a>(at: Timestamp, text: &'a [u8], note: &mut Option<SessionNote>) -> Parsed<'a> {
    // Most sessions end without AUTH: the counters are looked for first,
    // in the whole line, and such a line is done without reading its client.
    let Some(auth) = auth_counter(text) else {
        return Parsed::Ignored;
    };
    let Some((client, counters)) = client_prefix(text) else {
        return Parsed::Ignored;
    };
    // The first ` auth=` is the counters' unless the address held one.
    let counters_start = text.len() - counters.len();
    let auth = match auth.checked_sub(counters_start) {
        Some(auth) => Some(auth),
        None => auth_counter(counters),
    };
    let Some(failed) = auth.and_then(|auth| failed_auth_commands(counters, auth)) else {
        return Parsed::Ignored;
    };
    *note = Some(SessionNote::Disconnected {
        client: client.ip(),
    });
    match failed {
        0 => Parsed::Ignored,
        attempts => Parsed::Event(Event::AuthFailure(AuthFailure {
            at,
            client,
            account: None,
            service: b"SMTP",
            kind: AuthFailureKind::Protocol,
            attempts,
        })),
    }
}

/// Where the first ` auth=` starts in `text`: found by its `u`, which few
/// of the counters Postfix writes share (`quit=`, `unknown=`). A memmem
/// searcher cost some 100 instructions a call on a line's few dozen bytes,
/// its set-up more than the search.
fn auth_counter(text: &[u8]) -> Option<usize> {
    const AUTH: &[u8] = b" auth=";
    positions(b'u', text.get(2..)?).find(|&start| text.get(start..start + AUTH.len()) == Some(AUTH))
}

/// The failed AUTH commands of a disconnect's counters, whose ` auth=`
/// starts at `auth`: `auth=M/N` is M accepted of N, `auth=N` all N
/// accepted.
fn failed_auth_commands(counters: &[u8], auth: usize) -> Option<u32> {
    let start = auth + b" auth=".len();
    let value = counters[start..]
        .split(|&b| b == b' ')
        .next()
        .unwrap_or_default();
    let (accepted, total) = match find_byte(b'/', value) {
        Some(slash) => (&value[..slash], &value[slash + 1..]),
        None => (value, value),
    };
    let total = u32::try_from(decimal(total)?).ok()?;
    let accepted = u32::try_from(decimal(accepted)?).ok()?;
    Some(total.saturating_sub(accepted))
}

/// A Postfix line: `program` is its syslog name (`postfix/submission/smtpd`),
/// `message` the text after `program[pid]: `; what it means goes to `out`.
/// What it tells the [`Sessions`] goes to `note`: a [`Parsed`] is some 200
/// bytes, and returned in a pair with the note it would be copied on its
/// way out, at every line.
///
/// The events of a message's lines are written into `out` where they are
/// made: returned, each was copied into the reading (a call to `memcpy`
/// at nearly every line, a tenth of this parser's instructions).
pub(super) fn parse<'a>(
    at: Timestamp,
    program: &'a [u8],
    message: &'a [u8],
    note: &mut Option<SessionNote>,
    out: &mut Parsed<'a>,
) {
    if let Some((queue_id, text)) = queue_line(message) {
        return queue_event(at, program, queue_id, text, out);
    }
    if let Some(text) = message.strip_prefix(b"NOQUEUE: ") {
        *out = noqueue(at, text);
        return;
    }
    if let Some(text) = message.strip_prefix(b"warning: ") {
        // Warnings are about the server's health, except failed logins.
        let parsed = auth_failure(at, text).unwrap_or(Parsed::Ignored);
        *note = match &parsed {
            Parsed::Event(Event::AuthFailure(failure)) => {
                failure.client.ip().map(|client| SessionNote::Warned {
                    client,
                    attempts: failure.attempts,
                })
            }
            _ => None,
        };
        *out = parsed;
        return;
    }
    if let Some(text) = message.strip_prefix(b"disconnect from ") {
        *out = disconnect(at, text, note);
        return;
    }
    // The noise first: every session's `connect from` ends here, and a
    // prefix costs less than the daemon's name, compared with each quiet
    // daemon's (a call to `bcmp` for each of the same length).
    *out = if starts_with_any(message, NOISE) || QUIET_DAEMONS.contains(&daemon(program)) {
        Parsed::Ignored
    } else {
        Parsed::Unknown
    };
}

/// `NOQUEUE: …`, without a queue id: a refused client, or noise.
fn noqueue(at: Timestamp, text: &[u8]) -> Parsed<'_> {
    if let Some(refusal) = strip_any_prefix(text, REFUSALS) {
        return block(at, refusal).unwrap_or(Parsed::Malformed("postfix refusal without a client"));
    }
    if starts_with_any(text, NOQUEUE_NOISE) {
        Parsed::Ignored
    } else {
        Parsed::Unknown
    }
}

/// The UTC instant in a Message-ID `cleanup` made itself, from the text after
/// `postfix/cleanup[pid]: `: Postfix adds a missing Message-ID as
/// `<YYYYMMDDhhmmss.QUEUEID@myhostname>` with the time in UTC. The queue id
/// inside must be the line's own, so a client's Message-ID of that shape is
/// not taken for one.
pub(super) fn own_message_id_instant(message: &[u8]) -> Option<Timestamp> {
    let (queue_id, text) = queue_line(message)?;
    let id = without_angles(text.strip_prefix(b"message-id=")?);
    let (stamp, rest) = id.split_first_chunk::<14>()?;
    rest.strip_prefix(b".")?
        .strip_prefix(queue_id)?
        .strip_prefix(b"@")?;
    let field = |from: usize, to: usize| parse_digits::<2>(&stamp[from..to]);
    let year = i32::try_from(parse_digits::<4>(stamp)?).ok()?;
    let [month, day, hour, minute, second] =
        [4, 6, 8, 10, 12].map(|at| field(at, at + 2).and_then(|n| u8::try_from(n).ok()));
    Timestamp::from_civil(year, month?, day?, hour?, minute?, second?)
}

/// The queue id and the text after `QID: `, if `message` is a queue line.
fn queue_line(message: &[u8]) -> Option<(&[u8], &[u8])> {
    let head = message.get(..=*LONG_QUEUE_ID.end()).unwrap_or(message);
    let (queue_id, text) = message.split_at_checked(find_byte(b':', head)?)?;
    let text = text.strip_prefix(b": ")?;
    is_queue_id(queue_id).then_some((queue_id, text))
}

/// Whether `id` is a short (upper-case hex) or long (alphanumeric) queue id.
/// Long ids start with the time in base 52, whose first character stays a
/// digit until 2090: requiring a digit keeps words such as `warning` or
/// `NOQUEUE` from passing for one.
fn is_queue_id(id: &[u8]) -> bool {
    // What all the id's bytes are, and what any of them is.
    let (all, any) = id.iter().fold((u8::MAX, 0), |(all, any), &b| {
        let class = byte_class(b);
        (all & class, any | class)
    });
    (SHORT_QUEUE_ID.contains(&id.len()) && all & UPPER_HEX != 0)
        || (LONG_QUEUE_ID.contains(&id.len()) && all & ALPHANUMERIC != 0 && any & DIGIT != 0)
}

/// Whether `host` is what Postfix writes before a client's `[address]`: a
/// checked DNS name, `unknown`, or nothing.
fn is_host_name(host: &[u8]) -> bool {
    host.iter().fold(HOST, |all, &b| all & byte_class(b)) != 0
}

/// The classes below `byte` is in, as a set: the parser tests the queue id
/// and client host at most Postfix lines, and one lookup in a table costs
/// less than the range tests (some ten instructions a byte). The tests go
/// over all bytes without an early exit, which the compiler unrolls.
fn byte_class(byte: u8) -> u8 {
    BYTE_CLASSES[usize::from(byte)]
}

/// `0`–`9`, `A`–`F`: a short queue id's bytes.
const UPPER_HEX: u8 = 1;
/// Letters and digits: a long queue id's bytes.
const ALPHANUMERIC: u8 = 2;
/// A digit, which a long queue id has.
const DIGIT: u8 = 4;
/// A DNS name's bytes: letters, digits, `.`, `-`, `_`.
const HOST: u8 = 8;

/// [`byte_class`]'s table.
static BYTE_CLASSES: [u8; 256] = {
    let mut table = [0; 256];
    let mut byte: u8 = 0;
    loop {
        let mut class = 0;
        if matches!(byte, b'0'..=b'9' | b'A'..=b'F') {
            class |= UPPER_HEX;
        }
        if byte.is_ascii_alphanumeric() {
            class |= ALPHANUMERIC | HOST;
        }
        if byte.is_ascii_digit() {
            class |= DIGIT;
        }
        if matches!(byte, b'.' | b'-' | b'_') {
            class |= HOST;
        }
        table[byte as usize] = class;
        if byte == u8::MAX {
            break table;
        }
        byte += 1;
    }
};

/// A line about one message.
///
/// `cleanup`'s header and body checks (`QID: reject: header Subject: … from
/// host[ip]; from=<…>`) are ignored: the client is named after text the
/// sender wrote, so it cannot be told from a forged one.
fn queue_event<'a>(
    at: Timestamp,
    program: &'a [u8],
    queue_id: &'a [u8],
    text: &'a [u8],
    out: &mut Parsed<'a>,
) {
    // The kinds every message has start with different letters: one test
    // of the first picks the only one that can match.
    match text.first() {
        Some(b't') => {
            if let Some(fields) = text.strip_prefix(b"to=<") {
                return delivery(at, queue_id, fields, out);
            }
        }
        Some(b'c') => {
            if let Some(fields) = text.strip_prefix(b"client=") {
                return client_submission(at, program, queue_id, fields, out);
            }
        }
        Some(b'f') => {
            if let Some(fields) = text.strip_prefix(b"from=<") {
                return queue_manager(at, queue_id, fields, out);
            }
        }
        Some(b'm') => {
            if let Some(id) = text.strip_prefix(b"message-id=") {
                let id = without_angles(id);
                *out = submission(Submission {
                    at,
                    queue_id,
                    message_id: (!id.is_empty()).then_some(id),
                    ..Submission::default()
                });
                return;
            }
        }
        Some(b'u') if text.starts_with(b"uid=") => {
            *out = local_submission(at, queue_id, text);
            return;
        }
        Some(b'r') if text == b"removed" => {
            *out = Parsed::Event(Event::Removed(Removed { at, queue_id }));
            return;
        }
        _ => {}
    }
    *out = other_queue_line(at, queue_id, text);
}

/// `pickup`: `uid=1000 from=<user>`, mail from a local program (sendmail);
/// qmgr gives the rewritten sender.
fn local_submission<'a>(at: Timestamp, queue_id: &'a [u8], text: &'a [u8]) -> Parsed<'a> {
    let sender = memmem::find(text, b" from=<")
        .map(|i| &text[i + 7..])
        .and_then(|rest| rest.strip_suffix(b">"));
    submission(Submission {
        at,
        queue_id,
        client: Some(Client::Unknown),
        service: Some(b"pickup"),
        unqualified_sender: sender.filter(|s| !s.is_empty() && !s.contains(&b'@')),
        ..Submission::default()
    })
}

/// A queue line of a kind not every message has: the server's own notices,
/// refusals by header and body checks, noise.
fn other_queue_line<'a>(at: Timestamp, queue_id: &'a [u8], text: &'a [u8]) -> Parsed<'a> {
    if let Some(notice) = strip_any_prefix(text, NOTIFICATIONS) {
        if !is_queue_id(notice) {
            return Parsed::Malformed("postfix notification without a queue id");
        }
        return submission(Submission {
            at,
            queue_id: notice,
            notice_of: Some(queue_id),
            is_bounce: true,
            ..Submission::default()
        });
    }
    if let Some(refusal) = strip_any_prefix(text, REFUSALS) {
        return block(at, refusal).unwrap_or(Parsed::Ignored);
    }
    if starts_with_any(text, QUEUE_NOISE) {
        Parsed::Ignored
    } else {
        Parsed::Unknown
    }
}

fn submission(submission: Submission<'_>) -> Parsed<'_> {
    Parsed::Event(Event::Submission(submission))
}

/// Before the login in `client=` lines and SASL warnings.
const SASL_USERNAME: &[u8] = b", sasl_username=";

/// Where the first [`SASL_USERNAME`] starts in `text`: found by its `,`, which
/// few of the bytes before it are (a memmem searcher cost some 100
/// instructions a call, its set-up more than the search).
fn sasl_username(text: &[u8]) -> Option<usize> {
    positions(b',', text).find(|&comma| {
        text.get(comma..)
            .is_some_and(|rest| rest.starts_with(SASL_USERNAME))
    })
}

/// Where a refusal's reply ends, if the envelope follows.
static ENVELOPE_FOLLOWS: Phrase = LazyLock::new(|| memmem::Finder::new(b"; from=<"));

/// After the `<address>` a refusal's reason is about.
static ADDRESS_END: Phrase = LazyLock::new(|| memmem::Finder::new(b">: "));

/// The words of a refusal's reason that tell its kind (see [`block_kind`]).
static BLOCKED_USING: Phrase = LazyLock::new(|| memmem::Finder::new(b"blocked using "));
static RELAY_ACCESS_DENIED: Phrase = LazyLock::new(|| memmem::Finder::new(b"Relay access denied"));
static USER_UNKNOWN: Phrase = LazyLock::new(|| memmem::Finder::new(b"User unknown"));
static RECIPIENT_REJECTED: Phrase =
    LazyLock::new(|| memmem::Finder::new(b"Recipient address rejected"));
static GREYLISTED: Phrase = LazyLock::new(|| memmem::Finder::new(b"reylist"));

/// A SASL failure's reason when the server could not check the password.
static AUTHENTICATION_SERVER: Phrase =
    LazyLock::new(|| memmem::Finder::new(b"authentication server"));

/// Where `, ` first occurs in `text` (a field separator).
fn comma_space(text: &[u8]) -> Option<usize> {
    positions(b',', text).find(|&i| text.get(i + 1) == Some(&b' '))
}

/// `smtpd`: `client=host[ip][:port][, sasl_method=M, sasl_username=U[,
/// sasl_sender=S]]`, the first line of a message received over SMTP.
fn client_submission<'a>(
    at: Timestamp,
    program: &'a [u8],
    queue_id: &'a [u8],
    fields: &'a [u8],
    out: &mut Parsed<'a>,
) {
    let Some((client, rest)) = client_prefix(fields) else {
        *out = Parsed::Malformed("postfix client= without host[address]");
        return;
    };
    let account = sasl_username(rest)
        .and_then(|start| rest.get(start + SASL_USERNAME.len()..))
        .map(|login| before_first(login, AFTER_SASL_USERNAME))
        .filter(|login| !login.is_empty());
    *out = submission(Submission {
        at,
        queue_id,
        account,
        client: Some(client),
        service: Some(smtpd_service(program)),
        ..Submission::default()
    });
}

/// `qmgr`: `from=<sender>, size=N, nrcpt=N (queue active)`, read from the
/// end (see the module notes); `from=<…>, status=expired, returned to
/// sender` is ignored: the recipients' own lines said they were deferred,
/// and the sender's bounce is a message of its own.
fn queue_manager<'a>(at: Timestamp, queue_id: &'a [u8], fields: &'a [u8], out: &mut Parsed<'a>) {
    let Some(fields) = fields.strip_suffix(b" (queue active)") else {
        *out = if fields.ends_with(b">, status=expired, returned to sender") {
            Parsed::Ignored
        } else {
            Parsed::Unknown
        };
        return;
    };
    let Some((rest, recipient_count)) = split_last_field(fields, b", nrcpt=") else {
        *out = Parsed::Malformed("postfix queue manager line without nrcpt");
        return;
    };
    let Some((rest, size)) = split_last_field(rest, b", size=") else {
        *out = Parsed::Malformed("postfix queue manager line without size");
        return;
    };
    let Some(sender) = rest.strip_suffix(b">") else {
        *out = Parsed::Malformed("postfix queue manager line without from=<…>");
        return;
    };
    *out = submission(Submission {
        at,
        queue_id,
        envelope_from: Some(sender),
        recipient_count: decimal(recipient_count).and_then(|n| u32::try_from(n).ok()),
        size: decimal(size),
        is_bounce: sender.is_empty(),
        queue_pass: true,
        ..Submission::default()
    });
}

/// A delivery agent's `to=<rcpt>, [orig_to=<…>, ]relay=…, delay=…,
/// delays=…, dsn=…, status=word (detail)`, from the text after `to=<`.
fn delivery<'a>(at: Timestamp, queue_id: &'a [u8], fields: &'a [u8], out: &mut Parsed<'a>) {
    *out = match delivery_fields(fields) {
        Ok(fields) => Parsed::Event(Event::Delivery(Delivery {
            at,
            queue_id,
            recipient: fields.recipient,
            status: fields.status,
            dsn: fields.dsn,
            detail: fields.detail,
            relay: fields.relay,
        })),
        Err(None) => Parsed::Ignored,
        Err(Some(reason)) => Parsed::Malformed(reason),
    };
}

/// What a delivery line says of its recipient.
struct DeliveryFields<'a> {
    recipient: &'a [u8],
    status: DeliveryStatus,
    dsn: Option<&'a [u8]>,
    detail: &'a [u8],
    relay: Option<&'a [u8]>,
}

/// The fields of a delivery line, from the text after `to=<`; `Err(None)`
/// for a line that delivered nothing, `Err(Some(why))` for one that cannot
/// be read. (Small, unlike a [`Parsed`], so it costs no copy on its way.)
fn delivery_fields(fields: &[u8]) -> Result<DeliveryFields<'_>, Option<&'static str>> {
    let Some((recipient, mut rest)) = address(fields) else {
        return Err(Some("postfix delivery with an unterminated recipient"));
    };
    let (mut relay, mut dsn) = (None, None);
    loop {
        let Some(field) = rest.strip_prefix(b", ") else {
            return Err(Some("postfix delivery without a status"));
        };
        let Some((key, value)) = key_value(field) else {
            return Err(Some("postfix delivery field without a value"));
        };
        if key == b"status" {
            let (word, detail) = word(value);
            if matches!(word, b"deliverable" | b"undeliverable") {
                // An address-verification probe's answer: nothing was sent.
                return Err(None);
            }
            let Some(status) = delivery_status(word) else {
                return Err(Some("postfix delivery with an unknown status"));
            };
            return Ok(DeliveryFields {
                recipient,
                status,
                dsn,
                detail: detail
                    .strip_prefix(b"(")
                    .and_then(|inside| inside.strip_suffix(b")"))
                    .unwrap_or(detail),
                relay: relay.filter(|relay| relay != b"none"),
            });
        }
        let (value, next) = match value.strip_prefix(b"<") {
            Some(address_text) => match address(address_text) {
                Some(parsed) => parsed,
                None => return Err(Some("postfix delivery with an unterminated address")),
            },
            None => {
                let end = comma_space(value).unwrap_or(value.len());
                value.split_at(end)
            }
        };
        match key {
            b"relay" => relay = Some(value),
            b"dsn" => dsn = Some(value),
            _ => {}
        }
        rest = next;
    }
}

fn delivery_status(word: &[u8]) -> Option<DeliveryStatus> {
    Some(match word {
        b"sent" => DeliveryStatus::Delivered,
        b"deferred" => DeliveryStatus::Deferred,
        b"bounced" | b"expired" => DeliveryStatus::Failed,
        _ => return None,
    })
}

/// A refusal, from the text after `reject: `: `CMD from host[ip][:port]:
/// reply[; from=<…> to=<…> proto=… helo=<…>]`. `None` when no client
/// follows the command (cleanup's header and body checks).
fn block<'a>(at: Timestamp, text: &'a [u8]) -> Option<Parsed<'a>> {
    let (command, rest) = word(text);
    if command.is_empty() || !command.iter().all(|&b| b.is_ascii_uppercase() || b == b'-') {
        return None;
    }
    let (client, rest) = client_prefix(rest.strip_prefix(b"from ")?)?;
    let reply = rest.strip_prefix(b": ")?;
    let reply = ENVELOPE_FOLLOWS
        .find(reply)
        .map_or(reply, |end| reply.split_at(end).0);
    Some(Parsed::Event(Event::ServerBlock(ServerBlock {
        at,
        client,
        kind: block_kind(reply),
        detail: reply,
        refusals: 1,
    })))
}

/// What a refusal's reply says it is about, from the reason after the SMTP
/// codes and the `<address>: ` the reason is about. Greylisting (a policy
/// server's `Recipient address rejected: Greylisted`) is no unknown
/// recipient.
fn block_kind(reply: &[u8]) -> BlockKind {
    let reason = reason(reply);
    let says = |phrase: &Phrase| phrase.find(reason).is_some();
    if says(&BLOCKED_USING) {
        BlockKind::Dnsbl
    } else if says(&RELAY_ACCESS_DENIED) {
        BlockKind::RelayAttempt
    } else if (says(&USER_UNKNOWN) || says(&RECIPIENT_REJECTED)) && !says(&GREYLISTED) {
        BlockKind::UnknownRecipient
    } else {
        BlockKind::Other
    }
}

/// `554 5.7.1 <a@b>: Relay access denied` → `Relay access denied`.
fn reason(reply: &[u8]) -> &[u8] {
    let (code, after_code) = word(reply);
    let mut reason = if code.len() == 3 && code.iter().all(u8::is_ascii_digit) {
        after_code
    } else {
        reply
    };
    let (dsn, after_dsn) = word(reason);
    if dsn.first().is_some_and(|b| matches!(b, b'2' | b'4' | b'5')) && dsn.contains(&b'.') {
        reason = after_dsn;
    }
    if reason.starts_with(b"<") {
        if let Some(end) = ADDRESS_END.find(reason) {
            reason = reason
                .get(end + ADDRESS_END.needle().len()..)
                .unwrap_or_default();
        }
    }
    reason
}

/// `smtpd`'s `warning: host[ip]: SASL MECH authentication failed: reason[,
/// sasl_username=login]`. The login was typed by the client and is written
/// last, so it runs to the end of the line; the reason (from the
/// authentication server) ends at the first `, sasl_username=`.
fn auth_failure<'a>(at: Timestamp, text: &'a [u8]) -> Option<Parsed<'a>> {
    let (client, rest) = client_prefix(text)?;
    let rest = rest.strip_prefix(b": SASL ")?;
    let (_mechanism, rest) = word(rest);
    let rest = rest.strip_prefix(b"authentication failed")?;
    let (reason, account) = match sasl_username(rest) {
        Some(start) => {
            let (reason, login) = rest.split_at(start);
            (reason, login.get(SASL_USERNAME.len()..))
        }
        None => (rest, None),
    };
    // The server could not check the password: no guess was judged.
    let kind = if AUTHENTICATION_SERVER.find(reason).is_some() {
        AuthFailureKind::ServerFault
    } else {
        AuthFailureKind::BadPassword
    };
    Some(Parsed::Event(Event::AuthFailure(AuthFailure {
        at,
        client,
        account: account.filter(|login| !login.is_empty()),
        service: b"SMTP",
        kind,
        attempts: 1,
    })))
}

/// `host[ip]` or `host[ip]:port` at the start of `text` (the host is a
/// checked DNS name, `unknown`, or nothing for postscreen's `[ip]:port`):
/// the client and the text after it. Always inlined, as `envelope::split`
/// is, for the same stall.
#[inline(always)]
fn client_prefix(text: &[u8]) -> Option<(Client<'_>, &[u8])> {
    let (host, rest) = text.split_at_checked(find_byte(b'[', text)?)?;
    if !is_host_name(host) {
        return None;
    }
    let rest = rest.get(1..)?;
    let (ip, rest) = rest.split_at_checked(find_byte(b']', rest)?)?;
    let rest = rest.get(1..)?;
    let client = match parse_ip(ip) {
        Some(ip) => Client::Ip(ip),
        None if !host.is_empty() && host != b"unknown" => Client::Host(host),
        None => Client::Unknown,
    };
    Some((client, without_port(rest)))
}

/// `text` without a leading `:port`.
fn without_port(text: &[u8]) -> &[u8] {
    let Some(port) = text.strip_prefix(b":") else {
        return text;
    };
    let digits = port.iter().take_while(|b| b.is_ascii_digit()).count();
    if digits == 0 {
        return text;
    }
    port.get(digits..).unwrap_or_default()
}

/// The seconds a Postfix delivery line says its message spent in the
/// queue (`delay=126000.4`): with the line's time, when the message
/// arrived, even if that was before the log began. The fields are read in
/// order as [`delivery`] reads them, so no address can supply a `delay=`;
/// `None` for any other line.
pub fn delivery_delay(line: &[u8]) -> Option<f64> {
    let start = memmem::find(line, b": to=<")? + b": to=<".len();
    let (_, mut rest) = address(line.get(start..)?)?;
    loop {
        let (key, value) = key_value(rest.strip_prefix(b", ")?)?;
        if key == b"status" {
            return None;
        }
        let (value, next) = match value.strip_prefix(b"<") {
            Some(address_text) => address(address_text)?,
            None => value.split_at(comma_space(value).unwrap_or(value.len())),
        };
        if key == b"delay" {
            return std::str::from_utf8(value)
                .ok()?
                .parse::<f64>()
                .ok()
                .filter(|delay| delay.is_finite() && *delay >= 0.0);
        }
        rest = next;
    }
}

/// The master.cf service an `smtpd` runs as: the part of its syslog name
/// before the daemon (`postfix/submission/smtpd` → `submission`), or `smtp`
/// when the name has none (`postfix/smtpd`, `postfix-in/smtpd`).
fn smtpd_service(program: &[u8]) -> &[u8] {
    let mut parts = program.rsplit(|&b| b == b'/').skip(1);
    match (parts.next(), parts.next()) {
        (Some(service), Some(_)) => service,
        _ => b"smtp",
    }
}

/// The daemon of a syslog name: `postfix/submission/smtpd` → `smtpd`.
fn daemon(program: &[u8]) -> &[u8] {
    program.rsplit(|&b| b == b'/').next().unwrap_or(program)
}

/// An address from the text after its `<`, and the text after its `>`:
/// a `>` inside a quoted local part (`"a>b"@example.com`) does not end it.
fn address(text: &[u8]) -> Option<(&[u8], &[u8])> {
    let mut from = 0;
    loop {
        let found = from + find_either(b'>', b'"', text.get(from..)?)?;
        if text.get(found) == Some(&b'>') {
            let (address, rest) = text.split_at(found);
            return Some((address, rest.get(1..).unwrap_or_default()));
        }
        from = found + 1 + quoted_len(text.get(found + 1..)?)?;
    }
}

/// The length of a quoted string's content and closing quote, from the text
/// after its opening quote (`\"` and `\\` are escapes).
fn quoted_len(text: &[u8]) -> Option<usize> {
    let mut from = 0;
    loop {
        let found = from + find_either(b'"', b'\\', text.get(from..)?)?;
        if text.get(found) == Some(&b'"') {
            return Some(found + 1);
        }
        from = found + 2;
    }
}

/// `key=value…` → (`key`, `value…`). Postfix's keys are short words.
fn key_value(field: &[u8]) -> Option<(&[u8], &[u8])> {
    const LONGEST_KEY: usize = 16;
    let head = field.get(..=LONGEST_KEY).unwrap_or(field);
    let (key, value) = field.split_at_checked(find_byte(b'=', head)?)?;
    Some((key, value.get(1..)?))
}

/// The text before the last `marker`, and the value after it (qmgr's
/// values are a few digits at the line's end).
#[inline]
fn split_last_field<'a>(text: &'a [u8], marker: &[u8]) -> Option<(&'a [u8], &'a [u8])> {
    let start = rfind_near_end(text, marker)?;
    let (before, field) = text.split_at(start);
    Some((before, field.get(marker.len()..)?))
}

/// `text` up to the first of `ends` (each starting with `,`) it contains,
/// or all of it.
fn before_first<'a>(text: &'a [u8], ends: &[&[u8]]) -> &'a [u8] {
    let end = positions(b',', text)
        .find(|&comma| {
            text.get(comma..)
                .is_some_and(|rest| starts_with_any(rest, ends))
        })
        .unwrap_or(text.len());
    text.split_at(end).0
}

/// The text before the first space, and the text after it (empty if none).
fn word(text: &[u8]) -> (&[u8], &[u8]) {
    match find_byte(b' ', text) {
        Some(space) => {
            let (word, rest) = text.split_at(space);
            (word, rest.get(1..).unwrap_or_default())
        }
        None => (text, b""),
    }
}

fn starts_with_any(text: &[u8], prefixes: &[&[u8]]) -> bool {
    prefixes.iter().any(|prefix| text.starts_with(prefix))
}

fn strip_any_prefix<'a>(text: &'a [u8], prefixes: &[&[u8]]) -> Option<&'a [u8]> {
    prefixes
        .iter()
        .find_map(|prefix| text.strip_prefix(*prefix))
}

#[cfg(test)]
#[path = "postfix_tests.rs"]
mod tests;
