//! memory64 (64-bit memories and tables) through the public API, lazy and eager.

use wjit::{
    Config, Engine, Error, Instance, Linker, Memory, MemoryType, Module, Store, TrapCode, Val,
};

fn engines() -> Vec<Engine> {
    [true, false]
        .map(|lazy| Engine::new(Config::new().lazy_compilation(lazy)).unwrap())
        .into()
}

fn trap_code(e: Error) -> Option<TrapCode> {
    e.as_trap().map(|t| t.code())
}

const MODULE: &str = r#"(module
    (memory $m (export "m") i64 1 3)
    (table $t (export "t") i64 2 funcref)
    (data (memory $m) (i64.const 8) "\2a")
    (elem (table $t) (i64.const 1) func $seven)
    (type $v (func (result i32)))
    (func $seven (result i32) (i32.const 7))
    (func (export "load") (param i64) (result i32) (i32.load8_u (local.get 0)))
    (func (export "load_far") (param i64) (result i32)
      (i32.load8_u offset=0x1_0000_0000 (local.get 0)))
    (func (export "store") (param i64 i32) (i32.store8 (local.get 0) (local.get 1)))
    (func (export "size") (result i64) (memory.size))
    (func (export "grow") (param i64) (result i64) (memory.grow (local.get 0)))
    (func (export "fill") (param i64 i32 i64) (memory.fill (local.get 0) (local.get 1) (local.get 2)))
    (func (export "call") (param i64) (result i32) (call_indirect $t (type $v) (local.get 0)))
    (func (export "table_size") (result i64) (table.size $t))
    (func (export "table_grow") (param i64) (result i64) (table.grow $t (ref.null func) (local.get 0))))"#;

#[test]
fn sixty_four_bit_memory() {
    for engine in engines() {
        let module = Module::new(&engine, MODULE).unwrap();
        let mut store = Store::new(&engine, ());
        let inst = Instance::new(&mut store, &module, &[]).unwrap();
        let load = inst.get_typed_func::<i64, i32>(&store, "load").unwrap();
        let load_far = inst.get_typed_func::<i64, i32>(&store, "load_far").unwrap();
        let store_ = inst
            .get_typed_func::<(i64, i32), ()>(&store, "store")
            .unwrap();
        let size = inst.get_typed_func::<(), i64>(&store, "size").unwrap();
        let grow = inst.get_typed_func::<i64, i64>(&store, "grow").unwrap();
        let fill = inst
            .get_typed_func::<(i64, i32, i64), ()>(&store, "fill")
            .unwrap();
        assert_eq!(load.call(&mut store, 8).unwrap(), 42);
        store_.call(&mut store, (65535, 9)).unwrap();
        assert_eq!(load.call(&mut store, 65535).unwrap(), 9);
        // Out of bounds: past the end, an index with a non-zero upper half (which would be in
        // bounds if truncated to 32 bits), and an offset beyond 32 bits.
        for index in [65536, 1 << 32, -1] {
            let e = load.call(&mut store, index).unwrap_err();
            assert_eq!(trap_code(e), Some(TrapCode::MemoryOutOfBounds), "{index}");
        }
        let e = load_far.call(&mut store, 0).unwrap_err();
        assert_eq!(trap_code(e), Some(TrapCode::MemoryOutOfBounds));
        assert_eq!(size.call(&mut store, ()).unwrap(), 1);
        assert_eq!(grow.call(&mut store, 1 << 32).unwrap(), -1);
        assert_eq!(grow.call(&mut store, 2).unwrap(), 1);
        assert_eq!(grow.call(&mut store, 1).unwrap(), -1, "maximum is 3 pages");
        assert_eq!(size.call(&mut store, ()).unwrap(), 3);
        fill.call(&mut store, (100, 5, 3)).unwrap();
        assert_eq!(load.call(&mut store, 102).unwrap(), 5);
        // A length whose lower half alone would be in bounds.
        let e = fill.call(&mut store, (0, 5, (1 << 32) | 1)).unwrap_err();
        assert_eq!(trap_code(e), Some(TrapCode::MemoryOutOfBounds));
        let m = inst.get_memory(&store, "m").unwrap();
        assert!(m.ty(&store).memory64);
    }
}

#[test]
fn sixty_four_bit_table() {
    for engine in engines() {
        let module = Module::new(&engine, MODULE).unwrap();
        let mut store = Store::new(&engine, ());
        let inst = Instance::new(&mut store, &module, &[]).unwrap();
        let call = inst.get_typed_func::<i64, i32>(&store, "call").unwrap();
        let table_size = inst
            .get_typed_func::<(), i64>(&store, "table_size")
            .unwrap();
        let table_grow = inst
            .get_typed_func::<i64, i64>(&store, "table_grow")
            .unwrap();
        assert_eq!(call.call(&mut store, 1).unwrap(), 7);
        for index in [2, (1 << 32) | 1] {
            let e = call.call(&mut store, index).unwrap_err();
            assert_eq!(trap_code(e), Some(TrapCode::UndefinedElement), "{index}");
        }
        assert_eq!(table_size.call(&mut store, ()).unwrap(), 2);
        assert_eq!(table_grow.call(&mut store, 1 << 32).unwrap(), -1);
        assert_eq!(table_grow.call(&mut store, 3).unwrap(), 2);
        assert_eq!(table_size.call(&mut store, ()).unwrap(), 5);
        let t = inst.get_table(&store, "t").unwrap();
        assert!(t.ty(&store).table64);
        assert_eq!(t.size(&store), 5);
    }
}

#[test]
fn memory_index_types_must_match_on_import() {
    let engine = Engine::default();
    let module = Module::new(
        &engine,
        r#"(module (import "env" "m" (memory i64 1)) (func (export "size") (result i64) memory.size))"#,
    )
    .unwrap();
    let mut store = Store::new(&engine, ());
    let mut linker = Linker::new(&engine);
    let m32 = Memory::new(&mut store, MemoryType::new(1, None)).unwrap();
    linker.define(&store, "env", "m", m32).unwrap();
    let err = linker.instantiate(&mut store, &module).unwrap_err();
    assert!(
        err.to_string().contains("incompatible import type"),
        "{err}"
    );
    let mut linker = Linker::new(&engine);
    let m64 = Memory::new(&mut store, MemoryType::new64(2, None)).unwrap();
    linker.define(&store, "env", "m", m64).unwrap();
    let inst = linker.instantiate(&mut store, &module).unwrap();
    let size = inst.get_func(&store, "size").unwrap();
    let mut out = [Val::I64(0)];
    size.call(&mut store, &[], &mut out).unwrap();
    assert!(matches!(out[0], Val::I64(2)));
}

#[test]
fn memory64_can_be_switched_off() {
    let engine = Engine::new(Config::new().wasm_memory64(false)).unwrap();
    let err = Module::new(&engine, MODULE).unwrap_err();
    assert!(err.to_string().contains("memory64"), "{err}");
}
