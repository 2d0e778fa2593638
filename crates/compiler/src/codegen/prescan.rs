//! Which locals each loop uses, for choosing the locals a loop header keeps in registers.
//!
//! The one code-generating pass cannot know at a loop header which locals the loop will
//! touch, so a header would keep whatever happens to be in registers (often locals of the
//! enclosing code) and the loop would evict and reload its own locals on every iteration.
//! When the compiler meets an outermost `loop` it scans that loop's body once (decoding
//! only; V8's Liftoff scans every loop), counting for it and every loop nested in it the
//! accesses to each local inside. Code outside loops is never scanned twice.

use wasmparser::{BinaryReaderError, Operator};

/// The locals a loop accesses, with the number of accesses (`local.get/set/tee`) inside
/// it, in order of first access.
pub(super) type LoopLocals = Vec<(u32, u32)>;

/// Per open-loop nesting depth: for each local, the id (+1) of the loop at that depth that
/// has recorded it, and where. Kept across scans of one body (ids never repeat in it).
#[derive(Default)]
pub(super) struct DepthMarks {
    loop_of: Vec<u32>,
    position: Vec<u32>,
}

/// Scans operators from a `loop` operator (included) to its `end` and returns the locals of
/// that loop and of every loop nested in it, in the order the loops start. `num_locals` bounds the
/// local indices (an out-of-range index ends the scan: validation reports it later).
/// `first_id` must exceed every loop id of earlier scans that used `marks`.
pub(super) fn scan_loops<'a>(
    ops: impl Iterator<Item = Result<Operator<'a>, BinaryReaderError>>,
    num_locals: usize,
    marks: &mut Vec<DepthMarks>,
    first_id: usize,
) -> Vec<LoopLocals> {
    let mut loops: Vec<LoopLocals> = Vec::new();
    // Control stack: the loop id of each open frame that is a loop.
    let mut control: Vec<Option<usize>> = Vec::new();
    let mut open_loops: Vec<usize> = Vec::new();
    for op in ops {
        let Ok(op) = op else { break };
        match op {
            Operator::Loop { .. } => {
                let id = loops.len();
                loops.push(Vec::new());
                control.push(Some(id));
                open_loops.push(id);
                if marks.len() < open_loops.len() {
                    marks.push(DepthMarks {
                        loop_of: vec![0; num_locals],
                        position: vec![0; num_locals],
                    });
                }
            }
            Operator::Block { .. } | Operator::If { .. } | Operator::TryTable { .. } => {
                control.push(None)
            }
            Operator::End => match control.pop() {
                Some(Some(_)) => {
                    open_loops.pop();
                    if control.is_empty() {
                        break; // the end of the loop the scan began at
                    }
                }
                Some(None) => {}
                None => break,
            },
            Operator::LocalGet { local_index }
            | Operator::LocalSet { local_index }
            | Operator::LocalTee { local_index } => {
                let l = local_index as usize;
                if l >= num_locals {
                    break;
                }
                for (depth, &id) in open_loops.iter().enumerate() {
                    let m = &mut marks[depth];
                    let tag = (first_id + id) as u32 + 1;
                    if m.loop_of[l] != tag {
                        m.loop_of[l] = tag;
                        m.position[l] = loops[id].len() as u32;
                        loops[id].push((local_index, 0));
                    }
                    loops[id][m.position[l] as usize].1 += 1;
                }
            }
            _ => {}
        }
    }
    loops
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
                // Start at the first loop, as the compiler does.
                loop {
                    let op = ops.read().unwrap();
                    if matches!(op, Operator::Loop { .. }) {
                        let first = std::iter::once(Ok(op));
                        let rest = std::iter::from_fn(move || (!ops.eof()).then(|| ops.read()));
                        return scan_loops(first.chain(rest), num_locals, &mut Vec::new(), 0);
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
    fn an_out_of_range_local_stops_the_scan() {
        let loops = loops_of("(loop (drop (local.get 1)))", 1);
        assert_eq!(loops, vec![vec![]]);
    }
}
