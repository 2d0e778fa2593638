//! The ISA-neutral single-pass compiler: wasm semantics live here, once.
//!
//! [`compile_function`] decodes each operator (`OperatorsReader::read_with_offset`, with one
//! operator of lookahead), validates it (`FuncValidator::op`) and emits code for it (the
//! `match` in [`FuncCompiler::emit`]) before going on. There is no IR and no second walk; the
//! one exception is `prescan.rs`, which decodes an outermost loop's body once more at its
//! header to learn which locals the loop uses. [`validate_function`] is the same walk
//! without the code, for validating a module up front.

mod calls;
mod condition;
mod control;
mod limits;
mod locals;
mod memory;
mod merge;
mod moves;
mod ops;
mod prescan;
mod stack;
mod tables;
mod validate;

use crate::masm::{MacroAssembler, RegClass};
use crate::{CompileError, CompiledFunction, ModuleInfo, Relocation, TrapCode, TrapSite};
use control::Frame;
use locals::LocalLoc;
use stack::{RegUses, Val, ValKind};
pub use validate::validate_function;
use wasmparser::{FuncValidator, FunctionBody, Operator, OperatorsReader, WasmModuleResources};

/// Compiles function `func_index` (a defined function) of the module described by `info`.
///
/// `validator` must be the wasmparser validator for this very body; every operator is
/// validated before code is emitted for it, so an invalid body is reported as
/// [`CompileError::Invalid`] and never produces code. A valid body this compiler cannot
/// compile gives [`CompileError::Unsupported`] naming the function index and byte offset
/// (exactly where and why [`validate_function`] would report it).
pub fn compile_function<M: MacroAssembler, T: WasmModuleResources>(
    masm: M,
    info: &ModuleInfo,
    func_index: u32,
    body: &FunctionBody<'_>,
    validator: &mut FuncValidator<T>,
) -> Result<CompiledFunction, CompileError> {
    let invalid = |e| CompileError::invalid(func_index, e);
    let ty = info
        .func_type(func_index)
        .ok_or_else(|| CompileError::Internal(format!("no type for function {func_index}")))?;
    validate::check_signature(ty).map_err(|r| r.at(func_index, body.range().start))?;
    let mut locals = Vec::new();
    for &p in ty.params() {
        locals.push(ValKind::of(p)?);
    }
    let mut results = Vec::new();
    for &r in ty.results() {
        results.push(ValKind::of(r)?);
    }
    let num_params = locals.len() as u32;

    let mut locals_reader = body.get_locals_reader().map_err(invalid)?;
    for _ in 0..locals_reader.get_count() {
        let offset = locals_reader.original_position();
        let (count, ty) = locals_reader.read().map_err(invalid)?;
        validator
            .define_locals(offset, count, ty)
            .map_err(invalid)?;
        validate::check_value_type(ty, "v128 local").map_err(|r| r.at(func_index, offset))?;
        let kind = ValKind::of(ty)?;
        locals.extend(std::iter::repeat_n(kind, count as usize));
    }
    let mut reader = OperatorsReader::new(locals_reader.get_binary_reader());

    let num_frame_locals = locals.len() as u32 - num_params;
    let mut masm = masm;
    let range = body.range();
    masm.reserve_for_body((range.end - range.start) as usize);
    let mut c = FuncCompiler {
        regs: RegUses::new(
            masm.allocatable(RegClass::Int)
                .iter()
                .chain(masm.allocatable(RegClass::Float))
                .copied(),
        ),
        local_locs: vec![LocalLoc::Home; locals.len()],
        cached: Vec::with_capacity(16),
        cached_at: vec![u32::MAX; locals.len()],
        written: vec![false; locals.len()],
        masm,
        info,
        locals,
        num_params,
        slots_start: -8 - 8 * num_frame_locals as i32,
        results,
        stack: Vec::with_capacity(16),
        max_depth: 0,
        outgoing_words: 0,
        control: Vec::new(),
        reachable: true,
        traps: Vec::new(),
        call_sites: Vec::new(),
        relocations: Vec::new(),
        wasm_offset: 0,
        next_is_branch: false,
        next_op: NextOp::Other,
        loop_locals: Vec::new(),
        loop_locals_first: 0,
        loops_scanned: 0,
        prescan_marks: Vec::new(),
        move_buf: Vec::new(),
        result_buf: Vec::new(),
        loops_seen: 0,
        fused: None,
    };
    c.emit_prologue(num_frame_locals)?;

    // One operator of lookahead (decoded once): comparisons fuse with a following branch,
    // and an operation whose result goes straight into a local may write that local's
    // register in place.
    let mut next = (!reader.eof()).then(|| reader.read_with_offset());
    while let Some(item) = next.take() {
        let (op, offset) = item.map_err(invalid)?;
        let end = reader.original_position();
        let scan_from = (matches!(op, Operator::Loop { .. }) && c.loops_seen >= c.loops_scanned)
            .then(|| reader.get_binary_reader());
        next = (!reader.eof()).then(|| reader.read_with_offset());
        validator.op(offset, &op).map_err(invalid)?;
        validate::check_encoding(&op, offset, end, func_index)?;
        validate::check_operator(info, &op).map_err(|r| r.at(func_index, offset))?;
        c.wasm_offset = offset as u32;
        c.next_op = match next {
            Some(Ok((Operator::BrIf { .. } | Operator::If { .. }, _))) => NextOp::Branch,
            Some(Ok((
                Operator::LocalSet { local_index } | Operator::LocalTee { local_index },
                _,
            ))) => NextOp::SetLocal(local_index),
            _ => NextOp::Other,
        };
        c.next_is_branch = c.next_op == NextOp::Branch && is_comparison(&op);
        if let Some(after_loop) = scan_from {
            let loops = prescan::scan_loops(
                after_loop,
                c.locals.len(),
                &mut c.prescan_marks,
                c.loops_seen,
            );
            c.loops_scanned = c.loops_seen + loops.len().max(1);
            c.loop_locals = loops;
            c.loop_locals_first = c.loops_seen;
        }
        c.emit(op).map_err(|e| e.located(func_index, offset))?;
    }
    reader.finish().map_err(invalid)?;
    let end = reader.original_position();
    c.finish().map_err(|e| e.located(func_index, end))
}

/// State of one function being compiled.
pub(crate) struct FuncCompiler<'a, M: MacroAssembler> {
    masm: M,
    info: &'a ModuleInfo,
    /// Kinds of all locals, parameters first.
    locals: Vec<ValKind>,
    num_params: u32,
    /// Frame offset just below the last local: spill slots grow down from here.
    slots_start: i32,
    results: Vec<ValKind>,
    stack: Vec<Val>,
    max_depth: u32,
    /// Largest outgoing argument/result area needed by a call, in 8-byte words.
    outgoing_words: u32,
    /// Use counts of the allocatable registers.
    regs: RegUses,
    /// Where each local is (see `locals.rs`).
    local_locs: Vec<LocalLoc>,
    /// The locals that are not at home, in no particular order.
    cached: Vec<u32>,
    /// Position of each local in `cached` (`u32::MAX` if absent).
    cached_at: Vec<u32>,
    /// Whether the body has written each local so far (`local.set`/`tee`).
    written: Vec<bool>,
    control: Vec<Frame>,
    /// Whether the code being emitted can execute.
    reachable: bool,
    traps: Vec<TrapSite>,
    /// (return address offset, wasm offset) of every call.
    call_sites: Vec<(u32, u32)>,
    /// Direct calls, in code order.
    relocations: Vec<Relocation>,
    /// Offset of the operator being compiled, for trap sites.
    wasm_offset: u32,
    /// The operator after the current one is `br_if` or `if` (set for comparisons only).
    next_is_branch: bool,
    /// What the operator after the current one is, as far as code generation cares.
    next_op: NextOp,
    /// The locals of the outermost loop being compiled and of the loops in it (`prescan.rs`).
    loop_locals: Vec<prescan::LoopLocals>,
    /// Loop number (in order of `loop` operators) of `loop_locals[0]`.
    loop_locals_first: usize,
    /// Loop number after the last one `loop_locals` covers.
    loops_scanned: usize,
    /// The prescan's per-depth bookkeeping, reused by every scan of the body.
    prescan_marks: Vec<prescan::DepthMarks>,
    /// Buffer for the moves of one merge, reused.
    move_buf: Vec<moves::Move>,
    /// Buffer for the result kinds of a call, reused.
    result_buf: Vec<ValKind>,
    /// Number of `loop` operators compiled so far (reachable or not).
    loops_seen: usize,
    /// A comparison left for that branch (see `condition.rs`).
    fused: Option<condition::FusedCmp>,
}

/// The operator after the one being compiled, where it changes the code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum NextOp {
    /// `br_if` or `if`.
    Branch,
    /// `local.set` or `local.tee` of this local.
    SetLocal(u32),
    /// Anything else.
    Other,
}

/// Functions with at most this many declared locals start with them as the constant zero
/// (no frame zeroing; a local reaches memory only if it has to); more are zeroed in the
/// frame by the prologue, so merges never have to materialise thousands of constants.
const MAX_CONSTANT_LOCALS: u32 = 32;

impl<M: MacroAssembler> FuncCompiler<'_, M> {
    fn emit_prologue(&mut self, num_frame_locals: u32) -> Result<(), CompileError> {
        let pc = self.masm.prologue(-8, self.info.offsets.stack_limit())?;
        self.add_trap(pc, TrapCode::StackOverflow);
        if num_frame_locals > MAX_CONSTANT_LOCALS {
            self.masm.zero_frame(self.slots_start, 8 * num_frame_locals);
        } else {
            for l in self.num_params..self.locals.len() as u32 {
                self.set_local_loc(l, LocalLoc::Const(0));
            }
        }
        self.emit_limit_checks()?;
        let end = self.masm.new_label();
        let results = self.results.clone();
        self.control.push(Frame::function(end, results));
        Ok(())
    }

    fn finish(self) -> Result<CompiledFunction, CompileError> {
        if !self.control.is_empty() {
            return Err(CompileError::Internal("unterminated function body".into()));
        }
        let frame_words = 1 + (-self.slots_start / 8) as u64 - 1
            + self.max_depth as u64
            + self.outgoing_words as u64;
        let frame_size = (frame_words * 8).next_multiple_of(16);
        let frame_size = u32::try_from(frame_size)
            .map_err(|_| CompileError::Unsupported("function frame too large".into()))?;
        let mut traps = self.traps;
        let mut call_sites = self.call_sites;
        let relocations = self.relocations;
        let code = self.masm.finish(frame_size)?;
        traps.sort_by_key(|t| t.pc);
        call_sites.sort_unstable();
        Ok(CompiledFunction {
            code,
            traps,
            call_sites,
            relocations,
        })
    }

    pub(super) fn add_trap(&mut self, pc: u32, code: TrapCode) {
        self.traps.push(TrapSite {
            pc,
            code,
            wasm_offset: self.wasm_offset,
        });
    }

    /// Emits code for one validated operator.
    fn emit(&mut self, op: Operator<'_>) -> Result<(), CompileError> {
        use Operator as O;
        // Dead code (after br/return/unreachable): only the block structure matters.
        if !self.reachable {
            return match op {
                O::Block { .. } | O::Loop { .. } | O::If { .. } => {
                    if matches!(op, O::Loop { .. }) {
                        self.loops_seen += 1;
                    }
                    self.control.push(Frame::dead());
                    Ok(())
                }
                O::Else => self.visit_else(),
                O::End => self.visit_end(),
                _ => Ok(()),
            };
        }
        match op {
            O::Nop => {}
            O::Unreachable => {
                let pc = self.masm.trap(TrapCode::Unreachable);
                self.add_trap(pc, TrapCode::Unreachable);
                self.set_unreachable();
            }
            O::Block { blockty } => self.visit_block(blockty)?,
            O::Loop { blockty } => self.visit_loop(blockty)?,
            O::If { blockty } => self.visit_if(blockty)?,
            O::Else => self.visit_else()?,
            O::End => self.visit_end()?,
            O::Br { relative_depth } => self.visit_br(relative_depth)?,
            O::BrIf { relative_depth } => self.visit_br_if(relative_depth)?,
            O::BrTable { targets } => {
                let mut depths = Vec::with_capacity(targets.len() as usize);
                for t in targets.targets() {
                    depths.push(t.map_err(|e| CompileError::invalid(0, e))?);
                }
                self.visit_br_table(&depths, targets.default())?
            }
            O::Return => self.visit_return()?,
            O::Call { function_index } => self.visit_call(function_index)?,
            O::CallIndirect {
                type_index,
                table_index,
            } => self.visit_call_indirect(type_index, table_index)?,
            O::Drop => {
                let v = self.pop()?;
                self.release(v);
            }
            O::Select | O::TypedSelect { .. } => self.visit_select()?,
            O::LocalGet { local_index } => self.visit_local_get(local_index)?,
            O::LocalSet { local_index } => self.visit_local_set(local_index, false)?,
            O::LocalTee { local_index } => self.visit_local_set(local_index, true)?,
            O::GlobalGet { global_index } => self.visit_global_get(global_index)?,
            O::GlobalSet { global_index } => self.visit_global_set(global_index)?,
            O::I32Const { value } => self.push(Val::Const(ValKind::I32, value as i64)),
            O::I64Const { value } => self.push(Val::Const(ValKind::I64, value)),
            O::F32Const { value } => self.push(Val::Const(ValKind::F32, value.bits() as i64)),
            O::F64Const { value } => self.push(Val::Const(ValKind::F64, value.bits() as i64)),
            O::RefNull { .. } => self.push(Val::Const(ValKind::Ref, 0)),
            O::MemorySize { mem } => self.visit_memory_size(mem)?,
            O::MemoryGrow { mem } => self.visit_memory_grow(mem)?,
            other => {
                if !self.emit_numeric(&other)?
                    && !self.emit_memory_access(&other)?
                    && !self.emit_table_op(&other)?
                {
                    return Err(CompileError::Unsupported(format!(
                        "operator {}",
                        validate::operator_name(&other)
                    )));
                }
            }
        }
        Ok(())
    }

    fn local_kind(&self, index: u32) -> Result<ValKind, CompileError> {
        self.locals
            .get(index as usize)
            .copied()
            .ok_or_else(|| CompileError::Internal(format!("local {index} out of range")))
    }
}

/// Integer comparisons (including `eqz`), the operators compare-and-branch fusion applies to.
fn is_comparison(op: &Operator<'_>) -> bool {
    use Operator as O;
    matches!(
        op,
        O::I32Eqz
            | O::I32Eq
            | O::I32Ne
            | O::I32LtS
            | O::I32LtU
            | O::I32GtS
            | O::I32GtU
            | O::I32LeS
            | O::I32LeU
            | O::I32GeS
            | O::I32GeU
            | O::I64Eqz
            | O::I64Eq
            | O::I64Ne
            | O::I64LtS
            | O::I64LtU
            | O::I64GtS
            | O::I64GtU
            | O::I64LeS
            | O::I64LeU
            | O::I64GeS
            | O::I64GeU
            | O::F32Eq
            | O::F32Ne
            | O::F32Lt
            | O::F32Gt
            | O::F32Le
            | O::F32Ge
            | O::F64Eq
            | O::F64Ne
            | O::F64Lt
            | O::F64Gt
            | O::F64Le
            | O::F64Ge
    )
}
