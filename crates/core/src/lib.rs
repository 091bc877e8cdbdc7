//! The vocabulary every mailfuse component speaks.
//!
//! Parsers (`mailfuse-formats`) turn log lines into [`Event`]s; detectors
//! (`mailfuse-detect`) turn events into incidents. Both sides depend on this
//! crate only, so it stays tiny: no I/O, no heavy dependencies.
//!
//! Events borrow their text from the log line (`&[u8]`, never validated as
//! UTF-8: Kerio on Windows writes ANSI code pages). Anything taken from a log is
//! untrusted: show it through [`text::Sanitized`] or an escaping serializer.

pub mod canary;
pub mod event;
pub mod net;
pub mod rows;
pub mod safety;
pub mod slab_map;
pub mod text;
pub mod time;

pub use event::{
    AuthFailure, AuthFailureKind, AuthSuccess, BlockKind, Client, Delivery, DeliveryStatus, Event,
    Removed, ServerBlock, Submission,
};
pub use time::Timestamp;
