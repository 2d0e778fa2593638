//! The one walk over a body: wasmparser's decoder calls [`OpVisitor`] with each operator's
//! immediates; it hands them to the validator's own visitor, then to the compiler. No
//! `Operator` is decoded into a value and matched again by the validator, and nothing is
//! decoded twice except where a question about the next operator needs it (see
//! [`BodyBytes`]).

use super::stack::{Val, ValKind};
use super::{is_comparison, prescan, simd, validate, FuncCompiler, NextOp};
use crate::masm::MacroAssembler;
use crate::CompileError;
use wasmparser::{
    BinaryReader, FrameKind, FrameStack, FuncValidator, Operator, VisitOperator, VisitSimdOperator,
    WasmModuleResources,
};

/// The bytes of a body's operators, to look at an operator other than the one being
/// compiled: the one after it (one operator of lookahead: comparisons fuse with a
/// following branch, and an operation whose result goes straight into a local may write
/// that local's register in place), or the code after a `loop` for the prescan.
#[derive(Clone, Copy)]
pub(super) struct BodyBytes<'a> {
    data: &'a [u8],
    /// Module offset of `data[0]`.
    base: u64,
}

impl<'a> BodyBytes<'a> {
    /// The operators that `reader` has left to read.
    pub(super) fn new(reader: &BinaryReader<'a>) -> BodyBytes<'a> {
        let mut r = reader.clone();
        let base = r.original_position();
        BodyBytes {
            data: r.read_bytes(r.bytes_remaining()).unwrap_or_default(),
            base,
        }
    }

    /// A reader at module offset `offset` (inside the body).
    pub(super) fn reader_at(&self, offset: u64) -> Option<BinaryReader<'a>> {
        let i = self.index(offset)?;
        self.data.get(i..).map(|d| BinaryReader::new(d, offset))
    }

    /// The index in `data` of module offset `offset` (not checked against the length).
    #[inline]
    fn index(&self, offset: u64) -> Option<usize> {
        usize::try_from(offset.checked_sub(self.base)?).ok()
    }

    /// The offset just after the operator at `offset`, if it decodes.
    pub(super) fn end_of(&self, offset: u64) -> Option<u64> {
        // The usual case, one-byte immediates, straight from the bytes (no reader).
        let i = self.index(offset)?;
        let short = match self.data.get(i..)? {
            [0x20..=0x24 | 0x41 | 0x42, imm, ..] if imm & 0x80 == 0 => Some(2),
            // a load or store: flags without a memory index, offset
            [0x28..=0x3E, flags, off, ..] if flags & 0xC0 == 0 && off & 0x80 == 0 => Some(3),
            _ => None,
        };
        if let Some(len) = short {
            return Some(offset + len);
        }
        let mut r = self.reader_at(offset)?;
        // The common operators with immediates are skipped directly; the rest are decoded.
        let skipped = match r.read_u8().ok()? {
            // `local.*`, `global.*`
            0x20..=0x24 => r.read_var_u32().is_ok(),
            0x41 => r.read_var_i32().is_ok(),
            0x42 => r.read_var_i64().is_ok(),
            // loads and stores: alignment flags, [memory index], offset
            0x28..=0x3E => {
                let flags = r.read_var_u32().ok()?;
                if flags & 0x40 != 0 {
                    r.read_var_u32().ok()?;
                }
                r.read_var_u64().is_ok()
            }
            _ => {
                r = self.reader_at(offset)?;
                r.visit_operator(&mut Skip).is_ok()
            }
        };
        skipped.then(|| r.original_position())
    }

    /// What the operator at `offset` is, as far as code generation cares (only its first
    /// bytes are read; an operator that does not decode counts as `Other`).
    pub(super) fn kind_at(&self, offset: u64) -> NextOp {
        // Read from the bytes directly: this runs for most comparisons and results.
        match self.index(offset).and_then(|i| self.data.get(i..)) {
            // `if`, `br_if`
            Some([0x04 | 0x0D, ..]) => NextOp::Branch,
            // `local.set`, `local.tee` with a one-byte index
            Some([0x21 | 0x22, l, ..]) if l & 0x80 == 0 => NextOp::SetLocal(u32::from(*l)),
            // ... or a longer one, for the decoder
            Some([0x21 | 0x22, ..]) => self
                .reader_at(offset + 1)
                .and_then(|mut r| r.read_var_u32().ok())
                .map_or(NextOp::Other, NextOp::SetLocal),
            _ => NextOp::Other,
        }
    }
}

/// Decodes one operator without looking at it (to find where the next one starts).
struct Skip;

impl FrameStack for Skip {
    fn current_frame(&self) -> Option<FrameKind> {
        Some(FrameKind::Block)
    }
}

macro_rules! define_skip {
    ($( @$proposal:ident $op:ident $({ $($arg:ident: $argty:ty),* })? => $visit:ident ($($ann:tt)*))*) => {
        $(
            #[inline]
            fn $visit(&mut self $($(,$arg: $argty)*)?) {
                $($(let _ = $arg;)*)?
            }
        )*
    };
}

impl<'a> VisitOperator<'a> for Skip {
    type Output = ();
    fn simd_visitor(&mut self) -> Option<&mut dyn VisitSimdOperator<'a, Output = ()>> {
        Some(self)
    }
    wasmparser::for_each_visit_operator!(define_skip);
}

impl<'a> VisitSimdOperator<'a> for Skip {
    wasmparser::for_each_visit_simd_operator!(define_skip);
}

/// Validates, then compiles, the operator the decoder hands it.
pub(super) struct OpVisitor<'v, 'a, M: MacroAssembler, T> {
    pub c: &'v mut FuncCompiler<'a, M>,
    /// `None` when compiling a body again that was validated before.
    pub validator: Option<&'v mut FuncValidator<T>>,
    pub func_index: u32,
    /// Module offset of the operator being decoded.
    pub offset: u64,
}

/// Whether an operator of this proposal without immediates is one byte long (its opcode):
/// true for the MVP and sign-extension operators; the others have a prefix byte and a
/// LEB128 sub-opcode.
macro_rules! one_byte_opcode {
    (mvp) => {
        true
    };
    (sign_extension) => {
        true
    };
    ($other:ident) => {
        false
    };
}

/// The end offset of an operator at `offset` when it is known without decoding again.
macro_rules! known_end {
    ($proposal:ident $offset:expr,) => {
        one_byte_opcode!($proposal).then_some($offset + 1)
    };
    ($proposal:ident $offset:expr, $($arg:ident)+) => {
        None
    };
}

macro_rules! define_compile_visit {
    ($( @$proposal:ident $op:ident $({ $($arg:ident: $argty:ty),* })? => $visit:ident ($($ann:tt)*))*) => {
        $(
            #[allow(clippy::clone_on_copy)]
            fn $visit(&mut self $($(,$arg: $argty)*)?) -> Self::Output {
                let offset = self.offset;
                if let Some(validator) = self.validator.as_deref_mut() {
                    let valid = validator.visitor(offset).$visit($($($arg.clone()),*)?);
                    valid.map_err(|e| CompileError::invalid(self.func_index, e))?;
                }
                if !validate::proposal_supported!($proposal) {
                    let what = validate::Unsupported::Operator(stringify!($visit));
                    return Err(what.at(self.func_index, offset));
                }
                let end = known_end!($proposal offset, $($($arg)*)?);
                let op = Operator::$op $({ $($arg),* })?;
                let compiled = self.c.operator(&op, offset, end, self.func_index);
                // The operator's drop glue is a call that inspects the variant; this one's
                // immediates own nothing (known per type at compile time), so skip it.
                if false $($(|| std::mem::needs_drop::<$argty>())*)? {
                    drop(op);
                } else {
                    std::mem::forget(op);
                }
                compiled
            }
        )*
    };
}

impl<'a, M: MacroAssembler, T: WasmModuleResources> VisitOperator<'a> for OpVisitor<'_, 'a, M, T> {
    type Output = Result<(), CompileError>;
    fn simd_visitor(
        &mut self,
    ) -> Option<&mut dyn VisitSimdOperator<'a, Output = Result<(), CompileError>>> {
        Some(self)
    }
    wasmparser::for_each_visit_operator!(define_compile_visit);
}

/// SIMD operators are validated, then compiled if `simd::supported` says so, else reported
/// as unsupported.
macro_rules! define_simd_visit {
    ($( @$proposal:ident $op:ident $({ $($arg:ident: $argty:ty),* })? => $visit:ident ($($ann:tt)*))*) => {
        $(
            fn $visit(&mut self $($(,$arg: $argty)*)?) -> Self::Output {
                let offset = self.offset;
                if let Some(validator) = self.validator.as_deref_mut() {
                    let valid = validator.simd_visitor(offset).$visit($($($arg.clone()),*)?);
                    valid.map_err(|e| CompileError::invalid(self.func_index, e))?;
                }
                let op = Operator::$op $({ $($arg),* })?;
                if !simd::supported(&op) {
                    let what = validate::Unsupported::Operator(stringify!($visit));
                    return Err(what.at(self.func_index, offset));
                }
                self.c.operator(&op, offset, None, self.func_index)
            }
        )*
    };
}

impl<'a, M: MacroAssembler, T: WasmModuleResources> VisitSimdOperator<'a>
    for OpVisitor<'_, 'a, M, T>
{
    wasmparser::for_each_visit_simd_operator!(define_simd_visit);
}

impl<'a, M: MacroAssembler> FuncCompiler<'a, M> {
    /// Compiles one validated operator at module offset `offset`; `end` is where the next
    /// operator starts, if known without decoding again.
    ///
    /// Inlined into each visitor method, where `op` is a known variant: the checks below
    /// fold away for the operators they do not concern, and only `emit` dispatches.
    #[inline(always)]
    pub(super) fn operator(
        &mut self,
        op: &Operator<'a>,
        offset: u64,
        end: Option<u64>,
        func_index: u32,
    ) -> Result<(), CompileError> {
        if matches!(
            op,
            Operator::MemorySize { .. } | Operator::MemoryGrow { .. }
        ) {
            let end = self.body.end_of(offset).unwrap_or(offset);
            validate::check_encoding(self.info, op, offset, end, func_index)?;
        }
        // The operator's proposal is supported (`OpVisitor` checked).
        validate::check_operands(op).map_err(|r| r.at(func_index, offset))?;
        validate::check_tail_call(self.info, func_index, op)
            .map_err(|r| r.at(func_index, offset))?;
        self.wasm_offset = offset as u32;
        self.op_end = end;
        self.next_is_branch = if is_comparison(op) {
            // Comparisons are one-byte operators.
            self.body.kind_at(offset + 1) == NextOp::Branch
        } else if matches!(
            op,
            Operator::V128AnyTrue
                | Operator::I8x16AllTrue
                | Operator::I16x8AllTrue
                | Operator::I32x4AllTrue
                | Operator::I64x2AllTrue
        ) {
            end.or_else(|| self.body.end_of(offset))
                .is_some_and(|e| self.body.kind_at(e) == NextOp::Branch)
        } else {
            false
        };
        if matches!(op, Operator::Loop { .. }) && self.loops_seen >= self.loops_scanned {
            if let Some(after_loop) = self
                .body
                .end_of(offset)
                .and_then(|e| self.body.reader_at(e))
            {
                let first_id = self.loop_ids_used + self.loops_seen;
                let scanned = prescan::scan_loops(
                    after_loop,
                    self.locals.len(),
                    &mut self.prescan_marks,
                    first_id,
                    &mut self.loop_locals,
                );
                self.loops_scanned = self.loops_seen + scanned.max(1);
                self.loop_locals_len = scanned;
                self.loop_locals_first = self.loops_seen;
            }
        }
        // The most frequent operators go straight to their code (no second dispatch).
        let result = match *op {
            _ if !self.reachable => self.emit(op),
            Operator::LocalGet { local_index } => self.visit_local_get(local_index),
            Operator::LocalSet { local_index } => self.visit_local_set(local_index, false),
            Operator::LocalTee { local_index } => self.visit_local_set(local_index, true),
            Operator::I32Const { value } => {
                self.push(Val::Const(ValKind::I32, value as i64));
                Ok(())
            }
            Operator::I32Load { .. }
            | Operator::I64Load { .. }
            | Operator::F32Load { .. }
            | Operator::F64Load { .. }
            | Operator::I32Load8S { .. }
            | Operator::I32Load8U { .. }
            | Operator::I32Load16S { .. }
            | Operator::I32Load16U { .. }
            | Operator::I64Load8S { .. }
            | Operator::I64Load8U { .. }
            | Operator::I64Load16S { .. }
            | Operator::I64Load16U { .. }
            | Operator::I64Load32S { .. }
            | Operator::I64Load32U { .. }
            | Operator::I32Store { .. }
            | Operator::I64Store { .. }
            | Operator::F32Store { .. }
            | Operator::F64Store { .. }
            | Operator::I32Store8 { .. }
            | Operator::I32Store16 { .. }
            | Operator::I64Store8 { .. }
            | Operator::I64Store16 { .. }
            | Operator::I64Store32 { .. } => self.emit_memory_access(op).map(|_| ()),
            _ => self.emit(op),
        };
        result.map_err(|e| e.located(func_index, offset))
    }

    /// What the operator after the one being compiled is, as far as code generation cares.
    pub(super) fn next_op(&self) -> NextOp {
        let offset = self.wasm_offset as u64;
        match self.op_end.or_else(|| self.body.end_of(offset)) {
            Some(end) => self.body.kind_at(end),
            None => NextOp::Other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use wasmparser::{Parser, Payload};

    /// Every operator's end as found by `end_of` (fast paths included) is where wasmparser's
    /// decoder ends it, and `kind_at` sees branches and local stores.
    #[test]
    fn end_of_and_kind_at_agree_with_the_decoder() {
        let wat = r#"(module (memory 1) (global $g (mut i32) (i32.const 0))
          (func (param i32 i64) (result i32) (local f32 f64)
            (block (loop
              (local.set 0 (i32.load offset=70000 align=1 (local.get 0)))
              (i64.store32 offset=3 (local.get 0) (i64.const -1234567890123))
              (global.set $g (i32.const -70000))
              (drop (f32.const 1.5)) (drop (f64.const -2.25))
              (local.set 3 (f64.load (i32.const 8)))
              (br_if 1 (i32.eqz (local.tee 0 (i32.add (local.get 0) (global.get $g)))))
              (if (i32.lt_s (local.get 0) (i32.const 5)) (then (br 1)))
              (drop (memory.size)) (drop (memory.grow (i32.const 0)))
              (drop (i32.trunc_sat_f32_s (local.get 2)))
              (br_table 0 1 0 (local.get 0))))
            (local.get 0)))"#;
        let wasm = wat::parse_str(wat).unwrap();
        let body = Parser::new(0)
            .parse_all(&wasm)
            .find_map(|p| match p.unwrap() {
                Payload::CodeSectionEntry(b) => Some(b),
                _ => None,
            })
            .unwrap();
        let mut ops = body.get_operators_reader().unwrap();
        let bytes = BodyBytes::new(&ops.get_binary_reader());
        let mut seen = Vec::new();
        while !ops.eof() {
            let start = ops.original_position();
            let op = ops.read().unwrap();
            let end = ops.original_position();
            assert_eq!(bytes.end_of(start), Some(end), "{op:?}");
            let expected = match op {
                Operator::BrIf { .. } | Operator::If { .. } => NextOp::Branch,
                Operator::LocalSet { local_index } | Operator::LocalTee { local_index } => {
                    NextOp::SetLocal(local_index)
                }
                _ => NextOp::Other,
            };
            assert_eq!(bytes.kind_at(start), expected, "{op:?}");
            seen.push(expected);
        }
        assert!(seen.contains(&NextOp::Branch) && seen.contains(&NextOp::SetLocal(0)));
        assert_eq!(bytes.kind_at(ops.original_position()), NextOp::Other);
    }
}
