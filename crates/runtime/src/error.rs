//! Errors and traps.

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
    /// An import is missing or has the wrong type.
    #[error("link error: {0}")]
    Link(String),
    /// WebAssembly code trapped.
    #[error(transparent)]
    Trap(Trap),
    /// A host function returned an error or panicked.
    #[error("host error: {0}")]
    Host(String),
    /// Reading a file failed.
    #[error("i/o error: {0}")]
    Io(#[from] std::io::Error),
}

impl Error {
    /// The trap, if this error is one.
    pub fn as_trap(&self) -> Option<&Trap> {
        match self {
            Error::Trap(t) => Some(t),
            _ => None,
        }
    }
}

impl From<Trap> for Error {
    fn from(t: Trap) -> Error {
        Error::Trap(t)
    }
}

impl From<wjit_compiler::CompileError> for Error {
    fn from(e: wjit_compiler::CompileError) -> Error {
        match e {
            wjit_compiler::CompileError::Unsupported(m) => Error::Unsupported(m),
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

/// One wasm frame of a trap's backtrace.
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

impl std::fmt::Display for Trap {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "wasm trap: {}", self.code)?;
        if !self.frames.is_empty() {
            write!(f, "\nwasm backtrace:")?;
            for (i, frame) in self.frames.iter().enumerate() {
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
        }
        Ok(())
    }
}

impl std::error::Error for Trap {}
