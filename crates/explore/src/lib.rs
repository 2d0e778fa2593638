//! wjit-explore: what wjit makes of a module, for people. Renders a
//! [`wjit::CodeListing`] as text: each function's machine code, disassembled (iced-x86 for
//! x86-64, yaxpeax-arm for AArch64), under the wasm operator each range of code was emitted
//! for, plus per-function code sizes and a module summary. `wjit compile --disasm` prints
//! this; tests and tools can call it too.
//!
//! ```
//! use wjit::{CodeListing, Config, Engine, Target};
//! let engine = Engine::new(&Config::new())?;
//! let wat = r#"(module (func $add (param i32 i32) (result i32)
//!                (i32.add (local.get 0) (local.get 1))))"#;
//! let listing = CodeListing::compile(&engine, wat, Target::Aarch64)?;
//! let text = wjit_explore::disassembly(&listing, &wjit_explore::ListingOptions::default())?;
//! assert!(text.contains("i32.add"));
//! # Ok::<(), wjit_explore::ExploreError>(())
//! ```
#![warn(missing_docs)]

mod disasm;
mod render;
mod wasm_text;

pub use disasm::{disassemble, Instruction};
pub use render::{disassembly, select, summary};
pub use wjit::{CodeListing, FunctionCode, Target};

/// Which function to show: by index in the module's function index space, or by name
/// (its name-section name, or a name it is exported as).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FuncSelector {
    /// A function index (imports count).
    Index(u32),
    /// A name-section or export name.
    Name(String),
}

impl std::str::FromStr for FuncSelector {
    type Err = std::convert::Infallible;

    /// Decimal digits are an index, anything else a name (a leading `$` is dropped).
    fn from_str(s: &str) -> Result<FuncSelector, Self::Err> {
        Ok(match s.parse::<u32>() {
            Ok(index) if s.bytes().all(|b| b.is_ascii_digit()) => FuncSelector::Index(index),
            _ => FuncSelector::Name(s.strip_prefix('$').unwrap_or(s).to_string()),
        })
    }
}

impl std::fmt::Display for FuncSelector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FuncSelector::Index(i) => write!(f, "{i}"),
            FuncSelector::Name(n) => write!(f, "`{n}`"),
        }
    }
}

/// What a listing shows.
#[derive(Debug, Clone, Default)]
pub struct ListingOptions {
    /// Only this function (default: all).
    pub func: Option<FuncSelector>,
    /// Show each instruction's bytes.
    pub bytes: bool,
}

/// Why a listing could not be made.
#[derive(Debug, thiserror::Error)]
pub enum ExploreError {
    /// The module did not parse, validate or compile.
    #[error(transparent)]
    Wjit(#[from] wjit::Error),
    /// `--func` names no function of the module.
    #[error("no function {wanted} in the module ({known})")]
    NoSuchFunction {
        /// The selector, as given.
        wanted: String,
        /// The functions there are, briefly.
        known: String,
    },
    /// `--func` names an imported function, which has no code.
    #[error("function {index} is imported ({name}): it has no code")]
    Imported {
        /// Its index.
        index: u32,
        /// `module.name` of the import.
        name: String,
    },
}
