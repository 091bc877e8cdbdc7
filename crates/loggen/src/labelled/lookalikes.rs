//! Look-alikes: legitimate behaviour that shares a signal with a hijack
//! (volume after silence, a foreign From, failed logins, new addresses).
//! None of them may ever be called a `compromised_account`.

use crate::clock::{Wall, DAY, HOUR, MINUTE};
use crate::kerio::{Addr, Ip, MsgIdStyle};
use crate::rng::Rng;
use crate::traffic::{Channel, MailClient, Person};
use crate::vocab;

use super::labels::{account, ipv4, Class, Kind, Scenario};
use super::mailing::Mailing;
use super::org::{Member, Role, Trip, REGIONS, WORLD};
use super::timeline::Access;
use super::Plan;

/// A look-alike's label: `user` behaving unusually from `ips` over
/// `span`; figures beyond these are set by the caller.
fn label(
    plan: &Plan,
    kind: Kind,
    user: Addr<'static>,
    ips: &[Ip],
    span: (Wall, Wall),
    summary: String,
) -> Scenario {
    Scenario {
        kind,
        class: Class::Lookalike,
        accounts: vec![account(user)],
        ips: ips.iter().map(|&ip| ipv4(ip)).collect(),
        guess_ips: Vec::new(),
        start: plan.utc(span.0),
        end: plan.utc(span.1),
        spam: Vec::new(),
        failed_logins: 0,
        messages: 0,
        summary,
    }
}

/// Ordinary staff who are at work.
fn working(person: &Person<'static>, member: &Member) -> bool {
    member.role == Role::Staff && person.daily > 0
}

/// Legitimate bulk mail: real correspondents, few refused.
fn clean(user: Addr<'static>, subjects: &'static [&'static str], fail_permille: u64) -> Mailing {
    Mailing {
        user,
        from: user,
        subjects,
        recipients: (1, 3),
        contacts: 100,
        fail_permille,
        size: (8_000, 60_000),
        style: MsgIdStyle::Uuid,
    }
}

/// The marketing mailbox — silent for at least three days — mails the
/// newsletter from the office: 200–1,500 recipients in batches, its own
/// From, under 2 % refused.
pub(crate) fn newsletter(plan: &mut Plan, rng: &mut Rng) -> Option<Scenario> {
    let i = plan.cast(rng, |_, m| m.role == Role::Marketing)?;
    let user = plan.org.mail.people[i].addr;
    let office = plan.org.members[i].office;
    let day = plan.workday(rng, i, (3, 6))?;
    let per_message = if rng.percent(70) { 10 } else { 1 };
    let recipients = rng.between(200, 1_500);
    let mailing = Mailing {
        recipients: (per_message, per_message),
        size: (30_000, 45_000),
        ..clean(
            user,
            &[vocab::NEWSLETTER_SUBJECT],
            rng.between(4, 18) as u64,
        )
    };
    let first = day.at(rng.between(9 * HOUR, 15 * HOUR));
    let mut at = first;
    let messages = (recipients + per_message - 1) / per_message;
    for _ in 0..messages {
        let msg = mailing.message(rng, at, Channel::Smtp(office));
        plan.timeline.message(msg);
        at = at.plus(rng.between(2, 8));
    }
    let mut scenario = label(
        plan,
        Kind::Newsletter,
        user,
        &[office],
        (first, at),
        format!(
            "the newsletter to about {recipients} recipients in {messages} messages from \
                 the office after days of silence"
        ),
    );
    scenario.messages = messages as u64;
    Some(scenario)
}

/// Login names of applications that send mail.
const APPLICATIONS: &[&str] = &["invoices", "eshop", "erp", "notify", "webshop"];

/// An application account (the shop, billing) logs in and sends every day
/// of the week with a From of the company's second domain, from the office
/// or a hosting provider; 20–150 a working day, few refused.
pub(crate) fn application(plan: &mut Plan, rng: &mut Rng) -> Option<Scenario> {
    let domain = plan.org.mail.domain;
    let name = rng.pick(APPLICATIONS);
    let user = Addr::new(name, domain);
    let from = Addr::new(rng.pick(vocab::SHOP_SENDERS), rng.pick(vocab::SHOP_DOMAINS));
    let server = if rng.percent(50) {
        plan.org.mail.office_ip
    } else {
        plan.org.ips.fresh(rng, WORLD)
    };
    let person = Person {
        addr: user,
        client: MailClient::Desktop,
        daily: 0,
        home: None,
        phone: None,
        forward_to: None,
    };
    let member = Member {
        role: Role::Application { from, server },
        office: server,
        carrier: None,
        churn: 0,
        poll_minutes: (60, 120),
        phone_sends: 0,
        days_off: 0,
        trip: None,
    };
    let i = plan.org.add(person, member);
    plan.mark(i);
    let mailing = Mailing {
        from,
        recipients: (1, 1),
        size: (25_000, 90_000),
        ..clean(user, vocab::SHOP_SUBJECTS, rng.between(10, 25) as u64)
    };
    let daily = rng.between(20, 150);
    let mut messages = 0;
    let (first, mut last) = (plan.org.start, plan.org.start);
    for d in 0..super::org::WEEK_DAYS {
        let date = plan.org.day(d);
        let count = if date.weekday().is_weekend() {
            daily / 3
        } else {
            daily
        };
        for _ in 0..rng.jitter(count as u64, 70, 130) {
            // Orders come in all day, most in the daytime.
            let hour = if rng.percent(80) {
                rng.between(7, 20)
            } else {
                rng.between(0, 23)
            };
            let at = date.at(hour * HOUR + rng.between(0, HOUR - 1));
            plan.timeline
                .message(mailing.message(rng, at, Channel::Smtp(server)));
            messages += 1;
            last = last.max(at);
        }
    }
    let mut scenario = label(
        plan,
        Kind::ApplicationAccount,
        user,
        &[server],
        (first, last),
        format!("{messages} messages over the week with From {from}, about {daily} a working day"),
    );
    scenario.messages = messages;
    Some(scenario)
}

/// A user mistypes the password three to six times at the office in the
/// morning, then logs in; colleagues send from the same address all day.
pub(crate) fn mistyped(plan: &mut Plan, rng: &mut Rng) -> Option<Scenario> {
    let i = plan.cast(rng, working)?;
    let (person, member) = plan.org.member(i);
    let (user, office, client) = (person.addr, member.office, person.client);
    let day = plan.workday(rng, i, (0, 5))?;
    let access = match client {
        MailClient::Desktop => rng.pick(&[Access::Imap, Access::Smtp]),
        other => Access::of(other),
    };
    let first = day.at(rng.between(7 * HOUR + 30 * MINUTE, 9 * HOUR + 30 * MINUTE));
    let tries = rng.between(3, 6);
    let mut at = first;
    for _ in 0..tries {
        plan.timeline.failure(at, access, user, office, false);
        at = at.plus(rng.between(5, 40));
    }
    plan.timeline.login(at, access, user, office);
    let mut scenario = label(
        plan,
        Kind::MistypedPassword,
        user,
        &[office],
        (first, at),
        format!("{tries} mistyped passwords from the office address, then a login"),
    );
    scenario.failed_logins = tries as u64;
    Some(scenario)
}

/// A user travels abroad for two to four days and reads and sends mail as
/// usual from the hotel's address.
pub(crate) fn traveller(plan: &mut Plan, rng: &mut Rng) -> Option<Scenario> {
    let i = plan.cast(rng, |p, m| working(p, m) && m.days_off == 0)?;
    let home_region = plan.org.region.name;
    let abroad: Vec<_> = REGIONS.iter().filter(|r| r.name != home_region).collect();
    let region = abroad[rng.below(abroad.len() as u64) as usize];
    let ip = plan.org.ips.fresh(rng, region.broadband);
    let from = plan.org.day(rng.between(1, 3));
    let until = from.plus(rng.between(2, 4) * DAY);
    plan.org.members[i].trip = Some(Trip { from, until, ip });
    let user = plan.org.mail.people[i].addr;
    Some(label(
        plan,
        Kind::Traveller,
        user,
        &[ip],
        (from, until),
        format!(
            "{} days in {} reading and sending the usual mail from a hotel",
            (until.0 - from.0) / DAY,
            region.name
        ),
    ))
}

/// A user whose phone gets a new carrier address at every poll (every
/// 15–45 minutes) and who sends from the phone every day.
pub(crate) fn mobile(plan: &mut Plan, rng: &mut Rng) -> Option<Scenario> {
    let i = plan.cast(rng, working)?;
    let carriers = plan.org.region.carriers;
    let member = &mut plan.org.members[i];
    member.carrier = Some(member.carrier.unwrap_or_else(|| rng.pick(carriers)));
    member.churn = 100;
    member.poll_minutes = (15, 45);
    member.phone_sends = 100;
    let user = plan.org.mail.people[i].addr;
    let span = (plan.org.start, plan.org.end());
    Some(label(
        plan,
        Kind::MobileCarrier,
        user,
        &[],
        span,
        "a phone on a new carrier address at every poll, sending every day".into(),
    ))
}

/// At the quarter's end a user sends 100–400 statements to real
/// correspondents in a few hours from the office, with the usual mail
/// program; under 1.5 % refused.
pub(crate) fn quarter_end(plan: &mut Plan, rng: &mut Rng) -> Option<Scenario> {
    let i = plan.cast(rng, working)?;
    let (person, member) = plan.org.member(i);
    let (user, office, client) = (person.addr, member.office, person.client);
    let day = plan.workday(rng, i, (1, 5))?;
    let mailing = clean(user, vocab::STATEMENT_SUBJECTS, rng.between(5, 15) as u64);
    let count = rng.between(100, 400);
    let first = day.at(rng.between(9 * HOUR, 13 * HOUR));
    let gap = rng.between(2 * HOUR, 6 * HOUR) / count;
    let mut at = first;
    let mut next_login = first;
    for _ in 0..count {
        if client != MailClient::Desktop && at >= next_login {
            plan.timeline.login(
                at.plus(-rng.between(5, 60)),
                Access::of(client),
                user,
                office,
            );
            next_login = at.plus(25 * MINUTE);
        }
        let msg = mailing.message(rng, at, client.channel(office));
        plan.timeline.message(msg);
        at = at.plus(rng.between(gap / 2, gap * 3 / 2 + 1));
    }
    let mut scenario = label(
        plan,
        Kind::QuarterEnd,
        user,
        &[office],
        (first, at),
        format!("{count} statements to customers in an afternoon from the office"),
    );
    scenario.messages = count as u64;
    Some(scenario)
}

/// An old laptop with a stale password tries IMAP, POP3 and SMTP every few
/// minutes for hours or days from the user's home (or the office), while
/// the user's working devices log in from the same address.
pub(crate) fn stale_password(plan: &mut Plan, rng: &mut Rng) -> Option<Scenario> {
    let i = plan.cast(rng, working)?;
    let (person, member) = plan.org.member(i);
    let user = person.addr;
    let ip = person.home.unwrap_or(member.office);
    let first = plan
        .org
        .day(rng.between(0, 4))
        .at(rng.between(0, 23 * HOUR));
    let end = first
        .plus(rng.between(6 * HOUR, 72 * HOUR))
        .min(plan.org.end().plus(-HOUR));
    let protocols = [Access::Imap, Access::Pop3, Access::Smtp];
    let every = (rng.between(2, 10), rng.between(30, 90));
    let mut at = first;
    let mut next_login = first;
    let mut failures = 0;
    while at < end {
        for access in protocols {
            if rng.percent(80) {
                plan.timeline.failure(at, access, user, ip, false);
                failures += 1;
            }
            at = at.plus(rng.between(1, 5));
        }
        if at >= next_login {
            plan.timeline
                .login(at.plus(rng.between(10, 90)), Access::Imap, user, ip);
            next_login = at.plus(every.1 * MINUTE);
        }
        at = at.plus(rng.between(every.0 * MINUTE / 2, every.0 * MINUTE * 3 / 2));
    }
    let mut scenario = label(
        plan,
        Kind::StalePassword,
        user,
        &[ip],
        (first, at),
        format!(
            "{failures} failed IMAP/POP3/SMTP logins every ~{} minutes over {} hours, with \
                 working logins from the same address",
            every.0,
            (at.0 - first.0) / HOUR
        ),
    );
    scenario.failed_logins = failures;
    Some(scenario)
}
