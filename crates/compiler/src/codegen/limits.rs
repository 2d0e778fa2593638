//! Interruption and fuel checks, emitted at function entry and at every loop header (the
//! points every unbounded execution passes through), only when the module asks for them.
//!
//! Both counters live in the store's `VMStoreContext` (shared by all instances of a store),
//! reached through the vmctx's `store_context` pointer; see [`crate::vmctx::store_ctx`].

use super::FuncCompiler;
use crate::masm::{Address, AluOp, IntCmp, MacroAssembler, OperandSize, RegClass, RegImm};
use crate::vmctx::{store_ctx, Builtin};
use crate::{CompileError, TrapCode};

impl<M: MacroAssembler> FuncCompiler<'_, M> {
    /// Emits the enabled checks (at function entry and loop headers). The cache state is
    /// the same after them on every path; they need two integer registers.
    pub(super) fn emit_limit_checks(&mut self) -> Result<(), CompileError> {
        if self.info.epoch_interruption {
            self.emit_epoch_check()?;
        }
        if self.info.consume_fuel {
            self.emit_fuel_check()?;
        }
        Ok(())
    }

    /// `if *epoch_ptr >= store.epoch_deadline { if EpochDeadline() != 0 { trap Interrupt } }`
    fn emit_epoch_check(&mut self) -> Result<(), CompileError> {
        let offsets = self.info.offsets;
        let epoch = self.alloc(RegClass::Int)?;
        let deadline = self.alloc(RegClass::Int)?;
        self.masm
            .load(epoch, Address::Vmctx(offsets.epoch_ptr()), OperandSize::S64);
        self.masm
            .load(epoch, Address::Base(epoch, 0), OperandSize::S64);
        self.masm.load(
            deadline,
            Address::Vmctx(offsets.store_context()),
            OperandSize::S64,
        );
        self.masm.load(
            deadline,
            Address::Base(deadline, store_ctx::EPOCH_DEADLINE),
            OperandSize::S64,
        );
        let done = self.masm.new_label();
        self.masm.cmp_branch(
            IntCmp::LtU,
            epoch,
            RegImm::Reg(deadline),
            OperandSize::S64,
            done,
        );
        self.free_reg(epoch);
        self.free_reg(deadline);

        // Slow path: the deadline is reached; the runtime decides (callback or trap). The
        // registers the cache uses are saved around the call, so both paths leave it as is.
        let saved = self.save_live_regs();
        self.masm
            .call_builtin(offsets.builtin(Builtin::EpochDeadline), &[]);
        self.restore_live_regs(&saved);
        let ret = self.masm.return_reg(RegClass::Int);
        let pc = self.masm.trap_if(
            IntCmp::Ne,
            ret,
            RegImm::Imm(0),
            OperandSize::S64,
            TrapCode::Interrupt,
        );
        self.add_trap(pc, TrapCode::Interrupt);
        self.masm.bind(done)?;
        Ok(())
    }

    /// One unit per function entry and per loop iteration:
    /// `store.fuel -= 1; if store.fuel < 0 { trap OutOfFuel }`.
    fn emit_fuel_check(&mut self) -> Result<(), CompileError> {
        let ctx = self.alloc(RegClass::Int)?;
        let fuel = self.alloc(RegClass::Int)?;
        self.masm.load(
            ctx,
            Address::Vmctx(self.info.offsets.store_context()),
            OperandSize::S64,
        );
        let addr = Address::Base(ctx, store_ctx::FUEL);
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
        self.free_reg(ctx);
        self.free_reg(fuel);
        Ok(())
    }
}
