//! CPython 3.11's `html.parser.HTMLParser.goahead` loop over the page bytes: comments,
//! declarations, marked sections, start and end tags, attribute regexes with their
//! backtracking, character references; its events go to the tree builder (`tree.rs`).

use super::*;
// Python's `str.isspace()` (regex `\s` on `str` patterns) and `str.strip()`.
use agentq_core::pycompat::{is_space as is_py_ws, strip as py_strip};

impl<'h> Builder<'h> {
    // --- searching -------------------------------------------------------------------------

    pub(super) fn find_byte(&mut self, pat: Pat, from: usize) -> Option<usize> {
        let byte = match pat {
            Pat::Gt => b'>',
            Pat::Lt => b'<',
            Pat::Semi => b';',
            _ => return None,
        };
        let slot = pat as usize;
        if from >= self.fail_from[slot] {
            return None;
        }
        let hit = self
            .raw
            .as_bytes()
            .get(from..)
            .and_then(|t| t.iter().position(|&x| x == byte))
            .map(|p| from + p);
        if hit.is_none() {
            self.fail_from[slot] = self.fail_from[slot].min(from);
        }
        hit
    }

    /// `--\s*>` (comment close) or `]\s*]\s*>` / `]\s*>` (marked-section close) searched from
    /// `from`: (match start, match end).
    pub(super) fn find_close(&mut self, pat: Pat, from: usize) -> Option<(usize, usize)> {
        let slot = pat as usize;
        if from >= self.fail_from[slot] {
            return None;
        }
        let s = self.raw;
        let b = s.as_bytes();
        // Every match ends at its only `>`, so the leftmost match ends at the first `>` that
        // closes one; walk back from each `>` over the pattern.
        let mut p = from;
        let hit = loop {
            let Some(gt) = s.get(p..).and_then(|t| t.find('>')).map(|o| p + o) else {
                break None;
            };
            p = gt + 1;
            let back_ws = |mut q: usize| {
                while q > from {
                    match prev_char(s, q) {
                        Some(c) if is_py_ws(c) => q -= c.len_utf8(),
                        _ => break,
                    }
                }
                q
            };
            let q = back_ws(gt);
            let start = match pat {
                Pat::CommentClose => {
                    (q >= from + 2 && b.get(q - 2..q) == Some(b"--")).then(|| q - 2)
                }
                Pat::MsClose => (q > from && b.get(q - 1) == Some(&b']')).then(|| q - 1),
                _ => {
                    if q > from && b.get(q - 1) == Some(&b']') {
                        let r = back_ws(q - 1);
                        (r > from && b.get(r - 1) == Some(&b']')).then(|| r - 1)
                    } else {
                        None
                    }
                }
            };
            if let Some(start) = start {
                break Some((start, gt + 1));
            }
        };
        if hit.is_none() {
            self.fail_from[slot] = self.fail_from[slot].min(from);
        }
        hit
    }

    /// In CDATA mode: the start of the next `</\s*elem\s*>` (re.I, so `ſ` matches `s` and
    /// `ı`/`İ` match `i`).
    pub(super) fn find_cdata_close(&self, from: usize, elem: &str) -> Option<usize> {
        let s = self.raw;
        let b = s.as_bytes();
        let mut p = from;
        loop {
            let lt = p + s.get(p..)?.find('<')?;
            if b.get(lt + 1) != Some(&b'/') {
                p = lt + 1;
                continue;
            }
            let mut q = skip_ws(s, lt + 2);
            let mut ok = true;
            for want in elem.chars() {
                match char_at(s, q) {
                    Some(c)
                        if c.to_ascii_lowercase() == want
                            || (want == 's' && c == 'ſ')
                            || (want == 'i' && (c == 'ı' || c == 'İ')) =>
                    {
                        q += c.len_utf8();
                    }
                    _ => {
                        ok = false;
                        break;
                    }
                }
            }
            if ok {
                q = skip_ws(s, q);
                if b.get(q) == Some(&b'>') {
                    return Some(lt);
                }
            }
            p = lt + 1;
        }
    }

    // --- html.parser.HTMLParser.goahead -----------------------------------------------------

    pub(super) fn goahead(&mut self, start: usize, end: bool) -> usize {
        let raw = self.raw;
        let b = raw.as_bytes();
        let n = b.len();
        let mut i = start;
        while i < n {
            let j = if let Some(elem) = self.cdata_elem {
                match self.find_cdata_close(i, elem) {
                    Some(j) => j,
                    None => break,
                }
            } else {
                if self.next_lt < i || self.next_lt == usize::MAX {
                    self.next_lt = raw.get(i..).and_then(|t| t.find('<')).map_or(n, |p| i + p);
                }
                if self.next_amp < i || self.next_amp == usize::MAX {
                    self.next_amp = raw.get(i..).and_then(|t| t.find('&')).map_or(n, |p| i + p);
                }
                self.next_lt.min(self.next_amp)
            };
            if i < j {
                self.data(raw.get(i..j).unwrap_or(""));
            }
            i = j;
            if i >= n {
                break;
            }
            if b[i] == b'<' {
                let next = b.get(i + 1).copied();
                let k = if next.is_some_and(|c| c.is_ascii_alphabetic()) {
                    self.parse_starttag(i)
                } else if next == Some(b'/') {
                    self.parse_endtag(i)
                } else if b.get(i..i + 4) == Some(b"<!--") {
                    self.parse_comment(i)
                } else if next == Some(b'?') {
                    self.parse_pi(i)
                } else if next == Some(b'!') {
                    self.parse_html_declaration(i)
                } else if i + 1 < n {
                    self.data("<");
                    Some(i + 1)
                } else {
                    break;
                };
                let k = match k {
                    Some(k) => k,
                    None => {
                        if !end {
                            break;
                        }
                        let k = match self.find_byte(Pat::Gt, i + 1) {
                            Some(g) => g + 1,
                            None => self.find_byte(Pat::Lt, i + 1).unwrap_or(i + 1),
                        };
                        self.data(raw.get(i..k).unwrap_or(""));
                        k
                    }
                };
                i = k.max(i + 1);
            } else if b.get(i + 1) == Some(&b'#') {
                match charref_match(b, i) {
                    Some((ns, ne, term)) => {
                        let c = bs4_charref(raw.get(ns..ne).unwrap_or(""));
                        self.cur.push(c);
                        self.has_cur = true;
                        i = if b.get(term) == Some(&b';') {
                            term + 1
                        } else {
                            term
                        };
                    }
                    None => {
                        if self.find_byte(Pat::Semi, i).is_some() {
                            self.data("&#");
                            i += 2;
                        }
                        break;
                    }
                }
            } else {
                if let Some((ns, ne, term)) = entityref_match(b, i) {
                    let name = raw.get(ns..ne).unwrap_or("");
                    match entities().get(name) {
                        Some(e) => {
                            e.push_to(&mut self.cur);
                            self.has_cur = true;
                        }
                        None => {
                            self.data("&");
                            self.data(name);
                        }
                    }
                    i = if b.get(term) == Some(&b';') {
                        term + 1
                    } else {
                        term
                    };
                    continue;
                }
                if b.get(i + 1).is_some_and(|c| c.is_ascii_alphabetic()) {
                    // `incomplete`: only at the very end of the input.
                    if end && n - i == 2 {
                        i += 1;
                    }
                    break;
                } else if i + 1 < n {
                    self.data("&");
                    i += 1;
                } else {
                    break;
                }
            }
        }
        if end && i < n && self.cdata_elem.is_none() {
            self.data(raw.get(i..).unwrap_or(""));
            i = n;
        }
        i
    }

    pub(super) fn parse_comment(&mut self, i: usize) -> Option<usize> {
        let (s, e) = self.find_close(Pat::CommentClose, i + 4)?;
        let body = self.raw.get(i + 4..s).unwrap_or("");
        self.special(body, StrKind::Comment);
        Some(e)
    }

    pub(super) fn parse_bogus_comment(&mut self, i: usize) -> Option<usize> {
        let pos = self.find_byte(Pat::Gt, i + 2)?;
        let body = self.raw.get(i + 2..pos).unwrap_or("");
        self.special(body, StrKind::Comment);
        Some(pos + 1)
    }

    pub(super) fn parse_pi(&mut self, i: usize) -> Option<usize> {
        let j = self.find_byte(Pat::Gt, i + 2)?;
        let body = self.raw.get(i + 2..j).unwrap_or("");
        self.special(body, StrKind::Pi);
        Some(j + 1)
    }

    pub(super) fn parse_html_declaration(&mut self, i: usize) -> Option<usize> {
        let b = self.raw.as_bytes();
        if b.get(i..i + 3) == Some(b"<![") {
            return self.parse_marked_section(i);
        }
        if b.get(i..i + 9)
            .is_some_and(|t| t.eq_ignore_ascii_case(b"<!doctype"))
        {
            let gt = self.find_byte(Pat::Gt, i + 9)?;
            let data = self.raw.get(i + 2..gt).unwrap_or("");
            // bs4: data[len("DOCTYPE "):], in code points.
            let rest = data.char_indices().nth(8).map_or("", |(p, _)| &data[p..]);
            self.special(rest, StrKind::Doctype);
            return Some(gt + 1);
        }
        self.parse_bogus_comment(i)
    }

    pub(super) fn parse_marked_section(&mut self, i: usize) -> Option<usize> {
        let raw = self.raw;
        let b = raw.as_bytes();
        let j = i + 3;
        if j >= b.len() {
            return None;
        }
        // _declname_match: [a-zA-Z][-_.a-zA-Z0-9]*\s*
        if !b[j].is_ascii_alphabetic() {
            // Python raises AssertionError here; treat as a bogus comment.
            return self.parse_bogus_comment(i);
        }
        let mut q = j + 1;
        while b
            .get(q)
            .is_some_and(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.'))
        {
            q += 1;
        }
        let name_end = q;
        let q = skip_ws(raw, q);
        if q >= b.len() {
            return None;
        }
        let name = raw.get(j..name_end).unwrap_or("").to_ascii_lowercase();
        let pat = match name.as_str() {
            "temp" | "cdata" | "ignore" | "include" | "rcdata" => Pat::MsClose2,
            "if" | "else" | "endif" => Pat::MsClose,
            _ => return self.parse_bogus_comment(i),
        };
        let (s, e) = self.find_close(pat, i + 3)?;
        let data = raw.get(i + 3..s).unwrap_or("");
        if data
            .as_bytes()
            .get(..6)
            .is_some_and(|p| p.eq_ignore_ascii_case(b"CDATA["))
        {
            self.special(data.get(6..).unwrap_or(""), StrKind::CData);
        } else {
            self.special(data, StrKind::Declaration);
        }
        Some(e)
    }

    /// `check_for_whole_start_tag` (the `locatestarttagend_tolerant` regex).
    /// Also leaves the attributes it matched in `self.attrs`: `parse_starttag`'s
    /// `attrfind_tolerant` loop finds exactly the same ones (the two regexes differ only in
    /// skipping a `/` before `>`, where no attribute can start).
    pub(super) fn check_for_whole_start_tag(&mut self, i: usize) -> Option<usize> {
        let s = self.raw;
        let b = s.as_bytes();
        let mut j = scan_tag_name(s, i + 2);
        loop {
            let l = ws_len(s, j);
            if l > 0 {
                j += l;
            } else if b.get(j) == Some(&b'/') {
                j += 1;
            } else {
                break;
            }
        }
        self.attrs.clear();
        while let Some(m) = match_attr(s, j) {
            self.attrs.push(m);
            j = m.end;
        }
        j = skip_ws(s, j);
        match b.get(j) {
            Some(b'>') => Some(j + 1),
            Some(b'/') => {
                if b.get(j + 1) == Some(&b'>') {
                    Some(j + 2)
                } else {
                    None
                }
            }
            None => None,
            Some(c) if c.is_ascii_alphabetic() || *c == b'=' => None,
            Some(_) => Some(j),
        }
    }

    pub(super) fn parse_starttag(&mut self, i: usize) -> Option<usize> {
        let endpos = self.check_for_whole_start_tag(i)?;
        let raw = self.raw;
        let name_end = scan_tag_name(raw, i + 2);
        let k = match self.attrs.last() {
            Some(m) => m.end,
            None => skip_ws_or_lone_slash(raw, name_end),
        };
        let rest = if k <= endpos {
            py_strip(raw.get(k..endpos).unwrap_or(""))
        } else {
            ""
        };
        if rest != ">" && rest != "/>" {
            self.data(raw.get(i..endpos).unwrap_or(""));
            return Some(endpos);
        }
        self.index_attrs();
        let id = self.intern(raw.get(i + 1..name_end).unwrap_or(""));
        if rest == "/>" {
            // handle_startendtag
            self.start_tag(id, false);
            self.end_tag_id(Some(id));
        } else {
            self.start_tag(id, true);
            self.cdata_elem = match &*self.names[id] {
                "script" => Some("script"),
                "style" => Some("style"),
                _ => None,
            };
        }
        Some(endpos)
    }

    pub(super) fn parse_endtag(&mut self, i: usize) -> Option<usize> {
        let raw = self.raw;
        let b = raw.as_bytes();
        let gt = self.find_byte(Pat::Gt, i + 1)?;
        let gtpos = gt + 1;
        // endtagfind: </\s*([a-zA-Z][-.a-zA-Z0-9:_]*)\s*>
        let p = skip_ws(raw, i + 2);
        let mut found = None;
        if b.get(p).is_some_and(u8::is_ascii_alphabetic) {
            let mut q = p + 1;
            while b.get(q).is_some_and(|c| {
                c.is_ascii_alphanumeric() || matches!(c, b'-' | b'.' | b':' | b'_')
            }) {
                q += 1;
            }
            let r = skip_ws(raw, q);
            if b.get(r) == Some(&b'>') {
                found = Some((p, q));
            }
        }
        let Some((p, q)) = found else {
            if self.cdata_elem.is_some() {
                self.data(raw.get(i..gtpos).unwrap_or(""));
                return Some(gtpos);
            }
            if b.get(i + 2).is_some_and(u8::is_ascii_alphabetic) {
                let name_end = scan_tag_name(raw, i + 3);
                let after = skip_ws_or_lone_slash(raw, name_end);
                let id = self.lookup(raw.get(i + 2..name_end).unwrap_or(""));
                let gt2 = self.find_byte(Pat::Gt, after).unwrap_or(gt);
                self.end_tag_id(id);
                return Some(gt2 + 1);
            }
            if b.get(i..i + 3) == Some(b"</>") {
                return Some(i + 3);
            }
            return self.parse_bogus_comment(i);
        };
        let elem = raw.get(p..q).unwrap_or("");
        if let Some(ce) = self.cdata_elem {
            if !elem.eq_ignore_ascii_case(ce) {
                self.data(raw.get(i..gtpos).unwrap_or(""));
                return Some(gtpos);
            }
        }
        let id = self.lookup(elem);
        self.end_tag_id(id);
        self.cdata_elem = None;
        Some(gtpos)
    }
}

/// One attribute per `attrfind_tolerant` at `k` (the `locatestarttagend_tolerant` attribute
/// group ends at the same position), including its backtracking on unterminated quotes.
pub(super) fn match_attr(s: &str, k: usize) -> Option<RawAttr> {
    let b = s.as_bytes();
    // (?<=['"\s/])
    let pc = match b.get(k.checked_sub(1)?) {
        Some(&x) if x < 0x80 => char::from(x),
        _ => prev_char(s, k)?,
    };
    if !(pc == '\'' || pc == '"' || pc == '/' || is_py_ws(pc)) {
        return None;
    }
    // [^\s/>][^\s/=>]*
    let c = char_at(s, k)?;
    if is_py_ws(c) || c == '/' || c == '>' {
        return None;
    }
    let mut p = k + c.len_utf8();
    while let Some(&x) = b.get(p) {
        if x < 0x80 {
            if matches!(x, 9..=13 | 0x1c..=0x1f | b' ' | b'/' | b'=' | b'>') {
                break;
            }
            p += 1;
        } else {
            match char_at(s, p) {
                Some(c) if !is_py_ws(c) => p += c.len_utf8(),
                _ => break,
            }
        }
    }
    let name = (k, p);
    let mut value = None;
    let mut q = p;
    // (\s*=+\s*('[^']*'|"[^"]*"|(?!['"])[^>\s]*))?
    let s1 = skip_ws(s, p);
    if b.get(s1) == Some(&b'=') {
        let mut e = s1;
        while b.get(e) == Some(&b'=') {
            e += 1;
        }
        let s2 = skip_ws(s, e);
        if let Some(vend) = match_value(s, s2) {
            value = Some((s2, vend));
            q = vend;
        } else if s2 > e {
            // Give back the last whitespace character: an empty bare value before it.
            let last = s2 - prev_char(s, s2).map_or(1, char::len_utf8);
            value = Some((last, last));
            q = last;
        } else if e - s1 >= 2 {
            // Give back one `=`: a bare value starting with it.
            let vs = e - 1;
            let vend = scan_bare(s, vs);
            value = Some((vs, vend));
            q = vend;
        }
    }
    Some(RawAttr {
        name,
        value,
        end: skip_ws_or_lone_slash(s, q),
    })
}

pub(super) fn match_value(s: &str, p: usize) -> Option<usize> {
    let b = s.as_bytes();
    match b.get(p) {
        Some(&q @ (b'\'' | b'"')) => {
            let close = b.get(p + 1..)?.iter().position(|&x| x == q)?;
            Some(p + 1 + close + 1)
        }
        _ => Some(scan_bare(s, p)),
    }
}

/// `[^>\s]*` from `p`.
pub(super) fn scan_bare(s: &str, mut p: usize) -> usize {
    let b = s.as_bytes();
    while let Some(&x) = b.get(p) {
        if x < 0x80 {
            if matches!(x, 9..=13 | 0x1c..=0x1f | b' ' | b'>') {
                break;
            }
            p += 1;
        } else {
            match char_at(s, p) {
                Some(c) if !is_py_ws(c) => p += c.len_utf8(),
                _ => break,
            }
        }
    }
    p
}

/// `charref`: `&#(?:[0-9]+|[xX][0-9a-fA-F]+)[^0-9a-fA-F]` at `i`: (name start, name end,
/// terminator position).
pub(super) fn charref_match(b: &[u8], i: usize) -> Option<(usize, usize, usize)> {
    let p = i + 2;
    let first = *b.get(p)?;
    if first.is_ascii_digit() {
        let mut q = p;
        while b.get(q).is_some_and(u8::is_ascii_digit) {
            q += 1;
        }
        let t = *b.get(q)?;
        if t.is_ascii_hexdigit() {
            return None;
        }
        Some((p, q, q))
    } else if first == b'x' || first == b'X' {
        let mut q = p + 1;
        while b.get(q).is_some_and(u8::is_ascii_hexdigit) {
            q += 1;
        }
        if q == p + 1 || q >= b.len() {
            return None;
        }
        Some((p, q, q))
    } else {
        None
    }
}

/// `entityref`: `&([a-zA-Z][-.a-zA-Z0-9]*)[^a-zA-Z0-9]` at `i`.
pub(super) fn entityref_match(b: &[u8], i: usize) -> Option<(usize, usize, usize)> {
    let p = i + 1;
    if !b.get(p)?.is_ascii_alphabetic() {
        return None;
    }
    let mut q = p + 1;
    while b
        .get(q)
        .is_some_and(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'.'))
    {
        q += 1;
    }
    if q < b.len() {
        return Some((p, q, q));
    }
    // At the end of the input the regex backtracks to a `-` or `.` terminator.
    let m = (p + 1..q).rev().find(|&m| matches!(b[m], b'-' | b'.'))?;
    Some((p, m, m))
}
