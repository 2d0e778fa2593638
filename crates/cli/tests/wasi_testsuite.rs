//! `cargo test -p wjit-cli --test wasi_testsuite [-- FILTER]`: one trial per test program of the
//! official WASI test suite (wasm32-wasip1: AssemblyScript, C and Rust), each run through
//! `wjit run` and checked against the `.json` beside it (args, env, preopened root directory,
//! expected exit code, stdout and stderr; see the suite's `doc/specification.md`). As in the
//! suite's reference runner, stdout and stderr are compared only when the `.json` gives them.
//!
//! The suite is read from `$WJIT_WASI_TESTSUITE`, default `<workspace>/../shared/wasi-testsuite`.
//! Each test runs in a fresh temporary copy of its `.wasm` and root directory (the suite may be
//! read-only, and tests create and remove files there). Trials are named `LANG/NAME`, e.g.
//! `rust/fd_readdir`. Tests listed in `wasi-skip.txt` (beside this file) are still run: if they
//! fail they are reported as ignored; if they pass the trial fails until the entry is removed.
//! Under an emulator `WJIT_TEST_CHILD_RUNNER` names the program that runs `wjit` (e.g.
//! `qemu-aarch64`).

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::process::{ExitCode, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};

use libtest_mimic::{Arguments, Completion, Failed, Trial};

mod common;
use common::wjit_command;

static PASSED: AtomicUsize = AtomicUsize::new(0);
static FAILED: AtomicUsize = AtomicUsize::new(0);
static SKIPPED: AtomicUsize = AtomicUsize::new(0);

fn main() -> ExitCode {
    let args = Arguments::from_args();
    match setup() {
        Ok(trials) => {
            let conclusion = libtest_mimic::run(&args, trials);
            if !args.list {
                println!();
                println!(
                    "wasi: {} passed, {} failed, {} skipped",
                    PASSED.load(Relaxed),
                    FAILED.load(Relaxed),
                    SKIPPED.load(Relaxed)
                );
            }
            conclusion.exit_code()
        }
        Err(msg) => {
            eprintln!("error: {msg}");
            ExitCode::FAILURE
        }
    }
}

fn suite_dir() -> PathBuf {
    match std::env::var_os("WJIT_WASI_TESTSUITE") {
        Some(dir) => PathBuf::from(dir),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/wasi-testsuite"),
    }
}

/// One test of the suite: its program and what the `.json` beside it asks for.
#[derive(Clone, Debug)]
struct Spec {
    wasm: PathBuf,
    args: Vec<String>,
    env: Vec<(String, String)>,
    root: Option<String>,
    exit_code: i32,
    /// Checked only when the `.json` gives it, as the suite's reference runner does (some
    /// tests print diagnostics, e.g. the file descriptors they found).
    stdout: Option<String>,
    stderr: Option<String>,
}

fn parse_spec(wasm: &Path) -> Result<Spec, String> {
    let mut spec = Spec {
        wasm: wasm.to_path_buf(),
        args: Vec::new(),
        env: Vec::new(),
        root: None,
        exit_code: 0,
        stdout: None,
        stderr: None,
    };
    let json_path = wasm.with_extension("json");
    if !json_path.exists() {
        return Ok(spec);
    }
    let text = std::fs::read_to_string(&json_path)
        .map_err(|e| format!("cannot read {}: {e}", json_path.display()))?;
    let json: serde_json::Value =
        serde_json::from_str(&text).map_err(|e| format!("{}: {e}", json_path.display()))?;
    let bad = |what: &str| format!("{}: unexpected `{what}`", json_path.display());
    let string =
        |v: &serde_json::Value, what: &str| v.as_str().map(str::to_string).ok_or_else(|| bad(what));
    let obj = json.as_object().ok_or_else(|| bad("document"))?;
    for (key, value) in obj {
        match key.as_str() {
            "args" => {
                for a in value.as_array().ok_or_else(|| bad("args"))? {
                    spec.args.push(string(a, "args")?);
                }
            }
            "env" => {
                for (k, v) in value.as_object().ok_or_else(|| bad("env"))? {
                    spec.env.push((k.clone(), string(v, "env")?));
                }
            }
            "root" if value.is_null() => {}
            "root" => spec.root = Some(string(value, "root")?),
            "exit_code" => spec.exit_code = value.as_i64().ok_or_else(|| bad("exit_code"))? as i32,
            "stdout" => spec.stdout = Some(string(value, "stdout")?),
            "stderr" => spec.stderr = Some(string(value, "stderr")?),
            // Operation-based specs and proposals (sockets, http) are not used by the
            // wasm32-wasip1 tests; refuse them rather than pass them by accident.
            other => {
                return Err(format!(
                    "{}: unsupported key `{other}`",
                    json_path.display()
                ))
            }
        }
    }
    Ok(spec)
}

struct SkipEntry {
    reason: String,
    line: usize,
}

fn setup() -> Result<Vec<Trial>, String> {
    let suite = suite_dir();
    let tests = suite.join("tests");
    if !tests.is_dir() {
        return Err(format!(
            "WASI test suite not found at {} (set WJIT_WASI_TESTSUITE to a checkout of \
             WebAssembly/wasi-testsuite, branch prod/testsuite-base)",
            suite.display()
        ));
    }
    let mut specs: BTreeMap<String, Spec> = BTreeMap::new();
    for lang in ["assemblyscript", "c", "rust"] {
        let dir = tests.join(lang).join("testsuite/wasm32-wasip1");
        let entries =
            std::fs::read_dir(&dir).map_err(|e| format!("cannot read {}: {e}", dir.display()))?;
        for entry in entries {
            let path = entry.map_err(|e| e.to_string())?.path();
            if path.extension().is_some_and(|x| x == "wasm") {
                let stem = path.file_stem().unwrap().to_string_lossy().into_owned();
                specs.insert(format!("{lang}/{stem}"), parse_spec(&path)?);
            }
        }
    }
    if specs.is_empty() {
        return Err(format!("no .wasm tests under {}", tests.display()));
    }

    let skip_path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/wasi-skip.txt");
    let skip_text = std::fs::read_to_string(&skip_path)
        .map_err(|e| format!("cannot read {}: {e}", skip_path.display()))?;
    let mut skip: HashMap<String, SkipEntry> = HashMap::new();
    for (i, line) in skip_text.lines().enumerate() {
        let line_no = i + 1;
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (name, reason) = match line.split_once('#') {
            Some((n, r)) => (n.trim(), r.trim()),
            None => (line, ""),
        };
        if reason.is_empty() {
            return Err(format!(
                "{}:{line_no}: `{name}` needs a reason (`NAME  # reason`)",
                skip_path.display()
            ));
        }
        if !specs.contains_key(name) {
            return Err(format!(
                "{}:{line_no}: `{name}` is not a test of the suite",
                skip_path.display()
            ));
        }
        skip.insert(
            name.to_string(),
            SkipEntry {
                reason: reason.to_string(),
                line: line_no,
            },
        );
    }

    Ok(specs
        .into_iter()
        .map(|(name, spec)| match skip.remove(&name) {
            None => {
                let n = name.clone();
                Trial::test(name, move || match run_test(&n, &spec) {
                    Ok(()) => {
                        PASSED.fetch_add(1, Relaxed);
                        Ok(())
                    }
                    Err(e) => {
                        FAILED.fetch_add(1, Relaxed);
                        Err(e.into())
                    }
                })
            }
            Some(entry) => {
                let n = name.clone();
                Trial::ignorable_test(name, move || run_skipped(&n, &spec, &entry))
            }
        })
        .collect())
}

fn run_skipped(name: &str, spec: &Spec, entry: &SkipEntry) -> Result<Completion, Failed> {
    match run_test(name, spec) {
        Ok(()) => {
            FAILED.fetch_add(1, Relaxed);
            Err(format!(
                "remove {name} from wasi-skip.txt (line {}): it passes now",
                entry.line
            )
            .into())
        }
        Err(_) => {
            SKIPPED.fetch_add(1, Relaxed);
            Ok(Completion::ignored_with(entry.reason.clone()))
        }
    }
}

/// Copies `from` into `to` recursively, files made writable, symlinks kept as symlinks.
fn copy_tree(from: &Path, to: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(to)?;
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        let ty = entry.file_type()?;
        let dest = to.join(entry.file_name());
        if ty.is_dir() {
            copy_tree(&entry.path(), &dest)?;
        } else if ty.is_symlink() {
            std::os::unix::fs::symlink(std::fs::read_link(entry.path())?, &dest)?;
        } else {
            std::fs::copy(entry.path(), &dest)?;
            make_writable(&dest)?;
        }
    }
    make_writable(to)
}

fn make_writable(path: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let mut perms = std::fs::metadata(path)?.permissions();
    perms.set_mode(perms.mode() | 0o200);
    std::fs::set_permissions(path, perms)
}

/// Runs one test in a fresh copy of its program and root directory.
fn run_test(name: &str, spec: &Spec) -> Result<(), String> {
    let work = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("wasi-testsuite")
        .join(name.replace('/', "-"));
    if work.exists() {
        std::fs::remove_dir_all(&work)
            .map_err(|e| format!("cannot clear {}: {e}", work.display()))?;
    }
    std::fs::create_dir_all(&work).map_err(|e| format!("cannot create {}: {e}", work.display()))?;
    let wasm_name = spec.wasm.file_name().unwrap();
    std::fs::copy(&spec.wasm, work.join(wasm_name))
        .map_err(|e| format!("cannot copy the test: {e}"))?;
    if let Some(root) = &spec.root {
        let from = spec.wasm.parent().unwrap().join(root);
        copy_tree(&from, &work.join(root))
            .map_err(|e| format!("cannot copy {}: {e}", from.display()))?;
    }

    let mut command = wjit_command();
    command.arg("run");
    if let Some(root) = &spec.root {
        command.arg("--dir").arg(format!("{root}::/"));
    }
    for (k, v) in &spec.env {
        command.arg("--env").arg(format!("{k}={v}"));
    }
    command
        .arg(wasm_name)
        .args(&spec.args)
        .current_dir(&work)
        .stdin(Stdio::null());
    let out = command
        .output()
        .map_err(|e| format!("cannot run wjit: {e}"))?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);

    let mut problems = Vec::new();
    if out.status.code() != Some(spec.exit_code) {
        problems.push(format!(
            "exit status {} (expected {})",
            out.status, spec.exit_code
        ));
    }
    if spec.stdout.as_ref().is_some_and(|want| stdout != *want) {
        problems.push(format!(
            "stdout {stdout:?} (expected {:?})",
            spec.stdout.as_ref().unwrap()
        ));
    }
    if spec.stderr.as_ref().is_some_and(|want| stderr != *want) {
        problems.push(format!(
            "stderr {stderr:?} (expected {:?})",
            spec.stderr.as_ref().unwrap()
        ));
    }
    if !problems.is_empty() && spec.stderr.is_none() && !stderr.is_empty() {
        problems.push(format!("stderr {stderr:?}"));
    }
    if problems.is_empty() {
        let _ = std::fs::remove_dir_all(&work);
        Ok(())
    } else {
        Err(format!(
            "{name}: {} (in {})",
            problems.join("; "),
            work.display()
        ))
    }
}
