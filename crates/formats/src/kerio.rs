//! Kerio Connect logs (placeholder, being written).
use crate::{LineParser, LocalZone, Parsed};
use mailfuse_core::Timestamp;

pub fn recognizes(_line: &[u8]) -> bool {
    false
}

pub struct KerioParser {
    _zone: LocalZone,
}

impl KerioParser {
    pub fn new(zone: LocalZone) -> Self {
        KerioParser { _zone: zone }
    }
}

impl LineParser for KerioParser {
    fn timestamp(&mut self, _line: &[u8]) -> Option<Timestamp> {
        None
    }
    fn parse<'a>(&mut self, _line: &'a [u8]) -> Parsed<'a> {
        Parsed::Unknown
    }
}
