//! What a listing says about the wasm side: each operator's text-format line (from
//! wasmprinter, keyed by byte offset), each function's header line and export names.

use std::collections::HashMap;
use wasmparser::{ExternalKind, Parser, Payload, TypeRef};

/// The wasm text of a module, by byte offset.
pub(crate) struct WasmText {
    /// Offset -> text-format line (nesting indentation kept, the function's own removed).
    lines: HashMap<usize, String>,
    /// Function index -> names it is exported as.
    exports: HashMap<u32, Vec<String>>,
    /// Imported functions: (module, name), by function index.
    imported: Vec<(String, String)>,
}

impl WasmText {
    /// The export and import names of `wasm` (a module that validated); the operator
    /// lines come with [`WasmText::read_lines`].
    pub(crate) fn new(wasm: &[u8]) -> WasmText {
        let mut exports: HashMap<u32, Vec<String>> = HashMap::new();
        let mut imported = Vec::new();
        for payload in Parser::new(0).parse_all(wasm) {
            match payload {
                Ok(Payload::ImportSection(reader)) => {
                    for import in reader.into_imports().flatten() {
                        if let TypeRef::Func(_) = import.ty {
                            imported.push((import.module.to_string(), import.name.to_string()));
                        }
                    }
                }
                Ok(Payload::ExportSection(reader)) => {
                    for export in reader.into_iter().flatten() {
                        if export.kind == ExternalKind::Func {
                            exports
                                .entry(export.index)
                                .or_default()
                                .push(export.name.to_string());
                        }
                    }
                }
                Ok(Payload::CodeSectionStart { .. }) | Err(_) => break,
                Ok(_) => {}
            }
        }
        WasmText {
            lines: HashMap::new(),
            exports,
            imported,
        }
    }

    /// Prints the whole module with wasmprinter (its only interface; about as long as
    /// compiling it) to key each line by byte offset. If it cannot be printed, the listing
    /// falls back to wasmparser's names.
    /// Only lines inside `bodies` (sorted, disjoint body ranges, each with its header at
    /// its start) are kept.
    pub(crate) fn read_lines(&mut self, wasm: &[u8], bodies: &[std::ops::Range<usize>]) {
        let wanted = |offset: usize| {
            let i = bodies.partition_point(|b| b.end <= offset);
            bodies.get(i).is_some_and(|b| b.contains(&offset))
        };
        let mut storage = String::new();
        let mut config = wasmprinter::Config::new();
        config.name_unnamed(false);
        let Ok(printed) = config.offsets_and_lines(wasm, &mut storage) else {
            return;
        };
        for (offset, line) in printed {
            let offset = offset.and_then(|o| usize::try_from(o).ok());
            if let Some(offset) = offset.filter(|&o| wanted(o)) {
                let line = line.trim_end();
                // Function bodies sit two levels deep (module, func).
                let line = line.strip_prefix("    ").unwrap_or(line.trim_start());
                self.lines.entry(offset).or_insert_with(|| line.to_string());
            }
        }
    }

    /// The text of the operator at `offset` of a body ending at `body_end`: wasmprinter's
    /// line, else wasmparser's `Debug` form (`end` for the body's last operator, which the
    /// text format writes as `)`).
    pub(crate) fn operator(&self, wasm: &[u8], offset: usize, body_end: usize) -> String {
        match self.lines.get(&offset) {
            Some(line) if line.trim() == ")" => "end".to_string(),
            Some(line) => line.clone(),
            None => {
                let Some(bytes) = wasm.get(offset..body_end) else {
                    return "?".to_string();
                };
                let reader = wasmparser::BinaryReader::new(bytes, offset as u64);
                match wasmparser::OperatorsReader::new(reader).read() {
                    Ok(op) => format!("{op:?}"),
                    Err(_) => "?".to_string(),
                }
            }
        }
    }

    /// The `(func ...)` line of the function whose body starts at `body_start`.
    pub(crate) fn header(&self, body_start: usize) -> Option<&str> {
        let line = self.lines.get(&body_start)?.trim_start();
        line.starts_with("(func").then_some(line)
    }

    /// The names function `index` is exported as.
    pub(crate) fn exports(&self, index: u32) -> &[String] {
        self.exports.get(&index).map_or(&[], |v| v.as_slice())
    }

    /// `module.name` of imported function `index`.
    pub(crate) fn import(&self, index: u32) -> Option<String> {
        let (module, name) = self.imported.get(index as usize)?;
        Some(format!("{module}.{name}"))
    }
}
