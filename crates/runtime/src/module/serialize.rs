//! Precompiled modules: [`Module::serialize`], [`Engine::precompile_module`] and the
//! `unsafe` [`Module::deserialize`], as in wasmtime.
//!
//! A precompiled module holds the original wasm binary (its sections are parsed again on
//! load, which is cheap; function bodies are neither validated nor compiled again) and the
//! [`CompiledFunction`] of every defined function. Generated code is position-independent
//! and engine-independent: direct calls are relocated at placement, everything else
//! (builtins, stubs, signature ids, tags) is reached through the vmctx.
//!
//! The format, all integers little-endian:
//!
//! ```text
//! magic            8 bytes  "\0wjit-aot"[..8]
//! format version   u32
//! wjit version     string   (u32 length + UTF-8 bytes): version + source hash
//! architecture     string   (`std::env::consts::ARCH`)
//! os               string
//! settings         u32 count, then (string name, u8 value) for every `Config` switch
//!                  that changes what is accepted or generated
//! cpu features     u32 count, then string names the code needs (x86-64: `avx`, ...)
//! payload length   u64
//! payload crc32    u32
//! payload:
//!   wasm binary    u64 length + bytes
//!   functions      u32 count, then for each defined function in index order:
//!                  frame size u32, code (u32 length + bytes), traps (u32 count, then pc u32,
//!                  trap code u8, wasm offset u32), call sites (count, (u32, u32)),
//!                  relocations (count, (offset u32, callee u32)), handler sites (count,
//!                  (u32, u32)), try regions (count, then parent u32 or u32::MAX, clauses:
//!                  count, then (tag offset u32 or u32::MAX, pad u32))
//! ```
//!
//! Every read is bounds-checked and every table is checked against the code it describes
//! (offsets inside the code, callees among the module's functions, sorted tables), so a
//! truncated or corrupted file is an error, never a panic or a stray write; the checksum
//! catches accidental corruption of the code bytes themselves, which cannot be verified.

use super::progress::Progress;
use super::schedule::{compile_all, ModuleFunctions};
use super::{parse_for, to_binary, Module};
use crate::engine::Engine;
use crate::Error;
use std::sync::Arc;
use wjit_compiler::TryRegion;
use wjit_compiler::{CatchClause, CompiledFunction, ModuleInfo, Relocation, TrapCode, TrapSite};

/// The first bytes of every precompiled module (never the start of a wasm binary or text).
const MAGIC: [u8; 8] = *b"\0wjitaot";
/// Bumped whenever the layout below changes.
const FORMAT_VERSION: u32 = 1;
/// The wjit build that wrote a file must be the one that reads it: code, the vmctx layout
/// and the stubs' conventions may change with any version, and with any source change
/// (the build id is a hash of the compiler's and runtime's sources, see `build.rs`).
const WJIT_VERSION: &str = concat!(env!("CARGO_PKG_VERSION"), "+", env!("WJIT_BUILD_ID"));

/// What [`Engine::detect_precompiled`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Precompiled {
    /// A module written by [`Module::serialize`] or [`Engine::precompile_module`].
    Module,
}

impl Engine {
    /// Compiles a module (binary wasm or text) ahead of time without placing it in memory,
    /// and returns it in the format [`Module::deserialize`] reads. Every function is
    /// validated and compiled, as with [`crate::Config::lazy_compilation`] off.
    pub fn precompile_module(&self, bytes: &[u8]) -> Result<Vec<u8>, Error> {
        let binary = to_binary(bytes)?;
        precompile(self, &binary, None)
    }

    /// [`Engine::precompile_module`], calling `progress(done, total)` as function bodies
    /// are compiled, as [`Module::new_with_progress`] does.
    pub fn precompile_module_with_progress(
        &self,
        bytes: &[u8],
        progress: &(dyn Fn(usize, usize) + Sync),
    ) -> Result<Vec<u8>, Error> {
        let binary = to_binary(bytes)?;
        precompile(self, &binary, Some(progress))
    }

    /// Whether `bytes` look like a precompiled module (only the magic bytes are checked;
    /// [`Module::deserialize`] checks the rest). Safe: nothing is loaded.
    pub fn detect_precompiled(&self, bytes: &[u8]) -> Option<Precompiled> {
        is_precompiled(bytes).then_some(Precompiled::Module)
    }
}

/// Whether `bytes` start like a precompiled module.
pub(super) fn is_precompiled(bytes: &[u8]) -> bool {
    bytes.starts_with(&MAGIC)
}

impl Module {
    /// Returns this module compiled ahead of time, in the format [`Module::deserialize`]
    /// reads (with an engine of the same configuration). Every function is compiled for
    /// the file, also those a lazily compiled module has not run yet.
    pub fn serialize(&self) -> Result<Vec<u8>, Error> {
        precompile(&self.inner.engine, self.inner.funcs.binary(), None)
    }

    /// Loads a module written by [`Module::serialize`] or [`Engine::precompile_module`],
    /// without compiling anything: its machine code is placed as it is.
    ///
    /// The file's format, wjit version, architecture, the engine settings that change
    /// generated code (proposals, fuel, epoch interruption, tail calls, float rounding,
    /// AVX) and the CPU features the code needs are checked, and every table is checked
    /// against the code; a mismatch or a damaged file is an [`Error::Compile`] that says
    /// what is wrong.
    ///
    /// # Safety
    ///
    /// `bytes` must come from [`Module::serialize`] or [`Engine::precompile_module`] of a
    /// trusted source. The machine code inside is run as it is: it cannot be verified, and
    /// code crafted (or damaged so that the checksum still matches) to do anything else
    /// makes this process do it.
    pub unsafe fn deserialize(engine: &Engine, bytes: impl AsRef<[u8]>) -> Result<Module, Error> {
        deserialize(engine, bytes.as_ref())
    }

    /// Loads a precompiled module file, as [`Module::deserialize`]. The file is mapped
    /// into memory while it is loaded (its code is copied out), not read into a buffer.
    ///
    /// # Safety
    ///
    /// As for [`Module::deserialize`]: the file must come from a trusted
    /// [`Module::serialize`] or [`Engine::precompile_module`] (e.g. `wjit compile`). It must
    /// also not be written or truncated while this runs.
    pub unsafe fn deserialize_file(
        engine: &Engine,
        path: impl AsRef<std::path::Path>,
    ) -> Result<Module, Error> {
        let path = path.as_ref();
        let io_error = |e: std::io::Error| {
            Error::Io(std::io::Error::new(
                e.kind(),
                format!("{}: {e}", path.display()),
            ))
        };
        let file = std::fs::File::open(path).map_err(io_error)?;
        let map = crate::sys::file_map::FileMap::new(&file).map_err(io_error)?;
        let bytes = map.as_ref().map_or(&[][..], |m| m.as_slice());
        deserialize(engine, bytes).map_err(|e| match e {
            Error::Compile(m) => Error::Compile(format!("{}: {m}", path.display())),
            other => other,
        })
    }
}

/// Compiles every function of `binary` with `engine`'s settings and writes the file.
fn precompile(
    engine: &Engine,
    binary: &[u8],
    progress: Option<&(dyn Fn(usize, usize) + Sync)>,
) -> Result<Vec<u8>, Error> {
    let parsed = parse_for(engine, &Arc::from(binary))?;
    let config = &engine.inner.config;
    let compiled = compile_all(
        &parsed.info,
        binary,
        &parsed.bodies,
        config.parallel_compilation,
        &Progress::new(parsed.bodies.len(), progress),
    )?;
    Ok(encode(engine, &parsed.info, binary, &compiled))
}

/// The settings that decide what a module compiles to, by name.
fn settings(engine: &Engine) -> Vec<(&'static str, bool)> {
    let c = &engine.inner.config;
    vec![
        ("simd", c.wasm_simd),
        ("relaxed-simd", c.wasm_relaxed_simd),
        ("multi-memory", c.wasm_multi_memory),
        ("extended-const", c.wasm_extended_const),
        ("memory64", c.wasm_memory64),
        ("function-references", c.wasm_function_references),
        ("tail-call", c.wasm_tail_call),
        ("exceptions", c.wasm_exceptions),
        ("legacy-exceptions", c.wasm_legacy_exceptions),
        ("epoch-interruption", c.epoch_interruption),
        ("consume-fuel", c.consume_fuel),
        ("software-float-rounding", c.software_float_rounding),
        ("x64-avx", c.x64_avx),
    ]
}

/// The CPU features code compiled with `info`'s settings needs beyond what
/// [`Engine::new`] requires of every CPU.
fn cpu_features(info: &ModuleInfo) -> Vec<&'static str> {
    let mut features = Vec::new();
    if cfg!(target_arch = "x86_64") {
        features.extend(["popcnt", "ssse3", "sse4.1", "sse4.2"]);
        if info.x64_avx {
            features.push("avx");
        }
    }
    features
}

/// Whether this CPU has `feature` (a name [`cpu_features`] writes); `None` for a name
/// this build does not know.
fn host_has(feature: &str) -> Option<bool> {
    #[cfg(target_arch = "x86_64")]
    {
        let present = match feature {
            "popcnt" => std::is_x86_feature_detected!("popcnt"),
            "ssse3" => std::is_x86_feature_detected!("ssse3"),
            "sse4.1" => std::is_x86_feature_detected!("sse4.1"),
            "sse4.2" => std::is_x86_feature_detected!("sse4.2"),
            "avx" => std::is_x86_feature_detected!("avx"),
            _ => return None,
        };
        Some(present)
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        let _ = feature;
        None
    }
}

fn encode(
    engine: &Engine,
    info: &ModuleInfo,
    binary: &[u8],
    compiled: &[(u32, CompiledFunction)],
) -> Vec<u8> {
    let mut payload = Writer::default();
    payload.bytes64(binary);
    payload.len(compiled.len());
    for (_, f) in compiled {
        encode_function(&mut payload, f);
    }
    let payload = payload.0;

    let mut out = Writer(Vec::with_capacity(payload.len() + 512));
    out.0.extend_from_slice(&MAGIC);
    out.u32(FORMAT_VERSION);
    out.str(WJIT_VERSION);
    out.str(std::env::consts::ARCH);
    out.str(std::env::consts::OS);
    let settings = settings(engine);
    out.len(settings.len());
    for (name, value) in settings {
        out.str(name);
        out.u8(value.into());
    }
    let features = cpu_features(info);
    out.len(features.len());
    for f in features {
        out.str(f);
    }
    out.u64(payload.len() as u64);
    out.u32(crc32fast::hash(&payload));
    out.0.extend_from_slice(&payload);
    out.0
}

fn encode_function(w: &mut Writer, f: &CompiledFunction) {
    w.u32(f.frame_size);
    w.len(f.code.len());
    w.0.extend_from_slice(&f.code);
    w.len(f.traps.len());
    for t in &f.traps {
        w.u32(t.pc);
        w.u8(t.code as u8);
        w.u32(t.wasm_offset);
    }
    w.pairs(&f.call_sites);
    w.len(f.relocations.len());
    for r in &f.relocations {
        w.u32(r.offset);
        w.u32(r.func_index);
    }
    w.pairs(&f.handler_sites);
    w.len(f.try_regions.len());
    for r in &f.try_regions {
        w.u32(r.parent.unwrap_or(u32::MAX));
        w.len(r.catches.len());
        for c in &r.catches {
            w.u32(c.tag_offset.unwrap_or(u32::MAX));
            w.u32(c.pad);
        }
    }
}

/// A clear error about a precompiled module.
fn bad(what: impl std::fmt::Display) -> Error {
    Error::Compile(format!("cannot load precompiled module: {what}"))
}

fn deserialize(engine: &Engine, bytes: &[u8]) -> Result<Module, Error> {
    let mut r = Reader::new(bytes);
    let features = check_header(engine, &mut r)?;
    let payload_len = r.u64()?;
    let checksum = r.u32()?;
    let payload = r.rest();
    if payload.len() as u64 != payload_len {
        return Err(bad(format!(
            "the payload is {} bytes, the header says {payload_len} (truncated or damaged file)",
            payload.len()
        )));
    }
    if crc32fast::hash(payload) != checksum {
        return Err(bad("checksum mismatch (damaged file)"));
    }
    let mut r = Reader::new(payload);
    let binary: Arc<[u8]> = Arc::from(r.bytes64()?);
    let mut parsed = parse_for(engine, &binary)
        .map_err(|e| bad(format!("its wasm binary does not load: {e}")))?;
    // The settings matched; the CPU features say whether the code uses AVX.
    parsed.info.x64_avx = features.contains(&"avx");
    let count = r.len()?;
    if count != parsed.bodies.len() {
        return Err(bad(format!(
            "{count} compiled functions for {} function bodies",
            parsed.bodies.len()
        )));
    }
    let first = parsed.info.num_imported_functions;
    let mut compiled = Vec::with_capacity(count);
    let mut codes = Vec::with_capacity(count);
    for i in 0..count as u32 {
        let index = first + i;
        let (f, code) = decode_function(&mut r, &parsed.info)
            .map_err(|e| bad(format!("function {index}: {e}")))?;
        compiled.push((index, f));
        codes.push(code);
    }
    if !r.rest().is_empty() {
        return Err(bad("trailing bytes after the last function"));
    }
    let names = Arc::new(std::mem::take(&mut parsed.names));
    let bodies = std::mem::take(&mut parsed.bodies);
    let funcs = ModuleFunctions::precompiled(
        binary,
        bodies,
        names,
        &compiled,
        &codes,
        engine.inner.profiler,
    )?;
    Ok(Module::assemble(engine, parsed, funcs))
}

/// Checks everything up to the payload: magic, versions, target, settings, CPU features;
/// returns the CPU features the code needs.
fn check_header<'a>(engine: &Engine, r: &mut Reader<'a>) -> Result<Vec<&'a str>, Error> {
    if r.take(MAGIC.len()).ok() != Some(&MAGIC[..]) {
        return Err(bad("not a wjit precompiled module (wrong magic bytes)"));
    }
    let version = r.u32()?;
    if version != FORMAT_VERSION {
        return Err(bad(format!(
            "format version {version}, this wjit reads version {FORMAT_VERSION}"
        )));
    }
    let wjit = r.str()?;
    if wjit != WJIT_VERSION {
        return Err(bad(format!(
            "written by wjit {wjit}, this is wjit {WJIT_VERSION} (compile it again with this build)"
        )));
    }
    let (arch, os) = (r.str()?, r.str()?);
    if arch != std::env::consts::ARCH || os != std::env::consts::OS {
        return Err(bad(format!(
            "compiled for {arch}-{os}, this is {}-{}",
            std::env::consts::ARCH,
            std::env::consts::OS
        )));
    }
    let ours = settings(engine);
    let count = r.len()?;
    let mut differ = Vec::new();
    let mut seen = 0;
    for _ in 0..count {
        let name = r.str()?;
        let value = match r.u8()? {
            0 => false,
            1 => true,
            v => return Err(bad(format!("setting {name} has value {v}"))),
        };
        match ours.iter().find(|(n, _)| *n == name) {
            Some(&(_, v)) if v == value => seen += 1,
            Some(&(_, v)) => {
                seen += 1;
                differ.push(format!("{name} (module: {}, engine: {})", on(value), on(v)));
            }
            None => differ.push(format!("{name} (unknown to this wjit)")),
        }
    }
    if seen != ours.len() && differ.is_empty() {
        differ.push("the list of settings".into());
    }
    if !differ.is_empty() {
        return Err(bad(format!(
            "compiled with other engine settings: {}",
            differ.join(", ")
        )));
    }
    let mut features = Vec::new();
    for _ in 0..r.len()? {
        let feature = r.str()?;
        features.push(feature);
        match host_has(feature) {
            Some(true) => {}
            Some(false) => {
                return Err(bad(format!(
                    "its code needs the CPU feature {feature}, which this CPU lacks"
                )))
            }
            None => {
                return Err(bad(format!(
                    "its code needs an unknown CPU feature {feature}"
                )))
            }
        }
    }
    Ok(features)
}

fn on(b: bool) -> &'static str {
    if b {
        "on"
    } else {
        "off"
    }
}

/// Reads one function and checks its tables against its code and the module. The code
/// bytes are returned apart, borrowed from the file, to be copied once, into place (the
/// function's own `code` stays empty).
fn decode_function<'a>(
    r: &mut Reader<'a>,
    info: &ModuleInfo,
) -> Result<(CompiledFunction, &'a [u8]), Error> {
    let frame_size = r.u32()?;
    let code_len = r.len()?;
    let code = r.take(code_len)?;
    let len = code.len() as u64;
    // Offsets of instructions are inside the code; return addresses and pads may be at its
    // end at most.
    let inside = |pc: u32, what: &str| -> Result<u32, Error> {
        if u64::from(pc) < len {
            Ok(pc)
        } else {
            Err(bad(format!(
                "{what} at {pc} outside the code ({len} bytes)"
            )))
        }
    };
    let mut traps = Vec::new();
    for _ in 0..r.len()? {
        let pc = inside(r.u32()?, "trap site")?;
        let code = r.u8()?;
        let code = TrapCode::from_u8(code).ok_or_else(|| bad(format!("trap code {code}")))?;
        traps.push(TrapSite {
            pc,
            code,
            wasm_offset: r.u32()?,
        });
    }
    check_sorted(traps.iter().map(|t| t.pc), "trap sites")?;
    let call_sites = r.pairs()?;
    for &(ret, _) in &call_sites {
        if u64::from(ret) > len {
            return Err(bad(format!("call site {ret} outside the code")));
        }
    }
    check_sorted(call_sites.iter().map(|c| c.0), "call sites")?;
    let mut relocations = Vec::new();
    for _ in 0..r.len()? {
        let offset = r.u32()?;
        let func_index = r.u32()?;
        if u64::from(offset) + 4 > len {
            return Err(bad(format!("relocation at {offset} outside the code")));
        }
        if func_index < info.num_imported_functions || func_index as usize >= info.functions.len() {
            return Err(bad(format!(
                "relocation to function {func_index}, not defined"
            )));
        }
        relocations.push(Relocation { offset, func_index });
    }
    let handler_sites = r.pairs()?;
    check_sorted(handler_sites.iter().map(|h| h.0), "handler sites")?;
    let mut try_regions = Vec::new();
    for index in 0..r.len()? as u32 {
        let parent = match r.u32()? {
            u32::MAX => None,
            p if p < index => Some(p),
            p => return Err(bad(format!("try region {index} has parent {p}"))),
        };
        let mut catches = Vec::new();
        for _ in 0..r.len()? {
            let tag_offset = match r.u32()? {
                u32::MAX => None,
                t => Some(tag_offset(info, t)?),
            };
            let pad = inside(r.u32()?, "landing pad")?;
            catches.push(CatchClause { tag_offset, pad });
        }
        try_regions.push(TryRegion { parent, catches });
    }
    for &(ret, region) in &handler_sites {
        if u64::from(ret) > len || region as usize >= try_regions.len() {
            return Err(bad(format!(
                "handler site {ret} (region {region}) out of range"
            )));
        }
    }
    // The unwinder restores the stack pointer from it: at least not absurd.
    if frame_size > (1 << 30) {
        return Err(bad(format!("frame size {frame_size}")));
    }
    let f = CompiledFunction {
        code: Vec::new(),
        traps,
        call_sites,
        relocations,
        frame_size,
        handler_sites,
        try_regions,
        // Listings only; precompiled files do not keep them.
        op_offsets: Vec::new(),
    };
    Ok((f, code))
}

/// `offset` if it is the vmctx slot of one of the module's tags (what a catch clause
/// compares with).
fn tag_offset(info: &ModuleInfo, offset: u32) -> Result<u32, Error> {
    let o = &info.offsets;
    let valid = (0..o.num_tags).any(|i| i64::from(o.tag_ptr(i)) == i64::from(offset));
    if valid {
        Ok(offset)
    } else {
        Err(bad(format!("catch clause with tag slot {offset}")))
    }
}

fn check_sorted(keys: impl Iterator<Item = u32>, what: &str) -> Result<(), Error> {
    let mut last = None;
    for k in keys {
        if last.is_some_and(|l| l > k) {
            return Err(bad(format!("{what} not sorted")));
        }
        last = Some(k);
    }
    Ok(())
}

/// A little-endian writer.
#[derive(Default)]
struct Writer(Vec<u8>);

impl Writer {
    fn u8(&mut self, v: u8) {
        self.0.push(v);
    }
    fn u32(&mut self, v: u32) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    fn u64(&mut self, v: u64) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    /// A count or length (`u32`; nothing the compiler makes comes near 4 Gi items).
    fn len(&mut self, n: usize) {
        self.u32(u32::try_from(n).unwrap_or(u32::MAX));
    }
    fn str(&mut self, s: &str) {
        self.len(s.len());
        self.0.extend_from_slice(s.as_bytes());
    }
    fn bytes64(&mut self, b: &[u8]) {
        self.u64(b.len() as u64);
        self.0.extend_from_slice(b);
    }
    fn pairs(&mut self, pairs: &[(u32, u32)]) {
        self.len(pairs.len());
        for &(a, b) in pairs {
            self.u32(a);
            self.u32(b);
        }
    }
}

/// A bounds-checked little-endian reader.
struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn new(bytes: &'a [u8]) -> Reader<'a> {
        Reader { bytes, pos: 0 }
    }
    fn take(&mut self, n: usize) -> Result<&'a [u8], Error> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|&end| end <= self.bytes.len())
            .ok_or_else(|| bad(format!("truncated at byte {}", self.pos)))?;
        let b = &self.bytes[self.pos..end];
        self.pos = end;
        Ok(b)
    }
    fn rest(&mut self) -> &'a [u8] {
        let b = &self.bytes[self.pos.min(self.bytes.len())..];
        self.pos = self.bytes.len();
        b
    }
    fn u8(&mut self) -> Result<u8, Error> {
        Ok(self.take(1)?[0])
    }
    fn u32(&mut self) -> Result<u32, Error> {
        let b = self.take(4)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }
    fn u64(&mut self) -> Result<u64, Error> {
        let lo = u64::from(self.u32()?);
        let hi = u64::from(self.u32()?);
        Ok(lo | hi << 32)
    }
    /// A count or length; larger than the bytes left means a damaged file (every item
    /// takes at least one byte), which is refused before anything is allocated for it.
    fn len(&mut self) -> Result<usize, Error> {
        let n = self.u32()? as usize;
        if n > self.bytes.len() - self.pos {
            return Err(bad(format!("length {n} at byte {} past the end", self.pos)));
        }
        Ok(n)
    }
    fn str(&mut self) -> Result<&'a str, Error> {
        let n = self.len()?;
        std::str::from_utf8(self.take(n)?).map_err(|_| bad("a name is not UTF-8"))
    }
    fn bytes64(&mut self) -> Result<&'a [u8], Error> {
        let n = usize::try_from(self.u64()?).map_err(|_| bad("length out of range"))?;
        self.take(n)
    }
    fn pairs(&mut self) -> Result<Vec<(u32, u32)>, Error> {
        let n = self.len()?;
        (0..n).map(|_| Ok((self.u32()?, self.u32()?))).collect()
    }
}
