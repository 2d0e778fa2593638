//! wjit beside its peers: kernel run time (`run`) and eager compile throughput
//! (`compile`) on wjit, wasmtime (Cranelift and Winch), wasmi and optionally wasmer
//! singlepass; and `difftest-eh`, a differential test of wjit's exception handling against
//! wasmtime. See `../README.md` and `--help`.

mod cli;
mod compile;
mod cpu;
mod difftest_eh;
mod engines;
mod kernels;
mod report;
mod run;
mod stats;

use anyhow::Result;
use cli::Mode;

fn main() {
    if let Err(e) = real_main() {
        eprintln!("error: {e:#}");
        std::process::exit(1);
    }
}

fn real_main() -> Result<()> {
    let opts = match cli::parse(std::env::args().skip(1)) {
        Ok(opts) => opts,
        Err(e) => {
            eprintln!("{}", cli::USAGE);
            return Err(e);
        }
    };
    if opts.help {
        println!("{}", cli::USAGE);
        return Ok(());
    }
    if let Mode::DifftestEh(eh) = &opts.mode {
        if !difftest_eh::run(eh)? {
            std::process::exit(1);
        }
        return Ok(());
    }
    let mut names = if opts.engines.is_empty() {
        engines::default_names()
    } else {
        opts.engines.clone()
    };
    if opts.no_cranelift {
        names.retain(|n| n != engines::BASELINE);
    }
    let peers = engines::create(&names)?;
    anyhow::ensure!(!peers.is_empty(), "no engines selected");
    let report = match &opts.mode {
        Mode::Run => {
            let dir = opts.kernels.clone().unwrap_or_else(kernels::default_dir);
            let kernels = kernels::load(&dir, &opts.only)?;
            run::run(&peers, &kernels, opts.reps)?
        }
        Mode::Compile(files) => compile::compile(&peers, files, opts.reps)?,
        Mode::DifftestEh(_) => unreachable!("handled above"),
    };
    println!("{report}");
    Ok(())
}
