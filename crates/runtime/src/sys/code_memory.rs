//! Executable memory for generated code.

use std::io;

use super::mmap::Mmap;

/// A read+execute mapping holding a copy of some machine code, unmapped on drop.
///
/// The pages are writable only while the code is copied in, then switched to read+execute: they
/// are never writable and executable at the same time.
#[derive(Debug)]
pub struct CodeMemory {
    mmap: Mmap,
    len: usize,
}

impl CodeMemory {
    /// Copies `code` into fresh pages and makes them read+execute (flushing the instruction cache
    /// on aarch64). An empty `code` still gets one (empty) page so that `as_ptr` is a real address.
    pub fn new(code: &[u8]) -> io::Result<CodeMemory> {
        let mut mmap = Mmap::reserve(code.len().max(1))?;
        let map_len = mmap.len();
        mmap.make_accessible(0, map_len)?;
        // SAFETY: the mapping is at least `code.len()` bytes, read+write, freshly created so it
        // cannot overlap `code`.
        unsafe { std::ptr::copy_nonoverlapping(code.as_ptr(), mmap.as_ptr(), code.len()) };
        mmap.make_executable(0, map_len)?;
        flush_icache(mmap.as_ptr(), code.len());
        super::LIVE_CODE.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        Ok(CodeMemory {
            mmap,
            len: code.len(),
        })
    }

    /// The address of the first byte of code.
    pub fn as_ptr(&self) -> *const u8 {
        self.mmap.as_ptr()
    }

    /// The length of the code in bytes (as passed to `new`).
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the code is empty.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The code as a byte slice (readable: the pages are read+execute).
    pub fn as_slice(&self) -> &[u8] {
        // SAFETY: the first `len` bytes are mapped readable for as long as `self` lives and are
        // never written after `new`.
        unsafe { std::slice::from_raw_parts(self.mmap.as_ptr(), self.len) }
    }
}

/// Makes freshly written code in `[start, start + len)` visible to instruction fetch.
///
/// x86_64 keeps instruction and data caches coherent, so this is a no-op there.
#[cfg(target_arch = "x86_64")]
fn flush_icache(_start: *const u8, _len: usize) {}

/// Makes freshly written code in `[start, start + len)` visible to instruction fetch: clean the
/// data cache to the point of unification, invalidate the instruction cache, then synchronize.
#[cfg(target_arch = "aarch64")]
fn flush_icache(start: *const u8, len: usize) {
    use std::arch::asm;
    if len == 0 {
        return;
    }
    let ctr: u64;
    // SAFETY: CTR_EL0 is readable from EL0 on Linux (the kernel enables or emulates it).
    unsafe { asm!("mrs {}, ctr_el0", out(reg) ctr, options(nomem, nostack, preserves_flags)) };
    let dline = 4usize << ((ctr >> 16) & 0xf);
    let iline = 4usize << (ctr & 0xf);
    let start = start as usize;
    let end = start + len;
    let mut addr = start & !(dline - 1);
    while addr < end {
        // SAFETY: `addr` is within (or at the line-aligned start of) our readable mapping;
        // `dc cvau` only writes back cache lines.
        unsafe { asm!("dc cvau, {}", in(reg) addr, options(nostack, preserves_flags)) };
        addr += dline;
    }
    // SAFETY: a barrier has no memory-safety preconditions.
    unsafe { asm!("dsb ish", options(nostack, preserves_flags)) };
    let mut addr = start & !(iline - 1);
    while addr < end {
        // SAFETY: as above; `ic ivau` only invalidates instruction cache lines.
        unsafe { asm!("ic ivau, {}", in(reg) addr, options(nostack, preserves_flags)) };
        addr += iline;
    }
    // SAFETY: barriers have no memory-safety preconditions.
    unsafe { asm!("dsb ish", "isb", options(nostack, preserves_flags)) };
}

impl Drop for CodeMemory {
    fn drop(&mut self) {
        super::LIVE_CODE.fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(target_arch = "x86_64")]
    const RETURN_42: &[u8] = &[0xB8, 0x2A, 0x00, 0x00, 0x00, 0xC3]; // mov eax, 42; ret

    #[cfg(target_arch = "aarch64")]
    const RETURN_42: &[u8] = &[
        0x40, 0x05, 0x80, 0x52, // mov w0, #42
        0xc0, 0x03, 0x5f, 0xd6, // ret
    ];

    #[test]
    fn executes_code() {
        let code = CodeMemory::new(RETURN_42).unwrap();
        assert_eq!(code.len(), RETURN_42.len());
        assert_eq!(code.as_slice(), RETURN_42);
        // SAFETY: the mapping holds a complete function with the C ABI signature `fn() -> i32`.
        let f: extern "C" fn() -> i32 = unsafe { std::mem::transmute(code.as_ptr()) };
        assert_eq!(f(), 42);
    }

    #[test]
    fn empty_code() {
        let code = CodeMemory::new(&[]).unwrap();
        assert!(code.is_empty());
        assert!(!code.as_ptr().is_null());
        assert_eq!(code.as_slice(), &[] as &[u8]);
    }

    #[test]
    fn send_sync() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<CodeMemory>();
        assert_send_sync::<Mmap>();
    }
}
