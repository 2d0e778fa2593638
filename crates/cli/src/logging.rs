//! Logging: the runtime emits `tracing` events (per-module parse, validate, compile and
//! place timings, each lazy compilation); `WJIT_LOG` selects which reach stderr, as an
//! `EnvFilter` directive (`WJIT_LOG=debug`, `WJIT_LOG=wjit=trace`). Unset or empty: none,
//! and no subscriber is installed at all.

use std::io::IsTerminal;

/// The environment variable holding the filter.
pub const ENV: &str = "WJIT_LOG";

/// Installs the stderr subscriber if `WJIT_LOG` is set; an invalid filter is an error.
pub fn init() -> Result<(), String> {
    let Some(directives) = std::env::var_os(ENV) else {
        return Ok(());
    };
    let directives = directives.to_string_lossy();
    if directives.trim().is_empty() {
        return Ok(());
    }
    let filter = tracing_subscriber::EnvFilter::try_new(directives.as_ref())
        .map_err(|e| format!("{ENV}={directives}: {e}"))?;
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .try_init()
        .map_err(|e| format!("{ENV}: {e}"))
}
