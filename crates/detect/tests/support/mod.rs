//! Test-support code shared by the detector's integration tests.

pub mod mmdb;
