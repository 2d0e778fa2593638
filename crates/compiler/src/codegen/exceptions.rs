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

use super::stack::{Val, ValKind};
use super::FuncCompiler;
use crate::masm::{Address, MacroAssembler, OperandSize, RegClass, RegImm};
use crate::vmctx::{exn, Builtin};
use crate::{CatchClause, CompileError, TryRegion};
use wasmparser::{Catch, TryTable};

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
        let region = self.try_regions.len() as u32;
        self.try_regions.push(TryRegion {
            parent: self.try_stack.last().copied(),
            catches: Vec::with_capacity(table.catches.len()),
        });
        if !table.catches.is_empty() {
            let body = self.masm.new_label();
            self.masm.jump(body);
            // No entry is in a register, so the copy owns nothing.
            let entry_stack = self.stack.clone();
            for catch in &table.catches {
                let pad = self.masm.new_label();
                self.masm.bind(pad)?;
                let pad_offset = self.masm.offset();
                let tag_offset = match *catch {
                    Catch::One { tag, .. } | Catch::OneRef { tag, .. } => {
                        Some(self.info.offsets.tag_ptr(tag) as u32)
                    }
                    Catch::All { .. } | Catch::AllRef { .. } => None,
                };
                self.try_regions[region as usize].catches.push(CatchClause {
                    tag_offset,
                    pad: pad_offset,
                });
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

    /// The code of one catch clause, entered by the unwinder (the stack is the block's
    /// entry state, the exnref in the return register): pushes what the clause passes to
    /// its label and branches there.
    fn emit_landing_pad(&mut self, catch: &Catch, base: usize) -> Result<(), CompileError> {
        self.masm.reload_context();
        self.truncate_stack(base);
        let exn_reg = self.alloc(RegClass::Int)?;
        let ret = self.masm.return_reg(RegClass::Int);
        self.masm.mov(exn_reg, RegImm::Reg(ret), OperandSize::S64);
        let (tag, label, with_ref) = match *catch {
            Catch::One { tag, label } => (Some(tag), label, false),
            Catch::OneRef { tag, label } => (Some(tag), label, true),
            Catch::All { label } => (None, label, false),
            Catch::AllRef { label } => (None, label, true),
        };
        if let Some(tag) = tag {
            let (payload, _) = self.tag_signature(tag)?;
            let mut offset = exn::PAYLOAD;
            for kind in payload {
                let r = self.alloc(kind.class())?;
                self.masm
                    .load(r, Address::Base(exn_reg, offset), kind.size());
                offset += 8 * kind.words() as i32;
                self.push(Val::Reg(kind, r));
            }
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
            .ok_or_else(|| CompileError::Internal(format!("no tag {tag}")))?;
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
}
