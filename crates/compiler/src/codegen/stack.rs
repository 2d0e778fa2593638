//! The value stack as a register cache, and the register allocator behind it.
//!
//! Every wasm operand is one [`Val`]: a constant (no code yet), a register, a lazy reference
//! to a local, or a spill slot. Each stack position `i` owns a fixed frame slot, so spilling
//! is one store and the stack pointer never moves inside a body.

use super::FuncCompiler;
use crate::masm::{Address, MacroAssembler, OperandSize, Reg, RegClass, RegImm};
use crate::CompileError;
use wasmparser::ValType;

/// The machine-level kind of a wasm value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ValKind {
    /// i32
    I32,
    /// i64
    I64,
    /// f32
    F32,
    /// f64
    F64,
    /// funcref / externref: a pointer-sized integer.
    Ref,
}

impl ValKind {
    /// Kind of a wasm value type, or an `unsupported` error (v128).
    pub fn of(ty: ValType) -> Result<ValKind, CompileError> {
        Ok(match ty {
            ValType::I32 => ValKind::I32,
            ValType::I64 => ValKind::I64,
            ValType::F32 => ValKind::F32,
            ValType::F64 => ValKind::F64,
            ValType::Ref(_) => ValKind::Ref,
            ValType::V128 => return Err(CompileError::Unsupported("simd (v128 values)".into())),
        })
    }
    /// The integer kind with the same bits (for moving floats through integer registers).
    pub fn bits_kind(self) -> ValKind {
        match self {
            ValKind::F32 => ValKind::I32,
            ValKind::F64 => ValKind::I64,
            other => other,
        }
    }
    /// Register class holding this kind.
    pub fn class(self) -> RegClass {
        match self {
            ValKind::F32 | ValKind::F64 => RegClass::Float,
            _ => RegClass::Int,
        }
    }
    /// Operand size of this kind.
    pub fn size(self) -> OperandSize {
        match self {
            ValKind::I32 | ValKind::F32 => OperandSize::S32,
            _ => OperandSize::S64,
        }
    }
}

/// One entry of the value stack.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Val {
    /// A constant (raw bits, sign-extended for i32); folded into immediates when consumed.
    Const(ValKind, i64),
    /// In a register owned by this entry.
    Reg(ValKind, Reg),
    /// A lazy `local.get`: the value is still in the local's home.
    Local(ValKind, u32),
    /// In the frame slot of stack position `.1` (its own position, or the hidden copy of an
    /// `if`'s parameter below the frame).
    Slot(ValKind, u32),
}

impl Val {
    /// The kind of the value.
    pub fn kind(self) -> ValKind {
        match self {
            Val::Const(k, _) | Val::Reg(k, _) | Val::Local(k, _) | Val::Slot(k, _) => k,
        }
    }
}

/// Free-register bitsets, one per class, indexed by hardware number.
#[derive(Debug, Clone, Default)]
pub struct RegSet {
    int: u64,
    float: u64,
}

impl RegSet {
    /// A set containing `regs`.
    pub fn from_regs(regs: impl IntoIterator<Item = Reg>) -> RegSet {
        let mut s = RegSet::default();
        for r in regs {
            s.insert(r);
        }
        s
    }
    fn bits(&mut self, class: RegClass) -> &mut u64 {
        match class {
            RegClass::Int => &mut self.int,
            RegClass::Float => &mut self.float,
        }
    }
    /// Adds `r`.
    pub fn insert(&mut self, r: Reg) {
        *self.bits(r.class) |= 1 << r.hw;
    }
    /// Removes `r`.
    pub fn remove(&mut self, r: Reg) {
        *self.bits(r.class) &= !(1 << r.hw);
    }
    /// Whether `r` is in the set.
    pub fn contains(&self, r: Reg) -> bool {
        let bits = match r.class {
            RegClass::Int => self.int,
            RegClass::Float => self.float,
        };
        bits & (1 << r.hw) != 0
    }
}

impl<M: MacroAssembler> FuncCompiler<'_, M> {
    /// Frame address of the spill slot of stack position `pos`.
    pub(super) fn slot_addr(&self, pos: u32) -> Address {
        Address::Frame(self.slots_start - 8 * (pos as i32 + 1))
    }

    /// Home of local `index` (parameters live in the caller's outgoing area).
    pub(super) fn local_addr(&self, index: u32) -> Address {
        if index < self.num_params {
            Address::Frame(16 + 8 * index as i32)
        } else {
            Address::Frame(-16 - 8 * (index - self.num_params) as i32)
        }
    }

    /// The register home of local `index`, if it has one.
    pub(super) fn local_reg(&self, index: u32) -> Option<Reg> {
        self.homes.get(index as usize).copied().flatten()
    }

    /// Copies every register-homed local to its memory home (before a call).
    pub(super) fn save_homes(&mut self) {
        for i in 0..self.homes.len() as u32 {
            if let Some(r) = self.local_reg(i) {
                let kind = self.locals[i as usize];
                let addr = self.local_addr(i);
                self.masm.store(RegImm::Reg(r), addr, kind.size());
            }
        }
    }

    /// Reloads every register-homed local from its memory home (after a call).
    pub(super) fn restore_homes(&mut self) {
        for i in 0..self.homes.len() as u32 {
            if let Some(r) = self.local_reg(i) {
                let kind = self.locals[i as usize];
                let addr = self.local_addr(i);
                self.masm.load(r, addr, kind.size());
            }
        }
    }

    /// Writes the value `v` into local `index`'s home.
    pub(super) fn write_local(&mut self, index: u32, v: Val) {
        let Some(home) = self.local_reg(index) else {
            let dst = self.local_addr(index);
            self.store_val(v, dst);
            return;
        };
        let size = v.kind().size();
        match v {
            Val::Const(_, bits) => self.masm.mov(home, RegImm::Imm(bits), size),
            Val::Reg(_, r) => self.masm.mov(home, RegImm::Reg(r), size),
            Val::Local(_, l) => match self.local_reg(l) {
                Some(src) => self.masm.mov(home, RegImm::Reg(src), size),
                None => {
                    let src = self.local_addr(l);
                    self.masm.load(home, src, size);
                }
            },
            Val::Slot(_, s) => {
                let src = self.slot_addr(s);
                self.masm.load(home, src, size);
            }
        }
    }

    pub(super) fn push(&mut self, v: Val) {
        self.stack.push(v);
        self.max_depth = self.max_depth.max(self.stack.len() as u32);
    }

    pub(super) fn pop(&mut self) -> Result<Val, CompileError> {
        self.stack
            .pop()
            .ok_or_else(|| CompileError::Internal("value stack underflow".into()))
    }

    /// Allocates a register of `class`, spilling the deepest register entry if none is free.
    pub(super) fn alloc(&mut self, class: RegClass) -> Result<Reg, CompileError> {
        for &r in self.masm.allocatable(class) {
            if self.free.contains(r) {
                self.free.remove(r);
                return Ok(r);
            }
        }
        let victim = self
            .stack
            .iter()
            .position(|v| matches!(v, Val::Reg(_, r) if r.class == class))
            .ok_or_else(|| CompileError::Internal("out of registers".into()))?;
        self.spill_entry(victim);
        self.alloc(class)
    }

    /// Returns `r` to the free set (a no-op for registers the allocator does not own).
    pub(super) fn free_reg(&mut self, r: Reg) {
        if self.masm.allocatable(r.class).contains(&r) {
            self.free.insert(r);
        }
    }

    /// Frees the register of `v`, if it has one.
    pub(super) fn release(&mut self, v: Val) {
        if let Val::Reg(_, r) = v {
            self.free_reg(r);
        }
    }

    /// Writes the value `v` (not necessarily on the stack) to `dst`.
    pub(super) fn store_val(&mut self, v: Val, dst: Address) {
        let size = v.kind().size();
        match v {
            Val::Const(_, bits) => self.masm.store(RegImm::Imm(bits), dst, size),
            Val::Reg(_, r) => self.masm.store(RegImm::Reg(r), dst, size),
            Val::Local(_, l) => match self.local_reg(l) {
                Some(home) => self.masm.store(RegImm::Reg(home), dst, size),
                None => {
                    let src = self.local_addr(l);
                    self.masm.copy(dst, src, OperandSize::S64);
                }
            },
            Val::Slot(_, s) => {
                let src = self.slot_addr(s);
                self.masm.copy(dst, src, OperandSize::S64);
            }
        }
    }

    /// Moves stack entry `pos` to its own slot (frees its register).
    pub(super) fn spill_entry(&mut self, pos: usize) {
        let v = self.stack[pos];
        if v == Val::Slot(v.kind(), pos as u32) {
            return;
        }
        let dst = self.slot_addr(pos as u32);
        self.store_val(v, dst);
        self.release(v);
        self.stack[pos] = Val::Slot(v.kind(), pos as u32);
    }

    /// Spills every register entry (before calls, which clobber all allocatable registers).
    pub(super) fn spill_regs(&mut self) {
        for pos in 0..self.stack.len() {
            if matches!(self.stack[pos], Val::Reg(..)) {
                self.spill_entry(pos);
            }
        }
    }

    /// Brings the stack into the state shared by all edges of a control-flow join: nothing
    /// in registers and no lazy local references. Constants and slots stay as they are.
    pub(super) fn spill_for_join(&mut self) {
        for pos in 0..self.stack.len() {
            if matches!(self.stack[pos], Val::Reg(..) | Val::Local(..)) {
                self.spill_entry(pos);
            }
        }
    }

    /// Materialises every pending `Local(index)` reference (before `local.set/tee index`).
    pub(super) fn materialize_local_refs(&mut self, index: u32) {
        for pos in 0..self.stack.len() {
            if matches!(self.stack[pos], Val::Local(_, l) if l == index) {
                self.spill_entry(pos);
            }
        }
    }

    /// Puts `v` (already popped) in a register it owns.
    pub(super) fn in_reg(&mut self, v: Val) -> Result<Reg, CompileError> {
        let kind = v.kind();
        Ok(match v {
            Val::Reg(_, r) => r,
            Val::Const(_, bits) => {
                let r = self.alloc(kind.class())?;
                self.masm.mov(r, RegImm::Imm(bits), kind.size());
                r
            }
            Val::Local(_, l) => {
                let r = self.alloc(kind.class())?;
                match self.local_reg(l) {
                    Some(home) => self.masm.mov(r, RegImm::Reg(home), kind.size()),
                    None => {
                        let src = self.local_addr(l);
                        self.masm.load(r, src, kind.size());
                    }
                }
                r
            }
            Val::Slot(_, s) => {
                let r = self.alloc(kind.class())?;
                let src = self.slot_addr(s);
                self.masm.load(r, src, kind.size());
                r
            }
        })
    }

    /// Pops the top value into a register it owns.
    pub(super) fn pop_to_reg(&mut self) -> Result<(ValKind, Reg), CompileError> {
        let v = self.pop()?;
        Ok((v.kind(), self.in_reg(v)?))
    }

    /// `v` as an immediate if it is a constant, otherwise in a register.
    pub(super) fn reg_or_imm(&mut self, v: Val) -> Result<RegImm, CompileError> {
        if let Val::Local(_, l) = v {
            // A register home can be read in place (releasing it later is a no-op).
            if let Some(home) = self.local_reg(l) {
                return Ok(RegImm::Reg(home));
            }
        }
        Ok(match v {
            Val::Const(_, bits) => RegImm::Imm(bits),
            other => RegImm::Reg(self.in_reg(other)?),
        })
    }

    /// Frees the register of an operand that was consumed.
    pub(super) fn release_operand(&mut self, op: RegImm) {
        if let RegImm::Reg(r) = op {
            self.free_reg(r);
        }
    }

    /// Drops entries above height `height`, freeing their registers.
    pub(super) fn truncate_stack(&mut self, height: usize) {
        while self.stack.len() > height {
            if let Some(v) = self.stack.pop() {
                self.release(v);
            }
        }
    }
}
