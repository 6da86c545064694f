//! WebShop's purchase reward (`web_agent_site/engine/goal.py`, `get_reward` and helpers),
//! computed when an episode ends with "Buy Now".
//!
//! `R = r_type · (matched attributes + matched options + [price ≤ price_upper])
//!      / (|attributes| + |options| + 1)`, with the matching rules of
//! `shared/reference/webshop.md` §1: fuzzy matching is thefuzz 0.19's `token_set_ratio > 85`
//! (see [`super::fuzz`]), options are colour-normalised first (see [`super::normalize`]).
//!
//! Deviations from WebShop, each documented where it applies:
//! * Title nouns are data, not spaCy output: [`Product::title_nouns`] and
//!   [`Goal::name_nouns`] replace `nlp(name)` filtered to nouns, so the type reward is
//!   deterministic (WebShop's depends on the spaCy model and its version).
//! * A goal with `price_upper <= 0` makes WebShop's sum raise a `TypeError` (`r_price` is
//!   `None`); here the price term is simply unmet (`r_price = false`).
//! * A goal with no attributes makes WebShop's `get_attribute_reward` divide by zero; here
//!   `r_att` is reported as `0.0` and the total is computed as usual.
//! * `options` is a slice of purchased option values; WebShop reads the values of a
//!   `{option name: value}` dict, so callers must pass one value per option group (the
//!   last one clicked), which is what the store's session keeps.
//! * The Python `repr` of synthetic `(name, value)` pairs escapes non-printable characters
//!   as CPython does, except that code points unassigned in the Unicode database are kept
//!   as they are (CPython escapes them); option values never contain them in practice.

use std::borrow::Cow;
use std::collections::HashSet;

use agentq_core::pycompat::str_repr;
use serde::{Deserialize, Serialize};

use super::catalog::{Goal, GoalOptions, Product};
use super::fuzz::token_set_ratio;
use super::normalize::{normalize_color, normalize_color_pair};

/// A fuzzy match needs `token_set_ratio` strictly above this (WebShop: `score > 85`).
pub const MATCH_THRESHOLD: u32 = 85;

/// Separator of breadcrumb parts in `product_category` (U+203A, "›").
pub const CATEGORY_SEPARATOR: char = '\u{203A}';

/// The type reward and its inputs (WebShop `get_type_reward`).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct TypeReward {
    /// `1.0`, `0.5`, `0.1` or `0.0`; multiplies the whole reward.
    pub r_type: f64,
    /// The product's scrape query equals the goal's, exactly.
    pub query_match: bool,
    /// The two breadcrumbs share at least two distinct parts.
    pub category_match: bool,
    /// `|set(P) ∩ set(D)| / len(D)` for product title nouns `P` and goal title nouns `D`
    /// (duplicates in `D` count in the denominator); `0.2` when `D` is empty.
    pub title_score: f64,
}

/// The reward of a purchase with WebShop's verbose components.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RewardBreakdown {
    /// Final reward in `[0, 1]`; success is `total == 1.0`.
    pub total: f64,
    /// Type reward (`1.0`, `0.5`, `0.1` or `0.0`).
    pub r_type: f64,
    /// Fraction of goal attributes matched (`0.0` when the goal has none; WebShop would
    /// divide by zero).
    pub r_att: f64,
    /// Weight of the attribute term: `|attributes| / (|attributes| + |options| + 1)`.
    pub w_att: f64,
    /// The product's scrape query equals the goal's.
    pub query_match: bool,
    /// The breadcrumbs share at least two parts.
    pub category_match: bool,
    /// Title-noun overlap (see [`TypeReward::title_score`]).
    pub title_score: f64,
    /// Fraction of goal options matched; `None` when the goal has no options.
    pub r_option: Option<f64>,
    /// Weight of the option term; `None` when the goal has no options.
    pub w_option: Option<f64>,
    /// The price is within the goal's bound (`false` when `price_upper <= 0`, where WebShop
    /// would crash).
    pub r_price: bool,
    /// Weight of the price term: `1 / (|attributes| + |options| + 1)`.
    pub w_price: f64,
    /// Number of goal attributes matched.
    pub num_attr_matches: usize,
    /// Number of goal options matched.
    pub num_option_matches: usize,
}

/// Computes WebShop's reward for buying `product` at `price` with the option values
/// `options` (one per option group, in the order chosen) against `goal`.
///
/// `total = r_type · (num_attr_matches + num_option_matches + r_price) /
/// (|goal.attributes| + |goal.goal_options| + 1)`.
pub fn reward(product: &Product, goal: &Goal, price: f64, options: &[String]) -> RewardBreakdown {
    let types = type_reward(product, goal);
    let r_price = goal.price_upper > 0.0 && price <= goal.price_upper;
    let n_att = goal.attributes.len();
    let n_opt = goal.goal_options.len();
    let num_attr_matches = attribute_matches(product, goal);
    let num_option_matches = option_matches(options, &goal.goal_options);
    let denominator = (n_att + n_opt + 1) as f64;
    let numerator = (num_attr_matches + num_option_matches + usize::from(r_price)) as f64;
    let total = numerator / denominator * types.r_type;
    RewardBreakdown {
        total,
        r_type: types.r_type,
        r_att: if n_att == 0 {
            0.0
        } else {
            num_attr_matches as f64 / n_att as f64
        },
        w_att: n_att as f64 / denominator,
        query_match: types.query_match,
        category_match: types.category_match,
        title_score: types.title_score,
        r_option: (n_opt > 0).then(|| num_option_matches as f64 / n_opt as f64),
        w_option: (n_opt > 0).then(|| n_opt as f64 / denominator),
        r_price,
        w_price: 1.0 / denominator,
        num_attr_matches,
        num_option_matches,
    }
}

/// WebShop `get_type_reward`: whether the purchase is the right kind of product.
///
/// `r_type` starts at 1; it is 0.5 unless the queries match, the breadcrumbs share two
/// parts, or `title_score > 0.2`; then 0.1 if `title_score < 0.1`, and 0 if it is 0.
pub fn type_reward(product: &Product, goal: &Goal) -> TypeReward {
    let query_match = product.query == goal.query;
    let product_parts = breadcrumb_parts(&product.product_category);
    let goal_parts = breadcrumb_parts(&goal.product_category);
    let category_match = product_parts.intersection(&goal_parts).count() >= 2;
    let title_score = title_score(&product.title_nouns, &goal.name_nouns);

    let mut r_type = 1.0;
    if !(query_match || category_match || title_score > 0.2) {
        r_type = 0.5;
    }
    if title_score < 0.1 {
        r_type = 0.1;
    }
    if title_score == 0.0 {
        r_type = 0.0;
    }
    TypeReward {
        r_type,
        query_match,
        category_match,
        title_score,
    }
}

/// The distinct, trimmed parts of a breadcrumb split on `›`.
fn breadcrumb_parts(breadcrumb: &str) -> HashSet<&str> {
    breadcrumb
        .split(CATEGORY_SEPARATOR)
        .map(agentq_core::pycompat::strip)
        .collect()
}

/// `|set(product) ∩ set(goal)| / len(goal)`, or 0.2 when `goal` is empty.
fn title_score(product_nouns: &[String], goal_nouns: &[String]) -> f64 {
    if goal_nouns.is_empty() {
        return 0.2;
    }
    let product: HashSet<&str> = product_nouns.iter().map(String::as_str).collect();
    let goal: HashSet<&str> = goal_nouns.iter().map(String::as_str).collect();
    product.intersection(&goal).count() as f64 / goal_nouns.len() as f64
}

/// WebShop `get_attribute_reward`'s count: goal attributes the product has.
///
/// A goal attribute `g` matches when some product attribute `p` has
/// `token_set_ratio(p, g) > 85`, or else when `g` (as written, not lower-cased) is a
/// substring of the lower-cased title, of the lower-cased bullets joined by spaces, or of
/// the lower-cased description.
pub fn attribute_matches(product: &Product, goal: &Goal) -> usize {
    let title = product.title.to_lowercase();
    let bullets = product.bullet_points.join(" ").to_lowercase();
    let description = product.description.to_lowercase();
    goal.attributes
        .iter()
        .filter(|g| {
            product
                .attributes
                .iter()
                .any(|p| token_set_ratio(p, g) > MATCH_THRESHOLD)
                || title.contains(g.as_str())
                || bullets.contains(g.as_str())
                || description.contains(g.as_str())
        })
        .count()
}

/// WebShop `get_option_reward`'s count: goal options matched by some purchased value.
///
/// Both sides are colour-normalised ([`normalize_color`]); a goal option counts once when
/// any purchased value scores `token_set_ratio(purchased, goal) > 85`. Synthetic goal
/// options keep WebShop's tuple quirk: a `(name, value)` pair becomes the colour equal to
/// `name` or `value` if there is one ([`normalize_color_pair`]), and otherwise is compared
/// as the text of its Python `repr`, `('name', 'value')`. So a value that merely contains a
/// colour ("redwood") is not normalised on the goal side, although the purchased
/// "redwood" becomes "red".
pub fn option_matches(purchased: &[String], goal: &GoalOptions) -> usize {
    let purchased: Vec<&str> = purchased.iter().map(|o| normalize_color(o)).collect();
    let goals: Vec<Cow<'_, str>> = match goal {
        GoalOptions::Human(values) => values
            .iter()
            .map(|v| Cow::Borrowed(normalize_color(v)))
            .collect(),
        GoalOptions::Synthetic(pairs) => pairs
            .iter()
            .map(|(name, value)| match normalize_color_pair(name, value) {
                Some(colour) => Cow::Borrowed(colour),
                None => Cow::Owned(py_pair_repr(name, value)),
            })
            .collect(),
    };
    goals
        .iter()
        .filter(|g| {
            purchased
                .iter()
                .any(|p| token_set_ratio(p, g) > MATCH_THRESHOLD)
        })
        .count()
}

/// Python's `repr((name, value))` for two strings.
fn py_pair_repr(name: &str, value: &str) -> String {
    format!("({}, {})", str_repr(name), str_repr(value))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(xs: &[&str]) -> Vec<String> {
        xs.iter().map(|s| s.to_string()).collect()
    }

    fn product() -> Product {
        Product {
            asin: "B000000001".into(),
            title: String::new(),
            category: "beauty".into(),
            product_category: "a › b › c".into(),
            query: "Query 1".into(),
            description: String::new(),
            bullet_points: Vec::new(),
            attributes: Vec::new(),
            options: Vec::new(),
            pricing: vec![35.0],
            price: 35.0,
            title_nouns: strings(&["name"]),
            main_image: None,
        }
    }

    fn goal() -> Goal {
        Goal {
            asin: "B000000001".into(),
            category: "beauty".into(),
            query: "Query 1".into(),
            name: "Name 1".into(),
            product_category: "a › b › c".into(),
            instruction_text: String::new(),
            attributes: Vec::new(),
            goal_options: GoalOptions::Human(Vec::new()),
            price_upper: 40.0,
            name_nouns: strings(&["name"]),
            weight: 1.0,
        }
    }

    fn synthetic(pairs: &[(&str, &str)]) -> GoalOptions {
        GoalOptions::Synthetic(
            pairs
                .iter()
                .map(|(n, v)| (n.to_string(), v.to_string()))
                .collect(),
        )
    }

    fn assert_close(got: f64, want: f64) {
        assert!((got - want).abs() < 1e-12, "got {got}, want {want}");
    }

    // ---- type reward (WebShop test_get_type_reward, nouns supplied as data) ----

    #[test]
    fn type_reward_exact_match() {
        let t = type_reward(&product(), &goal());
        assert_eq!(
            t,
            TypeReward {
                r_type: 1.0,
                query_match: true,
                category_match: true,
                title_score: 1.0
            }
        );
        let mut p = product();
        p.query = "Query 2".into();
        assert!(!type_reward(&p, &goal()).query_match);
    }

    #[test]
    fn category_match_needs_two_shared_parts() {
        let cases = [
            ("b › c › a", true),
            ("d › e › f", false),
            ("a › d › b", true),
            ("a › a › b", true),
            ("a › a › d", false),
            ("  a›b  ", true),
            ("a > b > c", false),
        ];
        for (breadcrumb, want) in cases {
            let mut p = product();
            p.product_category = breadcrumb.into();
            assert_eq!(
                type_reward(&p, &goal()).category_match,
                want,
                "{breadcrumb}"
            );
        }
    }

    /// WebShop's title cases with hand-made noun lists: expected scores from running
    /// WebShop's `get_type_reward` with a stub tagger returning these lists.
    #[test]
    fn title_score_and_ladder() {
        let mut p = product();
        p.query = "Query 2".into();
        p.product_category = "a › a › d".into();
        let mut g = goal();

        // "Mens D.O.N. Issue 2 Gca Basketball Sneakers Shoes Casual - Off White" vs
        // "PEAK High Top Mens Basketball Shoes … Outdoor Sneakers".
        g.name_nouns = strings(&[
            "mens",
            "d.o.n.",
            "issue",
            "gca",
            "basketball",
            "sneakers",
            "shoes",
            "casual",
            "white",
        ]);
        p.title_nouns = strings(&[
            "peak",
            "top",
            "basketball",
            "shoes",
            "lou",
            "williams",
            "streetball",
            "master",
            "outdoor",
            "sneakers",
        ]);
        let t = type_reward(&p, &g);
        assert_close(t.title_score, 0.3333333333333333);
        assert_eq!(t.r_type, 1.0);

        // Power cords: "bar" appears twice in the goal's nouns and counts twice in the
        // denominator.
        p.title_nouns = strings(&[
            "brst",
            "ac",
            "power",
            "cord",
            "outlet",
            "socket",
            "cable",
            "plug",
            "lead",
            "panasonic",
            "sc",
            "dvd",
            "vcr",
            "combo",
            "home",
            "theater",
            "system",
        ]);
        g.name_nouns = strings(&[
            "saireed",
            "prong",
            "power",
            "cord",
            "jbl",
            "bar",
            "bar",
            "soundbar",
            "theater",
            "subwoofer",
        ]);
        let t = type_reward(&p, &g);
        assert_close(t.title_score, 0.3);
        assert_eq!(t.r_type, 1.0);

        g.name_nouns = strings(&[
            "saireed", "ul", "prong", "power", "cord", "jbl", "bar", "bar", "channel", "k",
            "ultra", "hd", "soundbar",
        ]);
        let t = type_reward(&p, &g);
        assert_close(t.title_score, 0.15384615384615385);
        assert_eq!(
            t.r_type, 0.5,
            "no query/category match and title_score <= 0.2"
        );

        // The same title overlap with a matching query keeps r_type at 1.
        let mut p_same_query = p.clone();
        p_same_query.query = "Query 1".into();
        assert_eq!(type_reward(&p_same_query, &g).r_type, 1.0);

        // 1 of 11 nouns shared: 0 < title_score < 0.1 gives 0.1 even when the query matches.
        g.name_nouns = strings(&[
            "power", "n1", "n2", "n3", "n4", "n5", "n6", "n7", "n8", "n9", "n10",
        ]);
        let t = type_reward(&p_same_query, &g);
        assert_close(t.title_score, 1.0 / 11.0);
        assert_eq!(t.r_type, 0.1);

        // Completely different titles.
        g.name_nouns = strings(&["rusticware", "orb", "kitchen", "bath", "cabinet", "knob"]);
        let t = type_reward(&p_same_query, &g);
        assert_eq!(t.title_score, 0.0);
        assert_eq!(t.r_type, 0.0);
    }

    #[test]
    fn empty_goal_nouns_score_point_two() {
        let mut g = goal();
        g.name_nouns.clear();
        let t = type_reward(&product(), &g);
        assert_eq!((t.title_score, t.r_type), (0.2, 1.0));
        let mut p = product();
        p.query = "other".into();
        p.product_category = "x › y".into();
        let t = type_reward(&p, &g);
        assert_eq!((t.title_score, t.r_type), (0.2, 0.5), "0.2 is not > 0.2");
    }

    // ---- attributes (WebShop test_get_attribute_reward) ----

    fn attr_goal() -> Goal {
        let mut g = goal();
        g.attributes = strings(&["tea tree", "essential oils", "natural ingredients"]);
        g
    }

    #[test]
    fn attributes_fuzzy_and_text_fallback() {
        let g = attr_goal();
        let mut p = product();
        p.attributes = strings(&["tea tree", "essential oil", "natural ingredients"]);
        assert_eq!(attribute_matches(&p, &g), 3, "exact + fuzzy (96 > 85)");

        p.attributes = strings(&["essential oil", "natural ingredients"]);
        assert_eq!(attribute_matches(&p, &g), 2, "partial");

        p.attributes.clear();
        p.bullet_points = strings(&["This shampoo has essential oils and smells like lemons"]);
        p.description = "Best shampoo on the market, made with natural ingredients".into();
        assert_eq!(
            attribute_matches(&p, &g),
            2,
            "found in bullets and description"
        );

        p.attributes = strings(&["tea bag", "earl gray", "lipton"]);
        p.title = "English tea for breakfast".into();
        p.bullet_points = strings(&["Soothing aroma", "Calming, great feeling"]);
        p.description = "Best tea made by Lipton, great to pair with breakfast".into();
        assert_eq!(attribute_matches(&p, &g), 0, "no match");
    }

    #[test]
    fn dummy_attr_only_matches_through_text() {
        let mut g = goal();
        g.attributes = strings(&["tea tree", "dummy attr"]);
        let mut p = product();
        p.attributes = strings(&["DUMMY_ATTR"]);
        // token_set_ratio("DUMMY_ATTR", "dummy attr") is 50: "_" is a word character.
        assert_eq!(attribute_matches(&p, &g), 0);
        p.title = "Tea Tree Shampoo".into();
        assert_eq!(
            attribute_matches(&p, &g),
            1,
            "lower-cased title holds 'tea tree'"
        );
    }

    #[test]
    fn text_fallback_is_a_raw_substring_test() {
        let mut p = product();
        p.title = "Tea Tree Shampoo".into();
        let mut g = goal();
        g.attributes = strings(&["Tea Tree"]);
        assert_eq!(attribute_matches(&p, &g), 0, "goal side is not lower-cased");
        g.attributes = strings(&["ree sha"]);
        assert_eq!(attribute_matches(&p, &g), 1, "substring, not word, match");
        p.title.clear();
        p.bullet_points = strings(&["tea", "tree"]);
        g.attributes = strings(&["tea tree"]);
        assert_eq!(
            attribute_matches(&p, &g),
            1,
            "bullets are joined with spaces"
        );
    }

    // ---- options (WebShop test_get_option_reward) ----

    #[test]
    fn human_options() {
        let g = GoalOptions::Human(strings(&["grey", "XL", "pack of 12"]));
        assert_eq!(
            option_matches(&strings(&["pack of 12", "grey", "XL"]), &g),
            3
        );
        assert_eq!(
            option_matches(&strings(&["pack of 12", "blue", "XL"]), &g),
            2
        );
        let g = GoalOptions::Human(strings(&["cool powder snow", "XL", "pack of 12"]));
        assert_eq!(
            option_matches(&strings(&["pack of 12", "powder snow", "XL"]), &g),
            3,
            "fuzzy"
        );
        let g = GoalOptions::Human(Vec::new());
        assert_eq!(option_matches(&strings(&["goal 1", "goal 2"]), &g), 0);
        let g = GoalOptions::Human(strings(&["goal 1", "goal 2"]));
        assert_eq!(option_matches(&[], &g), 0);
    }

    #[test]
    fn options_are_colour_normalised_and_counted_once() {
        let g = GoalOptions::Human(strings(&["navy blue"]));
        assert_eq!(
            option_matches(&strings(&["blue"]), &g),
            1,
            "navy blue -> blue"
        );
        let g = GoalOptions::Human(strings(&["washed denim"]));
        assert_eq!(
            option_matches(&strings(&["ash grey"]), &g),
            1,
            "both -> ash"
        );
        let g = GoalOptions::Human(strings(&["pack of 12"]));
        assert_eq!(
            option_matches(&strings(&["pack of 12", "pack of 12 (2)"]), &g),
            1
        );
    }

    /// Expected counts from WebShop's `get_option_reward` with `dict.items()` goals.
    #[test]
    fn synthetic_options_keep_the_tuple_quirk() {
        let g = synthetic(&[("color", "grey"), ("size", "XL")]);
        assert_eq!(option_matches(&strings(&["grey", "XL"]), &g), 2);
        let g = synthetic(&[("color", "grey"), ("size", "XL"), ("amount", "pack of 12")]);
        assert_eq!(option_matches(&strings(&["grey", "XL"]), &g), 2);
        let g = synthetic(&[("color", "light grey")]);
        assert_eq!(option_matches(&strings(&["light grey"]), &g), 1);
        // "redwood" is not a colour of its own, so the goal pair stays a tuple while the
        // purchased "redwood" becomes "red": buying exactly what was asked does not match.
        let g = synthetic(&[("color", "redwood")]);
        assert_eq!(option_matches(&strings(&["redwood"]), &g), 0);
        assert_eq!(option_matches(&strings(&["red"]), &g), 0);
        let human = GoalOptions::Human(strings(&["redwood"]));
        assert_eq!(option_matches(&strings(&["redwood"]), &human), 1);
        let g = synthetic(&[("color", "a\nb"), ("size", "it's")]);
        assert_eq!(option_matches(&strings(&["x"]), &g), 0);
    }

    #[test]
    fn python_repr_of_pairs() {
        assert_eq!(py_pair_repr("size", "XL"), "('size', 'XL')");
        assert_eq!(py_pair_repr("size", "men's 9"), "('size', \"men's 9\")");
        assert_eq!(py_pair_repr("a\"b", "c'd\"e"), "('a\"b', 'c\\'d\"e')");
        assert_eq!(py_pair_repr("x\\y", "a\nb\tc"), "('x\\\\y', 'a\\nb\\tc')");
        assert_eq!(
            py_pair_repr("é\u{a0}", "\u{200b}\u{1}"),
            "('é\\xa0', '\\u200b\\x01')"
        );
        assert_eq!(py_pair_repr("日本", "\u{e0001}"), "('日本', '\\U000e0001')");
        // thefuzz sees the repr: "\xa0" survives as the token "xa0" (value from thefuzz 0.19).
        assert_eq!(
            super::super::fuzz::full_process(&py_pair_repr("it's", "é\u{a0}")),
            "it s     xa0"
        );
    }

    // ---- total (WebShop test_get_reward and reference §1.1) ----

    fn reward_case() -> (Product, Goal, Vec<String>) {
        let nouns = strings(&[
            "mens",
            "d.o.n.",
            "issue",
            "gca",
            "basketball",
            "sneakers",
            "shoes",
            "casual",
            "white",
        ]);
        let mut g = attr_goal();
        g.goal_options = synthetic(&[("color", "grey"), ("size", "XL")]);
        g.name_nouns = nouns.clone();
        let mut p = product();
        p.attributes = strings(&["tea tree", "essential oil", "natural ingredients"]);
        p.title_nouns = nouns;
        (p, g, strings(&["grey", "XL"]))
    }

    #[test]
    fn webshop_test_get_reward_cases() {
        let (mut p, mut g, opts) = reward_case();
        let r = reward(&p, &g, 35.0, &opts);
        assert_eq!(r.total, 1.0);
        assert_eq!(
            r,
            RewardBreakdown {
                total: 1.0,
                r_type: 1.0,
                r_att: 1.0,
                w_att: 0.5,
                query_match: true,
                category_match: true,
                title_score: 1.0,
                r_option: Some(1.0),
                w_option: Some(0.3333333333333333),
                r_price: true,
                w_price: 0.16666666666666666,
                num_attr_matches: 3,
                num_option_matches: 2,
            }
        );

        // WebShop's test passes BulletPoints as a plain string, which `" ".join` splits
        // into characters, so only "natural ingredients" (in the description) is found.
        p.attributes.clear();
        p.bullet_points = "This shampoo has essential oils and smells like lemons"
            .chars()
            .map(String::from)
            .collect();
        p.description = "Best shampoo on the market, made with natural ingredients".into();
        let r = reward(&p, &g, 35.0, &opts);
        assert_eq!(r.total, 0.6666666666666666);
        assert_eq!((r.num_attr_matches, r.r_att), (1, 0.3333333333333333));

        g.goal_options = synthetic(&[("color", "grey"), ("size", "XL"), ("amount", "pack of 12")]);
        let r = reward(&p, &g, 35.0, &opts);
        assert_eq!(r.total, 0.5714285714285714);
        assert_eq!(r.r_option, Some(0.6666666666666666));
        assert_eq!(r.w_att, 0.42857142857142855);
        assert_eq!(r.w_price, 0.14285714285714285);

        // Different titles (power cords), query and breadcrumb: r_type 0.5.
        g.name_nouns = strings(&[
            "saireed", "ul", "prong", "power", "cord", "jbl", "bar", "bar", "channel", "k",
            "ultra", "hd", "soundbar",
        ]);
        p.title_nouns = strings(&[
            "brst",
            "ac",
            "power",
            "cord",
            "outlet",
            "socket",
            "cable",
            "plug",
            "lead",
            "panasonic",
            "sc",
            "dvd",
            "vcr",
            "combo",
            "home",
            "theater",
            "system",
        ]);
        p.query = "Query 2".into();
        p.product_category = "a › d › e".into();
        let r = reward(&p, &g, 35.0, &opts);
        assert_eq!(r.total, 0.2857142857142857);
        assert_eq!(r.r_type, 0.5);
        assert!(!r.query_match && !r.category_match);

        // Over the price bound (WebShop gives 0.21428571428571427).
        let r = reward(&p, &g, 45.0, &opts);
        assert!(!r.r_price);
        assert_eq!(r.total, 0.21428571428571427);
    }

    /// The human-demo goal of reference §3.4 (birthday candles) with another candle
    /// product: attribute unmatched, no options, price within bound → 0.5. Value checked
    /// with WebShop's `get_reward` and the same noun lists.
    #[test]
    fn human_demo_half_reward() {
        let g = Goal {
            asin: "B07RVDW2Z2".into(),
            category: "grocery".into(),
            query: "party mix".into(),
            name: "Letter I Birthday Cake Candles Set with Holders (96 Pack)".into(),
            product_category: "Home & Kitchen › Home Décor Products › Candles & Holders › \
                               Candles › Specialty Candles › Birthday Candles"
                .into(),
            instruction_text:
                "i need birthday candles for my birthday cake, and price lower than 40.00 dollars"
                    .into(),
            attributes: strings(&["birthday cake"]),
            goal_options: GoalOptions::Human(Vec::new()),
            price_upper: 40.0,
            name_nouns: strings(&[
                "letter", "birthday", "cake", "candles", "set", "holders", "pack",
            ]),
            weight: 1.0,
        };
        let p = Product {
            asin: "B000CANDLE".into(),
            title: "Gold Number Candles for Party Decoration".into(),
            category: "grocery".into(),
            product_category: "Home & Kitchen › Home Décor Products › Candles & Holders › \
                               Candles › Specialty Candles › Number Candles"
                .into(),
            query: "party mix".into(),
            description: "Perfect for a birthday party or cake decoration.".into(),
            bullet_points: strings(&[
                "Gold glitter number candles",
                "Cake topper for anniversaries",
            ]),
            attributes: strings(&["DUMMY_ATTR"]),
            options: Vec::new(),
            pricing: vec![12.99],
            price: 12.99,
            title_nouns: strings(&["gold", "number", "candles", "party", "decoration"]),
            main_image: None,
        };
        let r = reward(&p, &g, p.price, &[]);
        assert_eq!(r.total, 0.5);
        assert_eq!(r.r_type, 1.0);
        assert_eq!(r.title_score, 0.14285714285714285);
        assert_eq!((r.num_attr_matches, r.r_att, r.w_att), (0, 0.0, 0.5));
        assert_eq!((r.r_option, r.w_option), (None, None));
        assert!(r.r_price);
        assert_eq!(r.w_price, 0.5);
    }

    #[test]
    fn price_bound_edge_cases() {
        let mut g = goal();
        let p = product();
        assert!(reward(&p, &g, 40.0, &[]).r_price, "bound is inclusive");
        assert!(!reward(&p, &g, 40.01, &[]).r_price);
        // No attributes, no options: r_att is reported as 0 instead of dividing by zero.
        let r = reward(&p, &g, 10.0, &[]);
        assert_eq!((r.total, r.r_att, r.w_att, r.w_price), (1.0, 0.0, 0.0, 1.0));
        // price_upper <= 0: WebShop would crash; the price term is unmet.
        g.price_upper = 0.0;
        let r = reward(&p, &g, 0.0, &[]);
        assert!(!r.r_price);
        assert_eq!(r.total, 0.0);
    }

    #[test]
    fn wrong_type_zeroes_everything() {
        let (mut p, g, opts) = reward_case();
        p.title_nouns = strings(&["tweezers"]);
        let r = reward(&p, &g, 35.0, &opts);
        assert_eq!((r.r_type, r.total), (0.0, 0.0));
        assert_eq!((r.num_attr_matches, r.num_option_matches), (3, 2));
    }

    #[test]
    fn breakdown_round_trips_through_json() {
        let (p, g, opts) = reward_case();
        let r = reward(&p, &g, 35.0, &opts);
        let json = serde_json::to_string(&r).unwrap();
        let back: RewardBreakdown = serde_json::from_str(&json).unwrap();
        assert_eq!(back, r);
    }
}
