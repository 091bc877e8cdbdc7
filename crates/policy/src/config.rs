//! The `[policy]` section of the configuration, with built-in defaults so
//! `mailfuse policy` runs without a configuration file.

use std::time::Duration;

use mailfuse_core::canary::Canaries;
use mailfuse_core::net::Cidr;
use serde::Deserialize;

use mailfuse_limits::{LimitsConfig, WindowLimit};

/// Everything `mailfuse policy` is told.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PolicyConfig {
    /// Where to listen: `127.0.0.1:10040`, `[::1]:10040` or `unix:/path`.
    pub listen: Vec<String>,
    /// What a message over a limit gets.
    pub over_limit: OverLimit,
    /// The stage at which an accepted message is counted.
    pub count_at: CountAt,
    /// The answer when mailfuse itself fails (store unreachable with no
    /// fallback, a bug): `dunno` lets mail through (fail open), `defer`
    /// makes Postfix try later (fail closed).
    pub on_error: OnError,
    /// Clients allowed to relay without logging in (web servers, scanners):
    /// their mail is limited by `relay_key`. Mail from elsewhere without a
    /// login is inbound mail and not limited.
    pub trusted_networks: Vec<Cidr>,
    /// What limits unauthenticated relay from trusted networks.
    pub relay_key: RelayKey,
    /// The domains of this mail server, for the forged-sender trip (the
    /// login's own domain always counts as local).
    pub local_domains: Vec<String>,
    /// Behaviour that locks an account at once.
    pub trips: TripsConfig,
    /// Longest request accepted, in bytes; a longer one closes the connection.
    pub max_request_bytes: usize,
    /// Connections served at once; more are closed at once (and logged).
    pub max_connections: usize,
    /// Connections served at once from one IP address (unix sockets: not
    /// capped); more from it are closed at once, so one peer cannot take
    /// every slot.
    pub max_connections_per_peer: usize,
    /// A connection idle this long between requests is closed (Postfix
    /// reconnects).
    #[serde(deserialize_with = "mailfuse_core::time::deserialize_duration")]
    pub idle_timeout: Duration,
    /// A request must arrive whole within this long of its first byte, or
    /// the connection is closed: a peer sending a byte now and then cannot
    /// hold a connection (Postfix writes a request at once).
    #[serde(deserialize_with = "mailfuse_core::time::deserialize_duration")]
    pub request_timeout: Duration,
    /// How often the embedded store saves the counters.
    #[serde(deserialize_with = "mailfuse_core::time::deserialize_duration")]
    pub save_every: Duration,
    /// Serve Prometheus metrics at `http://<this>/metrics` (off when absent).
    pub metrics_listen: Option<std::net::SocketAddr>,
    /// Share counters and locks through Redis (several mail servers).
    pub redis: Option<RedisConfig>,
    /// The canary recipients (the `[canary]` section): an authenticated
    /// RCPT to one locks the account at once.
    #[serde(skip)]
    pub canaries: Canaries,
    /// `[watch] dry_run`: refuse nothing and lock nothing, answer `DUNNO`
    /// and report what would have been done.
    #[serde(skip)]
    pub dry_run: bool,
}

/// The verdict for a message over a limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OverLimit {
    /// `DEFER_IF_PERMIT`: 4xx unless another restriction rejects; the
    /// sender's server tries later, when the window has room.
    #[default]
    DeferIfPermit,
    /// `DEFER`: 4xx, whatever else says.
    Defer,
    /// `HOLD`: accepted into the hold queue, for the admin to release
    /// (`postsuper -H`) or delete.
    Hold,
    /// `REJECT`: 5xx, the message bounces to its sender.
    Reject,
}

/// When a message is counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum CountAt {
    /// After the message data (`smtpd_end_of_data_restrictions`).
    #[default]
    EndOfMessage,
    /// At the DATA command (`smtpd_data_restrictions`).
    Data,
}

/// The answer when mailfuse cannot decide.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OnError {
    /// Let the mail through (fail open).
    #[default]
    Dunno,
    /// Ask the client to try later (fail closed).
    Defer,
}

/// What names unauthenticated relay from a trusted network.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RelayKey {
    /// The envelope sender (one web application sending as many users
    /// counts per user).
    #[default]
    Sender,
    /// The client's IP (one limit per relaying host).
    ClientAddress,
}

/// Behaviour that locks an account: the signs of a hijack that a request
/// carries, as `watch` reads them from logs.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TripsConfig {
    /// Lock when one account sends from more than this many IPs within
    /// `window` (0: off).
    pub max_ips: usize,
    /// Lock when one account sends from more than this many networks (/24
    /// for IPv4, /64 for IPv6) within `window` (0: off).
    pub max_networks: usize,
    /// How long a client IP counts for `max_ips` and `max_networks` after
    /// the account last sent from it (a sliding window, default `1h`).
    #[serde(deserialize_with = "mailfuse_core::time::deserialize_duration")]
    pub window: Duration,
    /// Lock an account that sends with an envelope sender outside its
    /// login's domain and `local_domains`.
    pub forged_sender: bool,
}

/// Where the shared counters live.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(try_from = "RedisSection")]
pub struct RedisConfig {
    /// One server (`url`) or a Redis Cluster (`cluster`).
    pub servers: RedisServers,
    /// Redis's password (`AUTH`, every node's in a cluster); only the
    /// secrets file may set it, as `policy.redis.password`. `None`: no
    /// authentication.
    pub password: Option<String>,
    /// Prefix of every key, so several mailfuse clusters can share one Redis.
    pub prefix: String,
    /// Longest wait for Redis before deciding locally.
    pub timeout: Duration,
}

/// The Redis the policy servers share.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RedisServers {
    /// `url`: `redis://host:6379/0`, or `redis+unix:///path` for a socket.
    Single(String),
    /// `cluster`: seed nodes of a Redis Cluster, `redis://host:7000` each;
    /// the others are learnt from them.
    Cluster(Vec<String>),
}

impl std::fmt::Display for RedisServers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RedisServers::Single(url) => f.write_str(url),
            RedisServers::Cluster(seeds) => write!(f, "cluster {}", seeds.join(", ")),
        }
    }
}

/// `[policy.redis]` as written: `url` and `cluster` are checked to be one
/// or the other, and every URL to parse, before a [`RedisConfig`] exists.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RedisSection {
    url: Option<String>,
    cluster: Option<Vec<String>>,
    #[serde(default)]
    password: Option<String>,
    #[serde(default = "default_prefix")]
    prefix: String,
    #[serde(
        default = "default_redis_timeout",
        deserialize_with = "mailfuse_core::time::deserialize_duration"
    )]
    timeout: Duration,
}

impl TryFrom<RedisSection> for RedisConfig {
    type Error = String;

    fn try_from(section: RedisSection) -> Result<Self, String> {
        let servers = match (section.url, section.cluster) {
            (Some(url), None) => {
                check_url(&url, false)?;
                RedisServers::Single(url)
            }
            (None, Some(seeds)) => {
                if seeds.is_empty() {
                    return Err("cluster lists no node: give one or more seed nodes, \
                                cluster = [\"redis://10.0.0.1:7000\", …]"
                        .into());
                }
                for seed in &seeds {
                    check_url(seed, true)?;
                }
                RedisServers::Cluster(seeds)
            }
            (Some(_), Some(_)) => {
                return Err("url and cluster both set: url is one Redis server, \
                            cluster the seed nodes of a Redis Cluster; keep one"
                    .into())
            }
            (None, None) => {
                return Err("missing url (one Redis server) or cluster (the seed nodes \
                            of a Redis Cluster)"
                    .into())
            }
        };
        Ok(RedisConfig {
            servers,
            password: section.password,
            prefix: section.prefix,
            timeout: section.timeout,
        })
    }
}

/// A URL the `redis` crate can connect to; a cluster node's must be TCP and
/// database 0, the only one a cluster has.
fn check_url(url: &str, cluster_node: bool) -> Result<(), String> {
    use redis::IntoConnectionInfo;
    let info = url
        .into_connection_info()
        .map_err(|e| format!("{url}: {e}"))?;
    if cluster_node {
        if !matches!(
            info.addr(),
            redis::ConnectionAddr::Tcp(..) | redis::ConnectionAddr::TcpTls { .. }
        ) {
            return Err(format!(
                "{url}: a cluster node is reached over TCP (redis://host:port)"
            ));
        }
        if info.redis_settings().db() != 0 {
            return Err(format!(
                "{url}: a Redis Cluster has only database 0: drop the /{} from the URL",
                info.redis_settings().db()
            ));
        }
    }
    Ok(())
}

fn default_prefix() -> String {
    "mailfuse".to_string()
}

fn default_redis_timeout() -> Duration {
    Duration::from_millis(250)
}

/// The listen address of the documentation and of Postfix's examples.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:10040";

/// The limits when the configuration has no `[limits]` section: what an
/// office worker never reaches and a spammer reaches in minutes, 50
/// recipients a minute, 300 an hour, 1000 a day.
pub fn default_limits() -> LimitsConfig {
    let defaults = [(60, 50), (3_600, 300), (86_400, 1_000)]
        .into_iter()
        .map(|(window_secs, max)| WindowLimit {
            window_secs,
            messages: None,
            recipients: Some(max),
        })
        .collect();
    LimitsConfig {
        defaults,
        ..LimitsConfig::default()
    }
}

impl Default for PolicyConfig {
    fn default() -> Self {
        PolicyConfig {
            listen: vec![DEFAULT_LISTEN.to_string()],
            over_limit: OverLimit::default(),
            count_at: CountAt::default(),
            on_error: OnError::default(),
            trusted_networks: Vec::new(),
            relay_key: RelayKey::default(),
            local_domains: Vec::new(),
            trips: TripsConfig::default(),
            max_request_bytes: 16 * 1024,
            max_connections: 20_000,
            max_connections_per_peer: 1_000,
            idle_timeout: Duration::from_secs(600),
            request_timeout: Duration::from_secs(10),
            save_every: Duration::from_secs(10),
            metrics_listen: None,
            redis: None,
            canaries: Canaries::default(),
            dry_run: false,
        }
    }
}

impl Default for TripsConfig {
    fn default() -> Self {
        TripsConfig {
            max_ips: 10,
            max_networks: 5,
            window: Duration::from_secs(3_600),
            forged_sender: true,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_config_runs_on_defaults() {
        let config: PolicyConfig = toml::from_str("").unwrap();
        assert_eq!(config, PolicyConfig::default());
        assert_eq!(
            mailfuse_limits::LimitRules::new(&default_limits())
                .unwrap()
                .limits_of("anyone")
                .map(|limits| limits.iter().map(|l| l.per()).collect::<Vec<_>>()),
            Some(vec![
                "50 recipients per 1m".to_string(),
                "300 recipients per 1h".to_string(),
                "1000 recipients per 1d".to_string()
            ])
        );
        assert_eq!(config.listen, vec!["127.0.0.1:10040".to_string()]);
    }

    #[test]
    fn full_config_reads() {
        let config: PolicyConfig = toml::from_str(
            r#"
            listen = ["127.0.0.1:10040", "unix:/var/spool/postfix/private/mailfuse"]
            over_limit = "hold"
            count_at = "data"
            on_error = "defer"
            trusted_networks = ["10.0.0.0/8"]
            relay_key = "client_address"
            local_domains = ["example.com"]
            idle_timeout = "5m"

            [trips]
            max_ips = 3
            max_networks = 0
            window = "1d"
            forged_sender = false

            [redis]
            url = "redis://127.0.0.1:6379/"
            timeout = "100ms"
            "#,
        )
        .unwrap();
        assert_eq!(config.over_limit, OverLimit::Hold);
        assert_eq!(config.count_at, CountAt::Data);
        assert_eq!(config.on_error, OnError::Defer);
        assert_eq!(config.relay_key, RelayKey::ClientAddress);
        assert_eq!(config.idle_timeout, Duration::from_secs(300));
        assert_eq!(config.trips.max_ips, 3);
        assert_eq!(config.trips.window, Duration::from_secs(86_400));
        assert!(!config.trips.forged_sender);
        let redis = config.redis.as_ref().unwrap();
        assert_eq!(redis.timeout, Duration::from_millis(100));
        assert_eq!(redis.prefix, "mailfuse");
    }

    #[test]
    fn redis_is_one_server_or_a_cluster() {
        let config: PolicyConfig = toml::from_str(
            "[redis]\ncluster = [\"redis://10.0.0.1:7000\", \"redis://10.0.0.2:7000/0\"]\n",
        )
        .unwrap();
        let redis = config.redis.unwrap();
        assert_eq!(
            redis.servers,
            RedisServers::Cluster(vec![
                "redis://10.0.0.1:7000".to_string(),
                "redis://10.0.0.2:7000/0".to_string()
            ])
        );
        assert_eq!(redis.timeout, Duration::from_millis(250));
        for (text, says) in [
            (
                "url = \"redis://a:1/\"\ncluster = [\"redis://b:1\"]",
                "url and cluster both set",
            ),
            ("cluster = []", "cluster lists no node"),
            (
                "cluster = [\"redis://a:1/2\"]",
                "only database 0: drop the /2",
            ),
            ("cluster = [\"redis+unix:///run/redis.sock\"]", "over TCP"),
            ("cluster = [\"redis://a:1\", \"a:2\"]", "a:2: "),
            ("url = \"http://a\"", "http://a: "),
            (
                "prefix = \"x\"",
                "missing url (one Redis server) or cluster",
            ),
        ] {
            let error = toml::from_str::<PolicyConfig>(&format!("[redis]\n{text}"))
                .unwrap_err()
                .to_string();
            assert!(error.contains(says), "{text}: {error}");
        }
    }

    #[test]
    fn wrong_values_are_refused() {
        for text in [
            "over_limit = \"bounce\"",
            "count_at = \"rcpt\"",
            "idle_timeout = \"0s\"",
            "idle_timeout = 10",
            "request_timeout = \"0s\"",
            "[trips]\nmax_ip = 3",
            "[redis]\nprefix = \"x\"",
            "listen = \"127.0.0.1:1\"",
            "allow = []",
            "[[limits]]\nwindow = \"1m\"\nmax = 1\ncounts = \"messages\"",
            "trusted_networks = [\"10.0.0.0/33\"]",
        ] {
            assert!(toml::from_str::<PolicyConfig>(text).is_err(), "{text}");
        }
    }
}
