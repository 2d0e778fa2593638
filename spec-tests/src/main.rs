//! `cargo test -p spec-tests [-- FILTER]`: one trial per `.wast` file of the spec test suite.
//!
//! The suite is read from `$WJIT_TESTSUITE`, default `<workspace>/../shared/wasm-testsuite-2.0`.
//! Files listed in `spec-tests/skip.txt` are still run: if they fail they are reported as
//! ignored (skipped); if they pass the trial fails with "remove X from skip.txt: it passes now".

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};

use libtest_mimic::{Arguments, Completion, Failed, Trial};
use spec_tests::{parse_skip_list, run_wast_file, testsuite_dir, testsuite_help, SkipEntry};

/// How many failure lines a failed trial shows.
const MAX_FAILURE_LINES: usize = 20;

static FILES_PASSED: AtomicUsize = AtomicUsize::new(0);
static FILES_FAILED: AtomicUsize = AtomicUsize::new(0);
static FILES_SKIPPED: AtomicUsize = AtomicUsize::new(0);
static DIRECTIVES_PASSED: AtomicUsize = AtomicUsize::new(0);
static DIRECTIVES_FAILED: AtomicUsize = AtomicUsize::new(0);

fn main() -> ExitCode {
    let args = Arguments::from_args();
    match setup() {
        Ok(trials) => {
            let conclusion = libtest_mimic::run(&args, trials);
            if !args.list {
                println!();
                println!(
                    "spec: {} passed, {} failed, {} skipped",
                    FILES_PASSED.load(Relaxed),
                    FILES_FAILED.load(Relaxed),
                    FILES_SKIPPED.load(Relaxed)
                );
                println!(
                    "spec directives: {} passed, {} failed (in non-skipped files)",
                    DIRECTIVES_PASSED.load(Relaxed),
                    DIRECTIVES_FAILED.load(Relaxed)
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

fn setup() -> Result<Vec<Trial>, String> {
    let dir = testsuite_dir();
    if !dir.is_dir() {
        return Err(format!(
            "spec test suite directory {} not found\n{}",
            dir.display(),
            testsuite_help()
        ));
    }
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .map_err(|e| format!("cannot read {}: {e}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "wast") && p.is_file())
        .collect();
    files.sort();
    if files.is_empty() {
        return Err(format!(
            "no .wast files in {}\n{}",
            dir.display(),
            testsuite_help()
        ));
    }

    let skip_path = Path::new(env!("CARGO_MANIFEST_DIR")).join("skip.txt");
    let skip_text = std::fs::read_to_string(&skip_path)
        .map_err(|e| format!("cannot read {}: {e}", skip_path.display()))?;
    let skip: HashMap<String, SkipEntry> = parse_skip_list(&skip_text)
        .into_iter()
        .map(|e| (e.name.clone(), e))
        .collect();
    let stems: BTreeSet<String> = files.iter().map(|p| stem(p)).collect();
    let mut unknown: Vec<&SkipEntry> = skip.values().filter(|e| !stems.contains(&e.name)).collect();
    unknown.sort_by_key(|e| e.line);
    if !unknown.is_empty() {
        let list: Vec<String> = unknown
            .iter()
            .map(|e| format!("  {}:{}: {}", skip_path.display(), e.line, e.name))
            .collect();
        return Err(format!(
            "skip.txt lists files that are not in {}:\n{}",
            dir.display(),
            list.join("\n")
        ));
    }

    Ok(files
        .into_iter()
        .map(|path| {
            let name = stem(&path);
            match skip.get(&name) {
                None => Trial::test(name, move || run_normal(&path)),
                Some(entry) => {
                    let entry = entry.clone();
                    Trial::ignorable_test(name, move || run_skipped(&path, &entry))
                }
            }
        })
        .collect())
}

fn stem(path: &Path) -> String {
    path.file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default()
}

fn run_normal(path: &Path) -> Result<(), Failed> {
    let report = run_wast_file(path);
    DIRECTIVES_PASSED.fetch_add(report.passed, Relaxed);
    DIRECTIVES_FAILED.fetch_add(report.failed, Relaxed);
    if report.ok() {
        FILES_PASSED.fetch_add(1, Relaxed);
        Ok(())
    } else {
        FILES_FAILED.fetch_add(1, Relaxed);
        Err(report.failure_summary(MAX_FAILURE_LINES).into())
    }
}

fn run_skipped(path: &Path, entry: &SkipEntry) -> Result<Completion, Failed> {
    let report = run_wast_file(path);
    if report.ok() {
        FILES_FAILED.fetch_add(1, Relaxed);
        Err(format!(
            "remove {} from skip.txt: it passes now ({} directives)",
            entry.name, report.passed
        )
        .into())
    } else {
        FILES_SKIPPED.fetch_add(1, Relaxed);
        let reason = if entry.reason.is_empty() {
            "listed in skip.txt"
        } else {
            &entry.reason
        };
        Ok(Completion::ignored_with(format!(
            "{reason}; {} of {} directives fail",
            report.failed,
            report.failed + report.passed
        )))
    }
}
