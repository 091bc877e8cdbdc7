//! mailfuse's Postfix policy service (SMTP access policy delegation), which
//! lets Postfix ask before it accepts a message whether the sender may send.
//!
//! - [`protocol`]: the codec for Postfix's `name=value` requests and
//!   `action=…` replies; pure, no I/O, so every framing case is testable;
//! - [`counters`]: where counts, seen IPs and locks live (in memory with
//!   `mailfuse-limits`' [`Limiter`], or shared through Redis);
//! - [`decide`]: one request to one action (locks, trips, limits);
//! - [`server`]: the TCP and unix sockets, one task per connection;
//! - [`config`], [`clock`], [`metrics`]: settings, injected time, Prometheus.

pub mod clock;
pub mod config;
pub mod counters;
pub mod decide;
pub mod metrics;
pub mod protocol;
pub mod server;

pub use clock::{Clock, ManualClock, SystemClock};
pub use config::PolicyConfig;
pub use counters::{Answer, Ask, Counters, Diversity, Trip};
pub use decide::{Policy, Session, TripReport};
pub use mailfuse_limits::{
    Counting, Limit, LimitRules, Limiter, LimitsConfig, LimitsError, Override, Verdict, WindowLimit,
};
pub use metrics::{Outcome, PolicyMetrics};
pub use protocol::{encode, Action, ProtocolError, ProtocolState, Request, RequestReader};
pub use server::{Address, Listener};
