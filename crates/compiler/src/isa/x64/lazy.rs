//! Lazy compilation and direct calls on x86-64: per-function jump slots, the lazy thunk and
//! the shared lazy stub.
//!
//! Every defined function of a lazily compiled module has a [`SLOT_SIZE`]-byte jump slot in
//! the module's code range: `mov eax, index; nop2; jmp rel32; int3 x4`. Direct calls to a
//! function not compiled yet, and its `VMFuncRef::code`, point at the slot. The `jmp`
//! first leads to the module's lazy thunk (`jmp [vmctx + lazy_stub]`); once the function
//! is compiled, the runtime rewrites the jump's displacement, at [`SLOT_PATCH_OFFSET`] (4-byte
//! aligned in a 16-byte aligned slot), with one aligned 4-byte store, so later calls go
//! straight to the code. A thread that still sees the old displacement reaches the lazy
//! stub, which finds the code already compiled: both targets are correct.
//!
//! The lazy stub is entered exactly like the function (arguments in the caller's outgoing
//! area, the callee's vmctx in r15, the index in eax), calls the `LazyCompile` builtin,
//! which compiles the function (once) and patches the funcref, and then tail-jumps to the
//! compiled code so the function runs as if called directly.

use super::x64;
use crate::vmctx::{Builtin, VMOffsets};
use crate::{CompileError, TrapCode};
use dynasmrt::x64::X64Relocation;
use dynasmrt::{DynasmApi, DynasmLabelApi, VecAssembler};

/// Bytes per jump slot (slots are placed 16-byte aligned).
pub const SLOT_SIZE: usize = 16;

/// Offset in a slot of the 4-byte displacement of its `jmp`, the word that is patched.
pub const SLOT_PATCH_OFFSET: usize = 8;

/// The module's lazy thunk, `jmp [vmctx + lazy_stub]`: where slots jump first.
pub fn lazy_thunk() -> Result<Vec<u8>, CompileError> {
    let mut ops: VecAssembler<X64Relocation> = VecAssembler::new(0);
    let lazy = VMOffsets::default().lazy_stub();
    x64!(ops; jmp QWORD [vmctx + lazy]);
    ops.finalize()
        .map_err(|e| CompileError::internal(format!("x64 lazy thunk: {e}")))
}

/// `rel32` from the end of a 4-byte field at `field` to `target`, if in range.
fn rel32(field: usize, target: usize) -> Option<i32> {
    let delta = (target as i64).wrapping_sub(field as i64 + 4);
    i32::try_from(delta).ok()
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
        let slot = base + i as usize * SLOT_SIZE;
        let word = slot_jump(slot, thunk)
            .ok_or_else(|| CompileError::internal("lazy thunk out of range".into()))?;
        out.push(0xB8); // mov eax, imm32
        out.extend((first + i).to_le_bytes());
        out.extend([0x66, 0x90, 0xE9]); // nop2; jmp rel32
        out.extend(word.to_le_bytes());
        out.extend([0xCC; 4]);
    }
    Ok(out)
}

/// The word to store at `slot + SLOT_PATCH_OFFSET` so the slot at `slot` jumps to `target`
/// (`None` if out of range).
pub fn slot_jump(slot: usize, target: usize) -> Option<u32> {
    rel32(slot + SLOT_PATCH_OFFSET, target).map(|d| d as u32)
}

/// The 4-byte field of a direct call (`call rel32`) at address `field_addr` that calls
/// `target` (the displacement, stored little-endian), if in range.
pub fn call_word(field_addr: usize, target: usize) -> Option<u32> {
    rel32(field_addr, target).map(|d| d as u32)
}

/// The 4-byte field that replaces `old`, the field of a direct call (`call rel32`) or tail
/// call (`jmp rel32`) at address `field_addr`, to reach `target` instead, if in range (the
/// opcode is not part of the field, so `old` does not matter on x86-64).
pub fn retarget_word(_old: u32, field_addr: usize, target: usize) -> Option<u32> {
    call_word(field_addr, target)
}

/// Fills in the target of a direct call (`call rel32`) or tail call (`jmp rel32`) whose 4-byte field `field` is at
/// address `field_addr`, to call `target`.
pub fn resolve_call(
    field: &mut [u8],
    field_addr: usize,
    target: usize,
) -> Result<(), CompileError> {
    let w = call_word(field_addr, target).ok_or_else(|| {
        CompileError::unsupported_feature("direct call target out of range of rel32".into())
    })?;
    field[..4].copy_from_slice(&w.to_le_bytes());
    Ok(())
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
        .map_err(|e| CompileError::internal(format!("x64 lazy stub: {e}")))
}
