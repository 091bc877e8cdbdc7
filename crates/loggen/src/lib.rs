//! Synthetic mail server logs for mailfuse's bundled example and benchmarks.
//!
//! Real mail logs cannot be shipped (they are full of people's addresses), yet
//! the detectors need realistic input to be demonstrated and measured on: an
//! office's ordinary mail with its quirks (webmail, people working from home,
//! a newsletter, typos) and, hidden in it, the attacks an admin actually meets.
//!
//! Everything is driven by one seeded PRNG and integer arithmetic only, so a
//! seed gives the same bytes on every machine and every run: the example files
//! can be regenerated and diffed, and a benchmark file is the same everywhere.
//!
//! * [`example`]: one week of a small company, written to `examples/kerio/`.
//! * [`mod@bench`]: a mail log of any size, streamed fast, for `bench/scan.sh`
//!   (Kerio) and `bench/postfix.sh` (Postfix and Dovecot).
//! * [`labelled`]: weeks of randomised organisations with hijacks,
//!   look-alikes and attacks, written as Kerio 8, Kerio 9/10 or Postfix
//!   logs with their ground truth, and the scorer of `bench/judgement.sh`.
//!
//! The pieces they share: [`kerio`] writes Kerio's line formats, [`postfix`]
//! Postfix's and Dovecot's (benchmark only), [`traffic`]
//! models ordinary mail, [`attack`] the hijacker's spam run, [`vocab`] holds
//! the names and texts, [`clock`] the server's wall clock, [`rng`] the PRNG.

// The generator reads no input: its `expect`s state invariants of the data it
// made itself (a seeded week always has its sales mailbox and spam run).
#![allow(clippy::expect_used)]

pub mod attack;
pub mod bench;
pub mod clock;
pub mod example;
pub mod kerio;
pub mod labelled;
pub mod postfix;
pub mod provider;
pub mod rng;
pub mod traffic;
pub mod vocab;
