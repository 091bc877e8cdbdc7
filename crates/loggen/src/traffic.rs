//! Ordinary mail: the people of an organisation and the messages they send
//! and receive. Both the example week and the benchmark draw from here, so
//! the benchmark reads like the example, only bigger.

use crate::clock::{Wall, HOUR};
use crate::kerio::{
    Addr, Disposition, Ip, Line, MsgId, MsgIdStyle, Outcome, QueueId, Recv, Sent, Service, Subject,
    LOCALHOST, NO_HOST,
};
use crate::rng::Rng;
use crate::vocab::{self, Domain};

/// How a person normally writes mail.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MailClient {
    /// Thunderbird & co.: IMAP to read, authenticated SMTP to send.
    Desktop,
    /// Kerio's webmail in a browser.
    Webmail,
    /// Outlook through Kerio's HTTP connector (KOFF).
    Outlook,
}

impl MailClient {
    /// The audit.log protocol of this client's logins.
    pub fn login_proto(self) -> &'static str {
        match self {
            MailClient::Desktop => "IMAP",
            MailClient::Webmail => "HTTP/WebMail",
            MailClient::Outlook => "HTTP/KOFF",
        }
    }

    /// How a message from this client at `host` reaches the server.
    pub fn channel(self, host: Ip) -> Channel {
        match self {
            MailClient::Desktop => Channel::Smtp(host),
            MailClient::Webmail => Channel::Webmail(host),
            MailClient::Outlook => Channel::Http(host),
        }
    }
}

/// Where a submission comes from, which decides Kerio's `Service`,
/// `Sender-Host` and `SSL` fields.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Channel {
    /// Authenticated SMTP from this address (`Service: SMTP`).
    Smtp(Ip),
    /// Webmail in a browser at this address: Kerio 9+ logs `Sender-Host:
    /// 0.0.0.0` (the address is only in the preceding audit.log login),
    /// Kerio 8 logs the address, Postfix sees the webmail's own submission
    /// from 127.0.0.1.
    Webmail(Ip),
    /// Outlook or ActiveSync over HTTP from this address (`Service: HTTP`).
    Http(Ip),
}

/// A mailbox owner and their habits.
#[derive(Clone, Copy, Debug)]
pub struct Person<'a> {
    /// The mailbox's address, which is also the person's login and the
    /// envelope sender of what they write.
    pub addr: Addr<'a>,
    /// The mail program they use, which decides the service, the login
    /// protocol and the Message-ID style of their mail.
    pub client: MailClient,
    /// Messages sent on an ordinary working day.
    pub daily: u32,
    /// Home connection, used evenings and weekends.
    pub home: Option<Ip>,
    /// A phone polling IMAP from a mobile network.
    pub phone: Option<Ip>,
    /// Mail to this mailbox is also delivered there (a forwarding rule).
    pub forward_to: Option<Addr<'a>>,
}

/// An organisation on one Kerio server.
#[derive(Clone, Debug)]
pub struct Org<'a> {
    /// The organisation's mail domain, served by this server.
    pub domain: &'a str,
    /// The office's public (NAT) address.
    pub office_ip: Ip,
    /// Everyone with a mailbox: staff first, then the role mailboxes.
    pub people: Vec<Person<'a>>,
}

/// Most delivery attempts a message can hold: a newsletter batch of 10
/// recipients, each possibly deferred once and retried.
const MAX_DELIVERIES: usize = 20;

/// One recipient's delivery attempt, `after` seconds after queueing.
#[derive(Clone, Copy, Debug, Default)]
pub struct Delivery<'a> {
    /// The recipient of this attempt.
    pub rcpt: Addr<'a>,
    /// Seconds from queueing to the end of the attempt: when its `Sent:`
    /// line is stamped.
    pub after: u32,
    /// How the attempt ended.
    pub outcome: Outcome,
    /// Where it was handed: [`LOCALHOST`] for a local mailbox, else the
    /// recipient domain's MX.
    pub remote_host: Ip,
}

/// A message and everything that happens to it: one `Recv:` line, then one
/// `Sent:` line per delivery attempt. Fixed-size so generating one allocates
/// nothing.
#[derive(Clone, Copy, Debug, Default)]
pub struct Message<'a> {
    /// When the message was queued (server wall time): its `Recv:` line's
    /// stamp, from which the deliveries' `after` count.
    pub at: Wall,
    /// How it came in (`Service:`), set from its [`Channel`].
    pub service: Service,
    /// The envelope sender; the spammer's is forged.
    pub from: Addr<'a>,
    /// The authenticated login (`User:`); `None` for mail from other servers.
    pub user: Option<Addr<'a>>,
    /// The client's address (`Sender-Host:`): [`NO_HOST`] for webmail.
    pub sender_host: Ip,
    /// The browser's address behind a webmail submission ([`NO_HOST`]
    /// otherwise), which only some servers log with the message (Kerio 8).
    pub web_client: Ip,
    /// Whether the client used TLS (`SSL: yes`): submissions do, the spammer
    /// and some outside servers do not.
    pub ssl: bool,
    /// Size in bytes (`Size:`).
    pub size: u32,
    /// The Subject header (`Subject:`): business text for office mail,
    /// spam texts for the hijacker's run.
    pub subject: Subject<'a>,
    /// The Message-ID header, in the style of the sender's mail program.
    pub msg_id: MsgId<'a>,
    deliveries: [Delivery<'a>; MAX_DELIVERIES],
    len: usize,
}

impl<'a> Message<'a> {
    /// A message entering the queue at `at` through `channel`, without
    /// recipients yet.
    pub fn submitted(at: Wall, channel: Channel, from: Addr<'a>, user: Addr<'a>) -> Self {
        let (service, sender_host, web_client) = match channel {
            Channel::Smtp(ip) => (Service::Smtp, ip, NO_HOST),
            Channel::Webmail(browser) => (Service::WebClient, NO_HOST, browser),
            Channel::Http(ip) => (Service::Http, ip, NO_HOST),
        };
        Message {
            at,
            service,
            from,
            user: Some(user),
            sender_host,
            web_client,
            ssl: true,
            ..Message::default()
        }
    }

    /// A message from another mail server (no `User:`), from its MX.
    pub fn incoming(at: Wall, from: Addr<'a>, mx: Ip, ssl: bool) -> Self {
        Message {
            at,
            service: Service::Smtp,
            from,
            user: None,
            sender_host: mx,
            ssl,
            ..Message::default()
        }
    }

    /// Adds a delivery attempt.
    ///
    /// Panics beyond 20 attempts (a newsletter batch with retries): the
    /// generators stay within that by construction, and a silently dropped
    /// recipient would skew the logs.
    pub fn push(&mut self, delivery: Delivery<'a>) {
        assert!(
            self.len < MAX_DELIVERIES,
            "too many deliveries for one message"
        );
        self.deliveries[self.len] = delivery;
        self.len += 1;
    }

    /// The delivery attempts added so far, in the order added.
    pub fn deliveries(&self) -> &[Delivery<'a>] {
        &self.deliveries[..self.len]
    }

    /// Stores the message for a local mailbox.
    pub fn deliver_locally(&mut self, rng: &mut Rng, rcpt: Addr<'a>) {
        self.push(Delivery {
            rcpt,
            after: rng.between(0, 2) as u32,
            outcome: Outcome::default(),
            remote_host: LOCALHOST,
        });
    }

    /// Relays the message to an outside server after `after` seconds: refused
    /// for good with probability `fail_permille`/1000, otherwise accepted,
    /// now or — for a few — after a deferral and a retry.
    pub fn relay(&mut self, rng: &mut Rng, rcpt: Addr<'a>, mx: Ip, after: u32, fail_permille: u64) {
        let mut delivery = Delivery {
            rcpt,
            after,
            outcome: accepted(rng),
            remote_host: mx,
        };
        if rng.permille(fail_permille) {
            delivery.outcome = refused(rng);
        } else if rng.permille(8) {
            let retry = Delivery {
                after: after + rng.between(15 * 60, 35 * 60) as u32,
                ..delivery
            };
            delivery.outcome = Outcome {
                result: Disposition::Deferred,
                status: rng.pick(vocab::DEFERRALS),
                token: 0,
            };
            self.push(delivery);
            delivery = retry;
        }
        self.push(delivery);
    }

    /// The message's `Recv:` line, whose `To:` is the first recipient.
    /// Panics if the message has none (every generator adds one).
    pub fn recv(&self, queue: QueueId) -> Recv<'a> {
        Recv {
            queue,
            service: self.service,
            from: self.from,
            to: self.deliveries[0].rcpt,
            size: self.size,
            sender_host: self.sender_host,
            user: self.user,
            ssl: self.ssl,
            subject: self.subject,
            msg_id: self.msg_id,
        }
    }

    /// The message's `Sent:` lines with their times.
    pub fn sents(&self, queue: QueueId) -> impl Iterator<Item = (Wall, Sent<'a>)> + '_ {
        self.deliveries().iter().map(move |d| {
            let sent = Sent {
                queue,
                rcpt: d.rcpt,
                outcome: d.outcome,
                remote_host: d.remote_host,
                msg_id: self.msg_id,
            };
            (self.at.plus(i64::from(d.after)), sent)
        })
    }

    /// All of the message's lines in the order Kerio writes them.
    pub fn lines(&self, queue: QueueId) -> impl Iterator<Item = (Wall, Line<'a>)> + '_ {
        std::iter::once((self.at, Line::Recv(self.recv(queue))))
            .chain(self.sents(queue).map(|(at, s)| (at, Line::Sent(s))))
    }
}

/// An outside server's acceptance.
pub fn accepted(rng: &mut Rng) -> Outcome {
    Outcome {
        result: Disposition::Relayed,
        status: rng.pick(vocab::RELAY_REPLIES),
        token: rng.next_u64(),
    }
}

/// An outside server's permanent refusal of an unknown recipient.
pub fn refused(rng: &mut Rng) -> Outcome {
    Outcome {
        result: Disposition::Failed,
        status: rng.pick(vocab::REFUSALS),
        token: 0,
    }
}

/// A Message-ID as `style`'s program makes it, in `domain`.
pub fn msg_id<'a>(rng: &mut Rng, style: MsgIdStyle, domain: &'a str) -> MsgId<'a> {
    MsgId {
        style,
        a: rng.next_u64(),
        b: rng.next_u64(),
        domain,
    }
}

/// A message size: mostly a few kB of text, sometimes an attachment.
pub fn office_size(rng: &mut Rng) -> u32 {
    match rng.below(100) {
        0..=59 => rng.between(1_800, 12_000) as u32,
        60..=89 => rng.between(20_000, 400_000) as u32,
        _ => rng.between(500_000, 8_000_000) as u32,
    }
}

/// `first.last` at `domain`, a typical person's address outside.
pub fn someone_at<'a>(rng: &mut Rng, domain: &'a str) -> Addr<'a> {
    Addr::composed(
        rng.pick(vocab::FIRST_NAMES),
        ".",
        rng.pick(vocab::SURNAMES),
        domain,
    )
}

/// A correspondent's domain: mostly business partners, some freemail.
pub fn correspondent_domain(rng: &mut Rng) -> Domain {
    if rng.percent(70) {
        rng.pick(vocab::PARTNERS)
    } else {
        rng.pick(vocab::FREEMAIL)
    }
}

fn business_subject(rng: &mut Rng) -> Subject<'static> {
    Subject {
        prefix: rng.pick(vocab::SUBJECT_PREFIXES),
        text: rng.pick(vocab::BUSINESS_SUBJECTS),
    }
}

impl<'a> Org<'a> {
    /// An organisation of `staff` generated people plus the role mailboxes
    /// `info`, `support`, `marketing` and `sales` (which only forwards and
    /// never sends: the account of the seed story).
    pub fn synthetic(domain: &'a str, office_ip: Ip, staff: usize, rng: &mut Rng) -> Org<'a> {
        let first = vocab::FIRST_NAMES;
        let last = vocab::SURNAMES;
        assert!(
            staff <= first.len() * last.len(),
            "not enough distinct names"
        );
        let mut people: Vec<Person<'a>> = (0..staff)
            .map(|i| {
                // Walk the name grid diagonally so neighbours differ in both names.
                let addr = Addr::composed(
                    first[i % first.len()],
                    ".",
                    last[(i + i / first.len()) % last.len()],
                    domain,
                );
                person(rng, addr)
            })
            .collect();
        let forward_to = people.first().map(|p| p.addr);
        for (role, client, daily) in [
            ("info", MailClient::Desktop, 2),
            ("support", MailClient::Webmail, 8),
            ("marketing", MailClient::Desktop, 4),
        ] {
            people.push(Person {
                client,
                daily,
                home: None,
                phone: None,
                ..person(rng, Addr::new(role, domain))
            });
        }
        people.push(Person {
            addr: Addr::new("sales", domain),
            client: MailClient::Desktop,
            daily: 0,
            home: None,
            phone: None,
            forward_to,
        });
        Org {
            domain,
            office_ip,
            people,
        }
    }

    /// The person whose address's first local-part piece is `login`: the
    /// whole local part for addresses made with [`Addr::new`] (role
    /// mailboxes, the example's `k.dvorak`), only the first name of
    /// [`Addr::composed`] ones.
    pub fn find(&self, login: &str) -> Option<&Person<'a>> {
        self.people.iter().find(|p| p.addr.local[0] == login)
    }

    /// A message `sender` writes at `at` through `channel`: one to three
    /// recipients, most outside, about 1 % of those refused.
    pub fn outbound(
        &self,
        rng: &mut Rng,
        sender: &Person<'a>,
        at: Wall,
        channel: Channel,
    ) -> Message<'a> {
        let mut msg = Message::submitted(at, channel, sender.addr, sender.addr);
        msg.size = office_size(rng);
        msg.subject = business_subject(rng);
        let style = match sender.client {
            MailClient::Desktop => MsgIdStyle::Uuid,
            MailClient::Webmail => MsgIdStyle::Kerio,
            MailClient::Outlook => MsgIdStyle::Outlook,
        };
        msg.msg_id = msg_id(rng, style, self.domain);
        let rcpts = match rng.below(10) {
            0..=6 => 1,
            7..=8 => 2,
            _ => 3,
        };
        for _ in 0..rcpts {
            if rng.percent(25) {
                let colleague = rng.pick(&self.people).addr;
                msg.deliver_locally(rng, colleague);
            } else {
                let domain = correspondent_domain(rng);
                let rcpt = someone_at(rng, domain.name);
                let after = rng.between(1, 4) as u32;
                msg.relay(rng, rcpt, domain.mx, after, 10);
            }
        }
        msg
    }

    /// A message from outside to someone here, stored locally (and forwarded
    /// where the mailbox says so).
    pub fn inbound(&self, rng: &mut Rng, at: Wall) -> Message<'a> {
        let to = rng.pick(&self.people);
        let mut msg = if rng.percent(20) {
            let (local, domain) = rng.pick(vocab::AUTOMATED);
            let mut msg = Message::incoming(at, Addr::new(local, domain.name), domain.mx, true);
            msg.subject = Subject {
                prefix: "",
                text: rng.pick(vocab::AUTOMATED_SUBJECTS),
            };
            msg.msg_id = msg_id(rng, MsgIdStyle::Uuid, domain.name);
            msg
        } else {
            let domain = correspondent_domain(rng);
            let from = someone_at(rng, domain.name);
            let mut msg = Message::incoming(at, from, domain.mx, rng.percent(85));
            msg.subject = business_subject(rng);
            let style = rng.pick(&[MsgIdStyle::Outlook, MsgIdStyle::Uuid]);
            msg.msg_id = msg_id(rng, style, domain.name);
            msg
        };
        msg.size = office_size(rng);
        msg.deliver_locally(rng, to.addr);
        if let Some(target) = to.forward_to {
            msg.deliver_locally(rng, target);
        }
        msg
    }

    /// The messages an organisation of this size exchanges in the hour
    /// starting `hour`: ordinary days peak in office hours; weekends are quiet.
    pub fn hourly_volume(&self, rng: &mut Rng, hour: Wall) -> u64 {
        // Share of a working day's mail per hour, in per mille.
        const WORKDAY: [u64; 24] = [
            6, 4, 3, 3, 3, 5, 10, 35, 90, 110, 105, 95, 60, 85, 100, 95, 80, 50, 25, 15, 12, 10, 8,
            6,
        ];
        let daily: u64 = self.people.iter().map(|p| u64::from(p.daily) * 2).sum();
        let mut volume = daily * WORKDAY[hour.hour() as usize];
        if hour.weekday().is_weekend() {
            volume /= 8;
        }
        rng.jitter(volume, 70, 130) / 1000
    }
}

/// Habits for a generated person: mostly desktop clients, some webmail and
/// Outlook users; many check mail from home or a phone.
fn person<'a>(rng: &mut Rng, addr: Addr<'a>) -> Person<'a> {
    let client = match rng.below(10) {
        0..=4 => MailClient::Desktop,
        5..=7 => MailClient::Webmail,
        _ => MailClient::Outlook,
    };
    // Home connections and phones in different halves of one documentation /24.
    let home = rng
        .percent(60)
        .then(|| [203, 0, 113, rng.between(10, 127) as u8]);
    let phone = rng
        .percent(50)
        .then(|| [203, 0, 113, rng.between(128, 250) as u8]);
    Person {
        addr,
        client,
        daily: rng.between(5, 40) as u32,
        home,
        phone,
        forward_to: None,
    }
}

/// Whether `at` is within office hours on a working day.
pub fn is_office_hours(at: Wall) -> bool {
    !at.weekday().is_weekend() && (8 * HOUR..18 * HOUR).contains(&at.secs_of_day())
}
