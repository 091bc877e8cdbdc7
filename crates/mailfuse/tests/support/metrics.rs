//! Reading watch's `/metrics` page in tests.

use std::io::{Read, Write};
use std::net::TcpStream;

/// Watch's `/metrics` page on loopback `port`.
pub fn metrics_text(port: u16) -> String {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).expect("metrics");
    stream
        .write_all(b"GET /metrics HTTP/1.0\r\nHost: localhost\r\n\r\n")
        .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    response
}

/// One value of watch's `/metrics` on `port`, 0 when the series is not
/// there.
pub fn metric(port: u16, name: &str) -> f64 {
    metrics_text(port)
        .lines()
        .find_map(|line| line.strip_prefix(name)?.strip_prefix(' '))
        .and_then(|value| value.trim().parse().ok())
        .unwrap_or(0.0)
}
