//! Lazy compilation on x86-64: per-function trampolines and the shared lazy stub.
//!
//! A defined function's `VMFuncRef::code` first points at its trampoline
//! (`mov eax, index; jmp [vmctx + lazy_stub]`). The lazy stub is entered exactly like the
//! function (arguments in the caller's outgoing area, the callee's vmctx in r15), calls the
//! `LazyCompile` builtin, which compiles the function and patches the funcref, and then
//! tail-jumps to the compiled code so the function runs as if called directly.

use super::x64;
use crate::vmctx::{Builtin, VMOffsets};
use crate::{CompileError, TrapCode};
use dynasmrt::x64::X64Relocation;
use dynasmrt::{DynasmApi, DynasmLabelApi, VecAssembler};

/// Bytes per trampoline.
pub const TRAMPOLINE_SIZE: usize = 16;

/// Trampolines for functions `first..first + count`, each [`TRAMPOLINE_SIZE`] bytes apart.
pub fn lazy_trampolines(first: u32, count: u32) -> Result<Vec<u8>, CompileError> {
    let mut ops: VecAssembler<X64Relocation> = VecAssembler::new(0);
    let lazy = VMOffsets::default().lazy_stub();
    for i in 0..count {
        let start = ops.offset().0;
        x64!(ops
            ; mov eax, (first + i) as i32
            ; jmp QWORD [vmctx + lazy]
        );
        while ops.offset().0 < start + TRAMPOLINE_SIZE {
            ops.push(0xCC);
        }
    }
    ops.finalize()
        .map_err(|e| CompileError::Internal(format!("x64 trampolines: {e}")))
}

/// The shared lazy stub (one per process).
pub fn lazy_stub() -> Result<Vec<u8>, CompileError> {
    let mut ops: VecAssembler<X64Relocation> = VecAssembler::new(0);
    let offsets = VMOffsets::default();
    let compile = offsets.builtin(Builtin::LazyCompile);
    let landing = offsets.trap_landing();
    let code = TrapCode::HostError as u8 as i32;
    x64!(ops
        ; push rbp
        ; mov rbp, rsp
        ; mov rdi, vmctx
        ; mov esi, eax
        ; call QWORD [vmctx + compile]
        ; pop rbp
        ; test rax, rax
        ; jz >failed
        ; jmp rax
        ; failed:
        // The function could not be compiled (the runtime recorded why): trap in the caller.
        ; mov edi, code
        ; mov rsi, [rsp]
        ; mov rdx, rbp
        ; jmp QWORD [vmctx + landing]
    );
    ops.finalize()
        .map_err(|e| CompileError::Internal(format!("x64 lazy stub: {e}")))
}
