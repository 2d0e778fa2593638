//! Data layouts shared with generated code (offsets in `wjit_compiler::vmctx`) and the
//! allocations that hold them.

use std::ptr::NonNull;

/// A callable function as generated code sees it (layout in `wjit_compiler::vmctx::funcref`).
#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct VMFuncRef {
    pub code: usize,
    pub vmctx: usize,
    pub type_id: u64,
}

/// A linear memory as generated code sees it.
#[repr(C)]
#[derive(Debug, Default)]
pub(crate) struct VMMemoryDefinition {
    pub base: usize,
    pub length: u64,
}

/// A table as generated code sees it: `base` points at `length` raw references.
#[repr(C)]
#[derive(Debug, Default)]
pub(crate) struct VMTableDefinition {
    pub base: usize,
    pub length: u64,
}

/// The storage cell of a global (value at offset 0): 16 bytes, 16-byte aligned, so that
/// generated code can load and store a v128 global whole. Other types use `bits` only
/// (`high` stays 0).
#[repr(C, align(16))]
#[derive(Debug, Default)]
pub(crate) struct VMGlobal {
    pub bits: u64,
    pub high: u64,
}

impl VMGlobal {
    /// A cell holding the raw value `raw` (see `values::val_to_raw`).
    pub fn from_raw(raw: u128) -> VMGlobal {
        VMGlobal {
            bits: raw as u64,
            high: (raw >> 64) as u64,
        }
    }

    /// The raw value in the cell.
    pub fn raw(&self) -> u128 {
        self.bits as u128 | (self.high as u128) << 64
    }
}

/// Offset in the vmctx of the back pointer to the owning `VMInstance` (the reserved header
/// word).
pub(crate) const VMCTX_INSTANCE: usize = 40;

/// A heap allocation owned through a raw pointer, so that generated code and the runtime
/// may access it through pointers while its owner (the store) is borrowed elsewhere. Freed
/// on drop.
pub(crate) struct Owned<T: ?Sized>(NonNull<T>);

impl<T> Owned<T> {
    pub fn new(value: T) -> Owned<T> {
        Owned(NonNull::from(Box::leak(Box::new(value))))
    }
}

impl<T: ?Sized> Owned<T> {
    pub fn as_ptr(&self) -> *mut T {
        self.0.as_ptr()
    }

    pub fn get(&self) -> &T {
        // SAFETY: the allocation lives as long as `self`; the runtime never holds a `&mut`
        // to it across a call that may use a shared reference (see the store's comment).
        unsafe { self.0.as_ref() }
    }

    pub fn get_mut(&mut self) -> &mut T {
        // SAFETY: as in `get`; `&mut self` means the owner is borrowed exclusively.
        unsafe { self.0.as_mut() }
    }
}

impl<T: ?Sized> Drop for Owned<T> {
    fn drop(&mut self) {
        // SAFETY: the pointer came from `Box::leak` and is freed once, here.
        unsafe { drop(Box::from_raw(self.0.as_ptr())) }
    }
}

/// The vmctx allocation of one instance: 8-byte words at a stable address.
pub(crate) struct VmctxAlloc {
    ptr: NonNull<u64>,
    words: usize,
}

impl VmctxAlloc {
    pub fn new(bytes: usize) -> VmctxAlloc {
        let words = bytes.div_ceil(8).max(8);
        let v = vec![0u64; words].into_boxed_slice();
        let ptr = NonNull::from(Box::leak(v)).cast::<u64>();
        VmctxAlloc { ptr, words }
    }

    pub fn addr(&self) -> usize {
        self.ptr.as_ptr() as usize
    }

    /// Writes the word at byte offset `offset` (which must be 8-byte aligned and in bounds).
    pub fn set(&self, offset: i32, value: u64) {
        let i = offset as usize / 8;
        assert!(offset >= 0 && offset % 8 == 0 && i < self.words);
        // SAFETY: in bounds of our allocation; the store that owns the vmctx is borrowed
        // mutably by whoever calls this, so no wasm code of this instance runs concurrently.
        unsafe { self.ptr.as_ptr().add(i).write(value) };
    }
}

impl Drop for VmctxAlloc {
    fn drop(&mut self) {
        // SAFETY: `ptr` came from `Box::leak` of a slice of `words` words.
        unsafe {
            drop(Box::from_raw(std::ptr::slice_from_raw_parts_mut(
                self.ptr.as_ptr(),
                self.words,
            )))
        };
    }
}

/// A global as a store owns it: the cell generated code reads and writes (first, so a
/// pointer to the entry is a pointer to the cell), and its type.
#[repr(C)]
pub(crate) struct VMGlobalEntry {
    pub cell: VMGlobal,
    pub ty: crate::types::GlobalType,
}
