//! WASI preview1 for wjit: the `wasi_snapshot_preview1` and older `wasi_unstable` imports,
//! implemented by [`wasi-common`](wasi_common) (its synchronous, `cap-std`-sandboxed flavour)
//! and [`wiggle`], linked into a [`wjit::Linker`].
//!
//! The shape follows wasmtime: build a [`WasiCtx`] per program run with [`WasiCtxBuilder`],
//! keep it in the store's host data, and register the imports once per linker with
//! [`add_to_linker`], giving it a closure that finds the context in the host data:
//!
//! ```
//! use wjit::{Config, Engine, Linker, Module, Store};
//! use wjit_wasi::{WasiCtx, WasiCtxBuilder, WritePipe};
//!
//! struct Host {
//!     wasi: WasiCtx,
//! }
//!
//! # fn main() -> Result<(), wjit::Error> {
//! let engine = Engine::new(&Config::new())?;
//! let module = Module::new(
//!     &engine,
//!     r#"(module
//!          (import "wasi_snapshot_preview1" "fd_write"
//!            (func $fd_write (param i32 i32 i32 i32) (result i32)))
//!          (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
//!          (memory (export "memory") 1)
//!          (data (i32.const 16) "hello\n")
//!          (func (export "_start")
//!            ;; one iovec at 0: {buf = 16, len = 6}; bytes written go to 8
//!            (i32.store (i32.const 0) (i32.const 16))
//!            (i32.store (i32.const 4) (i32.const 6))
//!            (drop (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8)))
//!            (call $exit (i32.const 3))))"#,
//! )?;
//!
//! let mut linker = Linker::<Host>::new(&engine);
//! wjit_wasi::add_to_linker(&mut linker, |host: &mut Host| &mut host.wasi)?;
//!
//! let stdout = WritePipe::new_in_memory();
//! let wasi = WasiCtxBuilder::new()
//!     .arg("hello.wasm")
//!     .env("GREETING", "hi")
//!     .stdout(Box::new(stdout.clone()))
//!     .build()?;
//! let mut store = Store::new(&engine, Host { wasi });
//! let instance = linker.instantiate(&mut store, &module)?;
//! let start = instance.get_typed_func::<(), ()>(&store, "_start")?;
//! let err = start.call(&mut store, ()).unwrap_err();
//! assert_eq!(err.i32_exit_status(), Some(3)); // proc_exit(3)
//! drop(store);
//! assert_eq!(stdout.try_into_inner().unwrap().into_inner(), b"hello\n");
//! # Ok(())
//! # }
//! ```
//!
//! How WASI calls end:
//! - a WASI error (`ENOENT`, `EBADF`, ...) is the call's `errno` result, as usual;
//! - `proc_exit(code)` returns [`wjit::I32Exit`]`(code)` as a host error, which unwinds the
//!   wasm stack: [`wjit::Error::i32_exit_status`] gives the code;
//! - a guest pointer out of bounds, a bad UTF-8 string and similar guest mistakes are host
//!   errors that end the call like a trap, with the wasm backtrace (the error downcasts to
//!   [`wiggle::GuestError`]); so is a call from a module that exports no `memory`.

#![warn(missing_docs)]

use std::future::Future;
use std::path::Path;
use std::pin::pin;
use std::task::{Context, Poll, Waker};

use wiggle::GuestMemory;
use wjit::{Caller, Extern, Linker};

pub use wasi_common::pipe::{ReadPipe, WritePipe};
pub use wasi_common::sync::{ambient_authority, Dir};
pub use wasi_common::{WasiCtx, WasiDir, WasiFile};
pub use {wasi_common, wiggle};

mod dir;
mod stdio;

/// What a preopened directory lets the program do.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum DirPerms {
    /// Open, create, write, rename and remove files and directories under it.
    #[default]
    ReadWrite,
    /// Open files for reading, list directories, read metadata and links; everything that
    /// would change the directory tree or open a file for writing fails with `EPERM`.
    ReadOnly,
}

/// Builds a [`WasiCtx`]: the arguments, environment, standard streams and preopened
/// directories of one program run. By default the program gets no arguments, an empty
/// environment, an empty stdin, a stdout and stderr that discard what is written, and no
/// directories. Preopened directories get file descriptors 3, 4, ... in the order they are
/// added.
pub struct WasiCtxBuilder {
    ctx: WasiCtx,
    error: Option<wjit::Error>,
}

impl Default for WasiCtxBuilder {
    fn default() -> Self {
        Self::new()
    }
}

impl WasiCtxBuilder {
    /// An empty context (see the type's description).
    pub fn new() -> Self {
        let ctx = wasi_common::sync::WasiCtxBuilder::new().build();
        ctx.set_stdin(Box::new(ReadPipe::from(Vec::new())));
        ctx.set_stdout(Box::new(WritePipe::new(std::io::sink())));
        ctx.set_stderr(Box::new(WritePipe::new(std::io::sink())));
        WasiCtxBuilder { ctx, error: None }
    }

    fn note<E: std::fmt::Display>(&mut self, r: Result<(), E>) -> &mut Self {
        if let (Err(e), None) = (r, &self.error) {
            self.error = Some(wjit::Error::msg(format!("WASI context: {e}")));
        }
        self
    }

    /// Appends one program argument (the first is conventionally the program name).
    pub fn arg(&mut self, arg: &str) -> &mut Self {
        let r = self.ctx.push_arg(arg);
        self.note(r)
    }

    /// Appends program arguments.
    pub fn args<S: AsRef<str>>(&mut self, args: &[S]) -> &mut Self {
        for a in args {
            self.arg(a.as_ref());
        }
        self
    }

    /// Passes this process's own arguments to the program.
    pub fn inherit_args(&mut self) -> &mut Self {
        for a in std::env::args() {
            self.arg(&a);
        }
        self
    }

    /// Sets one environment variable of the program.
    pub fn env(&mut self, name: &str, value: &str) -> &mut Self {
        let r = self.ctx.push_env(name, value);
        self.note(r)
    }

    /// Sets environment variables of the program.
    pub fn envs<K: AsRef<str>, V: AsRef<str>>(&mut self, vars: &[(K, V)]) -> &mut Self {
        for (k, v) in vars {
            self.env(k.as_ref(), v.as_ref());
        }
        self
    }

    /// Passes this process's whole environment to the program.
    pub fn inherit_env(&mut self) -> &mut Self {
        for (k, v) in std::env::vars() {
            self.env(&k, &v);
        }
        self
    }

    /// The program's stdin (fd 0), e.g. a [`ReadPipe`].
    pub fn stdin(&mut self, file: Box<dyn WasiFile>) -> &mut Self {
        self.ctx.set_stdin(file);
        self
    }

    /// The program's stdout (fd 1), e.g. a [`WritePipe`] that captures it.
    pub fn stdout(&mut self, file: Box<dyn WasiFile>) -> &mut Self {
        self.ctx.set_stdout(file);
        self
    }

    /// The program's stderr (fd 2).
    pub fn stderr(&mut self, file: Box<dyn WasiFile>) -> &mut Self {
        self.ctx.set_stderr(file);
        self
    }

    /// Gives the program this process's stdin.
    pub fn inherit_stdin(&mut self) -> &mut Self {
        self.stdin(Box::new(stdio::Stdin(wasi_common::sync::stdio::stdin())))
    }

    /// Gives the program this process's stdout.
    pub fn inherit_stdout(&mut self) -> &mut Self {
        self.stdout(Box::new(wasi_common::sync::stdio::stdout()))
    }

    /// Gives the program this process's stderr.
    pub fn inherit_stderr(&mut self) -> &mut Self {
        self.stderr(Box::new(wasi_common::sync::stdio::stderr()))
    }

    /// Gives the program this process's stdin, stdout and stderr.
    pub fn inherit_stdio(&mut self) -> &mut Self {
        self.inherit_stdin().inherit_stdout().inherit_stderr()
    }

    /// Preopens the host directory `host_path` as `guest_path` in the program (e.g. `/`,
    /// `.` or `/data`). The program sees only what is under it (symlinks and `..` cannot
    /// escape it). Fails if the directory cannot be opened.
    pub fn preopened_dir(
        &mut self,
        host_path: impl AsRef<Path>,
        guest_path: impl AsRef<str>,
        perms: DirPerms,
    ) -> Result<&mut Self, wjit::Error> {
        let host_path = host_path.as_ref();
        let dir = Dir::open_ambient_dir(host_path, ambient_authority()).map_err(|e| {
            wjit::Error::msg(format!(
                "cannot open directory {}: {e}",
                host_path.display()
            ))
        })?;
        self.preopened_cap_dir(dir, guest_path, perms)
    }

    /// As [`preopened_dir`](Self::preopened_dir), with a directory already opened.
    pub fn preopened_cap_dir(
        &mut self,
        dir: Dir,
        guest_path: impl AsRef<str>,
        perms: DirPerms,
    ) -> Result<&mut Self, wjit::Error> {
        let guest_path = guest_path.as_ref();
        let dir: Box<dyn WasiDir> = Box::new(wasi_common::sync::dir::Dir::from_cap_std(dir));
        let dir = Box::new(dir::WjitDir {
            inner: dir,
            read_only: perms == DirPerms::ReadOnly,
        });
        self.ctx
            .push_preopened_dir(dir, guest_path)
            .map_err(|e| wjit::Error::msg(format!("cannot preopen {guest_path}: {e}")))?;
        Ok(self)
    }

    /// The finished context, or the first error of the builder's calls (e.g. an argument
    /// list too large for WASI's 32-bit sizes). The builder starts over afterwards.
    pub fn build(&mut self) -> Result<WasiCtx, wjit::Error> {
        let built = std::mem::take(self);
        match built.error {
            Some(e) => Err(e),
            None => Ok(built.ctx),
        }
    }
}

/// Polls a WASI call to completion. wasi-common's synchronous implementation never
/// suspends (blocking calls such as `poll_oneoff` block the thread), so one poll suffices.
fn block_on<F: Future>(f: F) -> Result<F::Output, wjit::Error> {
    let mut f = pin!(f);
    match f.as_mut().poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(v) => Ok(v),
        Poll::Pending => Err(wjit::Error::msg("WASI call would block")),
    }
}

/// A host error from wiggle that is neither an exit nor a guest error: wasi-common reports
/// a few conditions (e.g. `proc_raise`) as traps with a message.
#[derive(Debug)]
pub struct WasiTrap(pub String);

impl std::fmt::Display for WasiTrap {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for WasiTrap {}

/// The error that ends a WASI call that did not return an errno.
fn host_error(e: wiggle::error::Error) -> wjit::Error {
    let e = match e.downcast::<wasi_common::I32Exit>() {
        Ok(exit) => return wjit::Error::new(wjit::I32Exit(exit.0)),
        Err(e) => e,
    };
    match e.downcast::<wiggle::GuestError>() {
        Ok(guest) => wjit::Error::new(guest),
        Err(e) => wjit::Error::new(WasiTrap(format!("{e:#}"))),
    }
}

/// Signalled when a module that calls WASI exports no memory named `memory`.
#[derive(Debug)]
pub struct MissingMemory;

impl std::fmt::Display for MissingMemory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("WASI call from a module that exports no memory named `memory`")
    }
}

impl std::error::Error for MissingMemory {}

/// The calling instance's exported `memory`.
fn caller_memory<T>(caller: &mut Caller<'_, T>) -> Result<wjit::Memory, wjit::Error> {
    match caller.get_export("memory") {
        Some(Extern::Memory(m)) => Ok(m),
        _ => Err(wjit::Error::new(MissingMemory)),
    }
}

macro_rules! define_wasi {
    ($linker:ident, $get_cx:ident, $module_name:literal, $snapshot:ident :: $module:ident,
     $(fn $name:ident($($arg:ident: $ty:ty),*) -> $ret:ty;)*) => {
        $(
            $linker.func_wrap(
                $module_name,
                stringify!($name),
                move |mut caller: Caller<'_, T>, $($arg: $ty),*| -> Result<$ret, wjit::Error> {
                    let memory = caller_memory(&mut caller)?;
                    let (bytes, data) = memory.data_and_store_mut(&mut caller);
                    let mut memory = GuestMemory::Unshared(bytes);
                    block_on(wasi_common::snapshots::$snapshot::$module::$name(
                        $get_cx(data),
                        &mut memory,
                        $($arg),*
                    ))?
                    .map_err(host_error)
                },
            )?;
        )*
    };
}

macro_rules! with_wasi_functions {
    ($mac:ident, $($prefix:tt)*) => {
        $mac! { $($prefix)*
            fn args_get(a0: i32, a1: i32) -> i32;
            fn args_sizes_get(a0: i32, a1: i32) -> i32;
            fn environ_get(a0: i32, a1: i32) -> i32;
            fn environ_sizes_get(a0: i32, a1: i32) -> i32;
            fn clock_res_get(a0: i32, a1: i32) -> i32;
            fn clock_time_get(a0: i32, a1: i64, a2: i32) -> i32;
            fn fd_advise(a0: i32, a1: i64, a2: i64, a3: i32) -> i32;
            fn fd_allocate(a0: i32, a1: i64, a2: i64) -> i32;
            fn fd_close(a0: i32) -> i32;
            fn fd_datasync(a0: i32) -> i32;
            fn fd_fdstat_get(a0: i32, a1: i32) -> i32;
            fn fd_fdstat_set_flags(a0: i32, a1: i32) -> i32;
            fn fd_fdstat_set_rights(a0: i32, a1: i64, a2: i64) -> i32;
            fn fd_filestat_get(a0: i32, a1: i32) -> i32;
            fn fd_filestat_set_size(a0: i32, a1: i64) -> i32;
            fn fd_filestat_set_times(a0: i32, a1: i64, a2: i64, a3: i32) -> i32;
            fn fd_pread(a0: i32, a1: i32, a2: i32, a3: i64, a4: i32) -> i32;
            fn fd_prestat_get(a0: i32, a1: i32) -> i32;
            fn fd_prestat_dir_name(a0: i32, a1: i32, a2: i32) -> i32;
            fn fd_pwrite(a0: i32, a1: i32, a2: i32, a3: i64, a4: i32) -> i32;
            fn fd_read(a0: i32, a1: i32, a2: i32, a3: i32) -> i32;
            fn fd_readdir(a0: i32, a1: i32, a2: i32, a3: i64, a4: i32) -> i32;
            fn fd_renumber(a0: i32, a1: i32) -> i32;
            fn fd_seek(a0: i32, a1: i64, a2: i32, a3: i32) -> i32;
            fn fd_sync(a0: i32) -> i32;
            fn fd_tell(a0: i32, a1: i32) -> i32;
            fn fd_write(a0: i32, a1: i32, a2: i32, a3: i32) -> i32;
            fn path_create_directory(a0: i32, a1: i32, a2: i32) -> i32;
            fn path_filestat_get(a0: i32, a1: i32, a2: i32, a3: i32, a4: i32) -> i32;
            fn path_filestat_set_times(a0: i32, a1: i32, a2: i32, a3: i32, a4: i64, a5: i64, a6: i32) -> i32;
            fn path_link(a0: i32, a1: i32, a2: i32, a3: i32, a4: i32, a5: i32, a6: i32) -> i32;
            fn path_open(a0: i32, a1: i32, a2: i32, a3: i32, a4: i32, a5: i64, a6: i64, a7: i32, a8: i32) -> i32;
            fn path_readlink(a0: i32, a1: i32, a2: i32, a3: i32, a4: i32, a5: i32) -> i32;
            fn path_remove_directory(a0: i32, a1: i32, a2: i32) -> i32;
            fn path_rename(a0: i32, a1: i32, a2: i32, a3: i32, a4: i32, a5: i32) -> i32;
            fn path_symlink(a0: i32, a1: i32, a2: i32, a3: i32, a4: i32) -> i32;
            fn path_unlink_file(a0: i32, a1: i32, a2: i32) -> i32;
            fn poll_oneoff(a0: i32, a1: i32, a2: i32, a3: i32) -> i32;
            fn proc_exit(a0: i32) -> ();
            fn proc_raise(a0: i32) -> i32;
            fn sched_yield() -> i32;
            fn random_get(a0: i32, a1: i32) -> i32;
            fn sock_recv(a0: i32, a1: i32, a2: i32, a3: i32, a4: i32, a5: i32) -> i32;
            fn sock_send(a0: i32, a1: i32, a2: i32, a3: i32, a4: i32) -> i32;
        }
    };
}

/// Defines every WASI preview1 function, under both `wasi_snapshot_preview1` and the older
/// `wasi_unstable` module name (its own ABI, e.g. its `filestat` layout), in `linker`.
/// `get_cx` finds the store's WASI context in its host data, so each [`wjit::Store`] runs
/// with its own arguments, files and streams.
///
/// Each call reads and writes the calling instance's exported `memory`.
pub fn add_to_linker<T: 'static>(
    linker: &mut Linker<T>,
    get_cx: impl Fn(&mut T) -> &mut WasiCtx + Send + Sync + Copy + 'static,
) -> Result<(), wjit::Error> {
    with_wasi_functions!(
        define_wasi,
        linker,
        get_cx,
        "wasi_snapshot_preview1",
        preview_1::wasi_snapshot_preview1,
    );
    linker.func_wrap(
        "wasi_snapshot_preview1",
        "sock_accept",
        move |mut caller: Caller<'_, T>, a0: i32, a1: i32, a2: i32| -> Result<i32, wjit::Error> {
            let memory = caller_memory(&mut caller)?;
            let (bytes, data) = memory.data_and_store_mut(&mut caller);
            let mut memory = GuestMemory::Unshared(bytes);
            block_on(
                wasi_common::snapshots::preview_1::wasi_snapshot_preview1::sock_accept(
                    get_cx(data),
                    &mut memory,
                    a0,
                    a1,
                    a2,
                ),
            )?
            .map_err(host_error)
        },
    )?;
    with_wasi_functions!(
        define_wasi,
        linker,
        get_cx,
        "wasi_unstable",
        preview_0::wasi_unstable,
    );
    define_wasi!(
        linker,
        get_cx,
        "wasi_unstable",
        preview_0::wasi_unstable,
        fn sock_shutdown(a0: i32, a1: i32) -> i32;
    );
    // wasi-common answers `EBADF` for `sock_shutdown` on an open file that is not a socket;
    // POSIX (and the WASI test suite) want `ENOTSOCK`.
    linker.func_wrap(
        "wasi_snapshot_preview1",
        "sock_shutdown",
        move |mut caller: Caller<'_, T>, fd: i32, how: i32| -> Result<i32, wjit::Error> {
            use p1::WasiSnapshotPreview1 as _;
            use wasi_common::snapshots::preview_1::types::{Errno, Fd, Filetype};
            use wasi_common::snapshots::preview_1::wasi_snapshot_preview1 as p1;
            let memory = caller_memory(&mut caller)?;
            let (bytes, data) = memory.data_and_store_mut(&mut caller);
            let mut memory = GuestMemory::Unshared(bytes);
            let cx = get_cx(data);
            if let Ok(stat) = block_on(cx.fd_fdstat_get(&mut memory, Fd::from(fd as u32)))? {
                if !matches!(
                    stat.fs_filetype,
                    Filetype::SocketStream | Filetype::SocketDgram
                ) {
                    return Ok(Errno::Notsock as i32);
                }
            }
            block_on(p1::sock_shutdown(cx, &mut memory, fd, how))?.map_err(host_error)
        },
    )?;
    Ok(())
}

/// Whether `module` is a WASI import module name this crate provides.
pub fn is_wasi_module(module: &str) -> bool {
    matches!(module, "wasi_snapshot_preview1" | "wasi_unstable")
}
