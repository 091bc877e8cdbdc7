//! `mailfuse generate DIR`: the man pages, one per command
//! (`mailfuse.1`, `mailfuse-scan.1`…), and the bash, zsh and fish
//! completions, made from the command line's definitions (`cli.rs`) by the
//! binary they describe, so they cannot drift from it. scripts/build-deb
//! runs it for the Debian package.

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use clap::CommandFactory;
use clap_complete::Shell;

use crate::cli::Cli;

/// The name the completions complete: the installed binary's.
const BINARY: &str = "mailfuse";

/// Where [`write`] put the files.
pub struct Written {
    /// `mailfuse.1`, `mailfuse-scan.1`…
    pub man: PathBuf,
    /// `mailfuse.bash`, `_mailfuse` (zsh), `mailfuse.fish`.
    pub completions: PathBuf,
}

/// Writes the man pages into `dir/man` and the completions into
/// `dir/completions`.
pub fn write(dir: &Path) -> Result<Written> {
    let written = Written {
        man: dir.join("man"),
        completions: dir.join("completions"),
    };
    for directory in [&written.man, &written.completions] {
        fs::create_dir_all(directory)
            .with_context(|| format!("cannot create {}", directory.display()))?;
    }
    clap_mangen::generate_to(Cli::command(), &written.man)
        .with_context(|| format!("cannot write the man pages into {}", written.man.display()))?;
    for shell in [Shell::Bash, Shell::Zsh, Shell::Fish] {
        clap_complete::generate_to(shell, &mut Cli::command(), BINARY, &written.completions)
            .with_context(|| {
                format!(
                    "cannot write the {shell} completions into {}",
                    written.completions.display()
                )
            })?;
    }
    Ok(written)
}
