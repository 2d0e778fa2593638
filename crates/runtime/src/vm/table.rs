//! A table as a store owns it: its elements (raw references) and the definition generated
//! code reads.
//!
//! Raw references are `*const VMFuncRef` for funcrefs and externref box pointers, 0 for null.
//! Every function a table can reference belongs to the table's store, so the store keeps
//! them alive; nothing is reference-counted here.

use super::vmctx::VMTableDefinition;
use crate::limits::ResourceLimiter;
use crate::types::TableType;
use crate::Error;

/// Growth beyond this many elements fails (`table.grow` returns -1) instead of allocating
/// without bound.
pub(crate) const MAX_TABLE_ELEMENTS: u32 = 10_000_000;

/// A table. Its address is stable (the store keeps it in an `Owned`).
pub(crate) struct VMTable {
    ty: TableType,
    elements: Vec<usize>,
    definition: VMTableDefinition,
}

impl VMTable {
    /// A table of type `ty` with every element set to `init`, after asking `limiter`.
    pub fn new(
        ty: TableType,
        init: usize,
        limiter: Option<&mut dyn ResourceLimiter>,
    ) -> Result<VMTable, Error> {
        if ty.minimum > u64::from(MAX_TABLE_ELEMENTS) {
            return Err(Error::Link(format!(
                "table minimum of {} elements exceeds the limit of {MAX_TABLE_ELEMENTS}",
                ty.minimum
            )));
        }
        if let Some(limiter) = limiter {
            let maximum = ty.maximum.map(|m| m as usize);
            if !limiter.table_growing(0, ty.minimum as usize, maximum)? {
                return Err(Error::msg(format!(
                    "table of {} elements refused by the store's resource limiter",
                    ty.minimum
                )));
            }
        }
        let elements = vec![init; ty.minimum as usize];
        let mut table = VMTable {
            ty,
            elements,
            definition: VMTableDefinition::default(),
        };
        table.sync_definition();
        Ok(table)
    }

    fn sync_definition(&mut self) {
        self.definition.base = self.elements.as_ptr() as usize;
        self.definition.length = self.elements.len() as u64;
    }

    /// The definition generated code reads (elements and length).
    pub fn definition(&mut self) -> *mut VMTableDefinition {
        &mut self.definition
    }

    /// The declared type, with the current size as the minimum.
    pub fn ty(&self) -> TableType {
        TableType {
            minimum: self.size().into(),
            ..self.ty
        }
    }

    /// Whether the table is indexed by `i64` (table64).
    pub fn is_64(&self) -> bool {
        self.ty.table64
    }

    /// Current number of elements.
    pub fn size(&self) -> u32 {
        self.elements.len() as u32
    }

    /// Element `index`, raw.
    pub fn get(&self, index: u32) -> Option<usize> {
        self.elements.get(index as usize).copied()
    }

    /// Sets element `index` to raw reference `value`; `false` if out of bounds.
    pub fn set(&mut self, index: u32, value: usize) -> bool {
        match self.elements.get_mut(index as usize) {
            Some(slot) => {
                *slot = value;
                true
            }
            None => false,
        }
    }

    /// The elements, mutably (for bulk operations that checked their range).
    pub fn elements_mut(&mut self) -> &mut [usize] {
        &mut self.elements
    }

    /// Grows by `delta` elements of raw value `init` after asking `limiter`: `Ok(Some(old
    /// size))`, `Ok(None)` when refused, `Err` when the limiter failed.
    pub fn grow(
        &mut self,
        delta: u32,
        init: usize,
        limiter: Option<&mut dyn ResourceLimiter>,
    ) -> Result<Option<u32>, Error> {
        let old = self.size();
        let Some(new) = old.checked_add(delta) else {
            return Ok(None);
        };
        if u64::from(new) > self.ty.maximum.unwrap_or(u64::MAX) || new > MAX_TABLE_ELEMENTS {
            return Ok(None);
        }
        if let Some(limiter) = limiter {
            if delta > 0 {
                let maximum = self.ty.maximum.map(|m| m as usize);
                if !limiter.table_growing(old as usize, new as usize, maximum)? {
                    return Ok(None);
                }
            }
        }
        self.elements.resize(new as usize, init);
        self.sync_definition();
        Ok(Some(old))
    }
}
