//! Encodings that only later proposals allow are malformed unless the proposal is enabled
//! (found by differential testing: the binary reader used to run with every proposal
//! enabled, whatever the config said).

use wjit::{Config, Engine, Error, Instance, Module, Store};

/// `(module (memory 1) (func (export "run") (param i32) (result i32) local.get 0 i32.load
/// <memarg>))` with the raw memarg bytes given.
fn load_module(memarg: &[u8]) -> Vec<u8> {
    let mut body = vec![0x00, 0x20, 0x00, 0x28];
    body.extend_from_slice(memarg);
    body.push(0x0b);
    let mut code = vec![0x01, body.len() as u8];
    code.extend(body);
    let mut m = vec![0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00];
    m.extend([0x01, 0x06, 0x01, 0x60, 0x01, 0x7f, 0x01, 0x7f]); // (i32) -> i32
    m.extend([0x03, 0x02, 0x01, 0x00]); // one function of type 0
    m.extend([0x05, 0x03, 0x01, 0x00, 0x01]); // memory 1
    m.extend([0x07, 0x07, 0x01, 0x03, b'r', b'u', b'n', 0x00, 0x00]); // export "run"
    m.extend([0x0a, code.len() as u8]);
    m.extend(code);
    m
}

fn engines() -> Vec<Engine> {
    [true, false]
        .map(|lazy| Engine::new(Config::new().lazy_compilation(lazy)).unwrap())
        .into()
}

#[test]
fn canonical_and_five_byte_offsets_load() {
    for engine in engines() {
        for memarg in [&[0x02, 0x04][..], &[0x02, 0x84, 0x80, 0x80, 0x80, 0x00]] {
            let module = Module::new(&engine, load_module(memarg)).unwrap();
            let mut store = Store::new(&engine, ());
            let inst = Instance::new(&mut store, &module, &[]).unwrap();
            let run = inst.get_typed_func::<i32, i32>(&store, "run").unwrap();
            assert_eq!(run.call(&mut store, 0).unwrap(), 0);
        }
    }
}

#[test]
fn six_byte_memarg_offset_is_malformed_without_memory64() {
    for lazy in [true, false] {
        let mut config = Config::new();
        config.lazy_compilation(lazy).wasm_memory64(false);
        let engine = Engine::new(&config).unwrap();
        let err = Module::new(
            &engine,
            load_module(&[0x02, 0x80, 0x80, 0x80, 0x80, 0x80, 0x00]),
        )
        .unwrap_err();
        assert!(matches!(err, Error::Compile(_)), "{err}");
    }
}

/// With memory64 (the default), memarg offsets are 64-bit LEB128s of up to 10 bytes.
#[test]
fn six_byte_memarg_offset_reads_with_memory64() {
    for engine in engines() {
        let module = load_module(&[0x02, 0x80, 0x80, 0x80, 0x80, 0x80, 0x00]);
        let module = Module::new(&engine, module).unwrap();
        let mut store = Store::new(&engine, ());
        let inst = Instance::new(&mut store, &module, &[]).unwrap();
        let run = inst.get_typed_func::<i32, i32>(&store, "run").unwrap();
        assert_eq!(run.call(&mut store, 0).unwrap(), 0);
    }
}

#[test]
fn memory_index_flag_is_malformed_without_multi_memory() {
    for lazy in [true, false] {
        let mut config = Config::new();
        config.lazy_compilation(lazy).wasm_multi_memory(false);
        let engine = Engine::new(&config).unwrap();
        let err = Module::new(&engine, load_module(&[0x42, 0x00, 0x00])).unwrap_err();
        assert!(matches!(err, Error::Compile(_)), "{err}");
        assert!(err.to_string().contains("flags"), "{err}");
    }
}

/// With multi-memory (the default), bit 6 of the flags announces a memory index.
#[test]
fn memory_index_flag_reads_a_memory_index_with_multi_memory() {
    for engine in engines() {
        let module = Module::new(&engine, load_module(&[0x42, 0x00, 0x00])).unwrap();
        let mut store = Store::new(&engine, ());
        let inst = Instance::new(&mut store, &module, &[]).unwrap();
        let run = inst.get_typed_func::<i32, i32>(&store, "run").unwrap();
        assert_eq!(run.call(&mut store, 0).unwrap(), 0);
        // Memory index 1 does not exist.
        let err = Module::new(&engine, load_module(&[0x42, 0x01, 0x00])).unwrap_err();
        assert!(err.to_string().contains("memory"), "{err}");
    }
}
