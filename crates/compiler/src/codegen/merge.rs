//! Merge states: where every edge into a block end or a loop header leaves the locals and
//! the values it carries.
//!
//! The first edge that reaches a target defines its state from its own (registers kept
//! where they can be, so locals stay in registers across the join); a loop fixes its state
//! at the header, so the locals of a hot loop live in registers across iterations. Every
//! later edge emits one parallel move (`moves.rs`) into that state. Entries of the operand
//! stack below the target's base are never in registers at a join (`spill_for_join`), so
//! they need no moves.

use super::locals::LocalLoc;
use super::moves::{self, Loc, Move, Src};
use super::stack::Val;
use super::FuncCompiler;
use crate::masm::{MacroAssembler, Reg, RegClass, RegImm};
use crate::CompileError;

/// The state all edges into one target agree on.
#[derive(Debug, Clone, Default)]
pub(super) struct MergeState {
    /// Locals held in a register (dirty); every other local is at home.
    pub locals: Vec<(u32, Reg)>,
    /// The carried values, at stack positions `base..base + n`: registers or their own
    /// slots.
    pub values: Vec<Val>,
}

/// A set of registers, per class.
#[derive(Default)]
struct Taken([u32; 2]);

impl Taken {
    fn bit(r: Reg) -> (usize, u32) {
        let c = match r.class {
            RegClass::Int => 0,
            RegClass::Float => 1,
        };
        (c, 1 << r.hw)
    }
    /// Adds `r`; false if it was already there.
    fn take(&mut self, r: Reg) -> bool {
        let (c, b) = Taken::bit(r);
        let fresh = self.0[c] & b == 0;
        self.0[c] |= b;
        fresh
    }
    fn contains(&self, r: Reg) -> bool {
        let (c, b) = Taken::bit(r);
        self.0[c] & b != 0
    }
}

/// `r` as a nonzero byte (registers number below 127).
#[inline(always)]
fn encode_reg(r: Reg) -> u8 {
    debug_assert!(r.hw < 127);
    let class = match r.class {
        RegClass::Int => 0,
        RegClass::Float => 1,
    };
    ((r.hw << 1) | class) + 1
}

/// The register [`encode_reg`] made `b`, or `None` for 0.
#[inline(always)]
fn decode_reg(b: u8) -> Option<Reg> {
    let c = b.checked_sub(1)?;
    let class = if c & 1 == 0 {
        RegClass::Int
    } else {
        RegClass::Float
    };
    Some(Reg { class, hw: c >> 1 })
}

impl<M: MacroAssembler> FuncCompiler<'_, M> {
    /// A free register of `class` not in `taken`, for a constant entering a merge state.
    fn spare_reg(&self, class: RegClass, taken: &Taken) -> Option<Reg> {
        self.masm
            .allocatable(class)
            .iter()
            .copied()
            .find(|&r| self.regs.count(r) == 0 && !taken.contains(r))
    }

    /// An empty merge state, from the pool of ended frames' states when there is one.
    fn empty_merge_state(&mut self) -> MergeState {
        let mut state = self.merge_pool.pop().unwrap_or_default();
        state.locals.clear();
        state.values.clear();
        state
    }

    /// The merge state closest to the current one for a target whose `n` carried values
    /// sit at `base`: registers kept (each at most once), constants given a free register
    /// where one is left, everything else at home / in its slot.
    pub(super) fn derive_merge(&mut self, base: usize, n: usize) -> MergeState {
        let MergeState {
            mut locals,
            mut values,
        } = self.empty_merge_state();
        let mut taken = Taken::default();
        for &l in &self.cached {
            match self.local_locs[l as usize] {
                LocalLoc::Reg(r, _) if taken.take(r) => locals.push((l, r)),
                // Only constants the code wrote (a loop counter set before its loop), not
                // the initial zeros of locals that may never be used.
                LocalLoc::Const(_) if self.written[l as usize] => {
                    let class = self.locals[l as usize].class();
                    if let Some(r) = self.spare_reg(class, &taken) {
                        taken.take(r);
                        locals.push((l, r));
                    }
                }
                _ => {}
            }
        }
        let first = self.stack.len() - n;
        for i in 0..n {
            let v = self.stack[first + i];
            let k = v.kind();
            let own_slot = Val::Slot(k, (base + i) as u32);
            values.push(match v {
                Val::Reg(_, r) if taken.take(r) => v,
                Val::Const(..) => match self.spare_reg(k.class(), &taken) {
                    Some(r) => {
                        taken.take(r);
                        Val::Reg(k, r)
                    }
                    None => own_slot,
                },
                _ => own_slot,
            });
        }
        MergeState { locals, values }
    }

    /// The state a loop header fixes, given the locals the loop uses with their access
    /// counts: the most used of them get registers (those they are in, else free ones,
    /// loaded on entry), leaving a few registers of each class for temporaries; other
    /// locals keep their registers only while some are left, else go home.
    pub(super) fn derive_loop_merge(
        &mut self,
        base: usize,
        n: usize,
        uses: &mut super::prescan::LoopLocals,
    ) -> MergeState {
        /// Registers per class left to the loop's temporaries.
        const TEMPS: usize = 3;
        let MergeState {
            mut locals,
            mut values,
        } = self.empty_merge_state();
        let mut taken = Taken::default();
        let first = self.stack.len() - n;
        let mut value_regs = 0;
        for i in 0..n {
            let v = self.stack[first + i];
            values.push(match v {
                Val::Reg(_, r) if taken.take(r) => {
                    value_regs += 1;
                    v
                }
                _ => Val::Slot(v.kind(), (base + i) as u32),
            });
        }
        uses.sort_by_key(|u| std::cmp::Reverse(u.1));
        let capacity = |class: RegClass| {
            self.masm
                .allocatable(class)
                .len()
                .saturating_sub(TEMPS + value_regs)
        };
        let mut budget = [capacity(RegClass::Int), capacity(RegClass::Float)];
        let slot = |class: RegClass| match class {
            RegClass::Int => 0,
            RegClass::Float => 1,
        };
        // Locals already in a register keep it, most used first.
        let mut chosen = [(0u32, None::<Reg>); 64];
        let mut num_chosen = 0;
        for &(l, _) in uses.iter() {
            let class = self.locals[l as usize].class();
            if budget[slot(class)] == 0 {
                continue;
            }
            budget[slot(class)] -= 1;
            let reg = match self.local_locs[l as usize] {
                LocalLoc::Reg(r, _) if taken.take(r) => Some(r),
                _ => None,
            };
            if num_chosen < chosen.len() {
                chosen[num_chosen] = (l, reg);
                num_chosen += 1;
            }
        }
        // The others get a register no chosen local or value keeps.
        for &(l, reg) in &chosen[..num_chosen] {
            let reg = reg.or_else(|| {
                let class = self.locals[l as usize].class();
                let r = self
                    .masm
                    .allocatable(class)
                    .iter()
                    .copied()
                    .find(|&r| !taken.contains(r) && !self.holds_other_value(r))?;
                taken.take(r);
                Some(r)
            });
            if let Some(r) = reg {
                locals.push((l, r));
            }
        }
        // Registers left over: locals the loop does not use may keep theirs (no store on
        // entry, no reload after the loop).
        for &l in &self.cached {
            if let LocalLoc::Reg(r, _) = self.local_locs[l as usize] {
                let class = self.locals[l as usize].class();
                if budget[slot(class)] > 0 && !locals.iter().any(|e| e.0 == l) && taken.take(r) {
                    budget[slot(class)] -= 1;
                    locals.push((l, r));
                }
            }
        }
        MergeState { locals, values }
    }

    /// Whether `r` holds a stack value (only locals' registers can be given away at a
    /// loop header: the moves store them first if needed).
    fn holds_other_value(&self, r: Reg) -> bool {
        self.stack
            .iter()
            .any(|v| matches!(v, Val::Reg(_, x) if *x == r))
    }

    /// The parallel moves that take the current state (its top `n` values carried to
    /// `base`) into `target`, into a buffer the caller reuses (cleared first).
    pub(super) fn moves_into_buf(&self, target: &MergeState, out: &mut Vec<Move>) {
        out.clear();
        let first = self.stack.len() - target.values.len();
        let values_in_place = self.stack[first..] == target.values[..];
        if values_in_place
            && target.locals.len() == self.cached.len()
            && target
                .locals
                .iter()
                .all(|&(l, r)| matches!(self.local_locs[l as usize], LocalLoc::Reg(x, _) if x == r))
        {
            // The common case: the locals are where the target has them already.
            return;
        }
        // The target's register of each cached local, by its position in `cached` (a
        // search only for the rare states with more cached locals than fit). Encoded as
        // bytes, 0 for none, so the table starts as a few zeroing stores.
        const INDEXED: usize = 64;
        // Whether the target holds some local that is at home now (loaded below).
        let mut loads = true;
        if self.cached.len() <= INDEXED {
            let mut target_at = [0u8; INDEXED];
            loads = false;
            for &(l, r) in &target.locals {
                // `NOT_CACHED` (at home) is out of range.
                match target_at.get_mut(self.cached_at[l as usize] as usize) {
                    Some(t) => *t = encode_reg(r),
                    None => loads = true,
                }
            }
            self.local_moves(target_at.iter().copied(), out);
        } else {
            let find = |l: u32| target.locals.iter().find(|e| e.0 == l).map(|e| e.1);
            self.local_moves(
                self.cached.iter().map(|&l| find(l).map_or(0, encode_reg)),
                out,
            );
        }
        if loads {
            for &(l, r) in &target.locals {
                if self.local_locs[l as usize] == LocalLoc::Home {
                    let kind = self.locals[l as usize];
                    out.push(Move {
                        src: Src::Loc(Loc::Mem(self.local_addr(l))),
                        dst: Loc::Reg(r),
                        class: kind.class(),
                        size: kind.size(),
                    });
                }
            }
        }
        if values_in_place {
            // Every value is its own destination.
            return;
        }
        for (i, &t) in target.values.iter().enumerate() {
            let v = self.stack[first + i];
            let kind = v.kind();
            let src = match v {
                Val::Const(_, bits) => Src::Imm(bits),
                Val::Reg(_, r) => Src::Loc(Loc::Reg(r)),
                Val::Slot(_, s) => Src::Loc(Loc::Mem(self.slot_addr(s))),
            };
            let dst = match t {
                Val::Reg(_, r) => Loc::Reg(r),
                Val::Slot(_, s) => Loc::Mem(self.slot_addr(s)),
                Val::Const(..) => continue, // never in a merge state
            };
            if src == Src::Loc(dst) {
                continue;
            }
            out.push(Move {
                src,
                dst,
                class: kind.class(),
                // Slot-to-slot copies move whole words.
                size: if matches!(dst, Loc::Mem(_)) && matches!(src, Src::Loc(Loc::Mem(_))) {
                    kind.slot_copy_size()
                } else {
                    kind.size()
                },
            });
        }
    }

    /// The moves of the cached locals, in `cached` order, given the target's register of
    /// each in the same order (as [`encode_reg`] bytes, 0 for at home). A local's home
    /// and kind are only looked up when it moves.
    #[inline(always)]
    fn local_moves(&self, targets: impl Iterator<Item = u8>, out: &mut Vec<Move>) {
        for (&l, target) in self.cached.iter().zip(targets) {
            let src = match self.local_locs[l as usize] {
                LocalLoc::Home => continue,
                // Already in the target's register, or clean and going home.
                LocalLoc::Reg(r, dirty) if target == encode_reg(r) || (target == 0 && !dirty) => {
                    continue
                }
                LocalLoc::Reg(r, _) => Src::Loc(Loc::Reg(r)),
                LocalLoc::Const(bits) => Src::Imm(bits),
            };
            let dst = match decode_reg(target) {
                Some(r) => Loc::Reg(r),
                None => Loc::Mem(self.local_addr(l)),
            };
            let kind = self.locals[l as usize];
            out.push(Move {
                src,
                dst,
                class: kind.class(),
                size: kind.size(),
            });
        }
    }

    /// Emits `moves` in an order that respects their parallel semantics (the buffer is
    /// left empty).
    pub(super) fn emit_moves_buf(&mut self, moves: &mut Vec<Move>) {
        if moves.is_empty() {
            return;
        }
        let int_scratch = self.masm.move_scratch(RegClass::Int);
        let float_scratch = self.masm.move_scratch(RegClass::Float);
        let scratch = |c: RegClass| match c {
            RegClass::Int => int_scratch,
            RegClass::Float => float_scratch,
        };
        let masm = &mut self.masm;
        moves::resolve(moves, scratch, |m| match (m.src, m.dst) {
            (Src::Imm(bits), Loc::Reg(d)) => masm.mov(d, RegImm::Imm(bits), m.size),
            (Src::Imm(bits), Loc::Mem(a)) => masm.store(RegImm::Imm(bits), a, m.size),
            (Src::Loc(Loc::Reg(s)), Loc::Reg(d)) => masm.mov(d, RegImm::Reg(s), m.size),
            (Src::Loc(Loc::Reg(s)), Loc::Mem(a)) => masm.store(RegImm::Reg(s), a, m.size),
            (Src::Loc(Loc::Mem(a)), Loc::Reg(d)) => masm.load(d, a, m.size),
            (Src::Loc(Loc::Mem(a)), Loc::Mem(b)) => masm.copy(b, a, m.size),
        });
    }

    /// Whether the top `n` values already sit at `base..base + n`, so the current state can
    /// be made equal to a merge state in place.
    pub(super) fn values_in_place(&self, base: usize, n: usize) -> bool {
        self.stack.len() - n == base
    }

    /// After the moves into `target` were emitted, makes the current state agree with it
    /// (the carried values must be in place, see [`FuncCompiler::values_in_place`]), so a
    /// branch to the target needs no moves. A local the target keeps at home stays in its
    /// register (now clean: the moves stored it) unless the target gives that register to
    /// another entry.
    pub(super) fn conform_to(&mut self, target: &MergeState) {
        let mut claimed = Taken::default();
        for &(_, r) in &target.locals {
            claimed.take(r);
        }
        for v in &target.values {
            if let Val::Reg(_, r) = *v {
                claimed.take(r);
            }
        }
        let mut i = 0;
        while i < self.cached.len() {
            let l = self.cached[i];
            match self.local_locs[l as usize] {
                LocalLoc::Reg(r, _) if target.locals.contains(&(l, r)) => i += 1,
                // At home in the target (the moves stored it if needed): keep the register.
                LocalLoc::Reg(r, _)
                    if !claimed.contains(r) && !target.locals.iter().any(|e| e.0 == l) =>
                {
                    self.set_local_loc(l, LocalLoc::Reg(r, false));
                    i += 1;
                }
                loc => {
                    if let LocalLoc::Reg(r, _) = loc {
                        self.free_reg(r);
                    }
                    // The moves stored it if its home was out of date.
                    self.set_local_loc(l, LocalLoc::Home);
                }
            }
        }
        // Locals the target holds elsewhere were sent home above; they are in the
        // target's register now.
        for &(l, r) in &target.locals {
            if self.local_locs[l as usize] == LocalLoc::Home {
                self.regs.add_user(r);
                self.set_local_loc(l, LocalLoc::Reg(r, true));
            }
        }
        let first = self.stack.len() - target.values.len();
        for (i, &t) in target.values.iter().enumerate() {
            let old = self.stack[first + i];
            if old != t {
                self.release(old);
                if let Val::Reg(_, r) = t {
                    self.regs.add_user(r);
                }
                self.stack[first + i] = t;
            }
        }
    }

    /// Replaces the current state by `target` at a join whose values start at `base`
    /// (nothing may be in hand).
    pub(super) fn enter_merge(&mut self, target: &MergeState, base: usize) {
        self.reset_locals(
            target
                .locals
                .iter()
                .map(|&(l, r)| (l, LocalLoc::Reg(r, true))),
        );
        self.stack.truncate(base);
        // The use counts rebuilt as `recount_uses` would, from the target directly (its
        // locals are the cached ones now) rather than through `cached`.
        self.regs.clear();
        for i in 0..base {
            // Never a register at a join, but counted if one were.
            if let Val::Reg(_, r) = self.stack[i] {
                self.regs.add_user(r);
            }
        }
        for &(_, r) in &target.locals {
            self.regs.add_user(r);
        }
        for &v in &target.values {
            self.push(v);
            if let Val::Reg(_, r) = v {
                self.regs.add_user(r);
            }
        }
    }

    /// Moves the current state into the merge state of frame `idx` (deriving it from the
    /// current state if this is the first edge). Does not change the current state.
    pub(super) fn move_into_frame(&mut self, idx: usize) -> Result<(), CompileError> {
        let (base, n) = {
            let f = &self.control[idx];
            (f.base, f.branch_arity())
        };
        if self.control[idx].merge.is_none() {
            let state = self.derive_merge(base, n);
            self.control[idx].merge = Some(state);
        }
        let target = self.control[idx]
            .merge
            .take()
            .ok_or_else(|| CompileError::internal("missing merge state".into()))?;
        let mut moves = std::mem::take(&mut self.move_buf);
        self.moves_into_buf(&target, &mut moves);
        self.emit_moves_buf(&mut moves);
        self.move_buf = moves;
        self.control[idx].merge = Some(target);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registers_survive_their_byte_encoding() {
        assert_eq!(decode_reg(0), None);
        for hw in 0..32 {
            for r in [Reg::int(hw), Reg::float(hw)] {
                assert_ne!(encode_reg(r), 0);
                assert_eq!(decode_reg(encode_reg(r)), Some(r));
            }
        }
        assert_ne!(encode_reg(Reg::int(3)), encode_reg(Reg::float(3)));
    }
}
