//! Gives the binary its version as `mailfuse --version` shows it
//! (`MAILFUSE_VERSION`): the crate's version, and the commit it was built
//! from when built in this project's git checkout (`0.1.0 (abc1234)`).
//! Built from a crate tarball, or without git, it is the version alone.

use std::path::{Path, PathBuf};
use std::process::Command;

fn main() {
    let version = env!("CARGO_PKG_VERSION");
    let manifest_dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let shown = match commit(&manifest_dir) {
        Some(commit) => format!("{version} ({commit})"),
        None => version.to_string(),
    };
    println!("cargo:rustc-env=MAILFUSE_VERSION={shown}");
    println!("cargo:rerun-if-changed=build.rs");
}

/// The short hash of the checkout's HEAD, if `manifest_dir` is
/// `crates/mailfuse` of a git checkout of this project (not a tarball
/// unpacked inside some other repository). Asks cargo to run this again
/// when HEAD moves: a commit, a checkout, a rebase.
fn commit(manifest_dir: &Path) -> Option<String> {
    let workspace = manifest_dir.parent()?.parent()?;
    let toplevel = git(workspace, &["rev-parse", "--show-toplevel"])?;
    if Path::new(&toplevel).canonicalize().ok()? != workspace.canonicalize().ok()? {
        return None;
    }
    // HEAD names the branch; the branch's ref (loose, or packed) moves on
    // each commit, and HEAD's reflog grows on every commit, checkout or
    // reset. Worktrees keep HEAD and its reflog apart and share the refs.
    for name in ["HEAD", "logs/HEAD", "packed-refs"] {
        rerun_if_changed(workspace, name);
    }
    if let Some(branch) = git(workspace, &["symbolic-ref", "-q", "HEAD"]) {
        rerun_if_changed(workspace, &branch);
    }
    git(workspace, &["rev-parse", "--short=7", "HEAD"])
}

/// Tells cargo to rerun when the git file `name` (a path inside the git
/// directory, as `git rev-parse --git-path` resolves it) changes; not when
/// it does not exist (a branch only in packed-refs), which cargo would
/// take for a change at every build.
fn rerun_if_changed(workspace: &Path, name: &str) {
    let path = git(
        workspace,
        &["rev-parse", "--path-format=absolute", "--git-path", name],
    );
    if let Some(path) = path.filter(|path| Path::new(path).exists()) {
        println!("cargo:rerun-if-changed={path}");
    }
}

/// `git ARGS` run in `dir`: its output's one line, or None if git is
/// missing or fails.
fn git(dir: &Path, args: &[&str]) -> Option<String> {
    let output = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(args)
        .output()
        .ok()?;
    if !output.status.success() {
        return None;
    }
    let text = String::from_utf8(output.stdout).ok()?;
    let line = text.trim();
    (!line.is_empty()).then(|| line.to_string())
}
