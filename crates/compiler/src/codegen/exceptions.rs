//! Exception handling: `try_table`, `throw` and `throw_ref`.
//!
//! Throwing is table-driven and costs nothing until an exception is thrown. `throw` makes
//! the exception object (the `ThrowNew` builtin) and calls the engine's throw landing with
//! it; `throw_ref` calls the landing with its operand. The landing (in the runtime) walks
//! the wasm frames by their frame pointers and looks each return address up in the
//! function's handler sites: every call inside a `try_table` names the innermost region
//! around it, and the runtime tries that region's catch clauses, then its parents', in
//! order, comparing tag identities. A matching clause's landing pad is entered with the
//! frame's frame pointer, its fixed stack pointer and the exnref in the return register.
//!
//! A landing pad is emitted at the `try_table`, before the body (which it jumps over), so
//! it starts from the compile-time state of the block entry: nothing in registers, every
//! local at home. Calls inside a `try_table` keep that true: they also send constant
//! locals home (elsewhere a constant local stays a constant across a call), so whichever
//! call throws, the homes hold the locals. A pad then loads the payload, pushes it (and
//! the exnref for the `_ref` clauses) and branches to the clause's label like `br`.
//!
//! The legacy instructions use the same regions. A `try` opens one; each `catch` or
//! `catch_all` adds a clause whose landing pad is the start of its body, which begins
//! from the `try`'s entry state with the payload pushed. The caught exnref goes to a
//! hidden slot below the block (reserved at the `try`, like an `if`'s hidden parameter
//! copies), where `rethrow` finds it. `delegate` makes the region's parent the region
//! of the `try` (or `try_table`) at its label, or the caller.

use super::control::FrameKind;
use super::stack::{Val, ValKind};
use super::FuncCompiler;
use crate::masm::{Address, MacroAssembler, OperandSize, RegClass, RegImm};
use crate::vmctx::{exn, Builtin};
use crate::{CatchClause, CompileError, TryRegion};
use wasmparser::{BlockType, Catch, TryTable};

impl<M: MacroAssembler> FuncCompiler<'_, M> {
    /// Records the return address `ret` of a call at the current operator: for backtraces,
    /// and as a handler site if the call is inside a `try_table`.
    pub(super) fn record_call(&mut self, ret: u32) {
        self.call_sites.push((ret, self.wasm_offset));
        if let Some(&region) = self.try_stack.last() {
            self.handler_sites.push((ret, region));
        }
    }

    /// Whether the code being compiled is inside a `try_table`.
    pub(super) fn in_try(&self) -> bool {
        !self.try_stack.is_empty()
    }

    pub(super) fn visit_try_table(&mut self, table: &TryTable) -> Result<(), CompileError> {
        let (params, results) = self.block_signature(table.ty)?;
        // The state every landing pad of this block starts from (see the module docs).
        self.spill_regs();
        self.flush_all_locals();
        let base = self.stack.len() - params.len();
        let region = self.new_try_region(table.catches.len());
        if !table.catches.is_empty() {
            let body = self.masm.new_label();
            self.masm.jump(body);
            // No entry is in a register, so the copy owns nothing.
            let entry_stack = self.stack.clone();
            for catch in &table.catches {
                let tag = match *catch {
                    Catch::One { tag, .. } | Catch::OneRef { tag, .. } => Some(tag),
                    Catch::All { .. } | Catch::AllRef { .. } => None,
                };
                self.add_catch_clause(region, tag)?;
                self.emit_landing_pad(catch, base)?;
                // Back to the entry state for the next pad and the body.
                self.stack.clear();
                self.stack.extend_from_slice(&entry_stack);
                self.reset_locals(std::iter::empty());
                self.recount_uses();
                self.reachable = true;
            }
            self.masm.bind(body)?;
        }
        self.push_block_frame(params, results, base, Some(region));
        self.try_stack.push(region);
        Ok(())
    }

    /// A new region inside the innermost one, with room for `catches` clauses.
    fn new_try_region(&mut self, catches: usize) -> u32 {
        let region = self.try_regions.len() as u32;
        self.try_regions.push(TryRegion {
            parent: self.try_stack.last().copied(),
            catches: Vec::with_capacity(catches),
        });
        region
    }

    /// Adds a catch clause for `tag` (`None`: any) to `region`, its landing pad here.
    fn add_catch_clause(&mut self, region: u32, tag: Option<u32>) -> Result<(), CompileError> {
        let pad = self.masm.new_label();
        self.masm.bind(pad)?;
        let clause = CatchClause {
            tag_offset: tag.map(|t| self.info.offsets.tag_ptr(t) as u32),
            pad: self.masm.offset(),
        };
        self.try_regions
            .get_mut(region as usize)
            .ok_or_else(|| CompileError::internal(format!("no try region {region}")))?
            .catches
            .push(clause);
        Ok(())
    }

    /// At a landing pad: the context registers, and the exnref (from the return register)
    /// in a register of its own, returned (one user: the caller).
    fn enter_landing_pad(&mut self) -> Result<crate::masm::Reg, CompileError> {
        self.masm.reload_context();
        let exn = self.alloc(RegClass::Int)?;
        let ret = self.masm.return_reg(RegClass::Int);
        self.masm.mov(exn, RegImm::Reg(ret), OperandSize::S64);
        Ok(exn)
    }

    /// Pushes the payload of the exception in `exn` (of tag `tag`) as registers.
    fn push_payload(&mut self, tag: u32, exn: crate::masm::Reg) -> Result<(), CompileError> {
        let (payload, _) = self.tag_signature(tag)?;
        let mut offset = exn::PAYLOAD;
        for kind in payload {
            let r = self.alloc(kind.class())?;
            self.masm.load(r, Address::Base(exn, offset), kind.size());
            offset += 8 * kind.words() as i32;
            self.push(Val::Reg(kind, r));
        }
        Ok(())
    }

    /// The code of one catch clause, entered by the unwinder (the stack is the block's
    /// entry state, the exnref in the return register): pushes what the clause passes to
    /// its label and branches there.
    fn emit_landing_pad(&mut self, catch: &Catch, base: usize) -> Result<(), CompileError> {
        self.truncate_stack(base);
        let exn_reg = self.enter_landing_pad()?;
        let (tag, label, with_ref) = match *catch {
            Catch::One { tag, label } => (Some(tag), label, false),
            Catch::OneRef { tag, label } => (Some(tag), label, true),
            Catch::All { label } => (None, label, false),
            Catch::AllRef { label } => (None, label, true),
        };
        if let Some(tag) = tag {
            self.push_payload(tag, exn_reg)?;
        }
        if with_ref {
            self.push(Val::Reg(ValKind::Ref, exn_reg));
        } else {
            self.free_reg(exn_reg);
        }
        self.visit_br(label)
    }

    /// The payload kinds of tag `tag` (its type's parameters) and their size in words.
    fn tag_signature(&self, tag: u32) -> Result<(Vec<ValKind>, u32), CompileError> {
        let ty = *self
            .info
            .tags
            .get(tag as usize)
            .ok_or_else(|| CompileError::internal(format!("no tag {tag}")))?;
        let (params, _) = self.signature(ty)?;
        let words = params.iter().map(|k| k.words()).sum();
        Ok((params, words))
    }

    /// `throw $tag`: makes the exception from the payload on the stack, then throws it.
    pub(super) fn visit_throw(&mut self, tag: u32) -> Result<(), CompileError> {
        let (payload, words) = self.tag_signature(tag)?;
        // The payload goes to the outgoing area, as arguments would.
        self.pass_arguments(payload.len(), 0);
        self.spill_all_for_call();
        let area = self.alloc(RegClass::Int)?;
        self.masm.lea(area, Address::Outgoing(0));
        let tag_offset = self.info.offsets.tag_ptr(tag);
        self.masm.call_builtin(
            self.info.offsets.builtin(Builtin::ThrowNew),
            &[
                RegImm::Imm(tag_offset as i64),
                RegImm::Reg(area),
                RegImm::Imm(words as i64),
            ],
        );
        self.free_reg(area);
        let exn = self.masm.return_reg(RegClass::Int);
        self.throw_exn(exn);
        Ok(())
    }

    /// `throw_ref`: throws the exnref on the stack, trapping if it is null.
    pub(super) fn visit_throw_ref(&mut self) -> Result<(), CompileError> {
        let (_, exn) = self.pop_read()?;
        self.spill_all_for_call();
        self.trap_if_null(exn);
        self.throw_exn(exn);
        self.free_reg(exn);
        Ok(())
    }

    /// Calls the throw landing with the exnref in `exn`; the code after it is unreachable.
    fn throw_exn(&mut self, exn: crate::masm::Reg) {
        let landing = self.info.offsets.throw_landing();
        let ret = self.masm.call_throw(landing, exn);
        self.record_call(ret);
        self.set_unreachable();
    }

    /// Legacy `try`: a block whose calls are inside a new region, with a hidden slot for
    /// the exception a `catch` takes (below the parameters, which are copied above it).
    pub(super) fn visit_legacy_try(&mut self, bt: BlockType) -> Result<(), CompileError> {
        let (params, results) = self.block_signature(bt)?;
        // The state the `catch` bodies start from (see the module docs).
        self.spill_regs();
        self.flush_all_locals();
        let n = params.len();
        let first = self.stack.len() - n;
        for pos in first..self.stack.len() {
            self.spill_entry(pos);
        }
        // The exception slot is written by the landing pads before it is read.
        self.push(Val::Slot(ValKind::Ref, (first + n) as u32));
        for (i, &k) in params.iter().enumerate() {
            self.push(Val::Slot(k, (first + i) as u32));
        }
        let region = self.new_try_region(1);
        self.push_block_frame(params, results, first + n + 1, Some(region));
        let frame = self.top_frame_mut()?;
        frame.kind = FrameKind::LegacyTry;
        frame.hidden = n + 1;
        self.try_stack.push(region);
        Ok(())
    }

    /// The innermost control frame.
    fn top_frame_mut(&mut self) -> Result<&mut super::control::Frame, CompileError> {
        self.control
            .last_mut()
            .ok_or_else(|| CompileError::internal("no control frame".into()))
    }

    /// Legacy `catch $tag` (`Some`) or `catch_all` (`None`): ends the body before it (which
    /// joins the block's end) and starts a catch body at a new landing pad.
    pub(super) fn visit_legacy_catch(&mut self, tag: Option<u32>) -> Result<(), CompileError> {
        let idx = self.control.len() - 1;
        let frame = &self.control[idx];
        if frame.dead {
            return Ok(());
        }
        let (kind, base, end) = (frame.kind, frame.base, frame.label);
        let region = frame
            .try_region
            .ok_or_else(|| CompileError::internal("catch outside a try".into()))?;
        let end = end.ok_or_else(|| CompileError::internal("try without end".into()))?;
        if self.reachable {
            self.move_into_frame(idx)?;
            self.masm.jump(end);
            self.control[idx].targeted = true;
        }
        if kind == FrameKind::LegacyTry {
            // The catch bodies are outside the region.
            self.try_stack.pop();
            self.control[idx].kind = FrameKind::LegacyCatch;
        }
        self.truncate_stack(base);
        self.add_catch_clause(region, tag)?;
        // Entered by the unwinder: the state of the `try`'s entry.
        self.reset_locals(std::iter::empty());
        self.recount_uses();
        let exn = self.enter_landing_pad()?;
        let slot = self.slot_addr(exception_slot(base)?);
        self.masm.store(RegImm::Reg(exn), slot, OperandSize::S64);
        if let Some(tag) = tag {
            self.push_payload(tag, exn)?;
        }
        self.free_reg(exn);
        self.reachable = true;
        Ok(())
    }

    /// Legacy `rethrow`: throws again the exception caught by the `catch` body `depth`
    /// frames out.
    pub(super) fn visit_rethrow(&mut self, depth: u32) -> Result<(), CompileError> {
        let idx = self.frame_at_depth(depth)?;
        let slot = self.slot_addr(exception_slot(self.control[idx].base)?);
        self.spill_all_for_call();
        let exn = self.alloc(RegClass::Int)?;
        self.masm.load(exn, slot, OperandSize::S64);
        self.throw_exn(exn);
        self.free_reg(exn);
        Ok(())
    }

    /// Legacy `delegate`: ends the `try`, whose uncaught exceptions go to the handlers at
    /// label `depth` (counted from the block around the `try`): the innermost `try` (in its
    /// body) or `try_table` at or around that label, else the caller.
    pub(super) fn visit_delegate(&mut self, depth: u32) -> Result<(), CompileError> {
        let idx = self.control.len() - 1;
        if let (false, Some(region)) = (self.control[idx].dead, self.control[idx].try_region) {
            let target = self.frame_at_depth(depth.saturating_add(1))?;
            let parent = self.control[..=target]
                .iter()
                .rev()
                .find_map(|f| match f.kind {
                    FrameKind::Block | FrameKind::LegacyTry => f.try_region,
                    _ => None,
                });
            if let Some(r) = self.try_regions.get_mut(region as usize) {
                r.parent = parent;
            }
        }
        self.visit_end()
    }
}

/// The stack position of the hidden exception slot of a legacy `try` whose body starts at
/// `base` (just below it).
fn exception_slot(base: usize) -> Result<u32, CompileError> {
    base.checked_sub(1)
        .map(|s| s as u32)
        .ok_or_else(|| CompileError::internal("legacy try without its exception slot".into()))
}
