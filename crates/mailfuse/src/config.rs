//! The configuration file of `watch` (and `status`, `unlock`, `unblock`,
//! `serve`):
//! TOML, with passwords in a separate secrets file that only root may read.
//!
//! Loading collects every problem it finds, each with the key's path
//! (`actions.email.port: invalid type…`), so `mailfuse check-config`
//! reports them all at once rather than one per run.

use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use mailfuse_act::{ActionName, ActionSections, ACTION_NAMES};
use mailfuse_core::canary::Canaries;
use mailfuse_core::net::Cidr;
use mailfuse_core::safety::Safety;
pub use mailfuse_core::time::describe_duration;
use mailfuse_core::time::deserialize_duration;
use mailfuse_detect::DetectConfig;
use mailfuse_limits::{LimitRules, LimitsConfig};
use serde::de::DeserializeOwned;
use serde::Deserialize;
use toml::{Table, Value};

/// Where `watch` looks for its configuration by default.
pub const DEFAULT_PATH: &str = "/etc/mailfuse/mailfuse.toml";

/// The whole configuration.
#[derive(Debug)]
pub struct Config {
    pub watch: WatchConfig,
    /// The detectors' thresholds; `detect.safety` holds the `[safety]`
    /// section's rules, with this host's addresses for the commands that
    /// run on the mail server.
    pub detect: DetectConfig,
    pub allow: AllowConfig,
    pub actions: ActionsConfig,
    /// `mailfuse policy`'s settings (built-in defaults when absent).
    pub policy: mailfuse_policy::PolicyConfig,
    /// The sending limits, `[limits]`: watch's `limit_exceeded` detector
    /// (also in `detect.limits`, resolved) and policy enforce the same
    /// ones. Absent: the detector is off and policy uses its built-in
    /// limits ([`Config::policy_limits`]).
    pub limits: Option<LimitsConfig>,
    pub web: WebConfig,
}

/// What to do about incidents. Each action runs when its section is
/// present; `compromised_account`, `password_guessing`, `limit_exceeded`,
/// `suspicious_activity` and `misconfigured_client` may narrow which run for
/// which kind of incident.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ActionsConfig {
    /// How long an attacking IP stays blocked (`21d`): spammers drop their
    /// IPs, which may later belong to someone legitimate.
    #[serde(
        default = "default_block_for",
        deserialize_with = "deserialize_duration"
    )]
    pub block_for: i64,
    /// Incidents detected longer ago than this (`1h`) — found while
    /// catching up on old log lines — are recorded but not acted on.
    #[serde(
        default = "default_act_within",
        deserialize_with = "deserialize_duration"
    )]
    pub act_within: i64,
    /// Actions for a hijacked account (default: every configured one).
    pub compromised_account: Option<Vec<ActionName>>,
    /// Actions for password guessing (default: every configured one; there
    /// is no account to lock).
    pub password_guessing: Option<Vec<ActionName>>,
    /// Actions for an account over its sending limit (`[limits]`);
    /// default: the alerts only. The account is locked when a lock action
    /// is listed; its IPs — often the office's — are never blocked for this.
    pub limit_exceeded: Option<Vec<ActionName>>,
    /// Alerts for suspicious activity, the tier below a hijack (default:
    /// every alert; `[]` silences it). It never locks or blocks.
    pub suspicious_activity: Option<Vec<ActionName>>,
    /// Alerts for a misconfigured client (a stale password; default: every
    /// alert). It never locks or blocks.
    pub misconfigured_client: Option<Vec<ActionName>>,
    /// The actions' own sections (`[actions.kerio]`…), one per action
    /// `mailfuse_act` registers; read apart from the settings above.
    #[serde(skip)]
    pub sections: ActionSections,
}

/// An absent `[actions]`: the defaults its fields' attributes name (a
/// derived `Default` would make `block_for` and `act_within` zero, and
/// policy's locks would be skipped as too old once a second had passed).
impl Default for ActionsConfig {
    fn default() -> Self {
        ActionsConfig::deserialize(Value::Table(Table::new()))
            .unwrap_or_else(|e| unreachable!("an empty [actions] is valid: {e}"))
    }
}

fn default_block_for() -> i64 {
    21 * 86_400
}

fn default_act_within() -> i64 {
    3600
}

/// What to follow and where to keep state.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WatchConfig {
    /// Log files to follow, or directories (Kerio's `store/logs`: its
    /// `mail.log`, `security.log` and `audit.log`). Required unless the
    /// file is for `mailfuse policy` only.
    #[serde(default)]
    pub logs: Vec<PathBuf>,
    /// The state database (created if missing).
    #[serde(default = "default_state")]
    pub state: PathBuf,
    /// How often the logs are checked for new lines, in milliseconds.
    #[serde(default = "default_poll_ms")]
    pub poll_ms: u64,
    /// How often progress is saved, in seconds (and after every incident).
    #[serde(default = "default_save_secs")]
    pub save_every_secs: u64,
    /// Only log and alert: lock, hold and block nothing.
    #[serde(default)]
    pub dry_run: bool,
    /// Time zone of local timestamps (IANA name or offset); default:
    /// derived from Kerio Queue-IDs, else UTC.
    pub timezone: Option<String>,
    /// The secrets file (passwords), readable by its owner only.
    pub secrets: Option<PathBuf>,
    /// The mail server's name in alerts (default: this machine's host name).
    pub hostname: Option<String>,
    /// Where to serve Prometheus metrics (`127.0.0.1:9187`); none: off.
    pub metrics_listen: Option<SocketAddr>,
    /// Syslog received over the network from mail servers.
    #[serde(default)]
    pub syslog: SyslogConfig,
    /// Dovecot's auth policy server, when the section is present.
    pub auth_policy: Option<AuthPolicyConfig>,
    /// The systemd journal, followed when the section is present.
    pub journal: Option<JournalConfig>,
}

/// `[watch.journal]`: the systemd journal, followed through a child
/// `journalctl --follow`, for systems whose mail logs go only there.
/// Without `directory` or `files`, this machine's journal.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JournalConfig {
    /// Units whose records to read (`journalctl --unit`, globs allowed:
    /// `postfix@-.service`, `dovecot.service`); none: every unit.
    #[serde(default)]
    pub units: Vec<String>,
    /// Syslog identifiers whose records to read (`journalctl
    /// --identifier`, exact: `postfix/smtpd`); with `units` too, a record
    /// must match both, as journalctl matches them.
    #[serde(default)]
    pub identifiers: Vec<String>,
    /// A journal directory to read instead of this machine's
    /// (`journalctl --directory`: systemd-journal-remote's output).
    pub directory: Option<PathBuf>,
    /// Journal files to read instead (`journalctl --file`).
    #[serde(default)]
    pub files: Vec<PathBuf>,
}

/// `[watch.auth_policy]`: watch answers Dovecot's auth policy requests
/// (`auth_policy_server_url`): it refuses the logins of locked accounts and
/// blocked IPs, and counts the logins Dovecot reports.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthPolicyConfig {
    /// Where to listen; loopback by default (Dovecot runs on this server).
    #[serde(default = "default_auth_policy_listen")]
    pub listen: SocketAddr,
    /// The key Dovecot sends as `X-API-Key` (`auth_policy_server_api_header`),
    /// in the secrets file; required beyond loopback.
    pub api_key: Option<String>,
    /// Protocols whose reported logins are not counted, as a log watch reads
    /// has them already: `smtp` is Postfix's or Exim's SASL, which they log.
    /// `["*"]`: count none (watch follows Dovecot's own log).
    #[serde(default = "default_logged_protocols")]
    pub logged_protocols: Vec<String>,
}

fn default_auth_policy_listen() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 10041))
}

fn default_logged_protocols() -> Vec<String> {
    vec!["smtp".to_string()]
}

/// `[watch.syslog]`: mail servers sending their logs to watch (RFC 3164 or
/// RFC 5424; over UDP, TCP with RFC 6587 framing, or TLS per RFC 5425).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SyslogConfig {
    /// Addresses to receive datagrams on (`0.0.0.0:514`).
    #[serde(default)]
    pub udp: Vec<SocketAddr>,
    /// Addresses to accept TCP connections on (`0.0.0.0:514`).
    #[serde(default)]
    pub tcp: Vec<SocketAddr>,
    /// Addresses to accept TLS connections on (`0.0.0.0:6514`).
    #[serde(default)]
    pub tls: Vec<SocketAddr>,
    /// The PEM certificate chain TLS presents (required with `tls`).
    pub tls_certificate: Option<PathBuf>,
    /// The PEM private key of `tls_certificate`.
    pub tls_key: Option<PathBuf>,
    /// Networks that may send; others are refused and counted. Default:
    /// loopback only.
    #[serde(default = "loopback")]
    pub allow: Vec<Cidr>,
    /// Most TCP and TLS connections at once; more are refused.
    #[serde(default = "default_max_connections")]
    pub max_connections: usize,
    /// The TLS configuration read from `tls_certificate` and `tls_key`
    /// (read with the file, so a bad one is a problem at start).
    #[serde(skip)]
    pub tls_config: Option<std::sync::Arc<rustls::ServerConfig>>,
}

impl SyslogConfig {
    /// Whether any listener is configured.
    pub fn listens(&self) -> bool {
        !(self.udp.is_empty() && self.tcp.is_empty() && self.tls.is_empty())
    }
}

impl Default for SyslogConfig {
    fn default() -> Self {
        SyslogConfig {
            udp: Vec::new(),
            tcp: Vec::new(),
            tls: Vec::new(),
            tls_certificate: None,
            tls_key: None,
            allow: loopback(),
            max_connections: default_max_connections(),
            tls_config: None,
        }
    }
}

fn loopback() -> Vec<Cidr> {
    ["127.0.0.0/8", "::1/128"]
        .iter()
        .filter_map(|cidr| cidr.parse().ok())
        .collect()
}

fn default_max_connections() -> usize {
    256
}

/// `mailfuse serve`: the dashboard over the state database.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebConfig {
    /// Where to listen; localhost by default (put a TLS proxy in front, or
    /// set `tls_certificate` and `tls_key`, to reach it from elsewhere).
    #[serde(default = "default_web_listen")]
    pub listen: SocketAddr,
    /// The token that logs in to make changes (in the secrets file).
    pub token: Option<String>,
    /// Show the state, change nothing (no buttons; changes refused).
    #[serde(default)]
    pub read_only: bool,
    /// Host names the dashboard may be reached by (`mail.example.com`);
    /// IP addresses and `localhost` always may. Any other `Host:` is
    /// refused, so a web page cannot reach it by DNS rebinding.
    #[serde(default)]
    pub hosts: Vec<String>,
    /// The PEM certificate chain to serve HTTPS with (with `tls_key`);
    /// plain HTTP without.
    pub tls_certificate: Option<PathBuf>,
    /// The PEM private key of `tls_certificate`.
    pub tls_key: Option<PathBuf>,
    /// Login attempts a minute from one client address (also the burst);
    /// more are answered 429 until the budget refills.
    #[serde(default = "default_login_attempts")]
    pub login_attempts: u32,
    /// Login attempts a minute from all clients together (also the burst):
    /// what guessers from many addresses get at most.
    #[serde(default = "default_login_attempts_global")]
    pub login_attempts_global: u32,
    /// Seconds a client has to send a request's headers, and again its
    /// body (`"10s"`); a connection that takes longer is closed.
    #[serde(
        default = "default_request_timeout",
        deserialize_with = "deserialize_duration"
    )]
    pub request_timeout: i64,
    /// The TLS configuration read from `tls_certificate` and `tls_key`
    /// (read with the file, so a bad one is a problem at start).
    #[serde(skip)]
    pub tls_config: Option<std::sync::Arc<rustls::ServerConfig>>,
}

fn default_web_listen() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 8025))
}

fn default_login_attempts() -> u32 {
    5
}

fn default_login_attempts_global() -> u32 {
    60
}

fn default_request_timeout() -> i64 {
    10
}

impl Default for WebConfig {
    fn default() -> Self {
        WebConfig {
            listen: default_web_listen(),
            token: None,
            read_only: false,
            hosts: Vec::new(),
            tls_certificate: None,
            tls_key: None,
            login_attempts: default_login_attempts(),
            login_attempts_global: default_login_attempts_global(),
            request_timeout: default_request_timeout(),
            tls_config: None,
        }
    }
}

fn default_state() -> PathBuf {
    PathBuf::from("/var/lib/mailfuse/state.db")
}

fn default_poll_ms() -> u64 {
    250
}

fn default_save_secs() -> u64 {
    5
}

/// Accounts and networks never acted against (alerts still name them).
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AllowConfig {
    #[serde(default)]
    pub accounts: Vec<String>,
    #[serde(default)]
    pub networks: Vec<Cidr>,
}

impl AllowConfig {
    pub fn allows_account(&self, account: &str) -> bool {
        self.accounts
            .iter()
            .any(|a| a.eq_ignore_ascii_case(account))
    }

    pub fn allows_ip(&self, ip: std::net::IpAddr) -> bool {
        self.networks.iter().any(|n| n.contains(ip))
    }
}

/// `[canary]`: trap addresses no one writes to; an authenticated message
/// to one is a hijack (watch locks on the log line, policy at RCPT).
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct CanaryConfig {
    /// Whole addresses (`local@domain`), any case.
    #[serde(default)]
    recipients: Canaries,
}

/// `[safety]`: what mailfuse never blocks nor advises to block besides
/// loopback, private, link-local and carrier-grade NAT addresses (see
/// [`mailfuse_core::safety`]), and which of those it may block after all.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SafetyConfig {
    /// The mail server's own addresses besides its interfaces' (a public
    /// address NAT maps to it, a webmail host submitting for its users):
    /// never blocked, and mail an account submits from them is attributed
    /// to the account's webmail login.
    #[serde(default)]
    pub server_addresses: Vec<Cidr>,
    /// Protected networks mailfuse may block all the same (a guest Wi-Fi,
    /// a VPN pool); loopback and `0.0.0.0` never are.
    #[serde(default)]
    pub blockable: Vec<Cidr>,
}

impl SafetyConfig {
    /// The rules, knowing the server by `host` (its interfaces' addresses,
    /// or none) and the configured addresses.
    fn rules(self, host: Vec<Cidr>) -> Safety {
        let mut server = self.server_addresses;
        server.extend(host);
        Safety::new(server, self.blockable)
    }
}

/// One problem in the configuration.
#[derive(Debug, PartialEq, Eq)]
pub struct Problem {
    /// The key's path (`watch.logs`), or the file when the problem is the file.
    pub path: String,
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path, self.message)
    }
}

/// Every problem found, for the error message.
#[derive(Debug)]
pub struct Problems(pub Vec<Problem>);

impl fmt::Display for Problems {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.0.len();
        writeln!(
            f,
            "{n} problem{} in the configuration:",
            if n == 1 { "" } else { "s" }
        )?;
        for problem in &self.0 {
            writeln!(f, "  {problem}")?;
        }
        Ok(())
    }
}

impl std::error::Error for Problems {}

/// Top-level sections and whether they may be left out.
const SECTIONS: [(&str, bool); 9] = [
    ("watch", false),
    ("detect", true),
    ("canary", true),
    ("limits", true),
    ("allow", true),
    ("safety", true),
    ("actions", true),
    ("policy", true),
    ("web", true),
];

/// Keys that hold secrets: only the secrets file may set them.
const SECRET_KEYS: [&str; 3] = ["password", "token", "api_key"];

impl Config {
    /// Reads the configuration at `path` and the secrets file it names.
    pub fn load(path: &Path) -> Result<Config, Problems> {
        Config::load_for(path, Follows::Logs)
    }

    /// Reads the configuration for `scan`, which takes its judgement from it
    /// (`[detect]`, `[limits]`) and its logs from the command line: a file
    /// without `[watch]` is valid for it.
    pub fn load_for_scan(path: &Path) -> Result<Config, Problems> {
        Config::load_for(path, Follows::Nothing)
    }

    fn load_for(path: &Path, follows: Follows) -> Result<Config, Problems> {
        let (table, problems) = merged_table(path)?;
        Config::from_table(table, problems, follows)
    }

    /// The configuration at `path` as [`Config::load`] reads it, with
    /// what makes it unlikely to work although valid: the example's
    /// placeholders left in (`change me` passwords, hosts and addresses of
    /// the example domains), log files that do not exist.
    pub fn load_with_warnings(path: &Path) -> Result<(Config, Vec<Problem>), Problems> {
        let (table, problems) = merged_table(path)?;
        let mut warnings = Vec::new();
        placeholders(&table, "", &mut warnings);
        missing_logs(&table, &mut warnings);
        let config = Config::from_table(table, problems, Follows::Logs)?;
        Ok((config, warnings))
    }

    /// The built-in configuration of `mailfuse policy` run without a file.
    pub fn policy_defaults() -> Config {
        let mut table = Table::new();
        table.insert("policy".into(), Value::Table(Table::new()));
        // An empty [policy] section is valid by construction.
        let mut config = Config::from_table(table, Vec::new(), Follows::Nothing)
            .unwrap_or_else(|problems| unreachable!("built-in defaults: {problems}"));
        // Policy runs on the mail server: its interfaces are its own.
        config.detect.safety = SafetyConfig::default().rules(crate::safety::host_addresses());
        config
    }

    /// The configuration in `table`, adding to the `problems` already found.
    fn from_table(
        mut table: Table,
        mut problems: Vec<Problem>,
        follows: Follows,
    ) -> Result<Config, Problems> {
        moved::take_old_limit_keys(&mut table, &mut problems);
        for key in table.keys() {
            if !SECTIONS.iter().any(|(name, _)| name == key) {
                problems.push(Problem {
                    path: key.clone(),
                    message: format!(
                        "unknown section (known: {})",
                        SECTIONS.map(|(name, _)| name).join(", ")
                    ),
                });
            }
        }
        // A policy server needs no logs to follow (nor a [watch] section):
        // `watch` itself refuses to start without logs.
        let needs_logs = follows == Follows::Logs && !table.contains_key("policy");
        let mut watch: Option<WatchConfig> =
            section(&mut table, "watch", !needs_logs, &mut problems);
        let mut detect: Option<DetectConfig> = section(&mut table, "detect", true, &mut problems);
        if let Some(detect) = &mut detect {
            open_geoip(&mut detect.geoip, &mut problems);
        }
        let canary: Option<CanaryConfig> = section(&mut table, "canary", true, &mut problems);
        let with_limits = table.contains_key("limits");
        let limits: Option<LimitsConfig> = section(&mut table, "limits", true, &mut problems);
        match limits.as_ref().map(LimitRules::new) {
            Some(Ok(rules)) => {
                if let Some(detect) = &mut detect {
                    detect.limits = rules;
                }
            }
            Some(Err(e)) => problems.push(Problem {
                path: "limits".into(),
                message: e.to_string(),
            }),
            None => {}
        }
        let allow = section(&mut table, "allow", true, &mut problems);
        let safety: Option<SafetyConfig> = section(&mut table, "safety", true, &mut problems);
        // The commands that act run on the mail server: its interfaces are
        // its own addresses. `scan` may read another machine's logs.
        let host = match follows {
            Follows::Logs => crate::safety::host_addresses(),
            Follows::Nothing => Vec::new(),
        };
        if let (Some(detect), Some(safety)) = (&mut detect, safety) {
            detect.safety = safety.rules(host);
        }
        let mut action_sections = split_action_sections(&mut table);
        let actions: Option<ActionsConfig> = section(&mut table, "actions", true, &mut problems);
        let sections = section(&mut action_sections, "actions", true, &mut problems);
        let actions = actions
            .zip(sections)
            .map(|(actions, sections)| ActionsConfig {
                sections,
                ..actions
            });
        let policy: Option<mailfuse_policy::PolicyConfig> =
            section(&mut table, "policy", true, &mut problems);
        if let Some(policy) = &policy {
            check_policy(policy, &mut problems);
        }
        let mut web: Option<WebConfig> = section(&mut table, "web", true, &mut problems);
        if let Some(web) = &mut web {
            if web.tls_certificate.is_some() || web.tls_key.is_some() {
                web.tls_config =
                    open_tls("web", (&web.tls_certificate, &web.tls_key), &mut problems);
            }
            // (A zero request_timeout is refused by the duration's reader.)
            for (key, value) in [
                ("login_attempts", web.login_attempts),
                ("login_attempts_global", web.login_attempts_global),
            ] {
                if value < 1 {
                    problems.push(Problem {
                        path: format!("web.{key}"),
                        message: "must be at least 1".into(),
                    });
                }
            }
            if web.token.as_deref().is_some_and(|t| t.len() < 16) {
                problems.push(Problem {
                    path: "web.token".into(),
                    message: "too short to resist guessing: use at least 16 characters".into(),
                });
            }
        }
        if let Some(watch) = &mut watch {
            if watch.logs.is_empty() && needs_logs && !watch.listens() {
                problems.push(Problem {
                    path: "watch.logs".into(),
                    message: NO_INPUT.into(),
                });
            }
            open_syslog_tls(&mut watch.syslog, &mut problems);
            if let Some(journal) = &watch.journal {
                if journal.directory.is_some() && !journal.files.is_empty() {
                    problems.push(Problem {
                        path: "watch.journal.files".into(),
                        message: "name journal files or a directory, not both (journalctl \
                                  reads one or the other)"
                            .into(),
                    });
                }
            }
            if let Some(policy) = &watch.auth_policy {
                check_auth_policy(policy, &mut problems);
            }
            if let Some(zone) = &watch.timezone {
                if let Err(e) = mailfuse_formats::LocalZone::parse(zone) {
                    problems.push(Problem {
                        path: "watch.timezone".into(),
                        message: e,
                    });
                }
            }
        }
        match (watch, detect, allow, actions, policy, web, limits, canary) {
            (
                Some(watch),
                Some(mut detect),
                Some(allow),
                Some(actions),
                Some(mut policy),
                Some(web),
                Some(limits),
                Some(canary),
            ) if problems.is_empty() => {
                // Both judges know the traps; policy honours the dry run.
                detect.canaries = canary.recipients.clone();
                policy.canaries = canary.recipients;
                policy.dry_run = watch.dry_run;
                Ok(Config {
                    watch,
                    detect,
                    allow,
                    actions,
                    policy,
                    limits: with_limits.then_some(limits),
                    web,
                })
            }
            _ => Err(Problems(problems)),
        }
    }
}

/// Whether the command reading the configuration follows `[watch]`'s logs
/// (`watch`, `serve`, `status`…: it runs on the mail server, whose
/// interfaces' addresses are the server's own), or takes its input
/// elsewhere (`scan`, `policy` without a file).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Follows {
    Logs,
    Nothing,
}

/// Takes the registered actions' sections out of `[actions]`, into a table
/// of their own under the same name (so problems are reported at
/// `actions.email.port`).
fn split_action_sections(table: &mut Table) -> Table {
    let mut sections = Table::new();
    if let Some(Value::Table(actions)) = table.get_mut("actions") {
        for name in ACTION_NAMES {
            if let Some(value) = actions.remove(*name) {
                sections.insert((*name).to_string(), value);
            }
        }
    }
    let mut split = Table::new();
    split.insert("actions".into(), Value::Table(sections));
    split
}

/// What `watch` says when it has nothing to read.
pub const NO_INPUT: &str = "name at least one log file or directory to follow, \
     or [watch.journal], or [watch.syslog] listeners, or [watch.auth_policy]";

impl WatchConfig {
    /// Whether watch takes events other than from its files: the journal,
    /// syslog listeners, Dovecot's auth policy requests.
    pub fn listens(&self) -> bool {
        self.journal.is_some() || self.syslog.listens() || self.auth_policy.is_some()
    }
}

/// Notes an auth policy server others could reach without a key, or with
/// one short enough to guess.
fn check_auth_policy(policy: &AuthPolicyConfig, problems: &mut Vec<Problem>) {
    match &policy.api_key {
        Some(key) if key.len() < 16 => problems.push(Problem {
            path: "watch.auth_policy.api_key".into(),
            message: "too short to resist guessing: use at least 16 characters".into(),
        }),
        None if !policy.listen.ip().is_loopback() => problems.push(Problem {
            path: "watch.auth_policy.api_key".into(),
            message: format!(
                "listening on {} beyond loopback needs a key: set api_key in the secrets file \
                 and send it from Dovecot (auth_policy_server_api_header = X-API-Key: KEY)",
                policy.listen
            ),
        }),
        _ => {}
    }
}

/// Reads `[watch.syslog]`'s certificate and key when TLS is configured.
fn open_syslog_tls(syslog: &mut SyslogConfig, problems: &mut Vec<Problem>) {
    if !syslog.tls.is_empty() {
        syslog.tls_config = open_tls(
            "watch.syslog",
            (&syslog.tls_certificate, &syslog.tls_key),
            problems,
        );
    }
}

/// The TLS configuration of `section`'s `tls_certificate` and `tls_key`,
/// or a problem naming the key to fix.
fn open_tls(
    section: &str,
    (certificate, key): (&Option<PathBuf>, &Option<PathBuf>),
    problems: &mut Vec<Problem>,
) -> Option<std::sync::Arc<rustls::ServerConfig>> {
    let (Some(certificate), Some(key)) = (certificate, key) else {
        problems.push(Problem {
            path: format!("{section}.tls"),
            message: "TLS needs tls_certificate and tls_key (PEM files)".into(),
        });
        return None;
    };
    crate::source::syslog_net::tls::server_config(certificate, key)
        .map_err(|e| {
            let key = match e {
                crate::source::syslog_net::tls::TlsError::Key { .. } => "tls_key",
                _ => "tls_certificate",
            };
            problems.push(Problem {
                path: format!("{section}.{key}"),
                message: e.to_string(),
            });
        })
        .ok()
}

/// Opens `[detect.geoip]`'s databases, noting each one that cannot be used
/// (a missing file is a problem now, not a surprise in the middle of a run).
fn open_geoip(geoip: &mut mailfuse_detect::GeoConfig, problems: &mut Vec<Problem>) {
    if let Err(errors) = geoip.open(|path| std::fs::read(path)) {
        problems.extend(errors.iter().map(|e| Problem {
            path: e.key().into(),
            message: e.to_string(),
        }));
    }
}

/// Notes what the `[policy]` types alone cannot check.
fn check_policy(policy: &mailfuse_policy::PolicyConfig, problems: &mut Vec<Problem>) {
    for (i, listen) in policy.listen.iter().enumerate() {
        if let Err(message) = listen.parse::<mailfuse_policy::Address>() {
            problems.push(Problem {
                path: format!("policy.listen[{i}]"),
                message,
            });
        }
    }
}

impl Config {
    /// The limits `mailfuse policy` enforces: `[limits]`, else its built-in
    /// ones; `[allow]` accounts are never limited, by watch or policy.
    pub fn policy_limits(&self) -> Result<LimitRules, mailfuse_limits::LimitsError> {
        LimitRules::new(&self.policy_limits_config())
    }

    /// [`Config::policy_limits`] as written, before they are resolved
    /// (`simulate` words them).
    pub fn policy_limits_config(&self) -> LimitsConfig {
        let mut limits = self
            .limits
            .clone()
            .unwrap_or_else(mailfuse_policy::config::default_limits);
        limits.allow.extend(self.allow.accounts.iter().cloned());
        limits
    }
}

/// Deserializes section `name` (its default when absent and `optional`),
/// noting a problem with its key path when it is wrong.
fn section<T: DeserializeOwned + Default>(
    table: &mut Table,
    name: &str,
    optional: bool,
    problems: &mut Vec<Problem>,
) -> Option<T> {
    let Some(value) = table.remove(name) else {
        if optional {
            return Some(T::default());
        }
        problems.push(Problem {
            path: name.to_string(),
            message: "missing section".into(),
        });
        return None;
    };
    // serde stops at the first error: note it, take the key out, try
    // again, so one run lists every wrong key of the section.
    let mut value = value;
    let mut found = false;
    // Elements taken out of each array so far: later errors in it are
    // reported at their index in the file.
    let mut taken: Vec<(Vec<Step>, usize)> = Vec::new();
    for _ in 0..64 {
        let error = match serde_path_to_error::deserialize(value.clone()) {
            Ok(parsed) if !found => return Some(parsed),
            Ok(_) => return None,
            Err(error) => error,
        };
        found = true;
        let mut steps: Vec<Step> = error.path().iter().filter_map(Step::of).collect();
        // toml appends where the key is, which the path says already.
        let message = error.into_inner().to_string();
        let message = message.lines().next().unwrap_or_default().to_string();
        let mut shown = steps.clone();
        if let Some((Step::Index(i), parent)) = shown.split_last_mut() {
            let parent = parent.to_vec();
            *i += taken.iter().filter(|(p, _)| *p == parent).count();
        }
        problems.push(Problem {
            path: path_of(name, &shown),
            message: message.clone(),
        });
        let unknown = message
            .strip_prefix("unknown field `")
            .and_then(|rest| rest.split('`').next());
        if let Some(field) = unknown {
            // The path may or may not end with the unknown key itself.
            if !matches!(steps.last(), Some(Step::Key(k)) if k == field) {
                steps.push(Step::Key(field.to_string()));
            }
        }
        if let Some((Step::Index(i), parent)) = steps.split_last() {
            taken.push((parent.to_vec(), *i));
        }
        if !remove_at(&mut value, &steps) {
            break;
        }
    }
    None
}

/// `section.key[0].key`, as an admin reads it.
fn path_of(section: &str, steps: &[Step]) -> String {
    let mut path = section.to_string();
    for step in steps {
        match step {
            Step::Key(key) => {
                path.push('.');
                path.push_str(key);
            }
            Step::Index(i) => path.push_str(&format!("[{i}]")),
        }
    }
    path
}

/// Takes the value at `steps` out of `value`; false when there is none.
fn remove_at(value: &mut Value, steps: &[Step]) -> bool {
    let Some((last, parent)) = steps.split_last() else {
        return false;
    };
    let mut node = value;
    for step in parent {
        let inner = match (node, step) {
            (Value::Table(table), Step::Key(key)) => table.get_mut(key),
            (Value::Array(items), Step::Index(i)) => items.get_mut(*i),
            _ => None,
        };
        let Some(inner) = inner else { return false };
        node = inner;
    }
    match (node, last) {
        (Value::Table(table), Step::Key(key)) => table.remove(key).is_some(),
        (Value::Array(items), Step::Index(i)) if *i < items.len() => {
            items.remove(*i);
            true
        }
        _ => false,
    }
}

/// One step of a key's path.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Step {
    Key(String),
    Index(usize),
}

impl Step {
    fn of(segment: &serde_path_to_error::Segment) -> Option<Step> {
        match segment {
            serde_path_to_error::Segment::Map { key } => Some(Step::Key(key.clone())),
            serde_path_to_error::Segment::Seq { index } => Some(Step::Index(*index)),
            _ => None,
        }
    }
}

impl Default for WatchConfig {
    fn default() -> Self {
        WatchConfig {
            logs: Vec::new(),
            state: default_state(),
            poll_ms: default_poll_ms(),
            save_every_secs: default_save_secs(),
            dry_run: false,
            timezone: None,
            secrets: None,
            hostname: None,
            metrics_listen: None,
            syslog: SyslogConfig::default(),
            auth_policy: None,
            journal: None,
        }
    }
}

/// The configuration file's table with the secrets file's keys merged in,
/// and the problems met on the way (secrets outside the secrets file, an
/// unreadable secrets file).
fn merged_table(path: &Path) -> Result<(Table, Vec<Problem>), Problems> {
    let file_problem = |message: String| {
        Problems(vec![Problem {
            path: path.display().to_string(),
            message,
        }])
    };
    let text = std::fs::read_to_string(path).map_err(|e| {
        file_problem(match e.kind() {
            std::io::ErrorKind::NotFound => "no such file: give the configuration's path \
                 with -c FILE (dist/mailfuse.toml in mailfuse's source is an example to \
                 start from)"
                .to_string(),
            _ => format!("cannot read: {}", crate::hint::unreadable(&e)),
        })
    })?;
    let mut table: Table = text
        .parse()
        .map_err(|e: toml::de::Error| file_problem(e.to_string()))?;
    let mut problems = Vec::new();
    find_secrets(&table, "", &mut problems);
    if let Some(secrets) = secrets_path(&table) {
        match load_secrets(&secrets) {
            Ok(secrets) => merge(&mut table, secrets),
            Err(problem) => problems.push(problem),
        }
    }
    Ok((table, problems))
}

/// Strings of `table` (under `prefix`) still holding the example's
/// placeholders: a password `change me`, a host or address of the example
/// domains (RFC 2606), which pass every check and cannot work.
fn placeholders(table: &Table, prefix: &str, warnings: &mut Vec<Problem>) {
    for (key, value) in table {
        let path = format!("{prefix}{key}");
        let strings: Vec<(String, &str)> = match value {
            Value::Table(inner) => {
                placeholders(inner, &format!("{path}."), warnings);
                continue;
            }
            Value::String(text) => vec![(path, text)],
            Value::Array(items) => items
                .iter()
                .enumerate()
                .filter_map(|(i, item)| Some((format!("{path}[{i}]"), item.as_str()?)))
                .collect(),
            _ => continue,
        };
        for (path, text) in strings {
            let lower = text.to_ascii_lowercase();
            let message = if ["change me", "change-me", "changeme"]
                .iter()
                .any(|p| lower.contains(p))
            {
                "still the example's placeholder: set the real value".to_string()
            } else if EXAMPLE_DOMAINS.iter().any(|d| names_domain(&lower, d)) {
                "names an example domain (example.com, .org, .net): set your own".to_string()
            } else {
                continue;
            };
            warnings.push(Problem { path, message });
        }
    }
}

/// The domains reserved for examples (RFC 2606), which the example
/// configuration uses.
const EXAMPLE_DOMAINS: [&str; 3] = ["example.com", "example.org", "example.net"];

/// Whether `text` names `domain` or a host in it (`mail.example.com`,
/// `postmaster@example.com`, `https://chat.example.com/…`).
fn names_domain(text: &str, domain: &str) -> bool {
    text.match_indices(domain).any(|(at, _)| {
        let before = text[..at].chars().next_back();
        let after = text[at + domain.len()..].chars().next();
        before.is_none_or(|c| !c.is_ascii_alphanumeric() && c != '-')
            && after.is_none_or(|c| !c.is_ascii_alphanumeric() && c != '-')
    })
}

/// `watch.logs` entries that do not exist (yet): watch would wait for them.
fn missing_logs(table: &Table, warnings: &mut Vec<Problem>) {
    let logs = table
        .get("watch")
        .and_then(Value::as_table)
        .and_then(|watch| watch.get("logs"))
        .and_then(Value::as_array);
    for (i, log) in logs.into_iter().flatten().enumerate() {
        let Some(log) = log.as_str() else { continue };
        if !Path::new(log).exists() {
            warnings.push(Problem {
                path: format!("watch.logs[{i}]"),
                message: format!(
                    "{log} does not exist: watch waits for it. Where mail logs go only to the journal (Debian 12 installs no rsyslog), follow it with [watch.journal] instead (docs/watch.md)"
                ),
            });
        }
    }
}

/// Notes secret keys set in the main file (which is often world-readable).
fn find_secrets(table: &Table, prefix: &str, problems: &mut Vec<Problem>) {
    for (key, value) in table {
        let path = format!("{prefix}{key}");
        match value {
            Value::Table(inner) => find_secrets(inner, &format!("{path}."), problems),
            _ if SECRET_KEYS.contains(&key.as_str()) => problems.push(Problem {
                path,
                message:
                    "secrets belong in the secrets file (watch.secrets), readable by its owner only"
                        .into(),
            }),
            _ => {}
        }
    }
}

fn secrets_path(table: &Table) -> Option<PathBuf> {
    let watch = table.get("watch")?.as_table()?;
    Some(PathBuf::from(watch.get("secrets")?.as_str()?))
}

/// The secrets file's table, if only its owner can read it.
fn load_secrets(path: &Path) -> Result<Table, Problem> {
    let problem = |message: String| Problem {
        path: "watch.secrets".into(),
        message: format!("{}: {message}", path.display()),
    };
    let unreadable =
        |e: std::io::Error| problem(format!("cannot read: {}", crate::hint::unreadable(&e)));
    let metadata = std::fs::metadata(path).map_err(unreadable)?;
    let mode = std::os::unix::fs::PermissionsExt::mode(&metadata.permissions());
    if mode & 0o077 != 0 {
        return Err(problem(format!(
            "readable by others (mode {:o}): run chmod 600 on it",
            mode & 0o777
        )));
    }
    let text = std::fs::read_to_string(path).map_err(unreadable)?;
    text.parse::<Table>().map_err(|e| problem(e.to_string()))
}

/// Adds `extra`'s keys into `table`, recursively (the secrets file mirrors
/// the configuration's sections).
fn merge(table: &mut Table, extra: Table) {
    for (key, value) in extra {
        match (table.get_mut(&key), value) {
            (Some(Value::Table(inner)), Value::Table(extra)) => merge(inner, extra),
            (_, value) => {
                table.insert(key, value);
            }
        }
    }
}

mod moved;

#[cfg(test)]
mod tests;
