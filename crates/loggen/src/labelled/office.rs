//! Ordinary days: each person's phone polling from the carrier's changing
//! addresses, office days with the mail program of their habit (logins at
//! arrival, sessions renewed), evenings and weekends from home, trips
//! abroad, days off, and mail from outside. Generated one day at a time, so
//! a week of a large organisation never sits in memory.

use crate::clock::{Wall, Weekday, HOUR, MINUTE};
use crate::kerio::Ip;
use crate::rng::Rng;
use crate::traffic::{Channel, MailClient, Person};

use super::org::{Member, Organisation};
use super::timeline::{Access, Timeline};

/// A webmail or Outlook session lasts this long without activity.
const SESSION_IDLE: i64 = 30 * MINUTE;

/// Appends day `n`'s ordinary traffic to `out`.
pub fn day(org: &Organisation, n: i64, rng: &mut Rng, out: &mut Timeline<'static>) {
    let date = org.day(n);
    for i in 0..org.members.len() {
        let (person, member) = org.member(i);
        let phone = phone(person, member, date, rng, out);
        let on_leave = member.days_off & (1 << n) != 0;
        if person.daily == 0 || on_leave {
            continue;
        }
        let mut sends: Vec<(Wall, Ip)> = Vec::new();
        let trip = member
            .trip
            .filter(|t| t.from <= date.at(12 * HOUR) && date.at(12 * HOUR) < t.until);
        let mut workplace = None;
        if let Some(trip) = trip {
            let count = rng.jitter(u64::from(person.daily), 40, 100);
            for _ in 0..count {
                sends.push((date.at(rng.between(8 * HOUR, 21 * HOUR)), trip.ip));
            }
        } else if date.weekday().is_weekend() {
            if let Some(home) = person.home.filter(|_| rng.percent(30)) {
                for _ in 0..rng.between(1, 4) {
                    sends.push((date.at(rng.between(10 * HOUR, 21 * HOUR)), home));
                }
            }
        } else {
            let arrive = date.at(rng.between(7 * HOUR, 9 * HOUR + 30 * MINUTE));
            let leave = date.at(rng.between(16 * HOUR, 18 * HOUR + 30 * MINUTE));
            workplace = Some((arrive, leave, member.office));
            let most = if date.weekday() == Weekday::Fri {
                110
            } else {
                140
            };
            for _ in 0..rng.jitter(u64::from(person.daily), 60, most) {
                let at = arrive.plus(rng.between(5 * MINUTE, leave.0 - arrive.0));
                sends.push((at, member.office));
            }
            if let Some(home) = person.home.filter(|_| rng.percent(25)) {
                for _ in 0..rng.between(1, 3) {
                    let evening = rng.between(19 * HOUR, 22 * HOUR + 30 * MINUTE);
                    sends.push((date.at(evening), home));
                }
            }
        }
        if let Some(ip) = phone.filter(|_| rng.percent(member.phone_sends)) {
            for _ in 0..rng.between(1, 3) {
                sends.push((date.at(rng.between(7 * HOUR, 21 * HOUR)), ip));
            }
        }
        sends.sort_unstable();
        let mut sender = Sender {
            person,
            session: None,
            phone,
        };
        if let Some((arrive, leave, office)) = workplace {
            sender.office_logins(rng, out, arrive, leave, office);
        }
        for (at, ip) in sends {
            let msg_channel = sender.open(rng, out, at, ip);
            out.message(org.mail.outbound(rng, person, at, msg_channel));
        }
    }
    inbound(org, date, rng, out);
}

/// A person's phone checking mail all day over IMAP from its carrier's
/// addresses; the address it had last, for sending.
fn phone(
    person: &Person<'static>,
    member: &Member,
    date: Wall,
    rng: &mut Rng,
    out: &mut Timeline<'static>,
) -> Option<Ip> {
    let block = member.carrier?;
    let carrier_ip = |rng: &mut Rng| {
        [
            block[0],
            block[1],
            rng.below(256) as u8,
            rng.between(1, 254) as u8,
        ]
    };
    let mut ip = carrier_ip(rng);
    let (short, long) = member.poll_minutes;
    let mut at = date.at(rng.between(6 * HOUR + 30 * MINUTE, 8 * HOUR));
    while at < date.at(23 * HOUR) {
        if rng.percent(member.churn) {
            ip = carrier_ip(rng);
        }
        out.login(at, Access::Imap, person.addr, ip);
        at = at.plus(rng.between(short * MINUTE, long * MINUTE));
    }
    Some(ip)
}

/// One person's logins around the messages they send on a day.
struct Sender<'p> {
    person: &'p Person<'static>,
    /// The webmail or Outlook session: when it was last used, and where.
    session: Option<(Wall, Ip)>,
    /// The phone's address today: mail sent from it goes over SMTP.
    phone: Option<Ip>,
}

impl Sender<'_> {
    /// The mail program's logins over an office day: at arrival, and for
    /// desktop programs a new IMAP connection every hour or two.
    fn office_logins(
        &mut self,
        rng: &mut Rng,
        out: &mut Timeline<'static>,
        arrive: Wall,
        leave: Wall,
        office: Ip,
    ) {
        let access = Access::of(self.person.client);
        out.login(arrive, access, self.person.addr, office);
        match self.person.client {
            MailClient::Desktop => {
                let mut at = arrive.plus(rng.between(HOUR, 2 * HOUR));
                while at < leave {
                    out.login(at, access, self.person.addr, office);
                    at = at.plus(rng.between(HOUR, 2 * HOUR));
                }
            }
            MailClient::Webmail | MailClient::Outlook => self.session = Some((arrive, office)),
        }
    }

    /// Logs in if the program has to before sending at `at` from `ip`,
    /// and says how the message reaches the server.
    fn open(&mut self, rng: &mut Rng, out: &mut Timeline<'static>, at: Wall, ip: Ip) -> Channel {
        if self.phone == Some(ip) {
            return Channel::Smtp(ip);
        }
        let client = self.person.client;
        if client == MailClient::Desktop {
            return Channel::Smtp(ip);
        }
        let fresh = self
            .session
            .is_some_and(|(last, place)| place == ip && at.0 - last.0 <= SESSION_IDLE);
        if !fresh {
            let login = at.plus(-rng.between(20, 300));
            out.login(login, Access::of(client), self.person.addr, ip);
        }
        self.session = Some((at, ip));
        client.channel(ip)
    }
}

/// Mail from outside, in proportion to the organisation's own: office
/// hours mostly, automated mail at any time.
fn inbound(org: &Organisation, date: Wall, rng: &mut Rng, out: &mut Timeline<'static>) {
    for hour in 0..24 {
        let start = date.plus(hour * HOUR);
        for _ in 0..org.mail.hourly_volume(rng, start) / 4 {
            let at = start.plus(rng.between(0, HOUR - 1));
            out.message(org.mail.inbound(rng, at));
        }
    }
}
