//! Runner for WebAssembly spec test scripts (`.wast`) against wjit.
//!
//! This is the one implementation of the `.wast` semantics in the project: the `spec` test
//! harness (`cargo test -p spec-tests`) and the `wjit wast` CLI subcommand both call
//! [`run_wast_file`]. It uses only the public `wjit` embedding API.
//!
//! One script runs in one `Store<()>` that owns every instance of the script, and one
//! `Linker<()>` (with shadowing allowed, so a later `register` replaces earlier names) that
//! holds the `spectest` module and the registered instances.
//!
//! Every directive counts as passed or failed; a file passes only if all of its directives pass.
//! `Error::Unsupported` from wjit is always a failure (also for `assert_invalid` and
//! `assert_malformed`), so unimplemented features show up as failing files.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::fmt::Write as _;
use std::panic::{self, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::sync::Once;
use std::time::Duration;

use wast::core::{AbstractHeapType, HeapType, NanPattern, V128Pattern, WastArgCore, WastRetCore};
use wast::lexer::Lexer;
use wast::parser::{self, ParseBuffer};
use wast::token::Span;
use wast::token::{F32, F64};
use wast::{QuoteWat, Wast, WastArg, WastDirective, WastExecute, WastInvoke, WastRet, Wat};
use wjit::{
    Config, Engine, Error, ExternRef, Func, Global, GlobalType, Instance, Linker, Memory,
    MemoryType, Module, Store, Table, TableType, TrapCode, Val, ValType, V128,
};

/// One failed directive.
#[derive(Debug, Clone)]
pub struct Failure {
    /// 1-based line of the directive in the script (0 if not tied to a directive).
    pub line: usize,
    /// Directive kind, e.g. `assert_return`.
    pub kind: &'static str,
    /// What went wrong, one line.
    pub message: String,
}

/// The outcome of running one `.wast` script.
#[derive(Debug, Clone)]
pub struct Report {
    /// The script that was run.
    pub path: PathBuf,
    /// Directives that passed.
    pub passed: usize,
    /// Directives that failed (including a script that failed to parse, counted as one).
    pub failed: usize,
    /// Details of each failed directive, in script order.
    pub failures: Vec<Failure>,
}

impl Report {
    fn new(path: &Path) -> Report {
        Report {
            path: path.to_path_buf(),
            passed: 0,
            failed: 0,
            failures: Vec::new(),
        }
    }

    /// True if every directive passed.
    pub fn ok(&self) -> bool {
        self.failed == 0
    }

    /// The script's file name (e.g. `i32.wast`), used as the prefix of failure lines.
    pub fn file_name(&self) -> String {
        self.path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| self.path.display().to_string())
    }

    /// One line per failure: `file.wast:LINE: <kind>: <message>`.
    pub fn failure_lines(&self) -> impl Iterator<Item = String> + '_ {
        let file = self.file_name();
        self.failures
            .iter()
            .map(move |f| format!("{}:{}: {}: {}", file, f.line, f.kind, f.message))
    }

    /// The first `limit` failure lines, then `... and N more failures` if there are more.
    pub fn failure_summary(&self, limit: usize) -> String {
        let mut out = String::new();
        for line in self.failure_lines().take(limit) {
            out.push_str(&line);
            out.push('\n');
        }
        if self.failures.len() > limit {
            let _ = writeln!(out, "... and {} more failures", self.failures.len() - limit);
        }
        let _ = write!(
            out,
            "{}: {} directives passed, {} failed",
            self.file_name(),
            self.passed,
            self.failed
        );
        out
    }

    fn fail(&mut self, line: usize, kind: &'static str, message: String) {
        self.failed += 1;
        // Keep messages to one line.
        let message = message.replace('\n', " | ");
        self.failures.push(Failure {
            line,
            kind,
            message,
        });
    }
}

/// How to run a script.
#[derive(Debug, Clone)]
pub struct Options {
    /// Stack size of the thread that runs the script (host recursion, deep wasm stacks).
    pub stack_size: usize,
    /// Give up on a script after this long (a hung script is reported as a failure and its
    /// thread is abandoned). `None`: wait forever.
    pub timeout: Option<Duration>,
    /// The proposals the engine accepts.
    pub proposals: Proposals,
}

/// Which proposals a script runs with: each suite expects exactly its own (wasm 2.0 scripts
/// check, for example, that a memory index byte other than zero is malformed, which the
/// multi-memory proposal makes valid).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Proposals {
    /// WebAssembly 2.0 (plus relaxed SIMD, which adds opcodes only): the 2.0 suite.
    #[default]
    Wasm2,
    /// Every proposal wjit implements: the newest suite (wasm 3.0 folded in).
    Latest,
    /// [`Proposals::Latest`] and the legacy exception-handling instructions: the newest
    /// suite's `legacy/` folder.
    Legacy,
}

impl Default for Options {
    fn default() -> Options {
        let timeout = std::env::var("WJIT_SPEC_TIMEOUT")
            .ok()
            .and_then(|s| s.parse::<u64>().ok())
            .unwrap_or(120);
        Options {
            proposals: Proposals::default(),
            stack_size: 64 << 20,
            timeout: if timeout == 0 {
                None
            } else {
                Some(Duration::from_secs(timeout))
            },
        }
    }
}

/// Runs one `.wast` script with default [`Options`] (64 MiB stack, 120 s timeout, or
/// `WJIT_SPEC_TIMEOUT` seconds; 0 disables the timeout).
pub fn run_wast_file(path: impl AsRef<Path>) -> Report {
    run_wast_file_with(path, &Options::default())
}

/// Runs one `.wast` script on a fresh thread with the given options. Never panics: panics in
/// wjit or in the runner are reported as failed directives.
pub fn run_wast_file_with(path: impl AsRef<Path>, options: &Options) -> Report {
    let path = path.as_ref().to_path_buf();
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) => {
            let mut r = Report::new(&path);
            r.fail(0, "read", format!("cannot read {}: {e}", path.display()));
            return r;
        }
    };
    install_panic_hook();
    let (tx, rx) = mpsc::channel();
    let thread_path = path.clone();
    let proposals = options.proposals;
    let spawned = std::thread::Builder::new()
        .name(format!("wast:{}", path.display()))
        .stack_size(options.stack_size)
        .spawn(move || {
            let report = run_wast_text_with(&thread_path, &text, proposals);
            let _ = tx.send(report);
        });
    if let Err(e) = spawned {
        let mut r = Report::new(&path);
        r.fail(0, "run", format!("cannot spawn runner thread: {e}"));
        return r;
    }
    let received = match options.timeout {
        Some(t) => rx.recv_timeout(t).map_err(|e| match e {
            mpsc::RecvTimeoutError::Timeout => format!("timed out after {} s", t.as_secs()),
            mpsc::RecvTimeoutError::Disconnected => "runner thread died".to_string(),
        }),
        None => rx.recv().map_err(|_| "runner thread died".to_string()),
    };
    match received {
        Ok(report) => report,
        Err(msg) => {
            let mut r = Report::new(&path);
            r.fail(0, "run", msg);
            r
        }
    }
}

/// Runs a script given as text on the current thread (`path` is only used for messages),
/// with the wasm 2.0 proposals. Panics are caught per directive.
pub fn run_wast_text(path: &Path, text: &str) -> Report {
    run_wast_text_with(path, text, Proposals::Wasm2)
}

/// [`run_wast_text`] with the given proposals.
pub fn run_wast_text_with(path: &Path, text: &str, proposals: Proposals) -> Report {
    install_panic_hook();
    let mut report = Report::new(path);
    // names.wast deliberately uses bidi and other confusable characters in strings.
    let mut lexer = Lexer::new(text);
    lexer.allow_confusing_unicode(true);
    let buf = match ParseBuffer::new_with_lexer(lexer) {
        Ok(b) => b,
        Err(e) => {
            let line = line_of(text, e.span());
            report.fail(line, "parse", e.message());
            return report;
        }
    };
    let wast = match parser::parse::<Wast>(&buf) {
        Ok(w) => w,
        Err(e) => {
            let line = line_of(text, e.span());
            report.fail(line, "parse", e.message());
            return report;
        }
    };
    let mut state = match catch(|| State::new(proposals)) {
        Ok(Ok(s)) => s,
        Ok(Err(e)) => {
            report.fail(
                0,
                "spectest",
                format!("cannot set up the spectest module: {e}"),
            );
            return report;
        }
        Err(p) => {
            report.fail(0, "spectest", format!("panic while setting up: {p}"));
            return report;
        }
    };
    for directive in wast.directives {
        let line = line_of(text, directive.span());
        let kind = directive_kind(&directive);
        let outcome = catch(AssertUnwindSafe(|| state.run(directive, line)))
            .unwrap_or_else(|p| Err(format!("panic: {p}")));
        match outcome {
            Ok(()) => report.passed += 1,
            Err(msg) => report.fail(line, kind, msg),
        }
    }
    report
}

fn line_of(text: &str, span: Span) -> usize {
    span.linecol_in(text).0 + 1
}

fn directive_kind(d: &WastDirective<'_>) -> &'static str {
    match d {
        WastDirective::Module(_) => "module",
        WastDirective::ModuleDefinition(_) => "module definition",
        WastDirective::ModuleInstance { .. } => "module instance",
        WastDirective::AssertMalformed { .. } => "assert_malformed",
        WastDirective::AssertInvalid { .. } => "assert_invalid",
        WastDirective::AssertInvalidCustom { .. } => "assert_invalid_custom",
        WastDirective::AssertMalformedCustom { .. } => "assert_malformed_custom",
        WastDirective::Register { .. } => "register",
        WastDirective::Invoke(_) => "invoke",
        WastDirective::AssertTrap { .. } => "assert_trap",
        WastDirective::AssertReturn { .. } => "assert_return",
        WastDirective::AssertExhaustion { .. } => "assert_exhaustion",
        WastDirective::AssertUnlinkable { .. } => "assert_unlinkable",
        WastDirective::AssertException { .. } => "assert_exception",
        WastDirective::AssertSuspension { .. } => "assert_suspension",
        WastDirective::Thread(_) => "thread",
        WastDirective::Wait { .. } => "wait",
    }
}

// ---------------------------------------------------------------------------------------------
// Panic capture: inside the runner a panic's message is recorded (and not printed) so it can be
// reported as a directive failure; elsewhere the previous hook runs unchanged.

thread_local! {
    static IN_RUNNER: Cell<usize> = const { Cell::new(0) };
    static LAST_PANIC: RefCell<Option<String>> = const { RefCell::new(None) };
}

fn install_panic_hook() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let previous = panic::take_hook();
        panic::set_hook(Box::new(move |info| {
            if IN_RUNNER.with(|c| c.get()) > 0 {
                let payload = info.payload();
                let msg = if let Some(s) = payload.downcast_ref::<&str>() {
                    (*s).to_string()
                } else if let Some(s) = payload.downcast_ref::<String>() {
                    s.clone()
                } else {
                    "(non-string panic payload)".to_string()
                };
                let msg = match info.location() {
                    Some(l) => format!("{msg} (at {}:{})", l.file(), l.line()),
                    None => msg,
                };
                LAST_PANIC.with(|p| *p.borrow_mut() = Some(msg));
            } else {
                previous(info)
            }
        }));
    });
}

/// Runs `f`, turning a panic into `Err(message)`.
fn catch<R>(f: impl FnOnce() -> R + panic::UnwindSafe) -> Result<R, String> {
    IN_RUNNER.with(|c| c.set(c.get() + 1));
    let r = panic::catch_unwind(f);
    IN_RUNNER.with(|c| c.set(c.get() - 1));
    r.map_err(|payload| {
        LAST_PANIC
            .with(|p| p.borrow_mut().take())
            .unwrap_or_else(|| {
                if let Some(s) = payload.downcast_ref::<&str>() {
                    (*s).to_string()
                } else if let Some(s) = payload.downcast_ref::<String>() {
                    s.clone()
                } else {
                    "(non-string panic payload)".to_string()
                }
            })
    })
}

// ---------------------------------------------------------------------------------------------
// Script state and directives.

struct State {
    /// Owns every instance, memory, table and global of the script.
    store: Store<()>,
    /// Compiles every body up front, so invalid bodies are rejected by `Module::new`
    /// (the store's engine compiles lazily, on first call, like an embedder's default engine).
    eager_engine: Engine,
    /// `spectest` and the registered instances; shadowing allowed (`register` replaces).
    linker: Linker<()>,
    current: Option<Instance>,
    named: HashMap<String, Instance>,
    definitions: HashMap<String, Module>,
    last_definition: Option<Module>,
    /// Line of the last module directive if it failed (for "no current instance" messages).
    failed_module_line: Option<usize>,
}

/// Why executing an invoke/get/module failed: the harness could not do it, or wjit returned an
/// error.
enum ExecError {
    Harness(String),
    Wasm(Error),
}

impl From<Error> for ExecError {
    fn from(e: Error) -> ExecError {
        ExecError::Wasm(e)
    }
}

impl ExecError {
    fn describe(self) -> String {
        match self {
            ExecError::Harness(m) => m,
            ExecError::Wasm(e) => describe_error(&e),
        }
    }
}

fn describe_error(e: &Error) -> String {
    // wjit's Display already names the kind ("compile error: ...", "wasm trap: ...").
    e.to_string()
}

type Outcome = Result<(), String>;

/// The engine configuration: the defaults with exactly the `proposals` on, and
/// `WJIT_X64_AVX=0` makes the x64 backend use its SSE forms on an AVX machine (CI runs the
/// suites both ways).
fn config(proposals: Proposals) -> Config {
    let mut config = Config::new();
    if std::env::var_os("WJIT_X64_AVX").is_some_and(|v| v == "0") {
        config.x64_avx(false);
    }
    let latest = proposals != Proposals::Wasm2;
    config
        .wasm_multi_memory(latest)
        .wasm_extended_const(latest)
        .wasm_memory64(latest)
        .wasm_tail_call(latest)
        .wasm_function_references(latest)
        .wasm_exceptions(latest)
        .wasm_legacy_exceptions(proposals == Proposals::Legacy);
    config
}

impl State {
    fn new(proposals: Proposals) -> Result<State, Error> {
        let engine = Engine::new(&config(proposals))?;
        let eager_engine = Engine::new(config(proposals).lazy_compilation(false))?;
        let mut store = Store::new(&engine, ());
        let mut linker = Linker::new(&engine);
        linker.allow_shadowing(true);
        define_spectest(&mut store, &mut linker)?;
        Ok(State {
            store,
            eager_engine,
            linker,
            current: None,
            named: HashMap::new(),
            definitions: HashMap::new(),
            last_definition: None,
            failed_module_line: None,
        })
    }

    fn run(&mut self, directive: WastDirective<'_>, line: usize) -> Outcome {
        match directive {
            WastDirective::Module(mut module) => {
                let name = module.name().map(|id| id.name().to_string());
                // A failed module must not leave a stale instance behind for later invokes.
                self.current = None;
                self.failed_module_line = Some(line);
                if let Some(n) = &name {
                    self.named.remove(n);
                }
                let bytes = encode(&mut module)?;
                let instance = self.instantiate(&bytes).map_err(ExecError::describe)?;
                self.failed_module_line = None;
                if let Some(n) = name {
                    self.named.insert(n, instance);
                }
                self.current = Some(instance);
                Ok(())
            }
            WastDirective::ModuleDefinition(mut module) => {
                let name = module.name().map(|id| id.name().to_string());
                self.last_definition = None;
                let bytes = encode(&mut module)?;
                let compiled = self.compile(&bytes).map_err(ExecError::describe)?;
                if let Some(n) = name {
                    self.definitions.insert(n, compiled.clone());
                }
                self.last_definition = Some(compiled);
                Ok(())
            }
            WastDirective::ModuleInstance {
                instance, module, ..
            } => {
                self.current = None;
                self.failed_module_line = Some(line);
                let compiled = match module {
                    Some(id) => self
                        .definitions
                        .get(id.name())
                        .cloned()
                        .ok_or_else(|| format!("no module definition named ${}", id.name()))?,
                    None => self
                        .last_definition
                        .clone()
                        .ok_or_else(|| "no module definition to instantiate".to_string())?,
                };
                let inst = self
                    .linker
                    .instantiate(&mut self.store, &compiled)
                    .map_err(|e| describe_error(&e))?;
                self.failed_module_line = None;
                if let Some(id) = instance {
                    self.named.insert(id.name().to_string(), inst);
                }
                self.current = Some(inst);
                Ok(())
            }
            WastDirective::Register { name, module, .. } => {
                let inst = self.instance(module.map(|id| id.name()))?;
                self.linker
                    .instance(&self.store, name, inst)
                    .map_err(|e| describe_error(&e))?;
                Ok(())
            }
            WastDirective::Invoke(invoke) => {
                self.invoke(&invoke).map_err(ExecError::describe)?;
                Ok(())
            }
            WastDirective::AssertReturn { exec, results, .. } => {
                let actual = self.execute(exec).map_err(ExecError::describe)?;
                check_results(&results, &actual)
            }
            WastDirective::AssertTrap { exec, message, .. } => match self.execute(exec) {
                Ok(vals) => Err(format!(
                    "expected trap \"{message}\", got success: [{}]",
                    fmt_vals(&vals)
                )),
                Err(ExecError::Wasm(Error::Trap(trap))) => {
                    if trap_matches(trap.code(), message) {
                        Ok(())
                    } else {
                        Err(format!(
                            "expected trap \"{message}\", got \"{}\" ({trap})",
                            trap.code()
                        ))
                    }
                }
                Err(e) => Err(format!("expected trap \"{message}\", got {}", e.describe())),
            },
            WastDirective::AssertExhaustion { call, message, .. } => match self.invoke(&call) {
                Ok(vals) => Err(format!(
                    "expected \"{message}\", got success: [{}]",
                    fmt_vals(&vals)
                )),
                Err(ExecError::Wasm(Error::Trap(trap))) => {
                    if trap.code() == TrapCode::StackOverflow || trap_matches(trap.code(), message)
                    {
                        Ok(())
                    } else {
                        Err(format!(
                            "expected \"{message}\", got \"{}\" ({trap})",
                            trap.code()
                        ))
                    }
                }
                Err(e) => Err(format!("expected \"{message}\", got {}", e.describe())),
            },
            WastDirective::AssertInvalid {
                module, message, ..
            } => self.assert_rejected(module, message, "invalid"),
            WastDirective::AssertMalformed {
                module, message, ..
            } => self.assert_rejected(module, message, "malformed"),
            WastDirective::AssertUnlinkable {
                mut module,
                message,
                ..
            } => {
                let bytes = module
                    .encode()
                    .map_err(|e| format!("failed to encode module: {}", e.message()))?;
                let compiled = self.compile(&bytes).map_err(ExecError::describe)?;
                match self.linker.instantiate(&mut self.store, &compiled) {
                    Ok(_) => Err(format!(
                        "expected link error \"{message}\", module instantiated"
                    )),
                    Err(Error::Link(_)) => Ok(()),
                    Err(e) => Err(format!(
                        "expected link error \"{message}\", got {}",
                        describe_error(&e)
                    )),
                }
            }
            WastDirective::AssertException { exec, .. } => match self.execute(exec) {
                Ok(vals) => Err(format!(
                    "expected an uncaught exception, got success: [{}]",
                    fmt_vals(&vals)
                )),
                Err(ExecError::Wasm(Error::Exception(_))) => Ok(()),
                Err(e) => Err(format!(
                    "expected an uncaught exception, got {}",
                    e.describe()
                )),
            },
            WastDirective::AssertInvalidCustom { .. }
            | WastDirective::AssertMalformedCustom { .. }
            | WastDirective::AssertSuspension { .. }
            | WastDirective::Thread(_)
            | WastDirective::Wait { .. } => {
                Err("directive not supported by the wjit spec runner".to_string())
            }
        }
    }

    fn compile(&self, bytes: &[u8]) -> Result<Module, ExecError> {
        Ok(Module::new(self.store.engine(), bytes)?)
    }

    fn instantiate(&mut self, bytes: &[u8]) -> Result<Instance, ExecError> {
        let module = self.compile(bytes)?;
        Ok(self.linker.instantiate(&mut self.store, &module)?)
    }

    fn instance(&self, name: Option<&str>) -> Result<Instance, String> {
        match name {
            Some(n) => self.named.get(n).copied().ok_or_else(|| {
                format!("no instance named ${n} (its module failed or is not defined)")
            }),
            None => self.current.ok_or_else(|| match self.failed_module_line {
                Some(line) => format!("no current instance: the module at line {line} failed"),
                None => "no current instance".to_string(),
            }),
        }
    }

    fn invoke(&mut self, invoke: &WastInvoke<'_>) -> Result<Vec<Val>, ExecError> {
        let instance = self
            .instance(invoke.module.map(|id| id.name()))
            .map_err(ExecError::Harness)?;
        let func = instance.get_func(&self.store, invoke.name).ok_or_else(|| {
            ExecError::Harness(format!("no exported function \"{}\"", invoke.name))
        })?;
        let args = invoke
            .args
            .iter()
            .map(arg_val)
            .collect::<Result<Vec<_>, _>>()?;
        let ty = func.ty(&self.store);
        if args.len() != ty.params().len() {
            return Err(ExecError::Harness(format!(
                "\"{}\" takes {} arguments, script passes {}",
                invoke.name,
                ty.params().len(),
                args.len()
            )));
        }
        let mut results: Vec<Val> = ty.results().iter().map(|t| Val::default_for(*t)).collect();
        func.call(&mut self.store, &args, &mut results)?;
        Ok(results)
    }

    fn execute(&mut self, exec: WastExecute<'_>) -> Result<Vec<Val>, ExecError> {
        match exec {
            WastExecute::Invoke(invoke) => self.invoke(&invoke),
            WastExecute::Get { module, global, .. } => {
                let instance = self
                    .instance(module.map(|id| id.name()))
                    .map_err(ExecError::Harness)?;
                let g = instance.get_global(&self.store, global).ok_or_else(|| {
                    ExecError::Harness(format!("no exported global \"{global}\""))
                })?;
                Ok(vec![g.get(&self.store)])
            }
            WastExecute::Wat(mut wat) => {
                let bytes = encode_wat(&mut wat).map_err(ExecError::Harness)?;
                self.instantiate(&bytes)?;
                Ok(Vec::new())
            }
        }
    }

    fn assert_rejected(&self, mut module: QuoteWat<'_>, message: &str, what: &str) -> Outcome {
        // Text that the wast crate cannot even encode is rejected before reaching wjit: pass.
        let bytes = match module.encode() {
            Ok(b) => b,
            Err(_) => return Ok(()),
        };
        match Module::new(&self.eager_engine, &bytes) {
            Ok(_) => Err(format!(
                "expected {what} module (\"{message}\"), but it compiled"
            )),
            Err(Error::Compile(_)) => Ok(()),
            Err(e) => Err(format!(
                "expected {what} module (\"{message}\"), got {}",
                describe_error(&e)
            )),
        }
    }
}

fn encode(module: &mut QuoteWat<'_>) -> Result<Vec<u8>, String> {
    module
        .encode()
        .map_err(|e| format!("failed to encode module: {}", e.message()))
}

fn encode_wat(wat: &mut Wat<'_>) -> Result<Vec<u8>, String> {
    wat.encode()
        .map_err(|e| format!("failed to encode module: {}", e.message()))
}

fn define_spectest(store: &mut Store<()>, linker: &mut Linker<()>) -> Result<(), Error> {
    // The print functions are items of the store (not `Linker::func_wrap` definitions, which
    // bind a new function at every instantiation), so every module of the script imports the
    // same function instances, as the spec's `spectest` module provides them.
    let prints = [
        ("print", Func::wrap(&mut *store, || {})),
        ("print_i32", Func::wrap(&mut *store, |_: i32| {})),
        ("print_i64", Func::wrap(&mut *store, |_: i64| {})),
        ("print_f32", Func::wrap(&mut *store, |_: f32| {})),
        ("print_f64", Func::wrap(&mut *store, |_: f64| {})),
        (
            "print_i32_f32",
            Func::wrap(&mut *store, |_: i32, _: f32| {}),
        ),
        (
            "print_f64_f64",
            Func::wrap(&mut *store, |_: f64, _: f64| {}),
        ),
    ];
    for (name, func) in prints {
        linker.define(&*store, "spectest", name, func)?;
    }
    let globals = [
        ("global_i32", ValType::I32, Val::I32(666)),
        ("global_i64", ValType::I64, Val::I64(666)),
        ("global_f32", ValType::F32, Val::F32(666.6f32.to_bits())),
        ("global_f64", ValType::F64, Val::F64(666.6f64.to_bits())),
    ];
    for (name, content, init) in globals {
        let g = Global::new(
            &mut *store,
            GlobalType {
                content,
                mutable: false,
            },
            init,
        )?;
        linker.define(&*store, "spectest", name, g)?;
    }
    let table_ty = TableType {
        element: ValType::FuncRef,
        minimum: 10,
        maximum: Some(20),
        table64: false,
    };
    let table = Table::new(&mut *store, table_ty, Val::FuncRef(None))?;
    linker.define(&*store, "spectest", "table", table)?;
    let table64 = TableType {
        table64: true,
        ..table_ty
    };
    let table64 = Table::new(&mut *store, table64, Val::FuncRef(None))?;
    linker.define(&*store, "spectest", "table64", table64)?;
    let memory = Memory::new(&mut *store, MemoryType::new(1, Some(2)))?;
    linker.define(&*store, "spectest", "memory", memory)?;
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Values.

fn arg_val(arg: &WastArg<'_>) -> Result<Val, ExecError> {
    let core = match arg {
        WastArg::Core(c) => c,
        #[allow(unreachable_patterns)]
        _ => return Err(ExecError::Harness("component-model argument".to_string())),
    };
    Ok(match core {
        WastArgCore::I32(x) => Val::I32(*x),
        WastArgCore::I64(x) => Val::I64(*x),
        WastArgCore::F32(f) => Val::F32(f.bits),
        WastArgCore::F64(f) => Val::F64(f.bits),
        WastArgCore::V128(c) => Val::V128(V128::from_le_bytes(c.to_le_bytes())),
        WastArgCore::RefNull(ht) => match abstract_heap_type(ht) {
            Some(AbstractHeapType::Func) => Val::FuncRef(None),
            Some(AbstractHeapType::Extern) => Val::ExternRef(None),
            Some(AbstractHeapType::Exn) => Val::ExnRef(None),
            _ => {
                return Err(ExecError::Harness(format!(
                    "unsupported null reference {ht:?}"
                )))
            }
        },
        WastArgCore::RefExtern(n) => Val::ExternRef(Some(ExternRef::new(*n))),
        WastArgCore::RefHost(_) => {
            return Err(ExecError::Harness(
                "ref.host arguments are not supported".to_string(),
            ))
        }
    })
}

/// The abstract heap type of `ht`; a concrete (type index) heap type is a function type
/// here (no GC types).
fn abstract_heap_type(ht: &HeapType<'_>) -> Option<AbstractHeapType> {
    match ht {
        HeapType::Abstract { ty, .. } => Some(*ty),
        HeapType::Concrete(_) => Some(AbstractHeapType::Func),
        _ => None,
    }
}

fn check_results(expected: &[WastRet<'_>], actual: &[Val]) -> Outcome {
    if expected.len() != actual.len() {
        return Err(format!(
            "expected {} results [{}], got {} [{}]",
            expected.len(),
            fmt_rets(expected),
            actual.len(),
            fmt_vals(actual)
        ));
    }
    for (i, (e, a)) in expected.iter().zip(actual).enumerate() {
        let e = match e {
            WastRet::Core(c) => c,
            #[allow(unreachable_patterns)]
            _ => return Err("component-model result".to_string()),
        };
        match ret_matches(e, a) {
            Ok(true) => {}
            Ok(false) => {
                return Err(format!(
                    "result {i}: expected {}, got {} (all results: [{}])",
                    fmt_ret(e),
                    fmt_val(a),
                    fmt_vals(actual)
                ))
            }
            Err(msg) => return Err(format!("result {i}: {msg}")),
        }
    }
    Ok(())
}

fn ret_matches(expected: &WastRetCore<'_>, actual: &Val) -> Result<bool, String> {
    Ok(match (expected, actual) {
        (WastRetCore::I32(e), Val::I32(a)) => e == a,
        (WastRetCore::I64(e), Val::I64(a)) => e == a,
        (WastRetCore::F32(p), Val::F32(bits)) => f32_matches(p, *bits),
        (WastRetCore::F64(p), Val::F64(bits)) => f64_matches(p, *bits),
        (WastRetCore::V128(p), Val::V128(v)) => v128_matches(p, *v),
        (WastRetCore::RefNull(ht), v) => {
            let kind = ht.as_ref().map(abstract_heap_type);
            matches!(
                (kind, v),
                (
                    None | Some(Some(AbstractHeapType::Func)),
                    Val::FuncRef(None)
                ) | (
                    None | Some(Some(AbstractHeapType::Extern)),
                    Val::ExternRef(None)
                ) | (None | Some(Some(AbstractHeapType::Exn)), Val::ExnRef(None))
            )
        }
        (WastRetCore::RefExtern(n), Val::ExternRef(Some(r))) => match n {
            None => true,
            Some(n) => r.data().downcast_ref::<u32>() == Some(n),
        },
        (WastRetCore::RefFunc(_), Val::FuncRef(Some(_))) => true,
        (WastRetCore::Either(alts), v) => {
            for alt in alts {
                if ret_matches(alt, v)? {
                    return Ok(true);
                }
            }
            false
        }
        (
            WastRetCore::RefHost(_)
            | WastRetCore::RefAny
            | WastRetCore::RefEq
            | WastRetCore::RefArray
            | WastRetCore::RefStruct
            | WastRetCore::RefI31
            | WastRetCore::RefI31Shared,
            _,
        ) => return Err(format!("unsupported expected value {}", fmt_ret(expected))),
        _ => false,
    })
}

fn f32_matches(p: &NanPattern<F32>, bits: u32) -> bool {
    match p {
        NanPattern::Value(v) => v.bits == bits,
        NanPattern::CanonicalNan => bits & 0x7fff_ffff == 0x7fc0_0000,
        NanPattern::ArithmeticNan => bits & 0x7fc0_0000 == 0x7fc0_0000,
    }
}

fn f64_matches(p: &NanPattern<F64>, bits: u64) -> bool {
    match p {
        NanPattern::Value(v) => v.bits == bits,
        NanPattern::CanonicalNan => bits & 0x7fff_ffff_ffff_ffff == 0x7ff8_0000_0000_0000,
        NanPattern::ArithmeticNan => bits & 0x7ff8_0000_0000_0000 == 0x7ff8_0000_0000_0000,
    }
}

/// The `N`-byte lanes of `v`, lane 0 first.
fn lanes<const N: usize>(v: V128) -> impl Iterator<Item = [u8; N]> {
    let bytes = v.to_le_bytes();
    (0..16 / N).map(move |i| {
        let mut lane = [0; N];
        lane.copy_from_slice(&bytes[i * N..(i + 1) * N]);
        lane
    })
}

/// Lane-wise comparison of a v128 result (float lanes may expect a NaN kind).
fn v128_matches(p: &V128Pattern, v: V128) -> bool {
    match p {
        V128Pattern::I8x16(e) => lanes::<1>(v).zip(e).all(|(a, e)| a[0] as i8 == *e),
        V128Pattern::I16x8(e) => lanes::<2>(v)
            .zip(e)
            .all(|(a, e)| i16::from_le_bytes(a) == *e),
        V128Pattern::I32x4(e) => lanes::<4>(v)
            .zip(e)
            .all(|(a, e)| i32::from_le_bytes(a) == *e),
        V128Pattern::I64x2(e) => lanes::<8>(v)
            .zip(e)
            .all(|(a, e)| i64::from_le_bytes(a) == *e),
        V128Pattern::F32x4(e) => lanes::<4>(v)
            .zip(e)
            .all(|(a, e)| f32_matches(e, u32::from_le_bytes(a))),
        V128Pattern::F64x2(e) => lanes::<8>(v)
            .zip(e)
            .all(|(a, e)| f64_matches(e, u64::from_le_bytes(a))),
    }
}

/// Loose comparison of a trap with the message a spec script expects.
pub fn trap_matches(code: TrapCode, expected: &str) -> bool {
    let msg = code.to_string();
    if msg.contains(expected) || expected.contains(msg.as_str()) {
        return true;
    }
    match code {
        TrapCode::UndefinedElement | TrapCode::TableOutOfBounds => {
            expected.contains("undefined element")
        }
        TrapCode::IndirectCallToNull => expected.contains("uninitialized element"),
        TrapCode::MemoryOutOfBounds => expected.contains("out of bounds memory access"),
        TrapCode::BadSignature => expected.contains("indirect call type mismatch"),
        TrapCode::NullReference => expected.contains("null") && expected.contains("reference"),
        _ => false,
    }
}

fn fmt_val(v: &Val) -> String {
    match v {
        Val::I32(x) => format!("i32:{x}"),
        Val::I64(x) => format!("i64:{x}"),
        Val::F32(b) => format!("f32:{}({b:#010x})", f32::from_bits(*b)),
        Val::F64(b) => format!("f64:{}({b:#018x})", f64::from_bits(*b)),
        Val::V128(v) => {
            let lanes: Vec<String> = lanes::<4>(*v)
                .map(|l| format!("{:#010x}", u32::from_le_bytes(l)))
                .collect();
            format!("v128:i32x4({})", lanes.join(" "))
        }
        Val::FuncRef(None) => "ref.null func".to_string(),
        Val::FuncRef(Some(_)) => "ref.func".to_string(),
        Val::ExternRef(None) => "ref.null extern".to_string(),
        Val::ExternRef(Some(r)) => match r.data().downcast_ref::<u32>() {
            Some(n) => format!("ref.extern {n}"),
            None => "ref.extern (foreign)".to_string(),
        },
        Val::ExnRef(None) => "ref.null exn".to_string(),
        Val::ExnRef(Some(_)) => "ref.exn".to_string(),
    }
}

fn fmt_vals(vals: &[Val]) -> String {
    vals.iter().map(fmt_val).collect::<Vec<_>>().join(", ")
}

fn fmt_ret(r: &WastRetCore<'_>) -> String {
    fn ints<T: std::fmt::Display>(lanes: &[T]) -> Vec<String> {
        lanes.iter().map(|l| l.to_string()).collect()
    }
    fn lane<T>(p: &NanPattern<T>, val: impl Fn(&T) -> String) -> String {
        match p {
            NanPattern::CanonicalNan => "nan:canonical".to_string(),
            NanPattern::ArithmeticNan => "nan:arithmetic".to_string(),
            NanPattern::Value(v) => val(v),
        }
    }
    fn nan<T>(p: &NanPattern<T>, ty: &str, val: impl Fn(&T) -> String) -> String {
        format!("{ty}:{}", lane(p, val))
    }
    match r {
        WastRetCore::I32(x) => format!("i32:{x}"),
        WastRetCore::I64(x) => format!("i64:{x}"),
        WastRetCore::F32(p) => nan(p, "f32", |v| {
            format!("{}({:#010x})", f32::from_bits(v.bits), v.bits)
        }),
        WastRetCore::F64(p) => nan(p, "f64", |v| {
            format!("{}({:#018x})", f64::from_bits(v.bits), v.bits)
        }),
        WastRetCore::V128(p) => {
            let list = |v: Vec<String>| v.join(" ");
            match p {
                V128Pattern::I8x16(l) => format!("v128:i8x16({})", list(ints(l))),
                V128Pattern::I16x8(l) => format!("v128:i16x8({})", list(ints(l))),
                V128Pattern::I32x4(l) => format!("v128:i32x4({})", list(ints(l))),
                V128Pattern::I64x2(l) => format!("v128:i64x2({})", list(ints(l))),
                V128Pattern::F32x4(l) => format!(
                    "v128:f32x4({})",
                    list(
                        l.iter()
                            .map(|p| lane(p, |v| format!("{:#010x}", v.bits)))
                            .collect()
                    )
                ),
                V128Pattern::F64x2(l) => format!(
                    "v128:f64x2({})",
                    list(
                        l.iter()
                            .map(|p| lane(p, |v| format!("{:#018x}", v.bits)))
                            .collect()
                    )
                ),
            }
        }
        WastRetCore::RefNull(None) => "ref.null".to_string(),
        WastRetCore::RefNull(Some(ht)) => match abstract_heap_type(ht) {
            Some(AbstractHeapType::Func) => "ref.null func".to_string(),
            Some(AbstractHeapType::Extern) => "ref.null extern".to_string(),
            Some(AbstractHeapType::Exn) => "ref.null exn".to_string(),
            _ => format!("ref.null {ht:?}"),
        },
        WastRetCore::RefExtern(Some(n)) => format!("ref.extern {n}"),
        WastRetCore::RefExtern(None) => "ref.extern".to_string(),
        WastRetCore::RefFunc(_) => "ref.func".to_string(),
        WastRetCore::Either(alts) => {
            format!(
                "either({})",
                alts.iter().map(fmt_ret).collect::<Vec<_>>().join(" | ")
            )
        }
        other => format!("{other:?}"),
    }
}

fn fmt_rets(rets: &[WastRet<'_>]) -> String {
    rets.iter()
        .map(|r| match r {
            WastRet::Core(c) => fmt_ret(c),
            #[allow(unreachable_patterns)]
            _ => "(component value)".to_string(),
        })
        .collect::<Vec<_>>()
        .join(", ")
}

// ---------------------------------------------------------------------------------------------
// Test-suite location and skip list (shared by the harness and anything else that wants them).

/// The pinned upstream commit of the spec test suite (WebAssembly 2.0).
pub const TESTSUITE_COMMIT: &str = "53da17c0936a23f68f97cde4f9346a0a374dc35f";

/// How to obtain the test suite, for error messages.
pub fn testsuite_help() -> String {
    format!(
        "get the WebAssembly 2.0 spec test suite with:\n  \
         git clone https://github.com/WebAssembly/testsuite && git -C testsuite checkout {TESTSUITE_COMMIT}\n\
         then point WJIT_TESTSUITE at the clone, e.g. WJIT_TESTSUITE=$PWD/testsuite\n\
         and for the newest suite a second clone at {LATEST_TESTSUITE_COMMIT} in WJIT_TESTSUITE_LATEST"
    )
}

/// `WJIT_TESTSUITE`, or `<workspace root>/../shared/wasm-testsuite-2.0`.
pub fn testsuite_dir() -> PathBuf {
    match std::env::var_os("WJIT_TESTSUITE") {
        Some(d) if !d.is_empty() => PathBuf::from(d),
        _ => Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/wasm-testsuite-2.0"),
    }
}

/// The commit of `WebAssembly/testsuite` the newest suite (`skip-latest.txt`) is taken from.
pub const LATEST_TESTSUITE_COMMIT: &str = "193e551ff22663995b1ac95dc62344133669e14b";

/// `WJIT_TESTSUITE_LATEST`, or `<workspace root>/../shared/wasm-testsuite` (the newest suite,
/// wasm 3.0 folded in).
pub fn latest_testsuite_dir() -> PathBuf {
    match std::env::var_os("WJIT_TESTSUITE_LATEST") {
        Some(d) if !d.is_empty() => PathBuf::from(d),
        _ => Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/wasm-testsuite"),
    }
}

/// One entry of `skip.txt`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SkipEntry {
    /// File stem, e.g. `simd_i8x16_arith`.
    pub name: String,
    /// Text after `#` on the same line (may be empty).
    pub reason: String,
    /// 1-based line in skip.txt.
    pub line: usize,
}

/// Parses a skip list: `name  # reason` per line; blank lines and `#` comment lines ignored.
pub fn parse_skip_list(text: &str) -> Vec<SkipEntry> {
    let mut out = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let (entry, reason) = match raw.find('#') {
            Some(pos) => (&raw[..pos], raw[pos + 1..].trim()),
            None => (raw, ""),
        };
        let name = entry.trim();
        if name.is_empty() {
            continue;
        }
        let name = name.strip_suffix(".wast").unwrap_or(name);
        out.push(SkipEntry {
            name: name.to_string(),
            reason: reason.to_string(),
            line: i + 1,
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn skip_list_parsing() {
        let list = parse_skip_list("# header\n\nfoo  # not yet\nbar.wast\n  baz#x\n");
        let names: Vec<_> = list
            .iter()
            .map(|e| (e.name.as_str(), e.reason.as_str()))
            .collect();
        assert_eq!(names, [("foo", "not yet"), ("bar", ""), ("baz", "x")]);
        assert_eq!(list[0].line, 3);
    }

    fn run(text: &str) -> Report {
        run_wast_text(Path::new("test.wast"), text)
    }

    #[test]
    fn one_store_per_script() {
        // Registered instances share state with the script's other instances; a later
        // `register` of the same name replaces the earlier one; spectest items are shared.
        let report = run(r#"
            (module $a
              (global (export "g") (mut i32) (i32.const 1))
              (func (export "set") (param i32) (global.set 0 (local.get 0))))
            (register "m" $a)
            (module $b
              (import "m" "g" (global $g (mut i32)))
              (import "spectest" "print_i32" (func $p (param i32)))
              (import "spectest" "memory" (memory 1))
              (func (export "get") (result i32) (call $p (global.get $g)) (global.get $g))
              (func (export "store") (param i32) (i32.store (i32.const 0) (local.get 0))))
            (invoke $a "set" (i32.const 42))
            (assert_return (invoke $b "get") (i32.const 42))
            (invoke $b "store" (i32.const 7))
            (module $c
              (import "spectest" "memory" (memory 1))
              (func (export "load") (result i32) (i32.load (i32.const 0))))
            (assert_return (invoke "load") (i32.const 7))
            (module $d (global (export "g") (mut i32) (i32.const 5)))
            (register "m" $d)
            (module (import "m" "g" (global (mut i32)))
              (func (export "get") (result i32) (global.get 0)))
            (assert_return (invoke "get") (i32.const 5))
            (assert_return (get $a "g") (i32.const 42))
            (assert_unlinkable (module (import "m" "nope" (func))) "unknown import")
            (assert_trap (module (func unreachable) (start 0)) "unreachable")
        "#);
        assert!(report.ok(), "{}", report.failure_summary(20));
        assert_eq!(report.passed, 15);
    }

    #[test]
    fn failures_are_counted() {
        let report = run(r#"
            (module (func (export "f") (result i32) (i32.const 1)))
            (assert_return (invoke "f") (i32.const 2))
            (assert_trap (invoke "f") "unreachable")
            (module (import "spectest" "nope" (func)))
            (assert_return (invoke "f") (i32.const 1))
        "#);
        assert_eq!(
            (report.passed, report.failed),
            (1, 4),
            "{:?}",
            report.failures
        );
        let kinds: Vec<_> = report.failures.iter().map(|f| f.kind).collect();
        assert_eq!(
            kinds,
            ["assert_return", "assert_trap", "module", "assert_return"]
        );
        assert!(report.failures[3].message.contains("no current instance"));
    }

    #[test]
    fn v128_results_are_compared_lane_by_lane() {
        let report = run(r#"
            (module $m
              (global (export "i") v128 (v128.const i32x4 1 -2 3 -4))
              (global (export "f") v128 (v128.const f32x4 nan -nan:0x600000 1.5 -0.0))
              (global (export "d") v128 (v128.const f64x2 nan:0xc000000000000 -inf)))
            (assert_return (get "i") (v128.const i32x4 1 -2 3 -4))
            (assert_return (get "i") (v128.const i64x2 0xfffffffe00000001 0xfffffffc00000003))
            (assert_return (get "i") (v128.const i16x8 1 0 -2 -1 3 0 -4 -1))
            (assert_return (get "i")
              (v128.const i8x16 1 0 0 0 -2 -1 -1 -1 3 0 0 0 -4 -1 -1 -1))
            (assert_return (get "f")
              (v128.const f32x4 nan:canonical nan:arithmetic 1.5 -0.0))
            (assert_return (get "d") (v128.const f64x2 nan:arithmetic -inf))
            (assert_return (get "i")
              (either (v128.const i32x4 0 0 0 0) (v128.const i32x4 1 -2 3 -4)))
            (assert_return (get "i") (v128.const i32x4 1 -2 3 4))
            (assert_return (get "f")
              (v128.const f32x4 nan:canonical nan:canonical 1.5 -0.0))
            (assert_return (get "d") (v128.const f64x2 nan:canonical -inf))
            (assert_return (get "f") (v128.const f32x4 nan:canonical nan:arithmetic 1.5 0.0))
            (assert_return (get "i") (i32.const 1))
        "#);
        assert_eq!(
            (report.passed, report.failed),
            (8, 5),
            "{:?}",
            report.failures
        );
        assert!(
            report.failures[0].message.contains("v128:i32x4(1 -2 3 4)"),
            "{:?}",
            report.failures[0]
        );
        assert!(
            report.failures[1]
                .message
                .contains("v128:f32x4(nan:canonical nan:canonical 0x3fc00000 0x80000000)"),
            "{:?}",
            report.failures[1]
        );
    }

    #[test]
    fn v128_arguments() {
        use wast::core::V128Const;
        let arg = |c| {
            arg_val(&WastArg::Core(WastArgCore::V128(c)))
                .ok()
                .and_then(|v| v.v128())
        };
        assert_eq!(
            arg(V128Const::I32x4([1, -2, 3, -4])),
            Some(V128::from(0xfffffffc_00000003_fffffffe_00000001u128))
        );
        assert_eq!(
            arg(V128Const::I8x16([
                -1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x7f
            ])),
            Some(V128::from(0x7f00_0000_0000_0000_0000_0000_0000_00ffu128))
        );
        assert_eq!(
            arg(V128Const::F64x2([F64 { bits: 1 }, F64 { bits: 2 }])),
            Some(V128::from(2u128 << 64 | 1))
        );
    }

    #[test]
    fn trap_messages() {
        assert!(trap_matches(
            TrapCode::IndirectCallToNull,
            "uninitialized element 2"
        ));
        assert!(trap_matches(
            TrapCode::TableOutOfBounds,
            "undefined element"
        ));
        assert!(trap_matches(
            TrapCode::UndefinedElement,
            "undefined element"
        ));
        assert!(trap_matches(
            TrapCode::BadSignature,
            "indirect call type mismatch"
        ));
        assert!(trap_matches(
            TrapCode::MemoryOutOfBounds,
            "out of bounds memory access"
        ));
        assert!(trap_matches(
            TrapCode::IntegerDivisionByZero,
            "integer divide by zero"
        ));
        assert!(!trap_matches(
            TrapCode::IntegerOverflow,
            "integer divide by zero"
        ));
        assert!(!trap_matches(TrapCode::Unreachable, "undefined element"));
    }
}
