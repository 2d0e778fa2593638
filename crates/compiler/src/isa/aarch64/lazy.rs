//! Lazy compilation on AArch64: per-function trampolines and the shared lazy stub (same
//! contract as `x64/lazy.rs`).
//!
//! A trampoline is `mov w17, #index; ldr x16, [x28, #lazy_stub]; br x16` (16 bytes). The
//! lazy stub is entered exactly like the function (arguments in the caller's outgoing area,
//! the callee's vmctx in x28, the return address in x30), calls the `LazyCompile` builtin,
//! which compiles the function and patches the funcref, and then jumps to the compiled code
//! so that the function runs as if called directly.

use super::a64;
use super::enc::{self, LdSt, ZR};
use super::masm::VMCTX;
use crate::vmctx::{Builtin, VMOffsets};
use crate::{CompileError, TrapCode};
use dynasmrt::aarch64::Aarch64Relocation;
use dynasmrt::{DynasmApi, DynasmLabelApi, VecAssembler};

/// Bytes per trampoline.
pub const TRAMPOLINE_SIZE: usize = 16;

/// `ldr x16, [x28 + off]` for a vmctx offset of the fixed header (always encodable).
fn ldr_vmctx(off: i32) -> Result<u32, CompileError> {
    let uimm = LdSt::LDR_X
        .uimm(off.into())
        .ok_or_else(|| CompileError::Internal(format!("vmctx offset {off}")))?;
    Ok(LdSt::LDR_X.scaled(16, VMCTX, uimm))
}

/// Trampolines for functions `first..first + count`, each [`TRAMPOLINE_SIZE`] bytes apart.
pub fn lazy_trampolines(first: u32, count: u32) -> Result<Vec<u8>, CompileError> {
    let lazy = ldr_vmctx(VMOffsets::default().lazy_stub())?;
    let mut out = Vec::with_capacity(count as usize * TRAMPOLINE_SIZE);
    for i in 0..count {
        let index = first + i;
        for w in [
            enc::mov_wide(false, enc::MovWide::Z, 17, index as u16, 0),
            enc::mov_wide(false, enc::MovWide::K, 17, (index >> 16) as u16, 1),
            lazy,
            enc::br(16),
        ] {
            out.extend(w.to_le_bytes());
        }
    }
    Ok(out)
}

/// The shared lazy stub (one per process).
pub fn lazy_stub() -> Result<Vec<u8>, CompileError> {
    let mut ops: VecAssembler<Aarch64Relocation> = VecAssembler::new(0);
    let offsets = VMOffsets::default();
    let compile = ldr_vmctx(offsets.builtin(Builtin::LazyCompile))?;
    let landing = ldr_vmctx(offsets.trap_landing())?;
    let code = TrapCode::HostError as u8 as u16;
    a64!(ops
        ; stp x29, x30, [sp, #-16]!
        ; mov x29, sp
        ; mov x0, x28
        ; mov w1, w17
    );
    ops.push_u32(compile);
    a64!(ops
        ; blr x16
        ; ldp x29, x30, [sp], #16
        ; cbz x0, >failed
        ; br x0
        ; failed:
    );
    // The function could not be compiled (the runtime recorded why): trap in the caller.
    ops.push_u32(enc::mov_wide(false, enc::MovWide::Z, 0, code, 0));
    ops.push_u32(enc::logical_reg(true, enc::LogicOp::Orr, false, 1, ZR, 30));
    ops.push_u32(enc::logical_reg(true, enc::LogicOp::Orr, false, 2, ZR, 29));
    ops.push_u32(landing);
    ops.push_u32(enc::br(16));
    ops.finalize()
        .map_err(|e| CompileError::Internal(format!("aarch64 lazy stub: {e}")))
}
