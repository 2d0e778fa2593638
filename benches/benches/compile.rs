//! Compile throughput: `Module::new` on each benchmark kernel, in bytes of wasm per second.

mod common;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use std::hint::black_box;
use std::time::Duration;
use wjit::{Config, Engine, Module};

fn compile(c: &mut Criterion) {
    let Some(kernels) = common::kernels() else {
        return;
    };
    let engine = Engine::new(&Config::new()).expect("engine");
    let mut group = c.benchmark_group("compile");
    for k in &kernels {
        if let Err(e) = Module::new(&engine, &k.wasm) {
            eprintln!("skipping compile/{}: {e}", k.name);
            continue;
        }
        group.throughput(Throughput::Bytes(k.wasm.len() as u64));
        group.bench_with_input(BenchmarkId::from_parameter(&k.name), &k.wasm, |b, wasm| {
            b.iter(|| Module::new(&engine, black_box(wasm)).expect("compile"))
        });
    }
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    targets = compile
}
criterion_main!(benches);
