//! Reference types, tables and bulk memory. Element accesses (`table.get/set/size`,
//! `ref.func`, `ref.is_null`) are inline; operations on ranges and segments call runtime
//! builtins, which return non-zero when the range is out of bounds.

use super::stack::{Val, ValKind};
use super::FuncCompiler;
use crate::masm::{
    Address, AluOp, IntCmp, MacroAssembler, OperandSize, Reg, RegClass, RegImm, ShiftOp,
};
use crate::vmctx::{table_def, Builtin};
use crate::{CompileError, TrapCode};
use wasmparser::Operator;

type R = Result<(), CompileError>;

impl<M: MacroAssembler> FuncCompiler<'_, M> {
    /// Emits a reference, table or bulk-memory operator; returns whether `op` was one.
    pub(super) fn emit_table_op(&mut self, op: &Operator<'_>) -> Result<bool, CompileError> {
        use Operator as O;
        match *op {
            O::RefFunc { function_index } => {
                let r = self.alloc(RegClass::Int)?;
                let off = self.info.offsets.func_ptr(function_index);
                self.masm.load(r, Address::Vmctx(off), OperandSize::S64);
                self.push(Val::Reg(ValKind::Ref, r));
            }
            O::RefIsNull => {
                let v = self.pop()?;
                if let Val::Const(_, bits) = v {
                    self.push(Val::Const(ValKind::I32, (bits == 0) as i64));
                } else {
                    let r = self.in_reg(v)?;
                    self.masm
                        .cmp_set(IntCmp::Eq, r, r, RegImm::Imm(0), OperandSize::S64);
                    self.push(Val::Reg(ValKind::I32, r));
                }
            }
            O::TableGet { table } => self.table_get(table)?,
            O::TableSet { table } => self.table_set(table)?,
            O::TableSize { table } => {
                let r = self.alloc(RegClass::Int)?;
                self.load_table_def(r, table);
                self.masm
                    .load(r, Address::Base(r, table_def::LENGTH), OperandSize::S64);
                self.push(Val::Reg(self.table_index_kind(table), r));
            }
            O::TableGrow { table } => self.builtin(
                Builtin::TableGrow,
                &[table as i64],
                2,
                None,
                Some(self.table_index_kind(table)),
            )?,
            O::TableFill { table } => self.builtin(
                Builtin::TableFill,
                &[table as i64],
                3,
                Some(TrapCode::TableOutOfBounds),
                None,
            )?,
            O::TableCopy {
                dst_table,
                src_table,
            } => self.builtin(
                Builtin::TableCopy,
                &[((dst_table as i64) << 32) | src_table as i64],
                3,
                Some(TrapCode::TableOutOfBounds),
                None,
            )?,
            O::TableInit { elem_index, table } => self.builtin(
                Builtin::TableInit,
                &[((table as i64) << 32) | elem_index as i64],
                3,
                Some(TrapCode::TableOutOfBounds),
                None,
            )?,
            O::ElemDrop { elem_index } => {
                self.builtin(Builtin::ElemDrop, &[elem_index as i64], 0, None, None)?
            }
            O::MemoryFill { mem } => self.builtin(
                Builtin::MemoryFill,
                &[i64::from(mem)],
                3,
                Some(TrapCode::MemoryOutOfBounds),
                None,
            )?,
            O::MemoryCopy { dst_mem, src_mem } => self.builtin(
                Builtin::MemoryCopy,
                &[(i64::from(dst_mem) << 32) | i64::from(src_mem)],
                3,
                Some(TrapCode::MemoryOutOfBounds),
                None,
            )?,
            O::MemoryInit { data_index, mem } => self.builtin(
                Builtin::MemoryInit,
                &[(i64::from(mem) << 32) | i64::from(data_index)],
                3,
                Some(TrapCode::MemoryOutOfBounds),
                None,
            )?,
            O::DataDrop { data_index } => {
                self.builtin(Builtin::DataDrop, &[data_index as i64], 0, None, None)?
            }
            _ => return Ok(false),
        }
        Ok(true)
    }

    /// The type of table `table`'s indices: `i64` for a 64-bit table (memory64), else
    /// `i32`. (Element accesses compare the whole index register with the length, which
    /// works for both: an `i32` is zero-extended in its register.)
    fn table_index_kind(&self, table: u32) -> ValKind {
        match self.info.tables.get(table as usize) {
            Some(t) if t.table64 => ValKind::I64,
            _ => ValKind::I32,
        }
    }

    fn load_table_def(&mut self, dst: Reg, table: u32) {
        let off = self.info.offsets.table_ptr(table);
        self.masm.load(dst, Address::Vmctx(off), OperandSize::S64);
    }

    /// Leaves in `addr` the address of element `index` of `table`, trapping when out of
    /// bounds. Clobbers `addr` and `tmp`.
    fn table_element_addr(&mut self, table: u32, index: Reg, addr: Reg, tmp: Reg) {
        self.load_table_def(tmp, table);
        self.masm.load(
            addr,
            Address::Base(tmp, table_def::LENGTH),
            OperandSize::S64,
        );
        let pc = self.masm.trap_if(
            IntCmp::GeU,
            index,
            RegImm::Reg(addr),
            OperandSize::S64,
            TrapCode::TableOutOfBounds,
        );
        self.add_trap(pc, TrapCode::TableOutOfBounds);
        self.masm
            .load(tmp, Address::Base(tmp, table_def::BASE), OperandSize::S64);
        self.masm
            .shift(ShiftOp::Shl, addr, index, RegImm::Imm(3), OperandSize::S64);
        self.masm
            .alu(AluOp::Add, addr, addr, RegImm::Reg(tmp), OperandSize::S64);
    }

    fn table_get(&mut self, table: u32) -> R {
        let (_, index) = self.pop_to_reg()?;
        let addr = self.alloc(RegClass::Int)?;
        let tmp = self.alloc(RegClass::Int)?;
        self.table_element_addr(table, index, addr, tmp);
        self.masm
            .load(addr, Address::Base(addr, 0), OperandSize::S64);
        self.free_reg(index);
        self.free_reg(tmp);
        self.push(Val::Reg(ValKind::Ref, addr));
        Ok(())
    }

    fn table_set(&mut self, table: u32) -> R {
        let v = self.pop()?;
        let value = self.reg_or_imm(v)?;
        let (_, index) = self.pop_to_reg()?;
        let addr = self.alloc(RegClass::Int)?;
        let tmp = self.alloc(RegClass::Int)?;
        self.table_element_addr(table, index, addr, tmp);
        self.masm
            .store(value, Address::Base(addr, 0), OperandSize::S64);
        self.release_operand(value);
        for r in [index, addr, tmp] {
            self.free_reg(r);
        }
        Ok(())
    }

    /// Calls `builtin` with the immediates `imms` followed by the top `n` stack values (in
    /// stack order). With `trap`, a non-zero result raises that trap; with `result`, the
    /// result is pushed as a value of that kind.
    fn builtin(
        &mut self,
        builtin: Builtin,
        imms: &[i64],
        n: usize,
        trap: Option<TrapCode>,
        result: Option<ValKind>,
    ) -> R {
        self.call_builtin_with(builtin, imms, n, &[], trap, result)
    }

    /// Calls `builtin` with the immediates `imms`, the top `n` stack values (in stack order)
    /// and then the immediates `after`.
    pub(super) fn call_builtin_with(
        &mut self,
        builtin: Builtin,
        imms: &[i64],
        n: usize,
        after: &[i64],
        trap: Option<TrapCode>,
        result: Option<ValKind>,
    ) -> R {
        let mut vals = Vec::with_capacity(n);
        for _ in 0..n {
            vals.push(self.pop()?);
        }
        vals.reverse();
        let mut args: Vec<RegImm> = imms.iter().map(|&i| RegImm::Imm(i)).collect();
        for v in vals {
            let a = self.reg_or_imm(v)?;
            args.push(a);
        }
        args.extend(after.iter().map(|&i| RegImm::Imm(i)));
        self.spill_all_for_call();
        let off = self.info.offsets.builtin(builtin);
        self.masm.call_builtin(off, &args);
        for a in args {
            self.release_operand(a);
        }
        let ret = self.masm.return_reg(RegClass::Int);
        if let Some(code) = trap {
            let pc = self
                .masm
                .trap_if(IntCmp::Ne, ret, RegImm::Imm(0), OperandSize::S32, code);
            self.add_trap(pc, code);
        }
        if let Some(kind) = result {
            let r = self.alloc(RegClass::Int)?;
            self.masm.mov(r, RegImm::Reg(ret), kind.size());
            self.push(Val::Reg(kind, r));
        }
        Ok(())
    }
}
