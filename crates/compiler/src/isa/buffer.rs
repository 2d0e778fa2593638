//! The code buffer the macro assemblers emit into: what `dynasmrt::VecAssembler` does (a byte
//! vector plus dynasm's label and relocation registries), with
//!
//! * a fast append of a whole instruction ([`CodeBuffer::put16`]: one 16-byte unaligned store
//!   into the spare capacity instead of a `memcpy` call per instruction), and fixed-size
//!   stores for dynasm's `push_u32` & co. (the default methods go through `Extend<&u8>`, a
//!   `memcpy` call per 4-byte aarch64 instruction);
//! * [`CodeBuffer::take_code`], which hands out an exact-size copy of the code and keeps the
//!   buffer (and the label/relocation vectors) for the next function, instead of giving the
//!   whole over-reserved allocation away and allocating a fresh one per function.
//!
//! The base address for relocations is always 0: the code is position independent (only
//! relative relocations are used), and it is copied to its final place later.

use dynasmrt::components::{LabelRegistry, PatchLoc, RelocRegistry, StaticLabel};
use dynasmrt::relocations::Relocation;
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
    error: Option<DynasmError>,
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

    /// Appends the first `len` (at most 16) bytes of `bytes`: one unaligned 16-byte store
    /// into the spare capacity, then the length moves by `len` (the bytes past `len` are
    /// overwritten by the next append or never read).
    ///
    /// # Panics
    ///
    /// If `len > 16`.
    #[inline(always)]
    pub fn put16(&mut self, bytes: &[u8; 16], len: usize) {
        assert!(len <= 16, "put16 of {len} bytes");
        let at = self.ops.len();
        if self.ops.capacity() - at < 16 {
            self.grow(16);
        }
        // SAFETY: the check above (or `grow`) guarantees `capacity - at >= 16`, so the 16
        // bytes from `as_mut_ptr() + at` are inside the vector's allocation and writable;
        // `bytes` is a separate 16-byte array (a shared borrow cannot alias the vector we
        // hold mutably), so the ranges do not overlap. `at + len <= capacity` because
        // `len <= 16`, and the bytes `at..at + len` were just initialized, so `set_len` only
        // exposes initialized bytes.
        unsafe {
            ptr::copy_nonoverlapping(bytes.as_ptr(), self.ops.as_mut_ptr().add(at), 16);
            self.ops.set_len(at + len);
        }
    }

    /// Appends a fixed-size array with one store (the `push_*` methods).
    #[inline(always)]
    fn put_array<const N: usize>(&mut self, bytes: [u8; N]) {
        let at = self.ops.len();
        if self.ops.capacity() - at < N {
            self.grow(N);
        }
        // SAFETY: as in `put16`: `capacity - at >= N`, so the `N` bytes written (unaligned,
        // `u8` arrays have no alignment requirement anyway) lie in the allocation, and they
        // are all initialized before `set_len` exposes them.
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
        self.error = None;
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

impl<R: Relocation> DynasmLabelApi for CodeBuffer<R> {
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

    fn pattern(seed: u8) -> [u8; 16] {
        std::array::from_fn(|i| seed.wrapping_mul(31).wrapping_add(i as u8))
    }

    #[test]
    fn put16_every_length_across_capacity_boundaries() {
        // Start from several small capacities so appends hit the "fewer than 16 bytes
        // left" path at every offset, including exactly at and just past the boundary.
        for initial in [0usize, 1, 7, 15, 16, 17, 31, 33] {
            let mut b = Buf::new();
            b.reserve(initial);
            let mut expect = Vec::new();
            for round in 0..40u8 {
                for len in 0..=16usize {
                    let bytes = pattern(round ^ len as u8);
                    b.put16(&bytes, len);
                    expect.extend_from_slice(&bytes[..len]);
                    assert_eq!(b.code(), &expect[..], "initial {initial} len {len}");
                    assert!(b.capacity() >= b.code().len());
                }
            }
        }
    }

    #[test]
    fn put16_fills_capacity_exactly() {
        // A vector with exactly 16 free bytes is written without growing; with 15 it grows.
        let mut b = Buf::new();
        b.reserve(32);
        let cap = b.capacity();
        let fill = cap - 16;
        for _ in 0..fill {
            b.push(0xAA);
        }
        b.put16(&pattern(1), 16);
        assert_eq!(b.capacity(), cap);
        assert_eq!(b.code().len(), cap);
        assert_eq!(&b.code()[fill..], &pattern(1));
        b.put16(&pattern(2), 3);
        assert!(b.capacity() > cap);
        assert_eq!(&b.code()[cap..], &pattern(2)[..3]);
    }

    #[test]
    #[should_panic(expected = "put16 of 17 bytes")]
    fn put16_rejects_more_than_16() {
        Buf::new().put16(&[0; 16], 17);
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
