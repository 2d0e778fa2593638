//! Profiling and progress: the perf map names lazily compiled functions as they are
//! placed, and `Module::new_with_progress` reports every function body in order.

use std::sync::Mutex;
use wjit::{Config, Engine, Module, ProfilingStrategy, Store};

/// A module of `n` functions named `f0`.. (each a little arithmetic), and an export `f0`.
fn many_functions(n: usize, body_ops: usize) -> String {
    let mut wat = String::from("(module\n");
    for i in 0..n {
        wat.push_str(&format!(
            "(func $f{i} (param i32) (result i32) local.get 0\n"
        ));
        for k in 0..body_ops {
            wat.push_str(&format!("i32.const {k} i32.add\n"));
        }
        wat.push_str(")\n");
    }
    wat.push_str("(export \"f0\" (func $f0)))");
    wat
}

/// Loads `wat` with a progress callback and returns the reports.
fn reports(config: &Config, wat: &str) -> Vec<(usize, usize)> {
    let engine = Engine::new(config).unwrap();
    let seen = Mutex::new(Vec::new());
    let module = Module::new_with_progress(&engine, wat, &|done, total| {
        seen.lock().unwrap().push((done, total));
    })
    .unwrap();
    assert!(module.exports().count() == 1);
    seen.into_inner().unwrap()
}

fn assert_counts_up(seen: &[(usize, usize)], total: usize) {
    assert_eq!(seen.len(), total);
    for (i, &(done, t)) in seen.iter().enumerate() {
        assert_eq!((done, t), (i + 1, total));
    }
}

#[test]
fn progress_counts_every_compiled_function_in_order() {
    // Big enough (> 256 KiB of bodies) to be compiled on several threads.
    let wat = many_functions(1500, 100);
    let mut config = Config::new();
    config.lazy_compilation(false);
    assert_counts_up(&reports(&config, &wat), 1500);
    config.parallel_compilation(false);
    assert_counts_up(&reports(&config, &wat), 1500);
}

#[test]
fn progress_counts_validated_functions_in_lazy_mode() {
    let wat = many_functions(300, 5);
    let mut config = Config::new();
    config.lazy_compilation(true);
    assert_counts_up(&reports(&config, &wat), 300);
}

/// The perf map lines naming `name`.
fn perf_map_lines(name: &str) -> Vec<String> {
    let path = format!("/tmp/perf-{}.map", std::process::id());
    let map = std::fs::read_to_string(path).unwrap_or_default();
    map.lines()
        .filter(|l| l.splitn(3, ' ').nth(2) == Some(name))
        .map(str::to_string)
        .collect()
}

#[test]
fn perf_map_names_lazily_compiled_functions_when_they_are_placed() {
    let mut config = Config::new();
    config.profiler(ProfilingStrategy::PerfMap);
    config.lazy_compilation(true);
    let engine = Engine::new(&config).unwrap();
    let module = Module::new(
        &engine,
        r#"(module
             (func $profiled_callee (param i32) (result i32) (i32.mul (local.get 0) (i32.const 3)))
             (func (export "run") (param i32) (result i32) (call $profiled_callee (local.get 0))))"#,
    )
    .unwrap();
    let lazy = module.compiled_functions() == 0;
    if lazy {
        assert!(perf_map_lines("profiled_callee").is_empty());
    }
    let mut store = Store::new(&engine, ());
    let instance = wjit::Instance::new(&mut store, &module, &[]).unwrap();
    let run = instance
        .get_typed_func::<i32, i32>(&mut store, "run")
        .unwrap();
    assert_eq!(run.call(&mut store, 14).unwrap(), 42);
    let lines = perf_map_lines("profiled_callee");
    assert_eq!(lines.len(), 1, "{lines:?}");
    // START SIZE NAME, hex, a real size.
    let mut parts = lines[0].split(' ');
    assert!(usize::from_str_radix(parts.next().unwrap(), 16).unwrap() > 0);
    assert!(usize::from_str_radix(parts.next().unwrap(), 16).unwrap() > 0);
    // The unnamed export gets wasmtime's name.
    assert_eq!(perf_map_lines("wasm-function[1]").len(), 1);
    if lazy {
        assert_eq!(perf_map_lines("wjit::jump_slots").len(), 1);
    }
    assert_eq!(perf_map_lines("wjit::enter").len(), 1);
    // In the same test: the map is the process's, and removed at the end.
    perf_map_code_memory_is_released_with_its_modules();
    let _ = std::fs::remove_file(format!("/tmp/perf-{}.map", std::process::id()));
}

/// System V shared memory segments created by this process (`/proc/sysvipc/shm`).
fn own_shm_segments() -> usize {
    let table = std::fs::read_to_string("/proc/sysvipc/shm").unwrap_or_default();
    let mut lines = table.lines();
    let header: Vec<&str> = lines.next().unwrap_or("").split_whitespace().collect();
    let Some(cpid) = header.iter().position(|h| *h == "cpid") else {
        return 0;
    };
    let pid = std::process::id().to_string();
    lines
        .filter(|l| l.split_whitespace().nth(cpid) == Some(pid.as_str()))
        .count()
}

fn perf_map_code_memory_is_released_with_its_modules() {
    // Under a perf map, code chunks are System V segments (perf names samples in them);
    // each must go when its module does.
    let mut config = Config::new();
    config.profiler(ProfilingStrategy::PerfMap);
    let engine = Engine::new(&config).unwrap();
    let before = own_shm_segments();
    let live_before = wjit::testing::live_code_regions();
    for round in 0..20 {
        let module = Module::new(
            &engine,
            format!(r#"(module (func (export "f") (result i32) (i32.const {round})))"#),
        )
        .unwrap();
        let mut store = Store::new(&engine, ());
        let instance = wjit::Instance::new(&mut store, &module, &[]).unwrap();
        let f = instance.get_typed_func::<(), i32>(&mut store, "f").unwrap();
        assert_eq!(f.call(&mut store, ()).unwrap(), round);
        assert!(wjit::testing::live_code_regions() > live_before);
        assert!(
            own_shm_segments() > before,
            "the code is not in a System V segment"
        );
    }
    assert_eq!(wjit::testing::live_code_regions(), live_before);
    assert_eq!(own_shm_segments(), before);
}
