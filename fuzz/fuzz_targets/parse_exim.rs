//! The exim parser on any bytes, read as lines: it must never panic, and
//! reading in pieces (`read` in any order, then `settle`) must mean what
//! parsing in order does.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mailfuse_formats::Format;

fuzz_target!(|data: &[u8]| {
    mailfuse_fuzz::parse_both_ways(Format::Exim, &mailfuse_fuzz::lines(data), |_, _| {});
});
