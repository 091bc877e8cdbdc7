//! The detectors alone, on one thread: a log's lines are parsed once into
//! memory, then the same events go through a fresh [`Detector`] several
//! times, each round timed. A scan on two cores overlaps reading and
//! parsing with the detectors, so when they are the slower side (a Kerio
//! log) its time is theirs; here it is measured without the other thread,
//! the hand-over of lines between cores, or the reading.
//!
//! Run by `bench/detectors.sh`; by hand:
//! `cargo run --release --example detectors -- LOG [ROUNDS]`.

use std::process::ExitCode;
use std::time::{Instant, UNIX_EPOCH};

use anyhow::{bail, Context, Result};
use mailfuse_core::{Event, Timestamp};
use mailfuse_detect::{DetectConfig, Detector};
use mailfuse_formats::{choose_zone, Detail, ParseContext, Parsed, Recogniser, Recognition};

/// Rounds when none are asked for.
const DEFAULT_ROUNDS: usize = 5;

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("detectors: error: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn run() -> Result<()> {
    let mut args = std::env::args().skip(1);
    let Some(path) = args.next() else {
        bail!("usage: detectors LOG [ROUNDS]");
    };
    let rounds = match args.next() {
        Some(n) => n
            .parse::<usize>()
            .ok()
            .filter(|&n| n > 0)
            .with_context(|| format!("ROUNDS must be a positive number, got {n}"))?,
        None => DEFAULT_ROUNDS,
    };
    let text = std::fs::read(&path).with_context(|| format!("cannot read {path}"))?;
    let lines = || text.split(|&b| b == b'\n');
    // The format and the zone by the rules every reader follows.
    let mut recogniser = Recogniser::default();
    let format = lines()
        .find_map(|line| match recogniser.feed(line) {
            Recognition::Known(format) => Some(format),
            Recognition::Undecided | Recognition::NotALog => None,
        })
        .with_context(|| format!("{path}: no line of a format mailfuse knows"))?;
    // A year-less syslog stamp takes its year from the file's time, as a
    // scan's does.
    let modified = std::fs::metadata(&path)
        .and_then(|m| m.modified())
        .with_context(|| format!("cannot read the modification time of {path}"))?
        .duration_since(UNIX_EPOCH)
        .context("the log's modification time is before 1970")?;
    let context = ParseContext {
        zone: choose_zone(None, lines()).zone,
        year_reference: Some(Timestamp(
            i64::try_from(modified.as_secs())
                .context("the log's modification time is out of range")?,
        )),
        detail: Detail::Detection,
    };

    let mut parser = format.parser(&context);
    let started = Instant::now();
    let events: Vec<(Event<'_>, &[u8])> = lines()
        .filter_map(|line| match parser.parse(line) {
            Parsed::Event(event) => Some((event, line)),
            _ => None,
        })
        .collect();
    let parsed = started.elapsed().as_secs_f64();
    println!(
        "{path}: {} events ({}), parsed in {parsed:.3} s",
        events.len(),
        format.name()
    );

    let mut best = f64::MAX;
    for round in 1..=rounds {
        let seconds = timed_round(&events, |detector, event, line| {
            detector.observe(event, line);
        });
        best = best.min(seconds);
        let per_event = seconds * 1e9 / events.len().max(1) as f64;
        println!("round {round}: detectors {seconds:.3} s ({per_event:.0} ns an event)");
    }
    println!("best: {best:.3} s");
    print_by_kind(&events);
    Ok(())
}

/// Seconds a fresh detector takes to be fed `events`, each by `feed`.
fn timed_round(
    events: &[(Event<'_>, &[u8])],
    mut feed: impl FnMut(&mut Detector, &Event<'_>, &[u8]),
) -> f64 {
    let mut detector = Detector::new(DetectConfig::default());
    let started = Instant::now();
    for (event, line) in events {
        feed(&mut detector, event, line);
    }
    let seconds = started.elapsed().as_secs_f64();
    // As the scan does: the process ends soon, the system takes the
    // memory back at once (freeing the entries one by one is not the
    // detectors' time).
    std::mem::forget(detector);
    seconds
}

/// The kinds of events the detectors' time is shared out by: a submission
/// with a login sets an account's whole machinery going, a delivery line
/// mostly finds its message.
const KINDS: [&str; 4] = [
    "submissions with a login",
    "other submissions",
    "deliveries",
    "logins, failures, the rest",
];

/// The place of `event`'s kind in [`KINDS`].
fn kind_of(event: &Event<'_>) -> usize {
    match event {
        Event::Submission(s) if s.account.is_some() => 0,
        Event::Submission(_) => 1,
        Event::Delivery(_) => 2,
        _ => 3,
    }
}

/// One more round, each event timed on its own, and the round's time
/// shared out by kind of event: where the detectors' time goes. Timing
/// every event slows the round a little, so its share of time is the
/// figure to read, not its total.
fn print_by_kind(events: &[(Event<'_>, &[u8])]) {
    let mut ticks_by_kind = [0u64; KINDS.len()];
    let mut events_by_kind = [0u64; KINDS.len()];
    let seconds = timed_round(events, |detector, event, line| {
        let kind = kind_of(event);
        let before = ticks();
        detector.observe(event, line);
        ticks_by_kind[kind] += ticks().wrapping_sub(before);
        events_by_kind[kind] += 1;
    });
    let all_ticks = ticks_by_kind.iter().sum::<u64>().max(1) as f64;
    println!("\nby kind of event (one more round, {seconds:.3} s, each event timed):");
    println!(
        "{:<28} {:>9} {:>9} {:>13}",
        "kind", "events", "time", "ns an event"
    );
    for ((name, &ticks), &count) in KINDS.iter().zip(&ticks_by_kind).zip(&events_by_kind) {
        if count == 0 {
            continue;
        }
        let share = ticks as f64 / all_ticks;
        let per_event = share * seconds * 1e9 / count as f64;
        println!(
            "{name:<28} {count:>9} {:>8.1}% {per_event:>13.0}",
            100.0 * share
        );
    }
}

/// A counter to time one event by: the CPU's time-stamp counter, a few
/// cycles to read (the system clock takes some 20 ns, a tenth of an
/// event's time).
#[cfg(target_arch = "x86_64")]
fn ticks() -> u64 {
    // SAFETY: `rdtsc` reads a counter every x86-64 CPU has; it touches no
    // memory.
    unsafe { std::arch::x86_64::_rdtsc() }
}

/// Nanoseconds since the first call, where there is no time-stamp counter.
#[cfg(not(target_arch = "x86_64"))]
fn ticks() -> u64 {
    static START: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
    u64::try_from(START.get_or_init(Instant::now).elapsed().as_nanos()).unwrap_or(u64::MAX)
}
