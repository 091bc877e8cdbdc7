//! Format recognition and zone choice on any lines: never a panic, and the
//! `Recogniser`'s decision is final (a known format never changes).
#![no_main]

use libfuzzer_sys::fuzz_target;
use mailfuse_formats::{Recogniser, Recognition};

fuzz_target!(|data: &[u8]| {
    let lines = mailfuse_fuzz::lines(data);
    let mut recogniser = Recogniser::default();
    let mut decided = None;
    for line in &lines {
        // An empty line stands for an over-long one, which readers skip.
        let state = if line.is_empty() {
            recogniser.feed_too_long()
        } else {
            recogniser.feed(line)
        };
        if state != Recognition::Undecided {
            assert_eq!(*decided.get_or_insert(state), state, "recognition changed");
        }
    }
    let _ = mailfuse_fuzz::context(&lines);
});
