//! What to do about the errors a new admin meets first: a listening
//! socket that cannot open, a file mailfuse may not read.

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

/// What to do about a file that could not be read because of `error`,
/// after the error itself.
pub fn unreadable(error: &io::Error) -> String {
    let hint = match error.kind() {
        io::ErrorKind::PermissionDenied => {
            "run mailfuse as a user who may read it: root, or a member of its group (Debian's mail logs belong to the adm group: usermod -aG adm USER)"
        }
        io::ErrorKind::NotFound => "check the path",
        io::ErrorKind::IsADirectory => "give a file (scan takes directories as inputs, the configuration does not)",
        _ => return error.to_string(),
    };
    format!("{error}: {hint}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_error_says_what_to_change() {
        let taken = io::Error::from(io::ErrorKind::AddrInUse);
        let message = cannot_listen(&taken, "metrics", "127.0.0.1:9187", "watch.metrics_listen");
        assert!(
            message
                .to_string()
                .ends_with("stop it or set watch.metrics_listen to a free port"),
            "{message}"
        );
        let refused = io::Error::from(io::ErrorKind::PermissionDenied);
        let message = cannot_listen(&refused, "syslog", "0.0.0.0:514", "watch.syslog.udp");
        assert!(
            message.to_string().contains("CAP_NET_BIND_SERVICE"),
            "{message}"
        );
        let message = unreadable(&refused);
        assert!(
            message.starts_with("permission denied") && message.contains("usermod -aG adm"),
            "{message}"
        );
        let other = io::Error::other("disk on fire");
        assert_eq!(unreadable(&other), "disk on fire");
    }
}
