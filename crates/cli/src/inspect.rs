//! `wjit inspect FILE` (alias `info`): what a module imports and exports (with types), its
//! memories, tables, globals, tags, start function, functions, custom sections and the
//! proposals it uses, and whether wjit accepts it. Read with wasmparser, so modules wjit
//! cannot run (threads, GC, ...) can be inspected too.

use super::{apply_wasm_options, Failure};
use clap::Args;
use std::fmt::Write as _;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use wasmparser::{
    CompositeInnerType, ExternalKind, FuncType, GlobalType, MemoryType, Parser, Payload, TableType,
    TypeRef, Validator, WasmFeatures,
};
use wjit::{Config, Engine, Module};

#[derive(Args)]
pub(crate) struct InspectArgs {
    /// Proposal switches for the closing `wjit:` line, as for `wjit run` (the description
    /// itself accepts every proposal wasmparser knows)
    #[arg(short = 'W', long = "wasm", value_name = "NAME[=y|n]")]
    wasm: Vec<String>,

    /// The module: binary WebAssembly (.wasm) or text format (.wat)
    #[arg(value_name = "FILE")]
    file: PathBuf,
}

/// Proposals whose use is detected, with the wasmparser features that switch each off
/// (its parts and the proposals built on it go too); the first seven are in wasm 2.0.
const PROPOSALS: &[(&str, WasmFeatures)] = &[
    ("mutable-global", WasmFeatures::MUTABLE_GLOBAL),
    ("sign-extension", WasmFeatures::SIGN_EXTENSION),
    (
        "nontrapping-float-to-int",
        WasmFeatures::SATURATING_FLOAT_TO_INT,
    ),
    ("multi-value", WasmFeatures::MULTI_VALUE),
    (
        "bulk-memory",
        WasmFeatures::BULK_MEMORY.union(WasmFeatures::BULK_MEMORY_OPT),
    ),
    (
        "reference-types",
        WasmFeatures::REFERENCE_TYPES
            .union(WasmFeatures::CALL_INDIRECT_OVERLONG)
            .union(WasmFeatures::FUNCTION_REFERENCES)
            .union(WasmFeatures::GC),
    ),
    ("simd", WasmFeatures::SIMD.union(WasmFeatures::RELAXED_SIMD)),
    ("relaxed-simd", WasmFeatures::RELAXED_SIMD),
    ("multi-memory", WasmFeatures::MULTI_MEMORY),
    ("extended-const", WasmFeatures::EXTENDED_CONST),
    ("memory64", WasmFeatures::MEMORY64),
    ("tail-call", WasmFeatures::TAIL_CALL),
    (
        "function-references",
        WasmFeatures::FUNCTION_REFERENCES.union(WasmFeatures::GC),
    ),
    ("gc", WasmFeatures::GC),
    ("exceptions", WasmFeatures::EXCEPTIONS),
    ("legacy-exceptions", WasmFeatures::LEGACY_EXCEPTIONS),
    (
        "threads",
        WasmFeatures::THREADS.union(WasmFeatures::SHARED_EVERYTHING_THREADS),
    ),
    ("wide-arithmetic", WasmFeatures::WIDE_ARITHMETIC),
    ("custom-page-sizes", WasmFeatures::CUSTOM_PAGE_SIZES),
];

/// How many of `PROPOSALS` are part of WebAssembly 2.0.
const WASM2_PROPOSALS: usize = 7;

/// Every core-wasm proposal wasmparser can validate (no component model).
fn all_core_features() -> WasmFeatures {
    WasmFeatures::all()
        .difference(WasmFeatures::COMPONENT_MODEL)
        .difference(WasmFeatures::CM_VALUES)
        .difference(WasmFeatures::CM_NESTED_NAMES)
}

pub(crate) fn inspect(args: &InspectArgs) -> Result<u8, Failure> {
    let path = &args.file;
    let bytes = std::fs::read(path)
        .map_err(|e| Failure::usage(format!("cannot read {}: {e}", path.display())))?;
    let wasm = if bytes.starts_with(b"\0asm") {
        bytes
    } else {
        wat::parse_bytes(&bytes)
            .map_err(|e| Failure::usage(format!("{}: {e}", path.display())))?
            .into_owned()
    };
    let features = all_core_features();
    Validator::new_with_features(features)
        .validate_all(&wasm)
        .map_err(|e| {
            Failure::usage(format!(
                "{}: invalid module: {} (at byte offset {:#x})",
                path.display(),
                e.message(),
                e.offset()
            ))
        })?;
    let mut out = describe(path, &wasm, features)
        .map_err(|e| Failure::usage(format!("{}: {e}", path.display())))?;

    let mut config = Config::new();
    apply_wasm_options(&mut config, &args.wasm).map_err(Failure::usage)?;
    let engine = Engine::new(&config).map_err(|e| Failure::usage(e.to_string()))?;
    let _ = match Module::new(&engine, &wasm) {
        Ok(_) => writeln!(
            out,
            "wjit:      accepts it (every function body validated with these -W settings)"
        ),
        Err(e) => writeln!(
            out,
            "wjit:      rejects it: {}",
            super::one_line(&e.to_string())
        ),
    };
    let mut stdout = std::io::stdout().lock();
    match stdout
        .write_all(out.as_bytes())
        .and_then(|()| stdout.flush())
    {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => {
            Err(Failure::usage(format!("cannot write: {e}")))
        }
        _ => Ok(0),
    }
}

/// The module's sections, as collected by `describe`.
#[derive(Default)]
struct Sections {
    types: Vec<Option<FuncType>>,
    /// Type index of every function (imported first).
    funcs: Vec<u32>,
    imported_funcs: u32,
    imports: Vec<String>,
    memories: Vec<(MemoryType, Option<String>)>,
    tables: Vec<(TableType, Option<String>)>,
    globals: Vec<(GlobalType, Option<String>)>,
    tags: Vec<(u32, Option<String>)>,
    exports: Vec<(String, ExternalKind, u32)>,
    start: Option<u32>,
    customs: Vec<(String, usize)>,
    code_bytes: usize,
    data_segments: u32,
    elem_segments: u32,
    names: Vec<(u32, String)>,
}

impl Sections {
    fn read(
        wasm: &[u8],
        features: WasmFeatures,
    ) -> Result<Sections, wasmparser::BinaryReaderError> {
        let mut s = Sections::default();
        let mut parser = Parser::new(0);
        parser.set_features(features);
        for payload in parser.parse_all(wasm) {
            match payload? {
                Payload::TypeSection(reader) => {
                    for rec in reader {
                        for sub in rec?.into_types() {
                            s.types.push(match sub.composite_type.inner {
                                CompositeInnerType::Func(f) => Some(f),
                                _ => None,
                            });
                        }
                    }
                }
                Payload::ImportSection(reader) => {
                    for import in reader.into_imports() {
                        let import = import?;
                        let from = Some(format!("{:?} {:?}", import.module, import.name));
                        let ty = match import.ty {
                            TypeRef::Func(t) | TypeRef::FuncExact(t) => {
                                s.funcs.push(t);
                                s.imported_funcs += 1;
                                s.func_type_text(t)
                            }
                            TypeRef::Memory(m) => {
                                s.memories.push((m, from));
                                memory_text(&m)
                            }
                            TypeRef::Table(t) => {
                                s.tables.push((t, from));
                                table_text(&t)
                            }
                            TypeRef::Global(g) => {
                                s.globals.push((g, from));
                                global_text(&g)
                            }
                            TypeRef::Tag(t) => {
                                s.tags.push((t.func_type_idx, from));
                                tag_text(&s.func_type_text(t.func_type_idx))
                            }
                        };
                        s.imports
                            .push(format!("{:?} {:?}  {ty}", import.module, import.name));
                    }
                }
                Payload::FunctionSection(reader) => {
                    for t in reader {
                        s.funcs.push(t?);
                    }
                }
                Payload::MemorySection(reader) => {
                    for m in reader {
                        s.memories.push((m?, None));
                    }
                }
                Payload::TableSection(reader) => {
                    for t in reader {
                        s.tables.push((t?.ty, None));
                    }
                }
                Payload::GlobalSection(reader) => {
                    for g in reader {
                        s.globals.push((g?.ty, None));
                    }
                }
                Payload::TagSection(reader) => {
                    for t in reader {
                        s.tags.push((t?.func_type_idx, None));
                    }
                }
                Payload::ExportSection(reader) => {
                    for e in reader {
                        let e = e?;
                        s.exports.push((e.name.to_string(), e.kind, e.index));
                    }
                }
                Payload::StartSection { func, .. } => s.start = Some(func),
                Payload::DataSection(reader) => s.data_segments = reader.count(),
                Payload::ElementSection(reader) => s.elem_segments = reader.count(),
                Payload::CodeSectionEntry(body) => {
                    let range = body.range();
                    s.code_bytes += (range.end - range.start) as usize;
                }
                Payload::CustomSection(c) => {
                    s.customs.push((c.name().to_string(), c.data().len()));
                    if c.name() == "name" {
                        s.read_names(&c);
                    }
                }
                _ => {}
            }
        }
        Ok(s)
    }

    /// Function names from the name section (a malformed one is ignored).
    fn read_names(&mut self, section: &wasmparser::CustomSectionReader<'_>) {
        let reader = wasmparser::NameSectionReader::new(section.data_reader());
        for name in reader.into_iter().flatten() {
            if let wasmparser::Name::Function(map) = name {
                for n in map.into_iter().flatten() {
                    self.names.push((n.index, n.name.to_string()));
                }
            }
        }
    }

    fn func_type_text(&self, type_index: u32) -> String {
        match self.types.get(type_index as usize) {
            Some(Some(f)) => f.to_string(),
            _ => format!("(type {type_index})"),
        }
    }

    fn func_name(&self, index: u32) -> Option<&str> {
        self.names
            .iter()
            .find(|(i, _)| *i == index)
            .map(|(_, n)| n.as_str())
    }

    /// The exports of item `index` of `kind`, as ` (export "a") (export "b")`.
    fn exported_as(&self, kind: ExternalKind, index: u32) -> String {
        self.exports
            .iter()
            .filter(|(_, k, i)| *k == kind && *i == index)
            .map(|(n, _, _)| format!(" (export {n:?})"))
            .collect()
    }
}

fn memory_text(m: &MemoryType) -> String {
    let mut t = String::from("(memory");
    if m.memory64 {
        t.push_str(" i64");
    }
    let _ = write!(t, " {}", m.initial);
    if let Some(max) = m.maximum {
        let _ = write!(t, " {max}");
    }
    if m.shared {
        t.push_str(" shared");
    }
    if let Some(log2) = m.page_size_log2 {
        let _ = write!(t, " (pagesize {})", 1u64 << log2.min(63));
    }
    t.push(')');
    t
}

fn table_text(t: &TableType) -> String {
    let mut s = String::from("(table");
    if t.table64 {
        s.push_str(" i64");
    }
    let _ = write!(s, " {}", t.initial);
    if let Some(max) = t.maximum {
        let _ = write!(s, " {max}");
    }
    let _ = write!(s, " {})", t.element_type);
    s
}

/// A tag's type, `(tag (param i32))`, from its function type's text.
fn tag_text(func_type: &str) -> String {
    match func_type.strip_prefix("(func") {
        Some(rest) => format!("(tag{rest}"),
        None => format!("(tag {func_type})"),
    }
}

fn global_text(g: &GlobalType) -> String {
    if g.mutable {
        format!("(global (mut {}))", g.content_type)
    } else {
        format!("(global {})", g.content_type)
    }
}

/// Where an item comes from: ` (import "m" "n")` or nothing.
fn origin(from: &Option<String>) -> String {
    from.as_ref()
        .map(|f| format!(" (import {f})"))
        .unwrap_or_default()
}

/// The proposals the module uses: those without which it no longer validates.
fn proposals_used(wasm: &[u8], features: WasmFeatures) -> Vec<&'static str> {
    PROPOSALS
        .iter()
        .filter(|(_, off)| {
            Validator::new_with_features(features.difference(*off))
                .validate_all(wasm)
                .is_err()
        })
        .map(|(name, _)| *name)
        .collect()
}

fn describe(
    path: &Path,
    wasm: &[u8],
    features: WasmFeatures,
) -> Result<String, wasmparser::BinaryReaderError> {
    let s = Sections::read(wasm, features)?;
    let mut out = String::new();
    let o = &mut out;
    let _ = writeln!(
        o,
        "file:      {} ({} bytes of wasm)",
        path.display(),
        wasm.len()
    );
    let defined = s.funcs.len() as u32 - s.imported_funcs;
    let _ = writeln!(
        o,
        "functions: {} ({} imported, {defined} defined; {} bytes of function bodies)",
        s.funcs.len(),
        s.imported_funcs,
        s.code_bytes
    );
    list(o, "imports", s.imports.iter().cloned());
    let exports = s.exports.iter().map(|(name, kind, index)| {
        let what = match kind {
            ExternalKind::Func | ExternalKind::FuncExact => {
                let ty = s.funcs.get(*index as usize).copied().unwrap_or(u32::MAX);
                let name = s
                    .func_name(*index)
                    .map(|n| format!(" ${n}"))
                    .unwrap_or_default();
                format!("func {index}{name} {}", s.func_type_text(ty))
            }
            ExternalKind::Memory => format!("memory {index}"),
            ExternalKind::Table => format!("table {index}"),
            ExternalKind::Global => format!("global {index}"),
            ExternalKind::Tag => format!("tag {index}"),
        };
        format!("{name:?}  {what}")
    });
    list(o, "exports", exports);
    let item = |kind: ExternalKind, i: usize, text: String, from: &Option<String>| {
        format!(
            "{i}: {text}{}{}",
            origin(from),
            s.exported_as(kind, i as u32)
        )
    };
    let memories = s.memories.iter().enumerate().map(|(i, (m, from))| {
        let bits = if m.memory64 { "64-bit" } else { "32-bit" };
        let shared = if m.shared { ", shared" } else { "" };
        let text = format!("{} ({bits}{shared})", memory_text(m));
        item(ExternalKind::Memory, i, text, from)
    });
    list(o, "memories", memories);
    let tables = s
        .tables
        .iter()
        .enumerate()
        .map(|(i, (t, from))| item(ExternalKind::Table, i, table_text(t), from));
    list(o, "tables", tables);
    let globals = s
        .globals
        .iter()
        .enumerate()
        .map(|(i, (g, from))| item(ExternalKind::Global, i, global_text(g), from));
    list(o, "globals", globals);
    let tags =
        s.tags.iter().enumerate().map(|(i, (t, from))| {
            item(ExternalKind::Tag, i, tag_text(&s.func_type_text(*t)), from)
        });
    list(o, "tags", tags);
    let _ = match s.start {
        Some(f) => {
            let name = s.func_name(f).map(|n| format!(" ${n}")).unwrap_or_default();
            writeln!(o, "start:     function {f}{name}")
        }
        None => writeln!(o, "start:     none"),
    };
    let _ = writeln!(
        o,
        "segments:  {} data, {} element",
        s.data_segments, s.elem_segments
    );
    let customs = s
        .customs
        .iter()
        .map(|(name, len)| format!("{name:?} ({len} bytes)"));
    list(o, "custom sections", customs);
    let used = proposals_used(wasm, features);
    let (wasm2, later): (Vec<_>, Vec<_>) = used
        .iter()
        .partition(|name| PROPOSALS[..WASM2_PROPOSALS].iter().any(|(p, _)| p == *name));
    let join = |v: &[&&str]| {
        if v.is_empty() {
            "none".to_string()
        } else {
            v.iter().map(|s| **s).collect::<Vec<_>>().join(", ")
        }
    };
    let _ = writeln!(
        o,
        "proposals: {} (beyond wasm 2.0); wasm 2.0 features: {}",
        join(&later),
        join(&wasm2)
    );
    let _ = writeln!(
        o,
        "           (found by validating the module again with each proposal switched off)"
    );
    Ok(out)
}

/// `title:` and one indented line per item, or `title: none`.
fn list(out: &mut String, title: &str, items: impl Iterator<Item = String>) {
    let items: Vec<String> = items.collect();
    if items.is_empty() {
        let _ = writeln!(out, "{:<10} none", format!("{title}:"));
        return;
    }
    let _ = writeln!(out, "{title}:");
    for item in items {
        let _ = writeln!(out, "  {item}");
    }
}
