//! A private Postfix instance: its own config, queue and data directories
//! and its own log file (postlogd's `maillog_file`), a SASL submission
//! service on a free loopback port, relaying everything to the sink.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use super::{
    kill_leftovers, process_is_alive, run_ok, start_daemon, tool, try_wait_until, wait_until,
};

pub struct Postfix {
    config_dir: PathBuf,
    queue_dir: PathBuf,
    log: PathBuf,
    running: bool,
}

impl Postfix {
    /// Writes main.cf and master.cf under `root`, checks them, and starts
    /// Postfix. Its SASL service is `<queue>/private/auth`, which Dovecot
    /// is expected to serve (see [`Postfix::auth_socket`]).
    pub fn start(root: &Path, submission_port: u16, relay_port: u16) -> Postfix {
        let config_dir = root.join("postfix");
        let queue_dir = root.join("queue");
        let data_dir = root.join("data");
        let log = root.join("postfix.log");
        for dir in [&config_dir, &queue_dir, &data_dir] {
            fs::create_dir_all(dir).unwrap();
        }
        fs::write(
            config_dir.join("main.cf"),
            main_cf(root, &queue_dir, &data_dir, &log, relay_port),
        )
        .unwrap();
        fs::write(config_dir.join("master.cf"), master_cf(submission_port)).unwrap();
        // master and postlogd write their state here as the postfix user.
        run_ok(Command::new("chown").arg("postfix").arg(&data_dir));

        let mut postfix = Postfix {
            config_dir,
            queue_dir,
            log,
            running: false,
        };
        // `check` also creates the queue's subdirectories with their owners.
        run_ok(postfix.command().arg("check"));
        postfix.running = true;
        start_daemon(
            postfix.command().arg("start"),
            &root.join("postfix-start.out"),
        );
        // The master logs this once its listeners are up. (Probing the port
        // instead would leave a stray connection in the log.)
        wait_until(
            "Postfix's master to log that it started",
            Duration::from_secs(20),
            || {
                let log = fs::read_to_string(&postfix.log).unwrap_or_default();
                assert!(!log.contains("fatal:"), "Postfix did not start:\n{log}");
                log.contains("daemon started")
            },
        );
        postfix
    }

    /// `postfix -c <config dir>`.
    fn command(&self) -> Command {
        let mut command = Command::new(tool("postfix"));
        command.arg("-c").arg(&self.config_dir);
        command
    }

    /// Where smtpd looks for Dovecot's SASL socket (`smtpd_sasl_path`).
    pub fn auth_socket(&self) -> PathBuf {
        self.queue_dir.join("private/auth")
    }

    pub fn log_path(&self) -> &Path {
        &self.log
    }

    /// Waits until every message, bounces included, has left the queue.
    pub fn wait_for_empty_queue(&self, timeout: Duration) {
        let listing = || {
            let output = run_ok(
                Command::new(tool("postqueue"))
                    .arg("-c")
                    .arg(&self.config_dir)
                    .arg("-p"),
            );
            String::from_utf8_lossy(&output.stdout).into_owned()
        };
        let deadline = std::time::Instant::now() + timeout;
        loop {
            let queue = listing();
            if queue.contains("Mail queue is empty") {
                return;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "Postfix's queue did not empty within {timeout:?} (log: {}):\n{queue}",
                self.log.display()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// Stops Postfix (waiting for its master to exit) and kills any process
    /// of this instance still alive. Idempotent.
    pub fn stop(&mut self) {
        if !self.running {
            return;
        }
        self.running = false;
        let master_pid = fs::read_to_string(self.queue_dir.join("pid/master.pid"))
            .ok()
            .and_then(|pid| pid.trim().parse::<u32>().ok());
        let _ = self.command().arg("stop").output();
        if let Some(pid) = master_pid {
            try_wait_until(Duration::from_secs(10), || !process_is_alive(pid));
        }
        // Postfix daemons run with the queue directory as their cwd.
        kill_leftovers(&self.queue_dir);
    }
}

impl Drop for Postfix {
    fn drop(&mut self) {
        self.stop();
    }
}

fn main_cf(root: &Path, queue_dir: &Path, data_dir: &Path, log: &Path, relay_port: u16) -> String {
    format!(
        "\
# Written by the mailfuse end-to-end test harness.
compatibility_level = 3.6
queue_directory = {queue}
data_directory = {data}
maillog_file = {log}
maillog_file_prefixes = {root}
myhostname = mail.example.test
mydomain = example.test
mydestination =
# TEST-NET-1: loopback clients must authenticate to relay.
mynetworks = 192.0.2.0/24
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
relayhost = [127.0.0.1]:{relay_port}
smtp_tls_security_level = none
smtpd_tls_security_level = none
default_destination_concurrency_limit = 2
alias_maps =
alias_database =
biff = no
",
        queue = queue_dir.display(),
        data = data_dir.display(),
        log = log.display(),
        root = root.display(),
    )
}

/// Debian's stock services without chroot (the queue is not set up as a
/// chroot jail), plus the submission service the clients use.
fn master_cf(submission_port: u16) -> String {
    format!(
        "\
# Written by the mailfuse end-to-end test harness.
127.0.0.1:{submission_port} inet n - n - - smtpd
  -o syslog_name=postfix/submission
  -o smtpd_sasl_auth_enable=yes
  -o smtpd_sasl_type=dovecot
  -o smtpd_sasl_path=private/auth
  -o smtpd_tls_security_level=none
  -o smtpd_tls_auth_only=no
  -o smtpd_relay_restrictions=permit_sasl_authenticated,reject
pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
flush     unix  n       -       n       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
smtp      unix  -       -       n       -       -       smtp
relay     unix  -       -       n       -       -       smtp
showq     unix  n       -       n       -       -       showq
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
"
    )
}
