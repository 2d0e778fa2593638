//! Call sequences (internal convention).
//!
//! Arguments go to the outgoing area at the bottom of the caller's frame (one 8-byte word
//! each); the callee reads them in place as its parameters. A single result comes back in
//! the return register of its class; several results come back in the same area. Every
//! allocatable register is caller-saved: locals go home before a call and come back into
//! registers lazily, at their next `local.get`. A call to a function defined by the module is
//! direct (its target filled in at placement, see [`crate::Relocation`]); imported and
//! indirect calls go through `VMFuncRef`s.

use super::stack::{Val, ValKind};
use super::FuncCompiler;
use crate::masm::{Address, CallTarget, IntCmp, MacroAssembler, OperandSize, RegClass, RegImm};
use crate::vmctx::{funcref, table_def};
use crate::{CompileError, Relocation, TrapCode};

impl<'a, M: MacroAssembler> FuncCompiler<'a, M> {
    /// Function type `type_index`, borrowed from the module (which outlives `self`), so a
    /// call reads its callee's types in place.
    fn func_type(&self, type_index: u32) -> Result<&'a wasmparser::FuncType, CompileError> {
        let info: &'a crate::ModuleInfo = self.info;
        info.types
            .get(type_index as usize)
            .ok_or_else(|| CompileError::internal(format!("no type {type_index}")))
    }

    /// Parameter and result kinds of type `type_index`.
    pub(super) fn signature(
        &self,
        type_index: u32,
    ) -> Result<(Vec<ValKind>, Vec<ValKind>), CompileError> {
        let ty = self.func_type(type_index)?;
        let kinds =
            |types: &[wasmparser::ValType]| types.iter().map(|&t| ValKind::of_type(t)).collect();
        Ok((kinds(ty.params()), kinds(ty.results())))
    }

    /// Stores the top `n` values as outgoing arguments (one word each, two for a v128)
    /// and pops them; `result_words` is the size of the results the callee returns there.
    pub(super) fn pass_arguments(&mut self, n: usize, result_words: u32) {
        let first = self.stack.len() - n;
        let mut words = 0;
        for i in 0..n {
            let v = self.stack[first + i];
            self.store_val(v, Address::Outgoing(8 * words as i32));
            words += v.kind().words();
        }
        self.truncate_stack(first);
        let min = if self.info.tail_call {
            crate::MIN_CALL_AREA_WORDS
        } else {
            0
        };
        self.outgoing_words = self.outgoing_words.max(words.max(result_words).max(min));
    }

    /// Pushes the results of a call that just returned.
    fn push_call_results(
        &mut self,
        mut results: impl ExactSizeIterator<Item = ValKind>,
    ) -> Result<(), CompileError> {
        // `len` is checked before `next`: with several results the first must stay in the
        // iterator for the loop below.
        if results.len() == 1 {
            let kind = results.next().unwrap_or(ValKind::I32);
            let r = self.alloc(kind.class())?;
            let ret = self.masm.return_reg(kind.class());
            self.masm.mov(r, RegImm::Reg(ret), kind.size());
            self.push(Val::Reg(kind, r));
        } else {
            let mut words = 0;
            for kind in results {
                let pos = self.stack.len() as u32;
                let dst = self.slot_addr(pos);
                let src = Address::Outgoing(8 * words as i32);
                self.masm.copy(dst, src, kind.slot_copy_size());
                words += kind.words();
                self.push(Val::Slot(kind, pos));
            }
        }
        Ok(())
    }

    pub(super) fn visit_call(&mut self, func_index: u32) -> Result<(), CompileError> {
        let type_index = *self
            .info
            .functions
            .get(func_index as usize)
            .ok_or_else(|| CompileError::internal(format!("no function {func_index}")))?;
        let ty = self.func_type(type_index)?;
        let results = ty.results();
        self.pass_arguments(ty.params().len(), words_of_types(results));
        self.spill_all_for_call();
        if self.info.is_imported_function(func_index) {
            // Through the exporter's own funcref, which lazy compilation keeps up to date.
            let f = self.alloc(RegClass::Int)?;
            let canonical = self.info.offsets.func_ptr(func_index);
            self.masm
                .load(f, Address::Vmctx(canonical), OperandSize::S64);
            let ret = self.masm.call(CallTarget::FuncRef { funcref: f });
            self.record_call(ret);
            self.free_reg(f);
        } else {
            let ret = self.masm.call(CallTarget::Direct);
            self.record_call(ret);
            self.relocations.push(Relocation {
                offset: ret - 4,
                func_index,
            });
            if self.info.tail_call {
                // The callee may have tail-called into another instance (see `tail_calls`).
                self.masm.reload_context();
            }
        }
        self.push_call_results(results.iter().map(|&t| ValKind::of_type(t)))
    }

    /// The `VMFuncRef` at `index` (an i32 register, not freed) of table `table_index`, in
    /// a new register, after the checks of `call_indirect`: in bounds, not null, of type
    /// `type_index`.
    pub(super) fn table_funcref(
        &mut self,
        type_index: u32,
        table_index: u32,
        index: crate::masm::Reg,
    ) -> Result<crate::masm::Reg, CompileError> {
        if type_index >= self.info.offsets.num_types {
            return Err(CompileError::internal(format!("no type id {type_index}")));
        }
        let table = self.alloc(RegClass::Int)?;
        let entry = self.alloc(RegClass::Int)?;
        let table_ptr = self.info.offsets.table_ptr(table_index);
        self.masm
            .load(table, Address::Vmctx(table_ptr), OperandSize::S64);
        self.masm.load(
            entry,
            Address::Base(table, table_def::LENGTH),
            OperandSize::S64,
        );
        let pc = self.masm.trap_if(
            IntCmp::GeU,
            index,
            RegImm::Reg(entry),
            OperandSize::S64,
            TrapCode::UndefinedElement,
        );
        self.add_trap(pc, TrapCode::UndefinedElement);
        self.masm.load(
            table,
            Address::Base(table, table_def::BASE),
            OperandSize::S64,
        );
        // entry = elements[index]
        self.masm.shift(
            crate::masm::ShiftOp::Shl,
            entry,
            index,
            RegImm::Imm(3),
            OperandSize::S64,
        );
        self.masm.alu(
            crate::masm::AluOp::Add,
            entry,
            entry,
            RegImm::Reg(table),
            OperandSize::S64,
        );
        self.masm
            .load(entry, Address::Base(entry, 0), OperandSize::S64);
        let pc = self.masm.trap_if(
            IntCmp::Eq,
            entry,
            RegImm::Imm(0),
            OperandSize::S64,
            TrapCode::IndirectCallToNull,
        );
        self.add_trap(pc, TrapCode::IndirectCallToNull);
        self.masm.load(
            table,
            Address::Base(entry, funcref::TYPE_ID),
            OperandSize::S32,
        );
        // The expected id comes from the vmctx, not an immediate: ids are engine-wide and
        // assigned at run time, so code with an embedded id could not be serialized.
        let expected = self.alloc(RegClass::Int)?;
        self.masm.load(
            expected,
            Address::Vmctx(self.info.offsets.type_id(type_index)),
            OperandSize::S32,
        );
        let pc = self.masm.trap_if(
            IntCmp::Ne,
            table,
            RegImm::Reg(expected),
            OperandSize::S32,
            TrapCode::BadSignature,
        );
        self.add_trap(pc, TrapCode::BadSignature);
        self.free_reg(expected);
        self.free_reg(table);
        Ok(entry)
    }

    pub(super) fn visit_call_indirect(
        &mut self,
        type_index: u32,
        table_index: u32,
    ) -> Result<(), CompileError> {
        let (params, results) = self.signature(type_index)?;
        let (_, index) = self.pop_read()?;
        self.pass_arguments(params.len(), words_of(&results));
        self.spill_all_for_call();

        let entry = self.table_funcref(type_index, table_index, index)?;
        let ret = self.masm.call(CallTarget::FuncRef { funcref: entry });
        self.record_call(ret);
        self.free_reg(index);
        self.free_reg(entry);
        self.push_call_results(results.iter().copied())
    }
}

impl<M: MacroAssembler> FuncCompiler<'_, M> {
    /// `call_ref $t`: calls the function reference on top of the stack (below it, the
    /// arguments). Validation proved its type, so only null is checked.
    pub(super) fn visit_call_ref(&mut self, type_index: u32) -> Result<(), CompileError> {
        let ty = self.func_type(type_index)?;
        let results = ty.results();
        let (_, funcref) = self.pop_read()?;
        self.pass_arguments(ty.params().len(), words_of_types(results));
        self.spill_all_for_call();
        self.call_funcref_non_null(funcref);
        self.push_call_results(results.iter().map(|&t| ValKind::of_type(t)))
    }

    /// Calls the `VMFuncRef` at `funcref` (arguments passed, registers spilled), trapping
    /// with [`TrapCode::NullReference`] if it is null; frees `funcref`.
    pub(super) fn call_funcref_non_null(&mut self, funcref: crate::masm::Reg) {
        self.trap_if_null(funcref);
        let ret = self.masm.call(CallTarget::FuncRef { funcref });
        self.record_call(ret);
        self.free_reg(funcref);
    }
}

/// Words a list of values takes in an argument or result area.
fn words_of(kinds: &[ValKind]) -> u32 {
    kinds.iter().map(|k| k.words()).sum()
}

/// [`words_of`] of the kinds of `types`.
fn words_of_types(types: &[wasmparser::ValType]) -> u32 {
    types.iter().map(|&t| ValKind::of_type(t).words()).sum()
}
