//! The store's pages: a typed page state ([`Page`]), its WebShop-shaped URL
//! ([`Page::to_path`] / [`Page::from_path`]; segments and option literals in `codec`) and
//! HTML rendering ([`Store::render`]).
//!
//! Rendering is a pure function of (catalog, search index, session id, instruction, page,
//! [`RenderCtx`]). The HTML differs from WebShop's templates (no CDN assets, no JavaScript,
//! stable element ids, one stylesheet) but its *visible text nodes* — what
//! `BeautifulSoup(html, 'html.parser').findAll(text=True)` keeps after WebShop's
//! `tag_visible` filter — are WebShop's, node for node, including the parent tags that
//! `text_rich` looks at (`<button>`, `<label>`, `<a class="product-link">`). See
//! `../shared/reference/webshop.md` §2.4–2.6.
//!
//! DOM contract (what observation parsers and browser drivers may rely on):
//! * `<body data-page="home|results|item|description|features|reviews|attributes|done"
//!   data-session=SID data-path=PATH>`; the done page adds `data-reward`.
//! * `#instruction-text > h4` holds `Instruction:`, `<br>`, the instruction.
//! * Clickable buttons: `button.btn` whose text is the clickable label, each with an `id`
//!   (`btn-search`, `btn-back-to-search`, `btn-prev`, `btn-next`, `btn-description`,
//!   `btn-features`, `btn-reviews`, `btn-attributes`, `btn-buy-now`) and `data-url` = the
//!   action of its enclosing form (GET, except Buy Now which is POST; both methods work).
//! * Search: `form#search-form[action=/SID/search]` with `input#search_input[name=search_query]`.
//! * Products: `a.product-link#product-ASIN[href]` (the class attribute is exactly
//!   `product-link`).
//! * Options: `input[type=radio]#radio-G-I[name=OPTION][value=VALUE][data-url]`, followed by
//!   `label#label-G-I` holding the value and an (empty, text-free) overlay link
//!   `a.option-link#option-G-I[href]` to the same URL, which makes options work without
//!   JavaScript. `checked` marks the selected values.

use std::sync::{Arc, OnceLock};

use minijinja::{AutoEscape, Environment, UndefinedBehavior};
use serde::Serialize;

mod codec;

pub use codec::{
    decode_segment, encode_segment, option_values, options_json, options_repr, options_tojson,
    parse_options, set_option,
};
use codec::{keywords_segment, parse_keywords, parse_page};

use super::catalog::{py_float_repr, Catalog, Product};
use super::search::{SearchIndex, SEARCH_RETURN_N};

/// Products per results page (WebShop's `PRODUCT_WINDOW`).
pub const RESULTS_PER_PAGE: usize = 10;

/// The base URL WebShop's simulated URLs use (`SimServer.base_url`).
pub const WEBSHOP_BASE_URL: &str = "http://127.0.0.1:3000";

/// The stylesheet served at `/static/style.css` and linked from every page.
pub const STYLE_CSS: &str = include_str!("static/style.css");

/// Path of the stylesheet.
pub const STYLE_PATH: &str = "/static/style.css";

/// Selected options: option name → value, in the order they were first chosen.
pub type Options = Vec<(String, String)>;

/// Errors of page parsing and rendering.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PageError {
    /// The URL has a page kind we know but a malformed part (encoding, page number,
    /// options literal, segment count).
    #[error("malformed URL: {0}")]
    Malformed(String),
    /// The URL matches no page kind.
    #[error("no such page")]
    UnknownRoute,
    /// The ASIN is not in the catalog.
    #[error("unknown product {0}")]
    UnknownProduct(String),
    /// An option name or value the product does not offer.
    #[error("invalid option: {0}")]
    InvalidOption(String),
    /// Template failure (a bug, never caused by input).
    #[error("template error: {0}")]
    Template(String),
}

/// The product tabs below an item (WebShop's `ACTION_TO_TEMPLATE` keys).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, serde::Deserialize)]
pub enum SubPageKind {
    /// The long description.
    Description,
    /// The feature bullets.
    Features,
    /// Reviews (always empty, as in WebShop).
    Reviews,
    /// Attributes, category, query and breadcrumb (button shown only with `show_attrs`).
    Attributes,
}

impl SubPageKind {
    /// All tabs in display order.
    pub const ALL: [SubPageKind; 4] = [
        SubPageKind::Description,
        SubPageKind::Features,
        SubPageKind::Reviews,
        SubPageKind::Attributes,
    ];

    /// The URL segment and button label (`Description`, `Features`, …).
    pub fn name(self) -> &'static str {
        match self {
            SubPageKind::Description => "Description",
            SubPageKind::Features => "Features",
            SubPageKind::Reviews => "Reviews",
            SubPageKind::Attributes => "Attributes",
        }
    }

    /// Parses a URL segment or clickable label, case-insensitively.
    pub fn parse(s: &str) -> Option<SubPageKind> {
        SubPageKind::ALL
            .into_iter()
            .find(|k| k.name().eq_ignore_ascii_case(s))
    }

    /// The `data-page` marker of this tab's page (`description`, …).
    pub fn marker(self) -> &'static str {
        match self {
            SubPageKind::Description => "description",
            SubPageKind::Features => "features",
            SubPageKind::Reviews => "reviews",
            SubPageKind::Attributes => "attributes",
        }
    }
}

/// A page of the store, everything needed to render it (given the session's instruction).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Page {
    /// The search page (`/{sid}`).
    Home,
    /// A page of search results (`/search_results/{sid}/{kw+kw}/{page}`), `page` ≥ 1.
    Results {
        /// Search keywords (the query split on single spaces).
        keywords: Vec<String>,
        /// 1-based results page.
        page: usize,
    },
    /// A product (`/item_page/{sid}/{asin}/{kw+kw}/{page}/{options}`).
    Item {
        /// Product ASIN.
        asin: String,
        /// Keywords of the results page it was opened from.
        keywords: Vec<String>,
        /// Results page it was opened from.
        page: usize,
        /// Options chosen so far.
        options: Options,
    },
    /// A product tab (`/item_sub_page/{sid}/{asin}/{kw+kw}/{page}/{Tab}/{options}`).
    SubPage {
        /// Product ASIN.
        asin: String,
        /// Keywords of the results page.
        keywords: Vec<String>,
        /// Results page.
        page: usize,
        /// Which tab.
        sub: SubPageKind,
        /// Options chosen so far (kept across tabs).
        options: Options,
    },
    /// After Buy Now (`/done/{sid}/{asin}/{options}`).
    Done {
        /// Purchased product.
        asin: String,
        /// Purchased options.
        options: Options,
    },
}

impl Page {
    /// The `data-page` marker of the page's `<body>`.
    pub fn marker(&self) -> &'static str {
        match self {
            Page::Home => "home",
            Page::Results { .. } => "results",
            Page::Item { .. } => "item",
            Page::SubPage { sub, .. } => sub.marker(),
            Page::Done { .. } => "done",
        }
    }

    /// The product ASIN of item, tab and done pages.
    pub fn asin(&self) -> Option<&str> {
        match self {
            Page::Item { asin, .. } | Page::SubPage { asin, .. } | Page::Done { asin, .. } => {
                Some(asin)
            }
            Page::Home | Page::Results { .. } => None,
        }
    }

    /// The selected options (empty on home and results pages).
    pub fn options(&self) -> &[(String, String)] {
        match self {
            Page::Item { options, .. }
            | Page::SubPage { options, .. }
            | Page::Done { options, .. } => options,
            Page::Home | Page::Results { .. } => &[],
        }
    }

    /// The path of this page for session `sid`, every segment percent-encoded.
    ///
    /// Keywords are joined with a literal `+` (a `+` inside a keyword is `%2B`); options are
    /// `json.dumps(options)` (insertion order, ASCII-only). Keyword lists that a browser would
    /// take for a dot segment (`.`, `..`) or that are empty use the list form
    /// `[%22..%22]` (a raw `[` marks a JSON/Python list literal, as in WebShop's Flask app).
    pub fn to_path(&self, sid: &str) -> String {
        let sid = encode_segment(sid);
        match self {
            Page::Home => format!("/{sid}"),
            Page::Results { keywords, page } => {
                format!(
                    "/search_results/{sid}/{}/{page}",
                    keywords_segment(keywords)
                )
            }
            Page::Item {
                asin,
                keywords,
                page,
                options,
            } => format!(
                "/item_page/{sid}/{}/{}/{page}/{}",
                encode_segment(asin),
                keywords_segment(keywords),
                encode_segment(&options_json(options))
            ),
            Page::SubPage {
                asin,
                keywords,
                page,
                sub,
                options,
            } => format!(
                "/item_sub_page/{sid}/{}/{}/{page}/{}/{}",
                encode_segment(asin),
                keywords_segment(keywords),
                sub.name(),
                encode_segment(&options_json(options))
            ),
            Page::Done { asin, options } => format!(
                "/done/{sid}/{}/{}",
                encode_segment(asin),
                encode_segment(&options_json(options))
            ),
        }
    }

    /// Parses a path made by [`Page::to_path`] (or by WebShop: `+`-joined or list-literal
    /// keywords, JSON or Python-dict options) into the session id and page.
    ///
    /// Accepts a full URL (`http://host/...`) and ignores a query string or fragment. Errors:
    /// [`PageError::UnknownRoute`] when no page kind matches, [`PageError::Malformed`] for bad
    /// percent-encoding, UTF-8, page number, keywords or options.
    pub fn from_path(path: &str) -> Result<(String, Page), PageError> {
        let mut path = path;
        for scheme in ["http://", "https://"] {
            if let Some(rest) = path.strip_prefix(scheme) {
                path = rest.find('/').map_or("/", |i| &rest[i..]);
            }
        }
        let path = path.split(['?', '#']).next().unwrap_or_default();
        let rest = path
            .strip_prefix('/')
            .ok_or_else(|| PageError::Malformed("path must start with '/'".into()))?;
        let segs: Vec<&str> = rest.split('/').collect();
        let sid_of = |s: &str| -> Result<String, PageError> {
            let sid = decode_segment(s)?;
            if sid.is_empty() {
                return Err(PageError::Malformed("empty session id".into()));
            }
            Ok(sid)
        };
        let asin_of = |s: &str| -> Result<String, PageError> {
            let asin = decode_segment(s)?;
            if asin.is_empty() {
                return Err(PageError::Malformed("empty ASIN".into()));
            }
            Ok(asin)
        };
        // Options are the last part; a raw '/' inside them (WebShop never encodes) is kept.
        let options_of = |parts: &[&str]| -> Result<Options, PageError> {
            parse_options(&decode_segment(&parts.join("/"))?)
        };
        match segs.as_slice() {
            [sid] => Ok((sid_of(sid)?, Page::Home)),
            ["search_results", sid, kw, page] => Ok((
                sid_of(sid)?,
                Page::Results {
                    keywords: parse_keywords(kw)?,
                    page: parse_page(page)?,
                },
            )),
            ["item_page", sid, asin, kw, page, opts @ ..] if !opts.is_empty() => Ok((
                sid_of(sid)?,
                Page::Item {
                    asin: asin_of(asin)?,
                    keywords: parse_keywords(kw)?,
                    page: parse_page(page)?,
                    options: options_of(opts)?,
                },
            )),
            ["item_sub_page", sid, asin, kw, page, sub, opts @ ..] if !opts.is_empty() => {
                let sub = SubPageKind::parse(&decode_segment(sub)?)
                    .ok_or_else(|| PageError::Malformed("unknown product tab".into()))?;
                Ok((
                    sid_of(sid)?,
                    Page::SubPage {
                        asin: asin_of(asin)?,
                        keywords: parse_keywords(kw)?,
                        page: parse_page(page)?,
                        sub,
                        options: options_of(opts)?,
                    },
                ))
            }
            ["done", sid, asin, opts @ ..] if !opts.is_empty() => Ok((
                sid_of(sid)?,
                Page::Done {
                    asin: asin_of(asin)?,
                    options: options_of(opts)?,
                },
            )),
            ["search_results" | "item_page" | "item_sub_page" | "done", ..] => {
                Err(PageError::Malformed("wrong number of path segments".into()))
            }
            _ => Err(PageError::UnknownRoute),
        }
    }

    /// The URL WebShop's `SimServer` reports for this page (its `url` observation), not
    /// percent-encoded: `{base}/item_page/{sid}/{ASIN}/{kw+kw}/{page}/{json.dumps(options)}`,
    /// and Python `repr` of the options dict on tab and done pages.
    ///
    /// Python's `repr` of strings is reproduced for printable text, quotes, backslashes and
    /// control characters; exotic non-printable code points may differ.
    pub fn webshop_url(&self, base: &str, sid: &str) -> String {
        match self {
            Page::Home => format!("{base}/{sid}"),
            Page::Results { keywords, page } => {
                format!("{base}/search_results/{sid}/{}/{page}", keywords.join("+"))
            }
            Page::Item {
                asin,
                keywords,
                page,
                options,
            } => format!(
                "{base}/item_page/{sid}/{asin}/{}/{page}/{}",
                keywords.join("+"),
                options_json(options)
            ),
            Page::SubPage {
                asin,
                keywords,
                page,
                sub,
                options,
            } => format!(
                "{base}/item_sub_page/{sid}/{asin}/{}/{page}/{}/{}",
                keywords.join("+"),
                sub.name(),
                options_repr(options)
            ),
            Page::Done { asin, options } => {
                format!("{base}/done/{sid}/{asin}/{}", options_repr(options))
            }
        }
    }
}

// ---------------------------------------------------------------------------------------
// Rendering.

/// Per-render settings that are not part of the page state.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct RenderCtx {
    /// Show the Attributes tab button on item pages (WebShop's `show_attrs`, default off).
    pub show_attrs: bool,
    /// The reward shown on the done page (`None` renders as Python's `None`).
    pub reward: Option<f64>,
}

/// The site: a catalog and its search index. Cheap to share (`Arc`), immutable (apart from
/// a bounded cache of search results, which are a pure function of the query).
pub struct Store {
    catalog: Arc<Catalog>,
    index: SearchIndex,
    cache: std::sync::Mutex<SearchCache>,
}

/// Most recent distinct queries whose results are kept (results pages are stateless, so
/// pagination and `< Prev` re-run the same search).
const SEARCH_CACHE_QUERIES: usize = 1024;

/// A FIFO-bounded map from query to the product indices of its hits.
#[derive(Default)]
struct SearchCache {
    map: std::collections::HashMap<String, Arc<[u32]>>,
    order: std::collections::VecDeque<String>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("products", &self.catalog.products().len())
            .field("goals", &self.catalog.goals().len())
            .field("index", &self.index)
            .finish()
    }
}

impl Store {
    /// Builds the search index of `catalog`.
    pub fn new(catalog: Arc<Catalog>) -> Self {
        let index = SearchIndex::build(&catalog);
        Store::with_index(catalog, index)
    }

    /// Uses an index already built (or loaded from cache) for `catalog`.
    pub fn with_index(catalog: Arc<Catalog>, index: SearchIndex) -> Self {
        Store {
            catalog,
            index,
            cache: std::sync::Mutex::new(SearchCache::default()),
        }
    }

    /// The catalog.
    pub fn catalog(&self) -> &Catalog {
        &self.catalog
    }

    /// The shared catalog handle.
    pub fn catalog_arc(&self) -> &Arc<Catalog> {
        &self.catalog
    }

    /// The search index.
    pub fn index(&self) -> &SearchIndex {
        &self.index
    }

    /// WebShop's result list for keywords: the top 50 hits of `" ".join(keywords)`.
    pub fn search(&self, keywords: &[String]) -> Vec<&Product> {
        let products = self.catalog.products();
        self.hits(&keywords.join(" "))
            .iter()
            .filter_map(|&i| products.get(i as usize))
            .collect()
    }

    /// Product indices of the top hits of `query`, through the bounded cache.
    fn hits(&self, query: &str) -> Arc<[u32]> {
        let lock = || self.cache.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(h) = lock().map.get(query) {
            return Arc::clone(h);
        }
        let hits: Arc<[u32]> = self
            .index
            .search(query, SEARCH_RETURN_N)
            .into_iter()
            .map(|h| h.product)
            .collect();
        let mut cache = lock();
        if !cache.map.contains_key(query) {
            if cache.order.len() >= SEARCH_CACHE_QUERIES {
                if let Some(old) = cache.order.pop_front() {
                    cache.map.remove(&old);
                }
            }
            cache.order.push_back(query.to_string());
            cache.map.insert(query.to_string(), Arc::clone(&hits));
        }
        hits
    }

    /// One results page: (total results, the ≤ 10 products of 1-based `page`); pages past
    /// the end are empty.
    pub fn results_page(&self, keywords: &[String], page: usize) -> (usize, Vec<&Product>) {
        let all = self.search(keywords);
        let start = page.saturating_sub(1).saturating_mul(RESULTS_PER_PAGE);
        let rows = all
            .iter()
            .skip(start)
            .take(RESULTS_PER_PAGE)
            .copied()
            .collect();
        (all.len(), rows)
    }

    /// Checks that the results page number is at least 1 and that the page's product exists
    /// and offers every selected option; returns the product (`None` for home and results
    /// pages).
    pub fn check(&self, page: &Page) -> Result<Option<&Product>, PageError> {
        if let Page::Results { page: 0, .. }
        | Page::Item { page: 0, .. }
        | Page::SubPage { page: 0, .. } = page
        {
            return Err(PageError::Malformed("page must be a number from 1".into()));
        }
        let Some(asin) = page.asin() else {
            return Ok(None);
        };
        let product = self
            .catalog
            .product(asin)
            .ok_or_else(|| PageError::UnknownProduct(asin.to_string()))?;
        for (name, value) in page.options() {
            let group = product
                .options
                .iter()
                .find(|g| &g.name == name)
                .ok_or_else(|| PageError::InvalidOption(format!("no option named {name:?}")))?;
            if !group.values.iter().any(|v| v == value) {
                return Err(PageError::InvalidOption(format!(
                    "{name:?} has no value {value:?}"
                )));
            }
        }
        Ok(Some(product))
    }

    /// The results page `n` of a search for `keywords`: the template and its values.
    fn results_body(&self, sid: &str, keywords: &[String], n: &usize) -> (&'static str, Body<'_>) {
        let (total, rows) = self.results_page(keywords, *n);
        let at = |n: usize| {
            Page::Results {
                keywords: keywords.to_vec(),
                page: n,
            }
            .to_path(sid)
        };
        let products = rows
            .into_iter()
            .map(|p| ResultRow {
                asin: &p.asin,
                title: &p.title,
                price: p.price_tag(),
                url: Page::Item {
                    asin: p.asin.clone(),
                    keywords: keywords.to_vec(),
                    page: *n,
                    options: Vec::new(),
                }
                .to_path(sid),
            })
            .collect();
        (
            "results_page.html",
            Body::Results {
                page: *n,
                total,
                prev_url: (*n > 1).then(|| at(n - 1)),
                next_url: at(n.saturating_add(1)),
                products,
            },
        )
    }

    /// The item page of `p` (options chosen so far, tabs, Buy Now): the template and its
    /// values.
    fn item_body<'p>(
        p: &'p Product,
        sid: &str,
        (keywords, n, options): (&[String], &usize, &Options),
        ctx: RenderCtx,
    ) -> (&'static str, Body<'p>) {
        let item = |options: Options| Page::Item {
            asin: p.asin.clone(),
            keywords: keywords.to_vec(),
            page: *n,
            options,
        };
        let groups = p
            .options
            .iter()
            .enumerate()
            .map(|(g, group)| OptionGroupCtx {
                name: &group.name,
                values: group
                    .values
                    .iter()
                    .enumerate()
                    .map(|(i, value)| {
                        let mut chosen = options.clone();
                        set_option(&mut chosen, &group.name, value);
                        OptionValueCtx {
                            value,
                            id: format!("{g}-{i}"),
                            url: item(chosen).to_path(sid),
                            checked: options.iter().any(|(k, v)| k == &group.name && v == value),
                        }
                    })
                    .collect(),
            })
            .collect();
        let tabs = SubPageKind::ALL
            .into_iter()
            .filter(|k| ctx.show_attrs || *k != SubPageKind::Attributes)
            .map(|k| TabCtx {
                label: k.name(),
                id: k.marker(),
                url: Page::SubPage {
                    asin: p.asin.clone(),
                    keywords: keywords.to_vec(),
                    page: *n,
                    sub: k,
                    options: options.clone(),
                }
                .to_path(sid),
            })
            .collect();
        (
            "item_page.html",
            Body::Item {
                prev_url: Page::Results {
                    keywords: keywords.to_vec(),
                    page: *n,
                }
                .to_path(sid),
                groups,
                asin: &p.asin,
                title: &p.title,
                price: p.price_tag(),
                rating: "N.A.",
                tabs,
                buy_url: Page::Done {
                    asin: p.asin.clone(),
                    options: options.clone(),
                }
                .to_path(sid),
            },
        )
    }

    /// Renders `page` for session `sid` with the session's instruction.
    pub fn render(
        &self,
        sid: &str,
        instruction: &str,
        page: &Page,
        ctx: RenderCtx,
    ) -> Result<String, PageError> {
        let product = self.check(page)?;
        let common = Common {
            sid,
            marker: page.marker(),
            path: page.to_path(sid),
            instruction,
            home_url: Page::Home.to_path(sid),
            style: STYLE_PATH,
        };
        let (template, body) = match (page, product) {
            (Page::Home, _) => (
                "search_page.html",
                Body::Home {
                    search_url: format!("{}/search", Page::Home.to_path(sid)),
                },
            ),
            (Page::Results { keywords, page: n }, _) => self.results_body(sid, keywords, n),
            (
                Page::Item {
                    keywords,
                    page: n,
                    options,
                    ..
                },
                Some(p),
            ) => Self::item_body(p, sid, (keywords, n, options), ctx),
            (
                Page::SubPage {
                    keywords,
                    page: n,
                    sub,
                    options,
                    ..
                },
                Some(p),
            ) => {
                let prev_url = Page::Item {
                    asin: p.asin.clone(),
                    keywords: keywords.clone(),
                    page: *n,
                    options: options.clone(),
                }
                .to_path(sid);
                let template = match sub {
                    SubPageKind::Description => "description_page.html",
                    SubPageKind::Features => "features_page.html",
                    SubPageKind::Reviews => "review_page.html",
                    SubPageKind::Attributes => "attributes_page.html",
                };
                (
                    template,
                    Body::SubPage {
                        prev_url,
                        asin: &p.asin,
                        description: &p.description,
                        bullet_points: &p.bullet_points,
                        attributes: &p.attributes,
                        category: &p.category,
                        query: &p.query,
                        product_category: &p.product_category,
                    },
                )
            }
            (Page::Done { options, .. }, Some(p)) => (
                "done_page.html",
                Body::Done {
                    asin: &p.asin,
                    options: options_tojson(options),
                    reward: ctx.reward.map_or_else(|| "None".to_string(), py_float_repr),
                },
            ),
            // check() returns a product for every product page.
            (_, None) => return Err(PageError::Template("page without product".into())),
        };
        templates()
            .get_template(template)
            .and_then(|t| t.render(Ctx { common, body }))
            .map_err(|e| PageError::Template(e.to_string()))
    }
}

#[derive(Serialize)]
struct Ctx<'a> {
    #[serde(flatten)]
    common: Common<'a>,
    #[serde(flatten)]
    body: Body<'a>,
}

#[derive(Serialize)]
struct Common<'a> {
    sid: &'a str,
    marker: &'a str,
    path: String,
    instruction: &'a str,
    home_url: String,
    style: &'a str,
}

#[derive(Serialize)]
#[serde(untagged)]
enum Body<'a> {
    Home {
        search_url: String,
    },
    Results {
        page: usize,
        total: usize,
        prev_url: Option<String>,
        next_url: String,
        products: Vec<ResultRow<'a>>,
    },
    Item {
        prev_url: String,
        groups: Vec<OptionGroupCtx<'a>>,
        asin: &'a str,
        title: &'a str,
        price: String,
        rating: &'a str,
        tabs: Vec<TabCtx>,
        buy_url: String,
    },
    SubPage {
        prev_url: String,
        asin: &'a str,
        description: &'a str,
        bullet_points: &'a [String],
        attributes: &'a [String],
        category: &'a str,
        query: &'a str,
        product_category: &'a str,
    },
    Done {
        asin: &'a str,
        options: String,
        reward: String,
    },
}

#[derive(Serialize)]
struct ResultRow<'a> {
    asin: &'a str,
    title: &'a str,
    price: String,
    url: String,
}

#[derive(Serialize)]
struct OptionGroupCtx<'a> {
    name: &'a str,
    values: Vec<OptionValueCtx<'a>>,
}

#[derive(Serialize)]
struct OptionValueCtx<'a> {
    value: &'a str,
    id: String,
    url: String,
    checked: bool,
}

#[derive(Serialize)]
struct TabCtx {
    label: &'static str,
    id: &'static str,
    url: String,
}

/// HTML-escapes text for element content and quoted attribute values.
fn escape_html(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + s.len() / 8);
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// The template environment, built once: templates are compiled into the binary and every
/// `.html` template autoescapes.
fn templates() -> &'static Environment<'static> {
    static ENV: OnceLock<Environment<'static>> = OnceLock::new();
    ENV.get_or_init(|| {
        let mut env = Environment::new();
        env.set_undefined_behavior(UndefinedBehavior::Strict);
        // Escape `& < > " '` only (minijinja's default also escapes `/`, which would make
        // every URL in an attribute read `&#x2f;…`).
        env.set_formatter(|out, state, value| {
            if state.auto_escape() == AutoEscape::Html && !value.is_safe() {
                out.write_str(&escape_html(&value.to_string()))?;
                Ok(())
            } else {
                minijinja::escape_formatter(out, state, value)
            }
        });
        let sources: [(&str, &str); 9] = [
            ("layout.html", include_str!("templates/layout.html")),
            (
                "search_page.html",
                include_str!("templates/search_page.html"),
            ),
            (
                "results_page.html",
                include_str!("templates/results_page.html"),
            ),
            ("item_page.html", include_str!("templates/item_page.html")),
            (
                "description_page.html",
                include_str!("templates/description_page.html"),
            ),
            (
                "features_page.html",
                include_str!("templates/features_page.html"),
            ),
            (
                "review_page.html",
                include_str!("templates/review_page.html"),
            ),
            (
                "attributes_page.html",
                include_str!("templates/attributes_page.html"),
            ),
            ("done_page.html", include_str!("templates/done_page.html")),
        ];
        for (name, src) in sources {
            env.add_template(name, src)
                .expect("invariant: embedded templates compile");
        }
        env
    })
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::catalog::{Goal, GoalOptions, OptionGroup};

    pub(crate) fn product(asin: &str, title: &str, options: &[(&str, &[&str])]) -> Product {
        Product {
            asin: asin.into(),
            title: title.into(),
            category: "fashion".into(),
            product_category: "Clothing › Shoes".into(),
            query: "running shoes".into(),
            description: format!("The {title}, described."),
            bullet_points: vec!["Rubber sole".into(), "Machine wash".into()],
            attributes: vec!["rubber sole".into(), "non slip".into()],
            options: options
                .iter()
                .map(|(n, vs)| OptionGroup {
                    name: n.to_string(),
                    values: vs.iter().map(|v| v.to_string()).collect(),
                })
                .collect(),
            pricing: vec![100.0],
            price: 100.0,
            title_nouns: vec!["shoe".into()],
            main_image: None,
        }
    }

    /// 12 "trail shoe" products (two results pages), one odd-title product, one
    /// `<script>` product.
    pub(crate) fn tiny_catalog() -> Catalog {
        let mut products: Vec<Product> = (0..12)
            .map(|i| {
                let mut p = product(
                    &format!("B0SHOE{i:04}"),
                    &format!("Trail Shoe Model {i}"),
                    &[("color", &["black | red", "white"]), ("size", &["8", "9"])],
                );
                p.pricing = vec![20.0 + i as f64, 30.5];
                p.price = 25.0;
                p
            })
            .collect();
        products.push(product(
            "B0EVIL0001",
            "<script>alert(1)</script> Tom & Jerry's \"Mug\"",
            &[("style", &["<b>bold</b>", "a & b"])],
        ));
        products.push(product(
            "PMUYBHF001",
            "PMUYBHF Womens Fashion Flat Shoes Comfortable Running Shoes Sneakers Tennis Athletic Shoe Casual Walking Shoes",
            &[
                ("color", &["black", "purple", "red"]),
                ("size", &["6.5", "7.5", "8", "8.5", "9"]),
            ],
        ));
        let mut odd = product(
            "B0ODD00001",
            "  Odd\ttitle \"q\" & <b> 'x' \n line2  ",
            &[
                ("color", &["black | red", "it's \"x\"", "日本", " "]),
                ("size", &["8", "9"]),
                ("empty", &[]),
                ("dup", &["8"]),
            ],
        );
        odd.description = " ".into();
        odd.pricing = vec![12.99, 15.0];
        products.push(odd);
        let goal = Goal {
            asin: "B0SHOE0003".into(),
            category: "fashion".into(),
            query: "running shoes".into(),
            name: "Trail Shoe Model 3".into(),
            product_category: "Clothing › Shoes".into(),
            instruction_text: "i want a trail shoe in white, and price lower than 50.00 dollars"
                .into(),
            attributes: vec!["rubber sole".into()],
            goal_options: GoalOptions::Human(vec!["white".into()]),
            price_upper: 50.0,
            name_nouns: vec!["shoe".into()],
            weight: 1.0,
        };
        let mut g2 = goal.clone();
        g2.instruction_text = "second goal".into();
        Catalog::new(products, vec![goal, g2]).unwrap()
    }

    pub(crate) fn tiny_store() -> Store {
        Store::new(Arc::new(tiny_catalog()))
    }

    #[test]
    fn search_cache_is_bounded_and_transparent() {
        let store = tiny_store();
        let q = |s: &str| vec![s.to_string()];
        let uncached: Vec<String> = store
            .index()
            .search("serum", SEARCH_RETURN_N)
            .iter()
            .map(|h| store.catalog().products()[h.product as usize].asin.clone())
            .collect();
        for _ in 0..2 {
            let got: Vec<String> = store
                .search(&q("serum"))
                .iter()
                .map(|p| p.asin.clone())
                .collect();
            assert_eq!(got, uncached);
        }
        for i in 0..SEARCH_CACHE_QUERIES + 10 {
            store.search(&q(&format!("query{i}")));
        }
        let cache = store.cache.lock().unwrap();
        assert_eq!(cache.map.len(), SEARCH_CACHE_QUERIES);
        assert_eq!(cache.order.len(), SEARCH_CACHE_QUERIES);
        assert!(!cache.map.contains_key("serum"));
    }

    fn unescape(s: &str) -> String {
        let mut out = String::new();
        let mut rest = s;
        while let Some(i) = rest.find('&') {
            out.push_str(&rest[..i]);
            rest = &rest[i..];
            let end = rest.find(';').expect("entity ends with ';'");
            let ent = &rest[1..end];
            let c = match ent {
                "lt" => '<',
                "gt" => '>',
                "amp" => '&',
                "quot" => '"',
                "apos" => '\'',
                _ if ent.starts_with("#x") || ent.starts_with("#X") => {
                    char::from_u32(u32::from_str_radix(&ent[2..], 16).unwrap()).unwrap()
                }
                _ if ent.starts_with('#') => char::from_u32(ent[1..].parse().unwrap()).unwrap(),
                _ => panic!("unknown entity {ent}"),
            };
            out.push(c);
            rest = &rest[end + 1..];
        }
        out.push_str(rest);
        out
    }

    /// `(parent tag, text)` of every text node, as bs4's `html.parser` builder makes them
    /// (whitespace-only runs become `"\n"` or `" "` outside `<pre>`), minus WebShop's
    /// invisible ones (`tag_visible`).
    pub(crate) fn visible_nodes(html: &str) -> Vec<(String, String)> {
        const VOID: [&str; 8] = ["br", "hr", "input", "img", "meta", "link", "area", "base"];
        const HIDDEN: [&str; 6] = ["style", "script", "head", "title", "meta", "[document]"];
        let mut stack: Vec<String> = Vec::new();
        let mut nodes = Vec::new();
        let mut rest = html;
        while !rest.is_empty() {
            if let Some(r) = rest.strip_prefix("<!--") {
                rest = &r[r.find("-->").unwrap() + 3..];
            } else if rest.starts_with("<!") {
                rest = &rest[rest.find('>').unwrap() + 1..];
            } else if let Some(r) = rest.strip_prefix("</") {
                let end = r.find('>').unwrap();
                let name = r[..end].trim().to_ascii_lowercase();
                if let Some(pos) = stack.iter().rposition(|t| *t == name) {
                    stack.truncate(pos);
                }
                rest = &r[end + 1..];
            } else if rest.starts_with('<') {
                let end = rest.find('>').unwrap();
                let tag = &rest[1..end];
                let name = tag
                    .split(|c: char| c.is_whitespace() || c == '/')
                    .next()
                    .unwrap()
                    .to_ascii_lowercase();
                rest = &rest[end + 1..];
                if name == "script" || name == "style" {
                    rest = &rest[rest.find("</").unwrap()..];
                } else if !VOID.contains(&name.as_str()) && !tag.ends_with('/') {
                    stack.push(name);
                }
            } else {
                let end = rest.find('<').unwrap_or(rest.len());
                let mut text = unescape(&rest[..end]);
                rest = &rest[end..];
                let parent = stack.last().cloned().unwrap_or_else(|| "[document]".into());
                let in_pre = stack.iter().any(|t| t == "pre");
                if !in_pre && text.chars().all(|c| " \n\t\r\u{c}".contains(c)) {
                    text = if text.contains('\n') {
                        "\n".into()
                    } else {
                        " ".into()
                    };
                }
                if !HIDDEN.contains(&parent.as_str()) {
                    nodes.push((parent, text));
                }
            }
        }
        nodes
    }

    /// WebShop's `text` observation of a page.
    pub(crate) fn text_obs(html: &str) -> String {
        visible_nodes(html)
            .into_iter()
            .filter(|(_, t)| t != "\n")
            .map(|(_, t)| t.trim().to_string())
            .collect::<Vec<_>>()
            .join(" [SEP] ")
    }

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    fn o(v: &[(&str, &str)]) -> Options {
        v.iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect()
    }

    fn nasty_pages() -> Vec<Page> {
        let kws: Vec<Vec<String>> = vec![
            s(&["red", "shoes"]),
            s(&["c++", "a+b", "100%", "%ZZ"]),
            s(&["a/b", "x|y", "\"quoted\"", "it's", "{json}", "[list]"]),
            s(&["日本語", "naïve", "😀", "ß"]),
            s(&[""]),
            s(&["", ""]),
            Vec::new(),
            s(&["."]),
            s(&[".."]),
            s(&[".", "."]),
            s(&["[", "]"]),
            s(&["[x"]),
            s(&["?q=1#frag", "a;b=c", "~_-.:,@"]),
            s(&["tab\there", "new\nline", "back\\slash"]),
        ];
        let opts: Vec<Options> = vec![
            Vec::new(),
            o(&[("color", "black | red"), ("size", "8")]),
            o(&[("size", "8.5 w/ \"wide\""), ("color", "it's 'quoted'")]),
            o(&[("名前", "値 😀"), ("a/b", "c\\d\ne\u{1}")]),
            o(&[("{", "}"), ("%", "%2F"), ("+", " ")]),
        ];
        let mut pages = vec![Page::Home];
        for (i, k) in kws.iter().enumerate() {
            let op = &opts[i % opts.len()];
            let page = 1 + i * 7;
            pages.push(Page::Results {
                keywords: k.clone(),
                page,
            });
            pages.push(Page::Item {
                asin: "B0SHOE0001".into(),
                keywords: k.clone(),
                page,
                options: op.clone(),
            });
            pages.push(Page::SubPage {
                asin: "ASIN/+%é".into(),
                keywords: k.clone(),
                page,
                sub: SubPageKind::ALL[i % 4],
                options: op.clone(),
            });
            pages.push(Page::Done {
                asin: "B0SHOE0002".into(),
                options: op.clone(),
            });
        }
        pages
    }

    #[test]
    fn paths_round_trip_with_nasty_strings() {
        for sid in ["abcdefghij", "fixed_7", "s p/a?c#e%", "ü"] {
            for page in nasty_pages() {
                let path = page.to_path(sid);
                assert!(path.is_ascii(), "{path}");
                assert!(
                    !path.contains(['?', '#', ' ', '"', '\\']),
                    "unsafe char in {path}"
                );
                // No dot segment a browser would collapse.
                assert!(
                    path.split('/').all(|seg| seg != "." && seg != ".."),
                    "{path}"
                );
                let (sid2, page2) =
                    Page::from_path(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
                assert_eq!(sid2, sid);
                assert_eq!(page2, page, "{path}");
                // The same path inside a full URL with a query string.
                let url = format!("http://127.0.0.1:3000{path}?x=1#f");
                assert_eq!(Page::from_path(&url).unwrap(), (sid2, page2));
            }
        }
    }

    #[test]
    fn paths_have_webshop_shape() {
        let page = Page::Item {
            asin: "B0TEST0006".into(),
            keywords: s(&["red", "shoes"]),
            page: 2,
            options: o(&[("color", "white")]),
        };
        assert_eq!(
            page.to_path("abc"),
            "/item_page/abc/B0TEST0006/red+shoes/2/%7B%22color%22:%20%22white%22%7D"
        );
        assert_eq!(
            Page::Results {
                keywords: s(&["c++", "x"]),
                page: 1
            }
            .to_path("abc"),
            "/search_results/abc/c%2B%2B+x/1"
        );
        assert_eq!(Page::Home.to_path("abc"), "/abc");
        assert_eq!(
            Page::Done {
                asin: "B0X".into(),
                options: Vec::new()
            }
            .to_path("abc"),
            "/done/abc/B0X/%7B%7D"
        );
    }

    #[test]
    fn from_path_reads_webshop_urls() {
        // SimServer / Flask URLs: raw JSON, Python dict repr, list-literal keywords.
        let (sid, page) = Page::from_path(
            "http://127.0.0.1:3000/item_page/abc/B0TEST0006/red+shoes/1/{\"color\": \"white\", \"size\": \"10\"}",
        )
        .unwrap();
        assert_eq!(sid, "abc");
        assert_eq!(
            page,
            Page::Item {
                asin: "B0TEST0006".into(),
                keywords: s(&["red", "shoes"]),
                page: 1,
                options: o(&[("color", "white"), ("size", "10")]),
            }
        );
        let (_, page) = Page::from_path(
            "/item_sub_page/abc/B0X/a+b/3/features/{'color': 'black | red', 'size': \"it's\"}",
        )
        .unwrap();
        assert_eq!(
            page,
            Page::SubPage {
                asin: "B0X".into(),
                keywords: s(&["a", "b"]),
                page: 3,
                sub: SubPageKind::Features,
                options: o(&[("color", "black | red"), ("size", "it's")]),
            }
        );
        let (_, page) = Page::from_path("/search_results/abc/%5B'red',%20'shoes'%5D/1").unwrap();
        // `%5B` is not a list literal (only a raw '[' is), so this is one keyword.
        assert_eq!(
            page,
            Page::Results {
                keywords: s(&["['red', 'shoes']"]),
                page: 1
            }
        );
        let (_, page) = Page::from_path("/search_results/abc/['red',%20'shoes']/1").unwrap();
        assert_eq!(
            page,
            Page::Results {
                keywords: s(&["red", "shoes"]),
                page: 1
            }
        );
        // Python dict semantics for duplicates; JSON escapes incl. surrogate pairs; a raw '/'.
        let (_, page) = Page::from_path(
            r#"/done/abc/B0X/{"a": "1", "b": "2", "a": "3", "e": "\ud83d\ude00\u00e9\/", "f": "x/y"}"#,
        )
        .unwrap();
        assert_eq!(
            page.options(),
            o(&[("a", "3"), ("b", "2"), ("e", "😀é/"), ("f", "x/y")]).as_slice()
        );
    }

    #[test]
    fn from_path_rejects_malformed() {
        let malformed = [
            "",
            "abc",
            "/",
            "/%ZZ",
            "/ab%",
            "/ab%4",
            "/%FF%FE",
            "/search_results/abc/red/0",
            "/search_results/abc/red/-1",
            "/search_results/abc/red/x",
            "/search_results/abc/red/99999999999999999999999999",
            "/search_results/abc/red",
            "/search_results/abc/red/1/extra",
            "/search_results//red/1",
            "/search_results/abc/[unclosed/1",
            "/search_results/abc/['a',%20b]/1",
            "/item_page/abc/B0X/red/1/{bad",
            "/item_page/abc/B0X/red/1/%7B%22a%22:1%7D",
            "/item_page/abc/B0X/red/1/[]",
            "/item_page/abc/B0X/red/1/{\"a\": \"\\ud800\"}",
            "/item_page/abc/B0X/red/1/{\"a\": \"b\"} trailing",
            "/item_page/abc//red/1/{}",
            "/item_page/abc/B0X/red/1",
            "/item_sub_page/abc/B0X/red/1/Nope/{}",
            "/done/abc/B0X",
            "/done/abc/B0X/%ZZ",
        ];
        for path in malformed {
            match Page::from_path(path) {
                Err(PageError::Malformed(_)) => {}
                other => panic!("{path:?}: {other:?}"),
            }
        }
        for path in ["/a/b", "/api/sessions/x/y", "/static/x/y"] {
            assert_eq!(
                Page::from_path(path),
                Err(PageError::UnknownRoute),
                "{path}"
            );
        }
    }

    #[test]
    fn webshop_urls_match_simserver() {
        let opts = o(&[("color", "white"), ("size", "it's")]);
        let kw = s(&["red", "shoes"]);
        let base = WEBSHOP_BASE_URL;
        assert_eq!(
            Page::Home.webshop_url(base, "abc"),
            "http://127.0.0.1:3000/abc"
        );
        assert_eq!(
            Page::Results {
                keywords: kw.clone(),
                page: 1
            }
            .webshop_url(base, "abc"),
            "http://127.0.0.1:3000/search_results/abc/red+shoes/1"
        );
        assert_eq!(
            Page::Item {
                asin: "B0X".into(),
                keywords: kw.clone(),
                page: 1,
                options: opts.clone()
            }
            .webshop_url(base, "abc"),
            "http://127.0.0.1:3000/item_page/abc/B0X/red+shoes/1/{\"color\": \"white\", \"size\": \"it's\"}"
        );
        assert_eq!(
            Page::SubPage {
                asin: "B0X".into(),
                keywords: kw,
                page: 1,
                sub: SubPageKind::Description,
                options: opts.clone()
            }
            .webshop_url(base, "abc"),
            "http://127.0.0.1:3000/item_sub_page/abc/B0X/red+shoes/1/Description/{'color': 'white', 'size': \"it's\"}"
        );
        assert_eq!(
            Page::Done {
                asin: "B0X".into(),
                options: o(&[("a", "x'y\"z\\"), ("b", "é\n\u{7f}")])
            }
            .webshop_url(base, "abc"),
            "http://127.0.0.1:3000/done/abc/B0X/{'a': 'x\\'y\"z\\\\', 'b': 'é\\n\\x7f'}"
        );
    }

    #[test]
    fn option_json_forms() {
        let opts = o(&[("size", "8 <wide> & 'x'"), ("color", "é😀\"\\\t")]);
        assert_eq!(
            options_json(&opts),
            r#"{"size": "8 <wide> & 'x'", "color": "\u00e9\ud83d\ude00\"\\\t"}"#
        );
        assert_eq!(
            options_tojson(&opts),
            r#"{"color": "\u00e9\ud83d\ude00\"\\\t", "size": "8 \u003cwide\u003e \u0026 \u0027x\u0027"}"#
        );
        assert_eq!(options_tojson(&[]), "{}");
        let mut opts = o(&[("color", "red")]);
        set_option(&mut opts, "size", "8");
        set_option(&mut opts, "color", "blue");
        assert_eq!(opts, o(&[("color", "blue"), ("size", "8")]));
        assert_eq!(option_values(&opts), s(&["blue", "8"]));
    }

    const INSTR: &str = "i want a trail shoe in white, and price lower than 50.00 dollars";

    fn render(store: &Store, page: &Page, ctx: RenderCtx) -> String {
        store.render("sid123", INSTR, page, ctx).unwrap()
    }

    #[test]
    fn home_page_text() {
        let store = tiny_store();
        let html = render(&store, &Page::Home, RenderCtx::default());
        assert_eq!(
            text_obs(&html),
            format!("WebShop [SEP] Instruction: [SEP] {INSTR} [SEP] Search")
        );
        assert!(
            html.contains(r#"<body data-page="home" data-session="sid123" data-path="/sid123""#)
        );
        assert!(html.contains(r#"id="search_input""#));
        assert!(html.contains(r#"action="/sid123/search""#));
        assert!(html.contains(r#"name="search_query""#));
    }

    #[test]
    fn results_pages_text_and_paging() {
        let store = tiny_store();
        let kw = s(&["trail"]);
        let hits = store.search(&kw);
        assert_eq!(hits.len(), 12);
        let page = |n| Page::Results {
            keywords: kw.clone(),
            page: n,
        };
        let rows = |ps: &[&Product]| -> String {
            ps.iter()
                .map(|p| {
                    format!(
                        " [SEP] {} [SEP] {} [SEP] {}",
                        p.asin,
                        p.title,
                        p.price_tag()
                    )
                })
                .collect()
        };
        let head = format!("Instruction: [SEP] {INSTR} [SEP] Back to Search");
        let html1 = render(&store, &page(1), RenderCtx::default());
        assert_eq!(
            text_obs(&html1),
            format!(
                "{head} [SEP] Page 1 (Total results: 12) [SEP] Next >{}",
                rows(&hits[..10])
            )
        );
        let html2 = render(&store, &page(2), RenderCtx::default());
        assert_eq!(
            text_obs(&html2),
            format!(
                "{head} [SEP] Page 2 (Total results: 12) [SEP] < Prev [SEP] Next >{}",
                rows(&hits[10..])
            )
        );
        let html3 = render(&store, &page(3), RenderCtx::default());
        assert_eq!(
            text_obs(&html3),
            format!("{head} [SEP] Page 3 (Total results: 12) [SEP] < Prev [SEP] Next >")
        );
        // Huge page numbers neither panic nor show rows.
        let html = render(&store, &page(usize::MAX), RenderCtx::default());
        assert!(!html.contains("product-link"));
        // A price range tag.
        assert!(text_obs(&html1).contains("$20.0 to $30.5"));
        // Links: product → item page with empty options; next/prev → results pages.
        let first = hits[0];
        let item = Page::Item {
            asin: first.asin.clone(),
            keywords: kw.clone(),
            page: 1,
            options: Vec::new(),
        };
        assert!(html1.contains(&format!(
            r#"<a class="product-link" id="product-{0}" href="{1}">{0}</a>"#,
            first.asin,
            item.to_path("sid123")
        )));
        assert!(html2.contains(&format!(r#"data-url="{}""#, page(1).to_path("sid123"))));
        assert!(html2.contains(&format!(r#"data-url="{}""#, page(3).to_path("sid123"))));
        assert!(html1.contains(r#"data-page="results""#));
        // No hits: still a page.
        let none = render(
            &store,
            &Page::Results {
                keywords: s(&["zzzz"]),
                page: 1,
            },
            RenderCtx::default(),
        );
        assert_eq!(
            text_obs(&none),
            format!("{head} [SEP] Page 1 (Total results: 0) [SEP] Next >")
        );
    }

    #[test]
    fn item_page_matches_webshop_mock() {
        // webshop.md §2.6, repo mock `mock_parse_item_page_ws`.
        let store = tiny_store();
        let instr = "i want an xx-small sized slim fit button down shirt with long sleeves. pick something in white, and price lower than 50.00 dollars";
        let page = Page::Item {
            asin: "PMUYBHF001".into(),
            keywords: s(&["shoes"]),
            page: 1,
            options: Vec::new(),
        };
        let html = store
            .render("sid", instr, &page, RenderCtx::default())
            .unwrap();
        assert_eq!(
            text_obs(&html),
            format!("Instruction: [SEP] {instr} [SEP] Back to Search [SEP] < Prev [SEP] color [SEP] black [SEP] purple [SEP] red [SEP] size [SEP] 6.5 [SEP] 7.5 [SEP] 8 [SEP] 8.5 [SEP] 9 [SEP] PMUYBHF Womens Fashion Flat Shoes Comfortable Running Shoes Sneakers Tennis Athletic Shoe Casual Walking Shoes [SEP] Price: $100.0 [SEP] Rating: N.A. [SEP] Description [SEP] Features [SEP] Reviews [SEP] Buy Now")
        );
        let with_attrs = store
            .render(
                "sid",
                instr,
                &page,
                RenderCtx {
                    show_attrs: true,
                    reward: None,
                },
            )
            .unwrap();
        assert!(text_obs(&with_attrs).ends_with("Reviews [SEP] Attributes [SEP] Buy Now"));
    }

    #[test]
    fn item_page_dom_contract() {
        let store = tiny_store();
        let page = Page::Item {
            asin: "B0SHOE0001".into(),
            keywords: s(&["trail"]),
            page: 2,
            options: o(&[("size", "9")]),
        };
        let html = render(&store, &page, RenderCtx::default());
        // Every radio's data-url is this page with that option set, in selection order.
        let mut found = 0;
        for (g, name, values) in [
            (0, "color", ["black | red", "white"]),
            (1, "size", ["8", "9"]),
        ] {
            for (i, value) in values.iter().enumerate() {
                let mut want = page.clone();
                if let Page::Item { options, .. } = &mut want {
                    set_option(options, name, value);
                }
                let url = want.to_path("sid123");
                let checked = if name == "size" && *value == "9" {
                    " checked"
                } else {
                    ""
                };
                let radio = format!(
                    r#"<input type="radio" id="radio-{g}-{i}" name="{name}" value="{value}" data-url="{url}"{checked}>"#
                );
                assert!(html.contains(&radio), "missing {radio}");
                assert!(html.contains(&format!(
                    r#"<label id="label-{g}-{i}" for="radio-{g}-{i}">{value}</label>"#
                )));
                assert!(html.contains(&format!(
                    r#"<a class="option-link" id="option-{g}-{i}" href="{url}""#
                )));
                let (_, back) = Page::from_path(&url).unwrap();
                assert_eq!(back, want);
                found += 1;
            }
        }
        assert_eq!(found, 4);
        let sub = |k| {
            Page::SubPage {
                asin: "B0SHOE0001".into(),
                keywords: s(&["trail"]),
                page: 2,
                sub: k,
                options: o(&[("size", "9")]),
            }
            .to_path("sid123")
        };
        for (id, k) in [
            ("description", SubPageKind::Description),
            ("features", SubPageKind::Features),
            ("reviews", SubPageKind::Reviews),
        ] {
            assert!(html.contains(&format!(
                r#"id="btn-{id}" class="btn btn-tab" type="submit" data-url="{}""#,
                sub(k)
            )));
        }
        assert!(!html.contains("btn-attributes"));
        let done = Page::Done {
            asin: "B0SHOE0001".into(),
            options: o(&[("size", "9")]),
        };
        assert!(html.contains(&format!(
            r#"<form id="buy-form" class="nav-form" method="post" action="{}">"#,
            done.to_path("sid123")
        )));
        let prev = Page::Results {
            keywords: s(&["trail"]),
            page: 2,
        };
        assert!(html.contains(&format!(
            r#"id="btn-prev" class="btn btn-page" type="submit" data-url="{}""#,
            prev.to_path("sid123")
        )));
        assert!(html.contains(
            r#"id="btn-back-to-search" class="btn btn-back" type="submit" data-url="/sid123""#
        ));
        assert!(html.contains(r#"<div id="instruction-text""#));
        // Buttons hold exactly their label (bs4 `get_text()` is the clickable name).
        for label in [
            "Back to Search",
            "&lt; Prev",
            "Description",
            "Features",
            "Reviews",
            "Buy Now",
        ] {
            assert!(html.contains(&format!(">{label}</button>")), "{label}");
        }
    }

    #[test]
    fn sub_pages_text() {
        let store = tiny_store();
        let opts = o(&[("color", "white")]);
        let page = |sub| Page::SubPage {
            asin: "B0SHOE0002".into(),
            keywords: s(&["trail"]),
            page: 1,
            sub,
            options: opts.clone(),
        };
        let head = format!("Instruction: [SEP] {INSTR} [SEP] Back to Search [SEP] < Prev");
        let cases = [
            (SubPageKind::Description, " [SEP] The Trail Shoe Model 2, described."),
            (SubPageKind::Features, " [SEP] Rubber sole [SEP] Machine wash"),
            (SubPageKind::Reviews, ""),
            (
                SubPageKind::Attributes,
                " [SEP] rubber sole [SEP] non slip [SEP] fashion [SEP] running shoes [SEP] Clothing › Shoes",
            ),
        ];
        for (sub, tail) in cases {
            let html = render(&store, &page(sub), RenderCtx::default());
            assert_eq!(text_obs(&html), format!("{head}{tail}"), "{sub:?}");
            assert!(html.contains(&format!(r#"data-page="{}""#, sub.marker())));
            // < Prev goes back to the item with the options kept.
            let item = Page::Item {
                asin: "B0SHOE0002".into(),
                keywords: s(&["trail"]),
                page: 1,
                options: opts.clone(),
            };
            assert!(html.contains(&format!(
                r#"id="btn-prev" class="btn btn-page" type="submit" data-url="{}""#,
                item.to_path("sid123")
            )));
        }
        // Features keep bs4's node shape: `<li><p> bullet</p></li>`.
        let html = render(&store, &page(SubPageKind::Features), RenderCtx::default());
        let nodes = visible_nodes(&html);
        assert!(nodes.contains(&("p".into(), " Rubber sole".into())));
        assert!(html.contains("<li><p class=\"product-info\"> Rubber sole</p></li>"));
    }

    #[test]
    fn done_page_text() {
        let store = tiny_store();
        let page = Page::Done {
            asin: "B0SHOE0003".into(),
            options: o(&[("size", "9"), ("color", "white")]),
        };
        let html = render(
            &store,
            &page,
            RenderCtx {
                show_attrs: false,
                reward: Some(2.0 / 3.0),
            },
        );
        assert_eq!(
            text_obs(&html),
            "Thank you for shopping with us! [SEP] Your code: [SEP] None [SEP] (Paste it in your MTurk interface.) [SEP] Purchased [SEP] asin [SEP] B0SHOE0003 [SEP] options [SEP] {\"color\": \"white\", \"size\": \"9\"} [SEP] attrs [SEP] None [SEP] category [SEP] None [SEP] query [SEP] None [SEP] product category [SEP] None [SEP] Target [SEP] asin [SEP] options [SEP] attrs [SEP] price upper [SEP] instuction text [SEP] category [SEP] product category [SEP] query [SEP] Goal [SEP] None [SEP] Reward [SEP] Your score (min 0.0, max 1.0) [SEP] 0.6666666666666666 [SEP] Reward Details [SEP] None"
        );
        assert!(html.contains(r#"data-page="done""#));
        assert!(html.contains(r#"data-reward="0.6666666666666666""#));
        let html = render(&store, &page, RenderCtx::default());
        assert!(text_obs(&html).contains("Your score (min 0.0, max 1.0) [SEP] None"));
        let html = render(
            &store,
            &page,
            RenderCtx {
                show_attrs: false,
                reward: Some(1.0),
            },
        );
        assert!(text_obs(&html).contains("Your score (min 0.0, max 1.0) [SEP] 1.0 [SEP]"));
    }

    #[test]
    fn catalog_strings_are_escaped() {
        let store = tiny_store();
        let evil = "<script>alert(1)</script> Tom & Jerry's \"Mug\"";
        let instr = "</h4><script>x()</script> & more";
        let item = Page::Item {
            asin: "B0EVIL0001".into(),
            keywords: s(&["<script>", "&amp;"]),
            page: 1,
            options: o(&[("style", "a & b")]),
        };
        let html = store
            .render("sid", instr, &item, RenderCtx::default())
            .unwrap();
        assert!(!html.contains("<script>"), "{html}");
        assert!(!html.contains("<b>"));
        let text = text_obs(&html);
        assert_eq!(
            text,
            format!("Instruction: [SEP] {instr} [SEP] Back to Search [SEP] < Prev [SEP] style [SEP] <b>bold</b> [SEP] a & b [SEP] {evil} [SEP] Price: $100.0 [SEP] Rating: N.A. [SEP] Description [SEP] Features [SEP] Reviews [SEP] Buy Now")
        );
        let results = Page::Results {
            keywords: s(&["script", "alert", "mug"]),
            page: 1,
        };
        let html = store
            .render("sid", instr, &results, RenderCtx::default())
            .unwrap();
        assert!(!html.contains("<script>"));
        assert!(text_obs(&html).contains(evil));
        let done = Page::Done {
            asin: "B0EVIL0001".into(),
            options: o(&[("style", "<b>bold</b>")]),
        };
        let html = store
            .render("sid", instr, &done, RenderCtx::default())
            .unwrap();
        assert!(text_obs(&html).contains(r#"{"style": "\u003cb\u003ebold\u003c/b\u003e"}"#));
    }

    #[test]
    fn render_rejects_unknown_products_and_options() {
        let store = tiny_store();
        let page = |asin: &str, options| Page::Item {
            asin: asin.into(),
            keywords: s(&["x"]),
            page: 1,
            options,
        };
        assert!(matches!(
            store.render(
                "s",
                "i",
                &Page::Results {
                    keywords: s(&["x"]),
                    page: 0
                },
                RenderCtx::default()
            ),
            Err(PageError::Malformed(_))
        ));
        assert!(matches!(
            store.render("s", "i", &page("NOPE", Vec::new()), RenderCtx::default()),
            Err(PageError::UnknownProduct(_))
        ));
        assert!(matches!(
            store.render(
                "s",
                "i",
                &page("B0SHOE0001", o(&[("color", "green")])),
                RenderCtx::default()
            ),
            Err(PageError::InvalidOption(_))
        ));
        assert!(matches!(
            store.render(
                "s",
                "i",
                &page("B0SHOE0001", o(&[("flavor", "8")])),
                RenderCtx::default()
            ),
            Err(PageError::InvalidOption(_))
        ));
        // ASINs are case-insensitive; links use the catalog's spelling.
        let html = store
            .render(
                "s",
                "i",
                &page("b0shoe0001", Vec::new()),
                RenderCtx::default(),
            )
            .unwrap();
        assert!(html.contains(r#"data-asin="B0SHOE0001""#));
    }

    #[test]
    fn whitespace_nodes_never_collapse_to_spaces() {
        // A whitespace-only node without a newline would become an empty `[SEP]` entry.
        let store = tiny_store();
        let mut pages = vec![
            Page::Home,
            Page::Results {
                keywords: s(&["trail", "shoe"]),
                page: 2,
            },
            Page::Done {
                asin: "B0SHOE0001".into(),
                options: Vec::new(),
            },
        ];
        for sub in SubPageKind::ALL {
            pages.push(Page::SubPage {
                asin: "B0SHOE0001".into(),
                keywords: s(&["a"]),
                page: 1,
                sub,
                options: Vec::new(),
            });
        }
        pages.push(Page::Item {
            asin: "B0SHOE0001".into(),
            keywords: s(&["a"]),
            page: 1,
            options: Vec::new(),
        });
        for page in pages {
            let html = render(
                &store,
                &page,
                RenderCtx {
                    show_attrs: true,
                    reward: Some(0.5),
                },
            );
            for (parent, t) in visible_nodes(&html) {
                assert!(
                    !t.trim().is_empty() || t == "\n",
                    "{page:?}: {parent} {t:?}"
                );
            }
        }
    }

    #[test]
    fn odd_item_page_matches_webshop_templates() {
        // Expected strings produced by WebShop's own templates (Flask 2.1.2, bs4 4.11.1) on
        // the same product: whitespace-only values give empty entries, titles keep inner
        // tabs and newlines.
        let store = tiny_store();
        let page = |sub: Option<SubPageKind>| match sub {
            None => Page::Item {
                asin: "B0ODD00001".into(),
                keywords: s(&["a", "b"]),
                page: 2,
                options: Vec::new(),
            },
            Some(sub) => Page::SubPage {
                asin: "B0ODD00001".into(),
                keywords: s(&["a"]),
                page: 1,
                sub,
                options: Vec::new(),
            },
        };
        let ctx = RenderCtx {
            show_attrs: true,
            reward: None,
        };
        let html = render(&store, &page(None), ctx);
        assert_eq!(
            text_obs(&html),
            format!("Instruction: [SEP] {INSTR} [SEP] Back to Search [SEP] < Prev [SEP] color [SEP] black | red [SEP] it's \"x\" [SEP] 日本 [SEP]  [SEP] size [SEP] 8 [SEP] 9 [SEP] empty [SEP] dup [SEP] 8 [SEP] Odd\ttitle \"q\" & <b> 'x' \n line2 [SEP] Price: $12.99 to $15.0 [SEP] Rating: N.A. [SEP] Description [SEP] Features [SEP] Reviews [SEP] Attributes [SEP] Buy Now")
        );
        let html = render(&store, &page(Some(SubPageKind::Description)), ctx);
        assert_eq!(
            text_obs(&html),
            format!("Instruction: [SEP] {INSTR} [SEP] Back to Search [SEP] < Prev [SEP] ")
        );
    }
}
