//! Linear memory for 32-bit wasm memories: a fixed reservation that never moves.

use std::io;
use std::sync::Mutex;

use super::mmap::Mmap;

/// The size of a wasm page in bytes.
pub const WASM_PAGE_SIZE: usize = 65536;

/// The largest number of pages a 32-bit wasm memory can have (4 GiB).
pub const WASM32_MAX_PAGES: u64 = 1 << 16;

/// Bytes of address space reserved for every linear memory: 8 GiB + 64 KiB.
///
/// Generated code computes `base + index + offset` with a 32-bit `index` (< 4 GiB) and a 32-bit
/// static `offset` (< 4 GiB), then accesses at most 8 bytes (16 for v128, still inside the
/// slack). The 4 GiB index range plus the 4 GiB maximum static offset plus 64 KiB of slack means
/// every such access lands inside the reservation: either in the accessible part (in bounds) or in
/// the inaccessible rest (a guard-page fault that the signal handler turns into an out-of-bounds
/// trap). So no explicit bounds checks are needed and the base never moves when memory grows.
pub const RESERVATION: usize = 8 * (1 << 30) + WASM_PAGE_SIZE;

/// Reservations of dropped memories, all inaccessible again (their pages discarded, so they
/// read as zero when made accessible), kept for the next memories. Reusing an address range
/// saves the 8 GiB `mmap`/`munmap` pair, and under qemu-user (the aarch64 CI run) it keeps
/// the emulator's memory bounded: qemu keeps page bookkeeping for every guest range ever
/// mapped, about 16 MiB per fresh reservation. Only address space is kept, never memory.
static FREE_RESERVATIONS: Mutex<Vec<Mmap>> = Mutex::new(Vec::new());

/// The most reservations [`FREE_RESERVATIONS`] keeps (128 GiB of address space).
const MAX_FREE_RESERVATIONS: usize = 16;

fn take_reservation() -> io::Result<Mmap> {
    let reused = FREE_RESERVATIONS
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
        .pop();
    match reused {
        Some(mmap) => Ok(mmap),
        None => Mmap::reserve(RESERVATION),
    }
}

/// Makes the first `accessible` bytes of a dropped memory's reservation inaccessible again
/// (discarding its pages) and keeps it for reuse, or unmaps it if that fails or enough
/// reservations are kept already.
fn give_back_reservation(mut mmap: Mmap, accessible: usize) {
    if mmap.len() != RESERVATION || mmap.make_inaccessible(0, accessible).is_err() {
        return;
    }
    let mut free = FREE_RESERVATIONS
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    if free.len() < MAX_FREE_RESERVATIONS {
        free.push(mmap);
    }
}

/// A 32-bit wasm linear memory whose base address never changes.
///
/// The first [`size_bytes`](LinearMemory::size_bytes) bytes of the reservation are readable and
/// writable; everything after them up to [`RESERVATION`] is inaccessible.
#[derive(Debug)]
pub struct LinearMemory {
    mmap: Mmap,
    pages: u64,
    max_pages: u64,
}

fn pages_to_bytes(pages: u64) -> usize {
    // Never overflows: callers keep pages <= WASM32_MAX_PAGES (4 GiB fits in a 64-bit usize).
    pages as usize * WASM_PAGE_SIZE
}

impl LinearMemory {
    /// Creates a memory of `min_pages` zeroed pages that can grow up to the smallest of
    /// `max_pages` (the module's declared maximum, if any), [`WASM32_MAX_PAGES`] and
    /// `limit_pages` (an engine-wide limit; pass `u64::MAX` for none).
    ///
    /// Fails with `InvalidInput` if `min_pages` exceeds that bound, or with the OS error if the
    /// address space cannot be reserved.
    pub fn new(
        min_pages: u64,
        max_pages: Option<u64>,
        limit_pages: u64,
    ) -> io::Result<LinearMemory> {
        let bound = max_pages
            .unwrap_or(WASM32_MAX_PAGES)
            .min(WASM32_MAX_PAGES)
            .min(limit_pages);
        if min_pages > bound {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("linear memory of {min_pages} pages exceeds the maximum of {bound} pages"),
            ));
        }
        let mut mmap = take_reservation()?;
        if let Err(e) = mmap.make_accessible(0, pages_to_bytes(min_pages)) {
            give_back_reservation(mmap, 0);
            return Err(e);
        }
        super::LIVE_MEMORIES.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        Ok(LinearMemory {
            mmap,
            pages: min_pages,
            max_pages: bound,
        })
    }

    /// The base address: byte 0 of the memory. Stable for the memory's lifetime.
    pub fn base(&self) -> *mut u8 {
        self.mmap.as_ptr()
    }

    /// The current size in wasm pages.
    pub fn size_pages(&self) -> u64 {
        self.pages
    }

    /// The current size in bytes.
    pub fn size_bytes(&self) -> usize {
        pages_to_bytes(self.pages)
    }

    /// The maximum size in pages this memory may grow to (declared max, wasm32 and engine limits).
    pub fn max_pages(&self) -> u64 {
        self.max_pages
    }

    /// Grows the memory by `delta_pages` zero-filled pages and returns the old size in pages, or
    /// returns `None` (leaving the memory unchanged) if the new size would exceed the maximum or
    /// the OS refuses to commit the memory.
    pub fn grow(&mut self, delta_pages: u64) -> Option<u64> {
        let old = self.pages;
        let new = old.checked_add(delta_pages)?;
        if new > self.max_pages {
            return None;
        }
        // Pages past the current size were never accessible or were discarded, so the fresh
        // anonymous pages read as zero.
        self.mmap
            .make_accessible(pages_to_bytes(old), pages_to_bytes(delta_pages))
            .ok()?;
        self.pages = new;
        Some(old)
    }
}

impl Drop for LinearMemory {
    fn drop(&mut self) {
        super::LIVE_MEMORIES.fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
        // An empty mapping takes the reservation's place (it unmaps nothing when dropped).
        if let Ok(empty) = Mmap::reserve(0) {
            let mmap = std::mem::replace(&mut self.mmap, empty);
            give_back_reservation(mmap, self.size_bytes());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reused_reservations_start_zeroed() {
        let mut reused = 0;
        for round in 0..20u8 {
            let mut m = LinearMemory::new(2, None, u64::MAX).unwrap();
            assert_eq!(m.grow(1), Some(2));
            let base = m.base();
            // SAFETY: three pages are accessible.
            unsafe {
                for off in (0..3 * WASM_PAGE_SIZE).step_by(4099) {
                    *base.add(off) = round | 1;
                }
            }
            drop(m);
            let fresh = LinearMemory::new(1, None, u64::MAX).unwrap();
            reused += usize::from(fresh.base() == base);
            // SAFETY: one page is accessible.
            unsafe {
                for off in (0..WASM_PAGE_SIZE).step_by(4099) {
                    assert_eq!(*fresh.base().add(off), 0, "round {round} offset {off}");
                }
            }
        }
        // Other tests may take a freed reservation first, but not every time.
        assert!(reused > 0, "no reservation was reused");
    }

    #[test]
    fn new_and_grow() {
        let mut m = LinearMemory::new(1, Some(3), u64::MAX).unwrap();
        assert_eq!(m.size_pages(), 1);
        assert_eq!(m.size_bytes(), WASM_PAGE_SIZE);
        assert_eq!(m.max_pages(), 3);
        let base = m.base();
        // SAFETY: the first page is accessible.
        unsafe {
            assert_eq!(*base, 0);
            *base.add(WASM_PAGE_SIZE - 1) = 5;
        }
        assert_eq!(m.grow(0), Some(1));
        assert_eq!(m.grow(2), Some(1));
        assert_eq!(m.size_pages(), 3);
        assert_eq!(m.base(), base, "memory never moves");
        // SAFETY: pages 0..3 are accessible now.
        unsafe {
            assert_eq!(*base.add(WASM_PAGE_SIZE - 1), 5, "old contents kept");
            for off in (WASM_PAGE_SIZE..3 * WASM_PAGE_SIZE).step_by(4093) {
                assert_eq!(*base.add(off), 0, "grown memory is zero");
                *base.add(off) = 0xAB;
            }
            *base.add(3 * WASM_PAGE_SIZE - 1) = 1;
        }
        assert_eq!(m.grow(1), None, "past the declared max");
        assert_eq!(m.grow(u64::MAX), None);
        assert_eq!(m.size_pages(), 3);
        assert_eq!(m.grow(0), Some(3));
    }

    #[test]
    fn zero_pages_and_limits() {
        let mut m = LinearMemory::new(0, None, u64::MAX).unwrap();
        assert_eq!(m.size_bytes(), 0);
        assert_eq!(m.max_pages(), WASM32_MAX_PAGES);
        assert_eq!(m.grow(WASM32_MAX_PAGES + 1), None, "wasm32 limit");
        assert_eq!(m.grow(1), Some(0));
        // SAFETY: one page is accessible.
        unsafe { *m.base().add(WASM_PAGE_SIZE - 8).cast::<u64>() = u64::MAX };

        let mut limited = LinearMemory::new(1, Some(100), 2).unwrap();
        assert_eq!(limited.max_pages(), 2);
        assert_eq!(limited.grow(2), None, "engine limit");
        assert_eq!(limited.grow(1), Some(1));
        assert_eq!(limited.grow(1), None);

        let big_max = LinearMemory::new(0, Some(1 << 20), u64::MAX).unwrap();
        assert_eq!(big_max.max_pages(), WASM32_MAX_PAGES);

        assert!(LinearMemory::new(2, Some(1), u64::MAX).is_err());
        assert!(LinearMemory::new(3, None, 2).is_err());
        assert!(LinearMemory::new(WASM32_MAX_PAGES + 1, None, u64::MAX).is_err());
    }

    #[test]
    fn full_4gib_memory() {
        // Growing to the full 4 GiB only commits address space (MAP_NORESERVE, untouched pages).
        let mut m = LinearMemory::new(0, None, u64::MAX).unwrap();
        assert_eq!(m.grow(WASM32_MAX_PAGES), Some(0));
        assert_eq!(m.size_bytes(), 1 << 32);
        // SAFETY: the last byte of the 4 GiB is accessible.
        unsafe {
            let last = m.base().add((1 << 32) - 1);
            assert_eq!(*last, 0);
            *last = 1;
        }
        assert_eq!(m.grow(1), None);
    }
}
