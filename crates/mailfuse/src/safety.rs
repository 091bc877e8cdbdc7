//! The server's own addresses, for the safety rules
//! ([`mailfuse_core::safety`]): read from this host's interfaces when
//! mailfuse runs on the mail server (`watch`, `policy` and the commands
//! acting on their state), added to those `[safety] server_addresses`
//! names. `scan` does not read them: its logs may come from another
//! machine.

use mailfuse_core::net::Cidr;
use tracing::warn;

/// The addresses of this host's interfaces (loopback included); none,
/// with a warning, when they cannot be read: the configured ones and the
/// protected ranges still hold.
pub fn host_addresses() -> Vec<Cidr> {
    match if_addrs::get_if_addrs() {
        Ok(interfaces) => interfaces
            .iter()
            .map(|interface| Cidr::from(interface.ip()))
            .collect(),
        Err(e) => {
            warn!("cannot read this host's addresses (only [safety] server_addresses count as this server's): {e}");
            Vec::new()
        }
    }
}

#[cfg(test)]
mod tests {
    use std::net::IpAddr;

    use super::*;

    #[test]
    fn the_host_has_its_loopback_address() {
        let own = host_addresses();
        let is_own = |ip: IpAddr| own.iter().any(|cidr| cidr.contains(ip));
        assert!(is_own(IpAddr::from([127, 0, 0, 1])));
        assert!(!is_own(IpAddr::from([192, 0, 2, 77])));
    }
}
