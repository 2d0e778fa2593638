//! Numeric operators: integer arithmetic, comparisons, conversions. Operations on two
//! constants that cannot trap are folded at compile time.

use super::stack::{Val, ValKind};
use super::FuncCompiler;
use crate::masm::{
    AluOp, DivKind, Extend, FloatBinOp, FloatCmp, FloatUnOp, IntCmp, IntUnary, MacroAssembler,
    RegClass, RegImm, ShiftOp,
};
use crate::{CompileError, TrapCode};
use wasmparser::Operator;

type R = Result<(), CompileError>;

/// Sign-extends an i32 result to the 64-bit constant representation.
fn norm(kind: ValKind, v: i64) -> i64 {
    if kind == ValKind::I32 {
        v as i32 as i64
    } else {
        v
    }
}

fn fold_alu(op: AluOp, kind: ValKind, a: i64, b: i64) -> i64 {
    let v = match op {
        AluOp::Add => a.wrapping_add(b),
        AluOp::Sub => a.wrapping_sub(b),
        AluOp::Mul => a.wrapping_mul(b),
        AluOp::And => a & b,
        AluOp::Or => a | b,
        AluOp::Xor => a ^ b,
    };
    norm(kind, v)
}

fn fold_shift(op: ShiftOp, kind: ValKind, a: i64, b: i64) -> i64 {
    if kind == ValKind::I32 {
        let (a, b) = (a as i32, (b & 31) as u32);
        (match op {
            ShiftOp::Shl => a.wrapping_shl(b),
            ShiftOp::ShrS => a >> b,
            ShiftOp::ShrU => ((a as u32) >> b) as i32,
            ShiftOp::Rotl => (a as u32).rotate_left(b) as i32,
            ShiftOp::Rotr => (a as u32).rotate_right(b) as i32,
        }) as i64
    } else {
        let b = (b & 63) as u32;
        match op {
            ShiftOp::Shl => a.wrapping_shl(b),
            ShiftOp::ShrS => a >> b,
            ShiftOp::ShrU => ((a as u64) >> b) as i64,
            ShiftOp::Rotl => (a as u64).rotate_left(b) as i64,
            ShiftOp::Rotr => (a as u64).rotate_right(b) as i64,
        }
    }
}

fn fold_cmp(cc: IntCmp, kind: ValKind, a: i64, b: i64) -> i64 {
    let (sa, sb, ua, ub) = if kind == ValKind::I32 {
        (
            a as i32 as i64,
            b as i32 as i64,
            a as u32 as u64,
            b as u32 as u64,
        )
    } else {
        (a, b, a as u64, b as u64)
    };
    (match cc {
        IntCmp::Eq => ua == ub,
        IntCmp::Ne => ua != ub,
        IntCmp::LtS => sa < sb,
        IntCmp::LtU => ua < ub,
        IntCmp::GtS => sa > sb,
        IntCmp::GtU => ua > ub,
        IntCmp::LeS => sa <= sb,
        IntCmp::LeU => ua <= ub,
        IntCmp::GeS => sa >= sb,
        IntCmp::GeU => ua >= ub,
    }) as i64
}

/// The comparison with its operands swapped (`a < b` is `b > a`).
fn swapped(cc: IntCmp) -> IntCmp {
    match cc {
        IntCmp::Eq | IntCmp::Ne => cc,
        IntCmp::LtS => IntCmp::GtS,
        IntCmp::LtU => IntCmp::GtU,
        IntCmp::GtS => IntCmp::LtS,
        IntCmp::GtU => IntCmp::LtU,
        IntCmp::LeS => IntCmp::GeS,
        IntCmp::LeU => IntCmp::GeU,
        IntCmp::GeS => IntCmp::LeS,
        IntCmp::GeU => IntCmp::LeU,
    }
}

fn fold_unary(op: IntUnary, kind: ValKind, a: i64) -> i64 {
    if kind == ValKind::I32 {
        let a = a as u32;
        (match op {
            IntUnary::Clz => a.leading_zeros(),
            IntUnary::Ctz => a.trailing_zeros(),
            IntUnary::Popcnt => a.count_ones(),
        }) as i64
    } else {
        let a = a as u64;
        (match op {
            IntUnary::Clz => a.leading_zeros(),
            IntUnary::Ctz => a.trailing_zeros(),
            IntUnary::Popcnt => a.count_ones(),
        }) as i64
    }
}

fn fold_extend(kind: Extend, a: i64) -> i64 {
    match kind {
        Extend::I32From8S | Extend::I64From8S => a as i8 as i64,
        Extend::I32From16S | Extend::I64From16S => a as i16 as i64,
        Extend::I64From32S | Extend::I32Wrap => a as i32 as i64,
        Extend::I64From32U => a as u32 as i64,
    }
}

impl<M: MacroAssembler> FuncCompiler<'_, M> {
    /// Emits a numeric operator if `op` is one this compiler implements; returns whether it was.
    pub(super) fn emit_numeric(&mut self, op: &Operator<'_>) -> Result<bool, CompileError> {
        use Operator as O;
        use ValKind::*;
        match *op {
            O::I32Add => self.alu(I32, AluOp::Add)?,
            O::I32Sub => self.alu(I32, AluOp::Sub)?,
            O::I32Mul => self.alu(I32, AluOp::Mul)?,
            O::I32And => self.alu(I32, AluOp::And)?,
            O::I32Or => self.alu(I32, AluOp::Or)?,
            O::I32Xor => self.alu(I32, AluOp::Xor)?,
            O::I64Add => self.alu(I64, AluOp::Add)?,
            O::I64Sub => self.alu(I64, AluOp::Sub)?,
            O::I64Mul => self.alu(I64, AluOp::Mul)?,
            O::I64And => self.alu(I64, AluOp::And)?,
            O::I64Or => self.alu(I64, AluOp::Or)?,
            O::I64Xor => self.alu(I64, AluOp::Xor)?,
            O::I32Shl => self.shift(I32, ShiftOp::Shl)?,
            O::I32ShrS => self.shift(I32, ShiftOp::ShrS)?,
            O::I32ShrU => self.shift(I32, ShiftOp::ShrU)?,
            O::I32Rotl => self.shift(I32, ShiftOp::Rotl)?,
            O::I32Rotr => self.shift(I32, ShiftOp::Rotr)?,
            O::I64Shl => self.shift(I64, ShiftOp::Shl)?,
            O::I64ShrS => self.shift(I64, ShiftOp::ShrS)?,
            O::I64ShrU => self.shift(I64, ShiftOp::ShrU)?,
            O::I64Rotl => self.shift(I64, ShiftOp::Rotl)?,
            O::I64Rotr => self.shift(I64, ShiftOp::Rotr)?,
            O::I32DivS => self.div(I32, DivKind::DivS)?,
            O::I32DivU => self.div(I32, DivKind::DivU)?,
            O::I32RemS => self.div(I32, DivKind::RemS)?,
            O::I32RemU => self.div(I32, DivKind::RemU)?,
            O::I64DivS => self.div(I64, DivKind::DivS)?,
            O::I64DivU => self.div(I64, DivKind::DivU)?,
            O::I64RemS => self.div(I64, DivKind::RemS)?,
            O::I64RemU => self.div(I64, DivKind::RemU)?,
            O::I32Clz => self.unary(I32, IntUnary::Clz)?,
            O::I32Ctz => self.unary(I32, IntUnary::Ctz)?,
            O::I32Popcnt => self.unary(I32, IntUnary::Popcnt)?,
            O::I64Clz => self.unary(I64, IntUnary::Clz)?,
            O::I64Ctz => self.unary(I64, IntUnary::Ctz)?,
            O::I64Popcnt => self.unary(I64, IntUnary::Popcnt)?,
            O::I32Eqz => {
                self.push(Val::Const(I32, 0));
                self.compare(I32, IntCmp::Eq)?
            }
            O::I64Eqz => {
                self.push(Val::Const(I64, 0));
                self.compare(I64, IntCmp::Eq)?
            }
            O::I32Eq => self.compare(I32, IntCmp::Eq)?,
            O::I32Ne => self.compare(I32, IntCmp::Ne)?,
            O::I32LtS => self.compare(I32, IntCmp::LtS)?,
            O::I32LtU => self.compare(I32, IntCmp::LtU)?,
            O::I32GtS => self.compare(I32, IntCmp::GtS)?,
            O::I32GtU => self.compare(I32, IntCmp::GtU)?,
            O::I32LeS => self.compare(I32, IntCmp::LeS)?,
            O::I32LeU => self.compare(I32, IntCmp::LeU)?,
            O::I32GeS => self.compare(I32, IntCmp::GeS)?,
            O::I32GeU => self.compare(I32, IntCmp::GeU)?,
            O::I64Eq => self.compare(I64, IntCmp::Eq)?,
            O::I64Ne => self.compare(I64, IntCmp::Ne)?,
            O::I64LtS => self.compare(I64, IntCmp::LtS)?,
            O::I64LtU => self.compare(I64, IntCmp::LtU)?,
            O::I64GtS => self.compare(I64, IntCmp::GtS)?,
            O::I64GtU => self.compare(I64, IntCmp::GtU)?,
            O::I64LeS => self.compare(I64, IntCmp::LeS)?,
            O::I64LeU => self.compare(I64, IntCmp::LeU)?,
            O::I64GeS => self.compare(I64, IntCmp::GeS)?,
            O::I64GeU => self.compare(I64, IntCmp::GeU)?,
            O::I32WrapI64 => self.extend(Extend::I32Wrap, I32)?,
            O::I64ExtendI32S => self.extend(Extend::I64From32S, I64)?,
            O::I64ExtendI32U => self.extend(Extend::I64From32U, I64)?,
            O::I32Extend8S => self.extend(Extend::I32From8S, I32)?,
            O::I32Extend16S => self.extend(Extend::I32From16S, I32)?,
            O::I64Extend8S => self.extend(Extend::I64From8S, I64)?,
            O::I64Extend16S => self.extend(Extend::I64From16S, I64)?,
            O::I64Extend32S => self.extend(Extend::I64From32S, I64)?,
            O::I32ReinterpretF32 => self.reinterpret(I32)?,
            O::I64ReinterpretF64 => self.reinterpret(I64)?,
            O::F32ReinterpretI32 => self.reinterpret(F32)?,
            O::F64ReinterpretI64 => self.reinterpret(F64)?,
            _ => return self.emit_float(op),
        }
        Ok(true)
    }

    fn alu(&mut self, kind: ValKind, op: AluOp) -> R {
        let mut b = self.pop()?;
        let mut a = self.pop()?;
        if let (Val::Const(_, x), Val::Const(_, y)) = (a, b) {
            self.push(Val::Const(kind, fold_alu(op, kind, x, y)));
            return Ok(());
        }
        if matches!(a, Val::Const(..)) && op != AluOp::Sub {
            std::mem::swap(&mut a, &mut b);
        }
        let rhs = self.reg_or_imm(b)?;
        let lhs = self.read_reg(a)?;
        let dst = match rhs {
            RegImm::Reg(r) if op != AluOp::Sub => self.result_reg(RegClass::Int, &[lhs, r])?,
            _ => self.result_reg(RegClass::Int, &[lhs])?,
        };
        self.masm.alu(op, dst, lhs, rhs, kind.size());
        self.free_reg(lhs);
        self.release_operand(rhs);
        self.push(Val::Reg(kind, dst));
        Ok(())
    }

    fn shift(&mut self, kind: ValKind, op: ShiftOp) -> R {
        let b = self.pop()?;
        let a = self.pop()?;
        if let (Val::Const(_, x), Val::Const(_, y)) = (a, b) {
            self.push(Val::Const(kind, fold_shift(op, kind, x, y)));
            return Ok(());
        }
        let rhs = self.reg_or_imm(b)?;
        let lhs = self.read_reg(a)?;
        let dst = self.result_reg(RegClass::Int, &[lhs])?;
        self.masm.shift(op, dst, lhs, rhs, kind.size());
        self.free_reg(lhs);
        self.release_operand(rhs);
        self.push(Val::Reg(kind, dst));
        Ok(())
    }

    fn compare(&mut self, kind: ValKind, cc: IntCmp) -> R {
        let mut b = self.pop()?;
        let mut a = self.pop()?;
        if let (Val::Const(_, x), Val::Const(_, y)) = (a, b) {
            self.push(Val::Const(ValKind::I32, fold_cmp(cc, kind, x, y)));
            return Ok(());
        }
        let mut cc = cc;
        if matches!(a, Val::Const(..)) {
            std::mem::swap(&mut a, &mut b);
            cc = swapped(cc);
        }
        let rhs = self.reg_or_imm(b)?;
        let lhs = self.read_reg(a)?;
        if self.next_is_branch {
            // The next operator is br_if/if: it branches on the comparison directly.
            self.fused = Some(super::condition::FusedCmp::Int {
                cc,
                lhs,
                rhs,
                size: kind.size(),
            });
            self.push(Val::Reg(ValKind::I32, lhs));
            return Ok(());
        }
        let dst = self.result_reg(RegClass::Int, &[lhs])?;
        self.masm.cmp_set(cc, dst, lhs, rhs, kind.size());
        self.free_reg(lhs);
        self.release_operand(rhs);
        self.push(Val::Reg(ValKind::I32, dst));
        Ok(())
    }

    fn unary(&mut self, kind: ValKind, op: IntUnary) -> R {
        let a = self.pop()?;
        if let Val::Const(_, x) = a {
            self.push(Val::Const(kind, fold_unary(op, kind, x)));
            return Ok(());
        }
        let r = self.read_reg(a)?;
        let dst = self.result_reg(RegClass::Int, &[r])?;
        self.masm.int_unary(op, dst, r, kind.size());
        self.free_reg(r);
        self.push(Val::Reg(kind, dst));
        Ok(())
    }

    fn extend(&mut self, ext: Extend, result: ValKind) -> R {
        let a = self.pop()?;
        if let Val::Const(_, x) = a {
            self.push(Val::Const(result, fold_extend(ext, x)));
            return Ok(());
        }
        let r = self.read_reg(a)?;
        let dst = self.result_reg(RegClass::Int, &[r])?;
        self.masm.extend(ext, dst, r);
        self.free_reg(r);
        self.push(Val::Reg(result, dst));
        Ok(())
    }

    /// Bit-preserving move between the int and float classes.
    fn reinterpret(&mut self, result: ValKind) -> R {
        let a = self.pop()?;
        if let Val::Const(_, bits) = a {
            self.push(Val::Const(result, bits));
            return Ok(());
        }
        let src = match a {
            // Straight from memory into the other class.
            Val::Slot(_, s) => {
                let r = self.alloc(result.class())?;
                let addr = self.slot_addr(s);
                self.masm.load(r, addr, result.size());
                self.push(Val::Reg(result, r));
                return Ok(());
            }
            other => self.read_reg(other)?,
        };
        let r = self.alloc(result.class())?;
        self.masm.mov(r, RegImm::Reg(src), result.size());
        self.free_reg(src);
        self.push(Val::Reg(result, r));
        Ok(())
    }

    /// Integer division and remainder with the wasm traps.
    fn div(&mut self, kind: ValKind, op: DivKind) -> R {
        let size = kind.size();
        let b = self.pop()?;
        let a = self.pop()?;
        let min = if kind == ValKind::I32 {
            i32::MIN as i64
        } else {
            i64::MIN
        };
        let const_rhs = match b {
            Val::Const(_, y) => Some(norm(kind, y)),
            _ => None,
        };
        if const_rhs == Some(0) {
            self.release(a);
            let pc = self.masm.trap(TrapCode::IntegerDivisionByZero);
            self.add_trap(pc, TrapCode::IntegerDivisionByZero);
            self.set_unreachable();
            return Ok(());
        }
        let rhs = self.read_reg(b)?;
        let lhs = self.read_reg(a)?;
        let dst = self.result_reg(RegClass::Int, &[lhs])?;
        if const_rhs.is_none() {
            let pc = self.masm.trap_if(
                IntCmp::Eq,
                rhs,
                RegImm::Imm(0),
                size,
                TrapCode::IntegerDivisionByZero,
            );
            self.add_trap(pc, TrapCode::IntegerDivisionByZero);
        }
        let may_be_minus_one = const_rhs.is_none() || const_rhs == Some(-1);
        match op {
            DivKind::DivS if may_be_minus_one => {
                // MIN / -1 overflows.
                let ok = self.masm.new_label();
                self.masm
                    .cmp_branch(IntCmp::Ne, rhs, RegImm::Imm(-1), size, ok);
                let pc = self.masm.trap_if(
                    IntCmp::Eq,
                    lhs,
                    RegImm::Imm(min),
                    size,
                    TrapCode::IntegerOverflow,
                );
                self.add_trap(pc, TrapCode::IntegerOverflow);
                self.masm.bind(ok)?;
                self.masm.div(op, dst, lhs, rhs, size);
            }
            DivKind::RemS if may_be_minus_one => {
                // x rem -1 is 0 (and MIN rem -1 would fault in hardware).
                let normal = self.masm.new_label();
                let done = self.masm.new_label();
                self.masm
                    .cmp_branch(IntCmp::Ne, rhs, RegImm::Imm(-1), size, normal);
                self.masm.mov(dst, RegImm::Imm(0), size);
                self.masm.jump(done);
                self.masm.bind(normal)?;
                self.masm.div(op, dst, lhs, rhs, size);
                self.masm.bind(done)?;
            }
            _ => self.masm.div(op, dst, lhs, rhs, size),
        }
        self.free_reg(lhs);
        self.free_reg(rhs);
        self.push(Val::Reg(kind, dst));
        Ok(())
    }

    /// Float operators; returns whether `op` was one.
    fn emit_float(&mut self, op: &Operator<'_>) -> Result<bool, CompileError> {
        use FloatBinOp as B;
        use FloatCmp as C;
        use FloatUnOp as U;
        use Operator as O;
        use ValKind::*;
        match *op {
            O::F32Add => self.fbin(F32, B::Add)?,
            O::F32Sub => self.fbin(F32, B::Sub)?,
            O::F32Mul => self.fbin(F32, B::Mul)?,
            O::F32Div => self.fbin(F32, B::Div)?,
            O::F32Min => self.fbin(F32, B::Min)?,
            O::F32Max => self.fbin(F32, B::Max)?,
            O::F32Copysign => self.fbin(F32, B::Copysign)?,
            O::F64Add => self.fbin(F64, B::Add)?,
            O::F64Sub => self.fbin(F64, B::Sub)?,
            O::F64Mul => self.fbin(F64, B::Mul)?,
            O::F64Div => self.fbin(F64, B::Div)?,
            O::F64Min => self.fbin(F64, B::Min)?,
            O::F64Max => self.fbin(F64, B::Max)?,
            O::F64Copysign => self.fbin(F64, B::Copysign)?,
            O::F32Abs => self.fun(F32, U::Abs)?,
            O::F32Neg => self.fun(F32, U::Neg)?,
            O::F32Sqrt => self.fun(F32, U::Sqrt)?,
            O::F32Ceil => self.fun(F32, U::Ceil)?,
            O::F32Floor => self.fun(F32, U::Floor)?,
            O::F32Trunc => self.fun(F32, U::Trunc)?,
            O::F32Nearest => self.fun(F32, U::Nearest)?,
            O::F64Abs => self.fun(F64, U::Abs)?,
            O::F64Neg => self.fun(F64, U::Neg)?,
            O::F64Sqrt => self.fun(F64, U::Sqrt)?,
            O::F64Ceil => self.fun(F64, U::Ceil)?,
            O::F64Floor => self.fun(F64, U::Floor)?,
            O::F64Trunc => self.fun(F64, U::Trunc)?,
            O::F64Nearest => self.fun(F64, U::Nearest)?,
            O::F32Eq => self.fcmp(F32, C::Eq)?,
            O::F32Ne => self.fcmp(F32, C::Ne)?,
            O::F32Lt => self.fcmp(F32, C::Lt)?,
            O::F32Gt => self.fcmp(F32, C::Gt)?,
            O::F32Le => self.fcmp(F32, C::Le)?,
            O::F32Ge => self.fcmp(F32, C::Ge)?,
            O::F64Eq => self.fcmp(F64, C::Eq)?,
            O::F64Ne => self.fcmp(F64, C::Ne)?,
            O::F64Lt => self.fcmp(F64, C::Lt)?,
            O::F64Gt => self.fcmp(F64, C::Gt)?,
            O::F64Le => self.fcmp(F64, C::Le)?,
            O::F64Ge => self.fcmp(F64, C::Ge)?,
            O::F32ConvertI32S => self.int_to_float(I32, true, F32)?,
            O::F32ConvertI32U => self.int_to_float(I32, false, F32)?,
            O::F32ConvertI64S => self.int_to_float(I64, true, F32)?,
            O::F32ConvertI64U => self.int_to_float(I64, false, F32)?,
            O::F64ConvertI32S => self.int_to_float(I32, true, F64)?,
            O::F64ConvertI32U => self.int_to_float(I32, false, F64)?,
            O::F64ConvertI64S => self.int_to_float(I64, true, F64)?,
            O::F64ConvertI64U => self.int_to_float(I64, false, F64)?,
            O::F32DemoteF64 => self.float_to_float(F32)?,
            O::F64PromoteF32 => self.float_to_float(F64)?,
            O::I32TruncF32S => self.trunc(F32, I32, true, false)?,
            O::I32TruncF32U => self.trunc(F32, I32, false, false)?,
            O::I32TruncF64S => self.trunc(F64, I32, true, false)?,
            O::I32TruncF64U => self.trunc(F64, I32, false, false)?,
            O::I64TruncF32S => self.trunc(F32, I64, true, false)?,
            O::I64TruncF32U => self.trunc(F32, I64, false, false)?,
            O::I64TruncF64S => self.trunc(F64, I64, true, false)?,
            O::I64TruncF64U => self.trunc(F64, I64, false, false)?,
            O::I32TruncSatF32S => self.trunc(F32, I32, true, true)?,
            O::I32TruncSatF32U => self.trunc(F32, I32, false, true)?,
            O::I32TruncSatF64S => self.trunc(F64, I32, true, true)?,
            O::I32TruncSatF64U => self.trunc(F64, I32, false, true)?,
            O::I64TruncSatF32S => self.trunc(F32, I64, true, true)?,
            O::I64TruncSatF32U => self.trunc(F32, I64, false, true)?,
            O::I64TruncSatF64S => self.trunc(F64, I64, true, true)?,
            O::I64TruncSatF64U => self.trunc(F64, I64, false, true)?,
            _ => return Ok(false),
        }
        Ok(true)
    }

    fn fbin(&mut self, kind: ValKind, op: FloatBinOp) -> R {
        let b = self.pop()?;
        let a = self.pop()?;
        let rhs = self.read_reg(b)?;
        let lhs = self.read_reg(a)?;
        let dst = if matches!(op, FloatBinOp::Add | FloatBinOp::Mul) {
            self.result_reg(RegClass::Float, &[lhs, rhs])?
        } else {
            self.result_reg(RegClass::Float, &[lhs])?
        };
        self.masm.float_binop(op, dst, lhs, rhs, kind.size());
        self.free_reg(lhs);
        self.free_reg(rhs);
        self.push(Val::Reg(kind, dst));
        Ok(())
    }

    fn fun(&mut self, kind: ValKind, op: FloatUnOp) -> R {
        let mode = match op {
            FloatUnOp::Ceil => Some(0),
            FloatUnOp::Floor => Some(1),
            FloatUnOp::Trunc => Some(2),
            FloatUnOp::Nearest => Some(3),
            _ => None,
        };
        if let (Some(mode), false) = (mode, self.info.native_float_rounding) {
            // No rounding instruction: pass the bits to the runtime.
            let (_, r) = self.pop_to_reg()?;
            let bits = self.alloc(RegClass::Int)?;
            self.masm.mov(bits, RegImm::Reg(r), kind.size());
            self.free_reg(r);
            self.push(Val::Reg(kind.bits_kind(), bits));
            let op = mode + if kind == ValKind::F64 { 4 } else { 0 };
            self.call_builtin_with(
                crate::vmctx::Builtin::FloatRound,
                &[],
                1,
                &[op],
                None,
                Some(kind.bits_kind()),
            )?;
            let (_, bits) = self.pop_to_reg()?;
            let r = self.alloc(RegClass::Float)?;
            self.masm.mov(r, RegImm::Reg(bits), kind.size());
            self.free_reg(bits);
            self.push(Val::Reg(kind, r));
            return Ok(());
        }
        let (_, r) = self.pop_read()?;
        let dst = self.result_reg(RegClass::Float, &[r])?;
        self.masm.float_unop(op, dst, r, kind.size());
        self.free_reg(r);
        self.push(Val::Reg(kind, dst));
        Ok(())
    }

    fn fcmp(&mut self, kind: ValKind, cc: FloatCmp) -> R {
        let b = self.pop()?;
        let a = self.pop()?;
        let rhs = self.read_reg(b)?;
        let lhs = self.read_reg(a)?;
        if self.next_is_branch {
            // The next operator is br_if/if: it branches on the comparison directly (the
            // stack entry is only a placeholder that the branch pops).
            self.fused = Some(super::condition::FusedCmp::Float {
                cc,
                lhs,
                rhs,
                size: kind.size(),
            });
            self.push(Val::Reg(ValKind::I32, lhs));
            return Ok(());
        }
        let dst = self.alloc(RegClass::Int)?;
        self.masm.float_cmp_set(cc, dst, lhs, rhs, kind.size());
        self.free_reg(lhs);
        self.free_reg(rhs);
        self.push(Val::Reg(ValKind::I32, dst));
        Ok(())
    }

    fn int_to_float(&mut self, from: ValKind, signed: bool, to: ValKind) -> R {
        let (_, src) = self.pop_read()?;
        let dst = self.alloc(RegClass::Float)?;
        self.masm
            .int_to_float(dst, src, from.size(), signed, to.size());
        self.free_reg(src);
        self.push(Val::Reg(to, dst));
        Ok(())
    }

    fn float_to_float(&mut self, to: ValKind) -> R {
        let (_, r) = self.pop_read()?;
        let dst = self.result_reg(RegClass::Float, &[r])?;
        self.masm.float_to_float(dst, r, to.size());
        self.free_reg(r);
        self.push(Val::Reg(to, dst));
        Ok(())
    }

    /// Float to integer truncation: trapping (`NaN` -> invalid conversion, out of range ->
    /// overflow) or saturating (`NaN` -> 0, out of range -> the nearest bound).
    fn trunc(&mut self, from: ValKind, to: ValKind, signed: bool, saturating: bool) -> R {
        let fsize = from.size();
        let (_, x) = self.pop_read()?;
        let dst = self.alloc(RegClass::Int)?;
        let bound = self.alloc(RegClass::Float)?;
        // The valid range is lo < x < hi (or lo <= x when `lo_inclusive`).
        let (lo, lo_inclusive, hi): (f64, bool, f64) = match (to, signed) {
            (ValKind::I32, true) if from == ValKind::F32 => (-2147483648.0, true, 2147483648.0),
            (ValKind::I32, true) => (-2147483649.0, false, 2147483648.0),
            (ValKind::I32, false) => (-1.0, false, 4294967296.0),
            (_, true) => (-9223372036854775808.0, true, 9223372036854775808.0),
            (_, false) => (-1.0, false, 18446744073709551616.0),
        };
        let bits = |v: f64| -> i64 {
            if from == ValKind::F32 {
                (v as f32).to_bits() as i64
            } else {
                v.to_bits() as i64
            }
        };
        let (min, max): (i64, i64) = match (to, signed) {
            (ValKind::I32, true) => (i32::MIN as i64, i32::MAX as i64),
            (ValKind::I32, false) => (0, u32::MAX as i64),
            (_, true) => (i64::MIN, i64::MAX),
            (_, false) => (0, -1),
        };
        let below = if lo_inclusive {
            FloatCmp::Lt
        } else {
            FloatCmp::Le
        };
        if saturating {
            let done = self.masm.new_label();
            let (nan, low, high) = (
                self.masm.new_label(),
                self.masm.new_label(),
                self.masm.new_label(),
            );
            self.masm.float_cmp_branch(FloatCmp::Ne, x, x, fsize, nan);
            self.masm.mov(bound, RegImm::Imm(bits(lo)), fsize);
            self.masm.float_cmp_branch(below, x, bound, fsize, low);
            self.masm.mov(bound, RegImm::Imm(bits(hi)), fsize);
            self.masm
                .float_cmp_branch(FloatCmp::Ge, x, bound, fsize, high);
            self.masm.float_to_int(dst, x, fsize, to.size(), signed);
            self.masm.jump(done);
            self.masm.bind(nan)?;
            self.masm.mov(dst, RegImm::Imm(0), to.size());
            self.masm.jump(done);
            self.masm.bind(low)?;
            self.masm.mov(dst, RegImm::Imm(min), to.size());
            self.masm.jump(done);
            self.masm.bind(high)?;
            self.masm.mov(dst, RegImm::Imm(max), to.size());
            self.masm.bind(done)?;
        } else {
            let pc = self.masm.float_trap_if(
                FloatCmp::Ne,
                x,
                x,
                fsize,
                TrapCode::BadConversionToInteger,
            );
            self.add_trap(pc, TrapCode::BadConversionToInteger);
            self.masm.mov(bound, RegImm::Imm(bits(lo)), fsize);
            let pc = self
                .masm
                .float_trap_if(below, x, bound, fsize, TrapCode::IntegerOverflow);
            self.add_trap(pc, TrapCode::IntegerOverflow);
            self.masm.mov(bound, RegImm::Imm(bits(hi)), fsize);
            let pc =
                self.masm
                    .float_trap_if(FloatCmp::Ge, x, bound, fsize, TrapCode::IntegerOverflow);
            self.add_trap(pc, TrapCode::IntegerOverflow);
            self.masm.float_to_int(dst, x, fsize, to.size(), signed);
        }
        self.free_reg(x);
        self.free_reg(bound);
        self.push(Val::Reg(to, dst));
        Ok(())
    }

    /// `select` and typed `select`.
    pub(super) fn visit_select(&mut self) -> R {
        let c = self.pop()?;
        let b = self.pop()?;
        let a = self.pop()?;
        if let Val::Const(_, x) = c {
            let (keep, drop) = if x as i32 != 0 { (a, b) } else { (b, a) };
            self.release(drop);
            self.push(keep);
            if matches!(keep, Val::Slot(..)) {
                // `b` in its slot moves down to `a`'s position: it takes that position's
                // slot, or the next value pushed would spill over it.
                self.spill_entry(self.stack.len() - 1);
            }
            return Ok(());
        }
        let kind = a.kind();
        let cond = self.read_reg(c)?;
        let if_false = self.read_reg(b)?;
        let dst = self.in_reg(a)?;
        self.masm.select(dst, cond, if_false, kind.size());
        self.free_reg(cond);
        self.free_reg(if_false);
        self.push(Val::Reg(kind, dst));
        Ok(())
    }
}
