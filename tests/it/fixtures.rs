//! The committed fixtures: regeneration is byte-identical, the data loads, commands work.

use crate::util::{agentq, fixtures_dir, ok_stdout, root};

#[test]
fn committed_fixtures_regenerate_byte_for_byte() {
    let manifest: serde_json::Value = serde_json::from_slice(
        &std::fs::read(fixtures_dir().join("manifest.json")).expect("manifest.json"),
    )
    .expect("manifest is JSON");
    let products = manifest["products"].as_u64().unwrap().to_string();
    let goals = manifest["goals"].as_u64().unwrap().to_string();
    let seed = manifest["seed"].as_u64().unwrap().to_string();
    let tmp = tempfile::tempdir().unwrap();
    let out_dir = tmp.path().join("fx");
    let out = agentq(
        &root(),
        &[
            "fixtures",
            "generate",
            "--products",
            &products,
            "--goals",
            &goals,
            "--seed",
            &seed,
            "--out",
            out_dir.to_str().unwrap(),
        ],
    );
    ok_stdout(&out);
    for f in ["products.jsonl", "goals.jsonl", "manifest.json"] {
        let committed = std::fs::read(fixtures_dir().join(f)).unwrap();
        let fresh = std::fs::read(out_dir.join(f)).unwrap();
        assert!(
            committed == fresh,
            "{f} differs from a fresh `agentq fixtures generate` (regenerate and commit it)"
        );
    }
}

#[test]
fn fixtures_meet_the_size_and_shape_targets() {
    let cat = agentq::store::Catalog::load_dir(&fixtures_dir()).expect("fixtures load");
    assert!(cat.products().len() >= 2000);
    assert!(cat.goals().len() >= 3000);
    let mut cats: Vec<&str> = cat.products().iter().map(|p| p.category.as_str()).collect();
    cats.sort_unstable();
    cats.dedup();
    assert_eq!(cats.len(), 5);
    let test = cat.split(agentq::store::Split::Test);
    assert_eq!(test, 0..500);
    let with_opts = test
        .clone()
        .filter(|&i| !cat.goals()[i].goal_options.is_empty())
        .count();
    assert!(
        with_opts * 100 / 500 >= 60,
        "most goals need options: {with_opts}/500"
    );
    let with_price = test
        .filter(|&i| cat.goals()[i].instruction_text.contains("price lower than"))
        .count();
    assert!(with_price > 400);
}

#[test]
fn tasks_json_lists_test_goals() {
    let out = agentq(
        &root(),
        &["tasks", "--split", "test", "--limit", "3", "--json"],
    );
    let v: serde_json::Value = serde_json::from_str(&ok_stdout(&out)).expect("JSON");
    let items = v.as_array().unwrap();
    assert_eq!(items.len(), 3);
    for (i, t) in items.iter().enumerate() {
        assert_eq!(t["index"].as_u64(), Some(i as u64));
        assert!(t["instruction"].as_str().unwrap().len() > 10);
        assert!(t["asin"].as_str().unwrap().starts_with("B0"));
        assert!(t["price_upper"].as_f64().unwrap() > 0.0);
    }
}

#[test]
fn bad_data_dir_is_a_clear_error() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(tmp.path().join("products.jsonl"), "{\"asin\": 5}\n").unwrap();
    std::fs::write(tmp.path().join("goals.jsonl"), "").unwrap();
    let out = agentq(&root(), &["tasks", "--data", tmp.path().to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("products.jsonl") && err.contains("line 1"),
        "{err}"
    );
}

#[test]
fn webshop_data_imports_through_the_cli() {
    let tmp = tempfile::tempdir().unwrap();
    for e in std::fs::read_dir(root().join("tests/data/webshop")).unwrap() {
        let p = e.unwrap().path();
        if p.is_file() {
            std::fs::copy(&p, tmp.path().join(p.file_name().unwrap())).unwrap();
        }
    }
    let dir = tmp.path().to_str().unwrap();
    let out = agentq(&root(), &["tasks", "--webshop-data", dir, "--json"]);
    let v: serde_json::Value = serde_json::from_str(&ok_stdout(&out)).unwrap();
    assert_eq!(v.as_array().unwrap().len(), 13);
    // The search index was cached next to the data.
    assert!(tmp.path().join(".agentq-cache").read_dir().unwrap().count() >= 1);
    // A second run loads the same goals (seeded price bounds).
    let again = agentq(&root(), &["tasks", "--webshop-data", dir, "--json"]);
    assert_eq!(
        ok_stdout(&again),
        serde_json::to_string_pretty(&v).unwrap() + "\n"
    );
}
