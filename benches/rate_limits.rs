//! Cost of charging one request to a credential's budget
//! (`RateLimits::charge`), which every authenticated request pays. Run
//! with `cargo bench --bench rate_limits`.

use std::hint::black_box;

use axum::http::Method;
use criterion::{criterion_group, criterion_main, Criterion};

use purser::api::RateLimits;
use purser::config::Config;
use purser::model::KeyRateLimit;

fn limits() -> RateLimits {
    let mut config = Config::for_tests("sqlite://x".into(), "policies".into(), "t".into());
    // Budgets no benchmark loop spends: every charge is counted and passes.
    (config.rate_limit_reads, config.rate_limit_writes) = (1_000_000, 1_000_000);
    RateLimits::new(&config, None)
}

fn bench(c: &mut Criterion) {
    let l = limits();
    let keys: Vec<String> = (0..1_000).map(|i| format!("key_{i:026}")).collect();
    let own = KeyRateLimit { reads_per_minute: None, writes_per_minute: Some(999_999) };
    let mut i = 0;
    c.bench_function("charge, default budget, 1,000 keys", |b| {
        b.iter(|| {
            i = (i + 1) % keys.len();
            black_box(l.charge_here(&Method::POST, &keys[i], KeyRateLimit::default())).unwrap();
        })
    });
    c.bench_function("charge, a key's own budget, 1,000 keys", |b| {
        b.iter(|| {
            i = (i + 1) % keys.len();
            black_box(l.charge_here(&Method::POST, &keys[i], own)).unwrap();
        })
    });
    let off = RateLimits::new(&Config::for_tests("sqlite://x".into(), "policies".into(), "t".into()), None);
    c.bench_function("charge, limits off", |b| {
        b.iter(|| black_box(off.charge_here(&Method::POST, &keys[0], KeyRateLimit::default())).unwrap())
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
