//! The self-contained HTML report of a run: summary figures, inline SVG charts, a sortable
//! episode table and a step timeline per episode (observation, action, candidates, reward
//! breakdown, screenshots), plus collapsible search trees when a run has them.
//!
//! One file, inline CSS and JS, no network: it opens from disk. Screenshots are referenced
//! relative to the run directory (the report lives in it).

use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

use super::{Episode, LoadedRun, RunSummary};

/// A node of a search tree as the report draws it (the MCTS module writes trees in this
/// shape: `{"action", "visits", "q", "q_hat", "critic_rank", "children": [...]}`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TreeNode {
    /// Action that led here (empty at the root).
    #[serde(default)]
    pub action: String,
    /// Visit count.
    #[serde(default)]
    pub visits: u64,
    /// Mean value.
    #[serde(default)]
    pub q: f64,
    /// Critic score, if ranked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub q_hat: Option<f64>,
    /// Critic rank among siblings, if ranked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub critic_rank: Option<usize>,
    /// Children.
    #[serde(default)]
    pub children: Vec<TreeNode>,
}

/// Optional extras drawn by the report.
#[derive(Debug, Clone, Default)]
pub struct Extras {
    /// Search trees: (title, root).
    pub trees: Vec<(String, TreeNode)>,
    /// Series to plot as line charts.
    pub series: Vec<Series>,
}

/// A line chart's data.
#[derive(Debug, Clone, Default)]
pub struct Series {
    /// Chart title.
    pub title: String,
    /// Label of the x axis.
    pub x_label: String,
    /// Points (x, y).
    pub points: Vec<(f64, f64)>,
}

/// Escapes text for HTML content and attribute values.
pub fn esc(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&#39;"),
            c => o.push(c),
        }
    }
    o
}

const CSS: &str = r#"
:root{--fg:#1d2330;--muted:#667085;--line:#e4e7ec;--bg:#f8f9fb;--ok:#12805c;--bad:#b42318;--acc:#2f5bd3}
*{box-sizing:border-box}body{margin:0;font:14px/1.45 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;color:var(--fg);background:var(--bg)}
header{background:#fff;border-bottom:1px solid var(--line);padding:18px 28px}
h1{font-size:20px;margin:0 0 4px}h2{font-size:16px;margin:28px 0 10px}h3{font-size:14px;margin:0}
main{padding:0 28px 40px;max-width:1280px}
.meta{color:var(--muted);font-size:12.5px}.meta code{background:#eef1f6;padding:1px 4px;border-radius:3px}
.cards{display:flex;gap:12px;flex-wrap:wrap;margin-top:18px}
.card{background:#fff;border:1px solid var(--line);border-radius:8px;padding:10px 16px;min-width:120px}
.card b{display:block;font-size:22px}.card span{color:var(--muted);font-size:12px}
.charts{display:flex;gap:16px;flex-wrap:wrap}.chart{background:#fff;border:1px solid var(--line);border-radius:8px;padding:10px}
table{border-collapse:collapse;background:#fff;width:100%;font-size:13px}
th,td{border-bottom:1px solid var(--line);padding:5px 8px;text-align:left;vertical-align:top}
th{cursor:pointer;user-select:none;background:#f1f3f7;position:sticky;top:0}th:hover{color:var(--acc)}
td.num,th.num{text-align:right;font-variant-numeric:tabular-nums}
.ok{color:var(--ok);font-weight:600}.bad{color:var(--bad)}
details.ep{background:#fff;border:1px solid var(--line);border-radius:8px;margin:8px 0}
details.ep>summary{padding:8px 12px;cursor:pointer}details.ep[open]>summary{border-bottom:1px solid var(--line)}
.steps{padding:8px 12px}.step{border-left:3px solid var(--line);padding:4px 0 10px 12px;margin-left:4px}
.step.err{border-left-color:var(--bad)}.step.win{border-left-color:var(--ok)}
.act{font-family:ui-monospace,SFMono-Regular,Menlo,monospace;background:#eef1f6;padding:1px 6px;border-radius:4px}
pre.obs{white-space:pre-wrap;word-break:break-word;background:#fbfcfe;border:1px solid var(--line);border-radius:6px;padding:6px 8px;max-height:220px;overflow:auto;font-size:12px;margin:6px 0}
.small{font-size:12px;color:var(--muted)}img.shot{max-width:480px;border:1px solid var(--line);border-radius:4px;display:block;margin:6px 0}
table.cands{width:auto;margin:4px 0}table.cands td,table.cands th{padding:2px 8px;cursor:default}
#filter{padding:6px 10px;border:1px solid var(--line);border-radius:6px;width:320px;margin-bottom:8px}
ul.tree{list-style:none;padding-left:18px;margin:2px 0}ul.tree>li>details>summary,ul.tree>li>span{cursor:pointer;font-size:12.5px}
.q{display:inline-block;min-width:44px;text-align:center;border-radius:4px;color:#fff;font-size:11px;margin-right:6px;padding:0 4px}
"#;

const JS: &str = r#"
function sortTable(th){const t=th.closest('table'),i=[...th.parentNode.children].indexOf(th),b=t.tBodies[0];
const asc=th.dataset.asc!=='1';th.dataset.asc=asc?'1':'0';const num=th.classList.contains('num');
[...b.rows].sort((x,y)=>{let a=x.cells[i].dataset.v??x.cells[i].textContent,c=y.cells[i].dataset.v??y.cells[i].textContent;
if(num){a=parseFloat(a);c=parseFloat(c)}return (a>c?1:a<c?-1:0)*(asc?1:-1)}).forEach(r=>b.appendChild(r))}
window.addEventListener('load',()=>{const e=location.hash&&document.getElementById(location.hash.slice(1));if(e&&e.tagName==='DETAILS'){e.open=true;e.scrollIntoView()}});
function filterRows(q){q=q.toLowerCase();document.querySelectorAll('#episodes tbody tr').forEach(r=>{r.style.display=r.textContent.toLowerCase().includes(q)?'':'none'})}
"#;

fn fmt_f(x: f64, digits: usize) -> String {
    format!("{x:.digits$}")
}

/// A bar chart as inline SVG.
fn bar_chart(title: &str, labels: &[String], values: &[f64]) -> String {
    let (w, h, pad_l, pad_b, pad_t) = (360.0, 180.0, 34.0, 28.0, 22.0);
    let max = values.iter().cloned().fold(0.0_f64, f64::max).max(1.0);
    let n = values.len().max(1) as f64;
    let bw = (w - pad_l - 8.0) / n;
    let mut s = format!(
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" role="img" aria-label="{t}"><text x="{pad_l}" y="14" font-size="12" font-weight="600">{t}</text>"#,
        t = esc(title)
    );
    let base = h - pad_b;
    let _ = write!(
        s,
        "<line x1='{pad_l}' y1='{base}' x2='{}' y2='{base}' stroke='#98a2b3'/>",
        w - 4.0
    );
    let _ = write!(
        s,
        "<text x='{}' y='{}' font-size='10' text-anchor='end' fill='#667085'>{}</text>",
        pad_l - 4.0,
        pad_t + 8.0,
        fmt_f(max, 0)
    );
    for (i, v) in values.iter().enumerate() {
        let bh = (base - pad_t) * v / max;
        let x = pad_l + i as f64 * bw + 1.0;
        let _ = write!(
            s,
            "<rect x='{x:.1}' y='{:.1}' width='{:.1}' height='{bh:.1}' fill='#2f5bd3'><title>{}: {}</title></rect>",
            base - bh,
            (bw - 2.0).max(1.0),
            esc(&labels[i]),
            v
        );
        if values.len() <= 20 || i % 2 == 0 {
            let _ = write!(
                s,
                "<text x='{:.1}' y='{}' font-size='10' text-anchor='middle' fill='#667085'>{}</text>",
                x + bw / 2.0 - 1.0,
                base + 12.0,
                esc(&labels[i])
            );
        }
    }
    s.push_str("</svg>");
    s
}

/// A line chart as inline SVG.
pub fn line_chart(title: &str, x_label: &str, points: &[(f64, f64)]) -> String {
    let (w, h, pad_l, pad_b, pad_t) = (360.0, 180.0, 40.0, 28.0, 22.0);
    let mut s = format!(
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" role="img" aria-label="{t}"><text x="{pad_l}" y="14" font-size="12" font-weight="600">{t}</text>"#,
        t = esc(title)
    );
    if points.is_empty() {
        s.push_str("<text x='60' y='90' font-size='12' fill='#667085'>no data</text></svg>");
        return s;
    }
    let (x0, x1) = points
        .iter()
        .fold((f64::MAX, f64::MIN), |(a, b), p| (a.min(p.0), b.max(p.0)));
    let (y0, y1) = points
        .iter()
        .fold((f64::MAX, f64::MIN), |(a, b), p| (a.min(p.1), b.max(p.1)));
    let (x1, y1) = (
        if x1 > x0 { x1 } else { x0 + 1.0 },
        if y1 > y0 { y1 } else { y0 + 1.0 },
    );
    let base = h - pad_b;
    let px = |x: f64| pad_l + (x - x0) / (x1 - x0) * (w - pad_l - 10.0);
    let py = |y: f64| base - (y - y0) / (y1 - y0) * (base - pad_t);
    let _ = write!(
        s,
        "<line x1='{pad_l}' y1='{base}' x2='{}' y2='{base}' stroke='#98a2b3'/><line x1='{pad_l}' y1='{pad_t}' x2='{pad_l}' y2='{base}' stroke='#98a2b3'/>",
        w - 4.0
    );
    for (v, y) in [(y0, base), (y1, pad_t)] {
        let _ = write!(
            s,
            "<text x='{}' y='{}' font-size='10' text-anchor='end' fill='#667085'>{}</text>",
            pad_l - 4.0,
            y + 3.0,
            fmt_f(v, 3)
        );
    }
    let _ = write!(
        s,
        "<text x='{}' y='{}' font-size='10' text-anchor='end' fill='#667085'>{}</text>",
        w - 4.0,
        h - 6.0,
        esc(x_label)
    );
    let path: Vec<String> = points
        .iter()
        .map(|&(x, y)| format!("{:.1},{:.1}", px(x), py(y)))
        .collect();
    let _ = write!(
        s,
        "<polyline fill='none' stroke='#2f5bd3' stroke-width='1.5' points='{}'/>",
        path.join(" ")
    );
    if points.len() <= 40 {
        for &(x, y) in points {
            let _ = write!(
                s,
                "<circle cx='{:.1}' cy='{:.1}' r='2.5' fill='#2f5bd3'><title>{x}: {y}</title></circle>",
                px(x),
                py(y)
            );
        }
    }
    s.push_str("</svg>");
    s
}

/// One series of [`interval_chart`]: a name, a colour and per category an estimate with its
/// 95 % interval (`None`: not measured).
pub struct IntervalSeries<'a> {
    /// Legend name.
    pub name: &'a str,
    /// SVG colour.
    pub colour: &'a str,
    /// Per category: (estimate, interval).
    pub values: Vec<Option<(f64, crate::stats::Interval)>>,
}

/// A dot-and-whisker chart on a 0–100 axis: per category (x) every series' estimate as a
/// dot with its 95 % interval as a bar.
pub fn interval_chart(title: &str, categories: &[String], series: &[IntervalSeries<'_>]) -> String {
    let n = categories.len().max(1) as f64;
    let (pad_l, pad_b, pad_t) = (40.0, 46.0, 34.0);
    let w = (pad_l + 90.0 * n + 20.0).max(360.0);
    let h = 240.0;
    let base = h - pad_b;
    let py = |y: f64| base - y.clamp(0.0, 100.0) / 100.0 * (base - pad_t);
    let slot = (w - pad_l - 20.0) / n;
    let mut s = format!(
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" role="img" aria-label="{t}"><text x="{pad_l}" y="14" font-size="12" font-weight="600">{t}</text>"#,
        t = esc(title)
    );
    for (i, se) in series.iter().enumerate() {
        let _ = write!(
            s,
            "<circle cx='{}' cy='24' r='3' fill='{c}'/><text x='{}' y='27' font-size='10'>{}</text>",
            pad_l + 6.0 + 150.0 * i as f64,
            pad_l + 12.0 + 150.0 * i as f64,
            esc(se.name),
            c = esc(se.colour)
        );
    }
    for v in [0.0, 50.0, 100.0] {
        let _ = write!(
            s,
            "<line x1='{pad_l}' y1='{y:.1}' x2='{}' y2='{y:.1}' stroke='#eaecf0'/><text x='{}' y='{:.1}' font-size='10' text-anchor='end' fill='#667085'>{v}</text>",
            w - 10.0,
            pad_l - 4.0,
            py(v) + 3.0,
            y = py(v)
        );
    }
    let k = series.len().max(1) as f64;
    for (ci, cat) in categories.iter().enumerate() {
        let x0 = pad_l + slot * ci as f64;
        let _ = write!(
            s,
            "<text x='{:.1}' y='{:.1}' font-size='10' text-anchor='middle' fill='#344054'>{}</text>",
            x0 + slot / 2.0,
            base + 16.0,
            esc(cat)
        );
        for (si, se) in series.iter().enumerate() {
            let Some(Some((y, iv))) = se.values.get(ci) else {
                continue;
            };
            let x = x0 + slot * (si as f64 + 1.0) / (k + 1.0);
            let _ = write!(
                s,
                "<line x1='{x:.1}' y1='{:.1}' x2='{x:.1}' y2='{:.1}' stroke='{c}' stroke-width='1.5'/><circle cx='{x:.1}' cy='{:.1}' r='3' fill='{c}'><title>{}: {} ({}–{})</title></circle>",
                py(iv.lo),
                py(iv.hi),
                py(*y),
                esc(se.name),
                fmt_f(*y, 1),
                fmt_f(iv.lo, 1),
                fmt_f(iv.hi, 1),
                c = esc(se.colour)
            );
        }
    }
    s.push_str("</svg>");
    s
}

/// Colour of a value in [0, 1]: red → amber → green.
fn q_colour(q: f64) -> String {
    let q = if q.is_finite() {
        q.clamp(0.0, 1.0)
    } else {
        0.0
    };
    let (r, g) = if q < 0.5 {
        (200.0, 60.0 + 280.0 * q)
    } else {
        (200.0 - 360.0 * (q - 0.5), 200.0)
    };
    format!("rgb({:.0},{:.0},70)", r.max(20.0), g.min(200.0))
}

fn tree_html(node: &TreeNode, out: &mut String, depth: usize) {
    let label = if node.action.is_empty() {
        "(root)".to_string()
    } else {
        node.action.clone()
    };
    let mut line = format!(
        "<span class='q' style='background:{}'>Q {:.2}</span><span class='act'>{}</span> <span class='small'>N={}",
        q_colour(node.q),
        node.q,
        esc(&label),
        node.visits
    );
    if let Some(h) = node.q_hat {
        let _ = write!(line, " · Q̂={h:.2}");
    }
    if let Some(r) = node.critic_rank {
        let _ = write!(line, " · critic #{}", r + 1);
    }
    line.push_str("</span>");
    if node.children.is_empty() {
        let _ = write!(out, "<li><span>{line}</span></li>");
    } else {
        let open = if depth < 2 { " open" } else { "" };
        let _ = write!(
            out,
            "<li><details{open}><summary>{line}</summary><ul class='tree'>"
        );
        for c in &node.children {
            tree_html(c, out, depth + 1);
        }
        out.push_str("</ul></details></li>");
    }
}

fn episode_html(i: usize, e: &Episode, out: &mut String) {
    let s = &e.summary;
    let verdict = if s.success {
        "<span class='ok'>success</span>".to_string()
    } else if let Some(err) = &s.error {
        format!("<span class='bad'>error: {}</span>", esc(err))
    } else {
        format!("reward {:.3}", s.reward)
    };
    let _ = write!(
        out,
        "<details class='ep' id='ep-{i}'><summary><b>#{i}</b> <span class='act'>{}</span> {} · {} steps · {} <div class='small'>{}</div></summary><div class='steps'>",
        esc(&e.header.task),
        verdict,
        s.steps,
        esc(&e.header.policy),
        esc(&e.header.instruction)
    );
    for st in &e.steps {
        let class = if st.info.error.is_some() {
            "step err"
        } else if st.reward == 1.0 {
            "step win"
        } else {
            "step"
        };
        let _ = write!(
            out,
            "<div class='{class}'><div><b>step {}</b> <span class='act'>{}</span> <span class='small'>reward {} · policy {:.1} ms · env {:.1} ms{}{}</span></div>",
            st.index,
            esc(&st.action),
            st.reward,
            st.timings.policy_ms,
            st.timings.env_ms,
            if st.terminated { " · terminated" } else { "" },
            if st.truncated { " · truncated" } else { "" },
        );
        if let Some(err) = &st.info.error {
            let _ = write!(out, "<div class='bad small'>invalid: {}</div>", esc(err));
        }
        if let Some(t) = &st.thought {
            let _ = write!(out, "<div class='small'>thought: {}</div>", esc(t));
        }
        if let Some(p) = &st.parse_error {
            let _ = write!(
                out,
                "<div class='bad small'>unparsed output: {}</div>",
                esc(p)
            );
        }
        if let Some(r) = &st.raw_output {
            let _ = write!(
                out,
                "<div class='small'>model output: <code>{}</code></div>",
                esc(r)
            );
        }
        if !st.candidates.is_empty() {
            out.push_str("<table class='cands'><tr><th>candidate</th><th class='num'>log-prob</th><th class='num'>critic rank</th><th class='num'>Q</th></tr>");
            for c in &st.candidates {
                let _ = write!(
                    out,
                    "<tr><td class='act'>{}</td><td class='num'>{}</td><td class='num'>{}</td><td class='num'>{}</td></tr>",
                    esc(&c.action),
                    c.logprob.map(|x| format!("{x:.3}")).unwrap_or_default(),
                    c.critic_rank.map(|x| (x + 1).to_string()).unwrap_or_default(),
                    c.q.map(|x| format!("{x:.3}")).unwrap_or_default()
                );
            }
            out.push_str("</table>");
        }
        let _ = write!(
            out,
            "<div class='small'>{}</div><pre class='obs'>{}</pre>",
            esc(&st.url),
            esc(&st.observation)
        );
        if let Some(p) = &st.screenshot {
            let _ = write!(
                out,
                "<img class='shot' loading='lazy' src='{}' alt='screenshot before step {}'>",
                esc(p),
                st.index
            );
        }
        out.push_str("</div>");
    }
    let _ = write!(
        out,
        "<div class='step'><b>final page</b> <span class='small'>{}</span><pre class='obs'>{}</pre>",
        esc(&s.final_url),
        esc(&s.final_observation)
    );
    if let Some(p) = &s.final_screenshot {
        let _ = write!(
            out,
            "<img class='shot' loading='lazy' src='{}' alt='final page'>",
            esc(p)
        );
    }
    if let Some(d) = &s.reward_detail {
        let (heads, cells) = d.table();
        out.push_str("<table class='cands'><tr>");
        for h in heads {
            let _ = write!(out, "<th>{}</th>", esc(h));
        }
        out.push_str("</tr><tr>");
        for c in cells {
            let _ = write!(out, "<td>{}</td>", esc(&c));
        }
        out.push_str("</tr></table>");
    }
    out.push_str("</div></div></details>");
}

/// Renders the report of a run.
pub fn render(run: &LoadedRun, extras: &Extras) -> String {
    let sum = RunSummary::of(&run.episodes);
    let mut o = String::with_capacity(64 * 1024 + run.episodes.len() * 8 * 1024);
    let title = run
        .config
        .as_ref()
        .map(|c| c.name.clone())
        .unwrap_or_else(|| run.dir.display().to_string());
    let _ = write!(
        o,
        "<!doctype html><html lang='en'><head><meta charset='utf-8'><meta name='viewport' content='width=device-width,initial-scale=1'><title>agentq report · {}</title><style>{CSS}</style><script>{JS}</script></head><body><header><h1>agentq run <code>{}</code></h1><div class='meta'>",
        esc(&title),
        esc(&title)
    );
    if let Some(c) = &run.config {
        let _ = write!(
            o,
            "{} · policy <code>{}</code> · env <code>{}</code> · driver <code>{}</code> · seed {} · data <code>{}</code> · agentq {}",
            esc(&c.command),
            esc(&c.policy),
            esc(&c.env),
            esc(&c.driver),
            c.seed,
            esc(&c.data_hash[..c.data_hash.len().min(12)]),
            esc(&c.agentq_version)
        );
    }
    if !run.damage.is_clean() {
        let _ = write!(
            o,
            "<div class='bad'>episodes file was cut by a crash: {} incomplete episode(s) ignored</div>",
            run.damage.incomplete.len()
        );
    }
    o.push_str("</div><div class='cards'>");
    let cards = [
        ("episodes", sum.episodes.to_string()),
        ("score", fmt_f(sum.score, 1)),
        ("success rate", format!("{}%", fmt_f(sum.success_rate, 1))),
        ("mean steps", fmt_f(sum.mean_steps, 2)),
        (
            "invalid actions",
            format!("{}%", fmt_f(sum.invalid_action_rate, 1)),
        ),
        ("purchased", sum.purchased.to_string()),
        (
            "episode time",
            format!("{} s", fmt_f(sum.episode_ms / 1e3, 1)),
        ),
    ];
    for (k, v) in cards {
        let _ = write!(o, "<div class='card'><b>{v}</b><span>{k}</span></div>");
    }
    o.push_str("</div></header><main><h2>Charts</h2><div class='charts'>");
    let labels: Vec<String> = (0..sum.steps_histogram.len())
        .map(|i| i.to_string())
        .collect();
    let vals: Vec<f64> = sum.steps_histogram.iter().map(|&x| x as f64).collect();
    let _ = write!(
        o,
        "<div class='chart'>{}</div>",
        bar_chart("episodes by steps taken", &labels, &vals)
    );
    let mut bins = [0.0; 11];
    for e in &run.episodes {
        let r = e.summary.reward.clamp(0.0, 1.0);
        bins[(r * 10.0).floor() as usize] += 1.0;
    }
    let rl: Vec<String> = (0..11).map(|i| format!("{:.1}", i as f64 / 10.0)).collect();
    let _ = write!(
        o,
        "<div class='chart'>{}</div>",
        bar_chart("episodes by reward (bin start)", &rl, &bins)
    );
    for se in &extras.series {
        let _ = write!(
            o,
            "<div class='chart'>{}</div>",
            line_chart(&se.title, &se.x_label, &se.points)
        );
    }
    o.push_str("</div><h2>Episodes</h2><input id='filter' placeholder='filter episodes…' oninput='filterRows(this.value)'>");
    o.push_str("<table id='episodes'><thead><tr><th class='num' onclick='sortTable(this)'>#</th><th onclick='sortTable(this)'>task</th><th class='num' onclick='sortTable(this)'>reward</th><th onclick='sortTable(this)'>result</th><th class='num' onclick='sortTable(this)'>steps</th><th class='num' onclick='sortTable(this)'>invalid</th><th class='num' onclick='sortTable(this)'>ms</th><th onclick='sortTable(this)'>instruction</th></tr></thead><tbody>");
    for (i, e) in run.episodes.iter().enumerate() {
        let s = &e.summary;
        let result = if s.success {
            "<span class='ok'>success</span>"
        } else if s.error.is_some() {
            "<span class='bad'>error</span>"
        } else if s.terminated {
            "bought"
        } else {
            "step limit"
        };
        let _ = write!(
            o,
            "<tr><td class='num' data-v='{i}'><a href='#ep-{i}' onclick=\"document.getElementById('ep-{i}').open=true\">{i}</a></td><td>{}</td><td class='num'>{:.3}</td><td>{result}</td><td class='num'>{}</td><td class='num'>{}</td><td class='num'>{:.0}</td><td>{}</td></tr>",
            esc(&e.header.task),
            s.reward,
            s.steps,
            s.invalid_actions,
            s.wall_ms,
            esc(&e.header.instruction)
        );
    }
    o.push_str("</tbody></table>");
    if !extras.trees.is_empty() {
        o.push_str("<h2>Search trees</h2>");
        for (t, root) in &extras.trees {
            let _ = write!(
                o,
                "<details class='ep'><summary>{}</summary><ul class='tree'>",
                esc(t)
            );
            tree_html(root, &mut o, 0);
            o.push_str("</ul></details>");
        }
    }
    o.push_str("<h2>Episode timelines</h2>");
    for (i, e) in run.episodes.iter().enumerate() {
        episode_html(i, e, &mut o);
    }
    o.push_str("</main></body></html>\n");
    o
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tests::sample_episode;
    use crate::Damage;

    #[test]
    fn report_is_self_contained_and_escaped() {
        let mut ep = sample_episode("a", 1.0);
        ep.steps[0].observation = "<script>alert(1)</script> & \"x\"".into();
        let run = LoadedRun {
            dir: "runs/x".into(),
            config: None,
            episodes: vec![ep, sample_episode("b", 0.25)],
            damage: Damage {
                partial_line: None,
                incomplete: vec![],
            },
        };
        let extras = Extras {
            trees: vec![(
                "tree test:0".into(),
                TreeNode {
                    visits: 3,
                    q: 0.5,
                    children: vec![TreeNode {
                        action: "click[<b>]".into(),
                        visits: 2,
                        q: 1.0,
                        q_hat: Some(0.8),
                        critic_rank: Some(0),
                        children: vec![],
                    }],
                    ..TreeNode::default()
                },
            )],
            series: vec![Series {
                title: "loss".into(),
                x_label: "step".into(),
                points: vec![(0.0, 0.7), (1.0, 0.3)],
            }],
        };
        let html = render(&run, &extras);
        assert!(html.contains("&lt;script&gt;alert(1)&lt;/script&gt; &amp; &quot;x&quot;"));
        assert!(!html.contains("<script>alert"));
        assert!(html.contains("click[&lt;b&gt;]"));
        assert!(html.contains("<svg"));
        assert!(html.contains("screenshots/w0/step-0001.png"));
        // No network: nothing is fetched from elsewhere.
        for bad in [
            "http://cdn",
            "https://",
            "<link ",
            "src='http",
            "src=\"http",
        ] {
            assert!(!html.contains(bad), "report references {bad}");
        }
        assert!(html.contains("62.5"), "score card");
    }
}
