//! The organisation of a labelled week: who has a mailbox, how each person
//! reads and sends mail and from where, the server's time zone and the
//! week the log covers. Everything is drawn from the week's seed.

use std::collections::HashSet;

use crate::clock::{Wall, DAY, HOUR};
use crate::kerio::{Addr, Ip};
use crate::rng::Rng;
use crate::traffic::{self, MailClient, Person};
use crate::vocab;

/// Where an organisation is: its time zone and the address blocks of its
/// country's broadband and mobile networks.
#[derive(Clone, Copy, Debug)]
pub struct Region {
    /// A name for messages.
    pub name: &'static str,
    /// UTC offsets in seconds, in winter and in summer.
    pub offsets: [i64; 2],
    /// First two octets of home broadband blocks.
    pub broadband: &'static [[u8; 2]],
    /// First two octets of mobile carriers' blocks (phones change address
    /// often within them).
    pub carriers: &'static [[u8; 2]],
}

/// The regions an organisation may be in.
pub const REGIONS: &[Region] = &[
    Region {
        name: "Central Europe",
        offsets: [HOUR, 2 * HOUR],
        broadband: &[[89, 102], [90, 176], [78, 80], [94, 112], [213, 220]],
        carriers: &[[37, 48], [46, 135], [185, 64]],
    },
    Region {
        name: "United Kingdom",
        offsets: [0, HOUR],
        broadband: &[[81, 96], [86, 128], [90, 240], [109, 150]],
        carriers: &[[92, 40], [31, 94], [82, 132]],
    },
    Region {
        name: "US East",
        offsets: [-5 * HOUR, -4 * HOUR],
        broadband: &[[71, 190], [73, 45], [98, 116], [24, 12]],
        carriers: &[[172, 56], [174, 205], [166, 137]],
    },
    Region {
        name: "US West",
        offsets: [-8 * HOUR, -7 * HOUR],
        broadband: &[[76, 102], [67, 180], [99, 30], [50, 47]],
        carriers: &[[172, 58], [107, 77]],
    },
    Region {
        name: "Brazil",
        offsets: [-3 * HOUR, -3 * HOUR],
        broadband: &[[177, 40], [189, 12], [200, 150], [191, 33]],
        carriers: &[[179, 96], [187, 60]],
    },
    Region {
        name: "India",
        offsets: [5 * HOUR + 1_800, 5 * HOUR + 1_800],
        broadband: &[[117, 200], [122, 170], [59, 88]],
        carriers: &[[106, 200], [157, 40], [49, 36]],
    },
    Region {
        name: "Vietnam",
        offsets: [7 * HOUR, 7 * HOUR],
        broadband: &[[113, 160], [14, 160], [171, 224]],
        carriers: &[[27, 64], [116, 96]],
    },
    Region {
        name: "Japan",
        offsets: [9 * HOUR, 9 * HOUR],
        broadband: &[[126, 100], [153, 200], [180, 30]],
        carriers: &[[1, 72], [49, 96]],
    },
    Region {
        name: "Australia",
        offsets: [11 * HOUR, 10 * HOUR],
        broadband: &[[101, 160], [120, 150], [110, 140]],
        carriers: &[[1, 128], [49, 176]],
    },
];

/// Blocks attackers come from: hosting providers, VPNs and infected home
/// computers all over the world.
pub const WORLD: &[[u8; 2]] = &[
    [45, 155],
    [185, 220],
    [193, 32],
    [194, 165],
    [91, 92],
    [141, 98],
    [103, 145],
    [43, 153],
    [118, 25],
    [36, 110],
    [222, 186],
    [61, 177],
    [5, 188],
    [46, 161],
    [37, 139],
    [80, 94],
    [195, 178],
    [212, 70],
    [185, 156],
    [179, 43],
    [187, 62],
    [190, 85],
    [201, 17],
    [41, 216],
    [102, 130],
    [197, 210],
    [156, 96],
    [14, 225],
    [27, 72],
    [58, 218],
    [112, 85],
    [119, 29],
    [175, 24],
    [124, 235],
    [211, 20],
    [182, 73],
    [104, 248],
    [107, 189],
    [162, 243],
    [23, 94],
    [138, 68],
    [159, 65],
    [167, 99],
    [64, 227],
    [66, 240],
    [88, 214],
    [95, 214],
    [176, 111],
    [188, 166],
    [217, 12],
];

/// Hands out addresses, each at most once a week, so that no attacker
/// shares an address with an employee by chance.
#[derive(Clone, Debug, Default)]
pub struct IpBook {
    used: HashSet<Ip>,
}

impl IpBook {
    /// An unused address in one of `blocks` (first two octets each).
    pub fn fresh(&mut self, rng: &mut Rng, blocks: &[[u8; 2]]) -> Ip {
        loop {
            let [a, b] = rng.pick(blocks);
            let ip = [a, b, rng.below(256) as u8, rng.between(1, 254) as u8];
            if self.used.insert(ip) {
                return ip;
            }
        }
    }

    /// An unused address in the /24 `net`.
    pub fn fresh_in(&mut self, rng: &mut Rng, net: [u8; 3]) -> Ip {
        for _ in 0..1_000 {
            let ip = [net[0], net[1], net[2], rng.between(1, 254) as u8];
            if self.used.insert(ip) {
                return ip;
            }
        }
        panic!("/24 {net:?} is full");
    }
}

/// What a mailbox is for, which decides how it sends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// A person's own mailbox.
    Staff,
    /// A shared address (`info@`, `support@`) that staff answer from the
    /// office.
    Inbox,
    /// An address that only forwards to someone and never sends: nobody
    /// knows its password is weak.
    Forwarder,
    /// The marketing mailbox, which sends the newsletter and little else.
    Marketing,
    /// An application (shop, billing) that logs in and sends with a From
    /// of another of the company's domains.
    Application {
        /// The envelope From it uses, in the second domain.
        from: Addr<'static>,
        /// The server it sends from.
        server: Ip,
    },
}

/// A trip abroad: mail is read and sent from a hotel instead of the
/// office.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Trip {
    /// First moment away (wall time).
    pub from: Wall,
    /// Back at the office from here on.
    pub until: Wall,
    /// The hotel's or conference's address.
    pub ip: Ip,
}

/// A mailbox's habits beyond what [`Person`] says.
#[derive(Clone, Debug)]
pub struct Member {
    /// What the mailbox is for.
    pub role: Role,
    /// The NAT address of the person's office.
    pub office: Ip,
    /// The mobile carrier block of the person's phone, if any.
    pub carrier: Option<[u8; 2]>,
    /// Percent chance that the phone has a new address at each poll.
    pub churn: u64,
    /// Minutes between the phone's polls.
    pub poll_minutes: (i64, i64),
    /// Percent chance per day of sending a few messages from the phone.
    pub phone_sends: u64,
    /// Days of the week (bit n: the week's day n) the person is away on
    /// leave and sends nothing.
    pub days_off: u8,
    /// A trip abroad during the week.
    pub trip: Option<Trip>,
}

/// The organisation of one labelled week.
#[derive(Clone, Debug)]
pub struct Organisation {
    /// Domain, main office address and people, as the traffic model wants
    /// them (`people[i]` goes with `members[i]`).
    pub mail: traffic::Org<'static>,
    /// Habits of each mailbox.
    pub members: Vec<Member>,
    /// Where the organisation is.
    pub region: Region,
    /// The server's UTC offset in seconds (Kerio and syslog write local time).
    pub utc_offset: i64,
    /// Local midnight at which the log starts.
    pub start: Wall,
    /// Addresses handed out this week.
    pub ips: IpBook,
}

/// Days a labelled week's log covers.
pub const WEEK_DAYS: i64 = 7;

/// How staff addresses are made, one style per organisation.
#[derive(Clone, Copy, Debug)]
enum Style {
    /// `jan.novak`
    FirstDotLast,
    /// `j.novak`
    InitialDotLast,
    /// `jnovak`
    InitialLast,
    /// `jan`: small companies.
    First,
}

impl Organisation {
    /// Draws an organisation for a week; `outlook` says whether the
    /// server has Kerio's Outlook connector (Postfix has none).
    pub fn generate(rng: &mut Rng, outlook: bool) -> Organisation {
        let region = rng.pick(REGIONS);
        let domain = rng.pick(vocab::COMPANY_DOMAINS);
        // A week within one year (syslog stamps have none), any weekday.
        let year = rng.pick(&[2025, 2026]);
        let start = Wall::civil(year, 1, 1, 0, 0, 0).plus(rng.between(3, 350) * DAY);
        let month = mailfuse_core::Timestamp(start.0).to_civil().1;
        let utc_offset = region.offsets[usize::from((4..=10).contains(&month))];
        let mut ips = IpBook::default();
        let office = ips.fresh(rng, region.broadband);
        let mut org = Organisation {
            mail: traffic::Org {
                domain,
                office_ip: office,
                people: Vec::new(),
            },
            members: Vec::new(),
            region,
            utc_offset,
            start,
            ips,
        };
        let mailboxes = match rng.below(100) {
            0..=44 => rng.between(15, 40),
            45..=79 => rng.between(41, 120),
            _ => rng.between(121, 300),
        } as usize;
        let second_office = (mailboxes > 120).then(|| org.ips.fresh(rng, region.broadband));
        org.add_roles(rng);
        org.add_staff(rng, mailboxes, second_office, outlook);
        org
    }

    /// The log's end: the first moment after the week.
    pub fn end(&self) -> Wall {
        self.start.plus(WEEK_DAYS * DAY)
    }

    /// Local midnight of the week's day `n` (0-based).
    pub fn day(&self, n: i64) -> Wall {
        self.start.plus(n * DAY)
    }

    /// The person and habits of mailbox `i`.
    pub fn member(&self, i: usize) -> (&Person<'static>, &Member) {
        (&self.mail.people[i], &self.members[i])
    }

    /// Adds mailbox `addr` with its habits; its index.
    pub fn add(&mut self, person: Person<'static>, member: Member) -> usize {
        self.mail.people.push(person);
        self.members.push(member);
        self.mail.people.len() - 1
    }

    fn quiet(&self, role: Role) -> Member {
        Member {
            role,
            office: self.mail.office_ip,
            carrier: None,
            churn: 0,
            poll_minutes: (90, 240),
            phone_sends: 0,
            days_off: 0,
            trip: None,
        }
    }

    /// Shared inboxes, forward-only addresses and the marketing mailbox.
    fn add_roles(&mut self, rng: &mut Rng) {
        let domain = self.mail.domain;
        let mut names = vec!["info", "support", "office"];
        rng.shuffle(&mut names);
        for name in names.iter().take(rng.between(1, 3) as usize) {
            let client = rng.pick(&[MailClient::Desktop, MailClient::Webmail]);
            let person = Person {
                addr: Addr::new(name, domain),
                client,
                daily: rng.between(2, 8) as u32,
                home: None,
                phone: None,
                forward_to: None,
            };
            self.add(person, self.quiet(Role::Inbox));
        }
        let mut forwarders = vec!["sales", "hr", "jobs", "accounts", "contact", "orders"];
        rng.shuffle(&mut forwarders);
        for name in forwarders.iter().take(rng.between(1, 3) as usize) {
            let person = Person {
                addr: Addr::new(name, domain),
                client: MailClient::Desktop,
                daily: 0,
                home: None,
                phone: None,
                forward_to: None,
            };
            self.add(person, self.quiet(Role::Forwarder));
        }
        let person = Person {
            addr: Addr::new("marketing", domain),
            client: MailClient::Desktop,
            daily: 0,
            home: None,
            phone: None,
            forward_to: None,
        };
        self.add(person, self.quiet(Role::Marketing));
    }

    /// People until the organisation has `mailboxes`; forwarders then
    /// forward to some of them.
    fn add_staff(
        &mut self,
        rng: &mut Rng,
        mailboxes: usize,
        second_office: Option<Ip>,
        outlook: bool,
    ) {
        let domain = self.mail.domain;
        let style = rng.pick(&[
            Style::FirstDotLast,
            Style::InitialDotLast,
            Style::InitialLast,
            Style::First,
        ]);
        let style = if mailboxes > 40 && matches!(style, Style::First) {
            Style::FirstDotLast
        } else {
            style
        };
        let (firsts, lasts) = if rng.percent(50) {
            (vocab::FIRST_NAMES, vocab::SURNAMES)
        } else {
            (vocab::US_FIRST_NAMES, vocab::US_SURNAMES)
        };
        let mut taken: HashSet<Addr<'static>> = self.mail.people.iter().map(|p| p.addr).collect();
        let mut tries = 0;
        while self.mail.people.len() < mailboxes && tries < 20 * mailboxes {
            tries += 1;
            let first = rng.pick(firsts);
            let last = rng.pick(lasts);
            let addr = match style {
                Style::FirstDotLast => Addr::composed(first, ".", last, domain),
                Style::InitialDotLast => Addr::composed(&first[..1], ".", last, domain),
                Style::InitialLast => Addr::composed(&first[..1], last, "", domain),
                Style::First => Addr::new(first, domain),
            };
            if !taken.insert(addr) {
                continue;
            }
            let client = match rng.below(100) {
                0..=49 => MailClient::Desktop,
                50..=79 => MailClient::Webmail,
                _ if outlook => MailClient::Outlook,
                _ => MailClient::Desktop,
            };
            let home = rng
                .percent(60)
                .then(|| self.ips.fresh(rng, self.region.broadband));
            let carrier = rng.percent(55).then(|| rng.pick(self.region.carriers));
            let person = Person {
                addr,
                client,
                daily: rng.between(3, 30) as u32,
                home,
                phone: None,
                forward_to: None,
            };
            let days_off = if rng.percent(10) {
                let first = rng.between(0, 6);
                let len = rng.between(1, 5);
                (first..(first + len).min(7)).fold(0u8, |bits, d| bits | 1 << d)
            } else {
                0
            };
            let member = Member {
                role: Role::Staff,
                office: match second_office {
                    Some(second) if rng.percent(35) => second,
                    _ => self.mail.office_ip,
                },
                carrier,
                churn: rng.between(5, 30) as u64,
                poll_minutes: (60, 240),
                phone_sends: if carrier.is_some() { 10 } else { 0 },
                days_off,
                trip: None,
            };
            self.add(person, member);
        }
        let staff: Vec<Addr<'static>> = self
            .mail
            .people
            .iter()
            .zip(&self.members)
            .filter(|(_, m)| m.role == Role::Staff)
            .map(|(p, _)| p.addr)
            .collect();
        for (person, member) in self.mail.people.iter_mut().zip(&self.members) {
            if member.role == Role::Forwarder && !staff.is_empty() {
                person.forward_to = Some(rng.pick(&staff));
            }
        }
    }
}
