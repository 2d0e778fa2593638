//! `Config` and `Engine`: compilation settings and the state shared by every module and
//! store of an engine (the epoch counter, the signature registry).

use crate::profiling::{self, ProfilingAgent, ProfilingStrategy};
use crate::types::FuncType;
use crate::vm::stubs::{stubs, HostStubs};
use crate::Error;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

/// Settings for an [`Engine`].
#[derive(Debug, Clone)]
pub struct Config {
    pub(crate) max_wasm_stack: usize,
    pub(crate) max_memory_pages: u64,
    pub(crate) epoch_interruption: bool,
    pub(crate) consume_fuel: bool,
    pub(crate) parallel_compilation: bool,
    pub(crate) lazy_compilation: bool,
    pub(crate) software_float_rounding: bool,
    pub(crate) x64_avx: bool,
    pub(crate) wasm_simd: bool,
    pub(crate) wasm_relaxed_simd: bool,
    pub(crate) wasm_multi_memory: bool,
    pub(crate) wasm_extended_const: bool,
    pub(crate) wasm_memory64: bool,
    pub(crate) wasm_function_references: bool,
    pub(crate) wasm_tail_call: bool,
    pub(crate) wasm_exceptions: bool,
    pub(crate) wasm_legacy_exceptions: bool,
    pub(crate) profiler: ProfilingStrategy,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            max_wasm_stack: 1 << 20,
            max_memory_pages: 1 << 16,
            epoch_interruption: false,
            consume_fuel: false,
            parallel_compilation: true,
            lazy_compilation: wjit_compiler::isa::host::LAZY_COMPILATION,
            software_float_rounding: false,
            x64_avx: true,
            wasm_simd: true,
            wasm_relaxed_simd: true,
            wasm_multi_memory: true,
            wasm_extended_const: true,
            wasm_memory64: true,
            wasm_function_references: false,
            wasm_tail_call: true,
            wasm_exceptions: false,
            wasm_legacy_exceptions: false,
            profiler: ProfilingStrategy::None,
        }
    }
}

impl Config {
    /// The default configuration.
    pub fn new() -> Config {
        Config::default()
    }
    /// The most stack wasm code may use, in bytes (default 1 MiB). Deeper recursion traps
    /// with [`crate::TrapCode::StackOverflow`].
    pub fn max_wasm_stack(&mut self, bytes: usize) -> &mut Self {
        self.max_wasm_stack = bytes;
        self
    }
    /// Compile epoch checks into function entries and loop headers, so that
    /// [`Engine::increment_epoch`] can stop code whose store's deadline passed (see
    /// [`crate::Store::set_epoch_deadline`]). Off by default.
    pub fn epoch_interruption(&mut self, enable: bool) -> &mut Self {
        self.epoch_interruption = enable;
        self
    }
    /// Compile fuel accounting into function entries and loop headers: each function call
    /// and each loop iteration consumes one unit of the store's fuel (see
    /// [`crate::Store::set_fuel`]; stores start with none), and running out traps with
    /// [`crate::TrapCode::OutOfFuel`]. Off by default.
    pub fn consume_fuel(&mut self, enable: bool) -> &mut Self {
        self.consume_fuel = enable;
        self
    }
    /// Use several threads in [`crate::Module::new`] for big modules (on by default).
    pub fn parallel_compilation(&mut self, enable: bool) -> &mut Self {
        self.parallel_compilation = enable;
        self
    }
    /// Compile each function on its first call (the default) instead of in
    /// [`crate::Module::new`]. Either way [`crate::Module::new`] validates every function
    /// body and reports operators wjit cannot compile, so a module that loads runs.
    pub fn lazy_compilation(&mut self, enable: bool) -> &mut Self {
        self.lazy_compilation = enable && wjit_compiler::isa::host::LAZY_COMPILATION;
        self
    }
    /// Round floats (ceil/floor/trunc/nearest) with a runtime function even where the CPU
    /// has rounding instructions: the path CPUs without SSE4.1 take, exposed for testing.
    #[doc(hidden)]
    pub fn software_float_rounding(&mut self, enable: bool) -> &mut Self {
        self.software_float_rounding = enable;
        self
    }
    /// On x86-64, let generated code use AVX (the default): where [`Engine::new`] detects
    /// AVX, the v128 operators and the scalar float arithmetic use the three-operand VEX
    /// forms (`vpaddb d, a, b`), which need no register copies (`movaps`); without AVX, or
    /// with `false`, they use the two-operand SSE forms. `true` never turns AVX on for a CPU
    /// without it. Only AVX itself is used (no AVX2, no FMA), and the results are the
    /// same either way. Ignored on other architectures. Exposed for testing the SSE forms
    /// on AVX machines.
    #[doc(hidden)]
    pub fn x64_avx(&mut self, enable: bool) -> &mut Self {
        self.x64_avx = enable;
        self
    }
    /// Accept the fixed-width SIMD proposal (`v128`; part of wasm 2.0, on by default).
    pub fn wasm_simd(&mut self, enable: bool) -> &mut Self {
        self.wasm_simd = enable;
        self
    }
    /// Accept the relaxed SIMD proposal (wasm 3.0; on by default, as in wasmtime). Needs
    /// [`Config::wasm_simd`]. wjit's relaxed operators are deterministic and the same on
    /// every ISA: each gives the result of its strict counterpart (`relaxed_swizzle` is
    /// `swizzle`, `relaxed_trunc*` is `trunc_sat*`, `relaxed_min`/`max` are `min`/`max`,
    /// `relaxed_laneselect` is `bitselect`, `relaxed_q15mulr_s` is `q15mulr_sat_s`),
    /// `relaxed_madd`/`nmadd` round the product before the add (unfused), and the
    /// `relaxed_dot_i8x16_i7x16` operators take both operands as signed with wrapping i16
    /// sums.
    pub fn wasm_relaxed_simd(&mut self, enable: bool) -> &mut Self {
        self.wasm_relaxed_simd = enable;
        self
    }
    /// Accept the tail-call proposal (`return_call`, `return_call_indirect`; wasm 3.0, on by
    /// default, as in wasmtime). A tail call runs in constant stack space: the callee
    /// replaces the caller's frame, writing its arguments where the caller's own arguments
    /// were. Every call site therefore reserves room for at least 8 argument words (also
    /// without tail calls in the module), and a function can tail-call functions whose
    /// parameters take at most `max(8, its own parameters, its own results)` words (a
    /// `v128` takes two, any other value one); a module with a bigger tail call fails to
    /// compile with an "unsupported" error. With tail calls enabled, direct calls also
    /// reload the instance registers after they return (two loads).
    pub fn wasm_tail_call(&mut self, enable: bool) -> &mut Self {
        self.wasm_tail_call = enable;
        self
    }
    /// Accept the typed function references proposal (wasm 3.0; off by default, as in
    /// wasmtime): typed references `(ref $t)`, `(ref null $t)`, `(ref func)` and
    /// `(ref extern)` wherever a value type can appear, non-nullable locals, `call_ref`,
    /// `ref.as_non_null`, `br_on_null`, `br_on_non_null`, and tables with initializer
    /// expressions. A typed function reference is a [`crate::Val::FuncRef`] to embedders
    /// (see [`crate::RefType`] for how types match). With it, constant expressions may
    /// also read any earlier immutable global (a wasm 3.0 rule). The GC proposal
    /// (recursion groups of several or recursive types, subtypes, structs, arrays, GC
    /// instructions) is not supported and is refused as [`crate::Error::Unsupported`].
    pub fn wasm_function_references(&mut self, enable: bool) -> &mut Self {
        self.wasm_function_references = enable;
        self
    }
    /// Accept the exception-handling proposal (wasm 3.0; off by default, as in wasmtime):
    /// tags, `throw`, `throw_ref`, `try_table` with `catch`, `catch_ref`, `catch_all` and
    /// `catch_all_ref` clauses, and `exnref` values ([`crate::Val::ExnRef`]). The host
    /// makes tags with [`crate::Tag::new`] and exceptions with [`crate::ExnRef::new`], throws
    /// one into wasm by returning it as an error from a host function, and receives an
    /// uncaught one as [`crate::Error::Exception`]. Exception objects live as long as
    /// their store (wjit has no collector yet). The older instructions of the proposal are
    /// a separate switch, [`Config::wasm_legacy_exceptions`].
    pub fn wasm_exceptions(&mut self, enable: bool) -> &mut Self {
        self.wasm_exceptions = enable;
        self
    }
    /// Accept the legacy exception-handling instructions (off by default): `try` with
    /// `catch`/`catch_all` bodies, `rethrow` and `delegate`, as toolchains emitted them
    /// before `try_table` (e.g. older Emscripten and LLVM `-fwasm-exceptions`). They
    /// share tags and exceptions with [`Config::wasm_exceptions`].
    pub fn wasm_legacy_exceptions(&mut self, enable: bool) -> &mut Self {
        self.wasm_legacy_exceptions = enable;
        self
    }
    /// Accept the multi-memory proposal (wasm 3.0; on by default, as in wasmtime): a module
    /// may import and define several linear memories, and every memory instruction names
    /// the one it uses.
    pub fn wasm_multi_memory(&mut self, enable: bool) -> &mut Self {
        self.wasm_multi_memory = enable;
        self
    }
    /// Accept the extended constant expressions proposal (wasm 3.0; on by default, as in
    /// wasmtime): `i32`/`i64` `add`, `sub` and `mul` in global initialisers and segment
    /// offsets.
    pub fn wasm_extended_const(&mut self, enable: bool) -> &mut Self {
        self.wasm_extended_const = enable;
        self
    }
    /// Accept the memory64 proposal (wasm 3.0; on by default, as in wasmtime since version
    /// 30): memories and tables indexed by `i64`. A 64-bit memory is bounds-checked like a
    /// 32-bit one (guard pages) plus one check that the index fits in 32 bits, because wjit
    /// memories stay within 4 GiB ([`Config::max_memory_pages`]).
    pub fn wasm_memory64(&mut self, enable: bool) -> &mut Self {
        self.wasm_memory64 = enable;
        self
    }
    /// Sets a proposal by its wasmtime name (`simd`, `relaxed-simd`, `multi-memory`,
    /// `extended-const`, ...; `_` and `-` are interchangeable), as the CLI's `-W name=y|n`
    /// does. Returns an error naming the known proposals for an unknown name.
    pub fn wasm_feature(&mut self, name: &str, enable: bool) -> Result<&mut Self, Error> {
        match name.replace('_', "-").as_str() {
            "simd" => self.wasm_simd(enable),
            "relaxed-simd" => self.wasm_relaxed_simd(enable),
            "multi-memory" => self.wasm_multi_memory(enable),
            "extended-const" => self.wasm_extended_const(enable),
            "memory64" => self.wasm_memory64(enable),
            "function-references" => self.wasm_function_references(enable),
            "tail-call" => self.wasm_tail_call(enable),
            "exceptions" => self.wasm_exceptions(enable),
            "legacy-exceptions" => self.wasm_legacy_exceptions(enable),
            _ => {
                return Err(Error::msg(format!(
                    "unknown wasm proposal `{name}` (known: {})",
                    Config::WASM_FEATURE_NAMES.join(", ")
                )))
            }
        };
        Ok(self)
    }
    /// The names [`Config::wasm_feature`] accepts.
    pub const WASM_FEATURE_NAMES: &'static [&'static str] = &[
        "simd",
        "relaxed-simd",
        "multi-memory",
        "extended-const",
        "memory64",
        "function-references",
        "tail-call",
        "exceptions",
        "legacy-exceptions",
    ];
    /// The proposals the validator accepts under this configuration. The binary reader
    /// uses the same set, because some encodings read differently with a proposal on
    /// (with multi-memory, bit 6 of a memarg's flags announces a memory index).
    pub(crate) fn wasm_features(&self) -> wasmparser::WasmFeatures {
        use wasmparser::WasmFeatures as F;
        let mut features = F::WASM2;
        features.set(F::SIMD, self.wasm_simd);
        features.set(F::RELAXED_SIMD, self.wasm_simd && self.wasm_relaxed_simd);
        features.set(F::MULTI_MEMORY, self.wasm_multi_memory);
        features.set(F::EXTENDED_CONST, self.wasm_extended_const);
        features.set(F::MEMORY64, self.wasm_memory64);
        features.set(F::FUNCTION_REFERENCES, self.wasm_function_references);
        // Wasm 3.0 lets constant expressions read any earlier immutable global, a rule
        // wasmparser applies only with its GC feature. With function references on (wasm
        // 3.0's reference types), validate with it and reject GC's own constructs
        // elsewhere: types other than plain function types (`module::parse`), and every
        // GC operator (the compiler supports none). Without those, a value of a GC
        // reference type (`anyref`, `nullref`, ...) can only ever be null.
        features.set(F::GC, self.wasm_function_references);
        features.set(F::TAIL_CALL, self.wasm_tail_call);
        features.set(F::EXCEPTIONS, self.wasm_exceptions);
        features.set(F::LEGACY_EXCEPTIONS, self.wasm_legacy_exceptions);
        features
    }
    /// Make generated code visible to `perf` (default [`ProfilingStrategy::None`]): every
    /// function is reported as it is placed, eagerly or on its first call, named from the
    /// name section or `wasm-function[N]`, as are the jump slots and host stubs. The
    /// profiler's file is process-wide, shared by every engine using that strategy;
    /// [`Engine::new`] fails if it cannot be created. See the README, "Profiling and
    /// logging".
    pub fn profiler(&mut self, strategy: ProfilingStrategy) -> &mut Self {
        self.profiler = strategy;
        self
    }
    /// The most 64 KiB pages any linear memory may grow to (default 65536, i.e. 4 GiB).
    pub fn max_memory_pages(&mut self, pages: u64) -> &mut Self {
        self.max_memory_pages = pages.min(1 << 16);
        self
    }
}

pub(crate) struct EngineInner {
    pub config: Config,
    /// The host routines (assembled once per process).
    pub stubs: &'static HostStubs,
    /// The epoch counter generated code compares against store deadlines.
    pub epoch: Box<AtomicU64>,
    /// Generated x86-64 code may use AVX: the CPU has it and the config allows it.
    pub x64_avx: bool,
    /// Where placed code is reported (`Config::profiler`).
    pub profiler: Option<&'static dyn ProfilingAgent>,
    /// Canonical signature ids: equal ids mean equal function types. 0 is never used.
    signatures: RwLock<Signatures>,
}

#[derive(Default)]
struct Signatures {
    ids: HashMap<FuncType, u32>,
    /// The type of each id, at index `id - 1`.
    types: Vec<FuncType>,
}

/// The compilation environment shared by modules and instances. Cheap to clone.
#[derive(Clone)]
pub struct Engine {
    pub(crate) inner: Arc<EngineInner>,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("config", &self.inner.config)
            .finish()
    }
}

impl Default for Engine {
    /// An engine with the default configuration.
    ///
    /// # Panics
    /// If the process cannot map the engine's executable stubs (out of memory); use
    /// [`Engine::new`] to handle that as an error.
    fn default() -> Engine {
        Engine::new(&Config::default()).expect("the default engine configuration is valid")
    }
}

impl Engine {
    /// Creates an engine: checks the CPU (on x86-64: POPCNT, SSSE3, SSE4.1 and SSE4.2, or
    /// `Error::Unsupported`; AVX is detected and used if present, see [`Config::x64_avx`])
    /// and, once per process, assembles the host stubs and installs the trap signal handler.
    pub fn new(config: &Config) -> Result<Engine, Error> {
        // SIMD code uses SSSE3 (`pabs*`), SSE4.1 (`pmulld`, `pinsrq`, `pminu*`) and SSE4.2
        // (`pcmpgtq`); every x86-64 CPU since 2008 has them.
        #[cfg(target_arch = "x86_64")]
        for (feature, present) in [
            ("POPCNT", std::is_x86_feature_detected!("popcnt")),
            ("SSSE3", std::is_x86_feature_detected!("ssse3")),
            ("SSE4.1", std::is_x86_feature_detected!("sse4.1")),
            ("SSE4.2", std::is_x86_feature_detected!("sse4.2")),
        ] {
            if !present {
                return Err(Error::Unsupported(format!("x86-64 CPUs without {feature}")));
            }
        }

        if config.wasm_relaxed_simd && !config.wasm_simd {
            return Err(Error::Unsupported(
                "relaxed SIMD without SIMD: enable `Config::wasm_simd` or disable `Config::wasm_relaxed_simd`".into(),
            ));
        }
        #[cfg(target_arch = "x86_64")]
        let x64_avx = config.x64_avx && std::is_x86_feature_detected!("avx");
        #[cfg(not(target_arch = "x86_64"))]
        let x64_avx = false;
        let stubs = stubs()?;
        let profiler = profiling::agent(config.profiler, &|| stubs.symbols())?;
        Ok(Engine {
            inner: Arc::new(EngineInner {
                config: config.clone(),
                stubs,
                profiler,
                epoch: Box::new(AtomicU64::new(0)),
                x64_avx,
                signatures: RwLock::new(Signatures::default()),
            }),
        })
    }

    /// Advances the epoch by one; wasm code whose store's deadline is reached traps with
    /// [`crate::TrapCode::Interrupt`] (or runs the store's epoch callback) at its next
    /// function entry or loop header. Callable from any thread.
    pub fn increment_epoch(&self) {
        self.inner.epoch.fetch_add(1, Ordering::SeqCst);
    }

    /// The current epoch.
    pub fn current_epoch(&self) -> u64 {
        self.inner.epoch.load(Ordering::SeqCst)
    }

    /// Whether generated x86-64 code uses AVX (detected at [`Engine::new`], and allowed by
    /// [`Config::x64_avx`]).
    pub(crate) fn x64_avx(&self) -> bool {
        self.inner.x64_avx
    }

    /// Whether generated code may use the CPU's float rounding instructions.
    pub(crate) fn native_float_rounding(&self) -> bool {
        #[cfg(target_arch = "x86_64")]
        let native = std::is_x86_feature_detected!("sse4.1");
        #[cfg(not(target_arch = "x86_64"))]
        let native = true;
        native && !self.inner.config.software_float_rounding
    }

    /// The canonical id of a signature (registering it on first use).
    pub(crate) fn signature_id(&self, ty: &FuncType) -> u32 {
        if let Some(&id) = self.signatures().ids.get(ty) {
            return id;
        }
        let mut sigs = self
            .inner
            .signatures
            .write()
            .unwrap_or_else(|p| p.into_inner());
        if let Some(&id) = sigs.ids.get(ty) {
            return id;
        }
        sigs.types.push(ty.clone());
        let id = sigs.types.len() as u32;
        sigs.ids.insert(ty.clone(), id);
        id
    }

    /// The type registered as `id`.
    pub(crate) fn signature(&self, id: u32) -> Option<FuncType> {
        let index = (id as usize).checked_sub(1)?;
        self.signatures().types.get(index).cloned()
    }

    fn signatures(&self) -> std::sync::RwLockReadGuard<'_, Signatures> {
        self.inner
            .signatures
            .read()
            .unwrap_or_else(|p| p.into_inner())
    }

    pub(crate) fn same(&self, other: &Engine) -> bool {
        Arc::ptr_eq(&self.inner, &other.inner)
    }
}
