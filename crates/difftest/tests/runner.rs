//! The runner survives crashing and hanging workers and reports them as divergences.

use std::process::Command;

fn difftest() -> Command {
    // Under an emulator without binfmt_misc, run the binary under it (as the worker is).
    let runner = std::env::var("WJIT_TEST_CHILD_RUNNER").unwrap_or_default();
    let mut runner = runner.split_whitespace();
    match runner.next() {
        Some(program) => {
            let mut c = Command::new(program);
            c.args(runner).arg(env!("CARGO_BIN_EXE_difftest"));
            c
        }
        None => Command::new(env!("CARGO_BIN_EXE_difftest")),
    }
}

#[test]
fn crash_and_hang_are_divergences_and_the_campaign_goes_on() {
    let out = std::env::temp_dir().join(format!("difftest-runner-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&out);
    let output = difftest()
        .args([
            "--mode",
            "run",
            "--seeds",
            "0..8",
            "--jobs",
            "1",
            "--timeout",
            "5",
        ])
        .arg("--out")
        .arg(&out)
        .env("DIFFTEST_INJECT_CRASH", "2")
        .env("DIFFTEST_INJECT_HANG", "5")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    eprintln!("{stdout}\n{}", String::from_utf8_lossy(&output.stderr));
    assert_eq!(output.status.code(), Some(1));
    assert!(stdout.contains("run      8 modules"), "{stdout}");
    assert!(stdout.contains("run      crash: 1"), "{stdout}");
    assert!(stdout.contains("run      hang: 1"), "{stdout}");
    let reason = std::fs::read_to_string(out.join("2-run.txt")).unwrap();
    assert!(reason.starts_with("crash: worker died"), "{reason}");
    assert!(out.join("2-run.wasm").exists());
    assert!(out.join("5-run.wasm").exists());
    let _ = std::fs::remove_dir_all(&out);
}

#[test]
fn clean_campaign_exits_zero() {
    let out = std::env::temp_dir().join(format!("difftest-clean-{}", std::process::id()));
    let output = difftest()
        .args(["--mode", "all", "--seeds", "100..110", "--jobs", "2"])
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{stdout}");
    assert!(stdout.contains("40 modules"), "{stdout}");
    assert!(
        stdout.contains("simd     SIMD: 10 modules with SIMD operators"),
        "{stdout}"
    );
    assert!(stdout.contains("no divergences"), "{stdout}");
}

#[test]
fn a_worker_that_never_exits_is_killed_and_fails_the_campaign() {
    let out = std::env::temp_dir().join(format!("difftest-stall-{}", std::process::id()));
    let output = difftest()
        .args([
            "--mode",
            "run",
            "--seeds",
            "0..2",
            "--jobs",
            "1",
            "--timeout",
            "3",
        ])
        .arg("--out")
        .arg(&out)
        .env("DIFFTEST_INJECT_EXIT_HANG", "1")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(1), "{stdout}");
    assert!(stdout.contains("run      2 modules"), "{stdout}");
    assert!(
        stdout.contains("stalled worker: a worker did not exit within 3 s"),
        "{stdout}"
    );
    let _ = std::fs::remove_dir_all(&out);
}
