//! Reports: a readable text report for terminals and emails, JSON for scripts.
//!
//! Everything that came from a log is untrusted: the text writer shows it
//! through [`mailfuse_core::text::Sanitized`]; JSON escapes control characters.

pub mod json;
pub mod status;
pub mod text;
