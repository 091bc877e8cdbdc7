//! The detectors fed what the parsers make of any lines (the format the
//! `Recogniser` picks, syslog if none): never a panic, and whatever state
//! they reach saves and restores, whole and as rows.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mailfuse_fuzz::{restore, row_names, Saved};

fuzz_target!(|data: &[u8]| {
    let mut detector = mailfuse_fuzz::feed(&mailfuse_fuzz::lines(data));
    let _ = detector.new_incidents();
    let _ = detector.findings();
    let names = row_names();
    // Through the bytes detector_restore reads, so its framing is checked too.
    let (whole, rows) = mailfuse_fuzz::save(&mut detector, &names).expect("a state saves");
    restore(&Saved::decode(&whole, &names)).expect("a snapshot restores");
    restore(&Saved::decode(&rows, &names)).expect("saved rows restore");
    let _ = detector.final_findings();
});
