//! A prefix cache shared across calls: a radix tree over token sequences whose edges hold
//! the keys and values ([`KvCache`] segments) of their tokens, bounded in bytes and evicted
//! least-recently-used leaf first.
//!
//! A prompt that starts like one seen before (the same system text and instruction, the
//! same page revisited by tree search, the critic's prompt over a page the policy just
//! read) is computed only from where it differs: [`PrefixCache::lookup`] returns the chain
//! of segments covering the longest cached prefix, the caller runs the rest of the prompt
//! over that chain ([`super::Seq::prefix`]) and hands the new positions back with
//! [`PrefixCache::insert`]. Keys and values of a position depend only on the tokens up to
//! it, and the decoder's arithmetic does not depend on how a sequence is split into
//! segments, so a prompt run over cached segments gives the same logits bit for bit as the
//! same prompt run cold (tested).
//!
//! Segments are reference-counted: a chain handed out stays valid while the tree splits or
//! evicts the nodes it came from.

use std::sync::Arc;

use super::KvCache;

/// Counters of a [`PrefixCache`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct PrefixStats {
    /// Lookups made.
    pub lookups: u64,
    /// Prompt tokens asked for in lookups.
    pub tokens: u64,
    /// Of those, tokens found cached (not recomputed).
    pub hits: u64,
    /// Tokens evicted to stay within the budget.
    pub evicted: u64,
    /// Tokens held now.
    pub held: u64,
    /// Bytes held now.
    pub bytes: u64,
}

impl PrefixStats {
    /// Share of looked-up tokens that were cached (0 when nothing was looked up).
    pub fn hit_rate(&self) -> f64 {
        if self.tokens == 0 {
            0.0
        } else {
            self.hits as f64 / self.tokens as f64
        }
    }
}

struct Node {
    /// The edge's tokens (empty only for the root).
    tokens: Vec<u32>,
    /// Their keys and values.
    kv: Arc<KvCache>,
    parent: usize,
    children: Vec<usize>,
    /// Clock of the last lookup or insert that went through this node.
    used: u64,
}

/// A longest cached prefix: its length and the segments covering it, in order.
#[derive(Clone, Default)]
pub struct Hit {
    /// Tokens covered.
    pub len: usize,
    /// The segments (their lengths sum to `len`).
    pub segments: Vec<Arc<KvCache>>,
}

impl Hit {
    /// The segments as [`super::Seq::prefix`] takes them.
    pub fn refs(&self) -> Vec<&KvCache> {
        self.segments.iter().map(|s| &**s).collect()
    }
}

/// The radix tree (see the module documentation).
pub struct PrefixCache {
    /// Slab of nodes; `0` is the root. `None`: a free slot.
    nodes: Vec<Option<Node>>,
    free: Vec<usize>,
    budget: usize,
    clock: u64,
    stats: PrefixStats,
}

impl PrefixCache {
    /// An empty cache holding at most `budget` bytes of keys and values (0: caches nothing).
    pub fn new(budget: usize) -> PrefixCache {
        PrefixCache {
            nodes: vec![Some(Node {
                tokens: Vec::new(),
                kv: Arc::new(KvCache::default()),
                parent: 0,
                children: Vec::new(),
                used: 0,
            })],
            free: Vec::new(),
            budget,
            clock: 0,
            stats: PrefixStats::default(),
        }
    }

    /// The byte budget.
    pub fn budget(&self) -> usize {
        self.budget
    }

    /// Counters.
    pub fn stats(&self) -> PrefixStats {
        self.stats
    }

    /// Drops every cached segment (the counters stay).
    pub fn clear(&mut self) {
        let stats = self.stats;
        *self = PrefixCache::new(self.budget);
        self.stats = PrefixStats {
            held: 0,
            bytes: 0,
            ..stats
        };
    }

    fn node(&self, i: usize) -> &Node {
        self.nodes[i].as_ref().expect("invariant: live node index")
    }

    fn node_mut(&mut self, i: usize) -> &mut Node {
        self.nodes[i].as_mut().expect("invariant: live node index")
    }

    fn child_starting(&self, at: usize, t: u32) -> Option<usize> {
        self.node(at)
            .children
            .iter()
            .copied()
            .find(|&c| self.node(c).tokens.first() == Some(&t))
    }

    fn alloc(&mut self, n: Node) -> usize {
        match self.free.pop() {
            Some(i) => {
                self.nodes[i] = Some(n);
                i
            }
            None => {
                self.nodes.push(Some(n));
                self.nodes.len() - 1
            }
        }
    }

    /// Splits node `i` after `k` of its tokens (0 < k < len): `i` keeps the first `k`, a new
    /// child takes the rest and `i`'s children.
    fn split(&mut self, i: usize, k: usize) {
        let (tail_tokens, tail_kv, children, used) = {
            let n = self.node_mut(i);
            let tail_tokens = n.tokens.split_off(k);
            let tail_kv = n.kv.slice(k, k + tail_tokens.len());
            n.kv = Arc::new(n.kv.slice(0, k));
            (
                tail_tokens,
                tail_kv,
                std::mem::take(&mut n.children),
                n.used,
            )
        };
        let t = self.alloc(Node {
            tokens: tail_tokens,
            kv: Arc::new(tail_kv),
            parent: i,
            children: children.clone(),
            used,
        });
        for c in children {
            self.node_mut(c).parent = t;
        }
        self.node_mut(i).children = vec![t];
    }

    /// Walks `tokens` from the root, splitting the node where the match ends inside an
    /// edge, and touching every node on the way. Returns the node the walk ends at and the
    /// tokens matched (at most `max`).
    fn walk(&mut self, tokens: &[u32], max: usize) -> (usize, usize) {
        let max = max.min(tokens.len());
        let (mut at, mut n) = (0usize, 0usize);
        self.node_mut(0).used = self.clock;
        while n < max {
            let Some(c) = self.child_starting(at, tokens[n]) else {
                break;
            };
            let edge = &self.node(c).tokens;
            let common = edge
                .iter()
                .zip(&tokens[n..max])
                .take_while(|(a, b)| a == b)
                .count();
            if common < edge.len() {
                self.split(c, common);
            }
            self.node_mut(c).used = self.clock;
            at = c;
            n += common;
        }
        (at, n)
    }

    /// The longest cached prefix of `tokens`, at most `max` tokens long (a caller that
    /// needs the logits of the last prompt token passes `tokens.len() - 1`).
    pub fn lookup(&mut self, tokens: &[u32], max: usize) -> Hit {
        self.clock += 1;
        self.stats.lookups += 1;
        self.stats.tokens += tokens.len() as u64;
        let (mut at, len) = self.walk(tokens, max);
        self.stats.hits += len as u64;
        let mut segments = Vec::new();
        while at != 0 {
            let n = self.node(at);
            segments.push(n.kv.clone());
            at = n.parent;
        }
        segments.reverse();
        Hit { len, segments }
    }

    /// Caches `kv`, the keys and values of `tokens[start..]` computed over the prefix
    /// `tokens[..start]`. Positions the tree already holds are kept as they are; when the
    /// prefix is no longer cached whole (evicted meanwhile), nothing is added.
    pub fn insert(&mut self, tokens: &[u32], start: usize, kv: &KvCache) {
        if self.budget == 0 || kv.is_empty() || start + kv.len() > tokens.len() {
            return;
        }
        let tokens = &tokens[..start + kv.len()];
        self.clock += 1;
        let (at, n) = self.walk(tokens, tokens.len());
        if n < start || n == tokens.len() {
            return;
        }
        let piece = kv.slice(n - start, kv.len());
        let bytes = piece.used_bytes();
        self.stats.held += piece.len() as u64;
        self.stats.bytes += bytes as u64;
        let id = self.alloc(Node {
            tokens: tokens[n..].to_vec(),
            kv: Arc::new(piece),
            parent: at,
            children: Vec::new(),
            used: self.clock,
        });
        self.node_mut(at).children.push(id);
        self.evict();
    }

    /// Removes least-recently-used leaves until the held bytes fit the budget.
    fn evict(&mut self) {
        while self.stats.bytes as usize > self.budget {
            let leaf = self
                .nodes
                .iter()
                .enumerate()
                .skip(1)
                .filter_map(|(i, n)| n.as_ref().map(|n| (i, n)))
                .filter(|(_, n)| n.children.is_empty())
                .min_by_key(|(_, n)| n.used)
                .map(|(i, _)| i);
            let Some(i) = leaf else { break };
            let n = self.nodes[i].take().expect("invariant: live leaf");
            self.free.push(i);
            self.node_mut(n.parent).children.retain(|&c| c != i);
            self.stats.evicted += n.tokens.len() as u64;
            self.stats.held -= n.tokens.len() as u64;
            self.stats.bytes -= n.kv.used_bytes() as u64;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cpu::{CpuModel, CpuOptions, Logits, Seq};
    use crate::llama::{Config, Llama};
    use candle_core::Device;

    fn model() -> (Llama, CpuModel) {
        let m = Llama::random(Config::tiny(64), 11, false, &Device::Cpu).unwrap();
        let q = CpuModel::new(&m, CpuOptions::default()).unwrap();
        (m, q)
    }

    /// Runs `tokens` after `prefix` into a fresh cache: the last token's logits and the
    /// cache of the new positions.
    fn extend(q: &CpuModel, prefix: &[&KvCache], tokens: &[u32]) -> (Vec<f32>, KvCache) {
        let mut own = KvCache::new(q.config());
        let lg = q
            .forward(&mut [Seq {
                prefix,
                cache: &mut own,
                tokens,
                logits: Logits::Last,
            }])
            .unwrap()
            .remove(0);
        (lg, own)
    }

    /// Runs `tokens` through the cache as the engine does: reuse, compute the rest, insert;
    /// returns the last token's logits and how many tokens were reused.
    fn run(q: &CpuModel, pc: &mut PrefixCache, tokens: &[u32]) -> (Vec<f32>, usize) {
        let hit = pc.lookup(tokens, tokens.len() - 1);
        let (lg, own) = extend(q, &hit.refs(), &tokens[hit.len..]);
        pc.insert(tokens, hit.len, &own);
        (lg, hit.len)
    }

    fn cold(q: &CpuModel, tokens: &[u32]) -> Vec<f32> {
        extend(q, &[], tokens).0
    }

    #[test]
    fn reused_prefixes_give_the_cold_logits_bit_for_bit() {
        let (_m, q) = model();
        let mut pc = PrefixCache::new(64 << 20);
        let a: Vec<u32> = vec![1, 2, 3, 4, 5, 6, 7, 8];
        let b: Vec<u32> = vec![1, 2, 3, 4, 9, 10]; // diverges inside a's edge: a split
        let c: Vec<u32> = vec![1, 2, 3, 4, 9, 10, 11, 12]; // extends b: b reused whole
        let d: Vec<u32> = vec![1, 2, 3, 4, 5, 6, 7, 8]; // a again: all but the last reused
        let e: Vec<u32> = vec![20, 21, 22]; // nothing in common
        let want = [0, 4, 6, 7, 0];
        for (t, w) in [&a, &b, &c, &d, &e].into_iter().zip(want) {
            let (lg, reused) = run(&q, &mut pc, t);
            assert_eq!(reused, w, "{t:?}");
            assert_eq!(lg, cold(&q, t), "{t:?}: bit for bit");
        }
        let s = pc.stats();
        assert_eq!(s.lookups, 5);
        assert_eq!(s.hits, 17);
        assert_eq!(s.tokens, 8 + 6 + 8 + 8 + 3);
        // a, b's 2 new tokens, c's 2 new ones, e: 8 + 2 + 2 + 3 positions held once each
        assert_eq!(s.held, 15);
        assert!((s.hit_rate() - 17.0 / 33.0).abs() < 1e-12);
    }

    #[test]
    fn the_budget_evicts_least_recently_used_leaves_and_chains_stay_valid() {
        let (_m, q) = model();
        let per_token = extend(&q, &[], &[1]).1.used_bytes();
        // room for 10 positions
        let mut pc = PrefixCache::new(10 * per_token);
        let a: Vec<u32> = vec![1, 2, 3, 4, 5, 6];
        let b: Vec<u32> = vec![7, 8, 9, 10, 11, 12];
        run(&q, &mut pc, &a); // holds 6 (a's last token is computed, and cached too)
        let held = pc.lookup(&a, a.len() - 1); // a chain handed out before eviction
        run(&q, &mut pc, &b); // 12 > 10: a (least recently used) goes
        let s = pc.stats();
        assert!(s.bytes as usize <= pc.budget(), "{s:?}");
        assert_eq!(s.held, 6);
        assert_eq!(s.evicted, 6);
        assert_eq!(pc.lookup(&a, 5).len, 0, "a was evicted");
        assert_eq!(pc.lookup(&b, 5).len, 5, "b stays");
        // the chain handed out earlier still computes a's last token correctly
        let (lg, _) = extend(&q, &held.refs(), &a[5..]);
        assert_eq!(lg, cold(&q, &a));
        // a zero budget caches nothing
        let mut none = PrefixCache::new(0);
        run(&q, &mut none, &a);
        assert_eq!(none.lookup(&a, 5).len, 0);
        assert_eq!(none.stats().held, 0);
    }

    #[test]
    fn inserting_after_an_evicted_prefix_adds_nothing() {
        let (_m, q) = model();
        let mut pc = PrefixCache::new(64 << 20);
        let a: Vec<u32> = vec![1, 2, 3, 4];
        let (_, own) = extend(&q, &[], &a[2..]);
        // positions 2.. claimed over a prefix [1, 2] the tree does not hold
        pc.insert(&a, 2, &own);
        assert_eq!(pc.stats().held, 0);
        pc.clear();
        assert_eq!(pc.lookup(&a, 3).len, 0);
    }
}
