//! `Store<T>`: the owner of everything wasm code touches, and the per-tenant state.
//!
//! A store owns its instances, memories, tables, globals and host functions (handles are
//! ids into it), the host data `T`, the fuel and epoch deadline shared by all wasm running
//! in it, and its resource limiter. Everything that runs wasm or reads or writes store
//! state takes the store (`impl AsContext` / `impl AsContextMut`), so only one thread at a
//! time can touch a store's wasm state: `Store` is `Send` but not `Sync`.
//!
//! While wasm runs, the caller's `&mut Store` is lent to the running code: host functions
//! and builtins reach the store through the pointer the entry put in the store context
//! (`vm::entry::call_raw`), never through a reference held across the call.

use crate::engine::Engine;
use crate::error::{Error, TrapCode};
use crate::handles::{Extern, Func, Global, Instance, Memory, StoreId, Table};
use crate::limits::ResourceLimiter;
use crate::module::{ExportIndex, Module};
use crate::vm::exceptions::VMTag;
use crate::vm::host_func::HostFuncCtx;
use crate::vm::instance::VMInstance;
use crate::vm::memory::VMMemory;
use crate::vm::store::VMStore;
use crate::vm::store::VMStoreContext;
use crate::vm::table::VMTable;
use crate::vm::vmctx::{Owned, VMGlobalEntry};
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU64, Ordering};

static NEXT_STORE_ID: AtomicU64 = AtomicU64::new(1);

/// What to do when the epoch deadline is reached, returned by the callback set with
/// [`Store::epoch_deadline_callback`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UpdateDeadline {
    /// Keep running, with a new deadline this many epoch ticks after the current epoch.
    Continue(u64),
}

type LimiterFn<T> = Box<dyn (FnMut(&mut T) -> &mut dyn ResourceLimiter) + Send + Sync>;
type EpochCallback<T> =
    Box<dyn FnMut(StoreContextMut<'_, T>) -> Result<UpdateDeadline, Error> + Send + Sync>;

/// A collection of wasm state (instances, memories, tables, globals, host functions) and
/// the host data `T` their host functions see, as in wasmtime.
///
/// Create one per tenant (plugin, request, program run). Handles such as [`Instance`] and
/// [`Func`] are ids into the store that made them; all of it is freed when the store is
/// dropped.
///
/// A store can move to another thread (`Send` when `T` is):
///
/// ```
/// use wjit::{Engine, Instance, Module, Store};
/// let engine = Engine::default();
/// let module = Module::new(&engine, r#"(module (func (export "one") (result i32) i32.const 1))"#)?;
/// let mut store = Store::new(&engine, ());
/// let instance = Instance::new(&mut store, &module, &[])?;
/// let one = instance.get_typed_func::<(), i32>(&store, "one")?;
/// let result = std::thread::spawn(move || one.call(&mut store, ())).join().unwrap()?;
/// assert_eq!(result, 1);
/// # Ok::<(), wjit::Error>(())
/// ```
///
/// but it is not `Sync`, so two threads can never run wasm in one store at once:
///
/// ```compile_fail
/// fn shared_between_threads<S: Sync>(_: &S) {}
/// let store = wjit::Store::new(&wjit::Engine::default(), ());
/// shared_between_threads(&store); // error: `Store<()>` is not `Sync`
/// ```
///
/// and running wasm needs the store exclusively, which two threads cannot both have:
///
/// ```compile_fail
/// use wjit::{Engine, Instance, Module, Store};
/// let engine = Engine::default();
/// let module = Module::new(&engine, r#"(module (func (export "f")))"#).unwrap();
/// let mut store = Store::new(&engine, ());
/// let instance = Instance::new(&mut store, &module, &[]).unwrap();
/// let f = instance.get_typed_func::<(), ()>(&store, "f").unwrap();
/// std::thread::scope(|s| {
///     s.spawn(|| f.call(&mut store, ()));
///     s.spawn(|| f.call(&mut store, ())); // error: `store` is already borrowed mutably
/// });
/// ```
pub struct Store<T: 'static> {
    inner: Box<StoreInner<T>>,
}

// SAFETY: a store owns all the state its raw pointers point to (or points to engine and
// module data, which are `Send + Sync`); none of it is tied to the creating thread, and
// host closures and callbacks are required to be `Send`. `Store` is deliberately not
// `Sync`: every operation on its wasm state needs `&mut Store` or runs on its owner's thread.
unsafe impl<T: Send> Send for Store<T> {}

pub(crate) struct StoreInner<T: 'static> {
    pub(crate) opaque: StoreOpaque,
    data: T,
    limiter: Option<LimiterFn<T>>,
    epoch_callback: Option<EpochCallback<T>>,
}

/// The part of a store that does not depend on `T`.
pub(crate) struct StoreOpaque {
    pub id: StoreId,
    pub engine: Engine,
    /// Fuel, epoch deadline and store pointer, read by generated code.
    pub vm_context: Owned<VMStoreContext>,
    pub instances: Vec<InstanceData>,
    pub memories: Vec<Owned<VMMemory>>,
    pub tables: Vec<Owned<VMTable>>,
    pub globals: Vec<Owned<VMGlobalEntry>>,
    pub host_funcs: Vec<Owned<HostFuncCtx>>,
    /// Tags (their addresses are their identities).
    pub tags: Vec<Owned<VMTag>>,
    /// Exception objects (see `vm::exceptions`), kept for the store's life.
    pub exceptions: Vec<Box<[u64]>>,
    /// Function types by engine signature id, filled on first use (so dynamic calls need
    /// no lock on the engine's registry).
    signatures: Vec<Option<crate::types::FuncType>>,
}

/// An instance as its store keeps it.
pub(crate) struct InstanceData {
    pub module: Module,
    pub vm: Owned<VMInstance>,
    /// Store indices of the instance's memories, tables and globals (imported first).
    pub memories: Vec<u32>,
    pub tables: Vec<u32>,
    pub globals: Vec<u32>,
    pub tags: Vec<u32>,
}

impl<T: 'static> Store<T> {
    /// A new, empty store for `engine`, holding `data` for host functions.
    pub fn new(engine: &Engine, data: T) -> Store<T> {
        let id = StoreId(NEXT_STORE_ID.fetch_add(1, Ordering::Relaxed));
        Store {
            inner: Box::new(StoreInner {
                opaque: StoreOpaque {
                    id,
                    engine: engine.clone(),
                    vm_context: Owned::new(VMStoreContext {
                        fuel: 0,
                        epoch_deadline: 0,
                        store: None,
                    }),
                    instances: Vec::new(),
                    memories: Vec::new(),
                    tables: Vec::new(),
                    globals: Vec::new(),
                    host_funcs: Vec::new(),
                    tags: Vec::new(),
                    exceptions: Vec::new(),
                    signatures: Vec::new(),
                },
                data,
                limiter: None,
                epoch_callback: None,
            }),
        }
    }

    /// The engine the store belongs to.
    pub fn engine(&self) -> &Engine {
        &self.inner.opaque.engine
    }

    /// The host data.
    pub fn data(&self) -> &T {
        &self.inner.data
    }

    /// The host data, mutably.
    pub fn data_mut(&mut self) -> &mut T {
        &mut self.inner.data
    }

    /// Drops the store's wasm state and returns the host data.
    pub fn into_data(self) -> T {
        self.inner.data
    }

    /// Sets the fuel left (needs [`crate::Config::consume_fuel`]). Each function call and
    /// loop iteration of wasm running in this store, whichever instance it belongs to,
    /// consumes one unit. A store starts with no fuel.
    pub fn set_fuel(&mut self, fuel: u64) -> Result<(), Error> {
        self.inner.opaque.set_fuel(fuel)
    }

    /// The fuel left (needs [`crate::Config::consume_fuel`]).
    pub fn get_fuel(&self) -> Result<u64, Error> {
        self.inner.opaque.get_fuel()
    }

    /// Makes wasm running in this store reach its deadline once the engine's epoch has
    /// advanced `ticks_beyond_current` times from now (needs
    /// [`crate::Config::epoch_interruption`]). A store starts with a deadline of 0, so
    /// with epoch interruption enabled it must be set before running wasm.
    pub fn set_epoch_deadline(&mut self, ticks_beyond_current: u64) {
        self.inner.opaque.set_epoch_deadline(ticks_beyond_current);
    }

    /// Reaching the epoch deadline traps with [`TrapCode::Interrupt`] (the default).
    pub fn epoch_deadline_trap(&mut self) {
        self.inner.epoch_callback = None;
    }

    /// Reaching the epoch deadline calls `callback`, which returns the new deadline to keep
    /// running, or an error to stop the running wasm with.
    pub fn epoch_deadline_callback(
        &mut self,
        callback: impl FnMut(StoreContextMut<'_, T>) -> Result<UpdateDeadline, Error>
            + Send
            + Sync
            + 'static,
    ) {
        self.inner.epoch_callback = Some(Box::new(callback));
    }

    /// Installs the store's resource limiter: `limiter` gets the host data and returns the
    /// limiter inside it, asked before memories and tables are created or grow, and before
    /// instances are created.
    pub fn limiter(
        &mut self,
        limiter: impl (FnMut(&mut T) -> &mut dyn ResourceLimiter) + Send + Sync + 'static,
    ) {
        self.inner.limiter = Some(Box::new(limiter));
    }
}

impl<T: std::fmt::Debug> std::fmt::Debug for Store<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("data", &self.inner.data)
            .field("instances", &self.inner.opaque.instances.len())
            .finish_non_exhaustive()
    }
}

impl StoreOpaque {
    fn consume_fuel_enabled(&self) -> Result<(), Error> {
        if self.engine.inner.config.consume_fuel {
            Ok(())
        } else {
            Err(Error::msg(
                "fuel is not enabled in this store's engine (Config::consume_fuel)",
            ))
        }
    }

    pub fn set_fuel(&mut self, fuel: u64) -> Result<(), Error> {
        self.consume_fuel_enabled()?;
        self.vm_context.get_mut().fuel = fuel.min(i64::MAX as u64) as i64;
        Ok(())
    }

    pub fn get_fuel(&self) -> Result<u64, Error> {
        self.consume_fuel_enabled()?;
        Ok(self.vm_context.get().fuel.max(0) as u64)
    }

    pub fn set_epoch_deadline(&mut self, ticks_beyond_current: u64) {
        let deadline = self
            .engine
            .current_epoch()
            .saturating_add(ticks_beyond_current);
        self.vm_context.get_mut().epoch_deadline = deadline;
    }

    /// Panics unless `id` is this store's (for operations that cannot return an error).
    #[track_caller]
    pub fn assert_owns(&self, id: StoreId) {
        assert!(
            self.id == id,
            "a wjit handle was used with a store other than the one that created it"
        );
    }

    /// An error unless `id` is this store's.
    #[inline]
    pub fn check_owns(&self, id: StoreId) -> Result<(), Error> {
        if self.id == id {
            Ok(())
        } else {
            Err(Error::Link(
                "a handle was used with a store other than the one that created it".into(),
            ))
        }
    }

    pub fn instance(&self, instance: Instance) -> &InstanceData {
        self.assert_owns(instance.store);
        &self.instances[instance.index as usize]
    }

    /// The export `index` of instance `instance` as a handle.
    pub fn export(&self, instance: u32, index: ExportIndex) -> Extern {
        let data = &self.instances[instance as usize];
        let store = self.id;
        match index {
            ExportIndex::Func(i) => Extern::Func(Func {
                store,
                funcref: data.vm.get().canonical_funcref(i) as usize,
            }),
            ExportIndex::Global(i) => Extern::Global(Global {
                store,
                index: data.globals[i as usize],
            }),
            ExportIndex::Table(i) => Extern::Table(Table {
                store,
                index: data.tables[i as usize],
            }),
            ExportIndex::Memory(i) => Extern::Memory(Memory {
                store,
                index: data.memories[i as usize],
            }),
            ExportIndex::Tag(i) => Extern::Tag(crate::handles::Tag {
                store,
                index: data.tags[i as usize],
            }),
        }
    }

    /// The export of instance `instance` named `name`.
    pub fn export_by_name(&self, instance: u32, name: &str) -> Option<Extern> {
        let data = &self.instances[instance as usize];
        let index = data.module.inner.export_index(name)?;
        Some(self.export(instance, index))
    }

    /// The function type registered in the engine as `id` (cached in the store).
    pub fn signature(&mut self, id: u32) -> crate::types::FuncType {
        let i = id as usize;
        if let Some(Some(ty)) = self.signatures.get(i) {
            return ty.clone();
        }
        let ty = self
            .engine
            .signature(id)
            .unwrap_or_else(|| crate::types::FuncType::new([], []));
        if self.signatures.len() <= i {
            self.signatures.resize(i + 1, None);
        }
        self.signatures[i] = Some(ty.clone());
        ty
    }

    /// The store context pointer generated code of this store uses.
    pub fn vm_context_ptr(&self) -> *mut VMStoreContext {
        self.vm_context.as_ptr()
    }
}

impl<T: 'static> StoreInner<T> {
    pub(crate) fn data(&self) -> &T {
        &self.data
    }

    pub(crate) fn data_mut(&mut self) -> &mut T {
        &mut self.data
    }

    /// The store's state and the host data, borrowed apart.
    pub(crate) fn opaque_and_data_mut(&mut self) -> (&mut StoreOpaque, &mut T) {
        (&mut self.opaque, &mut self.data)
    }

    /// The limiter and the rest of the store, borrowed apart.
    pub(crate) fn limiter_and_opaque(
        &mut self,
    ) -> (Option<&mut dyn ResourceLimiter>, &mut StoreOpaque) {
        let limiter = match self.limiter.as_mut() {
            Some(f) => Some(f(&mut self.data)),
            None => None,
        };
        (limiter, &mut self.opaque)
    }

    /// This store as the type-erased pointer running code uses. Taken from `&mut self` just
    /// before entering wasm, so it is the most recent borrow of the store.
    pub(crate) fn vm_store_ptr(&mut self) -> NonNull<dyn VMStore> {
        NonNull::from(self as &mut dyn VMStore)
    }
}

impl<T: 'static> VMStore for StoreInner<T> {
    fn limiter(&mut self) -> Option<&mut dyn ResourceLimiter> {
        self.limiter_and_opaque().0
    }

    fn keep_exception(&mut self, object: Box<[u64]>) -> usize {
        self.opaque.keep_exception(object)
    }

    fn epoch_deadline_reached(&mut self) -> Result<u64, Error> {
        let Some(mut callback) = self.epoch_callback.take() else {
            return Err(TrapCode::Interrupt.into());
        };
        let result = callback(StoreContextMut(self));
        if self.epoch_callback.is_none() {
            self.epoch_callback = Some(callback);
        }
        match result? {
            UpdateDeadline::Continue(ticks) => {
                self.opaque.set_epoch_deadline(ticks);
                Ok(self.opaque.vm_context.get().epoch_deadline)
            }
        }
    }
}

/// A shared borrow of a store, as taken by operations that only read store state.
pub struct StoreContext<'a, T: 'static>(pub(crate) &'a StoreInner<T>);

/// An exclusive borrow of a store, as taken by operations that run wasm or change state.
pub struct StoreContextMut<'a, T: 'static>(pub(crate) &'a mut StoreInner<T>);

impl<T: 'static> StoreContext<'_, T> {
    /// The host data.
    pub fn data(&self) -> &T {
        &self.0.data
    }
    /// The engine.
    pub fn engine(&self) -> &Engine {
        &self.0.opaque.engine
    }
    /// The fuel left.
    pub fn get_fuel(&self) -> Result<u64, Error> {
        self.0.opaque.get_fuel()
    }
}

impl<T: 'static> StoreContextMut<'_, T> {
    /// The host data.
    pub fn data(&self) -> &T {
        &self.0.data
    }
    /// The host data, mutably.
    pub fn data_mut(&mut self) -> &mut T {
        &mut self.0.data
    }
    /// The engine.
    pub fn engine(&self) -> &Engine {
        &self.0.opaque.engine
    }
    /// The fuel left.
    pub fn get_fuel(&self) -> Result<u64, Error> {
        self.0.opaque.get_fuel()
    }
    /// Sets the fuel left.
    pub fn set_fuel(&mut self, fuel: u64) -> Result<(), Error> {
        self.0.opaque.set_fuel(fuel)
    }
    /// Sets the epoch deadline, `ticks_beyond_current` epochs from now.
    pub fn set_epoch_deadline(&mut self, ticks_beyond_current: u64) {
        self.0.opaque.set_epoch_deadline(ticks_beyond_current);
    }
}

/// Things that give shared access to a store: `&Store`, `&mut Store`, `Caller`, contexts.
pub trait AsContext {
    /// The store's host data type.
    type Data: 'static;
    /// The store, borrowed shared.
    fn as_context(&self) -> StoreContext<'_, Self::Data>;
}

/// Things that give exclusive access to a store: `&mut Store`, `&mut Caller`, contexts.
pub trait AsContextMut: AsContext {
    /// The store, borrowed exclusively.
    fn as_context_mut(&mut self) -> StoreContextMut<'_, Self::Data>;
}

impl<T: 'static> AsContext for Store<T> {
    type Data = T;
    fn as_context(&self) -> StoreContext<'_, T> {
        StoreContext(&self.inner)
    }
}
impl<T: 'static> AsContextMut for Store<T> {
    fn as_context_mut(&mut self) -> StoreContextMut<'_, T> {
        StoreContextMut(&mut self.inner)
    }
}
impl<T: 'static> AsContext for StoreContext<'_, T> {
    type Data = T;
    fn as_context(&self) -> StoreContext<'_, T> {
        StoreContext(self.0)
    }
}
impl<T: 'static> AsContext for StoreContextMut<'_, T> {
    type Data = T;
    fn as_context(&self) -> StoreContext<'_, T> {
        StoreContext(self.0)
    }
}
impl<T: 'static> AsContextMut for StoreContextMut<'_, T> {
    fn as_context_mut(&mut self) -> StoreContextMut<'_, T> {
        StoreContextMut(self.0)
    }
}
impl<C: AsContext + ?Sized> AsContext for &C {
    type Data = C::Data;
    fn as_context(&self) -> StoreContext<'_, C::Data> {
        (**self).as_context()
    }
}
impl<C: AsContext + ?Sized> AsContext for &mut C {
    type Data = C::Data;
    fn as_context(&self) -> StoreContext<'_, C::Data> {
        (**self).as_context()
    }
}
impl<C: AsContextMut + ?Sized> AsContextMut for &mut C {
    fn as_context_mut(&mut self) -> StoreContextMut<'_, C::Data> {
        (**self).as_context_mut()
    }
}

impl<'a, T: 'static> From<&'a Store<T>> for StoreContext<'a, T> {
    fn from(store: &'a Store<T>) -> Self {
        StoreContext(&store.inner)
    }
}
impl<'a, T: 'static> From<&'a mut Store<T>> for StoreContext<'a, T> {
    fn from(store: &'a mut Store<T>) -> Self {
        StoreContext(&store.inner)
    }
}
impl<'a, T: 'static> From<&'a mut Store<T>> for StoreContextMut<'a, T> {
    fn from(store: &'a mut Store<T>) -> Self {
        StoreContextMut(&mut store.inner)
    }
}
impl<'a, T: 'static> From<StoreContextMut<'a, T>> for StoreContext<'a, T> {
    fn from(ctx: StoreContextMut<'a, T>) -> Self {
        StoreContext(ctx.0)
    }
}
impl<'a, 'b: 'a, T: 'static> From<&'a StoreContext<'b, T>> for StoreContext<'a, T> {
    fn from(ctx: &'a StoreContext<'b, T>) -> Self {
        StoreContext(ctx.0)
    }
}
impl<'a, 'b: 'a, T: 'static> From<&'a mut StoreContextMut<'b, T>> for StoreContextMut<'a, T> {
    fn from(ctx: &'a mut StoreContextMut<'b, T>) -> Self {
        StoreContextMut(ctx.0)
    }
}

impl<T: 'static> StoreInner<T> {
    /// Calls the function whose funcref is at `funcref` (a funcref of this store) through
    /// the entry stub; `values` as for `vm::entry::call_raw`.
    #[inline]
    pub(crate) fn invoke(
        &mut self,
        funcref: usize,
        values: &mut [u64],
        words: usize,
    ) -> Result<(), Error> {
        let engine = &self.opaque.engine.inner;
        let (enter, max_wasm_stack) = (engine.stubs.enter, engine.config.max_wasm_stack);
        let ctx = self.opaque.vm_context_ptr();
        let store = self.vm_store_ptr();
        // SAFETY: the funcref belongs to this store (callers check the handle's store id)
        // and `store` was just derived from our exclusive borrow, which is not used again
        // until the call returns.
        unsafe {
            crate::vm::entry::call_raw(
                enter,
                store,
                ctx,
                funcref as *const crate::vm::vmctx::VMFuncRef,
                values,
                words,
                max_wasm_stack,
            )
        }
    }
}
