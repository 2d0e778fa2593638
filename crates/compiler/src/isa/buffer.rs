//! The code buffer the macro assemblers emit into: what `dynasmrt::VecAssembler` does (a byte
//! vector plus dynasm's label and relocation registries), with
//!
//! * a fast append of a whole instruction ([`InstWriter`]: its parts stored straight into the
//!   spare capacity, the capacity checked once, instead of a `memcpy` call per instruction),
//!   and fixed-size stores for dynasm's `push_u32` & co. (the default methods go through
//!   `Extend<&u8>`, a `memcpy` call per 4-byte aarch64 instruction);
//! * [`CodeBuffer::take_code`], which hands out an exact-size copy of the code and keeps the
//!   buffer (and the label/relocation vectors) for the next function, instead of giving the
//!   whole over-reserved allocation away and allocating a fresh one per function.
//!
//! The base address for relocations is always 0: the code is position independent (only
//! relative relocations are used), and it is copied to its final place later.

use dynasmrt::aarch64::Aarch64Relocation;
use dynasmrt::components::{LabelRegistry, PatchLoc, RelocRegistry, StaticLabel};
use dynasmrt::relocations::{Relocation, RelocationKind};
use dynasmrt::x64::X64Relocation;
use dynasmrt::{
    AssemblyOffset, DynamicLabel, DynasmApi, DynasmError, DynasmLabelApi, LabelKind, TargetKind,
};
use std::ptr;

/// The byte buffer, labels and relocations of the function being assembled.
#[derive(Debug)]
pub struct CodeBuffer<R: Relocation> {
    ops: Vec<u8>,
    labels: LabelRegistry,
    relocs: RelocRegistry<R>,
    /// The relative `i32` references to dynamic labels (every x64 branch to a label), kept
    /// compact here instead of as dynasmrt `PatchLoc`s so that [`CodeBuffer::commit`]
    /// patches each with a few instructions.
    rel32: Vec<Rel32>,
    error: Option<DynasmError>,
}

/// A relative `i32` field referring to a dynamic label: it gets `target - origin`.
#[derive(Debug, Clone, Copy)]
struct Rel32 {
    /// Offset of the field in the code.
    field: usize,
    /// What the label's offset is relative to (the reference point less the target offset).
    origin: isize,
    label: DynamicLabel,
}

impl<R: Relocation> Default for CodeBuffer<R> {
    fn default() -> Self {
        Self::new()
    }
}

impl<R: Relocation> CodeBuffer<R> {
    /// An empty buffer (allocates nothing).
    pub fn new() -> CodeBuffer<R> {
        CodeBuffer {
            ops: Vec::new(),
            labels: LabelRegistry::new(),
            relocs: RelocRegistry::new(),
            rel32: Vec::new(),
            error: None,
        }
    }

    /// Reserves capacity for at least `additional` more code bytes. On a kept buffer that is
    /// already big enough this does nothing; otherwise it grows (amortized), so a reused
    /// buffer ends up as large as the largest function it assembled.
    pub fn reserve(&mut self, additional: usize) {
        self.ops.reserve(additional);
    }

    /// The bytes assembled so far (relocations not yet resolved).
    pub fn code(&self) -> &[u8] {
        &self.ops
    }

    /// Bytes the buffer can hold without reallocating.
    pub fn capacity(&self) -> usize {
        self.ops.capacity()
    }

    /// Creates a new dynamic label.
    pub fn new_dynamic_label(&mut self) -> DynamicLabel {
        self.labels.new_dynamic_label()
    }

    /// The label registry.
    pub fn labels(&self) -> &LabelRegistry {
        &self.labels
    }

    /// The label registry, mutably.
    pub fn labels_mut(&mut self) -> &mut LabelRegistry {
        &mut self.labels
    }

    /// Grows the vector so that at least `n` more bytes fit (the rare path of the appends).
    #[cold]
    #[inline(never)]
    fn grow(&mut self, n: usize) {
        self.ops.reserve(n);
    }

    /// A writer for one instruction (at most 15 bytes) appended to the code (see
    /// [`InstWriter`]), or `None` when the spare capacity is too small
    /// ([`CodeBuffer::reserve_inst`]).
    #[inline(always)]
    pub fn try_inst(&mut self) -> Option<InstWriter<'_>> {
        InstWriter::try_new(&mut self.ops)
    }

    /// Whether [`CodeBuffer::try_inst`] succeeds.
    #[inline(always)]
    pub fn has_inst_room(&self) -> bool {
        InstWriter::has_room(&self.ops)
    }

    /// Grows the buffer so that [`CodeBuffer::try_inst`] succeeds.
    pub fn reserve_inst(&mut self) {
        InstWriter::reserve(&mut self.ops);
    }

    /// Appends a fixed-size array with one store (the `push_*` methods).
    #[inline(always)]
    fn put_array<const N: usize>(&mut self, bytes: [u8; N]) {
        let at = self.ops.len();
        if self.ops.capacity() - at < N {
            self.grow(N);
        }
        // SAFETY: `capacity - at >= N` (checked above, or made so by `grow`), so the `N` bytes
        // written (unaligned; `u8` arrays have no alignment requirement anyway) lie in the
        // allocation, and they are all initialized before `set_len` exposes them.
        unsafe {
            ptr::write_unaligned(self.ops.as_mut_ptr().add(at).cast::<[u8; N]>(), bytes);
            self.ops.set_len(at + N);
        }
    }

    /// Resolves the relocations emitted so far; reports an error recorded while assembling
    /// (a label defined twice, an impossible relocation) or a relocation to an unknown
    /// label.
    pub fn commit(&mut self) -> Result<(), DynasmError> {
        if let Some(e) = self.error.take() {
            return Err(e);
        }
        for (loc, label) in self.relocs.take_statics() {
            let target = self.labels.resolve_static(&label)?;
            let buf = &mut self.ops[loc.range(0)];
            if loc.patch(buf, 0, target.0).is_err() {
                return Err(DynasmError::ImpossibleRelocation(if label.is_global() {
                    TargetKind::Global(label.get_name())
                } else {
                    TargetKind::Local(label.get_name())
                }));
            }
        }
        for r in &self.rel32 {
            let target = self.labels.resolve_dynamic(r.label)?;
            let value = (target.0 as isize).wrapping_sub(r.origin);
            match (i32::try_from(value), self.ops.get_mut(r.field..r.field + 4)) {
                (Ok(v), Some(field)) => field.copy_from_slice(&v.to_le_bytes()),
                _ => {
                    return Err(DynasmError::ImpossibleRelocation(TargetKind::Dynamic(
                        r.label,
                    )))
                }
            }
        }
        self.rel32.clear();
        for (loc, id) in self.relocs.take_dynamics() {
            let target = self.labels.resolve_dynamic(id)?;
            let buf = &mut self.ops[loc.range(0)];
            if loc.patch(buf, 0, target.0).is_err() {
                return Err(DynasmError::ImpossibleRelocation(TargetKind::Dynamic(id)));
            }
        }
        Ok(())
    }

    /// Resolves the relocations and returns an exact-size copy of the code; the buffer is
    /// then empty, with its capacity kept for the next function. On an error the buffer is
    /// left as it is (call [`CodeBuffer::clear`]).
    pub fn take_code(&mut self) -> Result<Vec<u8>, DynasmError> {
        self.commit()?;
        let code = self.ops.as_slice().to_vec();
        self.clear();
        Ok(code)
    }

    /// Forgets the code, labels, relocations and any recorded error, keeping the capacity.
    pub fn clear(&mut self) {
        self.ops.clear();
        self.labels.clear();
        self.relocs.take_statics().for_each(drop);
        self.relocs.take_dynamics().for_each(drop);
        self.rel32.clear();
        self.error = None;
    }
}

/// A relocation that may be a plain relative 32-bit field (every x64 label reference), which
/// [`CodeBuffer`] records compactly and [`CodeBuffer::commit`] patches directly instead of
/// through dynasmrt's generic encode-by-kind path.
pub trait FastRelocation: Relocation {
    /// Whether this is a relative relocation of a little-endian `i32` field.
    fn is_rel32(&self) -> bool;
}

impl FastRelocation for X64Relocation {
    #[inline(always)]
    fn is_rel32(&self) -> bool {
        matches!(self.kind(), RelocationKind::Relative) && self.size() == 4
    }
}

impl FastRelocation for Aarch64Relocation {
    #[inline(always)]
    fn is_rel32(&self) -> bool {
        // Its fields are bitfields inside instructions: always the generic path.
        false
    }
}

/// Appends one instruction (at most 15 bytes) to a byte vector by writing its parts straight
/// into the spare capacity: each part is one unaligned store of a fixed width (1, 4 or 8
/// bytes) followed by moving the write position by the part's actual length, so optional
/// bytes (a prefix, REX, SIB) and variable-length fields (displacement, immediate) cost a
/// store and an add instead of shifting the instruction into a wide integer. The bytes a
/// wide store writes past its length are overwritten by the next part or lie past the end.
/// The capacity is checked once, in [`InstWriter::try_new`], and the vector's length moves
/// once, in [`InstWriter::finish`]; a writer dropped without `finish` appends nothing.
pub struct InstWriter<'a> {
    vec: &'a mut Vec<u8>,
    /// `vec.as_mut_ptr() + vec.len()`: the first spare byte.
    at: *mut u8,
    /// Bytes written so far.
    n: usize,
}

impl<'a> InstWriter<'a> {
    /// Spare bytes needed: a write starts at most 15 bytes in (the position is masked to
    /// `0..16`) and is at most 8 bytes wide.
    const SPARE: usize = 32;

    /// A writer appending to `vec`, or `None` if it has fewer than [`Self::SPARE`] spare
    /// bytes ([`InstWriter::reserve`] makes room). Callers grow on a separate cold path and
    /// retry, which keeps any call out of the encoder's hot path.
    #[inline(always)]
    pub fn try_new(vec: &'a mut Vec<u8>) -> Option<InstWriter<'a>> {
        if !Self::has_room(vec) {
            return None;
        }
        let len = vec.len();
        // SAFETY: `len <= capacity`, so the result is inside (or one past) the allocation.
        let at = unsafe { vec.as_mut_ptr().add(len) };
        Some(InstWriter { vec, at, n: 0 })
    }

    /// Whether [`InstWriter::try_new`] succeeds on `vec`.
    #[inline(always)]
    pub fn has_room(vec: &Vec<u8>) -> bool {
        vec.capacity() - vec.len() >= Self::SPARE
    }

    /// Grows `vec` so that [`InstWriter::try_new`] succeeds.
    #[cold]
    #[inline(never)]
    pub fn reserve(vec: &mut Vec<u8>) {
        vec.reserve(Self::SPARE);
    }

    /// Writes the `N` bytes of `bytes` at the current position (masked to `0..16`).
    #[inline(always)]
    fn write<const N: usize>(&mut self, bytes: [u8; N]) {
        const { assert!(N <= 8) };
        // SAFETY: `try_new` checked that `SPARE` (32) spare bytes follow `at`, and nothing else can
        // touch the vector while we borrow it mutably; the write covers
        // `(n & 15)..(n & 15) + N`, at most `15 + 8 <= 32`, so it stays inside the spare
        // capacity. `[u8; N]` needs no alignment (and `write_unaligned` requires none).
        unsafe { ptr::write_unaligned(self.at.add(self.n & 15).cast::<[u8; N]>(), bytes) }
    }

    /// Appends the byte `x` if `present` (it is written either way; the position moves only
    /// when present).
    #[inline(always)]
    pub fn byte_if(&mut self, x: u8, present: bool) {
        self.write([x]);
        self.n += present as usize;
    }

    /// Appends the byte `x`.
    #[inline(always)]
    pub fn byte(&mut self, x: u8) {
        self.byte_if(x, true);
    }

    /// Appends the low `len` (at most 4) bytes of `x`, little-endian.
    #[inline(always)]
    pub fn u32(&mut self, x: u32, len: usize) {
        debug_assert!(len <= 4);
        self.write(x.to_le_bytes());
        // `min`: never past the bytes written (folds away for the lengths the encoder uses).
        self.n += len.min(4);
    }

    /// Appends the low `len` (at most 8) bytes of `x`, little-endian.
    #[inline(always)]
    pub fn u64(&mut self, x: u64, len: usize) {
        debug_assert!(len <= 8);
        self.write(x.to_le_bytes());
        self.n += len.min(8);
    }

    /// Bytes written so far.
    pub fn len(&self) -> usize {
        self.n
    }

    /// Whether nothing was written yet.
    pub fn is_empty(&self) -> bool {
        self.n == 0
    }

    /// Makes the bytes written part of the vector.
    ///
    /// # Panics
    ///
    /// If more than 15 bytes were written (no x86 instruction is that long, so it is a bug
    /// in the encoder; the bytes past 16 would have overwritten the first ones).
    #[inline(always)]
    pub fn finish(self) {
        assert!(self.n < 16, "x64 encoding of {} bytes", self.n);
        let len = self.vec.len() + self.n;
        // SAFETY: `n < 16`, so every write started below 16 and the mask never wrapped: the
        // parts were written one after another from `at`, each position move at most the
        // part's width, so all of `at..at + n` was written. `len <= capacity` because `n` is
        // below the 32 spare bytes checked in `try_new`.
        unsafe { self.vec.set_len(len) }
    }
}

impl<R: Relocation> Extend<u8> for CodeBuffer<R> {
    fn extend<T: IntoIterator<Item = u8>>(&mut self, iter: T) {
        self.ops.extend(iter)
    }
}

impl<'a, R: Relocation> Extend<&'a u8> for CodeBuffer<R> {
    fn extend<T: IntoIterator<Item = &'a u8>>(&mut self, iter: T) {
        self.ops.extend(iter)
    }
}

impl<R: Relocation> DynasmApi for CodeBuffer<R> {
    #[inline]
    fn offset(&self) -> AssemblyOffset {
        AssemblyOffset(self.ops.len())
    }

    #[inline]
    fn push(&mut self, byte: u8) {
        self.ops.push(byte);
    }

    fn align(&mut self, alignment: usize, with: u8) {
        let offset = self.ops.len() % alignment;
        if offset != 0 {
            for _ in offset..alignment {
                self.push(with);
            }
        }
    }

    #[inline(always)]
    fn push_i16(&mut self, value: i16) {
        self.put_array(value.to_le_bytes());
    }

    #[inline(always)]
    fn push_u16(&mut self, value: u16) {
        self.put_array(value.to_le_bytes());
    }

    #[inline(always)]
    fn push_i32(&mut self, value: i32) {
        self.put_array(value.to_le_bytes());
    }

    #[inline(always)]
    fn push_u32(&mut self, value: u32) {
        self.put_array(value.to_le_bytes());
    }

    #[inline(always)]
    fn push_i64(&mut self, value: i64) {
        self.put_array(value.to_le_bytes());
    }

    #[inline(always)]
    fn push_u64(&mut self, value: u64) {
        self.put_array(value.to_le_bytes());
    }
}

impl<R: FastRelocation> DynasmLabelApi for CodeBuffer<R> {
    type Relocation = R;

    fn local_label(&mut self, name: &'static str) {
        let offset = self.offset();
        self.labels.define_local(name, offset);
    }

    fn global_label(&mut self, name: &'static str) {
        let offset = self.offset();
        if let Err(e) = self.labels.define_global(name, offset) {
            self.error = Some(e)
        }
    }

    fn dynamic_label(&mut self, id: DynamicLabel) {
        let offset = self.offset();
        if let Err(e) = self.labels.define_dynamic(id, offset) {
            self.error = Some(e)
        }
    }

    fn global_relocation(
        &mut self,
        name: &'static str,
        target_offset: isize,
        field_offset: u8,
        ref_offset: u8,
        kind: R,
    ) {
        let location = self.offset();
        let label = StaticLabel::global(name);
        self.relocs.add_static(
            label,
            PatchLoc::new(location, target_offset, field_offset, ref_offset, kind),
        );
    }

    fn dynamic_relocation(
        &mut self,
        id: DynamicLabel,
        target_offset: isize,
        field_offset: u8,
        ref_offset: u8,
        kind: R,
    ) {
        let location = self.offset();
        if kind.is_rel32() {
            // What `PatchLoc::patch` computes for it, less the target (base address 0).
            self.rel32.push(Rel32 {
                field: location.0.wrapping_sub(field_offset as usize),
                origin: (location.0.wrapping_sub(ref_offset as usize) as isize)
                    .wrapping_sub(target_offset),
                label: id,
            });
            return;
        }
        self.relocs.add_dynamic(
            id,
            PatchLoc::new(location, target_offset, field_offset, ref_offset, kind),
        );
    }

    fn forward_relocation(
        &mut self,
        name: &'static str,
        target_offset: isize,
        field_offset: u8,
        ref_offset: u8,
        kind: R,
    ) {
        let location = self.offset();
        let label = match self.labels.place_local_reference(name) {
            Some(label) => label.next(),
            None => StaticLabel::first(name),
        };
        self.relocs.add_static(
            label,
            PatchLoc::new(location, target_offset, field_offset, ref_offset, kind),
        );
    }

    fn backward_relocation(
        &mut self,
        name: &'static str,
        target_offset: isize,
        field_offset: u8,
        ref_offset: u8,
        kind: R,
    ) {
        let location = self.offset();
        let label = match self.labels.place_local_reference(name) {
            Some(label) => label,
            None => {
                self.error = Some(DynasmError::UnknownLabel(LabelKind::Local(name)));
                return;
            }
        };
        self.relocs.add_static(
            label,
            PatchLoc::new(location, target_offset, field_offset, ref_offset, kind),
        );
    }

    fn value_relocation(&mut self, value: usize, field_offset: u8, ref_offset: u8, kind: R) {
        let location = self.offset();
        let loc = PatchLoc::new(location, 0, field_offset, ref_offset, kind);
        let buf = &mut self.ops[loc.range(0)];
        if loc.patch(buf, 0, value).is_err() {
            self.error = Some(DynasmError::ImpossibleRelocation(TargetKind::Value(value)))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use dynasmrt::relocations::{RelocationKind, RelocationSize};
    use dynasmrt::x64::X64Relocation;

    type Buf = CodeBuffer<X64Relocation>;

    fn rel32() -> X64Relocation {
        X64Relocation::from_size(RelocationKind::Relative, RelocationSize::DWord)
    }

    /// Appends `parts` (value, kind, length) as one instruction: kind 0 a byte (length 0
    /// or 1), 1 a `u32`, 2 a `u64`.
    fn write_inst(v: &mut Vec<u8>, parts: &[(u64, u8, usize)]) {
        if !InstWriter::has_room(v) {
            InstWriter::reserve(v);
        }
        let mut w = InstWriter::try_new(v).expect("room after reserve");
        for &(x, kind, len) in parts {
            match kind {
                0 => w.byte_if(x as u8, len == 1),
                1 => w.u32(x as u32, len),
                _ => w.u64(x, len),
            }
        }
        w.finish();
    }

    #[test]
    fn inst_writer_parts_across_capacity_boundaries() {
        // Start from several small capacities so appends hit the "no room" path at every
        // offset; each instruction mixes optional bytes and partial wide stores.
        for initial in [0usize, 1, 7, 15, 16, 17, 31, 32, 33, 47] {
            let mut v: Vec<u8> = Vec::with_capacity(initial);
            let mut expect = Vec::new();
            for round in 0..60u64 {
                let seed = round.wrapping_mul(0x9E37_79B9_7F4A_7C15);
                let parts = [
                    (seed, 0, (round & 1) as usize),
                    (seed >> 8, 0, 1),
                    (seed >> 16, 1, (round % 5) as usize),
                    (seed >> 24, 2, (round % 7) as usize),
                    (seed >> 32, 1, (round % 3) as usize),
                ];
                write_inst(&mut v, &parts);
                for &(x, _, len) in &parts {
                    expect.extend_from_slice(&x.to_le_bytes()[..len]);
                }
                assert_eq!(v, expect, "initial {initial} round {round}");
            }
        }
    }

    #[test]
    fn inst_writer_needs_32_spare_bytes() {
        let mut v: Vec<u8> = Vec::with_capacity(64);
        let cap = v.capacity();
        v.resize(cap - 32, 0xAA);
        assert!(InstWriter::has_room(&v));
        v.push(0xAA);
        assert!(!InstWriter::has_room(&v));
        assert!(InstWriter::try_new(&mut v).is_none());
        InstWriter::reserve(&mut v);
        assert!(InstWriter::has_room(&v));
    }

    #[test]
    fn inst_writer_dropped_without_finish_appends_nothing() {
        let mut v = vec![1u8, 2, 3];
        v.reserve(32);
        {
            let mut w = InstWriter::try_new(&mut v).unwrap();
            w.u64(u64::MAX, 8);
            assert_eq!(w.len(), 8);
        }
        assert_eq!(v, [1, 2, 3]);
    }

    #[test]
    #[should_panic(expected = "x64 encoding of 16 bytes")]
    fn inst_writer_rejects_16_bytes() {
        let mut v = Vec::with_capacity(32);
        let mut w = InstWriter::try_new(&mut v).unwrap();
        w.u64(0, 8);
        w.u64(0, 8);
        w.finish();
    }

    #[test]
    fn push_fixed_sizes_are_little_endian() {
        let mut b = Buf::new();
        b.push_u16(0x0201);
        b.push_i16(-2);
        b.push_u32(0x0605_0403);
        b.push_i32(-1);
        b.push_u64(0x0E0D_0C0B_0A09_0807);
        b.push_i64(i64::MIN);
        let mut expect = vec![1, 2, 0xFE, 0xFF, 3, 4, 5, 6, 0xFF, 0xFF, 0xFF, 0xFF];
        expect.extend_from_slice(&[7, 8, 9, 10, 11, 12, 13, 14]);
        expect.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0, 0x80]);
        assert_eq!(b.code(), &expect[..]);
        // Many words in a row cross capacity boundaries.
        let mut b = Buf::new();
        for i in 0..1000u32 {
            b.push_u32(i.wrapping_mul(0x0101_0101));
        }
        for (i, w) in b.code().chunks(4).enumerate() {
            assert_eq!(w, (i as u32).wrapping_mul(0x0101_0101).to_le_bytes());
        }
    }

    #[test]
    fn take_code_resolves_labels_and_keeps_capacity() {
        let mut b = Buf::new();
        b.reserve(4096);
        for _ in 0..2 {
            let target = b.new_dynamic_label();
            // jmp rel32 to the label defined after it.
            b.extend([0xE9, 0, 0, 0, 0]);
            b.dynamic_relocation(target, 0, 4, 0, rel32());
            b.push(0x90);
            b.dynamic_label(target);
            b.push(0xC3);
            let cap = b.capacity();
            let code = b.take_code().unwrap();
            assert_eq!(code, [0xE9, 1, 0, 0, 0, 0x90, 0xC3]);
            assert_eq!(code.capacity(), code.len());
            assert_eq!(b.code().len(), 0);
            assert_eq!(b.capacity(), cap);
            assert!(cap >= 4096);
        }
    }

    #[test]
    fn rel32_matches_dynasmrt_patch() {
        // Backward and forward references with a target offset and a reference point before
        // the end of the instruction, against what dynasmrt's `PatchLoc::patch` writes.
        for (target_offset, field_offset, ref_offset) in [(0, 4, 0), (3, 5, 1), (-7, 4, 2)] {
            let mut b = Buf::new();
            let back = b.new_dynamic_label();
            b.dynamic_label(back);
            b.extend([0x90, 0x90, 0x90, 0xE9, 0, 0, 0, 0, 0xCC]);
            b.dynamic_relocation(back, target_offset, field_offset, ref_offset, rel32());
            let fwd = b.new_dynamic_label();
            b.extend([0xE9, 0, 0, 0, 0, 0xCC]);
            b.dynamic_relocation(fwd, target_offset, field_offset, ref_offset, rel32());
            b.extend([0x90; 7]);
            b.dynamic_label(fwd);
            let code = b.take_code().unwrap();
            let mut expect = code.clone();
            for (loc, target) in [(9usize, 0usize), (15, 22)] {
                let p = PatchLoc::new(
                    AssemblyOffset(loc),
                    target_offset,
                    field_offset,
                    ref_offset,
                    rel32(),
                );
                let range = p.range(0);
                p.patch(&mut expect[range], 0, target).unwrap();
            }
            assert_eq!(code, expect);
        }
    }

    #[test]
    fn clear_forgets_a_failed_function() {
        let mut b = Buf::new();
        let missing = b.new_dynamic_label();
        b.extend([0xE9, 0, 0, 0, 0]);
        b.dynamic_relocation(missing, 0, 4, 0, rel32());
        let label = b.new_dynamic_label();
        b.dynamic_label(label);
        b.dynamic_label(label); // defined twice: recorded error
        assert!(b.take_code().is_err());
        b.clear();
        b.push(0xC3);
        assert_eq!(b.take_code().unwrap(), [0xC3]);
    }
}
