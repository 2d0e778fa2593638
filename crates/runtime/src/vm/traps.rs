//! Per-thread trap state: where a trapping thread resumes, what the trap was, its frames,
//! and the error a failed host call or builtin left to be returned.
//!
//! Activations nest on one thread (wasm -> host -> wasm), so this state is per thread; each
//! entry saves and restores the resume point around its call.

use super::code::{is_wasm_pc, symbolize};
use crate::error::{Error, Trap, TrapCode};
use std::cell::{Cell, RefCell};

thread_local! {
    /// Stack pointer the trap landing resumes at (saved by the innermost `enter`).
    pub(super) static RESUME_SP: Cell<usize> = const { Cell::new(0) };
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
    RESUME_SP.with(|r| r.get())
}

/// Records `e` as the error the current wasm call returns once it has trapped.
pub(crate) fn set_pending_error(e: Error) {
    PENDING_ERROR.with(|p| *p.borrow_mut() = Some(e));
}

/// Forgets a pending error (before entering wasm, so a stale one is never returned).
pub(crate) fn clear_pending_error() {
    PENDING_ERROR.with(|p| p.borrow_mut().take());
}

/// The error for the trap just taken on this thread: the pending host error if one was
/// recorded, else the trap itself, with the wasm backtrace either way.
pub(crate) fn take_trap_error() -> Error {
    let (code, _pc) = LAST_TRAP.with(|t| t.get());
    let code = TrapCode::from_u8(code as u8).unwrap_or(TrapCode::Unreachable);
    let pcs = TRAP_PCS.with(|p| std::mem::take(&mut *p.borrow_mut()));
    let frames = symbolize(&pcs);
    match PENDING_ERROR.with(|p| p.borrow_mut().take()) {
        Some(e) => e.with_frames(frames),
        None => Error::Trap(Trap::new(code).with_frames(frames)),
    }
}
