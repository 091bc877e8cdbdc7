//! The week's happenings as each server logs them, streamed to files in
//! time order through the benchmark's writers ([`crate::kerio`],
//! [`crate::postfix`]).
//!
//! * Kerio (8 and 9/10): mail.log (with non-delivery reports), security.log
//!   (refused logins, Kerio's AntiHammering blocking an address after 10
//!   failed SMTP logins within a minute for 5 minutes), audit.log (logins;
//!   an SMTP login per submission connection). Kerio 8 logs webmail
//!   submissions with the browser's address, 9/10 with `0.0.0.0`.
//! * Postfix with Dovecot and Roundcube: one syslog file. Submissions carry
//!   their SASL login; webmail submits from 127.0.0.1 and its logins are
//!   Roundcube's line and Dovecot's `imap-login` with the browser's address
//!   (`rip=`, `lip=127.0.0.1`); refused logins are Postfix's `SASL LOGIN
//!   authentication failed` or Dovecot's `auth failed` summaries (and the
//!   auth process's verdicts when the seed turns `auth_verbose` on).

use std::collections::HashMap;
use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::Path;
use std::time::{Duration, UNIX_EPOCH};

use crate::bench::{Connection, Stream};
use crate::clock::{Wall, MINUTE};
use crate::kerio::{Ip, KerioRender, KerioVersion, Line, LineWriter, Service};
use crate::postfix::{Mailbox, PostfixRender, Refusal};
use crate::rng::Rng;
use crate::traffic::Message;

use super::timeline::{Access, Happening};
use super::Form;

/// Writes happenings, given in time order, as one server's log files.
pub(crate) enum Writer<'a> {
    /// Kerio's three files.
    Kerio(Box<KerioFiles<'a>>),
    /// Postfix's and Dovecot's syslog file.
    Postfix(Box<PostfixFile<'a>>),
}

impl<'a> Writer<'a> {
    /// Creates the form's files in `dir`.
    pub(crate) fn create(
        form: Form,
        dir: &Path,
        domain: &'static str,
        utc_offset: i64,
        rng: Rng,
    ) -> io::Result<Writer<'a>> {
        let open = |name: &str| File::create(dir.join(name)).map(BufWriter::new);
        Ok(match form {
            Form::Kerio8 | Form::Kerio10 => {
                let version = if form == Form::Kerio8 {
                    KerioVersion::V8
                } else {
                    KerioVersion::V10
                };
                let render = KerioRender::with_reports(utc_offset, version, domain);
                Writer::Kerio(Box::new(KerioFiles {
                    mail: Stream::new(open("mail.log")?, render),
                    security: TextFile::new(open("security.log")?, version),
                    audit: TextFile::new(open("audit.log")?, version),
                    hammering: HashMap::new(),
                }))
            }
            Form::Postfix => {
                let mut rng = rng;
                let verbose = rng.percent(50);
                let render = PostfixRender::with_webmail(domain, rng.fork(1), verbose);
                Writer::Postfix(Box::new(PostfixFile {
                    log: Stream::new(open("mail.log")?, render),
                }))
            }
        })
    }

    /// Writes what happened at `at`.
    pub(crate) fn write(&mut self, at: Wall, what: &Happening<'a>) -> io::Result<()> {
        match self {
            Writer::Kerio(files) => files.write(at, what),
            Writer::Postfix(file) => file.write(at, what),
        }
    }

    /// Writes what is still scheduled and flushes; the last line's time.
    pub(crate) fn finish(self) -> io::Result<Wall> {
        match self {
            Writer::Kerio(files) => {
                let KerioFiles {
                    mail,
                    security,
                    audit,
                    ..
                } = *files;
                let last = mail.finish()?.last;
                Ok(last.max(security.finish()?).max(audit.finish()?))
            }
            Writer::Postfix(file) => Ok(file.log.finish()?.last),
        }
    }
}

/// A Kerio file of lines written as they come (security.log, audit.log).
pub(crate) struct TextFile {
    out: BufWriter<File>,
    writer: LineWriter,
    line: Vec<u8>,
    last: Wall,
}

impl TextFile {
    fn new(out: BufWriter<File>, version: KerioVersion) -> Self {
        TextFile {
            out,
            writer: LineWriter::new(version),
            line: Vec::with_capacity(256),
            last: Wall::default(),
        }
    }

    fn write(&mut self, at: Wall, line: &Line<'_>) -> io::Result<()> {
        self.line.clear();
        self.writer.write(&mut self.line, at, line);
        self.last = at;
        self.out.write_all(&self.line)
    }

    fn finish(mut self) -> io::Result<Wall> {
        self.out.flush()?;
        Ok(self.last)
    }
}

/// Kerio's AntiHammering (mailserver.cfg's defaults): 10 failed SMTP
/// logins from one address within 60 s block it for 5 minutes.
const HAMMER_LIMIT: usize = 10;
const HAMMER_WINDOW: i64 = MINUTE;
const HAMMER_BLOCK: i64 = 5 * MINUTE;

/// One address's failed SMTP logins within the last minute, and how long
/// it is blocked.
#[derive(Debug, Default)]
pub(crate) struct Hammering {
    recent: Vec<Wall>,
    blocked_until: Wall,
}

/// Kerio's three files.
pub(crate) struct KerioFiles<'a> {
    mail: Stream<'a, BufWriter<File>, KerioRender>,
    security: TextFile,
    audit: TextFile,
    hammering: HashMap<Ip, Hammering>,
}

impl<'a> KerioFiles<'a> {
    fn write(&mut self, at: Wall, what: &Happening<'a>) -> io::Result<()> {
        match *what {
            Happening::Message(ref msg, connection) => self.message(msg, connection),
            Happening::Login { access, user, ip } => {
                let proto = access.kerio_service();
                self.audit.write(at, &Line::Login { proto, user, ip })
            }
            Happening::Failure {
                access,
                user,
                ip,
                unknown,
            } => match access {
                Access::Smtp => self.smtp_failure(at, user, ip, unknown),
                Access::Imap | Access::Pop3 => {
                    let service = access.kerio_service();
                    let line = Line::FailedLogin {
                        service,
                        ip,
                        user,
                        unknown,
                    };
                    self.security.write(at, &line)
                }
                Access::Webmail | Access::Outlook => {
                    let proto = access.kerio_service();
                    self.security
                        .write(at, &Line::InvalidPassword { proto, user, ip })
                }
            },
        }
    }

    /// The message's lines, after the SMTP login of a new connection.
    fn message(&mut self, msg: &Message<'a>, connection: Connection) -> io::Result<()> {
        if let Some(user) = msg.user {
            if msg.service == Service::Smtp && connection.opens {
                let (proto, ip) = ("SMTP", msg.sender_host);
                self.audit.write(msg.at, &Line::Login { proto, user, ip })?;
            }
        }
        self.mail.catch_up(msg.at)?;
        self.mail.message(msg, connection).map(|_| ())
    }

    /// A failed SMTP login, or the refusal of a blocked address; blocks
    /// the address when it crosses AntiHammering's limit.
    fn smtp_failure(
        &mut self,
        at: Wall,
        user: crate::kerio::Addr<'a>,
        ip: Ip,
        unknown: bool,
    ) -> io::Result<()> {
        let state = self.hammering.entry(ip).or_default();
        if at < state.blocked_until {
            return self.security.write(at, &Line::AntiHammeringRefused { ip });
        }
        if unknown {
            self.security
                .write(at, &Line::SmtpUnknownUser { user, ip })?;
        }
        self.security.write(at, &Line::FailedSmtpLogin { ip })?;
        state.recent.retain(|t| at.0 - t.0 < HAMMER_WINDOW);
        state.recent.push(at);
        if state.recent.len() >= HAMMER_LIMIT {
            state.recent.clear();
            state.blocked_until = at.plus(HAMMER_BLOCK);
            self.security.write(at, &Line::AntiHammeringBlock { ip })?;
        }
        Ok(())
    }
}

/// Postfix's and Dovecot's syslog file.
pub(crate) struct PostfixFile<'a> {
    log: Stream<'a, BufWriter<File>, PostfixRender<'a>>,
}

impl<'a> PostfixFile<'a> {
    fn write(&mut self, at: Wall, what: &Happening<'a>) -> io::Result<()> {
        self.log.catch_up(at)?;
        let (access, user, ip, refused) = match *what {
            Happening::Message(ref msg, connection) => {
                return self.log.message(msg, connection).map(|_| ());
            }
            Happening::Login { access, user, ip } => (access, user, ip, None),
            Happening::Failure {
                access,
                user,
                ip,
                unknown,
            } => (access, user, ip, Some(unknown)),
        };
        let login = Refusal {
            user,
            ip,
            unknown: refused.unwrap_or(false),
        };
        // A client keeps to one port: most to 587 with STARTTLS, some to 25.
        let submission = (u32::from(ip[2]) * 7 + u32::from(ip[3])) % 5 < 3;
        self.log.write_with(at, |render, lines, _| {
            let mailbox = match access {
                Access::Smtp => {
                    render.smtp_login(lines, at, login, refused.is_none(), submission);
                    return;
                }
                Access::Pop3 => Mailbox::Pop3,
                Access::Webmail => {
                    render.webmail_login(lines, at, user, ip, refused.is_none());
                    Mailbox::Imap
                }
                Access::Imap | Access::Outlook => Mailbox::Imap,
            };
            let via_webmail = access == Access::Webmail;
            match refused {
                None => render.dovecot_login(lines, at, mailbox, user, ip, via_webmail),
                Some(_) => render.dovecot_failure(lines, at, mailbox, login, via_webmail),
            }
        })
    }
}

/// Sets a file's modification time to `last` (UTC): readers take a
/// syslog file's missing year from it.
pub(crate) fn stamp_file(path: &Path, last: Wall, utc_offset: i64) -> io::Result<()> {
    let secs = last.utc(utc_offset).0.max(0) as u64;
    File::options()
        .write(true)
        .open(path)?
        .set_modified(UNIX_EPOCH + Duration::from_secs(secs))
}
