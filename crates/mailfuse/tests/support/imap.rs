//! A tiny IMAP client for the lab: `LOGIN` over TCP from any loopback
//! address, and whether the server ended the session.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

/// A logged-in IMAP session.
pub struct Session {
    reader: BufReader<TcpStream>,
}

/// Connects to loopback `port` from `client_ip` (any 127.0.0.0/8 address)
/// and logs in: the session, or the server's tagged reply refusing it.
pub fn login(port: u16, client_ip: &str, user: &str, password: &str) -> Result<Session, String> {
    let stream = super::ports::connect_from(client_ip, port);
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut reader = BufReader::new(stream);
    let greeting = read_line(&mut reader);
    assert!(greeting.starts_with("* OK"), "IMAP greeting: {greeting:?}");
    let command = format!("a LOGIN {} {}\r\n", quoted(user), quoted(password));
    reader.get_mut().write_all(command.as_bytes()).unwrap();
    loop {
        let line = read_line(&mut reader);
        if let Some(reply) = line.strip_prefix("a ") {
            return match reply.starts_with("OK") {
                true => Ok(Session { reader }),
                false => Err(reply.trim_end().to_string()),
            };
        }
        if line.is_empty() {
            return Err("connection closed".to_string());
        }
    }
}

impl Session {
    /// Waits up to `timeout` for the server to end the session (`* BYE`
    /// or the connection closed), sending nothing; whether it did.
    pub fn ended_within(&mut self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            let stream = self.reader.get_ref();
            stream
                .set_read_timeout(Some(Duration::from_millis(200)))
                .unwrap();
            let mut line = String::new();
            match self.reader.read_line(&mut line) {
                Ok(0) => return true,
                Ok(_) if line.starts_with("* BYE") => return true,
                Ok(_) => {}
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) => {}
                Err(_) => return true,
            }
        }
        false
    }
}

fn read_line(reader: &mut BufReader<TcpStream>) -> String {
    let mut line = String::new();
    reader.read_line(&mut line).unwrap();
    line
}

/// `text` as an IMAP quoted string.
fn quoted(text: &str) -> String {
    format!("\"{}\"", text.replace('\\', "\\\\").replace('"', "\\\""))
}
