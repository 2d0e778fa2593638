//! Startup of a module three ways: (a) precompiled (`Module::deserialize_file` of a
//! `.cwasm` made by `Engine::precompile_module`), (b) lazy (`Module::from_file`, the
//! default), (c) eager (`Config::lazy_compilation(false)`). Each run loads the module from
//! its file, instantiates it (imports are given generically: host functions that trap,
//! fresh memories, tables, globals and tags of the imported types) and, if EXPORT is given,
//! calls it once (with ARG if it takes one i32). Prints the median wall-clock and process
//! CPU time of RUNS runs (default 7) per mode, in milliseconds.
//!
//! `cargo run --release -p wjit-benches --example startup -- FILE.wasm [EXPORT [ARG]]`
//! (`WJIT_STARTUP_RUNS=N` sets the number of runs, `WJIT_STARTUP_MODES=precompiled,lazy`
//! picks modes)

use std::path::Path;
use std::time::Instant;
use wjit::{
    Config, Engine, Error, Extern, Func, Global, Instance, Memory, Module, Store, Table, Tag, Val,
};

#[path = "common/cpu.rs"]
#[allow(dead_code)]
mod cpu;
use cpu::cpu_ms;

/// One import of each kind, of the imported type: host functions trap when called.
fn dummy_imports(store: &mut Store<()>, module: &Module) -> Result<Vec<Extern>, Error> {
    let mut externs = Vec::new();
    for import in module.imports() {
        let e = match import.ty() {
            wjit::ExternType::Func(ty) => {
                let name = format!("{}::{}", import.module(), import.name());
                Func::new(&mut *store, ty, move |_, _, _| {
                    Err(Error::msg(format!("dummy import {name} called")))
                })
                .into()
            }
            wjit::ExternType::Memory(ty) => Memory::new(&mut *store, ty)?.into(),
            wjit::ExternType::Table(ty) => {
                Table::new(&mut *store, ty, Val::default_for(ty.element))?.into()
            }
            wjit::ExternType::Global(ty) => {
                Global::new(&mut *store, ty, Val::default_for(ty.content))?.into()
            }
            wjit::ExternType::Tag(ty) => Tag::new(&mut *store, &ty)?.into(),
        };
        externs.push(e);
    }
    Ok(externs)
}

/// Instantiates `module` and calls `export` once; returns what the call gave.
fn start(module: &Module, export: Option<&str>, arg: i32) -> Result<String, Error> {
    let mut store = Store::new(module.engine(), ());
    let imports = dummy_imports(&mut store, module)?;
    let instance = Instance::new(&mut store, module, &imports)?;
    let Some(name) = export else {
        return Ok("(instantiated)".into());
    };
    let func = instance
        .get_func(&store, name)
        .ok_or_else(|| Error::msg(format!("no exported function {name}")))?;
    let ty = func.ty(&store);
    let args: Vec<Val> = ty
        .params()
        .iter()
        .map(|&t| match t {
            wjit::ValType::I32 => Val::I32(arg),
            other => Val::default_for(other),
        })
        .collect();
    let mut results: Vec<Val> = ty.results().iter().map(|&t| Val::default_for(t)).collect();
    func.call(&mut store, &args, &mut results)?;
    Ok(format!("{results:?}"))
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

fn main() -> Result<(), Error> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some(file) = args.first() else {
        eprintln!("usage: startup FILE.wasm [EXPORT [ARG]]");
        std::process::exit(2);
    };
    let export = args.get(1).map(String::as_str);
    let arg: i32 = args.get(2).map_or(0, |a| a.parse().expect("ARG: an i32"));
    let runs: usize = std::env::var("WJIT_STARTUP_RUNS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(7)
        .max(1);

    let lazy = Engine::default();
    let eager = Engine::new(Config::new().lazy_compilation(false))?;
    let cwasm = std::env::temp_dir().join(format!(
        "wjit-startup-{}-{}.cwasm",
        std::process::id(),
        Path::new(file)
            .file_stem()
            .unwrap_or_default()
            .to_string_lossy()
    ));
    let t = Instant::now();
    let compiled = lazy.precompile_module(&std::fs::read(file)?)?;
    let compile_ms = t.elapsed().as_secs_f64() * 1e3;
    std::fs::write(&cwasm, &compiled)?;
    println!(
        "{file}: {} bytes of wasm, {} bytes precompiled (precompile_module: {compile_ms:.1} ms wall)",
        std::fs::metadata(file)?.len(),
        compiled.len()
    );
    let what = if export.is_some() {
        "load + instantiate + first call"
    } else {
        "load + instantiate"
    };
    println!("{what}, median of {runs} runs:");
    println!("{:<12} {:>10} {:>10}  result", "mode", "wall_ms", "cpu_ms");

    type Load<'a> = Box<dyn Fn() -> Result<Module, Error> + 'a>;
    let modes: [(&str, Load); 3] = [
        (
            "precompiled",
            // SAFETY: the file was written just above by `precompile_module`.
            Box::new(|| unsafe { Module::deserialize_file(&lazy, &cwasm) }),
        ),
        ("lazy", Box::new(|| Module::from_file(&lazy, file))),
        ("eager", Box::new(|| Module::from_file(&eager, file))),
    ];
    let only = std::env::var("WJIT_STARTUP_MODES").unwrap_or_default();
    for (name, load) in &modes {
        if !only.is_empty() && !only.split(',').any(|m| m == *name) {
            continue;
        }
        let (mut wall, mut cpu) = (Vec::new(), Vec::new());
        let mut result = String::new();
        for _ in 0..runs {
            let (t, c) = (Instant::now(), cpu_ms());
            let module = load()?;
            result = start(&module, export, arg).unwrap_or_else(|e| format!("error: {e}"));
            wall.push(t.elapsed().as_secs_f64() * 1e3);
            cpu.push(cpu_ms() - c);
            // (Dropping the module, which unmaps its code, is not timed.)
            drop(module);
        }
        println!(
            "{name:<12} {:>10.2} {:>10.2}  {}",
            median(wall),
            median(cpu),
            result.lines().next().unwrap_or("")
        );
    }
    let _ = std::fs::remove_file(&cwasm);
    Ok(())
}
