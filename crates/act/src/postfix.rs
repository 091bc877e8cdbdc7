//! Postfix: lock accounts through an access table of SASL logins, and put
//! their queued messages on hold — never delete them: the admin decides
//! (`postsuper -H` releases, `postsuper -d` deletes).
//!
//! The lock map is a `check_sasl_access` table; `main.cf` uses it before
//! it lets authenticated clients relay:
//!
//! ```text
//! smtpd_relay_restrictions = check_sasl_access hash:/etc/postfix/mailfuse_locked,
//!     permit_sasl_authenticated, reject_unauth_destination
//! ```
//!
//! Postfix notices the rebuilt table on its own (smtpd processes restart
//! when a table they use changes): a new connection of the locked account
//! is refused with the map's text.

use std::path::PathBuf;

use serde::Deserialize;

use crate::capability::{ActFuture, Action, LockAccount, QueuedMail};
use crate::{tool, whole_file, ActError};

const ACTION: &str = "postfix";

/// `[actions.postfix]`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PostfixConfig {
    /// Postfix's configuration directory, given to `postmap -c` and
    /// `postsuper -c` (another instance's, with multi-instance setups).
    #[serde(default = "default_config_directory")]
    pub config_directory: PathBuf,
    /// The access table of locked accounts, rewritten whole on each change.
    pub lock_map: PathBuf,
    /// Its Postfix table type, as in `main.cf` (`hash`, `lmdb`, `cdb`).
    #[serde(default = "default_map_type")]
    pub map_type: String,
    /// Put the account's queued messages on hold when it is locked.
    #[serde(default = "default_hold")]
    pub hold: bool,
}

fn default_config_directory() -> PathBuf {
    PathBuf::from("/etc/postfix")
}

fn default_map_type() -> String {
    "hash".to_string()
}

fn default_hold() -> bool {
    true
}

/// What a locked account's client is told (its admin will be asked).
const LOCKED_REPLY: &str =
    "REJECT 5.7.1 This account is locked after suspicious sending; contact your administrator";

/// Locks and holds through Postfix's own tools.
#[derive(Debug)]
pub struct Postfix {
    config: PostfixConfig,
}

impl Postfix {
    /// Checks the configuration.
    pub fn new(config: PostfixConfig) -> Result<Postfix, ActError> {
        let type_ok = !config.map_type.is_empty()
            && config.map_type.bytes().all(|b| b.is_ascii_alphanumeric());
        if !type_ok {
            return Err(ActError::new(
                ACTION,
                format!(
                    "map_type {:?} is not a Postfix table type like hash or lmdb",
                    config.map_type
                ),
            ));
        }
        if !config.lock_map.is_absolute() {
            return Err(ActError::new(ACTION, "lock_map must be an absolute path"));
        }
        Ok(Postfix { config })
    }

    /// Whether queued messages are put on hold.
    pub fn holds(&self) -> bool {
        self.config.hold
    }

    /// Rewrites the lock map to hold exactly `accounts`, then rebuilds it
    /// with `postmap`.
    pub async fn write_locks(&self, accounts: &[String]) -> Result<(), ActError> {
        let mut table = String::from("# Written by mailfuse: accounts locked after suspicious sending.\n# Unlock with `mailfuse unlock ACCOUNT`; edits here are overwritten.\n");
        for account in accounts {
            // A key with space or a control character cannot be written in
            // the table (and no real login has one).
            if account.is_empty() || account.chars().any(|c| c.is_whitespace() || c.is_control()) {
                return Err(ActError::new(
                    ACTION,
                    format!("account {account:?} cannot be written in an access table"),
                ));
            }
            table.push_str(account);
            table.push(' ');
            table.push_str(LOCKED_REPLY);
            table.push('\n');
        }
        let map = &self.config.lock_map;
        whole_file::replace(ACTION, map, table).await?;
        let config_directory = self.config.config_directory.to_string_lossy();
        let table = format!("{}:{}", self.config.map_type, map.display());
        tool::run(ACTION, "postmap", &["-c", &config_directory, &table], b"").await?;
        Ok(())
    }

    /// Puts the messages with `queue_ids` on hold; returns how many Postfix
    /// placed on hold (ids already delivered are skipped by Postfix).
    pub async fn hold(&self, queue_ids: &[String]) -> Result<u64, ActError> {
        let valid: Vec<&str> = queue_ids
            .iter()
            .map(String::as_str)
            .filter(|id| !id.is_empty() && id.bytes().all(|b| b.is_ascii_alphanumeric()))
            .collect();
        if valid.is_empty() {
            return Ok(0);
        }
        let stdin = valid.join("\n") + "\n";
        let config_directory = self.config.config_directory.to_string_lossy();
        let stderr = tool::run(
            ACTION,
            "postsuper",
            &["-c", &config_directory, "-h", "-"],
            stdin.as_bytes(),
        )
        .await?;
        Ok(placed_on_hold(&stderr))
    }
}

/// Postfix locks accounts, and holds their queued mail when `hold` is set.
impl Action for Postfix {
    fn lock(&self) -> Option<&dyn LockAccount> {
        Some(self)
    }
    fn queue(&self) -> Option<&dyn QueuedMail> {
        self.holds().then_some(self as &dyn QueuedMail)
    }
}

impl LockAccount for Postfix {
    fn journal_name(&self) -> &'static str {
        "postfix.lock"
    }

    fn lock<'a>(&'a self, account: &'a str, locked: &'a [String]) -> ActFuture<'a, String> {
        Box::pin(async move {
            self.write_locks(locked).await?;
            Ok(format!("{account} refused by Postfix (lock map rebuilt)"))
        })
    }

    fn unlock<'a>(&'a self, _account: &'a str, locked: &'a [String]) -> ActFuture<'a, String> {
        Box::pin(async move {
            self.write_locks(locked).await?;
            Ok("removed from Postfix's lock map".to_string())
        })
    }
}

/// Postfix finds queued messages by the ids its log gave.
impl QueuedMail for Postfix {
    fn journal_name(&self) -> &'static str {
        "postfix.hold"
    }

    fn stop_queued<'a>(&'a self, _account: &'a str, queued: &'a [String]) -> ActFuture<'a, String> {
        Box::pin(async move {
            let held = self.hold(queued).await?;
            Ok(format!(
                "{held} of its queued messages put on hold (postsuper -H releases, -d deletes)"
            ))
        })
    }

    fn stop_late<'a>(&'a self, queue_ids: &'a [String]) -> Option<ActFuture<'a, String>> {
        Some(Box::pin(async move {
            let held = self.hold(queue_ids).await?;
            Ok(format!(
                "{held} more messages put on hold ({})",
                queue_ids.join(" ")
            ))
        }))
    }
}

/// The count in postsuper's `postsuper: Placed on hold: 3 messages`.
fn placed_on_hold(stderr: &str) -> u64 {
    stderr
        .lines()
        .find_map(|line| line.split("Placed on hold: ").nth(1))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(map_type: &str, lock_map: &str) -> PostfixConfig {
        PostfixConfig {
            config_directory: default_config_directory(),
            lock_map: PathBuf::from(lock_map),
            map_type: map_type.to_string(),
            hold: true,
        }
    }

    #[test]
    fn bad_settings_are_refused() {
        assert!(Postfix::new(config("hash", "/etc/postfix/locked")).is_ok());
        assert!(Postfix::new(config("hash;rm", "/etc/postfix/locked")).is_err());
        assert!(Postfix::new(config("hash", "locked")).is_err());
    }

    #[test]
    fn postsuper_counts_are_read() {
        assert_eq!(placed_on_hold("postsuper: Placed on hold: 3 messages\n"), 3);
        assert_eq!(placed_on_hold("postsuper: Placed on hold: 1 message\n"), 1);
        assert_eq!(placed_on_hold("postsuper: warning: x\n"), 0);
    }
}
