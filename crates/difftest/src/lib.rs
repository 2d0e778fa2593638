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
}

pub const MODES: [Mode; 3] = [Mode::Run, Mode::Mutate, Mode::Threads];

impl Mode {
    pub fn name(self) -> &'static str {
        match self {
            Mode::Run => "run",
            Mode::Mutate => "mutate",
            Mode::Threads => "threads",
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
    /// Both engines rejected the module (mutate mode).
    pub rejected: bool,
    /// (class, one-line reason)
    pub divergence: Option<(String, String)>,
}

/// Threads per module in threads mode.
pub const THREADS: usize = 3;

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
    let threads = if mode == Mode::Threads { THREADS } else { 0 };
    check_module(&bytes, &s, threads, gen::arg_stream(seed, mode))
}

/// Loads `bytes` in both engines and, if both accept it, runs every export on both.
pub fn check_module(bytes: &[u8], s: &Settings, threads: usize, mut args: gen::Rng) -> SeedResult {
    let mut r = SeedResult::default();
    let engine = exec::wjit_engine(s);
    let wjit_module = wjit::Module::new(&engine, bytes);
    // The reference reads wasm 2.0 including SIMD. wjit implements wasm 2.0 without SIMD: it
    // may accept a module with v128 only in types (valid wasm 2.0 it can run), and it reports
    // SIMD it would have to compile as `Unsupported`.
    let ref_engine = exec::wasmi_engine(true, true);
    let ref_module = wasmi::Module::new(&ref_engine, bytes);
    let needs_simd = || wasmi::Module::new(&exec::wasmi_engine(false, false), bytes).is_err();
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
        (Err(wjit::Error::Unsupported(_)), Ok(_)) if needs_simd() => {
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

#[cfg(test)]
mod tests {
    use super::*;
    use exec::{Outcome, State, Trace, V};

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
    fn generated_modules_are_wasm2_without_simd() {
        for seed in 0..40 {
            let bytes = gen::module(seed, Mode::Run);
            wasmparser::Validator::new_with_features(gen::wjit_features())
                .validate_all(&bytes)
                .unwrap_or_else(|e| panic!("seed {seed}: {e}"));
        }
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
        let trap = Outcome::Trap(exec::TrapClass::Unreachable);
        let c = compare(&trace(&[trap]), &trace(&[nan1]));
        assert_eq!(c.divergence.unwrap().0, "trap");
    }

    /// The two findings fixed before the tester existed: a 6-byte LEB memarg offset and a
    /// memarg with the multi-memory flag bit are malformed without memory64/multi-memory.
    #[test]
    fn known_findings_are_rejections_on_both_sides() {
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
            assert!(r.rejected && r.divergence.is_none(), "{r:?}");
        }
    }
}
