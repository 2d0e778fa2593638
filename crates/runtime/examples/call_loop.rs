//! Calls an identity function `N` times through `TypedFunc::call` (for instruction counts
//! of the host -> wasm round trip under `valgrind --tool=callgrind`):
//! `cargo run --release -p wjit --example call_loop -- N`.

use wjit::{Engine, Instance, Module, Store};

fn main() -> Result<(), wjit::Error> {
    let n: u32 = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(1_000_000);
    let engine = Engine::default();
    let module = Module::new(
        &engine,
        r#"(module (func (export "id") (param i32) (result i32) local.get 0))"#,
    )?;
    let mut store = Store::new(&engine, ());
    let instance = Instance::new(&mut store, &module, &[])?;
    let id = instance.get_typed_func::<i32, i32>(&store, "id")?;
    let mut acc = 0i32;
    for i in 0..n {
        acc = acc.wrapping_add(id.call(&mut store, i as i32)?);
    }
    println!("{acc}");
    Ok(())
}
