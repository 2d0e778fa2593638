//! AArch64 backend (AAPCS64 hosts).
//!
//! Register roles: `x28` vmctx, `x27` base of memory 0 (both pinned), `x29` frame pointer,
//! `x30` link register. Allocatable: `x9`-`x14`, `x19`-`x26`, `v8`-`v29` (`v8`-`v15` are
//! callee-saved in AAPCS64; the entry stub saves them for its caller); results return in
//! `x0` / `v0`. `x8` and `v7` break cycles of the core's parallel moves. `x16`, `x17`, `v30` and
//! `v31` are scratch registers owned by this backend (immediates and displacements that do
//! not fit an encoding, memory-to-memory copies; `v30:v31` is the consecutive table pair of a
//! two-register `tbl` for shuffles);
//! `x15` carries the caller's vmctx into a call through a `VMFuncRef` (read by the host-call
//! stub). `x0`-`x8` and `v0`-`v7` are free for call sequences (builtin arguments).
//!
//! Every instruction with an immediate or an addressing mode is encoded by [`enc`] after
//! legalisation, so no input reaches a dynasm encoding panic; dynasm assembles the
//! label-relative branches (and the fixed sequences of the stubs).

mod enc;
#[allow(clippy::useless_conversion)]
pub mod lazy;
// dynasm's register expressions expand to `.into()` calls on values that already have the
// right type.
#[allow(clippy::useless_conversion)]
mod masm;
#[allow(clippy::useless_conversion)]
pub mod stubs;
#[cfg(test)]
mod tests;

pub use masm::Aarch64Masm;

/// Emits AArch64 code into `$ops`.
macro_rules! a64 {
    ($ops:expr; $($t:tt)*) => {
        dynasm::dynasm!($ops
            ; .arch aarch64
            ; $($t)*
        )
    };
}
pub(crate) use a64;
