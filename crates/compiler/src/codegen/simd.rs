//! SIMD (`v128`) operators: which ones the compiler implements, and their code.
//!
//! A `v128` value lives in a vector register (the float class) or in a 16-byte frame slot;
//! it is never a compile-time constant (`v128.const` is materialised at once). Lane
//! semantics stay here; the ISA offers vector primitives (`V128BinOp`, `V128UnOp`, ...).

use super::stack::{Val, ValKind};
use super::FuncCompiler;
use crate::masm::{Lanes, LoadKind, MacroAssembler, RegClass, StoreKind, V128BinOp, V128UnOp};
use crate::CompileError;
use wasmparser::Operator;

type R = Result<(), CompileError>;

/// The binary operator of a lane-wise SIMD `op`, if it is one.
fn binop(op: &Operator<'_>) -> Option<V128BinOp> {
    use Lanes::*;
    use Operator as O;
    use V128BinOp::*;
    Some(match *op {
        O::V128And => And,
        O::V128Or => Or,
        O::V128Xor => Xor,
        O::V128AndNot => AndNot,
        O::I8x16Add => Add(I8x16),
        O::I16x8Add => Add(I16x8),
        O::I32x4Add => Add(I32x4),
        O::I64x2Add => Add(I64x2),
        O::I8x16Sub => Sub(I8x16),
        O::I16x8Sub => Sub(I16x8),
        O::I32x4Sub => Sub(I32x4),
        O::I64x2Sub => Sub(I64x2),
        O::I16x8Mul => Mul(I16x8),
        O::I32x4Mul => Mul(I32x4),
        _ => return None,
    })
}

/// The unary operator of a lane-wise SIMD `op`, if it is one.
fn unop(op: &Operator<'_>) -> Option<V128UnOp> {
    use Lanes::*;
    use Operator as O;
    Some(match *op {
        O::V128Not => V128UnOp::Not,
        O::I8x16Neg => V128UnOp::Neg(I8x16),
        O::I16x8Neg => V128UnOp::Neg(I16x8),
        O::I32x4Neg => V128UnOp::Neg(I32x4),
        O::I64x2Neg => V128UnOp::Neg(I64x2),
        _ => return None,
    })
}

/// Whether the compiler implements the SIMD operator `op` (asked by both the compiling
/// walk and `validate_function`, so they agree).
pub(crate) fn supported(op: &Operator<'_>) -> bool {
    use Operator as O;
    matches!(
        op,
        O::V128Const { .. } | O::V128Load { .. } | O::V128Store { .. } | O::V128Bitselect
    ) || binop(op).is_some()
        || unop(op).is_some()
}

impl<M: MacroAssembler> FuncCompiler<'_, M> {
    /// Emits a SIMD operator if it is one the compiler implements; returns whether it was.
    pub(super) fn emit_simd(&mut self, op: &Operator<'_>) -> Result<bool, CompileError> {
        use Operator as O;
        match *op {
            O::V128Const { value } => {
                let r = self.alloc(RegClass::Float)?;
                self.masm.v128_const(r, value.i128() as u128);
                self.push(Val::Reg(ValKind::V128, r));
            }
            O::V128Load { memarg } => self.load(memarg, LoadKind::V128, ValKind::V128)?,
            O::V128Store { memarg } => self.store(memarg, StoreKind::V128)?,
            O::V128Bitselect => self.v128_bitselect()?,
            _ => {
                if let Some(op) = binop(op) {
                    self.v128_binary(op)?;
                } else if let Some(op) = unop(op) {
                    self.v128_unary(op)?;
                } else {
                    return Ok(false);
                }
            }
        }
        Ok(true)
    }

    fn v128_binary(&mut self, op: V128BinOp) -> R {
        let b = self.pop()?;
        let a = self.pop()?;
        let rhs = self.read_reg(b)?;
        let lhs = self.read_reg(a)?;
        let dst = self.result_reg(RegClass::Float, &[lhs, rhs])?;
        self.masm.v128_binop(op, dst, lhs, rhs);
        self.free_reg(lhs);
        self.free_reg(rhs);
        self.push(Val::Reg(ValKind::V128, dst));
        Ok(())
    }

    fn v128_unary(&mut self, op: V128UnOp) -> R {
        let a = self.pop()?;
        let src = self.read_reg(a)?;
        let dst = self.result_reg(RegClass::Float, &[src])?;
        self.masm.v128_unop(op, dst, src);
        self.free_reg(src);
        self.push(Val::Reg(ValKind::V128, dst));
        Ok(())
    }

    fn v128_bitselect(&mut self) -> R {
        let c = self.pop()?;
        let b = self.pop()?;
        let a = self.pop()?;
        let mask = self.read_reg(c)?;
        let if_clear = self.read_reg(b)?;
        let if_set = self.read_reg(a)?;
        let dst = self.result_reg(RegClass::Float, &[if_set, if_clear, mask])?;
        self.masm.v128_bitselect(dst, if_set, if_clear, mask);
        self.free_reg(mask);
        self.free_reg(if_clear);
        self.free_reg(if_set);
        self.push(Val::Reg(ValKind::V128, dst));
        Ok(())
    }
}
