//! Golden tests of the observation path against WebShop's own Python output, and robustness.

use super::*;
use serde_json::Value;
use std::path::PathBuf;

fn data_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/data/observe")
}

fn read(name: &str) -> String {
    let p = data_dir().join(name);
    std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// Equality with the first difference shown.
#[track_caller]
fn same(what: &str, got: &str, want: &str) {
    if got != want {
        let at = got
            .char_indices()
            .zip(want.chars())
            .find(|((_, a), b)| a != b)
            .map_or(got.len().min(want.len()), |((i, _), _)| i);
        let ctx = |s: &str| {
            let lo = floor_boundary(s, at.saturating_sub(60));
            let hi = floor_boundary(s, at + 60);
            s[lo..hi].to_string()
        };
        panic!(
            "{what}: differs at byte {at}\n got: {:?}\nwant: {:?}",
            ctx(got),
            ctx(want)
        );
    }
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .map(|a| {
            a.iter()
                .filter_map(|x| x.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn golden_webshop_pages() {
    let mut pages = 0;
    let mut names: Vec<String> = std::fs::read_dir(data_dir())
        .expect("tests/data/observe")
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter_map(|n| n.strip_suffix(".html").map(str::to_string))
        .collect();
    names.sort();
    for name in names {
        let html = read(&format!("{name}.html"));
        let meta: Value = std::fs::read_to_string(data_dir().join(format!("{name}.meta.json")))
            .ok()
            .and_then(|s| serde_json::from_str(&s).ok())
            .unwrap_or(Value::Null);
        let url = meta["url"].as_str().unwrap_or("");
        let asins = strings(&meta["visited_asins"]);
        let obs = observe_with(
            &html,
            url,
            &ObserveContext {
                visited_asins: &asins,
            },
        );
        same(
            &format!("{name} text"),
            &obs.text,
            &read(&format!("{name}.text.txt")),
        );
        same(
            &format!("{name} text_rich"),
            &obs.text_rich,
            &read(&format!("{name}.text_rich.txt")),
        );
        same(
            &format!("{name} instruction"),
            &obs.instruction,
            &read(&format!("{name}.instruction.txt")),
        );
        let actions: Value =
            serde_json::from_str(&read(&format!("{name}.clickables.json"))).expect("json");
        assert_eq!(
            obs.clickables,
            strings(&actions["clickables"]),
            "{name} clickables"
        );
        assert_eq!(
            Some(obs.has_search_bar),
            actions["has_search_bar"].as_bool(),
            "{name} has_search_bar"
        );
        for (e, c) in obs.elements.iter().zip(&obs.clickables) {
            assert_eq!(&e.label, c, "{name}: elements follow clickables");
        }
        assert_eq!(obs.html, html);
        assert_eq!(obs.url, url);
        pages += 1;
    }
    assert!(pages >= 15, "only {pages} golden pages");
}

#[test]
fn golden_corpus_of_tricky_html() {
    let corpus: Vec<Value> = serde_json::from_str(&read("corpus.json")).expect("corpus.json");
    let mut checked = 0;
    for (i, case) in corpus.iter().enumerate() {
        let html = case["html"].as_str().unwrap_or("");
        let url = case["url"].as_str().unwrap_or("");
        let asins = strings(&case["visited_asins"]);
        // Never panics, even where Python raises.
        let obs = observe_with(
            html,
            url,
            &ObserveContext {
                visited_asins: &asins,
            },
        );
        if case.get("error").is_some() {
            continue;
        }
        let what = format!("corpus[{i}] {html:?}");
        same(
            &format!("{what} text"),
            &obs.text,
            case["text"].as_str().unwrap_or(""),
        );
        same(
            &format!("{what} text_rich"),
            &obs.text_rich,
            case["text_rich"].as_str().unwrap_or(""),
        );
        same(
            &format!("{what} instruction"),
            &obs.instruction,
            case["instruction"].as_str().unwrap_or(""),
        );
        assert_eq!(
            obs.clickables,
            strings(&case["clickables"]),
            "{what} clickables"
        );
        assert_eq!(
            Some(obs.has_search_bar),
            case["has_search_bar"].as_bool(),
            "{what} has_search_bar"
        );
        checked += 1;
    }
    assert!(checked >= 400, "only {checked} corpus cases checked");
}

#[test]
fn text_rich_marks_the_clicked_options() {
    let html = read("ws_item_clicked.html");
    let url = r#"http://127.0.0.1:3000/item_page/fixed_0/B0TEST0006/hair+serum/1/{"color": "white", "size": "10"}"#;
    let obs = observe(&html, url);
    assert!(obs
        .text_rich
        .starts_with("You have clicked 10.\nYou have clicked white.\nInstruction:\n"));
    assert!(obs
        .text_rich
        .contains("  [clicked button] white [clicked button_]\n  [button] navy blue [button_]\n"));
    assert!(
        !obs.text.contains("clicked"),
        "text mode does not show selections"
    );
    let white = obs.clickable("white").expect("white");
    assert_eq!(white.role, Role::Radio);
    assert!(white.selected);
    assert!(!obs.clickable("black | red").expect("black | red").selected);
    assert_eq!(
        white.target.as_deref(),
        Some("/?session_id=fixed_0&asin=B0TEST0006&keywords=hair&keywords=serum&page=1&options=%7B'color'%3A+'white',+'size'%3A+'10'%7D")
    );

    // The same URL percent-encoded (as HTTP and browser drivers see it) marks the same.
    let encoded = "http://127.0.0.1:3000/item_page/fixed_0/B0TEST0006/hair+serum/1/%7B%22color%22%3A%20%22white%22%2C%20%22size%22%3A%20%2210%22%7D";
    assert_eq!(observe(&html, encoded).text_rich, obs.text_rich);
    // Without a selection nothing is marked.
    let plain = observe(
        &html,
        "http://127.0.0.1:3000/item_page/fixed_0/B0TEST0006/hair+serum/1/{}",
    );
    assert!(plain.text_rich.starts_with("Instruction:\n"));
    assert!(!plain.text_rich.contains("[clicked button]"));
}

#[test]
fn visited_product_links_are_clicked_buttons() {
    let html = read("ws_results_p1.html");
    let visited: HashSet<String> = ["B0TEST0012".to_string()].into();
    let obs = observe_with(
        &html,
        "",
        &ObserveContext {
            visited_asins: &visited,
        },
    );
    assert!(obs
        .text_rich
        .contains("\n[clicked button] B0TEST0012 [clicked button_]\n"));
    assert!(obs.text_rich.contains("\n[button] B0TEST0006 [button_]\n"));
    let link = obs.clickable("b0test0012").expect("link");
    assert_eq!(link.role, Role::Link);
    assert!(link.selected);
    assert!(link
        .target
        .as_deref()
        .is_some_and(|t| t.contains("asin=B0TEST0012")));
    assert!(!obs.clickable("b0test0006").expect("link").selected);
    let next = obs.clickable("next >").expect("next");
    assert_eq!(next.role, Role::Button);
    assert_eq!(
        next.target.as_deref(),
        Some("/?session_id=fixed_0&keywords=hair&keywords=serum&page=2")
    );
}

#[test]
fn elements_and_instruction() {
    let obs = observe(&read("ws_search.html"), "");
    assert_eq!(
        obs.instruction,
        "i need a sulfate free hair growth serum, and price lower than 50.00 dollars"
    );
    assert!(obs.has_search_bar);
    let kinds: Vec<(Role, &str)> = obs
        .elements
        .iter()
        .map(|e| (e.role, e.label.as_str()))
        .collect();
    assert_eq!(
        kinds,
        [(Role::Button, "search"), (Role::SearchBox, "search")]
    );
    assert_eq!(obs.elements[1].id, "search_input");
    assert_eq!(obs.elements[0].id, "e0");
    assert_eq!(
        obs.elements[1].target.as_deref(),
        Some("/?session_id=fixed_0")
    );

    // Transfer-app pages carry option URLs in onclick handlers.
    let obs = observe(&read("mock_parse_item_page_ws.html"), "");
    let purple = obs.clickable("purple").expect("purple");
    assert_eq!(purple.id, "radio_color1");
    assert_eq!(
        purple.target.as_deref(),
        Some("/item_page/abc/B09P87V3LZ/%5B%27red%27%2C%20%27basketball%27%2C%20%27shoes%27%5D/1/%7B%27color%27:%20%27purple%27%7D")
    );

    // Generic form controls for form-based sites.
    let html = r#"<form action="/book"><input type="text" name="City" id="city">
        <input name="Guests" placeholder="n"><textarea placeholder="Notes"></textarea>
        <select name="room"><option value="Single">one</option><option selected> Double Bed </option></select>
        <button class="btn" type="submit">Book</button></form>"#;
    let obs = observe(html, "/");
    let got: Vec<(&str, Role, &str, Option<&str>, bool)> = obs
        .elements
        .iter()
        .map(|e| {
            (
                e.id.as_str(),
                e.role,
                e.label.as_str(),
                e.target.as_deref(),
                e.selected,
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            ("e0", Role::Button, "book", Some("/book"), false),
            ("city", Role::TextBox, "city", Some("/book"), false),
            ("e2", Role::TextBox, "guests", Some("/book"), false),
            ("e3", Role::TextBox, "notes", Some("/book"), false),
            ("room", Role::Select, "single", Some("/book"), false),
            ("room", Role::Select, "double bed", Some("/book"), true),
        ]
    );
}

#[test]
fn dict_semantics_of_clickables() {
    let html = r#"<button class="btn">Go</button><a class="product-link" href="/a">B1</a>
        <div class="btn">b1</div><a class="btn" href="/l">GO</a>
        <input type="radio" value="8" name="size" data-url="/s8"><input type="radio" value="8" name="width" data-url="/w8">
        <input type="radio" value="go" data-url="/r">"#;
    let obs = observe(html, "");
    assert_eq!(obs.clickables, ["go", "b1", "8"]);
    // The first position is kept, the last element wins.
    assert_eq!(obs.elements[0].role, Role::Radio);
    assert_eq!(obs.elements[0].target.as_deref(), Some("/r"));
    assert_eq!(obs.elements[1].role, Role::Link);
    assert_eq!(obs.elements[2].target.as_deref(), Some("/w8"));
}

#[test]
fn tricky_text() {
    let t = |h: &str| observe(h, "").text;
    assert_eq!(
        t("<p>&lt; Prev &amp; Next &gt; &#65;&#x42;&#147;x&#150;</p>"),
        "< Prev & Next > AB“x–"
    );
    assert_eq!(t("<p>&foo; &notit; &amp</p>"), "&foo &notit &");
    assert_eq!(
        t("<h2>T</h2>\n  <h4>a<b> b </b>c</h4><li> x </li><label>l</label>"),
        "T [SEP] a [SEP] b [SEP] c [SEP] x [SEP] l"
    );
    assert_eq!(t("<p> </p><p>\t</p><p>\n \n</p>"), " [SEP] ");
    assert_eq!(
        t("<p>a<!-- c -->b<script>s</script><style>y</style>c</p><title>t</title>"),
        "a [SEP] b [SEP] c"
    );
    assert_eq!(t("<p>a<br>b<br/>c</p>"), "a [SEP] b [SEP] c");
    assert_eq!(t("<p>x &#; y &#; <b>z</b></p>"), "x &#; y &#; <b>z</b></p>");
    assert_eq!(t("top level text"), "");
    assert_eq!(t("<div>unclosed <span>deep"), "unclosed [SEP] deep");
    assert_eq!(t("<p>\u{a0}nbsp\u{3000}</p>"), "nbsp");
}

/// A small deterministic generator (no RNG dependency in tests).
fn lcg(state: &mut u64) -> u64 {
    *state = state
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    *state >> 33
}

#[test]
fn garbage_and_truncation_never_panic() {
    // Every prefix (at varied cut points, including inside multi-byte characters) of every
    // golden page.
    for name in [
        "ws_results_p1",
        "ws_item_clicked",
        "ws_done",
        "mock_parse_item_page_ws_desc",
    ] {
        let html = read(&format!("{name}.html"));
        for cut in (0..html.len()).step_by(7) {
            let cut = floor_boundary(&html, cut);
            let obs = observe(&html[..cut], "/x");
            assert!(obs.text.len() <= cut + 16 * cut / 2 + 16);
        }
    }
    // Random soups of HTML-ish tokens and random bytes.
    let pieces = [
        "<",
        ">",
        "</",
        "/>",
        "<!--",
        "-->",
        "<!",
        "<?",
        "<![",
        "]]>",
        "]>",
        "&",
        "&#",
        "&#x",
        ";",
        "=",
        "==",
        "'",
        "\"",
        " ",
        "\n",
        "\t",
        "a",
        "p",
        "btn",
        "class=",
        "<p",
        "<a ",
        "<script>",
        "</script>",
        "<style",
        "<button class=btn>",
        "<label>",
        "<input type=radio value=",
        "é",
        "中",
        "\u{0}",
        "\u{3000}",
        "ſ",
        "İ",
        "<![cdata[",
        "<![if",
        "<!doctype",
        "&amp",
        "&#9999999999999;",
    ];
    let mut st = 7u64;
    for _ in 0..3000 {
        let n = (lcg(&mut st) % 60) as usize;
        let mut s = String::new();
        for _ in 0..n {
            s.push_str(pieces[(lcg(&mut st) as usize) % pieces.len()]);
        }
        let _ = observe(&s, &s);
        let bytes: Vec<u8> = (0..n * 3).map(|_| lcg(&mut st) as u8).collect();
        let lossy = String::from_utf8_lossy(&bytes);
        let _ = observe(&lossy, "");
    }
}

#[test]
fn huge_inputs_finish() {
    let mb = 1 << 20;
    let inputs = [
        read("ws_results_p1.html").repeat(10 * mb / 20_000),
        "<div>".repeat(2 * mb / 5),
        "<b class=\"btn\">x".repeat(mb / 16),
        "<![cdata[x> ".repeat(mb / 12),
        "<a x='>".repeat(mb / 7),
        "&#;<p>".repeat(mb / 6),
        "<!-- ".repeat(mb / 5),
        "</".repeat(mb / 2),
        "x".repeat(10 * mb),
    ];
    for html in &inputs {
        let obs = observe(html, "");
        assert!(obs.text.len() <= 2 * html.len());
    }
    let big = observe(&inputs[0], "");
    assert_eq!(big.clickables.len(), 12);
}

#[test]
fn obs_modes() {
    let obs = observe("<p>a</p>", "/u");
    for m in ObsMode::ALL {
        assert_eq!(m.as_str().parse::<ObsMode>(), Ok(m));
    }
    assert_eq!(obs.render(ObsMode::Text), "a");
    assert_eq!(obs.render(ObsMode::TextRich), "a\n");
    assert_eq!(obs.render(ObsMode::Html), "<p>a</p>");
    assert_eq!(obs.render(ObsMode::Url), "/u");
    assert!("rich".parse::<ObsMode>().is_err());
    assert_eq!(
        serde_json::to_string(&ObsMode::TextRich).ok().as_deref(),
        Some("\"text_rich\"")
    );
}
