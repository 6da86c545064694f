//! Engine benches: search latency, index build and reward computation, on the committed
//! fixtures and on a generated 50,000-product catalog (`cargo bench --bench engine`).

use std::hint::black_box;
use std::path::Path;

use agentq::store::{fixtures, reward, Catalog, SearchIndex};
use criterion::{criterion_group, criterion_main, Criterion};

fn catalogs() -> Vec<(&'static str, Catalog)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .join("webshop-fixtures");
    let default = Catalog::load_dir(&dir).expect("committed fixtures load");
    let big = fixtures::generate(50_000, 2_000, 7).expect("generate 50k catalog");
    vec![("fixtures", default), ("50k", big)]
}

fn bench(c: &mut Criterion) {
    for (name, cat) in catalogs() {
        let index = SearchIndex::build(&cat);
        let queries: Vec<String> = cat
            .goals()
            .iter()
            .take(200)
            .map(|g| g.instruction_text.to_lowercase())
            .collect();
        let mut g = c.benchmark_group(format!("engine/{name}"));
        g.bench_function("search_instruction_top50", |b| {
            let mut i = 0;
            b.iter(|| {
                i = (i + 1) % queries.len();
                black_box(index.search(black_box(&queries[i]), 50))
            })
        });
        g.bench_function("reward", |b| {
            let goals = cat.goals();
            let mut i = 0;
            b.iter(|| {
                i = (i + 1) % goals.len().min(500);
                let goal = &goals[i];
                let p = cat.product(&goal.asin).expect("target exists");
                let opts: Vec<String> = goal
                    .goal_options
                    .values()
                    .iter()
                    .map(|s| s.to_string())
                    .collect();
                black_box(reward(p, goal, p.price, &opts))
            })
        });
        g.sample_size(10);
        g.bench_function("index_build", |b| {
            b.iter(|| black_box(SearchIndex::build(&cat)))
        });
        g.finish();
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
