//! Lazy compilation and direct calls on AArch64: per-function jump slots, the lazy thunk
//! and the shared lazy stub (same contract as `x64/lazy.rs`).
//!
//! A jump slot is `mov w17, #index; movk w17, #index_hi, lsl #16; b target; brk #0` (16
//! bytes). Its `b` first leads to the module's lazy thunk (`ldr x16, [x28, #lazy_stub];
//! br x16`); once the function is compiled, the runtime replaces the `b` word (at
//! [`SLOT_PATCH_OFFSET`]) with a `b` to the code in one aligned 4-byte store, which the
//! architecture allows while other cores execute it (B, BL and NOP may be concurrently
//! modified), and then cleans and invalidates the cache line. A core that still fetches
//! the old word reaches the lazy stub, which finds the code already compiled.
//!
//! The lazy stub is entered exactly like the function (arguments in the caller's outgoing
//! area, the callee's vmctx in x28, the return address in x30), calls the `LazyCompile`
//! builtin, which compiles the function and patches the funcref, and then jumps to the
//! compiled code so that the function runs as if called directly.

use super::a64;
use super::enc::{self, LdSt, ZR};
use super::masm::VMCTX;
use crate::vmctx::{Builtin, VMOffsets};
use crate::{CompileError, TrapCode};
use dynasmrt::aarch64::Aarch64Relocation;
use dynasmrt::{DynasmApi, DynasmLabelApi, VecAssembler};

/// Bytes per jump slot (slots are placed 16-byte aligned).
pub const SLOT_SIZE: usize = 16;

/// Offset in a slot of its `b` word, the word that is patched.
pub const SLOT_PATCH_OFFSET: usize = 8;

/// Range of `b` and `bl`: offsets in `-RANGE..RANGE`.
const RANGE: i64 = 128 << 20;

/// `ldr x16, [x28 + off]` for a vmctx offset of the fixed header (always encodable).
fn ldr_vmctx(off: i32) -> Result<u32, CompileError> {
    let uimm = LdSt::LDR_X
        .uimm(off.into())
        .ok_or_else(|| CompileError::internal(format!("vmctx offset {off}")))?;
    Ok(LdSt::LDR_X.scaled(16, VMCTX, uimm))
}

/// The module's lazy thunk, `ldr x16, [x28, #lazy_stub]; br x16`: where slots jump first.
pub fn lazy_thunk() -> Result<Vec<u8>, CompileError> {
    let lazy = ldr_vmctx(VMOffsets::default().lazy_stub())?;
    Ok([lazy, enc::br(16)]
        .iter()
        .flat_map(|w| w.to_le_bytes())
        .collect())
}

/// The offset from `from` to `target` if a `b`/`bl` at `from` reaches it.
fn branch_offset(from: usize, target: usize) -> Option<i64> {
    let delta = (target as i64).wrapping_sub(from as i64);
    (delta % 4 == 0 && (-RANGE..RANGE).contains(&delta)).then_some(delta)
}

/// Jump slots for functions `first..first + count`, the first at address `base` (16-byte
/// aligned), each [`SLOT_SIZE`] bytes apart and jumping to the lazy thunk at `thunk`.
pub fn jump_slots(
    first: u32,
    count: u32,
    base: usize,
    thunk: usize,
) -> Result<Vec<u8>, CompileError> {
    let mut out = Vec::with_capacity(count as usize * SLOT_SIZE);
    for i in 0..count {
        let index = first + i;
        let slot = base + i as usize * SLOT_SIZE;
        let jump = slot_jump(slot, thunk)
            .ok_or_else(|| CompileError::internal("lazy thunk out of range".into()))?;
        for w in [
            enc::mov_wide(false, enc::MovWide::Z, 17, index as u16, 0),
            enc::mov_wide(false, enc::MovWide::K, 17, (index >> 16) as u16, 1),
            jump,
            0xD420_0000, // brk #0
        ] {
            out.extend(w.to_le_bytes());
        }
    }
    Ok(out)
}

/// The word to store at `slot + SLOT_PATCH_OFFSET` so the slot at `slot` jumps to `target`
/// (`None` if out of range).
pub fn slot_jump(slot: usize, target: usize) -> Option<u32> {
    branch_offset(slot + SLOT_PATCH_OFFSET, target).map(enc::b)
}

/// The `bl` word at address `field_addr` that calls `target`, if in range.
pub fn call_word(field_addr: usize, target: usize) -> Option<u32> {
    branch_offset(field_addr, target).map(enc::bl)
}

/// The word that replaces `old`, a direct call (`bl`) or tail call (`b`) at address
/// `field_addr`, to branch to `target` instead (the same kind of branch), if in range.
pub fn retarget_word(old: u32, field_addr: usize, target: usize) -> Option<u32> {
    let tail = old & 0xFC00_0000 == enc::b(0);
    branch_offset(field_addr, target).map(if tail { enc::b } else { enc::bl })
}

/// Fills in the target of a direct call (`bl`) or tail call (`b`) whose word `field` is at
/// address `field_addr`, to branch to `target`.
pub fn resolve_call(
    field: &mut [u8],
    field_addr: usize,
    target: usize,
) -> Result<(), CompileError> {
    let old = u32::from_le_bytes([field[0], field[1], field[2], field[3]]);
    let w = retarget_word(old, field_addr, target).ok_or_else(|| {
        CompileError::unsupported_feature("direct call target out of range of bl".into())
    })?;
    field[..4].copy_from_slice(&w.to_le_bytes());
    Ok(())
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
        .map_err(|e| CompileError::internal(format!("aarch64 lazy stub: {e}")))
}
