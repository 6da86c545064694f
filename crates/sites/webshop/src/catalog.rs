//! The catalog model: products, goals and splits, plus the native on-disk format of the
//! committed fixtures (`products.jsonl`, `goals.jsonl`, `manifest.json`).
//!
//! Field meanings follow WebShop's loaded product dict (`Title`, `Description`,
//! `BulletPoints`, `Attributes`, `options`, `pricing`, `Price`) and goal dict
//! (`instruction_text`, `attributes`, `goal_options`, `price_upper`, …); see
//! `../shared/reference/webshop.md` §1 and §3.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::io::{BufRead, BufReader};
use std::path::Path;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::{Error, Result};

/// Number of goals in the test split (goal indices `0..500`), as in WebShop.
pub const TEST_GOALS: usize = 500;
/// End of the dev split (goal indices `500..1500`), as in WebShop.
pub const DEV_END: usize = 1500;

/// One named option group of a product ("color" → ["black", "navy blue"]).
///
/// Names and values are lower-cased and `/` is replaced by ` | `, as WebShop does at load.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OptionGroup {
    /// Lower-cased option name, e.g. `color`.
    pub name: String,
    /// Lower-cased option values in display order.
    pub values: Vec<String>,
}

/// A product as the store shows it and the reward reads it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Product {
    /// Upper-case ASIN (at most 10 characters), the product's id and link text.
    pub asin: String,
    /// Product title (WebShop `name` / `Title`).
    pub title: String,
    /// Coarse scrape category: beauty, grocery, fashion, furniture or electronics.
    pub category: String,
    /// Breadcrumb, parts joined by ` › ` (U+203A).
    pub product_category: String,
    /// The scrape query the product was collected with (lower-cased, trimmed).
    pub query: String,
    /// Long description (WebShop `full_description` / `Description`).
    pub description: String,
    /// Feature bullets (WebShop `small_description` / `BulletPoints`).
    pub bullet_points: Vec<String>,
    /// Mined attribute phrases (WebShop `Attributes`; `["DUMMY_ATTR"]` when unknown).
    pub attributes: Vec<String>,
    /// Option groups in display order.
    pub options: Vec<OptionGroup>,
    /// One price or a `[low, high]` range, as parsed from the pricing string.
    pub pricing: Vec<f64>,
    /// The single price the reward compares with `price_upper` (seeded draw within `pricing`).
    pub price: f64,
    /// Lower-cased nouns of the title, used by the type reward in place of spaCy's tagger.
    pub title_nouns: Vec<String>,
    /// First product image URL, if any (never fetched by agentq).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub main_image: Option<String>,
}

impl Product {
    /// The price tag WebShop displays: `$12.99` or `$12.99 to $15.99` (Python float repr).
    pub fn price_tag(&self) -> String {
        match self.pricing.as_slice() {
            [one] => format!("${}", py_float_repr(*one)),
            [lo, hi, ..] => format!("${} to ${}", py_float_repr(*lo), py_float_repr(*hi)),
            [] => format!("${}", py_float_repr(self.price)),
        }
    }

    /// The text WebShop indexes for search: lower-cased title, description, first bullet
    /// and option text (`name: v1, v2, and name2: …`).
    pub fn search_text(&self) -> String {
        let option_text = self
            .options
            .iter()
            .map(|g| format!("{}: {}", g.name, g.values.join(", ")))
            .collect::<Vec<_>>()
            .join(", and ");
        let first_bullet = self.bullet_points.first().map(String::as_str).unwrap_or("");
        [
            self.title.as_str(),
            self.description.as_str(),
            first_bullet,
            option_text.as_str(),
        ]
        .join(" ")
        .to_lowercase()
    }

    /// Looks up which option group a value belongs to (the last group wins, as WebShop's
    /// clickable dict does when two groups share a value).
    pub fn option_group_of(&self, value: &str) -> Option<&str> {
        self.options
            .iter()
            .rev()
            .find(|g| g.values.iter().any(|v| v == value))
            .map(|g| g.name.as_str())
    }
}

/// The options a goal asks for.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GoalOptions {
    /// Human goals: a list of option value phrases (`instruction_options`).
    Human(Vec<String>),
    /// Synthetic goals: `(option name, value)` pairs; WebShop compares them as Python tuples.
    Synthetic(Vec<(String, String)>),
}

impl GoalOptions {
    /// Number of goal options (the `|opts|` of the reward denominator).
    pub fn len(&self) -> usize {
        match self {
            GoalOptions::Human(v) => v.len(),
            GoalOptions::Synthetic(v) => v.len(),
        }
    }

    /// True when the goal asks for no option.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The option values alone, in order.
    pub fn values(&self) -> Vec<&str> {
        match self {
            GoalOptions::Human(v) => v.iter().map(String::as_str).collect(),
            GoalOptions::Synthetic(v) => v.iter().map(|(_, val)| val.as_str()).collect(),
        }
    }
}

impl Default for GoalOptions {
    fn default() -> Self {
        GoalOptions::Human(Vec::new())
    }
}

/// A shopping task: an instruction and what a correct purchase looks like.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Goal {
    /// ASIN of the product the instruction was written for.
    pub asin: String,
    /// Coarse category of the target product.
    pub category: String,
    /// Scrape query of the target product.
    pub query: String,
    /// Title of the target product (WebShop goal `name`).
    pub name: String,
    /// Breadcrumb of the target product.
    pub product_category: String,
    /// The instruction shown to the agent, including the price clause.
    pub instruction_text: String,
    /// Attribute phrases the purchase must have.
    pub attributes: Vec<String>,
    /// Options the purchase must have.
    pub goal_options: GoalOptions,
    /// Upper price bound (1,000,000 when the instruction states none).
    pub price_upper: f64,
    /// Title nouns of the target product (`name`), for the type reward.
    pub name_nouns: Vec<String>,
    /// Sampling weight (1 for human goals).
    #[serde(default = "one")]
    pub weight: f64,
}

fn one() -> f64 {
    1.0
}

pub use agentq_core::task::Split;

/// WebShop's split layout: the goal index range of `split` for a catalog of `n_goals`
/// goals (test `0..500`, dev `500..1500`, train the rest).
pub fn split_range(split: Split, n_goals: usize) -> std::ops::Range<usize> {
    let clamp = |x: usize| x.min(n_goals);
    match split {
        Split::Test => 0..clamp(TEST_GOALS),
        Split::Dev => clamp(TEST_GOALS)..clamp(DEV_END),
        Split::Train => clamp(DEV_END)..n_goals,
    }
}

/// The split a goal index belongs to in WebShop's layout.
pub fn split_of(index: usize) -> Split {
    if index < TEST_GOALS {
        Split::Test
    } else if index < DEV_END {
        Split::Dev
    } else {
        Split::Train
    }
}

/// Products and goals, indexed by ASIN. Immutable once built.
#[derive(Debug, Clone)]
pub struct Catalog {
    products: Vec<Product>,
    goals: Vec<Goal>,
    by_asin: HashMap<String, usize>,
    hash: String,
}

impl Catalog {
    /// Builds a catalog, checking that ASINs are unique and every goal's target exists.
    pub fn new(products: Vec<Product>, goals: Vec<Goal>) -> Result<Self> {
        let mut by_asin = HashMap::with_capacity(products.len());
        for (i, p) in products.iter().enumerate() {
            if by_asin.insert(p.asin.clone(), i).is_some() {
                return Err(Error::Invalid(format!(
                    "duplicate asin {} (product {i})",
                    p.asin
                )));
            }
        }
        for (i, g) in goals.iter().enumerate() {
            if !by_asin.contains_key(&g.asin) {
                return Err(Error::Invalid(format!(
                    "goal {i} targets asin {} which is not in the catalog",
                    g.asin
                )));
            }
        }
        let hash = content_hash(&products, &goals);
        Ok(Catalog {
            products,
            goals,
            by_asin,
            hash,
        })
    }

    /// All products in catalog order.
    pub fn products(&self) -> &[Product] {
        &self.products
    }

    /// All goals in goal-index order.
    pub fn goals(&self) -> &[Goal] {
        &self.goals
    }

    /// The product with this ASIN (case-insensitive).
    pub fn product(&self, asin: &str) -> Option<&Product> {
        self.by_asin
            .get(asin)
            .or_else(|| self.by_asin.get(&asin.to_uppercase()))
            .map(|&i| &self.products[i])
    }

    /// Goal by index.
    pub fn goal(&self, index: usize) -> Option<&Goal> {
        self.goals.get(index)
    }

    /// Goal indices of a split.
    pub fn split(&self, split: Split) -> std::ops::Range<usize> {
        split_range(split, self.goals.len())
    }

    /// SHA-256 (hex) of the canonical JSON of products and goals; keys caches such as the
    /// search index and is recorded in run headers.
    pub fn data_hash(&self) -> &str {
        &self.hash
    }

    /// Loads a catalog in the native format from a directory holding `products.jsonl` and
    /// `goals.jsonl`.
    pub fn load_dir(dir: &Path) -> Result<Self> {
        let products: Vec<Product> = read_jsonl(&dir.join(PRODUCTS_FILE))?;
        let goals: Vec<Goal> = read_jsonl(&dir.join(GOALS_FILE))?;
        for (i, p) in products.iter().enumerate() {
            validate_product(p).map_err(|msg| Error::Data {
                path: dir.join(PRODUCTS_FILE),
                location: format!("line {}", i + 1),
                message: msg,
            })?;
        }
        Catalog::new(products, goals)
    }

    /// Writes the catalog in the native format (atomically per file). Output is byte-stable:
    /// the same catalog always gives the same bytes.
    pub fn write_dir(&self, dir: &Path) -> Result<()> {
        std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        write_jsonl(&dir.join(PRODUCTS_FILE), &self.products)?;
        write_jsonl(&dir.join(GOALS_FILE), &self.goals)?;
        Ok(())
    }
}

/// File name of the products in the native format.
pub const PRODUCTS_FILE: &str = "products.jsonl";
/// File name of the goals in the native format.
pub const GOALS_FILE: &str = "goals.jsonl";

fn validate_product(p: &Product) -> std::result::Result<(), String> {
    if p.asin.is_empty() || p.asin.len() > 10 {
        return Err(format!(
            "field asin: {:?} must be 1 to 10 characters",
            p.asin
        ));
    }
    if p.pricing.is_empty() || p.pricing.iter().any(|x| !x.is_finite() || *x < 0.0) {
        return Err(format!(
            "field pricing: {:?} must hold one or two non-negative prices",
            p.pricing
        ));
    }
    if !p.price.is_finite() {
        return Err("field price: not a finite number".into());
    }
    Ok(())
}

fn content_hash(products: &[Product], goals: &[Goal]) -> String {
    let mut h = Sha256::new();
    for p in products {
        h.update(serde_json::to_vec(p).expect("invariant: products serialize"));
        h.update(b"\n");
    }
    h.update(b"--goals--\n");
    for g in goals {
        h.update(serde_json::to_vec(g).expect("invariant: goals serialize"));
        h.update(b"\n");
    }
    let digest = h.finalize();
    let mut s = String::with_capacity(64);
    for b in digest {
        let _ = write!(s, "{b:02x}");
    }
    s
}

/// Reads a JSONL file of `T`, naming the file and line of the first bad record.
pub fn read_jsonl<T: serde::de::DeserializeOwned>(path: &Path) -> Result<Vec<T>> {
    let file = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
    let mut out = Vec::new();
    for (i, line) in BufReader::new(file).lines().enumerate() {
        let line = line.map_err(|e| Error::io(path, e))?;
        if line.trim().is_empty() {
            continue;
        }
        let rec = serde_json::from_str(&line).map_err(|e| Error::Data {
            path: path.to_path_buf(),
            location: format!("line {}", i + 1),
            message: e.to_string(),
        })?;
        out.push(rec);
    }
    Ok(out)
}

/// Writes records as JSONL through a temporary file and a rename.
pub fn write_jsonl<T: Serialize>(path: &Path, records: &[T]) -> Result<()> {
    let mut buf = Vec::new();
    for r in records {
        serde_json::to_writer(&mut buf, r).map_err(|e| Error::Invalid(e.to_string()))?;
        buf.push(b'\n');
    }
    write_atomic(path, &buf)
}

/// Writes bytes to `path` atomically (temporary file in the same directory, synced, renamed).
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    agentq_core::fs::write_atomic(path, bytes).map_err(|e| Error::io(&e.path, e.source))
}

/// Formats a float as Python's `repr` does for the values prices take (`100.0`, `32.5`,
/// `12.99`): shortest round-trip digits, with `.0` on whole numbers.
pub fn py_float_repr(x: f64) -> String {
    if x.is_finite() && x.fract() == 0.0 && x.abs() < 1e16 {
        format!("{x:.1}")
    } else {
        format!("{x}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn python_float_repr() {
        assert_eq!(py_float_repr(100.0), "100.0");
        assert_eq!(py_float_repr(32.5), "32.5");
        assert_eq!(py_float_repr(12.99), "12.99");
        assert_eq!(py_float_repr(0.1 + 0.2), "0.30000000000000004");
    }

    #[test]
    fn splits_follow_webshop() {
        assert_eq!(split_range(Split::Test, 12087), 0..500);
        assert_eq!(split_range(Split::Dev, 12087), 500..1500);
        assert_eq!(split_range(Split::Train, 12087), 1500..12087);
        assert_eq!(split_range(Split::Dev, 300), 300..300);
        assert_eq!(split_of(499), Split::Test);
        assert_eq!(split_of(500), Split::Dev);
        assert_eq!(split_of(1500), Split::Train);
    }
}
