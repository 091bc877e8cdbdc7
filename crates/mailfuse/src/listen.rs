//! Why a listening socket could not be opened, and what to do about it.

use std::fmt::Display;
use std::io;

/// The error of a socket for `what` that could not listen on `address`,
/// set by the configuration key `setting`: the cause, then what to do.
pub fn cannot_listen(
    error: &io::Error,
    what: &str,
    address: impl Display,
    setting: &str,
) -> anyhow::Error {
    let hint = match error.kind() {
        io::ErrorKind::AddrInUse => format!(
            "another program listens there (`ss -lntup` names it): stop it or set {setting} to a free port"
        ),
        io::ErrorKind::PermissionDenied => format!(
            "a port under 1024 needs root or CAP_NET_BIND_SERVICE (AmbientCapabilities= in a systemd unit): grant it or set {setting} to a port above 1023"
        ),
        io::ErrorKind::AddrNotAvailable => format!(
            "no interface of this host has that address (`ip -br addr` lists them): set {setting} to one of them, or to 127.0.0.1"
        ),
        _ => format!("check {setting}"),
    };
    anyhow::anyhow!("cannot listen on {address} for {what}: {error}: {hint}")
}
