//! `Linker<T>`: named definitions (host functions, store items, other instances' exports)
//! that resolve a module's imports by name. The top floor: it only uses the public API.

use crate::caller::Caller;
use crate::engine::Engine;
use crate::func::{HostFunc, IntoFunc};
use crate::handles::{Extern, Instance};
use crate::module::Module;
use crate::store::{AsContext, AsContextMut};
use crate::types::FuncType;
use crate::values::Val;
use crate::Error;
use std::collections::HashMap;

/// One definition: an item of a store, or a host function not bound to any store yet
/// (bound to each store the linker instantiates in).
enum Definition<T: 'static> {
    Extern(Extern),
    HostFunc(HostFunc<T>),
}

impl<T: 'static> Clone for Definition<T> {
    fn clone(&self) -> Self {
        match self {
            Definition::Extern(e) => Definition::Extern(*e),
            Definition::HostFunc(f) => Definition::HostFunc(f.clone()),
        }
    }
}

/// Named definitions used to instantiate modules in stores with host data `T`, as in
/// wasmtime. Host functions defined with [`Linker::func_wrap`] and [`Linker::func_new`]
/// work in every store; items given to [`Linker::define`] and [`Linker::instance`] belong
/// to one store and can only be used with it.
pub struct Linker<T: 'static> {
    engine: Engine,
    items: HashMap<(String, String), Definition<T>>,
    allow_shadowing: bool,
}

impl<T: 'static> Clone for Linker<T> {
    fn clone(&self) -> Self {
        Linker {
            engine: self.engine.clone(),
            items: self.items.clone(),
            allow_shadowing: self.allow_shadowing,
        }
    }
}

impl<T: 'static> std::fmt::Debug for Linker<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Linker")
            .field("items", &self.items.len())
            .finish()
    }
}

impl<T: 'static> Linker<T> {
    /// An empty linker.
    pub fn new(engine: &Engine) -> Linker<T> {
        Linker {
            engine: engine.clone(),
            items: HashMap::new(),
            allow_shadowing: false,
        }
    }

    /// The engine.
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// Whether defining a name that is already defined replaces it (`true`) or is an error
    /// (`false`, the default).
    pub fn allow_shadowing(&mut self, allow: bool) -> &mut Self {
        self.allow_shadowing = allow;
        self
    }

    fn insert(&mut self, module: &str, name: &str, def: Definition<T>) -> Result<(), Error> {
        let key = (module.to_string(), name.to_string());
        if !self.allow_shadowing && self.items.contains_key(&key) {
            return Err(Error::Link(format!(
                "`{module}::{name}` is already defined (see Linker::allow_shadowing)"
            )));
        }
        self.items.insert(key, def);
        Ok(())
    }

    /// Defines `module::name` as a host function from a typed Rust closure (see
    /// [`IntoFunc`]); it can be used in every store.
    pub fn func_wrap<Params, Results>(
        &mut self,
        module: &str,
        name: &str,
        f: impl IntoFunc<T, Params, Results>,
    ) -> Result<&mut Self, Error> {
        self.insert(module, name, Definition::HostFunc(f.into_host_func()))?;
        Ok(self)
    }

    /// Defines `module::name` as a host function with a dynamic signature.
    pub fn func_new(
        &mut self,
        module: &str,
        name: &str,
        ty: FuncType,
        f: impl Fn(Caller<'_, T>, &[Val], &mut [Val]) -> Result<(), Error> + Send + Sync + 'static,
    ) -> Result<&mut Self, Error> {
        self.insert(module, name, Definition::HostFunc(HostFunc::new(ty, f)))?;
        Ok(self)
    }

    /// Defines `module::name` as `item`, an item of `store`.
    pub fn define(
        &mut self,
        store: impl AsContext<Data = T>,
        module: &str,
        name: &str,
        item: impl Into<Extern>,
    ) -> Result<&mut Self, Error> {
        let item = item.into();
        store.as_context().0.opaque.check_owns(item.store())?;
        self.insert(module, name, Definition::Extern(item))?;
        Ok(self)
    }

    /// Defines every export of `instance` (of `store`) under the module name `module`.
    pub fn instance(
        &mut self,
        store: impl AsContext<Data = T>,
        module: &str,
        instance: Instance,
    ) -> Result<&mut Self, Error> {
        let store = store.as_context();
        store.0.opaque.check_owns(instance.store)?;
        for (name, item) in instance.exports(&store) {
            self.insert(module, &name, Definition::Extern(item))?;
        }
        Ok(self)
    }

    /// The definition of `module::name` as an item of `store` (binding a host function to
    /// the store if needed).
    pub fn get(
        &self,
        mut store: impl AsContextMut<Data = T>,
        module: &str,
        name: &str,
    ) -> Option<Extern> {
        let def = self.items.get(&(module.to_string(), name.to_string()))?;
        Some(match def {
            Definition::Extern(e) => *e,
            Definition::HostFunc(f) => Extern::Func(f.bind(store.as_context_mut().0)),
        })
    }

    /// Instantiates `module` in `store`, resolving each import by its module and field
    /// name.
    pub fn instantiate(
        &self,
        mut store: impl AsContextMut<Data = T>,
        module: &Module,
    ) -> Result<Instance, Error> {
        let store = store.as_context_mut().0;
        if !module.engine().same(&self.engine) {
            return Err(Error::Link(
                "the module was compiled with a different engine than the linker's".into(),
            ));
        }
        let mut imports = Vec::with_capacity(module.inner.imports.len());
        for imp in module.imports() {
            let def = self
                .items
                .get(&(imp.module().to_string(), imp.name().to_string()))
                .ok_or_else(|| {
                    Error::Link(format!(
                        "unknown import: `{}::{}` has not been defined",
                        imp.module(),
                        imp.name()
                    ))
                })?;
            imports.push(match def {
                Definition::Extern(e) => *e,
                Definition::HostFunc(f) => Extern::Func(f.bind(store)),
            });
        }
        Instance::new_in(store, module, &imports)
    }
}
