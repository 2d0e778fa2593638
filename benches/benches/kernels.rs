//! Generated-code speed: each benchmark kernel's `run(n)` with a small `n` (about 1/20 of the
//! work of params.txt's `n`, which is tuned for ~0.5 s on an optimizing compiler).

mod common;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use std::hint::black_box;
use std::time::Duration;
use wjit::{Config, Engine, Instance, Module, Store};

/// About 1/20 of the work of `n`: most kernels are linear in `n`; fib is exponential
/// (fib(n-6) is ~1/18 of fib(n)) and mandelbrot quadratic.
fn small_n(kernel: &str, n: i32) -> i32 {
    match kernel {
        "fib" => (n - 6).max(1),
        "mandelbrot" => (n * 2 / 9).max(1),
        _ => (n / 20).max(1),
    }
}

fn kernels(c: &mut Criterion) {
    let Some(kernels) = common::kernels() else {
        return;
    };
    let engine = Engine::new(&Config::new()).expect("engine");
    let mut group = c.benchmark_group("kernels");
    for k in &kernels {
        let Some(n) = k.n else {
            eprintln!("skipping kernels/{}: not in params.txt", k.name);
            continue;
        };
        let n = small_n(&k.name, n);
        // One store per kernel: each kernel's memory is freed before the next is set up.
        let mut store = Store::new(&engine, ());
        let run = Module::new(&engine, &k.wasm)
            .and_then(|m| Instance::new(&mut store, &m, &[]))
            .and_then(|i| i.get_typed_func::<i32, i32>(&store, "run"));
        let run = match run {
            Ok(r) => r,
            Err(e) => {
                eprintln!("skipping kernels/{}: {e}", k.name);
                continue;
            }
        };
        group.bench_with_input(BenchmarkId::new(&k.name, n), &n, |b, &n| {
            b.iter(|| run.call(&mut store, black_box(n)).expect("run"))
        });
    }
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3));
    targets = kernels
}
criterion_main!(benches);
