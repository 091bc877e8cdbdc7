//! `mailfuse-loggen`: writes the bundled example logs and benchmark logs.

use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant, UNIX_EPOCH};

use clap::{Parser, Subcommand};
use mailfuse_loggen::bench::BenchReport;
use mailfuse_loggen::labelled::{self, score, Form};
use mailfuse_loggen::{bench, example, provider};

mod replay;

#[derive(Parser)]
#[command(
    name = "mailfuse-loggen",
    version,
    about = "Writes synthetic mail server logs for mailfuse's example and benchmarks"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Writes one week of a small company's mail.log, security.log and
    /// audit.log, with the hijack of the `sales` account on Thursday night.
    Example {
        /// Directory for the three files (created if missing).
        #[arg(long, default_value = "examples/kerio")]
        out: PathBuf,
        #[arg(long, default_value_t = example::DEFAULT_SEED)]
        seed: u64,
    },
    /// Writes a large mail log of mixed traffic with one hijack burst in the middle.
    Bench {
        /// kerio (Kerio Connect's mail.log) or postfix (Postfix and Dovecot
        /// in one syslog file).
        #[arg(long, default_value = "kerio", value_parser = clap::value_parser!(bench::Format))]
        format: bench::Format,
        /// Size to reach, e.g. 500M (suffixes K, M, G are binary multiples).
        #[arg(long, value_parser = bench::parse_size)]
        size: u64,
        /// The file to write.
        #[arg(long)]
        out: PathBuf,
        #[arg(long, default_value_t = bench::DEFAULT_SEED)]
        seed: u64,
        /// People in the organisation (more people, fewer days for the same size).
        #[arg(long, default_value_t = bench::DEFAULT_STAFF)]
        staff: usize,
    },
    /// Sends a syslog file (e.g. one `bench --format postfix` wrote) to a
    /// syslog receiver over TCP, octet-counted, from many connections at
    /// once, each a host of its own (mx01, mx02…); writes when each
    /// second of the log was sent, for bench/ingest.sh's latency.
    Replay {
        /// The syslog file (RFC 3164 stamps).
        #[arg(long)]
        log: PathBuf,
        /// Where to send: HOST:PORT.
        #[arg(long)]
        to: String,
        /// Connections (hosts) sending at once.
        #[arg(long, default_value_t = 20)]
        senders: usize,
        /// Lines per second over all connections (default: as fast as the
        /// receiver takes them).
        #[arg(long)]
        rate: Option<u64>,
        /// Where to write each second's send times (STAMP, first and last
        /// nanoseconds since the epoch, tab-separated).
        #[arg(long)]
        times: PathBuf,
    },
    /// Writes a hosting provider's Postfix and Dovecot log for the scale
    /// benchmark: many lightly used mailboxes, a botnet's IPs failing a
    /// login once or twice each, and one hijack in the middle.
    Provider {
        /// The file to write.
        #[arg(long)]
        out: PathBuf,
        /// Mailboxes (each sends about 2 messages and logs in about twice).
        #[arg(long, default_value_t = 1_000_000)]
        accounts: u64,
        /// Attacker IPs.
        #[arg(long, default_value_t = 2_000_000)]
        attacker_ips: u64,
        /// Days the log covers.
        #[arg(long, default_value_t = 2)]
        days: u32,
        #[arg(long, default_value_t = 1)]
        seed: u64,
    },
    /// Writes one labelled week: an organisation's logs with hijacks,
    /// look-alikes and attacks hidden in them, and labels.json, their
    /// ground truth. Prints the `mailfuse scan` arguments that read the
    /// week, one per line.
    Labelled {
        /// kerio8, kerio10 (Kerio 9/10) or postfix (Postfix, Dovecot and
        /// Roundcube in one syslog file).
        #[arg(long, value_parser = clap::value_parser!(Form))]
        form: Form,
        /// The week's seed: organisation, time zone, scenarios and their
        /// parameters.
        #[arg(long)]
        seed: u64,
        /// Directory for the log files and labels.json (created if missing).
        #[arg(long)]
        out: PathBuf,
    },
    /// Scores `mailfuse scan --format json` reports against their weeks'
    /// labels: recall per hijack kind, false locks and alerts per
    /// look-alike kind, attacks reported, detection delay and spam accepted
    /// before detection, per form and overall (docs/benchmark.md).
    Score {
        /// A week's labels.json; give one --report for each, in the same order.
        #[arg(long, required = true)]
        labels: Vec<PathBuf>,
        /// The report of the week of the --labels in the same position.
        #[arg(long, required = true)]
        report: Vec<PathBuf>,
        /// Print JSON instead of the tables.
        #[arg(long)]
        json: bool,
        /// Exit with status 1 if the acceptance bar of issue #13 is not met.
        #[arg(long)]
        check: bool,
    },
}

fn main() -> ExitCode {
    let result = match Cli::parse().command {
        Command::Example { out, seed } => write_example(&out, seed),
        Command::Bench {
            format,
            size,
            out,
            seed,
            staff,
        } => write_bench(&out, size, seed, staff, format),
        Command::Labelled { form, seed, out } => write_labelled(form, seed, &out),
        Command::Replay {
            log,
            to,
            senders,
            rate,
            times,
        } => replay::replay(
            &log,
            &replay::Replay {
                to: &to,
                senders,
                rate,
            },
            &times,
        ),
        Command::Provider {
            out,
            accounts,
            attacker_ips,
            days,
            seed,
        } => {
            let config = provider::ProviderConfig {
                accounts,
                attacker_ips,
                days,
                seed,
                ..provider::ProviderConfig::default()
            };
            let victim = format!("u7@{}", provider::DOMAIN);
            write_log(&out, &victim, |file| provider::generate(file, &config))
        }
        Command::Score {
            labels,
            report,
            json,
            check,
        } => return score_reports(&labels, &report, json, check),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("mailfuse-loggen: error: {message}");
            ExitCode::FAILURE
        }
    }
}

fn write_example(dir: &Path, seed: u64) -> Result<(), String> {
    let logs = example::generate(seed);
    fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    for (name, bytes) in [
        ("mail.log", &logs.mail),
        ("security.log", &logs.security),
        ("audit.log", &logs.audit),
    ] {
        let path = dir.join(name);
        fs::write(&path, bytes).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
        let lines = bytes.iter().filter(|&&b| b == b'\n').count();
        eprintln!(
            "wrote {} ({} bytes, {lines} lines)",
            path.display(),
            bytes.len()
        );
    }
    eprintln!("first spam message: queue id {}", logs.first_spam.queue_id);
    eprintln!("{}", logs.first_spam.line);
    Ok(())
}

fn write_bench(
    path: &Path,
    size: u64,
    seed: u64,
    staff: usize,
    format: bench::Format,
) -> Result<(), String> {
    let config = bench::BenchConfig {
        target_bytes: size,
        seed,
        staff,
        format,
    };
    let victim = format!("sales@{}", bench::DOMAIN);
    write_log(path, &victim, |file| bench::generate(file, &config))
}

/// Writes the log `generate` makes to `path`, dated by its last line, and
/// says what is in it (`victim`: the hijacked account).
fn write_log(
    path: &Path,
    victim: &str,
    generate: impl FnOnce(&File) -> std::io::Result<BenchReport>,
) -> Result<(), String> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    }
    let file = File::create(path).map_err(|e| format!("cannot create {}: {e}", path.display()))?;
    let started = Instant::now();
    let report = generate(&file).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    // A log's modification time is its last line's: readers take the year of
    // RFC 3164 stamps (which have none) from it.
    let last_line =
        UNIX_EPOCH + Duration::from_secs(report.last.utc(bench::UTC_OFFSET).0.max(0) as u64);
    file.set_modified(last_line).map_err(|e| {
        format!(
            "cannot set the modification time of {}: {e}",
            path.display()
        )
    })?;
    let secs = started.elapsed().as_secs_f64();
    eprintln!(
        "wrote {} ({} bytes, {} lines, {} messages) in {secs:.2} s ({:.0} MB/s)",
        path.display(),
        report.bytes,
        report.lines,
        report.messages,
        report.bytes as f64 / 1e6 / secs.max(1e-9),
    );
    eprintln!(
        "covers {} to {} ({} days)",
        stamp(report.first),
        stamp(report.last),
        (report.last.0 - report.first.0) / 86_400 + 1
    );
    match report.burst {
        Some((queue, at)) => eprintln!(
            "hijack burst: {} spam messages through {victim} from {}, first queue id {queue}",
            report.spam_messages,
            stamp(at),
        ),
        None => eprintln!("hijack burst: none (the file ends before the night after its middle)"),
    }
    if !report.tally.is_empty() {
        let counts: Vec<String> = report
            .tally
            .iter()
            .map(|(name, n)| format!("{n} {name}"))
            .collect();
        eprintln!("counts: {}", counts.join(", "));
    }
    Ok(())
}

fn write_labelled(form: Form, seed: u64, dir: &Path) -> Result<(), String> {
    let labels = labelled::generate(form, seed, dir)
        .map_err(|e| format!("cannot write the week into {}: {e}", dir.display()))?;
    let count = |class| labels.scenarios.iter().filter(|s| s.class == class).count();
    eprintln!(
        "wrote {form} week {seed} into {}: {}, {} mailboxes, {} ({}), {} hijacks, {} \
         look-alikes, {} attacks",
        dir.display(),
        labels.domain,
        labels.mailboxes,
        labels.region,
        labels.utc_offset,
        count(labelled::labels::Class::Hijack),
        count(labelled::labels::Class::Lookalike),
        count(labelled::labels::Class::Attack),
    );
    for option in &labels.scan_options {
        println!("{option}");
    }
    for file in &labels.files {
        println!("{}", dir.join(file).display());
    }
    Ok(())
}

fn score_reports(labels: &[PathBuf], reports: &[PathBuf], json: bool, check: bool) -> ExitCode {
    let scored = (|| {
        if labels.len() != reports.len() {
            return Err(format!(
                "{} --labels but {} --report: give one report per week",
                labels.len(),
                reports.len()
            ));
        }
        let read =
            |path: &Path| fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()));
        let mut scores = score::Scores::default();
        for (labels, report) in labels.iter().zip(reports) {
            let week = score::parse_labels(&read(labels)?)
                .map_err(|e| format!("{}: {e}", labels.display()))?;
            let found = score::parse_report(&read(report)?)
                .map_err(|e| format!("{}: {e}", report.display()))?;
            scores.push(score::score_week(&week, &found));
        }
        Ok(scores)
    })();
    let scores = match scored {
        Ok(scores) => scores,
        Err(message) => {
            eprintln!("mailfuse-loggen: error: {message}");
            return ExitCode::from(2);
        }
    };
    if json {
        match serde_json::to_string_pretty(&scores.to_json()) {
            Ok(text) => println!("{text}"),
            Err(e) => {
                eprintln!("mailfuse-loggen: error: {e}");
                return ExitCode::from(2);
            }
        }
    } else {
        print!("{}", scores.table());
    }
    if check && !scores.acceptance().met {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

/// `YYYY-MM-DD HH:MM` of a wall time, for messages.
fn stamp(at: mailfuse_loggen::clock::Wall) -> String {
    let (y, mo, d, h, mi, _) = mailfuse_core::Timestamp(at.0).to_civil();
    format!("{y:04}-{mo:02}-{d:02} {h:02}:{mi:02}")
}
