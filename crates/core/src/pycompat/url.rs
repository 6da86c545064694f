//! Percent-decoding: Python's lenient `urllib.parse.unquote` and a strict variant, one
//! decoder underneath.

/// Why [`unquote_strict`] refused its input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BadEscape {
    /// A `%` not followed by two hex digits.
    Escape,
    /// The decoded bytes are not UTF-8.
    Utf8,
}

/// Decodes `%XX` escapes into bytes; an invalid escape is kept verbatim (`lenient`) or is
/// an error.
fn decode(s: &str, lenient: bool) -> Result<Vec<u8>, BadEscape> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = |j: usize| b.get(j).and_then(|&x| (x as char).to_digit(16));
            match (hex(i + 1), hex(i + 2)) {
                (Some(hi), Some(lo)) => {
                    out.push((hi * 16 + lo) as u8);
                    i += 3;
                    continue;
                }
                _ if !lenient => return Err(BadEscape::Escape),
                _ => {}
            }
        }
        out.push(b[i]);
        i += 1;
    }
    Ok(out)
}

/// `urllib.parse.unquote(s)`: invalid escapes kept verbatim, invalid UTF-8 replaced by
/// U+FFFD; `+` stays `+`.
pub fn unquote(s: &str) -> String {
    let bytes = decode(s, true).unwrap_or_default();
    String::from_utf8_lossy(&bytes).into_owned()
}

/// Percent-decoding that rejects a bad escape or a non-UTF-8 result; `+` stays `+`.
pub fn unquote_strict(s: &str) -> Result<String, BadEscape> {
    String::from_utf8(decode(s, false)?).map_err(|_| BadEscape::Utf8)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lenient_and_strict_agree_on_good_input() {
        for (s, want) in [
            ("a%20b+c", "a b+c"),
            ("%C3%A9", "é"),
            ("plain", "plain"),
            ("", ""),
        ] {
            assert_eq!(unquote(s), want);
            assert_eq!(unquote_strict(s).unwrap(), want);
        }
    }

    #[test]
    fn bad_input() {
        assert_eq!(unquote("100%"), "100%");
        assert_eq!(unquote("%zz%4"), "%zz%4");
        assert_eq!(unquote("%ff"), "\u{fffd}");
        assert_eq!(unquote_strict("100%"), Err(BadEscape::Escape));
        assert_eq!(unquote_strict("%4g"), Err(BadEscape::Escape));
        assert_eq!(unquote_strict("%ff"), Err(BadEscape::Utf8));
    }
}
