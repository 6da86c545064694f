//! Python `str` semantics: which characters are whitespace and printable, `strip()` and
//! `repr()`.

/// Python's `str.isspace()` for one character (also regex `\s` on `str` patterns): Rust's
/// Unicode `White_Space` plus the separators U+001C–U+001F, which Python counts and Rust
/// does not.
#[inline]
pub fn is_space(c: char) -> bool {
    matches!(c, '\t'..='\r' | '\u{1c}'..='\u{1f}' | ' ') || (c >= '\u{80}' && c.is_whitespace())
}

/// Python's `str.strip()` with no argument.
pub fn strip(s: &str) -> &str {
    s.trim_matches(is_space)
}

/// Format (Cf) and private-use (Co) ranges, inclusive, which Python's `str.isprintable`
/// rejects (Unicode 14).
const NON_PRINTABLE_FORMAT: [(u32, u32); 23] = [
    (0x00AD, 0x00AD),
    (0x0600, 0x0605),
    (0x061C, 0x061C),
    (0x06DD, 0x06DD),
    (0x070F, 0x070F),
    (0x0890, 0x0891),
    (0x08E2, 0x08E2),
    (0x180E, 0x180E),
    (0x200B, 0x200F),
    (0x202A, 0x202E),
    (0x2060, 0x2064),
    (0x2066, 0x206F),
    (0xE000, 0xF8FF),
    (0xFEFF, 0xFEFF),
    (0xFFF9, 0xFFFB),
    (0x110BD, 0x110BD),
    (0x110CD, 0x110CD),
    (0x13430, 0x13438),
    (0x1BCA0, 0x1BCA3),
    (0x1D173, 0x1D17A),
    (0xE0001, 0xE0001),
    (0xE0020, 0xE007F),
    (0xF0000, 0x10FFFD),
];

/// Python's `str.isprintable` for one character, except that unassigned code points count
/// as printable, plus the ASCII space (which `repr` keeps): not a control, format,
/// private-use or separator character.
pub fn is_printable(c: char) -> bool {
    if c == ' ' {
        return true;
    }
    if c.is_control() || c.is_whitespace() {
        return false;
    }
    let x = c as u32;
    !NON_PRINTABLE_FORMAT
        .iter()
        .any(|&(lo, hi)| (lo..=hi).contains(&x))
}

/// Python 3's `repr` of a `str`.
pub fn str_repr(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    write_str_repr(&mut out, s);
    out
}

/// Appends Python 3's `repr` of a `str` to `out`: single quotes unless the text holds `'`
/// and no `"`; backslash, the quote, `\t`, `\n`, `\r` escaped; other non-printable
/// characters as `\xhh`, `\uhhhh` or `\Uhhhhhhhh`.
pub fn write_str_repr(out: &mut String, s: &str) {
    use std::fmt::Write as _;
    let quote = if s.contains('\'') && !s.contains('"') {
        '"'
    } else {
        '\''
    };
    out.push(quote);
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\t' => out.push_str("\\t"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            c if c == quote => {
                out.push('\\');
                out.push(c);
            }
            c if is_printable(c) => out.push(c),
            c => {
                let n = c as u32;
                let _ = match n {
                    0..=0xff => write!(out, "\\x{n:02x}"),
                    0x100..=0xffff => write!(out, "\\u{n:04x}"),
                    _ => write!(out, "\\U{n:08x}"),
                };
            }
        }
    }
    out.push(quote);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn whitespace_is_pythons() {
        for c in [
            '\t', '\n', '\u{b}', '\u{c}', '\r', '\u{1c}', '\u{1f}', ' ', '\u{85}', '\u{a0}',
            '\u{3000}',
        ] {
            assert!(is_space(c), "{c:?}");
        }
        for c in ['a', '\u{200b}', '\u{180e}', '\u{feff}', '\u{1b}'] {
            assert!(!is_space(c), "{c:?}");
        }
        assert_eq!(strip("\u{1c} a b\u{a0}\n"), "a b");
        assert_eq!(strip(""), "");
    }

    /// Expected strings from CPython 3.11's `repr`.
    #[test]
    fn repr_matches_cpython() {
        let cases = [
            ("abc", "'abc'"),
            ("it's", "\"it's\""),
            ("it's \"x\"", "'it\\'s \"x\"'"),
            ("a\\b\tc\nd\re", "'a\\\\b\\tc\\nd\\re'"),
            ("\u{7}\u{a0}\u{ad}", "'\\x07\\xa0\\xad'"),
            ("\u{200b}\u{2028}é", "'\\u200b\\u2028é'"),
            ("\u{0600}\u{061c}", "'\\u0600\\u061c'"),
            ("\u{e0001}😀", "'\\U000e0001😀'"),
            ("", "''"),
        ];
        for (s, want) in cases {
            assert_eq!(str_repr(s), want, "{s:?}");
        }
    }
}
