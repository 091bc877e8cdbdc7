//! The far end of Postfix's relayhost: a loopback SMTP server that accepts
//! mail for most recipients, refuses `nobody…` ones like a real server does
//! for unknown users, and remembers what it got.

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::Duration;

/// A message the sink accepted.
#[derive(Clone, Debug)]
pub struct SinkMessage {
    pub from: String,
    pub recipients: Vec<String>,
}

/// Everything the sink saw, for the test to check Postfix really relayed.
#[derive(Clone, Debug, Default)]
pub struct SinkLog {
    pub messages: Vec<SinkMessage>,
    /// Recipients answered with 550 5.1.1.
    pub refused: Vec<String>,
}

impl SinkLog {
    /// Recipients delivered, over all messages.
    pub fn delivered_recipients(&self) -> usize {
        self.messages.iter().map(|m| m.recipients.len()).sum()
    }
}

/// Whether the sink refuses `address` as an unknown user.
pub fn is_unknown_user(address: &str) -> bool {
    address.to_ascii_lowercase().starts_with("nobody")
}

pub struct SmtpSink {
    port: u16,
    log: Arc<Mutex<SinkLog>>,
    stopping: Arc<AtomicBool>,
    acceptor: Option<JoinHandle<()>>,
}

impl SmtpSink {
    /// Listens on a free loopback port, serving each connection on a thread.
    pub fn start() -> SmtpSink {
        let listener = TcpListener::bind("127.0.0.1:0").expect("the sink binds a loopback port");
        let port = listener.local_addr().unwrap().port();
        let log = Arc::new(Mutex::new(SinkLog::default()));
        let stopping = Arc::new(AtomicBool::new(false));
        let acceptor = {
            let (log, stopping) = (Arc::clone(&log), Arc::clone(&stopping));
            thread::spawn(move || {
                for stream in listener.incoming() {
                    if stopping.load(Ordering::SeqCst) {
                        break;
                    }
                    let Ok(stream) = stream else { continue };
                    let log = Arc::clone(&log);
                    thread::spawn(move || {
                        // A broken connection is Postfix's problem to log, not ours.
                        let _ = serve(stream, &log);
                    });
                }
            })
        };
        SmtpSink {
            port,
            log,
            stopping,
            acceptor: Some(acceptor),
        }
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// What the sink has seen so far.
    pub fn log(&self) -> SinkLog {
        self.log.lock().unwrap().clone()
    }
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        self.stopping.store(true, Ordering::SeqCst);
        // Wake the blocking accept so the thread sees the flag.
        let _ = TcpStream::connect(("127.0.0.1", self.port));
        if let Some(acceptor) = self.acceptor.take() {
            let _ = acceptor.join();
        }
    }
}

/// One SMTP session: enough of RFC 5321 for Postfix's smtp client, which
/// may reuse a connection (RSET between messages) when caching is on.
fn serve(stream: TcpStream, log: &Mutex<SinkLog>) -> std::io::Result<()> {
    stream.set_read_timeout(Some(Duration::from_secs(30)))?;
    let mut writer = stream.try_clone()?;
    let mut reader = BufReader::new(stream);
    let mut reply = |text: &str| writer.write_all(format!("{text}\r\n").as_bytes());
    reply("220 sink.example.test ESMTP test sink")?;

    let mut from = String::new();
    let mut recipients = Vec::new();
    let mut line = Vec::new();
    loop {
        line.clear();
        if reader.read_until(b'\n', &mut line)? == 0 {
            return Ok(());
        }
        let command = String::from_utf8_lossy(&line);
        let command = command.trim_end();
        let verb = command.get(..4).unwrap_or(command).to_ascii_uppercase();
        match verb.as_str() {
            "EHLO" | "HELO" => reply("250 sink.example.test")?,
            "MAIL" => {
                from = angle_address(command);
                recipients.clear();
                reply("250 2.1.0 Ok")?;
            }
            "RCPT" => {
                let to = angle_address(command);
                if is_unknown_user(&to) {
                    reply(&format!(
                        "550 5.1.1 <{to}>: Recipient address rejected: User unknown"
                    ))?;
                    log.lock().unwrap().refused.push(to);
                } else {
                    recipients.push(to);
                    reply("250 2.1.5 Ok")?;
                }
            }
            "DATA" if recipients.is_empty() => reply("554 5.5.1 Error: no valid recipients")?,
            "DATA" => {
                reply("354 End data with <CR><LF>.<CR><LF>")?;
                loop {
                    line.clear();
                    if reader.read_until(b'\n', &mut line)? == 0 {
                        return Ok(());
                    }
                    if line == b".\r\n" || line == b".\n" {
                        break;
                    }
                }
                let mut log = log.lock().unwrap();
                let number = log.messages.len();
                log.messages.push(SinkMessage {
                    from: std::mem::take(&mut from),
                    recipients: std::mem::take(&mut recipients),
                });
                drop(log);
                reply(&format!("250 2.0.0 Ok: queued as SINK{number}"))?;
            }
            "RSET" => {
                from.clear();
                recipients.clear();
                reply("250 2.0.0 Ok")?;
            }
            "NOOP" => reply("250 2.0.0 Ok")?,
            "QUIT" => {
                reply("221 2.0.0 Bye")?;
                return Ok(());
            }
            _ => reply("502 5.5.2 Error: command not recognized")?,
        }
    }
}

/// The address between `<` and `>` in `MAIL FROM:<a@b> SIZE=1`.
fn angle_address(command: &str) -> String {
    let start = command.find('<').map_or(command.len(), |i| i + 1);
    let rest = command.get(start..).unwrap_or("");
    rest.split('>').next().unwrap_or("").to_string()
}
