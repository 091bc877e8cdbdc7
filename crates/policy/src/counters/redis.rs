//! The shared store (placeholder: decides on local counts until the Redis
//! client lands).

use super::{Answer, Ask, Memory, StoreError};

/// Whether Redis answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RedisStatus {
    Up,
    Down,
}

/// Counters shared through Redis, with a local fallback.
pub struct Redis {
    local: Memory,
}

impl Redis {
    pub async fn check(&self, ask: &Ask<'_>) -> Result<Answer, StoreError> {
        Ok(self.local.check(ask))
    }

    pub async fn record(
        &self,
        key: &str,
        now: u64,
        messages: u64,
        recipients: u64,
    ) -> Result<(), StoreError> {
        self.local.record(key, now, messages, recipients);
        Ok(())
    }

    pub async fn lock(&self, account: &str, now: u64) -> Result<(), StoreError> {
        self.local.lock(account, now);
        Ok(())
    }

    pub fn local(&self) -> &Memory {
        &self.local
    }

    pub fn status(&self) -> RedisStatus {
        RedisStatus::Down
    }
}
