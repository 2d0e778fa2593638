//! [`MacroAssembler`] for AArch64.
//!
//! Instructions with immediates or addressing modes are encoded by [`super::enc`] after
//! legalisation (so no input can reach a dynasm range panic); label-relative branches go
//! through dynasm, whose relocations are resolved in [`MacroAssembler::finish`].
//!
//! Branch ranges: `b.cond`/`cbz` reach only +-1 MiB. A conditional branch to a label bound
//! too far back is emitted as the inverted condition skipping an unconditional `b`
//! (+-128 MiB). Forward conditional branches (to block ends and trap stubs) are single
//! instructions while the function stays below 1 MiB of code, which `finish` checks; a
//! bigger function is compiled again with the two-instruction form for every forward
//! branch ([`MacroAssembler::use_long_branches`]).

use super::a64;
use super::enc::{
    self, Cond, Cvt, Dp1, Dp2, Extend as Ext, Fp1, Fp2, LdSt, LogicOp, VAcross, VArith, VArith2,
    VCmp, VFCvt, VFMisc, VFloat, VLogic, VMisc, VMisc2, VNarrow, VSize, SP, ZR,
};
use crate::isa::buffer::CodeBuffer;
use crate::masm::*;
use crate::vmctx::{funcref, VMOffsets};
use crate::{CompileError, TrapCode};
use dynasmrt::aarch64::Aarch64Relocation;
use dynasmrt::{DynasmApi, DynasmLabelApi};

/// Frame pointer.
pub(super) const FP: u8 = 29;
/// vmctx (pinned).
pub(super) const VMCTX: u8 = 28;
/// Base of memory 0 (pinned).
pub(super) const MEMBASE: u8 = 27;
/// Caller's vmctx while calling through a `VMFuncRef` (read by the host-call stub).
pub(super) const CALLER_CTX: u8 = 15;
/// Scratch registers of this backend.
const X16: u8 = 16;
const X17: u8 = 17;
/// Float and vector scratch register.
const V30: u8 = 30;
/// Second vector scratch register (with `v30`, the consecutive table pair of a two-register
/// `tbl`; also the constants of the bitmask sequences).
const V31: u8 = 31;

/// Allocatable integer registers.
static INT_REGS: [Reg; 14] = [
    Reg::int(9),
    Reg::int(10),
    Reg::int(11),
    Reg::int(12),
    Reg::int(13),
    Reg::int(14),
    Reg::int(19),
    Reg::int(20),
    Reg::int(21),
    Reg::int(22),
    Reg::int(23),
    Reg::int(24),
    Reg::int(25),
    Reg::int(26),
];

/// Allocatable float registers (v8-v15 are callee-saved in AAPCS64, so host calls keep
/// them too; the entry stub saves them for its caller). AAPCS64 preserves only their low
/// 64 bits: a v128 value does not survive a host call in any vector register.
static FLOAT_REGS: [Reg; 22] = [
    Reg::float(16),
    Reg::float(17),
    Reg::float(18),
    Reg::float(19),
    Reg::float(20),
    Reg::float(21),
    Reg::float(22),
    Reg::float(23),
    Reg::float(8),
    Reg::float(9),
    Reg::float(10),
    Reg::float(11),
    Reg::float(12),
    Reg::float(13),
    Reg::float(14),
    Reg::float(15),
    Reg::float(24),
    Reg::float(25),
    Reg::float(26),
    Reg::float(27),
    Reg::float(28),
    Reg::float(29),
];

/// Registers for breaking cycles of parallel moves (free between call sequences).
const MOVE_SCRATCH_INT: u8 = 8;
const MOVE_SCRATCH_FLOAT: u8 = 7;

/// Logical-immediate encodings (`N:immr:imms`) of the float sign and magnitude masks.
pub(super) const MAG_MASK_64: u32 = 0x103E;
pub(super) const SIGN_MASK_64: u32 = 0x1040;
pub(super) const MAG_MASK_32: u32 = 0x1E;
pub(super) const SIGN_MASK_32: u32 = 0x40;

/// Largest backward distance a `b.cond`/`cbz` reaches, with a margin.
const COND_RANGE: usize = (1 << 20) - 16;

/// A pending out-of-line trap stub: the branch at `site` jumps to `stub`.
struct TrapStub {
    site: Label,
    stub: Label,
    code: TrapCode,
}

/// AArch64 macro assembler for one function.
pub struct Aarch64Masm {
    ops: CodeBuffer<Aarch64Relocation>,
    stubs: Vec<TrapStub>,
    /// Offset of the `movz x16, #lo; movk x16, #hi, lsl #16` pair holding the frame size.
    frame_size_patch: Option<usize>,
    vmctx_slot: i32,
    trap_landing: i32,
    memory0_base: i32,
    stack_limit: i32,
    /// Forward conditional branches take the two-instruction form that reaches +-128 MiB.
    long_branches: bool,
    /// The last `finish` failed because short forward branches could not reach.
    outgrew_short_branches: bool,
}

fn is64(size: OperandSize) -> bool {
    size == OperandSize::S64
}

/// `v` truncated to the width of `size`.
fn at_width(v: i64, size: OperandSize) -> u64 {
    match size {
        OperandSize::S32 => v as u32 as u64,
        OperandSize::S64 | OperandSize::S128 => v as u64,
    }
}

/// The lane size of half the width of `lanes` (the source of widening, the result of
/// narrowing); `I8x16` has none and maps to itself.
fn half(lanes: Lanes) -> VSize {
    match lanes {
        Lanes::I8x16 | Lanes::I16x8 => VSize::B16,
        Lanes::I32x4 => VSize::H8,
        Lanes::I64x2 => VSize::S4,
    }
}

fn vsize(lanes: Lanes) -> VSize {
    match lanes {
        Lanes::I8x16 => VSize::B16,
        Lanes::I16x8 => VSize::H8,
        Lanes::I32x4 => VSize::S4,
        Lanes::I64x2 => VSize::D2,
    }
}

fn int_cond(cc: IntCmp) -> Cond {
    match cc {
        IntCmp::Eq => Cond::Eq,
        IntCmp::Ne => Cond::Ne,
        IntCmp::LtS => Cond::Lt,
        IntCmp::LtU => Cond::Lo,
        IntCmp::GtS => Cond::Gt,
        IntCmp::GtU => Cond::Hi,
        IntCmp::LeS => Cond::Le,
        IntCmp::LeU => Cond::Ls,
        IntCmp::GeS => Cond::Ge,
        IntCmp::GeU => Cond::Hs,
    }
}

/// Conditions after `fcmp lhs, rhs` that are false for unordered operands (but `Ne`).
fn float_cond(cc: FloatCmp) -> Cond {
    match cc {
        FloatCmp::Eq => Cond::Eq,
        FloatCmp::Ne => Cond::Ne,
        FloatCmp::Lt => Cond::Mi,
        FloatCmp::Le => Cond::Ls,
        FloatCmp::Gt => Cond::Gt,
        FloatCmp::Ge => Cond::Ge,
    }
}

/// How a conditional branch tests: flags, or a register against zero.
#[derive(Clone, Copy)]
enum Test {
    Flags(Cond),
    /// `cbz` (`nonzero` false) / `cbnz` of a W or X register.
    Zero {
        is64: bool,
        nonzero: bool,
        reg: u8,
    },
}

impl Test {
    fn invert(self) -> Test {
        match self {
            Test::Flags(c) => Test::Flags(c.invert()),
            Test::Zero { is64, nonzero, reg } => Test::Zero {
                is64,
                nonzero: !nonzero,
                reg,
            },
        }
    }
}

impl Aarch64Masm {
    /// A fresh assembler for a function of a module with this vmctx layout.
    pub fn new(offsets: &VMOffsets) -> Aarch64Masm {
        Aarch64Masm {
            ops: CodeBuffer::new(),
            stubs: Vec::new(),
            frame_size_patch: None,
            vmctx_slot: -8,
            trap_landing: offsets.trap_landing(),
            memory0_base: offsets.memory0_base(),
            stack_limit: offsets.stack_limit(),
            long_branches: false,
            outgrew_short_branches: false,
        }
    }

    fn emit(&mut self, word: u32) {
        self.ops.push_u32(word);
    }

    fn here(&self) -> usize {
        self.ops.offset().0
    }

    fn base_disp(addr: Address) -> (u8, i64) {
        match addr {
            Address::Frame(d) => (FP, d.into()),
            Address::Outgoing(d) => (SP, d.into()),
            Address::Vmctx(d) => (VMCTX, d.into()),
            Address::Base(r, d) => (r.hw, d.into()),
        }
    }

    /// `rd = v` (32- or 64-bit constant).
    fn mov_imm(&mut self, rd: u8, v: u64, is64: bool) {
        for w in enc::mov_imm_seq(rd, v, is64) {
            self.emit(w);
        }
    }

    /// `mov rd, rn` of an int register (the 32-bit form zero-extends).
    fn mov_int(&mut self, rd: u8, rn: u8, is64: bool) {
        if rd != rn || !is64 {
            self.emit(enc::logical_reg(is64, LogicOp::Orr, false, rd, ZR, rn));
        }
    }

    /// One load or store of `rt` at `[base + disp]`; `base` 31 is `sp`. Uses `x16` for a
    /// displacement no immediate form can express.
    fn ldst(&mut self, kind: LdSt, rt: u8, base: u8, disp: i64) {
        if let Some(u) = kind.uimm(disp) {
            self.emit(kind.scaled(rt, base, u));
        } else if LdSt::simm9(disp) {
            self.emit(kind.unscaled(rt, base, disp as i32));
        } else {
            self.mov_imm(X16, disp as u64, true);
            self.emit(kind.indexed(rt, base, X16, Ext::Uxtx, false));
        }
    }

    /// `rd = rn + v` or `rd = rn - v` at the given width (`v` truncated to it); `rd`/`rn` may
    /// be `sp`. Uses `x16` when `v` has no immediate form.
    fn add_sub_imm(&mut self, is64: bool, sub: bool, rd: u8, rn: u8, v: u64) {
        let mask = if is64 { u64::MAX } else { 0xffff_ffff };
        let v = v & mask;
        if let Some((imm, sh)) = enc::add_imm(v) {
            self.emit(enc::add_sub_imm(is64, sub, false, rd, rn, imm, sh));
        } else if let Some((imm, sh)) = enc::add_imm(v.wrapping_neg() & mask) {
            self.emit(enc::add_sub_imm(is64, !sub, false, rd, rn, imm, sh));
        } else {
            self.mov_imm(X16, v, is64);
            let ext = if is64 { Ext::Uxtx } else { Ext::Uxtw };
            self.emit(enc::add_sub_ext(is64, sub, false, rd, rn, X16, ext, 0));
        }
    }

    /// Sets the flags for `lhs - rhs` at `size`.
    fn cmp(&mut self, lhs: Reg, rhs: RegImm, size: OperandSize) {
        let w = is64(size);
        match rhs {
            RegImm::Reg(r) => self.emit(enc::add_sub_reg(w, true, true, ZR, lhs.hw, r.hw)),
            RegImm::Imm(i) => {
                let mask = if w { u64::MAX } else { 0xffff_ffff };
                let v = at_width(i, size);
                let neg = v.wrapping_neg() & mask;
                if let Some((imm, sh)) = enc::add_imm(v) {
                    self.emit(enc::add_sub_imm(w, true, true, ZR, lhs.hw, imm, sh));
                } else if let Some((imm, sh)) = enc::add_imm(neg) {
                    // cmn: a + (-v) sets the same flags as a - v for v != 0, v != MIN.
                    self.emit(enc::add_sub_imm(w, false, true, ZR, lhs.hw, imm, sh));
                } else {
                    self.mov_imm(X16, v, w);
                    self.emit(enc::add_sub_reg(w, true, true, ZR, lhs.hw, X16));
                }
            }
        }
    }

    /// The test for `lhs cc rhs`, emitting the comparison if one is needed.
    fn int_test(&mut self, cc: IntCmp, lhs: Reg, rhs: RegImm, size: OperandSize) -> Test {
        match (cc, rhs) {
            (IntCmp::Eq | IntCmp::Ne, RegImm::Imm(i)) if at_width(i, size) == 0 => Test::Zero {
                is64: is64(size),
                nonzero: cc == IntCmp::Ne,
                reg: lhs.hw,
            },
            _ => {
                self.cmp(lhs, rhs, size);
                Test::Flags(int_cond(cc))
            }
        }
    }

    /// The backward distance to `target` if it is bound.
    fn bound_distance(&self, target: Label) -> Option<usize> {
        let at = self.ops.labels().resolve_dynamic(target).ok()?;
        self.here().checked_sub(at.0)
    }

    /// `b.cond`/`cbz` straight to a label (must be in range).
    fn branch_direct(&mut self, test: Test, t: Label) {
        match test {
            Test::Zero {
                is64: true,
                nonzero: false,
                reg,
            } => a64!(self.ops; cbz X(reg), =>t),
            Test::Zero {
                is64: true,
                nonzero: true,
                reg,
            } => a64!(self.ops; cbnz X(reg), =>t),
            Test::Zero {
                is64: false,
                nonzero: false,
                reg,
            } => a64!(self.ops; cbz W(reg), =>t),
            Test::Zero {
                is64: false,
                nonzero: true,
                reg,
            } => a64!(self.ops; cbnz W(reg), =>t),
            Test::Flags(c) => match c {
                Cond::Eq => a64!(self.ops; b.eq =>t),
                Cond::Ne => a64!(self.ops; b.ne =>t),
                Cond::Hs => a64!(self.ops; b.hs =>t),
                Cond::Lo => a64!(self.ops; b.lo =>t),
                Cond::Mi => a64!(self.ops; b.mi =>t),
                Cond::Pl => a64!(self.ops; b.pl =>t),
                Cond::Hi => a64!(self.ops; b.hi =>t),
                Cond::Ls => a64!(self.ops; b.ls =>t),
                Cond::Ge => a64!(self.ops; b.ge =>t),
                Cond::Lt => a64!(self.ops; b.lt =>t),
                Cond::Gt => a64!(self.ops; b.gt =>t),
                Cond::Le => a64!(self.ops; b.le =>t),
            },
        }
    }

    /// The inverse of `test` skipping the next instruction.
    fn skip_unless(&mut self, test: Test) {
        match test.invert() {
            Test::Flags(c) => self.emit(enc::bcond_skip(c)),
            Test::Zero { is64, nonzero, reg } => self.emit(enc::cbz_skip(is64, nonzero, reg)),
        }
    }

    /// Branches to `target` if `test` holds, at any distance up to +-128 MiB.
    fn branch_if(&mut self, test: Test, target: Label) {
        match self.bound_distance(target) {
            Some(d) if d < COND_RANGE => self.branch_direct(test, target),
            // Forward: in reach unless the function outgrows COND_RANGE (see `finish`).
            None if !self.long_branches => self.branch_direct(test, target),
            _ => {
                self.skip_unless(test);
                a64!(self.ops; b =>target);
            }
        }
    }

    fn new_trap_stub(&mut self, code: TrapCode) -> (Label, Label) {
        let site = self.ops.new_dynamic_label();
        let stub = self.ops.new_dynamic_label();
        self.stubs.push(TrapStub { site, stub, code });
        (site, stub)
    }

    fn bind_here(&mut self, label: Label) {
        a64!(self.ops; =>label);
    }

    /// Branches to a new trap stub if `test` holds; returns the pc of the branch.
    fn trap_on(&mut self, test: Test, code: TrapCode) -> u32 {
        let (site, stub) = self.new_trap_stub(code);
        let pc = self.offset();
        self.bind_here(site);
        if self.long_branches {
            self.skip_unless(test);
            a64!(self.ops; b =>stub);
        } else {
            // Stubs follow the body: in reach unless the function outgrows COND_RANGE.
            self.branch_direct(test, stub);
        }
        pc
    }

    /// Switches to the instance of the `VMFuncRef` in `f` before calling or jumping to it:
    /// its vmctx (carrying over the stack limit) and its memory base; the caller's vmctx
    /// stays in `CALLER_CTX`.
    fn enter_funcref_instance(&mut self, f: u8) {
        let limit = i64::from(self.stack_limit);
        self.mov_int(CALLER_CTX, VMCTX, true);
        self.ldst(LdSt::LDR_X, VMCTX, f, funcref::VMCTX.into());
        self.ldst(LdSt::LDR_X, X17, CALLER_CTX, limit);
        self.ldst(LdSt::STR_X, X17, VMCTX, limit);
        self.ldst(LdSt::LDR_X, MEMBASE, VMCTX, self.memory0_base.into());
    }

    /// Heap operand `membase + zero_extend(index) + offset` as (base, index) for a
    /// `[base, w_index, uxtw]` access; `x16` holds `membase + offset` when `offset != 0`.
    fn heap_base(&mut self, addr: HeapAddress) -> (u8, u8) {
        let base = addr.base.map_or(MEMBASE, |b| b.hw);
        if addr.offset == 0 {
            (base, addr.index.hw)
        } else {
            self.add_sub_imm(true, false, X16, base, u64::from(addr.offset));
            (X16, addr.index.hw)
        }
    }

    /// `x16 = membase + zero_extend(index) + offset` (for the instructions that take a bare
    /// base register).
    fn heap_addr_x16(&mut self, addr: HeapAddress) {
        let (b, i) = self.heap_base(addr);
        self.emit(enc::add_sub_ext(
            true,
            false,
            false,
            X16,
            b,
            i,
            Ext::Uxtw,
            0,
        ));
    }

    /// `ld1`/`st1` of one lane at a linear-memory address (computed into x16, as these
    /// instructions take a bare base register); returns the pc of the access.
    fn lane_access(
        &mut self,
        load: bool,
        v: Reg,
        addr: HeapAddress,
        lanes: Lanes,
        lane: u8,
    ) -> u32 {
        self.heap_addr_x16(addr);
        let bytes = match lanes {
            Lanes::I8x16 => 1,
            Lanes::I16x8 => 2,
            Lanes::I32x4 => 4,
            Lanes::I64x2 => 8,
        };
        let pc = self.offset();
        self.emit(enc::ld1_st1_lane(load, bytes, v.hw, X16, lane));
        pc
    }

    fn blr_x16(&mut self) {
        self.emit(enc::blr(X16));
    }

    /// `vd.2d = vn.2d * vm.2d` (wrapping): NEON has no 64-bit lane multiply, so each lane
    /// goes through x16/x17. Lane 0 of `vd` is written only after both lane-0 sources are
    /// read and lane 1 reads only lane 1, so `vd` may alias either source.
    fn i64x2_mul(&mut self, vd: u8, vn: u8, vm: u8) {
        for lane in 0..2 {
            self.emit(enc::umov_d(X16, vn, lane));
            self.emit(enc::umov_d(X17, vm, lane));
            self.emit(enc::madd(true, false, X16, X16, X17, ZR));
            self.emit(enc::ins_d(vd, lane, X16));
        }
    }
}

impl MacroAssembler for Aarch64Masm {
    fn allocatable(&self, class: RegClass) -> &'static [Reg] {
        match class {
            RegClass::Int => &INT_REGS,
            RegClass::Float => &FLOAT_REGS,
        }
    }

    fn move_scratch(&self, class: RegClass) -> Reg {
        match class {
            RegClass::Int => Reg::int(MOVE_SCRATCH_INT),
            RegClass::Float => Reg::float(MOVE_SCRATCH_FLOAT),
        }
    }

    fn return_reg(&self, class: RegClass) -> Reg {
        match class {
            RegClass::Int => Reg::int(0),
            RegClass::Float => Reg::float(0),
        }
    }

    fn offset(&self) -> u32 {
        self.here() as u32
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
        a64!(self.ops; b =>target);
    }

    fn prologue(&mut self, vmctx_slot: i32, stack_limit_offset: i32) -> Result<u32> {
        self.vmctx_slot = vmctx_slot;
        self.stack_limit = stack_limit_offset;
        a64!(self.ops
            ; stp x29, x30, [sp, #-16]!
            ; mov x29, sp
        );
        // Frame size: patched in `finish`.
        self.frame_size_patch = Some(self.here());
        self.emit(enc::mov_wide(true, enc::MovWide::Z, X16, 0, 0));
        self.emit(enc::mov_wide(true, enc::MovWide::K, X16, 0, 1));
        self.emit(enc::add_sub_ext(
            true,
            true,
            false,
            SP,
            SP,
            X16,
            Ext::Uxtx,
            0,
        ));
        self.ldst(LdSt::LDR_X, X16, VMCTX, stack_limit_offset.into());
        self.emit(enc::add_sub_ext(
            true,
            true,
            true,
            ZR,
            SP,
            X16,
            Ext::Uxtx,
            0,
        ));
        let pc = self.trap_on(Test::Flags(Cond::Lo), TrapCode::StackOverflow);
        self.ldst(LdSt::STR_X, VMCTX, FP, vmctx_slot.into());
        Ok(pc)
    }

    fn zero_frame(&mut self, start: i32, len: u32) {
        let words = len / 8;
        let start = i64::from(start);
        if words <= 16 {
            let mut i = 0;
            while i < words {
                let off = start + 8 * i64::from(i);
                if i + 1 < words && (-512..=504).contains(&off) {
                    self.emit(enc::ldp_stp_x(false, ZR, ZR, FP, off as i32));
                    i += 2;
                } else {
                    self.ldst(LdSt::STR_X, ZR, FP, off);
                    i += 1;
                }
            }
        } else {
            // Only used in the prologue: x16/x17 are free.
            self.add_sub_imm(true, false, X16, FP, start as u64);
            self.mov_imm(X17, u64::from(words / 2), true);
            // loop: stp xzr, xzr, [x16], #16; subs x17, x17, #1; b.ne loop
            self.emit(0xA880_0000 | 2 << 15 | u32::from(ZR) << 10 | u32::from(X16) << 5 | 31);
            self.emit(enc::add_sub_imm(true, true, true, X17, X17, 1, false));
            self.emit(0x5400_0000 | (((-2i32) as u32) & 0x7ffff) << 5 | Cond::Ne as u32);
            if words % 2 == 1 {
                self.ldst(LdSt::STR_X, ZR, X16, 0);
            }
        }
    }

    fn epilogue(&mut self) {
        a64!(self.ops
            ; mov sp, x29
            ; ldp x29, x30, [sp], #16
            ; ret
        );
    }

    fn mov(&mut self, dst: Reg, src: RegImm, size: OperandSize) {
        if size == OperandSize::S128 {
            match src {
                RegImm::Reg(s) => {
                    debug_assert!(dst.class == RegClass::Float && s.class == RegClass::Float);
                    if s.hw != dst.hw {
                        self.emit(enc::vmov(dst.hw, s.hw));
                    }
                }
                // Not asked for by the core (a v128 constant does not fit an `Imm`): the
                // value zero-extended to 128 bits.
                RegImm::Imm(i) => self.v128_const(dst, u128::from(i as u64)),
            }
            return;
        }
        let d = dst.hw;
        let w = is64(size);
        match (dst.class, src) {
            (RegClass::Int, RegImm::Reg(s)) => {
                if s.class == RegClass::Float {
                    self.emit(enc::cvt(w, w, Cvt::FmovToGp, d, s.hw));
                } else {
                    self.mov_int(d, s.hw, w);
                }
            }
            (RegClass::Int, RegImm::Imm(i)) => self.mov_imm(d, at_width(i, size), w),
            (RegClass::Float, RegImm::Reg(s)) => {
                if s.class == RegClass::Int {
                    self.emit(enc::cvt(w, w, Cvt::FmovFromGp, d, s.hw));
                } else if s.hw != d {
                    self.emit(enc::fp1(true, Fp1::Fmov, d, s.hw));
                }
            }
            (RegClass::Float, RegImm::Imm(bits)) => {
                let bits = at_width(bits, size);
                if bits == 0 {
                    self.emit(enc::cvt(w, w, Cvt::FmovFromGp, d, ZR));
                } else {
                    self.mov_imm(X16, bits, w);
                    self.emit(enc::cvt(w, w, Cvt::FmovFromGp, d, X16));
                }
            }
        }
    }

    fn load(&mut self, dst: Reg, src: Address, size: OperandSize) {
        let (b, disp) = Self::base_disp(src);
        let kind = match (dst.class, size) {
            (RegClass::Int, OperandSize::S32) => LdSt::LDR_W,
            (RegClass::Int, OperandSize::S64) => LdSt::LDR_X,
            (RegClass::Float, OperandSize::S32) => LdSt::LDR_S,
            (RegClass::Float, OperandSize::S64) => LdSt::LDR_D,
            (_, OperandSize::S128) => LdSt::LDR_Q,
        };
        self.ldst(kind, dst.hw, b, disp);
    }

    fn store(&mut self, src: RegImm, dst: Address, size: OperandSize) {
        let (b, disp) = Self::base_disp(dst);
        let (kind, rt) = match src {
            RegImm::Reg(s) => {
                let kind = match (s.class, size) {
                    (RegClass::Int, OperandSize::S32) => LdSt::STR_W,
                    (RegClass::Int, OperandSize::S64) => LdSt::STR_X,
                    (RegClass::Float, OperandSize::S32) => LdSt::STR_S,
                    (RegClass::Float, OperandSize::S64) => LdSt::STR_D,
                    (_, OperandSize::S128) => LdSt::STR_Q,
                };
                (kind, s.hw)
            }
            RegImm::Imm(i) if size == OperandSize::S128 => {
                // Not asked for by the core: the value zero-extended to 128 bits.
                self.v128_const(Reg::float(V30), u128::from(i as u64));
                (LdSt::STR_Q, V30)
            }
            RegImm::Imm(i) => {
                let v = at_width(i, size);
                let rt = if v == 0 {
                    ZR
                } else {
                    self.mov_imm(X17, v, is64(size));
                    X17
                };
                let kind = if is64(size) { LdSt::STR_X } else { LdSt::STR_W };
                (kind, rt)
            }
        };
        self.ldst(kind, rt, b, disp);
    }

    fn copy(&mut self, dst: Address, src: Address, size: OperandSize) {
        if dst == src {
            return;
        }
        let (sb, sd) = Self::base_disp(src);
        let (db, dd) = Self::base_disp(dst);
        let (ld, st, tmp) = match size {
            OperandSize::S32 => (LdSt::LDR_W, LdSt::STR_W, X17),
            OperandSize::S64 => (LdSt::LDR_X, LdSt::STR_X, X17),
            // Through the vector scratch (`ldst` may need x16 for the address).
            OperandSize::S128 => (LdSt::LDR_Q, LdSt::STR_Q, V30),
        };
        self.ldst(ld, tmp, sb, sd);
        self.ldst(st, tmp, db, dd);
    }

    fn lea(&mut self, dst: Reg, src: Address) {
        let (b, disp) = Self::base_disp(src);
        self.add_sub_imm(true, false, dst.hw, b, disp as u64);
    }

    fn load_heap(&mut self, dst: Reg, src: HeapAddress, kind: LoadKind) -> u32 {
        let (b, i) = self.heap_base(src);
        let k = match kind {
            LoadKind::I32 | LoadKind::I64U32 => LdSt::LDR_W,
            LoadKind::I64 => LdSt::LDR_X,
            LoadKind::F32 => LdSt::LDR_S,
            LoadKind::F64 => LdSt::LDR_D,
            LoadKind::I32S8 => LdSt::LDRSB_W,
            LoadKind::I32U8 | LoadKind::I64U8 => LdSt::LDRB,
            LoadKind::I32S16 => LdSt::LDRSH_W,
            LoadKind::I32U16 | LoadKind::I64U16 => LdSt::LDRH,
            LoadKind::I64S8 => LdSt::LDRSB_X,
            LoadKind::I64S16 => LdSt::LDRSH_X,
            LoadKind::I64S32 => LdSt::LDRSW,
            LoadKind::V128 => LdSt::LDR_Q,
            LoadKind::V128Splat(lanes) => {
                // `ld1r` takes a bare base register: the address into x16 (`b` may be x16).
                self.emit(enc::add_sub_ext(
                    true,
                    false,
                    false,
                    X16,
                    b,
                    i,
                    Ext::Uxtw,
                    0,
                ));
                let pc = self.offset();
                self.emit(enc::ld1r(vsize(lanes), dst.hw, X16));
                return pc;
            }
            LoadKind::V128Extend(..) | LoadKind::V128Zero(Lanes::I64x2) => LdSt::LDR_D,
            LoadKind::V128Zero(_) => LdSt::LDR_S,
        };
        let pc = self.offset();
        // `ldr s`/`ldr d` zero the rest of the vector register.
        self.emit(k.indexed(dst.hw, b, i, Ext::Uxtw, false));
        if let LoadKind::V128Extend(lanes, signed) = kind {
            self.emit(enc::vshll(signed, false, half(lanes), dst.hw, dst.hw, 0));
        }
        pc
    }

    fn store_heap(&mut self, src: RegImm, dst: HeapAddress, kind: StoreKind) -> u32 {
        let (k, wide) = match kind {
            StoreKind::I8 => (LdSt::STRB, false),
            StoreKind::I16 => (LdSt::STRH, false),
            StoreKind::I32 => (LdSt::STR_W, false),
            StoreKind::I64 => (LdSt::STR_X, true),
            StoreKind::F32 => (LdSt::STR_S, false),
            StoreKind::F64 => (LdSt::STR_D, true),
            StoreKind::V128 => (LdSt::STR_Q, false),
        };
        let (k, rt) = match src {
            RegImm::Reg(s) => (k, s.hw),
            RegImm::Imm(v) if kind == StoreKind::V128 => {
                // Not asked for by the core: the value zero-extended to 128 bits.
                self.v128_const(Reg::float(V30), u128::from(v as u64));
                (k, V30)
            }
            RegImm::Imm(v) => {
                // Immediates (also float bits) are stored from an int register.
                let k = match kind {
                    StoreKind::F32 => LdSt::STR_W,
                    StoreKind::F64 => LdSt::STR_X,
                    _ => k,
                };
                let bits = if wide { v as u64 } else { v as u32 as u64 };
                if bits == 0 {
                    (k, ZR)
                } else {
                    self.mov_imm(X17, bits, wide);
                    (k, X17)
                }
            }
        };
        let (b, i) = self.heap_base(dst);
        let pc = self.offset();
        self.emit(k.indexed(rt, b, i, Ext::Uxtw, false));
        pc
    }

    fn alu(&mut self, op: AluOp, dst: Reg, lhs: Reg, rhs: RegImm, size: OperandSize) {
        let (d, l) = (dst.hw, lhs.hw);
        let w = is64(size);
        let mask = if w { u64::MAX } else { 0xffff_ffff };
        let logic = |op: AluOp| match op {
            AluOp::And => LogicOp::And,
            AluOp::Or => LogicOp::Orr,
            _ => LogicOp::Eor,
        };
        match rhs {
            RegImm::Reg(r) => {
                let r = r.hw;
                match op {
                    AluOp::Add => self.emit(enc::add_sub_reg(w, false, false, d, l, r)),
                    AluOp::Sub => self.emit(enc::add_sub_reg(w, true, false, d, l, r)),
                    AluOp::Mul => self.emit(enc::madd(w, false, d, l, r, ZR)),
                    AluOp::And | AluOp::Or | AluOp::Xor => {
                        self.emit(enc::logical_reg(w, logic(op), false, d, l, r))
                    }
                }
            }
            RegImm::Imm(i) => {
                let v = at_width(i, size);
                match op {
                    AluOp::Add => self.add_sub_imm(w, false, d, l, v),
                    AluOp::Sub => self.add_sub_imm(w, true, d, l, v),
                    AluOp::Mul => {
                        self.mov_imm(X16, v, w);
                        self.emit(enc::madd(w, false, d, l, X16, ZR));
                    }
                    AluOp::And | AluOp::Or | AluOp::Xor => {
                        let lop = logic(op);
                        match (op, v) {
                            (AluOp::And, 0) => self.mov_imm(d, 0, w),
                            (AluOp::Or, 0) | (AluOp::Xor, 0) => self.mov_int(d, l, w),
                            (AluOp::And, v) if v == mask => self.mov_int(d, l, w),
                            (AluOp::Or, v) if v == mask => self.mov_imm(d, mask, w),
                            (AluOp::Xor, v) if v == mask => {
                                self.emit(enc::logical_reg(w, LogicOp::Orr, true, d, ZR, l))
                            }
                            _ => match enc::logical_imm(v, w) {
                                Some(n) => self.emit(enc::logical_imm_op(w, lop, d, l, n)),
                                None => {
                                    self.mov_imm(X16, v, w);
                                    self.emit(enc::logical_reg(w, lop, false, d, l, X16));
                                }
                            },
                        }
                    }
                }
            }
        }
    }

    fn shift(&mut self, op: ShiftOp, dst: Reg, lhs: Reg, rhs: RegImm, size: OperandSize) {
        let (d, l) = (dst.hw, lhs.hw);
        let w = is64(size);
        let bits: u32 = if w { 64 } else { 32 };
        match rhs {
            RegImm::Reg(r) => {
                let r = r.hw;
                match op {
                    ShiftOp::Shl => self.emit(enc::dp2(w, Dp2::Lslv, d, l, r)),
                    ShiftOp::ShrS => self.emit(enc::dp2(w, Dp2::Asrv, d, l, r)),
                    ShiftOp::ShrU => self.emit(enc::dp2(w, Dp2::Lsrv, d, l, r)),
                    ShiftOp::Rotr => self.emit(enc::dp2(w, Dp2::Rorv, d, l, r)),
                    ShiftOp::Rotl => {
                        // rotl(x, n) = rotr(x, -n) (the count is taken modulo the width).
                        self.emit(enc::add_sub_reg(w, true, false, X16, ZR, r));
                        self.emit(enc::dp2(w, Dp2::Rorv, d, l, X16));
                    }
                }
            }
            RegImm::Imm(i) => {
                let n = (i as u32) & (bits - 1);
                match op {
                    ShiftOp::Shl => self.emit(enc::bfm(
                        w,
                        enc::Bfm::U,
                        d,
                        l,
                        (bits - n) % bits,
                        bits - 1 - n,
                    )),
                    ShiftOp::ShrU => self.emit(enc::bfm(w, enc::Bfm::U, d, l, n, bits - 1)),
                    ShiftOp::ShrS => self.emit(enc::bfm(w, enc::Bfm::S, d, l, n, bits - 1)),
                    ShiftOp::Rotr => self.emit(enc::extr(w, d, l, l, n)),
                    ShiftOp::Rotl => self.emit(enc::extr(w, d, l, l, (bits - n) % bits)),
                }
            }
        }
    }

    fn div(&mut self, kind: DivKind, dst: Reg, lhs: Reg, rhs: Reg, size: OperandSize) {
        let (d, l, r) = (dst.hw, lhs.hw, rhs.hw);
        let w = is64(size);
        match kind {
            DivKind::DivS => self.emit(enc::dp2(w, Dp2::Sdiv, d, l, r)),
            DivKind::DivU => self.emit(enc::dp2(w, Dp2::Udiv, d, l, r)),
            DivKind::RemS | DivKind::RemU => {
                let op = if kind == DivKind::RemS {
                    Dp2::Sdiv
                } else {
                    Dp2::Udiv
                };
                self.emit(enc::dp2(w, op, X16, l, r));
                self.emit(enc::madd(w, true, d, X16, r, l));
            }
        }
    }

    fn int_unary(&mut self, op: IntUnary, dst: Reg, src: Reg, size: OperandSize) {
        let (d, s) = (dst.hw, src.hw);
        let w = is64(size);
        match op {
            IntUnary::Clz => self.emit(enc::dp1(w, Dp1::Clz, d, s)),
            IntUnary::Ctz => {
                self.emit(enc::dp1(w, Dp1::Rbit, X16, s));
                self.emit(enc::dp1(w, Dp1::Clz, d, X16));
            }
            IntUnary::Popcnt => {
                self.emit(enc::cvt(w, w, Cvt::FmovFromGp, V30, s));
                self.emit(enc::cnt8b(V30, V30));
                self.emit(enc::addv8b(V30, V30));
                self.emit(enc::cvt(false, false, Cvt::FmovToGp, d, V30));
            }
        }
    }

    fn extend(&mut self, kind: Extend, dst: Reg, src: Reg) {
        let (d, s) = (dst.hw, src.hw);
        let sbfm = |w, imms| enc::bfm(w, enc::Bfm::S, d, s, 0, imms);
        match kind {
            Extend::I32From8S => self.emit(sbfm(false, 7)),
            Extend::I32From16S => self.emit(sbfm(false, 15)),
            Extend::I64From8S => self.emit(sbfm(true, 7)),
            Extend::I64From16S => self.emit(sbfm(true, 15)),
            Extend::I64From32S => self.emit(sbfm(true, 31)),
            Extend::I64From32U | Extend::I32Wrap => self.mov_int(d, s, false),
        }
    }

    fn cmp_set(&mut self, cc: IntCmp, dst: Reg, lhs: Reg, rhs: RegImm, size: OperandSize) {
        self.cmp(lhs, rhs, size);
        self.emit(enc::cset(dst.hw, int_cond(cc)));
    }

    fn cmp_branch(&mut self, cc: IntCmp, lhs: Reg, rhs: RegImm, size: OperandSize, target: Label) {
        let test = self.int_test(cc, lhs, rhs, size);
        self.branch_if(test, target);
    }

    fn select(&mut self, dst: Reg, cond: Reg, if_false: Reg, size: OperandSize) {
        let (d, c, f) = (dst.hw, cond.hw, if_false.hw);
        self.emit(enc::add_sub_imm(false, true, true, ZR, c, 0, false));
        match dst.class {
            RegClass::Int => self.emit(enc::csel(is64(size), false, d, d, f, Cond::Ne)),
            // `fcsel` moves at most 64 bits: a v128 is a skipped full-register move.
            RegClass::Float if size == OperandSize::S128 => {
                let keep = self.ops.new_dynamic_label();
                self.branch_if(Test::Flags(Cond::Ne), keep);
                self.emit(enc::vmov(d, f));
                self.bind_here(keep);
            }
            RegClass::Float => self.emit(enc::fcsel(is64(size), d, d, f, Cond::Ne)),
        }
    }

    fn jump_table(&mut self, index: Reg, targets: &[Label], default: Label) {
        let i = index.hw;
        self.cmp(index, RegImm::Imm(targets.len() as i64), OperandSize::S32);
        self.branch_if(Test::Flags(Cond::Hs), default);
        // x16 = table + 4 * index; the table follows the `br`.
        self.emit(enc::adr(X16, 12));
        self.emit(enc::add_sub_ext(
            true,
            false,
            false,
            X16,
            X16,
            i,
            Ext::Uxtw,
            2,
        ));
        self.emit(enc::br(X16));
        for &t in targets {
            a64!(self.ops; b =>t);
        }
    }

    fn float_binop(&mut self, op: FloatBinOp, dst: Reg, lhs: Reg, rhs: Reg, size: OperandSize) {
        let (d, l, r) = (dst.hw, lhs.hw, rhs.hw);
        let w = is64(size);
        let op = match op {
            FloatBinOp::Add => Fp2::Fadd,
            FloatBinOp::Sub => Fp2::Fsub,
            FloatBinOp::Mul => Fp2::Fmul,
            FloatBinOp::Div => Fp2::Fdiv,
            // fmin/fmax propagate NaNs and order -0 below +0, as wasm requires.
            FloatBinOp::Min => Fp2::Fmin,
            FloatBinOp::Max => Fp2::Fmax,
            FloatBinOp::Copysign => {
                // On the bits: magnitude of lhs, sign of rhs.
                let (mag_n, sign_n) = if w {
                    (MAG_MASK_64, SIGN_MASK_64)
                } else {
                    (MAG_MASK_32, SIGN_MASK_32)
                };
                self.emit(enc::cvt(w, w, Cvt::FmovToGp, X16, l));
                self.emit(enc::cvt(w, w, Cvt::FmovToGp, X17, r));
                self.emit(enc::logical_imm_op(w, LogicOp::And, X16, X16, mag_n));
                self.emit(enc::logical_imm_op(w, LogicOp::And, X17, X17, sign_n));
                self.emit(enc::logical_reg(w, LogicOp::Orr, false, X16, X16, X17));
                self.emit(enc::cvt(w, w, Cvt::FmovFromGp, d, X16));
                return;
            }
        };
        self.emit(enc::fp2(w, op, d, l, r));
    }

    fn float_unop(&mut self, op: FloatUnOp, dst: Reg, src: Reg, size: OperandSize) {
        let op = match op {
            FloatUnOp::Abs => Fp1::Fabs,
            FloatUnOp::Neg => Fp1::Fneg,
            FloatUnOp::Sqrt => Fp1::Fsqrt,
            FloatUnOp::Ceil => Fp1::Frintp,
            FloatUnOp::Floor => Fp1::Frintm,
            FloatUnOp::Trunc => Fp1::Frintz,
            FloatUnOp::Nearest => Fp1::Frintn,
        };
        self.emit(enc::fp1(is64(size), op, dst.hw, src.hw));
    }

    fn float_cmp_set(&mut self, cc: FloatCmp, dst: Reg, lhs: Reg, rhs: Reg, size: OperandSize) {
        self.emit(enc::fcmp(is64(size), lhs.hw, rhs.hw));
        self.emit(enc::cset(dst.hw, float_cond(cc)));
    }

    fn float_cmp_branch(
        &mut self,
        cc: FloatCmp,
        lhs: Reg,
        rhs: Reg,
        size: OperandSize,
        target: Label,
    ) {
        self.emit(enc::fcmp(is64(size), lhs.hw, rhs.hw));
        self.branch_if(Test::Flags(float_cond(cc)), target);
    }

    fn float_cmp_branch_not(
        &mut self,
        cc: FloatCmp,
        lhs: Reg,
        rhs: Reg,
        size: OperandSize,
        target: Label,
    ) {
        // Inverting an aarch64 condition is its exact logical negation, NaN cases included.
        self.emit(enc::fcmp(is64(size), lhs.hw, rhs.hw));
        self.branch_if(Test::Flags(float_cond(cc).invert()), target);
    }

    fn float_trap_if(
        &mut self,
        cc: FloatCmp,
        lhs: Reg,
        rhs: Reg,
        size: OperandSize,
        code: TrapCode,
    ) -> u32 {
        self.emit(enc::fcmp(is64(size), lhs.hw, rhs.hw));
        self.trap_on(Test::Flags(float_cond(cc)), code)
    }

    fn int_to_float(
        &mut self,
        dst: Reg,
        src: Reg,
        int_size: OperandSize,
        signed: bool,
        float_size: OperandSize,
    ) {
        let op = if signed { Cvt::Scvtf } else { Cvt::Ucvtf };
        self.emit(enc::cvt(
            is64(int_size),
            is64(float_size),
            op,
            dst.hw,
            src.hw,
        ));
    }

    fn float_to_float(&mut self, dst: Reg, src: Reg, dst_size: OperandSize) {
        let (src_dbl, op) = match dst_size {
            OperandSize::S64 | OperandSize::S128 => (false, Fp1::FcvtToD),
            OperandSize::S32 => (true, Fp1::FcvtToS),
        };
        self.emit(enc::fp1(src_dbl, op, dst.hw, src.hw));
    }

    fn float_to_int(
        &mut self,
        dst: Reg,
        src: Reg,
        float_size: OperandSize,
        int_size: OperandSize,
        signed: bool,
    ) {
        // The 32-bit forms write a zero-extended W register.
        let op = if signed { Cvt::Fcvtzs } else { Cvt::Fcvtzu };
        self.emit(enc::cvt(
            is64(int_size),
            is64(float_size),
            op,
            dst.hw,
            src.hw,
        ));
    }

    fn trap_if(
        &mut self,
        cc: IntCmp,
        lhs: Reg,
        rhs: RegImm,
        size: OperandSize,
        code: TrapCode,
    ) -> u32 {
        let test = self.int_test(cc, lhs, rhs, size);
        self.trap_on(test, code)
    }

    fn trap(&mut self, code: TrapCode) -> u32 {
        let (site, stub) = self.new_trap_stub(code);
        let pc = self.offset();
        a64!(self.ops
            ;=>site
            ; b =>stub
        );
        pc
    }

    fn call(&mut self, target: CallTarget) -> u32 {
        match target {
            CallTarget::Direct => {
                // `bl`, the offset filled in at placement.
                self.emit(enc::bl(0));
            }
            CallTarget::FuncRef { funcref: f } => {
                let f = f.hw;
                self.enter_funcref_instance(f);
                self.ldst(LdSt::LDR_X, X17, f, funcref::CODE.into());
                self.emit(enc::blr(X17));
                let ret = self.offset();
                self.ldst(LdSt::LDR_X, VMCTX, FP, self.vmctx_slot.into());
                self.ldst(LdSt::LDR_X, MEMBASE, VMCTX, self.memory0_base.into());
                return ret;
            }
        }
        self.offset()
    }

    fn tail_call(&mut self, target: CallTarget) -> u32 {
        a64!(self.ops
            ; mov sp, x29
            ; ldp x29, x30, [sp], #16
        );
        match target {
            CallTarget::Direct => {
                // `b`, the offset filled in at placement.
                self.emit(enc::b(0));
            }
            CallTarget::FuncRef { funcref: f } => {
                let f = f.hw;
                self.enter_funcref_instance(f);
                self.ldst(LdSt::LDR_X, X17, f, funcref::CODE.into());
                self.emit(enc::br(X17));
            }
        }
        self.offset()
    }

    fn reload_context(&mut self) {
        self.ldst(LdSt::LDR_X, VMCTX, FP, self.vmctx_slot.into());
        self.ldst(LdSt::LDR_X, MEMBASE, VMCTX, self.memory0_base.into());
    }

    fn call_builtin(&mut self, fn_offset: i32, args: &[RegImm]) {
        // AAPCS64: x0 = vmctx, x1.. = args. No source is in x0-x8 (none is allocatable), so
        // the moves cannot overwrite a pending source.
        debug_assert!(args.len() <= 4);
        for (i, arg) in args.iter().enumerate() {
            self.mov(Reg::int(1 + i as u8), *arg, OperandSize::S64);
        }
        self.mov_int(0, VMCTX, true);
        self.ldst(LdSt::LDR_X, X16, VMCTX, fn_offset.into());
        self.blr_x16();
    }

    fn call_throw(&mut self, landing: i32, exn: Reg) -> u32 {
        self.mov_int(0, exn.hw, true);
        self.ldst(LdSt::LDR_X, X16, VMCTX, landing.into());
        self.blr_x16();
        self.offset()
    }

    fn reserve_for_body(&mut self, wasm_bytes: usize) {
        // About 4 bytes of code per byte of wasm on the kernels and big modules.
        // The buffer is kept from one function to the next, so this only grows it (to the
        // largest function so far); a smaller body allocates nothing.
        self.ops.reserve(wasm_bytes * 4 + 64);
    }

    fn v128_const(&mut self, dst: Reg, bits: u128) {
        let d = dst.hw;
        let (lo, hi) = (bits as u64, (bits >> 64) as u64);
        if bits == 0 {
            self.emit(enc::movi_2d(d, 0));
        } else if bits == u128::MAX {
            self.emit(enc::movi_2d(d, 0xff));
        } else if lo == hi {
            self.mov_imm(X16, lo, true);
            self.emit(enc::dup_2d(d, X16));
        } else {
            // `fmov d, x` zeroes the high lane; `ins` fills it when it is not zero.
            let lo_reg = if lo == 0 {
                ZR
            } else {
                self.mov_imm(X16, lo, true);
                X16
            };
            self.emit(enc::cvt(true, true, Cvt::FmovFromGp, d, lo_reg));
            if hi != 0 {
                self.mov_imm(X17, hi, true);
                self.emit(enc::ins_d(d, 1, X17));
            }
        }
    }

    fn v128_binop(&mut self, op: V128BinOp, dst: Reg, lhs: Reg, rhs: Reg) {
        // Three-operand forms: any aliasing of `dst` with the sources is harmless (the
        // i64x2 multiply sequence is alias-safe too, see `i64x2_mul`).
        let (d, l, r) = (dst.hw, lhs.hw, rhs.hw);
        let dbl = |lanes: FloatLanes| lanes == FloatLanes::F64x2;
        let w = match op {
            V128BinOp::And => enc::vlogic(VLogic::And, d, l, r),
            V128BinOp::Or => enc::vlogic(VLogic::Orr, d, l, r),
            V128BinOp::Xor => enc::vlogic(VLogic::Eor, d, l, r),
            V128BinOp::AndNot => enc::vlogic(VLogic::Bic, d, l, r),
            V128BinOp::Add(lanes) => enc::varith(VArith::Add, vsize(lanes), d, l, r),
            V128BinOp::Sub(lanes) => enc::varith(VArith::Sub, vsize(lanes), d, l, r),
            V128BinOp::Mul(Lanes::I64x2) => return self.i64x2_mul(d, l, r),
            V128BinOp::Mul(lanes) => enc::varith(VArith::Mul, vsize(lanes), d, l, r),
            V128BinOp::FAdd(lanes) => enc::vfloat(VFloat::Fadd, dbl(lanes), d, l, r),
            V128BinOp::FSub(lanes) => enc::vfloat(VFloat::Fsub, dbl(lanes), d, l, r),
            V128BinOp::FMul(lanes) => enc::vfloat(VFloat::Fmul, dbl(lanes), d, l, r),
            V128BinOp::FDiv(lanes) => enc::vfloat(VFloat::Fdiv, dbl(lanes), d, l, r),
            V128BinOp::FPMin(lanes) | V128BinOp::FPMax(lanes) => {
                // pmin(a, b) = b < a ? b : a and pmax(a, b) = a < b ? b : a: a mask of the
                // lanes that take `b`, then a bitwise select, in v30 so `dst` may alias.
                let (n, m) = match op {
                    V128BinOp::FPMin(_) => (l, r),
                    _ => (r, l),
                };
                self.emit(enc::vfloat(VFloat::Fcmgt, dbl(lanes), V30, n, m));
                self.emit(enc::vlogic(VLogic::Bsl, V30, r, l));
                if d != V30 {
                    self.emit(enc::vmov(d, V30));
                }
                return;
            }
            // fmin/fmax propagate NaNs and order -0 below +0, as wasm requires.
            V128BinOp::FMin(lanes) => enc::vfminmax(true, dbl(lanes), d, l, r),
            V128BinOp::FMax(lanes) => enc::vfminmax(false, dbl(lanes), d, l, r),
            V128BinOp::AddSatS(lanes) => enc::varith2(VArith2::Sqadd, vsize(lanes), d, l, r),
            V128BinOp::AddSatU(lanes) => enc::varith2(VArith2::Uqadd, vsize(lanes), d, l, r),
            V128BinOp::SubSatS(lanes) => enc::varith2(VArith2::Sqsub, vsize(lanes), d, l, r),
            V128BinOp::SubSatU(lanes) => enc::varith2(VArith2::Uqsub, vsize(lanes), d, l, r),
            V128BinOp::MinS(lanes) => enc::varith2(VArith2::Smin, vsize(lanes), d, l, r),
            V128BinOp::MinU(lanes) => enc::varith2(VArith2::Umin, vsize(lanes), d, l, r),
            V128BinOp::MaxS(lanes) => enc::varith2(VArith2::Smax, vsize(lanes), d, l, r),
            V128BinOp::MaxU(lanes) => enc::varith2(VArith2::Umax, vsize(lanes), d, l, r),
            V128BinOp::AvgrU(lanes) => enc::varith2(VArith2::Urhadd, vsize(lanes), d, l, r),
            // sqrdmulh: (2ab + 0x8000) >> 16 saturated, which is (ab + 0x4000) >> 15.
            V128BinOp::Q15MulrSatS => enc::varith2(VArith2::Sqrdmulh, VSize::H8, d, l, r),
            V128BinOp::ExtMul {
                lanes,
                high,
                signed,
            } => enc::vmull(signed, high, half(lanes), d, l, r),
            V128BinOp::Dot => {
                // Products of the low and high halves (in the scratch pair), added pairwise.
                self.emit(enc::vmull(true, false, VSize::H8, V30, l, r));
                self.emit(enc::vmull(true, true, VSize::H8, V31, l, r));
                enc::varith2(VArith2::Addp, VSize::S4, d, V30, V31)
            }
            V128BinOp::Narrow { lanes, signed } => {
                let op = if signed {
                    VNarrow::Sqxtn
                } else {
                    VNarrow::Sqxtun
                };
                let size = vsize(lanes);
                // The low half is written first: through v30 when that would clobber `rhs`.
                let t = if d == r { V30 } else { d };
                self.emit(enc::vnarrow(op, false, size, t, l));
                self.emit(enc::vnarrow(op, true, size, t, r));
                if t != d {
                    self.emit(enc::vmov(d, t));
                }
                return;
            }
            V128BinOp::AddPairwise(lanes) => enc::varith2(VArith2::Addp, vsize(lanes), d, l, r),
            // Indices >= 16 select 0, as wasm's swizzle requires.
            V128BinOp::Swizzle => enc::tbl(d, l, 1, r),
        };
        self.emit(w);
    }

    fn v128_unop(&mut self, op: V128UnOp, dst: Reg, src: Reg) {
        let (d, s) = (dst.hw, src.hw);
        let dbl = |lanes: FloatLanes| lanes == FloatLanes::F64x2;
        let w = match op {
            V128UnOp::Not => enc::vmisc(VMisc::Not, VSize::B16, d, s),
            V128UnOp::Neg(lanes) => enc::vmisc(VMisc::Neg, vsize(lanes), d, s),
            V128UnOp::Abs(lanes) => enc::vmisc(VMisc::Abs, vsize(lanes), d, s),
            V128UnOp::FNeg(lanes) => enc::vfmisc(VFMisc::Fneg, dbl(lanes), d, s),
            V128UnOp::FAbs(lanes) => enc::vfmisc(VFMisc::Fabs, dbl(lanes), d, s),
            V128UnOp::FSqrt(lanes) => enc::vfmisc(VFMisc::Fsqrt, dbl(lanes), d, s),
            V128UnOp::FRound(lanes, round) => {
                let op = match round {
                    FloatUnOp::Ceil => VFCvt::Frintp,
                    FloatUnOp::Floor => VFCvt::Frintm,
                    FloatUnOp::Trunc => VFCvt::Frintz,
                    FloatUnOp::Nearest => VFCvt::Frintn,
                    _ => unreachable!("v128 rounding {round:?}"),
                };
                enc::vfcvt(op, dbl(lanes), d, s)
            }
            V128UnOp::Popcnt => enc::vmisc2(VMisc2::Cnt, VSize::B16, d, s),
            V128UnOp::ExtAddPairwise { lanes, signed } => {
                let op = if signed {
                    VMisc2::Saddlp
                } else {
                    VMisc2::Uaddlp
                };
                enc::vmisc2(op, half(lanes), d, s)
            }
            V128UnOp::Extend {
                lanes,
                high,
                signed,
            } => enc::vshll(signed, high, half(lanes), d, s, 0),
            V128UnOp::ConvertI32x4ToF32x4 { signed } => {
                let op = if signed { VFCvt::Scvtf } else { VFCvt::Ucvtf };
                enc::vfcvt(op, false, d, s)
            }
            V128UnOp::ConvertLowI32x4ToF64x2 { signed } => {
                // Widen the low two lanes exactly, then convert (exact for 32-bit values).
                self.emit(enc::vshll(signed, false, VSize::S4, d, s, 0));
                let op = if signed { VFCvt::Scvtf } else { VFCvt::Ucvtf };
                enc::vfcvt(op, true, d, d)
            }
            V128UnOp::TruncSatF32x4ToI32x4 { signed } => {
                // fcvtz* saturate and give 0 for NaN, as wasm requires.
                let op = if signed { VFCvt::Fcvtzs } else { VFCvt::Fcvtzu };
                enc::vfcvt(op, false, d, s)
            }
            V128UnOp::TruncSatF64x2ToI32x4Zero { signed } => {
                // To saturated 64-bit lanes, then narrowed saturating (the 64-bit form of
                // sqxtn/uqxtn zeroes the high half).
                let (cvt, narrow) = if signed {
                    (VFCvt::Fcvtzs, VNarrow::Sqxtn)
                } else {
                    (VFCvt::Fcvtzu, VNarrow::Uqxtn)
                };
                self.emit(enc::vfcvt(cvt, true, d, s));
                enc::vnarrow(narrow, false, VSize::S4, d, d)
            }
            V128UnOp::DemoteF64x2Zero => enc::fcvtn_2s(d, s),
            V128UnOp::PromoteLowF32x4 => enc::fcvtl_2d(d, s),
        };
        self.emit(w);
    }

    fn v128_test_branch(&mut self, test: V128Test, src: Reg, when: bool, target: Label) {
        // The same reductions as `v128_test`, into w16, then cbz/cbnz.
        let s = src.hw;
        let true_if_zero = match test {
            V128Test::AllTrue(Lanes::I64x2) => {
                self.emit(enc::vmisc2(VMisc2::CmeqZero, VSize::D2, V30, s));
                self.emit(enc::vacross(VAcross::Umaxv, VSize::S4, V30, V30));
                true
            }
            V128Test::AllTrue(lanes) => {
                self.emit(enc::vacross(VAcross::Uminv, vsize(lanes), V30, s));
                false
            }
            _ => {
                self.emit(enc::vacross(VAcross::Umaxv, VSize::S4, V30, s));
                false
            }
        };
        self.emit(enc::cvt(false, false, Cvt::FmovToGp, X16, V30));
        let test = Test::Zero {
            is64: false,
            nonzero: true_if_zero != when,
            reg: X16,
        };
        self.branch_if(test, target);
    }

    fn v128_test(&mut self, test: V128Test, dst: Reg, src: Reg) {
        let (d, s) = (dst.hw, src.hw);
        // `fmov w, s30` reads the reduction (the across-lanes forms zero the rest of v30).
        let nonzero = |m: &mut Self, is_zero: bool| {
            m.emit(enc::cvt(false, false, Cvt::FmovToGp, d, V30));
            m.emit(enc::add_sub_imm(false, true, true, ZR, d, 0, false));
            m.emit(enc::cset(d, if is_zero { Cond::Eq } else { Cond::Ne }));
        };
        match test {
            V128Test::AnyTrue => {
                self.emit(enc::vacross(VAcross::Umaxv, VSize::S4, V30, s));
                nonzero(self, false);
            }
            V128Test::AllTrue(Lanes::I64x2) => {
                // Some 64-bit lane is zero iff the zero test leaves a non-zero word.
                self.emit(enc::vmisc2(VMisc2::CmeqZero, VSize::D2, V30, s));
                self.emit(enc::vacross(VAcross::Umaxv, VSize::S4, V30, V30));
                nonzero(self, true);
            }
            V128Test::AllTrue(lanes) => {
                self.emit(enc::vacross(VAcross::Uminv, vsize(lanes), V30, s));
                nonzero(self, false);
            }
            V128Test::Bitmask(Lanes::I64x2) => {
                self.emit(enc::umov_d(X16, s, 0));
                self.emit(enc::umov_d(X17, s, 1));
                self.emit(enc::bfm(true, enc::Bfm::U, X16, X16, 63, 63));
                self.emit(enc::bfm(true, enc::Bfm::U, X17, X17, 63, 63));
                // d = x16 + (x17 << 1)
                self.emit(enc::add_sub_ext(
                    false,
                    false,
                    false,
                    d,
                    X16,
                    X17,
                    Ext::Uxtw,
                    1,
                ));
            }
            V128Test::Bitmask(lanes) => {
                // Sign masks, each lane ANDed with its bit weight (1, 2, 4, ... per group
                // of eight lanes at most), then summed.
                let size = vsize(lanes);
                let weights: u128 = match lanes {
                    Lanes::I8x16 => 0x8040_2010_0804_0201_8040_2010_0804_0201,
                    Lanes::I16x8 => 0x0080_0040_0020_0010_0008_0004_0002_0001,
                    _ => 0x0000_0008_0000_0004_0000_0002_0000_0001,
                };
                self.emit(enc::vmisc2(VMisc2::CmltZero, size, V30, s));
                self.v128_const(Reg::float(V31), weights);
                self.emit(enc::vlogic(VLogic::And, V30, V30, V31));
                if lanes == Lanes::I8x16 {
                    // Three pairwise adds leave byte 0 = the low eight lanes' bits and byte 1
                    // = the high eight lanes'.
                    for _ in 0..3 {
                        self.emit(enc::varith2(VArith2::Addp, VSize::B16, V30, V30, V30));
                    }
                    self.emit(enc::mov_to_gp(false, VSize::H8, d, V30, 0));
                } else {
                    self.emit(enc::vacross(VAcross::Addv, size, V30, V30));
                    self.emit(enc::cvt(false, false, Cvt::FmovToGp, d, V30));
                }
            }
        }
    }

    fn v128_shift(&mut self, op: V128Shift, dst: Reg, src: Reg, amount: RegImm) {
        let (d, s) = (dst.hw, src.hw);
        let (lanes, right, signed) = match op {
            V128Shift::Shl(l) => (l, false, false),
            V128Shift::ShrS(l) => (l, true, true),
            V128Shift::ShrU(l) => (l, true, false),
        };
        let size = vsize(lanes);
        let bits = lanes.bits();
        match amount {
            RegImm::Imm(n) => {
                let n = (n as u32) & (bits - 1);
                if !right {
                    self.emit(enc::vshl_imm(size, d, s, n));
                } else if n == 0 {
                    // `sshr/ushr #0` has no encoding.
                    if d != s {
                        self.emit(enc::vmov(d, s));
                    }
                } else {
                    self.emit(enc::vshr_imm(signed, size, d, s, n));
                }
            }
            RegImm::Reg(r) => {
                // sshl/ushl shift by the signed low byte of each lane: the reduced amount,
                // negated for right shifts, in every lane of v30.
                let mask = enc::logical_imm(u64::from(bits - 1), false).expect("low-bit mask");
                self.emit(enc::logical_imm_op(false, LogicOp::And, X16, r.hw, mask));
                if right {
                    self.emit(enc::add_sub_reg(false, true, false, X16, ZR, X16));
                }
                self.emit(enc::dup_gp(size, V30, X16));
                let op = if signed { VArith2::Sshl } else { VArith2::Ushl };
                self.emit(enc::varith2(op, size, d, s, V30));
            }
        }
    }

    fn v128_splat(&mut self, dst: Reg, src: Reg, lanes: Lanes) {
        let size = vsize(lanes);
        if src.class == RegClass::Float {
            self.emit(enc::dup_elem(size, dst.hw, src.hw, 0));
        } else {
            self.emit(enc::dup_gp(size, dst.hw, src.hw));
        }
    }

    fn v128_extract_lane(&mut self, dst: Reg, src: Reg, lanes: Lanes, lane: u8, signed: bool) {
        let size = vsize(lanes);
        if dst.class == RegClass::Float {
            self.emit(enc::dup_scalar(size, dst.hw, src.hw, lane));
        } else {
            let signed = signed && matches!(lanes, Lanes::I8x16 | Lanes::I16x8);
            self.emit(enc::mov_to_gp(signed, size, dst.hw, src.hw, lane));
        }
    }

    fn v128_replace_lane(&mut self, dst: Reg, src: Reg, lanes: Lanes, lane: u8) {
        let size = vsize(lanes);
        if src.class == RegClass::Float {
            self.emit(enc::ins_elem(size, dst.hw, lane, src.hw, 0));
        } else {
            self.emit(enc::ins_gp(size, dst.hw, lane, src.hw));
        }
    }

    fn v128_shuffle(&mut self, dst: Reg, lhs: Reg, rhs: Reg, lanes: [u8; 16]) {
        let (d, l, r) = (dst.hw, lhs.hw, rhs.hw);
        let indices = |lanes: [u8; 16]| {
            lanes
                .iter()
                .rev()
                .fold(0u128, |acc, &b| acc << 8 | u128::from(b))
        };
        if lanes.iter().all(|&i| i < 16) || lanes.iter().all(|&i| i >= 16) || l == r {
            // One table register.
            let (table, idx) = if lanes.iter().all(|&i| i < 16) {
                (l, lanes)
            } else if lanes.iter().all(|&i| i >= 16) {
                (r, lanes.map(|i| i - 16))
            } else {
                (l, lanes.map(|i| i & 15))
            };
            self.v128_const(Reg::float(V30), indices(idx));
            self.emit(enc::tbl(d, table, 1, V30));
        } else {
            // The consecutive table pair v30:v31, then the indices in `dst` (both sources
            // are copied by then).
            self.emit(enc::vmov(V30, l));
            self.emit(enc::vmov(V31, r));
            self.v128_const(dst, indices(lanes));
            self.emit(enc::tbl(d, V30, 2, d));
        }
    }

    fn v128_bitselect(&mut self, dst: Reg, a: Reg, b: Reg, mask: Reg) {
        // dst = (a & mask) | (b & !mask). BSL wants the mask in the destination, BIT the
        // `b` value and BIF the `a` value; one of them fits whatever `dst` aliases.
        let (d, a, b, m) = (dst.hw, a.hw, b.hw, mask.hw);
        if d == m {
            self.emit(enc::vlogic(VLogic::Bsl, d, a, b));
        } else if d == b {
            self.emit(enc::vlogic(VLogic::Bit, d, a, m));
        } else if d == a {
            self.emit(enc::vlogic(VLogic::Bif, d, b, m));
        } else {
            self.emit(enc::vmov(d, m));
            self.emit(enc::vlogic(VLogic::Bsl, d, a, b));
        }
    }

    fn v128_cmp(&mut self, cmp: V128Cmp, dst: Reg, lhs: Reg, rhs: Reg) {
        // One three-operand compare (lt/le swap the operands), so `dst` may alias either
        // source; `ne` then inverts `dst` in place.
        let (d, a, b) = (dst.hw, lhs.hw, rhs.hw);
        let (w, invert) = match cmp {
            V128Cmp::Int(lanes, cc) => {
                let size = vsize(lanes);
                let (op, swap) = match cc {
                    IntCmp::Eq | IntCmp::Ne => (VCmp::Cmeq, false),
                    IntCmp::GtS => (VCmp::Cmgt, false),
                    IntCmp::LtS => (VCmp::Cmgt, true),
                    IntCmp::GeS => (VCmp::Cmge, false),
                    IntCmp::LeS => (VCmp::Cmge, true),
                    IntCmp::GtU => (VCmp::Cmhi, false),
                    IntCmp::LtU => (VCmp::Cmhi, true),
                    IntCmp::GeU => (VCmp::Cmhs, false),
                    IntCmp::LeU => (VCmp::Cmhs, true),
                };
                let (n, m) = if swap { (b, a) } else { (a, b) };
                (enc::vcmp(op, size, d, n, m), cc == IntCmp::Ne)
            }
            V128Cmp::Float(lanes, cc) => {
                // fcmeq/fcmgt/fcmge are false on NaN, so `ne` (their inversion) is true.
                let dbl = lanes == FloatLanes::F64x2;
                let (op, swap) = match cc {
                    FloatCmp::Eq | FloatCmp::Ne => (VFloat::Fcmeq, false),
                    FloatCmp::Gt => (VFloat::Fcmgt, false),
                    FloatCmp::Lt => (VFloat::Fcmgt, true),
                    FloatCmp::Ge => (VFloat::Fcmge, false),
                    FloatCmp::Le => (VFloat::Fcmge, true),
                };
                let (n, m) = if swap { (b, a) } else { (a, b) };
                (enc::vfloat(op, dbl, d, n, m), cc == FloatCmp::Ne)
            }
        };
        self.emit(w);
        if invert {
            self.emit(enc::vmisc(VMisc::Not, VSize::B16, d, d));
        }
    }

    fn v128_load_lane(&mut self, dst: Reg, src: HeapAddress, lanes: Lanes, lane: u8) -> u32 {
        self.lane_access(true, dst, src, lanes, lane)
    }

    fn v128_store_lane(&mut self, src: Reg, dst: HeapAddress, lanes: Lanes, lane: u8) -> u32 {
        self.lane_access(false, src, dst, lanes, lane)
    }

    fn reset(&mut self) {
        // After `finish` nothing is left; after a failure, forget the partial function (the
        // buffer keeps its capacity).
        self.ops.clear();
        self.stubs.clear();
        self.frame_size_patch = None;
        self.outgrew_short_branches = false;
    }

    fn needs_long_branches(&self) -> bool {
        self.outgrew_short_branches
    }

    fn use_long_branches(&mut self, long: bool) {
        self.long_branches = long;
    }

    fn finish(&mut self, frame_size: u32) -> Result<Vec<u8>> {
        if !self.stubs.is_empty() {
            let common = self.ops.new_dynamic_label();
            let stubs = std::mem::take(&mut self.stubs);
            for s in &stubs {
                self.bind_here(s.stub);
                self.emit(enc::mov_wide(
                    false,
                    enc::MovWide::Z,
                    0,
                    s.code as u8 as u16,
                    0,
                ));
                // x1 = pc of the site (bound before any stub, so resolvable now).
                let site = self
                    .ops
                    .labels()
                    .resolve_dynamic(s.site)
                    .map_err(|e| CompileError::internal(format!("trap site: {e}")))?
                    .0;
                let delta = site as i64 - self.here() as i64;
                if delta >= -(1 << 20) {
                    self.emit(enc::adr(1, delta as i32));
                } else {
                    let back = (self.here() - site) as u64;
                    self.emit(enc::adr(1, 0));
                    self.mov_imm(X16, back, true);
                    self.emit(enc::add_sub_reg(true, true, false, 1, 1, X16));
                }
                a64!(self.ops; b =>common);
            }
            self.bind_here(common);
            self.mov_int(2, FP, true);
            self.ldst(LdSt::LDR_X, X16, VMCTX, self.trap_landing.into());
            self.emit(enc::br(X16));
        }
        if !self.long_branches && self.here() >= COND_RANGE {
            self.outgrew_short_branches = true;
            return Err(CompileError::internal(
                "function too large for short forward branches".into(),
            ));
        }
        let patch = self.frame_size_patch;
        self.frame_size_patch = None;
        let mut code = self.ops.take_code().map_err(|e| {
            CompileError::unsupported_feature(format!(
                "aarch64 assembly (function too large?): {e}"
            ))
        })?;
        if let Some(at) = patch {
            let lo = enc::mov_wide(true, enc::MovWide::Z, X16, frame_size as u16, 0);
            let hi = enc::mov_wide(true, enc::MovWide::K, X16, (frame_size >> 16) as u16, 1);
            code[at..at + 4].copy_from_slice(&lo.to_le_bytes());
            code[at + 4..at + 8].copy_from_slice(&hi.to_le_bytes());
        }
        Ok(code)
    }
}
