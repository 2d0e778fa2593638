//! `Module`: a validated (and, in eager mode, compiled) wasm module, ready to be
//! instantiated in any number of stores.
//!
//! Loading runs in three steps, one file each: `parse` (sections), `validate` (every
//! function body, on all cores for big modules) and `schedule` (eager compilation or lazy
//! jump slots).

mod listing;
mod parse;
mod progress;
mod schedule;
mod serialize;
mod validate;

pub use listing::{CodeListing, FunctionCode, OperatorCode, Target};
pub use serialize::Precompiled;

pub(crate) use parse::{ConstInit, ConstOp, DataSegment, ElemSegment, ExportIndex, Import};

use crate::engine::Engine;
use crate::types::{ExternType, FuncType, GlobalType, MemoryType, TableType};
use crate::vm::instance::ModuleRuntime;
use crate::Error;
use progress::Progress;
use schedule::ModuleFunctions;
use std::sync::Arc;
use std::time::Instant;
use wjit_compiler::ModuleInfo;

pub(crate) struct ModuleInner {
    pub engine: Engine,
    pub info: ModuleInfo,
    /// Our view of every type index.
    pub types: Vec<FuncType>,
    pub imports: Vec<Import>,
    pub exports: Vec<(String, ExportIndex)>,
    pub global_types: Vec<GlobalType>,
    pub global_inits: Vec<ConstInit>,
    pub table_types: Vec<TableType>,
    /// The initializer of each defined table (`None`: null).
    pub table_inits: Vec<Option<ConstInit>>,
    pub memory_types: Vec<MemoryType>,
    /// Tag types (imported first).
    pub tag_types: Vec<crate::types::TagType>,
    pub elems: Vec<ElemSegment>,
    pub data: Vec<DataSegment>,
    pub start: Option<u32>,
    /// The defined functions' code.
    funcs: ModuleFunctions,
}

/// A compiled WebAssembly module. Cheap to clone; `Send + Sync` (all of it is immutable
/// after `Module::new` except the lazily compiled code, which is behind locks), so many
/// stores on many threads can instantiate one module at once.
#[derive(Clone)]
pub struct Module {
    pub(crate) inner: Arc<ModuleInner>,
}

impl std::fmt::Debug for Module {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Module")
            .field("imports", &self.inner.imports.len())
            .field("exports", &self.inner.exports.len())
            .finish()
    }
}

/// An import of a [`Module`]: module name, field name and type.
#[derive(Debug, Clone)]
pub struct ImportType<'a> {
    module: &'a str,
    name: &'a str,
    ty: &'a ExternType,
}

impl<'a> ImportType<'a> {
    /// The module name.
    pub fn module(&self) -> &'a str {
        self.module
    }
    /// The field name.
    pub fn name(&self) -> &'a str {
        self.name
    }
    /// The expected type.
    pub fn ty(&self) -> ExternType {
        self.ty.clone()
    }
}

/// An export of a [`Module`].
#[derive(Debug, Clone)]
pub struct ExportType<'a> {
    name: &'a str,
    ty: ExternType,
}

impl<'a> ExportType<'a> {
    /// The export name.
    pub fn name(&self) -> &'a str {
        self.name
    }
    /// The type of the exported item.
    pub fn ty(&self) -> ExternType {
        self.ty.clone()
    }
}

impl Module {
    /// Validates and compiles a module from binary wasm or the text format.
    pub fn new(engine: &Engine, bytes: impl AsRef<[u8]>) -> Result<Module, Error> {
        Self::load(engine, bytes.as_ref(), None)
    }

    /// [`Module::new`], calling `progress(done, total)` as function bodies are done:
    /// compiled (eager compilation) or validated (lazy compilation, where first calls
    /// compile). `done` counts up by one from 1 to `total` (the number of defined
    /// functions); the calls come from the threads doing the work, one at a time, so
    /// `progress` should return quickly. Meant for progress bars on big modules.
    pub fn new_with_progress(
        engine: &Engine,
        bytes: impl AsRef<[u8]>,
        progress: &(dyn Fn(usize, usize) + Sync),
    ) -> Result<Module, Error> {
        Self::load(engine, bytes.as_ref(), Some(progress))
    }

    fn load(
        engine: &Engine,
        bytes: &[u8],
        progress: Option<&(dyn Fn(usize, usize) + Sync)>,
    ) -> Result<Module, Error> {
        let binary = to_binary(bytes)?;
        Self::from_binary(engine, &binary, progress)
    }

    /// Reads and compiles a `.wasm` or `.wat` file.
    pub fn from_file(engine: &Engine, path: impl AsRef<std::path::Path>) -> Result<Module, Error> {
        let path = path.as_ref();
        let bytes = std::fs::read(path).map_err(|e| {
            Error::Io(std::io::Error::new(
                e.kind(),
                format!("{}: {e}", path.display()),
            ))
        })?;
        Module::new(engine, bytes).map_err(|e| match e {
            Error::Compile(m) => Error::Compile(format!("{}: {m}", path.display())),
            Error::Unsupported(m) => Error::Unsupported(format!("{}: {m}", path.display())),
            other => other,
        })
    }

    fn from_binary(
        engine: &Engine,
        binary: &[u8],
        progress: Option<&(dyn Fn(usize, usize) + Sync)>,
    ) -> Result<Module, Error> {
        let started = Instant::now();
        // One copy of the binary, shared by the data segments and lazy compilation.
        let binary: Arc<[u8]> = Arc::from(binary);
        let mut parsed = parse_for(engine, &binary)?;
        tracing::debug!(
            wasm_bytes = binary.len(),
            functions = parsed.bodies.len(),
            time = ?started.elapsed(),
            "module parsed"
        );
        let config = &engine.inner.config;
        let names = Arc::new(std::mem::take(&mut parsed.names));
        let bodies = std::mem::take(&mut parsed.bodies);
        let progress = Progress::new(bodies.len(), progress);
        let profiler = engine.inner.profiler;
        let parallel = config.parallel_compilation;
        let info = &parsed.info;
        let funcs = if config.lazy_compilation {
            let validating = Instant::now();
            validate::validate_bodies(info, &binary, &bodies, parallel, &progress)?;
            tracing::debug!(
                functions = bodies.len(),
                time = ?validating.elapsed(),
                "module validated (lazy compilation)"
            );
            ModuleFunctions::lazy(info, binary, bodies, names, profiler)?
        } else {
            ModuleFunctions::eager(info, binary, bodies, names, parallel, &progress, profiler)?
        };
        tracing::debug!(time = ?started.elapsed(), "module loaded");
        Ok(Module::assemble(engine, parsed, funcs))
    }

    /// The module made of parsed sections and placed (or schedulable) code.
    fn assemble(engine: &Engine, parsed: parse::ParsedModule, funcs: ModuleFunctions) -> Module {
        Module {
            inner: Arc::new(ModuleInner {
                engine: engine.clone(),
                info: parsed.info,
                types: parsed.types,
                imports: parsed.imports,
                exports: parsed.exports,
                global_types: parsed.global_types,
                global_inits: parsed.global_inits,
                table_types: parsed.table_types,
                table_inits: parsed.table_inits,
                memory_types: parsed.memory_types,
                tag_types: parsed.tag_types,
                elems: parsed.elems,
                data: parsed.data,
                start: parsed.start,
                funcs,
            }),
        }
    }

    /// How many of the module's functions have been compiled so far (all of them in eager
    /// mode).
    pub fn compiled_functions(&self) -> usize {
        self.inner.funcs.compiled_count()
    }

    /// The engine this module was compiled for.
    pub fn engine(&self) -> &Engine {
        &self.inner.engine
    }

    /// The imports, in the order instantiation expects them.
    pub fn imports(&self) -> impl Iterator<Item = ImportType<'_>> {
        self.inner.imports.iter().map(|i| ImportType {
            module: &i.module,
            name: &i.name,
            ty: &i.ty,
        })
    }

    /// The exports.
    pub fn exports(&self) -> impl Iterator<Item = ExportType<'_>> {
        self.inner.exports.iter().map(|(name, idx)| ExportType {
            name,
            ty: self.inner.export_type(*idx),
        })
    }
}

/// Parses `binary`'s sections for `engine`, with the code-generation settings of `engine`
/// in the module info.
/// Parses `binary` (shared: data segments keep it) with `engine`'s settings.
fn parse_for(engine: &Engine, binary: &Arc<[u8]>) -> Result<parse::ParsedModule, Error> {
    let mut parsed = parse::parse(engine, binary)?;
    let config = &engine.inner.config;
    parsed.info.epoch_interruption = config.epoch_interruption;
    parsed.info.tail_call = config.wasm_tail_call;
    parsed.info.consume_fuel = config.consume_fuel;
    parsed.info.native_float_rounding = engine.native_float_rounding();
    parsed.info.x64_avx = engine.x64_avx();
    parsed.info.multi_memory = config.wasm_multi_memory;
    Ok(parsed)
}

/// `bytes` as a wasm binary (text is converted).
fn to_binary(bytes: &[u8]) -> Result<std::borrow::Cow<'_, [u8]>, Error> {
    if bytes.starts_with(b"\0asm") {
        return Ok(std::borrow::Cow::Borrowed(bytes));
    }
    if serialize::is_precompiled(bytes) {
        return Err(Error::Compile(
            "this is a precompiled module: load it with `Module::deserialize`".into(),
        ));
    }
    let binary = wat::parse_bytes(bytes).map_err(|e| Error::Compile(e.to_string()))?;
    Ok(std::borrow::Cow::Owned(binary.into_owned()))
}

impl ModuleInner {
    /// The current entry address of defined function `index`: its code, or its jump slot.
    pub(crate) fn entry(&self, index: u32) -> usize {
        self.funcs.entry(index - self.info.num_imported_functions)
    }

    /// The export named `name`.
    pub(crate) fn export_index(&self, name: &str) -> Option<ExportIndex> {
        self.exports
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, index)| *index)
    }

    pub(crate) fn func_type(&self, index: u32) -> &FuncType {
        &self.types[self.info.functions[index as usize] as usize]
    }

    pub(crate) fn export_type(&self, idx: ExportIndex) -> ExternType {
        match idx {
            ExportIndex::Func(i) => ExternType::Func(self.func_type(i).clone()),
            ExportIndex::Table(i) => ExternType::Table(self.table_types[i as usize]),
            ExportIndex::Memory(i) => ExternType::Memory(self.memory_types[i as usize]),
            ExportIndex::Global(i) => ExternType::Global(self.global_types[i as usize]),
            ExportIndex::Tag(i) => ExternType::Tag(self.tag_types[i as usize].clone()),
        }
    }
}

impl ModuleRuntime for ModuleInner {
    fn compile_lazily(&self, func_index: u32) -> Result<usize, Error> {
        self.funcs.compile_lazily(&self.info, func_index)
    }
}
