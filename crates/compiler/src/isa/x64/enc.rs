//! Short x86-64 encodings for the instructions the macro assembler emits with registers and
//! displacements known only at compile time.
//!
//! dynasm encodes dynamic operands (`Rd(r)`, `[Rq(b) + disp]`, run-time immediates) in their
//! longest form: always a REX prefix, always a SIB byte, always disp32/imm32. The functions
//! here write the minimal form instead:
//!
//! * a REX prefix only when an extended register (8-15), a 64-bit operand size (REX.W) or an
//!   8-bit access to `spl`/`bpl`/`sil`/`dil` needs one; mandatory prefixes (`66`/`F2`/`F3`)
//!   come before it;
//! * a SIB byte only for an index register or a base of `rsp`/`r12`;
//! * no displacement for 0 (except with a base of `rbp`/`r13`, which must have one), disp8
//!   when it fits in an `i8`, disp32 otherwise;
//! * the sign-extended imm8 forms (`83 /n`, `6B`, `C1`/`D1` shifts) when the immediate fits,
//!   and the short `rax` forms of the ALU group when it does not.
//!
//! The AVX forms of the SSE instructions ([`vex`]) take the shortest VEX prefix: the
//! two-byte `C5` form when it can encode the instruction, else `C4`.
//!
//! Every function appends one instruction to a [`Sink`] (the [`CodeBuffer`], or a
//! `Vec<u8>` in tests). Registers are hardware numbers 0-15 (`rax`..`r15`, `xmm0`..`xmm15`).
//! Jumps and anything that needs a label stay with dynasm.

use crate::isa::buffer::{CodeBuffer, InstWriter};
use dynasmrt::relocations::Relocation;

/// A memory operand `[base + index + disp]` (index scale 1), kept encoded: the constructors
/// choose the addressing form (SIB byte, displacement size) once, so that an encoder only
/// ORs its register into the ModRM byte and stores the whole operand at once. With a
/// constant base (the frame and stack pointers, the context register) the choice mostly
/// folds away where the operand is built.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Mem {
    /// ModRM (mod and r/m; reg 0), the SIB byte if there is one, then the displacement: all
    /// 32 bits of it (so that no two operands compare equal by accident), of which only the
    /// first 0, 1 or 4 bytes are part of the encoding. Little-endian.
    tail: u64,
    /// Bytes of `tail` that are encoded (1-6).
    len: u8,
    /// REX.X and REX.B (`x << 1 | b`).
    rex: u8,
}

impl Mem {
    /// `[base + disp]`.
    #[inline(always)]
    pub const fn base(base: u8, disp: i32) -> Mem {
        Mem::new(base, None, disp)
    }

    /// `[base + index + disp]` (`index` is never `rsp`, which cannot be an index).
    #[inline(always)]
    pub const fn indexed(base: u8, index: u8, disp: i32) -> Mem {
        Mem::new(base, Some(index), disp)
    }

    #[inline(always)]
    const fn new(base: u8, index: Option<u8>, disp: i32) -> Mem {
        let b = base & 7;
        // rbp/r13 as a base with mod 00 would mean rip-relative / no base.
        let (md, disp_len) = if disp == 0 && b != 5 {
            (0x00, 0)
        } else if disp == disp as i8 as i32 {
            (0x40, 1)
        } else {
            (0x80, 4)
        };
        let disp = disp as u32 as u64;
        // Without an index the r/m field is the base, and rsp/r12 (100, the SIB escape) need
        // a SIB byte with "no index" (0x24); with one, r/m is 100 and the SIB holds both.
        let (rm, after_modrm, sib_len, x) = match index {
            None if b == 4 => (4, disp << 8 | 0x24, 1, 0),
            None => (b, disp, 0, 0),
            Some(index) => {
                debug_assert!(index != 4, "rsp cannot be an index register");
                (
                    4,
                    disp << 8 | ((index & 7) << 3 | b) as u64,
                    1,
                    (index >> 3) & 1,
                )
            }
        };
        Mem {
            tail: (md | rm) as u64 | after_modrm << 8,
            len: 1 + sib_len + disp_len,
            rex: x << 1 | (base >> 3) & 1,
        }
    }

    /// Whether the operand has a SIB byte.
    fn has_sib(self) -> bool {
        self.tail as u8 & 7 == 4
    }

    /// The base register.
    pub fn base_reg(self) -> u8 {
        let low = if self.has_sib() {
            (self.tail >> 8) as u8
        } else {
            self.tail as u8
        };
        low & 7 | (self.rex & 1) << 3
    }

    /// The index register, if any.
    pub fn index_reg(self) -> Option<u8> {
        let index = ((self.tail >> 11) as u8 & 7) | (self.rex & 2) << 2;
        // Index field 100 without REX.X is "no index" (rsp cannot be one).
        (self.has_sib() && index != 4).then_some(index)
    }

    /// The displacement.
    pub fn disp(self) -> i32 {
        (self.tail >> (8 + 8 * self.has_sib() as u32)) as u32 as i32
    }

    /// The ModRM byte (with `reg` in the reg field), SIB byte and displacement, and their
    /// length (`& 7`: the compiler then knows it fits one 8-byte store).
    #[inline(always)]
    fn encoded(self, reg: u8) -> (u64, usize) {
        (
            self.tail | u64::from((reg & 7) << 3),
            (self.len & 7) as usize,
        )
    }
}

impl std::fmt::Debug for Mem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mem")
            .field("base", &self.base_reg())
            .field("index", &self.index_reg())
            .field("disp", &self.disp())
            .finish()
    }
}

/// The ModRM r/m operand: a register or memory.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Rm {
    /// A register (mod = 11).
    Reg(u8),
    /// A memory operand.
    Mem(Mem),
}

impl From<Mem> for Rm {
    fn from(m: Mem) -> Rm {
        Rm::Mem(m)
    }
}

/// Width of an integer memory access.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Width {
    /// 8 bits.
    B,
    /// 16 bits.
    W,
    /// 32 bits.
    D,
    /// 64 bits.
    Q,
}

/// The two-operand ALU group; the value is the `/n` digit and the opcode row.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Alu {
    /// `add`.
    Add = 0,
    /// `or`.
    Or = 1,
    /// `and`.
    And = 4,
    /// `sub`.
    Sub = 5,
    /// `xor`.
    Xor = 6,
    /// `cmp`.
    Cmp = 7,
}

/// The shift/rotate group; the value is the `/n` digit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Shift {
    /// `rol`.
    Rol = 0,
    /// `ror`.
    Ror = 1,
    /// `shl`.
    Shl = 4,
    /// `shr`.
    Shr = 5,
    /// `sar`.
    Sar = 7,
}

/// Condition codes, numbered as in the `jcc`/`setcc`/`cmovcc` opcodes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cc {
    /// Below (CF).
    B = 2,
    /// Above or equal (!CF).
    Ae = 3,
    /// Equal (ZF).
    E = 4,
    /// Not equal (!ZF).
    Ne = 5,
    /// Below or equal.
    Be = 6,
    /// Above.
    A = 7,
    /// Parity (PF).
    P = 0xA,
    /// No parity.
    Np = 0xB,
    /// Less (signed).
    L = 0xC,
    /// Greater or equal (signed).
    Ge = 0xD,
    /// Less or equal (signed).
    Le = 0xE,
    /// Greater (signed).
    G = 0xF,
}

/// Zero and sign extensions (`movzx`/`movsx`/`movsxd`) from a register or memory.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ext {
    /// `movzx r32, r/m8`.
    Zx8,
    /// `movzx r32, r/m16`.
    Zx16,
    /// `movsx r32, r/m8`.
    Sx8To32,
    /// `movsx r32, r/m16`.
    Sx16To32,
    /// `movsx r64, r/m8`.
    Sx8To64,
    /// `movsx r64, r/m16`.
    Sx16To64,
    /// `movsxd r64, r/m32`.
    Sx32To64,
}

/// An immediate operand: the low `len` bytes of `v` (0, 1, 2 or 4).
#[derive(Clone, Copy)]
struct Imm {
    v: u32,
    len: usize,
}

impl Imm {
    const NONE: Imm = Imm { v: 0, len: 0 };

    #[inline(always)]
    fn i8(v: i8) -> Imm {
        Imm {
            v: v as u8 as u32,
            len: 1,
        }
    }

    #[inline(always)]
    fn i32(v: i32) -> Imm {
        Imm {
            v: v as u32,
            len: 4,
        }
    }

    /// Appends the immediate (nothing for none: the test folds away with a known length).
    #[inline(always)]
    fn write(self, i: &mut InstWriter<'_>) {
        if self.len != 0 {
            i.u32(self.v, self.len);
        }
    }
}

/// Whether `v` fits in a sign-extended 8-bit immediate or displacement.
pub fn fits_i8(v: i64) -> bool {
    v == v as i8 as i64
}

/// Where the encoders append their instructions: anything that can hand out an
/// [`InstWriter`] for one instruction (the [`CodeBuffer`], or a `Vec<u8>` in tests).
pub trait Sink {
    /// A writer appending one instruction, or `None` when there is no room for one (then
    /// [`Sink::grow`]).
    fn try_inst(&mut self) -> Option<InstWriter<'_>>;

    /// Makes room for one instruction.
    fn grow(&mut self);

    /// Whether [`Sink::try_inst`] would succeed.
    fn has_room(&self) -> bool;
}

impl Sink for Vec<u8> {
    #[inline(always)]
    fn try_inst(&mut self) -> Option<InstWriter<'_>> {
        InstWriter::try_new(self)
    }

    fn grow(&mut self) {
        InstWriter::reserve(self);
    }

    #[inline(always)]
    fn has_room(&self) -> bool {
        InstWriter::has_room(self)
    }
}

impl<R: Relocation> Sink for CodeBuffer<R> {
    #[inline(always)]
    fn try_inst(&mut self) -> Option<InstWriter<'_>> {
        CodeBuffer::try_inst(self)
    }

    fn grow(&mut self) {
        CodeBuffer::reserve_inst(self);
    }

    #[inline(always)]
    fn has_room(&self) -> bool {
        CodeBuffer::has_inst_room(self)
    }
}

/// Whether register `r` used as an 8-bit operand needs a REX prefix (`spl`, `bpl`, `sil`,
/// `dil`; without REX those encodings mean `ah`, `ch`, `dh`, `bh`).
fn byte_rex(r: u8) -> bool {
    (4..8).contains(&r)
}

/// Writes one instruction with `f` into `s`. The encoders check for room first
/// ([`need_room`]), so the test here folds away; without that check, the cold path grows
/// the sink and runs `f` there.
#[inline(always)]
fn emit<S: Sink>(s: &mut S, f: impl FnOnce(&mut InstWriter<'_>)) {
    match s.try_inst() {
        Some(mut i) => {
            f(&mut i);
            i.finish();
        }
        None => emit_after_growing(s, f),
    }
}

/// Starts an encoder that emits one instruction: when the sink has no room for it, the
/// encoder grows the sink and runs again, on a cold path that takes only its arguments (so
/// the hot path neither builds [`emit`]'s closure in memory nor keeps values in saved
/// registers across a call). [`emit`] then finds the room and its own check folds away.
macro_rules! need_room {
    ($s:ident, $f:ident($($a:ident),*)) => {
        if !$s.has_room() {
            return grow_and_retry($s, |s, ($($a,)*)| $f(s, $($a),*), ($($a,)*));
        }
    };
}

/// The rare path of [`need_room`].
#[cold]
#[inline(never)]
fn grow_and_retry<S: Sink, A>(s: &mut S, f: impl FnOnce(&mut S, A), args: A) {
    s.grow();
    f(s, args)
}

/// The rare path of [`emit`].
#[cold]
#[inline(never)]
fn emit_after_growing<S: Sink>(s: &mut S, f: impl FnOnce(&mut InstWriter<'_>)) {
    s.grow();
    let mut i = s.try_inst().expect("room for an instruction after growing");
    f(&mut i);
    i.finish();
}

/// The bytes before ModRM: mandatory prefix (0 for none), REX.W, opcode bytes (1-3, as a
/// little-endian integer), and whether a REX prefix is needed even without a bit set (8-bit
/// registers 4-7).
#[derive(Clone, Copy)]
struct Head {
    prefix: u8,
    w: bool,
    force_rex: bool,
    op: u32,
    op_len: usize,
}

impl Head {
    #[inline(always)]
    fn new(prefix: u8, w: bool, force_rex: bool, opcode: &[u8]) -> Head {
        debug_assert!((1..=3).contains(&opcode.len()));
        let mut op = 0;
        for (k, &b) in opcode.iter().enumerate().take(3) {
            op |= u32::from(b) << (8 * k);
        }
        Head {
            prefix,
            w,
            force_rex,
            op,
            op_len: opcode.len(),
        }
    }

    /// Writes `[prefix] [REX] opcode`; `reg` gives REX.R (its bit 3), `xb` REX.X and REX.B
    /// (`x << 1 | b`).
    #[inline(always)]
    fn write(self, i: &mut InstWriter<'_>, reg: u8, xb: u8) {
        i.byte_if(self.prefix, self.prefix != 0);
        let rex = (self.w as u8) << 3 | ((reg >> 3) & 1) << 2 | xb;
        i.byte_if(0x40 | rex, rex != 0 || self.force_rex);
        i.u32(self.op, self.op_len);
    }
}

/// The general form `[prefix] [REX] opcode ModRM [SIB] [disp] [imm]`. `reg` is the ModRM reg
/// field (a register or an opcode extension digit); `force_rex` asks for a REX prefix even
/// when no bit of it is set (8-bit registers 4-7).
#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn encode(
    s: &mut impl Sink,
    prefix: u8,
    w: bool,
    force_rex: bool,
    opcode: &[u8],
    reg: u8,
    rm: Rm,
    imm: Imm,
) {
    let h = Head::new(prefix, w, force_rex, opcode);
    match rm {
        Rm::Reg(r) => encode_rr(s, h, reg, r, imm),
        Rm::Mem(m) => encode_mem(s, h, reg, m, imm),
    }
}

/// [`encode`] with a register r/m operand.
#[inline(always)]
fn encode_rr(s: &mut impl Sink, h: Head, reg: u8, r: u8, imm: Imm) {
    emit(s, move |i| {
        h.write(i, reg, (r >> 3) & 1);
        i.byte(0xC0 | (reg & 7) << 3 | (r & 7));
        imm.write(i);
    });
}

/// [`encode`] with a memory operand (taken as a [`Mem`], not an [`Rm`], so that no operand
/// kind is tested at run time).
#[inline(always)]
fn encode_mem(s: &mut impl Sink, h: Head, reg: u8, m: Mem, imm: Imm) {
    emit(s, move |i| {
        h.write(i, reg, m.rex);
        let (tail, len) = m.encoded(reg);
        i.u64(tail, len);
        imm.write(i);
    });
}

/// The ModRM byte, SIB byte, displacement and immediate after the opcode.
#[inline(always)]
fn modrm_tail(i: &mut InstWriter<'_>, reg: u8, rm: Rm, imm: Imm) {
    match rm {
        Rm::Reg(r) => i.byte(0xC0 | (reg & 7) << 3 | (r & 7)),
        Rm::Mem(m) => {
            let (tail, len) = m.encoded(reg);
            i.u64(tail, len);
        }
    }
    imm.write(i);
}

/// `mov dst, src` (32-bit zero-extending, or 64-bit).
pub fn mov_rr(s: &mut impl Sink, w64: bool, dst: u8, src: u8) {
    need_room!(s, mov_rr(w64, dst, src));
    encode(s, 0, w64, false, &[0x8B], dst, Rm::Reg(src), Imm::NONE);
}

/// `mov dst, [m]` (32 or 64 bits).
pub fn mov_load(s: &mut impl Sink, w64: bool, dst: u8, m: Mem) {
    need_room!(s, mov_load(w64, dst, m));
    encode_mem(s, Head::new(0, w64, false, &[0x8B]), dst, m, Imm::NONE);
}

/// `mov [m], src` of the given width.
pub fn mov_store(s: &mut impl Sink, width: Width, m: Mem, src: u8) {
    need_room!(s, mov_store(width, m, src));
    // One encoder body for all widths: `66` for 16 bits, REX.W for 64, `88` (and REX for
    // `spl`..`dil`) for 8, else `89`.
    let byte = width == Width::B;
    let h = Head {
        prefix: if width == Width::W { 0x66 } else { 0 },
        w: width == Width::Q,
        force_rex: byte && byte_rex(src),
        op: if byte { 0x88 } else { 0x89 },
        op_len: 1,
    };
    encode_mem(s, h, src, m, Imm::NONE);
}

/// `mov [m], imm` of the given width (the immediate is truncated to 8 or 16 bits, and
/// sign-extended for 64 bits).
pub fn mov_store_imm(s: &mut impl Sink, width: Width, m: Mem, imm: i32) {
    need_room!(s, mov_store_imm(width, m, imm));
    let (op, imm_len) = match width {
        Width::B => (0xC6, 1),
        Width::W => (0xC7, 2),
        Width::D | Width::Q => (0xC7, 4),
    };
    let h = Head {
        prefix: if width == Width::W { 0x66 } else { 0 },
        w: width == Width::Q,
        force_rex: false,
        op,
        op_len: 1,
    };
    let imm = Imm {
        v: imm as u32,
        len: imm_len,
    };
    encode_mem(s, h, 0, m, imm);
}

/// `mov dst, imm`: the shortest of `mov r32, imm32` (also for 64-bit values that are
/// zero-extended 32-bit ones), `mov r64, simm32` and `mov r64, imm64`. A 32-bit move takes
/// the low 32 bits of `imm`.
pub fn mov_imm(s: &mut impl Sink, w64: bool, dst: u8, imm: i64) {
    need_room!(s, mov_imm(w64, dst, imm));
    if !w64 || imm as u64 <= u32::MAX as u64 {
        emit(s, |i| {
            i.byte_if(0x41, dst >= 8);
            i.byte(0xB8 | (dst & 7));
            i.u32(imm as u32, 4);
        });
    } else if imm == imm as i32 as i64 {
        encode(
            s,
            0,
            true,
            false,
            &[0xC7],
            0,
            Rm::Reg(dst),
            Imm::i32(imm as i32),
        );
    } else {
        emit(s, |i| {
            i.byte(0x48 | (dst >> 3));
            i.byte(0xB8 | (dst & 7));
            i.u64(imm as u64, 8);
        });
    }
}

/// `op dst, src` of the ALU group (`cmp` included).
pub fn alu_rr(s: &mut impl Sink, op: Alu, w64: bool, dst: u8, src: u8) {
    need_room!(s, alu_rr(op, w64, dst, src));
    encode(
        s,
        0,
        w64,
        false,
        &[(op as u8) << 3 | 1],
        src,
        Rm::Reg(dst),
        Imm::NONE,
    );
}

/// `op dst, [m]` of the ALU group (`cmp` included).
pub fn alu_load(s: &mut impl Sink, op: Alu, w64: bool, dst: u8, m: Mem) {
    need_room!(s, alu_load(op, w64, dst, m));
    encode(
        s,
        0,
        w64,
        false,
        &[(op as u8) << 3 | 3],
        dst,
        m.into(),
        Imm::NONE,
    );
}

/// `op dst, imm` of the ALU group: imm8 when it fits, else the short `eax`/`rax` form or
/// imm32 (sign-extended for 64 bits).
pub fn alu_ri(s: &mut impl Sink, op: Alu, w64: bool, dst: u8, imm: i32) {
    need_room!(s, alu_ri(op, w64, dst, imm));
    if fits_i8(imm as i64) {
        encode(
            s,
            0,
            w64,
            false,
            &[0x83],
            op as u8,
            Rm::Reg(dst),
            Imm::i8(imm as i8),
        );
    } else if dst == 0 {
        emit(s, |i| {
            i.byte_if(0x48, w64);
            i.byte((op as u8) << 3 | 5);
            i.u32(imm as u32, 4);
        });
    } else {
        encode(
            s,
            0,
            w64,
            false,
            &[0x81],
            op as u8,
            Rm::Reg(dst),
            Imm::i32(imm),
        );
    }
}

/// `test a, b`.
pub fn test_rr(s: &mut impl Sink, w64: bool, a: u8, b: u8) {
    need_room!(s, test_rr(w64, a, b));
    encode(s, 0, w64, false, &[0x85], b, Rm::Reg(a), Imm::NONE);
}

/// `imul dst, src`.
pub fn imul_rr(s: &mut impl Sink, w64: bool, dst: u8, src: u8) {
    need_room!(s, imul_rr(w64, dst, src));
    encode(
        s,
        0,
        w64,
        false,
        &[0x0F, 0xAF],
        dst,
        Rm::Reg(src),
        Imm::NONE,
    );
}

/// `imul dst, src, imm` (imm8 when it fits).
pub fn imul_rri(s: &mut impl Sink, w64: bool, dst: u8, src: u8, imm: i32) {
    need_room!(s, imul_rri(w64, dst, src, imm));
    if fits_i8(imm as i64) {
        encode(
            s,
            0,
            w64,
            false,
            &[0x6B],
            dst,
            Rm::Reg(src),
            Imm::i8(imm as i8),
        );
    } else {
        encode(s, 0, w64, false, &[0x69], dst, Rm::Reg(src), Imm::i32(imm));
    }
}

/// `lea dst, [m]` (64-bit).
pub fn lea(s: &mut impl Sink, dst: u8, m: Mem) {
    need_room!(s, lea(dst, m));
    encode(s, 0, true, false, &[0x8D], dst, m.into(), Imm::NONE);
}

/// `op dst, n` of the shift group (`D1` for a count of 1, else `C1 ib`). The count is
/// used as given (the processor masks it).
pub fn shift_imm(s: &mut impl Sink, op: Shift, w64: bool, dst: u8, n: u8) {
    need_room!(s, shift_imm(op, w64, dst, n));
    if n == 1 {
        encode(s, 0, w64, false, &[0xD1], op as u8, Rm::Reg(dst), Imm::NONE);
    } else {
        encode(
            s,
            0,
            w64,
            false,
            &[0xC1],
            op as u8,
            Rm::Reg(dst),
            Imm::i8(n as i8),
        );
    }
}

/// `op dst, cl` of the shift group.
pub fn shift_cl(s: &mut impl Sink, op: Shift, w64: bool, dst: u8) {
    need_room!(s, shift_cl(op, w64, dst));
    encode(s, 0, w64, false, &[0xD3], op as u8, Rm::Reg(dst), Imm::NONE);
}

/// `setcc dst8`.
pub fn setcc(s: &mut impl Sink, cc: Cc, dst: u8) {
    need_room!(s, setcc(cc, dst));
    encode(
        s,
        0,
        false,
        byte_rex(dst),
        &[0x0F, 0x90 | cc as u8],
        0,
        Rm::Reg(dst),
        Imm::NONE,
    );
}

/// `cmovcc dst, src`.
pub fn cmovcc(s: &mut impl Sink, cc: Cc, w64: bool, dst: u8, src: u8) {
    need_room!(s, cmovcc(cc, w64, dst, src));
    encode(
        s,
        0,
        w64,
        false,
        &[0x0F, 0x40 | cc as u8],
        dst,
        Rm::Reg(src),
        Imm::NONE,
    );
}

/// `movzx`/`movsx`/`movsxd dst, src` from a register or memory.
pub fn extend(s: &mut impl Sink, ext: Ext, dst: u8, src: Rm) {
    need_room!(s, extend(ext, dst, src));
    let (w, op): (bool, &[u8]) = match ext {
        Ext::Zx8 => (false, &[0x0F, 0xB6]),
        Ext::Zx16 => (false, &[0x0F, 0xB7]),
        Ext::Sx8To32 => (false, &[0x0F, 0xBE]),
        Ext::Sx16To32 => (false, &[0x0F, 0xBF]),
        Ext::Sx8To64 => (true, &[0x0F, 0xBE]),
        Ext::Sx16To64 => (true, &[0x0F, 0xBF]),
        Ext::Sx32To64 => (true, &[0x63]),
    };
    let byte_src = matches!(ext, Ext::Zx8 | Ext::Sx8To32 | Ext::Sx8To64);
    let force = byte_src && matches!(src, Rm::Reg(r) if byte_rex(r));
    encode(s, 0, w, force, op, dst, src, Imm::NONE);
}

/// `div src` (unsigned) or `idiv src` (signed): `rdx:rax / src`.
pub fn div(s: &mut impl Sink, signed: bool, w64: bool, src: u8) {
    need_room!(s, div(signed, w64, src));
    let digit = if signed { 7 } else { 6 };
    encode(s, 0, w64, false, &[0xF7], digit, Rm::Reg(src), Imm::NONE);
}

/// Bit scans and population count.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BitOp {
    /// `bsf`.
    Bsf,
    /// `bsr`.
    Bsr,
    /// `popcnt`.
    Popcnt,
}

/// `bsf`/`bsr`/`popcnt dst, src`.
pub fn bit_op(s: &mut impl Sink, op: BitOp, w64: bool, dst: u8, src: u8) {
    need_room!(s, bit_op(op, w64, dst, src));
    let (prefix, opcode) = match op {
        BitOp::Bsf => (0, 0xBC),
        BitOp::Bsr => (0, 0xBD),
        BitOp::Popcnt => (0xF3, 0xB8),
    };
    encode(
        s,
        prefix,
        w64,
        false,
        &[0x0F, opcode],
        dst,
        Rm::Reg(src),
        Imm::NONE,
    );
}

/// `btc dst, bit` (64-bit).
pub fn btc_imm(s: &mut impl Sink, dst: u8, bit: u8) {
    need_room!(s, btc_imm(dst, bit));
    encode(
        s,
        0,
        true,
        false,
        &[0x0F, 0xBA],
        7,
        Rm::Reg(dst),
        Imm::i8(bit as i8),
    );
}

/// `call qword [m]`.
pub fn call_mem(s: &mut impl Sink, m: Mem) {
    need_room!(s, call_mem(m));
    encode(s, 0, false, false, &[0xFF], 2, m.into(), Imm::NONE);
}

/// `jmp qword [m]`.
pub fn jmp_mem(s: &mut impl Sink, m: Mem) {
    need_room!(s, jmp_mem(m));
    encode(s, 0, false, false, &[0xFF], 4, m.into(), Imm::NONE);
}

/// `movss`/`movsd [m], src` (`op` is [`Packed::MOVSS`] or [`Packed::MOVSD`]).
pub fn sse_store(s: &mut impl Sink, op: Packed, m: Mem, src: u8) {
    need_room!(s, sse_store(op, m, src));
    debug_assert!(op == Packed::MOVSS || op == Packed::MOVSD);
    encode(
        s,
        op.prefix,
        false,
        false,
        &[0x0F, 0x11],
        src,
        m.into(),
        Imm::NONE,
    );
}

/// `movd xmm, r32` / `movq xmm, r64`.
pub fn movd_to_xmm(s: &mut impl Sink, w64: bool, xmm: u8, gpr: u8) {
    need_room!(s, movd_to_xmm(w64, xmm, gpr));
    encode(
        s,
        0x66,
        w64,
        false,
        &[0x0F, 0x6E],
        xmm,
        Rm::Reg(gpr),
        Imm::NONE,
    );
}

/// `movd r32, xmm` / `movq r64, xmm`.
pub fn movd_from_xmm(s: &mut impl Sink, w64: bool, gpr: u8, xmm: u8) {
    need_room!(s, movd_from_xmm(w64, gpr, xmm));
    encode(
        s,
        0x66,
        w64,
        false,
        &[0x0F, 0x7E],
        xmm,
        Rm::Reg(gpr),
        Imm::NONE,
    );
}

/// `cvtsi2ss`/`cvtsi2sd xmm, r32/r64`.
pub fn cvt_int_to_float(s: &mut impl Sink, f64_: bool, w64: bool, xmm: u8, gpr: u8) {
    need_room!(s, cvt_int_to_float(f64_, w64, xmm, gpr));
    let prefix = if f64_ { 0xF2 } else { 0xF3 };
    encode(
        s,
        prefix,
        w64,
        false,
        &[0x0F, 0x2A],
        xmm,
        Rm::Reg(gpr),
        Imm::NONE,
    );
}

/// `cvttss2si`/`cvttsd2si r32/r64, xmm`.
pub fn cvt_float_to_int(s: &mut impl Sink, f64_: bool, w64: bool, gpr: u8, xmm: u8) {
    need_room!(s, cvt_float_to_int(f64_, w64, gpr, xmm));
    let prefix = if f64_ { 0xF2 } else { 0xF3 };
    encode(
        s,
        prefix,
        w64,
        false,
        &[0x0F, 0x2C],
        gpr,
        Rm::Reg(xmm),
        Imm::NONE,
    );
}

/// `roundss`/`roundsd dst, src, mode`.
pub fn round(s: &mut impl Sink, f64_: bool, dst: u8, src: u8, mode: u8) {
    need_room!(s, round(f64_, dst, src, mode));
    let op = if f64_ { 0x0B } else { 0x0A };
    encode(
        s,
        0x66,
        false,
        false,
        &[0x0F, 0x3A, op],
        dst,
        Rm::Reg(src),
        Imm::i8(mode as i8),
    );
}

/// `movups [m], src` (128 bits, any alignment).
pub fn movups_store(s: &mut impl Sink, m: Mem, src: u8) {
    need_room!(s, movups_store(m, src));
    encode(s, 0, false, false, &[0x0F, 0x11], src, m.into(), Imm::NONE);
}

/// Packed shift by an immediate: `op` is `0x71` (words), `0x72` (doublewords) or `0x73`
/// (quadwords), `digit` 2 (logical right), 4 (arithmetic right) or 6 (left).
pub fn pshift_imm(s: &mut impl Sink, op: u8, digit: u8, xmm: u8, imm: u8) {
    need_room!(s, pshift_imm(op, digit, xmm, imm));
    encode(
        s,
        0x66,
        false,
        false,
        &[0x0F, op],
        digit,
        Rm::Reg(xmm),
        Imm::i8(imm as i8),
    );
}

/// `cmpps`/`cmppd dst, src, predicate` (0 eq, 1 lt, 2 le, 3 unord, 4 neq, ...).
pub fn cmpp(s: &mut impl Sink, double: bool, dst: u8, src: u8, predicate: u8) {
    need_room!(s, cmpp(double, dst, src, predicate));
    let prefix = if double { 0x66 } else { 0 };
    encode(
        s,
        prefix,
        false,
        false,
        &[0x0F, 0xC2],
        dst,
        Rm::Reg(src),
        Imm::i8(predicate as i8),
    );
}

/// `pinsrq dst, src, lane` (SSE4.1): 64-bit lane `lane` (0 or 1) of xmm `dst` from `src`.
pub fn pinsrq(s: &mut impl Sink, dst: u8, src: u8, lane: u8) {
    need_room!(s, pinsrq(dst, src, lane));
    encode(
        s,
        0x66,
        true,
        false,
        &[0x0F, 0x3A, 0x22],
        dst,
        Rm::Reg(src),
        Imm::i8(lane as i8),
    );
}

/// `pinsrb/pinsrw/pinsrd/pinsrq xmm, [m], lane` by lane width in bytes (1, 2, 4, 8).
pub fn pinsr_mem(s: &mut impl Sink, width: u8, xmm: u8, m: Mem, lane: u8) {
    need_room!(s, pinsr_mem(width, xmm, m, lane));
    let imm = Imm::i8(lane as i8);
    match width {
        1 => encode(
            s,
            0x66,
            false,
            false,
            &[0x0F, 0x3A, 0x20],
            xmm,
            m.into(),
            imm,
        ),
        2 => encode(s, 0x66, false, false, &[0x0F, 0xC4], xmm, m.into(), imm),
        4 => encode(
            s,
            0x66,
            false,
            false,
            &[0x0F, 0x3A, 0x22],
            xmm,
            m.into(),
            imm,
        ),
        _ => encode(
            s,
            0x66,
            true,
            false,
            &[0x0F, 0x3A, 0x22],
            xmm,
            m.into(),
            imm,
        ),
    }
}

/// `pextrb/pextrw/pextrd/pextrq [m], xmm, lane` by lane width in bytes (1, 2, 4, 8).
pub fn pextr_mem(s: &mut impl Sink, width: u8, m: Mem, xmm: u8, lane: u8) {
    need_room!(s, pextr_mem(width, m, xmm, lane));
    let imm = Imm::i8(lane as i8);
    let (w, op) = match width {
        1 => (false, 0x14),
        2 => (false, 0x15),
        4 => (false, 0x16),
        _ => (true, 0x16),
    };
    encode(s, 0x66, w, false, &[0x0F, 0x3A, op], xmm, m.into(), imm);
}

/// An SSE instruction `op reg, r/m [, imm8]` (scalar or packed) given by its mandatory
/// prefix (0 for none), REX.W, and opcode bytes after the prefix (`0F xx`, `0F 38 xx` or
/// `0F 3A xx`).
/// `reg` is the ModRM reg operand: the destination for most, the xmm source for the
/// `pextr*` forms, and the general register for `pmovmskb`/`movmskp*`/`pextrw`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Packed {
    prefix: u8,
    w: bool,
    opcode: [u8; 3],
    len: u8,
}

impl Packed {
    /// `[prefix] 0F op`.
    const fn op(prefix: u8, op: u8) -> Packed {
        Packed {
            prefix,
            w: false,
            opcode: [0x0F, op, 0],
            len: 2,
        }
    }
    /// `66 0F 38 op`.
    const fn op38(op: u8) -> Packed {
        Packed {
            prefix: 0x66,
            w: false,
            opcode: [0x0F, 0x38, op],
            len: 3,
        }
    }
    /// `66 [REX.W] 0F 3A op ib`.
    const fn op3a(w: bool, op: u8) -> Packed {
        Packed {
            prefix: 0x66,
            w,
            opcode: [0x0F, 0x3A, op],
            len: 3,
        }
    }

    /// `movaps`.
    pub const MOVAPS: Packed = Packed::op(0, 0x28);
    /// `xorps`.
    pub const XORPS: Packed = Packed::op(0, 0x57);
    /// `andps`.
    pub const ANDPS: Packed = Packed::op(0, 0x54);
    /// `orps`.
    pub const ORPS: Packed = Packed::op(0, 0x56);
    /// `ucomiss`.
    pub const UCOMISS: Packed = Packed::op(0, 0x2E);
    /// `ucomisd`.
    pub const UCOMISD: Packed = Packed::op(0x66, 0x2E);
    /// `sqrtss`.
    pub const SQRTSS: Packed = Packed::op(0xF3, 0x51);
    /// `sqrtsd`.
    pub const SQRTSD: Packed = Packed::op(0xF2, 0x51);
    /// `addss`.
    pub const ADDSS: Packed = Packed::op(0xF3, 0x58);
    /// `addsd`.
    pub const ADDSD: Packed = Packed::op(0xF2, 0x58);
    /// `mulss`.
    pub const MULSS: Packed = Packed::op(0xF3, 0x59);
    /// `mulsd`.
    pub const MULSD: Packed = Packed::op(0xF2, 0x59);
    /// `subss`.
    pub const SUBSS: Packed = Packed::op(0xF3, 0x5C);
    /// `subsd`.
    pub const SUBSD: Packed = Packed::op(0xF2, 0x5C);
    /// `minss`.
    pub const MINSS: Packed = Packed::op(0xF3, 0x5D);
    /// `minsd`.
    pub const MINSD: Packed = Packed::op(0xF2, 0x5D);
    /// `divss`.
    pub const DIVSS: Packed = Packed::op(0xF3, 0x5E);
    /// `divsd`.
    pub const DIVSD: Packed = Packed::op(0xF2, 0x5E);
    /// `maxss`.
    pub const MAXSS: Packed = Packed::op(0xF3, 0x5F);
    /// `maxsd`.
    pub const MAXSD: Packed = Packed::op(0xF2, 0x5F);
    /// `cvtss2sd`.
    pub const CVTSS2SD: Packed = Packed::op(0xF3, 0x5A);
    /// `cvtsd2ss`.
    pub const CVTSD2SS: Packed = Packed::op(0xF2, 0x5A);
    /// `movups` (load form; 128 bits, any alignment).
    pub const MOVUPS: Packed = Packed::op(0, 0x10);
    /// `pand`.
    pub const PAND: Packed = Packed::op(0x66, 0xDB);
    /// `pandn` (`dst = !dst & src`).
    pub const PANDN: Packed = Packed::op(0x66, 0xDF);
    /// `por`.
    pub const POR: Packed = Packed::op(0x66, 0xEB);
    /// `pxor`.
    pub const PXOR: Packed = Packed::op(0x66, 0xEF);
    /// `pcmpeqd`.
    pub const PCMPEQD: Packed = Packed::op(0x66, 0x76);
    /// `paddb`.
    pub const PADDB: Packed = Packed::op(0x66, 0xFC);
    /// `paddw`.
    pub const PADDW: Packed = Packed::op(0x66, 0xFD);
    /// `paddd`.
    pub const PADDD: Packed = Packed::op(0x66, 0xFE);
    /// `paddq`.
    pub const PADDQ: Packed = Packed::op(0x66, 0xD4);
    /// `psubb`.
    pub const PSUBB: Packed = Packed::op(0x66, 0xF8);
    /// `psubw`.
    pub const PSUBW: Packed = Packed::op(0x66, 0xF9);
    /// `psubd`.
    pub const PSUBD: Packed = Packed::op(0x66, 0xFA);
    /// `psubq`.
    pub const PSUBQ: Packed = Packed::op(0x66, 0xFB);
    /// `minps`.
    pub const MINPS: Packed = Packed::op(0, 0x5D);
    /// `minpd`.
    pub const MINPD: Packed = Packed::op(0x66, 0x5D);
    /// `maxps`.
    pub const MAXPS: Packed = Packed::op(0, 0x5F);
    /// `maxpd`.
    pub const MAXPD: Packed = Packed::op(0x66, 0x5F);
    /// `addps`.
    pub const ADDPS: Packed = Packed::op(0x00, 0x58);
    /// `addpd`.
    pub const ADDPD: Packed = Packed::op(0x66, 0x58);
    /// `subps`.
    pub const SUBPS: Packed = Packed::op(0x00, 0x5c);
    /// `subpd`.
    pub const SUBPD: Packed = Packed::op(0x66, 0x5c);
    /// `mulps`.
    pub const MULPS: Packed = Packed::op(0x00, 0x59);
    /// `mulpd`.
    pub const MULPD: Packed = Packed::op(0x66, 0x59);
    /// `divps`.
    pub const DIVPS: Packed = Packed::op(0x00, 0x5e);
    /// `divpd`.
    pub const DIVPD: Packed = Packed::op(0x66, 0x5e);
    /// `sqrtps`.
    pub const SQRTPS: Packed = Packed::op(0x00, 0x51);
    /// `sqrtpd`.
    pub const SQRTPD: Packed = Packed::op(0x66, 0x51);
    /// `pcmpeqb`.
    pub const PCMPEQB: Packed = Packed::op(0x66, 0x74);
    /// `pcmpeqw`.
    pub const PCMPEQW: Packed = Packed::op(0x66, 0x75);
    /// `pcmpgtb`.
    pub const PCMPGTB: Packed = Packed::op(0x66, 0x64);
    /// `pcmpgtw`.
    pub const PCMPGTW: Packed = Packed::op(0x66, 0x65);
    /// `pcmpgtd`.
    pub const PCMPGTD: Packed = Packed::op(0x66, 0x66);
    /// `paddsb`.
    pub const PADDSB: Packed = Packed::op(0x66, 0xEC);
    /// `paddsw`.
    pub const PADDSW: Packed = Packed::op(0x66, 0xED);
    /// `paddusb`.
    pub const PADDUSB: Packed = Packed::op(0x66, 0xDC);
    /// `paddusw`.
    pub const PADDUSW: Packed = Packed::op(0x66, 0xDD);
    /// `psubsb`.
    pub const PSUBSB: Packed = Packed::op(0x66, 0xE8);
    /// `psubsw`.
    pub const PSUBSW: Packed = Packed::op(0x66, 0xE9);
    /// `psubusb`.
    pub const PSUBUSB: Packed = Packed::op(0x66, 0xD8);
    /// `psubusw`.
    pub const PSUBUSW: Packed = Packed::op(0x66, 0xD9);
    /// `pminsw`.
    pub const PMINSW: Packed = Packed::op(0x66, 0xEA);
    /// `pmaxsw`.
    pub const PMAXSW: Packed = Packed::op(0x66, 0xEE);
    /// `pavgb`.
    pub const PAVGB: Packed = Packed::op(0x66, 0xE0);
    /// `pavgw`.
    pub const PAVGW: Packed = Packed::op(0x66, 0xE3);
    /// `pmulhw`.
    pub const PMULHW: Packed = Packed::op(0x66, 0xE5);
    /// `pmulhuw`.
    pub const PMULHUW: Packed = Packed::op(0x66, 0xE4);
    /// `pmaddwd`.
    pub const PMADDWD: Packed = Packed::op(0x66, 0xF5);
    /// `packsswb`.
    pub const PACKSSWB: Packed = Packed::op(0x66, 0x63);
    /// `packuswb`.
    pub const PACKUSWB: Packed = Packed::op(0x66, 0x67);
    /// `packssdw`.
    pub const PACKSSDW: Packed = Packed::op(0x66, 0x6B);
    /// `punpcklbw`.
    pub const PUNPCKLBW: Packed = Packed::op(0x66, 0x60);
    /// `punpckhbw`.
    pub const PUNPCKHBW: Packed = Packed::op(0x66, 0x68);
    /// `punpcklwd`.
    pub const PUNPCKLWD: Packed = Packed::op(0x66, 0x61);
    /// `punpckhwd`.
    pub const PUNPCKHWD: Packed = Packed::op(0x66, 0x69);
    /// `punpcklqdq`.
    pub const PUNPCKLQDQ: Packed = Packed::op(0x66, 0x6C);
    /// `pshufd xmm, xmm/m, ib`.
    pub const PSHUFD: Packed = Packed::op(0x66, 0x70);
    /// `pshuflw xmm, xmm/m, ib`.
    pub const PSHUFLW: Packed = Packed::op(0xF2, 0x70);
    /// `psrlw xmm, xmm` (count in the low 64 bits of the source).
    pub const PSRLW: Packed = Packed::op(0x66, 0xD1);
    /// `psrld xmm, xmm`.
    pub const PSRLD: Packed = Packed::op(0x66, 0xD2);
    /// `psrlq xmm, xmm`.
    pub const PSRLQ: Packed = Packed::op(0x66, 0xD3);
    /// `psraw xmm, xmm`.
    pub const PSRAW: Packed = Packed::op(0x66, 0xE1);
    /// `psrad xmm, xmm`.
    pub const PSRAD: Packed = Packed::op(0x66, 0xE2);
    /// `psllw xmm, xmm`.
    pub const PSLLW: Packed = Packed::op(0x66, 0xF1);
    /// `pslld xmm, xmm`.
    pub const PSLLD: Packed = Packed::op(0x66, 0xF2);
    /// `psllq xmm, xmm`.
    pub const PSLLQ: Packed = Packed::op(0x66, 0xF3);
    /// `pmovmskb r32, xmm` (reg: the general register).
    pub const PMOVMSKB: Packed = Packed::op(0x66, 0xD7);
    /// `movmskps r32, xmm` (reg: the general register).
    pub const MOVMSKPS: Packed = Packed::op(0, 0x50);
    /// `movmskpd r32, xmm` (reg: the general register).
    pub const MOVMSKPD: Packed = Packed::op(0x66, 0x50);
    /// `cvtdq2ps`.
    pub const CVTDQ2PS: Packed = Packed::op(0, 0x5B);
    /// `cvttps2dq`.
    pub const CVTTPS2DQ: Packed = Packed::op(0xF3, 0x5B);
    /// `cvtdq2pd`.
    pub const CVTDQ2PD: Packed = Packed::op(0xF3, 0xE6);
    /// `cvttpd2dq`.
    pub const CVTTPD2DQ: Packed = Packed::op(0x66, 0xE6);
    /// `cvtpd2ps`.
    pub const CVTPD2PS: Packed = Packed::op(0x66, 0x5A);
    /// `cvtps2pd`.
    pub const CVTPS2PD: Packed = Packed::op(0, 0x5A);
    /// `unpcklps`.
    pub const UNPCKLPS: Packed = Packed::op(0, 0x14);
    /// `shufps xmm, xmm, ib`.
    pub const SHUFPS: Packed = Packed::op(0, 0xC6);
    /// `movlhps xmm, xmm`.
    pub const MOVLHPS: Packed = Packed::op(0, 0x16);
    /// `andnps`.
    pub const ANDNPS: Packed = Packed::op(0, 0x55);
    /// `movsd xmm, xmm` (low 64 bits; the high bits of the destination are kept).
    pub const MOVSD: Packed = Packed::op(0xF2, 0x10);
    /// `movss xmm, m32` (loads zero the rest).
    pub const MOVSS: Packed = Packed::op(0xF3, 0x10);
    /// `movq xmm, m64` (zeroes the high 64 bits).
    pub const MOVQ_LOAD: Packed = Packed::op(0xF3, 0x7E);
    /// `pextrw r32, xmm, ib` (reg: the general register).
    pub const PEXTRW: Packed = Packed::op(0x66, 0xC5);
    /// `pinsrw xmm, r32/m16, ib`.
    pub const PINSRW: Packed = Packed::op(0x66, 0xC4);
    /// `pshufb`.
    pub const PSHUFB: Packed = Packed::op38(0x00);
    /// `phaddw`.
    pub const PHADDW: Packed = Packed::op38(0x01);
    /// `phaddd`.
    pub const PHADDD: Packed = Packed::op38(0x02);
    /// `pmaddubsw` (unsigned bytes of the destination times signed bytes of the source).
    pub const PMADDUBSW: Packed = Packed::op38(0x04);
    /// `pmulhrsw`.
    pub const PMULHRSW: Packed = Packed::op38(0x0B);
    /// `ptest`.
    pub const PTEST: Packed = Packed::op38(0x17);
    /// `pmovsxbw`.
    pub const PMOVSXBW: Packed = Packed::op38(0x20);
    /// `pmovsxwd`.
    pub const PMOVSXWD: Packed = Packed::op38(0x23);
    /// `pmovsxdq`.
    pub const PMOVSXDQ: Packed = Packed::op38(0x25);
    /// `pmuldq`.
    pub const PMULDQ: Packed = Packed::op38(0x28);
    /// `packusdw`.
    pub const PACKUSDW: Packed = Packed::op38(0x2B);
    /// `pmovzxbw`.
    pub const PMOVZXBW: Packed = Packed::op38(0x30);
    /// `pmovzxwd`.
    pub const PMOVZXWD: Packed = Packed::op38(0x33);
    /// `pmovzxdq`.
    pub const PMOVZXDQ: Packed = Packed::op38(0x35);
    /// `pabsb`.
    pub const PABSB: Packed = Packed::op38(0x1C);
    /// `pabsw`.
    pub const PABSW: Packed = Packed::op38(0x1D);
    /// `pabsd`.
    pub const PABSD: Packed = Packed::op38(0x1E);
    /// `pcmpeqq`.
    pub const PCMPEQQ: Packed = Packed::op38(0x29);
    /// `pcmpgtq` (SSE4.2).
    pub const PCMPGTQ: Packed = Packed::op38(0x37);
    /// `pminuw`.
    pub const PMINUW: Packed = Packed::op38(0x3A);
    /// `pminud`.
    pub const PMINUD: Packed = Packed::op38(0x3B);
    /// `pmaxuw`.
    pub const PMAXUW: Packed = Packed::op38(0x3E);
    /// `pmaxud`.
    pub const PMAXUD: Packed = Packed::op38(0x3F);
    /// `pmulld`.
    pub const PMULLD: Packed = Packed::op38(0x40);
    /// `pminub`.
    pub const PMINUB: Packed = Packed::op(0x66, 0xDA);
    /// `pmaxub`.
    pub const PMAXUB: Packed = Packed::op(0x66, 0xDE);
    /// `pmullw`.
    pub const PMULLW: Packed = Packed::op(0x66, 0xD5);
    /// `pmuludq`.
    pub const PMULUDQ: Packed = Packed::op(0x66, 0xF4);
    /// `pminsb`.
    pub const PMINSB: Packed = Packed::op38(0x38);
    /// `pminsd`.
    pub const PMINSD: Packed = Packed::op38(0x39);
    /// `pmaxsb`.
    pub const PMAXSB: Packed = Packed::op38(0x3C);
    /// `pmaxsd`.
    pub const PMAXSD: Packed = Packed::op38(0x3D);
    /// `roundps xmm, xmm, ib`.
    pub const ROUNDPS: Packed = Packed::op3a(false, 0x08);
    /// `roundpd xmm, xmm, ib`.
    pub const ROUNDPD: Packed = Packed::op3a(false, 0x09);
    /// `pblendw xmm, xmm, ib`.
    pub const PBLENDW: Packed = Packed::op3a(false, 0x0E);
    /// `pextrb r32, xmm, ib` (reg: the xmm source).
    pub const PEXTRB: Packed = Packed::op3a(false, 0x14);
    /// `pextrd r32, xmm, ib` (reg: the xmm source).
    pub const PEXTRD: Packed = Packed::op3a(false, 0x16);
    /// `pextrq r64, xmm, ib` (reg: the xmm source).
    pub const PEXTRQ: Packed = Packed::op3a(true, 0x16);
    /// `pinsrb xmm, r32/m8, ib`.
    pub const PINSRB: Packed = Packed::op3a(false, 0x20);
    /// `insertps xmm, xmm, ib`.
    pub const INSERTPS: Packed = Packed::op3a(false, 0x21);
    /// `pinsrd xmm, r32/m32, ib`.
    pub const PINSRD: Packed = Packed::op3a(false, 0x22);
    /// `pinsrq xmm, r64/m64, ib`.
    pub const PINSRQ: Packed = Packed::op3a(true, 0x22);
}

/// `op reg, rm` for a [`Packed`] instruction without an immediate.
pub fn packed(s: &mut impl Sink, op: Packed, reg: u8, rm: Rm) {
    need_room!(s, packed(op, reg, rm));
    encode_packed(s, op, reg, rm, Imm::NONE);
}

/// `op reg, rm, imm` for a [`Packed`] instruction with an 8-bit immediate.
pub fn packed_imm(s: &mut impl Sink, op: Packed, reg: u8, rm: Rm, imm: u8) {
    need_room!(s, packed_imm(op, reg, rm, imm));
    encode_packed(s, op, reg, rm, Imm::i8(imm as i8));
}

/// The legacy (SSE) encoding of a [`Packed`] instruction.
#[inline(always)]
fn encode_packed(s: &mut impl Sink, op: Packed, reg: u8, rm: Rm, imm: Imm) {
    let [a, b, c] = op.opcode;
    let h = Head {
        prefix: op.prefix,
        w: op.w,
        force_rex: false,
        // The byte past the opcode is 0: the writer stores 4 bytes and keeps `len`.
        op: u32::from_le_bytes([a, b, c, 0]),
        op_len: op.len as usize,
    };
    match rm {
        Rm::Reg(r) => encode_rr(s, h, reg, r, imm),
        Rm::Mem(m) => encode_mem(s, h, reg, m, imm),
    }
}

/// The VEX (AVX) form of a [`Packed`] instruction: the same opcode byte, its map (`0F`,
/// `0F 38`, `0F 3A`) as `mmmmm`, the mandatory prefix as `pp`, REX.W as VEX.W, and L = 0
/// (128 bits, the upper half of the ymm register zeroed). `vvvv` is the first source of
/// the three-operand forms (`vop reg, vvvv, rm`), 0 for the forms without one (which must
/// encode it as `1111`, what 0 inverts to). The two-byte `C5` prefix when the map is `0F`,
/// W is 0 and neither X nor B is needed, else the three-byte `C4` prefix.
#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn encode_vex(s: &mut impl Sink, op: Packed, opcode: u8, reg: u8, vvvv: u8, rm: Rm, imm: Imm) {
    let pp = match op.prefix {
        0x66 => 1,
        0xF3 => 2,
        0xF2 => 3,
        _ => 0,
    };
    let map = match (op.len, op.opcode[1]) {
        (2, _) => 1,
        (_, 0x38) => 2,
        _ => 3,
    };
    let (x, b) = match rm {
        Rm::Reg(r) => (0, r >> 3),
        Rm::Mem(m) => (m.rex >> 1, m.rex),
    };
    let r_bar = (!reg >> 3) & 1;
    let v_pp = (!vvvv & 0xF) << 3 | pp;
    emit(s, |i| {
        if map == 1 && !op.w && x & 1 == 0 && b & 1 == 0 {
            i.byte(0xC5);
            i.byte(r_bar << 7 | v_pp);
        } else {
            i.byte(0xC4);
            i.byte(r_bar << 7 | ((!x & 1) << 6) | ((!b & 1) << 5) | map);
            i.byte((op.w as u8) << 7 | v_pp);
        }
        i.byte(opcode);
        modrm_tail(i, reg, rm, imm);
    });
}

impl Packed {
    /// The opcode byte after the map bytes.
    const fn last(self) -> u8 {
        self.opcode[self.len as usize - 1]
    }
}

/// `vop reg, vvvv, rm`: the VEX form of a [`Packed`] instruction (`vvvv` 0 for the forms
/// without a first source).
pub fn vex(s: &mut impl Sink, op: Packed, reg: u8, vvvv: u8, rm: Rm) {
    need_room!(s, vex(op, reg, vvvv, rm));
    encode_vex(s, op, op.last(), reg, vvvv, rm, Imm::NONE);
}

/// `vop reg, vvvv, rm, imm`: the VEX form of a [`Packed`] instruction with an immediate.
pub fn vex_imm(s: &mut impl Sink, op: Packed, reg: u8, vvvv: u8, rm: Rm, imm: u8) {
    need_room!(s, vex_imm(op, reg, vvvv, rm, imm));
    encode_vex(s, op, op.last(), reg, vvvv, rm, Imm::i8(imm as i8));
}

/// `vpsllw`/`vpsrld`/... `dst, src, imm`: the VEX form of [`pshift_imm`] (the destination
/// in `vvvv`, the source in ModRM r/m).
pub fn vpshift_imm(s: &mut impl Sink, op: u8, digit: u8, dst: u8, src: u8, imm: u8) {
    need_room!(s, vpshift_imm(op, digit, dst, src, imm));
    encode_vex(
        s,
        Packed::op(0x66, op),
        op,
        digit,
        dst,
        Rm::Reg(src),
        Imm::i8(imm as i8),
    );
}

/// `vcmpps`/`vcmppd dst, a, b, predicate`: the VEX form of [`cmpp`].
pub fn vcmpp(s: &mut impl Sink, double: bool, dst: u8, a: u8, b: u8, predicate: u8) {
    need_room!(s, vcmpp(double, dst, a, b, predicate));
    let prefix = if double { 0x66 } else { 0 };
    encode_vex(
        s,
        Packed::op(prefix, 0xC2),
        0xC2,
        dst,
        a,
        Rm::Reg(b),
        Imm::i8(predicate as i8),
    );
}
