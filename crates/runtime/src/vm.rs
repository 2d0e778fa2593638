//! The machine-level runtime: data structures shared with generated code, the host stubs,
//! entering wasm, and turning traps into errors.

use crate::func::{Caller, Func};
use crate::sys::code_memory::CodeMemory;
use crate::sys::signals::{self, CodeRegistration, TrapLookup};
use crate::types::{ExternRef, FuncType, Val, ValType};
use crate::{Error, FrameInfo, Trap, TrapCode};
use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Mutex;
use std::sync::{Arc, OnceLock, RwLock};

/// A callable function as generated code sees it (layout in `wjit_compiler::vmctx::funcref`).
#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct VMFuncRef {
    pub code: usize,
    pub vmctx: usize,
    pub type_id: u64,
}

/// A linear memory as generated code sees it.
#[repr(C)]
#[derive(Debug, Default)]
pub(crate) struct VMMemoryDefinition {
    pub base: usize,
    pub length: u64,
}

/// A table as generated code sees it: `base` points at `length` `*const VMFuncRef`s.
#[repr(C)]
#[derive(Debug, Default)]
pub(crate) struct VMTableDefinition {
    pub base: usize,
    pub length: u64,
}

/// The storage cell of a global.
#[repr(C, align(16))]
#[derive(Debug, Default)]
pub(crate) struct VMGlobal {
    pub bits: u64,
    pub high: u64,
}

/// Offset in the vmctx of the back pointer to the owning instance (the reserved header word).
pub(crate) const VMCTX_INSTANCE: usize = 40;

/// The process-wide host routines (see `wjit_compiler::isa::host::generate_stubs`).
pub(crate) struct HostStubs {
    _code: CodeMemory,
    _lazy_code: Option<CodeMemory>,
    /// The lazy-compilation stub (0 where the backend has none).
    pub lazy: usize,
    enter: usize,
    pub host_call: usize,
    pub trap_landing: usize,
}

static STUBS: OnceLock<Result<HostStubs, String>> = OnceLock::new();

/// The host stubs, assembled and the signal handler installed on first use.
pub(crate) fn stubs() -> Result<&'static HostStubs, Error> {
    let stubs = STUBS.get_or_init(|| {
        let s = wjit_compiler::isa::host::generate_stubs(raise_trap as *const () as usize)
            .map_err(|e| e.to_string())?;
        let code = CodeMemory::new(&s.code).map_err(|e| e.to_string())?;
        let base = code.as_ptr() as usize;
        let lazy_code = if wjit_compiler::isa::host::LAZY_COMPILATION {
            let bytes = wjit_compiler::isa::host::lazy_stub().map_err(|e| e.to_string())?;
            Some(CodeMemory::new(&bytes).map_err(|e| e.to_string())?)
        } else {
            None
        };
        let stubs = HostStubs {
            lazy: lazy_code.as_ref().map_or(0, |c| c.as_ptr() as usize),
            _lazy_code: lazy_code,
            enter: base + s.enter,
            host_call: base + s.host_call,
            trap_landing: base + s.trap_landing,
            _code: code,
        };
        signals::init_trap_handler(stubs.trap_landing);
        Ok(stubs)
    });
    stubs
        .as_ref()
        .map_err(|e| Error::Unsupported(format!("host stubs: {e}")))
}

thread_local! {
    /// Stack pointer the trap landing resumes at (saved by the innermost `enter`).
    static RESUME_SP: Cell<usize> = const { Cell::new(0) };
    /// Stack limit of the current wasm activation (0 outside wasm).
    static STACK_LIMIT: Cell<usize> = const { Cell::new(0) };
    /// The last trap raised on this thread: (code, pc).
    static LAST_TRAP: Cell<(u32, usize)> = const { Cell::new((0, 0)) };
    /// Frames of the last trap: the trapping pc, then return addresses into wasm code.
    static TRAP_PCS: RefCell<Vec<usize>> = const { RefCell::new(Vec::new()) };
    /// The error of a host function that failed, waiting to be returned by `call`.
    static PENDING_HOST_ERROR: RefCell<Option<Error>> = const { RefCell::new(None) };
    /// Lowest usable address of this thread's stack.
    static STACK_LOW: Cell<usize> = const { Cell::new(0) };
}

/// Called by the trap landing (on the wasm stack, with nothing to unwind): records the trap
/// and returns where to resume. Must not panic or allocate.
pub(crate) extern "C" fn raise_trap(code: u32, pc: usize, fp: usize) -> usize {
    LAST_TRAP.with(|t| t.set((code, pc)));
    // Walk the frame-pointer chain while the return addresses are in wasm code. Every
    // backend keeps `[fp]` = caller's frame pointer and `[fp + 8]` = return address.
    TRAP_PCS.with(|pcs| {
        if let Ok(mut pcs) = pcs.try_borrow_mut() {
            pcs.clear();
            pcs.push(pc);
            let mut fp = fp;
            while fp != 0 && fp % 8 == 0 && pcs.len() < MAX_BACKTRACE {
                // SAFETY: `fp` is a frame pointer of a wasm frame (or of a host stub called
                // from wasm), whose first two words are the saved frame pointer and the
                // return address.
                let (next, ret) = unsafe { (*(fp as *const usize), *((fp + 8) as *const usize)) };
                if !is_wasm_pc(ret) {
                    break;
                }
                pcs.push(ret);
                fp = next;
            }
        }
    });
    RESUME_SP.with(|r| r.get())
}

/// Frames recorded per trap at most (deep recursion traps keep the innermost ones).
const MAX_BACKTRACE: usize = 1000;

/// Lowest address of the current thread's stack (plus nothing: the caller adds a margin).
fn thread_stack_low() -> usize {
    STACK_LOW.with(|low| {
        if low.get() == 0 {
            let mut v = 0usize;
            // SAFETY: pthread_getattr_np initialises `attr` for the calling thread; we read the
            // stack bounds from it and destroy it, as documented.
            unsafe {
                let mut attr: libc::pthread_attr_t = std::mem::zeroed();
                if libc::pthread_getattr_np(libc::pthread_self(), &mut attr) == 0 {
                    let mut addr: *mut libc::c_void = std::ptr::null_mut();
                    let mut size: libc::size_t = 0;
                    if libc::pthread_attr_getstack(&attr, &mut addr, &mut size) == 0 {
                        v = addr as usize;
                    }
                    libc::pthread_attr_destroy(&mut attr);
                }
            }
            low.set(v.max(1));
        }
        low.get()
    })
}

/// Stack kept free below the wasm limit for host functions and the runtime.
const HOST_STACK_MARGIN: usize = 256 * 1024;

/// Calls the function behind `funcref` through the entry stub. `values` holds the arguments
/// in its first `words` entries and receives the results; it must have `words + 2` entries.
pub(crate) fn call_raw(
    funcref: &VMFuncRef,
    values: &mut [u64],
    words: usize,
    max_wasm_stack: usize,
) -> Result<(), Error> {
    assert!(values.len() >= words + 2);
    let stubs = stubs()?;
    let outer_limit = STACK_LIMIT.with(|l| l.get());
    let limit = if outer_limit == 0 {
        let here = &outer_limit as *const usize as usize;
        let low = thread_stack_low().saturating_add(HOST_STACK_MARGIN);
        here.saturating_sub(max_wasm_stack).max(low)
    } else {
        outer_limit
    };
    STACK_LIMIT.with(|l| l.set(limit));
    // SAFETY: every callee context (instance vmctx or host context) starts with the stack
    // limit word, and `funcref.vmctx` is kept alive by the caller of `call_raw`.
    unsafe { *(funcref.vmctx as *mut u64) = limit as u64 };
    let prev_resume = RESUME_SP.with(|r| r.get());
    let resume_cell = RESUME_SP.with(|r| r.as_ptr());
    type Enter = unsafe extern "C" fn(usize, usize, *mut u64, usize, *mut usize) -> u32;
    // SAFETY: `stubs.enter` is the entry routine with exactly this signature; the code and
    // context it is given stay alive for the call; `values` has `words + 2` entries.
    let status = unsafe {
        let enter: Enter = std::mem::transmute::<usize, Enter>(stubs.enter);
        enter(
            funcref.vmctx,
            funcref.code,
            values.as_mut_ptr(),
            words,
            resume_cell,
        )
    };
    RESUME_SP.with(|r| r.set(prev_resume));
    STACK_LIMIT.with(|l| l.set(outer_limit));
    if status == 0 {
        return Ok(());
    }
    let (code, pc) = LAST_TRAP.with(|t| t.get());
    let code = TrapCode::from_u8(code as u8).unwrap_or(TrapCode::Unreachable);
    if code == TrapCode::HostError {
        if let Some(e) = PENDING_HOST_ERROR.with(|p| p.borrow_mut().take()) {
            return Err(e);
        }
    }
    let _ = pc;
    let pcs = TRAP_PCS.with(|p| std::mem::take(&mut *p.borrow_mut()));
    Err(Error::Trap(Trap::new(code).with_frames(symbolize(&pcs))))
}

/// Converts the raw 8-byte representation of a value of type `ty`.
pub(crate) fn raw_to_val(raw: u64, ty: ValType) -> Result<Val, Error> {
    Ok(match ty {
        ValType::I32 => Val::I32(raw as u32 as i32),
        ValType::I64 => Val::I64(raw as i64),
        ValType::F32 => Val::F32(raw as u32),
        ValType::F64 => Val::F64(raw),
        ValType::FuncRef if raw == 0 => Val::FuncRef(None),
        // SAFETY: non-null funcref bits are canonical `VMFuncRef` pointers of live functions.
        ValType::FuncRef => Val::FuncRef(Some(
            unsafe { Func::from_raw(raw as usize) }
                .ok_or_else(|| Error::Host("dangling function reference".into()))?,
        )),
        ValType::ExternRef if raw == 0 => Val::ExternRef(None),
        // SAFETY: non-null externref bits are always boxes made by `extern_to_raw`, which
        // are never freed.
        ValType::ExternRef => Val::ExternRef(Some(unsafe { (*(raw as *const ExternRef)).clone() })),
        other => {
            return Err(Error::Unsupported(format!(
                "{other} values crossing the host boundary"
            )))
        }
    })
}

/// The raw 8-byte representation of `v`.
pub(crate) fn val_to_raw(v: &Val) -> Result<u64, Error> {
    Ok(match v {
        Val::I32(x) => *x as u32 as u64,
        Val::I64(x) => *x as u64,
        Val::F32(x) => *x as u64,
        Val::F64(x) => *x,
        Val::FuncRef(None) | Val::ExternRef(None) => 0,
        Val::FuncRef(Some(f)) => f.funcref_ptr() as u64,
        Val::ExternRef(Some(r)) => extern_to_raw(r),
    })
}

/// A host function's context: what its `VMFuncRef::vmctx` points to.
#[repr(C)]
pub(crate) struct HostFuncCtx {
    /// Shared header with the instance vmctx (written by callers).
    stack_limit: u64,
    /// `host_call_shim`, called by the host-call stub.
    call: usize,
    pub ty: FuncType,
    pub func: HostFn,
    pub funcref: VMFuncRef,
    /// The `HostFuncBox` owning this context (set once it is in its `Arc`).
    pub owner: Cell<usize>,
    /// Stack limit for calls from the host (the engine's setting).
    pub max_wasm_stack: usize,
}

/// The Rust side of a host function.
pub(crate) type HostFn =
    Box<dyn Fn(Caller<'_>, &[Val], &mut [Val]) -> Result<(), Error> + Send + Sync>;

impl HostFuncCtx {
    /// A boxed context (its address is stable, as the funcref points into it).
    pub fn new(
        ty: FuncType,
        type_id: u32,
        func: HostFn,
        max_wasm_stack: usize,
    ) -> Result<Box<HostFuncCtx>, Error> {
        let stubs = stubs()?;
        let mut ctx = Box::new(HostFuncCtx {
            stack_limit: 0,
            call: host_call_shim as *const () as usize,
            ty,
            func,
            funcref: VMFuncRef::default(),
            owner: Cell::new(0),
            max_wasm_stack,
        });
        let self_ptr = &*ctx as *const HostFuncCtx as usize;
        ctx.funcref = VMFuncRef {
            code: stubs.host_call,
            vmctx: self_ptr,
            type_id: type_id as u64,
        };
        Ok(ctx)
    }
}

/// Called by the host-call stub. Returns 0, or a trap code after storing the error.
extern "C" fn host_call_shim(
    ctx: *const HostFuncCtx,
    caller_vmctx: usize,
    values: *mut u64,
) -> u32 {
    let result = catch_unwind(AssertUnwindSafe(|| {
        // SAFETY: the stub passes the context it was called with, which the `VMFuncRef`
        // owner keeps alive, and `values` points at the caller's outgoing area holding
        // max(params, results) words.
        let ctx = unsafe { &*ctx };
        let params = ctx.ty.params();
        let results_ty = ctx.ty.results();
        let mut args = Vec::with_capacity(params.len());
        for (i, &t) in params.iter().enumerate() {
            // SAFETY: see above: index `i` is within the area.
            args.push(raw_to_val(unsafe { *values.add(i) }, t)?);
        }
        let mut results: Vec<Val> = results_ty.iter().map(|&t| Val::default_for(t)).collect();
        let caller = Caller::from_vmctx(caller_vmctx);
        (ctx.func)(caller, &args, &mut results)?;
        for (i, (v, &t)) in results.iter().zip(results_ty).enumerate() {
            if v.ty() != t {
                return Err(Error::Host(format!(
                    "host function returned a {} where its type says {t}",
                    v.ty()
                )));
            }
            // SAFETY: see above.
            unsafe { *values.add(i) = val_to_raw(v)? };
        }
        Ok(())
    }));
    let err = match result {
        Ok(Ok(())) => return 0,
        Ok(Err(e)) => e,
        Err(payload) => {
            let msg = payload
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| payload.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "non-string panic payload".into());
            Error::Host(format!("host function panicked: {msg}"))
        }
    };
    PENDING_HOST_ERROR.with(|p| *p.borrow_mut() = Some(err));
    TrapCode::HostError as u32
}

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

fn is_wasm_pc(pc: usize) -> bool {
    match CODE_INFO.try_read() {
        Ok(all) => all.iter().any(|i| i.start <= pc && pc < i.end),
        Err(_) => false,
    }
}

/// Turns the recorded pcs of a trap into frames (pcs outside wasm code are left out).
fn symbolize(pcs: &[usize]) -> Vec<FrameInfo> {
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

/// Records `e` as the error the current call returns (after a `HostError` trap).
pub(crate) fn set_pending_error(e: Error) {
    PENDING_HOST_ERROR.with(|p| *p.borrow_mut() = Some(e));
}

/// A module's placed code: executable memory plus its registrations.
pub(crate) struct ModuleCode {
    _code: CodeMemory,
    _registration: CodeRegistration,
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
                _code: code,
                _registration: registration,
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
                _code: mem,
                _registration: registration,
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

/// Boxes behind the raw bits of non-null externrefs, one per distinct host value.
///
/// Generated code can store references anywhere (globals, tables, locals) and there is no
/// collector yet, so these boxes live until the process ends: a known leak, bounded by the
/// number of distinct values passed into wasm.
static EXTERN_REFS: Mutex<Option<HashMap<usize, usize>>> = Mutex::new(None);

fn extern_to_raw(r: &ExternRef) -> u64 {
    let key = Arc::as_ptr(&r.0) as *const () as usize;
    let mut map = EXTERN_REFS.lock().unwrap_or_else(|p| p.into_inner());
    let map = map.get_or_insert_with(HashMap::new);
    *map.entry(key)
        .or_insert_with(|| Box::into_raw(Box::new(r.clone())) as usize) as u64
}
