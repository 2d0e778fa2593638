//! The parallel-move resolver.
//!
//! A merge (a branch into a block end or a loop header) must put many values into the
//! places the target expects at once: register to register, register to frame slot,
//! slot to register, constants anywhere. The moves have *parallel* semantics (every source
//! is read before any destination is written), but the machine executes them one by one.
//! [`resolve`] orders them so that no destination is written while another move still has
//! to read it, and breaks the remaining cycles (`a <- b, b <- a`) by parking one value in a
//! scratch register of its class. It is pure: it only hands the ordered moves to a callback.

use crate::masm::{Address, OperandSize, Reg, RegClass};

/// A place a value can be in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Loc {
    /// A register.
    Reg(Reg),
    /// A frame slot (a local's home or a stack position's spill slot).
    Mem(Address),
}

/// Where a move reads its value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Src {
    /// The current content of a location.
    Loc(Loc),
    /// A constant (raw bits, as in `Val::Const`).
    Imm(i64),
}

/// One move: `dst <- src` for a value of `class` and `size`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Move {
    pub src: Src,
    pub dst: Loc,
    pub class: RegClass,
    pub size: OperandSize,
}

/// Orders the parallel moves `moves` (destinations must be distinct) into a sequence with
/// the same effect and passes each step to `emit`. `scratch(class)` is a register of that
/// class that is neither a source nor a destination of any move; it is used to break
/// cycles. Moves whose source is their destination are dropped.
pub(super) fn resolve(
    moves: &mut Vec<Move>,
    scratch: impl Fn(RegClass) -> Reg,
    mut emit: impl FnMut(Move),
) {
    // A move that is its own destination reads it: there are none unless some destination
    // is read, so they are looked for (and dropped) only then.
    let mut needs_order = any_destination_is_read(moves);
    if needs_order && moves.iter().any(|m| reads(m.src, m.dst)) {
        moves.retain(|m| !reads(m.src, m.dst));
        needs_order = any_destination_is_read(moves);
    }
    if !needs_order {
        // The common case: nothing to order.
        for &m in moves.iter() {
            emit(m);
        }
        moves.clear();
        return;
    }
    // How many of the remaining moves read each register and memory, so that whether a
    // destination is still to be read costs O(1) (a search only for a memory destination
    // while some move reads memory).
    let mut readers = Readers::default();
    for m in moves.iter() {
        readers.add(m.src, 1);
    }
    while !moves.is_empty() {
        let mut progress = false;
        let mut i = 0;
        while i < moves.len() {
            let dst = moves[i].dst;
            let read = match dst {
                Loc::Reg(r) => readers.of_reg(r) != 0,
                Loc::Mem(_) => readers.memory != 0 && moves.iter().any(|m| reads(m.src, dst)),
            };
            if read {
                i += 1;
            } else {
                let m = moves.swap_remove(i);
                readers.add(m.src, -1);
                emit(m);
                progress = true;
            }
        }
        if !progress {
            // Only cycles are left: every destination is still some move's source. Park the
            // value of one destination in the scratch register and read it from there.
            let first = moves[0];
            let parked = Loc::Reg(scratch(first.class));
            emit(Move {
                src: Src::Loc(first.dst),
                dst: parked,
                class: first.class,
                // Whole words, or whole vectors when the class carries any v128 here.
                size: if moves
                    .iter()
                    .any(|m| m.class == first.class && m.size == OperandSize::S128)
                {
                    OperandSize::S128
                } else {
                    OperandSize::S64
                },
            });
            for m in moves.iter_mut() {
                if reads(m.src, first.dst) {
                    readers.add(m.src, -1);
                    m.src = Src::Loc(parked);
                    readers.add(m.src, 1);
                }
            }
        }
    }
}

/// Counts of the moves that read each register (by class and number) and of those that
/// read memory.
struct Readers {
    regs: [[i32; 64]; 2],
    memory: i32,
}

impl Default for Readers {
    fn default() -> Readers {
        Readers {
            regs: [[0; 64]; 2],
            memory: 0,
        }
    }
}

impl Readers {
    fn slot(r: Reg) -> (usize, usize) {
        debug_assert!(r.hw < 64);
        let class = match r.class {
            RegClass::Int => 0,
            RegClass::Float => 1,
        };
        (class, usize::from(r.hw & 63))
    }

    fn of_reg(&self, r: Reg) -> i32 {
        let (c, i) = Readers::slot(r);
        self.regs[c][i]
    }

    /// Adds `n` readers of `src`.
    fn add(&mut self, src: Src, n: i32) {
        match src {
            Src::Loc(Loc::Reg(r)) => {
                let (c, i) = Readers::slot(r);
                self.regs[c][i] += n;
            }
            Src::Loc(Loc::Mem(_)) => self.memory += n,
            Src::Imm(_) => {}
        }
    }
}

/// Whether `src` is the location `dst` (the explicit match is cheaper than comparing the
/// derived way).
#[inline(always)]
fn reads(src: Src, dst: Loc) -> bool {
    match (src, dst) {
        (Src::Loc(Loc::Reg(a)), Loc::Reg(b)) => a == b,
        (Src::Loc(Loc::Mem(a)), Loc::Mem(b)) => a == b,
        _ => false,
    }
}

/// Whether some move writes a location another move reads (then the order matters).
/// Registers are checked with one bit set per class, memory with one bit per slot-sized
/// offset (a search only when that bit is set), so the usual case (stores and loads
/// between distinct registers and slots) costs a pass over the moves.
fn any_destination_is_read(moves: &[Move]) -> bool {
    let bit = |r: Reg| -> (usize, u64) {
        let class = match r.class {
            RegClass::Int => 0,
            RegClass::Float => 1,
        };
        (class, 1u64 << (r.hw & 63))
    };
    let mem_bit = |a: Address| -> u64 {
        let off = match a {
            Address::Frame(o) | Address::Outgoing(o) | Address::Vmctx(o) | Address::Base(_, o) => o,
        };
        1u64 << ((off as u32 >> 3) & 63)
    };
    let mut read_regs = [0u64; 2];
    let mut read_memory = 0u64;
    for m in moves {
        match m.src {
            Src::Loc(Loc::Reg(r)) => {
                let (c, b) = bit(r);
                read_regs[c] |= b;
            }
            Src::Loc(Loc::Mem(a)) => read_memory |= mem_bit(a),
            Src::Imm(_) => {}
        }
    }
    moves.iter().any(|m| match m.dst {
        Loc::Reg(r) => {
            let (c, b) = bit(r);
            read_regs[c] & b != 0
        }
        Loc::Mem(a) => read_memory & mem_bit(a) != 0 && moves.iter().any(|o| reads(o.src, m.dst)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    const SCRATCH_INT: Reg = Reg::int(31);
    const SCRATCH_FLOAT: Reg = Reg::float(31);

    fn scratch(class: RegClass) -> Reg {
        match class {
            RegClass::Int => SCRATCH_INT,
            RegClass::Float => SCRATCH_FLOAT,
        }
    }

    fn r(hw: u8) -> Loc {
        Loc::Reg(Reg::int(hw))
    }
    fn f(hw: u8) -> Loc {
        Loc::Reg(Reg::float(hw))
    }
    fn m(off: i32) -> Loc {
        Loc::Mem(Address::Frame(off))
    }
    fn mv(src: Loc, dst: Loc) -> Move {
        let class = match dst {
            Loc::Reg(r) => r.class,
            Loc::Mem(_) => match src {
                Loc::Reg(r) => r.class,
                Loc::Mem(_) => RegClass::Int,
            },
        };
        Move {
            src: Src::Loc(src),
            dst,
            class,
            size: OperandSize::S64,
        }
    }
    fn imm(v: i64, dst: Loc) -> Move {
        Move {
            src: Src::Imm(v),
            dst,
            class: RegClass::Int,
            size: OperandSize::S64,
        }
    }

    /// Runs `moves` in parallel and through the resolver on a machine whose every location
    /// starts with a distinct value; both must agree on every location but the scratch.
    fn check(moves: &[Move]) -> Vec<Move> {
        let mut locs: Vec<Loc> = Vec::new();
        for mv in moves {
            if let Src::Loc(l) = mv.src {
                locs.push(l);
            }
            locs.push(mv.dst);
        }
        let initial: HashMap<Loc, i64> = locs
            .iter()
            .enumerate()
            .map(|(i, &l)| (l, 1000 + i as i64))
            .collect();
        let read = |state: &HashMap<Loc, i64>, s: Src| match s {
            Src::Imm(v) => v,
            Src::Loc(l) => state[&l],
        };
        let mut expected = initial.clone();
        for mv in moves {
            expected.insert(mv.dst, read(&initial, mv.src));
        }
        let mut state = initial.clone();
        state.insert(Loc::Reg(SCRATCH_INT), -1);
        state.insert(Loc::Reg(SCRATCH_FLOAT), -1);
        let mut steps = Vec::new();
        let mut pending = moves.to_vec();
        resolve(&mut pending, scratch, |mv| {
            let v = read(&state, mv.src);
            state.insert(mv.dst, v);
            steps.push(mv);
        });
        for (l, v) in &expected {
            assert_eq!(state[l], *v, "location {l:?} after {steps:?}");
        }
        steps
    }

    impl std::hash::Hash for Loc {
        fn hash<H: std::hash::Hasher>(&self, h: &mut H) {
            format!("{self:?}").hash(h)
        }
    }

    #[test]
    fn independent_moves_are_emitted_as_they_are() {
        let steps = check(&[mv(r(1), r(2)), mv(m(8), r(3)), imm(7, m(16))]);
        assert_eq!(steps.len(), 3);
    }

    #[test]
    fn a_chain_writes_each_destination_after_it_is_read() {
        // r1 <- r2 <- r3 <- m8: no scratch needed.
        let steps = check(&[mv(r(2), r(1)), mv(r(3), r(2)), mv(m(8), r(3))]);
        assert_eq!(steps.len(), 3);
        assert!(steps.iter().all(|s| s.dst != Loc::Reg(SCRATCH_INT)));
    }

    #[test]
    fn a_swap_goes_through_the_scratch_register() {
        let steps = check(&[mv(r(1), r(2)), mv(r(2), r(1))]);
        assert_eq!(steps.len(), 3);
        let steps = check(&[mv(f(1), f(2)), mv(f(2), f(1))]);
        assert!(steps.iter().any(|s| s.dst == Loc::Reg(SCRATCH_FLOAT)));
    }

    #[test]
    fn cycles_through_memory_and_several_cycles() {
        check(&[mv(r(1), m(8)), mv(m(8), r(1))]);
        check(&[
            mv(r(1), r(2)),
            mv(r(2), r(3)),
            mv(r(3), r(1)),
            mv(r(4), r(5)),
            mv(r(5), r(4)),
            mv(r(1), m(24)),
            imm(3, r(6)),
        ]);
    }

    #[test]
    fn a_source_read_by_several_moves_and_a_cycle_with_a_tail() {
        // r1 is read twice and written once; r2 <-> r3 swap with a tail into memory.
        check(&[
            mv(r(1), r(2)),
            mv(r(1), m(8)),
            mv(r(2), r(3)),
            mv(r(3), r(1)),
            mv(r(3), m(16)),
        ]);
    }

    #[test]
    fn self_moves_are_dropped() {
        let steps = check(&[mv(r(1), r(1)), mv(m(8), m(8))]);
        assert!(steps.is_empty());
    }

    #[test]
    fn self_moves_among_moves_that_need_ordering_are_dropped() {
        // The swap needs ordering; the self-moves must not be emitted.
        let steps = check(&[
            mv(r(1), r(1)),
            mv(r(2), r(3)),
            mv(r(3), r(2)),
            mv(m(8), m(8)),
        ]);
        assert_eq!(steps.len(), 3);
        assert!(steps.iter().all(|s| s.src != Src::Loc(s.dst)));
        // Only self-moves and independent moves left once they are dropped: in order.
        let moves = [mv(r(1), r(1)), mv(r(2), r(3)), imm(5, m(8))];
        let steps = check(&moves);
        assert_eq!(steps, moves[1..].to_vec());
    }

    #[test]
    fn memory_offsets_sharing_a_bit_are_told_apart() {
        // 8 and 8 + 64 * 8 fall on the same bit of the quick test: independent moves
        // stay in order.
        let moves = [mv(m(8), r(1)), mv(r(2), m(8 + 64 * 8)), mv(m(-8), r(3))];
        assert_eq!(check(&moves), moves.to_vec());
        // A real memory conflict is still ordered: m8 is read before it is written.
        let steps = check(&[mv(r(2), m(8)), mv(m(8), r(1))]);
        assert_eq!(steps[0].dst, r(1));
    }

    #[test]
    fn random_permutations_agree_with_parallel_semantics() {
        // A small deterministic generator: every permutation-with-copies of 6 locations.
        let locs = [r(1), r(2), r(3), m(8), m(16), f(1)];
        let mut seed = 0x2545_f491_u64;
        for _ in 0..2000 {
            let mut moves = Vec::new();
            let mut used = Vec::new();
            for &dst in &locs[..5] {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                if seed % 3 == 0 || used.contains(&dst) {
                    continue;
                }
                used.push(dst);
                let src = locs[(seed >> 8) as usize % 5];
                moves.push(if seed % 7 == 0 {
                    imm(seed as i64 & 0xff, dst)
                } else {
                    mv(src, dst)
                });
            }
            check(&moves);
        }
    }
}
