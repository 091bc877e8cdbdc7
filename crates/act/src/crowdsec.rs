//! CrowdSec: blocks IPs as ban decisions of a CrowdSec Local API (LAPI),
//! which the bouncers already running on every host enforce.
//!
//! mailfuse logs in as a machine (a watcher: `cscli machines add`), with
//! its password from the secrets file, and pushes each block as an alert
//! carrying one decision — `ban` of scope `Ip`, for `block_for`, scenario
//! `mailfuse/<incident kind>` — as CrowdSec's own agent does. Unblocking
//! deletes this machine's active `mailfuse/…` decisions on the IP by id
//! (a machine may; deleting alerts is for trusted IPs only), never another
//! machine's or another scenario's.
//!
//! Checked against Debian 12's CrowdSec 1.4.6.

use std::net::IpAddr;
use std::time::Duration;

use mailfuse_detect::IncidentKind;
use reqwest::{Client, Method, Response, StatusCode, Url};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use tokio::sync::Mutex;

use crate::capability::{ActFuture, Action, BlockIp, Blocking};
use crate::message::clean;
use crate::ActError;

const ACTION: &str = "crowdsec";
/// What every scenario mailfuse pushes starts with.
const SCENARIO_PREFIX: &str = "mailfuse/";
/// The origin of a machine's own detections. `cscli decisions list`
/// without `--all` shows only decisions of origin `crowdsec` or `cscli`
/// (1.4): another origin would hide mailfuse's bans from it.
const ORIGIN: &str = "crowdsec";
/// How much of a reply is read at most: a listing of one IP's alerts, or
/// an error; past it the reply is refused, not waited for.
const REPLY_MAX: usize = 1 << 20;
/// How much of an error reply is quoted.
const REPLY_QUOTED: usize = 200;
/// Longest incident key copied into the alert (it names an account, from a log).
const KEY_MAX: usize = 200;

/// `[actions.crowdsec]`: the Local API and the machine mailfuse logs in as.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CrowdsecConfig {
    /// The Local API, as crowdsec's `api.server.listen_uri` (and the `url`
    /// of `cscli machines add`'s output) says: `http://127.0.0.1:8080/`;
    /// `https://…` when it serves TLS (certificate checked against the
    /// system's roots).
    #[serde(default = "default_url")]
    pub url: String,
    /// The machine's name (`cscli machines add mailfuse`).
    #[serde(default = "default_machine_id")]
    pub machine_id: String,
    /// The machine's password; the caller reads it from the secrets file.
    pub password: String,
    /// How long one request may take in all.
    #[serde(default = "default_timeout_secs")]
    pub timeout_secs: u64,
}

fn default_url() -> String {
    "http://127.0.0.1:8080/".into()
}

fn default_machine_id() -> String {
    "mailfuse".into()
}

/// Short: blocks run in watch's reading loop, and an API that does not
/// answer holds it up for that long.
fn default_timeout_secs() -> u64 {
    5
}

/// Keeps the password out of logs.
impl std::fmt::Debug for CrowdsecConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CrowdsecConfig")
            .field("url", &self.url)
            .field("machine_id", &self.machine_id)
            .field("password", &"<redacted>")
            .field("timeout_secs", &self.timeout_secs)
            .finish()
    }
}

/// A client of one Local API, logged in on first use; the token is kept
/// and renewed when the API no longer takes it (it lasts an hour).
pub struct Crowdsec {
    http: Client,
    /// The API's root, ending in `/`.
    base: Url,
    machine_id: String,
    password: String,
    /// Held for a whole request, so that an expired token is renewed once.
    token: Mutex<Option<String>>,
}

impl std::fmt::Debug for Crowdsec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Crowdsec")
            .field("url", &self.base.as_str())
            .field("machine_id", &self.machine_id)
            .finish()
    }
}

/// The machine's login (`POST /v1/watchers/login`).
#[derive(Serialize)]
struct Login<'a> {
    machine_id: &'a str,
    password: &'a str,
    /// What the machine may push, shown by `cscli machines list`.
    scenarios: Vec<String>,
}

#[derive(Deserialize)]
struct LoginReply {
    token: String,
}

/// An alert as `GET /v1/alerts` lists it: only what unblocking reads.
#[derive(Deserialize)]
struct ListedAlert {
    #[serde(default)]
    machine_id: String,
    #[serde(default)]
    decisions: Option<Vec<ListedDecision>>,
}

#[derive(Deserialize)]
struct ListedDecision {
    id: i64,
    #[serde(default)]
    scenario: String,
    #[serde(default)]
    scope: String,
    #[serde(default)]
    value: String,
    #[serde(default, rename = "type")]
    kind: String,
    /// Time left, as Go writes durations (`503h59m49.18s`); negative once
    /// it expired or was deleted (CrowdSec deletes by ending them now).
    #[serde(default)]
    duration: String,
}

/// One of this machine's bans still in force.
#[derive(Clone, Debug, PartialEq, Eq)]
struct OwnBan {
    id: i64,
    scenario: String,
}

impl Crowdsec {
    /// Checks the configuration and builds the client; nothing is sent
    /// until the first block.
    pub fn new(config: CrowdsecConfig) -> Result<Crowdsec, ActError> {
        let mut base = Url::parse(&config.url)
            .map_err(|e| error(format!("`url` {:?} is not a URL: {e}", config.url)))?;
        if !matches!(base.scheme(), "http" | "https") || base.host_str().is_none() {
            return Err(error(format!(
                "`url` {base} must be http://HOST:PORT/ or https://HOST:PORT/ (crowdsec's \
                 api.server.listen_uri)"
            )));
        }
        if base.query().is_some() {
            return Err(error(format!("`url` {base} must not have a query")));
        }
        if !base.path().ends_with('/') {
            let path = format!("{}/", base.path());
            base.set_path(&path);
        }
        if config.machine_id.trim().is_empty() {
            return Err(error(
                "`machine_id` is empty: name the machine of `cscli machines add`",
            ));
        }
        if config.password.is_empty() {
            return Err(error(
                "`password` is empty: set the machine's password in the secrets file",
            ));
        }
        if config.timeout_secs == 0 {
            return Err(error("`timeout_secs` must be at least 1"));
        }
        // Already installed (by us or by the program) is fine.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let http = Client::builder()
            // The API refuses a login without one (`bad user agent ''`);
            // `cscli machines list` shows it as the machine's version.
            .user_agent(concat!("mailfuse/", env!("CARGO_PKG_VERSION")))
            .timeout(Duration::from_secs(config.timeout_secs))
            // A connection per request: blocks are few and far between, and
            // a kept one the API closed meanwhile (a restart) would fail
            // the next block.
            .pool_max_idle_per_host(0)
            // The password must not follow a redirect elsewhere.
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| error(format!("HTTP client: {e}")))?;
        Ok(Crowdsec {
            http,
            base,
            machine_id: config.machine_id,
            password: config.password,
            token: Mutex::new(None),
        })
    }

    /// Bans `ip` for `secs` seconds under `scenario`, unless this machine
    /// has a ban of that scenario on it in force already (a block run again
    /// after a restart): whether it pushed one.
    pub async fn ban(
        &self,
        ip: IpAddr,
        secs: i64,
        scenario: &str,
        incident_key: &str,
        start: mailfuse_core::Timestamp,
    ) -> Result<bool, ActError> {
        if self
            .own_bans(ip)
            .await?
            .iter()
            .any(|ban| ban.scenario == scenario)
        {
            return Ok(false);
        }
        let alert = alert(ip, secs, scenario, incident_key, start);
        let (status, body) = self
            .authorized(Method::POST, "v1/alerts", &[], Some(&alert))
            .await?;
        if !status.is_success() {
            return Err(refused("the ban's alert", status, &body));
        }
        Ok(true)
    }

    /// Deletes this machine's `mailfuse/…` bans of `ip` still in force:
    /// how many there were.
    pub async fn lift(&self, ip: IpAddr) -> Result<usize, ActError> {
        let bans = self.own_bans(ip).await?;
        for ban in &bans {
            let path = format!("v1/decisions/{}", ban.id);
            let (status, body) = self.authorized(Method::DELETE, &path, &[], None).await?;
            if !status.is_success() {
                return Err(refused(
                    &format!("deleting decision {} ({})", ban.id, ban.scenario),
                    status,
                    &body,
                ));
            }
        }
        Ok(bans.len())
    }

    /// This machine's `mailfuse/…` bans of `ip` in force.
    async fn own_bans(&self, ip: IpAddr) -> Result<Vec<OwnBan>, ActError> {
        let ip = ip.to_string();
        let query = [("ip", ip.as_str()), ("has_active_decision", "true")];
        let (status, body) = self
            .authorized(Method::GET, "v1/alerts", &query, None)
            .await?;
        if !status.is_success() {
            return Err(refused("listing the IP's alerts", status, &body));
        }
        // An empty list is `null`.
        let alerts: Option<Vec<ListedAlert>> = serde_json::from_slice(&body).map_err(|e| {
            error(format!(
                "unexpected list of alerts from {} (is `url` a CrowdSec Local API?): {e}",
                self.base
            ))
        })?;
        Ok(own_bans(alerts.unwrap_or_default(), &self.machine_id, &ip))
    }

    /// Sends a request with the machine's token, logging in first if there
    /// is none and once more if the API refuses it (expired, or the API
    /// restarted: its signing key is new): the status and the reply.
    async fn authorized(
        &self,
        method: Method,
        path: &str,
        query: &[(&str, &str)],
        body: Option<&Value>,
    ) -> Result<(StatusCode, Vec<u8>), ActError> {
        let mut token = self.token.lock().await;
        let mut fresh = false;
        loop {
            let current = match token.as_ref() {
                Some(current) => current.clone(),
                None => {
                    fresh = true;
                    token.insert(self.login().await?).clone()
                }
            };
            let mut url = self.endpoint(path)?;
            if !query.is_empty() {
                url.query_pairs_mut().extend_pairs(query);
            }
            let mut request = self.http.request(method.clone(), url).bearer_auth(current);
            if let Some(body) = body {
                request = request.json(body);
            }
            let reply = request.send().await.map_err(|e| self.unreachable(e))?;
            let status = reply.status();
            let body = read(reply).await?;
            if status == StatusCode::UNAUTHORIZED && !fresh {
                *token = None;
                continue;
            }
            return Ok((status, body));
        }
    }

    /// Logs in as the machine: its token.
    async fn login(&self) -> Result<String, ActError> {
        let login = Login {
            machine_id: &self.machine_id,
            password: &self.password,
            scenarios: scenarios(),
        };
        let reply = self
            .http
            .post(self.endpoint("v1/watchers/login")?)
            .json(&login)
            .send()
            .await
            .map_err(|e| self.unreachable(e))?;
        let status = reply.status();
        let body = read(reply).await?;
        if status == StatusCode::UNAUTHORIZED || status == StatusCode::FORBIDDEN {
            return Err(error(format!(
                "CrowdSec refused the login of machine `{}`: {} (was it added with `cscli \
                 machines add {} --password …`, and is that password the secrets file's?)",
                clean(&self.machine_id, 100),
                reply_message(&body),
                clean(&self.machine_id, 100),
            )));
        }
        if !status.is_success() {
            return Err(refused("the login", status, &body));
        }
        let reply: LoginReply = serde_json::from_slice(&body).map_err(|e| {
            error(format!(
                "unexpected answer to the login from {} (is `url` a CrowdSec Local API?): {e}",
                self.base
            ))
        })?;
        Ok(reply.token)
    }

    fn endpoint(&self, path: &str) -> Result<Url, ActError> {
        self.base
            .join(path)
            .map_err(|e| error(format!("{}{path}: {e}", self.base)))
    }

    fn unreachable(&self, e: reqwest::Error) -> ActError {
        error(format!(
            "cannot reach CrowdSec's Local API at {}: {} (is crowdsec running, and `url` its \
             api.server.listen_uri?)",
            self.base,
            crate::chain(&e.without_url())
        ))
    }
}

impl Action for Crowdsec {
    fn block(&self) -> Option<&dyn BlockIp> {
        Some(self)
    }
}

impl BlockIp for Crowdsec {
    fn journal_name(&self) -> &'static str {
        "crowdsec.ban"
    }

    fn block<'a>(&'a self, blocking: Blocking<'a>) -> ActFuture<'a, String> {
        Box::pin(async move {
            let scenario = scenario(blocking.kind);
            let start = blocking.until.plus(-blocking.secs);
            let ip = blocking.ip.ip();
            let pushed = self
                .ban(ip, blocking.secs, &scenario, blocking.incident_key, start)
                .await?;
            Ok(if pushed {
                format!(
                    "{ip} banned by CrowdSec for {} ({scenario})",
                    blocking.duration
                )
            } else {
                format!("{ip} banned by CrowdSec already ({scenario})")
            })
        })
    }

    fn unblock(&self, ip: IpAddr) -> ActFuture<'_, Option<String>> {
        Box::pin(async move {
            Ok(match self.lift(ip).await? {
                0 => None,
                1 => Some("CrowdSec's ban deleted".to_string()),
                n => Some(format!("{n} CrowdSec bans deleted")),
            })
        })
    }
}

fn error(message: impl Into<String>) -> ActError {
    ActError::new(ACTION, message)
}

/// The scenario of a block for an incident of `kind`
/// (`mailfuse/password_guessing`); `mailfuse/block` when it is not known.
fn scenario(kind: Option<IncidentKind>) -> String {
    format!(
        "{SCENARIO_PREFIX}{}",
        kind.map_or("block", IncidentKind::name)
    )
}

/// Every scenario mailfuse may push, for the login.
fn scenarios() -> Vec<String> {
    IncidentKind::ALL
        .into_iter()
        .filter(|kind| kind.may_act())
        .map(|kind| scenario(Some(kind)))
        .collect()
}

/// The alert that carries a ban of `ip` for `secs` seconds from `start`:
/// the fields CrowdSec 1.4 requires of a machine's alert, and one decision,
/// which the API keeps as it is (its profiles decide only for alerts
/// without one).
fn alert(
    ip: IpAddr,
    secs: i64,
    scenario: &str,
    incident_key: &str,
    start: mailfuse_core::Timestamp,
) -> Value {
    let ip = ip.to_string();
    let start = start.to_string();
    let incident = clean(incident_key, KEY_MAX);
    json!([{
        "scenario": scenario,
        "scenario_hash": "",
        "scenario_version": "",
        "message": format!("mailfuse: {ip} blocked ({incident})"),
        "events_count": 1,
        "start_at": start,
        "stop_at": start,
        "capacity": 0,
        "leakspeed": "0",
        "simulated": false,
        "remediation": true,
        "events": [{
            "timestamp": start,
            "meta": [
                {"key": "source_ip", "value": ip},
                {"key": "mailfuse_incident", "value": incident},
            ],
        }],
        "source": {"scope": "Ip", "value": ip, "ip": ip},
        "decisions": [{
            "type": "ban",
            "scope": "Ip",
            "value": ip,
            "duration": format!("{}s", secs.max(1)),
            "origin": ORIGIN,
            "scenario": scenario,
        }],
    }])
}

/// The bans in `alerts` that `machine` pushed on `ip` under a `mailfuse/…`
/// scenario and that are in force.
fn own_bans(alerts: Vec<ListedAlert>, machine: &str, ip: &str) -> Vec<OwnBan> {
    alerts
        .into_iter()
        .filter(|alert| alert.machine_id == machine)
        .flat_map(|alert| alert.decisions.unwrap_or_default())
        .filter(|decision| {
            decision.scenario.starts_with(SCENARIO_PREFIX)
                && decision.kind == "ban"
                && decision.scope.eq_ignore_ascii_case("ip")
                && decision.value == ip
                && !decision.duration.starts_with('-')
        })
        .map(|decision| OwnBan {
            id: decision.id,
            scenario: decision.scenario,
        })
        .collect()
}

/// A reply's body, at most [`REPLY_MAX`] bytes.
async fn read(mut reply: Response) -> Result<Vec<u8>, ActError> {
    let mut body = Vec::new();
    loop {
        match reply.chunk().await {
            Ok(Some(chunk)) => {
                body.extend_from_slice(&chunk);
                if body.len() > REPLY_MAX {
                    return Err(error(format!(
                        "the Local API's reply is over {REPLY_MAX} bytes: refused"
                    )));
                }
            }
            Ok(None) => return Ok(body),
            Err(e) => {
                return Err(error(format!(
                    "reading the Local API's reply: {}",
                    crate::chain(&e.without_url())
                )))
            }
        }
    }
}

/// The error of a request the API answered with `status`.
fn refused(what: &str, status: StatusCode, body: &[u8]) -> ActError {
    error(format!(
        "the Local API refused {what}: {status}: {}",
        reply_message(body)
    ))
}

/// The `message` of an error reply (`{"message": "…"}`), else its start;
/// made safe to show.
fn reply_message(body: &[u8]) -> String {
    #[derive(Deserialize)]
    struct ErrorReply {
        message: String,
    }
    match serde_json::from_slice::<ErrorReply>(body) {
        Ok(reply) => clean(&reply.message, REPLY_QUOTED),
        Err(_) => clean(&String::from_utf8_lossy(body), REPLY_QUOTED),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(url: &str) -> CrowdsecConfig {
        CrowdsecConfig {
            url: url.into(),
            machine_id: "mailfuse".into(),
            password: "SECRET".into(),
            timeout_secs: 5,
        }
    }

    #[test]
    fn the_password_stays_out_of_debug_output() {
        let config = config("http://127.0.0.1:8080");
        assert!(!format!("{config:?}").contains("SECRET"));
        assert!(!format!("{:?}", Crowdsec::new(config).unwrap()).contains("SECRET"));
    }

    #[test]
    fn the_url_is_the_apis_root_with_or_without_its_slash() {
        for url in ["http://127.0.0.1:8080", "http://127.0.0.1:8080/"] {
            let crowdsec = Crowdsec::new(config(url)).unwrap();
            assert_eq!(
                crowdsec.endpoint("v1/alerts").unwrap().as_str(),
                "http://127.0.0.1:8080/v1/alerts"
            );
        }
        let behind_a_proxy = Crowdsec::new(config("https://lapi.example.test/crowdsec")).unwrap();
        assert_eq!(
            behind_a_proxy.endpoint("v1/alerts").unwrap().as_str(),
            "https://lapi.example.test/crowdsec/v1/alerts"
        );
    }

    #[test]
    fn bad_configuration_is_refused() {
        for url in ["127.0.0.1:8080", "ftp://h/", "not a url", "http://h/?x=1"] {
            assert!(Crowdsec::new(config(url)).is_err(), "{url}");
        }
        let mut no_machine = config("http://h/");
        no_machine.machine_id = " ".into();
        assert!(Crowdsec::new(no_machine).is_err());
        let mut no_password = config("http://h/");
        no_password.password = String::new();
        assert!(Crowdsec::new(no_password).is_err());
        let unknown = r#"{"url": "http://h/", "password": "p", "machine": "x"}"#;
        assert!(serde_json::from_str::<CrowdsecConfig>(unknown).is_err());
        let defaults: CrowdsecConfig = serde_json::from_str(r#"{"password": "p"}"#).unwrap();
        assert_eq!(defaults.url, "http://127.0.0.1:8080/");
        assert_eq!(defaults.machine_id, "mailfuse");
    }

    #[test]
    fn scenarios_are_named_after_the_incident_kind() {
        assert_eq!(
            scenario(Some(IncidentKind::PasswordGuessing)),
            "mailfuse/password_guessing"
        );
        assert_eq!(scenario(None), "mailfuse/block");
        assert_eq!(
            scenarios(),
            [
                "mailfuse/compromised_account",
                "mailfuse/password_guessing",
                "mailfuse/limit_exceeded"
            ]
        );
    }

    #[test]
    fn the_alert_carries_one_ban_for_the_whole_block() {
        let hostile = "compromised_account:evil\u{1b}[2J@example.test:1";
        let alert = alert(
            "2001:db8::7".parse().unwrap(),
            1_814_400,
            "mailfuse/compromised_account",
            hostile,
            mailfuse_core::Timestamp(1_700_000_000),
        );
        let alert = &alert[0];
        assert_eq!(alert["start_at"], "2023-11-14T22:13:20Z");
        assert_eq!(alert["source"]["value"], "2001:db8::7");
        let decision = &alert["decisions"][0];
        assert_eq!(decision["duration"], "1814400s");
        assert_eq!(decision["origin"], "crowdsec");
        assert_eq!(decision["scenario"], "mailfuse/compromised_account");
        assert_eq!(decision["value"], "2001:db8::7");
        assert!(!alert.to_string().contains('\u{1b}'), "{alert}");
    }

    /// `GET /v1/alerts` as CrowdSec 1.4.6 answers it (abridged).
    #[test]
    fn only_this_machines_mailfuse_bans_in_force_are_its_own() {
        let listed = r#"[
          {"machine_id": "mailfuse", "decisions": [
            {"id": 7, "scenario": "mailfuse/password_guessing", "scope": "Ip", "value": "192.0.2.7", "type": "ban", "duration": "503h59m49.1s", "origin": "crowdsec"},
            {"id": 6, "scenario": "mailfuse/password_guessing", "scope": "Ip", "value": "192.0.2.7", "type": "ban", "duration": "-4.39s", "origin": "crowdsec"},
            {"id": 5, "scenario": "mailfuse/password_guessing", "scope": "Range", "value": "192.0.2.0/24", "type": "ban", "duration": "3h", "origin": "crowdsec"},
            {"id": 4, "scenario": "mailfuse/password_guessing", "scope": "Ip", "value": "192.0.2.7", "type": "captcha", "duration": "3h", "origin": "crowdsec"}]},
          {"machine_id": "mx2-mailfuse", "decisions": [
            {"id": 3, "scenario": "mailfuse/password_guessing", "scope": "Ip", "value": "192.0.2.7", "type": "ban", "duration": "3h", "origin": "crowdsec"}]},
          {"machine_id": "mailfuse", "decisions": [
            {"id": 2, "scenario": "crowdsecurity/ssh-bf", "scope": "Ip", "value": "192.0.2.7", "type": "ban", "duration": "3h", "origin": "crowdsec"}]},
          {"machine_id": "mailfuse", "decisions": null}
        ]"#;
        let alerts: Option<Vec<ListedAlert>> = serde_json::from_str(listed).unwrap();
        assert_eq!(
            own_bans(alerts.unwrap(), "mailfuse", "192.0.2.7"),
            [OwnBan {
                id: 7,
                scenario: "mailfuse/password_guessing".into()
            }]
        );
        let none: Option<Vec<ListedAlert>> = serde_json::from_str("null").unwrap();
        assert!(none.is_none());
    }

    #[test]
    fn error_replies_are_quoted_safely() {
        assert_eq!(
            reply_message(br#"{"code":401,"message":"incorrect Username or Password"}"#),
            "incorrect Username or Password"
        );
        let hostile = reply_message(b"<html>\x1b[31mbad gateway</html>");
        assert!(!hostile.contains('\u{1b}'), "{hostile}");
    }
}
