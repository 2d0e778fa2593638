//! End-to-end tests of the `wjit` binary.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// Runs the `wjit` binary; under an emulator without binfmt_misc, `WJIT_TEST_CHILD_RUNNER`
/// names the runner to start it with (e.g. `qemu-aarch64`).
fn wjit(args: &[&str]) -> Output {
    let runner = std::env::var("WJIT_TEST_CHILD_RUNNER").unwrap_or_default();
    let mut runner = runner.split_whitespace();
    let mut command = match runner.next() {
        Some(program) => {
            let mut c = Command::new(program);
            c.args(runner).arg(env!("CARGO_BIN_EXE_wjit"));
            c
        }
        None => Command::new(env!("CARGO_BIN_EXE_wjit")),
    };
    command.args(args).output().expect("failed to start wjit")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn fib_wat() -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../examples/fib.wat")
        .to_string_lossy()
        .into_owned()
}

/// Writes `contents` to a fresh file in the test scratch directory.
fn scratch(name: &str, contents: impl AsRef<[u8]>) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("wjit-cli-tests");
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(name);
    std::fs::write(&path, contents).unwrap();
    path
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

#[test]
fn trap_exits_1_with_message() {
    let wat = scratch(
        "trap.wat",
        r#"(module
             (func (export "boom") unreachable)
             (func (export "div") (param i32 i32) (result i32)
               local.get 0 local.get 1 i32.div_s))"#,
    );
    let wat = wat.to_str().unwrap();
    let o = wjit(&["run", wat, "--invoke", "boom"]);
    assert_clean_error(&o, 1);
    assert!(
        stderr(&o).starts_with("error: wasm trap: unreachable"),
        "stderr: {}",
        stderr(&o)
    );
    let o = wjit(&["run", wat, "--invoke", "div", "1", "0"]);
    assert_clean_error(&o, 1);
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
