//! wjit with eager, single-threaded compilation.

use super::{Compiled, Kernel, Peer};
use anyhow::Result;
use wjit::{Config, Engine, Instance, Module, Store, TypedFunc};

/// wjit compiling every function in `Module::new`, on the calling thread.
pub struct Wjit {
    engine: Engine,
}

impl Wjit {
    /// An engine with lazy and parallel compilation off.
    pub fn new() -> Result<Wjit> {
        let mut config = Config::new();
        config.lazy_compilation(false).parallel_compilation(false);
        Ok(Wjit {
            engine: Engine::new(&config)?,
        })
    }
}

struct WjitKernel {
    store: Store<()>,
    run: TypedFunc<i32, i32>,
}

impl Peer for Wjit {
    fn name(&self) -> &'static str {
        "wjit"
    }

    fn compile(&self, wasm: &[u8]) -> Result<Compiled> {
        Ok(Box::new(Module::new(&self.engine, wasm)?))
    }

    fn load(&self, wasm: &[u8]) -> Result<Box<dyn Kernel>> {
        let module = Module::new(&self.engine, wasm)?;
        let mut store = Store::new(&self.engine, ());
        let instance = Instance::new(&mut store, &module, &[])?;
        let run = instance.get_typed_func::<i32, i32>(&store, "run")?;
        Ok(Box::new(WjitKernel { store, run }))
    }
}

impl Kernel for WjitKernel {
    fn run(&mut self, n: i32) -> Result<i32> {
        Ok(self.run.call(&mut self.store, n)?)
    }
}
