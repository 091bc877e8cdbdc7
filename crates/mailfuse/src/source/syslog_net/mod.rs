//! Syslog over the network: mail servers send their logs to `watch` over
//! UDP (one datagram, one message), TCP (RFC 6587 framing: octet counting
//! or newlines, per frame) or TLS (RFC 5425).
//!
//! Each listener runs on threads of its own (one per connection) that cut
//! messages out of the bytes and hand them, a read's worth at a time, to
//! the watch loop through one bounded channel: when the loop is behind, a
//! TCP sender waits (its socket buffer fills, so it slows down) and a UDP
//! datagram is dropped and counted. Peers outside `allow` are refused and
//! counted. What a message means (its host, its format) is read on the
//! watch loop, by `header` and the per-host parsers of `watch/syslog.rs`.

mod frame;
pub mod header;
pub mod tls;

use std::io::{ErrorKind, Read};
use std::net::{IpAddr, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender, TrySendError};
use std::sync::Arc;

use anyhow::{Context, Result};
use mailfuse_core::net::Cidr;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use tracing::{debug, info, warn};

use crate::config::SyslogConfig;
use crate::hint::cannot_listen;
use crate::source::lines::DEFAULT_MAX_LINE;
use frame::{Frame, Framer};

/// Batches waiting for the watch loop; with a batch at most one read (64
/// KiB) of messages, the channel holds a few MiB at most.
const QUEUE_BATCHES: usize = 64;

/// Bytes read from a connection at a time.
const READ_BYTES: usize = 64 * 1024;

/// Messages of one read (TCP) or a run of datagrams (UDP), from one peer.
#[derive(Debug, Default)]
pub struct Batch {
    /// Which listener received it (the index in [`Listeners::names`]).
    pub listener: usize,
    /// The peer's address: the host, for messages whose header names none.
    pub peer: Option<IpAddr>,
    bytes: Vec<u8>,
    ends: Vec<usize>,
}

impl Batch {
    fn push(&mut self, message: &[u8]) {
        self.bytes.extend_from_slice(message);
        self.ends.push(self.bytes.len());
    }

    fn len(&self) -> usize {
        self.ends.len()
    }

    /// The messages, in the order they came.
    pub fn messages(&self) -> impl Iterator<Item = &[u8]> {
        let starts = std::iter::once(0).chain(self.ends.iter().copied());
        starts
            .zip(self.ends.iter().copied())
            .map(|(start, end)| self.bytes.get(start..end).unwrap_or_default())
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ListenerLabel {
    listener: String,
}

/// What the listeners count, by listener (`tcp 0.0.0.0:514`).
#[derive(Clone, Debug, Default)]
pub struct SyslogMetrics {
    messages: Family<ListenerLabel, Counter>,
    too_long: Family<ListenerLabel, Counter>,
    bad_frames: Family<ListenerLabel, Counter>,
    refused: Family<ListenerLabel, Counter>,
    dropped: Family<ListenerLabel, Counter>,
    connections: Family<ListenerLabel, Gauge>,
}

impl SyslogMetrics {
    /// Adds these metrics to `registry`.
    pub fn register(&self, registry: &mut Registry) {
        let families = [
            ("syslog_messages", "Syslog messages received", &self.messages),
            (
                "syslog_too_long",
                "Syslog messages skipped as longer than a line may be",
                &self.too_long,
            ),
            (
                "syslog_bad_frames",
                "Syslog frames cut short by their connection's end",
                &self.bad_frames,
            ),
            (
                "syslog_refused",
                "Syslog peers refused: outside [watch.syslog] allow, or past max_connections",
                &self.refused,
            ),
            (
                "syslog_dropped",
                "Syslog messages dropped: datagrams while watch was behind, or from hosts past the cap",
                &self.dropped,
            ),
        ];
        for (name, help, family) in families {
            registry.register(name, help, family.clone());
        }
        registry.register(
            "syslog_connections",
            "Syslog TCP and TLS connections open",
            self.connections.clone(),
        );
    }

    /// The counters of listener `name`, resolved once.
    pub fn of(&self, name: &str) -> ListenerCounters {
        let label = ListenerLabel {
            listener: name.to_string(),
        };
        ListenerCounters {
            messages: self.messages.get_or_create(&label).clone(),
            too_long: self.too_long.get_or_create(&label).clone(),
            bad_frames: self.bad_frames.get_or_create(&label).clone(),
            refused: self.refused.get_or_create(&label).clone(),
            dropped: self.dropped.get_or_create(&label).clone(),
            connections: self.connections.get_or_create(&label).clone(),
        }
    }
}

/// One listener's counters.
#[derive(Clone, Debug)]
pub struct ListenerCounters {
    messages: Counter,
    too_long: Counter,
    bad_frames: Counter,
    refused: Counter,
    /// Messages dropped (also by the watch loop: hosts past its cap).
    pub dropped: Counter,
    connections: Gauge,
}

impl ListenerCounters {
    fn frame(&self, frame: Frame<'_>, batch: &mut Batch) {
        match frame {
            Frame::Message(message) => {
                self.messages.inc();
                batch.push(message);
            }
            Frame::TooLong => {
                self.too_long.inc();
            }
            Frame::Truncated => {
                self.bad_frames.inc();
            }
        }
    }
}

/// The running listeners.
pub struct Listeners {
    /// Where their messages come out.
    pub receiver: Receiver<Batch>,
    /// Each listener's name (`udp 127.0.0.1:514`), by index.
    pub names: Vec<String>,
}

/// What every thread of the listeners shares.
struct Shared {
    allow: Vec<Cidr>,
    max_connections: usize,
    open: AtomicUsize,
    sender: SyncSender<Batch>,
}

impl Shared {
    fn allows(&self, peer: IpAddr) -> bool {
        let peer = match peer {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(peer, IpAddr::V4),
            v4 => v4,
        };
        self.allow.iter().any(|cidr| cidr.contains(peer))
    }
}

/// Binds every configured address and starts serving; the threads run
/// until the process ends.
pub fn start(config: &SyslogConfig, metrics: &SyslogMetrics) -> Result<Listeners> {
    let (sender, receiver) = sync_channel(QUEUE_BATCHES);
    let shared = Arc::new(Shared {
        allow: config.allow.clone(),
        max_connections: config.max_connections,
        open: AtomicUsize::new(0),
        sender,
    });
    let mut names = Vec::new();
    for &address in &config.udp {
        let socket = UdpSocket::bind(address)
            .map_err(|e| cannot_listen(&e, "syslog over udp", address, "watch.syslog.udp"))?;
        let name = format!("udp {}", socket.local_addr().unwrap_or(address));
        let counters = metrics.of(&name);
        let (shared, listener) = (Arc::clone(&shared), names.len());
        spawn(&name, move || {
            receive_udp(&socket, listener, &counters, &shared)
        })?;
        names.push(name);
    }
    let tls = match (&config.tls_config, config.tls.is_empty()) {
        (None, false) => anyhow::bail!("watch.syslog.tls needs tls_certificate and tls_key"),
        (tls, _) => tls.clone(),
    };
    let streams = config.tcp.iter().map(|a| (a, None));
    let secure = config.tls.iter().map(|a| (a, tls.clone()));
    for (&address, tls) in streams.chain(secure) {
        let kind = if tls.is_some() { "tls" } else { "tcp" };
        let socket = TcpListener::bind(address).map_err(|e| {
            cannot_listen(
                &e,
                &format!("syslog over {kind}"),
                address,
                &format!("watch.syslog.{kind}"),
            )
        })?;
        let name = format!("{kind} {}", socket.local_addr().unwrap_or(address));
        let counters = metrics.of(&name);
        let (shared, listener) = (Arc::clone(&shared), names.len());
        spawn(&name, move || {
            accept(&socket, listener, tls.as_ref(), &counters, &shared)
        })?;
        names.push(name);
    }
    for name in &names {
        info!(listener = %name, "receiving syslog");
    }
    Ok(Listeners { receiver, names })
}

fn spawn(name: &str, body: impl FnOnce() + Send + 'static) -> Result<()> {
    std::thread::Builder::new()
        .name(format!("syslog {name}"))
        .spawn(body)
        .with_context(|| format!("cannot start a thread for {name}"))?;
    Ok(())
}

/// Receives datagrams: each is one message. After a datagram, those
/// already waiting are taken too, into one batch.
fn receive_udp(socket: &UdpSocket, listener: usize, counters: &ListenerCounters, shared: &Shared) {
    // A datagram is at most 64 KiB; one byte more tells a longer line.
    let mut buf = vec![0u8; 65_536];
    let mut batch = Batch {
        listener,
        ..Batch::default()
    };
    let mut nonblocking = false;
    loop {
        // Wait for a datagram when none is held; else take those there.
        let waiting = batch.len() > 0;
        if waiting != nonblocking && socket.set_nonblocking(waiting).is_ok() {
            nonblocking = waiting;
        }
        let (len, from) = match socket.recv_from(&mut buf) {
            Ok(received) => received,
            Err(e) => {
                if e.kind() != ErrorKind::WouldBlock {
                    warn!("syslog over UDP: {e}");
                    // Whatever it is, not in a busy loop.
                    std::thread::sleep(std::time::Duration::from_millis(100));
                }
                send_datagrams(&mut batch, counters, shared);
                continue;
            }
        };
        if !shared.allows(from.ip()) {
            counters.refused.inc();
            continue;
        }
        // One batch per peer: the peer names the host of header-less messages.
        if batch.peer.is_some_and(|peer| peer != from.ip()) {
            send_datagrams(&mut batch, counters, shared);
        }
        batch.peer = Some(from.ip());
        let datagram = buf.get(..len).unwrap_or_default();
        let message = datagram.strip_suffix(b"\n").unwrap_or(datagram);
        if message.len() > DEFAULT_MAX_LINE {
            counters.too_long.inc();
        } else if !message.is_empty() {
            counters.frame(Frame::Message(message), &mut batch);
        }
        if batch.bytes.len() >= READ_BYTES {
            send_datagrams(&mut batch, counters, shared);
        }
    }
}

/// Hands the datagrams held to the loop, or drops them if it is behind.
fn send_datagrams(batch: &mut Batch, counters: &ListenerCounters, shared: &Shared) {
    if batch.len() == 0 {
        return;
    }
    let next = Batch {
        listener: batch.listener,
        ..Batch::default()
    };
    if let Err(TrySendError::Full(dropped)) = shared.sender.try_send(std::mem::replace(batch, next))
    {
        counters.dropped.inc_by(dropped.len() as u64);
    }
}

/// Accepts connections, each served on a thread of its own.
fn accept(
    socket: &TcpListener,
    listener: usize,
    tls: Option<&Arc<rustls::ServerConfig>>,
    counters: &ListenerCounters,
    shared: &Arc<Shared>,
) {
    for stream in socket.incoming() {
        let stream = match stream {
            Ok(stream) => stream,
            // A peer gone before it was accepted.
            Err(e) if e.kind() == ErrorKind::ConnectionAborted => continue,
            Err(e) => {
                // Out of file descriptors, most likely: not in a busy loop.
                warn!("syslog accept: {e} (is watch's open file limit too low?)");
                std::thread::sleep(std::time::Duration::from_millis(100));
                continue;
            }
        };
        let Ok(peer) = stream.peer_addr() else {
            continue;
        };
        if !shared.allows(peer.ip()) {
            counters.refused.inc();
            debug!(%peer, "syslog peer refused: not in [watch.syslog] allow");
            continue;
        }
        if shared.open.fetch_add(1, Ordering::AcqRel) >= shared.max_connections {
            shared.open.fetch_sub(1, Ordering::AcqRel);
            counters.refused.inc();
            warn!(%peer, "syslog connection refused: max_connections reached");
            continue;
        }
        let (shared, counters, tls) = (Arc::clone(shared), counters.clone(), tls.cloned());
        let served = spawn(&format!("from {peer}"), move || {
            counters.connections.inc();
            let done = serve(stream, peer, listener, tls, &counters, &shared);
            if let Err(e) = done {
                debug!(%peer, "syslog connection ended: {e}");
            }
            counters.connections.dec();
            shared.open.fetch_sub(1, Ordering::AcqRel);
        });
        if let Err(e) = served {
            warn!("{e:#}");
        }
    }
}

/// Reads one connection to its end.
fn serve(
    stream: TcpStream,
    peer: SocketAddr,
    listener: usize,
    tls: Option<Arc<rustls::ServerConfig>>,
    counters: &ListenerCounters,
    shared: &Shared,
) -> std::io::Result<()> {
    match tls {
        None => read_frames(stream, peer, listener, counters, shared),
        Some(config) => {
            let connection = rustls::ServerConnection::new(config)
                .map_err(|e| std::io::Error::new(ErrorKind::InvalidData, e))?;
            let stream = rustls::StreamOwned::new(connection, stream);
            read_frames(stream, peer, listener, counters, shared)
        }
    }
}

/// Cuts `reader`'s bytes into messages, a read's worth to a batch; waits
/// while the loop is behind.
fn read_frames(
    mut reader: impl Read,
    peer: SocketAddr,
    listener: usize,
    counters: &ListenerCounters,
    shared: &Shared,
) -> std::io::Result<()> {
    let mut framer = Framer::new(DEFAULT_MAX_LINE);
    let mut buf = vec![0u8; READ_BYTES];
    let new_batch = || Batch {
        listener,
        peer: Some(peer.ip()),
        ..Batch::default()
    };
    loop {
        let mut batch = new_batch();
        let read = match reader.read(&mut buf) {
            Ok(0) => None,
            Ok(n) => Some(n),
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            // A TLS peer that closes without close_notify ends like any.
            Err(e) if e.kind() == ErrorKind::UnexpectedEof => None,
            Err(e) => {
                framer.finish(&mut |frame| counters.frame(frame, &mut batch));
                let _ = send(batch, shared);
                return Err(e);
            }
        };
        match read {
            Some(n) => framer.feed(buf.get(..n).unwrap_or_default(), &mut |frame| {
                counters.frame(frame, &mut batch)
            }),
            None => framer.finish(&mut |frame| counters.frame(frame, &mut batch)),
        }
        if !send(batch, shared) || read.is_none() {
            return Ok(());
        }
    }
}

/// Hands a batch to the loop, waiting while it is behind; false once watch
/// is gone.
fn send(batch: Batch, shared: &Shared) -> bool {
    batch.len() == 0 || shared.sender.send(batch).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_batch_gives_back_its_messages_in_order() {
        let mut batch = Batch::default();
        for message in [&b"<13>a"[..], b"", b"<14>bc"] {
            batch.push(message);
        }
        let messages: Vec<&[u8]> = batch.messages().collect();
        assert_eq!(messages, [&b"<13>a"[..], b"", b"<14>bc"]);
    }

    #[test]
    fn datagrams_are_dropped_and_counted_while_the_loop_is_behind() {
        let (sender, receiver) = sync_channel(1);
        let shared = Shared {
            allow: Vec::new(),
            max_connections: 1,
            open: AtomicUsize::new(0),
            sender,
        };
        let counters = SyslogMetrics::default().of("udp test");
        let mut batch = Batch::default();
        for round in 0..2 {
            batch.push(b"<13>a");
            batch.push(b"<13>b");
            send_datagrams(&mut batch, &counters, &shared);
            assert_eq!(batch.len(), 0, "round {round}: the batch is handed on");
        }
        assert_eq!(counters.dropped.get(), 2, "the second batch found no room");
        assert_eq!(receiver.try_recv().map(|b| b.len()).ok(), Some(2));
        batch.push(b"<13>c");
        send_datagrams(&mut batch, &counters, &shared);
        assert_eq!(counters.dropped.get(), 2, "room again");
    }

    #[test]
    fn peers_outside_allow_are_refused_ipv4_mapped_as_ipv4() {
        let (sender, _receiver) = sync_channel(1);
        let shared = Shared {
            allow: vec![
                "127.0.0.0/8".parse().unwrap(),
                "10.1.0.0/16".parse().unwrap(),
            ],
            max_connections: 1,
            open: AtomicUsize::new(0),
            sender,
        };
        for (peer, allowed) in [
            ("127.0.0.1", true),
            ("10.1.2.3", true),
            ("::ffff:10.1.2.3", true),
            ("10.2.0.1", false),
            ("::1", false),
            ("192.0.2.1", false),
        ] {
            assert_eq!(shared.allows(peer.parse().unwrap()), allowed, "{peer}");
        }
    }
}
