//! Where wjit's eager compile time goes, per module: process CPU time of
//! (a) decoding every operator of every body (wasmparser, nothing else),
//! (b) decoding and validating the module (wasmparser's `Validator`, one thread),
//! (c) wjit's eager single-threaded `Module::new`, split by its own `tracing` events into
//!     parse (sections), compile (decode + validate + emit, one pass per body) and place
//!     (copy into executable memory, resolve calls).
//! (Text files are accepted too.) Emit is then roughly compile - (b). Medians of RUNS runs
//! (default 5); MB are 10^6 bytes of the whole module.
//!
//! `cargo run --release -p wjit-benches --example compile_phases -- FILE.wasm...`
//! The phases are wall-clock times (wjit's events), the totals CPU time and wall-clock time.
//! (`WJIT_PHASES_RUNS=N` sets the number of runs; `WJIT_PHASES_PARALLEL=1` compiles on all
//! cores (compare the wall-clock columns); `WJIT_PHASES_WJIT_ONLY=1` skips (a) and
//! (b), to profile wjit alone; `WJIT_PHASES_HASH=1` only prints a hash and the size of
//! each module's machine code for x86-64 and aarch64, to check that a compile-speed
//! change left the generated code byte for byte the same, and the median wall-clock time
//! of compiling it for each, single-threaded, without placing the code)

use std::sync::{Arc, Mutex};
use std::time::Duration;
use tracing::field::{Field, Visit};
use tracing_subscriber::layer::{Context, SubscriberExt};
use tracing_subscriber::Layer;
use wasmparser::{Parser, Payload, VisitOperator, VisitSimdOperator};
use wjit::{CodeListing, Config, Engine, Module, Target};

#[path = "common/cpu.rs"]
#[allow(dead_code)]
mod cpu;
use cpu::cpu_time;

/// CPU time of `f`.
fn measure<T>(f: impl FnOnce() -> T) -> (T, Duration) {
    let start = cpu_time();
    let out = f();
    (out, cpu_time() - start)
}

/// A visitor that decodes and drops every operator.
struct Ignore;

macro_rules! define_ignore {
    ($( @$proposal:ident $op:ident $({ $($arg:ident: $argty:ty),* })? => $visit:ident ($($ann:tt)*))*) => {
        $(
            #[inline]
            fn $visit(&mut self $($(,$arg: $argty)*)?) {
                $($(let _ = $arg;)*)?
            }
        )*
    };
}

impl<'a> VisitOperator<'a> for Ignore {
    type Output = ();
    fn simd_visitor(&mut self) -> Option<&mut dyn VisitSimdOperator<'a, Output = ()>> {
        Some(self)
    }
    wasmparser::for_each_visit_operator!(define_ignore);
}

impl VisitSimdOperator<'_> for Ignore {
    wasmparser::for_each_visit_simd_operator!(define_ignore);
}

/// Decodes every operator of every function body.
fn decode_only(wasm: &[u8]) -> wasmparser::Result<usize> {
    let mut ops = 0;
    for payload in Parser::new(0).parse_all(wasm) {
        if let Payload::CodeSectionEntry(body) = payload? {
            let mut reader = body.get_operators_reader()?;
            while !reader.eof() {
                reader.visit_operator(&mut Ignore)?;
                ops += 1;
            }
        }
    }
    Ok(ops)
}

/// The durations of wjit's `module parsed`, `module compiled` and `module code placed`
/// events, caught from their `time` field.
#[derive(Default, Clone)]
struct Phases(Arc<Mutex<Vec<(String, Duration)>>>);

/// The `message` and `time` fields of an event.
#[derive(Default)]
struct Fields {
    message: String,
    time: Option<String>,
}

impl Visit for Fields {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        match field.name() {
            "message" => self.message = format!("{value:?}"),
            "time" => self.time = Some(format!("{value:?}")),
            _ => {}
        }
    }
}

/// Parses a `Duration`'s Debug text (`1.5ms`, `20µs`, `1.2s`, `300ns`).
fn parse_duration(s: &str) -> Option<Duration> {
    let split = s.find(|c: char| !(c.is_ascii_digit() || c == '.'))?;
    let (num, unit) = s.split_at(split);
    let v: f64 = num.parse().ok()?;
    let secs = match unit {
        "s" => v,
        "ms" => v / 1e3,
        "µs" => v / 1e6,
        "ns" => v / 1e9,
        _ => return None,
    };
    Some(Duration::from_secs_f64(secs))
}

impl<S: tracing::Subscriber> Layer<S> for Phases {
    fn on_event(&self, event: &tracing::Event<'_>, _: Context<'_, S>) {
        let mut fields = Fields::default();
        event.record(&mut fields);
        if let Some(d) = fields.time.as_deref().and_then(parse_duration) {
            if let Ok(mut v) = self.0.lock() {
                v.push((fields.message, d));
            }
        }
    }
}

/// FNV-1a over every function's index and code, in order, the code's size in bytes, and
/// the listing's compile time (parse, validate and compile, recording operator offsets,
/// without placing the code).
fn code_hash(
    engine: &Engine,
    wasm: &[u8],
    target: Target,
) -> Result<(u64, usize, Duration), wjit::Error> {
    let listing = CodeListing::compile(engine, wasm, target)?;
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let mut size = 0;
    for f in listing.functions() {
        size += f.code().len();
        for b in f.index().to_le_bytes().iter().chain(f.code()) {
            h = (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3);
        }
    }
    Ok((h, size, listing.compile_time()))
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v.get(v.len() / 2).copied().unwrap_or_default()
}

fn mbps(bytes: usize, d: Duration) -> f64 {
    bytes as f64 / 1e6 / d.as_secs_f64()
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let runs: usize = std::env::var("WJIT_PHASES_RUNS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(5);
    let wjit_only = std::env::var_os("WJIT_PHASES_WJIT_ONLY").is_some();
    let phases = Phases::default();
    let subscriber = tracing_subscriber::registry().with(
        phases
            .clone()
            .with_filter(tracing_subscriber::filter::LevelFilter::DEBUG),
    );
    tracing::subscriber::set_global_default(subscriber)?;

    let mut config = Config::new();
    let parallel = std::env::var_os("WJIT_PHASES_PARALLEL").is_some();
    config
        .lazy_compilation(false)
        .parallel_compilation(parallel);
    let engine = Engine::new(&config)?;

    if std::env::var_os("WJIT_PHASES_HASH").is_some() {
        for file in std::env::args().skip(1) {
            let wasm = wat::parse_file(&file)?;
            let mut line = format!("{file}:");
            for (name, target) in [("x86_64", Target::X86_64), ("aarch64", Target::Aarch64)] {
                let mut times = Vec::new();
                let mut hash_and_size = (0, 0);
                for _ in 0..runs {
                    let (hash, size, time) = code_hash(&engine, &wasm, target)?;
                    hash_and_size = (hash, size);
                    times.push(time);
                }
                let (hash, size) = hash_and_size;
                let time = median(times);
                line += &format!(
                    " {name} {hash:016x} ({size} bytes, compiled in {:.1} ms: {:.1} MB/s)",
                    time.as_secs_f64() * 1e3,
                    mbps(wasm.len(), time)
                );
            }
            println!("{line}");
        }
        return Ok(());
    }
    println!(
        "| module | MB | operators | decode | validate | wjit total | parse | compile | place | \
         emit ~ compile - validate | compile ns/op | wjit MB/s (CPU) | wall | MB/s (wall) |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for file in std::env::args().skip(1) {
        let wasm = wat::parse_file(&file)?;
        let (mut decode, mut validate, mut total, mut wall) = (vec![], vec![], vec![], vec![]);
        let (mut parse, mut compile, mut place) = (vec![], vec![], vec![]);
        let mut operators = None;
        for _ in 0..runs {
            if !wjit_only {
                let (ops, t) = measure(|| decode_only(&wasm));
                operators = Some(ops?);
                decode.push(t);
                let (r, t) = measure(|| wasmparser::Validator::new().validate_all(&wasm));
                r?;
                validate.push(t);
            }
            if let Ok(mut v) = phases.0.lock() {
                v.clear();
            }
            let started = std::time::Instant::now();
            let (module, t) = measure(|| Module::new(&engine, &wasm));
            wall.push(started.elapsed());
            drop(module?);
            total.push(t);
            let events = phases.0.lock().map(|v| v.clone()).unwrap_or_default();
            let find = |name: &str| {
                events
                    .iter()
                    .find(|(m, _)| m.starts_with(name))
                    .map(|(_, d)| *d)
                    .unwrap_or_default()
            };
            parse.push(find("module parsed"));
            compile.push(find("module compiled"));
            place.push(find("module code placed"));
        }
        let ms = |d: Duration| format!("{:.1} ms", d.as_secs_f64() * 1e3);
        let (total_m, validate_m, compile_m) = (median(total), median(validate), median(compile));
        let wall_m = median(wall);
        let (ops_text, ns_per_op) = match operators {
            Some(n) if n > 0 => (
                n.to_string(),
                format!("{:.0}", compile_m.as_secs_f64() * 1e9 / n as f64),
            ),
            _ => ("-".to_string(), "-".to_string()),
        };
        println!(
            "| {} | {:.2} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {:.1} | {} | {:.1} |",
            std::path::Path::new(&file)
                .file_name()
                .map_or(file.clone(), |n| n.to_string_lossy().into_owned()),
            wasm.len() as f64 / 1e6,
            ops_text,
            ms(median(decode)),
            ms(validate_m),
            ms(total_m),
            ms(median(parse)),
            ms(compile_m),
            ms(median(place)),
            ms(compile_m.saturating_sub(validate_m)),
            ns_per_op,
            mbps(wasm.len(), total_m),
            ms(wall_m),
            mbps(wasm.len(), wall_m),
        );
    }
    Ok(())
}
