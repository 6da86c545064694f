//! Python `str` character classes on byte offsets, as `html.parser`'s regexes see them.

#[inline]
pub(super) fn char_at(s: &str, i: usize) -> Option<char> {
    s.get(i..)?.chars().next()
}

#[inline]
pub(super) fn prev_char(s: &str, i: usize) -> Option<char> {
    s.get(..i)?.chars().next_back()
}

/// Byte length of the Python-whitespace character at `i`, or 0.
#[inline]
pub(super) fn ws_len(s: &str, i: usize) -> usize {
    match s.as_bytes().get(i) {
        None => 0,
        Some(&x) if x < 0x80 => usize::from(matches!(x, 9..=13 | 0x1c..=0x1f | b' ')),
        Some(_) => match char_at(s, i) {
            Some(c) if c.is_whitespace() => c.len_utf8(),
            _ => 0,
        },
    }
}

#[inline]
pub(super) fn skip_ws(s: &str, mut i: usize) -> usize {
    loop {
        let l = ws_len(s, i);
        if l == 0 {
            return i;
        }
        i += l;
    }
}

pub(super) fn py_lower(s: &str) -> String {
    if s.is_ascii() {
        s.to_ascii_lowercase()
    } else {
        s.to_lowercase()
    }
}

/// Python's `s.lower() == target` for an ASCII `target`.
pub(super) fn lower_eq(s: &str, target: &str) -> bool {
    if s.is_ascii() {
        s.eq_ignore_ascii_case(target)
    } else {
        s.to_lowercase() == target
    }
}

/// End of an html.parser tag name `[^\t\n\r\f />\x00]*` starting at `i`.
pub(super) fn scan_tag_name(s: &str, mut i: usize) -> usize {
    let b = s.as_bytes();
    while let Some(&x) = b.get(i) {
        if matches!(x, b'\t' | b'\n' | b'\r' | 0x0c | b' ' | b'/' | b'>' | 0) {
            break;
        }
        i += 1;
    }
    i
}

/// `(?:\s|/(?!>))*` from `i`.
pub(super) fn skip_ws_or_lone_slash(s: &str, mut i: usize) -> usize {
    let b = s.as_bytes();
    loop {
        let l = ws_len(s, i);
        if l > 0 {
            i += l;
        } else if b.get(i) == Some(&b'/') && b.get(i + 1) != Some(&b'>') {
            i += 1;
        } else {
            return i;
        }
    }
}
