//! `wjit compile FILE -o OUT.cwasm`: compiles a module ahead of time
//! (`Engine::precompile_module`), and the loading of such files by `wjit run
//! --allow-precompiled` (`Module::deserialize`).

use std::path::{Path, PathBuf};

use clap::Args;
use wjit::{Config, Engine, Module};

use crate::{apply_wasm_options, Failure};

#[derive(Args)]
pub(crate) struct CompileArgs {
    /// Where to write the precompiled module (default: FILE with the extension `.cwasm`)
    #[arg(short = 'o', long = "output", value_name = "OUT")]
    output: Option<PathBuf>,

    /// Switch a wasm proposal on or off, as for `wjit run` (the settings must match the
    /// ones the file is run with)
    #[arg(short = 'W', long = "wasm", value_name = "NAME[=y|n]")]
    wasm: Vec<String>,

    /// Compile fuel accounting in, for `wjit run --fuel`
    #[arg(long)]
    consume_fuel: bool,

    /// Compile epoch checks in, for `wjit run --timeout`
    #[arg(long)]
    epoch_interruption: bool,

    /// The module to compile: binary WebAssembly (.wasm) or text format (.wat)
    #[arg(value_name = "FILE")]
    file: PathBuf,
}

/// Runs `wjit compile`.
pub(crate) fn compile(args: &CompileArgs) -> Result<u8, Failure> {
    let mut config = Config::new();
    config
        .consume_fuel(args.consume_fuel)
        .epoch_interruption(args.epoch_interruption);
    apply_wasm_options(&mut config, &args.wasm).map_err(Failure::usage)?;
    let engine = Engine::new(&config).map_err(|e| Failure::usage(e.to_string()))?;
    let path = &args.file;
    let bytes = std::fs::read(path)
        .map_err(|e| Failure::usage(format!("cannot read {}: {e}", path.display())))?;
    if engine.detect_precompiled(&bytes).is_some() {
        return Err(Failure::usage(format!(
            "{} is already a precompiled module",
            path.display()
        )));
    }
    let compiled =
        crate::progress::precompile_module(&engine, path, &bytes).map_err(Failure::usage)?;
    let output = args
        .output
        .clone()
        .unwrap_or_else(|| path.with_extension("cwasm"));
    std::fs::write(&output, compiled)
        .map_err(|e| Failure::usage(format!("cannot write {}: {e}", output.display())))?;
    Ok(0)
}

/// The module in `bytes` if they are a precompiled module: loaded when `allow` (the user
/// passed `--allow-precompiled`), refused otherwise. `None` for wasm or text.
pub(crate) fn load_precompiled(
    engine: &Engine,
    path: &Path,
    bytes: &[u8],
    allow: bool,
) -> Option<Result<Module, Failure>> {
    engine.detect_precompiled(bytes)?;
    if !allow {
        return Some(Err(Failure::usage(format!(
            "{} is a precompiled module: its machine code runs unchecked, so running one \
             needs --allow-precompiled (use it only for files from a trusted `wjit compile`)",
            path.display()
        ))));
    }
    // SAFETY: the user vouched for the file with --allow-precompiled; format, version,
    // settings and CPU are checked by `deserialize`.
    let module = unsafe { Module::deserialize(engine, bytes) };
    Some(module.map_err(|e| {
        let mut msg = format!("{}: {e}", path.display());
        if msg.contains("consume-fuel") || msg.contains("epoch-interruption") {
            msg.push_str(
                " (`wjit compile --consume-fuel` matches `run --fuel`, \
                 `--epoch-interruption` matches `run --timeout`)",
            );
        }
        Failure::usage(msg)
    }))
}
