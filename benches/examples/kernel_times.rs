//! Runs every kernel of `../shared/bench/kernels` with its full `params.txt` argument and
//! prints the checksum and the median of 5 calls (milliseconds of process CPU time), for
//! comparing with native builds and with the peer engines in `peers.md`.
//!
//! `cargo run --release -p wjit-benches --example kernel_times [KERNEL...]`

use wjit::{Engine, Instance, Module, Store};

#[path = "common/cpu.rs"]
#[allow(dead_code)]
mod cpu;
use cpu::cpu_ms;

fn main() {
    let dir = std::env::var("WJIT_BENCH_KERNELS").unwrap_or_else(|_| {
        concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/bench/kernels").to_string()
    });
    let params = std::fs::read_to_string(format!("{dir}/params.txt")).expect("params.txt");
    let only: Vec<String> = std::env::args().skip(1).collect();
    let engine = Engine::default();
    println!(
        "{:<12} {:>12} {:>10} {:>12}",
        "kernel", "n", "median_ms", "checksum"
    );
    for line in params
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
    {
        let mut parts = line.split_whitespace();
        let (Some(name), Some(n)) = (parts.next(), parts.next()) else {
            continue;
        };
        if !only.is_empty() && !only.iter().any(|o| o == name) {
            continue;
        }
        let n: i32 = n.parse().expect("n");
        let wasm = std::fs::read(format!("{dir}/wasm/{name}.wasm")).expect("kernel");
        let module = Module::new(&engine, &wasm).expect("compile");
        let mut store = Store::new(&engine, ());
        let inst = Instance::new(&mut store, &module, &[]).expect("instantiate");
        let run = inst.get_typed_func::<i32, i32>(&store, "run").expect("run");
        let mut times = Vec::new();
        let mut checksum = 0;
        for _ in 0..5 {
            let t = cpu_ms();
            checksum = run.call(&mut store, n).expect("run");
            times.push(cpu_ms() - t);
        }
        times.sort_by(|a, b| a.total_cmp(b));
        println!("{name:<12} {n:>12} {:>10.1} {checksum:>12}", times[2]);
    }
}
