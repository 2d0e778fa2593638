//! `Module`: a validated, compiled wasm module, ready to be instantiated.

use crate::engine::Engine;
use crate::types::{ExternType, FuncType, GlobalType, MemoryType, TableType, ValType};
use crate::vm::ModuleCode;
use crate::Error;
use std::sync::{Arc, Mutex, OnceLock};
use wasmparser::{
    BinaryReader, ConstExpr, DataKind, ElementItems, ElementKind, ExternalKind, FuncToValidate,
    FuncValidatorAllocations, FunctionBody, Operator, Parser, Payload, TypeRef, Validator,
    ValidatorResources, WasmFeatures,
};
use wjit_compiler::ModuleInfo;

/// A constant expression (global initialisers, segment offsets).
#[derive(Debug, Clone, Copy)]
pub(crate) enum ConstInit {
    I32(i32),
    I64(i64),
    F32(u32),
    F64(u64),
    RefNull,
    RefFunc(u32),
    GlobalGet(u32),
}

impl ConstInit {
    fn parse(expr: &ConstExpr<'_>) -> Result<ConstInit, Error> {
        let mut reader = expr.get_operators_reader();
        let op = reader.read()?;
        let init = match op {
            Operator::I32Const { value } => ConstInit::I32(value),
            Operator::I64Const { value } => ConstInit::I64(value),
            Operator::F32Const { value } => ConstInit::F32(value.bits()),
            Operator::F64Const { value } => ConstInit::F64(value.bits()),
            Operator::RefNull { .. } => ConstInit::RefNull,
            Operator::RefFunc { function_index } => ConstInit::RefFunc(function_index),
            Operator::GlobalGet { global_index } => ConstInit::GlobalGet(global_index),
            other => {
                return Err(Error::Unsupported(format!(
                    "constant expression operator {other:?}"
                )))
            }
        };
        match reader.read()? {
            Operator::End => Ok(init),
            _ => Err(Error::Unsupported("extended constant expressions".into())),
        }
    }
}

/// An import of the module.
#[derive(Debug, Clone)]
pub(crate) struct Import {
    pub module: String,
    pub name: String,
    pub ty: ExternType,
}

/// What an export refers to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ExportIndex {
    Func(u32),
    Table(u32),
    Memory(u32),
    Global(u32),
}

/// An element segment: references to put in a table at instantiation (active) or with
/// `table.init` (passive).
#[derive(Debug, Clone)]
pub(crate) struct ElemSegment {
    /// `Some((table, offset))` for an active segment.
    pub active: Option<(u32, ConstInit)>,
    /// Declarative segments are dropped from the start.
    pub declared: bool,
    /// The references (`RefFunc`, `RefNull` or `GlobalGet`).
    pub items: Vec<ConstInit>,
}

/// A data segment: bytes to put in memory at instantiation (active) or with `memory.init`.
#[derive(Debug, Clone)]
pub(crate) struct DataSegment {
    /// The offset, for an active segment.
    pub offset: Option<ConstInit>,
    pub bytes: Vec<u8>,
}

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
    pub memory_types: Vec<MemoryType>,
    pub elems: Vec<ElemSegment>,
    pub data: Vec<DataSegment>,
    pub start: Option<u32>,
    /// Code of the functions compiled by `Module::new` (eager mode) or the lazy trampolines.
    pub _code: ModuleCode,
    /// The defined functions, by `index - num_imported_functions`.
    pub funcs: Vec<DefinedFunc>,
    /// Code of functions compiled on first call.
    pub lazy_code: Mutex<Vec<ModuleCode>>,
    /// The module binary, kept to compile bodies lazily.
    pub binary: Arc<[u8]>,
    pub names: Arc<Vec<Option<String>>>,
}

/// Why a function body could not be compiled, kept to report it at every call.
#[derive(Debug, Clone)]
pub(crate) struct CompileFailure {
    unsupported: bool,
    message: String,
}

impl CompileFailure {
    fn new(e: Error) -> CompileFailure {
        match e {
            Error::Unsupported(m) => CompileFailure {
                unsupported: true,
                message: m,
            },
            other => CompileFailure {
                unsupported: false,
                message: match other {
                    Error::Compile(m) => m,
                    o => o.to_string(),
                },
            },
        }
    }
    fn to_error(&self) -> Error {
        if self.unsupported {
            Error::Unsupported(self.message.clone())
        } else {
            Error::Compile(self.message.clone())
        }
    }
}

/// A function defined by the module.
pub(crate) struct DefinedFunc {
    /// The validator for the body, until the body is compiled.
    to_validate: Mutex<Option<FuncToValidate<ValidatorResources>>>,
    /// Where the body is in the binary.
    body: std::ops::Range<usize>,
    /// The trampoline that compiles the function on first call (0 in eager mode).
    trampoline: usize,
    /// The compiled entry address, once compiled.
    compiled: OnceLock<Result<usize, CompileFailure>>,
}

/// A compiled WebAssembly module. Cheap to clone; `Send + Sync`.
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

fn table_type(t: &wasmparser::TableType) -> Result<TableType, Error> {
    if t.table64 {
        return Err(Error::Unsupported("64-bit tables".into()));
    }
    Ok(TableType {
        element: ValType::from_wasm(wasmparser::ValType::Ref(t.element_type))?,
        minimum: t.initial as u32,
        maximum: t.maximum.map(|m| m as u32),
    })
}

fn memory_type(m: &wasmparser::MemoryType) -> Result<MemoryType, Error> {
    if m.memory64 {
        return Err(Error::Unsupported("64-bit memories".into()));
    }
    if m.shared {
        return Err(Error::Unsupported("shared memories".into()));
    }
    Ok(MemoryType {
        minimum: m.initial,
        maximum: m.maximum,
    })
}

fn global_type(g: &wasmparser::GlobalType) -> Result<GlobalType, Error> {
    Ok(GlobalType {
        content: ValType::from_wasm(g.content_type)?,
        mutable: g.mutable,
    })
}

impl Module {
    /// Validates and compiles a module from binary wasm or the text format.
    pub fn new(engine: &Engine, bytes: impl AsRef<[u8]>) -> Result<Module, Error> {
        let bytes = bytes.as_ref();
        let binary = if bytes.starts_with(b"\0asm") {
            std::borrow::Cow::Borrowed(bytes)
        } else {
            std::borrow::Cow::Owned(
                wat::parse_bytes(bytes)
                    .map_err(|e| Error::Compile(e.to_string()))?
                    .into_owned(),
            )
        };
        Self::from_binary(engine, &binary)
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
        Module::new(engine, bytes)
    }

    fn from_binary(engine: &Engine, binary: &[u8]) -> Result<Module, Error> {
        let mut validator = Validator::new_with_features(WasmFeatures::WASM2);
        let mut info = ModuleInfo::default();
        let mut types = Vec::new();
        let mut imports = Vec::new();
        let mut exports = Vec::new();
        let mut global_types = Vec::new();
        let mut global_inits = Vec::new();
        let mut table_types = Vec::new();
        let mut memory_types = Vec::new();
        let mut elems = Vec::new();
        let mut data = Vec::new();
        let mut start = None;
        let mut compiled = Vec::new();
        let mut defined_index = 0u32;
        let mut allocs = FuncValidatorAllocations::default();
        let mut names: Vec<Option<String>> = Vec::new();
        let lazy = engine.inner.config.lazy_compilation;
        let mut pending = Vec::new();
        let mut pending_ranges = Vec::new();
        info.epoch_interruption = engine.inner.config.epoch_interruption;
        info.consume_fuel = engine.inner.config.consume_fuel;
        info.native_float_rounding = engine.native_float_rounding();

        for payload in Parser::new(0).parse_all(binary) {
            let payload = payload?;
            let valid = validator.payload(&payload)?;
            match &payload {
                Payload::TypeSection(reader) => {
                    for rec in reader.clone() {
                        for sub in rec?.into_types() {
                            match &sub.composite_type.inner {
                                wasmparser::CompositeInnerType::Func(f) => {
                                    let ty = FuncType::from_wasm(f)?;
                                    info.type_ids.push(engine.signature_id(&ty));
                                    info.types.push(f.clone());
                                    types.push(ty);
                                }
                                _ => return Err(Error::Unsupported("gc types".into())),
                            }
                        }
                    }
                }
                Payload::ImportSection(reader) => {
                    for imp in reader.clone().into_imports() {
                        let imp = imp?;
                        let ty = match imp.ty {
                            TypeRef::Func(t) => {
                                info.functions.push(t);
                                info.num_imported_functions += 1;
                                ExternType::Func(types[t as usize].clone())
                            }
                            TypeRef::Table(t) => {
                                info.tables.push(t);
                                let tt = table_type(&t)?;
                                table_types.push(tt);
                                ExternType::Table(tt)
                            }
                            TypeRef::Memory(m) => {
                                info.memories.push(m);
                                let mt = memory_type(&m)?;
                                memory_types.push(mt);
                                ExternType::Memory(mt)
                            }
                            TypeRef::Global(g) => {
                                info.globals.push(g);
                                let gt = global_type(&g)?;
                                global_types.push(gt);
                                global_inits.push(ConstInit::RefNull);
                                ExternType::Global(gt)
                            }
                            _ => return Err(Error::Unsupported("tag imports".into())),
                        };
                        imports.push(Import {
                            module: imp.module.to_string(),
                            name: imp.name.to_string(),
                            ty,
                        });
                    }
                }
                Payload::FunctionSection(reader) => {
                    for t in reader.clone() {
                        info.functions.push(t?);
                    }
                }
                Payload::TableSection(reader) => {
                    for t in reader.clone() {
                        let t = t?;
                        if !matches!(t.init, wasmparser::TableInit::RefNull) {
                            return Err(Error::Unsupported("table initialiser expressions".into()));
                        }
                        info.tables.push(t.ty);
                        table_types.push(table_type(&t.ty)?);
                    }
                }
                Payload::MemorySection(reader) => {
                    check_memory_limits_encoding(binary, reader.range())?;
                    for m in reader.clone() {
                        let m = m?;
                        info.memories.push(m);
                        memory_types.push(memory_type(&m)?);
                    }
                }
                Payload::GlobalSection(reader) => {
                    for g in reader.clone() {
                        let g = g?;
                        info.globals.push(g.ty);
                        global_types.push(global_type(&g.ty)?);
                        global_inits.push(ConstInit::parse(&g.init_expr)?);
                    }
                }
                Payload::ExportSection(reader) => {
                    for e in reader.clone() {
                        let e = e?;
                        let idx = match e.kind {
                            ExternalKind::Func | ExternalKind::FuncExact => {
                                ExportIndex::Func(e.index)
                            }
                            ExternalKind::Table => ExportIndex::Table(e.index),
                            ExternalKind::Memory => ExportIndex::Memory(e.index),
                            ExternalKind::Global => ExportIndex::Global(e.index),
                            ExternalKind::Tag => {
                                return Err(Error::Unsupported("tag exports".into()))
                            }
                        };
                        exports.push((e.name.to_string(), idx));
                    }
                }
                Payload::StartSection { func, .. } => start = Some(*func),
                Payload::ElementSection(reader) => {
                    for e in reader.clone() {
                        let e = e?;
                        let items = match e.items {
                            ElementItems::Functions(r) => r
                                .into_iter()
                                .map(|f| f.map(ConstInit::RefFunc))
                                .collect::<Result<Vec<_>, _>>()?,
                            ElementItems::Expressions(_, r) => {
                                let mut v = Vec::new();
                                for expr in r {
                                    v.push(ConstInit::parse(&expr?)?);
                                }
                                v
                            }
                        };
                        let (active, declared) = match e.kind {
                            ElementKind::Active {
                                table_index,
                                offset_expr,
                            } => (
                                Some((table_index.unwrap_or(0), ConstInit::parse(&offset_expr)?)),
                                false,
                            ),
                            ElementKind::Declared => (None, true),
                            ElementKind::Passive => (None, false),
                        };
                        elems.push(ElemSegment {
                            active,
                            declared,
                            items,
                        });
                    }
                }
                Payload::DataSection(reader) => {
                    for d in reader.clone() {
                        let d = d?;
                        let offset = match d.kind {
                            DataKind::Active {
                                memory_index: 0,
                                offset_expr,
                            } => Some(ConstInit::parse(&offset_expr)?),
                            DataKind::Active { .. } => {
                                return Err(Error::Unsupported("multiple memories".into()))
                            }
                            DataKind::Passive => None,
                        };
                        data.push(DataSegment {
                            offset,
                            bytes: d.data.to_vec(),
                        });
                    }
                }
                Payload::CustomSection(c) if c.name() == "name" => {
                    // Names only label backtraces: a malformed name section is ignored.
                    let reader = wasmparser::NameSectionReader::new(c.data_reader());
                    for name in reader.into_iter().flatten() {
                        if let wasmparser::Name::Function(map) = name {
                            for n in map.into_iter().flatten() {
                                let i = n.index as usize;
                                if i < 1_000_000 {
                                    if names.len() <= i {
                                        names.resize(i + 1, None);
                                    }
                                    names[i] = Some(n.name.to_string());
                                }
                            }
                        }
                    }
                }
                Payload::CodeSectionStart { .. } => {
                    info.compute_offsets();
                }
                _ => {}
            }
            if let wasmparser::ValidPayload::Func(to_validate, body) = valid {
                let index = info.num_imported_functions + defined_index;
                defined_index += 1;
                let range = body.range();
                let range = range.start as usize..range.end as usize;
                if lazy {
                    pending.push((to_validate, range));
                } else {
                    let mut func_validator =
                        to_validate.into_validator(std::mem::take(&mut allocs));
                    let masm = wjit_compiler::isa::host::Masm::new(&info.offsets);
                    let f = wjit_compiler::compile_function(
                        masm,
                        &info,
                        index,
                        &body,
                        &mut func_validator,
                    )?;
                    allocs = func_validator.into_allocations();
                    compiled.push((index, f));
                    pending_ranges.push(range);
                }
            }
        }
        if info.memories.len() > 1 {
            return Err(Error::Unsupported("multiple memories".into()));
        }
        info.compute_offsets();
        let names = Arc::new(names);
        let first = info.num_imported_functions;
        let mut funcs = Vec::new();
        let code = if lazy {
            let count = pending.len() as u32;
            let tramp = wjit_compiler::isa::host::lazy_trampolines(first, count)?;
            let (code, addrs) = ModuleCode::trampolines(&tramp)?;
            for (to_validate, body) in pending {
                funcs.push(DefinedFunc {
                    to_validate: Mutex::new(Some(to_validate)),
                    body,
                    trampoline: addrs + funcs.len() * wjit_compiler::isa::host::TRAMPOLINE_SIZE,
                    compiled: OnceLock::new(),
                });
            }
            code
        } else {
            let (code, addrs) = ModuleCode::new(&compiled, names.clone())?;
            for (addr, body) in addrs.into_iter().zip(pending_ranges) {
                funcs.push(DefinedFunc {
                    to_validate: Mutex::new(None),
                    body,
                    trampoline: 0,
                    compiled: OnceLock::from(Ok(addr)),
                });
            }
            code
        };
        Ok(Module {
            inner: Arc::new(ModuleInner {
                engine: engine.clone(),
                info,
                types,
                imports,
                exports,
                global_types,
                global_inits,
                table_types,
                memory_types,
                elems,
                data,
                start,
                _code: code,
                funcs,
                lazy_code: Mutex::new(Vec::new()),
                binary: if lazy {
                    Arc::from(binary)
                } else {
                    Arc::from(&[][..])
                },
                names,
            }),
        })
    }

    /// How many of the module's functions have been compiled so far (all of them in eager
    /// mode).
    pub fn compiled_functions(&self) -> usize {
        self.inner
            .funcs
            .iter()
            .filter(|f| matches!(f.compiled.get(), Some(Ok(_))))
            .count()
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

impl ModuleInner {
    /// The current entry address of defined function `index`: its code, or its trampoline.
    pub(crate) fn entry(&self, index: u32) -> usize {
        let f = &self.funcs[(index - self.info.num_imported_functions) as usize];
        match f.compiled.get() {
            Some(Ok(addr)) => *addr,
            _ => f.trampoline,
        }
    }

    /// Compiles defined function `index` if nobody has yet (threads racing here wait for
    /// the first one) and returns its entry address.
    pub(crate) fn compile_lazily(&self, index: u32) -> Result<usize, Error> {
        let defined = index
            .checked_sub(self.info.num_imported_functions)
            .and_then(|i| self.funcs.get(i as usize))
            .ok_or_else(|| Error::Compile(format!("no defined function {index}")))?;
        let result = defined.compiled.get_or_init(|| {
            self.compile_body(index, defined)
                .map_err(CompileFailure::new)
        });
        result.clone().map_err(|f| f.to_error())
    }

    fn compile_body(&self, index: u32, defined: &DefinedFunc) -> Result<usize, Error> {
        let to_validate = defined
            .to_validate
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take()
            .ok_or_else(|| Error::Compile(format!("function {index} has no body to compile")))?;
        let bytes = self
            .binary
            .get(defined.body.clone())
            .ok_or_else(|| Error::Compile("function body out of range".into()))?;
        let body = FunctionBody::new(BinaryReader::new(bytes, defined.body.start as u64));
        let mut validator = to_validate.into_validator(Default::default());
        let masm = wjit_compiler::isa::host::Masm::new(&self.info.offsets);
        let f = wjit_compiler::compile_function(masm, &self.info, index, &body, &mut validator)?;
        let (code, addrs) = ModuleCode::new(&[(index, f)], self.names.clone())?;
        let addr = addrs[0];
        self.lazy_code
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(code);
        Ok(addr)
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
        }
    }
}

/// WebAssembly 2.0 encodes memory limits as `u32` LEB128 (at most 5 bytes); wasmparser reads
/// them as `u64` for memory64, so an overlong encoding must be rejected here.
fn check_memory_limits_encoding(binary: &[u8], range: std::ops::Range<u64>) -> Result<(), Error> {
    let bytes = binary
        .get(range.start as usize..range.end as usize)
        .ok_or_else(|| Error::Compile("memory section out of range".into()))?;
    let mut br = wasmparser::BinaryReader::new(bytes, range.start);
    let count = br.read_var_u32()?;
    for _ in 0..count {
        let flags = br.read_u8()?;
        if flags & 0x04 != 0 {
            return Ok(());
        }
        br.read_var_u32()?;
        if flags & 0x01 != 0 {
            br.read_var_u32()?;
        }
    }
    Ok(())
}
