//! Process CPU time, the clock every measurement of this crate uses.

use std::time::Duration;

/// The CPU time consumed so far by all threads of this process
/// (`clock_gettime(CLOCK_PROCESS_CPUTIME_ID)`).
pub fn process_time() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec for the duration of the call, and
    // CLOCK_PROCESS_CPUTIME_ID is supported on every Linux and macOS version we build for.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_PROCESS_CPUTIME_ID, &mut ts) };
    assert_eq!(rc, 0, "clock_gettime(CLOCK_PROCESS_CPUTIME_ID) failed");
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

/// Runs `f` and returns its result with the process CPU time it took.
pub fn measure<T>(f: impl FnOnce() -> T) -> (T, Duration) {
    let start = process_time();
    let value = f();
    (value, process_time() - start)
}
