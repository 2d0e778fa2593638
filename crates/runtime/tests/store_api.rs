//! The `Store<T>` ownership model: per-store host data, fuel and epochs shared by the
//! store's instances, resource limits, host errors, reentrancy and handle checks.

use wjit::{
    Caller, Config, Engine, Error, Extern, Func, I32Exit, Instance, Linker, Memory, MemoryType,
    Module, Store, StoreLimits, StoreLimitsBuilder, Table, TableType, TrapCode, UpdateDeadline,
    Val, ValType,
};

#[test]
fn host_function_sees_store_data() {
    let engine = Engine::default();
    let module = Module::new(
        &engine,
        r#"(module
            (import "host" "bump" (func $bump (param i32) (result i32)))
            (func (export "run") (param i32) (result i32)
              local.get 0 call $bump
              local.get 0 call $bump
              i32.add))"#,
    )
    .unwrap();
    let mut linker = Linker::<u32>::new(&engine);
    linker
        .func_wrap(
            "host",
            "bump",
            |mut caller: Caller<'_, u32>, x: i32| -> i32 {
                *caller.data_mut() += 1;
                x + *caller.data() as i32
            },
        )
        .unwrap();
    // Two stores from one linker: each host call sees its own store's data.
    let mut a = Store::new(&engine, 0u32);
    let mut b = Store::new(&engine, 100u32);
    let ia = linker.instantiate(&mut a, &module).unwrap();
    let ib = linker.instantiate(&mut b, &module).unwrap();
    let run_a = ia.get_typed_func::<i32, i32>(&a, "run").unwrap();
    let run_b = ib.get_typed_func::<i32, i32>(&b, "run").unwrap();
    assert_eq!(run_a.call(&mut a, 10).unwrap(), 11 + 12);
    assert_eq!(run_b.call(&mut b, 10).unwrap(), 111 + 112);
    assert_eq!((*a.data(), *b.data()), (2, 102));
    assert_eq!(b.into_data(), 102);

    // Host functions called straight from the host, typed and dynamic.
    let triple = Func::wrap(
        &mut a,
        |mut caller: Caller<'_, u32>, x: i32| -> (i32, f64) {
            *caller.data_mut() += 1;
            (x * 3, x as f64 / 2.0)
        },
    );
    let typed = triple.typed::<i32, (i32, f64)>(&a).unwrap();
    assert_eq!(typed.call(&mut a, 5).unwrap(), (15, 2.5));
    let ty = wjit::FuncType::new([ValType::I32], [ValType::F32]);
    let half = Func::new(&mut a, ty, |_caller, args, results| {
        results[0] = Val::from(args[0].i32().unwrap_or(0) as f32 / 2.0);
        Ok(())
    });
    let mut out = [Val::I32(0)];
    half.call(&mut a, &[Val::I32(7)], &mut out).unwrap();
    assert_eq!(out[0].f32(), Some(3.5));
    assert_eq!(*a.data(), 3);
}

#[test]
fn fuel_is_spent_by_every_instance_of_the_store() {
    let mut config = Config::new();
    config.consume_fuel(true);
    let engine = Engine::new(&config).unwrap();
    let library = Module::new(
        &engine,
        r#"(module (func (export "spin") (param i32)
             (loop local.get 0 i32.const 1 i32.sub local.tee 0 br_if 0)))"#,
    )
    .unwrap();
    let app = Module::new(
        &engine,
        r#"(module (import "lib" "spin" (func $spin (param i32)))
             (func (export "main") (param i32) local.get 0 call $spin))"#,
    )
    .unwrap();
    let mut store = Store::new(&engine, ());
    let mut linker = Linker::new(&engine);
    let lib = linker.instantiate(&mut store, &library).unwrap();
    linker.instance(&store, "lib", lib).unwrap();
    let app = linker.instantiate(&mut store, &app).unwrap();
    let main = app.get_typed_func::<i32, ()>(&store, "main").unwrap();

    store.set_fuel(10_000).unwrap();
    main.call(&mut store, 1000).unwrap();
    // The library's 1000 iterations were paid from the caller's budget.
    let left = store.get_fuel().unwrap();
    assert!((10_000 - 1010..=10_000 - 1000).contains(&left), "{left}");
    let err = main.call(&mut store, 100_000).unwrap_err();
    assert_eq!(err.trap_code(), Some(TrapCode::OutOfFuel));
    assert_eq!(store.get_fuel().unwrap(), 0);

    // Another store of the same engine has its own budget.
    let mut other = Store::new(&engine, ());
    let lib2 = Instance::new(&mut other, &library, &[]).unwrap();
    let spin2 = lib2.get_typed_func::<i32, ()>(&other, "spin").unwrap();
    other.set_fuel(1_000_000).unwrap();
    spin2.call(&mut other, 100_000).unwrap();
    assert_eq!(store.get_fuel().unwrap(), 0);

    // Without `consume_fuel` the fuel API is an error.
    let mut plain = Store::new(&Engine::default(), ());
    assert!(plain.set_fuel(1).is_err() && plain.get_fuel().is_err());
}

#[test]
fn epoch_deadlines_are_per_store_and_can_continue() {
    let mut config = Config::new();
    config.epoch_interruption(true);
    let engine = Engine::new(&config).unwrap();
    let module = Module::new(
        &engine,
        r#"(module (func (export "count") (param i32) (result i32) (local i32)
             (loop local.get 1 i32.const 1 i32.add local.set 1
                   local.get 1 local.get 0 i32.lt_u br_if 0)
             local.get 1))"#,
    )
    .unwrap();
    let mut late = Store::new(&engine, ());
    let mut early = Store::new(&engine, 0u32);
    let il = Instance::new(&mut late, &module, &[]).unwrap();
    let ie = Instance::new(&mut early, &module, &[]).unwrap();
    let count_l = il.get_typed_func::<i32, i32>(&late, "count").unwrap();
    let count_e = ie.get_typed_func::<i32, i32>(&early, "count").unwrap();
    late.set_epoch_deadline(1000);
    early.set_epoch_deadline(1);
    engine.increment_epoch();
    // Past `early`'s deadline but not `late`'s.
    assert_eq!(count_l.call(&mut late, 10).unwrap(), 10);
    let err = count_e.call(&mut early, 10).unwrap_err();
    assert_eq!(err.trap_code(), Some(TrapCode::Interrupt));

    // A callback that lets the code go on three times, then stops it with its own error.
    #[derive(Debug)]
    struct Budget;
    impl std::fmt::Display for Budget {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("out of epochs")
        }
    }
    impl std::error::Error for Budget {}
    early.epoch_deadline_callback(|mut ctx| {
        *ctx.data_mut() += 1;
        if *ctx.data() <= 3 {
            Ok(UpdateDeadline::Continue(0))
        } else {
            Err(Error::new(Budget))
        }
    });
    early.set_epoch_deadline(0);
    let err = count_e.call(&mut early, 1_000_000).unwrap_err();
    assert!(err.downcast_ref::<Budget>().is_some(), "{err}");
    assert_eq!(*early.data(), 4);
    early.epoch_deadline_trap();
    early.set_epoch_deadline(1 << 40);
    assert_eq!(count_e.call(&mut early, 1000).unwrap(), 1000);
}

#[test]
fn table_growth_and_call_indirect_interleave_between_host_and_wasm() {
    let engine = Engine::default();
    let module = Module::new(
        &engine,
        r#"(module
            (import "host" "extend" (func $extend (param i32) (result i32)))
            (table (export "t") 1 funcref)
            (type $v (func (result i32)))
            (func $seven (export "seven") (result i32) i32.const 7)
            (elem (i32.const 0) $seven)
            ;; Asks the host to grow the table and put `seven` at the new slot, then calls it
            ;; through the table; `wasm_grow` grows from wasm.
            (func (export "run") (param i32) (result i32)
              local.get 0 call $extend
              call_indirect (type $v))
            (func (export "wasm_grow") (result i32)
              ref.null func i32.const 1 table.grow)
            (func (export "size") (result i32) table.size))"#,
    )
    .unwrap();
    let mut linker = Linker::<()>::new(&engine);
    linker
        .func_wrap(
            "host",
            "extend",
            |mut caller: Caller<'_, ()>, by: i32| -> Result<i32, Error> {
                let table = caller.get_export("t").and_then(Extern::into_table).unwrap();
                let seven = caller.get_export("seven").and_then(Extern::into_func);
                let old = table.grow(&mut caller, by as u64, Val::FuncRef(None))?;
                let last = old + by as u64 - 1;
                table.set(&mut caller, last, Val::FuncRef(seven))?;
                Ok(last as i32)
            },
        )
        .unwrap();
    let mut store = Store::new(&engine, ());
    let inst = linker.instantiate(&mut store, &module).unwrap();
    let run = inst.get_typed_func::<i32, i32>(&store, "run").unwrap();
    let wasm_grow = inst.get_typed_func::<(), i32>(&store, "wasm_grow").unwrap();
    let size = inst.get_typed_func::<(), i32>(&store, "size").unwrap();
    let table = inst.get_table(&store, "t").unwrap();
    let mut expected = 1u64;
    for round in 0..200u64 {
        assert_eq!(run.call(&mut store, 1 + (round % 3) as i32).unwrap(), 7);
        expected += 1 + round % 3;
        assert_eq!(wasm_grow.call(&mut store, ()).unwrap(), expected as i32);
        expected += 1;
        table.grow(&mut store, 1, Val::FuncRef(None)).unwrap();
        expected += 1;
        assert_eq!(size.call(&mut store, ()).unwrap(), expected as i32);
        assert_eq!(table.size(&store), expected);
    }
    // The slots grown with null hold null.
    let null_slot = Table::size(&table, &store) - 1;
    assert!(matches!(
        table.get(&store, null_slot),
        Some(Val::FuncRef(None))
    ));
}

#[test]
fn resource_limiter_refuses_growth_and_instances() {
    struct Data {
        limits: StoreLimits,
    }
    let engine = Engine::default();
    let module = Module::new(
        &engine,
        r#"(module (memory (export "m") 1)
             (func (export "grow") (param i32) (result i32) local.get 0 memory.grow))"#,
    )
    .unwrap();
    let limits = StoreLimitsBuilder::new()
        .memory_size(3 * 65536)
        .instances(2)
        .build();
    let mut store = Store::new(&engine, Data { limits });
    store.limiter(|data| &mut data.limits);
    let inst = Instance::new(&mut store, &module, &[]).unwrap();
    let grow = inst.get_typed_func::<i32, i32>(&store, "grow").unwrap();
    assert_eq!(grow.call(&mut store, 2).unwrap(), 1);
    assert_eq!(grow.call(&mut store, 1).unwrap(), -1, "limited to 3 pages");
    let memory = inst.get_memory(&store, "m").unwrap();
    assert!(memory.grow(&mut store, 1).is_err());
    assert_eq!(memory.size(&store), 3);
    Instance::new(&mut store, &module, &[]).unwrap();
    let err = Instance::new(&mut store, &module, &[]).unwrap_err();
    assert!(err.to_string().contains("instance limit"), "{err}");
    let err = Memory::new(&mut store, MemoryType::new(4, None)).unwrap_err();
    assert!(err.to_string().contains("limiter"), "{err}");
}

#[test]
fn host_errors_keep_their_type_and_backtrace() {
    #[derive(Debug, PartialEq)]
    struct Denied(&'static str);
    impl std::fmt::Display for Denied {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            write!(f, "denied: {}", self.0)
        }
    }
    impl std::error::Error for Denied {}

    let engine = Engine::default();
    let module = Module::new(
        &engine,
        r#"(module
            (import "host" "check" (func $check (param i32)))
            (import "host" "exit" (func $exit (param i32)))
            (func $inner (param i32) local.get 0 call $check)
            (func (export "run") (param i32) local.get 0 call $inner)
            (func (export "quit") (param i32) local.get 0 call $exit unreachable))"#,
    )
    .unwrap();
    let mut linker = Linker::<()>::new(&engine);
    linker
        .func_wrap("host", "check", |x: i32| -> Result<(), Error> {
            if x < 0 {
                Err(Error::new(Denied("negative")))
            } else {
                Ok(())
            }
        })
        .unwrap()
        .func_wrap("host", "exit", |code: i32| -> Result<(), Error> {
            Err(Error::new(I32Exit(code)))
        })
        .unwrap();
    let mut store = Store::new(&engine, ());
    let inst = linker.instantiate(&mut store, &module).unwrap();
    let run = inst.get_typed_func::<i32, ()>(&store, "run").unwrap();
    run.call(&mut store, 1).unwrap();
    let err = run.call(&mut store, -1).unwrap_err();
    assert_eq!(err.downcast_ref::<Denied>(), Some(&Denied("negative")));
    assert_eq!(err.trap_code(), None);
    // Two wasm frames were active: `inner` (calling the host) and `run`.
    assert_eq!(err.wasm_backtrace().len(), 2, "{err}");
    let quit = inst.get_typed_func::<i32, ()>(&store, "quit").unwrap();
    let err = quit.call(&mut store, 3).unwrap_err();
    assert_eq!(err.i32_exit_status(), Some(3));
    // anyhow errors pass through too.
    let f = Func::wrap(&mut store, || -> Result<(), anyhow::Error> {
        Err(anyhow::Error::new(Denied("anyhow")))
    });
    let err = f.call(&mut store, &[], &mut []).unwrap_err();
    assert_eq!(err.downcast_ref::<Denied>(), Some(&Denied("anyhow")));
}

#[test]
fn host_functions_reenter_their_store_and_take_sixteen_parameters() {
    let engine = Engine::default();
    let module = Module::new(
        &engine,
        r#"(module
            (import "host" "sum16" (func $sum16 (param i32 i64 i32 i64 i32 i64 i32 i64
                                                   i32 i64 i32 i64 f32 f64 f32 f64) (result i64)))
            (import "host" "again" (func $again (param i32) (result i32)))
            (memory (export "memory") 1)
            (func (export "call16") (result i64)
              i32.const 1 i64.const 2 i32.const 3 i64.const 4 i32.const 5 i64.const 6
              i32.const 7 i64.const 8 i32.const 9 i64.const 10 i32.const 11 i64.const 12
              f32.const 13 f64.const 14 f32.const 15 f64.const 16
              call $sum16)
            (func $fact (export "fact") (param i32) (result i32)
              local.get 0 i32.const 1 i32.le_s
              if (result i32) i32.const 1
              else local.get 0 local.get 0 i32.const 1 i32.sub call $again i32.mul end))"#,
    )
    .unwrap();
    let mut linker = Linker::<Vec<i32>>::new(&engine);
    linker
        .func_wrap(
            "host",
            "sum16",
            |a: i32,
             b: i64,
             c: i32,
             d: i64,
             e: i32,
             f: i64,
             g: i32,
             h: i64,
             i: i32,
             j: i64,
             k: i32,
             l: i64,
             m: f32,
             n: f64,
             o: f32,
             p: f64|
             -> i64 {
                (a + c + e + g + i + k) as i64
                    + b
                    + d
                    + f
                    + h
                    + j
                    + l
                    + (m as f64 + n + o as f64 + p) as i64
            },
        )
        .unwrap()
        // The host calls back into the instance that called it (fact(n) = n * fact(n-1)
        // through the host), and writes each step to the caller's memory.
        .func_wrap(
            "host",
            "again",
            |mut caller: Caller<'_, Vec<i32>>, n: i32| -> Result<i32, Error> {
                caller.data_mut().push(n);
                let fact = caller
                    .get_export("fact")
                    .and_then(Extern::into_func)
                    .unwrap()
                    .typed::<i32, i32>(&caller)?;
                let r = fact.call(&mut caller, n)?;
                let memory = caller
                    .get_export("memory")
                    .and_then(Extern::into_memory)
                    .unwrap();
                let (bytes, log) = memory.data_and_store_mut(&mut caller);
                bytes[n as usize * 4..][..4].copy_from_slice(&r.to_le_bytes());
                assert_eq!(log.first(), Some(&5));
                Ok(r)
            },
        )
        .unwrap();
    let mut store = Store::new(&engine, Vec::new());
    let inst = linker.instantiate(&mut store, &module).unwrap();
    let call16 = inst.get_typed_func::<(), i64>(&store, "call16").unwrap();
    assert_eq!(call16.call(&mut store, ()).unwrap(), (1..=16).sum::<i64>());
    let fact = inst.get_typed_func::<i32, i32>(&store, "fact").unwrap();
    assert_eq!(fact.call(&mut store, 6).unwrap(), 720);
    assert_eq!(store.data(), &[5, 4, 3, 2, 1]);
    let memory = inst.get_memory(&store, "memory").unwrap();
    assert_eq!(memory.data(&store)[5 * 4..][..4], 120i32.to_le_bytes());
}

#[test]
fn handles_of_another_store_are_refused() {
    let engine = Engine::default();
    let module = Module::new(
        &engine,
        r#"(module (import "m" "mem" (memory 1)) (func (export "f") (result i32) i32.const 1))"#,
    )
    .unwrap();
    let mut a = Store::new(&engine, ());
    let mut b = Store::new(&engine, ());
    let mem_a = Memory::new(&mut a, MemoryType::new(1, None)).unwrap();
    let err = Instance::new(&mut b, &module, &[mem_a.into()]).unwrap_err();
    assert!(matches!(err, Error::Link(_)), "{err}");
    let inst = Instance::new(&mut a, &module, &[mem_a.into()]).unwrap();
    let f = inst.get_typed_func::<(), i32>(&a, "f").unwrap();
    assert!(matches!(f.call(&mut b, ()), Err(Error::Link(_))));
    assert!(mem_a.grow(&mut b, 1).is_err());
    let table = Table::new(
        &mut a,
        TableType {
            element: ValType::FuncRef,
            minimum: 1,
            maximum: None,
            table64: false,
        },
        Val::FuncRef(None),
    )
    .unwrap();
    let f_b = Func::wrap(&mut b, || {});
    assert!(table.set(&mut a, 0, Val::FuncRef(Some(f_b))).is_err());
    let mut linker = Linker::new(&engine);
    assert!(linker.define(&b, "m", "mem", mem_a).is_err());
    linker.define(&a, "m", "mem", mem_a).unwrap();
    let err = linker.define(&a, "m", "mem", mem_a).unwrap_err();
    assert!(err.to_string().contains("already defined"), "{err}");
    linker
        .allow_shadowing(true)
        .define(&a, "m", "mem", mem_a)
        .unwrap();
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| mem_a.size(&b)));
    assert!(
        result.is_err(),
        "a handle of another store panics in infallible accessors"
    );
}

#[test]
fn lazy_and_eager_modes_agree_on_simd_bodies() {
    // Every wasm 2.0 operator compiles now, so nothing valid is reported as unsupported; a
    // SIMD body loads and runs in both modes.
    let simd_op = r#"(module
        (func (export "ok") (result i32) i32.const 1)
        (func (export "lane") (result i32) v128.const i32x4 7 0 0 0 i32x4.extract_lane 0))"#;
    for lazy in [true, false] {
        let engine = Engine::new(Config::new().lazy_compilation(lazy)).unwrap();
        let module = Module::new(&engine, simd_op).unwrap();
        let mut store = Store::new(&engine, ());
        let instance = Instance::new(&mut store, &module, &[]).unwrap();
        let lane = instance.get_typed_func::<(), i32>(&store, "lane").unwrap();
        assert_eq!(lane.call(&mut store, ()).unwrap(), 7, "lazy={lazy}");
    }
    // Found by difftest (when v128 was not supported at all): lazy and eager mode must agree
    // on a v128 parameter in a body without SIMD operators. Both accept it now.
    let v128_param = r#"(module
        (func (export "f") (result i32) (i32.const 1))
        (func (export "d") (param v128) (drop (local.get 0))))"#;
    for lazy in [true, false] {
        let engine = Engine::new(Config::new().lazy_compilation(lazy)).unwrap();
        let module = Module::new(&engine, v128_param);
        assert!(module.is_ok(), "lazy={lazy}: {module:?}");
    }
}
