//! wasmtime with one compilation strategy (Cranelift or Winch), parallel compilation off.

use super::{Compiled, Kernel, Peer};
use anyhow::Result;
use wasmtime::{Config, Engine, Instance, Module, Store, Strategy, TypedFunc};

/// wasmtime with one [`Strategy`].
pub struct Wasmtime {
    engine: Engine,
    name: &'static str,
}

impl Wasmtime {
    /// An engine using `strategy` on the calling thread only, reported as `name`.
    pub fn new(strategy: Strategy, name: &'static str) -> Result<Wasmtime> {
        let mut config = Config::new();
        config.strategy(strategy).parallel_compilation(false);
        Ok(Wasmtime {
            engine: Engine::new(&config)?,
            name,
        })
    }
}

struct WasmtimeKernel {
    store: Store<()>,
    run: TypedFunc<i32, i32>,
}

impl Peer for Wasmtime {
    fn name(&self) -> &'static str {
        self.name
    }

    fn compile(&self, wasm: &[u8]) -> Result<Compiled> {
        Ok(Box::new(Module::new(&self.engine, wasm)?))
    }

    fn load(&self, wasm: &[u8]) -> Result<Box<dyn Kernel>> {
        let module = Module::new(&self.engine, wasm)?;
        let mut store = Store::new(&self.engine, ());
        let instance = Instance::new(&mut store, &module, &[])?;
        let run = instance.get_typed_func::<i32, i32>(&mut store, "run")?;
        Ok(Box::new(WasmtimeKernel { store, run }))
    }
}

impl Kernel for WasmtimeKernel {
    fn run(&mut self, n: i32) -> Result<i32> {
        Ok(self.run.call(&mut self.store, n)?)
    }
}
