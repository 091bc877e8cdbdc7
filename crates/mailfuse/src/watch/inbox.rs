//! A channel the watch loop waits on between its polls (syslog listeners,
//! the journal's reader): the wait ends as soon as something comes, and
//! what came waits for the next poll.

use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::Duration;

/// Batches handed out per poll at most, so saves still come while a
/// source keeps the channel full.
const BATCHES_PER_POLL: usize = 256;

/// The receiving end, with a batch that came while waiting.
pub struct Inbox<T> {
    receiver: Receiver<T>,
    held: Option<T>,
}

impl<T> Inbox<T> {
    pub fn new(receiver: Receiver<T>) -> Inbox<T> {
        Inbox {
            receiver,
            held: None,
        }
    }

    /// Waits up to `timeout` for a batch: watch's pause between polls, cut
    /// short when one comes.
    pub fn wait(&mut self, timeout: Duration) {
        if self.held.is_some() {
            return;
        }
        match self.receiver.recv_timeout(timeout) {
            Ok(batch) => self.held = Some(batch),
            Err(RecvTimeoutError::Timeout) => {}
            // The senders are gone (they end only with the process).
            Err(RecvTimeoutError::Disconnected) => std::thread::sleep(timeout),
        }
    }

    /// The batches that came, in order, at most [`BATCHES_PER_POLL`].
    pub fn take(&mut self) -> Vec<T> {
        let held = self.held.take();
        let waiting = std::iter::from_fn(|| self.receiver.try_recv().ok());
        held.into_iter()
            .chain(waiting)
            .take(BATCHES_PER_POLL)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_batch_held_while_waiting_comes_first_and_a_poll_takes_a_bounded_number() {
        let (sender, receiver) = std::sync::mpsc::channel();
        let mut inbox = Inbox::new(receiver);
        inbox.wait(Duration::from_millis(1));
        assert!(inbox.take().is_empty());
        for batch in 0..300 {
            sender.send(batch).unwrap();
        }
        inbox.wait(Duration::from_secs(1));
        let first = inbox.take();
        assert_eq!(first.len(), BATCHES_PER_POLL);
        assert_eq!(first.first(), Some(&0));
        assert_eq!(inbox.take(), (256..300).collect::<Vec<_>>());
    }
}
