//! `compile` mode: eager compile throughput of whole modules, in MB (10^6 bytes) of
//! wasm per second of process CPU time.

use crate::cpu;
use crate::engines::Peer;
use crate::report::{Conditions, Table};
use crate::stats::median;
use anyhow::{Context, Result};
use std::path::PathBuf;
use std::time::Duration;

/// One module's measurements.
struct ModuleResult {
    name: String,
    bytes: usize,
    /// Per engine, the median compile time, or the error of its first attempt.
    medians: Vec<Result<Duration, String>>,
}

/// Compiles every file on every engine `reps` times, engines interleaved, and returns
/// the markdown report. An engine failing on a module shows as `fail` in its cell (the
/// error goes to stderr); the other engines are still measured.
pub fn compile(peers: &[Box<dyn Peer>], files: &[PathBuf], reps: usize) -> Result<String> {
    let conditions = Conditions::capture();
    let mut results = Vec::new();
    for file in files {
        let wasm = std::fs::read(file).with_context(|| format!("reading {}", file.display()))?;
        let name = file.file_name().map_or_else(
            || file.display().to_string(),
            |n| n.to_string_lossy().into_owned(),
        );
        results.push(measure_module(peers, &name, &wasm, reps));
    }
    Ok(render(peers, &results, reps, &conditions))
}

/// Compiles `wasm` round-robin over the engines `reps` times. The compiled module is
/// dropped outside the timed region.
fn measure_module(peers: &[Box<dyn Peer>], name: &str, wasm: &[u8], reps: usize) -> ModuleResult {
    let mut times: Vec<Result<Vec<Duration>, String>> = vec![Ok(Vec::new()); peers.len()];
    for rep in 0..reps {
        eprint!("{name}: rep {}/{reps}:", rep + 1);
        for (peer, slot) in peers.iter().zip(&mut times) {
            let Ok(samples) = slot else { continue };
            let (compiled, time) = cpu::measure(|| peer.compile(wasm));
            match compiled {
                Ok(module) => {
                    samples.push(time);
                    eprint!(" {} {:.0} ms", peer.name(), time.as_secs_f64() * 1e3);
                    drop(module);
                }
                Err(e) => {
                    eprint!("\n{name}: {} failed: {e:#}\n", peer.name());
                    *slot = Err(format!("{e:#}"));
                }
            }
        }
        eprintln!();
    }
    ModuleResult {
        name: name.to_string(),
        bytes: wasm.len(),
        medians: times
            .into_iter()
            .map(|t| t.map(|samples| median(&samples)))
            .collect(),
    }
}

fn render(
    peers: &[Box<dyn Peer>],
    results: &[ModuleResult],
    reps: usize,
    conditions: &Conditions,
) -> String {
    let mut out = format!(
        "Eager compile throughput: MB (10^6 bytes) of wasm per second of process CPU time, \
         median of {reps}, engines interleaved, single-threaded compilation (higher is better).\n{}\n\n",
        conditions.describe()
    );
    let mut header = vec!["module".to_string(), "MB".to_string()];
    header.extend(peers.iter().map(|p| p.name().to_string()));
    let mut table = Table::new(header);
    for r in results {
        let mb = r.bytes as f64 / 1e6;
        let mut row = vec![r.name.clone(), format!("{mb:.2}")];
        row.extend(r.medians.iter().map(|m| match m {
            Ok(t) => format!("{:.1}", mb / t.as_secs_f64()),
            Err(_) => "fail".to_string(),
        }));
        table.row(row);
    }
    out += &table.render();
    for r in results {
        for (peer, m) in peers.iter().zip(&r.medians) {
            if let Err(e) = m {
                out += &format!("\n{} on {}: {e}", peer.name(), r.name);
            }
        }
    }
    out
}
