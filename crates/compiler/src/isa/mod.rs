//! Instruction-set backends. Each implements [`crate::masm::MacroAssembler`] and the
//! host-side stubs (entry, host-call and trap-landing routines) for its architecture.
//! Nothing outside this folder names a machine register.

#[cfg(target_arch = "x86_64")]
pub mod x64;

/// The backend for the machine this crate was compiled for.
#[cfg(target_arch = "x86_64")]
pub mod host {
    pub use super::x64::stubs::{generate_stubs, Stubs};
    pub use super::x64::X64Masm as Masm;
}

#[cfg(not(target_arch = "x86_64"))]
compile_error!("wjit currently supports x86_64 only (aarch64 is in progress)");
