//! The value stack as a register cache, and the register allocator behind it.
//!
//! Every wasm operand is one [`Val`]: a constant (no code yet), a register, or a spill
//! slot. Each stack position `i` owns a fixed frame slot, so spilling is one store and the
//! stack pointer never moves inside a body. Locals are entries of the same cache (see
//! `locals.rs`): a local lives in its frame home, in a register, or is a known constant.
//!
//! Registers are reference-counted ([`RegUses`]): one register may hold a local and any
//! number of stack entries at once (`local.get` shares instead of copying), plus the
//! operands the compiler has popped and not yet released ("in hand"). A register is free
//! when its count is zero; code that is about to overwrite a register first makes sure it
//! is the only user ([`FuncCompiler::in_reg`]), so a value is copied only when one of its
//! users is about to change.

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
    /// v128, in a vector (float-class) register or a 16-byte slot.
    V128,
}

impl ValKind {
    /// Kind of a wasm value type.
    pub fn of(ty: ValType) -> Result<ValKind, CompileError> {
        Ok(ValKind::of_type(ty))
    }
    /// Kind of a wasm value type (every type has one).
    #[inline]
    pub fn of_type(ty: ValType) -> ValKind {
        match ty {
            ValType::I32 => ValKind::I32,
            ValType::I64 => ValKind::I64,
            ValType::F32 => ValKind::F32,
            ValType::F64 => ValKind::F64,
            ValType::Ref(_) => ValKind::Ref,
            ValType::V128 => ValKind::V128,
        }
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
    #[inline]
    pub fn class(self) -> RegClass {
        match self {
            ValKind::F32 | ValKind::F64 | ValKind::V128 => RegClass::Float,
            _ => RegClass::Int,
        }
    }
    /// Operand size of this kind.
    #[inline]
    pub fn size(self) -> OperandSize {
        match self {
            ValKind::I32 | ValKind::F32 => OperandSize::S32,
            ValKind::V128 => OperandSize::S128,
            _ => OperandSize::S64,
        }
    }
    /// Number of 8-byte words the value takes in argument and result areas and local homes.
    #[inline]
    pub fn words(self) -> u32 {
        if self == ValKind::V128 {
            2
        } else {
            1
        }
    }
    /// Width of a copy between two frame slots holding this kind (whole slots).
    #[inline]
    pub fn slot_copy_size(self) -> OperandSize {
        if self == ValKind::V128 {
            OperandSize::S128
        } else {
            OperandSize::S64
        }
    }
}

/// One entry of the value stack.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Val {
    /// A constant (raw bits, sign-extended for i32); folded into immediates when consumed.
    Const(ValKind, i64),
    /// In a register (possibly shared with a local or other entries; see [`RegUses`]).
    Reg(ValKind, Reg),
    /// In the frame slot of stack position `.1` (its own position, or the hidden copy of an
    /// `if`'s parameter below the frame).
    Slot(ValKind, u32),
}

impl Val {
    /// The kind of the value.
    #[inline]
    pub fn kind(self) -> ValKind {
        match self {
            Val::Const(k, _) | Val::Reg(k, _) | Val::Slot(k, _) => k,
        }
    }
}

fn class_index(class: RegClass) -> usize {
    match class {
        RegClass::Int => 0,
        RegClass::Float => 1,
    }
}

/// Use counts and recency of the allocatable registers, indexed by class and number.
#[derive(Debug, Clone)]
pub struct RegUses {
    uses: [[u16; 32]; 2],
    /// Per class, one bit per register with at least one user.
    in_use: [u32; 2],
    last_use: [[u32; 32]; 2],
    allocatable: [u32; 2],
    clock: u32,
}

impl RegUses {
    /// Bookkeeping for the registers `allocatable` (all free).
    pub fn new(allocatable: impl IntoIterator<Item = Reg>) -> RegUses {
        let mut mask = [0u32; 2];
        for r in allocatable {
            mask[class_index(r.class)] |= 1 << r.hw;
        }
        RegUses {
            uses: [[0; 32]; 2],
            in_use: [0; 2],
            last_use: [[0; 32]; 2],
            allocatable: mask,
            clock: 0,
        }
    }
    /// Whether the allocator owns `r` (others are never counted).
    #[inline]
    pub fn is_allocatable(&self, r: Reg) -> bool {
        self.allocatable[class_index(r.class)] & (1 << r.hw) != 0
    }
    /// Number of users of `r`.
    #[inline]
    pub fn count(&self, r: Reg) -> u16 {
        self.uses[class_index(r.class)][r.hw as usize]
    }
    /// Adds a user of `r` and marks it recently used.
    #[inline]
    pub fn inc(&mut self, r: Reg) {
        if self.is_allocatable(r) {
            self.add_user(r);
            self.touch(r);
        }
    }
    /// Adds a user of `r` without changing its recency (bookkeeping at merges).
    #[inline]
    pub fn add_user(&mut self, r: Reg) {
        if self.is_allocatable(r) {
            let c = class_index(r.class);
            self.uses[c][r.hw as usize] += 1;
            self.in_use[c] |= 1 << r.hw;
        }
    }
    /// Removes a user of `r`.
    #[inline]
    pub fn dec(&mut self, r: Reg) {
        if self.is_allocatable(r) {
            let c = class_index(r.class);
            let n = &mut self.uses[c][r.hw as usize];
            debug_assert!(*n > 0, "register {r:?} released more often than used");
            *n = n.saturating_sub(1);
            if *n == 0 {
                self.in_use[c] &= !(1 << r.hw);
            }
        }
    }
    /// The free allocatable register of `class` with the lowest number, if any.
    #[inline]
    pub fn first_free(&self, class: RegClass) -> Option<Reg> {
        let c = class_index(class);
        let free = self.allocatable[c] & !self.in_use[c];
        (free != 0).then(|| Reg {
            class,
            hw: free.trailing_zeros() as u8,
        })
    }
    /// Marks `r` as just used (eviction takes the least recently used register).
    #[inline]
    pub fn touch(&mut self, r: Reg) {
        self.clock += 1;
        self.last_use[class_index(r.class)][r.hw as usize] = self.clock;
    }
    /// Forgets every user (the counts are then rebuilt from a cache state).
    pub fn clear(&mut self) {
        self.uses = [[0; 32]; 2];
        self.in_use = [0; 2];
    }
}

impl<M: MacroAssembler> FuncCompiler<'_, M> {
    /// Frame address of the spill slot of stack position `pos`.
    #[inline]
    pub(super) fn slot_addr(&self, pos: u32) -> Address {
        Address::Frame(self.slots_start - self.slot_size * (pos as i32 + 1))
    }

    /// Home of local `index` (parameters live in the caller's outgoing area).
    #[inline]
    pub(super) fn local_addr(&self, index: u32) -> Address {
        Address::Frame(self.local_offsets[index as usize])
    }

    /// Always inlined, as `set_local_loc` (see there).
    #[inline(always)]
    pub(super) fn push(&mut self, v: Val) {
        if v.kind() == ValKind::V128 && self.slot_size < 16 {
            self.needs_wide_slots = true;
        }
        self.stack.push(v);
        self.max_depth = self.max_depth.max(self.stack.len() as u32);
    }

    /// Pops the top entry; a register it names stays counted until it is released.
    #[inline]
    pub(super) fn pop(&mut self) -> Result<Val, CompileError> {
        self.stack
            .pop()
            .ok_or_else(|| CompileError::internal("value stack underflow".into()))
    }

    /// Allocates a free register of `class` (one user: the caller), evicting the least
    /// recently used register whose users are all in the cache if none is free.
    #[inline]
    pub(super) fn alloc(&mut self, class: RegClass) -> Result<Reg, CompileError> {
        let r = match self.regs.first_free(class) {
            Some(r) => r,
            None => self.evict(class)?,
        };
        self.regs.inc(r);
        Ok(r)
    }

    /// Frees the least recently used register of `class` (out of line: allocation is
    /// usually a bit scan).
    #[cold]
    #[inline(never)]
    fn evict(&mut self, class: RegClass) -> Result<Reg, CompileError> {
        let victim = self.eviction_victim(class)?;
        self.spill_reg(victim);
        Ok(victim)
    }

    /// Number of cache entries (stack entries and locals) that name `r`.
    fn cache_users(&self, r: Reg) -> u16 {
        let on_stack = self
            .stack
            .iter()
            .filter(|v| matches!(v, Val::Reg(_, x) if *x == r))
            .count();
        let in_locals = self
            .cached
            .iter()
            .filter(|&&l| matches!(self.local_locs[l as usize], super::locals::LocalLoc::Reg(x, _) if x == r))
            .count();
        (on_stack + in_locals) as u16
    }

    /// The least recently used register of `class` that nothing in hand uses.
    fn eviction_victim(&self, class: RegClass) -> Result<Reg, CompileError> {
        // Users of each register in the cache, counted in one pass. Register numbers are
        // below 32 (they are bits of the masks), so `& 31` only drops bounds checks.
        let mut in_cache = [0u16; 32];
        for v in &self.stack {
            if let Val::Reg(_, r) = *v {
                if r.class == class {
                    in_cache[(r.hw & 31) as usize] += 1;
                }
            }
        }
        for &l in &self.cached {
            if let Some(super::locals::LocalLoc::Reg(r, _)) = self.local_locs.get(l as usize) {
                if r.class == class {
                    in_cache[(r.hw & 31) as usize] += 1;
                }
            }
        }
        let c = class_index(class);
        let (uses, last_use) = (&self.regs.uses[c], &self.regs.last_use[c]);
        let mut best: Option<Reg> = None;
        let mut best_use = 0;
        for &r in self.masm.allocatable(class) {
            let hw = (r.hw & 31) as usize;
            let n = uses[hw];
            if n == 0 || in_cache[hw] != n {
                continue;
            }
            if best.is_none() || last_use[hw] < best_use {
                best = Some(r);
                best_use = last_use[hw];
            }
        }
        best.ok_or_else(|| CompileError::internal("out of registers".into()))
    }

    /// Moves every cache user of `r` out of it: stack entries to their slots, locals to
    /// their homes (stored only if the home is out of date).
    pub(super) fn spill_reg(&mut self, r: Reg) {
        for pos in 0..self.stack.len() {
            if matches!(self.stack[pos], Val::Reg(_, x) if x == r) {
                self.spill_entry(pos);
            }
        }
        let mut i = 0;
        while i < self.cached.len() {
            let l = self.cached[i];
            if let super::locals::LocalLoc::Reg(x, _) = self.local_locs[l as usize] {
                if x == r {
                    self.flush_local(l);
                    continue; // `cached[i]` was replaced by the last entry.
                }
            }
            i += 1;
        }
    }

    /// Removes a user of `r` (registers the allocator does not own are ignored).
    #[inline]
    pub(super) fn free_reg(&mut self, r: Reg) {
        self.regs.dec(r);
    }

    /// Frees the register of `v`, if it has one.
    #[inline]
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
            Val::Slot(_, s) => {
                let src = self.slot_addr(s);
                self.masm.copy(dst, src, v.kind().slot_copy_size());
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

    /// Spills every stack entry held in a register (locals keep theirs).
    pub(super) fn spill_regs(&mut self) {
        for pos in 0..self.stack.len() {
            if matches!(self.stack[pos], Val::Reg(..)) {
                self.spill_entry(pos);
            }
        }
    }

    /// Brings the operand stack into the state shared by all edges of a control-flow
    /// join: no entry in a register (constants and slots stay as they are). Entries below
    /// a block's base then never change inside it, so merges only move locals and the
    /// values a branch carries.
    pub(super) fn spill_for_join(&mut self) {
        self.spill_regs();
    }

    /// Empties every register before a call, which clobbers them all: stack entries go to
    /// their slots, locals to their homes (reloaded lazily by their next `local.get`).
    pub(super) fn spill_all_for_call(&mut self) {
        self.spill_regs();
        if self.in_try() {
            // A landing pad may be entered from this call: it expects every local at home.
            self.flush_all_locals();
        } else {
            self.flush_register_locals();
        }
    }

    /// Saves every register the cache uses (before a call on a slow path that must leave
    /// the cache as it was). Returns what [`FuncCompiler::restore_live_regs`] reloads.
    pub(super) fn save_live_regs(&mut self) -> Vec<(Reg, Address, OperandSize)> {
        let mut saved: Vec<(Reg, Address, OperandSize)> = Vec::new();
        for i in 0..self.cached.len() {
            let l = self.cached[i];
            if let super::locals::LocalLoc::Reg(r, dirty) = self.local_locs[l as usize] {
                if saved.iter().any(|s| s.0 == r) {
                    continue;
                }
                let (addr, size) = (self.local_addr(l), self.locals[l as usize].size());
                if dirty {
                    self.masm.store(RegImm::Reg(r), addr, size);
                }
                saved.push((r, addr, size));
            }
        }
        for pos in 0..self.stack.len() {
            if let Val::Reg(k, r) = self.stack[pos] {
                if saved.iter().any(|s| s.0 == r) {
                    continue;
                }
                let addr = self.slot_addr(pos as u32);
                self.masm.store(RegImm::Reg(r), addr, k.size());
                saved.push((r, addr, k.size()));
            }
        }
        saved
    }

    /// Reloads the registers saved by [`FuncCompiler::save_live_regs`].
    pub(super) fn restore_live_regs(&mut self, saved: &[(Reg, Address, OperandSize)]) {
        for &(r, addr, size) in saved {
            self.masm.load(r, addr, size);
        }
    }

    /// Puts `v` (already popped) in a register that has no other user, so the caller may
    /// overwrite it. A shared register is copied first.
    pub(super) fn in_reg(&mut self, v: Val) -> Result<Reg, CompileError> {
        let kind = v.kind();
        Ok(match v {
            Val::Reg(_, r) if self.regs.count(r) <= 1 || !self.regs.is_allocatable(r) => r,
            Val::Reg(_, shared) => {
                let r = self.alloc(kind.class())?;
                self.masm.mov(r, RegImm::Reg(shared), kind.size());
                self.free_reg(shared);
                r
            }
            other => self.read_reg(other)?,
        })
    }

    /// Puts `v` (already popped) in a register for reading only: a register it is in is
    /// used as it is, even when a local or other entries share it.
    ///
    /// Inlined for the common case (already in a register); loading is out of line so
    /// callers do not pay its register pressure.
    #[inline]
    pub(super) fn read_reg(&mut self, v: Val) -> Result<Reg, CompileError> {
        match v {
            Val::Reg(_, r) => Ok(r),
            other => self.load_to_reg(other),
        }
    }

    /// `read_reg` for a constant or a slot: a new register holding it.
    #[inline(never)]
    fn load_to_reg(&mut self, v: Val) -> Result<Reg, CompileError> {
        let kind = v.kind();
        Ok(match v {
            Val::Reg(_, r) => r,
            Val::Const(_, bits) => {
                let r = self.alloc(kind.class())?;
                self.masm.mov(r, RegImm::Imm(bits), kind.size());
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

    /// Pops the top value into a register it owns alone.
    pub(super) fn pop_to_reg(&mut self) -> Result<(ValKind, Reg), CompileError> {
        let v = self.pop()?;
        Ok((v.kind(), self.in_reg(v)?))
    }

    /// Pops the top value into a register for reading only.
    pub(super) fn pop_read(&mut self) -> Result<(ValKind, Reg), CompileError> {
        let v = self.pop()?;
        Ok((v.kind(), self.read_reg(v)?))
    }

    /// `v` as an immediate if it is a constant, otherwise in a register (read only).
    pub(super) fn reg_or_imm(&mut self, v: Val) -> Result<RegImm, CompileError> {
        Ok(match v {
            Val::Const(_, bits) => RegImm::Imm(bits),
            other => RegImm::Reg(self.read_reg(other)?),
        })
    }

    /// Frees the register of an operand that was consumed.
    pub(super) fn release_operand(&mut self, op: RegImm) {
        if let RegImm::Reg(r) = op {
            self.free_reg(r);
        }
    }

    /// A register of `class` for the result of an operation on the operands in hand
    /// `candidates`: the first candidate that nothing else uses (it may be overwritten), or
    /// a new one. The result counts as a user of its own, so the caller still releases
    /// every candidate.
    pub(super) fn result_reg(
        &mut self,
        class: RegClass,
        candidates: &[Reg],
    ) -> Result<Reg, CompileError> {
        if let Some(&first) = candidates.first() {
            if first.class == class && self.result_goes_to_local_in(first) {
                self.regs.inc(first);
                return Ok(first);
            }
        }
        for &c in candidates {
            if c.class == class && self.regs.is_allocatable(c) && self.regs.count(c) == 1 {
                // Counted twice when the same register is two candidates: not reusable.
                if candidates.iter().filter(|&&x| x == c).count() == 1 {
                    self.regs.inc(c);
                    return Ok(c);
                }
            }
        }
        self.alloc(class)
    }

    /// Drops entries above height `height`, freeing their registers.
    pub(super) fn truncate_stack(&mut self, height: usize) {
        while self.stack.len() > height {
            if let Some(v) = self.stack.pop() {
                self.release(v);
            }
        }
    }

    /// Recounts every register's users from the cache (after the cache state was replaced
    /// wholesale at a merge). Nothing may be in hand.
    pub(super) fn recount_uses(&mut self) {
        self.regs.clear();
        for i in 0..self.stack.len() {
            if let Val::Reg(_, r) = self.stack[i] {
                self.regs.add_user(r);
            }
        }
        for i in 0..self.cached.len() {
            let l = self.cached[i];
            if let super::locals::LocalLoc::Reg(r, _) = self.local_locs[l as usize] {
                self.regs.add_user(r);
            }
        }
    }

    /// Debug check (and with the `checks` feature): the use counts match the cache
    /// (nothing in hand between operators).
    pub(super) fn check_uses(&self) {
        if cfg!(any(debug_assertions, feature = "checks")) {
            for class in [RegClass::Int, RegClass::Float] {
                for &r in self.masm.allocatable(class) {
                    assert_eq!(
                        self.regs.count(r),
                        self.cache_users(r),
                        "use count of {r:?} at wasm offset {:#x}",
                        self.wasm_offset
                    );
                }
            }
        }
    }

    /// Debug check (and with the `checks` feature), after every operator: a value may sit
    /// in a lower position's slot (an `if`'s hidden parameter), never in a higher one's,
    /// which the value pushed there next would spill over.
    pub(super) fn check_slots(&self) {
        if cfg!(any(debug_assertions, feature = "checks")) {
            for (pos, v) in self.stack.iter().enumerate() {
                if let Val::Slot(_, s) = *v {
                    assert!(
                        s as usize <= pos,
                        "stack position {pos} in the slot of position {s} at wasm offset {:#x}",
                        self.wasm_offset
                    );
                }
            }
        }
    }
}
