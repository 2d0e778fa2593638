//! `wjit run --profile`, `WJIT_LOG` and the progress bar, end to end. The perf tests run
//! `perf record` / `perf report` on `wjit` when `perf` is installed and usable; without it
//! they print why they skipped, except under CI (`CI` set), where they fail.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// A module with a named hot loop running for about half a second, called through an
/// unnamed export (so with lazy compilation the loop is compiled on its first call).
const HOT_WAT: &str = r#"(module
  (func $hot_loop (param $n i32) (result i32)
    (local $acc i32)
    (loop $l
      (local.set $acc (i32.add (i32.mul (local.get $acc) (i32.const 31)) (local.get $n)))
      (local.set $n (i32.sub (local.get $n) (i32.const 1)))
      (br_if $l (local.get $n)))
    (local.get $acc))
  (func (export "run") (param i32) (result i32) (call $hot_loop (local.get 0))))"#;
const HOT_ITERATIONS: &str = "400000000";

fn scratch_dir(test: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("wjit-profiling-tests")
        .join(test);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn hot_wat(dir: &Path) -> String {
    let path = dir.join("hot.wat");
    std::fs::write(&path, HOT_WAT).unwrap();
    path.to_string_lossy().into_owned()
}

/// The runner `wjit` runs under (an emulator, e.g. `qemu-aarch64`), if any.
fn child_runner() -> Vec<String> {
    std::env::var("WJIT_TEST_CHILD_RUNNER")
        .unwrap_or_default()
        .split_whitespace()
        .map(str::to_string)
        .collect()
}

/// `wjit ARGS` (through the runner), with `WJIT_LOG` set to `log` or removed.
fn wjit(args: &[&str], log: Option<&str>) -> Output {
    let runner = child_runner();
    let mut command = match runner.split_first() {
        Some((program, rest)) => {
            let mut c = Command::new(program);
            c.args(rest).arg(env!("CARGO_BIN_EXE_wjit"));
            c
        }
        None => Command::new(env!("CARGO_BIN_EXE_wjit")),
    };
    command.args(args).env_remove("WJIT_LOG");
    if let Some(log) = log {
        command.env("WJIT_LOG", log);
    }
    command.output().expect("failed to start wjit")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// A `perf` command whose build-id cache (where `perf record` and `perf inject` copy the
/// binaries they see, ~/.debug by default) is in the test's scratch directory.
fn perf() -> Command {
    let mut command = Command::new("perf");
    command
        .arg("--buildid-dir")
        .arg(scratch_dir("buildid-cache"));
    command
}

/// Whether `perf record` works here. When it does not: `Err` with the reason, or a panic
/// under CI, which installs perf.
fn perf_usable() -> Result<(), String> {
    // Probed once: tests run in parallel, and their probes would share the output file.
    static PROBE: std::sync::OnceLock<Result<(), String>> = std::sync::OnceLock::new();
    PROBE.get_or_init(probe_perf).clone()
}

fn probe_perf() -> Result<(), String> {
    if !child_runner().is_empty() {
        // perf would profile the emulator, not the generated code.
        return Err("wjit runs under an emulator".into());
    }
    let dir = scratch_dir("probe");
    let probe = perf()
        .args(["record", "-q", "-o"])
        .arg(dir.join("probe.data"))
        .args(["--", "true"])
        .output();
    let reason = match probe {
        Err(e) => format!("perf not installed ({e})"),
        Ok(o) if !o.status.success() => format!(
            "`perf record -- true` failed (perf_event_paranoid?): {}: {}",
            o.status,
            text(&o.stderr)
        ),
        Ok(_) => return Ok(()),
    };
    if std::env::var_os("CI").is_some() {
        panic!("{reason}; CI must run this test (install Debian's linux-perf)");
    }
    Err(reason)
}

fn run_ok(command: &mut Command) -> Output {
    let o = command.output().expect("cannot start perf");
    assert!(
        o.status.success(),
        "{command:?}: {}\n{}",
        o.status,
        text(&o.stderr)
    );
    o
}

/// The pid of the process sampled in `data` (to clean up its files in /tmp).
fn sampled_pid(data: &Path) -> Option<u32> {
    let o = perf()
        .args(["script", "-F", "pid", "-i"])
        .arg(data)
        .output()
        .ok()?;
    text(&o.stdout).lines().next()?.trim().parse().ok()
}

/// `perf record` (with `record_args`) of `wjit run --profile STRATEGY` on the hot loop;
/// returns the perf.data path.
fn record(dir: &Path, strategy: &str, record_args: &[&str], eager: bool) -> PathBuf {
    let data = dir.join("perf.data");
    let wat = hot_wat(dir);
    let mut wjit_args = vec!["run", "--profile", strategy];
    if eager {
        wjit_args.push("--eager");
    }
    wjit_args.extend([wat.as_str(), "--invoke", "run", HOT_ITERATIONS]);
    let o = run_ok(
        perf()
            .args(["record", "-q"])
            .args(record_args)
            .arg("-o")
            .arg(&data)
            .arg("--")
            .arg(env!("CARGO_BIN_EXE_wjit"))
            .args(&wjit_args)
            .env_remove("WJIT_LOG"),
    );
    assert!(!text(&o.stdout).trim().is_empty(), "wjit printed no result");
    data
}

fn report(data: &Path) -> String {
    text(&run_ok(perf().args(["report", "--stdio", "-i"]).arg(data)).stdout)
}

/// The report's line for `name`, with its share of the samples.
fn assert_hot(report: &str, name: &str) {
    let line = report
        .lines()
        .find(|l| !l.starts_with('#') && l.contains(name))
        .unwrap_or_else(|| panic!("`{name}` not in the perf report:\n{report}"));
    let percent: f64 = line
        .split_whitespace()
        .next()
        .and_then(|p| p.trim_end_matches('%').parse().ok())
        .unwrap_or_else(|| panic!("no share in `{line}`"));
    // The loop is nearly all the program does.
    assert!(percent > 50.0, "{line}\n{report}");
}

fn perf_map_profile(test: &str, eager: bool) {
    if let Err(why) = perf_usable() {
        eprintln!("skipped: {why}");
        return;
    }
    let dir = scratch_dir(test);
    let data = record(&dir, "perfmap", &[], eager);
    let report = report(&data);
    if let Some(pid) = sampled_pid(&data) {
        let _ = std::fs::remove_file(format!("/tmp/perf-{pid}.map"));
    }
    assert_hot(&report, "hot_loop");
}

#[test]
fn perf_report_names_a_lazily_compiled_function() {
    perf_map_profile("perfmap-lazy", false);
}

#[test]
fn perf_report_names_an_eagerly_compiled_function() {
    perf_map_profile("perfmap-eager", true);
}

#[test]
fn perf_inject_jit_names_functions_from_the_jitdump() {
    if let Err(why) = perf_usable() {
        eprintln!("skipped: {why}");
        return;
    }
    let dir = scratch_dir("jitdump");
    let data = record(&dir, "jitdump", &["-k", "1"], false);
    let injected = dir.join("perf.jit.data");
    run_ok(
        perf()
            .args(["inject", "--jit", "-i"])
            .arg(&data)
            .arg("-o")
            .arg(&injected),
    );
    let report = report(&injected);
    // perf inject writes one ELF file per function next to the dump.
    if let Some(pid) = sampled_pid(&data) {
        let _ = std::fs::remove_file(format!("/tmp/jit-{pid}.dump"));
        if let Ok(entries) = std::fs::read_dir("/tmp") {
            let prefix = format!("jitted-{pid}-");
            for e in entries.flatten() {
                if e.file_name().to_string_lossy().starts_with(&prefix) {
                    let _ = std::fs::remove_file(e.path());
                }
            }
        }
    }
    assert_hot(&report, "hot_loop");
}

#[test]
fn wjit_log_debug_prints_timings_and_lazy_compilations() {
    let dir = scratch_dir("log");
    let wat = hot_wat(&dir);
    let o = wjit(&["run", &wat, "--invoke", "run", "10"], Some("debug"));
    let err = text(&o.stderr);
    assert!(o.status.success(), "{err}");
    for expected in [
        "module parsed",
        "wasm_bytes=",
        "module validated",
        "module loaded",
        "lazily compiled",
        "name=hot_loop",
        "name=wasm-function[1]",
    ] {
        assert!(err.contains(expected), "no `{expected}` in:\n{err}");
    }
    let o = wjit(
        &["run", "--eager", &wat, "--invoke", "run", "10"],
        Some("wjit=debug"),
    );
    let err = text(&o.stderr);
    for expected in ["module compiled", "code_bytes=", "module code placed"] {
        assert!(err.contains(expected), "no `{expected}` in:\n{err}");
    }
    assert!(!err.contains("lazily compiled"), "{err}");
}

#[test]
fn stderr_is_clean_without_wjit_log() {
    let dir = scratch_dir("quiet");
    let wat = hot_wat(&dir);
    for eager in [false, true] {
        let mut args = vec!["run"];
        if eager {
            args.push("--eager");
        }
        args.extend([wat.as_str(), "--invoke", "run", "10"]);
        let o = wjit(&args, None);
        assert!(o.status.success());
        assert_eq!(text(&o.stderr), "");
        let o = wjit(&args, Some(""));
        assert_eq!(text(&o.stderr), "");
    }
}

#[test]
fn a_bad_wjit_log_filter_is_a_clean_error() {
    let dir = scratch_dir("bad-filter");
    let wat = hot_wat(&dir);
    let o = wjit(&["run", &wat, "--invoke", "run", "1"], Some("wjit=[[["));
    let err = text(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.starts_with("error: WJIT_LOG="), "{err}");
}

#[test]
fn big_eager_compile_prints_no_progress_when_stderr_is_not_a_terminal() {
    // Over the progress bar's 1000-function threshold.
    let mut wat = String::from("(module\n");
    for i in 0..1500 {
        wat.push_str(&format!(
            "(func $f{i} (param i32) (result i32) (i32.add (local.get 0) (i32.const {i})))\n"
        ));
    }
    wat.push_str("(export \"f7\" (func $f7)))");
    let path = scratch_dir("progress").join("big.wat");
    std::fs::write(&path, wat).unwrap();
    let path = path.to_string_lossy().into_owned();
    let o = wjit(&["run", "--eager", &path, "--invoke", "f7", "1"], None);
    assert!(o.status.success(), "{}", text(&o.stderr));
    assert_eq!(text(&o.stdout), "8\n");
    assert_eq!(text(&o.stderr), "");
}

#[test]
fn unknown_profiling_strategy_is_a_usage_error() {
    let dir = scratch_dir("bad-profile");
    let wat = hot_wat(&dir);
    let o = wjit(
        &["run", "--profile", "vtune", &wat, "--invoke", "run", "1"],
        None,
    );
    let err = text(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.contains("unknown profiling strategy `vtune`"), "{err}");
}
