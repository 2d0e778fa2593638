#![doc = include_str!("../../../README.md")]
#![warn(missing_docs)]

// Floors, bottom up; a file imports only from its own floor or the ones below.
//
// 0. OS: `sys/` (virtual memory, code memory, signals).
// 1. Vocabulary: `error`, `types`, `limits`.
// 2. Machine-facing: `vm/` (vmctx layouts, stubs, entry, traps, code registry, builtins,
//    memories, tables, instances and host functions as generated code sees them);
//    `profiling/` (perf map and jitdump files naming the generated code).
// 3. Public API: `engine`, `store`, `handles`, `values`, `module/`, `caller`, `typed`,
//    `func`, `memory`, `table`, `global`, `tag`, `instance`.
// 4. `linker`.

mod error;
mod limits;
// The OS layer keeps a few helpers only its own tests and later work use.
mod profiling;
#[allow(dead_code)]
pub(crate) mod sys;
mod types;
mod vm;

mod caller;
mod engine;
mod func;
mod global;
mod handles;
mod instance;
mod memory;
mod module;
mod store;
mod table;
mod tag;
mod typed;
mod values;

mod linker;

pub use caller::Caller;
pub use engine::{Config, Engine};
pub use error::{Error, FrameInfo, HostError, I32Exit, ThrownException, Trap, TrapCode};
pub use func::{HostResult, IntoFunc, WithCaller};
pub use handles::{ExnRef, Extern, Func, Global, Instance, Memory, Table, Tag};
pub use limits::{ResourceLimiter, StoreLimits, StoreLimitsBuilder};
pub use linker::Linker;
pub use module::{CodeListing, FunctionCode, OperatorCode, Target};
pub use module::{ExportType, ImportType, Module, Precompiled};
pub use profiling::ProfilingStrategy;
pub use store::{AsContext, AsContextMut, Store, StoreContext, StoreContextMut, UpdateDeadline};
pub use typed::{TypedFunc, WasmParams, WasmResults, WasmTy};
pub use types::{
    ExternType, FuncType, GlobalType, HeapType, MemoryType, RefType, TableType, TagType, ValType,
};
pub use values::{ExternRef, Val, V128};

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
