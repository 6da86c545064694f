//! BM25 product search, reproducing what WebShop gets from pyserini 0.17 / Anserini 0.14.3
//! (whose fat jar bundles Lucene 8.11.0): `LuceneSearcher(index).search(query, k=50)` over
//! each product's [`Product::search_text`](super::catalog::Product::search_text).
//!
//! * **Analyzer** ([`analyze`]) — Anserini's `DefaultEnglishAnalyzer`: `StandardTokenizer`
//!   (UAX#29 words), `EnglishPossessiveFilter`, `LowerCaseFilter`, `StopFilter` with Lucene's
//!   33 English stop words, `PorterStemFilter` ([`super::porter`]).
//! * **Query** — Anserini's `BagOfWordsQueryGenerator`: each distinct analyzed term is one
//!   `SHOULD` clause boosted by its count in the query; clause scores are summed in `f64`
//!   and rounded to `f32`, as Lucene's disjunction scorers do.
//! * **Scoring** — Lucene 8.11 `BM25Similarity(k1 = 0.9, b = 0.4)`, all in `f32` like
//!   Lucene: `idf = ln(1 + (N − df + 0.5) / (df + 0.5))` (in `f64`, then rounded) with N =
//!   documents holding at least one token, `weight = boost · idf`,
//!   `normInverse = 1 / (k1 · ((1 − b) + b · dl / avgdl))` with `dl` the document length as
//!   its one-byte norm stores it ([`int_to_byte4`] / [`byte4_to_int`]) and `avgdl` the exact
//!   mean length, and `score = weight − weight / (1 + tf · normInverse)` — Lucene ≥ 8.4's
//!   rewrite of `weight · tf / (tf + norm)`, which differs from the textbook form in the
//!   last bits (and so in ties).
//! * **Ranking** — score descending; equal scores ordered by ASIN ascending. Anserini's
//!   `SimpleSearcher` sorts with `BREAK_SCORE_TIES_BY_DOCID` = (score, then the `id` field
//!   as a string), and WebShop's document id is the ASIN, so ties do *not* follow Lucene's
//!   internal doc order. (Its `ScoreTiesAdjusterReranker` then perturbs tied scores by
//!   1e-6 without reordering; we return the unperturbed scores.)
//!
//! Checked against that jar (its `IndexCollection` with WebShop's flags, then
//! `SimpleSearcher.search(q, 50)`): on a generated 20,011-product catalog with 2,138 queries
//! (goal instructions, titles, scrape queries, and odd Unicode / punctuation / long-token
//! texts) every top-50 list and every `f32` score bit was identical;
//! `matches_anserini_golden_scores` pins a small case.
//!
//! Differences from Anserini, all at the tokenizer edge:
//! * Tokens are `unicode-segmentation`'s `unicode_words()` (UAX#29 as of that crate's
//!   Unicode version; Lucene's JFlex grammar is older). Both keep segments holding a letter
//!   or digit, split `x-large` into `x`, `large`, keep `3.5`, `don't`, `u.s.a` whole, and
//!   emit each Han ideograph / Hiragana character alone. Lucene also emits emoji (sequences)
//!   as tokens; `unicode_words()` drops them, so a product whose text holds emoji gets a
//!   shorter length (the one difference the check above found) and emoji queries match
//!   nothing.
//! * Tokens longer than 255 UTF-16 units are cut into 255-unit pieces, as Lucene's
//!   `maxTokenLength` does (checked for one long ASCII run; other cut points may differ).
//! * Lower-casing maps each character to its first simple lower-case form, like Java's
//!   `Character.toLowerCase` (`İ` → `i`, `Σ` → `σ` everywhere).
//! * A token reduced to nothing by the possessive filter is dropped (UAX#29 never yields one).
//!
//! The index is an in-memory inverted index (sorted term dictionary, postings of
//! `(doc, tf)` in doc order, one norm byte per document) and can be cached on disk in a
//! small versioned binary format ([`SearchIndex::load_or_build`]).

use std::cell::RefCell;
use std::cmp::Ordering;
use std::collections::HashMap;
use std::path::{Path, PathBuf};

use unicode_segmentation::UnicodeSegmentation;

use super::catalog::{write_atomic, Catalog};
use super::{porter, Error};

/// Number of hits WebShop asks the search engine for (`search(..., k=50)`).
pub const SEARCH_RETURN_N: usize = 50;

/// BM25 term-frequency saturation (Anserini's default).
pub const K1: f32 = 0.9;

/// BM25 length normalization (Anserini's default).
pub const B: f32 = 0.4;

/// Lucene's `EnglishAnalyzer.ENGLISH_STOP_WORDS_SET`, which Anserini's default analyzer uses.
pub const ENGLISH_STOP_WORDS: [&str; 33] = [
    "a", "an", "and", "are", "as", "at", "be", "but", "by", "for", "if", "in", "into", "is", "it",
    "no", "not", "of", "on", "or", "such", "that", "the", "their", "then", "there", "these",
    "they", "this", "to", "was", "will", "with",
];

/// Lucene `StandardTokenizer`'s default maximum token length (UTF-16 units).
const MAX_TOKEN_LEN: usize = 255;

/// One search hit: a product index into [`Catalog::products`] and its BM25 score.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Hit {
    /// Index into `Catalog::products()`.
    pub product: u32,
    /// BM25 score (Lucene's `f32` value).
    pub score: f32,
}

/// An inverted index over a catalog's [`Product::search_text`](super::Product::search_text).
///
/// Immutable once built; [`SearchIndex::search`] takes `&self` and may run on many threads.
#[derive(Clone, PartialEq)]
pub struct SearchIndex {
    /// Distinct analyzed terms, sorted by byte order; a term's id is its position.
    terms: Vec<String>,
    /// Postings of term `t` are `docs[offsets[t]..offsets[t + 1]]` (ascending doc ids).
    offsets: Vec<usize>,
    /// Doc ids of all postings, term after term.
    docs: Vec<u32>,
    /// Term frequencies, parallel to `docs`.
    tfs: Vec<u32>,
    /// Per document: the Lucene norm byte encoding its token count.
    norms: Vec<u8>,
    /// Per document: rank of its ASIN in byte order (the score tie-break).
    tie_rank: Vec<u32>,
    /// Documents with at least one token (Lucene's `docCount`).
    doc_count: u32,
    /// Tokens over all documents (Lucene's `sumTotalTermFreq`).
    total_tokens: u64,
    /// `1 / (k1 · ((1 − b) + b · dl / avgdl))` for each norm byte.
    norm_cache: Vec<f32>,
}

impl std::fmt::Debug for SearchIndex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SearchIndex")
            .field("docs", &self.norms.len())
            .field("terms", &self.terms.len())
            .field("postings", &self.docs.len())
            .field("doc_count", &self.doc_count)
            .field("total_tokens", &self.total_tokens)
            .finish()
    }
}

/// Analyzes text as Anserini's `DefaultEnglishAnalyzer` does: UAX#29 words, possessive
/// `'s` removed, lower-cased, English stop words dropped, Porter-stemmed.
///
/// ```
/// use agentq_webshop::search::analyze;
/// assert_eq!(analyze("Men's Running Shoes, x-large"), ["men", "run", "shoe", "x", "larg"]);
/// ```
pub fn analyze(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut buf = String::new();
    for_each_token(text, &mut buf, |tok| {
        if !is_stop_word(tok) {
            out.push(porter::stem(tok).into_owned());
        }
    });
    out
}

/// Runs `f` on each token after tokenizing, possessive removal and lower-casing (before the
/// stop filter and stemming). `buf` is scratch space.
fn for_each_token(text: &str, buf: &mut String, mut f: impl FnMut(&str)) {
    for word in text.unicode_words() {
        // UTF-8 length ≥ UTF-16 length, so short words need no counting.
        if word.len() <= MAX_TOKEN_LEN {
            normalize_into(word, buf);
            if !buf.is_empty() {
                f(buf);
            }
        } else {
            let mut start = 0;
            let mut units = 0;
            for (i, c) in word.char_indices() {
                if units + c.len_utf16() > MAX_TOKEN_LEN {
                    normalize_into(&word[start..i], buf);
                    if !buf.is_empty() {
                        f(buf);
                    }
                    start = i;
                    units = 0;
                }
                units += c.len_utf16();
            }
            normalize_into(&word[start..], buf);
            if !buf.is_empty() {
                f(buf);
            }
        }
    }
}

/// Lower-cases `word` into `buf` and strips a trailing possessive `'s` / `’s` / `＇s`.
fn normalize_into(word: &str, buf: &mut String) {
    buf.clear();
    for c in word.chars() {
        buf.push(lower_char(c));
    }
    for apostrophe in ["'s", "\u{2019}s", "\u{FF07}s"] {
        if let Some(stripped_len) = buf.strip_suffix(apostrophe).map(str::len) {
            buf.truncate(stripped_len);
            break;
        }
    }
}

/// Java's `Character.toLowerCase(int)`: the simple (one-character) lower-case mapping.
fn lower_char(c: char) -> char {
    if c.is_ascii() {
        c.to_ascii_lowercase()
    } else {
        // Only U+0130 has a multi-character full mapping (`i` + U+0307); its simple
        // mapping is the first character.
        c.to_lowercase().next().unwrap_or(c)
    }
}

/// Membership in [`ENGLISH_STOP_WORDS`].
fn is_stop_word(t: &str) -> bool {
    matches!(
        t,
        "a" | "an"
            | "and"
            | "are"
            | "as"
            | "at"
            | "be"
            | "but"
            | "by"
            | "for"
            | "if"
            | "in"
            | "into"
            | "is"
            | "it"
            | "no"
            | "not"
            | "of"
            | "on"
            | "or"
            | "such"
            | "that"
            | "the"
            | "their"
            | "then"
            | "there"
            | "these"
            | "they"
            | "this"
            | "to"
            | "was"
            | "will"
            | "with"
    )
}

/// Lucene's `SmallFloat.intToByte4`: encodes a non-negative length in one byte, exactly up
/// to 40 and with 4 significant bits above (used for document-length norms).
pub fn int_to_byte4(i: u32) -> u8 {
    let i = i.min(i32::MAX as u32);
    if i < NUM_FREE_VALUES {
        i as u8
    } else {
        (NUM_FREE_VALUES + long_to_int4(i - NUM_FREE_VALUES)) as u8
    }
}

/// Lucene's `SmallFloat.byte4ToInt`: decodes [`int_to_byte4`] (to the smallest length that
/// encodes to `b`).
pub fn byte4_to_int(b: u8) -> u32 {
    let i = u32::from(b);
    if i < NUM_FREE_VALUES {
        i
    } else {
        NUM_FREE_VALUES + int4_to_long(i - NUM_FREE_VALUES)
    }
}

/// `255 − longToInt4(Integer.MAX_VALUE)`: byte values spent on exact small lengths.
const NUM_FREE_VALUES: u32 = 24;

/// `SmallFloat.longToInt4`: float-like encoding with 3 explicit mantissa bits.
fn long_to_int4(i: u32) -> u32 {
    let num_bits = 32 - i.leading_zeros();
    if num_bits < 4 {
        i
    } else {
        let shift = num_bits - 4;
        ((i >> shift) & 0x07) | ((shift + 1) << 3)
    }
}

/// `SmallFloat.int4ToLong`.
fn int4_to_long(i: u32) -> u32 {
    let bits = i & 0x07;
    let shift = i >> 3;
    if shift == 0 {
        bits
    } else {
        (bits | 0x08) << (shift - 1)
    }
}

/// Lucene 8's BM25 `idf`, computed in `f64` and rounded to `f32`.
fn idf(doc_freq: u64, doc_count: u64) -> f32 {
    let (df, n) = (doc_freq as f64, doc_count as f64);
    (1.0 + (n - df + 0.5) / (df + 0.5)).ln() as f32
}

/// The per-norm-byte table `1 / (k1 · ((1 − b) + b · dl / avgdl))` (Lucene 8.11's
/// `BM25Scorer.cache`).
fn norm_cache(doc_count: u32, total_tokens: u64) -> Vec<f32> {
    let avgdl = if doc_count == 0 {
        1.0
    } else {
        (total_tokens as f64 / f64::from(doc_count)) as f32
    };
    (0..=255u8)
        .map(|i| 1.0 / (K1 * ((1.0 - B) + B * byte4_to_int(i) as f32 / avgdl)))
        .collect()
}

/// Reusable per-thread score accumulator.
#[derive(Default)]
struct Scratch {
    /// Summed clause scores per document; zero everywhere outside `touched`.
    acc: Vec<f64>,
    /// Documents with a non-zero entry in `acc`.
    touched: Vec<u32>,
}

thread_local! {
    static SCRATCH: RefCell<Scratch> = RefCell::new(Scratch::default());
}

/// Per-chunk result of the parallel tokenization phase of [`SearchIndex::build`].
#[derive(Default)]
struct Part {
    /// Local term id → term.
    terms: Vec<String>,
    /// `(local term id, tf)` of each document, document after document.
    postings: Vec<(u32, u32)>,
    /// End of each document's run in `postings`.
    doc_ends: Vec<usize>,
    /// Token count of each document.
    doc_lens: Vec<u32>,
}

/// Marks a normalized token that is a stop word in the per-part token cache.
const STOP: u32 = u32::MAX;

fn analyze_part(products: &[super::Product]) -> Part {
    let mut part = Part::default();
    // Normalized token → local term id (or STOP); stems each distinct token once.
    let mut token_cache: HashMap<String, u32> = HashMap::new();
    let mut term_ids: HashMap<String, u32> = HashMap::new();
    let mut buf = String::new();
    let mut ids: Vec<u32> = Vec::new();
    for p in products {
        ids.clear();
        let text = p.search_text();
        for_each_token(&text, &mut buf, |tok| {
            let id = match token_cache.get(tok) {
                Some(&id) => id,
                None => {
                    let id = if is_stop_word(tok) {
                        STOP
                    } else {
                        let stemmed = porter::stem(tok);
                        match term_ids.get(stemmed.as_ref()) {
                            Some(&id) => id,
                            None => {
                                let id = part.terms.len() as u32;
                                part.terms.push(stemmed.clone().into_owned());
                                term_ids.insert(stemmed.into_owned(), id);
                                id
                            }
                        }
                    };
                    token_cache.insert(tok.to_owned(), id);
                    id
                }
            };
            if id != STOP {
                ids.push(id);
            }
        });
        part.doc_lens
            .push(u32::try_from(ids.len()).unwrap_or(u32::MAX));
        ids.sort_unstable();
        for run in ids.chunk_by(|a, b| a == b) {
            part.postings.push((run[0], run.len() as u32));
        }
        part.doc_ends.push(part.postings.len());
    }
    part
}

impl SearchIndex {
    /// Builds the index in memory from `catalog.products()` (document id = product index),
    /// tokenizing on up to 8 threads. The result does not depend on the thread count.
    pub fn build(catalog: &Catalog) -> Self {
        let products = catalog.products();
        let threads = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
            .min(8)
            .min(products.len().div_ceil(2_000))
            .max(1);
        let parts: Vec<Part> = if threads == 1 {
            vec![analyze_part(products)]
        } else {
            let chunk = products.len().div_ceil(threads);
            std::thread::scope(|s| {
                let handles: Vec<_> = products
                    .chunks(chunk)
                    .map(|c| s.spawn(move || analyze_part(c)))
                    .collect();
                handles
                    .into_iter()
                    .map(|h| h.join().expect("invariant: tokenizer threads do not panic"))
                    .collect()
            })
        };

        // Global dictionary: all distinct terms in byte order.
        let mut terms: Vec<String> = parts.iter().flat_map(|p| p.terms.iter().cloned()).collect();
        terms.sort_unstable();
        terms.dedup();
        let remaps: Vec<Vec<u32>> = parts
            .iter()
            .map(|p| {
                p.terms
                    .iter()
                    .map(|t| {
                        terms
                            .binary_search(t)
                            .expect("invariant: every local term is in the dictionary")
                            as u32
                    })
                    .collect()
            })
            .collect();

        // Postings in CSR layout, filled in document order.
        let mut offsets = vec![0usize; terms.len() + 1];
        for (part, remap) in parts.iter().zip(&remaps) {
            for &(local, _) in &part.postings {
                offsets[remap[local as usize] as usize + 1] += 1;
            }
        }
        for t in 0..terms.len() {
            offsets[t + 1] += offsets[t];
        }
        let n_postings = offsets[terms.len()];
        let mut docs = vec![0u32; n_postings];
        let mut tfs = vec![0u32; n_postings];
        let mut next = offsets[..terms.len()].to_vec();
        let mut norms = Vec::with_capacity(products.len());
        let mut doc: u32 = 0;
        for (part, remap) in parts.iter().zip(&remaps) {
            let mut start = 0;
            for (&end, &len) in part.doc_ends.iter().zip(&part.doc_lens) {
                for &(local, tf) in &part.postings[start..end] {
                    let t = remap[local as usize] as usize;
                    docs[next[t]] = doc;
                    tfs[next[t]] = tf;
                    next[t] += 1;
                }
                norms.push(int_to_byte4(len));
                start = end;
                doc += 1;
            }
        }

        let mut by_asin: Vec<u32> = (0..products.len() as u32).collect();
        by_asin.sort_by(|&a, &b| {
            products[a as usize]
                .asin
                .as_bytes()
                .cmp(products[b as usize].asin.as_bytes())
                .then(a.cmp(&b))
        });
        let mut tie_rank = vec![0u32; products.len()];
        for (rank, &d) in by_asin.iter().enumerate() {
            tie_rank[d as usize] = rank as u32;
        }

        Self::assemble(terms, offsets, docs, tfs, norms, tie_rank)
    }

    /// Finishes an index from its stored arrays, deriving the collection statistics.
    fn assemble(
        terms: Vec<String>,
        offsets: Vec<usize>,
        docs: Vec<u32>,
        tfs: Vec<u32>,
        norms: Vec<u8>,
        tie_rank: Vec<u32>,
    ) -> Self {
        let total_tokens: u64 = tfs.iter().map(|&tf| u64::from(tf)).sum();
        let mut has_tokens = vec![false; norms.len()];
        for &d in &docs {
            has_tokens[d as usize] = true;
        }
        let doc_count = has_tokens.iter().filter(|&&x| x).count() as u32;
        let norm_cache = norm_cache(doc_count, total_tokens);
        SearchIndex {
            terms,
            offsets,
            docs,
            tfs,
            norms,
            tie_rank,
            doc_count,
            total_tokens,
            norm_cache,
        }
    }

    /// Number of indexed documents (the catalog's products).
    pub fn len(&self) -> usize {
        self.norms.len()
    }

    /// True when the index holds no document.
    pub fn is_empty(&self) -> bool {
        self.norms.is_empty()
    }

    /// Number of distinct analyzed terms.
    pub fn num_terms(&self) -> usize {
        self.terms.len()
    }

    fn term_id(&self, term: &str) -> Option<usize> {
        self.terms.binary_search_by(|t| t.as_str().cmp(term)).ok()
    }

    /// Top `k` hits for a query, best first: BM25 score descending, ties by ASIN ascending.
    ///
    /// The query is analyzed like the documents; each distinct term is a clause boosted by
    /// its number of occurrences. A query with no indexed term (empty, blank, all stop
    /// words, unknown words) returns no hit; so does `k == 0`.
    pub fn search(&self, query: &str, k: usize) -> Vec<Hit> {
        if k == 0 || self.doc_count == 0 {
            return Vec::new();
        }
        let mut tokens = analyze(query);
        tokens.sort_unstable();
        let clauses: Vec<(usize, f32)> = tokens
            .chunk_by(|a, b| a == b)
            .filter_map(|run| Some((self.term_id(&run[0])?, run.len() as f32)))
            .collect();
        if clauses.is_empty() {
            return Vec::new();
        }
        SCRATCH.with(|cell| {
            let mut scratch = cell.borrow_mut();
            let Scratch { acc, touched } = &mut *scratch;
            // Leftovers only exist if an earlier search on this thread unwound.
            for &d in touched.iter() {
                acc[d as usize] = 0.0;
            }
            touched.clear();
            if acc.len() < self.len() {
                acc.resize(self.len(), 0.0);
            }
            for &(t, boost) in &clauses {
                self.score_term(t, boost, acc, touched);
            }
            let mut cands: Vec<(f32, u32, u32)> = Vec::with_capacity(touched.len());
            for &d in touched.iter() {
                let slot = &mut acc[d as usize];
                cands.push((*slot as f32, self.tie_rank[d as usize], d));
                *slot = 0.0;
            }
            touched.clear();
            top_k(cands, k)
        })
    }

    /// Adds one clause's BM25 contribution to the accumulator.
    fn score_term(&self, t: usize, boost: f32, acc: &mut [f64], touched: &mut Vec<u32>) {
        let range = self.offsets[t]..self.offsets[t + 1];
        let weight = boost * idf(range.len() as u64, u64::from(self.doc_count));
        let cache = &self.norm_cache;
        // Documents of the common tf = 1 case share one score per norm byte.
        let mut tf1 = [f32::NAN; 256];
        if range.len() > 1024 {
            for (slot, &norm) in tf1.iter_mut().zip(cache) {
                *slot = term_score(weight, 1.0, norm);
            }
        }
        for (&d, &tf) in self.docs[range.clone()].iter().zip(&self.tfs[range]) {
            let norm_byte = self.norms[d as usize] as usize;
            let s = if tf == 1 && !tf1[norm_byte].is_nan() {
                tf1[norm_byte]
            } else {
                term_score(weight, tf as f32, cache[norm_byte])
            };
            let slot = &mut acc[d as usize];
            if *slot == 0.0 {
                touched.push(d);
            }
            *slot += f64::from(s);
        }
    }

    /// Path of the cache file for `catalog` in `cache_dir`:
    /// `search-<first 16 hex digits of the data hash>.idx`.
    pub fn cache_path(cache_dir: &Path, catalog: &Catalog) -> PathBuf {
        let hash = catalog.data_hash();
        let short: String = hash.chars().take(16).collect();
        cache_dir.join(format!("search-{short}.idx"))
    }

    /// Loads the index of `catalog` from `cache_dir`, or builds it and writes the cache.
    ///
    /// The cache file ([`SearchIndex::cache_path`]) is rebuilt when it is missing,
    /// unreadable, truncated, corrupt, of another format version, or made for different
    /// data (its embedded data hash or document count differs); such problems are logged
    /// with `tracing::warn!` and never panic. The file is written atomically. Returns the
    /// index and whether it was built. Errors only when the cache directory or file cannot
    /// be written.
    pub fn load_or_build(
        catalog: &Catalog,
        cache_dir: &Path,
    ) -> Result<(SearchIndex, bool), Error> {
        let path = Self::cache_path(cache_dir, catalog);
        match std::fs::read(&path) {
            Ok(bytes) => match Self::decode(&bytes, catalog) {
                Ok(index) => return Ok((index, false)),
                Err(why) => tracing::warn!(
                    path = %path.display(),
                    "search index cache unusable ({why}); rebuilding"
                ),
            },
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => tracing::warn!(
                path = %path.display(),
                "cannot read search index cache ({e}); rebuilding"
            ),
        }
        let index = Self::build(catalog);
        std::fs::create_dir_all(cache_dir).map_err(|e| Error::io(cache_dir, e))?;
        write_atomic(&path, &index.encode(catalog.data_hash()))?;
        Ok((index, true))
    }

    /// Serializes the index (format [`FORMAT_VERSION`], little-endian).
    fn encode(&self, data_hash: &str) -> Vec<u8> {
        let term_bytes: usize = self.terms.iter().map(String::len).sum();
        let mut out = Vec::with_capacity(
            64 + data_hash.len()
                + term_bytes
                + 8 * (2 * self.terms.len() + 1)
                + 8 * self.docs.len()
                + 5 * self.norms.len(),
        );
        out.extend_from_slice(MAGIC);
        put_u32(&mut out, FORMAT_VERSION);
        put_u64(&mut out, data_hash.len() as u64);
        out.extend_from_slice(data_hash.as_bytes());
        put_u64(&mut out, self.norms.len() as u64);
        put_u64(&mut out, self.terms.len() as u64);
        put_u64(&mut out, self.docs.len() as u64);
        for t in &self.terms {
            put_u64(&mut out, t.len() as u64);
        }
        for t in &self.terms {
            out.extend_from_slice(t.as_bytes());
        }
        for &o in &self.offsets {
            put_u64(&mut out, o as u64);
        }
        for &d in &self.docs {
            put_u32(&mut out, d);
        }
        for &tf in &self.tfs {
            put_u32(&mut out, tf);
        }
        out.extend_from_slice(&self.norms);
        for &r in &self.tie_rank {
            put_u32(&mut out, r);
        }
        let sum = checksum(&out);
        put_u64(&mut out, sum);
        out
    }

    /// Parses and validates a cache file written by [`SearchIndex::encode`] for `catalog`.
    fn decode(bytes: &[u8], catalog: &Catalog) -> Result<SearchIndex, String> {
        if bytes.len() < MAGIC.len() + 4 + 8 {
            return Err(format!("file too short ({} bytes)", bytes.len()));
        }
        let (body, tail) = bytes.split_at(bytes.len() - 8);
        let mut r = Reader { buf: body, pos: 0 };
        if r.bytes(MAGIC.len())? != MAGIC {
            return Err("not a search index file (bad magic)".into());
        }
        let version = r.u32()?;
        if version != FORMAT_VERSION {
            return Err(format!(
                "format version {version}, expected {FORMAT_VERSION}"
            ));
        }
        let stored = u64::from_le_bytes(tail.try_into().expect("invariant: 8-byte tail"));
        if checksum(body) != stored {
            return Err("checksum mismatch (truncated or corrupt)".into());
        }
        let hash_len = r.len(1)?;
        let hash = r.bytes(hash_len)?;
        if hash != catalog.data_hash().as_bytes() {
            return Err("built for different catalog data (data hash differs)".into());
        }
        let n_docs = r.len(5)?;
        if n_docs != catalog.products().len() {
            return Err(format!(
                "holds {n_docs} documents, catalog has {}",
                catalog.products().len()
            ));
        }
        let n_terms = r.len(24)?;
        let n_postings = r.len(8)?;

        let mut term_lens = Vec::with_capacity(n_terms);
        for _ in 0..n_terms {
            term_lens.push(r.len(1)?);
        }
        let mut terms: Vec<String> = Vec::with_capacity(n_terms);
        for len in term_lens {
            let s =
                std::str::from_utf8(r.bytes(len)?).map_err(|_| "term is not UTF-8".to_string())?;
            if let Some(prev) = terms.last() {
                if prev.as_str() >= s {
                    return Err("term dictionary not strictly sorted".into());
                }
            }
            terms.push(s.to_owned());
        }
        let mut offsets = Vec::with_capacity(n_terms + 1);
        for _ in 0..=n_terms {
            let o = usize::try_from(r.u64()?).map_err(|_| "offset overflows".to_string())?;
            if o > n_postings || offsets.last().is_some_and(|&prev| o < prev) {
                return Err("postings offsets out of order".into());
            }
            offsets.push(o);
        }
        if offsets.first() != Some(&0) || offsets.last() != Some(&n_postings) {
            return Err("postings offsets do not span the postings".into());
        }
        let docs = r.u32s(n_postings)?;
        let tfs = r.u32s(n_postings)?;
        for t in 0..n_terms {
            let run = &docs[offsets[t]..offsets[t + 1]];
            if run.iter().any(|&d| d as usize >= n_docs) || run.windows(2).any(|w| w[0] >= w[1]) {
                return Err(format!("postings of term {t} invalid"));
            }
        }
        if tfs.contains(&0) {
            return Err("zero term frequency".into());
        }
        let norms = r.bytes(n_docs)?.to_vec();
        let tie_rank = r.u32s(n_docs)?;
        let mut seen = vec![false; n_docs];
        for &rank in &tie_rank {
            let slot = seen
                .get_mut(rank as usize)
                .ok_or_else(|| "tie rank out of range".to_string())?;
            if std::mem::replace(slot, true) {
                return Err("tie ranks are not a permutation".into());
            }
        }
        if r.pos != body.len() {
            return Err(format!("{} trailing bytes", body.len() - r.pos));
        }
        Ok(Self::assemble(terms, offsets, docs, tfs, norms, tie_rank))
    }
}

/// One clause's score for one document: Lucene 8.11 `BM25Scorer.score`.
#[inline]
fn term_score(weight: f32, freq: f32, norm_inverse: f32) -> f32 {
    weight - weight / (1.0 + freq * norm_inverse)
}

/// Best `k` candidates `(score, tie rank, doc)`: score descending, then tie rank ascending.
fn top_k(mut cands: Vec<(f32, u32, u32)>, k: usize) -> Vec<Hit> {
    let order = |a: &(f32, u32, u32), b: &(f32, u32, u32)| -> Ordering {
        b.0.total_cmp(&a.0).then(a.1.cmp(&b.1))
    };
    if cands.len() > k {
        cands.select_nth_unstable_by(k - 1, order);
        cands.truncate(k);
    }
    cands.sort_unstable_by(order);
    cands
        .into_iter()
        .map(|(score, _, product)| Hit { product, score })
        .collect()
}

/// File magic of the search index cache.
const MAGIC: &[u8; 8] = b"AGQ-BM25";

/// Version of the cache layout; bump on any change of layout or of analysis/scoring.
///
/// Layout (little-endian): magic, `u32` version, `u64` hash length + data-hash bytes,
/// `u64` documents, `u64` terms, `u64` postings, `u64` byte length of each term, the term
/// bytes, `u64` postings offsets (terms + 1), `u32` doc ids, `u32` term frequencies, `u8`
/// norms, `u32` ASIN tie ranks, then a `u64` checksum of everything before it.
pub const FORMAT_VERSION: u32 = 1;

fn put_u32(out: &mut Vec<u8>, x: u32) {
    out.extend_from_slice(&x.to_le_bytes());
}

fn put_u64(out: &mut Vec<u8>, x: u64) {
    out.extend_from_slice(&x.to_le_bytes());
}

/// A 64-bit word-at-a-time hash (FxHash mixing plus a final avalanche) used to detect
/// corruption; not cryptographic.
fn checksum(bytes: &[u8]) -> u64 {
    const K: u64 = 0x517c_c1b7_2722_0a95;
    let mut h: u64 = bytes.len() as u64;
    let mut words = bytes.chunks_exact(8);
    for w in &mut words {
        let w = u64::from_le_bytes(w.try_into().expect("invariant: 8-byte chunk"));
        h = (h.rotate_left(5) ^ w).wrapping_mul(K);
    }
    for &b in words.remainder() {
        h = (h.rotate_left(5) ^ u64::from(b)).wrapping_mul(K);
    }
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^= h >> 33;
    h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    h ^ (h >> 33)
}

/// Bounds-checked little-endian reader over a cache file.
struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn bytes(&mut self, n: usize) -> Result<&'a [u8], String> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|&end| end <= self.buf.len())
            .ok_or_else(|| format!("truncated at byte {}", self.pos))?;
        let s = &self.buf[self.pos..end];
        self.pos = end;
        Ok(s)
    }

    fn u32(&mut self) -> Result<u32, String> {
        let b = self.bytes(4)?;
        Ok(u32::from_le_bytes(
            b.try_into().expect("invariant: 4 bytes"),
        ))
    }

    fn u64(&mut self) -> Result<u64, String> {
        let b = self.bytes(8)?;
        Ok(u64::from_le_bytes(
            b.try_into().expect("invariant: 8 bytes"),
        ))
    }

    /// A `u64` count whose items take at least `min_bytes_each` further bytes; rejects
    /// counts the rest of the file cannot hold (so corrupt counts never allocate).
    fn len(&mut self, min_bytes_each: usize) -> Result<usize, String> {
        let n = self.u64()?;
        let left = (self.buf.len() - self.pos) as u64;
        if n.saturating_mul(min_bytes_each as u64) > left {
            return Err(format!("count {n} exceeds the file size"));
        }
        Ok(n as usize)
    }

    fn u32s(&mut self, n: usize) -> Result<Vec<u32>, String> {
        let b = self.bytes(n.checked_mul(4).ok_or("count overflows")?)?;
        Ok(b.chunks_exact(4)
            .map(|c| u32::from_le_bytes(c.try_into().expect("invariant: 4 bytes")))
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{OptionGroup, Product};

    fn product(asin: &str, title: &str, description: &str) -> Product {
        Product {
            asin: asin.to_string(),
            title: title.to_string(),
            category: "fashion".to_string(),
            product_category: String::new(),
            query: String::new(),
            description: description.to_string(),
            bullet_points: Vec::new(),
            attributes: Vec::new(),
            options: Vec::new(),
            pricing: vec![10.0],
            price: 10.0,
            title_nouns: Vec::new(),
            main_image: None,
        }
    }

    fn catalog(products: Vec<Product>) -> Catalog {
        Catalog::new(products, Vec::new()).expect("valid test catalog")
    }

    fn ids(hits: &[Hit]) -> Vec<u32> {
        hits.iter().map(|h| h.product).collect()
    }

    #[test]
    fn analyzer_possessives_and_case() {
        assert_eq!(analyze("Men's SHOES"), ["men", "shoe"]);
        assert_eq!(analyze("women\u{2019}s boots"), ["women", "boot"]);
        assert_eq!(analyze("KID\u{FF07}S toy"), ["kid", "toi"]);
        // `it's` → `it`, a stop word.
        assert_eq!(analyze("it's great"), ["great"]);
        // Only a trailing `'s` is possessive.
        assert_eq!(analyze("don't"), ["don't"]);
        assert_eq!(analyze("İstanbul"), ["istanbul"]);
    }

    #[test]
    fn analyzer_stop_words_and_stemming() {
        assert_eq!(analyze("the best of the best"), ["best", "best"]);
        assert_eq!(
            analyze("a an and are as at be but by for if in into is it"),
            Vec::<String>::new()
        );
        assert_eq!(
            analyze(
                "no not of on or such that the their then there these they this to was will with"
            ),
            Vec::<String>::new()
        );
        // Stop words are matched after lower-casing, before stemming.
        assert_eq!(analyze("THE Things"), ["thing"]);
        assert_eq!(analyze("running shoes for women"), ["run", "shoe", "women"]);
        assert_eq!(
            analyze("Organic chocolate bars"),
            ["organ", "chocol", "bar"]
        );
        for w in ENGLISH_STOP_WORDS {
            assert!(is_stop_word(w), "{w}");
        }
        assert!(!is_stop_word("other"));
    }

    #[test]
    fn analyzer_punctuation() {
        assert_eq!(analyze("x-large"), ["x", "larg"]);
        assert_eq!(analyze("3.5 oz"), ["3.5", "oz"]);
        assert_eq!(analyze("size: 8, 9, 10"), ["size", "8", "9", "10"]);
        assert_eq!(analyze("color: black | red"), ["color", "black", "red"]);
        assert_eq!(analyze("U.S.A. made"), ["u.s.a", "made"]);
        assert_eq!(
            analyze("$12.99 - 100% cotton!!"),
            ["12.99", "100", "cotton"]
        );
        assert_eq!(analyze("  \t\n"), Vec::<String>::new());
        assert_eq!(analyze("--- & ***"), Vec::<String>::new());
        assert_eq!(
            analyze("2-pack (16.9 fl oz)"),
            ["2", "pack", "16.9", "fl", "oz"]
        );
    }

    #[test]
    fn analyzer_splits_very_long_tokens() {
        let long = "a".repeat(600);
        let toks = analyze(&long);
        assert_eq!(toks.len(), 3);
        assert_eq!(toks[0].len(), 255);
        assert_eq!(toks[2].len(), 90);
    }

    #[test]
    fn small_float_matches_lucene() {
        for i in 0..=40 {
            assert_eq!(int_to_byte4(i), i as u8);
            assert_eq!(byte4_to_int(i as u8), i);
        }
        // Above 40 the length keeps 4 significant bits.
        assert_eq!(int_to_byte4(41), 40);
        assert_eq!(int_to_byte4(42), 41);
        assert_eq!(byte4_to_int(41), 42);
        assert_eq!(int_to_byte4(100), 57);
        assert_eq!(byte4_to_int(57), 96);
        assert_eq!(int_to_byte4(i32::MAX as u32), 255);
        assert_eq!(byte4_to_int(255), 2_013_265_944);
        // Every byte round-trips, decoding is increasing, and encoding never rounds up.
        for b in 0..=255u8 {
            assert_eq!(int_to_byte4(byte4_to_int(b)), b);
            if b > 0 {
                assert!(byte4_to_int(b) > byte4_to_int(b - 1));
            }
        }
        for i in 0..5_000u32 {
            assert!(byte4_to_int(int_to_byte4(i)) <= i);
            assert!(int_to_byte4(i + 1) >= int_to_byte4(i));
        }
    }

    #[test]
    fn scores_follow_lucene_bm25() {
        let cat = catalog(vec![
            product("A1", "red shoes", "red red"),
            product("A2", "blue shoes", ""),
            product("A3", "green hat", "the of and"),
        ]);
        let index = SearchIndex::build(&cat);
        // Doc lengths 4, 2, 2 (stop words do not count); avgdl = 8 / 3.
        assert_eq!(index.doc_count, 3);
        assert_eq!(index.total_tokens, 8);
        let hits = index.search("red", 10);
        assert_eq!(ids(&hits), [0]);
        let avgdl = 8.0f64 / 3.0;
        let idf = (1.0 + (3.0 - 1.0 + 0.5) / (1.0 + 0.5f64)).ln();
        let norm = 0.9 * (0.6 + 0.4 * 4.0 / avgdl);
        let want = idf * 3.0 / (3.0 + norm);
        assert!(
            (f64::from(hits[0].score) - want).abs() < 1e-5,
            "{} vs {want}",
            hits[0].score
        );
        // Two clauses add up.
        let hits = index.search("blue shoes", 10);
        assert_eq!(ids(&hits), [1, 0]);
        let shoes_a1 = index.search("shoes", 10)[1].score;
        let blue = index.search("blue", 10)[0].score;
        let shoes_a2 = index.search("shoes", 10)[0].score;
        assert_eq!(
            hits[0].score,
            (f64::from(blue) + f64::from(shoes_a2)) as f32
        );
        assert_eq!(hits[1].score, shoes_a1);
    }

    /// Exact `f32` scores and order from Anserini 0.14.3's fat jar (Lucene 8.11.0: the
    /// `DefaultEnglishAnalyzer`, `BagOfWordsQueryGenerator`, `BM25Similarity(0.9, 0.4)` and
    /// `SimpleSearcher`'s score-then-id sort) over these products' `search_text()`.
    #[test]
    fn matches_anserini_golden_scores() {
        let cat = catalog(vec![
            product("B1", "Running Shorts for Men", "lightweight running shorts"),
            product("B2", "Red Apple", "fresh fruit"),
            product("B3", "Men's Red Running Shoes", "comfortable shoes"),
            product("B4", "Red Dress", "red party dress"),
            product("B5", "Shoe Rack", "holds shoes"),
            product("B6", "Red Shoes", "red"),
            product("B0", "Red Shoes", "red"),
        ]);
        let index = SearchIndex::build(&cat);
        let golden: [(&str, &[(u32, u32)]); 5] = [
            (
                "men's red running shoes",
                &[
                    (2, 0x3fdb2586),
                    (0, 0x3fabc4f0),
                    (6, 0x3f177b56),
                    (5, 0x3f177b56),
                    (4, 0x3ecda228),
                    (3, 0x3e82383f),
                    (1, 0x3e4db646),
                ],
            ),
            (
                "red",
                &[
                    (6, 0x3e89d31e),
                    (5, 0x3e89d31e),
                    (3, 0x3e82383f),
                    (1, 0x3e4db646),
                    (2, 0x3e3d37e9),
                ],
            ),
            (
                "shoes shoes red",
                &[
                    (2, 0x3f71e568),
                    (6, 0x3f6a0d1d),
                    (5, 0x3f6a0d1d),
                    (4, 0x3f4da228),
                    (3, 0x3e82383f),
                    (1, 0x3e4db646),
                ],
            ),
            ("running shorts", &[(0, 0x3fefe21c), (2, 0x3f12d8ad)]),
            (
                "red shoes",
                &[
                    (6, 0x3f177b56),
                    (5, 0x3f177b56),
                    (2, 0x3f1099b1),
                    (4, 0x3ecda228),
                    (3, 0x3e82383f),
                    (1, 0x3e4db646),
                ],
            ),
        ];
        for (query, want) in golden {
            let got: Vec<(u32, u32)> = index
                .search(query, SEARCH_RETURN_N)
                .iter()
                .map(|h| (h.product, h.score.to_bits()))
                .collect();
            assert_eq!(got, want, "{query}");
        }
    }

    #[test]
    fn exact_title_ranks_first() {
        let cat = catalog(vec![
            product("B1", "Running Shorts for Men", "lightweight running shorts"),
            product("B2", "Red Apple", "fresh fruit"),
            product("B3", "Men's Red Running Shoes", "comfortable shoes"),
            product("B4", "Red Dress", "red party dress"),
            product("B5", "Shoe Rack", "holds shoes"),
        ]);
        let index = SearchIndex::build(&cat);
        let hits = index.search("men's red running shoes", SEARCH_RETURN_N);
        assert_eq!(hits[0].product, 2);
        assert_eq!(hits.len(), 5);
        assert!(hits.windows(2).all(|w| w[0].score >= w[1].score));
        assert!(hits.iter().all(|h| h.score > 0.0));
        // `k` caps the hits.
        assert_eq!(
            ids(&index.search("men's red running shoes", 2)),
            ids(&hits[..2])
        );
        assert!(index.search("red", 0).is_empty());
    }

    #[test]
    fn rarer_terms_weigh_more() {
        let cat = catalog(vec![
            product("C1", "common alpha", ""),
            product("C2", "common beta", ""),
            product("C3", "common gamma", ""),
            product("C4", "rare delta", ""),
        ]);
        let index = SearchIndex::build(&cat);
        // Same lengths and tf: only idf separates them.
        let hits = index.search("common rare", 10);
        assert_eq!(hits[0].product, 3);
        assert!(hits[0].score > hits[1].score);
        assert_eq!(ids(&hits[1..]), [0, 1, 2]);
    }

    #[test]
    fn ties_break_by_asin() {
        // Identical texts: equal scores, ordered by ASIN (Anserini's id-field tie-break),
        // not by catalog position.
        let cat = catalog(vec![
            product("Z9", "blue widget", ""),
            product("A1", "blue widget", ""),
            product("M5", "blue widget", ""),
            product("B2", "blue widget", ""),
        ]);
        let index = SearchIndex::build(&cat);
        let hits = index.search("widget", 10);
        assert!(hits.iter().all(|h| h.score == hits[0].score));
        assert_eq!(ids(&hits), [1, 3, 2, 0]);
        // Top-k selection keeps the tie order.
        assert_eq!(ids(&index.search("widget", 2)), [1, 3]);
        // With ASINs in catalog order, ties follow the catalog order.
        let cat = catalog(
            (0..30)
                .map(|i| product(&format!("P{i:03}"), "blue widget", ""))
                .collect(),
        );
        let index = SearchIndex::build(&cat);
        assert_eq!(ids(&index.search("blue", 7)), (0..7).collect::<Vec<u32>>());
    }

    #[test]
    fn repeated_query_terms_boost() {
        let cat = catalog(vec![
            product("D1", "red thing", ""),
            product("D2", "shoes thing", ""),
            product("D3", "other thing", ""),
        ]);
        let index = SearchIndex::build(&cat);
        let once = index.search("red shoes", 10);
        assert_eq!(ids(&once), [0, 1]);
        assert_eq!(once[0].score, once[1].score);
        let twice = index.search("red shoes shoes", 10);
        assert_eq!(ids(&twice), [1, 0]);
        assert_eq!(twice[0].score, 2.0 * once[1].score);
        // Repetition through stemming counts too: `shoe` and `shoes` are one term.
        assert_eq!(index.search("red shoe shoes", 10), twice);
    }

    #[test]
    fn queries_without_indexed_terms_find_nothing() {
        let cat = catalog(vec![product("E1", "red shoes", "")]);
        let index = SearchIndex::build(&cat);
        assert!(index.search("", 50).is_empty());
        assert!(index.search("   \n", 50).is_empty());
        assert!(index.search("the of and", 50).is_empty());
        assert!(index.search("unicorn", 50).is_empty());
        assert!(index.search("!!!", 50).is_empty());
        // An index of empty documents matches nothing.
        let empty = SearchIndex::build(&catalog(vec![product("E2", "", "")]));
        assert!(empty.search("red", 50).is_empty());
        let none = SearchIndex::build(&catalog(Vec::new()));
        assert!(none.is_empty());
        assert!(none.search("red", 50).is_empty());
    }

    #[test]
    fn indexes_options_and_first_bullet_only() {
        let mut p = product("F1", "plain tee", "");
        p.bullet_points = vec!["breathable cotton".into(), "machine washable".into()];
        p.options = vec![OptionGroup {
            name: "color".into(),
            values: vec!["navy blue".into(), "white".into()],
        }];
        let index = SearchIndex::build(&catalog(vec![p]));
        assert_eq!(index.search("breathable", 5).len(), 1);
        assert_eq!(index.search("navy", 5).len(), 1);
        assert!(index.search("washable", 5).is_empty());
    }

    fn sample_catalog(extra: &str) -> Catalog {
        let mut products: Vec<Product> = (0..300)
            .map(|i| {
                product(
                    &format!("S{i:04}"),
                    &format!("item {} colour {} size {}", i % 17, i % 5, i % 11),
                    &format!(
                        "word{} word{} long description {}",
                        i % 13,
                        i % 7,
                        "filler ".repeat(i % 9)
                    ),
                )
            })
            .collect();
        products.push(product("S9999", extra, ""));
        catalog(products)
    }

    const QUERIES: [&str; 5] = [
        "item 3 colour 2",
        "word5 word6 size 10",
        "long description filler",
        "extra special",
        "item item 4",
    ];

    #[test]
    fn cache_round_trip() {
        let dir = tempfile::tempdir().expect("tempdir");
        let cat = sample_catalog("extra special");
        let built = SearchIndex::build(&cat);
        let (first, was_built) = SearchIndex::load_or_build(&cat, dir.path()).expect("build");
        assert!(was_built);
        assert_eq!(first, built);
        let path = SearchIndex::cache_path(dir.path(), &cat);
        assert!(path.exists());
        let name = path.file_name().and_then(|n| n.to_str()).expect("name");
        assert_eq!(name, format!("search-{}.idx", &cat.data_hash()[..16]));
        let (loaded, was_built) = SearchIndex::load_or_build(&cat, dir.path()).expect("load");
        assert!(!was_built);
        assert_eq!(loaded, built);
        for q in QUERIES {
            assert_eq!(loaded.search(q, 50), built.search(q, 50), "{q}");
            assert!(!built.search(q, 50).is_empty(), "{q}");
        }
        // A missing directory is created.
        let nested = dir.path().join("a/b");
        let (_, was_built) = SearchIndex::load_or_build(&cat, &nested).expect("nested");
        assert!(was_built);
    }

    #[test]
    fn corrupt_cache_is_rebuilt() {
        let dir = tempfile::tempdir().expect("tempdir");
        let cat = sample_catalog("extra special");
        let reference = SearchIndex::build(&cat);
        SearchIndex::load_or_build(&cat, dir.path()).expect("build");
        let path = SearchIndex::cache_path(dir.path(), &cat);
        let good = std::fs::read(&path).expect("read");

        let mut flipped = good.clone();
        let mid = flipped.len() / 2;
        flipped[mid] ^= 0x40;
        let mut bad_version = good.clone();
        bad_version[8] = 99;
        let damaged: Vec<Vec<u8>> = vec![
            Vec::new(),
            b"garbage".to_vec(),
            good[..good.len() / 3].to_vec(),
            good[..good.len() - 1].to_vec(),
            flipped,
            bad_version,
            [good.as_slice(), b"extra"].concat(),
        ];
        for (i, bytes) in damaged.into_iter().enumerate() {
            std::fs::write(&path, bytes).expect("write");
            let (index, was_built) = SearchIndex::load_or_build(&cat, dir.path()).expect("rebuild");
            assert!(was_built, "case {i}");
            assert_eq!(index, reference, "case {i}");
            // The rewritten cache is valid again.
            assert_eq!(std::fs::read(&path).expect("read"), good, "case {i}");
        }
        // Decoding arbitrary prefixes never panics.
        for cut in (0..good.len()).step_by(97) {
            assert!(SearchIndex::decode(&good[..cut], &cat).is_err());
        }
    }

    #[test]
    fn data_hash_change_rebuilds() {
        let dir = tempfile::tempdir().expect("tempdir");
        let cat_a = sample_catalog("extra special");
        let cat_b = sample_catalog("different words");
        assert_ne!(cat_a.data_hash(), cat_b.data_hash());
        let (_, built_a) = SearchIndex::load_or_build(&cat_a, dir.path()).expect("a");
        assert!(built_a);
        let (index_b, built_b) = SearchIndex::load_or_build(&cat_b, dir.path()).expect("b");
        assert!(built_b);
        assert_eq!(index_b.search("different", 5).len(), 1);
        assert!(index_b.search("special", 5).is_empty());
        // A file for other data under this catalog's name is detected by its embedded hash.
        let path_a = SearchIndex::cache_path(dir.path(), &cat_a);
        let path_b = SearchIndex::cache_path(dir.path(), &cat_b);
        std::fs::copy(&path_a, &path_b).expect("copy");
        let (index_b2, rebuilt) = SearchIndex::load_or_build(&cat_b, dir.path()).expect("b2");
        assert!(rebuilt);
        assert_eq!(index_b2, index_b);
        let (_, built_again) = SearchIndex::load_or_build(&cat_b, dir.path()).expect("b3");
        assert!(!built_again);
    }

    #[test]
    fn parallel_build_matches_single_part() {
        // Enough products to use several threads where available; compare against one part.
        let products: Vec<Product> = (0..5_000)
            .map(|i| {
                product(
                    &format!("Q{:05}", (i * 7919) % 5_000),
                    &format!("thing{} kind{} shade{}", i % 101, i % 37, i % 7),
                    "some words here",
                )
            })
            .collect();
        let cat = catalog(products);
        let index = SearchIndex::build(&cat);
        let part = analyze_part(cat.products());
        let mut one: Vec<String> = part.terms.clone();
        one.sort_unstable();
        assert_eq!(index.terms, one);
        assert_eq!(index.num_terms(), one.len());
        assert_eq!(index.len(), 5_000);
        assert_eq!(
            index.total_tokens,
            part.doc_lens.iter().map(|&l| u64::from(l)).sum::<u64>()
        );
        let hits = index.search("thing5 kind5 shade5", 10);
        assert_eq!(hits[0].product, 5);
    }
}
