//! Errors and traps: what every fallible operation of the runtime returns.
//!
//! Owns [`Error`], [`Trap`], [`FrameInfo`] and [`I32Exit`]. Part of the base floor: it imports
//! nothing else from the crate.

pub use wjit_compiler::TrapCode;

/// Everything that can go wrong when compiling, linking or running wasm.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The module is malformed or invalid; the message says what and where.
    #[error("compile error: {0}")]
    Compile(String),
    /// The module uses a feature wjit does not implement yet.
    #[error("unsupported: {0}")]
    Unsupported(String),
    /// An import is missing or has the wrong type, or a handle was used with the wrong store.
    #[error("link error: {0}")]
    Link(String),
    /// WebAssembly code trapped.
    #[error(transparent)]
    Trap(Trap),
    /// A host function failed (returned an error or panicked), or the embedder made a
    /// request the runtime refused (a wrong argument type, a refused growth, ...).
    #[error(transparent)]
    Host(HostError),
    /// A wasm exception that no wasm frame caught (`throw`, or a host function that threw
    /// one); [`Error::exception`] gives it as an [`crate::ExnRef`]. A host function that
    /// returns this error throws the exception on into its wasm caller.
    #[error("uncaught wasm exception")]
    Exception(ThrownException),
    /// Reading a file failed.
    #[error("i/o error: {0}")]
    Io(#[from] std::io::Error),
}

/// The exception of [`Error::Exception`]: an exception object of a store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ThrownException {
    /// The id of the store owning the exception.
    pub(crate) store: u64,
    /// Address of the exception object.
    pub(crate) exn: usize,
}

/// The error of a host function, with the wasm frames that were active when it failed.
#[derive(Debug)]
pub struct HostError {
    error: anyhow::Error,
    frames: Vec<FrameInfo>,
}

impl std::fmt::Display for HostError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.error)?;
        write_backtrace(f, &self.frames)
    }
}

impl std::error::Error for HostError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.error.source()
    }
}

impl Error {
    /// An error carrying any host error value; get it back with [`Error::downcast_ref`].
    pub fn new<E: std::error::Error + Send + Sync + 'static>(error: E) -> Error {
        Error::Host(HostError {
            error: anyhow::Error::new(error),
            frames: Vec::new(),
        })
    }

    /// An error with a message.
    pub fn msg(message: impl std::fmt::Display + std::fmt::Debug + Send + Sync + 'static) -> Error {
        Error::Host(HostError {
            error: anyhow::Error::msg(message),
            frames: Vec::new(),
        })
    }

    /// The host error value of type `E` inside this error, if there is one (errors given to
    /// [`Error::new`], `anyhow` errors and their context chains), or the [`Trap`] if `E` is
    /// `Trap`.
    pub fn downcast_ref<E: std::fmt::Display + std::fmt::Debug + Send + Sync + 'static>(
        &self,
    ) -> Option<&E> {
        match self {
            Error::Host(h) => h.error.downcast_ref::<E>(),
            Error::Trap(t) => (t as &dyn std::any::Any).downcast_ref::<E>(),
            _ => None,
        }
    }

    /// Whether this error carries a host error value of type `E`.
    pub fn is<E: std::fmt::Display + std::fmt::Debug + Send + Sync + 'static>(&self) -> bool {
        self.downcast_ref::<E>().is_some()
    }

    /// The trap, if this error is one.
    pub fn as_trap(&self) -> Option<&Trap> {
        match self {
            Error::Trap(t) => Some(t),
            _ => None,
        }
    }

    /// The trap code, if this error is a trap.
    pub fn trap_code(&self) -> Option<TrapCode> {
        self.as_trap().map(Trap::code)
    }

    /// The exit status of a program that ended with [`I32Exit`] (WASI `proc_exit`).
    pub fn i32_exit_status(&self) -> Option<i32> {
        self.downcast_ref::<I32Exit>().map(|e| e.0)
    }

    /// The wasm frames active when the error happened, innermost first (empty when the error
    /// did not come from running wasm).
    pub fn wasm_backtrace(&self) -> &[FrameInfo] {
        match self {
            Error::Trap(t) => &t.frames,
            Error::Host(h) => &h.frames,
            _ => &[],
        }
    }

    /// Attaches the wasm frames above a failed host call (innermost first).
    pub(crate) fn with_frames(self, frames: Vec<FrameInfo>) -> Error {
        match self {
            Error::Host(mut h) if h.frames.is_empty() => {
                h.frames = frames;
                Error::Host(h)
            }
            Error::Trap(t) if t.frames.is_empty() => Error::Trap(t.with_frames(frames)),
            other => other,
        }
    }
}

impl From<Trap> for Error {
    fn from(t: Trap) -> Error {
        Error::Trap(t)
    }
}

impl From<TrapCode> for Error {
    fn from(code: TrapCode) -> Error {
        Error::Trap(Trap::new(code))
    }
}

impl From<anyhow::Error> for Error {
    /// Wraps an `anyhow` error as a host error (an `anyhow` error that wraps a wjit
    /// [`Error`] gives that error back).
    fn from(error: anyhow::Error) -> Error {
        match error.downcast::<Error>() {
            Ok(e) => e,
            Err(error) => Error::Host(HostError {
                error,
                frames: Vec::new(),
            }),
        }
    }
}

impl From<wjit_compiler::CompileError> for Error {
    fn from(e: wjit_compiler::CompileError) -> Error {
        match e.into_kind() {
            wjit_compiler::CompileErrorKind::Unsupported(m) => Error::Unsupported(m),
            other => Error::Compile(other.to_string()),
        }
    }
}

impl From<wasmparser::BinaryReaderError> for Error {
    fn from(e: wasmparser::BinaryReaderError) -> Error {
        Error::Compile(format!(
            "{} (at byte offset {:#x})",
            e.message(),
            e.offset()
        ))
    }
}

/// The error a host function returns to end the program with an exit status, as WASI's
/// `proc_exit` does. The embedder reads it back with [`Error::i32_exit_status`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct I32Exit(pub i32);

impl std::fmt::Display for I32Exit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "exited with i32 exit status {}", self.0)
    }
}

impl std::error::Error for I32Exit {}

/// One wasm frame of a backtrace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FrameInfo {
    pub(crate) func_index: u32,
    pub(crate) func_name: Option<String>,
    pub(crate) wasm_offset: Option<u32>,
}

impl FrameInfo {
    /// Index of the function in its module's function index space.
    pub fn func_index(&self) -> u32 {
        self.func_index
    }
    /// The function's name from the module's name section, if any.
    pub fn func_name(&self) -> Option<&str> {
        self.func_name.as_deref()
    }
    /// Byte offset in the module binary of the operator executing in this frame (the
    /// trapping one for the innermost frame, the call for the others).
    pub fn wasm_offset(&self) -> Option<u32> {
        self.wasm_offset
    }
}

/// A WebAssembly trap: execution stopped because of `code`.
#[derive(Debug, Clone)]
pub struct Trap {
    code: TrapCode,
    frames: Vec<FrameInfo>,
}

impl Trap {
    pub(crate) fn new(code: TrapCode) -> Trap {
        Trap {
            code,
            frames: Vec::new(),
        }
    }

    pub(crate) fn with_frames(mut self, frames: Vec<FrameInfo>) -> Trap {
        self.frames = frames;
        self
    }

    /// Which trap happened.
    pub fn code(&self) -> TrapCode {
        self.code
    }

    /// The wasm call stack at the trap, innermost frame first (empty for traps raised
    /// outside wasm code, e.g. by instantiation).
    pub fn frames(&self) -> &[FrameInfo] {
        &self.frames
    }

    /// Index of the wasm function that trapped, when known.
    pub fn func_index(&self) -> Option<u32> {
        self.frames.first().map(|f| f.func_index)
    }

    /// Byte offset of the trapping instruction in the module binary, when known.
    pub fn wasm_offset(&self) -> Option<u32> {
        self.frames.first().and_then(|f| f.wasm_offset)
    }
}

fn write_backtrace(f: &mut std::fmt::Formatter<'_>, frames: &[FrameInfo]) -> std::fmt::Result {
    if frames.is_empty() {
        return Ok(());
    }
    write!(f, "\nwasm backtrace:")?;
    for (i, frame) in frames.iter().enumerate() {
        write!(f, "\n  {i:>3}: ")?;
        match frame.wasm_offset {
            Some(off) => write!(f, "{off:#8x} - ")?,
            None => write!(f, "{:>8} - ", "?")?,
        }
        match &frame.func_name {
            Some(name) => write!(f, "{name}")?,
            None => write!(f, "<wasm function {}>", frame.func_index)?,
        }
    }
    Ok(())
}

impl std::fmt::Display for Trap {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "wasm trap: {}", self.code)?;
        write_backtrace(f, &self.frames)
    }
}

impl std::error::Error for Trap {}
