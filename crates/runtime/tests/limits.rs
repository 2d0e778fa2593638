//! Interruption, fuel, resource limits and trap backtraces.

use std::time::{Duration, Instant};
use wjit::{Config, Engine, Instance, Module, Store, TrapCode};

fn instance(config: &Config, wat: &str) -> (Store<()>, Instance) {
    let engine = Engine::new(config).unwrap();
    let module = Module::new(&engine, wat).unwrap();
    let mut store = Store::new(&engine, ());
    let instance = Instance::new(&mut store, &module, &[]).unwrap();
    (store, instance)
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
    let mut store = Store::new(&engine, ());
    let inst = Instance::new(&mut store, &module, &[]).unwrap();
    store.set_epoch_deadline(1);
    let spin = inst.get_typed_func::<(), ()>(&store, "spin").unwrap();
    let ticker = {
        let engine = engine.clone();
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(50));
            let at = Instant::now();
            engine.increment_epoch();
            at
        })
    };
    let err = spin.call(&mut store, ()).unwrap_err();
    let stopped = Instant::now();
    let ticked = ticker.join().unwrap();
    assert_eq!(trap_code(err), Some(TrapCode::Interrupt));
    assert!(stopped.duration_since(ticked) < Duration::from_millis(100));
}

#[test]
fn epoch_deadline_callback_can_continue_with_live_state() {
    // Live locals (register homes of both classes and frame locals) and values on the stack
    // across the loop header: each iteration bumps the epoch, so every loop header takes
    // the slow path and calls the store's epoch callback, which continues `k` times and
    // then traps.
    let mut config = Config::new();
    config.epoch_interruption(true);
    let engine = Engine::new(&config).unwrap();
    let module = Module::new(
        &engine,
        r#"(module
          (import "env" "tick" (func $tick))
          (func (export "run") (param $n i32) (param $p i64) (param $f f64) (result i64)
            (local $a i64) (local $b i64) (local $c i32) (local $d i64) (local $e i64)
            (local $g i64) (local $h i64) (local $x f64) (local $y f32)
            (local.set $a (i64.const 3)) (local.set $b (i64.const 5))
            (local.set $d (i64.const 7)) (local.set $e (i64.const 11))
            (local.set $g (i64.const 13)) (local.set $h (i64.const 17))
            (local.set $x (f64.const 0.5)) (local.set $y (f32.const 0.25))
            i64.const 1000
            i64.const 2000
            (loop $l (param i64) (result i64)
              call $tick
              (local.set $a (i64.add (local.get $a) (i64.const 1)))
              (local.set $x (f64.add (local.get $x) (local.get $f)))
              i64.const 1
              i64.add
              (local.tee $n (i32.sub (local.get $n) (i32.const 1)))
              br_if $l)
            i64.add
            (i64.add (local.get $a)) (i64.add (local.get $b)) (i64.add (local.get $d))
            (i64.add (local.get $e)) (i64.add (local.get $g)) (i64.add (local.get $h))
            (i64.add (local.get $p))
            (i64.add (i64.trunc_f64_s (local.get $x)))
            (i64.add (i64.trunc_f32_s (f32.mul (local.get $y) (f32.const 4))))
            (i64.add (i64.extend_i32_u (local.get $n)))
            (i64.add (i64.extend_i32_u (local.get $c)))))"#,
    )
    .unwrap();
    // The store data is how many more times the callback lets the code continue.
    let mut store = Store::new(&engine, 0u32);
    let ticker = engine.clone();
    let tick = wjit::Func::wrap(&mut store, move || ticker.increment_epoch());
    let inst = Instance::new(&mut store, &module, &[tick.into()]).unwrap();
    let run = inst
        .get_typed_func::<(i32, i64, f64), i64>(&store, "run")
        .unwrap();
    // n iterations: 1000 + (2000 + n) + (3 + n) + 5 + 7 + 11 + 13 + 17 + p + trunc(0.5 + n*f) + 1
    let expected = |n: i64, p: i64, f: f64| {
        1000 + 2000 + n + 3 + n + 5 + 7 + 11 + 13 + 17 + p + (0.5 + n as f64 * f) as i64 + 1
    };
    store.epoch_deadline_callback(|mut ctx| {
        if *ctx.data() == 0 {
            return Err(TrapCode::Interrupt.into());
        }
        *ctx.data_mut() -= 1;
        Ok(wjit::UpdateDeadline::Continue(1))
    });
    store.set_epoch_deadline(1);
    *store.data_mut() = 1000;
    assert_eq!(
        run.call(&mut store, (50, 100_000, 2.0)).unwrap(),
        expected(50, 100_000, 2.0)
    );
    assert_eq!(
        run.call(&mut store, (300, -7, 0.25)).unwrap(),
        expected(300, -7, 0.25)
    );
    *store.data_mut() = 5;
    assert_eq!(
        trap_code(run.call(&mut store, (50, 1, 1.0)).unwrap_err()),
        Some(TrapCode::Interrupt)
    );
}

#[test]
fn fuel_runs_out_and_can_be_refilled() {
    let mut config = Config::new();
    config.consume_fuel(true);
    let (mut store, inst) = instance(
        &config,
        r#"(module (func (export "count") (param i32)
             (loop local.get 0 i32.const 1 i32.sub local.tee 0 br_if 0)))"#,
    );
    let count = inst.get_typed_func::<i32, ()>(&store, "count").unwrap();
    assert_eq!(
        trap_code(count.call(&mut store, 10).unwrap_err()),
        Some(TrapCode::OutOfFuel),
        "a store starts without fuel"
    );
    store.set_fuel(1000).unwrap();
    count.call(&mut store, 10).unwrap();
    let left = store.get_fuel().unwrap();
    assert!((1000 - 12..1000).contains(&left), "fuel left: {left}");
    assert_eq!(
        trap_code(count.call(&mut store, 100_000).unwrap_err()),
        Some(TrapCode::OutOfFuel)
    );
    store.set_fuel(1_000_000).unwrap();
    count.call(&mut store, 100_000).unwrap();
    assert!(store.get_fuel().unwrap() < 1_000_000 - 100_000);
}

#[test]
fn wasm_stack_limit_is_configurable() {
    let wat = r#"(module (func $f (export "depth") (param i32) (result i32)
        local.get 0 i32.eqz if (result i32) i32.const 0
        else local.get 0 i32.const 1 i32.sub call $f i32.const 1 i32.add end))"#;
    let (mut store, big) = instance(&Config::new(), wat);
    let depth = big.get_typed_func::<i32, i32>(&store, "depth").unwrap();
    assert_eq!(depth.call(&mut store, 5000).unwrap(), 5000);
    let mut config = Config::new();
    config.max_wasm_stack(16 * 1024);
    let (mut store, small) = instance(&config, wat);
    let depth = small.get_typed_func::<i32, i32>(&store, "depth").unwrap();
    assert_eq!(
        trap_code(depth.call(&mut store, 5000).unwrap_err()),
        Some(TrapCode::StackOverflow)
    );
    assert_eq!(depth.call(&mut store, 10).unwrap(), 10);
}

#[test]
fn memory_growth_stops_at_the_engine_limit() {
    let mut config = Config::new();
    config.max_memory_pages(4);
    let (mut store, inst) = instance(
        &config,
        r#"(module (memory 1) (func (export "grow") (param i32) (result i32) local.get 0 memory.grow))"#,
    );
    let grow = inst.get_typed_func::<i32, i32>(&store, "grow").unwrap();
    assert_eq!(grow.call(&mut store, 3).unwrap(), 1);
    assert_eq!(grow.call(&mut store, 1).unwrap(), -1);
    assert_eq!(
        inst.get_memory(&store, "memory").map(|m| m.size(&store)),
        None
    );
}

#[test]
fn traps_carry_a_named_backtrace() {
    let (mut store, inst) = instance(
        &Config::new(),
        r#"(module
            (func $inner (param i32) (result i32) local.get 0 i32.const 0 i32.div_u)
            (func $middle (param i32) (result i32) local.get 0 call $inner)
            (func (export "outer") (result i32) i32.const 7 call $middle))"#,
    );
    let outer = inst.get_typed_func::<(), i32>(&store, "outer").unwrap();
    let err = outer.call(&mut store, ()).unwrap_err();
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
