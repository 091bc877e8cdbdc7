//! The benchmark's traffic as a Postfix and Dovecot server logging to syslog
//! (`/var/log/mail.log` on Debian), every line `Mon DD HH:MM:SS mail prog[pid]: …`.
//!
//! A message's lines:
//! * on arrival: `connect from`, `QUEUEID: client=` (with `sasl_method=` and
//!   `sasl_username=` for users: `postfix/submission/smtpd` for clients with
//!   STARTTLS, `postfix/smtpd` on port 25 for other servers and for the
//!   spammer, who does not bother with TLS), `cleanup`'s `message-id=` and
//!   `qmgr`'s `from=, size=, nrcpt=`; the client's `disconnect from …
//!   commands=` a moment later (the spammer sends many messages per
//!   connection);
//! * per delivery attempt: `postfix/smtp` to other servers (`status=sent`,
//!   `bounced` or `deferred`), `postfix/lmtp` to Dovecot for local mailboxes,
//!   after Dovecot's own `lmtp(user)` line; a retry after a deferral starts
//!   with `qmgr` taking the message back from the deferred queue;
//! * after the last attempt: a `bounce` `sender non-delivery notification`
//!   and that notification's own lines, if a recipient bounced; `qmgr`'s
//!   `removed`.
//!
//! Besides: Dovecot's `imap-login: Login` when a user's mail client saves a
//! sent message, and before the hijack the spammer's password guessing as
//! `SASL LOGIN authentication failed` warnings, then one successful login.
//!
//! RFC 3164 stamps carry no year: readers guess it (pflogsumm takes the
//! current year, or the year before for months later than the current one).

use std::fmt;

use mailfuse_core::Timestamp;

use crate::attack::{SpamRun, SPAMMER_IP};
use crate::bench::{Connection, Lines, Render, Schedule};
use crate::clock::{SyslogStampWriter, Wall, HOUR, MINUTE};
use crate::kerio::{write_status, Addr, Disposition, Ip, MsgId, Put, Service, LOCALHOST};
use crate::rng::Rng;
use crate::traffic::{accepted, Delivery, Message};

/// The syslog host name.
pub const HOST: &str = "mail";

/// The server's public address, Dovecot's `lip=`.
pub const SERVER_IP: Ip = [198, 51, 100, 25];

/// The mail server of outside senders' domains, where non-delivery
/// notifications go: in practice only the spam's forged sender.
const SENDER_MX: Ip = [192, 0, 2, 199];

/// Postfix replaces a long-running daemon after this many uses (`max_use`).
const MAX_USE: u32 = 100;

/// Linux's default `pid_max`: pids wrap around below it.
const PID_MAX: u32 = 4_194_304;

/// A Postfix short queue id: 10 upper-case hex digits.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct QueueId(u64);

impl QueueId {
    fn write(self, out: &mut Vec<u8>) {
        out.hex_upper(self.0, 10);
    }
}

impl fmt::Display for QueueId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:010X}", self.0)
    }
}

/// Which `smtpd` took a connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Listener {
    /// Port 25: other servers, and clients that do not use TLS.
    Smtpd,
    /// Port 587 with STARTTLS.
    Submission,
}

impl Listener {
    fn program(self) -> &'static str {
        match self {
            Listener::Smtpd => "postfix/smtpd",
            Listener::Submission => "postfix/submission/smtpd",
        }
    }
}

/// A host as Postfix names it: `name[address]`.
#[derive(Clone, Copy, Debug)]
enum Peer<'a> {
    /// No reverse DNS: `unknown[203.0.113.7]`.
    Unknown(Ip),
    /// The webmail on the server itself.
    Localhost,
    /// `prefix` + `domain`, e.g. `mx.partner.test[198.51.100.5]`.
    Named {
        prefix: &'static str,
        domain: &'a str,
        ip: Ip,
    },
}

impl Peer<'_> {
    fn ip(self) -> Ip {
        match self {
            Peer::Unknown(ip) | Peer::Named { ip, .. } => ip,
            Peer::Localhost => LOCALHOST,
        }
    }

    fn write(self, out: &mut Vec<u8>) {
        match self {
            Peer::Unknown(_) => out.str("unknown"),
            Peer::Localhost => out.str("localhost"),
            Peer::Named { prefix, domain, .. } => {
                out.str(prefix);
                out.str(domain);
            }
        }
        out.push(b'[');
        out.ip(self.ip());
        out.push(b']');
    }
}

/// One SMTP connection, as its `disconnect` line sums it up.
#[derive(Clone, Copy, Debug)]
pub struct Session<'a> {
    pid: u32,
    listener: Listener,
    peer: Peer<'a>,
    starttls: bool,
    /// Successful and attempted `AUTH` commands.
    auth: (u32, u32),
    /// Messages sent (one `MAIL` and one `DATA` each).
    mails: u32,
    rcpts: u32,
}

/// How a message names itself in `message-id=` and Dovecot's `msgid=`.
#[derive(Clone, Copy, Debug)]
enum MessageId<'a> {
    /// Made by the sender's mail program.
    Client(MsgId<'a>),
    /// A non-delivery notification's: `<YYYYMMDDhhmmss.QUEUEID@mail.domain>`.
    Notification { at: Wall, queue: QueueId },
}

/// One delivery attempt, due at its time.
#[derive(Clone, Copy, Debug)]
pub struct Attempt<'a> {
    queue: QueueId,
    /// `None` for the null sender `<>` of notifications.
    from: Option<Addr<'a>>,
    size: u32,
    msg_id: MessageId<'a>,
    arrived: Wall,
    delivery: Delivery<'a>,
    /// The address the recipient was reached through (a forwarding alias).
    orig_to: Option<Addr<'a>>,
    /// An earlier attempt was deferred: `qmgr` takes the message back first.
    retry: bool,
}

/// Something written after a message's arrival.
// `Attempt` is much larger than the rest; boxing it would allocate per
// delivery, while a few thousand of these wait at most.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Copy, Debug)]
pub enum Later<'a> {
    /// The client's `disconnect from … commands=N` line, written a moment
    /// after its last message (the spammer's only when its session ends).
    Disconnect(Session<'a>),
    /// One delivery attempt: `smtp`/`lmtp`'s `status=sent|deferred|bounced`
    /// line (and `qmgr` taking a deferred message back before a retry).
    Attempt(Attempt<'a>),
    /// Every recipient settled: notify the sender if `notify`, then
    /// remove the message from the queue.
    Done {
        /// The message that is done.
        queue: QueueId,
        /// Its envelope sender, who gets the notification; `None` for a
        /// notification itself (null sender), which never gets one.
        from: Option<Addr<'a>>,
        /// A recipient was refused for good: `bounce` writes a sender
        /// non-delivery notification, queued as a message of its own.
        notify: bool,
    },
    /// One connection of the password guessing before the hijack.
    Guess {
        /// The login guessed (the hijacked account).
        user: Addr<'a>,
        /// This guess is the right password: the connection authenticates
        /// instead of logging `SASL LOGIN authentication failed`.
        succeeds: bool,
    },
}

/// Postfix's and Dovecot's long-running processes, which a log names by pid.
#[derive(Clone, Copy, Debug)]
enum Daemon {
    Qmgr,
    Cleanup,
    Smtp,
    Lmtp,
    Bounce,
    DovecotLmtp,
}

/// Process ids: a new one per connection, the daemons' renewed every
/// [`MAX_USE`] uses (`qmgr` lives for the whole file).
#[derive(Clone, Debug)]
struct Pids {
    last: u32,
    /// Per [`Daemon`]: its pid and the uses it has left.
    daemons: [(u32, u32); 6],
}

impl Pids {
    fn spawn(&mut self, rng: &mut Rng) -> u32 {
        self.last += rng.between(1, 9) as u32;
        if self.last >= PID_MAX {
            self.last = 300;
        }
        self.last
    }

    fn of(&mut self, daemon: Daemon, rng: &mut Rng) -> u32 {
        let (pid, left) = self.daemons[daemon as usize];
        let (pid, left) = match (daemon, left) {
            (Daemon::Qmgr, _) if pid != 0 => (pid, left),
            (_, 0) => (self.spawn(rng), MAX_USE),
            _ => (pid, left),
        };
        self.daemons[daemon as usize] = (pid, left.saturating_sub(1));
        pid
    }
}

/// What was written, in `pflogsumm`'s terms where it has them.
#[derive(Clone, Copy, Debug, Default)]
struct Tally {
    received: u64,
    bytes_received: u64,
    delivered: u64,
    bytes_delivered: u64,
    deferred: u64,
    deferrals: u64,
    bounced: u64,
    notifications: u64,
    auth_failures: u64,
    imap_logins: u64,
}

/// Renders the benchmark's traffic as Postfix's and Dovecot's syslog lines.
#[derive(Clone, Debug)]
pub struct PostfixRender<'a> {
    domain: &'a str,
    rng: Rng,
    stamp: SyslogStampWriter,
    /// The last queue id handed out: ids increase by small random steps.
    queue: u64,
    pids: Pids,
    /// Connections that stay open between messages (a spammer's), one per
    /// client address.
    open: Vec<Session<'a>>,
    /// Dovecot trusts the webmail on this machine to pass on its users'
    /// addresses (`login_trusted_networks`, Roundcube's forwarded client
    /// IP): webmail's IMAP logins show the browser's address as `rip=`,
    /// not 127.0.0.1.
    webmail_forwards_ip: bool,
    /// Dovecot's `auth_verbose`: the auth process names each account whose
    /// password failed.
    auth_verbose: bool,
    /// Reused for splitting a reply into its DSN code and text.
    scratch: Vec<u8>,
    tally: Tally,
}

impl<'a> PostfixRender<'a> {
    /// A server for `domain`, drawing pids, ids and timings from `rng`.
    pub fn new(domain: &'a str, rng: Rng) -> Self {
        PostfixRender {
            domain,
            rng,
            stamp: SyslogStampWriter::default(),
            queue: 0x24_41AB_0000,
            pids: Pids {
                last: 1_100,
                daemons: [(0, 0); 6],
            },
            open: Vec::new(),
            webmail_forwards_ip: false,
            auth_verbose: false,
            scratch: Vec::with_capacity(256),
            tally: Tally::default(),
        }
    }

    /// The server as the labelled weeks model it: webmail behind Dovecot's
    /// trusted networks, and `auth_verbose` as the admin chose.
    pub fn with_webmail(domain: &'a str, rng: Rng, auth_verbose: bool) -> Self {
        PostfixRender {
            webmail_forwards_ip: true,
            auth_verbose,
            ..PostfixRender::new(domain, rng)
        }
    }

    fn next_queue(&mut self) -> QueueId {
        self.queue += self.rng.between(1, 48) as u64;
        QueueId(self.queue)
    }

    fn pid(&mut self, daemon: Daemon) -> u32 {
        self.pids.of(daemon, &mut self.rng)
    }

    /// Starts a line: stamp, host and `program[pid]: `.
    fn head<'b>(
        &mut self,
        lines: &'b mut Lines,
        at: Wall,
        program: &str,
        pid: u32,
    ) -> &'b mut Vec<u8> {
        let out = lines.line();
        self.stamp.write(out, at);
        out.str(HOST);
        out.push(b' ');
        out.str(program);
        out.push(b'[');
        out.dec(u64::from(pid));
        out.str("]: ");
        out
    }

    /// Starts a line of `program[pid]: QUEUEID: `.
    fn queue_head<'b>(
        &mut self,
        lines: &'b mut Lines,
        at: Wall,
        program: &str,
        pid: u32,
        queue: QueueId,
    ) -> &'b mut Vec<u8> {
        let out = self.head(lines, at, program, pid);
        queue.write(out);
        out.str(": ");
        out
    }

    /// Starts a Dovecot line (Dovecot logs to syslog without a pid).
    fn dovecot_head<'b>(&mut self, lines: &'b mut Lines, at: Wall) -> &'b mut Vec<u8> {
        let out = lines.line();
        self.stamp.write(out, at);
        out.str(HOST);
        out.str(" dovecot: ");
        out
    }

    fn connect(&mut self, lines: &mut Lines, at: Wall, session: &Session<'_>) {
        let out = self.head(lines, at, session.listener.program(), session.pid);
        out.str("connect from ");
        session.peer.write(out);
        out.push(b'\n');
    }

    /// `disconnect from PEER ehlo=2 starttls=1 auth=1 mail=1 rcpt=2 data=1
    /// quit=1 commands=9`: each command's successes, `/attempts` if some failed.
    fn disconnect(&mut self, lines: &mut Lines, at: Wall, session: &Session<'_>) {
        let ehlo = 1 + u32::from(session.starttls);
        let commands = [
            ("ehlo", ehlo, ehlo),
            (
                "starttls",
                u32::from(session.starttls),
                u32::from(session.starttls),
            ),
            ("auth", session.auth.0, session.auth.1),
            ("mail", session.mails, session.mails),
            ("rcpt", session.rcpts, session.rcpts),
            ("data", session.mails, session.mails),
            ("quit", 1, 1),
        ];
        let out = self.head(lines, at, session.listener.program(), session.pid);
        out.str("disconnect from ");
        session.peer.write(out);
        let (mut ok, mut total) = (0, 0);
        for (name, good, tried) in commands.into_iter().filter(|c| c.2 > 0) {
            out.push(b' ');
            write_count(out, name, good, tried);
            ok += good;
            total += tried;
        }
        out.push(b' ');
        write_count(out, "commands", ok, total);
        out.push(b'\n');
    }

    /// `qmgr`'s `from=<…>, size=…, nrcpt=… (queue active)`.
    fn active(
        &mut self,
        lines: &mut Lines,
        at: Wall,
        queue: QueueId,
        from: Option<Addr<'_>>,
        size: u32,
        nrcpt: u32,
    ) {
        let pid = self.pid(Daemon::Qmgr);
        let out = self.queue_head(lines, at, "postfix/qmgr", pid, queue);
        out.str("from=<");
        if let Some(from) = from {
            from.write(out);
        }
        out.str(">, size=");
        out.dec(u64::from(size));
        out.str(", nrcpt=");
        out.dec(u64::from(nrcpt));
        out.str(" (queue active)\n");
    }

    fn message_id(&mut self, lines: &mut Lines, at: Wall, queue: QueueId, id: MessageId<'_>) {
        let pid = self.pid(Daemon::Cleanup);
        let domain = self.domain;
        let out = self.queue_head(lines, at, "postfix/cleanup", pid, queue);
        out.str("message-id=");
        write_message_id(out, id, domain);
        out.push(b'\n');
    }

    /// A mail client logging in to IMAP (here: to save what it just sent).
    fn imap_login(&mut self, lines: &mut Lines, at: Wall, user: Addr<'_>, peer: Peer<'_>) {
        let local = matches!(peer, Peer::Localhost);
        self.dovecot_login(lines, at, Mailbox::Imap, user, peer.ip(), local);
    }

    /// Dovecot's `imap-login: Login: user=<…>, method=PLAIN, rip=…` (or
    /// `pop3-login`): a client at `rip` logged in; `via_webmail`: through
    /// the webmail on this machine (`lip=127.0.0.1`).
    pub fn dovecot_login(
        &mut self,
        lines: &mut Lines,
        at: Wall,
        mailbox: Mailbox,
        user: Addr<'_>,
        rip: Ip,
        via_webmail: bool,
    ) {
        let mpid = self.pids.spawn(&mut self.rng);
        let session = [self.rng.next_u64(), self.rng.next_u64()];
        let out = self.dovecot_head(lines, at);
        out.str(mailbox.login_process());
        out.str(": Login: user=<");
        user.write(out);
        out.str(">, method=PLAIN, rip=");
        out.ip(rip);
        out.str(", lip=");
        out.ip(if via_webmail { LOCALHOST } else { SERVER_IP });
        out.str(", mpid=");
        out.dec(u64::from(mpid));
        out.str(if via_webmail { ", secured" } else { ", TLS" });
        out.str(", session=<");
        write_base64(out, session, 16);
        out.str(">\n");
        self.tally.imap_logins += 1;
    }

    /// Dovecot's summary of a session whose password was refused:
    /// `imap-login: Disconnected (auth failed, 1 attempts in 2 secs):
    /// user=<…>, method=PLAIN, rip=…, lip=…, TLS, session=<…>`, and the auth
    /// process's own line when `auth_verbose` is on.
    pub fn dovecot_failure(
        &mut self,
        lines: &mut Lines,
        at: Wall,
        mailbox: Mailbox,
        refusal: Refusal<'_>,
        via_webmail: bool,
    ) {
        self.auth_verdict(lines, at, refusal);
        let secs = self.rng.between(1, 6);
        let session = [self.rng.next_u64(), self.rng.next_u64()];
        let out = self.dovecot_head(lines, at);
        out.str(mailbox.login_process());
        out.str(": Disconnected (auth failed, 1 attempts in ");
        out.dec(secs as u64);
        out.str(" secs): user=<");
        refusal.user.write(out);
        out.str(">, method=PLAIN, rip=");
        out.ip(refusal.ip);
        out.str(", lip=");
        out.ip(if via_webmail { LOCALHOST } else { SERVER_IP });
        out.str(if via_webmail { ", secured" } else { ", TLS" });
        out.str(", session=<");
        write_base64(out, session, 16);
        out.str(">\n");
        self.tally.auth_failures += 1;
    }

    /// `dovecot: auth: passwd-file(user,ip): Password mismatch` (or
    /// `unknown user`), written only with `auth_verbose`.
    fn auth_verdict(&mut self, lines: &mut Lines, at: Wall, refusal: Refusal<'_>) {
        if !self.auth_verbose {
            return;
        }
        let out = self.dovecot_head(lines, at);
        out.str("auth: passwd-file(");
        refusal.user.write(out);
        out.push(b',');
        out.ip(refusal.ip);
        out.str(if refusal.unknown {
            "): unknown user\n"
        } else {
            "): Password mismatch\n"
        });
    }

    /// Roundcube's login log through syslog: `roundcube: <sess> Successful
    /// login for U (ID: N) from IP in session S`, or `Failed login for U
    /// from IP in session S (error: 0)`.
    pub fn webmail_login(&mut self, lines: &mut Lines, at: Wall, user: Addr<'_>, ip: Ip, ok: bool) {
        let session = self.rng.next_u64();
        let out = lines.line();
        self.stamp.write(out, at);
        out.str(HOST);
        out.str(" roundcube: <");
        out.hex(session >> 32, 8);
        out.str(if ok {
            "> Successful login for "
        } else {
            "> Failed login for "
        });
        user.write(out);
        if ok {
            out.str(" (ID: ");
            out.dec(user_number(user));
            out.push(b')');
        }
        out.str(" from ");
        out.ip(ip);
        out.str(" in session ");
        out.hex(session, 16);
        out.hex(session.rotate_left(17), 10);
        out.str(if ok { "\n" } else { " (error: 0)\n" });
    }

    fn attempt(&mut self, lines: &mut Lines, at: Wall, attempt: &Attempt<'_>) {
        if attempt.retry {
            self.active(lines, at, attempt.queue, attempt.from, attempt.size, 1);
        }
        let delivery = attempt.delivery;
        let waited = at.0 - attempt.arrived.0;
        if delivery.outcome.result == Disposition::Delivered {
            self.store(lines, at, attempt, waited);
            return;
        }
        let mut reply = std::mem::take(&mut self.scratch);
        reply.clear();
        write_status(&mut reply, &delivery.outcome, &delivery.rcpt);
        let split = reply.iter().position(|&b| b == b' ').unwrap_or(reply.len());
        let (dsn, text) = reply.split_at(split);
        let text = text.strip_prefix(b" ").unwrap_or(text);
        // A reply starts with its SMTP code; otherwise the server was not reached.
        let reached = text.first().is_some_and(u8::is_ascii_digit);
        let peer = Peer::Named {
            prefix: "mx.",
            domain: delivery.rcpt.domain,
            ip: delivery.remote_host,
        };
        let pid = self.pid(Daemon::Smtp);
        let delays = self.delays(waited, false);
        let out = self.queue_head(lines, at, "postfix/smtp", pid, attempt.queue);
        write_recipient(out, attempt);
        out.str(", relay=");
        if reached {
            peer.write(out);
            out.str(":25");
        } else {
            out.str("none");
        }
        write_delays(out, delays);
        out.str(", dsn=");
        out.extend_from_slice(dsn);
        match delivery.outcome.result {
            Disposition::Delivered | Disposition::Relayed => {
                out.str(", status=sent (");
                out.extend_from_slice(text);
                self.tally.delivered += 1;
                self.tally.bytes_delivered += u64::from(attempt.size);
            }
            Disposition::Failed => {
                out.str(", status=bounced (");
                write_said(out, peer, text);
                self.tally.bounced += 1;
            }
            Disposition::Deferred => {
                out.str(", status=deferred (");
                if reached {
                    write_said(out, peer, text);
                } else {
                    out.str("connect to ");
                    peer.write(out);
                    out.str(":25: ");
                    out.extend_from_slice(text);
                }
                self.tally.deferrals += 1;
            }
        }
        out.str(")\n");
        self.scratch = reply;
    }

    /// A local delivery: Dovecot's LMTP stores the message, then Postfix's
    /// `lmtp` client logs the outcome.
    fn store(&mut self, lines: &mut Lines, at: Wall, attempt: &Attempt<'_>, waited: i64) {
        let rcpt = attempt.delivery.rcpt;
        let lmtp_pid = self.pid(Daemon::DovecotLmtp);
        let session = [self.rng.next_u64(), self.rng.next_u64()];
        let domain = self.domain;
        let out = self.dovecot_head(lines, at);
        out.str("lmtp(");
        rcpt.write(out);
        out.str(")<");
        out.dec(u64::from(lmtp_pid));
        out.str("><");
        write_base64(out, session, 22);
        out.str(">: msgid=");
        write_message_id(out, attempt.msg_id, domain);
        out.str(": saved mail to INBOX\n");

        let pid = self.pid(Daemon::Lmtp);
        let delays = self.delays(waited, true);
        let out = self.queue_head(lines, at, "postfix/lmtp", pid, attempt.queue);
        write_recipient(out, attempt);
        out.str(", relay=");
        out.str(HOST);
        out.push(b'.');
        out.str(domain);
        out.str("[private/dovecot-lmtp]");
        write_delays(out, delays);
        out.str(", dsn=2.0.0, status=sent (250 2.0.0 <");
        rcpt.write(out);
        out.str("> ");
        write_base64(out, session, 22);
        out.str(" Saved)\n");
        self.tally.delivered += 1;
        self.tally.bytes_delivered += u64::from(attempt.size);
    }

    /// Postfix's `delays=a/b/c/d` in hundredths of a second for an attempt
    /// `waited` seconds after arrival: before the queue manager, in the
    /// queue, connecting, transmitting; they add up to about `waited`.
    fn delays(&mut self, waited: i64, local: bool) -> [u64; 4] {
        let rng = &mut self.rng;
        let before = rng.between(1, 30) as u64;
        let (connect, send) = if local {
            (rng.between(0, 2) as u64, rng.between(1, 9) as u64)
        } else {
            (rng.between(2, 40) as u64, rng.between(5, 60) as u64)
        };
        let queued = (waited.max(0) as u64 * 100).saturating_sub(before + connect + send)
            + rng.between(0, 3) as u64;
        [before, queued, connect, send]
    }

    /// All recipients settled: a non-delivery notification to the sender if
    /// one bounced (never for a notification itself), then `removed`.
    fn done(
        &mut self,
        lines: &mut Lines,
        at: Wall,
        queue: QueueId,
        sender: Option<Addr<'a>>,
        notify: bool,
        schedule: &mut Schedule<Later<'a>>,
    ) {
        if let Some(sender) = sender.filter(|_| notify) {
            let notice = self.next_queue();
            let pid = self.pid(Daemon::Bounce);
            let out = self.queue_head(lines, at, "postfix/bounce", pid, queue);
            out.str("sender non-delivery notification: ");
            notice.write(out);
            out.push(b'\n');
            let msg_id = MessageId::Notification { at, queue: notice };
            self.message_id(lines, at, notice, msg_id);
            let size = self.rng.between(2_400, 5_200) as u32;
            self.active(lines, at, notice, None, size, 1);
            let delivery = if sender.domain == self.domain {
                Delivery {
                    rcpt: sender,
                    after: self.rng.between(0, 1) as u32,
                    remote_host: LOCALHOST,
                    ..Delivery::default()
                }
            } else {
                Delivery {
                    rcpt: sender,
                    after: self.rng.between(0, 2) as u32,
                    outcome: accepted(&mut self.rng),
                    remote_host: SENDER_MX,
                }
            };
            let delivered = at.plus(i64::from(delivery.after));
            schedule.push(
                delivered,
                Later::Attempt(Attempt {
                    queue: notice,
                    from: None,
                    size,
                    msg_id,
                    arrived: at,
                    delivery,
                    orig_to: None,
                    retry: false,
                }),
            );
            schedule.push(
                delivered,
                Later::Done {
                    queue: notice,
                    from: None,
                    notify: false,
                },
            );
            self.tally.notifications += 1;
        }
        let pid = self.pid(Daemon::Qmgr);
        let out = self.queue_head(lines, at, "postfix/qmgr", pid, queue);
        out.str("removed\n");
    }

    /// One guessing connection from the spammer: a failed `AUTH` and a
    /// disconnect, or a successful `AUTH` without mail (the guess that worked).
    fn guess(&mut self, lines: &mut Lines, at: Wall, user: Addr<'_>, succeeds: bool) {
        let refusal = Refusal {
            user,
            ip: SPAMMER_IP,
            unknown: false,
        };
        self.smtp_login(lines, at, refusal, succeeds, false);
    }

    /// One SMTP connection that only authenticates, on port 587 with TLS
    /// (`submission`) or on port 25: a successful `AUTH` without mail, or
    /// `SASL LOGIN authentication failed` (and Dovecot's verdict with
    /// `auth_verbose`, Postfix asking Dovecot's auth service).
    pub fn smtp_login(
        &mut self,
        lines: &mut Lines,
        at: Wall,
        login: Refusal<'_>,
        succeeds: bool,
        submission: bool,
    ) {
        let session = Session {
            pid: self.pids.spawn(&mut self.rng),
            listener: if submission {
                Listener::Submission
            } else {
                Listener::Smtpd
            },
            peer: Peer::Unknown(login.ip),
            starttls: submission,
            auth: (u32::from(succeeds), 1),
            mails: 0,
            rcpts: 0,
        };
        self.connect(lines, at, &session);
        if !succeeds {
            self.auth_verdict(lines, at, login);
            let out = self.head(lines, at, session.listener.program(), session.pid);
            out.str("warning: ");
            session.peer.write(out);
            out.str(": SASL LOGIN authentication failed: UGFzc3dvcmQ6, sasl_username=");
            login.user.write(out);
            out.push(b'\n');
            self.tally.auth_failures += 1;
        }
        self.disconnect(lines, at, &session);
    }
}

impl<'a> Render<'a> for PostfixRender<'a> {
    type Later = Later<'a>;
    type QueueId = QueueId;

    fn message(
        &mut self,
        msg: &Message<'a>,
        connection: Connection,
        lines: &mut Lines,
        schedule: &mut Schedule<Later<'a>>,
    ) -> QueueId {
        let at = msg.at;
        let (listener, peer, sasl_method) = match msg.user {
            Some(_) if msg.service == Service::WebClient => {
                (Listener::Submission, Peer::Localhost, "PLAIN")
            }
            Some(_) if msg.ssl => (
                Listener::Submission,
                Peer::Unknown(msg.sender_host),
                "LOGIN",
            ),
            Some(_) => (Listener::Smtpd, Peer::Unknown(msg.sender_host), "LOGIN"),
            None => (
                Listener::Smtpd,
                Peer::Named {
                    prefix: "mail.",
                    domain: msg.from.domain,
                    ip: msg.sender_host,
                },
                "",
            ),
        };
        let reused = if connection.opens {
            None
        } else {
            let open = self.open.iter().position(|s| s.peer.ip() == peer.ip());
            open.map(|i| self.open.swap_remove(i))
        };
        let mut session = match reused {
            Some(session) => session,
            None => {
                let session = Session {
                    pid: self.pids.spawn(&mut self.rng),
                    listener,
                    peer,
                    starttls: msg.ssl && !matches!(peer, Peer::Localhost),
                    auth: if msg.user.is_some() { (1, 1) } else { (0, 0) },
                    mails: 0,
                    rcpts: 0,
                };
                self.connect(lines, at, &session);
                session
            }
        };

        let queue = self.next_queue();
        let out = self.queue_head(lines, at, listener.program(), session.pid, queue);
        out.str("client=");
        peer.write(out);
        if let Some(user) = msg.user {
            out.str(", sasl_method=");
            out.str(sasl_method);
            out.str(", sasl_username=");
            user.write(out);
        }
        out.push(b'\n');
        self.message_id(lines, at, queue, MessageId::Client(msg.msg_id));
        let deliveries = msg.deliveries();
        let settled = |d: &&Delivery<'_>| d.outcome.result != Disposition::Deferred;
        let nrcpt = deliveries.iter().filter(settled).count() as u32;
        self.active(lines, at, queue, Some(msg.from), msg.size, nrcpt);
        self.tally.received += 1;
        self.tally.bytes_received += u64::from(msg.size);
        if let (Some(user), Listener::Submission) = (msg.user, listener) {
            if self.rng.percent(25) {
                match peer {
                    Peer::Localhost if self.webmail_forwards_ip => {
                        self.dovecot_login(lines, at, Mailbox::Imap, user, msg.web_client, true);
                    }
                    _ => self.imap_login(lines, at, user, peer),
                }
            }
        }

        session.mails += 1;
        // Mail from outside names one recipient; more deliveries are the
        // forwards of its mailbox (see `Org::inbound`).
        session.rcpts += if msg.user.is_some() { nrcpt } else { 1 };
        if connection.closes {
            schedule.push(at.plus(self.rng.between(0, 1)), Later::Disconnect(session));
        } else {
            self.open.push(session);
        }

        let first = deliveries.first().map(|d| d.rcpt);
        let mut last = at;
        let mut previous: Option<&Delivery<'_>> = None;
        for (i, delivery) in deliveries.iter().enumerate() {
            let due = at.plus(i64::from(delivery.after));
            if settled(&delivery) {
                last = last.max(due);
            }
            let retry = previous.is_some_and(|p| {
                p.rcpt == delivery.rcpt && p.outcome.result == Disposition::Deferred
            });
            schedule.push(
                due,
                Later::Attempt(Attempt {
                    queue,
                    from: Some(msg.from),
                    size: msg.size,
                    msg_id: MessageId::Client(msg.msg_id),
                    arrived: at,
                    delivery: *delivery,
                    orig_to: first.filter(|_| msg.user.is_none() && i > 0),
                    retry,
                }),
            );
            previous = Some(delivery);
        }
        if deliveries
            .iter()
            .any(|d| d.outcome.result == Disposition::Deferred)
        {
            self.tally.deferred += 1;
        }
        let notify = deliveries
            .iter()
            .any(|d| d.outcome.result == Disposition::Failed);
        schedule.push(
            last,
            Later::Done {
                queue,
                from: Some(msg.from),
                notify,
            },
        );
        queue
    }

    fn later(
        &mut self,
        at: Wall,
        later: Later<'a>,
        lines: &mut Lines,
        schedule: &mut Schedule<Later<'a>>,
    ) {
        match later {
            Later::Disconnect(session) => self.disconnect(lines, at, &session),
            Later::Attempt(attempt) => self.attempt(lines, at, &attempt),
            Later::Done {
                queue,
                from,
                notify,
            } => self.done(lines, at, queue, from, notify, schedule),
            Later::Guess { user, succeeds } => self.guess(lines, at, user, succeeds),
        }
    }

    /// The spammer guesses the password in the hours before the run:
    /// 25–35 failed logins, then one that works shortly before the first spam.
    fn hijack_planned(&mut self, now: Wall, run: &SpamRun<'a>, schedule: &mut Schedule<Later<'a>>) {
        let Some(begin) = run.next_at() else {
            return;
        };
        let from = now.max(begin.plus(-3 * HOUR));
        let until = begin.plus(-15 * MINUTE).max(from);
        let guesses = self.rng.between(25, 35);
        let step = (until.0 - from.0) / (guesses + 1);
        let user = run.victim();
        for i in 0..guesses {
            let at = from.plus(i * step + self.rng.between(0, step / 2));
            let succeeds = false;
            schedule.push(at, Later::Guess { user, succeeds });
        }
        schedule.push(
            from.plus(guesses * step + self.rng.between(0, step / 2)),
            Later::Guess {
                user,
                succeeds: true,
            },
        );
    }

    fn close(&mut self, at: Wall, lines: &mut Lines) {
        for session in std::mem::take(&mut self.open) {
            self.disconnect(lines, at, &session);
        }
    }

    fn tally(&self) -> Vec<(&'static str, u64)> {
        let t = &self.tally;
        vec![
            ("received", t.received),
            ("delivered", t.delivered),
            ("deferred", t.deferred),
            ("deferrals", t.deferrals),
            ("bounced", t.bounced),
            ("bytes received", t.bytes_received),
            ("bytes delivered", t.bytes_delivered),
            ("non-delivery notifications", t.notifications),
            ("SASL failures", t.auth_failures),
            ("IMAP logins", t.imap_logins),
        ]
    }
}

/// A login attempt: the account tried, from where, and whether it is no
/// account here at all.
#[derive(Clone, Copy, Debug)]
pub struct Refusal<'a> {
    /// The login tried.
    pub user: Addr<'a>,
    /// The client that tried it.
    pub ip: Ip,
    /// The login is no account here (Dovecot's `unknown user`).
    pub unknown: bool,
}

/// Dovecot's mail access protocols, each with its login process.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mailbox {
    /// IMAP: `imap-login`.
    Imap,
    /// POP3: `pop3-login`.
    Pop3,
}

impl Mailbox {
    fn login_process(self) -> &'static str {
        match self {
            Mailbox::Imap => "imap-login",
            Mailbox::Pop3 => "pop3-login",
        }
    }
}

/// A stable small number for an account (Roundcube's user ID), from its
/// address (FNV-1a).
fn user_number(user: Addr<'_>) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for piece in user.local.iter().chain([&user.domain]) {
        for &b in piece.as_bytes() {
            hash = (hash ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
        }
    }
    1 + hash % 900
}

/// `name=good`, or `name=good/tried` when some failed.
fn write_count(out: &mut Vec<u8>, name: &str, good: u32, tried: u32) {
    out.str(name);
    out.push(b'=');
    out.dec(u64::from(good));
    if good != tried {
        out.push(b'/');
        out.dec(u64::from(tried));
    }
}

/// `to=<rcpt>`, with `, orig_to=<alias>` for a forward.
fn write_recipient(out: &mut Vec<u8>, attempt: &Attempt<'_>) {
    out.str("to=<");
    attempt.delivery.rcpt.write(out);
    out.push(b'>');
    if let Some(alias) = attempt.orig_to {
        out.str(", orig_to=<");
        alias.write(out);
        out.push(b'>');
    }
}

/// `host PEER said: REPLY (in reply to RCPT TO command)`.
fn write_said(out: &mut Vec<u8>, peer: Peer<'_>, reply: &[u8]) {
    out.str("host ");
    peer.write(out);
    out.str(" said: ");
    out.extend_from_slice(reply);
    out.str(" (in reply to RCPT TO command)");
}

/// `, delay=1.3, delays=0.12/0/0.35/0.84` from hundredths of a second.
fn write_delays(out: &mut Vec<u8>, delays: [u64; 4]) {
    out.str(", delay=");
    write_seconds(out, delays.iter().sum());
    out.str(", delays=");
    for (i, &part) in delays.iter().enumerate() {
        if i > 0 {
            out.push(b'/');
        }
        write_seconds(out, part);
    }
}

/// Hundredths of a second the way Postfix prints delays: two significant
/// digits below ten seconds (`0.05`, `0.1`, `1.3`), whole seconds above.
fn write_seconds(out: &mut Vec<u8>, hundredths: u64) {
    match hundredths {
        0 => out.push(b'0'),
        1..=99 => {
            out.str("0.");
            out.push(b'0' + (hundredths / 10) as u8);
            if !hundredths.is_multiple_of(10) {
                out.push(b'0' + (hundredths % 10) as u8);
            }
        }
        100..=999 => {
            out.dec(hundredths / 100);
            let tenths = hundredths / 10 % 10;
            if tenths != 0 {
                out.push(b'.');
                out.push(b'0' + tenths as u8);
            }
        }
        _ => out.dec(hundredths / 100),
    }
}

fn write_message_id(out: &mut Vec<u8>, id: MessageId<'_>, domain: &str) {
    match id {
        MessageId::Client(id) => id.write(out),
        MessageId::Notification { at, queue } => {
            let (year, month, day, hour, min, sec) = Timestamp(at.0).to_civil();
            out.push(b'<');
            out.dec(u64::try_from(year).unwrap_or(0));
            for part in [month, day, hour, min, sec] {
                out.push(b'0' + part / 10);
                out.push(b'0' + part % 10);
            }
            out.push(b'.');
            queue.write(out);
            out.push(b'@');
            out.str(HOST);
            out.push(b'.');
            out.str(domain);
            out.push(b'>');
        }
    }
}

/// `len` (at most 22) base64 characters of random bits, like Dovecot's
/// session ids.
fn write_base64(out: &mut Vec<u8>, bits: [u64; 2], len: usize) {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    for i in 0..len.min(22) {
        let word = bits[i / 11];
        out.push(ALPHABET[((word >> (6 * (i % 11))) & 63) as usize]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seconds(hundredths: u64) -> String {
        let mut out = Vec::new();
        write_seconds(&mut out, hundredths);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn delays_print_like_postfix() {
        assert_eq!(seconds(0), "0");
        assert_eq!(seconds(2), "0.02");
        assert_eq!(seconds(10), "0.1");
        assert_eq!(seconds(36), "0.36");
        assert_eq!(seconds(130), "1.3");
        assert_eq!(seconds(200), "2");
        assert_eq!(seconds(1_460), "14");
        assert_eq!(seconds(229_100), "2291");
    }

    #[test]
    fn disconnect_shows_failed_commands() {
        let mut render = PostfixRender::new("globex.example", Rng::new(1));
        let mut lines = Lines::default();
        let session = Session {
            pid: 7208,
            listener: Listener::Submission,
            peer: Peer::Unknown([203, 0, 113, 7]),
            starttls: false,
            auth: (0, 1),
            mails: 0,
            rcpts: 0,
        };
        render.disconnect(&mut lines, Wall::civil(2026, 11, 22, 21, 42, 12), &session);
        assert_eq!(
            lines.as_bytes(),
            b"Nov 22 21:42:12 mail postfix/submission/smtpd[7208]: disconnect from \
              unknown[203.0.113.7] ehlo=1 auth=0/1 quit=1 commands=2/3\n"
                .as_slice()
        );
    }

    #[test]
    fn queue_ids_are_ten_hex_digits() {
        assert_eq!(QueueId(0x24_41AB_4574).to_string(), "2441AB4574");
        let mut out = Vec::new();
        QueueId(0xAB).write(&mut out);
        assert_eq!(out, b"00000000AB");
    }
}
