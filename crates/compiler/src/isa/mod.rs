//! Instruction-set backends. Each implements [`crate::masm::MacroAssembler`] and the
//! host-side stubs (entry, host-call and trap-landing routines) for its architecture.
//! Nothing outside this folder names a machine register.
//!
//! Both backends are compiled on every host (they only produce bytes), so encoding tests of
//! either run anywhere; [`host`] picks the one for the machine we run on.

pub mod aarch64;
pub mod buffer;
pub mod x64;

/// The engine-wide routines between host and wasm code, as assembled by a backend's
/// `stubs::generate_stubs(raise_trap, unwind)`: one code blob and the offset of each entry point.
/// Their contracts are documented in `x64/stubs.rs` and hold for every backend.
#[derive(Debug, Clone)]
pub struct Stubs {
    /// Position-independent code except for the embedded `raise_trap` address.
    pub code: Vec<u8>,
    /// Offset of `enter`.
    pub enter: usize,
    /// Offset of `host_call`.
    pub host_call: usize,
    /// Offset of `trap_landing`.
    pub trap_landing: usize,
    /// Offset of `throw_landing`.
    pub throw_landing: usize,
}

/// The backend for the machine this crate was compiled for.
#[cfg(target_arch = "x86_64")]
pub mod host {
    pub use super::x64::lazy::{
        call_word, jump_slots, lazy_stub, lazy_thunk, resolve_call, retarget_word, slot_jump,
        SLOT_PATCH_OFFSET, SLOT_SIZE,
    };
    pub use super::x64::stubs::{generate_stubs, Stubs};
    pub use super::x64::X64Masm as Masm;
    /// Whether this backend supports lazy compilation.
    pub const LAZY_COMPILATION: bool = true;

    /// A macro assembler for the functions of `info`'s module (AVX forms if
    /// [`crate::ModuleInfo::x64_avx`]).
    pub fn masm(info: &crate::ModuleInfo) -> Masm {
        Masm::new(&info.offsets).with_avx(info.x64_avx)
    }
}

/// The backend for the machine this crate was compiled for.
#[cfg(target_arch = "aarch64")]
pub mod host {
    pub use super::aarch64::lazy::{
        call_word, jump_slots, lazy_stub, lazy_thunk, resolve_call, retarget_word, slot_jump,
        SLOT_PATCH_OFFSET, SLOT_SIZE,
    };
    pub use super::aarch64::stubs::{generate_stubs, Stubs};
    pub use super::aarch64::Aarch64Masm as Masm;
    /// Whether this backend supports lazy compilation.
    pub const LAZY_COMPILATION: bool = true;

    /// A macro assembler for the functions of `info`'s module.
    pub fn masm(info: &crate::ModuleInfo) -> Masm {
        Masm::new(&info.offsets)
    }
}

#[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
compile_error!("wjit supports x86_64 and aarch64 hosts only");
