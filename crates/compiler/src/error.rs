use thiserror::Error;

/// Why a function could not be compiled.
///
/// One pointer wide (the details are boxed): every operator's compilation returns a
/// `Result<(), CompileError>`, which then fits in a register instead of going through
/// memory. [`CompileError::kind`] tells what went wrong.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
#[error(transparent)]
pub struct CompileError(Box<CompileErrorKind>);

/// What went wrong, for [`CompileError`].
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum CompileErrorKind {
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

impl From<CompileErrorKind> for CompileError {
    fn from(kind: CompileErrorKind) -> CompileError {
        CompileError(Box::new(kind))
    }
}

impl CompileError {
    /// What went wrong.
    pub fn kind(&self) -> &CompileErrorKind {
        &self.0
    }

    /// What went wrong, by value.
    pub fn into_kind(self) -> CompileErrorKind {
        *self.0
    }

    /// An [`CompileErrorKind::Internal`] error: a bug in the compiler.
    #[cold]
    pub(crate) fn internal(message: String) -> Self {
        CompileErrorKind::Internal(message).into()
    }

    /// An [`CompileErrorKind::Unsupported`] error whose message already says where (or is
    /// given its location later by [`CompileError::located`]).
    #[cold]
    pub(crate) fn unsupported_feature(message: String) -> Self {
        CompileErrorKind::Unsupported(message).into()
    }

    /// An [`CompileErrorKind::Invalid`] error at a module byte offset.
    #[cold]
    pub(crate) fn invalid_at(func_index: u32, offset: usize, message: impl Into<String>) -> Self {
        CompileErrorKind::Invalid {
            func_index,
            offset,
            message: message.into(),
        }
        .into()
    }

    #[cold]
    pub(crate) fn invalid(func_index: u32, e: wasmparser::BinaryReaderError) -> Self {
        Self::invalid_at(func_index, e.offset() as usize, e.message())
    }

    /// An `Unsupported` error for function `func_index` at byte `offset`.
    #[cold]
    pub(crate) fn unsupported(func_index: u32, offset: u64, what: impl std::fmt::Display) -> Self {
        Self::unsupported_feature(format!(
            "function {func_index} at byte offset {offset:#x}: {what}"
        ))
    }

    /// Adds the location to an `Unsupported` error raised while emitting code (which does
    /// not know it); other errors are returned as they are.
    pub(crate) fn located(self, func_index: u32, offset: u64) -> Self {
        match *self.0 {
            CompileErrorKind::Unsupported(what) => Self::unsupported(func_index, offset, what),
            _ => self,
        }
    }
}
