//! Compare-and-branch fusion.
//!
//! When a comparison (integer, `eqz`, float, or a v128 `any_true`/`all_true`) is immediately
//! followed by `br_if` or `if`,
//! the comparison is not materialised as 0/1: its operands stay in registers and the branch
//! becomes one compare + conditional jump. The driver peeks at the next operator to decide;
//! the stack holds a placeholder for the condition, which only the branch consumes.

use super::stack::Val;
use super::FuncCompiler;
use crate::masm::{FloatCmp, IntCmp, Label, MacroAssembler, OperandSize, Reg, RegImm, V128Test};
use crate::CompileError;

/// A comparison waiting for the branch that consumes it.
#[derive(Debug, Clone, Copy)]
pub(crate) enum FusedCmp {
    Int {
        cc: IntCmp,
        lhs: Reg,
        rhs: RegImm,
        size: OperandSize,
    },
    Float {
        cc: FloatCmp,
        lhs: Reg,
        rhs: Reg,
        size: OperandSize,
    },
    /// `v128.any_true` or `*.all_true` of a vector register.
    V128 { test: V128Test, src: Reg },
}

impl FusedCmp {
    /// The register the placeholder stack entry names.
    fn placeholder(&self) -> Reg {
        match *self {
            FusedCmp::Int { lhs, .. } | FusedCmp::Float { lhs, .. } => lhs,
            FusedCmp::V128 { src, .. } => src,
        }
    }
}

/// A branch condition: a register holding an i32 (non-zero = true) or a fused comparison.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Condition {
    Value(Reg),
    Compare(FusedCmp),
}

/// The comparison that is true exactly when `cc` is false.
pub(super) fn inverse(cc: IntCmp) -> IntCmp {
    match cc {
        IntCmp::Eq => IntCmp::Ne,
        IntCmp::Ne => IntCmp::Eq,
        IntCmp::LtS => IntCmp::GeS,
        IntCmp::GeS => IntCmp::LtS,
        IntCmp::LtU => IntCmp::GeU,
        IntCmp::GeU => IntCmp::LtU,
        IntCmp::GtS => IntCmp::LeS,
        IntCmp::LeS => IntCmp::GtS,
        IntCmp::GtU => IntCmp::LeU,
        IntCmp::LeU => IntCmp::GtU,
    }
}

impl<M: MacroAssembler> FuncCompiler<'_, M> {
    /// Pops the condition of a `br_if`/`if`.
    pub(super) fn pop_condition(&mut self) -> Result<Condition, CompileError> {
        let v = self.pop()?;
        if let Some(f) = self.fused.take() {
            if v == Val::Reg(super::stack::ValKind::I32, f.placeholder()) {
                return Ok(Condition::Compare(f));
            }
            return Err(CompileError::internal("fused comparison lost".into()));
        }
        Ok(Condition::Value(self.read_reg(v)?))
    }

    /// Branches to `target` when `cond` is `when`, then frees its registers.
    pub(super) fn branch_on(&mut self, cond: Condition, when: bool, target: Label) {
        match cond {
            Condition::Value(r) => {
                let cc = if when { IntCmp::Ne } else { IntCmp::Eq };
                self.masm
                    .cmp_branch(cc, r, RegImm::Imm(0), OperandSize::S32, target);
                self.free_reg(r);
            }
            Condition::Compare(FusedCmp::Int { cc, lhs, rhs, size }) => {
                let cc = if when { cc } else { inverse(cc) };
                self.masm.cmp_branch(cc, lhs, rhs, size, target);
                self.free_reg(lhs);
                self.release_operand(rhs);
            }
            Condition::Compare(FusedCmp::Float { cc, lhs, rhs, size }) => {
                if when {
                    self.masm.float_cmp_branch(cc, lhs, rhs, size, target);
                } else {
                    self.masm.float_cmp_branch_not(cc, lhs, rhs, size, target);
                }
                self.free_reg(lhs);
                self.free_reg(rhs);
            }
            Condition::Compare(FusedCmp::V128 { test, src }) => {
                self.masm.v128_test_branch(test, src, when, target);
                self.free_reg(src);
            }
        }
    }
}
