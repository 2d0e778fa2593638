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

/// A contiguous range of reserved address space that a module's code chunks are mapped
/// into, one after the other, so that every direct call and jump between them is in range
/// of a `call rel32` (x86-64) or `bl` (AArch64).
#[derive(Debug)]
pub struct CodeRange {
    reservation: std::sync::Arc<Mmap>,
    /// Offset of the first unused byte.
    next: usize,
}

impl CodeRange {
    /// Reserves `len` bytes (rounded up to whole pages) of address space: it costs no
    /// memory until chunks are mapped into it.
    pub fn reserve(len: usize) -> io::Result<CodeRange> {
        // Unmapped when the range and every chunk mapped into it (each holds an `Arc`) are
        // gone.
        let reservation = Mmap::reserve(len.max(1))?;
        Ok(CodeRange {
            reservation: std::sync::Arc::new(reservation),
            next: 0,
        })
    }

    /// The first address of the range.
    pub fn start(&self) -> usize {
        self.reservation.as_ptr() as usize
    }

    /// The size of the range in bytes.
    pub fn len(&self) -> usize {
        self.reservation.len()
    }

    /// Whether the range is empty (never: ranges have at least one page).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Bytes not yet used by chunks.
    pub fn remaining(&self) -> usize {
        self.reservation.len() - self.next
    }

    /// Takes the next `len` bytes (rounded up to whole pages) of the range, or fails if they
    /// do not fit; returns their address.
    fn take(&mut self, len: usize) -> io::Result<(NonNull<u8>, usize)> {
        let page = super::mmap::page_size();
        let len = len
            .max(1)
            .checked_next_multiple_of(page)
            .filter(|&l| l <= self.remaining())
            .ok_or_else(|| io::Error::new(io::ErrorKind::OutOfMemory, "code range full"))?;
        // SAFETY: `next + len <= reservation.len`, inside the reservation.
        let at = unsafe { self.reservation.as_ptr().add(self.next) };
        let at = NonNull::new(at).ok_or_else(|| io::Error::other("empty code range"))?;
        Ok((at, len))
    }

    /// Puts fresh inaccessible pages back at `[at, at + len)` inside the range (after a
    /// failed or finished use of it).
    fn clear(at: NonNull<u8>, len: usize) {
        // SAFETY: the range is inside a reservation we own (callers hold its Arc); a fixed
        // anonymous mapping only replaces our own pages there.
        unsafe {
            libc::mmap(
                at.as_ptr().cast(),
                len,
                libc::PROT_NONE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE | libc::MAP_FIXED,
                -1,
                0,
            )
        };
    }

    /// A dual-mapped chunk of at least `len` bytes (rounded up to whole pages), all zero,
    /// whose read+execute view is the next part of the range.
    pub fn chunk(&mut self, len: usize) -> io::Result<CodeChunk> {
        let (at, len) = self.take(len)?;
        // SAFETY: the name is a NUL-terminated string; the flags are valid.
        let fd = unsafe { libc::memfd_create(c"wjit-code".as_ptr(), libc::MFD_CLOEXEC) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        let map = |addr: *mut u8, prot, fixed| {
            // SAFETY: maps the file we just created, either at an address the kernel chooses
            // or (fixed) over unused pages of our own reservation, so it cannot alias any
            // Rust object; the arguments are valid for mmap.
            let p = unsafe { libc::mmap(addr.cast(), len, prot, libc::MAP_SHARED | fixed, fd, 0) };
            if p == libc::MAP_FAILED {
                Err(io::Error::last_os_error())
            } else {
                Ok(NonNull::new(p.cast::<u8>()).expect("mmap returned null"))
            }
        };
        // SAFETY: `fd` is the file descriptor created above.
        let sized = unsafe { libc::ftruncate(fd, len as libc::off_t) } == 0;
        let result = if !sized {
            Err(io::Error::last_os_error())
        } else {
            match map(ptr::null_mut(), libc::PROT_READ | libc::PROT_WRITE, 0) {
                Err(e) => Err(e),
                Ok(rw) => match map(
                    at.as_ptr(),
                    libc::PROT_READ | libc::PROT_EXEC,
                    libc::MAP_FIXED,
                ) {
                    Ok(rx) => Ok(CodeChunk {
                        rx,
                        rw: Some(rw),
                        len,
                        _range: self.reservation.clone(),
                    }),
                    Err(e) => {
                        // SAFETY: `rw` is a mapping of `len` bytes made above and not yet
                        // handed out.
                        unsafe { libc::munmap(rw.as_ptr().cast(), len) };
                        CodeRange::clear(at, len);
                        Err(e)
                    }
                },
            }
        };
        // SAFETY: `fd` is ours; the mappings keep the file alive without it.
        unsafe { libc::close(fd) };
        if result.is_ok() {
            self.next += len;
            super::LIVE_CODE.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
        result
    }

    /// [`CodeRange::chunk`] backed by a System V shared memory segment instead of a memfd
    /// file: `perf` names samples in such mappings (`/SYSV...`) from its perf map, as in
    /// anonymous memory, but not in file mappings. The segment is removed when both views
    /// are unmapped.
    pub fn chunk_sysv(&mut self, len: usize) -> io::Result<CodeChunk> {
        let (at, len) = self.take(len)?;
        // SAFETY: shmget only creates a segment; the arguments are valid.
        let id = unsafe { libc::shmget(libc::IPC_PRIVATE, len, libc::IPC_CREAT | 0o600) };
        if id < 0 {
            return Err(io::Error::last_os_error());
        }
        let attach = |addr: *const u8, flags| {
            // SAFETY: attaches the segment created above, either where the kernel chooses
            // or (SHM_REMAP) over unused pages of our own reservation, so it cannot alias any
            // Rust object.
            let p = unsafe { libc::shmat(id, addr.cast(), flags) };
            if p as isize == -1 {
                Err(io::Error::last_os_error())
            } else {
                NonNull::new(p.cast::<u8>()).ok_or_else(|| io::Error::other("shmat returned null"))
            }
        };
        let result = match attach(ptr::null(), 0) {
            Err(e) => Err(e),
            Ok(rw) => {
                let rx_flags = libc::SHM_RDONLY | libc::SHM_EXEC | libc::SHM_REMAP;
                // mprotect repeats SHM_EXEC's permission, which qemu-user ignores.
                let rx = attach(at.as_ptr(), rx_flags).and_then(|rx| {
                    let prot = libc::PROT_READ | libc::PROT_EXEC;
                    // SAFETY: `rx` is the attachment just made, `len` bytes, read-only.
                    match unsafe { libc::mprotect(rx.as_ptr().cast(), len, prot) } {
                        0 => Ok(rx),
                        _ => Err(io::Error::last_os_error()),
                    }
                });
                match rx {
                    Ok(rx) => Ok(CodeChunk {
                        rx,
                        rw: Some(rw),
                        len,
                        _range: self.reservation.clone(),
                    }),
                    Err(e) => {
                        // SAFETY: `rw` is the attachment made above, not yet handed out.
                        unsafe { libc::shmdt(rw.as_ptr().cast()) };
                        CodeRange::clear(at, len);
                        Err(e)
                    }
                }
            }
        };
        // SAFETY: marks our own segment for removal once it is detached (the views, which
        // `CodeChunk` unmaps like any mapping, keep it alive until then).
        unsafe { libc::shmctl(id, libc::IPC_RMID, ptr::null_mut()) };
        if result.is_ok() {
            self.next += len;
            super::LIVE_CODE.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
        result
    }

    /// A chunk holding exactly a copy of `code` (read+execute, never written again) in the
    /// next part of the range: the fallback where dual mappings are unavailable. The pages
    /// are private, read+write while the code is copied in, then read+execute.
    pub fn sealed(&mut self, code: &[u8]) -> io::Result<CodeChunk> {
        let (at, len) = self.take(code.len())?;
        // SAFETY: a fixed private anonymous mapping over unused pages of our reservation
        // (no Rust object lives there); the arguments are valid for mmap.
        let p = unsafe {
            libc::mmap(
                at.as_ptr().cast(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_FIXED,
                -1,
                0,
            )
        };
        if p == libc::MAP_FAILED {
            let e = io::Error::last_os_error();
            CodeRange::clear(at, len);
            return Err(e);
        }
        // SAFETY: the pages are ours, read+write and at least `code.len()` bytes; `code` is
        // ordinary memory elsewhere.
        unsafe { ptr::copy_nonoverlapping(code.as_ptr(), at.as_ptr(), code.len()) };
        // SAFETY: the same pages, ours.
        if unsafe { libc::mprotect(at.as_ptr().cast(), len, libc::PROT_READ | libc::PROT_EXEC) }
            != 0
        {
            let e = io::Error::last_os_error();
            CodeRange::clear(at, len);
            return Err(e);
        }
        flush_icache(at.as_ptr(), code.len());
        self.next += len;
        super::LIVE_CODE.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        Ok(CodeChunk {
            rx: at,
            rw: None,
            len,
            _range: self.reservation.clone(),
        })
    }
}

/// A chunk of a code arena that code is appended to while other code in it runs, mapped
/// inside a [`CodeRange`].
///
/// With memfd (the normal case) the chunk is one anonymous shared file mapped twice: a
/// read+execute view that runs and a read+write view that is written. No view is ever both
/// writable and executable; the write view lives at another address, so a stray jump can
/// never execute it and a stray write (through the code's addresses) faults. Bytes are
/// appended past everything published, and the only bytes rewritten while code may run
/// are single aligned words patched with [`CodeChunk::patch_word`].
///
/// Where memfd or a shared executable mapping is refused (seccomp, hardened kernels; or with
/// `WJIT_CODE_NO_MEMFD=1`), [`CodeRange::sealed`] gives the old scheme instead: a private
/// mapping written while read+write, then switched to read+execute and never written again.
#[derive(Debug)]
pub struct CodeChunk {
    /// The read+execute view.
    rx: NonNull<u8>,
    /// The read+write view of the same pages, `None` for a sealed chunk.
    rw: Option<NonNull<u8>>,
    /// Length of each view in bytes (a multiple of the page size).
    len: usize,
    /// The range the read+execute view is in, kept reserved while the chunk lives.
    _range: std::sync::Arc<Mmap>,
}

// SAFETY: the chunk owns its mappings and the raw pointers are only addresses of them, so
// moving it to another thread moves that ownership; nothing is tied to the creating thread.
unsafe impl Send for CodeChunk {}
// SAFETY: the only methods that write memory, `write_with` and `patch_word`, take
// `&mut self`, so safe code can never write while another thread holds `&CodeChunk` (the
// arena calls them under its mutex); `&CodeChunk` hands out nothing but addresses and lengths, and code at an
// address runs only after the arena published it with release ordering following the write.
unsafe impl Sync for CodeChunk {}

/// Whether dual-mapped chunks may be tried (false once they failed, or if disabled).
static DUAL_MAPPING: std::sync::atomic::AtomicU8 = std::sync::atomic::AtomicU8::new(0);

impl CodeChunk {
    /// Whether [`CodeRange::chunk`] is expected to work (memfd and a shared executable
    /// mapping are allowed); false after a failure or with `WJIT_CODE_NO_MEMFD=1`.
    pub fn dual_mapping_supported() -> bool {
        use std::sync::atomic::Ordering::Relaxed;
        match DUAL_MAPPING.load(Relaxed) {
            1 => true,
            2 => false,
            _ => {
                let disabled = std::env::var_os("WJIT_CODE_NO_MEMFD").is_some_and(|v| v == "1");
                let ok = !disabled && CodeRange::reserve(1).and_then(|mut r| r.chunk(1)).is_ok();
                DUAL_MAPPING.store(if ok { 1 } else { 2 }, Relaxed);
                ok
            }
        }
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

    /// Whether code can still be appended or patched (false for a sealed chunk).
    pub fn is_writable(&self) -> bool {
        self.rw.is_some()
    }

    /// Lets `fill` write the `len` bytes at `offset` through the write view (they are zero
    /// unless written before), then makes them visible to instruction fetch. The pages are
    /// populated in one go first, which is much cheaper than a page fault per page.
    ///
    /// Panics if the chunk is sealed or the range is outside it. The caller must only write
    /// bytes that no thread executes or reads yet (the arena appends past everything it
    /// published, under its lock), and publish the addresses with release ordering after
    /// this returns.
    pub fn write_with<T>(
        &mut self,
        offset: usize,
        len: usize,
        fill: impl FnOnce(&mut [u8]) -> T,
    ) -> T {
        let rw = self.rw.expect("write to a sealed code chunk");
        let end = offset.checked_add(len).expect("offset overflows");
        assert!(end <= self.len, "write past the end of a code chunk");
        populate_for_write(rw, offset, len);
        // SAFETY: `[offset, end)` is inside the read+write view (checked), which this chunk
        // owns; by the caller's contract no thread executes or reads those bytes yet, and
        // the slice lives only during `fill`, so it is the only access to them.
        let dst = unsafe { std::slice::from_raw_parts_mut(rw.as_ptr().add(offset), len) };
        let out = fill(dst);
        // SAFETY: `offset < len`, inside the read+execute view.
        flush_icache(unsafe { self.rx.as_ptr().add(offset) }, len);
        out
    }

    /// The aligned 4-byte word at `offset`, read atomically through the write view.
    ///
    /// Panics if the chunk is sealed, `offset` is not 4-byte aligned or outside the chunk.
    pub fn read_word(&self, offset: usize) -> u32 {
        let rw = self.rw.expect("read of a sealed code chunk");
        assert!(offset % 4 == 0 && offset + 4 <= self.len, "bad read offset");
        // SAFETY: the word is inside the read+write view (checked) and 4-byte aligned; after
        // publication it is only written atomically (`patch_word`); an AtomicU32 has the
        // layout of a u32.
        let cell = unsafe {
            &*rw.as_ptr()
                .add(offset)
                .cast::<std::sync::atomic::AtomicU32>()
        };
        cell.load(std::sync::atomic::Ordering::Acquire)
    }

    /// Replaces the aligned 4-byte word at `offset` with `word` (stored in native byte
    /// order, little-endian on both supported ISAs, as instructions are) in one atomic store through the write view, while other
    /// threads may be executing it, then makes it visible to instruction fetch.
    ///
    /// Panics if the chunk is sealed, `offset` is not 4-byte aligned or outside the chunk.
    /// The caller must only patch words for which both the old and the new instruction are
    /// correct to execute at any time (a jump whose both targets do the same thing).
    pub fn patch_word(&mut self, offset: usize, word: u32) {
        let rw = self.rw.expect("patch of a sealed code chunk");
        assert!(
            offset % 4 == 0 && offset + 4 <= self.len,
            "bad patch offset"
        );
        // SAFETY: the word is inside the read+write view (checked), 4-byte aligned, and only
        // ever accessed atomically or by instruction fetch; an AtomicU32 has the layout of
        // a u32.
        let cell = unsafe {
            &*rw.as_ptr()
                .add(offset)
                .cast::<std::sync::atomic::AtomicU32>()
        };
        cell.store(word, std::sync::atomic::Ordering::Release);
        // SAFETY: `offset < len`, inside the read+execute view.
        flush_icache(unsafe { self.rx.as_ptr().add(offset) }, 4);
    }
}

/// Asks the kernel to back `[offset, offset + len)` of the mapping at `base` with pages now
/// (`MADV_POPULATE_WRITE`, Linux 5.14), when it spans several pages: a big placement then
/// costs one call instead of a fault per page. Only a hint: older kernels refuse it and the
/// pages fault in as they are written.
fn populate_for_write(base: NonNull<u8>, offset: usize, len: usize) {
    const MADV_POPULATE_WRITE: libc::c_int = 23;
    let page = super::mmap::page_size();
    let start = offset / page * page;
    let end = (offset + len).next_multiple_of(page);
    if end - start < 4 * page {
        return;
    }
    // SAFETY: madvise with this advice only populates page tables of our own mapping in
    // `[start, end)`, which lies inside it (the mapping is whole pages); it changes no
    // content.
    unsafe {
        libc::madvise(
            base.as_ptr().add(start).cast(),
            end - start,
            MADV_POPULATE_WRITE,
        )
    };
}

impl Drop for CodeChunk {
    fn drop(&mut self) {
        if let Some(rw) = self.rw {
            // SAFETY: the write view is a mapping of `len` bytes that we own; nothing uses
            // it after drop.
            let rc = unsafe { libc::munmap(rw.as_ptr().cast(), self.len) };
            debug_assert_eq!(rc, 0, "munmap failed: {}", io::Error::last_os_error());
        }
        // The read+execute view goes back to reserved (not unmapped: the addresses stay
        // the range's until the range is gone); nothing runs there any more, as the code
        // registry entries for the chunk are dropped first.
        CodeRange::clear(self.rx, self.len);
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
