//! The sockets: TCP and unix listeners, one task per Postfix connection,
//! kept open across requests (Postfix reuses them).
//!
//! A connection reads what arrives, answers every complete request in it
//! (pipelined requests get their replies in one write) and waits for more.
//! A malformed or oversize request closes the connection without a reply, as
//! the protocol asks: Postfix then logs it and applies its `default_action`.
//!
//! Under abuse nothing waits: a connection past `max_connections`, or past
//! `max_connections_per_peer` from one IP, is closed as soon as it is
//! accepted; a request not whole within `request_timeout` of its first byte
//! closes its connection, however the bytes trickle in.

use std::collections::HashMap;
use std::future::Future;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpSocket, UnixListener};
use tokio::sync::Semaphore;
use tokio::time::Instant;
use tracing::{debug, info, warn};

use crate::decide::{Policy, Session};
use crate::protocol::{encode_into, RequestReader};

/// Bytes read from a socket at once: a request is a few hundred bytes.
const READ_CHUNK: usize = 2_048;

/// Connections the kernel queues for a TCP listener before they are
/// accepted (capped by `net.core.somaxconn`): a burst of Postfix processes
/// connecting at once waits there instead of being refused.
const LISTEN_BACKLOG: u32 = 4_096;

/// Where to listen, as written in the configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Address {
    /// `IP:PORT` (`127.0.0.1:10040`, `[::1]:10040`): Postfix's
    /// `check_policy_service inet:127.0.0.1:10040`.
    Tcp(std::net::SocketAddr),
    /// `unix:/path`: a unix socket, for `check_policy_service unix:…`; under
    /// the queue directory (`/var/spool/postfix/…`) when smtpd runs chrooted.
    Unix(PathBuf),
}

impl std::str::FromStr for Address {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        if let Some(path) = text.strip_prefix("unix:") {
            if path.is_empty() {
                return Err("unix: needs a socket path (unix:/path/to/socket)".into());
            }
            return Ok(Address::Unix(PathBuf::from(path)));
        }
        text.parse().map(Address::Tcp).map_err(|_| {
            format!(
                "invalid listen address {text:?}: expected IP:PORT (127.0.0.1:10040) or unix:/path"
            )
        })
    }
}

impl std::fmt::Display for Address {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Address::Tcp(address) => write!(f, "{address}"),
            Address::Unix(path) => write!(f, "unix:{}", path.display()),
        }
    }
}

/// A bound socket.
pub enum Listener {
    /// A bound TCP socket.
    Tcp(TcpListener),
    /// A bound unix socket and its path (what [`Listener::local_address`]
    /// reports).
    Unix(UnixListener, PathBuf),
}

impl Listener {
    /// Binds `address`; a unix socket left by a previous run is replaced,
    /// and the new one is made readable and writable by its group (give it
    /// Postfix's group).
    pub async fn bind(address: &Address) -> io::Result<Listener> {
        match address {
            Address::Tcp(address) => Ok(Listener::Tcp(bind_tcp(*address)?)),
            Address::Unix(path) => {
                match std::fs::remove_file(path) {
                    Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
                    _ => {}
                }
                let listener = UnixListener::bind(path)?;
                use std::os::unix::fs::PermissionsExt;
                std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o660))?;
                Ok(Listener::Unix(listener, path.clone()))
            }
        }
    }

    /// The address really bound (the port chosen for `:0`).
    pub fn local_address(&self) -> io::Result<Address> {
        match self {
            Listener::Tcp(listener) => listener.local_addr().map(Address::Tcp),
            Listener::Unix(_, path) => Ok(Address::Unix(path.clone())),
        }
    }
}

/// A TCP listener on `address` with a [`LISTEN_BACKLOG`] queue.
fn bind_tcp(address: SocketAddr) -> io::Result<TcpListener> {
    let socket = match address {
        SocketAddr::V4(_) => TcpSocket::new_v4()?,
        SocketAddr::V6(_) => TcpSocket::new_v6()?,
    };
    // As std and tokio bind: a restart does not wait out TIME_WAIT.
    socket.set_reuseaddr(true)?;
    socket.bind(address)?;
    socket.listen(LISTEN_BACKLOG)
}

/// How connections are served.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Longest request, in bytes, counting line ends and the final empty
    /// line: a longer one closes the connection without a reply, so a peer
    /// cannot make the reader grow (`policy.max_request_bytes`).
    pub max_request_bytes: usize,
    /// Connections served at once, over every listener: one more is closed
    /// at once and counted in `refused_connections` (`policy.max_connections`).
    pub max_connections: usize,
    /// Connections served at once from one IP address; one more from it is
    /// closed at once and counted in `refused_connections`
    /// (`policy.max_connections_per_peer`; unix sockets are not capped).
    pub max_connections_per_peer: usize,
    /// A connection with nothing to read between requests for this long is
    /// closed; Postfix reconnects when it next asks (`policy.idle_timeout`).
    pub idle_timeout: Duration,
    /// A request not whole this long after its first byte closes the
    /// connection (`policy.request_timeout`).
    pub request_timeout: Duration,
}

/// Connections open per peer IP, for `max_connections_per_peer`.
#[derive(Default)]
struct Peers {
    open: Mutex<HashMap<IpAddr, usize>>,
}

/// One connection's place in [`Peers`], given back when dropped.
struct PeerSlot {
    peers: Arc<Peers>,
    ip: IpAddr,
}

impl Peers {
    /// A place for one more connection from `ip`, unless `max` are open.
    fn enter(self: &Arc<Self>, ip: IpAddr, max: usize) -> Option<PeerSlot> {
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        let count = open.entry(ip).or_insert(0);
        if *count >= max {
            return None;
        }
        *count += 1;
        Some(PeerSlot {
            peers: self.clone(),
            ip,
        })
    }
}

impl Drop for PeerSlot {
    fn drop(&mut self) {
        let mut open = self.peers.open.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(count) = open.get_mut(&self.ip) {
            *count -= 1;
            if *count == 0 {
                open.remove(&self.ip);
            }
        }
    }
}

/// Serves `listeners` until `shutdown` completes.
pub async fn serve(
    listeners: Vec<Listener>,
    policy: Arc<Policy>,
    limits: Limits,
    shutdown: impl Future<Output = ()>,
) {
    let slots = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let peers = Arc::new(Peers::default());
    let mut tasks = tokio::task::JoinSet::new();
    for listener in listeners {
        tasks.spawn(accept_loop(
            listener,
            policy.clone(),
            limits,
            slots.clone(),
            peers.clone(),
        ));
    }
    shutdown.await;
    tasks.shutdown().await;
}

async fn accept_loop(
    listener: Listener,
    policy: Arc<Policy>,
    limits: Limits,
    slots: Arc<Semaphore>,
    peers: Arc<Peers>,
) {
    let name = listener
        .local_address()
        .map_or_else(|_| "?".to_string(), |a| a.to_string());
    info!("policy service listening on {name}");
    loop {
        let accepted = match &listener {
            Listener::Tcp(listener) => listener.accept().await.map(|(stream, peer)| {
                let _ = stream.set_nodelay(true);
                (Stream::Tcp(stream), peer.to_string(), Some(peer.ip()))
            }),
            Listener::Unix(listener, _) => listener
                .accept()
                .await
                .map(|(stream, _)| (Stream::Unix(stream), "unix".to_string(), None)),
        };
        let (stream, peer, ip) = match accepted {
            Ok(accepted) => accepted,
            Err(e) => {
                // Out of descriptors, usually: wait rather than spin.
                warn!("cannot accept on {name}: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            policy.metrics().refused_connections.inc();
            warn!(
                peer,
                "{} connections open (policy.max_connections): closing this one",
                limits.max_connections
            );
            continue;
        };
        let peer_slot = match ip {
            Some(ip) => match peers.enter(ip, limits.max_connections_per_peer) {
                Some(peer_slot) => Some(peer_slot),
                None => {
                    policy.metrics().refused_connections.inc();
                    warn!(
                        peer,
                        "{} connections open from {ip} (policy.max_connections_per_peer): closing this one",
                        limits.max_connections_per_peer
                    );
                    continue;
                }
            },
            None => None,
        };
        let policy = policy.clone();
        tokio::spawn(async move {
            policy.metrics().connections.inc();
            let result = match stream {
                Stream::Tcp(stream) => connection(stream, &policy, limits, &peer).await,
                Stream::Unix(stream) => connection(stream, &policy, limits, &peer).await,
            };
            if let Err(e) = result {
                debug!(peer, "connection ended: {e}");
            }
            policy.metrics().connections.dec();
            drop((slot, peer_slot));
        });
    }
}

enum Stream {
    Tcp(tokio::net::TcpStream),
    Unix(tokio::net::UnixStream),
}

/// Serves one Postfix connection until it closes, idles out, takes too
/// long over a request or errs.
async fn connection<S: AsyncRead + AsyncWrite + Unpin>(
    mut stream: S,
    policy: &Policy,
    limits: Limits,
    peer: &str,
) -> io::Result<()> {
    let mut reader = RequestReader::new(limits.max_request_bytes);
    let mut session = Session::default();
    let mut chunk = [0u8; READ_CHUNK];
    let mut replies = Vec::new();
    // When the request being received must be whole: set by its first
    // byte, never pushed back by the next ones.
    let mut request_deadline: Option<Instant> = None;
    loop {
        let deadline = match request_deadline {
            Some(deadline) => deadline,
            None => Instant::now() + limits.idle_timeout,
        };
        let read = tokio::time::timeout_at(deadline, stream.read(&mut chunk)).await;
        let n = match read {
            Err(_) if request_deadline.is_some() => {
                policy.metrics().protocol_errors.inc();
                warn!(
                    peer,
                    "request not whole within {:?} of its first byte (policy.request_timeout): closing the connection without a reply",
                    limits.request_timeout
                );
                return Ok(());
            }
            Err(_) => {
                debug!(peer, "idle for {:?}: closing", limits.idle_timeout);
                return Ok(());
            }
            Ok(read) => read?,
        };
        let Some(bytes) = chunk.get(..n).filter(|bytes| !bytes.is_empty()) else {
            return Ok(());
        };
        reader.feed(bytes);
        // A request that ended here ends its deadline too.
        let mut finished = false;
        loop {
            match reader.next_request() {
                Ok(Some(request)) => {
                    finished = true;
                    let action = policy.decide(&request, &mut session).await;
                    encode_into(&action, &mut replies);
                }
                Ok(None) => break,
                Err(e) => {
                    policy.metrics().protocol_errors.inc();
                    warn!(peer, "{e}: closing the connection without a reply");
                    // Answers to the requests before the bad one still go.
                    stream.write_all(&replies).await?;
                    return Ok(());
                }
            }
        }
        request_deadline = match (reader.is_mid_request(), request_deadline) {
            (false, _) => None,
            (true, Some(deadline)) if !finished => Some(deadline),
            (true, _) => Some(Instant::now() + limits.request_timeout),
        };
        if !replies.is_empty() {
            stream.write_all(&replies).await?;
            replies.clear();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_parse() {
        assert_eq!(
            "127.0.0.1:10040".parse::<Address>().unwrap(),
            Address::Tcp("127.0.0.1:10040".parse().unwrap())
        );
        assert_eq!(
            "[::1]:10040".parse::<Address>().unwrap().to_string(),
            "[::1]:10040"
        );
        assert_eq!(
            "unix:/run/mailfuse/policy".parse::<Address>().unwrap(),
            Address::Unix(PathBuf::from("/run/mailfuse/policy"))
        );
        for bad in ["", "unix:", "localhost:10040", "127.0.0.1", "10040"] {
            assert!(bad.parse::<Address>().is_err(), "{bad}");
        }
    }
}
