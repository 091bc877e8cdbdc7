//! Showing untrusted log text safely.
//!
//! A Subject or From written by a spammer may hold terminal escape sequences
//! (which can rewrite the admin's screen), bidi overrides, or bytes that are
//! not UTF-8. [`Sanitized`] renders such text as visible, inert escapes.

use std::borrow::Cow;
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
/// the line and paragraph separators (U+2028, U+2029: a new line to many
/// viewers, JavaScript and log tools), bidi embeddings/overrides/isolates
/// and marks, and zero-width characters used to hide text.
fn is_unsafe_char(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{61c}'
                | '\u{200b}'..='\u{200f}'
                | '\u{2028}'..='\u{202e}'
                | '\u{2060}'..='\u{2064}'
                | '\u{2066}'..='\u{2069}'
                | '\u{feff}'
        )
}

/// `bytes` as text, each byte that is not UTF-8 written `\xNN`, so that
/// distinct byte strings stay distinct names (decoding them lossily would
/// make every bad byte the same U+FFFD). UTF-8 is borrowed as it is.
pub fn escape_invalid(bytes: &[u8]) -> Cow<'_, str> {
    if let Ok(text) = std::str::from_utf8(bytes) {
        return Cow::Borrowed(text);
    }
    let mut text = String::with_capacity(bytes.len() + 8);
    for chunk in bytes.utf8_chunks() {
        text.push_str(chunk.valid());
        for b in chunk.invalid() {
            // Writing to a String cannot fail.
            let _ = write!(text, "\\x{b:02x}");
        }
    }
    Cow::Owned(text)
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
        assert_eq!(
            sanitize("one\u{2028}two\u{2029}three\u{85}".as_bytes()),
            "one\\u{2028}two\\u{2029}three\\x85"
        );
    }

    #[test]
    fn invalid_bytes_stay_distinct_and_utf8_is_borrowed() {
        assert_eq!(escape_invalid(b"al\xffce"), "al\\xffce");
        assert_ne!(escape_invalid(b"al\xffce"), escape_invalid(b"al\xfece"));
        assert!(matches!(
            escape_invalid("žluť".as_bytes()),
            Cow::Borrowed("žluť")
        ));
    }

    #[test]
    fn leaves_ordinary_text_alone() {
        assert_eq!(
            sanitize("Příliš žluťoučký kůň, 50% off!".as_bytes()),
            "Příliš žluťoučký kůň, 50% off!"
        );
    }
}
