//! A webhook receiver on loopback for watch's alerts: it notes each POST's
//! body and alert id (its `Idempotency-Key` header) and answers only when
//! let go ([`Webhook::release`]), so a test makes it as slow as it needs,
//! without timing anything.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Condvar, Mutex};

#[derive(Default)]
struct Received {
    /// Every body, in arrival order.
    bodies: Vec<String>,
    /// Every request's `Idempotency-Key`, in arrival order ("" if none).
    ids: Vec<String>,
    /// How many were answered `200 OK`.
    answered: usize,
    /// Whether requests wait for [`Webhook::release`] before the answer.
    held: bool,
}

type Shared = Arc<(Mutex<Received>, Condvar)>;

/// The receiver; its thread serves until the test process ends.
pub struct Webhook {
    pub port: u16,
    shared: Shared,
}

impl Webhook {
    /// Listens on `port`; `held`: answers nothing until released.
    pub fn start_on(port: u16, held: bool) -> Webhook {
        let listener = TcpListener::bind(("127.0.0.1", port)).expect("the webhook listens");
        let shared: Shared = Arc::default();
        shared.0.lock().unwrap().held = held;
        let serving = shared.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let serving = serving.clone();
                std::thread::spawn(move || answer(stream, &serving));
            }
        });
        Webhook { port, shared }
    }

    /// The bodies received so far.
    pub fn bodies(&self) -> Vec<String> {
        self.shared.0.lock().unwrap().bodies.clone()
    }

    /// The alert ids received so far, one per request.
    pub fn ids(&self) -> Vec<String> {
        self.shared.0.lock().unwrap().ids.clone()
    }

    /// How many requests were answered.
    pub fn answered(&self) -> usize {
        self.shared.0.lock().unwrap().answered
    }

    /// Answers the requests held, and the next ones at once.
    pub fn release(&self) {
        self.shared.0.lock().unwrap().held = false;
        self.shared.1.notify_all();
    }
}

/// Reads the requests of one connection, each answered once let go.
fn answer(stream: TcpStream, shared: &Shared) {
    let mut reader = BufReader::new(stream.try_clone().expect("the stream clones"));
    let mut writer = stream;
    loop {
        let mut length = 0;
        let mut id = String::new();
        let mut line = String::new();
        loop {
            line.clear();
            if reader.read_line(&mut line).unwrap_or(0) == 0 {
                return; // closed
            }
            let header = line.trim_end();
            if header.is_empty() {
                break;
            }
            if let Some((name, value)) = header.split_once(':') {
                if name.eq_ignore_ascii_case("content-length") {
                    length = value.trim().parse().unwrap_or(0);
                } else if name.eq_ignore_ascii_case("idempotency-key") {
                    value.trim().clone_into(&mut id);
                }
            }
        }
        let mut body = vec![0; length];
        if reader.read_exact(&mut body).is_err() {
            return;
        }
        let (received, released) = &**shared;
        let mut state = received.lock().unwrap();
        state
            .bodies
            .push(String::from_utf8_lossy(&body).into_owned());
        state.ids.push(id);
        released.notify_all();
        while state.held {
            state = released.wait(state).unwrap();
        }
        let ok = b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n";
        if writer.write_all(ok).is_err() {
            return;
        }
        state.answered += 1;
    }
}
