//! Martin Porter's original (1980) suffix-stripping algorithm, as Lucene's
//! `PorterStemFilter` (used by Anserini's `DefaultEnglishAnalyzer`) applies it.
//!
//! This is the classic Porter stemmer, **not** Porter2 / the Snowball "english" stemmer.
//! It follows the variant of Porter's reference C implementation that Lucene's
//! `PorterStemmer` ports, including its two documented departures from the 1980 paper
//! (step 2 maps `-bli` → `-ble` instead of `-abli` → `-able`, and adds `-logi` → `-log`)
//! and its two bug fixes (no step-2/step-4 look-behind on one-letter stems; `-ion` needs a
//! preceding letter).
//!
//! Differences from Lucene, all deliberate and invisible on real input:
//! * Words are processed as UTF-16 code units, exactly as Java sees a `char[]`: the
//!   "length ≤ 2 → unchanged" rule and the consonant/vowel classification (every
//!   non-`aeiouy` unit, surrogates included, is a consonant) therefore match Lucene even for
//!   non-ASCII input. Pure-ASCII words skip the UTF-16 round trip.
//! * The stemmer expects lower-case input (the analyzer lower-cases first, as Lucene does).

use std::borrow::Cow;

/// Stems one lower-case word with the Porter (1980) algorithm as Lucene applies it.
///
/// Words of at most two UTF-16 code units are returned unchanged (Lucene's
/// `PorterStemmer.stem` only runs its steps when the word is longer than two characters).
/// Returns [`Cow::Borrowed`] when the stem equals the input.
///
/// ```
/// use agentq_webshop::porter::stem;
/// assert_eq!(stem("caresses"), "caress");
/// assert_eq!(stem("generalizations"), "gener");
/// assert_eq!(stem("is"), "is");
/// ```
pub fn stem(word: &str) -> Cow<'_, str> {
    if word.is_ascii() {
        if word.len() <= 2 {
            return Cow::Borrowed(word);
        }
        let mut s = Stemmer::new(word.as_bytes().to_vec());
        s.run();
        let out = s.result();
        if out == word.as_bytes() {
            Cow::Borrowed(word)
        } else {
            // Only ASCII letters are ever written, so the result stays ASCII.
            Cow::Owned(String::from_utf8_lossy(out).into_owned())
        }
    } else {
        let units: Vec<u16> = word.encode_utf16().collect();
        if units.len() <= 2 {
            return Cow::Borrowed(word);
        }
        let mut s = Stemmer::new(units.clone());
        s.run();
        let out = s.result();
        if out == units.as_slice() {
            Cow::Borrowed(word)
        } else {
            // The stemmer removes or rewrites ASCII suffix letters only, so it never splits a
            // surrogate pair; the lossy conversion is a belt-and-braces fallback.
            Cow::Owned(String::from_utf16_lossy(out))
        }
    }
}

/// Working state: the word buffer `b`, the end of the current word `k` (inclusive) and the
/// end of the stem before a matched suffix `j` (inclusive; `-1` when the suffix is the
/// whole word). Indices are signed to mirror the algorithm's `j = k - len(suffix)`.
struct Stemmer<T> {
    b: Vec<T>,
    k: isize,
    j: isize,
}

impl<T: Copy + Into<u32> + From<u8> + PartialEq> Stemmer<T> {
    fn new(b: Vec<T>) -> Self {
        let k = b.len() as isize - 1;
        Stemmer { b, k, j: 0 }
    }

    fn result(&self) -> &[T] {
        &self.b[..(self.k + 1) as usize]
    }

    fn run(&mut self) {
        if self.k > 1 {
            self.step1ab();
            self.step1c();
            self.step2();
            self.step3();
            self.step4();
            self.step5();
        }
    }

    fn at(&self, i: isize) -> u32 {
        self.b[i as usize].into()
    }

    fn is(&self, i: isize, c: u8) -> bool {
        self.at(i) == u32::from(c)
    }

    /// True when `b[i]` is a consonant: not a, e, i, o, u, and not a `y` that follows a
    /// consonant (a leading `y` is a consonant).
    fn cons(&self, i: isize) -> bool {
        let c = self.at(i);
        if c == u32::from(b'a')
            || c == u32::from(b'e')
            || c == u32::from(b'i')
            || c == u32::from(b'o')
            || c == u32::from(b'u')
        {
            false
        } else if c == u32::from(b'y') {
            i == 0 || !self.cons(i - 1)
        } else {
            true
        }
    }

    /// The measure m of `b[0..=j]`: the number of VC sequences in `[C](VC)^m[V]`.
    fn m(&self) -> usize {
        let j = self.j;
        let mut n = 0;
        let mut i = 0;
        // Skip the optional leading consonants.
        loop {
            if i > j {
                return n;
            }
            if !self.cons(i) {
                break;
            }
            i += 1;
        }
        i += 1;
        loop {
            // Vowels.
            loop {
                if i > j {
                    return n;
                }
                if self.cons(i) {
                    break;
                }
                i += 1;
            }
            i += 1;
            n += 1;
            // Consonants.
            loop {
                if i > j {
                    return n;
                }
                if !self.cons(i) {
                    break;
                }
                i += 1;
            }
            i += 1;
        }
    }

    /// True when `b[0..=j]` contains a vowel.
    fn vowel_in_stem(&self) -> bool {
        (0..=self.j).any(|i| !self.cons(i))
    }

    /// True when `b[i-1..=i]` is a double consonant.
    fn double_cons(&self, i: isize) -> bool {
        i >= 1 && self.b[i as usize] == self.b[(i - 1) as usize] && self.cons(i)
    }

    /// True when `b[i-2..=i]` is consonant-vowel-consonant and the last consonant is not
    /// w, x or y (`hop`, `fil`, but not `snow`, `box`, `tray`).
    fn cvc(&self, i: isize) -> bool {
        if i < 2 || !self.cons(i) || self.cons(i - 1) || !self.cons(i - 2) {
            return false;
        }
        !(self.is(i, b'w') || self.is(i, b'x') || self.is(i, b'y'))
    }

    /// True when `b[0..=k]` ends with `s`; then sets `j` to the end of the stem before it.
    fn ends(&mut self, s: &[u8]) -> bool {
        let len = s.len() as isize;
        let start = self.k - len + 1;
        if start < 0 {
            return false;
        }
        let matches = s
            .iter()
            .enumerate()
            .all(|(o, &c)| self.is(start + o as isize, c));
        if matches {
            self.j = self.k - len;
        }
        matches
    }

    /// Replaces `b[j+1..=k]` by `s` and moves `k` to the new end.
    fn set_to(&mut self, s: &[u8]) {
        self.b.truncate((self.j + 1) as usize);
        self.b.extend(s.iter().map(|&c| T::from(c)));
        self.k = self.j + s.len() as isize;
    }

    /// `set_to(s)` when the stem before the matched suffix has m > 0.
    fn replace_if_m(&mut self, s: &[u8]) {
        if self.m() > 0 {
            self.set_to(s);
        }
    }

    /// Tries the `(suffix, replacement)` rules in order; the first suffix that matches
    /// decides (its replacement applies only when m > 0 — later rules are not tried).
    fn first_rule(&mut self, rules: &[(&[u8], &[u8])]) {
        for (suffix, rep) in rules {
            if self.ends(suffix) {
                self.replace_if_m(rep);
                return;
            }
        }
    }

    /// Step 1a/1b: plurals and `-ed` / `-ing`.
    fn step1ab(&mut self) {
        if self.is(self.k, b's') {
            if self.ends(b"sses") {
                self.k -= 2;
            } else if self.ends(b"ies") {
                self.set_to(b"i");
            } else if !self.is(self.k - 1, b's') {
                self.k -= 1;
            }
        }
        if self.ends(b"eed") {
            if self.m() > 0 {
                self.k -= 1;
            }
        } else if (self.ends(b"ed") || self.ends(b"ing")) && self.vowel_in_stem() {
            self.k = self.j;
            if self.ends(b"at") {
                self.set_to(b"ate");
            } else if self.ends(b"bl") {
                self.set_to(b"ble");
            } else if self.ends(b"iz") {
                self.set_to(b"ize");
            } else if self.double_cons(self.k) {
                if !(self.is(self.k, b'l') || self.is(self.k, b's') || self.is(self.k, b'z')) {
                    self.k -= 1;
                }
            } else if self.m() == 1 && self.cvc(self.k) {
                self.set_to(b"e");
            }
        }
    }

    /// Step 1c: terminal `y` → `i` when the stem has a vowel.
    fn step1c(&mut self) {
        if self.ends(b"y") && self.vowel_in_stem() {
            let k = self.k as usize;
            self.b[k] = T::from(b'i');
        }
    }

    /// Step 2: double suffixes to single ones (`-ization` → `-ize`, …) when m > 0.
    fn step2(&mut self) {
        if self.k == 0 {
            return;
        }
        let rules: &[(&[u8], &[u8])] = match self.at(self.k - 1) {
            c if c == u32::from(b'a') => &[(b"ational", b"ate"), (b"tional", b"tion")],
            c if c == u32::from(b'c') => &[(b"enci", b"ence"), (b"anci", b"ance")],
            c if c == u32::from(b'e') => &[(b"izer", b"ize")],
            c if c == u32::from(b'l') => &[
                (b"bli", b"ble"),
                (b"alli", b"al"),
                (b"entli", b"ent"),
                (b"eli", b"e"),
                (b"ousli", b"ous"),
            ],
            c if c == u32::from(b'o') => {
                &[(b"ization", b"ize"), (b"ation", b"ate"), (b"ator", b"ate")]
            }
            c if c == u32::from(b's') => &[
                (b"alism", b"al"),
                (b"iveness", b"ive"),
                (b"fulness", b"ful"),
                (b"ousness", b"ous"),
            ],
            c if c == u32::from(b't') => {
                &[(b"aliti", b"al"), (b"iviti", b"ive"), (b"biliti", b"ble")]
            }
            c if c == u32::from(b'g') => &[(b"logi", b"log")],
            _ => &[],
        };
        self.first_rule(rules);
    }

    /// Step 3: `-ic-`, `-full`, `-ness` etc. when m > 0.
    fn step3(&mut self) {
        let rules: &[(&[u8], &[u8])] = match self.at(self.k) {
            c if c == u32::from(b'e') => &[(b"icate", b"ic"), (b"ative", b""), (b"alize", b"al")],
            c if c == u32::from(b'i') => &[(b"iciti", b"ic")],
            c if c == u32::from(b'l') => &[(b"ical", b"ic"), (b"ful", b"")],
            c if c == u32::from(b's') => &[(b"ness", b"")],
            _ => &[],
        };
        self.first_rule(rules);
    }

    /// Step 4: removes `-ant`, `-ence`, … when the remaining stem has m > 1.
    fn step4(&mut self) {
        if self.k == 0 {
            return;
        }
        let matched = match self.at(self.k - 1) {
            c if c == u32::from(b'a') => self.ends(b"al"),
            c if c == u32::from(b'c') => self.ends(b"ance") || self.ends(b"ence"),
            c if c == u32::from(b'e') => self.ends(b"er"),
            c if c == u32::from(b'i') => self.ends(b"ic"),
            c if c == u32::from(b'l') => self.ends(b"able") || self.ends(b"ible"),
            c if c == u32::from(b'n') => {
                // The first matching suffix decides: `-ement` is not retried as `-ment`.
                self.ends(b"ant") || self.ends(b"ement") || self.ends(b"ment") || self.ends(b"ent")
            }
            c if c == u32::from(b'o') => {
                (self.ends(b"ion")
                    && self.j >= 0
                    && (self.is(self.j, b's') || self.is(self.j, b't')))
                    || self.ends(b"ou")
            }
            c if c == u32::from(b's') => self.ends(b"ism"),
            c if c == u32::from(b't') => self.ends(b"ate") || self.ends(b"iti"),
            c if c == u32::from(b'u') => self.ends(b"ous"),
            c if c == u32::from(b'v') => self.ends(b"ive"),
            c if c == u32::from(b'z') => self.ends(b"ize"),
            _ => false,
        };
        if matched && self.m() > 1 {
            self.k = self.j;
        }
    }

    /// Step 5: removes a final `-e` (m > 1, or m = 1 and not after cvc) and `-ll` → `-l`
    /// when m > 1 (the measure is taken over the word as it was on entry, as in Lucene).
    fn step5(&mut self) {
        self.j = self.k;
        if self.is(self.k, b'e') {
            let a = self.m();
            if a > 1 || (a == 1 && !self.cvc(self.k - 1)) {
                self.k -= 1;
            }
        }
        if self.is(self.k, b'l') && self.double_cons(self.k) && self.m() > 1 {
            self.k -= 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Classic pairs from Porter's paper and his published vocabulary/output lists.
    const PAIRS: &[(&str, &str)] = &[
        // Step 1a.
        ("caresses", "caress"),
        ("ponies", "poni"),
        ("ties", "ti"),
        ("caress", "caress"),
        ("cats", "cat"),
        // Step 1b.
        ("feed", "feed"),
        ("agreed", "agre"),
        ("plastered", "plaster"),
        ("bled", "bled"),
        ("motoring", "motor"),
        ("sing", "sing"),
        ("conflated", "conflat"),
        ("troubled", "troubl"),
        ("sized", "size"),
        ("hopping", "hop"),
        ("tanned", "tan"),
        ("falling", "fall"),
        ("hissing", "hiss"),
        ("fizzed", "fizz"),
        ("failing", "fail"),
        ("filing", "file"),
        // Step 1c.
        ("happy", "happi"),
        ("sky", "sky"),
        // Step 2.
        ("relational", "relat"),
        ("conditional", "condit"),
        ("rational", "ration"),
        ("valenci", "valenc"),
        ("hesitanci", "hesit"),
        ("digitizer", "digit"),
        ("conformabli", "conform"),
        ("radicalli", "radic"),
        ("differentli", "differ"),
        ("vileli", "vile"),
        ("analogousli", "analog"),
        ("vietnamization", "vietnam"),
        ("predication", "predic"),
        ("operator", "oper"),
        ("feudalism", "feudal"),
        ("decisiveness", "decis"),
        ("hopefulness", "hope"),
        ("callousness", "callous"),
        ("formaliti", "formal"),
        ("sensitiviti", "sensit"),
        ("sensibiliti", "sensibl"),
        // Step 3.
        ("triplicate", "triplic"),
        ("formative", "form"),
        ("formalize", "formal"),
        ("electriciti", "electr"),
        ("electrical", "electr"),
        ("hopeful", "hope"),
        ("goodness", "good"),
        // Step 4.
        ("revival", "reviv"),
        ("allowance", "allow"),
        ("inference", "infer"),
        ("airliner", "airlin"),
        ("gyroscopic", "gyroscop"),
        ("adjustable", "adjust"),
        ("defensible", "defens"),
        ("irritant", "irrit"),
        ("replacement", "replac"),
        ("adjustment", "adjust"),
        ("dependent", "depend"),
        ("adoption", "adopt"),
        ("homologou", "homolog"),
        ("communism", "commun"),
        ("activate", "activ"),
        ("angulariti", "angular"),
        ("homologous", "homolog"),
        ("effective", "effect"),
        ("bowdlerize", "bowdler"),
        // Step 5.
        ("probate", "probat"),
        ("rate", "rate"),
        ("cease", "ceas"),
        ("controll", "control"),
        ("roll", "roll"),
        // Several steps.
        ("generalizations", "gener"),
        ("oscillators", "oscil"),
    ];

    #[test]
    fn classic_pairs() {
        for (word, want) in PAIRS {
            assert_eq!(stem(word), *want, "stem({word:?})");
        }
    }

    #[test]
    fn lucene_departures_from_the_paper() {
        // `-bli` → `-ble` (the paper has `-abli` → `-able`) and `-logi` → `-log`.
        assert_eq!(stem("possibli"), "possibl");
        assert_eq!(stem("archaeologi"), "archaeolog");
        assert_eq!(stem("analogi"), "analog");
        // Bug 2 fix: a bare `ion` has no preceding letter to test.
        assert_eq!(stem("ion"), "ion");
        // `-ement` matched first: `cement` keeps its ending (m of `c` is 0).
        assert_eq!(stem("cement"), "cement");
    }

    #[test]
    fn product_vocabulary() {
        let pairs = [
            ("shoes", "shoe"),
            ("running", "run"),
            ("women", "women"),
            ("sneakers", "sneaker"),
            ("batteries", "batteri"),
            ("wireless", "wireless"),
            ("headphones", "headphon"),
            ("organic", "organ"),
            ("chocolate", "chocol"),
            ("comfortable", "comfort"),
            ("waterproof", "waterproof"),
            ("lightweight", "lightweight"),
            ("dresses", "dress"),
            ("easy", "easi"),
            ("ounce", "ounc"),
            ("pack", "pack"),
        ];
        for (word, want) in pairs {
            assert_eq!(stem(word), want, "stem({word:?})");
        }
    }

    #[test]
    fn short_words_are_unchanged() {
        // Lucene only stems words longer than two characters.
        for w in ["", "a", "is", "as", "ys", "ed", "ss"] {
            assert_eq!(stem(w), w);
            assert!(matches!(stem(w), Cow::Borrowed(_)));
        }
        // Three letters is enough to stem.
        assert_eq!(stem("its"), "it");
        assert_eq!(stem("ies"), "i");
        assert_eq!(stem("ing"), "ing");
        assert_eq!(stem("eed"), "eed");
    }

    #[test]
    fn unchanged_words_borrow() {
        assert!(matches!(stem("caress"), Cow::Borrowed(_)));
        assert!(matches!(stem("sky"), Cow::Borrowed(_)));
        assert!(matches!(stem("cats"), Cow::Owned(_)));
        // Same length but a letter changed (y → i) must not borrow.
        assert!(matches!(stem("happy"), Cow::Owned(_)));
    }

    #[test]
    fn non_ascii_words() {
        // Non-letters count as consonants; suffixes still come off.
        assert_eq!(stem("cafés"), "café");
        assert_eq!(stem("naïveness"), "naïv");
        assert_eq!(stem("über"), "über");
        // No vowel before the final e: m = 0, the e stays.
        assert_eq!(stem("größe"), "größe");
        // Length counts UTF-16 units, as in Java: two units are "short", an astral
        // character plus one letter is three units and gets stemmed.
        assert_eq!(stem("ás"), "ás");
        assert_eq!(stem("😀s"), "😀");
        assert_eq!(stem("😀😀s"), "😀😀");
        // Digits are consonants.
        assert_eq!(stem("100s"), "100");
        assert_eq!(stem("3.5"), "3.5");
    }

    #[test]
    fn never_panics_on_odd_input() {
        let odd = [
            "sss", "yyy", "yyyyying", "eeed", "ssses", "iesies", "ying", "eying", "ation",
            "ational", "ization", "izer", "alli", "ousli", "ement", "ment", "ent", "ee", "eee",
            "ll", "lll", "'s'", "x-y", "ions", "sion", "tion", "bli", "logi",
        ];
        for w in odd {
            let _ = stem(w);
        }
    }
}
