//! WebShop's colour normalisation (`web_agent_site/engine/normalize.py`), applied to both
//! purchased and goal option values before the option reward compares them.
//!
//! [`COLOR_SET`] is WebShop's list, byte for byte and in its order; order matters because the
//! first listed colour that occurs wins. The quirks are kept on purpose, since the reward
//! depends on them: the test is a plain, case-sensitive substring test ("ash" is found in
//! "washed", "tan" in "standard", "red" in "bored"), and the colour found replaces the whole
//! value ("navy blue" → "blue", "rose gold" → "gold").
//!
//! Deviation in form only: for synthetic goals WebShop passes `(name, value)` tuples to the
//! same function, where `in` means tuple membership; [`normalize_color_pair`] states that
//! case separately instead of relying on a dynamic type.

/// WebShop's `COLOR_SET`: the 102 colour words, in WebShop's order.
pub const COLOR_SET: [&str; 102] = [
    "alabaster",
    "apricot",
    "aqua",
    "ash",
    "asphalt",
    "azure",
    "banana",
    "beige",
    "black",
    "blue",
    "blush",
    "bordeaux",
    "bronze",
    "brown",
    "burgundy",
    "camel",
    "camo",
    "caramel",
    "champagne",
    "charcoal",
    "cheetah",
    "chestnut",
    "chocolate",
    "christmas",
    "coffee",
    "cognac",
    "copper",
    "coral",
    "cranberry",
    "cream",
    "crystal",
    "dark",
    "denim",
    "eggplant",
    "elephant",
    "espresso",
    "fuchsia",
    "gold",
    "granite",
    "grape",
    "graphite",
    "grass",
    "gray",
    "green",
    "grey",
    "heather",
    "indigo",
    "ivory",
    "ivy",
    "khaki",
    "lavender",
    "lemon",
    "leopard",
    "light",
    "lilac",
    "lime",
    "magenta",
    "maroon",
    "mauve",
    "merlot",
    "midnight",
    "mint",
    "mocha",
    "multicolor",
    "mushroom",
    "mustard",
    "natural",
    "navy",
    "nude",
    "olive",
    "orange",
    "peach",
    "pewter",
    "pink",
    "plum",
    "purple",
    "rainbow",
    "red",
    "rose",
    "royal",
    "rust",
    "sand",
    "sapphire",
    "seashell",
    "silver",
    "skull",
    "slate",
    "steel",
    "stone",
    "stonewash",
    "sunflower",
    "tan",
    "taupe",
    "teal",
    "tiger",
    "turquoise",
    "violet",
    "walnut",
    "wheat",
    "white",
    "wine",
    "yellow",
];

/// WebShop `normalize_color(s)` for a string: the first entry of [`COLOR_SET`] that occurs in
/// `s` as a substring (case-sensitive), or `s` itself when none does.
pub fn normalize_color(s: &str) -> &str {
    COLOR_SET
        .iter()
        .find(|c| s.contains(*c))
        .copied()
        .unwrap_or(s)
}

/// WebShop `normalize_color((name, value))` for a synthetic goal option, where Python's `in`
/// tests tuple membership: the first entry of [`COLOR_SET`] equal to `name` or to `value`,
/// or `None` when the pair is left as it is (WebShop then compares the tuple's `repr`).
pub fn normalize_color_pair(name: &str, value: &str) -> Option<&'static str> {
    COLOR_SET
        .iter()
        .find(|&&c| c == name || c == value)
        .copied()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn color_set_is_webshops_list() {
        assert_eq!(COLOR_SET.len(), 102);
        assert_eq!(COLOR_SET[0], "alabaster");
        assert_eq!(COLOR_SET[3], "ash");
        assert_eq!(COLOR_SET[101], "yellow");
        let mut unique = COLOR_SET.to_vec();
        unique.sort_unstable();
        unique.dedup();
        assert_eq!(unique.len(), 102);
        // WebShop's list happens to be alphabetical, so first-match order is alphabetical
        // order: "ash" beats "denim", "blue" beats "navy", "stone" beats "stonewash".
        assert!(COLOR_SET.windows(2).all(|w| w[0] < w[1]));
        let pos = |c: &str| COLOR_SET.iter().position(|x| *x == c).unwrap();
        assert!(pos("ash") < pos("denim"));
        assert!(pos("blue") < pos("navy"));
        assert!(pos("gold") < pos("rose"));
        assert!(pos("lavender") < pos("violet"));
        assert!(pos("stone") < pos("stonewash"));
    }

    /// Expected values from WebShop's `normalize_color` run under CPython.
    #[test]
    fn substring_quirks_match_webshop() {
        let cases = [
            ("washed denim", "ash"),
            ("navy blue", "blue"),
            ("rose gold", "gold"),
            ("violet lavender", "lavender"),
            ("standard", "tan"),
            ("bored", "red"),
            ("light grey", "grey"),
            ("dark navy", "dark"),
            ("stonewash", "ash"),
            ("white | black", "black"),
            ("red wine", "red"),
            ("multicolor", "multicolor"),
            ("grey", "grey"),
        ];
        for (s, want) in cases {
            assert_eq!(normalize_color(s), want, "{s:?}");
        }
    }

    #[test]
    fn no_colour_leaves_value_unchanged() {
        for s in ["XL", "pack of 12", "", "cool powder snow", "Black"] {
            assert_eq!(normalize_color(s), s, "{s:?}");
        }
    }

    /// Python: `normalize_color(("color", "grey"))` is `"grey"`, but
    /// `normalize_color(("color", "light grey"))` is the tuple itself.
    #[test]
    fn pairs_use_tuple_membership() {
        assert_eq!(normalize_color_pair("color", "grey"), Some("grey"));
        assert_eq!(normalize_color_pair("grey", "x"), Some("grey"));
        assert_eq!(normalize_color_pair("size", "XL"), None);
        assert_eq!(normalize_color_pair("color", "light grey"), None);
        assert_eq!(normalize_color_pair("color", "Grey"), None);
    }
}
