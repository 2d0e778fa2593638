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

/// A WebAssembly trap: execution stopped because of `code`.
#[derive(Debug, Clone)]
pub struct Trap {
    code: TrapCode,
    /// Index of the wasm function that trapped, when known.
    func_index: Option<u32>,
    /// Byte offset of the trapping operator in the module, when known.
    wasm_offset: Option<u32>,
}

impl Trap {
    pub(crate) fn new(code: TrapCode) -> Trap {
        Trap {
            code,
            func_index: None,
            wasm_offset: None,
        }
    }

    pub(crate) fn with_location(mut self, func_index: u32, wasm_offset: u32) -> Trap {
        self.func_index = Some(func_index);
        self.wasm_offset = Some(wasm_offset);
        self
    }

    /// Which trap happened.
    pub fn code(&self) -> TrapCode {
        self.code
    }

    /// Index of the wasm function that trapped, when known.
    pub fn func_index(&self) -> Option<u32> {
        self.func_index
    }

    /// Byte offset of the trapping instruction in the module binary, when known.
    pub fn wasm_offset(&self) -> Option<u32> {
        self.wasm_offset
    }
}

impl std::fmt::Display for Trap {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "wasm trap: {}", self.code)?;
        if let (Some(func), Some(off)) = (self.func_index, self.wasm_offset) {
            write!(f, "\n  at wasm function {func} (offset {off:#x})")?;
        }
        Ok(())
    }
}

impl std::error::Error for Trap {}
