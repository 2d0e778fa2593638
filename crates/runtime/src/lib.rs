#![doc = include_str!("../../../README.md")]
#![warn(missing_docs)]

mod builtins;
mod engine;
mod error;
mod externals;
mod func;
mod instance;
mod linker;
mod module;
// The OS layer keeps a few helpers only its own tests and later work use.
#[allow(dead_code)]
pub(crate) mod sys;
mod types;
mod vm;

pub use engine::{Config, Engine};
pub use error::{Error, FrameInfo, Trap, TrapCode};
pub use externals::{Global, Memory, Table};
pub use func::{
    Caller, Func, HostResult, IntoFunc, TypedFunc, WasmParams, WasmResults, WasmTy, WithCaller,
};
pub use instance::{Extern, Instance};
pub use linker::Linker;
pub use module::{ExportType, ImportType, Module};
pub use types::{ExternRef, ExternType, FuncType, GlobalType, MemoryType, TableType, Val, ValType};

/// Counters for tests that check resources are released; not part of the stable API.
#[doc(hidden)]
pub mod testing {
    use std::sync::atomic::Ordering;

    /// Linear memories currently mapped in this process.
    pub fn live_memories() -> usize {
        crate::sys::LIVE_MEMORIES.load(Ordering::Relaxed)
    }

    /// Executable code regions currently mapped in this process.
    pub fn live_code_regions() -> usize {
        crate::sys::LIVE_CODE.load(Ordering::Relaxed)
    }
}
