//! Exim mainlog. (Being written.)

use mailfuse_core::Timestamp;

use crate::{LineParser, ParseContext, Parsed};

/// Whether `line` looks like an Exim mainlog line.
pub fn recognizes(_line: &[u8]) -> bool {
    false
}

/// Parser of Exim mainlog lines.
pub struct EximParser {}

impl EximParser {
    /// A parser for a file read with `context`.
    pub fn new(_context: &ParseContext) -> Self {
        EximParser {}
    }
}

impl LineParser for EximParser {
    fn timestamp(&mut self, _line: &[u8]) -> Option<Timestamp> {
        None
    }

    fn parse<'a>(&mut self, _line: &'a [u8]) -> Parsed<'a> {
        Parsed::Unknown
    }
}
