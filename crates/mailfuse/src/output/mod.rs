//! Reports: a readable text report for terminals and emails, JSON for
//! scripts, a self-contained HTML page with charts, the account table as CSV.
//!
//! Everything that came from a log is untrusted: the text writer shows it
//! through [`mailfuse_core::text::Sanitized`]; JSON escapes control
//! characters; HTML and CSV sanitise it and then escape or quote it.

pub mod csv;
pub mod html;
pub mod json;
pub mod status;
pub mod text;
