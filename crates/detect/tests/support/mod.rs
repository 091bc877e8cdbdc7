//! Test-support code shared by the detector's integration tests.

pub mod feed;
pub mod mmdb;
