//! `Config` and `Engine`: compilation settings and the state shared by all modules.

use crate::types::FuncType;
use crate::vm;
use crate::Error;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// Settings for an [`Engine`].
#[derive(Debug, Clone)]
pub struct Config {
    pub(crate) max_wasm_stack: usize,
    pub(crate) max_memory_pages: u64,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            max_wasm_stack: 1 << 20,
            max_memory_pages: 1 << 16,
        }
    }
}

impl Config {
    /// The default configuration.
    pub fn new() -> Config {
        Config::default()
    }
    /// The most stack wasm code may use, in bytes (default 1 MiB). Deeper recursion traps
    /// with [`crate::TrapCode::StackOverflow`].
    pub fn max_wasm_stack(&mut self, bytes: usize) -> &mut Self {
        self.max_wasm_stack = bytes;
        self
    }
    /// The most 64 KiB pages any linear memory may grow to (default 65536, i.e. 4 GiB).
    pub fn max_memory_pages(&mut self, pages: u64) -> &mut Self {
        self.max_memory_pages = pages.min(1 << 16);
        self
    }
}

pub(crate) struct EngineInner {
    pub config: Config,
    /// Canonical signature ids: equal ids mean equal function types. 0 is never used.
    signatures: Mutex<HashMap<FuncType, u32>>,
}

/// The compilation environment shared by modules and instances. Cheap to clone.
#[derive(Clone)]
pub struct Engine {
    pub(crate) inner: Arc<EngineInner>,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("config", &self.inner.config)
            .finish()
    }
}

impl Default for Engine {
    fn default() -> Engine {
        Engine::new(&Config::default()).expect("the default engine configuration is valid")
    }
}

impl Engine {
    /// Creates an engine: checks the CPU and, once per process, assembles the host stubs and
    /// installs the trap signal handler.
    pub fn new(config: &Config) -> Result<Engine, Error> {
        #[cfg(target_arch = "x86_64")]
        if !std::is_x86_feature_detected!("popcnt") {
            return Err(Error::Unsupported("x86-64 CPUs without POPCNT".into()));
        }
        #[cfg(target_arch = "x86_64")]
        if !std::is_x86_feature_detected!("sse4.1") {
            return Err(Error::Unsupported("x86-64 CPUs without SSE4.1".into()));
        }
        vm::stubs()?;
        Ok(Engine {
            inner: Arc::new(EngineInner {
                config: config.clone(),
                signatures: Mutex::new(HashMap::new()),
            }),
        })
    }

    /// The canonical id of a signature (registering it on first use).
    pub(crate) fn signature_id(&self, ty: &FuncType) -> u32 {
        let mut sigs = self
            .inner
            .signatures
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        let next = sigs.len() as u32 + 1;
        *sigs.entry(ty.clone()).or_insert(next)
    }

    pub(crate) fn same(&self, other: &Engine) -> bool {
        Arc::ptr_eq(&self.inner, &other.inner)
    }
}
