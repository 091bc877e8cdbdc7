//! Password guessing that must be reported: distributed brute force on one
//! account, credential stuffing, a one-hour campaign and a classic spray.
//! None of the guesses works (a guess that works is a hijack's story).

use crate::clock::{Wall, HOUR, MINUTE};
use crate::kerio::{Addr, Ip};
use crate::rng::Rng;
use crate::vocab;

use super::labels::{account, ipv4, Class, Kind, Scenario};
use super::org::{Role, WORLD};
use super::timeline::Access;
use super::Plan;

/// The refused logins of an attack as they are planned.
#[derive(Default)]
struct Guesses {
    ips: Vec<Ip>,
    attempts: u64,
    span: Option<(Wall, Wall)>,
}

impl Guesses {
    /// One refused login of `user` from `ip` at `at`, if within the week.
    fn guess(&mut self, plan: &mut Plan, at: Wall, access: Access, user: Addr<'static>, ip: Ip) {
        if at >= plan.org.end() {
            return;
        }
        let unknown = !plan.org.mail.people.iter().any(|p| p.addr == user);
        plan.timeline.failure(at, access, user, ip, unknown);
        self.attempts += 1;
        self.span = Some(match self.span {
            Some((first, last)) => (first.min(at), last.max(at)),
            None => (at, at),
        });
    }

    fn label(
        self,
        plan: &Plan,
        kind: Kind,
        accounts: Vec<String>,
        summary: String,
    ) -> Option<Scenario> {
        let (first, last) = self.span?;
        Some(Scenario {
            kind,
            class: Class::Attack,
            accounts,
            ips: self.ips.into_iter().map(ipv4).collect(),
            guess_ips: Vec::new(),
            start: plan.utc(first),
            end: plan.utc(last),
            spam: Vec::new(),
            failed_logins: self.attempts,
            messages: 0,
            summary,
        })
    }
}

/// How guessers log in: mostly SMTP `AUTH`, else IMAP or the webmail.
fn service(rng: &mut Rng) -> Access {
    match rng.below(100) {
        0..=59 => Access::Smtp,
        60..=84 => Access::Imap,
        _ => Access::Webmail,
    }
}

/// The start of an attack lasting `length`: any time of the week that
/// leaves room for it.
fn start(plan: &Plan, rng: &mut Rng, length: i64) -> Wall {
    let room = (plan.org.end().0 - plan.org.start.0 - length - HOUR).max(0);
    plan.org.start.plus(rng.between(0, room))
}

/// Login names of a guesser's list: role names, first names, and the
/// organisation's real addresses (harvested from its web site).
fn wordlist(plan: &Plan, rng: &mut Rng, size: usize) -> Vec<Addr<'static>> {
    let domain = plan.org.mail.domain;
    let mut names: Vec<Addr<'static>> = plan.org.mail.people.iter().map(|p| p.addr).collect();
    rng.shuffle(&mut names);
    names.truncate(size / 2);
    names.extend(vocab::ROLE_NAMES.iter().map(|n| Addr::new(n, domain)));
    let mut k = 0;
    while names.len() < size {
        let first = vocab::FIRST_NAMES[k % vocab::FIRST_NAMES.len()];
        let last = vocab::SURNAMES[(k * 7 + 3) % vocab::SURNAMES.len()];
        let name = match k / vocab::FIRST_NAMES.len() % 3 {
            0 => Addr::new(first, domain),
            1 => Addr::composed(first, ".", last, domain),
            _ => Addr::composed(&first[..1], ".", last, domain),
        };
        if !names.contains(&name) {
            names.push(name);
        }
        k += 1;
    }
    rng.shuffle(&mut names);
    names.truncate(size);
    names
}

/// One account guessed from 100–400 addresses of many networks, one to
/// three tries each, over 2–12 hours: too slow per address and per
/// network for a per-IP counter.
pub(crate) fn brute_force(plan: &mut Plan, rng: &mut Rng) -> Option<Scenario> {
    let i = plan.cast(rng, |_, m| {
        matches!(m.role, Role::Staff | Role::Inbox | Role::Forwarder)
    })?;
    let target = plan.org.mail.people[i].addr;
    let length = rng.between(2 * HOUR, 12 * HOUR);
    let begin = start(plan, rng, length);
    let access = service(rng);
    let mut guesses = Guesses::default();
    for _ in 0..rng.between(100, 400) {
        let ip = plan.org.ips.fresh(rng, WORLD);
        guesses.ips.push(ip);
        let mut at = begin.plus(rng.between(0, length));
        for _ in 0..rng.between(1, 3) {
            guesses.guess(plan, at, access, target, ip);
            at = at.plus(rng.between(20, 2 * MINUTE));
        }
    }
    let summary = format!(
        "{} {} logins to {target} from {} addresses over {} hours",
        guesses.attempts,
        access.kerio_service(),
        guesses.ips.len(),
        length / HOUR
    );
    guesses.label(plan, Kind::BruteForce, vec![account(target)], summary)
}

/// A leaked list tried against 100–250 accounts (real and not) from
/// 300–900 addresses worldwide over about a day: thousands of attempts,
/// each address trying each account once at most.
pub(crate) fn stuffing(plan: &mut Plan, rng: &mut Rng) -> Option<Scenario> {
    let size = rng.between(100, 250) as usize;
    let names = wordlist(plan, rng, size);
    let length = rng.between(18 * HOUR, 30 * HOUR);
    let begin = start(plan, rng, length);
    let access = if rng.percent(70) {
        Access::Smtp
    } else {
        Access::Imap
    };
    let mut guesses = Guesses {
        ips: (0..rng.between(300, 900))
            .map(|_| plan.org.ips.fresh(rng, WORLD))
            .collect(),
        ..Guesses::default()
    };
    let attempts = rng.between(2_000, 6_000) as usize;
    // Every address of the botnet tries at least once, some many times.
    let mut senders: Vec<usize> = (0..guesses.ips.len()).collect();
    while senders.len() < attempts {
        senders.push(rng.below(guesses.ips.len() as u64) as usize);
    }
    rng.shuffle(&mut senders);
    let mut times: Vec<Wall> = (0..attempts)
        .map(|_| begin.plus(rng.between(0, length)))
        .collect();
    times.sort_unstable();
    for (k, (at, sender)) in times.into_iter().zip(senders).enumerate() {
        let user = names[k % names.len()];
        guesses.guess(plan, at, access, user, guesses.ips[sender]);
    }
    let summary = format!(
        "{} {} logins over {} accounts from {} addresses in {} hours",
        guesses.attempts,
        access.kerio_service(),
        names.len(),
        guesses.ips.len(),
        length / HOUR
    );
    guesses.label(plan, Kind::CredentialStuffing, Vec::new(), summary)
}

/// About 150 addresses from a few hosting networks, ~7 tries each within
/// one hour, over role names and staff.
pub(crate) fn campaign(plan: &mut Plan, rng: &mut Rng) -> Option<Scenario> {
    let size = rng.between(30, 80) as usize;
    let names = wordlist(plan, rng, size);
    let begin = start(plan, rng, HOUR);
    let access = service(rng);
    let mut networks: Vec<[u8; 2]> = WORLD.to_vec();
    rng.shuffle(&mut networks);
    networks.truncate(rng.between(2, 5) as usize);
    let mut guesses = Guesses::default();
    let mut k = 0;
    for _ in 0..rng.between(120, 180) {
        let ip = plan.org.ips.fresh(rng, &networks);
        guesses.ips.push(ip);
        for _ in 0..rng.between(5, 9) {
            let at = begin.plus(rng.between(0, HOUR - 1));
            guesses.guess(plan, at, access, names[k % names.len()], ip);
            k += 1;
        }
    }
    let summary = format!(
        "{} {} logins from {} addresses in one hour",
        guesses.attempts,
        access.kerio_service(),
        guesses.ips.len()
    );
    guesses.label(plan, Kind::Campaign, Vec::new(), summary)
}

/// One address trying 100–400 logins over role names, first names and
/// staff, a few seconds apart (Kerio's AntiHammering blocks it now and
/// then).
pub(crate) fn spray(plan: &mut Plan, rng: &mut Rng) -> Option<Scenario> {
    let names = wordlist(plan, rng, 120);
    let access = if rng.percent(70) {
        Access::Smtp
    } else {
        Access::Imap
    };
    let ip = plan.org.ips.fresh(rng, WORLD);
    let attempts = rng.between(100, 400);
    let mut at = start(plan, rng, attempts * 6);
    let mut guesses = Guesses {
        ips: vec![ip],
        ..Guesses::default()
    };
    for k in 0..attempts as usize {
        guesses.guess(plan, at, access, names[k % names.len()], ip);
        at = at.plus(rng.between(2, 6));
    }
    let summary = format!(
        "{} {} logins from one address over {} names",
        guesses.attempts,
        access.kerio_service(),
        names.len()
    );
    guesses.label(plan, Kind::Spray, Vec::new(), summary)
}
