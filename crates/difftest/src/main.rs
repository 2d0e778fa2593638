//! `difftest`: differential testing of wjit against wasmi on generated modules.
//!
//! ```text
//! difftest [--mode run|mutate|threads|simd|all] [--seeds START..END] [--secs N] [--out DIR]
//!          [--jobs N] [--timeout SECS] [--worker-exe PATH]
//! ```
//!
//! The parent process hands seed ranges to worker processes (this binary again, with
//! `--worker`), which report every seed on stdout. A worker that dies (a crash of wjit) or
//! spends more than `--timeout` seconds on one seed (a hang) is recorded as a divergence for
//! that seed and replaced by a new worker that goes on after it. Every divergence is written
//! to `OUT/SEED-MODE.wasm` with its reason in `OUT/SEED-MODE.txt`.

use difftest::{gen, run_seed, Mode, MODES};
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

struct Args {
    modes: Vec<Mode>,
    start: u64,
    end: u64,
    secs: Option<u64>,
    out: PathBuf,
    jobs: usize,
    timeout: u64,
    worker: bool,
    /// The binary the workers run (default: this one). Lets a native campaign drive workers
    /// built for another architecture (under `WJIT_TEST_CHILD_RUNNER`).
    worker_exe: Option<PathBuf>,
    /// Worker only: stop starting seeds after this unix time (ms).
    deadline_ms: Option<u64>,
}

fn usage() -> ! {
    eprintln!(
        "usage: difftest [--mode run|mutate|threads|simd|all] [--seeds START..END] [--secs N] \
         [--out DIR] [--jobs N] [--timeout SECS] [--worker-exe PATH]"
    );
    std::process::exit(2)
}

fn parse_args() -> Args {
    let mut a = Args {
        modes: MODES.to_vec(),
        start: 0,
        end: 1000,
        secs: None,
        out: PathBuf::from("target/difftest"),
        jobs: std::thread::available_parallelism().map_or(1, |n| n.get()),
        timeout: 60,
        worker: false,
        worker_exe: None,
        deadline_ms: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        let mut value = || it.next().unwrap_or_else(|| usage());
        match arg.as_str() {
            "--mode" => {
                let v = value();
                a.modes = if v == "all" {
                    MODES.to_vec()
                } else {
                    v.split(',')
                        .map(|m| Mode::parse(m).unwrap_or_else(|| usage()))
                        .collect()
                };
            }
            "--seeds" => {
                let v = value();
                let (s, e) = v.split_once("..").unwrap_or_else(|| usage());
                a.start = s.parse().unwrap_or_else(|_| usage());
                a.end = e.parse().unwrap_or_else(|_| usage());
            }
            "--secs" => a.secs = Some(value().parse().unwrap_or_else(|_| usage())),
            "--out" => a.out = PathBuf::from(value()),
            "--jobs" => a.jobs = value().parse::<usize>().unwrap_or_else(|_| usage()).max(1),
            "--timeout" => a.timeout = value().parse().unwrap_or_else(|_| usage()),
            "--worker" => a.worker = true,
            "--worker-exe" => a.worker_exe = Some(PathBuf::from(value())),
            "--deadline-ms" => a.deadline_ms = Some(value().parse().unwrap_or_else(|_| usage())),
            "-h" | "--help" => usage(),
            _ => usage(),
        }
    }
    a
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

fn mode_list(modes: &[Mode]) -> String {
    modes.iter().map(|m| m.name()).collect::<Vec<_>>().join(",")
}

/// Worker: runs the seeds in this process. First `simd 0|1` (whether its seeds may use SIMD),
/// then one line per seed and mode on stdout: `start MODE SEED`, then `ok MODE SEED CALLS REJECTED V128_CALLS OPS SIMD_OPS` or
/// `div MODE SEED CLASS REASON`.
fn worker(a: &Args) {
    let stdout = std::io::stdout();
    // For testing the runner: die (as a crashing JIT would) or hang at this seed (or, with
    // DIFFTEST_INJECT_EXIT_HANG, after the last one).
    let inject = |var: &str| std::env::var(var).ok().and_then(|s| s.parse::<u64>().ok());
    let (crash_at, hang_at) = (
        inject("DIFFTEST_INJECT_CRASH"),
        inject("DIFFTEST_INJECT_HANG"),
    );
    writeln!(stdout.lock(), "simd {}", gen::simd_target() as u8).unwrap();
    for seed in a.start..a.end {
        if a.deadline_ms.is_some_and(|d| now_ms() >= d) {
            break;
        }
        for &mode in &a.modes {
            let mut out = stdout.lock();
            writeln!(out, "start {} {seed}", mode.name()).unwrap();
            out.flush().unwrap();
            drop(out);
            if crash_at == Some(seed) {
                std::process::abort();
            }
            if hang_at == Some(seed) {
                std::thread::sleep(Duration::from_secs(3600));
            }
            let r = run_seed(seed, mode);
            let mut out = stdout.lock();
            match r.divergence {
                None => writeln!(
                    out,
                    "ok {} {seed} {} {} {} {} {}",
                    mode.name(),
                    r.calls,
                    r.rejected as u8,
                    r.v128_calls,
                    r.ops,
                    r.simd_ops
                ),
                Some((class, reason)) => {
                    writeln!(out, "div {} {seed} {class} {reason}", mode.name())
                }
            }
            .unwrap();
            out.flush().unwrap();
        }
    }
    println!("end");
    if std::env::var_os("DIFFTEST_INJECT_EXIT_HANG").is_some() {
        std::thread::sleep(Duration::from_secs(3600));
    }
}

#[derive(Default)]
struct Totals {
    /// Modules run per mode.
    modules: BTreeMap<&'static str, u64>,
    /// Mutate mode: modules both engines rejected.
    rejected: u64,
    calls: u64,
    /// Per mode: modules with SIMD operators, calls compared in them, calls with v128
    /// parameters or results, operators, SIMD operators (modules both engines accepted).
    simd: BTreeMap<&'static str, SimdTotals>,
    /// (mode, class) -> count
    divergences: BTreeMap<(&'static str, String), u64>,
    first_seed: Option<u64>,
    last_seed: Option<u64>,
    /// Workers that stopped reporting outside a seed (between seeds or on their way out).
    stalls: Vec<String>,
}

#[derive(Default, Clone, Copy)]
struct SimdTotals {
    modules: u64,
    calls: u64,
    v128_calls: u64,
    ops: u64,
    simd_ops: u64,
}

struct Shared {
    args: Args,
    next: AtomicU64,
    deadline: Option<Instant>,
    deadline_ms: Option<u64>,
    totals: Mutex<Totals>,
    /// Process ids of the running workers, for the watchdog.
    workers: Mutex<Vec<u32>>,
}

fn record_divergence(sh: &Shared, mode: Mode, seed: u64, class: &str, reason: &str) {
    let dir = &sh.args.out;
    let _ = std::fs::create_dir_all(dir);
    let stem = format!("{seed}-{}", mode.name());
    // The generator itself may be what crashed.
    let bytes = std::panic::catch_unwind(|| gen::module_for(seed, mode)).unwrap_or_default();
    let settings = gen::settings(seed, mode);
    let _ = std::fs::write(dir.join(format!("{stem}.wasm")), bytes);
    let _ = std::fs::write(
        dir.join(format!("{stem}.txt")),
        format!("{class}: {reason} [settings: {settings:?}]\n"),
    );
    eprintln!("DIVERGENCE {stem}: {class}: {reason}");
    let mut t = sh.totals.lock().unwrap();
    t.modules
        .entry(mode.name())
        .and_modify(|n| *n += 1)
        .or_insert(1);
    *t.divergences
        .entry((mode.name(), class.to_string()))
        .or_insert(0) += 1;
}

fn spawn_worker(sh: &Shared, start: u64, end: u64) -> Child {
    let exe = match &sh.args.worker_exe {
        Some(exe) => exe.clone(),
        None => std::env::current_exe().expect("current_exe"),
    };
    let shown = exe.display().to_string();
    // Under an emulator without binfmt_misc (qemu-user as cargo's runner), the worker must
    // run under it too.
    let runner = std::env::var("WJIT_TEST_CHILD_RUNNER").unwrap_or_default();
    let mut runner = runner.split_whitespace();
    let mut cmd = match runner.next() {
        Some(program) => {
            let mut c = Command::new(program);
            c.args(runner).arg(exe);
            c
        }
        None => Command::new(exe),
    };
    cmd.arg("--worker")
        .arg("--mode")
        .arg(mode_list(&sh.args.modes))
        .arg("--seeds")
        .arg(format!("{start}..{end}"));
    if let Some(d) = sh.deadline_ms {
        cmd.arg("--deadline-ms").arg(d.to_string());
    }
    // One spawn at a time: forking a multi-threaded process is where emulators (qemu-user
    // running this campaign) are most fragile.
    static SPAWN: Mutex<()> = Mutex::new(());
    let _one_at_a_time = SPAWN.lock().unwrap_or_else(|e| e.into_inner());
    let child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| {
            // E.g. the binary was replaced by a rebuild: end the campaign now, not at the
            // watchdog.
            eprintln!("difftest: cannot start a worker ({shown}): {e}");
            kill_workers_and_exit(sh)
        });
    sh.workers.lock().unwrap().push(child.id());
    child
}

enum Line {
    Out(String),
    Eof,
}

/// Runs `start..end` in workers, restarting after crashes and hangs.
fn run_chunk(sh: &Shared, start: u64, end: u64) {
    let mut from = start;
    while from < end {
        let mut child = spawn_worker(sh, from, end);
        let (tx, rx) = mpsc::channel();
        let stdout = child.stdout.take().unwrap();
        let tx2 = tx.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx2.send(Line::Out(line)).is_err() {
                    return;
                }
            }
            let _ = tx2.send(Line::Eof);
        });
        // The tail of the worker's stderr explains a crash (a panic message).
        let stderr_tail = Arc::new(Mutex::new(String::new()));
        let tail = stderr_tail.clone();
        let mut stderr = child.stderr.take().unwrap();
        let err_thread = std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = stderr.read(&mut buf) {
                if n == 0 {
                    break;
                }
                let mut t = tail.lock().unwrap();
                t.push_str(&String::from_utf8_lossy(&buf[..n]));
                if t.len() > 4000 {
                    let cut = t.len() - 2000;
                    let cut = (cut..t.len()).find(|&i| t.is_char_boundary(i)).unwrap();
                    t.drain(..cut);
                }
            }
        });
        drop(tx);
        let mut running: Option<(Mode, u64)> = None;
        let mut last_done: Option<u64> = None;
        let mut finished = false;
        let mut hung = false;
        loop {
            match rx.recv_timeout(Duration::from_secs(sh.args.timeout)) {
                Ok(Line::Out(line)) => {
                    let mut parts = line.splitn(5, ' ');
                    let kind = parts.next().unwrap_or("");
                    if kind == "end" {
                        finished = true;
                        continue;
                    }
                    if kind == "simd" {
                        // Generate as the worker does, for the modules of divergences.
                        gen::set_simd_target(parts.next() == Some("1"));
                        continue;
                    }
                    let mode = parts.next().and_then(Mode::parse);
                    let seed = parts.next().and_then(|s| s.parse::<u64>().ok());
                    let (Some(mode), Some(seed)) = (mode, seed) else {
                        continue;
                    };
                    match kind {
                        "start" => running = Some((mode, seed)),
                        "ok" => {
                            running = None;
                            last_done = Some(seed);
                            let mut nums = parts
                                .by_ref()
                                .flat_map(|s| s.split(' '))
                                .map(|s| s.parse::<u64>().unwrap_or(0));
                            let mut num = || nums.next().unwrap_or(0);
                            let (calls, rejected) = (num(), num() == 1);
                            let (v128_calls, ops, simd_ops) = (num(), num(), num());
                            let mut t = sh.totals.lock().unwrap();
                            *t.modules.entry(mode.name()).or_insert(0) += 1;
                            t.calls += calls;
                            t.rejected += rejected as u64;
                            let st = t.simd.entry(mode.name()).or_default();
                            st.ops += ops;
                            st.simd_ops += simd_ops;
                            st.v128_calls += v128_calls;
                            if simd_ops > 0 {
                                st.modules += 1;
                                st.calls += calls;
                            }
                            t.first_seed = Some(t.first_seed.map_or(seed, |s| s.min(seed)));
                            t.last_seed = Some(t.last_seed.map_or(seed, |s| s.max(seed)));
                        }
                        "div" => {
                            running = None;
                            last_done = Some(seed);
                            let class = parts.next().unwrap_or("?").to_string();
                            let reason = parts.next().unwrap_or("").to_string();
                            record_divergence(sh, mode, seed, &class, &reason);
                        }
                        _ => {}
                    }
                    if let Some((_, seed)) = running {
                        from = seed;
                    }
                }
                Ok(Line::Eof) | Err(mpsc::RecvTimeoutError::Disconnected) => break,
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    // Silent for `timeout` seconds, in a seed or outside one: killed and
                    // reported either way, so a stuck worker can never stall the campaign.
                    hung = true;
                    let _ = child.kill();
                    break;
                }
            }
        }
        let status = child.wait().expect("wait worker");
        sh.workers.lock().unwrap().retain(|&p| p != child.id());
        let _ = err_thread.join();
        if finished && !hung {
            return;
        }
        match running {
            Some((mode, seed)) => {
                let tail = stderr_tail.lock().unwrap();
                let last = tail
                    .lines()
                    .filter(|l| !l.trim().is_empty() && !l.starts_with("DIVERGENCE"))
                    .rev()
                    .take(3)
                    .collect::<Vec<_>>()
                    .into_iter()
                    .rev()
                    .collect::<Vec<_>>()
                    .join(" | ");
                if hung {
                    let reason = format!("no result after {} s", sh.args.timeout);
                    record_divergence(sh, mode, seed, "hang", &reason);
                } else {
                    let reason = format!("worker died: {status}; stderr: {last}");
                    record_divergence(sh, mode, seed, "crash", &reason);
                }
                // The other modes of this seed are skipped; go on with the next seed.
                from = seed + 1;
            }
            None if hung => {
                let reason = if finished {
                    format!(
                        "a worker did not exit within {} s after its last seed",
                        sh.args.timeout
                    )
                } else {
                    format!(
                        "a worker stalled for {} s between seeds (after seed {last_done:?})",
                        sh.args.timeout
                    )
                };
                eprintln!("STALL: {reason}");
                sh.totals.lock().unwrap().stalls.push(reason);
                if finished {
                    return;
                }
                from = last_done.map_or(from + 1, |s| s + 1);
            }
            None => {
                // Died between seeds (should not happen): go on after the last one seen.
                eprintln!("worker exited unexpectedly: {status}");
                if status.success() {
                    return;
                }
                from += 1;
            }
        }
        if sh.deadline.is_some_and(|d| Instant::now() >= d) {
            return;
        }
    }
}

/// The campaign overran its deadline by far (the per-worker timeouts should have ended
/// it): kills the workers and fails, so a stuck campaign cannot hold up its caller.
fn watchdog_exit(sh: &Shared, t0: Instant) -> ! {
    eprintln!(
        "difftest: watchdog: still running after {:.0} s; killing workers {:?}",
        t0.elapsed().as_secs_f64(),
        sh.workers.lock().unwrap()
    );
    kill_workers_and_exit(sh)
}

/// Kills every worker still running and ends the campaign as failed.
fn kill_workers_and_exit(sh: &Shared) -> ! {
    let workers = sh.workers.lock().unwrap_or_else(|e| e.into_inner()).clone();
    for pid in workers {
        // SAFETY: kill(2) has no memory effects; at worst the pid was reused.
        unsafe {
            libc::kill(pid as libc::pid_t, libc::SIGKILL);
        }
    }
    std::process::exit(1);
}

fn main() {
    let args = parse_args();
    if args.worker {
        worker(&args);
        return;
    }
    let t0 = Instant::now();
    let deadline = args.secs.map(|s| t0 + Duration::from_secs(s));
    let deadline_ms = args.secs.map(|s| now_ms() + s * 1000);
    let jobs = args.jobs;
    let sh = Shared {
        next: AtomicU64::new(args.start),
        deadline,
        deadline_ms,
        totals: Mutex::new(Totals::default()),
        workers: Mutex::new(Vec::new()),
        args,
    };
    eprintln!(
        "difftest: modes {}, seeds {}..{}, {} jobs{}, output {}",
        mode_list(&sh.args.modes),
        sh.args.start,
        sh.args.end,
        jobs,
        sh.args
            .secs
            .map_or(String::new(), |s| format!(", at most {s} s")),
        sh.args.out.display()
    );
    // Chunks small enough to spread the work and stop soon after the deadline, big enough
    // to amortise starting a worker.
    let span = sh.args.end.saturating_sub(sh.args.start);
    let chunk = (span / (jobs as u64 * 8)).clamp(1, 500);
    let done = std::sync::atomic::AtomicBool::new(false);
    std::thread::scope(|scope| {
        // Progress every minute, for long campaigns; a watchdog past the deadline.
        let hard_deadline = sh
            .deadline
            .map(|d| d + Duration::from_secs(2 * sh.args.timeout + 60));
        let (sh, done) = (&sh, &done);
        scope.spawn(move || {
            let mut ticks = 0u64;
            while !done.load(Ordering::Relaxed) {
                std::thread::sleep(Duration::from_millis(500));
                if hard_deadline.is_some_and(|d| Instant::now() >= d) {
                    watchdog_exit(sh, t0);
                }
                ticks += 1;
                if ticks.is_multiple_of(120) {
                    let t = sh.totals.lock().unwrap();
                    eprintln!(
                        "difftest: {:.0} s: {} modules {:?}, {} divergences",
                        t0.elapsed().as_secs_f64(),
                        t.modules.values().sum::<u64>(),
                        t.modules,
                        t.divergences.values().sum::<u64>()
                    );
                }
            }
        });
        let workers: Vec<_> = (0..jobs)
            .map(|_| {
                scope.spawn(move || loop {
                    if sh.deadline.is_some_and(|d| Instant::now() >= d) {
                        return;
                    }
                    let start = sh.next.fetch_add(chunk, Ordering::Relaxed);
                    if start >= sh.args.end {
                        return;
                    }
                    run_chunk(sh, start, (start + chunk).min(sh.args.end));
                })
            })
            .collect();
        for w in workers {
            w.join().expect("job thread");
        }
        done.store(true, Ordering::Relaxed);
    });
    let t = sh.totals.lock().unwrap();
    let total: u64 = t.modules.values().sum();
    let divs: u64 = t.divergences.values().sum();
    println!(
        "difftest: {total} modules in {:.1} s (seeds {}..={}), {} calls compared",
        t0.elapsed().as_secs_f64(),
        t.first_seed.unwrap_or(0),
        t.last_seed.unwrap_or(0),
        t.calls
    );
    for m in &sh.args.modes {
        let n = t.modules.get(m.name()).copied().unwrap_or(0);
        if *m == Mode::Mutate {
            println!(
                "  {:8} {n} modules ({} rejected by both)",
                m.name(),
                t.rejected
            );
        } else {
            println!("  {:8} {n} modules", m.name());
        }
    }
    for m in &sh.args.modes {
        let mode = m.name();
        let Some(st) = t.simd.get(mode) else { continue };
        println!(
            "  {mode:8} SIMD: {} modules with SIMD operators ({} calls compared in them), \
             {} calls with v128 values, {} of {} operators SIMD ({:.1}%)",
            st.modules,
            st.calls,
            st.v128_calls,
            st.simd_ops,
            st.ops,
            100.0 * st.simd_ops as f64 / st.ops.max(1) as f64
        );
    }
    for stall in &t.stalls {
        println!("stalled worker: {stall}");
    }
    if !t.stalls.is_empty() {
        std::process::exit(1);
    }
    if divs == 0 {
        println!("no divergences");
    } else {
        println!("{divs} divergences (written to {}):", sh.args.out.display());
        for ((mode, class), n) in &t.divergences {
            println!("  {mode:8} {class}: {n}");
        }
        std::process::exit(1);
    }
}
