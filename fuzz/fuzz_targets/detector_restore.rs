//! A detector restored from any bytes, as a whole snapshot or as the rest
//! of its state and rows (see `Saved`): an error, never a panic; what does
//! restore must go on observing and saving.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mailfuse_fuzz::{restore, row_names, Saved};

fuzz_target!(|data: &[u8]| {
    let names = row_names();
    if let Ok(mut detector) = restore(&Saved::decode(data, &names)) {
        let _ = detector.new_incidents();
        let _ = detector.findings();
        let _ = detector.snapshot();
        let _ = detector.changes();
        let _ = detector.final_findings();
    }
});
