//! `mailfuse audit`: gathers the accounts from Kerio's Admin API and/or the
//! logs (and Dovecot's record of last logins, [`last_login`]) and hands
//! them to `mailfuse_detect::audit`, which judges them.

mod last_login;

use std::path::Path;

use anyhow::{bail, Context, Result};
use mailfuse_act::kerio::Kerio;
use mailfuse_detect::audit::{self, audit_directory, Finding, LogAudit, Problem};
use mailfuse_store::AuditMark;

use crate::cli::AuditArgs;
use crate::config::Config;
use crate::output::audit::AuditReport;
use crate::{engine, open_state, read_options, source, unusable};

/// Runs the audit `args` ask for.
pub fn run(args: &AuditArgs) -> Result<AuditReport> {
    if args.paths.is_empty() && !args.kerio && args.dovecot_last_login.is_none() {
        bail!(
            "nothing to audit: give log files, --dovecot-last-login FILE, or --kerio with -c FILE \
             (its [actions.kerio])"
        );
    }
    let mut sources = Vec::new();
    let mut findings = Vec::new();
    if args.kerio {
        let (url, mut found) = kerio(args)?;
        sources.push(format!("Kerio Connect at {url}"));
        findings.append(&mut found);
    }
    let mut inputs = Vec::new();
    let mut log_end = None;
    if !args.paths.is_empty() || args.dovecot_last_login.is_some() {
        let mut audit = LogAudit::new(&args.local_domains);
        if !args.paths.is_empty() {
            let options = read_options(&args.read)?;
            let summary = engine::read_all(&args.paths, &options, |event, _| audit.observe(event))?;
            inputs = summary.inputs.into_iter().map(|i| i.path).collect();
            log_end = audit.end();
            sources.push("the logs".to_owned());
        }
        if let Some(path) = &args.dovecot_last_login {
            let found = last_login::read(path)?;
            warn_unread(path, &found);
            let logins = found.logins.iter().map(|(user, at)| (user.as_slice(), *at));
            audit.recorded_logins(logins, source::now());
            sources.push(format!("Dovecot's last logins ({})", path.display()));
        }
        findings.append(&mut audit.findings(args.stale_days));
    }
    audit::sort(&mut findings);
    if args.save {
        save(args, &findings)?;
    }
    Ok(AuditReport::new(
        sources,
        inputs,
        log_end,
        args.stale_days,
        findings,
    ))
}

/// Says what of Dovecot's dict at `path` was not a last login, when that
/// may hide logins.
fn warn_unread(path: &Path, found: &last_login::LastLogins) {
    if found.unreadable > 0 {
        eprintln!(
            "mailfuse: {} last logins in {} have no time and are left out",
            found.unreadable,
            path.display()
        );
    }
    if found.logins.is_empty() && found.other_keys > 0 {
        eprintln!(
            "mailfuse: {} holds no key of the last_login plugin's default (last-login/%u), \
             only {} others: if last_login_key is changed, set it back, or the audit finds \
             no login there",
            path.display(),
            found.other_keys
        );
    }
}

/// Records the accounts nobody logs into in the state watch reads.
fn save(args: &AuditArgs, findings: &[Finding]) -> Result<()> {
    let Some(path) = &args.config else {
        bail!("--save needs -c FILE: the configuration whose watch.state to write");
    };
    let config = Config::load_for_scan(path).map_err(unusable)?;
    let now = source::now();
    let marks: Vec<AuditMark> = findings
        .iter()
        .filter(|finding| finding.problem.never_logs_in())
        .map(|finding| AuditMark {
            account: finding.account.clone(),
            problem: problem_name(finding.problem),
            marked_at: now,
        })
        .collect();
    let mut store = open_state(&config.watch.state)?;
    store
        .replace_audit_marks(&marks)
        .context("cannot record the audit's marks in the state")?;
    eprintln!(
        "mailfuse: {} accounts nobody logs into recorded in {} (watch and policy read them within seconds)",
        marks.len(),
        config.watch.state.display()
    );
    Ok(())
}

/// The problem's name as the JSON report gives it.
fn problem_name(problem: Problem) -> String {
    serde_json::to_value(problem)
        .ok()
        .and_then(|value| value.as_str().map(str::to_owned))
        .unwrap_or_default()
}

/// The findings of Kerio's users, and the Admin API's address.
fn kerio(args: &AuditArgs) -> Result<(String, Vec<Finding>)> {
    let Some(path) = &args.config else {
        bail!("--kerio needs -c FILE: the configuration with [actions.kerio]");
    };
    let config = Config::load_for_scan(path).map_err(unusable)?;
    let Some(kerio) = config.actions.sections.kerio else {
        bail!(
            "{} has no [actions.kerio] section: add it (url, user; password in the secrets \
             file) to audit Kerio's users",
            path.display()
        );
    };
    let url = kerio.url.clone();
    let client = Kerio::new(kerio)?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the Kerio client's runtime")?;
    let users = runtime
        .block_on(async {
            let users = client.users().await;
            // Logging out is courtesy: the session expires anyway.
            let _ = client.close().await;
            users
        })
        .with_context(|| format!("cannot list Kerio's users at {url}"))?;
    Ok((url, audit_directory(&users, source::now(), args.stale_days)))
}
