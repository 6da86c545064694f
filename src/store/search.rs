//! BM25 product search over WebShop's indexed text (placeholder: being written).

use super::catalog::Catalog;

/// One search hit: a product index into [`Catalog::products`] and its BM25 score.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Hit {
    /// Index into `Catalog::products()`.
    pub product: u32,
    /// BM25 score.
    pub score: f32,
}

/// An inverted index over the catalog.
#[derive(Debug, Clone)]
pub struct SearchIndex {}

impl SearchIndex {
    /// Builds the index in memory.
    pub fn build(_catalog: &Catalog) -> Self {
        SearchIndex {}
    }
    /// Top `k` hits for a query, best first.
    pub fn search(&self, _query: &str, _k: usize) -> Vec<Hit> {
        Vec::new()
    }
}
