//! How long a cache line takes to go from one core to another and back: two
//! threads pass a counter back and forth. `bench/lib.sh` compiles it with
//! `rustc` and prints the figure beside the timings: a scan splits its work
//! between two threads that hand each block of lines over, and on a VM the
//! host may place the two virtual CPUs close (a shared cache: tens of ns) or
//! far apart (hundreds), which moves the scan's time and not `grep`'s.
//!
//! Usage: core_latency [BATCHES]  (prints nanoseconds per round trip)

use std::hint::spin_loop;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

/// Round trips per batch; the figure is the median batch's, so that the
/// answering thread's start (it may first run on the same core, until the
/// scheduler moves it) does not count.
const BATCH: u64 = 20_000;

fn main() {
    let batches: u64 = std::env::args()
        .nth(1)
        .and_then(|n| n.parse().ok())
        .unwrap_or(9)
        .max(1);
    let turn = Arc::new(AtomicU64::new(0));
    let other = Arc::clone(&turn);
    // Odd values are the other thread's turn, even ones this thread's.
    let answering = std::thread::spawn(move || {
        for i in 0..batches * BATCH {
            while other.load(Ordering::Acquire) != 2 * i + 1 {
                spin_loop();
            }
            other.store(2 * i + 2, Ordering::Release);
        }
    });
    let mut per_batch = Vec::new();
    for batch in 0..batches {
        let start = Instant::now();
        for i in batch * BATCH..(batch + 1) * BATCH {
            turn.store(2 * i + 1, Ordering::Release);
            while turn.load(Ordering::Acquire) != 2 * i + 2 {
                spin_loop();
            }
        }
        per_batch.push(start.elapsed().as_secs_f64() * 1e9 / BATCH as f64);
    }
    if answering.join().is_err() {
        eprintln!("core_latency: the answering thread panicked");
        std::process::exit(1);
    }
    per_batch.sort_by(f64::total_cmp);
    println!("{:.0}", per_batch[per_batch.len() / 2]);
}
