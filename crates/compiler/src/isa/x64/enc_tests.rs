//! Tests of [`super::enc`]: every encoder, over all 16 registers and a range of memory
//! operands and immediates, decoded with iced-x86. Each encoding must decode (as exactly one
//! instruction that uses every byte) to the intended instruction, and have the minimal
//! length, computed here independently of the encoder.

use super::enc::*;
use iced_x86::{Decoder, DecoderOptions, Formatter, IntelFormatter, MemorySizeOptions, NumberBase};

const R64: [&str; 16] = [
    "rax", "rcx", "rdx", "rbx", "rsp", "rbp", "rsi", "rdi", "r8", "r9", "r10", "r11", "r12", "r13",
    "r14", "r15",
];
const R32: [&str; 16] = [
    "eax", "ecx", "edx", "ebx", "esp", "ebp", "esi", "edi", "r8d", "r9d", "r10d", "r11d", "r12d",
    "r13d", "r14d", "r15d",
];
const R16: [&str; 16] = [
    "ax", "cx", "dx", "bx", "sp", "bp", "si", "di", "r8w", "r9w", "r10w", "r11w", "r12w", "r13w",
    "r14w", "r15w",
];
const R8: [&str; 16] = [
    "al", "cl", "dl", "bl", "spl", "bpl", "sil", "dil", "r8b", "r9b", "r10b", "r11b", "r12b",
    "r13b", "r14b", "r15b",
];

fn xmm(r: u8) -> String {
    format!("xmm{r}")
}

fn r(w64: bool, reg: u8) -> &'static str {
    if w64 {
        R64[reg as usize]
    } else {
        R32[reg as usize]
    }
}

/// Displacements: the disp8/disp32 boundaries and the extremes.
const DISPS: [i32; 14] = [
    0,
    1,
    -1,
    8,
    -40,
    127,
    -128,
    128,
    -129,
    0x7fff,
    -0x1_0000,
    0x12345,
    i32::MIN,
    i32::MAX,
];

/// `[base + disp]` for every base and displacement, and `[base + index + disp]` for every
/// base, every index but rsp, and the displacements at the boundaries.
fn mems() -> Vec<Mem> {
    let mut v = Vec::new();
    for base in 0..16 {
        for &d in &DISPS {
            v.push(Mem::base(base, d));
        }
        for index in (0..16).filter(|&i| i != 4) {
            for d in [0, -128, 127, 128, -129, i32::MIN, i32::MAX] {
                v.push(Mem::indexed(base, index, d));
            }
        }
    }
    v
}

/// Fewer memory operands (for forms that multiply them by many registers or immediates):
/// every base with the boundary displacements, and a few indexed ones.
fn some_mems() -> Vec<Mem> {
    let mut v = Vec::new();
    for base in 0..16 {
        for d in [0, -128, 127, 128, -129, i32::MIN] {
            v.push(Mem::base(base, d));
        }
        for index in [0, 6, 8, 12, 13, 15] {
            for d in [0, 127, 128] {
                v.push(Mem::indexed(base, index, d));
            }
        }
    }
    v
}

/// Immediates around the imm8/imm32 boundaries.
const IMMS: [i32; 12] = [
    0,
    1,
    -1,
    63,
    127,
    -128,
    128,
    -129,
    255,
    0x1234_5678,
    i32::MIN,
    i32::MAX,
];

/// iced's Intel syntax: decimal numbers, signed immediates, sizes on every memory operand.
fn disasm(bytes: &[u8]) -> (String, usize) {
    let mut decoder = Decoder::with_ip(64, bytes, 0, DecoderOptions::NONE);
    let ins = decoder.decode();
    assert!(!ins.is_invalid(), "invalid encoding {bytes:02x?}");
    let mut f = IntelFormatter::new();
    let o = f.options_mut();
    o.set_number_base(NumberBase::Decimal);
    o.set_signed_immediate_operands(true);
    o.set_memory_size_options(MemorySizeOptions::Always);
    let mut text = String::new();
    f.format(&ins, &mut text);
    (text, ins.len())
}

/// Runs one encoder and checks its bytes against the expected text and length.
#[track_caller]
fn check(emit: impl FnOnce(&mut Vec<u8>), expect: &str, len: usize) {
    let mut bytes = Vec::new();
    emit(&mut bytes);
    let (text, n) = disasm(&bytes);
    assert_eq!(text, expect, "bytes {bytes:02x?}");
    assert_eq!(n, bytes.len(), "{expect}: trailing bytes in {bytes:02x?}");
    assert_eq!(
        bytes.len(),
        len,
        "{expect}: not the minimal length: {bytes:02x?}"
    );
}

/// iced's text of a memory operand.
fn mem_text(size: &str, m: Mem) -> String {
    let mut t = format!("{size} ptr [{}", R64[m.base_reg() as usize]);
    if let Some(i) = m.index_reg() {
        t += "+";
        t += R64[i as usize];
    }
    if m.disp() > 0 {
        t += &format!("+{}", m.disp());
    } else if m.disp() < 0 {
        t += &format!("-{}", (m.disp() as i64).unsigned_abs());
    }
    t + "]"
}

/// Bytes of ModRM + SIB + displacement for a memory operand.
fn mem_len(m: Mem) -> usize {
    let sib = m.index_reg().is_some() || m.base_reg() & 7 == 4;
    let disp = if m.disp() == 0 && m.base_reg() & 7 != 5 {
        0
    } else if (-128..=127).contains(&m.disp()) {
        1
    } else {
        4
    };
    1 + sib as usize + disp
}

/// 1 if a REX prefix is needed: REX.W, an extended register anywhere, or a byte register
/// 4-7.
fn rex_len(w64: bool, regs: &[u8], byte_regs: &[u8]) -> usize {
    (w64 || regs.iter().any(|&r| r >= 8) || byte_regs.iter().any(|&r| (4..8).contains(&r))) as usize
}

fn mem_regs(m: Mem) -> Vec<u8> {
    let mut v = vec![m.base_reg()];
    v.extend(m.index_reg());
    v
}

fn regs() -> impl Iterator<Item = u8> {
    0..16
}

fn pairs() -> impl Iterator<Item = (u8, u8)> {
    regs().flat_map(|a| regs().map(move |b| (a, b)))
}

#[test]
fn mov_reg_reg() {
    for w64 in [false, true] {
        for (d, s) in pairs() {
            check(
                |b| mov_rr(b, w64, d, s),
                &format!("mov {},{}", r(w64, d), r(w64, s)),
                2 + rex_len(w64, &[d, s], &[]),
            );
        }
    }
}

#[test]
fn mov_load_and_store() {
    let mems = mems();
    for w64 in [false, true] {
        let (size, width) = if w64 {
            ("qword", Width::Q)
        } else {
            ("dword", Width::D)
        };
        for d in regs() {
            for &m in &mems {
                let rexw = rex_len(w64, &[&[d][..], &mem_regs(m)].concat(), &[]);
                check(
                    |b| mov_load(b, w64, d, m),
                    &format!("mov {},{}", r(w64, d), mem_text(size, m)),
                    1 + rexw + mem_len(m),
                );
                check(
                    |b| mov_store(b, width, m, d),
                    &format!("mov {},{}", mem_text(size, m), r(w64, d)),
                    1 + rexw + mem_len(m),
                );
            }
        }
    }
    // 8- and 16-bit stores.
    for s in regs() {
        for &m in &some_mems() {
            let regs = [&[s][..], &mem_regs(m)].concat();
            check(
                |b| mov_store(b, Width::B, m, s),
                &format!("mov {},{}", mem_text("byte", m), R8[s as usize]),
                1 + rex_len(false, &regs, &[s]) + mem_len(m),
            );
            check(
                |b| mov_store(b, Width::W, m, s),
                &format!("mov {},{}", mem_text("word", m), R16[s as usize]),
                2 + rex_len(false, &regs, &[]) + mem_len(m),
            );
        }
    }
}

#[test]
fn mov_store_immediate() {
    for &m in &some_mems() {
        let rex = rex_len(false, &mem_regs(m), &[]);
        for imm in IMMS {
            check(
                |b| mov_store_imm(b, Width::B, m, imm),
                &format!("mov {},{}", mem_text("byte", m), imm as i8),
                2 + rex + mem_len(m),
            );
            check(
                |b| mov_store_imm(b, Width::W, m, imm),
                &format!("mov {},{}", mem_text("word", m), imm as i16),
                4 + rex + mem_len(m),
            );
            check(
                |b| mov_store_imm(b, Width::D, m, imm),
                &format!("mov {},{imm}", mem_text("dword", m)),
                5 + rex + mem_len(m),
            );
            check(
                |b| mov_store_imm(b, Width::Q, m, imm),
                &format!("mov {},{imm}", mem_text("qword", m)),
                6 + mem_len(m),
            );
        }
    }
}

#[test]
fn mov_immediate() {
    let imms: Vec<i64> = IMMS
        .iter()
        .map(|&i| i as i64)
        .chain([
            u32::MAX as i64,
            0x8000_0000,
            1 << 32,
            -(1 << 32),
            i64::MIN,
            i64::MAX,
        ])
        .collect();
    for d in regs() {
        let rex = (d >= 8) as usize;
        for &imm in &imms {
            check(
                |b| mov_imm(b, false, d, imm),
                &format!("mov {},{}", R32[d as usize], imm as i32),
                5 + rex,
            );
            let (text, len) = if (0..=u32::MAX as i64).contains(&imm) {
                (format!("mov {},{}", R32[d as usize], imm as i32), 5 + rex)
            } else if imm == imm as i32 as i64 {
                (format!("mov {},{imm}", R64[d as usize]), 7)
            } else {
                (format!("mov {},{imm}", R64[d as usize]), 10)
            };
            check(|b| mov_imm(b, true, d, imm), &text, len);
        }
    }
}

const ALU_OPS: [(Alu, &str); 6] = [
    (Alu::Add, "add"),
    (Alu::Or, "or"),
    (Alu::And, "and"),
    (Alu::Sub, "sub"),
    (Alu::Xor, "xor"),
    (Alu::Cmp, "cmp"),
];

#[test]
fn alu() {
    for (op, name) in ALU_OPS {
        for w64 in [false, true] {
            for (d, s) in pairs() {
                check(
                    |b| alu_rr(b, op, w64, d, s),
                    &format!("{name} {},{}", r(w64, d), r(w64, s)),
                    2 + rex_len(w64, &[d, s], &[]),
                );
            }
            for d in regs() {
                for &m in &some_mems() {
                    let size = if w64 { "qword" } else { "dword" };
                    check(
                        |b| alu_load(b, op, w64, d, m),
                        &format!("{name} {},{}", r(w64, d), mem_text(size, m)),
                        1 + rex_len(w64, &[&[d][..], &mem_regs(m)].concat(), &[]) + mem_len(m),
                    );
                }
                for imm in IMMS {
                    let rex = rex_len(w64, &[d], &[]);
                    let len = if (-128..=127).contains(&imm) {
                        3 + rex
                    } else if d == 0 {
                        5 + rex
                    } else {
                        6 + rex
                    };
                    check(
                        |b| alu_ri(b, op, w64, d, imm),
                        &format!("{name} {},{imm}", r(w64, d)),
                        len,
                    );
                }
            }
        }
    }
}

#[test]
fn test_imul_cmov_bits_div() {
    const CCS: [(Cc, &str); 12] = [
        (Cc::B, "b"),
        (Cc::Ae, "ae"),
        (Cc::E, "e"),
        (Cc::Ne, "ne"),
        (Cc::Be, "be"),
        (Cc::A, "a"),
        (Cc::P, "p"),
        (Cc::Np, "np"),
        (Cc::L, "l"),
        (Cc::Ge, "ge"),
        (Cc::Le, "le"),
        (Cc::G, "g"),
    ];
    for w64 in [false, true] {
        for (d, s) in pairs() {
            let rex = rex_len(w64, &[d, s], &[]);
            let (rd, rs) = (r(w64, d), r(w64, s));
            check(
                |b| test_rr(b, w64, d, s),
                &format!("test {rd},{rs}"),
                2 + rex,
            );
            check(
                |b| imul_rr(b, w64, d, s),
                &format!("imul {rd},{rs}"),
                3 + rex,
            );
            for imm in IMMS {
                let len = if (-128..=127).contains(&imm) { 3 } else { 6 };
                // iced shows `imul r, r, imm` with equal registers as `imul r, imm`.
                let text = if d == s {
                    format!("imul {rd},{imm}")
                } else {
                    format!("imul {rd},{rs},{imm}")
                };
                check(|b| imul_rri(b, w64, d, s, imm), &text, len + rex);
            }
            for (cc, name) in CCS {
                check(
                    |b| cmovcc(b, cc, w64, d, s),
                    &format!("cmov{name} {rd},{rs}"),
                    3 + rex,
                );
            }
            for (op, name, len) in [
                (BitOp::Bsf, "bsf", 3),
                (BitOp::Bsr, "bsr", 3),
                (BitOp::Popcnt, "popcnt", 4),
            ] {
                check(
                    |b| bit_op(b, op, w64, d, s),
                    &format!("{name} {rd},{rs}"),
                    len + rex,
                );
            }
        }
        for s in regs() {
            let rex = rex_len(w64, &[s], &[]);
            check(
                |b| div(b, false, w64, s),
                &format!("div {}", r(w64, s)),
                2 + rex,
            );
            check(
                |b| div(b, true, w64, s),
                &format!("idiv {}", r(w64, s)),
                2 + rex,
            );
        }
    }
    for d in regs() {
        for (cc, name) in CCS {
            check(
                |b| setcc(b, cc, d),
                &format!("set{name} {}", R8[d as usize]),
                3 + rex_len(false, &[d], &[d]),
            );
        }
        for bit in [0, 1, 31, 63] {
            check(
                |b| btc_imm(b, d, bit),
                &format!("btc {},{bit}", R64[d as usize]),
                5,
            );
        }
    }
}

#[test]
fn lea_call_jmp() {
    for &m in &mems() {
        let rex = rex_len(false, &mem_regs(m), &[]);
        for d in regs() {
            check(
                |b| lea(b, d, m),
                &format!(
                    "lea {},{}",
                    R64[d as usize],
                    mem_text("qword", m).replace("qword ptr ", "")
                ),
                2 + mem_len(m),
            );
        }
        check(
            |b| call_mem(b, m),
            &format!("call {}", mem_text("qword", m)),
            1 + rex + mem_len(m),
        );
        check(
            |b| jmp_mem(b, m),
            &format!("jmp {}", mem_text("qword", m)),
            1 + rex + mem_len(m),
        );
    }
}

#[test]
fn shifts() {
    for (op, name) in [
        (Shift::Rol, "rol"),
        (Shift::Ror, "ror"),
        (Shift::Shl, "shl"),
        (Shift::Shr, "shr"),
        (Shift::Sar, "sar"),
    ] {
        for w64 in [false, true] {
            for d in regs() {
                let rex = rex_len(w64, &[d], &[]);
                check(
                    |b| shift_cl(b, op, w64, d),
                    &format!("{name} {},cl", r(w64, d)),
                    2 + rex,
                );
                for n in [1, 2, 7, 31, 32, 63] {
                    check(
                        |b| shift_imm(b, op, w64, d, n),
                        &format!("{name} {},{n}", r(w64, d)),
                        if n == 1 { 2 } else { 3 } + rex,
                    );
                }
            }
        }
    }
}

#[test]
fn extensions() {
    const EXTS: [(Ext, &str, bool, &str, bool); 7] = [
        // (kind, mnemonic, 64-bit destination, source size, byte source)
        (Ext::Zx8, "movzx", false, "byte", true),
        (Ext::Zx16, "movzx", false, "word", false),
        (Ext::Sx8To32, "movsx", false, "byte", true),
        (Ext::Sx16To32, "movsx", false, "word", false),
        (Ext::Sx8To64, "movsx", true, "byte", true),
        (Ext::Sx16To64, "movsx", true, "word", false),
        (Ext::Sx32To64, "movsxd", true, "dword", false),
    ];
    let mems = some_mems();
    for (ext, name, w64, size, byte_src) in EXTS {
        let op_len = if ext == Ext::Sx32To64 { 1 } else { 2 };
        for d in regs() {
            for s in regs() {
                let src = match size {
                    "byte" => R8[s as usize],
                    "word" => R16[s as usize],
                    _ => R32[s as usize],
                };
                let byte_regs: &[u8] = if byte_src { &[s] } else { &[] };
                check(
                    |b| extend(b, ext, d, Rm::Reg(s)),
                    &format!("{name} {},{src}", r(w64, d)),
                    op_len + 1 + rex_len(w64, &[d, s], byte_regs),
                );
            }
            for &m in &mems {
                let regs = [&[d][..], &mem_regs(m)].concat();
                check(
                    |b| extend(b, ext, d, Rm::Mem(m)),
                    &format!("{name} {},{}", r(w64, d), mem_text(size, m)),
                    op_len + rex_len(w64, &regs, &[]) + mem_len(m),
                );
            }
        }
    }
}

#[test]
fn sse_forms() {
    const OPS: [(Packed, &str, &str); 24] = [
        (Packed::MOVSS, "movss", "dword"),
        (Packed::MOVSD, "movsd", "qword"),
        (Packed::MOVAPS, "movaps", "xmmword"),
        (Packed::XORPS, "xorps", "xmmword"),
        (Packed::ANDPS, "andps", "xmmword"),
        (Packed::ORPS, "orps", "xmmword"),
        (Packed::UCOMISS, "ucomiss", "dword"),
        (Packed::UCOMISD, "ucomisd", "qword"),
        (Packed::SQRTSS, "sqrtss", "dword"),
        (Packed::SQRTSD, "sqrtsd", "qword"),
        (Packed::ADDSS, "addss", "dword"),
        (Packed::ADDSD, "addsd", "qword"),
        (Packed::MULSS, "mulss", "dword"),
        (Packed::MULSD, "mulsd", "qword"),
        (Packed::SUBSS, "subss", "dword"),
        (Packed::SUBSD, "subsd", "qword"),
        (Packed::MINSS, "minss", "dword"),
        (Packed::MINSD, "minsd", "qword"),
        (Packed::DIVSS, "divss", "dword"),
        (Packed::DIVSD, "divsd", "qword"),
        (Packed::MAXSS, "maxss", "dword"),
        (Packed::MAXSD, "maxsd", "qword"),
        (Packed::CVTSS2SD, "cvtss2sd", "dword"),
        (Packed::CVTSD2SS, "cvtsd2ss", "qword"),
    ];
    let mems = some_mems();
    for (op, name, size) in OPS {
        let prefix =
            (op != Packed::MOVAPS && !name.ends_with("ps") && op != Packed::UCOMISS) as usize;
        for (d, s) in pairs() {
            check(
                |b| packed(b, op, d, Rm::Reg(s)),
                &format!("{name} {},{}", xmm(d), xmm(s)),
                prefix + 3 + rex_len(false, &[d, s], &[]),
            );
        }
        for d in regs() {
            for &m in &mems {
                let regs = [&[d][..], &mem_regs(m)].concat();
                check(
                    |b| packed(b, op, d, Rm::Mem(m)),
                    &format!("{name} {},{}", xmm(d), mem_text(size, m)),
                    prefix + 2 + rex_len(false, &regs, &[]) + mem_len(m),
                );
            }
        }
    }
    for (op, name, size) in [
        (Packed::MOVSS, "movss", "dword"),
        (Packed::MOVSD, "movsd", "qword"),
    ] {
        for s in regs() {
            for &m in &mems {
                let regs = [&[s][..], &mem_regs(m)].concat();
                check(
                    |b| sse_store(b, op, m, s),
                    &format!("{name} {},{}", mem_text(size, m), xmm(s)),
                    3 + rex_len(false, &regs, &[]) + mem_len(m),
                );
            }
        }
    }
}

#[test]
fn gpr_xmm_moves_and_conversions() {
    for w64 in [false, true] {
        let mov = if w64 { "movq" } else { "movd" };
        for (x, g) in pairs() {
            let rex = rex_len(w64, &[x, g], &[]);
            let gr = r(w64, g);
            check(
                |b| movd_to_xmm(b, w64, x, g),
                &format!("{mov} {},{gr}", xmm(x)),
                4 + rex,
            );
            check(
                |b| movd_from_xmm(b, w64, g, x),
                &format!("{mov} {gr},{}", xmm(x)),
                4 + rex,
            );
            for (f64_, sfx) in [(false, "ss"), (true, "sd")] {
                check(
                    |b| cvt_int_to_float(b, f64_, w64, x, g),
                    &format!("cvtsi2{sfx} {},{gr}", xmm(x)),
                    4 + rex,
                );
                check(
                    |b| cvt_float_to_int(b, f64_, w64, g, x),
                    &format!("cvtt{sfx}2si {gr},{}", xmm(x)),
                    4 + rex,
                );
            }
        }
    }
    for (d, s) in pairs() {
        for mode in 0..4 {
            for (f64_, sfx) in [(false, "ss"), (true, "sd")] {
                check(
                    |b| round(b, f64_, d, s, mode),
                    &format!("round{sfx} {},{},{mode}", xmm(d), xmm(s)),
                    6 + rex_len(false, &[d, s], &[]),
                );
            }
        }
    }
}

/// The examples from the task: frame-slot loads and small immediates are short.
#[test]
fn short_examples() {
    let mut b = Vec::new();
    mov_load(&mut b, false, 6, Mem::base(5, -0x28));
    assert_eq!(b, [0x8B, 0x75, 0xD8]); // mov esi, [rbp-0x28]
    b.clear();
    alu_ri(&mut b, Alu::Add, false, 6, 1);
    assert_eq!(b, [0x83, 0xC6, 0x01]); // add esi, 1
    b.clear();
    packed(&mut b, Packed::ADDSD, 9, Rm::Reg(1));
    assert_eq!(b, [0xF2, 0x44, 0x0F, 0x58, 0xC9]); // addsd xmm9, xmm1: F2 before REX
}

/// The macro assembler uses the short forms for the operations inside loops.
#[test]
fn masm_emits_short_forms() {
    use super::X64Masm;
    use crate::masm::*;
    use crate::vmctx::VMOffsets;

    let (esi, edi) = (Reg::int(6), Reg::int(7));
    let mut m = X64Masm::new(&VMOffsets::default());
    m.load(esi, Address::Frame(-0x28), OperandSize::S32);
    m.alu(AluOp::Add, esi, esi, RegImm::Imm(1), OperandSize::S32);
    m.store(RegImm::Reg(esi), Address::Vmctx(8), OperandSize::S32);
    m.store(RegImm::Imm(-1), Address::Outgoing(0), OperandSize::S64);
    m.load_heap(
        esi,
        HeapAddress {
            base: None,
            index: edi,
            offset: 4,
        },
        LoadKind::I32U8,
    );
    m.alu(AluOp::Mul, esi, edi, RegImm::Imm(10), OperandSize::S32);
    m.shift(ShiftOp::Shl, esi, esi, RegImm::Imm(2), OperandSize::S32);
    m.cmp_set(IntCmp::LtS, esi, esi, RegImm::Reg(edi), OperandSize::S32);
    m.float_binop(
        FloatBinOp::Add,
        Reg::float(1),
        Reg::float(1),
        Reg::float(2),
        OperandSize::S64,
    );
    let code = m.finish(0).unwrap();
    let mut at = 0;
    let mut texts = Vec::new();
    while at < code.len() {
        let (text, n) = disasm(&code[at..]);
        texts.push(text);
        at += n;
    }
    assert_eq!(
        texts,
        [
            "mov esi,dword ptr [rbp-40]",
            "add esi,1",
            "mov dword ptr [r15+8],esi",
            "mov qword ptr [rsp],-1",
            "movzx esi,byte ptr [r14+rdi+4]",
            "imul esi,edi,10",
            "shl esi,2",
            "cmp esi,edi",
            "setl sil",
            "movzx esi,sil",
            "addsd xmm1,xmm2",
        ]
    );
    // 3 + 3 + 4 + 8 + 6 + 3 + 3 + 2 + 4 + 4 + 4 bytes.
    assert_eq!(code.len(), 44);
}

/// Decodes `bytes`, placed at address `ip`, into instructions (absolute branch targets).
fn disasm_at(bytes: &[u8], ip: u64) -> Vec<String> {
    let mut decoder = Decoder::with_ip(64, bytes, ip, DecoderOptions::NONE);
    let mut f = IntelFormatter::new();
    f.options_mut().set_number_base(NumberBase::Hexadecimal);
    let mut out = Vec::new();
    while decoder.can_decode() {
        let ins = decoder.decode();
        assert!(!ins.is_invalid(), "invalid encoding in {bytes:02x?}");
        let mut text = String::new();
        f.format(&ins, &mut text);
        out.push(text);
    }
    out
}

/// Jump slots: `mov eax, index; nop; jmp thunk`, the displacement 4-byte aligned, and what
/// the patched word makes of them.
#[test]
fn jump_slots_and_patches() {
    use super::lazy::*;
    let base = 0x4000_0000usize;
    let thunk = base - 16;
    let s = jump_slots(0x1_0005, 2, base, thunk).unwrap();
    assert_eq!(s.len(), 2 * SLOT_SIZE);
    let lines = disasm_at(&s[..SLOT_SIZE], base as u64);
    assert_eq!(
        lines,
        [
            "mov eax,10005h",
            "xchg ax,ax", // 66 90, the two-byte nop
            "jmp 000000003FFFFFF0h",
            "int3",
            "int3",
            "int3",
            "int3"
        ]
    );
    assert_eq!(
        disasm_at(&s[SLOT_SIZE..2 * SLOT_SIZE], (base + SLOT_SIZE) as u64)[..3],
        ["mov eax,10006h", "xchg ax,ax", "jmp 000000003FFFFFF0h"]
    );
    assert_eq!(
        s[SLOT_PATCH_OFFSET - 1],
        0xE9,
        "the patched word is the jmp's rel32"
    );
    assert_eq!(SLOT_PATCH_OFFSET % 4, 0);
    // Patching the word redirects the jump; the range is that of rel32.
    let mut patched = s[..SLOT_SIZE].to_vec();
    let w = slot_jump(base, base + 0x1234_5670).unwrap();
    patched[SLOT_PATCH_OFFSET..SLOT_PATCH_OFFSET + 4].copy_from_slice(&w.to_le_bytes());
    assert_eq!(disasm_at(&patched, base as u64)[2], "jmp 0000000052345670h");
    let hi = 0x7_0000_0000usize;
    let end = hi + SLOT_PATCH_OFFSET + 4;
    assert_eq!(
        slot_jump(hi, end + i32::MAX as usize),
        Some(i32::MAX as u32)
    );
    assert_eq!(slot_jump(hi, end + i32::MAX as usize + 1), None);
    assert_eq!(slot_jump(hi, end - (1usize << 31)), Some(1 << 31));
    assert_eq!(slot_jump(hi, end - (1usize << 31) - 1), None);
    assert_eq!(
        disasm_at(&lazy_thunk().unwrap(), 0),
        ["jmp qword ptr [r15+40h]"]
    );
}

/// A direct call is `call rel32` whose displacement `resolve_call` fills in.
#[test]
fn direct_call_relocation() {
    use super::lazy::resolve_call;
    use super::X64Masm;
    use crate::masm::*;
    use crate::vmctx::VMOffsets;

    let mut m = X64Masm::new(&VMOffsets::default());
    // Whatever the offset, the displacement is 4-byte aligned (a nop pads before the call).
    for pad in 0..4 {
        let mut m = X64Masm::new(&VMOffsets::default());
        for _ in 0..pad {
            m.nop_for_test();
        }
        let ret = m.call(CallTarget::Direct) as usize;
        assert_eq!(ret % 4, 0, "pad {pad}");
        let code = m.finish(0).unwrap();
        assert_eq!(code[ret - 5..ret], [0xE8, 0, 0, 0, 0]);
        let texts = disasm_at(&code[..ret], 0);
        assert_eq!(texts.len(), pad + 1 + usize::from(pad != 3), "{texts:?}");
    }
    let ret = m.call(CallTarget::Direct) as usize;
    let mut code = m.finish(0).unwrap();
    assert_eq!(code[ret - 5..ret], [0xE8, 0, 0, 0, 0]);
    let base = 0x4000_0000usize;
    let field = base + ret - 4;
    resolve_call(&mut code[ret - 4..ret], field, base - 0x100).unwrap();
    assert_eq!(
        disasm_at(&code[ret - 5..ret], (base + ret - 5) as u64),
        ["call 000000003FFFFF00h"]
    );
    assert!(resolve_call(&mut code[ret - 4..ret], field, field + 4 + (1 << 31)).is_err());
}

/// A direct tail call tears the frame down and is `jmp rel32`, its displacement 4-byte
/// aligned like a call's, filled in by `resolve_call` and retargeted by `retarget_word`.
#[test]
fn direct_tail_call_relocation() {
    use super::lazy::{resolve_call, retarget_word};
    use super::X64Masm;
    use crate::masm::*;
    use crate::vmctx::VMOffsets;

    for pad in 0..4 {
        let mut m = X64Masm::new(&VMOffsets::default());
        for _ in 0..pad {
            m.nop_for_test();
        }
        let end = m.tail_call(CallTarget::Direct) as usize;
        assert_eq!(end % 4, 0, "pad {pad}");
        let mut code = m.finish(0).unwrap();
        assert_eq!(code[end - 5..end], [0xE9, 0, 0, 0, 0]);
        let base = 0x4000_0000usize;
        let field = base + end - 4;
        resolve_call(&mut code[end - 4..end], field, base - 0x100).unwrap();
        let texts = disasm_at(&code[pad..end], (base + pad) as u64);
        assert_eq!(texts[..2], ["mov rsp,rbp", "pop rbp"], "pad {pad}");
        assert_eq!(texts.last().unwrap(), "jmp 000000003FFFFF00h", "pad {pad}");
        let pads = &texts[2..texts.len() - 1];
        assert!(
            pads.iter()
                .all(|t| t.starts_with("nop") || t == "xchg ax,ax"),
            "{texts:?}"
        );
        let w = retarget_word(0, field, base + 0x1000).unwrap();
        code[end - 4..end].copy_from_slice(&w.to_le_bytes());
        let texts = disasm_at(&code[end - 5..end], (base + end - 5) as u64);
        assert_eq!(texts, ["jmp 0000000040001000h"], "pad {pad}");
    }
}

/// A tail call through a funcref switches vmctx, stack limit and memory base like a call,
/// after the frame is gone, and jumps; `reload_context` restores both registers.
#[test]
fn funcref_tail_call_and_context_reload() {
    use super::X64Masm;
    use crate::masm::*;
    use crate::vmctx::VMOffsets;

    let mut m = X64Masm::new(&VMOffsets::default());
    m.tail_call(CallTarget::FuncRef {
        funcref: Reg::int(6),
    });
    m.reload_context();
    let code = m.finish(0).unwrap();
    assert_eq!(
        disasm_at(&code, 0),
        [
            "mov rsp,rbp",
            "pop rbp",
            "mov r11,r15",
            "mov r15,[rsi+8]",
            "mov rax,[r11]",
            "mov [r15],rax",
            "mov r14,[r15+8]",
            "jmp qword ptr [rsi]",
            "mov r15,[rbp-8]",
            "mov r14,[r15+8]",
        ]
    );
}

/// The packed (v128) forms: every register pair, the prefix and REX bytes minimal.
#[test]
fn packed_sse_forms() {
    let ops: [(Packed, &str); 37] = [
        (Packed::MOVUPS, "movups"),
        (Packed::PAND, "pand"),
        (Packed::PANDN, "pandn"),
        (Packed::POR, "por"),
        (Packed::PXOR, "pxor"),
        (Packed::PCMPEQB, "pcmpeqb"),
        (Packed::PCMPEQW, "pcmpeqw"),
        (Packed::PCMPEQD, "pcmpeqd"),
        (Packed::PCMPGTB, "pcmpgtb"),
        (Packed::PCMPGTW, "pcmpgtw"),
        (Packed::PCMPGTD, "pcmpgtd"),
        (Packed::PADDB, "paddb"),
        (Packed::PADDW, "paddw"),
        (Packed::PADDD, "paddd"),
        (Packed::PADDQ, "paddq"),
        (Packed::PSUBB, "psubb"),
        (Packed::PSUBW, "psubw"),
        (Packed::PSUBD, "psubd"),
        (Packed::PSUBQ, "psubq"),
        (Packed::PMULLW, "pmullw"),
        (Packed::PMULUDQ, "pmuludq"),
        (Packed::PMAXUB, "pmaxub"),
        (Packed::PMINUB, "pminub"),
        (Packed::ADDPS, "addps"),
        (Packed::ADDPD, "addpd"),
        (Packed::SUBPS, "subps"),
        (Packed::SUBPD, "subpd"),
        (Packed::MULPS, "mulps"),
        (Packed::MULPD, "mulpd"),
        (Packed::DIVPS, "divps"),
        (Packed::DIVPD, "divpd"),
        (Packed::SQRTPS, "sqrtps"),
        (Packed::SQRTPD, "sqrtpd"),
        (Packed::MINPS, "minps"),
        (Packed::MINPD, "minpd"),
        (Packed::MAXPS, "maxps"),
        (Packed::MAXPD, "maxpd"),
    ];
    for (op, name) in ops {
        let prefix = (!name.ends_with("ps")) as usize;
        for (d, s) in pairs() {
            check(
                |b| packed(b, op, d, Rm::Reg(s)),
                &format!("{name} {},{}", xmm(d), xmm(s)),
                prefix + 3 + rex_len(false, &[d, s], &[]),
            );
        }
    }
    for x in regs() {
        for (op, digit, name) in [
            (0x72, 6, "pslld"),
            (0x72, 2, "psrld"),
            (0x73, 6, "psllq"),
            (0x73, 2, "psrlq"),
        ] {
            check(
                |b| pshift_imm(b, op, digit, x, 31),
                &format!("{name} {},31", xmm(x)),
                5 + rex_len(false, &[x], &[]),
            );
        }
        for (double, name) in [(false, "cmpltps"), (true, "cmpltpd")] {
            check(
                |b| cmpp(b, double, x, 3, 1),
                &format!("{name} {},xmm3", xmm(x)),
                double as usize + 4 + rex_len(false, &[x], &[]),
            );
        }
        for g in regs() {
            check(
                |b| pinsrq(b, x, g, 1),
                &format!("pinsrq {},{},1", xmm(x), r(true, g)),
                7,
            );
        }
    }
    let mems = some_mems();
    for x in [0, 9] {
        for &m in &mems {
            let regs = [&[x][..], &mem_regs(m)].concat();
            let rex = rex_len(false, &regs, &[]);
            check(
                |b| movups_store(b, m, x),
                &format!("movups {},{}", mem_text("xmmword", m), xmm(x)),
                2 + rex + mem_len(m),
            );
            for (width, name, size, opcode) in [
                (1, "pinsrb", "byte", 3),
                (2, "pinsrw", "word", 2),
                (4, "pinsrd", "dword", 3),
                (8, "pinsrq", "qword", 3),
            ] {
                let rex = rex_len(width == 8, &regs, &[]);
                check(
                    |b| pinsr_mem(b, width, x, m, 5),
                    &format!("{name} {},{},5", xmm(x), mem_text(size, m)),
                    1 + rex + 1 + opcode + mem_len(m),
                );
            }
            for (width, name, size) in [
                (1, "pextrb", "byte"),
                (2, "pextrw", "word"),
                (4, "pextrd", "dword"),
                (8, "pextrq", "qword"),
            ] {
                let rex = rex_len(width == 8, &regs, &[]);
                check(
                    |b| pextr_mem(b, width, m, x, 1),
                    &format!("{name} {},{},1", mem_text(size, m), xmm(x)),
                    1 + rex + 4 + mem_len(m),
                );
            }
        }
    }
}

/// How a [`Packed`] instruction's operands read: `reg` and `rm` as xmm or general
/// registers, with or without an immediate.
#[derive(Clone, Copy, PartialEq)]
enum Form {
    /// `op xmm(reg), xmm(rm)`.
    XmmXmm,
    /// `op xmm(reg), xmm(rm), imm`.
    XmmXmmImm,
    /// `op r32(reg), xmm(rm)`.
    GprXmm,
    /// `op r32(reg), xmm(rm), imm`.
    GprXmmImm,
    /// `op r(rm), xmm(reg), imm` (the `pextr` forms; `true`: r64).
    Extract(bool),
    /// `op xmm(reg), r(rm), imm` (the `pinsr` forms; `true`: r64).
    Insert(bool),
}

#[test]
fn packed_forms() {
    use Form::*;
    let ops: &[(Packed, &str, Form, usize)] = &[
        (Packed::PADDSB, "paddsb", XmmXmm, 2),
        (Packed::PADDSW, "paddsw", XmmXmm, 2),
        (Packed::PADDUSB, "paddusb", XmmXmm, 2),
        (Packed::PADDUSW, "paddusw", XmmXmm, 2),
        (Packed::PSUBSB, "psubsb", XmmXmm, 2),
        (Packed::PSUBSW, "psubsw", XmmXmm, 2),
        (Packed::PSUBUSB, "psubusb", XmmXmm, 2),
        (Packed::PSUBUSW, "psubusw", XmmXmm, 2),
        (Packed::PMINSW, "pminsw", XmmXmm, 2),
        (Packed::PMAXSW, "pmaxsw", XmmXmm, 2),
        (Packed::PAVGB, "pavgb", XmmXmm, 2),
        (Packed::PAVGW, "pavgw", XmmXmm, 2),
        (Packed::PMULHW, "pmulhw", XmmXmm, 2),
        (Packed::PMULHUW, "pmulhuw", XmmXmm, 2),
        (Packed::PMADDWD, "pmaddwd", XmmXmm, 2),
        (Packed::PACKSSWB, "packsswb", XmmXmm, 2),
        (Packed::PACKUSWB, "packuswb", XmmXmm, 2),
        (Packed::PACKSSDW, "packssdw", XmmXmm, 2),
        (Packed::PUNPCKLBW, "punpcklbw", XmmXmm, 2),
        (Packed::PUNPCKHBW, "punpckhbw", XmmXmm, 2),
        (Packed::PUNPCKLWD, "punpcklwd", XmmXmm, 2),
        (Packed::PUNPCKHWD, "punpckhwd", XmmXmm, 2),
        (Packed::PUNPCKLQDQ, "punpcklqdq", XmmXmm, 2),
        (Packed::PSHUFD, "pshufd", XmmXmmImm, 2),
        (Packed::PSHUFLW, "pshuflw", XmmXmmImm, 2),
        (Packed::PSRLW, "psrlw", XmmXmm, 2),
        (Packed::PSRLD, "psrld", XmmXmm, 2),
        (Packed::PSRLQ, "psrlq", XmmXmm, 2),
        (Packed::PSRAW, "psraw", XmmXmm, 2),
        (Packed::PSRAD, "psrad", XmmXmm, 2),
        (Packed::PSLLW, "psllw", XmmXmm, 2),
        (Packed::PSLLD, "pslld", XmmXmm, 2),
        (Packed::PSLLQ, "psllq", XmmXmm, 2),
        (Packed::PMOVMSKB, "pmovmskb", GprXmm, 2),
        (Packed::MOVMSKPS, "movmskps", GprXmm, 2),
        (Packed::MOVMSKPD, "movmskpd", GprXmm, 2),
        (Packed::CVTDQ2PS, "cvtdq2ps", XmmXmm, 2),
        (Packed::CVTTPS2DQ, "cvttps2dq", XmmXmm, 2),
        (Packed::CVTDQ2PD, "cvtdq2pd", XmmXmm, 2),
        (Packed::CVTTPD2DQ, "cvttpd2dq", XmmXmm, 2),
        (Packed::CVTPD2PS, "cvtpd2ps", XmmXmm, 2),
        (Packed::CVTPS2PD, "cvtps2pd", XmmXmm, 2),
        (Packed::UNPCKLPS, "unpcklps", XmmXmm, 2),
        (Packed::SHUFPS, "shufps", XmmXmmImm, 2),
        (Packed::MOVLHPS, "movlhps", XmmXmm, 2),
        (Packed::ANDNPS, "andnps", XmmXmm, 2),
        (Packed::MOVSD, "movsd", XmmXmm, 2),
        (Packed::MOVSS, "movss", XmmXmm, 2),
        (Packed::MOVQ_LOAD, "movq", XmmXmm, 2),
        (Packed::PEXTRW, "pextrw", GprXmmImm, 2),
        (Packed::PINSRW, "pinsrw", Insert(false), 2),
        (Packed::PSHUFB, "pshufb", XmmXmm, 3),
        (Packed::PHADDW, "phaddw", XmmXmm, 3),
        (Packed::PHADDD, "phaddd", XmmXmm, 3),
        (Packed::PMADDUBSW, "pmaddubsw", XmmXmm, 3),
        (Packed::PMULHRSW, "pmulhrsw", XmmXmm, 3),
        (Packed::PTEST, "ptest", XmmXmm, 3),
        (Packed::PMOVSXBW, "pmovsxbw", XmmXmm, 3),
        (Packed::PMOVSXWD, "pmovsxwd", XmmXmm, 3),
        (Packed::PMOVSXDQ, "pmovsxdq", XmmXmm, 3),
        (Packed::PMULDQ, "pmuldq", XmmXmm, 3),
        (Packed::PACKUSDW, "packusdw", XmmXmm, 3),
        (Packed::PMOVZXBW, "pmovzxbw", XmmXmm, 3),
        (Packed::PMOVZXWD, "pmovzxwd", XmmXmm, 3),
        (Packed::PMOVZXDQ, "pmovzxdq", XmmXmm, 3),
        (Packed::PMINSB, "pminsb", XmmXmm, 3),
        (Packed::PMINSD, "pminsd", XmmXmm, 3),
        (Packed::PMAXSB, "pmaxsb", XmmXmm, 3),
        (Packed::PMAXSD, "pmaxsd", XmmXmm, 3),
        (Packed::ROUNDPS, "roundps", XmmXmmImm, 3),
        (Packed::ROUNDPD, "roundpd", XmmXmmImm, 3),
        (Packed::PBLENDW, "pblendw", XmmXmmImm, 3),
        (Packed::PEXTRB, "pextrb", Extract(false), 3),
        (Packed::PEXTRD, "pextrd", Extract(false), 3),
        (Packed::PEXTRQ, "pextrq", Extract(true), 3),
        (Packed::PINSRB, "pinsrb", Insert(false), 3),
        (Packed::INSERTPS, "insertps", XmmXmmImm, 3),
        (Packed::PINSRD, "pinsrd", Insert(false), 3),
        (Packed::PINSRQ, "pinsrq", Insert(true), 3),
        (Packed::PMINUB, "pminub", XmmXmm, 2),
        (Packed::PMAXUB, "pmaxub", XmmXmm, 2),
        (Packed::PMULLW, "pmullw", XmmXmm, 2),
        (Packed::PMULUDQ, "pmuludq", XmmXmm, 2),
        (Packed::PABSB, "pabsb", XmmXmm, 3),
        (Packed::PABSW, "pabsw", XmmXmm, 3),
        (Packed::PABSD, "pabsd", XmmXmm, 3),
        (Packed::PCMPEQQ, "pcmpeqq", XmmXmm, 3),
        (Packed::PCMPGTQ, "pcmpgtq", XmmXmm, 3),
        (Packed::PMINUW, "pminuw", XmmXmm, 3),
        (Packed::PMINUD, "pminud", XmmXmm, 3),
        (Packed::PMAXUW, "pmaxuw", XmmXmm, 3),
        (Packed::PMAXUD, "pmaxud", XmmXmm, 3),
        (Packed::PMULLD, "pmulld", XmmXmm, 3),
    ];
    let no_prefix = [
        "movmskps", "cvtdq2ps", "cvtps2pd", "unpcklps", "shufps", "movlhps", "andnps",
    ];
    for &(op, name, form, opcode_len) in ops {
        let prefix = usize::from(!no_prefix.contains(&name));
        for (a, b) in pairs() {
            let imm = 5u8;
            let (text, w64) = match form {
                XmmXmm => (format!("{name} {},{}", xmm(a), xmm(b)), false),
                XmmXmmImm => (format!("{name} {},{},{imm}", xmm(a), xmm(b)), false),
                GprXmm => (format!("{name} {},{}", r(false, a), xmm(b)), false),
                GprXmmImm => (format!("{name} {},{},{imm}", r(false, a), xmm(b)), false),
                Extract(w) => (format!("{name} {},{},{imm}", r(w, b), xmm(a)), w),
                Insert(w) => (format!("{name} {},{},{imm}", xmm(a), r(w, b)), w),
            };
            let has_imm = !matches!(form, XmmXmm | GprXmm);
            let len = prefix + rex_len(w64, &[a, b], &[]) + opcode_len + 1 + has_imm as usize;
            check(
                |buf| {
                    if has_imm {
                        packed_imm(buf, op, a, Rm::Reg(b), imm)
                    } else {
                        packed(buf, op, a, Rm::Reg(b))
                    }
                },
                &text,
                len,
            );
        }
    }
    // The memory forms the SIMD loads use.
    for &m in &some_mems() {
        for x in [0, 9] {
            let rex = rex_len(false, &[&[x][..], &mem_regs(m)].concat(), &[]);
            for (op, name, size, len) in [
                (Packed::MOVSS, "movss", "dword", 2),
                (Packed::MOVQ_LOAD, "movq", "qword", 2),
                (Packed::PMOVSXBW, "pmovsxbw", "qword", 3),
                (Packed::PMOVZXDQ, "pmovzxdq", "qword", 3),
            ] {
                check(
                    |buf| packed(buf, op, x, Rm::from(m)),
                    &format!("{name} {},{}", xmm(x), mem_text(size, m)),
                    1 + rex + len + mem_len(m),
                );
            }
        }
    }
}

/// Bytes of the VEX prefix: two (`C5`) when the map is `0F`, W is 0 and neither X nor B is
/// needed (no extended register in ModRM r/m, base or index), else three (`C4`).
fn vex_len(map0f: bool, w: bool, rm_regs: &[u8]) -> usize {
    if map0f && !w && rm_regs.iter().all(|&r| r < 8) {
        2
    } else {
        3
    }
}

/// The VEX (AVX) forms: every register triple `vop a,b,c` of the three-operand forms and
/// every pair of the two-operand ones, exact text and minimal prefix length.
#[test]
fn vex_forms() {
    use Form::*;
    // (op, SSE name, form, map 0F, three operands)
    let ops: &[(Packed, &str, Form, bool, bool)] = &[
        (Packed::XORPS, "xorps", XmmXmm, true, true),
        (Packed::ANDPS, "andps", XmmXmm, true, true),
        (Packed::ORPS, "orps", XmmXmm, true, true),
        (Packed::ANDNPS, "andnps", XmmXmm, true, true),
        (Packed::ADDSS, "addss", XmmXmm, true, true),
        (Packed::ADDSD, "addsd", XmmXmm, true, true),
        (Packed::SUBSS, "subss", XmmXmm, true, true),
        (Packed::SUBSD, "subsd", XmmXmm, true, true),
        (Packed::MULSS, "mulss", XmmXmm, true, true),
        (Packed::MULSD, "mulsd", XmmXmm, true, true),
        (Packed::DIVSS, "divss", XmmXmm, true, true),
        (Packed::DIVSD, "divsd", XmmXmm, true, true),
        (Packed::MINSS, "minss", XmmXmm, true, true),
        (Packed::MINSD, "minsd", XmmXmm, true, true),
        (Packed::MAXSS, "maxss", XmmXmm, true, true),
        (Packed::MAXSD, "maxsd", XmmXmm, true, true),
        (Packed::SQRTSS, "sqrtss", XmmXmm, true, true),
        (Packed::SQRTSD, "sqrtsd", XmmXmm, true, true),
        (Packed::CVTSS2SD, "cvtss2sd", XmmXmm, true, true),
        (Packed::CVTSD2SS, "cvtsd2ss", XmmXmm, true, true),
        (Packed::PAND, "pand", XmmXmm, true, true),
        (Packed::PANDN, "pandn", XmmXmm, true, true),
        (Packed::POR, "por", XmmXmm, true, true),
        (Packed::PXOR, "pxor", XmmXmm, true, true),
        (Packed::PCMPEQB, "pcmpeqb", XmmXmm, true, true),
        (Packed::PCMPEQW, "pcmpeqw", XmmXmm, true, true),
        (Packed::PCMPEQD, "pcmpeqd", XmmXmm, true, true),
        (Packed::PCMPEQQ, "pcmpeqq", XmmXmm, false, true),
        (Packed::PCMPGTB, "pcmpgtb", XmmXmm, true, true),
        (Packed::PCMPGTW, "pcmpgtw", XmmXmm, true, true),
        (Packed::PCMPGTD, "pcmpgtd", XmmXmm, true, true),
        (Packed::PCMPGTQ, "pcmpgtq", XmmXmm, false, true),
        (Packed::PADDB, "paddb", XmmXmm, true, true),
        (Packed::PADDW, "paddw", XmmXmm, true, true),
        (Packed::PADDD, "paddd", XmmXmm, true, true),
        (Packed::PADDQ, "paddq", XmmXmm, true, true),
        (Packed::PSUBB, "psubb", XmmXmm, true, true),
        (Packed::PSUBW, "psubw", XmmXmm, true, true),
        (Packed::PSUBD, "psubd", XmmXmm, true, true),
        (Packed::PSUBQ, "psubq", XmmXmm, true, true),
        (Packed::PMULLW, "pmullw", XmmXmm, true, true),
        (Packed::PMULLD, "pmulld", XmmXmm, false, true),
        (Packed::PMULUDQ, "pmuludq", XmmXmm, true, true),
        (Packed::PMULDQ, "pmuldq", XmmXmm, false, true),
        (Packed::PMULHW, "pmulhw", XmmXmm, true, true),
        (Packed::PMULHUW, "pmulhuw", XmmXmm, true, true),
        (Packed::PMULHRSW, "pmulhrsw", XmmXmm, false, true),
        (Packed::PMADDWD, "pmaddwd", XmmXmm, true, true),
        (Packed::PMADDUBSW, "pmaddubsw", XmmXmm, false, true),
        (Packed::PADDSB, "paddsb", XmmXmm, true, true),
        (Packed::PADDSW, "paddsw", XmmXmm, true, true),
        (Packed::PADDUSB, "paddusb", XmmXmm, true, true),
        (Packed::PADDUSW, "paddusw", XmmXmm, true, true),
        (Packed::PSUBSB, "psubsb", XmmXmm, true, true),
        (Packed::PSUBSW, "psubsw", XmmXmm, true, true),
        (Packed::PSUBUSB, "psubusb", XmmXmm, true, true),
        (Packed::PSUBUSW, "psubusw", XmmXmm, true, true),
        (Packed::PMINUB, "pminub", XmmXmm, true, true),
        (Packed::PMINUW, "pminuw", XmmXmm, false, true),
        (Packed::PMINUD, "pminud", XmmXmm, false, true),
        (Packed::PMINSB, "pminsb", XmmXmm, false, true),
        (Packed::PMINSW, "pminsw", XmmXmm, true, true),
        (Packed::PMINSD, "pminsd", XmmXmm, false, true),
        (Packed::PMAXUB, "pmaxub", XmmXmm, true, true),
        (Packed::PMAXUW, "pmaxuw", XmmXmm, false, true),
        (Packed::PMAXUD, "pmaxud", XmmXmm, false, true),
        (Packed::PMAXSB, "pmaxsb", XmmXmm, false, true),
        (Packed::PMAXSW, "pmaxsw", XmmXmm, true, true),
        (Packed::PMAXSD, "pmaxsd", XmmXmm, false, true),
        (Packed::PAVGB, "pavgb", XmmXmm, true, true),
        (Packed::PAVGW, "pavgw", XmmXmm, true, true),
        (Packed::PACKSSWB, "packsswb", XmmXmm, true, true),
        (Packed::PACKUSWB, "packuswb", XmmXmm, true, true),
        (Packed::PACKSSDW, "packssdw", XmmXmm, true, true),
        (Packed::PACKUSDW, "packusdw", XmmXmm, false, true),
        (Packed::PHADDW, "phaddw", XmmXmm, false, true),
        (Packed::PHADDD, "phaddd", XmmXmm, false, true),
        (Packed::PSHUFB, "pshufb", XmmXmm, false, true),
        (Packed::PUNPCKLWD, "punpcklwd", XmmXmm, true, true),
        (Packed::PUNPCKHWD, "punpckhwd", XmmXmm, true, true),
        (Packed::UNPCKLPS, "unpcklps", XmmXmm, true, true),
        (Packed::PSRLW, "psrlw", XmmXmm, true, true),
        (Packed::PSRLD, "psrld", XmmXmm, true, true),
        (Packed::PSRLQ, "psrlq", XmmXmm, true, true),
        (Packed::PSRAW, "psraw", XmmXmm, true, true),
        (Packed::PSRAD, "psrad", XmmXmm, true, true),
        (Packed::PSLLW, "psllw", XmmXmm, true, true),
        (Packed::PSLLD, "pslld", XmmXmm, true, true),
        (Packed::PSLLQ, "psllq", XmmXmm, true, true),
        (Packed::ADDPS, "addps", XmmXmm, true, true),
        (Packed::ADDPD, "addpd", XmmXmm, true, true),
        (Packed::SUBPS, "subps", XmmXmm, true, true),
        (Packed::SUBPD, "subpd", XmmXmm, true, true),
        (Packed::MULPS, "mulps", XmmXmm, true, true),
        (Packed::MULPD, "mulpd", XmmXmm, true, true),
        (Packed::DIVPS, "divps", XmmXmm, true, true),
        (Packed::DIVPD, "divpd", XmmXmm, true, true),
        (Packed::MINPS, "minps", XmmXmm, true, true),
        (Packed::MINPD, "minpd", XmmXmm, true, true),
        (Packed::MAXPS, "maxps", XmmXmm, true, true),
        (Packed::MAXPD, "maxpd", XmmXmm, true, true),
        (Packed::PBLENDW, "pblendw", XmmXmmImm, false, true),
        (Packed::SQRTPS, "sqrtps", XmmXmm, true, false),
        (Packed::PABSB, "pabsb", XmmXmm, false, false),
        (Packed::PSHUFD, "pshufd", XmmXmmImm, true, false),
        (Packed::PMOVSXBW, "pmovsxbw", XmmXmm, false, false),
        (Packed::CVTDQ2PS, "cvtdq2ps", XmmXmm, true, false),
        (Packed::PEXTRQ, "pextrq", Extract(true), false, false),
        (Packed::PINSRQ, "pinsrq", Insert(true), false, true),
        (Packed::PMOVMSKB, "pmovmskb", GprXmm, true, false),
    ];
    let imm = 5u8;
    for &(op, name, form, map0f, three) in ops {
        let w = matches!(form, Extract(true) | Insert(true));
        let has_imm = !matches!(form, XmmXmm | GprXmm);
        for (a, c) in pairs() {
            let srcs: Vec<u8> = if three { regs().collect() } else { vec![0] };
            for b in srcs {
                let text = match (form, three) {
                    (XmmXmm, true) => format!("v{name} {},{},{}", xmm(a), xmm(b), xmm(c)),
                    (XmmXmmImm, true) => {
                        format!("v{name} {},{},{},{imm}", xmm(a), xmm(b), xmm(c))
                    }
                    (Insert(w), _) => {
                        format!("v{name} {},{},{},{imm}", xmm(a), xmm(b), r(w, c))
                    }
                    (XmmXmm, false) => format!("v{name} {},{}", xmm(a), xmm(c)),
                    (XmmXmmImm, false) => format!("v{name} {},{},{imm}", xmm(a), xmm(c)),
                    (GprXmm, _) => format!("v{name} {},{}", r(false, a), xmm(c)),
                    (Extract(w), _) => format!("v{name} {},{},{imm}", r(w, c), xmm(a)),
                    (GprXmmImm, _) => unreachable!(),
                };
                let len = vex_len(map0f, w, &[c]) + 2 + has_imm as usize;
                check(
                    |buf| {
                        if has_imm {
                            vex_imm(buf, op, a, b, Rm::Reg(c), imm)
                        } else {
                            vex(buf, op, a, b, Rm::Reg(c))
                        }
                    },
                    &text,
                    len,
                );
            }
        }
    }
    // Memory operands (every base and index, the displacement sizes).
    for &m in &some_mems() {
        for (a, b) in [(0, 1), (9, 3), (2, 15), (14, 14)] {
            for (op, name, size, map0f) in [
                (Packed::PADDB, "vpaddb", "xmmword", true),
                (Packed::ADDSD, "vaddsd", "qword", true),
                (Packed::ADDSS, "vaddss", "dword", true),
                (Packed::PSHUFB, "vpshufb", "xmmword", false),
            ] {
                check(
                    |buf| vex(buf, op, a, b, Rm::from(m)),
                    &format!("{name} {},{},{}", xmm(a), xmm(b), mem_text(size, m)),
                    vex_len(map0f, false, &mem_regs(m)) + 1 + mem_len(m),
                );
            }
            check(
                |buf| vex(buf, Packed::MOVUPS, a, 0, Rm::from(m)),
                &format!("vmovups {},{}", xmm(a), mem_text("xmmword", m)),
                vex_len(true, false, &mem_regs(m)) + 1 + mem_len(m),
            );
        }
    }
    // The shifts by an immediate (destination in vvvv) and the float compares.
    for (d, s) in pairs() {
        for (op, digit, name) in [
            (0x71, 2, "vpsrlw"),
            (0x71, 4, "vpsraw"),
            (0x71, 6, "vpsllw"),
            (0x72, 2, "vpsrld"),
            (0x72, 4, "vpsrad"),
            (0x72, 6, "vpslld"),
            (0x73, 2, "vpsrlq"),
            (0x73, 6, "vpsllq"),
        ] {
            check(
                |b| vpshift_imm(b, op, digit, d, s, 31),
                &format!("{name} {},{},31", xmm(d), xmm(s)),
                vex_len(true, false, &[s]) + 3,
            );
        }
        for b in regs() {
            for (double, pred, name) in [
                (false, 0, "vcmpeqps"),
                (false, 1, "vcmpltps"),
                (true, 2, "vcmplepd"),
                (true, 4, "vcmpneqpd"),
            ] {
                check(
                    |buf| vcmpp(buf, double, d, b, s, pred),
                    &format!("{name} {},{},{}", xmm(d), xmm(b), xmm(s)),
                    vex_len(true, false, &[s]) + 3,
                );
            }
        }
    }
}

/// With AVX the macro assembler emits three-operand forms instead of copies.
#[test]
fn masm_emits_avx_forms() {
    use super::X64Masm;
    use crate::masm::*;
    use crate::vmctx::VMOffsets;

    let x = Reg::float;
    for avx in [false, true] {
        let mut m = X64Masm::new(&VMOffsets::default()).with_avx(avx);
        m.v128_binop(V128BinOp::Add(Lanes::I8x16), x(1), x(2), x(3));
        m.v128_binop(V128BinOp::AndNot, x(3), x(2), x(3));
        m.v128_cmp(V128Cmp::Int(Lanes::I32x4, IntCmp::GtS), x(9), x(2), x(9));
        m.v128_cmp(
            V128Cmp::Float(FloatLanes::F64x2, FloatCmp::Lt),
            x(4),
            x(5),
            x(6),
        );
        m.float_binop(FloatBinOp::Sub, x(1), x(2), x(1), OperandSize::S32);
        m.v128_binop(V128BinOp::MinU(Lanes::I16x8), x(1), x(12), x(3));
        let code = m.finish(0).unwrap();
        let texts = disasm_at(&code, 0);
        let want: &[&str] = if avx {
            &[
                "vpaddb xmm1,xmm2,xmm3",
                "vpandn xmm3,xmm3,xmm2",
                "vpcmpgtd xmm9,xmm2,xmm9",
                "vcmpltpd xmm4,xmm5,xmm6",
                "vsubss xmm1,xmm2,xmm1",
                "vpminuw xmm1,xmm12,xmm3",
            ]
        } else {
            &[
                "movaps xmm1,xmm2",
                "paddb xmm1,xmm3",
                "movaps xmm15,xmm3",
                "movaps xmm3,xmm2",
                "pandn xmm15,xmm3",
                "movaps xmm3,xmm15",
            ]
        };
        assert_eq!(&texts[..want.len()], want, "avx {avx}: {texts:#?}");
    }
}

/// Every call primitive returns the offset of its return address (what backtraces and the
/// exception unwinder look call sites up by), also a call through a funcref, which reloads
/// the context after it returns.
#[test]
fn calls_return_their_return_address() {
    use super::X64Masm;
    use crate::masm::*;
    use crate::vmctx::VMOffsets;

    let offsets = VMOffsets::default();
    let mut m = X64Masm::new(&offsets);
    let f = Reg::int(3); // rbx
    let after_funcref_call = m.call(CallTarget::FuncRef { funcref: f }) as usize;
    let after_throw = m.call_throw(offsets.throw_landing(), f) as usize;
    let code = m.finish(0).unwrap();
    let call_end = |end: usize| disasm_at(&code[..end], 0).last().cloned().unwrap();
    assert!(
        call_end(after_funcref_call).starts_with("call qword ptr [rbx"),
        "{:?}",
        disasm_at(&code, 0)
    );
    // The throw passes the exnref in rdi and calls the landing through the vmctx.
    let texts = disasm_at(&code[after_funcref_call..after_throw], 0);
    assert_eq!(
        texts[texts.len() - 2..],
        ["mov rdi,rbx", "call qword ptr [r15+38h]"]
    );
}

/// The throw landing takes the throwing call's return address off the stack and its frame
/// pointer, and either enters the landing pad it is given (frame pointer, stack pointer,
/// exnref in rax) or leaves `enter` as a trap does.
#[test]
fn throw_landing_shape() {
    let s = super::stubs::generate_stubs(0x7f12_3456_789a, 0x7f12_3456_0000).unwrap();
    assert!(s.host_call < s.throw_landing);
    let texts = disasm_at(&s.code[s.throw_landing..], 0);
    assert_eq!(texts[..2], ["pop rsi", "mov rdx,rbp"], "{texts:?}");
    for want in [
        "mov rax,7F1234560000h",
        "mov rax,[rsp+18h]",
        "mov rbp,[rsp+8]",
        "jmp rcx",
    ] {
        assert!(texts.iter().any(|t| t == want), "missing {want}: {texts:?}");
    }
}

/// The memory operands of [`mems`] as (base, index, displacement).
fn mem_parts() -> Vec<(u8, Option<u8>, i32)> {
    let mut v = Vec::new();
    for base in 0..16 {
        for &d in &DISPS {
            v.push((base, None, d));
        }
        for index in (0..16).filter(|&i| i != 4) {
            for d in [0, -128, 127, 128, -129, i32::MIN, i32::MAX] {
                v.push((base, Some(index), d));
            }
        }
    }
    v
}

fn make_mem((base, index, disp): (u8, Option<u8>, i32)) -> Mem {
    match index {
        None => Mem::base(base, disp),
        Some(i) => Mem::indexed(base, i, disp),
    }
}

#[test]
fn mem_keeps_its_parts() {
    let parts = mem_parts();
    for &p in &parts {
        let m = make_mem(p);
        assert_eq!((m.base_reg(), m.index_reg(), m.disp()), p, "{m:?}");
    }
    // Equal exactly when the parts are equal (the displacement's unencoded bytes included).
    for (k, &p) in parts.iter().enumerate().step_by(7) {
        for &q in parts.iter().skip(k % 5).step_by(11) {
            assert_eq!(make_mem(p) == make_mem(q), p == q, "{p:?} {q:?}");
        }
    }
}

/// The encoder as it was written first (one byte at a time, from the operand's parts): the
/// reference the pre-encoded operands and the instruction writer must match byte for byte.
#[allow(clippy::too_many_arguments)]
fn reference(
    prefix: u8,
    w: bool,
    force_rex: bool,
    opcode: &[u8],
    reg: u8,
    rm: Result<u8, (u8, Option<u8>, i32)>,
    imm: &[u8],
) -> Vec<u8> {
    let mut v = Vec::new();
    if prefix != 0 {
        v.push(prefix);
    }
    let (x, b) = match rm {
        Ok(r) => (0, r >> 3),
        Err((base, index, _)) => (index.map_or(0, |x| x >> 3), base >> 3),
    };
    let rex = (w as u8) << 3 | ((reg >> 3) & 1) << 2 | (x & 1) << 1 | (b & 1);
    if rex != 0 || force_rex {
        v.push(0x40 | rex);
    }
    v.extend_from_slice(opcode);
    let reg = (reg & 7) << 3;
    match rm {
        Ok(r) => v.push(0xC0 | reg | (r & 7)),
        Err((base, index, disp)) => {
            let base = base & 7;
            let (md, disp_len) = if disp == 0 && base != 5 {
                (0x00, 0)
            } else if fits_i8(disp as i64) {
                (0x40, 1)
            } else {
                (0x80, 4)
            };
            match index {
                None if base != 4 => v.push(md | reg | base),
                None => v.extend_from_slice(&[md | reg | 4, 0x24]),
                Some(index) => v.extend_from_slice(&[md | reg | 4, ((index & 7) << 3) | base]),
            }
            v.extend_from_slice(&disp.to_le_bytes()[..disp_len]);
        }
    }
    v.extend_from_slice(imm);
    v
}

#[track_caller]
fn same(emit: impl FnOnce(&mut Vec<u8>), expect: Vec<u8>) {
    let mut bytes = Vec::new();
    emit(&mut bytes);
    assert_eq!(bytes, expect);
}

#[test]
fn memory_forms_match_the_reference_encoder() {
    let widths = [
        (Width::B, 0, false, 0x88, 0xC6, 1),
        (Width::W, 0x66, false, 0x89, 0xC7, 2),
        (Width::D, 0, false, 0x89, 0xC7, 4),
        (Width::Q, 0, true, 0x89, 0xC7, 4),
    ];
    for p in mem_parts() {
        let m = make_mem(p);
        for reg in regs() {
            for w64 in [false, true] {
                same(
                    |b| mov_load(b, w64, reg, m),
                    reference(0, w64, false, &[0x8B], reg, Err(p), &[]),
                );
                same(
                    |b| alu_load(b, Alu::Sub, w64, reg, m),
                    reference(0, w64, false, &[0x2B], reg, Err(p), &[]),
                );
            }
            for (width, prefix, w, op, _, _) in widths {
                let force = width == Width::B && (4..8).contains(&reg);
                same(
                    |b| mov_store(b, width, m, reg),
                    reference(prefix, w, force, &[op], reg, Err(p), &[]),
                );
            }
            same(
                |b| lea(b, reg, m),
                reference(0, true, false, &[0x8D], reg, Err(p), &[]),
            );
            same(
                |b| extend(b, Ext::Zx8, reg, m.into()),
                reference(0, false, false, &[0x0F, 0xB6], reg, Err(p), &[]),
            );
            same(
                |b| extend(b, Ext::Sx32To64, reg, m.into()),
                reference(0, true, false, &[0x63], reg, Err(p), &[]),
            );
            same(
                |b| packed(b, Packed::MOVSD, reg, m.into()),
                reference(0xF2, false, false, &[0x0F, 0x10], reg, Err(p), &[]),
            );
            same(
                |b| packed(b, Packed::PMULLD, reg, m.into()),
                reference(0x66, false, false, &[0x0F, 0x38, 0x40], reg, Err(p), &[]),
            );
            same(
                |b| sse_store(b, Packed::MOVSS, m, reg),
                reference(0xF3, false, false, &[0x0F, 0x11], reg, Err(p), &[]),
            );
        }
        for imm in [0, 1, -1, 127, -128, 128, 0x1234_5678, i32::MIN] {
            for (width, prefix, w, _, op, imm_len) in widths {
                same(
                    |b| mov_store_imm(b, width, m, imm),
                    reference(
                        prefix,
                        w,
                        false,
                        &[op],
                        0,
                        Err(p),
                        &imm.to_le_bytes()[..imm_len],
                    ),
                );
            }
        }
        for lane in [0, 3] {
            same(
                |b| pinsr_mem(b, 8, 9, m, lane),
                reference(0x66, true, false, &[0x0F, 0x3A, 0x22], 9, Err(p), &[lane]),
            );
        }
        same(
            |b| call_mem(b, m),
            reference(0, false, false, &[0xFF], 2, Err(p), &[]),
        );
    }
}

#[test]
fn register_forms_match_the_reference_encoder() {
    for (d, s) in pairs() {
        for w64 in [false, true] {
            same(
                |b| mov_rr(b, w64, d, s),
                reference(0, w64, false, &[0x8B], d, Ok(s), &[]),
            );
            same(
                |b| alu_rr(b, Alu::Xor, w64, d, s),
                reference(0, w64, false, &[0x31], s, Ok(d), &[]),
            );
            same(
                |b| cmovcc(b, Cc::Le, w64, d, s),
                reference(0, w64, false, &[0x0F, 0x4E], d, Ok(s), &[]),
            );
            for imm in [0, 1, -1, 127, -128, 128, 0x1234_5678, i32::MIN] {
                let expect = if fits_i8(imm as i64) {
                    reference(0, w64, false, &[0x83], 5, Ok(d), &[imm as u8])
                } else if d == 0 {
                    let mut v = if w64 { vec![0x48] } else { vec![] };
                    v.push(0x2D);
                    v.extend_from_slice(&imm.to_le_bytes());
                    v
                } else {
                    reference(0, w64, false, &[0x81], 5, Ok(d), &imm.to_le_bytes())
                };
                same(|b| alu_ri(b, Alu::Sub, w64, d, imm), expect);
            }
        }
        same(
            |b| extend(b, Ext::Zx8, d, Rm::Reg(s)),
            reference(0, false, (4..8).contains(&s), &[0x0F, 0xB6], d, Ok(s), &[]),
        );
        same(
            |b| packed_imm(b, Packed::PSHUFD, d, Rm::Reg(s), 0x1B),
            reference(0x66, false, false, &[0x0F, 0x70], d, Ok(s), &[0x1B]),
        );
    }
}
