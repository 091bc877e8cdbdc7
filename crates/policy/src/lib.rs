//! mailfuse's Postfix policy service (SMTP access policy delegation), which
//! lets Postfix ask before it accepts a message whether the sender may send.
//! The crate will hold three parts:
//!
//! - **protocol**: the codec for Postfix's `name=value` requests and
//!   `action=…` replies; pure, no I/O, so every framing case is testable;
//! - **limiter**: the per-account sending limits that decide the action;
//! - **server**: the socket loop that feeds bytes to the codec and answers.
//!
//! The codec and the limiter exist so far.

pub mod limiter;
pub mod protocol;

pub use limiter::{ConfigError, Counting, Limit, Limiter, LimitsConfig, Override, Verdict};
pub use protocol::{encode, Action, ProtocolError, ProtocolState, Request, RequestReader};
