//! Exim: lock accounts through a list of logins that an ACL looks up, and
//! freeze their queued messages (or remove them, if asked); unlocking takes
//! the login off the list and thaws its frozen messages.
//!
//! The lock list is a plain file, one login a line, that Exim reads at each
//! lookup: a change counts from the client's next MAIL command, with no
//! reload. `dist/exim/mailfuse-acl.conf` is the ACL statement that refuses
//! a locked login:
//!
//! ```text
//! deny  authenticated = *
//!       condition     = ${lookup{$authenticated_id}lsearch{MAILFUSE_LOCK_LIST}{yes}{no}}
//!       message       = 5.7.1 This account is locked after suspicious sending; contact your administrator
//! ```
//!
//! Queued messages are found by the login that submitted them (`-auth_id`
//! in the spool's `input/*-H` files), never by their envelope sender, which
//! a spammer forges: no other user's mail is touched.

use std::io::{self, BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::Output;

use serde::Deserialize;

use crate::capability::{ActFuture, Action, LockAccount, QueuedMail};
use crate::message::clean;
use crate::{tool, whole_file, ActError};

const ACTION: &str = "exim";

/// Message ids given to one `exim -M…` run.
const IDS_PER_RUN: usize = 100;

/// `[actions.exim]`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EximConfig {
    /// The Exim binary (on Debian, `exim` links to `exim4`).
    #[serde(default = "default_exim")]
    pub exim: PathBuf,
    /// A configuration file for Exim's `-C` (another instance's); by default
    /// Exim reads its own.
    pub config_file: Option<PathBuf>,
    /// Exim's spool; by default what `exim -bP spool_directory` says.
    pub spool_directory: Option<PathBuf>,
    /// The list of locked logins that the ACL looks up, rewritten whole on
    /// each change.
    pub lock_list: PathBuf,
    /// What becomes of a locked account's queued messages.
    #[serde(default)]
    pub queued: QueuedMessages,
}

fn default_exim() -> PathBuf {
    PathBuf::from("exim")
}

/// `[actions.exim] queued`.
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum QueuedMessages {
    /// Frozen (`exim -Mf`): kept for the admin to read, thawed on unlock.
    #[default]
    Freeze,
    /// Removed (`exim -Mrm`): gone for good.
    Remove,
    /// Left to go out.
    Keep,
}

/// What mailfuse asks Exim to do to messages, by id.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Operation {
    Freeze,
    Remove,
    Thaw,
}

impl Operation {
    fn option(self) -> &'static str {
        match self {
            Operation::Freeze => "-Mf",
            Operation::Remove => "-Mrm",
            Operation::Thaw => "-Mt",
        }
    }

    /// How Exim ends its `Message ID …` line for a message it changed.
    fn done(self) -> &'static str {
        match self {
            Operation::Freeze => " is now frozen",
            Operation::Remove => " has been removed",
            Operation::Thaw => " is no longer frozen",
        }
    }
}

/// Locks through the ACL's lock list, stops queued mail through Exim.
#[derive(Debug)]
pub struct Exim {
    lock_list: PathBuf,
    /// Absent with `queued = "keep"`.
    queue: Option<Queue>,
}

/// Exim's queue as mailfuse reaches it, and what it does to a locked
/// account's messages.
#[derive(Debug)]
struct Queue {
    program: String,
    /// `-C FILE`, when configured.
    config_args: Vec<String>,
    spool_directory: Option<PathBuf>,
    /// Freeze or remove.
    stop: Operation,
}

/// A message in Exim's spool.
#[derive(Debug, PartialEq, Eq)]
struct Spooled {
    id: String,
    /// The login that submitted it, if one did.
    login: Option<String>,
    frozen: bool,
}

impl Exim {
    /// Checks the configuration.
    pub fn new(config: EximConfig) -> Result<Exim, ActError> {
        if !config.lock_list.is_absolute() {
            return Err(ActError::new(ACTION, "lock_list must be an absolute path"));
        }
        for (name, path) in [
            ("config_file", &config.config_file),
            ("spool_directory", &config.spool_directory),
        ] {
            if path.as_ref().is_some_and(|path| !path.is_absolute()) {
                return Err(ActError::new(
                    ACTION,
                    format!("{name} must be an absolute path"),
                ));
            }
        }
        let stop = match config.queued {
            QueuedMessages::Freeze => Some(Operation::Freeze),
            QueuedMessages::Remove => Some(Operation::Remove),
            QueuedMessages::Keep => None,
        };
        let queue = stop.map(|stop| Queue {
            program: config.exim.to_string_lossy().into_owned(),
            config_args: config
                .config_file
                .iter()
                .flat_map(|file| ["-C".to_string(), file.to_string_lossy().into_owned()])
                .collect(),
            spool_directory: config.spool_directory.clone(),
            stop,
        });
        Ok(Exim {
            lock_list: config.lock_list,
            queue,
        })
    }

    /// Rewrites the lock list to hold exactly `accounts`.
    pub async fn write_locks(&self, accounts: &[String]) -> Result<(), ActError> {
        let mut list = String::from("# Written by mailfuse: logins locked after suspicious sending, looked up by Exim's ACL.\n# Unlock with `mailfuse unlock LOGIN`; edits here are overwritten.\n");
        for account in accounts {
            list.push_str(&lsearch_key(account)?);
            list.push('\n');
        }
        whole_file::replace(ACTION, &self.lock_list, list).await
    }
}

/// Exim locks accounts, and freezes or removes their queued mail unless
/// `queued = "keep"`.
impl Action for Exim {
    fn lock(&self) -> Option<&dyn LockAccount> {
        Some(self)
    }
    fn queue(&self) -> Option<&dyn QueuedMail> {
        self.queue.as_ref().map(|queue| queue as &dyn QueuedMail)
    }
}

impl LockAccount for Exim {
    fn journal_name(&self) -> &'static str {
        "exim.lock"
    }

    fn lock<'a>(&'a self, account: &'a str, locked: &'a [String]) -> ActFuture<'a, String> {
        Box::pin(async move {
            self.write_locks(locked).await?;
            Ok(format!("{account} refused by Exim (lock list rewritten)"))
        })
    }

    fn unlock<'a>(&'a self, _account: &'a str, locked: &'a [String]) -> ActFuture<'a, String> {
        Box::pin(async move {
            self.write_locks(locked).await?;
            Ok("removed from Exim's lock list".to_string())
        })
    }
}

impl Queue {
    /// `exim [-C FILE] ARGS…`, run to the end; judging it is the caller's.
    async fn exim(&self, args: &[&str]) -> Result<Output, ActError> {
        let all: Vec<&str> = self
            .config_args
            .iter()
            .map(String::as_str)
            .chain(args.iter().copied())
            .collect();
        tool::output(ACTION, &self.program, &all, b"").await
    }

    /// The spool: as configured, else as Exim says.
    async fn spool(&self) -> Result<PathBuf, ActError> {
        if let Some(spool) = &self.spool_directory {
            return Ok(spool.clone());
        }
        let output = self.exim(&["-bP", "spool_directory"]).await?;
        String::from_utf8_lossy(&output.stdout)
            .lines()
            .find_map(|line| line.strip_prefix("spool_directory = "))
            .map(PathBuf::from)
            .filter(|spool| output.status.success() && spool.is_absolute())
            .ok_or_else(|| {
                ActError::new(
                    ACTION,
                    format!(
                        "{} -bP spool_directory did not name the spool ({}): {}; set spool_directory",
                        self.program,
                        output.status,
                        said(&output)
                    ),
                )
            })
    }

    /// The messages in the spool that `account` submitted.
    async fn queued_by(&self, account: &str) -> Result<Vec<Spooled>, ActError> {
        let spool = self.spool().await?;
        let reading = spool.clone();
        let all = tokio::task::spawn_blocking(move || spooled(&reading))
            .await
            .map_err(|e| ActError::new(ACTION, format!("reading the spool failed: {e}")))?
            .map_err(|e| {
                ActError::new(
                    ACTION,
                    format!(
                        "cannot read Exim's spool {}: {e} (spool_directory must be what `exim -bP spool_directory` says; reading it takes root)",
                        spool.display()
                    ),
                )
            })?;
        let account = account.to_lowercase();
        Ok(all
            .into_iter()
            .filter(|m| {
                m.login
                    .as_ref()
                    .is_some_and(|l| l.to_lowercase() == account)
            })
            .collect())
    }

    /// Runs `operation` on the messages `ids` (those shaped like ids); how
    /// many Exim changed. A message delivered meanwhile, or already so, is
    /// no error.
    async fn apply(&self, operation: Operation, ids: &[String]) -> Result<usize, ActError> {
        let ids: Vec<&String> = ids.iter().filter(|id| is_message_id(id)).collect();
        let mut changed = 0;
        for batch in ids.chunks(IDS_PER_RUN) {
            let args: Vec<&str> = std::iter::once(operation.option())
                .chain(batch.iter().map(|id| id.as_str()))
                .collect();
            let output = self.exim(&args).await?;
            changed += changed_messages(&output, operation).map_err(|e| {
                ActError::new(
                    ACTION,
                    format!("{} {} failed: {e}", self.program, operation.option()),
                )
            })?;
        }
        Ok(changed)
    }

    fn stopped(&self) -> &'static str {
        match self.stop {
            Operation::Remove => "removed",
            _ => "frozen",
        }
    }
}

/// Exim finds a locked account's messages in its spool, by login.
impl QueuedMail for Queue {
    fn journal_name(&self) -> &'static str {
        match self.stop {
            Operation::Remove => "exim.remove",
            _ => "exim.freeze",
        }
    }

    fn stop_queued<'a>(&'a self, account: &'a str, _queued: &'a [String]) -> ActFuture<'a, String> {
        Box::pin(async move {
            let theirs = self.queued_by(account).await?;
            let ids: Vec<String> = theirs
                .into_iter()
                .filter(|m| self.stop == Operation::Remove || !m.frozen)
                .map(|m| m.id)
                .collect();
            let changed = self.apply(self.stop, &ids).await?;
            Ok(match self.stop {
                Operation::Remove => format!("{changed} of its queued messages removed"),
                _ => format!(
                    "{changed} of its queued messages frozen (exim -Mrm ID removes one, -Mt ID thaws it; unlock thaws them all)"
                ),
            })
        })
    }

    fn stop_late<'a>(&'a self, queue_ids: &'a [String]) -> Option<ActFuture<'a, String>> {
        Some(Box::pin(async move {
            let changed = self.apply(self.stop, queue_ids).await?;
            Ok(format!(
                "{changed} more messages {} ({})",
                self.stopped(),
                queue_ids.join(" ")
            ))
        }))
    }

    fn release<'a>(&'a self, account: &'a str) -> Option<ActFuture<'a, String>> {
        if self.stop != Operation::Freeze {
            return None;
        }
        Some(Box::pin(async move {
            let frozen: Vec<String> = self
                .queued_by(account)
                .await?
                .into_iter()
                .filter(|m| m.frozen)
                .map(|m| m.id)
                .collect();
            let thawed = self.apply(Operation::Thaw, &frozen).await?;
            Ok(format!("{thawed} of its frozen messages thawed"))
        }))
    }
}

/// `login` as a key of an lsearch file: quoted when it holds what would end
/// a plain key (white space, a colon) or start a comment.
fn lsearch_key(login: &str) -> Result<String, ActError> {
    if login.is_empty() || login.chars().any(char::is_control) {
        return Err(ActError::new(
            ACTION,
            format!("account {login:?} cannot be written in a lock list"),
        ));
    }
    let plain =
        !login.starts_with(['#', '"']) && !login.chars().any(|c| c.is_whitespace() || c == ':');
    if plain {
        return Ok(login.to_string());
    }
    Ok(format!(
        "\"{}\"",
        login.replace('\\', "\\\\").replace('"', "\\\"")
    ))
}

/// The messages in `spool`'s `input/` directory, and in its one-letter
/// subdirectories (`split_spool_directory`).
fn spooled(spool: &Path) -> io::Result<Vec<Spooled>> {
    let input = spool.join("input");
    let mut directories = vec![input.clone()];
    let mut messages = Vec::new();
    while let Some(directory) = directories.pop() {
        for entry in std::fs::read_dir(&directory)? {
            let entry = entry?;
            let name = entry.file_name();
            let name = name.to_string_lossy();
            if directory == input && name.len() == 1 && entry.file_type()?.is_dir() {
                directories.push(entry.path());
                continue;
            }
            let Some(id) = name.strip_suffix("-H").filter(|id| is_message_id(id)) else {
                continue;
            };
            let file = match std::fs::File::open(entry.path()) {
                Ok(file) => file,
                // Delivered since the directory was read.
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(e) => return Err(e),
            };
            let (login, frozen) = read_header(BufReader::new(file))?;
            messages.push(Spooled {
                id: id.to_string(),
                login,
                frozen,
            });
        }
    }
    Ok(messages)
}

/// Whether `id` is shaped like an Exim message id (and cannot pass for an
/// option on Exim's command line).
fn is_message_id(id: &str) -> bool {
    id.starts_with(|c: char| c.is_ascii_alphanumeric())
        && id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
}

/// The login (`-auth_id`) and frozen mark of a spool header file. Its
/// settings are the `-name value` lines (`--name` when Exim marks the value
/// tainted) after the first four (file name, owner, sender, arrival), up to
/// the first line of another kind; the message's own headers come later.
fn read_header(mut header: impl BufRead) -> io::Result<(Option<String>, bool)> {
    let (mut login, mut frozen) = (None, false);
    let mut line = Vec::new();
    let mut number = 0;
    loop {
        line.clear();
        if header.read_until(b'\n', &mut line)? == 0 {
            break;
        }
        number += 1;
        if number <= 4 {
            continue;
        }
        let Some(setting) = line.strip_prefix(b"-") else {
            break;
        };
        let setting = setting.strip_prefix(b"-").unwrap_or(setting);
        let setting = setting.strip_suffix(b"\n").unwrap_or(setting);
        if let Some(id) = setting.strip_prefix(b"auth_id ") {
            login = Some(String::from_utf8_lossy(id).into_owned());
        } else if setting == b"frozen" || setting.starts_with(b"frozen ") {
            frozen = true;
        }
    }
    Ok((login, frozen))
}

/// How many messages Exim says it changed (`Message ID is now frozen`); an
/// error when it failed without a word about any message (a configuration
/// it cannot read, a caller not allowed to).
fn changed_messages(output: &Output, operation: Operation) -> Result<usize, String> {
    let stdout = String::from_utf8_lossy(&output.stdout);
    let about_messages = stdout
        .lines()
        .filter(|line| line.starts_with("Message ") || line.starts_with("Spool data file for "))
        .count();
    if !output.status.success() && about_messages == 0 {
        return Err(format!("({}): {}", output.status, said(output)));
    }
    Ok(stdout
        .lines()
        .filter(|line| line.starts_with("Message ") && line.ends_with(operation.done()))
        .count())
}

/// What a run of Exim wrote, for an error message.
fn said(output: &Output) -> String {
    let text = format!(
        "{} {}",
        String::from_utf8_lossy(&output.stderr).trim(),
        String::from_utf8_lossy(&output.stdout).trim()
    );
    clean(text.trim(), 500)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;
    use std::os::unix::process::ExitStatusExt;
    use std::process::ExitStatus;

    fn config(lock_list: &str) -> EximConfig {
        EximConfig {
            exim: default_exim(),
            config_file: None,
            spool_directory: None,
            lock_list: PathBuf::from(lock_list),
            queued: QueuedMessages::default(),
        }
    }

    #[test]
    fn the_section_reads_with_freeze_as_default_and_refuses_unknown_keys() {
        let read = |json: serde_json::Value| serde_json::from_value::<EximConfig>(json);
        let plain = read(serde_json::json!({"lock_list": "/etc/exim4/mailfuse/locked"})).unwrap();
        assert_eq!(plain.queued, QueuedMessages::Freeze);
        assert_eq!(plain.exim, PathBuf::from("exim"));
        let remove = read(serde_json::json!({"lock_list": "/l", "queued": "remove"})).unwrap();
        assert_eq!(remove.queued, QueuedMessages::Remove);
        assert!(read(serde_json::json!({"lock_list": "/l", "queued": "bounce"})).is_err());
        assert!(read(serde_json::json!({"lock_list": "/l", "hold": true})).is_err());
    }

    #[test]
    fn relative_paths_are_refused() {
        assert!(Exim::new(config("/etc/exim4/mailfuse/locked")).is_ok());
        assert!(Exim::new(config("locked")).is_err());
        let mut spool = config("/l");
        spool.spool_directory = Some(PathBuf::from("spool"));
        assert!(Exim::new(spool).is_err());
        let mut file = config("/l");
        file.config_file = Some(PathBuf::from("exim.conf"));
        assert!(Exim::new(file).is_err());
    }

    #[test]
    fn keep_leaves_the_queue_alone_and_only_freeze_releases() {
        let with = |queued| {
            let mut config = config("/l");
            config.queued = queued;
            Exim::new(config).unwrap()
        };
        assert!(with(QueuedMessages::Keep).queue().is_none());
        let freeze = with(QueuedMessages::Freeze);
        let queue = freeze.queue().unwrap();
        assert_eq!(queue.journal_name(), "exim.freeze");
        assert!(queue.release("a@b").is_some());
        let remove = with(QueuedMessages::Remove);
        let queue = remove.queue().unwrap();
        assert_eq!(queue.journal_name(), "exim.remove");
        assert!(queue.release("a@b").is_none());
    }

    #[test]
    fn logins_are_written_as_lsearch_keys() {
        assert_eq!(
            lsearch_key("sales@example.com").unwrap(),
            "sales@example.com"
        );
        assert_eq!(lsearch_key("a:b").unwrap(), "\"a:b\"");
        assert_eq!(lsearch_key("#x y").unwrap(), "\"#x y\"");
        assert_eq!(lsearch_key("q\"\\").unwrap(), "q\"\\");
        assert_eq!(lsearch_key("\"a\\ b").unwrap(), r#""\"a\\ b""#);
        assert!(lsearch_key("").is_err());
        assert!(lsearch_key("a\nb").is_err());
    }

    #[tokio::test]
    async fn the_lock_list_is_rewritten_whole_keeping_its_mode() {
        let dir = tempfile::tempdir().unwrap();
        let list = dir.path().join("locked");
        let exim = Exim::new(config(list.to_str().unwrap())).unwrap();
        exim.write_locks(&["a@example.com".into(), "b@example.com".into()])
            .await
            .unwrap();
        let mode = |path: &Path| std::fs::metadata(path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&list), 0o644, "Exim's user reads a new list");
        let logins = |path: &Path| -> Vec<String> {
            std::fs::read_to_string(path)
                .unwrap()
                .lines()
                .filter(|line| !line.starts_with('#'))
                .map(str::to_string)
                .collect()
        };
        assert_eq!(logins(&list), ["a@example.com", "b@example.com"]);
        std::fs::set_permissions(&list, std::fs::Permissions::from_mode(0o640)).unwrap();
        exim.write_locks(&["b@example.com".into()]).await.unwrap();
        assert_eq!(logins(&list), ["b@example.com"]);
        assert_eq!(mode(&list), 0o640, "the admin's mode stays");
    }

    /// A spool header file as Exim 4.96 writes it.
    fn header(id: &str, auth_id: Option<&str>, frozen: bool) -> String {
        let mut text = format!(
            "{id}-H\nDebian-exim 107 111\n<forged@elsewhere.example>\n1796467567 0\n\
             -received_time_usec .874283\n--helo_name vm\n-host_address [127.66.6.6]:37881\n\
             -received_protocol esmtpa\n"
        );
        if let Some(login) = auth_id {
            text.push_str(&format!("--auth_id {login}\n"));
        }
        if frozen {
            text.push_str("-frozen 1796467657\n");
        }
        // The recipients and headers are the client's: never settings.
        text.push_str("XX\n1\n-auth_id victim@example.com\n\n175P Received: x\n");
        text
    }

    #[test]
    fn a_header_gives_its_login_and_frozen_mark_and_nothing_from_the_message() {
        let read = |text: String| read_header(text.as_bytes()).unwrap();
        assert_eq!(
            read(header("1xZnHL-0001NL-2o", Some("sales@example.com"), true)),
            (Some("sales@example.com".to_string()), true)
        );
        assert_eq!(read(header("1xZnHL-0001NL-2o", None, false)), (None, false));
        // Before 4.94, no tainted mark.
        let old = "i-H\nu 1 1\n<a@b>\n1 0\n-auth_id old@example.com\nXX\n".to_string();
        assert_eq!(read(old), (Some("old@example.com".to_string()), false));
    }

    #[test]
    fn the_spool_is_read_with_split_directories_and_only_header_files() {
        let spool = tempfile::tempdir().unwrap();
        let input = spool.path().join("input");
        std::fs::create_dir_all(input.join("L")).unwrap();
        let write = |path: PathBuf, text: String| std::fs::write(path, text).unwrap();
        let a = "1xZnHL-0001NL-2o";
        let b = "1xZnIL-0001NL-3o";
        write(
            input.join(format!("{a}-H")),
            header(a, Some("sales@example.com"), false),
        );
        write(input.join(format!("{a}-D")), "body".into());
        write(
            input.join("L").join(format!("{b}-H")),
            header(b, None, true),
        );
        write(
            input.join("-x-H"),
            header("-x", Some("sales@example.com"), false),
        );
        let mut found = spooled(spool.path()).unwrap();
        found.sort_by(|x, y| x.id.cmp(&y.id));
        assert_eq!(
            found,
            [
                Spooled {
                    id: a.to_string(),
                    login: Some("sales@example.com".to_string()),
                    frozen: false
                },
                Spooled {
                    id: b.to_string(),
                    login: None,
                    frozen: true
                },
            ]
        );
        assert!(spooled(&spool.path().join("missing")).is_err());
    }

    fn output(code: i32, stdout: &str) -> Output {
        Output {
            status: ExitStatus::from_raw(code << 8),
            stdout: stdout.as_bytes().to_vec(),
            stderr: Vec::new(),
        }
    }

    #[test]
    fn exims_report_is_counted_and_a_failure_without_one_is_an_error() {
        // As Exim 4.96 answers `-Mf` for a message frozen, one already
        // frozen and one delivered meanwhile (exit status 1).
        let mixed = "Message 1xZnHL-0001NL-2o is now frozen\n\
                     Message 1xZnIi-0001V3-33 is already frozen\n\
                     Spool data file for 1xZnZZ-0001V3-33 does not exist\n";
        assert_eq!(
            changed_messages(&output(1, mixed), Operation::Freeze),
            Ok(1)
        );
        let removed = "Message 1xZnHL-0001NL-2o has been removed\n\
                       Message 1xZnZZ-0001V3-33 has been removed or did not exist\n";
        assert_eq!(
            changed_messages(&output(1, removed), Operation::Remove),
            Ok(1)
        );
        let thawed = "Message 1xZnHL-0001NL-2o is no longer frozen\n";
        assert_eq!(changed_messages(&output(0, thawed), Operation::Thaw), Ok(1));
        let refused = output(1, "exim: permission denied\n");
        assert!(changed_messages(&refused, Operation::Freeze)
            .unwrap_err()
            .contains("permission denied"));
    }
}
