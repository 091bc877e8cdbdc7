//! Throwaway Redis for the store tests: a `redis-server`, or a Redis Cluster
//! of three masters, each in its own directory on a free loopback port,
//! killed when dropped (a failing test too).
#![allow(dead_code)] // each test file uses part of it

// The ports come from the including test crate's one allocator
// (mailfuse's tests/support/ports.rs): two copies of it in one process would
// hand out the same ports.
use super::ports;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct RedisServer {
    child: Option<Child>,
    port: u16,
    dir: tempfile::TempDir,
    /// The cluster bus's port, for a cluster node.
    bus_port: Option<u16>,
}

impl RedisServer {
    /// Starts a server on a free port, saving nothing; fails the test
    /// (never skips it) when `redis-server` is not installed.
    pub fn start() -> Self {
        let [port] = free_ports();
        RedisServer::start_as(port, None)
    }

    /// A node of a Redis Cluster (its own `nodes.conf`), which keeps its
    /// data across a restart (append-only file, written at every command).
    fn start_as(port: u16, bus_port: Option<u16>) -> Self {
        let mut server = RedisServer {
            child: None,
            port,
            dir: tempfile::tempdir().unwrap(),
            bus_port,
        };
        server.restart();
        server
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    /// Kills the server: a single server loses its data; a cluster node
    /// keeps it on disk.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Freezes the server (SIGSTOP): connections stay open, commands wait
    /// unanswered, as when Redis stalls.
    pub fn pause(&self) {
        self.signal("-STOP");
    }

    /// Lets a paused server run again (SIGCONT): it runs what waited.
    pub fn resume(&self) {
        self.signal("-CONT");
    }

    fn signal(&self, signal: &str) {
        let child = self.child.as_ref().expect("a running redis-server");
        let status = Command::new("kill")
            .args([signal, &child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success(), "kill {signal} failed");
    }

    /// Starts the server again on the same port and directory.
    pub fn restart(&mut self) {
        self.stop();
        let mut command = Command::new("redis-server");
        command
            .args(["--port", &self.port.to_string()])
            .args(["--bind", "127.0.0.1"])
            .args(["--save", ""])
            .arg("--dir")
            .arg(self.dir.path())
            .arg("--logfile")
            .arg(self.dir.path().join("redis.log"));
        if let Some(bus_port) = self.bus_port {
            command
                .args(["--cluster-enabled", "yes"])
                .args(["--cluster-port", &bus_port.to_string()])
                .args(["--cluster-config-file", "nodes.conf"])
                // Down nodes are noticed within a second, not fifteen.
                .args(["--cluster-node-timeout", "1000"])
                .args(["--appendonly", "yes"])
                .args(["--appendfsync", "always"]);
        } else {
            command.args(["--appendonly", "no"]);
        }
        let child = command
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn();
        let child = match child {
            Ok(child) => child,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => panic!(
                "redis-server is not installed: run scripts/install-test-deps (as root) to install it"
            ),
            Err(e) => panic!("cannot start redis-server: {e}"),
        };
        self.child = Some(child);
        self.wait_ready();
    }

    fn wait_ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if ping(self.port) {
                return;
            }
            if let Some(status) = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                panic!(
                    "redis-server exited with {status}: {}",
                    log(self.dir.path())
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!(
            "redis-server did not answer within 10 s: {}",
            log(self.dir.path())
        );
    }

    /// `redis-cli` against this server; its output.
    pub fn cli(&self, args: &[&str]) -> String {
        let output = Command::new("redis-cli")
            .args(["-h", "127.0.0.1", "-p", &self.port.to_string()])
            .args(args)
            .stdin(Stdio::null())
            .output()
            .unwrap_or_else(|e| {
                panic!("cannot run redis-cli ({e}): run scripts/install-test-deps (as root)")
            });
        assert!(
            output.status.success(),
            "redis-cli {args:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8_lossy(&output.stdout).into_owned()
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A Redis Cluster of three masters without replicas, each holding a third
/// of the slots, as `redis-cli --cluster create` lays them out.
pub struct RedisCluster {
    pub nodes: Vec<RedisServer>,
}

impl RedisCluster {
    /// Starts the three nodes, joins them into a cluster and waits until
    /// every node says it is ok.
    pub fn start() -> Self {
        let ports: [u16; 6] = free_ports();
        let nodes: Vec<RedisServer> = ports
            .chunks(2)
            .map(|pair| RedisServer::start_as(pair[0], Some(pair[1])))
            .collect();
        let addresses: Vec<String> = nodes
            .iter()
            .map(|node| format!("127.0.0.1:{}", node.port))
            .collect();
        let mut args = vec!["--cluster", "create"];
        args.extend(addresses.iter().map(String::as_str));
        args.extend(["--cluster-replicas", "0", "--cluster-yes"]);
        nodes[0].cli(&args);
        let cluster = RedisCluster { nodes };
        cluster.wait_ok();
        cluster
    }

    /// The seed nodes, as `[policy.redis] cluster` lists them.
    pub fn urls(&self) -> Vec<String> {
        self.nodes.iter().map(RedisServer::url).collect()
    }

    /// Waits until every running node serves all the slots.
    pub fn wait_ok(&self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        for node in self.nodes.iter().filter(|node| node.child.is_some()) {
            loop {
                let info = node.cli(&["cluster", "info"]);
                if info.contains("cluster_state:ok") {
                    break;
                }
                assert!(Instant::now() < deadline, "cluster not ok:\n{info}");
                std::thread::sleep(Duration::from_millis(50));
            }
        }
    }

    /// The node holding the keys of `subject` (the text inside their
    /// `{…}` hash tag).
    pub fn node_of(&self, subject: &str) -> usize {
        let slot = self.nodes[0].cli(&["cluster", "keyslot", &format!("{{{subject}}}")]);
        let slot: u16 = slot.trim().parse().unwrap();
        self.nodes
            .iter()
            .position(|node| {
                node.cli(&["cluster", "nodes"])
                    .lines()
                    .find(|line| line.contains("myself"))
                    .is_some_and(|line| holds(line, slot))
            })
            .unwrap()
    }
}

/// Whether a `CLUSTER NODES` line's slot ranges (`0-5460`, `7000`) hold
/// `slot`.
fn holds(line: &str, slot: u16) -> bool {
    line.split(' ').skip(8).any(|range| {
        let (from, to) = range.split_once('-').unwrap_or((range, range));
        match (from.parse::<u16>(), to.parse::<u16>()) {
            (Ok(from), Ok(to)) => (from..=to).contains(&slot),
            _ => false,
        }
    })
}

/// `N` distinct free loopback ports: all are held until all are picked,
/// so none is picked twice.
/// `N` loopback ports from the allocator the binary's tests use: below the
/// ephemeral range and never twice in a process, so a port a stopped server
/// gives up is not taken by a parallel test's server before its restart.
fn free_ports<const N: usize>() -> [u16; N] {
    std::array::from_fn(|_| ports::free_port())
}

fn ping(port: u16) -> bool {
    let Ok(mut stream) = TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(1)));
    let mut reply = [0u8; 7];
    stream.write_all(b"PING\r\n").is_ok()
        && stream.read_exact(&mut reply).is_ok()
        && &reply == b"+PONG\r\n"
}

fn log(dir: &Path) -> String {
    std::fs::read_to_string(dir.join("redis.log")).unwrap_or_default()
}
