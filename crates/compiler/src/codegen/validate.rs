//! Validation without code generation, and the one list of what the compiler cannot compile.
//!
//! [`validate_function`] walks a body the way [`super::compile_function`] does (same
//! wasmparser calls, same extra encoding check) but emits nothing, so a runtime can validate
//! every function of a module up front and compile later (lazily, or on another thread).
//! Both walks ask [`check_operator`] about every operator, so whatever `validate_function`
//! accepts, `compile_function` compiles (barring resource limits such as code size).
//!
//! What is supported: the operators of the MVP, sign-extension, non-trapping float-to-int,
//! bulk-memory, reference-types and typed function references proposals (but not
//! `return_call_ref`), on one memory with 32-bit offsets, values of
//! every type, and the SIMD operators `codegen::simd` lists.

use crate::{CompileError, ModuleInfo};
use std::fmt;
use wasmparser::{
    FuncValidator, FunctionBody, MemArg, MemArgTarget, Operator, OperatorsReader,
    WasmModuleResources,
};

/// Validates function `func_index` (a defined function) of the module described by `info`
/// without compiling it.
///
/// Runs the complete wasmparser validation of `body` with `validator` (which must be the
/// validator for this very body), exactly as [`super::compile_function`] does, and reports
/// an invalid body as [`CompileErrorKind::Invalid`]. A valid body that `compile_function`
/// cannot compile (unimplemented SIMD or other operators, several memories) is reported as
/// [`CompileErrorKind::Unsupported`], naming the function index and the byte offset of the
/// first such construct, e.g. `function 3 at byte offset 0x1a2: simd operator i8x16.popcnt`.
///
/// Allocates nothing per operator (only wasmparser's validator allocations, which the caller
/// can recycle through `FuncValidatorAllocations`).
pub fn validate_function<T: WasmModuleResources>(
    info: &ModuleInfo,
    func_index: u32,
    body: &FunctionBody<'_>,
    validator: &mut FuncValidator<T>,
) -> Result<(), CompileError> {
    let invalid = |e| CompileError::invalid(func_index, e);
    let mut locals_reader = body.get_locals_reader().map_err(invalid)?;
    for _ in 0..locals_reader.get_count() {
        let offset = locals_reader.original_position();
        let (count, ty) = locals_reader.read().map_err(invalid)?;
        validator
            .define_locals(offset, count, ty)
            .map_err(invalid)?;
    }
    let mut reader = OperatorsReader::new(locals_reader.get_binary_reader());
    while !reader.eof() {
        let (op, offset) = reader.read_with_offset().map_err(invalid)?;
        validator.op(offset, &op).map_err(invalid)?;
        check_encoding(info, &op, offset, reader.original_position(), func_index)?;
        check_operator(&op).map_err(|r| r.at(func_index, offset))?;
        check_tail_call(info, func_index, &op).map_err(|r| r.at(func_index, offset))?;
    }
    reader.finish().map_err(invalid)?;
    Ok(())
}

/// Why a valid construct cannot be compiled. Cheap to create; the message is built only
/// when it becomes an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Unsupported {
    /// An operator the compiler does not implement.
    Operator(&'static str),
    /// A memory instruction on a GC array.
    GcArray,
    /// A tail call whose arguments take more words than the caller's argument area is
    /// known to hold (see `codegen::tail_calls`).
    TailCallArgs {
        /// Words of the callee's parameters.
        words: u32,
        /// Words the incoming area holds.
        capacity: u32,
    },
}

impl Unsupported {
    /// The error for this construct in function `func_index` at byte `offset`.
    pub(crate) fn at(self, func_index: u32, offset: u64) -> CompileError {
        CompileError::unsupported(func_index, offset, self)
    }
}

impl fmt::Display for Unsupported {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Unsupported::Operator(visit) => {
                let (proposal, name) = (proposal_of_visit(visit), text_name(visit));
                write!(f, "{proposal} operator {name}")
            }
            Unsupported::GcArray => f.write_str("memory instructions on gc arrays"),
            Unsupported::TailCallArgs { words, capacity } => write!(
                f,
                "tail call whose arguments take {words} words, more than the {capacity} of \
                 the caller's incoming argument area"
            ),
        }
    }
}

/// The binary-format rule wasmparser leaves to us: without multi-memory, WebAssembly encodes
/// the memory index of `memory.size`/`memory.grow` as one zero byte (wasmparser accepts any
/// LEB128 encoding, as multi-memory does). `end` is where the operator ends.
#[inline(always)]
pub(crate) fn check_encoding(
    info: &ModuleInfo,
    op: &Operator<'_>,
    offset: u64,
    end: u64,
    func_index: u32,
) -> Result<(), CompileError> {
    if !info.multi_memory
        && matches!(
            op,
            Operator::MemorySize { .. } | Operator::MemoryGrow { .. }
        )
        && end != offset + 2
    {
        return Err(CompileError::invalid_at(
            func_index,
            offset as usize,
            "zero byte expected",
        ));
    }
    Ok(())
}

/// Whether the compiler implements every operator of this proposal (the names are those of
/// wasmparser's `for_each_operator!`).
macro_rules! proposal_supported {
    (mvp) => {
        true
    };
    (sign_extension) => {
        true
    };
    (saturating_float_to_int) => {
        true
    };
    (bulk_memory) => {
        true
    };
    (reference_types) => {
        true
    };
    (function_references) => {
        true
    };
    (tail_call) => {
        true
    };
    (exceptions) => {
        true
    };
    (legacy_exceptions) => {
        true
    };
    ($other:ident) => {
        false
    };
}
pub(super) use proposal_supported;

macro_rules! define_operator_tables {
    ($( @$proposal:ident $op:ident $({ $($arg:ident: $argty:ty),* })? => $visit:ident ($($ann:tt)*) )*) => {
        /// Whether `op` belongs to a supported proposal, and its `visit_*` name
        /// (`visit_v128_const`).
        fn operator_support(op: &Operator<'_>) -> (bool, &'static str) {
            match op {
                $( Operator::$op { .. } => (proposal_supported!($proposal), stringify!($visit)), )*
                _ => (false, "visit_unknown_operator"),
            }
        }

        /// The proposal of the operator whose `visit_*` name is `visit` (error paths only).
        fn proposal_of_visit(visit: &str) -> &'static str {
            $( if visit == stringify!($visit) {
                return proposal_text(stringify!($proposal));
            } )*
            "unknown"
        }
    };
}
wasmparser::for_each_operator!(define_operator_tables);

/// How a proposal is named in messages.
fn proposal_text(proposal: &'static str) -> &'static str {
    match proposal {
        "relaxed_simd" => "relaxed simd",
        "saturating_float_to_int" => "non-trapping float-to-int",
        "tail_call" => "tail call",
        "function_references" => "typed function references",
        "legacy_exceptions" => "legacy exceptions",
        "shared_everything_threads" => "shared-everything threads",
        "stack_switching" => "stack switching",
        "wide_arithmetic" => "wide arithmetic",
        "memory_control" => "memory control",
        "custom_descriptors" => "custom descriptors",
        "acquire_release_atomics" => "acquire-release atomics",
        other => other,
    }
}

/// The text-format name of an operator from its `visit_*` name: `visit_v128_const` ->
/// `v128.const`, `visit_br_if` -> `br_if` (the first `_` after a type or namespace
/// prefix becomes a dot).
pub(crate) fn text_name(visit: &str) -> String {
    const NAMESPACES: [&str; 24] = [
        "i32", "i64", "f32", "f64", "v128", "i8x16", "i16x8", "i32x4", "i64x2", "f32x4", "f64x2",
        "memory", "table", "local", "global", "ref", "elem", "data", "struct", "array", "any",
        "extern", "i31", "atomic",
    ];
    let name = visit.strip_prefix("visit_").unwrap_or(visit);
    match name.split_once('_') {
        Some((prefix, rest)) if NAMESPACES.contains(&prefix) => format!("{prefix}.{rest}"),
        _ => name.to_string(),
    }
}

/// The text-format name of `op` (error paths only).
pub(crate) fn operator_name(op: &Operator<'_>) -> String {
    text_name(operator_support(op).1)
}

/// What of `op` the compiler cannot compile, if anything. Called for every operator by
/// [`validate_function`] (after validation, so the indices it looks up exist); the
/// compiler asks the same two questions (the first at compile time of each visitor method).
pub(crate) fn check_operator(op: &Operator<'_>) -> Result<(), Unsupported> {
    match operator_support(op) {
        (true, _) => check_operands(op),
        (false, _) if super::simd::supported(op) => check_operands(op),
        (false, visit) => Err(Unsupported::Operator(visit)),
    }
}

/// What of `op`, an operator of a supported proposal, the compiler cannot compile (a
/// memory instruction on a GC array, a multi-value typed select).
#[inline(always)]
pub(crate) fn check_operands(op: &Operator<'_>) -> Result<(), Unsupported> {
    use Operator as O;
    match *op {
        O::TypedSelectMulti { .. } => Err(Unsupported::Operator(operator_support(op).1)),
        O::I32Load { memarg }
        | O::I64Load { memarg }
        | O::F32Load { memarg }
        | O::F64Load { memarg }
        | O::I32Load8S { memarg }
        | O::I32Load8U { memarg }
        | O::I32Load16S { memarg }
        | O::I32Load16U { memarg }
        | O::I64Load8S { memarg }
        | O::I64Load8U { memarg }
        | O::I64Load16S { memarg }
        | O::I64Load16U { memarg }
        | O::I64Load32S { memarg }
        | O::I64Load32U { memarg }
        | O::I32Store { memarg }
        | O::I64Store { memarg }
        | O::F32Store { memarg }
        | O::F64Store { memarg }
        | O::I32Store8 { memarg }
        | O::I32Store16 { memarg }
        | O::I64Store8 { memarg }
        | O::I64Store16 { memarg }
        | O::I64Store32 { memarg }
        | O::V128Load { memarg }
        | O::V128Store { memarg }
        | O::V128Load8Lane { memarg, .. }
        | O::V128Load16Lane { memarg, .. }
        | O::V128Load32Lane { memarg, .. }
        | O::V128Load64Lane { memarg, .. }
        | O::V128Store8Lane { memarg, .. }
        | O::V128Store16Lane { memarg, .. }
        | O::V128Store32Lane { memarg, .. }
        | O::V128Store64Lane { memarg, .. } => check_memarg(&memarg),
        _ => Ok(()),
    }
}

/// Words a value of type `t` takes in an argument or result area.
fn words(t: &wasmparser::ValType) -> u32 {
    if *t == wasmparser::ValType::V128 {
        2
    } else {
        1
    }
}

/// Whether defined function `caller` can do the tail call `op` in place: the callee's
/// parameters fit the caller's incoming area, which holds
/// `max(MIN_CALL_AREA_WORDS, params, results)` words of the caller's type when tail calls
/// are enabled (else only the larger of its parameters and results).
/// Other operators are fine.
#[inline(always)]
pub(crate) fn check_tail_call(
    info: &ModuleInfo,
    caller: u32,
    op: &Operator<'_>,
) -> Result<(), Unsupported> {
    let callee_type = match *op {
        Operator::ReturnCall { function_index } => info.functions.get(function_index as usize),
        Operator::ReturnCallIndirect { ref type_index, .. }
        | Operator::ReturnCallRef { ref type_index } => Some(type_index),
        _ => return Ok(()),
    };
    let (Some(caller), Some(callee)) = (
        info.func_type(caller),
        callee_type.and_then(|&t| info.types.get(t as usize)),
    ) else {
        // Not reached for validated code; the compiler reports the missing type.
        return Ok(());
    };
    let params: u32 = caller.params().iter().map(words).sum();
    let results: u32 = caller.results().iter().map(words).sum();
    let min = if info.tail_call {
        crate::MIN_CALL_AREA_WORDS
    } else {
        0
    };
    let capacity = min.max(params).max(results);
    let words = callee.params().iter().map(words).sum();
    if words > capacity {
        return Err(Unsupported::TailCallArgs { words, capacity });
    }
    Ok(())
}

/// The access is to a linear memory (not a GC array).
fn check_memarg(memarg: &MemArg) -> Result<(), Unsupported> {
    match memarg.target {
        MemArgTarget::Memory(_) => Ok(()),
        MemArgTarget::Array(_) => Err(Unsupported::GcArray),
    }
}
