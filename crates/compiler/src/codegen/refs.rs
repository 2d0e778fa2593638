//! Typed function references: `ref.as_non_null`, `br_on_null` and `br_on_non_null`
//! (`call_ref` is with the other calls in `calls.rs`). A reference is one pointer-sized
//! word, null being 0, whatever its static type.

use super::condition::FusedCmp;
use super::stack::{Val, ValKind};
use super::FuncCompiler;
use crate::masm::{IntCmp, MacroAssembler, OperandSize, RegClass, RegImm};
use crate::{CompileError, TrapCode};

impl<M: MacroAssembler> FuncCompiler<'_, M> {
    /// Traps with [`TrapCode::NullReference`] if the reference in `r` is null.
    pub(super) fn trap_if_null(&mut self, r: crate::masm::Reg) {
        let pc = self.masm.trap_if(
            IntCmp::Eq,
            r,
            RegImm::Imm(0),
            OperandSize::S64,
            TrapCode::NullReference,
        );
        self.add_trap(pc, TrapCode::NullReference);
    }

    /// `ref.as_non_null`: traps with [`TrapCode::NullReference`] on null; the reference
    /// stays on the stack (in a register).
    pub(super) fn visit_ref_as_non_null(&mut self) -> Result<(), CompileError> {
        let v = self.pop()?;
        let r = self.read_reg(v)?;
        self.trap_if_null(r);
        self.push(Val::Reg(ValKind::Ref, r));
        Ok(())
    }

    /// Pushes a fused comparison of a copy of `v` (a reference) with null, as the
    /// condition for `br_if`: true when `cc` (`Eq`: is null, `Ne`: is not).
    fn push_null_test(&mut self, v: Val, cc: IntCmp) -> Result<(), CompileError> {
        // A register of its own: the branch frees the condition's register.
        let r = self.alloc(RegClass::Int)?;
        match v {
            Val::Const(_, bits) => self.masm.mov(r, RegImm::Imm(bits), OperandSize::S64),
            Val::Reg(_, x) => self.masm.mov(r, RegImm::Reg(x), OperandSize::S64),
            Val::Slot(_, s) => {
                let src = self.slot_addr(s);
                self.masm.load(r, src, OperandSize::S64);
            }
        }
        self.push(Val::Reg(ValKind::I32, r));
        self.fused = Some(FusedCmp::Int {
            cc,
            lhs: r,
            rhs: RegImm::Imm(0),
            size: OperandSize::S64,
        });
        Ok(())
    }

    /// `br_on_null l`: branches to `l` (without the reference) if the reference on top is
    /// null, else leaves it on the stack.
    pub(super) fn visit_br_on_null(&mut self, depth: u32) -> Result<(), CompileError> {
        // The reference waits in its own slot, above every value the branch carries, so
        // the branch's moves leave it alone.
        let pos = self.stack.len() - 1;
        self.spill_entry(pos);
        let v = self.pop()?;
        self.push_null_test(v, IntCmp::Eq)?;
        self.visit_br_if(depth)?;
        self.push(v);
        Ok(())
    }

    /// `br_on_non_null l`: branches to `l` (with the reference) if the reference on top is
    /// not null, else drops it.
    pub(super) fn visit_br_on_non_null(&mut self, depth: u32) -> Result<(), CompileError> {
        let v = *self
            .stack
            .last()
            .ok_or_else(|| CompileError::internal("value stack underflow".into()))?;
        self.push_null_test(v, IntCmp::Ne)?;
        self.visit_br_if(depth)?;
        let v = self.pop()?;
        self.release(v);
        Ok(())
    }
}
