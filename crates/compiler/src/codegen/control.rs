//! Control frames, merges and branches.
//!
//! Merge policy (simple and correct first): at every block, loop and `if` entry the stack is
//! brought into the join state (no registers, no lazy locals; constants and slots stay), and
//! the values carried by a branch (a block's results, a loop's parameters) travel in the
//! canonical slots of their stack positions. A block whose end is never targeted by a branch
//! keeps its fall-through values wherever they are.
//!
//! An `if` with parameters keeps hidden copies of them below its frame so that the `else`
//! arm can start from the same values after the `then` arm reused their slots.

use super::stack::{Val, ValKind};
use super::FuncCompiler;
use crate::masm::{Address, Label, MacroAssembler, OperandSize, RegImm};
use crate::CompileError;
use wasmparser::BlockType;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum FrameKind {
    Function,
    Block,
    Loop,
    If,
    Else,
}

/// One entry of the control stack.
#[derive(Debug, Clone)]
pub(super) struct Frame {
    kind: FrameKind,
    /// Entered while the code was unreachable: emits nothing at all.
    dead: bool,
    /// Where a branch to this frame goes (the header for loops, the end otherwise).
    label: Option<Label>,
    /// The `else` arm of an `if`.
    else_label: Option<Label>,
    /// Stack height where the frame's parameters (and later results) start.
    base: usize,
    /// Number of hidden parameter copies just below `base` (only for `if`).
    hidden: usize,
    params: Vec<ValKind>,
    results: Vec<ValKind>,
    /// Whether some branch jumps to `label` (for blocks and ifs: the end is a join).
    targeted: bool,
    /// Whether the code at the frame entry was reachable (for the `else` arm).
    entry_reachable: bool,
}

impl Frame {
    pub(super) fn function(end: Label, results: Vec<ValKind>) -> Frame {
        Frame {
            kind: FrameKind::Function,
            dead: false,
            label: Some(end),
            else_label: None,
            base: 0,
            hidden: 0,
            params: Vec::new(),
            results,
            targeted: false,
            entry_reachable: true,
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
            results: Vec::new(),
            targeted: false,
            entry_reachable: false,
        }
    }

    /// Kinds of the values a branch to this frame carries.
    fn branch_kinds(&self) -> &[ValKind] {
        if self.kind == FrameKind::Loop {
            &self.params
        } else {
            &self.results
        }
    }
}

impl<M: MacroAssembler> FuncCompiler<'_, M> {
    fn block_signature(&self, bt: BlockType) -> Result<(Vec<ValKind>, Vec<ValKind>), CompileError> {
        Ok(match bt {
            BlockType::Empty => (vec![], vec![]),
            BlockType::Type(t) => (vec![], vec![ValKind::of(t)?]),
            BlockType::FuncType(idx) => self.signature(idx)?,
        })
    }

    fn frame_at_depth(&self, depth: u32) -> Result<usize, CompileError> {
        let len = self.control.len();
        (depth as usize)
            .checked_add(1)
            .and_then(|d| len.checked_sub(d))
            .ok_or_else(|| CompileError::Internal(format!("branch depth {depth} out of range")))
    }

    /// Marks the rest of the current frame as dead code.
    pub(super) fn set_unreachable(&mut self) {
        let base = self.control.last().map_or(0, |f| f.base);
        self.truncate_stack(base.min(self.stack.len()));
        self.reachable = false;
    }

    pub(super) fn visit_block(&mut self, bt: BlockType) -> Result<(), CompileError> {
        let (params, results) = self.block_signature(bt)?;
        self.spill_for_join();
        let label = self.masm.new_label();
        self.control.push(Frame {
            kind: FrameKind::Block,
            dead: false,
            label: Some(label),
            else_label: None,
            base: self.stack.len() - params.len(),
            hidden: 0,
            params,
            results,
            targeted: false,
            entry_reachable: true,
        });
        Ok(())
    }

    pub(super) fn visit_loop(&mut self, bt: BlockType) -> Result<(), CompileError> {
        let (params, results) = self.block_signature(bt)?;
        self.spill_for_join();
        let base = self.stack.len() - params.len();
        // Back edges write the parameters to their canonical slots.
        for pos in base..self.stack.len() {
            self.spill_entry(pos);
        }
        let label = self.masm.new_label();
        self.masm.bind(label)?;
        self.emit_limit_checks()?;
        self.control.push(Frame {
            kind: FrameKind::Loop,
            dead: false,
            label: Some(label),
            else_label: None,
            base,
            hidden: 0,
            params,
            results,
            targeted: false,
            entry_reachable: true,
        });
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
        self.control.push(Frame {
            kind: FrameKind::If,
            dead: false,
            label: Some(end),
            else_label: Some(else_label),
            base: first + hidden,
            hidden,
            params,
            results,
            targeted: false,
            entry_reachable: true,
        });
        Ok(())
    }

    pub(super) fn visit_else(&mut self) -> Result<(), CompileError> {
        let frame = self
            .control
            .last()
            .cloned()
            .ok_or_else(|| CompileError::Internal("else without if".into()))?;
        if frame.dead {
            return Ok(());
        }
        let end = frame
            .label
            .ok_or_else(|| CompileError::Internal("if without end".into()))?;
        let mut targeted = frame.targeted;
        if self.reachable {
            self.store_branch_values(frame.base, frame.results.len())?;
            self.masm.jump(end);
            targeted = true;
        }
        self.truncate_stack(frame.base);
        if let Some(l) = frame.else_label {
            self.masm.bind(l)?;
        }
        for (i, &k) in frame.params.iter().enumerate() {
            self.push(Val::Slot(k, (frame.base - frame.hidden + i) as u32));
        }
        self.reachable = frame.entry_reachable;
        if let Some(f) = self.control.last_mut() {
            f.kind = FrameKind::Else;
            f.targeted = targeted;
            f.else_label = None;
        }
        Ok(())
    }

    pub(super) fn visit_end(&mut self) -> Result<(), CompileError> {
        let Some(frame) = self.control.last().cloned() else {
            return Err(CompileError::Internal("end without frame".into()));
        };
        if frame.dead {
            self.control.pop();
            return Ok(());
        }
        if frame.kind == FrameKind::If {
            // No else arm: the parameters fall through as the results.
            self.visit_else()?;
        }
        let frame = self
            .control
            .pop()
            .ok_or_else(|| CompileError::Internal("end without frame".into()))?;
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
            FrameKind::Block | FrameKind::If | FrameKind::Else => {
                if !frame.targeted {
                    // No join: keep the fall-through state as it is.
                    if frame.hidden > 0 && self.reachable {
                        self.drop_hidden(&frame)?;
                    }
                    return Ok(());
                }
                if self.reachable {
                    self.store_branch_values(frame.base, frame.results.len())?;
                }
                if let Some(l) = frame.label {
                    self.masm.bind(l)?;
                }
                self.truncate_stack(frame.base);
                for (i, &k) in frame.results.iter().enumerate() {
                    self.push(Val::Slot(k, (frame.base + i) as u32));
                }
                self.reachable = true;
                if frame.hidden > 0 {
                    self.drop_hidden(&frame)?;
                }
            }
        }
        Ok(())
    }

    /// Removes an `if`'s hidden parameter copies from under its results.
    fn drop_hidden(&mut self, frame: &Frame) -> Result<(), CompileError> {
        let n = frame.results.len();
        let first_hidden = frame.base - frame.hidden;
        let results: Vec<Val> = self.stack[self.stack.len() - n..].to_vec();
        // The results keep their registers: take them off without freeing.
        self.stack.truncate(self.stack.len() - n);
        // Hidden copies are plain slots: dropping them frees nothing.
        self.stack.truncate(first_hidden);
        for (i, v) in results.into_iter().enumerate() {
            let pos = first_hidden + i;
            let v = match v {
                // Results in the slots above move down into the slots now free.
                Val::Slot(k, s) if s as usize != pos => {
                    let (dst, src) = (self.slot_addr(pos as u32), self.slot_addr(s));
                    self.masm.copy(dst, src, OperandSize::S64);
                    Val::Slot(k, pos as u32)
                }
                other => other,
            };
            self.push(v);
        }
        Ok(())
    }

    /// Writes the top `n` values to the canonical slots `base..base + n` (without changing
    /// the compile-time stack, so it can run on one side of a conditional branch).
    fn store_branch_values(&mut self, base: usize, n: usize) -> Result<(), CompileError> {
        let first = self.stack.len() - n;
        for i in 0..n {
            let v = self.stack[first + i];
            let dst = base + i;
            if v == Val::Slot(v.kind(), dst as u32) {
                continue;
            }
            let addr = self.slot_addr(dst as u32);
            self.store_val(v, addr);
        }
        Ok(())
    }

    /// Whether a branch carrying the top `n` values to `base` needs any code.
    fn branch_needs_moves(&self, base: usize, n: usize) -> bool {
        let first = self.stack.len() - n;
        (0..n).any(|i| {
            let v = self.stack[first + i];
            v != Val::Slot(v.kind(), (base + i) as u32)
        })
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
    fn emit_branch_to(&mut self, idx: usize) -> Result<(), CompileError> {
        let frame = &self.control[idx];
        if frame.kind == FrameKind::Function {
            return self.emit_return();
        }
        let (base, n) = (frame.base, frame.branch_kinds().len());
        let label = frame
            .label
            .ok_or_else(|| CompileError::Internal("branch to a dead frame".into()))?;
        self.store_branch_values(base, n)?;
        self.masm.jump(label);
        self.control[idx].targeted = true;
        Ok(())
    }

    pub(super) fn visit_br(&mut self, depth: u32) -> Result<(), CompileError> {
        let idx = self.frame_at_depth(depth)?;
        let n = self.control[idx].branch_kinds().len();
        self.own_slots_for_top(n);
        self.emit_branch_to(idx)?;
        self.set_unreachable();
        Ok(())
    }

    pub(super) fn visit_br_if(&mut self, depth: u32) -> Result<(), CompileError> {
        let idx = self.frame_at_depth(depth)?;
        let cond = self.pop_condition()?;
        let frame = &self.control[idx];
        let n = frame.branch_kinds().len();
        let direct = frame.kind != FrameKind::Function && !self.branch_needs_moves(frame.base, n);
        if direct {
            let label = frame
                .label
                .ok_or_else(|| CompileError::Internal("branch to a dead frame".into()))?;
            self.branch_on(cond, true, label);
            self.control[idx].targeted = true;
            return Ok(());
        }
        self.own_slots_for_top(n);
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
        let n = self.control[default_idx].branch_kinds().len();
        self.own_slots_for_top(n);
        // One out-of-line block per distinct target: moves, then the jump.
        let mut stubs: Vec<(usize, Label)> = Vec::new();
        let mut stub_for = |c: &mut Self, idx: usize| -> Label {
            if let Some(&(_, l)) = stubs.iter().find(|(i, _)| *i == idx) {
                return l;
            }
            let l = c.masm.new_label();
            stubs.push((idx, l));
            l
        };
        let mut labels = Vec::with_capacity(depths.len());
        for &d in depths {
            let idx = self.frame_at_depth(d)?;
            labels.push(stub_for(self, idx));
        }
        let default_label = stub_for(self, default_idx);
        self.masm.jump_table(index, &labels, default_label);
        self.free_reg(index);
        for (idx, label) in stubs {
            self.masm.bind(label)?;
            self.emit_branch_to(idx)?;
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
                Val::Local(_, l) => match self.local_reg(l) {
                    Some(home) => self.masm.mov(ret, RegImm::Reg(home), kind.size()),
                    None => {
                        let a = self.local_addr(l);
                        self.masm.load(ret, a, kind.size());
                    }
                },
                Val::Slot(_, s) => {
                    let a = self.slot_addr(s);
                    self.masm.load(ret, a, kind.size());
                }
            }
        } else if n > 1 {
            // Results overwrite the parameter area: stage them in their own slots first so
            // no result reads a parameter that an earlier result already replaced.
            for i in 0..n {
                let v = self.stack[first + i];
                if matches!(v, Val::Local(..) | Val::Slot(..)) {
                    let own = self.slot_addr((first + i) as u32);
                    if v != Val::Slot(v.kind(), (first + i) as u32) {
                        self.store_val(v, own);
                    }
                }
            }
            for i in 0..n {
                let v = self.stack[first + i];
                let dst = Address::Frame(16 + 8 * i as i32);
                let staged = match v {
                    Val::Local(k, _) | Val::Slot(k, _) => Val::Slot(k, (first + i) as u32),
                    other => other,
                };
                self.store_val(staged, dst);
            }
        }
        self.masm.epilogue();
        Ok(())
    }
}
