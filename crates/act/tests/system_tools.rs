//! The Postfix and nftables actions with the real tools (`postmap`, `nft`):
//! `scripts/install-test-deps` installs them; these tests run as root.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a panic in a test is a failed test

use std::net::IpAddr;
use std::process::Command;

use mailfuse_act::nftables::{Nftables, NftablesConfig};
use mailfuse_act::postfix::{Postfix, PostfixConfig};

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

#[test]
fn the_lock_map_is_written_and_built_with_postmap() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("main.cf"), "compatibility_level = 3.6\n").unwrap();
    let lock_map = dir.path().join("mailfuse_locked");
    let postfix = Postfix::new(PostfixConfig {
        config_directory: dir.path().to_path_buf(),
        lock_map: lock_map.clone(),
        map_type: "hash".into(),
        hold: true,
    })
    .unwrap();
    let accounts = vec![
        "sales@example.test".to_string(),
        "info@example.test".to_string(),
    ];
    runtime().block_on(postfix.write_locks(&accounts)).unwrap();
    let lookup = |key: &str| {
        let output = Command::new("postmap")
            .args(["-c", dir.path().to_str().unwrap(), "-q", key])
            .arg(format!("hash:{}", lock_map.display()))
            .output()
            .expect("postmap runs: run scripts/install-test-deps");
        String::from_utf8_lossy(&output.stdout).trim().to_string()
    };
    assert!(lookup("sales@example.test").starts_with("REJECT 5.7.1"));
    assert!(lookup("info@example.test").starts_with("REJECT 5.7.1"));
    assert_eq!(lookup("alice@example.test"), "");

    runtime()
        .block_on(postfix.write_locks(&accounts[1..]))
        .unwrap();
    assert_eq!(lookup("sales@example.test"), "", "unlocked");

    let hostile = vec!["x REJECT\nalice@example.test".to_string()];
    assert!(runtime().block_on(postfix.write_locks(&hostile)).is_err());
    assert!(
        lookup("info@example.test").starts_with("REJECT"),
        "the map is left as it was"
    );
}

/// An nftables table of the test's own, deleted at the end.
struct Table(String);

impl Drop for Table {
    fn drop(&mut self) {
        let _ = Command::new("nft")
            .args(["delete", "table", "inet", &self.0])
            .status();
    }
}

fn nft(args: &str) -> String {
    let output = Command::new("nft")
        .args(args.split(' '))
        .output()
        .expect("nft runs: run scripts/install-test-deps (as root)");
    assert!(
        output.status.success(),
        "nft {args}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

#[test]
fn ips_are_blocked_with_a_timeout_and_unblocked() {
    let table = Table(format!("mailfuse_test_{}", std::process::id()));
    nft(&format!("add table inet {}", table.0));
    nft(&format!(
        "add set inet {} blocked4 {{ type ipv4_addr ; flags timeout ; }}",
        table.0
    ));
    nft(&format!(
        "add set inet {} blocked6 {{ type ipv6_addr ; flags timeout ; }}",
        table.0
    ));
    let nftables = Nftables::new(NftablesConfig {
        table: table.0.clone(),
        set4: "blocked4".into(),
        set6: "blocked6".into(),
    })
    .unwrap();
    let v4: IpAddr = "192.0.2.77".parse().unwrap();
    let v6: IpAddr = "2001:db8::77".parse().unwrap();
    let rt = runtime();
    rt.block_on(nftables.block(v4, 21 * 86_400)).unwrap();
    rt.block_on(nftables.block(v6, 3600)).unwrap();
    rt.block_on(nftables.block(v4, 21 * 86_400)).unwrap();
    let set4 = nft(&format!("list set inet {} blocked4", table.0));
    assert!(set4.contains("192.0.2.77 timeout 21d"), "{set4}");
    let set6 = nft(&format!("list set inet {} blocked6", table.0));
    assert!(set6.contains("2001:db8::77 timeout 1h"), "{set6}");

    assert!(rt.block_on(nftables.unblock(v4)).unwrap());
    assert!(!rt.block_on(nftables.unblock(v4)).unwrap(), "already gone");
    assert!(!nft(&format!("list set inet {} blocked4", table.0)).contains("192.0.2.77"));

    let bad = NftablesConfig {
        table: "x; flush ruleset".into(),
        set4: "a".into(),
        set6: "b".into(),
    };
    assert!(Nftables::new(bad).is_err());
}
