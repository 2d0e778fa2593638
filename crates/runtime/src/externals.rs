//! Memories, globals and tables: the non-function things a module imports and exports.

use crate::engine::Engine;
use crate::sys::linear_memory::LinearMemory;
use crate::types::{GlobalType, MemoryType, TableType, Val, ValType};
use crate::vm::{self, VMFuncRef, VMGlobal, VMMemoryDefinition, VMTableDefinition};
use crate::Error;
use std::any::Any;
use std::cell::UnsafeCell;
use std::sync::{Arc, Mutex};

pub(crate) struct MemoryInner {
    ty: MemoryType,
    memory: Mutex<LinearMemory>,
    def: Box<UnsafeCell<VMMemoryDefinition>>,
}

// SAFETY: the definition is only written under the `memory` lock; generated code reads it.
unsafe impl Send for MemoryInner {}
// SAFETY: as above.
unsafe impl Sync for MemoryInner {}

/// A linear memory. Cheap to clone (a handle).
#[derive(Clone)]
pub struct Memory {
    pub(crate) inner: Arc<MemoryInner>,
}

impl std::fmt::Debug for Memory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Memory({} pages)", self.size())
    }
}

impl Memory {
    /// A new memory of type `ty`, zero-filled.
    pub fn new(engine: &Engine, ty: MemoryType) -> Result<Memory, Error> {
        let limit = engine.inner.config.max_memory_pages;
        if ty.minimum > limit {
            return Err(Error::Link(format!(
                "memory minimum of {} pages exceeds the engine limit of {limit}",
                ty.minimum
            )));
        }
        let memory = LinearMemory::new(ty.minimum, ty.maximum, limit)?;
        let def = Box::new(UnsafeCell::new(VMMemoryDefinition {
            base: memory.base() as usize,
            length: memory.size_bytes() as u64,
        }));
        Ok(Memory {
            inner: Arc::new(MemoryInner {
                ty,
                memory: Mutex::new(memory),
                def,
            }),
        })
    }

    pub(crate) fn definition(&self) -> *mut VMMemoryDefinition {
        self.inner.def.get()
    }

    /// The memory's type (with its current size as the minimum).
    pub fn ty(&self) -> MemoryType {
        MemoryType {
            minimum: self.size(),
            maximum: self.inner.ty.maximum,
        }
    }

    /// Current size in pages.
    pub fn size(&self) -> u64 {
        (self.data_size() / 65536) as u64
    }

    /// Current size in bytes.
    pub fn data_size(&self) -> usize {
        // SAFETY: the definition lives as long as `self`; a racing grow only increases it.
        unsafe { (*self.inner.def.get()).length as usize }
    }

    /// Base address of the memory (it never moves).
    pub fn data_ptr(&self) -> *mut u8 {
        // SAFETY: as in `data_size`.
        unsafe { (*self.inner.def.get()).base as *mut u8 }
    }

    /// Grows by `delta` pages; returns the old size in pages.
    pub fn grow(&self, delta: u64) -> Result<u64, Error> {
        let mut mem = self.inner.memory.lock().unwrap_or_else(|p| p.into_inner());
        let old = mem
            .grow(delta)
            .ok_or_else(|| Error::Host(format!("memory cannot grow by {delta} pages")))?;
        // SAFETY: we hold the lock that serialises writers of the definition.
        unsafe { (*self.inner.def.get()).length = mem.size_bytes() as u64 };
        Ok(old)
    }

    fn check(&self, offset: usize, len: usize) -> Result<(), Error> {
        match offset.checked_add(len) {
            Some(end) if end <= self.data_size() => Ok(()),
            _ => Err(Error::Trap(crate::Trap::new(
                crate::TrapCode::MemoryOutOfBounds,
            ))),
        }
    }

    /// Copies `buf.len()` bytes at `offset` out of the memory.
    pub fn read(&self, offset: usize, buf: &mut [u8]) -> Result<(), Error> {
        self.check(offset, buf.len())?;
        // SAFETY: the range is inside the accessible part of the memory.
        unsafe {
            std::ptr::copy_nonoverlapping(self.data_ptr().add(offset), buf.as_mut_ptr(), buf.len())
        };
        Ok(())
    }

    /// Copies `data` into the memory at `offset`.
    pub fn write(&self, offset: usize, data: &[u8]) -> Result<(), Error> {
        self.check(offset, data.len())?;
        // SAFETY: the range is inside the accessible part of the memory.
        unsafe {
            std::ptr::copy_nonoverlapping(data.as_ptr(), self.data_ptr().add(offset), data.len())
        };
        Ok(())
    }
}

pub(crate) struct GlobalInner {
    ty: GlobalType,
    cell: Box<UnsafeCell<VMGlobal>>,
}

// SAFETY: the cell is plain data; concurrent mutation from wasm on several threads is a
// data race the embedder must avoid, as with any wasm state.
unsafe impl Send for GlobalInner {}
// SAFETY: as above.
unsafe impl Sync for GlobalInner {}

/// A global variable. Cheap to clone (a handle).
#[derive(Clone)]
pub struct Global {
    pub(crate) inner: Arc<GlobalInner>,
}

impl std::fmt::Debug for Global {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Global({:?})", self.get())
    }
}

impl Global {
    /// A new global of type `ty` holding `init`.
    pub fn new(_engine: &Engine, ty: GlobalType, init: Val) -> Result<Global, Error> {
        if init.ty() != ty.content {
            return Err(Error::Link(format!(
                "global of type {} initialised with a {}",
                ty.content,
                init.ty()
            )));
        }
        let g = Global {
            inner: Arc::new(GlobalInner {
                ty,
                cell: Box::new(UnsafeCell::new(VMGlobal::default())),
            }),
        };
        g.set_unchecked(&init)?;
        Ok(g)
    }

    pub(crate) fn cell(&self) -> *mut VMGlobal {
        self.inner.cell.get()
    }

    /// The global's type.
    pub fn ty(&self) -> GlobalType {
        self.inner.ty
    }

    /// The current value.
    pub fn get(&self) -> Val {
        // SAFETY: the cell lives as long as `self`.
        let bits = unsafe { (*self.cell()).bits };
        vm::raw_to_val(bits, self.inner.ty.content)
            .unwrap_or(Val::default_for(self.inner.ty.content))
    }

    /// Sets the value of a mutable global.
    pub fn set(&self, v: Val) -> Result<(), Error> {
        if !self.inner.ty.mutable {
            return Err(Error::Host("cannot set an immutable global".into()));
        }
        if v.ty() != self.inner.ty.content {
            return Err(Error::Host(format!(
                "global of type {} cannot hold a {}",
                self.inner.ty.content,
                v.ty()
            )));
        }
        self.set_unchecked(&v)
    }

    pub(crate) fn set_unchecked(&self, v: &Val) -> Result<(), Error> {
        let raw = vm::val_to_raw(v)?;
        // SAFETY: the cell lives as long as `self`.
        unsafe { (*self.cell()).bits = raw };
        Ok(())
    }
}

/// Growth beyond this many elements fails (`table.grow` returns -1) instead of allocating
/// without bound.
const MAX_TABLE_ELEMENTS: u32 = 10_000_000;

/// What keeps the function behind a reference value alive.
fn owner_of(v: &Val) -> Option<Arc<dyn Any + Send + Sync>> {
    match v {
        Val::FuncRef(Some(f)) => Some(match f.owner() {
            crate::func::FuncOwner::Instance(i) => i.clone(),
            crate::func::FuncOwner::Host(h) => h.clone(),
        }),
        _ => None,
    }
}

pub(crate) struct TableInner {
    ty: TableType,
    state: UnsafeCell<TableState>,
}

struct TableState {
    def: Box<VMTableDefinition>,
    elements: Vec<*const VMFuncRef>,
    /// What keeps the functions referenced by `elements` alive (instances, host functions).
    keep_alive: Vec<Arc<dyn Any + Send + Sync>>,
}

// SAFETY: like globals, table contents are plain data owned by the wasm state.
unsafe impl Send for TableInner {}
// SAFETY: as above.
unsafe impl Sync for TableInner {}

/// A table of function references. Cheap to clone (a handle).
#[derive(Clone)]
pub struct Table {
    pub(crate) inner: Arc<TableInner>,
}

impl std::fmt::Debug for Table {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Table({} elements)", self.size())
    }
}

impl Table {
    /// A new table of type `ty` with every element set to `init`.
    pub fn new(_engine: &Engine, ty: TableType, init: Val) -> Result<Table, Error> {
        if !matches!(ty.element, ValType::FuncRef | ValType::ExternRef) {
            return Err(Error::Link(format!("tables cannot hold {}", ty.element)));
        }
        if init.ty() != ty.element {
            return Err(Error::Link(format!(
                "table of {} initialised with a {}",
                ty.element,
                init.ty()
            )));
        }
        let raw = vm::val_to_raw(&init)? as usize as *const VMFuncRef;
        let elements = vec![raw; ty.minimum as usize];
        let def = Box::new(VMTableDefinition {
            base: elements.as_ptr() as usize,
            length: elements.len() as u64,
        });
        let keep_alive = owner_of(&init).into_iter().collect();
        Ok(Table {
            inner: Arc::new(TableInner {
                ty,
                state: UnsafeCell::new(TableState {
                    def,
                    elements,
                    keep_alive,
                }),
            }),
        })
    }

    #[allow(clippy::mut_from_ref)]
    fn state(&self) -> &mut TableState {
        // SAFETY: table state is only touched by the thread running this table's instance
        // (instances are not shared between threads while running).
        unsafe { &mut *self.inner.state.get() }
    }

    pub(crate) fn definition(&self) -> *mut VMTableDefinition {
        &mut *self.state().def
    }

    /// The table's type (with its current size as the minimum).
    pub fn ty(&self) -> TableType {
        TableType {
            minimum: self.size(),
            ..self.inner.ty
        }
    }

    /// Current number of elements.
    pub fn size(&self) -> u32 {
        self.state().elements.len() as u32
    }

    /// Element `index` (`None` if out of bounds).
    pub fn get(&self, index: u32) -> Option<Val> {
        let raw = self.get_raw(index)?;
        vm::raw_to_val(raw as u64, self.inner.ty.element).ok()
    }

    /// Sets element `index` to `value` (a reference of the table's element type).
    pub fn set(&self, index: u32, value: Val) -> Result<(), Error> {
        if value.ty() != self.inner.ty.element {
            return Err(Error::Host(format!(
                "table of {} cannot hold a {}",
                self.inner.ty.element,
                value.ty()
            )));
        }
        let raw = vm::val_to_raw(&value)? as usize as *const VMFuncRef;
        self.set_raw(index, raw, owner_of(&value))
    }

    /// Grows by `delta` elements set to `init`; returns the old size.
    pub fn grow(&self, delta: u32, init: Val) -> Result<u32, Error> {
        if init.ty() != self.inner.ty.element {
            return Err(Error::Host(
                "table grown with a value of the wrong type".into(),
            ));
        }
        let raw = vm::val_to_raw(&init)? as usize;
        if let Some(o) = owner_of(&init) {
            self.state().keep_alive.push(o);
        }
        self.grow_raw(delta, raw)
            .ok_or_else(|| Error::Host(format!("table cannot grow by {delta} elements")))
    }

    /// The raw bits of element `index`.
    pub(crate) fn get_raw(&self, index: u32) -> Option<usize> {
        self.state()
            .elements
            .get(index as usize)
            .map(|p| *p as usize)
    }

    /// Grows by `delta` elements of raw value `init`; `None` if that exceeds the maximum.
    pub(crate) fn grow_raw(&self, delta: u32, init: usize) -> Option<u32> {
        let st = self.state();
        let old = st.elements.len() as u32;
        let new = old.checked_add(delta)?;
        if new > self.inner.ty.maximum.unwrap_or(u32::MAX) || new > MAX_TABLE_ELEMENTS {
            return None;
        }
        st.elements.resize(new as usize, init as *const VMFuncRef);
        st.def.base = st.elements.as_ptr() as usize;
        st.def.length = new as u64;
        Some(old)
    }

    /// Stores a function reference at `index`, keeping its owner alive through `owner`.
    pub(crate) fn set_raw(
        &self,
        index: u32,
        funcref: *const VMFuncRef,
        owner: Option<Arc<dyn Any + Send + Sync>>,
    ) -> Result<(), Error> {
        let st = self.state();
        let slot = st
            .elements
            .get_mut(index as usize)
            .ok_or(Error::Trap(crate::Trap::new(
                crate::TrapCode::TableOutOfBounds,
            )))?;
        *slot = funcref;
        if let Some(o) = owner {
            if !st.keep_alive.iter().any(|k| Arc::ptr_eq(k, &o)) {
                st.keep_alive.push(o);
            }
        }
        Ok(())
    }
}
