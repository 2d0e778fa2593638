//! [`Table`]: creating, reading, writing and growing tables through their store.

use crate::handles::Table;
use crate::store::{AsContext, AsContextMut};
use crate::types::TableType;
use crate::values::{raw_to_val, val_matches, val_to_raw, Val};
use crate::vm::table::VMTable;
use crate::vm::vmctx::Owned;
use crate::{Error, Trap, TrapCode};

impl Table {
    /// A new table of type `ty` in `store` with every element set to `init`.
    pub fn new(mut store: impl AsContextMut, ty: TableType, init: Val) -> Result<Table, Error> {
        let store = store.as_context_mut().0;
        if ty.element.as_ref().is_none() {
            return Err(Error::Link(format!("tables cannot hold {}", ty.element)));
        }
        if !val_matches(store.opaque.id, &init, ty.element) {
            return Err(Error::Link(format!(
                "table of {} initialised with a {}",
                ty.element,
                init.ty()
            )));
        }
        let (limiter, opaque) = store.limiter_and_opaque();
        let raw = val_to_raw(opaque.id, &init)? as usize;
        if let Some(l) = &limiter {
            if opaque.tables.len() >= l.tables() {
                return Err(Error::msg("the store's table limit was reached"));
            }
        }
        let table = VMTable::new(ty, raw, limiter)?;
        opaque.tables.push(Owned::new(table));
        Ok(Table {
            store: opaque.id,
            index: opaque.tables.len() as u32 - 1,
        })
    }

    /// The table's type (with its current size as the minimum).
    pub fn ty(&self, store: impl AsContext) -> TableType {
        let store = store.as_context();
        store.0.opaque.assert_owns(self.store);
        store.0.opaque.tables[self.index as usize].get().ty()
    }

    /// Current number of elements.
    pub fn size(&self, store: impl AsContext) -> u64 {
        self.ty(store).minimum
    }

    /// Element `index` (`None` if out of bounds).
    pub fn get(&self, store: impl AsContext, index: u64) -> Option<Val> {
        let store = store.as_context();
        store.0.opaque.assert_owns(self.store);
        let table = store.0.opaque.tables[self.index as usize].get();
        let raw = table.get(u32::try_from(index).ok()?)?;
        raw_to_val(self.store, raw as u128, table.ty().element).ok()
    }

    /// Sets element `index` to `value` (a reference of the table's element type).
    pub fn set(&self, mut store: impl AsContextMut, index: u64, value: Val) -> Result<(), Error> {
        let store = store.as_context_mut().0;
        store.opaque.check_owns(self.store)?;
        let table = store.opaque.tables[self.index as usize].get_mut();
        let element = table.ty().element;
        if !val_matches(self.store, &value, element) {
            return Err(Error::msg(format!(
                "table of {element} cannot hold a {}",
                value.ty()
            )));
        }
        let raw = val_to_raw(self.store, &value)? as usize;
        if u32::try_from(index).is_ok_and(|i| table.set(i, raw)) {
            Ok(())
        } else {
            Err(Trap::new(TrapCode::TableOutOfBounds).into())
        }
    }

    /// Grows by `delta` elements set to `init` (asking the store's limiter); returns the
    /// old size.
    pub fn grow(&self, mut store: impl AsContextMut, delta: u64, init: Val) -> Result<u64, Error> {
        let store = store.as_context_mut().0;
        store.opaque.check_owns(self.store)?;
        let (limiter, opaque) = store.limiter_and_opaque();
        let table = opaque.tables[self.index as usize].get_mut();
        if !val_matches(self.store, &init, table.ty().element) {
            return Err(Error::msg("table grown with a value of the wrong type"));
        }
        let raw = val_to_raw(self.store, &init)? as usize;
        let refused = || Error::msg(format!("table cannot grow by {delta} elements"));
        let delta = u32::try_from(delta).map_err(|_| refused())?;
        table
            .grow(delta, raw, limiter)?
            .map(u64::from)
            .ok_or_else(refused)
    }
}
