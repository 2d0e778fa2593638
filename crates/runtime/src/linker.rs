//! `Linker`: resolves a module's imports by name.

use crate::engine::Engine;
use crate::func::{Caller, Func, IntoFunc};
use crate::instance::{Extern, Instance};
use crate::module::Module;
use crate::types::{FuncType, Val};
use crate::Error;
use std::collections::HashMap;

/// Named definitions (host functions, memories, globals, tables, other instances' exports)
/// used to instantiate modules.
#[derive(Clone)]
pub struct Linker {
    engine: Engine,
    items: HashMap<(String, String), Extern>,
}

impl std::fmt::Debug for Linker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Linker")
            .field("items", &self.items.len())
            .finish()
    }
}

impl Linker {
    /// An empty linker.
    pub fn new(engine: &Engine) -> Linker {
        Linker {
            engine: engine.clone(),
            items: HashMap::new(),
        }
    }

    /// Defines `module::name` as a host function from a typed Rust closure
    /// (see [`IntoFunc`]).
    pub fn func_wrap<Params, Results>(
        &mut self,
        module: &str,
        name: &str,
        f: impl IntoFunc<Params, Results>,
    ) -> Result<&mut Self, Error> {
        let func = Func::wrap(&self.engine, f)?;
        self.define(module, name, func)
    }

    /// Defines `module::name` as a host function with a dynamic signature.
    pub fn func_new(
        &mut self,
        module: &str,
        name: &str,
        ty: FuncType,
        f: impl Fn(Caller<'_>, &[Val], &mut [Val]) -> Result<(), Error> + Send + Sync + 'static,
    ) -> Result<&mut Self, Error> {
        let func = Func::new(&self.engine, ty, f)?;
        self.define(module, name, func)
    }

    /// Defines `module::name` (replacing an earlier definition).
    pub fn define(
        &mut self,
        module: &str,
        name: &str,
        item: impl Into<Extern>,
    ) -> Result<&mut Self, Error> {
        self.items
            .insert((module.to_string(), name.to_string()), item.into());
        Ok(self)
    }

    /// Defines every export of `instance` under the module name `module`.
    pub fn instance(&mut self, module: &str, instance: &Instance) -> Result<&mut Self, Error> {
        for (name, item) in instance.exports() {
            self.items
                .insert((module.to_string(), name.to_string()), item);
        }
        Ok(self)
    }

    /// The definition of `module::name`, if any.
    pub fn get(&self, module: &str, name: &str) -> Option<Extern> {
        self.items
            .get(&(module.to_string(), name.to_string()))
            .cloned()
    }

    /// Instantiates `module`, resolving each import by its module and field name.
    pub fn instantiate(&self, module: &Module) -> Result<Instance, Error> {
        if !module.engine().same(&self.engine) {
            return Err(Error::Link(
                "the module was compiled with a different engine".into(),
            ));
        }
        let mut imports = Vec::new();
        for imp in module.imports() {
            let item = self
                .items
                .get(&(imp.module().to_string(), imp.name().to_string()))
                .ok_or_else(|| {
                    Error::Link(format!(
                        "unknown import: `{}::{}` has not been defined",
                        imp.module(),
                        imp.name()
                    ))
                })?;
            imports.push(item.clone());
        }
        Instance::new(module, &imports)
    }
}
