//! Hijacks: someone else sending mail as an account. Each kind is what
//! admins meet (issue #13), with its numbers drawn from the seed.

use crate::bench::Connection;
use crate::clock::{Wall, DAY, HOUR, MINUTE};
use crate::kerio::{Addr, Ip, MsgIdStyle};
use crate::rng::Rng;
use crate::traffic::{Channel, MailClient};
use crate::vocab;

use super::labels::{account, ipv4, Class, Kind, Scenario};
use super::mailing::{Mailing, Sessions, Spree};
use super::org::{Role, WORLD};
use super::timeline::Access;
use super::Plan;

/// The label of a spree through `victim`.
fn label(
    plan: &Plan,
    kind: Kind,
    victim: Addr<'static>,
    spree: Spree,
    summary: String,
) -> Option<Scenario> {
    let (first, last) = spree.span?;
    let mut spam = spree.spam;
    spam.sort_unstable();
    Some(Scenario {
        kind,
        class: Class::Hijack,
        accounts: vec![account(victim)],
        ips: spree.ips.iter().map(|&ip| ipv4(ip)).collect(),
        guess_ips: Vec::new(),
        start: plan.utc(first),
        end: plan.utc(last),
        messages: spam.len() as u64,
        spam,
        failed_logins: 0,
        summary,
    })
}

/// A forged sender for a run.
fn forged(rng: &mut Rng) -> Addr<'static> {
    let (local, domain) = rng.pick(vocab::FORGED_SENDERS);
    Addr::new(local, domain)
}

/// A spam run's messages: forged From, harvested list, many bounces.
fn spam(user: Addr<'static>, from: Addr<'static>, fail_permille: u64) -> Mailing {
    Mailing {
        user,
        from,
        subjects: vocab::SPAM_SUBJECTS,
        recipients: (1, 3),
        contacts: 5,
        fail_permille,
        size: (1_900, 6_500),
        style: MsgIdStyle::Uuid,
    }
}

/// A phishing wave from a victim's mailbox: the victim's own From, mostly
/// to real correspondents.
fn phishing(user: Addr<'static>, recipients: (i64, i64), fail_permille: u64) -> Mailing {
    Mailing {
        user,
        from: user,
        subjects: vocab::PHISH_SUBJECTS,
        recipients,
        contacts: 70,
        fail_permille,
        size: (3_000, 40_000),
        style: MsgIdStyle::Outlook,
    }
}

/// A time on one of the week's days `days`, between `hours` (local).
fn some_time(plan: &Plan, rng: &mut Rng, days: (i64, i64), hours: (i64, i64)) -> Wall {
    let day = plan.org.day(rng.between(days.0, days.1));
    day.at(rng.between(hours.0 * HOUR, hours.1 * HOUR - 1))
}

/// A forward-only role account (never logged in, never sent) has its
/// password guessed over SMTP from one to three addresses, spaced to stay
/// under Kerio's AntiHammering; one guess works. Hours later, often at
/// night, a spam run with a forged From to a harvested list (35–65 %
/// bounces) goes out through it, from the guesser's address and maybe a
/// second one.
pub(crate) fn guessed_role(plan: &mut Plan, rng: &mut Rng) -> Option<Scenario> {
    let i = plan.cast(rng, |_, m| m.role == Role::Forwarder)?;
    let victim = plan.org.mail.people[i].addr;
    let guessers: Vec<Ip> = (0..rng.between(1, 3))
        .map(|_| plan.org.ips.fresh(rng, WORLD))
        .collect();
    let mut at = some_time(plan, rng, (1, 4), (0, 24));
    let tries = rng.between(15, 60) as usize;
    let domain = plan.org.mail.domain;
    for k in 0..tries {
        let ip = guessers[k % guessers.len()];
        if rng.percent(75) {
            plan.timeline.failure(at, Access::Smtp, victim, ip, false);
        } else {
            let name = rng.pick(vocab::ROLE_NAMES);
            let user = Addr::new(name, domain);
            let unknown = !plan.org.mail.people.iter().any(|p| p.addr == user);
            plan.timeline.failure(at, Access::Smtp, user, ip, unknown);
        }
        at = at.plus(rng.between(MINUTE, 6 * MINUTE));
    }
    let senders = if rng.percent(40) {
        vec![guessers[0], plan.org.ips.fresh(rng, WORLD)]
    } else {
        vec![guessers[0]]
    };
    plan.timeline.login(at, Access::Smtp, victim, guessers[0]);
    let begin = if rng.percent(60) {
        at.plus(DAY)
            .midnight()
            .at(rng.between(30 * MINUTE, 4 * HOUR + 30 * MINUTE))
    } else {
        at.plus(rng.between(HOUR, 6 * HOUR))
    };
    let end = begin.plus(rng.between(HOUR, 5 * HOUR));
    let fail = rng.between(350, 650) as u64;
    let mailing = spam(victim, forged(rng), fail);
    let mut spree = Spree::default();
    let mut sessions = Sessions::new(20, 60);
    let mut ip = senders[0];
    let mut at = begin;
    while at < end {
        let connection = sessions.next(rng, false);
        if connection.opens {
            ip = rng.pick(&senders);
        }
        if !spree.send(plan, rng, &mailing, (at, ip, Channel::Smtp(ip)), connection) {
            break;
        }
        at = at.plus(rng.between(2, 12));
    }
    let summary = format!(
        "{} failed SMTP logins from {} address(es), then {} spam messages with a forged From \
         from {} address(es), {}% of recipients refused",
        tries,
        guessers.len(),
        spree.len(),
        spree.ips.len(),
        fail / 10
    );
    let mut scenario = label(plan, Kind::GuessedRole, victim, spree, summary)?;
    scenario.guess_ips = guessers.iter().map(|&ip| ipv4(ip)).collect();
    scenario.failed_logins = tries as u64;
    Some(scenario)
}

/// A phished user's password used from a new address abroad: 80–600
/// messages with the user's own From to contacts and a list, about 12 %
/// refused, over a few hours, while the user goes on working.
pub(crate) fn phished_own_from(plan: &mut Plan, rng: &mut Rng) -> Option<Scenario> {
    let i = plan.cast(rng, |p, m| m.role == Role::Staff && p.daily > 0)?;
    let victim = plan.org.mail.people[i].addr;
    let ip = plan.org.ips.fresh(rng, WORLD);
    let count = rng.between(80, 600);
    let fail = rng.between(80, 160) as u64;
    let mailing = phishing(victim, (1, 8), fail);
    let mut at = some_time(plan, rng, (1, 5), (0, 24));
    let mut spree = Spree::default();
    let mut sessions = Sessions::new(5, 30);
    for n in 0..count {
        let connection = sessions.next(rng, n + 1 == count);
        if !spree.send(plan, rng, &mailing, (at, ip, Channel::Smtp(ip)), connection) {
            break;
        }
        at = at.plus(rng.between(10, 90));
    }
    let summary = format!(
        "{} messages with the user's own From from a new address abroad, {}% of recipients refused",
        spree.len(),
        fail / 10
    );
    label(plan, Kind::PhishedOwnFrom, victim, spree, summary)
}

/// Two to six hours after the log starts — the account has hardly any
/// history — about 40 messages within a minute from a new address, ~46 %
/// of recipients refused; sometimes a second burst hours later.
pub(crate) fn short_history(plan: &mut Plan, rng: &mut Rng) -> Option<Scenario> {
    let i = plan.cast(rng, |p, m| {
        m.role == Role::Staff && p.daily > 0 && m.days_off & 1 == 0
    })?;
    let victim = plan.org.mail.people[i].addr;
    let from = if rng.percent(70) { victim } else { forged(rng) };
    let fail = rng.between(400, 520) as u64;
    let mailing = Mailing {
        recipients: (1, 1),
        ..spam(victim, from, fail)
    };
    let mut ip = plan.org.ips.fresh(rng, WORLD);
    let mut at = plan.org.start.plus(rng.between(2 * HOUR, 6 * HOUR));
    let mut spree = Spree::default();
    let bursts = if rng.percent(40) { 2 } else { 1 };
    for burst in 0..bursts {
        if burst > 0 {
            at = at.plus(rng.between(HOUR, 6 * HOUR));
            if rng.percent(50) {
                ip = plan.org.ips.fresh(rng, WORLD);
            }
        }
        let count = rng.between(35, 45);
        at = spree.burst(plan, rng, &mailing, (at, ip), count, (1, 2));
    }
    let summary = format!(
        "{} burst(s) of about 40 messages in a minute, {} in all, {}% refused, from {} new \
         address(es) a few hours after the log starts",
        bursts,
        spree.len(),
        fail / 10,
        spree.ips.len()
    );
    label(plan, Kind::ShortHistory, victim, spree, summary)
}

/// Spam through 30–200 rotating proxies over one to three days: each logs
/// in, sends a handful, and is not seen again.
pub(crate) fn proxies(plan: &mut Plan, rng: &mut Rng) -> Option<Scenario> {
    let i = plan.cast(rng, |p, m| {
        matches!(m.role, Role::Staff | Role::Inbox) && p.daily > 0
    })?;
    let victim = plan.org.mail.people[i].addr;
    let from = if rng.percent(50) { victim } else { forged(rng) };
    let fail = rng.between(150, 350) as u64;
    let mailing = Mailing {
        recipients: (1, 5),
        contacts: 30,
        ..spam(victim, from, fail)
    };
    let begin = some_time(plan, rng, (1, 4), (0, 24));
    let span = rng.between(DAY, 3 * DAY);
    let proxies = rng.between(30, 200);
    let mut spree = Spree::default();
    for _ in 0..proxies {
        let ip = plan.org.ips.fresh(rng, WORLD);
        let at = begin.plus(rng.between(0, span));
        let count = rng.between(1, 6);
        spree.burst(plan, rng, &mailing, (at, ip), count, (20, 4 * MINUTE));
    }
    let summary = format!(
        "{} messages through {} proxies, a handful each, over {} hours, {}% refused",
        spree.len(),
        spree.ips.len(),
        span / HOUR,
        fail / 10
    );
    label(plan, Kind::ProxiesLowAndSlow, victim, spree, summary)
}

/// Malware on a user's office computer sends spam as the user through the
/// office's own address — the account's usual address — from a working
/// day into the night, while the user's own mail goes on beside it.
pub(crate) fn infected_pc(plan: &mut Plan, rng: &mut Rng) -> Option<Scenario> {
    let i = plan.cast(rng, |p, m| {
        m.role == Role::Staff && p.daily > 0 && p.client == MailClient::Desktop
    })?;
    let (victim, office) = (plan.org.mail.people[i].addr, plan.org.members[i].office);
    let day = plan.workday(rng, i, (1, 5))?;
    let varied_from = rng.percent(40);
    let own = rng.percent(40);
    let from = if own { victim } else { forged(rng) };
    let fail = rng.between(250, 550) as u64;
    let mut mailing = spam(victim, from, fail);
    let mut at = day.at(rng.between(10 * HOUR, 16 * HOUR));
    let end = at.plus(rng.between(2 * HOUR, 10 * HOUR));
    let mut spree = Spree::default();
    let mut sessions = Sessions::new(10, 50);
    while at < end {
        if varied_from && !own {
            mailing.from = forged(rng);
        }
        let connection = sessions.next(rng, false);
        if !spree.send(
            plan,
            rng,
            &mailing,
            (at, office, Channel::Smtp(office)),
            connection,
        ) {
            break;
        }
        at = at.plus(rng.between(5, 40));
    }
    let summary = format!(
        "{} spam messages from the office's usual address, {} From, {}% refused",
        spree.len(),
        if own { "the user's own" } else { "forged" },
        fail / 10
    );
    label(plan, Kind::InfectedPc, victim, spree, summary)
}

/// A phished user's webmail: the attacker logs in from abroad and sends
/// 30–250 messages of 5–10 recipients each with the user's own From (Kerio
/// 9/10 logs them from `0.0.0.0`, Postfix from the webmail's 127.0.0.1),
/// logging in again now and then; the user may be in webmail too.
pub(crate) fn webmail_phish(plan: &mut Plan, rng: &mut Rng) -> Option<Scenario> {
    let prefer_webmail = rng.percent(50);
    let i = plan.cast(rng, |p, m| {
        m.role == Role::Staff && p.daily > 0 && (!prefer_webmail || p.client == MailClient::Webmail)
    })?;
    let victim = plan.org.mail.people[i].addr;
    let ip = plan.org.ips.fresh(rng, WORLD);
    let fail = rng.between(150, 350) as u64;
    let mailing = Mailing {
        style: MsgIdStyle::Kerio,
        ..phishing(victim, (5, 10), fail)
    };
    let mut at = some_time(plan, rng, (1, 5), (0, 24));
    let count = rng.between(30, 250);
    let mut next_login = at;
    let mut spree = Spree::default();
    for _ in 0..count {
        if at >= next_login {
            let login = at.plus(-rng.between(20, 200));
            plan.timeline.login(login, Access::Webmail, victim, ip);
            next_login = at.plus(rng.between(45 * MINUTE, 90 * MINUTE));
        }
        let channel = Channel::Webmail(ip);
        if !spree.send(plan, rng, &mailing, (at, ip, channel), Connection::OWN) {
            break;
        }
        at = at.plus(rng.between(20, 120));
    }
    let summary = format!(
        "{} webmail messages of 5-10 recipients with the user's own From after a webmail login \
         from abroad, {}% refused",
        spree.len(),
        fail / 10
    );
    label(plan, Kind::WebmailPhish, victim, spree, summary)
}
