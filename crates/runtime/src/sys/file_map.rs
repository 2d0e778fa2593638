//! A read-only private mapping of a whole file, so that a big precompiled module is read
//! straight from the page cache instead of being copied into a buffer first.

use std::io;
use std::ptr::NonNull;

/// A file mapped read-only (`MAP_PRIVATE`), unmapped on drop.
pub struct FileMap {
    ptr: NonNull<u8>,
    len: usize,
}

impl FileMap {
    /// Maps the whole of `file` (`None` for an empty file, which cannot be mapped).
    pub fn new(file: &std::fs::File) -> io::Result<Option<FileMap>> {
        use std::os::fd::AsRawFd;
        let len = usize::try_from(file.metadata()?.len())
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "file too large"))?;
        if len == 0 {
            return Ok(None);
        }
        // SAFETY: maps `len` bytes of an open file read-only at an address the kernel picks,
        // so the mapping aliases no Rust object.
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ,
                libc::MAP_PRIVATE,
                file.as_raw_fd(),
                0,
            )
        };
        if p == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        let ptr =
            NonNull::new(p.cast::<u8>()).ok_or_else(|| io::Error::other("mmap returned null"))?;
        Ok(Some(FileMap { ptr, len }))
    }

    /// The file's bytes. They are only what the file held when it was mapped as long as
    /// nobody writes or truncates it meanwhile (a caller's promise: see
    /// `Module::deserialize_file`).
    pub fn as_slice(&self) -> &[u8] {
        // SAFETY: `ptr` is a live read-only mapping of `len` bytes, owned by `self`.
        unsafe { std::slice::from_raw_parts(self.ptr.as_ptr(), self.len) }
    }
}

impl Drop for FileMap {
    fn drop(&mut self) {
        // SAFETY: the mapping made in `new`, not used after this.
        unsafe { libc::munmap(self.ptr.as_ptr().cast(), self.len) };
    }
}
