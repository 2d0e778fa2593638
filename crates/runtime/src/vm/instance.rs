//! An instance as generated code and builtins see it: the vmctx, the memories, tables and
//! globals it uses (owned by its store), and the state of its passive segments.

use super::memory::VMMemory;
use super::store::VMStoreContext;
use super::stubs::stubs;
use super::table::VMTable;
use super::vmctx::{VMFuncRef, VMGlobal, VmctxAlloc, VMCTX_INSTANCE};
use crate::Error;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use wjit_compiler::vmctx::{funcref, VMOffsets};

/// A range of a shared byte buffer: the bytes of one data segment, all segments sharing
/// one copy of their section (modules can have 100 000 small segments: one allocation
/// each would cost more to parse than the section itself).
#[derive(Debug, Clone, Default)]
pub(crate) struct SharedBytes {
    all: Arc<[u8]>,
    range: std::ops::Range<usize>,
}

impl SharedBytes {
    /// `range` of `all`; `None` if it is out of bounds.
    pub fn new(all: Arc<[u8]>, range: std::ops::Range<usize>) -> Option<SharedBytes> {
        all.get(range.clone())?;
        Some(SharedBytes { all, range })
    }
}

impl std::ops::Deref for SharedBytes {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        // In bounds: checked in `SharedBytes::new`, and neither field changes afterwards.
        &self.all[self.range.clone()]
    }
}

/// What an instance needs from its module at run time.
pub(crate) trait ModuleRuntime: Send + Sync {
    /// Compiles defined function `func_index` if nobody has yet and returns its entry.
    fn compile_lazily(&self, func_index: u32) -> Result<usize, Error>;
}

/// Everything a new vmctx is filled from.
pub(crate) struct VMInstanceParts {
    pub offsets: VMOffsets,
    pub module: Arc<dyn ModuleRuntime>,
    pub store_context: *mut VMStoreContext,
    pub epoch: *const AtomicU64,
    pub memories: Vec<*mut VMMemory>,
    pub tables: Vec<*mut VMTable>,
    pub globals: Vec<*mut VMGlobal>,
    /// The tags (imported first; owned by the store).
    pub tags: Vec<*const super::exceptions::VMTag>,
    /// The funcrefs of the imported functions (their canonical ones, owned by the store).
    pub imported_funcs: Vec<*const VMFuncRef>,
    /// (code, type id) of each defined function.
    pub defined_funcs: Vec<(usize, u32)>,
    /// The engine's signature id of each of the module's type indices.
    pub type_ids: Vec<u32>,
    pub builtins: Vec<(wjit_compiler::vmctx::Builtin, usize)>,
    /// The index of the instance in its store.
    pub store_index: u32,
}

/// An instance's machine-level state. Its address is stable (the store keeps it in an
/// `Owned`): the vmctx points back at it.
pub(crate) struct VMInstance {
    vmctx: VmctxAlloc,
    offsets: VMOffsets,
    pub module: Arc<dyn ModuleRuntime>,
    pub memories: Vec<*mut VMMemory>,
    pub tables: Vec<*mut VMTable>,
    imported_funcs: Vec<*const VMFuncRef>,
    /// Evaluated passive element segments (`None` once dropped).
    pub passive_elems: Vec<Option<Box<[usize]>>>,
    /// Passive data segments (`None` once dropped).
    pub passive_data: Vec<Option<SharedBytes>>,
    /// The index of this instance in its store.
    pub store_index: u32,
}

impl VMInstance {
    /// Builds the vmctx. Call [`VMInstance::link_back`] once the instance is at its final
    /// address.
    pub fn new(parts: VMInstanceParts) -> Result<VMInstance, Error> {
        let stubs = stubs()?;
        let o = parts.offsets;
        let vmctx = VmctxAlloc::new(o.size());
        if let Some(&mem) = parts.memories.first() {
            // SAFETY: the memories are live allocations of the store.
            let mem = unsafe { &mut *mem };
            vmctx.set(o.memory0_base(), mem.base() as u64);
            vmctx.set(o.memory0_definition(), mem.definition() as u64);
        }
        for (builtin, f) in &parts.builtins {
            vmctx.set(o.builtin(*builtin), *f as u64);
        }
        vmctx.set(o.trap_landing(), stubs.trap_landing as u64);
        vmctx.set(o.throw_landing(), stubs.throw_landing as u64);
        vmctx.set(o.lazy_stub(), stubs.lazy as u64);
        vmctx.set(o.epoch_ptr(), parts.epoch as usize as u64);
        vmctx.set(o.store_context(), parts.store_context as usize as u64);
        let num_imported = parts.imported_funcs.len() as u32;
        for i in 0..o.num_funcs {
            let fr = if i < num_imported {
                // SAFETY: imported funcrefs are live funcrefs of the same store.
                unsafe { *parts.imported_funcs[i as usize] }
            } else {
                let (code, type_id) = parts.defined_funcs[(i - num_imported) as usize];
                VMFuncRef {
                    code,
                    vmctx: vmctx.addr(),
                    type_id: type_id as u64,
                }
            };
            let base = o.funcref(i);
            vmctx.set(base + funcref::CODE, fr.code as u64);
            vmctx.set(base + funcref::VMCTX, fr.vmctx as u64);
            vmctx.set(base + funcref::TYPE_ID, fr.type_id);
            let canonical = if i < num_imported {
                parts.imported_funcs[i as usize] as usize
            } else {
                vmctx.addr() + base as usize
            };
            vmctx.set(o.func_ptr(i), canonical as u64);
        }
        for (i, g) in parts.globals.iter().enumerate() {
            vmctx.set(o.global_ptr(i as u32), *g as u64);
        }
        for (i, t) in parts.tags.iter().enumerate() {
            vmctx.set(o.tag_ptr(i as u32), *t as u64);
        }
        for (i, &id) in parts.type_ids.iter().take(o.num_types as usize).enumerate() {
            vmctx.set(o.type_id(i as u32), u64::from(id));
        }
        for (i, t) in parts.tables.iter().enumerate() {
            // SAFETY: a live table of the store.
            let def = unsafe { (**t).definition() };
            vmctx.set(o.table_ptr(i as u32), def as u64);
        }
        for (i, m) in parts.memories.iter().enumerate() {
            // SAFETY: a live memory of the store.
            let m = unsafe { &mut **m };
            vmctx.set(o.memory_ptr(i as u32), m.definition() as u64);
            // The base never moves: the memory's whole index range is reserved.
            vmctx.set(o.memory_base(i as u32), m.base() as u64);
        }
        Ok(VMInstance {
            vmctx,
            offsets: o,
            module: parts.module,
            memories: parts.memories,
            tables: parts.tables,
            imported_funcs: parts.imported_funcs,
            passive_elems: Vec::new(),
            passive_data: Vec::new(),
            store_index: parts.store_index,
        })
    }

    /// Points the vmctx back at this instance (at its final, stable address).
    pub fn link_back(&mut self) {
        let me = self as *mut VMInstance as u64;
        self.vmctx.set(VMCTX_INSTANCE as i32, me);
    }

    /// The instance owning `vmctx`.
    ///
    /// # Safety
    /// `vmctx` must be 0 or the context of a live, linked instance; the returned reference
    /// must not outlive it.
    pub unsafe fn from_vmctx<'a>(vmctx: usize) -> Option<&'a mut VMInstance> {
        if vmctx == 0 {
            return None;
        }
        // SAFETY: per the contract, the back pointer was written by `link_back`.
        let p = unsafe { *((vmctx + VMCTX_INSTANCE) as *const usize) } as *mut VMInstance;
        // SAFETY: the instance outlives its running code.
        unsafe { p.as_mut() }
    }

    /// The canonical funcref of function `index`: the one a funcref value points to (for an
    /// import, the exporter's).
    pub fn canonical_funcref(&self, index: u32) -> *const VMFuncRef {
        match self.imported_funcs.get(index as usize) {
            Some(&f) => f,
            None => (self.vmctx.addr() + self.offsets.funcref(index) as usize) as *const VMFuncRef,
        }
    }

    /// Points this instance's funcref of defined function `index` at `code` (after lazy
    /// compilation). The store is borrowed by the running thread only, but the word is
    /// written atomically anyway as generated code may be reading it on this thread.
    pub fn patch_code(&self, index: u32, code: usize) {
        let at = self.vmctx.addr() + self.offsets.funcref(index) as usize;
        // SAFETY: `at` is the aligned code word of a funcref inside our live vmctx.
        let word = unsafe { &*(at as *const AtomicUsize) };
        word.store(code, Ordering::Release);
    }

    /// Memory `index` of the instance.
    pub fn memory(&self, index: u32) -> Option<*mut VMMemory> {
        self.memories.get(index as usize).copied()
    }

    /// Table `index` of the instance.
    pub fn table(&self, index: u32) -> Option<*mut VMTable> {
        self.tables.get(index as usize).copied()
    }
}
