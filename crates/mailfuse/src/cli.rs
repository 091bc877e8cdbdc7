//! The command line.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::output::audit::AuditFormat;
use crate::output::ScanFormat;

/// Finds hijacked mail accounts and password guessing in mail server logs.
// The version names the commit built, when built from a git checkout
// (build.rs): `mailfuse 0.1.0 (abc1234)`.
#[derive(Debug, Parser)]
#[command(name = "mailfuse", version = env!("MAILFUSE_VERSION"), about, long_about = None)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Analyse logs: which accounts were hijacked, from which IPs, since when,
    /// how many messages; which IPs guessed passwords.
    ///
    /// Exit status: 0 nothing found, 1 incidents found, 2 error.
    Scan(ScanArgs),
    /// Tell the whole story of one message: who sent it, from where, after
    /// which logins, and what became of every recipient.
    ///
    /// Exit status: 0 found, 1 not in the logs, 2 error.
    Trace(TraceArgs),
    /// Replay logs against sending-limit policies: what each would have let
    /// out of every hijack found, and which other accounts it would have
    /// deferred or locked, and when.
    ///
    /// Policies: -c's [limits], each --limit, mailfuse's defaults, and
    /// reference settings of other products (approximations).
    ///
    /// Exit status: 0 report written, 2 error.
    Simulate(SimulateArgs),
    /// Find the accounts that should not be able to send: forward-only
    /// users, users nobody logs into (or not for long), accounts that only
    /// ever log in to send, role names, users without a password policy;
    /// each with what to do. From Kerio's Admin API (`--kerio`) and/or from
    /// logs (as scan reads them) and Dovecot's last-login dict.
    ///
    /// Exit status: 0 nothing found, 1 accounts found, 2 error.
    Audit(AuditArgs),
    /// Follow the logs live and act within a second when an account is
    /// hijacked or an IP guesses passwords: lock, hold, block, alert.
    Watch(ConfigArgs),
    /// Serve Postfix's policy delegation protocol: per-account sending
    /// limits checked before Postfix accepts a message, hijacked accounts
    /// locked at the door.
    Policy(PolicyArgs),
    /// Check the configuration file and report every problem at once.
    ///
    /// Exit status: 0 valid, 2 problems found.
    CheckConfig(CheckConfigArgs),
    /// Show locked accounts, blocked IPs, and recent incidents and actions.
    Status(StatusArgs),
    /// Unlock an account that watch locked (and undo the lock where it was made).
    Unlock(UnlockArgs),
    /// Lift the block of an IP before it expires.
    Unblock(UnblockArgs),
    /// Serve the dashboard: incidents, locks and blocks (with unlock and
    /// unblock buttons), top senders, recent actions; and `/metrics`.
    Serve(ConfigArgs),
    /// Write the man pages (one per command) and the bash, zsh and fish
    /// completions into a directory: DIR/man/*.1 and DIR/completions/.
    /// For installs by hand; the Debian package installs them already.
    Generate(GenerateArgs),
}

#[derive(Debug, Args)]
pub struct GenerateArgs {
    /// The directory to write into (created if missing).
    #[arg(value_name = "DIR")]
    pub dir: PathBuf,
}

/// Where the configuration is.
#[derive(Debug, Args)]
pub struct ConfigArgs {
    /// The configuration file.
    #[arg(short, long, value_name = "FILE", default_value = crate::config::DEFAULT_PATH)]
    pub config: PathBuf,
}

/// The configuration to check: `-c FILE`, or the path alone.
#[derive(Debug, Args)]
pub struct CheckConfigArgs {
    #[command(flatten)]
    pub config: ConfigArgs,
    /// The configuration file (as `-c` gives it).
    #[arg(value_name = "FILE", conflicts_with = "config")]
    pub file: Option<PathBuf>,
}

impl CheckConfigArgs {
    /// The configuration file, however it was given.
    pub fn path(&self) -> &std::path::Path {
        self.file.as_deref().unwrap_or(&self.config.config)
    }
}

#[derive(Debug, Args)]
pub struct PolicyArgs {
    /// The configuration file. Without it, /etc/mailfuse/mailfuse.toml if
    /// it exists, else built-in defaults.
    #[arg(short, long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Listen here instead of policy.listen (repeatable):
    /// 127.0.0.1:10040, [::1]:10040 or unix:/path/to/socket.
    // This comment is clap's help text, plain text rather than Markdown:
    // `[::1]` is an address, not a link, and escaping it would show in
    // `--help`.
    #[allow(rustdoc::broken_intra_doc_links)]
    #[arg(long, value_name = "ADDRESS")]
    pub listen: Vec<String>,
    /// The state database instead of watch.state (locks, saved counters).
    #[arg(long, value_name = "FILE")]
    pub state: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct StatusArgs {
    #[command(flatten)]
    pub config: ConfigArgs,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
    /// How many recent incidents and actions to show.
    #[arg(long, default_value_t = 10)]
    pub recent: usize,
}

#[derive(Debug, Args)]
pub struct UnlockArgs {
    /// The account, as the log names it (`sales@example.com`).
    pub account: String,
    #[command(flatten)]
    pub config: ConfigArgs,
}

#[derive(Debug, Args)]
pub struct UnblockArgs {
    /// The blocked IP address.
    pub ip: std::net::IpAddr,
    #[command(flatten)]
    pub config: ConfigArgs,
}

/// Options shared by every command that reads logs.
#[derive(Debug, Args)]
pub struct InputArgs {
    /// Log files or directories (Kerio's mail.log, security.log and audit.log
    /// side by side); `-` reads standard input.
    #[arg(required = true, value_name = "PATH")]
    pub paths: Vec<PathBuf>,
    #[command(flatten)]
    pub read: ReadArgs,
}

/// How logs are read, whatever the command (`audit`'s logs are optional).
#[derive(Debug, Args)]
pub struct ReadArgs {
    /// Time zone of the server's local timestamps: an IANA name
    /// (Europe/Prague) or an offset (+07:00). Default: derived from Kerio
    /// Queue-IDs, else UTC.
    #[arg(long, value_name = "ZONE")]
    pub timezone: Option<String>,
    /// The year of the logs' last lines, for syslog timestamps without a
    /// year (`Dec 14 20:46:27`): for copied logs, whose modification time
    /// (the default reference) is the copy's. Every such line is dated in
    /// this year.
    #[arg(long, value_name = "YEAR", value_parser = clap::value_parser!(i32).range(1970..=9999))]
    pub year: Option<i32>,
    /// Lines longer than this many bytes are skipped and counted.
    #[arg(long, default_value_t = crate::source::lines::DEFAULT_MAX_LINE, value_name = "BYTES")]
    pub max_line_bytes: usize,
    /// Never show a progress bar (it only shows on a terminal anyway).
    #[arg(long)]
    pub no_progress: bool,
    /// Plain files of at least this many bytes are parsed on every core
    /// (hidden: for the tests that compare both ways of reading; by
    /// default big files are, when there are cores to spare).
    #[arg(long, hide = true, value_name = "BYTES")]
    pub split_above: Option<u64>,
}

#[derive(Debug, Args)]
pub struct ScanArgs {
    #[command(flatten)]
    pub input: InputArgs,
    /// Report format.
    #[arg(long, value_enum, default_value_t = ScanFormat::Text)]
    pub format: ScanFormat,
    /// Write the report to this file instead of standard output.
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// A domain of this mail server (repeatable); when given, only these are
    /// local. Default: inferred from the logs (logins' domains, the From of
    /// logins without a domain, the server's own rewriting, local deliveries).
    #[arg(long = "local-domain", value_name = "DOMAIN")]
    pub local_domains: Vec<String>,
    /// A GeoLite2/GeoIP2 Country or City database (.mmdb): a country new
    /// for an account adds to its score; a City database also catches
    /// impossible travel between logins. Overrides `[detect.geoip]`.
    #[arg(long, value_name = "FILE")]
    pub geoip_country: Option<PathBuf>,
    /// A GeoLite2/GeoIP2 ASN database (.mmdb): a network new for an account
    /// adds to its score. Overrides `[detect.geoip]`.
    #[arg(long, value_name = "FILE")]
    pub geoip_asn: Option<PathBuf>,
    /// Judge as watch and policy do: the `[detect]` thresholds and the
    /// `[limits]` of this configuration file (its other sections are checked
    /// but not used; `[watch]` may be absent).
    #[arg(short, long, value_name = "FILE")]
    pub config: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct SimulateArgs {
    #[command(flatten)]
    pub input: InputArgs,
    /// A policy to compare (repeatable): KIND:MAX/WINDOW, several joined by
    /// commas, and `lock` to lock the account at the first crossing instead
    /// of deferring. KIND: messages, recipients, external-recipients,
    /// failed-recipients (always locks). E.g. --limit messages:100/1h
    /// --limit 'recipients:50/1m,recipients:300/1h'.
    #[arg(long = "limit", value_name = "LIMITS", value_parser = crate::simulate::policy::parse_limit)]
    pub limits: Vec<crate::simulate::policy::Policy>,
    /// Also replay this configuration's limits (`[limits]` and `[allow]`,
    /// as `mailfuse policy` enforces them) and judge with its `[detect]`.
    #[arg(short, long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Report format.
    #[arg(long, value_enum, default_value_t = SimulateFormat::Text)]
    pub format: SimulateFormat,
    /// Write the report to this file instead of standard output.
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// A domain of this mail server (repeatable), as for scan: it tells
    /// external recipients apart. Default: inferred from the logs.
    #[arg(long = "local-domain", value_name = "DOMAIN")]
    pub local_domains: Vec<String>,
}

/// Formats of the simulate report.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum SimulateFormat {
    /// A table per policy, for a terminal or an email.
    Text,
    /// One JSON object, for scripts.
    Json,
    /// One self-contained HTML page with a chart (`-o simulate.html`).
    Html,
}

#[derive(Debug, Args)]
pub struct AuditArgs {
    /// Logs to audit, as scan reads them (optional with `--kerio` or
    /// `--dovecot-last-login`).
    #[arg(value_name = "PATH")]
    pub paths: Vec<PathBuf>,
    #[command(flatten)]
    pub read: ReadArgs,
    /// Ask Kerio Connect's Admin API for its users: the `[actions.kerio]`
    /// section (and secrets) of the `--config` file.
    #[arg(long, requires = "config")]
    pub kerio: bool,
    /// Dovecot's record of last logins: the file of its `last_login`
    /// plugin's dict (`last_login_dict = file:FILE`), which reaches back
    /// before the logs.
    #[arg(long, value_name = "FILE")]
    pub dovecot_last_login: Option<PathBuf>,
    /// The configuration file, for `--kerio` and `--save`.
    #[arg(short, long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Record the accounts found nobody logs into (forward-only, never
    /// logged in, receiving but never logging in) in watch's state
    /// (`watch.state` of `--config`), replacing the last audit's: watch
    /// then takes their sending for strong evidence of a hijack, and
    /// policy locks them at their first message.
    #[arg(long, requires = "config")]
    pub save: bool,
    /// An account with no login for this many days is stale (counted back
    /// from the end of the logs, or from now for Kerio); 0: never.
    #[arg(long, default_value_t = 30, value_name = "DAYS")]
    pub stale_days: u32,
    /// A domain of this mail server (repeatable): mail delivered to it is
    /// mail an account receives. Default: the domains of the logins.
    #[arg(long = "local-domain", value_name = "DOMAIN")]
    pub local_domains: Vec<String>,
    /// Report format.
    #[arg(long, value_enum, default_value_t = AuditFormat::Text)]
    pub format: AuditFormat,
    /// Write the report to this file instead of standard output.
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct TraceArgs {
    /// The queue id, as in the log (Kerio: `501c1268-0001243c`).
    #[arg(value_name = "QUEUE-ID")]
    pub queue_id: String,
    #[command(flatten)]
    pub input: InputArgs,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// Readable report for a terminal or an email.
    Text,
    /// One JSON object, for scripts.
    Json,
}
