//! Linear memory, globals and the memory builtins.
//!
//! Bounds-check policy: a memory reserves its whole 32-bit index range plus the largest
//! static offset as inaccessible address space, so every access is a plain
//! `base + index + offset` load or store and an out-of-bounds access faults on a guard page;
//! each such instruction is recorded as a `MemoryOutOfBounds` trap site for the runtime's
//! signal handler. A 64-bit memory (memory64) is no bigger than 4 GiB either, so its accesses
//! add one explicit check that the index fits in 32 bits, and an offset beyond 32 bits is
//! always out of bounds. Memory 0's base lives in a pinned register; other memories' bases are
//! loaded from the vmctx at each access (multi-memory).

use super::stack::{Val, ValKind};
use super::FuncCompiler;
use crate::masm::{
    Address, HeapAddress, LoadKind, MacroAssembler, OperandSize, RegClass, RegImm, StoreKind,
};
use crate::vmctx::memory_def;
use crate::{CompileError, TrapCode};
use wasmparser::{MemArg, MemArgTarget, Operator};

fn memory_index(memarg: &MemArg) -> Result<u32, CompileError> {
    match memarg.target {
        MemArgTarget::Memory(mem) => Ok(mem),
        MemArgTarget::Array(_) => Err(CompileError::unsupported_feature("gc arrays".into())),
    }
}

impl<M: MacroAssembler> FuncCompiler<'_, M> {
    /// Emits a load or store if `op` is one; returns whether it was.
    pub(super) fn emit_memory_access(&mut self, op: &Operator<'_>) -> Result<bool, CompileError> {
        use Operator as O;
        use ValKind::*;
        let (memarg, load) = match *op {
            O::I32Load { memarg } => (memarg, Some((LoadKind::I32, I32))),
            O::I64Load { memarg } => (memarg, Some((LoadKind::I64, I64))),
            O::F32Load { memarg } => (memarg, Some((LoadKind::F32, F32))),
            O::F64Load { memarg } => (memarg, Some((LoadKind::F64, F64))),
            O::I32Load8S { memarg } => (memarg, Some((LoadKind::I32S8, I32))),
            O::I32Load8U { memarg } => (memarg, Some((LoadKind::I32U8, I32))),
            O::I32Load16S { memarg } => (memarg, Some((LoadKind::I32S16, I32))),
            O::I32Load16U { memarg } => (memarg, Some((LoadKind::I32U16, I32))),
            O::I64Load8S { memarg } => (memarg, Some((LoadKind::I64S8, I64))),
            O::I64Load8U { memarg } => (memarg, Some((LoadKind::I64U8, I64))),
            O::I64Load16S { memarg } => (memarg, Some((LoadKind::I64S16, I64))),
            O::I64Load16U { memarg } => (memarg, Some((LoadKind::I64U16, I64))),
            O::I64Load32S { memarg } => (memarg, Some((LoadKind::I64S32, I64))),
            O::I64Load32U { memarg } => (memarg, Some((LoadKind::I64U32, I64))),
            O::I32Store { memarg } => return self.store(memarg, StoreKind::I32).map(|_| true),
            O::I64Store { memarg } => return self.store(memarg, StoreKind::I64).map(|_| true),
            O::F32Store { memarg } => return self.store(memarg, StoreKind::F32).map(|_| true),
            O::F64Store { memarg } => return self.store(memarg, StoreKind::F64).map(|_| true),
            O::I32Store8 { memarg } | O::I64Store8 { memarg } => {
                return self.store(memarg, StoreKind::I8).map(|_| true)
            }
            O::I32Store16 { memarg } | O::I64Store16 { memarg } => {
                return self.store(memarg, StoreKind::I16).map(|_| true)
            }
            O::I64Store32 { memarg } => return self.store(memarg, StoreKind::I32).map(|_| true),
            _ => return Ok(false),
        };
        if let Some((kind, result)) = load {
            self.load(memarg, kind, result)?;
        }
        Ok(true)
    }

    /// The operand of an access to `memarg`'s memory at the address in `index`. Memory 0's
    /// base is pinned in a register; another memory's base is loaded into a register
    /// (every memory's base is fixed for the life of the memory), which
    /// [`Self::free_heap_address`] releases after the access.
    #[inline(always)]
    pub(super) fn heap_address(
        &mut self,
        memarg: &MemArg,
        index: crate::masm::Reg,
    ) -> Result<HeapAddress, CompileError> {
        // The common case, kept inline: memory 0 (base pinned), 32-bit, offset below 4 GiB.
        if let (MemArgTarget::Memory(0), Ok(offset)) = (memarg.target, u32::try_from(memarg.offset))
        {
            if !self.is_memory64(0) {
                return Ok(HeapAddress {
                    base: None,
                    index,
                    offset,
                });
            }
        }
        self.heap_address_general(memarg, index)
    }

    /// [`Self::heap_address`] for any memory and offset.
    #[inline(never)]
    fn heap_address_general(
        &mut self,
        memarg: &MemArg,
        index: crate::masm::Reg,
    ) -> Result<HeapAddress, CompileError> {
        let mem = memory_index(memarg)?;
        if self.is_memory64(mem) {
            self.check_index_fits_u32(index)?;
        }
        // Only a 64-bit memory has offsets beyond 32 bits, and any access with one is out
        // of bounds: wjit memories stay within 4 GiB.
        let offset = match u32::try_from(memarg.offset) {
            Ok(offset) => offset,
            Err(_) => {
                let pc = self.masm.trap(TrapCode::MemoryOutOfBounds);
                self.add_trap(pc, TrapCode::MemoryOutOfBounds);
                0
            }
        };
        let base = if mem == 0 {
            None
        } else {
            let r = self.alloc(RegClass::Int)?;
            let slot = self.info.offsets.memory_base(mem);
            self.masm.load(r, Address::Vmctx(slot), OperandSize::S64);
            Some(r)
        };
        Ok(HeapAddress {
            base,
            index,
            offset,
        })
    }

    /// Whether memory `mem` is indexed by `i64`.
    fn is_memory64(&self, mem: u32) -> bool {
        self.info
            .memories
            .get(mem as usize)
            .is_some_and(|m| m.memory64)
    }

    /// memory64 bounds check: wjit memories are at most 4 GiB and reserve 4 GiB of guard
    /// pages beyond, so an `i64` index whose upper half is zero is checked by the guard
    /// pages like an `i32` one, and any other index is out of bounds.
    fn check_index_fits_u32(&mut self, index: crate::masm::Reg) -> Result<(), CompileError> {
        let high = self.alloc(RegClass::Int)?;
        self.masm.shift(
            crate::masm::ShiftOp::ShrU,
            high,
            index,
            RegImm::Imm(32),
            OperandSize::S64,
        );
        let pc = self.masm.trap_if(
            crate::masm::IntCmp::Ne,
            high,
            RegImm::Imm(0),
            OperandSize::S64,
            TrapCode::MemoryOutOfBounds,
        );
        self.add_trap(pc, TrapCode::MemoryOutOfBounds);
        self.free_reg(high);
        Ok(())
    }

    /// Releases what [`Self::heap_address`] allocated.
    pub(super) fn free_heap_address(&mut self, addr: HeapAddress) {
        if let Some(base) = addr.base {
            self.free_reg(base);
        }
    }

    pub(super) fn load(
        &mut self,
        memarg: MemArg,
        kind: LoadKind,
        result: ValKind,
    ) -> Result<(), CompileError> {
        let (_, index) = self.pop_read()?;
        let addr = self.heap_address(&memarg, index)?;
        let dst = self.result_reg(result.class(), &[index])?;
        let pc = self.masm.load_heap(dst, addr, kind);
        self.free_heap_address(addr);
        self.free_reg(index);
        self.add_trap(pc, TrapCode::MemoryOutOfBounds);
        self.push(Val::Reg(result, dst));
        Ok(())
    }

    pub(super) fn store(&mut self, memarg: MemArg, kind: StoreKind) -> Result<(), CompileError> {
        let v = self.pop()?;
        let value = self.reg_or_imm(v)?;
        let (_, index) = self.pop_read()?;
        let addr = self.heap_address(&memarg, index)?;
        let pc = self.masm.store_heap(value, addr, kind);
        self.add_trap(pc, TrapCode::MemoryOutOfBounds);
        self.free_heap_address(addr);
        self.release_operand(value);
        self.free_reg(index);
        Ok(())
    }

    pub(super) fn visit_memory_size(&mut self, mem: u32) -> Result<(), CompileError> {
        let r = self.alloc(RegClass::Int)?;
        let def = self.info.offsets.memory_ptr(mem);
        self.masm.load(r, Address::Vmctx(def), OperandSize::S64);
        self.masm
            .load(r, Address::Base(r, memory_def::LENGTH), OperandSize::S64);
        self.masm.shift(
            crate::masm::ShiftOp::ShrU,
            r,
            r,
            RegImm::Imm(16),
            OperandSize::S64,
        );
        let kind = if self.is_memory64(mem) {
            ValKind::I64
        } else {
            ValKind::I32
        };
        self.push(Val::Reg(kind, r));
        Ok(())
    }

    pub(super) fn visit_memory_grow(&mut self, mem: u32) -> Result<(), CompileError> {
        let v = self.pop()?;
        let delta = self.reg_or_imm(v)?;
        self.spill_all_for_call();
        let f = self.info.offsets.builtin_memory_grow();
        self.masm
            .call_builtin(f, &[delta, RegImm::Imm(i64::from(mem))]);
        self.release_operand(delta);
        let r = self.alloc(RegClass::Int)?;
        let ret = self.masm.return_reg(RegClass::Int);
        let kind = if self.is_memory64(mem) {
            ValKind::I64
        } else {
            ValKind::I32
        };
        self.masm.mov(r, RegImm::Reg(ret), kind.size());
        self.push(Val::Reg(kind, r));
        Ok(())
    }

    pub(super) fn visit_global_get(&mut self, index: u32) -> Result<(), CompileError> {
        let ty = self
            .info
            .globals
            .get(index as usize)
            .ok_or_else(|| CompileError::internal(format!("no global {index}")))?;
        let kind = ValKind::of(ty.content_type)?;
        let ptr = self.alloc(RegClass::Int)?;
        let off = self.info.offsets.global_ptr(index);
        self.masm.load(ptr, Address::Vmctx(off), OperandSize::S64);
        let dst = if kind.class() == RegClass::Int {
            ptr
        } else {
            self.alloc(kind.class())?
        };
        self.masm.load(dst, Address::Base(ptr, 0), kind.size());
        if dst != ptr {
            self.free_reg(ptr);
        }
        self.push(Val::Reg(kind, dst));
        Ok(())
    }

    pub(super) fn visit_global_set(&mut self, index: u32) -> Result<(), CompileError> {
        let v = self.pop()?;
        let kind = v.kind();
        let value = self.reg_or_imm(v)?;
        let ptr = self.alloc(RegClass::Int)?;
        let off = self.info.offsets.global_ptr(index);
        self.masm.load(ptr, Address::Vmctx(off), OperandSize::S64);
        self.masm.store(value, Address::Base(ptr, 0), kind.size());
        self.free_reg(ptr);
        self.release_operand(value);
        Ok(())
    }
}
