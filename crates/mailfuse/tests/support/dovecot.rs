//! A private Dovecot instance that serves SASL authentication to Postfix,
//! from a passwd-file, and logs to its own file (`log_path`); with
//! [`Options::imap`], IMAP too (Maildirs in the lab, owned by nobody), and
//! whatever other lines a test adds (an auth policy).

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use super::{kill_leftovers, process_is_alive, start_daemon, tool, try_wait_until, wait_until};

/// What a lab's Dovecot serves beyond SASL for Postfix.
#[derive(Clone, Debug, Default)]
pub struct Options {
    /// IMAP on a free loopback port ([`Dovecot::imap_port`]), chosen as
    /// Dovecot starts so that no other process takes it meanwhile.
    pub imap: bool,
    /// More `dovecot.conf` lines, appended as given.
    pub extra: String,
}

/// Who owns the IMAP mailboxes (Debian's nobody and nogroup).
const MAILBOX_OWNER: &str = "uid=nobody gid=nogroup";

pub struct Dovecot {
    config: PathBuf,
    base_dir: PathBuf,
    log: PathBuf,
    imap_port: Option<u16>,
    running: bool,
}

impl Dovecot {
    /// Starts Dovecot with `users` (address, password) and waits for its
    /// auth socket at `auth_socket`, owned by the postfix user (and for
    /// its IMAP port, when `options` ask for one).
    pub fn start(
        root: &Path,
        auth_socket: &Path,
        users: &[(&str, &str)],
        options: &Options,
    ) -> Dovecot {
        let dir = root.join("dovecot");
        let base_dir = dir.join("run");
        let state_dir = dir.join("state");
        for dir in [&base_dir, &state_dir] {
            fs::create_dir_all(dir).unwrap();
        }
        let passwd = dir.join("users");
        let entries: String = users
            .iter()
            .map(|(user, password)| format!("{user}:{{PLAIN}}{password}\n"))
            .collect();
        fs::write(&passwd, entries).unwrap();

        let log = root.join("dovecot.log");
        let config = dir.join("dovecot.conf");
        let imap_port = options.imap.then(super::free_port);
        let imap = imap_port
            .map(|port| imap_lines(&dir.join("mail"), port))
            .unwrap_or_default();
        fs::write(
            &config,
            format!(
                "\
# Written by the mailfuse end-to-end test harness.
base_dir = {base}
state_dir = {state}
protocols = {protocols}
ssl = no
log_path = {log}
auth_verbose = yes
auth_mechanisms = plain login
# No 2 s delay before failure replies and no per-IP penalty: the test sends a
# dozen wrong passwords in a row and must stay fast. Neither changes what is logged.
auth_failure_delay = 0
service anvil {{
  unix_listener anvil-auth-penalty {{
    mode = 0
  }}
}}
passdb {{
  driver = passwd-file
  args = {passwd}
}}
service auth {{
  unix_listener {socket} {{
    mode = 0660
    user = postfix
    group = postfix
  }}
}}
",
                base = base_dir.display(),
                state = state_dir.display(),
                log = log.display(),
                passwd = passwd.display(),
                socket = auth_socket.display(),
                protocols = if options.imap { "imap" } else { "" },
            ) + &imap
                + &options.extra,
        )
        .unwrap();

        let mut dovecot = Dovecot {
            config,
            base_dir,
            log,
            imap_port,
            running: false,
        };
        dovecot.running = true;
        start_daemon(
            Command::new(tool("dovecot")).arg("-c").arg(&dovecot.config),
            &dir.join("start.out"),
        );
        wait_until(
            "Dovecot's auth socket for Postfix",
            Duration::from_secs(10),
            || auth_socket.exists(),
        );
        if let Some(port) = imap_port {
            wait_until("Dovecot's IMAP port", Duration::from_secs(10), || {
                std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
            });
        }
        dovecot
    }

    /// Its IMAP port, when it serves IMAP.
    pub fn imap_port(&self) -> Option<u16> {
        self.imap_port
    }

    /// Its configuration file, for `doveadm -c`.
    pub fn config_path(&self) -> &Path {
        &self.config
    }

    pub fn log_path(&self) -> &Path {
        &self.log
    }

    /// Stops Dovecot (waiting for its master to exit) and kills any process
    /// of this instance still alive. Idempotent.
    pub fn stop(&mut self) {
        if !self.running {
            return;
        }
        self.running = false;
        let master_pid = fs::read_to_string(self.base_dir.join("master.pid"))
            .ok()
            .and_then(|pid| pid.trim().parse::<u32>().ok());
        let _ = Command::new(tool("doveadm"))
            .arg("-c")
            .arg(&self.config)
            .arg("stop")
            .output();
        if let Some(pid) = master_pid {
            try_wait_until(Duration::from_secs(10), || !process_is_alive(pid));
        }
        // Dovecot's processes run with the base directory as their cwd.
        kill_leftovers(&self.base_dir);
    }
}

/// `dovecot.conf`'s lines for IMAP on loopback `port`, with Maildirs under
/// `mail` (created, owned by nobody, who the mail processes run as).
fn imap_lines(mail: &Path, port: u16) -> String {
    fs::create_dir_all(mail).unwrap();
    super::run_ok(Command::new("chown").arg("nobody:nogroup").arg(mail));
    format!(
        "\
listen = 127.0.0.1
disable_plaintext_auth = no
mail_location = maildir:{mail}/%d/%n
userdb {{
  driver = static
  args = {MAILBOX_OWNER} home={mail}/%d/%n
}}
service imap-login {{
  inet_listener imap {{
    address = 127.0.0.1
    port = {port}
  }}
  inet_listener imaps {{
    port = 0
  }}
}}
",
        mail = mail.display(),
    )
}

impl Drop for Dovecot {
    fn drop(&mut self) {
        self.stop();
    }
}
