//! Import of princeton-nlp/WebShop's data files into the catalog model.
//!
//! Reads the files WebShop's `setup.sh` downloads into `data/` and derives products and goals
//! exactly as `web_agent_site/engine/engine.py::load_products` and
//! `web_agent_site/engine/goal.py::get_human_goals` / `get_synthetic_goals` do (see
//! `../shared/reference/webshop.md` §1.6, §1.7, §3):
//!
//! | field of [`WebShopImport`] | WebShop file | content |
//! |---|---|---|
//! | `items` | `items_shuffle*.json` | JSON array of product records (5 GB for the full set) |
//! | `attributes` | `items_ins_v2*.json` | asin → `{attributes, instruction?, instruction_attributes?}` |
//! | `human_instructions` | `items_human_ins.json` | asin → list of crowd-written instructions |
//! | `title_nouns` | `title_nouns.json` (agentq) | asin → lower-cased title nouns (spaCy, offline) |
//! | `prices` | `prices.json` (agentq) | asin → the single price of the product |
//! | `goals` | `goals.json` (agentq) | list of WebShop goal dicts, used verbatim |
//!
//! The product file is **streamed**: a serde visitor takes one record at a time from a
//! buffered reader, so memory holds the derived products only, never the 5 GB array; with
//! `num_products` reading stops after the first N records (and the rest of the file is not
//! parsed). The object files are streamed too, keeping only entries for loaded ASINs.
//!
//! Record indices in error locations (`record 17, field pricing`) are 0-based positions in
//! the array, as Python's `enumerate` counts them.
//!
//! ## Deliberate differences from WebShop
//!
//! * **Seeded randomness.** WebShop draws the price of a range-priced product
//!   (`random.uniform(lo, hi)`) and each goal's `price_upper` from the *unseeded* module RNG,
//!   so they change from run to run. Here the price is `Rng::keyed(seed, asin).uniform(lo,
//!   hi)` and a human goal's bound uses `Rng::keyed(seed, "<asin>#<entry index>")`
//!   (synthetic: `"<asin>#synthetic"`): same seed, same catalog. The distribution is
//!   WebShop's (the larger of two distinct draws among the first four multiples of 10 above
//!   the price). `prices.json` freezes prices outright.
//! * **Goal order is WebShop's, bit for bit:** goals are built in WebShop's order and then
//!   permuted by CPython's `random.seed(233); random.shuffle(goals)` (Mersenne Twister, Python
//!   3.11 `shuffle`), re-implemented in `agentq_core::pycompat::random`. WebShop's text
//!   environment and Flask app shuffle both human and synthetic goals, and so does this.
//! * **Leniency where WebShop would crash** (a `KeyError` or `None` later in the pipeline):
//!   missing or `null` `full_description`, `category`, `product_category` → `""`; missing
//!   or `null` `small_description` → no bullets (`null` items of a bullet list are dropped);
//!   missing `customization_options` → no options; missing or empty `images` → no main
//!   image; `"attributes": null` → `["DUMMY_ATTR"]`; an ASIN absent from `items_ins_v2` in
//!   synthetic mode, or with no `instruction_attributes`, → no synthetic goal; a missing
//!   `instruction_attributes` / `instruction_options` in a human instruction → empty. An
//!   empty ASIN is skipped like `"nan"`. `asin`, `name` and `query` are required.
//! * **Errors instead of crashes** where WebShop raises: a `pricing` that is not a string or
//!   `null`, a non-empty pricing string with no `$` amount (WebShop: `IndexError`), or a
//!   `$` piece with no readable number such as `"$ - $15"` (WebShop: `decimal.InvalidOperation`)
//!   is an [`Error::Data`] naming the file, the record and the field. Only ASCII digits (and
//!   fullwidth `０`–`９`) count as digits, where Python's `\d` takes any Unicode digit.
//! * Malformed JSON (truncated file, top level not an array/object) is an [`Error::Data`]
//!   with serde_json's line and column; NaN/Infinity literals (accepted by Python's `json`)
//!   are not valid JSON and are rejected.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use serde_json::Value;

mod stream;

use super::catalog::{Catalog, Goal, GoalOptions, OptionGroup, Product};
use super::nouns;
use super::{Error, Result};
use agentq_core::rng::Rng;
use stream::{stream_array, stream_object, OrderedValue, RawGoal, RawProduct};

/// The attribute list WebShop gives a product with no `items_ins_v2` entry.
pub const DUMMY_ATTR: &str = "DUMMY_ATTR";
/// `price_upper` of a goal whose instruction states no price (WebShop's `1000000`).
pub const NO_PRICE_UPPER: f64 = 1_000_000.0;
/// The seed of WebShop's goal shuffle (`random.seed(233); random.shuffle(goals)`).
pub const GOAL_SHUFFLE_SEED: u64 = 233;
/// The price WebShop assumes when `pricing` is missing or empty.
pub const DEFAULT_PRICE: f64 = 100.0;

/// Where WebShop's data files are and how to turn them into a [`Catalog`].
///
/// Build one with [`WebShopImport::from_dir`] (finds the files by WebShop's names) or
/// [`WebShopImport::new`], adjust the public fields or the `with_*` methods, then
/// [`load`](WebShopImport::load).
#[derive(Debug, Clone, PartialEq)]
pub struct WebShopImport {
    /// The product array, `items_shuffle.json` or `items_shuffle_1000.json`.
    pub items: PathBuf,
    /// Attributes and synthetic instructions, `items_ins_v2.json` or `items_ins_v2_1000.json`.
    pub attributes: PathBuf,
    /// Crowd-written instructions, `items_human_ins.json`; needed for human goals unless
    /// `goals` is given.
    pub human_instructions: Option<PathBuf>,
    /// Optional asin → title nouns (spaCy `NOUN`/`PROPN`, lower-cased). Products without an
    /// entry get [`nouns::title_nouns`] of their title.
    pub title_nouns: Option<PathBuf>,
    /// Optional asin → single price, overriding the seeded draw.
    pub prices: Option<PathBuf>,
    /// Optional list of WebShop goal dicts, used verbatim and in file order instead of
    /// building (and shuffling) goals.
    pub goals: Option<PathBuf>,
    /// Human goals (`get_human_goals`, WebShop's evaluation setting; the default) or
    /// synthetic goals (`get_synthetic_goals`).
    pub human_goals: bool,
    /// Read only the first N records of the product array (WebShop's `num_products`: counted
    /// before skipping bad and duplicate ASINs).
    pub num_products: Option<usize>,
    /// Seed of the product-price and price-bound draws.
    pub seed: u64,
}

impl WebShopImport {
    /// An import of `items` and `attributes` with human goals, seed 0 and no optional file.
    pub fn new(items: impl Into<PathBuf>, attributes: impl Into<PathBuf>) -> Self {
        WebShopImport {
            items: items.into(),
            attributes: attributes.into(),
            human_instructions: None,
            title_nouns: None,
            prices: None,
            goals: None,
            human_goals: true,
            num_products: None,
            seed: 0,
        }
    }

    /// Finds WebShop's files in `dir`: exactly one `items_shuffle*.json` and one
    /// `items_ins_v2*.json` (several matches are an error: set the field by hand), plus
    /// `items_human_ins.json`, `title_nouns.json`, `prices.json` and `goals.json` when
    /// present.
    pub fn from_dir(dir: impl AsRef<Path>) -> Result<Self> {
        let dir = dir.as_ref();
        let mut names = Vec::new();
        for entry in std::fs::read_dir(dir).map_err(|e| Error::io(dir, e))? {
            let entry = entry.map_err(|e| Error::io(dir, e))?;
            if !entry.path().is_file() {
                continue;
            }
            if let Some(name) = entry.file_name().to_str() {
                names.push(name.to_string());
            }
        }
        names.sort();
        let items = find_one(dir, &names, "items_shuffle")?;
        let attributes = find_one(dir, &names, "items_ins_v2")?;
        let exact = |name: &str| names.iter().any(|n| n == name).then(|| dir.join(name));
        Ok(WebShopImport {
            human_instructions: exact("items_human_ins.json"),
            title_nouns: exact("title_nouns.json"),
            prices: exact("prices.json"),
            goals: exact("goals.json"),
            ..WebShopImport::new(items, attributes)
        })
    }

    /// Sets the seed of the price draws.
    pub fn with_seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    /// Chooses human (`true`) or synthetic goals.
    pub fn with_human_goals(mut self, human_goals: bool) -> Self {
        self.human_goals = human_goals;
        self
    }

    /// Limits the import to the first `n` records of the product array.
    pub fn with_num_products(mut self, n: Option<usize>) -> Self {
        self.num_products = n;
        self
    }

    /// Reads the files and builds the catalog: products in file order, goals in WebShop's
    /// canonical (shuffled) order, or `goals.json`'s order when given.
    pub fn load(&self) -> Result<Catalog> {
        let want_synthetic = !self.human_goals && self.goals.is_none();
        let loaded = self.read(want_synthetic)?;
        let goals = self.build_goals(&loaded)?;
        Catalog::new(loaded.products, goals)
    }

    /// Reads the products only (with attributes, prices and title nouns), in file order.
    pub fn load_products(&self) -> Result<Vec<Product>> {
        Ok(self.read(false)?.products)
    }

    fn read(&self, want_synthetic: bool) -> Result<Loaded> {
        let mut products: Vec<Product> = Vec::new();
        let mut index: HashMap<String, usize> = HashMap::new();
        stream_array::<RawProduct>(
            &self.items,
            self.num_products,
            "a JSON array of WebShop product records",
            |i, raw| {
                let product = derive_product(raw, &index).map_err(|(field, message)| {
                    data_error(&self.items, format!("record {i}, field {field}"), message)
                })?;
                if let Some(p) = product {
                    index.insert(p.asin.clone(), products.len());
                    products.push(p);
                }
                Ok(())
            },
        )?;

        let mut synthetic = HashMap::new();
        let path = &self.attributes;
        stream_object(
            path,
            |asin| index.contains_key(asin),
            "a JSON object mapping ASINs to attribute records",
            |asin, value| {
                let Some(&i) = index.get(asin) else {
                    return Ok(());
                };
                let at = |field: &str| format!("entry {asin:?}, field {field}");
                let Value::Object(mut entry) = value else {
                    return Err(data_error(
                        path,
                        format!("entry {asin:?}"),
                        expected("an object", &value),
                    ));
                };
                products[i].attributes = match entry.remove("attributes") {
                    None | Some(Value::Null) => vec![DUMMY_ATTR.to_string()],
                    v => string_list(v).map_err(|m| data_error(path, at("attributes"), m))?,
                };
                if want_synthetic {
                    let instruction = entry.remove("instruction");
                    let attrs = entry.remove("instruction_attributes");
                    if let Some(Value::String(instruction)) = instruction {
                        let attributes = string_list(attrs)
                            .map_err(|m| data_error(path, at("instruction_attributes"), m))?;
                        synthetic.insert(
                            asin.to_string(),
                            SyntheticSpec {
                                instruction,
                                attributes,
                            },
                        );
                    } else if let Some(v) = instruction.filter(|v| !v.is_null()) {
                        return Err(data_error(
                            path,
                            at("instruction"),
                            expected("a string or null", &v),
                        ));
                    }
                }
                Ok(())
            },
        )?;

        for p in &mut products {
            p.price = match p.pricing.as_slice() {
                [one] => *one,
                [lo, hi, ..] => Rng::keyed(self.seed, &p.asin).uniform(*lo, *hi),
                [] => DEFAULT_PRICE,
            };
        }
        if let Some(path) = &self.prices {
            stream_object(
                path,
                |asin| index.contains_key(asin),
                "a JSON object mapping ASINs to prices",
                |asin, value| {
                    let price = match value.as_f64() {
                        Some(x) if x.is_finite() && x >= 0.0 => x,
                        _ => {
                            return Err(data_error(
                                path,
                                format!("entry {asin:?}"),
                                expected("a non-negative number", &value),
                            ))
                        }
                    };
                    if let Some(&i) = index.get(asin) {
                        products[i].price = price;
                    }
                    Ok(())
                },
            )?;
        }

        let mut have_nouns = vec![false; products.len()];
        if let Some(path) = &self.title_nouns {
            stream_object(
                path,
                |asin| index.contains_key(asin),
                "a JSON object mapping ASINs to lists of title nouns",
                |asin, value| {
                    let list = string_list(Some(value))
                        .map_err(|m| data_error(path, format!("entry {asin:?}"), m))?;
                    if let Some(&i) = index.get(asin) {
                        products[i].title_nouns = list.iter().map(|s| s.to_lowercase()).collect();
                        have_nouns[i] = true;
                    }
                    Ok(())
                },
            )?;
        }
        for (p, have) in products.iter_mut().zip(have_nouns) {
            if !have {
                p.title_nouns = nouns::title_nouns(&p.title);
            }
        }

        Ok(Loaded {
            products,
            index,
            synthetic,
        })
    }

    fn build_goals(&self, loaded: &Loaded) -> Result<Vec<Goal>> {
        if let Some(path) = &self.goals {
            return read_goals(path, loaded);
        }
        let mut goals = if self.human_goals {
            let path = self.human_instructions.as_ref().ok_or_else(|| {
                Error::Invalid(
                    "human goals need items_human_ins.json (set human_instructions, \
                     use synthetic goals, or give goals.json)"
                        .into(),
                )
            })?;
            let human = read_human_instructions(path, &loaded.index)?;
            human_goals(&loaded.products, &human, self.seed)
        } else {
            synthetic_goals(&loaded.products, &loaded.synthetic, self.seed)
        };
        agentq_core::pycompat::random::Random::seed(GOAL_SHUFFLE_SEED).shuffle(&mut goals);
        Ok(goals)
    }
}

/// Products read so far, their index by ASIN and (synthetic mode) their instructions.
struct Loaded {
    products: Vec<Product>,
    index: HashMap<String, usize>,
    synthetic: HashMap<String, SyntheticSpec>,
}

/// `items_ins_v2[asin]["instruction"]` and `["instruction_attributes"]`.
struct SyntheticSpec {
    instruction: String,
    attributes: Vec<String>,
}

/// One entry of `items_human_ins.json`.
#[derive(Debug, Clone)]
struct HumanInstruction {
    instruction: String,
    attributes: Vec<String>,
    options: Vec<String>,
}

fn find_one(dir: &Path, names: &[String], prefix: &str) -> Result<PathBuf> {
    let found: Vec<&String> = names
        .iter()
        .filter(|n| n.starts_with(prefix) && n.ends_with(".json"))
        .collect();
    match found.as_slice() {
        [one] => Ok(dir.join(one.as_str())),
        [] => Err(Error::Invalid(format!(
            "{}: no {prefix}*.json (WebShop data directory expected)",
            dir.display()
        ))),
        several => Err(Error::Invalid(format!(
            "{}: several {prefix}*.json files ({}); name the one to use explicitly",
            dir.display(),
            several
                .iter()
                .map(|s| s.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ))),
    }
}

// ---------------------------------------------------------------------------------------
// Product derivation (load_products)
// ---------------------------------------------------------------------------------------

/// An error in one field of a record: the field name and what is wrong.
type FieldResult<T> = std::result::Result<T, (&'static str, String)>;

/// Derives a product from a raw record, or `None` when WebShop skips the record (ASIN
/// `"nan"`, empty, longer than 10 characters, or already seen).
fn derive_product(raw: RawProduct, seen: &HashMap<String, usize>) -> FieldResult<Option<Product>> {
    let asin = required_string(raw.asin).map_err(|m| ("asin", m))?;
    if asin == "nan" || asin.is_empty() || asin.chars().count() > 10 || seen.contains_key(&asin) {
        return Ok(None);
    }
    let title = required_string(raw.name).map_err(|m| ("name", m))?;
    let query = required_string(raw.query).map_err(|m| ("query", m))?;
    let description = optional_string(raw.full_description).map_err(|m| ("full_description", m))?;
    let category = optional_string(raw.category).map_err(|m| ("category", m))?;
    let product_category =
        optional_string(raw.product_category).map_err(|m| ("product_category", m))?;
    let bullet_points = bullets(raw.small_description).map_err(|m| ("small_description", m))?;
    let pricing = match raw.pricing {
        None | Some(Value::Null) => parse_pricing(None),
        Some(Value::String(s)) => parse_pricing(Some(&s)),
        Some(other) => Err(expected("a string or null", &other)),
    }
    .map_err(|m| ("pricing", m))?;
    let options = options(raw.customization_options).map_err(|m| ("customization_options", m))?;
    let main_image = match raw.images {
        Some(Value::Array(images)) => images.into_iter().next().and_then(|v| match v {
            Value::String(s) => Some(s),
            _ => None,
        }),
        _ => None,
    };
    Ok(Some(Product {
        asin,
        title,
        category,
        product_category,
        query: agentq_core::pycompat::strip(&query.to_lowercase()).to_string(),
        description,
        bullet_points,
        attributes: vec![DUMMY_ATTR.to_string()],
        options,
        price: pricing.first().copied().unwrap_or(DEFAULT_PRICE),
        pricing,
        title_nouns: Vec::new(),
        main_image,
    }))
}

/// Parses a WebShop `pricing` string as `load_products` does: split on `$`, drop the part
/// before the first `$`, keep digits and dots of each piece and read it as a number; keep
/// the first two values. `None` or `""` gives `[100.0]`.
///
/// Errors (where WebShop raises) when the string has no `$` amount or a piece has no
/// readable number (`"$ - $15"`, `"$1.2.3"`).
pub fn parse_pricing(pricing: Option<&str>) -> std::result::Result<Vec<f64>, String> {
    let text = match pricing {
        None | Some("") => return Ok(vec![DEFAULT_PRICE]),
        Some(t) => t,
    };
    let mut out = Vec::new();
    for piece in text.split('$').skip(1) {
        let cleaned: String = piece
            .chars()
            .filter_map(|c| match c {
                '0'..='9' | '.' => Some(c),
                '\u{ff10}'..='\u{ff19}' => char::from_digit(c as u32 - 0xff10, 10),
                _ => None,
            })
            .collect();
        let readable =
            cleaned.matches('.').count() <= 1 && cleaned.chars().any(|c| c.is_ascii_digit());
        match cleaned.parse::<f64>() {
            Ok(v) if readable && v.is_finite() => out.push(v),
            _ => return Err(format!("cannot read a price from {piece:?} in {text:?}")),
        }
    }
    if out.is_empty() {
        return Err(format!("no \"$\" amount in {text:?}"));
    }
    out.truncate(2);
    Ok(out)
}

/// Normalises an option value as WebShop does: `value.strip().replace('/', ' | ').lower()`.
pub fn normalize_option_value(value: &str) -> String {
    agentq_core::pycompat::strip(value)
        .replace('/', " | ")
        .to_lowercase()
}

fn options(raw: Option<OrderedValue>) -> std::result::Result<Vec<OptionGroup>, String> {
    let pairs = match raw {
        None | Some(OrderedValue::Other(Value::Null)) => return Ok(Vec::new()),
        Some(OrderedValue::Object(pairs)) => pairs,
        Some(OrderedValue::Other(v)) => return Err(expected("an object or null", &v)),
    };
    let mut groups: Vec<OptionGroup> = Vec::new();
    for (name, contents) in pairs {
        let contents = match contents {
            Value::Null => continue,
            Value::Array(items) => items,
            other => {
                return Err(format!(
                    "option {name:?}: {}",
                    expected("a list or null", &other)
                ))
            }
        };
        let mut values = Vec::with_capacity(contents.len());
        for (k, item) in contents.iter().enumerate() {
            let value = item.get("value").and_then(Value::as_str).ok_or_else(|| {
                format!(
                    "option {name:?} item {k}: {}",
                    expected("an object with a string \"value\"", item)
                )
            })?;
            values.push(normalize_option_value(value));
        }
        // A Python dict: a repeated (lower-cased) name keeps its place, the last list wins.
        let name = name.to_lowercase();
        match groups.iter_mut().find(|g| g.name == name) {
            Some(group) => group.values = values,
            None => groups.push(OptionGroup { name, values }),
        }
    }
    Ok(groups)
}

fn bullets(raw: Option<Value>) -> std::result::Result<Vec<String>, String> {
    match raw {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::String(s)) => Ok(vec![s]),
        Some(Value::Array(items)) => items
            .into_iter()
            .enumerate()
            .filter(|(_, v)| !v.is_null())
            .map(|(k, v)| match v {
                Value::String(s) => Ok(s),
                other => Err(format!("item {k}: {}", expected("a string", &other))),
            })
            .collect(),
        Some(other) => Err(expected("a string or a list of strings", &other)),
    }
}

fn required_string(v: Option<Value>) -> std::result::Result<String, String> {
    match v {
        Some(Value::String(s)) => Ok(s),
        None => Err("missing".into()),
        Some(other) => Err(expected("a string", &other)),
    }
}

fn optional_string(v: Option<Value>) -> std::result::Result<String, String> {
    match v {
        None | Some(Value::Null) => Ok(String::new()),
        Some(Value::String(s)) => Ok(s),
        Some(other) => Err(expected("a string or null", &other)),
    }
}

fn string_list(v: Option<Value>) -> std::result::Result<Vec<String>, String> {
    match v {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Array(items)) => items
            .into_iter()
            .enumerate()
            .map(|(k, v)| match v {
                Value::String(s) => Ok(s),
                other => Err(format!("item {k}: {}", expected("a string", &other))),
            })
            .collect(),
        Some(other) => Err(expected("a list of strings", &other)),
    }
}

fn expected(what: &str, found: &Value) -> String {
    let found = match found {
        Value::Null => "null".to_string(),
        Value::Bool(b) => format!("boolean {b}"),
        Value::Number(n) => format!("number {n}"),
        Value::String(s) if s.chars().count() > 40 => {
            format!("string {:?}…", s.chars().take(40).collect::<String>())
        }
        Value::String(s) => format!("string {s:?}"),
        Value::Array(a) => format!("a list of {} items", a.len()),
        Value::Object(_) => "an object".to_string(),
    };
    format!("expected {what}, found {found}")
}

pub(super) fn data_error(
    path: &Path,
    location: impl Into<String>,
    message: impl Into<String>,
) -> Error {
    Error::Data {
        path: path.to_path_buf(),
        location: location.into(),
        message: message.into(),
    }
}

// ---------------------------------------------------------------------------------------
// Goals (get_human_goals, get_synthetic_goals, goals.json)
// ---------------------------------------------------------------------------------------

/// WebShop's price bound: among the first four multiples of 10 above `price`, the larger of
/// two distinct random picks, with the instruction suffix; none when fewer than two exist.
fn price_bound(price: f64, mut rng: Rng) -> (f64, String) {
    let cands: Vec<f64> = (1..100)
        .map(|i| 10.0 * f64::from(i))
        .filter(|c| *c > price)
        .take(4)
        .collect();
    if cands.len() < 2 {
        return (NO_PRICE_UPPER, String::new());
    }
    let picks = rng.sample_indices(cands.len(), 2);
    let upper = picks.iter().map(|&k| cands[k]).fold(f64::MIN, f64::max);
    (upper, format!(", and price lower than {upper:.2} dollars"))
}

fn read_human_instructions(
    path: &Path,
    index: &HashMap<String, usize>,
) -> Result<HashMap<String, Vec<HumanInstruction>>> {
    let mut out = HashMap::new();
    stream_object(
        path,
        |asin| index.contains_key(asin),
        "a JSON object mapping ASINs to lists of instructions",
        |asin, value| {
            let Value::Array(items) = value else {
                return Err(data_error(
                    path,
                    format!("entry {asin:?}"),
                    expected("a list of instruction records", &value),
                ));
            };
            let mut entries = Vec::with_capacity(items.len());
            for (k, item) in items.into_iter().enumerate() {
                let at = |field: &str| format!("entry {asin:?} item {k}, field {field}");
                let Value::Object(mut item) = item else {
                    return Err(data_error(
                        path,
                        format!("entry {asin:?} item {k}"),
                        expected("an object", &item),
                    ));
                };
                let attributes = string_list(item.remove("instruction_attributes"))
                    .map_err(|m| data_error(path, at("instruction_attributes"), m))?;
                let options = string_list(item.remove("instruction_options"))
                    .map_err(|m| data_error(path, at("instruction_options"), m))?;
                let instruction = if attributes.is_empty() {
                    String::new() // skipped by get_human_goals before reading it
                } else {
                    required_string(item.remove("instruction"))
                        .map_err(|m| data_error(path, at("instruction"), m))?
                };
                entries.push(HumanInstruction {
                    instruction,
                    attributes,
                    options,
                });
            }
            out.insert(asin.to_string(), entries);
            Ok(())
        },
    )?;
    Ok(out)
}

/// `get_human_goals`, before the shuffle: products in catalog order, their instructions in
/// file order, entries with no `instruction_attributes` skipped.
fn human_goals(
    products: &[Product],
    human: &HashMap<String, Vec<HumanInstruction>>,
    seed: u64,
) -> Vec<Goal> {
    let mut goals = Vec::new();
    for p in products {
        let Some(entries) = human.get(&p.asin) else {
            continue;
        };
        for (k, e) in entries.iter().enumerate() {
            if e.attributes.is_empty() {
                continue;
            }
            let key = format!("{}#{k}", p.asin);
            let (price_upper, price_text) = price_bound(p.price, Rng::keyed(seed, &key));
            goals.push(Goal {
                asin: p.asin.clone(),
                category: p.category.clone(),
                query: p.query.clone(),
                name: p.title.clone(),
                product_category: p.product_category.clone(),
                instruction_text: format!("{}{price_text}", e.instruction.trim_matches('.')),
                attributes: e.attributes.clone(),
                goal_options: GoalOptions::Human(e.options.clone()),
                price_upper,
                name_nouns: p.title_nouns.clone(),
                weight: 1.0,
            });
        }
    }
    goals
}

/// `get_synthetic_goals`, before the shuffle: one goal per combination of option values
/// (option names sorted) of every product with a synthetic instruction.
fn synthetic_goals(
    products: &[Product],
    specs: &HashMap<String, SyntheticSpec>,
    seed: u64,
) -> Vec<Goal> {
    let mut goals = Vec::new();
    let mut counts: HashMap<String, usize> = HashMap::new();
    for p in products {
        let Some(spec) = specs.get(&p.asin) else {
            continue;
        };
        if spec.attributes.is_empty() {
            continue; // WebShop asserts here
        }
        let key = format!("{}#synthetic", p.asin);
        let (price_upper, price_text) = price_bound(p.price, Rng::keyed(seed, &key));
        let mut groups: Vec<&OptionGroup> = p.options.iter().collect();
        groups.sort_by(|a, b| a.name.cmp(&b.name));
        let mut combos: Vec<Vec<(String, String)>> = vec![Vec::new()];
        for g in &groups {
            combos = combos
                .iter()
                .flat_map(|prefix| {
                    g.values.iter().map(move |v| {
                        let mut c = prefix.clone();
                        c.push((g.name.clone(), v.clone()));
                        c
                    })
                })
                .collect();
        }
        for combo in combos {
            let option_text = combo
                .iter()
                .map(|(k, v)| format!("{k}: {v}"))
                .collect::<Vec<_>>()
                .join(", and ");
            let option_text = if option_text.is_empty() {
                option_text
            } else {
                format!(" with {option_text}")
            };
            for a in &spec.attributes {
                *counts.entry(a.clone()).or_insert(0) += 1;
            }
            goals.push(Goal {
                asin: p.asin.clone(),
                category: p.category.clone(),
                query: p.query.clone(),
                name: p.title.clone(),
                product_category: p.product_category.clone(),
                instruction_text: format!("{}{option_text}{price_text}", spec.instruction),
                attributes: spec.attributes.clone(),
                goal_options: GoalOptions::Synthetic(combo),
                price_upper,
                name_nouns: p.title_nouns.clone(),
                weight: 0.0,
            });
        }
    }
    for g in &mut goals {
        let total: f64 = g
            .attributes
            .iter()
            .map(|a| 1.0 / counts.get(a).copied().unwrap_or(1) as f64)
            .sum();
        g.weight = total / g.attributes.len() as f64;
    }
    goals
}

/// Reads `goals.json`: WebShop goal dicts in file order. Missing `category`, `query`,
/// `name`, `product_category` come from the target product; `attributes` → `[]`,
/// `goal_options` → `[]`, `price_upper` → 1,000,000, `weight` → 1. `name_nouns` (agentq)
/// may be given; otherwise the target product's title nouns when `name` is its title, else
/// [`nouns::title_nouns`] of `name`.
fn read_goals(path: &Path, loaded: &Loaded) -> Result<Vec<Goal>> {
    let mut goals = Vec::new();
    stream_array::<RawGoal>(
        path,
        None,
        "a JSON array of WebShop goal records",
        |i, raw| {
            let goal = convert_goal(raw, loaded).map_err(|(field, message)| {
                data_error(path, format!("record {i}, field {field}"), message)
            })?;
            goals.push(goal);
            Ok(())
        },
    )?;
    Ok(goals)
}

fn convert_goal(raw: RawGoal, loaded: &Loaded) -> FieldResult<Goal> {
    let asin = required_string(raw.asin).map_err(|m| ("asin", m))?;
    let product = loaded
        .index
        .get(&asin)
        .map(|&i| &loaded.products[i])
        .ok_or_else(|| ("asin", format!("no product {asin:?} in the catalog")))?;
    let or_product = |v: Option<Value>, field: &'static str, default: &str| match v {
        None => Ok(default.to_string()),
        v => required_string(v).map_err(|m| (field, m)),
    };
    let category = or_product(raw.category, "category", &product.category)?;
    let query = or_product(raw.query, "query", &product.query)?;
    let name = or_product(raw.name, "name", &product.title)?;
    let product_category = or_product(
        raw.product_category,
        "product_category",
        &product.product_category,
    )?;
    let instruction_text =
        required_string(raw.instruction_text).map_err(|m| ("instruction_text", m))?;
    let attributes = string_list(raw.attributes).map_err(|m| ("attributes", m))?;
    let number = |v: Option<Value>, field: &'static str, default: f64| match v {
        None | Some(Value::Null) => Ok(default),
        Some(v) => v
            .as_f64()
            .filter(|x| x.is_finite())
            .ok_or_else(|| (field, expected("a number", &v))),
    };
    let price_upper = number(raw.price_upper, "price_upper", NO_PRICE_UPPER)?;
    let weight = number(raw.weight, "weight", 1.0)?;
    let goal_options = match raw.goal_options {
        None | Some(OrderedValue::Other(Value::Null)) => GoalOptions::Human(Vec::new()),
        Some(OrderedValue::Other(v @ Value::Array(_))) => {
            GoalOptions::Human(string_list(Some(v)).map_err(|m| ("goal_options", m))?)
        }
        Some(OrderedValue::Object(pairs)) => GoalOptions::Synthetic(
            pairs
                .into_iter()
                .map(|(k, v)| match v {
                    Value::String(s) => Ok((k, s)),
                    other => Err((
                        "goal_options",
                        format!("option {k:?}: {}", expected("a string", &other)),
                    )),
                })
                .collect::<FieldResult<Vec<_>>>()?,
        ),
        Some(OrderedValue::Other(v)) => {
            return Err(("goal_options", expected("a list or an object", &v)))
        }
    };
    let name_nouns = match raw.name_nouns {
        None | Some(Value::Null) if name == product.title => product.title_nouns.clone(),
        None | Some(Value::Null) => nouns::title_nouns(&name),
        v => string_list(v).map_err(|m| ("name_nouns", m))?,
    };
    Ok(Goal {
        asin,
        category,
        query,
        name,
        product_category,
        instruction_text,
        attributes,
        goal_options,
        price_upper,
        name_nouns,
        weight,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data_dir() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../tests/data/webshop")
    }

    fn tiny() -> WebShopImport {
        WebShopImport::from_dir(data_dir()).expect("tiny data set found")
    }

    /// A temporary copy of the tiny data set, to add or replace files in.
    fn tiny_copy() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        for entry in std::fs::read_dir(data_dir()).unwrap() {
            let entry = entry.unwrap();
            if entry.path().is_file() {
                std::fs::copy(entry.path(), dir.path().join(entry.file_name())).unwrap();
            }
        }
        dir
    }

    fn product<'a>(products: &'a [Product], asin: &str) -> &'a Product {
        products.iter().find(|p| p.asin == asin).unwrap()
    }

    /// Writes `items` as the product file of a fresh import.
    fn with_items(items: &str) -> (tempfile::TempDir, WebShopImport) {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("items_shuffle_t.json"), items).unwrap();
        std::fs::write(dir.path().join("items_ins_v2_t.json"), "{}").unwrap();
        let imp = WebShopImport::from_dir(dir.path()).unwrap();
        (dir, imp)
    }

    fn record(asin: &str, pricing: &str) -> String {
        format!(
            r#"{{"asin": "{asin}", "name": "Thing {asin}", "full_description": "d",
                "small_description": ["b"], "pricing": {pricing}, "images": [],
                "product_category": "A › B", "category": "beauty", "query": "q",
                "customization_options": null}}"#
        )
    }

    fn data_location(err: &Error) -> (String, String) {
        match err {
            Error::Data {
                location, message, ..
            } => (location.clone(), message.clone()),
            other => panic!("expected a data error, got {other:?}"),
        }
    }

    #[test]
    fn from_dir_finds_webshop_names() {
        let imp = tiny();
        assert!(imp.items.ends_with("items_shuffle_tiny.json"));
        assert!(imp.attributes.ends_with("items_ins_v2_tiny.json"));
        assert!(imp.human_instructions.is_some());
        assert!(imp.title_nouns.is_some());
        assert!(imp.prices.is_none() && imp.goals.is_none());
        assert!(imp.human_goals);

        let dir = tiny_copy();
        std::fs::write(dir.path().join("items_shuffle.json"), "[]").unwrap();
        let err = WebShopImport::from_dir(dir.path()).unwrap_err();
        assert!(err.to_string().contains("several items_shuffle"), "{err}");

        let empty = tempfile::tempdir().unwrap();
        let err = WebShopImport::from_dir(empty.path()).unwrap_err();
        assert!(err.to_string().contains("no items_shuffle"), "{err}");
    }

    #[test]
    fn products_follow_load_products() {
        let products = tiny().load_products().unwrap();
        let asins: Vec<&str> = products.iter().map(|p| p.asin.as_str()).collect();
        assert_eq!(
            asins,
            [
                "B07RVDW2Z2",
                "B09P87V3LZ",
                "B07DJJXGB5",
                "B08GFNJN5R",
                "B07XYZ1234",
                "B09ABCDEF1",
                "B01HIJKLM2",
                "B08NOPQRS3",
                "B07TUVWXY4",
                "B06ZABCDE5"
            ]
        );

        // First occurrence wins; bullets, images, attributes.
        let candles = product(&products, "B07RVDW2Z2");
        assert!(candles.title.starts_with("Letter I Birthday"));
        assert_eq!(candles.price_tag(), "$7.99");
        assert_eq!(candles.price, 7.99);
        assert_eq!(candles.bullet_points.len(), 3);
        assert!(candles.options.is_empty());
        assert_eq!(candles.attributes, ["birthday cake", "party supplies"]);
        assert_eq!(
            candles.main_image.as_deref(),
            Some("https://m.media-amazon.com/images/I/61Zq1mOeh3L.jpg")
        );
        assert_eq!(
            candles.title_nouns,
            ["letter", "i", "birthday", "cake", "candles", "set", "holders", "pack"]
        );

        // Price range, options normalisation, query lower+strip, nouns lower-cased.
        let flats = product(&products, "B09P87V3LZ");
        assert_eq!(flats.price_tag(), "$12.99 to $15.99");
        assert_eq!(flats.pricing, [12.99, 15.99]);
        assert_eq!(
            flats.price,
            Rng::keyed(0, "B09P87V3LZ").uniform(12.99, 15.99)
        );
        assert!((12.99..=15.99).contains(&flats.price));
        assert_eq!(flats.query, "women's flats");
        assert_eq!(
            flats.options,
            [
                OptionGroup {
                    name: "color".into(),
                    values: vec!["black".into(), "beige | white".into()]
                },
                OptionGroup {
                    name: "size".into(),
                    values: vec!["6.5".into(), "7".into(), "8".into()]
                },
            ]
        );
        assert_eq!(flats.title_nouns[0], "pmuybhf");

        // Single-string bullets; a null option list is skipped.
        let scrub = product(&products, "B07DJJXGB5");
        assert_eq!(
            scrub.bullet_points,
            ["Exfoliates and softens skin with tea tree oil and sea salt"]
        );
        assert_eq!(scrub.options.len(), 1);
        assert_eq!(
            scrub.options[0].values,
            ["10 ounce (pack of 1)", "10 ounce (pack of 2)"]
        );

        // Empty pricing and null pricing → $100.0; empty attribute list kept; DUMMY_ATTR.
        let earbuds = product(&products, "B08GFNJN5R");
        assert_eq!(earbuds.price_tag(), "$100.0");
        assert_eq!(earbuds.price, 100.0);
        assert!(earbuds.attributes.is_empty());
        let cable = product(&products, "B08NOPQRS3");
        assert_eq!(cable.price_tag(), "$100.0");
        assert_eq!(cable.attributes, [DUMMY_ATTR]);
        assert_eq!(cable.main_image, None);
        // Heuristic nouns where title_nouns.json has no entry.
        assert_eq!(cable.title_nouns, nouns::title_nouns(&cable.title));

        let table = product(&products, "B09ABCDEF1");
        assert_eq!(table.price_tag(), "$1299.99");
        assert_eq!(table.main_image, None);
        let chair = product(&products, "B07XYZ1234");
        assert_eq!(chair.price_tag(), "$249.0");
        assert_eq!(chair.options[0].values, ["navy blue", "grey | gray"]);
    }

    #[test]
    fn prices_are_seeded() {
        let a = tiny().with_seed(1).load_products().unwrap();
        let b = tiny().with_seed(1).load_products().unwrap();
        let c = tiny().with_seed(2).load_products().unwrap();
        assert_eq!(a, b);
        let hair = |ps: &[Product]| product(ps, "B07TUVWXY4").price;
        assert_ne!(hair(&a), hair(&c));
        assert_eq!(product(&a, "B07RVDW2Z2").price, 7.99);
    }

    #[test]
    fn pricing_strings() {
        assert_eq!(parse_pricing(None).unwrap(), [100.0]);
        assert_eq!(parse_pricing(Some("")).unwrap(), [100.0]);
        assert_eq!(parse_pricing(Some("$21.99")).unwrap(), [21.99]);
        assert_eq!(parse_pricing(Some("$1,299.99")).unwrap(), [1299.99]);
        assert_eq!(
            parse_pricing(Some("$12.99 - $15.99")).unwrap(),
            [12.99, 15.99]
        );
        assert_eq!(parse_pricing(Some("$1 - $2 - $3")).unwrap(), [1.0, 2.0]);
        assert_eq!(parse_pricing(Some("from $5.")).unwrap(), [5.0]);
        assert_eq!(parse_pricing(Some("$.5")).unwrap(), [0.5]);
        assert_eq!(parse_pricing(Some("$１２.５")).unwrap(), [12.5]);
        assert!(parse_pricing(Some("12.99"))
            .unwrap_err()
            .contains("no \"$\""));
        assert!(parse_pricing(Some("$ - $15"))
            .unwrap_err()
            .contains("cannot read a price"));
        assert!(parse_pricing(Some("$1.2.3")).is_err());
        assert!(parse_pricing(Some("$.")).is_err());
    }

    #[test]
    fn option_names_collide_like_a_python_dict() {
        let raw: OrderedValue = serde_json::from_str(
            r#"{"Size": [{"value": "S"}], "Color": [{"value": "Red/Blue "}],
                "color": [{"value": "Green"}], "Fit": null, "Style": []}"#,
        )
        .unwrap();
        let groups = options(Some(raw)).unwrap();
        let names: Vec<&str> = groups.iter().map(|g| g.name.as_str()).collect();
        assert_eq!(names, ["size", "color", "style"]);
        assert_eq!(groups[1].values, ["green"]);
        assert!(groups[2].values.is_empty());
        assert_eq!(normalize_option_value(" Red/Blue "), "red | blue");
        assert_eq!(agentq_core::pycompat::strip("\u{1c} a \u{a0}"), "a");
    }

    #[test]
    fn num_products_counts_raw_records_and_stops_reading() {
        let products = tiny().with_num_products(Some(5)).load_products().unwrap();
        let asins: Vec<&str> = products.iter().map(|p| p.asin.as_str()).collect();
        assert_eq!(
            asins,
            ["B07RVDW2Z2", "B09P87V3LZ", "B07DJJXGB5", "B08GFNJN5R"]
        );
        assert!(tiny()
            .with_num_products(Some(0))
            .load_products()
            .unwrap()
            .is_empty());

        // The rest of the file is never parsed: garbage after record 1 is not an error.
        let items = format!(
            "[{}, {}, this is not json",
            record("B000000001", "\"$1.00\""),
            record("B000000002", "\"$2.00\"")
        );
        let (_dir, imp) = with_items(&items);
        let products = imp
            .clone()
            .with_num_products(Some(2))
            .load_products()
            .unwrap();
        assert_eq!(products.len(), 2);
        let err = imp.load_products().unwrap_err();
        assert_eq!(data_location(&err).0, "record 2");
    }

    #[test]
    fn human_goals_follow_get_human_goals() {
        let catalog = tiny().load().unwrap();
        let goals = catalog.goals();
        // 14 instructions for loaded products, one with no instruction_attributes.
        assert_eq!(goals.len(), 13);
        assert!(!goals
            .iter()
            .any(|g| g.instruction_text.starts_with("find me some candles")));
        assert!(!goals.iter().any(|g| g.asin == "B0UNKNOWN9"));
        for g in goals {
            let p = catalog.product(&g.asin).unwrap();
            assert_eq!(g.name, p.title);
            assert_eq!(g.query, p.query);
            assert_eq!(g.category, p.category);
            assert_eq!(g.product_category, p.product_category);
            assert_eq!(g.name_nouns, p.title_nouns);
            assert_eq!(g.weight, 1.0);
            assert!(matches!(g.goal_options, GoalOptions::Human(_)));
            let cands: Vec<f64> = (1..100)
                .map(|i| 10.0 * f64::from(i))
                .filter(|c| *c > p.price)
                .take(4)
                .collect();
            if cands.len() >= 2 {
                assert!(cands[1..].contains(&g.price_upper), "{g:?}");
                let suffix = format!(", and price lower than {:.2} dollars", g.price_upper);
                assert!(g.instruction_text.ends_with(&suffix), "{g:?}");
            } else {
                assert_eq!(g.price_upper, NO_PRICE_UPPER);
                assert!(!g.instruction_text.contains("price lower than"));
            }
        }
        let table = goals.iter().find(|g| g.asin == "B09ABCDEF1").unwrap();
        assert_eq!(
            table.instruction_text,
            "i need a solid wood dining table that seats six"
        );
        assert_eq!(table.price_upper, NO_PRICE_UPPER);
        // strip('.') on both ends, then the price clause.
        let hair = goals
            .iter()
            .find(|g| g.instruction_text.starts_with("i want ash blonde"))
            .unwrap();
        assert_eq!(
            hair.instruction_text,
            format!(
                "i want ash blonde hair extensions, 22 inch, and price lower than {:.2} dollars",
                hair.price_upper
            )
        );
        assert_eq!(
            hair.goal_options,
            GoalOptions::Human(vec!["ash blonde | platinum".into(), "22 inch".into()])
        );
        let earbuds = goals.iter().find(|g| g.asin == "B08GFNJN5R").unwrap();
        assert!([120.0, 130.0, 140.0].contains(&earbuds.price_upper));
        assert!(earbuds
            .instruction_text
            .ends_with(&format!("{:.2} dollars", earbuds.price_upper)));
        assert!(earbuds.instruction_text.ends_with("0.00 dollars"));
    }

    #[test]
    fn human_goals_are_seeded() {
        let texts = |seed| -> Vec<(String, f64)> {
            let c = tiny().with_seed(seed).load().unwrap();
            c.goals()
                .iter()
                .map(|g| (g.instruction_text.clone(), g.price_upper))
                .collect()
        };
        assert_eq!(texts(5), texts(5));
        assert_ne!(texts(5), texts(6));
        // Same order (the shuffle does not depend on the seed): same instructions modulo price.
        let strip = |v: Vec<(String, f64)>| -> Vec<String> {
            v.into_iter()
                .map(|(t, _)| t.split(", and price lower").next().unwrap().to_string())
                .collect()
        };
        assert_eq!(strip(texts(5)), strip(texts(6)));
    }

    #[test]
    fn price_bound_takes_the_2nd_to_4th_multiple() {
        let mut seen = std::collections::BTreeSet::new();
        for k in 0..200 {
            let (upper, text) = price_bound(12.5, Rng::keyed(3, &format!("X#{k}")));
            assert!([30.0, 40.0, 50.0].contains(&upper));
            assert_eq!(text, format!(", and price lower than {upper:.2} dollars"));
            seen.insert(upper as u64);
        }
        assert_eq!(seen.len(), 3);
        assert_eq!(price_bound(975.0, Rng::new(1)).0, 990.0);
        assert_eq!(
            price_bound(985.0, Rng::new(1)),
            (NO_PRICE_UPPER, String::new())
        );
        assert_eq!(price_bound(5000.0, Rng::new(1)).0, NO_PRICE_UPPER);
    }

    #[test]
    fn goal_order_is_cpythons_shuffle() {
        let imp = tiny();
        let loaded = imp.read(false).unwrap();
        let human =
            read_human_instructions(imp.human_instructions.as_ref().unwrap(), &loaded.index)
                .unwrap();
        let unshuffled = human_goals(&loaded.products, &human, imp.seed);
        // python3 -c "import random; random.seed(233); x=list(range(13)); random.shuffle(x); print(x)"
        let perm = [11, 9, 5, 6, 0, 1, 4, 7, 3, 8, 2, 12, 10];
        let catalog = imp.load().unwrap();
        let expected: Vec<&Goal> = perm.iter().map(|&i| &unshuffled[i]).collect();
        let got: Vec<&Goal> = catalog.goals().iter().collect();
        assert_eq!(got, expected);
        assert_eq!(unshuffled[0].asin, "B07RVDW2Z2");
        assert_eq!(unshuffled[12].asin, "B06ZABCDE5");
    }

    #[test]
    fn synthetic_goals_follow_get_synthetic_goals() {
        let imp = tiny().with_human_goals(false);
        let catalog = imp.load().unwrap();
        let goals = catalog.goals();
        // 2·3 flats + 2 scrub + 2 chair + 2·1 tea + 2·2 hair + 1·2 chinos.
        assert_eq!(goals.len(), 18);
        let tea: Vec<&Goal> = goals.iter().filter(|g| g.asin == "B01HIJKLM2").collect();
        assert_eq!(tea.len(), 2);
        let jasmine = tea
            .iter()
            .find(|g| g.instruction_text.contains("jasmine"))
            .unwrap();
        assert_eq!(
            jasmine.instruction_text,
            format!(
                "Find me gluten free tea bags with green tea with flavor name: jasmine, and \
                 size: 100 count, and price lower than {:.2} dollars",
                jasmine.price_upper
            )
        );
        assert_eq!(
            jasmine.goal_options,
            GoalOptions::Synthetic(vec![
                ("flavor name".into(), "jasmine".into()),
                ("size".into(), "100 count".into())
            ])
        );
        assert_eq!(jasmine.attributes, ["gluten free", "green tea"]);
        assert_eq!(jasmine.weight, 0.5);
        // One price bound per product.
        assert_eq!(tea[0].price_upper, tea[1].price_upper);
        let flats: Vec<&Goal> = goals.iter().filter(|g| g.asin == "B09P87V3LZ").collect();
        assert_eq!(flats.len(), 6);
        assert!(flats.iter().all(|g| (g.weight - 1.0 / 6.0).abs() < 1e-15));
        let hair = goals.iter().find(|g| g.asin == "B07TUVWXY4").unwrap();
        assert_eq!(hair.weight, 0.25);

        // Built in product order with the last option varying fastest, then shuffled.
        let loaded = imp.read(true).unwrap();
        let unshuffled = synthetic_goals(&loaded.products, &loaded.synthetic, imp.seed);
        assert_eq!(
            unshuffled[0].goal_options.values(),
            ["black", "6.5"],
            "first combination of the flats"
        );
        assert_eq!(unshuffled[1].goal_options.values(), ["black", "7"]);
        // python3 -c "import random; random.seed(233); x=list(range(18)); random.shuffle(x); print(x)"
        let perm = [6, 10, 2, 14, 0, 17, 11, 4, 9, 1, 3, 8, 15, 13, 12, 7, 16, 5];
        let expected: Vec<&Goal> = perm.iter().map(|&i| &unshuffled[i]).collect();
        assert_eq!(goals.iter().collect::<Vec<_>>(), expected);
    }

    #[test]
    fn human_goals_need_the_instruction_file() {
        let mut imp = tiny();
        imp.human_instructions = None;
        assert!(matches!(imp.load(), Err(Error::Invalid(_))));
    }

    #[test]
    fn goals_json_is_used_verbatim() {
        let dir = tiny_copy();
        std::fs::write(
            dir.path().join("goals.json"),
            r#"[
              {"asin": "B07TUVWXY4", "category": "beauty", "query": "hair extensions",
               "name": "Long Clip-in Hair Extensions Natural Looking",
               "product_category": "Beauty & Personal Care › Hair Care",
               "instruction_text": "i want hair extensions, and price lower than 50.00 dollars",
               "attributes": ["natural looking"], "price_upper": 50,
               "goal_options": {"size": "22 inch", "color": "dark brown"}, "weight": 0.25},
              {"asin": "B08NOPQRS3", "name": "Some Other Cable Name",
               "instruction_text": "i need an hdmi cable", "attributes": ["high speed"],
               "price_upper": 1000000, "goal_options": ["6 ft"], "extra": {"ignored": true}}
            ]"#,
        )
        .unwrap();
        let imp = WebShopImport::from_dir(dir.path()).unwrap();
        assert!(imp.goals.is_some());
        let catalog = imp.load().unwrap();
        let goals = catalog.goals();
        assert_eq!(goals.len(), 2);
        assert_eq!(goals[0].asin, "B07TUVWXY4");
        assert_eq!(goals[0].price_upper, 50.0);
        assert_eq!(goals[0].weight, 0.25);
        assert_eq!(
            goals[0].goal_options,
            GoalOptions::Synthetic(vec![
                ("size".into(), "22 inch".into()),
                ("color".into(), "dark brown".into())
            ])
        );
        assert_eq!(goals[0].name_nouns, ["clip", "hair", "extensions"]);
        assert_eq!(
            goals[0].product_category,
            "Beauty & Personal Care › Hair Care"
        );
        let cable = &goals[1];
        assert_eq!(cable.goal_options, GoalOptions::Human(vec!["6 ft".into()]));
        assert_eq!(cable.weight, 1.0);
        assert_eq!(cable.query, "hdmi cables"); // from the product
        assert_eq!(
            cable.name_nouns,
            nouns::title_nouns("Some Other Cable Name")
        );

        std::fs::write(
            dir.path().join("goals.json"),
            r#"[{"asin": "B0NOTTHERE", "instruction_text": "x"}]"#,
        )
        .unwrap();
        let err = WebShopImport::from_dir(dir.path())
            .unwrap()
            .load()
            .unwrap_err();
        assert_eq!(data_location(&err).0, "record 0, field asin");
    }

    #[test]
    fn prices_json_overrides_the_draw() {
        let dir = tiny_copy();
        std::fs::write(
            dir.path().join("prices.json"),
            r#"{"B09P87V3LZ": 14.25, "B08GFNJN5R": 985.0, "B0UNKNOWN9": 1.0}"#,
        )
        .unwrap();
        let catalog = WebShopImport::from_dir(dir.path()).unwrap().load().unwrap();
        let flats = catalog.product("B09P87V3LZ").unwrap();
        assert_eq!(flats.price, 14.25);
        assert_eq!(flats.price_tag(), "$12.99 to $15.99");
        let earbuds = catalog
            .goals()
            .iter()
            .find(|g| g.asin == "B08GFNJN5R")
            .unwrap();
        assert_eq!(earbuds.price_upper, NO_PRICE_UPPER);
        assert_eq!(
            earbuds.instruction_text,
            "i am looking for wireless earbuds with a charging case"
        );

        std::fs::write(dir.path().join("prices.json"), r#"{"B09P87V3LZ": "cheap"}"#).unwrap();
        let err = WebShopImport::from_dir(dir.path())
            .unwrap()
            .load()
            .unwrap_err();
        assert_eq!(data_location(&err).0, "entry \"B09P87V3LZ\"");
    }

    #[test]
    fn bad_pricing_type_names_record_and_field() {
        let items = format!(
            "[{}, {}, {}, {}]",
            record("B000000001", "\"$1.00\""),
            record("B000000002", "null"),
            record("B000000003", "\"\""),
            record("B000000004", "12.99"),
        );
        let (_dir, imp) = with_items(&items);
        let err = imp.load_products().unwrap_err();
        let (location, message) = data_location(&err);
        assert_eq!(location, "record 3, field pricing");
        assert!(message.contains("number 12.99"), "{message}");
        let shown = err.to_string();
        assert!(shown.contains("items_shuffle_t.json"), "{shown}");
        assert!(shown.contains("record 3"), "{shown}");

        // A piece with no number.
        let (_dir, imp) = with_items(&format!("[{}]", record("B000000001", "\"$ - $15\"")));
        let (location, _) = data_location(&imp.load_products().unwrap_err());
        assert_eq!(location, "record 0, field pricing");

        // Bad fields of a skipped record are never looked at, as in WebShop.
        let items = format!(
            "[{}, {}]",
            record("B000000001", "\"$1.00\""),
            record("B000000001", "12.99")
        );
        let (_dir, imp) = with_items(&items);
        assert_eq!(imp.load_products().unwrap().len(), 1);
    }

    #[test]
    fn syntax_error_inside_a_record_names_the_field() {
        let items = format!(
            r#"[{}, {{"asin": "B000000002", "name": "x", "pricing": tru }}]"#,
            record("B000000001", "\"$1.00\"")
        );
        let (_dir, imp) = with_items(&items);
        let (location, message) = data_location(&imp.load_products().unwrap_err());
        assert_eq!(location, "record 1, field pricing");
        assert!(message.contains(" line "), "{message}");

        let (_dir, imp) = with_items(r#"[{"asin": "B000000001", "name": ["#);
        let (location, message) = data_location(&imp.load_products().unwrap_err());
        assert_eq!(location, "record 0, field name");
        assert!(message.contains("truncated"), "{message}");

        let (_dir, imp) = with_items("[1]");
        let (location, message) = data_location(&imp.load_products().unwrap_err());
        assert_eq!(location, "record 0");
        assert!(message.contains("a record"), "{message}");

        let (_dir, imp) = with_items(r#"[{"name": "no asin", "query": "q"}]"#);
        let (location, message) = data_location(&imp.load_products().unwrap_err());
        assert_eq!(
            (location.as_str(), message.as_str()),
            ("record 0, field asin", "missing")
        );
    }

    #[test]
    fn truncated_and_non_array_files() {
        let items = format!(
            "[{}, {}",
            record("B000000001", "\"$1.00\""),
            record("B000000002", "\"$2.00\"")
        );
        let (_dir, imp) = with_items(&items);
        let (location, message) = data_location(&imp.load_products().unwrap_err());
        assert_eq!(location, "record 2");
        assert!(message.contains("truncated"), "{message}");

        let (_dir, imp) = with_items("");
        let (location, message) = data_location(&imp.load_products().unwrap_err());
        assert_eq!(location, "top level");
        assert!(message.contains("truncated or empty"), "{message}");

        let (_dir, imp) = with_items(r#"{"B000000001": {}}"#);
        let (location, message) = data_location(&imp.load_products().unwrap_err());
        assert_eq!(location, "top level");
        assert!(
            message.contains("expected a JSON array of WebShop product records"),
            "{message}"
        );

        let (_dir, imp) = with_items("[] []");
        let (location, _) = data_location(&imp.load_products().unwrap_err());
        assert_eq!(location, "after the top-level value");

        // An attribute file that is an array.
        let (dir, imp) = with_items("[]");
        std::fs::write(dir.path().join("items_ins_v2_t.json"), "[]").unwrap();
        let (location, message) = data_location(&imp.load_products().unwrap_err());
        assert_eq!(location, "top level");
        assert!(message.contains("mapping ASINs"), "{message}");
    }

    #[test]
    fn bad_entries_of_object_files_name_the_asin() {
        let dir = tiny_copy();
        std::fs::write(
            dir.path().join("items_human_ins.json"),
            r#"{"B09P87V3LZ": [{"instruction": 5, "instruction_attributes": ["x"]}]}"#,
        )
        .unwrap();
        let err = WebShopImport::from_dir(dir.path())
            .unwrap()
            .load()
            .unwrap_err();
        assert_eq!(
            data_location(&err).0,
            "entry \"B09P87V3LZ\" item 0, field instruction"
        );

        std::fs::write(
            dir.path().join("items_ins_v2_tiny.json"),
            r#"{"B0UNKNOWN9": {"attributes": 5}, "B07RVDW2Z2": {"attributes": "oops"}}"#,
        )
        .unwrap();
        let err = WebShopImport::from_dir(dir.path())
            .unwrap()
            .load_products()
            .unwrap_err();
        assert_eq!(
            data_location(&err).0,
            "entry \"B07RVDW2Z2\", field attributes"
        );

        std::fs::write(
            dir.path().join("items_ins_v2_tiny.json"),
            r#"{"B07RVDW2Z2": {"attributes": []}, "B09P87V3LZ": {"attributes": [}"#,
        )
        .unwrap();
        let err = WebShopImport::from_dir(dir.path())
            .unwrap()
            .load_products()
            .unwrap_err();
        assert_eq!(data_location(&err).0, "entry \"B09P87V3LZ\"");
    }

    #[test]
    fn missing_file_names_the_path() {
        let mut imp = tiny();
        imp.items = data_dir().join("no_such_items.json");
        match imp.load().unwrap_err() {
            Error::Io { path, source } => {
                assert!(path.ends_with("no_such_items.json"));
                assert_eq!(source.kind(), std::io::ErrorKind::NotFound);
            }
            other => panic!("expected an I/O error, got {other:?}"),
        }
        let mut imp = tiny();
        imp.title_nouns = Some(data_dir().join("missing_nouns.json"));
        let err = imp.load().unwrap_err();
        assert!(err.to_string().contains("missing_nouns.json"), "{err}");
    }
}
