//! The engines under comparison behind one small interface: compile a module eagerly,
//! or compile and instantiate it and call its `run(n: i32) -> i32` export.

use anyhow::{bail, Result};
use std::any::Any;

#[cfg(feature = "wasmer")]
mod wasmer;
mod wasmi;
mod wasmtime;
mod wjit;

/// A compiled module, kept only so that it is dropped outside the timed region.
pub type Compiled = Box<dyn Any>;

/// One engine with one configuration.
pub trait Peer {
    /// The engine's column title, e.g. `wasmtime-winch`.
    fn name(&self) -> &'static str;
    /// Validates and compiles `wasm` completely, on the calling thread only.
    fn compile(&self, wasm: &[u8]) -> Result<Compiled>;
    /// Compiles `wasm` as [`Peer::compile`] does, instantiates it without imports and
    /// returns its `run` export.
    fn load(&self, wasm: &[u8]) -> Result<Box<dyn Kernel>>;
}

/// An instance's `run(n: i32) -> i32` export, with the store it lives in.
pub trait Kernel {
    /// Calls `run(n)` and returns its checksum.
    fn run(&mut self, n: i32) -> Result<i32>;
}

/// The engine names in table order: the baseline, wasmtime-cranelift, comes first.
pub const ALL: &[&str] = &[
    "wasmtime-cranelift",
    "wasmtime-winch",
    "wasmer-singlepass",
    "wasmi",
    "wjit",
];

/// The engine every ratio is relative to.
pub const BASELINE: &str = "wasmtime-cranelift";

/// The engines run when none are named: all of [`ALL`] that this build includes.
pub fn default_names() -> Vec<String> {
    ALL.iter()
        .filter(|name| cfg!(feature = "wasmer") || **name != "wasmer-singlepass")
        .map(|name| name.to_string())
        .collect()
}

/// Creates the engines called `names`, in [`ALL`] order whatever the order of `names`.
pub fn create(names: &[String]) -> Result<Vec<Box<dyn Peer>>> {
    for name in names {
        if !ALL.contains(&name.as_str()) {
            bail!("unknown engine `{name}`; known: {}", ALL.join(", "));
        }
    }
    let mut peers = Vec::new();
    for &name in ALL.iter().filter(|n| names.iter().any(|m| m == *n)) {
        peers.push(create_one(name)?);
    }
    Ok(peers)
}

fn create_one(name: &'static str) -> Result<Box<dyn Peer>> {
    Ok(match name {
        "wasmtime-cranelift" => Box::new(wasmtime::Wasmtime::new(
            ::wasmtime::Strategy::Cranelift,
            name,
        )?),
        "wasmtime-winch" => Box::new(wasmtime::Wasmtime::new(::wasmtime::Strategy::Winch, name)?),
        "wasmi" => Box::new(wasmi::Wasmi::new()),
        "wjit" => Box::new(wjit::Wjit::new()?),
        #[cfg(feature = "wasmer")]
        "wasmer-singlepass" => Box::new(wasmer::WasmerSinglepass::new()),
        #[cfg(not(feature = "wasmer"))]
        "wasmer-singlepass" => bail!("wasmer-singlepass needs a build with `--features wasmer`"),
        _ => unreachable!("checked against ALL"),
    })
}
