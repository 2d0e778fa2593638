//! `wjit`: command-line front end of the wjit WebAssembly JIT.
//!
//! Exit codes: 0 success; 1 a wasm trap (or a failed `wast` run, or an internal error);
//! 2 usage, file, compile or link errors (clap's own usage errors also exit 2).

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};
use wjit::{Config, Engine, Error, ExternType, Instance, Module, Store, Val, ValType};

#[derive(Parser)]
#[command(
    name = "wjit",
    version,
    about = "wjit: a single-pass baseline JIT for WebAssembly",
    long_about = "wjit compiles WebAssembly modules straight to native code in one pass and runs them.\n\
                  This tool runs one exported function of a module, or runs WebAssembly spec test\n\
                  scripts (.wast).",
    after_help = "Exit status: 0 on success, 1 on a wasm trap or failed .wast directives,\n\
                  2 on usage, file, compile or link errors."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Instantiate a module and call one of its exported functions
    #[command(
        long_about = "Instantiates FILE (binary .wasm or text .wat) and calls one exported function with\n\
                      ARGS, printing each result on its own line. The module must not have imports.\n\
                      Integers are printed as signed decimals, floats in Rust's `{:?}` format (2.0, NaN, inf).",
        after_help = "Examples:\n  \
                      wjit run examples/fib.wat --invoke fib 30\n  \
                      wjit run prog.wasm                 # calls the exported `_start`\n  \
                      wjit run m.wat --invoke f -1 0x10 2.5 nan -inf\n\n\
                      Arguments are parsed by the function's parameter types: i32/i64 as decimal or\n\
                      0x hex (out-of-range unsigned values wrap, e.g. 4294967295 is -1 as i32);\n\
                      f32/f64 as decimal, `nan`, `inf` or `-inf`. Everything after the first\n\
                      argument is an argument, so put --invoke before them.\n\n\
                      Exit status: 0 on success, 1 on a wasm trap, 2 on usage, file, compile or link errors."
    )]
    Run(RunArgs),
    /// Run WebAssembly spec test scripts (.wast) and report failed directives
    #[command(
        long_about = "Runs WebAssembly spec test scripts (.wast): modules, invokes, assert_return,\n\
                      assert_trap, assert_invalid, assert_malformed, assert_unlinkable, ... against wjit,\n\
                      with the `spectest` host module available for imports. Prints one line per failed\n\
                      directive (FILE:LINE: KIND: MESSAGE) and a closing `N passed, M failed` line\n\
                      counting directives.",
        after_help = "Example:\n  wjit wast ../shared/wasm-testsuite-2.0/i32.wast\n\n\
                      Exit status: 0 if every directive passed, 1 otherwise, 2 on usage errors."
    )]
    Wast(WastArgs),
}

#[derive(Args)]
struct RunArgs {
    /// The module to run: binary WebAssembly (.wasm) or text format (.wat)
    #[arg(value_name = "FILE")]
    file: PathBuf,

    /// Exported function to call [default: `_start`]
    #[arg(long, value_name = "NAME")]
    invoke: Option<String>,

    /// Arguments for the function, one per parameter
    #[arg(
        value_name = "ARGS",
        allow_hyphen_values = true,
        trailing_var_arg = true
    )]
    args: Vec<String>,
}

#[derive(Args)]
struct WastArgs {
    /// Spec test scripts to run
    #[arg(value_name = "FILE.wast", required = true)]
    files: Vec<PathBuf>,
}

/// A failure that ends the program with a message and an exit code.
struct Failure {
    message: String,
    code: u8,
}

impl Failure {
    /// Usage, file, compile or link problems: exit 2.
    fn usage(message: impl Into<String>) -> Failure {
        Failure {
            message: message.into(),
            code: 2,
        }
    }
    /// Failures while running wasm (traps, host errors): exit 1.
    fn runtime(message: impl Into<String>) -> Failure {
        Failure {
            message: message.into(),
            code: 1,
        }
    }
}

fn main() -> ExitCode {
    // No Rust panic message or backtrace ever reaches the user.
    std::panic::set_hook(Box::new(|info| {
        let payload = info.payload();
        let msg = payload
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "unknown panic".to_string());
        let at = info
            .location()
            .map(|l| format!(" at {}:{}", l.file(), l.line()))
            .unwrap_or_default();
        eprintln!("error: internal error: {msg}{at}");
        std::process::exit(1);
    }));

    let cli = Cli::parse();
    let result = match cli.command {
        Command::Run(args) => run(&args),
        Command::Wast(args) => wast(&args),
    };
    match result {
        Ok(code) => ExitCode::from(code),
        Err(f) => {
            // Traps may carry a multi-line backtrace; everything else is one line.
            let message = if f.code == 2 {
                one_line(&f.message)
            } else {
                f.message
            };
            eprintln!("error: {}", message.trim_end());
            ExitCode::from(f.code)
        }
    }
}

// ---------------------------------------------------------------------------------------------
// wjit run

/// Folds a multi-line message (e.g. a text-format parse error with a source excerpt) into one
/// line, dropping the excerpt's `|` gutter lines.
fn one_line(message: &str) -> String {
    message
        .lines()
        .map(str::trim)
        .filter(|l| {
            let gutter = l
                .trim_start_matches(|c: char| c.is_ascii_digit())
                .trim_start();
            !l.is_empty() && !gutter.starts_with('|')
        })
        .collect::<Vec<_>>()
        .join(" ")
}

fn run(args: &RunArgs) -> Result<u8, Failure> {
    let path = &args.file;
    let bytes = std::fs::read(path)
        .map_err(|e| Failure::usage(format!("cannot read {}: {e}", path.display())))?;
    let engine = Engine::new(&Config::new()).map_err(|e| Failure::usage(e.to_string()))?;
    let module = Module::new(&engine, &bytes)
        .map_err(|e| Failure::usage(format!("{}: {e}", path.display())))?;

    if let Some(import) = module.imports().next() {
        return Err(Failure::usage(format!(
            "{} imports {} `{}`.`{}`; `wjit run` does not provide imports",
            path.display(),
            extern_kind(&import.ty()),
            import.module(),
            import.name()
        )));
    }

    // `wjit run` gives the program no host data, no fuel limit and no epoch deadline
    // (fuel and epoch interruption are off in the default `Config`).
    let mut store = Store::new(&engine, ());
    let instance = Instance::new(&mut store, &module, &[]).map_err(|e| match e {
        Error::Trap(t) => Failure::runtime(t.to_string()),
        other => Failure::usage(format!("{}: {other}", path.display())),
    })?;

    let exported_funcs: Vec<String> = module
        .exports()
        .filter(|e| matches!(e.ty(), ExternType::Func(_)))
        .map(|e| e.name().to_string())
        .collect();
    let name = args.invoke.as_deref().unwrap_or("_start");
    let func = match instance.get_func(&store, name) {
        Some(f) => f,
        None => {
            let mut msg = if args.invoke.is_none() {
                format!(
                    "{} does not export `_start`; choose a function with --invoke NAME",
                    path.display()
                )
            } else if let Some(other) = module.exports().find(|e| e.name() == name) {
                format!(
                    "export `{name}` is {}, not a function",
                    extern_kind(&other.ty())
                )
            } else {
                format!("no exported function `{name}` in {}", path.display())
            };
            if exported_funcs.is_empty() {
                msg.push_str(" (the module exports no functions)");
            } else {
                let _ = write!(msg, " (exported functions: {})", exported_funcs.join(", "));
            }
            return Err(Failure::usage(msg));
        }
    };

    let ty = func.ty(&store);
    let params = ty.params();
    if args.args.len() != params.len() {
        return Err(Failure::usage(format!(
            "`{name}` takes {} argument{} ({}), but {} {} given",
            params.len(),
            if params.len() == 1 { "" } else { "s" },
            params
                .iter()
                .map(|t| t.to_string())
                .collect::<Vec<_>>()
                .join(", "),
            args.args.len(),
            if args.args.len() == 1 { "was" } else { "were" },
        )));
    }
    let vals = params
        .iter()
        .zip(&args.args)
        .enumerate()
        .map(|(i, (ty, text))| {
            parse_arg(*ty, text)
                .map_err(|why| Failure::usage(format!("argument {} of `{name}`: {why}", i + 1)))
        })
        .collect::<Result<Vec<Val>, Failure>>()?;
    if let Some(t) = ty.results().iter().find(|t| **t == ValType::V128) {
        return Err(Failure::usage(format!(
            "`{name}` returns a {t}, which `wjit run` cannot print"
        )));
    }
    let mut results: Vec<Val> = ty.results().iter().map(|t| Val::default_for(*t)).collect();
    func.call(&mut store, &vals, &mut results)
        .map_err(|e| match e {
            Error::Trap(t) => Failure::runtime(t.to_string()),
            Error::Host(_) => Failure::runtime(e.to_string()),
            other => Failure::usage(other.to_string()),
        })?;
    for r in &results {
        println!("{}", format_val(r));
    }
    Ok(0)
}

fn extern_kind(ty: &ExternType) -> &'static str {
    match ty {
        ExternType::Func(_) => "a function",
        ExternType::Global(_) => "a global",
        ExternType::Table(_) => "a table",
        ExternType::Memory(_) => "a memory",
    }
}

/// Parses a command-line argument as a value of type `ty`.
fn parse_arg(ty: ValType, text: &str) -> Result<Val, String> {
    let bad = || format!("`{text}` is not a valid {ty}");
    match ty {
        ValType::I32 => {
            let v = parse_int(text).ok_or_else(bad)?;
            if v < i32::MIN as i128 || v > u32::MAX as i128 {
                return Err(format!("`{text}` is out of range for i32"));
            }
            Ok(Val::I32(v as u32 as i32))
        }
        ValType::I64 => {
            let v = parse_int(text).ok_or_else(bad)?;
            if v < i64::MIN as i128 || v > u64::MAX as i128 {
                return Err(format!("`{text}` is out of range for i64"));
            }
            Ok(Val::I64(v as u64 as i64))
        }
        ValType::F32 => Ok(Val::F32(parse_f32(text).ok_or_else(bad)?.to_bits())),
        ValType::F64 => Ok(Val::F64(parse_float(text).ok_or_else(bad)?.to_bits())),
        ValType::FuncRef | ValType::ExternRef if text == "null" => Ok(Val::default_for(ty)),
        ValType::FuncRef | ValType::ExternRef => {
            Err(format!("only `null` can be passed for a {ty} parameter"))
        }
        ValType::V128 => Err("v128 parameters are not supported by `wjit run`".to_string()),
    }
}

fn parse_int(text: &str) -> Option<i128> {
    let t = text.replace('_', "");
    let (neg, digits) = match t.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, t.strip_prefix('+').unwrap_or(&t)),
    };
    let magnitude = match digits
        .strip_prefix("0x")
        .or_else(|| digits.strip_prefix("0X"))
    {
        Some(hex) => i128::from_str_radix(hex, 16).ok()?,
        None => digits.parse::<i128>().ok()?,
    };
    if digits.is_empty() || digits.starts_with(['+', '-']) {
        return None;
    }
    Some(if neg { -magnitude } else { magnitude })
}

fn normalize_float(text: &str) -> String {
    let t = text.trim().to_ascii_lowercase();
    match t.as_str() {
        "nan" | "+nan" => "NaN".to_string(),
        "-nan" => "-NaN".to_string(),
        _ => t,
    }
}

fn parse_float(text: &str) -> Option<f64> {
    let t = normalize_float(text);
    if t == "-NaN" {
        return Some(-f64::NAN);
    }
    t.parse::<f64>().ok()
}

fn parse_f32(text: &str) -> Option<f32> {
    let t = normalize_float(text);
    if t == "-NaN" {
        return Some(-f32::NAN);
    }
    t.parse::<f32>().ok()
}

fn format_val(v: &Val) -> String {
    match v {
        Val::I32(x) => x.to_string(),
        Val::I64(x) => x.to_string(),
        Val::F32(bits) => format!("{:?}", f32::from_bits(*bits)),
        Val::F64(bits) => format!("{:?}", f64::from_bits(*bits)),
        Val::FuncRef(None) | Val::ExternRef(None) => "null".to_string(),
        Val::FuncRef(Some(_)) => "funcref".to_string(),
        Val::ExternRef(Some(_)) => "externref".to_string(),
    }
}

// ---------------------------------------------------------------------------------------------
// wjit wast

fn wast(args: &WastArgs) -> Result<u8, Failure> {
    let (mut passed, mut failed) = (0usize, 0usize);
    for file in &args.files {
        let report = spec_tests::run_wast_file(Path::new(file));
        for line in report.failure_lines() {
            println!("{line}");
        }
        if args.files.len() > 1 {
            println!(
                "{}: {} of {} directives passed",
                file.display(),
                report.passed,
                report.passed + report.failed
            );
        }
        passed += report.passed;
        failed += report.failed;
    }
    println!("{passed} passed, {failed} failed");
    Ok(if failed == 0 { 0 } else { 1 })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_line_messages() {
        let wat_error =
            "expected `)`\n     --> x.wat:1:10\n      |\n    1 | (module (func\n      |          ^";
        assert_eq!(one_line(wat_error), "expected `)` --> x.wat:1:10");
        assert_eq!(one_line("plain"), "plain");
    }

    #[test]
    fn ints() {
        assert_eq!(parse_int("42"), Some(42));
        assert_eq!(parse_int("-0x10"), Some(-16));
        assert_eq!(parse_int("0xffffffff"), Some(0xffff_ffff));
        assert_eq!(parse_int("1_000"), Some(1000));
        assert_eq!(parse_int("--1"), None);
        assert_eq!(parse_int("0x"), None);
        assert_eq!(parse_int("abc"), None);
        assert!(matches!(
            parse_arg(ValType::I32, "4294967295"),
            Ok(Val::I32(-1))
        ));
        assert!(matches!(
            parse_arg(ValType::I32, "-2147483648"),
            Ok(Val::I32(i32::MIN))
        ));
        assert!(parse_arg(ValType::I32, "4294967296").is_err());
        assert!(matches!(parse_arg(ValType::I64, "-1"), Ok(Val::I64(-1))));
        assert!(matches!(
            parse_arg(ValType::I64, "0xffffffffffffffff"),
            Ok(Val::I64(-1))
        ));
    }

    #[test]
    fn floats() {
        assert!(matches!(parse_arg(ValType::F32, "1.5"), Ok(Val::F32(b)) if b == 1.5f32.to_bits()));
        assert!(
            matches!(parse_arg(ValType::F64, "-inf"), Ok(Val::F64(b)) if b == f64::NEG_INFINITY.to_bits())
        );
        assert!(
            matches!(parse_arg(ValType::F64, "nan"), Ok(Val::F64(b)) if f64::from_bits(b).is_nan())
        );
        assert!(matches!(parse_arg(ValType::F32, "0.1"), Ok(Val::F32(b)) if b == 0.1f32.to_bits()));
        assert!(parse_arg(ValType::F32, "x").is_err());
    }
}
