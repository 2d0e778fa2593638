//! `difftest-eh`: differential testing of wjit's exception handling against wasmtime
//! (Cranelift) on wasm-smith modules with exceptions enabled.
//!
//! wjit's own differential tester (`crates/difftest`) compares with wasmi, which has no
//! exception handling; this campaign reuses its settings, generator configuration, call
//! plans, wjit runner and trace comparison, and puts wasmtime in wasmi's place. An uncaught
//! exception is an outcome of its own on both sides ([`UNCAUGHT`]). Exported functions with
//! an exnref parameter or result, which difftest's plans leave out, get a pass of their own
//! ([`exnref_pass`]).

use anyhow::{Context, Result};
use difftest::exec::{self, compare, ExportKind, Outcome, Plan, State, Stop, Trace, TrapClass, V};
use difftest::gen::{self, Rng, Settings, MAX_PAGES, MAX_TABLE_ELEMENTS};
use difftest::Mode;
use std::path::{Path, PathBuf};
use std::time::Instant;

/// The outcome of a call (or instantiation) that ended in an exception no wasm frame caught.
pub const UNCAUGHT: &str = "uncaught exception";

/// What wjit's `Error::Exception` displays as (difftest's runner keeps only the message).
const WJIT_UNCAUGHT: &str = "uncaught wasm exception";

/// The campaign's options.
#[derive(Debug, PartialEq)]
pub struct EhOptions {
    pub start: u64,
    pub end: u64,
    pub secs: Option<u64>,
    pub out: PathBuf,
}

/// The default output directory for divergences.
pub fn default_out() -> PathBuf {
    PathBuf::from("target/difftest-eh")
}

/// The settings of a seed: difftest's (preset, lazy compilation, software float rounding,
/// SIMD), always with fuel, the same budget on both sides (wasmtime has no wasmi-style
/// schedule: both run every call and stop on their own fuel). Half of the seeds have
/// wasm-smith avoid trapping code, so that more calls get as far as their `throw`s.
pub fn settings(seed: u64) -> Settings {
    let mut s = gen::settings(seed, Mode::Run);
    s.fuel = Some(s.ref_fuel);
    s.no_traps = Rng::new(seed ^ 0x7a5c_0b1e_55ed_0001).chance(1, 2);
    s
}

/// difftest's wasm-smith configuration with exceptions: tags, `throw`, `throw_ref`,
/// `try_table` and `exnref` (reference types are already on). A few tags in every module,
/// so that `throw` finds one whose parameters are on the stack.
pub fn smith_config(s: &Settings) -> wasm_smith::Config {
    let mut c = gen::smith_config(s);
    c.exceptions_enabled = true;
    c.min_tags = 1;
    c.max_tags = 4;
    c
}

/// The module for `seed` (deterministic).
pub fn module(seed: u64) -> Vec<u8> {
    let s = settings(seed);
    let mut r = Rng::new(seed ^ 0xe4c3_55d1_d1ff_0e11);
    r.next_u64();
    let base: usize = match s.preset {
        gen::Preset::Tiny => 512,
        gen::Preset::LongBlocks | gen::Preset::DeepNesting => 16 << 10,
        gen::Preset::ManyLocals => 8 << 10,
        _ => 4 << 10,
    };
    let len = base / 2 + r.below(base as u64) as usize;
    let mut buf = vec![0u8; len];
    r.fill(&mut buf);
    // Runs of large bytes keep wasm-smith's loops going (more values, longer bodies).
    for _ in 0..buf.len() / 256 {
        let at = r.below(buf.len() as u64) as usize;
        let run = (1 + r.below(32) as usize).min(buf.len() - at);
        buf[at..at + run].fill(0xff);
    }
    let mut u = arbitrary::Unstructured::new(&buf);
    match wasm_smith::Module::new(smith_config(&s), &mut u) {
        Ok(m) => m.to_bytes(),
        Err(_) => b"\0asm\x01\0\0\0".to_vec(),
    }
}

/// `try_table`, `throw` and `throw_ref` operators in a module's code.
pub fn count_eh_ops(bytes: &[u8]) -> usize {
    let mut n = 0;
    for payload in wasmparser::Parser::new(0).parse_all(bytes) {
        let Ok(wasmparser::Payload::CodeSectionEntry(body)) = payload else {
            continue;
        };
        let Ok(mut reader) = body.get_operators_reader() else {
            continue;
        };
        while !reader.eof() {
            let Ok(op) = reader.read() else { break };
            n += matches!(
                op,
                wasmparser::Operator::TryTable { .. }
                    | wasmparser::Operator::Throw { .. }
                    | wasmparser::Operator::ThrowRef
            ) as usize;
        }
    }
    n
}

/// The wjit engine of difftest's `exec::wjit_engine`, with exception handling on.
pub fn wjit_engine(s: &Settings) -> wjit::Engine {
    let mut c = wjit::Config::new();
    c.lazy_compilation(s.lazy)
        .consume_fuel(s.fuel.is_some())
        .epoch_interruption(s.epoch)
        .software_float_rounding(s.software_float_rounding)
        .parallel_compilation(false)
        .wasm_exceptions(true);
    wjit::Engine::new(&c).expect("wjit engine")
}

/// wasmtime with Cranelift, fuel and exception handling (its other wasm 3.0 defaults on).
pub fn wasmtime_engine() -> Result<wasmtime::Engine> {
    let mut c = wasmtime::Config::new();
    c.strategy(wasmtime::Strategy::Cranelift)
        .parallel_compilation(false)
        .consume_fuel(true)
        .wasm_exceptions(true);
    Ok(wasmtime::Engine::new(&c)?)
}

fn wasmtime_err(
    store: &mut wasmtime::Store<wasmtime::StoreLimits>,
    e: &wasmtime::Error,
) -> Outcome {
    use wasmtime::Trap as T;
    if e.is::<wasmtime::ThrownException>() {
        // Clear the store's pending exception: later calls start clean.
        let _ = store.take_pending_exception();
        return Outcome::Error(UNCAUGHT.into());
    }
    match e.downcast_ref::<T>() {
        Some(code) => match code {
            T::OutOfFuel => Outcome::Stop(Stop::OutOfFuel),
            T::StackOverflow => Outcome::Stop(Stop::StackOverflow),
            T::Interrupt => Outcome::Stop(Stop::Interrupt),
            T::UnreachableCodeReached => Outcome::Trap(TrapClass::Unreachable),
            T::MemoryOutOfBounds => Outcome::Trap(TrapClass::MemoryOutOfBounds),
            T::TableOutOfBounds => Outcome::Trap(TrapClass::TableOutOfBounds),
            T::IndirectCallToNull => Outcome::Trap(TrapClass::IndirectCallToNull),
            T::BadSignature => Outcome::Trap(TrapClass::BadSignature),
            T::IntegerOverflow => Outcome::Trap(TrapClass::IntegerOverflow),
            T::IntegerDivisionByZero => Outcome::Trap(TrapClass::IntegerDivisionByZero),
            T::BadConversionToInteger => Outcome::Trap(TrapClass::BadConversionToInteger),
            // wjit's name for the trap of `throw_ref` on a null exnref (difftest keeps the
            // Debug name of trap codes it has no class for).
            T::NullReference => Outcome::Trap(TrapClass::Other("NullReference".into())),
            other => Outcome::Trap(TrapClass::Other(format!("wasmtime {other:?}"))),
        },
        None => Outcome::Error(format!("{e:#}")),
    }
}

fn wasmtime_val(v: &wasmtime::Val) -> V {
    use wasmtime::Val as W;
    match v {
        W::I32(x) => V::I32(*x),
        W::I64(x) => V::I64(*x),
        W::F32(x) => V::F32(*x),
        W::F64(x) => V::F64(*x),
        W::V128(x) => V::V128(x.as_u128()),
        // References (funcref, externref, exnref, ...): only null or not.
        other => V::Ref(other.ref_().is_none_or(|r| r.is_null())),
    }
}

fn to_wasmtime(v: &V, t: exec::Ty) -> wasmtime::Val {
    use wasmtime::Val as W;
    match (v, t) {
        (V::I32(x), _) => W::I32(*x),
        (V::I64(x), _) => W::I64(*x),
        (V::F32(x), _) => W::F32(*x),
        (V::F64(x), _) => W::F64(*x),
        (V::V128(x), _) => W::V128((*x).into()),
        // Like difftest: reference arguments are null.
        (V::Ref(_), exec::Ty::FuncRef) => W::FuncRef(None),
        (V::Ref(_), _) => W::ExternRef(None),
    }
}

fn wasmtime_state(
    store: &mut wasmtime::Store<wasmtime::StoreLimits>,
    inst: &wasmtime::Instance,
    plan: &Plan,
) -> State {
    let mut st = State::default();
    for (name, kind) in &plan.exports {
        match kind {
            ExportKind::Global => {
                if let Some(g) = inst.get_global(&mut *store, name) {
                    st.globals.push(wasmtime_val(&g.get(&mut *store)));
                }
            }
            ExportKind::Memory => {
                if let Some(m) = inst.get_memory(&mut *store, name) {
                    let d = m.data(&*store);
                    st.memories.push((d.len() as u64, exec::hash_bytes(d)));
                }
            }
            ExportKind::Table => {
                if let Some(t) = inst.get_table(&mut *store, name) {
                    let n = t.size(&*store);
                    let nulls: Vec<bool> = (0..n)
                        .map(|i| t.get(&mut *store, i).is_none_or(|r| r.is_null()))
                        .collect();
                    st.tables.push((n, exec::hash_nulls(nulls.into_iter())));
                }
            }
            ExportKind::Func(..) => {}
        }
    }
    st
}

/// Instantiates and runs the plan on wasmtime, with `fuel` per call (like difftest's
/// `run_wasmi`).
pub fn run_wasmtime(
    engine: &wasmtime::Engine,
    module: &wasmtime::Module,
    fuel: u64,
    plan: &Plan,
) -> Trace {
    let limits = wasmtime::StoreLimitsBuilder::new()
        .memory_size((MAX_PAGES * 65536) as usize)
        .table_elements(MAX_TABLE_ELEMENTS as usize)
        .build();
    let mut store = wasmtime::Store::new(engine, limits);
    store.limiter(|l| l);
    store.set_fuel(fuel).expect("fuel");
    let mut trace = Trace {
        instantiate: None,
        state0: State::default(),
        calls: Vec::new(),
    };
    let linker = wasmtime::Linker::new(engine);
    let inst = match linker.instantiate(&mut store, module) {
        Ok(i) => i,
        Err(e) => {
            trace.instantiate = Some(wasmtime_err(&mut store, &e));
            return trace;
        }
    };
    trace.state0 = wasmtime_state(&mut store, &inst, plan);
    for (name, args) in &plan.calls {
        let Some(func) = inst.get_func(&mut store, name) else {
            trace.calls.push((
                Outcome::Error(format!("no export {name}")),
                State::default(),
            ));
            return trace;
        };
        let (ptys, rtys) = match plan.exports.iter().find(|(n, _)| n == name) {
            Some((_, ExportKind::Func(p, r))) => (p.clone(), r.clone()),
            _ => unreachable!(),
        };
        let params: Vec<wasmtime::Val> = args
            .iter()
            .zip(&ptys)
            .map(|(v, t)| to_wasmtime(v, *t))
            .collect();
        let mut results = vec![wasmtime::Val::I32(0); rtys.len()];
        store.set_fuel(fuel).expect("fuel");
        let outcome = match func.call(&mut store, &params, &mut results) {
            Ok(()) => Outcome::Values(results.iter().map(wasmtime_val).collect()),
            Err(e) => wasmtime_err(&mut store, &e),
        };
        let st = wasmtime_state(&mut store, &inst, plan);
        trace.calls.push((outcome, st));
    }
    trace
}

/// Maps wjit's uncaught-exception message to [`UNCAUGHT`].
fn normalise_wjit(trace: &mut Trace) {
    let fix = |o: &mut Outcome| {
        if matches!(o, Outcome::Error(m) if m == WJIT_UNCAUGHT) {
            *o = Outcome::Error(UNCAUGHT.into());
        }
    };
    if let Some(o) = &mut trace.instantiate {
        fix(o);
    }
    for (o, _) in &mut trace.calls {
        fix(o);
    }
}

fn is_uncaught(o: &Outcome) -> bool {
    matches!(o, Outcome::Error(m) if m == UNCAUGHT)
}

// ---------------------------------------------------------------------------------------
// The exnref pass: exported functions with an exnref parameter or result, which difftest's
// plans leave out, called on fresh instances of both engines (outcomes and results compared;
// exnref arguments are null, exnref results compared as null or not).

/// A parameter or result type of the exnref pass: one difftest knows, or a nullable exnref.
#[derive(Clone, Copy, Debug, PartialEq)]
enum PTy {
    Base(exec::Ty),
    Exn,
}

fn pty(t: wasmparser::ValType) -> Option<PTy> {
    use wasmparser::{AbstractHeapType as A, HeapType as H, ValType as W};
    Some(PTy::Base(match t {
        W::I32 => exec::Ty::I32,
        W::I64 => exec::Ty::I64,
        W::F32 => exec::Ty::F32,
        W::F64 => exec::Ty::F64,
        W::V128 => exec::Ty::V128,
        W::Ref(r) if r.is_func_ref() => exec::Ty::FuncRef,
        W::Ref(r) if r.is_extern_ref() => exec::Ty::ExternRef,
        W::Ref(r)
            if r.is_nullable()
                && r.heap_type()
                    == (H::Abstract {
                        shared: false,
                        ty: A::Exn,
                    }) =>
        {
            return Some(PTy::Exn)
        }
        _ => return None,
    }))
}

type Sig = (Vec<PTy>, Vec<PTy>);

/// Exported functions with at least one exnref parameter or result (and otherwise types
/// difftest passes), in export order.
fn exnref_exports(bytes: &[u8]) -> Vec<(String, Sig)> {
    let mut types: Vec<Option<Sig>> = Vec::new();
    let mut funcs: Vec<u32> = Vec::new();
    let mut out = Vec::new();
    for payload in wasmparser::Parser::new(0).parse_all(bytes) {
        let Ok(payload) = payload else { break };
        match payload {
            wasmparser::Payload::TypeSection(s) => {
                for rec in s.into_iter().flatten() {
                    for sub in rec.into_types() {
                        types.push(match &sub.composite_type.inner {
                            wasmparser::CompositeInnerType::Func(f) => {
                                let p: Option<Vec<PTy>> =
                                    f.params().iter().map(|t| pty(*t)).collect();
                                let r: Option<Vec<PTy>> =
                                    f.results().iter().map(|t| pty(*t)).collect();
                                p.zip(r)
                            }
                            _ => None,
                        });
                    }
                }
            }
            wasmparser::Payload::ImportSection(s) => {
                for imp in s.into_imports().flatten() {
                    if let wasmparser::TypeRef::Func(t) = imp.ty {
                        funcs.push(t);
                    }
                }
            }
            wasmparser::Payload::FunctionSection(s) => funcs.extend(s.into_iter().flatten()),
            wasmparser::Payload::ExportSection(s) => {
                for e in s.into_iter().flatten() {
                    if e.kind != wasmparser::ExternalKind::Func {
                        continue;
                    }
                    let t = funcs.get(e.index as usize).copied();
                    if let Some(sig) = t.and_then(|t| types.get(t as usize).cloned().flatten()) {
                        if sig.0.iter().chain(&sig.1).any(|t| *t == PTy::Exn) {
                            out.push((e.name.to_string(), sig));
                        }
                    }
                }
            }
            _ => {}
        }
    }
    out
}

fn wjit_outcome(e: &wjit::Error) -> Outcome {
    if e.exception().is_some() {
        return Outcome::Error(UNCAUGHT.into());
    }
    exec::wjit_trap(e)
}

fn to_wjit(v: &V, t: PTy) -> wjit::Val {
    match (v, t) {
        (_, PTy::Exn) => wjit::Val::ExnRef(None),
        (V::I32(x), _) => wjit::Val::I32(*x),
        (V::I64(x), _) => wjit::Val::I64(*x),
        (V::F32(x), _) => wjit::Val::F32(*x),
        (V::F64(x), _) => wjit::Val::F64(*x),
        (V::V128(x), _) => wjit::Val::V128(wjit::V128::from(*x)),
        (V::Ref(_), PTy::Base(exec::Ty::FuncRef)) => wjit::Val::FuncRef(None),
        (V::Ref(_), _) => wjit::Val::ExternRef(None),
    }
}

/// An argument of type `t` (exnref: null).
fn arg_for(args: &mut Rng, t: PTy) -> V {
    match t {
        PTy::Exn => V::Ref(true),
        PTy::Base(exec::Ty::FuncRef | exec::Ty::ExternRef) => V::Ref(true),
        PTy::Base(exec::Ty::I32) => V::I32(args.next_u64() as i32 >> (args.below(32) as u32)),
        PTy::Base(exec::Ty::I64) => V::I64(args.next_u64() as i64 >> args.below(64) as u32),
        PTy::Base(exec::Ty::F32) => V::F32(args.next_u64() as u32),
        PTy::Base(exec::Ty::F64) => V::F64(args.next_u64()),
        PTy::Base(exec::Ty::V128) => {
            V::V128(args.next_u64() as u128 | (args.next_u64() as u128) << 64)
        }
    }
}

/// Runs the exnref pass: both traces (states not recorded).
fn exnref_pass(
    engine: &wjit::Engine,
    wjit_module: &wjit::Module,
    wt_engine: &wasmtime::Engine,
    wt_module: &wasmtime::Module,
    s: &Settings,
    funcs: &[(String, Sig)],
    args: &mut Rng,
) -> (Trace, Trace) {
    let fuel = s.fuel.unwrap_or(s.ref_fuel);
    let calls: Vec<(usize, Vec<V>)> = (0..2)
        .flat_map(|_| 0..funcs.len())
        .map(|i| (i, funcs[i].1 .0.iter().map(|t| arg_for(args, *t)).collect()))
        .collect();
    let empty = || Trace {
        instantiate: None,
        state0: State::default(),
        calls: Vec::new(),
    };
    // wjit
    let mut a = empty();
    let limits = wjit::StoreLimitsBuilder::new()
        .memory_size((MAX_PAGES * 65536) as usize)
        .table_elements(MAX_TABLE_ELEMENTS as usize)
        .build();
    let mut store = wjit::Store::new(engine, limits);
    store.limiter(|l| l);
    let prepare = |store: &mut wjit::Store<wjit::StoreLimits>| {
        store.set_fuel(fuel).expect("fuel");
        if s.epoch {
            // Nothing advances this engine's epoch: fuel ends runaway calls.
            store.set_epoch_deadline(1 << 40);
        }
    };
    prepare(&mut store);
    match wjit::Instance::new(&mut store, wjit_module, &[]) {
        Err(e) => a.instantiate = Some(wjit_outcome(&e)),
        Ok(inst) => {
            for (i, vals) in &calls {
                let (name, (ptys, rtys)) = &funcs[*i];
                let Some(func) = inst.get_func(&store, name) else {
                    a.calls.push((
                        Outcome::Error(format!("no export {name}")),
                        State::default(),
                    ));
                    continue;
                };
                let params: Vec<wjit::Val> =
                    vals.iter().zip(ptys).map(|(v, t)| to_wjit(v, *t)).collect();
                let mut results: Vec<wjit::Val> = rtys
                    .iter()
                    .map(|t| match t {
                        PTy::Exn => wjit::Val::ExnRef(None),
                        PTy::Base(exec::Ty::FuncRef) => wjit::Val::FuncRef(None),
                        PTy::Base(exec::Ty::ExternRef) => wjit::Val::ExternRef(None),
                        PTy::Base(exec::Ty::I64) => wjit::Val::I64(0),
                        PTy::Base(exec::Ty::F32) => wjit::Val::F32(0),
                        PTy::Base(exec::Ty::F64) => wjit::Val::F64(0),
                        PTy::Base(exec::Ty::V128) => wjit::Val::V128(wjit::V128::from(0)),
                        PTy::Base(exec::Ty::I32) => wjit::Val::I32(0),
                    })
                    .collect();
                prepare(&mut store);
                let o = match func.call(&mut store, &params, &mut results) {
                    Ok(()) => Outcome::Values(results.iter().map(exec::wjit_val).collect()),
                    Err(e) => wjit_outcome(&e),
                };
                a.calls.push((o, State::default()));
            }
        }
    }
    // wasmtime
    let mut b = empty();
    let limits = wasmtime::StoreLimitsBuilder::new()
        .memory_size((MAX_PAGES * 65536) as usize)
        .table_elements(MAX_TABLE_ELEMENTS as usize)
        .build();
    let mut store = wasmtime::Store::new(wt_engine, limits);
    store.limiter(|l| l);
    store.set_fuel(fuel).expect("fuel");
    match wasmtime::Linker::new(wt_engine).instantiate(&mut store, wt_module) {
        Err(e) => b.instantiate = Some(wasmtime_err(&mut store, &e)),
        Ok(inst) => {
            for (i, vals) in &calls {
                let (name, (ptys, rtys)) = &funcs[*i];
                let Some(func) = inst.get_func(&mut store, name) else {
                    b.calls.push((
                        Outcome::Error(format!("no export {name}")),
                        State::default(),
                    ));
                    continue;
                };
                let params: Vec<wasmtime::Val> = vals
                    .iter()
                    .zip(ptys)
                    .map(|(v, t)| match t {
                        PTy::Exn => wasmtime::Val::ExnRef(None),
                        PTy::Base(t) => to_wasmtime(v, *t),
                    })
                    .collect();
                let mut results = vec![wasmtime::Val::I32(0); rtys.len()];
                store.set_fuel(fuel).expect("fuel");
                let o = match func.call(&mut store, &params, &mut results) {
                    Ok(()) => Outcome::Values(results.iter().map(wasmtime_val).collect()),
                    Err(e) => wasmtime_err(&mut store, &e),
                };
                b.calls.push((o, State::default()));
            }
        }
    }
    (a, b)
}

/// What one seed did.
#[derive(Debug, Default)]
pub struct SeedResult {
    /// Both engines accepted the module and it was run.
    pub ran: bool,
    /// `try_table`/`throw`/`throw_ref` operators in the module.
    pub eh_ops: usize,
    pub calls: usize,
    /// Of those, calls where both sides ended in an uncaught exception, and calls that
    /// trapped on both sides (the rest returned values).
    pub uncaught: usize,
    pub traps: usize,
    /// Of the calls compared, those of the exnref pass (functions with an exnref parameter
    /// or result, on fresh instances).
    pub exnref_calls: usize,
    /// Exported functions called by neither difftest's plan nor the exnref pass.
    pub uncallable: usize,
    /// Why the module was not run (one line).
    pub skipped: Option<String>,
    /// (class, reason)
    pub divergence: Option<(String, String)>,
}

fn one_line(s: &str) -> String {
    let s: String = s
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    s.chars().take(300).collect()
}

/// Exported functions in the module minus those in the plan.
fn uncallable(bytes: &[u8], plan: &Plan) -> usize {
    let mut exported = 0;
    for payload in wasmparser::Parser::new(0).parse_all(bytes) {
        if let Ok(wasmparser::Payload::ExportSection(s)) = payload {
            exported += s
                .into_iter()
                .flatten()
                .filter(|e| e.kind == wasmparser::ExternalKind::Func)
                .count();
        }
    }
    let planned = plan
        .exports
        .iter()
        .filter(|(_, k)| matches!(k, ExportKind::Func(..)))
        .count();
    exported.saturating_sub(planned)
}

/// Runs one module on both engines and compares.
pub fn check_module(
    bytes: &[u8],
    s: &Settings,
    wt_engine: &wasmtime::Engine,
    args: &mut Rng,
) -> SeedResult {
    let mut r = SeedResult {
        eh_ops: count_eh_ops(bytes),
        ..SeedResult::default()
    };
    let engine = wjit_engine(s);
    let (wjit_module, wt_module) = match (
        wjit::Module::new(&engine, bytes),
        wasmtime::Module::new(wt_engine, bytes),
    ) {
        (Ok(a), Ok(b)) => (a, b),
        (Err(wjit::Error::Unsupported(m)), _) => {
            r.skipped = Some(one_line(&format!("wjit unsupported: {m}")));
            return r;
        }
        (Err(a), Err(b)) => {
            r.skipped = Some(one_line(&format!("both reject: wjit {a}; wasmtime {b:#}")));
            return r;
        }
        (Ok(_), Err(e)) => {
            r.skipped = Some(one_line(&format!("wasmtime rejects: {e:#}")));
            return r;
        }
        (Err(e), Ok(_)) => {
            r.divergence = Some((
                "rejects-valid".into(),
                one_line(&format!("wjit rejects, wasmtime accepts: {e}")),
            ));
            return r;
        }
    };
    r.ran = true;
    let plan = Plan::new(bytes, args);
    r.uncallable = uncallable(bytes, &plan);
    let fuel = s.fuel.unwrap_or(s.ref_fuel);
    let reference = run_wasmtime(wt_engine, &wt_module, fuel, &plan);
    let schedule = (true, vec![false; plan.calls.len()]);
    let mut trace = exec::run_wjit(&engine, &wjit_module, s, &plan, &schedule);
    normalise_wjit(&mut trace);
    if std::env::var_os("DIFFTEST_DEBUG").is_some() {
        eprintln!(
            "{s:?} eh ops {} calls {}\n  wjit {:?} {:?}\n  wasmtime {:?} {:?}",
            r.eh_ops,
            plan.calls.len(),
            trace.instantiate,
            trace.calls.iter().map(|c| &c.0).collect::<Vec<_>>(),
            reference.instantiate,
            reference.calls.iter().map(|c| &c.0).collect::<Vec<_>>(),
        );
    }
    let (c, uncaught, traps) = compare_eh(&trace, &reference);
    r.calls = c.calls;
    r.uncaught = uncaught;
    r.traps = traps;
    if let Some((class, reason)) = c.divergence {
        r.divergence = Some((class, one_line(&reason)));
        return r;
    }
    let funcs = exnref_exports(bytes);
    if funcs.is_empty() {
        return r;
    }
    r.uncallable = r.uncallable.saturating_sub(funcs.len());
    let (a, b) = exnref_pass(
        &engine,
        &wjit_module,
        wt_engine,
        &wt_module,
        s,
        &funcs,
        args,
    );
    let (c, uncaught, traps) = compare_eh(&a, &b);
    r.calls += c.calls;
    r.exnref_calls = c.calls;
    r.uncaught += uncaught;
    r.traps += traps;
    if let Some((class, reason)) = c.divergence {
        r.divergence = Some((format!("exnref-{class}"), one_line(&reason)));
    }
    r
}

/// difftest's `compare` (wjit first, wasmtime second), which takes any error for any other,
/// plus: an uncaught exception must be one on both sides. Also returns how many compared
/// calls ended in an uncaught exception and how many trapped.
pub fn compare_eh(wjit: &Trace, wasmtime: &Trace) -> (exec::Compared, usize, usize) {
    let mut c = compare(wjit, wasmtime);
    let (mut uncaught, mut traps) = (0, 0);
    if c.divergence.is_some() {
        return (c, uncaught, traps);
    }
    if let (Some(a), Some(b)) = (&wjit.instantiate, &wasmtime.instantiate) {
        if !matches!(a, Outcome::Stop(_))
            && !matches!(b, Outcome::Stop(_))
            && is_uncaught(a) != is_uncaught(b)
        {
            c.divergence = Some((
                "instantiate-exception".into(),
                format!("instantiation: wjit {a:?}, wasmtime {b:?}"),
            ));
            return (c, uncaught, traps);
        }
    }
    for &i in &c.compared {
        let (a, b) = (&wjit.calls[i].0, &wasmtime.calls[i].0);
        if is_uncaught(a) != is_uncaught(b) {
            c.divergence = Some((
                "exception".into(),
                format!("call {i}: wjit {a:?}, wasmtime {b:?}"),
            ));
            return (c, uncaught, traps);
        }
        uncaught += is_uncaught(a) as usize;
        traps += matches!(a, Outcome::Trap(_)) as usize;
    }
    (c, uncaught, traps)
}

#[derive(Default)]
struct Totals {
    modules: u64,
    ran: u64,
    eh_modules: u64,
    eh_ops: u64,
    calls: u64,
    eh_calls: u64,
    uncaught: u64,
    traps: u64,
    uncallable: u64,
    exnref_calls: u64,
    divergences: Vec<(u64, String, String)>,
    skipped: u64,
    skip_reasons: Vec<(u64, String)>,
}

fn record(out: &Path, seed: u64, s: &Settings, bytes: &[u8], class: &str, reason: &str) {
    let _ = std::fs::create_dir_all(out);
    let _ = std::fs::write(out.join(format!("{seed}-eh.wasm")), bytes);
    let _ = std::fs::write(
        out.join(format!("{seed}-eh.txt")),
        format!("{class}: {reason} [settings: {s:?}]\n"),
    );
}

/// Runs the campaign and prints its summary. Returns whether there was no divergence.
pub fn run(opts: &EhOptions) -> Result<bool> {
    let started = Instant::now();
    let wt_engine = wasmtime_engine().context("wasmtime engine with exceptions")?;
    std::fs::create_dir_all(&opts.out)
        .with_context(|| format!("creating {}", opts.out.display()))?;
    // The seed in progress, so that a crash (which ends this process) can be replayed.
    let running = opts.out.join("running-seed.txt");
    let mut t = Totals::default();
    let mut last = opts.start;
    for seed in opts.start..opts.end {
        if opts
            .secs
            .is_some_and(|secs| started.elapsed().as_secs() >= secs)
        {
            break;
        }
        last = seed + 1;
        let _ = std::fs::write(&running, format!("{seed}\n"));
        let s = settings(seed);
        let bytes = module(seed);
        let mut args = gen::arg_stream(seed, Mode::Run);
        let r = check_module(&bytes, &s, &wt_engine, &mut args);
        t.modules += 1;
        t.ran += r.ran as u64;
        if r.ran && r.eh_ops > 0 {
            t.eh_modules += 1;
            t.eh_ops += r.eh_ops as u64;
            t.eh_calls += r.calls as u64;
        }
        t.calls += r.calls as u64;
        t.uncaught += r.uncaught as u64;
        t.traps += r.traps as u64;
        t.uncallable += r.uncallable as u64;
        t.exnref_calls += r.exnref_calls as u64;
        if let Some(reason) = r.skipped {
            t.skipped += 1;
            if t.skip_reasons.len() < 5 {
                t.skip_reasons.push((seed, reason));
            }
        }
        if let Some((class, reason)) = r.divergence {
            record(&opts.out, seed, &s, &bytes, &class, &reason);
            eprintln!("DIVERGENCE seed {seed}: {class}: {reason}");
            t.divergences.push((seed, class, reason));
        }
        if t.modules % 1000 == 0 {
            eprintln!(
                "... {} modules ({:.0} s), {} divergences",
                t.modules,
                started.elapsed().as_secs_f64(),
                t.divergences.len()
            );
        }
    }
    let _ = std::fs::remove_file(&running);
    println!(
        "difftest-eh seeds {}..{last} in {:.0} s: {} modules, {} run on both engines, {} with \
         EH instructions ({} try_table/throw/throw_ref), {} calls compared ({} in EH modules; \
         {} uncaught exceptions, {} traps, the rest values; {} calls of functions with exnref \
         parameters or results), {} exported functions not called (other signatures), {} \
         divergences, {} skipped",
        opts.start,
        started.elapsed().as_secs_f64(),
        t.modules,
        t.ran,
        t.eh_modules,
        t.eh_ops,
        t.calls,
        t.eh_calls,
        t.uncaught,
        t.traps,
        t.exnref_calls,
        t.uncallable,
        t.divergences.len(),
        t.skipped
    );
    for (seed, reason) in &t.skip_reasons {
        println!("  skipped seed {seed}: {reason}");
    }
    for (seed, class, reason) in &t.divergences {
        println!("  DIVERGENCE seed {seed}: {class}: {reason}");
    }
    if !t.divergences.is_empty() {
        println!("modules written to {}", opts.out.display());
    }
    Ok(t.divergences.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generation_is_deterministic_and_has_exceptions() {
        let mut eh = 0;
        for seed in 0..40 {
            let m = module(seed);
            assert_eq!(m, module(seed));
            eh += (count_eh_ops(&m) > 0) as usize;
        }
        assert!(eh >= 10, "{eh} of 40 modules with EH instructions");
    }

    fn trace(instantiate: Option<Outcome>, calls: &[Outcome]) -> Trace {
        Trace {
            instantiate,
            state0: State::default(),
            calls: calls
                .iter()
                .map(|o| (o.clone(), State::default()))
                .collect(),
        }
    }

    /// An uncaught exception equals only an uncaught exception, also at instantiation.
    #[test]
    fn uncaught_exceptions_are_their_own_outcome() {
        let uncaught = Outcome::Error(UNCAUGHT.into());
        let other = Outcome::Error("link error".into());
        let trap = Outcome::Trap(TrapClass::Unreachable);
        let mut wjit = trace(None, &[Outcome::Error(WJIT_UNCAUGHT.into())]);
        normalise_wjit(&mut wjit);
        let (c, n, _) = compare_eh(&wjit, &trace(None, std::slice::from_ref(&uncaught)));
        assert!(c.divergence.is_none() && n == 1, "{c:?}");
        let (c, ..) = compare_eh(&wjit, &trace(None, std::slice::from_ref(&other)));
        assert_eq!(c.divergence.unwrap().0, "exception");
        let (c, ..) = compare_eh(&wjit, &trace(None, std::slice::from_ref(&trap)));
        assert_eq!(c.divergence.unwrap().0, "trap");
        let (c, ..) = compare_eh(
            &trace(Some(uncaught.clone()), &[]),
            &trace(Some(trap.clone()), &[]),
        );
        assert_eq!(c.divergence.unwrap().0, "instantiate-exception");
        let (c, ..) = compare_eh(&trace(Some(uncaught.clone()), &[]), &trace(None, &[]));
        assert_eq!(c.divergence.unwrap().0, "instantiate");
    }

    /// A caught exception, an uncaught one, a `throw_ref` of null, a caught exnref returned
    /// to the host and a null exnref argument run alike.
    #[test]
    fn handwritten_module_runs_alike() {
        let wasm = wat::parse_str(
            r#"(module
              (tag $t (param i32))
              (func (export "caught") (param i32) (result i32)
                (block $h (result i32)
                  (try_table (catch $t $h) (throw $t (local.get 0)))
                  (i32.const -1)))
              (func (export "uncaught") (param i32) (throw $t (local.get 0)))
              (func (export "null") (throw_ref (ref.null exn)))
              (func (export "caught_ref") (param i32) (result exnref)
                (block $h (result exnref)
                  (try_table (catch_all_ref $h) (throw $t (local.get 0)))
                  (ref.null exn)))
              (func (export "rethrow") (param exnref) (throw_ref (local.get 0))))"#,
        )
        .unwrap();
        let wasm = &wasm[..];
        let wt = wasmtime_engine().unwrap();
        let s = settings(0);
        let r = check_module(wasm, &s, &wt, &mut Rng::new(1));
        assert!(
            r.ran && r.divergence.is_none() && r.skipped.is_none(),
            "{r:?}"
        );
        assert_eq!(r.eh_ops, 7);
        // Three exports twice, then the two with exnref twice (exnref pass).
        assert_eq!((r.calls, r.exnref_calls), (10, 4));
        assert_eq!((r.uncaught, r.traps), (2, 4));
    }
}
