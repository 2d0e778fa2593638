//! SSE4.1 lowering of the v128 primitives added for the rest of wasm 2.0 SIMD (lane
//! access, shuffles, shifts, widening and narrowing, conversions, tests).
//!
//! Every sequence computes in the scratch registers `xmm0` and `xmm15` (and in `dst` once
//! every source has been read), so `dst` may alias any source. With AVX (`self.avx`) the
//! VEX forms write `dst` directly where the SSE sequence would end with `movaps dst, xmm0`. Constants are built in a
//! register through `r11` (see `v128_const`).

use super::enc::{self, Alu, Cc, Ext, Packed, Rm};
use super::masm::{X64Masm, R11, XMM0, XMM_SCRATCH};
use crate::masm::*;

const X0: u8 = XMM0;
const X15: u8 = XMM_SCRATCH;

/// `bits` repeated in every 8-bit lane.
const fn splat8(bits: u8) -> u128 {
    u128::from_le_bytes([bits; 16])
}

/// `bits` repeated in every 16-bit lane.
const fn splat16(bits: u16) -> u128 {
    (bits as u128) * 0x0001_0001_0001_0001_0001_0001_0001_0001
}

/// `bits` repeated in every 32-bit lane.
const fn splat32(bits: u32) -> u128 {
    (bits as u128) * 0x0000_0001_0000_0001_0000_0001_0000_0001
}

/// `bits` repeated in both 64-bit lanes.
const fn splat64(bits: u64) -> u128 {
    (bits as u128) << 64 | bits as u128
}

/// `pmovsx*`/`pmovzx*` into `lanes` from the half-width lanes below them.
fn pmov_extend(lanes: Lanes, signed: bool) -> Packed {
    match (lanes, signed) {
        (Lanes::I16x8, true) => Packed::PMOVSXBW,
        (Lanes::I16x8, false) => Packed::PMOVZXBW,
        (Lanes::I32x4, true) => Packed::PMOVSXWD,
        (Lanes::I32x4, false) => Packed::PMOVZXWD,
        (_, true) => Packed::PMOVSXDQ,
        (_, false) => Packed::PMOVZXDQ,
    }
}

/// The packed shift by an xmm count: `(op, imm opcode, imm digit)`.
fn shift_ops(op: V128Shift) -> (Packed, u8, u8) {
    use Lanes::*;
    match op {
        V128Shift::Shl(I16x8) => (Packed::PSLLW, 0x71, 6),
        V128Shift::Shl(I32x4) => (Packed::PSLLD, 0x72, 6),
        V128Shift::Shl(_) => (Packed::PSLLQ, 0x73, 6),
        V128Shift::ShrU(I16x8) => (Packed::PSRLW, 0x71, 2),
        V128Shift::ShrU(I32x4) => (Packed::PSRLD, 0x72, 2),
        V128Shift::ShrU(_) => (Packed::PSRLQ, 0x73, 2),
        V128Shift::ShrS(I16x8) => (Packed::PSRAW, 0x71, 4),
        V128Shift::ShrS(_) => (Packed::PSRAD, 0x72, 4),
    }
}

/// A shift count: an immediate or the low 64 bits of an xmm register.
#[derive(Clone, Copy)]
enum Count {
    Imm(u8),
    Xmm(u8),
}

impl X64Masm {
    /// `op d, s, imm` on two registers.
    fn pi(&mut self, op: Packed, d: u8, s: u8, imm: u8) {
        enc::packed_imm(&mut self.ops, op, d, Rm::Reg(s), imm);
    }

    /// `movaps d, s` unless they are the same register.
    pub(super) fn movaps(&mut self, d: u8, s: u8) {
        if d != s {
            self.sse(Packed::MOVAPS, d, s);
        }
    }

    fn constant(&mut self, xmm: u8, bits: u128) {
        self.v128_const(Reg::float(xmm), bits);
    }

    /// Shifts xmm `x` by `count` with `op` (not for i8x16 or i64x2 `ShrS`).
    fn pshift(&mut self, op: V128Shift, x: u8, count: Count) {
        let (by_xmm, imm_op, digit) = shift_ops(op);
        match count {
            Count::Imm(n) => enc::pshift_imm(&mut self.ops, imm_op, digit, x, n),
            Count::Xmm(c) => self.sse(by_xmm, x, c),
        }
    }

    /// `dst = lhs op rhs` for an SSE instruction `op d, s` that computes `d = d op s`.
    pub(super) fn packed_binop(
        &mut self,
        op: Packed,
        commutative: bool,
        dst: Reg,
        lhs: Reg,
        rhs: Reg,
    ) {
        let (d, mut l, mut r) = (dst.hw, lhs.hw, rhs.hw);
        if self.avx {
            return self.v3(op, d, l, r);
        }
        if d == r && d != l && commutative {
            std::mem::swap(&mut l, &mut r);
        }
        if d != l && d == r {
            // `rhs` would be overwritten by `lhs` before it is read.
            self.movaps(X15, r);
            r = X15;
        }
        self.movaps(d, l);
        self.sse(op, d, r);
    }

    /// The new `V128BinOp`s; returns false for the ones `v128_binop` handles itself.
    pub(super) fn simd_binop(&mut self, op: V128BinOp, dst: Reg, lhs: Reg, rhs: Reg) -> bool {
        use Lanes::*;
        use V128BinOp::*;
        let (d, l, r) = (dst.hw, lhs.hw, rhs.hw);
        let simple = match op {
            AddSatS(I8x16) => Some((Packed::PADDSB, true)),
            AddSatS(_) => Some((Packed::PADDSW, true)),
            AddSatU(I8x16) => Some((Packed::PADDUSB, true)),
            AddSatU(_) => Some((Packed::PADDUSW, true)),
            SubSatS(I8x16) => Some((Packed::PSUBSB, false)),
            SubSatS(_) => Some((Packed::PSUBSW, false)),
            SubSatU(I8x16) => Some((Packed::PSUBUSB, false)),
            SubSatU(_) => Some((Packed::PSUBUSW, false)),
            MinS(I8x16) => Some((Packed::PMINSB, true)),
            MinS(I16x8) => Some((Packed::PMINSW, true)),
            MinS(_) => Some((Packed::PMINSD, true)),
            MinU(I8x16) => Some((Packed::PMINUB, true)),
            MinU(I16x8) => Some((Packed::PMINUW, true)),
            MinU(_) => Some((Packed::PMINUD, true)),
            MaxS(I8x16) => Some((Packed::PMAXSB, true)),
            MaxS(I16x8) => Some((Packed::PMAXSW, true)),
            MaxS(_) => Some((Packed::PMAXSD, true)),
            MaxU(I8x16) => Some((Packed::PMAXUB, true)),
            MaxU(I16x8) => Some((Packed::PMAXUW, true)),
            MaxU(_) => Some((Packed::PMAXUD, true)),
            AvgrU(I8x16) => Some((Packed::PAVGB, true)),
            AvgrU(_) => Some((Packed::PAVGW, true)),
            Dot => Some((Packed::PMADDWD, true)),
            Narrow {
                lanes: I8x16,
                signed: true,
            } => Some((Packed::PACKSSWB, false)),
            Narrow {
                lanes: I8x16,
                signed: false,
            } => Some((Packed::PACKUSWB, false)),
            Narrow { signed: true, .. } => Some((Packed::PACKSSDW, false)),
            Narrow { signed: false, .. } => Some((Packed::PACKUSDW, false)),
            AddPairwise(I16x8) => Some((Packed::PHADDW, false)),
            AddPairwise(_) => Some((Packed::PHADDD, false)),
            _ => None,
        };
        if let Some((p, commutative)) = simple {
            self.packed_binop(p, commutative, dst, lhs, rhs);
            return true;
        }
        match op {
            FMin(lanes) | FMax(lanes) => self.float_min_max(matches!(op, FMax(_)), lanes, d, l, r),
            Q15MulrSatS => {
                // pmulhrsw is exact except 0x8000 * 0x8000, which gives 0x8000: flip it.
                self.op3(Packed::PMULHRSW, X0, l, r);
                self.sse(Packed::PCMPEQD, X15, X15);
                enc::pshift_imm(&mut self.ops, 0x71, 6, X15, 15);
                self.sse(Packed::PCMPEQW, X15, X0);
                if self.avx {
                    self.v3(Packed::PXOR, d, X0, X15);
                } else {
                    self.sse(Packed::PXOR, X0, X15);
                    self.movaps(d, X0);
                }
            }
            ExtMul {
                lanes: lanes @ (I16x8 | I64x2),
                high,
                signed,
            } => {
                // Widen both operands' halves, then one multiply.
                let (widen, mul, shuffle) = match lanes {
                    I16x8 => (Some(pmov_extend(I16x8, signed)), Packed::PMULLW, 0xEE),
                    _ if signed => (None, Packed::PMULDQ, if high { 0xFA } else { 0x50 }),
                    _ => (None, Packed::PMULUDQ, if high { 0xFA } else { 0x50 }),
                };
                for (x, src) in [(X0, l), (X15, r)] {
                    match widen {
                        Some(w) if high => {
                            self.pi(Packed::PSHUFD, x, src, shuffle);
                            self.sse(w, x, x);
                        }
                        Some(w) => self.sse(w, x, src),
                        None => self.pi(Packed::PSHUFD, x, src, shuffle),
                    }
                }
                self.op3(mul, d, X0, X15);
            }
            ExtMul { high, signed, .. } => {
                // i32x4 from i16x8: the low and high halves of the 32-bit products,
                // interleaved.
                let mulh = if signed {
                    Packed::PMULHW
                } else {
                    Packed::PMULHUW
                };
                self.op3(Packed::PMULLW, X0, l, r);
                self.op3(mulh, X15, l, r);
                let unpack = if high {
                    Packed::PUNPCKHWD
                } else {
                    Packed::PUNPCKLWD
                };
                self.op3(unpack, d, X0, X15);
            }
            Swizzle => {
                // Indices >= 16 saturate to >= 0x80, which pshufb turns into 0.
                if self.avx {
                    self.constant(X15, splat8(0x70));
                    self.v3(Packed::PADDUSB, X0, r, X15);
                    self.v3(Packed::PSHUFB, d, l, X0);
                } else {
                    self.movaps(X0, r);
                    self.constant(X15, splat8(0x70));
                    self.sse(Packed::PADDUSB, X0, X15);
                    self.movaps(X15, l);
                    self.sse(Packed::PSHUFB, X15, X0);
                    self.movaps(d, X15);
                }
            }
            _ => return false,
        }
        true
    }

    /// wasm `min`/`max` (NaN in, NaN out; `-0 < +0`): minps/maxps return their second
    /// operand on NaN and on equal zeros, so both orders are combined, then NaN lanes get a
    /// canonical quiet NaN.
    fn float_min_max(&mut self, max: bool, lanes: FloatLanes, d: u8, l: u8, r: u8) {
        let double = lanes == FloatLanes::F64x2;
        let (minmax, sub, shift_op, payload) = match (max, double) {
            (false, false) => (Packed::MINPS, Packed::SUBPS, 0x72, 10),
            (false, true) => (Packed::MINPD, Packed::SUBPD, 0x73, 13),
            (true, false) => (Packed::MAXPS, Packed::SUBPS, 0x72, 10),
            (true, true) => (Packed::MAXPD, Packed::SUBPD, 0x73, 13),
        };
        if self.avx {
            self.v3(minmax, X15, r, l);
            self.v3(minmax, X0, l, r);
        } else {
            self.movaps(X15, r);
            self.sse(minmax, X15, l);
            self.movaps(X0, l);
            self.sse(minmax, X0, r);
        }
        if max {
            // Lanes that differ: NaNs and a +0/-0 pair; `sub` turns them into NaN / +0.
            self.sse(Packed::XORPS, X0, X15);
            self.sse(Packed::ORPS, X15, X0);
            self.sse(sub, X15, X0);
        } else {
            // Or-ing propagates -0 (over +0) and NaNs.
            self.sse(Packed::ORPS, X15, X0);
        }
        enc::cmpp(&mut self.ops, double, X0, X15, 3);
        if !max {
            self.sse(Packed::ORPS, X15, X0);
        }
        // Clear the payload of NaN lanes (keeping the quiet bit and exponent).
        enc::pshift_imm(&mut self.ops, shift_op, 2, X0, payload);
        if self.avx {
            return self.v3(Packed::ANDNPS, d, X0, X15);
        }
        self.sse(Packed::ANDNPS, X0, X15);
        self.movaps(d, X0);
    }

    /// The new `V128UnOp`s; returns false for the ones `v128_unop` handles itself.
    pub(super) fn simd_unop(&mut self, op: V128UnOp, dst: Reg, src: Reg) -> bool {
        use Lanes::*;
        use V128UnOp::*;
        let (d, s) = (dst.hw, src.hw);
        match op {
            FRound(lanes, mode) => {
                let imm = match mode {
                    FloatUnOp::Nearest => 0,
                    FloatUnOp::Floor => 1,
                    FloatUnOp::Ceil => 2,
                    _ => 3,
                };
                let op = match lanes {
                    FloatLanes::F32x4 => Packed::ROUNDPS,
                    FloatLanes::F64x2 => Packed::ROUNDPD,
                };
                self.pi(op, d, s, imm);
            }
            Popcnt => {
                // Nibble lookups with pshufb.
                const NIBBLE_COUNTS: u128 = 0x0403_0302_0302_0201_0302_0201_0201_0100;
                self.constant(X15, splat8(0x0F));
                self.pshift3(0x71, 2, X0, s, 4);
                self.sse(Packed::PAND, X0, X15);
                self.sse(Packed::PAND, X15, s);
                self.constant(d, NIBBLE_COUNTS);
                if self.avx {
                    // One copy of the table serves both lookups.
                    self.v3(Packed::PSHUFB, X15, d, X15);
                    self.v3(Packed::PSHUFB, d, d, X0);
                    self.sse(Packed::PADDB, d, X15);
                    return true;
                }
                self.sse(Packed::PSHUFB, d, X15);
                self.constant(X15, NIBBLE_COUNTS);
                self.sse(Packed::PSHUFB, X15, X0);
                self.sse(Packed::PADDB, d, X15);
            }
            ExtAddPairwise {
                lanes: I16x8,
                signed,
            } => {
                // pmaddubsw: unsigned bytes of the first operand times signed bytes of
                // the second, pairs added.
                if signed {
                    self.constant(X0, splat8(1));
                    self.sse(Packed::PMADDUBSW, X0, s);
                } else {
                    self.constant(X15, splat8(1));
                    self.op3(Packed::PMADDUBSW, X0, s, X15);
                }
                self.movaps(d, X0);
            }
            ExtAddPairwise { signed: true, .. } => {
                self.constant(X15, splat16(1));
                if self.avx {
                    self.v3(Packed::PMADDWD, d, s, X15);
                } else {
                    self.movaps(X0, s);
                    self.sse(Packed::PMADDWD, X0, X15);
                    self.movaps(d, X0);
                }
            }
            ExtAddPairwise { signed: false, .. } => {
                self.pshift3(0x72, 2, X0, s, 16);
                self.pshift3(0x72, 6, X15, s, 16);
                enc::pshift_imm(&mut self.ops, 0x72, 2, X15, 16);
                self.op3(Packed::PADDD, d, X0, X15);
            }
            Extend {
                lanes,
                high,
                signed,
            } => {
                let op = pmov_extend(lanes, signed);
                if high {
                    self.pi(Packed::PSHUFD, X0, s, 0xEE);
                    self.sse(op, d, X0);
                } else {
                    self.sse(op, d, s);
                }
            }
            ConvertI32x4ToF32x4 { signed: true } => self.sse(Packed::CVTDQ2PS, d, s),
            ConvertI32x4ToF32x4 { signed: false } => {
                // The low 16 bits and the rest converted separately (both exact), the
                // rest halved first to stay in the signed range.
                self.sse(Packed::PXOR, X15, X15);
                if self.avx {
                    let blend = Rm::Reg(s);
                    enc::vex_imm(&mut self.ops, Packed::PBLENDW, X15, X15, blend, 0x55);
                    self.v3(Packed::PSUBD, X0, s, X15);
                } else {
                    self.movaps(X0, s);
                    self.pi(Packed::PBLENDW, X15, X0, 0x55);
                    self.sse(Packed::PSUBD, X0, X15);
                }
                self.sse(Packed::CVTDQ2PS, X15, X15);
                enc::pshift_imm(&mut self.ops, 0x72, 2, X0, 1);
                self.sse(Packed::CVTDQ2PS, X0, X0);
                self.sse(Packed::ADDPS, X0, X0);
                self.op3(Packed::ADDPS, d, X0, X15);
            }
            ConvertLowI32x4ToF64x2 { signed: true } => self.sse(Packed::CVTDQ2PD, d, s),
            ConvertLowI32x4ToF64x2 { signed: false } => {
                // 0x4330_0000_xxxx_xxxx is the double 2^52 + x.
                self.constant(X15, splat32(0x4330_0000));
                self.op3(Packed::UNPCKLPS, X0, s, X15);
                self.constant(X15, splat64(0x4330_0000_0000_0000));
                self.op3(Packed::SUBPD, d, X0, X15);
            }
            TruncSatF32x4ToI32x4 { signed: true } => {
                // NaN lanes to 0; cvttps2dq gives 0x8000_0000 on overflow, which is right
                // for negative lanes and flipped to 0x7FFF_FFFF for positive ones.
                if self.avx {
                    enc::vcmpp(&mut self.ops, false, X15, s, s, 0);
                    self.v3(Packed::ANDPS, X0, s, X15);
                } else {
                    self.movaps(X0, s);
                    self.movaps(X15, X0);
                    enc::cmpp(&mut self.ops, false, X15, X0, 0);
                    self.sse(Packed::ANDPS, X0, X15);
                }
                self.sse(Packed::PXOR, X15, X0);
                self.sse(Packed::CVTTPS2DQ, X0, X0);
                self.sse(Packed::PAND, X15, X0);
                enc::pshift_imm(&mut self.ops, 0x72, 4, X15, 31);
                self.op3(Packed::PXOR, d, X0, X15);
            }
            TruncSatF32x4ToI32x4 { signed: false } => {
                // Lanes >= 2^31 convert as (x - 2^31) + 0x8000_0000; `d` is free once
                // `s` is in xmm0.
                if self.avx {
                    self.sse(Packed::XORPS, X15, X15);
                    self.v3(Packed::MAXPS, X0, s, X15);
                } else {
                    self.movaps(X0, s);
                    self.sse(Packed::XORPS, X15, X15);
                    self.sse(Packed::MAXPS, X0, X15);
                }
                self.sse(Packed::PCMPEQD, X15, X15);
                enc::pshift_imm(&mut self.ops, 0x72, 2, X15, 1);
                self.sse(Packed::CVTDQ2PS, X15, X15);
                self.op3(Packed::SUBPS, d, X0, X15);
                enc::cmpp(&mut self.ops, false, X15, d, 2);
                self.sse(Packed::CVTTPS2DQ, d, d);
                self.sse(Packed::PXOR, d, X15);
                self.sse(Packed::PXOR, X15, X15);
                self.sse(Packed::PMAXSD, d, X15);
                self.sse(Packed::CVTTPS2DQ, X0, X0);
                if self.avx {
                    self.v3(Packed::PADDD, d, X0, d);
                } else {
                    self.sse(Packed::PADDD, X0, d);
                    self.movaps(d, X0);
                }
            }
            TruncSatF64x2ToI32x4Zero { signed: true } => {
                // NaN lanes to 0, clamp at i32::MAX; cvttpd2dq saturates negative lanes
                // to i32::MIN and zeroes the high lanes.
                if self.avx {
                    // `d` may be `s`: the constant goes to xmm0.
                    self.constant(X0, splat64(2147483647f64.to_bits()));
                    enc::vcmpp(&mut self.ops, true, X15, s, s, 0);
                    self.sse(Packed::ANDPS, X15, X0);
                    self.v3(Packed::MINPD, X0, s, X15);
                    self.sse(Packed::CVTTPD2DQ, d, X0);
                } else {
                    self.movaps(X0, s);
                    self.movaps(X15, X0);
                    enc::cmpp(&mut self.ops, true, X15, X0, 0);
                    self.constant(d, splat64(2147483647f64.to_bits()));
                    self.sse(Packed::ANDPS, X15, d);
                    self.sse(Packed::MINPD, X0, X15);
                    self.sse(Packed::CVTTPD2DQ, X0, X0);
                    self.movaps(d, X0);
                }
            }
            TruncSatF64x2ToI32x4Zero { signed: false } => {
                // Clamp to [0, u32::MAX] (maxpd gives 0 for NaN), truncate, and add 2^52 so
                // the low 32 bits of each double are the integer.
                if self.avx {
                    self.sse(Packed::XORPS, X15, X15);
                    self.v3(Packed::MAXPD, X0, s, X15);
                } else {
                    self.movaps(X0, s);
                    self.sse(Packed::XORPS, X15, X15);
                    self.sse(Packed::MAXPD, X0, X15);
                }
                self.constant(d, splat64(4294967295f64.to_bits()));
                self.sse(Packed::MINPD, X0, d);
                self.pi(Packed::ROUNDPD, X0, X0, 3);
                self.constant(d, splat64(0x4330_0000_0000_0000));
                self.sse(Packed::ADDPD, X0, d);
                if self.avx {
                    enc::vex_imm(&mut self.ops, Packed::SHUFPS, d, X0, Rm::Reg(X15), 0x88);
                } else {
                    self.pi(Packed::SHUFPS, X0, X15, 0x88);
                    self.movaps(d, X0);
                }
            }
            DemoteF64x2Zero => self.sse(Packed::CVTPD2PS, d, s),
            PromoteLowF32x4 => self.sse(Packed::CVTPS2PD, d, s),
            _ => return false,
        }
        true
    }

    /// Sets ZF for `AnyTrue`/`AllTrue` of xmm `s`; returns the condition that means true.
    fn any_all_flags(&mut self, test: V128Test, s: u8) -> Cc {
        match test {
            V128Test::AllTrue(lanes) => {
                // All true when no lane equals zero.
                self.sse(Packed::PXOR, X0, X0);
                let eq = match lanes {
                    Lanes::I8x16 => Packed::PCMPEQB,
                    Lanes::I16x8 => Packed::PCMPEQW,
                    Lanes::I32x4 => Packed::PCMPEQD,
                    Lanes::I64x2 => Packed::PCMPEQQ,
                };
                self.sse(eq, X0, s);
                self.sse(Packed::PTEST, X0, X0);
                Cc::E
            }
            _ => {
                self.sse(Packed::PTEST, s, s);
                Cc::Ne
            }
        }
    }

    pub(super) fn simd_test_branch(&mut self, test: V128Test, src: Reg, when: bool, target: Label) {
        let true_if_zero = self.any_all_flags(test, src.hw) == Cc::E;
        let cc = if true_if_zero == when {
            IntCmp::Eq
        } else {
            IntCmp::Ne
        };
        self.jcc(cc, target);
    }

    pub(super) fn simd_test(&mut self, test: V128Test, dst: Reg, src: Reg) {
        let (d, s) = (dst.hw, src.hw);
        match test {
            V128Test::AnyTrue | V128Test::AllTrue(_) => {
                // `xor` first: it clobbers the flags.
                enc::alu_rr(&mut self.ops, Alu::Xor, false, d, d);
                let cc = self.any_all_flags(test, s);
                enc::setcc(&mut self.ops, cc, d);
            }
            V128Test::Bitmask(Lanes::I8x16) => self.sse(Packed::PMOVMSKB, d, s),
            V128Test::Bitmask(Lanes::I16x8) => {
                // Narrow the lanes to bytes (signs kept), then the byte mask's low half.
                if self.avx {
                    self.v3(Packed::PACKSSWB, X0, s, s);
                } else {
                    self.movaps(X0, s);
                    self.sse(Packed::PACKSSWB, X0, X0);
                }
                self.sse(Packed::PMOVMSKB, d, X0);
                enc::extend(&mut self.ops, Ext::Zx8, d, Rm::Reg(d));
            }
            V128Test::Bitmask(Lanes::I32x4) => self.sse(Packed::MOVMSKPS, d, s),
            V128Test::Bitmask(Lanes::I64x2) => self.sse(Packed::MOVMSKPD, d, s),
        }
    }

    pub(super) fn simd_shift(&mut self, op: V128Shift, dst: Reg, src: Reg, amount: RegImm) {
        let (V128Shift::Shl(lanes) | V128Shift::ShrS(lanes) | V128Shift::ShrU(lanes)) = op;
        let bits = lanes.bits() as u8;
        let d = dst.hw;
        // The count reduced modulo the lane width, in r11 (register counts) and, offset by
        // `extra`, as a `Count`.
        let count = |m: &mut Self, extra: u8| match amount {
            RegImm::Imm(n) => Count::Imm(n as u8 + extra),
            RegImm::Reg(r) => {
                enc::mov_rr(&mut m.ops, false, R11, r.hw);
                enc::alu_ri(&mut m.ops, Alu::And, false, R11, i32::from(bits - 1));
                if extra != 0 {
                    enc::alu_ri(&mut m.ops, Alu::Add, false, R11, i32::from(extra));
                }
                enc::movd_to_xmm(&mut m.ops, false, X15, R11);
                Count::Xmm(X15)
            }
        };
        let simple = !matches!(
            op,
            V128Shift::Shl(Lanes::I8x16)
                | V128Shift::ShrS(Lanes::I8x16 | Lanes::I64x2)
                | V128Shift::ShrU(Lanes::I8x16)
        );
        if self.avx && !simple && op != V128Shift::Shl(Lanes::I8x16) {
            return self.simd_shift_avx(op, d, src.hw, count);
        }
        if self.avx && simple {
            // One three-operand shift (the count is computed without touching `src`).
            let (by_xmm, imm_op, digit) = shift_ops(op);
            match count(self, 0) {
                Count::Imm(n) => enc::vpshift_imm(&mut self.ops, imm_op, digit, d, src.hw, n),
                Count::Xmm(c) => self.v3(by_xmm, d, src.hw, c),
            }
            return;
        }
        self.movaps(X0, src.hw);
        // From here on `src` is in xmm0 and `dst` is free.
        match op {
            V128Shift::Shl(Lanes::I8x16) => {
                // Clear the bits that would cross into the next byte, then shift words.
                let c = count(self, 8);
                self.sse(Packed::PCMPEQD, d, d);
                self.pshift(V128Shift::ShrU(Lanes::I16x8), d, c);
                self.sse(Packed::PACKUSWB, d, d);
                self.sse(Packed::PAND, X0, d);
                let c = match amount {
                    RegImm::Imm(n) => Count::Imm(n as u8),
                    RegImm::Reg(_) => {
                        enc::alu_ri(&mut self.ops, Alu::Sub, false, R11, 8);
                        enc::movd_to_xmm(&mut self.ops, false, X15, R11);
                        Count::Xmm(X15)
                    }
                };
                self.pshift(V128Shift::Shl(Lanes::I16x8), X0, c);
            }
            V128Shift::ShrS(Lanes::I8x16) | V128Shift::ShrU(Lanes::I8x16) => {
                // Each byte into the high half of a word, shifted by 8 more, repacked.
                let signed = matches!(op, V128Shift::ShrS(_));
                let word_op = if signed {
                    V128Shift::ShrS(Lanes::I16x8)
                } else {
                    V128Shift::ShrU(Lanes::I16x8)
                };
                self.sse(Packed::PUNPCKHBW, d, X0);
                self.sse(Packed::PUNPCKLBW, X0, X0);
                let c = count(self, 8);
                self.pshift(word_op, d, c);
                self.pshift(word_op, X0, c);
                let pack = if signed {
                    Packed::PACKSSWB
                } else {
                    Packed::PACKUSWB
                };
                self.sse(pack, X0, d);
            }
            V128Shift::ShrS(Lanes::I64x2) => {
                // (x >>u n ^ m) - m with m = the sign bit >>u n.
                let c = count(self, 0);
                let logical = V128Shift::ShrU(Lanes::I64x2);
                self.pshift(logical, X0, c);
                self.sse(Packed::PCMPEQD, d, d);
                enc::pshift_imm(&mut self.ops, 0x73, 6, d, 63);
                self.pshift(logical, d, c);
                self.sse(Packed::PXOR, X0, d);
                self.sse(Packed::PSUBQ, X0, d);
            }
            _ => {
                let c = count(self, 0);
                self.pshift(op, X0, c);
            }
        }
        self.movaps(d, X0);
    }

    /// The i8x16 right shifts and the i64x2 arithmetic one with AVX: no copies.
    fn simd_shift_avx(
        &mut self,
        op: V128Shift,
        d: u8,
        s: u8,
        count: impl Fn(&mut Self, u8) -> Count,
    ) {
        if op == V128Shift::ShrS(Lanes::I64x2) {
            // (x >>u n ^ m) - m with m = the sign bit >>u n; `d` is written once `s` is
            // read.
            let c = count(self, 0);
            let logical = V128Shift::ShrU(Lanes::I64x2);
            match c {
                Count::Imm(n) => enc::vpshift_imm(&mut self.ops, 0x73, 2, X0, s, n),
                Count::Xmm(x) => self.v3(Packed::PSRLQ, X0, s, x),
            }
            self.sse(Packed::PCMPEQD, d, d);
            enc::pshift_imm(&mut self.ops, 0x73, 6, d, 63);
            self.pshift(logical, d, c);
            self.sse(Packed::PXOR, X0, d);
            return self.v3(Packed::PSUBQ, d, X0, d);
        }
        // Each byte into the high half of a word, shifted by 8 more, repacked.
        let signed = matches!(op, V128Shift::ShrS(_));
        let word_op = if signed {
            V128Shift::ShrS(Lanes::I16x8)
        } else {
            V128Shift::ShrU(Lanes::I16x8)
        };
        self.v3(Packed::PUNPCKHBW, X0, s, s);
        self.v3(Packed::PUNPCKLBW, d, s, s);
        let c = count(self, 8);
        self.pshift(word_op, X0, c);
        self.pshift(word_op, d, c);
        let pack = if signed {
            Packed::PACKSSWB
        } else {
            Packed::PACKUSWB
        };
        self.v3(pack, d, d, X0);
    }

    pub(super) fn simd_splat(&mut self, dst: Reg, src: Reg, lanes: Lanes) {
        let (d, s) = (dst.hw, src.hw);
        if src.class == RegClass::Float {
            let imm = if lanes == Lanes::I64x2 { 0x44 } else { 0 };
            self.pi(Packed::PSHUFD, d, s, imm);
            return;
        }
        enc::movd_to_xmm(&mut self.ops, lanes == Lanes::I64x2, d, s);
        match lanes {
            Lanes::I8x16 => {
                self.sse(Packed::PXOR, X15, X15);
                self.sse(Packed::PSHUFB, d, X15);
            }
            Lanes::I16x8 => {
                self.pi(Packed::PSHUFLW, d, d, 0);
                self.pi(Packed::PSHUFD, d, d, 0);
            }
            Lanes::I32x4 => self.pi(Packed::PSHUFD, d, d, 0),
            Lanes::I64x2 => self.sse(Packed::PUNPCKLQDQ, d, d),
        }
    }

    pub(super) fn simd_extract_lane(
        &mut self,
        dst: Reg,
        src: Reg,
        lanes: Lanes,
        lane: u8,
        signed: bool,
    ) {
        let (d, s) = (dst.hw, src.hw);
        if dst.class == RegClass::Float {
            // The scalar is the low lane; the bits above it do not matter.
            match (lanes, lane) {
                (_, 0) => self.movaps(d, s),
                (Lanes::I64x2, _) => self.pi(Packed::PSHUFD, d, s, 0xEE),
                _ => self.pi(Packed::PSHUFD, d, s, lane),
            }
            return;
        }
        match lanes {
            Lanes::I8x16 => {
                self.pi(Packed::PEXTRB, s, d, lane);
                if signed {
                    enc::extend(&mut self.ops, Ext::Sx8To32, d, Rm::Reg(d));
                }
            }
            Lanes::I16x8 => {
                self.pi(Packed::PEXTRW, d, s, lane);
                if signed {
                    enc::extend(&mut self.ops, Ext::Sx16To32, d, Rm::Reg(d));
                }
            }
            Lanes::I32x4 if lane == 0 => enc::movd_from_xmm(&mut self.ops, false, d, s),
            Lanes::I32x4 => self.pi(Packed::PEXTRD, s, d, lane),
            Lanes::I64x2 if lane == 0 => enc::movd_from_xmm(&mut self.ops, true, d, s),
            Lanes::I64x2 => self.pi(Packed::PEXTRQ, s, d, lane),
        }
    }

    pub(super) fn simd_replace_lane(&mut self, dst: Reg, src: Reg, lanes: Lanes, lane: u8) {
        let (d, s) = (dst.hw, src.hw);
        if src.class == RegClass::Float {
            match (lanes, lane) {
                (Lanes::I64x2, 0) => self.sse(Packed::MOVSD, d, s),
                (Lanes::I64x2, _) => self.sse(Packed::MOVLHPS, d, s),
                _ => self.pi(Packed::INSERTPS, d, s, lane << 4),
            }
            return;
        }
        let op = match lanes {
            Lanes::I8x16 => Packed::PINSRB,
            Lanes::I16x8 => Packed::PINSRW,
            Lanes::I32x4 => Packed::PINSRD,
            Lanes::I64x2 => Packed::PINSRQ,
        };
        self.pi(op, d, s, lane);
    }

    pub(super) fn simd_shuffle(&mut self, dst: Reg, lhs: Reg, rhs: Reg, lanes: [u8; 16]) {
        // One pshufb per operand that contributes (index 0x80 selects zero), or-ed.
        let (d, l, r) = (dst.hw, lhs.hw, rhs.hw);
        let mask = |from_rhs: bool| {
            let bytes = lanes.map(|i| match (i >= 16, from_rhs) {
                (false, false) => i,
                (true, true) => i - 16,
                _ => 0x80,
            });
            u128::from_le_bytes(bytes)
        };
        let uses_lhs = lanes.iter().any(|&i| i < 16);
        let uses_rhs = lanes.iter().any(|&i| i >= 16);
        if self.avx {
            // Three operands: no copies, and `dst` written last.
            if !(uses_lhs && uses_rhs) {
                self.constant(X15, mask(uses_rhs));
                return self.v3(Packed::PSHUFB, d, if uses_rhs { r } else { l }, X15);
            }
            self.constant(X15, mask(true));
            self.v3(Packed::PSHUFB, X0, r, X15);
            self.constant(X15, mask(false));
            self.v3(Packed::PSHUFB, X15, l, X15);
            return self.v3(Packed::POR, d, X0, X15);
        }
        if !(uses_lhs && uses_rhs) {
            self.movaps(X0, if uses_rhs { r } else { l });
            self.constant(X15, mask(uses_rhs));
            self.sse(Packed::PSHUFB, X0, X15);
            self.movaps(d, X0);
            return;
        }
        self.movaps(X0, r);
        self.constant(X15, mask(true));
        self.sse(Packed::PSHUFB, X0, X15);
        // `rhs` has been read: `d` may now be overwritten even if it is `rhs`.
        self.movaps(d, l);
        self.constant(X15, mask(false));
        self.sse(Packed::PSHUFB, d, X15);
        self.sse(Packed::POR, d, X0);
    }

    /// The splat, extend and zero loads; returns the pc of the access.
    pub(super) fn simd_load(&mut self, d: u8, m: enc::Mem, kind: LoadKind) -> u32 {
        let pc = self.offset();
        let rm = Rm::from(m);
        match kind {
            LoadKind::V128Splat(Lanes::I8x16) => {
                enc::packed_imm(&mut self.ops, Packed::PINSRB, d, rm, 0);
                self.sse(Packed::PXOR, X15, X15);
                self.sse(Packed::PSHUFB, d, X15);
            }
            LoadKind::V128Splat(Lanes::I16x8) => {
                enc::packed_imm(&mut self.ops, Packed::PINSRW, d, rm, 0);
                self.pi(Packed::PSHUFLW, d, d, 0);
                self.pi(Packed::PSHUFD, d, d, 0);
            }
            LoadKind::V128Splat(Lanes::I32x4) => {
                enc::packed(&mut self.ops, Packed::MOVSS, d, rm);
                self.pi(Packed::PSHUFD, d, d, 0);
            }
            LoadKind::V128Splat(Lanes::I64x2) => {
                enc::packed(&mut self.ops, Packed::MOVQ_LOAD, d, rm);
                self.sse(Packed::PUNPCKLQDQ, d, d);
            }
            LoadKind::V128Extend(lanes, signed) => {
                enc::packed(&mut self.ops, pmov_extend(lanes, signed), d, rm)
            }
            LoadKind::V128Zero(Lanes::I32x4) => enc::packed(&mut self.ops, Packed::MOVSS, d, rm),
            LoadKind::V128Zero(_) => enc::packed(&mut self.ops, Packed::MOVQ_LOAD, d, rm),
            _ => unreachable!("not a SIMD load: {kind:?}"),
        }
        pc
    }
}
