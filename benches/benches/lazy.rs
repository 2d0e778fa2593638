//! Lazy versus eager compilation: start-up of a large generated module (`Module::new` +
//! instantiate + first call) and the cost of a wasm->wasm call once warm.

use criterion::{criterion_group, criterion_main, Criterion};
use std::hint::black_box;
use std::time::Duration;
use wjit::{Config, Engine, Instance, Module, Store};

/// `n` functions with straight-line integer bodies of about `ops` operators each, plus an
/// exported `main` that calls function 0, and an exported `loop_calls` that calls
/// `$leaf` `count` times (wasm->wasm call cost).
fn large_module(n: u32, ops: u32) -> String {
    let mut wat = String::from("(module (memory 1)\n");
    for i in 0..n {
        wat.push_str(&format!(
            "(func $f{i} (param i32) (result i32) (local i32)\n"
        ));
        for k in 0..ops / 6 {
            wat.push_str(&format!(
                "local.get 0 i32.const {k} i32.add i32.const 3 i32.mul local.set 1 local.get 1 local.set 0\n"
            ));
        }
        wat.push_str("local.get 0)\n");
    }
    wat.push_str(
        r#"(func $leaf (param i32) (result i32) local.get 0 i32.const 1 i32.add)
        (func (export "main") (param i32) (result i32) local.get 0 call $f0)
        (func (export "loop_calls") (param i32) (result i32) (local i32)
          (loop
            local.get 1 call $leaf local.set 1
            local.get 0 i32.const 1 i32.sub local.tee 0 br_if 0)
          local.get 1))"#,
    );
    wat
}

fn lazy(c: &mut Criterion) {
    let wasm = wat_to_wasm(&large_module(20_000, 120));
    eprintln!("large module: {} bytes", wasm.len());
    let lazy = Engine::default();
    let eager = Engine::new(Config::new().lazy_compilation(false)).expect("engine");
    let mut group = c.benchmark_group("startup");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(10));
    for (name, engine) in [("lazy", &lazy), ("eager", &eager)] {
        group.bench_function(name, |b| {
            b.iter(|| {
                let module = Module::new(engine, &wasm).expect("compile");
                let mut store = Store::new(engine, ());
                let inst = Instance::new(&mut store, &module, &[]).expect("instantiate");
                let main = inst
                    .get_typed_func::<i32, i32>(&store, "main")
                    .expect("main");
                black_box(main.call(&mut store, 1).expect("call"))
            })
        });
    }
    group.finish();

    let mut group = c.benchmark_group("warm_calls_x1000");
    for (name, engine) in [("lazy", &lazy), ("eager", &eager)] {
        let module = Module::new(engine, &wasm).expect("compile");
        let mut store = Store::new(engine, ());
        let inst = Instance::new(&mut store, &module, &[]).expect("instantiate");
        let f = inst
            .get_typed_func::<i32, i32>(&store, "loop_calls")
            .expect("loop_calls");
        f.call(&mut store, 10).expect("warm up");
        group.bench_function(name, |b| {
            b.iter(|| f.call(&mut store, black_box(1000)).expect("call"))
        });
    }
    group.finish();
}

fn wat_to_wasm(text: &str) -> Vec<u8> {
    // `Module::new` accepts text too, but the start-up benchmark should not time parsing.
    wat::parse_str(text).expect("valid text")
}

criterion_group!(benches, lazy);
criterion_main!(benches);
