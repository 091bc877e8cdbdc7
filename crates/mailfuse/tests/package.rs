//! The Debian package as an admin gets it. `scripts/build-deb` packages the
//! binary this test suite built (a release build would add minutes), and
//! `dpkg -i` installs it, with its debug symbols' package, on a throwaway
//! copy of this system: `tests/package/install.sh` runs in a mount
//! namespace of its own (`unshare --mount`) where /etc, /usr and /var are
//! overlays on a tmpfs, so dpkg and the maintainer scripts run for real
//! against this system's files and dpkg database and change nothing of
//! it. (`dpkg -x` into a directory would skip the maintainer scripts;
//! `dpkg --root` would run them chrooted into a root that needs a whole
//! Debian.) There: the packaged binary names its commit, `man` finds its
//! pages, `systemd-analyze verify` accepts its units, bash completes with
//! its completions, nothing is enabled; removing keeps the configuration
//! and the state, purging deletes them.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a panic in a test is a failed test

mod support;

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use support::{run_ok, tool};

const BIN: &str = env!("CARGO_BIN_EXE_mailfuse");

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// What `mailfuse --version` must say: the version, and the commit when
/// the workspace is a git checkout of its own (build.rs).
fn expected_version() -> String {
    let version = env!("CARGO_PKG_VERSION");
    let git = |args: &[&str]| {
        let output = Command::new("git")
            .arg("-C")
            .arg(workspace())
            .args(args)
            .output()
            .ok()
            .filter(|output| output.status.success())?;
        Some(String::from_utf8(output.stdout).unwrap().trim().to_string())
    };
    let own_checkout = git(&["rev-parse", "--show-toplevel"])
        .is_some_and(|top| Path::new(&top).canonicalize().ok() == workspace().canonicalize().ok());
    match git(&["rev-parse", "--short=7", "HEAD"]).filter(|_| own_checkout) {
        Some(commit) => format!("mailfuse {version} ({commit})"),
        None => format!("mailfuse {version}"),
    }
}

fn stdout(output: &std::process::Output) -> String {
    String::from_utf8(output.stdout.clone()).unwrap()
}

#[test]
fn the_version_names_the_commit_built() {
    let output = run_ok(Command::new(BIN).arg("--version"));
    assert_eq!(stdout(&output).trim_end(), expected_version());
}

/// The one file in `dir` whose name starts with `prefix` and ends with
/// `suffix`.
fn built(dir: &Path, prefix: &str, suffix: &str) -> PathBuf {
    let found: Vec<PathBuf> = fs::read_dir(dir)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| {
            let name = path.file_name().unwrap().to_str().unwrap();
            name.starts_with(prefix) && name.ends_with(suffix)
        })
        .collect();
    assert_eq!(
        found.len(),
        1,
        "{prefix}*{suffix} in {}: {found:?}",
        dir.display()
    );
    found[0].clone()
}

/// The output of `tests/package/install.sh`, by step.
struct Steps(BTreeMap<String, String>);

impl Steps {
    fn of(output: &str) -> Steps {
        let mut steps = BTreeMap::new();
        let mut current = None;
        for line in output.lines() {
            if let Some(step) = line.strip_prefix("=== ") {
                current = Some(step.to_string());
                steps.insert(step.to_string(), String::new());
            } else if let Some(step) = &current {
                let text: &mut String = steps.get_mut(step).unwrap();
                text.push_str(line);
                text.push('\n');
            }
        }
        Steps(steps)
    }

    fn get(&self, step: &str) -> &str {
        self.0
            .get(step)
            .unwrap_or_else(|| panic!("no step {step} in {:?}", self.0.keys()))
    }
}

#[test]
fn the_package_installs_with_dpkg_and_works_then_purges_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let output = dir.path().join("debian");
    run_ok(
        Command::new(workspace().join("scripts/build-deb"))
            .args(["--fast", "--binary", BIN, "--output"])
            .arg(&output),
    );
    let deb = built(&output, "mailfuse_", "_amd64.deb");
    let ddeb = built(&output, "mailfuse-dbgsym_", "_amd64.ddeb");
    let scratch = dir.path().join("scratch");
    fs::create_dir(&scratch).unwrap();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/package/install.sh");
    let ran = Command::new(tool("unshare"))
        .arg("--mount")
        .arg(tool("sh"))
        .arg(script)
        .args([&scratch, &deb, &ddeb])
        .output()
        .unwrap();
    let said = stdout(&ran);
    assert!(
        ran.status.success(),
        "install.sh failed ({}; it needs root and mount namespaces: unshare --mount):\n{said}{}",
        ran.status,
        String::from_utf8_lossy(&ran.stderr)
    );
    let steps = Steps::of(&said);

    let installed = steps.get("install");
    assert!(installed.contains("Setting up mailfuse ("), "{installed}");
    assert_eq!(
        steps.get("status"),
        "install ok installed\ninstall ok installed\n"
    );
    assert_eq!(steps.get("version").trim_end(), expected_version());
    man_pages_document_every_command(&steps);
    // The units: their `mailfuse` found, their `Documentation=` pages too,
    // and not a warning.
    assert_eq!(steps.get("verify"), "", "systemd-analyze verify warns");
    configuration_is_kept_across_upgrades_and_secrets_private(&steps);
    nothing_is_enabled_nor_started(&steps);
    // The binary is stripped: its symbols are in mailfuse-dbgsym, where
    // debuggers look for them, by build id.
    assert_eq!(steps.get("stripped"), "0\n");
    let build_id = steps.get("build-id").trim();
    assert!(build_id.len() > 8, "{build_id:?}");
    let (head, rest) = build_id.split_at(2);
    let symbols = format!("/usr/lib/debug/.build-id/{head}/{rest}.debug\n");
    assert_eq!(steps.get("debug"), symbols);
    completions_work(&steps);
    removing_keeps_the_configuration_and_state_purging_deletes_them(&steps);
}

/// `man mailfuse-scan` reads the installed page, and every command that
/// `mailfuse --help` lists has its page.
fn man_pages_document_every_command(steps: &Steps) {
    let page = steps.get("man");
    for expected in ["mailfuse-scan", "--format", "Exit status: 0 nothing found"] {
        assert!(page.contains(expected), "no {expected:?} in\n{page}");
    }
    let help = stdout(&run_ok(Command::new(BIN).arg("--help")));
    let commands: Vec<&str> = help
        .lines()
        .skip_while(|line| *line != "Commands:")
        .skip(1)
        .take_while(|line| !line.is_empty())
        .filter_map(|line| line.split_whitespace().next())
        .filter(|command| *command != "help")
        .collect();
    assert!(commands.len() > 10, "{help}");
    // The pages installed.
    let pages = steps.get("pages");
    for page in std::iter::once("mailfuse".to_string())
        .chain(commands.iter().map(|command| format!("mailfuse-{command}")))
    {
        let path = format!("/usr/share/man/man1/{page}.1.gz\n");
        assert!(pages.contains(&path), "no {path} in\n{pages}");
    }
}

/// The example configuration and secrets are conffiles (an upgrade keeps
/// the admin's edits), the secrets file readable by root alone (or
/// mailfuse refuses it).
fn configuration_is_kept_across_upgrades_and_secrets_private(steps: &Steps) {
    let mut conffiles: Vec<&str> = steps
        .get("conffiles")
        .lines()
        .filter_map(|line| line.split_whitespace().next())
        .collect();
    conffiles.sort_unstable();
    assert_eq!(
        conffiles,
        ["/etc/mailfuse/mailfuse.toml", "/etc/mailfuse/secrets.toml"]
    );
    assert_eq!(steps.get("secrets"), "600 root\n");
}

/// The configuration must be edited before watch or policy may run: the
/// postinst enables nothing (no link in /etc/systemd/system) and starts
/// nothing; an upgrade only re-enables what the admin had enabled
/// (`was-enabled`) and restarts what runs (`try-restart`).
fn nothing_is_enabled_nor_started(steps: &Steps) {
    assert_eq!(steps.get("enabled"), "", "the package enabled a unit");
    let postinst = steps.get("postinst");
    for unit in ["mailfuse.service", "mailfuse-policy.service"] {
        assert!(postinst.contains(unit), "{unit} not handled:\n{postinst}");
    }
    assert!(!postinst.contains("deb-systemd-invoke start"), "{postinst}");
    let commands: Vec<&str> = postinst
        .lines()
        .map(str::trim)
        .filter(|line| !line.starts_with('#'))
        .collect();
    for (i, line) in commands.iter().enumerate() {
        if line.starts_with("deb-systemd-helper enable") {
            assert!(
                i > 0 && commands[i - 1].contains("was-enabled"),
                "enabled unconditionally:\n{postinst}"
            );
        }
    }
}

/// bash completes the commands; the zsh and fish files are where those
/// shells look.
fn completions_work(steps: &Steps) {
    let offered: Vec<&str> = steps.get("bash").split_whitespace().collect();
    for command in ["scan", "serve", "simulate", "status"] {
        assert!(offered.contains(&command), "{offered:?}");
    }
    assert_eq!(steps.get("zsh-fish").lines().count(), 2);
}

fn removing_keeps_the_configuration_and_state_purging_deletes_them(steps: &Steps) {
    let removed = steps.get("remove");
    assert!(removed.contains("Removing mailfuse "), "{removed}");
    for kept in [
        "/etc/mailfuse:\nmailfuse.toml\nsecrets.toml\n",
        "/var/lib/mailfuse:\nstate.db\n",
    ] {
        assert!(
            removed.contains(kept),
            "no {kept:?} after dpkg -r:\n{removed}"
        );
    }
    assert!(
        removed.contains("cannot access '/usr/bin/mailfuse'"),
        "{removed}"
    );
    let purged = steps.get("purge");
    for gone in ["/etc/mailfuse", "/var/lib/mailfuse"] {
        assert!(
            purged.contains(&format!("cannot access '{gone}'")),
            "{gone} left after dpkg -P:\n{purged}"
        );
    }
}
