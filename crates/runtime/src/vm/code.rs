//! Placing compiled code in a module's code arena, and the registry of placed code: which
//! pcs may fault and how (for the signal handler), and which function and wasm offset a pc
//! belongs to (for backtraces).
//!
//! A module's code lives in a few chunks ([`CodeChunk`]) that functions are appended to,
//! eagerly or one at a time as they are compiled lazily; chunk sizes double, so a module
//! has O(log size) chunks and mappings. Each chunk is registered once (with the signal
//! handler and in [`CODE_INFO`]) and owns append-only tables of its functions, trap sites
//! and call sites: code is appended at increasing addresses, so the tables stay sorted and
//! a pc is looked up with two binary searches (chunk, then entry).

use crate::error::{FrameInfo, TrapCode};
use crate::profiling::{function_name, CodeSymbol, ProfilingAgent};
use crate::sys::code_memory::{CodeChunk, CodeRange};
use crate::sys::mmap::page_size;
use crate::sys::signals::{self, CodeRegistration, TrapLookup};
use crate::Error;
use std::sync::atomic::{AtomicPtr, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use wjit_compiler::isa::host::{
    jump_slots, lazy_thunk, resolve_call, retarget_word, slot_jump, SLOT_PATCH_OFFSET, SLOT_SIZE,
};

/// A vector that one writer at a time appends to while readers (also the signal handler)
/// read it without locks.
///
/// Readers see a prefix: `len` is published (release) after the elements it covers are
/// written and after the buffer holding them is published. A full buffer is replaced by
/// one of twice the capacity holding a copy (amortized O(1) per element); replaced buffers
/// are never written again and are kept until the vector is dropped, as a reader may still
/// be reading one.
struct AppendVec<T> {
    len: AtomicUsize,
    ptr: AtomicPtr<T>,
    /// Every buffer published so far; the last is current. The mutex serializes writers.
    buffers: Mutex<Vec<Vec<T>>>,
}

impl<T: Copy> AppendVec<T> {
    fn new() -> AppendVec<T> {
        AppendVec {
            len: AtomicUsize::new(0),
            ptr: AtomicPtr::new(std::ptr::null_mut()),
            buffers: Mutex::new(Vec::new()),
        }
    }

    /// An empty vector with room for `capacity` elements before its first copy (untouched
    /// room costs address space, not memory).
    fn with_capacity(capacity: usize) -> AppendVec<T> {
        let mut buffer = Vec::with_capacity(capacity);
        AppendVec {
            len: AtomicUsize::new(0),
            ptr: AtomicPtr::new(buffer.as_mut_ptr()),
            buffers: Mutex::new(vec![buffer]),
        }
    }

    /// Appends `items`; readers see all of them or none.
    fn extend<I: IntoIterator<Item = T, IntoIter: ExactSizeIterator>>(&self, items: I) {
        let items = items.into_iter();
        if items.len() == 0 {
            return;
        }
        let mut buffers = self.buffers.lock().unwrap_or_else(PoisonError::into_inner);
        let len = self.len.load(Ordering::Relaxed);
        let needed = len + items.len();
        let capacity = buffers.last().map_or(0, Vec::capacity);
        if needed > capacity {
            let mut bigger = Vec::with_capacity(needed.max(2 * capacity).max(16));
            if let Some(current) = buffers.last() {
                bigger.extend_from_slice(current);
            }
            // Moving a Vec does not move its heap buffer, so the pointer stays valid.
            self.ptr.store(bigger.as_mut_ptr(), Ordering::Release);
            buffers.push(bigger);
        }
        let current = buffers.last_mut().expect("a buffer was just made");
        debug_assert_eq!(current.len(), len);
        // Within capacity: no reallocation, so readers' pointer stays valid; they read only
        // the first `len` elements, which this does not touch.
        current.extend(items);
        debug_assert_eq!(current.len(), needed);
        self.len.store(needed, Ordering::Release);
    }

    /// The elements published so far. Async-signal-safe (two atomic loads).
    fn as_slice(&self) -> &[T] {
        let len = self.len.load(Ordering::Acquire);
        if len == 0 {
            return &[];
        }
        let ptr = self.ptr.load(Ordering::Acquire);
        // SAFETY: `ptr` is the buffer published with (or after) the `len` we read, and every
        // buffer published since holds copies of the first `len` elements; buffers are freed
        // only when `self` is dropped, and those elements are never written again.
        unsafe { std::slice::from_raw_parts(ptr, len) }
    }
}

/// What is known about the code in one chunk: its functions, trap and call sites, with
/// offsets from the chunk start, each sorted by offset.
pub(crate) struct ChunkInfo {
    start: usize,
    end: usize,
    /// (pc offset, trap code) of faulting instructions the signal handler may claim.
    faults: AppendVec<(u32, u8)>,
    /// (start offset, end offset, function index); jump slots are not functions.
    functions: AppendVec<(u32, u32, u32)>,
    /// (pc offset, wasm offset) of trap sites.
    sites: AppendVec<(u32, u32)>,
    /// (return address offset, wasm offset) of calls.
    calls: AppendVec<(u32, u32)>,
    /// (return address offset, index in `regions`) of calls inside exception handlers.
    handlers: AppendVec<(u32, u32)>,
    /// Exception-handling regions: (parent index or `u32::MAX`, first index in `clauses`,
    /// number of clauses, frame size of the function).
    regions: AppendVec<(u32, u32, u32, u32)>,
    /// Catch clauses: (vmctx offset of the tag or `u32::MAX` for any, landing pad offset).
    clauses: AppendVec<(u32, u32)>,
    /// Function names from the name section, by function index.
    names: Arc<Vec<Option<String>>>,
}

impl TrapLookup for ChunkInfo {
    fn trap_code_at(&self, pc: usize) -> Option<u8> {
        let off = u32::try_from(pc.checked_sub(self.start)?).ok()?;
        let faults = self.faults.as_slice();
        let i = faults.binary_search_by_key(&off, |f| f.0).ok()?;
        Some(faults[i].1)
    }
}

impl ChunkInfo {
    /// The function containing chunk offset `off`.
    fn function_at(&self, off: u32) -> Option<u32> {
        let functions = self.functions.as_slice();
        let i = functions.partition_point(|f| f.0 <= off).checked_sub(1)?;
        let (_, end, index) = functions[i];
        (off < end).then_some(index)
    }
}

/// Every registered chunk, sorted by start address.
static CODE_INFO: RwLock<Vec<Arc<ChunkInfo>>> = RwLock::new(Vec::new());

fn chunk_at(all: &[Arc<ChunkInfo>], pc: usize) -> Option<&ChunkInfo> {
    let i = all.partition_point(|c| c.start <= pc).checked_sub(1)?;
    let chunk = &all[i];
    (pc < chunk.end).then_some(&**chunk)
}

/// Whether `pc` is in a wasm function (not a jump slot or thunk). Waits while another thread
/// registers or drops a chunk (a `try_read` that counted that as "no" cut backtraces short
/// when modules were loaded concurrently). Called by the trap landing, which runs after the
/// signal handler has returned, never inside it; a thread holding the write lock is in Rust
/// code, not in wasm, so it cannot be the one trapping.
pub(crate) fn is_wasm_pc(pc: usize) -> bool {
    let all = CODE_INFO.read().unwrap_or_else(PoisonError::into_inner);
    chunk_at(&all, pc)
        .and_then(|c| c.function_at((pc - c.start) as u32))
        .is_some()
}

/// What a frame does with an exception, according to [`catch_at`].
pub(crate) enum CatchLookup {
    /// The pc is not in wasm code: the activation ends here.
    NotWasm,
    /// The frame does not catch it: go on with its caller.
    Next,
    /// The frame catches it at landing pad `pad`, with stack pointer `sp`.
    Catch { pad: usize, sp: usize },
}

/// Whether the wasm frame with frame pointer `fp`, at return address `pc`, catches an
/// exception of tag identity `tag`: the catch clauses of the regions around the call, from
/// the innermost out, compared by the tag pointers in the frame's vmctx.
pub(crate) fn catch_at(pc: usize, fp: usize, tag: usize) -> CatchLookup {
    let all = CODE_INFO.read().unwrap_or_else(PoisonError::into_inner);
    let Some(chunk) = chunk_at(&all, pc) else {
        return CatchLookup::NotWasm;
    };
    let off = (pc - chunk.start) as u32;
    if chunk.function_at(off).is_none() {
        return CatchLookup::NotWasm;
    }
    let handlers = chunk.handlers.as_slice();
    let Ok(i) = handlers.binary_search_by_key(&off, |h| h.0) else {
        return CatchLookup::Next;
    };
    let (regions, clauses) = (chunk.regions.as_slice(), chunk.clauses.as_slice());
    let slot = fp.wrapping_add_signed(wjit_compiler::vmctx::VMCTX_FRAME_SLOT as isize);
    // SAFETY: `fp` is the frame pointer of this wasm function's frame, whose prologue
    // saved the instance's vmctx in that slot.
    let vmctx = unsafe { *(slot as *const usize) };
    let mut region = handlers[i].1;
    // Parents come before their children, so the walk ends.
    while let Some(&(parent, first, count, frame_size)) = regions.get(region as usize) {
        let first = first as usize;
        for &(tag_offset, pad) in clauses.get(first..first + count as usize).unwrap_or(&[]) {
            let matches = tag_offset == u32::MAX || {
                // SAFETY: the offset is a tag slot of the frame's live vmctx.
                unsafe { *((vmctx + tag_offset as usize) as *const usize) == tag }
            };
            if matches {
                return CatchLookup::Catch {
                    pad: chunk.start + pad as usize,
                    sp: fp - frame_size as usize,
                };
            }
        }
        if parent >= region {
            break;
        }
        region = parent;
    }
    CatchLookup::Next
}

/// Turns the recorded pcs of a trap into frames (pcs outside wasm code are left out).
pub(crate) fn symbolize(pcs: &[usize]) -> Vec<FrameInfo> {
    let Ok(all) = CODE_INFO.read() else {
        return Vec::new();
    };
    let mut frames = Vec::new();
    for (i, &pc) in pcs.iter().enumerate() {
        let Some(chunk) = chunk_at(&all, pc) else {
            continue;
        };
        let off = (pc - chunk.start) as u32;
        let Some(func) = chunk.function_at(off) else {
            continue;
        };
        // The innermost pc is a trap site; the others are return addresses of calls.
        let table = if i == 0 {
            chunk.sites.as_slice()
        } else {
            chunk.calls.as_slice()
        };
        let wasm_offset = table
            .binary_search_by_key(&off, |s| s.0)
            .ok()
            .map(|k| table[k].1);
        frames.push(FrameInfo {
            func_index: func,
            func_name: chunk.names.get(func as usize).cloned().flatten(),
            wasm_offset,
        });
    }
    frames
}

/// One chunk of a module's arena, registered for as long as it lives.
struct Chunk {
    // Fields drop in order, after `Drop::drop` removed `info` from CODE_INFO: the
    // registration must go before the memory is unmapped, or another thread may map and
    // register the same addresses in between.
    _registration: CodeRegistration,
    info: Arc<ChunkInfo>,
    memory: CodeChunk,
    /// Bytes used so far (appends go at the next 16-byte boundary after them).
    fill: usize,
}

impl Chunk {
    fn new(memory: CodeChunk, names: &Arc<Vec<Option<String>>>) -> Chunk {
        let start = memory.as_ptr() as usize;
        let end = start + memory.len();
        // Room for the tables of a chunk full of typical code (a trap site per 16 bytes or
        // so, a function per 256), so that a chunk filled by many placements rarely copies
        // them; small chunks grow them from nothing.
        let room = |per: usize| {
            if memory.len() >= 1 << 20 {
                memory.len() / per
            } else {
                0
            }
        };
        let info = Arc::new(ChunkInfo {
            start,
            end,
            faults: AppendVec::with_capacity(room(32)),
            functions: AppendVec::with_capacity(room(256)),
            sites: AppendVec::with_capacity(room(16)),
            calls: AppendVec::with_capacity(room(32)),
            handlers: AppendVec::new(),
            regions: AppendVec::new(),
            clauses: AppendVec::new(),
            names: names.clone(),
        });
        let registration = signals::register_code(start, end, info.clone());
        let mut all = CODE_INFO.write().unwrap_or_else(PoisonError::into_inner);
        let i = all.partition_point(|c| c.start < start);
        all.insert(i, info.clone());
        Chunk {
            _registration: registration,
            info,
            memory,
            fill: 0,
        }
    }
}

impl Drop for Chunk {
    fn drop(&mut self) {
        let mut all = CODE_INFO.write().unwrap_or_else(PoisonError::into_inner);
        all.retain(|i| !Arc::ptr_eq(i, &self.info));
    }
}

/// The smallest chunk, and the largest a chunk grows to unless one placement needs more.
const MIN_CHUNK: usize = 64 << 10;
const MAX_CHUNK: usize = 64 << 20;
/// Alignment of every placement.
const ALIGN: usize = 16;

/// The largest code range of a module: every call site and jump slot of a module must reach
/// every function of it with a `bl` (±128 MiB) on AArch64, a `call rel32` (±2 GiB) on x86-64.
#[cfg(target_arch = "aarch64")]
const MAX_RANGE: usize = 128 << 20;
#[cfg(not(target_arch = "aarch64"))]
const MAX_RANGE: usize = 1 << 30;
/// The smallest code range (address space only: it costs no memory until used).
const MIN_RANGE: usize = 4 << 20;

/// The code range to reserve for a module whose function bodies take `body_bytes` bytes of
/// wasm and which defines `functions` functions: room for about 16 bytes of code per byte
/// of wasm and 128 per function (the compiler averages 3 to 4, plus prologues), twice over
/// for the room chunks leave unused, clamped to [`MIN_RANGE`, `MAX_RANGE`]. Without dual
/// mappings every placement takes whole pages of its own, so then also a page per function.
pub(crate) fn range_size(body_bytes: usize, functions: usize) -> usize {
    let mut size = body_bytes
        .saturating_mul(16)
        .saturating_add(functions.saturating_mul(128))
        .saturating_mul(2);
    if !CodeChunk::dual_mapping_supported() {
        let pages = functions.saturating_add(2).saturating_mul(page_size());
        size = size.max(pages.saturating_add(body_bytes.saturating_mul(16)));
    }
    size.saturating_add(MIN_RANGE).min(MAX_RANGE)
}

/// The chunks of a module's arena and the range they are mapped into.
struct Arena {
    chunks: Vec<Chunk>,
    range: CodeRange,
    /// For each function not compiled yet, the addresses of the target fields of the direct
    /// calls (in writable chunks) that were resolved to its jump slot: patched to call the
    /// code when it is placed.
    waiting: std::collections::HashMap<u32, Vec<usize>>,
    /// (callee, field address) of the direct calls placed by [`ModuleCode::place_batch`] to
    /// functions not placed yet (there are no jump slots then): their fields hold a
    /// placeholder until [`ModuleCode::resolve_deferred`] fills them in.
    deferred: Vec<(u32, usize)>,
}

impl Arena {
    /// The writable chunk holding the 4-byte field at address `at`, and the field's offset
    /// in it.
    fn writable_field(&mut self, at: usize) -> Option<(&mut Chunk, usize)> {
        let i = self.chunks.partition_point(|c| c.info.start <= at);
        let chunk = &mut self.chunks[i.checked_sub(1)?];
        let writable = at + 4 <= chunk.info.end && chunk.memory.is_writable();
        let offset = at - chunk.info.start;
        writable.then_some((chunk, offset))
    }
}

/// A module's code arena: chunks that compiled functions (and jump slots) are appended to,
/// all inside one reserved [`CodeRange`] so that direct calls between them are in range.
/// Appends and slot patches are serialized by a mutex; running code is never written, but
/// for the single-word jump slot patches.
pub(crate) struct ModuleCode {
    arena: Mutex<Arena>,
    names: Arc<Vec<Option<String>>>,
    /// Jump slots (lazy mode): the first defined function's index and the address of its
    /// slot; the others follow `SLOT_SIZE` bytes apart.
    slots: std::sync::OnceLock<(u32, usize)>,
    /// Told about every placement (see `Config::profiler`).
    profiler: Option<&'static dyn ProfilingAgent>,
    /// Whether dual-mapped chunks are System V shared memory rather than memfd files
    /// (for a profiler that names code only outside file mappings).
    sysv: bool,
    /// The smallest chunk to map (see [`ModuleCode::with_expected_size`]).
    min_chunk: usize,
}

/// A placement laid out before it is copied: code plus tables relative to its start. The
/// code is borrowed in pieces and copied once, straight to its place.
#[derive(Default)]
struct Layout<'a> {
    /// (offset, bytes) of each piece of code, in order; the gaps between them are zero.
    pieces: Vec<(usize, &'a [u8])>,
    /// The size of the code: the end of the last piece.
    len: usize,
    offsets: Vec<usize>,
    faults: Vec<(u32, u8)>,
    functions: Vec<(u32, u32, u32)>,
    sites: Vec<(u32, u32)>,
    calls: Vec<(u32, u32)>,
    /// (offset of the target field, callee index) of direct calls.
    relocations: Vec<(u32, u32)>,
    /// As in [`ChunkInfo`], with region and clause indices relative to this layout.
    handlers: Vec<(u32, u32)>,
    regions: Vec<(u32, u32, u32, u32)>,
    clauses: Vec<(u32, u32)>,
}

impl<'a> Layout<'a> {
    /// Copies the code into `dst`, which is `self.len` bytes of zeros.
    fn copy_into(&self, dst: &mut [u8]) {
        for &(at, code) in &self.pieces {
            dst[at..at + code.len()].copy_from_slice(code);
        }
    }

    /// Lays out `functions`; the code of function `i` is `codes[i]` if `codes` is given
    /// (precompiled code, borrowed from the file), its `code` otherwise.
    fn functions(
        functions: &'a [(u32, wjit_compiler::CompiledFunction)],
        codes: Option<&[&'a [u8]]>,
    ) -> Layout<'a> {
        let mut l = Layout::default();
        let code_of = |i: usize, f: &wjit_compiler::CompiledFunction| {
            codes.map_or(f.code.len(), |c| c[i].len())
        };
        // Sized up front: the blob and tables are not regrown and copied as they fill.
        let total = |n: fn(&wjit_compiler::CompiledFunction) -> usize| {
            functions.iter().map(|(_, f)| n(f)).sum::<usize>()
        };
        l.pieces.reserve(functions.len());
        l.offsets.reserve(functions.len());
        l.functions.reserve(functions.len());
        l.calls.reserve(total(|f| f.call_sites.len()));
        l.sites.reserve(total(|f| f.traps.len()));
        l.relocations.reserve(total(|f| f.relocations.len()));
        let (mut sites, mut calls, mut faults) = (Vec::new(), Vec::new(), Vec::new());
        for (i, (index, f)) in functions.iter().enumerate() {
            let at = l.len.next_multiple_of(ALIGN);
            let code: &'a [u8] = match codes {
                Some(c) => c[i],
                None => &f.code,
            };
            let start = at as u32;
            l.offsets.push(at);
            l.pieces.push((at, code));
            l.len = at + code_of(i, f);
            l.functions.push((start, l.len as u32, *index));
            calls.clear();
            sites.clear();
            faults.clear();
            calls.extend(f.call_sites.iter().map(|&(ret, wasm)| (start + ret, wasm)));
            for t in &f.traps {
                let pc = start + t.pc;
                sites.push((pc, t.wasm_offset));
                if t.code == TrapCode::MemoryOutOfBounds {
                    faults.push((pc, t.code as u8));
                }
            }
            l.relocations.extend(
                f.relocations
                    .iter()
                    .map(|r| (start + r.offset, r.func_index)),
            );
            let first_region = l.regions.len() as u32;
            for r in &f.try_regions {
                let parent = r.parent.map_or(u32::MAX, |p| first_region + p);
                let first_clause = l.clauses.len() as u32;
                l.clauses.extend(
                    r.catches
                        .iter()
                        .map(|c| (c.tag_offset.unwrap_or(u32::MAX), start + c.pad)),
                );
                let count = r.catches.len() as u32;
                l.regions.push((parent, first_clause, count, f.frame_size));
            }
            l.handlers.extend(
                f.handler_sites
                    .iter()
                    .map(|&(ret, region)| (start + ret, first_region + region)),
            );
            // Sorted per function; functions follow each other, so the tables are sorted.
            calls.sort_unstable();
            sites.sort_unstable();
            faults.sort_unstable();
            l.calls.extend_from_slice(&calls);
            l.sites.extend_from_slice(&sites);
            l.faults.extend_from_slice(&faults);
        }
        l
    }
}

impl ModuleCode {
    /// An empty arena with a code range of `range` bytes (see [`range_size`]); chunks are
    /// mapped into it as code is placed.
    pub fn new(names: Arc<Vec<Option<String>>>, range: usize) -> Result<ModuleCode, Error> {
        let range = CodeRange::reserve(range)
            .map_err(|e| Error::Compile(format!("cannot reserve a code range: {e}")))?;
        Ok(ModuleCode {
            arena: Mutex::new(Arena {
                chunks: Vec::new(),
                range,
                waiting: Default::default(),
                deferred: Vec::new(),
            }),
            names,
            slots: std::sync::OnceLock::new(),
            profiler: None,
            sysv: false,
            min_chunk: MIN_CHUNK,
        })
    }

    /// Maps chunks of at least `bytes` (up to the largest chunk size), for an arena that
    /// will be filled by many placements adding up to about that much code: one chunk
    /// rather than a doubling series.
    pub fn with_expected_size(mut self, bytes: usize) -> ModuleCode {
        self.min_chunk = bytes.clamp(MIN_CHUNK, MAX_CHUNK);
        self
    }

    /// What profilers and logs call function `index`.
    pub fn function_name(&self, index: u32) -> String {
        function_name(&self.names, index)
    }

    /// Reports every placement from now on to `profiler` (in memory it can name: see
    /// `ProfilingAgent::needs_anonymous_code`).
    pub fn with_profiler(mut self, profiler: Option<&'static dyn ProfilingAgent>) -> ModuleCode {
        self.profiler = profiler;
        self.sysv = profiler.is_some_and(|p| p.needs_anonymous_code());
        self
    }

    /// Places compiled functions (`(function index, code)`) and returns their entry
    /// addresses, in order. The code is executable, and registered for traps and
    /// backtraces, when this returns.
    ///
    /// Each direct call is resolved to the callee's code if it is among `functions` or
    /// `compiled` gives its address, and to the callee's jump slot otherwise (it must have
    /// one: see [`ModuleCode::place_slots`]).
    pub fn place(
        &self,
        functions: &[(u32, wjit_compiler::CompiledFunction)],
        compiled: &dyn Fn(u32) -> Option<usize>,
    ) -> Result<Vec<usize>, Error> {
        self.place_layout(Layout::functions(functions, None), compiled, false)
    }

    /// [`ModuleCode::place`] for one batch of the functions of a module compiled eagerly
    /// batch by batch (there are no jump slots): a direct call to a function that is
    /// neither in `functions` nor known to `compiled` is deferred. Its field is left with
    /// a placeholder target until [`ModuleCode::resolve_deferred`], which must run before
    /// any of the code does.
    pub fn place_batch(
        &self,
        functions: &[(u32, wjit_compiler::CompiledFunction)],
        compiled: &dyn Fn(u32) -> Option<usize>,
    ) -> Result<Vec<usize>, Error> {
        self.place_layout(Layout::functions(functions, None), compiled, true)
    }

    /// Points every direct call deferred by [`ModuleCode::place_batch`] at its callee,
    /// whose code `compiled` must now know (the module is not running yet, so the fields
    /// are plain writes through the write view).
    pub fn resolve_deferred(&self, compiled: &dyn Fn(u32) -> Option<usize>) -> Result<(), Error> {
        let mut guard = self.arena.lock().unwrap_or_else(PoisonError::into_inner);
        let arena = &mut *guard;
        for (callee, field) in std::mem::take(&mut arena.deferred) {
            let target = compiled(callee).ok_or_else(|| no_slot(callee))?;
            let (chunk, offset) = arena
                .writable_field(field)
                .ok_or_else(|| Error::Compile(format!("no writable code at {field:#x}")))?;
            chunk.memory.write_with(offset, 4, |dst| {
                resolve_call(dst, field, target).map_err(|e| Error::Compile(e.to_string()))
            })?;
        }
        Ok(())
    }

    /// [`ModuleCode::place`] for precompiled functions whose code bytes are `codes` (one
    /// per function, e.g. borrowed from a precompiled file, so they are copied once; the
    /// functions' own `code` is ignored).
    pub fn place_precompiled(
        &self,
        functions: &[(u32, wjit_compiler::CompiledFunction)],
        codes: &[&[u8]],
    ) -> Result<Vec<usize>, Error> {
        if codes.len() != functions.len() {
            return Err(Error::Compile("one code blob per function expected".into()));
        }
        self.place_layout(Layout::functions(functions, Some(codes)), &|_| None, false)
    }

    fn place_layout(
        &self,
        mut layout: Layout<'_>,
        compiled: &dyn Fn(u32) -> Option<usize>,
        defer: bool,
    ) -> Result<Vec<usize>, Error> {
        let relocations = std::mem::take(&mut layout.relocations);
        // (function index, start in the blob) of the functions placed here, by index.
        let mut local: Vec<(u32, u32)> = if relocations.is_empty() {
            Vec::new()
        } else {
            layout.functions.iter().map(|&(s, _, f)| (f, s)).collect()
        };
        local.sort_unstable();
        let local_start = |callee: u32| {
            local
                .binary_search_by_key(&callee, |e| e.0)
                .ok()
                .map(|i| local[i].1)
        };
        let slots = self.slots.get().copied();
        let (count, code_bytes) = (layout.functions.len(), layout.len);
        // (function index, code size) of each function, for the profiler.
        let sizes: Vec<(u32, usize)> = match self.profiler {
            Some(_) => layout
                .functions
                .iter()
                .map(|&(s, e, f)| (f, (e - s) as usize))
                .collect(),
            None => Vec::new(),
        };
        let addrs = self.append(layout, |blob, start, waiting| {
            for (field, callee) in relocations {
                let target = match local_start(callee) {
                    Some(s) => start + s as usize,
                    None => match (compiled(callee), slots) {
                        (Some(addr), _) => addr,
                        (None, Some((first, base))) => {
                            let i = callee.checked_sub(first).ok_or_else(|| no_slot(callee))?;
                            waiting.push((callee, start + field as usize));
                            base + i as usize * SLOT_SIZE
                        }
                        // Any address in range: `resolve_deferred` replaces it.
                        (None, None) if defer => {
                            waiting.push((callee, start + field as usize));
                            start
                        }
                        (None, None) => return Err(no_slot(callee)),
                    },
                };
                let at = field as usize;
                resolve_call(&mut blob[at..at + 4], start + at, target)
                    .map_err(|e| Error::Compile(e.to_string()))?;
            }
            Ok(())
        })?;
        tracing::trace!(
            functions = count,
            code_bytes,
            at = format_args!("{:#x}", addrs.first().copied().unwrap_or(0)),
            "code placed"
        );
        if let Some(profiler) = self.profiler {
            let symbols: Vec<CodeSymbol> = sizes
                .iter()
                .zip(&addrs)
                .map(|(&(index, size), &addr)| CodeSymbol {
                    name: function_name(&self.names, index),
                    addr,
                    size,
                })
                .collect();
            profiler.register(&symbols);
        }
        Ok(addrs)
    }

    /// Places the lazy thunk and a jump slot for each of the `count` defined functions,
    /// the first being function `first` (see `wjit_compiler::isa::host::jump_slots`);
    /// returns the address of the first slot.
    pub fn place_slots(&self, first: u32, count: u32) -> Result<usize, Error> {
        let thunk = lazy_thunk().map_err(|e| Error::Compile(e.to_string()))?;
        let head = thunk.len().next_multiple_of(ALIGN);
        // No pieces: the fixup writes the thunk and the slots.
        let layout = Layout {
            len: head + count as usize * SLOT_SIZE,
            offsets: vec![head],
            ..Layout::default()
        };
        let base = self.append(layout, |blob, start, _| {
            blob[..thunk.len()].copy_from_slice(&thunk);
            let slots = jump_slots(first, count, start + head, start)
                .map_err(|e| Error::Compile(e.to_string()))?;
            blob[head..].copy_from_slice(&slots);
            Ok(())
        })?[0];
        self.slots
            .set((first, base))
            .map_err(|_| Error::Compile("jump slots placed twice".into()))?;
        if let Some(profiler) = self.profiler {
            profiler.register(&[
                CodeSymbol {
                    name: "wjit::lazy_thunk".into(),
                    addr: base - head,
                    size: thunk.len(),
                },
                CodeSymbol {
                    name: "wjit::jump_slots".into(),
                    addr: base,
                    size: count as usize * SLOT_SIZE,
                },
            ]);
        }
        Ok(base)
    }

    /// Makes the jump slot of function `index`, and the direct calls placed so far that
    /// were resolved to it, go straight to `target` (its code), each with one aligned
    /// atomic word store through the write view. A slot or call in a sealed chunk is left
    /// as it is (it keeps leading to the lazy stub, which finds the code).
    pub fn patch_slot(&self, index: u32, target: usize) {
        let Some((first, base)) = self.slots.get().copied() else {
            return;
        };
        let Some(i) = index.checked_sub(first) else {
            return;
        };
        let slot = base + i as usize * SLOT_SIZE;
        let mut guard = self.arena.lock().unwrap_or_else(PoisonError::into_inner);
        let arena = &mut *guard;
        let fields = arena.waiting.remove(&index).unwrap_or_default();
        // `word(old)` is the new word given the one there now.
        let mut patch = |at: usize, word: &dyn Fn(u32) -> Option<u32>| {
            if let Some((chunk, offset)) = arena.writable_field(at) {
                // Out of range cannot happen within one range; if it did, the old jump
                // stays correct.
                if let Some(word) = word(chunk.memory.read_word(offset)) {
                    chunk.memory.patch_word(offset, word);
                }
            }
        };
        patch(slot + SLOT_PATCH_OFFSET, &|_| slot_jump(slot, target));
        for field in fields {
            // A direct call or a tail call: the same kind of branch, to the code.
            patch(field, &|old| retarget_word(old, field, target));
        }
    }

    /// Appends a layout; `fixup` completes its bytes once their address is known, and
    /// lists the direct calls it resolved to the slots of functions not compiled yet
    /// (`(callee, field address)`), to patch when they are.
    fn append(
        &self,
        mut l: Layout<'_>,
        fixup: impl FnOnce(&mut [u8], usize, &mut Vec<(u32, usize)>) -> Result<(), Error>,
    ) -> Result<Vec<usize>, Error> {
        let mut waiting = Vec::new();
        // Never empty: every placement gets an address of its own.
        l.len = l.len.max(1);
        let mut guard = self.arena.lock().unwrap_or_else(PoisonError::into_inner);
        let arena = &mut *guard;
        let size = l.len;
        let fits = |c: &Chunk| {
            c.memory.is_writable() && c.fill.next_multiple_of(ALIGN) + size <= c.memory.len()
        };
        let range_mib = arena.range.len() >> 20;
        let full = || {
            Error::Compile(format!(
                "module code outgrew its code range of {} MiB (direct calls need all of a \
                 module's code in one range; at most {} MiB)",
                range_mib,
                MAX_RANGE >> 20
            ))
        };
        let mut fixup = Some(fixup);
        if !arena.chunks.last().is_some_and(fits) {
            let range = &mut arena.range;
            let mut memory = None;
            if CodeChunk::dual_mapping_supported() {
                let previous = arena.chunks.last().map_or(0, |c| c.memory.len());
                let len = (2 * previous)
                    .clamp(self.min_chunk, MAX_CHUNK)
                    .max(size)
                    .min(range.remaining());
                if len >= size {
                    // Out of memory or mappings: as below, a chunk just for this placement.
                    memory = if self.sysv {
                        range.chunk_sysv(len).ok()
                    } else {
                        range.chunk(len).ok()
                    };
                }
            }
            let memory = match memory {
                Some(m) => m,
                None => {
                    // A sealed chunk holding exactly this placement, at the range's next page.
                    if size > range.remaining() {
                        return Err(full());
                    }
                    let start = range.start() + range.len() - range.remaining();
                    let mut blob = vec![0; size];
                    l.copy_into(&mut blob);
                    // Never patched: the calls keep going through the slots.
                    (fixup.take().expect("fixup runs once"))(&mut blob, start, &mut waiting)?;
                    if !waiting.is_empty() && self.slots.get().is_none() {
                        // Deferred calls (no slots to fall back on) need a writable chunk.
                        return Err(Error::Compile(
                            "cannot map writable code for a batch of eagerly compiled \
                             functions"
                                .into(),
                        ));
                    }
                    waiting.clear();
                    let m = range.sealed(&blob).map_err(|e| {
                        if e.kind() == std::io::ErrorKind::OutOfMemory {
                            full()
                        } else {
                            Error::Compile(format!("cannot map code: {e}"))
                        }
                    })?;
                    debug_assert_eq!(m.as_ptr() as usize, start);
                    m
                }
            };
            u32::try_from(memory.len())
                .map_err(|_| Error::Compile("module code larger than 4 GiB".into()))?;
            arena.chunks.push(Chunk::new(memory, &self.names));
        }
        let chunk = arena.chunks.last_mut().expect("a chunk was just made");
        let at = if chunk.memory.is_writable() {
            let at = chunk.fill.next_multiple_of(ALIGN);
            let start = chunk.info.start + at;
            chunk.memory.write_with(at, size, |dst| {
                l.copy_into(dst);
                fixup.take().map_or(Ok(()), |f| f(dst, start, &mut waiting))
            })?;
            if self.slots.get().is_some() {
                for (callee, field) in waiting {
                    arena.waiting.entry(callee).or_default().push(field);
                }
            } else {
                arena.deferred.append(&mut waiting);
            }
            at
        } else {
            0 // a sealed chunk made for this placement holds exactly its code
        };
        chunk.fill = at + size;
        let base = at as u32;
        let info = &chunk.info;
        // Sites before functions: a reader that finds a function finds its sites too.
        info.faults
            .extend(l.faults.iter().map(|&(p, c)| (base + p, c)));
        info.sites
            .extend(l.sites.iter().map(|&(p, w)| (base + p, w)));
        info.calls
            .extend(l.calls.iter().map(|&(p, w)| (base + p, w)));
        let (first_region, first_clause) = (
            info.regions.as_slice().len() as u32,
            info.clauses.as_slice().len() as u32,
        );
        info.clauses
            .extend(l.clauses.iter().map(|&(t, pad)| (t, base + pad)));
        info.regions
            .extend(l.regions.iter().map(|&(parent, first, n, size)| {
                let parent = if parent == u32::MAX {
                    u32::MAX
                } else {
                    first_region + parent
                };
                (parent, first_clause + first, n, size)
            }));
        info.handlers.extend(
            l.handlers
                .iter()
                .map(|&(p, r)| (base + p, first_region + r)),
        );
        info.functions
            .extend(l.functions.iter().map(|&(s, e, f)| (base + s, base + e, f)));
        let start = info.start + at;
        Ok(l.offsets.iter().map(|o| start + o).collect())
    }
}

fn no_slot(callee: u32) -> Error {
    Error::Compile(format!(
        "direct call to function {callee}, which has no code or slot"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn code_beyond_the_range_is_an_error_not_a_crash() {
        let code = ModuleCode::new(Arc::new(Vec::new()), MIN_CHUNK).unwrap();
        let small = wjit_compiler::CompiledFunction {
            code: vec![0xCC; 64],
            ..Default::default()
        };
        assert!(code.place(&[(0, small)], &|_| None).is_ok());
        let big = wjit_compiler::CompiledFunction {
            code: vec![0xCC; 4 * MIN_CHUNK],
            ..Default::default()
        };
        let err = code.place(&[(1, big)], &|_| None).unwrap_err();
        assert!(err.to_string().contains("outgrew its code range"), "{err}");
    }

    /// A `call` (x86-64 `E8 rel32`) or `bl` (aarch64) to `callee`, then padding.
    fn calling(callee: u32) -> wjit_compiler::CompiledFunction {
        let mut code = vec![0u8; 16];
        if cfg!(target_arch = "aarch64") {
            code[..4].copy_from_slice(&0x9400_0000u32.to_le_bytes());
        } else {
            code[3] = 0xE8;
        }
        wjit_compiler::CompiledFunction {
            code,
            relocations: vec![wjit_compiler::Relocation {
                offset: if cfg!(target_arch = "aarch64") { 0 } else { 4 },
                func_index: callee,
            }],
            ..Default::default()
        }
    }

    /// The 4-byte field of the call placed at `addr` by [`calling`].
    fn call_field(code: &ModuleCode, addr: usize) -> (usize, u32) {
        let field = addr + if cfg!(target_arch = "aarch64") { 0 } else { 4 };
        let arena = code.arena.lock().unwrap();
        let chunk = arena.chunks.last().unwrap();
        (field, chunk.memory.read_word(field - chunk.info.start))
    }

    #[test]
    fn deferred_calls_are_resolved_to_later_placements() {
        let code = ModuleCode::new(Arc::new(Vec::new()), MIN_RANGE).unwrap();
        // Function 0 calls function 1, placed by a later batch.
        let first = code.place_batch(&[(0, calling(1))], &|_| None).unwrap()[0];
        let second = code.place_batch(&[(1, calling(0))], &|f| (f == 0).then_some(first));
        let second = second.unwrap()[0];
        let addr_of = |f: u32| [first, second].get(f as usize).copied();
        code.resolve_deferred(&addr_of).unwrap();
        for (addr, target) in [(first, second), (second, first)] {
            let (field, word) = call_field(&code, addr);
            assert_eq!(Some(word), retarget_word(word, field, target), "{addr:#x}");
        }
        // Resolved once: nothing is left to resolve.
        code.resolve_deferred(&|_| None).unwrap();
    }

    #[test]
    fn deferred_call_to_an_unknown_function_is_an_error() {
        let code = ModuleCode::new(Arc::new(Vec::new()), MIN_RANGE).unwrap();
        code.place_batch(&[(0, calling(7))], &|_| None).unwrap();
        let err = code.resolve_deferred(&|_| None).unwrap_err();
        assert!(err.to_string().contains("function 7"), "{err}");
        // `place` never defers: there is no slot to fall back on.
        assert!(code.place(&[(1, calling(7))], &|_| None).is_err());
    }

    #[test]
    fn append_vec_publishes_prefixes() {
        let v = AppendVec::new();
        assert!(v.as_slice().is_empty());
        for i in 0..1000u32 {
            v.extend([i, i + 1]);
            let s = v.as_slice();
            assert_eq!(s.len(), 2 * (i as usize + 1));
            assert_eq!(s[2 * i as usize], i);
        }
    }

    #[test]
    fn append_vec_concurrent_readers() {
        let v = AppendVec::new();
        let done = std::sync::atomic::AtomicBool::new(false);
        std::thread::scope(|s| {
            for _ in 0..2 {
                s.spawn(|| {
                    while !done.load(Ordering::Relaxed) {
                        let s = v.as_slice();
                        for (i, &x) in s.iter().enumerate() {
                            assert_eq!(x, i);
                        }
                    }
                });
            }
            for i in 0..20_000usize {
                v.extend([i]);
            }
            done.store(true, Ordering::Relaxed);
        });
        assert_eq!(v.as_slice().len(), 20_000);
    }
}
