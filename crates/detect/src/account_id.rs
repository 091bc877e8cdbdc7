//! The id every detector knows an account by. The compromise detector's
//! table hands ids out (one per lower-cased login, see
//! [`crate::compromise::Accounts::id`]); the message table, the limits and
//! the hourly series key their own state by it, without depending on that
//! detector.

use serde::{Deserialize, Serialize};

/// Index of an account in the detector's table.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct AccountId(u32);

impl AccountId {
    /// The position in the detector's table, for side tables indexed alike.
    pub(crate) fn index(self) -> usize {
        self.0 as usize
    }

    pub(crate) fn from_index(index: usize) -> Self {
        AccountId(index as u32)
    }
}
