//! Encoding tests of the AArch64 backend. They only produce and disassemble bytes, so they
//! run on any host; a failing test prints readable instructions.

use super::enc;
use super::Aarch64Masm;
use crate::masm::*;
use crate::vmctx::VMOffsets;
use crate::TrapCode;
use yaxpeax_arch::{Decoder, U8Reader};
use yaxpeax_arm::armv8::a64::InstDecoder;

/// Disassembles `code` one instruction per line (`.word` for undecodable words).
pub(super) fn disasm(code: &[u8]) -> Vec<String> {
    let decoder = InstDecoder::default();
    code.chunks(4)
        .map(|w| {
            let mut reader = U8Reader::new(w);
            match decoder.decode(&mut reader) {
                Ok(i) => i.to_string(),
                Err(_) => {
                    let mut b = [0u8; 4];
                    b[..w.len()].copy_from_slice(w);
                    format!(".word {:#010x}", u32::from_le_bytes(b))
                }
            }
        })
        .collect()
}

/// The disassembly of what `f` emits (no prologue, so no trap stubs unless `f` adds some).
fn body(f: impl FnOnce(&mut Aarch64Masm)) -> Vec<String> {
    let mut m = Aarch64Masm::new(&VMOffsets::default());
    f(&mut m);
    disasm(&m.finish(0).expect("assembles"))
}

#[track_caller]
fn check(f: impl FnOnce(&mut Aarch64Masm), expected: &[&str]) {
    let got = body(f);
    assert_eq!(
        got,
        expected,
        "\n got: {}\nwant: {}",
        got.join("; "),
        expected.join("; ")
    );
}

const X: Reg = Reg::int(9);
const Y: Reg = Reg::int(10);
const D: Reg = Reg::float(16);
use OperandSize::{S32, S64};

const VALUES: [i64; 12] = [
    0,
    1,
    4095,
    4096,
    -1,
    -4096,
    i32::MIN as i64,
    i32::MAX as i64,
    u32::MAX as i64,
    i64::MIN,
    i64::MAX,
    0x1234_5678_9abc_def0,
];

fn parse_imm(s: &str) -> u64 {
    let s = s.trim().trim_start_matches('#');
    u64::from_str_radix(s.trim_start_matches("0x"), 16).unwrap_or_else(|_| panic!("imm {s}"))
}

/// Runs `mov`/`movk` lines (as yaxpeax prints them) for register `reg`.
fn simulate_mov(lines: &[String], reg: &str) -> u64 {
    let mut v = 0u64;
    for l in lines {
        let (op, rest) = l.split_once(' ').unwrap();
        let mut parts = rest.split(", ");
        assert_eq!(parts.next(), Some(reg), "{l}");
        let imm = parse_imm(parts.next().unwrap());
        match op {
            "mov" => v = imm,
            "movk" => {
                let shift = parts
                    .next()
                    .map_or(0, |s| s.trim_start_matches("lsl #").parse().unwrap());
                v = (v & !(0xffff << shift)) | (imm << shift);
            }
            _ => panic!("unexpected {l}"),
        }
    }
    if reg.starts_with('w') {
        v & 0xffff_ffff
    } else {
        v
    }
}

#[test]
fn mov_immediates_materialise_exactly() {
    for &v in &VALUES {
        for (size, reg) in [(S32, "w9"), (S64, "x9")] {
            let lines = body(|m| m.mov(X, RegImm::Imm(v), size));
            let want = match size {
                S32 => v as u32 as u64,
                _ => v as u64,
            };
            assert_eq!(simulate_mov(&lines, reg), want, "{v:#x}: {lines:?}");
            let max = if size == S32 { 2 } else { 4 };
            assert!(lines.len() <= max, "{v:#x}: {lines:?}");
        }
    }
    // Single instructions where one exists.
    check(
        |m| m.mov(X, RegImm::Imm(-1), S64),
        &["mov x9, #0xffffffffffffffff"],
    );
    check(|m| m.mov(X, RegImm::Imm(-1), S32), &["mov w9, #0xffffffff"]);
    check(
        |m| m.mov(X, RegImm::Imm(i64::MIN), S64),
        &["mov x9, #0x8000000000000000"],
    );
    check(
        |m| m.mov(X, RegImm::Imm(-4096), S64),
        &["mov x9, #0xfffffffffffff000"],
    );
    // A bitmask immediate (orr) for a repeating pattern.
    check(
        |m| m.mov(X, RegImm::Imm(0x5555_5555_5555_5555), S64),
        &["mov x9, #0x5555555555555555"],
    );
}

#[test]
fn float_immediates() {
    check(|m| m.mov(D, RegImm::Imm(0), S64), &["fmov d16, xzr"]);
    check(
        |m| m.mov(D, RegImm::Imm(0x3ff0_0000_0000_0000), S64),
        &["mov x16, #0x3ff0000000000000", "fmov d16, x16"],
    );
    check(
        |m| m.mov(D, RegImm::Imm(0x3f80_0000), S32),
        &["mov w16, #0x3f800000", "fmov s16, w16"],
    );
}

#[test]
fn add_sub_immediates() {
    let cases: &[(AluOp, i64, OperandSize, &[&str])] = &[
        (AluOp::Add, 0, S32, &["add w9, w10, #0x0"]),
        (AluOp::Add, 4095, S64, &["add x9, x10, #0xfff"]),
        (AluOp::Add, 4096, S64, &["add x9, x10, #0x1, lsl #12"]),
        (AluOp::Add, -1, S32, &["sub w9, w10, #0x1"]),
        (AluOp::Sub, -1, S64, &["add x9, x10, #0x1"]),
        (AluOp::Sub, 0xfff000, S64, &["sub x9, x10, #0xfff, lsl #12"]),
        (
            AluOp::Add,
            i32::MIN as i64,
            S32,
            &["mov w16, #0x80000000", "add w9, w10, w16"],
        ),
        (
            AluOp::Add,
            u32::MAX as i64,
            S64,
            &["mov x16, #0xffffffff", "add x9, x10, x16"],
        ),
        (AluOp::Add, u32::MAX as i64, S32, &["sub w9, w10, #0x1"]),
        (
            AluOp::Sub,
            i64::MIN,
            S64,
            &["mov x16, #0x8000000000000000", "sub x9, x10, x16"],
        ),
        (
            AluOp::Add,
            0x1001,
            S64,
            &["mov x16, #0x1001", "add x9, x10, x16"],
        ),
        (AluOp::Mul, 3, S32, &["mov w16, #0x3", "mul w9, w10, w16"]),
    ];
    for &(op, v, size, want) in cases {
        check(|m| m.alu(op, X, Y, RegImm::Imm(v), size), want);
    }
}

#[test]
fn logical_immediates() {
    let cases: &[(AluOp, i64, OperandSize, &[&str])] = &[
        (AluOp::And, 0, S64, &["mov x9, #0x0"]),
        (AluOp::And, -1, S64, &["mov x9, x10"]),
        (AluOp::And, -1, S32, &["mov w9, w10"]),
        (AluOp::Or, -1, S32, &["mov w9, #0xffffffff"]),
        (AluOp::Xor, -1, S64, &["mvn x9, x10"]),
        (AluOp::Or, 0, S64, &["mov x9, x10"]),
        (AluOp::And, 4095, S32, &["and w9, w10, #0xfff"]),
        (
            AluOp::And,
            i32::MIN as i64,
            S32,
            &["and w9, w10, #0x80000000"],
        ),
        (
            AluOp::Xor,
            i64::MIN,
            S64,
            &["eor x9, x10, #0x8000000000000000"],
        ),
        (
            AluOp::Or,
            u32::MAX as i64,
            S64,
            &["orr x9, x10, #0xffffffff"],
        ),
        (
            AluOp::And,
            0x1234_5678,
            S32,
            &[
                "mov w16, #0x5678",
                "movk w16, #0x1234, lsl #16",
                "and w9, w10, w16",
            ],
        ),
    ];
    for &(op, v, size, want) in cases {
        check(|m| m.alu(op, X, Y, RegImm::Imm(v), size), want);
    }
    // Every encodable bitmask decodes back to itself.
    for v in [
        0x00ff_00ff_00ff_00ffu64,
        0x0f0f_0f0f_0f0f_0f0f,
        0x7fff_ffff_ffff_fffe,
        0x3c,
    ] {
        let lines = body(|m| m.alu(AluOp::And, X, Y, RegImm::Imm(v as i64), S64));
        assert_eq!(lines, [format!("and x9, x10, #{v:#x}")]);
    }
}

#[test]
fn compare_immediates() {
    let cases: &[(i64, OperandSize, &[&str])] = &[
        (0, S32, &["cmp w10, #0x0", "cset w9, lt"]),
        (4095, S32, &["cmp w10, #0xfff", "cset w9, lt"]),
        (4096, S64, &["cmp x10, #0x1, lsl #12", "cset w9, lt"]),
        (-1, S32, &["cmn w10, #0x1", "cset w9, lt"]),
        (-4096, S64, &["cmn x10, #0x1, lsl #12", "cset w9, lt"]),
        (
            i32::MIN as i64,
            S32,
            &["mov w16, #0x80000000", "cmp w10, w16", "cset w9, lt"],
        ),
        (u32::MAX as i64, S32, &["cmn w10, #0x1", "cset w9, lt"]),
        (
            u32::MAX as i64,
            S64,
            &["mov x16, #0xffffffff", "cmp x10, x16", "cset w9, lt"],
        ),
        (
            i64::MIN,
            S64,
            &[
                "mov x16, #0x8000000000000000",
                "cmp x10, x16",
                "cset w9, lt",
            ],
        ),
    ];
    for &(v, size, want) in cases {
        check(|m| m.cmp_set(IntCmp::LtS, X, Y, RegImm::Imm(v), size), want);
    }
}

#[test]
fn load_store_offsets() {
    check(
        |m| m.load(X, Address::Frame(-12), S64),
        &["ldur x9, [x29, #-0xc]"],
    );
    check(
        |m| m.load(X, Address::Frame(13), S64),
        &["ldur x9, [x29, #0xd]"],
    );
    check(
        |m| m.load(X, Address::Frame(16), S64),
        &["ldr x9, [x29, #0x10]"],
    );
    check(
        |m| m.load(X, Address::Frame(-256), S32),
        &["ldur w9, [x29, #-0x100]"],
    );
    check(
        |m| m.load(X, Address::Frame(-264), S64),
        &["mov x16, #0xfffffffffffffef8", "ldr x9, [x29, x16]"],
    );
    check(
        |m| m.load(X, Address::Vmctx(32760), S64),
        &["ldr x9, [x28, #0x7ff8]"],
    );
    check(
        |m| m.load(X, Address::Vmctx(32768), S64),
        &["mov x16, #0x8000", "ldr x9, [x28, x16]"],
    );
    check(
        |m| m.load(X, Address::Vmctx(16382), S32),
        &["mov x16, #0x3ffe", "ldr w9, [x28, x16]"],
    );
    check(
        |m| m.load(D, Address::Outgoing(8), S64),
        &["ldr d16, [sp, #0x8]"],
    );
    check(
        |m| m.load(D, Address::Outgoing(4), S32),
        &["ldr s16, [sp, #0x4]"],
    );
    check(
        |m| m.load(X, Address::Base(Y, i32::MIN), S64),
        &["mov x16, #0xffffffff80000000", "ldr x9, [x10, x16]"],
    );
    check(
        |m| m.store(RegImm::Imm(-1), Address::Frame(-8), S64),
        &["mov x17, #0xffffffffffffffff", "stur x17, [x29, #-0x8]"],
    );
    check(
        |m| m.store(RegImm::Imm(0), Address::Frame(-12), S32),
        &["stur wzr, [x29, #-0xc]"],
    );
    check(
        |m| m.store(RegImm::Reg(D), Address::Outgoing(4096 * 8), S64),
        &["mov x16, #0x8000", "str d16, [sp, x16]"],
    );
    check(
        |m| m.copy(Address::Outgoing(0), Address::Frame(-300), S64),
        &[
            "mov x16, #0xfffffffffffffed4",
            "ldr x17, [x29, x16]",
            "str x17, [sp]",
        ],
    );
    check(|m| m.lea(X, Address::Outgoing(-12)), &["sub x9, sp, #0xc"]);
    check(
        |m| m.lea(X, Address::Frame(i32::MIN)),
        &["mov x16, #0xffffffff80000000", "add x9, x29, x16"],
    );
}

#[test]
fn heap_accesses_fault_at_the_returned_pc() {
    let mut m = Aarch64Masm::new(&VMOffsets::default());
    let a = m.load_heap(
        X,
        HeapAddress {
            base: None,
            index: Y,
            offset: 0,
        },
        LoadKind::I64,
    );
    let b = m.load_heap(
        X,
        HeapAddress {
            base: None,
            index: Y,
            offset: 16,
        },
        LoadKind::I32S8,
    );
    let c = m.store_heap(
        RegImm::Imm(-2),
        HeapAddress {
            base: None,
            index: Y,
            offset: u32::MAX,
        },
        StoreKind::I64,
    );
    let d = m.store_heap(
        RegImm::Imm(0),
        HeapAddress {
            base: None,
            index: Y,
            offset: 4096,
        },
        StoreKind::F32,
    );
    let lines = disasm(&m.finish(0).unwrap());
    let at = |pc: u32| lines[pc as usize / 4].as_str();
    assert_eq!(at(a), "ldr x9, [x27, w10, uxtw]", "{lines:#?}");
    assert_eq!(at(b), "ldrsb w9, [x16, w10, uxtw]", "{lines:#?}");
    assert_eq!(at(c), "str x17, [x16, w10, uxtw]", "{lines:#?}");
    assert_eq!(at(d), "str wzr, [x16, w10, uxtw]", "{lines:#?}");
    assert_eq!(lines[1], "add x16, x27, #0x10");
    assert!(
        lines.contains(&"mov x16, #0xffffffff".to_string()),
        "{lines:#?}"
    );
}

#[test]
fn trap_sites_branch_straight_to_their_stubs() {
    let mut m = Aarch64Masm::new(&VMOffsets::default());
    let pc = m.trap_if(
        IntCmp::Eq,
        X,
        RegImm::Imm(0),
        S32,
        TrapCode::IntegerDivisionByZero,
    );
    let pc2 = m.trap_if(IntCmp::LtU, X, RegImm::Imm(7), S64, TrapCode::Unreachable);
    let lines = disasm(&m.finish(0).unwrap());
    assert_eq!((pc, pc2), (0, 8));
    assert_eq!(lines[0], "cbz w9, $+0xc", "{lines:#?}");
    assert_eq!(lines[1], "cmp x9, #0x7");
    assert_eq!(lines[2], "b.lo $+0x10", "{lines:#?}");
    // Stubs: mov w0, code; adr x1, site; b common.
    assert_eq!(lines[3], "mov w0, #0x8");
    assert_eq!(lines[4], "adr x1, $-0x10", "{lines:#?}");
    assert_eq!(lines[6], "mov w0, #0x1");
    assert_eq!(lines[7], "adr x1, $-0x14", "{lines:#?}");
    assert!(!m.needs_long_branches());
}

#[test]
fn a_function_beyond_conditional_branch_reach_asks_for_long_branches() {
    let mut m = Aarch64Masm::new(&VMOffsets::default());
    let end = m.new_label();
    m.cmp_branch(IntCmp::Eq, X, RegImm::Imm(0), S32, end);
    for _ in 0..(1 << 18) {
        m.mov(Y, RegImm::Reg(X), S64);
    }
    m.bind(end).unwrap();
    assert!(m.finish(0).is_err());
    assert!(m.needs_long_branches());
    m.reset();
    assert!(!m.needs_long_branches());
    m.use_long_branches(true);
    let end = m.new_label();
    m.cmp_branch(IntCmp::Eq, X, RegImm::Imm(0), S32, end);
    for _ in 0..(1 << 18) {
        m.mov(Y, RegImm::Reg(X), S64);
    }
    m.bind(end).unwrap();
    let lines = disasm(&m.finish(0).unwrap());
    assert_eq!(lines[0], "cbnz w9, $+0x8", "{lines:#?}");
    assert!(lines[1].starts_with("b $+"), "{lines:#?}");
}

#[test]
fn trap_sites_use_long_branches_and_stubs_point_back() {
    let mut m = Aarch64Masm::new(&VMOffsets::default());
    m.use_long_branches(true);
    let pc = m.trap_if(
        IntCmp::Eq,
        X,
        RegImm::Imm(0),
        S32,
        TrapCode::IntegerDivisionByZero,
    );
    let pc2 = m.trap_if(IntCmp::LtU, X, RegImm::Imm(7), S64, TrapCode::Unreachable);
    let lines = disasm(&m.finish(0).unwrap());
    assert_eq!(pc, 0);
    assert_eq!(lines[0], "cbnz w9, $+0x8", "{lines:#?}");
    assert!(lines[1].starts_with("b $+"), "{lines:#?}");
    assert_eq!(lines[2], "cmp x9, #0x7");
    assert_eq!(pc2, 12);
    assert_eq!(lines[3], "b.hs $+0x8");
    // Stubs: mov w0, code; adr x1, site; b common; then the common tail.
    assert_eq!(lines[5], "mov w0, #0x8");
    assert_eq!(lines[6], "adr x1, $-0x18", "{lines:#?}");
    assert_eq!(lines[8], "mov w0, #0x1");
    assert_eq!(lines[9], "adr x1, $-0x18", "{lines:#?}");
    assert_eq!(
        &lines[11..],
        ["mov x2, x29", "ldr x16, [x28, #0x20]", "br x16"]
    );
}

#[test]
fn prologue_patches_large_frames() {
    let mut m = Aarch64Masm::new(&VMOffsets::default());
    m.prologue(-8, 0).unwrap();
    m.zero_frame(-8 - 8 * 40, 8 * 40);
    m.epilogue();
    let lines = disasm(&m.finish(0x12_3450).unwrap());
    assert_eq!(
        &lines[..11],
        [
            "stp x29, x30, [sp, #-0x10]!",
            "mov x29, sp",
            "mov x16, #0x3450",
            "movk x16, #0x12, lsl #16",
            "sub sp, sp, x16",
            "ldr x16, [x28]",
            "cmp sp, x16",
            "b.lo $+0x28",
            "stur x28, [x29, #-0x8]",
            "sub x16, x29, #0x148",
            "mov x17, #0x14",
        ],
        "{lines:#?}"
    );
    assert!(lines.iter().all(|l| !l.starts_with(".word")), "{lines:#?}");
}

#[test]
fn stubs_assemble() {
    let s = super::stubs::generate_stubs(0x0000_7f12_3456_789a, 0x0000_7f12_3456_0000).unwrap();
    let lines = disasm(&s.code);
    assert!(lines.iter().all(|l| !l.starts_with(".word")), "{lines:#?}");
    assert!(s.enter < s.trap_landing && s.trap_landing < s.host_call);
    assert!(s.host_call < s.throw_landing);
    assert_eq!(lines[s.host_call / 4], "stp x29, x30, [sp, #-0x10]!");
    // The throw landing passes the return address and frame pointer of the throwing call,
    // then enters the pad it is given (or leaves `enter`).
    let throw = &lines[s.throw_landing / 4..];
    assert_eq!(&throw[..2], ["mov x1, x30", "mov x2, x29"], "{throw:#?}");
    assert!(throw.iter().any(|l| l == "br x16"), "{throw:#?}");
}

#[test]
fn every_primitive_decodes() {
    let lines = body(|m| {
        let l = m.new_label();
        m.bind(l).unwrap();
        for size in [S32, S64] {
            for op in [
                ShiftOp::Shl,
                ShiftOp::ShrS,
                ShiftOp::ShrU,
                ShiftOp::Rotl,
                ShiftOp::Rotr,
            ] {
                m.shift(op, X, Y, RegImm::Reg(X), size);
                m.shift(op, X, Y, RegImm::Imm(33), size);
            }
            for k in [DivKind::DivS, DivKind::DivU, DivKind::RemS, DivKind::RemU] {
                m.div(k, X, Y, X, size);
            }
            for op in [IntUnary::Clz, IntUnary::Ctz, IntUnary::Popcnt] {
                m.int_unary(op, X, Y, size);
            }
            for op in [
                FloatBinOp::Add,
                FloatBinOp::Sub,
                FloatBinOp::Mul,
                FloatBinOp::Div,
                FloatBinOp::Min,
                FloatBinOp::Max,
                FloatBinOp::Copysign,
            ] {
                m.float_binop(op, D, D, Reg::float(17), size);
            }
            for op in [
                FloatUnOp::Abs,
                FloatUnOp::Neg,
                FloatUnOp::Sqrt,
                FloatUnOp::Ceil,
                FloatUnOp::Floor,
                FloatUnOp::Trunc,
                FloatUnOp::Nearest,
            ] {
                m.float_unop(op, D, D, size);
            }
            m.float_cmp_set(FloatCmp::Le, X, D, D, size);
            m.float_cmp_branch(FloatCmp::Lt, D, D, size, l);
            m.select(X, Y, X, size);
            m.select(D, Y, D, size);
            m.cmp_branch(IntCmp::GeU, X, RegImm::Imm(5), size, l);
            m.cmp_branch(IntCmp::Ne, X, RegImm::Imm(0), size, l);
            for signed in [false, true] {
                for isz in [S32, S64] {
                    m.int_to_float(D, X, isz, signed, size);
                    m.float_to_int(X, D, size, isz, signed);
                }
            }
            m.float_to_float(D, D, size);
            m.mov(X, RegImm::Reg(D), size);
            m.mov(D, RegImm::Reg(X), size);
        }
        for k in [
            Extend::I32From8S,
            Extend::I32From16S,
            Extend::I64From8S,
            Extend::I64From16S,
            Extend::I64From32S,
            Extend::I64From32U,
            Extend::I32Wrap,
        ] {
            m.extend(k, X, Y);
        }
        let t = m.new_label();
        m.jump_table(X, &[l, t, l], t);
        m.bind(t).unwrap();
        let ret = m.call(CallTarget::Direct);
        assert_eq!(m.offset(), ret);
        let ret = m.call(CallTarget::FuncRef { funcref: Y });
        // The return address, before the context reload.
        assert_eq!(m.offset(), ret + 8);
        let ret = m.call_throw(56, Y);
        assert_eq!(m.offset(), ret);
        m.call_builtin(
            80,
            &[
                RegImm::Reg(X),
                RegImm::Imm(-1),
                RegImm::Reg(Y),
                RegImm::Imm(0),
            ],
        );
        m.trap(TrapCode::Unreachable);
    });
    assert!(lines.iter().all(|l| !l.starts_with(".word")), "{lines:#?}");
    let text = lines.join("\n");
    for want in [
        "lsl w9, w10, #0x1",
        "asr x9, x10, #0x21",
        "ror w9, w10, #0x1f",
        "neg w16, w9",
        "msub x9, x16, x9, x10",
        "rbit w16, w10",
        "cnt v30.8b, v30.8b",
        "addv b30, v30.8b",
        "fmin d16, d16, d17",
        "frintn s16, s16",
        "fcsel d16, d16, d16, ne",
        "fcvtzu w9, d16",
        "ucvtf s16, x9",
        "sxtb x9, w10",
        "sxtw x9, w10",
        "mov w9, w10",
        "adr x16, $+0xc",
        // yaxpeax prints the uxtw extend of this 64-bit add as `lsl` (objdump: `uxtw #2`).
        "add x16, x16, w9, lsl #2",
        "br x16",
        "blr x16",
        "mov x15, x28",
        "mov x3, x10",
        "mov x4, #0x0",
        "mov x0, x10",
        "ldr x16, [x28, #0x38]",
    ] {
        assert!(text.contains(want), "missing {want}:\n{text}");
    }
}

#[test]
fn logical_immediate_encoder_matches_masks() {
    assert_eq!(
        enc::logical_imm(0x7fff_ffff_ffff_ffff, true),
        Some(super::masm::MAG_MASK_64)
    );
    assert_eq!(
        enc::logical_imm(1 << 63, true),
        Some(super::masm::SIGN_MASK_64)
    );
    assert_eq!(
        enc::logical_imm(0x7fff_ffff, false),
        Some(super::masm::MAG_MASK_32)
    );
    assert_eq!(
        enc::logical_imm(0x8000_0000, false),
        Some(super::masm::SIGN_MASK_32)
    );
    assert_eq!(enc::logical_imm(0, true), None);
    assert_eq!(enc::logical_imm(u64::MAX, true), None);
}

/// A module with one function `(param i32 i32) (result i32)` whose body is `divs` copies of
/// `local.set 0 (i32.div_s (local.get 0) (local.get 1))` inside a loop that repeats while
/// local 0 is non-zero, all inside a block left early when local 1 is zero: a forward
/// `br_if` and a backward one span the whole body, and every `div_s` has trap branches to
/// stubs at the end of the function.
pub(crate) fn big_div_module(divs: u32) -> Vec<u8> {
    fn leb(mut v: u32, out: &mut Vec<u8>) {
        loop {
            let b = (v & 0x7f) as u8;
            v >>= 7;
            if v == 0 {
                out.push(b);
                return;
            }
            out.push(b | 0x80);
        }
    }
    let mut code = vec![0u8]; // no locals besides the parameters
    code.extend([0x02, 0x40, 0x20, 0x01, 0x45, 0x0d, 0x00, 0x03, 0x40]);
    for _ in 0..divs {
        code.extend([0x20, 0x00, 0x20, 0x01, 0x6d, 0x21, 0x00]);
    }
    code.extend([0x20, 0x00, 0x0d, 0x00, 0x0b, 0x0b, 0x20, 0x00, 0x0b]);
    let mut body = Vec::new();
    leb(code.len() as u32, &mut body);
    body.extend(code);
    let mut code_section = vec![1u8];
    code_section.extend(body);
    let mut m = b"\0asm\x01\0\0\0".to_vec();
    m.extend([0x01, 0x07, 0x01, 0x60, 0x02, 0x7f, 0x7f, 0x01, 0x7f]); // type
    m.extend([0x03, 0x02, 0x01, 0x00]); // function
    m.extend([0x07, 0x05, 0x01, 0x01, b'f', 0x00, 0x00]); // export "f"
    m.push(0x0a);
    leb(code_section.len() as u32, &mut m);
    m.extend(code_section);
    m
}

#[test]
fn functions_larger_than_the_conditional_branch_range_assemble() {
    use wasmparser::{Parser, Payload, ValidPayload, Validator};
    let wasm = big_div_module(40_000);
    let mut validator = Validator::new();
    let mut info = crate::ModuleInfo::default();
    let mut compiled = None;
    for payload in Parser::new(0).parse_all(&wasm) {
        let payload = payload.unwrap();
        if let Payload::TypeSection(ref r) = payload {
            for t in r.clone().into_iter_err_on_gc_types() {
                info.types.push(t.unwrap());
                info.type_ids.push(info.type_ids.len() as u32 + 1);
            }
        }
        if let Payload::FunctionSection(ref r) = payload {
            for t in r.clone() {
                info.functions.push(t.unwrap());
            }
            info.compute_offsets();
        }
        if let ValidPayload::Func(to_validate, body) = validator.payload(&payload).unwrap() {
            let mut fv = to_validate.into_validator(Default::default());
            let masm = Aarch64Masm::new(&info.offsets);
            compiled = Some(crate::compile_function(masm, &info, 0, &body, &mut fv));
        }
    }
    let f = compiled
        .expect("one function")
        .expect("a large function assembles");
    assert!(f.code.len() > 2 << 20, "only {} bytes", f.code.len());
    // Every trap site is a real branch, and decodes.
    let lines = disasm(&f.code);
    assert!(lines.iter().all(|l| !l.starts_with(".word")));
    for t in &f.traps {
        let l = &lines[t.pc as usize / 4];
        assert!(l.starts_with("b") || l.starts_with("cb"), "{l}");
    }
}

#[test]
fn jump_slots_thunk_and_stub() {
    use super::lazy::*;
    let base = 0x4000_0000usize;
    let thunk = base - 16;
    let t = jump_slots(0x1_0005, 2, base, thunk).unwrap();
    assert_eq!(t.len(), 2 * SLOT_SIZE);
    let lines = disasm(&t);
    assert_eq!(lines[..2], ["mov w17, #0x5", "movk w17, #0x1, lsl #16"]);
    assert_eq!(lines[3], "brk #0x0");
    assert_eq!(lines[4], "mov w17, #0x6");
    // Both `b`s lead to the thunk: -24 and -40 bytes from the words at +8 and +24.
    let word = |at: usize| u32::from_le_bytes(t[at..at + 4].try_into().unwrap());
    assert_eq!(
        word(SLOT_PATCH_OFFSET),
        0x1400_0000 | (-24i32 >> 2) as u32 & 0x03FF_FFFF
    );
    assert_eq!(word(SLOT_SIZE + SLOT_PATCH_OFFSET), 0x17FF_FFF6);
    assert!(lines[2].starts_with('b'), "{lines:#?}");
    let th = disasm(&lazy_thunk().unwrap());
    assert_eq!(th, ["ldr x16, [x28, #0x40]", "br x16"]);
    let s = disasm(&lazy_stub().unwrap());
    assert!(s.iter().all(|l| !l.starts_with(".word")), "{s:#?}");
    assert!(s.contains(&"br x0".to_string()), "{s:#?}");
}

#[test]
fn slot_patch_words() {
    use super::lazy::*;
    let slot = 0x4000_0000usize;
    let b = slot + SLOT_PATCH_OFFSET;
    // Forward and backward, to the ends of the ±128 MiB range.
    assert_eq!(slot_jump(slot, b + 0x1000), Some(0x1400_0400));
    assert_eq!(slot_jump(slot, b), Some(0x1400_0000));
    assert_eq!(slot_jump(slot, b - 4), Some(0x17FF_FFFF));
    assert_eq!(slot_jump(slot, b + (128 << 20) - 4), Some(0x15FF_FFFF));
    assert_eq!(slot_jump(slot, b - (128 << 20)), Some(0x1600_0000));
    assert_eq!(slot_jump(slot, b + (128 << 20)), None);
    assert_eq!(slot_jump(slot, b - (128 << 20) - 4), None);
    assert_eq!(slot_jump(slot, b + 2), None, "unaligned target");
    // A patched word decodes as a branch.
    let w = slot_jump(slot, b + 0x1000).unwrap();
    assert_eq!(disasm(&w.to_le_bytes()), ["b $+0x1000"]);
}

#[test]
fn direct_call_relocation() {
    use super::lazy::resolve_call;
    let mut m = Aarch64Masm::new(&VMOffsets::default());
    let ret = m.call(CallTarget::Direct) as usize;
    let mut code = m.finish(16).unwrap();
    assert_eq!(disasm(&code[ret - 4..ret]), ["bl $+0x0"]);
    let at = 0x4000_0000usize + ret - 4;
    resolve_call(&mut code[ret - 4..ret], at, at - 0x100).unwrap();
    assert_eq!(disasm(&code[ret - 4..ret]), ["bl $-0x100"]);
    resolve_call(&mut code[ret - 4..ret], at, at + 0x7FF_FFFC).unwrap();
    assert_eq!(code[ret - 4..ret], 0x95FF_FFFFu32.to_le_bytes());
    assert!(resolve_call(&mut code[ret - 4..ret], at, at + (128 << 20)).is_err());
}

/// A direct tail call tears the frame down and is a `b`, filled in by `resolve_call` and
/// retargeted by `retarget_word` as a `b` (a `bl` stays a `bl`).
#[test]
fn direct_tail_call_relocation() {
    use super::lazy::{resolve_call, retarget_word};
    let mut m = Aarch64Masm::new(&VMOffsets::default());
    let end = m.tail_call(CallTarget::Direct) as usize;
    let ret = m.call(CallTarget::Direct) as usize;
    let mut code = m.finish(16).unwrap();
    assert_eq!(
        disasm(&code[..end]),
        ["mov sp, x29", "ldp x29, x30, [sp], #0x10", "b $+0x0"]
    );
    let at = 0x4000_0000usize + end - 4;
    resolve_call(&mut code[end - 4..end], at, at - 0x100).unwrap();
    assert_eq!(disasm(&code[end - 4..end]), ["b $-0x100"]);
    let old = u32::from_le_bytes(code[end - 4..end].try_into().unwrap());
    let w = retarget_word(old, at, at + 0x200).unwrap();
    assert_eq!(disasm(&w.to_le_bytes()), ["b $+0x200"]);
    assert!(retarget_word(old, at, at + (128 << 20)).is_none());
    let call = u32::from_le_bytes(code[ret - 4..ret].try_into().unwrap());
    let w = retarget_word(call, ret, ret + 0x200).unwrap();
    assert_eq!(disasm(&w.to_le_bytes()), ["bl $+0x200"]);
}

/// A tail call through a funcref switches vmctx, stack limit and memory base like a call,
/// after the frame is gone, and branches; `reload_context` restores both registers.
#[test]
fn funcref_tail_call_and_context_reload() {
    check(
        |m| {
            m.tail_call(CallTarget::FuncRef { funcref: Y });
            m.reload_context();
        },
        &[
            "mov sp, x29",
            "ldp x29, x30, [sp], #0x10",
            "mov x15, x28",
            "ldr x28, [x10, #0x8]",
            "ldr x17, [x15]",
            "str x17, [x28]",
            "ldr x27, [x28, #0x8]",
            "ldr x17, [x10]",
            "br x17",
            "ldur x28, [x29, #-0x8]",
            "ldr x27, [x28, #0x8]",
        ],
    );
}

#[test]
fn epoch_slow_path_saves_live_registers_around_the_builtin_call() {
    use wasmparser::{Parser, Payload, ValidPayload, Validator};
    let wasm = wat::parse_str(
        r#"(module (func (param i32 i64) (result i32)
             (local.set 0 (i32.add (local.get 0) (i32.const 1)))
             (loop local.get 0 br_if 0) local.get 0))"#,
    )
    .unwrap();
    let mut validator = Validator::new();
    let mut info = crate::ModuleInfo {
        epoch_interruption: true,
        ..Default::default()
    };
    let mut compiled = None;
    for payload in Parser::new(0).parse_all(&wasm) {
        let payload = payload.unwrap();
        if let Payload::TypeSection(ref r) = payload {
            for t in r.clone().into_iter_err_on_gc_types() {
                info.types.push(t.unwrap());
                info.type_ids.push(info.type_ids.len() as u32 + 1);
            }
        }
        if let Payload::FunctionSection(ref r) = payload {
            for t in r.clone() {
                info.functions.push(t.unwrap());
            }
            info.compute_offsets();
        }
        if let ValidPayload::Func(to_validate, body) = validator.payload(&payload).unwrap() {
            let mut fv = to_validate.into_validator(Default::default());
            let masm = Aarch64Masm::new(&info.offsets);
            compiled = Some(crate::compile_function(masm, &info, 0, &body, &mut fv));
        }
    }
    let f = compiled.expect("one function").expect("compiles");
    let lines = disasm(&f.code);
    let text = lines.join("\n");
    let builtin = info.offsets.builtin(crate::vmctx::Builtin::EpochDeadline);
    // Two checks (entry and loop header), each: deadline through the store context, the
    // builtin call, a trap on non-zero. At the loop header local 0 lives in a register
    // (dirty): it is stored before the call and reloaded after; at entry nothing is live.
    let ctx = format!("[x28, #{:#x}]", info.offsets.store_context());
    assert_eq!(
        lines.iter().filter(|l| l.contains(&ctx)).count(),
        2,
        "{text}"
    );
    let call = format!("ldr x16, [x28, #{builtin:#x}]");
    let calls: Vec<usize> = (0..lines.len()).filter(|&i| lines[i] == call).collect();
    assert_eq!(calls.len(), 2, "{text}");
    for (n, &i) in calls.iter().enumerate() {
        assert_eq!(lines[i - 1], "mov x0, x28", "{text}");
        assert!(lines[i + 1].starts_with("blr x16"), "{text}");
        let saved = n == 1;
        assert_eq!(lines[i - 2].starts_with("str w"), saved, "{text}");
        assert_eq!(lines[i + 2].starts_with("ldr w"), saved, "{text}");
        let check = if saved { i + 3 } else { i + 2 };
        assert!(
            lines[check].starts_with("cbnz x0") || lines[check].starts_with("cbz x0"),
            "{text}"
        );
    }
    assert_eq!(
        f.traps
            .iter()
            .filter(|t| t.code == TrapCode::Interrupt)
            .count(),
        2
    );
}

/// The new vector encoders against GNU as 2.40 (`aarch64-linux-gnu-as`, then
/// `aarch64-linux-gnu-objdump -d`): each row is the encoder's word, the assembler's word and
/// the source line it assembled.
#[test]
fn vector_encoders_match_gnu_as() {
    use enc::{
        LdSt, VAcross, VArith, VArith2, VCmp, VFCvt, VFMisc, VFloat, VLogic, VMisc, VMisc2,
        VNarrow, VSize,
    };
    let rows: &[(u32, u32, &str)] = &[
        (
            enc::ld1_st1_lane(true, 1, 3, 16, 13),
            0x4d40_1603,
            "ld1 {v3.b}[13], [x16]",
        ),
        (
            enc::ld1_st1_lane(true, 1, 3, 16, 0),
            0x0d40_0203,
            "ld1 {v3.b}[0], [x16]",
        ),
        (
            enc::ld1_st1_lane(true, 2, 29, 16, 5),
            0x4d40_4a1d,
            "ld1 {v29.h}[5], [x16]",
        ),
        (
            enc::ld1_st1_lane(true, 4, 3, 16, 3),
            0x4d40_9203,
            "ld1 {v3.s}[3], [x16]",
        ),
        (
            enc::ld1_st1_lane(true, 8, 3, 16, 1),
            0x4d40_8603,
            "ld1 {v3.d}[1], [x16]",
        ),
        (
            enc::ld1_st1_lane(false, 1, 3, 16, 7),
            0x0d00_1e03,
            "st1 {v3.b}[7], [x16]",
        ),
        (
            enc::ld1_st1_lane(false, 2, 3, 16, 6),
            0x4d00_5203,
            "st1 {v3.h}[6], [x16]",
        ),
        (
            enc::ld1_st1_lane(false, 4, 31, 16, 2),
            0x4d00_821f,
            "st1 {v31.s}[2], [x16]",
        ),
        (
            enc::ld1_st1_lane(false, 8, 3, 16, 0),
            0x0d00_8603,
            "st1 {v3.d}[0], [x16]",
        ),
        (enc::vmov(1, 2), 0x4ea2_1c41, "mov v1.16b, v2.16b"),
        (enc::vmov(30, 7), 0x4ea7_1cfe, "mov v30.16b, v7.16b"),
        (
            enc::vlogic(VLogic::Orr, 31, 0, 17),
            0x4eb1_1c1f,
            "orr v31.16b, v0.16b, v17.16b",
        ),
        (
            enc::vlogic(VLogic::And, 1, 2, 3),
            0x4e23_1c41,
            "and v1.16b, v2.16b, v3.16b",
        ),
        (
            enc::vlogic(VLogic::Eor, 1, 2, 3),
            0x6e23_1c41,
            "eor v1.16b, v2.16b, v3.16b",
        ),
        (
            enc::vlogic(VLogic::Bic, 1, 2, 3),
            0x4e63_1c41,
            "bic v1.16b, v2.16b, v3.16b",
        ),
        (
            enc::vlogic(VLogic::And, 9, 10, 11),
            0x4e2b_1d49,
            "and v9.16b, v10.16b, v11.16b",
        ),
        (
            enc::vlogic(VLogic::Orr, 9, 10, 11),
            0x4eab_1d49,
            "orr v9.16b, v10.16b, v11.16b",
        ),
        (
            enc::vlogic(VLogic::Eor, 9, 10, 11),
            0x6e2b_1d49,
            "eor v9.16b, v10.16b, v11.16b",
        ),
        (
            enc::vlogic(VLogic::Bic, 9, 10, 11),
            0x4e6b_1d49,
            "bic v9.16b, v10.16b, v11.16b",
        ),
        (
            enc::vlogic(VLogic::Bsl, 1, 2, 3),
            0x6e63_1c41,
            "bsl v1.16b, v2.16b, v3.16b",
        ),
        (
            enc::vlogic(VLogic::Bit, 1, 2, 3),
            0x6ea3_1c41,
            "bit v1.16b, v2.16b, v3.16b",
        ),
        (
            enc::vlogic(VLogic::Bif, 1, 2, 3),
            0x6ee3_1c41,
            "bif v1.16b, v2.16b, v3.16b",
        ),
        (
            enc::vlogic(VLogic::Bsl, 16, 17, 18),
            0x6e72_1e30,
            "bsl v16.16b, v17.16b, v18.16b",
        ),
        (
            enc::vlogic(VLogic::Bit, 31, 0, 1),
            0x6ea1_1c1f,
            "bit v31.16b, v0.16b, v1.16b",
        ),
        (
            enc::vlogic(VLogic::Bif, 2, 31, 30),
            0x6efe_1fe2,
            "bif v2.16b, v31.16b, v30.16b",
        ),
        (
            enc::varith(VArith::Add, VSize::B16, 1, 2, 3),
            0x4e23_8441,
            "add v1.16b, v2.16b, v3.16b",
        ),
        (
            enc::varith(VArith::Add, VSize::H8, 1, 2, 3),
            0x4e63_8441,
            "add v1.8h, v2.8h, v3.8h",
        ),
        (
            enc::varith(VArith::Add, VSize::S4, 1, 2, 3),
            0x4ea3_8441,
            "add v1.4s, v2.4s, v3.4s",
        ),
        (
            enc::varith(VArith::Add, VSize::D2, 1, 2, 3),
            0x4ee3_8441,
            "add v1.2d, v2.2d, v3.2d",
        ),
        (
            enc::varith(VArith::Add, VSize::B16, 31, 30, 29),
            0x4e3d_87df,
            "add v31.16b, v30.16b, v29.16b",
        ),
        (
            enc::varith(VArith::Sub, VSize::B16, 1, 2, 3),
            0x6e23_8441,
            "sub v1.16b, v2.16b, v3.16b",
        ),
        (
            enc::varith(VArith::Sub, VSize::H8, 1, 2, 3),
            0x6e63_8441,
            "sub v1.8h, v2.8h, v3.8h",
        ),
        (
            enc::varith(VArith::Sub, VSize::S4, 1, 2, 3),
            0x6ea3_8441,
            "sub v1.4s, v2.4s, v3.4s",
        ),
        (
            enc::varith(VArith::Sub, VSize::D2, 1, 2, 3),
            0x6ee3_8441,
            "sub v1.2d, v2.2d, v3.2d",
        ),
        (
            enc::varith(VArith::Sub, VSize::H8, 16, 17, 18),
            0x6e72_8630,
            "sub v16.8h, v17.8h, v18.8h",
        ),
        (
            enc::varith(VArith::Mul, VSize::H8, 1, 2, 3),
            0x4e63_9c41,
            "mul v1.8h, v2.8h, v3.8h",
        ),
        (
            enc::varith(VArith::Mul, VSize::S4, 1, 2, 3),
            0x4ea3_9c41,
            "mul v1.4s, v2.4s, v3.4s",
        ),
        (
            enc::varith(VArith::Mul, VSize::S4, 0, 31, 16),
            0x4eb0_9fe0,
            "mul v0.4s, v31.4s, v16.4s",
        ),
        (
            enc::vmisc(VMisc::Not, VSize::B16, 1, 2),
            0x6e20_5841,
            "mvn v1.16b, v2.16b",
        ),
        (
            enc::vmisc(VMisc::Not, VSize::D2, 31, 0),
            0x6e20_581f,
            "mvn v31.16b, v0.16b",
        ),
        (
            enc::vmisc(VMisc::Neg, VSize::B16, 1, 2),
            0x6e20_b841,
            "neg v1.16b, v2.16b",
        ),
        (
            enc::vmisc(VMisc::Neg, VSize::H8, 1, 2),
            0x6e60_b841,
            "neg v1.8h, v2.8h",
        ),
        (
            enc::vmisc(VMisc::Neg, VSize::S4, 1, 2),
            0x6ea0_b841,
            "neg v1.4s, v2.4s",
        ),
        (
            enc::vmisc(VMisc::Neg, VSize::D2, 1, 2),
            0x6ee0_b841,
            "neg v1.2d, v2.2d",
        ),
        (
            enc::vmisc(VMisc::Neg, VSize::D2, 0, 31),
            0x6ee0_bbe0,
            "neg v0.2d, v31.2d",
        ),
        (enc::movi_2d(1, 0), 0x6f00_e401, "movi v1.2d, #0"),
        (
            enc::movi_2d(1, 0xff),
            0x6f07_e7e1,
            "movi v1.2d, #0xffffffffffffffff",
        ),
        (
            enc::movi_2d(31, 0xaa),
            0x6f05_e55f,
            "movi v31.2d, #0xff00ff00ff00ff00",
        ),
        (enc::movi_2d(5, 0x01), 0x6f00_e425, "movi v5.2d, #0xff"),
        (enc::ins_d(1, 1, 17), 0x4e18_1e21, "mov v1.d[1], x17"),
        (enc::ins_d(31, 1, 17), 0x4e18_1e3f, "mov v31.d[1], x17"),
        (enc::ins_d(0, 0, 1), 0x4e08_1c20, "mov v0.d[0], x1"),
        (enc::dup_2d(1, 16), 0x4e08_0e01, "dup v1.2d, x16"),
        (enc::dup_2d(31, 0), 0x4e08_0c1f, "dup v31.2d, x0"),
        (
            enc::cvt(true, true, enc::Cvt::FmovFromGp, 1, 16),
            0x9e67_0201,
            "fmov d1, x16",
        ),
        (
            enc::cvt(true, true, enc::Cvt::FmovFromGp, 1, enc::ZR),
            0x9e67_03e1,
            "fmov d1, xzr",
        ),
        (
            LdSt::LDR_Q.scaled(1, 29, 1),
            0x3dc0_07a1,
            "ldr q1, [x29, #16]",
        ),
        (
            LdSt::LDR_Q.scaled(1, 29, 4095),
            0x3dff_ffa1,
            "ldr q1, [x29, #65520]",
        ),
        (
            LdSt::LDR_Q.scaled(30, 28, 4095),
            0x3dff_ff9e,
            "ldr q30, [x28, #65520]",
        ),
        (
            LdSt::STR_Q.scaled(1, 31, 2),
            0x3d80_0be1,
            "str q1, [sp, #32]",
        ),
        (LdSt::STR_Q.scaled(31, 0, 0), 0x3d80_001f, "str q31, [x0]"),
        (
            LdSt::LDR_Q.unscaled(1, 29, -16),
            0x3cdf_03a1,
            "ldur q1, [x29, #-16]",
        ),
        (
            LdSt::LDR_Q.unscaled(1, 29, -256),
            0x3cd0_03a1,
            "ldur q1, [x29, #-256]",
        ),
        (
            LdSt::LDR_Q.unscaled(0, 29, 255),
            0x3ccf_f3a0,
            "ldur q0, [x29, #255]",
        ),
        (
            LdSt::STR_Q.unscaled(1, 28, 255),
            0x3c8f_f381,
            "stur q1, [x28, #255]",
        ),
        (
            LdSt::STR_Q.unscaled(17, 31, -256),
            0x3c90_03f1,
            "stur q17, [sp, #-256]",
        ),
        (
            LdSt::LDR_Q.indexed(1, 27, 9, enc::Extend::Uxtw, false),
            0x3ce9_4b61,
            "ldr q1, [x27, w9, uxtw]",
        ),
        (
            LdSt::STR_Q.indexed(1, 16, 9, enc::Extend::Uxtw, false),
            0x3ca9_4a01,
            "str q1, [x16, w9, uxtw]",
        ),
        (
            LdSt::STR_Q.indexed(0, 27, 26, enc::Extend::Uxtw, false),
            0x3cba_4b60,
            "str q0, [x27, w26, uxtw]",
        ),
        (
            LdSt::STR_Q.indexed(30, 16, 9, enc::Extend::Uxtw, false),
            0x3ca9_4a1e,
            "str q30, [x16, w9, uxtw]",
        ),
        (
            LdSt::LDR_Q.indexed(1, 29, 16, enc::Extend::Uxtx, false),
            0x3cf0_6ba1,
            "ldr q1, [x29, x16]",
        ),
        (
            LdSt::LDR_Q.indexed(17, 27, 16, enc::Extend::Uxtx, false),
            0x3cf0_6b71,
            "ldr q17, [x27, x16]",
        ),
        (
            LdSt::STR_Q.indexed(30, 29, 16, enc::Extend::Uxtx, false),
            0x3cb0_6bbe,
            "str q30, [x29, x16]",
        ),
        // Batch 2: lane comparisons, float lanes, abs, and the i64x2.mul lane moves.
        (
            enc::vcmp(VCmp::Cmeq, VSize::B16, 1, 2, 3),
            0x6e23_8c41,
            "cmeq v1.16b, v2.16b, v3.16b",
        ),
        (
            enc::vcmp(VCmp::Cmeq, VSize::H8, 1, 2, 3),
            0x6e63_8c41,
            "cmeq v1.8h, v2.8h, v3.8h",
        ),
        (
            enc::vcmp(VCmp::Cmeq, VSize::S4, 1, 2, 3),
            0x6ea3_8c41,
            "cmeq v1.4s, v2.4s, v3.4s",
        ),
        (
            enc::vcmp(VCmp::Cmeq, VSize::D2, 1, 2, 3),
            0x6ee3_8c41,
            "cmeq v1.2d, v2.2d, v3.2d",
        ),
        (
            enc::vcmp(VCmp::Cmeq, VSize::B16, 31, 30, 0),
            0x6e20_8fdf,
            "cmeq v31.16b, v30.16b, v0.16b",
        ),
        (
            enc::vcmp(VCmp::Cmgt, VSize::B16, 1, 2, 3),
            0x4e23_3441,
            "cmgt v1.16b, v2.16b, v3.16b",
        ),
        (
            enc::vcmp(VCmp::Cmgt, VSize::H8, 1, 2, 3),
            0x4e63_3441,
            "cmgt v1.8h, v2.8h, v3.8h",
        ),
        (
            enc::vcmp(VCmp::Cmgt, VSize::S4, 1, 2, 3),
            0x4ea3_3441,
            "cmgt v1.4s, v2.4s, v3.4s",
        ),
        (
            enc::vcmp(VCmp::Cmgt, VSize::D2, 1, 2, 3),
            0x4ee3_3441,
            "cmgt v1.2d, v2.2d, v3.2d",
        ),
        (
            enc::vcmp(VCmp::Cmge, VSize::B16, 1, 2, 3),
            0x4e23_3c41,
            "cmge v1.16b, v2.16b, v3.16b",
        ),
        (
            enc::vcmp(VCmp::Cmge, VSize::D2, 1, 2, 3),
            0x4ee3_3c41,
            "cmge v1.2d, v2.2d, v3.2d",
        ),
        (
            enc::vcmp(VCmp::Cmge, VSize::H8, 16, 17, 18),
            0x4e72_3e30,
            "cmge v16.8h, v17.8h, v18.8h",
        ),
        (
            enc::vcmp(VCmp::Cmhi, VSize::B16, 1, 2, 3),
            0x6e23_3441,
            "cmhi v1.16b, v2.16b, v3.16b",
        ),
        (
            enc::vcmp(VCmp::Cmhi, VSize::H8, 1, 2, 3),
            0x6e63_3441,
            "cmhi v1.8h, v2.8h, v3.8h",
        ),
        (
            enc::vcmp(VCmp::Cmhi, VSize::S4, 1, 2, 3),
            0x6ea3_3441,
            "cmhi v1.4s, v2.4s, v3.4s",
        ),
        (
            enc::vcmp(VCmp::Cmhi, VSize::B16, 0, 31, 16),
            0x6e30_37e0,
            "cmhi v0.16b, v31.16b, v16.16b",
        ),
        (
            enc::vcmp(VCmp::Cmhs, VSize::B16, 1, 2, 3),
            0x6e23_3c41,
            "cmhs v1.16b, v2.16b, v3.16b",
        ),
        (
            enc::vcmp(VCmp::Cmhs, VSize::H8, 1, 2, 3),
            0x6e63_3c41,
            "cmhs v1.8h, v2.8h, v3.8h",
        ),
        (
            enc::vcmp(VCmp::Cmhs, VSize::S4, 1, 2, 3),
            0x6ea3_3c41,
            "cmhs v1.4s, v2.4s, v3.4s",
        ),
        (
            enc::vcmp(VCmp::Cmhs, VSize::S4, 31, 0, 30),
            0x6ebe_3c1f,
            "cmhs v31.4s, v0.4s, v30.4s",
        ),
        (
            enc::vfloat(VFloat::Fadd, false, 1, 2, 3),
            0x4e23_d441,
            "fadd v1.4s, v2.4s, v3.4s",
        ),
        (
            enc::vfloat(VFloat::Fadd, true, 1, 2, 3),
            0x4e63_d441,
            "fadd v1.2d, v2.2d, v3.2d",
        ),
        (
            enc::vfloat(VFloat::Fsub, false, 1, 2, 3),
            0x4ea3_d441,
            "fsub v1.4s, v2.4s, v3.4s",
        ),
        (
            enc::vfloat(VFloat::Fsub, true, 1, 2, 3),
            0x4ee3_d441,
            "fsub v1.2d, v2.2d, v3.2d",
        ),
        (
            enc::vfloat(VFloat::Fmul, false, 1, 2, 3),
            0x6e23_dc41,
            "fmul v1.4s, v2.4s, v3.4s",
        ),
        (
            enc::vfloat(VFloat::Fmul, true, 1, 2, 3),
            0x6e63_dc41,
            "fmul v1.2d, v2.2d, v3.2d",
        ),
        (
            enc::vfloat(VFloat::Fdiv, false, 1, 2, 3),
            0x6e23_fc41,
            "fdiv v1.4s, v2.4s, v3.4s",
        ),
        (
            enc::vfloat(VFloat::Fdiv, true, 1, 2, 3),
            0x6e63_fc41,
            "fdiv v1.2d, v2.2d, v3.2d",
        ),
        (
            enc::vfloat(VFloat::Fdiv, true, 31, 0, 30),
            0x6e7e_fc1f,
            "fdiv v31.2d, v0.2d, v30.2d",
        ),
        (
            enc::vfloat(VFloat::Fcmeq, false, 1, 2, 3),
            0x4e23_e441,
            "fcmeq v1.4s, v2.4s, v3.4s",
        ),
        (
            enc::vfloat(VFloat::Fcmeq, true, 1, 2, 3),
            0x4e63_e441,
            "fcmeq v1.2d, v2.2d, v3.2d",
        ),
        (
            enc::vfloat(VFloat::Fcmge, false, 1, 2, 3),
            0x6e23_e441,
            "fcmge v1.4s, v2.4s, v3.4s",
        ),
        (
            enc::vfloat(VFloat::Fcmge, true, 1, 2, 3),
            0x6e63_e441,
            "fcmge v1.2d, v2.2d, v3.2d",
        ),
        (
            enc::vfloat(VFloat::Fcmgt, false, 1, 2, 3),
            0x6ea3_e441,
            "fcmgt v1.4s, v2.4s, v3.4s",
        ),
        (
            enc::vfloat(VFloat::Fcmgt, true, 1, 2, 3),
            0x6ee3_e441,
            "fcmgt v1.2d, v2.2d, v3.2d",
        ),
        (
            enc::vfloat(VFloat::Fcmgt, false, 16, 31, 17),
            0x6eb1_e7f0,
            "fcmgt v16.4s, v31.4s, v17.4s",
        ),
        (
            enc::vmisc(VMisc::Abs, VSize::B16, 1, 2),
            0x4e20_b841,
            "abs v1.16b, v2.16b",
        ),
        (
            enc::vmisc(VMisc::Abs, VSize::H8, 1, 2),
            0x4e60_b841,
            "abs v1.8h, v2.8h",
        ),
        (
            enc::vmisc(VMisc::Abs, VSize::S4, 1, 2),
            0x4ea0_b841,
            "abs v1.4s, v2.4s",
        ),
        (
            enc::vmisc(VMisc::Abs, VSize::D2, 1, 2),
            0x4ee0_b841,
            "abs v1.2d, v2.2d",
        ),
        (
            enc::vmisc(VMisc::Abs, VSize::B16, 31, 0),
            0x4e20_b81f,
            "abs v31.16b, v0.16b",
        ),
        (
            enc::vfmisc(VFMisc::Fabs, false, 1, 2),
            0x4ea0_f841,
            "fabs v1.4s, v2.4s",
        ),
        (
            enc::vfmisc(VFMisc::Fabs, true, 1, 2),
            0x4ee0_f841,
            "fabs v1.2d, v2.2d",
        ),
        (
            enc::vfmisc(VFMisc::Fneg, false, 1, 2),
            0x6ea0_f841,
            "fneg v1.4s, v2.4s",
        ),
        (
            enc::vfmisc(VFMisc::Fneg, true, 1, 2),
            0x6ee0_f841,
            "fneg v1.2d, v2.2d",
        ),
        (
            enc::vfmisc(VFMisc::Fsqrt, false, 1, 2),
            0x6ea1_f841,
            "fsqrt v1.4s, v2.4s",
        ),
        (
            enc::vfmisc(VFMisc::Fsqrt, true, 1, 2),
            0x6ee1_f841,
            "fsqrt v1.2d, v2.2d",
        ),
        (
            enc::vfmisc(VFMisc::Fsqrt, true, 0, 31),
            0x6ee1_fbe0,
            "fsqrt v0.2d, v31.2d",
        ),
        (
            enc::vfmisc(VFMisc::Fneg, false, 31, 16),
            0x6ea0_fa1f,
            "fneg v31.4s, v16.4s",
        ),
        (enc::umov_d(16, 1, 0), 0x4e08_3c30, "mov x16, v1.d[0]"),
        (enc::umov_d(16, 1, 1), 0x4e18_3c30, "mov x16, v1.d[1]"),
        (enc::umov_d(17, 31, 0), 0x4e08_3ff1, "mov x17, v31.d[0]"),
        (enc::umov_d(0, 30, 1), 0x4e18_3fc0, "mov x0, v30.d[1]"),
        (
            enc::madd(true, false, 16, 16, 17, enc::ZR),
            0x9b11_7e10,
            "mul x16, x16, x17",
        ),
        (enc::ins_d(1, 0, 16), 0x4e08_1e01, "mov v1.d[0], x16"),
        (enc::ins_d(31, 1, 16), 0x4e18_1e1f, "mov v31.d[1], x16"),
        (
            enc::varith2(VArith2::Sqadd, VSize::B16, 1, 2, 3),
            0x4e23_0c41,
            "sqadd v1.16b, v2.16b, v3.16b",
        ),
        (
            enc::varith2(VArith2::Sqadd, VSize::H8, 31, 30, 16),
            0x4e70_0fdf,
            "sqadd v31.8h, v30.8h, v16.8h",
        ),
        (
            enc::varith2(VArith2::Uqadd, VSize::B16, 1, 2, 3),
            0x6e23_0c41,
            "uqadd v1.16b, v2.16b, v3.16b",
        ),
        (
            enc::varith2(VArith2::Uqadd, VSize::H8, 9, 31, 17),
            0x6e71_0fe9,
            "uqadd v9.8h, v31.8h, v17.8h",
        ),
        (
            enc::varith2(VArith2::Sqsub, VSize::B16, 1, 2, 3),
            0x4e23_2c41,
            "sqsub v1.16b, v2.16b, v3.16b",
        ),
        (
            enc::varith2(VArith2::Sqsub, VSize::H8, 16, 17, 31),
            0x4e7f_2e30,
            "sqsub v16.8h, v17.8h, v31.8h",
        ),
        (
            enc::varith2(VArith2::Uqsub, VSize::B16, 1, 2, 3),
            0x6e23_2c41,
            "uqsub v1.16b, v2.16b, v3.16b",
        ),
        (
            enc::varith2(VArith2::Uqsub, VSize::H8, 29, 8, 30),
            0x6e7e_2d1d,
            "uqsub v29.8h, v8.8h, v30.8h",
        ),
        (
            enc::varith2(VArith2::Smin, VSize::B16, 1, 2, 3),
            0x4e23_6c41,
            "smin v1.16b, v2.16b, v3.16b",
        ),
        (
            enc::varith2(VArith2::Smin, VSize::S4, 31, 2, 3),
            0x4ea3_6c5f,
            "smin v31.4s, v2.4s, v3.4s",
        ),
        (
            enc::varith2(VArith2::Umin, VSize::H8, 1, 2, 3),
            0x6e63_6c41,
            "umin v1.8h, v2.8h, v3.8h",
        ),
        (
            enc::varith2(VArith2::Umin, VSize::S4, 1, 31, 3),
            0x6ea3_6fe1,
            "umin v1.4s, v31.4s, v3.4s",
        ),
        (
            enc::varith2(VArith2::Smax, VSize::H8, 1, 2, 3),
            0x4e63_6441,
            "smax v1.8h, v2.8h, v3.8h",
        ),
        (
            enc::varith2(VArith2::Smax, VSize::S4, 1, 2, 31),
            0x4ebf_6441,
            "smax v1.4s, v2.4s, v31.4s",
        ),
        (
            enc::varith2(VArith2::Umax, VSize::B16, 1, 2, 3),
            0x6e23_6441,
            "umax v1.16b, v2.16b, v3.16b",
        ),
        (
            enc::varith2(VArith2::Umax, VSize::S4, 20, 21, 22),
            0x6eb6_66b4,
            "umax v20.4s, v21.4s, v22.4s",
        ),
        (
            enc::varith2(VArith2::Urhadd, VSize::B16, 1, 2, 3),
            0x6e23_1441,
            "urhadd v1.16b, v2.16b, v3.16b",
        ),
        (
            enc::varith2(VArith2::Urhadd, VSize::H8, 31, 30, 29),
            0x6e7d_17df,
            "urhadd v31.8h, v30.8h, v29.8h",
        ),
        (
            enc::varith2(VArith2::Sqrdmulh, VSize::H8, 1, 2, 3),
            0x6e63_b441,
            "sqrdmulh v1.8h, v2.8h, v3.8h",
        ),
        (
            enc::varith2(VArith2::Sqrdmulh, VSize::H8, 31, 16, 30),
            0x6e7e_b61f,
            "sqrdmulh v31.8h, v16.8h, v30.8h",
        ),
        (
            enc::varith2(VArith2::Addp, VSize::B16, 30, 30, 30),
            0x4e3e_bfde,
            "addp v30.16b, v30.16b, v30.16b",
        ),
        (
            enc::varith2(VArith2::Addp, VSize::H8, 1, 2, 3),
            0x4e63_bc41,
            "addp v1.8h, v2.8h, v3.8h",
        ),
        (
            enc::varith2(VArith2::Addp, VSize::S4, 16, 30, 31),
            0x4ebf_bfd0,
            "addp v16.4s, v30.4s, v31.4s",
        ),
        (
            enc::varith2(VArith2::Sshl, VSize::B16, 1, 2, 30),
            0x4e3e_4441,
            "sshl v1.16b, v2.16b, v30.16b",
        ),
        (
            enc::varith2(VArith2::Sshl, VSize::D2, 31, 2, 30),
            0x4efe_445f,
            "sshl v31.2d, v2.2d, v30.2d",
        ),
        (
            enc::varith2(VArith2::Ushl, VSize::H8, 1, 2, 30),
            0x6e7e_4441,
            "ushl v1.8h, v2.8h, v30.8h",
        ),
        (
            enc::varith2(VArith2::Ushl, VSize::S4, 1, 2, 30),
            0x6ebe_4441,
            "ushl v1.4s, v2.4s, v30.4s",
        ),
        (
            enc::varith2(VArith2::Ushl, VSize::D2, 1, 2, 30),
            0x6efe_4441,
            "ushl v1.2d, v2.2d, v30.2d",
        ),
        (
            enc::vfminmax(true, false, 1, 2, 3),
            0x4ea3_f441,
            "fmin v1.4s, v2.4s, v3.4s",
        ),
        (
            enc::vfminmax(true, true, 31, 2, 3),
            0x4ee3_f45f,
            "fmin v31.2d, v2.2d, v3.2d",
        ),
        (
            enc::vfminmax(false, false, 1, 31, 3),
            0x4e23_f7e1,
            "fmax v1.4s, v31.4s, v3.4s",
        ),
        (
            enc::vfminmax(false, true, 1, 2, 31),
            0x4e7f_f441,
            "fmax v1.2d, v2.2d, v31.2d",
        ),
        (
            enc::vmull(true, false, VSize::B16, 1, 2, 3),
            0x0e23_c041,
            "smull v1.8h, v2.8b, v3.8b",
        ),
        (
            enc::vmull(true, true, VSize::B16, 1, 2, 3),
            0x4e23_c041,
            "smull2 v1.8h, v2.16b, v3.16b",
        ),
        (
            enc::vmull(false, false, VSize::H8, 31, 2, 3),
            0x2e63_c05f,
            "umull v31.4s, v2.4h, v3.4h",
        ),
        (
            enc::vmull(false, true, VSize::H8, 1, 31, 3),
            0x6e63_c3e1,
            "umull2 v1.4s, v31.8h, v3.8h",
        ),
        (
            enc::vmull(true, false, VSize::S4, 1, 2, 31),
            0x0ebf_c041,
            "smull v1.2d, v2.2s, v31.2s",
        ),
        (
            enc::vmull(false, true, VSize::S4, 30, 2, 3),
            0x6ea3_c05e,
            "umull2 v30.2d, v2.4s, v3.4s",
        ),
        (
            enc::vmull(true, true, VSize::H8, 31, 16, 17),
            0x4e71_c21f,
            "smull2 v31.4s, v16.8h, v17.8h",
        ),
        (
            enc::vmisc2(VMisc2::Cnt, VSize::B16, 1, 2),
            0x4e20_5841,
            "cnt v1.16b, v2.16b",
        ),
        (
            enc::vmisc2(VMisc2::Cnt, VSize::B16, 31, 30),
            0x4e20_5bdf,
            "cnt v31.16b, v30.16b",
        ),
        (
            enc::vmisc2(VMisc2::Saddlp, VSize::B16, 1, 2),
            0x4e20_2841,
            "saddlp v1.8h, v2.16b",
        ),
        (
            enc::vmisc2(VMisc2::Saddlp, VSize::H8, 31, 2),
            0x4e60_285f,
            "saddlp v31.4s, v2.8h",
        ),
        (
            enc::vmisc2(VMisc2::Uaddlp, VSize::B16, 1, 31),
            0x6e20_2be1,
            "uaddlp v1.8h, v31.16b",
        ),
        (
            enc::vmisc2(VMisc2::Uaddlp, VSize::H8, 1, 2),
            0x6e60_2841,
            "uaddlp v1.4s, v2.8h",
        ),
        (
            enc::vmisc2(VMisc2::CmeqZero, VSize::D2, 30, 17),
            0x4ee0_9a3e,
            "cmeq v30.2d, v17.2d, #0",
        ),
        (
            enc::vmisc2(VMisc2::CmltZero, VSize::B16, 30, 31),
            0x4e20_abfe,
            "cmlt v30.16b, v31.16b, #0",
        ),
        (
            enc::vmisc2(VMisc2::CmltZero, VSize::H8, 30, 2),
            0x4e60_a85e,
            "cmlt v30.8h, v2.8h, #0",
        ),
        (
            enc::vmisc2(VMisc2::CmltZero, VSize::S4, 30, 2),
            0x4ea0_a85e,
            "cmlt v30.4s, v2.4s, #0",
        ),
        (
            enc::vnarrow(VNarrow::Sqxtn, false, VSize::B16, 1, 2),
            0x0e21_4841,
            "sqxtn v1.8b, v2.8h",
        ),
        (
            enc::vnarrow(VNarrow::Sqxtn, true, VSize::B16, 1, 2),
            0x4e21_4841,
            "sqxtn2 v1.16b, v2.8h",
        ),
        (
            enc::vnarrow(VNarrow::Sqxtn, false, VSize::H8, 31, 2),
            0x0e61_485f,
            "sqxtn v31.4h, v2.4s",
        ),
        (
            enc::vnarrow(VNarrow::Sqxtn, true, VSize::H8, 1, 31),
            0x4e61_4be1,
            "sqxtn2 v1.8h, v31.4s",
        ),
        (
            enc::vnarrow(VNarrow::Sqxtn, false, VSize::S4, 1, 2),
            0x0ea1_4841,
            "sqxtn v1.2s, v2.2d",
        ),
        (
            enc::vnarrow(VNarrow::Sqxtun, false, VSize::B16, 30, 2),
            0x2e21_285e,
            "sqxtun v30.8b, v2.8h",
        ),
        (
            enc::vnarrow(VNarrow::Sqxtun, true, VSize::B16, 30, 2),
            0x6e21_285e,
            "sqxtun2 v30.16b, v2.8h",
        ),
        (
            enc::vnarrow(VNarrow::Sqxtun, false, VSize::H8, 1, 2),
            0x2e61_2841,
            "sqxtun v1.4h, v2.4s",
        ),
        (
            enc::vnarrow(VNarrow::Sqxtun, true, VSize::H8, 1, 2),
            0x6e61_2841,
            "sqxtun2 v1.8h, v2.4s",
        ),
        (
            enc::vnarrow(VNarrow::Uqxtn, false, VSize::S4, 31, 31),
            0x2ea1_4bff,
            "uqxtn v31.2s, v31.2d",
        ),
        (
            enc::vfcvt(VFCvt::Frintn, false, 1, 2),
            0x4e21_8841,
            "frintn v1.4s, v2.4s",
        ),
        (
            enc::vfcvt(VFCvt::Frintn, true, 1, 2),
            0x4e61_8841,
            "frintn v1.2d, v2.2d",
        ),
        (
            enc::vfcvt(VFCvt::Frintm, false, 31, 2),
            0x4e21_985f,
            "frintm v31.4s, v2.4s",
        ),
        (
            enc::vfcvt(VFCvt::Frintm, true, 1, 2),
            0x4e61_9841,
            "frintm v1.2d, v2.2d",
        ),
        (
            enc::vfcvt(VFCvt::Frintp, false, 1, 31),
            0x4ea1_8be1,
            "frintp v1.4s, v31.4s",
        ),
        (
            enc::vfcvt(VFCvt::Frintp, true, 1, 2),
            0x4ee1_8841,
            "frintp v1.2d, v2.2d",
        ),
        (
            enc::vfcvt(VFCvt::Frintz, false, 1, 2),
            0x4ea1_9841,
            "frintz v1.4s, v2.4s",
        ),
        (
            enc::vfcvt(VFCvt::Frintz, true, 17, 18),
            0x4ee1_9a51,
            "frintz v17.2d, v18.2d",
        ),
        (
            enc::vfcvt(VFCvt::Scvtf, false, 1, 2),
            0x4e21_d841,
            "scvtf v1.4s, v2.4s",
        ),
        (
            enc::vfcvt(VFCvt::Scvtf, true, 31, 2),
            0x4e61_d85f,
            "scvtf v31.2d, v2.2d",
        ),
        (
            enc::vfcvt(VFCvt::Ucvtf, false, 1, 2),
            0x6e21_d841,
            "ucvtf v1.4s, v2.4s",
        ),
        (
            enc::vfcvt(VFCvt::Ucvtf, true, 1, 31),
            0x6e61_dbe1,
            "ucvtf v1.2d, v31.2d",
        ),
        (
            enc::vfcvt(VFCvt::Fcvtzs, false, 1, 2),
            0x4ea1_b841,
            "fcvtzs v1.4s, v2.4s",
        ),
        (
            enc::vfcvt(VFCvt::Fcvtzs, true, 1, 2),
            0x4ee1_b841,
            "fcvtzs v1.2d, v2.2d",
        ),
        (
            enc::vfcvt(VFCvt::Fcvtzu, false, 30, 2),
            0x6ea1_b85e,
            "fcvtzu v30.4s, v2.4s",
        ),
        (
            enc::vfcvt(VFCvt::Fcvtzu, true, 1, 29),
            0x6ee1_bba1,
            "fcvtzu v1.2d, v29.2d",
        ),
        (enc::fcvtn_2s(1, 2), 0x0e61_6841, "fcvtn v1.2s, v2.2d"),
        (enc::fcvtn_2s(31, 30), 0x0e61_6bdf, "fcvtn v31.2s, v30.2d"),
        (enc::fcvtl_2d(1, 2), 0x0e61_7841, "fcvtl v1.2d, v2.2s"),
        (enc::fcvtl_2d(30, 31), 0x0e61_7bfe, "fcvtl v30.2d, v31.2s"),
        (
            enc::vshll(true, false, VSize::B16, 1, 2, 0),
            0x0f08_a441,
            "sshll v1.8h, v2.8b, #0",
        ),
        (
            enc::vshll(true, true, VSize::B16, 1, 2, 0),
            0x4f08_a441,
            "sshll2 v1.8h, v2.16b, #0",
        ),
        (
            enc::vshll(false, false, VSize::H8, 31, 2, 0),
            0x2f10_a45f,
            "ushll v31.4s, v2.4h, #0",
        ),
        (
            enc::vshll(false, true, VSize::H8, 1, 31, 0),
            0x6f10_a7e1,
            "ushll2 v1.4s, v31.8h, #0",
        ),
        (
            enc::vshll(true, false, VSize::S4, 1, 2, 0),
            0x0f20_a441,
            "sshll v1.2d, v2.2s, #0",
        ),
        (
            enc::vshll(false, true, VSize::S4, 1, 2, 0),
            0x6f20_a441,
            "ushll2 v1.2d, v2.4s, #0",
        ),
        (
            enc::vshll(true, false, VSize::H8, 1, 2, 5),
            0x0f15_a441,
            "sshll v1.4s, v2.4h, #5",
        ),
        (
            enc::vshl_imm(VSize::B16, 1, 2, 0),
            0x4f08_5441,
            "shl v1.16b, v2.16b, #0",
        ),
        (
            enc::vshl_imm(VSize::B16, 1, 2, 7),
            0x4f0f_5441,
            "shl v1.16b, v2.16b, #7",
        ),
        (
            enc::vshl_imm(VSize::H8, 31, 2, 15),
            0x4f1f_545f,
            "shl v31.8h, v2.8h, #15",
        ),
        (
            enc::vshl_imm(VSize::S4, 1, 31, 1),
            0x4f21_57e1,
            "shl v1.4s, v31.4s, #1",
        ),
        (
            enc::vshl_imm(VSize::D2, 1, 2, 63),
            0x4f7f_5441,
            "shl v1.2d, v2.2d, #63",
        ),
        (
            enc::vshr_imm(true, VSize::B16, 1, 2, 1),
            0x4f0f_0441,
            "sshr v1.16b, v2.16b, #1",
        ),
        (
            enc::vshr_imm(true, VSize::B16, 1, 2, 7),
            0x4f09_0441,
            "sshr v1.16b, v2.16b, #7",
        ),
        (
            enc::vshr_imm(false, VSize::H8, 31, 2, 15),
            0x6f11_045f,
            "ushr v31.8h, v2.8h, #15",
        ),
        (
            enc::vshr_imm(true, VSize::S4, 1, 31, 31),
            0x4f21_07e1,
            "sshr v1.4s, v31.4s, #31",
        ),
        (
            enc::vshr_imm(false, VSize::D2, 1, 2, 63),
            0x6f41_0441,
            "ushr v1.2d, v2.2d, #63",
        ),
        (
            enc::vshr_imm(true, VSize::D2, 1, 2, 1),
            0x4f7f_0441,
            "sshr v1.2d, v2.2d, #1",
        ),
        (
            enc::vacross(VAcross::Addv, VSize::B16, 30, 30),
            0x4e31_bbde,
            "addv b30, v30.16b",
        ),
        (
            enc::vacross(VAcross::Addv, VSize::H8, 30, 31),
            0x4e71_bbfe,
            "addv h30, v31.8h",
        ),
        (
            enc::vacross(VAcross::Addv, VSize::S4, 1, 2),
            0x4eb1_b841,
            "addv s1, v2.4s",
        ),
        (
            enc::vacross(VAcross::Umaxv, VSize::S4, 30, 17),
            0x6eb0_aa3e,
            "umaxv s30, v17.4s",
        ),
        (
            enc::vacross(VAcross::Umaxv, VSize::B16, 1, 2),
            0x6e30_a841,
            "umaxv b1, v2.16b",
        ),
        (
            enc::vacross(VAcross::Uminv, VSize::B16, 30, 31),
            0x6e31_abfe,
            "uminv b30, v31.16b",
        ),
        (
            enc::vacross(VAcross::Uminv, VSize::H8, 1, 2),
            0x6e71_a841,
            "uminv h1, v2.8h",
        ),
        (
            enc::vacross(VAcross::Uminv, VSize::S4, 1, 2),
            0x6eb1_a841,
            "uminv s1, v2.4s",
        ),
        (enc::dup_gp(VSize::B16, 1, 2), 0x4e01_0c41, "dup v1.16b, w2"),
        (
            enc::dup_gp(VSize::H8, 31, 16),
            0x4e02_0e1f,
            "dup v31.8h, w16",
        ),
        (
            enc::dup_gp(VSize::S4, 30, 30),
            0x4e04_0fde,
            "dup v30.4s, w30",
        ),
        (enc::dup_gp(VSize::D2, 1, 17), 0x4e08_0e21, "dup v1.2d, x17"),
        (
            enc::dup_elem(VSize::S4, 1, 2, 0),
            0x4e04_0441,
            "dup v1.4s, v2.s[0]",
        ),
        (
            enc::dup_elem(VSize::D2, 31, 2, 0),
            0x4e08_045f,
            "dup v31.2d, v2.d[0]",
        ),
        (
            enc::dup_elem(VSize::B16, 1, 2, 15),
            0x4e1f_0441,
            "dup v1.16b, v2.b[15]",
        ),
        (
            enc::dup_elem(VSize::H8, 1, 31, 7),
            0x4e1e_07e1,
            "dup v1.8h, v31.h[7]",
        ),
        (
            enc::dup_elem(VSize::S4, 1, 2, 3),
            0x4e1c_0441,
            "dup v1.4s, v2.s[3]",
        ),
        (
            enc::dup_elem(VSize::D2, 1, 2, 1),
            0x4e18_0441,
            "dup v1.2d, v2.d[1]",
        ),
        (
            enc::dup_scalar(VSize::S4, 1, 2, 2),
            0x5e14_0441,
            "mov s1, v2.s[2]",
        ),
        (
            enc::dup_scalar(VSize::S4, 31, 30, 0),
            0x5e04_07df,
            "mov s31, v30.s[0]",
        ),
        (
            enc::dup_scalar(VSize::D2, 1, 2, 1),
            0x5e18_0441,
            "mov d1, v2.d[1]",
        ),
        (
            enc::dup_scalar(VSize::D2, 16, 31, 0),
            0x5e08_07f0,
            "mov d16, v31.d[0]",
        ),
        (
            enc::mov_to_gp(true, VSize::B16, 1, 2, 15),
            0x0e1f_2c41,
            "smov w1, v2.b[15]",
        ),
        (
            enc::mov_to_gp(true, VSize::B16, 30, 31, 0),
            0x0e01_2ffe,
            "smov w30, v31.b[0]",
        ),
        (
            enc::mov_to_gp(true, VSize::H8, 1, 2, 7),
            0x0e1e_2c41,
            "smov w1, v2.h[7]",
        ),
        (
            enc::mov_to_gp(false, VSize::B16, 16, 2, 9),
            0x0e13_3c50,
            "umov w16, v2.b[9]",
        ),
        (
            enc::mov_to_gp(false, VSize::H8, 1, 30, 3),
            0x0e0e_3fc1,
            "umov w1, v30.h[3]",
        ),
        (
            enc::mov_to_gp(false, VSize::S4, 26, 2, 3),
            0x0e1c_3c5a,
            "mov w26, v2.s[3]",
        ),
        (
            enc::mov_to_gp(false, VSize::S4, 1, 2, 0),
            0x0e04_3c41,
            "mov w1, v2.s[0]",
        ),
        (
            enc::mov_to_gp(false, VSize::D2, 25, 2, 1),
            0x4e18_3c59,
            "mov x25, v2.d[1]",
        ),
        (
            enc::ins_gp(VSize::B16, 1, 15, 2),
            0x4e1f_1c41,
            "mov v1.b[15], w2",
        ),
        (
            enc::ins_gp(VSize::B16, 31, 0, 30),
            0x4e01_1fdf,
            "mov v31.b[0], w30",
        ),
        (
            enc::ins_gp(VSize::H8, 1, 6, 17),
            0x4e1a_1e21,
            "mov v1.h[6], w17",
        ),
        (
            enc::ins_gp(VSize::S4, 1, 3, 2),
            0x4e1c_1c41,
            "mov v1.s[3], w2",
        ),
        (
            enc::ins_gp(VSize::D2, 1, 1, 20),
            0x4e18_1e81,
            "mov v1.d[1], x20",
        ),
        (
            enc::ins_elem(VSize::S4, 1, 2, 3, 0),
            0x6e14_0461,
            "mov v1.s[2], v3.s[0]",
        ),
        (
            enc::ins_elem(VSize::S4, 31, 3, 30, 0),
            0x6e1c_07df,
            "mov v31.s[3], v30.s[0]",
        ),
        (
            enc::ins_elem(VSize::D2, 1, 1, 2, 0),
            0x6e18_0441,
            "mov v1.d[1], v2.d[0]",
        ),
        (
            enc::ins_elem(VSize::D2, 1, 0, 31, 0),
            0x6e08_07e1,
            "mov v1.d[0], v31.d[0]",
        ),
        (
            enc::ins_elem(VSize::B16, 1, 5, 2, 0),
            0x6e0b_0441,
            "mov v1.b[5], v2.b[0]",
        ),
        (
            enc::ins_elem(VSize::H8, 1, 7, 2, 0),
            0x6e1e_0441,
            "mov v1.h[7], v2.h[0]",
        ),
        (
            enc::tbl(1, 2, 1, 3),
            0x4e03_0041,
            "tbl v1.16b, {v2.16b}, v3.16b",
        ),
        (
            enc::tbl(31, 30, 1, 16),
            0x4e10_03df,
            "tbl v31.16b, {v30.16b}, v16.16b",
        ),
        (
            enc::tbl(16, 30, 2, 16),
            0x4e10_23d0,
            "tbl v16.16b, {v30.16b, v31.16b}, v16.16b",
        ),
        (
            enc::tbl(1, 31, 2, 3),
            0x4e03_23e1,
            "tbl v1.16b, {v31.16b, v0.16b}, v3.16b",
        ),
        (
            enc::ld1r(VSize::B16, 1, 16),
            0x4d40_c201,
            "ld1r {v1.16b}, [x16]",
        ),
        (
            enc::ld1r(VSize::H8, 31, 16),
            0x4d40_c61f,
            "ld1r {v31.8h}, [x16]",
        ),
        (
            enc::ld1r(VSize::S4, 1, 17),
            0x4d40_ca21,
            "ld1r {v1.4s}, [x17]",
        ),
        (
            enc::ld1r(VSize::D2, 29, 30),
            0x4d40_cfdd,
            "ld1r {v29.2d}, [x30]",
        ),
        (
            enc::add_sub_ext(false, false, false, 9, 16, 17, enc::Extend::Uxtw, 1),
            0x0b31_4609,
            "add w9, w16, w17, uxtw #1",
        ),
        (
            enc::bfm(true, enc::Bfm::U, 16, 16, 63, 63),
            0xd37f_fe10,
            "lsr x16, x16, #63",
        ),
        (
            enc::logical_imm_op(
                false,
                enc::LogicOp::And,
                16,
                25,
                enc::logical_imm(63, false).unwrap(),
            ),
            0x1200_1730,
            "and w16, w25, #0x3f",
        ),
    ];
    for &(got, want, text) in rows {
        assert_eq!(got, want, "{text}: {got:#010x} != {want:#010x}");
    }
    assert_eq!(LdSt::LDR_Q.bytes(), 16);
    assert_eq!(LdSt::STR_Q.bytes(), 16);
    assert_eq!(LdSt::LDR_Q.uimm(65520), Some(4095));
    assert_eq!(LdSt::LDR_Q.uimm(65536), None);
    assert_eq!(LdSt::LDR_Q.uimm(8), None);
    assert_eq!(LdSt::LDR_Q.uimm(-16), None);
}

const Q: Reg = Reg::float(17);
const Q2: Reg = Reg::float(18);

#[test]
fn v128_moves_loads_stores_and_copies() {
    use OperandSize::S128;
    check(
        |m| m.mov(D, RegImm::Reg(Q), S128),
        &["mov v16.16b, v17.16b"],
    );
    check(|m| m.mov(D, RegImm::Reg(D), S128), &[]);
    // Scaled unsigned offsets: non-negative multiples of 16 below 65536.
    check(
        |m| m.load(D, Address::Frame(16), S128),
        &["ldr q16, [x29, #0x10]"],
    );
    check(
        |m| m.load(D, Address::Vmctx(65520), S128),
        &["ldr q16, [x28, #0xfff0]"],
    );
    check(
        |m| m.store(RegImm::Reg(Q), Address::Outgoing(0), S128),
        &["str q17, [sp]"],
    );
    // Unscaled: -256..256.
    check(
        |m| m.load(D, Address::Frame(-16), S128),
        &["ldur q16, [x29, #-0x10]"],
    );
    check(
        |m| m.load(D, Address::Frame(8), S128),
        &["ldur q16, [x29, #0x8]"],
    );
    check(
        |m| m.store(RegImm::Reg(D), Address::Frame(-256), S128),
        &["stur q16, [x29, #-0x100]"],
    );
    check(
        |m| m.store(RegImm::Reg(D), Address::Base(Y, 255), S128),
        &["stur q16, [x10, #0xff]"],
    );
    // Anything else goes through x16.
    check(
        |m| m.load(D, Address::Frame(-272), S128),
        &["mov x16, #0xfffffffffffffef0", "ldr q16, [x29, x16]"],
    );
    check(
        |m| m.load(D, Address::Vmctx(65536), S128),
        &["mov x16, #0x10000", "ldr q16, [x28, x16]"],
    );
    check(
        |m| m.store(RegImm::Reg(D), Address::Outgoing(264), S128),
        &["mov x16, #0x108", "str q16, [sp, x16]"],
    );
    // Memory to memory through v30, all 128 bits.
    check(
        |m| m.copy(Address::Outgoing(32), Address::Frame(-48), S128),
        &["ldur q30, [x29, #-0x30]", "str q30, [sp, #0x20]"],
    );
    check(
        |m| m.copy(Address::Frame(-400), Address::Frame(408), S128),
        &[
            "mov x16, #0x198",
            "ldr q30, [x29, x16]",
            "mov x16, #0xfffffffffffffe70",
            "str q30, [x29, x16]",
        ],
    );
    check(
        |m| m.copy(Address::Frame(16), Address::Frame(16), S128),
        &[],
    );
}

#[test]
fn v128_heap_accesses_fault_at_the_returned_pc() {
    let mut m = Aarch64Masm::new(&VMOffsets::default());
    let heap = |offset| HeapAddress {
        base: None,
        index: Y,
        offset,
    };
    let a = m.load_heap(D, heap(0), LoadKind::V128);
    let b = m.load_heap(D, heap(16), LoadKind::V128);
    let c = m.store_heap(RegImm::Reg(Q), heap(0), StoreKind::V128);
    let d = m.store_heap(RegImm::Reg(Q), heap(u32::MAX), StoreKind::V128);
    let lines = disasm(&m.finish(0).unwrap());
    let at = |pc: u32| lines[pc as usize / 4].as_str();
    assert_eq!(at(a), "ldr q16, [x27, w10, uxtw]", "{lines:#?}");
    assert_eq!(at(b), "ldr q16, [x16, w10, uxtw]", "{lines:#?}");
    assert_eq!(at(c), "str q17, [x27, w10, uxtw]", "{lines:#?}");
    assert_eq!(at(d), "str q17, [x16, w10, uxtw]", "{lines:#?}");
    assert_eq!(lines[1], "add x16, x27, #0x10", "{lines:#?}");
    assert_eq!(lines.len(), 7, "{lines:#?}");
}

/// A tiny interpreter of the vector instructions the backend emits, on the disassembler's
/// text (so independent of the encoders): 32 int and 32 vector registers.
struct VecSim {
    x: [u64; 32],
    v: [u128; 32],
    /// The Z flag (only `cmp Wn, #0` sets it).
    z: bool,
}

fn lanewise(a: u128, b: u128, bits: u32, f: impl Fn(u64, u64) -> u64) -> u128 {
    let mask = if bits == 64 {
        u64::MAX
    } else {
        (1u64 << bits) - 1
    };
    let mut out = 0u128;
    for i in 0..128 / bits {
        let sh = i * bits;
        let (x, y) = ((a >> sh) as u64 & mask, (b >> sh) as u64 & mask);
        out |= u128::from(f(x, y) & mask) << sh;
    }
    out
}

fn bits(l: Lanes) -> u32 {
    match l {
        Lanes::I8x16 => 8,
        Lanes::I16x8 => 16,
        Lanes::I32x4 => 32,
        Lanes::I64x2 => 64,
    }
}

fn fbits(l: FloatLanes) -> u32 {
    match l {
        FloatLanes::F32x4 => 32,
        FloatLanes::F64x2 => 64,
    }
}

/// The sign bit of a lane of `bits`.
fn sign(bits: u32) -> u64 {
    1 << (bits - 1)
}

/// A lane of `bits`, sign-extended.
fn sext(x: u64, bits: u32) -> i64 {
    ((x << (64 - bits)) as i64) >> (64 - bits)
}

/// All ones where `t`.
fn all_ones(t: bool) -> u64 {
    if t {
        u64::MAX
    } else {
        0
    }
}

/// Lane-wise float arithmetic on lanes of `bits` (32 or 64).
fn float_lanes(
    a: u128,
    b: u128,
    bits: u32,
    f32op: impl Fn(f32, f32) -> f32,
    f64op: impl Fn(f64, f64) -> f64,
) -> u128 {
    if bits == 32 {
        lanewise(a, b, 32, |x, y| {
            u64::from(f32op(f32::from_bits(x as u32), f32::from_bits(y as u32)).to_bits())
        })
    } else {
        lanewise(a, b, 64, |x, y| {
            f64op(f64::from_bits(x), f64::from_bits(y)).to_bits()
        })
    }
}

/// A lane of `bits` (32 or 64) as a float (f32 lanes widened exactly).
fn float_lane(x: u64, bits: u32) -> f64 {
    if bits == 32 {
        f64::from(f32::from_bits(x as u32))
    } else {
        f64::from_bits(x)
    }
}

/// Lane-wise float comparison: all ones where `f` holds.
fn float_cmp_lanes(a: u128, b: u128, bits: u32, f: impl Fn(f64, f64) -> bool) -> u128 {
    lanewise(a, b, bits, |x, y| {
        all_ones(f(float_lane(x, bits), float_lane(y, bits)))
    })
}

impl VecSim {
    fn new(seed: u64) -> VecSim {
        let mut s = seed;
        let mut next = || {
            // splitmix64
            s = s.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut z = s;
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            z ^ (z >> 31)
        };
        let mut v = [0u128; 32];
        for r in v.iter_mut() {
            *r = u128::from(next()) << 64 | u128::from(next());
        }
        let mut x = [0u64; 32];
        for r in x.iter_mut() {
            *r = next();
        }
        VecSim { x, v, z: false }
    }

    fn vreg(s: &str) -> (usize, u32) {
        let (r, arr) = s.split_once('.').unwrap_or((s, "16b"));
        let n = r.trim_start_matches(['v', 'q', 'd']).parse().unwrap();
        let bits = match arr {
            "16b" => 8,
            "8h" => 16,
            "4s" => 32,
            "2d" => 64,
            _ => panic!("arrangement {s}"),
        };
        (n, bits)
    }

    fn xreg(&self, s: &str) -> u64 {
        if s == "xzr" {
            0
        } else {
            self.x[s.trim_start_matches('x').parse::<usize>().unwrap()]
        }
    }

    fn run(&mut self, lines: &[String]) {
        for l in lines {
            let (op, rest) = l.split_once(' ').unwrap();
            let a: Vec<&str> = rest.split(", ").collect();
            if self.step_new(op, rest, &a) {
                continue;
            }
            match op {
                "mov" if a[0].starts_with('x') && a[1].starts_with('v') => {
                    // umov xd, vn.d[lane]
                    let (v, lane) = a[1].trim_start_matches('v').split_once(".d[").unwrap();
                    let lane: u32 = lane.trim_end_matches(']').parse().unwrap();
                    let x = (self.v[v.parse::<usize>().unwrap()] >> (64 * lane)) as u64;
                    self.x[a[0][1..].parse::<usize>().unwrap()] = x;
                }
                "mul" if a[0].starts_with('x') => {
                    assert!(a.iter().all(|r| r.starts_with('x')), "{l}");
                    let n: usize = a[0][1..].parse().unwrap();
                    self.x[n] = self.xreg(a[1]).wrapping_mul(self.xreg(a[2]));
                }
                "mov" | "movk" if a[0].starts_with('x') => {
                    let n: usize = a[0][1..].parse().unwrap();
                    let imm = parse_imm(a[1]);
                    if op == "mov" {
                        self.x[n] = imm;
                    } else {
                        let sh: u32 = a
                            .get(2)
                            .map_or(0, |s| s.trim_start_matches("lsl #").parse().unwrap());
                        self.x[n] = (self.x[n] & !(0xffff << sh)) | (imm << sh);
                    }
                }
                "mov" if a[0].contains(".d[") => {
                    // ins vd.d[lane], xn
                    let (v, lane) = a[0].trim_start_matches('v').split_once(".d[").unwrap();
                    let n: usize = v.parse().unwrap();
                    let sh = 64 * lane.trim_end_matches(']').parse::<u32>().unwrap();
                    let x = u128::from(self.xreg(a[1]));
                    self.v[n] = (self.v[n] & !(u128::from(u64::MAX) << sh)) | x << sh;
                }
                "fmov" => {
                    let (d, _) = Self::vreg(a[0]);
                    assert!(a[0].starts_with('d'), "{l}");
                    self.v[d] = u128::from(self.xreg(a[1]));
                }
                "dup" => {
                    let (d, bits) = Self::vreg(a[0]);
                    assert_eq!(bits, 64, "{l}");
                    let x = u128::from(self.xreg(a[1]));
                    self.v[d] = x << 64 | x;
                }
                "movi" => {
                    let (d, bits) = Self::vreg(a[0]);
                    assert_eq!(bits, 64, "{l}");
                    let x = u128::from(parse_imm(a[1]));
                    self.v[d] = x << 64 | x;
                }
                "mov" | "mvn" | "neg" | "abs" | "fneg" | "fabs" | "fsqrt" => {
                    let (d, bits) = Self::vreg(a[0]);
                    let s = self.v[Self::vreg(a[1]).0];
                    self.v[d] = match op {
                        "mov" => s,
                        "mvn" => !s,
                        "neg" => lanewise(0, s, bits, |_, y| y.wrapping_neg()),
                        "abs" => lanewise(0, s, bits, |_, y| {
                            if sext(y, bits) < 0 {
                                y.wrapping_neg()
                            } else {
                                y
                            }
                        }),
                        "fneg" => lanewise(0, s, bits, |_, y| y ^ sign(bits)),
                        "fabs" => lanewise(0, s, bits, |_, y| y & !sign(bits)),
                        _ => float_lanes(0, s, bits, |_, y| y.sqrt(), |_, y| y.sqrt()),
                    };
                }
                _ => {
                    let (d, bits) = Self::vreg(a[0]);
                    let (n, m) = (self.v[Self::vreg(a[1]).0], self.v[Self::vreg(a[2]).0]);
                    let dv = self.v[d];
                    self.v[d] = match op {
                        "and" => n & m,
                        "orr" => n | m,
                        "eor" => n ^ m,
                        "bic" => n & !m,
                        "bsl" => (dv & n) | (!dv & m),
                        "bit" => (n & m) | (dv & !m),
                        "bif" => (dv & m) | (n & !m),
                        "add" => lanewise(n, m, bits, u64::wrapping_add),
                        "sub" => lanewise(n, m, bits, u64::wrapping_sub),
                        "mul" => lanewise(n, m, bits, u64::wrapping_mul),
                        "cmeq" => lanewise(n, m, bits, |x, y| all_ones(x == y)),
                        "cmgt" => {
                            lanewise(n, m, bits, |x, y| all_ones(sext(x, bits) > sext(y, bits)))
                        }
                        "cmge" => {
                            lanewise(n, m, bits, |x, y| all_ones(sext(x, bits) >= sext(y, bits)))
                        }
                        "cmhi" => lanewise(n, m, bits, |x, y| all_ones(x > y)),
                        "cmhs" => lanewise(n, m, bits, |x, y| all_ones(x >= y)),
                        "fadd" => float_lanes(n, m, bits, |x, y| x + y, |x, y| x + y),
                        "fsub" => float_lanes(n, m, bits, |x, y| x - y, |x, y| x - y),
                        "fmul" => float_lanes(n, m, bits, |x, y| x * y, |x, y| x * y),
                        "fdiv" => float_lanes(n, m, bits, |x, y| x / y, |x, y| x / y),
                        "fcmeq" => float_cmp_lanes(n, m, bits, |x, y| x == y),
                        "fcmgt" => float_cmp_lanes(n, m, bits, |x, y| x > y),
                        "fcmge" => float_cmp_lanes(n, m, bits, |x, y| x >= y),
                        _ => panic!("unexpected {l}"),
                    };
                }
            }
        }
    }
}

/// The lanes of `v` (of `bits`), lane 0 first.
fn lanes_of(v: u128, bits: u32) -> Vec<u64> {
    let mask = if bits == 64 {
        u64::MAX
    } else {
        (1 << bits) - 1
    };
    (0..128 / bits)
        .map(|i| (v >> (i * bits)) as u64 & mask)
        .collect()
}

/// The vector of `lanes` (each truncated to `bits`), lane 0 first; missing lanes are zero.
fn from_lanes(lanes: &[u64], bits: u32) -> u128 {
    let mask = if bits == 64 {
        u64::MAX
    } else {
        (1 << bits) - 1
    };
    lanes.iter().enumerate().fold(0, |acc, (i, &x)| {
        acc | u128::from(x & mask) << (i as u32 * bits)
    })
}

/// `x` saturated to the signed (`signed`) or unsigned range of `bits`.
fn sat(x: i128, bits: u32, signed: bool) -> u64 {
    let (lo, hi) = if signed {
        (-(1i128 << (bits - 1)), (1i128 << (bits - 1)) - 1)
    } else {
        (0, (1i128 << bits) - 1)
    };
    x.clamp(lo, hi) as u64
}

/// A lane as an f32/f64 (by `bits`), widened exactly.
fn fl(x: u64, bits: u32) -> f64 {
    float_lane(x, bits)
}

/// `v` as lane bits of `bits` (f32 rounded to nearest for 32).
fn to_fl(v: f64, bits: u32) -> u64 {
    if bits == 32 {
        u64::from((v as f32).to_bits())
    } else {
        v.to_bits()
    }
}

/// A NaN lane with the quiet bit set (AArch64 returns the quieted input NaN).
fn quiet(x: u64, bits: u32) -> u64 {
    x | 1 << (if bits == 32 { 22 } else { 51 })
}

/// AArch64 `fmin`/`fmax` (no default-NaN mode): the first NaN operand, quieted.
fn arm_fminmax(x: u64, y: u64, bits: u32, min: bool) -> u64 {
    let (a, b) = (fl(x, bits), fl(y, bits));
    if a.is_nan() {
        quiet(x, bits)
    } else if b.is_nan() {
        quiet(y, bits)
    } else if a == b {
        // ±0: min takes the negative zero, max the positive.
        if min {
            x | y
        } else {
            x & y
        }
    } else if (a < b) == min {
        x
    } else {
        y
    }
}

/// Parses `vN.T[lane]` into (N, lane bits, lane).
fn elem(s: &str) -> (usize, u32, u32) {
    let (r, rest) = s.trim_start_matches('v').split_once('.').unwrap();
    let bits = match &rest[..1] {
        "b" => 8,
        "h" => 16,
        "s" => 32,
        _ => 64,
    };
    let lane = rest[2..rest.len() - 1].parse().unwrap();
    (r.parse().unwrap(), bits, lane)
}

/// Parses `vN.T` (also the half arrangements `8b`, `4h`, `2s`) into (N, lane bits, lanes).
fn varr(s: &str) -> (usize, u32, u32) {
    let (r, arr) = s.trim_start_matches(['v', '{']).split_once('.').unwrap();
    let arr = arr.trim_end_matches('}');
    let n: u32 = arr[..arr.len() - 1].parse().unwrap();
    let bits = match &arr[arr.len() - 1..] {
        "b" => 8,
        "h" => 16,
        "s" => 32,
        _ => 64,
    };
    (r.parse().unwrap(), bits, n)
}

impl VecSim {
    fn gp(&self, s: &str) -> u64 {
        match s {
            "xzr" | "wzr" => 0,
            _ if s.starts_with('w') => self.x[s[1..].parse::<usize>().unwrap()] & 0xffff_ffff,
            _ => self.x[s[1..].parse::<usize>().unwrap()],
        }
    }

    fn set_gp(&mut self, s: &str, v: u64) {
        let n: usize = s[1..].parse().unwrap();
        self.x[n] = if s.starts_with('w') {
            v & 0xffff_ffff
        } else {
            v
        };
    }

    /// The instructions of the wasm 2.0 SIMD lowering; false if `op` is not one of them.
    fn step_new(&mut self, op: &str, rest: &str, a: &[&str]) -> bool {
        let is_gp = |s: &str| s.starts_with('w') || s.starts_with('x');
        match op {
            "mov" | "umov" | "smov" if is_gp(a[0]) && a[1].contains('[') => {
                let (n, bits, lane) = elem(a[1]);
                let x = lanes_of(self.v[n], bits)[lane as usize];
                let x = if op == "smov" {
                    sext(x, bits) as u64 & 0xffff_ffff
                } else {
                    x
                };
                self.set_gp(a[0], x);
            }
            "mov" if (a[0].starts_with('s') || a[0].starts_with('d')) && a[1].contains('[') => {
                let (n, bits, lane) = elem(a[1]);
                let d: usize = a[0][1..].parse().unwrap();
                self.v[d] = u128::from(lanes_of(self.v[n], bits)[lane as usize]);
            }
            "mov" if a[0].contains('[') => {
                let (d, bits, lane) = elem(a[0]);
                let x = if is_gp(a[1]) {
                    self.gp(a[1])
                } else {
                    let (n, b2, l2) = elem(a[1]);
                    assert_eq!(bits, b2);
                    lanes_of(self.v[n], bits)[l2 as usize]
                };
                let mut ls = lanes_of(self.v[d], bits);
                ls[lane as usize] = x;
                self.v[d] = from_lanes(&ls, bits);
            }
            "mov" | "dup" if a[0].starts_with('v') && (a[1].contains('[') || is_gp(a[1])) => {
                let (d, bits, n) = varr(a[0]);
                let x = if is_gp(a[1]) {
                    self.gp(a[1])
                } else {
                    let (s, b2, l2) = elem(a[1]);
                    assert_eq!(bits, b2);
                    lanes_of(self.v[s], bits)[l2 as usize]
                };
                self.v[d] = from_lanes(&vec![x; n as usize], bits);
            }
            "fmov" if is_gp(a[0]) => {
                let n: usize = a[1][1..].parse().unwrap();
                let v = self.v[n] as u64;
                self.set_gp(
                    a[0],
                    if a[1].starts_with('s') {
                        v & 0xffff_ffff
                    } else {
                        v
                    },
                );
            }
            "cmp" => {
                assert_eq!(a[1], "#0x0");
                self.z = self.gp(a[0]) == 0;
            }
            "cset" => {
                let t = match a[1] {
                    "eq" => self.z,
                    "ne" => !self.z,
                    c => panic!("cset {c}"),
                };
                self.set_gp(a[0], u64::from(t));
            }
            "and" if is_gp(a[0]) => {
                let x = self.gp(a[1]) & parse_imm(a[2]);
                self.set_gp(a[0], x);
            }
            "neg" if is_gp(a[0]) => {
                let x = self.gp(a[1]).wrapping_neg();
                self.set_gp(a[0], x);
            }
            "lsr" => {
                let x = self.gp(a[1]) >> parse_imm(a[2]);
                self.set_gp(a[0], x);
            }
            "add" if is_gp(a[0]) => {
                let sh = a
                    .get(3)
                    .map_or(0, |s| s.trim_start_matches("lsl #").parse().unwrap());
                let x = self.gp(a[1]).wrapping_add(self.gp(a[2]) << sh);
                self.set_gp(a[0], x);
            }
            "tbl" => {
                let (d, rest) = rest.split_once(", {").unwrap();
                let (table, idx) = rest.split_once("}, ").unwrap();
                let regs: Vec<usize> = table.split(", ").map(|t| varr(t).0).collect();
                let mut bytes = Vec::new();
                for r in regs {
                    bytes.extend(lanes_of(self.v[r], 8));
                }
                let idx = lanes_of(self.v[varr(idx).0], 8);
                let out: Vec<u64> = idx
                    .iter()
                    .map(|&i| bytes.get(i as usize).copied().unwrap_or(0))
                    .collect();
                self.v[varr(d).0] = from_lanes(&out, 8);
            }
            "addv" | "umaxv" | "uminv" => {
                let d: usize = a[0][1..].parse().unwrap();
                let (n, bits, _) = varr(a[1]);
                let ls = lanes_of(self.v[n], bits);
                let mask = (1u64 << bits) - 1;
                let x = match op {
                    "addv" => ls.iter().fold(0u64, |s, &x| s.wrapping_add(x)) & mask,
                    "umaxv" => *ls.iter().max().unwrap(),
                    _ => *ls.iter().min().unwrap(),
                };
                self.v[d] = u128::from(x);
            }
            "shl" | "sshr" | "ushr" | "sshll" | "ushll" | "sshll2" | "ushll2" | "cmeq" | "cmlt"
                if a[2].starts_with('#') =>
            {
                let (d, dbits, _) = varr(a[0]);
                let (n, sbits, _) = varr(a[1]);
                let sh = parse_imm(a[2]) as u32;
                let src = lanes_of(self.v[n], sbits);
                let out: Vec<u64> = match op {
                    "shl" => src.iter().map(|&x| x << sh).collect(),
                    "sshr" => src.iter().map(|&x| (sext(x, sbits) >> sh) as u64).collect(),
                    "ushr" => src.iter().map(|&x| x >> sh).collect(),
                    "cmeq" => src.iter().map(|&x| all_ones(x == 0)).collect(),
                    "cmlt" => src.iter().map(|&x| all_ones(sext(x, sbits) < 0)).collect(),
                    _ => {
                        let half = (128 / dbits) as usize;
                        let from = if op.ends_with('2') { half } else { 0 };
                        src[from..from + half]
                            .iter()
                            .map(|&x| {
                                let x = if op.starts_with('s') {
                                    sext(x, sbits) as u64
                                } else {
                                    x
                                };
                                x << sh
                            })
                            .collect()
                    }
                };
                self.v[d] = from_lanes(&out, dbits);
            }
            "cnt" | "saddlp" | "uaddlp" | "sqxtn" | "sqxtn2" | "sqxtun" | "sqxtun2" | "uqxtn"
            | "uqxtn2" | "frintn" | "frintm" | "frintp" | "frintz" | "scvtf" | "ucvtf"
            | "fcvtzs" | "fcvtzu" | "fcvtn" | "fcvtl" => {
                assert_eq!(a.len(), 2, "{op} {rest}");
                let (d, dbits, _) = varr(a[0]);
                let (n, sbits, _) = varr(a[1]);
                let src = lanes_of(self.v[n], sbits);
                let out: Vec<u64> = match op {
                    "cnt" => src.iter().map(|&x| u64::from(x.count_ones())).collect(),
                    "saddlp" => src
                        .chunks(2)
                        .map(|p| (sext(p[0], sbits) + sext(p[1], sbits)) as u64)
                        .collect(),
                    "uaddlp" => src.chunks(2).map(|p| p[0] + p[1]).collect(),
                    "frintn" | "frintm" | "frintp" | "frintz" => src
                        .iter()
                        .map(|&x| {
                            let f = fl(x, sbits);
                            if f.is_nan() {
                                return quiet(x, sbits);
                            }
                            let r = match op {
                                "frintn" => f.round_ties_even(),
                                "frintm" => f.floor(),
                                "frintp" => f.ceil(),
                                _ => f.trunc(),
                            };
                            to_fl(r, sbits)
                        })
                        .collect(),
                    "scvtf" => src
                        .iter()
                        .map(|&x| {
                            if sbits == 32 {
                                u64::from((sext(x, 32) as i32 as f32).to_bits())
                            } else {
                                (x as i64 as f64).to_bits()
                            }
                        })
                        .collect(),
                    "ucvtf" => src
                        .iter()
                        .map(|&x| {
                            if sbits == 32 {
                                u64::from((x as u32 as f32).to_bits())
                            } else {
                                (x as f64).to_bits()
                            }
                        })
                        .collect(),
                    // Rust's float-to-int casts saturate and give 0 for NaN, like fcvtz*.
                    "fcvtzs" => src
                        .iter()
                        .map(|&x| {
                            if sbits == 32 {
                                f32::from_bits(x as u32) as i32 as u32 as u64
                            } else {
                                f64::from_bits(x) as i64 as u64
                            }
                        })
                        .collect(),
                    "fcvtzu" => src
                        .iter()
                        .map(|&x| {
                            if sbits == 32 {
                                u64::from(f32::from_bits(x as u32) as u32)
                            } else {
                                f64::from_bits(x) as u64
                            }
                        })
                        .collect(),
                    "fcvtn" => src
                        .iter()
                        .map(|&x| {
                            let f = f64::from_bits(x);
                            if f.is_nan() {
                                // Quieted, the top payload bits kept.
                                let s = (x >> 63) << 31;
                                let payload = (x >> 29) & 0x3f_ffff;
                                s | 0x7fc0_0000 | payload
                            } else {
                                u64::from((f as f32).to_bits())
                            }
                        })
                        .collect(),
                    "fcvtl" => src[..2]
                        .iter()
                        .map(|&x| {
                            let f = f32::from_bits(x as u32);
                            if f.is_nan() {
                                let s = (x >> 31) << 63;
                                s | 0x7ff8_0000_0000_0000 | (x & 0x3f_ffff) << 29
                            } else {
                                f64::from(f).to_bits()
                            }
                        })
                        .collect(),
                    _ => {
                        // Narrowing: into the low half (the high half zeroed) or, for the
                        // `2` forms, the high half (the low half kept).
                        let nar: Vec<u64> = src
                            .iter()
                            .map(|&x| match op.trim_end_matches('2') {
                                "sqxtn" => sat(sext(x, sbits).into(), dbits, true),
                                "sqxtun" => sat(sext(x, sbits).into(), dbits, false),
                                _ => sat(x.into(), dbits, false),
                            })
                            .collect();
                        if op.ends_with('2') {
                            let mut ls = lanes_of(self.v[d], dbits);
                            let half = ls.len() / 2;
                            ls[half..].copy_from_slice(&nar);
                            ls
                        } else {
                            nar
                        }
                    }
                };
                self.v[d] = from_lanes(&out, dbits);
            }
            "smull" | "umull" | "smull2" | "umull2" => {
                let (d, dbits, _) = varr(a[0]);
                let (n, sbits, _) = varr(a[1]);
                let (m, _, _) = varr(a[2]);
                let half = (64 / sbits) as usize;
                let from = if op.ends_with('2') { half } else { 0 };
                let (x, y) = (lanes_of(self.v[n], sbits), lanes_of(self.v[m], sbits));
                let out: Vec<u64> = (from..from + half)
                    .map(|i| {
                        if op.starts_with('s') {
                            (sext(x[i], sbits) * sext(y[i], sbits)) as u64
                        } else {
                            x[i] * y[i]
                        }
                    })
                    .collect();
                self.v[d] = from_lanes(&out, dbits);
            }
            "sqadd" | "uqadd" | "sqsub" | "uqsub" | "smin" | "umin" | "smax" | "umax"
            | "urhadd" | "sqrdmulh" | "addp" | "fmin" | "fmax" | "sshl" | "ushl" => {
                let (d, bits, _) = varr(a[0]);
                let (x, y) = (
                    lanes_of(self.v[varr(a[1]).0], bits),
                    lanes_of(self.v[varr(a[2]).0], bits),
                );
                let out: Vec<u64> = if op == "addp" {
                    x.chunks(2)
                        .chain(y.chunks(2))
                        .map(|p| p[0].wrapping_add(p[1]))
                        .collect()
                } else {
                    x.iter()
                        .zip(&y)
                        .map(|(&p, &q)| {
                            let (sp, sq) = (i128::from(sext(p, bits)), i128::from(sext(q, bits)));
                            let (up, uq) = (i128::from(p), i128::from(q));
                            match op {
                                "sqadd" => sat(sp + sq, bits, true),
                                "uqadd" => sat(up + uq, bits, false),
                                "sqsub" => sat(sp - sq, bits, true),
                                "uqsub" => sat(up - uq, bits, false),
                                "smin" => sp.min(sq) as u64,
                                "umin" => p.min(q),
                                "smax" => sp.max(sq) as u64,
                                "umax" => p.max(q),
                                "urhadd" => ((up + uq + 1) >> 1) as u64,
                                "sqrdmulh" => {
                                    sat((2 * sp * sq + (1 << (bits - 1))) >> bits, bits, true)
                                }
                                "fmin" => arm_fminmax(p, q, bits, true),
                                "fmax" => arm_fminmax(p, q, bits, false),
                                _ => {
                                    // sshl/ushl by the signed low byte of the lane.
                                    let sh = q as u8 as i8 as i32;
                                    let b = bits as i32;
                                    if sh >= 0 {
                                        if sh >= b {
                                            0
                                        } else {
                                            p << sh
                                        }
                                    } else if op == "sshl" {
                                        (sext(p, bits) >> (-sh).min(b - 1)) as u64
                                    } else if -sh >= b {
                                        0
                                    } else {
                                        p >> -sh
                                    }
                                }
                            }
                        })
                        .collect()
                };
                self.v[d] = from_lanes(&out, bits);
            }
            _ => return false,
        }
        true
    }
}

#[test]
fn v128_constants_materialise_exactly() {
    let values: [u128; 12] = [
        0,
        u128::MAX,
        1,
        1 << 64,
        u128::from(u64::MAX),
        u128::from(u64::MAX) << 64,
        0x0123_4567_89ab_cdef_0123_4567_89ab_cdef,
        0x0001_0002_0003_0004_0005_0006_0007_0008,
        0x8000_0000_0000_0000_0000_0000_0000_0000,
        0xffff_ffff_ffff_fffe_ffff_ffff_ffff_ffff,
        0x5555_5555_5555_5555_5555_5555_5555_5555,
        0x0000_0000_0000_1234_0000_0000_0000_0000,
    ];
    for (i, &c) in values.iter().enumerate() {
        let lines = body(|m| m.v128_const(D, c));
        let mut sim = VecSim::new(i as u64);
        sim.run(&lines);
        assert_eq!(sim.v[16], c, "{c:#x}: {lines:?}");
        assert!(lines.len() <= 10, "{c:#x}: {lines:?}");
    }
    check(|m| m.v128_const(D, 0), &["movi v16.2d, #0x0"]);
    check(
        |m| m.v128_const(D, u128::MAX),
        &["movi v16.2d, #0xffffffffffffffff"],
    );
    check(
        |m| m.v128_const(D, 1 << 64),
        &["fmov d16, xzr", "mov x17, #0x1", "mov v16.d[1], x17"],
    );
    check(|m| m.v128_const(D, 7), &["mov x16, #0x7", "fmov d16, x16"]);
    check(
        |m| m.v128_const(D, 0x0000_0001_0000_0001_0000_0001_0000_0001),
        &["mov x16, #0x100000001", "dup v16.2d, x16"],
    );
}

#[test]
fn v128_binops_and_unops_compute_under_any_aliasing() {
    use Lanes::*;
    let mut ops = vec![
        V128BinOp::And,
        V128BinOp::Or,
        V128BinOp::Xor,
        V128BinOp::AndNot,
        V128BinOp::Mul(I16x8),
        V128BinOp::Mul(I32x4),
        V128BinOp::Mul(I64x2),
    ];
    for l in [I8x16, I16x8, I32x4, I64x2] {
        ops.push(V128BinOp::Add(l));
        ops.push(V128BinOp::Sub(l));
    }
    for fl in [FloatLanes::F32x4, FloatLanes::F64x2] {
        ops.extend(
            [
                V128BinOp::FAdd,
                V128BinOp::FSub,
                V128BinOp::FMul,
                V128BinOp::FDiv,
                V128BinOp::FPMin,
                V128BinOp::FPMax,
            ]
            .map(|f| f(fl)),
        );
    }
    let regs = [16u8, 17, 18];
    for (k, &op) in ops.iter().enumerate() {
        for &d in &regs {
            for &l in &regs {
                for &r in &regs {
                    let lines =
                        body(|m| m.v128_binop(op, Reg::float(d), Reg::float(l), Reg::float(r)));
                    let mut sim = VecSim::new(k as u64 * 100 + u64::from(d ^ l << 2 ^ r << 4));
                    let before = sim.v;
                    let (a, b) = (before[l as usize], before[r as usize]);
                    let want = match op {
                        V128BinOp::And => a & b,
                        V128BinOp::Or => a | b,
                        V128BinOp::Xor => a ^ b,
                        V128BinOp::AndNot => a & !b,
                        V128BinOp::Add(ln) => lanewise(a, b, bits(ln), u64::wrapping_add),
                        V128BinOp::Sub(ln) => lanewise(a, b, bits(ln), u64::wrapping_sub),
                        V128BinOp::Mul(ln) => lanewise(a, b, bits(ln), u64::wrapping_mul),
                        V128BinOp::FAdd(fl) => {
                            float_lanes(a, b, fbits(fl), |x, y| x + y, |x, y| x + y)
                        }
                        V128BinOp::FSub(fl) => {
                            float_lanes(a, b, fbits(fl), |x, y| x - y, |x, y| x - y)
                        }
                        V128BinOp::FMul(fl) => {
                            float_lanes(a, b, fbits(fl), |x, y| x * y, |x, y| x * y)
                        }
                        V128BinOp::FDiv(fl) => {
                            float_lanes(a, b, fbits(fl), |x, y| x / y, |x, y| x / y)
                        }
                        V128BinOp::FPMin(fl) => float_lanes(
                            a,
                            b,
                            fbits(fl),
                            |x, y| if y < x { y } else { x },
                            |x, y| if y < x { y } else { x },
                        ),
                        V128BinOp::FPMax(fl) => float_lanes(
                            a,
                            b,
                            fbits(fl),
                            |x, y| if x < y { y } else { x },
                            |x, y| if x < y { y } else { x },
                        ),
                        _ => unreachable!(),
                    };
                    sim.run(&lines);
                    let mut expect = before;
                    if matches!(op, V128BinOp::FPMin(_) | V128BinOp::FPMax(_)) {
                        // Computed in the scratch register v30.
                        expect[30] = sim.v[30];
                    }
                    expect[d as usize] = want;
                    assert_eq!(sim.v, expect, "{op:?} v{d} = v{l}, v{r}: {lines:?}");
                }
            }
        }
    }
    let mut unops = vec![V128UnOp::Not];
    unops.extend([I8x16, I16x8, I32x4, I64x2].map(V128UnOp::Neg));
    unops.extend([I8x16, I16x8, I32x4, I64x2].map(V128UnOp::Abs));
    for fl in [FloatLanes::F32x4, FloatLanes::F64x2] {
        unops.extend([V128UnOp::FNeg, V128UnOp::FAbs, V128UnOp::FSqrt].map(|f| f(fl)));
    }
    // Random bits, then lanes at the signed minimum / NaNs with either sign.
    let edges = [
        None,
        Some(0x8000_0000_8000_8080_8000_0000_0000_0000),
        Some(0x7fc0_0001_ffc0_0000_fff8_0000_0000_0001),
        Some(0x8000_0000_0000_0000_7ff0_0000_0000_0001),
        Some(0x0000_0000_8000_0000_3f80_0000_ff80_0000),
    ];
    for (k, &op) in unops.iter().enumerate() {
        for (&(d, s), &edge) in [(16u8, 16u8), (16, 17)]
            .iter()
            .flat_map(|p| edges.iter().map(move |e| (p, e)))
        {
            let lines = body(|m| m.v128_unop(op, Reg::float(d), Reg::float(s)));
            let mut sim = VecSim::new(1000 + k as u64);
            if let Some(e) = edge {
                sim.v[s as usize] = e;
            }
            let before = sim.v;
            let a = before[s as usize];
            let want = match op {
                V128UnOp::Not => !a,
                V128UnOp::Neg(ln) => lanewise(0, a, bits(ln), u64::wrapping_sub),
                V128UnOp::Abs(ln) => {
                    let b = bits(ln);
                    lanewise(0, a, b, |_, y| sext(y, b).unsigned_abs())
                }
                V128UnOp::FNeg(fl) => lanewise(0, a, fbits(fl), |_, y| y ^ sign(fbits(fl))),
                V128UnOp::FAbs(fl) => lanewise(0, a, fbits(fl), |_, y| y & !sign(fbits(fl))),
                V128UnOp::FSqrt(fl) => {
                    float_lanes(0, a, fbits(fl), |_, y| y.sqrt(), |_, y| y.sqrt())
                }
                _ => unreachable!(),
            };
            sim.run(&lines);
            let mut expect = before;
            expect[d as usize] = want;
            assert_eq!(sim.v, expect, "{op:?} v{d} = v{s}: {lines:?}");
            assert_eq!(lines.len(), 1, "{lines:?}");
        }
    }
}

#[test]
fn v128_bitselect_computes_under_any_aliasing() {
    // Every assignment of dst, a, b and mask to four registers (so every aliasing).
    let regs = [16u8, 17, 18, 19];
    let mut n = 0;
    for &d in &regs {
        for &a in &regs {
            for &b in &regs {
                for &m in &regs {
                    let lines = body(|masm| {
                        masm.v128_bitselect(
                            Reg::float(d),
                            Reg::float(a),
                            Reg::float(b),
                            Reg::float(m),
                        )
                    });
                    n += 1;
                    let mut sim = VecSim::new(n);
                    let before = sim.v;
                    let (av, bv, mv) = (before[a as usize], before[b as usize], before[m as usize]);
                    sim.run(&lines);
                    let mut expect = before;
                    expect[d as usize] = (av & mv) | (bv & !mv);
                    assert_eq!(
                        sim.v, expect,
                        "v{d} = bitselect(v{a}, v{b}, v{m}): {lines:?}"
                    );
                    let max = if d != a && d != b && d != m { 2 } else { 1 };
                    assert!(lines.len() <= max, "{lines:?}");
                }
            }
        }
    }
    check(
        |m| m.v128_bitselect(D, Q, Q2, Reg::float(19)),
        &["mov v16.16b, v19.16b", "bsl v16.16b, v17.16b, v18.16b"],
    );
    check(
        |m| m.v128_bitselect(D, Q, D, Q2),
        &["bit v16.16b, v17.16b, v18.16b"],
    );
    check(
        |m| m.v128_bitselect(D, D, Q, Q2),
        &["bif v16.16b, v17.16b, v18.16b"],
    );
}

#[test]
fn i64x2_mul_edge_values_under_any_aliasing() {
    let m = |a: u64, b: u64| (a, b);
    let pairs = [
        m(u64::MAX, 2),
        m(i64::MIN as u64, u64::MAX),
        m(i64::MIN as u64, i64::MIN as u64),
        m(i64::MAX as u64, i64::MAX as u64),
        m(0x1_0000_0001, 0xffff_ffff),
        m(0xffff_ffff, 0xffff_ffff),
        m(0, u64::MAX),
        m(0x1234_5678_9abc_def0, 0x0fed_cba9_8765_4321),
    ];
    let regs = [16u8, 17, 18];
    for &d in &regs {
        for &l in &regs {
            for &r in &regs {
                let lines = body(|masm| {
                    masm.v128_binop(
                        V128BinOp::Mul(Lanes::I64x2),
                        Reg::float(d),
                        Reg::float(l),
                        Reg::float(r),
                    )
                });
                assert!(lines.len() <= 8, "{lines:?}");
                for (i, w) in pairs.windows(2).enumerate() {
                    let mut sim = VecSim::new(i as u64);
                    // Lane 0 from one pair, lane 1 from the next (operands swapped).
                    sim.v[l as usize] = u128::from(w[1].1) << 64 | u128::from(w[0].0);
                    if r != l {
                        sim.v[r as usize] = u128::from(w[1].0) << 64 | u128::from(w[0].1);
                    }
                    let (before, xs) = (sim.v, sim.x);
                    let (a, b) = (before[l as usize], before[r as usize]);
                    sim.run(&lines);
                    let mut expect = before;
                    expect[d as usize] = lanewise(a, b, 64, u64::wrapping_mul);
                    assert_eq!(sim.v, expect, "v{d} = v{l} * v{r}: {lines:?}");
                    for (n, (&x, &was)) in sim.x.iter().zip(&xs).enumerate() {
                        assert!(x == was || n == 16 || n == 17, "x{n} clobbered: {lines:?}");
                    }
                }
            }
        }
    }
    assert_eq!(
        lanewise(u128::from(u64::MAX), 2, 64, u64::wrapping_mul),
        u128::from(u64::MAX - 1)
    );
    check(
        |m| m.v128_binop(V128BinOp::Mul(Lanes::I64x2), D, Q, Q2),
        &[
            "mov x16, v17.d[0]",
            "mov x17, v18.d[0]",
            "mul x16, x16, x17",
            "mov v16.d[0], x16",
            "mov x16, v17.d[1]",
            "mov x17, v18.d[1]",
            "mul x16, x16, x17",
            "mov v16.d[1], x16",
        ],
    );
}

/// Wasm's meaning of an integer lane comparison.
fn int_cmp_holds(cc: IntCmp, x: u64, y: u64, bits: u32) -> bool {
    let (sx, sy) = (sext(x, bits), sext(y, bits));
    match cc {
        IntCmp::Eq => x == y,
        IntCmp::Ne => x != y,
        IntCmp::LtS => sx < sy,
        IntCmp::LtU => x < y,
        IntCmp::GtS => sx > sy,
        IntCmp::GtU => x > y,
        IntCmp::LeS => sx <= sy,
        IntCmp::LeU => x <= y,
        IntCmp::GeS => sx >= sy,
        IntCmp::GeU => x >= y,
    }
}

/// Wasm's meaning of a float lane comparison (IEEE: only `ne` holds on NaN).
fn float_cmp_holds(cc: FloatCmp, x: f64, y: f64) -> bool {
    match cc {
        FloatCmp::Eq => x == y,
        FloatCmp::Ne => x != y,
        FloatCmp::Lt => x < y,
        FloatCmp::Gt => x > y,
        FloatCmp::Le => x <= y,
        FloatCmp::Ge => x >= y,
    }
}

/// Operand vectors in which every pair of `pool` values meets in some lane of `bits`.
fn lane_pairs(pool: &[u64], bits: u32) -> Vec<(u128, u128)> {
    let per = (128 / bits) as usize;
    let all: Vec<(u64, u64)> = pool
        .iter()
        .flat_map(|&x| pool.iter().map(move |&y| (x, y)))
        .collect();
    let mask = if bits == 64 {
        u64::MAX
    } else {
        (1 << bits) - 1
    };
    all.chunks(per)
        .map(|c| {
            let (mut a, mut b) = (0u128, 0u128);
            for (i, &(x, y)) in c.iter().enumerate() {
                a |= u128::from(x & mask) << (i as u32 * bits);
                b |= u128::from(y & mask) << (i as u32 * bits);
            }
            (a, b)
        })
        .collect()
}

#[test]
fn v128_cmp_computes_under_any_aliasing() {
    use Lanes::*;
    let int_ccs = [
        IntCmp::Eq,
        IntCmp::Ne,
        IntCmp::LtS,
        IntCmp::LtU,
        IntCmp::GtS,
        IntCmp::GtU,
        IntCmp::LeS,
        IntCmp::LeU,
        IntCmp::GeS,
        IntCmp::GeU,
    ];
    let float_ccs = [
        FloatCmp::Eq,
        FloatCmp::Ne,
        FloatCmp::Lt,
        FloatCmp::Gt,
        FloatCmp::Le,
        FloatCmp::Ge,
    ];
    let mut cmps = Vec::new();
    for l in [I8x16, I16x8, I32x4, I64x2] {
        cmps.extend(int_ccs.map(|cc| V128Cmp::Int(l, cc)));
    }
    for fl in [FloatLanes::F32x4, FloatLanes::F64x2] {
        cmps.extend(float_ccs.map(|cc| V128Cmp::Float(fl, cc)));
    }
    let float_pool = |bits: u32| -> Vec<u64> {
        let vals = [
            0.0,
            -0.0,
            1.0,
            -1.0,
            1.5,
            f64::INFINITY,
            f64::NEG_INFINITY,
            f64::NAN,
            -f64::NAN,
            1e-310,
        ];
        if bits == 32 {
            vals.iter()
                .map(|&v| u64::from((v as f32).to_bits()))
                .collect()
        } else {
            vals.iter().map(|&v| f64::to_bits(v)).collect()
        }
    };
    let int_pool = |bits: u32| -> Vec<u64> {
        let min = sign(bits);
        vec![0, 1, 2, min - 1, min, min + 1, u64::MAX - 1, u64::MAX]
    };
    let regs = [16u8, 17, 18];
    for (k, &cmp) in cmps.iter().enumerate() {
        let (bits, pool) = match cmp {
            V128Cmp::Int(l, _) => (bits(l), int_pool(bits(l))),
            V128Cmp::Float(fl, _) => (fbits(fl), float_pool(fbits(fl))),
        };
        let holds = |x: u64, y: u64| match cmp {
            V128Cmp::Int(_, cc) => all_ones(int_cmp_holds(cc, x, y, bits)),
            V128Cmp::Float(_, cc) => all_ones(float_cmp_holds(
                cc,
                float_lane(x, bits),
                float_lane(y, bits),
            )),
        };
        let inputs = lane_pairs(&pool, bits);
        for &d in &regs {
            for &l in &regs {
                for &r in &regs {
                    let lines =
                        body(|m| m.v128_cmp(cmp, Reg::float(d), Reg::float(l), Reg::float(r)));
                    let max = if matches!(
                        cmp,
                        V128Cmp::Int(_, IntCmp::Ne) | V128Cmp::Float(_, FloatCmp::Ne)
                    ) {
                        2
                    } else {
                        1
                    };
                    assert_eq!(lines.len(), max, "{cmp:?}: {lines:?}");
                    for (i, &(a, b)) in inputs.iter().enumerate() {
                        let mut sim = VecSim::new(k as u64 * 1000 + i as u64);
                        sim.v[l as usize] = a;
                        if r != l {
                            sim.v[r as usize] = b;
                        }
                        let before = sim.v;
                        let (a, b) = (before[l as usize], before[r as usize]);
                        sim.run(&lines);
                        let mut expect = before;
                        expect[d as usize] = lanewise(a, b, bits, holds);
                        assert_eq!(
                            sim.v, expect,
                            "{cmp:?} v{d} = v{l}, v{r} on {a:#x}, {b:#x}: {lines:?}"
                        );
                    }
                }
            }
        }
    }
    check(
        |m| m.v128_cmp(V128Cmp::Int(I32x4, IntCmp::LtU), D, Q, Q2),
        &["cmhi v16.4s, v18.4s, v17.4s"],
    );
    check(
        |m| m.v128_cmp(V128Cmp::Int(I8x16, IntCmp::Ne), D, D, Q),
        &["cmeq v16.16b, v16.16b, v17.16b", "mvn v16.16b, v16.16b"],
    );
    check(
        |m| m.v128_cmp(V128Cmp::Float(FloatLanes::F64x2, FloatCmp::Le), D, Q, D),
        &["fcmge v16.2d, v16.2d, v17.2d"],
    );
    check(
        |m| m.v128_cmp(V128Cmp::Float(FloatLanes::F32x4, FloatCmp::Ne), D, Q, Q2),
        &["fcmeq v16.4s, v17.4s, v18.4s", "mvn v16.16b, v16.16b"],
    );
}

/// Vectors at the edges of the new operations' lane ranges (saturation, signs, NaNs, ±0,
/// infinities, float values out of the integer ranges), lane 0 first.
fn simd_edges() -> Vec<u128> {
    let f32s = |v: [f32; 4]| from_lanes(&v.map(|x| u64::from(x.to_bits())), 32);
    let f64s = |v: [f64; 2]| from_lanes(&v.map(f64::to_bits), 64);
    vec![
        from_lanes(&[0x80, 0x7f, 0xff, 0, 1, 0xfe, 0x81, 0x7e], 8)
            | from_lanes(&[0x80, 0x80, 0x7f, 0x7f, 0xff, 0x01, 0x40, 0xc0], 8) << 64,
        from_lanes(&[0x8000, 0x7fff, 0xffff, 0, 1, 0x8001, 0x4000, 0xc000], 16),
        from_lanes(
            &[
                0x8000, 0x8000, 0x7fff, 0x8000, 0xff80, 0x0080, 0x7f00, 0x00ff,
            ],
            16,
        ),
        from_lanes(&[0x8000_0000, 0x7fff_ffff, 0xffff_ffff, 0x0001_0000], 32),
        from_lanes(&[0x8000_0000_0000_0000, 0x7fff_ffff_ffff_ffff], 64),
        f32s([f32::NAN, -0.0, 2.5, -3.5e9]),
        f32s([0.0, -f32::NAN, 4.3e9, -2.5]),
        f32s([f32::INFINITY, f32::NEG_INFINITY, 0.5, -1.5]),
        f32s([2147483520.0, -2147483648.0, 4294967040.0, 1e-40]),
        f64s([f64::NAN, -0.0]),
        f64s([0.0, -f64::NAN]),
        f64s([f64::INFINITY, -2.5]),
        f64s([2147483647.5, -2147483648.9]),
        f64s([4294967295.9, 1e300]),
        f64s([3.4028235677973366e38, 1.0000000596046448]),
        u128::MAX,
        0,
    ]
}

/// Lane-wise equality, any NaN matching any NaN when `float` lanes of `bits`.
fn same_lanes(got: u128, want: u128, bits: u32, float: bool) -> bool {
    if !float {
        return got == want;
    }
    lanes_of(got, bits)
        .iter()
        .zip(lanes_of(want, bits))
        .all(|(&g, w)| g == w || (fl(g, bits).is_nan() && fl(w, bits).is_nan()))
}

/// wasm's float min/max: NaN if either is, `-0 < +0`.
fn wasm_fminmax(x: u64, y: u64, bits: u32, min: bool) -> u64 {
    let (a, b) = (fl(x, bits), fl(y, bits));
    if a.is_nan() || b.is_nan() {
        to_fl(f64::NAN, bits)
    } else if a == b {
        if min {
            x | y
        } else {
            x & y
        }
    } else if (a < b) == min {
        x
    } else {
        y
    }
}

/// wasm's meaning of the new binary operators: (result, result lane bits, float result).
fn wasm_binop(op: V128BinOp, a: u128, b: u128) -> (u128, u32, bool) {
    use V128BinOp::*;
    let lw = |l: Lanes, f: &dyn Fn(i128, i128, u64, u64, u32) -> u64| {
        let n = bits(l);
        let out: Vec<u64> = lanes_of(a, n)
            .iter()
            .zip(lanes_of(b, n))
            .map(|(&x, y)| f(sext(x, n).into(), sext(y, n).into(), x, y, n))
            .collect();
        (from_lanes(&out, n), n, false)
    };
    match op {
        AddSatS(l) => lw(l, &|sx, sy, _, _, n| sat(sx + sy, n, true)),
        AddSatU(l) => lw(l, &|_, _, x, y, n| {
            sat(i128::from(x) + i128::from(y), n, false)
        }),
        SubSatS(l) => lw(l, &|sx, sy, _, _, n| sat(sx - sy, n, true)),
        SubSatU(l) => lw(l, &|_, _, x, y, n| {
            sat(i128::from(x) - i128::from(y), n, false)
        }),
        MinS(l) => lw(l, &|sx, sy, _, _, _| sx.min(sy) as u64),
        MinU(l) => lw(l, &|_, _, x, y, _| x.min(y)),
        MaxS(l) => lw(l, &|sx, sy, _, _, _| sx.max(sy) as u64),
        MaxU(l) => lw(l, &|_, _, x, y, _| x.max(y)),
        AvgrU(l) => lw(l, &|_, _, x, y, _| (x + y + 1) >> 1),
        Q15MulrSatS => lw(Lanes::I16x8, &|sx, sy, _, _, _| {
            sat((sx * sy + 0x4000) >> 15, 16, true)
        }),
        ExtMul {
            lanes,
            high,
            signed,
        } => {
            let n = bits(lanes);
            let h = n / 2;
            let (x, y) = (lanes_of(a, h), lanes_of(b, h));
            let from = if high { x.len() / 2 } else { 0 };
            let out: Vec<u64> = (from..from + x.len() / 2)
                .map(|i| {
                    if signed {
                        (sext(x[i], h) * sext(y[i], h)) as u64
                    } else {
                        x[i] * y[i]
                    }
                })
                .collect();
            (from_lanes(&out, n), n, false)
        }
        Dot => {
            let (x, y) = (lanes_of(a, 16), lanes_of(b, 16));
            let p = |i: usize| sext(x[i], 16) * sext(y[i], 16);
            let out: Vec<u64> = (0..4)
                .map(|i| p(2 * i).wrapping_add(p(2 * i + 1)) as u64)
                .collect();
            (from_lanes(&out, 32), 32, false)
        }
        Narrow { lanes, signed } => {
            let n = bits(lanes);
            let out: Vec<u64> = lanes_of(a, 2 * n)
                .iter()
                .chain(&lanes_of(b, 2 * n))
                .map(|&x| sat(sext(x, 2 * n).into(), n, signed))
                .collect();
            (from_lanes(&out, n), n, false)
        }
        AddPairwise(l) => {
            let n = bits(l);
            let out: Vec<u64> = lanes_of(a, n)
                .chunks(2)
                .chain(lanes_of(b, n).chunks(2))
                .map(|p| p[0].wrapping_add(p[1]))
                .collect();
            (from_lanes(&out, n), n, false)
        }
        Swizzle => {
            let x = lanes_of(a, 8);
            let out: Vec<u64> = lanes_of(b, 8)
                .iter()
                .map(|&i| x.get(i as usize).copied().unwrap_or(0))
                .collect();
            (from_lanes(&out, 8), 8, false)
        }
        FMin(fl_) | FMax(fl_) => {
            let n = fbits(fl_);
            let min = matches!(op, FMin(_));
            (
                lanewise(a, b, n, |x, y| wasm_fminmax(x, y, n, min)),
                n,
                true,
            )
        }
        _ => unreachable!("{op:?}"),
    }
}

/// wasm's meaning of the new unary operators: (result, result lane bits, float result).
fn wasm_unop(op: V128UnOp, a: u128) -> (u128, u32, bool) {
    use V128UnOp::*;
    let f32l = |a: u128| {
        lanes_of(a, 32)
            .iter()
            .map(|&x| f32::from_bits(x as u32))
            .collect::<Vec<_>>()
    };
    let f64l = |a: u128| {
        lanes_of(a, 64)
            .iter()
            .map(|&x| f64::from_bits(x))
            .collect::<Vec<_>>()
    };
    match op {
        FRound(fl_, r) => {
            let n = fbits(fl_);
            let f = |x: f64| match r {
                FloatUnOp::Ceil => x.ceil(),
                FloatUnOp::Floor => x.floor(),
                FloatUnOp::Trunc => x.trunc(),
                _ => x.round_ties_even(),
            };
            (lanewise(0, a, n, |_, y| to_fl(f(fl(y, n)), n)), n, true)
        }
        Popcnt => (
            lanewise(0, a, 8, |_, y| u64::from(y.count_ones())),
            8,
            false,
        ),
        ExtAddPairwise { lanes, signed } => {
            let n = bits(lanes);
            let h = n / 2;
            let out: Vec<u64> = lanes_of(a, h)
                .chunks(2)
                .map(|p| {
                    if signed {
                        (sext(p[0], h) + sext(p[1], h)) as u64
                    } else {
                        p[0] + p[1]
                    }
                })
                .collect();
            (from_lanes(&out, n), n, false)
        }
        Extend {
            lanes,
            high,
            signed,
        } => {
            let n = bits(lanes);
            let h = n / 2;
            let x = lanes_of(a, h);
            let from = if high { x.len() / 2 } else { 0 };
            let out: Vec<u64> = x[from..from + x.len() / 2]
                .iter()
                .map(|&v| if signed { sext(v, h) as u64 } else { v })
                .collect();
            (from_lanes(&out, n), n, false)
        }
        ConvertI32x4ToF32x4 { signed } => {
            let out: Vec<u64> = lanes_of(a, 32)
                .iter()
                .map(|&x| {
                    let f = if signed {
                        x as u32 as i32 as f32
                    } else {
                        x as u32 as f32
                    };
                    u64::from(f.to_bits())
                })
                .collect();
            (from_lanes(&out, 32), 32, true)
        }
        ConvertLowI32x4ToF64x2 { signed } => {
            let out: Vec<u64> = lanes_of(a, 32)[..2]
                .iter()
                .map(|&x| {
                    let f = if signed {
                        f64::from(x as u32 as i32)
                    } else {
                        f64::from(x as u32)
                    };
                    f.to_bits()
                })
                .collect();
            (from_lanes(&out, 64), 64, true)
        }
        TruncSatF32x4ToI32x4 { signed } => {
            let out: Vec<u64> = f32l(a)
                .iter()
                .map(|&f| {
                    if signed {
                        f as i32 as u32 as u64
                    } else {
                        u64::from(f as u32)
                    }
                })
                .collect();
            (from_lanes(&out, 32), 32, false)
        }
        TruncSatF64x2ToI32x4Zero { signed } => {
            let out: Vec<u64> = f64l(a)
                .iter()
                .map(|&f| {
                    if signed {
                        f as i32 as u32 as u64
                    } else {
                        u64::from(f as u32)
                    }
                })
                .collect();
            (from_lanes(&out, 32), 32, false)
        }
        DemoteF64x2Zero => {
            let out: Vec<u64> = f64l(a)
                .iter()
                .map(|&f| u64::from((f as f32).to_bits()))
                .collect();
            (from_lanes(&out, 32), 32, true)
        }
        PromoteLowF32x4 => {
            let out: Vec<u64> = f32l(a)[..2]
                .iter()
                .map(|&f| f64::from(f).to_bits())
                .collect();
            (from_lanes(&out, 64), 64, true)
        }
        _ => unreachable!("{op:?}"),
    }
}

/// Runs `lines` on a simulator whose vector registers hold `init` (by number); checks that
/// only `dst` (and the scratch registers v30, v31, x16, x17) changed and returns the
/// simulator.
#[track_caller]
fn run_checked(
    lines: &[String],
    seed: u64,
    init: &[(u8, u128)],
    dst_v: Option<u8>,
    dst_x: Option<u8>,
) -> (VecSim, [u128; 32], [u64; 32]) {
    let mut sim = VecSim::new(seed);
    for &(r, v) in init {
        sim.v[r as usize] = v;
    }
    let (v0, x0) = (sim.v, sim.x);
    sim.run(lines);
    for n in 0..32 {
        if Some(n as u8) != dst_v && n != 30 && n != 31 {
            assert_eq!(sim.v[n], v0[n], "v{n} clobbered: {lines:?}");
        }
        if Some(n as u8) != dst_x && n != 16 && n != 17 {
            assert_eq!(sim.x[n], x0[n], "x{n} clobbered: {lines:?}");
        }
    }
    (sim, v0, x0)
}

#[test]
fn new_v128_binops_compute_under_any_aliasing() {
    use Lanes::*;
    use V128BinOp::*;
    let mut ops = vec![Q15MulrSatS, Dot, Swizzle];
    for l in [I8x16, I16x8] {
        ops.extend([AddSatS(l), AddSatU(l), SubSatS(l), SubSatU(l), AvgrU(l)]);
    }
    for l in [I8x16, I16x8, I32x4] {
        ops.extend([MinS(l), MinU(l), MaxS(l), MaxU(l)]);
    }
    for fl_ in [FloatLanes::F32x4, FloatLanes::F64x2] {
        ops.extend([FMin(fl_), FMax(fl_)]);
    }
    for lanes in [I16x8, I32x4, I64x2] {
        for high in [false, true] {
            for signed in [false, true] {
                ops.push(ExtMul {
                    lanes,
                    high,
                    signed,
                });
            }
        }
    }
    for lanes in [I8x16, I16x8] {
        for signed in [false, true] {
            ops.push(Narrow { lanes, signed });
        }
    }
    ops.extend([AddPairwise(I16x8), AddPairwise(I32x4)]);
    let edges = simd_edges();
    let regs = [16u8, 17, 18];
    for (k, &op) in ops.iter().enumerate() {
        for &d in &regs {
            for &l in &regs {
                for &r in &regs {
                    let lines =
                        body(|m| m.v128_binop(op, Reg::float(d), Reg::float(l), Reg::float(r)));
                    assert!(lines.len() <= 4, "{op:?}: {lines:?}");
                    let mut inputs: Vec<(u128, u128)> = vec![];
                    for (i, &e) in edges.iter().enumerate() {
                        inputs.push((e, edges[(i * 7 + 3) % edges.len()]));
                        inputs.push((edges[(i * 5 + 1) % edges.len()], e));
                    }
                    for (i, &(a, b)) in inputs.iter().enumerate() {
                        let b = if op == Swizzle {
                            b & 0x1f1f_1f1f_1f1f_1f1f_1f1f_1f1f_1f1f_1f1f ^ (i as u128 * 0x0305)
                        } else {
                            b
                        };
                        let init = if l == r {
                            vec![(l, a)]
                        } else {
                            vec![(l, a), (r, b)]
                        };
                        let b = if l == r { a } else { b };
                        let (sim, _, _) =
                            run_checked(&lines, k as u64 * 97 + i as u64, &init, Some(d), None);
                        let (want, n, float) = wasm_binop(op, a, b);
                        assert!(
                            same_lanes(sim.v[d as usize], want, n, float),
                            "{op:?} v{d} = v{l}, v{r} on {a:#x}, {b:#x}: got {:#x}, want {want:#x}: {lines:?}",
                            sim.v[d as usize]
                        );
                    }
                }
            }
        }
    }
}

#[test]
fn new_v128_unops_compute_under_any_aliasing() {
    use Lanes::*;
    use V128UnOp::*;
    let mut ops = vec![Popcnt, DemoteF64x2Zero, PromoteLowF32x4];
    for fl_ in [FloatLanes::F32x4, FloatLanes::F64x2] {
        for r in [
            FloatUnOp::Ceil,
            FloatUnOp::Floor,
            FloatUnOp::Trunc,
            FloatUnOp::Nearest,
        ] {
            ops.push(FRound(fl_, r));
        }
    }
    for signed in [false, true] {
        ops.extend([
            ConvertI32x4ToF32x4 { signed },
            ConvertLowI32x4ToF64x2 { signed },
            TruncSatF32x4ToI32x4 { signed },
            TruncSatF64x2ToI32x4Zero { signed },
        ]);
        for lanes in [I16x8, I32x4] {
            ops.push(ExtAddPairwise { lanes, signed });
        }
        for lanes in [I16x8, I32x4, I64x2] {
            for high in [false, true] {
                ops.push(Extend {
                    lanes,
                    high,
                    signed,
                });
            }
        }
    }
    let mut inputs = simd_edges();
    inputs.extend((0..8).map(|i| VecSim::new(500 + i).v[3]));
    for (k, &op) in ops.iter().enumerate() {
        for (d, s) in [(16u8, 16u8), (16, 17)] {
            let lines = body(|m| m.v128_unop(op, Reg::float(d), Reg::float(s)));
            assert!(lines.len() <= 2, "{op:?}: {lines:?}");
            for (i, &a) in inputs.iter().enumerate() {
                let (sim, _, _) =
                    run_checked(&lines, k as u64 * 31 + i as u64, &[(s, a)], Some(d), None);
                let (want, n, float) = wasm_unop(op, a);
                assert!(
                    same_lanes(sim.v[d as usize], want, n, float),
                    "{op:?} v{d} = v{s} on {a:#x}: got {:#x}, want {want:#x}: {lines:?}",
                    sim.v[d as usize]
                );
            }
        }
    }
}

#[test]
fn v128_tests_shifts_splats_lanes_and_shuffles_compute() {
    use Lanes::*;
    let mut inputs = simd_edges();
    inputs.extend((0..8).map(|i| VecSim::new(700 + i).v[5]));
    // Lanes zero in some places only.
    inputs.extend([
        0x0000_0000_0000_0001_0000_0000_0000_0000,
        0x0101_0101_0101_0101_0101_0101_0101_0100,
        0x0001_0001_0001_0001_0001_0001_0001_0001,
        0x0000_0001_0000_0001_0000_0001_0001_0000,
        0x8000_0000_0000_0000_0000_0000_0000_0001,
    ]);
    let all = [I8x16, I16x8, I32x4, I64x2];
    let x = Reg::int(9);
    let v = 17u8;
    for (k, &a) in inputs.iter().enumerate() {
        let seed = k as u64;
        let mut tests = vec![V128Test::AnyTrue];
        tests.extend(all.map(V128Test::AllTrue));
        tests.extend(all.map(V128Test::Bitmask));
        for t in tests {
            let lines = body(|m| m.v128_test(t, x, Reg::float(v)));
            let (sim, _, _) = run_checked(&lines, seed, &[(v, a)], None, Some(9));
            let want = match t {
                V128Test::AnyTrue => u64::from(a != 0),
                V128Test::AllTrue(l) => u64::from(lanes_of(a, bits(l)).iter().all(|&x| x != 0)),
                V128Test::Bitmask(l) => lanes_of(a, bits(l))
                    .iter()
                    .enumerate()
                    .map(|(i, &x)| (x >> (bits(l) - 1)) << i)
                    .sum(),
            };
            assert_eq!(sim.x[9], want, "{t:?} of {a:#x}: {lines:?}");
        }
        for l in all {
            let n = bits(l);
            for amount in [
                0i64,
                1,
                5,
                n as i64 - 1,
                n as i64,
                100,
                -1,
                -7,
                i32::MIN as i64,
            ] {
                for op in [V128Shift::Shl(l), V128Shift::ShrS(l), V128Shift::ShrU(l)] {
                    let sh = (amount as u32) & (n - 1);
                    let want = lanewise(0, a, n, |_, y| match op {
                        V128Shift::Shl(_) => y << sh,
                        V128Shift::ShrS(_) => (sext(y, n) >> sh) as u64,
                        V128Shift::ShrU(_) => y >> sh,
                    });
                    for (d, s) in [(16u8, 16u8), (16, 17)] {
                        let imm = body(|m| {
                            m.v128_shift(op, Reg::float(d), Reg::float(s), RegImm::Imm(sh.into()))
                        });
                        let (sim, _, _) = run_checked(&imm, seed, &[(s, a)], Some(d), None);
                        assert_eq!(sim.v[d as usize], want, "{op:?} #{sh} of {a:#x}: {imm:?}");
                        let reg = body(|m| {
                            m.v128_shift(
                                op,
                                Reg::float(d),
                                Reg::float(s),
                                RegImm::Reg(Reg::int(10)),
                            )
                        });
                        assert!(reg.len() <= 4, "{reg:?}");
                        let mut sim = VecSim::new(seed);
                        sim.x[10] = amount as u32 as u64;
                        sim.v[s as usize] = a;
                        let before = sim.v;
                        sim.run(&reg);
                        assert_eq!(
                            sim.v[d as usize], want,
                            "{op:?} by {amount} of {a:#x}: {reg:?}"
                        );
                        for r in (0..30).filter(|&r| r != d as usize) {
                            assert_eq!(sim.v[r], before[r], "v{r} clobbered: {reg:?}");
                        }
                    }
                }
            }
            // Splat of an int, extract and replace of every lane.
            let lines = body(|m| m.v128_splat(Reg::float(16), x, l));
            let (sim, _, x0) = run_checked(&lines, seed, &[], Some(16), None);
            let lane0 = lanes_of(u128::from(x0[9]), n)[0];
            assert_eq!(
                sim.v[16],
                from_lanes(&vec![lane0; 128 / n as usize], n),
                "{lines:?}"
            );
            for lane in 0..(128 / n) as u8 {
                let la = lanes_of(a, n)[lane as usize];
                for signed in [false, true] {
                    let lines = body(|m| m.v128_extract_lane(x, Reg::float(v), l, lane, signed));
                    let (sim, _, _) = run_checked(&lines, seed, &[(v, a)], None, Some(9));
                    let want = match (l, signed) {
                        (I8x16 | I16x8, true) => sext(la, n) as u32 as u64,
                        _ => la,
                    };
                    assert_eq!(sim.x[9], want, "extract {l:?}[{lane}] {signed}: {lines:?}");
                }
                let lines = body(|m| m.v128_replace_lane(Reg::float(v), x, l, lane));
                let (sim, _, x0) = run_checked(&lines, seed, &[(v, a)], Some(v), None);
                let mut ls = lanes_of(a, n);
                ls[lane as usize] = x0[9];
                assert_eq!(sim.v[v as usize], from_lanes(&ls, n), "{lines:?}");
                if n >= 32 {
                    // Float scalars.
                    let lines = body(|m| {
                        m.v128_extract_lane(Reg::float(16), Reg::float(v), l, lane, false)
                    });
                    let (sim, _, _) = run_checked(&lines, seed, &[(v, a)], Some(16), None);
                    assert_eq!(sim.v[16], u128::from(la), "{lines:?}");
                    let lines =
                        body(|m| m.v128_extract_lane(Reg::float(v), Reg::float(v), l, lane, false));
                    let (sim, _, _) = run_checked(&lines, seed, &[(v, a)], Some(v), None);
                    assert_eq!(sim.v[v as usize], u128::from(la), "{lines:?}");
                    let lines =
                        body(|m| m.v128_replace_lane(Reg::float(v), Reg::float(18), l, lane));
                    let (sim, v0, _) = run_checked(&lines, seed, &[(v, a)], Some(v), None);
                    let mut ls = lanes_of(a, n);
                    ls[lane as usize] = lanes_of(v0[18], n)[0];
                    assert_eq!(sim.v[v as usize], from_lanes(&ls, n), "{lines:?}");
                }
            }
            if n >= 32 {
                let lines = body(|m| m.v128_splat(Reg::float(16), Reg::float(v), l));
                let (sim, _, _) = run_checked(&lines, seed, &[(v, a)], Some(16), None);
                let lane0 = lanes_of(a, n)[0];
                assert_eq!(
                    sim.v[16],
                    from_lanes(&vec![lane0; 128 / n as usize], n),
                    "{lines:?}"
                );
            }
        }
    }
    // Shuffles: random indices, one-sided and mixed, under every aliasing.
    let mut patterns: Vec<[u8; 16]> = vec![
        core::array::from_fn(|i| i as u8),
        core::array::from_fn(|i| 31 - i as u8),
        core::array::from_fn(|i| 16 + (i as u8 * 3) % 16),
        core::array::from_fn(|i| (i as u8 * 5) % 16),
        core::array::from_fn(|i| (i as u8 * 7 + 3) % 32),
    ];
    for s in 0..4 {
        let r = VecSim::new(900 + s).v[0];
        patterns.push(core::array::from_fn(|i| (r >> (8 * i)) as u8 & 31));
    }
    let regs = [16u8, 17, 18];
    for (k, &p) in patterns.iter().enumerate() {
        for &d in &regs {
            for &l in &regs {
                for &r in &regs {
                    let lines =
                        body(|m| m.v128_shuffle(Reg::float(d), Reg::float(l), Reg::float(r), p));
                    let (sim, v0, _) = run_checked(&lines, k as u64, &[], Some(d), None);
                    let mut bytes = lanes_of(v0[l as usize], 8);
                    bytes.extend(lanes_of(v0[r as usize], 8));
                    let want: Vec<u64> = p.iter().map(|&i| bytes[i as usize]).collect();
                    assert_eq!(
                        sim.v[d as usize],
                        from_lanes(&want, 8),
                        "shuffle {p:?} v{d} = v{l}, v{r}: {lines:?}"
                    );
                }
            }
        }
    }
}

#[test]
fn v128_splat_extend_and_zero_loads_fault_at_the_returned_pc() {
    use Lanes::*;
    let mut m = Aarch64Masm::new(&VMOffsets::default());
    let heap = |offset| HeapAddress {
        base: None,
        index: Y,
        offset,
    };
    let mut pcs = vec![];
    for l in [I8x16, I16x8, I32x4, I64x2] {
        pcs.push(m.load_heap(D, heap(0), LoadKind::V128Splat(l)));
        pcs.push(m.load_heap(D, heap(8), LoadKind::V128Splat(l)));
    }
    for l in [I16x8, I32x4, I64x2] {
        pcs.push(m.load_heap(D, heap(0), LoadKind::V128Extend(l, true)));
        pcs.push(m.load_heap(D, heap(0), LoadKind::V128Extend(l, false)));
    }
    pcs.push(m.load_heap(D, heap(0), LoadKind::V128Zero(I32x4)));
    pcs.push(m.load_heap(D, heap(4), LoadKind::V128Zero(I64x2)));
    let lines = disasm(&m.finish(0).unwrap());
    let at: Vec<&str> = pcs
        .iter()
        .map(|&pc| lines[pc as usize / 4].as_str())
        .collect();
    assert_eq!(
        at,
        [
            "ld1r {v16.16b}, [x16]",
            "ld1r {v16.16b}, [x16]",
            "ld1r {v16.8h}, [x16]",
            "ld1r {v16.8h}, [x16]",
            "ld1r {v16.4s}, [x16]",
            "ld1r {v16.4s}, [x16]",
            "ld1r {v16.2d}, [x16]",
            "ld1r {v16.2d}, [x16]",
            "ldr d16, [x27, w10, uxtw]",
            "ldr d16, [x27, w10, uxtw]",
            "ldr d16, [x27, w10, uxtw]",
            "ldr d16, [x27, w10, uxtw]",
            "ldr d16, [x27, w10, uxtw]",
            "ldr d16, [x27, w10, uxtw]",
            "ldr s16, [x27, w10, uxtw]",
            "ldr d16, [x16, w10, uxtw]",
        ],
        "{lines:#?}"
    );
    let text = lines.join("\n");
    for want in [
        // yaxpeax prints the uxtw extend of a 64-bit add without it (objdump: `uxtw`).
        "add x16, x27, w10",
        "add x16, x27, #0x8",
        "add x16, x16, w10",
        "sshll v16.8h, v16.8b, #0x0",
        "ushll v16.4s, v16.4h, #0x0",
        "sshll v16.2d, v16.2s, #0x0",
    ] {
        assert!(text.contains(want), "missing {want}:\n{text}");
    }
}
