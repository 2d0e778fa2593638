//! Engine-wide x86-64 routines between the host and wasm code.
//!
//! * `enter(vmctx, code, values, words, resume_sp_cell) -> u32` (System V): saves the host's
//!   callee-saved registers, records the stack pointer to resume at after a trap in
//!   `*resume_sp_cell`, copies `words` 8-byte values from `values` into an outgoing area (of at least
//!   [`crate::MIN_CALL_AREA_WORDS`] words),
//!   calls `code` with the internal convention, copies the area back to `values`, stores the
//!   integer return register to `values[words]` and all 16 bytes of the float/vector one
//!   (`xmm0`) to `values[words + 1 ..= words + 2]` (an f32/f64 result is in the low bytes,
//!   i.e. in `values[words + 1]`; a v128 fills both words, low half first), and returns 0;
//!   `values` must have at least `words + 3` entries. After a trap it returns 1 instead.
//!   A v128 argument or result in the area occupies two consecutive words (low half first).
//! * `host_call`: the code pointer of every host function's `VMFuncRef`. Entered from wasm
//!   with the host context in the vmctx register and the caller's vmctx in `r11`; calls
//!   `host_ctx.call(host_ctx, caller_vmctx, args_and_results)` and turns a non-zero result
//!   (a trap code) into a trap. Otherwise it loads the return registers from the start of
//!   the area: 8 bytes into `rax` and 16 bytes into `xmm0` (so a v128 single result, two
//!   words, comes back whole; for a one-word area the upper 8 bytes read are in the
//!   caller's frame and meaningless).
//!   A host function that throws a wasm exception returns [`host_ctx::THROW`] instead of a
//!   trap code; the stub then pops its own frame and throws from the wasm call site, as if
//!   the call instruction had thrown (the runtime's unwinder finds the exception itself).
//! * `trap_landing(code, pc, fp)`: entered from trap stubs or the signal handler; calls the
//!   runtime's `raise_trap(code, pc, fp) -> resume_sp`, which records the trap and returns
//!   the stack pointer saved by the innermost `enter`, and leaves `enter` with 1.
//! * `throw_landing(exn)`: entered by a call from wasm code with an exnref in the first
//!   argument register (0: the exception a host function left with the runtime). Calls
//!   the runtime's `unwind(exn, pc, fp, out: *mut [usize; 4]) -> u32` with the call's
//!   return address and the caller's frame pointer. When it returns 1, `out` holds the
//!   landing pad, its frame pointer and stack pointer and the exnref: the stub switches to
//!   that frame and jumps to the pad with the exnref in the return register. When it
//!   returns 0 (no wasm frame of this activation catches it), `out[2]` is the stack
//!   pointer saved by the innermost `enter`, which the stub leaves with 1 as for a trap.

use super::x64;
pub use crate::isa::Stubs;
use crate::vmctx::{host_ctx, VMOffsets};
use crate::CompileError;
use dynasmrt::x64::X64Relocation;
use dynasmrt::{DynasmApi, DynasmLabelApi, VecAssembler};

/// Assembles the routines; `raise_trap` is the address of the runtime's
/// `extern "C" fn(code: u32, pc: usize, fp: usize) -> usize`, `unwind` that of its
/// `extern "C" fn(exn: usize, pc: usize, fp: usize, out: *mut [usize; 4]) -> u32`.
pub fn generate_stubs(raise_trap: usize, unwind: usize) -> Result<Stubs, CompileError> {
    let mut ops: VecAssembler<X64Relocation> = VecAssembler::new(0);
    let membase_off = VMOffsets::default().memory0_base();
    let min_area = 8 * crate::MIN_CALL_AREA_WORDS as i32;
    let host_call_fn = host_ctx::CALL;

    let trap_exit = ops.new_dynamic_label();
    let landing = ops.new_dynamic_label();
    let host_call = ops.new_dynamic_label();
    let host_trap = ops.new_dynamic_label();
    let host_throw = ops.new_dynamic_label();
    let throw = ops.new_dynamic_label();
    let throw_code = host_ctx::THROW as i32;

    // ---- enter
    let enter = ops.offset().0;
    x64!(ops
        ; push rbp
        ; mov rbp, rsp
        ; push rbx
        ; push r12
        ; push r13
        ; push r14
        ; push r15
        ; push rdx               // values   [rbp - 48]
        ; push rcx               // words    [rbp - 56]
        ; sub rsp, 8
        ; mov rbx, rdx
        ; mov r12, rcx
        ; mov [r8], rsp           // where a trap resumes
        // At least MIN_CALL_AREA_WORDS words, so the callee may tail-call in place.
        ; lea rax, [rcx * 8 + 15 + min_area]
        ; and rax, -16
        ; sub rsp, rax
        ; xor eax, eax
        ; copy_in:
        ; cmp rax, r12
        ; jae >copied_in
        ; mov r11, [rbx + rax * 8]
        ; mov [rsp + rax * 8], r11
        ; inc rax
        ; jmp <copy_in
        ; copied_in:
        ; mov vmctx, rdi
        ; mov membase, [vmctx + membase_off]
        ; xor r11d, r11d          // no calling instance
        ; call rsi
        // wasm code clobbers every allocatable register, including rbx and r12
        ; mov rbx, [rbp - 48]
        ; mov r12, [rbp - 56]
        ; xor ecx, ecx
        ; copy_out:
        ; cmp rcx, r12
        ; jae >copied_out
        ; mov r11, [rsp + rcx * 8]
        ; mov [rbx + rcx * 8], r11
        ; inc rcx
        ; jmp <copy_out
        ; copied_out:
        ; mov [rbx + r12 * 8], rax
        ; movups [rbx + r12 * 8 + 8], xmm0
        ; xor eax, eax
        ; lea rsp, [rbp - 40]
        ; pop r15
        ; pop r14
        ; pop r13
        ; pop r12
        ; pop rbx
        ; pop rbp
        ; ret
        ;=>trap_exit
        ; mov eax, 1
        ; add rsp, 24
        ; pop r15
        ; pop r14
        ; pop r13
        ; pop r12
        ; pop rbx
        ; pop rbp
        ; ret
    );

    // ---- trap_landing
    let trap_landing = ops.offset().0;
    x64!(ops
        ;=>landing
        ; and rsp, -16
        ; mov rax, QWORD raise_trap as i64
        ; call rax
        ; mov rsp, rax
        ; jmp =>trap_exit
    );

    // ---- host_call
    let host_call_off = ops.offset().0;
    x64!(ops
        ;=>host_call
        ; push rbp
        ; mov rbp, rsp
        ; mov rdi, vmctx
        ; mov rsi, r11
        ; lea rdx, [rbp + 16]
        ; call QWORD [rdi + host_call_fn]
        ; test eax, eax
        ; jnz =>host_trap
        ; mov rax, [rbp + 16]
        ; movups xmm0, [rbp + 16]
        ; pop rbp
        ; ret
        ;=>host_trap
        ; cmp eax, throw_code
        ; je =>host_throw
        ; mov edi, eax
        ; lea rsi, [=>host_call]
        ; mov rdx, rbp
        ; jmp =>landing
        ;=>host_throw
        ; xor edi, edi
        ; mov rsp, rbp
        ; pop rbp
        ; jmp =>throw
    );

    // ---- throw_landing
    let throw_landing = ops.offset().0;
    x64!(ops
        ;=>throw
        ; pop rsi
        ; mov rdx, rbp
        ; and rsp, -16
        ; sub rsp, 32
        ; mov rcx, rsp
        ; mov rax, QWORD unwind as i64
        ; call rax
        ; test eax, eax
        ; jz >uncaught
        ; mov rax, [rsp + 24]
        ; mov rbp, [rsp + 8]
        ; mov rcx, [rsp]
        ; mov rsp, [rsp + 16]
        ; jmp rcx
        ; uncaught:
        ; mov rsp, [rsp + 16]
        ; jmp =>trap_exit
    );

    let code = ops
        .finalize()
        .map_err(|e| CompileError::internal(format!("x64 stubs: {e}")))?;
    Ok(Stubs {
        code,
        enter,
        host_call: host_call_off,
        trap_landing,
        throw_landing,
    })
}
