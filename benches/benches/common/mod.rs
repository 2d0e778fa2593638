//! Shared helpers: locating the benchmark kernels in `<workspace>/../shared/bench/kernels`.

#![allow(dead_code)]

use std::path::PathBuf;

/// One prebuilt kernel module.
pub struct Kernel {
    pub name: String,
    pub wasm: Vec<u8>,
    /// `n` from params.txt (tuned for ~0.5 s on an optimizing compiler), if listed.
    pub n: Option<i32>,
}

/// `WJIT_BENCH_KERNELS`, or `<workspace>/../shared/bench/kernels`.
pub fn kernels_dir() -> PathBuf {
    match std::env::var_os("WJIT_BENCH_KERNELS") {
        Some(d) if !d.is_empty() => PathBuf::from(d),
        _ => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/bench/kernels"),
    }
}

/// All kernels in `kernels/wasm/*.wasm`, sorted by name; `None` (after printing why) if the
/// directory is missing.
pub fn kernels() -> Option<Vec<Kernel>> {
    let dir = kernels_dir();
    let wasm_dir = dir.join("wasm");
    let entries = match std::fs::read_dir(&wasm_dir) {
        Ok(e) => e,
        Err(e) => {
            eprintln!(
                "skipping kernel benchmarks: cannot read {}: {e} (set WJIT_BENCH_KERNELS to the kernels directory)",
                wasm_dir.display()
            );
            return None;
        }
    };
    let params = std::fs::read_to_string(dir.join("params.txt")).unwrap_or_default();
    let mut kernels: Vec<Kernel> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "wasm"))
        .filter_map(|p| {
            let name = p.file_stem()?.to_string_lossy().into_owned();
            let wasm = std::fs::read(&p).ok()?;
            let n = param(&params, &name);
            Some(Kernel { name, wasm, n })
        })
        .collect();
    kernels.sort_by(|a, b| a.name.cmp(&b.name));
    Some(kernels)
}

fn param(params: &str, name: &str) -> Option<i32> {
    params.lines().find_map(|line| {
        let line = line.split('#').next()?;
        let mut words = line.split_whitespace();
        (words.next()? == name).then(|| words.next()?.parse().ok())?
    })
}
