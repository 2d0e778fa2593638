//! Executable memory for generated code.

use std::io;
use std::ptr::{self, NonNull};

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

/// A chunk of a code arena that code is appended to while other code in it runs.
///
/// With memfd (the normal case) the chunk is one anonymous shared file mapped twice: a
/// read+execute view that runs and a read+write view that is written. No view is ever both
/// writable and executable; the write view lives at another address, so a stray jump can
/// never execute it and a stray write (through the code's addresses) faults. Bytes are only
/// ever appended past everything published, so running code is never rewritten.
///
/// Where memfd or a shared executable mapping is refused (seccomp, hardened kernels; or with
/// `WJIT_CODE_NO_MEMFD=1`), [`CodeChunk::sealed`] gives the old scheme instead: a private
/// mapping written while read+write, then switched to read+execute and never written again.
#[derive(Debug)]
pub struct CodeChunk {
    /// The read+execute view.
    rx: NonNull<u8>,
    /// The read+write view of the same pages, `None` for a sealed chunk.
    rw: Option<NonNull<u8>>,
    /// Length of each view in bytes (a multiple of the page size).
    len: usize,
}

// SAFETY: the chunk owns its mappings and the raw pointers are only addresses of them, so
// moving it to another thread moves that ownership; nothing is tied to the creating thread.
unsafe impl Send for CodeChunk {}
// SAFETY: the only method that writes memory, `write`, takes `&mut self`, so safe code can
// never write while another thread holds `&CodeChunk` (the arena calls it under its mutex);
// `&CodeChunk` hands out nothing but addresses and lengths, and code at an address runs only
// after the arena published it with release ordering following the write.
unsafe impl Sync for CodeChunk {}

/// Whether dual-mapped chunks may be tried (false once they failed, or if disabled).
static DUAL_MAPPING: std::sync::atomic::AtomicU8 = std::sync::atomic::AtomicU8::new(0);

impl CodeChunk {
    /// Whether [`CodeChunk::new`] is expected to work (memfd and a shared executable mapping
    /// are allowed); false after a failure or with `WJIT_CODE_NO_MEMFD=1`.
    pub fn dual_mapping_supported() -> bool {
        use std::sync::atomic::Ordering::Relaxed;
        match DUAL_MAPPING.load(Relaxed) {
            1 => true,
            2 => false,
            _ => {
                let disabled = std::env::var_os("WJIT_CODE_NO_MEMFD").is_some_and(|v| v == "1");
                let ok = !disabled && CodeChunk::new(1).is_ok();
                DUAL_MAPPING.store(if ok { 1 } else { 2 }, Relaxed);
                ok
            }
        }
    }

    /// A dual-mapped chunk of at least `len` bytes (rounded up to whole pages), all zero.
    pub fn new(len: usize) -> io::Result<CodeChunk> {
        let page = super::mmap::page_size();
        let len = len
            .max(1)
            .checked_next_multiple_of(page)
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "chunk too large"))?;
        // SAFETY: the name is a NUL-terminated string; the flags are valid.
        let fd = unsafe { libc::memfd_create(c"wjit-code".as_ptr(), libc::MFD_CLOEXEC) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        let map = |prot| {
            // SAFETY: maps the file we just created at an address the kernel chooses, so it
            // cannot alias any Rust object; the arguments are valid for mmap.
            let p = unsafe { libc::mmap(ptr::null_mut(), len, prot, libc::MAP_SHARED, fd, 0) };
            if p == libc::MAP_FAILED {
                Err(io::Error::last_os_error())
            } else {
                Ok(NonNull::new(p.cast::<u8>()).expect("mmap returned null"))
            }
        };
        let unmap = |p: NonNull<u8>| {
            // SAFETY: `p` is a mapping of `len` bytes made above and not yet handed out.
            unsafe { libc::munmap(p.as_ptr().cast(), len) };
        };
        // SAFETY: `fd` is the file descriptor created above.
        let sized = unsafe { libc::ftruncate(fd, len as libc::off_t) } == 0;
        let result = if !sized {
            Err(io::Error::last_os_error())
        } else {
            match map(libc::PROT_READ | libc::PROT_WRITE) {
                Err(e) => Err(e),
                Ok(rw) => match map(libc::PROT_READ | libc::PROT_EXEC) {
                    Ok(rx) => Ok(CodeChunk {
                        rx,
                        rw: Some(rw),
                        len,
                    }),
                    Err(e) => {
                        unmap(rw);
                        Err(e)
                    }
                },
            }
        };
        // SAFETY: `fd` is ours; the mappings keep the file alive without it.
        unsafe { libc::close(fd) };
        if result.is_ok() {
            super::LIVE_CODE.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
        result
    }

    /// A chunk holding exactly a copy of `code` (read+execute, never written again): the
    /// fallback where dual mappings are unavailable.
    pub fn sealed(code: &[u8]) -> io::Result<CodeChunk> {
        let mem = CodeMemory::new(code)?;
        let mem = std::mem::ManuallyDrop::new(mem);
        // We take over the mapping of `mem`: its Drop (which only counts) is not run and the
        // Mmap inside is forgotten with it, so only our Drop unmaps it and uncounts it.
        let rx = NonNull::new(mem.mmap.as_ptr()).expect("mapping is not null");
        Ok(CodeChunk {
            rx,
            rw: None,
            len: mem.mmap.len(),
        })
    }

    /// The address of the chunk's first byte in the read+execute view.
    pub fn as_ptr(&self) -> *const u8 {
        self.rx.as_ptr()
    }

    /// The chunk's length in bytes.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the chunk has no bytes (never: chunks have at least one page).
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Whether code can still be appended (false for a sealed chunk).
    pub fn is_writable(&self) -> bool {
        self.rw.is_some()
    }

    /// Copies `code` to `offset` through the write view and makes it visible to instruction
    /// fetch (flushing the instruction cache on aarch64).
    ///
    /// Panics if the chunk is sealed or the range is outside it. The caller must only write
    /// bytes that no thread executes yet (the arena appends past everything it published),
    /// and publish the addresses with release ordering after this returns.
    pub fn write(&mut self, offset: usize, code: &[u8]) {
        let rw = self.rw.expect("write to a sealed code chunk");
        let end = offset.checked_add(code.len()).expect("offset overflows");
        assert!(end <= self.len, "write past the end of a code chunk");
        // SAFETY: `[offset, end)` is inside the read+write view (checked), which we own; no
        // Rust reference to it exists and `code` is ordinary memory, so they do not overlap.
        unsafe {
            std::ptr::copy_nonoverlapping(code.as_ptr(), rw.as_ptr().add(offset), code.len())
        };
        // SAFETY: `offset < len`, inside the read+execute view.
        flush_icache(unsafe { self.rx.as_ptr().add(offset) }, code.len());
    }
}

impl Drop for CodeChunk {
    fn drop(&mut self) {
        for p in [Some(self.rx), self.rw].into_iter().flatten() {
            // SAFETY: both views are mappings of `len` bytes that we own; nothing uses them
            // after drop (the code registry entries for them are dropped first).
            let rc = unsafe { libc::munmap(p.as_ptr().cast(), self.len) };
            debug_assert_eq!(rc, 0, "munmap failed: {}", io::Error::last_os_error());
        }
        super::LIVE_CODE.fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
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
