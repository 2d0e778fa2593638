//! [`Global`]: creating, reading and writing globals through their store.

use crate::handles::Global;
use crate::store::{AsContext, AsContextMut};
use crate::types::GlobalType;
use crate::values::{raw_to_val, val_matches, val_to_raw, Val};
use crate::vm::vmctx::{Owned, VMGlobal, VMGlobalEntry};
use crate::Error;

impl Global {
    /// A new global of type `ty` in `store`, holding `init`.
    pub fn new(mut store: impl AsContextMut, ty: GlobalType, init: Val) -> Result<Global, Error> {
        let store = store.as_context_mut().0;
        if !val_matches(store.opaque.id, &init, ty.content) {
            return Err(Error::Link(format!(
                "global of type {} initialised with a {}",
                ty.content,
                init.ty()
            )));
        }
        let raw = val_to_raw(store.opaque.id, &init)?;
        let opaque = &mut store.opaque;
        opaque.globals.push(Owned::new(VMGlobalEntry {
            cell: VMGlobal::from_raw(raw),
            ty,
        }));
        Ok(Global {
            store: opaque.id,
            index: opaque.globals.len() as u32 - 1,
        })
    }

    /// The global's type.
    pub fn ty(&self, store: impl AsContext) -> GlobalType {
        let store = store.as_context();
        store.0.opaque.assert_owns(self.store);
        store.0.opaque.globals[self.index as usize].get().ty
    }

    /// The current value.
    pub fn get(&self, store: impl AsContext) -> Val {
        let store = store.as_context();
        store.0.opaque.assert_owns(self.store);
        let entry = store.0.opaque.globals[self.index as usize].get();
        raw_to_val(self.store, entry.cell.raw(), entry.ty.content)
            .unwrap_or(Val::default_for(entry.ty.content))
    }

    /// Sets the value of a mutable global.
    pub fn set(&self, mut store: impl AsContextMut, v: Val) -> Result<(), Error> {
        let store = store.as_context_mut().0;
        store.opaque.check_owns(self.store)?;
        let entry = store.opaque.globals[self.index as usize].get_mut();
        if !entry.ty.mutable {
            return Err(Error::msg("cannot set an immutable global"));
        }
        if !val_matches(self.store, &v, entry.ty.content) {
            return Err(Error::msg(format!(
                "global of type {} cannot hold a {}",
                entry.ty.content,
                v.ty()
            )));
        }
        entry.cell = VMGlobal::from_raw(val_to_raw(self.store, &v)?);
        Ok(())
    }
}
