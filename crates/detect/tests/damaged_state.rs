//! A saved state whose parts disagree (found by fuzzing `restore_rows`:
//! incidents naming an account whose row is missing) is refused when read
//! back, never indexed into a panic later.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a panic in a test is a failed test

mod support;

use mailfuse_detect::{DetectConfig, Detector, SnapshotError};
use support::feed::Feed;

/// `feed`'s detector restored from its rest and its rows, less those of
/// collection `missing`.
fn restore_without(feed: &mut Feed, missing: &str) -> Result<Detector, SnapshotError> {
    let changes = feed.detector.changes().unwrap();
    let mut rows: Vec<_> = changes
        .rows
        .into_iter()
        .filter(|row| row.map != missing)
        .filter_map(|row| Some((row.map, row.key, row.value?)))
        .collect();
    rows.sort();
    Detector::restore_rows(
        &changes.rest,
        DetectConfig::default(),
        &changes.dictionaries,
        |loader| {
            rows.iter()
                .try_for_each(|(map, key, value)| loader.load(map, key, value))
        },
    )
}

#[test]
fn open_messages_of_accounts_not_saved_are_refused() {
    let mut feed = Feed::new();
    feed.send(
        0,
        "alice@example.com",
        "192.0.2.1",
        "alice@example.com",
        &[],
    );
    // Whole, it restores; without the account's row, its open message
    // names an account that is not there.
    restore_without(&mut feed, "none").unwrap();
    let Err(error) = restore_without(&mut feed, "accounts") else {
        panic!("a state missing an account it names restored");
    };
    assert!(
        error.to_string().contains("the state is damaged"),
        "{error}"
    );
}
