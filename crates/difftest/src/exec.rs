//! Running one module on wjit and on the reference (wasmi), recording a trace of what every
//! call did: results, trap class, exported globals, memories and tables afterwards.

use crate::gen::{Rng, Settings, MAX_PAGES, MAX_TABLE_ELEMENTS};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

/// A value type as far as the tester cares.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ty {
    I32,
    I64,
    F32,
    F64,
    V128,
    FuncRef,
    ExternRef,
}

/// A value, comparable across engines (references only as null or not).
#[derive(Clone, Copy, Debug)]
pub enum V {
    I32(i32),
    I64(i64),
    F32(u32),
    F64(u64),
    V128(u128),
    Ref(bool),
}

fn f32_eq(a: u32, b: u32) -> bool {
    a == b || (f32::from_bits(a).is_nan() && f32::from_bits(b).is_nan())
}

fn f64_eq(a: u64, b: u64) -> bool {
    a == b || (f64::from_bits(a).is_nan() && f64::from_bits(b).is_nan())
}

/// v128 values are equal bit for bit, or as four f32 lanes or as two f64 lanes with any NaN
/// equal to any NaN: the type says nothing about how the lanes were last used, and a float
/// operator wasm-smith does not canonicalise after (`f32x4.demote_f64x2_zero`,
/// `f64x2.promote_low_f32x4`) may leave any NaN payload.
fn v128_eq(a: u128, b: u128) -> bool {
    let lanes32 = |x: u128| (0..4).map(move |i| (x >> (32 * i)) as u32);
    let lanes64 = |x: u128| (0..2).map(move |i| (x >> (64 * i)) as u64);
    a == b
        || lanes32(a).zip(lanes32(b)).all(|(x, y)| f32_eq(x, y))
        || lanes64(a).zip(lanes64(b)).all(|(x, y)| f64_eq(x, y))
}

impl PartialEq for V {
    /// Bit for bit, except that any NaN equals any NaN (wasm allows nondeterministic NaNs).
    fn eq(&self, other: &V) -> bool {
        match (*self, *other) {
            (V::I32(a), V::I32(b)) => a == b,
            (V::I64(a), V::I64(b)) => a == b,
            (V::F32(a), V::F32(b)) => f32_eq(a, b),
            (V::F64(a), V::F64(b)) => f64_eq(a, b),
            (V::V128(a), V::V128(b)) => v128_eq(a, b),
            (V::Ref(a), V::Ref(b)) => a == b,
            _ => false,
        }
    }
}

/// What an exported name is.
#[derive(Clone, Debug)]
pub enum ExportKind {
    Func(Vec<Ty>, Vec<Ty>),
    Global,
    Memory,
    Table,
}

/// The module's exports (read with wasmparser, independently of both engines) and the calls
/// to make.
#[derive(Clone, Debug, Default)]
pub struct Plan {
    pub exports: Vec<(String, ExportKind)>,
    /// (export name, arguments), in order.
    pub calls: Vec<(String, Vec<V>)>,
}

fn ty(t: wasmparser::ValType) -> Option<Ty> {
    Some(match t {
        wasmparser::ValType::I32 => Ty::I32,
        wasmparser::ValType::I64 => Ty::I64,
        wasmparser::ValType::F32 => Ty::F32,
        wasmparser::ValType::F64 => Ty::F64,
        wasmparser::ValType::V128 => Ty::V128,
        wasmparser::ValType::Ref(r) if r.is_func_ref() => Ty::FuncRef,
        wasmparser::ValType::Ref(r) if r.is_extern_ref() => Ty::ExternRef,
        _ => return None,
    })
}

fn arg(r: &mut Rng, t: Ty) -> V {
    const I32S: [i32; 8] = [0, 1, -1, i32::MIN, i32::MAX, 2, 31, 32];
    const I64S: [i64; 8] = [0, 1, -1, i64::MIN, i64::MAX, 63, 64, 0x1_0000_0000];
    const F32S: [u32; 8] = [
        0,
        0x8000_0000,
        0x3f80_0000,
        0xbf80_0000,
        0x7f80_0000,
        0xff80_0000,
        0x7fc0_0000,
        0x4f00_0000,
    ];
    const F64S: [u64; 8] = [
        0,
        0x8000_0000_0000_0000,
        0x3ff0_0000_0000_0000,
        0xbff0_0000_0000_0000,
        0x7ff0_0000_0000_0000,
        0xfff0_0000_0000_0000,
        0x7ff8_0000_0000_0000,
        0x43e0_0000_0000_0000,
    ];
    let pick = r.below(8) as usize;
    let special = r.chance(1, 2);
    let small = r.chance(1, 2);
    let x = r.next_u64();
    match t {
        Ty::I32 if special => V::I32(I32S[pick]),
        Ty::I32 if small => V::I32((x % 1024) as i32 - 16),
        Ty::I32 => V::I32(x as i32),
        Ty::I64 if special => V::I64(I64S[pick]),
        Ty::I64 if small => V::I64((x % 1024) as i64 - 16),
        Ty::I64 => V::I64(x as i64),
        Ty::F32 if special => V::F32(F32S[pick]),
        Ty::F32 if small => V::F32(((x % 2048) as f32 - 1000.0).to_bits()),
        Ty::F32 => V::F32(x as u32),
        Ty::F64 if special => V::F64(F64S[pick]),
        Ty::F64 if small => V::F64(((x % 2048) as f64 / 3.0 - 300.0).to_bits()),
        Ty::F64 => V::F64(x),
        Ty::V128 => V::V128(v128_arg(r, pick, special, small, x)),
        Ty::FuncRef | Ty::ExternRef => V::Ref(true),
    }
}

/// A v128 argument: edge values of several lane shapes, small lanes, or random bits.
fn v128_arg(r: &mut Rng, pick: usize, special: bool, small: bool, x: u64) -> u128 {
    let y = r.next_u64();
    let splat32 = |v: u32| (v as u128) * 0x0000_0001_0000_0001_0000_0001_0000_0001;
    let splat64 = |v: u64| (v as u128) * 0x0000_0000_0000_0001_0000_0000_0000_0001;
    if special {
        return match pick {
            0 => 0,
            1 => u128::MAX,
            2 => 0x0f0e_0d0c_0b0a_0908_0706_0504_0302_0100,
            // Lane minima and maxima of the integer shapes.
            3 => splat32([0x7f80_7f80, 0x7fff_8000, 0x8000_0000, 0x7fff_ffff][(y % 4) as usize]),
            // f32x4: 1.0 with random signs.
            4 => splat32(0x3f80_0000) ^ (splat32(0x8000_0000) & (x as u128 | (y as u128) << 64)),
            // f32x4: NaN, -inf, -0.0, 2^31 in some rotation.
            5 => (0x7fc0_0000u128 | 0xff80_0000 << 32 | 0x8000_0000 << 64 | 0x4f00_0000 << 96)
                .rotate_left(32 * (y % 4) as u32),
            // f64x2: 1.0 and maybe NaN.
            6 => splat64(0x3ff0_0000_0000_0000) | ((y & 1) as u128 * 0x7ff8_0000_0000_0000) << 64,
            // f64x2: -0.0 and inf.
            _ => 0x8000_0000_0000_0000 | 0x7ff0_0000_0000_0000 << 64,
        };
    }
    if small {
        // Lanes of one shape, each a small integer (or float) around zero.
        let bits = x as u128 | (y as u128) << 64;
        let lane = |i: u32, width: u32| {
            let v = ((bits >> (6 * i % 120)) & 63) as i64 - 16;
            (v as u128) & ((1u128 << width) - 1)
        };
        return match y % 4 {
            0 => (0..16).fold(0, |a, i| a | lane(i, 8) << (8 * i)),
            1 => (0..8).fold(0, |a, i| a | lane(i, 16) << (16 * i)),
            2 => (0..4).fold(0, |a, i| a | lane(i, 32) << (32 * i)),
            _ => (0..4).fold(0, |a, i| {
                let f = (((bits >> (11 * i)) & 2047) as f32 - 1000.0).to_bits();
                a | (f as u128) << (32 * i)
            }),
        };
    }
    x as u128 | (y as u128) << 64
}

impl Plan {
    /// Reads the exports of a module that both engines accepted. Every exported function is
    /// called twice (first calls compile lazily, second calls see the state the first left).
    pub fn new(bytes: &[u8], args: &mut Rng) -> Plan {
        let mut plan = Plan::default();
        let mut types: Vec<Option<(Vec<Ty>, Vec<Ty>)>> = Vec::new();
        let mut funcs: Vec<u32> = Vec::new();
        for payload in wasmparser::Parser::new(0).parse_all(bytes) {
            let Ok(payload) = payload else { break };
            match payload {
                wasmparser::Payload::TypeSection(s) => {
                    for rec in s.into_iter().flatten() {
                        for sub in rec.into_types() {
                            let f = match &sub.composite_type.inner {
                                wasmparser::CompositeInnerType::Func(f) => {
                                    let p: Option<Vec<Ty>> =
                                        f.params().iter().map(|t| ty(*t)).collect();
                                    let r: Option<Vec<Ty>> =
                                        f.results().iter().map(|t| ty(*t)).collect();
                                    p.zip(r)
                                }
                                _ => None,
                            };
                            types.push(f);
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
                        let kind = match e.kind {
                            wasmparser::ExternalKind::Func => {
                                let t = funcs.get(e.index as usize).copied();
                                match t.and_then(|t| types.get(t as usize).cloned().flatten()) {
                                    Some((p, r)) => ExportKind::Func(p, r),
                                    None => continue,
                                }
                            }
                            wasmparser::ExternalKind::Global => ExportKind::Global,
                            wasmparser::ExternalKind::Memory => ExportKind::Memory,
                            wasmparser::ExternalKind::Table => ExportKind::Table,
                            _ => continue,
                        };
                        plan.exports.push((e.name.to_string(), kind));
                    }
                }
                _ => {}
            }
        }
        for _round in 0..2 {
            for (name, kind) in &plan.exports {
                if let ExportKind::Func(params, _) = kind {
                    let a = params.iter().map(|t| arg(args, *t)).collect();
                    plan.calls.push((name.clone(), a));
                }
            }
        }
        plan
    }

    /// Whether call `i` passes or returns a v128 value.
    pub fn uses_v128(&self, i: usize) -> bool {
        let Some((name, _)) = self.calls.get(i) else {
            return false;
        };
        self.exports.iter().any(|(n, k)| {
            n == name
                && matches!(k, ExportKind::Func(p, r) if p.iter().chain(r).any(|t| *t == Ty::V128))
        })
    }
}

/// Trap kinds common to both engines.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TrapClass {
    Unreachable,
    MemoryOutOfBounds,
    /// Table access or call_indirect index out of bounds (wjit: `UndefinedElement` for
    /// call_indirect; wasmi: `TableOutOfBounds`).
    TableOutOfBounds,
    IndirectCallToNull,
    BadSignature,
    IntegerOverflow,
    IntegerDivisionByZero,
    BadConversionToInteger,
    Other(String),
}

/// Why a run stopped being comparable.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stop {
    OutOfFuel,
    StackOverflow,
    Interrupt,
    /// Not run: the reference ran out of fuel here without changing any state, and wjit runs
    /// without fuel (so would only stop at its epoch guard).
    Skipped,
}

#[derive(Clone, Debug)]
pub enum Outcome {
    Values(Vec<V>),
    Trap(TrapClass),
    /// A failure that is no trap (e.g. a link error), with its message.
    Error(String),
    Stop(Stop),
}

/// Exported globals, memories (size in bytes and a hash) and tables (size and a hash of
/// which elements are null), in export order.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct State {
    pub globals: Vec<V>,
    pub memories: Vec<(u64, u64)>,
    pub tables: Vec<(u64, u64)>,
}

impl State {
    /// Equal bit for bit, NaN payloads included: whether a call left the state exactly as
    /// it was (`==` lets any NaN equal any other, for comparing the two engines).
    pub fn same_bits(&self, other: &State) -> bool {
        let same = |a: &V, b: &V| match (*a, *b) {
            (V::F32(x), V::F32(y)) => x == y,
            (V::F64(x), V::F64(y)) => x == y,
            (V::V128(x), V::V128(y)) => x == y,
            _ => a == b,
        };
        self.globals.len() == other.globals.len()
            && self
                .globals
                .iter()
                .zip(&other.globals)
                .all(|(a, b)| same(a, b))
            && self.memories == other.memories
            && self.tables == other.tables
    }
}

#[derive(Clone, Debug)]
pub struct Trace {
    /// Instantiation: `None` if it succeeded, else its outcome.
    pub instantiate: Option<Outcome>,
    pub state0: State,
    pub calls: Vec<(Outcome, State)>,
}

pub fn hash_bytes(data: &[u8]) -> u64 {
    let mut h = 0xcbf2_9ce4_8422_2325u64 ^ data.len() as u64;
    let mut chunks = data.chunks_exact(8);
    for c in &mut chunks {
        let w = u64::from_le_bytes(c.try_into().unwrap());
        h = (h.rotate_left(23) ^ w).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    }
    for &b in chunks.remainder() {
        h = (h.rotate_left(23) ^ b as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    }
    h
}

/// A hash of which elements of a table are null: every element's flag counts, the first
/// included (an earlier hash mixed in only the indices of null elements, starting from 0,
/// so a change of element 0 alone went unseen).
pub fn hash_nulls(nulls: impl Iterator<Item = bool>) -> u64 {
    let mut bits = Vec::new();
    for (i, n) in nulls.enumerate() {
        if i % 8 == 0 {
            bits.push(0u8);
        }
        if n {
            *bits.last_mut().expect("pushed above") |= 1 << (i % 8);
        }
    }
    hash_bytes(&bits)
}

// ---------------------------------------------------------------------------------------
// wjit

/// Engines whose epoch a background thread advances every millisecond.
static TICKED: Mutex<Vec<(u64, wjit::Engine)>> = Mutex::new(Vec::new());
static NEXT_TICKED: AtomicU64 = AtomicU64::new(0);

struct Ticked(u64);

impl Ticked {
    fn new(engine: &wjit::Engine) -> Ticked {
        static TICKER: OnceLock<()> = OnceLock::new();
        TICKER.get_or_init(|| {
            std::thread::spawn(|| loop {
                std::thread::sleep(Duration::from_millis(1));
                for (_, e) in TICKED.lock().unwrap().iter() {
                    e.increment_epoch();
                }
            });
        });
        let id = NEXT_TICKED.fetch_add(1, Ordering::Relaxed);
        TICKED.lock().unwrap().push((id, engine.clone()));
        Ticked(id)
    }
}

impl Drop for Ticked {
    fn drop(&mut self) {
        TICKED.lock().unwrap().retain(|(id, _)| *id != self.0);
    }
}

pub fn wjit_engine(s: &Settings) -> wjit::Engine {
    let mut c = wjit::Config::new();
    c.lazy_compilation(s.lazy)
        .consume_fuel(s.fuel.is_some())
        .epoch_interruption(s.epoch)
        .software_float_rounding(s.software_float_rounding)
        // Only one thread compiles: the campaign runs several workers.
        .parallel_compilation(false);
    wjit::Engine::new(&c).expect("wjit engine")
}

/// An epoch deadline that ends runaway code when fuel is off (milliseconds per call).
/// Only a guard: calls the reference could not finish are not run without fuel, so a call
/// that reaches it is a hang of wjit. Generous, because a call includes lazy compilation
/// and, in the threads mode under qemu-user on a loaded machine, one thread may wait
/// seconds for a core (2 s was seen to be too little there).
const EPOCH_GUARD_TICKS: u64 = 20_000;

/// The outcome a wjit error stands for: a stop (fuel, stack, interrupt), a trap class, or
/// any other error by its message.
pub fn wjit_trap(e: &wjit::Error) -> Outcome {
    use wjit::TrapCode as T;
    match e.trap_code() {
        Some(code) => match code {
            T::OutOfFuel => Outcome::Stop(Stop::OutOfFuel),
            T::StackOverflow => Outcome::Stop(Stop::StackOverflow),
            T::Interrupt => Outcome::Stop(Stop::Interrupt),
            T::Unreachable => Outcome::Trap(TrapClass::Unreachable),
            T::MemoryOutOfBounds => Outcome::Trap(TrapClass::MemoryOutOfBounds),
            T::TableOutOfBounds | T::UndefinedElement => Outcome::Trap(TrapClass::TableOutOfBounds),
            T::IndirectCallToNull => Outcome::Trap(TrapClass::IndirectCallToNull),
            T::BadSignature => Outcome::Trap(TrapClass::BadSignature),
            T::IntegerOverflow => Outcome::Trap(TrapClass::IntegerOverflow),
            T::IntegerDivisionByZero => Outcome::Trap(TrapClass::IntegerDivisionByZero),
            T::BadConversionToInteger => Outcome::Trap(TrapClass::BadConversionToInteger),
            other => Outcome::Trap(TrapClass::Other(format!("{other:?}"))),
        },
        None => Outcome::Error(e.to_string()),
    }
}

/// A wjit value as the comparison sees it (references by null-ness).
pub fn wjit_val(v: &wjit::Val) -> V {
    match v {
        wjit::Val::I32(x) => V::I32(*x),
        wjit::Val::I64(x) => V::I64(*x),
        wjit::Val::F32(x) => V::F32(*x),
        wjit::Val::F64(x) => V::F64(*x),
        wjit::Val::FuncRef(f) => V::Ref(f.is_none()),
        wjit::Val::ExternRef(r) => V::Ref(r.is_none()),
        wjit::Val::ExnRef(r) => V::Ref(r.is_none()),
        wjit::Val::V128(x) => V::V128(u128::from(*x)),
    }
}

fn to_wjit(v: &V, t: Ty) -> wjit::Val {
    match (v, t) {
        (V::I32(x), _) => wjit::Val::I32(*x),
        (V::I64(x), _) => wjit::Val::I64(*x),
        (V::F32(x), _) => wjit::Val::F32(*x),
        (V::F64(x), _) => wjit::Val::F64(*x),
        (V::V128(x), _) => wjit::Val::V128(wjit::V128::from(*x)),
        (V::Ref(_), Ty::FuncRef) => wjit::Val::FuncRef(None),
        (V::Ref(_), _) => wjit::Val::ExternRef(None),
    }
}

fn zero_wjit(t: Ty) -> wjit::Val {
    match t {
        Ty::I32 => wjit::Val::I32(0),
        Ty::I64 => wjit::Val::I64(0),
        Ty::F32 => wjit::Val::F32(0),
        Ty::F64 => wjit::Val::F64(0),
        Ty::V128 => wjit::Val::V128(wjit::V128::from(0)),
        Ty::FuncRef => wjit::Val::FuncRef(None),
        Ty::ExternRef => wjit::Val::ExternRef(None),
    }
}

fn wjit_state(store: &wjit::Store<wjit::StoreLimits>, inst: &wjit::Instance, plan: &Plan) -> State {
    let mut st = State::default();
    for (name, kind) in &plan.exports {
        match kind {
            ExportKind::Global => {
                if let Some(g) = inst.get_global(store, name) {
                    st.globals.push(wjit_val(&g.get(store)));
                }
            }
            ExportKind::Memory => {
                if let Some(m) = inst.get_memory(store, name) {
                    let d = m.data(store);
                    st.memories.push((d.len() as u64, hash_bytes(d)));
                }
            }
            ExportKind::Table => {
                if let Some(t) = inst.get_table(store, name) {
                    let n = t.size(store);
                    let nulls = (0..n).map(|i| match t.get(store, i) {
                        Some(v) => matches!(wjit_val(&v), V::Ref(true)),
                        None => true,
                    });
                    st.tables.push((n, hash_nulls(nulls)));
                }
            }
            ExportKind::Func(..) => {}
        }
    }
    st
}

fn limits_wjit() -> wjit::StoreLimits {
    wjit::StoreLimitsBuilder::new()
        .memory_size((MAX_PAGES * 65536) as usize)
        .table_elements(MAX_TABLE_ELEMENTS as usize)
        .build()
}

fn wjit_prepare(store: &mut wjit::Store<wjit::StoreLimits>, s: &Settings) {
    if let Some(f) = s.fuel {
        store.set_fuel(f).expect("fuel");
    }
    if s.epoch {
        store.set_epoch_deadline(if s.fuel.is_some() {
            1 << 40
        } else {
            EPOCH_GUARD_TICKS
        });
    }
}

/// Which calls wjit runs, given the reference's trace: with fuel on, all of them; with fuel
/// off, none of those on which the reference ran out of fuel (they may never end), as long as
/// they changed no state in the reference; the run ends at the first that did. "State" is
/// what [`State`] sees: a skipped call that changes only what is not exported, or turns one
/// non-null reference into another, goes unseen and can make a later call differ (a false
/// divergence, to be recognised by the reference's `OutOfFuel` before it).
pub fn wjit_schedule(s: &Settings, reference: &Trace) -> (bool, Vec<bool>) {
    let ran_out = |o: &Outcome| matches!(o, Outcome::Stop(Stop::OutOfFuel));
    if s.fuel.is_some() {
        return (true, vec![false; reference.calls.len()]);
    }
    if reference.instantiate.as_ref().is_some_and(ran_out) {
        return (false, Vec::new());
    }
    let mut skip = Vec::new();
    for (i, (o, after)) in reference.calls.iter().enumerate() {
        if ran_out(o) {
            let before = if i == 0 {
                &reference.state0
            } else {
                &reference.calls[i - 1].1
            };
            // Bit for bit: a call that only turned one NaN into another still changed
            // what a later `reinterpret` reads (threads mode, seed 4107311).
            if !after.same_bits(before) {
                break;
            }
            skip.push(true);
        } else {
            skip.push(false);
        }
    }
    (true, skip)
}

/// Instantiates and runs the plan on wjit: the calls `skip` has an entry for, except those it
/// says to skip.
pub fn run_wjit(
    engine: &wjit::Engine,
    module: &wjit::Module,
    s: &Settings,
    plan: &Plan,
    (instantiate, skip): &(bool, Vec<bool>),
) -> Trace {
    let _ticked = s.epoch.then(|| Ticked::new(engine));
    let mut store = wjit::Store::new(engine, limits_wjit());
    store.limiter(|l| l);
    wjit_prepare(&mut store, s);
    let mut trace = Trace {
        instantiate: None,
        state0: State::default(),
        calls: Vec::new(),
    };
    if !instantiate {
        trace.instantiate = Some(Outcome::Stop(Stop::Skipped));
        return trace;
    }
    let inst = match wjit::Instance::new(&mut store, module, &[]) {
        Ok(i) => i,
        Err(e) => {
            trace.instantiate = Some(wjit_trap(&e));
            return trace;
        }
    };
    trace.state0 = wjit_state(&store, &inst, plan);
    for ((name, args), &skip) in plan.calls.iter().zip(skip) {
        if skip {
            let st = trace.calls.last().map_or(&trace.state0, |c| &c.1).clone();
            trace.calls.push((Outcome::Stop(Stop::Skipped), st));
            continue;
        }
        let Some(func) = inst.get_func(&store, name) else {
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
        let params: Vec<wjit::Val> = args
            .iter()
            .zip(&ptys)
            .map(|(v, t)| to_wjit(v, *t))
            .collect();
        let mut results: Vec<wjit::Val> = rtys.iter().map(|t| zero_wjit(*t)).collect();
        wjit_prepare(&mut store, s);
        let outcome = match func.call(&mut store, &params, &mut results) {
            Ok(()) => Outcome::Values(results.iter().map(wjit_val).collect()),
            Err(e) => wjit_trap(&e),
        };
        let st = wjit_state(&store, &inst, plan);
        trace.calls.push((outcome, st));
    }
    trace
}

// ---------------------------------------------------------------------------------------
// wasmi (the reference)

/// The reference: wasm 2.0 (with SIMD), multi-memory, extended constant expressions,
/// memory64 and tail calls; no relaxed SIMD.
pub fn wasmi_engine(fuel: bool) -> wasmi::Engine {
    let mut c = wasmi::Config::default();
    c.wasm_mutable_global(true)
        .wasm_sign_extension(true)
        .wasm_saturating_float_to_int(true)
        .wasm_multi_value(true)
        .wasm_bulk_memory(true)
        .wasm_reference_types(true)
        .floats(true)
        .wasm_multi_memory(true)
        .wasm_tail_call(true)
        .wasm_extended_const(true)
        .wasm_custom_page_sizes(false)
        .wasm_memory64(true)
        .wasm_wide_arithmetic(false)
        .wasm_simd(true)
        .wasm_relaxed_simd(false)
        .consume_fuel(fuel)
        .compilation_mode(wasmi::CompilationMode::Eager);
    wasmi::Engine::new(&c)
}

fn wasmi_err(e: &wasmi::Error) -> Outcome {
    use wasmi::TrapCode as T;
    match e.as_trap_code() {
        Some(code) => match code {
            T::OutOfFuel => Outcome::Stop(Stop::OutOfFuel),
            T::StackOverflow => Outcome::Stop(Stop::StackOverflow),
            T::UnreachableCodeReached => Outcome::Trap(TrapClass::Unreachable),
            T::MemoryOutOfBounds => Outcome::Trap(TrapClass::MemoryOutOfBounds),
            T::TableOutOfBounds => Outcome::Trap(TrapClass::TableOutOfBounds),
            T::IndirectCallToNull => Outcome::Trap(TrapClass::IndirectCallToNull),
            T::BadSignature => Outcome::Trap(TrapClass::BadSignature),
            T::IntegerOverflow => Outcome::Trap(TrapClass::IntegerOverflow),
            T::IntegerDivisionByZero => Outcome::Trap(TrapClass::IntegerDivisionByZero),
            T::BadConversionToInteger => Outcome::Trap(TrapClass::BadConversionToInteger),
            other => Outcome::Trap(TrapClass::Other(format!("{other:?}"))),
        },
        None => {
            use wasmi::errors::{ErrorKind as K, FuelError, MemoryError as M, TableError as Tb};
            // Bulk table and memory operations fail with these rather than trap codes.
            match e.kind() {
                K::Fuel(FuelError::OutOfFuel { .. })
                | K::Table(Tb::OutOfFuel { .. })
                | K::Memory(M::OutOfFuel { .. }) => Outcome::Stop(Stop::OutOfFuel),
                K::Table(
                    Tb::InitOutOfBounds
                    | Tb::FillOutOfBounds
                    | Tb::SetOutOfBounds
                    | Tb::CopyOutOfBounds,
                ) => Outcome::Trap(TrapClass::TableOutOfBounds),
                K::Memory(M::OutOfBoundsAccess) => Outcome::Trap(TrapClass::MemoryOutOfBounds),
                _ => Outcome::Error(e.to_string()),
            }
        }
    }
}

fn wasmi_val(v: &wasmi::Val) -> V {
    match v {
        wasmi::Val::I32(x) => V::I32(*x),
        wasmi::Val::I64(x) => V::I64(*x),
        wasmi::Val::F32(x) => V::F32(x.to_bits()),
        wasmi::Val::F64(x) => V::F64(x.to_bits()),
        wasmi::Val::FuncRef(f) => V::Ref(f.is_null()),
        wasmi::Val::ExternRef(r) => V::Ref(r.is_null()),
        wasmi::Val::V128(x) => V::V128(x.as_u128()),
    }
}

fn to_wasmi(v: &V, t: Ty) -> wasmi::Val {
    match (v, t) {
        (V::I32(x), _) => wasmi::Val::I32(*x),
        (V::I64(x), _) => wasmi::Val::I64(*x),
        (V::F32(x), _) => wasmi::Val::F32(wasmi::F32::from_bits(*x)),
        (V::F64(x), _) => wasmi::Val::F64(wasmi::F64::from_bits(*x)),
        (V::V128(x), _) => wasmi::Val::V128(wasmi::V128::from(*x)),
        (V::Ref(_), Ty::FuncRef) => wasmi::Val::default(wasmi::ValType::FuncRef),
        (V::Ref(_), _) => wasmi::Val::default(wasmi::ValType::ExternRef),
    }
}

fn wasmi_ty(t: Ty) -> wasmi::ValType {
    match t {
        Ty::I32 => wasmi::ValType::I32,
        Ty::I64 => wasmi::ValType::I64,
        Ty::F32 => wasmi::ValType::F32,
        Ty::F64 => wasmi::ValType::F64,
        Ty::V128 => wasmi::ValType::V128,
        Ty::FuncRef => wasmi::ValType::FuncRef,
        Ty::ExternRef => wasmi::ValType::ExternRef,
    }
}

fn wasmi_state(
    store: &wasmi::Store<wasmi::StoreLimits>,
    inst: &wasmi::Instance,
    plan: &Plan,
) -> State {
    let mut st = State::default();
    for (name, kind) in &plan.exports {
        match kind {
            ExportKind::Global => {
                if let Some(g) = inst.get_global(store, name) {
                    st.globals.push(wasmi_val(&g.get(store)));
                }
            }
            ExportKind::Memory => {
                if let Some(m) = inst.get_memory(store, name) {
                    let d = m.data(store);
                    st.memories.push((d.len() as u64, hash_bytes(d)));
                }
            }
            ExportKind::Table => {
                if let Some(t) = inst.get_table(store, name) {
                    let n = t.size(store);
                    let nulls = (0..n).map(|i| match t.get(store, i) {
                        Some(v) => matches!(wasmi_val(&v), V::Ref(true)),
                        None => true,
                    });
                    st.tables.push((n, hash_nulls(nulls)));
                }
            }
            ExportKind::Func(..) => {}
        }
    }
    st
}

/// Instantiates and runs the plan on the reference.
pub fn run_wasmi(engine: &wasmi::Engine, module: &wasmi::Module, fuel: u64, plan: &Plan) -> Trace {
    let limits = wasmi::StoreLimitsBuilder::new()
        .memory_size((MAX_PAGES * 65536) as usize)
        .table_elements(MAX_TABLE_ELEMENTS as usize)
        .build();
    let mut store = wasmi::Store::new(engine, limits);
    store.limiter(|l| l);
    store.set_fuel(fuel).expect("fuel");
    let mut trace = Trace {
        instantiate: None,
        state0: State::default(),
        calls: Vec::new(),
    };
    let linker = wasmi::Linker::<wasmi::StoreLimits>::new(engine);
    let inst = match linker.instantiate_and_start(&mut store, module) {
        Ok(i) => i,
        Err(e) => {
            trace.instantiate = Some(wasmi_err(&e));
            return trace;
        }
    };
    trace.state0 = wasmi_state(&store, &inst, plan);
    for (name, args) in &plan.calls {
        let Some(func) = inst.get_func(&store, name) else {
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
        let params: Vec<wasmi::Val> = args
            .iter()
            .zip(&ptys)
            .map(|(v, t)| to_wasmi(v, *t))
            .collect();
        let mut results: Vec<wasmi::Val> = rtys
            .iter()
            .map(|t| wasmi::Val::default(wasmi_ty(*t)))
            .collect();
        store.set_fuel(fuel).expect("fuel");
        let outcome = match func.call(&mut store, &params, &mut results) {
            Ok(()) => Outcome::Values(results.iter().map(wasmi_val).collect()),
            Err(e) => wasmi_err(&e),
        };
        let st = wasmi_state(&store, &inst, plan);
        trace.calls.push((outcome, st));
    }
    trace
}

// ---------------------------------------------------------------------------------------
// comparison

/// Result of comparing two traces.
#[derive(Debug, Default)]
pub struct Compared {
    /// Calls whose outcomes and states were compared.
    pub calls: usize,
    /// Their indices in the plan.
    pub compared: Vec<usize>,
    /// The first difference: (class, reason).
    pub divergence: Option<(String, String)>,
}

fn outcome_eq(a: &Outcome, b: &Outcome) -> bool {
    match (a, b) {
        (Outcome::Values(x), Outcome::Values(y)) => x == y,
        (Outcome::Trap(x), Outcome::Trap(y)) => x == y,
        (Outcome::Error(_), Outcome::Error(_)) => true,
        _ => false,
    }
}

/// Compares the wjit trace with the reference's. A call that stopped on either side (out of
/// fuel, stack overflow, interrupt: engines differ in where) is not compared; the states after
/// it still are, and if they differ the comparison ends there (no divergence: the stop may
/// have come at different points of a computation with effects).
pub fn compare(wjit: &Trace, reference: &Trace) -> Compared {
    let mut c = Compared::default();
    match (&wjit.instantiate, &reference.instantiate) {
        (None, None) => {}
        (Some(Outcome::Stop(_)), _) | (_, Some(Outcome::Stop(_))) => return c,
        (Some(a), Some(b)) => {
            // Both failed. Compare trap kinds where both trapped (a start function, or
            // data/element segments out of bounds on either side).
            if let (Outcome::Trap(x), Outcome::Trap(y)) = (a, b) {
                if x != y {
                    c.divergence = Some((
                        "instantiate-trap".into(),
                        format!("instantiation trapped: wjit {x:?}, reference {y:?}"),
                    ));
                }
            }
            return c;
        }
        (a, b) => {
            c.divergence = Some((
                "instantiate".into(),
                format!("instantiation: wjit {a:?}, reference {b:?}"),
            ));
            return c;
        }
    }
    if wjit.state0 != reference.state0 {
        c.divergence = Some((
            "state".into(),
            format!(
                "after instantiation: wjit {:?}, reference {:?}",
                wjit.state0, reference.state0
            ),
        ));
        return c;
    }
    for (i, ((a, sa), (b, sb))) in wjit.calls.iter().zip(&reference.calls).enumerate() {
        if matches!(a, Outcome::Stop(Stop::Interrupt)) && !matches!(b, Outcome::Stop(_)) {
            // The epoch guard (seconds) stopped a call the reference finished within its
            // fuel: wjit hangs.
            c.divergence = Some((
                "hang-interrupt".into(),
                format!("call {i}: wjit hit its epoch guard, reference {b:?}"),
            ));
            return c;
        }
        if matches!(a, Outcome::Stop(_)) || matches!(b, Outcome::Stop(_)) {
            if sa != sb {
                return c;
            }
            continue;
        }
        if !outcome_eq(a, b) {
            let class = match (a, b) {
                (Outcome::Values(_), Outcome::Values(_)) => "result",
                (Outcome::Trap(_), Outcome::Trap(_)) => "trap-kind",
                (Outcome::Trap(_), _) | (_, Outcome::Trap(_)) => "trap",
                _ => "error",
            };
            c.divergence = Some((
                class.into(),
                format!("call {i}: wjit {a:?}, reference {b:?}"),
            ));
            return c;
        }
        if sa != sb {
            c.divergence = Some((
                "state".into(),
                format!("after call {i}: wjit {sa:?}, reference {sb:?}"),
            ));
            return c;
        }
        c.calls += 1;
        c.compared.push(i);
    }
    c
}
