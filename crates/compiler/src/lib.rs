//! wjit-compiler: the single-pass WebAssembly to machine code compiler of wjit.
//!
//! [`compile_function`] walks one function body exactly once: every operator is decoded,
//! validated by wasmparser's `FuncValidator` and turned into machine code in the same step,
//! with the wasm value stack kept in a register cache (see [`codegen`]). The ISA-neutral core
//! talks to the machine through the small [`masm::MacroAssembler`] trait; the implementations
//! live under [`isa`].
//!
//! The crate knows nothing about processes, signals or memory mappings: its input is a
//! [`ModuleInfo`] and a function body, its output is position-independent code bytes plus
//! metadata ([`CompiledFunction`]).
#![warn(missing_docs)]

pub mod codegen;
mod error;
pub mod isa;
pub mod masm;
mod module;
mod trap;
pub mod vmctx;

pub use codegen::{compile_function, compile_function_in, validate_function, FuncCompilerContext};
pub use error::{CompileError, CompileErrorKind};
pub use module::ModuleInfo;
pub use trap::TrapCode;

/// The fewest 8-byte words of argument area that every call site (and the host's entry
/// stub) reserves when tail calls are enabled ([`ModuleInfo::tail_call`]): a function may
/// tail-call any function whose parameters take at most
/// `max(MIN_CALL_AREA_WORDS, its own parameter words, its own result words)`, writing the
/// arguments in place of its own (see `codegen::tail_calls`).
pub const MIN_CALL_AREA_WORDS: u32 = 8;

/// Machine code for one wasm function plus what the runtime needs to run it.
#[derive(Debug, Clone, Default)]
pub struct CompiledFunction {
    /// Machine code, position-independent except for the direct calls listed in
    /// `relocations`: imported and indirect calls, builtins and the trap landing go through
    /// the vmctx (the pinned context register).
    pub code: Vec<u8>,
    /// Sorted by `pc`: instructions that may trap, and which trap they raise.
    pub traps: Vec<TrapSite>,
    /// Sorted: (offset of the return address, wasm offset) of every call, so a backtrace
    /// can name the calling operator of each frame.
    pub call_sites: Vec<(u32, u32)>,
    /// Sorted by `offset`: the direct calls to functions of the same module, whose targets
    /// the runtime fills in when it places the code (with [`isa::host::resolve_call`]), to
    /// the callee's code or to its jump slot.
    pub relocations: Vec<Relocation>,
    /// The frame size: the stack pointer is the frame pointer minus this everywhere in the
    /// body (what the exception unwinder restores before entering a landing pad).
    pub frame_size: u32,
    /// Sorted: (offset of the return address, index in `try_regions`) of every call inside
    /// a `try_table` (or legacy `try`), the innermost one around it.
    pub handler_sites: Vec<(u32, u32)>,
    /// The function's exception-handling regions (see [`TryRegion`]).
    pub try_regions: Vec<TryRegion>,
    /// Only when asked for ([`FuncCompilerContext::record_op_offsets`]), else empty:
    /// (code offset, wasm offset) where the code emitted while compiling each operator
    /// starts, one entry per operator in body order (so sorted by both). Code before the
    /// first entry is the prologue. The last entry is an end marker whose wasm offset is
    /// just past the body: the code after it is out of line (trap stubs). Because values
    /// are kept in registers and materialized late, the code of an operator may compute
    /// what earlier operators (e.g. `local.get`, `i32.const`) pushed.
    pub op_offsets: Vec<(u32, u32)>,
}

/// A `try_table` (or legacy `try`) block: the catch clauses it tries, in order, before its
/// parent's.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TryRegion {
    /// The region an exception none of the clauses catches goes to next (index in
    /// `try_regions`), or `None` for the caller.
    pub parent: Option<u32>,
    /// The catch clauses, in order.
    pub catches: Vec<CatchClause>,
}

/// One catch clause: which exceptions it takes and where its landing pad is.
///
/// A landing pad is entered with the frame pointer of its function's frame, the stack
/// pointer at `frame pointer - frame_size`, and the exnref in the integer return register;
/// every other register is undefined.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CatchClause {
    /// vmctx offset of the tag's identity pointer ([`vmctx::VMOffsets::tag_ptr`]), or
    /// `None` for `catch_all` (and `catch_all_ref`).
    pub tag_offset: Option<u32>,
    /// Offset of the landing pad from the start of the function's code.
    pub pad: u32,
}

/// A direct call whose target is filled in at placement.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Relocation {
    /// Offset from the start of the function's code of the call's 4-byte target field (the
    /// `rel32` of an x86-64 `call`, the whole `bl` word on AArch64; for a tail call the
    /// `rel32` of a `jmp`, a `b` word).
    pub offset: u32,
    /// The callee (a function defined by the module, never an import).
    pub func_index: u32,
}

/// One instruction that can raise a trap.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TrapSite {
    /// Offset of the instruction from the start of the function's code.
    pub pc: u32,
    /// The trap raised there.
    pub code: TrapCode,
    /// Byte offset of the wasm operator in the module binary.
    pub wasm_offset: u32,
}
