//! x86-64 backend (System V hosts).
//!
//! Register roles: `r15` vmctx, `r14` base of memory 0 (both pinned), `rbp` frame pointer.
//! `rax`, `rcx`, `rdx` and `r11` are scratch registers owned by this backend (division,
//! shift counts, immediates that do not fit, memory-to-memory copies; `rax` and `xmm0` also
//! break cycles of the core's parallel moves), so the core never sees a fixed-register
//! constraint. Allocatable: `rsi rdi rbx r8 r9 r10 r12 r13` and `xmm1`-`xmm14`; `xmm0` returns
//! floats and `xmm15` is the float scratch.
//!
//! Vector and float code uses the two-operand SSE forms (up to SSE4.2), or, when the engine
//! found AVX ([`X64Masm::with_avx`]), their three-operand VEX forms wherever that saves a
//! register copy (`vpaddb d, a, b` for `movaps d, a; paddb d, b`). Both compute the same
//! results; AVX2 and FMA are never used.

// dynasm's register expressions expand to `.into()` calls on values that already have the
// right type.
#[allow(clippy::useless_conversion)]
pub mod lazy;
#[allow(clippy::useless_conversion)]
mod masm;
mod simd;
#[allow(clippy::useless_conversion)]
pub mod stubs;

// Instructions with registers or displacements chosen at compile time are encoded by `enc`
// in their shortest form (dynasm would always emit REX, SIB and disp32/imm32); dynasm still
// assembles jumps, labels and fixed-register sequences.
mod enc;
#[cfg(test)]
mod enc_tests;
#[cfg(all(test, target_arch = "x86_64"))]
mod simd_tests;

pub use masm::X64Masm;

/// Emits x64 code into `$ops` with the register roles of this backend as aliases.
macro_rules! x64 {
    ($ops:expr; $($t:tt)*) => {
        dynasm::dynasm!($ops
            ; .arch x64
            ; .alias vmctx, r15
            ; .alias membase, r14
            ; $($t)*
        )
    };
}
pub(crate) use x64;
