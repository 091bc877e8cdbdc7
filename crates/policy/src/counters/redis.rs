//! The shared store: several mail servers count against the same windows in
//! Redis, one atomic Lua script per decision, with the answers of
//! [`Memory`] for the same calls.
//!
//! Layout (`<key>` lower-cased, then `{`, `}`, `:` and `%` percent-encoded so
//! no name can pose as another's keys or break the hash tag; the empty name
//! is `%`, as `{}` is no hash tag):
//! - `<prefix>:{<account>}:lock`: the account is locked (no TTL; `mailfuse
//!   unlock` deletes it);
//! - `<prefix>:{<account>}:ips`: ZSET `"<network> <ip>"` → last seen, for the
//!   many-IPs and many-networks trips;
//! - `<prefix>:{<key>}:<messages|recipients>:<window>:seconds`: ZSET of the
//!   seconds holding counts, and `…:amounts`: HASH second → amount plus
//!   `total`, the window's running sum;
//! - `<prefix>:{<key>}:applied`: ZSET of the ids of the counts applied →
//!   their second, so a count is applied once whatever timed out.
//!
//! Every key of one account shares its `{…}` hash tag, so a script touches a
//! single slot of a Redis Cluster (a request's key is its account when it
//! has one, so the check's lock, IPs and windows are one subject's); every
//! key but the lock expires a minute after its longest window, so idle
//! users vanish. Times are the caller's clock, never Redis's `TIME`.
//!
//! One server or a cluster ([`RedisServers`]) is the same code over a
//! [`Connection`]: a cluster routes each script by its keys' slot, and the
//! replay, the only call spanning subjects, sends one pipeline per subject.
//!
//! While Redis fails or is slower than `timeout`, decisions come from
//! [`Redis::local`], a [`Memory`] that always counts this server's own
//! traffic; what is counted meanwhile waits in a bounded backlog that a
//! background task replays, with the original seconds, once Redis answers
//! its ping again.

use std::collections::{HashMap, VecDeque};
use std::fmt::Write as _;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::Duration;

use mailfuse_core::net::Network;
use redis::aio::{ConnectionLike, ConnectionManager, ConnectionManagerConfig};
use redis::cluster::ClusterClient;
use redis::cluster_async::ClusterConnection;
use redis::{Client, ConnectionInfo, IntoConnectionInfo, RedisFuture, Script};
use tokio::task::JoinSet;
use tracing::{debug, info, warn};

use super::{Answer, Ask, Diversity, Memory, StoreError, Trip};
use crate::config::{RedisConfig, RedisServers};
use crate::metrics::PolicyMetrics;
use mailfuse_limits::{judge, normalize, Counting, Limit, LimitRules};

/// How much longer than its longest window a key lives.
const TTL_MARGIN_SECS: u64 = 60;

/// Counts and locks kept for replay during an outage, at most; older ones
/// are dropped (and counted) first.
const BACKLOG_MAX: usize = 100_000;

/// Backlog entries replayed at once when Redis is back (one pipeline per
/// subject among them, all sent together).
const REPLAY_BATCH: usize = 1_000;

/// The amount one call adds, at most: Redis counts in `i64` and Lua in
/// doubles; a real message never carries this many recipients.
const MAX_AMOUNT: u64 = u32::MAX as u64;

/// How often the background task pings Redis while it is down.
const PING_EVERY: Duration = Duration::from_secs(1);

/// Expires one window's old seconds and returns its total (a string).
/// Shared by both scripts.
const WINDOW_LUA: &str = r#"
local function int(n) return string.format('%.0f', n) end
local function held(seconds, amounts, now, window)
  local cutoff = int(now - window)
  local old = redis.call('ZRANGEBYSCORE', seconds, '-inf', cutoff)
  if #old == 0 then
    return redis.call('HGET', amounts, 'total') or '0'
  end
  local gone = 0
  for _, second in ipairs(old) do
    gone = gone + (tonumber(redis.call('HGET', amounts, second)) or 0)
    redis.call('HDEL', amounts, second)
  end
  redis.call('ZREMRANGEBYSCORE', seconds, '-inf', cutoff)
  return tostring(redis.call('HINCRBY', amounts, 'total', int(-gone)))
end
"#;

/// KEYS: lock, ips, then `seconds, amounts` per limit.
/// ARGV: now, ttl, `1` when there is an account (`2`: in a dry run, whose
/// trips lock nothing; `0`: no account, no lock or trip applies), max_ips,
/// max_networks, diversity window, member (`""`: nothing to note), then
/// each limit's window.
/// Returns `{"locked"}`, `{"ips", n}`, `{"networks", n}` or
/// `{"totals", total…}`.
const CHECK_LUA: &str = r#"
local now, ttl = tonumber(ARGV[1]), tonumber(ARGV[2])
local lock, ips = KEYS[1], KEYS[2]
if ARGV[3] ~= '0' and redis.call('EXISTS', lock) == 1 then return {'locked'} end
local locks = ARGV[3] == '1'
local max_ips, max_networks, window = tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6])
local member = ARGV[7]
if member ~= '' then
  redis.call('ZREMRANGEBYSCORE', ips, '-inf', int(now - window))
  local at = redis.call('ZSCORE', ips, member)
  if not at then
    if redis.call('ZCARD', ips) >= 1024 then redis.call('ZPOPMIN', ips) end
    redis.call('ZADD', ips, ARGV[1], member)
  elseif tonumber(at) < now then
    redis.call('ZADD', ips, ARGV[1], member)
  end
  redis.call('EXPIRE', ips, ttl)
  local count = redis.call('ZCARD', ips)
  if max_ips > 0 and count > max_ips then
    if locks then redis.call('SET', lock, ARGV[1]) end
    return {'ips', tostring(count)}
  end
  if max_networks > 0 then
    local networks, distinct = {}, 0
    for _, seen in ipairs(redis.call('ZRANGE', ips, 0, -1)) do
      local network = string.match(seen, '^[^ ]+')
      if not networks[network] then
        networks[network] = true
        distinct = distinct + 1
      end
    end
    if distinct > max_networks then
      if locks then redis.call('SET', lock, ARGV[1]) end
      return {'networks', tostring(distinct)}
    end
  end
end
local totals = {'totals'}
for i = 8, #ARGV do
  local k = 3 + (i - 8) * 2
  totals[#totals + 1] = held(KEYS[k], KEYS[k + 1], now, tonumber(ARGV[i]))
end
return totals
"#;

/// KEYS: the subject's applied ids, then `seconds, amounts` per limit.
/// ARGV: now, ttl, the count's id, then `window, amount` per limit.
/// A count whose id was applied already (a call that timed out, then ran
/// when Redis woke, and its replay) changes nothing; ids are kept as long
/// as the windows they counted in.
const RECORD_LUA: &str = r#"
local now, ttl = tonumber(ARGV[1]), ARGV[2]
local applied, id = KEYS[1], ARGV[3]
redis.call('ZREMRANGEBYSCORE', applied, '-inf', int(now - tonumber(ttl)))
if redis.call('ZSCORE', applied, id) then return 0 end
redis.call('ZADD', applied, ARGV[1], id)
redis.call('EXPIRE', applied, ttl)
for i = 2, #KEYS, 2 do
  local seconds, amounts = KEYS[i], KEYS[i + 1]
  local window, amount = tonumber(ARGV[i + 2]), ARGV[i + 3]
  held(seconds, amounts, now, window)
  redis.call('ZADD', seconds, ARGV[1], ARGV[1])
  redis.call('HINCRBY', amounts, ARGV[1], amount)
  redis.call('HINCRBY', amounts, 'total', amount)
  redis.call('EXPIRE', seconds, ttl)
  redis.call('EXPIRE', amounts, ttl)
end
return 0
"#;

/// KEYS: `seconds, amounts` of one window. ARGV: now, ttl, window, then
/// `second, amount` pairs, oldest first: this server's counts of the window.
/// Raises the window's total to this server's where it is lower, adding
/// the difference at the oldest seconds (what Redis lost came before what
/// it was given since): seeding twice, or from several servers, leaves the
/// largest of their totals, never their sum.
const SEED_LUA: &str = r#"
local now, ttl = tonumber(ARGV[1]), ARGV[2]
local seconds, amounts = KEYS[1], KEYS[2]
local have = tonumber(held(seconds, amounts, now, tonumber(ARGV[3])))
local missing = -have
for i = 5, #ARGV, 2 do missing = missing + tonumber(ARGV[i]) end
for i = 4, #ARGV, 2 do
  if missing <= 0 then break end
  local add = math.min(tonumber(ARGV[i + 1]), missing)
  redis.call('ZADD', seconds, ARGV[i], ARGV[i])
  redis.call('HINCRBY', amounts, ARGV[i], int(add))
  redis.call('HINCRBY', amounts, 'total', int(add))
  missing = missing - add
end
redis.call('EXPIRE', seconds, ttl)
redis.call('EXPIRE', amounts, ttl)
return 0
"#;

/// Whether Redis answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RedisStatus {
    /// Decisions go to Redis: it answered, and whatever was counted or
    /// locked during an outage has been replayed.
    Up,
    /// Redis failed or timed out (or has not answered since the start):
    /// decisions come from this server's own counts, what is counted waits
    /// in the backlog, and Redis is pinged every second.
    Down,
}

/// Counters shared through Redis, with a local fallback.
pub struct Redis {
    shared: Arc<Shared>,
    resync: tokio::task::JoinHandle<()>,
}

/// What the requests and the resync task share.
struct Shared {
    link: Link,
    keys: KeyNames,
    timeout: Duration,
    /// The configured limits (the counts live in Redis).
    rules: LimitRules,
    diversity: Diversity,
    local: Memory,
    metrics: Arc<PolicyMetrics>,
    up: AtomicBool,
    backlog: Mutex<Backlog>,
    /// This process among the servers sharing Redis (random), the first
    /// half of each count's id.
    origin: String,
    /// The second half: one more per count.
    sequence: AtomicU64,
    /// The value of the epoch key when last read: another means Redis
    /// lost its data since.
    epoch: Mutex<Option<String>>,
    check_script: Script,
    record_script: Script,
    seed_script: Script,
}

/// What happened while Redis was away, oldest first.
#[derive(Default)]
struct Backlog {
    entries: VecDeque<Missed>,
    dropped: u64,
}

/// One count or lock Redis did not take.
enum Missed {
    Counted {
        key: String,
        /// The id the first attempt carried: Redis may have applied it.
        id: String,
        now: u64,
        messages: u64,
        recipients: u64,
    },
    Locked {
        account: String,
        now: u64,
    },
}

impl Missed {
    /// Whose keys it touches: its script or `SET` stays within this
    /// subject's hash tag.
    fn subject(&self) -> &str {
        match self {
            Missed::Counted { key, .. } => key,
            Missed::Locked { account, .. } => account,
        }
    }
}

/// How this server reaches Redis. Building one does no I/O.
// One per store, never moved around: the size gap does not matter.
#[allow(clippy::large_enum_variant)]
enum Link {
    /// One server: the manager connects at first use and reconnects by
    /// itself.
    Single(ConnectionManager),
    /// A Redis Cluster: connected once a seed answers (the first ping that
    /// finds one; the client asks it for the slot map), then each command
    /// goes to the master of its keys' slot, following the cluster's
    /// redirections and reconnecting to nodes that come back.
    Cluster {
        client: ClusterClient,
        connected: Mutex<Option<ClusterConnection>>,
    },
}

impl Link {
    /// The link `config` describes; fails only on a bad URL.
    fn open(config: &RedisConfig) -> Result<Link, StoreError> {
        match &config.servers {
            RedisServers::Single(url) => {
                let manager = ConnectionManager::new_lazy_with_config(
                    Client::open(connection_info(url, config)?).map_err(redis_error)?,
                    ConnectionManagerConfig::new()
                        .set_connection_timeout(Some(config.timeout))
                        .set_response_timeout(Some(config.timeout))
                        .set_number_of_retries(1)
                        .set_max_delay(PING_EVERY),
                )
                .map_err(redis_error)?;
                Ok(Link::Single(manager))
            }
            RedisServers::Cluster(seeds) => {
                let seeds = seeds
                    .iter()
                    .map(|seed| connection_info(seed, config))
                    .collect::<Result<Vec<_>, _>>()?;
                let client = ClusterClient::builder(seeds)
                    .connection_timeout(config.timeout)
                    .response_timeout(config.timeout)
                    // A MOVED or ASK redirection while slots migrate, then
                    // one retry; `within` bounds the whole anyway.
                    .retries(2)
                    .min_retry_wait(10)
                    .max_retry_wait(PING_EVERY.as_millis().try_into().unwrap_or(u64::MAX))
                    .build()
                    .map_err(redis_error)?;
                Ok(Link::Cluster {
                    client,
                    connected: Mutex::new(None),
                })
            }
        }
    }

    /// A connection for one call (cheap: a handle on a shared one); a
    /// cluster is connected on first use.
    async fn connection(&self) -> redis::RedisResult<Connection> {
        match self {
            Link::Single(manager) => Ok(Connection::Single(manager.clone())),
            Link::Cluster { client, connected } => {
                let cached = || connected.lock().unwrap_or_else(|e| e.into_inner());
                if let Some(connection) = cached().clone() {
                    return Ok(Connection::Cluster(connection));
                }
                let connection = client.get_async_connection().await?;
                *cached() = Some(connection.clone());
                Ok(Connection::Cluster(connection))
            }
        }
    }
}

/// A connection to one server or to a cluster: the scripts, pipelines and
/// pings are written once against it.
#[derive(Clone)]
enum Connection {
    Single(ConnectionManager),
    Cluster(ClusterConnection),
}

impl ConnectionLike for Connection {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a redis::Cmd) -> RedisFuture<'a, redis::Value> {
        match self {
            Connection::Single(connection) => connection.req_packed_command(cmd),
            Connection::Cluster(connection) => connection.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a redis::Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<redis::Value>> {
        match self {
            Connection::Single(connection) => {
                connection.req_packed_commands(pipeline, offset, count)
            }
            Connection::Cluster(connection) => {
                connection.req_packed_commands(pipeline, offset, count)
            }
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Connection::Single(connection) => connection.get_db(),
            Connection::Cluster(connection) => connection.get_db(),
        }
    }
}

/// Builds the Redis key names of one prefix.
struct KeyNames {
    prefix: String,
}

impl KeyNames {
    /// `<prefix>:{<escaped key>}:`, the start of every key of `key`.
    fn tag(&self, key: &str) -> String {
        let key = normalize(key);
        let mut name = String::with_capacity(self.prefix.len() + key.len() + 16);
        name.push_str(&self.prefix);
        name.push_str(":{");
        if key.is_empty() {
            // A cluster hashes a name with an empty `{}` whole, which would
            // spread the keys of "" over several slots; a lone `%` is no
            // escape's output, so no other key's tag.
            name.push('%');
        }
        escape_into(&key, &mut name);
        name.push_str("}:");
        name
    }

    fn lock(&self, account: &str) -> String {
        self.tag(account) + "lock"
    }

    /// The key naming Redis's current epoch: gone when Redis lost its data.
    fn epoch(&self) -> String {
        format!("{}:epoch", self.prefix)
    }

    fn ips(&self, account: &str) -> String {
        self.tag(account) + "ips"
    }

    /// The `seconds` and `amounts` keys of one limit of `key` (`tag` is
    /// [`KeyNames::tag`] of it). Limits with the same window and counting
    /// share them: they count the same amounts.
    fn window(tag: &str, limit: &Limit) -> [String; 2] {
        let base = format!("{tag}{}:{}:", limit.counts.name(), limit.window_secs);
        [format!("{base}seconds"), base + "amounts"]
    }
}

/// Percent-encodes the characters that delimit key parts or the hash tag.
fn escape_into(text: &str, out: &mut String) {
    for c in text.chars() {
        match c {
            '{' | '}' | ':' | '%' => {
                // Writing to a String cannot fail.
                let _ = write!(out, "%{:02X}", u32::from(c));
            }
            c => out.push(c),
        }
    }
}

impl Redis {
    /// Connects lazily: Redis being down at start only means starting on
    /// local counts (and saying so); the resync task takes over when it
    /// answers. Fails only on a bad URL.
    pub async fn connect(
        config: &RedisConfig,
        limits: LimitRules,
        diversity: Diversity,
        metrics: Arc<PolicyMetrics>,
    ) -> Result<Redis, StoreError> {
        let shared = Arc::new(Shared {
            link: Link::open(config)?,
            keys: KeyNames {
                prefix: escaped(&config.prefix),
            },
            timeout: config.timeout,
            local: Memory::new(limits.clone(), diversity),
            rules: limits,
            diversity,
            metrics,
            up: AtomicBool::new(false),
            backlog: Mutex::new(Backlog::default()),
            origin: random_name(),
            sequence: AtomicU64::new(0),
            epoch: Mutex::new(None),
            check_script: Script::new(&format!("{WINDOW_LUA}{CHECK_LUA}")),
            record_script: Script::new(&format!("{WINDOW_LUA}{RECORD_LUA}")),
            seed_script: Script::new(&format!("{WINDOW_LUA}{SEED_LUA}")),
        });
        shared.metrics.redis_up.set(0);
        match shared.ping().await {
            Ok(()) => {
                // Known from the start: Redis emptied before the first
                // tick of the resync loop is then seeded again too.
                shared.watch_epoch().await;
                shared.mark_up();
            }
            Err(e) => warn!(
                redis = %config.servers,
                "Redis unreachable at start, deciding on local counts until it answers: {e}"
            ),
        }
        let resync = tokio::spawn(resync_loop(Arc::downgrade(&shared)));
        Ok(Redis { shared, resync })
    }

    /// See [`super::Counters::check`]. Never fails: without Redis, the
    /// local counts answer.
    pub async fn check(&self, ask: &Ask<'_>) -> Result<Answer, StoreError> {
        let shared = &self.shared;
        if let Some(account) = ask.account {
            if shared.local.is_locked(account) {
                return Ok(Answer::Locked);
            }
        }
        if shared.is_up() {
            match shared.shared_check(ask).await {
                Ok(answer) => {
                    if let (Answer::Tripped(_), Some(account), false) =
                        (&answer, ask.account, shared.diversity.dry_run)
                    {
                        shared.local.lock(account, ask.now);
                    }
                    return Ok(answer);
                }
                Err(e) => shared.went_down(&e),
            }
        }
        shared.metrics.fallback_decisions.inc();
        let answer = shared.local.check(ask);
        if let (Answer::Tripped(_), Some(account), false) =
            (&answer, ask.account, shared.diversity.dry_run)
        {
            shared.queue(Missed::Locked {
                account: account.to_owned(),
                now: ask.now,
            });
        }
        Ok(answer)
    }

    /// See [`super::Counters::record`]. Counted locally too, and kept for
    /// replay when Redis does not take it.
    pub async fn record(
        &self,
        key: &str,
        now: u64,
        messages: u64,
        recipients: u64,
    ) -> Result<(), StoreError> {
        let shared = &self.shared;
        shared.local.record(key, now, messages, recipients);
        let id = shared.next_id();
        if shared.is_up() {
            match shared
                .shared_record(key, &id, now, messages, recipients)
                .await
            {
                Ok(()) => return Ok(()),
                Err(e) => shared.went_down(&e),
            }
        }
        shared.metrics.fallback_decisions.inc();
        shared.queue(Missed::Counted {
            key: key.to_owned(),
            id,
            now,
            messages,
            recipients,
        });
        Ok(())
    }

    /// Locks `account` here at once and in Redis (later, if it is down).
    pub async fn lock(&self, account: &str, now: u64) -> Result<(), StoreError> {
        let shared = &self.shared;
        shared.local.lock(account, now);
        if shared.is_up() {
            match shared.shared_lock(account, now).await {
                Ok(()) => return Ok(()),
                Err(e) => shared.went_down(&e),
            }
        }
        shared.queue(Missed::Locked {
            account: account.to_owned(),
            now,
        });
        Ok(())
    }

    /// The local store: this server's counts, and the locks of the state
    /// database (`set_locks`), which lock as much as Redis's.
    pub fn local(&self) -> &Memory {
        &self.shared.local
    }

    /// Whether decisions go to Redis or to the local counts right now
    /// (what `mailfuse_policy_redis_up` shows).
    pub fn status(&self) -> RedisStatus {
        if self.shared.is_up() {
            RedisStatus::Up
        } else {
            RedisStatus::Down
        }
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        self.resync.abort();
    }
}

/// Lifts `account`'s lock in Redis (for `mailfuse unlock`) and forgets the
/// IPs it was seen from, so the same IPs do not trip it again at once.
/// `true` when it was locked.
pub async fn unlock(config: &RedisConfig, account: &str) -> Result<bool, StoreError> {
    let keys = KeyNames {
        prefix: escaped(&config.prefix),
    };
    let link = Link::open(config)?;
    let work = async {
        let mut connection = link.connection().await?;
        let (removed, _): (u64, u64) = redis::pipe()
            .del(keys.lock(account))
            .del(keys.ips(account))
            .query_async(&mut connection)
            .await?;
        Ok::<_, redis::RedisError>(removed > 0)
    };
    within(config.timeout, work).await
}

/// 64 random bits in hex, naming this process's counts or an epoch of
/// Redis; the clock and process id when the system gives no randomness
/// (still distinct from every other in practice).
fn random_name() -> String {
    let bits = getrandom::u64().unwrap_or_else(|_| {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |elapsed| elapsed.as_nanos());
        // Truncating the nanoseconds keeps their fast-changing part.
        (nanos as u64) ^ u64::from(std::process::id()).rotate_left(32)
    });
    format!("{bits:016x}")
}

fn escaped(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    escape_into(text, &mut out);
    out
}

/// Where `url` points, with `config.password` when given.
fn connection_info(url: &str, config: &RedisConfig) -> Result<ConnectionInfo, StoreError> {
    let mut info = url.into_connection_info().map_err(redis_error)?;
    if let Some(password) = &config.password {
        let settings = info.redis_settings().clone().set_password(password);
        info = info.set_redis_settings(settings);
    }
    Ok(info)
}

fn redis_error(e: redis::RedisError) -> StoreError {
    StoreError::Redis(e.to_string())
}

/// `work`, or an error once `timeout` has passed.
async fn within<T>(
    timeout: Duration,
    work: impl std::future::Future<Output = redis::RedisResult<T>>,
) -> Result<T, StoreError> {
    match tokio::time::timeout(timeout, work).await {
        Ok(result) => result.map_err(redis_error),
        Err(_) => Err(StoreError::Redis(format!(
            "no answer within {} ms",
            timeout.as_millis()
        ))),
    }
}

impl Shared {
    fn is_up(&self) -> bool {
        self.up.load(Ordering::SeqCst)
    }

    /// Notes an outage: logged once, not per request.
    fn went_down(&self, error: &StoreError) {
        self.metrics.store_errors.inc();
        if self.up.swap(false, Ordering::SeqCst) {
            self.metrics.redis_up.set(0);
            warn!("Redis unreachable, deciding on local counts until it answers: {error}");
        }
    }

    /// A new count's id: this process's origin and its sequence number.
    fn next_id(&self) -> String {
        let sequence = self.sequence.fetch_add(1, Ordering::Relaxed);
        format!("{}:{sequence}", self.origin)
    }

    fn mark_up(&self) {
        self.up.store(true, Ordering::SeqCst);
        self.metrics.redis_up.set(1);
    }

    fn backlog(&self) -> MutexGuard<'_, Backlog> {
        self.backlog.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn queue(&self, missed: Missed) {
        let mut backlog = self.backlog();
        if backlog.entries.len() >= BACKLOG_MAX {
            backlog.entries.pop_front();
            backlog.dropped += 1;
        }
        backlog.entries.push_back(missed);
    }

    /// `work` on a connection, or an error once `timeout` has passed
    /// (connecting a cluster included).
    async fn call<T>(
        &self,
        timeout: Duration,
        work: impl AsyncFnOnce(&mut Connection) -> redis::RedisResult<T>,
    ) -> Result<T, StoreError> {
        within(timeout, async {
            let mut connection = self.link.connection().await?;
            work(&mut connection).await
        })
        .await
    }

    /// A cluster answers when every master does.
    async fn ping(&self) -> Result<(), StoreError> {
        self.call(self.timeout, async |connection| {
            redis::cmd("PING").query_async(connection).await
        })
        .await
    }

    /// The limits of `key` (none when allow-listed) and the TTL of its keys.
    fn limits_and_ttl(&self, key: &str, with_ips: bool) -> (&[Limit], u64) {
        let limits = self.rules.limits_of(&normalize(key)).unwrap_or_default();
        let longest = limits.iter().map(|limit| limit.window_secs).max();
        let ips = with_ips.then_some(self.diversity.window_secs);
        let ttl = longest.into_iter().chain(ips).max().unwrap_or(0);
        (limits, ttl.saturating_add(TTL_MARGIN_SECS))
    }

    async fn shared_check(&self, ask: &Ask<'_>) -> Result<Answer, StoreError> {
        let diversity = self.diversity;
        let trips_on = diversity.max_ips > 0 || diversity.max_networks > 0;
        let (limits, ttl) = self.limits_and_ttl(ask.key, trips_on);
        // Locks and IPs are the account's; with no account, they go under
        // the key's tag (same slot) and nothing is noted there.
        let owner = ask.account.unwrap_or(ask.key);
        let member = match (ask.account, ask.client) {
            (Some(_), Some(ip)) if trips_on => format!("{} {ip}", Network::of(ip)),
            _ => String::new(),
        };
        let mut invocation = self.check_script.prepare_invoke();
        invocation
            .key(self.keys.lock(owner))
            .key(self.keys.ips(owner))
            .arg(ask.now)
            .arg(ttl)
            .arg(match (ask.account, diversity.dry_run) {
                (None, _) => 0u8,
                (Some(_), false) => 1,
                (Some(_), true) => 2,
            })
            .arg(diversity.max_ips)
            .arg(diversity.max_networks)
            .arg(diversity.window_secs)
            .arg(member);
        let tag = self.keys.tag(ask.key);
        for limit in limits {
            let [seconds, amounts] = KeyNames::window(&tag, limit);
            invocation.key(seconds).key(amounts).arg(limit.window_secs);
        }
        let reply: Vec<String> = self
            .call(self.timeout, async |connection| {
                invocation.invoke_async(connection).await
            })
            .await?;
        self.answer_of(&reply, limits, ask)
    }

    /// Reads the check script's reply as [`Memory::check`] would answer.
    fn answer_of(
        &self,
        reply: &[String],
        limits: &[Limit],
        ask: &Ask<'_>,
    ) -> Result<Answer, StoreError> {
        let window = Duration::from_secs(self.diversity.window_secs);
        let number = |index: usize| -> Result<u64, StoreError> {
            let text = reply.get(index).map(String::as_str).unwrap_or_default();
            // A total below zero can only be a hand-edited key: nothing held.
            text.parse::<i64>()
                .map(|n| u64::try_from(n).unwrap_or(0))
                .map_err(|_| StoreError::Redis(format!("unexpected script reply {reply:?}")))
        };
        match reply.first().map(String::as_str) {
            Some("locked") => Ok(Answer::Locked),
            Some("ips") => Ok(Answer::Tripped(Trip::ManyIps {
                count: usize::try_from(number(1)?).unwrap_or(usize::MAX),
                window,
            })),
            Some("networks") => Ok(Answer::Tripped(Trip::ManyNetworks {
                count: usize::try_from(number(1)?).unwrap_or(usize::MAX),
                window,
            })),
            Some("totals") => {
                let totals = (1..=limits.len())
                    .map(number)
                    .collect::<Result<Vec<u64>, _>>()?;
                // Keep the local counts warm with the cluster's, for an outage.
                self.local.catch_up(ask.key, ask.now, &totals);
                Ok(judge(limits, totals, ask.messages, ask.recipients).into())
            }
            _ => Err(StoreError::Redis(format!(
                "unexpected script reply {reply:?}"
            ))),
        }
    }

    /// The record script's invocation, or `None` when nothing is counted
    /// (allow-listed, no limits, zero amounts).
    fn record_invocation(
        &self,
        key: &str,
        id: &str,
        now: u64,
        messages: u64,
        recipients: u64,
    ) -> Option<redis::ScriptInvocation<'_>> {
        let (limits, ttl) = self.limits_and_ttl(key, false);
        let tag = self.keys.tag(key);
        let mut invocation = self.record_script.prepare_invoke();
        invocation
            .key(format!("{tag}applied"))
            .arg(now)
            .arg(ttl)
            .arg(id);
        let mut counted: Vec<(u64, Counting)> = Vec::with_capacity(limits.len());
        for limit in limits {
            let amount = limit.amount(messages, recipients).min(MAX_AMOUNT);
            let window = (limit.window_secs, limit.counts);
            if amount == 0 || counted.contains(&window) {
                continue;
            }
            counted.push(window);
            let [seconds, amounts] = KeyNames::window(&tag, limit);
            invocation
                .key(seconds)
                .key(amounts)
                .arg(limit.window_secs)
                .arg(amount);
        }
        (!counted.is_empty()).then_some(invocation)
    }

    async fn shared_record(
        &self,
        key: &str,
        id: &str,
        now: u64,
        messages: u64,
        recipients: u64,
    ) -> Result<(), StoreError> {
        let Some(invocation) = self.record_invocation(key, id, now, messages, recipients) else {
            return Ok(());
        };
        self.call(self.timeout, async |connection| {
            invocation.invoke_async(connection).await
        })
        .await
    }

    async fn shared_lock(&self, account: &str, now: u64) -> Result<(), StoreError> {
        let mut set = redis::cmd("SET");
        set.arg(self.keys.lock(account)).arg(now);
        self.call(self.timeout, async |connection| {
            set.query_async(connection).await
        })
        .await
    }

    /// Sends what the backlog holds, oldest first, then seeds Redis again
    /// if it lost its data; Redis counts as up once both are done (what came
    /// meanwhile goes at the next ping). What a failure kept from Redis goes
    /// back to the front.
    async fn replay(&self) {
        let mut replayed = 0usize;
        loop {
            let batch: Vec<Missed> = {
                let mut backlog = self.backlog();
                let take = backlog.entries.len().min(REPLAY_BATCH);
                backlog.entries.drain(..take).collect()
            };
            if batch.is_empty() {
                break;
            }
            let taken = batch.len();
            if let Err((e, unsent)) = self.replay_batch(batch).await {
                self.went_down(&e);
                let mut backlog = self.backlog();
                for missed in unsent.into_iter().rev() {
                    backlog.entries.push_front(missed);
                }
                return;
            }
            replayed += taken;
        }
        // Before counting as up, so that no decision reads windows Redis
        // lost and this server has not seeded yet.
        self.watch_epoch().await;
        let dropped = std::mem::take(&mut self.backlog().dropped);
        let was_up = self.up.swap(true, Ordering::SeqCst);
        self.metrics.redis_up.set(1);
        if !was_up {
            info!("Redis back: {replayed} counts replayed ({dropped} dropped when the backlog was full)");
        }
    }

    /// Notes Redis's epoch, setting one when there is none; when it changed
    /// since last read, Redis lost its data (restarted without persistence,
    /// flushed): seeds it again from this server's counts and locks.
    async fn watch_epoch(&self) {
        let mut exchange = redis::pipe();
        exchange
            .cmd("SET")
            .arg(self.keys.epoch())
            .arg(random_name())
            .arg("NX")
            .ignore()
            .get(self.keys.epoch());
        let current = match self
            .call(self.timeout, async |connection| {
                exchange.query_async::<(String,)>(connection).await
            })
            .await
        {
            Ok((current,)) => current,
            // The next decision notices an outage; try again next second.
            Err(e) => return debug!("cannot read Redis's epoch: {e}"),
        };
        let previous = self
            .epoch
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .replace(current.clone());
        if previous.is_none_or(|previous| previous == current) {
            return;
        }
        match self.reseed().await {
            Ok((keys, locks)) => {
                self.metrics.redis_reseeds.inc();
                warn!("Redis lost its data (restarted without persistence?): seeded it again with this server's counts of {keys} keys and {locks} locks");
            }
            Err(e) => {
                // Seen as new again next second, and seeded then.
                *self.epoch.lock().unwrap_or_else(|e| e.into_inner()) = None;
                warn!("Redis lost its data, and seeding it again failed (retried): {e}");
            }
        }
    }

    /// Writes this server's counts and locks into Redis where it holds less
    /// (see [`SEED_LUA`]); one pipeline per subject. How many keys and
    /// locks.
    async fn reseed(&self) -> Result<(usize, usize), StoreError> {
        let snapshot = self.local.snapshot();
        let connection = within(self.timeout, self.link.connection()).await?;
        let timeout = self.timeout.saturating_mul(10);
        let mut keys = 0;
        for key in &snapshot.keys {
            let tag = self.keys.tag(&key.key);
            let (_, ttl) = self.limits_and_ttl(&key.key, false);
            let mut pipe = redis::pipe();
            pipe.load_script(&self.seed_script).ignore();
            let mut windows = 0;
            for (limit, seconds) in key.windows.iter().filter(|(_, s)| !s.is_empty()) {
                let [held, amounts] = KeyNames::window(&tag, limit);
                let mut invocation = self.seed_script.prepare_invoke();
                invocation
                    .key(held)
                    .key(amounts)
                    .arg(snapshot.now)
                    .arg(ttl)
                    .arg(limit.window_secs);
                for (second, amount) in seconds {
                    invocation.arg(*second).arg(*amount);
                }
                pipe.invoke_script(&invocation).ignore();
                windows += 1;
            }
            if windows > 0 {
                let mut connection = connection.clone();
                within(timeout, pipe.query_async::<()>(&mut connection)).await?;
                keys += 1;
            }
        }
        for account in &snapshot.locked {
            let mut set = redis::cmd("SET");
            set.arg(self.keys.lock(account)).arg(snapshot.now).arg("NX");
            let mut connection = connection.clone();
            within(timeout, set.query_async::<()>(&mut connection)).await?;
        }
        Ok((keys, snapshot.locked.len()))
    }

    /// Replays `batch` as one pipeline per subject, all sent at once: a
    /// cluster takes a pipeline only when its keys share a slot, and a
    /// failure leaves out only the subjects it hit. On failure, their
    /// entries, each subject's in order.
    async fn replay_batch(&self, batch: Vec<Missed>) -> Result<(), (StoreError, Vec<Missed>)> {
        let connection = match within(self.timeout, self.link.connection()).await {
            Ok(connection) => connection,
            Err(e) => return Err((e, batch)),
        };
        let mut subjects: Vec<Vec<Missed>> = Vec::new();
        let mut index: HashMap<String, usize> = HashMap::new();
        for missed in batch {
            let at = *index
                .entry(self.keys.tag(missed.subject()))
                .or_insert_with(|| {
                    subjects.push(Vec::new());
                    subjects.len() - 1
                });
            subjects[at].push(missed);
        }
        // A pipeline may take longer than one decision.
        let timeout = self.timeout.saturating_mul(10);
        let mut sends = JoinSet::new();
        for entries in subjects {
            let Some(pipe) = self.replay_pipe(&entries) else {
                continue;
            };
            let mut connection = connection.clone();
            sends.spawn(async move {
                let sent = within(timeout, pipe.query_async::<()>(&mut connection)).await;
                (entries, sent)
            });
        }
        let mut failed = None;
        let mut unsent = Vec::new();
        while let Some(done) = sends.join_next().await {
            match done {
                Ok((_, Ok(()))) => {}
                Ok((entries, Err(e))) => {
                    failed.get_or_insert(e);
                    unsent.extend(entries);
                }
                // Only a panic in the redis crate ends a send this way.
                Err(e) => warn!("a replay failed, its counts are lost: {e}"),
            }
        }
        match failed {
            None => Ok(()),
            Some(e) => Err((e, unsent)),
        }
    }

    /// The pipeline replaying one subject's entries, or `None` when they
    /// count nothing (allow-listed, no limits).
    fn replay_pipe(&self, entries: &[Missed]) -> Option<redis::Pipeline> {
        let mut pipe = redis::pipe();
        // The script is not in a Redis (or a node) that restarted empty.
        pipe.load_script(&self.record_script).ignore();
        let mut commands = 0usize;
        for missed in entries {
            match missed {
                Missed::Counted {
                    key,
                    id,
                    now,
                    messages,
                    recipients,
                } => {
                    if let Some(invocation) =
                        self.record_invocation(key, id, *now, *messages, *recipients)
                    {
                        pipe.invoke_script(&invocation).ignore();
                        commands += 1;
                    }
                }
                Missed::Locked { account, now } => {
                    pipe.set(self.keys.lock(account), *now).ignore();
                    commands += 1;
                }
            }
        }
        (commands > 0).then_some(pipe)
    }
}

/// Pings Redis every second while it is down (or a straggler waits in the
/// backlog) and replays the backlog when it answers.
async fn resync_loop(shared: Weak<Shared>) {
    let mut ticks = tokio::time::interval(PING_EVERY);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        let Some(shared) = shared.upgrade() else {
            return;
        };
        if shared.is_up() && shared.backlog().entries.is_empty() {
            shared.watch_epoch().await;
        } else if shared.ping().await.is_ok() {
            // After the replay, the seed only raises what is short of ours.
            shared.replay().await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_names_escape_delimiters_and_share_the_hash_tag() {
        let keys = KeyNames {
            prefix: escaped("mf"),
        };
        assert_eq!(
            keys.lock("Alice@Example.com"),
            "mf:{alice@example.com}:lock"
        );
        assert_eq!(keys.ips("a}b"), "mf:{a%7Db}:ips");
        assert_eq!(keys.tag("x:y"), "mf:{x%3Ay}:");
        assert_eq!(keys.tag("{%}"), "mf:{%7B%25%7D}:");
        assert_eq!(keys.tag(""), "mf:{%}:");
        assert_ne!(keys.tag(""), keys.tag("%"));
        // A name spelling another's escape stays distinct from it.
        assert_ne!(keys.tag("a%7Db"), keys.tag("a}b"));
        let limit = Limit {
            window_secs: 60,
            max: 1,
            counts: Counting::Recipients,
        };
        assert_eq!(
            KeyNames::window(&keys.tag("ü"), &limit),
            [
                "mf:{ü}:recipients:60:seconds".to_string(),
                "mf:{ü}:recipients:60:amounts".to_string()
            ]
        );
        assert_eq!(escaped("a{b"), "a%7Bb");
    }

    /// What a Redis Cluster hashes: the text between the first `{` and the
    /// next `}` when it is not empty, else the whole name.
    fn hashed(name: &str) -> &str {
        let Some(open) = name.find('{') else {
            return name;
        };
        match name[open + 1..].find('}') {
            Some(0) | None => name,
            Some(len) => &name[open + 1..open + 1 + len],
        }
    }

    #[test]
    fn every_key_of_a_subject_hashes_to_its_one_slot() {
        let keys = KeyNames {
            prefix: escaped("a{b}c"),
        };
        let limit = Limit {
            window_secs: 3_600,
            max: 1,
            counts: Counting::Messages,
        };
        for subject in [
            "alice@example.com",
            "",
            "{",
            "}",
            "{}",
            "}{",
            "a:b",
            "%",
            "ü",
        ] {
            let tag = keys.tag(subject);
            let [seconds, amounts] = KeyNames::window(&tag, &limit);
            let names = [keys.lock(subject), keys.ips(subject), seconds, amounts];
            let expected = hashed(&names[0]);
            assert_ne!(expected, names[0], "{subject:?}: no hash tag");
            for name in &names {
                assert_eq!(hashed(name), expected, "{subject:?}: {name}");
            }
        }
        assert_ne!(hashed(&keys.lock("a")), hashed(&keys.lock("b")));
    }
}
