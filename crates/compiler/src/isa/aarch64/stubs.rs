//! Engine-wide AArch64 routines between the host and wasm code. Same contracts as
//! `x64/stubs.rs`, with AAPCS64 registers:
//!
//! * `enter(vmctx = x0, code = x1, values = x2, words = x3, resume_sp_cell = x4) -> w0`:
//!   saves x19-x30 and d8-d15, keeps `values`/`words` in its frame (wasm code clobbers
//!   x19-x26), stores the stack pointer a trap resumes at in `*resume_sp_cell`, copies
//!   `words` u64s to a 16-byte aligned outgoing area at `sp`, sets x28 = vmctx,
//!   x27 = memory 0 base and x15 (caller context) = 0, calls `code`, copies the area back,
//!   stores x0 to `values[words]` and all of q0 to `values[words + 1 ..= words + 2]` and
//!   returns 0; after a trap it returns 1 (`trap_exit`, entered with `sp` = the saved
//!   resume sp).
//! * `host_call`: entered from wasm with x28 = host context and x15 = caller vmctx, the
//!   arguments at `[sp]`; calls `host_ctx.call(x28, x15, sp_at_entry)` and turns a non-zero
//!   result into a trap; otherwise loads x0 (8 bytes) and q0 (16 bytes) from the start of
//!   the area.
//!   A result of [`host_ctx::THROW`] pops the stub's frame and throws from the wasm call
//!   site instead (x0 = 0).
//! * `trap_landing(w0 = code, x1 = pc, x2 = fp)`: calls the runtime's
//!   `raise_trap(code, pc, fp) -> resume_sp`, switches to that stack and leaves `enter`
//!   with 1.
//! * `throw_landing(x0 = exn)`, entered by `blr` from wasm: calls the runtime's
//!   `unwind(exn, pc = x30, fp = x29, out)` and enters the landing pad it finds (x29 and
//!   sp from `out`, the exnref in x0), or leaves `enter` with 1.

use super::a64;
use super::enc::{self, LdSt, SP, ZR};
use super::masm::{CALLER_CTX, MEMBASE, VMCTX};
pub use crate::isa::Stubs;
use crate::vmctx::{host_ctx, VMOffsets};
use crate::CompileError;
use dynasmrt::aarch64::Aarch64Relocation;
use dynasmrt::{DynasmApi, DynasmLabelApi, VecAssembler};

/// Distance from `enter`'s frame pointer down to its resume sp (saved registers and the
/// values/words pair).
const ENTER_SAVE: u32 = 160;

/// Assembles the routines; `raise_trap` is the address of the runtime's
/// `extern "C" fn(code: u32, pc: usize, fp: usize) -> usize`, `unwind` that of its
/// `extern "C" fn(exn: usize, pc: usize, fp: usize, out: *mut [usize; 4]) -> u32`.
pub fn generate_stubs(raise_trap: usize, unwind: usize) -> Result<Stubs, CompileError> {
    let mut ops: VecAssembler<Aarch64Relocation> = VecAssembler::new(0);
    let membase_off = VMOffsets::default().memory0_base();
    let area_pad = 15 + 8 * crate::MIN_CALL_AREA_WORDS;
    let host_call_fn = host_ctx::CALL as u32;
    let emit = |ops: &mut VecAssembler<Aarch64Relocation>, w: u32| ops.push_u32(w);

    let trap_exit = ops.new_dynamic_label();
    let exit = ops.new_dynamic_label();
    let landing = ops.new_dynamic_label();
    let host_call = ops.new_dynamic_label();
    let host_trap = ops.new_dynamic_label();
    let host_throw = ops.new_dynamic_label();
    let throw = ops.new_dynamic_label();
    let throw_code = host_ctx::THROW;

    // ---- enter
    let enter = ops.offset().0;
    a64!(ops
        ; stp x29, x30, [sp, #-16]!
        ; mov x29, sp
        ; stp x19, x20, [sp, #-16]!
        ; stp x21, x22, [sp, #-16]!
        ; stp x23, x24, [sp, #-16]!
        ; stp x25, x26, [sp, #-16]!
        ; stp x27, x28, [sp, #-16]!
        ; stp d8, d9, [sp, #-16]!
        ; stp d10, d11, [sp, #-16]!
        ; stp d12, d13, [sp, #-16]!
        ; stp d14, d15, [sp, #-16]!
        ; stp x2, x3, [sp, #-16]!       // values, words at [x29 - 160]
        ; mov x16, sp
        ; str x16, [x4]                 // where a trap resumes
        // outgoing area: (words * 8 + 15 + 8 * MIN_CALL_AREA_WORDS) & !15, so the callee
        // may tail-call in place
        ; lsl x16, x3, #3
        ; add x16, x16, #area_pad
        ; and x16, x16, #0xffff_ffff_ffff_fff0
        ; sub sp, sp, x16
        ; mov x17, xzr
        ; copy_in:
        ; cmp x17, x3
        ; b.hs >copied_in
        ; ldr x16, [x2, x17, lsl #3]
        ; str x16, [sp, x17, lsl #3]
        ; add x17, x17, #1
        ; b <copy_in
        ; copied_in:
    );
    emit(
        &mut ops,
        enc::logical_reg(true, enc::LogicOp::Orr, false, VMCTX, ZR, 0),
    );
    emit(
        &mut ops,
        LdSt::LDR_X.scaled(MEMBASE, VMCTX, (membase_off / 8) as u32),
    );
    emit(
        &mut ops,
        enc::logical_reg(true, enc::LogicOp::Orr, false, CALLER_CTX, ZR, ZR),
    );
    a64!(ops
        ; blr x1
        ; ldp x2, x3, [x29, #-160]
        ; mov x17, xzr
        ; copy_out:
        ; cmp x17, x3
        ; b.hs >copied_out
        ; ldr x16, [sp, x17, lsl #3]
        ; str x16, [x2, x17, lsl #3]
        ; add x17, x17, #1
        ; b <copy_out
        ; copied_out:
        ; str x0, [x2, x3, lsl #3]
        ; add x16, x2, x3, lsl #3
        ; add x16, x16, #8
        ; str q0, [x16]
        ; mov w0, wzr
    );
    // sp = resume sp
    emit(
        &mut ops,
        enc::add_sub_imm(true, true, false, SP, 29, ENTER_SAVE, false),
    );
    a64!(ops
        ;=>exit
        ; add sp, sp, #16
        ; ldp d14, d15, [sp], #16
        ; ldp d12, d13, [sp], #16
        ; ldp d10, d11, [sp], #16
        ; ldp d8, d9, [sp], #16
        ; ldp x27, x28, [sp], #16
        ; ldp x25, x26, [sp], #16
        ; ldp x23, x24, [sp], #16
        ; ldp x21, x22, [sp], #16
        ; ldp x19, x20, [sp], #16
        ; ldp x29, x30, [sp], #16
        ; ret
        ;=>trap_exit
        ; mov w0, #1
        ; b =>exit
    );

    // ---- trap_landing
    let trap_landing = ops.offset().0;
    a64!(ops
        ;=>landing
        ; mov x16, sp
        ; and x16, x16, #0xffff_ffff_ffff_fff0
        ; mov sp, x16
    );
    for w in enc::mov_imm_seq(16, raise_trap as u64, true) {
        emit(&mut ops, w);
    }
    a64!(ops
        ; blr x16
        ; mov sp, x0
        ; b =>trap_exit
    );

    // ---- host_call
    let host_call_off = ops.offset().0;
    a64!(ops
        ;=>host_call
        ; stp x29, x30, [sp, #-16]!
        ; mov x29, sp
        ; mov x0, x28
    );
    emit(
        &mut ops,
        enc::logical_reg(true, enc::LogicOp::Orr, false, 1, ZR, CALLER_CTX),
    );
    a64!(ops
        ; add x2, x29, #16
    );
    emit(&mut ops, LdSt::LDR_X.scaled(16, 0, host_call_fn / 8));
    a64!(ops
        ; blr x16
        ; cbnz w0, =>host_trap
        ; ldr x0, [x29, #16]
        ; ldr q0, [x29, #16]
        ; ldp x29, x30, [sp], #16
        ; ret
        ;=>host_trap
        ; cmp w0, throw_code
        ; b.eq =>host_throw
        ; adr x1, =>host_call
        ; mov x2, x29
        ; b =>landing
        ;=>host_throw
        ; mov x0, xzr
        ; ldp x29, x30, [sp], #16
        ; b =>throw
    );

    // ---- throw_landing
    let throw_landing = ops.offset().0;
    a64!(ops
        ;=>throw
        ; mov x1, x30
        ; mov x2, x29
        ; mov x16, sp
        ; and x16, x16, #0xffff_ffff_ffff_fff0
        ; sub x16, x16, #32
        ; mov sp, x16
        ; mov x3, sp
    );
    for w in enc::mov_imm_seq(16, unwind as u64, true) {
        emit(&mut ops, w);
    }
    a64!(ops
        ; blr x16
        ; cbz w0, >uncaught
        ; ldr x0, [sp, #24]
        ; ldr x29, [sp, #8]
        ; ldr x16, [sp]
        ; ldr x17, [sp, #16]
        ; mov sp, x17
        ; br x16
        ; uncaught:
        ; ldr x17, [sp, #16]
        ; mov sp, x17
        ; b =>trap_exit
    );

    let code = ops
        .finalize()
        .map_err(|e| CompileError::internal(format!("aarch64 stubs: {e}")))?;
    Ok(Stubs {
        code,
        enter,
        host_call: host_call_off,
        trap_landing,
        throw_landing,
    })
}
