//! The process-wide host routines (see `wjit_compiler::isa::host::generate_stubs`), assembled
//! once, and the signal handler installed with them.

use super::exceptions::unwind;
use super::traps::raise_trap;
use crate::profiling::CodeSymbol;
use crate::sys::code_memory::CodeMemory;
use crate::sys::signals;
use crate::Error;
use std::sync::OnceLock;

/// Addresses of the host routines.
pub(crate) struct HostStubs {
    code: CodeMemory,
    lazy_code: Option<CodeMemory>,
    /// The lazy-compilation stub (0 where the backend has none).
    pub lazy: usize,
    /// `enter(vmctx, code, values, words, resume_sp_cell) -> u32`.
    pub enter: usize,
    /// The code pointer of every host function's funcref.
    pub host_call: usize,
    /// Where trap stubs and the signal handler send a trapping thread.
    pub trap_landing: usize,
    /// What wasm code calls to throw an exception.
    pub throw_landing: usize,
}

impl HostStubs {
    /// The routines' code, named for profilers (each runs to the next one's start).
    pub fn symbols(&self) -> Vec<CodeSymbol> {
        let mut starts = [
            (self.enter, "wjit::enter"),
            (self.host_call, "wjit::host_call"),
            (self.trap_landing, "wjit::trap_landing"),
            (self.throw_landing, "wjit::throw_landing"),
        ];
        starts.sort_unstable();
        let end = self.code.as_ptr() as usize + self.code.len();
        let mut symbols: Vec<CodeSymbol> = starts
            .iter()
            .enumerate()
            .map(|(i, &(addr, name))| CodeSymbol {
                name: name.to_string(),
                addr,
                size: starts.get(i + 1).map_or(end, |next| next.0) - addr,
            })
            .filter(|s| s.size > 0)
            .collect();
        if let Some(lazy) = &self.lazy_code {
            symbols.push(CodeSymbol {
                name: "wjit::lazy_stub".to_string(),
                addr: lazy.as_ptr() as usize,
                size: lazy.len(),
            });
        }
        symbols
    }
}

static STUBS: OnceLock<Result<HostStubs, String>> = OnceLock::new();

/// The host stubs, assembled and the signal handler installed on first use.
pub(crate) fn stubs() -> Result<&'static HostStubs, Error> {
    let stubs = STUBS.get_or_init(|| {
        let s = wjit_compiler::isa::host::generate_stubs(
            raise_trap as *const () as usize,
            unwind as *const () as usize,
        )
        .map_err(|e| e.to_string())?;
        let code = CodeMemory::new(&s.code).map_err(|e| e.to_string())?;
        let base = code.as_ptr() as usize;
        let lazy_code = if wjit_compiler::isa::host::LAZY_COMPILATION {
            let bytes = wjit_compiler::isa::host::lazy_stub().map_err(|e| e.to_string())?;
            Some(CodeMemory::new(&bytes).map_err(|e| e.to_string())?)
        } else {
            None
        };
        let stubs = HostStubs {
            lazy: lazy_code.as_ref().map_or(0, |c| c.as_ptr() as usize),
            lazy_code,
            enter: base + s.enter,
            host_call: base + s.host_call,
            trap_landing: base + s.trap_landing,
            throw_landing: base + s.throw_landing,
            code,
        };
        signals::init_trap_handler(stubs.trap_landing);
        Ok(stubs)
    });
    stubs
        .as_ref()
        .map_err(|e| Error::Unsupported(format!("host stubs: {e}")))
}

#[cfg(test)]
mod perf_map_tests {
    use crate::profiling::{agent, perf_map_path, ProfilingStrategy};
    use crate::vm::code::ModuleCode;
    use std::sync::Arc;

    /// The map lines naming `addr`, as (size, name).
    fn lines_at(addr: usize) -> Vec<(usize, String)> {
        let map = std::fs::read_to_string(perf_map_path()).unwrap();
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
        let stubs = super::stubs().unwrap();
        let profiler = agent(ProfilingStrategy::PerfMap, &|| stubs.symbols()).unwrap();
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
        let _ = std::fs::remove_file(perf_map_path());
    }
}
