//! Small value readers every format needs.

/// An address or message id without its angle brackets (`<>` gives `""`).
pub(crate) fn without_angles(value: &[u8]) -> &[u8] {
    value
        .strip_prefix(b"<")
        .and_then(|inner| inner.strip_suffix(b">"))
        .unwrap_or(value)
}

/// A non-negative decimal number that fits in `u64`.
pub(crate) fn decimal(digits: &[u8]) -> Option<u64> {
    if digits.is_empty() {
        return None;
    }
    digits.iter().try_fold(0u64, |acc, &b| {
        let digit = char::from(b).to_digit(10)?;
        acc.checked_mul(10)?.checked_add(u64::from(digit))
    })
}

/// Whether `code` is an RFC 3463 enhanced status code: class 2, 4 or 5,
/// then subject and detail of 1 to 3 digits (`2.0.0`, `5.7.26`).
pub(crate) fn is_enhanced_status_code(code: &[u8]) -> bool {
    let is_number =
        |part: &[u8]| (1..=3).contains(&part.len()) && part.iter().all(u8::is_ascii_digit);
    let mut parts = code.split(|&b| b == b'.');
    matches!(parts.next(), Some([b'2' | b'4' | b'5']))
        && parts.next().is_some_and(is_number)
        && parts.next().is_some_and(is_number)
        && parts.next().is_none()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn angles_numbers_and_status_codes() {
        assert_eq!(without_angles(b"<a@b>"), b"a@b");
        assert_eq!(without_angles(b"<>"), b"");
        assert_eq!(without_angles(b"<a@b"), b"<a@b");
        assert_eq!(decimal(b"2275"), Some(2275));
        assert_eq!(decimal(b""), None);
        assert_eq!(decimal(b"12a"), None);
        assert_eq!(decimal(b"99999999999999999999999"), None);
        assert!(is_enhanced_status_code(b"5.1.1"));
        assert!(is_enhanced_status_code(b"2.0.0"));
        assert!(is_enhanced_status_code(b"5.7.26"));
        assert!(!is_enhanced_status_code(b"3.1.1"));
        assert!(!is_enhanced_status_code(b"5.1"));
        assert!(!is_enhanced_status_code(b"5.1.1.1"));
        assert!(!is_enhanced_status_code(b"5.1234.1"));
    }
}
