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

#[cfg(test)]
mod tests {
    use crate::profiling::{agent, ProfilingStrategy};
    use crate::vm::code::ModuleCode;
    use std::sync::Arc;

    /// The map lines naming `addr`, as (size, name).
    fn lines_at(addr: usize) -> Vec<(usize, String)> {
        let map = std::fs::read_to_string(super::path()).unwrap();
        map.lines()
            .filter_map(|line| {
                let mut parts = line.splitn(3, ' ');
                let start = usize::from_str_radix(parts.next()?, 16).ok()?;
                let size = usize::from_str_radix(parts.next()?, 16).ok()?;
                let name = parts.next()?.to_string();
                (start == addr).then_some((size, name))
            })
            .collect()
    }

    #[test]
    fn every_placed_function_gets_a_line_with_its_name_and_size() {
        let stubs = crate::vm::stubs::stubs().unwrap();
        let profiler = agent(ProfilingStrategy::PerfMap, stubs).unwrap();
        assert!(profiler.is_some());
        // The host stubs were reported when the agent was made.
        assert_eq!(lines_at(stubs.enter).len(), 1);
        assert_eq!(lines_at(stubs.enter)[0].1, "wjit::enter");

        let names = vec![
            None,
            Some("alpha".to_string()),
            None,
            Some("bad\nname".into()),
        ];
        let code = ModuleCode::new(Arc::new(names), 4 << 20)
            .unwrap()
            .with_profiler(profiler);
        let function = |len: usize| wjit_compiler::CompiledFunction {
            code: vec![0xCC; len],
            ..Default::default()
        };
        // Two placements, as lazy compilation makes: each is reported when placed.
        let first = code
            .place(&[(1, function(64)), (2, function(100))], &|_| None)
            .unwrap();
        assert_eq!(lines_at(first[0]), [(64, "alpha".to_string())]);
        assert_eq!(lines_at(first[1]), [(100, "wasm-function[2]".to_string())]);
        let second = code.place(&[(3, function(7))], &|_| None).unwrap();
        assert_eq!(lines_at(second[0]), [(7, "bad?name".to_string())]);
        let _ = std::fs::remove_file(super::path());
    }
}
