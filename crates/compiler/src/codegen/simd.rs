//! SIMD (`v128`) operators: which ones the compiler implements, and their code.
//!
//! A `v128` value lives in a vector register (the float class) or in a 16-byte frame slot;
//! it is never a compile-time constant (`v128.const` is materialised at once). Lane
//! semantics stay here; the ISA offers vector primitives (`V128BinOp`, `V128UnOp`, ...).

use super::stack::{Val, ValKind};
use super::FuncCompiler;
use crate::masm::{
    FloatCmp, FloatLanes, FloatUnOp, IntCmp, Lanes, LoadKind, MacroAssembler, OperandSize,
    RegClass, RegImm, StoreKind, V128BinOp, V128Cmp, V128Shift, V128Test, V128UnOp,
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
        O::F32x4Min | O::F32x4RelaxedMin => FMin(F32x4),
        O::F64x2Min | O::F64x2RelaxedMin => FMin(F64x2),
        O::F32x4Max | O::F32x4RelaxedMax => FMax(F32x4),
        O::F64x2Max | O::F64x2RelaxedMax => FMax(F64x2),
        O::I8x16AddSatS => AddSatS(I8x16),
        O::I16x8AddSatS => AddSatS(I16x8),
        O::I8x16AddSatU => AddSatU(I8x16),
        O::I16x8AddSatU => AddSatU(I16x8),
        O::I8x16SubSatS => SubSatS(I8x16),
        O::I16x8SubSatS => SubSatS(I16x8),
        O::I8x16SubSatU => SubSatU(I8x16),
        O::I16x8SubSatU => SubSatU(I16x8),
        O::I8x16MinS => MinS(I8x16),
        O::I16x8MinS => MinS(I16x8),
        O::I32x4MinS => MinS(I32x4),
        O::I8x16MinU => MinU(I8x16),
        O::I16x8MinU => MinU(I16x8),
        O::I32x4MinU => MinU(I32x4),
        O::I8x16MaxS => MaxS(I8x16),
        O::I16x8MaxS => MaxS(I16x8),
        O::I32x4MaxS => MaxS(I32x4),
        O::I8x16MaxU => MaxU(I8x16),
        O::I16x8MaxU => MaxU(I16x8),
        O::I32x4MaxU => MaxU(I32x4),
        O::I8x16AvgrU => AvgrU(I8x16),
        O::I16x8AvgrU => AvgrU(I16x8),
        O::I16x8Q15MulrSatS | O::I16x8RelaxedQ15mulrS => Q15MulrSatS,
        O::I16x8ExtMulLowI8x16S => ext_mul(I16x8, false, true),
        O::I16x8ExtMulHighI8x16S => ext_mul(I16x8, true, true),
        O::I16x8ExtMulLowI8x16U => ext_mul(I16x8, false, false),
        O::I16x8ExtMulHighI8x16U => ext_mul(I16x8, true, false),
        O::I32x4ExtMulLowI16x8S => ext_mul(I32x4, false, true),
        O::I32x4ExtMulHighI16x8S => ext_mul(I32x4, true, true),
        O::I32x4ExtMulLowI16x8U => ext_mul(I32x4, false, false),
        O::I32x4ExtMulHighI16x8U => ext_mul(I32x4, true, false),
        O::I64x2ExtMulLowI32x4S => ext_mul(I64x2, false, true),
        O::I64x2ExtMulHighI32x4S => ext_mul(I64x2, true, true),
        O::I64x2ExtMulLowI32x4U => ext_mul(I64x2, false, false),
        O::I64x2ExtMulHighI32x4U => ext_mul(I64x2, true, false),
        O::I32x4DotI16x8S => Dot,
        O::I8x16NarrowI16x8S => Narrow {
            lanes: I8x16,
            signed: true,
        },
        O::I8x16NarrowI16x8U => Narrow {
            lanes: I8x16,
            signed: false,
        },
        O::I16x8NarrowI32x4S => Narrow {
            lanes: I16x8,
            signed: true,
        },
        O::I16x8NarrowI32x4U => Narrow {
            lanes: I16x8,
            signed: false,
        },
        O::I8x16Swizzle | O::I8x16RelaxedSwizzle => Swizzle,
        _ => return None,
    })
}

fn ext_mul(lanes: Lanes, high: bool, signed: bool) -> V128BinOp {
    V128BinOp::ExtMul {
        lanes,
        high,
        signed,
    }
}

fn extend(lanes: Lanes, high: bool, signed: bool) -> V128UnOp {
    V128UnOp::Extend {
        lanes,
        high,
        signed,
    }
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
        O::F32x4Ceil => FRound(F32x4, FloatUnOp::Ceil),
        O::F64x2Ceil => FRound(F64x2, FloatUnOp::Ceil),
        O::F32x4Floor => FRound(F32x4, FloatUnOp::Floor),
        O::F64x2Floor => FRound(F64x2, FloatUnOp::Floor),
        O::F32x4Trunc => FRound(F32x4, FloatUnOp::Trunc),
        O::F64x2Trunc => FRound(F64x2, FloatUnOp::Trunc),
        O::F32x4Nearest => FRound(F32x4, FloatUnOp::Nearest),
        O::F64x2Nearest => FRound(F64x2, FloatUnOp::Nearest),
        O::I8x16Popcnt => Popcnt,
        O::I16x8ExtAddPairwiseI8x16S => ExtAddPairwise {
            lanes: I16x8,
            signed: true,
        },
        O::I16x8ExtAddPairwiseI8x16U => ExtAddPairwise {
            lanes: I16x8,
            signed: false,
        },
        O::I32x4ExtAddPairwiseI16x8S => ExtAddPairwise {
            lanes: I32x4,
            signed: true,
        },
        O::I32x4ExtAddPairwiseI16x8U => ExtAddPairwise {
            lanes: I32x4,
            signed: false,
        },
        O::I16x8ExtendLowI8x16S => extend(I16x8, false, true),
        O::I16x8ExtendHighI8x16S => extend(I16x8, true, true),
        O::I16x8ExtendLowI8x16U => extend(I16x8, false, false),
        O::I16x8ExtendHighI8x16U => extend(I16x8, true, false),
        O::I32x4ExtendLowI16x8S => extend(I32x4, false, true),
        O::I32x4ExtendHighI16x8S => extend(I32x4, true, true),
        O::I32x4ExtendLowI16x8U => extend(I32x4, false, false),
        O::I32x4ExtendHighI16x8U => extend(I32x4, true, false),
        O::I64x2ExtendLowI32x4S => extend(I64x2, false, true),
        O::I64x2ExtendHighI32x4S => extend(I64x2, true, true),
        O::I64x2ExtendLowI32x4U => extend(I64x2, false, false),
        O::I64x2ExtendHighI32x4U => extend(I64x2, true, false),
        O::F32x4ConvertI32x4S => ConvertI32x4ToF32x4 { signed: true },
        O::F32x4ConvertI32x4U => ConvertI32x4ToF32x4 { signed: false },
        O::F64x2ConvertLowI32x4S => ConvertLowI32x4ToF64x2 { signed: true },
        O::F64x2ConvertLowI32x4U => ConvertLowI32x4ToF64x2 { signed: false },
        O::I32x4TruncSatF32x4S | O::I32x4RelaxedTruncF32x4S => {
            TruncSatF32x4ToI32x4 { signed: true }
        }
        O::I32x4TruncSatF32x4U | O::I32x4RelaxedTruncF32x4U => {
            TruncSatF32x4ToI32x4 { signed: false }
        }
        O::I32x4TruncSatF64x2SZero | O::I32x4RelaxedTruncF64x2SZero => {
            TruncSatF64x2ToI32x4Zero { signed: true }
        }
        O::I32x4TruncSatF64x2UZero | O::I32x4RelaxedTruncF64x2UZero => {
            TruncSatF64x2ToI32x4Zero { signed: false }
        }
        O::F32x4DemoteF64x2Zero => DemoteF64x2Zero,
        O::F64x2PromoteLowF32x4 => PromoteLowF32x4,
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

/// The i32-valued test of a SIMD `op`, if it is one.
fn test(op: &Operator<'_>) -> Option<V128Test> {
    use Lanes::*;
    use Operator as O;
    use V128Test::*;
    Some(match *op {
        O::V128AnyTrue => AnyTrue,
        O::I8x16AllTrue => AllTrue(I8x16),
        O::I16x8AllTrue => AllTrue(I16x8),
        O::I32x4AllTrue => AllTrue(I32x4),
        O::I64x2AllTrue => AllTrue(I64x2),
        O::I8x16Bitmask => Bitmask(I8x16),
        O::I16x8Bitmask => Bitmask(I16x8),
        O::I32x4Bitmask => Bitmask(I32x4),
        O::I64x2Bitmask => Bitmask(I64x2),
        _ => return None,
    })
}

/// The lane-wise shift of a SIMD `op`, if it is one.
fn shift(op: &Operator<'_>) -> Option<V128Shift> {
    use Lanes::*;
    use Operator as O;
    use V128Shift::*;
    Some(match *op {
        O::I8x16Shl => Shl(I8x16),
        O::I16x8Shl => Shl(I16x8),
        O::I32x4Shl => Shl(I32x4),
        O::I64x2Shl => Shl(I64x2),
        O::I8x16ShrS => ShrS(I8x16),
        O::I16x8ShrS => ShrS(I16x8),
        O::I32x4ShrS => ShrS(I32x4),
        O::I64x2ShrS => ShrS(I64x2),
        O::I8x16ShrU => ShrU(I8x16),
        O::I16x8ShrU => ShrU(I16x8),
        O::I32x4ShrU => ShrU(I32x4),
        O::I64x2ShrU => ShrU(I64x2),
        _ => return None,
    })
}

/// The lane shape and scalar kind of a `splat`, `extract_lane` or `replace_lane`.
fn lane_shape(op: &Operator<'_>) -> Option<(Lanes, ValKind)> {
    use Lanes::*;
    use Operator as O;
    Some(match *op {
        O::I8x16Splat
        | O::I8x16ExtractLaneS { .. }
        | O::I8x16ExtractLaneU { .. }
        | O::I8x16ReplaceLane { .. } => (I8x16, ValKind::I32),
        O::I16x8Splat
        | O::I16x8ExtractLaneS { .. }
        | O::I16x8ExtractLaneU { .. }
        | O::I16x8ReplaceLane { .. } => (I16x8, ValKind::I32),
        O::I32x4Splat | O::I32x4ExtractLane { .. } | O::I32x4ReplaceLane { .. } => {
            (I32x4, ValKind::I32)
        }
        O::I64x2Splat | O::I64x2ExtractLane { .. } | O::I64x2ReplaceLane { .. } => {
            (I64x2, ValKind::I64)
        }
        O::F32x4Splat | O::F32x4ExtractLane { .. } | O::F32x4ReplaceLane { .. } => {
            (I32x4, ValKind::F32)
        }
        O::F64x2Splat | O::F64x2ExtractLane { .. } | O::F64x2ReplaceLane { .. } => {
            (I64x2, ValKind::F64)
        }
        _ => return None,
    })
}

/// The load kind of a `v128.load*_splat`, `v128.load*x*_*` or `v128.load*_zero`.
fn special_load(op: &Operator<'_>) -> Option<(MemArg, LoadKind)> {
    use Lanes::*;
    use LoadKind::*;
    use Operator as O;
    Some(match *op {
        O::V128Load8Splat { memarg } => (memarg, V128Splat(I8x16)),
        O::V128Load16Splat { memarg } => (memarg, V128Splat(I16x8)),
        O::V128Load32Splat { memarg } => (memarg, V128Splat(I32x4)),
        O::V128Load64Splat { memarg } => (memarg, V128Splat(I64x2)),
        O::V128Load8x8S { memarg } => (memarg, V128Extend(I16x8, true)),
        O::V128Load8x8U { memarg } => (memarg, V128Extend(I16x8, false)),
        O::V128Load16x4S { memarg } => (memarg, V128Extend(I32x4, true)),
        O::V128Load16x4U { memarg } => (memarg, V128Extend(I32x4, false)),
        O::V128Load32x2S { memarg } => (memarg, V128Extend(I64x2, true)),
        O::V128Load32x2U { memarg } => (memarg, V128Extend(I64x2, false)),
        O::V128Load32Zero { memarg } => (memarg, V128Zero(I32x4)),
        O::V128Load64Zero { memarg } => (memarg, V128Zero(I64x2)),
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
        O::V128Const { .. }
            | O::V128Load { .. }
            | O::V128Store { .. }
            | O::V128Bitselect
            | O::I8x16Shuffle { .. }
            | O::I8x16RelaxedLaneselect
            | O::I16x8RelaxedLaneselect
            | O::I32x4RelaxedLaneselect
            | O::I64x2RelaxedLaneselect
            | O::F32x4RelaxedMadd
            | O::F32x4RelaxedNmadd
            | O::F64x2RelaxedMadd
            | O::F64x2RelaxedNmadd
            | O::I16x8RelaxedDotI8x16I7x16S
            | O::I32x4RelaxedDotI8x16I7x16AddS
    ) || lane_access(op).is_some()
        || binop(op).is_some()
        || unop(op).is_some()
        || cmp(op).is_some()
        || test(op).is_some()
        || shift(op).is_some()
        || lane_shape(op).is_some()
        || special_load(op).is_some()
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
            O::V128Bitselect
            | O::I8x16RelaxedLaneselect
            | O::I16x8RelaxedLaneselect
            | O::I32x4RelaxedLaneselect
            | O::I64x2RelaxedLaneselect => self.v128_bitselect()?,
            O::I8x16Shuffle { lanes } => self.v128_shuffle(lanes)?,
            O::F32x4RelaxedMadd => self.v128_fused(FloatLanes::F32x4, false)?,
            O::F32x4RelaxedNmadd => self.v128_fused(FloatLanes::F32x4, true)?,
            O::F64x2RelaxedMadd => self.v128_fused(FloatLanes::F64x2, false)?,
            O::F64x2RelaxedNmadd => self.v128_fused(FloatLanes::F64x2, true)?,
            O::I16x8RelaxedDotI8x16I7x16S => self.relaxed_dot_i8x16(false)?,
            O::I32x4RelaxedDotI8x16I7x16AddS => self.relaxed_dot_i8x16(true)?,
            O::I8x16Splat
            | O::I16x8Splat
            | O::I32x4Splat
            | O::I64x2Splat
            | O::F32x4Splat
            | O::F64x2Splat => self.v128_splat(op)?,
            O::I8x16ExtractLaneS { lane } | O::I16x8ExtractLaneS { lane } => {
                self.v128_extract_lane(op, lane, true)?
            }
            O::I8x16ExtractLaneU { lane }
            | O::I16x8ExtractLaneU { lane }
            | O::I32x4ExtractLane { lane }
            | O::I64x2ExtractLane { lane }
            | O::F32x4ExtractLane { lane }
            | O::F64x2ExtractLane { lane } => self.v128_extract_lane(op, lane, false)?,
            O::I8x16ReplaceLane { lane }
            | O::I16x8ReplaceLane { lane }
            | O::I32x4ReplaceLane { lane }
            | O::I64x2ReplaceLane { lane }
            | O::F32x4ReplaceLane { lane }
            | O::F64x2ReplaceLane { lane } => self.v128_replace_lane(op, lane)?,
            _ => {
                if let Some((memarg, lanes, lane, store)) = lane_access(op) {
                    self.v128_lane_access(memarg, lanes, lane, store)?;
                } else if let Some(op) = binop(op) {
                    self.v128_binary(op)?;
                } else if let Some(op) = unop(op) {
                    self.v128_unary(op)?;
                } else if let Some(cmp) = cmp(op) {
                    self.v128_compare(cmp)?;
                } else if let Some(test) = test(op) {
                    self.v128_test(test)?;
                } else if let Some(shift) = shift(op) {
                    self.v128_shift(shift)?;
                } else if let Some((memarg, kind)) = special_load(op) {
                    self.load(memarg, kind, ValKind::V128)?;
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
            self.free_heap_address(addr);
            self.free_reg(src);
            self.free_reg(index);
        } else {
            let dst = self.in_reg(v)?;
            let (_, index) = self.pop_read()?;
            let addr = self.heap_address(&memarg, index)?;
            let pc = self.masm.v128_load_lane(dst, addr, lanes, lane);
            self.add_trap(pc, TrapCode::MemoryOutOfBounds);
            self.free_heap_address(addr);
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

    fn v128_test(&mut self, test: V128Test) -> R {
        let a = self.pop()?;
        let src = self.read_reg(a)?;
        if self.next_is_branch && !matches!(test, V128Test::Bitmask(_)) {
            // The next operator is br_if/if: it branches on the test directly.
            self.fused = Some(super::condition::FusedCmp::V128 { test, src });
            self.push(Val::Reg(ValKind::I32, src));
            return Ok(());
        }
        self.free_reg(src);
        let dst = self.alloc(RegClass::Int)?;
        self.masm.v128_test(test, dst, src);
        self.push(Val::Reg(ValKind::I32, dst));
        Ok(())
    }

    fn v128_shift(&mut self, op: V128Shift) -> R {
        let (V128Shift::Shl(lanes) | V128Shift::ShrS(lanes) | V128Shift::ShrU(lanes)) = op;
        let n = self.pop()?;
        let amount = match n {
            Val::Const(_, bits) => RegImm::Imm(bits & i64::from(lanes.bits() - 1)),
            other => RegImm::Reg(self.read_reg(other)?),
        };
        let a = self.pop()?;
        let src = self.read_reg(a)?;
        let dst = self.result_reg(RegClass::Float, &[src])?;
        if amount == RegImm::Imm(0) {
            if dst != src {
                self.masm.mov(dst, RegImm::Reg(src), OperandSize::S128);
            }
        } else {
            self.masm.v128_shift(op, dst, src, amount);
        }
        self.release_operand(amount);
        self.free_reg(src);
        self.push(Val::Reg(ValKind::V128, dst));
        Ok(())
    }

    fn v128_splat(&mut self, op: &Operator<'_>) -> R {
        let (lanes, _) = lane_shape(op).expect("a splat operator");
        let a = self.pop()?;
        let src = self.read_reg(a)?;
        let dst = self.result_reg(RegClass::Float, &[src])?;
        self.masm.v128_splat(dst, src, lanes);
        self.free_reg(src);
        self.push(Val::Reg(ValKind::V128, dst));
        Ok(())
    }

    fn v128_extract_lane(&mut self, op: &Operator<'_>, lane: u8, signed: bool) -> R {
        let (lanes, kind) = lane_shape(op).expect("an extract_lane operator");
        let a = self.pop()?;
        let src = self.read_reg(a)?;
        let dst = self.result_reg(kind.class(), &[src])?;
        self.masm.v128_extract_lane(dst, src, lanes, lane, signed);
        self.free_reg(src);
        self.push(Val::Reg(kind, dst));
        Ok(())
    }

    fn v128_replace_lane(&mut self, op: &Operator<'_>, lane: u8) -> R {
        let (lanes, _) = lane_shape(op).expect("a replace_lane operator");
        let s = self.pop()?;
        let src = self.read_reg(s)?;
        let v = self.pop()?;
        let dst = self.in_reg(v)?;
        self.masm.v128_replace_lane(dst, src, lanes, lane);
        self.free_reg(src);
        self.push(Val::Reg(ValKind::V128, dst));
        Ok(())
    }

    fn v128_shuffle(&mut self, lanes: [u8; 16]) -> R {
        let b = self.pop()?;
        let a = self.pop()?;
        let rhs = self.read_reg(b)?;
        let lhs = self.read_reg(a)?;
        let dst = self.result_reg(RegClass::Float, &[lhs, rhs])?;
        self.masm.v128_shuffle(dst, lhs, rhs, lanes);
        self.free_reg(lhs);
        self.free_reg(rhs);
        self.push(Val::Reg(ValKind::V128, dst));
        Ok(())
    }

    /// Relaxed `madd` (`a * b + c`) and `nmadd` (`c - a * b`), both unfused on every ISA
    /// so results do not depend on the host.
    fn v128_fused(&mut self, lanes: FloatLanes, negate: bool) -> R {
        let c = self.pop()?;
        let b = self.pop()?;
        let a = self.pop()?;
        let addend = self.read_reg(c)?;
        let rhs = self.read_reg(b)?;
        let lhs = self.read_reg(a)?;
        let dst = self.result_reg(RegClass::Float, &[lhs, rhs, addend])?;
        // The product goes to `dst` only if `dst` is not the addend.
        let product = if dst == addend {
            self.alloc(RegClass::Float)?
        } else {
            dst
        };
        self.masm
            .v128_binop(V128BinOp::FMul(lanes), product, lhs, rhs);
        if negate {
            self.masm
                .v128_binop(V128BinOp::FSub(lanes), dst, addend, product);
        } else {
            self.masm
                .v128_binop(V128BinOp::FAdd(lanes), dst, product, addend);
        }
        if product != dst {
            self.free_reg(product);
        }
        self.free_reg(lhs);
        self.free_reg(rhs);
        self.free_reg(addend);
        self.push(Val::Reg(ValKind::V128, dst));
        Ok(())
    }

    /// `i16x8.relaxed_dot_i8x16_i7x16_s` (and with `add`, `i32x4.relaxed_dot_i8x16_i7x16_add_s`):
    /// both operands are taken as signed on every ISA, and the pairwise i16 sums wrap.
    fn relaxed_dot_i8x16(&mut self, add: bool) -> R {
        use Lanes::*;
        let c = if add { Some(self.pop()?) } else { None };
        let b = self.pop()?;
        let a = self.pop()?;
        let rhs = self.read_reg(b)?;
        let lhs = self.read_reg(a)?;
        let high = self.alloc(RegClass::Float)?;
        self.masm
            .v128_binop(ext_mul(I16x8, true, true), high, lhs, rhs);
        let dst = self.result_reg(RegClass::Float, &[lhs, rhs])?;
        self.masm
            .v128_binop(ext_mul(I16x8, false, true), dst, lhs, rhs);
        self.free_reg(lhs);
        self.free_reg(rhs);
        self.masm
            .v128_binop(V128BinOp::AddPairwise(I16x8), dst, dst, high);
        self.free_reg(high);
        if let Some(c) = c {
            self.masm.v128_unop(
                V128UnOp::ExtAddPairwise {
                    lanes: I32x4,
                    signed: true,
                },
                dst,
                dst,
            );
            let addend = self.read_reg(c)?;
            self.masm
                .v128_binop(V128BinOp::Add(I32x4), dst, dst, addend);
            self.free_reg(addend);
        }
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
