//! HTML escaping. Everything the dashboard shows came from the store, and
//! much of it from logs an attacker writes to (account names, evidence
//! lines): it is all written through [`Text`] or [`Attr`].

use std::fmt::{self, Write};

use mailfuse_core::text::Sanitized;

/// Text for an element's content: control characters, bidi overrides and
/// invalid bytes made visible (`\x1b`), then `&<>"'` escaped.
pub struct Text<'a>(pub &'a str);

impl fmt::Display for Text<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let visible = Sanitized(self.0.as_bytes()).to_string();
        escape_into(f, &visible)
    }
}

/// A value for a quoted attribute (a hidden form field), kept exactly as
/// stored so that it names the same account when posted back; `&<>"'`
/// escaped.
pub struct Attr<'a>(pub &'a str);

impl fmt::Display for Attr<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        escape_into(f, self.0)
    }
}

fn escape_into(f: &mut fmt::Formatter<'_>, text: &str) -> fmt::Result {
    for c in text.chars() {
        match c {
            '&' => f.write_str("&amp;")?,
            '<' => f.write_str("&lt;")?,
            '>' => f.write_str("&gt;")?,
            '"' => f.write_str("&quot;")?,
            '\'' => f.write_str("&#39;")?,
            c => f.write_char(c)?,
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markup_in_log_text_is_inert() {
        assert_eq!(
            Text("<script>window.__xss=1</script>").to_string(),
            "&lt;script&gt;window.__xss=1&lt;/script&gt;"
        );
        assert_eq!(
            Text("\"><img src=x onerror=\"window.__xss=1\">").to_string(),
            "&quot;&gt;&lt;img src=x onerror=&quot;window.__xss=1&quot;&gt;"
        );
        assert_eq!(Text("it's & more").to_string(), "it&#39;s &amp; more");
    }

    #[test]
    fn control_characters_and_bidi_overrides_are_made_visible() {
        assert_eq!(
            Text("a\u{1b}[31mred\u{0}\u{202e}txt\nnext").to_string(),
            "a\\x1b[31mred\\x00\\u{202e}txt\\x0anext"
        );
    }

    #[test]
    fn attributes_keep_the_value_and_cannot_be_closed() {
        assert_eq!(
            Attr("x\" onmouseover='1' <b>&").to_string(),
            "x&quot; onmouseover=&#39;1&#39; &lt;b&gt;&amp;"
        );
        assert_eq!(Attr("sales@example.com").to_string(), "sales@example.com");
    }

    #[test]
    fn huge_values_are_escaped_whole() {
        let huge = "<".repeat(100_000);
        assert_eq!(Text(&huge).to_string().len(), 400_000);
    }
}
