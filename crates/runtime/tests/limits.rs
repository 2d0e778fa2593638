//! Interruption, fuel, resource limits and trap backtraces.

use std::time::{Duration, Instant};
use wjit::{Config, Engine, Instance, Module, TrapCode};

fn instance(config: &Config, wat: &str) -> Instance {
    let engine = Engine::new(config).unwrap();
    let module = Module::new(&engine, wat).unwrap();
    Instance::new(&module, &[]).unwrap()
}

fn trap_code(e: wjit::Error) -> Option<TrapCode> {
    e.as_trap().map(|t| t.code())
}

#[test]
fn epoch_stops_an_infinite_loop_from_another_thread() {
    let mut config = Config::new();
    config.epoch_interruption(true);
    let engine = Engine::new(&config).unwrap();
    let module = Module::new(&engine, r#"(module (func (export "spin") (loop br 0)))"#).unwrap();
    let inst = Instance::new(&module, &[]).unwrap();
    inst.set_epoch_deadline(1);
    let spin = inst.get_typed_func::<(), ()>("spin").unwrap();
    let ticker = {
        let engine = engine.clone();
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(50));
            let at = Instant::now();
            engine.increment_epoch();
            at
        })
    };
    let err = spin.call(()).unwrap_err();
    let stopped = Instant::now();
    let ticked = ticker.join().unwrap();
    assert_eq!(trap_code(err), Some(TrapCode::Interrupt));
    assert!(stopped.duration_since(ticked) < Duration::from_millis(100));
}

#[test]
fn fuel_runs_out_and_can_be_refilled() {
    let mut config = Config::new();
    config.consume_fuel(true).initial_fuel(1000);
    let inst = instance(
        &config,
        r#"(module (func (export "count") (param i32)
             (loop local.get 0 i32.const 1 i32.sub local.tee 0 br_if 0)))"#,
    );
    let count = inst.get_typed_func::<i32, ()>("count").unwrap();
    count.call(10).unwrap();
    let left = inst.fuel();
    assert!((1000 - 12..1000).contains(&left), "fuel left: {left}");
    assert_eq!(
        trap_code(count.call(100_000).unwrap_err()),
        Some(TrapCode::OutOfFuel)
    );
    inst.set_fuel(1_000_000);
    count.call(100_000).unwrap();
    assert!(inst.fuel() < 1_000_000 - 100_000);
}

#[test]
fn wasm_stack_limit_is_configurable() {
    let wat = r#"(module (func $f (export "depth") (param i32) (result i32)
        local.get 0 i32.eqz if (result i32) i32.const 0
        else local.get 0 i32.const 1 i32.sub call $f i32.const 1 i32.add end))"#;
    let big = instance(&Config::new(), wat);
    let depth = big.get_typed_func::<i32, i32>("depth").unwrap();
    assert_eq!(depth.call(5000).unwrap(), 5000);
    let mut config = Config::new();
    config.max_wasm_stack(16 * 1024);
    let small = instance(&config, wat);
    let depth = small.get_typed_func::<i32, i32>("depth").unwrap();
    assert_eq!(
        trap_code(depth.call(5000).unwrap_err()),
        Some(TrapCode::StackOverflow)
    );
    assert_eq!(depth.call(10).unwrap(), 10);
}

#[test]
fn memory_growth_stops_at_the_engine_limit() {
    let mut config = Config::new();
    config.max_memory_pages(4);
    let inst = instance(
        &config,
        r#"(module (memory 1) (func (export "grow") (param i32) (result i32) local.get 0 memory.grow))"#,
    );
    let grow = inst.get_typed_func::<i32, i32>("grow").unwrap();
    assert_eq!(grow.call(3).unwrap(), 1);
    assert_eq!(grow.call(1).unwrap(), -1);
    assert_eq!(inst.get_memory("memory").map(|m| m.size()), None);
}

#[test]
fn traps_carry_a_named_backtrace() {
    let inst = instance(
        &Config::new(),
        r#"(module
            (func $inner (param i32) (result i32) local.get 0 i32.const 0 i32.div_u)
            (func $middle (param i32) (result i32) local.get 0 call $inner)
            (func (export "outer") (result i32) i32.const 7 call $middle))"#,
    );
    let outer = inst.get_typed_func::<(), i32>("outer").unwrap();
    let err = outer.call(()).unwrap_err();
    let trap = err.as_trap().expect("a trap");
    assert_eq!(trap.code(), TrapCode::IntegerDivisionByZero);
    let names: Vec<_> = trap
        .frames()
        .iter()
        .map(|f| f.func_name().map(String::from))
        .collect();
    assert_eq!(
        names,
        vec![Some("inner".into()), Some("middle".into()), None],
        "{trap}"
    );
    assert!(
        trap.frames().iter().all(|f| f.wasm_offset().is_some()),
        "{trap}"
    );
    let shown = trap.to_string();
    assert!(
        shown.contains("wasm backtrace:") && shown.contains("inner"),
        "{shown}"
    );
}
