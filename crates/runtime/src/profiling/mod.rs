//! Telling profilers about generated code: `perf` cannot symbolize JIT code by itself, so
//! each placed function (eager or lazy), the jump slots and the engine's host stubs are
//! reported to a process-wide agent chosen by [`crate::Config::profiler`]: a perf map
//! (`perfmap`) or a jitdump file (`jitdump`).

mod jitdump;
mod perfmap;

#[cfg(test)]
pub(crate) use perfmap::path as perf_map_path;

use crate::Error;
use std::sync::OnceLock;

/// How generated code is made visible to profilers (wasmtime's names). The default is
/// [`ProfilingStrategy::None`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ProfilingStrategy {
    /// No profiler support.
    #[default]
    None,
    /// Append `START SIZE NAME` lines to `/tmp/perf-<pid>.map`, which `perf report` reads
    /// to name samples in JIT code (record with `perf record`, no extra step).
    PerfMap,
    /// Write `/tmp/jit-<pid>.dump` (the jitdump format: names and code bytes), for
    /// `perf record -k 1` followed by `perf inject --jit`; allows annotating the machine
    /// code of wasm functions.
    JitDump,
}

impl std::str::FromStr for ProfilingStrategy {
    type Err = Error;

    /// Parses `none`, `perfmap` or `jitdump`.
    fn from_str(s: &str) -> Result<ProfilingStrategy, Error> {
        match s {
            "none" => Ok(ProfilingStrategy::None),
            "perfmap" => Ok(ProfilingStrategy::PerfMap),
            "jitdump" => Ok(ProfilingStrategy::JitDump),
            _ => Err(Error::msg(format!(
                "unknown profiling strategy `{s}` (known: none, perfmap, jitdump)"
            ))),
        }
    }
}

/// A piece of placed code: its name, address and size in bytes. The bytes are mapped
/// readable at `addr` when it is reported.
pub(crate) struct CodeSymbol {
    pub name: String,
    pub addr: usize,
    pub size: usize,
}

/// Receives every piece of generated code as it is placed. One per process and strategy,
/// shared by all engines; implementations serialize their writes.
pub(crate) trait ProfilingAgent: Send + Sync {
    /// Records `symbols`. I/O errors are logged and ignored: profiling never makes loading
    /// a module fail.
    fn register(&self, symbols: &[CodeSymbol]);

    /// Whether the profiler names code only outside file mappings (perf maps): code chunks
    /// are then System V segments (`CodeRange::chunk_sysv`) rather than memfd files.
    fn needs_anonymous_code(&self) -> bool {
        false
    }
}

/// An agent, or why its file could not be created (kept to report it to every engine).
type Made<A> = Result<A, (std::io::ErrorKind, String)>;

static PERFMAP: OnceLock<Made<perfmap::PerfMapAgent>> = OnceLock::new();
static JITDUMP: OnceLock<Made<jitdump::JitDumpAgent>> = OnceLock::new();

/// The process's agent for `strategy` (none for [`ProfilingStrategy::None`]), created with
/// its file on first use, when the host stubs (`stubs()`, the engine's routines) are
/// reported to it. Fails if the file cannot
/// be created: asking for a profile and silently getting none would mislead.
pub(crate) fn agent(
    strategy: ProfilingStrategy,
    stubs: &dyn Fn() -> Vec<CodeSymbol>,
) -> Result<Option<&'static dyn ProfilingAgent>, Error> {
    fn init<A: ProfilingAgent>(
        cell: &'static OnceLock<Made<A>>,
        new: impl FnOnce() -> std::io::Result<A>,
        stubs: &dyn Fn() -> Vec<CodeSymbol>,
    ) -> Result<Option<&'static dyn ProfilingAgent>, Error> {
        let agent = cell.get_or_init(|| {
            let agent = new().map_err(|e| (e.kind(), e.to_string()))?;
            agent.register(&stubs());
            Ok(agent)
        });
        match agent {
            Ok(a) => Ok(Some(a)),
            Err((kind, message)) => Err(Error::Io(std::io::Error::new(
                *kind,
                format!("profiler: {message}"),
            ))),
        }
    }
    match strategy {
        ProfilingStrategy::None => Ok(None),
        ProfilingStrategy::PerfMap => init(&PERFMAP, perfmap::PerfMapAgent::new, stubs),
        ProfilingStrategy::JitDump => init(&JITDUMP, jitdump::JitDumpAgent::new, stubs),
    }
}

/// The name profilers show for function `index`: its name from the name section, else
/// `wasm-function[N]` (as wasmtime and browsers name them). Control characters, which would
/// break the line-based perf map, become `?`.
pub(crate) fn function_name(names: &[Option<String>], index: u32) -> String {
    match names.get(index as usize) {
        Some(Some(name)) if !name.is_empty() => name
            .chars()
            .map(|c| if c.is_control() { '?' } else { c })
            .collect(),
        _ => format!("wasm-function[{index}]"),
    }
}
