//! The per-account table as CSV (RFC 4180), for spreadsheets.
//!
//! Account names and services come from logs: control characters are shown
//! as visible escapes ([`Sanitized`]), fields holding a comma, quote, CR or LF
//! are quoted, and a field a spreadsheet would run as a formula (starting
//! with `=`, `+`, `-`, `@`, tab or CR) gets a leading `'`.

use std::io::{self, Write};

use mailfuse_core::text::Sanitized;
use mailfuse_detect::{AccountSummary, Findings};

const HEADER: &[&str] = &[
    "account",
    "compromised",
    "messages",
    "recipients",
    "external_recipients",
    "failed_recipients",
    "foreign_from_messages",
    "sending_ips",
    "new_ips",
    "services",
    "peak_per_minute",
    "peak_per_hour",
    "first_seen",
    "last_seen",
];

/// Writes one row per account that sent mail, busiest first, after a header.
pub fn write_accounts(out: &mut dyn Write, findings: &Findings) -> io::Result<()> {
    let mut row = Row::default();
    for name in HEADER {
        row.field(name);
    }
    row.end(out)?;
    for account in findings.accounts.iter() {
        write_account(&mut row, &account);
        row.end(out)?;
    }
    Ok(())
}

fn write_account(row: &mut Row, a: &AccountSummary) {
    let list = |items: &mut dyn Iterator<Item = String>| items.collect::<Vec<_>>().join(" ");
    row.field(&Sanitized(a.account.as_bytes()).to_string());
    row.field(if a.compromised { "yes" } else { "no" });
    for n in [
        a.counts.messages,
        a.counts.recipients,
        a.counts.external_recipients,
        a.counts.failed_recipients,
        a.counts.foreign_from_messages,
    ] {
        row.field(&n.to_string());
    }
    row.field(&list(&mut a.sending_ips.iter().map(ToString::to_string)));
    row.field(&list(&mut a.new_ips.iter().map(ToString::to_string)));
    row.field(&list(
        &mut a
            .services
            .iter()
            .map(|s| Sanitized(s.as_bytes()).to_string()),
    ));
    row.field(&a.peak_per_minute.count.to_string());
    row.field(&a.peak_per_hour.count.to_string());
    row.field(&a.first_seen.to_string());
    row.field(&a.last_seen.to_string());
}

/// One CSV record being built (reused from row to row).
#[derive(Default)]
struct Row {
    text: String,
    fields: usize,
}

impl Row {
    fn field(&mut self, value: &str) {
        if self.fields > 0 {
            self.text.push(',');
        }
        self.fields += 1;
        write_field(&mut self.text, value);
    }

    /// Writes the record with its CRLF (RFC 4180) and starts the next.
    fn end(&mut self, out: &mut dyn Write) -> io::Result<()> {
        self.text.push_str("\r\n");
        out.write_all(self.text.as_bytes())?;
        self.text.clear();
        self.fields = 0;
        Ok(())
    }
}

/// Appends `value` as one CSV field: formula-neutralised, then quoted (quotes
/// doubled) if it holds a comma, quote, CR or LF.
fn write_field(out: &mut String, value: &str) {
    let formula = value.starts_with(['=', '+', '-', '@', '\t', '\r']);
    let quoted = value.contains([',', '"', '\r', '\n']);
    if quoted {
        out.push('"');
    }
    if formula {
        out.push('\'');
    }
    for c in value.chars() {
        if c == '"' {
            out.push('"');
        }
        out.push(c);
    }
    if quoted {
        out.push('"');
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field(value: &str) -> String {
        let mut out = String::new();
        write_field(&mut out, value);
        out
    }

    #[test]
    fn plain_fields_stay_bare() {
        assert_eq!(
            field("sales@acme-tools.example"),
            "sales@acme-tools.example"
        );
        assert_eq!(field("2024-03-01T10:00:00Z"), "2024-03-01T10:00:00Z");
        assert_eq!(field(""), "");
    }

    #[test]
    fn separators_and_quotes_are_quoted() {
        assert_eq!(field("a,b"), "\"a,b\"");
        assert_eq!(field("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(field("two\nlines"), "\"two\nlines\"");
        assert_eq!(field("cr\rhere"), "\"cr\rhere\"");
    }

    #[test]
    fn formulas_are_neutralised() {
        assert_eq!(
            field("=HYPERLINK(\"http://x\")"),
            "\"'=HYPERLINK(\"\"http://x\"\")\""
        );
        assert_eq!(field("+1"), "'+1");
        assert_eq!(field("-2+3"), "'-2+3");
        assert_eq!(field("@SUM(A1)"), "'@SUM(A1)");
        assert_eq!(field("\tx"), "'\tx");
        assert_eq!(field("\rx"), "\"'\rx\"");
    }
}
