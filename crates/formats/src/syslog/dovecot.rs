//! Dovecot lines: logins that succeeded and logins that failed.
//!
//! Two kinds of Dovecot process tell about logins:
//!
//! - The login processes (`imap-login`, `pop3-login`, `submission-login`,
//!   `managesieve-login`) face the client and sum up each session in one
//!   line: `Login: user=<…>, method=…, rip=…` (2.4: `Logged in: …`) when it
//!   logged in, or a disconnection with its reason when it did not
//!   (`Disconnected (auth failed, 2 attempts in 4 secs): user=<…>, …`;
//!   2.3.14+/2.4: `Login aborted: Connection closed (auth failed, …)
//!   (auth_failed): …`). Those summaries carry the attempt counts.
//! - The auth process (`auth`, `auth-worker`) checks the passwords and, with
//!   `auth_verbose`, names each account tried and why it failed
//!   (`passwd-file(alice,192.0.2.7): Password mismatch`; 2.4:
//!   `auth(alice,192.0.2.7,sasl:plain)<session>: Info: sql: Password
//!   mismatch`). The process facing the client logs the same attempt
//!   (the login process's summary, Postfix's `SASL … authentication failed`),
//!   so these lines report 0 attempts: they only add the account tried.
//!
//! The rest (mail processes, master, stats…) is noise for detection.
//!
//! # Text a client chose
//!
//! Dovecot writes the user name unescaped (control characters aside), and,
//! when the admin asks for it, the password tried. Each line is read from
//! the parts only Dovecot writes:
//!
//! - Login lines: `SUMMARY: user=<U>, method=M, rip=R, lip=…, …`. The
//!   summary comes first, so the elements start at its first `: user=<`
//!   (or `: method=`, `: rip=`). U is the only client text before `rip=` (M is
//!   a SASL mechanism name, an atom with no `, `), and everything after `rip=`
//!   is Dovecot's (local address, pid, TLS state, session id), so the client
//!   address is the **last** `, rip=`: a user name holding `, rip=1.2.3.4`
//!   sits before it. The user name then ends where `, method=M` starts, M
//!   read from the right (a mechanism holds no `>`; the user element always
//!   ends with one). Refusing lines with two `rip=` instead would let a
//!   guesser hide all of a connection's attempts behind one junk last name.
//!   This assumes Dovecot's default element order (`user` first, `rip`
//!   logged); a line without `rip=` is malformed.
//! - Auth lines: `NAME(U,IP[,extras])[<session>]: MESSAGE`, where U comes
//!   first and MESSAGE may end with the password (`(given password: …)`):
//!   either may fake a `,IP): Password mismatch`. A genuine line has exactly
//!   one `): ` or `>: ` after `NAME(`, the end of the prefix; a line with more
//!   is refused as malformed rather than guessed at. Inside the prefix the
//!   IP and extras are read from the right, so commas in U stay in U.
//!
//! No event field ever holds text after the verdict phrase, where the
//! password would be.

use std::net::IpAddr;
use std::sync::LazyLock;

use mailfuse_core::net::parse_ip;
use mailfuse_core::{AuthFailure, AuthFailureKind, AuthSuccess, Client, Event, Timestamp};
use memchr::memmem::Finder;
use memchr::{memchr, memchr_iter, memrchr};

use crate::values::{rfind, Phrase};
use crate::Parsed;

/// What the Dovecot parser remembers between lines: nothing yet, as each
/// line Dovecot writes about a login stands alone. This is the place for
/// state a future line kind needs (e.g. joining an auth process line to
/// the login session that asked for it).
#[derive(Debug, Default)]
pub(super) struct DovecotState {}

/// Ends a process or request prefix (when after `)` or `>`) and the summary
/// of a login line; built once for the process.
static COLON_SPACE: Phrase = LazyLock::new(|| Finder::new(b": "));

/// Where each `: ` of `text` starts, in order. (`Finder::find_iter` would
/// copy the finder, a few hundred bytes, at every call: twice a line.)
fn colon_spaces(text: &[u8]) -> impl Iterator<Item = usize> + '_ {
    let mut from = 0;
    std::iter::from_fn(move || {
        let at = from + COLON_SPACE.find(text.get(from..)?)?;
        from = at + 2;
        Some(at)
    })
}
/// Before the client address among a login line's elements.
const COMMA_RIP: &[u8] = b", rip=";
/// Before the SASL mechanism among a login line's elements.
const COMMA_METHOD: &[u8] = b", method=";

/// Before the local address among a login line's elements, right after
/// the client's.
static COMMA_LIP: Phrase = LazyLock::new(|| Finder::new(b", lip="));

/// The login processes, the service each logs clients in to, and the
/// service of a login through a webmail on this server (it connected over
/// loopback and passed its client's IP on: `rip=` public, `lip=127.0.0.1`).
const LOGIN_SERVICES: [(&[u8], &[u8], &[u8]); 4] = [
    (b"imap-login", b"IMAP", b"IMAP via webmail"),
    (b"pop3-login", b"POP3", b"POP3 via webmail"),
    (b"submission-login", b"SMTP", b"SMTP via webmail"),
    (b"managesieve-login", b"SIEVE", b"SIEVE via webmail"),
];

/// The processes that check passwords, and the service their events name.
const AUTH_PROCESSES: [&[u8]; 2] = [b"auth", b"auth-worker"];
const AUTH_SERVICE: &[u8] = b"auth";

/// Whether `process`'s lines never tell about a login: mail access after
/// login, delivery, and the server's housekeeping. (A `match` on the names:
/// the compiler tests the length first, where a search of a list of names
/// would call `memcmp` for each of the same length.)
fn is_quiet_process(process: &[u8]) -> bool {
    matches!(
        process,
        b"master"
            | b"anvil"
            | b"stats"
            | b"old-stats"
            | b"config"
            | b"log"
            | b"imap"
            | b"pop3"
            | b"submission"
            | b"managesieve"
            | b"lmtp"
            | b"lda"
            | b"deliver"
            | b"dovecot-lda"
            | b"indexer"
            | b"indexer-worker"
            | b"dict"
            | b"doveadm"
            | b"quota-status"
            | b"ssl-params"
            | b"replicator"
            | b"aggregator"
            | b"director"
            | b"imap-hibernate"
    )
}

/// How a login process line opens when the session ended without a login.
const SESSION_ENDS: [&[u8]; 5] = [
    b"Disconnected",
    b"Aborted login",
    b"Login aborted",
    b"Remote closed connection",
    b"Client has quit the connection",
];

/// Login process lines that say nothing about a password: proxying after a
/// login, the client's ID, connection limits of an already checked login.
const LOGIN_NOTICES: [&[u8]; 3] = [b"proxy(", b"ID sent: ", b"Maximum number of connections"];

/// Reasons (in parentheses) a session ended without a login, besides
/// `(auth failed, N attempts …)`, and the failure each stands for (one
/// attempt); `None`: no password was tried or judged.
///
/// A plaintext login refused for want of TLS is `Denied`: the password was
/// never checked, and a misconfigured genuine client does the same, so it
/// must not count as a guess; the line still tells who tried which account.
const SESSION_REASONS: [(&[u8], Option<AuthFailureKind>); 7] = [
    (b"(no auth attempts", None),
    (b"(tried to use disallowed ", Some(AuthFailureKind::Denied)),
    (b"(tried to use disabled ", Some(AuthFailureKind::Denied)),
    (b"(user disabled)", Some(AuthFailureKind::Denied)),
    (b"(password expired)", Some(AuthFailureKind::Denied)),
    (
        b"(proxy dest auth failed)",
        Some(AuthFailureKind::BadPassword),
    ),
    (
        b"(auth process communication failure)",
        Some(AuthFailureKind::ServerFault),
    ),
];

/// How the auth process words a failed check (compared without case: PAM
/// modules differ), after the request prefix and the 2.4 driver name.
const AUTH_VERDICTS: [(&[u8], AuthFailureKind); 8] = [
    (b"Password mismatch", AuthFailureKind::BadPassword),
    (b"unknown user", AuthFailureKind::UnknownUser),
    // LDAP with auth_bind: the directory refused the bind.
    (b"invalid credentials", AuthFailureKind::BadPassword),
    (
        b"pam_authenticate() failed: Authentication failure",
        AuthFailureKind::BadPassword,
    ),
    (
        b"pam_authenticate() failed: User not known to the underlying authentication module",
        AuthFailureKind::UnknownUser,
    ),
    (
        b"pam_authenticate() failed: Authentication service cannot retrieve authentication info",
        AuthFailureKind::ServerFault,
    ),
    (
        b"pam_authenticate() failed: Permission denied",
        AuthFailureKind::Denied,
    ),
    (b"pam_acct_mgmt() failed", AuthFailureKind::Denied),
];

/// The level Dovecot writes before a message (`Error: `…); syslog lines at
/// info level have none.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Severity {
    Info,
    /// Warnings and debugging output: never a verdict on a login.
    Chatter,
    /// `Error`, `Fatal`, `Panic`: for the auth process, a password it could
    /// not check.
    Error,
}

const SEVERITIES: [(&[u8], Severity); 6] = [
    (b"Info: ", Severity::Info),
    (b"Warning: ", Severity::Chatter),
    (b"Debug: ", Severity::Chatter),
    (b"Error: ", Severity::Error),
    (b"Fatal: ", Severity::Error),
    (b"Panic: ", Severity::Error),
];

/// A Dovecot line. `message` starts with the Dovecot process, whatever
/// carried it: `imap-login: Login: user=<…>, …` (after syslog's
/// `dovecot: ` or `dovecot[pid]: `), `imap-login: Info: Login: …` (Dovecot's
/// own `log_path`), `auth-worker(304): pam(user,ip): …`,
/// `auth(user,ip,sasl:login)<session>: Info: sql: Password mismatch` (2.4).
pub(super) fn parse<'a>(at: Timestamp, message: &'a [u8], _state: &mut DovecotState) -> Parsed<'a> {
    // Dovecot 2.0, and syslog setups naming the program differently, repeat it.
    let message = message.strip_prefix(b"dovecot: ").unwrap_or(message);
    let (process, after_name) = leading_name(message);
    if let Some(&(_, service, via_webmail)) =
        LOGIN_SERVICES.iter().find(|(name, _, _)| *name == process)
    {
        return match after_name.strip_prefix(b": ") {
            Some(text) => login_line(at, [service, via_webmail], text),
            None => Parsed::Unknown,
        };
    }
    if AUTH_PROCESSES.contains(&process) {
        return auth_line(at, message, after_name);
    }
    let prefix_follows = matches!(after_name.first(), Some(b':' | b'(' | b'<'));
    if prefix_follows && is_quiet_process(process) {
        Parsed::Ignored
    } else {
        Parsed::Unknown
    }
}

/// The text after `imap-login: ` (or another login process); `services`
/// are the process's service and its name through a local webmail.
fn login_line<'a>(at: Timestamp, services: [&'static [u8]; 2], text: &'a [u8]) -> Parsed<'a> {
    let [service, via_webmail] = services;
    let (severity, text) = severity(text);
    if severity.is_some_and(|level| level != Severity::Info)
        || LOGIN_NOTICES.iter().any(|notice| text.starts_with(notice))
    {
        return Parsed::Ignored;
    }
    let Some((summary, elements)) = split_summary(text) else {
        return Parsed::Unknown;
    };
    if summary == b"Login" || summary == b"Logged in" {
        return match login_fields(elements) {
            Ok((Some(account), client)) => Parsed::Event(Event::AuthSuccess(AuthSuccess {
                at,
                client,
                account,
                service: if through_local_proxy(elements, client) {
                    via_webmail
                } else {
                    service
                },
            })),
            Ok((None, _)) => Parsed::Malformed("login without a user"),
            Err(reason) => Parsed::Malformed(reason),
        };
    }
    if !SESSION_ENDS.iter().any(|end| summary.starts_with(end)) {
        return Parsed::Unknown;
    }
    let (kind, attempts) = match session_verdict(summary) {
        Ok(Some(verdict)) => verdict,
        Ok(None) => return Parsed::Ignored,
        Err(reason) => return Parsed::Malformed(reason),
    };
    match login_fields(elements) {
        Ok((account, client)) => failure(at, client, account, service, kind, attempts),
        Err(reason) => Parsed::Malformed(reason),
    }
}

/// The summary of a login line and its elements (`user=<…>, …`): they start
/// after the first `: ` followed by an element Dovecot puts first. The
/// summary is Dovecot's own text, so the first such `: ` is the real one.
fn split_summary(text: &[u8]) -> Option<(&[u8], &[u8])> {
    colon_spaces(text).find_map(|at| {
        let (summary, rest) = text.split_at_checked(at)?;
        let elements = rest.get(2..)?;
        [&b"user=<"[..], b"method=", b"rip="]
            .iter()
            .any(|key| elements.starts_with(key))
            .then_some((summary, elements))
    })
}

/// The failure a session summary reports and its attempts; `None` when no
/// password was judged (the client never tried one, or left before the
/// verdict).
fn session_verdict(summary: &[u8]) -> Result<Option<(AuthFailureKind, u32)>, &'static str> {
    for open in memchr_iter(b'(', summary) {
        let Some(reason) = summary.get(open..) else {
            break;
        };
        if let Some(count) = reason.strip_prefix(b"(auth failed, ") {
            let attempts = attempt_count(count).ok_or("unreadable attempt count")?;
            return Ok(Some((AuthFailureKind::BadPassword, attempts)));
        }
        if let Some(&(_, kind)) = SESSION_REASONS
            .iter()
            .find(|(opening, _)| reason.starts_with(opening))
        {
            return Ok(kind.map(|kind| (kind, 1)));
        }
    }
    Ok(None)
}

/// `N` of `N attempts in M secs)`.
fn attempt_count(text: &[u8]) -> Option<u32> {
    let digits = text.iter().take_while(|b| b.is_ascii_digit()).count();
    let (number, rest) = text.split_at_checked(digits)?;
    if number.is_empty() || !rest.starts_with(b" attempt") {
        return None;
    }
    number.iter().try_fold(0u32, |n, &digit| {
        n.checked_mul(10)?.checked_add(u32::from(digit - b'0'))
    })
}

/// The user (`None` if absent or empty) and client of a login line's
/// elements; see the module documentation for why `rip=` is the last one.
fn login_fields(elements: &[u8]) -> Result<(Option<&[u8]>, Client<'_>), &'static str> {
    let (head, rip) = match rfind(elements, COMMA_RIP) {
        Some(at) => (
            elements.get(..at).unwrap_or_default(),
            elements.get(at + COMMA_RIP.len()..),
        ),
        None => (&b""[..], elements.strip_prefix(b"rip=")),
    };
    let rip = rip.ok_or("login line without rip=")?;
    let rip = rip
        .get(..memchr(b',', rip).unwrap_or(rip.len()))
        .unwrap_or(rip);
    let ip = parse_ip(rip).ok_or("login line with an unreadable rip=")?;
    Ok((user_element(head), Client::Ip(ip)))
}

/// Whether a login came in over loopback on behalf of a client elsewhere:
/// a webmail (or proxy) on this server that passes its client's IP on
/// (Roundcube's IMAP `ID`, with the server in `login_trusted_networks`).
/// Without it Dovecot logs `rip=127.0.0.1`, and the login names no one.
fn through_local_proxy(elements: &[u8], client: Client<'_>) -> bool {
    let Some(rip) = client.ip() else {
        return false;
    };
    // `lip=` follows `rip=` (the last one: see the module documentation),
    // in Dovecot's own text, out of the user name's reach.
    let after_rip =
        rfind(elements, COMMA_RIP).map_or(elements, |at| elements.get(at..).unwrap_or_default());
    let lip = COMMA_LIP
        .find(after_rip)
        .and_then(|at| after_rip.get(at + COMMA_LIP.needle().len()..))
        .map(|lip| {
            lip.get(..memchr(b',', lip).unwrap_or(lip.len()))
                .unwrap_or(lip)
        })
        .and_then(parse_ip);
    lip.is_some_and(|lip| lip.is_loopback()) && !rip.is_loopback()
}

/// The name in `user=<NAME>` or `user=<NAME>, method=M`: everything up to
/// the `>` before the mechanism, which is read from the right.
fn user_element(head: &[u8]) -> Option<&[u8]> {
    let head = match rfind(head, COMMA_METHOD) {
        Some(at)
            if head
                .get(at + COMMA_METHOD.len()..)
                .is_some_and(is_mechanism) =>
        {
            head.get(..at)?
        }
        _ => head,
    };
    let user = head.strip_prefix(b"user=<")?.strip_suffix(b">")?;
    (!user.is_empty()).then_some(user)
}

/// Whether `name` can be a SASL mechanism (`PLAIN`, `SCRAM-SHA-256`).
fn is_mechanism(name: &[u8]) -> bool {
    !name.is_empty()
        && name
            .iter()
            .all(|&b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_'))
}

/// An auth process line: `line` starts at the process name, `after_name`
/// right after it.
fn auth_line<'a>(at: Timestamp, line: &'a [u8], after_name: &'a [u8]) -> Parsed<'a> {
    let text = match after_name.strip_prefix(b": ") {
        Some(text) => text,
        // 2.4 names the request in the process prefix: `auth(user,ip,…)<session>: `.
        None => after_process_id(after_name).unwrap_or(line),
    };
    let (early_severity, text) = severity(text);
    let text = without_worker_connection(text);
    let request = request_prefix(text);
    let (message, late_severity) = match request {
        Request::Named { message, .. } => {
            let (level, message) = severity(message);
            (without_driver(message), level)
        }
        Request::Absent | Request::Ambiguous => (text, None),
    };
    let severity = early_severity.or(late_severity);
    if severity == Some(Severity::Chatter) {
        return Parsed::Ignored;
    }
    let verdict = AUTH_VERDICTS
        .iter()
        .find(|(phrase, _)| starts_with_ignoring_case(message, phrase))
        .map(|&(_, kind)| kind);
    let is_error = severity == Some(Severity::Error);
    match (request, verdict) {
        (
            Request::Named {
                account, client, ..
            },
            Some(kind),
        ) => failure(at, client, account, AUTH_SERVICE, kind, 0),
        // Without an IP the parentheses may hold a server or file name
        // (`mysql(localhost): Connect failed`), not a user.
        (
            Request::Named {
                account, client, ..
            },
            None,
        ) if is_error => {
            let account = account.filter(|_| client.ip().is_some());
            failure(
                at,
                client,
                account,
                AUTH_SERVICE,
                AuthFailureKind::ServerFault,
                0,
            )
        }
        // A backend error about no request (`Error: LDAP: Connection to server
        // failed`), or one whose names cannot be trusted: no one to name.
        (Request::Absent | Request::Ambiguous, _) if is_error => failure(
            at,
            Client::Unknown,
            None,
            AUTH_SERVICE,
            AuthFailureKind::ServerFault,
            0,
        ),
        (Request::Ambiguous, _) => {
            Parsed::Malformed("auth line whose user name or password holds `): ` or `>: `")
        }
        _ => Parsed::Unknown,
    }
}

/// The text after `(304): ` or `(default): `: a process id, not a request.
fn after_process_id(text: &[u8]) -> Option<&[u8]> {
    let inside = text.strip_prefix(b"(")?;
    let (id, rest) = inside.split_at_checked(memchr(b')', inside)?)?;
    let is_id = id == b"default" || (!id.is_empty() && id.iter().all(u8::is_ascii_digit));
    if !is_id {
        return None;
    }
    rest.strip_prefix(b"): ")
}

/// `text` without the prefix 2.3's auth-worker puts before the request it
/// serves: `conn unix:auth-worker (pid=14830,uid=109): auth-worker<6>: `.
fn without_worker_connection(text: &[u8]) -> &[u8] {
    let Some(connection) = text.strip_prefix(b"conn ") else {
        return text;
    };
    let Some(rest) = prefix_end(connection).and_then(|end| connection.get(end + 2..)) else {
        return text;
    };
    let (name, after_name) = leading_name(rest);
    let Some(number) = after_name.strip_prefix(b"<") else {
        return rest;
    };
    let digits = number.iter().take_while(|b| b.is_ascii_digit()).count();
    match number.get(digits..).and_then(|r| r.strip_prefix(b">: ")) {
        Some(request) if !name.is_empty() && digits > 0 => request,
        _ => rest,
    }
}

/// What a `NAME(user,ip,…)[<session>]: ` prefix says.
#[derive(Clone, Copy)]
enum Request<'a> {
    /// The text does not start with such a prefix.
    Absent,
    /// More than one place could end the prefix: the user name or the
    /// password holds `): ` or `>: `.
    Ambiguous,
    Named {
        account: Option<&'a [u8]>,
        client: Client<'a>,
        /// The text after the prefix.
        message: &'a [u8],
    },
}

fn request_prefix(text: &[u8]) -> Request<'_> {
    let (name, after_name) = leading_name(text);
    let Some(inside) = after_name.strip_prefix(b"(").filter(|_| !name.is_empty()) else {
        return Request::Absent;
    };
    let Some(end) = prefix_end(inside) else {
        return Request::Absent;
    };
    let (Some(prefix), Some(message)) = (inside.get(..end), inside.get(end + 2..)) else {
        return Request::Absent;
    };
    if prefix_end(message).is_some() {
        return Request::Ambiguous;
    }
    // `PAIR)` or `PAIR)<session>`: a session id is base64, without `)<`.
    let pair = match prefix.strip_suffix(b")") {
        Some(pair) => Some(pair),
        None => rfind(prefix, b")<").and_then(|close| prefix.get(..close)),
    };
    let Some(pair) = pair else {
        return Request::Absent;
    };
    let (account, ip) = request_pair(pair);
    Request::Named {
        account,
        client: ip.map_or(Client::Unknown, Client::Ip),
        message,
    }
}

/// Where a process or request prefix ends: the first `: ` after `)` or `>`.
fn prefix_end(text: &[u8]) -> Option<usize> {
    colon_spaces(text).find(|&at| {
        at.checked_sub(1)
            .and_then(|before| text.get(before))
            .is_some_and(|&b| b == b')' || b == b'>')
    })
}

/// The user and IP of `user,ip[,master][,<session>][,sasl:mech]`, read from
/// the right since the user comes first and may hold commas. Without an IP
/// (Dovecot leaves it out when it does not know it) all is the user.
fn request_pair(pair: &[u8]) -> (Option<&[u8]>, Option<IpAddr>) {
    let mut rest = pair;
    loop {
        let Some(comma) = memrchr(b',', rest) else {
            return (account_named(rest), None);
        };
        let (user, field) = (
            rest.get(..comma).unwrap_or_default(),
            rest.get(comma + 1..).unwrap_or_default(),
        );
        if is_request_extra(field) {
            rest = user;
            continue;
        }
        return match parse_ip(field) {
            Some(ip) => (account_named(user), Some(ip)),
            None => (account_named(rest), None),
        };
    }
}

/// Whether a field of a request prefix is one Dovecot adds after the IP.
fn is_request_extra(field: &[u8]) -> bool {
    field == b"master"
        || field.starts_with(b"sasl:")
        || (field.starts_with(b"<") && field.ends_with(b">"))
}

/// A user as the auth process names it: `?` (or nothing) when unknown.
fn account_named(user: &[u8]) -> Option<&[u8]> {
    (!user.is_empty() && user != b"?").then_some(user)
}

/// `message` without the 2.4 passdb driver that says it (`sql: `).
fn without_driver(message: &[u8]) -> &[u8] {
    let (driver, rest) = leading_name(message);
    match rest.strip_prefix(b": ") {
        Some(rest) if !driver.is_empty() => rest,
        _ => message,
    }
}

/// The severity Dovecot wrote at the start of `text`, and the text after it.
fn severity(text: &[u8]) -> (Option<Severity>, &[u8]) {
    SEVERITIES
        .iter()
        .find_map(|&(prefix, level)| Some((Some(level), text.strip_prefix(prefix)?)))
        .unwrap_or((None, text))
}

/// The process or driver name at the start of `text` (`imap-login`,
/// `auth-worker`, `passwd-file`; may be empty) and the text after it.
fn leading_name(text: &[u8]) -> (&[u8], &[u8]) {
    let len = text
        .iter()
        .position(|&b| !(b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'-' | b'_')))
        .unwrap_or(text.len());
    text.split_at_checked(len).unwrap_or((text, b""))
}

fn starts_with_ignoring_case(text: &[u8], prefix: &[u8]) -> bool {
    text.get(..prefix.len())
        .is_some_and(|start| start.eq_ignore_ascii_case(prefix))
}

fn failure<'a>(
    at: Timestamp,
    client: Client<'a>,
    account: Option<&'a [u8]>,
    service: &'a [u8],
    kind: AuthFailureKind,
    attempts: u32,
) -> Parsed<'a> {
    Parsed::Event(Event::AuthFailure(AuthFailure {
        at,
        client,
        account,
        service,
        kind,
        attempts,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    const AT: Timestamp = Timestamp(1_700_000_000);

    fn parsed(message: &[u8]) -> Parsed<'_> {
        parse(AT, message, &mut DovecotState::default())
    }

    fn ip(text: &str) -> Client<'static> {
        Client::Ip(text.parse().expect("a valid test address"))
    }

    fn failure_of(message: &[u8]) -> AuthFailure<'_> {
        match parsed(message) {
            Parsed::Event(Event::AuthFailure(failure)) => failure,
            other => panic!("not a failed login: {other:?}"),
        }
    }

    fn success_of(message: &[u8]) -> AuthSuccess<'_> {
        match parsed(message) {
            Parsed::Event(Event::AuthSuccess(success)) => success,
            other => panic!("not a login: {other:?}"),
        }
    }

    fn expect_failure(
        message: &[u8],
        client: Client<'_>,
        account: Option<&str>,
        service: &str,
        kind: AuthFailureKind,
        attempts: u32,
    ) {
        let failure = failure_of(message);
        assert_eq!(failure.at, AT);
        assert_eq!(
            failure.client,
            client,
            "{}",
            String::from_utf8_lossy(message)
        );
        assert_eq!(failure.account, account.map(str::as_bytes));
        assert_eq!(failure.service, service.as_bytes());
        assert_eq!(failure.kind, kind);
        assert_eq!(failure.attempts, attempts);
    }

    #[test]
    fn logins_of_each_service_in_2_3_and_2_4_wording() {
        let lines: [(&[u8], &str, &str, &str); 6] = [
            (
                b"imap-login: Login: user=<alice@example.com>, method=PLAIN, rip=203.0.113.7, lip=10.0.0.2, mpid=1234, TLS, session=<abc>",
                "alice@example.com",
                "203.0.113.7",
                "IMAP",
            ),
            // Dovecot's own log_path writes the level.
            (
                b"imap-login: Info: Login: user=<alice@example.com>, method=PLAIN, rip=203.0.113.7, lip=10.0.0.2, mpid=1234, TLS, session=<abc>",
                "alice@example.com",
                "203.0.113.7",
                "IMAP",
            ),
            (
                b"pop3-login: Logged in: user=<bob>, method=PLAIN, rip=198.51.100.4, lip=192.0.2.1, mpid=77, secured, session=<QdO9yF0Fr8x/AAAB>",
                "bob",
                "198.51.100.4",
                "POP3",
            ),
            (
                b"submission-login: Logged in: user=<carol@example.org>, method=LOGIN, rip=2001:db8:5::17, lip=2001:db8::1, mpid=900, TLS, session=<x>",
                "carol@example.org",
                "2001:db8:5::17",
                "SMTP",
            ),
            (
                b"managesieve-login: Login: user=<dave>, method=SCRAM-SHA-256, rip=192.0.2.44, lip=192.0.2.1, mpid=5, TLS",
                "dave",
                "192.0.2.44",
                "SIEVE",
            ),
            // Dovecot 2.0 style, the program name repeated.
            (
                b"dovecot: imap-login: Login: user=<erin>, method=PLAIN, rip=192.0.2.45, lip=192.0.2.1",
                "erin",
                "192.0.2.45",
                "IMAP",
            ),
        ];
        for (line, account, address, service) in lines {
            let success = success_of(line);
            assert_eq!(success.at, AT);
            assert_eq!(success.account, account.as_bytes());
            assert_eq!(success.client, ip(address));
            assert_eq!(success.service, service.as_bytes());
        }
    }

    #[test]
    fn a_login_over_loopback_for_a_client_elsewhere_is_through_the_webmail() {
        let lines: [(&[u8], &str, &str); 5] = [
            // Roundcube passing its client's IP on (IMAP ID, trusted network).
            (
                b"imap-login: Login: user=<j.novak@acme.example>, method=PLAIN, rip=198.51.100.7, lip=127.0.0.1, mpid=4711, secured, session=<n9Q3yF0Fr8x/AAAB>",
                "198.51.100.7",
                "IMAP via webmail",
            ),
            (
                b"imap-login: Logged in: user=<j.novak@acme.example>, method=PLAIN, rip=2001:db8:7::1, lip=::1, mpid=12, secured, session=<x>",
                "2001:db8:7::1",
                "IMAP via webmail",
            ),
            // Without it, the webmail itself is the client: no one is named.
            (
                b"imap-login: Login: user=<j.novak@acme.example>, method=PLAIN, rip=127.0.0.1, lip=127.0.0.1, mpid=4712, secured, session=<m8P2xE9Eq7w/AAAB>",
                "127.0.0.1",
                "IMAP",
            ),
            // A client elsewhere connecting to the server's own address.
            (
                b"imap-login: Login: user=<j.novak@acme.example>, method=PLAIN, rip=198.51.100.7, lip=203.0.113.25, mpid=4713, TLS, session=<a>",
                "198.51.100.7",
                "IMAP",
            ),
            // A user name cannot fake the local address.
            (
                b"imap-login: Login: user=<x, lip=127.0.0.1>, method=PLAIN, rip=198.51.100.7, lip=203.0.113.25",
                "198.51.100.7",
                "IMAP",
            ),
        ];
        for (line, address, service) in lines {
            let success = success_of(line);
            assert_eq!(success.client, ip(address));
            assert_eq!(
                success.service,
                service.as_bytes(),
                "{}",
                String::from_utf8_lossy(line)
            );
        }
    }

    #[test]
    fn session_summaries_count_their_failed_attempts() {
        use AuthFailureKind::BadPassword;
        expect_failure(
            b"imap-login: Disconnected (auth failed, 2 attempts in 4 secs): user=<username.bob>, method=PLAIN, rip=49.176.98.87, lip=113.212.99.194, TLS",
            ip("49.176.98.87"),
            Some("username.bob"),
            "IMAP",
            BadPassword,
            2,
        );
        // Before 2.2: no duration.
        expect_failure(
            b"imap-login: Disconnected (auth failed, 1 attempts): user=<username.bob>, method=PLAIN, rip=49.176.98.87, lip=113.212.99.194, TLS",
            ip("49.176.98.87"),
            Some("username.bob"),
            "IMAP",
            BadPassword,
            1,
        );
        expect_failure(
            b"pop3-login: Aborted login (auth failed, 1 attempts in 2 secs): user=<info@polizoidis.gr>, method=PLAIN, rip=94.67.45.142, lip=147.135.223.62, session=<Yuu4QNVcNw5eQy2O>",
            ip("94.67.45.142"),
            Some("info@polizoidis.gr"),
            "POP3",
            BadPassword,
            1,
        );
        // 2.3.14+ and 2.4, carried by log_path.
        expect_failure(
            b"imap-login: Info: Login aborted: Connection closed (auth failed, 3 attempts in 15 secs) (auth_failed): user=<eft>, method=PLAIN, rip=80.51.181.144, lip=127.4.20.69, TLS, session=<25Nw4GQ3Ms9QM7WQ>",
            ip("80.51.181.144"),
            Some("eft"),
            "IMAP",
            BadPassword,
            3,
        );
        expect_failure(
            b"submission-login: Disconnected: Aborted login by logging out (auth failed, 1 attempts in 2 secs): user=<business>, method=LOGIN, rip=141.98.10.24, lip=192.168.18.1, TLS, session=<xPPIsz/mR/KNYgoY>",
            ip("141.98.10.24"),
            Some("business"),
            "SMTP",
            BadPassword,
            1,
        );
        expect_failure(
            b"pop3-login: Disconnected: Inactivity (auth failed, 1 attempts): user=<info>, method=PLAIN, rip=193.95.245.163, lip=176.214.13.210",
            ip("193.95.245.163"),
            Some("info"),
            "POP3",
            BadPassword,
            1,
        );
        expect_failure(
            b"imap-login: Disconnected (auth failed, 1 attempts in 4 secs): user=<zahid@aquapet.or.ke>, method=PLAIN, rip=2001:db8:0:1::9, lip=2001:db8::1, TLS: Disconnected, session=<9razwUB8JtHF6BHU>",
            ip("2001:db8:0:1::9"),
            Some("zahid@aquapet.or.ke"),
            "IMAP",
            BadPassword,
            1,
        );
    }

    #[test]
    fn summaries_without_a_user_name_no_account() {
        expect_failure(
            b"imap-login: Disconnected (auth failed, 1 attempts): method=PLAIN, rip=59.167.242.100, lip=113.212.99.194, TLS: Disconnected",
            ip("59.167.242.100"),
            None,
            "IMAP",
            AuthFailureKind::BadPassword,
            1,
        );
        expect_failure(
            b"imap-login: Disconnected (auth failed, 4 attempts in 9 secs): user=<>, method=PLAIN, rip=192.0.2.9, lip=192.0.2.1",
            ip("192.0.2.9"),
            None,
            "IMAP",
            AuthFailureKind::BadPassword,
            4,
        );
    }

    #[test]
    fn other_session_endings() {
        use AuthFailureKind::*;
        expect_failure(
            b"pop3-login: Disconnected (tried to use disallowed plaintext auth): user=<info@ABFORMALAPPAREL.COM>, rip=82.165.69.159, lip=192.168.0.12, session=<RufRiSJc0KxSpUWf>",
            ip("82.165.69.159"),
            Some("info@ABFORMALAPPAREL.COM"),
            "POP3",
            Denied,
            1,
        );
        expect_failure(
            b"pop3-login: Aborted login (tried to use disabled plaintext auth): rip=190.210.136.21, lip=113.212.99.193",
            ip("190.210.136.21"),
            None,
            "POP3",
            Denied,
            1,
        );
        expect_failure(
            b"imap-login: Disconnected (user disabled): user=<gone>, method=PLAIN, rip=192.0.2.8, lip=192.0.2.1",
            ip("192.0.2.8"),
            Some("gone"),
            "IMAP",
            Denied,
            1,
        );
        expect_failure(
            b"imap-login: Disconnected (proxy dest auth failed): user=<frank>, method=PLAIN, rip=192.0.2.10, lip=192.0.2.1",
            ip("192.0.2.10"),
            Some("frank"),
            "IMAP",
            BadPassword,
            1,
        );
        expect_failure(
            b"imap-login: Disconnected (auth process communication failure): user=<frank>, method=PLAIN, rip=192.0.2.10, lip=192.0.2.1",
            ip("192.0.2.10"),
            Some("frank"),
            "IMAP",
            ServerFault,
            1,
        );
    }

    #[test]
    fn sessions_without_a_password_are_ignored() {
        let lines: [&[u8]; 8] = [
            b"pop3-login: Disconnected (no auth attempts in 58 secs): user=<>, rip=192.51.100.13, lip=203.0.113.17, session=<LgDINsQCkttVIMPg>",
            b"imap-login: Disconnected (no auth attempts): rip=180.189.168.166, lip=113.212.99.194, TLS handshaking: Disconnected",
            b"imap-login: Aborted login (no auth attempts in 0 secs): user=<>, rip=127.0.0.1, lip=127.0.0.1, secured, session=<5imEKGV9/K5/AAAB>",
            b"managesieve-login: Login aborted: Connection closed (no auth attempts in 2 secs) (no_auth_attempts): user=<>, rip=84.54.49.6, lip=84.54.49.38",
            b"imap-login: Login aborted: Connection closed: SSL_read failed: error:0A000412:SSL routines::sslv3 alert bad certificate: SSL alert number 42 (no auth attempts in 0 secs) (no_auth_attempts): user=<>, rip=52.97.188.37, lip=5.135.93.75, TLS: SSL_read failed: error:0A000412:SSL routines::sslv3 alert bad certificate: SSL alert number 42, session=<NjJkEGQ3dIo0Ybwl>",
            b"managesieve-login: Login aborted: Connection closed (disconnected before auth was ready, waited 0 secs) (auth_process_not_ready): user=<>, rip=84.54.49.6",
            b"imap-login: Disconnected (client didn't finish SASL auth, waited 0 secs): user=<>, method=PLAIN, rip=192.0.2.3, lip=192.0.2.1",
            b"imap-login: Disconnected: Connection closed: SSL_accept() failed: error:14209102 (disconnected during TLS handshake) (no auth attempts in 0 secs): user=<>, rip=192.0.2.3, lip=192.0.2.1, TLS handshaking: SSL_accept() failed",
        ];
        for line in lines {
            assert_eq!(
                parsed(line),
                Parsed::Ignored,
                "{}",
                String::from_utf8_lossy(line)
            );
        }
    }

    #[test]
    fn auth_process_names_the_account_without_counting_the_attempt() {
        use AuthFailureKind::*;
        let lines: [(&[u8], &str, &str, AuthFailureKind); 10] = [
            (
                b"auth-worker(304): pam(username,1.2.3.4): pam_authenticate() failed: Authentication failure (password mismatch?)",
                "username",
                "1.2.3.4",
                BadPassword,
            ),
            (
                b"auth-worker(14864): conn unix:auth-worker (pid=14830,uid=109): auth-worker<6>: pam(caliph@customdomaine.com,5.34.207.151): pam_authenticate() failed: Authentication failure (Password mismatch?)",
                "caliph@customdomaine.com",
                "5.34.207.151",
                BadPassword,
            ),
            (
                b"auth-worker(default): Info: pam(username,1.2.3.4): pam_authenticate() failed: Authentication failure (password mismatch?)",
                "username",
                "1.2.3.4",
                BadPassword,
            ),
            (
                b"auth(default): pam(account@MYSERVERNAME.com,200.76.17.206): pam_authenticate() failed: User not known to the underlying authentication module: 2 Time(s)",
                "account@MYSERVERNAME.com",
                "200.76.17.206",
                UnknownUser,
            ),
            (
                b"auth: passwd-file(alice,127.0.0.1,<Jw6vVUJFDeV/AAAB>): Password mismatch",
                "alice",
                "127.0.0.1",
                BadPassword,
            ),
            (
                b"auth: Info: passwd-file(bob,127.0.0.1): unknown user",
                "bob",
                "127.0.0.1",
                UnknownUser,
            ),
            (
                b"auth: sql(u,203.0.113.50,<sess>): unknown user (SHA1 of given password: 5baa61e4c9b93f3f0682250b6cf8331b7ee68fd8)",
                "u",
                "203.0.113.50",
                UnknownUser,
            ),
            (
                b"auth: ldap(grace@example.com,2001:db8::66,master,<sess>): invalid credentials",
                "grace@example.com",
                "2001:db8::66",
                BadPassword,
            ),
            (
                b"auth(info@example.com,192.0.2.110,sasl:login)<CvN+E95Uf4e7eEnj>: Info: sql: Password mismatch (given password: XxxxXXxx123)",
                "info@example.com",
                "192.0.2.110",
                BadPassword,
            ),
            (
                b"auth(henry,2001:db8::7,sasl:plain)<Zk0+Uf4e7eEnj>: passwd-file: unknown user",
                "henry",
                "2001:db8::7",
                UnknownUser,
            ),
        ];
        for (line, account, address, kind) in lines {
            expect_failure(line, ip(address), Some(account), "auth", kind, 0);
        }
    }

    #[test]
    fn the_given_password_is_in_no_field() {
        let line = b"auth(info@example.com,192.0.2.110,sasl:login)<CvN+E95Uf4e7eEnj>: Info: sql: Password mismatch (given password: XxxxXXxx123)";
        let failure = failure_of(line);
        let fields = [failure.account.unwrap_or_default(), failure.service];
        for field in fields {
            assert!(!field.windows(11).any(|w| w == b"XxxxXXxx123"));
        }
        let line =
            b"auth: passwd-file(alice,192.0.2.1): Password mismatch (given password: hunter2)";
        let failure = failure_of(line);
        assert_eq!(failure.account, Some(&b"alice"[..]));
    }

    #[test]
    fn auth_lines_with_unknown_or_missing_names() {
        expect_failure(
            b"auth: plain(?,192.0.2.5): unknown user",
            ip("192.0.2.5"),
            None,
            "auth",
            AuthFailureKind::UnknownUser,
            0,
        );
        expect_failure(
            b"auth(,192.0.2.5,sasl:plain)<s>: Info: passwd-file: Password mismatch",
            ip("192.0.2.5"),
            None,
            "auth",
            AuthFailureKind::BadPassword,
            0,
        );
        // No IP known (a local client): all of the pair is the user.
        expect_failure(
            b"auth: passwd-file(ivan): unknown user",
            Client::Unknown,
            Some("ivan"),
            "auth",
            AuthFailureKind::UnknownUser,
            0,
        );
    }

    #[test]
    fn auth_backend_errors_are_server_faults() {
        use AuthFailureKind::ServerFault;
        expect_failure(
            b"auth-worker(304): pam(judy,192.0.2.7): pam_authenticate() failed: Authentication service cannot retrieve authentication info",
            ip("192.0.2.7"),
            Some("judy"),
            "auth",
            ServerFault,
            0,
        );
        expect_failure(
            b"auth: Error: ldap(judy,192.0.2.7,<sess>): Connection appears to be hanging, reconnecting",
            ip("192.0.2.7"),
            Some("judy"),
            "auth",
            ServerFault,
            0,
        );
        expect_failure(
            b"auth(judy,192.0.2.7,sasl:plain)<sess>: Error: ldap: Connection to server failed",
            ip("192.0.2.7"),
            Some("judy"),
            "auth",
            ServerFault,
            0,
        );
        expect_failure(
            b"auth: Error: LDAP: Connection to server failed",
            Client::Unknown,
            None,
            "auth",
            ServerFault,
            0,
        );
        let lines: [&[u8]; 3] = [
            b"auth-worker(12): Error: mysql(localhost): Connect failed to database (mail): Can't connect",
            b"auth-worker(12): Error: mysql(localhost): Connect failed to database",
            b"auth: Error: ldap(/etc/dovecot/dovecot-ldap.conf.ext): Connection to server failed",
        ];
        for line in lines {
            expect_failure(line, Client::Unknown, None, "auth", ServerFault, 0);
        }
    }

    #[test]
    fn noise_is_ignored() {
        let lines: [&[u8]; 14] = [
            b"master: Dovecot v2.3.19 starting up for imap, pop3, lmtp (core dumps disabled)",
            b"master: Info: Dovecot v2.4.1 starting up for imap, lmtp",
            b"imap(alice)<1234><Wb1tVUJF3OV/AAAB>: Disconnected: Logged out in=123 out=4567 deleted=0 expunged=0 trashed=0 hdr_count=0 hdr_bytes=0 body_count=0 body_bytes=0",
            b"imap(alice): Logged out in=11, out=476, bytes=11/476",
            b"lmtp(4321): Connect from local",
            b"lmtp(alice)<4321><Tg3jM0FDeV+jEAAA>: msgid=<x@example.com>: saved mail to INBOX",
            b"auth: Warning: auth client 0 disconnected with 1 pending requests: EOF",
            b"auth: Debug: passwd-file(alice,192.0.2.1): lookup: user=alice file=/etc/dovecot/users",
            b"auth(alice,192.0.2.1,sasl:plain)<s>: Debug: sql: query: SELECT password FROM users",
            b"anvil: Error: net_accept() failed: Too many open files",
            b"stats: Error: stats: Client sent invalid input",
            b"config: Warning: please note that ssl_protocols is deprecated",
            b"imap-login: proxy(alice): started proxying to 10.0.0.5:143",
            b"imap-login: Warning: Auth process not responding, delayed sending initial response (greeting)",
        ];
        for line in lines {
            assert_eq!(
                parsed(line),
                Parsed::Ignored,
                "{}",
                String::from_utf8_lossy(line)
            );
        }
    }

    #[test]
    fn unknown_lines() {
        let lines: [&[u8]; 8] = [
            b"",
            b"frobnicator: hello",
            b"imap-login: Something new: user=<alice>, rip=192.0.2.1",
            b"imap-login: Hello there",
            b"imap-login(x): Login: user=<alice>, rip=192.0.2.1",
            b"auth: passwd-file(alice,192.0.2.1): lookup done",
            b"auth: Info: Loading modules from directory: /usr/lib/dovecot/modules/auth",
            b"MASTER: Dovecot starting",
        ];
        for line in lines {
            assert_eq!(
                parsed(line),
                Parsed::Unknown,
                "{}",
                String::from_utf8_lossy(line)
            );
        }
    }

    #[test]
    fn a_user_name_cannot_move_the_client_address() {
        // The client chose everything inside user=<…>; the last rip= is Dovecot's.
        let failure = failure_of(
            b"imap-login: Disconnected (auth failed, 1 attempts in 2 secs): user=<x, rip=1.2.3.4>, rip=5.6.7.8, lip=192.0.2.1, TLS",
        );
        assert_eq!(failure.client, ip("5.6.7.8"));
        assert_eq!(failure.account, Some(&b"x, rip=1.2.3.4"[..]));
        let failure = failure_of(
            b"imap-login: Disconnected (auth failed, 1 attempts in 2 secs): user=<x>, method=PLAIN, rip=1.2.3.4, lip=9.9.9.9>, method=PLAIN, rip=5.6.7.8, lip=192.0.2.1, TLS, session=<a>",
        );
        assert_eq!(failure.client, ip("5.6.7.8"));
        assert_eq!(
            failure.account,
            Some(&b"x>, method=PLAIN, rip=1.2.3.4, lip=9.9.9.9"[..])
        );
        // Without a method, a name ending in `, method=X` is still the name.
        let failure = failure_of(
            b"pop3-login: Disconnected (tried to use disallowed plaintext auth): user=<a>, method=PLAIN>, rip=5.6.7.8, lip=192.0.2.1",
        );
        assert_eq!(failure.account, Some(&b"a>, method=PLAIN"[..]));
        let success = success_of(
            b"imap-login: Login: user=<evil>, rip=6.6.6.6>, method=PLAIN, rip=5.6.7.8, lip=192.0.2.1, mpid=1",
        );
        assert_eq!(success.client, ip("5.6.7.8"));
        assert_eq!(success.account, b"evil>, rip=6.6.6.6");
    }

    #[test]
    fn a_user_name_cannot_change_the_verdict() {
        // The summary ends at the first `: user=<`; a name is never read as one.
        assert_eq!(
            parsed(b"imap-login: Disconnected (no auth attempts in 0 secs): user=<x (auth failed, 99 attempts)>, rip=192.0.2.9, lip=192.0.2.1"),
            Parsed::Ignored
        );
        let success = success_of(
            b"imap-login: Login: user=<x: user=<y> (auth failed, 9 attempts)>, method=PLAIN, rip=192.0.2.9",
        );
        assert_eq!(success.account, b"x: user=<y> (auth failed, 9 attempts)");
        let failure = failure_of(
            b"imap-login: Disconnected (auth failed, 1 attempts in 2 secs): user=<Login: user=<root>, method=PLAIN, rip=192.0.2.9, lip=192.0.2.1",
        );
        assert_eq!(failure.kind, AuthFailureKind::BadPassword);
        assert_eq!(failure.account, Some(&b"Login: user=<root"[..]));
    }

    #[test]
    fn ambiguous_auth_prefixes_are_refused() {
        let refused =
            Parsed::Malformed("auth line whose user name or password holds `): ` or `>: `");
        let lines: [&[u8]; 4] = [
            // User `a,6.6.6.6): unknown user (given password: `.
            b"auth: passwd-file(a,6.6.6.6): unknown user (given password: ,192.0.2.1): Password mismatch (given password: x)",
            // A password faking a second prefix.
            b"auth: passwd-file(bob,192.0.2.1): Password mismatch (given password: x,6.6.6.6): unknown user)",
            b"auth(a)<x>: y,6.6.6.6,sasl:plain)<s>: Info: sql: Password mismatch",
            b"auth(bob,192.0.2.1,sasl:plain)<s>: Info: sql: Password mismatch (given password: a>: b)",
        ];
        for line in lines {
            assert_eq!(parsed(line), refused, "{}", String::from_utf8_lossy(line));
        }
        // Commas alone stay in the user: the IP is read from the right.
        let failure = failure_of(b"auth: passwd-file(a,6.6.6.6,192.0.2.1,<s>): Password mismatch");
        assert_eq!(failure.client, ip("192.0.2.1"));
        assert_eq!(failure.account, Some(&b"a,6.6.6.6"[..]));
        let failure =
            failure_of(b"auth(a)<b,6.6.6.6,192.0.2.1,sasl:plain)<s>: Info: sql: Password mismatch");
        assert_eq!(failure.client, ip("192.0.2.1"));
        assert_eq!(failure.account, Some(&b"a)<b,6.6.6.6"[..]));
        // An ambiguous backend error is still a fault, naming no one.
        expect_failure(
            b"auth: Error: ldap(x): y,6.6.6.6): Connection appears to be hanging",
            Client::Unknown,
            None,
            "auth",
            AuthFailureKind::ServerFault,
            0,
        );
    }

    #[test]
    fn invalid_utf8_and_nul_bytes_are_kept_as_bytes() {
        let success = success_of(
            b"imap-login: Login: user=<\xff\xfe\x00bob>, method=PLAIN, rip=192.0.2.9, lip=192.0.2.1",
        );
        assert_eq!(success.account, b"\xff\xfe\x00bob");
        let failure = failure_of(b"auth: passwd-file(\xc3\x28\x00,192.0.2.9): unknown user");
        assert_eq!(failure.account, Some(&b"\xc3\x28\x00"[..]));
        assert_eq!(
            parsed(
                b"imap-login: Login: user=<bob>, method=PLAIN, rip=192.0.2.9\x00, lip=192.0.2.1"
            ),
            Parsed::Malformed("login line with an unreadable rip=")
        );
        assert_eq!(parsed(b"\xff\xfe: Login"), Parsed::Unknown);
    }

    #[test]
    fn huge_values() {
        let mut line =
            b"imap-login: Disconnected (auth failed, 3 attempts in 9 secs): user=<".to_vec();
        line.extend(std::iter::repeat_n(b"a, rip=6.6.6.6>, ".as_slice(), 100_000).flatten());
        line.extend_from_slice(b">, method=PLAIN, rip=192.0.2.9, lip=192.0.2.1, TLS");
        let failure = failure_of(&line);
        assert_eq!(failure.client, ip("192.0.2.9"));
        assert_eq!(failure.attempts, 3);
        let mut line = b"auth: passwd-file(".to_vec();
        line.extend(std::iter::repeat_n(b'x', 1_000_000));
        line.extend_from_slice(b",192.0.2.9): Password mismatch");
        assert_eq!(failure_of(&line).client, ip("192.0.2.9"));
        // The largest count a line can give: u32::MAX. One past it cannot
        // come from Dovecot: a broken or forged line, counted malformed.
        let line = |count: &str| {
            format!("imap-login: Disconnected (auth failed, {count} attempts in 2 secs): user=<a>, rip=192.0.2.9")
        };
        assert_eq!(failure_of(line("4294967295").as_bytes()).attempts, u32::MAX);
        for past in ["4294967296", "99999999999", "999999999999999999999999"] {
            assert_eq!(
                parsed(line(past).as_bytes()),
                Parsed::Malformed("unreadable attempt count")
            );
        }
    }

    #[test]
    fn truncated_lines() {
        assert_eq!(
            parsed(b"imap-login: Disconnected (auth failed, 2 attempts in 4 secs): user=<bob>, method=PLAIN, rip="),
            Parsed::Malformed("login line with an unreadable rip=")
        );
        assert_eq!(
            parsed(b"imap-login: Login: user=<bob>, method=PL"),
            Parsed::Malformed("login line without rip=")
        );
        assert_eq!(
            parsed(b"imap-login: Login: user=<>, method=PLAIN, rip=192.0.2.9"),
            Parsed::Malformed("login without a user")
        );
        assert_eq!(
            parsed(b"imap-login: Disconnected (auth failed, "),
            Parsed::Unknown
        );
        assert_eq!(
            parsed(b"imap-login: Disconnected (auth failed, 2 attem: user=<a>, rip=192.0.2.9"),
            Parsed::Malformed("unreadable attempt count")
        );
        assert_eq!(parsed(b"auth: passwd-file(bob,1.2."), Parsed::Unknown);
        assert_eq!(parsed(b"auth-worker(304"), Parsed::Unknown);
        assert_eq!(parsed(b"imap-login"), Parsed::Unknown);
    }

    #[test]
    fn no_prefix_or_mangled_byte_panics() {
        let lines: [&[u8]; 6] = [
            b"imap-login: Info: Login aborted: Connection closed (auth failed, 3 attempts in 15 secs) (auth_failed): user=<eft>, method=PLAIN, rip=80.51.181.144, lip=127.4.20.69, TLS, session=<25Nw4GQ3Ms9QM7WQ>",
            b"auth-worker(14864): conn unix:auth-worker (pid=14830,uid=109): auth-worker<6>: pam(caliph@customdomaine.com,5.34.207.151): pam_authenticate() failed: Authentication failure (Password mismatch?)",
            b"auth(info@example.com,192.0.2.110,sasl:login)<CvN+E95Uf4e7eEnj>: Info: sql: Password mismatch (given password: XxxxXXxx123)",
            b"auth: sql(u,2001:db8::1,<sess>): unknown user (SHA1 of given password: 5baa61e4)",
            b"pop3-login: Logged in: user=<bob>, method=PLAIN, rip=198.51.100.4, lip=192.0.2.1, mpid=77, secured",
            b"auth: Error: ldap(judy,192.0.2.7,<sess>): Connection appears to be hanging",
        ];
        for line in lines {
            for end in 0..=line.len() {
                let _ = parsed(&line[..end]);
                let _ = parsed(&line[end..]);
            }
            for at in 0..line.len() {
                for byte in [0u8, b'(', b')', b'<', b'>', b',', b':', b' ', 0xff] {
                    let mut mangled = line.to_vec();
                    mangled[at] = byte;
                    let _ = parsed(&mangled);
                }
            }
        }
    }
}
