//! Per-key sending limits over sliding windows, exact to the second: the
//! one engine behind `watch`'s `limit_exceeded` detector (keys are the
//! accounts of log lines, time is the lines') and `mailfuse policy` (keys
//! are logins, senders or client IPs; time is the clock's).
//!
//! - [`config`]: the `[limits]` section and the [`LimitRules`] it resolves
//!   to (defaults, overrides that replace them, an allow-list);
//! - [`limiter`]: the counts, [`Limiter`].
//!
//! # Precision and memory
//!
//! At time `t` a window of `W` seconds holds what was sent in `(t - W, t]`:
//! with 30 messages per minute, what was sent at 10:00:00 counts until
//! 10:00:59 and is gone at 10:01:00. Each key keeps, per limit, the
//! amounts of the seconds it sent in, merged per second, and at most twice
//! the limit of them (the oldest go first, and they would leave the window
//! first), which is all it takes to tell a limit crossed and twice the
//! limit reached; below that the count is exact. A key's memory is
//! therefore at most `min(2 × limit, window in seconds)` entries per limit,
//! whatever its traffic, and a key idle for its longest window is
//! forgotten ([`Limiter::prune`]).

pub mod config;
pub mod limiter;

pub use config::{
    normalize, Counting, Limit, LimitRules, LimitsConfig, LimitsError, Override, WindowLimit,
};
pub use limiter::{judge, KeySeconds, Level, Limiter, Sent, Standing, Usage, Verdict};
