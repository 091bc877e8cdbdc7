//! Labelled weeks: the benchmark of issue #13 point 6.
//!
//! A seed gives an organisation (15–300 mailboxes, a region and its time
//! zone, a week anywhere in the year) and its ordinary mail, and hides in
//! it several hijacks, several look-alikes (unusual but legitimate
//! behaviour that must not be called a hijack) and several password
//! guessing attacks, chosen and parametrised by the seed. The week is
//! written in one of three forms — Kerio 8, Kerio 9/10, Postfix with
//! Dovecot and Roundcube — with `labels.json`, the ground truth the
//! scorer ([`score`]) judges a `mailfuse scan` report against.
//!
//! * [`org`]: the organisation and its people's habits;
//! * [`office`]: ordinary days;
//! * [`hijacks`], [`lookalikes`], [`attacks`]: the scenarios, each planned
//!   into the [`timeline`] with its [`labels`];
//! * `forms`: the server's log lines for each form;
//! * [`score`] and [`judge`]: matching reports to labels, the table, the
//!   acceptance bar.
//!
//! `docs/benchmark.md` describes the scenarios and the scoring rules.

pub mod attacks;
mod forms;
pub mod hijacks;
pub mod judge;
pub mod labels;
pub mod lookalikes;
pub mod mailing;
pub mod office;
pub mod org;
pub mod score;
pub mod timeline;

use std::fmt;
use std::fs::{self, File};
use std::io::{self, BufWriter, Write};
use std::path::Path;
use std::str::FromStr;

use mailfuse_core::Timestamp;

use crate::clock::Wall;
use crate::rng::Rng;

use self::forms::Writer;
use self::labels::{Class, Kind, Labels, Scenario};
use self::org::{Member, Organisation, WEEK_DAYS};
use self::timeline::Timeline;
use crate::traffic::Person;

/// The server whose logs a week is written as.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Form {
    /// Kerio Connect 8: mail.log, security.log, audit.log; webmail
    /// submissions name the browser's address.
    Kerio8,
    /// Kerio Connect 9/10: webmail submissions are `Sender-Host: 0.0.0.0`,
    /// the address only in audit.log's webmail login.
    Kerio10,
    /// Postfix, Dovecot and Roundcube logging to one syslog file.
    Postfix,
}

impl Form {
    /// Every form, in table order.
    pub const ALL: [Form; 3] = [Form::Kerio8, Form::Kerio10, Form::Postfix];

    /// The name of `--form` and of the tables.
    pub fn name(self) -> &'static str {
        match self {
            Form::Kerio8 => "kerio8",
            Form::Kerio10 => "kerio10",
            Form::Postfix => "postfix",
        }
    }

    /// The log files a week of this form has.
    pub fn files(self) -> &'static [&'static str] {
        match self {
            Form::Kerio8 | Form::Kerio10 => &["mail.log", "security.log", "audit.log"],
            Form::Postfix => &["mail.log"],
        }
    }
}

impl fmt::Display for Form {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Form {
    type Err = String;

    fn from_str(text: &str) -> Result<Form, String> {
        Form::ALL
            .into_iter()
            .find(|form| form.name() == text)
            .ok_or_else(|| format!("unknown form {text:?}: expected kerio8, kerio10 or postfix"))
    }
}

/// The scenarios of a week while they are planned: the organisation
/// (whose habits look-alikes change), what happens, and the labels.
#[derive(Debug)]
pub struct Plan {
    /// The organisation; look-alikes may change its people's habits.
    pub org: Organisation,
    /// What the scenarios make happen.
    pub timeline: Timeline<'static>,
    /// The labels so far.
    pub scenarios: Vec<Scenario>,
    /// Mailboxes already given a part, so that no account is in two
    /// scenarios.
    cast: Vec<bool>,
}

impl Plan {
    /// An empty plan for `org`.
    pub fn new(org: Organisation) -> Plan {
        let cast = vec![false; org.members.len()];
        Plan {
            org,
            timeline: Timeline::default(),
            scenarios: Vec::new(),
            cast,
        }
    }

    /// Gives a part to a mailbox that has none yet and `fits`; `None` if
    /// there is none.
    pub fn cast(
        &mut self,
        rng: &mut Rng,
        fits: impl Fn(&Person<'static>, &Member) -> bool,
    ) -> Option<usize> {
        let free: Vec<usize> = (0..self.org.members.len())
            .filter(|&i| !self.cast.get(i).copied().unwrap_or(false))
            .filter(|&i| {
                let (person, member) = self.org.member(i);
                fits(person, member)
            })
            .collect();
        if free.is_empty() {
            return None;
        }
        let chosen = rng.pick(&free);
        self.mark(chosen);
        Some(chosen)
    }

    /// Notes that mailbox `i` has a part (for mailboxes a scenario adds).
    pub fn mark(&mut self, i: usize) {
        if self.cast.len() <= i {
            self.cast.resize(i + 1, false);
        }
        self.cast[i] = true;
    }

    /// Midnight of a working day among the week's days `days` (inclusive)
    /// on which mailbox `i` is not on leave; `None` if there is none.
    pub fn workday(&self, rng: &mut Rng, i: usize, days: (i64, i64)) -> Option<Wall> {
        let days_off = self.org.members[i].days_off;
        let workdays: Vec<i64> = (days.0..=days.1)
            .filter(|&d| days_off & (1 << d) == 0 && !self.org.day(d).weekday().is_weekend())
            .collect();
        (!workdays.is_empty()).then(|| self.org.day(rng.pick(&workdays)))
    }

    /// The UTC instant of a wall time on this server.
    pub fn utc(&self, at: Wall) -> Timestamp {
        at.utc(self.org.utc_offset)
    }

    /// Adds a scenario's label.
    pub fn label(&mut self, scenario: Scenario) {
        self.scenarios.push(scenario);
    }
}

/// How many scenarios of each class a week holds.
const HIJACKS: (i64, i64) = (2, 4);
const LOOKALIKES: (i64, i64) = (3, 5);
const ATTACKS: (i64, i64) = (2, 3);

/// `count` different kinds of `class`, drawn by `rng`.
fn choose(rng: &mut Rng, class: Class, count: (i64, i64)) -> Vec<Kind> {
    let mut kinds: Vec<Kind> = Kind::of(class).collect();
    rng.shuffle(&mut kinds);
    kinds.truncate(rng.between(count.0, count.1) as usize);
    kinds
}

/// Plans the week of `seed` in `form`: the organisation and its scenarios.
pub fn plan(form: Form, seed: u64) -> (Plan, Rng) {
    let root = Rng::new(seed).fork(0x1abe_1000 + form as u64);
    let org = Organisation::generate(&mut root.fork(0), form != Form::Postfix);
    let mut plan = Plan::new(org);
    let mut chooser = root.fork(1);
    let lookalikes = choose(&mut chooser, Class::Lookalike, LOOKALIKES);
    let hijacks = choose(&mut chooser, Class::Hijack, HIJACKS);
    let attacks = choose(&mut chooser, Class::Attack, ATTACKS);
    let kinds = lookalikes.into_iter().chain(hijacks).chain(attacks);
    for (n, kind) in kinds.enumerate() {
        let mut rng = root.fork(100 + n as u64);
        if let Some(scenario) = plan_scenario(&mut plan, kind, &mut rng) {
            plan.label(scenario);
        }
    }
    (plan, root)
}

/// Plans one scenario of `kind` and returns its label; `None` if the
/// organisation has no account it fits.
fn plan_scenario(plan: &mut Plan, kind: Kind, rng: &mut Rng) -> Option<Scenario> {
    match kind {
        Kind::GuessedRole => hijacks::guessed_role(plan, rng),
        Kind::PhishedOwnFrom => hijacks::phished_own_from(plan, rng),
        Kind::ShortHistory => hijacks::short_history(plan, rng),
        Kind::ProxiesLowAndSlow => hijacks::proxies(plan, rng),
        Kind::InfectedPc => hijacks::infected_pc(plan, rng),
        Kind::WebmailPhish => hijacks::webmail_phish(plan, rng),
        Kind::Newsletter => lookalikes::newsletter(plan, rng),
        Kind::ApplicationAccount => lookalikes::application(plan, rng),
        Kind::MistypedPassword => lookalikes::mistyped(plan, rng),
        Kind::Traveller => lookalikes::traveller(plan, rng),
        Kind::MobileCarrier => lookalikes::mobile(plan, rng),
        Kind::QuarterEnd => lookalikes::quarter_end(plan, rng),
        Kind::StalePassword => lookalikes::stale_password(plan, rng),
        Kind::BruteForce => attacks::brute_force(plan, rng),
        Kind::CredentialStuffing => attacks::stuffing(plan, rng),
        Kind::Campaign => attacks::campaign(plan, rng),
        Kind::Spray => attacks::spray(plan, rng),
    }
}

/// Writes the week of `seed` in `form` into `dir` (created if missing):
/// its log files and `labels.json`. Returns the labels.
pub fn generate(form: Form, seed: u64, dir: &Path) -> io::Result<Labels> {
    fs::create_dir_all(dir)?;
    let (plan, root) = plan(form, seed);
    let Plan {
        org,
        timeline,
        scenarios,
        ..
    } = plan;
    let mut writer = Writer::create(form, dir, org.mail.domain, org.utc_offset, root.fork(2))?;
    let mut planned = timeline.into_sorted().into_iter().peekable();
    let mut office_rng = root.fork(3);
    for day in 0..WEEK_DAYS {
        let mut today = Timeline::default();
        office::day(&org, day, &mut office_rng, &mut today);
        let end = org.day(day + 1);
        let last_day = day + 1 == WEEK_DAYS;
        while let Some(timed) = planned.next_if(|t| t.at < end || last_day) {
            today.push(timed);
        }
        for timed in today.into_sorted() {
            writer.write(timed.at, &timed.what)?;
        }
    }
    let last = writer.finish()?;
    for name in form.files() {
        forms::stamp_file(&dir.join(name), last, org.utc_offset)?;
    }
    let labels = Labels {
        form: form.name().to_owned(),
        seed,
        domain: org.mail.domain.to_owned(),
        mailboxes: org.members.len(),
        region: org.region.name.to_owned(),
        utc_offset: labels::offset_text(org.utc_offset),
        start: org.start.utc(org.utc_offset),
        end: org.end().utc(org.utc_offset),
        files: form.files().iter().map(|f| (*f).to_owned()).collect(),
        scan_options: match form {
            // One word: `--timezone -03:00` would read as two options.
            Form::Postfix => vec![format!(
                "--timezone={}",
                labels::offset_text(org.utc_offset)
            )],
            Form::Kerio8 | Form::Kerio10 => Vec::new(),
        },
        scenarios,
    };
    let mut out = BufWriter::new(File::create(dir.join("labels.json"))?);
    serde_json::to_writer_pretty(&mut out, &labels)?;
    out.write_all(b"\n")?;
    out.flush()?;
    Ok(labels)
}
