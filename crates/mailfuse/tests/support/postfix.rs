//! A private Postfix instance: its own config, queue and data directories
//! and its own log file (postlogd's `maillog_file`), a SASL submission
//! service on a free loopback port, relaying everything to the sink.
//! [`Options`] add what `mailfuse watch` acts through: an access map of
//! locked logins, local mailboxes for the admin's alerts, and a relay that
//! keeps mail queued.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use serde_json::Value;

use super::{
    kill_leftovers, process_is_alive, run_ok, start_daemon, tool, try_wait_until, wait_until,
};

/// What a lab needs beyond the plain one; the default is the plain one.
#[derive(Clone, Debug, Default)]
pub struct Options {
    /// Refuse relaying for the logins listed in an access map
    /// (`check_sasl_access hash:<config dir>/mailfuse_locked`, created
    /// empty), as `mailfuse watch`'s Postfix action expects.
    pub lock_map: bool,
    /// Deliver mail for these addresses to Maildirs under `<lab>/mail/`.
    pub local_mailboxes: Option<LocalMailboxes>,
    /// Keep relayed mail in the queue (`defer_transports = smtp`) instead
    /// of handing it to the sink, so that there is queued mail to hold.
    pub defer_relay: bool,
    /// Log timestamps in UTC whatever the machine's zone (`TZ=UTC`).
    pub utc_log: bool,
    /// Pass every message through a loopback content filter
    /// (`content_filter = scan:[127.0.0.1]:PORT`, [`start_content_filter`])
    /// that re-injects it through a second smtpd, as amavis does.
    pub content_filter: bool,
}

/// Local mailboxes and the plain smtpd that takes mail for them.
#[derive(Clone, Debug)]
pub struct LocalMailboxes {
    /// Addresses, each with a Maildir `<lab>/mail/<domain>/<user>/`.
    pub addresses: Vec<String>,
    /// A loopback port where smtpd takes mail for them without AUTH (and
    /// relays nothing).
    pub port: u16,
}

/// A message in the queue, from `postqueue -j`.
#[derive(Clone, Debug)]
pub struct Queued {
    pub queue_id: String,
    /// `incoming`, `active`, `deferred`, `hold` or `maildrop`.
    pub queue_name: String,
}

/// Who owns the local mailboxes: virtual(8) delivers as this user, with
/// its number as uid and gid (Debian's nobody and nogroup).
const MAILBOX_OWNER: (&str, u32) = ("nobody", 65534);

pub struct Postfix {
    config_dir: PathBuf,
    queue_dir: PathBuf,
    log: PathBuf,
    mail_dir: PathBuf,
    running: bool,
}

impl Postfix {
    /// Writes main.cf and master.cf under `root`, checks them, and starts
    /// Postfix. Its SASL service is `<queue>/private/auth`, which Dovecot
    /// is expected to serve (see [`Postfix::auth_socket`]).
    pub fn start(root: &Path, submission_port: u16, relay_port: u16, options: &Options) -> Postfix {
        let config_dir = root.join("postfix");
        let queue_dir = root.join("queue");
        let data_dir = root.join("data");
        let log = root.join("postfix.log");
        for dir in [&config_dir, &queue_dir, &data_dir] {
            fs::create_dir_all(dir).unwrap();
        }
        let mut postfix = Postfix {
            config_dir,
            queue_dir,
            log,
            mail_dir: root.join("mail"),
            running: false,
        };
        let mut main = main_cf(
            root,
            &postfix.queue_dir,
            &data_dir,
            &postfix.log,
            relay_port,
        );
        main.push_str(&postfix.extras(options));
        fs::write(postfix.config_dir.join("main.cf"), main).unwrap();
        let mut master = master_cf(submission_port, options);
        if options.content_filter {
            let (filter_port, reinject_port) = (super::free_port(), super::free_port());
            start_content_filter(filter_port, reinject_port);
            let mut main = fs::read_to_string(postfix.config_dir.join("main.cf")).unwrap();
            main.push_str(&format!(
                "content_filter = scan:[127.0.0.1]:{filter_port}\n"
            ));
            fs::write(postfix.config_dir.join("main.cf"), main).unwrap();
            master.push_str(&format!(
                "\
scan      unix  -       -       n       -       2       smtp
  -o syslog_name=postfix/scan
127.0.0.1:{reinject_port} inet n - n - - smtpd
  -o syslog_name=postfix/reinject
  -o content_filter=
  -o mynetworks=127.0.0.0/8
  -o smtpd_relay_restrictions=permit_mynetworks,reject
  -o smtpd_recipient_restrictions=
  -o receive_override_options=no_unknown_recipient_checks,no_header_body_checks
"
            ));
        }
        fs::write(postfix.config_dir.join("master.cf"), master).unwrap();
        // master and postlogd write their state here as the postfix user.
        run_ok(Command::new("chown").arg("postfix").arg(&data_dir));

        if options.lock_map {
            run_ok(
                Command::new(tool("postmap"))
                    .arg("-c")
                    .arg(&postfix.config_dir)
                    .arg(format!("hash:{}", postfix.lock_map().display())),
            );
        }
        // `check` also creates the queue's subdirectories with their owners.
        run_ok(postfix.command().arg("check"));
        postfix.running = true;
        let mut start = postfix.command();
        if options.utc_log {
            // The master passes TZ on to its daemons (`import_environment`).
            start.env("TZ", "UTC");
        }
        start_daemon(start.arg("start"), &root.join("postfix-start.out"));
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

    /// main.cf's lines for `options`, after creating the files they name.
    fn extras(&self, options: &Options) -> String {
        let mut extras = String::new();
        if options.lock_map {
            let map = self.lock_map();
            fs::write(&map, "").unwrap();
            extras.push_str(&format!(
                "smtpd_relay_restrictions = check_sasl_access hash:{}, \
                 permit_sasl_authenticated, reject\n",
                map.display()
            ));
        }
        if let Some(local) = &options.local_mailboxes {
            extras.push_str(&self.local_delivery(local));
        }
        if options.defer_relay {
            extras.push_str("defer_transports = smtp\n");
        }
        extras
    }

    /// Sets up virtual(8) delivery to Maildirs for `local`'s addresses;
    /// returns main.cf's lines for it.
    fn local_delivery(&self, local: &LocalMailboxes) -> String {
        let (owner, id) = MAILBOX_OWNER;
        let mut domains: Vec<&str> = Vec::new();
        let mut map = String::new();
        for address in &local.addresses {
            let (user, domain) = address
                .split_once('@')
                .unwrap_or_else(|| panic!("not an address: {address}"));
            if !domains.contains(&domain) {
                domains.push(domain);
                let dir = self.mail_dir.join(domain);
                fs::create_dir_all(&dir).unwrap();
                run_ok(Command::new("chown").arg(owner).arg(&dir));
            }
            map.push_str(&format!("{address} {domain}/{user}/\n"));
        }
        let map_file = self.config_dir.join("mailboxes");
        fs::write(&map_file, map).unwrap();
        fs::set_permissions(&self.mail_dir, fs::Permissions::from_mode(0o755)).unwrap();
        format!(
            "virtual_mailbox_domains = {domains}\n\
             virtual_mailbox_base = {base}\n\
             virtual_mailbox_maps = texthash:{map}\n\
             virtual_uid_maps = static:{id}\n\
             virtual_gid_maps = static:{id}\n",
            domains = domains.join(", "),
            base = self.mail_dir.display(),
            map = map_file.display(),
        )
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

    pub fn config_dir(&self) -> &Path {
        &self.config_dir
    }

    /// Where the daemons run (their cwd): relative socket paths in main.cf,
    /// such as `unix:mailfuse/policy`, start here.
    pub fn queue_dir(&self) -> &Path {
        &self.queue_dir
    }

    /// Appends `lines` to main.cf and reloads Postfix, for settings naming
    /// what exists only once the lab runs (a policy server, say); smtpd
    /// processes started after the reload use them.
    pub fn add_main_cf(&self, lines: &str) {
        let main = self.config_dir.join("main.cf");
        let mut text = fs::read_to_string(&main).unwrap();
        text.push_str(lines);
        fs::write(&main, text).unwrap();
        run_ok(self.command().arg("check"));
        // The master logs `reload -- version …` once it has read main.cf.
        let reloads = || {
            fs::read_to_string(&self.log)
                .unwrap_or_default()
                .matches("reload -- version")
                .count()
        };
        let before = reloads();
        run_ok(self.command().arg("reload"));
        wait_until(
            "Postfix's master to log that it reloaded",
            Duration::from_secs(20),
            || reloads() > before,
        );
    }

    /// The access map of locked logins ([`Options::lock_map`]), without
    /// the `.db` suffix.
    pub fn lock_map(&self) -> PathBuf {
        self.config_dir.join("mailfuse_locked")
    }

    /// Where new mail for a local `address` arrives (Maildir `new/`).
    pub fn maildir_new(&self, address: &str) -> PathBuf {
        let (user, domain) = address
            .split_once('@')
            .unwrap_or_else(|| panic!("not an address: {address}"));
        self.mail_dir.join(domain).join(user).join("new")
    }

    /// The messages in the queue now (`postqueue -j`).
    pub fn queue(&self) -> Vec<Queued> {
        let output = run_ok(
            Command::new(tool("postqueue"))
                .arg("-c")
                .arg(&self.config_dir)
                .arg("-j"),
        );
        String::from_utf8_lossy(&output.stdout)
            .lines()
            .map(|line| {
                let entry: Value = serde_json::from_str(line)
                    .unwrap_or_else(|e| panic!("postqueue -j printed {line:?}: {e}"));
                let text = |key: &str| entry[key].as_str().unwrap_or_default().to_string();
                Queued {
                    queue_id: text("queue_id"),
                    queue_name: text("queue_name"),
                }
            })
            .collect()
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
/// chroot jail), plus the submission service the clients use, and what
/// `options` need.
fn master_cf(submission_port: u16, options: &Options) -> String {
    // With a lock map, submission uses main.cf's restrictions, which name it.
    let relay_restrictions = if options.lock_map {
        ""
    } else {
        "\n  -o smtpd_relay_restrictions=permit_sasl_authenticated,reject"
    };
    let local_services = match &options.local_mailboxes {
        Some(local) => format!(
            "\
127.0.0.1:{port} inet n - n - - smtpd
  -o syslog_name=postfix/local-in
  -o smtpd_relay_restrictions=permit_auth_destination,reject
virtual   unix  -       n       n       -       -       virtual
",
            port = local.port
        ),
        None => String::new(),
    };
    format!(
        "\
# Written by the mailfuse end-to-end test harness.
127.0.0.1:{submission_port} inet n - n - - smtpd
  -o syslog_name=postfix/submission
  -o smtpd_sasl_auth_enable=yes
  -o smtpd_sasl_type=dovecot
  -o smtpd_sasl_path=private/auth
  -o smtpd_tls_security_level=none
  -o smtpd_tls_auth_only=no{relay_restrictions}
{local_services}pickup    unix  n       -       n       60      1       pickup
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

/// A loopback content filter like amavis: takes each message Postfix hands
/// it on `filter_port`, re-injects it through the smtpd on
/// `reinject_port` and answers with that smtpd's reply (`250 2.0.0 from
/// MTA(smtp:[127.0.0.1]:PORT): 250 2.0.0 Ok: queued as NEW`).
pub fn start_content_filter(filter_port: u16, reinject_port: u16) {
    use std::io::{BufRead, BufReader, Write};
    use std::net::{TcpListener, TcpStream};
    let listener = TcpListener::bind(("127.0.0.1", filter_port)).unwrap();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            std::thread::spawn(move || {
                let _ = filter_session(stream, reinject_port);
            });
        }
    });

    /// One SMTP session from Postfix; each transaction is re-injected.
    fn filter_session(stream: TcpStream, reinject_port: u16) -> std::io::Result<()> {
        let mut out = stream.try_clone()?;
        let mut input = BufReader::new(stream);
        write!(out, "220 filter.example.test ESMTP\r\n")?;
        let (mut from, mut rcpts) = (String::new(), Vec::<String>::new());
        let mut line = String::new();
        loop {
            line.clear();
            if input.read_line(&mut line)? == 0 {
                return Ok(());
            }
            let command = line.trim_end().to_string();
            let upper = command.to_ascii_uppercase();
            let reply = if upper.starts_with("EHLO") || upper.starts_with("HELO") {
                "250 filter.example.test".to_string()
            } else if upper.starts_with("MAIL FROM:") {
                from = command.get(10..).unwrap_or("<>").to_string();
                rcpts.clear();
                "250 2.1.0 Ok".to_string()
            } else if upper.starts_with("RCPT TO:") {
                rcpts.push(command.get(8..).unwrap_or("").to_string());
                "250 2.1.5 Ok".to_string()
            } else if upper == "DATA" {
                write!(out, "354 End data with <CR><LF>.<CR><LF>\r\n")?;
                let mut body = Vec::new();
                loop {
                    line.clear();
                    if input.read_line(&mut line)? == 0 {
                        return Ok(());
                    }
                    if line.trim_end() == "." {
                        break;
                    }
                    body.push(line.clone());
                }
                let queued = reinject(reinject_port, &from, &rcpts, &body)?;
                format!("250 2.0.0 from MTA(smtp:[127.0.0.1]:{reinject_port}): {queued}")
            } else if upper == "QUIT" {
                write!(out, "221 2.0.0 Bye\r\n")?;
                return Ok(());
            } else {
                "250 2.0.0 Ok".to_string()
            };
            write!(out, "{reply}\r\n")?;
        }
    }

    /// Sends one message to the re-injection smtpd; its final reply.
    fn reinject(
        port: u16,
        from: &str,
        rcpts: &[String],
        body: &[String],
    ) -> std::io::Result<String> {
        let stream = TcpStream::connect(("127.0.0.1", port))?;
        let mut out = stream.try_clone()?;
        let mut input = BufReader::new(stream);
        let mut reply = || -> std::io::Result<String> {
            let mut line = String::new();
            loop {
                line.clear();
                if input.read_line(&mut line)? == 0 || line.get(3..4) != Some("-") {
                    return Ok(line.trim_end().to_string());
                }
            }
        };
        reply()?;
        write!(out, "EHLO filter.example.test\r\n")?;
        reply()?;
        write!(out, "MAIL FROM:{from}\r\n")?;
        reply()?;
        for rcpt in rcpts {
            write!(out, "RCPT TO:{rcpt}\r\n")?;
            reply()?;
        }
        write!(out, "DATA\r\n")?;
        reply()?;
        for line in body {
            out.write_all(line.as_bytes())?;
        }
        write!(out, ".\r\n")?;
        let queued = reply()?;
        write!(out, "QUIT\r\n")?;
        let _ = reply();
        Ok(queued)
    }
}
