//! End-to-end tests of `wjit compile` (summaries and `--disasm` listings) and
//! `wjit inspect`.

use std::path::{Path, PathBuf};
use std::process::Output;

mod common;
use common::{fib_wat, stderr, stdout, wjit};

/// Writes `contents` to a fresh file in this test's scratch directory.
fn scratch(name: &str, contents: impl AsRef<[u8]>) -> PathBuf {
    common::scratch_in("wjit-cli-explore-tests", name, contents)
}

/// Exit status 2 and one clean `error:` line on stderr, nothing on stdout.
fn assert_usage_error(o: &Output) -> String {
    let err = stderr(o);
    assert_eq!(o.status.code(), Some(2), "stderr: {err}");
    assert!(err.starts_with("error: "), "stderr: {err}");
    assert_eq!(err.lines().count(), 1, "stderr: {err}");
    assert!(!err.contains("panicked"), "stderr: {err}");
    assert!(stdout(o).is_empty(), "stdout: {}", stdout(o));
    err
}

/// Machine code mnemonics listed right under the operator line `op`.
fn mnemonics_under(listing: &str, op: &str) -> Vec<String> {
    let mut lines = listing.lines().skip_while(|l| {
        let text = l.trim_start();
        !(text.starts_with("0x") && text.split_once("  ").map(|(_, t)| t.trim()) == Some(op))
    });
    assert!(lines.next().is_some(), "no `{op}` line in:\n{listing}");
    lines
        .take_while(|l| !l.trim_start().starts_with("0x") && !l.trim_start().starts_with(";;"))
        .filter_map(|l| {
            l.split(':')
                .nth(1)?
                .split_whitespace()
                .next()
                .map(String::from)
        })
        .collect()
}

#[test]
fn disasm_of_fib_on_both_targets() {
    for (target, add, call) in [("x86_64", "add", "call"), ("aarch64", "add", "bl")] {
        let o = wjit(&["compile", &fib_wat(), "--disasm", "--target", target]);
        assert!(o.status.success(), "stderr: {}", stderr(&o));
        let text = stdout(&o);
        assert!(
            text.starts_with(";; function 0 fib (export \"fib\")"),
            "{text}"
        );
        assert!(text.contains(&format!("bytes of {target} code")), "{text}");
        assert!(text.contains("(func $fib (;0;) (type 0) (param $n i32) (result i32)"));
        assert!(
            mnemonics_under(&text, "i32.add").contains(&add.to_string()),
            "{text}"
        );
        assert!(
            mnemonics_under(&text, "call $fib").contains(&call.to_string()),
            "{text}"
        );
        assert!(
            mnemonics_under(&text, "i32.const 2").is_empty(),
            "constants fold: {text}"
        );
        // Both recursive calls, with their callee.
        assert_eq!(text.matches(";; -> function 0 fib").count(), 2, "{text}");
        let summary = text.lines().last().unwrap();
        assert!(
            summary.starts_with(";; module: 1 function (1 defined, 0 imported)"),
            "{summary}"
        );
        assert!(summary.contains("compiled in"), "{summary}");
    }
    // The default target is this machine's.
    let host = if cfg!(target_arch = "aarch64") {
        "aarch64"
    } else {
        "x86_64"
    };
    let o = wjit(&["compile", &fib_wat(), "--disasm"]);
    assert!(
        stdout(&o).contains(&format!("bytes of {host} code")),
        "{}",
        stdout(&o)
    );
    // Other spellings of the targets.
    for (alias, name) in [("x64", "x86_64"), ("arm64", "aarch64")] {
        let o = wjit(&["compile", &fib_wat(), "--summary", "--target", alias]);
        assert!(
            stdout(&o).contains(&format!("bytes of {name} code")),
            "{}",
            stdout(&o)
        );
    }
}

#[test]
fn summary_without_disasm() {
    let o = wjit(&["compile", &fib_wat(), "--summary"]);
    assert!(o.status.success(), "stderr: {}", stderr(&o));
    let text = stdout(&o);
    let row = text.lines().nth(1).unwrap();
    let cols: Vec<&str> = row.split_whitespace().collect();
    assert_eq!(cols[0], "0", "{text}");
    assert_eq!(cols[1], "28", "wasm bytes of fib's body: {text}");
    assert!(cols[2].parse::<usize>().unwrap() > 28, "{text}");
    assert_eq!(&cols[3..], ["fib", "(export", "\"fib\")"], "{text}");
    assert!(!text.contains("i32.add"), "{text}");
}

#[test]
fn func_selects_one_function() {
    let wat = scratch(
        "three.wat",
        r#"(module
             (func $a (result i32) (i32.const 1))
             (func $b (export "bee") (param i64) (result i64) (i64.popcnt (local.get 0)))
             (func (result f64) (f64.const 2.5)))"#,
    );
    let path = wat.to_str().unwrap();
    for selector in ["1", "b", "bee"] {
        let o = wjit(&["compile", path, "--disasm", "--func", selector]);
        assert!(o.status.success(), "stderr: {}", stderr(&o));
        let text = stdout(&o);
        assert_eq!(text.matches(";; function ").count(), 1, "{text}");
        assert!(text.contains(";; function 1 b (export \"bee\")"), "{text}");
        assert!(text.contains("i64.popcnt"), "{text}");
    }
    let o = wjit(&["compile", path, "--summary", "--func", "2"]);
    assert_eq!(stdout(&o).lines().count(), 3, "{}", stdout(&o));
    for missing in ["7", "nope"] {
        let o = wjit(&["compile", path, "--disasm", "--func", missing]);
        let err = assert_usage_error(&o);
        assert!(err.contains("three.wat") && err.contains(missing), "{err}");
        assert!(err.contains("0..=2") && err.contains("`a`"), "{err}");
    }
}

#[test]
fn compile_errors_exit_2() {
    let err = assert_usage_error(&wjit(&["compile", "/no/such/file.wasm", "--disasm"]));
    assert!(err.contains("cannot read /no/such/file.wasm"), "{err}");

    let text = r#"(module (func (export "ok")) (func (result i32) (i64.const 0)))"#;
    let wasm = scratch("invalid.wasm", wat::parse_str(text).unwrap());
    let err = assert_usage_error(&wjit(&["compile", wasm.to_str().unwrap(), "--disasm"]));
    assert!(err.contains("invalid.wasm"), "{err}");
    assert!(
        err.contains("function 1") && err.contains("byte offset 0x"),
        "{err}"
    );

    // (clap's usage errors add a hint line.)
    let o = wjit(&["compile", &fib_wat(), "--disasm", "--target", "riscv64"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("unknown target `riscv64`"),
        "{}",
        stderr(&o)
    );

    // -W switches apply as for `wjit run`.
    let simd = scratch(
        "simd.wat",
        "(module (func (result v128) (v128.const i64x2 1 2)))",
    );
    let path = simd.to_str().unwrap();
    assert!(wjit(&["compile", "--summary", path]).status.success());
    let err = assert_usage_error(&wjit(&[
        "compile",
        "--disasm",
        "-W",
        "simd=n,relaxed-simd=n",
        path,
    ]));
    assert!(err.contains("simd.wat"), "{err}");
    assert_usage_error(&wjit(&["compile", "--summary", "-W", "bogus", path]));
}

const RICH: &str = r#"(module
  (import "env" "f" (func $f (param i32) (result i32)))
  (import "env" "mem" (memory 1 2 shared))
  (import "env" "g" (global $g (mut i64)))
  (memory $m64 (export "m64") i64 3)
  (table (export "t") 2 funcref)
  (global $h (export "h") (mut f32) (f32.const 1))
  (tag $e (export "e") (param i32))
  (func $v (export "vec") (param v128) (result v128) (i32x4.add (local.get 0) (local.get 0)))
  (func $tc (param i32) (result i32) (return_call $f (local.get 0)))
  (func $s)
  (start $s)
  (data (i32.const 0) "hi"))"#;

#[test]
fn inspect_describes_a_module() {
    let wat = scratch("rich.wat", RICH);
    for command in ["inspect", "info"] {
        let o = wjit(&[command, wat.to_str().unwrap()]);
        assert!(o.status.success(), "stderr: {}", stderr(&o));
        let text = stdout(&o);
        for expected in [
            "functions: 4 (1 imported, 3 defined;",
            "  \"env\" \"f\"  (func (param i32) (result i32))",
            "  \"env\" \"mem\"  (memory 1 2 shared)",
            "  \"env\" \"g\"  (global (mut i64))",
            "  \"vec\"  func 1 $v (func (param v128) (result v128))",
            "  \"m64\"  memory 1",
            "  0: (memory 1 2 shared) (32-bit, shared) (import \"env\" \"mem\")",
            "  1: (memory i64 3) (64-bit) (export \"m64\")",
            "  0: (table 2 funcref) (export \"t\")",
            "  1: (global (mut f32)) (export \"h\")",
            "  0: (tag (param i32)) (export \"e\")",
            "start:     function 3 $s",
            "segments:  1 data, 0 element",
            "  \"name\" (",
            "proposals: multi-memory, memory64, tail-call, exceptions, threads (beyond wasm 2.0); \
             wasm 2.0 features: mutable-global, simd",
            "found by validating the module again with each proposal switched off",
            "wjit:      rejects it:",
        ] {
            assert!(text.contains(expected), "{expected:?} in:\n{text}");
        }
    }
    let o = wjit(&["inspect", &fib_wat()]);
    let text = stdout(&o);
    assert!(
        text.contains("proposals: none (beyond wasm 2.0); wasm 2.0 features: none"),
        "{text}"
    );
    assert!(text.contains("wjit:      accepts it"), "{text}");
    assert!(
        text.contains("imports:   none") && text.contains("tags:      none"),
        "{text}"
    );
    // The closing line follows the -W switches.
    let tail = scratch("tail.wat", "(module (func $f (return_call $f)))");
    let o = wjit(&["inspect", "-W", "tail-call=n", tail.to_str().unwrap()]);
    let text = stdout(&o);
    assert!(text.contains("proposals: tail-call"), "{text}");
    assert!(text.contains("wjit:      rejects it:"), "{text}");
}

#[test]
fn inspect_errors_exit_2() {
    let err = assert_usage_error(&wjit(&["inspect", "/no/such/file.wasm"]));
    assert!(err.contains("cannot read /no/such/file.wasm"), "{err}");
    let bad = scratch("truncated.wasm", b"\0asm\x01\0\0\0\x01");
    let err = assert_usage_error(&wjit(&["inspect", bad.to_str().unwrap()]));
    assert!(
        err.contains("truncated.wasm") && err.contains("byte offset 0x9"),
        "{err}"
    );
    let text = scratch("bad.wat", "(module (func (result i32) (i64.const 0)))");
    let err = assert_usage_error(&wjit(&["info", text.to_str().unwrap()]));
    assert!(
        err.contains("bad.wat") && err.contains("type mismatch"),
        "{err}"
    );
}

#[test]
fn listings_write_a_precompiled_file_only_with_o() {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("wjit-cli-explore-tests/cwasm");
    std::fs::create_dir_all(&dir).unwrap();
    let wat = dir.join("m.wat");
    std::fs::copy(fib_wat(), &wat).unwrap();
    let default_out = dir.join("m.cwasm");
    let _ = std::fs::remove_file(&default_out);
    let wat = wat.to_str().unwrap();
    for flag in ["--disasm", "--summary"] {
        let o = wjit(&["compile", wat, flag]);
        assert!(o.status.success(), "stderr: {}", stderr(&o));
        assert!(!default_out.exists(), "{flag} writes no file");
    }
    let out = dir.join("listed.cwasm");
    let o = wjit(&["compile", wat, "--disasm", "-o", out.to_str().unwrap()]);
    assert!(o.status.success(), "stderr: {}", stderr(&o));
    assert!(stdout(&o).contains("i32.add"), "{}", stdout(&o));
    let o = wjit(&[
        "run",
        "--allow-precompiled",
        out.to_str().unwrap(),
        "--invoke",
        "fib",
        "10",
    ]);
    assert_eq!(stdout(&o), "55\n", "stderr: {}", stderr(&o));

    // Listing options without a listing, and a foreign target for -o, are usage errors.
    let err = assert_usage_error(&wjit(&["compile", wat, "--func", "fib"]));
    assert!(err.contains("--disasm or --summary"), "{err}");
    assert!(!default_out.exists());
    let other = if cfg!(target_arch = "aarch64") {
        "x86_64"
    } else {
        "aarch64"
    };
    let o = wjit(&[
        "compile", wat, "--disasm", "--target", other, "-o", "x.cwasm",
    ]);
    let err = assert_usage_error(&o);
    assert!(err.contains("this machine"), "{err}");
}
