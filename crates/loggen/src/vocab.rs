//! Names, domains, subjects and server replies the generated logs are made of.
//!
//! Outside domains are real public mail providers or `.example` companies;
//! their MX addresses are documentation addresses (RFC 5737), so no generated
//! line points at a real host except where the user's story names one.

use crate::kerio::{Ip, Piece};

/// An outside mail domain and the address of its mail server, used both as
/// `Sender-Host` of mail from it and `Remote-Host` of mail to it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Domain {
    /// The domain after `@` in its people's addresses.
    pub name: &'static str,
    /// Its mail server's address, from 192.0.2.0/24 (RFC 5737).
    pub mx: Ip,
}

const fn d(name: &'static str, last_octet: u8) -> Domain {
    Domain {
        name,
        mx: [192, 0, 2, last_octet],
    }
}

/// Suppliers, customers and service providers the company writes to.
pub const PARTNERS: &[Domain] = &[
    d("ferona.example", 11),
    d("brnolog.example", 12),
    d("toolmart.example", 13),
    d("hwdepot.example", 14),
    d("pilsenmach.example", 15),
    d("boschparts.example", 16),
    d("ovametal.example", 17),
    d("eurofast.example", 18),
    d("danube.example", 19),
    d("krause.example", 20),
    d("taxadvice.example", 21),
    d("citybank.example", 22),
    d("packship.example", 23),
    d("indsupply.example", 24),
];

/// Public mailbox providers (small customers, private contacts).
pub const FREEMAIL: &[Domain] = &[
    d("gmail.com", 40),
    d("seznam.cz", 41),
    d("email.cz", 42),
    d("outlook.com", 43),
    d("centrum.cz", 44),
    d("yahoo.com", 45),
    d("gmx.de", 46),
];

/// Senders of automated mail (shops, services) whose local part is fixed.
pub const AUTOMATED: &[(&str, Domain)] = &[
    ("newsletter", d("toolmart.example", 13)),
    ("noreply", d("citybank.example", 22)),
    ("invoices", d("telco-cz.example", 60)),
    ("no-reply", d("cloudbox.example", 61)),
    ("orders", d("officeshop.example", 62)),
];

/// The 2012-era consumer ISPs whose harvested address lists spammers mail.
pub const SPAM_TARGETS: &[Domain] = &[
    d("aol.com", 100),
    d("netzero.net", 101),
    d("epix.net", 102),
    d("adelphia.net", 103),
    d("juno.com", 104),
    d("earthlink.net", 105),
    d("comcast.net", 106),
    d("att.net", 107),
    d("verizon.net", 108),
    d("bellsouth.net", 109),
    d("charter.net", 110),
    d("cox.net", 111),
    d("sbcglobal.net", 112),
    d("yahoo.com", 45),
    d("hotmail.com", 113),
    d("msn.com", 114),
    d("optonline.net", 115),
    d("roadrunner.com", 116),
    d("mindspring.com", 117),
    d("prodigy.net", 118),
];

/// Czech first names (ASCII, as in mailbox names).
pub const FIRST_NAMES: &[&str] = &[
    "jan", "petr", "martin", "tomas", "jiri", "pavel", "lukas", "jakub", "david", "michal",
    "ondrej", "filip", "vojtech", "adam", "karel", "josef", "marek", "radek", "roman", "milan",
    "eva", "jana", "petra", "lucie", "katerina", "tereza", "hana", "lenka", "veronika", "martina",
    "alena", "zuzana", "monika", "barbora", "klara", "anna", "marie", "simona", "ivana", "jitka",
];

/// Czech surnames (ASCII).
pub const SURNAMES: &[&str] = &[
    "novak",
    "svoboda",
    "novotny",
    "dvorak",
    "cerny",
    "prochazka",
    "kucera",
    "vesely",
    "horak",
    "nemec",
    "marek",
    "pospisil",
    "pokorny",
    "hajek",
    "kral",
    "jelinek",
    "ruzicka",
    "benes",
    "fiala",
    "sedlacek",
    "dolezal",
    "zeman",
    "kolar",
    "navratil",
    "cermak",
    "urban",
    "vanek",
    "blazek",
    "kriz",
    "kovar",
    "kratochvil",
    "bartos",
    "vlcek",
    "polak",
    "musil",
    "kopecky",
    "simek",
    "konecny",
    "maly",
    "holub",
    "stepanek",
    "kadlec",
    "soukup",
    "sykora",
    "vacek",
    "richter",
    "bauer",
    "weber",
    "schmidt",
    "wagner",
];

/// American first names, for the spammer's address list.
pub const US_FIRST_NAMES: &[&str] = &[
    "adam", "alice", "brian", "carol", "dennis", "donna", "edward", "frank", "gary", "helen",
    "irene", "jack", "karen", "larry", "mary", "nancy", "oscar", "paul", "rita", "steve", "tina",
    "victor", "wanda",
];

/// American surnames in alphabetical order, for the spammer's address list (the
/// seed's `acaraballo`, `acarbon`, `acardona`, `acarenas` show an alphabetical harvest).
pub const US_SURNAMES: &[&str] = &[
    "adams",
    "allen",
    "anderson",
    "baker",
    "brown",
    "campbell",
    "caraballo",
    "carbon",
    "cardona",
    "carenas",
    "carey",
    "carlson",
    "carmichael",
    "carpenter",
    "carr",
    "carrillo",
    "carroll",
    "carson",
    "carter",
    "clark",
    "davis",
    "flores",
    "garcia",
    "gonzalez",
    "green",
    "hall",
    "harris",
    "hernandez",
    "hill",
    "jackson",
    "johnson",
    "jones",
    "king",
    "lee",
    "lewis",
    "lopez",
    "martinez",
    "miller",
    "mitchell",
    "moore",
    "nelson",
    "nguyen",
    "perez",
    "ramirez",
    "rivera",
    "robinson",
    "rodriguez",
    "sanchez",
    "scott",
    "smith",
    "taylor",
    "thomas",
    "thompson",
    "torres",
    "walker",
    "white",
    "williams",
    "wilson",
    "wright",
    "young",
];

/// Names attackers try first (`log-formats.md`: role names are guessed first).
pub const ROLE_NAMES: &[&str] = &[
    "admin",
    "administrator",
    "info",
    "support",
    "sales",
    "marketing",
    "office",
    "postmaster",
    "webmaster",
    "test",
    "contact",
    "billing",
    "accounts",
    "accounting",
    "hr",
    "jobs",
    "careers",
    "noreply",
    "root",
    "mail",
    "user",
    "manager",
    "service",
    "help",
    "helpdesk",
    "it",
    "security",
    "finance",
    "orders",
    "shop",
    "team",
    "hello",
    "reception",
    "backup",
    "scanner",
    "printer",
    "test1",
    "demo",
    "guest",
    "web",
];

/// Everyday business subjects; some carry commas or Czech diacritics, as
/// real ones do.
pub const BUSINESS_SUBJECTS: &[&str] = &[
    "Quotation request - angle grinders",
    "Order 2026-1142 confirmation",
    "Invoice 26/0871",
    "Delivery schedule for week 46",
    "Meeting notes",
    "Price list 2027",
    "Warranty claim WC-3312",
    "Faktura č. 2026-0931",
    "Objednávka – potvrzení",
    "Dotaz na dostupnost zboží",
    "Lunch on Friday?",
    "Updated drawings, rev. C",
    "Shipment tracking",
    "Customs documents for shipment 7781",
    "Stock levels, November",
    "Credit note request",
    "Visit next Tuesday",
    "Reklamace - vrtačka DP-18",
    "Payment reminder",
    "New catalogue pages",
    "Pallet pickup tomorrow",
    "Contract draft v2",
    "Trade fair booth, Brno",
    "Spare parts for line 3",
    "Sample request",
    "Holiday plan",
    "Re-quote: 500 pcs M8 bolts",
    "Service report",
];

/// Reply and forward prefixes; empty for new threads (weighted by repetition).
pub const SUBJECT_PREFIXES: &[&str] = &["", "", "", "Re: ", "Re: ", "RE: ", "Fwd: ", "FW: "];

/// Subjects of automated mail the company receives.
pub const AUTOMATED_SUBJECTS: &[&str] = &[
    "Your weekly digest",
    "Black Friday deals inside",
    "Statement for October 2026",
    "Your invoice is ready",
    "Storage almost full",
    "Order shipped",
];

/// The company's newsletter.
pub const NEWSLETTER_SUBJECT: &str = "Acme Tools – November offers: 20 % off cordless drills";

/// The hijacker's subjects.
pub const SPAM_SUBJECTS: &[&str] = &[
    "Re: Your order #48213",
    "Cheap meds without prescription!!!",
    "You have WON $1,000,000",
    "Replica watches - 80% OFF",
    "Urgent: verify your account",
    "Make $5000 a week from home",
    "Lowest mortgage rates, guaranteed",
    "Your package could not be delivered",
    "V1AGRA 0.99$ per pill",
    "Hot stock alert: GRWT up 900%",
];

/// DNS blacklists Kerio names in security.log.
pub const BLACKLISTS: &[&str] = &["SpamCop", "SpamHaus ZEN", "Barracuda", "SORBS"];

/// A local delivery's status, with Kerio's trailing space: `Status: 2.0.0 ,`.
pub const LOCAL_DELIVERY: &[Piece] = &[Piece::Text("2.0.0 ")];

/// Remote servers' acceptance replies, as Kerio quotes them.
pub const RELAY_REPLIES: &[&[Piece]] = &[
    &[Piece::Text("2.0.0 250 2.0.0 Ok: queued as "), Piece::Token],
    &[Piece::Text("2.0.0 250 OK id="), Piece::Token],
    &[
        Piece::Text("2.0.0 250 2.0.0 OK "),
        Piece::Token,
        Piece::Text(" - gsmtp"),
    ],
    &[
        Piece::Text("2.0.0 250 Requested mail action okay, completed: id="),
        Piece::Token,
    ],
];

/// Permanent refusals of unknown recipients; the first three are the seed's.
pub const REFUSALS: &[&[Piece]] = &[
    &[
        Piece::Text("5.1.1 550 "),
        Piece::Rcpt,
        Piece::Text(" is not a valid user"),
    ],
    &[Piece::Text("5.1.1 550 #5.1.0 Address rejected.")],
    &[
        Piece::Text("5.1.1 550 5.1.1 <"),
        Piece::Rcpt,
        Piece::Text(">: Recipient address rejected: "),
        Piece::Domain,
    ],
    &[
        Piece::Text("5.1.1 550 5.1.1 <"),
        Piece::Rcpt,
        Piece::Text(">: Recipient address rejected: User unknown in virtual mailbox table"),
    ],
    &[Piece::Text(
        "5.1.1 550 Requested action not taken: mailbox unavailable",
    )],
    &[Piece::Text(
        "5.1.1 550 5.1.1 The email account that you tried to reach does not exist.",
    )],
];

/// Temporary refusals (greylisting, busy servers).
pub const DEFERRALS: &[&[Piece]] = &[
    &[Piece::Text(
        "4.7.1 451 4.7.1 Greylisting in action, please come back later",
    )],
    &[Piece::Text("4.4.1 Connection timed out")],
    &[Piece::Text(
        "4.2.1 421 4.2.1 Service not available, try again later",
    )],
];

/// Organisations of the labelled weeks, one picked per week.
pub const COMPANY_DOMAINS: &[&str] = &[
    "acme-tools.example",
    "globex.example",
    "initech.example",
    "umbrella-labs.example",
    "hooli.example",
    "vandelay.example",
    "stark-ind.example",
    "wayne-ent.example",
    "cyberdyne.example",
    "tyrell.example",
    "soylent.example",
    "massive-dyn.example",
    "wonka-sweets.example",
    "gringotts.example",
    "oscorp.example",
    "dunder-paper.example",
    "pied-piper.example",
    "nakatomi.example",
    "monarch-sol.example",
    "bluth-homes.example",
    "kramerica.example",
    "sterling-cooper.example",
    "prestige-ww.example",
    "blue-sun.example",
];

/// The second domain an organisation's shop or billing system sends from.
pub const SHOP_DOMAINS: &[&str] = &[
    "company-shop.example",
    "shop-online.example",
    "eshop-orders.example",
    "billing-portal.example",
    "my-invoices.example",
    "webstore-cz.example",
];

/// Local parts the shop's system puts in its envelope From.
pub const SHOP_SENDERS: &[&str] = &["billing", "orders", "noreply", "invoice", "shop"];

/// Envelope senders spammers forge, one per run.
pub const FORGED_SENDERS: &[(&str, &str)] = &[
    ("admin", "redbullcarwrap.com"),
    ("info", "pharma-direct.example"),
    ("support", "secure-wallet.example"),
    ("noreply", "delivery-notice.example"),
    ("promo", "luxury-replica.example"),
    ("billing", "account-verify.example"),
    ("service", "prize-center.example"),
    ("mailer", "bulk-offers.example"),
];

/// Subjects of a company's mailing to all its customers at quarter end.
pub const STATEMENT_SUBJECTS: &[&str] = &[
    "Statement of account, Q3",
    "Your quarterly statement",
    "Year-end price update",
    "Open items as of the end of the quarter",
];

/// Subjects of the messages a shop's billing system sends.
pub const SHOP_SUBJECTS: &[&str] = &[
    "Your invoice",
    "Order confirmation",
    "Payment received",
    "Your order has shipped",
];

/// Subjects of phishing sent from a hijacked mailbox to its contacts.
pub const PHISH_SUBJECTS: &[&str] = &[
    "Shared document: Q4 payment details",
    "Invoice overdue - please review",
    "New secure message",
    "Password expiry notice",
    "RE: updated bank details",
    "DocuSign: please sign",
];
