//! `run` mode: each kernel's `run(n)` on every engine, interleaved call by call, with
//! the checksums compared across engines and repetitions.

use crate::cpu;
use crate::engines::{Kernel, Peer, BASELINE};
use crate::kernels::KernelSpec;
use crate::report::{ratio, Conditions, Table};
use crate::stats::{geomean, median};
use anyhow::{bail, Context, Result};
use std::time::Duration;

/// The measurements of one kernel.
struct KernelResult {
    name: String,
    n: i32,
    checksum: i32,
    /// The median run time per engine, in the order of the engines.
    medians: Vec<Duration>,
}

/// Measures every kernel on every engine `reps` times and returns the markdown report.
///
/// Fails if an engine cannot compile or run a kernel, or if the engines (or two calls on
/// one engine) disagree on a checksum.
pub fn run(peers: &[Box<dyn Peer>], kernels: &[KernelSpec], reps: usize) -> Result<String> {
    let conditions = Conditions::capture();
    let mut results = Vec::new();
    for kernel in kernels {
        results.push(measure_kernel(peers, kernel, reps)?);
    }
    Ok(render(peers, &results, reps, &conditions))
}

/// Loads `kernel` on every engine, then calls `run(n)` round-robin over the engines
/// `reps` times, checking every checksum against the first.
fn measure_kernel(
    peers: &[Box<dyn Peer>],
    kernel: &KernelSpec,
    reps: usize,
) -> Result<KernelResult> {
    eprintln!("{}: compiling on {} engines", kernel.name, peers.len());
    let mut instances: Vec<Box<dyn Kernel>> = Vec::new();
    for peer in peers {
        let instance = peer
            .load(&kernel.wasm)
            .with_context(|| format!("{} on {}", kernel.name, peer.name()))?;
        instances.push(instance);
    }
    let mut times = vec![Vec::with_capacity(reps); peers.len()];
    let mut expected: Option<(i32, &str)> = None;
    for rep in 0..reps {
        eprint!("{}: rep {}/{reps}:", kernel.name, rep + 1);
        for (i, (peer, instance)) in peers.iter().zip(&mut instances).enumerate() {
            let (checksum, time) = cpu::measure(|| instance.run(kernel.n));
            let checksum = checksum.with_context(|| {
                format!("{}: run({}) on {}", kernel.name, kernel.n, peer.name())
            })?;
            eprint!(" {} {:.0} ms", peer.name(), ms(time));
            match expected {
                None => expected = Some((checksum, peer.name())),
                Some((want, first)) if want != checksum => {
                    eprintln!();
                    bail!(
                        "CHECKSUM MISMATCH on {}: run({}) returned {checksum} on {} but {want} on {first}",
                        kernel.name,
                        kernel.n,
                        peer.name()
                    );
                }
                Some(_) => {}
            }
            times[i].push(time);
        }
        eprintln!();
    }
    Ok(KernelResult {
        name: kernel.name.clone(),
        n: kernel.n,
        checksum: expected.map_or(0, |(c, _)| c),
        medians: times.iter().map(|t| median(t)).collect(),
    })
}

/// The report: ratios to the baseline engine (wasmtime-cranelift, or the first engine if
/// it was not run), then every engine's median milliseconds.
fn render(
    peers: &[Box<dyn Peer>],
    results: &[KernelResult],
    reps: usize,
    conditions: &Conditions,
) -> String {
    let names: Vec<&str> = peers.iter().map(|p| p.name()).collect();
    let base = names.iter().position(|&n| n == BASELINE).unwrap_or(0);
    let mut out = format!(
        "Run time of `run(n)`: process CPU time, median of {reps} calls per engine, engines \
         interleaved call by call; ratio to {} (lower is better).\n{}\n\n",
        names[base],
        conditions.describe()
    );

    let mut header = vec!["kernel".to_string(), format!("{} ms", names[base])];
    header.extend(
        names
            .iter()
            .enumerate()
            .filter(|&(i, _)| i != base)
            .map(|(_, n)| n.to_string()),
    );
    let mut table = Table::new(header);
    for r in results {
        let base_ms = ms(r.medians[base]);
        let mut row = vec![r.name.clone(), format!("{base_ms:.0}")];
        row.extend(
            (0..names.len())
                .filter(|&i| i != base)
                .map(|i| ratio(ms(r.medians[i]) / base_ms)),
        );
        table.row(row);
    }
    let mut geo = vec!["**geomean**".to_string()];
    geo.push(bold(format!(
        "{:.0}",
        geomean(results.iter().map(|r| ms(r.medians[base]))).unwrap_or(0.0)
    )));
    for i in (0..names.len()).filter(|&i| i != base) {
        let g = geomean(
            results
                .iter()
                .map(|r| ms(r.medians[i]) / ms(r.medians[base])),
        );
        geo.push(bold(ratio(g.unwrap_or(0.0))));
    }
    table.row(geo);
    out += &table.render();

    out += "\nMedian milliseconds per engine, with the checksum every engine returned:\n\n";
    let mut header = vec![
        "kernel".to_string(),
        "n".to_string(),
        "checksum".to_string(),
    ];
    header.extend(names.iter().map(|n| n.to_string()));
    let mut table = Table::new(header);
    for r in results {
        let mut row = vec![r.name.clone(), r.n.to_string(), r.checksum.to_string()];
        row.extend(r.medians.iter().map(|&t| format!("{:.1}", ms(t))));
        table.row(row);
    }
    out += &table.render();
    out
}

fn ms(time: Duration) -> f64 {
    time.as_secs_f64() * 1e3
}

fn bold(cell: String) -> String {
    format!("**{cell}**")
}
