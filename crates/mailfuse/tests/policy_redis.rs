//! Two `mailfuse policy` processes of one cluster sharing a real
//! `redis-server` or a real three-master Redis Cluster: one limit for both,
//! locks for both, and Redis (or a cluster node) stopped mid-test.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a panic in a test is a failed test

mod policy_support;
#[path = "../../policy/tests/support/mod.rs"]
mod redis_support;

use std::io::Write;
use std::net::TcpStream;
use std::process::Command;
use std::time::{Duration, Instant};

use policy_support::{end, ports, rcpt, replies, Server};
use redis_support::{RedisCluster, RedisServer};

/// 6 recipients an hour, shared through `redis` (`[policy.redis]`'s `url`
/// or `cluster` line).
fn config(redis: &str) -> String {
    format!(
        r#"
[policy]
local_domains = ["example.com"]

[policy.redis]
{redis}
timeout = "200ms"

[[limits.default]]
window = "1h"
recipients = 6
"#
    )
}

fn single(redis: &RedisServer) -> String {
    config(&format!("url = \"{}\"", redis.url()))
}

fn in_cluster(cluster: &RedisCluster) -> String {
    config(&format!("cluster = {:?}", cluster.urls()))
}

/// One message with one recipient: the RCPT answer, and the count when
/// it was accepted. Every request must be answered.
fn send(stream: &mut TcpStream, login: &str, instance: &str) -> String {
    stream.write_all(&rcpt(login, instance)).unwrap();
    let answer = replies(stream, 1).remove(0);
    if answer == "action=DUNNO" {
        stream.write_all(&end(login, instance, 1)).unwrap();
        assert_eq!(replies(stream, 1), ["action=DUNNO"]);
    }
    answer
}

fn deferred(answer: &str) -> bool {
    answer.starts_with("action=DEFER_IF_PERMIT 4.7.1 ") && answer.contains("6 recipients per 1h")
}

/// Two policy servers on `config`, and a connection to each.
struct Pair {
    a: Server,
    b: Server,
    to_a: TcpStream,
    to_b: TcpStream,
}

impl Pair {
    fn start(config: &str) -> Pair {
        let a = Server::start(config);
        let b = Server::start(config);
        let to_a = a.connect();
        let to_b = b.connect();
        Pair { a, b, to_a, to_b }
    }

    /// `n` messages of one recipient from `login` through each server, in
    /// turn, each accepted and counted.
    fn accepted_through_both(&mut self, login: &str, n: usize) {
        for i in 0..n {
            for (to, server) in [(&mut self.to_a, "a"), (&mut self.to_b, "b")] {
                let instance = format!("{login}-{server}{i}");
                assert_eq!(send(to, login, &instance), "action=DUNNO");
            }
        }
    }
}

/// Two servers on `config` after alice sent 6 recipients (her limit) and
/// bob 4, half through each: both refuse alice's 7th, neither having seen
/// more than 3 itself.
fn share_one_limit(config: &str) -> Pair {
    let mut pair = Pair::start(config);
    // alice sends 3 through each: 6 in all, the limit.
    pair.accepted_through_both("alice@example.com", 3);
    // The 7th is refused by both: neither saw more than 3 itself.
    assert!(deferred(&send(&mut pair.to_a, "alice@example.com", "a3")));
    assert!(deferred(&send(&mut pair.to_b, "alice@example.com", "b3")));
    // bob has his own window.
    pair.accepted_through_both("bob@example.com", 2);
    pair
}

/// Redis (or the cluster node of bob's keys) just went. Every request is
/// still answered, on local counts that learnt the shared totals: alice
/// stays over her limit on both; bob had 4 of 6, and A, knowing its own 2
/// and the shared total as of its last check (3 or 4), lets through what
/// that leaves, then defers.
fn answers_while_down(pair: &mut Pair) {
    assert!(deferred(&send(&mut pair.to_a, "alice@example.com", "a4")));
    assert!(deferred(&send(&mut pair.to_b, "alice@example.com", "b4")));
    let mut bob_through_a = Vec::new();
    for i in 0..4 {
        bob_through_a.push(send(&mut pair.to_a, "bob@example.com", &format!("down{i}")));
    }
    let through = bob_through_a
        .iter()
        .take_while(|answer| *answer == "action=DUNNO")
        .count();
    assert!((2..=3).contains(&through), "{bob_through_a:?}");
    assert!(
        bob_through_a[through..]
            .iter()
            .all(|answer| deferred(answer)),
        "{bob_through_a:?}"
    );
    assert!(pair.a.alive() && pair.b.alive());
    let log = pair.a.log();
    assert!(log.contains("deciding on local counts"), "{log}");
}

/// Waits for `server` to say Redis answers again and its backlog went in.
fn wait_resync(server: &Server) {
    let deadline = Instant::now() + Duration::from_secs(15);
    while !server.log().contains("Redis back") {
        assert!(Instant::now() < deadline, "no resync:\n{}", server.log());
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn two_servers_share_one_limit_and_keep_answering_when_redis_stops() {
    let mut redis = RedisServer::start();
    let config = single(&redis);
    let mut pair = share_one_limit(&config);

    redis.stop();
    let started = Instant::now();
    answers_while_down(&mut pair);
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "answers waited for the dead Redis: {:?}",
        started.elapsed()
    );

    // Redis comes back empty: what A counted meanwhile is replayed, and
    // the servers seed it again with what they held, so bob's 4 from before
    // the outage are not forgotten: a new server of the cluster sees his 4
    // and the 2 or 3 of the outage, and defers him at once.
    redis.restart();
    wait_resync(&pair.a);
    wait_reseeded(&pair.a);
    let c = Server::start(&config);
    let mut to_c = c.connect();
    assert!(deferred(&send(&mut to_c, "bob@example.com", "c-bob")));
}

/// Waits for `server` to say it seeded an emptied Redis again.
fn wait_reseeded(server: &Server) {
    let deadline = Instant::now() + Duration::from_secs(15);
    while !server.log().contains("seeded it again") {
        assert!(Instant::now() < deadline, "no re-seed:\n{}", server.log());
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn counts_that_timed_out_while_redis_stalled_are_applied_once() {
    let redis = RedisServer::start();
    let mut pair = Pair::start(&single(&redis));
    // Both connected to Redis and counting through it.
    pair.accepted_through_both("dave@example.com", 1);
    let Pair { a, b, to_a, to_b } = &mut pair;

    redis.pause();
    to_a.write_all(&end("alice@example.com", "a1", 3)).unwrap();
    to_b.write_all(&end("alice@example.com", "b1", 2)).unwrap();
    assert_eq!(replies(to_a, 1), ["action=DUNNO"]);
    assert_eq!(replies(to_b, 1), ["action=DUNNO"]);
    redis.resume();
    wait_resync(a);
    wait_resync(b);

    let total = redis.cli(&[
        "HGET",
        "mailfuse:{alice@example.com}:recipients:3600:amounts",
        "total",
    ]);
    assert_eq!(total.trim(), "5");
    // 5 of 6: one more goes through, the next is deferred.
    assert_eq!(send(to_a, "alice@example.com", "a2"), "action=DUNNO");
    assert!(deferred(&send(to_b, "alice@example.com", "b2")));
}

/// Redis restarts without persistence, empty, while both servers keep
/// running: they notice its epoch key gone and seed it again with their
/// counts, the largest of them, not their sum.
#[test]
fn a_redis_restarted_empty_is_seeded_again_from_the_servers_counts() {
    let mut redis = RedisServer::start();
    let config = single(&redis);
    let mut pair = Pair::start(&config);
    // 4 of alice's 6, 2 through each.
    pair.accepted_through_both("alice@example.com", 2);
    let amounts = "mailfuse:{alice@example.com}:recipients:3600:amounts";
    assert_eq!(redis.cli(&["HGET", amounts, "total"]).trim(), "4");

    redis.restart();
    assert_eq!(redis.cli(&["HGET", amounts, "total"]).trim(), "");
    wait_reseeded(&pair.a);
    wait_reseeded(&pair.b);
    assert_eq!(redis.cli(&["HGET", amounts, "total"]).trim(), "4");
    // A new server of the cluster sees the 4: 2 more, then deferred.
    let c = Server::start(&config);
    let mut to_c = c.connect();
    for i in 0..2 {
        assert_eq!(
            send(&mut to_c, "alice@example.com", &format!("c{i}")),
            "action=DUNNO"
        );
    }
    assert!(deferred(&send(&mut to_c, "alice@example.com", "c-last")));
}

#[test]
fn two_servers_share_one_limit_through_a_cluster_and_ride_out_a_node_restart() {
    let mut cluster = RedisCluster::start();
    let config = in_cluster(&cluster);
    // The same totals as with one Redis.
    let mut pair = share_one_limit(&config);

    // The master holding bob's keys dies (its data stays on disk). carol,
    // whose keys are on it too, has sent nothing yet.
    let node = cluster.node_of("bob@example.com");
    let carol = (0..)
        .map(|i| format!("carol{i}@example.com"))
        .find(|carol| cluster.node_of(carol) == node)
        .unwrap();
    cluster.nodes[node].stop();
    answers_while_down(&mut pair);
    for i in 0..2 {
        assert_eq!(
            send(&mut pair.to_a, &carol, &format!("carol{i}")),
            "action=DUNNO"
        );
    }

    // Back on its port and directory: what A counted meanwhile is replayed
    // beside what the node kept, and a new server of the cluster sees both.
    cluster.nodes[node].restart();
    cluster.wait_ok();
    wait_resync(&pair.a);
    let c = Server::start(&config);
    let mut to_c = c.connect();
    // bob: the 4 the node kept and the 2 or 3 replayed reach 6; either
    // alone would leave room.
    assert!(deferred(&send(&mut to_c, "bob@example.com", "c-bob")));
    // carol: her 2 of the outage, replayed; 4 left.
    for i in 0..4 {
        assert_eq!(send(&mut to_c, &carol, &format!("c{i}")), "action=DUNNO");
    }
    assert!(deferred(&send(&mut to_c, &carol, "c-last")));
    assert!(deferred(&send(&mut to_c, "alice@example.com", "c-alice")));
}

#[test]
fn a_lock_made_through_one_server_is_refused_by_the_other_until_unlock() {
    let redis = RedisServer::start();
    lock_and_unlock(&single(&redis));
}

#[test]
fn a_lock_made_through_one_server_is_refused_by_the_other_until_unlock_in_a_cluster() {
    let cluster = RedisCluster::start();
    lock_and_unlock(&in_cluster(&cluster));
}

/// A lock tripped through one server of `config` is refused by the other,
/// until `mailfuse unlock` lifts it.
fn lock_and_unlock(config: &str) {
    let a = Server::start(config);
    let b = Server::start(config);
    let mut to_a = a.connect();
    let mut to_b = b.connect();
    // A forged sender domain through A locks the account.
    let mut forged = rcpt("sales@example.com", "1");
    let forged_text = String::from_utf8(forged.clone())
        .unwrap()
        .replace("sender=sales@example.com", "sender=ceo@bank.test");
    forged = forged_text.into_bytes();
    to_a.write_all(&forged).unwrap();
    let locked = replies(&mut to_a, 1).remove(0);
    assert!(locked.starts_with("action=REJECT 5.7.1 "), "{locked}");
    // B refuses it too, from the shared lock.
    to_b.write_all(&rcpt("sales@example.com", "2")).unwrap();
    assert!(replies(&mut to_b, 1)[0].contains("is locked"));
    // `mailfuse unlock` with A's configuration lifts it everywhere.
    let config_path = a.dir.path().join("mailfuse.toml");
    let state = a.dir.path().join("state.db");
    std::fs::write(
        &config_path,
        format!("{config}\n[watch]\nstate = {state:?}\n"),
    )
    .unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_mailfuse"))
        .args(["unlock", "sales@example.com", "-c"])
        .arg(&config_path)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    let deadline = Instant::now() + Duration::from_secs(5);
    for to in [&mut to_a, &mut to_b] {
        loop {
            to.write_all(&rcpt("sales@example.com", "3")).unwrap();
            let answer = replies(to, 1).remove(0);
            if answer == "action=DUNNO" {
                break;
            }
            assert!(Instant::now() < deadline, "still {answer}");
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}
