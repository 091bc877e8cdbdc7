//! Dovecot's auth policy protocol, as Dovecot 2.2.27+ speaks it
//! (`auth_policy_server_url`): an HTTP POST per step of a login, its
//! command in the query (`?command=allow` before the password is checked
//! and again after a good one, `?command=report` with the outcome), its
//! body a JSON object of `auth_policy_request_attributes` — every value a
//! string — plus, in a report, `success` and `policy_reject` (booleans).
//! Dovecot 2.3 also adds `tls` (a boolean), so an attribute named `tls`
//! appears twice: keys are read last-wins, never refused for a duplicate.
//!
//! The answer is `{"status": N, "msg": "…"}`: N < 0 refuses the login
//! (`msg` is what the client is told), 0 lets it go on, N > 0 delays it by
//! N seconds. Dovecot does not read the answer to a report.

use std::net::IpAddr;

use serde_json::{Map, Value};

/// Which step of a login Dovecot asks about.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Command {
    /// May this login go on? (Before the password is checked, and after.)
    Allow,
    /// How it ended.
    Report,
}

impl Command {
    /// The command of a request's query string (`command=allow`, among
    /// other parameters when the configured URL has its own).
    pub fn of_query(query: Option<&str>) -> Option<Command> {
        let value = query?
            .split('&')
            .find_map(|pair| pair.strip_prefix("command="))?;
        match value {
            "allow" => Some(Command::Allow),
            "report" => Some(Command::Report),
            _ => None,
        }
    }
}

/// How a reported login ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// The password was right.
    Succeeded,
    /// The password was wrong, or the user unknown.
    Failed,
    /// A policy server (mailfuse) refused it: no password was judged.
    RefusedByPolicy,
}

/// What mailfuse reads of a request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Request {
    /// The login tried (`login`), if not empty.
    pub login: Option<String>,
    /// The client's address (`remote`), if it reads as one.
    pub remote: Option<IpAddr>,
    /// `imap`, `pop3`, `submission`, `smtp` (a mail server's SASL)…, lower-case.
    pub protocol: String,
    /// A report's outcome; `None` for `allow`.
    pub outcome: Option<Outcome>,
}

/// Why a request was not understood.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum BadRequest {
    #[error("the body is not a JSON object")]
    NotAnObject,
    #[error("a report without its boolean `success`")]
    NoOutcome,
}

impl Request {
    /// Reads a request's `body` for `command`. Bytes that are not UTF-8
    /// (a client's user name) are replaced, not refused.
    pub fn parse(command: Command, body: &[u8]) -> Result<Request, BadRequest> {
        let text = String::from_utf8_lossy(body);
        let Ok(Value::Object(fields)) = serde_json::from_str::<Value>(&text) else {
            return Err(BadRequest::NotAnObject);
        };
        let text_of = |key: &str| fields.get(key).and_then(Value::as_str).unwrap_or("");
        let login = Some(text_of("login").to_string()).filter(|login| !login.is_empty());
        let remote = text_of("remote")
            .parse::<IpAddr>()
            .ok()
            .map(|ip| ip.to_canonical());
        let outcome = match command {
            Command::Allow => None,
            Command::Report => Some(outcome(&fields)?),
        };
        Ok(Request {
            login,
            remote,
            protocol: text_of("protocol").to_ascii_lowercase(),
            outcome,
        })
    }
}

fn outcome(fields: &Map<String, Value>) -> Result<Outcome, BadRequest> {
    let refused = fields.get("policy_reject").and_then(Value::as_bool) == Some(true);
    match fields.get("success").and_then(Value::as_bool) {
        _ if refused => Ok(Outcome::RefusedByPolicy),
        Some(true) => Ok(Outcome::Succeeded),
        Some(false) => Ok(Outcome::Failed),
        None => Err(BadRequest::NoOutcome),
    }
}

/// The answer to a request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Reply {
    /// < 0 refuses, 0 lets the login go on.
    pub status: i32,
    /// What the client is told of a refusal.
    pub msg: &'static str,
}

impl Reply {
    /// The login goes on.
    pub const ACCEPT: Reply = Reply { status: 0, msg: "" };

    /// The login is refused, the client told `msg`.
    pub fn refuse(msg: &'static str) -> Reply {
        Reply { status: -1, msg }
    }

    /// The reply's JSON body.
    pub fn json(&self) -> String {
        serde_json::json!({"status": self.status, "msg": self.msg}).to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A report as Dovecot 2.3.19 sends it with the documented attributes.
    const FAILED: &str = r#"{"login":"sales@example.com","protocol":"imap","remote":"203.0.113.7","session_id":"p9kof+Fh1M5/AAAB","success":false,"policy_reject":false,"tls":false}"#;

    #[test]
    fn the_command_is_read_from_the_query_among_other_parameters() {
        assert_eq!(
            Command::of_query(Some("command=allow")),
            Some(Command::Allow)
        );
        assert_eq!(
            Command::of_query(Some("site=mx1&command=report")),
            Some(Command::Report)
        );
        assert_eq!(Command::of_query(Some("command=delete")), None);
        assert_eq!(Command::of_query(Some("xcommand=allow")), None);
        assert_eq!(Command::of_query(None), None);
    }

    #[test]
    fn dovecots_requests_are_read() {
        let failed = Request::parse(Command::Report, FAILED.as_bytes()).unwrap();
        assert_eq!(
            failed,
            Request {
                login: Some("sales@example.com".into()),
                remote: Some("203.0.113.7".parse().unwrap()),
                protocol: "imap".into(),
                outcome: Some(Outcome::Failed),
            }
        );
        let allow = r#"{"login":"sales@example.com","protocol":"IMAP","remote":"::ffff:203.0.113.7","tls":"secured","tls":false}"#;
        let allow = Request::parse(Command::Allow, allow.as_bytes()).unwrap();
        assert_eq!(allow.outcome, None);
        assert_eq!(allow.protocol, "imap");
        assert_eq!(allow.remote, Some("203.0.113.7".parse().unwrap()));
        let ours = FAILED.replace(r#""policy_reject":false"#, r#""policy_reject":true"#);
        let ours = Request::parse(Command::Report, ours.as_bytes()).unwrap();
        assert_eq!(ours.outcome, Some(Outcome::RefusedByPolicy));
        let good = FAILED.replace(r#""success":false"#, r#""success":true"#);
        let good = Request::parse(Command::Report, good.as_bytes()).unwrap();
        assert_eq!(good.outcome, Some(Outcome::Succeeded));
    }

    #[test]
    fn missing_or_odd_fields_are_absent_not_errors() {
        let odd = r#"{"login":"","remote":"unknown","protocol":7,"attrs":{"cos":"x"}}"#;
        let odd = Request::parse(Command::Allow, odd.as_bytes()).unwrap();
        assert_eq!(
            odd,
            Request {
                login: None,
                remote: None,
                protocol: String::new(),
                outcome: None,
            }
        );
        assert_eq!(
            Request::parse(Command::Report, b"{\"login\":\"a\"}"),
            Err(BadRequest::NoOutcome)
        );
    }

    #[test]
    fn hostile_bodies_never_panic() {
        let mut bodies: Vec<Vec<u8>> = [
            &b""[..],
            b"[]",
            b"null",
            b"\"login\"",
            b"{",
            b"{\"login\":\"\xff\xfe\",\"success\":false}",
            b"{\"login\":\"a\\u0000b\",\"remote\":\"1.2.3.4\\n\",\"success\":\"yes\"}",
            b"{\"login\":{\"nested\":[1,2,{}]},\"success\":false}",
        ]
        .iter()
        .map(|b| b.to_vec())
        .collect();
        bodies.push(format!("{}{}", "[".repeat(10_000), "]".repeat(10_000)).into_bytes());
        bodies.push((0..=255u8).cycle().take(4096).collect());
        for body in &bodies {
            for command in [Command::Allow, Command::Report] {
                let _ = Request::parse(command, body);
            }
        }
        let lossy = Request::parse(Command::Report, &bodies[5]).unwrap();
        assert_eq!(lossy.login.as_deref(), Some("\u{fffd}\u{fffd}"));
    }

    #[test]
    fn replies_are_dovecots_json() {
        let accept: Value = serde_json::from_str(&Reply::ACCEPT.json()).unwrap();
        assert_eq!(accept, serde_json::json!({"status": 0, "msg": ""}));
        let refused = Reply::refuse("locked \"now\"").json();
        let value: Value = serde_json::from_str(&refused).unwrap();
        assert_eq!(value["status"], -1);
        assert_eq!(value["msg"], "locked \"now\"");
    }
}
