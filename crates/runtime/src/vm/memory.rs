//! A linear memory as a store owns it: the mapping, its type and the definition generated
//! code reads.

use super::vmctx::VMMemoryDefinition;
use crate::limits::ResourceLimiter;
use crate::sys::linear_memory::{LinearMemory, WASM_PAGE_SIZE};
use crate::types::MemoryType;
use crate::Error;

/// A linear memory. Its address is stable (the store keeps it in an `Owned`), so vmctxs
/// point at its `definition`.
pub(crate) struct VMMemory {
    ty: MemoryType,
    memory: LinearMemory,
    definition: VMMemoryDefinition,
}

impl VMMemory {
    /// A zero-filled memory of type `ty`, after asking `limiter`; `limit_pages` is the
    /// engine's limit.
    pub fn new(
        ty: MemoryType,
        limit_pages: u64,
        limiter: Option<&mut dyn ResourceLimiter>,
    ) -> Result<VMMemory, Error> {
        if ty.minimum > limit_pages {
            return Err(Error::Link(format!(
                "memory minimum of {} pages exceeds the engine limit of {limit_pages}",
                ty.minimum
            )));
        }
        if let Some(limiter) = limiter {
            let desired = ty.minimum as usize * WASM_PAGE_SIZE;
            let maximum = ty.maximum.map(|m| m as usize * WASM_PAGE_SIZE);
            if !limiter.memory_growing(0, desired, maximum)? {
                return Err(Error::msg(format!(
                    "memory of {} pages refused by the store's resource limiter",
                    ty.minimum
                )));
            }
        }
        let memory = LinearMemory::new(ty.minimum, ty.maximum, limit_pages)?;
        let definition = VMMemoryDefinition {
            base: memory.base() as usize,
            length: memory.size_bytes() as u64,
        };
        Ok(VMMemory {
            ty,
            memory,
            definition,
        })
    }

    /// The definition generated code reads (base and length).
    pub fn definition(&mut self) -> *mut VMMemoryDefinition {
        &mut self.definition
    }

    /// The declared type, with the current size as the minimum.
    pub fn ty(&self) -> MemoryType {
        MemoryType {
            minimum: self.memory.size_pages(),
            ..self.ty
        }
    }

    /// Whether the memory is indexed by `i64` (memory64).
    pub fn is_64(&self) -> bool {
        self.ty.memory64
    }

    /// Byte 0 of the memory (it never moves).
    pub fn base(&self) -> *mut u8 {
        self.memory.base()
    }

    /// Current size in bytes.
    pub fn size_bytes(&self) -> usize {
        self.memory.size_bytes()
    }

    /// The accessible bytes.
    pub fn data(&self) -> &[u8] {
        // SAFETY: the first `size_bytes` bytes of the reservation are mapped read-write and
        // stay so for the memory's lifetime; the returned borrow ties them to `self`.
        unsafe { std::slice::from_raw_parts(self.base(), self.size_bytes()) }
    }

    /// The accessible bytes, mutably.
    pub fn data_mut(&mut self) -> &mut [u8] {
        // SAFETY: as in `data`; `&mut self` excludes other borrows.
        unsafe { std::slice::from_raw_parts_mut(self.base(), self.size_bytes()) }
    }

    /// Grows by `delta` pages after asking `limiter`: `Ok(Some(old pages))`, `Ok(None)` when
    /// refused by the memory's maximum, the engine limit, the limiter or the OS, `Err` when
    /// the limiter failed.
    pub fn grow(
        &mut self,
        delta: u64,
        limiter: Option<&mut dyn ResourceLimiter>,
    ) -> Result<Option<u64>, Error> {
        let old = self.memory.size_pages();
        let Some(new) = old.checked_add(delta) else {
            return Ok(None);
        };
        if new > self.memory.max_pages() {
            return Ok(None);
        }
        if let Some(limiter) = limiter {
            if delta > 0 {
                let maximum = self.ty.maximum.map(|m| m as usize * WASM_PAGE_SIZE);
                let desired = new as usize * WASM_PAGE_SIZE;
                if !limiter.memory_growing(self.size_bytes(), desired, maximum)? {
                    return Ok(None);
                }
            }
        }
        let Some(old) = self.memory.grow(delta) else {
            return Ok(None);
        };
        self.definition.length = self.memory.size_bytes() as u64;
        Ok(Some(old))
    }
}
