//! Writes detector_restore's seeds: the saved states (whole, and as rest
//! and rows) of detectors fed the first lines of each log named on the
//! command line, so the fuzzer starts from states `watch` really saves.
//! `fuzz/seed.sh` runs it: `seeds OUT_DIR LOG...`.

use std::path::PathBuf;

use mailfuse_fuzz::{feed, lines, row_names, save};

/// Lines of each log a state is made of: small seeds mutate better.
const LINES: usize = 400;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args_os().skip(1);
    let out = PathBuf::from(args.next().ok_or("usage: seeds OUT_DIR LOG...")?);
    std::fs::create_dir_all(&out)?;
    let names = row_names();
    for (n, log) in args.enumerate() {
        let data = std::fs::read(&log)?;
        let head: Vec<&[u8]> = lines(&data).into_iter().take(LINES).collect();
        let (whole, rows) = save(&mut feed(&head), &names)?;
        std::fs::write(out.join(format!("whole-{n}")), whole)?;
        std::fs::write(out.join(format!("rows-{n}")), rows)?;
    }
    Ok(())
}
