//! The context behind a host function's funcref: what the host-call stub is entered with.

use super::store::VMStoreContext;
use super::vmctx::VMFuncRef;
use crate::types::FuncType;
use std::any::Any;

/// The signature of the Rust routine the host-call stub calls: `(host context, caller vmctx
/// or 0, values) -> 0 or a trap code`. `values` holds the arguments and receives the
/// results (the larger of the two lists' sizes, in words: one per value, two per v128,
/// low half first; the stub loads a single result from the first one or two words).
pub(crate) type HostCallFn = extern "C" fn(*const HostFuncCtx, usize, *mut u64) -> u32;

/// A host function's context. `#[repr(C)]`: the first two words are read by generated code
/// and the stubs (layout in `wjit_compiler::vmctx::host_ctx`). Its address is stable (the
/// store keeps it in an `Owned`) because the funcref points into it.
#[repr(C)]
pub(crate) struct HostFuncCtx {
    /// Shared header with the instance vmctx (written by callers).
    stack_limit: u64,
    /// The Rust routine the host-call stub calls.
    call: HostCallFn,
    /// The store's context (for the store pointer).
    pub store_context: *mut VMStoreContext,
    /// The canonical funcref of this function.
    pub funcref: VMFuncRef,
    /// The function's type.
    pub ty: FuncType,
    /// The Rust closure, type-erased; `call` knows its type.
    pub func: Box<dyn Any + Send + Sync>,
}

impl HostFuncCtx {
    /// A context; call [`HostFuncCtx::link`] once it is at its final address.
    /// `host_call` is the address of the host-call stub.
    pub fn new(
        ty: FuncType,
        type_id: u32,
        call: HostCallFn,
        func: Box<dyn Any + Send + Sync>,
        store_context: *mut VMStoreContext,
        host_call: usize,
    ) -> HostFuncCtx {
        HostFuncCtx {
            stack_limit: 0,
            call,
            store_context,
            funcref: VMFuncRef {
                code: host_call,
                vmctx: 0,
                type_id: type_id as u64,
            },
            ty,
            func,
        }
    }

    /// Points the funcref at this context (at its final, stable address).
    pub fn link(&mut self) {
        self.funcref.vmctx = self as *mut HostFuncCtx as usize;
    }
}
