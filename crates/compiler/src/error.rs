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
    /// The body uses a feature this compiler does not implement yet.
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
}
