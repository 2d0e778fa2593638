//! The per-module code arena: many small functions share a few mappings, lazily and
//! eagerly; traps in lazily placed code keep their codes and backtraces; threads racing to
//! first calls get each function compiled once. In a test binary of its own, so the mapping
//! counts are not disturbed by other tests' modules.

use std::sync::{Arc, Barrier};
use wjit::testing::live_code_regions;
use wjit::{Config, Engine, Instance, Module, Store, TrapCode};

/// `n` functions `f{i}(x) = x + i`, `main` threading 0 through all of them in order, and
/// trapping functions after them: `oob` (out-of-bounds load), `unr` (unreachable) and
/// `mid` (exported as `trap`), which calls `oob` for a nonzero argument, else `unr`.
fn module_text(n: u32) -> String {
    let mut wat = String::with_capacity(n as usize * 80);
    wat.push_str("(module (memory 1)\n");
    for i in 0..n {
        wat.push_str(&format!(
            "(func $f{i} (param i32) (result i32) local.get 0 i32.const {i} i32.add)\n"
        ));
    }
    wat.push_str("(func (export \"main\") (result i32) i32.const 0\n");
    for i in 0..n {
        wat.push_str(&format!("call $f{i}\n"));
    }
    wat.push_str(
        ")
        (func $oob (result i32) i32.const 65536 i32.load)
        (func $unr (result i32) unreachable)
        (func $mid (export \"trap\") (param i32) (result i32)
          local.get 0 if (result i32) call $oob else call $unr end))",
    );
    wat
}

fn expected(n: u32) -> i32 {
    (0..n as i32).fold(0, i32::wrapping_add)
}

/// How many functions the big tests use: 100,000 natively; fewer under emulation, where
/// every compilation is many times slower (`WJIT_ARENA_FUNCTIONS` overrides).
fn big_n() -> u32 {
    std::env::var("WJIT_ARENA_FUNCTIONS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(if cfg!(target_arch = "x86_64") {
            100_000
        } else {
            20_000
        })
}

fn mapping_count() -> usize {
    std::fs::read_to_string("/proc/self/maps")
        .unwrap()
        .lines()
        .count()
}

fn run_all_once(lazy: bool, n: u32) {
    let binary = wat::parse_str(module_text(n)).unwrap();
    let engine = Engine::new(Config::new().lazy_compilation(lazy)).unwrap();
    let before = mapping_count();
    let regions = live_code_regions();
    let module = Module::new(&engine, &binary).unwrap();
    let mut store = Store::new(&engine, ());
    let inst = Instance::new(&mut store, &module, &[]).unwrap();
    let main = inst.get_typed_func::<(), i32>(&store, "main").unwrap();
    assert_eq!(
        main.call(&mut store, ()).unwrap(),
        expected(n),
        "lazy={lazy}"
    );
    let grown = mapping_count().saturating_sub(before);
    // The kernel merges adjacent mappings with equal protections, so also count the code
    // regions the runtime made (one per function before the arena); the other tests of this
    // binary make a few at the same time.
    let new_regions = live_code_regions().saturating_sub(regions);
    // (Unless the dual-mapping arena is disabled: the fallback maps each placement.)
    let fallback = std::env::var_os("WJIT_CODE_NO_MEMFD").is_some_and(|v| v == "1");
    assert!(
        fallback || new_regions < 100,
        "lazy={lazy}: {n} functions made {new_regions} code regions"
    );
    eprintln!("lazy={lazy}: {n} functions, mappings grew by {grown}, {new_regions} code regions");
    // A few chunks (two mappings each, sizes doubling) plus the linear memory and
    // whatever the allocator maps: far fewer than one per function.
    assert!(
        grown < 200,
        "lazy={lazy}: {n} functions grew the mapping count by {grown}"
    );
    // Traps in code placed after all the others keep their code and backtrace.
    let trap = inst.get_typed_func::<i32, i32>(&store, "trap").unwrap();
    for (arg, code, inner) in [
        (1, TrapCode::MemoryOutOfBounds, n + 1),
        (0, TrapCode::Unreachable, n + 2),
    ] {
        let err = trap.call(&mut store, arg).unwrap_err();
        let t = err.as_trap().expect("a trap");
        assert_eq!(t.code(), code, "lazy={lazy}");
        let frames: Vec<_> = t.frames().iter().map(|f| f.func_index()).collect();
        assert_eq!(frames, vec![inner, n + 3], "lazy={lazy}: {t}");
        assert!(t.frames().iter().all(|f| f.wasm_offset().is_some()), "{t}");
    }
}

#[test]
fn many_functions_called_once_lazily() {
    run_all_once(true, big_n());
}

#[test]
fn many_functions_called_once_eagerly() {
    run_all_once(false, big_n());
}

/// The frames (function index, wasm offset) of a trap, lazily and eagerly compiled.
#[test]
fn lazy_traps_match_eager_traps() {
    let binary = wat::parse_str(module_text(50)).unwrap();
    let frames = |lazy: bool, arg: i32| {
        let engine = Engine::new(Config::new().lazy_compilation(lazy)).unwrap();
        let module = Module::new(&engine, &binary).unwrap();
        let mut store = Store::new(&engine, ());
        let inst = Instance::new(&mut store, &module, &[]).unwrap();
        let trap = inst.get_typed_func::<i32, i32>(&store, "trap").unwrap();
        let err = trap.call(&mut store, arg).unwrap_err();
        let t = err.as_trap().expect("a trap");
        let frames: Vec<_> = t
            .frames()
            .iter()
            .map(|f| (f.func_index(), f.wasm_offset()))
            .collect();
        (t.code(), frames)
    };
    for arg in [0, 1] {
        let lazy = frames(true, arg);
        assert_eq!(lazy, frames(false, arg));
        assert_eq!(lazy.1.len(), 2);
        assert!(lazy.1.iter().all(|f| f.1.is_some()));
    }
}

/// Threads with a store each call every function of one lazily compiled module at the same
/// moment: each function is compiled once and every thread gets the right results.
#[test]
fn threads_racing_to_first_calls() {
    let n = 3000;
    let engine = Engine::default();
    let module = Module::new(&engine, module_text(n)).unwrap();
    let threads = 8;
    let barrier = Arc::new(Barrier::new(threads));
    let handles: Vec<_> = (0..threads)
        .map(|t| {
            let (engine, module, barrier) = (engine.clone(), module.clone(), barrier.clone());
            std::thread::spawn(move || {
                let mut store = Store::new(&engine, ());
                let inst = Instance::new(&mut store, &module, &[]).unwrap();
                let main = inst.get_typed_func::<(), i32>(&store, "main").unwrap();
                let trap = inst.get_typed_func::<i32, i32>(&store, "trap").unwrap();
                barrier.wait();
                for round in 0..3 {
                    assert_eq!(main.call(&mut store, ()).unwrap(), expected(n));
                    let err = trap.call(&mut store, (t + round) as i32 % 2).unwrap_err();
                    assert!(err.as_trap().is_some());
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
}

/// `n` leaves `f{i}(x) = x + i`, `n` callers `c{i}(x) = f{i}(x) + f{(7i + 1) % n}(x)` (direct
/// calls, through jump slots while the leaves are not compiled), `run(k, x)` calling
/// `c{k}(x)` through a table, and `hot(x) = f0(x) + f1(x) + f2(x) + f3(x)`.
fn racing_module(n: u32) -> String {
    let mut wat = String::from("(module (type $t (func (param i32) (result i32)))\n");
    for i in 0..n {
        wat.push_str(&format!(
            "(func $f{i} (param i32) (result i32) local.get 0 i32.const {i} i32.add)\n"
        ));
    }
    for i in 0..n {
        let j = (7 * i + 1) % n;
        wat.push_str(&format!(
            "(func $c{i} (param i32) (result i32) local.get 0 call $f{i} local.get 0 call $f{j} i32.add)\n"
        ));
    }
    wat.push_str(&format!("(table {n} funcref) (elem (i32.const 0)"));
    for i in 0..n {
        wat.push_str(&format!(" $c{i}"));
    }
    wat.push_str(
        ")
        (func (export \"run\") (param i32 i32) (result i32)
          local.get 1 local.get 0 call_indirect (type $t))
        (func (export \"hot\") (param i32) (result i32)
          local.get 0 call $f0 local.get 0 call $f1 i32.add
          local.get 0 call $f2 i32.add local.get 0 call $f3 i32.add))",
    );
    wat
}

/// Threads race to the first calls of many functions (pairs of threads in the same order,
/// so that both often hit the same not-yet-compiled function at once) while other threads
/// keep running code whose jump slots were patched already; every result is checked.
#[test]
fn first_calls_race_while_patched_code_runs() {
    let n: u32 = if cfg!(target_arch = "x86_64") {
        2000
    } else {
        500
    };
    let engine = Engine::default();
    let module = Module::new(&engine, racing_module(n)).unwrap();
    let (racers, runners) = (6, 2);
    let barrier = Arc::new(Barrier::new(racers + runners));
    let done = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut handles = Vec::new();
    for t in 0..racers {
        let (engine, module, barrier, done) = (
            engine.clone(),
            module.clone(),
            barrier.clone(),
            done.clone(),
        );
        handles.push(std::thread::spawn(move || {
            let mut store = Store::new(&engine, ());
            let inst = Instance::new(&mut store, &module, &[]).unwrap();
            let run = inst
                .get_typed_func::<(i32, i32), i32>(&store, "run")
                .unwrap();
            barrier.wait();
            // A permutation of 0..n (stride coprime to n), shared by pairs of threads.
            let stride = [1, 3, 7][t / 2] as u32;
            for round in 0..2 {
                for s in 0..n {
                    let k = (s * stride + (t as u32 / 2) * 13) % n;
                    let x = (t as i32) * 1000 + round;
                    let j = ((7 * k + 1) % n) as i32;
                    let want = (x + k as i32) + (x + j);
                    assert_eq!(run.call(&mut store, (k as i32, x)).unwrap(), want);
                }
            }
            done.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        }));
    }
    for _ in 0..runners {
        let (engine, module, barrier, done) = (
            engine.clone(),
            module.clone(),
            barrier.clone(),
            done.clone(),
        );
        handles.push(std::thread::spawn(move || {
            let mut store = Store::new(&engine, ());
            let inst = Instance::new(&mut store, &module, &[]).unwrap();
            let hot = inst.get_typed_func::<i32, i32>(&store, "hot").unwrap();
            // Compiles f0..f3 and patches their slots before the race starts.
            assert_eq!(hot.call(&mut store, 1).unwrap(), 4 + 6);
            barrier.wait();
            let mut x = 0;
            while done.load(std::sync::atomic::Ordering::SeqCst) < racers {
                assert_eq!(hot.call(&mut store, x).unwrap(), 4 * x + 6);
                x = x.wrapping_add(1) & 0xFFFF;
            }
        }));
    }
    for h in handles {
        h.join().unwrap();
    }
    // Every leaf and caller, `run` and `hot`: each compiled once.
    assert_eq!(module.compiled_functions(), 2 * n as usize + 2);
}
