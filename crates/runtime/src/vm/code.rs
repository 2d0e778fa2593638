//! Placing compiled code in executable memory, and the registry of placed code: which pcs
//! may fault and how (for the signal handler), and which function and wasm offset a pc
//! belongs to (for backtraces).

use crate::error::{FrameInfo, TrapCode};
use crate::sys::code_memory::CodeMemory;
use crate::sys::signals::{self, CodeRegistration, TrapLookup};
use crate::Error;
use std::sync::{Arc, RwLock};

/// Signal-handler lookup table of one module's code: which pcs may fault and how.
pub(crate) struct CodeTraps {
    start: usize,
    /// (pc offset, trap code), sorted by pc.
    faults: Vec<(u32, u8)>,
}

impl TrapLookup for CodeTraps {
    fn trap_code_at(&self, pc: usize) -> Option<u8> {
        let off = u32::try_from(pc.checked_sub(self.start)?).ok()?;
        let i = self.faults.binary_search_by_key(&off, |f| f.0).ok()?;
        Some(self.faults[i].1)
    }
}

/// Where a module's functions, trap sites and call sites are, for backtraces.
pub(crate) struct CodeInfo {
    start: usize,
    end: usize,
    /// (start offset, end offset, function index), sorted.
    functions: Vec<(u32, u32, u32)>,
    /// (pc offset, wasm offset) of trap sites, sorted by pc.
    sites: Vec<(u32, u32)>,
    /// (return address offset, wasm offset) of calls, sorted.
    calls: Vec<(u32, u32)>,
    /// Function names from the name section, by function index.
    names: Arc<Vec<Option<String>>>,
}

static CODE_INFO: RwLock<Vec<Arc<CodeInfo>>> = RwLock::new(Vec::new());

pub(crate) fn is_wasm_pc(pc: usize) -> bool {
    match CODE_INFO.try_read() {
        Ok(all) => all.iter().any(|i| i.start <= pc && pc < i.end),
        Err(_) => false,
    }
}

/// Turns the recorded pcs of a trap into frames (pcs outside wasm code are left out).
pub(crate) fn symbolize(pcs: &[usize]) -> Vec<FrameInfo> {
    let Ok(all) = CODE_INFO.read() else {
        return Vec::new();
    };
    let mut frames = Vec::new();
    for (i, &pc) in pcs.iter().enumerate() {
        let Some(info) = all.iter().find(|c| c.start <= pc && pc < c.end) else {
            continue;
        };
        let off = (pc - info.start) as u32;
        let Some(&(_, _, func)) = info
            .functions
            .iter()
            .find(|(s, e, _)| *s <= off && off < *e)
        else {
            continue;
        };
        // The innermost pc is a trap site; the others are return addresses of calls.
        let table = if i == 0 { &info.sites } else { &info.calls };
        let wasm_offset = table
            .binary_search_by_key(&off, |s| s.0)
            .ok()
            .map(|k| table[k].1);
        frames.push(FrameInfo {
            func_index: func,
            func_name: info.names.get(func as usize).cloned().flatten(),
            wasm_offset,
        });
    }
    frames
}

/// A module's placed code: executable memory plus its registrations.
pub(crate) struct ModuleCode {
    // Fields drop in order: the registration must go before the memory is unmapped, or
    // another thread may map and register the same addresses in between.
    _registration: CodeRegistration,
    _code: CodeMemory,
    info: Arc<CodeInfo>,
}

impl ModuleCode {
    /// Places compiled functions (`(function index, code, traps)`) in executable memory.
    pub fn new(
        functions: &[(u32, wjit_compiler::CompiledFunction)],
        names: Arc<Vec<Option<String>>>,
    ) -> Result<(ModuleCode, Vec<usize>), Error> {
        let mut blob = Vec::new();
        let mut offsets = Vec::with_capacity(functions.len());
        let mut faults = Vec::new();
        let mut sites = Vec::new();
        let mut calls = Vec::new();
        let mut ranges = Vec::new();
        for (index, f) in functions {
            while blob.len() % 16 != 0 {
                blob.push(0xCC);
            }
            let start = blob.len() as u32;
            offsets.push(blob.len());
            blob.extend_from_slice(&f.code);
            ranges.push((start, blob.len() as u32, *index));
            for &(ret, wasm) in &f.call_sites {
                calls.push((start + ret, wasm));
            }
            for t in &f.traps {
                let pc = start + t.pc;
                sites.push((pc, t.wasm_offset));
                if t.code == TrapCode::MemoryOutOfBounds {
                    faults.push((pc, t.code as u8));
                }
            }
        }
        if blob.is_empty() {
            blob.push(0xCC);
        }
        let code = CodeMemory::new(&blob)?;
        let start = code.as_ptr() as usize;
        let end = start + blob.len();
        faults.sort_unstable();
        sites.sort_unstable();
        calls.sort_unstable();
        let registration =
            signals::register_code(start, end, Arc::new(CodeTraps { start, faults }));
        let info = Arc::new(CodeInfo {
            start,
            end,
            functions: ranges,
            sites,
            calls,
            names,
        });
        if let Ok(mut all) = CODE_INFO.write() {
            all.push(info.clone());
        }
        let addrs = offsets.iter().map(|o| start + o).collect();
        Ok((
            ModuleCode {
                _registration: registration,
                _code: code,
                info,
            },
            addrs,
        ))
    }
}

impl ModuleCode {
    /// Places lazy trampolines (they never fault and are not wasm frames); returns the code
    /// and its start address.
    pub fn trampolines(code: &[u8]) -> Result<(ModuleCode, usize), Error> {
        let bytes = if code.is_empty() { &[0xCC][..] } else { code };
        let mem = CodeMemory::new(bytes)?;
        let start = mem.as_ptr() as usize;
        let registration = signals::register_code(
            start,
            start + bytes.len(),
            Arc::new(CodeTraps {
                start,
                faults: Vec::new(),
            }),
        );
        let info = Arc::new(CodeInfo {
            start,
            end: start,
            functions: Vec::new(),
            sites: Vec::new(),
            calls: Vec::new(),
            names: Arc::new(Vec::new()),
        });
        Ok((
            ModuleCode {
                _registration: registration,
                _code: mem,
                info,
            },
            start,
        ))
    }
}

impl Drop for ModuleCode {
    fn drop(&mut self) {
        if let Ok(mut all) = CODE_INFO.write() {
            all.retain(|i| !Arc::ptr_eq(i, &self.info));
        }
    }
}
