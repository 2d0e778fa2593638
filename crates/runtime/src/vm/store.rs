//! The type-erased view of a store that builtins and host calls use while wasm runs.
//!
//! The public `Store<T>` implements [`VMStore`]; generated code reaches it through
//! `vmctx.store_context -> VMStoreContext::store`, which every entry from the host sets
//! from its exclusive borrow of the store.

use super::memory::VMMemory;
use super::table::VMTable;
use crate::limits::ResourceLimiter;
use crate::Error;
use std::ptr::NonNull;

/// The per-store state generated code reaches through `vmctx.store_context` (layout in
/// `wjit_compiler::vmctx::store_ctx`), plus the store pointer the runtime uses in builtins
/// and host calls.
#[repr(C)]
pub(crate) struct VMStoreContext {
    /// Remaining fuel; generated code traps with `OutOfFuel` when it drops below 0.
    pub fuel: i64,
    /// Epoch at which running code calls the `EpochDeadline` builtin.
    pub epoch_deadline: u64,
    /// The store running wasm, set by every entry from the host (see `entry::call_raw`).
    pub store: Option<NonNull<dyn VMStore>>,
}

/// What the machine-facing floor needs from a store.
pub(crate) trait VMStore {
    /// The store's resource limiter, if it has one.
    fn limiter(&mut self) -> Option<&mut dyn ResourceLimiter>;

    /// Called when running code reaches the epoch deadline: returns the new deadline
    /// (an absolute epoch) to continue, or the error to trap with.
    fn epoch_deadline_reached(&mut self) -> Result<u64, Error>;

    /// Takes ownership of a new exception object (laid out as `wjit_compiler::vmctx::exn`
    /// says) for the rest of the store's life; returns its address, the exnref.
    fn keep_exception(&mut self, object: Box<[u64]>) -> usize;

    /// Grows `memory` (owned by this store) by `delta` pages after asking the limiter;
    /// returns the old size in pages, or `None` if the growth is refused.
    ///
    /// # Safety
    /// `memory` must be a live memory of this store.
    unsafe fn grow_memory(&mut self, memory: *mut VMMemory, delta: u64) -> Option<u64> {
        // SAFETY: per the contract.
        let memory = unsafe { &mut *memory };
        memory.grow(delta, self.limiter()).ok().flatten()
    }

    /// Grows `table` (owned by this store) by `delta` elements of raw value `init` after
    /// asking the limiter; returns the old size, or `None` if the growth is refused.
    ///
    /// # Safety
    /// `table` must be a live table of this store.
    unsafe fn grow_table(&mut self, table: *mut VMTable, delta: u32, init: usize) -> Option<u32> {
        // SAFETY: per the contract.
        let table = unsafe { &mut *table };
        table.grow(delta, init, self.limiter()).ok().flatten()
    }
}
