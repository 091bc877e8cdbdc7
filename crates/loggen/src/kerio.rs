//! Kerio Connect's log lines, written byte for byte as the server writes them.
//!
//! Every line the generators produce goes through [`LineWriter::write`], which
//! appends it to a byte buffer: no allocation and no `fmt` machinery per line,
//! because the benchmark writes millions of them. Values are plain `Copy`
//! structs borrowing `&str` from name lists, so building a line is free too.
//!
//! Formats follow `kerio.md` (Kerio 8+ field order for mail.log).

use crate::bench::{Connection, Lines, Render, Schedule};
use crate::clock::{StampWriter, Wall};
use crate::traffic::Message;
use mailfuse_core::Timestamp;

/// An IPv4 address; generated logs only need IPv4.
pub type Ip = [u8; 4];

/// Kerio's placeholder client address for webmail submissions (v9+).
pub const NO_HOST: Ip = [0, 0, 0, 0];

/// The host Kerio names for local deliveries.
pub const LOCALHOST: Ip = [127, 0, 0, 1];

/// A mail address whose local part is up to three pieces concatenated
/// (`["j", ".", "novak"]`), so addresses can be composed from name lists
/// without allocating a string for each.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Addr<'a> {
    /// The local part's pieces, written one after another; unused pieces
    /// are `""`.
    pub local: [&'a str; 3],
    /// The part after `@`; compared with the organisation's domain to tell
    /// local recipients from outside ones.
    pub domain: &'a str,
}

impl<'a> Addr<'a> {
    /// `local@domain`.
    pub const fn new(local: &'a str, domain: &'a str) -> Self {
        Addr {
            local: [local, "", ""],
            domain,
        }
    }

    /// `a` `b` `c` `@domain`, e.g. `("jan", ".", "novak")`.
    pub const fn composed(a: &'a str, b: &'a str, c: &'a str, domain: &'a str) -> Self {
        Addr {
            local: [a, b, c],
            domain,
        }
    }

    pub(crate) fn write(&self, out: &mut Vec<u8>) {
        for piece in self.local {
            out.str(piece);
        }
        out.push(b'@');
        out.str(self.domain);
    }
}

impl std::fmt::Display for Addr<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let [a, b, c] = self.local;
        write!(f, "{a}{b}{c}@{}", self.domain)
    }
}

/// A Kerio queue id: the UTC Unix time the message was queued (8 hex digits)
/// and the server's message counter (8 hex digits), e.g. `501c1268-0001243c`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct QueueId {
    /// When the message was queued, as UTC Unix seconds: mailfuse derives the
    /// server's time zone from it and the local time stamp of the line.
    pub utc: u32,
    /// The server's running message number, so ids queued in the same
    /// second still differ.
    pub counter: u32,
}

impl QueueId {
    /// The id of the message numbered `counter`, queued at the UTC instant
    /// `queued` (truncated to 32 bits, as Kerio's 8 hex digits hold).
    pub fn new(queued: Timestamp, counter: u32) -> Self {
        QueueId {
            utc: queued.0 as u32,
            counter,
        }
    }

    pub(crate) fn write(&self, out: &mut Vec<u8>) {
        out.hex(u64::from(self.utc), 8);
        out.push(b'-');
        out.hex(u64::from(self.counter), 8);
    }
}

impl std::fmt::Display for QueueId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:08x}-{:08x}", self.utc, self.counter)
    }
}

/// How a message entered the server (Kerio's `Service:`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Service {
    /// Authenticated SMTP from a desktop client (or a spammer), and mail from
    /// other servers.
    #[default]
    Smtp,
    /// Webmail (the "Kerio Connect Client"); logs `Sender-Host: 0.0.0.0`.
    WebClient,
    /// HTTP-based desktop clients (Outlook with KOFF, ActiveSync).
    Http,
}

impl Service {
    /// The name Kerio (9 and later) writes after `Service:`.
    pub fn as_str(self) -> &'static str {
        self.name(KerioVersion::V10)
    }

    /// The name `version` writes after `Service:`: Kerio 8 spelt its
    /// webmail `Kerio Connect client`.
    pub fn name(self, version: KerioVersion) -> &'static str {
        match (self, version) {
            (Service::Smtp, _) => "SMTP",
            (Service::WebClient, KerioVersion::V8) => "Kerio Connect client",
            (Service::WebClient, KerioVersion::V10) => "Kerio Connect Client",
            (Service::Http, _) => "HTTP",
        }
    }
}

/// Which generation of Kerio Connect writes the logs: they differ in how
/// webmail submissions look in mail.log (`kerio.md`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum KerioVersion {
    /// Kerio Connect 8: webmail is `Service: Kerio Connect client` with the
    /// browser's address as `Sender-Host`.
    V8,
    /// Kerio Connect 9 and 10: webmail is `Service: Kerio Connect Client`
    /// with `Sender-Host: 0.0.0.0`; the address is only in audit.log.
    #[default]
    V10,
}

/// A subject line: an optional reply/forward prefix and the text. Taken from
/// the message as is — it may hold commas, non-ASCII text or control bytes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Subject<'a> {
    /// `Re: `, `FW: `… written before the text, or `""`.
    pub prefix: &'a str,
    /// The subject proper: usually from [`crate::vocab`]'s lists, once an
    /// escape-and-HTML injection the reports must neutralise.
    pub text: &'a str,
}

/// Which mail program made a Message-ID, which decides its shape.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum MsgIdStyle {
    /// Kerio's webmail: `<3533420989-24989@domain>`.
    #[default]
    Kerio,
    /// Outlook: `<000001dc4c1a$2f1e0a40$8d5a1ec0@domain>`.
    Outlook,
    /// Thunderbird and most others: `<8f2c51a0-3b7e@domain>`.
    Uuid,
}

/// A Message-ID built from two random numbers in the style of a mail program.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MsgId<'a> {
    /// Which program's shape the id takes.
    pub style: MsgIdStyle,
    /// Random bits the id's digits are cut from; each style takes the share
    /// of `a` and `b` its shape needs.
    pub a: u64,
    /// More random bits, used with `a`.
    pub b: u64,
    /// The domain after `@`: the sender's, as mail programs write it.
    pub domain: &'a str,
}

impl MsgId<'_> {
    pub(crate) fn write(&self, out: &mut Vec<u8>) {
        out.push(b'<');
        match self.style {
            MsgIdStyle::Kerio => {
                out.dec(self.a % 10_000_000_000);
                out.push(b'-');
                out.dec(self.b % 100_000);
            }
            MsgIdStyle::Outlook => {
                out.str("000001dc");
                out.hex(self.a & 0xffff_ffff, 8);
                out.push(b'$');
                out.hex(self.a >> 32, 8);
                out.push(b'$');
                out.hex(self.b & 0xffff_ffff, 8);
            }
            MsgIdStyle::Uuid => {
                out.hex(self.a & 0xffff_ffff, 8);
                out.push(b'-');
                out.hex(self.b & 0xffff, 4);
                out.push(b'-');
                out.hex(self.a >> 48, 4);
            }
        }
        out.push(b'@');
        out.str(self.domain);
        out.push(b'>');
    }
}

/// One piece of a remote server's reply text, which often quotes the
/// recipient; replies are static templates filled in when written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Piece {
    /// Fixed text of the reply, written as is.
    Text(&'static str),
    /// The recipient address.
    Rcpt,
    /// The recipient's domain.
    Domain,
    /// The remote server's own queue id (upper-case hex).
    Token,
}

/// Kerio's `Result:` of one delivery attempt.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Disposition {
    /// Stored in a local mailbox.
    #[default]
    Delivered,
    /// Accepted by the remote server.
    Relayed,
    /// Refused for good.
    Failed,
    /// Refused for now; Kerio retries later.
    Deferred,
}

impl Disposition {
    /// The word Kerio writes after `Result:`.
    pub fn as_str(self) -> &'static str {
        match self {
            Disposition::Delivered => "delivered",
            Disposition::Relayed => "relayed",
            Disposition::Failed => "failed",
            Disposition::Deferred => "deferred",
        }
    }
}

/// How one delivery attempt ended: Kerio's `Result:` and `Status:`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Outcome {
    /// Kerio's `Result:`: delivered, relayed, failed or deferred.
    pub result: Disposition,
    /// The status text: a template from [`crate::vocab`].
    pub status: &'static [Piece],
    /// Fills [`Piece::Token`].
    pub token: u64,
}

impl Default for Outcome {
    fn default() -> Self {
        Outcome {
            result: Disposition::Delivered,
            status: crate::vocab::LOCAL_DELIVERY,
            token: 0,
        }
    }
}

/// A `Recv:` line: a message entered the queue.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Recv<'a> {
    /// The id this message's `Sent:` lines repeat.
    pub queue: QueueId,
    /// How the message came in (`Service:`), which also decides
    /// `Sender-Host`.
    pub service: Service,
    /// The envelope sender (`From:`); the spam run forges one outside the
    /// organisation's domain.
    pub from: Addr<'a>,
    /// The first envelope recipient: Kerio's `Recv:` names only one.
    pub to: Addr<'a>,
    /// The message's size in bytes (`Size:`).
    pub size: u32,
    /// The submitting client's address (`Sender-Host:`); [`NO_HOST`] for
    /// webmail, an outside server's MX for incoming mail.
    pub sender_host: Ip,
    /// The authenticated login; `None` for mail from other servers.
    pub user: Option<Addr<'a>>,
    /// Whether the client used TLS; Kerio omits the field otherwise.
    pub ssl: bool,
    /// `Subject:`, written unquoted as Kerio does, commas and all.
    pub subject: Subject<'a>,
    /// `Msg-Id:`, the Message-ID header the client gave the message.
    pub msg_id: MsgId<'a>,
}

/// A `Sent:` line: one recipient's delivery attempt ended.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Sent<'a> {
    /// The id of the message, as its `Recv:` line gave it.
    pub queue: QueueId,
    /// The recipient this attempt was for (`Recipient:`).
    pub rcpt: Addr<'a>,
    /// `Result:` and `Status:`: how the attempt ended.
    pub outcome: Outcome,
    /// Where it went (`Remote-Host:`): [`LOCALHOST`] for a local mailbox, the
    /// recipient domain's MX otherwise.
    pub remote_host: Ip,
    /// The message's Message-ID, repeated from its `Recv:` line.
    pub msg_id: MsgId<'a>,
}

/// Every kind of line the generators write, across the three log files.
// `Recv` is much larger than the rest; lines are transient values written
// right away (the example keeps ~25k of them), so boxing would only cost.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Line<'a> {
    // mail.log
    /// mail.log's `Recv:`: a message entered the queue.
    Recv(Recv<'a>),
    /// mail.log's `Sent:`: one recipient's delivery attempt ended.
    Sent(Sent<'a>),

    // security.log
    /// `Failed SMTP login from IP with SASL method LOGIN.` — Kerio does not
    /// name the account here.
    FailedSmtpLogin {
        /// The client that failed to log in.
        ip: Ip,
    },
    /// `SMTP: User X doesn't exist. Attempt from IP address IP.`
    SmtpUnknownUser {
        /// The login tried, which is no account here.
        user: Addr<'a>,
        /// The client that tried it.
        ip: Ip,
    },
    /// `SMTP: AntiHammering - IP address IP will be blocked for 5 minutes, …`
    AntiHammeringBlock {
        /// The client Kerio blocks for too many failed logins.
        ip: Ip,
    },
    /// `SMTP: AntiHammering: connection from IP address IP is blocked`
    AntiHammeringRefused {
        /// The blocked client that connected again.
        ip: Ip,
    },
    /// `HTTP/WebMail: Invalid password for user X. Attempt from IP address IP`
    InvalidPassword {
        /// The service logged into: `HTTP/WebMail`, `IMAP`, `SMTP`…
        proto: &'static str,
        /// The existing account whose password was wrong.
        user: Addr<'a>,
        /// The client that tried.
        ip: Ip,
    },
    /// `Failed IMAP login from IP, user X` (POP3 alike), `…, user X not
    /// found` for a login that is no account.
    FailedLogin {
        /// `IMAP` or `POP3`.
        service: &'static str,
        /// The client that failed to log in.
        ip: Ip,
        /// The login it tried.
        user: Addr<'a>,
        /// The login is no account here (`not found`).
        unknown: bool,
    },
    /// A non-delivery report the server queued for a failed message:
    /// `Recv: Queue-ID: Q, Service: DSN, From: , To: , Size: N, Report: failed`.
    Dsn {
        /// The report's own queue id; its `Sent:` line repeats it.
        queue: QueueId,
        /// The report's size in bytes.
        size: u32,
    },
    /// `Relay attempt from IP address IP, mail from <a> to <b> rejected`
    RelayAttempt {
        /// The unauthenticated client that asked to relay.
        ip: Ip,
        /// The envelope sender it gave.
        from: Addr<'a>,
        /// The outside recipient it wanted mail relayed to.
        to: Addr<'a>,
    },
    /// `IP address IP found in DNS blacklist LIST, mail from <a> to <b> rejected`
    DnsBlacklist {
        /// The listed client.
        ip: Ip,
        /// The blacklist's name as configured in Kerio (`SpamCop`…).
        list: &'static str,
        /// The envelope sender it gave.
        from: Addr<'a>,
        /// The recipient it was sending to.
        to: Addr<'a>,
    },
    /// `Attempt to deliver to unknown recipient <r>, from <a>, IP address IP`
    UnknownRecipient {
        /// The local address that does not exist.
        rcpt: Addr<'a>,
        /// The envelope sender it gave.
        from: Addr<'a>,
        /// The sending client.
        ip: Ip,
    },
    /// `SMTP Spam attack detected from IP, client closed connection before SMTP greeting`
    SpamAttack {
        /// The client that spoke before the greeting.
        ip: Ip,
    },

    // audit.log
    /// `IMAP: User X authenticated from IP address IP`
    Login {
        /// The service logged into: `IMAP`, `SMTP`, `HTTP/WebMail`,
        /// `HTTP/KOFF`…; a webmail login is what mailfuse ties the following
        /// `Sender-Host: 0.0.0.0` submissions to.
        proto: &'static str,
        /// The account that logged in.
        user: Addr<'a>,
        /// The client's address: the office, a home, a phone or the spammer.
        ip: Ip,
    },
}

/// Writes lines, remembering the day of the last time stamp.
#[derive(Clone, Debug, Default)]
pub struct LineWriter {
    stamp: StampWriter,
    version: KerioVersion,
}

impl LineWriter {
    /// A writer of `version`'s lines.
    pub fn new(version: KerioVersion) -> Self {
        LineWriter {
            stamp: StampWriter::default(),
            version,
        }
    }

    /// Appends `line`, stamped `at`, with its `\n` to `out`.
    pub fn write(&mut self, out: &mut Vec<u8>, at: Wall, line: &Line<'_>) {
        self.stamp.write(out, at);
        match line {
            Line::Recv(r) => write_recv(out, r, self.version),
            Line::Sent(s) => write_sent(out, s),
            Line::FailedSmtpLogin { ip } => {
                out.str("Failed SMTP login from ");
                out.ip(*ip);
                out.str(" with SASL method LOGIN.");
            }
            Line::SmtpUnknownUser { user, ip } => {
                out.str("SMTP: User ");
                user.write(out);
                out.str(" doesn't exist. Attempt from IP address ");
                out.ip(*ip);
                out.push(b'.');
            }
            Line::AntiHammeringBlock { ip } => {
                out.str("SMTP: AntiHammering - IP address ");
                out.ip(*ip);
                out.str(
                    " will be blocked for 5 minutes, too many failed logins from this IP address.",
                );
            }
            Line::AntiHammeringRefused { ip } => {
                out.str("SMTP: AntiHammering: connection from IP address ");
                out.ip(*ip);
                out.str(" is blocked");
            }
            Line::InvalidPassword { proto, user, ip } => {
                out.str(proto);
                out.str(": Invalid password for user ");
                user.write(out);
                out.str(". Attempt from IP address ");
                out.ip(*ip);
            }
            Line::FailedLogin {
                service,
                ip,
                user,
                unknown,
            } => {
                out.str("Failed ");
                out.str(service);
                out.str(" login from ");
                out.ip(*ip);
                out.str(", user ");
                user.write(out);
                if *unknown {
                    out.str(" not found");
                }
            }
            Line::Dsn { queue, size } => {
                out.str("Recv: Queue-ID: ");
                queue.write(out);
                out.str(", Service: DSN, From: , To: , Size: ");
                out.dec(u64::from(*size));
                out.str(", Report: failed");
            }
            Line::RelayAttempt { ip, from, to } => {
                out.str("Relay attempt from IP address ");
                out.ip(*ip);
                write_envelope(out, from, to);
                out.str(" rejected");
            }
            Line::DnsBlacklist { ip, list, from, to } => {
                out.str("IP address ");
                out.ip(*ip);
                out.str(" found in DNS blacklist ");
                out.str(list);
                write_envelope(out, from, to);
                out.str(" rejected");
            }
            Line::UnknownRecipient { rcpt, from, ip } => {
                out.str("Attempt to deliver to unknown recipient <");
                rcpt.write(out);
                out.str(">, from <");
                from.write(out);
                out.str(">, IP address ");
                out.ip(*ip);
            }
            Line::SpamAttack { ip } => {
                out.str("SMTP Spam attack detected from ");
                out.ip(*ip);
                out.str(", client closed connection before SMTP greeting");
            }
            Line::Login { proto, user, ip } => {
                out.str(proto);
                out.str(": User ");
                user.write(out);
                out.str(" authenticated from IP address ");
                out.ip(*ip);
            }
        }
        out.push(b'\n');
    }
}

/// `Recv:` in Kerio 8+ field order (`User:` after `Sender-Host:`).
fn write_recv(out: &mut Vec<u8>, r: &Recv<'_>, version: KerioVersion) {
    out.str("Recv: Queue-ID: ");
    r.queue.write(out);
    out.str(", Service: ");
    out.str(r.service.name(version));
    out.str(", From: <");
    r.from.write(out);
    out.str(">, To: <");
    r.to.write(out);
    out.str(">, Size: ");
    out.dec(u64::from(r.size));
    out.str(", Sender-Host: ");
    out.ip(r.sender_host);
    if let Some(user) = &r.user {
        out.str(", User: ");
        user.write(out);
    }
    if r.ssl {
        out.str(", SSL: yes");
    }
    out.str(", Subject: ");
    out.str(r.subject.prefix);
    out.str(r.subject.text);
    out.str(", Msg-Id: ");
    r.msg_id.write(out);
}

fn write_sent(out: &mut Vec<u8>, s: &Sent<'_>) {
    out.str("Sent: Queue-ID: ");
    s.queue.write(out);
    out.str(", Recipient: <");
    s.rcpt.write(out);
    out.str(">, Result: ");
    out.str(s.outcome.result.as_str());
    out.str(", Status: ");
    write_status(out, &s.outcome, &s.rcpt);
    out.str(", Remote-Host: ");
    out.ip(s.remote_host);
    out.str(", Msg-Id: ");
    s.msg_id.write(out);
}

/// An attempt's status as Kerio writes it: the DSN code, a space and the
/// server's reply (`5.1.1 550 5.1.1 <x@y>: Recipient address rejected`).
pub(crate) fn write_status(out: &mut Vec<u8>, outcome: &Outcome, rcpt: &Addr<'_>) {
    for piece in outcome.status {
        match piece {
            Piece::Text(text) => out.str(text),
            Piece::Rcpt => rcpt.write(out),
            Piece::Domain => out.str(rcpt.domain),
            Piece::Token => out.hex_upper(outcome.token, 10),
        }
    }
}

/// Renders the benchmark's traffic as Kerio's mail.log: a `Recv:` line when
/// a message arrives, a `Sent:` line per delivery attempt.
#[derive(Clone, Debug)]
pub struct KerioRender {
    writer: LineWriter,
    version: KerioVersion,
    /// The server's message counter, the second half of queue ids.
    counter: u32,
    utc_offset: i64,
    /// The server's own domain when it writes non-delivery reports (`DSN`)
    /// for failed messages; the benchmark file has none.
    reports_for: Option<&'static str>,
}

/// Something Kerio's mail.log says after a message's `Recv:` line.
#[derive(Clone, Copy, Debug)]
pub enum KerioLater<'a> {
    /// A delivery attempt's `Sent:` line.
    Sent(Sent<'a>),
    /// The last failed attempt is over: the server queues a non-delivery
    /// report to the message's sender.
    Report {
        /// The failed message's envelope sender, who gets the report.
        to: Addr<'a>,
        /// The failed message's Message-ID style, for the report's own.
        msg_id: MsgId<'a>,
    },
}

impl KerioRender {
    /// A server `utc_offset` seconds ahead of UTC (queue ids hold UTC).
    pub fn new(utc_offset: i64) -> Self {
        KerioRender {
            writer: LineWriter::default(),
            version: KerioVersion::V10,
            counter: 0x0010_0000,
            utc_offset,
            reports_for: None,
        }
    }

    /// A `version` server of `domain` that also logs the non-delivery
    /// reports it sends back for failed messages.
    pub fn with_reports(utc_offset: i64, version: KerioVersion, domain: &'static str) -> Self {
        KerioRender {
            writer: LineWriter::new(version),
            version,
            reports_for: Some(domain),
            ..KerioRender::new(utc_offset)
        }
    }

    fn next_queue(&mut self, at: Wall) -> QueueId {
        let queue = QueueId::new(at.utc(self.utc_offset), self.counter);
        self.counter = self.counter.wrapping_add(1);
        queue
    }
}

impl<'a> Render<'a> for KerioRender {
    type Later = KerioLater<'a>;
    type QueueId = QueueId;

    fn message(
        &mut self,
        msg: &Message<'a>,
        _: Connection,
        lines: &mut Lines,
        schedule: &mut Schedule<KerioLater<'a>>,
    ) -> QueueId {
        let queue = self.next_queue(msg.at);
        let mut recv = msg.recv(queue);
        if self.version == KerioVersion::V8 && msg.service == Service::WebClient {
            recv.sender_host = msg.web_client;
        }
        self.writer.write(lines.line(), msg.at, &Line::Recv(recv));
        let mut last_failure = None;
        for (at, sent) in msg.sents(queue) {
            if sent.outcome.result == Disposition::Failed {
                last_failure = last_failure.max(Some(at));
            }
            schedule.push(at, KerioLater::Sent(sent));
        }
        if let (Some(at), Some(_)) = (last_failure, self.reports_for) {
            let msg_id = MsgId {
                a: msg.msg_id.b,
                b: msg.msg_id.a,
                ..msg.msg_id
            };
            let report = KerioLater::Report {
                to: msg.from,
                msg_id,
            };
            schedule.push(at.plus(1), report);
        }
        queue
    }

    fn later(
        &mut self,
        at: Wall,
        later: KerioLater<'a>,
        lines: &mut Lines,
        schedule: &mut Schedule<KerioLater<'a>>,
    ) {
        match later {
            KerioLater::Sent(sent) => self.writer.write(lines.line(), at, &Line::Sent(sent)),
            KerioLater::Report { to, msg_id } => {
                let queue = self.next_queue(at);
                let size = 1_600 + (msg_id.a % 3_000) as u32;
                self.writer
                    .write(lines.line(), at, &Line::Dsn { queue, size });
                let local = self.reports_for == Some(to.domain);
                let sent = Sent {
                    queue,
                    rcpt: to,
                    outcome: if local {
                        Outcome::default()
                    } else {
                        Outcome {
                            result: Disposition::Relayed,
                            status: crate::vocab::RELAY_REPLIES[0],
                            token: msg_id.b,
                        }
                    },
                    remote_host: if local { LOCALHOST } else { REPORT_MX },
                    msg_id,
                };
                schedule.push(at.plus(1), KerioLater::Sent(sent));
            }
        }
    }
}

/// Where non-delivery reports to outside senders go: the mail server of
/// the (usually forged) sender's domain.
const REPORT_MX: Ip = [192, 0, 2, 199];

/// `, mail from <a> to <b>` of security.log's rejection lines.
fn write_envelope(out: &mut Vec<u8>, from: &Addr<'_>, to: &Addr<'_>) {
    out.str(", mail from <");
    from.write(out);
    out.str("> to <");
    to.write(out);
    out.push(b'>');
}

/// Appending text and numbers to a byte buffer without `fmt`.
pub(crate) trait Put {
    fn str(&mut self, s: &str);
    fn dec(&mut self, n: u64);
    /// `n`'s lowest `width` hex digits, lower case, zero-padded.
    fn hex(&mut self, n: u64, width: u32);
    fn hex_upper(&mut self, n: u64, width: u32);
    fn ip(&mut self, ip: Ip);
}

impl Put for Vec<u8> {
    fn str(&mut self, s: &str) {
        self.extend_from_slice(s.as_bytes());
    }

    fn dec(&mut self, mut n: u64) {
        let mut digits = [0u8; 20];
        let mut i = digits.len();
        loop {
            i -= 1;
            digits[i] = b'0' + (n % 10) as u8;
            n /= 10;
            if n == 0 {
                break;
            }
        }
        self.extend_from_slice(&digits[i..]);
    }

    fn hex(&mut self, n: u64, width: u32) {
        put_hex(self, n, width, b"0123456789abcdef");
    }

    fn hex_upper(&mut self, n: u64, width: u32) {
        put_hex(self, n, width, b"0123456789ABCDEF");
    }

    fn ip(&mut self, ip: Ip) {
        for (i, octet) in ip.into_iter().enumerate() {
            if i > 0 {
                self.push(b'.');
            }
            self.dec(u64::from(octet));
        }
    }
}

fn put_hex(out: &mut Vec<u8>, n: u64, width: u32, digits: &[u8; 16]) {
    for shift in (0..width).rev() {
        out.push(digits[((n >> (shift * 4)) & 0xf) as usize]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vocab;

    fn render(line: Line<'_>) -> String {
        let mut out = Vec::new();
        LineWriter::default().write(&mut out, Wall::civil(2012, 8, 3, 14, 3, 27), &line);
        String::from_utf8(out).unwrap()
    }

    const SALES: Addr<'static> = Addr::new("sales", "example.com");

    #[test]
    fn recv_has_kerio_8_field_order() {
        let line = render(Line::Recv(Recv {
            queue: QueueId {
                utc: 0x501c_1268,
                counter: 0x0001_243c,
            },
            service: Service::Smtp,
            from: Addr::new("admin", "redbullcarwrap.com"),
            to: Addr::composed("a", "caraballo", "", "adelphia.net"),
            size: 2275,
            sender_host: [173, 16, 65, 213],
            user: Some(SALES),
            ssl: false,
            subject: Subject {
                prefix: "Re: ",
                text: "hi, there",
            },
            msg_id: MsgId {
                style: MsgIdStyle::Kerio,
                a: 3_533_420_989,
                b: 24_989,
                domain: "domain",
            },
        }));
        assert_eq!(
            line,
            "[03/Aug/2012 14:03:27] Recv: Queue-ID: 501c1268-0001243c, Service: SMTP, \
             From: <admin@redbullcarwrap.com>, To: <acaraballo@adelphia.net>, Size: 2275, \
             Sender-Host: 173.16.65.213, User: sales@example.com, Subject: Re: hi, there, \
             Msg-Id: <3533420989-24989@domain>\n"
        );
    }

    #[test]
    fn sent_fills_reply_templates() {
        let sent = Sent {
            queue: QueueId {
                utc: 0x501c_1268,
                counter: 0x0001_243c,
            },
            rcpt: Addr::composed("a", "carbon", "", "netzero.net"),
            outcome: Outcome {
                result: Disposition::Failed,
                status: vocab::REFUSALS[0],
                token: 0,
            },
            remote_host: [192, 0, 2, 7],
            msg_id: MsgId {
                style: MsgIdStyle::Uuid,
                a: 0x0123_4567_89ab_cdef,
                b: 0xbeef,
                domain: "x.example",
            },
        };
        assert_eq!(
            render(Line::Sent(sent)),
            "[03/Aug/2012 14:03:27] Sent: Queue-ID: 501c1268-0001243c, Recipient: \
             <acarbon@netzero.net>, Result: failed, Status: 5.1.1 550 acarbon@netzero.net is \
             not a valid user, Remote-Host: 192.0.2.7, Msg-Id: <89abcdef-beef-0123@x.example>\n"
        );
        let local = Sent {
            outcome: Outcome::default(),
            remote_host: LOCALHOST,
            ..sent
        };
        assert!(render(Line::Sent(local))
            .contains("Result: delivered, Status: 2.0.0 , Remote-Host: 127.0.0.1, Msg-Id: <"));
    }

    #[test]
    fn security_and_audit_lines() {
        let ip = [45, 155, 205, 99];
        let cases = [
            (
                Line::FailedSmtpLogin { ip },
                "Failed SMTP login from 45.155.205.99 with SASL method LOGIN.",
            ),
            (
                Line::SmtpUnknownUser { user: SALES, ip },
                "SMTP: User sales@example.com doesn't exist. Attempt from IP address 45.155.205.99.",
            ),
            (
                Line::AntiHammeringBlock { ip },
                "SMTP: AntiHammering - IP address 45.155.205.99 will be blocked for 5 minutes, \
                 too many failed logins from this IP address.",
            ),
            (
                Line::InvalidPassword {
                    proto: "HTTP/WebMail",
                    user: SALES,
                    ip,
                },
                "HTTP/WebMail: Invalid password for user sales@example.com. Attempt from IP \
                 address 45.155.205.99",
            ),
            (
                Line::FailedLogin {
                    service: "IMAP",
                    ip,
                    user: SALES,
                    unknown: false,
                },
                "Failed IMAP login from 45.155.205.99, user sales@example.com",
            ),
            (
                Line::DnsBlacklist {
                    ip,
                    list: "SpamCop",
                    from: SALES,
                    to: SALES,
                },
                "IP address 45.155.205.99 found in DNS blacklist SpamCop, mail from \
                 <sales@example.com> to <sales@example.com> rejected",
            ),
            (
                Line::UnknownRecipient {
                    rcpt: SALES,
                    from: SALES,
                    ip,
                },
                "Attempt to deliver to unknown recipient <sales@example.com>, from \
                 <sales@example.com>, IP address 45.155.205.99",
            ),
            (
                Line::Login {
                    proto: "IMAP",
                    user: SALES,
                    ip,
                },
                "IMAP: User sales@example.com authenticated from IP address 45.155.205.99",
            ),
        ];
        for (line, text) in cases {
            assert_eq!(render(line), format!("[03/Aug/2012 14:03:27] {text}\n"));
        }
    }

    #[test]
    fn numbers() {
        let mut out = Vec::new();
        out.dec(0);
        out.push(b' ');
        out.dec(u64::MAX);
        out.push(b' ');
        out.hex(0x1ab, 8);
        out.push(b' ');
        out.ip([0, 10, 100, 255]);
        assert_eq!(
            out,
            b"0 18446744073709551615 000001ab 0.10.100.255".as_slice()
        );
    }
}
