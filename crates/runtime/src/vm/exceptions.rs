//! Exceptions at the machine level: tags, exception objects, and the unwinder the throw
//! landing calls.
//!
//! A tag is a store-owned [`VMTag`]; its address is its identity, which generated code
//! keeps in the vmctx (`VMOffsets::tag_ptr`) and exception objects carry. An exception
//! object is a store-owned block of words laid out as `wjit_compiler::vmctx::exn` says
//! (the tag, then the payload); an `exnref` is its address. Objects live as long as their
//! store (wjit has no collector yet).
//!
//! [`unwind`] runs on the wasm stack, called by the throw landing: it walks the frame-pointer
//! chain of the current activation and asks the code registry for a catch clause at each
//! return address. Nothing it skips is a Rust frame: a host function that throws returns
//! to its stub first, and an activation that does not catch returns to its host caller
//! as an error (see `traps`).

use super::code::{catch_at, CatchLookup};
use super::traps::{raise_trap, set_pending_error};
use crate::error::{Error, ThrownException, TrapCode};
use crate::types::FuncType;
use std::cell::Cell;

/// A tag: what `catch` clauses and exceptions compare by address.
pub(crate) struct VMTag {
    /// The tag's type (its parameters are the payload).
    pub ty: FuncType,
    /// The id of the store owning the tag (for the handles made from an exception).
    pub store: u64,
    /// Index of the tag in its store.
    pub index: u32,
}

thread_local! {
    /// The exception a host function threw, for the unwinder (`unwind(0, ..)`).
    static HOST_THROWN: Cell<usize> = const { Cell::new(0) };
}

/// Keeps `exn` (an exception object's address) for the throw its host-call stub is about
/// to do, which takes it right back.
pub(crate) fn set_host_thrown(exn: usize) {
    HOST_THROWN.with(|t| t.set(exn));
}

/// The tag identity of exception object `exn` (a live object's address).
///
/// # Safety
/// `exn` must be the address of a live exception object.
pub(crate) unsafe fn exn_tag(exn: usize) -> *const VMTag {
    let at = exn + wjit_compiler::vmctx::exn::TAG as usize;
    // SAFETY: per the contract, the tag word of a live object.
    unsafe { *(at as *const *const VMTag) }
}

/// Called by the throw landing with the exception (0: the one a host function threw),
/// the return address of the throwing call and its caller's frame pointer. Returns 1 with
/// `out` = [landing pad, frame pointer, stack pointer, exnref] when a frame of this
/// activation catches it; else records the uncaught exception as the activation's error
/// and returns 0 with `out[2]` = the stack pointer the innermost entry resumes at.
///
/// Must not unwind (it runs between wasm frames): it only reads memory and thread-locals.
pub(crate) extern "C" fn unwind(exn: usize, pc: usize, fp: usize, out: *mut [usize; 4]) -> u32 {
    let exn = if exn == 0 {
        HOST_THROWN.with(|t| t.replace(0))
    } else {
        exn
    };
    // SAFETY: the throw landing passes a pointer to four words of its own stack.
    let out = unsafe { &mut *out };
    if exn != 0 {
        // SAFETY: generated code and the host-call shim throw live exception objects.
        let tag = unsafe { exn_tag(exn) } as usize;
        let (mut pc, mut fp) = (pc, fp);
        while fp != 0 && fp % 8 == 0 {
            match catch_at(pc, fp, tag) {
                CatchLookup::NotWasm => break,
                CatchLookup::Catch { pad, sp } => {
                    *out = [pad, fp, sp, exn];
                    return 1;
                }
                CatchLookup::Next => {
                    // SAFETY: `fp` is the frame pointer of a wasm frame: its first two words
                    // are the caller's frame pointer and the return address.
                    let (next, ret) =
                        unsafe { (*(fp as *const usize), *((fp + 8) as *const usize)) };
                    pc = ret;
                    fp = next;
                }
            }
        }
        // SAFETY: as above.
        let tag = unsafe { &*(tag as *const VMTag) };
        set_pending_error(Error::Exception(ThrownException {
            store: tag.store,
            exn,
        }));
    } else {
        set_pending_error(Error::msg("internal error: an exception was lost"));
    }
    out[2] = raise_trap(TrapCode::HostError as u32, pc, fp);
    0
}
