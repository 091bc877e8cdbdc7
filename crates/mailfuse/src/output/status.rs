//! `mailfuse status`: what watch has locked, blocked, found and done.

use std::io::{self, Write};

use anyhow::Result;
use mailfuse_core::text::Sanitized;
use mailfuse_core::Timestamp;
use mailfuse_detect::{Detector, Stats};
use mailfuse_store::{ActionRecord, Block, Lock, Store, StoredIncident};
use serde_json::json;

/// Everything `status` shows, read from the store.
pub struct Status {
    /// When watch last saved its progress, and what it had read by then.
    pub progress: Option<(Timestamp, Stats)>,
    pub locks: Vec<Lock>,
    pub blocks: Vec<Block>,
    pub incidents: Vec<StoredIncident>,
    pub actions: Vec<ActionRecord>,
}

impl Status {
    pub fn read(store: &Store, recent: usize) -> Result<Status> {
        let progress = match store.progress()? {
            Some(p) => Some((p.saved_at, Detector::saved_stats(&p.detector)?)),
            None => None,
        };
        Ok(Status {
            progress,
            locks: store.locks()?,
            blocks: store.blocks()?,
            incidents: store.recent_incidents(recent)?,
            actions: store.recent_actions(recent)?,
        })
    }
}

fn safe(text: &str) -> Sanitized<'_> {
    Sanitized(text.as_bytes())
}

pub fn write_text(out: &mut dyn Write, status: &Status) -> io::Result<()> {
    match &status.progress {
        Some((saved_at, stats)) => writeln!(
            out,
            "watch saved its progress at {saved_at}: {} events read, {} messages, {} failed logins\n",
            stats.events, stats.messages, stats.auth_failures
        )?,
        None => writeln!(out, "watch has not saved any progress yet\n")?,
    }
    writeln!(out, "LOCKED ACCOUNTS ({})", status.locks.len())?;
    for lock in &status.locks {
        writeln!(
            out,
            "  {}  since {}  {}",
            safe(&lock.account),
            lock.since,
            safe(&lock.reason)
        )?;
    }
    writeln!(out, "\nBLOCKED IPS ({})", status.blocks.len())?;
    for block in &status.blocks {
        writeln!(
            out,
            "  {}  until {}  {}",
            block.ip,
            block.until,
            safe(&block.reason)
        )?;
    }
    writeln!(out, "\nRECENT INCIDENTS")?;
    for incident in &status.incidents {
        // Mail servers sending syslog: where it was seen.
        let hosts = serde_json::from_str::<serde_json::Value>(&incident.json)
            .ok()
            .and_then(|json| {
                let hosts: Vec<String> = json
                    .get("hosts")?
                    .as_array()?
                    .iter()
                    .filter_map(|h| Some(h.as_str()?.to_string()))
                    .collect();
                Some(format!("  (seen on {})", hosts.join(", ")))
            })
            .unwrap_or_default();
        writeln!(
            out,
            "  {}  {}  {}{}",
            incident.detected_at,
            incident.kind,
            safe(&incident.subject),
            safe(&hosts)
        )?;
    }
    writeln!(out, "\nRECENT ACTIONS")?;
    for action in &status.actions {
        writeln!(
            out,
            "  {}  {} {}  {}: {}",
            action.at,
            safe(&action.action),
            safe(&action.target),
            if action.ok { "ok" } else { "FAILED" },
            safe(&action.outcome)
        )?;
    }
    Ok(())
}

pub fn write_json(out: &mut dyn Write, status: &Status) -> io::Result<()> {
    let value = json!({
        "progress": status.progress.as_ref().map(|(saved_at, stats)| json!({
            "saved_at": saved_at, "stats": stats,
        })),
        "locks": status.locks.iter().map(|l| json!({
            "account": l.account, "since": l.since, "reason": l.reason, "incident": l.incident_key,
        })).collect::<Vec<_>>(),
        "blocks": status.blocks.iter().map(|b| json!({
            "ip": b.ip, "since": b.since, "until": b.until, "reason": b.reason, "incident": b.incident_key,
        })).collect::<Vec<_>>(),
        "incidents": status.incidents.iter().map(|i| json!({
            "key": i.key, "kind": i.kind, "subject": i.subject, "detected_at": i.detected_at,
            "incident": serde_json::from_str::<serde_json::Value>(&i.json).unwrap_or_default(),
        })).collect::<Vec<_>>(),
        "actions": status.actions.iter().map(|a| json!({
            "incident": a.incident_key, "action": a.action, "target": a.target, "at": a.at,
            "ok": a.ok, "outcome": a.outcome,
        })).collect::<Vec<_>>(),
    });
    serde_json::to_writer_pretty(&mut *out, &value)?;
    writeln!(out)
}
