//! A private Dovecot instance that only serves SASL authentication to
//! Postfix, from a passwd-file, and logs to its own file (`log_path`).

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use super::{kill_leftovers, process_is_alive, start_daemon, tool, try_wait_until, wait_until};

pub struct Dovecot {
    config: PathBuf,
    base_dir: PathBuf,
    log: PathBuf,
    running: bool,
}

impl Dovecot {
    /// Starts Dovecot with `users` (address, password) and waits for its
    /// auth socket at `auth_socket`, owned by the postfix user.
    pub fn start(root: &Path, auth_socket: &Path, users: &[(&str, &str)]) -> Dovecot {
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
        fs::write(
            &config,
            format!(
                "\
# Written by the mailfuse end-to-end test harness.
base_dir = {base}
state_dir = {state}
protocols =
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
            ),
        )
        .unwrap();

        let mut dovecot = Dovecot {
            config,
            base_dir,
            log,
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
        dovecot
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

impl Drop for Dovecot {
    fn drop(&mut self) {
        self.stop();
    }
}
