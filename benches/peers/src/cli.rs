//! Command-line parsing (hand-written to keep the build small).

use crate::difftest_eh::{default_out, EhOptions};
use anyhow::{bail, Context, Result};
use std::path::PathBuf;

/// The usage text printed for `--help` and after errors.
pub const USAGE: &str = "\
usage: wjit-peers [run] [--reps N] [--kernels DIR] [--only K1,K2] [--engines E1,E2]
       wjit-peers compile [--reps N] [--engines E1,E2] [--no-cranelift] FILE.wasm...
       wjit-peers difftest-eh [--seeds A..B] [--secs N] [--out DIR]

run      run time of each kernel's run(n) on every engine, interleaved call by call
         (process CPU time, median of N), as ratios to wasmtime-cranelift
compile  eager compile throughput (MB of wasm per CPU second, median of N) of FILEs

--reps N          repetitions (default 5)
--kernels DIR     kernel directory with params.txt and wasm/ (default ../shared/bench/kernels
                  beside the repository root)
--only K1,K2      run only these kernels
--engines E1,E2   engines to use: wasmtime-cranelift, wasmtime-winch, wasmer-singlepass
                  (needs --features wasmer), wasmi, wjit (default: all built in)
--no-cranelift    compile mode: skip wasmtime-cranelift (slow on big modules)

difftest-eh  differential test of exception handling: wasm-smith modules with exceptions,
             every export called on wjit and on wasmtime-cranelift, results compared
--seeds A..B      seeds to run (default 0..1000)
--secs N          stop starting seeds after N seconds
--out DIR         where divergent modules go (default target/difftest-eh)";

/// What to measure.
#[derive(Debug, PartialEq)]
pub enum Mode {
    /// Kernel run times.
    Run,
    /// Compile throughput of these files.
    Compile(Vec<PathBuf>),
    /// Differential test of exception handling against wasmtime.
    DifftestEh(EhOptions),
}

/// The parsed command line.
#[derive(Debug, PartialEq)]
pub struct Options {
    /// The mode.
    pub mode: Mode,
    /// Repetitions per measurement.
    pub reps: usize,
    /// The kernel directory (`None`: the default).
    pub kernels: Option<PathBuf>,
    /// Kernels to run (empty: all).
    pub only: Vec<String>,
    /// Engines to use (empty: the default set).
    pub engines: Vec<String>,
    /// Skip wasmtime-cranelift.
    pub no_cranelift: bool,
    /// `--help` was given.
    pub help: bool,
}

/// Parses the arguments after the program name.
pub fn parse(args: impl IntoIterator<Item = String>) -> Result<Options> {
    let mut args = args.into_iter().peekable();
    let compile = match args.peek().map(String::as_str) {
        Some("difftest-eh") => {
            args.next();
            return parse_eh(args);
        }
        Some("compile") => true,
        Some("run") => false,
        _ => {
            return parse_flags(false, args);
        }
    };
    args.next();
    parse_flags(compile, args)
}

fn parse_flags(compile: bool, mut args: impl Iterator<Item = String>) -> Result<Options> {
    let mut opts = Options {
        mode: Mode::Run,
        reps: 5,
        kernels: None,
        only: Vec::new(),
        engines: Vec::new(),
        no_cranelift: false,
        help: false,
    };
    let mut files = Vec::new();
    while let Some(arg) = args.next() {
        let mut value = || args.next().with_context(|| format!("{arg} needs a value"));
        match arg.as_str() {
            "--reps" => {
                opts.reps = value()?.parse().context("--reps needs a number")?;
                if opts.reps == 0 {
                    bail!("--reps must be at least 1");
                }
            }
            "--kernels" => opts.kernels = Some(PathBuf::from(value()?)),
            "--only" => opts.only = list(&value()?),
            "--engines" => opts.engines = list(&value()?),
            "--no-cranelift" => opts.no_cranelift = true,
            "-h" | "--help" => opts.help = true,
            flag if flag.starts_with('-') => bail!("unknown option `{flag}`"),
            file if compile => files.push(PathBuf::from(file)),
            other => bail!("unexpected argument `{other}`"),
        }
    }
    if compile {
        if files.is_empty() && !opts.help {
            bail!("compile needs at least one .wasm file");
        }
        opts.mode = Mode::Compile(files);
    }
    Ok(opts)
}

fn parse_eh(mut args: impl Iterator<Item = String>) -> Result<Options> {
    let mut eh = EhOptions {
        start: 0,
        end: 1000,
        secs: None,
        out: default_out(),
    };
    let mut help = false;
    while let Some(arg) = args.next() {
        let mut value = || args.next().with_context(|| format!("{arg} needs a value"));
        match arg.as_str() {
            "--seeds" => {
                let v = value()?;
                let (a, b) = v.split_once("..").context("--seeds needs A..B")?;
                eh.start = a.parse().context("--seeds needs numbers")?;
                eh.end = b.parse().context("--seeds needs numbers")?;
            }
            "--secs" => eh.secs = Some(value()?.parse().context("--secs needs a number")?),
            "--out" => eh.out = PathBuf::from(value()?),
            "-h" | "--help" => help = true,
            other => bail!("unexpected argument `{other}`"),
        }
    }
    Ok(Options {
        mode: Mode::DifftestEh(eh),
        reps: 1,
        kernels: None,
        only: Vec::new(),
        engines: Vec::new(),
        no_cranelift: false,
        help,
    })
}

/// Splits a comma-separated list, dropping empty items.
fn list(value: &str) -> Vec<String> {
    value
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(String::from)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(s: &str) -> Vec<String> {
        s.split_whitespace().map(String::from).collect()
    }

    #[test]
    fn run_is_the_default() {
        let o = parse(args("--reps 3 --only fib,sieve")).unwrap();
        assert_eq!(o.mode, Mode::Run);
        assert_eq!(o.reps, 3);
        assert_eq!(o.only, ["fib", "sieve"]);
        assert_eq!(parse(args("run")).unwrap().mode, Mode::Run);
    }

    #[test]
    fn compile_takes_files() {
        let o = parse(args("compile --no-cranelift a.wasm b.wasm")).unwrap();
        assert_eq!(
            o.mode,
            Mode::Compile(vec!["a.wasm".into(), "b.wasm".into()])
        );
        assert!(o.no_cranelift);
        assert!(parse(args("compile")).is_err());
    }

    #[test]
    fn errors() {
        assert!(parse(args("--reps")).is_err());
        assert!(parse(args("--reps 0")).is_err());
        assert!(parse(args("--bogus")).is_err());
        assert!(parse(args("run x.wasm")).is_err());
        assert!(parse(args("difftest-eh --seeds 5")).is_err());
        assert!(parse(args("difftest-eh --reps 3")).is_err());
    }

    #[test]
    fn difftest_eh_options() {
        let o = parse(args("difftest-eh --seeds 10..20 --secs 5 --out /tmp/x")).unwrap();
        assert_eq!(
            o.mode,
            Mode::DifftestEh(EhOptions {
                start: 10,
                end: 20,
                secs: Some(5),
                out: "/tmp/x".into()
            })
        );
        let o = parse(args("difftest-eh")).unwrap();
        assert_eq!(
            o.mode,
            Mode::DifftestEh(EhOptions {
                start: 0,
                end: 1000,
                secs: None,
                out: default_out()
            })
        );
    }
}
