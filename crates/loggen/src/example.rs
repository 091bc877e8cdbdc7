//! The bundled example: one week (Mon 2026-11-02 to Sun 2026-11-08) of
//! `acme-tools.example`, a small company on a Kerio server in Central Europe
//! (UTC+01:00 in November).
//!
//! Ordinary office mail, a newsletter and a mistyped password — which must
//! not raise incidents — around the attacks mailfuse must find:
//!
//! * Monday afternoon: a password spray over role names from one address,
//!   throttled by Kerio's AntiHammering.
//! * All week: slow distributed IMAP guessing from 40 addresses of one /24.
//! * Wednesday night: the user's story. `sales`, an account that only
//!   forwards and never sent anything, has its password guessed from
//!   173.16.65.213; from Thursday 02:13 the spammer relays ~2,500 messages
//!   through it with the forged sender `<admin@redbullcarwrap.com>`.
//! * Noise a parser must survive: relay attempts, blacklisted senders and an
//!   inbound subject holding a terminal escape and HTML.
//!
//! Each scenario adds lines to a `Week`; rendering then numbers the
//! messages in time order (so queue ids count up like a real server's) and
//! writes each file sorted by time.

use crate::attack::{SpamRun, FORGED_FROM, SPAMMER_IP};
use crate::clock::{Wall, Weekday, DAY, HOUR, MINUTE};
use crate::kerio::{Addr, Ip, Line, LineWriter, MsgIdStyle, QueueId, Subject};
use crate::rng::Rng;
use crate::traffic::{
    correspondent_domain, msg_id, someone_at, Channel, MailClient, Message, Org, Person,
};
use crate::vocab;

/// The company's mail domain.
pub const DOMAIN: &str = "acme-tools.example";

/// The server's clock: Central European (winter) time.
pub const UTC_OFFSET: i64 = HOUR;

/// The office's NAT address, where most logins come from.
pub const OFFICE_IP: Ip = [198, 51, 100, 10];

/// The password sprayer of Monday afternoon.
pub const SPRAY_IP: Ip = [45, 155, 205, 99];

/// The /24 of the slow distributed guessing (first three octets).
pub const BOTNET_NET: [u8; 3] = [185, 220, 101];

/// The seed of the committed example files.
pub const DEFAULT_SEED: u64 = 20_261_102;

/// The server's message counter at the start of the week.
const FIRST_COUNTER: u32 = 0x0003_1a07;

/// Monday 2026-11-02 00:00 local time.
pub fn week_start() -> Wall {
    Wall::civil(2026, 11, 2, 0, 0, 0)
}

/// The three log files of the week, and the line the README quotes.
#[derive(Clone, Debug)]
pub struct ExampleLogs {
    /// mail.log: the `Recv:` and `Sent:` lines of every message, in time
    /// order.
    pub mail: Vec<u8>,
    /// security.log: failed logins, AntiHammering, relay attempts,
    /// blacklisted senders, unknown recipients.
    pub security: Vec<u8>,
    /// audit.log: successful logins (office, home, phones, webmail, and the
    /// spammer's once the password is guessed).
    pub audit: Vec<u8>,
    /// The spam run's first message, which `loggen example` prints.
    pub first_spam: FirstSpam,
}

/// The first message of the hijacker's run: where an admin starts tracing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FirstSpam {
    /// Its Kerio queue id, to pass to `mailfuse trace`.
    pub queue_id: QueueId,
    /// Its `Recv:` line, without the line end.
    pub line: String,
}

/// Generates the example week.
pub fn generate(seed: u64) -> ExampleLogs {
    let rng = Rng::new(seed);
    let org = staff();
    let mut week = Week::default();
    office_days(&mut week, &org, &mut rng.fork(1));
    inbound_mail(&mut week, &org, &mut rng.fork(2));
    newsletter(&mut week, &org, &mut rng.fork(3));
    mistyped_password(&mut week, &org, &mut rng.fork(4));
    password_spray(&mut week, &org, &mut rng.fork(5));
    distributed_guessing(&mut week, &org, &mut rng.fork(6));
    sales_hijack(&mut week, &org, &mut rng.fork(7));
    noise(&mut week, &org, &mut rng.fork(8));
    week.render()
}

/// The employees and role mailboxes of acme-tools.example.
fn staff() -> Org<'static> {
    use MailClient::{Desktop, Outlook, Webmail};
    const fn home(n: u8) -> Option<Ip> {
        Some([203, 0, 113, n])
    }
    const fn phone(n: u8) -> Option<Ip> {
        Some([203, 0, 113, 128 + n])
    }
    /// Login, mail client, messages per working day, home and phone addresses.
    type Row = (&'static str, MailClient, u32, Option<Ip>, Option<Ip>);
    #[rustfmt::skip]
    const STAFF: &[Row] = &[
        // login        client  daily  home       phone
        ("j.novak",     Desktop, 18, home(24), phone(3)),
        ("m.svoboda",   Outlook, 24, home(37), phone(9)),
        ("k.dvorak",    Webmail, 12, None,     phone(14)),
        ("p.cerny",     Desktop, 18, home(41), None),
        ("l.kral",      Desktop, 28, home(52), phone(21)),
        ("t.prochazka", Webmail,  8, home(66), None),
        ("e.kucerova",  Outlook, 15, None,     phone(30)),
        ("h.vesela",    Desktop,  6, None,     None),
        ("r.horak",     Webmail, 10, home(71), phone(33)),
        ("z.nemcova",   Desktop, 14, None,     None),
        ("v.marek",     Outlook, 20, home(88), phone(47)),
        ("a.pokorna",   Desktop,  5, None,     None),
        ("o.benes",     Webmail,  9, home(93), None),
        ("s.fialova",   Desktop, 11, None,     phone(52)),
        ("d.jelinek",   Desktop, 16, home(105), None),
        // role mailboxes, read and answered by staff in the office
        ("info",        Desktop,  2, None,     None),
        ("support",     Webmail,  7, None,     None),
        ("marketing",   Desktop,  3, None,     None),
        // only forwards to p.cerny; nobody ever logs in: the hijacked account
        ("sales",       Desktop,  0, None,     None),
    ];
    let people = STAFF
        .iter()
        .map(|&(login, client, daily, home, phone)| Person {
            addr: Addr::new(login, DOMAIN),
            client,
            daily,
            home,
            phone,
            forward_to: (login == "sales").then_some(Addr::new("p.cerny", DOMAIN)),
        })
        .collect();
    Org {
        domain: DOMAIN,
        office_ip: OFFICE_IP,
        people,
    }
}

/// Everything the scenarios logged, before numbering and sorting.
#[derive(Default)]
struct Week<'a> {
    messages: Vec<Message<'a>>,
    security: Vec<(Wall, Line<'a>)>,
    audit: Vec<(Wall, Line<'a>)>,
    /// When each person reached the office, per working day.
    arrivals: Vec<(Addr<'a>, Wall)>,
}

impl<'a> Week<'a> {
    fn login(&mut self, at: Wall, proto: &'static str, user: Addr<'a>, ip: Ip) {
        self.audit.push((at, Line::Login { proto, user, ip }));
    }

    fn security(&mut self, at: Wall, line: Line<'a>) {
        self.security.push((at, line));
    }

    /// Numbers the messages in time order and writes the three files.
    fn render(mut self) -> ExampleLogs {
        // Stable sorts throughout: lines logged at the same second keep the
        // order the scenario gave them (a Recv before its Sent lines).
        self.messages.sort_by_key(|m| m.at);
        let mut mail = Vec::with_capacity(self.messages.len() * 3);
        let mut first_spam = None;
        for (n, msg) in self.messages.iter().enumerate() {
            let queue = QueueId::new(msg.at.utc(UTC_OFFSET), FIRST_COUNTER + n as u32);
            if first_spam.is_none() && msg.from == FORGED_FROM {
                let mut line = Vec::new();
                LineWriter::default().write(&mut line, msg.at, &Line::Recv(msg.recv(queue)));
                line.pop();
                first_spam = Some(FirstSpam {
                    queue_id: queue,
                    line: String::from_utf8(line).expect("generated lines are UTF-8"),
                });
            }
            mail.extend(msg.lines(queue));
        }
        ExampleLogs {
            mail: write_sorted(mail),
            security: write_sorted(self.security),
            audit: write_sorted(self.audit),
            first_spam: first_spam.expect("the week contains the spam run"),
        }
    }
}

fn write_sorted(mut lines: Vec<(Wall, Line<'_>)>) -> Vec<u8> {
    lines.sort_by_key(|(at, _)| *at);
    let mut out = Vec::with_capacity(lines.len() * 160);
    let mut writer = LineWriter::default();
    for (at, line) in &lines {
        writer.write(&mut out, *at, line);
    }
    out
}

/// Each person's week: office days with the mail client of their habit,
/// some evenings and weekends from home, a phone checking mail all day.
fn office_days<'a>(week: &mut Week<'a>, org: &Org<'a>, rng: &mut Rng) {
    let mut sends: Vec<(Wall, Ip)> = Vec::new();
    for day in 0..7 {
        let date = week_start().plus(day * DAY);
        for person in org.people.iter().filter(|p| p.daily > 0) {
            if let Some(phone) = person.phone {
                let mut t = date.at(rng.between(6 * HOUR + 30 * MINUTE, 8 * HOUR));
                while t < date.at(22 * HOUR) {
                    week.login(t, "IMAP", person.addr, phone);
                    t = t.plus(rng.between(90 * MINUTE, 4 * HOUR));
                }
            }
            sends.clear();
            // A webmail or Outlook session opened at arrival.
            let mut session = None;
            if date.weekday().is_weekend() {
                if let Some(home) = person.home.filter(|_| rng.percent(35)) {
                    for _ in 0..rng.between(1, 4) {
                        sends.push((date.at(rng.between(10 * HOUR, 21 * HOUR)), home));
                    }
                }
            } else {
                let arrive = date.at(rng.between(7 * HOUR + 30 * MINUTE, 9 * HOUR));
                let leave = date.at(rng.between(16 * HOUR, 18 * HOUR + 30 * MINUTE));
                week.arrivals.push((person.addr, arrive));
                office_logins(week, rng, person, arrive, leave);
                session = Some((arrive, OFFICE_IP));
                let friday = date.weekday() == Weekday::Fri;
                let most = if friday { 110 } else { 140 };
                for _ in 0..rng.jitter(u64::from(person.daily), 60, most) {
                    let t = arrive.plus(rng.between(10 * MINUTE, leave.0 - arrive.0));
                    sends.push((t, OFFICE_IP));
                }
                if let Some(home) = person.home.filter(|_| rng.percent(25)) {
                    for _ in 0..rng.between(1, 3) {
                        let evening = rng.between(19 * HOUR, 22 * HOUR + 30 * MINUTE);
                        sends.push((date.at(evening), home));
                    }
                }
            }
            sends.sort_unstable();
            send_all(week, org, rng, person, session, &sends);
        }
    }
}

/// A working day's logins: the mail client at arrival, and desktop clients
/// reconnecting every hour or two.
fn office_logins<'a>(
    week: &mut Week<'a>,
    rng: &mut Rng,
    person: &Person<'a>,
    arrive: Wall,
    leave: Wall,
) {
    let proto = person.client.login_proto();
    week.login(arrive, proto, person.addr, OFFICE_IP);
    if person.client == MailClient::Desktop {
        let mut t = arrive.plus(rng.between(HOUR, 2 * HOUR));
        while t < leave {
            week.login(t, proto, person.addr, OFFICE_IP);
            t = t.plus(rng.between(HOUR, 2 * HOUR));
        }
    }
}

/// Submits one person's messages (sorted by time), each with the login
/// Kerio records for it: SMTP authenticates every connection; webmail and
/// Outlook sessions log in once and again after 30 idle minutes or from a
/// new place — so a webmail message's `Sender-Host: 0.0.0.0` can always be
/// resolved through the login just before it. `session` is the one opened
/// at arrival, if any.
fn send_all<'a>(
    week: &mut Week<'a>,
    org: &Org<'a>,
    rng: &mut Rng,
    person: &Person<'a>,
    mut session: Option<(Wall, Ip)>,
    sends: &[(Wall, Ip)],
) {
    let proto = person.client.login_proto();
    for &(at, ip) in sends {
        match person.client {
            MailClient::Desktop => week.login(at.plus(-1), "SMTP", person.addr, ip),
            MailClient::Webmail | MailClient::Outlook => {
                let fresh =
                    session.is_some_and(|(last, sip)| sip == ip && at.0 - last.0 <= 30 * MINUTE);
                if !fresh {
                    week.login(at.plus(-rng.between(20, 300)), proto, person.addr, ip);
                }
                session = Some((at, ip));
            }
        }
        week.messages
            .push(org.outbound(rng, person, at, person.client.channel(ip)));
    }
}

/// Mail from outside: business hours mostly, automated mail any time.
fn inbound_mail<'a>(week: &mut Week<'a>, org: &Org<'a>, rng: &mut Rng) {
    for hour in 0..7 * 24 {
        let start = week_start().plus(hour * HOUR);
        // hourly_volume counts both directions; inbound is about a quarter.
        let count = org.hourly_volume(rng, start) / 4;
        for _ in 0..count {
            let at = start.plus(rng.between(0, HOUR - 1));
            week.messages.push(org.inbound(rng, at));
        }
    }
}

/// Wednesday 10:00: `marketing` mails the customer newsletter to 800
/// addresses, ten per message as its bulk mailer does, within minutes, from
/// the office, with its own sender address and few bounces. Volume alone
/// must not make it an incident.
fn newsletter<'a>(week: &mut Week<'a>, org: &Org<'a>, rng: &mut Rng) {
    const PER_MESSAGE: u32 = 10;
    let marketing = org.find("marketing").expect("marketing mailbox").addr;
    let mut at = week_start().plus(2 * DAY).at(10 * HOUR);
    week.login(at.plus(-3), "SMTP", marketing, OFFICE_IP);
    for _ in 0..800 / PER_MESSAGE {
        let mut msg = Message::submitted(at, Channel::Smtp(OFFICE_IP), marketing, marketing);
        msg.size = rng.between(38_000, 42_000) as u32;
        msg.subject = Subject {
            prefix: "",
            text: vocab::NEWSLETTER_SUBJECT,
        };
        msg.msg_id = msg_id(rng, MsgIdStyle::Uuid, DOMAIN);
        for k in 0..PER_MESSAGE {
            let domain = correspondent_domain(rng);
            let rcpt = someone_at(rng, domain.name);
            msg.relay(rng, rcpt, domain.mx, 1 + k / 2, 15);
        }
        week.messages.push(msg);
        at = at.plus(rng.between(3, 8));
    }
}

/// Tuesday morning: k.dvorak mistypes the webmail password four times, then
/// gets it right (the login at his arrival).
fn mistyped_password<'a>(week: &mut Week<'a>, org: &Org<'a>, rng: &mut Rng) {
    let dvorak = org.find("k.dvorak").expect("k.dvorak").addr;
    let tuesday = week_start().plus(DAY);
    let &(_, arrive) = week
        .arrivals
        .iter()
        .find(|(who, at)| *who == dvorak && at.midnight() == tuesday)
        .expect("k.dvorak works on Tuesday");
    let mut at = arrive;
    for _ in 0..4 {
        at = at.plus(-rng.between(8, 40));
        week.security(
            at,
            Line::InvalidPassword {
                proto: "HTTP/WebMail",
                user: dvorak,
                ip: OFFICE_IP,
            },
        );
    }
}

/// Monday afternoon: ~200 SMTP logins over role names from one address.
/// Kerio's AntiHammering (10 failures within 60 s) blocks it for 5 minutes
/// at a time; the sprayer keeps knocking, then resumes.
fn password_spray<'a>(week: &mut Week<'a>, org: &Org<'a>, rng: &mut Rng) {
    let ip = SPRAY_IP;
    let mut at = week_start().at(14 * HOUR + rng.between(5 * MINUTE, 10 * MINUTE));
    let mut window: Vec<Wall> = Vec::new();
    for attempt in 0..200 {
        let name = vocab::ROLE_NAMES[attempt % vocab::ROLE_NAMES.len()];
        let user = Addr::new(name, DOMAIN);
        if org.find(name).is_none() {
            week.security(at, Line::SmtpUnknownUser { user, ip });
        }
        week.security(at, Line::FailedSmtpLogin { ip });
        window.retain(|t| at.0 - t.0 < MINUTE);
        window.push(at);
        if window.len() >= 10 {
            window.clear();
            week.security(at, Line::AntiHammeringBlock { ip });
            for _ in 0..rng.between(1, 3) {
                week.security(
                    at.plus(rng.between(20, 290)),
                    Line::AntiHammeringRefused { ip },
                );
            }
            at = at.plus(5 * MINUTE + rng.between(1, 20));
        } else {
            at = at.plus(rng.between(2, 5));
        }
    }
}

/// All week: 40 addresses of one /24 each try one or two IMAP logins an
/// hour while online (bots come and go in shifts of a few hours), working
/// through ~300 user names — too slow for AntiHammering, only visible when
/// the network is looked at as a whole.
fn distributed_guessing<'a>(week: &mut Week<'a>, org: &Org<'a>, rng: &mut Rng) {
    let mut octets: Vec<u8> = (2..=254).collect();
    rng.shuffle(&mut octets);
    octets.truncate(40);
    let names = guessed_names(org);
    let mut next_name = 0;
    for &octet in &octets {
        let ip = [BOTNET_NET[0], BOTNET_NET[1], BOTNET_NET[2], octet];
        let mut hour = rng.between(0, 12);
        let mut online_until = hour + rng.between(3, 8);
        while hour < 7 * 24 {
            if hour == online_until {
                hour += rng.between(6, 16);
                online_until = hour + rng.between(3, 8);
                continue;
            }
            let start = week_start().plus(hour * HOUR);
            for _ in 0..rng.between(1, 2) {
                let at = start.plus(rng.between(0, HOUR - 1));
                let user = names[next_name % names.len()];
                next_name += 1;
                let service = "IMAP";
                let unknown = false;
                week.security(
                    at,
                    Line::FailedLogin {
                        service,
                        ip,
                        user,
                        unknown,
                    },
                );
            }
            hour += 1;
        }
    }
}

/// The botnet's user list: role names, first names, `first.last` guesses
/// and the staff logins it harvested from the web site — 300 in all.
fn guessed_names<'a>(org: &Org<'a>) -> Vec<Addr<'a>> {
    let mut names: Vec<Addr<'a>> = vocab::ROLE_NAMES
        .iter()
        .map(|n| Addr::new(n, DOMAIN))
        .collect();
    names.extend(vocab::FIRST_NAMES.iter().map(|n| Addr::new(n, DOMAIN)));
    names.extend(org.people.iter().filter(|p| p.daily > 5).map(|p| p.addr));
    let mut i = 0;
    while names.len() < 300 {
        let first = vocab::FIRST_NAMES[i % vocab::FIRST_NAMES.len()];
        let last = vocab::SURNAMES[(i * 7) % vocab::SURNAMES.len()];
        names.push(Addr::composed(first, ".", last, DOMAIN));
        i += 1;
    }
    names
}

/// The user's story. Wednesday from ~21:00, about 30 SMTP logins fail from
/// 173.16.65.213, spaced to stay under AntiHammering; one succeeds and the
/// attacker leaves. Thursday 02:13 the spam run starts through `sales` and
/// lasts until 06:40, reconnecting (and logging in) every few dozen messages.
fn sales_hijack<'a>(week: &mut Week<'a>, org: &Org<'a>, rng: &mut Rng) {
    let sales = org.find("sales").expect("sales mailbox").addr;
    let wednesday = week_start().plus(2 * DAY);
    let mut at = wednesday.at(21 * HOUR + rng.between(0, 6 * MINUTE));
    for _ in 0..30 {
        week.security(at, Line::FailedSmtpLogin { ip: SPAMMER_IP });
        at = at.plus(rng.between(MINUTE, 5 * MINUTE));
    }
    week.login(at, "SMTP", sales, SPAMMER_IP);

    let thursday = wednesday.plus(DAY);
    let start = thursday.at(2 * HOUR + 13 * MINUTE + rng.between(0, 59));
    let mut run = SpamRun::new(sales, start, thursday.at(6 * HOUR + 40 * MINUTE));
    while let Some(spam) = run.next(rng) {
        if spam.new_session {
            week.login(spam.msg.at.plus(-1), "SMTP", sales, SPAMMER_IP);
        }
        week.messages.push(spam.msg);
    }
}

/// Lines a parser meets in any real security.log, and one inbound message
/// whose subject tries to inject a terminal escape and HTML into reports.
fn noise<'a>(week: &mut Week<'a>, org: &Org<'a>, rng: &mut Rng) {
    let any_time = |rng: &mut Rng| week_start().plus(rng.between(0, 7 * DAY - 1));
    // Public address blocks only: a random first octet could be 127 or 172.16.
    let outsider = |rng: &mut Rng| -> Ip {
        [
            rng.pick(&[45, 62, 77, 91, 103, 109, 176, 193, 212]),
            rng.below(256) as u8,
            rng.below(256) as u8,
            rng.between(1, 254) as u8,
        ]
    };

    for _ in 0..3 {
        let (at, ip) = (any_time(rng), outsider(rng));
        let from = Addr::new("promo", "bulk-offers.example");
        let to = Addr::composed(
            rng.pick(vocab::US_FIRST_NAMES),
            "",
            "",
            rng.pick(vocab::SPAM_TARGETS).name,
        );
        week.security(at, Line::RelayAttempt { ip, from, to });
    }
    for _ in 0..5 {
        let (at, ip) = (any_time(rng), [185, 140, 108, rng.between(2, 254) as u8]);
        let list = rng.pick(vocab::BLACKLISTS);
        let from = Addr::new("offers", "cheap-pharma.example");
        let to = rng.pick(&org.people).addr;
        week.security(at, Line::DnsBlacklist { ip, list, from, to });
    }
    for local in ["advertise", "ceo", "jobs", "accounting"] {
        let (at, ip) = (any_time(rng), outsider(rng));
        let from = Addr::new("mailer", "leadgen.example");
        week.security(
            at,
            Line::UnknownRecipient {
                rcpt: Addr::new(local, DOMAIN),
                from,
                ip,
            },
        );
    }
    week.security(any_time(rng), Line::SpamAttack { ip: outsider(rng) });

    let info = org.find("info").expect("info mailbox").addr;
    let at = week_start().plus(3 * DAY).at(14 * HOUR + 22 * MINUTE + 7);
    let from = Addr::new("security-alert", "mailbox-verify.example");
    let mut msg = Message::incoming(at, from, [91, 215, 85, 43], false);
    msg.size = 4_711;
    msg.subject = Subject {
        prefix: "",
        text: "\x1b[31mURGENT\x1b[0m: mailbox full <script>alert(1)</script>",
    };
    msg.msg_id = msg_id(rng, MsgIdStyle::Uuid, from.domain);
    msg.deliver_locally(rng, info);
    week.messages.push(msg);
}
