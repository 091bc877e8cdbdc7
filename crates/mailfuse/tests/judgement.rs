//! The quality bar of issue #13 on fixed seeds of the labelled benchmark
//! (`bench/judgement.sh`, `docs/benchmark.md`): organisation weeks in Kerio
//! 8, Kerio 9/10 and Postfix + Dovecot + Roundcube forms, each with its
//! hijacks, look-alikes and attacks, scanned by the binary and scored.
//! Quality, not speed: the test asserts what was found, never how fast.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a panic in a test is a failed test

use std::path::Path;

use mailfuse_loggen::labelled::{judge, Form};

/// Every hijack found with all its attacker IPs, no legitimate account
/// locked, every brute force and credential stuffing reported, spam before
/// detection at most 15 (median) and 50 (max) messages — over 20 seeds of
/// each form.
#[test]
fn meets_the_acceptance_bar_on_fixed_seeds() {
    let mut scan = judge::run_mailfuse(Path::new(env!("CARGO_BIN_EXE_mailfuse")));
    let mut scores = judge::score_form(Form::Kerio8, 1..=20, &mut scan).unwrap();
    for form in [Form::Kerio10, Form::Postfix] {
        scores.extend(judge::score_form(form, 1..=20, &mut scan).unwrap());
    }
    let acceptance = scores.acceptance();
    assert!(acceptance.met, "{}", scores.table());
}
