//! The text of a listing: function headers, wasm operators with their disassembled code,
//! per-function sizes and the module summary.

use crate::disasm::{disassemble, Instruction};
use crate::wasm_text::WasmText;
use crate::{ExploreError, FuncSelector, ListingOptions};
use std::fmt::Write as _;
use wjit::{CodeListing, FunctionCode};

/// The functions `func` selects (all defined functions for `None`), in index order.
pub fn select<'a>(
    listing: &'a CodeListing,
    func: Option<&FuncSelector>,
) -> Result<Vec<&'a FunctionCode>, ExploreError> {
    select_with(listing, func, &WasmText::new(listing.wasm()))
}

fn select_with<'a>(
    listing: &'a CodeListing,
    func: Option<&FuncSelector>,
    text: &WasmText,
) -> Result<Vec<&'a FunctionCode>, ExploreError> {
    let found = match func {
        None => return Ok(listing.functions().iter().collect()),
        Some(FuncSelector::Index(i)) => {
            if *i < listing.num_imported_functions() {
                return Err(ExploreError::Imported {
                    index: *i,
                    name: text.import(*i).unwrap_or_else(|| "?".into()),
                });
            }
            listing.function(*i)
        }
        Some(FuncSelector::Name(name)) => {
            let functions = listing.functions();
            functions
                .iter()
                .find(|f| f.name() == Some(name.as_str()))
                .or_else(|| {
                    functions
                        .iter()
                        .find(|f| text.exports(f.index()).iter().any(|e| e == name))
                })
        }
    };
    match found {
        Some(f) => Ok(vec![f]),
        None => Err(ExploreError::NoSuchFunction {
            wanted: func.map(|f| f.to_string()).unwrap_or_default(),
            known: known_functions(listing, text),
        }),
    }
}

/// A short description of the defined functions, for errors.
fn known_functions(listing: &CodeListing, text: &WasmText) -> String {
    let first = listing.num_imported_functions();
    let count = listing.functions().len() as u32;
    if count == 0 {
        return "it defines no functions".to_string();
    }
    let mut names: Vec<String> = listing
        .functions()
        .iter()
        .filter_map(|f| {
            f.name()
                .or_else(|| text.exports(f.index()).first().map(String::as_str))
                .map(|n| format!("`{n}`"))
        })
        .collect();
    let more = names.len() > 10;
    names.truncate(10);
    let mut out = format!("defined functions: {first}..={}", first + count - 1);
    if !names.is_empty() {
        let _ = write!(out, "; names: {}", names.join(", "));
        if more {
            out.push_str(", ...");
        }
    }
    out
}

/// The disassembly of the selected functions, each operator followed by its code, then
/// the module summary.
pub fn disassembly(
    listing: &CodeListing,
    options: &ListingOptions,
) -> Result<String, ExploreError> {
    let mut text = WasmText::new(listing.wasm());
    let functions = select_with(listing, options.func.as_ref(), &text)?;
    let bodies: Vec<_> = functions.iter().map(|f| f.body_range()).collect();
    text.read_lines(listing.wasm(), &bodies);
    let mut out = String::new();
    for f in functions {
        function(&mut out, listing, f, &text, options.bytes);
        out.push('\n');
    }
    module_summary(&mut out, listing);
    Ok(out)
}

/// Each selected function's sizes, then the module summary.
pub fn summary(listing: &CodeListing, options: &ListingOptions) -> Result<String, ExploreError> {
    let text = WasmText::new(listing.wasm());
    let functions = select_with(listing, options.func.as_ref(), &text)?;
    let mut out = String::new();
    if !functions.is_empty() {
        let _ = writeln!(
            out,
            "{:>7} {:>10} {:>10}  name",
            "func", "wasm bytes", "code bytes"
        );
        for f in functions {
            let _ = writeln!(
                out,
                "{:>7} {:>10} {:>10}  {}",
                f.index(),
                f.body_range().len(),
                f.code().len(),
                display_name(f, &text)
            );
        }
    }
    module_summary(&mut out, listing);
    Ok(out)
}

/// `fib (export "fib")`, or `-` for an anonymous function that is not exported.
fn display_name(f: &FunctionCode, text: &WasmText) -> String {
    let mut name = f.name().map(str::to_string).unwrap_or_default();
    for e in text.exports(f.index()) {
        if !name.is_empty() {
            name.push(' ');
        }
        let _ = write!(name, "(export {e:?})");
    }
    if name.is_empty() {
        name.push('-');
    }
    name
}

fn function(
    out: &mut String,
    listing: &CodeListing,
    f: &FunctionCode,
    text: &WasmText,
    bytes: bool,
) {
    let target = listing.target();
    let name = f.name().map(|n| format!(" {n}")).unwrap_or_default();
    let exports: String = text
        .exports(f.index())
        .iter()
        .map(|e| format!(" (export {e:?})"))
        .collect();
    let _ = writeln!(
        out,
        ";; function {}{name}{exports}: {} bytes of wasm -> {} bytes of {target} code",
        f.index(),
        f.body_range().len(),
        f.code().len(),
    );
    if let Some(header) = text.header(f.body_range().start) {
        let _ = writeln!(out, "{header}");
    }
    // Direct calls are resolved when the code is placed: say where they go.
    let calls: Vec<(usize, String)> = f
        .direct_calls()
        .iter()
        .map(|&(at, callee)| {
            let name = listing
                .function(callee)
                .and_then(|c| c.name())
                .map(|n| format!(" {n}"))
                .unwrap_or_default();
            (at, format!("  ;; -> function {callee}{name}"))
        })
        .collect();
    let section = |out: &mut String, title: &str, range: std::ops::Range<usize>| {
        let instructions = disassemble(target, f.code(), range);
        instructions_under(out, title, &instructions, &calls, bytes);
    };
    section(out, "  ;; prologue", f.prologue());
    let body_end = f.body_range().end;
    for op in f.operators() {
        let op_text = text.operator(listing.wasm(), op.wasm_offset, body_end);
        let line = format!("  {:#06x}  {op_text}", op.wasm_offset);
        section(out, &line, op.code.clone());
    }
    if !f.out_of_line().is_empty() {
        section(out, "  ;; out of line: trap stubs", f.out_of_line());
    }
}

/// A wasm line and the instructions under it; `calls` are (target field offset, note).
fn instructions_under(
    out: &mut String,
    title: &str,
    instructions: &[Instruction],
    calls: &[(usize, String)],
    bytes: bool,
) {
    let _ = writeln!(out, "{title}");
    for ins in instructions {
        let _ = write!(out, "        {:>6x}:  ", ins.offset);
        if bytes {
            let hex: Vec<String> = ins.bytes.iter().map(|b| format!("{b:02x}")).collect();
            let _ = write!(out, "{:<24} ", hex.join(" "));
        }
        let end = ins.offset + ins.bytes.len();
        let note = calls
            .iter()
            .find(|(at, _)| (ins.offset..end).contains(at))
            .map_or("", |(_, note)| note.as_str());
        let _ = writeln!(out, "{}{note}", ins.text);
    }
}

fn module_summary(out: &mut String, listing: &CodeListing) {
    let defined = listing.functions().len();
    let imported = listing.num_imported_functions();
    let wasm_code = listing.wasm_code_size();
    let code = listing.code_size();
    let _ = write!(
        out,
        ";; module: {} ({defined} defined, {imported} imported); {} bytes of wasm, \
         {wasm_code} in function bodies -> {code} bytes of {} code",
        plural(defined + imported as usize, "function"),
        listing.wasm().len(),
        listing.target(),
    );
    if wasm_code > 0 {
        let _ = write!(out, " ({:.1}x)", code as f64 / wasm_code as f64);
    }
    let _ = writeln!(
        out,
        "; compiled in {:.2} ms",
        listing.compile_time().as_secs_f64() * 1e3
    );
}

/// `1 function`, `2 functions`.
fn plural(n: usize, what: &str) -> String {
    if n == 1 {
        format!("{n} {what}")
    } else {
        format!("{n} {what}s")
    }
}
