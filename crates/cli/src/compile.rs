//! `wjit compile FILE`: compiles a module ahead of time into a `.cwasm` file
//! (`Engine::precompile_module`), or with `--summary` / `--disasm` prints its code sizes
//! or its machine code under the wasm operators it came from (`wjit::CodeListing`,
//! rendered by `wjit-explore`); and the loading of `.cwasm` files by `wjit run
//! --allow-precompiled` (`Module::deserialize`).

use std::io::Write as _;
use std::path::{Path, PathBuf};

use clap::Args;
use wjit::{CodeListing, Config, Engine, Module, Target};
use wjit_explore::{FuncSelector, ListingOptions};

use crate::{apply_wasm_options, Failure};

#[derive(Args)]
pub(crate) struct CompileArgs {
    /// Where to write the precompiled module (default: FILE with the extension `.cwasm`;
    /// with --disasm or --summary, no file unless given)
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

    /// Print each function's machine code, disassembled, under the wasm operators (with
    /// their byte offsets) it was compiled from, then the module summary
    #[arg(long)]
    disasm: bool,

    /// Print each function's wasm and machine code sizes and a module summary (functions,
    /// wasm bytes, code bytes, compile time)
    #[arg(long, conflicts_with = "disasm")]
    summary: bool,

    /// With --disasm or --summary, only this function: its index (imports count) or its
    /// name (name section or export)
    #[arg(long = "func", value_name = "NAME|INDEX")]
    func: Option<FuncSelector>,

    /// With --disasm or --summary, compile for this instruction set: x86_64 (x64) or
    /// aarch64 (arm64). Default: this machine's. Both backends are built into every wjit
    #[arg(long, value_name = "ISA", value_parser = parse_target)]
    target: Option<Target>,

    /// With --disasm, show each instruction's bytes
    #[arg(long, requires = "disasm")]
    bytes: bool,

    /// The module to compile: binary WebAssembly (.wasm) or text format (.wat)
    #[arg(value_name = "FILE")]
    file: PathBuf,
}

fn parse_target(text: &str) -> Result<Target, String> {
    text.parse::<Target>().map_err(|e| e.to_string())
}

/// Runs `wjit compile`.
pub(crate) fn compile(args: &CompileArgs) -> Result<u8, Failure> {
    let listing = args.disasm || args.summary;
    if !listing && (args.func.is_some() || args.target.is_some()) {
        return Err(Failure::usage(
            "--func and --target go with --disasm or --summary (precompiled files are for \
             this machine)",
        ));
    }
    if args.output.is_some() && args.target.is_some_and(|t| t != Target::host()) {
        return Err(Failure::usage(format!(
            "-o writes a precompiled module for this machine ({}), not --target {}",
            Target::host(),
            args.target.map_or("", |t| t.name())
        )));
    }
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
    if listing {
        print_listing(args, &engine, &bytes)?;
    }
    if !listing || args.output.is_some() {
        let compiled =
            crate::progress::precompile_module(&engine, path, &bytes).map_err(Failure::usage)?;
        let output = args
            .output
            .clone()
            .unwrap_or_else(|| path.with_extension("cwasm"));
        std::fs::write(&output, compiled)
            .map_err(|e| Failure::usage(format!("cannot write {}: {e}", output.display())))?;
    }
    Ok(0)
}

/// `--disasm` / `--summary`: the listing of the module in `bytes` on stdout.
fn print_listing(args: &CompileArgs, engine: &Engine, bytes: &[u8]) -> Result<(), Failure> {
    let path = &args.file;
    let target = args.target.unwrap_or_else(Target::host);
    let listing = CodeListing::compile(engine, bytes, target)
        .map_err(|e| Failure::usage(format!("{}: {e}", path.display())))?;
    let options = ListingOptions {
        func: args.func.clone(),
        bytes: args.bytes,
    };
    let text = if args.disasm {
        wjit_explore::disassembly(&listing, &options)
    } else {
        wjit_explore::summary(&listing, &options)
    }
    .map_err(|e| Failure::usage(format!("{}: {e}", path.display())))?;
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        // A closed pipe (`| head`) is the reader's choice, not an error.
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => {
            Err(Failure::usage(format!("cannot write the listing: {e}")))
        }
        _ => Ok(()),
    }
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
