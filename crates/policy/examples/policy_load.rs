//! Load generator for Postfix policy servers (`mailfuse policy`, postfwd…):
//! many connections kept open as Postfix keeps them, each sending the
//! requests of authenticated messages one after the other — a RCPT request
//! per recipient, then END-OF-MESSAGE with the recipients accepted — and
//! timing every request from its first byte sent to the end of its reply.
//!
//! ```text
//! cargo run --release -p mailfuse-policy --example policy_load -- \
//!     --target 127.0.0.1:10040 --connections 64 --requests 500000 --users 200
//! ```
//!
//! A server that closes a connection between two requests (postfwd's
//! children exit after 1000 requests) is reconnected to and the request sent
//! again once, as Postfix does; those are counted as `reconnects`. A request
//! that still gets no complete reply is an `error`: counted, printed, and
//! never part of the latency figures.

use std::collections::BTreeMap;
use std::io::Write as _;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::Barrier;

const USAGE: &str = "usage: policy_load --target IP:PORT [--connections N] \
[--requests TOTAL | --seconds S] [--users U] [--recipients MAX] [--warmup S] [--threads N] [--json]";

/// Longest wait for one reply before the request counts as an error.
const REPLY_TIMEOUT: Duration = Duration::from_secs(10);

/// A connection that fails this many requests in a row gives up.
const MAX_ERRORS_IN_A_ROW: u32 = 20;

#[derive(Debug, Clone)]
struct Settings {
    target: SocketAddr,
    connections: usize,
    stop: Stop,
    users: u64,
    /// Recipients of a message: 1 to this many, uniformly.
    max_recipients: u64,
    warmup: Duration,
    threads: usize,
    json: bool,
}

#[derive(Debug, Clone, Copy)]
enum Stop {
    /// This many requests in all, shared by the connections.
    Requests(u64),
    /// Every connection sends for this long.
    Seconds(Duration),
}

fn parse_args() -> Result<Settings, String> {
    let mut target = None;
    let mut settings = Settings {
        target: SocketAddr::from(([127, 0, 0, 1], 10040)),
        connections: 64,
        stop: Stop::Requests(200_000),
        users: 1_000,
        max_recipients: 8,
        warmup: Duration::from_secs(1),
        threads: 1,
        json: false,
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        if arg == "--json" {
            settings.json = true;
            continue;
        }
        if arg == "-h" || arg == "--help" {
            return Err(USAGE.to_string());
        }
        let value = args
            .next()
            .ok_or_else(|| format!("{arg} needs a value\n{USAGE}"))?;
        let bad = |what: &str| format!("{arg}: {what}, got {value:?}");
        match arg.as_str() {
            "--target" => target = Some(value.parse().map_err(|_| bad("expected IP:PORT"))?),
            "--connections" => {
                settings.connections =
                    positive(&value).ok_or_else(|| bad("expected a positive number"))? as usize
            }
            "--requests" => {
                settings.stop = Stop::Requests(
                    positive(&value).ok_or_else(|| bad("expected a positive number"))?,
                )
            }
            "--seconds" => {
                settings.stop = Stop::Seconds(
                    seconds(&value)
                        .filter(|d| !d.is_zero())
                        .ok_or_else(|| bad("expected seconds"))?,
                )
            }
            "--users" => {
                settings.users =
                    positive(&value).ok_or_else(|| bad("expected a positive number"))?
            }
            "--recipients" => {
                settings.max_recipients =
                    positive(&value).ok_or_else(|| bad("expected a positive number"))?
            }
            "--warmup" => {
                settings.warmup = seconds(&value).ok_or_else(|| bad("expected seconds"))?
            }
            "--threads" => {
                settings.threads =
                    positive(&value).ok_or_else(|| bad("expected a positive number"))? as usize
            }
            _ => return Err(format!("unknown option {arg}\n{USAGE}")),
        }
    }
    settings.target = target.ok_or_else(|| format!("--target is required\n{USAGE}"))?;
    Ok(settings)
}

fn positive(text: &str) -> Option<u64> {
    text.parse().ok().filter(|n| *n > 0)
}

fn seconds(text: &str) -> Option<Duration> {
    text.parse::<f64>()
        .ok()
        .filter(|s| s.is_finite() && *s >= 0.0)
        .map(Duration::from_secs_f64)
}

/// What one connection saw while measuring.
#[derive(Debug, Default)]
struct Tally {
    /// Microseconds from send to full reply, one per answered request.
    latencies_us: Vec<u32>,
    /// Replies by action word (`DUNNO`, `DEFER_IF_PERMIT`…).
    actions: BTreeMap<String, u64>,
    errors: u64,
    reconnects: u64,
    /// The last error, to say what went wrong.
    last_error: Option<String>,
}

impl Tally {
    fn merge(&mut self, other: Tally) {
        self.latencies_us.extend(other.latencies_us);
        for (action, count) in other.actions {
            *self.actions.entry(action).or_default() += count;
        }
        self.errors += other.errors;
        self.reconnects += other.reconnects;
        if other.last_error.is_some() {
            self.last_error = other.last_error;
        }
    }
}

/// Small, fast and good enough to spread users (xorshift64*).
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) % n
    }
}

/// One message in progress on a connection.
struct Message {
    user: u64,
    instance: String,
    queue_id: String,
    size: u64,
}

/// Appends the request Postfix 3.7 sends at `state` for `message`
/// (SMTPD_POLICY_README's attribute list, in its order).
fn write_request(
    out: &mut Vec<u8>,
    message: &Message,
    state: &str,
    recipient: u64,
    recipient_count: u64,
) {
    let user = message.user;
    // One address per user, so the many-IPs trips stay quiet.
    let (a, b) = (user >> 8 & 0xff, user & 0xff);
    let recipient = if state == "RCPT" {
        format!("rcpt{recipient}@example.net")
    } else {
        String::new()
    };
    // Writing to a Vec cannot fail.
    let _ = write!(
        out,
        "request=smtpd_access_policy\n\
         protocol_state={state}\n\
         protocol_name=ESMTP\n\
         helo_name=laptop-{user}.home.example\n\
         queue_id={queue_id}\n\
         sender=user{user}@example.com\n\
         recipient={recipient}\n\
         recipient_count={recipient_count}\n\
         client_address=10.{a}.{b}.7\n\
         client_name=host-{a}-{b}.dsl.example\n\
         reverse_client_name=host-{a}-{b}.dsl.example\n\
         instance={instance}\n\
         sasl_method=PLAIN\n\
         sasl_username=user{user}@example.com\n\
         sasl_sender=\n\
         size={size}\n\
         ccert_subject=\n\
         ccert_issuer=\n\
         ccert_fingerprint=\n\
         ccert_pubkey_fingerprint=\n\
         encryption_protocol=TLSv1.3\n\
         encryption_cipher=TLS_AES_256_GCM_SHA384\n\
         encryption_keysize=256\n\
         etrn_domain=\n\
         stress=\n\
         client_port=51234\n\
         policy_context=submission\n\
         server_address=192.0.2.25\n\
         server_port=587\n\
         compatibility_level=3.6\n\
         mail_version=3.7.11\n\n",
        queue_id = message.queue_id,
        instance = message.instance,
        size = message.size,
    );
}

/// A connection kept open across requests, as Postfix's policy client keeps it.
struct Client {
    target: SocketAddr,
    stream: Option<TcpStream>,
    /// Replies received on the current stream: a server may close a used
    /// connection between requests, never a fresh one.
    answered_here: u64,
    reply: Vec<u8>,
}

impl Client {
    /// Sends `request` and returns its action word, reconnecting once when
    /// a used connection was closed before any reply byte (as Postfix does).
    async fn ask(&mut self, request: &[u8], tally: &mut Tally) -> Result<String, String> {
        match self.try_once(request).await {
            Ok(action) => Ok(action),
            Err(Failure::ClosedBeforeReply) if self.answered_here > 0 => {
                tally.reconnects += 1;
                self.stream = None;
                self.try_once(request).await.map_err(|failure| {
                    self.stream = None;
                    failure.to_string()
                })
            }
            Err(failure) => {
                self.stream = None;
                Err(failure.to_string())
            }
        }
    }

    async fn try_once(&mut self, request: &[u8]) -> Result<String, Failure> {
        if self.stream.is_none() {
            let stream = TcpStream::connect(self.target)
                .await
                .map_err(|e| Failure::Io(format!("connect: {e}")))?;
            let _ = stream.set_nodelay(true);
            self.stream = Some(stream);
            self.answered_here = 0;
        }
        let Some(stream) = self.stream.as_mut() else {
            return Err(Failure::Io("no connection".into()));
        };
        stream
            .write_all(request)
            .await
            .map_err(|e| Failure::Io(format!("write: {e}")))?;
        self.reply.clear();
        let mut chunk = [0u8; 512];
        while !self.reply.ends_with(b"\n\n") {
            let read = tokio::time::timeout(REPLY_TIMEOUT, stream.read(&mut chunk))
                .await
                .map_err(|_| Failure::Io(format!("no reply within {REPLY_TIMEOUT:?}")))?;
            let n = match read {
                Ok(n) => n,
                Err(e)
                    if self.reply.is_empty() && e.kind() == std::io::ErrorKind::ConnectionReset =>
                {
                    0
                }
                Err(e) => return Err(Failure::Io(format!("read: {e}"))),
            };
            if n == 0 {
                return Err(if self.reply.is_empty() {
                    Failure::ClosedBeforeReply
                } else {
                    Failure::Io("connection closed in the middle of a reply".into())
                });
            }
            self.reply
                .extend_from_slice(chunk.get(..n).unwrap_or_default());
        }
        self.answered_here += 1;
        let action = self
            .reply
            .strip_prefix(b"action=")
            .map(|rest| {
                let end = rest
                    .iter()
                    .position(|b| *b == b' ' || *b == b'\n')
                    .unwrap_or(rest.len());
                String::from_utf8_lossy(rest.get(..end).unwrap_or_default()).to_ascii_uppercase()
            })
            .ok_or_else(|| Failure::Io("reply without action=".into()))?;
        Ok(action)
    }
}

enum Failure {
    ClosedBeforeReply,
    Io(String),
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Failure::ClosedBeforeReply => write!(f, "connection closed without a reply"),
            Failure::Io(text) => write!(f, "{text}"),
        }
    }
}

/// Where the measured run stops.
struct Budget {
    stop: Stop,
    /// Requests handed out so far (`Stop::Requests`).
    taken: AtomicU64,
}

impl Budget {
    fn take(&self, started: Instant) -> bool {
        match self.stop {
            Stop::Requests(total) => self.taken.fetch_add(1, Ordering::Relaxed) < total,
            Stop::Seconds(duration) => started.elapsed() < duration,
        }
    }
}

/// One connection: messages one after the other, the warm-up first, then
/// the measured run.
async fn drive(
    id: u64,
    settings: Arc<Settings>,
    budget: Arc<Budget>,
    barrier: Arc<Barrier>,
) -> Tally {
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15 ^ (id + 1).wrapping_mul(0xA076_1D64_78BD_642F));
    let mut client = Client {
        target: settings.target,
        stream: None,
        answered_here: 0,
        reply: Vec::with_capacity(256),
    };
    let mut request = Vec::with_capacity(1024);
    let mut messages = 0u64;
    let mut warmup_tally = Tally::default();
    let mut tally = Tally::default();
    let warmup_end = Instant::now() + settings.warmup;
    let mut measuring: Option<Instant> = None;
    let mut errors_in_a_row = 0;
    'messages: loop {
        messages += 1;
        let message = Message {
            user: rng.below(settings.users),
            instance: format!("{id:x}.{messages:x}.0"),
            queue_id: format!("{:X}{messages:06X}", 0x100 + id),
            size: 2_000 + rng.below(200_000),
        };
        let recipients = 1 + rng.below(settings.max_recipients);
        let mut accepted = 0;
        // The RCPTs, then END-OF-MESSAGE when any recipient was accepted
        // (with none, Postfix never gets to DATA).
        for step in 0..=recipients {
            if measuring.is_none() && Instant::now() >= warmup_end {
                barrier.wait().await;
                measuring = Some(Instant::now());
            }
            let eom = step == recipients;
            if eom && accepted == 0 {
                break;
            }
            if let Some(started) = measuring {
                if !budget.take(started) {
                    break 'messages;
                }
            }
            request.clear();
            let state = if eom { "END-OF-MESSAGE" } else { "RCPT" };
            let count = if eom { accepted } else { 0 };
            write_request(&mut request, &message, state, step, count);
            let current = if measuring.is_some() {
                &mut tally
            } else {
                &mut warmup_tally
            };
            let sent = Instant::now();
            match client.ask(&request, current).await {
                Ok(action) => {
                    let micros = u32::try_from(sent.elapsed().as_micros()).unwrap_or(u32::MAX);
                    current.latencies_us.push(micros);
                    if !eom && matches!(action.as_str(), "DUNNO" | "OK" | "WARN" | "PREPEND") {
                        accepted += 1;
                    }
                    *current.actions.entry(action).or_default() += 1;
                    errors_in_a_row = 0;
                }
                Err(e) => {
                    current.errors += 1;
                    current.last_error = Some(e);
                    errors_in_a_row += 1;
                    if errors_in_a_row >= MAX_ERRORS_IN_A_ROW {
                        if measuring.is_none() {
                            // The others wait for this one at the barrier.
                            barrier.wait().await;
                        }
                        break 'messages;
                    }
                }
            }
        }
    }
    // Failures while warming up are failures too.
    tally.errors += warmup_tally.errors;
    tally.reconnects += warmup_tally.reconnects;
    tally.last_error = tally.last_error.or(warmup_tally.last_error);
    tally
}

fn percentile(sorted: &[u32], fraction: f64) -> u32 {
    if sorted.is_empty() {
        return 0;
    }
    let rank = ((sorted.len() as f64) * fraction).ceil() as usize;
    sorted
        .get(rank.saturating_sub(1).min(sorted.len() - 1))
        .copied()
        .unwrap_or(0)
}

fn main() -> std::process::ExitCode {
    let settings = match parse_args() {
        Ok(settings) => Arc::new(settings),
        Err(message) => {
            eprintln!("{message}");
            return std::process::ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(settings.threads)
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("cannot start the runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let (tally, seconds) = runtime.block_on(run(settings.clone()));
    report(&settings, tally, seconds)
}

/// Runs every connection; the measured time runs from the end of the
/// warm-up (all connections at once) to the last reply.
async fn run(settings: Arc<Settings>) -> (Tally, f64) {
    let budget = Arc::new(Budget {
        stop: settings.stop,
        taken: AtomicU64::new(0),
    });
    let barrier = Arc::new(Barrier::new(settings.connections + 1));
    let mut tasks = tokio::task::JoinSet::new();
    for id in 0..settings.connections as u64 {
        tasks.spawn(drive(id, settings.clone(), budget.clone(), barrier.clone()));
    }
    barrier.wait().await;
    let started = Instant::now();
    let mut tally = Tally::default();
    while let Some(result) = tasks.join_next().await {
        match result {
            Ok(one) => tally.merge(one),
            Err(e) => {
                tally.errors += 1;
                tally.last_error = Some(format!("connection task failed: {e}"));
            }
        }
    }
    (tally, started.elapsed().as_secs_f64())
}

fn report(settings: &Settings, mut tally: Tally, seconds: f64) -> std::process::ExitCode {
    tally.latencies_us.sort_unstable();
    let answered = tally.latencies_us.len();
    let rate = answered as f64 / seconds.max(1e-9);
    let [p50, p90, p99] = [0.5, 0.9, 0.99].map(|f| percentile(&tally.latencies_us, f));
    let max = tally.latencies_us.last().copied().unwrap_or(0);
    if settings.json {
        let actions: Vec<String> = tally
            .actions
            .iter()
            .map(|(action, count)| format!("\"{action}\":{count}"))
            .collect();
        let last_error = tally.last_error.as_deref().map_or_else(
            || "null".to_string(),
            |e| format!("\"{}\"", e.replace(['"', '\\'], "'")),
        );
        println!(
            "{{\"connections\":{},\"users\":{},\"seconds\":{seconds:.3},\"answered\":{answered},\
             \"errors\":{},\"reconnects\":{},\"decisions_per_sec\":{rate:.0},\"p50_us\":{p50},\
             \"p90_us\":{p90},\"p99_us\":{p99},\"max_us\":{max},\"actions\":{{{}}},\"last_error\":{last_error}}}",
            settings.connections,
            settings.users,
            tally.errors,
            tally.reconnects,
            actions.join(",")
        );
    } else {
        println!(
            "{answered} decisions in {seconds:.2} s over {} connections ({} users): {rate:.0} decisions/s",
            settings.connections, settings.users
        );
        println!(
            "latency: p50 {p50} µs, p90 {p90} µs, p99 {p99} µs, max {max} µs (send to full reply)"
        );
        for (action, count) in &tally.actions {
            println!(
                "  {action:<16} {count:>10} ({:.1}%)",
                100.0 * *count as f64 / answered.max(1) as f64
            );
        }
        println!("errors: {}, reconnects: {}", tally.errors, tally.reconnects);
        if let Some(error) = &tally.last_error {
            println!("last error: {error}");
        }
    }
    if answered == 0 {
        std::process::ExitCode::FAILURE
    } else {
        std::process::ExitCode::SUCCESS
    }
}
