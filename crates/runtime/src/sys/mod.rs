//! Operating-system glue for the runtime: virtual memory and the trap signal handler.
//!
//! * [`mmap`]: RAII anonymous mappings ([`mmap::Mmap`]) with page-granular protection changes.
//! * [`linear_memory`]: a 32-bit wasm linear memory that never moves, backed by an 8 GiB
//!   reservation so that bounds checks can be left to guard pages.
//! * [`code_memory`]: read+execute mappings for generated machine code, and code-arena chunks
//!   (one memfd mapped read+write and, elsewhere, read+execute) that code is appended to: never
//!   writable and executable at the same time.
//! * [`file_map`]: read-only mappings of whole files (precompiled modules).
//! * [`signals`]: the SIGSEGV/SIGBUS/SIGILL/SIGFPE handler that turns faults at known JIT pcs into
//!   wasm traps by redirecting the thread to a landing routine, and the registry of JIT code ranges.
//!
//! Only x86_64 and aarch64 Linux are supported.

#[cfg(not(all(
    target_os = "linux",
    any(target_arch = "x86_64", target_arch = "aarch64")
)))]
compile_error!("wjit's runtime supports only x86_64 and aarch64 Linux");

pub mod code_memory;
pub mod file_map;
pub mod linear_memory;
pub mod mmap;
pub mod signals;

/// Linear memories currently mapped (for leak tests).
pub static LIVE_MEMORIES: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
/// Code regions currently mapped (for leak tests).
pub static LIVE_CODE: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
