//! The Rust version the workspace declares is one that builds it: no
//! locked dependency asks for a newer one, and every crate declares it (so
//! cargo tells a user with an older Rust what to install, rather than
//! failing somewhere in a dependency).

#![allow(clippy::unwrap_used, clippy::expect_used)] // a panic in a test is a failed test

use std::process::Command;

use serde_json::Value;

/// `1.89` or `1.89.0` as comparable numbers.
fn version(text: &str) -> Vec<u64> {
    let mut parts: Vec<u64> = text.split('.').map(|p| p.parse().unwrap()).collect();
    parts.resize(3, 0);
    parts
}

#[test]
fn the_declared_rust_version_is_what_the_locked_dependencies_need() {
    let output = Command::new(env!("CARGO"))
        .args(["metadata", "--format-version", "1", "--locked"])
        .current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."))
        .output()
        .expect("cargo metadata runs");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let metadata: Value = serde_json::from_slice(&output.stdout).expect("JSON");
    let members: Vec<&str> = metadata["workspace_members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m.as_str().unwrap())
        .collect();
    let packages = metadata["packages"].as_array().unwrap();
    let (ours, theirs): (Vec<&Value>, Vec<&Value>) = packages
        .iter()
        .partition(|p| members.contains(&p["id"].as_str().unwrap()));
    assert_eq!(ours.len(), members.len());
    let declared: Vec<Vec<u64>> = ours
        .iter()
        .map(|p| {
            let v = p["rust_version"].as_str();
            version(v.unwrap_or_else(|| panic!("{} declares no rust-version", p["name"])))
        })
        .collect();
    assert!(
        declared.windows(2).all(|w| w[0] == w[1]),
        "every crate inherits the workspace's rust-version: {declared:?}"
    );
    let needed = theirs
        .iter()
        .filter_map(|p| {
            Some((
                version(p["rust_version"].as_str()?),
                p["name"].as_str()?.to_string(),
            ))
        })
        .max()
        .unwrap();
    assert!(
        declared[0] >= needed.0,
        "rust-version {:?} is older than {} needs ({:?}): raise it in Cargo.toml and the README",
        declared[0],
        needed.1,
        needed.0
    );
}
