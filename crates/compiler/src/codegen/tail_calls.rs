//! Tail calls (`return_call`, `return_call_indirect`, `return_call_ref`) in constant stack
//! space.
//!
//! Convention: with tail calls enabled ([`crate::ModuleInfo::tail_call`]) every call site,
//! and the host's entry stub, reserves at least [`crate::MIN_CALL_AREA_WORDS`] words of
//! argument area, so a function always owns an incoming area (its caller's outgoing area)
//! of `max(MIN_CALL_AREA_WORDS, its parameter words, its result words)` words. A tail call
//! whose callee's parameters fit there is done in place: the arguments are stored to the
//! function's own outgoing area first (they may be read from the incoming area, where the
//! parameters live), the callee is looked up (table checks may trap, registers may be
//! allocated, evicting dirty locals to their homes), the arguments are copied over the
//! incoming area, and then the frame is torn down and the callee is jumped to ([`MacroAssembler::tail_call`]) with the current
//! function's return address, so it returns straight to the current function's caller,
//! its results (the same as the current function's, by validation) in the place the caller
//! expects them. A callee with more parameter words is [`CompileErrorKind::Unsupported`](crate::CompileErrorKind::Unsupported)
//! (reported by `validate_function` too, so a lazily compiled module fails up front).
//!
//! A tail call through a `VMFuncRef` may enter another instance or a host function, which
//! then returns to our caller with its own vmctx and memory-base registers. Callers through
//! a `VMFuncRef` restore both after every call anyway; with tail calls enabled, direct calls
//! do too ([`MacroAssembler::reload_context`]).
//!
//! `return_call_ref` takes the same path with the popped reference, after a null check.

use super::stack::ValKind;
use super::FuncCompiler;
use crate::masm::Reg;
use crate::masm::{Address, CallTarget, MacroAssembler, OperandSize, RegClass};
use crate::{CompileError, Relocation};

impl<M: MacroAssembler> FuncCompiler<'_, M> {
    /// Pops the arguments of a call to type `type_index` into the outgoing area (they may be
    /// read from the incoming area, where the parameters live); returns their words.
    /// Nothing is written to the incoming area yet, so registers may still be allocated
    /// (an evicted dirty local goes home, maybe to the incoming area) and traps raised.
    fn stage_tail_call_arguments(&mut self, type_index: u32) -> Result<u32, CompileError> {
        let (params, results) = self.signature(type_index)?;
        let words = params.iter().map(|k| k.words()).sum();
        let result_words = results.iter().map(|k: &ValKind| k.words()).sum();
        self.pass_arguments(params.len(), result_words);
        Ok(words)
    }

    /// Copies `words` staged argument words over the incoming area (which
    /// `validate::check_tail_call` made sure holds them). Allocates nothing.
    fn place_tail_call_arguments(&mut self, words: u32) {
        for w in 0..words as i32 {
            self.masm.copy(
                Address::Frame(16 + 8 * w),
                Address::Outgoing(8 * w),
                OperandSize::S64,
            );
        }
    }

    /// Jumps to the `VMFuncRef` in `f` (see the module docs); the rest of the block is
    /// unreachable.
    /// `words` staged argument words are placed first.
    pub(super) fn tail_call_funcref(&mut self, f: Reg, words: u32) {
        self.place_tail_call_arguments(words);
        self.masm.tail_call(CallTarget::FuncRef { funcref: f });
        self.free_reg(f);
        self.set_unreachable();
    }

    pub(super) fn visit_return_call(&mut self, func_index: u32) -> Result<(), CompileError> {
        let type_index = *self
            .info
            .functions
            .get(func_index as usize)
            .ok_or_else(|| CompileError::internal(format!("no function {func_index}")))?;
        let words = self.stage_tail_call_arguments(type_index)?;
        if self.info.is_imported_function(func_index) {
            // Through the exporter's own funcref, which lazy compilation keeps up to date.
            let f = self.alloc(RegClass::Int)?;
            let canonical = self.info.offsets.func_ptr(func_index);
            self.masm
                .load(f, Address::Vmctx(canonical), OperandSize::S64);
            self.tail_call_funcref(f, words);
        } else {
            self.place_tail_call_arguments(words);
            let end = self.masm.tail_call(CallTarget::Direct);
            self.relocations.push(Relocation {
                offset: end - 4,
                func_index,
            });
            self.set_unreachable();
        }
        Ok(())
    }

    pub(super) fn visit_return_call_ref(&mut self, type_index: u32) -> Result<(), CompileError> {
        let (_, f) = self.pop_read()?;
        // The reference stays in its register while the arguments are stored.
        let words = self.stage_tail_call_arguments(type_index)?;
        self.trap_if_null(f);
        self.tail_call_funcref(f, words);
        Ok(())
    }

    pub(super) fn visit_return_call_indirect(
        &mut self,
        type_index: u32,
        table_index: u32,
    ) -> Result<(), CompileError> {
        let (_, index) = self.pop_read()?;
        // The index stays in its register while the arguments are stored.
        let words = self.stage_tail_call_arguments(type_index)?;
        let entry = self.table_funcref(type_index, table_index, index)?;
        self.free_reg(index);
        self.tail_call_funcref(entry, words);
        Ok(())
    }
}
