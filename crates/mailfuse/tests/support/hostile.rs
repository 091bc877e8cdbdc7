//! A Kerio log written to break reports: markup and a terminal escape in
//! an account name, a Subject, a delivery's detail, a failed login's user
//! and a file name. Its hijack is that account.

use std::fs;
use std::path::Path;

/// A Kerio log whose account name, Subject, delivery detail, failed-login
/// user and file name carry markup and a terminal escape.
pub fn hostile_logs(dir: &Path) {
    let ip = "203.0.113.66";
    let mut security = String::new();
    for i in 0..30 {
        security.push_str(&format!(
            "[04/Nov/2026 20:{i:02}:00] Failed SMTP login from {ip} with SASL method LOGIN.\n"
        ));
    }
    for i in 0..12 {
        security.push_str(&format!(
            "[04/Nov/2026 20:{:02}:00] Failed IMAP login from 198.51.100.77, user <script>alert(1)</script>\x1b[31m{i}\n",
            30 + i
        ));
    }
    fs::write(dir.join("\"><img src=x onerror=alert(2)>.log"), security).unwrap();
    let user = "\"><img src=x onerror=alert(1)>@acme.example";
    let mut mail = String::new();
    for i in 0..40 {
        let queue = format!("6aebd81c-0003{i:04x}");
        mail.push_str(&format!(
            "[04/Nov/2026 21:{i:02}:00] Recv: Queue-ID: {queue}, Service: SMTP, From: <x@spam.example>, To: <v{i}@far.example>, Size: 2419, Sender-Host: {ip}, User: {user}, Subject: <script>alert(1)</script>\x1b[31mred, Msg-Id: <a{i}@b>\n"
        ));
        mail.push_str(&format!(
            "[04/Nov/2026 21:{i:02}:05] Sent: Queue-ID: {queue}, Recipient: <v{i}@far.example>, Result: failed, Status: 5.1.1 550 <script>alert(1)</script> no such user, Remote-Host: 192.0.2.1, Msg-Id: <a{i}@b>\n"
        ));
    }
    for i in 0..3 {
        mail.push_str(&format!(
            "[04/Nov/2026 22:00:0{i}] Recv: Queue-ID: 6aebd900-0004000{i}, Service: SMTP, From: <a@acme.example>, To: <b@acme.example>, Size: 10, Sender-Host: 192.0.2.9, User: =hyperlink(\"http://evil\")@acme.example, Subject: hi, Msg-Id: <m{i}@b>\n"
        ));
    }
    fs::write(dir.join("mail.log"), mail).unwrap();
}

/// Fails if a payload of [`hostile_logs`] is in `page` as markup or a raw
/// escape rather than as text.
pub fn assert_no_raw_payload(page: &str) {
    for raw in [
        "<script",
        "<img",
        "onerror=alert(1)>",
        "onerror=alert(2)>",
        "\x1b",
    ] {
        assert!(!page.contains(raw), "{raw:?} unescaped in the page");
    }
}
