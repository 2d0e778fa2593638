//! `wjit`: command-line front end of the wjit WebAssembly JIT.
//!
//! Exit codes of `wjit run`: the program's own status (0 when `_start` returns, the code of
//! WASI `proc_exit`); 134 on a wasm trap (128 + SIGABRT, as `wasmtime run` on Unix); 1 when a
//! host function fails (e.g. a WASI call with a pointer out of bounds) or on an internal error;
//! 2 on usage, file, compile or link errors (clap's own usage errors also exit 2).
//! `wjit wast` exits 0 or 1.

mod compile;
mod inspect;

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use wjit::{
    Config, Engine, Error, ExternType, FrameInfo, Linker, Module, ProfilingStrategy, Store, Val,
    ValType,
};
use wjit_wasi::{DirPerms, WasiCtx, WasiCtxBuilder};

mod logging;
mod progress;

/// Exit status of a wasm trap: 128 + SIGABRT, what `wasmtime run` uses on Unix.
const TRAP_EXIT: u8 = 134;

#[derive(Parser)]
#[command(
    name = "wjit",
    version,
    about = "wjit: a single-pass baseline JIT for WebAssembly",
    long_about = "wjit compiles WebAssembly modules straight to native code in one pass and runs them.\n\
                  This tool runs WASI programs or one exported function of a module, or runs\n\
                  WebAssembly spec test scripts (.wast).",
    after_help = "Exit status of `run`: the program's exit code, 134 on a wasm trap or uncaught exception, 1 when a host\n\
                  function fails, 2 on usage, file, compile or link errors.\n\
                  Exit status of `wast`: 0 if every directive passed, 1 otherwise."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run a WASI program, or call one exported function of a module
    #[command(
        long_about = "Runs FILE (binary .wasm or text .wat) with WASI preview1 (the imports\n\
                      `wasi_snapshot_preview1` and `wasi_unstable`): instantiates it and calls its\n\
                      `_start` export with ARGS as the program's arguments (argv[0] is FILE's base\n\
                      name, as in `wasmtime run`). The program inherits stdin, stdout and stderr, but\n\
                      no environment variables and no files unless given with --env and --dir.\n\n\
                      With --invoke NAME, calls that export instead (after `_initialize`, if the\n\
                      module exports one) with ARGS as its wasm arguments, and prints each result on\n\
                      its own line: integers as signed decimals, floats in Rust's `{:?}` format\n\
                      (2.0, NaN, inf). `_start` results, if any, are printed the same way.",
        after_help = "Examples:\n  \
                      wjit run prog.wasm input.txt               # calls `_start`; argv = [prog.wasm, input.txt]\n  \
                      wjit run --dir data::/data --env LANG=C prog.wasm /data/input.txt\n  \
                      wjit run --timeout 10s --fuel 100000000 untrusted.wasm\n  \
                      wjit run examples/fib.wat --invoke fib 30\n  \
                      wjit run m.wat --invoke f -1 0x10 2.5 nan -inf\n\n\
                      --invoke arguments are parsed by the function's parameter types: i32/i64 as\n\
                      decimal or 0x hex (out-of-range unsigned values wrap, e.g. 4294967295 is -1 as\n\
                      i32); f32/f64 as decimal, `nan`, `inf` or `-inf`. Options go before FILE:\n\
                      everything after FILE is an argument (--invoke may also follow FILE directly).\n\n\
                      Exit status: the program's exit code (0 when `_start` returns, the code given to\n\
                      WASI proc_exit); 134 on a wasm trap (including running out of fuel or time), as\n\
                      wasmtime does on Unix; 1 when a host function fails (e.g. a WASI call given a\n\
                      pointer out of bounds); 2 on usage, file, compile or link errors, e.g. a module\n\
                      that imports something `wjit run` does not provide."
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
    /// Compile a module ahead of time into a `.cwasm` file, or show its machine code
    #[command(
        long_about = "Compiles FILE (binary .wasm or text .wat) ahead of time and writes the machine\n\
                      code to OUT (default: FILE.cwasm), for `wjit run --allow-precompiled OUT`,\n\
                      which then starts without compiling. The file only runs with this wjit\n\
                      version, on this architecture, and with the same settings (-W proposals,\n\
                      --consume-fuel for --fuel, --epoch-interruption for --timeout).\n\n\
                      With --disasm or --summary, prints instead (and writes a file only with -o):\n\
                      --summary each function's wasm and machine code sizes and a module summary\n\
                      (functions, wasm bytes, code bytes, compile time); --disasm also each\n\
                      function's machine code, disassembled under the wasm operator (and its byte\n\
                      offset) it was emitted for, for this machine or the instruction set given\n\
                      with --target.",
        after_help = "Examples:\n  \
                      wjit compile big.wasm -o big.cwasm && wjit run --allow-precompiled big.cwasm\n  \
                      wjit compile examples/fib.wat --disasm\n  \
                      wjit compile m.wasm --disasm --func fib --target aarch64\n  \
                      wjit compile m.wasm --summary\n\n\
                      Exit status: 0, or 2 on usage, file or compile errors."
    )]
    Compile(compile::CompileArgs),
    /// Describe a module: imports, exports, memories, tables, globals, proposals used
    #[command(
        visible_alias = "info",
        after_help = "Exit status: 0, or 2 when FILE cannot be read or is not a valid module."
    )]
    Inspect(inspect::InspectArgs),
}

#[derive(Args)]
struct RunArgs {
    /// Call this exported function instead of `_start`; ARGS are then its wasm arguments
    #[arg(long, value_name = "NAME")]
    invoke: Option<String>,

    /// Give the program the host directory HOST as GUEST (default: the same path), read-write;
    /// e.g. `--dir .`, `--dir data::/data`, `--dir /tmp/x::/`. Repeatable
    #[arg(long = "dir", value_name = "HOST[::GUEST]")]
    dirs: Vec<String>,

    /// Set an environment variable of the program; NAME alone passes this process's value
    /// (if it has one). Repeatable
    #[arg(long = "env", value_name = "NAME[=VALUE]")]
    envs: Vec<String>,

    /// Stop the program with a trap after about N units of fuel (roughly one per wasm
    /// instruction)
    #[arg(long, value_name = "N")]
    fuel: Option<u64>,

    /// Stop the program with a trap after this much wall-clock time: 500ms, 10s, 2m or a
    /// number of seconds (an epoch timer thread interrupts the wasm code)
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    timeout: Option<Duration>,

    /// Instantiate FILE first (with WASI) and make its exports importable from module NAME.
    /// Repeatable; later preloads may import earlier ones
    #[arg(long = "preload", value_name = "NAME=FILE")]
    preloads: Vec<String>,

    /// Compile every function before running (default: compile each function on its first call)
    #[arg(long)]
    eager: bool,

    /// Allow FILE (and preloads) to be precompiled modules from `wjit compile`, whose
    /// machine code runs unchecked: only for files from a trusted source
    #[arg(long)]
    allow_precompiled: bool,

    /// Make the generated code visible to `perf`: `perfmap` writes /tmp/perf-PID.map (use with
    /// `perf record`), `jitdump` writes /tmp/jit-PID.dump (use with `perf record -k 1` and
    /// `perf inject --jit`), `none` (the default) neither
    #[arg(long, value_name = "STRATEGY", value_parser = parse_profile, default_value = "none")]
    profile: ProfilingStrategy,

    /// Switch a wasm proposal on or off by its wasmtime name, e.g. `-W multi-memory=n`,
    /// `-W extended-const=y,simd=n`; NAME alone means `NAME=y`. Repeatable. Known names:
    /// simd, relaxed-simd, multi-memory, extended-const, memory64, tail-call,
    /// function-references
    #[arg(short = 'W', long = "wasm", value_name = "NAME[=y|n]")]
    wasm: Vec<String>,

    /// The module to run: binary WebAssembly (.wasm) or text format (.wat)
    #[arg(value_name = "FILE")]
    file: PathBuf,

    /// The program's arguments (after argv[0]), or with --invoke the function's arguments
    #[arg(
        value_name = "ARGS",
        allow_hyphen_values = true,
        trailing_var_arg = true
    )]
    args: Vec<String>,
}

#[derive(Args)]
struct WastArgs {
    /// Run with every proposal wjit implements, as the newest spec suite expects (default:
    /// WebAssembly 2.0, as the 2.0 suite expects)
    #[arg(long)]
    latest: bool,

    /// Like `--latest`, with the legacy exception-handling instructions too (`try`, `catch`,
    /// `rethrow`, `delegate`), as the newest suite's `legacy/` folder expects
    #[arg(long, conflicts_with = "latest")]
    legacy: bool,

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
    /// Failures while running wasm: exit 134 for traps and uncaught wasm exceptions (the
    /// program aborted), 1 for failed host calls.
    fn runtime(error: &Error) -> Failure {
        Failure {
            message: runtime_message(error),
            code: if error.as_trap().is_some() || error.exception().is_some() {
                TRAP_EXIT
            } else {
                1
            },
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
    if let Err(e) = logging::init() {
        eprintln!("error: {e}");
        return ExitCode::from(2);
    }
    let result = match cli.command {
        Command::Run(args) => run(&args),
        Command::Wast(args) => wast(&args),
        Command::Compile(args) => compile::compile(&args),
        Command::Inspect(args) => inspect::inspect(&args),
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

/// Applies `-W NAME[=y|n][,...]` options to `config`.
fn apply_wasm_options(config: &mut Config, options: &[String]) -> Result<(), String> {
    for item in options.iter().flat_map(|o| o.split(',')) {
        let (name, value) = item.split_once('=').unwrap_or((item, "y"));
        let enable = match value {
            "y" | "yes" | "true" | "1" => true,
            "n" | "no" | "false" | "0" => false,
            _ => return Err(format!("-W {item}: expected {name}=y or {name}=n")),
        };
        config
            .wasm_feature(name.trim(), enable)
            .map_err(|e| format!("-W {item}: {e}"))?;
    }
    Ok(())
}

/// Host data of `wjit run`: the program's WASI context.
struct Host {
    wasi: WasiCtx,
}

fn run(args: &RunArgs) -> Result<u8, Failure> {
    let path = &args.file;
    let mut config = Config::new();
    config
        .lazy_compilation(!args.eager)
        .consume_fuel(args.fuel.is_some())
        .epoch_interruption(args.timeout.is_some())
        .profiler(args.profile);
    apply_wasm_options(&mut config, &args.wasm).map_err(Failure::usage)?;
    let engine = Engine::new(&config).map_err(|e| Failure::usage(e.to_string()))?;
    let module = load_module(&engine, path, args.allow_precompiled)?;

    let wasi = wasi_context(args, path)?;
    let mut store = Store::new(&engine, Host { wasi });
    if let Some(fuel) = args.fuel {
        store
            .set_fuel(fuel)
            .map_err(|e| Failure::usage(e.to_string()))?;
    }
    let mut linker = Linker::<Host>::new(&engine);
    wjit_wasi::add_to_linker(&mut linker, |host: &mut Host| &mut host.wasi)
        .map_err(|e| Failure::usage(format!("cannot define WASI: {e}")))?;

    if let Some(timeout) = args.timeout {
        // The deadline is one tick away; the timer thread makes that tick.
        store.set_epoch_deadline(1);
        let engine = engine.clone();
        std::thread::spawn(move || {
            std::thread::sleep(timeout);
            engine.increment_epoch();
        });
    }

    for preload in &args.preloads {
        let (name, file) = preload
            .split_once('=')
            .ok_or_else(|| Failure::usage(format!("--preload `{preload}`: expected NAME=FILE")))?;
        let file = Path::new(file);
        let pre = load_module(&engine, file, args.allow_precompiled)?;
        check_imports(&linker, &mut store, &pre, file)?;
        let instance = linker
            .instantiate(&mut store, &pre)
            .map_err(|e| instantiate_failure(e, file))?;
        linker
            .instance(&mut store, name, instance)
            .map_err(|e| Failure::usage(format!("--preload {name}: {e}")))?;
    }

    check_imports(&linker, &mut store, &module, path)?;
    let instance = linker
        .instantiate(&mut store, &module)
        .map_err(|e| instantiate_failure(e, path))?;

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
    // Without --invoke, ARGS belong to the program; `_start` itself takes none.
    let wasm_args: &[String] = if args.invoke.is_some() {
        &args.args
    } else {
        &[]
    };
    if wasm_args.len() != params.len() {
        return Err(Failure::usage(format!(
            "`{name}` takes {} argument{} ({}), but {} {} given",
            params.len(),
            if params.len() == 1 { "" } else { "s" },
            params
                .iter()
                .map(|t| t.to_string())
                .collect::<Vec<_>>()
                .join(", "),
            wasm_args.len(),
            if wasm_args.len() == 1 { "was" } else { "were" },
        )));
    }
    let vals = params
        .iter()
        .zip(wasm_args)
        .enumerate()
        .map(|(i, (ty, text))| {
            parse_arg(*ty, text)
                .map_err(|why| Failure::usage(format!("argument {} of `{name}`: {why}", i + 1)))
        })
        .collect::<Result<Vec<Val>, Failure>>()?;
    // A reactor (a library-style WASI module) initializes itself before any other export.
    if args.invoke.is_some() && name != "_initialize" {
        if let Some(init) = instance.get_func(&store, "_initialize") {
            if let Err(e) = init.call(&mut store, &[], &mut []) {
                return finish(e);
            }
        }
    }

    let mut results: Vec<Val> = ty.results().iter().map(|t| Val::default_for(*t)).collect();
    if let Err(e) = func.call(&mut store, &vals, &mut results) {
        return finish(e);
    }
    for r in &results {
        println!("{}", format_val(r));
    }
    Ok(0)
}

/// Reads and compiles a module (with a progress bar if it is big), or loads a precompiled
/// one if `allow_precompiled`; errors name the file.
fn load_module(engine: &Engine, path: &Path, allow_precompiled: bool) -> Result<Module, Failure> {
    let bytes = std::fs::read(path)
        .map_err(|e| Failure::usage(format!("cannot read {}: {e}", path.display())))?;
    if let Some(module) = compile::load_precompiled(engine, path, &bytes, allow_precompiled) {
        return module;
    }
    progress::compile_module(engine, path, &bytes).map_err(Failure::usage)
}

/// Parses `--profile`.
fn parse_profile(s: &str) -> Result<ProfilingStrategy, String> {
    s.parse().map_err(|e: Error| e.to_string())
}

/// The WASI context of the program: inherited stdio, argv, `--env` and `--dir`.
fn wasi_context(args: &RunArgs, path: &Path) -> Result<WasiCtx, Failure> {
    let mut builder = WasiCtxBuilder::new();
    builder.inherit_stdio();
    // argv[0] is the module's base name, as in `wasmtime run`, so no host path leaks in.
    let argv0 = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    builder.arg(&argv0);
    if args.invoke.is_none() {
        builder.args(&args.args);
    }
    for env in &args.envs {
        match env.split_once('=') {
            Some((name, value)) => {
                builder.env(name, value);
            }
            None => {
                if let Ok(value) = std::env::var(env) {
                    builder.env(env, &value);
                }
            }
        }
    }
    for dir in &args.dirs {
        let (host, guest) = dir.split_once("::").unwrap_or((dir, dir));
        builder
            .preopened_dir(host, guest, DirPerms::ReadWrite)
            .map_err(|e| Failure::usage(format!("--dir {dir}: {e}")))?;
    }
    builder.build().map_err(|e| Failure::usage(e.to_string()))
}

/// Fails with one line naming the first import that neither WASI nor a `--preload` provides.
fn check_imports(
    linker: &Linker<Host>,
    store: &mut Store<Host>,
    module: &Module,
    path: &Path,
) -> Result<(), Failure> {
    for import in module.imports() {
        if linker
            .get(&mut *store, import.module(), import.name())
            .is_some()
        {
            continue;
        }
        let why = if wjit_wasi::is_wasi_module(import.module()) {
            "which is not a WASI preview1 function that wjit provides".to_string()
        } else {
            "which `wjit run` does not provide (it provides WASI preview1 \
             `wasi_snapshot_preview1` and `wasi_unstable`, and the modules given with --preload)"
                .to_string()
        };
        return Err(Failure::usage(format!(
            "{} imports {} `{}`.`{}`, {why}",
            path.display(),
            extern_kind(&import.ty()),
            import.module(),
            import.name()
        )));
    }
    Ok(())
}

fn instantiate_failure(e: Error, path: &Path) -> Failure {
    match e {
        Error::Trap(_) | Error::Host(_) | Error::Exception(_) => Failure::runtime(&e),
        other => Failure::usage(format!("{}: {other}", path.display())),
    }
}

/// How a run that did not return ends: the program's exit code, or a failure.
fn finish(e: Error) -> Result<u8, Failure> {
    if let Some(code) = e.i32_exit_status() {
        // As a Unix exit status keeps only the low 8 bits.
        return Ok(code as u8);
    }
    match e {
        Error::Trap(_) | Error::Host(_) | Error::Exception(_) => Err(Failure::runtime(&e)),
        other => Err(Failure::usage(other.to_string())),
    }
}

/// Backtraces longer than this are folded.
const BACKTRACE_FOLD: usize = 40;
/// Innermost and outermost frames kept of a folded backtrace.
const BACKTRACE_HEAD: usize = 20;
const BACKTRACE_TAIL: usize = 10;

/// The message of a trap or failed host call, with its wasm backtrace; a long (typically
/// recursive) backtrace keeps its innermost and outermost frames and says how many it omits.
fn runtime_message(e: &Error) -> String {
    let text = e.to_string();
    let mut out = match text.split_once("\nwasm backtrace:") {
        Some((head, _)) => head.to_string(),
        None => text,
    };
    let frames = e.wasm_backtrace();
    if frames.is_empty() {
        return out;
    }
    out.push_str("\nwasm backtrace:");
    let write_frame = |out: &mut String, i: usize, f: &FrameInfo| {
        let _ = write!(out, "\n  {i:>3}: ");
        let _ = match f.wasm_offset() {
            Some(off) => write!(out, "{off:#8x} - "),
            None => write!(out, "{:>8} - ", "?"),
        };
        let _ = match f.func_name() {
            Some(name) => write!(out, "{name}"),
            None => write!(out, "<wasm function {}>", f.func_index()),
        };
    };
    if frames.len() <= BACKTRACE_FOLD {
        for (i, f) in frames.iter().enumerate() {
            write_frame(&mut out, i, f);
        }
    } else {
        for (i, f) in frames.iter().enumerate().take(BACKTRACE_HEAD) {
            write_frame(&mut out, i, f);
        }
        let omitted = frames.len() - BACKTRACE_HEAD - BACKTRACE_TAIL;
        let _ = write!(out, "\n       ... {omitted} frames omitted");
        let tail_start = frames.len() - BACKTRACE_TAIL;
        for (i, f) in frames.iter().enumerate().skip(tail_start) {
            write_frame(&mut out, i, f);
        }
    }
    out
}

/// Parses `--timeout`: `500ms`, `10s`, `2m`, `1h` or plain (fractional) seconds.
fn parse_duration(text: &str) -> Result<Duration, String> {
    let t = text.trim();
    let (number, unit) = match t.find(|c: char| !(c.is_ascii_digit() || c == '.')) {
        Some(i) => t.split_at(i),
        None => (t, "s"),
    };
    let n: f64 = number
        .parse()
        .map_err(|_| format!("`{text}` is not a duration (e.g. 500ms, 10s, 2m)"))?;
    let secs = match unit {
        "ms" => n / 1000.0,
        "s" => n,
        "m" => n * 60.0,
        "h" => n * 3600.0,
        _ => {
            return Err(format!(
                "`{text}`: unknown unit `{unit}` (use ms, s, m or h)"
            ))
        }
    };
    Duration::try_from_secs_f64(secs).map_err(|e| format!("`{text}`: {e}"))
}

fn extern_kind(ty: &ExternType) -> &'static str {
    match ty {
        ExternType::Func(_) => "a function",
        ExternType::Global(_) => "a global",
        ExternType::Table(_) => "a table",
        ExternType::Memory(_) => "a memory",
        ExternType::Tag(_) => "a tag",
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
        ValType::Ref(r) if r.nullable && text == "null" => Ok(Val::default_for(ty)),
        ValType::FuncRef | ValType::ExternRef => {
            Err(format!("only `null` can be passed for a {ty} parameter"))
        }
        ValType::Ref(_) => Err(format!("no value can be passed for a {ty} parameter")),
        // The 128-bit integer whose little-endian bytes are the vector (lane 0 lowest).
        ValType::V128 => Ok(Val::V128(parse_u128(text).ok_or_else(bad)?.into())),
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

/// An unsigned 128-bit integer, decimal or `0x` hex, `_` separators allowed.
fn parse_u128(text: &str) -> Option<u128> {
    let t = text.replace('_', "");
    let digits = t.strip_prefix('+').unwrap_or(&t);
    if digits.is_empty() || digits.starts_with(['+', '-']) {
        return None;
    }
    match digits
        .strip_prefix("0x")
        .or_else(|| digits.strip_prefix("0X"))
    {
        Some(hex) if !hex.is_empty() && !hex.starts_with(['+', '-']) => {
            u128::from_str_radix(hex, 16).ok()
        }
        Some(_) => None,
        None => digits.parse::<u128>().ok(),
    }
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
        Val::V128(v) => format!("{:#034x}", v.as_u128()),
        Val::FuncRef(None) | Val::ExternRef(None) | Val::ExnRef(None) => "null".to_string(),
        Val::FuncRef(Some(_)) => "funcref".to_string(),
        Val::ExternRef(Some(_)) => "externref".to_string(),
        Val::ExnRef(Some(_)) => "exnref".to_string(),
    }
}

// ---------------------------------------------------------------------------------------------
// wjit wast

fn wast(args: &WastArgs) -> Result<u8, Failure> {
    let (mut passed, mut failed) = (0usize, 0usize);
    for file in &args.files {
        let options = spec_tests::Options {
            proposals: if args.legacy {
                spec_tests::Proposals::Legacy
            } else if args.latest {
                spec_tests::Proposals::Latest
            } else {
                spec_tests::Proposals::Wasm2
            },
            ..spec_tests::Options::default()
        };
        let report = spec_tests::run_wast_file_with(Path::new(file), &options);
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

    #[test]
    fn v128s() {
        let v = |text| parse_arg(ValType::V128, text).map(|v| v.v128().unwrap().as_u128());
        assert_eq!(v("0"), Ok(0));
        assert_eq!(v("0x0102_0304"), Ok(0x0102_0304));
        assert_eq!(v("340282366920938463463374607431768211455"), Ok(u128::MAX));
        assert!(v("0x").is_err());
        assert!(v("-1").is_err());
        assert!(v("0x1_0000_0000_0000_0000_0000_0000_0000_0000").is_err());
        assert_eq!(
            format_val(&Val::V128(0xabu128.into())),
            "0x000000000000000000000000000000ab"
        );
    }
}
