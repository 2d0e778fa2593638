//! wasmer with its singlepass compiler on one thread (only with the `wasmer` feature).

use super::{Compiled, Kernel, Peer};
use anyhow::Result;
use std::num::NonZeroUsize;
use wasmer::sys::Singlepass;
use wasmer::{imports, Engine, Instance, Module, Store, TypedFunction};

/// wasmer singlepass with `num_threads = 1`.
pub struct WasmerSinglepass {
    engine: Engine,
}

impl WasmerSinglepass {
    /// An engine compiling with singlepass on the calling thread.
    pub fn new() -> WasmerSinglepass {
        let mut compiler = Singlepass::new();
        compiler.num_threads = NonZeroUsize::MIN;
        WasmerSinglepass {
            engine: compiler.into(),
        }
    }
}

struct WasmerKernel {
    store: Store,
    run: TypedFunction<i32, i32>,
}

impl Peer for WasmerSinglepass {
    fn name(&self) -> &'static str {
        "wasmer-singlepass"
    }

    fn compile(&self, wasm: &[u8]) -> Result<Compiled> {
        Ok(Box::new(Module::new(&self.engine, wasm)?))
    }

    fn load(&self, wasm: &[u8]) -> Result<Box<dyn Kernel>> {
        let mut store = Store::new(self.engine.clone());
        let module = Module::new(&store, wasm)?;
        let instance = Instance::new(&mut store, &module, &imports! {})?;
        let run = instance
            .exports
            .get_typed_function::<i32, i32>(&store, "run")?;
        Ok(Box::new(WasmerKernel { store, run }))
    }
}

impl Kernel for WasmerKernel {
    fn run(&mut self, n: i32) -> Result<i32> {
        Ok(self.run.call(&mut self.store, n)?)
    }
}
