//! Interruption and fuel checks, emitted at function entry and at every loop header (the
//! points every unbounded execution passes through), only when the module asks for them.

use super::FuncCompiler;
use crate::masm::{Address, AluOp, IntCmp, MacroAssembler, OperandSize, RegClass, RegImm};
use crate::{CompileError, TrapCode};

impl<M: MacroAssembler> FuncCompiler<'_, M> {
    /// Emits the enabled checks. Needs two free integer registers (callers are at points
    /// where the stack is in its join state or empty).
    pub(super) fn emit_limit_checks(&mut self) -> Result<(), CompileError> {
        let offsets = self.info.offsets;
        if self.info.epoch_interruption {
            let epoch = self.alloc(RegClass::Int)?;
            let deadline = self.alloc(RegClass::Int)?;
            self.masm
                .load(epoch, Address::Vmctx(offsets.epoch_ptr()), OperandSize::S64);
            self.masm
                .load(epoch, Address::Base(epoch, 0), OperandSize::S64);
            self.masm.load(
                deadline,
                Address::Vmctx(offsets.epoch_deadline()),
                OperandSize::S64,
            );
            let pc = self.masm.trap_if(
                IntCmp::GeU,
                epoch,
                RegImm::Reg(deadline),
                OperandSize::S64,
                TrapCode::Interrupt,
            );
            self.add_trap(pc, TrapCode::Interrupt);
            self.free_reg(epoch);
            self.free_reg(deadline);
        }
        if self.info.consume_fuel {
            // One unit per function entry and per loop iteration.
            let fuel = self.alloc(RegClass::Int)?;
            let addr = Address::Vmctx(offsets.fuel());
            self.masm.load(fuel, addr, OperandSize::S64);
            self.masm
                .alu(AluOp::Sub, fuel, fuel, RegImm::Imm(1), OperandSize::S64);
            self.masm.store(RegImm::Reg(fuel), addr, OperandSize::S64);
            let pc = self.masm.trap_if(
                IntCmp::LtS,
                fuel,
                RegImm::Imm(0),
                OperandSize::S64,
                TrapCode::OutOfFuel,
            );
            self.add_trap(pc, TrapCode::OutOfFuel);
            self.free_reg(fuel);
        }
        Ok(())
    }
}
