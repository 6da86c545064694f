//! The page state's URL codec: percent-encoded path segments, the keyword and page-number
//! segments, and the option dicts WebShop writes into URLs (JSON for `item_page`, Python
//! `repr` for `done`) with the small literal parser that reads them back.

use std::fmt::Write as _;

use agentq_core::pycompat::{write_str_repr, BadEscape};

use super::{Options, PageError};

/// Sets `name` to `value` as a Python dict update does: in place if `name` is already
/// chosen, else appended.
pub fn set_option(options: &mut Options, name: &str, value: &str) {
    match options.iter_mut().find(|(n, _)| n == name) {
        Some(slot) => slot.1 = value.to_string(),
        None => options.push((name.to_string(), value.to_string())),
    }
}

/// The option values in selection order (what the reward reads).
pub fn option_values(options: &[(String, String)]) -> Vec<String> {
    options.iter().map(|(_, v)| v.clone()).collect()
}

/// `json.dumps(options)` as Python writes it: insertion order, `", "` and `": "`
/// separators, non-ASCII as `\uXXXX`.
pub fn options_json(options: &[(String, String)]) -> String {
    dict_json(options.iter().map(|(k, v)| (k.as_str(), v.as_str())), false)
}

/// Flask 2.1's `{{ options | tojson }}`: `json.dumps` with sorted keys, then `<`, `>`, `&`
/// and `'` written as `\u003c`, `\u003e`, `\u0026`, `\u0027` (shown on the done page).
pub fn options_tojson(options: &[(String, String)]) -> String {
    // Python dict semantics: later duplicates already replaced earlier ones.
    let mut pairs: Vec<(&str, &str)> = options
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    pairs.sort_by(|a, b| a.0.cmp(b.0));
    dict_json(pairs.into_iter(), true)
}

/// Python `repr` of the options dict (`{'color': 'white'}`).
pub fn options_repr(options: &[(String, String)]) -> String {
    let mut out = String::from("{");
    for (i, (k, v)) in options.iter().enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        write_str_repr(&mut out, k);
        out.push_str(": ");
        write_str_repr(&mut out, v);
    }
    out.push('}');
    out
}

fn dict_json<'a>(pairs: impl Iterator<Item = (&'a str, &'a str)>, htmlsafe: bool) -> String {
    let mut out = String::from("{");
    for (i, (k, v)) in pairs.enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        py_json_str(&mut out, k, htmlsafe);
        out.push_str(": ");
        py_json_str(&mut out, v, htmlsafe);
    }
    out.push('}');
    out
}

/// A JSON string as Python's `json.dumps(ensure_ascii=True)` writes it.
fn py_json_str(out: &mut String, s: &str, htmlsafe: bool) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '<' | '>' | '&' | '\'' if htmlsafe => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            ' '..='~' => out.push(c),
            _ => {
                let mut buf = [0u16; 2];
                for unit in c.encode_utf16(&mut buf) {
                    let _ = write!(out, "\\u{unit:04x}");
                }
            }
        }
    }
    out.push('"');
}

// ---------------------------------------------------------------------------------------
// Percent-encoding and the literals inside path segments.

/// Percent-encodes one path segment: everything but ASCII letters, digits and `-._~:,@`.
pub fn encode_segment(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for &b in s.as_bytes() {
        if b.is_ascii_alphanumeric() || b"-._~:,@".contains(&b) {
            out.push(b as char);
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

/// Decodes a percent-encoded path segment (`+` stays `+`); rejects bad escapes and
/// non-UTF-8 results.
pub fn decode_segment(s: &str) -> Result<String, PageError> {
    agentq_core::pycompat::unquote_strict(s).map_err(|e| {
        PageError::Malformed(
            match e {
                BadEscape::Escape => "bad percent-encoding",
                BadEscape::Utf8 => "path is not UTF-8",
            }
            .into(),
        )
    })
}

pub(super) fn keywords_segment(keywords: &[String]) -> String {
    let joined = keywords
        .iter()
        .map(|k| encode_segment(k))
        .collect::<Vec<_>>()
        .join("+");
    if keywords.is_empty() || joined == "." || joined == ".." {
        let mut lit = String::from("[");
        for (i, k) in keywords.iter().enumerate() {
            if i > 0 {
                lit.push_str(", ");
            }
            py_json_str(&mut lit, k, false);
        }
        lit.push(']');
        format!("[{}", encode_segment(&lit[1..]))
    } else {
        joined
    }
}

pub(super) fn parse_keywords(raw: &str) -> Result<Vec<String>, PageError> {
    if raw.starts_with('[') {
        let lit = decode_segment(raw)?;
        return Lit::new(&lit)
            .list()
            .map_err(|e| PageError::Malformed(format!("keywords: {e}")));
    }
    raw.split('+').map(decode_segment).collect()
}

pub(super) fn parse_page(raw: &str) -> Result<usize, PageError> {
    let bad = || PageError::Malformed("page must be a number from 1".into());
    if raw.is_empty() || !raw.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    match raw.parse::<usize>() {
        Ok(n) if n >= 1 => Ok(n),
        _ => Err(bad()),
    }
}

/// Parses an options literal: a JSON object or Python dict of strings, keeping insertion
/// order (a repeated key keeps its first position and takes the last value).
pub fn parse_options(s: &str) -> Result<Options, PageError> {
    Lit::new(s)
        .dict()
        .map_err(|e| PageError::Malformed(format!("options: {e}")))
}

/// A tiny parser for the JSON / Python literals found in URLs: string lists and string→string
/// dicts, strings in `"` or `'` with JSON and Python escapes.
struct Lit<'a> {
    s: &'a [u8],
    src: &'a str,
    i: usize,
}

impl<'a> Lit<'a> {
    fn new(src: &'a str) -> Self {
        Lit {
            s: src.as_bytes(),
            src,
            i: 0,
        }
    }

    fn ws(&mut self) {
        while self.i < self.s.len() && matches!(self.s[self.i], b' ' | b'\t' | b'\n' | b'\r') {
            self.i += 1;
        }
    }

    fn eat(&mut self, b: u8) -> bool {
        self.ws();
        if self.s.get(self.i) == Some(&b) {
            self.i += 1;
            true
        } else {
            false
        }
    }

    fn expect(&mut self, b: u8) -> Result<(), String> {
        if self.eat(b) {
            Ok(())
        } else {
            Err(format!("expected '{}' at offset {}", b as char, self.i))
        }
    }

    fn end(&mut self) -> Result<(), String> {
        self.ws();
        if self.i == self.s.len() {
            Ok(())
        } else {
            Err(format!("trailing text at offset {}", self.i))
        }
    }

    /// Parses `open item (, item)* [,] close`, calling `item` for each element.
    fn seq(
        &mut self,
        open: u8,
        close: u8,
        mut item: impl FnMut(&mut Self) -> Result<(), String>,
    ) -> Result<(), String> {
        self.expect(open)?;
        if self.eat(close) {
            return self.end();
        }
        loop {
            item(self)?;
            if self.eat(close) {
                break;
            }
            self.expect(b',')?;
            if self.eat(close) {
                break;
            }
        }
        self.end()
    }

    fn list(mut self) -> Result<Vec<String>, String> {
        let mut out = Vec::new();
        self.seq(b'[', b']', |p| {
            out.push(p.string()?);
            Ok(())
        })?;
        Ok(out)
    }

    fn dict(mut self) -> Result<Options, String> {
        let mut out: Options = Vec::new();
        self.seq(b'{', b'}', |p| {
            let k = p.string()?;
            p.expect(b':')?;
            let v = p.string()?;
            set_option(&mut out, &k, &v);
            Ok(())
        })?;
        Ok(out)
    }

    fn hex(&mut self, n: usize) -> Result<u32, String> {
        let digits = self
            .src
            .get(self.i..self.i + n)
            .filter(|d| d.bytes().all(|b| b.is_ascii_hexdigit()))
            .ok_or_else(|| format!("bad escape at offset {}", self.i))?;
        self.i += n;
        u32::from_str_radix(digits, 16).map_err(|e| e.to_string())
    }

    fn string(&mut self) -> Result<String, String> {
        self.ws();
        let quote = match self.s.get(self.i) {
            Some(&q @ (b'"' | b'\'')) => q,
            _ => return Err(format!("expected a string at offset {}", self.i)),
        };
        self.i += 1;
        let mut out = String::new();
        loop {
            let start = self.i;
            while self.i < self.s.len() && self.s[self.i] != quote && self.s[self.i] != b'\\' {
                self.i += 1;
            }
            out.push_str(&self.src[start..self.i]);
            match self.s.get(self.i) {
                None => return Err("unterminated string".into()),
                Some(&b) if b == quote => {
                    self.i += 1;
                    return Ok(out);
                }
                Some(_) => {
                    self.i += 1;
                    let esc = *self.s.get(self.i).ok_or("unterminated string")?;
                    self.i += 1;
                    let c = match esc {
                        b'n' => '\n',
                        b't' => '\t',
                        b'r' => '\r',
                        b'b' => '\u{8}',
                        b'f' => '\u{c}',
                        b'v' => '\u{b}',
                        b'a' => '\u{7}',
                        b'0' => '\0',
                        b'\\' | b'"' | b'\'' | b'/' => esc as char,
                        b'x' => char_of(self.hex(2)?)?,
                        b'U' => char_of(self.hex(8)?)?,
                        b'u' => {
                            let hi = self.hex(4)?;
                            if (0xd800..0xdc00).contains(&hi) {
                                if self.src.get(self.i..self.i + 2) != Some("\\u") {
                                    return Err("lone surrogate".into());
                                }
                                self.i += 2;
                                let lo = self.hex(4)?;
                                if !(0xdc00..0xe000).contains(&lo) {
                                    return Err("lone surrogate".into());
                                }
                                char_of(0x10000 + ((hi - 0xd800) << 10) + (lo - 0xdc00))?
                            } else {
                                char_of(hi)?
                            }
                        }
                        _ => {
                            // Python keeps unknown escapes verbatim.
                            out.push('\\');
                            self.i -= 1;
                            continue;
                        }
                    };
                    out.push(c);
                }
            }
        }
    }
}

fn char_of(n: u32) -> Result<char, String> {
    char::from_u32(n).ok_or_else(|| "invalid code point".into())
}
