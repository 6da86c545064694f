//! Engine benches (placeholder).
fn main() {}
