//! What `watch`'s store keeps of a detector: the rest of its state and one
//! row per entry, updated by each save with only what changed — so a test
//! that restarts often goes through the incremental saves as watch does.

use std::collections::BTreeMap;

use mailfuse_detect::{DetectConfig, Detector, SnapshotError};

/// The saved form of one detector.
#[derive(Default)]
pub struct Saved {
    rest: Vec<u8>,
    /// By collection, then key, bytewise: the order the store reads back.
    rows: BTreeMap<(&'static str, Vec<u8>), Vec<u8>>,
}

impl Saved {
    /// Saves what changed in `detector` since its last save, then replaces
    /// it with the detector restored from everything saved: a restart.
    /// `detector` must have been tracking its changes from its start.
    pub fn restart(&mut self, detector: &mut Detector, config: &DetectConfig) {
        let changes = detector.changes().expect("changes");
        self.rest = changes.rest;
        for row in changes.rows {
            match row.value {
                Some(value) => self.rows.insert((row.map, row.key), value),
                None => self.rows.remove(&(row.map, row.key)),
            };
        }
        detector.changes_saved();
        *detector = Detector::restore_rows(
            &self.rest,
            config.clone(),
            &changes.dictionaries,
            |loader| {
                for ((map, key), value) in &self.rows {
                    loader.load(map, key, value)?;
                }
                Ok::<(), SnapshotError>(())
            },
        )
        .expect("restore from rows");
    }
}
