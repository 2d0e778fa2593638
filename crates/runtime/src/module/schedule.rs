//! Module loading, step 3: code scheduling. Eager mode compiles every body in
//! `Module::new` (on all cores for big modules) and places it with every direct call going
//! straight to its callee; lazy mode places one jump slot per function, and the first call
//! of a function compiles it (`compile_lazily`) and points its slot at the code.

use super::parse::{body_reader, FunctionToCompile};
use super::progress::Progress;
use super::validate::{for_each_body, job};
use crate::profiling::ProfilingAgent;
use crate::sys::code_memory::CodeChunk;
use crate::vm::code::ModuleCode;
use crate::Error;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};
use wasmparser::{FuncToValidate, FuncValidatorAllocations, ValidatorResources};
use wjit_compiler::{CompiledFunction, ModuleInfo};

/// The code range to reserve for a module with these bodies.
fn range_for(bodies: &[FunctionToCompile]) -> usize {
    let bytes = bodies.iter().map(|b| b.body.len()).sum();
    crate::vm::code::range_size(bytes, bodies.len())
}

/// Wasm body bytes (per thread) an eager compile compiles before it places them: the code
/// and tables of a batch are placed while still in cache, and the memory they took is
/// reused for the next batch instead of a module's worth of fresh pages.
const EAGER_BATCH_BYTES: usize = 256 << 10;

/// How many of `bodies` (at least one) make a batch of about `batch_bytes` body bytes.
fn batch_len(bodies: &[FunctionToCompile], batch_bytes: usize) -> usize {
    let mut bytes = 0;
    bodies
        .iter()
        .position(|b| {
            bytes += b.body.len();
            bytes >= batch_bytes
        })
        .map_or(bodies.len(), |i| i + 1)
}

/// The defined functions of a module placed eagerly, at `addrs`.
fn placed_funcs(addrs: Vec<usize>, bodies: Vec<FunctionToCompile>) -> Vec<DefinedFunc> {
    addrs
        .into_iter()
        .zip(bodies)
        .map(|(addr, f)| DefinedFunc {
            to_validate: Mutex::new(None),
            body: f.body,
            slot: 0,
            compiled: OnceLock::from(Ok(addr)),
        })
        .collect()
}

/// Compiles (and validates) every body, on all cores when `parallel` and the module is big;
/// returns `(function index, code)` in order.
pub(crate) fn compile_all(
    info: &ModuleInfo,
    binary: &[u8],
    bodies: &[FunctionToCompile],
    parallel: bool,
    progress: &Progress<'_>,
) -> Result<Vec<(u32, CompiledFunction)>, Error> {
    for_each_body(bodies, parallel, |chunk| {
        let mut allocs = FuncValidatorAllocations::default();
        let masm = wjit_compiler::isa::host::masm(info);
        let mut context = wjit_compiler::FuncCompilerContext::new(masm);
        let mut out = Vec::with_capacity(chunk.len());
        for f in chunk {
            let index = f.to_validate.index;
            let body = body_reader(binary, f.body.clone(), f.to_validate.features);
            let mut validator = job(f).into_validator(allocs);
            let code = wjit_compiler::compile_function_in(
                &mut context,
                info,
                index,
                &body,
                &mut validator,
            )?;
            allocs = validator.into_allocations();
            out.push((index, code));
            progress.advance();
        }
        Ok(out)
    })
}

/// Why a function body could not be compiled, kept to report it at every call.
#[derive(Debug, Clone)]
struct CompileFailure {
    unsupported: bool,
    message: String,
}

impl CompileFailure {
    fn new(e: Error) -> CompileFailure {
        match e {
            Error::Unsupported(m) => CompileFailure {
                unsupported: true,
                message: m,
            },
            Error::Compile(m) => CompileFailure {
                unsupported: false,
                message: m,
            },
            other => CompileFailure {
                unsupported: false,
                message: other.to_string(),
            },
        }
    }
    fn to_error(&self) -> Error {
        if self.unsupported {
            Error::Unsupported(self.message.clone())
        } else {
            Error::Compile(self.message.clone())
        }
    }
}

/// A function defined by the module.
struct DefinedFunc {
    /// The validator job for the body, until the body is compiled lazily.
    to_validate: Mutex<Option<FuncToValidate<ValidatorResources>>>,
    /// Where the body is in the binary.
    body: std::ops::Range<usize>,
    /// The jump slot, which leads to the lazy stub until the function is compiled (0 in
    /// eager mode).
    slot: usize,
    /// The compiled entry address, once compiled.
    compiled: OnceLock<Result<usize, CompileFailure>>,
}

/// The code of a module's functions: placed eagerly, or jump slots plus what was compiled
/// on first calls.
pub(crate) struct ModuleFunctions {
    funcs: Vec<DefinedFunc>,
    /// The module's code arena: the functions compiled by `Module::new` (eager mode), or
    /// the jump slots and then every function compiled on first call.
    code: ModuleCode,
    /// The module binary, kept to compile bodies lazily and for `Module::serialize`.
    binary: Arc<[u8]>,
}

impl ModuleFunctions {
    /// Compiles every body now (they are validated as they are compiled).
    pub fn eager(
        info: &ModuleInfo,
        binary: Arc<[u8]>,
        bodies: Vec<FunctionToCompile>,
        names: Arc<Vec<Option<String>>>,
        parallel: bool,
        progress: &Progress<'_>,
        profiler: Option<&'static dyn ProfilingAgent>,
    ) -> Result<ModuleFunctions, Error> {
        if !CodeChunk::dual_mapping_supported() {
            // Every placement is sealed at once: all of it in one, so that every direct
            // call is resolved when it is placed.
            let compiled = compile_all(info, &binary, &bodies, parallel, progress)?;
            return Self::place_all(binary, bodies, names, &compiled, None, profiler);
        }
        let wasm_bytes: usize = bodies.iter().map(|b| b.body.len()).sum();
        // Room for twice the code `range_for` expects: the code size is not known up front.
        let range = crate::vm::code::range_size(wasm_bytes.saturating_mul(2), bodies.len());
        // About 4 bytes of x86-64 or aarch64 code per byte of wasm.
        let code = ModuleCode::new(names, range)?
            .with_profiler(profiler)
            .with_expected_size(wasm_bytes.saturating_mul(4));
        let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
        let batch_bytes = if parallel {
            EAGER_BATCH_BYTES * threads
        } else {
            EAGER_BATCH_BYTES
        };
        let first = info.num_imported_functions;
        let mut addrs: Vec<usize> = Vec::with_capacity(bodies.len());
        // The code of function `callee`, if placed (`addrs` is by defined index).
        let placed =
            |addrs: &[usize], callee: u32| addrs.get(callee.checked_sub(first)? as usize).copied();
        let (mut code_bytes, mut compiling, mut placing) = (0, Duration::ZERO, Duration::ZERO);
        let mut rest = &bodies[..];
        while !rest.is_empty() {
            let batch = &rest[..batch_len(rest, batch_bytes)];
            rest = &rest[batch.len()..];
            let started = Instant::now();
            let compiled = compile_all(info, &binary, batch, parallel, progress)?;
            let compiled_at = Instant::now();
            compiling += compiled_at - started;
            code_bytes += compiled.iter().map(|(_, f)| f.code.len()).sum::<usize>();
            let batch_addrs = code.place_batch(&compiled, &|callee| placed(&addrs, callee))?;
            addrs.extend(batch_addrs);
            placing += compiled_at.elapsed();
        }
        let started = Instant::now();
        code.resolve_deferred(&|callee| placed(&addrs, callee))?;
        placing += started.elapsed();
        tracing::debug!(
            functions = bodies.len(),
            wasm_bytes,
            code_bytes,
            time = ?compiling,
            "module compiled (eager compilation)"
        );
        tracing::debug!(code_bytes, time = ?placing, "module code placed");
        Ok(ModuleFunctions {
            funcs: placed_funcs(addrs, bodies),
            code,
            binary,
        })
    }

    /// Places functions compiled ahead of time (every defined function, in order, with
    /// its code bytes in `codes`; see `Module::deserialize`), with every direct call going
    /// straight to its callee.
    pub fn precompiled(
        binary: Arc<[u8]>,
        bodies: Vec<FunctionToCompile>,
        names: Arc<Vec<Option<String>>>,
        compiled: &[(u32, CompiledFunction)],
        codes: &[&[u8]],
        profiler: Option<&'static dyn ProfilingAgent>,
    ) -> Result<ModuleFunctions, Error> {
        if compiled.len() != bodies.len() || codes.len() != bodies.len() {
            return Err(Error::Compile(format!(
                "{} compiled functions for {} function bodies",
                compiled.len(),
                bodies.len()
            )));
        }
        Self::place_all(binary, bodies, names, compiled, Some(codes), profiler)
    }

    fn place_all(
        binary: Arc<[u8]>,
        bodies: Vec<FunctionToCompile>,
        names: Arc<Vec<Option<String>>>,
        compiled: &[(u32, CompiledFunction)],
        codes: Option<&[&[u8]]>,
        profiler: Option<&'static dyn ProfilingAgent>,
    ) -> Result<ModuleFunctions, Error> {
        let placing = Instant::now();
        // (Precompiled code is trusted to be what `compile_all` made, but its size still
        // decides the range, so that a big file fails cleanly rather than mid-placement.)
        let code_bytes: usize = match codes {
            Some(codes) => codes.iter().map(|c| c.len() + 16).sum(),
            None => compiled.iter().map(|(_, f)| f.code.len() + 16).sum(),
        };
        let range = range_for(&bodies).max(crate::vm::code::range_size(
            code_bytes.div_ceil(8),
            bodies.len(),
        ));
        let code = ModuleCode::new(names, range)?.with_profiler(profiler);
        // Every callee is in the same placement: all direct calls go straight to the code.
        let addrs = match codes {
            Some(codes) => code.place_precompiled(compiled, codes)?,
            None => code.place(compiled, &|_| None)?,
        };
        tracing::debug!(code_bytes, time = ?placing.elapsed(), "module code placed");
        Ok(ModuleFunctions {
            funcs: placed_funcs(addrs, bodies),
            code,
            binary,
        })
    }

    /// Places a jump slot per function; each compiles its function on first call.
    pub fn lazy(
        info: &ModuleInfo,
        binary: Arc<[u8]>,
        bodies: Vec<FunctionToCompile>,
        names: Arc<Vec<Option<String>>>,
        profiler: Option<&'static dyn ProfilingAgent>,
    ) -> Result<ModuleFunctions, Error> {
        let first = info.num_imported_functions;
        let code = ModuleCode::new(names, range_for(&bodies))?.with_profiler(profiler);
        let start = code.place_slots(first, bodies.len() as u32)?;
        let funcs = bodies
            .into_iter()
            .enumerate()
            .map(|(i, f)| DefinedFunc {
                to_validate: Mutex::new(Some(f.to_validate)),
                body: f.body,
                slot: start + i * wjit_compiler::isa::host::SLOT_SIZE,
                compiled: OnceLock::new(),
            })
            .collect();
        Ok(ModuleFunctions {
            funcs,
            code,
            binary,
        })
    }

    /// The module's wasm binary.
    pub fn binary(&self) -> &[u8] {
        &self.binary
    }

    /// How many functions have been compiled so far.
    pub fn compiled_count(&self) -> usize {
        self.funcs
            .iter()
            .filter(|f| matches!(f.compiled.get(), Some(Ok(_))))
            .count()
    }

    /// The current entry address of defined function `defined` (index among the defined
    /// functions): its code, or its jump slot.
    pub fn entry(&self, defined: u32) -> usize {
        let f = &self.funcs[defined as usize];
        match f.compiled.get() {
            Some(Ok(addr)) => *addr,
            _ => f.slot,
        }
    }

    /// Compiles function `index` (defined index `defined`) if nobody has yet (threads
    /// racing here wait for the first one) and returns its entry address.
    pub fn compile_lazily(&self, info: &ModuleInfo, index: u32) -> Result<usize, Error> {
        let defined = index
            .checked_sub(info.num_imported_functions)
            .and_then(|i| self.funcs.get(i as usize))
            .ok_or_else(|| Error::Compile(format!("no defined function {index}")))?;
        let result = defined.compiled.get_or_init(|| {
            self.compile_body(info, index, defined).map_err(|e| {
                tracing::debug!(index, error = %e, "lazy compilation failed");
                CompileFailure::new(e)
            })
        });
        result.clone().map_err(|f| f.to_error())
    }

    fn compile_body(
        &self,
        info: &ModuleInfo,
        index: u32,
        defined: &DefinedFunc,
    ) -> Result<usize, Error> {
        let to_validate = defined
            .to_validate
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take()
            .ok_or_else(|| Error::Compile(format!("function {index} has no body to compile")))?;
        if self.binary.get(defined.body.clone()).is_none() {
            return Err(Error::Compile("function body out of range".into()));
        }
        let started = Instant::now();
        let body = body_reader(&self.binary, defined.body.clone(), to_validate.features);
        let mut validator = to_validate.into_validator(Default::default());
        let masm = wjit_compiler::isa::host::masm(info);
        let f = wjit_compiler::compile_function(masm, info, index, &body, &mut validator)?;
        let code_bytes = f.code.len();
        // Calls to functions compiled already go straight to them, the others to their
        // slots (and a recursive call to this very function straight to it).
        let first = info.num_imported_functions;
        let compiled = |callee: u32| {
            let f = self.funcs.get(callee.checked_sub(first)? as usize)?;
            f.compiled.get()?.as_ref().ok().copied()
        };
        let addr = self.code.place(&[(index, f)], &compiled)?[0];
        // From now on calls through the slot go straight to the code too. Threads that
        // still see the old slot reach the lazy stub, which waits for this initialization
        // and then finds the code.
        self.code.patch_slot(index, addr);
        tracing::debug!(
            index,
            name = %self.code.function_name(index),
            wasm_bytes = defined.body.len(),
            code_bytes,
            time = ?started.elapsed(),
            "lazily compiled"
        );
        Ok(addr)
    }
}
