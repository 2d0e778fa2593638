//! Times lazy `Module::new`, instantiation and the first call of an export on a module file:
//! `cargo run --release -p wjit --example first_call -- FILE EXPORT [ROUNDS]`. Every imported
//! function is a host function returning zeros (so only exports that need no real imports
//! make sense, such as a constructor export). Prints the median wall time of each step and
//! of the three together, each round on a fresh module.

use std::time::{Duration, Instant};
use wjit::{Caller, Config, Engine, Extern, ExternType, Func, Instance, Module, Store, Val};

fn main() -> Result<(), wjit::Error> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (Some(path), Some(export)) = (args.first(), args.get(1)) else {
        eprintln!("usage: first_call FILE EXPORT [ROUNDS]");
        std::process::exit(2);
    };
    let rounds: usize = args.get(2).and_then(|r| r.parse().ok()).unwrap_or(5);
    let bytes = std::fs::read(path)?;
    let engine = Engine::new(Config::new().lazy_compilation(true))?;
    let mut steps: [Vec<Duration>; 4] = Default::default();
    for _ in 0..rounds {
        let t0 = Instant::now();
        let module = Module::new(&engine, &bytes)?;
        let t1 = Instant::now();
        let mut store = Store::new(&engine, ());
        let mut imports = Vec::new();
        for import in module.imports() {
            match import.ty() {
                ExternType::Func(ty) => {
                    let f = Func::new(
                        &mut store,
                        ty,
                        |_: Caller<'_, ()>, _: &[Val], results: &mut [Val]| {
                            for r in results.iter_mut() {
                                *r = Val::default_for(r.ty());
                            }
                            Ok(())
                        },
                    );
                    imports.push(Extern::Func(f));
                }
                other => {
                    eprintln!(
                        "unsupported import {}.{}: {other:?}",
                        import.module(),
                        import.name()
                    );
                    std::process::exit(2);
                }
            }
        }
        let instance = Instance::new(&mut store, &module, &imports)?;
        let t2 = Instant::now();
        let func = instance
            .get_func(&store, export)
            .ok_or_else(|| wjit::Error::msg(format!("no export {export}")))?;
        let ty = func.ty(&store);
        let params: Vec<Val> = ty.params().iter().map(|&t| Val::default_for(t)).collect();
        let mut results: Vec<Val> = ty.results().iter().map(|&t| Val::default_for(t)).collect();
        func.call(&mut store, &params, &mut results)?;
        let t3 = Instant::now();
        for (i, d) in [t1 - t0, t2 - t1, t3 - t2, t3 - t0].into_iter().enumerate() {
            steps[i].push(d);
        }
        eprintln!(
            "compiled functions after the call: {}",
            module.compiled_functions()
        );
    }
    let median = |v: &mut Vec<Duration>| {
        v.sort();
        v[v.len() / 2].as_secs_f64() * 1e3
    };
    println!(
        "Module::new {:.2} ms, instantiate {:.2} ms, first call {:.2} ms, total {:.2} ms",
        median(&mut steps[0]),
        median(&mut steps[1]),
        median(&mut steps[2]),
        median(&mut steps[3])
    );
    Ok(())
}
