//! Mail servers sending their logs to `watch` over syslog: each sending
//! host is read like one followed file, by its reader in `readers.rs`, its
//! lines under its own host id. Messages are handed out as they come, not
//! merged by time with the files or the other hosts.

use std::time::Duration;

use anyhow::Result;
use mailfuse_formats::{Format, LocalZone};

use super::inbox::Inbox;
use super::readers::{HostReaders, OnHostEvent};
use crate::config::SyslogConfig;
use crate::metrics::WatchMetrics;
use crate::source::syslog_net::header::{self, Form};
use crate::source::syslog_net::{self, Batch, ListenerCounters};

/// The listeners' messages.
pub struct Remote {
    inbox: Inbox<Batch>,
    /// Each listener's counters, by index (to count dropped messages).
    listeners: Vec<ListenerCounters>,
    /// Where RFC 5424 lines are put back in the file layout.
    scratch: Vec<u8>,
}

impl Remote {
    /// Starts the configured listeners.
    pub fn start(config: &SyslogConfig, metrics: &WatchMetrics) -> Result<Remote> {
        let listeners = syslog_net::start(config, &metrics.syslog)?;
        Ok(Remote {
            inbox: Inbox::new(listeners.receiver),
            listeners: listeners
                .names
                .iter()
                .map(|name| metrics.syslog.of(name))
                .collect(),
            scratch: Vec::new(),
        })
    }

    /// Waits up to `timeout` for messages: watch's pause between polls,
    /// cut short when a sender has something.
    pub fn wait(&mut self, timeout: Duration) {
        self.inbox.wait(timeout);
    }

    /// Hands out the messages received so far, each read by its host's
    /// reader in `readers`.
    pub fn poll(
        &mut self,
        readers: &mut HostReaders,
        zone: &LocalZone,
        metrics: &WatchMetrics,
        on_event: &mut OnHostEvent<'_>,
    ) {
        for batch in self.inbox.take() {
            self.read(&batch, readers, zone, metrics, on_event);
        }
    }

    fn read(
        &mut self,
        batch: &Batch,
        readers: &mut HostReaders,
        zone: &LocalZone,
        metrics: &WatchMetrics,
        on_event: &mut OnHostEvent<'_>,
    ) {
        let peer = batch.peer.map(|p| p.to_string()).unwrap_or_default();
        for message in batch.messages() {
            let header = header::parse(message);
            let name = header.host.unwrap_or(peer.as_bytes());
            let Some(host) = readers.reader(name) else {
                if let Some(counters) = self.listeners.get(batch.listener) {
                    counters.dropped.inc();
                }
                continue;
            };
            let kerio = match (host.format(), header.form) {
                (Some(format), _) => format == Format::Kerio,
                (None, Form::Rfc5424 { whole, .. }) => Format::Kerio.recognizes(whole),
                (None, Form::File(_)) => false,
            };
            let line = header.form.line(kerio, &mut self.scratch);
            host.read(line, zone, metrics, on_event);
        }
    }
}
