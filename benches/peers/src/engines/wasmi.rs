//! wasmi translating every function to its bytecode eagerly (with validation).

use super::{Compiled, Kernel, Peer};
use anyhow::Result;
use wasmi::{CompilationMode, Config, Engine, Instance, Module, Store, TypedFunc};

/// wasmi in [`CompilationMode::Eager`].
pub struct Wasmi {
    engine: Engine,
}

impl Wasmi {
    /// An engine translating whole modules in `Module::new`.
    pub fn new() -> Wasmi {
        let mut config = Config::default();
        config.compilation_mode(CompilationMode::Eager);
        Wasmi {
            engine: Engine::new(&config),
        }
    }
}

struct WasmiKernel {
    store: Store<()>,
    run: TypedFunc<i32, i32>,
}

impl Peer for Wasmi {
    fn name(&self) -> &'static str {
        "wasmi"
    }

    fn compile(&self, wasm: &[u8]) -> Result<Compiled> {
        Ok(Box::new(Module::new(&self.engine, wasm)?))
    }

    fn load(&self, wasm: &[u8]) -> Result<Box<dyn Kernel>> {
        let module = Module::new(&self.engine, wasm)?;
        let mut store = Store::new(&self.engine, ());
        let instance = Instance::new(&mut store, &module, &[])?;
        let run = instance.get_typed_func::<i32, i32>(&store, "run")?;
        Ok(Box::new(WasmiKernel { store, run }))
    }
}

impl Kernel for WasmiKernel {
    fn run(&mut self, n: i32) -> Result<i32> {
        Ok(self.run.call(&mut self.store, n)?)
    }
}
