//! `Instance`: a module with its own memories, tables, globals and vmctx.

use crate::externals::{Global, Memory, Table};
use crate::func::{Func, WasmParams, WasmResults};
use crate::module::{ConstInit, ExportIndex, Module};
use crate::types::{ExternType, Val};
use crate::vm::{self, VMFuncRef, VMCTX_INSTANCE};
use crate::{Error, Trap, TrapCode, TypedFunc};
use std::sync::{Arc, Mutex};
use wjit_compiler::vmctx::VMOffsets;

/// An import or export: a function, global, table or memory.
#[derive(Debug, Clone)]
pub enum Extern {
    /// A function.
    Func(Func),
    /// A global.
    Global(Global),
    /// A table.
    Table(Table),
    /// A memory.
    Memory(Memory),
}

impl From<Func> for Extern {
    fn from(f: Func) -> Extern {
        Extern::Func(f)
    }
}
impl From<Global> for Extern {
    fn from(g: Global) -> Extern {
        Extern::Global(g)
    }
}
impl From<Table> for Extern {
    fn from(t: Table) -> Extern {
        Extern::Table(t)
    }
}
impl From<Memory> for Extern {
    fn from(m: Memory) -> Extern {
        Extern::Memory(m)
    }
}

impl Extern {
    /// The type of the item.
    pub fn ty(&self) -> ExternType {
        match self {
            Extern::Func(f) => ExternType::Func(f.ty()),
            Extern::Global(g) => ExternType::Global(g.ty()),
            Extern::Table(t) => ExternType::Table(t.ty()),
            Extern::Memory(m) => ExternType::Memory(m.ty()),
        }
    }
}

/// The vmctx allocation: 8-byte words at a stable address.
struct Vmctx {
    ptr: *mut u64,
    words: usize,
}

impl Vmctx {
    fn new(bytes: usize) -> Vmctx {
        let words = bytes.div_ceil(8).max(8);
        let v = vec![0u64; words].into_boxed_slice();
        Vmctx {
            ptr: Box::into_raw(v) as *mut u64,
            words,
        }
    }
    fn addr(&self) -> usize {
        self.ptr as usize
    }
    /// Reads the word at byte offset `offset` as a signed value.
    fn get(&self, offset: i32) -> i64 {
        let i = offset as usize / 8;
        assert!(i < self.words);
        // SAFETY: in bounds of our allocation.
        unsafe { std::ptr::read_volatile(self.ptr.add(i)) as i64 }
    }

    /// Writes the word at byte offset `offset`.
    fn set(&self, offset: i32, value: u64) {
        let i = offset as usize / 8;
        assert!(i < self.words);
        // SAFETY: in bounds of our allocation; generated code only runs after setup.
        unsafe { *self.ptr.add(i) = value };
    }
}

impl Drop for Vmctx {
    fn drop(&mut self) {
        // SAFETY: `ptr` came from `Box::into_raw` of a slice of `words` words.
        unsafe {
            drop(Box::from_raw(std::ptr::slice_from_raw_parts_mut(
                self.ptr, self.words,
            )))
        };
    }
}

pub(crate) struct InstanceInner {
    pub module: Arc<crate::module::ModuleInner>,
    vmctx: Vmctx,
    pub memories: Vec<Memory>,
    pub globals: Vec<Global>,
    pub tables: Vec<Table>,
    /// Imported functions, kept alive for the funcrefs copied into the vmctx.
    pub imported_funcs: Vec<Func>,
    /// Which element segments have been dropped (`elem.drop`, or applied at instantiation).
    pub dropped_elems: Mutex<Vec<bool>>,
    /// Which data segments have been dropped.
    pub dropped_data: Mutex<Vec<bool>>,
}

// SAFETY: all shared state is behind Arcs of Send + Sync handles; the vmctx is written only
// during instantiation and by generated code of the thread running the instance.
unsafe impl Send for InstanceInner {}
// SAFETY: as above.
unsafe impl Sync for InstanceInner {}

impl InstanceInner {
    /// The instance owning `vmctx`.
    ///
    /// # Safety
    /// `vmctx` must be 0 or the context of a live instance.
    pub(crate) unsafe fn from_vmctx<'a>(vmctx: usize) -> Option<&'a InstanceInner> {
        if vmctx == 0 {
            return None;
        }
        // SAFETY: per the contract, the back pointer was written at instantiation.
        let p = unsafe { *((vmctx + VMCTX_INSTANCE) as *const usize) } as *const InstanceInner;
        // SAFETY: the instance outlives its running code.
        unsafe { p.as_ref() }
    }

    /// A new strong reference to the instance owning `vmctx`.
    ///
    /// # Safety
    /// As for [`InstanceInner::from_vmctx`].
    pub(crate) unsafe fn arc_from_vmctx(vmctx: usize) -> Option<Arc<InstanceInner>> {
        // SAFETY: per the contract.
        let inner = unsafe { Self::from_vmctx(vmctx) }?;
        let p = inner as *const InstanceInner;
        // SAFETY: `p` is the pointer of a live `Arc<InstanceInner>` (stored at instantiation
        // from `Arc::as_ptr`), so taking one more strong count is sound.
        unsafe {
            Arc::increment_strong_count(p);
            Some(Arc::from_raw(p))
        }
    }

    fn offsets(&self) -> &VMOffsets {
        &self.module.info.offsets
    }

    /// This instance's `VMFuncRef` entry of function `index` (for an import: a copy).
    pub(crate) fn funcref_ptr(&self, index: u32) -> *const VMFuncRef {
        (self.vmctx.addr() + self.offsets().funcref(index) as usize) as *const VMFuncRef
    }

    /// The canonical `VMFuncRef` of function `index`: the one a funcref value points to
    /// (for an import, the exporter's).
    pub(crate) fn canonical_funcref(&self, index: u32) -> *const VMFuncRef {
        match self.imported_funcs.get(index as usize) {
            Some(f) => f.funcref_ptr(),
            None => self.funcref_ptr(index),
        }
    }

    /// Points this instance's funcref of defined function `index` at `code` (after lazy
    /// compilation). Other threads may be reading the entry: the store is atomic.
    pub(crate) fn patch_code(&self, index: u32, code: usize) {
        let at = self.vmctx.addr() + self.offsets().funcref(index) as usize;
        // SAFETY: `at` is the aligned code word of a funcref inside our live vmctx.
        let word = unsafe { &*(at as *const std::sync::atomic::AtomicUsize) };
        word.store(code, std::sync::atomic::Ordering::Release);
    }

    /// The function index whose own `VMFuncRef` entry is at `ptr`, if it is in this vmctx.
    pub(crate) fn func_index_of(&self, ptr: usize) -> Option<u32> {
        let first = self.vmctx.addr() + self.offsets().funcref(0) as usize;
        let size = wjit_compiler::vmctx::funcref::SIZE as usize;
        let n = self.offsets().num_funcs as usize;
        if ptr < first || ptr >= first + n * size || (ptr - first) % size != 0 {
            return None;
        }
        Some(((ptr - first) / size) as u32)
    }

    pub(crate) fn eval(&self, init: ConstInit) -> Result<u64, Error> {
        Ok(match init {
            ConstInit::I32(v) => v as u32 as u64,
            ConstInit::I64(v) => v as u64,
            ConstInit::F32(v) => v as u64,
            ConstInit::F64(v) => v,
            ConstInit::RefNull => 0,
            ConstInit::RefFunc(f) => self.canonical_funcref(f) as u64,
            ConstInit::GlobalGet(g) => {
                let global = self
                    .globals
                    .get(g as usize)
                    .ok_or_else(|| Error::Compile(format!("unknown global {g}")))?;
                // SAFETY: the cell lives as long as the global.
                unsafe { (*global.cell()).bits }
            }
        })
    }
}

/// An instantiated module. Cheap to clone (a handle).
///
/// An instance may be moved between threads but should run on one thread at a time: its
/// memories, tables and globals are plain wasm state.
#[derive(Clone)]
pub struct Instance {
    pub(crate) inner: Arc<InstanceInner>,
}

impl std::fmt::Debug for Instance {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Instance").finish_non_exhaustive()
    }
}

fn link_error(i: &crate::module::Import, why: impl std::fmt::Display) -> Error {
    Error::Link(format!("import `{}::{}`: {why}", i.module, i.name))
}

fn limits_match(actual_min: u64, actual_max: Option<u64>, min: u64, max: Option<u64>) -> bool {
    actual_min >= min
        && match max {
            None => true,
            Some(m) => actual_max.is_some_and(|a| a <= m),
        }
}

impl Instance {
    pub(crate) fn from_inner(inner: Arc<InstanceInner>) -> Instance {
        Instance { inner }
    }

    /// Instantiates `module` with `imports` given in the module's import order: checks their
    /// types, creates memories, tables and globals, applies active segments and runs the
    /// start function.
    pub fn new(module: &Module, imports: &[Extern]) -> Result<Instance, Error> {
        let m = &module.inner;
        let engine = &m.engine;
        if imports.len() != m.imports.len() {
            return Err(Error::Link(format!(
                "the module has {} imports but {} were provided",
                m.imports.len(),
                imports.len()
            )));
        }
        let mut funcs = Vec::new();
        let mut memories = Vec::new();
        let mut globals = Vec::new();
        let mut tables = Vec::new();
        for (imp, ext) in m.imports.iter().zip(imports) {
            match (&imp.ty, ext) {
                (ExternType::Func(want), Extern::Func(f)) => {
                    if &f.ty() != want {
                        return Err(link_error(
                            imp,
                            format!(
                                "incompatible import type: expected {want}, found {}",
                                f.ty()
                            ),
                        ));
                    }
                    funcs.push(f.clone());
                }
                (ExternType::Global(want), Extern::Global(g)) => {
                    if g.ty() != *want {
                        return Err(link_error(imp, "incompatible import type (global)"));
                    }
                    globals.push(g.clone());
                }
                (ExternType::Memory(want), Extern::Memory(mem)) => {
                    let have = mem.ty();
                    if !limits_match(have.minimum, have.maximum, want.minimum, want.maximum) {
                        return Err(link_error(imp, "incompatible import type (memory limits)"));
                    }
                    memories.push(mem.clone());
                }
                (ExternType::Table(want), Extern::Table(t)) => {
                    let have = t.ty();
                    if have.element != want.element
                        || !limits_match(
                            have.minimum as u64,
                            have.maximum.map(u64::from),
                            want.minimum as u64,
                            want.maximum.map(u64::from),
                        )
                    {
                        return Err(link_error(imp, "incompatible import type (table)"));
                    }
                    tables.push(t.clone());
                }
                (want, have) => {
                    return Err(link_error(
                        imp,
                        format!(
                            "incompatible import type: expected {want}, found {}",
                            have.ty()
                        ),
                    ))
                }
            }
        }
        let num_imported_tables = tables.len();
        for &ty in &m.memory_types[memories.len()..] {
            memories.push(Memory::new(engine, ty)?);
        }
        for &ty in &m.table_types[tables.len()..] {
            tables.push(Table::new(engine, ty, Val::default_for(ty.element))?);
        }
        for &ty in &m.global_types[globals.len()..] {
            globals.push(Global::new(engine, ty, Val::default_for(ty.content))?);
        }

        let offsets = m.info.offsets;
        let vmctx = Vmctx::new(offsets.size());
        let inner = Arc::new(InstanceInner {
            module: m.clone(),
            vmctx,
            memories,
            globals,
            tables,
            imported_funcs: funcs.clone(),
            dropped_elems: Mutex::new(vec![false; m.elems.len()]),
            dropped_data: Mutex::new(vec![false; m.data.len()]),
        });
        let vmctx = &inner.vmctx;
        let stubs = vm::stubs()?;
        if let Some(mem) = inner.memories.first() {
            vmctx.set(offsets.memory0_base(), mem.data_ptr() as u64);
            vmctx.set(offsets.memory0_definition(), mem.definition() as u64);
        }
        for (builtin, f) in crate::builtins::builtins() {
            vmctx.set(offsets.builtin(builtin), f as u64);
        }
        vmctx.set(offsets.trap_landing(), stubs.trap_landing as u64);
        vmctx.set(offsets.lazy_stub(), stubs.lazy as u64);
        let epoch: &std::sync::atomic::AtomicU64 = &engine.inner.epoch;
        vmctx.set(offsets.epoch_ptr(), epoch as *const _ as usize as u64);
        vmctx.set(offsets.epoch_deadline(), u64::MAX);
        vmctx.set(offsets.fuel(), engine.inner.config.initial_fuel);
        vmctx.set(VMCTX_INSTANCE as i32, Arc::as_ptr(&inner) as u64);
        for i in 0..offsets.num_funcs {
            let base = offsets.funcref(i);
            let fr = if (i as usize) < funcs.len() {
                funcs[i as usize].funcref()
            } else {
                let type_index = m.info.functions[i as usize];
                VMFuncRef {
                    code: m.entry(i),
                    vmctx: vmctx.addr(),
                    type_id: m.info.type_ids[type_index as usize] as u64,
                }
            };
            vmctx.set(base, fr.code as u64);
            vmctx.set(base + 8, fr.vmctx as u64);
            vmctx.set(base + 16, fr.type_id);
            vmctx.set(
                offsets.func_ptr(i),
                inner.canonical_funcref(i) as usize as u64,
            );
        }
        for (i, g) in inner.globals.iter().enumerate() {
            vmctx.set(offsets.global_ptr(i as u32), g.cell() as u64);
        }
        for (i, t) in inner.tables.iter().enumerate() {
            vmctx.set(offsets.table_ptr(i as u32), t.definition() as u64);
        }
        for (i, mem) in inner.memories.iter().enumerate() {
            vmctx.set(offsets.memory_ptr(i as u32), mem.definition() as u64);
        }

        // Defined globals, in order (initialisers may read imported globals).
        let num_imported_globals = m
            .imports
            .iter()
            .filter(|i| matches!(i.ty, ExternType::Global(_)))
            .count();
        for i in num_imported_globals..inner.globals.len() {
            let bits = inner.eval(m.global_inits[i])?;
            // SAFETY: the cell lives as long as the global.
            unsafe { (*inner.globals[i].cell()).bits = bits };
        }

        // Active element segments, then active data segments; a segment out of bounds
        // traps and leaves the earlier ones applied.
        for (i, seg) in m.elems.iter().enumerate() {
            if seg.declared {
                inner
                    .dropped_elems
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())[i] = true;
            }
            let Some((table_index, offset)) = seg.active else {
                continue;
            };
            let table = inner
                .tables
                .get(table_index as usize)
                .ok_or_else(|| Error::Compile(format!("unknown table {table_index}")))?;
            let offset = inner.eval(offset)? as u32 as u64;
            if offset + seg.items.len() as u64 > table.size() as u64 {
                return Err(Trap::new(TrapCode::TableOutOfBounds).into());
            }
            let owner: Option<Arc<dyn std::any::Any + Send + Sync>> =
                if (table_index as usize) < num_imported_tables {
                    Some(inner.clone())
                } else {
                    None
                };
            for (j, item) in seg.items.iter().enumerate() {
                let raw = inner.eval(*item)?;
                table.set_raw(
                    offset as u32 + j as u32,
                    raw as *const VMFuncRef,
                    owner.clone(),
                )?;
            }
            inner
                .dropped_elems
                .lock()
                .unwrap_or_else(|p| p.into_inner())[i] = true;
        }
        for (i, seg) in m.data.iter().enumerate() {
            let Some(offset) = seg.offset else {
                continue;
            };
            let mem = inner
                .memories
                .first()
                .ok_or_else(|| Error::Compile("data segment without a memory".into()))?;
            let offset = inner.eval(offset)? as u32 as usize;
            mem.write(offset, &seg.bytes)?;
            inner.dropped_data.lock().unwrap_or_else(|p| p.into_inner())[i] = true;
        }
        let instance = Instance { inner };
        if let Some(start) = m.start {
            Func::from_instance(&instance.inner, start).call(&[], &mut [])?;
        }
        Ok(instance)
    }

    /// Makes running code trap with [`TrapCode::Interrupt`] once the engine's epoch has
    /// advanced `ticks` times from now (needs [`crate::Config::epoch_interruption`]).
    pub fn set_epoch_deadline(&self, ticks: u64) {
        let deadline = self
            .inner
            .module
            .engine
            .current_epoch()
            .saturating_add(ticks);
        self.inner
            .vmctx
            .set(self.inner.offsets().epoch_deadline(), deadline);
    }

    /// Fuel left (meaningful with [`crate::Config::consume_fuel`]).
    pub fn fuel(&self) -> u64 {
        self.inner.vmctx.get(self.inner.offsets().fuel()).max(0) as u64
    }

    /// Sets the fuel left.
    pub fn set_fuel(&self, fuel: u64) {
        self.inner
            .vmctx
            .set(self.inner.offsets().fuel(), fuel.min(i64::MAX as u64));
    }

    /// An export by name.
    pub fn get_export(&self, name: &str) -> Option<Extern> {
        let (_, idx) = self.inner.module.exports.iter().find(|(n, _)| n == name)?;
        Some(self.export(*idx))
    }

    fn export(&self, idx: ExportIndex) -> Extern {
        match idx {
            ExportIndex::Func(i) => Extern::Func(Func::from_instance(&self.inner, i)),
            ExportIndex::Global(i) => Extern::Global(self.inner.globals[i as usize].clone()),
            ExportIndex::Table(i) => Extern::Table(self.inner.tables[i as usize].clone()),
            ExportIndex::Memory(i) => Extern::Memory(self.inner.memories[i as usize].clone()),
        }
    }

    /// All exports, in module order.
    pub fn exports(&self) -> impl Iterator<Item = (&str, Extern)> {
        self.inner
            .module
            .exports
            .iter()
            .map(|(n, idx)| (n.as_str(), self.export(*idx)))
    }

    /// An exported function.
    pub fn get_func(&self, name: &str) -> Option<Func> {
        match self.get_export(name)? {
            Extern::Func(f) => Some(f),
            _ => None,
        }
    }

    /// An exported function with a static signature.
    pub fn get_typed_func<P: WasmParams, R: WasmResults>(
        &self,
        name: &str,
    ) -> Result<TypedFunc<P, R>, Error> {
        self.get_func(name)
            .ok_or_else(|| Error::Link(format!("no exported function named `{name}`")))?
            .typed()
    }

    /// An exported memory.
    pub fn get_memory(&self, name: &str) -> Option<Memory> {
        match self.get_export(name)? {
            Extern::Memory(m) => Some(m),
            _ => None,
        }
    }

    /// An exported global.
    pub fn get_global(&self, name: &str) -> Option<Global> {
        match self.get_export(name)? {
            Extern::Global(g) => Some(g),
            _ => None,
        }
    }

    /// An exported table.
    pub fn get_table(&self, name: &str) -> Option<Table> {
        match self.get_export(name)? {
            Extern::Table(t) => Some(t),
            _ => None,
        }
    }
}
