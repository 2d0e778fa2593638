//! Which locals each loop uses, for choosing the locals a loop header keeps in registers.
//!
//! The one code-generating pass cannot know at a loop header which locals the loop will
//! touch, so a header would keep whatever happens to be in registers (often locals of the
//! enclosing code) and the loop would evict and reload its own locals on every iteration.
//! When the compiler meets an outermost `loop` it scans that loop's body once (decoding
//! only; V8's Liftoff scans every loop), counting for it and every loop nested in it the
//! accesses to each local inside. Code outside loops is never scanned twice.

use wasmparser::{BinaryReader, FrameKind, FrameStack, VisitOperator, VisitSimdOperator};

/// The locals a loop accesses, with the number of accesses (`local.get/set/tee`) inside
/// it, in order of first access.
pub(super) type LoopLocals = Vec<(u32, u32)>;

/// Per open-loop nesting depth: for each local, the id (+1) of the loop at that depth that
/// has recorded it, and where. Kept across scans of one body (ids never repeat in it).
#[derive(Default)]
pub(super) struct DepthMarks {
    /// Per local: (tag of the loop that recorded it, its position there), side by side
    /// so one access touches one cache line.
    marks: Vec<(u32, u32)>,
}

/// Scans the operators after a `loop` operator (`reader` starts just after it) up to its
/// `end` and leaves in `out[..n]` the locals of that loop and of every loop nested in it, in
/// the order the loops start; returns `n`, how many loops that is (entries after them are
/// left over from earlier scans, for their capacity). `num_locals` bounds the local
/// indices (an out-of-range index or a decoding error ends the scan: validation reports it
/// later). `first_id` must exceed every loop id of earlier scans that used `marks`, and
/// stay below `u32::MAX` minus the number of loops scanned.
///
/// The scan drives wasmparser's decoder with a visitor that only looks at control and
/// local operators, so no `Operator` value is built for the rest.
pub(super) fn scan_loops(
    mut reader: BinaryReader<'_>,
    num_locals: usize,
    marks: &mut Vec<DepthMarks>,
    first_id: usize,
    out: &mut Vec<LoopLocals>,
) -> usize {
    let mut scan = Scan {
        loops: out,
        used: 0,
        control: Vec::new(),
        open_loops: Vec::new(),
        marks,
        num_locals,
        first_id,
        done: false,
    };
    scan.enter_loop();
    let base = reader.original_position();
    let data = reader
        .read_bytes(reader.bytes_remaining())
        .unwrap_or_default();
    let mut pos = 0;
    while !scan.done && pos < data.len() {
        let skipped = match scan.fast_path(data, &mut pos) {
            Some(skipped) => skipped,
            None => {
                // The decoder takes the operator at `pos` (`pos` was not moved on).
                let mut r = BinaryReader::new(&data[pos..], base + pos as u64);
                let ok = r.visit_operator(&mut scan).is_ok();
                pos = (r.original_position() - base) as usize;
                ok
            }
        };
        if !skipped {
            break;
        }
    }
    scan.used
}

/// The scan's state: a visitor of wasmparser's decoder.
struct Scan<'m> {
    /// The loops' locals; entries from `used` on are left over from earlier scans (kept
    /// for their capacity).
    loops: &'m mut Vec<LoopLocals>,
    used: usize,
    /// The open frames: their kind (for the decoder's `else` checks) and loop id, if a loop.
    control: Vec<(FrameKind, Option<usize>)>,
    open_loops: Vec<usize>,
    marks: &'m mut Vec<DepthMarks>,
    num_locals: usize,
    first_id: usize,
    /// The loop the scan began at has ended (or the scan hit something it cannot count).
    done: bool,
}

impl Scan<'_> {
    fn enter_loop(&mut self) {
        let id = self.used;
        self.used += 1;
        match self.loops.get_mut(id) {
            Some(entries) => entries.clear(),
            None => self.loops.push(Vec::new()),
        }
        self.control.push((FrameKind::Loop, Some(id)));
        self.open_loops.push(id);
        let depth = self.open_loops.len() - 1;
        if self.marks.len() <= depth {
            self.marks.push(DepthMarks::default());
        }
        let m = &mut self.marks[depth];
        if m.marks.len() < self.num_locals {
            // New entries hold tag 0, which no loop's tag equals.
            m.marks.resize(self.num_locals, (0, 0));
        }
    }

    fn enter(&mut self, kind: FrameKind) {
        self.control.push((kind, None));
    }

    fn else_(&mut self) {
        if let Some(top) = self.control.last_mut() {
            top.0 = FrameKind::Else;
        }
    }

    fn end(&mut self) {
        match self.control.pop() {
            Some((_, Some(id))) => {
                self.open_loops.pop();
                // The enclosing loop contains this one's accesses (in the same order of
                // first access as if they had been counted there directly).
                if let Some(&parent) = self.open_loops.last() {
                    let depth = self.open_loops.len() - 1;
                    for i in 0..self.loops[id].len() {
                        let (l, n) = self.loops[id][i];
                        self.count(depth, parent, l, n);
                    }
                }
                // The end of the loop the scan began at.
                self.done |= self.control.is_empty();
            }
            Some((_, None)) => {}
            None => self.done = true,
        }
    }

    /// Reads the operator at `data[*pos]` directly when it is one of the common ones (a
    /// byte test and at most a few LEB128 immediates instead of wasmparser's full decoder):
    /// `Some(decoded)` if it was (`*pos` moved past it), `None` (`*pos` unchanged) if the
    /// decoder must handle it. Only local indices are decoded; other immediates are
    /// skipped by their continuation bits (a malformed body is rejected by validation in
    /// the compiling pass; the scan only steers register choices).
    fn fast_path(&mut self, data: &[u8], pos: &mut usize) -> Option<bool> {
        let start = *pos;
        let Some(&opcode) = data.get(start) else {
            return Some(false);
        };
        let mut at = start + 1;
        let ok = match opcode {
            // block, loop, if: a block type
            0x02..=0x04 => {
                // One-byte block types only: empty, a number or basic reference type, or
                // a small type index (the decoder handles the rest).
                match data.get(at) {
                    Some(0x40 | 0x6F | 0x70 | 0x7B..=0x7F | 0x00..=0x3F) => at += 1,
                    _ => return None,
                }
                match opcode {
                    0x02 => self.enter(FrameKind::Block),
                    0x03 => self.enter_loop(),
                    _ => self.enter(FrameKind::If),
                }
                true
            }
            0x05 => {
                self.else_();
                true
            }
            0x0B => {
                self.end();
                true
            }
            0x20..=0x22 => match read_u32(data, &mut at) {
                Some(l) => {
                    self.local(l);
                    true
                }
                None => false,
            },
            // No immediates: unreachable, nop, return, drop, select, and every numeric
            // operator of the MVP and sign-extension.
            0x00 | 0x01 | 0x0F | 0x1A | 0x1B | 0x45..=0xC4 => true,
            // One LEB128 immediate: br, br_if, call, global.*, table.get/set,
            // memory.size/grow, i32.const, i64.const.
            0x0C | 0x0D | 0x10 | 0x23..=0x26 | 0x3F | 0x40 | 0x41 | 0x42 => skip_leb(data, &mut at),
            0x11 => skip_leb(data, &mut at) && skip_leb(data, &mut at),
            0x43 => skip_bytes(data, &mut at, 4),
            0x44 => skip_bytes(data, &mut at, 8),
            // Loads and stores: alignment flags, [memory index], offset.
            0x28..=0x3E => match read_u32(data, &mut at) {
                Some(flags) => {
                    (flags & 0x40 == 0 || skip_leb(data, &mut at)) && skip_leb(data, &mut at)
                }
                None => false,
            },
            _ => return None,
        };
        *pos = at;
        Some(ok)
    }

    /// Counts an access to `local_index` in the innermost open loop (the loops around it
    /// get the loop's counts when it ends).
    fn local(&mut self, local_index: u32) {
        if local_index as usize >= self.num_locals {
            self.done = true;
            return;
        }
        if let Some(&id) = self.open_loops.last() {
            self.count(self.open_loops.len() - 1, id, local_index, 1);
        }
    }

    /// Adds `n` accesses to `local_index` to loop `id`, open at nesting depth `depth`.
    fn count(&mut self, depth: usize, id: usize, local_index: u32, n: u32) {
        let l = local_index as usize;
        let m = &mut self.marks[depth];
        let tag = (self.first_id + id) as u32 + 1;
        let entries = &mut self.loops[id];
        let mark = &mut m.marks[l];
        if mark.0 != tag {
            *mark = (tag, entries.len() as u32);
            entries.push((local_index, 0));
        }
        entries[mark.1 as usize].1 += n;
    }
}

/// Decodes an unsigned LEB128 `u32` at `data[*at]` and moves past it (`None` if it is
/// cut off or longer than five bytes).
#[inline]
fn read_u32(data: &[u8], at: &mut usize) -> Option<u32> {
    let mut value = 0u32;
    for shift in (0..35).step_by(7) {
        let byte = *data.get(*at)?;
        *at += 1;
        value |= u32::from(byte & 0x7F).wrapping_shl(shift);
        if byte & 0x80 == 0 {
            return Some(value);
        }
    }
    None
}

/// Moves past one LEB128 number (of any of wasm's integer types: at most ten bytes).
#[inline]
fn skip_leb(data: &[u8], at: &mut usize) -> bool {
    for _ in 0..10 {
        let Some(&byte) = data.get(*at) else {
            return false;
        };
        *at += 1;
        if byte & 0x80 == 0 {
            return true;
        }
    }
    false
}

/// Moves past `n` bytes.
#[inline]
fn skip_bytes(data: &[u8], at: &mut usize, n: usize) -> bool {
    *at += n;
    *at <= data.len()
}

impl FrameStack for Scan<'_> {
    fn current_frame(&self) -> Option<FrameKind> {
        // Never `None` while scanning: the decoder would take it for the body's end.
        Some(self.control.last().map_or(FrameKind::Block, |f| f.0))
    }
}

/// What the scan does for one operator: control structure and local accesses; nothing for
/// the rest.
macro_rules! scan_operator {
    ($s:ident Loop $($_:tt)*) => {
        $s.enter_loop()
    };
    ($s:ident Block $($_:tt)*) => {
        $s.enter(FrameKind::Block)
    };
    ($s:ident If $($_:tt)*) => {
        $s.enter(FrameKind::If)
    };
    ($s:ident TryTable $($_:tt)*) => {
        $s.enter(FrameKind::TryTable)
    };
    ($s:ident Try $($_:tt)*) => {
        $s.enter(FrameKind::LegacyTry)
    };
    ($s:ident Else) => {
        $s.else_()
    };
    ($s:ident Delegate $($_:tt)*) => {
        $s.end()
    };
    ($s:ident End) => {
        $s.end()
    };
    ($s:ident LocalGet $l:ident) => {
        $s.local($l)
    };
    ($s:ident LocalSet $l:ident) => {
        $s.local($l)
    };
    ($s:ident LocalTee $l:ident) => {
        $s.local($l)
    };
    ($s:ident $($_:tt)*) => {
        ()
    };
}

macro_rules! define_scan_visit {
    ($( @$proposal:ident $op:ident $({ $($arg:ident: $argty:ty),* })? => $visit:ident ($($ann:tt)*))*) => {
        $(
            #[inline]
            #[allow(unused_variables)]
            fn $visit(&mut self $($(,$arg: $argty)*)?) {
                scan_operator!(self $op $($($arg)*)?)
            }
        )*
    };
}

impl<'a> VisitOperator<'a> for Scan<'_> {
    type Output = ();
    fn simd_visitor(&mut self) -> Option<&mut dyn VisitSimdOperator<'a, Output = ()>> {
        Some(self)
    }
    wasmparser::for_each_visit_operator!(define_scan_visit);
}

/// SIMD operators touch no local and no control structure: decoded and passed over.
impl<'a> VisitSimdOperator<'a> for Scan<'_> {
    wasmparser::for_each_visit_simd_operator!(define_scan_visit);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn loops_of(wat_body: &str, num_locals: usize) -> Vec<LoopLocals> {
        let wat = format!("(module (func (param i32 i32 i32 i32) {wat_body}))");
        let wasm = wat::parse_str(&wat).unwrap();
        for payload in wasmparser::Parser::new(0).parse_all(&wasm) {
            if let wasmparser::Payload::CodeSectionEntry(body) = payload.unwrap() {
                let mut ops = body.get_operators_reader().unwrap();
                // Start after the first loop, as the compiler does.
                loop {
                    let op = ops.read().unwrap();
                    if matches!(op, wasmparser::Operator::Loop { .. }) {
                        let after = ops.get_binary_reader();
                        let mut loops = Vec::new();
                        let n = scan_loops(after, num_locals, &mut Vec::new(), 0, &mut loops);
                        loops.truncate(n);
                        return loops;
                    }
                }
            }
        }
        unreachable!()
    }

    #[test]
    fn nested_loops_count_their_own_and_inner_accesses_up_to_the_loop_end() {
        let loops = loops_of(
            "local.get 3 drop
             (loop (local.set 0 (local.get 1))
               (loop (local.set 2 (i32.add (local.get 2) (local.get 0)))
                 (br_if 0 (local.get 2)))
               (br_if 0 (local.get 0)))
             (loop (drop (local.get 3)))",
            4,
        );
        // The scan ends with the first loop: the last loop is scanned when it is reached.
        assert_eq!(loops.len(), 2);
        assert_eq!(loops[0], vec![(1, 1), (0, 3), (2, 3)]);
        assert_eq!(loops[1], vec![(2, 3), (0, 1)]);
    }

    #[test]
    fn blocks_and_ifs_inside_loops_are_transparent() {
        let loops = loops_of(
            "(loop (block (if (local.get 0) (then (local.set 1 (i32.const 1))))))",
            4,
        );
        assert_eq!(loops, vec![vec![(0, 1), (1, 1)]]);
    }

    #[test]
    fn leb128_immediates_are_read_and_skipped_to_their_end() {
        let data = [0xE5, 0x8E, 0x26, 0x7F, 0x80, 0x80, 0x80, 0x80, 0x80];
        let mut at = 0;
        assert_eq!(read_u32(&data, &mut at), Some(624_485));
        assert_eq!(at, 3);
        assert_eq!(read_u32(&data, &mut at), Some(127));
        assert_eq!(at, 4);
        // Cut off, and too long for a u32.
        assert_eq!(read_u32(&data, &mut at), None);
        let mut at = 0;
        assert!(skip_leb(&data, &mut at) && at == 3);
        assert!(skip_leb(&data, &mut at) && at == 4);
        assert!(!skip_leb(&data, &mut at));
        let mut at = 2;
        assert!(skip_bytes(&data, &mut at, 7) && at == 9);
        assert!(!skip_bytes(&data, &mut at, 1));
    }

    #[test]
    fn an_out_of_range_local_stops_the_scan() {
        let loops = loops_of("(loop (drop (local.get 1)))", 1);
        assert_eq!(loops, vec![vec![]]);
    }
}
