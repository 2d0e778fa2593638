//! End-to-end checks of the embedding API on small modules.

use wjit::{Engine, Error, Instance, Linker, Module, Store, TrapCode};

fn instantiate(wat: &str) -> (Store<()>, Instance) {
    let engine = Engine::default();
    let module = Module::new(&engine, wat).expect("module compiles");
    let mut store = Store::new(&engine, ());
    let instance = Instance::new(&mut store, &module, &[]).expect("instantiates");
    (store, instance)
}

#[test]
fn add_and_fib() {
    let (mut store, inst) = instantiate(
        r#"(module
            (func (export "add") (param i32 i32) (result i32) local.get 0 local.get 1 i32.add)
            (func $fib (export "fib") (param i32) (result i32)
              local.get 0 i32.const 2 i32.lt_u
              if (result i32) local.get 0
              else
                local.get 0 i32.const 1 i32.sub call $fib
                local.get 0 i32.const 2 i32.sub call $fib
                i32.add
              end))"#,
    );
    let add = inst
        .get_typed_func::<(i32, i32), i32>(&store, "add")
        .unwrap();
    assert_eq!(add.call(&mut store, (2, 40)).unwrap(), 42);
    let fib = inst.get_typed_func::<i32, i32>(&store, "fib").unwrap();
    assert_eq!(fib.call(&mut store, 20).unwrap(), 6765);
}

#[test]
fn traps_are_errors() {
    let (mut store, inst) = instantiate(
        r#"(module
            (memory 1)
            (func (export "div") (param i32 i32) (result i32) local.get 0 local.get 1 i32.div_s)
            (func (export "load") (param i32) (result i32) local.get 0 i32.load)
            (func $r (export "recurse") call $r)
            (func (export "unreachable") unreachable))"#,
    );
    let div = inst
        .get_typed_func::<(i32, i32), i32>(&store, "div")
        .unwrap();
    assert_eq!(div.call(&mut store, (7, 2)).unwrap(), 3);
    let code = |e: Error| e.as_trap().map(|t| t.code());
    assert_eq!(
        code(div.call(&mut store, (1, 0)).unwrap_err()),
        Some(TrapCode::IntegerDivisionByZero)
    );
    assert_eq!(
        code(div.call(&mut store, (i32::MIN, -1)).unwrap_err()),
        Some(TrapCode::IntegerOverflow)
    );
    let load = inst.get_typed_func::<i32, i32>(&store, "load").unwrap();
    assert_eq!(load.call(&mut store, 0).unwrap(), 0);
    assert_eq!(
        code(load.call(&mut store, 65536).unwrap_err()),
        Some(TrapCode::MemoryOutOfBounds)
    );
    let rec = inst.get_typed_func::<(), ()>(&store, "recurse").unwrap();
    assert_eq!(
        code(rec.call(&mut store, ()).unwrap_err()),
        Some(TrapCode::StackOverflow)
    );
    let unr = inst
        .get_typed_func::<(), ()>(&store, "unreachable")
        .unwrap();
    assert_eq!(
        code(unr.call(&mut store, ()).unwrap_err()),
        Some(TrapCode::Unreachable)
    );
    // Still usable after traps.
    assert_eq!(div.call(&mut store, (9, 3)).unwrap(), 3);
}

#[test]
fn host_functions_and_panics() {
    let engine = Engine::default();
    let mut linker = Linker::new(&engine);
    linker
        .func_wrap("env", "double", |x: i32| x * 2)
        .unwrap()
        .func_wrap("env", "boom", |_: i32| -> i32 { panic!("boom") })
        .unwrap();
    let module = Module::new(
        &engine,
        r#"(module
            (import "env" "double" (func $d (param i32) (result i32)))
            (import "env" "boom" (func $b (param i32) (result i32)))
            (func (export "f") (param i32) (result i32) local.get 0 call $d i32.const 1 i32.add)
            (func (export "g") (param i32) (result i32) local.get 0 call $b))"#,
    )
    .unwrap();
    let mut store = Store::new(&engine, ());
    let inst = linker.instantiate(&mut store, &module).unwrap();
    let f = inst.get_typed_func::<i32, i32>(&store, "f").unwrap();
    assert_eq!(f.call(&mut store, 20).unwrap(), 41);
    let g = inst.get_typed_func::<i32, i32>(&store, "g").unwrap();
    match g.call(&mut store, 1) {
        Err(e @ Error::Host(_)) => {
            let msg = e.to_string();
            assert!(msg.contains("boom"), "{msg}");
            // The wasm frame that called the host function is in the backtrace.
            assert_eq!(e.wasm_backtrace().len(), 1, "{msg}");
        }
        other => panic!("expected a host error, got {other:?}"),
    }
    assert_eq!(f.call(&mut store, 1).unwrap(), 3);
}

#[test]
fn multi_value_calls_and_host_results() {
    let engine = Engine::default();
    let mut linker = Linker::new(&engine);
    linker
        .func_wrap("env", "split", |x: i64| -> (i32, i32) {
            ((x >> 32) as i32, x as i32)
        })
        .unwrap();
    let module = Module::new(
        &engine,
        r#"(module
            (import "env" "split" (func $split (param i64) (result i32 i32)))
            (func (export "mix") (param i32 i64) (result f32 f64 i32)
              local.get 0 f32.convert_i32_s
              local.get 1 f64.convert_i64_s
              local.get 1 call $split i32.add))"#,
    )
    .unwrap();
    let mut store = Store::new(&engine, ());
    let inst = linker.instantiate(&mut store, &module).unwrap();
    let mix = inst
        .get_typed_func::<(i32, i64), (f32, f64, i32)>(&store, "mix")
        .unwrap();
    assert_eq!(
        mix.call(&mut store, (3, (5 << 32) | 7)).unwrap(),
        (3.0, 21474836487.0, 12)
    );
}

#[test]
fn externrefs_round_trip_through_wasm() {
    use wjit::{ExternRef, Val};
    let (mut store, inst) = instantiate(
        r#"(module
            (table $t 2 externref)
            (func (export "keep") (param externref) (table.set $t (i32.const 1) (local.get 0)))
            (func (export "get") (result externref) (table.get $t (i32.const 1)))
            (func (export "is_null") (param externref) (result i32) local.get 0 ref.is_null))"#,
    );
    let value = ExternRef::new(String::from("host data"));
    let keep = inst.get_func(&store, "keep").unwrap();
    keep.call(&mut store, &[Val::ExternRef(Some(value))], &mut [])
        .unwrap();
    let mut out = [Val::ExternRef(None)];
    let get = inst.get_func(&store, "get").unwrap();
    get.call(&mut store, &[], &mut out).unwrap();
    match &out[0] {
        Val::ExternRef(Some(r)) => {
            assert_eq!(r.data().downcast_ref::<String>().unwrap(), "host data")
        }
        other => panic!("expected the externref back, got {other:?}"),
    }
    let is_null = inst.get_func(&store, "is_null").unwrap();
    let mut r = [Val::I32(0)];
    is_null
        .call(&mut store, &[Val::ExternRef(None)], &mut r)
        .unwrap();
    assert_eq!(r[0].i32(), Some(1));
}

#[test]
fn cross_instance_calls_use_the_callee_memory() {
    // Each instance reads its own memory 0, also when called from another instance
    // (through an import and through a table) whose memory holds something else.
    let engine = Engine::default();
    let mut store = Store::new(&engine, ());
    let lib = Module::new(
        &engine,
        r#"(module (memory 1) (data (i32.const 0) "\2a")
            (table (export "t") 1 funcref) (elem (i32.const 0) $load)
            (func $load (export "load") (result i32) (i32.load8_u (i32.const 0))))"#,
    )
    .unwrap();
    let lib = Linker::new(&engine).instantiate(&mut store, &lib).unwrap();
    let mut linker = Linker::new(&engine);
    linker.instance(&store, "lib", lib).unwrap();
    let app = Module::new(
        &engine,
        r#"(module (import "lib" "load" (func $load (result i32)))
            (import "lib" "t" (table 1 funcref))
            (memory 1) (data (i32.const 0) "\07")
            (func (export "direct") (result i32)
              (i32.add (call $load) (i32.load8_u (i32.const 0))))
            (func (export "indirect") (result i32)
              (i32.add (call_indirect (result i32) (i32.const 0)) (i32.load8_u (i32.const 0)))))"#,
    )
    .unwrap();
    let app = linker.instantiate(&mut store, &app).unwrap();
    for name in ["direct", "indirect"] {
        let f = app.get_typed_func::<(), i32>(&store, name).unwrap();
        assert_eq!(f.call(&mut store, ()).unwrap(), 42 + 7, "{name}");
    }
}
