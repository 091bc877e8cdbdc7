//! One test suite for both counters stores: every shared test runs on the
//! embedded store, on Redis (a real `redis-server` per test) and on a Redis
//! Cluster (three real masters per test), and must get the same answers.
//! Redis-only tests follow: two servers sharing counts, Redis (or a cluster
//! node) stopping mid-test, and the replay when it is back.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a panic in a test is a failed test

#[path = "../../mailfuse/tests/support/ports.rs"]
mod ports;
mod support;

use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use mailfuse_policy::config::{RedisConfig, RedisServers};
use mailfuse_policy::counters::{unlock, RedisStatus};
use mailfuse_policy::{
    Answer, Ask, Counters, Counting, Diversity, Limit, LimitRules, LimitsConfig, Override,
    PolicyMetrics, Trip, WindowLimit,
};
use support::{RedisCluster, RedisServer};

const T0: u64 = 1_700_000_000;

const NO_TRIPS: Diversity = Diversity {
    max_ips: 0,
    max_networks: 0,
    window_secs: 3_600,
    dry_run: false,
};

/// The store a shared test runs on, and the metrics of the Redis stores
/// it made.
struct Backend {
    store: Store,
    made: Mutex<Vec<Arc<PolicyMetrics>>>,
}

enum Store {
    Memory,
    Redis(RedisServer),
    Cluster(RedisCluster),
}

impl Backend {
    fn new(store: Store) -> Self {
        Backend {
            store,
            made: Mutex::new(Vec::new()),
        }
    }

    async fn counters(&self, limits: LimitsConfig, diversity: Diversity) -> Counters {
        let config = match &self.store {
            Store::Memory => return Counters::memory(LimitRules::new(&limits).unwrap(), diversity),
            Store::Redis(server) => single(server),
            Store::Cluster(cluster) => in_cluster(cluster),
        };
        let (counters, metrics) = redis_store(&config, limits, diversity).await;
        self.made.lock().unwrap().push(metrics);
        counters
    }

    /// Every Redis store decided on Redis throughout: their local counts
    /// answer alike, so a script Redis refused (`CROSSSLOT` on a cluster)
    /// would otherwise go unseen.
    fn assert_redis_answered(&self) {
        for metrics in self.made.lock().unwrap().iter() {
            assert_eq!(metrics.store_errors.get(), 0);
            assert_eq!(metrics.fallback_decisions.get(), 0);
            assert_eq!(metrics.redis_up.get(), 1);
        }
    }
}

fn redis_config(servers: RedisServers) -> RedisConfig {
    RedisConfig {
        servers,
        password: None,
        prefix: "test".to_string(),
        timeout: Duration::from_millis(300),
    }
}

/// `[policy.redis] url` of `server`.
fn single(server: &RedisServer) -> RedisConfig {
    redis_config(RedisServers::Single(server.url()))
}

/// `[policy.redis] cluster`: every node of `cluster`.
fn in_cluster(cluster: &RedisCluster) -> RedisConfig {
    redis_config(RedisServers::Cluster(cluster.urls()))
}

/// A Redis store with its metrics (Redis up or not).
async fn redis_store(
    config: &RedisConfig,
    limits: LimitsConfig,
    diversity: Diversity,
) -> (Counters, Arc<PolicyMetrics>) {
    let metrics = Arc::new(PolicyMetrics::default());
    let rules = LimitRules::new(&limits).unwrap();
    let counters = Counters::redis(config, rules, diversity, metrics.clone())
        .await
        .unwrap();
    (counters, metrics)
}

fn limits(limits: Vec<Limit>) -> LimitsConfig {
    LimitsConfig {
        defaults: limits.into_iter().map(WindowLimit::from).collect(),
        ..LimitsConfig::default()
    }
}

fn over(limit: Limit, count: u64) -> Answer {
    Answer::Over { limit, count }
}

/// One message with one recipient from the login `key`.
fn ask(key: &str, now: u64) -> Ask<'_> {
    Ask {
        key,
        account: Some(key),
        client: None,
        now,
        messages: 1,
        recipients: 1,
    }
}

fn from_ip<'a>(account: &'a str, ip: &str, now: u64) -> Ask<'a> {
    Ask {
        client: Some(ip.parse::<IpAddr>().unwrap()),
        ..ask(account, now)
    }
}

async fn check(counters: &Counters, ask: Ask<'_>) -> Answer {
    counters.check(&ask).await.unwrap()
}

/// Runs each shared test on every store.
macro_rules! on_every_store {
    ($($test:ident),* $(,)?) => {
        mod memory {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $test() {
                    super::$test(&super::Backend::new(super::Store::Memory)).await;
                }
            )*
        }
        mod redis {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $test() {
                    let server = super::RedisServer::start();
                    let backend = super::Backend::new(super::Store::Redis(server));
                    super::$test(&backend).await;
                    backend.assert_redis_answered();
                }
            )*
        }
        mod cluster {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $test() {
                    let cluster = super::RedisCluster::start();
                    let backend = super::Backend::new(super::Store::Cluster(cluster));
                    super::$test(&backend).await;
                    backend.assert_redis_answered();
                }
            )*
        }
    };
}

on_every_store!(
    windows_are_exact_at_their_edges,
    several_windows_report_the_first_exceeded,
    messages_and_recipients_are_counted_apart,
    check_counts_nothing,
    overrides_replace_and_allow_list_skips_case_insensitively,
    locks_from_the_store_and_from_the_state_database,
    many_ips_trip_a_lock,
    a_dry_run_trip_locks_nothing,
    many_networks_trip_a_lock,
    hostile_keys_never_collide,
);

async fn windows_are_exact_at_their_edges(backend: &Backend) {
    let per_minute = Limit::new(60, 30, Counting::Messages);
    let counters = backend.counters(limits(vec![per_minute]), NO_TRIPS).await;
    for second in 0..29 {
        counters.record("alice", T0 + second, 1, 1).await.unwrap();
    }
    assert_eq!(
        check(&counters, ask("alice", T0 + 29)).await,
        Answer::Allowed
    );
    counters.record("alice", T0 + 29, 1, 1).await.unwrap();
    assert_eq!(
        check(&counters, ask("alice", T0 + 30)).await,
        over(per_minute, 31)
    );
    // Second 59 still holds the message of T0; at second 60 it has left.
    assert_eq!(
        check(&counters, ask("alice", T0 + 59)).await,
        over(per_minute, 31)
    );
    assert_eq!(
        check(&counters, ask("alice", T0 + 60)).await,
        Answer::Allowed
    );
    counters.record("alice", T0 + 60, 1, 1).await.unwrap();
    assert_eq!(
        check(&counters, ask("alice", T0 + 60)).await,
        over(per_minute, 31)
    );
    assert_eq!(
        check(&counters, ask("alice", T0 + 61)).await,
        Answer::Allowed
    );
}

async fn several_windows_report_the_first_exceeded(backend: &Backend) {
    let per_minute = Limit::new(60, 5, Counting::Messages);
    let per_hour = Limit::new(3_600, 8, Counting::Messages);
    let per_day = Limit::new(86_400, 8, Counting::Messages);
    let counters = backend
        .counters(limits(vec![per_minute, per_hour, per_day]), NO_TRIPS)
        .await;
    for _ in 0..5 {
        counters.record("alice", T0, 1, 1).await.unwrap();
    }
    assert_eq!(
        check(&counters, ask("alice", T0)).await,
        over(per_minute, 6)
    );
    for _ in 0..3 {
        counters.record("alice", T0 + 60, 1, 1).await.unwrap();
    }
    assert_eq!(
        check(&counters, ask("alice", T0 + 120)).await,
        over(per_hour, 9)
    );
    assert_eq!(
        check(&counters, ask("alice", T0 + 3_600)).await,
        over(per_day, 9)
    );
    assert_eq!(
        check(&counters, ask("alice", T0 + 86_400)).await,
        Answer::Allowed
    );
}

async fn messages_and_recipients_are_counted_apart(backend: &Backend) {
    let messages = Limit::new(3_600, 3, Counting::Messages);
    let recipients = Limit::new(3_600, 100, Counting::Recipients);
    let counters = backend
        .counters(limits(vec![messages, recipients]), NO_TRIPS)
        .await;
    // One message to 100 people: one message, a full recipient quota.
    counters.record("alice", T0, 1, 100).await.unwrap();
    assert_eq!(
        check(&counters, ask("alice", T0 + 1)).await,
        over(recipients, 101)
    );
    let no_recipient = Ask {
        recipients: 0,
        ..ask("alice", T0 + 1)
    };
    assert_eq!(check(&counters, no_recipient).await, Answer::Allowed);
    for _ in 0..3 {
        counters.record("bob", T0, 1, 1).await.unwrap();
    }
    assert_eq!(check(&counters, ask("bob", T0)).await, over(messages, 4));
    // The recipients already accepted for the message in progress count.
    let per_minute = Limit::new(60, 10, Counting::Recipients);
    let counters = backend.counters(limits(vec![per_minute]), NO_TRIPS).await;
    counters.record("carol", T0, 1, 7).await.unwrap();
    let third = Ask {
        recipients: 3,
        ..ask("carol", T0)
    };
    assert_eq!(check(&counters, third).await, Answer::Allowed);
    let fourth = Ask {
        recipients: 4,
        ..ask("carol", T0)
    };
    assert_eq!(check(&counters, fourth).await, over(per_minute, 11));
}

async fn check_counts_nothing(backend: &Backend) {
    let per_minute = Limit::new(60, 2, Counting::Messages);
    let counters = backend.counters(limits(vec![per_minute]), NO_TRIPS).await;
    for _ in 0..100 {
        assert_eq!(check(&counters, ask("alice", T0)).await, Answer::Allowed);
    }
    counters.record("alice", T0, 2, 2).await.unwrap();
    assert_eq!(
        check(&counters, ask("alice", T0)).await,
        over(per_minute, 3)
    );
}

async fn overrides_replace_and_allow_list_skips_case_insensitively(backend: &Backend) {
    let default = Limit::new(60, 1, Counting::Messages);
    let generous = Limit::new(60, 100, Counting::Messages);
    let config = LimitsConfig {
        defaults: vec![WindowLimit::from(default)],
        overrides: vec![Override {
            account: "Sales@Example.COM".into(),
            limit: WindowLimit::from(generous),
        }],
        allow: vec!["NEWSLETTER@example.com".into()],
    };
    let counters = backend.counters(config, NO_TRIPS).await;
    counters
        .record("sales@example.com", T0, 50, 50)
        .await
        .unwrap();
    assert_eq!(
        check(&counters, ask("SALES@example.com", T0)).await,
        Answer::Allowed
    );
    counters
        .record("SALES@EXAMPLE.COM", T0, 50, 50)
        .await
        .unwrap();
    assert_eq!(
        check(&counters, ask("sales@example.com", T0)).await,
        over(generous, 101)
    );
    for _ in 0..20 {
        counters
            .record("newsletter@EXAMPLE.com", T0, 1, 500)
            .await
            .unwrap();
    }
    let huge = Ask {
        messages: 1_000,
        recipients: 1_000_000,
        ..ask("Newsletter@Example.Com", T0)
    };
    assert_eq!(check(&counters, huge).await, Answer::Allowed);
    counters.record("Alice", T0, 1, 1).await.unwrap();
    assert_eq!(check(&counters, ask("aLICE", T0)).await, over(default, 2));
}

async fn locks_from_the_store_and_from_the_state_database(backend: &Backend) {
    let per_minute = Limit::new(60, 1, Counting::Messages);
    let counters = backend.counters(limits(vec![per_minute]), NO_TRIPS).await;
    counters.lock("Mallory@Example.com", T0).await.unwrap();
    assert_eq!(
        check(&counters, ask("mallory@example.com", T0)).await,
        Answer::Locked
    );
    // A lock goes before the limits.
    counters
        .record("mallory@example.com", T0, 5, 5)
        .await
        .unwrap();
    assert_eq!(
        check(&counters, ask("MALLORY@example.com", T0 + 1)).await,
        Answer::Locked
    );
    assert_eq!(check(&counters, ask("alice", T0)).await, Answer::Allowed);
    // Relay keyed by sender: no account, so no lock applies.
    let relay = Ask {
        account: None,
        ..ask("mallory@example.com", T0 + 61)
    };
    assert_eq!(check(&counters, relay).await, Answer::Allowed);
    // Locks read from the state database lock as well.
    counters.local().set_locks(["Bob".to_string()], T0 + 2);
    assert_eq!(check(&counters, ask("bob", T0 + 2)).await, Answer::Locked);
    assert_eq!(
        check(&counters, ask("mallory@example.com", T0 + 2)).await,
        Answer::Locked
    );
}

async fn a_dry_run_trip_locks_nothing(backend: &Backend) {
    let diversity = Diversity {
        max_ips: 1,
        max_networks: 0,
        window_secs: 3_600,
        dry_run: true,
    };
    let counters = backend.counters(limits(vec![]), diversity).await;
    assert_eq!(
        check(&counters, from_ip("alice", "192.0.2.1", T0)).await,
        Answer::Allowed
    );
    let tripped = Answer::Tripped(Trip::ManyIps {
        count: 2,
        window: Duration::from_secs(3_600),
    });
    let second = from_ip("alice", "192.0.2.2", T0 + 1);
    assert_eq!(check(&counters, second).await, tripped);
    // No lock here nor in Redis answers next (Redis counts the IPs again
    // and trips again; here an IP already seen trips nothing).
    let again = check(&counters, from_ip("alice", "192.0.2.2", T0 + 2)).await;
    assert!(again == tripped || again == Answer::Allowed, "{again:?}");
    assert!(!counters.local().is_locked("alice"));
    // A lock made otherwise (the database) still shows as a lock.
    counters.local().set_locks(["alice".to_string()], T0 + 3);
    assert_eq!(check(&counters, ask("alice", T0 + 3)).await, Answer::Locked);
}

async fn many_ips_trip_a_lock(backend: &Backend) {
    let diversity = Diversity {
        max_ips: 3,
        max_networks: 0,
        window_secs: 3_600,
        dry_run: false,
    };
    let counters = backend.counters(limits(vec![]), diversity).await;
    // The first IP leaves the window before the others come.
    assert_eq!(
        check(&counters, from_ip("alice", "192.0.2.1", T0)).await,
        Answer::Allowed
    );
    for (n, ip) in ["192.0.2.2", "192.0.2.3", "192.0.2.4"].iter().enumerate() {
        let ask = from_ip("alice", ip, T0 + 3_600 + n as u64);
        assert_eq!(check(&counters, ask).await, Answer::Allowed, "{ip}");
    }
    // The same IP again is no new IP.
    let again = from_ip("alice", "192.0.2.4", T0 + 3_700);
    assert_eq!(check(&counters, again).await, Answer::Allowed);
    let fourth = from_ip("alice", "2001:db8::1", T0 + 3_700);
    assert_eq!(
        check(&counters, fourth).await,
        Answer::Tripped(Trip::ManyIps {
            count: 4,
            window: Duration::from_secs(3_600)
        })
    );
    assert_eq!(
        check(&counters, ask("alice", T0 + 3_701)).await,
        Answer::Locked
    );
    // Other accounts are untouched.
    assert_eq!(
        check(&counters, from_ip("bob", "192.0.2.9", T0 + 3_701)).await,
        Answer::Allowed
    );
}

async fn many_networks_trip_a_lock(backend: &Backend) {
    let diversity = Diversity {
        max_ips: 0,
        max_networks: 2,
        window_secs: 600,
        dry_run: false,
    };
    let counters = backend.counters(limits(vec![]), diversity).await;
    let same_networks = ["192.0.2.1", "192.0.2.200", "2001:db8::1", "2001:db8::ffff"];
    for ip in same_networks {
        assert_eq!(
            check(&counters, from_ip("alice", ip, T0)).await,
            Answer::Allowed,
            "{ip}"
        );
    }
    assert_eq!(
        check(&counters, from_ip("alice", "198.51.100.7", T0 + 1)).await,
        Answer::Tripped(Trip::ManyNetworks {
            count: 3,
            window: Duration::from_secs(600)
        })
    );
    assert_eq!(check(&counters, ask("alice", T0 + 2)).await, Answer::Locked);
}

async fn hostile_keys_never_collide(backend: &Backend) {
    let per_minute = Limit::new(60, 1, Counting::Messages);
    let counters = backend.counters(limits(vec![per_minute]), NO_TRIPS).await;
    let long = "a".repeat(10 * 1024);
    let keys = [
        "a}b",
        "a",
        "b",
        "a%7Db",
        "x:y",
        "x",
        "y",
        "x%3Ay",
        "%",
        "%25",
        "{",
        "}",
        "{}",
        "ü",
        "日本",
        "a\u{0}b",
        "a b",
        "",
        long.as_str(),
    ];
    for key in keys {
        assert_eq!(
            check(&counters, ask(key, T0)).await,
            Answer::Allowed,
            "{key:?} fresh"
        );
        counters.record(key, T0, 1, 1).await.unwrap();
        assert_eq!(
            check(&counters, ask(key, T0)).await,
            over(per_minute, 2),
            "{key:?}"
        );
    }
    // Unicode case folds like the limiter's.
    assert_eq!(check(&counters, ask("Ü", T0)).await, over(per_minute, 2));
    let counters = backend.counters(limits(vec![]), NO_TRIPS).await;
    counters.lock("a}b", T0).await.unwrap();
    for key in ["a", "b", "a%7Db", "a}", "{a}b"] {
        assert_eq!(
            check(&counters, ask(key, T0)).await,
            Answer::Allowed,
            "{key:?}"
        );
    }
    assert_eq!(check(&counters, ask("A}B", T0)).await, Answer::Locked);
}

// Redis only.

async fn wait_until_up(counters: &Counters) {
    let Counters::Redis(redis) = counters else {
        panic!("not a Redis store");
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    while redis.status() != RedisStatus::Up {
        assert!(Instant::now() < deadline, "Redis not seen back within 10 s");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn status(counters: &Counters) -> RedisStatus {
    match counters {
        Counters::Redis(redis) => redis.status(),
        Counters::Memory(_) => panic!("not a Redis store"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_servers_share_counts_locks_and_ips() {
    let server = RedisServer::start();
    share_counts_locks_and_ips(&single(&server)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_servers_share_counts_locks_and_ips_through_a_cluster() {
    let cluster = RedisCluster::start();
    share_counts_locks_and_ips(&in_cluster(&cluster)).await;
}

/// Two stores on `config` count, lock and unlock as one.
async fn share_counts_locks_and_ips(config: &RedisConfig) {
    let per_minute = Limit::new(60, 3, Counting::Messages);
    let diversity = Diversity {
        max_ips: 2,
        max_networks: 0,
        window_secs: 3_600,
        dry_run: false,
    };
    let (a, _) = redis_store(config, limits(vec![per_minute]), diversity).await;
    let (b, _) = redis_store(config, limits(vec![per_minute]), diversity).await;
    a.record("alice", T0, 1, 1).await.unwrap();
    b.record("alice", T0 + 1, 2, 2).await.unwrap();
    assert_eq!(check(&a, ask("alice", T0 + 2)).await, over(per_minute, 4));
    assert_eq!(check(&b, ask("ALICE", T0 + 2)).await, over(per_minute, 4));
    assert_eq!(check(&b, ask("alice", T0 + 60)).await, Answer::Allowed);

    a.lock("mallory", T0).await.unwrap();
    assert_eq!(check(&b, ask("mallory", T0)).await, Answer::Locked);

    assert_eq!(
        check(&a, from_ip("bob", "192.0.2.1", T0)).await,
        Answer::Allowed
    );
    assert_eq!(
        check(&b, from_ip("bob", "192.0.2.2", T0)).await,
        Answer::Allowed
    );
    assert!(matches!(
        check(&a, from_ip("bob", "192.0.2.3", T0)).await,
        Answer::Tripped(Trip::ManyIps { count: 3, .. })
    ));
    assert_eq!(check(&b, ask("bob", T0 + 1)).await, Answer::Locked);

    // `mailfuse unlock` lifts the lock everywhere.
    assert!(unlock(config, "Mallory").await.unwrap());
    assert!(!unlock(config, "mallory").await.unwrap());
    assert_eq!(check(&b, ask("mallory", T0 + 1)).await, Answer::Allowed);
}

/// Redis (or the cluster node of alice's keys) just went away after `a`
/// counted alice's message at T0: answers keep coming, from the counts `a`
/// kept, and what it counts and locks meanwhile waits for Redis.
async fn outage(a: &Counters, metrics: &PolicyMetrics, per_minute: Limit) {
    assert_eq!(check(a, ask("alice", T0 + 1)).await, Answer::Allowed);
    assert_eq!(status(a), RedisStatus::Down);
    assert_eq!(metrics.redis_up.get(), 0);
    a.record("alice", T0 + 1, 1, 1).await.unwrap();
    a.record("alice", T0 + 2, 1, 1).await.unwrap();
    assert_eq!(check(a, ask("alice", T0 + 3)).await, over(per_minute, 4));
    a.record("bob", T0 + 30, 1, 1).await.unwrap();
    a.lock("mallory", T0 + 3).await.unwrap();
    assert!(metrics.fallback_decisions.get() >= 4);
}

/// What a new store `c` sees once Redis is back from the [`outage`] and
/// took its backlog: its counts at their own seconds, beside alice's T0,
/// which Redis kept or `a` seeded again when Redis came back empty.
async fn after_outage(c: &Counters, per_minute: Limit) {
    let messages = |n, now| Ask {
        messages: n,
        ..ask("alice", now)
    };
    assert_eq!(check(c, messages(1, T0 + 3)).await, over(per_minute, 4));
    // T0's and T0 + 1's have left the window.
    assert_eq!(check(c, messages(2, T0 + 61)).await, Answer::Allowed);
    assert_eq!(check(c, messages(3, T0 + 61)).await, over(per_minute, 4));
    let bob = |now| Ask {
        messages: 3,
        ..ask("bob", now)
    };
    assert_eq!(check(c, bob(T0 + 89)).await, over(per_minute, 4));
    assert_eq!(check(c, bob(T0 + 90)).await, Answer::Allowed);
    assert_eq!(check(c, ask("mallory", T0 + 4)).await, Answer::Locked);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_stopping_falls_back_to_local_counts_and_replays_when_back() {
    let mut server = RedisServer::start();
    let per_minute = Limit::new(60, 3, Counting::Messages);
    let (a, metrics) = redis_store(&single(&server), limits(vec![per_minute]), NO_TRIPS).await;
    assert_eq!(metrics.redis_up.get(), 1);
    a.record("alice", T0, 1, 1).await.unwrap();

    server.stop();
    outage(&a, &metrics, per_minute).await;
    // Once it knows Redis is down, it does not wait for it per request.
    let started = Instant::now();
    for _ in 0..100 {
        check(&a, ask("alice", T0 + 3)).await;
    }
    assert!(
        started.elapsed() < Duration::from_millis(300),
        "{:?}",
        started.elapsed()
    );

    // Back empty on the same port: the outage's counts are replayed, and
    // T0's, lost with Redis's data, comes back from `a`'s counts.
    server.restart();
    wait_until_up(&a).await;
    assert_eq!(metrics.redis_up.get(), 1);
    let (c, _) = redis_store(&single(&server), limits(vec![per_minute]), NO_TRIPS).await;
    after_outage(&c, per_minute).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cluster_node_restarting_falls_back_to_local_counts_and_replays_when_back() {
    let mut cluster = RedisCluster::start();
    let config = in_cluster(&cluster);
    let per_minute = Limit::new(60, 3, Counting::Messages);
    let (a, metrics) = redis_store(&config, limits(vec![per_minute]), NO_TRIPS).await;
    assert_eq!(metrics.redis_up.get(), 1);
    a.record("alice", T0, 1, 1).await.unwrap();

    // The master of alice's slot dies: her next check fails over to the
    // local counts, which learnt the cluster's.
    let node = cluster.node_of("alice");
    cluster.nodes[node].stop();
    outage(&a, &metrics, per_minute).await;

    // Back on the same port and directory, with its data: the outage's
    // counts are replayed beside what it kept.
    cluster.nodes[node].restart();
    cluster.wait_ok();
    wait_until_up(&a).await;
    assert_eq!(metrics.redis_up.get(), 1);
    let (c, _) = redis_store(&config, limits(vec![per_minute]), NO_TRIPS).await;
    after_outage(&c, per_minute).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_down_at_start_starts_on_local_counts() {
    let mut server = RedisServer::start();
    server.stop();
    let per_minute = Limit::new(60, 1, Counting::Messages);
    let (a, metrics) = redis_store(&single(&server), limits(vec![per_minute]), NO_TRIPS).await;
    assert_eq!(status(&a), RedisStatus::Down);
    assert_eq!(metrics.redis_up.get(), 0);
    a.record("alice", T0, 1, 1).await.unwrap();
    assert_eq!(check(&a, ask("alice", T0)).await, over(per_minute, 2));
    server.restart();
    wait_until_up(&a).await;
    let (b, _) = redis_store(&single(&server), limits(vec![per_minute]), NO_TRIPS).await;
    assert_eq!(check(&b, ask("alice", T0 + 59)).await, over(per_minute, 2));
}

#[tokio::test]
async fn a_bad_url_is_a_configuration_error() {
    let config = redis_config(RedisServers::Single("http://not-redis".to_string()));
    let result = Counters::redis(
        &config,
        LimitRules::default(),
        NO_TRIPS,
        Arc::new(PolicyMetrics::default()),
    )
    .await;
    assert!(result.is_err());
}
