//! `Caller`: what a host function sees of the wasm that called it: the store (its data and
//! state) and the calling instance's exports.

use crate::engine::Engine;
use crate::handles::Extern;
use crate::store::{AsContext, AsContextMut, StoreContext, StoreContextMut, StoreInner};
use crate::Error;

/// The store and the calling instance, passed to host functions that take it as their
/// first parameter.
pub struct Caller<'a, T: 'static> {
    pub(crate) store: &'a mut StoreInner<T>,
    /// The calling instance's index in the store (`None` when called from the host).
    pub(crate) instance: Option<u32>,
}

impl<T: 'static> Caller<'_, T> {
    /// The store's host data.
    pub fn data(&self) -> &T {
        self.store.data()
    }

    /// The store's host data, mutably.
    pub fn data_mut(&mut self) -> &mut T {
        self.store.data_mut()
    }

    /// The engine.
    pub fn engine(&self) -> &Engine {
        &self.store.opaque.engine
    }

    /// An export of the calling instance (`None` if there is no such export, or the
    /// function was called from the host).
    pub fn get_export(&mut self, name: &str) -> Option<Extern> {
        self.store.opaque.export_by_name(self.instance?, name)
    }

    /// The fuel left in the store.
    pub fn get_fuel(&self) -> Result<u64, Error> {
        self.store.opaque.get_fuel()
    }

    /// Sets the fuel left in the store.
    pub fn set_fuel(&mut self, fuel: u64) -> Result<(), Error> {
        self.store.opaque.set_fuel(fuel)
    }
}

impl<T: 'static> AsContext for Caller<'_, T> {
    type Data = T;
    fn as_context(&self) -> StoreContext<'_, T> {
        StoreContext(self.store)
    }
}

impl<T: 'static> AsContextMut for Caller<'_, T> {
    fn as_context_mut(&mut self) -> StoreContextMut<'_, T> {
        StoreContextMut(self.store)
    }
}

impl<'a, T: 'static> From<&'a Caller<'_, T>> for StoreContext<'a, T> {
    fn from(caller: &'a Caller<'_, T>) -> Self {
        StoreContext(caller.store)
    }
}

impl<'a, T: 'static> From<&'a mut Caller<'_, T>> for StoreContext<'a, T> {
    fn from(caller: &'a mut Caller<'_, T>) -> Self {
        StoreContext(caller.store)
    }
}

impl<'a, T: 'static> From<&'a mut Caller<'_, T>> for StoreContextMut<'a, T> {
    fn from(caller: &'a mut Caller<'_, T>) -> Self {
        StoreContextMut(caller.store)
    }
}
