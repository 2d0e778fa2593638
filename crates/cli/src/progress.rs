//! Loading modules with a progress bar: compiling a big module eagerly (or validating it)
//! takes seconds, so `wjit` shows an `indicatif` bar on stderr while it does, but only when
//! stderr is a terminal and the module is big enough to matter; otherwise it prints nothing.

use std::io::IsTerminal;
use std::path::Path;
use std::sync::OnceLock;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};
use wjit::{Engine, Module};

/// Modules with more bytes than this get a bar (a few hundred milliseconds of compilation).
pub const BIG_MODULE_BYTES: usize = 1 << 20;
/// Modules defining more functions than this get a bar.
pub const BIG_MODULE_FUNCTIONS: usize = 1000;

/// Compiles `bytes`, the contents of the module file `path` (binary or text), with a
/// progress bar on stderr if it is a terminal and the module is big. Errors name the file.
pub fn compile_module(engine: &Engine, path: &Path, bytes: &[u8]) -> Result<Module, String> {
    let named = |e: wjit::Error| format!("{}: {e}", path.display());
    with_bar(path, bytes.len(), |report| {
        Module::new_with_progress(engine, bytes, report)
    })
    .map_err(named)
}

/// Compiles `bytes`, the contents of the module file `path`, ahead of time
/// ([`Engine::precompile_module`]), with a progress bar as [`compile_module`] shows.
pub fn precompile_module(engine: &Engine, path: &Path, bytes: &[u8]) -> Result<Vec<u8>, String> {
    with_bar(path, bytes.len(), |report| {
        engine.precompile_module_with_progress(bytes, report)
    })
    .map_err(|e| format!("{}: {e}", path.display()))
}

/// Runs `work` with a progress reporter that draws a bar on stderr, if it is a terminal
/// and the module (of `len` bytes) is big.
fn with_bar<T>(
    path: &Path,
    len: usize,
    work: impl FnOnce(&(dyn Fn(usize, usize) + Sync)) -> T,
) -> T {
    if !std::io::stderr().is_terminal() {
        return work(&|_, _| {});
    }
    let big_file = len > BIG_MODULE_BYTES;
    // Made on the first report, when the number of functions is known.
    let bar: OnceLock<Option<ProgressBar>> = OnceLock::new();
    let report = |done: usize, total: usize| {
        let bar = bar.get_or_init(|| {
            (big_file || total > BIG_MODULE_FUNCTIONS).then(|| new_bar(path, total))
        });
        if let Some(bar) = bar {
            bar.set_position(done as u64);
        }
    };
    let result = work(&report);
    if let Some(Some(bar)) = bar.get() {
        bar.finish_and_clear();
    }
    result
}

fn new_bar(path: &Path, total: usize) -> ProgressBar {
    let bar = ProgressBar::new(total as u64);
    let style = ProgressStyle::with_template(
        "{msg} [{bar:40}] {pos}/{len} functions ({elapsed}, about {eta} left)",
    )
    .unwrap_or_else(|_| ProgressStyle::default_bar())
    .progress_chars("=> ");
    bar.set_style(style);
    let name = path.file_name().unwrap_or(path.as_os_str());
    bar.set_message(format!("loading {}", name.to_string_lossy()));
    bar.enable_steady_tick(Duration::from_millis(200));
    bar
}
