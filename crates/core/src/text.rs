//! Showing untrusted log text safely.
//!
//! A Subject or From written by a spammer may hold terminal escape sequences
//! (which can rewrite the admin's screen), bidi overrides, or bytes that are
//! not UTF-8. [`Sanitized`] renders such text as visible, inert escapes.

use std::fmt::{self, Write};

/// Displays log bytes with every control character, bidi control and invalid
/// byte made visible (`\x1b`, `\u{202e}`, `\xff`), so nothing in them can act
/// on a terminal.
pub struct Sanitized<'a>(pub &'a [u8]);

impl fmt::Display for Sanitized<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for chunk in self.0.utf8_chunks() {
            for c in chunk.valid().chars() {
                if is_unsafe_char(c) {
                    if (c as u32) < 0x100 {
                        write!(f, "\\x{:02x}", c as u32)?;
                    } else {
                        write!(f, "\\u{{{:x}}}", c as u32)?;
                    }
                } else {
                    f.write_char(c)?;
                }
            }
            for b in chunk.invalid() {
                write!(f, "\\x{b:02x}")?;
            }
        }
        Ok(())
    }
}

/// Characters that must never reach a terminal raw: C0/C1 controls, DEL,
/// bidi embeddings/overrides/isolates, and zero-width joiners used to hide text.
fn is_unsafe_char(c: char) -> bool {
    c.is_control()
        || matches!(c, '\u{200b}'..='\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' | '\u{feff}')
}

/// The sanitized text as an owned string (see [`Sanitized`]).
pub fn sanitize(bytes: &[u8]) -> String {
    Sanitized(bytes).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_terminal_sequences_and_bad_bytes() {
        assert_eq!(sanitize(b"hi\x1b[2J\x07there"), "hi\\x1b[2J\\x07there");
        assert_eq!(sanitize(b"caf\xe9"), "caf\\xe9");
        assert_eq!(
            sanitize("a\u{202e}b\u{9b}c".as_bytes()),
            "a\\u{202e}b\\x9bc"
        );
        assert_eq!(sanitize(b"tab\there\nnl"), "tab\\x09here\\x0anl");
    }

    #[test]
    fn leaves_ordinary_text_alone() {
        assert_eq!(
            sanitize("Příliš žluťoučký kůň, 50% off!".as_bytes()),
            "Příliš žluťoučký kůň, 50% off!"
        );
    }
}
