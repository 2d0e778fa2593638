//! The trap signal handler and the registry of JIT code ranges.
//!
//! Generated code relies on hardware faults for some traps (guard pages behind linear memories,
//! and possibly `ud2`/`udf` or division faults). [`init_trap_handler`] installs one handler for
//! SIGSEGV, SIGBUS, SIGILL and SIGFPE. When a fault happens at a pc inside a range registered with
//! [`register_code`] and that range's [`TrapLookup`] knows the pc, the handler rewrites the signal
//! context so that, on return from the handler, the thread continues at the *landing* routine with
//!
//! | arch    | arg 0 (trap code) | arg 1 (faulting pc) | arg 2 (frame pointer at the fault) |
//! |---------|-------------------|---------------------|------------------------------------|
//! | x86_64  | `rdi`             | `rsi`               | `rdx` = `rbp`                      |
//! | aarch64 | `x0`              | `x1`                | `x2` = `x29`                       |
//!
//! Every other register (including the stack pointer, and `x30` on aarch64) is left as it was at
//! the fault, so the landing routine runs on the faulting function's stack. No Rust frame is
//! unwound or jumped over by the handler itself. Any other fault is not ours and is passed on to
//! the handler that was installed before ours.
//!
//! # The code registry
//!
//! The handler must find the range containing a pc without locks or allocation, and registration
//! happens on ordinary threads at any time. The registry is a copy-on-write snapshot (a sorted
//! `Vec`) behind an [`AtomicPtr`]: writers (serialized by a mutex) build a new snapshot, publish it
//! with one atomic swap, and free the old one only after every reader that might still see it has
//! left. Readers (the handler) announce themselves in one of two counters selected by an epoch
//! parity; a writer flips the epoch after publishing and waits only for the counter of the old
//! parity to drain, so a stream of new readers cannot starve it. Readers never block: a reader at
//! worst retries its announcement if an epoch flip raced with it.

use std::ffi::c_void;
use std::ptr;
use std::sync::atomic::{AtomicPtr, AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, Mutex, Once, OnceLock, PoisonError};

use libc::c_int;

/// Tells whether a fault at some pc inside a registered code range is an expected wasm trap.
///
/// `trap_code_at` is called from the signal handler: it must be async-signal-safe (no
/// allocation, no locks, no I/O, no panics), e.g. a binary search in an immutable table.
pub trait TrapLookup: Send + Sync {
    /// The trap code to hand to the landing routine if a fault at `pc` is an expected trap,
    /// `None` if the fault is not an expected one (it is then passed to the previous handler).
    fn trap_code_at(&self, pc: usize) -> Option<u8>;
}

/// One registered code range.
#[derive(Clone)]
struct Entry {
    start: usize,
    end: usize,
    id: u64,
    lookup: Arc<dyn TrapLookup>,
}

/// An immutable view of all registered ranges, sorted by `start`, non-overlapping.
struct Snapshot {
    entries: Vec<Entry>,
}

impl Snapshot {
    fn find(&self, pc: usize) -> Option<&Entry> {
        let i = self.entries.partition_point(|e| e.start <= pc);
        let entry = self.entries.get(i.checked_sub(1)?)?;
        (pc < entry.end).then_some(entry)
    }
}

/// The current snapshot (null until the first registration).
static SNAPSHOT: AtomicPtr<Snapshot> = AtomicPtr::new(ptr::null_mut());
/// Flipped by every writer after publishing; its parity selects the reader counter.
static EPOCH: AtomicUsize = AtomicUsize::new(0);
/// Readers currently looking at a snapshot, per epoch parity.
static READERS: [AtomicUsize; 2] = [AtomicUsize::new(0), AtomicUsize::new(0)];
/// Serializes writers; holds the next registration id.
static WRITER: Mutex<u64> = Mutex::new(0);

/// Runs `f` on the current snapshot. Async-signal-safe: only atomics, never blocks.
fn with_snapshot<R>(f: impl FnOnce(Option<&Snapshot>) -> R) -> R {
    let slot = loop {
        let epoch = EPOCH.load(SeqCst);
        let slot = &READERS[epoch & 1];
        slot.fetch_add(1, SeqCst);
        if EPOCH.load(SeqCst) == epoch {
            break slot;
        }
        // A writer flipped the epoch meanwhile and may not be waiting on `slot`: retry.
        slot.fetch_sub(1, SeqCst);
    };
    let snapshot = SNAPSHOT.load(SeqCst);
    // SAFETY: a snapshot is freed only by a writer that swapped it out and then saw the counter
    // of the epoch current at our (re)check drain to zero, which cannot happen before we
    // decrement `slot` below (see the module docs).
    let result = f(unsafe { snapshot.as_ref() });
    slot.fetch_sub(1, SeqCst);
    result
}

/// The trap code for a fault at `pc`, if `pc` is in registered code that expects it.
fn lookup_trap(pc: usize) -> Option<u8> {
    with_snapshot(|snapshot| snapshot?.find(pc)?.lookup.trap_code_at(pc))
}

/// Replaces the registry with `f` applied to a copy of it. The caller holds `WRITER`.
fn update(f: impl FnOnce(&mut Vec<Entry>)) {
    let current = SNAPSHOT.load(SeqCst);
    // SAFETY: only writers free snapshots and we are the only writer (WRITER is held).
    let mut entries = unsafe { current.as_ref() }.map_or_else(Vec::new, |s| s.entries.clone());
    f(&mut entries);
    let new = Box::into_raw(Box::new(Snapshot { entries }));
    let old = SNAPSHOT.swap(new, SeqCst);
    let epoch = EPOCH.fetch_add(1, SeqCst);
    while READERS[epoch & 1].load(SeqCst) != 0 {
        std::thread::yield_now();
    }
    if !old.is_null() {
        // SAFETY: `old` came from Box::into_raw, is no longer reachable from SNAPSHOT, and every
        // reader that could have loaded it has finished.
        drop(unsafe { Box::from_raw(old) });
    }
}

/// Registers `[start, end)` as JIT code whose faults `lookup` may claim as traps.
///
/// Ranges must not overlap other registered ranges (checked in debug builds). The registration
/// lasts until the returned guard is dropped; the code must stay mapped until then.
pub fn register_code(start: usize, end: usize, lookup: Arc<dyn TrapLookup>) -> CodeRegistration {
    assert!(
        start < end,
        "empty or inverted code range {start:#x}..{end:#x}"
    );
    let mut next_id = WRITER.lock().unwrap_or_else(PoisonError::into_inner);
    let id = *next_id;
    *next_id += 1;
    update(|entries| {
        let i = entries.partition_point(|e| e.start < start);
        debug_assert!(
            i == 0 || entries[i - 1].end <= start,
            "code range {start:#x}..{end:#x} overlaps a registered range"
        );
        debug_assert!(
            entries.get(i).is_none_or(|e| end <= e.start),
            "code range {start:#x}..{end:#x} overlaps a registered range"
        );
        entries.insert(
            i,
            Entry {
                start,
                end,
                id,
                lookup,
            },
        );
    });
    CodeRegistration { id, start, end }
}

/// Keeps a code range registered with the trap handler; dropping it unregisters the range
/// (after which faults there are no longer treated as traps).
#[derive(Debug)]
pub struct CodeRegistration {
    id: u64,
    start: usize,
    end: usize,
}

impl CodeRegistration {
    /// The registered range `start..end`.
    pub fn range(&self) -> std::ops::Range<usize> {
        self.start..self.end
    }
}

impl Drop for CodeRegistration {
    fn drop(&mut self) {
        let _writer = WRITER.lock().unwrap_or_else(PoisonError::into_inner);
        let id = self.id;
        update(|entries| entries.retain(|e| e.id != id));
    }
}

/// The signals the handler is installed for.
const SIGNALS: [c_int; 4] = [libc::SIGSEGV, libc::SIGBUS, libc::SIGILL, libc::SIGFPE];

/// The landing routine's address (0 until `init_trap_handler`).
static LANDING: AtomicUsize = AtomicUsize::new(0);
/// The actions that were installed before ours, per signal; set before our handler is installed.
static PREVIOUS: OnceLock<[(c_int, libc::sigaction); 4]> = OnceLock::new();
static INSTALL: Once = Once::new();

/// Installs the trap handler for SIGSEGV, SIGBUS, SIGILL and SIGFPE (once per process) and sets
/// the landing routine that trapping threads are sent to (see the module docs for its register
/// convention).
///
/// Idempotent: the first call's `landing` wins; calling again with a different address is a bug
/// (a debug assertion). The previously installed actions are saved and chained to for faults
/// that are not wasm traps. Threads running wasm should have an alternate signal stack
/// (`sigaltstack`; Rust's std gives its threads one) if stack-overflow faults must be handled.
pub fn init_trap_handler(landing: usize) {
    assert_ne!(landing, 0, "the trap landing address must not be null");
    if let Err(existing) = LANDING.compare_exchange(0, landing, SeqCst, SeqCst) {
        debug_assert_eq!(
            existing, landing,
            "init_trap_handler called again with a different landing address"
        );
    }
    INSTALL.call_once(install_handlers);
}

/// The landing address set by [`init_trap_handler`], if it has been called.
pub fn trap_landing() -> Option<usize> {
    match LANDING.load(SeqCst) {
        0 => None,
        landing => Some(landing),
    }
}

fn install_handlers() {
    // SAFETY: all-zero is a valid `sigaction` (SIG_DFL, empty mask, no flags).
    let mut previous: [(c_int, libc::sigaction); 4] =
        SIGNALS.map(|sig| (sig, unsafe { std::mem::zeroed() }));
    for (sig, old) in previous.iter_mut() {
        // SAFETY: querying the current action only writes into `old`.
        let rc = unsafe { libc::sigaction(*sig, ptr::null(), old) };
        assert_eq!(
            rc,
            0,
            "sigaction query failed: {}",
            std::io::Error::last_os_error()
        );
    }
    // Saved before installing, so the handler always finds them.
    let _ = PREVIOUS.set(previous);

    // SAFETY: all-zero is a valid `sigaction`; the fields we need are set below.
    let mut action: libc::sigaction = unsafe { std::mem::zeroed() };
    action.sa_sigaction = trap_handler as *const () as usize;
    action.sa_flags = libc::SA_SIGINFO | libc::SA_ONSTACK | libc::SA_NODEFER;
    // SAFETY: `sa_mask` is a valid sigset_t to initialize.
    unsafe { libc::sigemptyset(&mut action.sa_mask) };
    for sig in SIGNALS {
        // SAFETY: `trap_handler` has the SA_SIGINFO signature and is async-signal-safe.
        let rc = unsafe { libc::sigaction(sig, &action, ptr::null_mut()) };
        assert_eq!(
            rc,
            0,
            "sigaction failed: {}",
            std::io::Error::last_os_error()
        );
    }
}

/// The signal handler. Async-signal-safe: atomics, the registry lookup and `sigaction`/`raise`.
unsafe extern "C" fn trap_handler(signum: c_int, info: *mut libc::siginfo_t, context: *mut c_void) {
    // SAFETY: errno is thread-local; we restore it so the interrupted code never sees a change.
    let saved_errno = unsafe { *libc::__errno_location() };
    // SAFETY: the kernel passes a valid siginfo and ucontext to an SA_SIGINFO handler.
    let handled = unsafe { redirect_to_landing(info, context.cast()) };
    if !handled {
        // SAFETY: same arguments as we received.
        unsafe { chain(signum, info, context) };
    }
    // SAFETY: see above.
    unsafe { *libc::__errno_location() = saved_errno };
}

/// If the fault is a wasm trap, rewrites `context` to resume at the landing routine and returns
/// true.
///
/// # Safety
/// `info` and `context` must be the handler's arguments.
unsafe fn redirect_to_landing(info: *mut libc::siginfo_t, context: *mut libc::ucontext_t) -> bool {
    let landing = LANDING.load(SeqCst);
    if landing == 0 || info.is_null() || context.is_null() {
        return false;
    }
    // SAFETY: `info` is valid (checked non-null, provided by the kernel).
    if unsafe { (*info).si_code } <= 0 {
        // Sent by kill/tgkill/sigqueue rather than by a fault: never a trap.
        return false;
    }
    // SAFETY: `context` is the interrupted thread's valid, exclusively ours ucontext.
    let context = unsafe { &mut *context };
    let pc = context_pc(context);
    match lookup_trap(pc) {
        Some(code) => {
            set_landing_context(context, landing, code, pc);
            true
        }
        None => false,
    }
}

#[cfg(target_arch = "x86_64")]
fn context_pc(context: &libc::ucontext_t) -> usize {
    context.uc_mcontext.gregs[libc::REG_RIP as usize] as usize
}

#[cfg(target_arch = "x86_64")]
fn set_landing_context(context: &mut libc::ucontext_t, landing: usize, code: u8, pc: usize) {
    let gregs = &mut context.uc_mcontext.gregs;
    gregs[libc::REG_RDI as usize] = i64::from(code);
    gregs[libc::REG_RSI as usize] = pc as i64;
    gregs[libc::REG_RDX as usize] = gregs[libc::REG_RBP as usize];
    gregs[libc::REG_RIP as usize] = landing as i64;
}

#[cfg(target_arch = "aarch64")]
fn context_pc(context: &libc::ucontext_t) -> usize {
    context.uc_mcontext.pc as usize
}

#[cfg(target_arch = "aarch64")]
fn set_landing_context(context: &mut libc::ucontext_t, landing: usize, code: u8, pc: usize) {
    let mcontext = &mut context.uc_mcontext;
    mcontext.regs[0] = u64::from(code);
    mcontext.regs[1] = pc as u64;
    mcontext.regs[2] = mcontext.regs[29];
    mcontext.pc = landing as u64;
}

/// Passes a signal that is not a wasm trap to the previously installed action.
///
/// # Safety
/// The arguments must be the handler's arguments.
unsafe fn chain(signum: c_int, info: *mut libc::siginfo_t, context: *mut c_void) {
    let Some(previous) = PREVIOUS
        .get()
        .and_then(|all| all.iter().find(|(sig, _)| *sig == signum))
        .map(|(_, action)| action)
    else {
        return;
    };
    let handler = previous.sa_sigaction;
    if handler == libc::SIG_DFL || handler == libc::SIG_IGN {
        // SAFETY: `info` is valid when non-null (kernel provided).
        let user_sent = info.is_null() || unsafe { (*info).si_code } <= 0;
        if handler == libc::SIG_IGN && user_sent {
            return; // an ignored signal someone sent us: ignore it
        }
        // Restore the default action. For a fault, returning re-executes the faulting
        // instruction, which now kills the process the normal way (with the right signal and a
        // core dump); a signal sent with kill is raised again.
        // SAFETY: all-zero is a valid `sigaction` meaning SIG_DFL with an empty mask.
        let default: libc::sigaction = unsafe { std::mem::zeroed() };
        // SAFETY: sigaction and raise are async-signal-safe; `default` is valid.
        unsafe {
            libc::sigaction(signum, &default, ptr::null_mut());
            if user_sent {
                libc::raise(signum);
            }
        }
    } else if previous.sa_flags & libc::SA_SIGINFO != 0 {
        // SAFETY: an SA_SIGINFO action's handler has this signature; we pass our own arguments.
        let f: extern "C" fn(c_int, *mut libc::siginfo_t, *mut c_void) =
            unsafe { std::mem::transmute(handler) };
        f(signum, info, context);
    } else {
        // SAFETY: a non-SA_SIGINFO action's handler is a `void (*)(int)`.
        let f: extern "C" fn(c_int) = unsafe { std::mem::transmute(handler) };
        f(signum);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sys::code_memory::CodeMemory;
    use crate::sys::mmap::{page_size, Mmap};
    use std::os::unix::process::ExitStatusExt;
    use std::process::Command;

    /// Claims a fault at exactly one pc.
    struct At {
        pc: usize,
        code: Option<u8>,
    }

    impl TrapLookup for At {
        fn trap_code_at(&self, pc: usize) -> Option<u8> {
            if pc == self.pc {
                self.code
            } else {
                None
            }
        }
    }

    fn at(pc: usize, code: Option<u8>) -> Arc<dyn TrapLookup> {
        Arc::new(At { pc, code })
    }

    #[test]
    fn registry_lookup() {
        // Addresses inside our own reservation cannot collide with other tests' registrations.
        let space = Mmap::reserve(4 * page_size()).unwrap();
        let base = space.as_ptr() as usize;
        let r1 = register_code(base, base + 16, at(base + 4, Some(1)));
        let r2 = register_code(base + 32, base + 64, at(base + 40, Some(2)));
        let r0 = register_code(base + 16, base + 32, at(base + 16, Some(0)));
        assert_eq!(r1.range(), base..base + 16);
        assert_eq!(lookup_trap(base + 4), Some(1));
        assert_eq!(lookup_trap(base + 5), None);
        assert_eq!(lookup_trap(base + 16), Some(0));
        assert_eq!(lookup_trap(base + 40), Some(2));
        assert_eq!(lookup_trap(base + 64), None);
        drop(r1);
        assert_eq!(lookup_trap(base + 4), None);
        assert_eq!(lookup_trap(base + 40), Some(2));
        drop(r2);
        drop(r0);
        assert_eq!(lookup_trap(base + 16), None);
    }

    #[test]
    fn registry_concurrent_readers_and_writers() {
        let space = Mmap::reserve(8 * page_size()).unwrap();
        let base = space.as_ptr() as usize;
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        std::thread::scope(|s| {
            for reader in 0..2 {
                let stop = stop.clone();
                s.spawn(move || {
                    let mut hits = 0u64;
                    while !stop.load(SeqCst) {
                        for i in 0..8 {
                            match lookup_trap(base + i * 64) {
                                None => {}
                                Some(code) => {
                                    assert_eq!(code as usize, i, "reader {reader}");
                                    hits += 1;
                                }
                            }
                        }
                    }
                    hits
                });
            }
            let writers: Vec<_> = (0..8)
                .map(|i| {
                    s.spawn(move || {
                        let start = base + i * 64;
                        for _ in 0..300 {
                            let r = register_code(start, start + 64, at(start, Some(i as u8)));
                            assert_eq!(lookup_trap(start), Some(i as u8));
                            drop(r);
                            assert_eq!(lookup_trap(start), None);
                        }
                    })
                })
                .collect();
            for w in writers {
                w.join().unwrap();
            }
            stop.store(true, SeqCst);
        });
        for i in 0..8 {
            assert_eq!(lookup_trap(base + i * 64), None);
        }
    }

    // ---- Tests that install the handler run in a child process: the landing address is global
    // and first-wins, and some of them end with the process dying of SIGSEGV.

    const CHILD_ENV: &str = "WJIT_SYS_SIGNALS_CHILD";

    #[cfg(target_arch = "x86_64")]
    mod code {
        /// `mov eax, [rdi]; ret`; faults at offset 0.
        pub const LOAD: &[u8] = &[0x8B, 0x07, 0xC3];
        pub const LOAD_FAULT: usize = 0;
        /// `ud2`
        pub const ILLEGAL: &[u8] = &[0x0F, 0x0B];
        /// `lea eax, [rdi + 100]; ret`
        pub const LANDING_PLUS_100: &[u8] = &[0x8D, 0x47, 0x64, 0xC3];
        /// `push rbp; mov rbp, rsp; mov eax, [rdi]; pop rbp; ret`; faults at offset 4.
        pub const FRAME_LOAD: &[u8] = &[0x55, 0x48, 0x89, 0xE5, 0x8B, 0x07, 0x5D, 0xC3];
        pub const FRAME_LOAD_FAULT: usize = 4;
        /// `mov rax, rsi; mov rsp, rdx; pop rbp; ret`: returns the faulting pc from the faulting
        /// function, unwinding its frame through the frame pointer.
        pub const LANDING_RETURN_PC: &[u8] = &[0x48, 0x89, 0xF0, 0x48, 0x89, 0xD4, 0x5D, 0xC3];
    }

    #[cfg(target_arch = "aarch64")]
    mod code {
        const fn words<const N: usize, const B: usize>(w: [u32; N]) -> [u8; B] {
            let mut out = [0u8; B];
            let mut i = 0;
            while i < N {
                let b = w[i].to_le_bytes();
                out[4 * i] = b[0];
                out[4 * i + 1] = b[1];
                out[4 * i + 2] = b[2];
                out[4 * i + 3] = b[3];
                i += 1;
            }
            out
        }
        const RET: u32 = 0xd65f03c0;
        /// `ldr w0, [x0]; ret`; faults at offset 0.
        pub const LOAD: &[u8] = &words::<2, 8>([0xb9400000, RET]);
        pub const LOAD_FAULT: usize = 0;
        /// `udf #0`
        pub const ILLEGAL: &[u8] = &words::<1, 4>([0x00000000]);
        /// `add w0, w0, #100; ret`
        pub const LANDING_PLUS_100: &[u8] = &words::<2, 8>([0x11019000, RET]);
        /// `stp x29, x30, [sp, #-16]!; mov x29, sp; ldr w0, [x0]; ldp x29, x30, [sp], #16; ret`;
        /// faults at offset 8.
        pub const FRAME_LOAD: &[u8] =
            &words::<5, 20>([0xa9bf7bfd, 0x910003fd, 0xb9400000, 0xa8c17bfd, RET]);
        pub const FRAME_LOAD_FAULT: usize = 8;
        /// `mov x0, x1; mov sp, x2; ldp x29, x30, [sp], #16; ret`: returns the faulting pc from
        /// the faulting function, unwinding its frame through the frame pointer.
        pub const LANDING_RETURN_PC: &[u8] =
            &words::<4, 16>([0xaa0103e0, 0x9100005f, 0xa8c17bfd, RET]);
    }

    /// Runs `child_process` in a fresh copy of this test binary with `mode`.
    ///
    /// Under an emulator without binfmt_misc (e.g. `qemu-aarch64` as cargo's runner), set
    /// `WJIT_TEST_CHILD_RUNNER` to the runner command (split on whitespace) so the child runs
    /// under it too.
    fn run_child(mode: &str) -> std::process::Output {
        let path = module_path!();
        let path = path.split_once("::").map_or(path, |(_, rest)| rest);
        let exe = std::env::current_exe().unwrap();
        let runner = std::env::var("WJIT_TEST_CHILD_RUNNER").unwrap_or_default();
        let mut runner = runner.split_whitespace();
        let mut command = match runner.next() {
            Some(program) => {
                let mut command = Command::new(program);
                command.args(runner).arg(exe);
                command
            }
            None => Command::new(exe),
        };
        let output = command
            .arg(format!("{path}::child_process"))
            .args(["--exact", "--test-threads=1", "--nocapture"])
            .env(CHILD_ENV, mode)
            .output()
            .unwrap();
        eprintln!(
            "child {mode}: {:?}\n--- stdout\n{}\n--- stderr\n{}",
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        output
    }

    fn assert_child_passes(mode: &str) {
        let output = run_child(mode);
        assert!(output.status.success(), "child {mode} failed");
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(stdout.contains("1 passed"), "child {mode} ran no test");
    }

    fn assert_child_dies_of_segv(mode: &str) {
        let output = run_child(mode);
        assert_eq!(output.status.signal(), Some(libc::SIGSEGV), "child {mode}");
    }

    #[test]
    fn trap_resumes_at_landing() {
        assert_child_passes("trap");
    }

    #[test]
    fn trap_passes_pc_and_frame_pointer() {
        assert_child_passes("regs");
    }

    #[test]
    fn unclaimed_fault_in_jit_code_kills() {
        assert_child_dies_of_segv("unclaimed");
    }

    #[test]
    fn fault_after_unregister_kills() {
        assert_child_dies_of_segv("unregistered");
    }

    #[test]
    fn fault_outside_jit_code_kills() {
        assert_child_dies_of_segv("outside");
    }

    /// Not a test by itself: the body of the child processes above (does nothing otherwise).
    #[test]
    fn child_process() {
        let Ok(mode) = std::env::var(CHILD_ENV) else {
            return;
        };
        let no_core = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: setrlimit only reads `no_core`; no core files from the intentional crashes.
        unsafe { libc::setrlimit(libc::RLIMIT_CORE, &no_core) };

        let landing_code = if mode == "regs" {
            code::LANDING_RETURN_PC
        } else {
            code::LANDING_PLUS_100
        };
        let landing = CodeMemory::new(landing_code).unwrap();
        init_trap_handler(landing.as_ptr() as usize);
        init_trap_handler(landing.as_ptr() as usize); // idempotent
        assert_eq!(trap_landing(), Some(landing.as_ptr() as usize));

        let guard = Mmap::reserve(page_size()).unwrap();
        let bad = guard.as_ptr().cast::<u32>().cast_const();
        let load = CodeMemory::new(code::LOAD).unwrap();
        let load_start = load.as_ptr() as usize;
        // SAFETY: `load` holds a complete `fn(*const u32) -> u32` (C ABI).
        let load_fn: extern "C" fn(*const u32) -> u32 =
            unsafe { std::mem::transmute(load.as_ptr()) };

        match mode.as_str() {
            "trap" => {
                let _reg = register_code(
                    load_start,
                    load_start + load.len(),
                    at(load_start + code::LOAD_FAULT, Some(7)),
                );
                for _ in 0..3 {
                    assert_eq!(load_fn(bad), 107);
                }
                let fine = 5u32;
                assert_eq!(load_fn(&fine), 5, "non-faulting call");
                let bad_addr = bad as usize;
                let from_thread = std::thread::spawn(move || load_fn(bad_addr as *const u32))
                    .join()
                    .unwrap();
                assert_eq!(from_thread, 107, "trap on another thread");

                let illegal = CodeMemory::new(code::ILLEGAL).unwrap();
                let start = illegal.as_ptr() as usize;
                let _reg2 = register_code(start, start + illegal.len(), at(start, Some(3)));
                // SAFETY: `illegal` traps immediately; the landing returns to our caller.
                let illegal_fn: extern "C" fn() -> u32 =
                    unsafe { std::mem::transmute(illegal.as_ptr()) };
                assert_eq!(illegal_fn(), 103, "SIGILL trap");
            }
            "regs" => {
                let frame_load = CodeMemory::new(code::FRAME_LOAD).unwrap();
                let start = frame_load.as_ptr() as usize;
                let fault_pc = start + code::FRAME_LOAD_FAULT;
                let _reg = register_code(start, start + frame_load.len(), at(fault_pc, Some(1)));
                // SAFETY: `frame_load` is a complete function; with this landing it returns the
                // faulting pc as a u64.
                let f: extern "C" fn(*const u32) -> u64 =
                    unsafe { std::mem::transmute(frame_load.as_ptr()) };
                assert_eq!(f(bad), fault_pc as u64);
            }
            "unclaimed" => {
                let _reg = register_code(load_start, load_start + load.len(), at(load_start, None));
                load_fn(bad);
                unreachable!("survived an unclaimed fault");
            }
            "unregistered" => {
                let reg = register_code(
                    load_start,
                    load_start + load.len(),
                    at(load_start + code::LOAD_FAULT, Some(7)),
                );
                assert_eq!(load_fn(bad), 107);
                drop(reg);
                load_fn(bad);
                unreachable!("survived a fault in unregistered code");
            }
            "outside" => {
                let _reg = register_code(
                    load_start,
                    load_start + load.len(),
                    at(load_start + code::LOAD_FAULT, Some(7)),
                );
                // SAFETY: deliberately faults (the page is PROT_NONE) to check chaining.
                let value = unsafe { bad.read_volatile() };
                unreachable!("survived a fault outside JIT code: {value}");
            }
            other => panic!("unknown child mode {other}"),
        }
    }
}
