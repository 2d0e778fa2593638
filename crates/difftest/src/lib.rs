//! Differential testing of wjit against a reference interpreter (wasmi) on wasm-smith
//! modules. See the `difftest` binary and README "Differential testing".

pub mod exec;
pub mod gen;

use exec::{compare, run_wasmi, run_wjit, Plan};
use gen::Settings;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Mode {
    /// Generated modules, every export called on both engines.
    Run,
    /// Generated modules with random byte changes: accepted exactly when the reference
    /// accepts; run like `Run` when both accept.
    Mutate,
    /// One lazily compiled module, instantiated in several threads at once.
    Threads,
    /// Like `Run`, on SIMD-heavy modules: SIMD always on, no scalar float operators.
    Simd,
}

pub const MODES: [Mode; 4] = [Mode::Run, Mode::Mutate, Mode::Threads, Mode::Simd];

impl Mode {
    pub fn name(self) -> &'static str {
        match self {
            Mode::Run => "run",
            Mode::Mutate => "mutate",
            Mode::Threads => "threads",
            Mode::Simd => "simd",
        }
    }
    pub fn parse(s: &str) -> Option<Mode> {
        MODES.into_iter().find(|m| m.name() == s)
    }
}

/// What one seed in one mode did.
#[derive(Debug, Default)]
pub struct SeedResult {
    /// Calls compared between the engines.
    pub calls: usize,
    /// Of those, calls with a v128 parameter or result that returned (no trap).
    pub v128_calls: usize,
    /// Operators in the module's code and how many of them are SIMD (v128) operators, when
    /// both engines accepted it.
    pub ops: usize,
    pub simd_ops: usize,
    /// Both engines rejected the module (mutate mode).
    pub rejected: bool,
    /// (class, one-line reason)
    pub divergence: Option<(String, String)>,
}

/// Threads per module in threads mode.
pub const THREADS: usize = 3;

/// How many threads share each module in `mode` (0: calls run on the calling thread).
pub fn threads_for(mode: Mode) -> usize {
    if mode == Mode::Threads {
        THREADS
    } else {
        0
    }
}

fn one_line(s: &str) -> String {
    let s: String = s
        .chars()
        .map(|c| if c == '\n' || c == '\t' { ' ' } else { c })
        .collect();
    if s.len() > 600 {
        let mut end = 600;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        format!("{}...", &s[..end])
    } else {
        s
    }
}

/// Runs one seed in one mode, in this process.
pub fn run_seed(seed: u64, mode: Mode) -> SeedResult {
    let bytes = gen::module_for(seed, mode);
    let s = gen::settings(seed, mode);
    if mode != Mode::Mutate {
        // The generator must stay within what wjit implements.
        let mut v = wasmparser::Validator::new_with_features(gen::wjit_features());
        if let Err(e) = v.validate_all(&bytes) {
            return SeedResult {
                divergence: Some((
                    "generator".into(),
                    one_line(&format!("wasm-smith made an invalid module: {e}")),
                )),
                ..SeedResult::default()
            };
        }
    }
    check_module(&bytes, &s, threads_for(mode), gen::arg_stream(seed, mode))
}

/// Loads `bytes` in both engines and, if both accept it, runs every export on both.
pub fn check_module(bytes: &[u8], s: &Settings, threads: usize, mut args: gen::Rng) -> SeedResult {
    let mut r = SeedResult::default();
    let engine = exec::wjit_engine(s);
    let wjit_module = wjit::Module::new(&engine, bytes);
    // Both read wasm 2.0 including SIMD (not relaxed SIMD) and tail calls: `Unsupported` from
    // wjit for a module the reference accepts is a divergence like any other rejection,
    // except for tail calls beyond wjit's argument-area limit.
    let ref_engine = exec::wasmi_engine(true);
    let ref_module = wasmi::Module::new(&ref_engine, bytes);
    let (wjit_module, ref_module) = match (wjit_module, ref_module) {
        (Ok(a), Ok(b)) => (a, b),
        (Err(_), Err(_)) => {
            r.rejected = true;
            return r;
        }
        (Ok(_), Err(e)) => {
            r.divergence = Some((
                "accepts-invalid".into(),
                one_line(&format!("wjit accepts, reference rejects: {e}")),
            ));
            return r;
        }
        (Err(wjit::Error::Unsupported(m)), Ok(_)) if m.contains("tail call whose arguments") => {
            // wjit's documented limit: a tail call's arguments must fit the caller's
            // incoming area (see `Config::wasm_tail_call`).
            r.rejected = true;
            return r;
        }
        (Err(e), Ok(_)) => {
            let class = match e {
                wjit::Error::Unsupported(_) => "unsupported-valid",
                _ => "rejects-valid",
            };
            r.divergence = Some((
                class.into(),
                one_line(&format!("wjit rejects, reference accepts: {e}")),
            ));
            return r;
        }
    };
    (r.ops, r.simd_ops) = count_ops(bytes);
    let plan = Plan::new(bytes, &mut args);
    let reference = run_wasmi(&ref_engine, &ref_module, s.ref_fuel, &plan);
    let schedule = exec::wjit_schedule(s, &reference);
    let traces = if threads == 0 {
        vec![run_wjit(&engine, &wjit_module, s, &plan, &schedule)]
    } else {
        let barrier = std::sync::Barrier::new(threads);
        std::thread::scope(|scope| {
            let handles: Vec<_> = (0..threads)
                .map(|_| {
                    std::thread::Builder::new()
                        .stack_size(8 << 20)
                        .spawn_scoped(scope, || {
                            barrier.wait();
                            run_wjit(&engine, &wjit_module, s, &plan, &schedule)
                        })
                        .expect("spawn")
                })
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().expect("wjit thread panicked"))
                .collect()
        })
    };
    if std::env::var_os("DIFFTEST_DEBUG").is_some() {
        let summary = |t: &exec::Trace| {
            let inst = format!("{:?}", t.instantiate);
            let calls: Vec<String> = t
                .calls
                .iter()
                .map(|(o, _)| {
                    let s = format!("{o:?}");
                    s.chars().take(40).collect()
                })
                .collect();
            format!("inst {inst} calls {}: {calls:?}", t.calls.len())
        };
        eprintln!(
            "{s:?} exports {} calls {}\n  wjit {}\n  ref  {}",
            plan.exports.len(),
            plan.calls.len(),
            summary(&traces[0]),
            summary(&reference)
        );
    }
    for (i, t) in traces.iter().enumerate() {
        let c = compare(t, &reference);
        r.calls += c.calls;
        r.v128_calls += c
            .compared
            .iter()
            .filter(|&&i| {
                plan.uses_v128(i) && matches!(reference.calls[i].0, exec::Outcome::Values(_))
            })
            .count();
        if let Some((class, reason)) = c.divergence {
            let reason = if threads > 0 {
                format!("thread {i}: {reason}")
            } else {
                reason
            };
            r.divergence = Some((class, one_line(&reason)));
            break;
        }
    }
    r
}

/// The operators in a module's function bodies, and how many of them are SIMD operators.
pub fn count_ops(bytes: &[u8]) -> (usize, usize) {
    let (mut ops, mut simd) = (0, 0);
    for payload in wasmparser::Parser::new(0).parse_all(bytes) {
        let Ok(wasmparser::Payload::CodeSectionEntry(body)) = payload else {
            continue;
        };
        let Ok(mut reader) = body.get_operators_reader() else {
            continue;
        };
        while !reader.eof() {
            let Ok(op) = reader.read() else { break };
            ops += 1;
            simd += is_simd(&op) as usize;
        }
    }
    (ops, simd)
}

/// A SIMD operator (by name: wasmparser's v128 operators all start with a lane shape).
fn is_simd(op: &wasmparser::Operator<'_>) -> bool {
    let name = format!("{op:?}");
    ["V128", "I8x16", "I16x8", "I32x4", "I64x2", "F32x4", "F64x2"]
        .iter()
        .any(|p| name.starts_with(p))
}

#[cfg(test)]
mod tests {
    use super::*;
    use exec::{Outcome, State, Trace, V};

    /// A table's state tells apart every change of an element between null and not null
    /// (element 0 once went unseen, so a call skipped for running out of fuel could change
    /// it unnoticed and a later call diverged falsely: run mode, seed 4048534).
    #[test]
    fn table_state_sees_every_element() {
        let hash = |nulls: &[bool]| exec::hash_nulls(nulls.iter().copied());
        let all_null = [true; 10];
        for i in 0..all_null.len() {
            let mut one = all_null;
            one[i] = false;
            assert_ne!(hash(&one), hash(&all_null), "element {i}");
        }
        assert_ne!(hash(&[true]), hash(&[false]));
        assert_ne!(hash(&[false; 8]), hash(&[false; 9]));
    }

    /// Engines may differ in NaN payloads, but a call the tester skips must have left the
    /// state bit for bit as it was (a NaN turned into another NaN once went unseen and a
    /// later `i64.reinterpret_f64` diverged falsely: threads mode, seed 4107311).
    #[test]
    fn skipping_needs_the_same_bits() {
        let state = |bits: u64| State {
            globals: vec![V::F64(bits)],
            ..State::default()
        };
        let (a, b) = (state(u64::MAX), state(0x7ff8_0000_0000_0000));
        assert_eq!(a, b);
        assert!(!a.same_bits(&b));
        assert!(a.same_bits(&a.clone()));
        let s = gen::settings(0, Mode::Run);
        let s = gen::Settings { fuel: None, ..s };
        let reference = Trace {
            instantiate: None,
            state0: a.clone(),
            calls: vec![
                (Outcome::Stop(exec::Stop::OutOfFuel), a.clone()),
                (Outcome::Stop(exec::Stop::OutOfFuel), b),
                (Outcome::Values(vec![]), a),
            ],
        };
        // The first out-of-fuel call is skipped; the run ends at the second.
        assert_eq!(exec::wjit_schedule(&s, &reference), (true, vec![true]));
    }

    #[test]
    fn generation_is_deterministic() {
        for seed in [0, 1, 7, 12345, u64::MAX] {
            for mode in MODES {
                assert_eq!(gen::settings(seed, mode), gen::settings(seed, mode));
                assert_eq!(gen::module_for(seed, mode), gen::module_for(seed, mode));
            }
        }
        assert_ne!(gen::module(1, Mode::Run), gen::module(2, Mode::Run));
        assert_ne!(gen::mutated(3), gen::module(3, Mode::Mutate));
    }

    #[test]
    fn generated_modules_have_tail_calls() {
        let mut tail_calls = 0;
        for seed in 0..100 {
            let bytes = gen::module(seed, Mode::Run);
            for payload in wasmparser::Parser::new(0).parse_all(&bytes) {
                if let Ok(wasmparser::Payload::CodeSectionEntry(body)) = payload {
                    let mut ops = body.get_operators_reader().unwrap();
                    while !ops.eof() {
                        tail_calls += matches!(
                            ops.read().unwrap(),
                            wasmparser::Operator::ReturnCall { .. }
                                | wasmparser::Operator::ReturnCallIndirect { .. }
                        ) as usize;
                    }
                }
            }
        }
        assert!(tail_calls >= 20, "{tail_calls} tail calls in 100 modules");
    }

    #[test]
    fn generated_modules_are_wasm2_with_simd() {
        let mut simd_modules = 0;
        for seed in 0..40 {
            for mode in [Mode::Run, Mode::Simd] {
                let bytes = gen::module(seed, mode);
                wasmparser::Validator::new_with_features(gen::wjit_features())
                    .validate_all(&bytes)
                    .unwrap_or_else(|e| panic!("seed {seed} {mode:?}: {e}"));
                let (_, simd) = count_ops(&bytes);
                assert!(gen::simd_target() || simd == 0, "seed {seed} {mode:?}");
                simd_modules += (simd > 0) as usize;
            }
        }
        // Relaxed SIMD never: its results are implementation-defined.
        let mut relaxed = gen::wjit_features();
        relaxed.remove(wasmparser::WasmFeatures::RELAXED_SIMD);
        assert_eq!(relaxed, gen::wjit_features());
        if gen::simd_target() {
            // The simd mode's 40 and about half of the run mode's.
            assert!(simd_modules >= 50, "{simd_modules} modules with SIMD");
        }
    }

    /// The generator exercises multi-memory and memory64 (both engines implement them).
    #[test]
    fn generated_modules_use_several_and_64_bit_memories() {
        let (mut multi, mut wide) = (0, 0);
        for seed in 0..100 {
            let bytes = gen::module(seed, Mode::Run);
            let mut memories = Vec::new();
            for payload in wasmparser::Parser::new(0).parse_all(&bytes) {
                match payload.unwrap() {
                    wasmparser::Payload::MemorySection(r) => {
                        memories.extend(r.into_iter().map(|m| m.unwrap()))
                    }
                    wasmparser::Payload::ImportSection(r) => {
                        for imports in r {
                            for import in imports.unwrap() {
                                if let wasmparser::TypeRef::Memory(m) = import.unwrap().1.ty {
                                    memories.push(m);
                                }
                            }
                        }
                    }
                    _ => {}
                }
            }
            multi += (memories.len() > 1) as usize;
            wide += memories.iter().any(|m| m.memory64) as usize;
        }
        assert!(multi >= 5, "{multi} of 100 modules with several memories");
        assert!(wide >= 5, "{wide} of 100 modules with a 64-bit memory");
    }

    #[test]
    fn v128_values_are_compared() {
        // (func (export "f") (param v128 v128) (result v128) (i32x4.add (local.get 0) (local.get 1)))
        let wat = b"\0asm\x01\0\0\0\x01\x07\x01\x60\x02\x7b\x7b\x01\x7b\x03\x02\x01\x00\
            \x07\x05\x01\x01f\x00\x00\x0a\x0b\x01\x09\x00\x20\x00\x20\x01\xfd\xae\x01\x0b";
        let s = gen::settings(0, Mode::Simd);
        let mut calls = 0;
        for seed in 0..8 {
            let r = check_module(wat, &s, 0, gen::Rng::new(seed));
            assert!(!r.rejected && r.divergence.is_none(), "{r:?}");
            assert_eq!((r.ops, r.simd_ops), (4, 1));
            calls += r.v128_calls;
        }
        assert_eq!(calls, 16);
    }

    #[test]
    fn small_campaign_passes() {
        let mut calls = 0;
        for seed in 0..12 {
            for mode in MODES {
                let r = run_seed(seed, mode);
                assert!(r.divergence.is_none(), "seed {seed} {mode:?}: {r:?}");
                calls += r.calls;
            }
        }
        assert!(calls > 30, "only {calls} calls compared");
    }

    fn trace(results: &[Outcome]) -> Trace {
        Trace {
            instantiate: None,
            state0: State::default(),
            calls: results
                .iter()
                .map(|o| (o.clone(), State::default()))
                .collect(),
        }
    }

    #[test]
    fn comparison_rules() {
        let nan1 = Outcome::Values(vec![V::F32(0x7fc0_0000)]);
        let nan2 = Outcome::Values(vec![V::F32(0xffc0_0001)]);
        assert!(
            compare(&trace(std::slice::from_ref(&nan1)), &trace(&[nan2]))
                .divergence
                .is_none()
        );
        let zero = Outcome::Values(vec![V::F32(0)]);
        let neg_zero = Outcome::Values(vec![V::F32(0x8000_0000)]);
        let c = compare(&trace(&[zero]), &trace(&[neg_zero]));
        assert_eq!(c.divergence.unwrap().0, "result");
        // A stopped call is skipped; later ones are still compared.
        let fuel = Outcome::Stop(exec::Stop::OutOfFuel);
        let one = Outcome::Values(vec![V::I32(1)]);
        let two = Outcome::Values(vec![V::I32(2)]);
        let c = compare(&trace(&[fuel.clone(), one.clone()]), &trace(&[one, two]));
        assert_eq!(c.divergence.unwrap().0, "result");
        // v128: NaN lanes (as f32x4 or as f64x2) with different payloads are equal; other
        // differences are not.
        let v = |x: u128| Outcome::Values(vec![V::V128(x)]);
        let same = |a: u128, b: u128| {
            compare(&trace(&[v(a)]), &trace(&[v(b)]))
                .divergence
                .is_none()
        };
        assert!(same(0x7fc0_0000_0000_0001, 0xffc0_1234_0000_0001));
        assert!(same(
            0x7ff8_0000_0000_0000 << 64 | 5,
            0xfff8_0000_0000_0001 << 64 | 5
        ));
        assert!(!same(0x7fc0_0000_0000_0001, 0x7fc0_0000_0000_0002));
        assert!(!same(1 << 127, 0));
        assert!(!same(0x7fc0_0000, 0x8000_0000));
        let trap = Outcome::Trap(exec::TrapClass::Unreachable);
        let c = compare(&trace(&[trap]), &trace(&[nan1]));
        assert_eq!(c.divergence.unwrap().0, "trap");
    }

    /// The two findings fixed before the tester existed: a 6-byte LEB memarg offset was
    /// malformed without memory64, and a memarg with the multi-memory flag bit was malformed
    /// without multi-memory. Both sides now enable both proposals, so both bodies are valid
    /// and must run alike.
    #[test]
    fn known_findings_run_alike_on_both_sides() {
        let module = |body: &[u8]| {
            let mut m = b"\0asm\x01\0\0\0\x01\x05\x01\x60\x00\x01\x7f\x03\x02\x01\x00".to_vec();
            m.extend_from_slice(b"\x05\x03\x01\x00\x01");
            m.extend_from_slice(&[0x0a, body.len() as u8 + 2, 1, body.len() as u8]);
            m.extend_from_slice(body);
            m
        };
        let s = gen::settings(0, Mode::Mutate);
        let check = |body: &[u8]| check_module(&module(body), &s, 0, gen::Rng::new(0));
        let valid = check(&[0x00, 0x41, 0x00, 0x28, 0x02, 0x00, 0x0b]);
        assert!(!valid.rejected && valid.divergence.is_none(), "{valid:?}");
        let leb6 = [
            0x00, 0x41, 0x00, 0x28, 0x02, 0x80, 0x80, 0x80, 0x80, 0x80, 0x00, 0x0b,
        ];
        let flag6 = [0x00, 0x41, 0x00, 0x28, 0x42, 0x00, 0x00, 0x0b];
        for body in [&leb6[..], &flag6[..]] {
            let r = check(body);
            assert!(!r.rejected && r.divergence.is_none(), "{r:?}");
        }
    }
}
