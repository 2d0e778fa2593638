//! Per-thread trap state: where a trapping thread resumes, what the trap was, its frames,
//! and the error a failed host call or builtin left to be returned.
//!
//! Activations nest on one thread (wasm -> host -> wasm), so this state is per thread; each
//! entry saves and restores the resume point around its call.

use super::code::{is_wasm_pc, symbolize};
use crate::error::{Error, Trap, TrapCode};
use std::cell::{Cell, RefCell};

/// The per-thread state of the wasm activations running on a thread, read once per entry.
pub(super) struct Activations {
    /// Stack pointer the trap landing resumes at (saved by the innermost `enter`).
    pub resume_sp: Cell<usize>,
    /// Stack limit of the outermost wasm activation on this thread (0 outside wasm).
    pub stack_limit: Cell<usize>,
    /// Lowest usable address of this thread's stack (0 until first needed).
    pub stack_low: Cell<usize>,
}

thread_local! {
    /// This thread's activations.
    pub(super) static ACTIVATIONS: Activations = const {
        Activations {
            resume_sp: Cell::new(0),
            stack_limit: Cell::new(0),
            stack_low: Cell::new(0),
        }
    };
    /// The last trap raised on this thread: (code, pc).
    static LAST_TRAP: Cell<(u32, usize)> = const { Cell::new((0, 0)) };
    /// Frames of the last trap: the trapping pc, then return addresses into wasm code.
    static TRAP_PCS: RefCell<Vec<usize>> = const { RefCell::new(Vec::new()) };
    /// The error of a host function or builtin that failed, waiting to be returned.
    static PENDING_ERROR: RefCell<Option<Error>> = const { RefCell::new(None) };
}

/// Frames recorded per trap at most (deep recursion traps keep the innermost ones).
const MAX_BACKTRACE: usize = 1000;

/// Called by the trap landing (on the wasm stack, with nothing to unwind): records the trap
/// and returns where to resume. Must not panic or allocate beyond the reused pc buffer.
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
    ACTIVATIONS.with(|a| a.resume_sp.get())
}

/// Records `e` as the error the current wasm call returns once it has trapped. Callers
/// (the host-call shim and the builtins) trap right after recording it, so the innermost
/// entry always takes it back; nothing is left behind for a later call.
pub(crate) fn set_pending_error(e: Error) {
    PENDING_ERROR.with(|p| *p.borrow_mut() = Some(e));
}

/// The error for the trap just taken on this thread: the pending host error if one was
/// recorded, else the trap itself, with the wasm backtrace either way.
pub(crate) fn take_trap_error() -> Error {
    let (code, _pc) = LAST_TRAP.with(|t| t.get());
    let code = TrapCode::from_u8(code as u8).unwrap_or(TrapCode::Unreachable);
    let pcs = TRAP_PCS.with(|p| std::mem::take(&mut *p.borrow_mut()));
    let frames = symbolize(&pcs);
    // Only the trap codes that follow a recorded error (a failed host call or lazy
    // compilation, an epoch callback's error) may carry one.
    let pending = PENDING_ERROR.with(|p| p.borrow_mut().take());
    match pending {
        Some(e) if matches!(code, TrapCode::HostError | TrapCode::Interrupt) => {
            e.with_frames(frames)
        }
        _ => Error::Trap(Trap::new(code).with_frames(frames)),
    }
}
