//! A `mailfuse policy` process for the wire tests, and the requests
//! Postfix sends. Each test file uses part of it.
#![allow(dead_code)]

use std::io::{ErrorKind, Read};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running `mailfuse policy`, killed on drop (even when a test fails).
pub struct Server {
    pub child: Child,
    pub address: SocketAddr,
    pub dir: tempfile::TempDir,
}

impl Server {
    /// Starts on `config` in a new directory.
    pub fn start(config: &str) -> Server {
        let dir = tempfile::tempdir().unwrap();
        Server::start_in(config, dir, &[])
    }

    /// Starts on `config` in `dir` (its state database there), with
    /// `extra` arguments.
    pub fn start_in(config: &str, dir: tempfile::TempDir, extra: &[&str]) -> Server {
        let port = free_port();
        let address: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
        let config_path = dir.path().join("mailfuse.toml");
        std::fs::write(&config_path, config).unwrap();
        let log = std::fs::File::create(dir.path().join("policy.log")).unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_mailfuse"))
            .arg("policy")
            .arg("-c")
            .arg(&config_path)
            .arg("--state")
            .arg(dir.path().join("state.db"))
            .arg("--listen")
            .arg(address.to_string())
            .args(extra)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        let server = Server {
            child,
            address,
            dir,
        };
        server.wait_listening();
        server
    }

    pub fn wait_listening(&self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while TcpStream::connect(self.address).is_err() {
            assert!(
                Instant::now() < deadline,
                "server never listened:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn connect(&self) -> TcpStream {
        let stream = TcpStream::connect(self.address).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        stream
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("policy.log")).unwrap_or_default()
    }

    pub fn alive(&mut self) -> bool {
        self.child.try_wait().unwrap().is_none()
    }

    /// SIGTERM, and the exit status.
    pub fn stop(mut self) -> (tempfile::TempDir, std::process::ExitStatus) {
        let pid = self.child.id().to_string();
        Command::new("kill").args(["-TERM", &pid]).status().unwrap();
        let status = self.child.wait().unwrap();
        let dir = std::mem::replace(&mut self.dir, tempfile::tempdir().unwrap());
        (dir, status)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[path = "../support/ports.rs"]
pub mod ports;
pub use ports::free_port;

/// A request as Postfix 3.7 writes it.
pub fn request(state: &str, login: &str, instance: &str, extra: &[(&str, &str)]) -> Vec<u8> {
    let mut text = format!(
        "request=smtpd_access_policy\nprotocol_state={state}\nprotocol_name=ESMTP\n\
         client_address=192.0.2.10\nclient_name=unknown\nhelo_name=laptop\n\
         sender={login}\nqueue_id=\ninstance={instance}\nsize=0\n\
         sasl_method=PLAIN\nsasl_username={login}\n"
    );
    for (name, value) in extra {
        text.push_str(&format!("{name}={value}\n"));
    }
    text.push('\n');
    text.into_bytes()
}

pub fn rcpt(login: &str, instance: &str) -> Vec<u8> {
    request(
        "RCPT",
        login,
        instance,
        &[
            ("recipient", "someone@elsewhere.test"),
            ("recipient_count", "0"),
        ],
    )
}

pub fn end(login: &str, instance: &str, recipients: u32) -> Vec<u8> {
    request(
        "END-OF-MESSAGE",
        login,
        instance,
        &[("recipient_count", &recipients.to_string())],
    )
}

/// Reads `n` replies (each `action=…\n\n`).
pub fn replies(stream: &mut impl Read, n: usize) -> Vec<String> {
    let mut text = String::new();
    let mut buf = [0u8; 4096];
    while text.matches("\n\n").count() < n {
        let read = stream.read(&mut buf).expect("a reply in time");
        assert!(read > 0, "connection closed after {text:?}");
        text.push_str(std::str::from_utf8(&buf[..read]).unwrap());
    }
    text.split_terminator("\n\n").map(str::to_string).collect()
}

/// Whether the server closes the connection without writing anything more.
pub fn closed_without_reply(stream: &mut TcpStream) -> bool {
    let mut buf = [0u8; 256];
    match stream.read(&mut buf) {
        Ok(0) => true,
        Ok(n) => panic!("unexpected reply {:?}", String::from_utf8_lossy(&buf[..n])),
        Err(e) if e.kind() == ErrorKind::ConnectionReset => true,
        Err(e) => panic!("no close within the timeout: {e}"),
    }
}
