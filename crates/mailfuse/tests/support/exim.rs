//! A private Exim: Debian's exim4-daemon-light binary, extracted by
//! `scripts/install-test-deps` (installing it would replace Postfix as the
//! system MTA), run as root with its own configuration (`-C`), spool, log
//! and loopback port.
//!
//! It takes mail from the logins of a password list (a plaintext LOGIN
//! authenticator over an lsearch file) and keeps every message queued: its
//! only router defers every recipient (`==` lines in the log), so nothing
//! ever leaves the machine. The ACL that refuses locked logins is
//! `dist/exim/mailfuse-acl.conf` as shipped, included at the top of the
//! MAIL ACL.
//!
//! Quirks of running it so: the binary is built to run as `Debian-exim`,
//! which must exist (install-test-deps makes it as exim4-base's postinst
//! does); it re-executes itself through `exim_path`, which must name the
//! extracted binary; with `-C`, the processes it starts as its own user
//! lose root ("exim user lost privilege for using -C option" in the log),
//! which a lab that delivers nothing does not need.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use super::swaks::Swaks;
use super::{
    free_port, kill_leftovers, lab_dir, process_is_alive, run_ok, start_daemon, tool,
    try_wait_until, wait_until, Workdir,
};

/// Where `scripts/install-test-deps` extracts exim4-daemon-light.
const EXTRACTED: &str = "/var/cache/mailfuse-test/exim";

/// The user the Debian binary runs as.
const EXIM_USER: &str = "Debian-exim";

/// A message in Exim's queue, from `exim -bp`.
#[derive(Clone, Debug)]
pub struct Queued {
    pub id: String,
    pub frozen: bool,
}

pub struct Exim {
    binary: PathBuf,
    config: PathBuf,
    spool: PathBuf,
    log_dir: PathBuf,
    pid_file: PathBuf,
    lock_list: PathBuf,
    port: u16,
    running: bool,
}

impl Exim {
    /// Starts Exim under `root` with `users` (login, password), and waits
    /// until it listens.
    pub fn start(root: &Path, users: &[(&str, &str)]) -> Exim {
        let binary = Path::new(EXTRACTED).join("usr/sbin/exim4");
        assert!(
            binary.is_file(),
            "no Exim at {}: run scripts/install-test-deps (as root) first; it extracts \
             Debian's exim4-daemon-light there without installing it",
            binary.display()
        );
        let dir = root.join("exim");
        let spool = dir.join("spool");
        let log_dir = dir.join("log");
        for writable in [&spool, &log_dir] {
            fs::create_dir_all(writable).unwrap();
            run_ok(
                Command::new("chown")
                    .arg(format!("{EXIM_USER}:{EXIM_USER}"))
                    .arg(writable),
            );
        }
        let passwords = dir.join("passwords");
        let entries: String = users
            .iter()
            .map(|(user, password)| format!("{user}: {password}\n"))
            .collect();
        fs::write(&passwords, entries).unwrap();
        let lock_list = dir.join("locked");
        fs::write(&lock_list, "").unwrap();
        // The ACL as shipped, beside the configuration that includes it.
        let acl = dir.join("mailfuse-acl.conf");
        fs::copy(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../../dist/exim/mailfuse-acl.conf"),
            &acl,
        )
        .unwrap();

        let port = free_port();
        let config = dir.join("exim.conf");
        let exim = Exim {
            pid_file: dir.join("exim.pid"),
            binary,
            config,
            spool,
            log_dir,
            lock_list,
            port,
            running: true,
        };
        fs::write(&exim.config, exim.configuration(&passwords, &acl)).unwrap();
        start_daemon(exim.command().arg("-bd"), &dir.join("start.out"));
        wait_until("Exim to start listening", Duration::from_secs(20), || {
            let log = fs::read_to_string(exim.mainlog()).unwrap_or_default();
            log.contains("daemon started") && exim.pid_file.exists()
        });
        exim
    }

    fn configuration(&self, passwords: &Path, acl: &Path) -> String {
        format!(
            "\
# Written by the mailfuse end-to-end test harness.
MAILFUSE_LOCK_LIST = {lock_list}
exim_path = {binary}
spool_directory = {spool}
log_file_path = {log_dir}/%slog
pid_file_path = {pid_file}
primary_hostname = mail.example.test
qualify_domain = example.test
timezone = UTC
daemon_smtp_ports = {port}
local_interfaces = 127.0.0.1
# No DNS or ident lookups of clients, no TLS, no environment passed on.
host_lookup =
rfc1413_hosts =
tls_advertise_hosts =
keep_environment =
acl_smtp_mail = acl_check_mail
acl_smtp_rcpt = acl_check_rcpt

begin acl

acl_check_mail:
.include {acl}
  accept

acl_check_rcpt:
  accept  authenticated = *
  deny    message = 5.7.1 Relaying needs a login

begin routers

hold_everything:
  driver = redirect
  allow_defer
  data = :defer: held by the test: nothing leaves the lab

begin retry

*  *  F,1d,1h

begin authenticators

login:
  driver = plaintext
  public_name = LOGIN
  server_prompts = Username:: : Password::
  server_condition = ${{lookup{{$auth1}}lsearch{{{passwords}}}{{${{if eq{{$value}}{{$auth2}}{{yes}}{{no}}}}}}{{no}}}}
  server_set_id = $auth1
",
            lock_list = self.lock_list.display(),
            binary = self.binary.display(),
            spool = self.spool.display(),
            log_dir = self.log_dir.display(),
            pid_file = self.pid_file.display(),
            port = self.port,
            acl = acl.display(),
            passwords = passwords.display(),
        )
    }

    /// `exim -C <its configuration>`, for more arguments.
    pub fn command(&self) -> Command {
        let mut command = Command::new(&self.binary);
        command.arg("-C").arg(&self.config);
        command
    }

    pub fn binary(&self) -> &Path {
        &self.binary
    }

    pub fn config_file(&self) -> &Path {
        &self.config
    }

    /// The list of locked logins that the ACL looks up, created empty.
    pub fn lock_list(&self) -> &Path {
        &self.lock_list
    }

    pub fn mainlog(&self) -> PathBuf {
        self.log_dir.join("mainlog")
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The messages in the queue now (`exim -bp`: a line per message, `AGE
    /// SIZE ID <SENDER>` and `*** frozen ***`, then its recipients).
    pub fn queue(&self) -> Vec<Queued> {
        let output = run_ok(self.command().arg("-bp"));
        String::from_utf8_lossy(&output.stdout)
            .lines()
            .filter_map(|line| {
                let fields: Vec<&str> = line.split_whitespace().collect();
                match fields[..] {
                    [_age, _size, id, sender, ..] if sender.starts_with('<') => Some(Queued {
                        id: id.to_string(),
                        frozen: line.ends_with("*** frozen ***"),
                    }),
                    _ => None,
                }
            })
            .collect()
    }

    /// Stops the daemon and kills any process of this instance still
    /// alive. Idempotent.
    pub fn stop(&mut self) {
        if !self.running {
            return;
        }
        self.running = false;
        let pid = fs::read_to_string(&self.pid_file)
            .ok()
            .and_then(|pid| pid.trim().parse::<u32>().ok());
        if let Some(pid) = pid {
            let _ = Command::new("kill")
                .args(["-TERM", &pid.to_string()])
                .output();
            try_wait_until(Duration::from_secs(10), || !process_is_alive(pid));
        }
        // Exim's processes run in the spool directory.
        kill_leftovers(&self.spool);
    }
}

impl Drop for Exim {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Exim in a temp dir of its own, and swaks to submit to it. Fields drop
/// in order: Exim stops before the directory goes.
pub struct EximLab {
    exim: Exim,
    client: Swaks,
    root: PathBuf,
    _workdir: Workdir,
}

impl EximLab {
    /// Starts Exim with `users` (login, password). Needs root and
    /// `scripts/install-test-deps`.
    pub fn start(users: &[(&str, &str)]) -> EximLab {
        tool("swaks");
        let (root, workdir) = lab_dir();
        let exim = Exim::start(&root, users);
        EximLab {
            client: Swaks::new(exim.port()),
            exim,
            root,
            _workdir: workdir,
        }
    }

    pub fn exim(&self) -> &Exim {
        &self.exim
    }

    /// swaks, submitting to Exim.
    pub fn client(&self) -> &Swaks {
        &self.client
    }

    /// The lab's directory, for files a test adds.
    pub fn dir(&self) -> &Path {
        &self.root
    }
}
