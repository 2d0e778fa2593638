//! Call overhead across the host/wasm boundary.
//!
//! - `call/typed`, `call/untyped`: host -> wasm, an identity function called through
//!   `TypedFunc::call(&mut store, ..)` and through the untyped `Func::call(&mut store, ..)`.
//! - `call/wasm_to_host/*`: wasm -> host, a wasm loop calling an imported host identity
//!   function `(func (param i32) (result i32))` [`CALLS`] times per iteration; the reported
//!   time is per call (the measured time of one loop divided by [`CALLS`], loop overhead
//!   included). `plain` is a closure `Fn(i32) -> i32`, `caller` one that also takes a
//!   `Caller` (and reads the store data through it), `untyped` a `Func::new` closure on `Val`s.
//! - `call/wasm_to_wasm`: the same loop calling a wasm identity function, as a baseline for the
//!   loop and call cost inside wasm.

use criterion::{criterion_group, criterion_main, Criterion};
use std::hint::black_box;
use std::time::Instant;
use wjit::{
    Caller, Config, Engine, Error, Func, FuncType, Instance, Module, Store, TypedFunc, Val, ValType,
};

const WAT: &str = r#"(module (func (export "id") (param i32) (result i32) local.get 0))"#;

/// Calls made by one run of a `loop` function below.
const CALLS: i32 = 10_000;

/// `loop(n)` calls the imported `host.id` `n` times (n >= 1), threading the value through.
const HOST_LOOP_WAT: &str = r#"(module
  (import "host" "id" (func $id (param i32) (result i32)))
  (func (export "loop") (param $n i32) (result i32) (local $acc i32)
    (loop $l
      local.get $acc call $id i32.const 1 i32.add local.set $acc
      local.get $n i32.const 1 i32.sub local.tee $n br_if $l)
    local.get $acc))"#;

/// The same loop calling a wasm identity function.
const WASM_LOOP_WAT: &str = r#"(module
  (func $id (param i32) (result i32) local.get 0)
  (func (export "loop") (param $n i32) (result i32) (local $acc i32)
    (loop $l
      local.get $acc call $id i32.const 1 i32.add local.set $acc
      local.get $n i32.const 1 i32.sub local.tee $n br_if $l)
    local.get $acc))"#;

fn host_to_wasm(c: &mut Criterion, engine: &Engine) {
    let module = Module::new(engine, WAT).expect("compile");
    let mut store = Store::new(engine, ());
    let instance = Instance::new(&mut store, &module, &[]).expect("instantiate");

    let typed = instance
        .get_typed_func::<i32, i32>(&store, "id")
        .expect("typed func");
    assert_eq!(typed.call(&mut store, 7).expect("call"), 7);
    c.bench_function("call/typed", |b| {
        b.iter(|| typed.call(&mut store, black_box(7)).expect("call"))
    });

    let func = instance.get_func(&store, "id").expect("func");
    let mut results = [Val::I32(0)];
    func.call(&mut store, &[Val::I32(7)], &mut results)
        .expect("call");
    assert!(matches!(results[0], Val::I32(7)));
    c.bench_function("call/untyped", |b| {
        b.iter(|| {
            func.call(&mut store, black_box(&[Val::I32(7)]), &mut results)
                .expect("call");
        })
    });
}

/// Benchmarks `run` (a `loop` export making [`CALLS`] calls), reporting the time per call.
fn bench_loop(c: &mut Criterion, name: &str, store: &mut Store<u32>, run: TypedFunc<i32, i32>) {
    assert_eq!(run.call(&mut *store, CALLS).expect("loop"), CALLS);
    c.bench_function(name, |b| {
        b.iter_custom(|iters| {
            let start = Instant::now();
            for _ in 0..iters {
                black_box(run.call(&mut *store, black_box(CALLS)).expect("loop"));
            }
            start.elapsed() / CALLS as u32
        })
    });
}

fn wasm_to_host(c: &mut Criterion, engine: &Engine) {
    let module = Module::new(engine, HOST_LOOP_WAT).expect("compile");
    let ty = FuncType::new([ValType::I32], [ValType::I32]);
    type HostCtor = fn(&mut Store<u32>, &FuncType) -> Func;
    let variants: [(&str, HostCtor); 3] = [
        ("call/wasm_to_host/plain", |store, _| {
            Func::wrap(&mut *store, |x: i32| x)
        }),
        ("call/wasm_to_host/caller", |store, _| {
            Func::wrap(&mut *store, |caller: Caller<'_, u32>, x: i32| {
                x.wrapping_add(*caller.data() as i32)
            })
        }),
        ("call/wasm_to_host/untyped", |store, ty| {
            Func::new(
                &mut *store,
                ty.clone(),
                |_caller: Caller<'_, u32>, params: &[Val], results: &mut [Val]| {
                    results[0] = params[0].clone();
                    Ok::<(), Error>(())
                },
            )
        }),
    ];
    for (name, make) in variants {
        // Store data 0: the `caller` variant adds it, so every variant is an identity.
        let mut store = Store::new(engine, 0u32);
        let host = make(&mut store, &ty);
        let instance = Instance::new(&mut store, &module, &[host.into()]).expect("instantiate");
        let run = instance
            .get_typed_func::<i32, i32>(&store, "loop")
            .expect("loop");
        bench_loop(c, name, &mut store, run);
    }
}

fn wasm_to_wasm(c: &mut Criterion, engine: &Engine) {
    let module = Module::new(engine, WASM_LOOP_WAT).expect("compile");
    let mut store = Store::new(engine, 0u32);
    let instance = Instance::new(&mut store, &module, &[]).expect("instantiate");
    let run = instance
        .get_typed_func::<i32, i32>(&store, "loop")
        .expect("loop");
    bench_loop(c, "call/wasm_to_wasm", &mut store, run);
}

fn call(c: &mut Criterion) {
    let engine = Engine::new(&Config::new()).expect("engine");
    host_to_wasm(c, &engine);
    wasm_to_host(c, &engine);
    wasm_to_wasm(c, &engine);
}

criterion_group!(benches, call);
criterion_main!(benches);
