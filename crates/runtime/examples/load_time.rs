//! Times `Module::new` on a module file: `cargo run --release -p wjit --example load_time --
//! FILE [lazy|eager|both] [ROUNDS] [threads=1]`. Prints the median wall time per mode.

use std::time::Instant;
use wjit::{Config, Engine, Module};

fn main() -> Result<(), wjit::Error> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some(path) = args.first() else {
        eprintln!("usage: load_time FILE [lazy|eager|both] [ROUNDS] [threads=1]");
        std::process::exit(2);
    };
    let bytes = std::fs::read(path)?;
    let modes = match args.get(1).map(String::as_str) {
        Some("lazy") => vec![true],
        Some("eager") => vec![false],
        _ => vec![true, false],
    };
    let rounds: usize = args.get(2).and_then(|r| r.parse().ok()).unwrap_or(5);
    let single_thread = args.iter().any(|a| a == "threads=1");
    for lazy in modes {
        let mut config = Config::new();
        config
            .lazy_compilation(lazy)
            .parallel_compilation(!single_thread);
        let engine = Engine::new(&config)?;
        let mut times = Vec::new();
        for _ in 0..rounds {
            let start = Instant::now();
            let module = Module::new(&engine, &bytes)?;
            times.push(start.elapsed().as_secs_f64() * 1000.0);
            drop(module);
        }
        times.sort_by(f64::total_cmp);
        println!(
            "{path}: {} bytes, {}{}: median {:.1} ms (min {:.1}, max {:.1}) over {rounds}",
            bytes.len(),
            if lazy { "lazy" } else { "eager" },
            if single_thread { ", 1 thread" } else { "" },
            times[rounds / 2],
            times[0],
            times[rounds - 1]
        );
    }
    Ok(())
}
