//! Raw A64 encodings of the instructions that carry immediates or addressing modes, and the
//! legality tests for those immediates.
//!
//! dynasm checks dynamic immediates at run time and panics when one does not fit; every
//! instruction whose immediate comes from wasm input is therefore encoded here, after the
//! caller has decided (with the `*_imm` tests below) which form is legal. Label-relative
//! branches and register-only instructions go through dynasm.

/// Register number 31: `sp` or `xzr`/`wzr` depending on the operand position.
pub const ZR: u8 = 31;
/// Register number 31 in a base/SP position.
pub const SP: u8 = 31;

/// A64 condition codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Cond {
    Eq = 0,
    Ne = 1,
    Hs = 2,
    Lo = 3,
    Mi = 4,
    Pl = 5,
    Hi = 8,
    Ls = 9,
    Ge = 10,
    Lt = 11,
    Gt = 12,
    Le = 13,
}

impl Cond {
    /// The complementary condition (true exactly when `self` is false).
    pub fn invert(self) -> Cond {
        match self {
            Cond::Eq => Cond::Ne,
            Cond::Ne => Cond::Eq,
            Cond::Hs => Cond::Lo,
            Cond::Lo => Cond::Hs,
            Cond::Mi => Cond::Pl,
            Cond::Pl => Cond::Mi,
            Cond::Hi => Cond::Ls,
            Cond::Ls => Cond::Hi,
            Cond::Ge => Cond::Lt,
            Cond::Lt => Cond::Ge,
            Cond::Gt => Cond::Le,
            Cond::Le => Cond::Gt,
        }
    }
}

fn r(x: u8) -> u32 {
    u32::from(x & 31)
}

fn sf(is64: bool) -> u32 {
    u32::from(is64) << 31
}

/// The `imm12` / `lsl #12` split of an add/sub immediate, if `v` has one.
pub fn add_imm(v: u64) -> Option<(u32, bool)> {
    if v < 4096 {
        Some((v as u32, false))
    } else if v & 0xfff == 0 && v < (4096 << 12) {
        Some(((v >> 12) as u32, true))
    } else {
        None
    }
}

/// `N:immr:imms` (13 bits) of a logical immediate of the given width, if `v` has one
/// (all-zero and all-ones values never do).
pub fn logical_imm(v: u64, is64: bool) -> Option<u32> {
    if is64 {
        dynasmrt::aarch64::encode_logical_immediate_64bit(v).map(u32::from)
    } else {
        dynasmrt::aarch64::encode_logical_immediate_32bit(v as u32).map(u32::from)
    }
}

/// `ADD/ADDS/SUB/SUBS (immediate)`; `rn` (and `rd` unless `set_flags`) 31 means `sp`.
pub fn add_sub_imm(
    is64: bool,
    sub: bool,
    set_flags: bool,
    rd: u8,
    rn: u8,
    imm12: u32,
    lsl12: bool,
) -> u32 {
    sf(is64)
        | u32::from(sub) << 30
        | u32::from(set_flags) << 29
        | 0b100010 << 23
        | u32::from(lsl12) << 22
        | (imm12 & 0xfff) << 10
        | r(rn) << 5
        | r(rd)
}

/// Register extension/shift option of the extended-register forms.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u32)]
pub enum Extend {
    /// Zero-extend the low 32 bits.
    Uxtw = 0b010,
    /// The whole 64-bit register (`lsl`).
    Uxtx = 0b011,
}

/// `ADD/SUB (extended register)`: `rd = rn +/- extend(rm) << shift`; `rd`/`rn` 31 mean
/// `sp` (unless `set_flags`, where `rd` 31 is `xzr`).
#[allow(clippy::too_many_arguments)] // one parameter per instruction field
pub fn add_sub_ext(
    is64: bool,
    sub: bool,
    set_flags: bool,
    rd: u8,
    rn: u8,
    rm: u8,
    ext: Extend,
    shift: u32,
) -> u32 {
    sf(is64)
        | u32::from(sub) << 30
        | u32::from(set_flags) << 29
        | 0b01011 << 24
        | 1 << 21
        | r(rm) << 16
        | (ext as u32) << 13
        | (shift & 7) << 10
        | r(rn) << 5
        | r(rd)
}

/// `ADD/SUB (shifted register)` with no shift; 31 is the zero register everywhere.
pub fn add_sub_reg(is64: bool, sub: bool, set_flags: bool, rd: u8, rn: u8, rm: u8) -> u32 {
    sf(is64)
        | u32::from(sub) << 30
        | u32::from(set_flags) << 29
        | 0b01011 << 24
        | r(rm) << 16
        | r(rn) << 5
        | r(rd)
}

/// Logical operations.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u32)]
pub enum LogicOp {
    And = 0b00,
    Orr = 0b01,
    Eor = 0b10,
}

/// `AND/ORR/EOR (immediate)` with `nimms` from [`logical_imm`]; `rd` 31 is `sp`, `rn` 31 `zr`.
pub fn logical_imm_op(is64: bool, op: LogicOp, rd: u8, rn: u8, nimms: u32) -> u32 {
    let n = (nimms >> 12) & 1;
    let immr = (nimms >> 6) & 0x3f;
    let imms = nimms & 0x3f;
    sf(is64)
        | (op as u32) << 29
        | 0b100100 << 23
        | n << 22
        | immr << 16
        | imms << 10
        | r(rn) << 5
        | r(rd)
}

/// `AND/ORR/EOR (shifted register)`, optionally with the second operand inverted
/// (`BIC/ORN/EON`); 31 is the zero register.
pub fn logical_reg(is64: bool, op: LogicOp, invert: bool, rd: u8, rn: u8, rm: u8) -> u32 {
    sf(is64)
        | (op as u32) << 29
        | 0b01010 << 24
        | u32::from(invert) << 21
        | r(rm) << 16
        | r(rn) << 5
        | r(rd)
}

/// Move-wide opcodes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u32)]
pub enum MovWide {
    /// `MOVN`: `rd = !(imm16 << 16*hw)`.
    N = 0b00,
    /// `MOVZ`: `rd = imm16 << 16*hw`.
    Z = 0b10,
    /// `MOVK`: replace one halfword.
    K = 0b11,
}

/// `MOVN/MOVZ/MOVK`.
pub fn mov_wide(is64: bool, op: MovWide, rd: u8, imm16: u16, hw: u32) -> u32 {
    sf(is64) | (op as u32) << 29 | 0b100101 << 23 | (hw & 3) << 21 | u32::from(imm16) << 5 | r(rd)
}

/// The instructions that put the constant `v` (of 32 or 64 bits) into `rd`.
pub fn mov_imm_seq(rd: u8, v: u64, is64: bool) -> Vec<u32> {
    let halves = if is64 { 4 } else { 2 };
    let v = if is64 { v } else { v & 0xffff_ffff };
    let mask = if is64 { u64::MAX } else { 0xffff_ffff };
    let chunk = |x: u64, i: u32| ((x >> (16 * i)) & 0xffff) as u16;
    let zeros = (0..halves).filter(|&i| chunk(v, i) == 0).count();
    let ones = (0..halves).filter(|&i| chunk(v, i) == 0xffff).count();
    // A single MOVZ/MOVN covers values with at most one non-trivial halfword.
    if zeros >= halves as usize - 1 || ones >= halves as usize - 1 || v == 0 {
        // fall through to the general sequence below, which emits exactly one instruction
    } else if let Some(nimms) = logical_imm(v, is64) {
        return vec![logical_imm_op(is64, LogicOp::Orr, rd, ZR, nimms)];
    }
    let mut out = Vec::new();
    if ones > zeros {
        // MOVN of the inverted first non-0xffff halfword, then MOVK the others.
        let inv = !v & mask;
        let first = (0..halves).find(|&i| chunk(v, i) != 0xffff).unwrap_or(0);
        out.push(mov_wide(is64, MovWide::N, rd, chunk(inv, first), first));
        for i in (first + 1)..halves {
            if chunk(v, i) != 0xffff {
                out.push(mov_wide(is64, MovWide::K, rd, chunk(v, i), i));
            }
        }
    } else {
        let first = (0..halves).find(|&i| chunk(v, i) != 0).unwrap_or(0);
        out.push(mov_wide(is64, MovWide::Z, rd, chunk(v, first), first));
        for i in (first + 1)..halves {
            if chunk(v, i) != 0 {
                out.push(mov_wide(is64, MovWide::K, rd, chunk(v, i), i));
            }
        }
    }
    out
}

/// A load or store: `(size, V, opc)` of the A64 load/store encodings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LdSt {
    size: u32,
    v: u32,
    opc: u32,
}

impl LdSt {
    /// `STRB`
    pub const STRB: LdSt = LdSt::new(0, 0, 0);
    /// `LDRB` (zero-extends)
    pub const LDRB: LdSt = LdSt::new(0, 0, 1);
    /// `LDRSB` to 64 bits
    pub const LDRSB_X: LdSt = LdSt::new(0, 0, 2);
    /// `LDRSB` to 32 bits
    pub const LDRSB_W: LdSt = LdSt::new(0, 0, 3);
    /// `STRH`
    pub const STRH: LdSt = LdSt::new(1, 0, 0);
    /// `LDRH` (zero-extends)
    pub const LDRH: LdSt = LdSt::new(1, 0, 1);
    /// `LDRSH` to 64 bits
    pub const LDRSH_X: LdSt = LdSt::new(1, 0, 2);
    /// `LDRSH` to 32 bits
    pub const LDRSH_W: LdSt = LdSt::new(1, 0, 3);
    /// `STR Wt`
    pub const STR_W: LdSt = LdSt::new(2, 0, 0);
    /// `LDR Wt` (zero-extends)
    pub const LDR_W: LdSt = LdSt::new(2, 0, 1);
    /// `LDRSW`
    pub const LDRSW: LdSt = LdSt::new(2, 0, 2);
    /// `STR Xt`
    pub const STR_X: LdSt = LdSt::new(3, 0, 0);
    /// `LDR Xt`
    pub const LDR_X: LdSt = LdSt::new(3, 0, 1);
    /// `STR St`
    pub const STR_S: LdSt = LdSt::new(2, 1, 0);
    /// `LDR St`
    pub const LDR_S: LdSt = LdSt::new(2, 1, 1);
    /// `STR Dt`
    pub const STR_D: LdSt = LdSt::new(3, 1, 0);
    /// `LDR Dt`
    pub const LDR_D: LdSt = LdSt::new(3, 1, 1);
    /// `STR Qt` (128 bits: `size` 0 with `opc` 2 in the vector encodings)
    pub const STR_Q: LdSt = LdSt::new(0, 1, 2);
    /// `LDR Qt`
    pub const LDR_Q: LdSt = LdSt::new(0, 1, 3);

    const fn new(size: u32, v: u32, opc: u32) -> LdSt {
        LdSt { size, v, opc }
    }

    /// Access size in bytes (the scale of the unsigned-offset form).
    pub fn bytes(self) -> u32 {
        if self.v == 1 && self.opc >= 2 {
            16
        } else {
            1 << self.size
        }
    }

    fn base(self) -> u32 {
        self.size << 30 | 0b111 << 27 | self.v << 26 | self.opc << 22
    }

    /// The scaled 12-bit unsigned offset for `disp`, if this form can express it.
    pub fn uimm(self, disp: i64) -> Option<u32> {
        let b = i64::from(self.bytes());
        (disp >= 0 && disp % b == 0 && disp / b < 4096).then(|| (disp / b) as u32)
    }

    /// Whether the unscaled signed 9-bit form (`LDUR`/`STUR`) can express `disp`.
    pub fn simm9(disp: i64) -> bool {
        (-256..=255).contains(&disp)
    }

    /// `[rn, #uimm * bytes]` (`rn` 31 is `sp`).
    pub fn scaled(self, rt: u8, rn: u8, uimm: u32) -> u32 {
        self.base() | 1 << 24 | (uimm & 0xfff) << 10 | r(rn) << 5 | r(rt)
    }

    /// `[rn, #simm9]` (`LDUR`/`STUR` family; `rn` 31 is `sp`).
    pub fn unscaled(self, rt: u8, rn: u8, simm9: i32) -> u32 {
        self.base() | ((simm9 as u32) & 0x1ff) << 12 | r(rn) << 5 | r(rt)
    }

    /// `[rn, rm{, ext}]`, optionally scaled by the access size (`rn` 31 is `sp`).
    pub fn indexed(self, rt: u8, rn: u8, rm: u8, ext: Extend, scaled: bool) -> u32 {
        self.base()
            | 1 << 21
            | r(rm) << 16
            | (ext as u32) << 13
            | u32::from(scaled) << 12
            | 0b10 << 10
            | r(rn) << 5
            | r(rt)
    }
}

/// `STP/LDP Xt1, Xt2, [rn, #imm]` (signed offset, `imm` a multiple of 8 in -512..=504).
pub fn ldp_stp_x(load: bool, rt1: u8, rt2: u8, rn: u8, imm: i32) -> u32 {
    0xA900_0000
        | u32::from(load) << 22
        | (((imm / 8) as u32) & 0x7f) << 15
        | r(rt2) << 10
        | r(rn) << 5
        | r(rt1)
}

/// Bitfield moves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u32)]
pub enum Bfm {
    /// Signed (`asr`, `sxt*`).
    S = 0b00,
    /// Unsigned (`lsl`, `lsr`, `uxt*`).
    U = 0b10,
}

/// `SBFM/UBFM rd, rn, #immr, #imms`.
pub fn bfm(is64: bool, op: Bfm, rd: u8, rn: u8, immr: u32, imms: u32) -> u32 {
    sf(is64)
        | (op as u32) << 29
        | 0b100110 << 23
        | u32::from(is64) << 22
        | (immr & 0x3f) << 16
        | (imms & 0x3f) << 10
        | r(rn) << 5
        | r(rd)
}

/// `EXTR rd, rn, rm, #lsb` (`ror rd, rn, #lsb` when `rn == rm`).
pub fn extr(is64: bool, rd: u8, rn: u8, rm: u8, lsb: u32) -> u32 {
    sf(is64)
        | 0b00100111 << 23
        | u32::from(is64) << 22
        | r(rm) << 16
        | (lsb & 0x3f) << 10
        | r(rn) << 5
        | r(rd)
}

/// `CSEL` (`inc`: `CSINC`).
pub fn csel(is64: bool, inc: bool, rd: u8, rn: u8, rm: u8, cond: Cond) -> u32 {
    sf(is64)
        | 0b11010100 << 21
        | r(rm) << 16
        | (cond as u32) << 12
        | u32::from(inc) << 10
        | r(rn) << 5
        | r(rd)
}

/// `CSET Wd, cond` (`CSINC Wd, wzr, wzr, !cond`).
pub fn cset(rd: u8, cond: Cond) -> u32 {
    csel(false, true, rd, ZR, ZR, cond.invert())
}

/// `FCSEL` of singles or doubles.
pub fn fcsel(is64: bool, rd: u8, rn: u8, rm: u8, cond: Cond) -> u32 {
    0x1E20_0000
        | u32::from(is64) << 22
        | r(rm) << 16
        | (cond as u32) << 12
        | 0b11 << 10
        | r(rn) << 5
        | r(rd)
}

/// `B.cond` over the next instruction (`pc + 8`).
pub fn bcond_skip(cond: Cond) -> u32 {
    0x5400_0000 | 2 << 5 | cond as u32
}

/// `CBZ/CBNZ rt, pc + 8`.
pub fn cbz_skip(is64: bool, nonzero: bool, rt: u8) -> u32 {
    sf(is64) | 0b011010 << 25 | u32::from(nonzero) << 24 | 2 << 5 | r(rt)
}

/// `ADR rd, pc + delta` (|delta| < 1 MiB).
pub fn adr(rd: u8, delta: i32) -> u32 {
    let imm = (delta as u32) & 0x1f_ffff;
    (imm & 3) << 29 | 0b10000 << 24 | (imm >> 2) << 5 | r(rd)
}

/// `CNT Vd.8B, Vn.8B`.
pub fn cnt8b(rd: u8, rn: u8) -> u32 {
    0x0E20_5800 | r(rn) << 5 | r(rd)
}

/// `ADDV Bd, Vn.8B`.
pub fn addv8b(rd: u8, rn: u8) -> u32 {
    0x0E31_B800 | r(rn) << 5 | r(rd)
}

/// Data-processing (2 source) opcodes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u32)]
pub enum Dp2 {
    Udiv = 0b000010,
    Sdiv = 0b000011,
    Lslv = 0b001000,
    Lsrv = 0b001001,
    Asrv = 0b001010,
    Rorv = 0b001011,
}

/// `UDIV/SDIV/LSLV/LSRV/ASRV/RORV rd, rn, rm`.
pub fn dp2(is64: bool, op: Dp2, rd: u8, rn: u8, rm: u8) -> u32 {
    sf(is64) | 0b0011010110 << 21 | r(rm) << 16 | (op as u32) << 10 | r(rn) << 5 | r(rd)
}

/// `MADD rd, rn, rm, ra` (`sub`: `MSUB`, `rd = ra - rn * rm`).
pub fn madd(is64: bool, sub: bool, rd: u8, rn: u8, rm: u8, ra: u8) -> u32 {
    sf(is64)
        | 0b0011011000 << 21
        | r(rm) << 16
        | u32::from(sub) << 15
        | r(ra) << 10
        | r(rn) << 5
        | r(rd)
}

/// Data-processing (1 source) opcodes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u32)]
pub enum Dp1 {
    Rbit = 0b000000,
    Clz = 0b000100,
}

/// `RBIT/CLZ rd, rn`.
pub fn dp1(is64: bool, op: Dp1, rd: u8, rn: u8) -> u32 {
    sf(is64) | 0b1011010110 << 21 | (op as u32) << 10 | r(rn) << 5 | r(rd)
}

/// Float two-operand opcodes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u32)]
pub enum Fp2 {
    Fmul = 0b0000,
    Fdiv = 0b0001,
    Fadd = 0b0010,
    Fsub = 0b0011,
    Fmax = 0b0100,
    Fmin = 0b0101,
}

/// `FMUL/FDIV/FADD/FSUB/FMAX/FMIN` on singles (`dbl` false) or doubles.
pub fn fp2(dbl: bool, op: Fp2, rd: u8, rn: u8, rm: u8) -> u32 {
    0x1E20_0800 | u32::from(dbl) << 22 | r(rm) << 16 | (op as u32) << 12 | r(rn) << 5 | r(rd)
}

/// Float one-operand opcodes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u32)]
pub enum Fp1 {
    Fmov = 0b000000,
    Fabs = 0b000001,
    Fneg = 0b000010,
    Fsqrt = 0b000011,
    /// Convert to single.
    FcvtToS = 0b000100,
    /// Convert to double.
    FcvtToD = 0b000101,
    Frintn = 0b001000,
    Frintp = 0b001001,
    Frintm = 0b001010,
    Frintz = 0b001011,
}

/// One-operand float instruction whose *source* is a single (`dbl` false) or double.
pub fn fp1(dbl: bool, op: Fp1, rd: u8, rn: u8) -> u32 {
    0x1E20_4000 | u32::from(dbl) << 22 | (op as u32) << 15 | r(rn) << 5 | r(rd)
}

/// `FCMP rn, rm`.
pub fn fcmp(dbl: bool, rn: u8, rm: u8) -> u32 {
    0x1E20_2000 | u32::from(dbl) << 22 | r(rm) << 16 | r(rn) << 5
}

/// Conversions between general and float registers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cvt {
    /// Signed int to float.
    Scvtf,
    /// Unsigned int to float.
    Ucvtf,
    /// Float to signed int, toward zero.
    Fcvtzs,
    /// Float to unsigned int, toward zero.
    Fcvtzu,
    /// Raw bits, float to general.
    FmovToGp,
    /// Raw bits, general to float.
    FmovFromGp,
}

/// Int/float conversion or move; `int64` selects W/X, `dbl` S/D.
pub fn cvt(int64: bool, dbl: bool, op: Cvt, rd: u8, rn: u8) -> u32 {
    let (rmode, opcode) = match op {
        Cvt::Scvtf => (0b00, 0b010),
        Cvt::Ucvtf => (0b00, 0b011),
        Cvt::Fcvtzs => (0b11, 0b000),
        Cvt::Fcvtzu => (0b11, 0b001),
        Cvt::FmovToGp => (0b00, 0b110),
        Cvt::FmovFromGp => (0b00, 0b111),
    };
    sf(int64) | 0x1E20_0000 | u32::from(dbl) << 22 | rmode << 19 | opcode << 16 | r(rn) << 5 | r(rd)
}

/// `B` by `offset` bytes (a multiple of 4 within ±128 MiB; wrapped to 26 bits otherwise).
pub fn b(offset: i64) -> u32 {
    0x1400_0000 | ((offset >> 2) as u32 & 0x03FF_FFFF)
}

/// `BL` by `offset` bytes (same range as [`b`]).
pub fn bl(offset: i64) -> u32 {
    0x9400_0000 | ((offset >> 2) as u32 & 0x03FF_FFFF)
}

/// `BR rn`.
pub fn br(rn: u8) -> u32 {
    0xD61F_0000 | r(rn) << 5
}

/// `BLR rn`.
pub fn blr(rn: u8) -> u32 {
    0xD63F_0000 | r(rn) << 5
}

/// Lane arrangement of a 128-bit vector integer operation (the `size` field).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u32)]
pub enum VSize {
    /// `.16b`
    B16 = 0b00,
    /// `.8h`
    H8 = 0b01,
    /// `.4s`
    S4 = 0b10,
    /// `.2d`
    D2 = 0b11,
}

/// Bitwise operations on whole 128-bit vectors (`.16b`): `U` and `size` of the
/// three-same logical group (`opcode` 0b00011).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u32)]
pub enum VLogic {
    /// `rd = rn & rm`
    And = 0b000,
    /// `rd = rn & !rm`
    Bic = 0b001,
    /// `rd = rn | rm` (`mov rd, rn` when `rn == rm`)
    Orr = 0b010,
    /// `rd = rn ^ rm`
    Eor = 0b100,
    /// `rd = (rd & rn) | (!rd & rm)`
    Bsl = 0b101,
    /// `rd = (rn & rm) | (rd & !rm)`
    Bit = 0b110,
    /// `rd = (rd & rm) | (rn & !rm)`
    Bif = 0b111,
}

/// `AND/BIC/ORR/EOR/BSL/BIT/BIF Vd.16B, Vn.16B, Vm.16B`.
pub fn vlogic(op: VLogic, rd: u8, rn: u8, rm: u8) -> u32 {
    let (u, size) = ((op as u32) >> 2, (op as u32) & 3);
    0x4E20_1C00 | u << 29 | size << 22 | r(rm) << 16 | r(rn) << 5 | r(rd)
}

/// `MOV Vd.16B, Vn.16B` (all 128 bits; `ORR Vd, Vn, Vn`).
pub fn vmov(rd: u8, rn: u8) -> u32 {
    vlogic(VLogic::Orr, rd, rn, rn)
}

/// Lane-wise arithmetic of the three-same group: `U` and `opcode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u32)]
pub enum VArith {
    /// Wrapping add.
    Add = 0b0_10000,
    /// Wrapping subtract.
    Sub = 0b1_10000,
    /// Wrapping multiply (no `.2d` form).
    Mul = 0b0_10011,
}

/// `ADD/SUB/MUL Vd.T, Vn.T, Vm.T` (128-bit arrangements).
pub fn varith(op: VArith, size: VSize, rd: u8, rn: u8, rm: u8) -> u32 {
    three_same(op as u32, size as u32, rd, rn, rm)
}

/// A 128-bit instruction of the three-same group; `u_opcode` is `U:opcode` (6 bits).
fn three_same(u_opcode: u32, size: u32, rd: u8, rn: u8, rm: u8) -> u32 {
    let (u, opcode) = (u_opcode >> 5, u_opcode & 0x1f);
    0x4E20_0400 | u << 29 | size << 22 | r(rm) << 16 | opcode << 11 | r(rn) << 5 | r(rd)
}

/// Lane-wise integer comparisons of the three-same group (`U` and `opcode`); each result
/// lane is all ones where `rn cmp rm` holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u32)]
pub enum VCmp {
    /// `rn == rm`
    Cmeq = 0b1_10001,
    /// `rn > rm`, signed.
    Cmgt = 0b0_00110,
    /// `rn >= rm`, signed.
    Cmge = 0b0_00111,
    /// `rn > rm`, unsigned.
    Cmhi = 0b1_00110,
    /// `rn >= rm`, unsigned.
    Cmhs = 0b1_00111,
}

/// `CMEQ/CMGT/CMGE/CMHI/CMHS Vd.T, Vn.T, Vm.T` (128-bit arrangements).
pub fn vcmp(op: VCmp, size: VSize, rd: u8, rn: u8, rm: u8) -> u32 {
    three_same(op as u32, size as u32, rd, rn, rm)
}

/// Lane-wise float operations of the three-same group: `U`, the high `size` bit, then
/// `opcode` (the low `size` bit selects `.4s`/`.2d`). The comparisons give all ones where
/// they hold and zero where not (so for NaN operands).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u32)]
pub enum VFloat {
    Fadd = 0b00_11010,
    Fsub = 0b01_11010,
    Fmul = 0b10_11011,
    Fdiv = 0b10_11111,
    /// `rn == rm`
    Fcmeq = 0b00_11100,
    /// `rn >= rm`
    Fcmge = 0b10_11100,
    /// `rn > rm`
    Fcmgt = 0b11_11100,
}

/// `FADD/FSUB/FMUL/FDIV/FCMEQ/FCMGE/FCMGT Vd.T, Vn.T, Vm.T` with `T` `.4s`, or `.2d` when
/// `dbl`.
pub fn vfloat(op: VFloat, dbl: bool, rd: u8, rn: u8, rm: u8) -> u32 {
    let (u, a, opcode) = ((op as u32) >> 6, (op as u32) >> 5 & 1, (op as u32) & 0x1f);
    three_same(u << 5 | opcode, a << 1 | u32::from(dbl), rd, rn, rm)
}

/// Lane-wise one-operand operations of the two-register-misc group: `U` and `opcode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u32)]
pub enum VMisc {
    /// Bitwise not (`MVN`/`NOT`, only `.16b`).
    Not = 0b1_00101,
    /// Wrapping negation.
    Neg = 0b1_01011,
    /// Wrapping absolute value (the minimum stays as it is).
    Abs = 0b0_01011,
}

/// `NOT Vd.16B, Vn.16B` / `NEG/ABS Vd.T, Vn.T` (128-bit arrangements; `Not` ignores
/// `size`).
pub fn vmisc(op: VMisc, size: VSize, rd: u8, rn: u8) -> u32 {
    let size = if op == VMisc::Not { 0 } else { size as u32 };
    two_misc(op as u32, size, rd, rn)
}

/// A 128-bit instruction of the two-register-misc group; `u_opcode` is `U:opcode`.
fn two_misc(u_opcode: u32, size: u32, rd: u8, rn: u8) -> u32 {
    let (u, opcode) = (u_opcode >> 5, u_opcode & 0x1f);
    0x4E20_0800 | u << 29 | size << 22 | opcode << 12 | r(rn) << 5 | r(rd)
}

/// Lane-wise one-operand float operations of the two-register-misc group (`U` and
/// `opcode`; the high `size` bit is set for all of them).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u32)]
pub enum VFMisc {
    /// Clear the sign bits.
    Fabs = 0b0_01111,
    /// Flip the sign bits.
    Fneg = 0b1_01111,
    Fsqrt = 0b1_11111,
}

/// `FABS/FNEG/FSQRT Vd.T, Vn.T` with `T` `.4s`, or `.2d` when `dbl`.
pub fn vfmisc(op: VFMisc, dbl: bool, rd: u8, rn: u8) -> u32 {
    two_misc(op as u32, 0b10 | u32::from(dbl), rd, rn)
}

/// `UMOV Xd, Vn.D[lane]` (`mov xd, vn.d[lane]`).
pub fn umov_d(rd: u8, rn: u8, lane: u32) -> u32 {
    let imm5 = (lane & 1) << 4 | 0b01000;
    0x4E00_3C00 | imm5 << 16 | r(rn) << 5 | r(rd)
}

/// `MOVI Vd.2D, #imm`: byte `i` of each 64-bit lane is `0xff` when bit `i` of `imm8` is
/// set, else 0 (so 0 gives zero and 0xff all ones).
pub fn movi_2d(rd: u8, imm8: u8) -> u32 {
    let abc = u32::from(imm8 >> 5);
    let defgh = u32::from(imm8 & 0x1f);
    0x6F00_E400 | abc << 16 | defgh << 5 | r(rd)
}

/// `INS Vd.D[lane], Xn` (`mov vd.d[lane], xn`; the other lane is kept).
pub fn ins_d(rd: u8, lane: u32, rn: u8) -> u32 {
    let imm5 = (lane & 1) << 4 | 0b01000;
    0x4E00_1C00 | imm5 << 16 | r(rn) << 5 | r(rd)
}

/// `DUP Vd.2D, Xn` (both lanes from one general register).
pub fn dup_2d(rd: u8, rn: u8) -> u32 {
    0x4E08_0C00 | r(rn) << 5 | r(rd)
}

/// `LD1 {vt.T}[lane], [xn]` (`load`) or `ST1 {vt.T}[lane], [xn]`: one lane of `bytes`
/// (1, 2, 4 or 8) bytes; the lane number is spread over Q, S and size as the ARM ARM
/// prescribes for each element size.
pub fn ld1_st1_lane(load: bool, bytes: u8, vt: u8, xn: u8, lane: u8) -> u32 {
    let lane = u32::from(lane);
    let (opcode, q, s, size) = match bytes {
        1 => (0b000, lane >> 3, (lane >> 2) & 1, lane & 3),
        2 => (0b010, lane >> 2, (lane >> 1) & 1, (lane & 1) << 1),
        4 => (0b100, lane >> 1, lane & 1, 0b00),
        _ => (0b100, lane & 1, 0, 0b01),
    };
    0x0D00_0000
        | q << 30
        | u32::from(load) << 22
        | opcode << 13
        | s << 12
        | size << 10
        | r(xn) << 5
        | r(vt)
}

/// More lane-wise operations of the three-same group (`U` and `opcode`, as [`VArith`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u32)]
pub enum VArith2 {
    /// Signed saturating add.
    Sqadd = 0b0_00001,
    /// Unsigned saturating add.
    Uqadd = 0b1_00001,
    /// Signed saturating subtract.
    Sqsub = 0b0_00101,
    /// Unsigned saturating subtract.
    Uqsub = 0b1_00101,
    Smax = 0b0_01100,
    Umax = 0b1_01100,
    Smin = 0b0_01101,
    Umin = 0b1_01101,
    /// Unsigned rounding halving add `(a + b + 1) >> 1`.
    Urhadd = 0b1_00010,
    /// Signed saturating rounding doubling multiply returning the high half (`.8h`, `.4s`).
    Sqrdmulh = 0b1_10110,
    /// Pairwise add: `rn` pairs then `rm` pairs.
    Addp = 0b0_10111,
    /// Signed shift by the (signed) low byte of each `rm` lane; negative shifts right.
    Sshl = 0b0_01000,
    /// Unsigned shift by the (signed) low byte of each `rm` lane; negative shifts right.
    Ushl = 0b1_01000,
}

/// `SQADD/UQADD/.../ADDP/SSHL/USHL Vd.T, Vn.T, Vm.T` (128-bit arrangements).
pub fn varith2(op: VArith2, size: VSize, rd: u8, rn: u8, rm: u8) -> u32 {
    three_same(op as u32, size as u32, rd, rn, rm)
}

/// `FMAX/FMIN Vd.T, Vn.T, Vm.T` (NaN-propagating) with `T` `.4s`, or `.2d` when `dbl`.
pub fn vfminmax(min: bool, dbl: bool, rd: u8, rn: u8, rm: u8) -> u32 {
    three_same(0b0_11110, u32::from(min) << 1 | u32::from(dbl), rd, rn, rm)
}

/// `SMULL/UMULL Vd.T, Vn.Tb, Vm.Tb` (low halves; `high`: `SMULL2/UMULL2` of the high
/// halves), `src` the source lane size (`B16` gives `.8h` from `.8b`, ...).
pub fn vmull(signed: bool, high: bool, src: VSize, rd: u8, rn: u8, rm: u8) -> u32 {
    0x0E20_C000
        | u32::from(high) << 30
        | u32::from(!signed) << 29
        | (src as u32) << 22
        | r(rm) << 16
        | r(rn) << 5
        | r(rd)
}

/// A two-register-misc instruction with an explicit `Q` (`u_opcode` is `U:opcode`).
fn two_misc_q(q: bool, u_opcode: u32, size: u32, rd: u8, rn: u8) -> u32 {
    two_misc(u_opcode, size, rd, rn) & !(u32::from(!q) << 30)
}

/// More one-operand integer operations of the two-register-misc group (`U:opcode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u32)]
pub enum VMisc2 {
    /// Population count of each byte (`.16b` only).
    Cnt = 0b0_00101,
    /// Signed add long pairwise (`size` the source lane size).
    Saddlp = 0b0_00010,
    /// Unsigned add long pairwise.
    Uaddlp = 0b1_00010,
    /// `rd = (rn == 0)` lane-wise (`CMEQ #0`).
    CmeqZero = 0b0_01001,
    /// `rd = (rn < 0)` lane-wise (`CMLT #0`).
    CmltZero = 0b0_01010,
}

/// `CNT/SADDLP/UADDLP/CMEQ #0/CMLT #0 Vd.T, Vn.T` (128-bit; `size` the source lane size
/// for the pairwise adds, which give lanes twice as wide).
pub fn vmisc2(op: VMisc2, size: VSize, rd: u8, rn: u8) -> u32 {
    two_misc(op as u32, size as u32, rd, rn)
}

/// Narrowing operations of the two-register-misc group (`U:opcode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u32)]
pub enum VNarrow {
    /// Signed saturating extract narrow.
    Sqxtn = 0b0_10100,
    /// Unsigned saturating extract narrow.
    Uqxtn = 0b1_10100,
    /// Signed to unsigned saturating extract narrow.
    Sqxtun = 0b1_10010,
}

/// `SQXTN/UQXTN/SQXTUN Vd.Tn, Vn.Tw` into the low half of `rd` (the high half zeroed), or
/// with `high` the `...2` form into the high half (the low half kept); `dst` the narrow lane
/// size (`B16`: bytes from `.8h`, `H8` from `.4s`, `S4` from `.2d`).
pub fn vnarrow(op: VNarrow, high: bool, dst: VSize, rd: u8, rn: u8) -> u32 {
    two_misc_q(high, op as u32, dst as u32, rd, rn)
}

/// Float conversions and roundings of the two-register-misc group: `U`, the high `size`
/// bit, then `opcode` (the low `size` bit selects `.4s`/`.2d`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u32)]
pub enum VFCvt {
    /// Round to nearest, ties to even.
    Frintn = 0b00_11000,
    /// Round toward minus infinity.
    Frintm = 0b00_11001,
    /// Round toward plus infinity.
    Frintp = 0b01_11000,
    /// Round toward zero.
    Frintz = 0b01_11001,
    /// Signed int to float (same width).
    Scvtf = 0b00_11101,
    /// Unsigned int to float.
    Ucvtf = 0b10_11101,
    /// Float to signed int toward zero, saturating, NaN to 0.
    Fcvtzs = 0b01_11011,
    /// Float to unsigned int toward zero, saturating, NaN to 0.
    Fcvtzu = 0b11_11011,
}

/// `FRINTN/FRINTM/FRINTP/FRINTZ/SCVTF/UCVTF/FCVTZS/FCVTZU Vd.T, Vn.T` with `T` `.4s`, or
/// `.2d` when `dbl`.
pub fn vfcvt(op: VFCvt, dbl: bool, rd: u8, rn: u8) -> u32 {
    let (u, a, opcode) = ((op as u32) >> 6, (op as u32) >> 5 & 1, (op as u32) & 0x1f);
    two_misc(u << 5 | opcode, a << 1 | u32::from(dbl), rd, rn)
}

/// `FCVTN Vd.2S, Vn.2D` (high half of `rd` zeroed).
pub fn fcvtn_2s(rd: u8, rn: u8) -> u32 {
    two_misc_q(false, 0b0_10110, 0b01, rd, rn)
}

/// `FCVTL Vd.2D, Vn.2S`.
pub fn fcvtl_2d(rd: u8, rn: u8) -> u32 {
    two_misc_q(false, 0b0_10111, 0b01, rd, rn)
}

/// `SSHLL/USHLL Vd.T, Vn.Th, #shift` of the low half (`high`: `SSHLL2/USHLL2` of the high
/// half), `src` the source lane size (not `D2`), `shift < ` its bits.
pub fn vshll(signed: bool, high: bool, src: VSize, rd: u8, rn: u8, shift: u32) -> u32 {
    let esize = 8u32 << (src as u32);
    shift_imm(high, !signed, 0b10100, esize + shift, rd, rn)
}

/// A shift-by-immediate instruction: `immh:immb` is the 7-bit field.
fn shift_imm(q: bool, u: bool, opcode: u32, immhb: u32, rd: u8, rn: u8) -> u32 {
    0x0F00_0400
        | u32::from(q) << 30
        | u32::from(u) << 29
        | (immhb & 0x7f) << 16
        | opcode << 11
        | r(rn) << 5
        | r(rd)
}

/// `SHL Vd.T, Vn.T, #shift` (`0 <= shift < ` lane bits).
pub fn vshl_imm(size: VSize, rd: u8, rn: u8, shift: u32) -> u32 {
    let esize = 8u32 << (size as u32);
    shift_imm(true, false, 0b01010, esize + shift, rd, rn)
}

/// `SSHR/USHR Vd.T, Vn.T, #shift` (`1 <= shift <= ` lane bits).
pub fn vshr_imm(signed: bool, size: VSize, rd: u8, rn: u8, shift: u32) -> u32 {
    let esize = 8u32 << (size as u32);
    shift_imm(true, !signed, 0b00000, 2 * esize - shift, rd, rn)
}

/// Across-lanes reductions (`U:opcode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u32)]
pub enum VAcross {
    /// Sum of the lanes (wrapping to the lane width).
    Addv = 0b0_11011,
    /// Unsigned maximum.
    Umaxv = 0b1_01010,
    /// Unsigned minimum.
    Uminv = 0b1_11010,
}

/// `ADDV/UMAXV/UMINV <V>d, Vn.T` (128-bit `T`, not `.2d`): the scalar result in the low
/// lane of `rd`, the rest of `rd` zeroed.
pub fn vacross(op: VAcross, size: VSize, rd: u8, rn: u8) -> u32 {
    let (u, opcode) = ((op as u32) >> 5, (op as u32) & 0x1f);
    0x4E30_0800 | u << 29 | (size as u32) << 22 | opcode << 12 | r(rn) << 5 | r(rd)
}

/// `imm5` of the copy group for lane `lane` of lane size `size`.
fn imm5(size: VSize, lane: u8) -> u32 {
    let s = size as u32;
    (u32::from(lane) << (s + 1) | 1 << s) & 0x1f
}

/// `DUP Vd.T, Wn` (`Xn` for `.2d`): every lane from a general register.
pub fn dup_gp(size: VSize, rd: u8, rn: u8) -> u32 {
    0x4E00_0C00 | imm5(size, 0) << 16 | r(rn) << 5 | r(rd)
}

/// `DUP Vd.T, Vn.T[lane]`: every lane from one lane.
pub fn dup_elem(size: VSize, rd: u8, rn: u8, lane: u8) -> u32 {
    0x4E00_0400 | imm5(size, lane) << 16 | r(rn) << 5 | r(rd)
}

/// `DUP <V>d, Vn.T[lane]` (scalar, `mov sd, vn.s[lane]`): the lane into the low lane of
/// `rd`, the rest zeroed.
pub fn dup_scalar(size: VSize, rd: u8, rn: u8, lane: u8) -> u32 {
    0x5E00_0400 | imm5(size, lane) << 16 | r(rn) << 5 | r(rd)
}

/// `UMOV Wd, Vn.T[lane]` (`Xd` for `.2d`; zero-extends), or with `signed`
/// `SMOV Wd, Vn.T[lane]` (`B16`/`H8` only; sign-extends to 32 bits, upper 32 zeroed).
pub fn mov_to_gp(signed: bool, size: VSize, rd: u8, rn: u8, lane: u8) -> u32 {
    let q = u32::from(size == VSize::D2);
    let imm4 = if signed { 0b0101 } else { 0b0111 };
    0x0E00_0400 | q << 30 | imm5(size, lane) << 16 | imm4 << 11 | r(rn) << 5 | r(rd)
}

/// `INS Vd.T[lane], Wn` (`Xn` for `.2d`); the other lanes are kept.
pub fn ins_gp(size: VSize, rd: u8, lane: u8, rn: u8) -> u32 {
    0x4E00_1C00 | imm5(size, lane) << 16 | r(rn) << 5 | r(rd)
}

/// `INS Vd.T[lane], Vn.T[src_lane]`; the other lanes are kept.
pub fn ins_elem(size: VSize, rd: u8, lane: u8, rn: u8, src_lane: u8) -> u32 {
    let imm4 = (u32::from(src_lane) << (size as u32)) & 0xf;
    0x6E00_0400 | imm5(size, lane) << 16 | imm4 << 11 | r(rn) << 5 | r(rd)
}

/// `TBL Vd.16B, {Vn.16B .. Vn+regs-1.16B}, Vm.16B` (`regs` 1 to 4; the table registers
/// are consecutive modulo 32; an index beyond the table gives 0).
pub fn tbl(rd: u8, rn: u8, regs: u32, rm: u8) -> u32 {
    0x4E00_0000 | r(rm) << 16 | ((regs - 1) & 3) << 13 | r(rn) << 5 | r(rd)
}

/// `LD1R {Vt.T}, [Xn]`: one lane of `size` loaded into every lane.
pub fn ld1r(size: VSize, vt: u8, xn: u8) -> u32 {
    0x4D40_C000 | (size as u32) << 10 | r(xn) << 5 | r(vt)
}
