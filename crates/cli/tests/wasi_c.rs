//! Real C programs compiled to wasm32-wasi at test time (Debian's clang, lld, wasi-libc and
//! libclang-rt-dev-wasm32; `.ci/run` installs them) and run with `wjit run`; each output and
//! exit status is compared with a native build of the same source (`cc`).
//!
//! The programs are in `tests/wasi-c/` (arguments and environment, files and directories) and
//! `../shared/bench/kernels` (the benchmark kernels with a small `main`). Without a wasm32-wasi
//! C toolchain these tests fail, naming what to install; `WJIT_WASI_CC` names another clang.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;

mod common;
use common::wjit_command;

fn wasi_c_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/wasi-c")
}

fn build_dir() -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("wasi-c");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn clang() -> String {
    std::env::var("WJIT_WASI_CC").unwrap_or_else(|_| "clang".to_string())
}

/// Compiles `sources` with `compiler` and `flags` into `out`; panics with the compiler's
/// message on failure.
fn compile(compiler: &str, flags: &[&str], sources: &[PathBuf], out: &Path) {
    let result = Command::new(compiler)
        .args(flags)
        .arg("-o")
        .arg(out)
        .args(sources)
        .output();
    match result {
        Ok(o) if o.status.success() => {}
        Ok(o) => panic!(
            "{compiler} {flags:?} failed for {sources:?}:\n{}\n(a wasm32-wasi C toolchain is \
             needed: apt-get install clang lld wasi-libc libclang-rt-dev-wasm32)",
            String::from_utf8_lossy(&o.stderr)
        ),
        Err(e) => panic!(
            "cannot run {compiler}: {e}\n(a wasm32-wasi C toolchain is needed: apt-get install \
             clang lld wasi-libc libclang-rt-dev-wasm32; or set WJIT_WASI_CC)"
        ),
    }
}

/// Builds `name` from `sources` twice: `name.wasm` (wasm32-wasi) and `name.native`.
fn build(name: &str, sources: &[PathBuf]) -> (PathBuf, PathBuf) {
    static TOOLCHAIN: OnceLock<()> = OnceLock::new();
    TOOLCHAIN.get_or_init(|| {
        // One clear failure up front if the toolchain is missing.
        let probe = build_dir().join("probe.wasm");
        compile(
            &clang(),
            &["--target=wasm32-wasi", "-O2"],
            &[wasi_c_dir().join("args_env.c")],
            &probe,
        );
    });
    let dir = build_dir();
    let wasm = dir.join(format!("{name}.wasm"));
    let native = dir.join(format!("{name}.native"));
    compile(&clang(), &["--target=wasm32-wasi", "-O2"], sources, &wasm);
    compile(
        "cc",
        &["-O2", "-ffp-contract=off"],
        &[sources, &[PathBuf::from("-lm")]].concat(),
        &native,
    );
    (wasm, native)
}

/// `wjit run ARGS` in `cwd` (through `WJIT_TEST_CHILD_RUNNER` under an emulator).
fn wjit_run(cwd: &Path, args: &[&str]) -> Output {
    wjit_command()
        .arg("run")
        .args(args)
        .current_dir(cwd)
        .stdin(Stdio::null())
        .output()
        .expect("failed to start wjit")
}

fn native_run(cwd: &Path, exe: &Path, args: &[&str]) -> Output {
    Command::new(exe)
        .args(args)
        .current_dir(cwd)
        .env_clear()
        .stdin(Stdio::null())
        .output()
        .expect("failed to start the native build")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn args_env_and_exit_code() {
    let (wasm, native) = build("args_env", &[wasi_c_dir().join("args_env.c")]);
    let dir = build_dir();
    let wasm = wasm.to_str().unwrap();
    let o = wjit_run(
        &dir,
        &[
            "--env",
            "GREETING=hello world",
            "--env",
            "EMPTY=",
            wasm,
            "42",
            "two words",
            "-x",
        ],
    );
    let n = Command::new(&native)
        .args(["42", "two words", "-x"])
        .env_clear()
        .env("GREETING", "hello world")
        .env("EMPTY", "")
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(42), "stderr: {}", text(&o.stderr));
    assert_eq!(n.status.code(), Some(42));
    assert_eq!(text(&o.stdout), text(&n.stdout));
    assert_eq!(text(&o.stderr), "exiting with 42\n");
    assert!(text(&o.stdout).contains("argv[2] two words\n"));
}

#[test]
fn files_and_directories() {
    let (wasm, native) = build("files", &[wasi_c_dir().join("files.c")]);
    let mut outputs = Vec::new();
    for which in ["wasm", "native"] {
        let dir = build_dir().join(format!("files-{which}"));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("root/sub/deeper")).unwrap();
        std::fs::create_dir_all(dir.join("root/empty")).unwrap();
        std::fs::write(dir.join("root/input.txt"), "one\ntwo\nthree\n").unwrap();
        std::fs::write(dir.join("root/sub/deeper/data.bin"), [0u8; 1000]).unwrap();
        std::fs::write(dir.join("root/sub/a"), "a").unwrap();
        let o = if which == "wasm" {
            wjit_run(
                &dir,
                &["--dir", "root::/data", wasm.to_str().unwrap(), "/data"],
            )
        } else {
            // The native build sees the same tree at ./root.
            native_run(&dir, &native, &["root"])
        };
        assert_eq!(
            o.status.code(),
            Some(0),
            "{which}: stdout {} stderr {}",
            text(&o.stdout),
            text(&o.stderr)
        );
        assert!(
            !dir.join("root/out").exists(),
            "{which} left root/out behind"
        );
        outputs.push(text(&o.stdout));
    }
    assert_eq!(outputs[0], outputs[1]);
    assert!(
        outputs[0].contains("input.txt: 3 lines, 14 bytes\n"),
        "{}",
        outputs[0]
    );
    assert!(
        outputs[0].contains("      data.bin 1000\n"),
        "{}",
        outputs[0]
    );
}

/// The benchmark kernels, each with a small `n`, give the native build's checksum.
#[test]
fn bench_kernels_match_native() {
    let kernels = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/bench/kernels");
    assert!(
        kernels.is_dir(),
        "benchmark kernels not found at {}",
        kernels.display()
    );
    let dir = build_dir();
    for (kernel, n) in [
        ("fib", "20"),
        ("sieve", "2"),
        ("matmul", "20"),
        ("nbody", "2000"),
        ("sha256", "10"),
        ("crc32", "5"),
        ("qsort", "1"),
        ("mandelbrot", "64"),
        ("interp", "20000"),
        ("i64arith", "20000"),
    ] {
        let (wasm, native) = build(
            kernel,
            &[
                kernels.join(format!("{kernel}.c")),
                wasi_c_dir().join("kernel_main.c"),
            ],
        );
        let o = wjit_run(&dir, &[wasm.to_str().unwrap(), n]);
        let expected = native_run(&dir, &native, &[n]);
        assert!(o.status.success(), "{kernel}: {}", text(&o.stderr));
        assert!(
            text(&expected.stdout).starts_with("result "),
            "{kernel}: {}",
            text(&expected.stdout)
        );
        assert_eq!(text(&o.stdout), text(&expected.stdout), "{kernel} {n}");
    }
}
