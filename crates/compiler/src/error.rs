use thiserror::Error;

/// Why a function could not be compiled.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum CompileError {
    /// The function body is malformed or does not validate.
    #[error("invalid function {func_index} at byte offset {offset:#x}: {message}")]
    Invalid {
        /// Function index in the module's function index space.
        func_index: u32,
        /// Byte offset in the module binary.
        offset: usize,
        /// What is wrong (from wasmparser).
        message: String,
    },
    /// The body uses a feature this compiler does not implement yet. The message names the
    /// function and the byte offset in the module binary, e.g.
    /// `function 3 at byte offset 0x1a2: simd operator v128.const`.
    #[error("unsupported: {0}")]
    Unsupported(String),
    /// Internal limit or encoding failure (a bug in the compiler, reported instead of panicking).
    #[error("internal compiler error: {0}")]
    Internal(String),
}

impl CompileError {
    pub(crate) fn invalid(func_index: u32, e: wasmparser::BinaryReaderError) -> Self {
        CompileError::Invalid {
            func_index,
            offset: e.offset() as usize,
            message: e.message().to_string(),
        }
    }

    /// An `Unsupported` error for function `func_index` at byte `offset`.
    pub(crate) fn unsupported(func_index: u32, offset: u64, what: impl std::fmt::Display) -> Self {
        CompileError::Unsupported(format!(
            "function {func_index} at byte offset {offset:#x}: {what}"
        ))
    }

    /// Adds the location to an `Unsupported` error raised while emitting code (which does
    /// not know it); other errors are returned as they are.
    pub(crate) fn located(self, func_index: u32, offset: u64) -> Self {
        match self {
            CompileError::Unsupported(what) => Self::unsupported(func_index, offset, what),
            other => other,
        }
    }
}
