//! Precompiled modules: `Module::serialize` / `Engine::precompile_module` and
//! `Module::deserialize` give modules that run like the originals (results, traps,
//! backtraces, exceptions, `call_indirect` in an engine whose signature ids differ), and
//! every wrong or damaged file is refused with an error, never a panic.

use wjit::{
    Config, Engine, Error, Func, Instance, Linker, Module, Precompiled, Store, TrapCode, Val,
};

/// Functions calling each other directly, a loop, memory with data, a global, a start
/// function and an import.
const PROGRAM: &str = r#"(module
  (import "host" "add" (func $host_add (param i32 i32) (result i32)))
  (memory (export "mem") 1)
  (data (i32.const 16) "\05\00\00\00\07\00\00\00")
  (global $g (mut i64) (i64.const 40))
  (func $fib (export "fib") (param i32) (result i32)
    (if (result i32) (i32.lt_u (local.get 0) (i32.const 2))
      (then (local.get 0))
      (else (i32.add (call $fib (i32.sub (local.get 0) (i32.const 1)))
                     (call $fib (i32.sub (local.get 0) (i32.const 2)))))))
  (func (export "sum") (param $n i32) (result i64)
    (local $acc i64)
    (block $done
      (loop $l
        (br_if $done (i32.eqz (local.get $n)))
        (local.set $acc (i64.add (local.get $acc) (i64.extend_i32_u (local.get $n))))
        (local.set $n (i32.sub (local.get $n) (i32.const 1)))
        (br $l)))
    (i64.add (local.get $acc) (global.get $g)))
  (func (export "loads") (result i32)
    (call $host_add (i32.load (i32.const 16)) (i32.load (i32.const 20))))
  (func $init (global.set $g (i64.const 2)))
  (start $init))"#;

fn run_program(module: &Module) -> (i32, i64, i32) {
    let engine = module.engine();
    let mut linker = Linker::new(engine);
    linker
        .func_wrap("host", "add", |a: i32, b: i32| a.wrapping_add(b))
        .unwrap();
    let mut store = Store::new(engine, ());
    let instance = linker.instantiate(&mut store, module).unwrap();
    let fib = instance.get_typed_func::<i32, i32>(&store, "fib").unwrap();
    let sum = instance.get_typed_func::<i32, i64>(&store, "sum").unwrap();
    let loads = instance.get_typed_func::<(), i32>(&store, "loads").unwrap();
    (
        fib.call(&mut store, 20).unwrap(),
        sum.call(&mut store, 1000).unwrap(),
        loads.call(&mut store, ()).unwrap(),
    )
}

fn eager() -> Engine {
    Engine::new(Config::new().lazy_compilation(false)).unwrap()
}

fn deserialize(engine: &Engine, bytes: &[u8]) -> Result<Module, Error> {
    // SAFETY: every file given here was written by this wjit's `serialize` (or is a damaged
    // copy of one that the checks must refuse).
    unsafe { Module::deserialize(engine, bytes) }
}

#[test]
fn roundtrip_runs_the_same() {
    let engine = eager();
    let module = Module::new(&engine, PROGRAM).unwrap();
    let expected = run_program(&module);
    assert_eq!(expected, (6765, 500_502, 12));
    let bytes = module.serialize().unwrap();
    assert_eq!(engine.detect_precompiled(&bytes), Some(Precompiled::Module));
    assert_eq!(engine.detect_precompiled(b"\0asm\x01\0\0\0"), None);

    // Into a fresh engine of the same configuration (lazy or not does not matter).
    let other = Engine::default();
    let loaded = deserialize(&other, &bytes).unwrap();
    assert_eq!(loaded.compiled_functions(), 4);
    assert_eq!(run_program(&loaded), expected);
    assert_eq!(
        loaded
            .imports()
            .map(|i| i.name().to_string())
            .collect::<Vec<_>>(),
        ["add"]
    );
    assert_eq!(loaded.exports().count(), 4);
    // Several stores, and serializing the loaded module again.
    assert_eq!(run_program(&loaded), expected);
    let again = deserialize(&other, &loaded.serialize().unwrap()).unwrap();
    assert_eq!(run_program(&again), expected);
    // `precompile_module` reads text and binary alike.
    let pre = other.precompile_module(PROGRAM.as_bytes()).unwrap();
    assert_eq!(run_program(&deserialize(&other, &pre).unwrap()), expected);
    // `Module::new` does not take precompiled bytes, and says so.
    let err = Module::new(&other, &pre).unwrap_err().to_string();
    assert!(err.contains("Module::deserialize"), "{err}");
}

#[test]
fn modules_without_functions_roundtrip() {
    let engine = Engine::default();
    for wat in [
        "(module)",
        r#"(module (memory (export "m") 1) (data (i32.const 3) "\2a"))"#,
    ] {
        let module =
            deserialize(&engine, &engine.precompile_module(wat.as_bytes()).unwrap()).unwrap();
        assert_eq!(module.compiled_functions(), 0);
        let mut store = Store::new(&engine, ());
        let instance = Instance::new(&mut store, &module, &[]).unwrap();
        let memory = instance.get_memory(&mut store, "m");
        assert_eq!(memory.is_some(), wat.contains("memory"));
        if let Some(memory) = memory {
            assert_eq!(memory.data(&store)[3], 42);
        }
    }
}

#[test]
fn lazily_compiled_module_serializes_every_function() {
    let engine = Engine::default();
    let module = Module::new(&engine, PROGRAM).unwrap();
    assert_eq!(module.compiled_functions(), 0);
    let bytes = module.serialize().unwrap();
    let loaded = deserialize(&engine, &bytes).unwrap();
    assert_eq!(loaded.compiled_functions(), 4);
    assert_eq!(run_program(&loaded), (6765, 500_502, 12));
}

#[test]
fn deserialize_file_reads_what_serialize_wrote() {
    let dir = std::env::temp_dir().join(format!("wjit-serialize-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("program.cwasm");
    let engine = Engine::default();
    std::fs::write(&path, engine.precompile_module(PROGRAM.as_bytes()).unwrap()).unwrap();
    // SAFETY: written just above by `precompile_module`.
    let loaded = unsafe { Module::deserialize_file(&engine, &path) }.unwrap();
    assert_eq!(run_program(&loaded), (6765, 500_502, 12));
    // SAFETY: a missing file is an I/O error before anything is loaded.
    let missing = unsafe { Module::deserialize_file(&engine, dir.join("missing.cwasm")) };
    assert!(matches!(missing, Err(Error::Io(_))), "{missing:?}");
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A backtrace frame: function index, name, wasm offset.
type Frame = (u32, Option<String>, Option<u32>);

/// The trap of export `name`, and its frames.
fn trap_frames(module: &Module, name: &str) -> (TrapCode, Vec<Frame>) {
    let mut store = Store::new(module.engine(), ());
    let instance = Instance::new(&mut store, module, &[]).unwrap();
    let f = instance.get_typed_func::<i32, i32>(&store, name).unwrap();
    let err = f.call(&mut store, 7).unwrap_err();
    let frames = err
        .wasm_backtrace()
        .iter()
        .map(|f| {
            (
                f.func_index(),
                f.func_name().map(String::from),
                f.wasm_offset(),
            )
        })
        .collect();
    (err.trap_code().unwrap(), frames)
}

#[test]
fn traps_and_backtraces_survive() {
    let wat = r#"(module
      (memory 1)
      (func $inner (param i32) (result i32)
        (i32.div_u (i32.const 1) (i32.sub (local.get 0) (i32.const 7))))
      (func $middle (param i32) (result i32)
        (i32.add (i32.const 1) (call $inner (local.get 0))))
      (func (export "div") (param i32) (result i32) (call $middle (local.get 0)))
      (func $oob (export "oob") (param i32) (result i32)
        (i32.load (i32.mul (local.get 0) (i32.const 0x10000000))))
      (func $unreachable (export "unreachable") (param i32) (result i32)
        (call $middle (unreachable))))"#;
    let engine = eager();
    let module = Module::new(&engine, wat).unwrap();
    let loaded = deserialize(&Engine::default(), &module.serialize().unwrap()).unwrap();
    for (name, code) in [
        ("div", TrapCode::IntegerDivisionByZero),
        ("oob", TrapCode::MemoryOutOfBounds),
        ("unreachable", TrapCode::Unreachable),
    ] {
        let original = trap_frames(&module, name);
        assert_eq!(original.0, code, "{name}");
        assert!(
            original.1.iter().all(|f| f.2.is_some()),
            "{name}: {original:?}"
        );
        assert_eq!(trap_frames(&loaded, name), original, "{name}");
    }
    let (_, frames) = trap_frames(&loaded, "div");
    let names: Vec<_> = frames.iter().map(|f| f.1.as_deref()).collect();
    assert_eq!(names, [Some("inner"), Some("middle"), None]);
}

/// Type ids are engine-wide and assigned in registration order: `call_indirect` must
/// check against the loading engine's ids, not the compiling engine's.
#[test]
fn call_indirect_checks_signatures_of_the_loading_engine() {
    let wat = r#"(module
      (type $unary (func (param i32) (result i32)))
      (type $nullary (func (result i64)))
      (import "host" "triple" (func $triple (type $unary)))
      (table 4 funcref)
      (elem (i32.const 0) $double $seven $triple)
      (func $double (type $unary) (i32.mul (local.get 0) (i32.const 2)))
      (func $seven (type $nullary) (i64.const 7))
      (func (export "unary") (param i32 i32) (result i32)
        (call_indirect (type $unary) (local.get 1) (local.get 0)))
      (func (export "nullary") (param i32) (result i64)
        (call_indirect (type $nullary) (local.get 0)))
      (func (export "tail") (param i32 i32) (result i32)
        (return_call_indirect (type $unary) (local.get 1) (local.get 0))))"#;
    let bytes = Engine::default().precompile_module(wat.as_bytes()).unwrap();

    // This engine registers the signatures in another order, so the id the compiling
    // engine gave `$unary` (1) is `$nullary`'s here: code with the compiling engine's ids
    // would call `$seven` as a `$unary` and refuse `$double`.
    let engine = Engine::default();
    let _first = Module::new(
        &engine,
        r#"(module (type (func (result i64))) (type (func (param f64)))
                   (type (func (param i32) (result i32))))"#,
    )
    .unwrap();
    let module = deserialize(&engine, &bytes).unwrap();
    let mut store = Store::new(&engine, ());
    let triple = Func::wrap(&mut store, |x: i32| x * 3);
    let instance = Instance::new(&mut store, &module, &[triple.into()]).unwrap();
    let unary = instance
        .get_typed_func::<(i32, i32), i32>(&store, "unary")
        .unwrap();
    let tail = instance
        .get_typed_func::<(i32, i32), i32>(&store, "tail")
        .unwrap();
    let nullary = instance
        .get_typed_func::<i32, i64>(&store, "nullary")
        .unwrap();
    assert_eq!(unary.call(&mut store, (0, 21)).unwrap(), 42);
    assert_eq!(unary.call(&mut store, (2, 5)).unwrap(), 15);
    assert_eq!(tail.call(&mut store, (0, 4)).unwrap(), 8);
    assert_eq!(nullary.call(&mut store, 1).unwrap(), 7);
    let code = |e: Error| e.trap_code();
    for (entry, expected) in [
        (1, TrapCode::BadSignature),
        (3, TrapCode::IndirectCallToNull),
        (4, TrapCode::UndefinedElement),
    ] {
        assert_eq!(
            code(unary.call(&mut store, (entry, 1)).unwrap_err()),
            Some(expected)
        );
        assert_eq!(
            code(tail.call(&mut store, (entry, 1)).unwrap_err()),
            Some(expected)
        );
    }
    for entry in [0, 2] {
        assert_eq!(
            code(nullary.call(&mut store, entry).unwrap_err()),
            Some(TrapCode::BadSignature)
        );
    }
}

#[test]
fn exceptions_are_caught_in_a_deserialized_module() {
    let wat = r#"(module
      (tag $e (export "e") (param i32))
      (func $thrower (param i32) (throw $e (i32.mul (local.get 0) (i32.const 10))))
      (func (export "catch") (param i32) (result i32)
        (block $h (result i32)
          (try_table (catch $e $h) (call $thrower (local.get 0)))
          (i32.const -1)))
      (func (export "uncaught") (param i32) (call $thrower (local.get 0))))"#;
    let config = || {
        let mut c = Config::new();
        c.wasm_exceptions(true);
        c
    };
    let bytes = Engine::new(&config())
        .unwrap()
        .precompile_module(wat.as_bytes())
        .unwrap();
    let engine = Engine::new(&config()).unwrap();
    let module = deserialize(&engine, &bytes).unwrap();
    let mut store = Store::new(&engine, ());
    let instance = Instance::new(&mut store, &module, &[]).unwrap();
    let catch = instance
        .get_typed_func::<i32, i32>(&store, "catch")
        .unwrap();
    assert_eq!(catch.call(&mut store, 4).unwrap(), 40);
    let uncaught = instance.get_func(&mut store, "uncaught").unwrap();
    let err = uncaught
        .call(&mut store, &[Val::I32(5)], &mut [])
        .unwrap_err();
    let exn = err.exception().expect("an uncaught exception");
    assert_eq!(exn.fields(&store)[0].i32(), Some(50));
    let tag = instance.get_tag(&mut store, "e").unwrap();
    assert!(exn.tag(&store) == tag);
}

#[test]
fn fuel_accounting_works_in_a_deserialized_module() {
    let wat = r#"(module (func (export "spin") (loop $l (br $l))))"#;
    let engine = Engine::new(Config::new().consume_fuel(true)).unwrap();
    let bytes = engine.precompile_module(wat.as_bytes()).unwrap();
    let module = deserialize(&engine, &bytes).unwrap();
    let mut store = Store::new(&engine, ());
    store.set_fuel(1000).unwrap();
    let instance = Instance::new(&mut store, &module, &[]).unwrap();
    let spin = instance.get_typed_func::<(), ()>(&store, "spin").unwrap();
    let err = spin.call(&mut store, ()).unwrap_err();
    assert_eq!(err.trap_code(), Some(TrapCode::OutOfFuel));
}

fn error_of(engine: &Engine, bytes: &[u8]) -> String {
    match deserialize(engine, bytes) {
        Ok(_) => panic!("loaded a bad file"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn wrong_files_and_settings_are_refused_with_the_reason() {
    let engine = Engine::default();
    let bytes = engine.precompile_module(PROGRAM.as_bytes()).unwrap();
    let wasm = wat::parse_str(PROGRAM).unwrap();
    assert!(error_of(&engine, &wasm).contains("not a wjit precompiled module"));

    let mut other_version = bytes.clone();
    other_version[8] ^= 0x40;
    let msg = error_of(&engine, &other_version);
    assert!(msg.contains("format version"), "{msg}");

    // The wjit version string follows the format version (u32 length, then the text).
    let mut other_wjit = bytes.clone();
    other_wjit[16] = b'9';
    let msg = error_of(&engine, &other_wjit);
    assert!(msg.contains("written by wjit 9"), "{msg}");

    type Setter = fn(&mut Config);
    let settings: [(&str, Setter); 4] = [
        ("epoch-interruption (module: off, engine: on)", |c| {
            c.epoch_interruption(true);
        }),
        ("consume-fuel (module: off, engine: on)", |c| {
            c.consume_fuel(true);
        }),
        ("tail-call (module: on, engine: off)", |c| {
            c.wasm_tail_call(false);
        }),
        ("exceptions (module: off, engine: on)", |c| {
            c.wasm_exceptions(true);
        }),
    ];
    for (expected, set) in settings {
        let mut config = Config::new();
        set(&mut config);
        let msg = error_of(&Engine::new(&config).unwrap(), &bytes);
        assert!(msg.contains("other engine settings"), "{msg}");
        assert!(msg.contains(expected), "{msg}");
    }
}

#[test]
fn truncated_files_are_errors_at_every_length() {
    let engine = Engine::default();
    let bytes = engine
        .precompile_module(br#"(module (func (export "f") (result i32) (i32.const 1)))"#)
        .unwrap();
    assert!(deserialize(&engine, &bytes).is_ok());
    for len in 0..bytes.len() {
        assert!(deserialize(&engine, &bytes[..len]).is_err(), "length {len}");
    }
    let mut longer = bytes.clone();
    longer.push(0);
    assert!(deserialize(&engine, &longer).is_err());
}

#[test]
fn every_flipped_byte_is_an_error() {
    let engine = Engine::default();
    let bytes = engine
        .precompile_module(
            br#"(module (func $f (export "f") (param i32) (result i32)
                  (call $g (i32.div_s (local.get 0) (i32.const 3))))
                (func $g (param i32) (result i32) (i32.add (local.get 0) (i32.const 1))))"#,
        )
        .unwrap();
    for i in 0..bytes.len() {
        for mask in [0x01, 0x80, 0xff] {
            let mut damaged = bytes.clone();
            damaged[i] ^= mask;
            assert!(
                deserialize(&engine, &damaged).is_err(),
                "byte {i} ^ {mask:#x} was accepted"
            );
        }
    }
}

/// The tables of a function are checked against its code even when the checksum matches
/// (a file put together by hand): a relocation past the end of the code must not write
/// past it.
#[test]
fn tables_are_checked_against_the_code() {
    let engine = Engine::default();
    let wat = br#"(module (func $f (export "f") (result i32) (call $g)) (func $g (result i32) (i32.const 1)))"#;
    let bytes = engine.precompile_module(wat).unwrap();
    let binary = wat::parse_bytes(wat).unwrap();
    // Find the first relocation (function $f calls $g, index 1): its (offset, callee) pair
    // follows the call-site table. Rewrite its offset to point past the code, then fix the
    // checksum.
    let payload_at = bytes.len() - payload_len(&bytes);
    let mut damaged = bytes.clone();
    let first_function = payload_at + 8 + binary.len() + 4;
    let code_len = u32_at(&damaged, first_function + 4) as usize;
    let mut at = first_function + 8 + code_len;
    let traps = u32_at(&damaged, at) as usize;
    at += 4 + traps * 9;
    let calls = u32_at(&damaged, at) as usize;
    at += 4 + calls * 8;
    assert_eq!(u32_at(&damaged, at), 1, "one relocation");
    assert_eq!(u32_at(&damaged, at + 8), 1, "to function 1");
    damaged[at + 4..at + 8].copy_from_slice(&(code_len as u32).to_le_bytes());
    let crc = crc32(&damaged[payload_at..]);
    damaged[payload_at - 4..payload_at].copy_from_slice(&crc.to_le_bytes());
    let msg = error_of(&engine, &damaged);
    assert!(msg.contains("relocation at"), "{msg}");
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(b[at..at + 4].try_into().unwrap())
}

/// The payload length, which the header stores just before the checksum and the payload:
/// found by trying every position (the header has no fixed size).
fn payload_len(bytes: &[u8]) -> usize {
    (8..bytes.len() - 12)
        .find_map(|at| {
            let len = u64::from_le_bytes(bytes[at..at + 8].try_into().unwrap()) as usize;
            (at + 12 + len == bytes.len()).then_some(len)
        })
        .unwrap()
}

/// CRC-32 (IEEE), bit by bit: what the file's checksum is.
fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in bytes {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0xedb8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

#[test]
fn a_module_that_does_not_compile_cannot_be_serialized() {
    let engine = Engine::default();
    let err = engine
        .precompile_module(br#"(module (func (result i32) (i64.const 1)))"#)
        .unwrap_err();
    assert!(matches!(err, Error::Compile(_)), "{err}");
}
