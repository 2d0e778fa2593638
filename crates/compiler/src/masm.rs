//! The door between the wasm-semantics core ([`crate::codegen`]) and an ISA: a small set of
//! typed, three-operand machine primitives.
//!
//! Rules: every primitive says what it reads and writes; destinations may equal sources;
//! an immediate that does not fit the ISA's encoding is legalised by the implementation
//! through its own scratch registers (never visible to the core); primitives that can fault
//! return the code offset of the faulting instruction so the core can record a trap site.

use crate::{CompileError, TrapCode};
pub use dynasmrt::DynamicLabel as Label;

/// Result of an emission primitive.
pub type Result<T> = std::result::Result<T, CompileError>;

/// Register class.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RegClass {
    /// General-purpose integer registers (i32, i64, references).
    Int,
    /// Floating-point / vector registers (f32, f64).
    Float,
}

/// A machine register, opaque to the core: `hw` is the ISA's encoding number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Reg {
    /// Register class.
    pub class: RegClass,
    /// Hardware encoding number within the class.
    pub hw: u8,
}

impl Reg {
    /// Integer register number `hw`.
    pub const fn int(hw: u8) -> Reg {
        Reg {
            class: RegClass::Int,
            hw,
        }
    }
    /// Float register number `hw`.
    pub const fn float(hw: u8) -> Reg {
        Reg {
            class: RegClass::Float,
            hw,
        }
    }
}

/// A source operand that is a register or an immediate (raw bits for floats).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RegImm {
    /// A register.
    Reg(Reg),
    /// An immediate: the value sign-extended to 64 bits (for floats: the raw bits).
    Imm(i64),
}

/// Width of an operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OperandSize {
    /// 32 bits (i32, f32). Integer results are zero-extended to the full register.
    S32,
    /// 64 bits (i64, f64, references).
    S64,
    /// 128 bits (v128): only for vector (float-class) registers, and only in
    /// [`MacroAssembler::mov`] (register to register), [`MacroAssembler::load`],
    /// [`MacroAssembler::store`] (from a register) and [`MacroAssembler::copy`].
    S128,
}

/// Lane shape of a v128 integer operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lanes {
    /// 16 lanes of 8 bits.
    I8x16,
    /// 8 lanes of 16 bits.
    I16x8,
    /// 4 lanes of 32 bits.
    I32x4,
    /// 2 lanes of 64 bits.
    I64x2,
}

impl Lanes {
    /// Bits per lane: 8, 16, 32 or 64.
    pub const fn bits(self) -> u32 {
        match self {
            Lanes::I8x16 => 8,
            Lanes::I16x8 => 16,
            Lanes::I32x4 => 32,
            Lanes::I64x2 => 64,
        }
    }
}

/// Lane shape of a v128 float operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FloatLanes {
    /// 4 lanes of f32.
    F32x4,
    /// 2 lanes of f64.
    F64x2,
}

/// Two-operand v128 operations.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum V128BinOp {
    /// Bitwise and.
    And,
    /// Bitwise or.
    Or,
    /// Bitwise xor.
    Xor,
    /// `lhs & !rhs` (wasm `v128.andnot`).
    AndNot,
    /// Lane-wise wrapping add.
    Add(Lanes),
    /// Lane-wise wrapping subtract.
    Sub(Lanes),
    /// Lane-wise wrapping multiply (`I16x8`, `I32x4`, `I64x2`; never `I8x16`).
    Mul(Lanes),
    /// Lane-wise float add (IEEE; a NaN result may be any NaN).
    FAdd(FloatLanes),
    /// Lane-wise float subtract.
    FSub(FloatLanes),
    /// Lane-wise float multiply.
    FMul(FloatLanes),
    /// Lane-wise float divide.
    FDiv(FloatLanes),
    /// Lane-wise pseudo-minimum: `rhs < lhs ? rhs : lhs` (wasm `pmin`; NaNs not special).
    FPMin(FloatLanes),
    /// Lane-wise pseudo-maximum: `lhs < rhs ? rhs : lhs` (wasm `pmax`).
    FPMax(FloatLanes),
    /// Lane-wise float minimum with wasm semantics: a NaN operand gives a NaN lane (any
    /// NaN), and `-0 < +0`.
    FMin(FloatLanes),
    /// Lane-wise float maximum with wasm semantics (see [`V128BinOp::FMin`]).
    FMax(FloatLanes),
    /// Lane-wise signed saturating add (`I8x16`, `I16x8`).
    AddSatS(Lanes),
    /// Lane-wise unsigned saturating add (`I8x16`, `I16x8`).
    AddSatU(Lanes),
    /// Lane-wise signed saturating subtract (`I8x16`, `I16x8`).
    SubSatS(Lanes),
    /// Lane-wise unsigned saturating subtract (`I8x16`, `I16x8`).
    SubSatU(Lanes),
    /// Lane-wise signed minimum (`I8x16`, `I16x8`, `I32x4`).
    MinS(Lanes),
    /// Lane-wise unsigned minimum (`I8x16`, `I16x8`, `I32x4`).
    MinU(Lanes),
    /// Lane-wise signed maximum (`I8x16`, `I16x8`, `I32x4`).
    MaxS(Lanes),
    /// Lane-wise unsigned maximum (`I8x16`, `I16x8`, `I32x4`).
    MaxU(Lanes),
    /// Lane-wise unsigned rounding average `(a + b + 1) >> 1` (`I8x16`, `I16x8`).
    AvgrU(Lanes),
    /// i16x8 `(a * b + 0x4000) >> 15`, signed, saturated (wasm `i16x8.q15mulr_sat_s`; only
    /// `-32768 * -32768` saturates).
    Q15MulrSatS,
    /// Widening multiply: the low or high half of the lanes of both operands, extended to
    /// twice their width, multiplied into `lanes` (the result shape: `I16x8`, `I32x4` or
    /// `I64x2`; wasm `extmul_{low,high}_*_{s,u}`).
    ExtMul {
        /// Result lane shape.
        lanes: Lanes,
        /// Take the high half of the source lanes instead of the low half.
        high: bool,
        /// Sign-extend (else zero-extend) the source lanes.
        signed: bool,
    },
    /// i32x4 from i16x8: signed products of lanes `2i` and `2i+1` added (wrapping)
    /// (wasm `i32x4.dot_i16x8_s`).
    Dot,
    /// Narrows the signed lanes of `lhs` (low half of the result) and `rhs` (high half) to
    /// `lanes` (the result: `I8x16` from i16x8, `I16x8` from i32x4), saturating to the
    /// signed or unsigned range of the narrow lane (wasm `narrow_*_{s,u}`).
    Narrow {
        /// Result lane shape.
        lanes: Lanes,
        /// Saturate to the signed range (else the unsigned range).
        signed: bool,
    },
    /// Pairwise wrapping add of adjacent lanes: result lanes `[l0+l1, l2+l3, ..., r0+r1,
    /// r2+r3, ...]` (`I16x8`, `I32x4`; used for relaxed dot products).
    AddPairwise(Lanes),
    /// `I8x16` lane `i` = `lhs[rhs[i]]`, or 0 where `rhs[i] >= 16` (wasm `i8x16.swizzle`).
    Swizzle,
}

/// A lane-wise v128 comparison: each result lane is all ones where it holds, zero where not.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum V128Cmp {
    /// Integer lanes (`I64x2` with `Eq`, `Ne` and the signed comparisons only).
    Int(Lanes, IntCmp),
    /// Float lanes (false for NaN operands except `Ne`).
    Float(FloatLanes, FloatCmp),
}

/// Single-operand v128 operations.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum V128UnOp {
    /// Bitwise not.
    Not,
    /// Lane-wise wrapping negation.
    Neg(Lanes),
    /// Lane-wise absolute value (wrapping: the minimum stays as it is).
    Abs(Lanes),
    /// Lane-wise float negation (flips the sign bits, NaNs included).
    FNeg(FloatLanes),
    /// Lane-wise float absolute value (clears the sign bits, NaNs included).
    FAbs(FloatLanes),
    /// Lane-wise float square root.
    FSqrt(FloatLanes),
    /// Lane-wise float rounding: only `Ceil`, `Floor`, `Trunc` and `Nearest`.
    FRound(FloatLanes, FloatUnOp),
    /// i8x16 lane-wise population count.
    Popcnt,
    /// Adds adjacent pairs of the source's half-width lanes into `lanes` (the result:
    /// `I16x8` from i8x16, `I32x4` from i16x8), sign- or zero-extended first (wasm
    /// `extadd_pairwise_*`).
    ExtAddPairwise {
        /// Result lane shape.
        lanes: Lanes,
        /// Sign-extend (else zero-extend) the source lanes.
        signed: bool,
    },
    /// Extends the low or high half of the source's half-width lanes into `lanes` (the
    /// result: `I16x8`, `I32x4` or `I64x2`; wasm `extend_{low,high}_*_{s,u}`).
    Extend {
        /// Result lane shape.
        lanes: Lanes,
        /// Take the high half of the source lanes instead of the low half.
        high: bool,
        /// Sign-extend (else zero-extend).
        signed: bool,
    },
    /// f32x4 from i32x4, rounding to nearest (wasm `f32x4.convert_i32x4_{s,u}`).
    ConvertI32x4ToF32x4 {
        /// Treat the lanes as signed (else unsigned).
        signed: bool,
    },
    /// f64x2 from the low two i32 lanes (exact; wasm `f64x2.convert_low_i32x4_{s,u}`).
    ConvertLowI32x4ToF64x2 {
        /// Treat the lanes as signed (else unsigned).
        signed: bool,
    },
    /// i32x4 from f32x4, truncating, saturating to the i32 or u32 range, NaN to 0 (wasm
    /// `i32x4.trunc_sat_f32x4_{s,u}`).
    TruncSatF32x4ToI32x4 {
        /// Saturate to the i32 range (else u32).
        signed: bool,
    },
    /// i32x4 from f64x2 like [`V128UnOp::TruncSatF32x4ToI32x4`] into the low two lanes;
    /// the high two lanes are zero (wasm `i32x4.trunc_sat_f64x2_{s,u}_zero`).
    TruncSatF64x2ToI32x4Zero {
        /// Saturate to the i32 range (else u32).
        signed: bool,
    },
    /// f32x4 low two lanes from f64x2 (rounded to nearest), high two lanes zero (wasm
    /// `f32x4.demote_f64x2_zero`).
    DemoteF64x2Zero,
    /// f64x2 from the low two f32 lanes (wasm `f64x2.promote_low_f32x4`).
    PromoteLowF32x4,
}

/// A v128 operation with an i32 result in an int register.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum V128Test {
    /// 1 if any bit is set, else 0 (wasm `v128.any_true`).
    AnyTrue,
    /// 1 if every lane is non-zero, else 0 (wasm `*.all_true`).
    AllTrue(Lanes),
    /// Bit `i` = the top (sign) bit of lane `i` (wasm `*.bitmask`).
    Bitmask(Lanes),
}

/// A lane-wise v128 shift by the same amount in every lane.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum V128Shift {
    /// Shift left.
    Shl(Lanes),
    /// Arithmetic shift right.
    ShrS(Lanes),
    /// Logical shift right.
    ShrU(Lanes),
}

/// A memory operand that is not in linear memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Address {
    /// Relative to the frame pointer (locals, spill slots, incoming arguments).
    Frame(i32),
    /// Relative to the stack pointer (outgoing arguments and results).
    Outgoing(i32),
    /// Relative to the vmctx register.
    Vmctx(i32),
    /// Relative to a register.
    Base(Reg, i32),
}

/// A linear-memory operand: `memory_base + zero_extend(index) + offset`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HeapAddress {
    /// The memory's base address: `None` for memory 0, whose base lives in a pinned
    /// register; for another memory a register the core loaded it into.
    pub base: Option<Reg>,
    /// The wasm address (an i32, zero-extended in its register).
    pub index: Reg,
    /// The static offset of the memory instruction.
    pub offset: u32,
}

/// Integer comparison.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IntCmp {
    /// `==`
    Eq,
    /// `!=`
    Ne,
    /// signed `<`
    LtS,
    /// unsigned `<`
    LtU,
    /// signed `>`
    GtS,
    /// unsigned `>`
    GtU,
    /// signed `<=`
    LeS,
    /// unsigned `<=`
    LeU,
    /// signed `>=`
    GeS,
    /// unsigned `>=`
    GeU,
}

/// Two-operand integer ALU operations.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AluOp {
    /// Wrapping add.
    Add,
    /// Wrapping subtract.
    Sub,
    /// Wrapping multiply.
    Mul,
    /// Bitwise and.
    And,
    /// Bitwise or.
    Or,
    /// Bitwise xor.
    Xor,
}

/// Shifts and rotates (the count is taken modulo the width).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ShiftOp {
    /// Shift left.
    Shl,
    /// Arithmetic shift right.
    ShrS,
    /// Logical shift right.
    ShrU,
    /// Rotate left.
    Rotl,
    /// Rotate right.
    Rotr,
}

/// Division and remainder. The core guarantees the operation cannot fault (divisor is
/// non-zero, and for `DivS` not the `MIN / -1` overflow; `RemS` by -1 is handled by the core).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DivKind {
    /// Signed quotient.
    DivS,
    /// Unsigned quotient.
    DivU,
    /// Signed remainder.
    RemS,
    /// Unsigned remainder.
    RemU,
}

/// Single-operand integer operations.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IntUnary {
    /// Count leading zeros (width if zero).
    Clz,
    /// Count trailing zeros (width if zero).
    Ctz,
    /// Population count.
    Popcnt,
}

/// Integer width changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Extend {
    /// Sign-extend the low 8 bits to 32.
    I32From8S,
    /// Sign-extend the low 16 bits to 32.
    I32From16S,
    /// Sign-extend the low 8 bits to 64.
    I64From8S,
    /// Sign-extend the low 16 bits to 64.
    I64From16S,
    /// Sign-extend the low 32 bits to 64.
    I64From32S,
    /// Zero-extend the low 32 bits to 64.
    I64From32U,
    /// Keep the low 32 bits (zero-extended in the register).
    I32Wrap,
}

/// How a linear-memory load reads and extends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoadKind {
    /// 32-bit into an int register.
    I32,
    /// 64-bit into an int register.
    I64,
    /// 32-bit into a float register.
    F32,
    /// 64-bit into a float register.
    F64,
    /// 8-bit, sign-extended to 32.
    I32S8,
    /// 8-bit, zero-extended.
    I32U8,
    /// 16-bit, sign-extended to 32.
    I32S16,
    /// 16-bit, zero-extended.
    I32U16,
    /// 8-bit, sign-extended to 64.
    I64S8,
    /// 16-bit, sign-extended to 64.
    I64S16,
    /// 32-bit, sign-extended to 64.
    I64S32,
    /// 8-bit zero-extended into a 64-bit value.
    I64U8,
    /// 16-bit zero-extended into a 64-bit value.
    I64U16,
    /// 32-bit zero-extended into a 64-bit value.
    I64U32,
    /// 128 bits into a vector register (any alignment).
    V128,
    /// One lane of the shape (8, 16, 32 or 64 bits) into every lane of a vector register
    /// (wasm `v128.loadN_splat`).
    V128Splat(Lanes),
    /// 64 bits whose half-width lanes are sign- or zero-extended into `lanes` (the result:
    /// `I16x8`, `I32x4` or `I64x2`; wasm `v128.load8x8_s` ...).
    V128Extend(Lanes, bool),
    /// 32 bits (`I32x4`) or 64 bits (`I64x2`) into lane 0, the other bits zero (wasm
    /// `v128.load32_zero`, `v128.load64_zero`).
    V128Zero(Lanes),
}

/// How a linear-memory store writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreKind {
    /// Low 8 bits of an int register.
    I8,
    /// Low 16 bits of an int register.
    I16,
    /// Low 32 bits of an int register.
    I32,
    /// 64 bits of an int register.
    I64,
    /// A float register's f32.
    F32,
    /// A float register's f64.
    F64,
    /// A vector register's 128 bits (any alignment).
    V128,
}

/// Two-operand float operations with wasm semantics (NaN propagation, `-0 < +0` for
/// min/max, copysign on the bits).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FloatBinOp {
    /// `+`
    Add,
    /// `-`
    Sub,
    /// `*`
    Mul,
    /// `/`
    Div,
    /// wasm `min`
    Min,
    /// wasm `max`
    Max,
    /// magnitude of lhs, sign of rhs
    Copysign,
}

/// Single-operand float operations.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FloatUnOp {
    /// Clear the sign bit.
    Abs,
    /// Flip the sign bit.
    Neg,
    /// Square root.
    Sqrt,
    /// Round up.
    Ceil,
    /// Round down.
    Floor,
    /// Round toward zero.
    Trunc,
    /// Round to nearest, ties to even.
    Nearest,
}

/// Float comparisons; every one but `Ne` is false when an operand is NaN.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FloatCmp {
    /// `==`
    Eq,
    /// `!=` (true for NaN)
    Ne,
    /// `<`
    Lt,
    /// `>`
    Gt,
    /// `<=`
    Le,
    /// `>=`
    Ge,
}

/// Where a call's target comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallTarget {
    /// A function defined by the same module, called directly (x86-64 `call rel32`,
    /// AArch64 `bl`); the vmctx register stays as it is. The call's 4-byte target field
    /// ends at the returned return offset, is 4-byte aligned and is left zero: the runtime
    /// fills it in at placement (see [`crate::Relocation`]) and may later patch it with one
    /// aligned 4-byte store while the code runs.
    Direct,
    /// Any `VMFuncRef` whose address is in `funcref`: switches the vmctx register to the
    /// callee's context (propagating the stack limit) and the memory-base register to that
    /// context's memory 0, passes the caller's context in the ISA's caller-context register
    /// for host functions, calls, then restores the vmctx and memory-base registers from
    /// the frame.
    FuncRef {
        /// Register holding the `VMFuncRef` address.
        funcref: Reg,
    },
}

/// The machine primitives the core emits through. One implementation per ISA.
pub trait MacroAssembler {
    /// Allocatable registers of `class`, in allocation preference order. None of them is
    /// pinned, used as scratch by the implementation, or preserved across calls.
    fn allocatable(&self, class: RegClass) -> &'static [Reg];
    /// A register of `class` the core may use to break cycles of parallel moves: not
    /// allocatable, and not touched by [`MacroAssembler::mov`], [`MacroAssembler::load`],
    /// [`MacroAssembler::store`] or [`MacroAssembler::copy`] (so it survives them).
    fn move_scratch(&self, class: RegClass) -> Reg;
    /// Register holding a function's single result of `class` at return.
    fn return_reg(&self, class: RegClass) -> Reg;
    /// Current code offset.
    fn offset(&self) -> u32;

    /// A new unbound label.
    fn new_label(&mut self) -> Label;
    /// Binds `label` to the current offset.
    fn bind(&mut self, label: Label) -> Result<()>;
    /// Unconditional jump.
    fn jump(&mut self, target: Label);

    /// Function entry: set up the frame (frame size patched later by
    /// [`MacroAssembler::finish`]), check the stack limit (trap `StackOverflow` if exceeded)
    /// and save the vmctx register at `vmctx_slot` (a frame offset). Returns the pc of the
    /// stack check.
    fn prologue(&mut self, vmctx_slot: i32, stack_limit_offset: i32) -> Result<u32>;
    /// Zeroes `len` bytes (a multiple of 8) of the frame starting at frame offset `start`
    /// (the lowest address). Clobbers nothing the core can see.
    fn zero_frame(&mut self, start: i32, len: u32);
    /// Function exit: tear down the frame and return.
    fn epilogue(&mut self);

    /// `dst = src` (same class; for an immediate of a float register: raw bits).
    fn mov(&mut self, dst: Reg, src: RegImm, size: OperandSize);
    /// Loads a value of `dst`'s class from a non-heap address.
    fn load(&mut self, dst: Reg, src: Address, size: OperandSize);
    /// Stores a register or immediate to a non-heap address.
    fn store(&mut self, src: RegImm, dst: Address, size: OperandSize);
    /// Memory-to-memory copy of one value through a scratch register.
    fn copy(&mut self, dst: Address, src: Address, size: OperandSize);
    /// `dst = address of src` (an int register).
    fn lea(&mut self, dst: Reg, src: Address);

    /// Linear-memory load; returns the pc of the instruction that faults when out of bounds.
    fn load_heap(&mut self, dst: Reg, src: HeapAddress, kind: LoadKind) -> u32;
    /// Linear-memory store; returns the pc of the instruction that faults when out of bounds.
    fn store_heap(&mut self, src: RegImm, dst: HeapAddress, kind: StoreKind) -> u32;

    /// `dst = lhs op rhs`.
    fn alu(&mut self, op: AluOp, dst: Reg, lhs: Reg, rhs: RegImm, size: OperandSize);
    /// `dst = lhs shift rhs`.
    fn shift(&mut self, op: ShiftOp, dst: Reg, lhs: Reg, rhs: RegImm, size: OperandSize);
    /// `dst = lhs div/rem rhs`, assumed not to fault (see [`DivKind`]).
    fn div(&mut self, kind: DivKind, dst: Reg, lhs: Reg, rhs: Reg, size: OperandSize);
    /// `dst = op(src)`.
    fn int_unary(&mut self, op: IntUnary, dst: Reg, src: Reg, size: OperandSize);
    /// `dst = extend(src)`.
    fn extend(&mut self, kind: Extend, dst: Reg, src: Reg);
    /// `dst = (lhs cc rhs) ? 1 : 0` (as an i32).
    fn cmp_set(&mut self, cc: IntCmp, dst: Reg, lhs: Reg, rhs: RegImm, size: OperandSize);
    /// Branch to `target` if `lhs cc rhs`.
    fn cmp_branch(&mut self, cc: IntCmp, lhs: Reg, rhs: RegImm, size: OperandSize, target: Label);
    /// `dst = cond != 0 ? dst : if_false` (`cond` is an i32, `dst`/`if_false` of any class).
    fn select(&mut self, dst: Reg, cond: Reg, if_false: Reg, size: OperandSize);
    /// Jumps to `targets[index]`, or to `default` if `index` (an unsigned i32) is out of range.
    fn jump_table(&mut self, index: Reg, targets: &[Label], default: Label);

    /// Puts the 128-bit constant `bits` (lane 0 in the low bits) in vector register `dst`.
    fn v128_const(&mut self, dst: Reg, bits: u128);
    /// `dst = lhs op rhs` on vector registers (`dst` may equal either source).
    fn v128_binop(&mut self, op: V128BinOp, dst: Reg, lhs: Reg, rhs: Reg);
    /// `dst = op src` on vector registers (`dst` may equal `src`).
    fn v128_unop(&mut self, op: V128UnOp, dst: Reg, src: Reg);
    /// `dst` (an int register) `= test(src)` as an i32 (see [`V128Test`]).
    fn v128_test(&mut self, test: V128Test, dst: Reg, src: Reg);
    /// Branch to `target` if `test(src)` (`AnyTrue` or `AllTrue` only) is `when`.
    fn v128_test_branch(&mut self, test: V128Test, src: Reg, when: bool, target: Label);
    /// `dst = src shift amount` lane-wise. A register `amount` is an i32 not yet reduced:
    /// the implementation takes it modulo the lane width; an immediate is already reduced
    /// (`0 <= imm < lane bits`). `dst` may equal `src`; `amount` is not written.
    fn v128_shift(&mut self, op: V128Shift, dst: Reg, src: Reg, amount: RegImm);
    /// Every lane of `dst` (of shape `lanes`) = the scalar `src`: an int register (the low
    /// lane-width bits), or for `I32x4`/`I64x2` a float register's f32/f64 (wasm `splat`).
    fn v128_splat(&mut self, dst: Reg, src: Reg, lanes: Lanes);
    /// `dst` = lane `lane` of `src` (shape `lanes`): into an int register (`I8x16`/`I16x8`
    /// sign- or zero-extended to an i32 by `signed`, `I32x4` as an i32, `I64x2` as an i64),
    /// or for `I32x4`/`I64x2` into a float register as an f32/f64 (wasm `extract_lane`).
    fn v128_extract_lane(&mut self, dst: Reg, src: Reg, lanes: Lanes, lane: u8, signed: bool);
    /// Lane `lane` (shape `lanes`) of vector register `dst` = the scalar `src`, an int or
    /// (for `I32x4`/`I64x2`) float register as in [`MacroAssembler::v128_splat`]; the other
    /// lanes are kept (wasm `replace_lane`).
    fn v128_replace_lane(&mut self, dst: Reg, src: Reg, lanes: Lanes, lane: u8);
    /// `dst` byte `i` = byte `lanes[i]` of the 32-byte concatenation `lhs:rhs` (`lhs` bytes
    /// 0..16; every index `< 32`; wasm `i8x16.shuffle`). `dst` may equal either source.
    fn v128_shuffle(&mut self, dst: Reg, lhs: Reg, rhs: Reg, lanes: [u8; 16]);
    /// `dst = (a & mask) | (b & !mask)` (wasm `v128.bitselect`); `dst` may equal any source.
    fn v128_bitselect(&mut self, dst: Reg, a: Reg, b: Reg, mask: Reg);
    /// `dst = lhs cmp rhs`, lane-wise (see [`V128Cmp`]); `dst` may equal either source.
    fn v128_cmp(&mut self, cmp: V128Cmp, dst: Reg, lhs: Reg, rhs: Reg);
    /// Replaces lane `lane` (of shape `lanes`) of vector register `dst` with the value read
    /// from linear memory at `src` (wasm `v128.loadN_lane`); returns the pc of the access.
    fn v128_load_lane(&mut self, dst: Reg, src: HeapAddress, lanes: Lanes, lane: u8) -> u32;
    /// Stores lane `lane` (of shape `lanes`) of vector register `src` to linear memory at
    /// `dst` (wasm `v128.storeN_lane`); returns the pc of the access.
    fn v128_store_lane(&mut self, src: Reg, dst: HeapAddress, lanes: Lanes, lane: u8) -> u32;

    /// `dst = lhs op rhs` on floats of `size`.
    fn float_binop(&mut self, op: FloatBinOp, dst: Reg, lhs: Reg, rhs: Reg, size: OperandSize);
    /// `dst = op(src)` on floats of `size`.
    fn float_unop(&mut self, op: FloatUnOp, dst: Reg, src: Reg, size: OperandSize);
    /// `dst` (int) `= (lhs cc rhs) ? 1 : 0` on floats of `size`.
    fn float_cmp_set(&mut self, cc: FloatCmp, dst: Reg, lhs: Reg, rhs: Reg, size: OperandSize);
    /// Branch to `target` if `lhs cc rhs` on floats of `size`.
    fn float_cmp_branch(
        &mut self,
        cc: FloatCmp,
        lhs: Reg,
        rhs: Reg,
        size: OperandSize,
        target: Label,
    );
    /// Branch to `target` if `lhs cc rhs` is false on floats of `size` (so for every `cc`
    /// but `Ne`, also when an operand is NaN).
    fn float_cmp_branch_not(
        &mut self,
        cc: FloatCmp,
        lhs: Reg,
        rhs: Reg,
        size: OperandSize,
        target: Label,
    );
    /// Trap with `code` if `lhs cc rhs` on floats; returns the pc of the branch.
    fn float_trap_if(
        &mut self,
        cc: FloatCmp,
        lhs: Reg,
        rhs: Reg,
        size: OperandSize,
        code: TrapCode,
    ) -> u32;
    /// `dst` (float of `float_size`) `= src` (int of `int_size`, `signed` or not).
    fn int_to_float(
        &mut self,
        dst: Reg,
        src: Reg,
        int_size: OperandSize,
        signed: bool,
        float_size: OperandSize,
    );
    /// Converts between f32 and f64; `dst_size` is the size of the result.
    fn float_to_float(&mut self, dst: Reg, src: Reg, dst_size: OperandSize);
    /// `dst` (int) `= trunc(src)`; the core guarantees `src` is in range (no NaN).
    fn float_to_int(
        &mut self,
        dst: Reg,
        src: Reg,
        float_size: OperandSize,
        int_size: OperandSize,
        signed: bool,
    );

    /// Trap with `code` if `lhs cc rhs`; returns the pc of the branch.
    fn trap_if(
        &mut self,
        cc: IntCmp,
        lhs: Reg,
        rhs: RegImm,
        size: OperandSize,
        code: TrapCode,
    ) -> u32;
    /// Unconditional trap; returns its pc.
    fn trap(&mut self, code: TrapCode) -> u32;

    /// Calls a wasm function (internal convention: arguments and extra results in the outgoing
    /// area, a single result in [`MacroAssembler::return_reg`]; all allocatable registers are
    /// clobbered). Returns the pc of the return address.
    fn call(&mut self, target: CallTarget) -> u32;
    /// Tail call: tears the frame down as [`MacroAssembler::epilogue`] does, but instead of
    /// returning jumps to `target`, which then runs with the current function's caller's
    /// return address and frame pointer and returns straight to it. The arguments must
    /// already be in the current function's incoming area (frame offset 16 upwards). With
    /// `Direct`, the jump's 4-byte target field ends at the returned offset and follows the
    /// rules of [`CallTarget::Direct`] (left zero, 4-byte aligned, filled in at placement,
    /// maybe patched later; AArch64 `b` instead of `bl`). With `FuncRef`, the vmctx register
    /// is switched to the callee's context (propagating the stack limit), the memory-base
    /// register to that context's memory 0, and the current vmctx is passed in the
    /// caller-context register, as [`MacroAssembler::call`] does; `funcref` must not be
    /// the frame pointer (no allocatable register is). Returns the offset after the jump.
    fn tail_call(&mut self, target: CallTarget) -> u32;
    /// Reloads the vmctx register from the frame slot the prologue saved it in, and the
    /// memory-base register from the vmctx: after a direct call whose callee may have
    /// tail-called into another instance, which then returned with its own registers.
    fn reload_context(&mut self);
    /// Calls the runtime builtin whose pointer is at vmctx offset `fn_offset` with the system
    /// calling convention: the vmctx is passed as the first argument, then `args` (at most
    /// four, each passed as a 64-bit integer). The result is in `return_reg(Int)`. Clobbers
    /// every allocatable register.
    fn call_builtin(&mut self, fn_offset: i32, args: &[RegImm]);
    /// Throws the exception `exn` (an exnref, not null): calls the engine's throw landing,
    /// whose address is at vmctx offset `landing`, with `exn` in the first argument
    /// register of the system convention. The call never returns; the unwinder looks its
    /// return address (the returned offset) up as a call site of this function.
    fn call_throw(&mut self, landing: i32, exn: Reg) -> u32;

    /// Reserves code buffer space for a body of `wasm_bytes` bytes of wasm (a hint that
    /// saves the copies of a growing buffer).
    fn reserve_for_body(&mut self, wasm_bytes: usize);

    /// Emits the out-of-line trap stubs, patches the frame size (`frame_size` bytes below the
    /// frame pointer, including the saved vmctx) and returns the code. The assembler is
    /// then empty, ready for the next function.
    fn finish(&mut self, frame_size: u32) -> Result<Vec<u8>>;

    /// Empties the assembler for the next function (also after a function that failed half
    /// way), keeping what capacity it can.
    fn reset(&mut self);

    /// Whether the last [`MacroAssembler::finish`] failed only because the function
    /// outgrew the reach of the short branch forms the assembler chose; the body then
    /// compiles after [`MacroAssembler::use_long_branches`].
    fn needs_long_branches(&self) -> bool {
        false
    }

    /// Makes the following functions use branch forms that reach any distance (or, with
    /// `false`, the short forms again).
    fn use_long_branches(&mut self, _long: bool) {}
}
