//! Code listings: every defined function of a module compiled for a chosen instruction set
//! (the host's or the other one), with where each wasm operator's code starts, for
//! disassemblers, `wjit compile --disasm` and tests. Nothing here runs the code.

use super::parse::{body_reader, FunctionToCompile};
use crate::engine::Engine;
use crate::Error;
use std::ops::Range;
use std::time::{Duration, Instant};
use wasmparser::FuncValidatorAllocations;
use wjit_compiler::isa::{aarch64::Aarch64Masm, x64::X64Masm};
use wjit_compiler::masm::MacroAssembler;
use wjit_compiler::{compile_function_in, CompiledFunction, FuncCompilerContext, ModuleInfo};

/// An instruction set wjit compiles for. Both backends are built on every host, so a
/// listing can be made for either; only the host's code can run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Target {
    /// x86-64 (System V).
    X86_64,
    /// AArch64 (AAPCS64).
    Aarch64,
}

impl Target {
    /// The machine this process runs on.
    pub fn host() -> Target {
        if cfg!(target_arch = "aarch64") {
            Target::Aarch64
        } else {
            Target::X86_64
        }
    }

    /// The name `FromStr` reads back: `x86_64` or `aarch64`.
    pub fn name(self) -> &'static str {
        match self {
            Target::X86_64 => "x86_64",
            Target::Aarch64 => "aarch64",
        }
    }
}

impl std::fmt::Display for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for Target {
    type Err = Error;

    /// `x86_64` (also `x86-64`, `x64`, `amd64`) or `aarch64` (also `arm64`), any case.
    fn from_str(s: &str) -> Result<Target, Error> {
        match s.to_ascii_lowercase().as_str() {
            "x86_64" | "x86-64" | "x64" | "amd64" => Ok(Target::X86_64),
            "aarch64" | "arm64" => Ok(Target::Aarch64),
            _ => Err(Error::msg(format!(
                "unknown target `{s}` (known: x86_64 or x64, aarch64 or arm64)"
            ))),
        }
    }
}

/// The machine code of one operator: what the compiler emitted while it handled the
/// operator. Values live in registers and are materialized late, so an operator that only
/// pushes a value (`local.get`, `i32.const`) often has no code, and the code of the operator
/// that uses the value computes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OperatorCode {
    /// Byte offset of the operator in the module binary.
    pub wasm_offset: usize,
    /// Its code, as offsets into [`FunctionCode::code`] (possibly empty).
    pub code: Range<usize>,
}

/// One defined function of a [`CodeListing`].
#[derive(Debug, Clone)]
pub struct FunctionCode {
    index: u32,
    name: Option<String>,
    body: Range<usize>,
    code: Vec<u8>,
    ops: Vec<OperatorCode>,
    calls: Vec<(usize, u32)>,
    prologue_end: usize,
    out_of_line: usize,
}

impl FunctionCode {
    /// Index in the module's function index space (imports first).
    pub fn index(&self) -> u32 {
        self.index
    }

    /// The function's name in the module's name section, if any.
    pub fn name(&self) -> Option<&str> {
        self.name.as_deref()
    }

    /// Where the body (locals and operators) is in the module binary.
    pub fn body_range(&self) -> Range<usize> {
        self.body.clone()
    }

    /// The machine code, as it would be placed at address 0 (direct calls to other
    /// functions are not resolved yet).
    pub fn code(&self) -> &[u8] {
        &self.code
    }

    /// The code of each operator, in body order; the ranges are contiguous.
    pub fn operators(&self) -> &[OperatorCode] {
        &self.ops
    }

    /// The direct calls (and tail calls) to functions of the module: (offset of the
    /// instruction's target field, callee index), sorted. Their targets are filled in when
    /// the code is placed, so in [`FunctionCode::code`] they still point just past
    /// themselves (x86-64) or at themselves (AArch64).
    pub fn direct_calls(&self) -> &[(usize, u32)] {
        &self.calls
    }

    /// The prologue: the code before the first operator's (frame set-up, stack check,
    /// fuel and epoch checks).
    pub fn prologue(&self) -> Range<usize> {
        0..self.prologue_end
    }

    /// Code after the last operator's: out-of-line trap stubs.
    pub fn out_of_line(&self) -> Range<usize> {
        self.out_of_line..self.code.len()
    }

    fn new(index: u32, name: Option<String>, body: Range<usize>, f: CompiledFunction) -> Self {
        let at = &f.op_offsets;
        let len = f.code.len();
        // The last entry is the compiler's end marker (see `CompiledFunction::op_offsets`).
        let (marker, ops) = match at.split_last() {
            Some((marker, ops)) => (marker.0 as usize, ops),
            None => (len, &[][..]),
        };
        let ops: Vec<OperatorCode> = ops
            .iter()
            .enumerate()
            .map(|(i, &(start, wasm))| {
                let end = ops.get(i + 1).map_or(marker, |next| next.0 as usize);
                OperatorCode {
                    wasm_offset: wasm as usize,
                    code: (start as usize).min(len)..end.min(len),
                }
            })
            .collect();
        FunctionCode {
            index,
            name,
            body,
            prologue_end: ops.first().map_or(marker, |o| o.code.start).min(len),
            out_of_line: marker.min(len),
            calls: f
                .relocations
                .iter()
                .map(|r| (r.offset as usize, r.func_index))
                .collect(),
            code: f.code,
            ops,
        }
    }
}

/// Every defined function of a module compiled for one [`Target`], with the code range of
/// each operator: what a disassembly listing needs. Made by [`CodeListing::compile`] with
/// the engine's configuration (proposals, fuel, epochs, ...), single-threaded and eagerly;
/// the code is never placed in executable memory.
#[derive(Debug, Clone)]
pub struct CodeListing {
    target: Target,
    wasm: std::sync::Arc<[u8]>,
    num_imported_functions: u32,
    functions: Vec<FunctionCode>,
    compile_time: Duration,
}

impl CodeListing {
    /// Parses, validates and compiles the module in `bytes` (binary or text format) for
    /// `target`. Fails like [`crate::Module::new`] on an invalid or unsupported module.
    ///
    /// For a target other than the host, x86-64 code uses AVX forms unless
    /// [`crate::Config::x64_avx`] is off (as on a CPU with AVX), and float rounding uses
    /// the native instructions unless [`crate::Config::software_float_rounding`] is on.
    pub fn compile(
        engine: &Engine,
        bytes: impl AsRef<[u8]>,
        target: Target,
    ) -> Result<CodeListing, Error> {
        Self::compile_bytes(engine, bytes.as_ref(), target)
    }

    /// [`CodeListing::compile`] without its generic parameter: a generic function is
    /// compiled again in every crate that calls it, and this one holds both backends.
    fn compile_bytes(engine: &Engine, bytes: &[u8], target: Target) -> Result<CodeListing, Error> {
        let start = Instant::now();
        let wasm: std::sync::Arc<[u8]> = super::to_binary(bytes)?.into();
        let mut parsed = super::parse_for(engine, &wasm)?;
        if target != Target::host() {
            let config = &engine.inner.config;
            parsed.info.x64_avx = config.x64_avx;
            parsed.info.native_float_rounding = !config.software_float_rounding;
        }
        let info = &parsed.info;
        let bodies = std::mem::take(&mut parsed.bodies);
        let names = &parsed.names;
        let functions = match target {
            Target::X86_64 => {
                let masm = X64Masm::new(&info.offsets).with_avx(info.x64_avx);
                compile_all(masm, info, &wasm, bodies, names)?
            }
            Target::Aarch64 => {
                let masm = Aarch64Masm::new(&info.offsets);
                compile_all(masm, info, &wasm, bodies, names)?
            }
        };
        Ok(CodeListing {
            target,
            num_imported_functions: info.num_imported_functions,
            wasm,
            functions,
            compile_time: start.elapsed(),
        })
    }

    /// The instruction set of the code.
    pub fn target(&self) -> Target {
        self.target
    }

    /// The module binary (the text format converted), which the wasm offsets refer to.
    pub fn wasm(&self) -> &[u8] {
        &self.wasm
    }

    /// How many functions the module imports (they come first in the index space and have
    /// no code here).
    pub fn num_imported_functions(&self) -> u32 {
        self.num_imported_functions
    }

    /// The defined functions, in index order.
    pub fn functions(&self) -> &[FunctionCode] {
        &self.functions
    }

    /// Defined function `index` (in the module's function index space), if there is one.
    pub fn function(&self, index: u32) -> Option<&FunctionCode> {
        let defined = index.checked_sub(self.num_imported_functions)?;
        self.functions.get(defined as usize)
    }

    /// Bytes of machine code of all functions.
    pub fn code_size(&self) -> usize {
        self.functions.iter().map(|f| f.code.len()).sum()
    }

    /// Bytes of wasm function bodies.
    pub fn wasm_code_size(&self) -> usize {
        self.functions.iter().map(|f| f.body.len()).sum()
    }

    /// Wall-clock time of [`CodeListing::compile`]: text conversion, parsing, validation
    /// and compiling every function on one thread (with the small extra cost of recording
    /// operator offsets).
    pub fn compile_time(&self) -> Duration {
        self.compile_time
    }
}

/// Compiles every body with `masm`'s backend, recording operator offsets.
fn compile_all<M: MacroAssembler>(
    masm: M,
    info: &ModuleInfo,
    binary: &[u8],
    bodies: Vec<FunctionToCompile>,
    names: &[Option<String>],
) -> Result<Vec<FunctionCode>, Error> {
    let mut context = FuncCompilerContext::new(masm);
    context.record_op_offsets(true);
    let mut allocs = FuncValidatorAllocations::default();
    let mut out = Vec::with_capacity(bodies.len());
    for f in bodies {
        let index = f.to_validate.index;
        let body = body_reader(binary, f.body.clone(), f.to_validate.features);
        let mut validator = f.to_validate.into_validator(allocs);
        let compiled = compile_function_in(&mut context, info, index, &body, &mut validator)?;
        allocs = validator.into_allocations();
        let name = names.get(index as usize).cloned().flatten();
        out.push(FunctionCode::new(index, name, f.body, compiled));
    }
    Ok(out)
}
