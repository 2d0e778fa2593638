//! SIMD (`v128`) operators: which ones the compiler implements, and their code.
//!
//! A `v128` value lives in a vector register (the float class) or in a 16-byte frame slot;
//! it is never a compile-time constant (`v128.const` is materialised at once). Lane
//! semantics stay here; the ISA offers vector primitives (`V128BinOp`, `V128UnOp`, ...).

use super::stack::{Val, ValKind};
use super::FuncCompiler;
use crate::masm::{
    FloatCmp, FloatLanes, IntCmp, Lanes, LoadKind, MacroAssembler, RegClass, StoreKind, V128BinOp,
    V128Cmp, V128UnOp,
};
use crate::{CompileError, TrapCode};
use wasmparser::{MemArg, Operator};

type R = Result<(), CompileError>;

/// The binary operator of a lane-wise SIMD `op`, if it is one.
fn binop(op: &Operator<'_>) -> Option<V128BinOp> {
    use FloatLanes::*;
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
        O::I64x2Mul => Mul(I64x2),
        O::F32x4Add => FAdd(F32x4),
        O::F64x2Add => FAdd(F64x2),
        O::F32x4Sub => FSub(F32x4),
        O::F64x2Sub => FSub(F64x2),
        O::F32x4Mul => FMul(F32x4),
        O::F64x2Mul => FMul(F64x2),
        O::F32x4Div => FDiv(F32x4),
        O::F64x2Div => FDiv(F64x2),
        O::F32x4PMin => FPMin(F32x4),
        O::F64x2PMin => FPMin(F64x2),
        O::F32x4PMax => FPMax(F32x4),
        O::F64x2PMax => FPMax(F64x2),
        _ => return None,
    })
}

/// The unary operator of a lane-wise SIMD `op`, if it is one.
fn unop(op: &Operator<'_>) -> Option<V128UnOp> {
    use FloatLanes::*;
    use Lanes::*;
    use Operator as O;
    use V128UnOp::*;
    Some(match *op {
        O::V128Not => Not,
        O::I8x16Neg => Neg(I8x16),
        O::I16x8Neg => Neg(I16x8),
        O::I32x4Neg => Neg(I32x4),
        O::I64x2Neg => Neg(I64x2),
        O::I8x16Abs => Abs(I8x16),
        O::I16x8Abs => Abs(I16x8),
        O::I32x4Abs => Abs(I32x4),
        O::I64x2Abs => Abs(I64x2),
        O::F32x4Neg => FNeg(F32x4),
        O::F64x2Neg => FNeg(F64x2),
        O::F32x4Abs => FAbs(F32x4),
        O::F64x2Abs => FAbs(F64x2),
        O::F32x4Sqrt => FSqrt(F32x4),
        O::F64x2Sqrt => FSqrt(F64x2),
        _ => return None,
    })
}

/// The lane-wise comparison of a SIMD `op`, if it is one.
fn cmp(op: &Operator<'_>) -> Option<V128Cmp> {
    use FloatLanes::*;
    use Lanes::*;
    use Operator as O;
    use V128Cmp::{Float, Int};
    Some(match *op {
        O::I8x16Eq => Int(I8x16, IntCmp::Eq),
        O::I8x16Ne => Int(I8x16, IntCmp::Ne),
        O::I8x16LtS => Int(I8x16, IntCmp::LtS),
        O::I8x16LtU => Int(I8x16, IntCmp::LtU),
        O::I8x16GtS => Int(I8x16, IntCmp::GtS),
        O::I8x16GtU => Int(I8x16, IntCmp::GtU),
        O::I8x16LeS => Int(I8x16, IntCmp::LeS),
        O::I8x16LeU => Int(I8x16, IntCmp::LeU),
        O::I8x16GeS => Int(I8x16, IntCmp::GeS),
        O::I8x16GeU => Int(I8x16, IntCmp::GeU),
        O::I16x8Eq => Int(I16x8, IntCmp::Eq),
        O::I16x8Ne => Int(I16x8, IntCmp::Ne),
        O::I16x8LtS => Int(I16x8, IntCmp::LtS),
        O::I16x8LtU => Int(I16x8, IntCmp::LtU),
        O::I16x8GtS => Int(I16x8, IntCmp::GtS),
        O::I16x8GtU => Int(I16x8, IntCmp::GtU),
        O::I16x8LeS => Int(I16x8, IntCmp::LeS),
        O::I16x8LeU => Int(I16x8, IntCmp::LeU),
        O::I16x8GeS => Int(I16x8, IntCmp::GeS),
        O::I16x8GeU => Int(I16x8, IntCmp::GeU),
        O::I32x4Eq => Int(I32x4, IntCmp::Eq),
        O::I32x4Ne => Int(I32x4, IntCmp::Ne),
        O::I32x4LtS => Int(I32x4, IntCmp::LtS),
        O::I32x4LtU => Int(I32x4, IntCmp::LtU),
        O::I32x4GtS => Int(I32x4, IntCmp::GtS),
        O::I32x4GtU => Int(I32x4, IntCmp::GtU),
        O::I32x4LeS => Int(I32x4, IntCmp::LeS),
        O::I32x4LeU => Int(I32x4, IntCmp::LeU),
        O::I32x4GeS => Int(I32x4, IntCmp::GeS),
        O::I32x4GeU => Int(I32x4, IntCmp::GeU),
        O::I64x2Eq => Int(I64x2, IntCmp::Eq),
        O::I64x2Ne => Int(I64x2, IntCmp::Ne),
        O::I64x2LtS => Int(I64x2, IntCmp::LtS),
        O::I64x2GtS => Int(I64x2, IntCmp::GtS),
        O::I64x2LeS => Int(I64x2, IntCmp::LeS),
        O::I64x2GeS => Int(I64x2, IntCmp::GeS),
        O::F32x4Eq => Float(F32x4, FloatCmp::Eq),
        O::F32x4Ne => Float(F32x4, FloatCmp::Ne),
        O::F32x4Lt => Float(F32x4, FloatCmp::Lt),
        O::F32x4Gt => Float(F32x4, FloatCmp::Gt),
        O::F32x4Le => Float(F32x4, FloatCmp::Le),
        O::F32x4Ge => Float(F32x4, FloatCmp::Ge),
        O::F64x2Eq => Float(F64x2, FloatCmp::Eq),
        O::F64x2Ne => Float(F64x2, FloatCmp::Ne),
        O::F64x2Lt => Float(F64x2, FloatCmp::Lt),
        O::F64x2Gt => Float(F64x2, FloatCmp::Gt),
        O::F64x2Le => Float(F64x2, FloatCmp::Le),
        O::F64x2Ge => Float(F64x2, FloatCmp::Ge),
        _ => return None,
    })
}

/// The memory operand, lane shape, lane and direction (`true`: store) of a lane load or
/// store.
fn lane_access(op: &Operator<'_>) -> Option<(MemArg, Lanes, u8, bool)> {
    use Lanes::*;
    use Operator as O;
    Some(match *op {
        O::V128Load8Lane { memarg, lane } => (memarg, I8x16, lane, false),
        O::V128Load16Lane { memarg, lane } => (memarg, I16x8, lane, false),
        O::V128Load32Lane { memarg, lane } => (memarg, I32x4, lane, false),
        O::V128Load64Lane { memarg, lane } => (memarg, I64x2, lane, false),
        O::V128Store8Lane { memarg, lane } => (memarg, I8x16, lane, true),
        O::V128Store16Lane { memarg, lane } => (memarg, I16x8, lane, true),
        O::V128Store32Lane { memarg, lane } => (memarg, I32x4, lane, true),
        O::V128Store64Lane { memarg, lane } => (memarg, I64x2, lane, true),
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
    ) || lane_access(op).is_some()
        || binop(op).is_some()
        || unop(op).is_some()
        || cmp(op).is_some()
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
                if let Some((memarg, lanes, lane, store)) = lane_access(op) {
                    self.v128_lane_access(memarg, lanes, lane, store)?;
                } else if let Some(op) = binop(op) {
                    self.v128_binary(op)?;
                } else if let Some(op) = unop(op) {
                    self.v128_unary(op)?;
                } else if let Some(cmp) = cmp(op) {
                    self.v128_compare(cmp)?;
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

    /// `v128.loadN_lane` / `v128.storeN_lane`: operands `[address, vector]`.
    fn v128_lane_access(&mut self, memarg: MemArg, lanes: Lanes, lane: u8, store: bool) -> R {
        let v = self.pop()?;
        if store {
            let src = self.read_reg(v)?;
            let (_, index) = self.pop_read()?;
            let addr = self.heap_address(&memarg, index)?;
            let pc = self.masm.v128_store_lane(src, addr, lanes, lane);
            self.add_trap(pc, TrapCode::MemoryOutOfBounds);
            self.free_reg(src);
            self.free_reg(index);
        } else {
            let dst = self.in_reg(v)?;
            let (_, index) = self.pop_read()?;
            let addr = self.heap_address(&memarg, index)?;
            let pc = self.masm.v128_load_lane(dst, addr, lanes, lane);
            self.add_trap(pc, TrapCode::MemoryOutOfBounds);
            self.free_reg(index);
            self.push(Val::Reg(ValKind::V128, dst));
        }
        Ok(())
    }

    fn v128_compare(&mut self, cmp: V128Cmp) -> R {
        let b = self.pop()?;
        let a = self.pop()?;
        let rhs = self.read_reg(b)?;
        let lhs = self.read_reg(a)?;
        let dst = self.result_reg(RegClass::Float, &[lhs, rhs])?;
        self.masm.v128_cmp(cmp, dst, lhs, rhs);
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
