//! Dovecot's auth policy server in `watch` (`[watch.auth_policy]`):
//! Dovecot asks it before each login (IMAP, POP3, submission, and the
//! SASL it serves Postfix or Exim) and reports how each ended.
//!
//! - **Refuses** the logins of accounts mailfuse locked and of IPs it
//!   blocked, read from the state database at each request (its own
//!   connection): a lock counts from the moment it is written, an unlock
//!   from the CLI or the dashboard at once. Allow-listed accounts and
//!   networks are never refused, nor an address the safety rules protect
//!   (loopback never; a private one only where `[safety] blockable` lists
//!   it), whatever the store holds.
//! - **Counts** the reported logins: each becomes an `AuthFailure` or
//!   `AuthSuccess` event, sent over a bounded channel to the watch loop,
//!   which hands it to its one detector as it does a log line (the line:
//!   `auth-policy: user=<…> rip=… protocol=… failed`). Guessing is then
//!   seen without any auth logging. Protocols whose logins a log that watch
//!   reads has already (`logged_protocols`: `smtp` by default, the mail
//!   server's SASL, which Postfix and Exim log) are not counted twice; nor
//!   are logins mailfuse itself refused (no password was judged).
//!
//! Never in the way of logins: a request it cannot judge (state unreadable,
//! slower than [`JUDGE_WITHIN`]) is let through, and when watch is down
//! Dovecot lets logins through itself (`auth_policy_reject_on_fail = no`,
//! its default).

mod protocol;

use std::net::IpAddr;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender, TrySendError};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, Result};
use axum::body::to_bytes;
use axum::extract::{Request as HttpRequest, State};
use axum::http::header::CONTENT_TYPE;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use mailfuse_core::safety::Safety;
use mailfuse_core::{AuthFailure, AuthFailureKind, AuthSuccess, Client, Event, Timestamp};
use mailfuse_store::Store;
use subtle::ConstantTimeEq;
use tracing::{debug, info, warn};

use crate::config::{AllowConfig, AuthPolicyConfig};
use protocol::{Command, Outcome, Reply, Request};

/// Largest request body read (Dovecot's are a few hundred bytes).
const MAX_BODY: usize = 64 * 1024;
/// How long a client may take to send its body.
const READ_WITHIN: Duration = Duration::from_secs(2);
/// How long judging a login may take before it is let through (Dovecot
/// waits 2 s by default: `auth_policy_server_timeout_msecs`).
pub const JUDGE_WITHIN: Duration = Duration::from_secs(1);
/// Reported logins waiting for the watch loop at most; more are dropped.
const QUEUED_LOGINS: usize = 10_000;
/// Reported logins handed to the detector per poll at most.
const LOGINS_PER_POLL: usize = 4096;

/// What a locked account's client is told.
const LOCKED: &str = "This account is locked after suspicious activity; contact your administrator";
/// What a blocked IP's client is told.
const BLOCKED: &str =
    "Logins from your address are blocked after an attack; contact your administrator";

/// The running server, as the watch loop sees it: the logins reported.
pub struct AuthPolicy {
    logins: Receiver<ReportedLogin>,
}

impl AuthPolicy {
    /// Listens as `config` says, reading locks and blocks from the state
    /// database at `state` (opened by watch already: its schema is there);
    /// in a `dry_run`, refusing nothing.
    pub fn start(
        config: &AuthPolicyConfig,
        state: &Path,
        allow: AllowConfig,
        safety: Safety,
        dry_run: bool,
    ) -> Result<AuthPolicy> {
        let store = Store::open(state)
            .with_context(|| format!("cannot open {} for the auth policy", state.display()))?;
        let (sender, logins) = sync_channel(QUEUED_LOGINS);
        let server = Arc::new(Server {
            store: Mutex::new(store),
            allow,
            safety,
            api_key: config.api_key.clone(),
            logged_protocols: config.logged_protocols.clone(),
            logins: sender,
            dropped: AtomicU64::new(0),
            dry_run,
        });
        let app = Router::new().route("/", post(answer)).with_state(server);
        let bound = crate::metrics::spawn_server(
            "auth policy",
            "watch.auth_policy.listen",
            config.listen,
            app,
        )?;
        info!(%bound, "serving Dovecot's auth policy (auth_policy_server_url = http://{bound}/)");
        Ok(AuthPolicy { logins })
    }

    /// Hands the logins reported since the last call to `on_login`, as the
    /// files' lines are handed out: the event and its line.
    pub fn drain(&self, on_login: &mut dyn FnMut(&Event<'_>, &[u8])) {
        for login in self.logins.try_iter().take(LOGINS_PER_POLL) {
            on_login(&login.event(), login.line.as_bytes());
        }
    }
}

/// A login Dovecot reported, owned until the watch loop takes it.
#[derive(Clone, Debug, PartialEq, Eq)]
struct ReportedLogin {
    at: Timestamp,
    /// Always there for a success.
    account: Option<String>,
    ip: Option<IpAddr>,
    /// As the Dovecot log parser names it (`IMAP`, `SMTP`…).
    service: String,
    succeeded: bool,
    /// The evidence line: says it came from the auth policy.
    line: String,
}

impl ReportedLogin {
    /// The login `request` reports at `at`, if it is one to count: not one
    /// mailfuse refused, not one without a login when it succeeded, not a
    /// login holding control characters (no log line would hold one).
    fn of(request: &Request, at: Timestamp) -> Option<ReportedLogin> {
        let succeeded = match request.outcome? {
            Outcome::Succeeded => true,
            Outcome::Failed => false,
            Outcome::RefusedByPolicy => return None,
        };
        let account = request.login.clone();
        if (succeeded && account.is_none())
            || account
                .as_deref()
                .is_some_and(|login| login.chars().any(char::is_control))
        {
            return None;
        }
        let line = format!(
            "auth-policy: user=<{}> rip={} protocol={} {}",
            account.as_deref().unwrap_or(""),
            request
                .remote
                .map_or_else(|| "unknown".to_string(), |ip| ip.to_string()),
            request.protocol,
            if succeeded { "logged in" } else { "failed" }
        );
        Some(ReportedLogin {
            at,
            account,
            ip: request.remote,
            service: service_name(&request.protocol),
            succeeded,
            line,
        })
    }

    fn event(&self) -> Event<'_> {
        let client = self.ip.map_or(Client::Unknown, Client::Ip);
        let service = self.service.as_bytes();
        match (&self.account, self.succeeded) {
            (Some(account), true) => Event::AuthSuccess(AuthSuccess {
                at: self.at,
                client,
                account: account.as_bytes(),
                service,
            }),
            (account, _) => Event::AuthFailure(AuthFailure {
                at: self.at,
                client,
                account: account.as_deref().map(str::as_bytes),
                service,
                // Dovecot says only that the login failed: a wrong password
                // or an unknown user, both guesses.
                kind: AuthFailureKind::BadPassword,
                attempts: 1,
            }),
        }
    }
}

/// Dovecot's protocol as the Dovecot log parser names the service
/// (`submission-login` logs in to `SMTP`).
fn service_name(protocol: &str) -> String {
    const NAMES: [(&str, &str); 4] = [
        ("submission", "SMTP"),
        ("managesieve", "SIEVE"),
        ("sieve", "SIEVE"),
        ("", "unknown"),
    ];
    NAMES
        .iter()
        .find(|(name, _)| *name == protocol)
        .map_or_else(
            || protocol.to_ascii_uppercase(),
            |(_, service)| service.to_string(),
        )
}

/// Why a login is refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Refusal {
    LockedAccount,
    BlockedIp,
}

impl Refusal {
    fn message(self) -> &'static str {
        match self {
            Refusal::LockedAccount => LOCKED,
            Refusal::BlockedIp => BLOCKED,
        }
    }
}

/// The locks and blocks a login is judged by.
trait LoginState {
    fn is_locked(&self, account: &str) -> Result<bool>;
    fn is_blocked(&self, ip: IpAddr) -> Result<bool>;
}

/// The state database at one moment.
struct StoreAt<'a>(&'a Store, Timestamp);

impl LoginState for StoreAt<'_> {
    fn is_locked(&self, account: &str) -> Result<bool> {
        Ok(self.0.is_locked(account)?)
    }
    fn is_blocked(&self, ip: IpAddr) -> Result<bool> {
        Ok(self.0.is_blocked(ip, self.1)?)
    }
}

/// What the server holds.
struct Server {
    /// Its own connection to the state database.
    store: Mutex<Store>,
    allow: AllowConfig,
    safety: Safety,
    api_key: Option<String>,
    logged_protocols: Vec<String>,
    logins: SyncSender<ReportedLogin>,
    dropped: AtomicU64,
    /// `[watch] dry_run`: a login it would refuse is let through (and
    /// logged), as `policy` answers `DUNNO`.
    dry_run: bool,
}

impl Server {
    /// Whether the request carries the configured key, if there is one.
    fn authorized(&self, headers: &HeaderMap) -> bool {
        let Some(key) = &self.api_key else {
            return true;
        };
        headers
            .get("x-api-key")
            .is_some_and(|sent| bool::from(sent.as_bytes().trim_ascii().ct_eq(key.as_bytes())))
    }

    /// Why `request`'s login is refused, if it is.
    fn judge(&self, request: &Request, state: &impl LoginState) -> Result<Option<Refusal>> {
        if let Some(login) = &request.login {
            if !self.allow.allows_account(login) && state.is_locked(login)? {
                return Ok(Some(Refusal::LockedAccount));
            }
        }
        if let Some(ip) = request.remote {
            let blockable = !self.allow.allows_ip(ip) && self.safety.check(ip).is_ok();
            if blockable && state.is_blocked(ip)? {
                return Ok(Some(Refusal::BlockedIp));
            }
        }
        Ok(None)
    }

    /// Judges `request` against the state database now.
    fn judge_now(&self, request: &Request) -> Result<Option<Refusal>> {
        let store = self
            .store
            .lock()
            .map_err(|_| anyhow::anyhow!("a request failed while holding the store"))?;
        let refusal = self.judge(request, &StoreAt(&store, crate::source::now()))?;
        if let (true, Some(refusal)) = (self.dry_run, refusal) {
            info!(
                login = request.login.as_deref().unwrap_or(""),
                "auth policy: dry run: would refuse the login: {refusal:?}"
            );
            return Ok(None);
        }
        Ok(refusal)
    }

    /// Sends the login `request` reports to the watch loop, unless its
    /// protocol is counted from a log already.
    fn report(&self, request: &Request) {
        let logged = self
            .logged_protocols
            .iter()
            .any(|p| p == "*" || p.eq_ignore_ascii_case(&request.protocol));
        if logged {
            return;
        }
        let Some(login) = ReportedLogin::of(request, crate::source::now()) else {
            return;
        };
        if let Err(TrySendError::Full(_)) = self.logins.try_send(login) {
            let dropped = self.dropped.fetch_add(1, Ordering::Relaxed) + 1;
            if dropped == 1 || dropped.is_multiple_of(1000) {
                warn!(
                    dropped,
                    "watch is behind: logins Dovecot reported are dropped, not counted"
                );
            }
        }
    }
}

fn reply(reply: Reply) -> Response {
    ([(CONTENT_TYPE, "application/json")], reply.json()).into_response()
}

async fn answer(State(server): State<Arc<Server>>, request: HttpRequest) -> Response {
    let (parts, body) = request.into_parts();
    if !server.authorized(&parts.headers) {
        warn!("auth policy request without the right X-API-Key: refused (Dovecot then lets the login through)");
        return (
            StatusCode::UNAUTHORIZED,
            "send the key of watch.auth_policy.api_key: auth_policy_server_api_header = X-API-Key: KEY\n",
        )
            .into_response();
    }
    let Some(command) = Command::of_query(parts.uri.query()) else {
        return (
            StatusCode::BAD_REQUEST,
            "?command=allow or ?command=report\n",
        )
            .into_response();
    };
    let body = match tokio::time::timeout(READ_WITHIN, to_bytes(body, MAX_BODY)).await {
        Ok(Ok(body)) => body,
        Ok(Err(_)) => return (StatusCode::PAYLOAD_TOO_LARGE, "body too large\n").into_response(),
        Err(_) => return (StatusCode::REQUEST_TIMEOUT, "body too slow\n").into_response(),
    };
    let request = match Request::parse(command, &body) {
        Ok(request) => request,
        Err(e) => {
            debug!("auth policy request not understood: {e}");
            return (StatusCode::BAD_REQUEST, format!("{e}\n")).into_response();
        }
    };
    if command == Command::Report {
        server.report(&request);
        return reply(Reply::ACCEPT);
    }
    let judging = server.clone();
    let asked = request.clone();
    let judged = tokio::time::timeout(
        JUDGE_WITHIN,
        tokio::task::spawn_blocking(move || judging.judge_now(&asked)),
    )
    .await;
    let login = request.login.as_deref().unwrap_or("");
    let ip = request.remote.map(|ip| ip.to_string()).unwrap_or_default();
    match judged {
        Ok(Ok(Ok(None))) => reply(Reply::ACCEPT),
        Ok(Ok(Ok(Some(refusal)))) => {
            info!(
                login,
                ip,
                protocol = request.protocol,
                "auth policy: login refused: {refusal:?}"
            );
            reply(Reply::refuse(refusal.message()))
        }
        Ok(Ok(Err(e))) => {
            warn!(
                login,
                ip, "auth policy: cannot read the state ({e:#}): login let through"
            );
            reply(Reply::ACCEPT)
        }
        Ok(Err(e)) => {
            warn!(
                login,
                ip, "auth policy: judging failed ({e}): login let through"
            );
            reply(Reply::ACCEPT)
        }
        Err(_) => {
            warn!(
                login,
                ip, "auth policy: the state took longer than {JUDGE_WITHIN:?}: login let through"
            );
            reply(Reply::ACCEPT)
        }
    }
}

#[cfg(test)]
mod tests;
