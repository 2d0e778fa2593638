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
/// has recorded it, and where; and the loop open at that depth. Kept across scans (of
/// every body: ids never repeat), so scans allocate nothing once these have grown.
#[derive(Default)]
pub(super) struct DepthMarks {
    /// Per local: (tag of the loop that recorded it, its position there), side by side
    /// so one access touches one cache line.
    marks: Vec<(u32, u32)>,
    /// The id of the loop open at this depth.
    loop_id: usize,
    /// The frames open inside that loop, innermost last (not loops: a loop in it is at
    /// the next depth), for the decoder's `else`/`catch` checks and to match each `end`.
    frames: Vec<FrameKind>,
}

/// Scans the operators after a `loop` operator (`reader` starts just after it) up to its
/// `end` and leaves in `out[..n]` the locals of that loop and of every loop nested in it, in
/// the order the loops start; returns `n`, how many loops that is (entries after them are
/// left over from earlier scans, for their capacity). `num_locals` bounds the local
/// indices (an out-of-range index or a decoding error ends the scan: validation reports it
/// later). `first_id` must exceed every loop id of earlier scans that used `marks`, and
/// stay below `u32::MAX` minus the number of loops scanned.
///
/// Common operators are read directly from the bytes (`Shape`); the rest go through
/// wasmparser's decoder with a visitor that only looks at control and local operators, so
/// no `Operator` value is built for them either.
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
        marks,
        num_locals,
        first_id,
        depth: 0,
        tag: 0,
        innermost: DepthMarks::default(),
        entries: Vec::new(),
        open: false,
        done: false,
    };
    scan.enter_loop();
    let base = reader.original_position();
    let data = reader
        .read_bytes(reader.bytes_remaining())
        .unwrap_or_default();
    let mut pos = 0;
    // Each arm leaves `pos` after the operator, or breaks (the scan is over: the loop
    // ended, or the bytes are cut off or malformed).
    while let Some(&opcode) = data.get(pos) {
        let start = pos;
        pos += 1;
        // One jump, through a table indexed by shape, to the code for each shape (no
        // guards or shared arms, which would make the compiler add compare chains).
        let read = match SHAPES[opcode as usize] {
            Shape::None => true,
            Shape::Local => {
                // Local indices are nearly always below 128: one byte.
                let l = match data.get(pos) {
                    Some(&b) if b < 0x80 => {
                        pos += 1;
                        u32::from(b)
                    }
                    _ => match read_u32(data, &mut pos) {
                        Some(l) => l,
                        None => break,
                    },
                };
                if !scan.local(l) {
                    break;
                }
                true
            }
            // A block type of one byte, as nearly all are (else the decoder reads it).
            Shape::Block => {
                let one_byte = one_byte_block_type(data, &mut pos);
                if one_byte {
                    scan.innermost.frames.push(FrameKind::Block);
                }
                one_byte
            }
            Shape::Loop => {
                let one_byte = one_byte_block_type(data, &mut pos);
                if one_byte {
                    scan.enter_loop();
                }
                one_byte
            }
            Shape::If => {
                let one_byte = one_byte_block_type(data, &mut pos);
                if one_byte {
                    scan.innermost.frames.push(FrameKind::If);
                }
                one_byte
            }
            Shape::Else => {
                scan.else_();
                true
            }
            Shape::End => {
                if !scan.end() {
                    break;
                }
                true
            }
            Shape::Leb => skip_immediates(Shape::Leb, data, &mut pos),
            Shape::Leb2 => skip_immediates(Shape::Leb2, data, &mut pos),
            Shape::MemArg => skip_immediates(Shape::MemArg, data, &mut pos),
            Shape::Bytes4 => skip_immediates(Shape::Bytes4, data, &mut pos),
            Shape::Bytes8 => skip_immediates(Shape::Bytes8, data, &mut pos),
            Shape::BrTable => skip_immediates(Shape::BrTable, data, &mut pos),
            Shape::PrefixFC => skip_immediates(Shape::PrefixFC, data, &mut pos),
            Shape::Decode => false,
        };
        if !read {
            // Cut off, or an operator the decoder must read.
            pos = start;
            if !scan.decode(data, base, &mut pos) {
                break;
            }
        }
    }
    if scan.open {
        scan.put_back();
    }
    scan.used
}

/// Moves past a block type if it is one byte: empty, a number or basic reference type, or
/// a small type index.
#[inline(always)]
fn one_byte_block_type(data: &[u8], pos: &mut usize) -> bool {
    let one_byte = matches!(
        data.get(*pos),
        Some(0x40 | 0x6F | 0x70 | 0x7B..=0x7F | 0x00..=0x3F)
    );
    *pos += one_byte as usize;
    one_byte
}

/// How an operator's immediates are laid out, for the operators the scan reads itself.
#[derive(Clone, Copy)]
enum Shape {
    /// No immediates.
    None,
    /// `local.get`, `local.set`, `local.tee`: a local index.
    Local,
    /// One LEB128 number.
    Leb,
    /// Two LEB128 numbers.
    Leb2,
    /// A load's or store's memory argument.
    MemArg,
    /// Four bytes (`f32.const`).
    Bytes4,
    /// Eight bytes (`f64.const`).
    Bytes8,
    Block,
    Loop,
    If,
    Else,
    End,
    BrTable,
    /// 0xFC and a sub-opcode (see `FC_IMMEDIATES`).
    PrefixFC,
    /// Anything else: wasmparser's decoder reads it.
    Decode,
}

/// Moves `*pos` from just after an opcode byte past the operator's immediates, for the
/// shapes that have nothing to count: `false` if they are cut off or (0xFC) the decoder
/// must read them. Only their lengths are found: a malformed body is rejected by
/// validation in the compiling pass (the scan only steers register choices).
#[inline(always)]
fn skip_immediates(shape: Shape, data: &[u8], pos: &mut usize) -> bool {
    match shape {
        Shape::Leb => skip_leb(data, pos),
        Shape::Leb2 => skip_leb(data, pos) && skip_leb(data, pos),
        // Alignment flags, [memory index if bit 6], offset. The flags are nearly always
        // one byte without a memory index.
        Shape::MemArg => match data.get(*pos) {
            Some(&flags) if flags < 0x40 => {
                *pos += 1;
                skip_leb(data, pos)
            }
            _ => match read_u32(data, pos) {
                Some(flags) => (flags & 0x40 == 0 || skip_leb(data, pos)) && skip_leb(data, pos),
                None => false,
            },
        },
        Shape::Bytes4 => skip_bytes(data, pos, 4),
        Shape::Bytes8 => skip_bytes(data, pos, 8),
        // The number of targets, the targets, the default target.
        Shape::BrTable => match read_u32(data, pos) {
            Some(n) => (0..=n).all(|_| skip_leb(data, pos)),
            None => false,
        },
        Shape::PrefixFC => match data
            .get(*pos)
            .and_then(|&sub| FC_IMMEDIATES.get(sub as usize))
        {
            Some(&n) => {
                *pos += 1;
                (0..n).all(|_| skip_leb(data, pos))
            }
            None => false,
        },
        _ => false,
    }
}

/// The shape of each opcode byte's operator.
static SHAPES: [Shape; 256] = {
    let mut t = [Shape::Decode; 256];
    // unreachable, nop, return, drop, select, and every numeric operator of the MVP and
    // sign-extension.
    t[0x00] = Shape::None;
    t[0x01] = Shape::None;
    t[0x0F] = Shape::None;
    t[0x1A] = Shape::None;
    t[0x1B] = Shape::None;
    let mut op = 0x45;
    while op <= 0xC4 {
        t[op] = Shape::None;
        op += 1;
    }
    t[0x02] = Shape::Block;
    t[0x03] = Shape::Loop;
    t[0x04] = Shape::If;
    t[0x05] = Shape::Else;
    t[0x0B] = Shape::End;
    t[0x0E] = Shape::BrTable;
    // br, br_if, call, global.get/set, table.get/set, memory.size/grow, i32/i64.const.
    let ops = [
        0x0C, 0x0D, 0x10, 0x23, 0x24, 0x25, 0x26, 0x3F, 0x40, 0x41, 0x42,
    ];
    let mut i = 0;
    while i < ops.len() {
        t[ops[i]] = Shape::Leb;
        i += 1;
    }
    // call_indirect: type and table.
    t[0x11] = Shape::Leb2;
    t[0x20] = Shape::Local;
    t[0x21] = Shape::Local;
    t[0x22] = Shape::Local;
    let mut op = 0x28;
    while op <= 0x3E {
        t[op] = Shape::MemArg;
        op += 1;
    }
    t[0x43] = Shape::Bytes4;
    t[0x44] = Shape::Bytes8;
    t[0xFC] = Shape::PrefixFC;
    t
};

/// The number of LEB128 immediates of each 0xFC operator with a one-byte sub-opcode up to
/// `table.fill`: saturating truncations; memory.init, data.drop, memory.copy/fill;
/// table.init, elem.drop, table.copy/grow/size/fill. Others are decoded.
const FC_IMMEDIATES: [usize; 18] = [0, 0, 0, 0, 0, 0, 0, 0, 2, 1, 2, 1, 2, 1, 2, 1, 1, 1];

/// The scan's state: a visitor of wasmparser's decoder.
struct Scan<'m> {
    /// The loops' locals; entries from `used` on are left over from earlier scans (kept
    /// for their capacity). The innermost open loop's are in `entries` meanwhile.
    loops: &'m mut Vec<LoopLocals>,
    used: usize,
    /// Per nesting depth; the innermost open loop's depth's are in `innermost` meanwhile.
    marks: &'m mut Vec<DepthMarks>,
    num_locals: usize,
    first_id: usize,
    /// The innermost open loop: its nesting depth, tag, marks (exactly `num_locals` of
    /// them, so one bounds check also checks the index) and entries, taken out of `marks`
    /// and `loops` while it is innermost so an access indexes nothing else.
    depth: usize,
    tag: u32,
    innermost: DepthMarks,
    entries: LoopLocals,
    /// `innermost` and `entries` hold a loop's (they go back when the scan ends).
    open: bool,
    /// The loop the scan began at has ended (or the scan hit something it cannot count).
    done: bool,
}

impl Scan<'_> {
    fn enter_loop(&mut self) {
        let depth = if self.open {
            self.put_back();
            self.depth + 1
        } else {
            0
        };
        let id = self.used;
        self.used += 1;
        match self.loops.get_mut(id) {
            Some(entries) => entries.clear(),
            None => self.loops.push(Vec::new()),
        }
        if self.marks.len() <= depth {
            self.marks.push(DepthMarks::default());
        }
        self.marks[depth].loop_id = id;
        self.take_out(depth);
        self.innermost.frames.clear();
        // New entries hold tag 0, which no loop's tag equals; dropped ones keep their
        // capacity.
        self.innermost.marks.resize(self.num_locals, (0, 0));
    }

    /// Makes the loop open at nesting depth `depth` the innermost one.
    fn take_out(&mut self, depth: usize) {
        self.depth = depth;
        self.innermost = std::mem::take(&mut self.marks[depth]);
        let id = self.innermost.loop_id;
        self.tag = (self.first_id + id) as u32 + 1;
        self.entries = std::mem::take(&mut self.loops[id]);
        self.open = true;
    }

    /// Returns the innermost loop's marks and entries to `marks` and `loops`.
    fn put_back(&mut self) {
        self.loops[self.innermost.loop_id] = std::mem::take(&mut self.entries);
        self.marks[self.depth] = std::mem::take(&mut self.innermost);
        self.open = false;
    }

    fn else_(&mut self) {
        if let Some(top) = self.innermost.frames.last_mut() {
            *top = FrameKind::Else;
        }
    }

    /// Closes the innermost frame; `false` once the scan is over.
    #[inline]
    fn end(&mut self) -> bool {
        self.innermost.frames.pop().is_some() || self.end_loop()
    }

    /// Closes the innermost loop; `false` if it was the one the scan began at.
    fn end_loop(&mut self) -> bool {
        let id = self.innermost.loop_id;
        self.put_back();
        if self.depth == 0 {
            self.done = true;
            return false;
        }
        self.take_out(self.depth - 1);
        // The enclosing loop contains this one's accesses (in the same order of first
        // access as if they had been counted there directly).
        for &(l, n) in &self.loops[id] {
            count(&mut self.innermost.marks, &mut self.entries, self.tag, l, n);
        }
        true
    }

    /// Counts an access to `local_index` in the innermost open loop (the loops around it
    /// get the loop's counts when it ends); `false` (the scan is over) if it is out of
    /// range.
    #[inline(always)]
    fn local(&mut self, local_index: u32) -> bool {
        let in_range = (local_index as usize) < self.innermost.marks.len();
        if in_range {
            count(
                &mut self.innermost.marks,
                &mut self.entries,
                self.tag,
                local_index,
                1,
            );
        } else {
            self.done = true;
        }
        in_range
    }

    /// Has wasmparser's decoder take the operator at `data[*pos]` and moves past it;
    /// `false` if the scan is over.
    #[cold]
    #[inline(never)]
    fn decode(&mut self, data: &[u8], base: u64, pos: &mut usize) -> bool {
        let mut r = BinaryReader::new(&data[*pos..], base + *pos as u64);
        let ok = r.visit_operator(self).is_ok();
        *pos = (r.original_position() - base) as usize;
        ok && !self.done
    }
}

/// Adds `n` accesses to `local_index` to a loop's `entries`, with `marks` those of its
/// depth and `tag` its tag.
#[inline(always)]
fn count(marks: &mut [(u32, u32)], entries: &mut LoopLocals, tag: u32, local_index: u32, n: u32) {
    let mark = &mut marks[local_index as usize];
    if mark.0 == tag {
        entries[mark.1 as usize].1 += n;
    } else {
        *mark = (tag, entries.len() as u32);
        entries.push((local_index, n));
    }
}

/// Moves past `n` bytes.
#[inline]
fn skip_bytes(data: &[u8], at: &mut usize, n: usize) -> bool {
    *at += n;
    *at <= data.len()
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
#[inline(always)]
fn skip_leb(data: &[u8], at: &mut usize) -> bool {
    match data.get(*at) {
        Some(&byte) if byte < 0x80 => {
            *at += 1;
            true
        }
        _ => skip_long_leb(data, at),
    }
}

/// `skip_leb` for a number of more than one byte (or cut off).
#[inline]
fn skip_long_leb(data: &[u8], at: &mut usize) -> bool {
    // Eight bytes at once: the first without a continuation bit is the last.
    if let Some(bytes) = data.get(*at..).and_then(|rest| rest.first_chunk::<8>()) {
        let last = !u64::from_le_bytes(*bytes) & 0x8080_8080_8080_8080;
        if last != 0 {
            *at += last.trailing_zeros() as usize / 8 + 1;
            return true;
        }
    }
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

impl FrameStack for Scan<'_> {
    fn current_frame(&self) -> Option<FrameKind> {
        // Never `None` while scanning: the decoder would take it for the body's end.
        Some(
            self.innermost
                .frames
                .last()
                .copied()
                .unwrap_or(FrameKind::Loop),
        )
    }
}

/// What the scan does for one operator: control structure and local accesses; nothing for
/// the rest.
macro_rules! scan_operator {
    ($s:ident Loop $($_:tt)*) => {
        $s.enter_loop()
    };
    ($s:ident Block $($_:tt)*) => {
        $s.innermost.frames.push(FrameKind::Block)
    };
    ($s:ident If $($_:tt)*) => {
        $s.innermost.frames.push(FrameKind::If)
    };
    ($s:ident TryTable $($_:tt)*) => {
        $s.innermost.frames.push(FrameKind::TryTable)
    };
    ($s:ident Try $($_:tt)*) => {
        $s.innermost.frames.push(FrameKind::LegacyTry)
    };
    ($s:ident Else) => {
        $s.else_()
    };
    ($s:ident Delegate $($_:tt)*) => {{
        $s.end();
    }};
    ($s:ident End) => {{
        $s.end();
    }};
    ($s:ident LocalGet $l:ident) => {{
        $s.local($l);
    }};
    ($s:ident LocalSet $l:ident) => {{
        $s.local($l);
    }};
    ($s:ident LocalTee $l:ident) => {{
        $s.local($l);
    }};
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
    fn leb128_numbers_of_every_length_are_skipped_whole() {
        for len in 1..=11 {
            // Followed by other bytes (read eight at a time) or at the end of the data.
            for tail in [
                &[0x01u8, 0x85, 0x86, 0x87, 0x88, 0x89, 0x8A, 0x8B, 0x8C][..],
                &[],
            ] {
                let mut data = vec![0xFF; len - 1];
                data.push(0x7F);
                data.extend_from_slice(tail);
                let mut at = 0;
                assert_eq!(skip_leb(&data, &mut at), len <= 10, "{len} {tail:?}");
                if len <= 10 {
                    assert_eq!(at, len);
                }
                // Cut off.
                let mut at = 0;
                assert!(!skip_leb(&data[..len - 1], &mut at));
            }
        }
    }

    /// A module whose function holds every kind of operator immediate (several of them
    /// with multi-byte LEB128s), each followed by a local access, in nested loops.
    fn every_shape_module() -> Vec<u8> {
        let ops = [
            "unreachable",
            "nop",
            "block",
            "end",
            "block (result i32)",
            "end",
            "block (type $t)",
            "end",
            "block (type $big)",
            "end",
            "loop (type $big)",
            "end",
            "loop (result v128)",
            "end",
            "if",
            "else",
            "end",
            "if (result f64)",
            "end",
            "br 0",
            "br_if 1",
            "br_table 0 1 0",
            "br_table 0",
            "br_table 1 0 1 0 1 0 1 0",
            "return",
            "call $f",
            "call_indirect (type $t)",
            "call_indirect $tab2 (type $t)",
            "return_call $f",
            "return_call_indirect (type $t)",
            "call_ref $t",
            "return_call_ref $t",
            "drop",
            "select",
            "select (result i32)",
            "select (result funcref)",
            "select (result (ref null $s))",
            "local.tee 200",
            "local.set 127",
            "local.get 128",
            "global.get $g",
            "global.set $g",
            "table.get $tab",
            "table.set $tab2",
            "i32.load",
            "i64.load offset=100000 align=4",
            "i32.load $m1 offset=7",
            "i32.store8 offset=128",
            "f64.store $m1 offset=4294967295",
            "i64.load32_u align=1",
            "memory.size",
            "memory.size $m1",
            "memory.grow",
            "memory.grow $m1",
            "i32.const -1",
            "i32.const 1234567",
            "i32.const -2147483648",
            "i64.const -9223372036854775808",
            "i64.const 0x7fffffffffffffff",
            "i64.const 63",
            "f32.const 1.5",
            "f64.const -2.25",
            "i32.eqz",
            "i32.add",
            "i64.rotr",
            "f32.abs",
            "f64.sqrt",
            "i32.wrap_i64",
            "f64.reinterpret_i64",
            "i32.extend8_s",
            "i64.extend32_s",
            "i32.trunc_sat_f32_s",
            "i64.trunc_sat_f64_u",
            "memory.init $d",
            "memory.init $m1 $d",
            "data.drop $d",
            "memory.copy",
            "memory.copy $m1 $m0",
            "memory.fill",
            "memory.fill $m1",
            "table.init $e",
            "table.init $tab2 $e",
            "elem.drop $e",
            "table.copy",
            "table.copy $tab2 $tab",
            "table.grow $tab",
            "table.size $tab2",
            "table.fill $tab",
            "i64.add128",
            "ref.null func",
            "ref.is_null",
            "ref.func $f",
            "ref.as_non_null",
            "br_on_null 0",
            "struct.new $s",
            "struct.get $s 0",
            "i31.get_s",
            "v128.const i32x4 1 2 3 4",
            "i8x16.shuffle 0 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15",
            "v128.load offset=3",
            "v128.store $m1 offset=300",
            "i32x4.extract_lane 2",
            "v128.load8_lane 1",
            "i32x4.add",
            "i8x16.swizzle",
            "i32.atomic.load",
            "memory.atomic.notify offset=8",
            "atomic.fence",
            "i64.atomic.rmw.add offset=9",
            "try_table (catch $exn 0) (catch_all 1)",
            "end",
            "throw $exn",
            "throw_ref",
            "try",
            "catch $exn",
            "drop",
            "catch_all",
            "end",
            "try",
            "delegate 0",
            "loop",
            "loop (result i32)",
            "end",
            "end",
        ];
        let mut body = String::new();
        for (i, op) in ops.iter().enumerate() {
            body.push_str(&format!("{op}\nlocal.get {}\n", (i * 37) % 206));
            if i % 17 == 0 {
                // Loops nested at several depths, with their own accesses.
                body.push_str(&format!("loop local.get {} local.set 3 end\n", i % 200 + 9));
            }
        }
        let types: String = (0..70)
            .map(|i| format!("(type (func (param {})))", "i32 ".repeat(i + 1)))
            .collect();
        let wat = format!(
            "(module {types}
               (type $t (func (param i32) (result i32)))
               (type $big (func (param i64) (result i64)))
               (type $s (struct (field i32)))
               (memory $m0 1) (memory $m1 1)
               (table $tab 1 funcref) (table $tab2 1 funcref)
               (global $g (mut i32) (i32.const 0))
               (data $d \"x\") (elem $e func $f)
               (tag $exn (param i32))
               (func $f (type $t) (local {locals})
                 local.get 5 block loop local.get 4 loop {body} end end end)
               (func $g2 (local {more}) loop local.get 1 {body} end))",
            locals = "i32 ".repeat(205),
            more = "i64 ".repeat(220),
        );
        wat::parse_str(wat).unwrap()
    }

    fn bodies(wasm: &[u8]) -> Vec<wasmparser::FunctionBody<'_>> {
        wasmparser::Parser::new(0)
            .parse_all(wasm)
            .filter_map(|p| match p.unwrap() {
                wasmparser::Payload::CodeSectionEntry(body) => Some(body),
                _ => None,
            })
            .collect()
    }

    /// Where the scan's own reading puts the end of the operator at `data[start]`, if it
    /// reads that operator itself (`None` if the decoder reads it).
    fn scanned_end(data: &[u8], start: usize) -> Option<usize> {
        let mut pos = start + 1;
        let ok = match SHAPES[data[start] as usize] {
            Shape::None | Shape::Else | Shape::End => true,
            Shape::Local => read_u32(data, &mut pos).is_some(),
            Shape::Block | Shape::Loop | Shape::If => one_byte_block_type(data, &mut pos),
            Shape::Decode => false,
            shape => skip_immediates(shape, data, &mut pos),
        };
        ok.then_some(pos)
    }

    #[test]
    fn operator_boundaries_match_the_decoder() {
        let wasm = every_shape_module();
        let mut shapes_read = std::collections::HashSet::new();
        let mut decoded = 0;
        for body in bodies(&wasm) {
            let mut ops = body.get_operators_reader().unwrap();
            while !ops.eof() {
                let (op, start) = ops.read_with_offset().unwrap();
                let end = ops.original_position() as usize;
                match scanned_end(&wasm, start as usize) {
                    Some(e) => {
                        assert_eq!(e, end, "{op:?} at {start}");
                        shapes_read.insert(SHAPES[wasm[start as usize] as usize] as u8);
                    }
                    None => decoded += 1,
                }
            }
        }
        // Every shape the scan reads itself was met, and some operators were decoded.
        assert_eq!(shapes_read.len(), Shape::Decode as usize, "{shapes_read:?}");
        assert!(decoded > 0);
    }

    /// The locals of the loop starting at each `loop` of each body, counted the simple way:
    /// every decoded access counts for each open loop.
    fn reference_loops(
        body: &wasmparser::FunctionBody<'_>,
        num_locals: u32,
    ) -> Vec<Vec<LoopLocals>> {
        let ops: Vec<_> = body
            .get_operators_reader()
            .unwrap()
            .into_iter()
            .map(|op| op.unwrap())
            .collect();
        let mut all = Vec::new();
        for (first, _) in ops
            .iter()
            .enumerate()
            .filter(|(_, op)| matches!(op, wasmparser::Operator::Loop { .. }))
        {
            let mut loops: Vec<LoopLocals> = vec![Vec::new()];
            // Per open frame: the loop index, if a loop.
            let mut frames = vec![Some(0)];
            for op in &ops[first + 1..] {
                use wasmparser::Operator::*;
                match op {
                    Loop { .. } => {
                        frames.push(Some(loops.len()));
                        loops.push(Vec::new());
                    }
                    Block { .. } | If { .. } | TryTable { .. } | Try { .. } => frames.push(None),
                    End | Delegate { .. } => {
                        frames.pop();
                    }
                    LocalGet { local_index }
                    | LocalSet { local_index }
                    | LocalTee { local_index } => {
                        if *local_index >= num_locals {
                            break;
                        }
                        for &l in frames.iter().flatten() {
                            match loops[l].iter_mut().find(|e| e.0 == *local_index) {
                                Some(e) => e.1 += 1,
                                None => loops[l].push((*local_index, 1)),
                            }
                        }
                    }
                    _ => {}
                }
                if frames.is_empty() {
                    break;
                }
            }
            all.push(loops);
        }
        all
    }

    #[test]
    fn scans_match_a_reference_count() {
        let wasm = every_shape_module();
        let mut marks = Vec::new();
        let mut out = Vec::new();
        let mut first_id = 0;
        for (body, num_locals) in bodies(&wasm).iter().zip([206, 220]) {
            let expected = reference_loops(body, num_locals);
            let mut ops = body.get_operators_reader().unwrap();
            let mut i = 0;
            while !ops.eof() {
                if let wasmparser::Operator::Loop { .. } = ops.read().unwrap() {
                    let n = scan_loops(
                        ops.get_binary_reader(),
                        num_locals as usize,
                        &mut marks,
                        first_id,
                        &mut out,
                    );
                    first_id += n;
                    assert_eq!(out[..n], expected[i][..], "loop {i}");
                    i += 1;
                }
            }
            assert!(i > 10);
        }
    }

    #[test]
    fn an_out_of_range_local_stops_the_scan() {
        let loops = loops_of("(loop (drop (local.get 1)))", 1);
        assert_eq!(loops, vec![vec![]]);
    }
}
