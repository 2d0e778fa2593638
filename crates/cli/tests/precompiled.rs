//! `wjit compile` and `wjit run --allow-precompiled`: precompiled modules run like the
//! modules they come from, and are refused without the flag or with other settings.

use std::path::{Path, PathBuf};
use std::process::Output;

mod common;
use common::{stderr, stdout, wjit};

/// A fresh scratch directory for one test.
fn scratch_dir(test: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("wjit-precompiled-tests")
        .join(test);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn path(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn assert_exit(o: &Output, code: i32) {
    assert_eq!(o.status.code(), Some(code), "stderr: {}", stderr(o));
}

/// A named function chain that traps, a WASI `fd_write`, and a loop for fuel.
const PROGRAM: &str = r#"(module
  (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 64) "hello from a cwasm\n")
  (func $fib (export "fib") (param i32) (result i32)
    (if (result i32) (i32.lt_u (local.get 0) (i32.const 2))
      (then (local.get 0))
      (else (i32.add (call $fib (i32.sub (local.get 0) (i32.const 1)))
                     (call $fib (i32.sub (local.get 0) (i32.const 2)))))))
  (func $deep (param i32) (result i32) (i32.div_u (i32.const 1) (local.get 0)))
  (func $divide (export "divide") (param i32) (result i32) (call $deep (local.get 0)))
  (func (export "spin") (loop $l (br $l)))
  (func (export "_start")
    (i32.store (i32.const 0) (i32.const 64))
    (i32.store (i32.const 4) (i32.const 19))
    (drop (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8)))))"#;

#[test]
fn compile_then_run_allow_precompiled() {
    let dir = scratch_dir("run");
    let wat = dir.join("program.wat");
    std::fs::write(&wat, PROGRAM).unwrap();
    let cwasm = dir.join("out.cwasm");
    let o = wjit(&["compile", path(&wat), "-o", path(&cwasm)]);
    assert_exit(&o, 0);

    let o = wjit(&["run", "--allow-precompiled", path(&cwasm)]);
    assert_exit(&o, 0);
    assert_eq!(stdout(&o), "hello from a cwasm\n");
    let o = wjit(&[
        "run",
        "--allow-precompiled",
        path(&cwasm),
        "--invoke",
        "fib",
        "25",
    ]);
    assert_exit(&o, 0);
    assert_eq!(stdout(&o), "75025\n");

    // A trap names the functions of its backtrace, as with the original module.
    let o = wjit(&[
        "run",
        "--allow-precompiled",
        path(&cwasm),
        "--invoke",
        "divide",
        "0",
    ]);
    assert_exit(&o, 134);
    let err = stderr(&o);
    assert!(err.contains("integer divide by zero"), "{err}");
    assert!(err.contains("deep") && err.contains("divide"), "{err}");

    // Without -o, the output is FILE with the extension .cwasm.
    let o = wjit(&["compile", path(&wat)]);
    assert_exit(&o, 0);
    let o = wjit(&[
        "run",
        "--allow-precompiled",
        path(&dir.join("program.cwasm")),
        "--invoke",
        "fib",
        "10",
    ]);
    assert_exit(&o, 0);
    assert_eq!(stdout(&o), "55\n");
}

#[test]
fn precompiled_files_are_refused_without_the_flag_or_with_other_settings() {
    let dir = scratch_dir("refuse");
    let wat = dir.join("program.wat");
    std::fs::write(&wat, PROGRAM).unwrap();
    let cwasm = dir.join("program.cwasm");
    assert_exit(&wjit(&["compile", path(&wat), "-o", path(&cwasm)]), 0);

    let o = wjit(&["run", path(&cwasm)]);
    assert_exit(&o, 2);
    let err = stderr(&o);
    assert!(err.starts_with("error: "), "{err}");
    assert!(err.contains("precompiled module"), "{err}");
    assert!(err.contains("--allow-precompiled"), "{err}");
    assert!(stdout(&o).is_empty());

    // Settings that change the code must match.
    let o = wjit(&["run", "--allow-precompiled", "--fuel", "1000", path(&cwasm)]);
    assert_exit(&o, 2);
    assert!(
        stderr(&o).contains("consume-fuel (module: off, engine: on)"),
        "{}",
        stderr(&o)
    );
    let o = wjit(&[
        "run",
        "--allow-precompiled",
        "-W",
        "simd=n,relaxed-simd=n",
        path(&cwasm),
    ]);
    assert_exit(&o, 2);
    assert!(
        stderr(&o).contains("simd (module: on, engine: off)"),
        "{}",
        stderr(&o)
    );

    // Compiled with fuel, it runs with fuel (and runs out).
    let fueled = dir.join("fueled.cwasm");
    let o = wjit(&["compile", "--consume-fuel", path(&wat), "-o", path(&fueled)]);
    assert_exit(&o, 0);
    let o = wjit(&[
        "run",
        "--allow-precompiled",
        "--fuel",
        "10000",
        path(&fueled),
        "--invoke",
        "spin",
    ]);
    assert_exit(&o, 134);
    assert!(stderr(&o).contains("all fuel consumed"), "{}", stderr(&o));

    // A damaged file is an error, not a crash.
    let mut bytes = std::fs::read(&cwasm).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0x55;
    let damaged = dir.join("damaged.cwasm");
    std::fs::write(&damaged, bytes).unwrap();
    let o = wjit(&["run", "--allow-precompiled", path(&damaged)]);
    assert_exit(&o, 2);
    assert!(stderr(&o).contains("checksum"), "{}", stderr(&o));

    // Compiling a compiled file is refused.
    let o = wjit(&["compile", path(&cwasm)]);
    assert_exit(&o, 2);
    assert!(
        stderr(&o).contains("already a precompiled module"),
        "{}",
        stderr(&o)
    );
}
