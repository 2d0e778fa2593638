//! End-to-end tests of the `wjit` binary.

use std::path::{Path, PathBuf};
use std::process::Output;

mod common;
use common::{fib_wat, stderr, stdout, wjit};

/// Writes `contents` to a fresh file in this test's scratch directory.
fn scratch(name: &str, contents: impl AsRef<[u8]>) -> PathBuf {
    common::scratch_in("wjit-cli-tests", name, contents)
}

fn assert_clean_error(o: &Output, code: i32) {
    let err = stderr(o);
    assert_eq!(o.status.code(), Some(code), "stderr: {err}");
    assert!(err.starts_with("error: "), "stderr: {err}");
    assert!(!err.contains("panicked"), "stderr: {err}");
    assert!(!err.contains("RUST_BACKTRACE"), "stderr: {err}");
}

#[test]
fn fib_30() {
    let o = wjit(&["run", &fib_wat(), "--invoke", "fib", "30"]);
    assert!(o.status.success(), "stderr: {}", stderr(&o));
    assert_eq!(stdout(&o), "832040\n");
}

#[test]
fn args_and_results_of_every_type() {
    let wat = scratch(
        "types.wat",
        r#"(module
             (func (export "swap") (param i32 i64 f32 f64) (result f64 f32 i64 i32)
               local.get 3 local.get 2 local.get 1 local.get 0))"#,
    );
    let wat = wat.to_str().unwrap();
    let o = wjit(&["run", wat, "--invoke", "swap", "-5", "0x10", "2.5", "-inf"]);
    assert!(o.status.success(), "stderr: {}", stderr(&o));
    assert_eq!(stdout(&o), "-inf\n2.5\n16\n-5\n");
    let o = wjit(&[
        "run",
        wat,
        "--invoke",
        "swap",
        "4294967295",
        "-1",
        "nan",
        "1e300",
    ]);
    assert!(o.status.success(), "stderr: {}", stderr(&o));
    assert_eq!(stdout(&o), "1e300\nNaN\n-1\n-1\n");
}

#[test]
fn start_is_the_default() {
    let wat = scratch(
        "start.wat",
        r#"(module (func (export "_start") (result i32) i32.const 7))"#,
    );
    let o = wjit(&["run", wat.to_str().unwrap()]);
    assert!(o.status.success(), "stderr: {}", stderr(&o));
    assert_eq!(stdout(&o), "7\n");
}

/// Traps exit with 128 + SIGABRT, as `wasmtime run` does on Unix.
#[test]
fn trap_exits_134_with_message() {
    let wat = scratch(
        "trap.wat",
        r#"(module
             (func (export "boom") unreachable)
             (func (export "div") (param i32 i32) (result i32)
               local.get 0 local.get 1 i32.div_s))"#,
    );
    let wat = wat.to_str().unwrap();
    let o = wjit(&["run", wat, "--invoke", "boom"]);
    assert_clean_error(&o, 134);
    assert!(
        stderr(&o).starts_with("error: wasm trap: unreachable"),
        "stderr: {}",
        stderr(&o)
    );
    let o = wjit(&["run", wat, "--invoke", "div", "1", "0"]);
    assert_clean_error(&o, 134);
    assert!(
        stderr(&o).starts_with("error: wasm trap: integer divide by zero"),
        "stderr: {}",
        stderr(&o)
    );
}

#[test]
fn missing_file() {
    let o = wjit(&["run", "definitely/not/here.wasm"]);
    assert_clean_error(&o, 2);
    assert!(stderr(&o).contains("definitely/not/here.wasm"));
    assert_eq!(stderr(&o).lines().count(), 1, "stderr: {}", stderr(&o));
}

#[test]
fn wrong_arg_count() {
    let o = wjit(&["run", &fib_wat(), "--invoke", "fib"]);
    assert_clean_error(&o, 2);
    assert!(
        stderr(&o).contains("takes 1 argument"),
        "stderr: {}",
        stderr(&o)
    );
    let o = wjit(&["run", &fib_wat(), "--invoke", "fib", "1", "2"]);
    assert_clean_error(&o, 2);
    let o = wjit(&["run", &fib_wat(), "--invoke", "fib", "ten"]);
    assert_clean_error(&o, 2);
    assert!(stderr(&o).contains("`ten`"), "stderr: {}", stderr(&o));
}

#[test]
fn unknown_export_lists_functions() {
    let o = wjit(&["run", &fib_wat(), "--invoke", "fibonacci", "3"]);
    assert_clean_error(&o, 2);
    let err = stderr(&o);
    assert!(err.contains("`fibonacci`"), "stderr: {err}");
    assert!(err.contains("exported functions: fib"), "stderr: {err}");
    // No --invoke and no _start: also lists what there is.
    let o = wjit(&["run", &fib_wat()]);
    assert_clean_error(&o, 2);
    assert!(stderr(&o).contains("_start"), "stderr: {}", stderr(&o));
    assert!(stderr(&o).contains("exported functions: fib"));
}

#[test]
fn imports_are_rejected() {
    let wat = scratch(
        "import.wat",
        r#"(module (import "env" "f" (func)) (func (export "g")))"#,
    );
    let o = wjit(&["run", wat.to_str().unwrap(), "--invoke", "g"]);
    assert_clean_error(&o, 2);
    assert!(stderr(&o).contains("`env`.`f`"), "stderr: {}", stderr(&o));
}

#[test]
fn compile_error_exits_2() {
    let wat = scratch("bad.wat", "(module (func (result i32)))");
    let o = wjit(&["run", wat.to_str().unwrap()]);
    assert_clean_error(&o, 2);
    assert_eq!(stderr(&o).lines().count(), 1, "stderr: {}", stderr(&o));
}

/// Every function body is validated up front, also in lazy mode: an invalid body that is
/// never called still fails the run, and the message names the file and the function.
#[test]
fn invalid_uncalled_function_is_rejected() {
    let text = r#"(module (func (export "main")) (func (result i32) i64.const 0))"#;
    let wasm = scratch(
        "uncalled_invalid.wasm",
        wat::parse_str(text).expect("well-formed text"),
    );
    let wat = scratch("uncalled_invalid.wat", text);
    for path in [&wasm, &wat] {
        let o = wjit(&["run", path.to_str().unwrap(), "--invoke", "main"]);
        assert_clean_error(&o, 2);
        let err = stderr(&o);
        let file_name = path.file_name().unwrap().to_str().unwrap();
        assert!(err.contains(file_name), "stderr: {err}");
        assert!(err.contains("function 1"), "stderr: {err}");
        assert!(err.contains("type mismatch"), "stderr: {err}");
        assert_eq!(err.lines().count(), 1, "stderr: {err}");
        assert!(stdout(&o).is_empty(), "stdout: {}", stdout(&o));
    }
}

#[test]
fn usage_error_exits_2() {
    let o = wjit(&["run"]);
    assert_eq!(o.status.code(), Some(2));
    let o = wjit(&["frobnicate"]);
    assert_eq!(o.status.code(), Some(2));
}

#[test]
fn wast_subcommand() {
    let good = scratch(
        "good.wast",
        r#"(module (func (export "add") (param i32 i32) (result i32)
             local.get 0 local.get 1 i32.add))
           (assert_return (invoke "add" (i32.const 1) (i32.const 2)) (i32.const 3))
           (assert_trap (module (func $f unreachable) (start $f)) "unreachable")
           (assert_invalid (module (func (result i32))) "type mismatch")
           (assert_malformed (module quote "(func") "unexpected end")
        "#,
    );
    let o = wjit(&["wast", good.to_str().unwrap()]);
    assert!(
        o.status.success(),
        "stdout: {}\nstderr: {}",
        stdout(&o),
        stderr(&o)
    );
    assert_eq!(stdout(&o), "5 passed, 0 failed\n");

    let bad = scratch(
        "bad.wast",
        r#"(module (func (export "one") (result i32) i32.const 1))
           (assert_return (invoke "one") (i32.const 2))
        "#,
    );
    let o = wjit(&["wast", bad.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
    let out = stdout(&o);
    assert!(out.contains("bad.wast:2: assert_return:"), "stdout: {out}");
    assert!(out.ends_with("1 passed, 1 failed\n"), "stdout: {out}");
}

/// A WASI program that prints its arguments and environment, lists `/`, reads a file and
/// exits with the code given as its last argument.
const WASI_PROGRAM: &str = r#"(module
  (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "args_sizes_get" (func $args_sizes_get (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "args_get" (func $args_get (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "environ_sizes_get" (func $environ_sizes_get (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "environ_get" (func $environ_get (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "path_open" (func $path_open (param i32 i32 i32 i32 i32 i64 i64 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_read" (func $fd_read (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "proc_exit" (func $proc_exit (param i32)))
  (memory (export "memory") 1)
  (data (i32.const 512) "input.txt")
  ;; prints the NUL-terminated string at $p followed by a newline
  (func $puts (param $p i32) (local $n i32)
    (block $done (loop $l
      (br_if $done (i32.eqz (i32.load8_u (i32.add (local.get $p) (local.get $n)))))
      (local.set $n (i32.add (local.get $n) (i32.const 1)))
      (br $l)))
    (i32.store8 (i32.add (local.get $p) (local.get $n)) (i32.const 10))
    (i32.store (i32.const 0) (local.get $p))
    (i32.store (i32.const 4) (i32.add (local.get $n) (i32.const 1)))
    (drop (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8)))
    (i32.store8 (i32.add (local.get $p) (local.get $n)) (i32.const 0)))
  (func (export "_start") (local $argc i32) (local $i i32) (local $last i32) (local $code i32)
    ;; argv pointers at 1024, strings at 2048
    (drop (call $args_sizes_get (i32.const 16) (i32.const 20)))
    (local.set $argc (i32.load (i32.const 16)))
    (drop (call $args_get (i32.const 1024) (i32.const 2048)))
    (block $done (loop $l
      (br_if $done (i32.ge_u (local.get $i) (local.get $argc)))
      (local.set $last (i32.load (i32.add (i32.const 1024) (i32.shl (local.get $i) (i32.const 2)))))
      (call $puts (local.get $last))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br $l)))
    ;; environment: pointers at 4096, strings at 5120
    (drop (call $environ_sizes_get (i32.const 16) (i32.const 20)))
    (drop (call $environ_get (i32.const 4096) (i32.const 5120)))
    (if (i32.load (i32.const 16)) (then (call $puts (i32.load (i32.const 4096)))))
    ;; open input.txt in the first preopen (fd 3) and print its first line
    (if (i32.eqz (call $path_open (i32.const 3) (i32.const 0) (i32.const 512) (i32.const 9)
                   (i32.const 0) (i64.const 2) (i64.const 0) (i32.const 0) (i32.const 24)))
      (then
        (i32.store (i32.const 32) (i32.const 8192))
        (i32.store (i32.const 36) (i32.const 100))
        (drop (call $fd_read (i32.load (i32.const 24)) (i32.const 32) (i32.const 1) (i32.const 40)))
        (i32.store8 (i32.add (i32.const 8192) (i32.load (i32.const 40))) (i32.const 0))
        (call $puts (i32.const 8192))))
    ;; exit code: the last argument's first digit
    (call $proc_exit (i32.sub (i32.load8_u (local.get $last)) (i32.const 48)))))"#;

#[test]
fn wasi_program_args_env_dir_exit() {
    let wat = scratch("wasi_prog.wat", WASI_PROGRAM);
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("wjit-cli-tests/wasi-dir");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("input.txt"), "from a file").unwrap();
    let dir_arg = format!("{}::/data", dir.display());
    let o = wjit(&[
        "run",
        "--env",
        "GREETING=hi there",
        "--dir",
        &dir_arg,
        wat.to_str().unwrap(),
        "one",
        "--two",
        "7",
    ]);
    assert_eq!(o.status.code(), Some(7), "stderr: {}", stderr(&o));
    assert_eq!(
        stdout(&o),
        "wasi_prog.wat\none\n--two\n7\nGREETING=hi there\nfrom a file\n"
    );
    assert_eq!(stderr(&o), "");
    // No --dir: the open fails and is skipped; no --env: no environment.
    let o = wjit(&["run", wat.to_str().unwrap(), "0"]);
    assert_eq!(o.status.code(), Some(0), "stderr: {}", stderr(&o));
    assert_eq!(stdout(&o), "wasi_prog.wat\n0\n");
}

#[test]
fn unknown_wasi_function_is_named() {
    let wat = scratch(
        "bad_wasi.wat",
        r#"(module (import "wasi_snapshot_preview1" "no_such_call" (func)) (func (export "_start")))"#,
    );
    let o = wjit(&["run", wat.to_str().unwrap()]);
    assert_clean_error(&o, 2);
    let err = stderr(&o);
    assert!(err.contains("bad_wasi.wat"), "stderr: {err}");
    assert!(
        err.contains("`wasi_snapshot_preview1`.`no_such_call`"),
        "stderr: {err}"
    );
    assert_eq!(err.lines().count(), 1, "stderr: {err}");
}

#[test]
fn fuel_and_timeout_stop_a_loop() {
    let wat = scratch(
        "spin.wat",
        r#"(module (func (export "_start") (loop $l (br $l))))"#,
    );
    let o = wjit(&["run", "--fuel", "100000", wat.to_str().unwrap()]);
    assert_clean_error(&o, 134);
    assert!(stderr(&o).contains("fuel"), "stderr: {}", stderr(&o));
    let o = wjit(&["run", "--timeout", "100ms", wat.to_str().unwrap()]);
    assert_clean_error(&o, 134);
    assert!(stderr(&o).contains("interrupt"), "stderr: {}", stderr(&o));
    let o = wjit(&["run", "--timeout", "5x", wat.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
}

#[test]
fn preload_links_another_module() {
    let lib = scratch(
        "lib.wat",
        r#"(module (func (export "triple") (param i32) (result i32)
             (i32.mul (local.get 0) (i32.const 3))))"#,
    );
    let main = scratch(
        "uses_lib.wat",
        r#"(module (import "lib" "triple" (func $t (param i32) (result i32)))
             (func (export "run") (param i32) (result i32) (call $t (local.get 0))))"#,
    );
    let preload = format!("lib={}", lib.display());
    let o = wjit(&[
        "run",
        "--preload",
        &preload,
        main.to_str().unwrap(),
        "--invoke",
        "run",
        "14",
    ]);
    assert!(o.status.success(), "stderr: {}", stderr(&o));
    assert_eq!(stdout(&o), "42\n");
}

#[test]
fn deep_recursion_backtrace_is_folded() {
    let wat = scratch(
        "deep.wat",
        r#"(module (func $f (export "f") (param i32)
             (if (i32.eqz (local.get 0)) (then unreachable))
             (call $f (i32.sub (local.get 0) (i32.const 1)))))"#,
    );
    let o = wjit(&["run", wat.to_str().unwrap(), "--invoke", "f", "1000"]);
    assert_clean_error(&o, 134);
    let err = stderr(&o);
    assert!(err.contains("frames omitted"), "stderr: {err}");
    assert!(err.lines().count() < 40, "stderr: {err}");
}

#[test]
fn eager_mode_runs() {
    let o = wjit(&["run", "--eager", &fib_wat(), "--invoke", "fib", "20"]);
    assert!(o.status.success(), "stderr: {}", stderr(&o));
    assert_eq!(stdout(&o), "6765\n");
}

#[test]
fn wasm_proposals_switch_with_dash_w() {
    let wat = scratch(
        "two_memories.wat",
        r#"(module (memory 1) (memory $b 1)
             (func (export "f") (result i32) (i32.store $b (i32.const 0) (i32.const 7))
               (i32.load $b (i32.const 0))))"#,
    );
    let wat = wat.to_str().unwrap();
    let o = wjit(&["run", "--invoke", "f", wat]);
    assert!(o.status.success(), "stderr: {}", stderr(&o));
    assert_eq!(stdout(&o), "7\n");
    let o = wjit(&["run", "-W", "multi-memory=n", "--invoke", "f", wat]);
    assert_clean_error(&o, 2);
    assert!(stderr(&o).contains("multiple memories"), "{}", stderr(&o));
    let o = wjit(&[
        "run",
        "-W",
        "multi-memory=n,multi-memory=y",
        "--invoke",
        "f",
        wat,
    ]);
    assert!(o.status.success(), "stderr: {}", stderr(&o));
    let o = wjit(&["run", "-W", "no-such-proposal=y", "--invoke", "f", wat]);
    assert_clean_error(&o, 2);
    assert!(
        stderr(&o).contains("unknown wasm proposal"),
        "{}",
        stderr(&o)
    );
    let o = wjit(&["run", "-W", "simd=maybe", "--invoke", "f", wat]);
    assert_clean_error(&o, 2);
}

/// Exceptions are off by default (as in wasmtime); `-W exceptions` turns them on. An
/// uncaught exception ends the run like a trap.
#[test]
fn exceptions_switch_on_and_uncaught_ones_abort() {
    let wat = scratch(
        "exceptions.wat",
        r#"(module (tag $e (param i32))
             (func (export "caught") (result i32)
               (block $h (result i32)
                 (try_table (catch $e $h) (throw $e (i32.const 42)))
                 (i32.const 0)))
             (func (export "uncaught") (throw $e (i32.const 1))))"#,
    );
    let wat = wat.to_str().unwrap();
    let o = wjit(&["run", "--invoke", "caught", wat]);
    assert_clean_error(&o, 2);
    assert!(stderr(&o).contains("exceptions"), "{}", stderr(&o));
    let o = wjit(&["run", "-W", "exceptions", "--invoke", "caught", wat]);
    assert!(o.status.success(), "stderr: {}", stderr(&o));
    assert_eq!(stdout(&o), "42\n");
    let o = wjit(&["run", "-W", "exceptions=y", "--invoke", "uncaught", wat]);
    assert_clean_error(&o, 134);
    assert!(
        stderr(&o).contains("uncaught wasm exception"),
        "{}",
        stderr(&o)
    );
}
