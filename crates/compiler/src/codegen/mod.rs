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
mod exceptions;
mod limits;
mod locals;
mod memory;
mod merge;
mod moves;
mod ops;
mod prescan;
mod refs;
mod simd;
mod stack;
mod tables;
mod tail_calls;
mod validate;
mod visit;

use crate::masm::{Address, MacroAssembler, RegClass, RegImm};
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
/// [`CompileErrorKind::Invalid`](crate::CompileErrorKind::Invalid) and never produces code. A valid body this compiler cannot
/// compile gives [`CompileErrorKind::Unsupported`](crate::CompileErrorKind::Unsupported) naming the function index and byte offset
/// (exactly where and why [`validate_function`] would report it).
///
/// To compile many functions on one thread, [`compile_function_in`] with one
/// [`FuncCompilerContext`] reuses the assembler's and the compiler's buffers.
pub fn compile_function<M: MacroAssembler, T: WasmModuleResources>(
    masm: M,
    info: &ModuleInfo,
    func_index: u32,
    body: &FunctionBody<'_>,
    validator: &mut FuncValidator<T>,
) -> Result<CompiledFunction, CompileError> {
    let mut context = FuncCompilerContext::new(masm);
    compile_function_in(&mut context, info, func_index, body, validator)
}

/// What one thread keeps between the functions it compiles (the counterpart of wasmparser's
/// `FuncValidatorAllocations`): the assembler and the compiler's tables, which keep their
/// capacity, so compiling a function allocates little beyond the code it returns.
pub struct FuncCompilerContext<M: MacroAssembler> {
    masm: M,
    buffers: Buffers,
    /// Fill [`CompiledFunction::op_offsets`] (off by default: listings only).
    record_op_offsets: bool,
}

impl<M: MacroAssembler> FuncCompilerContext<M> {
    /// A context that emits code with `masm`.
    pub fn new(masm: M) -> FuncCompilerContext<M> {
        FuncCompilerContext {
            masm,
            buffers: Buffers::default(),
            record_op_offsets: false,
        }
    }

    /// Whether the functions compiled with this context record where each operator's code
    /// starts ([`CompiledFunction::op_offsets`]), for disassembly listings. Off by default,
    /// and then it costs nothing.
    pub fn record_op_offsets(&mut self, enable: bool) -> &mut Self {
        self.record_op_offsets = enable;
        self
    }
}

/// The compiler's reusable tables (see [`FuncCompiler`] for what each holds). Vectors are
/// empty between functions; only their capacity carries over.
#[derive(Default)]
struct Buffers {
    locals: Vec<ValKind>,
    results: Vec<ValKind>,
    stack: Vec<Val>,
    local_locs: Vec<LocalLoc>,
    cached: Vec<u32>,
    cached_at: Vec<u32>,
    written: Vec<bool>,
    control: Vec<Frame>,
    loop_locals: Vec<prescan::LoopLocals>,
    prescan_marks: Vec<prescan::DepthMarks>,
    /// Loop ids given out by earlier functions' scans (the marks stay valid across
    /// functions as long as ids never repeat).
    loop_ids_used: usize,
    move_buf: Vec<moves::Move>,
    /// The per-function outputs, built here and copied out at their exact size.
    traps: Vec<TrapSite>,
    call_sites: Vec<(u32, u32)>,
    relocations: Vec<Relocation>,
    handler_sites: Vec<(u32, u32)>,
    try_regions: Vec<crate::TryRegion>,
    try_stack: Vec<u32>,
    op_offsets: Vec<(u32, u32)>,
    /// Merge states and locals snapshots of frames that ended, kept for their capacity.
    merge_pool: Vec<merge::MergeState>,
    snapshot_pool: Vec<locals::LocalsSnapshot>,
    /// `br_table` targets, reused.
    depth_buf: Vec<u32>,
    local_offsets: Vec<i32>,
    /// The last compilation failed in `finish` because a v128 value appeared while stack
    /// slots were 8 bytes.
    wide_slots_needed: bool,
}

/// [`compile_function`] with the buffers of `context`, left in it for the next function.
pub fn compile_function_in<M: MacroAssembler, T: WasmModuleResources>(
    context: &mut FuncCompilerContext<M>,
    info: &ModuleInfo,
    func_index: u32,
    body: &FunctionBody<'_>,
    validator: &mut FuncValidator<T>,
) -> Result<CompiledFunction, CompileError> {
    let wide = may_have_simd_operators(body);
    let (result, read_to_end) =
        compile_once(context, info, func_index, body, Some(validator), wide);
    if result.is_ok() {
        return result;
    }
    // When `finish` failed for one of these reasons, the first pass validated all of the
    // body: compile it again, without validating, with 16-byte stack slots (a v128 value
    // appeared in a function that did not announce one in its signature or locals) and/or
    // branches of unlimited reach.
    let needs_wide = std::mem::take(&mut context.buffers.wide_slots_needed);
    let mut long = context.masm.needs_long_branches();
    // Only a body that was read (and validated) to its end may be compiled again
    // unvalidated: the error of an invalid or unsupported body stands, even if a long
    // branch was seen before it.
    if !read_to_end || (!needs_wide && !long) {
        return result;
    }
    let wide = wide || needs_wide;
    loop {
        context.masm.use_long_branches(long);
        let (again, _) = compile_once::<M, T>(context, info, func_index, body, None, wide);
        if again.is_err() && !long && context.masm.needs_long_branches() {
            long = true;
            continue;
        }
        context.masm.use_long_branches(false);
        return again;
    }
}

/// Whether the body's bytes contain the SIMD opcode prefix `0xFD`: if not, no SIMD operator
/// makes a v128 value (one can still come from a call, a global or a block, which the
/// retry in [`compile_function_in`] covers). A `0xFD` inside an immediate only costs
/// 16-byte slots; SIMD code no longer compiles twice.
fn may_have_simd_operators(body: &FunctionBody<'_>) -> bool {
    let mut reader = body.get_binary_reader();
    reader
        .read_bytes(reader.bytes_remaining())
        .is_ok_and(|bytes| bytes.contains(&0xFD))
}

/// One compilation of the body, validated by `validator` unless it is `None`, with 16-byte
/// stack slots if `wide_slots`; also says whether the whole body was read (a failure then
/// came from `finish`).
fn compile_once<M: MacroAssembler, T: WasmModuleResources>(
    context: &mut FuncCompilerContext<M>,
    info: &ModuleInfo,
    func_index: u32,
    body: &FunctionBody<'_>,
    validator: Option<&mut FuncValidator<T>>,
    wide_slots: bool,
) -> (Result<CompiledFunction, CompileError>, bool) {
    context.masm.reset();
    let buffers = std::mem::take(&mut context.buffers);
    let (result, buffers) = compile_with(
        &mut context.masm,
        buffers,
        info,
        func_index,
        body,
        validator,
        wide_slots,
        context.record_op_offsets,
    );
    let read_to_end = buffers.is_some();
    if let Some(buffers) = buffers {
        context.buffers = buffers;
    }
    (result, read_to_end)
}

/// The compilation proper; hands back the buffers unless it failed half-way.
#[allow(clippy::too_many_arguments)]
fn compile_with<M: MacroAssembler, T: WasmModuleResources>(
    masm: &mut M,
    buffers: Buffers,
    info: &ModuleInfo,
    func_index: u32,
    body: &FunctionBody<'_>,
    mut validator: Option<&mut FuncValidator<T>>,
    wide_slots: bool,
    record_op_offsets: bool,
) -> (Result<CompiledFunction, CompileError>, Option<Buffers>) {
    let start = FuncCompiler::start(
        masm,
        buffers,
        info,
        func_index,
        body,
        &mut validator,
        wide_slots,
    );
    let mut c = match start {
        Ok(c) => c,
        Err(e) => return (Err(e), None),
    };
    c.record_op_offsets = record_op_offsets;
    let (compiled, c) = match c.compile_body(func_index, validator) {
        Ok(()) => {
            let end = c.reader_end;
            (c.finish().map_err(|e| e.located(func_index, end)), c)
        }
        Err(e) => return (Err(e), None),
    };
    (compiled, Some(c.into_buffers()))
}

impl<'a, M: MacroAssembler> FuncCompiler<'a, M> {
    /// Reads the locals and emits the prologue.
    fn start<T: WasmModuleResources>(
        masm: &'a mut M,
        mut b: Buffers,
        info: &'a ModuleInfo,
        func_index: u32,
        body: &FunctionBody<'a>,
        validator: &mut Option<&mut FuncValidator<T>>,
        wide_slots: bool,
    ) -> Result<FuncCompiler<'a, M>, CompileError> {
        let invalid = |e| CompileError::invalid(func_index, e);
        let ty = info
            .func_type(func_index)
            .ok_or_else(|| CompileError::internal(format!("no type for function {func_index}")))?;
        let mut locals = b.locals;
        locals.clear();
        for &p in ty.params() {
            locals.push(ValKind::of(p)?);
        }
        let mut results = b.results;
        results.clear();
        for &r in ty.results() {
            results.push(ValKind::of(r)?);
        }
        let num_params = locals.len() as u32;

        let mut locals_reader = body.get_locals_reader().map_err(invalid)?;
        for _ in 0..locals_reader.get_count() {
            let offset = locals_reader.original_position();
            let (count, ty) = locals_reader.read().map_err(invalid)?;
            if let Some(validator) = validator {
                validator
                    .define_locals(offset, count, ty)
                    .map_err(invalid)?;
            }
            let kind = ValKind::of(ty)?;
            locals.extend(std::iter::repeat_n(kind, count as usize));
        }
        let operators = locals_reader.get_binary_reader();
        let body_bytes = visit::BodyBytes::new(&operators);
        let reader = OperatorsReader::new(operators);

        let num_frame_locals = locals.len() as u32 - num_params;
        // Homes: parameters in the caller's outgoing area (upwards from the return address),
        // the other locals below the saved vmctx; a v128 takes two words.
        let mut local_offsets = b.local_offsets;
        local_offsets.clear();
        let (mut param_words, mut frame_words) = (0i32, 0i32);
        for (i, kind) in locals.iter().enumerate() {
            if (i as u32) < num_params {
                local_offsets.push(16 + 8 * param_words);
                param_words += kind.words() as i32;
            } else {
                frame_words += kind.words() as i32;
                local_offsets.push(-8 - 8 * frame_words);
            }
        }
        let frame_local_words = frame_words as u32;
        // Stack slots are 16 bytes in a function that holds v128 values: one whose signature
        // or locals have one, or one compiled again because a v128 value appeared (`push`).
        let uses_v128 =
            wide_slots || locals.contains(&ValKind::V128) || results.contains(&ValKind::V128);
        let range = body.range();
        masm.reserve_for_body((range.end - range.start) as usize);
        let n = locals.len();
        b.stack.clear();
        b.cached.clear();
        b.control.clear();
        b.move_buf.clear();
        if b.loop_ids_used > (u32::MAX / 2) as usize {
            // Loop tags are u32: start over before they could wrap and repeat.
            b.prescan_marks.clear();
            b.loop_ids_used = 0;
        }
        let mut c = FuncCompiler {
            regs: RegUses::new(
                masm.allocatable(RegClass::Int)
                    .iter()
                    .chain(masm.allocatable(RegClass::Float))
                    .copied(),
            ),
            local_locs: refill(b.local_locs, LocalLoc::Home, n),
            cached: b.cached,
            cached_at: refill(b.cached_at, u32::MAX, n),
            written: refill(b.written, false, n),
            masm,
            info,
            locals,
            num_params,
            slots_start: -8 - 8 * frame_local_words as i32,
            slot_size: if uses_v128 { 16 } else { 8 },
            frame_local_words,
            local_offsets,
            needs_wide_slots: false,
            results,
            stack: b.stack,
            max_depth: 0,
            outgoing_words: 0,
            control: b.control,
            reachable: true,
            traps: emptied(b.traps),
            call_sites: emptied(b.call_sites),
            relocations: emptied(b.relocations),
            handler_sites: emptied(b.handler_sites),
            try_regions: emptied(b.try_regions),
            try_stack: emptied(b.try_stack),
            record_op_offsets: false,
            op_offsets: emptied(b.op_offsets),
            merge_pool: b.merge_pool,
            snapshot_pool: b.snapshot_pool,
            depth_buf: b.depth_buf,
            wasm_offset: 0,
            next_is_branch: false,
            body: body_bytes,
            op_end: None,
            loop_locals: b.loop_locals,
            loop_locals_first: 0,
            loop_locals_len: 0,
            loops_scanned: 0,
            prescan_marks: b.prescan_marks,
            loop_ids_used: b.loop_ids_used,
            move_buf: b.move_buf,
            loops_seen: 0,
            fused: None,
            reader: Some(reader),
            reader_end: 0,
        };
        c.emit_prologue(num_frame_locals)?;
        Ok(c)
    }

    /// Decodes, validates and compiles every operator of the body.
    fn compile_body<T: WasmModuleResources>(
        &mut self,
        func_index: u32,
        validator: Option<&mut FuncValidator<T>>,
    ) -> Result<(), CompileError> {
        let invalid = |e| CompileError::invalid(func_index, e);
        let Some(mut reader) = self.reader.take() else {
            return Err(CompileError::internal("body compiled twice".into()));
        };
        let mut visitor = visit::OpVisitor {
            c: self,
            validator,
            func_index,
            offset: 0,
        };
        while !reader.eof() {
            visitor.offset = reader.original_position();
            if visitor.c.record_op_offsets {
                let at = (visitor.c.masm.offset(), visitor.offset as u32);
                visitor.c.op_offsets.push(at);
            }
            reader.visit_operator(&mut visitor).map_err(invalid)??;
            visitor.c.check_slots();
        }
        reader.finish().map_err(invalid)?;
        self.reader_end = reader.original_position();
        Ok(())
    }

    /// The buffers, for the next function.
    fn into_buffers(self) -> Buffers {
        Buffers {
            locals: self.locals,
            results: self.results,
            stack: self.stack,
            local_locs: self.local_locs,
            cached: self.cached,
            cached_at: self.cached_at,
            written: self.written,
            control: self.control,
            loop_locals: self.loop_locals,
            prescan_marks: self.prescan_marks,
            loop_ids_used: self.loop_ids_used + self.loops_seen,
            move_buf: self.move_buf,
            traps: self.traps,
            call_sites: self.call_sites,
            relocations: self.relocations,
            handler_sites: self.handler_sites,
            try_regions: self.try_regions,
            try_stack: self.try_stack,
            op_offsets: self.op_offsets,
            merge_pool: self.merge_pool,
            snapshot_pool: self.snapshot_pool,
            depth_buf: self.depth_buf,
            local_offsets: self.local_offsets,
            wide_slots_needed: self.needs_wide_slots,
        }
    }
}

/// `v` emptied (its allocation kept).
fn emptied<T>(mut v: Vec<T>) -> Vec<T> {
    v.clear();
    v
}

/// `v` emptied, then `n` copies of `fill` (in `v`'s allocation when it is big enough).
fn refill<T: Clone>(mut v: Vec<T>, fill: T, n: usize) -> Vec<T> {
    v.clear();
    v.resize(n, fill);
    v
}

/// State of one function being compiled.
pub(crate) struct FuncCompiler<'a, M: MacroAssembler> {
    masm: &'a mut M,
    info: &'a ModuleInfo,
    /// Kinds of all locals, parameters first.
    locals: Vec<ValKind>,
    num_params: u32,
    /// Frame offset just below the last local: spill slots grow down from here.
    slots_start: i32,
    /// Bytes per stack slot: 8, or 16 in a function that may hold v128 values.
    slot_size: i32,
    /// Words of the frame's local homes (a v128 takes two).
    frame_local_words: u32,
    /// Frame offset of each local's home.
    local_offsets: Vec<i32>,
    /// A v128 value was pushed while slots are 8 bytes: `finish` fails so that the body is
    /// compiled again with 16-byte slots.
    needs_wide_slots: bool,
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
    /// (return address offset, region) of every call inside a `try_table`.
    handler_sites: Vec<(u32, u32)>,
    /// The `try_table` regions so far (see `exceptions.rs`).
    try_regions: Vec<crate::TryRegion>,
    /// The regions around the code being compiled, innermost last.
    try_stack: Vec<u32>,
    /// Record `op_offsets` (see [`FuncCompilerContext::record_op_offsets`]).
    record_op_offsets: bool,
    /// (code offset, wasm offset) where each operator's code starts, if recorded.
    op_offsets: Vec<(u32, u32)>,
    /// Merge states of frames that ended, to reuse (see `merge.rs`).
    merge_pool: Vec<merge::MergeState>,
    /// `else` snapshots of frames that ended, to reuse.
    snapshot_pool: Vec<locals::LocalsSnapshot>,
    /// `br_table` target depths, reused.
    depth_buf: Vec<u32>,
    /// Offset of the operator being compiled, for trap sites.
    wasm_offset: u32,
    /// The operator after the current one is `br_if` or `if` (set for comparisons only).
    next_is_branch: bool,
    /// The body's operator bytes, to look at the next operator (see `visit.rs`).
    body: visit::BodyBytes<'a>,
    /// Where the operator after the current one starts, when known without decoding.
    op_end: Option<u64>,
    /// The locals of the outermost loop being compiled and of the loops in it (`prescan.rs`),
    /// in the first `loop_locals_len` entries.
    loop_locals: Vec<prescan::LoopLocals>,
    /// Loop number (in order of `loop` operators) of `loop_locals[0]`.
    loop_locals_first: usize,
    /// Number of entries of `loop_locals` the last scan filled (the rest are left over
    /// from earlier scans, kept for their capacity).
    loop_locals_len: usize,
    /// Loop number after the last one `loop_locals` covers.
    loops_scanned: usize,
    /// The prescan's per-depth bookkeeping, reused by every scan (of every body).
    prescan_marks: Vec<prescan::DepthMarks>,
    /// Loop ids used by the scans of earlier bodies (`prescan::scan_loops`'s `first_id`).
    loop_ids_used: usize,
    /// Buffer for the moves of one merge, reused.
    move_buf: Vec<moves::Move>,
    /// Number of `loop` operators compiled so far (reachable or not).
    loops_seen: usize,
    /// A comparison left for that branch (see `condition.rs`).
    fused: Option<condition::FusedCmp>,
    /// The body's operators, until `compile_body` takes them.
    reader: Option<OperatorsReader<'a>>,
    /// Offset just past the body, once compiled.
    reader_end: u64,
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
            self.masm
                .zero_frame(self.slots_start, 8 * self.frame_local_words);
        } else {
            for l in self.num_params..self.locals.len() as u32 {
                if self.locals[l as usize] == ValKind::V128 {
                    // No v128 constants in the cache: zero the home.
                    let home = self.local_offsets[l as usize];
                    for half in [home, home + 8] {
                        let size = crate::masm::OperandSize::S64;
                        self.masm.store(RegImm::Imm(0), Address::Frame(half), size);
                    }
                } else {
                    self.set_local_loc(l, LocalLoc::Const(0));
                }
            }
        }
        self.emit_limit_checks()?;
        let end = self.masm.new_label();
        let num_results = self.results.len();
        self.control.push(Frame::function(end, num_results));
        Ok(())
    }

    fn finish(&mut self) -> Result<CompiledFunction, CompileError> {
        if self.needs_wide_slots {
            return Err(CompileError::internal(
                "v128 values need 16-byte slots".into(),
            ));
        }
        if !self.control.is_empty() {
            return Err(CompileError::internal("unterminated function body".into()));
        }
        let frame_words = 1
            + self.frame_local_words as u64
            + self.max_depth as u64 * (self.slot_size / 8) as u64
            + self.outgoing_words as u64;
        let frame_size = (frame_words * 8).next_multiple_of(16);
        let frame_size = u32::try_from(frame_size)
            .map_err(|_| CompileError::unsupported_feature("function frame too large".into()))?;
        if self.record_op_offsets {
            // The end marker: what follows is out-of-line code (trap stubs).
            let end = (self.masm.offset(), self.reader_end as u32);
            self.op_offsets.push(end);
        }
        let code = self.masm.finish(frame_size)?;
        // Sorted and copied out at their exact size; the buffers stay for the next body.
        self.traps.sort_unstable_by_key(|t| t.pc);
        self.call_sites.sort_unstable();
        self.handler_sites.sort_unstable();
        Ok(CompiledFunction {
            code,
            traps: self.traps.to_vec(),
            call_sites: self.call_sites.to_vec(),
            relocations: self.relocations.to_vec(),
            frame_size,
            handler_sites: self.handler_sites.to_vec(),
            try_regions: std::mem::take(&mut self.try_regions),
            op_offsets: self.op_offsets.to_vec(),
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
    fn emit(&mut self, op: &Operator<'_>) -> Result<(), CompileError> {
        use Operator as O;
        // Dead code (after br/return/unreachable): only the block structure matters.
        if !self.reachable {
            return match *op {
                O::Block { .. }
                | O::Loop { .. }
                | O::If { .. }
                | O::TryTable { .. }
                | O::Try { .. } => {
                    if matches!(op, O::Loop { .. }) {
                        self.loops_seen += 1;
                    }
                    self.control.push(Frame::dead());
                    Ok(())
                }
                O::Else => self.visit_else(),
                O::End => self.visit_end(),
                O::Catch { tag_index } => self.visit_legacy_catch(Some(tag_index)),
                O::CatchAll => self.visit_legacy_catch(None),
                O::Delegate { relative_depth } => self.visit_delegate(relative_depth),
                _ => Ok(()),
            };
        }
        match *op {
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
            O::BrTable { ref targets } => {
                let mut depths = std::mem::take(&mut self.depth_buf);
                depths.clear();
                for t in targets.targets() {
                    depths.push(t.map_err(|e| CompileError::invalid(0, e))?);
                }
                let result = self.visit_br_table(&depths, targets.default());
                self.depth_buf = depths;
                result?
            }
            O::Return => self.visit_return()?,
            O::Call { function_index } => self.visit_call(function_index)?,
            O::CallIndirect {
                type_index,
                table_index,
            } => self.visit_call_indirect(type_index, table_index)?,
            O::CallRef { type_index } => self.visit_call_ref(type_index)?,
            O::RefAsNonNull => self.visit_ref_as_non_null()?,
            O::BrOnNull { relative_depth } => self.visit_br_on_null(relative_depth)?,
            O::BrOnNonNull { relative_depth } => self.visit_br_on_non_null(relative_depth)?,
            O::ReturnCall { function_index } => self.visit_return_call(function_index)?,
            O::ReturnCallRef { type_index } => self.visit_return_call_ref(type_index)?,
            O::ReturnCallIndirect {
                type_index,
                table_index,
            } => self.visit_return_call_indirect(type_index, table_index)?,
            O::TryTable { ref try_table } => self.visit_try_table(try_table)?,
            O::Throw { tag_index } => self.visit_throw(tag_index)?,
            O::ThrowRef => self.visit_throw_ref()?,
            O::Try { blockty } => self.visit_legacy_try(blockty)?,
            O::Catch { tag_index } => self.visit_legacy_catch(Some(tag_index))?,
            O::CatchAll => self.visit_legacy_catch(None)?,
            O::Rethrow { relative_depth } => self.visit_rethrow(relative_depth)?,
            O::Delegate { relative_depth } => self.visit_delegate(relative_depth)?,
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
            _ => {
                if !self.emit_numeric(op)?
                    && !self.emit_memory_access(op)?
                    && !self.emit_table_op(op)?
                    && !self.emit_simd(op)?
                {
                    return Err(CompileError::unsupported_feature(format!(
                        "operator {}",
                        validate::operator_name(op)
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
            .ok_or_else(|| CompileError::internal(format!("local {index} out of range")))
    }
}

/// Integer comparisons (including `eqz`), the operators compare-and-branch fusion applies to.
#[inline(always)]
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
