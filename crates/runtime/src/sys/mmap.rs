//! RAII anonymous memory mappings.

use std::io;
use std::ptr::{self, NonNull};
use std::sync::atomic::{AtomicUsize, Ordering};

/// The system page size in bytes (queried once, then cached).
pub fn page_size() -> usize {
    static PAGE_SIZE: AtomicUsize = AtomicUsize::new(0);
    let cached = PAGE_SIZE.load(Ordering::Relaxed);
    if cached != 0 {
        return cached;
    }
    // SAFETY: sysconf has no preconditions; _SC_PAGESIZE is always supported on Linux.
    let size = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    let size = if size > 0 { size as usize } else { 4096 };
    PAGE_SIZE.store(size, Ordering::Relaxed);
    size
}

/// Rounds `len` up to a multiple of the page size, or `None` on overflow.
fn round_up_to_page(len: usize) -> Option<usize> {
    let page = page_size();
    len.checked_add(page - 1).map(|l| l & !(page - 1))
}

/// An anonymous private mapping, unmapped on drop.
///
/// The whole range starts out inaccessible (`PROT_NONE`, `MAP_NORESERVE`, so reserving address
/// space costs no memory); parts are then made readable and writable with
/// [`make_accessible`](Mmap::make_accessible).
#[derive(Debug)]
pub struct Mmap {
    ptr: NonNull<u8>,
    len: usize,
}

// SAFETY: `Mmap` owns its mapping exclusively; the raw pointer is just an address. Moving it to
// another thread or sharing `&Mmap` (which only hands out the pointer and length) is safe; any
// access through the pointer is the caller's unsafe responsibility.
unsafe impl Send for Mmap {}
// SAFETY: see `Send`; `&Mmap` exposes no interior mutability.
unsafe impl Sync for Mmap {}

impl Mmap {
    /// Reserves `len` bytes (rounded up to whole pages) of inaccessible address space.
    ///
    /// `len == 0` gives an empty mapping that owns nothing.
    pub fn reserve(len: usize) -> io::Result<Mmap> {
        if len == 0 {
            return Ok(Mmap {
                ptr: NonNull::dangling(),
                len: 0,
            });
        }
        let len = round_up_to_page(len)
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "mapping too large"))?;
        // SAFETY: an anonymous mapping at an address the kernel chooses cannot alias any existing
        // Rust object; the arguments are valid for mmap.
        let ptr = unsafe {
            libc::mmap(
                ptr::null_mut(),
                len,
                libc::PROT_NONE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
                -1,
                0,
            )
        };
        if ptr == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        Ok(Mmap {
            ptr: NonNull::new(ptr.cast::<u8>()).expect("mmap returned null"),
            len,
        })
    }

    /// Checks that `offset` is page aligned and that `len` (rounded up to whole pages) stays
    /// inside the mapping; returns the rounded length.
    fn check_range(&self, offset: usize, len: usize) -> io::Result<usize> {
        let invalid = |msg: &'static str| io::Error::new(io::ErrorKind::InvalidInput, msg);
        if offset % page_size() != 0 {
            return Err(invalid("offset is not page aligned"));
        }
        let len = round_up_to_page(len).ok_or_else(|| invalid("length overflows"))?;
        match offset.checked_add(len) {
            Some(end) if end <= self.len => Ok(len),
            _ => Err(invalid("range is outside the mapping")),
        }
    }

    /// Changes the protection of `[offset, offset + len)` (already checked) to `prot`.
    fn protect_checked(&mut self, offset: usize, len: usize, prot: libc::c_int) -> io::Result<()> {
        if len == 0 {
            return Ok(());
        }
        // SAFETY: the range was checked to lie inside this mapping, which we own; `&mut self`
        // guarantees no outstanding Rust borrows of it (callers of `as_ptr` handle raw accesses).
        let rc = unsafe { libc::mprotect(self.ptr.as_ptr().add(offset).cast(), len, prot) };
        if rc != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }

    /// Makes `[offset, offset + len)` readable and writable.
    ///
    /// `offset` must be page aligned; `len` is rounded up to whole pages; the range must lie
    /// inside the mapping. Pages never touched before read as zero.
    pub fn make_accessible(&mut self, offset: usize, len: usize) -> io::Result<()> {
        let len = self.check_range(offset, len)?;
        self.protect_checked(offset, len, libc::PROT_READ | libc::PROT_WRITE)
    }

    /// Makes `[offset, offset + len)` inaccessible again and discards its contents (a later
    /// [`make_accessible`](Mmap::make_accessible) sees zeroes). Same range rules as
    /// `make_accessible`.
    pub fn make_inaccessible(&mut self, offset: usize, len: usize) -> io::Result<()> {
        let len = self.check_range(offset, len)?;
        self.protect_checked(offset, len, libc::PROT_NONE)?;
        if len != 0 {
            // SAFETY: the range lies inside our private anonymous mapping; MADV_DONTNEED just
            // replaces its pages with zero-fill-on-demand pages.
            let rc = unsafe {
                libc::madvise(
                    self.ptr.as_ptr().add(offset).cast(),
                    len,
                    libc::MADV_DONTNEED,
                )
            };
            if rc != 0 {
                return Err(io::Error::last_os_error());
            }
        }
        Ok(())
    }

    /// Makes `[offset, offset + len)` readable and executable (not writable). Same range rules
    /// as [`make_accessible`](Mmap::make_accessible).
    pub fn make_executable(&mut self, offset: usize, len: usize) -> io::Result<()> {
        let len = self.check_range(offset, len)?;
        self.protect_checked(offset, len, libc::PROT_READ | libc::PROT_EXEC)
    }

    /// The start of the mapping (dangling but non-null for an empty mapping).
    pub fn as_ptr(&self) -> *mut u8 {
        self.ptr.as_ptr()
    }

    /// The length of the mapping in bytes (a multiple of the page size).
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the mapping is empty.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

impl Drop for Mmap {
    fn drop(&mut self) {
        if self.len == 0 {
            return;
        }
        // SAFETY: we own this mapping and nothing can use it after drop.
        let rc = unsafe { libc::munmap(self.ptr.as_ptr().cast(), self.len) };
        debug_assert_eq!(rc, 0, "munmap failed: {}", io::Error::last_os_error());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reserve_access_drop() {
        let page = page_size();
        let mut m = Mmap::reserve(4 * page).unwrap();
        assert_eq!(m.len(), 4 * page);
        assert!(!m.is_empty());
        m.make_accessible(page, 2 * page).unwrap();
        // SAFETY: pages 1 and 2 are read+write and owned by `m`.
        unsafe {
            let p = m.as_ptr().add(page);
            assert_eq!(*p, 0);
            assert_eq!(*p.add(2 * page - 1), 0);
            *p = 7;
            *p.add(2 * page - 1) = 9;
            assert_eq!(*p, 7);
        }
        m.make_inaccessible(page, page).unwrap();
        m.make_accessible(page, page).unwrap();
        // SAFETY: page 1 is accessible again.
        unsafe { assert_eq!(*m.as_ptr().add(page), 0, "discarded page reads as zero") };
        drop(m);
    }

    #[test]
    fn rounding_and_bounds() {
        let page = page_size();
        let mut m = Mmap::reserve(1).unwrap();
        assert_eq!(m.len(), page);
        m.make_accessible(0, 1).unwrap();
        m.make_accessible(0, 0).unwrap();
        assert!(m.make_accessible(1, 1).is_err(), "unaligned offset");
        assert!(m.make_accessible(0, page + 1).is_err(), "past the end");
        assert!(m.make_accessible(page, 1).is_err(), "past the end");
        assert!(m.make_accessible(usize::MAX & !(page - 1), page).is_err());
        assert!(m.make_accessible(0, usize::MAX).is_err());
        assert!(m.make_inaccessible(2 * page, page).is_err());
    }

    #[test]
    fn empty_and_huge() {
        let m = Mmap::reserve(0).unwrap();
        assert!(m.is_empty());
        drop(m);
        assert!(Mmap::reserve(usize::MAX).is_err());
        // A large reservation costs only address space.
        let big = Mmap::reserve(1 << 36).unwrap();
        assert_eq!(big.len(), 1 << 36);
    }
}
