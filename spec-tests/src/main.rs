//! `cargo test -p spec-tests [-- FILTER]`: one trial per `.wast` file of three spec test suites.
//!
//! - The WebAssembly 2.0 suite, from `$WJIT_TESTSUITE` (default
//!   `<workspace>/../shared/wasm-testsuite-2.0`), skip list `spec-tests/skip.txt`; trials are
//!   named by file stem (`simd_lane`).
//! - The newest suite (wasm 3.0 folded in, top-level files only), from `$WJIT_TESTSUITE_LATEST`
//!   (default `<workspace>/../shared/wasm-testsuite`), skip list `spec-tests/skip-latest.txt`;
//!   trials are named `latest/STEM`.
//! - The newest suite's `legacy/` folder (the legacy exception-handling instructions), run
//!   with those on too, skip list `spec-tests/skip-legacy.txt`; trials are named
//!   `legacy/STEM`.
//!
//! Files listed in a skip list are still run: if they fail they are reported as ignored
//! (skipped); if they pass the trial fails with "remove X from skip...: it passes now".

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};

use libtest_mimic::{Arguments, Completion, Failed, Trial};
use spec_tests::{
    latest_testsuite_dir, parse_skip_list, run_wast_file_with, testsuite_dir, testsuite_help,
    Options, Proposals, Report, SkipEntry,
};

/// How many failure lines a failed trial shows.
const MAX_FAILURE_LINES: usize = 20;

/// Per-suite counts: files passed, failed, skipped; directives passed, failed.
struct Counts([AtomicUsize; 5]);

const FILES_PASSED: usize = 0;
const FILES_FAILED: usize = 1;
const FILES_SKIPPED: usize = 2;
const DIRECTIVES_PASSED: usize = 3;
const DIRECTIVES_FAILED: usize = 4;

impl Counts {
    const fn new() -> Counts {
        Counts([const { AtomicUsize::new(0) }; 5])
    }
    fn add(&self, which: usize, n: usize) {
        self.0[which].fetch_add(n, Relaxed);
    }
    fn get(&self, which: usize) -> usize {
        self.0[which].load(Relaxed)
    }
}

/// One spec test suite: where it is and how its trials and skip list are named.
struct Suite {
    /// Shown in the summary.
    label: &'static str,
    /// The directory of `.wast` files (top level only).
    dir: PathBuf,
    /// The skip list's file name in `spec-tests/`.
    skip_file: &'static str,
    /// Prefix of the trial names.
    prefix: &'static str,
    /// The proposals its scripts run with.
    proposals: Proposals,
    counts: &'static Counts,
}

static COUNTS_2_0: Counts = Counts::new();
static COUNTS_LATEST: Counts = Counts::new();
static COUNTS_LEGACY: Counts = Counts::new();

fn main() -> ExitCode {
    let args = Arguments::from_args();
    let suites = [
        Suite {
            label: "spec 2.0",
            dir: testsuite_dir(),
            skip_file: "skip.txt",
            prefix: "",
            proposals: Proposals::Wasm2,
            counts: &COUNTS_2_0,
        },
        Suite {
            label: "spec latest",
            dir: latest_testsuite_dir(),
            skip_file: "skip-latest.txt",
            prefix: "latest/",
            proposals: Proposals::Latest,
            counts: &COUNTS_LATEST,
        },
        Suite {
            label: "spec legacy",
            dir: latest_testsuite_dir().join("legacy"),
            skip_file: "skip-legacy.txt",
            prefix: "legacy/",
            proposals: Proposals::Legacy,
            counts: &COUNTS_LEGACY,
        },
    ];
    let mut trials = Vec::new();
    for suite in &suites {
        match suite_trials(suite) {
            Ok(t) => trials.extend(t),
            Err(msg) => {
                eprintln!("error: {msg}");
                return ExitCode::FAILURE;
            }
        }
    }
    let conclusion = libtest_mimic::run(&args, trials);
    if !args.list {
        println!();
        for suite in &suites {
            let c = suite.counts;
            println!(
                "{}: {} passed, {} failed, {} skipped",
                suite.label,
                c.get(FILES_PASSED),
                c.get(FILES_FAILED),
                c.get(FILES_SKIPPED)
            );
            println!(
                "{} directives: {} passed, {} failed (in non-skipped files)",
                suite.label,
                c.get(DIRECTIVES_PASSED),
                c.get(DIRECTIVES_FAILED)
            );
        }
    }
    conclusion.exit_code()
}

fn suite_trials(suite: &Suite) -> Result<Vec<Trial>, String> {
    let dir = &suite.dir;
    if !dir.is_dir() {
        return Err(format!(
            "spec test suite directory {} not found\n{}",
            dir.display(),
            testsuite_help()
        ));
    }
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
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

    let skip_path = Path::new(env!("CARGO_MANIFEST_DIR")).join(suite.skip_file);
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
            "{} lists files that are not in {}:\n{}",
            suite.skip_file,
            dir.display(),
            list.join("\n")
        ));
    }

    let (counts, skip_file, proposals) = (suite.counts, suite.skip_file, suite.proposals);
    Ok(files
        .into_iter()
        .map(|path| {
            let name = stem(&path);
            let trial_name = format!("{}{name}", suite.prefix);
            match skip.get(&name) {
                None => Trial::test(trial_name, move || run_normal(&path, proposals, counts)),
                Some(entry) => {
                    let entry = entry.clone();
                    Trial::ignorable_test(trial_name, move || {
                        run_skipped(&path, proposals, &entry, skip_file, counts)
                    })
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

/// Runs one script with the suite's proposals.
fn run(path: &Path, proposals: Proposals) -> Report {
    let options = Options {
        proposals,
        ..Options::default()
    };
    run_wast_file_with(path, &options)
}

fn run_normal(path: &Path, proposals: Proposals, counts: &Counts) -> Result<(), Failed> {
    let report = run(path, proposals);
    counts.add(DIRECTIVES_PASSED, report.passed);
    counts.add(DIRECTIVES_FAILED, report.failed);
    if report.ok() {
        counts.add(FILES_PASSED, 1);
        Ok(())
    } else {
        counts.add(FILES_FAILED, 1);
        Err(report.failure_summary(MAX_FAILURE_LINES).into())
    }
}

fn run_skipped(
    path: &Path,
    proposals: Proposals,
    entry: &SkipEntry,
    skip_file: &str,
    counts: &Counts,
) -> Result<Completion, Failed> {
    let report = run(path, proposals);
    if report.ok() {
        counts.add(FILES_FAILED, 1);
        Err(format!(
            "remove {} from {skip_file}: it passes now ({} directives)",
            entry.name, report.passed
        )
        .into())
    } else {
        counts.add(FILES_SKIPPED, 1);
        let reason = if entry.reason.is_empty() {
            "listed in the skip list"
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
