//! The Debian package as an admin gets it. `scripts/build-deb` packages the
//! binary this test suite built (a release build would add minutes), and
//! the package is unpacked into a throwaway root with `dpkg-deb -x`, the
//! files `dpkg -i` would install. Not `dpkg -i` itself: it would install
//! mailfuse on this machine, and `dpkg --root` runs the maintainer scripts
//! chrooted into the root, which would need a whole Debian there; the
//! scripts are checked as files instead. In the root: the packaged binary
//! names its commit, `man` finds its pages, `systemd-analyze verify`
//! accepts its units (ordered against this system's own targets) and bash
//! completes with its completions.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a panic in a test is a failed test

mod support;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use support::{run_ok, tool};

const BIN: &str = env!("CARGO_BIN_EXE_mailfuse");
const UNITS: [&str; 2] = ["mailfuse.service", "mailfuse-policy.service"];

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

/// The package built and unpacked: its files under `root`, its control
/// files (control, conffiles, maintainer scripts) under `control`; the
/// debug symbols' package unpacked under `debug_root`.
struct Unpacked {
    _dir: tempfile::TempDir,
    root: PathBuf,
    control: PathBuf,
    debug_root: PathBuf,
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

fn build_and_unpack() -> Unpacked {
    let dir = tempfile::tempdir().unwrap();
    let output = dir.path().join("debian");
    run_ok(
        Command::new(workspace().join("scripts/build-deb"))
            .args(["--fast", "--binary", BIN, "--output"])
            .arg(&output),
    );
    let deb = built(&output, "mailfuse_", "_amd64.deb");
    let ddeb = built(&output, "mailfuse-dbgsym_", "_amd64.ddeb");
    let unpacked = Unpacked {
        root: dir.path().join("root"),
        control: dir.path().join("control"),
        debug_root: dir.path().join("debug"),
        _dir: dir,
    };
    let dpkg_deb = tool("dpkg-deb");
    for (option, package, into) in [
        ("-x", &deb, &unpacked.root),
        ("-e", &deb, &unpacked.control),
        ("-x", &ddeb, &unpacked.debug_root),
    ] {
        run_ok(Command::new(&dpkg_deb).arg(option).arg(package).arg(into));
    }
    unpacked
}

#[test]
fn the_package_installs_a_working_mailfuse_with_its_man_pages_units_and_completions() {
    let package = build_and_unpack();
    let root = &package.root;

    // The binary, with the version and commit it was built from.
    let output = run_ok(Command::new(root.join("usr/bin/mailfuse")).arg("--version"));
    assert_eq!(stdout(&output).trim_end(), expected_version());

    debug_symbols_are_apart(&package);
    man_pages_document_every_command(root);
    units_pass_systemd_analyze_verify(root);
    bash_completes_the_commands(root);
    configuration_is_kept_across_upgrades_and_secrets_private(&package);
    maintainer_scripts_never_enable_nor_start_a_service(&package);
}

/// The packaged binary is stripped; its debug symbols are in
/// mailfuse-dbgsym, where debuggers look for them (by build id).
fn debug_symbols_are_apart(package: &Unpacked) {
    let readelf = |option: &str, file: &Path| {
        stdout(&run_ok(Command::new(tool("readelf")).arg(option).arg(file)))
    };
    let binary = package.root.join("usr/bin/mailfuse");
    let sections = readelf("-S", &binary);
    assert!(
        !sections.contains(".debug_info"),
        "not stripped:\n{sections}"
    );
    let notes = readelf("-n", &binary);
    let build_id = notes
        .lines()
        .find_map(|line| line.trim().strip_prefix("Build ID: "))
        .unwrap_or_else(|| panic!("no build id:\n{notes}"));
    let (head, rest) = build_id.split_at(2);
    let symbols = package
        .debug_root
        .join(format!("usr/lib/debug/.build-id/{head}/{rest}.debug"));
    assert!(
        readelf("-S", &symbols).contains(".debug_info"),
        "no debug symbols in {}",
        symbols.display()
    );
}

/// `man mailfuse-scan` reads the installed page; every command that
/// `mailfuse --help` lists has its page.
fn man_pages_document_every_command(root: &Path) {
    let man_dir = root.join("usr/share/man");
    let output = run_ok(
        Command::new(tool("man"))
            .arg("mailfuse-scan")
            .env("MANPATH", &man_dir)
            .env("MANWIDTH", "100"),
    );
    let page = stdout(&output);
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
    for page in std::iter::once("mailfuse".to_string())
        .chain(commands.iter().map(|command| format!("mailfuse-{command}")))
    {
        let path = man_dir.join(format!("man1/{page}.1.gz"));
        assert!(path.is_file(), "no man page {}", path.display());
    }
}

/// The units verify cleanly in the root: their `mailfuse` resolves to the
/// packaged binary, their `Documentation=` pages exist, and systemd warns
/// of nothing. systemd needs the targets every service is ordered
/// against (sysinit.target…): this system's are copied in beside them.
fn units_pass_systemd_analyze_verify(root: &Path) {
    let units = root.join("usr/lib/systemd/system");
    for unit in UNITS {
        assert!(units.join(unit).is_file(), "{unit} is not installed");
    }
    let mut copied = 0;
    for system in ["/usr/lib/systemd/system", "/lib/systemd/system"] {
        for entry in fs::read_dir(system).into_iter().flatten() {
            let path = entry.unwrap().path();
            let name = path.file_name().unwrap().to_str().unwrap().to_string();
            let wanted = name.ends_with(".target") || name.ends_with(".slice");
            if wanted && path.is_file() && !units.join(&name).exists() {
                fs::copy(&path, units.join(&name)).unwrap();
                copied += 1;
            }
        }
    }
    assert!(
        copied > 0,
        "no systemd targets on this system: run scripts/install-test-deps"
    );
    let output = run_ok(
        Command::new(tool("systemd-analyze"))
            .arg("verify")
            .arg(format!("--root={}", root.display()))
            .args(UNITS)
            .env("MANPATH", root.join("usr/share/man")),
    );
    let said = String::from_utf8_lossy(&output.stderr);
    assert!(
        said.trim().is_empty(),
        "systemd-analyze verify warns:\n{said}"
    );
}

/// bash loads the completion file and completes the commands from it.
fn bash_completes_the_commands(root: &Path) {
    let completions = root.join("usr/share/bash-completion/completions/mailfuse");
    let script = format!(
        "source {:?} && COMP_WORDS=(mailfuse s) COMP_CWORD=1 && _mailfuse mailfuse s mailfuse \
         && echo \"${{COMPREPLY[@]}}\"",
        completions
    );
    let offered = stdout(&run_ok(Command::new(tool("bash")).arg("-c").arg(script)));
    for command in ["scan", "serve", "simulate", "status"] {
        assert!(
            offered.split_whitespace().any(|c| c == command),
            "{offered}"
        );
    }
    for file in [
        "usr/share/zsh/vendor-completions/_mailfuse",
        "usr/share/fish/vendor_completions.d/mailfuse.fish",
    ] {
        let text = fs::read_to_string(root.join(file)).unwrap();
        assert!(text.contains("check-config"), "{file}");
    }
}

/// The example configuration and secrets are conffiles (an upgrade keeps
/// the admin's edits), the secrets file readable by root alone (or
/// mailfuse refuses it).
fn configuration_is_kept_across_upgrades_and_secrets_private(package: &Unpacked) {
    let conffiles = fs::read_to_string(package.control.join("conffiles")).unwrap();
    let mut listed: Vec<&str> = conffiles.lines().collect();
    listed.sort_unstable();
    assert_eq!(
        listed,
        ["/etc/mailfuse/mailfuse.toml", "/etc/mailfuse/secrets.toml"]
    );
    let secrets = fs::metadata(package.root.join("etc/mailfuse/secrets.toml")).unwrap();
    assert_eq!(secrets.permissions().mode() & 0o777, 0o600);
    let example = fs::read_to_string(workspace().join("dist/mailfuse.toml")).unwrap();
    let installed = fs::read_to_string(package.root.join("etc/mailfuse/mailfuse.toml")).unwrap();
    assert_eq!(installed, example);
}

/// The maintainer scripts are sound shell; the postinst starts nothing and
/// enables only what the admin had enabled (an upgrade): the configuration
/// must be edited before watch or policy may run.
fn maintainer_scripts_never_enable_nor_start_a_service(package: &Unpacked) {
    let control = &package.control;
    for script in ["postinst", "prerm", "postrm"] {
        run_ok(Command::new(tool("sh")).arg("-n").arg(control.join(script)));
    }
    let postinst = fs::read_to_string(control.join("postinst")).unwrap();
    for unit in UNITS {
        assert!(postinst.contains(unit), "{unit} not handled:\n{postinst}");
    }
    assert!(!postinst.contains("deb-systemd-invoke start"), "{postinst}");
    // `deb-systemd-helper enable` runs only where `was-enabled` said so:
    // the command before it (comments aside) is that test.
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
    // Purging forgets the state the units keep in their StateDirectory.
    let postrm = fs::read_to_string(control.join("postrm")).unwrap();
    for unit in UNITS {
        let text = fs::read_to_string(package.root.join("usr/lib/systemd/system").join(unit));
        let text = text.unwrap();
        let state = text
            .lines()
            .find_map(|line| line.strip_prefix("StateDirectory="))
            .unwrap_or_else(|| panic!("{unit} has no StateDirectory="));
        let purge = format!("rm -rf /var/lib/{state}\n");
        assert!(postrm.contains(&purge), "no {purge:?} in\n{postrm}");
    }
}
