//! The Kerio Connect action against the Admin API emulator.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a panic in a test is a failed test

mod kerio_emulator;

use std::net::IpAddr;

use kerio_emulator::{Emulator, ADMIN, ADMIN_PASSWORD};
use mailfuse_act::kerio::{Change, Kerio, KerioConfig};
use mailfuse_detect::audit::PasswordPolicy;
use serde_json::json;

const GROUP: &str = "mailfuse blocked";

/// The configuration an admin would write, pinned to the emulator's
/// self-signed certificate.
fn config(emulator: &Emulator) -> KerioConfig {
    serde_json::from_value(json!({
        "url": emulator.url(),
        "user": ADMIN,
        "password": ADMIN_PASSWORD,
        "tls_pin_sha256": emulator.pin(),
        "timeout_secs": 5,
    }))
    .unwrap()
}

fn kerio(emulator: &Emulator) -> Kerio {
    Kerio::new(config(emulator)).unwrap()
}

fn count(methods: &[String], method: &str) -> usize {
    methods.iter().filter(|m| *m == method).count()
}

#[tokio::test]
async fn disables_a_user_then_reports_already_done_and_enables_again() {
    let emulator = Emulator::start().await;
    emulator.add_user("sales@example.com", true);
    emulator.add_user("anna@example.com", true);
    let kerio = kerio(&emulator);

    assert_eq!(
        kerio.disable_user("sales@example.com").await.unwrap(),
        Change::Done
    );
    assert!(!emulator.user_enabled("sales@example.com"));
    assert!(emulator.user_enabled("anna@example.com"));
    // Kerio compares login names without case; so do we.
    assert_eq!(
        kerio.disable_user("Sales@Example.com").await.unwrap(),
        Change::AlreadyDone
    );
    assert_eq!(
        kerio.enable_user("sales@example.com").await.unwrap(),
        Change::Done
    );
    assert!(emulator.user_enabled("sales@example.com"));

    let methods = emulator.methods();
    assert_eq!(count(&methods, "Session.login"), 1, "{methods:?}");
    assert_eq!(count(&methods, "Users.set"), 2, "{methods:?}");
    let set = emulator
        .calls()
        .into_iter()
        .find(|c| c.method == "Users.set")
        .unwrap();
    assert_eq!(set.params["pattern"], json!({"isEnabled": false}));
    assert_eq!(set.params["userIds"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn login_sends_the_application_object() {
    let emulator = Emulator::start().await;
    emulator.add_user("sales@example.com", true);
    kerio(&emulator)
        .disable_user("sales@example.com")
        .await
        .unwrap();
    let login = emulator.calls().into_iter().next().unwrap();
    assert_eq!(login.method, "Session.login");
    assert_eq!(login.params["userName"], ADMIN);
    assert_eq!(login.params["application"]["name"], "mailfuse");
    assert_eq!(login.params["application"]["vendor"], "mailfuse");
    assert!(login.params["application"]["version"].is_string());
}

#[tokio::test]
async fn removes_only_the_messages_the_hijacked_account_submitted() {
    let emulator = Emulator::start().await;
    let mut spam = Vec::new();
    // Enough legitimate traffic to need several Queue.get pages.
    for n in 0..1100 {
        emulator.queue_message(
            "anna@example.com",
            "anna@example.com",
            &format!("c{n}@client.example"),
        );
        if n % 400 == 0 {
            spam.push(emulator.queue_message(
                "ceo@bank.example",
                "sales@example.com",
                "v@victim.example",
            ));
        }
    }
    spam.push(emulator.queue_message("sales@example.com", "SALES@example.com", "w@victim.example"));
    // Same forged From, but another (legitimate) authenticated sender.
    let forged_from_other_sender =
        emulator.queue_message("ceo@bank.example", "anna@example.com", "x@client.example");
    // Mail to the server with the hijacked address as From, unauthenticated.
    let unauthenticated = emulator.queue_message("sales@example.com", "", "y@client.example");
    let before = emulator.queue().len();

    let removed = kerio(&emulator)
        .remove_queued_from("sales@example.com")
        .await
        .unwrap();

    assert_eq!(removed, spam.len() as u64);
    let queue = emulator.queue();
    assert_eq!(queue.len(), before - spam.len());
    assert!(queue.iter().all(|m| !spam.contains(&m.id)));
    assert!(queue.iter().any(|m| m.id == forged_from_other_sender));
    assert!(queue.iter().any(|m| m.id == unauthenticated));
    let methods = emulator.methods();
    assert_eq!(count(&methods, "Queue.get"), 3, "{methods:?}");
    assert_eq!(count(&methods, "Queue.remove"), 1, "{methods:?}");
}

#[tokio::test]
async fn an_account_with_nothing_queued_removes_nothing() {
    let emulator = Emulator::start().await;
    emulator.queue_message("anna@example.com", "anna@example.com", "c@client.example");
    let removed = kerio(&emulator)
        .remove_queued_from("sales@example.com")
        .await
        .unwrap();
    assert_eq!(removed, 0);
    assert_eq!(emulator.queue().len(), 1);
    assert_eq!(count(&emulator.methods(), "Queue.remove"), 0);
}

#[tokio::test]
async fn blocks_an_ip_then_already_done_then_unblocks() {
    let emulator = Emulator::start().await;
    emulator.add_ip_entry("office", "203.0.113.9");
    let kerio = kerio(&emulator);
    let ip: IpAddr = "203.0.113.9".parse().unwrap();
    let v6: IpAddr = "2001:db8::66".parse().unwrap();

    let why = "mailfuse: sales@example.com hijacked, until 2026-05-05 10:00 UTC";
    assert_eq!(kerio.block_ip(ip, why).await.unwrap(), Change::Done);
    assert_eq!(
        emulator.ip_group(GROUP),
        vec![("203.0.113.9".to_owned(), why.to_owned())]
    );
    assert_eq!(kerio.block_ip(ip, why).await.unwrap(), Change::AlreadyDone);
    assert_eq!(kerio.block_ip(v6, why).await.unwrap(), Change::Done);
    assert_eq!(emulator.ip_group(GROUP).len(), 2);
    // The second entry joins the group the first one created.
    let creates: Vec<_> = emulator
        .calls()
        .into_iter()
        .filter(|c| c.method == "IpAddressGroups.create")
        .collect();
    assert_eq!(creates[0].params["groups"][0]["groupId"], "");
    assert_eq!(creates[0].params["groups"][0]["type"], "Host");
    assert_ne!(creates[1].params["groups"][0]["groupId"], "");

    assert_eq!(kerio.unblock_ip(ip).await.unwrap(), Change::Done);
    assert_eq!(
        emulator.ip_group(GROUP),
        vec![("2001:db8::66".to_owned(), why.to_owned())]
    );
    assert_eq!(kerio.unblock_ip(ip).await.unwrap(), Change::AlreadyDone);
    // The same IP in another group is not ours to remove.
    assert_eq!(emulator.ip_group("office").len(), 1);
}

#[tokio::test]
async fn a_wrong_password_is_a_clear_error_and_nothing_else_is_sent() {
    let emulator = Emulator::start().await;
    emulator.add_user("sales@example.com", true);
    let mut config = config(&emulator);
    config.password = "wrong".into();
    let kerio = Kerio::new(config).unwrap();

    let error = kerio.disable_user("sales@example.com").await.unwrap_err();

    assert!(
        error
            .to_string()
            .starts_with("kerio: login as admin refused (wrong user or password?)"),
        "{error}"
    );
    assert!(
        error
            .message
            .contains("User name or password is incorrect."),
        "{error}"
    );
    assert_eq!(emulator.methods(), vec!["Session.login"]);
    assert!(emulator.user_enabled("sales@example.com"));
}

#[tokio::test]
async fn an_expired_session_is_renewed_once_and_the_call_retried() {
    let emulator = Emulator::start().await;
    emulator.add_user("sales@example.com", true);
    emulator.add_user("info@example.com", true);
    let kerio = kerio(&emulator);

    kerio.disable_user("sales@example.com").await.unwrap();
    emulator.expire_sessions();
    assert_eq!(
        kerio.disable_user("info@example.com").await.unwrap(),
        Change::Done
    );

    assert!(!emulator.user_enabled("info@example.com"));
    let methods = emulator.methods();
    assert_eq!(count(&methods, "Session.login"), 2, "{methods:?}");
    // The refused call is repeated right after the second login.
    let second_login = methods.iter().rposition(|m| m == "Session.login").unwrap();
    assert_eq!(methods[second_login - 1], "Domains.get");
    assert_eq!(methods[second_login + 1], "Domains.get");
}

#[tokio::test]
async fn close_logs_out_and_a_later_call_logs_in_again() {
    let emulator = Emulator::start().await;
    emulator.add_user("sales@example.com", true);
    let kerio = kerio(&emulator);
    kerio.close().await.unwrap();
    assert!(
        emulator.methods().is_empty(),
        "no session, nothing to close"
    );

    kerio.disable_user("sales@example.com").await.unwrap();
    kerio.close().await.unwrap();
    kerio.enable_user("sales@example.com").await.unwrap();

    let methods = emulator.methods();
    assert_eq!(count(&methods, "Session.logout"), 1, "{methods:?}");
    assert_eq!(count(&methods, "Session.login"), 2, "{methods:?}");
}

#[tokio::test]
async fn a_pin_mismatch_is_refused_before_any_request() {
    let emulator = Emulator::start().await;
    emulator.add_user("sales@example.com", true);
    let mut config = config(&emulator);
    config.tls_pin_sha256 = Some("00".repeat(32));
    let kerio = Kerio::new(config).unwrap();

    let error = kerio.disable_user("sales@example.com").await.unwrap_err();

    let message = error.to_string();
    assert!(
        message.starts_with("kerio: certificate fingerprint "),
        "{message}"
    );
    assert!(message.contains(&emulator.pin()), "{message}");
    assert!(message.contains(&format!(
        "does not match the pinned {}",
        ["00"; 32].join(":")
    )));
    assert!(emulator.calls().is_empty());
}

#[tokio::test]
async fn the_pin_may_be_written_in_lowercase_without_colons() {
    let emulator = Emulator::start().await;
    emulator.add_user("sales@example.com", true);
    let mut config = config(&emulator);
    config.tls_pin_sha256 = Some(emulator.pin().replace(':', "").to_lowercase());
    let kerio = Kerio::new(config).unwrap();
    assert_eq!(
        kerio.disable_user("sales@example.com").await.unwrap(),
        Change::Done
    );
}

#[tokio::test]
async fn without_a_pin_the_self_signed_certificate_is_rejected() {
    let emulator = Emulator::start().await;
    emulator.add_user("sales@example.com", true);
    let mut config = config(&emulator);
    config.tls_pin_sha256 = None;
    let kerio = Kerio::new(config).unwrap();

    let error = kerio.disable_user("sales@example.com").await.unwrap_err();

    let message = error.to_string();
    assert!(
        message.starts_with("kerio: cannot reach https://127.0.0.1:"),
        "{message}"
    );
    assert!(message.contains("set tls_pin_sha256"), "{message}");
    assert!(emulator.calls().is_empty());
}

#[tokio::test]
async fn unknown_users_and_domains_are_errors() {
    let emulator = Emulator::start().await;
    emulator.add_user("sales@example.com", true);
    let kerio = kerio(&emulator);

    let error = kerio.disable_user("ghost@example.com").await.unwrap_err();
    assert_eq!(
        error.to_string(),
        "kerio: no user `ghost` in domain example.com (renamed or deleted?)"
    );
    let error = kerio
        .disable_user("sales@elsewhere.example")
        .await
        .unwrap_err();
    assert!(
        error.message.contains("domain `elsewhere.example`"),
        "{error}"
    );
    let error = kerio.disable_user("sales").await.unwrap_err();
    assert!(
        error.message.contains("give the account as user@domain"),
        "{error}"
    );
    assert_eq!(count(&emulator.methods(), "Users.set"), 0);
}

#[tokio::test]
async fn refusals_in_result_errors_are_reported() {
    let emulator = Emulator::start().await;
    emulator.add_user("admin@example.com", true);
    emulator.refuse_changes_to("admin@example.com", "You cannot disable your own account.");
    let kerio = kerio(&emulator);

    let error = kerio.disable_user("admin@example.com").await.unwrap_err();

    assert_eq!(
        error.to_string(),
        "kerio: Users.set refused: You cannot disable your own account. (code 1000) [item 0]"
    );
    assert!(emulator.user_enabled("admin@example.com"));
}

#[tokio::test]
async fn a_non_200_status_is_a_clear_error() {
    let emulator = Emulator::start().await;
    emulator.break_next_reply(502, "text/html", "<html><body>Bad Gateway</body></html>");
    let error = kerio(&emulator)
        .remove_queued_from("sales@example.com")
        .await
        .unwrap_err();
    let message = error.to_string();
    assert!(
        message.contains("Session.login: HTTP 502 Bad Gateway"),
        "{message}"
    );
    assert!(message.contains("Bad Gateway</body>"), "{message}");
}

#[tokio::test]
async fn a_reply_that_is_not_json_is_a_clear_error() {
    let emulator = Emulator::start().await;
    emulator.break_next_reply(200, "text/html", "<html>\u{0}Kerio WebAdmin</html>");
    let error = kerio(&emulator)
        .remove_queued_from("sales@example.com")
        .await
        .unwrap_err();
    let message = error.to_string();
    assert!(message.contains("is not JSON-RPC"), "{message}");
    assert!(message.contains("/admin/api/jsonrpc/"), "{message}");
    assert!(
        message.contains(r"\0Kerio WebAdmin"),
        "control characters stay visible: {message}"
    );
}

#[test]
fn the_configuration_has_defaults_and_rejects_unknown_fields() {
    let config: KerioConfig = serde_json::from_value(json!({
        "url": "https://mail.example.com:4040/admin/api/jsonrpc/",
        "user": "admin",
        "password": "s3cret",
    }))
    .unwrap();
    assert_eq!(config.ip_group, "mailfuse blocked");
    assert_eq!(config.timeout_secs, 10);
    assert_eq!(config.tls_pin_sha256, None);
    assert!(!format!("{config:?}").contains("s3cret"));

    let typo = serde_json::from_value::<KerioConfig>(json!({
        "url": "https://mail.example.com:4040/admin/api/jsonrpc/",
        "user": "admin", "password": "x", "ip_groups": "blocked",
    }));
    assert!(typo
        .unwrap_err()
        .to_string()
        .contains("unknown field `ip_groups`"));
}

#[test]
fn bad_urls_and_pins_are_refused_at_construction() {
    let base = KerioConfig {
        url: "https://mail.example.com:4040/admin/api/jsonrpc/".into(),
        user: "admin".into(),
        password: "x".into(),
        ip_group: GROUP.into(),
        tls_pin_sha256: None,
        timeout_secs: 10,
    };
    assert!(Kerio::new(base.clone()).is_ok());
    let plain = KerioConfig {
        url: "http://mail.example.com:4040/admin/api/jsonrpc/".into(),
        ..base.clone()
    };
    assert!(Kerio::new(plain)
        .err()
        .unwrap()
        .message
        .contains("must be https://"));
    let garbage = KerioConfig {
        url: "mail.example.com".into(),
        ..base.clone()
    };
    assert!(Kerio::new(garbage)
        .err()
        .unwrap()
        .message
        .contains("is not a URL"));
    let no_time = KerioConfig {
        timeout_secs: 0,
        ..base.clone()
    };
    assert!(Kerio::new(no_time)
        .err()
        .unwrap()
        .message
        .contains("timeout_secs"));
    let short_pin = KerioConfig {
        tls_pin_sha256: Some("AB:CD".into()),
        ..base
    };
    assert!(Kerio::new(short_pin)
        .err()
        .unwrap()
        .message
        .contains("64 hex digits"));
}

#[tokio::test]
async fn lists_users_with_forwarding_and_last_login() {
    let emulator = Emulator::start().await;
    emulator.add_user("sales@example.com", true);
    emulator.add_user("anna@example.com", true);
    emulator.add_user("petr@example.org", false);
    emulator.forward("sales@example.com", "boss@example.net", false);
    emulator.forward("anna@example.com", "anna@home.example", true);
    emulator.last_login("anna@example.com", 1_780_000_000, "IMAP");

    let users = kerio(&emulator).users().await.unwrap();

    let by_address = |address: &str| users.iter().find(|u| u.address == address).unwrap();
    assert_eq!(users.len(), 3);
    let sales = by_address("sales@example.com");
    assert!(sales.enabled && sales.forwards_only && sales.last_login.is_none());
    assert_eq!(sales.forward_to, ["boss@example.net"]);
    let anna = by_address("anna@example.com");
    assert!(!anna.forwards_only);
    assert_eq!(
        anna.last_login
            .as_ref()
            .map(|(at, how)| (at.as_secs(), how.as_str())),
        Some((1_780_000_000, "IMAP"))
    );
    assert!(!by_address("petr@example.org").enabled);
    let users_get = emulator
        .calls()
        .into_iter()
        .filter(|c| c.method == "Users.get")
        .count();
    assert_eq!(users_get, 2, "one Users.get per domain");
}

#[tokio::test]
async fn lists_users_with_their_domains_password_policy_unless_a_directory_checks_it() {
    let emulator = Emulator::start().await;
    emulator.add_user("anna@example.com", true);
    emulator.add_user("jan@example.com", true);
    emulator.add_user("petr@example.org", true);
    emulator.password_policy("example.com", true, 10, Some(90), 5);
    emulator.authenticated_by("jan@example.com", "ULDAPAuth");
    emulator.store_password_reversibly("petr@example.org");

    let users = kerio(&emulator).users().await.unwrap();

    let policy = |address: &str| {
        users
            .iter()
            .find(|u| u.address == address)
            .unwrap()
            .password_policy
            .clone()
    };
    assert_eq!(
        policy("anna@example.com"),
        Some(PasswordPolicy {
            scope: "domain example.com".into(),
            complexity: true,
            minimum_length: 10,
            expires_after_days: Some(90),
            history: 5,
            stored_reversibly: false,
        })
    );
    assert_eq!(
        policy("jan@example.com"),
        None,
        "the directory's policy applies"
    );
    assert_eq!(
        policy("petr@example.org"),
        Some(PasswordPolicy {
            scope: "domain example.org".into(),
            complexity: false,
            minimum_length: 8,
            expires_after_days: None,
            history: 0,
            stored_reversibly: true,
        })
    );
    let domains_get = emulator
        .calls()
        .into_iter()
        .find(|c| c.method == "Domains.get")
        .unwrap();
    assert!(domains_get.params["query"]["fields"]
        .as_array()
        .unwrap()
        .contains(&json!("passwordComplexityEnabled")));
}
