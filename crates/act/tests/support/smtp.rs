//! A small SMTP server on a free loopback port: EHLO, AUTH PLAIN and LOGIN,
//! MAIL, RCPT, DATA, RSET, NOOP, QUIT. Each message it accepts is handed to
//! the test whole, with the envelope and the login used.

use base64::Engine;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;
use tokio::sync::mpsc;

/// One message as the server got it.
#[derive(Debug, Default)]
pub struct Received {
    /// `(mechanism, user, password)` if the client logged in.
    pub auth: Option<(String, String, String)>,
    pub mail_from: String,
    pub rcpt_to: Vec<String>,
    /// The DATA section, dot-unstuffed, CRLF line ends kept.
    pub data: Vec<u8>,
}

pub struct SmtpServer {
    pub port: u16,
    pub received: mpsc::UnboundedReceiver<Received>,
}

impl SmtpServer {
    /// Listens, offering the AUTH mechanisms in `auth` (e.g. `"PLAIN LOGIN"`).
    pub async fn start(auth: &'static str) -> SmtpServer {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let (sender, received) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                tokio::spawn(session(stream, auth, sender.clone()));
            }
        });
        SmtpServer { port, received }
    }
}

async fn session(
    stream: tokio::net::TcpStream,
    auth_offered: &'static str,
    sender: mpsc::UnboundedSender<Received>,
) {
    let (read, mut write) = stream.into_split();
    let mut lines = BufReader::new(read);
    let mut current = Received::default();
    let mut auth = None;
    write
        .write_all(b"220 test.example ESMTP\r\n")
        .await
        .unwrap();
    loop {
        let Some(line) = read_line(&mut lines).await else {
            return;
        };
        let upper = line.to_ascii_uppercase();
        let reply: String = if upper.starts_with("EHLO") {
            format!("250-test.example\r\n250-AUTH {auth_offered}\r\n250 8BITMIME")
        } else if let Some(initial) = upper.strip_prefix("AUTH PLAIN ").map(|_| &line[11..]) {
            let decoded = decode(initial);
            let mut parts = decoded.split('\0').skip(1);
            let user = parts.next().unwrap_or_default().to_string();
            let password = parts.next().unwrap_or_default().to_string();
            auth = Some(("PLAIN".to_string(), user, password));
            "235 2.7.0 Authentication successful".into()
        } else if upper == "AUTH LOGIN" {
            write.write_all(b"334 VXNlcm5hbWU6\r\n").await.unwrap();
            let user = decode(&read_line(&mut lines).await.unwrap());
            write.write_all(b"334 UGFzc3dvcmQ6\r\n").await.unwrap();
            let password = decode(&read_line(&mut lines).await.unwrap());
            auth = Some(("LOGIN".to_string(), user, password));
            "235 2.7.0 Authentication successful".into()
        } else if upper.starts_with("MAIL FROM:") {
            current.mail_from = line[10..].trim().to_string();
            "250 2.1.0 Ok".into()
        } else if upper.starts_with("RCPT TO:") {
            current.rcpt_to.push(line[8..].trim().to_string());
            "250 2.1.5 Ok".into()
        } else if upper == "DATA" {
            write
                .write_all(b"354 End data with <CR><LF>.<CR><LF>\r\n")
                .await
                .unwrap();
            loop {
                let line = read_line(&mut lines).await.unwrap();
                if line == "." {
                    break;
                }
                let unstuffed = line.strip_prefix('.').unwrap_or(&line);
                current.data.extend_from_slice(unstuffed.as_bytes());
                current.data.extend_from_slice(b"\r\n");
            }
            let mut message = std::mem::take(&mut current);
            message.auth = auth.clone();
            sender.send(message).unwrap();
            "250 2.0.0 Ok: queued".into()
        } else if upper == "RSET" {
            current = Received::default();
            "250 2.0.0 Ok".into()
        } else if upper == "NOOP" {
            "250 2.0.0 Ok".into()
        } else if upper == "QUIT" {
            write.write_all(b"221 2.0.0 Bye\r\n").await.unwrap();
            return;
        } else {
            "502 5.5.2 Error: command not recognized".into()
        };
        write
            .write_all(format!("{reply}\r\n").as_bytes())
            .await
            .unwrap();
    }
}

/// One line without its CRLF; `None` at the end of the connection.
async fn read_line(lines: &mut BufReader<tokio::net::tcp::OwnedReadHalf>) -> Option<String> {
    let mut raw = Vec::new();
    match lines.read_until(b'\n', &mut raw).await {
        Ok(0) | Err(_) => None,
        Ok(_) => {
            let text = String::from_utf8_lossy(&raw);
            Some(text.trim_end_matches(['\r', '\n']).to_string())
        }
    }
}

fn decode(text: &str) -> String {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(text.trim())
        .unwrap();
    String::from_utf8(bytes).unwrap()
}

/// A received message read back: unfolded headers and the decoded body.
pub struct Parsed {
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Parsed {
    pub fn of(data: &[u8]) -> Parsed {
        let text = std::str::from_utf8(data).expect("lettre sends ASCII");
        let (head, body) = text.split_once("\r\n\r\n").unwrap();
        let mut headers: Vec<(String, String)> = Vec::new();
        for line in head.split("\r\n") {
            if line.starts_with([' ', '\t']) {
                let (_, value) = headers.last_mut().unwrap();
                value.push_str(line);
            } else {
                let (name, value) = line.split_once(':').unwrap();
                headers.push((name.to_string(), value.trim().to_string()));
            }
        }
        let mut parsed = Parsed {
            headers,
            body: String::new(),
        };
        parsed.body = match parsed.header("Content-Transfer-Encoding") {
            Some("quoted-printable") => quoted_printable(body),
            Some("base64") => decode(&body.replace("\r\n", "")),
            _ => body.to_string(),
        }
        .replace("\r\n", "\n");
        parsed
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

fn quoted_printable(text: &str) -> String {
    let joined = text.replace("=\r\n", "");
    let mut bytes = Vec::new();
    let mut rest = joined.as_bytes();
    while let Some((&first, tail)) = rest.split_first() {
        if first == b'=' && tail.len() >= 2 {
            let hex = std::str::from_utf8(&tail[..2]).unwrap();
            bytes.push(u8::from_str_radix(hex, 16).unwrap());
            rest = &tail[2..];
        } else {
            bytes.push(first);
            rest = tail;
        }
    }
    String::from_utf8(bytes).unwrap()
}
