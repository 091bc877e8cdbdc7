//! Blocks IPs with nftables sets whose elements expire on their own
//! (`timeout`): a block outlives a crash of mailfuse, and ends by itself
//! ("take the block off after a few weeks").
//!
//! The admin creates the table, the sets and the rule that drops their
//! members (`dist/nftables-mailfuse.nft`); mailfuse only adds and removes
//! elements.

use std::net::IpAddr;

use serde::Deserialize;

use crate::capability::{ActFuture, Action, BlockIp, Blocking};
use crate::{tool, ActError};

const ACTION: &str = "nftables";

/// `[actions.nftables]`: an `inet` table with one set per address family.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NftablesConfig {
    /// The `inet` table holding the sets (the admin's ruleset drops what they match).
    #[serde(default = "default_table")]
    pub table: String,
    /// Set of IPv4 addresses (`type ipv4_addr; flags timeout;`).
    #[serde(default = "default_set4")]
    pub set4: String,
    /// Set of IPv6 addresses (`type ipv6_addr; flags timeout;`).
    #[serde(default = "default_set6")]
    pub set6: String,
}

fn default_table() -> String {
    "mailfuse".into()
}

fn default_set4() -> String {
    "blocked4".into()
}

fn default_set6() -> String {
    "blocked6".into()
}

/// Adds and removes set elements with `nft`.
#[derive(Debug)]
pub struct Nftables {
    config: NftablesConfig,
}

impl Nftables {
    /// Checks the names (they go into nft's command line).
    pub fn new(config: NftablesConfig) -> Result<Nftables, ActError> {
        for name in [&config.table, &config.set4, &config.set6] {
            let valid = !name.is_empty()
                && name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
            if !valid {
                return Err(ActError::new(
                    ACTION,
                    format!("{name:?} is not an nftables name (letters, digits, _ and -)"),
                ));
            }
        }
        Ok(Nftables { config })
    }

    fn set_of(&self, ip: IpAddr) -> &str {
        if ip.is_ipv4() {
            &self.config.set4
        } else {
            &self.config.set6
        }
    }

    /// Blocks `ip` for `secs` seconds (an existing element keeps its own
    /// timeout: nft does not extend it).
    pub async fn block(&self, ip: IpAddr, secs: i64) -> Result<(), ActError> {
        let element = format!("{{ {ip} timeout {}s }}", secs.max(1));
        let args = [
            "add",
            "element",
            "inet",
            &self.config.table,
            self.set_of(ip),
            &element,
        ];
        tool::run(ACTION, "nft", &args, b"").await.map(drop)
    }

    /// Lifts the block of `ip`; false if it was not in the set.
    pub async fn unblock(&self, ip: IpAddr) -> Result<bool, ActError> {
        let element = format!("{{ {ip} }}");
        let args = [
            "delete",
            "element",
            "inet",
            &self.config.table,
            self.set_of(ip),
            &element,
        ];
        match tool::run(ACTION, "nft", &args, b"").await {
            Ok(_) => Ok(true),
            // Expired already, or removed by hand.
            Err(e) if e.message.contains("No such file or directory") => Ok(false),
            Err(e) => Err(e),
        }
    }
}

impl Action for Nftables {
    fn block(&self) -> Option<&dyn BlockIp> {
        Some(self)
    }
}

impl BlockIp for Nftables {
    fn journal_name(&self) -> &'static str {
        "nftables.block"
    }

    fn block<'a>(&'a self, blocking: Blocking<'a>) -> ActFuture<'a, String> {
        Box::pin(async move {
            Nftables::block(self, blocking.ip.ip(), blocking.secs).await?;
            Ok(format!(
                "{} dropped by nftables for {}",
                blocking.ip, blocking.duration
            ))
        })
    }

    fn unblock(&self, ip: IpAddr) -> ActFuture<'_, Option<String>> {
        Box::pin(async move {
            let removed = Nftables::unblock(self, ip).await?;
            Ok(removed.then(|| "removed from the nftables set".to_string()))
        })
    }

    /// Set elements live in the kernel: a reboot empties the sets.
    fn forgets_on_restart(&self) -> bool {
        true
    }
}
