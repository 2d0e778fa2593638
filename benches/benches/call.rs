//! Host -> wasm call overhead: an identity function called through `TypedFunc::call` and
//! through the untyped `Func::call`.

use criterion::{criterion_group, criterion_main, Criterion};
use std::hint::black_box;
use wjit::{Config, Engine, Instance, Module, Val};

const WAT: &str = r#"(module (func (export "id") (param i32) (result i32) local.get 0))"#;

fn call(c: &mut Criterion) {
    let engine = Engine::new(&Config::new()).expect("engine");
    let module = Module::new(&engine, WAT).expect("compile");
    let instance = Instance::new(&module, &[]).expect("instantiate");

    let typed = instance
        .get_typed_func::<i32, i32>("id")
        .expect("typed func");
    assert_eq!(typed.call(7).expect("call"), 7);
    c.bench_function("call/typed", |b| {
        b.iter(|| typed.call(black_box(7)).expect("call"))
    });

    let func = instance.get_func("id").expect("func");
    let mut results = [Val::I32(0)];
    c.bench_function("call/untyped", |b| {
        b.iter(|| {
            func.call(black_box(&[Val::I32(7)]), &mut results)
                .expect("call");
        })
    });
}

criterion_group!(benches, call);
criterion_main!(benches);
