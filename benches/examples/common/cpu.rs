//! Process CPU time, for the examples that report it (each includes this file with
//! `#[path = "common/cpu.rs"] mod cpu;`).

use std::time::Duration;

/// CPU time used by this process so far (all threads).
pub fn cpu_time() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes a timespec into the valid pointer we pass.
    unsafe { libc::clock_gettime(libc::CLOCK_PROCESS_CPUTIME_ID, &mut ts) };
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

/// [`cpu_time`] in milliseconds.
pub fn cpu_ms() -> f64 {
    cpu_time().as_secs_f64() * 1e3
}
