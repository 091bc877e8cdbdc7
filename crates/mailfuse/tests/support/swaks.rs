//! swaks as the lab's mail client: SMTP AUTH submissions to a server of
//! the lab, from any loopback address, and failed logins.

use std::process::{Command, Output, Stdio};

use super::tool;

/// What the server answered to a submission.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Submission {
    /// Queued, with this queue id.
    Accepted(String),
    /// Refused; the server's first error reply (or swaks' complaint).
    Refused(String),
}

/// Submits to the server listening on a loopback port.
pub struct Swaks {
    port: u16,
}

impl Swaks {
    pub fn new(port: u16) -> Swaks {
        Swaks { port }
    }

    /// Submits a message as `user` from `client_ip` (any 127.0.0.0/8
    /// address), asserting the server queued it; returns its queue id.
    pub fn send(
        &self,
        client_ip: &str,
        user: &str,
        password: &str,
        envelope_from: &str,
        to: &[String],
    ) -> String {
        match self.submit(client_ip, user, password, envelope_from, to) {
            Submission::Accepted(queue_id) => queue_id,
            Submission::Refused(reply) => {
                panic!("swaks as {user} from {client_ip} was refused: {reply}")
            }
        }
    }

    /// Submits a message like [`Swaks::send`], telling whether the server
    /// queued it or refused it.
    pub fn submit(
        &self,
        client_ip: &str,
        user: &str,
        password: &str,
        envelope_from: &str,
        to: &[String],
    ) -> Submission {
        let output = self.swaks(client_ip, user, password, envelope_from, to);
        let transcript = String::from_utf8_lossy(&output.stdout);
        match queue_id(&transcript) {
            Some(id) if output.status.success() => Submission::Accepted(id),
            _ => Submission::Refused(
                // swaks marks the server's error replies `<**`, its own `***`.
                transcript
                    .lines()
                    .find(|line| line.starts_with("<** ") || line.starts_with("*** "))
                    .map(|line| line.get(4..).unwrap_or(line).to_string())
                    .unwrap_or_else(|| format!("swaks exited {}", output.status)),
            ),
        }
    }

    /// `times` failed logins as `user` from `client_ip`, with the
    /// passwords a guesser tries first.
    pub fn guess_passwords(&self, client_ip: &str, user: &str, times: usize) {
        let guesses = [
            "123456",
            "password",
            "sales",
            "sales123",
            "Sales2024",
            "qwerty",
        ];
        for guess in guesses.iter().cycle().take(times) {
            self.fail_login(client_ip, user, guess);
        }
    }

    /// Tries to log in as `user` with a wrong password, asserting it fails.
    pub fn fail_login(&self, client_ip: &str, user: &str, wrong_password: &str) {
        let output = self.swaks(
            client_ip,
            user,
            wrong_password,
            user,
            &["someone@partner.example".to_string()],
        );
        // swaks exits 28 when AUTH is refused.
        assert_eq!(
            output.status.code(),
            Some(28),
            "a wrong password for {user} was not refused:\n{}",
            String::from_utf8_lossy(&output.stdout)
        );
    }

    fn swaks(
        &self,
        client_ip: &str,
        user: &str,
        password: &str,
        envelope_from: &str,
        to: &[String],
    ) -> Output {
        let server = format!("127.0.0.1:{}", self.port);
        Command::new(tool("swaks"))
            .args(["--server", &server, "--local-interface", client_ip])
            .args(["--auth", "LOGIN", "--auth-user", user])
            .args(["--auth-password", password])
            .args(["--from", envelope_from, "--to", &to.join(",")])
            .args(["--timeout", "15"])
            .stdin(Stdio::null())
            .output()
            .expect("swaks runs")
    }
}

/// The queue id in a swaks transcript's reply to the message's end:
/// Postfix's `250 2.0.0 Ok: queued as ID`, Exim's `250 OK id=ID`.
fn queue_id(transcript: &str) -> Option<String> {
    transcript.lines().find_map(|line| {
        let reply = line.strip_prefix("<-  250 ")?;
        let id = reply
            .split("queued as ")
            .nth(1)
            .or_else(|| reply.strip_prefix("OK id="))?;
        Some(id.trim().to_string())
    })
}
