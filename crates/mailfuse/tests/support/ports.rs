//! Loopback ports for the servers a test starts.
//!
//! Taken below Linux's range of ephemeral ports (32768 and up, where the
//! kernel picks the source port of every outgoing connection, and what a
//! bind to port 0 returns): a port handed out here cannot be taken by a
//! parallel test's client between this check and the server's bind, and a
//! process never hands out the same port twice.

use std::net::TcpListener;
use std::sync::atomic::{AtomicU16, Ordering};

const FIRST: u16 = 20_000;
const SPAN: u16 = 12_000;

/// A loopback port nobody listens on right now, not handed out before by
/// this process.
pub fn free_port() -> u16 {
    // Each test process starts at its own place in the span (by pid), so
    // test binaries run at once by two checkouts rarely meet.
    static NEXT: AtomicU16 = AtomicU16::new(0);
    let start = (std::process::id() % u32::from(SPAN)) as u16;
    for _ in 0..SPAN {
        let offset = (start + NEXT.fetch_add(1, Ordering::Relaxed) % SPAN) % SPAN;
        let port = FIRST + offset;
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("no free loopback port between {FIRST} and {}", FIRST + SPAN);
}
