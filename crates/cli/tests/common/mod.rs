//! Helpers shared by the end-to-end tests of the `wjit` binary (each test file uses a
//! subset, hence the `dead_code` allowance).
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// A command that starts the `wjit` binary; under an emulator without binfmt_misc,
/// `WJIT_TEST_CHILD_RUNNER` names the runner to start it with (e.g. `qemu-aarch64`).
pub fn wjit_command() -> Command {
    let runner = std::env::var("WJIT_TEST_CHILD_RUNNER").unwrap_or_default();
    let mut runner = runner.split_whitespace();
    match runner.next() {
        Some(program) => {
            let mut c = Command::new(program);
            c.args(runner).arg(env!("CARGO_BIN_EXE_wjit"));
            c
        }
        None => Command::new(env!("CARGO_BIN_EXE_wjit")),
    }
}

/// Runs the `wjit` binary with `args` (see [`wjit_command`]).
pub fn wjit(args: &[&str]) -> Output {
    wjit_command()
        .args(args)
        .output()
        .expect("failed to start wjit")
}

/// The child's stdout, lossily decoded.
pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// The child's stderr, lossily decoded.
pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// The path of `examples/fib.wat`.
pub fn fib_wat() -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../examples/fib.wat")
        .to_string_lossy()
        .into_owned()
}

/// Writes `contents` to file `name` of the scratch directory `dir` (under the target's
/// test tmpdir), creating it.
pub fn scratch_in(dir: &str, name: &str, contents: impl AsRef<[u8]>) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(dir);
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(name);
    std::fs::write(&path, contents).unwrap();
    path
}
