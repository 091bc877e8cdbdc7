//! The files in `dist/` as an admin installs them: the example
//! configuration stays valid (as shipped, and with every optional setting
//! uncommented), `watch` starts on it, and the systemd unit, nftables file
//! and Postfix and Exim snippets agree with it.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a panic in a test is a failed test

#[path = "../../detect/tests/support/mmdb.rs"]
mod mmdb;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_mailfuse");

/// Where the example expects its files once installed.
const CONFIG_PATH: &str = "/etc/mailfuse/mailfuse.toml";
const SECRETS_LINE: &str = "secrets = \"/etc/mailfuse/secrets.toml\"";
const LOGS_LINE: &str = "logs = [\"/var/log/mail.log\"]";
const STATE_LINE: &str = "state = \"/var/lib/mailfuse/state.db\"";

fn dist(name: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../dist")
        .join(name);
    fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn run(args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("mailfuse runs")
}

/// `text` with `from` (which must be there) replaced by `to`.
fn replaced(text: &str, from: &str, to: &str) -> String {
    assert!(text.contains(from), "the example no longer has {from:?}");
    text.replace(from, to)
}

/// The example installed in a temporary directory: its secrets file there
/// (mode 600), its log and state there too.
struct Installed {
    dir: tempfile::TempDir,
    config: PathBuf,
}

fn install(config: &str, secrets: &str) -> Installed {
    let dir = tempfile::tempdir().unwrap();
    let secrets_path = dir.path().join("secrets.toml");
    fs::write(&secrets_path, secrets).unwrap();
    fs::set_permissions(&secrets_path, fs::Permissions::from_mode(0o600)).unwrap();
    let log = dir.path().join("mail.log");
    fs::write(&log, "").unwrap();
    let config = replaced(
        config,
        SECRETS_LINE,
        &format!("secrets = {:?}", secrets_path.to_str().unwrap()),
    );
    let config = replaced(&config, LOGS_LINE, &format!("logs = [{:?}]", log));
    let state = dir.path().join("state.db");
    let config = replaced(&config, STATE_LINE, &format!("state = {state:?}"));
    let path = dir.path().join("mailfuse.toml");
    fs::write(&path, config).unwrap();
    Installed { dir, config: path }
}

fn check_config(installed: &Installed) -> Output {
    run(&["check-config", "-c", installed.config.to_str().unwrap()])
}

fn assert_valid(output: &Output) {
    assert_eq!(
        output.status.code(),
        Some(0),
        "check-config refused the example:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(String::from_utf8_lossy(&output.stdout).ends_with(": valid\n"));
}

/// Every optional setting switched on: `#key = …` and `#[section]` lines
/// lose their `#` (explanations start `# `). The command hook's program
/// must exist: a real one stands in for the example's.
fn uncommented(text: &str) -> String {
    let mut out = String::new();
    for line in text.lines() {
        let line = match line.strip_prefix('#') {
            Some(rest) if rest.starts_with(|c: char| c.is_ascii_alphabetic() || c == '[') => rest,
            _ => line,
        };
        out.push_str(&line.replace("/usr/local/sbin/mailfuse-alert", "/bin/true"));
        out.push('\n');
    }
    let table: toml::Table = out.parse().expect("the uncommented example is TOML");
    toml::to_string(&table).unwrap()
}

#[test]
fn the_example_configuration_is_valid_as_shipped() {
    let installed = install(&dist("mailfuse.toml"), &dist("secrets.toml.example"));
    assert_valid(&check_config(&installed));
}

#[test]
fn every_optional_setting_of_the_example_is_valid_once_uncommented() {
    let config = uncommented(&dist("mailfuse.toml"));
    for section in [
        "[detect.compromise]",
        "[detect.geoip]",
        "[actions.kerio]",
        "[actions.exim]",
        "[actions.dovecot]",
        "[actions.crowdsec]",
        "[actions.webhook]",
        "[policy.trips]",
        "[policy.redis]",
        "[[limits.default]]",
        "[[limits.override]]",
        "[web]",
        "[watch.journal]",
        "[watch.syslog]",
        "[watch.auth_policy]",
    ] {
        assert!(config.contains(section), "{section} was not uncommented");
    }
    // The GeoIP databases the admin would have downloaded.
    let geoip = tempfile::tempdir().unwrap();
    let mut config = config;
    for (name, bytes) in [
        ("GeoLite2-City.mmdb", mmdb::city_database()),
        ("GeoLite2-ASN.mmdb", mmdb::asn_database()),
    ] {
        let path = geoip.path().join(name);
        fs::write(&path, bytes).unwrap();
        config = replaced(
            &config,
            &format!("\"/var/lib/GeoIP/{name}\""),
            &format!("{path:?}"),
        );
    }
    let installed = install(&config, &uncommented(&dist("secrets.toml.example")));
    assert_valid(&check_config(&installed));
}

#[test]
fn the_example_refuses_a_secrets_file_others_can_read() {
    let installed = install(&dist("mailfuse.toml"), &dist("secrets.toml.example"));
    let secrets = installed.dir.path().join("secrets.toml");
    fs::set_permissions(&secrets, fs::Permissions::from_mode(0o644)).unwrap();
    let output = check_config(&installed);
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("chmod 600"));
}

#[test]
fn watch_starts_on_the_example_and_stops_cleanly_on_sigterm() {
    let installed = install(&dist("mailfuse.toml"), &dist("secrets.toml.example"));
    let stderr = installed.dir.path().join("watch.err");
    let mut child = Command::new(BIN)
        .args(["watch", "--config", installed.config.to_str().unwrap()])
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .stderr(fs::File::create(&stderr).unwrap())
        .spawn()
        .expect("watch starts");
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let log = fs::read_to_string(&stderr).unwrap_or_default();
        if log.contains("watching") {
            assert!(log.contains("dry_run=true"), "{log}");
            break;
        }
        if let Some(status) = child.try_wait().unwrap() {
            panic!("watch exited ({status}) on the example:\n{log}");
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("watch did not start:\n{log}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let pid = child.id().to_string();
    assert!(Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap()
        .success());
    let status = child.wait().unwrap();
    assert!(
        status.success(),
        "{status}:\n{}",
        fs::read_to_string(&stderr).unwrap_or_default()
    );
}

/// The value of `key = "…"` on a line of `text`, commented out or not.
fn setting<'a>(text: &'a str, key: &str) -> &'a str {
    text.lines()
        .find_map(|line| {
            line.trim_start_matches('#')
                .strip_prefix(key)?
                .trim_start()
                .strip_prefix("= \"")?
                .strip_suffix('"')
        })
        .unwrap_or_else(|| panic!("no {key} in the example"))
}

/// The unit's `Key=value` lines for `key`.
fn unit_values<'a>(unit: &'a str, key: &str) -> Vec<&'a str> {
    unit.lines()
        .filter_map(|line| line.strip_prefix(key)?.strip_prefix('='))
        .collect()
}

#[test]
fn the_systemd_unit_runs_watch_on_the_installed_configuration() {
    let unit = dist("mailfuse.service");
    let exec = format!("mailfuse watch --config {CONFIG_PATH}");
    assert_eq!(unit_values(&unit, "ExecStart"), [exec.as_str()]);
    assert_eq!(
        unit_values(&unit, "ExecStartPre"),
        [format!("mailfuse check-config --config {CONFIG_PATH}").as_str()]
    );
    assert_eq!(unit_values(&unit, "Type"), ["simple"]);
    assert_eq!(unit_values(&unit, "KillSignal"), ["SIGTERM"]);
    assert_eq!(unit_values(&unit, "Restart"), ["on-failure"]);
    assert_eq!(unit_values(&unit, "ProtectSystem"), ["strict"]);
    // The state database lives in the directory systemd creates.
    let state_dir = unit_values(&unit, "StateDirectory");
    let example = dist("mailfuse.toml");
    let state = setting(&example, "state");
    assert_eq!(
        Path::new(state).parent(),
        Some(Path::new("/var/lib").join(state_dir[0]).as_path())
    );
    // The Postfix lock map's and the Exim lock list's directories are
    // writable, and only they in /etc.
    let writable = unit_values(&unit, "ReadWritePaths").join(" ");
    let writable: Vec<&str> = writable
        .split_whitespace()
        .map(|p| p.trim_start_matches('-'))
        .collect();
    for key in ["lock_map", "lock_list"] {
        let lock_dir = Path::new(setting(&example, key)).parent().unwrap();
        assert!(
            writable.iter().any(|p| Path::new(p) == lock_dir),
            "ReadWritePaths={writable:?} misses {}",
            lock_dir.display()
        );
    }
    assert!(
        writable
            .iter()
            .filter(|p| p.starts_with("/etc/"))
            .all(|p| p.ends_with("/mailfuse")),
        "ReadWritePaths={writable:?}: only mailfuse's own directories in /etc"
    );
}

#[test]
fn the_nftables_file_and_the_postfix_and_exim_snippets_name_what_the_example_uses() {
    let example = dist("mailfuse.toml");
    let nft = dist("nftables-mailfuse.nft");
    assert!(nft.contains(&format!("table inet {} {{", setting(&example, "table"))));
    for set in ["set4", "set6"] {
        let name = setting(&example, set);
        assert!(nft.contains(&format!("set {name} {{")), "{name}");
        assert!(nft.contains(&format!("saddr @{name} ")), "{name}");
    }
    let snippet = dist("postfix-main.cf.snippet");
    let map = format!(
        "check_sasl_access {}:{}",
        setting(&example, "map_type"),
        setting(&example, "lock_map")
    );
    assert!(snippet.contains(&map), "the snippet lacks {map}");
    let acl = dist("exim/mailfuse-acl.conf");
    let list = format!("MAILFUSE_LOCK_LIST = {}", setting(&example, "lock_list"));
    assert!(acl.contains(&list), "the Exim ACL lacks {list}");
}

#[test]
fn the_policy_unit_runs_policy_on_the_installed_configuration_and_state() {
    let unit = dist("mailfuse-policy.service");
    assert_eq!(
        unit_values(&unit, "ExecStart"),
        [format!("mailfuse policy --config {CONFIG_PATH}").as_str()]
    );
    assert_eq!(
        unit_values(&unit, "ExecStartPre"),
        [format!("mailfuse check-config --config {CONFIG_PATH}").as_str()]
    );
    assert_eq!(unit_values(&unit, "KillSignal"), ["SIGTERM"]);
    // The same state database as watch: locks are shared.
    assert_eq!(
        unit_values(&unit, "StateDirectory"),
        unit_values(&dist("mailfuse.service"), "StateDirectory")
    );
    // Room for policy.max_connections sockets.
    let files: u64 = unit_values(&unit, "LimitNOFILE")[0].parse().unwrap();
    assert!(files > 20_000);
}
