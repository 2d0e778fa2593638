//! Control frames, merges and branches.
//!
//! Each frame a branch can target has a merge state (`merge.rs`): the first edge defines
//! it (a loop defines it at its header), later edges move into it, and the code after a
//! block end starts from it. A block whose end is never targeted by a branch keeps its
//! fall-through state as it is. An `if` remembers where the locals were when it branched,
//! so its `else` arm starts from there.
//!
//! An `if` with parameters keeps hidden copies of them below its frame so that the `else`
//! arm can start from the same values after the `then` arm reused their slots.

use super::condition::Condition;
use super::locals::LocalsSnapshot;
use super::merge::MergeState;
use super::moves::Loc;
use super::stack::{Val, ValKind};
use super::FuncCompiler;
use crate::masm::{Address, Label, MacroAssembler, RegImm};
use crate::CompileError;
use wasmparser::BlockType;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum FrameKind {
    Function,
    Block,
    Loop,
    If,
    Else,
    /// The body of a legacy `try` (its calls are inside its region).
    LegacyTry,
    /// A `catch`/`catch_all` body of a legacy `try` (outside its region).
    LegacyCatch,
}

/// One entry of the control stack.
#[derive(Debug, Clone)]
pub(super) struct Frame {
    pub(super) kind: FrameKind,
    /// Entered while the code was unreachable: emits nothing at all.
    pub(super) dead: bool,
    /// Where a branch to this frame goes (the header for loops, the end otherwise).
    pub(super) label: Option<Label>,
    /// The `else` arm of an `if`.
    else_label: Option<Label>,
    /// Stack height where the frame's parameters (and later results) start.
    pub(super) base: usize,
    /// Number of hidden entries just below `base`: an `if`'s parameter copies; a legacy
    /// `try`'s parameter copies and then the slot of the exception its `catch` caught.
    pub(super) hidden: usize,
    /// Parameter kinds (empty for the common block types: no allocation).
    params: Vec<ValKind>,
    num_results: usize,
    /// Whether some branch jumps to `label` (for blocks and ifs: the end is a join).
    pub(super) targeted: bool,
    /// Whether the code at the frame entry was reachable (for the `else` arm).
    entry_reachable: bool,
    /// Where the edges into `label` leave the locals and carried values (set by the first
    /// edge; by the header for loops).
    pub(super) merge: Option<MergeState>,
    /// The locals' state where an `if` branched to its `else` arm.
    else_locals: LocalsSnapshot,
    /// For a `try_table` or legacy `try`: its region (see `exceptions.rs`), left at the
    /// block's end (a legacy `try`'s at its first `catch`).
    pub(super) try_region: Option<u32>,
}

impl Frame {
    pub(super) fn function(end: Label, num_results: usize) -> Frame {
        Frame {
            kind: FrameKind::Function,
            dead: false,
            label: Some(end),
            else_label: None,
            base: 0,
            hidden: 0,
            params: Vec::new(),
            num_results,
            targeted: false,
            entry_reachable: true,
            merge: None,
            else_locals: Vec::new(),
            try_region: None,
        }
    }

    pub(super) fn dead() -> Frame {
        Frame {
            kind: FrameKind::Block,
            dead: true,
            label: None,
            else_label: None,
            base: 0,
            hidden: 0,
            params: Vec::new(),
            num_results: 0,
            targeted: false,
            entry_reachable: false,
            merge: None,
            else_locals: Vec::new(),
            try_region: None,
        }
    }

    /// Number of values a branch to this frame carries.
    pub(super) fn branch_arity(&self) -> usize {
        if self.kind == FrameKind::Loop {
            self.params.len()
        } else {
            self.num_results
        }
    }
}

impl<M: MacroAssembler> FuncCompiler<'_, M> {
    /// Parameter kinds and number of results of a block type.
    pub(super) fn block_signature(
        &self,
        bt: BlockType,
    ) -> Result<(Vec<ValKind>, usize), CompileError> {
        Ok(match bt {
            BlockType::Empty => (vec![], 0),
            BlockType::Type(t) => {
                ValKind::of(t)?;
                (vec![], 1)
            }
            BlockType::FuncType(idx) => {
                let (params, results) = self.signature(idx)?;
                (params, results.len())
            }
        })
    }

    /// Keeps the allocations of a frame that ended for later frames.
    fn recycle(&mut self, frame: Frame) {
        if let Some(merge) = frame.merge {
            self.merge_pool.push(merge);
        }
        if frame.else_locals.capacity() > 0 {
            self.snapshot_pool.push(frame.else_locals);
        }
    }

    pub(super) fn frame_at_depth(&self, depth: u32) -> Result<usize, CompileError> {
        let len = self.control.len();
        (depth as usize)
            .checked_add(1)
            .and_then(|d| len.checked_sub(d))
            .ok_or_else(|| CompileError::internal(format!("branch depth {depth} out of range")))
    }

    /// Marks the rest of the current frame as dead code.
    pub(super) fn set_unreachable(&mut self) {
        let base = self.control.last().map_or(0, |f| f.base);
        self.truncate_stack(base.min(self.stack.len()));
        self.reachable = false;
    }

    fn new_frame(
        &self,
        kind: FrameKind,
        label: Label,
        base: usize,
        params: Vec<ValKind>,
        num_results: usize,
    ) -> Frame {
        Frame {
            kind,
            dead: false,
            label: Some(label),
            else_label: None,
            base,
            hidden: 0,
            params,
            num_results,
            targeted: false,
            entry_reachable: true,
            merge: None,
            else_locals: Vec::new(),
            try_region: None,
        }
    }

    pub(super) fn visit_block(&mut self, bt: BlockType) -> Result<(), CompileError> {
        let (params, results) = self.block_signature(bt)?;
        self.spill_for_join();
        let base = self.stack.len() - params.len();
        self.push_block_frame(params, results, base, None);
        Ok(())
    }

    /// Pushes the frame of a block (or `try_table`, with its region) whose parameters
    /// start at stack height `base`.
    pub(super) fn push_block_frame(
        &mut self,
        params: Vec<ValKind>,
        results: usize,
        base: usize,
        try_region: Option<u32>,
    ) {
        let label = self.masm.new_label();
        let mut frame = self.new_frame(FrameKind::Block, label, base, params, results);
        frame.try_region = try_region;
        self.control.push(frame);
    }

    pub(super) fn visit_loop(&mut self, bt: BlockType) -> Result<(), CompileError> {
        let (params, results) = self.block_signature(bt)?;
        self.spill_for_join();
        let base = self.stack.len() - params.len();
        // The header fixes the loop's state: locals stay in the registers they are in.
        // Back edges reach the header too, so after it the state is exactly the merge
        // state (registers dirty), not the entry edge's.
        // Each loop's header is compiled once: its scanned locals can be taken.
        let scanned = self
            .loops_seen
            .checked_sub(self.loop_locals_first)
            .filter(|&i| i < self.loop_locals_len);
        self.loops_seen += 1;
        let state = match scanned {
            Some(i) => {
                // Taken for the call and put back (it keeps its capacity for later scans).
                let mut uses = std::mem::take(&mut self.loop_locals[i]);
                let state = self.derive_loop_merge(base, params.len(), &mut uses);
                self.loop_locals[i] = uses;
                state
            }
            None => self.derive_merge(base, params.len()),
        };
        let mut moves = std::mem::take(&mut self.move_buf);
        self.moves_into_buf(&state, &mut moves);
        self.emit_moves_buf(&mut moves);
        self.move_buf = moves;
        self.enter_merge(&state, base);
        let label = self.masm.new_label();
        self.masm.bind(label)?;
        let mut frame = self.new_frame(FrameKind::Loop, label, base, params, results);
        frame.merge = Some(state);
        self.control.push(frame);
        self.emit_limit_checks()?;
        Ok(())
    }

    pub(super) fn visit_if(&mut self, bt: BlockType) -> Result<(), CompileError> {
        let (params, results) = self.block_signature(bt)?;
        let cond = self.pop_condition()?;
        self.spill_for_join();
        let hidden = params.len();
        let first = self.stack.len() - hidden;
        if hidden > 0 {
            // The parameters become the hidden copies; the arms see references to them.
            for pos in first..self.stack.len() {
                self.spill_entry(pos);
            }
            for (i, &k) in params.iter().enumerate() {
                self.push(Val::Slot(k, (first + i) as u32));
            }
        }
        let else_label = self.masm.new_label();
        let end = self.masm.new_label();
        self.branch_on(cond, false, else_label);
        let mut frame = self.new_frame(FrameKind::If, end, first + hidden, params, results);
        frame.else_label = Some(else_label);
        frame.hidden = hidden;
        let mut snapshot = self.snapshot_pool.pop().unwrap_or_default();
        self.snapshot_locals_into(&mut snapshot);
        frame.else_locals = snapshot;
        self.control.push(frame);
        Ok(())
    }

    pub(super) fn visit_else(&mut self) -> Result<(), CompileError> {
        let idx = self.control.len() - 1;
        let frame = self
            .control
            .last()
            .ok_or_else(|| CompileError::internal("else without if".into()))?;
        if frame.dead {
            return Ok(());
        }
        let end = frame
            .label
            .ok_or_else(|| CompileError::internal("if without end".into()))?;
        let (base, hidden, else_label) = (frame.base, frame.hidden, frame.else_label);
        let params = std::mem::take(&mut self.control[idx].params);
        let mut else_locals = std::mem::take(&mut self.control[idx].else_locals);
        let entry_reachable = self.control[idx].entry_reachable;
        if self.reachable {
            self.move_into_frame(idx)?;
            self.masm.jump(end);
            self.control[idx].targeted = true;
        }
        self.truncate_stack(base);
        if let Some(l) = else_label {
            self.masm.bind(l)?;
        }
        // The else arm starts where the `if` branched.
        self.restore_locals(&else_locals);
        else_locals.clear();
        self.snapshot_pool.push(else_locals);
        for (i, &k) in params.iter().enumerate() {
            self.push(Val::Slot(k, (base - hidden + i) as u32));
        }
        self.control[idx].params = params;
        self.recount_uses();
        self.reachable = entry_reachable;
        let f = &mut self.control[idx];
        f.kind = FrameKind::Else;
        f.else_label = None;
        Ok(())
    }

    pub(super) fn visit_end(&mut self) -> Result<(), CompileError> {
        let Some(frame) = self.control.last() else {
            return Err(CompileError::internal("end without frame".into()));
        };
        if frame.dead {
            self.control.pop();
            return Ok(());
        }
        if frame.try_region.is_some() && frame.kind != FrameKind::LegacyCatch {
            // The calls of the block's end (none: only moves) are no longer inside it.
            self.try_stack.pop();
        }
        if frame.kind == FrameKind::If {
            // No else arm: the parameters fall through as the results.
            self.visit_else()?;
        }
        let idx = self.control.len() - 1;
        let frame = &self.control[idx];
        let joins = matches!(
            frame.kind,
            FrameKind::Block
                | FrameKind::If
                | FrameKind::Else
                | FrameKind::LegacyTry
                | FrameKind::LegacyCatch
        ) && frame.targeted;
        if joins && self.reachable {
            self.move_into_frame(idx)?;
        }
        let frame = self
            .control
            .pop()
            .ok_or_else(|| CompileError::internal("end without frame".into()))?;
        match frame.kind {
            FrameKind::Function => {
                if self.reachable {
                    self.emit_return()?;
                }
                self.reachable = false;
                self.stack.clear();
            }
            FrameKind::Loop => {
                // Nothing branches to a loop's end: the values stay where they are.
            }
            FrameKind::Block
            | FrameKind::If
            | FrameKind::Else
            | FrameKind::LegacyTry
            | FrameKind::LegacyCatch => {
                if !frame.targeted {
                    // No join: keep the fall-through state as it is.
                    if frame.hidden > 0 && self.reachable {
                        self.drop_hidden(frame.base - frame.hidden, frame.num_results);
                    }
                    self.recycle(frame);
                    return Ok(());
                }
                if let Some(l) = frame.label {
                    self.masm.bind(l)?;
                }
                let state = frame
                    .merge
                    .as_ref()
                    .ok_or_else(|| CompileError::internal("join without merge state".into()))?;
                self.enter_merge(state, frame.base);
                self.reachable = true;
                if frame.hidden > 0 {
                    self.drop_hidden(frame.base - frame.hidden, frame.num_results);
                }
            }
        }
        self.recycle(frame);
        if self.reachable {
            self.check_uses();
        }
        Ok(())
    }

    /// Removes an `if`'s hidden parameter copies (from stack height `first_hidden` up) from
    /// under its `num_results` results. Out of line: it is rare, and inlined it made every
    /// `end` copy its frame.
    #[inline(never)]
    fn drop_hidden(&mut self, first_hidden: usize, num_results: usize) {
        let first_result = self.stack.len() - num_results;
        // Hidden copies are plain slots: dropping them frees nothing, and the results
        // keep their registers.
        self.stack.drain(first_hidden..first_result);
        // Results in the slots above move down into the slots now free.
        self.own_slots_for_top(num_results);
    }

    /// Gives values that refer to another position's slot (an `if`'s hidden parameters)
    /// their own slot, so branch moves cannot overwrite a slot before reading it.
    fn own_slots_for_top(&mut self, n: usize) {
        let first = self.stack.len() - n;
        for pos in first..self.stack.len() {
            if matches!(self.stack[pos], Val::Slot(_, s) if s as usize != pos) {
                self.spill_entry(pos);
            }
        }
    }

    /// Emits the moves and the jump of a taken branch to frame `idx`.
    pub(super) fn emit_branch_to(&mut self, idx: usize) -> Result<(), CompileError> {
        let frame = &self.control[idx];
        if frame.kind == FrameKind::Function {
            return self.emit_return();
        }
        let label = frame
            .label
            .ok_or_else(|| CompileError::internal("branch to a dead frame".into()))?;
        self.move_into_frame(idx)?;
        self.masm.jump(label);
        self.control[idx].targeted = true;
        Ok(())
    }

    pub(super) fn visit_br(&mut self, depth: u32) -> Result<(), CompileError> {
        let idx = self.frame_at_depth(depth)?;
        let n = self.control[idx].branch_arity();
        self.own_slots_for_top(n);
        self.emit_branch_to(idx)?;
        self.set_unreachable();
        Ok(())
    }

    pub(super) fn visit_br_if(&mut self, depth: u32) -> Result<(), CompileError> {
        let idx = self.frame_at_depth(depth)?;
        let cond = self.pop_condition()?;
        let (n, base, kind, label) = {
            let f = &self.control[idx];
            (f.branch_arity(), f.base, f.kind, f.label)
        };
        self.own_slots_for_top(n);
        if kind != FrameKind::Function {
            let label =
                label.ok_or_else(|| CompileError::internal("branch to a dead frame".into()))?;
            if self.control[idx].merge.is_none() {
                let state = self.derive_merge(base, n);
                self.control[idx].merge = Some(state);
            }
            let target = self.control[idx].merge.take().unwrap_or_default();
            let mut moves = std::mem::take(&mut self.move_buf);
            self.moves_into_buf(&target, &mut moves);
            let clobbers_condition = moves.iter().any(|m| match m.dst {
                Loc::Reg(r) => condition_uses(&cond, r),
                Loc::Mem(_) => false,
            });
            let no_moves = moves.is_empty();
            let conform = !no_moves && self.values_in_place(base, n) && !clobbers_condition;
            if conform {
                // Both paths take the target's state, so the branch is one conditional jump.
                self.emit_moves_buf(&mut moves);
                self.conform_to(&target);
            }
            self.control[idx].merge = Some(target);
            self.control[idx].targeted = true;
            if conform || no_moves {
                self.move_buf = moves;
                self.branch_on(cond, true, label);
            } else {
                // The moves run only on the taken path: skip them when the branch is not.
                let skip = self.masm.new_label();
                self.branch_on(cond, false, skip);
                self.emit_moves_buf(&mut moves);
                self.move_buf = moves;
                self.masm.jump(label);
                self.masm.bind(skip)?;
            }
            return Ok(());
        }
        let skip = self.masm.new_label();
        self.branch_on(cond, false, skip);
        self.emit_branch_to(idx)?;
        self.masm.bind(skip)?;
        Ok(())
    }

    pub(super) fn visit_br_table(
        &mut self,
        depths: &[u32],
        default: u32,
    ) -> Result<(), CompileError> {
        let (_, index) = self.pop_to_reg()?;
        let default_idx = self.frame_at_depth(default)?;
        let n = self.control[default_idx].branch_arity();
        self.own_slots_for_top(n);
        // A target whose state needs no moves is jumped to directly; the others get one
        // out-of-line block each (moves, then the jump).
        // `target_of[frame]` is the frame's index in `targets`: found in O(1), as dispatch
        // tables of compiled languages have thousands of entries.
        let mut targets: Vec<(usize, Label, bool)> = Vec::new();
        let mut target_of = vec![u32::MAX; self.control.len()];
        let mut label_for = |c: &mut Self, idx: usize| -> Result<Label, CompileError> {
            if let Some(&(_, l, _)) = targets.get(target_of[idx] as usize) {
                return Ok(l);
            }
            let frame = &c.control[idx];
            let direct = match (frame.kind, frame.label) {
                (FrameKind::Function, _) | (_, None) => None,
                (_, Some(label)) => {
                    if frame.merge.is_none() {
                        let state = c.derive_merge(frame.base, frame.branch_arity());
                        c.control[idx].merge = Some(state);
                    }
                    let state = c.control[idx].merge.as_ref();
                    let mut moves = std::mem::take(&mut c.move_buf);
                    let direct = state.is_some_and(|t| {
                        c.moves_into_buf(t, &mut moves);
                        moves.is_empty()
                    });
                    c.move_buf = moves;
                    direct.then_some(label)
                }
            };
            let (label, needs_stub) = match direct {
                Some(label) => (label, false),
                None => (c.masm.new_label(), true),
            };
            target_of[idx] = targets.len() as u32;
            targets.push((idx, label, needs_stub));
            c.control[idx].targeted = true;
            Ok(label)
        };
        let mut labels = Vec::with_capacity(depths.len());
        for &d in depths {
            let idx = self.frame_at_depth(d)?;
            labels.push(label_for(self, idx)?);
        }
        let default_label = label_for(self, default_idx)?;
        self.masm.jump_table(index, &labels, default_label);
        self.free_reg(index);
        for (idx, label, needs_stub) in targets {
            if needs_stub {
                self.masm.bind(label)?;
                self.emit_branch_to(idx)?;
            }
        }
        self.set_unreachable();
        Ok(())
    }

    pub(super) fn visit_return(&mut self) -> Result<(), CompileError> {
        self.emit_return()?;
        self.set_unreachable();
        Ok(())
    }

    /// Moves the function's results (the top of the stack) to their return locations and
    /// returns. Does not change the compile-time stack.
    pub(super) fn emit_return(&mut self) -> Result<(), CompileError> {
        let n = self.results.len();
        let first = self.stack.len() - n;
        if n == 1 {
            let v = self.stack[first];
            let kind = v.kind();
            let ret = self.masm.return_reg(kind.class());
            match v {
                Val::Const(_, bits) => self.masm.mov(ret, RegImm::Imm(bits), kind.size()),
                Val::Reg(_, r) => self.masm.mov(ret, RegImm::Reg(r), kind.size()),
                Val::Slot(_, s) => {
                    let a = self.slot_addr(s);
                    self.masm.load(ret, a, kind.size());
                }
            }
        } else if n > 1 {
            // Results go to the parameter area; no stack value lives there (locals are never
            // stack entries), so they can be written in order.
            let mut words = 0;
            for i in 0..n {
                let v = self.stack[first + i];
                self.store_val(v, Address::Frame(16 + 8 * words as i32));
                words += v.kind().words();
            }
        }
        self.masm.epilogue();
        Ok(())
    }
}

/// Whether the branch condition `cond` reads register `r`.
fn condition_uses(cond: &Condition, r: crate::masm::Reg) -> bool {
    use super::condition::FusedCmp;
    match *cond {
        Condition::Value(c) => c == r,
        Condition::Compare(FusedCmp::Int { lhs, rhs, .. }) => lhs == r || rhs == RegImm::Reg(r),
        Condition::Compare(FusedCmp::Float { lhs, rhs, .. }) => lhs == r || rhs == r,
        Condition::Compare(FusedCmp::V128 { src, .. }) => src == r,
    }
}
