//! The benchmark kernels: `params.txt` and `wasm/NAME.wasm` in a kernel directory.

use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};

/// One kernel: its name, the argument of `run` and the module bytes.
pub struct KernelSpec {
    /// The kernel's name, e.g. `fib`.
    pub name: String,
    /// The argument passed to `run(n)`.
    pub n: i32,
    /// The wasm module.
    pub wasm: Vec<u8>,
}

/// The default kernel directory: `../shared/bench/kernels` beside the repository root.
pub fn default_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/bench/kernels")
}

/// Reads the kernels listed in `dir/params.txt` (lines `NAME N`, `#` comments), in file
/// order, keeping only those named in `only` if it is not empty.
pub fn load(dir: &Path, only: &[String]) -> Result<Vec<KernelSpec>> {
    let params_path = dir.join("params.txt");
    let params = std::fs::read_to_string(&params_path)
        .with_context(|| format!("reading {}", params_path.display()))?;
    let mut kernels = Vec::new();
    for (name, n) in parse_params(&params)? {
        if !only.is_empty() && !only.contains(&name) {
            continue;
        }
        let path = dir.join("wasm").join(format!("{name}.wasm"));
        let wasm = std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
        kernels.push(KernelSpec { name, n, wasm });
    }
    for name in only {
        if !kernels.iter().any(|k| &k.name == name) {
            bail!("kernel `{name}` is not in {}", params_path.display());
        }
    }
    Ok(kernels)
}

/// Parses `params.txt`: one `NAME N` pair per line, blank lines and `#` comments ignored.
fn parse_params(text: &str) -> Result<Vec<(String, i32)>> {
    let mut params = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.split('#').next().unwrap_or("").trim();
        if line.is_empty() {
            continue;
        }
        let fields: Vec<&str> = line.split_whitespace().collect();
        let [name, n] = fields[..] else {
            bail!("params.txt line {}: expected `NAME N`", i + 1);
        };
        let n = n
            .parse()
            .with_context(|| format!("params.txt line {}: bad n `{n}`", i + 1))?;
        params.push((name.to_string(), n));
    }
    Ok(params)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn params() {
        let p = parse_params("# kernel n\nfib 40\n\nsieve  64 # comment\n").unwrap();
        assert_eq!(p, vec![("fib".to_string(), 40), ("sieve".to_string(), 64)]);
        assert!(parse_params("fib\n").is_err());
        assert!(parse_params("fib x\n").is_err());
    }
}
