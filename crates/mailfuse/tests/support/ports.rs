//! Loopback ports for the servers a test starts.
//!
//! Taken below Linux's range of ephemeral ports (32768 and up, where the
//! kernel picks the source port of every outgoing connection, and what a
//! bind to port 0 returns): a port handed out here cannot be taken by a
//! parallel test's client between this check and the server's bind, and a
//! process never hands out the same port twice.

use std::net::{SocketAddr, TcpListener, TcpStream};
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

/// A TCP connection to loopback `port` from `client_ip`.
// Not every test that includes this file connects from a chosen address.
#[allow(dead_code)]
pub fn connect_from(client_ip: &str, port: u16) -> TcpStream {
    let local: SocketAddr = format!("{client_ip}:0").parse().unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .build()
        .unwrap();
    let stream = runtime.block_on(async {
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.bind(local).unwrap();
        socket
            .connect(SocketAddr::from(([127, 0, 0, 1], port)))
            .await
            .unwrap_or_else(|e| panic!("cannot reach port {port}: {e}"))
            .into_std()
            .unwrap()
    });
    stream.set_nonblocking(false).unwrap();
    stream
}
