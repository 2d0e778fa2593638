//! The perf map agent: `/tmp/perf-<pid>.map`, one `START SIZE NAME` line (hex address and
//! size) per piece of code, which `perf report` reads to name samples in anonymous
//! executable memory.

use super::{CodeSymbol, ProfilingAgent};
use std::fmt::Write as _;
use std::fs::File;
use std::io::Write as _;
use std::sync::{Mutex, PoisonError};

pub(crate) struct PerfMapAgent {
    file: Mutex<File>,
}

impl PerfMapAgent {
    /// Creates (truncates: a file left by an earlier process with the same pid would name
    /// the wrong code) the process's map file.
    pub fn new() -> std::io::Result<PerfMapAgent> {
        let path = path();
        let file = File::create(&path).map_err(|e| {
            std::io::Error::new(e.kind(), format!("cannot create {}: {e}", path.display()))
        })?;
        Ok(PerfMapAgent {
            file: Mutex::new(file),
        })
    }
}

/// The map file `perf` looks for.
pub(crate) fn path() -> std::path::PathBuf {
    format!("/tmp/perf-{}.map", std::process::id()).into()
}

impl ProfilingAgent for PerfMapAgent {
    fn needs_anonymous_code(&self) -> bool {
        true
    }

    fn register(&self, symbols: &[CodeSymbol]) {
        let mut lines = String::new();
        for s in symbols {
            let _ = writeln!(lines, "{:x} {:x} {}", s.addr, s.size, s.name);
        }
        // One unbuffered write per placement: the lines are in the file as soon as the code
        // can run, even if the process is killed.
        let mut file = self.file.lock().unwrap_or_else(PoisonError::into_inner);
        if let Err(e) = file.write_all(lines.as_bytes()) {
            tracing::warn!("cannot write {}: {e}", path().display());
        }
    }
}
