//! Runs the x64 vector primitives natively under every register aliasing. The result with
//! `dst` and the sources in distinct registers is the reference (what each primitive
//! computes is the spec suite's job); with any sources and `dst` in the same registers the
//! result must be the same, and no other allocatable register may change.

use super::enc::{self, Mem, Packed, Rm, Width};
use super::masm::X64Masm;
use super::x64;
use crate::masm::*;
use crate::vmctx::VMOffsets;

const RDI: u8 = 7;
const RSI: u8 = 6;
/// The vector registers the tests use (allocatable ones only).
const XMMS: [u8; 3] = [1, 2, 14];
/// The int registers the tests read and write (allocatable; rdi and rsi hold the state).
const GPR_A: u8 = 3; // rbx
const GPR_B: u8 = 9; // r9

/// The register file a test starts from and ends with.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
struct State {
    xmm: [u128; 16],
    gpr: [u64; 16],
}

impl State {
    fn new(seed: u64) -> State {
        let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
        let mut next = || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        let mut s = State {
            xmm: [0; 16],
            gpr: [0; 16],
        };
        for v in &mut s.xmm {
            // Mix in lanes with edge values: zero, all ones, sign bits, NaN and infinity
            // patterns (as f32 and f64), small numbers.
            let lanes: [u32; 4] = std::array::from_fn(|_| match next() % 8 {
                0 => 0,
                1 => u32::MAX,
                2 => 0x8000_0000,
                3 => 0x7FC0_0001,
                4 => 0x7FF0_0000,
                5 => (next() % 300) as u32,
                _ => next() as u32,
            });
            *v = lanes
                .iter()
                .rev()
                .fold(0u128, |acc, &l| acc << 32 | u128::from(l));
        }
        for g in &mut s.gpr {
            *g = next();
        }
        s
    }
}

/// The modes to test: SSE, and AVX (VEX forms) where the CPU has it.
fn modes() -> Vec<bool> {
    if std::is_x86_feature_detected!("avx") {
        vec![false, true]
    } else {
        eprintln!("no AVX on this CPU: the AVX forms are not run");
        vec![false]
    }
}

/// Runs `body` with xmm0-15 and the int registers rbx and r8-r10 loaded from `state`,
/// then stores them back; `avx` selects the AVX (VEX) forms.
fn run(avx: bool, body: impl FnOnce(&mut X64Masm), state: &mut State) {
    let mut m = X64Masm::new(&VMOffsets::default()).with_avx(avx);
    x64!(m.ops; push rbx);
    for x in 0..16 {
        enc::packed(
            &mut m.ops,
            Packed::MOVUPS,
            x,
            Rm::from(Mem::base(RDI, 16 * x as i32)),
        );
    }
    for g in [3, 8, 9, 10] {
        enc::mov_load(&mut m.ops, true, g, Mem::base(RSI, 8 * g as i32));
    }
    body(&mut m);
    for x in 0..16 {
        enc::movups_store(&mut m.ops, Mem::base(RDI, 16 * x as i32), x);
    }
    for g in [3, 8, 9, 10] {
        enc::mov_store(&mut m.ops, Width::Q, Mem::base(RSI, 8 * g as i32), g);
    }
    x64!(m.ops; pop rbx; ret);
    let code = m.ops.take_code().unwrap();
    let mut mem = region::alloc(code.len(), region::Protection::READ_WRITE).unwrap();
    // SAFETY: `mem` is a fresh mapping of at least `code.len()` bytes, writable here.
    unsafe {
        std::ptr::copy_nonoverlapping(code.as_ptr(), mem.as_mut_ptr::<u8>(), code.len());
        region::protect(
            mem.as_ptr::<u8>(),
            code.len(),
            region::Protection::READ_EXECUTE,
        )
        .unwrap();
    }
    // SAFETY: the code is a complete function of this signature: it saves and restores rbx
    // (the only callee-saved register it touches), reads and writes only the two arrays it
    // is given (16 x 16 and 16 x 8 bytes), and returns.
    unsafe {
        let f: extern "C" fn(*mut u128, *mut u64) = std::mem::transmute(mem.as_ptr::<u8>());
        f(state.xmm.as_mut_ptr(), state.gpr.as_mut_ptr());
    }
}

/// Whether `a` and `b` are equal, or equal once every NaN lane (read as four f32 or as two
/// f64 lanes) is taken as equal to any other NaN: float operators may pick either
/// operand's NaN, which depends on the operand order.
fn same_up_to_nans(a: u128, b: u128) -> bool {
    let f32s = |v: u128| -> [u32; 4] { std::array::from_fn(|i| (v >> (32 * i)) as u32) };
    let f64s = |v: u128| -> [u64; 2] { std::array::from_fn(|i| (v >> (64 * i)) as u64) };
    let nan32 = |x: u32| x & 0x7FFF_FFFF > 0x7F80_0000;
    let nan64 = |x: u64| x & 0x7FFF_FFFF_FFFF_FFFF > 0x7FF0_0000_0000_0000;
    a == b
        || f32s(a)
            .iter()
            .zip(f32s(b))
            .all(|(&x, y)| x == y || nan32(x) && nan32(y))
        || f64s(a)
            .iter()
            .zip(f64s(b))
            .all(|(&x, y)| x == y || nan64(x) && nan64(y))
}

/// Checks a vector primitive with `n` vector sources under every assignment of `dst` and
/// the sources to the registers of [`XMMS`] that `allowed` accepts, in every mode of
/// [`modes`]. Sources that share a register get the same value, and the reference is
/// computed from those values with the SSE forms (so the AVX forms must agree with them).
fn check_aliasing(
    name: &str,
    n: usize,
    emit: impl Fn(&mut X64Masm, Reg, &[Reg]),
    allowed: impl Fn(u8, &[u8]) -> bool,
    float: bool,
) {
    let distinct: Vec<Reg> = (0..n).map(|i| Reg::float(6 + i as u8)).collect();
    for seed in 0..3u64 {
        let start = State::new(seed);
        for c in 0..XMMS.len().pow(n as u32 + 1) {
            let pick = |i: usize| XMMS[c / XMMS.len().pow(i as u32) % XMMS.len()];
            let d = pick(0);
            let regs: Vec<u8> = (0..n).map(|i| pick(i + 1)).collect();
            if !allowed(d, &regs) {
                continue;
            }
            // Input i is the value of the first source in the same register.
            let mut inputs = start;
            for (i, &r) in regs.iter().enumerate() {
                let first = regs.iter().position(|&q| q == r).unwrap();
                inputs.xmm[6 + i] = start.xmm[6 + first];
            }
            let mut reference = inputs;
            run(false, |m| emit(m, Reg::float(5), &distinct), &mut reference);
            let want = reference.xmm[5];
            for avx in modes() {
                let mut s = inputs;
                for (i, &r) in regs.iter().enumerate() {
                    s.xmm[r as usize] = inputs.xmm[6 + i];
                }
                let before = s;
                let sources: Vec<Reg> = regs.iter().map(|&r| Reg::float(r)).collect();
                run(avx, |m| emit(m, Reg::float(d), &sources), &mut s);
                let got = s.xmm[d as usize];
                assert!(
                    got == want || float && same_up_to_nans(got, want),
                    "{name} (avx {avx}): dst xmm{d}, sources {regs:?}: {got:#034x} want \
                     {want:#034x}"
                );
                for r in 1..15 {
                    if r != d as usize {
                        assert_eq!(
                            s.xmm[r], before.xmm[r],
                            "{name} (avx {avx}): xmm{r} changed (dst xmm{d}, sources {regs:?})"
                        );
                    }
                }
                assert_eq!(
                    s.gpr, before.gpr,
                    "{name} (avx {avx}): an int register changed"
                );
            }
        }
    }
}

fn any(_: u8, _: &[u8]) -> bool {
    true
}

/// Whether a float operator: NaN lanes may differ in payload with the operand order.
fn is_float_binop(op: V128BinOp) -> bool {
    use V128BinOp::*;
    matches!(
        op,
        FAdd(_) | FSub(_) | FMul(_) | FDiv(_) | FPMin(_) | FPMax(_) | FMin(_) | FMax(_)
    )
}

fn all_binops() -> Vec<V128BinOp> {
    use FloatLanes::*;
    use Lanes::*;
    use V128BinOp::*;
    let mut ops = vec![And, Or, Xor, AndNot, Q15MulrSatS, Dot, Swizzle];
    for l in [I8x16, I16x8, I32x4, I64x2] {
        ops.extend([Add(l), Sub(l)]);
    }
    for l in [I16x8, I32x4, I64x2] {
        ops.push(Mul(l));
        for high in [false, true] {
            for signed in [false, true] {
                ops.push(ExtMul {
                    lanes: l,
                    high,
                    signed,
                });
            }
        }
    }
    for l in [I8x16, I16x8] {
        ops.extend([AddSatS(l), AddSatU(l), SubSatS(l), SubSatU(l), AvgrU(l)]);
        for signed in [false, true] {
            ops.push(Narrow { lanes: l, signed });
        }
    }
    for l in [I8x16, I16x8, I32x4] {
        ops.extend([MinS(l), MinU(l), MaxS(l), MaxU(l)]);
    }
    for l in [I16x8, I32x4] {
        ops.push(AddPairwise(l));
    }
    for l in [F32x4, F64x2] {
        ops.extend([
            FAdd(l),
            FSub(l),
            FMul(l),
            FDiv(l),
            FPMin(l),
            FPMax(l),
            FMin(l),
            FMax(l),
        ]);
    }
    ops
}

fn all_unops() -> Vec<V128UnOp> {
    use FloatLanes::*;
    use Lanes::*;
    use V128UnOp::*;
    let mut ops = vec![Not, Popcnt, DemoteF64x2Zero, PromoteLowF32x4];
    for l in [I8x16, I16x8, I32x4, I64x2] {
        ops.extend([Neg(l), Abs(l)]);
    }
    for l in [F32x4, F64x2] {
        ops.extend([FNeg(l), FAbs(l), FSqrt(l)]);
        for r in [
            FloatUnOp::Ceil,
            FloatUnOp::Floor,
            FloatUnOp::Trunc,
            FloatUnOp::Nearest,
        ] {
            ops.push(FRound(l, r));
        }
    }
    for signed in [false, true] {
        ops.extend([
            ConvertI32x4ToF32x4 { signed },
            ConvertLowI32x4ToF64x2 { signed },
            TruncSatF32x4ToI32x4 { signed },
            TruncSatF64x2ToI32x4Zero { signed },
        ]);
        for l in [I16x8, I32x4] {
            ops.push(ExtAddPairwise { lanes: l, signed });
        }
        for l in [I16x8, I32x4, I64x2] {
            for high in [false, true] {
                ops.push(Extend {
                    lanes: l,
                    high,
                    signed,
                });
            }
        }
    }
    ops
}

#[test]
fn binops_under_any_aliasing() {
    for op in all_binops() {
        check_aliasing(
            &format!("{op:?}"),
            2,
            |m, d, s| m.v128_binop(op, d, s[0], s[1]),
            any,
            is_float_binop(op),
        );
    }
}

#[test]
fn unops_under_any_aliasing() {
    for op in all_unops() {
        check_aliasing(
            &format!("{op:?}"),
            1,
            |m, d, s| m.v128_unop(op, d, s[0]),
            any,
            false,
        );
    }
}

#[test]
fn compares_bitselect_and_shuffles_under_any_aliasing() {
    use Lanes::*;
    for lanes in [I8x16, I16x8, I32x4, I64x2] {
        for cc in [
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
        ] {
            if lanes == I64x2 && matches!(cc, IntCmp::LtU | IntCmp::GtU | IntCmp::LeU | IntCmp::GeU)
            {
                continue;
            }
            let cmp = V128Cmp::Int(lanes, cc);
            check_aliasing(
                &format!("{cmp:?}"),
                2,
                |m, d, s| m.v128_cmp(cmp, d, s[0], s[1]),
                any,
                false,
            );
        }
    }
    for lanes in [FloatLanes::F32x4, FloatLanes::F64x2] {
        for cc in [
            FloatCmp::Eq,
            FloatCmp::Ne,
            FloatCmp::Lt,
            FloatCmp::Gt,
            FloatCmp::Le,
            FloatCmp::Ge,
        ] {
            let cmp = V128Cmp::Float(lanes, cc);
            check_aliasing(
                &format!("{cmp:?}"),
                2,
                |m, d, s| m.v128_cmp(cmp, d, s[0], s[1]),
                any,
                false,
            );
        }
    }
    check_aliasing(
        "bitselect",
        3,
        |m, d, s| m.v128_bitselect(d, s[0], s[1], s[2]),
        any,
        false,
    );
    let shuffles: [[u8; 16]; 4] = [
        std::array::from_fn(|i| i as u8),
        std::array::from_fn(|i| 16 + i as u8),
        std::array::from_fn(|i| (i as u8 * 7) % 32),
        std::array::from_fn(|i| 31 - i as u8),
    ];
    for lanes in shuffles {
        check_aliasing(
            &format!("shuffle {lanes:?}"),
            2,
            |m, d, s| m.v128_shuffle(d, s[0], s[1], lanes),
            any,
            false,
        );
    }
}

#[test]
fn shifts_lanes_and_tests_keep_other_registers() {
    use Lanes::*;
    for lanes in [I8x16, I16x8, I32x4, I64x2] {
        for op in [
            V128Shift::Shl(lanes),
            V128Shift::ShrS(lanes),
            V128Shift::ShrU(lanes),
        ] {
            for amount in [RegImm::Imm(1), RegImm::Imm(7), RegImm::Reg(Reg::int(GPR_A))] {
                check_aliasing(
                    &format!("{op:?} {amount:?}"),
                    1,
                    |m, d, s| m.v128_shift(op, d, s[0], amount),
                    any,
                    false,
                );
            }
        }
        for lane in [0, 1] {
            check_aliasing(
                &format!("replace {lanes:?}"),
                1,
                |m, d, s| {
                    m.mov(d, RegImm::Reg(s[0]), OperandSize::S128);
                    m.v128_replace_lane(d, Reg::int(GPR_A), lanes, lane);
                },
                any,
                false,
            );
            // Extraction into an int register changes only that register.
            for (signed, avx) in [false, true]
                .into_iter()
                .flat_map(|s| modes().into_iter().map(move |a| (s, a)))
            {
                let mut st = State::new(lane.into());
                let before = st;
                run(
                    avx,
                    |m| m.v128_extract_lane(Reg::int(GPR_B), Reg::float(2), lanes, lane, signed),
                    &mut st,
                );
                assert_eq!(st.xmm, before.xmm, "extract {lanes:?}");
            }
        }
        check_aliasing(
            &format!("splat {lanes:?}"),
            1,
            |m, d, _| m.v128_splat(d, Reg::int(GPR_A), lanes),
            any,
            false,
        );
        for test in [
            V128Test::AllTrue(lanes),
            V128Test::Bitmask(lanes),
            V128Test::AnyTrue,
        ] {
            let mut results = Vec::new();
            for avx in modes() {
                let mut st = State::new(3);
                let before = st;
                run(
                    avx,
                    |m| m.v128_test(test, Reg::int(GPR_B), Reg::float(2)),
                    &mut st,
                );
                assert_eq!(st.xmm[1..15], before.xmm[1..15], "{test:?}");
                assert_eq!(st.gpr[3], before.gpr[3], "{test:?}");
                results.push(st.gpr[GPR_B as usize]);
            }
            assert!(
                results.windows(2).all(|w| w[0] == w[1]),
                "{test:?}: SSE and AVX differ"
            );
        }
    }
    for lanes in [I32x4, I64x2] {
        check_aliasing(
            &format!("float splat {lanes:?}"),
            1,
            |m, d, s| m.v128_splat(d, s[0], lanes),
            any,
            false,
        );
        for lane in 0..2 {
            check_aliasing(
                &format!("float replace {lanes:?} {lane}"),
                2,
                |m, d, s| {
                    m.mov(d, RegImm::Reg(s[0]), OperandSize::S128);
                    m.v128_replace_lane(d, s[1], lanes, lane);
                },
                |d, regs| d != regs[1],
                false,
            );
        }
    }
}
