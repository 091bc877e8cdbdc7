//! What happens on the server during a labelled week, before any log
//! format is chosen: messages queued, logins and refused logins. Each form
//! ([`super::forms`]) turns the same happenings into its own lines.

use crate::bench::Connection;
use crate::clock::Wall;
use crate::kerio::{Addr, Ip};
use crate::traffic::{MailClient, Message};

/// How a client reached the server to log in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    /// SMTP `AUTH`.
    Smtp,
    /// IMAP.
    Imap,
    /// POP3.
    Pop3,
    /// The webmail in a browser (Kerio's client, Roundcube).
    Webmail,
    /// Outlook through Kerio's connector (`HTTP/KOFF`).
    Outlook,
}

impl Access {
    /// How a person's usual mail program logs in to read mail.
    pub fn of(client: MailClient) -> Access {
        match client {
            MailClient::Desktop => Access::Imap,
            MailClient::Webmail => Access::Webmail,
            MailClient::Outlook => Access::Outlook,
        }
    }

    /// The service Kerio names in security.log and audit.log.
    pub fn kerio_service(self) -> &'static str {
        match self {
            Access::Smtp => "SMTP",
            Access::Imap => "IMAP",
            Access::Pop3 => "POP3",
            Access::Webmail => "HTTP/WebMail",
            Access::Outlook => "HTTP/KOFF",
        }
    }
}

/// One thing the server logs.
#[derive(Clone, Debug)]
pub enum Happening<'a> {
    /// A message queued, on a connection of its own or a client's open one.
    Message(Box<Message<'a>>, Connection),
    /// A successful login that sends nothing by itself (SMTP logins of
    /// submissions are part of their message).
    Login {
        /// How the client logged in.
        access: Access,
        /// The account.
        user: Addr<'a>,
        /// The client's address.
        ip: Ip,
    },
    /// A refused login.
    Failure {
        /// How the client tried.
        access: Access,
        /// The login tried.
        user: Addr<'a>,
        /// The client's address.
        ip: Ip,
        /// The login is no account here.
        unknown: bool,
    },
}

/// A happening at its time (server wall clock).
#[derive(Clone, Debug)]
pub struct Timed<'a> {
    /// When the server logs it.
    pub at: Wall,
    /// What it logs.
    pub what: Happening<'a>,
}

/// Happenings in the order they were planned; [`Timeline::into_sorted`]
/// puts them in time order, keeping that order within a second.
#[derive(Clone, Debug, Default)]
pub struct Timeline<'a> {
    items: Vec<Timed<'a>>,
}

impl<'a> Timeline<'a> {
    /// A message on its own connection.
    pub fn message(&mut self, msg: Message<'a>) {
        self.message_on(msg, Connection::OWN);
    }

    /// A message on `connection`.
    pub fn message_on(&mut self, msg: Message<'a>, connection: Connection) {
        self.items.push(Timed {
            at: msg.at,
            what: Happening::Message(Box::new(msg), connection),
        });
    }

    /// A successful login.
    pub fn login(&mut self, at: Wall, access: Access, user: Addr<'a>, ip: Ip) {
        let what = Happening::Login { access, user, ip };
        self.items.push(Timed { at, what });
    }

    /// A refused login.
    pub fn failure(&mut self, at: Wall, access: Access, user: Addr<'a>, ip: Ip, unknown: bool) {
        let what = Happening::Failure {
            access,
            user,
            ip,
            unknown,
        };
        self.items.push(Timed { at, what });
    }

    /// A happening already timed.
    pub fn push(&mut self, timed: Timed<'a>) {
        self.items.push(timed);
    }

    /// Moves everything of `other` into this timeline.
    pub fn append(&mut self, other: &mut Timeline<'a>) {
        self.items.append(&mut other.items);
    }

    /// Happenings planned so far.
    pub fn len(&self) -> usize {
        self.items.len()
    }

    /// Whether nothing is planned.
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// The happenings in time order (stable: the planned order within a
    /// second, so a login stays before the message it opens).
    pub fn into_sorted(mut self) -> Vec<Timed<'a>> {
        self.items.sort_by_key(|t| t.at);
        self.items
    }
}
