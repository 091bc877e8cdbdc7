//! `mailfuse trace`: one message's whole story, the seed's
//! `grep QUEUE-ID mail.log | head -1` done properly.
//!
//! Pass one gathers every line of the queue id. Pass two, knowing the sender's
//! account and IP, gathers the logins around it: failed ones from that IP
//! (was the password guessed?) and the account's successful ones.

use std::path::PathBuf;

use anyhow::Result;
use mailfuse_core::{Client, DeliveryStatus, Event, Timestamp};
use mailfuse_detect::incident::{evidence_line, lossy};
use mailfuse_formats::syslog::delivery_delay;
use serde::Serialize;

use crate::engine::{self, ReadOptions};

/// Most lines of one message kept verbatim.
const MAX_LINES: usize = 1000;
/// Login context looked at before the message was received.
const CONTEXT_BEFORE_SECS: i64 = 7 * 24 * 3600;

/// What the logs say about one message.
#[derive(Debug, Default, Serialize)]
pub struct Story {
    pub received: Option<Received>,
    /// Notices the server sent about this message (Postfix bounce, delay
    /// and delivery-status notifications): their queue ids.
    pub notices: Vec<String>,
    pub deliveries: Vec<DeliveryRecord>,
    /// The message's log lines in order (at most 1000).
    pub lines: Vec<String>,
    pub lines_total: u64,
    pub logins: LoginContext,
}

/// How the message entered the queue.
#[derive(Debug, Default, Serialize)]
pub struct Received {
    pub at: Option<Timestamp>,
    pub account: Option<String>,
    pub client: Option<String>,
    pub service: Option<String>,
    pub envelope_from: Option<String>,
    pub recipients: Vec<String>,
    pub size: Option<u64>,
    pub subject: Option<String>,
    pub message_id: Option<String>,
    pub tls: Option<bool>,
    pub bounce: bool,
    /// The message is the server's notice about this queue id.
    pub notice_of: Option<String>,
    /// The arrival time was taken from a delivery's `delay=` (the message
    /// was queued before the first line about it).
    pub at_from_delay: bool,
}

/// One recipient's delivery attempt.
#[derive(Debug, Serialize)]
pub struct DeliveryRecord {
    pub at: Timestamp,
    pub recipient: String,
    pub status: DeliveryStatus,
    pub dsn: Option<String>,
    pub detail: String,
    pub relay: Option<String>,
}

/// Logins around the message by its sender's IP and account.
#[derive(Debug, Default, Serialize)]
pub struct LoginContext {
    /// Failed logins from the sending IP in the week before the message.
    pub failed_from_ip: u64,
    pub first_failure: Option<Timestamp>,
    pub last_failure: Option<Timestamp>,
    pub accounts_tried: Vec<String>,
    pub failure_lines: Vec<String>,
    /// The account's successful logins in the week before (the last ten).
    pub successes: Vec<LoginRecord>,
}

#[derive(Debug, Serialize)]
pub struct LoginRecord {
    pub at: Timestamp,
    pub client: String,
    pub service: String,
}

fn client_text(client: &Client<'_>) -> String {
    match client {
        Client::Ip(ip) => ip.to_string(),
        Client::Host(host) => lossy(host),
        Client::Unknown => "unknown".into(),
    }
}

/// Finds the message `queue_id` in `paths`; `None` if no line names it.
pub fn trace(queue_id: &str, paths: &[PathBuf], options: &ReadOptions) -> Result<Option<Story>> {
    let wanted = queue_id.trim().as_bytes();
    let mut story = Story::default();
    engine::read_all(paths, options, |event, line| {
        let is_wanted = |id: &[u8]| id.eq_ignore_ascii_case(wanted);
        if let Event::Submission(s) = event {
            if let (Some(original), true) = (s.notice_of, !is_wanted(s.queue_id)) {
                if is_wanted(original) {
                    // The server's notice about this message: linked, and
                    // its own lines are under its own queue id.
                    story.notices.push(lossy(s.queue_id));
                    story.lines_total += 1;
                    if story.lines.len() < MAX_LINES {
                        story.lines.push(evidence_line(line));
                    }
                }
                return;
            }
        }
        if !event.queue_id().is_some_and(is_wanted) {
            return;
        }
        story.lines_total += 1;
        if story.lines.len() < MAX_LINES {
            story.lines.push(evidence_line(line));
        }
        match event {
            Event::Submission(s) => {
                let r = story.received.get_or_insert_with(Received::default);
                r.at.get_or_insert(s.at);
                fill(&mut r.account, s.account);
                fill(&mut r.service, s.service);
                fill(&mut r.envelope_from, s.envelope_from);
                fill(&mut r.subject, s.subject);
                fill(&mut r.message_id, s.message_id);
                if r.client.is_none() {
                    r.client = s.client.as_ref().map(client_text);
                }
                if let Some(rcpt) = s.recipient {
                    r.recipients.push(lossy(rcpt));
                }
                r.size = r.size.or(s.size);
                r.tls = r.tls.or(s.tls);
                r.bounce |= s.is_bounce;
                if r.notice_of.is_none() {
                    r.notice_of = s.notice_of.map(lossy);
                }
            }
            Event::Delivery(d) => {
                // `delay=` dates the arrival of mail queued before the log
                // (its lines here begin with a queue pass: no client).
                let retried = story.received.as_mut().filter(|r| r.client.is_none());
                if let (Some(r), Some(delay)) = (retried, delivery_delay(line)) {
                    let arrived = d.at.plus(-(delay.round() as i64));
                    if r.at.is_none_or(|at| arrived < at) {
                        r.at = Some(arrived);
                        r.at_from_delay = true;
                    }
                }
                story.deliveries.push(DeliveryRecord {
                    at: d.at,
                    recipient: lossy(d.recipient),
                    status: d.status,
                    dsn: d.dsn.map(lossy),
                    detail: lossy(d.detail),
                    relay: d.relay.map(lossy),
                });
            }
            _ => {}
        }
    })?;
    if story.lines_total == 0 {
        return Ok(None);
    }
    let reads_stdin = paths.iter().any(|p| p.as_os_str() == "-");
    if let (Some(received), false) = (&story.received, reads_stdin) {
        story.logins = login_context(received, paths, options)?;
    }
    Ok(Some(story))
}

fn fill(slot: &mut Option<String>, value: Option<&[u8]>) {
    if slot.is_none() {
        *slot = value.map(lossy);
    }
}

/// Second pass: logins of the sender's IP and account before the message.
fn login_context(
    received: &Received,
    paths: &[PathBuf],
    options: &ReadOptions,
) -> Result<LoginContext> {
    let Some(at) = received.at else {
        return Ok(LoginContext::default());
    };
    let since = at.plus(-CONTEXT_BEFORE_SECS);
    let ip = received
        .client
        .as_deref()
        .and_then(|c| c.parse::<std::net::IpAddr>().ok());
    let account = received.account.as_deref().map(str::to_ascii_lowercase);
    let mut context = LoginContext::default();
    engine::read_all(paths, options, |event, line| match event {
        Event::AuthFailure(f)
            if f.at >= since && f.at <= at && f.client.ip().is_some() && f.client.ip() == ip =>
        {
            context.failed_from_ip += 1;
            context.first_failure.get_or_insert(f.at);
            context.last_failure = Some(f.at);
            if context.failure_lines.len() < 3 {
                context.failure_lines.push(evidence_line(line));
            }
            if let Some(tried) = f.account.map(lossy) {
                if context.accounts_tried.len() < 20 && !context.accounts_tried.contains(&tried) {
                    context.accounts_tried.push(tried);
                }
            }
        }
        Event::AuthSuccess(s)
            if s.at >= since
                && s.at <= at
                && account
                    .as_deref()
                    .is_some_and(|a| lossy(s.account).eq_ignore_ascii_case(a)) =>
        {
            context.successes.push(LoginRecord {
                at: s.at,
                client: client_text(&s.client),
                service: lossy(s.service),
            });
            if context.successes.len() > 10 {
                context.successes.remove(0);
            }
        }
        _ => {}
    })?;
    Ok(context)
}
