//! The jitdump agent: `/tmp/jit-<pid>.dump` in the format of perf's
//! `tools/perf/Documentation/jitdump-specification.txt` (a header, then one `JIT_CODE_LOAD`
//! record with name and code bytes per piece of code). The file is mapped executable once,
//! so that `perf record` logs an mmap event naming it; `perf inject --jit` then finds it
//! and turns each record into a small ELF file `perf report` can symbolize and annotate.
//! Timestamps are `CLOCK_MONOTONIC`, hence `perf record -k 1`.

use super::{CodeSymbol, ProfilingAgent};
use std::fs::File;
use std::io::Write as _;
use std::sync::{Mutex, PoisonError};

const MAGIC: u32 = 0x4A69_5444; // "JiTD"
const VERSION: u32 = 1;
const HEADER_SIZE: u32 = 40;
const JIT_CODE_LOAD: u32 = 0;
/// A `JIT_CODE_LOAD` record without its name and code.
const CODE_LOAD_SIZE: usize = 16 + 8 + 4 * 8;

#[cfg(target_arch = "x86_64")]
const ELF_MACHINE: u32 = 62; // EM_X86_64
#[cfg(target_arch = "aarch64")]
const ELF_MACHINE: u32 = 183; // EM_AARCH64

struct State {
    file: File,
    /// The next record's code index (unique per record, as perf expects).
    next_index: u64,
}

pub(crate) struct JitDumpAgent {
    state: Mutex<State>,
}

/// `CLOCK_MONOTONIC` in nanoseconds, the clock of `perf record -k 1`.
fn timestamp() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    (ts.tv_sec as u64)
        .wrapping_mul(1_000_000_000)
        .wrapping_add(ts.tv_nsec as u64)
}

fn thread_id() -> u32 {
    // SAFETY: gettid has no preconditions.
    unsafe { libc::gettid() as u32 }
}

impl JitDumpAgent {
    /// Creates the dump file, writes its header and maps it once (never unmapped: perf
    /// only needs the mmap event, and the mapping costs one page of address space).
    pub fn new() -> std::io::Result<JitDumpAgent> {
        let path = format!("/tmp/jit-{}.dump", std::process::id());
        let named = |e: std::io::Error| std::io::Error::new(e.kind(), format!("{path}: {e}"));
        let mut file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(&path)
            .map_err(named)?;
        let mut header = Vec::with_capacity(HEADER_SIZE as usize);
        for word in [
            MAGIC,
            VERSION,
            HEADER_SIZE,
            ELF_MACHINE,
            0,
            std::process::id(),
        ] {
            header.extend_from_slice(&word.to_ne_bytes());
        }
        header.extend_from_slice(&timestamp().to_ne_bytes());
        header.extend_from_slice(&0u64.to_ne_bytes()); // flags
        file.write_all(&header).map_err(named)?;
        let page = crate::sys::mmap::page_size();
        // SAFETY: maps `page` bytes of an open file read+execute, private, at an address
        // of the kernel's choosing; nothing reads or runs the mapping.
        let map = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                page,
                libc::PROT_READ | libc::PROT_EXEC,
                libc::MAP_PRIVATE,
                std::os::fd::AsRawFd::as_raw_fd(&file),
                0,
            )
        };
        if map == libc::MAP_FAILED {
            return Err(named(std::io::Error::last_os_error()));
        }
        Ok(JitDumpAgent {
            state: Mutex::new(State {
                file,
                next_index: 0,
            }),
        })
    }
}

impl ProfilingAgent for JitDumpAgent {
    fn register(&self, symbols: &[CodeSymbol]) {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        let (pid, tid) = (std::process::id(), thread_id());
        let mut out = Vec::new();
        for s in symbols {
            // SAFETY: the code was placed at `addr` and is mapped readable (read+execute)
            // for at least as long as this call.
            let code = unsafe { std::slice::from_raw_parts(s.addr as *const u8, s.size) };
            let total = CODE_LOAD_SIZE + s.name.len() + 1 + code.len();
            out.extend_from_slice(&JIT_CODE_LOAD.to_ne_bytes());
            out.extend_from_slice(&(total as u32).to_ne_bytes());
            out.extend_from_slice(&timestamp().to_ne_bytes());
            out.extend_from_slice(&pid.to_ne_bytes());
            out.extend_from_slice(&tid.to_ne_bytes());
            out.extend_from_slice(&(s.addr as u64).to_ne_bytes()); // vma
            out.extend_from_slice(&(s.addr as u64).to_ne_bytes()); // code address
            out.extend_from_slice(&(s.size as u64).to_ne_bytes());
            out.extend_from_slice(&state.next_index.to_ne_bytes());
            out.extend_from_slice(s.name.as_bytes());
            out.push(0);
            out.extend_from_slice(code);
            state.next_index += 1;
        }
        if let Err(e) = state.file.write_all(&out) {
            tracing::warn!("cannot write the jitdump file: {e}");
        }
    }
}
