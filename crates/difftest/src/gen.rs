//! Deterministic generation: a seeded PRNG, per-seed engine settings, wasm-smith presets and
//! byte mutations. Everything here depends only on the seed and the mode.

use crate::Mode;
use arbitrary::Unstructured;
use std::sync::atomic::{AtomicU8, Ordering};

/// splitmix64: small, fast and good enough to drive `arbitrary`.
#[derive(Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    /// Uniform in `0..n` (n > 0).
    pub fn below(&mut self, n: u64) -> u64 {
        ((self.next_u64() as u128 * n as u128) >> 64) as u64
    }
    /// True with probability `num / den`.
    pub fn chance(&mut self, num: u64, den: u64) -> bool {
        self.below(den) < num
    }
    pub fn fill(&mut self, buf: &mut [u8]) {
        for chunk in buf.chunks_mut(8) {
            let v = self.next_u64().to_le_bytes();
            chunk.copy_from_slice(&v[..chunk.len()]);
        }
    }
}

/// Independent streams for the different decisions made from one seed.
fn stream(seed: u64, mode: Mode, what: u64) -> Rng {
    let mut r = Rng::new(seed ^ (mode as u64 + 1).wrapping_mul(0x5851_f42d_4c95_7f2d));
    r.0 ^= what.wrapping_mul(0x1405_7b7e_f767_814f);
    r.next_u64();
    r
}

/// How wjit is configured for one seed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Settings {
    pub lazy: bool,
    /// wjit fuel per call; `None`: fuel metering off, an epoch deadline ends runaway calls.
    pub fuel: Option<u64>,
    /// Epoch checks compiled in (always on when fuel is off).
    pub epoch: bool,
    pub software_float_rounding: bool,
    /// The reference's fuel per call.
    pub ref_fuel: u64,
    pub preset: Preset,
    /// SIMD (v128 values and operators) in the generated module. Never relaxed SIMD: its
    /// results are implementation-defined, so wasmi's need not match wjit's.
    pub simd: bool,
    /// Scalar float operators left out, so that SIMD makes up more of the module (simd mode).
    pub simd_heavy: bool,
    /// wasm-smith avoids trapping code (guards loads, stores and divisions, no `unreachable`),
    /// so more calls return values to compare (half of the simd mode's seeds).
    pub no_traps: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Preset {
    Default,
    DeepNesting,
    ManyLocals,
    LongBlocks,
    MultiValue,
    Memory,
    Indirect,
    Tiny,
}

const PRESETS: [Preset; 8] = [
    Preset::Default,
    Preset::DeepNesting,
    Preset::ManyLocals,
    Preset::LongBlocks,
    Preset::MultiValue,
    Preset::Memory,
    Preset::Indirect,
    Preset::Tiny,
];

pub fn settings(seed: u64, mode: Mode) -> Settings {
    let mut r = stream(seed, mode, 1);
    let lazy = match mode {
        Mode::Threads => true,
        _ => r.chance(1, 2),
    };
    let fuel_on = r.chance(3, 4);
    let budget = if r.chance(1, 4) { 2_000 } else { 100_000 };
    let fuel = fuel_on.then_some(budget);
    let epoch = !fuel_on || r.chance(1, 2);
    let software_float_rounding = r.chance(1, 4);
    let preset = PRESETS[r.below(PRESETS.len() as u64) as usize];
    // Drawn last, so that the seeds without SIMD keep the modules they had before SIMD.
    let simd_draw = r.chance(SIMD_SHARE.0, SIMD_SHARE.1);
    let simd = simd_target() && (mode == Mode::Simd || simd_draw);
    let no_traps = mode == Mode::Simd && r.chance(1, 2);
    Settings {
        lazy,
        fuel,
        epoch,
        software_float_rounding,
        ref_fuel: budget,
        preset,
        simd,
        simd_heavy: simd && mode == Mode::Simd,
        no_traps,
    }
}

/// Whether wjit compiles SIMD on the target the tester runs on: both backends do. The
/// workers report it to the parent (see [`set_simd_target`]) so that a backend without SIMD
/// could opt out without the parent writing out modules its workers never ran.
pub const SIMD_TARGET: bool = true;

/// 0: as [`SIMD_TARGET`]; 1: SIMD off; 2: SIMD on.
static SIMD_OVERRIDE: AtomicU8 = AtomicU8::new(0);

/// Whether seeds may use SIMD: as [`SIMD_TARGET`], unless [`set_simd_target`] said otherwise.
pub fn simd_target() -> bool {
    match SIMD_OVERRIDE.load(Ordering::Relaxed) {
        0 => SIMD_TARGET,
        n => n == 2,
    }
}

/// Generates as on a target with (or without) SIMD: the campaign's parent process follows its
/// workers (which may be built for another architecture), so that the modules it writes out
/// for divergences are the ones the workers ran.
pub fn set_simd_target(on: bool) {
    SIMD_OVERRIDE.store(1 + on as u8, Ordering::Relaxed);
}

/// The share of seeds with SIMD in the run, mutate and threads modes (the simd mode: all).
pub const SIMD_SHARE: (u64, u64) = (1, 2);

/// The wasm features the generator uses (wasm 2.0, with SIMD where [`simd_target`], plus
/// multi-memory, extended constant expressions, memory64 and tail calls), for checking the generator.
pub fn wjit_features() -> wasmparser::WasmFeatures {
    use wasmparser::WasmFeatures as F;
    let mut f = F::WASM2 | F::MULTI_MEMORY | F::EXTENDED_CONST | F::MEMORY64 | F::TAIL_CALL;
    if !simd_target() {
        f.remove(wasmparser::WasmFeatures::SIMD);
    }
    f
}

/// Largest memory (in 64 KiB pages) a module may declare or grow to.
pub const MAX_PAGES: u64 = 16;
/// Largest table a module may declare or grow to.
pub const MAX_TABLE_ELEMENTS: u64 = 1_000;

pub fn smith_config(s: &Settings) -> wasm_smith::Config {
    let mut c = wasm_smith::Config {
        // Wasm 2.0 (SIMD per seed) plus the wasm 3.0 proposals wjit implements that wasmi
        // implements too; no relaxed SIMD.
        simd_enabled: s.simd,
        relaxed_simd_enabled: false,
        threads_enabled: false,
        shared_everything_threads_enabled: false,
        tail_call_enabled: true,
        memory64_enabled: true,
        gc_enabled: false,
        exceptions_enabled: false,
        custom_page_sizes_enabled: false,
        custom_descriptors_enabled: false,
        wide_arithmetic_enabled: false,
        extended_const_enabled: true,
        compact_imports_enabled: false,
        reference_types_enabled: true,
        bulk_memory_enabled: true,
        multi_value_enabled: true,
        sign_extension_ops_enabled: true,
        saturating_float_to_int_enabled: true,
        max_memories: 3,
        max_tables: 4,
        max_imports: 0,
        max_memory32_bytes: MAX_PAGES * 65536,
        max_memory64_bytes: (MAX_PAGES * 65536) as u128,
        max_table_elements: MAX_TABLE_ELEMENTS,
        // Wasm leaves NaN payloads nondeterministic; canonicalising keeps memories and
        // reinterpreted bits comparable. wasm-smith canonicalises after the scalar and the
        // f32x4/f64x2 arithmetic, rounding, sqrt, min and max operators.
        canonicalize_nans: true,
        export_everything: true,
        min_types: 2,
        min_funcs: 2,
        max_funcs: 20,
        max_instructions: 200,
        max_nesting_depth: 10,
        ..wasm_smith::Config::default()
    };
    c.disallow_traps = s.no_traps;
    if s.simd_heavy {
        use wasm_smith::{InstructionKind as K, InstructionKinds};
        // Everything but the scalar float operators: v128 operators make up a larger share.
        c.allowed_instructions = InstructionKinds::new(&[
            K::NumericInt,
            K::Vector,
            K::Reference,
            K::Parametric,
            K::Variable,
            K::Table,
            K::Memory,
            K::Control,
        ]);
    }
    match s.preset {
        Preset::Default => {}
        Preset::DeepNesting => {
            c.max_nesting_depth = 60;
            c.max_instructions = 1_500;
            c.max_funcs = 6;
        }
        Preset::ManyLocals => {
            c.max_instructions = 800;
            c.max_funcs = 8;
            c.max_globals = 200;
        }
        Preset::LongBlocks => {
            c.max_instructions = 4_000;
            c.max_funcs = 4;
            c.max_nesting_depth = 4;
        }
        Preset::MultiValue => {
            c.max_type_size = 4_000;
            c.max_types = 60;
            c.max_instructions = 600;
        }
        Preset::Memory => {
            c.min_memories = 1;
            c.memory_offset_choices = wasm_smith::MemoryOffsetChoices(40, 40, 20);
            c.max_data_segments = 20;
            c.max_instructions = 600;
        }
        Preset::Indirect => {
            c.min_tables = 1;
            c.min_funcs = 8;
            c.max_funcs = 60;
            c.min_element_segments = 1;
            c.max_instructions = 300;
        }
        Preset::Tiny => {
            c.max_funcs = 4;
            c.max_instructions = 40;
        }
    }
    c
}

/// Bytes of `arbitrary` input per preset: more input, bigger modules.
fn input_len(preset: Preset, r: &mut Rng) -> usize {
    let base = match preset {
        Preset::Tiny => 512,
        Preset::LongBlocks | Preset::DeepNesting => 16 << 10,
        Preset::ManyLocals => 8 << 10,
        _ => 4 << 10,
    };
    base / 2 + r.below(base as u64) as usize
}

/// Fills the `arbitrary` input. Uniform bytes make wasm-smith stop most loops early; runs of
/// large bytes make it keep going (more locals, values, params, results).
fn fill_input(preset: Preset, r: &mut Rng, buf: &mut [u8]) {
    r.fill(buf);
    let skew = match preset {
        Preset::ManyLocals | Preset::MultiValue | Preset::LongBlocks => 4,
        Preset::Tiny => 0,
        _ => 1,
    };
    for _ in 0..skew * buf.len() / 256 {
        let at = r.below(buf.len() as u64) as usize;
        let run = (1 + r.below(32) as usize).min(buf.len() - at);
        let byte = if r.chance(1, 2) {
            0xff
        } else {
            r.next_u64() as u8 | 0x81
        };
        buf[at..at + run].fill(byte);
    }
}

/// The module for `seed` (before any mutation). Deterministic.
pub fn module(seed: u64, mode: Mode) -> Vec<u8> {
    let s = settings(seed, mode);
    let mut r = stream(seed, mode, 2);
    let mut buf = vec![0u8; input_len(s.preset, &mut r)];
    fill_input(s.preset, &mut r, &mut buf);
    let config = smith_config(&s);
    let mut u = Unstructured::new(&buf);
    match wasm_smith::Module::new(config, &mut u) {
        Ok(m) => m.to_bytes(),
        // Not enough input for anything: the smallest module.
        Err(_) => b"\0asm\x01\0\0\0".to_vec(),
    }
}

/// The mutated module for `seed` in mutate mode. Deterministic.
pub fn mutated(seed: u64) -> Vec<u8> {
    let mut bytes = module(seed, Mode::Mutate);
    let mut r = stream(seed, Mode::Mutate, 3);
    let edits = if r.chance(3, 5) { 1 } else { 2 + r.below(3) };
    const INTERESTING: [u8; 12] = [
        0x00, 0x01, 0x40, 0x41, 0x7f, 0x80, 0xff, 0xfc, 0xfd, 0xfe, 0x0b, 0x70,
    ];
    for _ in 0..edits {
        if bytes.len() <= 8 {
            bytes.push(r.next_u64() as u8);
            continue;
        }
        // Leave the header alone mostly: a broken magic number is not interesting.
        let at = if r.chance(1, 64) {
            r.below(bytes.len() as u64) as usize
        } else {
            8 + r.below(bytes.len() as u64 - 8) as usize
        };
        match r.below(6) {
            0 => bytes[at] = r.next_u64() as u8,
            1 => bytes[at] ^= 1 << r.below(8),
            2 => bytes.insert(at, r.next_u64() as u8),
            3 => {
                bytes.remove(at);
            }
            4 => bytes[at] = INTERESTING[r.below(INTERESTING.len() as u64) as usize],
            _ => {
                // Overwrite a short run (e.g. a LEB or an opcode with its immediates).
                let n = (1 + r.below(4) as usize).min(bytes.len() - at);
                for b in &mut bytes[at..at + n] {
                    *b = INTERESTING[r.below(INTERESTING.len() as u64) as usize];
                }
            }
        }
    }
    bytes
}

/// The module a seed's divergence is about, as written to the output directory.
pub fn module_for(seed: u64, mode: Mode) -> Vec<u8> {
    match mode {
        Mode::Mutate => mutated(seed),
        _ => module(seed, mode),
    }
}

/// Arguments for calls: biased towards edge values.
pub fn arg_stream(seed: u64, mode: Mode) -> Rng {
    stream(seed, mode, 4)
}
