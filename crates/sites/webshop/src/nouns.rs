//! Title nouns without a tagger: a documented heuristic stand-in for spaCy.
//!
//! WebShop's type reward compares the nouns of the purchased product's title with the nouns
//! of the goal's product title, taking every token spaCy (`en_core_web_sm`) tags `NOUN` or
//! `PROPN`, lower-cased, duplicates kept (see `../shared/reference/webshop.md` §1.2). agentq
//! runs no tagger: nouns are data (`title_nouns.json`, asin → list of lower-cased nouns,
//! precomputed offline with spaCy) and, where none are supplied, [`title_nouns`] guesses them.
//!
//! The heuristic, in order:
//!
//! 1. lower-case the title;
//! 2. cut it into word tokens: runs of letters and digits, where an apostrophe (`'` or `’`)
//!    between two alphanumerics stays inside the word (`o'keeffe`); every other character,
//!    hyphens included, separates words (spaCy splits `clip-in` into `clip`, `-`, `in` too);
//! 3. drop a possessive `'s` (`women's` → `women`; spaCy makes `'s` a `PART`);
//! 4. drop tokens of one character, tokens holding any digit (`16oz`, `3xl`, `2`), and words
//!    of a closed list: function words, number words, units and pack counts (`oz`, `inch`,
//!    `pack`, `count`, …), colours, and very common adjectives, adverbs and verb forms of
//!    product titles (`natural`, `organic`, `soft`, `waterproof`, `adjustable`, `portable`,
//!    `long`, `small`, `large`, `new`, `free`, `premium`, `made`, `scented`, …);
//! 5. keep everything else, in title order, duplicates included.
//!
//! It keeps brand names, as spaCy does (they come out `PROPN`). It is cleaner than spaCy on
//! title-cased text (spaCy often tags capitalised adjectives such as `Black` as `PROPN`), so
//! type rewards computed from it can differ slightly from WebShop's; supply
//! `title_nouns.json` for exact numbers.

/// Words never counted as nouns: function words, number words, units, colours, and common
/// adjectives, adverbs and verb forms of product titles. Sorted (checked by a test) for
/// binary search.
const NOT_NOUNS: &[&str] = &[
    "about",
    "above",
    "across",
    "adjustable",
    "after",
    "against",
    "all",
    "along",
    "also",
    "am",
    "an",
    "and",
    "anti",
    "any",
    "are",
    "around",
    "as",
    "assorted",
    "at",
    "authentic",
    "automatic",
    "baked",
    "be",
    "beautiful",
    "because",
    "been",
    "before",
    "beige",
    "below",
    "best",
    "between",
    "big",
    "black",
    "blue",
    "both",
    "breathable",
    "bright",
    "brown",
    "but",
    "by",
    "can",
    "casual",
    "classic",
    "clear",
    "cm",
    "comfortable",
    "comfy",
    "compact",
    "compatible",
    "cool",
    "could",
    "count",
    "counts",
    "ct",
    "customized",
    "cute",
    "dark",
    "decorative",
    "deluxe",
    "designed",
    "did",
    "digital",
    "disposable",
    "do",
    "does",
    "double",
    "down",
    "dozen",
    "dried",
    "durable",
    "during",
    "each",
    "easy",
    "eight",
    "either",
    "elastic",
    "electric",
    "elegant",
    "essential",
    "etc",
    "every",
    "extra",
    "fashionable",
    "fast",
    "featuring",
    "few",
    "fitted",
    "five",
    "fl",
    "flavored",
    "flavoured",
    "flexible",
    "for",
    "four",
    "free",
    "fresh",
    "from",
    "frozen",
    "ft",
    "full",
    "fully",
    "funny",
    "gal",
    "gallon",
    "gallons",
    "gentle",
    "genuine",
    "gold",
    "golden",
    "good",
    "gram",
    "grams",
    "gray",
    "great",
    "green",
    "grey",
    "had",
    "handmade",
    "has",
    "have",
    "he",
    "healthy",
    "heavy",
    "her",
    "here",
    "high",
    "highly",
    "his",
    "hot",
    "how",
    "huge",
    "ideal",
    "if",
    "in",
    "inch",
    "inches",
    "included",
    "includes",
    "including",
    "inside",
    "instant",
    "insulated",
    "into",
    "is",
    "it",
    "its",
    "just",
    "kg",
    "large",
    "lb",
    "lbs",
    "less",
    "lightweight",
    "like",
    "liter",
    "liters",
    "litre",
    "litres",
    "little",
    "long",
    "lovely",
    "low",
    "luxury",
    "made",
    "magnetic",
    "many",
    "me",
    "medium",
    "mg",
    "mini",
    "ml",
    "mm",
    "modern",
    "more",
    "most",
    "much",
    "multi",
    "my",
    "natural",
    "naturally",
    "navy",
    "near",
    "new",
    "nine",
    "no",
    "non",
    "nor",
    "not",
    "of",
    "off",
    "old",
    "on",
    "once",
    "one",
    "only",
    "onto",
    "or",
    "orange",
    "organic",
    "original",
    "other",
    "ounce",
    "ounces",
    "our",
    "out",
    "outdoor",
    "outside",
    "over",
    "own",
    "oz",
    "pack",
    "packs",
    "padded",
    "pair",
    "pairs",
    "pc",
    "pcs",
    "per",
    "perfect",
    "personalized",
    "piece",
    "pieces",
    "pink",
    "pk",
    "plain",
    "plus",
    "portable",
    "pound",
    "pounds",
    "powerful",
    "premium",
    "printed",
    "professional",
    "pure",
    "purple",
    "qt",
    "quart",
    "quarts",
    "quick",
    "rechargeable",
    "red",
    "removable",
    "resistant",
    "reusable",
    "roasted",
    "round",
    "safe",
    "same",
    "scented",
    "sealed",
    "sensitive",
    "seven",
    "she",
    "short",
    "should",
    "silver",
    "simple",
    "since",
    "single",
    "six",
    "sliced",
    "slim",
    "small",
    "smart",
    "smooth",
    "so",
    "soft",
    "solid",
    "some",
    "special",
    "sturdy",
    "stylish",
    "such",
    "super",
    "sweet",
    "tall",
    "ten",
    "than",
    "that",
    "the",
    "their",
    "them",
    "then",
    "there",
    "these",
    "they",
    "thick",
    "thin",
    "this",
    "those",
    "three",
    "through",
    "tiny",
    "to",
    "too",
    "toward",
    "towards",
    "traditional",
    "two",
    "ultra",
    "under",
    "unique",
    "universal",
    "unscented",
    "until",
    "up",
    "upon",
    "us",
    "used",
    "using",
    "very",
    "via",
    "vintage",
    "vs",
    "warm",
    "was",
    "washable",
    "waterproof",
    "we",
    "were",
    "what",
    "when",
    "where",
    "which",
    "while",
    "white",
    "who",
    "wide",
    "will",
    "wireless",
    "with",
    "within",
    "without",
    "wooden",
    "would",
    "xl",
    "xs",
    "xxl",
    "xxxl",
    "yellow",
    "yet",
    "you",
    "your",
    "yours",
];

/// True for a word that the heuristic never counts as a noun (see the module docs).
pub fn is_stop_word(word: &str) -> bool {
    NOT_NOUNS.binary_search(&word).is_ok()
}

/// Guesses the nouns of a product title: lower-cased word tokens, in title order and with
/// duplicates, minus numbers, measurements and a closed list of non-nouns (module docs).
///
/// A stand-in for spaCy's `NOUN`/`PROPN` tags used when no `title_nouns.json` is supplied.
pub fn title_nouns(title: &str) -> Vec<String> {
    words(&title.to_lowercase())
        .into_iter()
        .filter_map(|w| {
            let w = w
                .strip_suffix("'s")
                .map(str::to_string)
                .unwrap_or_else(|| w.clone());
            keep(&w).then_some(w)
        })
        .collect()
}

fn keep(word: &str) -> bool {
    word.chars().count() > 1
        && !word.chars().any(|c| c.is_numeric())
        && word.chars().any(char::is_alphabetic)
        && !is_stop_word(word)
}

/// Splits lower-cased text into word tokens (module docs, step 2); `’` becomes `'`.
fn words(text: &str) -> Vec<String> {
    let chars: Vec<char> = text.chars().collect();
    let mut out = Vec::new();
    let mut cur = String::new();
    for (i, &c) in chars.iter().enumerate() {
        if c.is_alphanumeric() {
            cur.push(c);
        } else if (c == '\'' || c == '’')
            && !cur.is_empty()
            && chars.get(i + 1).is_some_and(|n| n.is_alphanumeric())
        {
            cur.push('\'');
        } else if !cur.is_empty() {
            out.push(std::mem::take(&mut cur));
        }
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stop_list_is_sorted_and_unique() {
        for pair in NOT_NOUNS.windows(2) {
            assert!(pair[0] < pair[1], "{:?} then {:?}", pair[0], pair[1]);
        }
        for w in NOT_NOUNS {
            assert_eq!(*w, w.to_lowercase());
        }
    }

    #[test]
    fn webshop_goal_title() {
        assert_eq!(
            title_nouns("Letter I Birthday Cake Candles Set with Holders (96 Pack)"),
            ["letter", "birthday", "cake", "candles", "set", "holders"]
        );
    }

    #[test]
    fn possessives_hyphens_and_measurements() {
        assert_eq!(
            title_nouns("Men's Waterproof Hiking Boots, Black - Size 10.5 W"),
            ["men", "hiking", "boots", "size"]
        );
        assert_eq!(
            title_nouns("Long Clip-in Hair Extensions, 18 inch 16oz 3XL"),
            ["clip", "hair", "extensions"]
        );
        assert_eq!(
            title_nouns("Women’s Organic Tea Tree Body Scrub (10 fl oz)"),
            ["women", "tea", "tree", "body", "scrub"]
        );
    }

    #[test]
    fn keeps_duplicates_brands_and_inner_apostrophes() {
        assert_eq!(
            title_nouns("O'Keeffe's Working Hands Cream, Hand Cream for Dry Hands"),
            ["o'keeffe", "working", "hands", "cream", "hand", "cream", "dry", "hands"]
        );
        assert_eq!(
            title_nouns("PMUYBHF Womens Fashion Flat Shoes Comfortable Slip On Loafers"),
            ["pmuybhf", "womens", "fashion", "flat", "shoes", "slip", "loafers"]
        );
    }

    #[test]
    fn degenerate_titles() {
        assert!(title_nouns("").is_empty());
        assert!(title_nouns("  -- 100% / 2 x 3 --").is_empty());
        assert!(title_nouns("The New and Improved").contains(&"improved".to_string()));
        assert_eq!(title_nouns("'quoted' words'"), ["quoted", "words"]);
    }
}
