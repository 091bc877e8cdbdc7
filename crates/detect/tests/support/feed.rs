//! A feed of events into a detector for the integration tests: each
//! scenario tells its story with it. Each test binary uses a part of it.

#![allow(dead_code)]

use std::net::IpAddr;

use mailfuse_core::{
    AuthFailure, AuthFailureKind, AuthSuccess, Client, Delivery, DeliveryStatus, Event, Submission,
    Timestamp,
};
use mailfuse_detect::{DetectConfig, Detector, Findings};

#[path = "saved.rs"]
mod saved;
use saved::Saved;

pub const DAY: i64 = 86_400;
/// Monday 2026-11-02 00:00 UTC.
pub const START: i64 = 1_793_577_600;

pub fn at(secs: i64) -> Timestamp {
    Timestamp(START + secs)
}

pub fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

/// Feeds events and keeps the byte strings they borrow alive.
pub struct Feed {
    pub detector: Detector,
    config: DetectConfig,
    next_queue_id: u64,
    saved: Saved,
}

impl Feed {
    /// A detector with the default thresholds.
    pub fn new() -> Self {
        Feed::with_config(DetectConfig::default())
    }

    /// A detector with `config` (kept for restarts).
    pub fn with_config(config: DetectConfig) -> Self {
        let mut detector = Detector::new(config.clone());
        detector.track_changes();
        Feed {
            detector,
            config,
            next_queue_id: 0,
            saved: Saved::default(),
        }
    }

    /// One message from `account` at `ip` with envelope `from` to `rcpts`,
    /// each recipient's fate given (true = refused permanently).
    pub fn send(
        &mut self,
        t: i64,
        account: &str,
        client: &str,
        from: &str,
        rcpts: &[(&str, bool)],
    ) {
        self.send_as(t, account.as_bytes(), client, from, rcpts);
    }

    /// [`Feed::send`] from a login given as bytes (not always UTF-8).
    pub fn send_as(
        &mut self,
        t: i64,
        account: &[u8],
        client: &str,
        from: &str,
        rcpts: &[(&str, bool)],
    ) {
        self.next_queue_id += 1;
        let qid = format!("{:08x}-{:08x}", at(t).0, self.next_queue_id);
        let line = format!(
            "Recv: Queue-ID: {qid}, From: <{from}>, User: {}",
            String::from_utf8_lossy(account)
        );
        let submission = Submission {
            at: at(t),
            queue_id: qid.as_bytes(),
            account: Some(account),
            client: Some(Client::Ip(ip(client))),
            service: Some(b"SMTP"),
            envelope_from: Some(from.as_bytes()),
            recipient: rcpts.first().map(|(r, _)| r.as_bytes()),
            ..Submission::default()
        };
        self.detector
            .observe(&Event::Submission(submission), line.as_bytes());
        for (rcpt, failed) in rcpts {
            let delivery = Delivery {
                at: at(t + 5),
                queue_id: qid.as_bytes(),
                recipient: rcpt.as_bytes(),
                status: if *failed {
                    DeliveryStatus::Failed
                } else {
                    DeliveryStatus::Delivered
                },
                dsn: Some(if *failed { b"5.1.1" } else { b"2.0.0" }),
                detail: b"",
                relay: None,
            };
            let line = format!("Sent: Queue-ID: {qid}, Recipient: <{rcpt}>");
            self.detector
                .observe(&Event::Delivery(delivery), line.as_bytes());
        }
    }

    pub fn fail_login(&mut self, t: i64, client: &str, account: Option<&str>) {
        let failure = AuthFailure {
            at: at(t),
            client: Client::Ip(ip(client)),
            account: account.map(str::as_bytes),
            service: b"SMTP",
            kind: AuthFailureKind::BadPassword,
            attempts: 1,
        };
        let line = format!("Failed SMTP login from {client}");
        self.detector
            .observe(&Event::AuthFailure(failure), line.as_bytes());
    }

    pub fn login(&mut self, t: i64, client: &str, account: &str, service: &str) {
        let success = AuthSuccess {
            at: at(t),
            client: Client::Ip(ip(client)),
            account: account.as_bytes(),
            service: service.as_bytes(),
        };
        self.detector
            .observe(&Event::AuthSuccess(success), b"audit");
    }

    pub fn findings(&self) -> Findings {
        self.detector.findings()
    }

    /// What a restart of `watch` does: what changed is saved as rows, and
    /// the state comes back from everything saved.
    pub fn restart(&mut self) {
        self.saved.restart(&mut self.detector, &self.config);
    }
}
