//! Module loading, step 1: parsing every section, validating all but the function
//! bodies, and collecting the bodies for validation (`validate.rs`) and compilation
//! (`schedule.rs`).

use crate::engine::Engine;
use crate::types::{ExternType, FuncType, GlobalType, MemoryType, TableType, TagType, ValType};
use crate::vm::instance::SharedBytes;
use crate::Error;
use std::sync::Arc;
use wasmparser::{
    ConstExpr, DataKind, ElementItems, ElementKind, ExternalKind, FuncToValidate, Operator, Parser,
    Payload, TypeRef, Validator, ValidatorResources, WasmFeatures,
};
use wjit_compiler::ModuleInfo;

/// A constant expression (global initialisers, segment offsets).
#[derive(Debug, Clone)]
pub(crate) enum ConstInit {
    I32(i32),
    I64(i64),
    F32(u32),
    F64(u64),
    /// A `v128.const`, as the 16 bytes read as a little-endian `u128`.
    V128(u128),
    RefNull,
    RefFunc(u32),
    GlobalGet(u32),
    /// An extended constant expression (several operators, evaluated on a stack).
    Extended(Arc<[ConstOp]>),
}

/// One operator of an extended constant expression.
#[derive(Debug, Clone)]
pub(crate) enum ConstOp {
    /// Push a value (never itself `Extended`).
    Push(ConstInit),
    /// Pop two operands, push the result.
    Arith(ConstArith),
}

/// The arithmetic of extended constant expressions.
#[derive(Debug, Clone, Copy)]
pub(crate) enum ConstArith {
    I32Add,
    I32Sub,
    I32Mul,
    I64Add,
    I64Sub,
    I64Mul,
}

impl ConstArith {
    /// `a op b` on the raw bits (an i32 result zero-extended, as raw values hold them).
    pub(crate) fn apply(self, a: u64, b: u64) -> u64 {
        let (a32, b32) = (a as u32, b as u32);
        match self {
            ConstArith::I32Add => a32.wrapping_add(b32).into(),
            ConstArith::I32Sub => a32.wrapping_sub(b32).into(),
            ConstArith::I32Mul => a32.wrapping_mul(b32).into(),
            ConstArith::I64Add => a.wrapping_add(b),
            ConstArith::I64Sub => a.wrapping_sub(b),
            ConstArith::I64Mul => a.wrapping_mul(b),
        }
    }
}

impl ConstInit {
    /// Reads a validated constant expression.
    fn parse(expr: &ConstExpr<'_>) -> Result<ConstInit, Error> {
        let mut reader = expr.get_operators_reader();
        let first = ConstInit::parse_value(reader.read()?)?;
        let mut ops = Vec::new();
        loop {
            let arith = match reader.read()? {
                Operator::End if ops.is_empty() => return Ok(first),
                Operator::End => return Ok(ConstInit::Extended(ops.into())),
                Operator::I32Add => ConstArith::I32Add,
                Operator::I32Sub => ConstArith::I32Sub,
                Operator::I32Mul => ConstArith::I32Mul,
                Operator::I64Add => ConstArith::I64Add,
                Operator::I64Sub => ConstArith::I64Sub,
                Operator::I64Mul => ConstArith::I64Mul,
                other => {
                    if ops.is_empty() {
                        ops.push(ConstOp::Push(first.clone()));
                    }
                    ops.push(ConstOp::Push(ConstInit::parse_value(other)?));
                    continue;
                }
            };
            if ops.is_empty() {
                ops.push(ConstOp::Push(first.clone()));
            }
            ops.push(ConstOp::Arith(arith));
        }
    }

    /// A constant expression operator that pushes one value.
    fn parse_value(op: Operator<'_>) -> Result<ConstInit, Error> {
        let init = match op {
            Operator::I32Const { value } => ConstInit::I32(value),
            Operator::I64Const { value } => ConstInit::I64(value),
            Operator::F32Const { value } => ConstInit::F32(value.bits()),
            Operator::F64Const { value } => ConstInit::F64(value.bits()),
            Operator::V128Const { value } => ConstInit::V128(value.i128() as u128),
            Operator::RefNull { .. } => ConstInit::RefNull,
            Operator::RefFunc { function_index } => ConstInit::RefFunc(function_index),
            Operator::GlobalGet { global_index } => ConstInit::GlobalGet(global_index),
            other => {
                return Err(Error::Unsupported(format!(
                    "constant expression operator {other:?}"
                )))
            }
        };
        Ok(init)
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
    Tag(u32),
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
    /// The memory index and offset, for an active segment.
    pub offset: Option<(u32, ConstInit)>,
    pub bytes: SharedBytes,
}

/// A function body waiting to be validated and compiled.
pub(crate) struct FunctionToCompile {
    /// The validator for the body.
    pub to_validate: FuncToValidate<ValidatorResources>,
    /// Where the body is in the binary.
    pub body: std::ops::Range<usize>,
}

/// Everything `parse` found.
#[derive(Default)]
pub(crate) struct ParsedModule {
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
    pub tag_types: Vec<TagType>,
    pub elems: Vec<ElemSegment>,
    pub data: Vec<DataSegment>,
    pub start: Option<u32>,
    pub names: Vec<Option<String>>,
    pub bodies: Vec<FunctionToCompile>,
}

fn table_type(t: &wasmparser::TableType, type_ids: &[u32]) -> Result<TableType, Error> {
    Ok(TableType {
        element: ValType::from_wasm(wasmparser::ValType::Ref(t.element_type), type_ids)?,
        minimum: t.initial,
        maximum: t.maximum,
        table64: t.table64,
    })
}

fn memory_type(m: &wasmparser::MemoryType) -> Result<MemoryType, Error> {
    if m.shared {
        return Err(Error::Unsupported("shared memories".into()));
    }
    Ok(MemoryType {
        minimum: m.initial,
        maximum: m.maximum,
        memory64: m.memory64,
    })
}

fn global_type(g: &wasmparser::GlobalType, type_ids: &[u32]) -> Result<GlobalType, Error> {
    Ok(GlobalType {
        content: ValType::from_wasm(g.content_type, type_ids)?,
        mutable: g.mutable,
    })
}

/// A reader of the function body at `range` of `binary`. `features` must be the ones the
/// module was parsed and validated with ([`crate::Config::wasm_features`], also in the
/// body's `FuncToValidate`), because the reader's interpretation of some encodings depends
/// on them (with multi-memory, bit 6 of a memarg's flags adds a memory index).
pub(crate) fn body_reader(
    binary: &[u8],
    range: std::ops::Range<usize>,
    features: WasmFeatures,
) -> wasmparser::FunctionBody<'_> {
    let start = range.start as u64;
    wasmparser::FunctionBody::new(wasmparser::BinaryReader::new_features(
        &binary[range],
        start,
        features,
    ))
}

/// Parses and validates every section of `binary` except the function bodies, which it
/// collects for validation and compilation.
pub(crate) fn parse(engine: &Engine, binary: &Arc<[u8]>) -> Result<ParsedModule, Error> {
    let features = engine.inner.config.wasm_features();
    let mut validator = Validator::new_with_features(features);
    let mut m = ParsedModule::default();
    let mut parser = Parser::new(0);
    parser.set_features(features);
    for payload in parser.parse_all(binary) {
        let payload = payload?;
        let valid = validator.payload(&payload)?;
        match &payload {
            Payload::TypeSection(reader) => m.type_section(engine, reader.clone())?,
            Payload::ImportSection(reader) => m.import_section(reader.clone())?,
            Payload::FunctionSection(reader) => {
                for t in reader.clone() {
                    m.info.functions.push(t?);
                }
            }
            Payload::TableSection(reader) => m.table_section(reader.clone())?,
            Payload::MemorySection(reader) => {
                check_memory_limits_encoding(binary, reader.range())?;
                m.memory_section(reader.clone())?
            }
            Payload::GlobalSection(reader) => m.global_section(reader.clone())?,
            Payload::TagSection(reader) => m.tag_section(reader.clone())?,
            Payload::ExportSection(reader) => m.export_section(reader.clone())?,
            Payload::StartSection { func, .. } => m.start = Some(*func),
            Payload::ElementSection(reader) => m.element_section(reader.clone())?,
            Payload::DataSection(reader) => m.data_section(binary, reader.clone())?,
            Payload::CustomSection(c) if c.name() == "name" => m.name_section(c),
            _ => {}
        }
        if let wasmparser::ValidPayload::Func(to_validate, body) = valid {
            let range = body.range();
            m.bodies.push(FunctionToCompile {
                to_validate,
                body: range.start as usize..range.end as usize,
            });
        }
    }
    m.info.compute_offsets();
    Ok(m)
}

impl ParsedModule {
    fn type_section(
        &mut self,
        engine: &Engine,
        reader: wasmparser::TypeSectionReader<'_>,
    ) -> Result<(), Error> {
        for rec in reader {
            let rec = rec?;
            // The validator runs with wasmparser's GC feature when function references are
            // on (see `Config::wasm_features`); of GC's type system only plain function
            // types (singleton recursion groups, final, no supertype) are supported.
            if rec.types().len() != 1 {
                return Err(Error::Unsupported(
                    "recursion groups of several types (GC)".into(),
                ));
            }
            for sub in rec.into_types() {
                if !sub.is_final || !sub.supertype_idxs.is_empty() || sub.composite_type.shared {
                    return Err(Error::Unsupported(
                        "declared subtypes and non-final types (GC)".into(),
                    ));
                }
                match &sub.composite_type.inner {
                    wasmparser::CompositeInnerType::Func(f) => {
                        let ty = FuncType::from_wasm(f, &self.info.type_ids)?;
                        self.info.type_ids.push(engine.signature_id(&ty));
                        self.info.types.push(f.clone());
                        self.types.push(ty);
                    }
                    _ => return Err(Error::Unsupported("struct and array types (GC)".into())),
                }
            }
        }
        Ok(())
    }

    fn import_section(&mut self, reader: wasmparser::ImportSectionReader<'_>) -> Result<(), Error> {
        for imp in reader.into_imports() {
            let imp = imp?;
            let ty = match imp.ty {
                TypeRef::Func(t) => {
                    self.info.functions.push(t);
                    self.info.num_imported_functions += 1;
                    let ty = self
                        .types
                        .get(t as usize)
                        .ok_or_else(|| Error::Compile(format!("import of unknown type {t}")))?;
                    ExternType::Func(ty.clone())
                }
                TypeRef::Table(t) => {
                    self.info.tables.push(t);
                    let tt = table_type(&t, &self.info.type_ids)?;
                    self.table_types.push(tt);
                    ExternType::Table(tt)
                }
                TypeRef::Memory(m) => {
                    self.info.memories.push(m);
                    let mt = memory_type(&m)?;
                    self.memory_types.push(mt);
                    ExternType::Memory(mt)
                }
                TypeRef::Global(g) => {
                    self.info.globals.push(g);
                    let gt = global_type(&g, &self.info.type_ids)?;
                    self.global_types.push(gt);
                    self.global_inits.push(ConstInit::RefNull);
                    ExternType::Global(gt)
                }
                TypeRef::Tag(t) => ExternType::Tag(self.tag_type(t.func_type_idx)?),
                _ => return Err(Error::Unsupported("this kind of import".into())),
            };
            self.imports.push(Import {
                module: imp.module.to_string(),
                name: imp.name.to_string(),
                ty,
            });
        }
        Ok(())
    }

    /// Adds a tag of type index `type_index`; returns its type.
    fn tag_type(&mut self, type_index: u32) -> Result<TagType, Error> {
        let ty = self
            .types
            .get(type_index as usize)
            .ok_or_else(|| Error::Compile(format!("tag of unknown type {type_index}")))?;
        let tag = TagType::new(ty.clone());
        self.info.tags.push(type_index);
        self.tag_types.push(tag.clone());
        Ok(tag)
    }

    fn tag_section(&mut self, reader: wasmparser::TagSectionReader<'_>) -> Result<(), Error> {
        for t in reader {
            self.tag_type(t?.func_type_idx)?;
        }
        Ok(())
    }

    fn table_section(&mut self, reader: wasmparser::TableSectionReader<'_>) -> Result<(), Error> {
        for t in reader {
            let t = t?;
            let init = match t.init {
                wasmparser::TableInit::RefNull => None,
                wasmparser::TableInit::Expr(e) => Some(ConstInit::parse(&e)?),
            };
            self.info.tables.push(t.ty);
            self.table_types
                .push(table_type(&t.ty, &self.info.type_ids)?);
            self.table_inits.push(init);
        }
        Ok(())
    }

    fn memory_section(&mut self, reader: wasmparser::MemorySectionReader<'_>) -> Result<(), Error> {
        for m in reader {
            let m = m?;
            self.info.memories.push(m);
            self.memory_types.push(memory_type(&m)?);
        }
        Ok(())
    }

    fn global_section(&mut self, reader: wasmparser::GlobalSectionReader<'_>) -> Result<(), Error> {
        for g in reader {
            let g = g?;
            self.info.globals.push(g.ty);
            self.global_types
                .push(global_type(&g.ty, &self.info.type_ids)?);
            self.global_inits.push(ConstInit::parse(&g.init_expr)?);
        }
        Ok(())
    }

    fn export_section(&mut self, reader: wasmparser::ExportSectionReader<'_>) -> Result<(), Error> {
        for e in reader {
            let e = e?;
            let idx = match e.kind {
                ExternalKind::Func | ExternalKind::FuncExact => ExportIndex::Func(e.index),
                ExternalKind::Table => ExportIndex::Table(e.index),
                ExternalKind::Memory => ExportIndex::Memory(e.index),
                ExternalKind::Global => ExportIndex::Global(e.index),
                ExternalKind::Tag => ExportIndex::Tag(e.index),
            };
            self.exports.push((e.name.to_string(), idx));
        }
        Ok(())
    }

    fn element_section(
        &mut self,
        reader: wasmparser::ElementSectionReader<'_>,
    ) -> Result<(), Error> {
        for e in reader {
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
            self.elems.push(ElemSegment {
                active,
                declared,
                items,
            });
        }
        Ok(())
    }

    fn data_section(
        &mut self,
        binary: &Arc<[u8]>,
        reader: wasmparser::DataSectionReader<'_>,
    ) -> Result<(), Error> {
        for d in reader {
            let d = d?;
            let offset = match d.kind {
                DataKind::Active {
                    memory_index,
                    offset_expr,
                } => Some((memory_index, ConstInit::parse(&offset_expr)?)),
                DataKind::Passive => None,
            };
            // A segment's bytes end its encoding; they stay in the shared binary.
            let start = (d.range.end as usize)
                .checked_sub(d.data.len())
                .ok_or_else(|| Error::Compile("data segment outside its section".into()))?;
            let bytes = SharedBytes::new(binary.clone(), start..start + d.data.len())
                .ok_or_else(|| Error::Compile("data segment outside its section".into()))?;
            self.data.push(DataSegment { offset, bytes });
        }
        Ok(())
    }

    /// Function names, which only label backtraces: a malformed name section is ignored.
    fn name_section(&mut self, section: &wasmparser::CustomSectionReader<'_>) {
        let reader = wasmparser::NameSectionReader::new(section.data_reader());
        for name in reader.into_iter().flatten() {
            if let wasmparser::Name::Function(map) = name {
                for n in map.into_iter().flatten() {
                    let i = n.index as usize;
                    if i < 1_000_000 {
                        if self.names.len() <= i {
                            self.names.resize(i + 1, None);
                        }
                        self.names[i] = Some(n.name.to_string());
                    }
                }
            }
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
