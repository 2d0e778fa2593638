//! Entering wasm from the host: the stack limit of the activation, the store pointer that
//! builtins and host calls use, and the call through the entry stub.

use super::store::{VMStore, VMStoreContext};
use super::traps::{take_trap_error, Activations, ACTIVATIONS};
use super::vmctx::VMFuncRef;
use crate::Error;
use std::ptr::NonNull;

/// Lowest address of the current thread's stack.
#[cold]
fn thread_stack_low() -> usize {
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
    v.max(1)
}

/// Stack kept free below the wasm limit for host functions and the runtime.
const HOST_STACK_MARGIN: usize = 256 * 1024;

/// Calls the function behind `funcref` through the entry stub at `enter`. `values` holds
/// the arguments in its first `words` entries (one word per value, two per v128, low half
/// first) and receives the results there; it must have `words + 3` entries, because the
/// stub stores the integer return register at `values[words]` and the 16 bytes of the
/// float/vector one at `values[words + 1 ..= words + 2]`.
///
/// # Safety
/// `funcref` must point at a live funcref of the store behind `store`, whose context is
/// `store_ctx`; `store` must be derived from the caller's exclusive borrow of that store,
/// and the caller must not use that borrow until this returns (host functions and builtins
/// reach the store through `store` meanwhile).
#[inline]
pub(crate) unsafe fn call_raw(
    enter: usize,
    store: NonNull<dyn VMStore>,
    store_ctx: *mut VMStoreContext,
    funcref: *const VMFuncRef,
    values: &mut [u64],
    words: usize,
    max_wasm_stack: usize,
) -> Result<(), Error> {
    assert!(values.len() >= words + 3);
    // One thread-local lookup per entry: the state lives as long as this thread.
    let act: *const Activations = ACTIVATIONS.with(|a| a as *const Activations);
    // SAFETY: `act` points at this thread's activation state, alive while the thread runs.
    let act = unsafe { &*act };
    let outer_limit = act.stack_limit.get();
    let limit = if outer_limit == 0 {
        let here = &outer_limit as *const usize as usize;
        if act.stack_low.get() == 0 {
            act.stack_low.set(thread_stack_low());
        }
        let low = act.stack_low.get().saturating_add(HOST_STACK_MARGIN);
        here.saturating_sub(max_wasm_stack).max(low)
    } else {
        outer_limit
    };
    act.stack_limit.set(limit);
    // SAFETY: per the contract the funcref and the store context are live; every callee
    // context (instance vmctx or host context) starts with the stack limit word, and only
    // this thread runs code of this store (the caller holds it exclusively).
    let (code, vmctx, prev_store) = unsafe {
        let f = *funcref;
        *(f.vmctx as *mut u64) = limit as u64;
        let prev = (*store_ctx).store.replace(store);
        (f.code, f.vmctx, prev)
    };
    let prev_resume = act.resume_sp.get();
    type Enter = unsafe extern "C" fn(usize, usize, *mut u64, usize, *mut usize) -> u32;
    // SAFETY: `enter` is the entry routine (from the engine's stubs) with exactly this
    // signature; the code and context it is given stay alive for the call; `values` has
    // `words + 3` entries.
    let status = unsafe {
        let enter: Enter = std::mem::transmute::<usize, Enter>(enter);
        enter(
            vmctx,
            code,
            values.as_mut_ptr(),
            words,
            act.resume_sp.as_ptr(),
        )
    };
    act.resume_sp.set(prev_resume);
    act.stack_limit.set(outer_limit);
    // SAFETY: as above. Restoring the outer entry's pointer keeps a reentrant call (host ->
    // wasm of the same store) from leaving its shorter-lived pointer behind.
    unsafe { (*store_ctx).store = prev_store };
    if status == 0 {
        Ok(())
    } else {
        Err(take_trap_error())
    }
}
