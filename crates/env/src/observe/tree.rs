//! bs4's tree building over the parser's events, without a DOM: the open-element stack, string
//! containers and `get_text()` ranges, and the outputs (`text`, `text_rich`, clickables,
//! elements) written as strings are finished.

use super::*;
use agentq_core::pycompat::{is_space as is_py_ws, strip as py_strip};
use agentq_core::rng::FnvBuild;
use std::borrow::Cow;
use std::collections::HashMap;

/// Kinds of bs4 strings that matter here.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum StrKind {
    Text,
    Comment,
    CData,
    Doctype,
    Declaration,
    Pi,
}

/// Text buffers for `get_text()`: 0 holds `NavigableString` + `CData` (what ordinary tags
/// return), 1..=5 the strings bs4 puts in `rt`, `rp`, `style`, `script`, `template` containers.
pub(super) const N_BUFS: usize = 6;

pub(super) fn container_kind(name: &str) -> u8 {
    match name {
        "rt" => 1,
        "rp" => 2,
        "style" => 3,
        "script" => 4,
        "template" => 5,
        _ => 0,
    }
}

pub(super) fn is_void(name: &str) -> bool {
    matches!(
        name,
        "area"
            | "base"
            | "br"
            | "col"
            | "embed"
            | "hr"
            | "img"
            | "input"
            | "keygen"
            | "link"
            | "menuitem"
            | "meta"
            | "param"
            | "source"
            | "track"
            | "wbr"
            | "basefont"
            | "bgsound"
            | "command"
            | "frame"
            | "image"
            | "isindex"
            | "nextid"
            | "spacer"
    )
}

pub(super) const F_BUTTON: u8 = 1;
pub(super) const F_LABEL: u8 = 2;
pub(super) const F_EXACT_PRODUCT_LINK: u8 = 4;
pub(super) const F_PRESERVE: u8 = 8;
pub(super) const F_INSTR_ROOT: u8 = 16;
pub(super) const F_IGNORED: u8 = 32;

/// An open element.
pub(super) struct Open {
    /// Interned tag name (index into `Builder::names`).
    pub(super) name: usize,
    pub(super) flags: u8,
    /// Innermost string container (see [`N_BUFS`]), 0 for none.
    pub(super) container: u8,
    pub(super) collector: Option<usize>,
    pub(super) form: Option<usize>,
    pub(super) select: Option<usize>,
}

/// The text of one element (`get_text()`): a range of one buffer.
pub(super) struct Collector {
    pub(super) buf: usize,
    pub(super) start: usize,
    pub(super) end: Option<usize>,
}

/// An interactive item found while parsing, finished in [`Builder::finish`].
pub(super) struct Item {
    pub(super) role: Role,
    /// The element's text (a collector), used as the label when `label` is `None`.
    pub(super) text: Option<usize>,
    pub(super) label: Option<String>,
    pub(super) id: Option<String>,
    pub(super) target: Option<String>,
    pub(super) selected: bool,
    /// For select options: index into `selects`.
    pub(super) select: Option<usize>,
    /// A `.product-link` (selected when its ASIN was visited).
    pub(super) product_link: bool,
}

impl Item {
    fn new(role: Role, id: Option<String>) -> Self {
        Item {
            role,
            text: None,
            label: None,
            id,
            target: None,
            selected: false,
            select: None,
            product_link: false,
        }
    }
}

/// The `<input type>`s (lower-cased; absent counts as text) that are text boxes.
fn is_text_input_type(ty: &str) -> bool {
    matches!(
        ty,
        "" | "text" | "search" | "email" | "number" | "tel" | "url" | "password"
    )
}

pub(super) struct SelectInfo {
    pub(super) key: Option<String>,
}

/// The attributes the observation reads (lower-cased names); the `A_*` constants index them.
pub(super) const ATTRS: [&str; 12] = [
    "id",
    "class",
    "type",
    "value",
    "name",
    "href",
    "action",
    "data-url",
    "onclick",
    "checked",
    "selected",
    "placeholder",
];
pub(super) const A_ID: usize = 0;
pub(super) const A_CLASS: usize = 1;
pub(super) const A_TYPE: usize = 2;
pub(super) const A_VALUE: usize = 3;
pub(super) const A_NAME: usize = 4;
pub(super) const A_HREF: usize = 5;
pub(super) const A_ACTION: usize = 6;
pub(super) const A_DATA_URL: usize = 7;
pub(super) const A_ONCLICK: usize = 8;
pub(super) const A_CHECKED: usize = 9;
pub(super) const A_SELECTED: usize = 10;
pub(super) const A_PLACEHOLDER: usize = 11;

/// One attribute as html.parser matched it: name range and raw value range (quotes included).
#[derive(Clone, Copy)]
pub(super) struct RawAttr {
    pub(super) name: (usize, usize),
    pub(super) value: Option<(usize, usize)>,
    pub(super) end: usize,
}

/// Patterns searched for up to the end of the input; `Builder::fail_from` keeps, per pattern,
/// the earliest start from which a search failed (any later start fails too).
#[derive(Clone, Copy)]
pub(super) enum Pat {
    Gt,
    Lt,
    Semi,
    CommentClose,
    MsClose,
    MsClose2,
}

pub(super) struct Builder<'h> {
    pub(super) raw: &'h str,
    pub(super) url: &'h str,
    pub(super) url_decoded: Option<String>,
    pub(super) visited: &'h dyn VisitedAsins,
    pub(super) fail_from: [usize; 6],

    pub(super) cdata_elem: Option<&'static str>,
    pub(super) stack: Vec<Open>,
    /// Interned tag names; `open_count` (bs4's `open_tag_counter`) and `already_closed`
    /// (`already_closed_empty_element`, a multiset) are indexed by name id.
    pub(super) names: Vec<Box<str>>,
    pub(super) name_ids: HashMap<Box<str>, usize, FnvBuild>,
    pub(super) open_count: Vec<u32>,
    pub(super) already_closed: Vec<u32>,
    pub(super) lower_scratch: String,
    pub(super) preserve: u32,
    pub(super) cur: String,
    pub(super) has_cur: bool,
    /// Attributes of the current start tag, and per [`ATTRS`] entry the index of its last
    /// occurrence plus one (0: absent).
    pub(super) attrs: Vec<RawAttr>,
    pub(super) attr_ix: [usize; ATTRS.len()],
    pub(super) next_lt: usize,
    pub(super) next_amp: usize,

    pub(super) bufs: [String; N_BUFS],
    pub(super) open_collectors: [u32; N_BUFS],
    pub(super) collectors: Vec<Collector>,

    pub(super) text: String,
    pub(super) text_started: bool,
    pub(super) rich: String,
    pub(super) clicked: Vec<String>,

    pub(super) has_search_bar: bool,
    pub(super) instr_state: u8,
    pub(super) instr_root: Option<usize>,
    instr_h4: Option<usize>,
    pub(super) forms: Vec<Option<String>>,
    pub(super) selects: Vec<SelectInfo>,
    pub(super) btns: Vec<Item>,
    pub(super) links: Vec<Item>,
    pub(super) radios: Vec<Item>,
    pub(super) controls: Vec<Item>,
}

impl<'h> Builder<'h> {
    pub(super) fn new(raw: &'h str, url: &'h str, visited: &'h dyn VisitedAsins) -> Self {
        Builder {
            raw,
            url,
            url_decoded: None,
            visited,
            fail_from: [usize::MAX; 6],
            cdata_elem: None,
            stack: Vec::with_capacity(32),
            names: Vec::new(),
            name_ids: HashMap::default(),
            open_count: Vec::new(),
            already_closed: Vec::new(),
            lower_scratch: String::new(),
            preserve: 0,
            cur: String::new(),
            has_cur: false,
            attrs: Vec::new(),
            attr_ix: [0; ATTRS.len()],
            next_lt: usize::MAX,
            next_amp: usize::MAX,
            bufs: Default::default(),
            open_collectors: [0; N_BUFS],
            collectors: Vec::new(),
            text: String::with_capacity(raw.len() / 4),
            text_started: false,
            rich: String::with_capacity(raw.len() / 4),
            clicked: Vec::new(),
            has_search_bar: false,
            instr_state: 0,
            instr_root: None,
            instr_h4: None,
            forms: Vec::new(),
            selects: Vec::new(),
            btns: Vec::new(),
            links: Vec::new(),
            radios: Vec::new(),
            controls: Vec::new(),
        }
    }
}

impl<'h> Builder<'h> {
    #[inline]
    pub(super) fn data(&mut self, s: &str) {
        self.cur.push_str(s);
        self.has_cur = true;
    }

    /// Comment, doctype, declaration, CDATA or processing instruction: its own string.
    pub(super) fn special(&mut self, s: &str, kind: StrKind) {
        self.end_data(StrKind::Text);
        self.data(s);
        self.end_data(kind);
    }

    /// The id of a tag name, lower-cased as html.parser does (`str.lower()`).
    pub(super) fn intern(&mut self, raw_name: &str) -> usize {
        let lowered = if raw_name
            .bytes()
            .any(|x| x.is_ascii_uppercase() || x >= 0x80)
        {
            self.lower_scratch = py_lower(raw_name);
            self.lower_scratch.as_str()
        } else {
            raw_name
        };
        if let Some(&id) = self.name_ids.get(lowered) {
            return id;
        }
        let id = self.names.len();
        let name: Box<str> = lowered.into();
        self.names.push(name.clone());
        self.name_ids.insert(name, id);
        self.open_count.push(0);
        self.already_closed.push(0);
        id
    }

    /// The id of a tag name if it was ever opened (else no open tag can match it).
    pub(super) fn lookup(&mut self, raw_name: &str) -> Option<usize> {
        if raw_name
            .bytes()
            .any(|x| x.is_ascii_uppercase() || x >= 0x80)
        {
            self.lower_scratch = py_lower(raw_name);
            self.name_ids.get(self.lower_scratch.as_str()).copied()
        } else {
            self.name_ids.get(raw_name).copied()
        }
    }

    /// `BeautifulSoupHTMLParser.handle_starttag`.
    pub(super) fn start_tag(&mut self, id: usize, handle_empty_element: bool) {
        self.end_data(StrKind::Text);
        self.push(id);
        if handle_empty_element && self.names.get(id).is_some_and(|n| is_void(n)) {
            self.soup_end_tag(Some(id));
            if let Some(c) = self.already_closed.get_mut(id) {
                *c += 1;
            }
        }
    }

    /// `BeautifulSoupHTMLParser.handle_endtag(name, check_already_closed=True)`; `None` for
    /// a name never seen in a start tag.
    pub(super) fn end_tag_id(&mut self, id: Option<usize>) {
        if let Some(c) = id.and_then(|id| self.already_closed.get_mut(id)) {
            if *c > 0 {
                *c -= 1;
                return;
            }
        }
        self.soup_end_tag(id);
    }

    /// `BeautifulSoup.handle_endtag`: `endData` and `_popToTag`.
    pub(super) fn soup_end_tag(&mut self, id: Option<usize>) {
        self.end_data(StrKind::Text);
        let Some(id) = id else { return };
        if self.open_count.get(id).copied().unwrap_or(0) == 0 {
            return;
        }
        while let Some(o) = self.stack.pop() {
            let hit = o.name == id;
            self.on_pop(o);
            if hit {
                break;
            }
        }
    }

    pub(super) fn on_pop(&mut self, o: Open) {
        if let Some(c) = self.open_count.get_mut(o.name) {
            *c = c.saturating_sub(1);
        }
        if o.flags & F_PRESERVE != 0 {
            self.preserve = self.preserve.saturating_sub(1);
        }
        if let Some(ci) = o.collector {
            if let Some(c) = self.collectors.get_mut(ci) {
                c.end = Some(self.bufs[c.buf].len());
                self.open_collectors[c.buf] = self.open_collectors[c.buf].saturating_sub(1);
            }
        }
        if o.flags & F_INSTR_ROOT != 0 {
            self.instr_state = 2;
        }
    }

    pub(super) fn new_collector(&mut self, container_name: &str) -> usize {
        let buf = usize::from(container_kind(container_name));
        self.open_collectors[buf] += 1;
        self.collectors.push(Collector {
            buf,
            start: self.bufs[buf].len(),
            end: None,
        });
        self.collectors.len() - 1
    }

    /// The last value of attribute `a` of the current start tag: `None` if absent, `""` if
    /// it has no value, else the html.parser value (quotes stripped, `html.unescape`d).
    pub(super) fn attr(&self, a: usize) -> Option<Cow<'h, str>> {
        let raw = self.raw;
        let m = self.attrs.get(self.attr_ix[a].checked_sub(1)?)?;
        let Some((s, e)) = m.value else {
            return Some(Cow::Borrowed(""));
        };
        let v = raw.get(s..e).unwrap_or("");
        let vb = v.as_bytes();
        let v = if vb.len() >= 2 && (vb[0] == b'\'' || vb[0] == b'"') && vb[vb.len() - 1] == vb[0] {
            &v[1..v.len() - 1]
        } else {
            v
        };
        Some(py_unescape(v))
    }

    /// Fills `attr_ix` for the current start tag (attribute names lower-cased; the last
    /// occurrence wins, as bs4's default `on_duplicate_attribute` does).
    pub(super) fn index_attrs(&mut self) {
        self.attr_ix = [0; ATTRS.len()];
        for (i, m) in self.attrs.iter().enumerate() {
            let Some(name) = self.raw.get(m.name.0..m.name.1) else {
                continue;
            };
            let a = if name.is_ascii() {
                let mut buf = [0u8; 11];
                let Some(dst) = buf.get_mut(..name.len()) else {
                    continue;
                };
                dst.copy_from_slice(name.as_bytes());
                dst.make_ascii_lowercase();
                match &*dst {
                    b"id" => A_ID,
                    b"class" => A_CLASS,
                    b"type" => A_TYPE,
                    b"value" => A_VALUE,
                    b"name" => A_NAME,
                    b"href" => A_HREF,
                    b"action" => A_ACTION,
                    b"data-url" => A_DATA_URL,
                    b"onclick" => A_ONCLICK,
                    b"checked" => A_CHECKED,
                    b"selected" => A_SELECTED,
                    b"placeholder" => A_PLACEHOLDER,
                    _ => continue,
                }
            } else {
                // `str.lower()` can make ASCII out of non-ASCII (KELVIN SIGN → k).
                match ATTRS.iter().position(|want| lower_eq(name, want)) {
                    Some(a) => a,
                    None => continue,
                }
            };
            self.attr_ix[a] = i + 1;
        }
    }

    pub(super) fn form_action(&self, form: Option<usize>) -> Option<String> {
        form.and_then(|f| self.forms.get(f).cloned().flatten())
    }

    /// `BeautifulSoup.pushTag` plus the bookkeeping for clickables and elements.
    pub(super) fn push(&mut self, name_id: usize) {
        let names = std::mem::take(&mut self.names);
        self.push_named(name_id, names.get(name_id).map_or("", |n| n));
        self.names = names;
    }

    pub(super) fn push_named(&mut self, name_id: usize, name: &str) {
        let parent = self.stack.last();
        let own_container = container_kind(name);
        let container = if own_container != 0 {
            own_container
        } else {
            parent.map_or(0, |p| p.container)
        };
        let mut open = Open {
            name: name_id,
            flags: 0,
            container,
            collector: None,
            form: parent.and_then(|p| p.form),
            select: parent.and_then(|p| p.select),
        };
        match name {
            "button" => open.flags |= F_BUTTON,
            "label" => open.flags |= F_LABEL,
            "pre" | "textarea" => {
                open.flags |= F_PRESERVE;
                self.preserve += 1;
            }
            "style" | "script" | "head" | "title" | "meta" => open.flags |= F_IGNORED,
            _ => {}
        }
        let id = self.attr(A_ID).map(Cow::into_owned);
        if name == "form" {
            let action = self.attr(A_ACTION).map(Cow::into_owned);
            self.forms.push(action);
            open.form = Some(self.forms.len() - 1);
        }
        if id.as_deref() == Some(contract::SEARCH_INPUT_ID) {
            self.has_search_bar = true;
            let mut item = Item::new(Role::SearchBox, id.clone());
            item.label = Some("search".to_string());
            item.target = self.form_action(open.form);
            self.controls.push(item);
        }
        self.open_instruction(name, id.as_deref(), &mut open);
        self.open_clickable(name, id.as_deref(), &mut open);
        self.open_control(name, id, &mut open);

        if let Some(c) = self.open_count.get_mut(name_id) {
            *c += 1;
        }
        self.stack.push(open);
    }

    /// The element's `get_text()` collector, started on first use.
    fn text_of(&mut self, name: &str, open: &mut Open) -> usize {
        match open.collector {
            Some(c) => c,
            None => {
                let c = self.new_collector(name);
                open.collector = Some(c);
                c
            }
        }
    }

    /// The instruction root ([`contract::INSTRUCTION_ID`]) and its first `<h4>`.
    fn open_instruction(&mut self, name: &str, id: Option<&str>, open: &mut Open) {
        if self.instr_state == 0 && id == Some(contract::INSTRUCTION_ID) {
            self.instr_state = 1;
            open.flags |= F_INSTR_ROOT;
            self.instr_root = Some(self.text_of(name, open));
        } else if self.instr_state == 1 && self.instr_h4.is_none() && name == "h4" {
            self.instr_h4 = Some(self.text_of(name, open));
        }
    }

    /// Buttons ([`contract::BUTTON_CLASS`]) and item links ([`contract::ITEM_LINK_CLASS`]).
    fn open_clickable(&mut self, name: &str, id: Option<&str>, open: &mut Open) {
        let (mut is_btn, mut is_link, mut n_tokens) = (false, false, 0);
        if let Some(class) = self.attr(A_CLASS) {
            let ascii = class.is_ascii();
            let split = |c: char| {
                if ascii {
                    matches!(c, '\t'..='\r' | '\u{1c}'..='\u{1f}' | ' ')
                } else {
                    is_py_ws(c)
                }
            };
            for tok in class.split(split).filter(|t| !t.is_empty()) {
                n_tokens += 1;
                is_btn |= tok == contract::BUTTON_CLASS;
                is_link |= tok == contract::ITEM_LINK_CLASS;
            }
        }
        // text_rich tests `t.parent.get('class') == ["product-link"]`.
        if is_link && n_tokens == 1 {
            open.flags |= F_EXACT_PRODUCT_LINK;
        }
        if !(is_btn || is_link) {
            return;
        }
        let text = Some(self.text_of(name, open));
        let href = self.attr(A_HREF).map(Cow::into_owned);
        let data_url = self.attr(A_DATA_URL).map(Cow::into_owned);
        let id = id.map(str::to_string);
        if is_btn {
            let (role, target) = match (name, &href) {
                ("a", Some(_)) => (Role::Link, href.clone()),
                ("a", None) => (Role::Link, data_url.clone()),
                _ => (Role::Button, data_url.clone()),
            };
            let mut item = Item::new(role, id.clone());
            item.text = text;
            item.target = target.or_else(|| self.form_action(open.form));
            self.btns.push(item);
        }
        if is_link {
            let mut item = Item::new(Role::Link, id);
            item.text = text;
            item.target = href.or(data_url).or_else(|| self.form_action(open.form));
            item.product_link = true;
            self.links.push(item);
        }
    }

    /// Radios, text boxes, selects and their options.
    fn open_control(&mut self, name: &str, id: Option<String>, open: &mut Open) {
        let not_search = id.as_deref() != Some(contract::SEARCH_INPUT_ID);
        match name {
            "input" => {
                let ty = self.attr(A_TYPE).map(|t| t.to_ascii_lowercase());
                if ty.as_deref() == Some("radio") {
                    let value = self
                        .attr(A_VALUE)
                        .map_or_else(|| "None".to_string(), Cow::into_owned);
                    let mut item = Item::new(Role::Radio, id);
                    item.label = Some(value);
                    item.target = self
                        .attr(A_DATA_URL)
                        .map(Cow::into_owned)
                        .or_else(|| self.attr(A_ONCLICK).and_then(|o| onclick_target(&o)));
                    item.selected = self.attr(A_CHECKED).is_some();
                    self.radios.push(item);
                } else if not_search && ty.as_deref().is_none_or(is_text_input_type) {
                    self.push_textbox(id, open.form);
                }
            }
            "textarea" if not_search => self.push_textbox(id, open.form),
            "select" => {
                let key = id.or_else(|| self.attr(A_NAME).map(Cow::into_owned));
                self.selects.push(SelectInfo { key });
                open.select = Some(self.selects.len() - 1);
            }
            "option" if open.select.is_some() => {
                let mut item = Item::new(Role::Select, None);
                item.label = self.attr(A_VALUE).map(|v| py_lower(&v));
                if item.label.is_none() {
                    item.text = Some(self.text_of(name, open));
                }
                item.selected = self.attr(A_SELECTED).is_some();
                item.target = self.form_action(open.form);
                item.select = open.select;
                self.controls.push(item);
            }
            _ => {}
        }
    }

    pub(super) fn push_textbox(&mut self, id: Option<String>, form: Option<usize>) {
        let label = self
            .attr(A_NAME)
            .or_else(|| self.attr(A_PLACEHOLDER))
            .map(|v| py_lower(&v))
            .or_else(|| id.as_deref().map(py_lower))
            .unwrap_or_default();
        let mut item = Item::new(Role::TextBox, id);
        item.label = Some(label);
        item.target = self.form_action(form);
        self.controls.push(item);
    }

    /// `BeautifulSoup.endData`: finishes the pending string as a node of `kind`.
    pub(super) fn end_data(&mut self, kind: StrKind) {
        if !self.has_cur {
            return;
        }
        self.has_cur = false;
        let mut s = std::mem::take(&mut self.cur);
        if self.preserve == 0
            && s.bytes()
                .all(|x| matches!(x, b' ' | b'\n' | b'\t' | 0x0c | b'\r'))
        {
            let collapsed = if s.contains('\n') { "\n" } else { " " };
            s.clear();
            s.push_str(collapsed);
        }
        self.node(&s, kind);
        s.clear();
        self.cur = s;
    }

    /// A finished string node: feeds element texts and, if visible, the observations.
    pub(super) fn node(&mut self, s: &str, kind: StrKind) {
        let (flags, container) = match self.stack.last() {
            Some(o) => (Some(o.flags), usize::from(o.container)),
            None => (None, 0),
        };
        let buf = match kind {
            StrKind::Text => Some(container),
            StrKind::CData => Some(0),
            _ => None,
        };
        if let Some(buf) = buf {
            if self.open_collectors[buf] > 0 {
                self.bufs[buf].push_str(s);
            }
        }
        // tag_visible: no comments, parent not style/script/head/title/meta/[document].
        let Some(flags) = flags else { return };
        // `find_all` skips empty (falsy) strings, which only `<pre>`/`<textarea>` keep.
        if kind == StrKind::Comment || flags & F_IGNORED != 0 || s == "\n" || s.is_empty() {
            return;
        }
        if self.text_started {
            self.text.push_str(" [SEP] ");
        }
        self.text_started = true;
        self.text.push_str(py_strip(s));

        if flags & F_BUTTON != 0 {
            self.rich.push_str("[button] ");
            self.rich.push_str(s);
            self.rich.push_str(" [button_]\n");
        } else if flags & F_LABEL != 0 {
            if self.url_has_quoted(s) {
                self.clicked.push(s.to_string());
                self.rich.push_str("  [clicked button] ");
                self.rich.push_str(s);
                self.rich.push_str(" [clicked button_]\n");
            } else {
                self.rich.push_str("  [button] ");
                self.rich.push_str(s);
                self.rich.push_str(" [button_]\n");
            }
        } else if flags & F_EXACT_PRODUCT_LINK != 0 {
            if self.visited.contains_asin(s) {
                self.rich.push_str("\n[clicked button] ");
                self.rich.push_str(s);
                self.rich.push_str(" [clicked button_]\n");
            } else {
                self.rich.push_str("\n[button] ");
                self.rich.push_str(s);
                self.rich.push_str(" [button_]\n");
            }
        } else {
            self.rich.push_str(s);
            self.rich.push('\n');
        }
    }

    /// Whether `"t"` occurs in the URL (raw, or percent-decoded).
    pub(super) fn url_has_quoted(&mut self, t: &str) -> bool {
        let needle = format!("\"{t}\"");
        if self.url.contains(&needle) {
            return true;
        }
        if !self.url.contains('%') {
            return false;
        }
        let decoded = self
            .url_decoded
            .get_or_insert_with(|| agentq_core::pycompat::unquote(self.url));
        decoded.contains(&needle)
    }

    pub(super) fn collected(&self, c: usize) -> &str {
        let Some(col) = self.collectors.get(c) else {
            return "";
        };
        let buf = &self.bufs[col.buf];
        let end = col.end.unwrap_or(buf.len());
        buf.get(col.start..end).unwrap_or("")
    }

    pub(super) fn finish(mut self) -> Observation {
        // BeautifulSoup._feed: endData, then pop every open tag.
        self.end_data(StrKind::Text);
        while let Some(o) = self.stack.pop() {
            self.on_pop(o);
        }

        let mut text_rich = String::new();
        for t in self.clicked.iter().rev() {
            text_rich.push_str("You have clicked ");
            text_rich.push_str(t);
            text_rich.push_str(".\n");
        }
        text_rich.push_str(&self.rich);

        let instruction = {
            let raw = match (self.instr_h4, self.instr_root) {
                (Some(c), _) | (None, Some(c)) => self.collected(c),
                _ => "",
            };
            let t = py_strip(raw);
            py_strip(t.strip_prefix("Instruction:").unwrap_or(t)).to_string()
        };

        // text_to_clickable: btns + product links, then radio values; a repeated key keeps
        // its first position and takes the later element.
        let mut keys: Vec<String> = Vec::new();
        let mut chosen: Vec<usize> = Vec::new();
        let mut index: HashMap<String, usize> = HashMap::new();
        let mut items: Vec<Item> = Vec::new();
        let btns = std::mem::take(&mut self.btns);
        let links = std::mem::take(&mut self.links);
        let radios = std::mem::take(&mut self.radios);
        // Nested buttons make the label bytes quadratic in the page size (in WebShop too);
        // past a budget of four times the page, labels are cut to `MAX_CUT_LABEL` bytes.
        let mut budget = self.raw.len().saturating_mul(4).max(1 << 20);
        for mut it in btns.into_iter().chain(links).chain(radios) {
            let key = match (&it.label, it.text) {
                (Some(l), _) => l.clone(),
                (None, Some(c)) => {
                    let mut t = self.collected(c);
                    if t.len() > budget {
                        t = &t[..floor_boundary(t, MAX_CUT_LABEL)];
                    }
                    budget = budget.saturating_sub(t.len());
                    py_lower(t)
                }
                (None, None) => String::new(),
            };
            if let (true, Some(c)) = (it.product_link, it.text) {
                it.selected = self.visited.contains_asin(self.collected(c));
            }
            if it.role == Role::Radio && !it.selected {
                it.selected = self.url_has_quoted(&key);
            }
            items.push(it);
            let ix = items.len() - 1;
            match index.get(&key) {
                Some(&pos) => chosen[pos] = ix,
                None => {
                    index.insert(key.clone(), keys.len());
                    keys.push(key);
                    chosen.push(ix);
                }
            }
        }

        let mut elements: Vec<Element> = Vec::with_capacity(keys.len() + self.controls.len());
        for (key, &ix) in keys.iter().zip(&chosen) {
            let it = &items[ix];
            let n = elements.len();
            elements.push(Element {
                id: it.id.clone().unwrap_or_else(|| format!("e{n}")),
                role: it.role,
                label: key.clone(),
                target: it.target.clone(),
                selected: it.selected,
            });
        }
        let controls = std::mem::take(&mut self.controls);
        let mut select_ids: HashMap<usize, String> = HashMap::new();
        for it in controls {
            let n = elements.len();
            let label = match (&it.label, it.text) {
                (Some(l), _) => l.clone(),
                (None, Some(c)) => py_lower(py_strip(self.collected(c))),
                (None, None) => String::new(),
            };
            let id = match it.select {
                Some(s) => select_ids
                    .entry(s)
                    .or_insert_with(|| {
                        self.selects
                            .get(s)
                            .and_then(|x| x.key.clone())
                            .unwrap_or_else(|| format!("e{n}"))
                    })
                    .clone(),
                None => it.id.clone().unwrap_or_else(|| format!("e{n}")),
            };
            elements.push(Element {
                id,
                role: it.role,
                label,
                target: it.target,
                selected: it.selected,
            });
        }

        Observation {
            text: self.text,
            text_rich,
            html: self.raw.to_string(),
            url: self.url.to_string(),
            instruction,
            has_search_bar: self.has_search_bar,
            clickables: keys,
            elements,
        }
    }
}

/// Label length once the label budget of a page is spent.
pub(super) const MAX_CUT_LABEL: usize = 256;

/// The largest char boundary of `s` at or below `i`.
pub(super) fn floor_boundary(s: &str, i: usize) -> usize {
    if i >= s.len() {
        return s.len();
    }
    (0..=i).rev().find(|&j| s.is_char_boundary(j)).unwrap_or(0)
}

/// The URL of `window.location.href='…'` in an `onclick` handler (WebShop's transfer pages).
pub(super) fn onclick_target(onclick: &str) -> Option<String> {
    let at = onclick.find("location.href")?;
    let rest = onclick.get(at + "location.href".len()..)?.trim_start();
    let rest = rest.strip_prefix('=')?.trim_start();
    let quote = rest.chars().next().filter(|c| *c == '\'' || *c == '"')?;
    let body = rest.get(1..)?;
    let end = body.find(quote)?;
    Some(body[..end].to_string())
}
