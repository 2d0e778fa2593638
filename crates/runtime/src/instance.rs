//! [`Instance`]: instantiating a module in a store (import checks, the instance's own
//! memories, tables and globals, segments, the start function) and reading its exports.

use crate::handles::{Extern, Func, Instance};
use crate::handles::{Global, Memory, Table};
use crate::limits::ResourceLimiter;
use crate::module::{ConstInit, ConstOp, Import, Module};
use crate::store::{AsContext, AsContextMut, InstanceData, StoreInner, StoreOpaque};
use crate::typed::{TypedFunc, WasmParams, WasmResults};
use crate::types::ExternType;
use crate::vm::builtins::builtins;
use crate::vm::instance::{VMInstance, VMInstanceParts};
use crate::vm::memory::VMMemory;
use crate::vm::table::VMTable;
use crate::vm::vmctx::{Owned, VMFuncRef, VMGlobal, VMGlobalEntry};
use crate::{Error, Trap, TrapCode};
use std::sync::Arc;

fn link_error(i: &Import, why: impl std::fmt::Display) -> Error {
    Error::Link(format!("import `{}::{}`: {why}", i.module, i.name))
}

fn limits_match(actual_min: u64, actual_max: Option<u64>, min: u64, max: Option<u64>) -> bool {
    actual_min >= min
        && match max {
            None => true,
            Some(m) => actual_max.is_some_and(|a| a <= m),
        }
}

/// The store indices (and funcrefs) of the resolved imports.
#[derive(Default)]
struct ResolvedImports {
    funcs: Vec<*const VMFuncRef>,
    memories: Vec<u32>,
    tables: Vec<u32>,
    globals: Vec<u32>,
    tags: Vec<u32>,
}

/// Checks each import against the module's expectation.
fn resolve_imports(
    store: &StoreOpaque,
    module: &Module,
    imports: &[Extern],
) -> Result<ResolvedImports, Error> {
    let m = &module.inner;
    if imports.len() != m.imports.len() {
        return Err(Error::Link(format!(
            "the module has {} imports but {} were provided",
            m.imports.len(),
            imports.len()
        )));
    }
    let mut r = ResolvedImports::default();
    for (imp, ext) in m.imports.iter().zip(imports) {
        if ext.store() != store.id {
            return Err(link_error(imp, "the item belongs to another store"));
        }
        match (&imp.ty, ext) {
            (ExternType::Func(want), Extern::Func(f)) => {
                let have = f.ty_in(&store.engine);
                if &have != want {
                    return Err(link_error(
                        imp,
                        format!("incompatible import type: expected {want}, found {have}"),
                    ));
                }
                r.funcs.push(f.funcref as *const VMFuncRef);
            }
            (ExternType::Global(want), Extern::Global(g)) => {
                let have = store.globals[g.index as usize].get().ty;
                // Mutable globals are invariant, immutable ones covariant.
                let content_ok = if want.mutable {
                    have.content == want.content
                } else {
                    have.content.matches(&want.content)
                };
                if have.mutable != want.mutable || !content_ok {
                    return Err(link_error(imp, "incompatible import type (global)"));
                }
                r.globals.push(g.index);
            }
            (ExternType::Memory(want), Extern::Memory(mem)) => {
                let have = store.memories[mem.index as usize].get().ty();
                if have.memory64 != want.memory64 {
                    return Err(link_error(
                        imp,
                        "incompatible import type (memory index type)",
                    ));
                }
                if !limits_match(have.minimum, have.maximum, want.minimum, want.maximum) {
                    return Err(link_error(imp, "incompatible import type (memory limits)"));
                }
                r.memories.push(mem.index);
            }
            (ExternType::Table(want), Extern::Table(t)) => {
                let have = store.tables[t.index as usize].get().ty();
                if have.element != want.element
                    || have.table64 != want.table64
                    || !limits_match(have.minimum, have.maximum, want.minimum, want.maximum)
                {
                    return Err(link_error(imp, "incompatible import type (table)"));
                }
                r.tables.push(t.index);
            }
            (ExternType::Tag(want), Extern::Tag(t)) => {
                // Tags match by type; an exception matches a catch clause by identity.
                if store.tags[t.index as usize].get().ty != *want.ty() {
                    return Err(link_error(imp, "incompatible import type (tag)"));
                }
                r.tags.push(t.index);
            }
            (want, have) => {
                let have = match have {
                    Extern::Func(_) => "a function",
                    Extern::Global(_) => "a global",
                    Extern::Table(_) => "a table",
                    Extern::Memory(_) => "a memory",
                    Extern::Tag(_) => "a tag",
                };
                return Err(link_error(
                    imp,
                    format!("incompatible import type: expected {want}, found {have}"),
                ));
            }
        }
    }
    Ok(r)
}

/// A shorter borrow of an optional limiter (for use in a loop).
fn reborrow<'a>(
    limiter: &'a mut Option<&mut dyn ResourceLimiter>,
) -> Option<&'a mut dyn ResourceLimiter> {
    match limiter {
        Some(l) => Some(&mut **l),
        None => None,
    }
}

/// Creates the module's own memories, tables and globals in the store (asking the
/// limiter), appending their store indices to `r`.
fn create_definitions<T: 'static>(
    store: &mut StoreInner<T>,
    module: &Module,
    r: &mut ResolvedImports,
) -> Result<(), Error> {
    let m = &module.inner;
    let (mut limiter, opaque) = store.limiter_and_opaque();
    if let Some(l) = &limiter {
        let new_memories = m.memory_types.len() - r.memories.len();
        let new_tables = m.table_types.len() - r.tables.len();
        if opaque.instances.len() >= l.instances() {
            return Err(Error::msg("the store's instance limit was reached"));
        }
        if opaque.memories.len() + new_memories > l.memories() {
            return Err(Error::msg("the store's memory limit was reached"));
        }
        if opaque.tables.len() + new_tables > l.tables() {
            return Err(Error::msg("the store's table limit was reached"));
        }
    }
    let limit_pages = opaque.engine.inner.config.max_memory_pages;
    for &ty in &m.memory_types[r.memories.len()..] {
        let mem = VMMemory::new(ty, limit_pages, reborrow(&mut limiter))?;
        opaque.memories.push(Owned::new(mem));
        r.memories.push(opaque.memories.len() as u32 - 1);
    }
    for &ty in &m.table_types[r.tables.len()..] {
        let table = VMTable::new(ty, 0, reborrow(&mut limiter))?;
        opaque.tables.push(Owned::new(table));
        r.tables.push(opaque.tables.len() as u32 - 1);
    }
    for ty in &m.tag_types[r.tags.len()..] {
        let tag = opaque.new_tag(ty.clone());
        r.tags.push(tag.index);
    }
    for &ty in &m.global_types[r.globals.len()..] {
        opaque.globals.push(Owned::new(VMGlobalEntry {
            cell: VMGlobal::default(),
            ty,
        }));
        r.globals.push(opaque.globals.len() as u32 - 1);
    }
    Ok(())
}

/// The raw value of a constant expression in instance `vm` (as `values::val_to_raw`
/// makes them: only a v128 uses the upper 64 bits).
fn eval(store: &StoreOpaque, vm: &VMInstance, globals: &[u32], init: &ConstInit) -> u128 {
    match *init {
        ConstInit::I32(v) => v as u32 as u128,
        ConstInit::I64(v) => v as u64 as u128,
        ConstInit::F32(v) => v as u128,
        ConstInit::F64(v) => v as u128,
        ConstInit::V128(v) => v,
        ConstInit::RefNull => 0,
        ConstInit::RefFunc(f) => vm.canonical_funcref(f) as u128,
        // The validator only allows earlier (imported or defined) globals here.
        ConstInit::GlobalGet(g) => globals
            .get(g as usize)
            .map_or(0, |&i| store.globals[i as usize].get().cell.raw()),
        ConstInit::Extended(ref ops) => {
            // Validated: every operator finds its operands, and one value remains.
            let mut stack: Vec<u128> = Vec::with_capacity(4);
            for op in ops.iter() {
                let value = match op {
                    ConstOp::Push(v) => eval(store, vm, globals, v),
                    ConstOp::Arith(arith) => {
                        let b = stack.pop().unwrap_or(0);
                        let a = stack.pop().unwrap_or(0);
                        arith.apply(a as u64, b as u64) as u128
                    }
                };
                stack.push(value);
            }
            stack.pop().unwrap_or(0)
        }
    }
}

/// A segment offset (an `i32`, or an `i64` for memory64 and table64) as an index; one
/// beyond the address space is out of bounds anyway.
fn offset_value(raw: u128) -> usize {
    usize::try_from(raw as u64).unwrap_or(usize::MAX)
}

/// Initialises globals and applies the segments: element segments first, then data; a
/// segment out of bounds traps and leaves the earlier ones applied.
fn initialize(store: &mut StoreOpaque, index: u32) -> Result<(), Error> {
    let data = &store.instances[index as usize];
    let module = data.module.clone();
    let m = &module.inner;
    let globals = data.globals.clone();
    let tables = data.tables.clone();
    let memories = data.memories.clone();
    let num_imported_globals = m
        .imports
        .iter()
        .filter(|i| matches!(i.ty, ExternType::Global(_)))
        .count();
    for i in num_imported_globals..globals.len() {
        let raw = eval(
            store,
            store.instances[index as usize].vm.get(),
            &globals,
            &m.global_inits[i],
        );
        store.globals[globals[i] as usize].get_mut().cell = VMGlobal::from_raw(raw);
    }

    // Tables with an initializer expression (function references), after the globals.
    let num_imported_tables = tables.len() - m.table_inits.len();
    for (i, init) in m.table_inits.iter().enumerate() {
        if let Some(init) = init {
            let raw = eval(
                store,
                store.instances[index as usize].vm.get(),
                &globals,
                init,
            ) as usize;
            let table = tables[num_imported_tables + i] as usize;
            store.tables[table].get_mut().elements_mut().fill(raw);
        }
    }

    let mut passive_elems = Vec::with_capacity(m.elems.len());
    for seg in &m.elems {
        let vm = store.instances[index as usize].vm.get();
        let items: Box<[usize]> = seg
            .items
            .iter()
            .map(|item| eval(store, vm, &globals, item) as usize)
            .collect();
        match seg.active {
            None if !seg.declared => passive_elems.push(Some(items)),
            None => passive_elems.push(None),
            Some((table_index, ref offset)) => {
                passive_elems.push(None);
                let offset = offset_value(eval(store, vm, &globals, offset));
                let table = tables
                    .get(table_index as usize)
                    .ok_or_else(|| Error::Compile(format!("unknown table {table_index}")))?;
                let elements = store.tables[*table as usize].get_mut().elements_mut();
                let dst = offset
                    .checked_add(items.len())
                    .and_then(|end| elements.get_mut(offset..end))
                    .ok_or(Trap::new(TrapCode::TableOutOfBounds))?;
                dst.copy_from_slice(&items);
            }
        }
    }
    store.instances[index as usize].vm.get_mut().passive_elems = passive_elems;

    let mut passive_data = Vec::with_capacity(m.data.len());
    for seg in &m.data {
        let Some((memory_index, offset)) = &seg.offset else {
            passive_data.push(Some(seg.bytes.clone()));
            continue;
        };
        passive_data.push(None);
        let offset = eval(
            store,
            store.instances[index as usize].vm.get(),
            &globals,
            offset,
        );
        let offset = offset_value(offset);
        let mem = memories
            .get(*memory_index as usize)
            .ok_or_else(|| Error::Compile(format!("unknown memory {memory_index}")))?;
        let bytes = store.memories[*mem as usize].get_mut().data_mut();
        let dst = offset
            .checked_add(seg.bytes.len())
            .and_then(|end| bytes.get_mut(offset..end))
            .ok_or(Trap::new(TrapCode::MemoryOutOfBounds))?;
        dst.copy_from_slice(&seg.bytes);
    }
    store.instances[index as usize].vm.get_mut().passive_data = passive_data;
    Ok(())
}

impl Instance {
    /// Instantiates `module` in `store` with `imports` given in the module's import order:
    /// checks their types, creates the instance's memories, tables and globals, applies
    /// active segments and runs the start function.
    ///
    /// If a segment or the start function traps, the error is returned, but what was
    /// already written to imported tables and memories stays, as the spec requires.
    pub fn new(
        mut store: impl AsContextMut,
        module: &Module,
        imports: &[Extern],
    ) -> Result<Instance, Error> {
        let store = store.as_context_mut().0;
        Instance::new_in(store, module, imports)
    }

    pub(crate) fn new_in<T: 'static>(
        store: &mut StoreInner<T>,
        module: &Module,
        imports: &[Extern],
    ) -> Result<Instance, Error> {
        if !module.engine().same(&store.opaque.engine) {
            return Err(Error::Link(
                "the module was compiled with a different engine than the store's".into(),
            ));
        }
        let mut r = resolve_imports(&store.opaque, module, imports)?;
        create_definitions(store, module, &mut r)?;
        let opaque = &mut store.opaque;
        let m = &module.inner;
        let index = opaque.instances.len() as u32;
        let num_imported = m.info.num_imported_functions;
        let defined_funcs = (num_imported..m.info.offsets.num_funcs)
            .map(|i| {
                let type_index = m.info.functions[i as usize];
                (m.entry(i), m.info.type_ids[type_index as usize])
            })
            .collect();
        let parts = VMInstanceParts {
            offsets: m.info.offsets,
            module: module.inner.clone() as Arc<dyn crate::vm::instance::ModuleRuntime>,
            store_context: opaque.vm_context_ptr(),
            epoch: &*opaque.engine.inner.epoch,
            memories: r
                .memories
                .iter()
                .map(|&i| opaque.memories[i as usize].as_ptr())
                .collect(),
            tables: r
                .tables
                .iter()
                .map(|&i| opaque.tables[i as usize].as_ptr())
                .collect(),
            globals: r
                .globals
                .iter()
                .map(|&i| opaque.globals[i as usize].as_ptr() as *mut VMGlobal)
                .collect(),
            tags: r
                .tags
                .iter()
                .map(|&i| opaque.tags[i as usize].as_ptr() as *const _)
                .collect(),
            imported_funcs: r.funcs,
            defined_funcs,
            type_ids: m.info.type_ids.clone(),
            builtins: builtins(),
            store_index: index,
        };
        let mut vm = Owned::new(VMInstance::new(parts)?);
        vm.get_mut().link_back();
        opaque.instances.push(InstanceData {
            module: module.clone(),
            vm,
            memories: r.memories,
            tables: r.tables,
            globals: r.globals,
            tags: r.tags,
        });
        initialize(opaque, index)?;
        let instance = Instance {
            store: opaque.id,
            index,
        };
        if let Some(start) = m.start {
            let funcref = opaque.instances[index as usize]
                .vm
                .get()
                .canonical_funcref(start) as usize;
            let mut values = [0u64; 3];
            store.invoke(funcref, &mut values, 0)?;
        }
        Ok(instance)
    }

    /// An export by name.
    pub fn get_export(&self, store: impl AsContext, name: &str) -> Option<Extern> {
        let store = store.as_context();
        store.0.opaque.assert_owns(self.store);
        store.0.opaque.export_by_name(self.index, name)
    }

    /// All exports, in module order, with their names.
    pub fn exports(&self, store: impl AsContext) -> Vec<(String, Extern)> {
        let store = store.as_context();
        let opaque = &store.0.opaque;
        let data = opaque.instance(*self);
        data.module
            .inner
            .exports
            .iter()
            .map(|(name, index)| (name.clone(), opaque.export(self.index, *index)))
            .collect()
    }

    /// An exported function.
    pub fn get_func(&self, store: impl AsContext, name: &str) -> Option<Func> {
        self.get_export(store, name)?.into_func()
    }

    /// An exported function with a static signature.
    pub fn get_typed_func<P: WasmParams, R: WasmResults>(
        &self,
        store: impl AsContext,
        name: &str,
    ) -> Result<TypedFunc<P, R>, Error> {
        let store = store.as_context();
        store.0.opaque.check_owns(self.store)?;
        self.get_func(&store, name)
            .ok_or_else(|| Error::Link(format!("no exported function named `{name}`")))?
            .typed(&store)
    }

    /// An exported memory.
    pub fn get_memory(&self, store: impl AsContext, name: &str) -> Option<Memory> {
        self.get_export(store, name)?.into_memory()
    }

    /// An exported global.
    pub fn get_global(&self, store: impl AsContext, name: &str) -> Option<Global> {
        self.get_export(store, name)?.into_global()
    }

    /// An exported tag.
    pub fn get_tag(&self, store: impl AsContext, name: &str) -> Option<crate::Tag> {
        self.get_export(store, name)?.into_tag()
    }

    /// An exported table.
    pub fn get_table(&self, store: impl AsContext, name: &str) -> Option<Table> {
        self.get_export(store, name)?.into_table()
    }
}

impl Extern {
    /// The type of the item.
    ///
    /// # Panics
    /// If `store` is not the item's store.
    pub fn ty(&self, store: impl AsContext) -> ExternType {
        let store = store.as_context();
        match self {
            Extern::Func(f) => ExternType::Func(f.ty(&store)),
            Extern::Global(g) => ExternType::Global(g.ty(&store)),
            Extern::Table(t) => ExternType::Table(t.ty(&store)),
            Extern::Memory(m) => ExternType::Memory(m.ty(&store)),
            Extern::Tag(t) => ExternType::Tag(t.ty(&store)),
        }
    }
}
