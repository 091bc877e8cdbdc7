//! Dovecot: end a locked account's IMAP, POP3 and submission sessions
//! (`doveadm kick`). Its new logins are refused by `watch`'s auth policy
//! server (`[watch.auth_policy]`), which Dovecot asks before every login and
//! which reads the lock from mailfuse's state: unlocking there is all an
//! unlock needs, nothing is written into Dovecot.
//!
//! `doveadm kick` takes a user mask (`*` and `?` are wildcards) or an IP
//! network: a login that would read as either is refused rather than kick
//! other users.

use std::net::IpAddr;
use std::path::PathBuf;

use serde::Deserialize;

use crate::capability::{ActFuture, Action, LockAccount};
use crate::message::clean;
use crate::{tool, ActError};

const ACTION: &str = "dovecot";

/// `doveadm kick`'s exit status when no session of the user was open
/// (`EX_NOUSER`).
const NO_SESSION: i32 = 68;

/// `[actions.dovecot]`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DovecotConfig {
    /// The doveadm binary.
    #[serde(default = "default_doveadm")]
    pub doveadm: PathBuf,
    /// The configuration of the Dovecot instance to reach, given to
    /// `doveadm -c` (another instance's); by default doveadm reads the
    /// system's, `/etc/dovecot/dovecot.conf`.
    pub config_file: Option<PathBuf>,
}

fn default_doveadm() -> PathBuf {
    PathBuf::from("doveadm")
}

/// Ends sessions through doveadm.
#[derive(Debug)]
pub struct Dovecot {
    program: String,
    /// `-c FILE`, when configured.
    config_args: Vec<String>,
}

impl Dovecot {
    /// Checks the configuration.
    pub fn new(config: DovecotConfig) -> Result<Dovecot, ActError> {
        if config
            .config_file
            .as_ref()
            .is_some_and(|file| !file.is_absolute())
        {
            return Err(ActError::new(
                ACTION,
                "config_file must be an absolute path",
            ));
        }
        Ok(Dovecot {
            program: config.doveadm.to_string_lossy().into_owned(),
            config_args: config
                .config_file
                .iter()
                .flat_map(|file| ["-c".to_string(), file.to_string_lossy().into_owned()])
                .collect(),
        })
    }

    /// Ends every session of `account`; whether one was open.
    pub async fn kick(&self, account: &str) -> Result<bool, ActError> {
        let account = kick_target(account)?;
        let args: Vec<&str> = self
            .config_args
            .iter()
            .map(String::as_str)
            .chain(["kick", account])
            .collect();
        let output = tool::output(ACTION, &self.program, &args, b"").await?;
        match output.status.code() {
            Some(0) => Ok(true),
            Some(NO_SESSION) => Ok(false),
            _ => Err(ActError::new(
                ACTION,
                format!(
                    "{} {} failed ({}): {} (doveadm must reach the instance's anvil: run as root, with config_file naming its dovecot.conf)",
                    self.program,
                    args.join(" "),
                    output.status,
                    clean(
                        format!(
                            "{} {}",
                            String::from_utf8_lossy(&output.stderr).trim(),
                            String::from_utf8_lossy(&output.stdout).trim()
                        )
                        .trim(),
                        500
                    )
                ),
            )),
        }
    }
}

/// `account` as doveadm kick's argument, or why it cannot be one: a mask
/// (`*`, `?`) or a network would end other users' sessions, a leading `-`
/// would be an option.
fn kick_target(account: &str) -> Result<&str, ActError> {
    let network = account
        .split_once('/')
        .map_or(account, |(address, _)| address)
        .parse::<IpAddr>()
        .is_ok();
    let unsafe_name = account.is_empty()
        || account.starts_with('-')
        || account.contains(['*', '?'])
        || account.chars().any(char::is_control)
        || network;
    if unsafe_name {
        return Err(ActError::new(
            ACTION,
            format!(
                "account {account:?} reads as a mask or a network to doveadm kick: not kicked (end its sessions by hand)"
            ),
        ));
    }
    Ok(account)
}

/// Dovecot locks accounts: it ends their sessions, and the auth policy
/// refuses their logins.
impl Action for Dovecot {
    fn lock(&self) -> Option<&dyn LockAccount> {
        Some(self)
    }
}

impl LockAccount for Dovecot {
    fn journal_name(&self) -> &'static str {
        "dovecot.kick"
    }

    fn lock<'a>(&'a self, account: &'a str, _locked: &'a [String]) -> ActFuture<'a, String> {
        Box::pin(async move {
            let ended = match self.kick(account).await? {
                true => "its Dovecot sessions ended (doveadm kick)",
                false => "no Dovecot session of it was open",
            };
            Ok(format!(
                "{ended}; Dovecot's new logins of {account} are refused while it is locked, where Dovecot asks watch's auth policy"
            ))
        })
    }

    fn unlock<'a>(&'a self, _account: &'a str, _locked: &'a [String]) -> ActFuture<'a, String> {
        Box::pin(async move {
            Ok("Dovecot lets it log in again (the auth policy reads the lock from mailfuse's state; nothing to undo in Dovecot)".to_string())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_section_reads_and_refuses_unknown_keys_and_relative_configs() {
        let read = |json: serde_json::Value| serde_json::from_value::<DovecotConfig>(json);
        let plain = read(serde_json::json!({})).unwrap();
        assert_eq!(plain.doveadm, PathBuf::from("doveadm"));
        assert!(Dovecot::new(plain).unwrap().config_args.is_empty());
        let other = read(serde_json::json!({"config_file": "/etc/dovecot2/dovecot.conf"})).unwrap();
        assert_eq!(
            Dovecot::new(other).unwrap().config_args,
            ["-c", "/etc/dovecot2/dovecot.conf"]
        );
        let relative = read(serde_json::json!({"config_file": "dovecot.conf"})).unwrap();
        assert!(Dovecot::new(relative).is_err());
        assert!(read(serde_json::json!({"socket": "/run/dovecot/anvil"})).is_err());
    }

    #[test]
    fn only_plain_logins_are_kicked_never_masks_networks_or_options() {
        for login in ["sales@example.com", "sales", "o'brien@example.com", "a/b"] {
            assert_eq!(kick_target(login).unwrap(), login);
        }
        for login in [
            "",
            "*",
            "sales*",
            "s?les@example.com",
            "-a",
            "192.0.2.7",
            "192.0.2.0/24",
            "2001:db8::/32",
            "a\nb",
        ] {
            assert!(kick_target(login).is_err(), "{login:?}");
        }
    }

    #[tokio::test]
    async fn unlock_has_nothing_to_undo() {
        let dovecot = Dovecot::new(DovecotConfig {
            doveadm: PathBuf::from("/nonexistent/doveadm"),
            config_file: None,
        })
        .unwrap();
        let said = LockAccount::unlock(&dovecot, "a@b", &[]).await.unwrap();
        assert!(said.contains("nothing to undo"), "{said}");
    }

    /// A doveadm that notes its arguments and exits with `code`.
    fn fake_doveadm(dir: &std::path::Path, code: i32) -> Dovecot {
        use std::os::unix::fs::PermissionsExt;
        let program = dir.join(format!("doveadm-{code}"));
        let script = format!(
            "#!/bin/sh\necho \"$@\" > {}/args\necho 'Fatal: no anvil' >&2\nexit {code}\n",
            dir.display()
        );
        std::fs::write(&program, script).unwrap();
        std::fs::set_permissions(&program, std::fs::Permissions::from_mode(0o755)).unwrap();
        Dovecot::new(DovecotConfig {
            doveadm: program,
            config_file: Some(PathBuf::from("/srv/dovecot/dovecot.conf")),
        })
        .unwrap()
    }

    #[tokio::test]
    async fn kick_tells_an_ended_session_from_none_and_from_a_failure() {
        let dir = tempfile::tempdir().unwrap();
        let args = || std::fs::read_to_string(dir.path().join("args")).unwrap();
        let said = LockAccount::lock(&fake_doveadm(dir.path(), 0), "sales@example.com", &[])
            .await
            .unwrap();
        assert!(said.starts_with("its Dovecot sessions ended"), "{said}");
        assert_eq!(
            args().trim(),
            "-c /srv/dovecot/dovecot.conf kick sales@example.com"
        );
        let said = LockAccount::lock(&fake_doveadm(dir.path(), 68), "sales@example.com", &[])
            .await
            .unwrap();
        assert!(said.starts_with("no Dovecot session"), "{said}");
        let error = fake_doveadm(dir.path(), 75)
            .kick("sales@example.com")
            .await
            .unwrap_err();
        assert!(error.message.contains("no anvil"), "{error}");
        assert!(fake_doveadm(dir.path(), 0).kick("*").await.is_err());
    }

    #[tokio::test]
    async fn a_doveadm_that_cannot_run_is_an_error_that_says_so() {
        let dovecot = Dovecot::new(DovecotConfig {
            doveadm: PathBuf::from("/nonexistent/doveadm"),
            config_file: None,
        })
        .unwrap();
        let error = dovecot.kick("a@b").await.unwrap_err();
        assert!(error.message.contains("cannot run"), "{error}");
    }
}
