//! The WASI glue through the embedding API: captured output, exit codes, read-only and
//! read-write preopens, guest errors.

use wjit::{Config, Engine, Linker, Module, Store};
use wjit_wasi::{DirPerms, WasiCtx, WasiCtxBuilder, WritePipe};

struct Host {
    wasi: WasiCtx,
}

/// `open(path, flags)` in the first preopen (fd 3): returns the errno (0 on success).
const OPENER: &str = r#"(module
  (import "wasi_snapshot_preview1" "path_open"
    (func $path_open (param i32 i32 i32 i32 i32 i64 i64 i32 i32) (result i32)))
  (import "wasi_unstable" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 100) "f.txt")
  (data (i32.const 200) "old")
  ;; oflags 1 = creat; rights 64 = fd_write, 2 = fd_read
  (func (export "create") (result i32)
    (call $path_open (i32.const 3) (i32.const 0) (i32.const 100) (i32.const 5)
      (i32.const 1) (i64.const 64) (i64.const 0) (i32.const 0) (i32.const 0)))
  (func (export "read") (result i32)
    (call $path_open (i32.const 3) (i32.const 0) (i32.const 200) (i32.const 3)
      (i32.const 0) (i64.const 2) (i64.const 0) (i32.const 0) (i32.const 0)))
  ;; fd_write with an iovec pointer far out of bounds
  (func (export "bad_pointer") (result i32)
    (call $fd_write (i32.const 1) (i32.const 0x7fff0000) (i32.const 1) (i32.const 8))))"#;

fn setup(perms: DirPerms, dir: &std::path::Path) -> (Store<Host>, wjit::Instance) {
    let engine = Engine::new(&Config::new()).unwrap();
    let module = Module::new(&engine, OPENER).unwrap();
    let mut linker = Linker::<Host>::new(&engine);
    wjit_wasi::add_to_linker(&mut linker, |h: &mut Host| &mut h.wasi).unwrap();
    let wasi = WasiCtxBuilder::new()
        .preopened_dir(dir, "/", perms)
        .unwrap()
        .build()
        .unwrap();
    let mut store = Store::new(&engine, Host { wasi });
    let instance = linker.instantiate(&mut store, &module).unwrap();
    (store, instance)
}

fn call(store: &mut Store<Host>, instance: wjit::Instance, name: &str) -> Result<i32, wjit::Error> {
    instance
        .get_typed_func::<(), i32>(&*store, name)?
        .call(store, ())
}

#[test]
fn read_only_and_read_write_preopens() {
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("wasi-api-preopen");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("old"), "x").unwrap();

    let (mut store, instance) = setup(DirPerms::ReadOnly, &dir);
    assert_eq!(call(&mut store, instance, "read").unwrap(), 0);
    assert_eq!(call(&mut store, instance, "create").unwrap(), 63, "EPERM");
    assert!(!dir.join("f.txt").exists());

    let (mut store, instance) = setup(DirPerms::ReadWrite, &dir);
    assert_eq!(call(&mut store, instance, "create").unwrap(), 0);
    assert!(dir.join("f.txt").exists());
}

#[test]
fn guest_error_is_a_host_error_with_backtrace() {
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"));
    let (mut store, instance) = setup(DirPerms::ReadOnly, dir);
    let err = call(&mut store, instance, "bad_pointer").unwrap_err();
    assert!(
        err.downcast_ref::<wjit_wasi::wiggle::GuestError>()
            .is_some(),
        "{err}"
    );
    assert!(!err.wasm_backtrace().is_empty());
    assert_eq!(err.i32_exit_status(), None);
}

#[test]
fn captured_stdout_and_exit_code_per_store() {
    let engine = Engine::new(&Config::new()).unwrap();
    let module = Module::new(
        &engine,
        r#"(module
             (import "wasi_snapshot_preview1" "fd_write" (func $w (param i32 i32 i32 i32) (result i32)))
             (import "wasi_snapshot_preview1" "args_get" (func $ag (param i32 i32) (result i32)))
             (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
             (memory (export "memory") 1)
             (func (export "_start")
               ;; argv[1] is a single digit: print it and exit with it
               (drop (call $ag (i32.const 0) (i32.const 100)))
               (i32.store (i32.const 16) (i32.load (i32.const 4)))
               (i32.store (i32.const 20) (i32.const 1))
               (drop (call $w (i32.const 1) (i32.const 16) (i32.const 1) (i32.const 24)))
               (call $exit (i32.sub (i32.load8_u (i32.load (i32.const 4))) (i32.const 48)))))"#,
    )
    .unwrap();
    let mut linker = Linker::<Host>::new(&engine);
    wjit_wasi::add_to_linker(&mut linker, |h: &mut Host| &mut h.wasi).unwrap();
    for code in ["3", "5"] {
        let out = WritePipe::new_in_memory();
        let wasi = WasiCtxBuilder::new()
            .args(&["prog", code])
            .stdout(Box::new(out.clone()))
            .build()
            .unwrap();
        let mut store = Store::new(&engine, Host { wasi });
        let instance = linker.instantiate(&mut store, &module).unwrap();
        let start = instance.get_typed_func::<(), ()>(&store, "_start").unwrap();
        let err = start.call(&mut store, ()).unwrap_err();
        assert_eq!(err.i32_exit_status(), Some(code.parse().unwrap()));
        drop(store);
        assert_eq!(out.try_into_inner().unwrap().into_inner(), code.as_bytes());
    }
}
