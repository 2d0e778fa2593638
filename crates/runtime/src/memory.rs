//! [`Memory`]: creating, reading, writing and growing linear memories through their store.

use crate::handles::Memory;
use crate::store::{AsContext, AsContextMut, StoreContext, StoreContextMut};
use crate::types::MemoryType;
use crate::vm::memory::VMMemory;
use crate::vm::vmctx::Owned;
use crate::{Error, Trap, TrapCode};

impl Memory {
    /// A new zero-filled memory of type `ty` in `store`.
    pub fn new(mut store: impl AsContextMut, ty: MemoryType) -> Result<Memory, Error> {
        let store = store.as_context_mut().0;
        let (limiter, opaque) = store.limiter_and_opaque();
        if let Some(l) = &limiter {
            if opaque.memories.len() >= l.memories() {
                return Err(Error::msg("the store's memory limit was reached"));
            }
        }
        let limit = opaque.engine.inner.config.max_memory_pages;
        let memory = VMMemory::new(ty, limit, limiter)?;
        opaque.memories.push(Owned::new(memory));
        Ok(Memory {
            store: opaque.id,
            index: opaque.memories.len() as u32 - 1,
        })
    }

    fn vm<'a, T: 'static>(&self, store: &StoreContext<'a, T>) -> &'a VMMemory {
        store.0.opaque.assert_owns(self.store);
        store.0.opaque.memories[self.index as usize].get()
    }

    /// The memory's type (with its current size as the minimum).
    pub fn ty(&self, store: impl AsContext) -> MemoryType {
        self.vm(&store.as_context()).ty()
    }

    /// Current size in 64 KiB pages.
    pub fn size(&self, store: impl AsContext) -> u64 {
        (self.data_size(store) / 65536) as u64
    }

    /// Current size in bytes.
    pub fn data_size(&self, store: impl AsContext) -> usize {
        self.vm(&store.as_context()).size_bytes()
    }

    /// The memory's bytes.
    ///
    /// # Panics
    /// If `store` is not the store of this memory (as for every method without `Result`).
    pub fn data<'a, T: 'static>(&self, store: impl Into<StoreContext<'a, T>>) -> &'a [u8] {
        self.vm(&store.into()).data()
    }

    /// The memory's bytes, mutably.
    pub fn data_mut<'a, T: 'static>(
        &self,
        store: impl Into<StoreContextMut<'a, T>>,
    ) -> &'a mut [u8] {
        let store = store.into().0;
        store.opaque.assert_owns(self.store);
        store.opaque.memories[self.index as usize]
            .get_mut()
            .data_mut()
    }

    /// The memory's bytes and the store's host data at once (as host functions such as a
    /// WASI implementation need both).
    pub fn data_and_store_mut<'a, T: 'static>(
        &self,
        store: impl Into<StoreContextMut<'a, T>>,
    ) -> (&'a mut [u8], &'a mut T) {
        let store = store.into().0;
        store.opaque.assert_owns(self.store);
        let (opaque, data) = store.opaque_and_data_mut();
        let memory = opaque.memories[self.index as usize].get_mut().data_mut();
        (memory, data)
    }

    /// Base address of the memory (it never moves while the store lives). Accessing it is
    /// up to the caller: prefer [`Memory::data`] and [`Memory::data_mut`].
    pub fn data_ptr(&self, store: impl AsContext) -> *mut u8 {
        self.vm(&store.as_context()).base()
    }

    /// Grows by `delta` pages (asking the store's limiter); returns the old size in pages.
    pub fn grow(&self, mut store: impl AsContextMut, delta: u64) -> Result<u64, Error> {
        let store = store.as_context_mut().0;
        store.opaque.check_owns(self.store)?;
        let (limiter, opaque) = store.limiter_and_opaque();
        opaque.memories[self.index as usize]
            .get_mut()
            .grow(delta, limiter)?
            .ok_or_else(|| Error::msg(format!("memory cannot grow by {delta} pages")))
    }

    /// Copies `buf.len()` bytes at `offset` out of the memory.
    pub fn read(&self, store: impl AsContext, offset: usize, buf: &mut [u8]) -> Result<(), Error> {
        let store = store.as_context();
        store.0.opaque.check_owns(self.store)?;
        let data = self.vm(&store).data();
        let src = offset
            .checked_add(buf.len())
            .and_then(|end| data.get(offset..end))
            .ok_or(Trap::new(TrapCode::MemoryOutOfBounds))?;
        buf.copy_from_slice(src);
        Ok(())
    }

    /// Copies `data` into the memory at `offset`.
    pub fn write(
        &self,
        mut store: impl AsContextMut,
        offset: usize,
        data: &[u8],
    ) -> Result<(), Error> {
        let store = store.as_context_mut();
        store.0.opaque.check_owns(self.store)?;
        let mem = self.data_mut(store);
        let dst = offset
            .checked_add(data.len())
            .and_then(|end| mem.get_mut(offset..end))
            .ok_or(Trap::new(TrapCode::MemoryOutOfBounds))?;
        dst.copy_from_slice(data);
        Ok(())
    }
}
