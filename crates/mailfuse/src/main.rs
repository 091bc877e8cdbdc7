//! `mailfuse`: the command line, wiring sources → formats → detectors → outputs.

mod audit;
mod cli;
mod config;
mod engine;
mod generate;
mod hint;
mod html_escape;
mod metrics;
mod output;
mod policy;
mod progress;
mod respond;
mod safety;
mod signals;
mod simulate;
mod source;
mod trace;
mod watch;
mod web;

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::Parser;
use mailfuse_detect::{DetectConfig, Detector};
use mailfuse_formats::{Detail, LocalZone};

use cli::{
    AuditArgs, CheckConfigArgs, Cli, Command, ConfigArgs, GenerateArgs, PolicyArgs, ScanArgs,
    SimulateArgs, StatusArgs, TraceArgs, UnblockArgs, UnlockArgs,
};
use config::Config;
use engine::ReadOptions;

/// Exit status for "something found" (incidents, or the traced message).
const EXIT_FOUND: u8 = 1;
/// Exit status for errors (bad arguments, unreadable inputs).
const EXIT_ERROR: u8 = 2;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Scan(args) => scan(args),
        Command::Trace(args) => trace(args),
        Command::Simulate(args) => simulate(&args),
        Command::Audit(args) => audit(&args),
        Command::Watch(args) => watch(&args),
        Command::Policy(args) => serve_policy(args),
        Command::CheckConfig(args) => check_config(&args),
        Command::Status(args) => status(&args),
        Command::Unlock(args) => unlock(&args),
        Command::Unblock(args) => unblock(&args),
        Command::Serve(args) => serve(&args),
        Command::Generate(args) => generate(&args),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("mailfuse: error: {}", error_text(&e));
            ExitCode::from(EXIT_ERROR)
        }
    }
}

/// `error` and its causes, each said once: a cause whose words the message
/// already holds (a library repeating its source's text) is left out.
fn error_text(error: &anyhow::Error) -> String {
    let mut text = String::new();
    for cause in error.chain() {
        let said = cause.to_string();
        if text.contains(&said) {
            continue;
        }
        if !text.is_empty() {
            text.push_str(": ");
        }
        text.push_str(&said);
    }
    text
}

pub(crate) fn read_options(input: &cli::ReadArgs) -> Result<ReadOptions> {
    let zone = input
        .timezone
        .as_deref()
        .map(LocalZone::parse)
        .transpose()
        .map_err(anyhow::Error::msg)?;
    Ok(ReadOptions {
        zone,
        max_line: input.max_line_bytes,
        year: input.year,
        progress: !input.no_progress,
        split_above: input.split_above,
        detail: Detail::Detection,
    })
}

fn scan(args: ScanArgs) -> Result<ExitCode> {
    let options = read_options(&args.input.read)?;
    let mut config = match &args.config {
        Some(path) => Config::load_for_scan(path).map_err(unusable)?.detect,
        None => DetectConfig::default(),
    };
    config
        .compromise
        .local_domains
        .extend(args.local_domains.iter().cloned());
    with_geoip_flags(&mut config.geoip, &args)?;
    let mut detector = Detector::new(config);
    if args.format.wants_hourly() {
        detector.collect_hourly();
    }
    let summary = engine::read_all(&args.input.paths, &options, |event, line| {
        detector.observe(event, line)
    })?;
    let findings = detector.final_findings();
    // The process ends after the report: freeing a provider's millions of
    // small entries one by one takes seconds; the system takes the memory
    // back at once.
    std::mem::forget(detector);
    let found = !findings.incidents.is_empty();
    with_output(args.output.as_deref(), |out| {
        args.format.write(out, &summary, &findings)
    })?;
    std::mem::forget(findings);
    Ok(if found {
        ExitCode::from(EXIT_FOUND)
    } else {
        ExitCode::SUCCESS
    })
}

/// Opens the GeoIP databases `--geoip-country` and `--geoip-asn` name, in
/// place of the configuration's.
fn with_geoip_flags(geoip: &mut mailfuse_detect::GeoConfig, args: &ScanArgs) -> Result<()> {
    if args.geoip_country.is_none() && args.geoip_asn.is_none() {
        return Ok(());
    }
    if let Some(path) = &args.geoip_country {
        geoip.country_database = Some(path.clone());
    }
    if let Some(path) = &args.geoip_asn {
        geoip.asn_database = Some(path.clone());
    }
    geoip.open(|path| std::fs::read(path)).map_err(|errors| {
        let lines: Vec<String> = errors.iter().map(ToString::to_string).collect();
        anyhow::anyhow!("{}", lines.join("\n"))
    })
}

fn simulate(args: &SimulateArgs) -> Result<ExitCode> {
    let options = read_options(&args.input.read)?;
    let simulation = simulate::simulate(&simulate::Request {
        paths: &args.input.paths,
        options: &options,
        config: args.config.as_deref(),
        limits: &args.limits,
        local_domains: &args.local_domains,
    })?;
    with_output(args.output.as_deref(), |out| match args.format {
        cli::SimulateFormat::Text => output::simulate::write_text(out, &simulation),
        cli::SimulateFormat::Json => output::simulate::write_json(out, &simulation),
        cli::SimulateFormat::Html => output::simulate::write_html(out, &simulation),
    })?;
    Ok(ExitCode::SUCCESS)
}

fn trace(args: TraceArgs) -> Result<ExitCode> {
    // The story shows what the detectors leave unread (a Kerio subject).
    let options = ReadOptions {
        detail: Detail::Whole,
        ..read_options(&args.input.read)?
    };
    let story = trace::trace(&args.queue_id, &args.input.paths, &options)?;
    with_output(None, |out| match args.format {
        cli::Format::Text => output::text::write_trace(out, &args.queue_id, story.as_ref()),
        cli::Format::Json => output::json::write_trace(out, &args.queue_id, story.as_ref()),
    })?;
    Ok(if story.is_some() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(EXIT_FOUND)
    })
}

fn audit(args: &AuditArgs) -> Result<ExitCode> {
    let report = audit::run(args)?;
    with_output(args.output.as_deref(), |out| {
        args.format.write(out, &report)
    })?;
    Ok(if report.findings.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(EXIT_FOUND)
    })
}

fn load_config(args: &ConfigArgs) -> Result<Config> {
    Config::load(&args.config).map_err(unusable)
}

/// The error of a configuration that cannot be used: every problem, one a line.
pub(crate) fn unusable(problems: config::Problems) -> anyhow::Error {
    anyhow::anyhow!("{}", problems.to_string().trim_end())
}

fn watch(args: &ConfigArgs) -> Result<ExitCode> {
    init_logging();
    watch::run(load_config(args)?)?;
    Ok(ExitCode::SUCCESS)
}

fn serve_policy(args: PolicyArgs) -> Result<ExitCode> {
    init_logging();
    let default = std::path::Path::new(config::DEFAULT_PATH);
    let config = match &args.config {
        Some(path) => load_config(&ConfigArgs {
            config: path.clone(),
        })?,
        None if default.exists() => load_config(&ConfigArgs {
            config: default.to_path_buf(),
        })?,
        None => {
            tracing::info!("no configuration file: built-in defaults");
            Config::policy_defaults()
        }
    };
    let options = policy::Options {
        listen: args.listen,
        state: args.state,
    };
    policy::run(config, options)?;
    Ok(ExitCode::SUCCESS)
}

/// Logs to standard error (the journal, under systemd); `RUST_LOG`
/// overrides the level (`info` by default).
fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&io::stderr()))
        .init();
}

fn check_config(args: &CheckConfigArgs) -> Result<ExitCode> {
    let path = args.path();
    match Config::load_with_warnings(path) {
        // The actions check what a file cannot say alone (a hook program
        // that exists, addresses that parse, a valid TLS pin).
        Ok((config, warnings)) => {
            match respond::Responder::new(&config, respond::RespondMetrics::default()) {
                Ok(_) => {
                    println!("{}: valid", path.display());
                    // Valid, and yet perhaps not working: said, not refused.
                    for warning in warnings {
                        eprintln!("{}: warning: {warning}", path.display());
                    }
                    Ok(ExitCode::SUCCESS)
                }
                Err(e) => {
                    eprintln!(
                        "{}: 1 problem in the configuration:\n  {e:#}",
                        path.display()
                    );
                    Ok(ExitCode::from(EXIT_ERROR))
                }
            }
        }
        Err(problems) => {
            eprint!("{}: {problems}", path.display());
            Ok(ExitCode::from(EXIT_ERROR))
        }
    }
}

fn open_store(config: &Config) -> Result<mailfuse_store::Store> {
    open_state(&config.watch.state)
}

/// The state database at `path`, or an error that says what to do.
pub(crate) fn open_state(path: &std::path::Path) -> Result<mailfuse_store::Store> {
    let opened = mailfuse_store::Store::open(path);
    if let Err(e) = &opened {
        if e.is_disk_full() {
            // Not damaged: moving it away would forget locks, blocks and
            // where every log was read up to.
            anyhow::bail!(
                "cannot open the state file {}: the filesystem holding it is full: free space \
                 there and start again (the state is whole: keep it; reading resumes where it \
                 stopped)",
                path.display()
            );
        }
    }
    opened.with_context(|| {
        format!(
            "cannot open the state file {} (it and its directory must be writable by the user \
             mailfuse runs as; a damaged file can be moved away to start afresh)",
            path.display()
        )
    })
}

fn status(args: &StatusArgs) -> Result<ExitCode> {
    let config = load_config(&args.config)?;
    let store = open_store(&config)?;
    let status = output::status::Status::read(&store, args.recent)?;
    with_output(None, |out| match args.format {
        cli::Format::Text => output::status::write_text(out, &status),
        cli::Format::Json => output::status::write_json(out, &status),
    })?;
    Ok(ExitCode::SUCCESS)
}

fn unlock(args: &UnlockArgs) -> Result<ExitCode> {
    let config = load_config(&args.config)?;
    let mut store = open_store(&config)?;
    let mut responder = respond::Responder::new(&config, respond::RespondMetrics::default())?;
    let unlocked = responder.unlock(&mut store, &args.account)?;
    if unlocked {
        println!("{} unlocked", args.account);
        Ok(ExitCode::SUCCESS)
    } else {
        println!("{} was not locked", args.account);
        Ok(ExitCode::from(EXIT_FOUND))
    }
}

fn serve(args: &ConfigArgs) -> Result<ExitCode> {
    init_logging();
    web::serve(load_config(args)?)?;
    Ok(ExitCode::SUCCESS)
}

fn generate(args: &GenerateArgs) -> Result<ExitCode> {
    let written = generate::write(&args.dir)?;
    println!("man pages: {}", written.man.display());
    println!("completions: {}", written.completions.display());
    Ok(ExitCode::SUCCESS)
}

fn unblock(args: &UnblockArgs) -> Result<ExitCode> {
    let config = load_config(&args.config)?;
    let mut store = open_store(&config)?;
    let mut responder = respond::Responder::new(&config, respond::RespondMetrics::default())?;
    if responder.unblock(&mut store, args.ip)? {
        println!("{} unblocked", args.ip);
        Ok(ExitCode::SUCCESS)
    } else {
        println!("{} was not blocked", args.ip);
        Ok(ExitCode::from(EXIT_FOUND))
    }
}

/// Runs `write` on the output file, or on standard output; a closed pipe
/// (`mailfuse scan … | head`) is not an error.
fn with_output(
    path: Option<&std::path::Path>,
    write: impl FnOnce(&mut dyn Write) -> io::Result<()>,
) -> Result<()> {
    let result = match path {
        Some(path) => {
            let file =
                File::create(path).with_context(|| format!("cannot create {}", path.display()))?;
            let mut out = BufWriter::new(file);
            write(&mut out).and_then(|()| out.flush())
        }
        None => {
            let stdout = io::stdout();
            let mut out = BufWriter::new(stdout.lock());
            write(&mut out).and_then(|()| out.flush())
        }
    };
    match result {
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => Ok(()),
        other => other.context("cannot write the report"),
    }
}
