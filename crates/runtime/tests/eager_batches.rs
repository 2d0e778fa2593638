//! Eager compilation of a module bigger than one batch (see `EAGER_BATCH_BYTES`): every
//! batch is placed before the next is compiled, so direct calls to functions of later
//! batches are filled in only once everything is placed. Calls forward, backward and tail
//! calls across batches must all reach their callees, with one thread and with several.

use wjit::{Config, Engine, Instance, Module, Store};

/// Functions in the chain, and `i32.const; i32.add` pairs padding each body (about 4
/// bytes per pair, so the module has about 2.4 MB of bodies: several batches).
const FUNCTIONS: u32 = 600;
const PADDING: u32 = 1000;

/// `f0 .. f{n-1}`: `f_i(x)` adds `i + 1` to `x` (through the padding: `PADDING` times
/// `+ (i + 1)` then `- PADDING * i`) and passes it on. Even functions call forward to
/// `f_{i+1}`; odd ones tail-call back to `g_i`, which calls forward to `f_{i+1}`. The last
/// returns, so `f0(x) = x + n(n+1)/2`, reached only if every call found its callee.
fn chain_module() -> String {
    let mut wat = String::from("(module\n");
    for i in 0..FUNCTIONS {
        let k = i + 1;
        wat.push_str(&format!(
            "(func $f{i} (param i32) (result i32) local.get 0\n"
        ));
        for _ in 0..PADDING {
            wat.push_str(&format!("i32.const {k} i32.add\n"));
        }
        wat.push_str(&format!("i32.const {} i32.sub\n", PADDING * k - k));
        if i + 1 == FUNCTIONS {
            wat.push_str(")\n");
        } else if i % 2 == 0 {
            wat.push_str(&format!("call $f{})\n", i + 1));
        } else {
            // $g_i is defined after every $f: far ahead, then back to $f{i+1}.
            wat.push_str(&format!("return_call $g{i})\n"));
        }
    }
    for i in (1..FUNCTIONS).step_by(2) {
        if i + 1 < FUNCTIONS {
            wat.push_str(&format!(
                "(func $g{i} (param i32) (result i32) local.get 0 call $f{})\n",
                i + 1
            ));
        } else {
            wat.push_str(&format!(
                "(func $g{i} (param i32) (result i32) local.get 0)\n"
            ));
        }
    }
    wat.push_str("(export \"f0\" (func $f0)))\n");
    wat
}

fn run(parallel: bool) -> i32 {
    let mut config = Config::new();
    config
        .lazy_compilation(false)
        .parallel_compilation(parallel)
        .wasm_tail_call(true);
    let engine = Engine::new(&config).unwrap();
    let wasm = wat::parse_str(chain_module()).unwrap();
    assert!(wasm.len() > 1 << 20, "the module spans several batches");
    let module = Module::new(&engine, &wasm).expect("module compiles");
    let mut store = Store::new(&engine, ());
    let instance = Instance::new(&mut store, &module, &[]).expect("instantiates");
    let f0 = instance.get_typed_func::<i32, i32>(&store, "f0").unwrap();
    f0.call(&mut store, 7).unwrap()
}

fn expected() -> i32 {
    7 + (FUNCTIONS * (FUNCTIONS + 1) / 2) as i32
}

#[test]
fn calls_across_batches_one_thread() {
    assert_eq!(run(false), expected());
}

#[test]
fn calls_across_batches_all_cores() {
    assert_eq!(run(true), expected());
}
