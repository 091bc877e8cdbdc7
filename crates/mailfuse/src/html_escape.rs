//! HTML escaping, for the scan report and the dashboard alike. What they
//! show came from logs an attacker writes to (account names, evidence
//! lines), so every such string is written through [`Text`] or [`Attr`].

use std::fmt::{self, Write};

use mailfuse_core::text::Sanitized;

/// Untrusted text for element content or a quoted attribute: control
/// characters, bidi overrides and invalid bytes made visible (`\x1b`), then
/// `&<>"'` as entities.
pub struct Text<'a>(pub &'a str);

impl fmt::Display for Text<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(Entities(f), "{}", Sanitized(self.0.as_bytes()))
    }
}

/// A value for a quoted attribute (a hidden form field), kept exactly as
/// stored so that it names the same account when posted back; `&<>"'` as
/// entities.
pub struct Attr<'a>(pub &'a str);

impl fmt::Display for Attr<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        Entities(f).write_str(self.0)
    }
}

/// Writes through to a formatter with HTML's special characters as
/// entities, so sanitised text streams out without an interim string.
struct Entities<'a, 'b>(&'a mut fmt::Formatter<'b>);

impl Write for Entities<'_, '_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        for c in s.chars() {
            match c {
                '&' => self.0.write_str("&amp;")?,
                '<' => self.0.write_str("&lt;")?,
                '>' => self.0.write_str("&gt;")?,
                '"' => self.0.write_str("&quot;")?,
                '\'' => self.0.write_str("&#39;")?,
                c => self.0.write_char(c)?,
            }
        }
        Ok(())
    }
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
        assert_eq!(
            Text("\"><img src=x onerror=alert('1')>").to_string(),
            "&quot;&gt;&lt;img src=x onerror=alert(&#39;1&#39;)&gt;"
        );
        assert_eq!(Text("it's & more").to_string(), "it&#39;s &amp; more");
    }

    #[test]
    fn control_characters_and_bidi_overrides_are_made_visible() {
        assert_eq!(
            Text("a\u{1b}[31mred\u{0}\u{202e}txt\nnext").to_string(),
            "a\\x1b[31mred\\x00\\u{202e}txt\\x0anext"
        );
        assert_eq!(Text("Příliš žluťoučký").to_string(), "Příliš žluťoučký");
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
