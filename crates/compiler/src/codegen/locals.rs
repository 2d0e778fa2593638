//! Locals as entries of the register cache.
//!
//! A local is in its frame home, in a register (clean: the home holds the same value;
//! dirty: the home is out of date), or a known constant. `local.get` loads a local into a
//! register once and shares that register with the stack; `local.set` rebinds the local to
//! the register the value is already in. The locals that are not at home are listed in
//! `cached`, so merges, calls and snapshots cost O(cached locals), not O(all locals).

use super::stack::Val;
use super::FuncCompiler;
use crate::masm::{MacroAssembler, Reg, RegImm};
use crate::CompileError;

/// Where a local's current value is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum LocalLoc {
    /// In its frame home only.
    Home,
    /// In a register; `true` when the home is out of date (dirty).
    Reg(Reg, bool),
    /// A known constant (raw bits); the home is out of date.
    Const(i64),
}

/// No position in `cached`.
pub(super) const NOT_CACHED: u32 = u32::MAX;

/// The cache state of the locals that are not at home, to restore later (an `if`'s
/// state for its `else` arm).
pub(super) type LocalsSnapshot = Vec<(u32, LocalLoc)>;

impl<M: MacroAssembler> FuncCompiler<'_, M> {
    /// Sets the location of local `l`, keeping the `cached` list in step. Use counts are the
    /// caller's business.
    ///
    /// Always inlined: `loc` is a 16-byte enum, which an out-of-line call takes through
    /// memory (narrow stores read back as one wide load, which stalls).
    #[inline(always)]
    pub(super) fn set_local_loc(&mut self, l: u32, loc: LocalLoc) {
        let i = l as usize;
        self.local_locs[i] = loc;
        let at = self.cached_at[i];
        match (loc, at == NOT_CACHED) {
            (LocalLoc::Home, false) => {
                self.cached.swap_remove(at as usize);
                if let Some(&moved) = self.cached.get(at as usize) {
                    self.cached_at[moved as usize] = at;
                }
                self.cached_at[i] = NOT_CACHED;
            }
            (LocalLoc::Reg(..) | LocalLoc::Const(_), true) => {
                self.cached_at[i] = self.cached.len() as u32;
                self.cached.push(l);
            }
            _ => {}
        }
    }

    /// Sends local `l` home: stores it if the home is out of date and releases its register.
    pub(super) fn flush_local(&mut self, l: u32) {
        let addr = self.local_addr(l);
        let size = self.locals[l as usize].size();
        match self.local_locs[l as usize] {
            LocalLoc::Home => return,
            LocalLoc::Reg(r, dirty) => {
                if dirty {
                    self.masm.store(RegImm::Reg(r), addr, size);
                }
                self.free_reg(r);
            }
            LocalLoc::Const(bits) => self.masm.store(RegImm::Imm(bits), addr, size),
        }
        self.set_local_loc(l, LocalLoc::Home);
    }

    /// Sends every local held in a register home (constants stay constants).
    pub(super) fn flush_register_locals(&mut self) {
        // One pass: constants stay in `cached` (compacted in place), the rest go home.
        let mut kept = 0;
        for i in 0..self.cached.len() {
            let l = self.cached[i];
            match self.local_locs[l as usize] {
                LocalLoc::Reg(r, dirty) => {
                    if dirty {
                        let size = self.locals[l as usize].size();
                        self.masm.store(RegImm::Reg(r), self.local_addr(l), size);
                    }
                    self.free_reg(r);
                    self.local_locs[l as usize] = LocalLoc::Home;
                    self.cached_at[l as usize] = NOT_CACHED;
                }
                _ => {
                    self.cached[kept] = l;
                    self.cached_at[l as usize] = kept as u32;
                    kept += 1;
                }
            }
        }
        self.cached.truncate(kept);
    }

    /// Sends every local home, constants included (stores what the homes lack).
    pub(super) fn flush_all_locals(&mut self) {
        while let Some(&l) = self.cached.last() {
            self.flush_local(l);
        }
    }

    /// Forgets where local `l` is (its value is about to be replaced): releases its
    /// register without storing anything.
    fn unbind_local(&mut self, l: u32) {
        if let LocalLoc::Reg(r, _) = self.local_locs[l as usize] {
            self.free_reg(r);
        }
        self.set_local_loc(l, LocalLoc::Home);
    }

    pub(super) fn visit_local_get(&mut self, l: u32) -> Result<(), CompileError> {
        let kind = self.local_kind(l)?;
        match self.local_locs[l as usize] {
            LocalLoc::Const(bits) => self.push(Val::Const(kind, bits)),
            LocalLoc::Reg(r, _) => {
                self.regs.inc(r);
                self.push(Val::Reg(kind, r));
            }
            LocalLoc::Home => return self.load_local(l, kind),
        }
        Ok(())
    }

    /// `local.get` of a local at home. Out of line: the cached cases then need no
    /// callee-saved registers.
    #[inline(never)]
    fn load_local(&mut self, l: u32, kind: super::stack::ValKind) -> Result<(), CompileError> {
        // Load once; the local keeps the register (clean) while it stays hot.
        let r = self.alloc(kind.class())?;
        let addr = self.local_addr(l);
        self.masm.load(r, addr, kind.size());
        self.regs.inc(r);
        self.set_local_loc(l, LocalLoc::Reg(r, false));
        self.push(Val::Reg(kind, r));
        Ok(())
    }

    /// `local.set` (and `local.tee` when `tee`): the local takes over the value where it is.
    pub(super) fn visit_local_set(&mut self, l: u32, tee: bool) -> Result<(), CompileError> {
        let v = self.pop()?;
        let kind = self.local_kind(l)?;
        self.written[l as usize] = true;
        match v {
            Val::Const(_, bits) => {
                self.unbind_local(l);
                self.set_local_loc(l, LocalLoc::Const(bits));
                if tee {
                    self.push(v);
                }
            }
            Val::Reg(_, r) => {
                if matches!(self.local_locs[l as usize], LocalLoc::Reg(x, _) if x == r) {
                    // The value is in the local's register already (`local.get x; local.set
                    // x`, or an operation that wrote the register in place).
                    self.set_local_loc(l, LocalLoc::Reg(r, true));
                    if tee {
                        self.push(v);
                    } else {
                        self.free_reg(r);
                    }
                    return Ok(());
                }
                self.unbind_local(l);
                if tee {
                    self.regs.inc(r);
                    self.push(v);
                }
                // The popped reference now belongs to the local.
                self.set_local_loc(l, LocalLoc::Reg(r, true));
            }
            Val::Slot(_, s) => {
                self.unbind_local(l);
                let r = self.alloc(kind.class())?;
                let src = self.slot_addr(s);
                self.masm.load(r, src, kind.size());
                self.set_local_loc(l, LocalLoc::Reg(r, true));
                if tee {
                    self.regs.inc(r);
                    self.push(Val::Reg(kind, r));
                }
            }
        }
        Ok(())
    }

    /// Whether the next operator stores the current result into the local that register
    /// `r` (an operand in hand) holds, and nothing else uses `r`: the operation may then
    /// write `r` in place (`local.get x; ...; i32.add; local.set x` becomes one `add`).
    /// The local is marked dirty by that `local.set`.
    pub(super) fn result_goes_to_local_in(&self, r: Reg) -> bool {
        if self.regs.count(r) != 2 {
            return false;
        }
        let super::NextOp::SetLocal(l) = self.next_op() else {
            return false;
        };
        matches!(self.local_locs.get(l as usize), Some(LocalLoc::Reg(x, _)) if *x == r)
    }

    /// The locals that are not at home, with where they are, into `out` (cleared first).
    pub(super) fn snapshot_locals_into(&self, out: &mut LocalsSnapshot) {
        out.clear();
        out.extend(
            self.cached
                .iter()
                .map(|&l| (l, self.local_locs[l as usize])),
        );
    }

    /// Makes `snapshot` the locals' state (without emitting code: the registers and homes
    /// must already hold what it says). Use counts are rebuilt by the caller.
    pub(super) fn restore_locals(&mut self, snapshot: &[(u32, LocalLoc)]) {
        self.reset_locals(snapshot.iter().copied());
    }

    /// Sends every cached local home (in the bookkeeping only), then places `locals`
    /// (none of them `Home`, each at most once).
    pub(super) fn reset_locals(&mut self, locals: impl Iterator<Item = (u32, LocalLoc)>) {
        for &l in &self.cached {
            self.local_locs[l as usize] = LocalLoc::Home;
            self.cached_at[l as usize] = NOT_CACHED;
        }
        self.cached.clear();
        for (l, loc) in locals {
            debug_assert!(loc != LocalLoc::Home && self.cached_at[l as usize] == NOT_CACHED);
            self.local_locs[l as usize] = loc;
            self.cached_at[l as usize] = self.cached.len() as u32;
            self.cached.push(l);
        }
    }
}
