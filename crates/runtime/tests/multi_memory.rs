//! Multi-memory and extended constant expressions (wasm 3.0) through the public API, lazy
//! and eager.

use wjit::{
    Config, Engine, Error, Global, GlobalType, Instance, Linker, Memory, MemoryType, Module, Store,
    TrapCode, Val, ValType,
};

fn engines() -> Vec<Engine> {
    [true, false]
        .map(|lazy| Engine::new(Config::new().lazy_compilation(lazy)).unwrap())
        .into()
}

fn func(store: &Store<()>, inst: &Instance, name: &str) -> wjit::Func {
    inst.get_func(store, name).unwrap()
}

const TWO_MEMORIES: &str = r#"(module
    (memory $a (export "a") 1)
    (memory $b (export "b") 1 2)
    (data (memory $b) (i32.const 16) "\2a\00\00\00")
    (data $passive "wjit")
    (func (export "load_b") (param i32) (result i32) (i32.load $b (local.get 0)))
    (func (export "store_both") (param i32 i32 i32)
      (i32.store $a (local.get 0) (local.get 1))
      (i32.store $b (local.get 0) (local.get 2)))
    (func (export "sum") (param i32) (result i32)
      (i32.add (i32.load $a (local.get 0)) (i32.load $b (local.get 0))))
    ;; Every allocatable register holds a live value when memory $b's base is loaded.
    (func (export "pressure") (param i32) (result i32)
      (local.get 0) (i32.const 1) (i32.const 2) (i32.const 3) (i32.const 4)
      (i32.const 5) (i32.const 6) (i32.const 7) (i32.const 8) (i32.const 9)
      (i32.load8_u $b offset=16 (local.get 0))
      i32.add i32.add i32.add i32.add i32.add i32.add i32.add i32.add i32.add i32.add)
    (func (export "v128_b") (param i32) (result i64)
      (i64x2.extract_lane 0 (v128.load $b (local.get 0))))
    (func (export "lane_b") (param i32)
      (v128.store32_lane $b 1 (local.get 0) (v128.const i32x4 1 2 3 4)))
    (func (export "size_b") (result i32) (memory.size $b))
    (func (export "grow_b") (param i32) (result i32) (memory.grow $b (local.get 0)))
    (func (export "fill_b") (param i32 i32 i32) (memory.fill $b (local.get 0) (local.get 1) (local.get 2)))
    (func (export "copy_b_to_a") (param i32 i32 i32)
      (memory.copy $a $b (local.get 0) (local.get 1) (local.get 2)))
    (func (export "init_b") (param i32 i32 i32)
      (memory.init $b $passive (local.get 0) (local.get 1) (local.get 2))))"#;

#[test]
fn two_memories_are_independent() {
    for engine in engines() {
        let module = Module::new(&engine, TWO_MEMORIES).unwrap();
        let mut store = Store::new(&engine, ());
        let inst = Instance::new(&mut store, &module, &[]).unwrap();
        let load_b = func(&store, &inst, "load_b")
            .typed::<i32, i32>(&store)
            .unwrap();
        let store_both = func(&store, &inst, "store_both")
            .typed::<(i32, i32, i32), ()>(&store)
            .unwrap();
        let sum = func(&store, &inst, "sum")
            .typed::<i32, i32>(&store)
            .unwrap();
        let pressure = func(&store, &inst, "pressure")
            .typed::<i32, i32>(&store)
            .unwrap();
        // The active segment went to memory $b only.
        assert_eq!(load_b.call(&mut store, 16).unwrap(), 42);
        let a = inst.get_memory(&store, "a").unwrap();
        let b = inst.get_memory(&store, "b").unwrap();
        assert_eq!(&a.data(&store)[16..20], &[0, 0, 0, 0]);
        store_both.call(&mut store, (100, 7, 35)).unwrap();
        assert_eq!(sum.call(&mut store, 100).unwrap(), 42);
        assert_eq!(&a.data(&store)[100..104], &7i32.to_le_bytes());
        assert_eq!(&b.data(&store)[100..104], &35i32.to_le_bytes());
        assert_eq!(pressure.call(&mut store, 0).unwrap(), 45 + 42);
        // Out of bounds in memory $b (1 page) traps, in bounds of $a or not.
        let code = |e: Error| e.as_trap().map(|t| t.code());
        assert_eq!(
            code(load_b.call(&mut store, 65536).unwrap_err()),
            Some(TrapCode::MemoryOutOfBounds)
        );
    }
}

#[test]
fn simd_and_bulk_operators_on_a_second_memory() {
    for engine in engines() {
        let module = Module::new(&engine, TWO_MEMORIES).unwrap();
        let mut store = Store::new(&engine, ());
        let inst = Instance::new(&mut store, &module, &[]).unwrap();
        let b = inst.get_memory(&store, "b").unwrap();
        let a = inst.get_memory(&store, "a").unwrap();
        let v128_b = func(&store, &inst, "v128_b")
            .typed::<i32, i64>(&store)
            .unwrap();
        assert_eq!(v128_b.call(&mut store, 16).unwrap(), 42);
        func(&store, &inst, "lane_b")
            .typed::<i32, ()>(&store)
            .unwrap()
            .call(&mut store, 200)
            .unwrap();
        assert_eq!(&b.data(&store)[200..204], &2i32.to_le_bytes());
        func(&store, &inst, "fill_b")
            .typed::<(i32, i32, i32), ()>(&store)
            .unwrap()
            .call(&mut store, (300, 0xab, 4))
            .unwrap();
        assert_eq!(&b.data(&store)[300..305], &[0xab, 0xab, 0xab, 0xab, 0]);
        func(&store, &inst, "init_b")
            .typed::<(i32, i32, i32), ()>(&store)
            .unwrap()
            .call(&mut store, (400, 0, 4))
            .unwrap();
        assert_eq!(&b.data(&store)[400..404], b"wjit");
        let copy = func(&store, &inst, "copy_b_to_a")
            .typed::<(i32, i32, i32), ()>(&store)
            .unwrap();
        copy.call(&mut store, (500, 400, 4)).unwrap();
        assert_eq!(&a.data(&store)[500..504], b"wjit");
        // The source range is checked against memory $b, the destination against $a.
        let code = |e: Error| e.as_trap().map(|t| t.code());
        assert_eq!(
            code(copy.call(&mut store, (0, 65535, 2)).unwrap_err()),
            Some(TrapCode::MemoryOutOfBounds)
        );
        let size_b = func(&store, &inst, "size_b")
            .typed::<(), i32>(&store)
            .unwrap();
        let grow_b = func(&store, &inst, "grow_b")
            .typed::<i32, i32>(&store)
            .unwrap();
        assert_eq!(size_b.call(&mut store, ()).unwrap(), 1);
        assert_eq!(grow_b.call(&mut store, 1).unwrap(), 1);
        assert_eq!(
            grow_b.call(&mut store, 1).unwrap(),
            -1,
            "maximum is 2 pages"
        );
        assert_eq!(size_b.call(&mut store, ()).unwrap(), 2);
        assert_eq!(a.size(&store), 1);
    }
}

#[test]
fn imported_second_memory() {
    for engine in engines() {
        let module = Module::new(
            &engine,
            r#"(module
                (import "env" "m0" (memory 1))
                (import "env" "m1" (memory 1))
                (func (export "read1") (param i32) (result i32) (i32.load8_u 1 (local.get 0))))"#,
        )
        .unwrap();
        let mut store = Store::new(&engine, ());
        let m0 = Memory::new(&mut store, MemoryType::new(1, None)).unwrap();
        let m1 = Memory::new(&mut store, MemoryType::new(1, None)).unwrap();
        m1.data_mut(&mut store)[5] = 99;
        let mut linker = Linker::new(&engine);
        linker.define(&store, "env", "m0", m0).unwrap();
        linker.define(&store, "env", "m1", m1).unwrap();
        let inst = linker.instantiate(&mut store, &module).unwrap();
        let read1 = inst.get_typed_func::<i32, i32>(&store, "read1").unwrap();
        assert_eq!(read1.call(&mut store, 5).unwrap(), 99);
    }
}

#[test]
fn multi_memory_can_be_switched_off() {
    let engine = Engine::new(Config::new().wasm_multi_memory(false)).unwrap();
    let err = Module::new(&engine, TWO_MEMORIES).unwrap_err();
    assert!(err.to_string().contains("multiple memories"), "{err}");
}

#[test]
fn extended_constant_expressions() {
    let wat = r#"(module
        (import "env" "base" (global $base i32))
        (global (export "g") i32 (i32.add (global.get $base) (i32.mul (i32.const 3) (i32.const 4))))
        (global (export "h") i64 (i64.sub (i64.const 1) (i64.const 3)))
        (memory (export "m") 1)
        (data (i32.sub (global.get $base) (i32.const 1)) "x"))"#;
    for engine in engines() {
        let module = Module::new(&engine, wat).unwrap();
        let mut store = Store::new(&engine, ());
        let ty = GlobalType {
            content: ValType::I32,
            mutable: false,
        };
        let base = Global::new(&mut store, ty, Val::I32(30)).unwrap();
        let inst = Instance::new(&mut store, &module, &[base.into()]).unwrap();
        let g = inst.get_global(&store, "g").unwrap().get(&store);
        assert_eq!(g.i32(), Some(42));
        let h = inst.get_global(&store, "h").unwrap().get(&store);
        assert_eq!(h.i64(), Some(-2));
        let m = inst.get_memory(&store, "m").unwrap();
        assert_eq!(m.data(&store)[29], b'x');
    }
    let engine = Engine::new(Config::new().wasm_extended_const(false)).unwrap();
    assert!(Module::new(&engine, wat).is_err());
}

#[test]
fn proposals_by_wasmtime_name() {
    let mut config = Config::new();
    config.wasm_feature("multi_memory", false).unwrap();
    let engine = Engine::new(&config).unwrap();
    assert!(Module::new(&engine, TWO_MEMORIES).is_err());
    config.wasm_feature("multi-memory", true).unwrap();
    let engine = Engine::new(&config).unwrap();
    Module::new(&engine, TWO_MEMORIES).unwrap();
    let err = config.wasm_feature("no-such-thing", true).unwrap_err();
    assert!(err.to_string().contains("multi-memory"), "{err}");
}
