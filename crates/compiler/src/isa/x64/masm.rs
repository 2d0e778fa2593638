//! [`MacroAssembler`] for x86-64 with dynasm.

use super::x64;
use crate::isa::buffer::CodeBuffer;
use crate::masm::*;
use crate::vmctx::{funcref, VMOffsets};
use crate::{CompileError, TrapCode};
use dynasmrt::x64::X64Relocation;
use dynasmrt::{DynasmApi, DynasmLabelApi};

const RAX: u8 = 0;
const RCX: u8 = 1;
const RDX: u8 = 2;
const RSP: u8 = 4;
const RBP: u8 = 5;
pub(super) const R11: u8 = 11;
const R14: u8 = 14;
const R15: u8 = 15;
pub(super) const XMM0: u8 = 0;
pub(super) const XMM_SCRATCH: u8 = 15;

/// Allocatable integer registers: the ones without a REX prefix first.
static INT_REGS: [Reg; 8] = [
    Reg::int(6),  // rsi
    Reg::int(7),  // rdi
    Reg::int(3),  // rbx
    Reg::int(8),  // r8
    Reg::int(9),  // r9
    Reg::int(10), // r10
    Reg::int(12), // r12
    Reg::int(13), // r13
];

/// Allocatable float registers: xmm1-xmm14.
static FLOAT_REGS: [Reg; 14] = [
    Reg::float(1),
    Reg::float(2),
    Reg::float(3),
    Reg::float(4),
    Reg::float(5),
    Reg::float(6),
    Reg::float(7),
    Reg::float(8),
    Reg::float(9),
    Reg::float(10),
    Reg::float(11),
    Reg::float(12),
    Reg::float(13),
    Reg::float(14),
];

/// A pending out-of-line trap stub: the branch at `site` jumps to `stub`.
struct TrapStub {
    site: Label,
    stub: Label,
    code: TrapCode,
}

/// x86-64 macro assembler for one function.
pub struct X64Masm {
    pub(super) ops: CodeBuffer<X64Relocation>,
    stubs: Vec<TrapStub>,
    /// Offset of the 32-bit frame size immediate in the prologue.
    frame_size_patch: Option<usize>,
    vmctx_slot: i32,
    trap_landing: i32,
    memory0_base: i32,
    stack_limit: i32,
    /// Emit the VEX (AVX) three-operand forms of the vector and scalar float instructions
    /// that save a register copy (`vaddps d, l, r` for `movaps d, l; addps d, r`).
    pub(super) avx: bool,
}

use super::enc::{self, Alu, BitOp, Cc, Ext, Mem, Packed, Rm, Shift, Width};

fn fits_i32(v: i64) -> bool {
    v == v as i32 as i64
}

fn is64(size: OperandSize) -> bool {
    size == OperandSize::S64
}

/// The x86 condition code of an integer comparison.
fn cond(cc: IntCmp) -> Cc {
    match cc {
        IntCmp::Eq => Cc::E,
        IntCmp::Ne => Cc::Ne,
        IntCmp::LtS => Cc::L,
        IntCmp::LtU => Cc::B,
        IntCmp::GtS => Cc::G,
        IntCmp::GtU => Cc::A,
        IntCmp::LeS => Cc::Le,
        IntCmp::LeU => Cc::Be,
        IntCmp::GeS => Cc::Ge,
        IntCmp::GeU => Cc::Ae,
    }
}

impl X64Masm {
    /// Emits a one-byte `nop` (tests that need code at a given offset).
    #[cfg(test)]
    pub(super) fn nop_for_test(&mut self) {
        self.ops.push(0x90);
    }

    /// A fresh assembler for a function of a module with this vmctx layout.
    pub fn new(offsets: &VMOffsets) -> X64Masm {
        X64Masm {
            ops: CodeBuffer::new(),
            stubs: Vec::new(),
            frame_size_patch: None,
            vmctx_slot: -8,
            trap_landing: offsets.trap_landing(),
            memory0_base: offsets.memory0_base(),
            stack_limit: offsets.stack_limit(),
            avx: false,
        }
    }

    /// The same assembler emitting AVX (VEX) forms where they save copies, if `avx` (the
    /// caller checks that the CPU has AVX). Only AVX itself is used: no AVX2 or FMA.
    pub fn with_avx(mut self, avx: bool) -> X64Masm {
        self.avx = avx;
        self
    }

    fn mem(&self, addr: Address) -> Mem {
        match addr {
            Address::Frame(d) => Mem::base(RBP, d),
            Address::Outgoing(d) => Mem::base(RSP, d),
            Address::Vmctx(d) => Mem::base(R15, d),
            Address::Base(r, d) => Mem::base(r.hw, d),
        }
    }

    fn mov_int_imm(&mut self, d: u8, v: i64, size: OperandSize) {
        let zero = match size {
            OperandSize::S32 => v as i32 == 0,
            OperandSize::S64 | OperandSize::S128 => v == 0,
        };
        if zero {
            enc::alu_rr(&mut self.ops, Alu::Xor, false, d, d);
        } else {
            enc::mov_imm(&mut self.ops, is64(size), d, v);
        }
    }

    fn new_trap_stub(&mut self, code: TrapCode) -> (Label, Label) {
        let site = self.ops.new_dynamic_label();
        let stub = self.ops.new_dynamic_label();
        self.stubs.push(TrapStub { site, stub, code });
        (site, stub)
    }

    /// `cmp lhs, rhs` at `size`.
    fn cmp(&mut self, lhs: Reg, rhs: RegImm, size: OperandSize) {
        let (l, w) = (lhs.hw, is64(size));
        match rhs {
            RegImm::Reg(r) => enc::alu_rr(&mut self.ops, Alu::Cmp, w, l, r.hw),
            RegImm::Imm(i) if !w || fits_i32(i) => {
                enc::alu_ri(&mut self.ops, Alu::Cmp, w, l, i as i32)
            }
            RegImm::Imm(i) => {
                self.mov_int_imm(R11, i, size);
                enc::alu_rr(&mut self.ops, Alu::Cmp, w, l, R11);
            }
        }
    }

    /// `test r, r` at `size`.
    fn test(&mut self, r: u8, size: OperandSize) {
        enc::test_rr(&mut self.ops, is64(size), r, r);
    }

    pub(super) fn jcc(&mut self, cc: IntCmp, target: Label) {
        match cc {
            IntCmp::Eq => x64!(self.ops; je =>target),
            IntCmp::Ne => x64!(self.ops; jne =>target),
            IntCmp::LtS => x64!(self.ops; jl =>target),
            IntCmp::LtU => x64!(self.ops; jb =>target),
            IntCmp::GtS => x64!(self.ops; jg =>target),
            IntCmp::GtU => x64!(self.ops; ja =>target),
            IntCmp::LeS => x64!(self.ops; jle =>target),
            IntCmp::LeU => x64!(self.ops; jbe =>target),
            IntCmp::GeS => x64!(self.ops; jge =>target),
            IntCmp::GeU => x64!(self.ops; jae =>target),
        }
    }

    /// An SSE instruction `d, s` on two xmm registers.
    pub(super) fn sse(&mut self, op: Packed, d: u8, s: u8) {
        enc::packed(&mut self.ops, op, d, Rm::Reg(s));
    }

    /// The AVX form `vop d, a, b` of a two-operand SSE instruction `op d, s` (`d = d op
    /// s` becomes `d = a op b`).
    pub(super) fn v3(&mut self, op: Packed, d: u8, a: u8, b: u8) {
        enc::vex(&mut self.ops, op, d, a, Rm::Reg(b));
    }

    /// `d = a op b` with AVX, else `movaps d, a; op d, b` (`b` must then not be `d` unless
    /// `a` is).
    pub(super) fn op3(&mut self, op: Packed, d: u8, a: u8, b: u8) {
        if self.avx {
            self.v3(op, d, a, b);
        } else {
            debug_assert!(b != d || a == d);
            self.movaps(d, a);
            self.sse(op, d, b);
        }
    }

    /// Packed shift of xmm `s` by an immediate into `d` (`op`/`digit` as in
    /// [`enc::pshift_imm`]): one VEX instruction with AVX, else a copy and the shift.
    pub(super) fn pshift3(&mut self, op: u8, digit: u8, d: u8, s: u8, imm: u8) {
        if self.avx {
            enc::vpshift_imm(&mut self.ops, op, digit, d, s, imm);
        } else {
            self.movaps(d, s);
            enc::pshift_imm(&mut self.ops, op, digit, d, imm);
        }
    }

    /// `dst = lhs * rhs` on 64-bit lanes from 32x32->64 products (SSE has no 64-bit
    /// multiply): `lo*lo + ((lhs_hi*rhs_lo + rhs_hi*lhs_lo) << 32)`.
    fn i64x2_mul(&mut self, dst: Reg, lhs: Reg, rhs: Reg) {
        let (d, a, b) = (dst.hw, lhs.hw, rhs.hw);
        self.pshift3(0x73, 2, XMM0, a, 32);
        self.sse(Packed::PMULUDQ, XMM0, b);
        self.pshift3(0x73, 2, XMM_SCRATCH, b, 32);
        self.sse(Packed::PMULUDQ, XMM_SCRATCH, a);
        self.sse(Packed::PADDQ, XMM0, XMM_SCRATCH);
        enc::pshift_imm(&mut self.ops, 0x73, 6, XMM0, 32);
        self.op3(Packed::PMULUDQ, XMM_SCRATCH, a, b);
        self.op3(Packed::PADDQ, d, XMM0, XMM_SCRATCH);
    }

    /// An integer lane comparison of xmm `a` and `b` into `dst` if that keeps the operands
    /// intact until they are read, else into xmm0; returns that register and whether it
    /// holds the negation of the result (the caller inverts it).
    fn v128_int_cmp(&mut self, lanes: Lanes, cc: IntCmp, a: u8, b: u8, dst: u8) -> (u8, bool) {
        use IntCmp::*;
        let eq = match lanes {
            Lanes::I8x16 => Packed::PCMPEQB,
            Lanes::I16x8 => Packed::PCMPEQW,
            Lanes::I32x4 => Packed::PCMPEQD,
            Lanes::I64x2 => Packed::PCMPEQQ,
        };
        let gt = match lanes {
            Lanes::I8x16 => Packed::PCMPGTB,
            Lanes::I16x8 => Packed::PCMPGTW,
            Lanes::I32x4 => Packed::PCMPGTD,
            Lanes::I64x2 => Packed::PCMPGTQ,
        };
        // Unsigned: a >= b exactly when max(a, b) == a (no 64-bit form: wasm has none).
        let max_or_min = |max: bool| match (lanes, max) {
            (Lanes::I8x16, true) => Packed::PMAXUB,
            (Lanes::I8x16, false) => Packed::PMINUB,
            (Lanes::I16x8, true) => Packed::PMAXUW,
            (Lanes::I16x8, false) => Packed::PMINUW,
            (_, true) => Packed::PMAXUD,
            (_, false) => Packed::PMINUD,
        };
        let (first, second) = match cc {
            LtS | GeS => (b, a),
            _ => (a, b),
        };
        let unsigned = matches!(cc, GeU | LtU | LeU | GtU);
        let invert = matches!(cc, Ne | LeS | GeS | LtU | GtU);
        if self.avx {
            // Three operands: always into `dst`, through xmm0 for the unsigned forms.
            if unsigned {
                self.v3(max_or_min(matches!(cc, GeU | LtU)), XMM0, first, second);
                self.v3(eq, dst, XMM0, first);
            } else if matches!(cc, Eq | Ne) {
                self.v3(eq, dst, first, second);
            } else {
                self.v3(gt, dst, first, second);
            }
            return (dst, invert);
        }
        // The unsigned forms read `first` again after writing the work register.
        let work = if dst != second && (dst != first || !unsigned) {
            dst
        } else {
            XMM0
        };
        self.movaps(work, first);
        if unsigned {
            self.sse(max_or_min(matches!(cc, GeU | LtU)), work, second);
            self.sse(eq, work, first);
        } else if matches!(cc, Eq | Ne) {
            self.sse(eq, work, second);
        } else {
            self.sse(gt, work, second);
        }
        // gt(b, a) is lt(a, b); le and ge are the negations of gt and lt.
        (work, invert)
    }

    /// `ucomiss/ucomisd` with the operands ordered so that every `cc` is tested by
    /// `ja`/`jae`-style (above) conditions, which are false on an unordered result.
    fn float_compare(&mut self, cc: FloatCmp, lhs: Reg, rhs: Reg, size: OperandSize) {
        let (a, b) = match cc {
            FloatCmp::Lt | FloatCmp::Le => (rhs.hw, lhs.hw),
            _ => (lhs.hw, rhs.hw),
        };
        let op = if is64(size) {
            Packed::UCOMISD
        } else {
            Packed::UCOMISS
        };
        self.sse(op, a, b);
    }

    /// `float_binop` but Copysign with AVX: `vaddss d, l, r` and the like, no copies.
    fn float_binop_avx(&mut self, op: FloatBinOp, d: u8, l: u8, r: u8, s64: bool) {
        let pick = |ss: Packed, sd: Packed| if s64 { sd } else { ss };
        match op {
            FloatBinOp::Add => self.v3(pick(Packed::ADDSS, Packed::ADDSD), d, l, r),
            FloatBinOp::Sub => self.v3(pick(Packed::SUBSS, Packed::SUBSD), d, l, r),
            FloatBinOp::Mul => self.v3(pick(Packed::MULSS, Packed::MULSD), d, l, r),
            FloatBinOp::Div => self.v3(pick(Packed::DIVSS, Packed::DIVSD), d, l, r),
            FloatBinOp::Min | FloatBinOp::Max => {
                // As in the SSE form: NaN propagates via addition, and on equality or/and
                // of the bits gives -0 for min and +0 for max.
                let (nan, eq, done) = (
                    self.ops.new_dynamic_label(),
                    self.ops.new_dynamic_label(),
                    self.ops.new_dynamic_label(),
                );
                self.sse(pick(Packed::UCOMISS, Packed::UCOMISD), l, r);
                x64!(self.ops
                    ; jp =>nan
                    ; je =>eq
                );
                if op == FloatBinOp::Min {
                    self.v3(pick(Packed::MINSS, Packed::MINSD), d, l, r);
                } else {
                    self.v3(pick(Packed::MAXSS, Packed::MAXSD), d, l, r);
                }
                x64!(self.ops; jmp =>done; =>eq);
                if op == FloatBinOp::Min {
                    self.v3(Packed::ORPS, d, l, r);
                } else {
                    self.v3(Packed::ANDPS, d, l, r);
                }
                x64!(self.ops; jmp =>done; =>nan);
                self.v3(pick(Packed::ADDSS, Packed::ADDSD), d, l, r);
                x64!(self.ops; =>done);
            }
            FloatBinOp::Copysign => unreachable!("copysign works on the bits"),
        }
    }

    /// The SSE instruction `op d, s` of a plain lane-wise `V128BinOp` (`d = d op s`).
    fn v128_binop_sse(op: V128BinOp) -> Packed {
        use FloatLanes::*;
        use Lanes::*;
        match op {
            V128BinOp::And => Packed::PAND,
            V128BinOp::Or => Packed::POR,
            V128BinOp::Xor => Packed::PXOR,
            V128BinOp::Add(I8x16) => Packed::PADDB,
            V128BinOp::Add(I16x8) => Packed::PADDW,
            V128BinOp::Add(I32x4) => Packed::PADDD,
            V128BinOp::Add(I64x2) => Packed::PADDQ,
            V128BinOp::Sub(I8x16) => Packed::PSUBB,
            V128BinOp::Sub(I16x8) => Packed::PSUBW,
            V128BinOp::Sub(I32x4) => Packed::PSUBD,
            V128BinOp::Sub(I64x2) => Packed::PSUBQ,
            V128BinOp::Mul(I16x8) => Packed::PMULLW,
            V128BinOp::Mul(I32x4) => Packed::PMULLD,
            V128BinOp::FAdd(F32x4) => Packed::ADDPS,
            V128BinOp::FAdd(F64x2) => Packed::ADDPD,
            V128BinOp::FSub(F32x4) => Packed::SUBPS,
            V128BinOp::FSub(F64x2) => Packed::SUBPD,
            V128BinOp::FMul(F32x4) => Packed::MULPS,
            V128BinOp::FMul(F64x2) => Packed::MULPD,
            V128BinOp::FDiv(F32x4) => Packed::DIVPS,
            V128BinOp::FDiv(F64x2) => Packed::DIVPD,
            _ => unreachable!("not a plain lane-wise binop: {op:?}"),
        }
    }

    /// The `V128UnOp`s that AVX does without copies; returns false for the others.
    fn v128_unop_avx(&mut self, op: V128UnOp, d: u8, s: u8) -> bool {
        const X15: u8 = XMM_SCRATCH;
        match op {
            V128UnOp::Not => {
                self.sse(Packed::PCMPEQD, X15, X15);
                self.v3(Packed::PXOR, d, s, X15);
            }
            V128UnOp::Neg(lanes) => {
                self.sse(Packed::PXOR, X15, X15);
                self.v3(Self::v128_binop_sse(V128BinOp::Sub(lanes)), d, X15, s);
            }
            V128UnOp::Abs(Lanes::I64x2) => {
                // sign = 0 > src (all ones where negative); |src| = (src ^ sign) - sign.
                self.sse(Packed::PXOR, X15, X15);
                self.v3(Packed::PCMPGTQ, X15, X15, s);
                self.v3(Packed::PXOR, XMM0, s, X15);
                self.v3(Packed::PSUBQ, d, XMM0, X15);
            }
            V128UnOp::FNeg(lanes) | V128UnOp::FAbs(lanes) => {
                let neg = matches!(op, V128UnOp::FNeg(_));
                let (shift_op, bits) = match lanes {
                    FloatLanes::F32x4 => (0x72, 31),
                    FloatLanes::F64x2 => (0x73, 63),
                };
                self.sse(Packed::PCMPEQD, X15, X15);
                if neg {
                    enc::pshift_imm(&mut self.ops, shift_op, 6, X15, bits);
                } else {
                    enc::pshift_imm(&mut self.ops, shift_op, 2, X15, 1);
                }
                let op = if neg { Packed::XORPS } else { Packed::ANDPS };
                self.v3(op, d, s, X15);
            }
            _ => return false,
        }
        true
    }

    /// Switches to the instance of the `VMFuncRef` in `f` before calling or jumping to it:
    /// its vmctx in r15 (carrying over the stack limit) and its memory base in r14.
    fn enter_funcref_instance(&mut self, f: u8) {
        let (membase_off, limit) = (self.memory0_base, self.stack_limit);
        x64!(self.ops; mov r11, vmctx);
        enc::mov_load(&mut self.ops, true, R15, Mem::base(f, funcref::VMCTX));
        enc::mov_load(&mut self.ops, true, RAX, Mem::base(R11, limit));
        enc::mov_store(&mut self.ops, Width::Q, Mem::base(R15, limit), RAX);
        enc::mov_load(&mut self.ops, true, R14, Mem::base(R15, membase_off));
    }

    /// Pads with a nop so that the rel32 of the 5-byte `call`/`jmp` about to be emitted is
    /// 4-byte aligned (it may be patched while code runs).
    fn align_rel32(&mut self) {
        let nop: &[u8] = match self.offset() % 4 {
            0 => &[0x0F, 0x1F, 0x00],
            1 => &[0x66, 0x90],
            2 => &[0x90],
            _ => &[],
        };
        self.ops.extend(nop.iter().copied());
    }

    /// Computes the heap operand `[membase + index + disp]`.
    #[inline(always)]
    fn heap_operand(&mut self, addr: HeapAddress) -> Mem {
        // Memory 0 (base pinned in r14) with a 32-bit displacement, the common case: inline,
        // so the encoding of the constant base folds away.
        if addr.base.is_none() && addr.offset <= i32::MAX as u32 {
            return Mem::indexed(R14, addr.index.hw, addr.offset as i32);
        }
        self.heap_operand_general(addr)
    }

    /// [`Self::heap_operand`] for any base and offset.
    #[inline(never)]
    fn heap_operand_general(&mut self, addr: HeapAddress) -> Mem {
        let base = addr.base.map_or(R14, |b| b.hw);
        if addr.offset <= i32::MAX as u32 {
            Mem::indexed(base, addr.index.hw, addr.offset as i32)
        } else {
            // mov r11d, imm32 zero-extends, so r11 = offset as u64.
            enc::mov_imm(&mut self.ops, false, R11, addr.offset as i64);
            enc::alu_rr(&mut self.ops, Alu::Add, true, R11, addr.index.hw);
            Mem::indexed(base, R11, 0)
        }
    }
}

impl MacroAssembler for X64Masm {
    fn allocatable(&self, class: RegClass) -> &'static [Reg] {
        match class {
            RegClass::Int => &INT_REGS,
            RegClass::Float => &FLOAT_REGS,
        }
    }

    fn move_scratch(&self, class: RegClass) -> Reg {
        // The return registers: nothing lives in them between operators.
        match class {
            RegClass::Int => Reg::int(RAX),
            RegClass::Float => Reg::float(XMM0),
        }
    }

    fn return_reg(&self, class: RegClass) -> Reg {
        match class {
            RegClass::Int => Reg::int(RAX),
            RegClass::Float => Reg::float(XMM0),
        }
    }

    fn offset(&self) -> u32 {
        self.ops.offset().0 as u32
    }

    fn new_label(&mut self) -> Label {
        self.ops.new_dynamic_label()
    }

    fn bind(&mut self, label: Label) -> Result<()> {
        let here = self.ops.offset();
        self.ops
            .labels_mut()
            .define_dynamic(label, here)
            .map_err(|e| CompileError::internal(format!("label: {e}")))
    }

    fn jump(&mut self, target: Label) {
        x64!(self.ops; jmp =>target);
    }

    fn prologue(&mut self, vmctx_slot: i32, stack_limit_offset: i32) -> Result<u32> {
        self.vmctx_slot = vmctx_slot;
        self.stack_limit = stack_limit_offset;
        x64!(self.ops
            ; push rbp
            ; mov rbp, rsp
        );
        // `sub rsp, imm32` with a forced 32-bit immediate, patched in `finish`.
        self.ops.extend([0x48, 0x81, 0xEC, 0, 0, 0, 0]);
        self.frame_size_patch = Some(self.ops.offset().0 - 4);
        let pc = self.offset();
        let (site, stub) = self.new_trap_stub(TrapCode::StackOverflow);
        let limit = self.stack_limit;
        enc::alu_load(&mut self.ops, Alu::Cmp, true, RSP, Mem::base(R15, limit));
        x64!(self.ops
            ;=>site
            ; jb =>stub
        );
        enc::mov_store(&mut self.ops, Width::Q, Mem::base(RBP, vmctx_slot), R15);
        Ok(pc)
    }

    fn zero_frame(&mut self, start: i32, len: u32) {
        let words = len / 8;
        if words <= 8 {
            for i in 0..words as i32 {
                enc::mov_store_imm(&mut self.ops, Width::Q, Mem::base(RBP, start + 8 * i), 0);
            }
        } else {
            // Only used in the prologue, where no allocatable register is live.
            x64!(self.ops; xor eax, eax);
            enc::lea(&mut self.ops, 7, Mem::base(RBP, start)); // rdi
            x64!(self.ops
                ; mov ecx, words as i32
                ; rep stosq
            );
        }
    }

    fn epilogue(&mut self) {
        x64!(self.ops
            ; mov rsp, rbp
            ; pop rbp
            ; ret
        );
    }

    fn mov(&mut self, dst: Reg, src: RegImm, size: OperandSize) {
        let d = dst.hw;
        let w = is64(size);
        match (dst.class, src) {
            (RegClass::Int, RegImm::Reg(s)) => {
                if s.class == RegClass::Float {
                    enc::movd_from_xmm(&mut self.ops, w, d, s.hw);
                } else if s.hw != d || !w {
                    enc::mov_rr(&mut self.ops, w, d, s.hw);
                }
            }
            (RegClass::Int, RegImm::Imm(i)) => self.mov_int_imm(d, i, size),
            (RegClass::Float, RegImm::Reg(s)) => {
                if s.class == RegClass::Int {
                    enc::movd_to_xmm(&mut self.ops, w, d, s.hw);
                } else if s.hw != d {
                    self.sse(Packed::MOVAPS, d, s.hw);
                }
            }
            (RegClass::Float, RegImm::Imm(bits)) => {
                if bits == 0 {
                    self.sse(Packed::XORPS, d, d);
                } else {
                    self.mov_int_imm(R11, bits, size);
                    enc::movd_to_xmm(&mut self.ops, w, d, R11);
                }
            }
        }
    }

    fn load(&mut self, dst: Reg, src: Address, size: OperandSize) {
        let m = self.mem(src);
        let d = dst.hw;
        match (dst.class, size) {
            (RegClass::Int, _) => enc::mov_load(&mut self.ops, is64(size), d, m),
            (RegClass::Float, OperandSize::S32) => {
                enc::packed(&mut self.ops, Packed::MOVSS, d, m.into())
            }
            (RegClass::Float, OperandSize::S64) => {
                enc::packed(&mut self.ops, Packed::MOVSD, d, m.into())
            }
            (RegClass::Float, OperandSize::S128) => {
                enc::packed(&mut self.ops, Packed::MOVUPS, d, m.into())
            }
        }
    }

    fn store(&mut self, src: RegImm, dst: Address, size: OperandSize) {
        let m = self.mem(dst);
        let width = if is64(size) { Width::Q } else { Width::D };
        match src {
            RegImm::Reg(s) => match (s.class, size) {
                (RegClass::Int, _) => enc::mov_store(&mut self.ops, width, m, s.hw),
                (RegClass::Float, OperandSize::S32) => {
                    enc::sse_store(&mut self.ops, Packed::MOVSS, m, s.hw)
                }
                (RegClass::Float, OperandSize::S64) => {
                    enc::sse_store(&mut self.ops, Packed::MOVSD, m, s.hw)
                }
                (RegClass::Float, OperandSize::S128) => enc::movups_store(&mut self.ops, m, s.hw),
            },
            RegImm::Imm(i) => {
                if !is64(size) || fits_i32(i) {
                    enc::mov_store_imm(&mut self.ops, width, m, i as i32);
                } else {
                    self.mov_int_imm(R11, i, size);
                    enc::mov_store(&mut self.ops, width, m, R11);
                }
            }
        }
    }

    fn copy(&mut self, dst: Address, src: Address, size: OperandSize) {
        if dst == src {
            return;
        }
        let (s, d) = (self.mem(src), self.mem(dst));
        if size == OperandSize::S128 {
            enc::packed(&mut self.ops, Packed::MOVUPS, XMM_SCRATCH, s.into());
            enc::movups_store(&mut self.ops, d, XMM_SCRATCH);
            return;
        }
        let w = is64(size);
        enc::mov_load(&mut self.ops, w, R11, s);
        enc::mov_store(&mut self.ops, if w { Width::Q } else { Width::D }, d, R11);
    }

    fn lea(&mut self, dst: Reg, src: Address) {
        let m = self.mem(src);
        enc::lea(&mut self.ops, dst.hw, m);
    }

    fn load_heap(&mut self, dst: Reg, src: HeapAddress, kind: LoadKind) -> u32 {
        let m = self.heap_operand(src);
        let d = dst.hw;
        let pc = self.offset();
        let ext = |e: Ext, ops: &mut CodeBuffer<X64Relocation>| enc::extend(ops, e, d, m.into());
        match kind {
            LoadKind::I32 | LoadKind::I64U32 => enc::mov_load(&mut self.ops, false, d, m),
            LoadKind::I64 => enc::mov_load(&mut self.ops, true, d, m),
            LoadKind::F32 => enc::packed(&mut self.ops, Packed::MOVSS, d, m.into()),
            LoadKind::F64 => enc::packed(&mut self.ops, Packed::MOVSD, d, m.into()),
            LoadKind::I32S8 => ext(Ext::Sx8To32, &mut self.ops),
            LoadKind::I32U8 | LoadKind::I64U8 => ext(Ext::Zx8, &mut self.ops),
            LoadKind::I32S16 => ext(Ext::Sx16To32, &mut self.ops),
            LoadKind::I32U16 | LoadKind::I64U16 => ext(Ext::Zx16, &mut self.ops),
            LoadKind::I64S8 => ext(Ext::Sx8To64, &mut self.ops),
            LoadKind::I64S16 => ext(Ext::Sx16To64, &mut self.ops),
            LoadKind::I64S32 => ext(Ext::Sx32To64, &mut self.ops),
            LoadKind::V128 => enc::packed(&mut self.ops, Packed::MOVUPS, d, m.into()),
            LoadKind::V128Splat(_) | LoadKind::V128Extend(..) | LoadKind::V128Zero(_) => {
                return self.simd_load(d, m, kind)
            }
        }
        pc
    }

    fn store_heap(&mut self, src: RegImm, dst: HeapAddress, kind: StoreKind) -> u32 {
        let m = self.heap_operand(dst);
        let width = match kind {
            StoreKind::I8 => Width::B,
            StoreKind::I16 => Width::W,
            StoreKind::I32 | StoreKind::F32 => Width::D,
            StoreKind::I64 | StoreKind::F64 | StoreKind::V128 => Width::Q,
        };
        let pc;
        match src {
            RegImm::Reg(s) => {
                let s = s.hw;
                pc = self.offset();
                match kind {
                    StoreKind::F32 => enc::sse_store(&mut self.ops, Packed::MOVSS, m, s),
                    StoreKind::F64 => enc::sse_store(&mut self.ops, Packed::MOVSD, m, s),
                    StoreKind::V128 => enc::movups_store(&mut self.ops, m, s),
                    _ => enc::mov_store(&mut self.ops, width, m, s),
                }
            }
            RegImm::Imm(v) => {
                if width != Width::Q || fits_i32(v) {
                    pc = self.offset();
                    enc::mov_store_imm(&mut self.ops, width, m, v as i32);
                } else {
                    self.mov_int_imm(RAX, v, OperandSize::S64);
                    pc = self.offset();
                    enc::mov_store(&mut self.ops, Width::Q, m, RAX);
                }
            }
        }
        pc
    }

    fn alu(&mut self, op: AluOp, dst: Reg, lhs: Reg, rhs: RegImm, size: OperandSize) {
        let d = dst.hw;
        let w = is64(size);
        // Multiplication by an immediate has a three-operand form.
        if let (AluOp::Mul, RegImm::Imm(i)) = (op, rhs) {
            if !w || fits_i32(i) {
                enc::imul_rri(&mut self.ops, w, d, lhs.hw, i as i32);
                return;
            }
        }
        // Legalise: the right-hand side as a register or a 32-bit immediate.
        let rhs = match rhs {
            RegImm::Imm(i) if w && !fits_i32(i) => {
                self.mov_int_imm(R11, i, size);
                RegImm::Reg(Reg::int(R11))
            }
            RegImm::Reg(r) if r.hw == d && lhs.hw != d => {
                if matches!(op, AluOp::Sub) {
                    self.mov(Reg::int(R11), rhs, size);
                    RegImm::Reg(Reg::int(R11))
                } else {
                    // Commutative: dst already holds rhs.
                    return self.alu(op, dst, r, RegImm::Reg(lhs), size);
                }
            }
            other => other,
        };
        if lhs.hw != d {
            // What `mov` emits for two integer registers, without its dispatch on classes.
            debug_assert!(dst.class == RegClass::Int && lhs.class == RegClass::Int);
            enc::mov_rr(&mut self.ops, w, d, lhs.hw);
        }
        let op = match op {
            AluOp::Add => Alu::Add,
            AluOp::Sub => Alu::Sub,
            AluOp::And => Alu::And,
            AluOp::Or => Alu::Or,
            AluOp::Xor => Alu::Xor,
            AluOp::Mul => {
                match rhs {
                    RegImm::Reg(r) => enc::imul_rr(&mut self.ops, w, d, r.hw),
                    RegImm::Imm(i) => enc::imul_rri(&mut self.ops, w, d, d, i as i32),
                }
                return;
            }
        };
        match rhs {
            RegImm::Reg(r) => enc::alu_rr(&mut self.ops, op, w, d, r.hw),
            RegImm::Imm(i) => enc::alu_ri(&mut self.ops, op, w, d, i as i32),
        }
    }

    fn shift(&mut self, op: ShiftOp, dst: Reg, lhs: Reg, rhs: RegImm, size: OperandSize) {
        let d = dst.hw;
        let w = is64(size);
        let mask = if w { 63 } else { 31 };
        if let RegImm::Reg(r) = rhs {
            enc::mov_rr(&mut self.ops, false, RCX, r.hw);
        }
        if lhs.hw != d {
            self.mov(dst, RegImm::Reg(lhs), size);
        }
        let op = match op {
            ShiftOp::Shl => Shift::Shl,
            ShiftOp::ShrS => Shift::Sar,
            ShiftOp::ShrU => Shift::Shr,
            ShiftOp::Rotl => Shift::Rol,
            ShiftOp::Rotr => Shift::Ror,
        };
        match rhs {
            RegImm::Reg(_) => enc::shift_cl(&mut self.ops, op, w, d),
            RegImm::Imm(i) => enc::shift_imm(&mut self.ops, op, w, d, (i & mask) as u8),
        }
    }

    fn div(&mut self, kind: DivKind, dst: Reg, lhs: Reg, rhs: Reg, size: OperandSize) {
        let (d, l, r) = (dst.hw, lhs.hw, rhs.hw);
        let w = is64(size);
        enc::mov_rr(&mut self.ops, w, RAX, l);
        let signed = matches!(kind, DivKind::DivS | DivKind::RemS);
        if !signed {
            x64!(self.ops; xor edx, edx);
        } else if w {
            x64!(self.ops; cqo);
        } else {
            x64!(self.ops; cdq);
        }
        enc::div(&mut self.ops, signed, w, r);
        let result = match kind {
            DivKind::DivS | DivKind::DivU => RAX,
            DivKind::RemS | DivKind::RemU => RDX,
        };
        enc::mov_rr(&mut self.ops, w, d, result);
    }

    fn int_unary(&mut self, op: IntUnary, dst: Reg, src: Reg, size: OperandSize) {
        let (d, s) = (dst.hw, src.hw);
        let w = is64(size);
        let bits = if w { 64 } else { 32 };
        match op {
            // bsr/bsf leave the destination undefined for a zero input: patch with cmov.
            IntUnary::Clz => {
                enc::bit_op(&mut self.ops, BitOp::Bsr, w, d, s);
                enc::mov_imm(&mut self.ops, false, R11, 2 * bits - 1);
                enc::cmovcc(&mut self.ops, Cc::E, w, d, R11);
                enc::alu_ri(&mut self.ops, Alu::Xor, w, d, bits as i32 - 1);
            }
            IntUnary::Ctz => {
                enc::bit_op(&mut self.ops, BitOp::Bsf, w, d, s);
                enc::mov_imm(&mut self.ops, false, R11, bits);
                enc::cmovcc(&mut self.ops, Cc::E, w, d, R11);
            }
            IntUnary::Popcnt => enc::bit_op(&mut self.ops, BitOp::Popcnt, w, d, s),
        }
    }

    fn extend(&mut self, kind: Extend, dst: Reg, src: Reg) {
        let (d, s) = (dst.hw, src.hw);
        let ext = match kind {
            Extend::I32From8S => Ext::Sx8To32,
            Extend::I32From16S => Ext::Sx16To32,
            Extend::I64From8S => Ext::Sx8To64,
            Extend::I64From16S => Ext::Sx16To64,
            Extend::I64From32S => Ext::Sx32To64,
            Extend::I64From32U | Extend::I32Wrap => {
                return enc::mov_rr(&mut self.ops, false, d, s);
            }
        };
        enc::extend(&mut self.ops, ext, d, Rm::Reg(s));
    }

    fn cmp_set(&mut self, cc: IntCmp, dst: Reg, lhs: Reg, rhs: RegImm, size: OperandSize) {
        self.cmp(lhs, rhs, size);
        enc::setcc(&mut self.ops, cond(cc), dst.hw);
        enc::extend(&mut self.ops, Ext::Zx8, dst.hw, Rm::Reg(dst.hw));
    }

    fn cmp_branch(&mut self, cc: IntCmp, lhs: Reg, rhs: RegImm, size: OperandSize, target: Label) {
        match rhs {
            RegImm::Imm(0) if matches!(cc, IntCmp::Eq | IntCmp::Ne) => self.test(lhs.hw, size),
            _ => self.cmp(lhs, rhs, size),
        }
        self.jcc(cc, target);
    }

    fn select(&mut self, dst: Reg, cond: Reg, if_false: Reg, size: OperandSize) {
        let (d, c, f) = (dst.hw, cond.hw, if_false.hw);
        self.test(c, OperandSize::S32);
        match dst.class {
            RegClass::Int => enc::cmovcc(&mut self.ops, Cc::E, is64(size), d, f),
            RegClass::Float => {
                let skip = self.ops.new_dynamic_label();
                x64!(self.ops; jnz =>skip);
                self.sse(Packed::MOVAPS, d, f);
                x64!(self.ops; =>skip);
            }
        }
    }

    fn jump_table(&mut self, index: Reg, targets: &[Label], default: Label) {
        let table = self.ops.new_dynamic_label();
        let i = index.hw;
        enc::alu_ri(&mut self.ops, Alu::Cmp, false, i, targets.len() as i32);
        x64!(self.ops
            ; jae =>default
            ; lea r11, [=>table]
            ; lea rax, [Rq(i) + Rq(i) * 4]
            ; add r11, rax
            ; jmp r11
            ;=>table
        );
        // Each entry is a 5-byte `jmp rel32` (dynasm always encodes label jumps as rel32).
        for &t in targets {
            x64!(self.ops; jmp =>t);
        }
    }

    fn float_binop(&mut self, op: FloatBinOp, dst: Reg, lhs: Reg, rhs: Reg, size: OperandSize) {
        let s64 = is64(size);
        if op == FloatBinOp::Copysign {
            // On the bits: magnitude of lhs, sign of rhs.
            let (l, r, d) = (lhs.hw, rhs.hw, dst.hw);
            enc::movd_from_xmm(&mut self.ops, s64, RAX, l);
            enc::movd_from_xmm(&mut self.ops, s64, RCX, r);
            if s64 {
                x64!(self.ops
                    ; btr rax, 63
                    ; shr rcx, 63
                    ; shl rcx, 63
                    ; or rax, rcx
                );
            } else {
                x64!(self.ops
                    ; and eax, 0x7fff_ffff
                    ; and ecx, 0x8000_0000u32 as i32
                    ; or eax, ecx
                );
            }
            enc::movd_to_xmm(&mut self.ops, s64, d, RAX);
            return;
        }
        if self.avx {
            return self.float_binop_avx(op, dst.hw, lhs.hw, rhs.hw, s64);
        }
        // Commutative and already in the result register: `dst op= lhs`, no copies.
        if dst.hw == rhs.hw && dst.hw != lhs.hw && matches!(op, FloatBinOp::Add | FloatBinOp::Mul) {
            return self.float_binop(op, dst, rhs, lhs, size);
        }
        // Bring the operands into the shape `dst op= src`.
        let mut src = rhs.hw;
        let d = dst.hw;
        if d != lhs.hw {
            if d == rhs.hw {
                self.sse(Packed::MOVAPS, XMM_SCRATCH, rhs.hw);
                src = XMM_SCRATCH;
            }
            self.sse(Packed::MOVAPS, d, lhs.hw);
        }
        let pick = |ss: Packed, sd: Packed| if s64 { sd } else { ss };
        match op {
            FloatBinOp::Add => self.sse(pick(Packed::ADDSS, Packed::ADDSD), d, src),
            FloatBinOp::Sub => self.sse(pick(Packed::SUBSS, Packed::SUBSD), d, src),
            FloatBinOp::Mul => self.sse(pick(Packed::MULSS, Packed::MULSD), d, src),
            FloatBinOp::Div => self.sse(pick(Packed::DIVSS, Packed::DIVSD), d, src),
            FloatBinOp::Min | FloatBinOp::Max => {
                // minss/maxss return the second operand for NaN and for equal zeros, so
                // handle both cases by hand: NaN propagates via addition, and on equality
                // or/and of the bits gives -0 for min and +0 for max.
                let (nan, eq, done) = (
                    self.ops.new_dynamic_label(),
                    self.ops.new_dynamic_label(),
                    self.ops.new_dynamic_label(),
                );
                self.sse(pick(Packed::UCOMISS, Packed::UCOMISD), d, src);
                x64!(self.ops
                    ; jp =>nan
                    ; je =>eq
                );
                if op == FloatBinOp::Min {
                    self.sse(pick(Packed::MINSS, Packed::MINSD), d, src);
                } else {
                    self.sse(pick(Packed::MAXSS, Packed::MAXSD), d, src);
                }
                x64!(self.ops; jmp =>done; =>eq);
                if op == FloatBinOp::Min {
                    self.sse(Packed::ORPS, d, src);
                } else {
                    self.sse(Packed::ANDPS, d, src);
                }
                x64!(self.ops; jmp =>done; =>nan);
                self.sse(pick(Packed::ADDSS, Packed::ADDSD), d, src);
                x64!(self.ops; =>done);
            }
            FloatBinOp::Copysign => {}
        }
    }

    fn float_unop(&mut self, op: FloatUnOp, dst: Reg, src: Reg, size: OperandSize) {
        let (d, s) = (dst.hw, src.hw);
        let s64 = is64(size);
        match op {
            FloatUnOp::Abs | FloatUnOp::Neg => {
                enc::movd_from_xmm(&mut self.ops, s64, RAX, s);
                match (op == FloatUnOp::Abs, s64) {
                    (true, true) => x64!(self.ops; btr rax, 63),
                    (false, true) => x64!(self.ops; btc rax, 63),
                    (true, false) => x64!(self.ops; and eax, 0x7fff_ffff),
                    (false, false) => x64!(self.ops; xor eax, 0x8000_0000u32 as i32),
                }
                enc::movd_to_xmm(&mut self.ops, s64, d, RAX);
            }
            FloatUnOp::Sqrt => {
                let op = if s64 { Packed::SQRTSD } else { Packed::SQRTSS };
                if self.avx {
                    // No dependency on the old value of `d` (whose upper bits sqrtss keeps).
                    self.v3(op, d, s, s);
                } else {
                    self.sse(op, d, s);
                }
            }
            FloatUnOp::Ceil | FloatUnOp::Floor | FloatUnOp::Trunc | FloatUnOp::Nearest => {
                // SSE4.1 rounding modes (checked at engine creation).
                let mode = match op {
                    FloatUnOp::Nearest => 0,
                    FloatUnOp::Floor => 1,
                    FloatUnOp::Ceil => 2,
                    _ => 3,
                };
                enc::round(&mut self.ops, s64, d, s, mode);
            }
        }
    }

    fn float_cmp_set(&mut self, cc: FloatCmp, dst: Reg, lhs: Reg, rhs: Reg, size: OperandSize) {
        let d = dst.hw;
        self.float_compare(cc, lhs, rhs, size);
        match cc {
            FloatCmp::Eq => {
                enc::setcc(&mut self.ops, Cc::E, d);
                enc::setcc(&mut self.ops, Cc::Np, R11);
                x64!(self.ops; and Rb(d), r11b);
            }
            FloatCmp::Ne => {
                enc::setcc(&mut self.ops, Cc::Ne, d);
                enc::setcc(&mut self.ops, Cc::P, R11);
                x64!(self.ops; or Rb(d), r11b);
            }
            FloatCmp::Gt | FloatCmp::Lt => enc::setcc(&mut self.ops, Cc::A, d),
            FloatCmp::Ge | FloatCmp::Le => enc::setcc(&mut self.ops, Cc::Ae, d),
        }
        enc::extend(&mut self.ops, Ext::Zx8, d, Rm::Reg(d));
    }

    fn float_cmp_branch(
        &mut self,
        cc: FloatCmp,
        lhs: Reg,
        rhs: Reg,
        size: OperandSize,
        target: Label,
    ) {
        self.float_compare(cc, lhs, rhs, size);
        match cc {
            FloatCmp::Eq => {
                let skip = self.ops.new_dynamic_label();
                x64!(self.ops; jp =>skip; je =>target; =>skip);
            }
            FloatCmp::Ne => x64!(self.ops; jp =>target; jne =>target),
            FloatCmp::Gt | FloatCmp::Lt => x64!(self.ops; ja =>target),
            FloatCmp::Ge | FloatCmp::Le => x64!(self.ops; jae =>target),
        }
    }

    fn float_cmp_branch_not(
        &mut self,
        cc: FloatCmp,
        lhs: Reg,
        rhs: Reg,
        size: OperandSize,
        target: Label,
    ) {
        self.float_compare(cc, lhs, rhs, size);
        // An unordered result sets ZF, PF and CF, so `jbe`/`jb` also take the NaN case.
        match cc {
            FloatCmp::Eq => x64!(self.ops; jp =>target; jne =>target),
            FloatCmp::Ne => {
                let skip = self.ops.new_dynamic_label();
                x64!(self.ops; jp =>skip; je =>target; =>skip);
            }
            FloatCmp::Gt | FloatCmp::Lt => x64!(self.ops; jbe =>target),
            FloatCmp::Ge | FloatCmp::Le => x64!(self.ops; jb =>target),
        }
    }

    fn float_trap_if(
        &mut self,
        cc: FloatCmp,
        lhs: Reg,
        rhs: Reg,
        size: OperandSize,
        code: TrapCode,
    ) -> u32 {
        let (site, stub) = self.new_trap_stub(code);
        let pc = self.offset();
        x64!(self.ops; =>site);
        self.float_cmp_branch(cc, lhs, rhs, size, stub);
        pc
    }

    fn int_to_float(
        &mut self,
        dst: Reg,
        src: Reg,
        int_size: OperandSize,
        signed: bool,
        float_size: OperandSize,
    ) {
        let (d, s) = (dst.hw, src.hw);
        let f64_ = is64(float_size);
        self.sse(Packed::XORPS, d, d);
        match (int_size, signed) {
            (OperandSize::S32, true) => enc::cvt_int_to_float(&mut self.ops, f64_, false, d, s),
            // Zero-extended in its register: a non-negative i64.
            (OperandSize::S32, false) | (OperandSize::S64 | OperandSize::S128, true) => {
                if int_size == OperandSize::S32 {
                    enc::mov_rr(&mut self.ops, false, s, s);
                }
                enc::cvt_int_to_float(&mut self.ops, f64_, true, d, s);
            }
            (OperandSize::S64 | OperandSize::S128, false) => {
                // Values with the top bit set: halve (keeping the low bit for rounding),
                // convert, double.
                let (big, done) = (self.ops.new_dynamic_label(), self.ops.new_dynamic_label());
                enc::test_rr(&mut self.ops, true, s, s);
                x64!(self.ops; js =>big);
                enc::cvt_int_to_float(&mut self.ops, f64_, true, d, s);
                x64!(self.ops
                    ; jmp =>done
                    ;=>big
                );
                enc::mov_rr(&mut self.ops, true, RAX, s);
                enc::mov_rr(&mut self.ops, true, RCX, s);
                x64!(self.ops
                    ; shr rax, 1
                    ; and ecx, 1
                    ; or rax, rcx
                );
                enc::cvt_int_to_float(&mut self.ops, f64_, true, d, RAX);
                let add = if f64_ { Packed::ADDSD } else { Packed::ADDSS };
                self.sse(add, d, d);
                x64!(self.ops; =>done);
            }
        }
    }

    fn float_to_float(&mut self, dst: Reg, src: Reg, dst_size: OperandSize) {
        let op = if is64(dst_size) {
            Packed::CVTSS2SD
        } else {
            Packed::CVTSD2SS
        };
        if self.avx {
            // No dependency on the old value of `dst`.
            self.v3(op, dst.hw, src.hw, src.hw);
        } else {
            self.sse(op, dst.hw, src.hw);
        }
    }

    fn float_to_int(
        &mut self,
        dst: Reg,
        src: Reg,
        float_size: OperandSize,
        int_size: OperandSize,
        signed: bool,
    ) {
        let (d, s) = (dst.hw, src.hw);
        let f64_ = is64(float_size);
        match (int_size, signed) {
            (OperandSize::S32, true) => enc::cvt_float_to_int(&mut self.ops, f64_, false, d, s),
            (OperandSize::S32, false) => {
                enc::cvt_float_to_int(&mut self.ops, f64_, true, d, s);
                enc::mov_rr(&mut self.ops, false, d, d);
            }
            (OperandSize::S64 | OperandSize::S128, true) => {
                enc::cvt_float_to_int(&mut self.ops, f64_, true, d, s)
            }
            (OperandSize::S64 | OperandSize::S128, false) => {
                // At or above 2^63: subtract 2^63 first, then set the top bit.
                let (big, done) = (self.ops.new_dynamic_label(), self.ops.new_dynamic_label());
                let two63: i64 = if f64_ {
                    0x43e0_0000_0000_0000
                } else {
                    0x5f00_0000
                };
                self.mov(Reg::float(XMM_SCRATCH), RegImm::Imm(two63), float_size);
                let ucomi = if f64_ {
                    Packed::UCOMISD
                } else {
                    Packed::UCOMISS
                };
                self.sse(ucomi, s, XMM_SCRATCH);
                x64!(self.ops; jae =>big);
                enc::cvt_float_to_int(&mut self.ops, f64_, true, d, s);
                x64!(self.ops
                    ; jmp =>done
                    ;=>big
                );
                let sub = if f64_ { Packed::SUBSD } else { Packed::SUBSS };
                self.op3(sub, XMM0, s, XMM_SCRATCH);
                enc::cvt_float_to_int(&mut self.ops, f64_, true, d, XMM0);
                enc::btc_imm(&mut self.ops, d, 63);
                x64!(self.ops; =>done);
            }
        }
    }

    fn trap_if(
        &mut self,
        cc: IntCmp,
        lhs: Reg,
        rhs: RegImm,
        size: OperandSize,
        code: TrapCode,
    ) -> u32 {
        match rhs {
            RegImm::Imm(0) if matches!(cc, IntCmp::Eq | IntCmp::Ne) => self.test(lhs.hw, size),
            _ => self.cmp(lhs, rhs, size),
        }
        let (site, stub) = self.new_trap_stub(code);
        let pc = self.offset();
        x64!(self.ops; =>site);
        self.jcc(cc, stub);
        pc
    }

    fn trap(&mut self, code: TrapCode) -> u32 {
        let (site, stub) = self.new_trap_stub(code);
        let pc = self.offset();
        x64!(self.ops
            ;=>site
            ; jmp =>stub
        );
        pc
    }

    fn call(&mut self, target: CallTarget) -> u32 {
        match target {
            CallTarget::Direct => {
                // `call rel32`, the displacement filled in at placement (and maybe patched
                // later while code runs: a nop first makes it 4-byte aligned).
                self.align_rel32();
                self.ops.extend([0xE8, 0, 0, 0, 0]);
            }
            CallTarget::FuncRef { funcref: f } => {
                let (slot, membase_off) = (self.vmctx_slot, self.memory0_base);
                let f = f.hw;
                self.enter_funcref_instance(f);
                enc::call_mem(&mut self.ops, Mem::base(f, funcref::CODE));
                let ret = self.offset();
                enc::mov_load(&mut self.ops, true, R15, Mem::base(RBP, slot));
                enc::mov_load(&mut self.ops, true, R14, Mem::base(R15, membase_off));
                return ret;
            }
        }
        self.offset()
    }

    fn tail_call(&mut self, target: CallTarget) -> u32 {
        x64!(self.ops
            ; mov rsp, rbp
            ; pop rbp
        );
        match target {
            CallTarget::Direct => {
                // `jmp rel32`, its displacement 4-byte aligned like a direct call's.
                self.align_rel32();
                self.ops.extend([0xE9, 0, 0, 0, 0]);
            }
            CallTarget::FuncRef { funcref: f } => {
                let f = f.hw;
                self.enter_funcref_instance(f);
                enc::jmp_mem(&mut self.ops, Mem::base(f, funcref::CODE));
            }
        }
        self.offset()
    }

    fn reload_context(&mut self) {
        let (slot, membase_off) = (self.vmctx_slot, self.memory0_base);
        enc::mov_load(&mut self.ops, true, R15, Mem::base(RBP, slot));
        enc::mov_load(&mut self.ops, true, R14, Mem::base(R15, membase_off));
    }

    fn call_builtin(&mut self, fn_offset: i32, args: &[RegImm]) {
        // System V: rdi = vmctx, then rsi, rdx, rcx, r8. Sources may live in rsi/rdi/r8, so
        // first read every argument into registers that are never sources (the scratch
        // registers), then move them into place.
        debug_assert!(args.len() <= 4);
        let staged = [RAX, R11, RCX, RDX];
        for (arg, &tmp) in args.iter().zip(staged.iter()) {
            self.mov(Reg::int(tmp), *arg, OperandSize::S64);
        }
        if args.len() > 3 {
            x64!(self.ops; mov r8, rdx);
        }
        if !args.is_empty() {
            x64!(self.ops; mov rsi, rax);
        }
        if args.len() > 1 {
            x64!(self.ops; mov rdx, r11);
        }
        x64!(self.ops; mov rdi, vmctx);
        enc::call_mem(&mut self.ops, Mem::base(R15, fn_offset));
    }

    fn call_throw(&mut self, landing: i32, exn: Reg) -> u32 {
        if exn.hw != 7 {
            enc::mov_rr(&mut self.ops, true, 7, exn.hw); // rdi
        }
        enc::call_mem(&mut self.ops, Mem::base(R15, landing));
        self.offset()
    }

    fn v128_const(&mut self, dst: Reg, bits: u128) {
        let d = dst.hw;
        let (lo, hi) = (bits as u64 as i64, (bits >> 64) as u64 as i64);
        if bits == 0 {
            self.sse(Packed::PXOR, d, d);
        } else if bits == u128::MAX {
            self.sse(Packed::PCMPEQD, d, d);
        } else {
            // movq zeroes the high lane; pinsrq fills it when it is not zero.
            self.mov_int_imm(R11, lo, OperandSize::S64);
            enc::movd_to_xmm(&mut self.ops, true, d, R11);
            if hi != 0 {
                self.mov_int_imm(R11, hi, OperandSize::S64);
                enc::pinsrq(&mut self.ops, d, R11, 1);
            }
        }
    }

    fn v128_binop(&mut self, op: V128BinOp, dst: Reg, lhs: Reg, rhs: Reg) {
        use FloatLanes::*;
        use Lanes::*;
        if self.simd_binop(op, dst, lhs, rhs) {
            return;
        }
        if op == V128BinOp::Mul(I64x2) {
            return self.i64x2_mul(dst, lhs, rhs);
        }
        if let V128BinOp::FPMin(lanes) | V128BinOp::FPMax(lanes) = op {
            // minps(x, y) is `x < y ? x : y` and maxps(x, y) `x > y ? x : y`, so wasm's
            // pmin(a, b) = `b < a ? b : a` is minps(b, a) and pmax(a, b) = maxps(b, a).
            let sse = match (op, lanes) {
                (V128BinOp::FPMin(_), F32x4) => Packed::MINPS,
                (V128BinOp::FPMin(_), F64x2) => Packed::MINPD,
                (_, F32x4) => Packed::MAXPS,
                (_, F64x2) => Packed::MAXPD,
            };
            if self.avx {
                self.v3(sse, dst.hw, rhs.hw, lhs.hw);
                return;
            }
            self.sse(Packed::MOVAPS, XMM0, rhs.hw);
            self.sse(sse, XMM0, lhs.hw);
            self.sse(Packed::MOVAPS, dst.hw, XMM0);
            return;
        }
        if self.avx {
            let (d, l, r) = (dst.hw, lhs.hw, rhs.hw);
            return match op {
                // vpandn computes `!first & second`.
                V128BinOp::AndNot => self.v3(Packed::PANDN, d, r, l),
                _ => self.v3(Self::v128_binop_sse(op), d, l, r),
            };
        }
        let commutative = !matches!(
            op,
            V128BinOp::AndNot | V128BinOp::Sub(_) | V128BinOp::FSub(_) | V128BinOp::FDiv(_)
        );
        if dst.hw == rhs.hw && dst.hw != lhs.hw && commutative {
            return self.v128_binop(op, dst, rhs, lhs);
        }
        let d = dst.hw;
        let mut src = rhs.hw;
        if d != lhs.hw {
            if d == rhs.hw {
                self.sse(Packed::MOVAPS, XMM_SCRATCH, rhs.hw);
                src = XMM_SCRATCH;
            }
            self.sse(Packed::MOVAPS, d, lhs.hw);
        }
        if op == V128BinOp::AndNot {
            // pandn computes `!dst & src`: invert `src`'s role by computing into the
            // scratch register.
            self.movaps(XMM_SCRATCH, src);
            self.sse(Packed::PANDN, XMM_SCRATCH, d);
            self.sse(Packed::MOVAPS, d, XMM_SCRATCH);
            return;
        }
        self.sse(Self::v128_binop_sse(op), d, src);
    }

    fn v128_unop(&mut self, op: V128UnOp, dst: Reg, src: Reg) {
        if self.simd_unop(op, dst, src) {
            return;
        }
        let (d, s) = (dst.hw, src.hw);
        if self.avx && self.v128_unop_avx(op, d, s) {
            return;
        }
        match op {
            V128UnOp::Not => {
                self.sse(Packed::PCMPEQD, XMM_SCRATCH, XMM_SCRATCH);
                if d != s {
                    self.sse(Packed::MOVAPS, d, s);
                }
                self.sse(Packed::PXOR, d, XMM_SCRATCH);
            }
            V128UnOp::Neg(lanes) => {
                // 0 - src
                self.sse(Packed::MOVAPS, XMM_SCRATCH, s);
                self.sse(Packed::PXOR, d, d);
                self.v128_binop(V128BinOp::Sub(lanes), dst, dst, Reg::float(XMM_SCRATCH));
            }
            V128UnOp::Abs(Lanes::I8x16) => enc::packed(&mut self.ops, Packed::PABSB, d, Rm::Reg(s)),
            V128UnOp::Abs(Lanes::I16x8) => enc::packed(&mut self.ops, Packed::PABSW, d, Rm::Reg(s)),
            V128UnOp::Abs(Lanes::I32x4) => enc::packed(&mut self.ops, Packed::PABSD, d, Rm::Reg(s)),
            V128UnOp::Abs(Lanes::I64x2) => {
                // sign = 0 > src (all ones where negative); |src| = (src ^ sign) - sign.
                self.sse(Packed::PXOR, XMM_SCRATCH, XMM_SCRATCH);
                enc::packed(&mut self.ops, Packed::PCMPGTQ, XMM_SCRATCH, Rm::Reg(s));
                self.sse(Packed::MOVAPS, XMM0, s);
                self.sse(Packed::PXOR, XMM0, XMM_SCRATCH);
                self.sse(Packed::PSUBQ, XMM0, XMM_SCRATCH);
                self.sse(Packed::MOVAPS, d, XMM0);
            }
            V128UnOp::FNeg(lanes) | V128UnOp::FAbs(lanes) => {
                // The sign bits (neg: xor them) or all the other bits (abs: and them).
                let neg = matches!(op, V128UnOp::FNeg(_));
                let (shift_op, bits) = match lanes {
                    FloatLanes::F32x4 => (0x72, 31),
                    FloatLanes::F64x2 => (0x73, 63),
                };
                self.sse(Packed::PCMPEQD, XMM_SCRATCH, XMM_SCRATCH);
                if neg {
                    enc::pshift_imm(&mut self.ops, shift_op, 6, XMM_SCRATCH, bits);
                } else {
                    enc::pshift_imm(&mut self.ops, shift_op, 2, XMM_SCRATCH, 1);
                }
                if d != s {
                    self.sse(Packed::MOVAPS, d, s);
                }
                let op = if neg { Packed::XORPS } else { Packed::ANDPS };
                self.sse(op, d, XMM_SCRATCH);
            }
            V128UnOp::FSqrt(FloatLanes::F32x4) => self.sse(Packed::SQRTPS, d, s),
            V128UnOp::FSqrt(FloatLanes::F64x2) => self.sse(Packed::SQRTPD, d, s),
            _ => unreachable!("handled by simd_unop: {op:?}"),
        }
    }

    fn v128_test(&mut self, test: V128Test, dst: Reg, src: Reg) {
        self.simd_test(test, dst, src);
    }

    fn v128_test_branch(&mut self, test: V128Test, src: Reg, when: bool, target: Label) {
        self.simd_test_branch(test, src, when, target);
    }

    fn v128_shift(&mut self, op: V128Shift, dst: Reg, src: Reg, amount: RegImm) {
        self.simd_shift(op, dst, src, amount);
    }

    fn v128_splat(&mut self, dst: Reg, src: Reg, lanes: Lanes) {
        self.simd_splat(dst, src, lanes);
    }

    fn v128_extract_lane(&mut self, dst: Reg, src: Reg, lanes: Lanes, lane: u8, signed: bool) {
        self.simd_extract_lane(dst, src, lanes, lane, signed);
    }

    fn v128_replace_lane(&mut self, dst: Reg, src: Reg, lanes: Lanes, lane: u8) {
        self.simd_replace_lane(dst, src, lanes, lane);
    }

    fn v128_shuffle(&mut self, dst: Reg, lhs: Reg, rhs: Reg, lanes: [u8; 16]) {
        self.simd_shuffle(dst, lhs, rhs, lanes);
    }

    fn v128_bitselect(&mut self, dst: Reg, a: Reg, b: Reg, mask: Reg) {
        // dst = ((a ^ b) & mask) ^ b, computed in the scratch register so any aliasing
        // of `dst` with the sources is harmless.
        if self.avx {
            self.v3(Packed::PXOR, XMM_SCRATCH, a.hw, b.hw);
            self.v3(Packed::PAND, XMM_SCRATCH, XMM_SCRATCH, mask.hw);
            self.v3(Packed::PXOR, dst.hw, XMM_SCRATCH, b.hw);
            return;
        }
        self.sse(Packed::MOVAPS, XMM_SCRATCH, a.hw);
        self.sse(Packed::PXOR, XMM_SCRATCH, b.hw);
        self.sse(Packed::PAND, XMM_SCRATCH, mask.hw);
        self.sse(Packed::PXOR, XMM_SCRATCH, b.hw);
        self.sse(Packed::MOVAPS, dst.hw, XMM_SCRATCH);
    }

    fn v128_cmp(&mut self, cmp: V128Cmp, dst: Reg, lhs: Reg, rhs: Reg) {
        // Computed in `dst` where the operands survive that, else in xmm0 (free between
        // operators), so `dst` may alias the operands.
        let (a, b, d) = (lhs.hw, rhs.hw, dst.hw);
        let (work, invert) = match cmp {
            V128Cmp::Int(lanes, cc) => self.v128_int_cmp(lanes, cc, a, b, d),
            V128Cmp::Float(lanes, cc) => {
                let double = lanes == FloatLanes::F64x2;
                // cmpps predicates: 0 eq, 1 lt, 2 le, 4 neq (true when unordered).
                let (first, second, predicate) = match cc {
                    FloatCmp::Eq => (a, b, 0),
                    FloatCmp::Ne => (a, b, 4),
                    FloatCmp::Lt => (a, b, 1),
                    FloatCmp::Le => (a, b, 2),
                    FloatCmp::Gt => (b, a, 1),
                    FloatCmp::Ge => (b, a, 2),
                };
                if self.avx {
                    enc::vcmpp(&mut self.ops, double, d, first, second, predicate);
                    (d, false)
                } else {
                    let work = if d != second { d } else { XMM0 };
                    self.movaps(work, first);
                    enc::cmpp(&mut self.ops, double, work, second, predicate);
                    (work, false)
                }
            }
        };
        if invert {
            self.sse(Packed::PCMPEQD, XMM_SCRATCH, XMM_SCRATCH);
            if self.avx {
                self.v3(Packed::PXOR, d, work, XMM_SCRATCH);
                return;
            }
            self.sse(Packed::PXOR, work, XMM_SCRATCH);
        }
        self.movaps(d, work);
    }

    fn v128_load_lane(&mut self, dst: Reg, src: HeapAddress, lanes: Lanes, lane: u8) -> u32 {
        let m = self.heap_operand(src);
        let pc = self.offset();
        enc::pinsr_mem(&mut self.ops, (lanes.bits() / 8) as u8, dst.hw, m, lane);
        pc
    }

    fn v128_store_lane(&mut self, src: Reg, dst: HeapAddress, lanes: Lanes, lane: u8) -> u32 {
        let m = self.heap_operand(dst);
        let pc = self.offset();
        enc::pextr_mem(&mut self.ops, (lanes.bits() / 8) as u8, m, src.hw, lane);
        pc
    }

    fn reserve_for_body(&mut self, wasm_bytes: usize) {
        // About 3 bytes of code per byte of wasm on the kernels and big modules.
        // The buffer is kept from one function to the next, so this only grows it (to the
        // largest function so far); a smaller body allocates nothing.
        self.ops.reserve(wasm_bytes * 3 + 64);
    }

    fn reset(&mut self) {
        // After `finish` nothing is left; after a failure, forget the partial function (the
        // buffer keeps its capacity).
        self.ops.clear();
        self.stubs.clear();
        self.frame_size_patch = None;
    }

    fn finish(&mut self, frame_size: u32) -> Result<Vec<u8>> {
        if !self.stubs.is_empty() {
            let common = self.ops.new_dynamic_label();
            let stubs = std::mem::take(&mut self.stubs);
            for s in &stubs {
                let (stub, site, code) = (s.stub, s.site, s.code as u8 as i32);
                x64!(self.ops
                    ;=>stub
                    ; mov edi, code
                    ; lea rsi, [=>site]
                    ; jmp =>common
                );
            }
            let landing = self.trap_landing;
            x64!(self.ops
                ;=>common
                ; mov rdx, rbp
            );
            enc::jmp_mem(&mut self.ops, Mem::base(R15, landing));
        }
        let patch = self.frame_size_patch;
        self.frame_size_patch = None;
        let mut code = self
            .ops
            .take_code()
            .map_err(|e| CompileError::internal(format!("x64 assembly: {e}")))?;
        if let Some(at) = patch {
            let size = i32::try_from(frame_size)
                .map_err(|_| CompileError::unsupported_feature("frame larger than 2 GiB".into()))?;
            code[at..at + 4].copy_from_slice(&size.to_le_bytes());
        }
        Ok(code)
    }
}
