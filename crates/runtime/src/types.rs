//! Wasm types as seen by embedders: value, function, global, table, memory and extern types.
//!
//! Part of the base floor: imports only the error module.

use std::fmt;
use std::sync::Arc;

/// A wasm value type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ValType {
    /// 32-bit integer.
    I32,
    /// 64-bit integer.
    I64,
    /// 32-bit float.
    F32,
    /// 64-bit float.
    F64,
    /// 128-bit vector.
    V128,
    /// Function reference.
    FuncRef,
    /// Opaque host reference.
    ExternRef,
}

impl fmt::Display for ValType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ValType::I32 => "i32",
            ValType::I64 => "i64",
            ValType::F32 => "f32",
            ValType::F64 => "f64",
            ValType::V128 => "v128",
            ValType::FuncRef => "funcref",
            ValType::ExternRef => "externref",
        })
    }
}

impl ValType {
    /// How many 8-byte words a value of this type takes in a call's argument/result area
    /// (and in the entry stub's value array): 2 for v128, 1 for everything else.
    pub(crate) fn words(self) -> usize {
        match self {
            ValType::V128 => 2,
            _ => 1,
        }
    }

    pub(crate) fn from_wasm(ty: wasmparser::ValType) -> Result<ValType, crate::Error> {
        Ok(match ty {
            wasmparser::ValType::I32 => ValType::I32,
            wasmparser::ValType::I64 => ValType::I64,
            wasmparser::ValType::F32 => ValType::F32,
            wasmparser::ValType::F64 => ValType::F64,
            wasmparser::ValType::V128 => ValType::V128,
            wasmparser::ValType::Ref(r) if r == wasmparser::RefType::FUNCREF => ValType::FuncRef,
            wasmparser::ValType::Ref(r) if r == wasmparser::RefType::EXTERNREF => {
                ValType::ExternRef
            }
            wasmparser::ValType::Ref(r) => {
                return Err(crate::Error::Unsupported(format!("reference type {r:?}")))
            }
        })
    }
}

/// A function signature.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct FuncType {
    params: Arc<[ValType]>,
    results: Arc<[ValType]>,
}

impl FuncType {
    /// A signature from parameter and result types.
    pub fn new(
        params: impl IntoIterator<Item = ValType>,
        results: impl IntoIterator<Item = ValType>,
    ) -> FuncType {
        FuncType {
            params: params.into_iter().collect(),
            results: results.into_iter().collect(),
        }
    }
    /// Parameter types.
    pub fn params(&self) -> &[ValType] {
        &self.params
    }
    /// Result types.
    pub fn results(&self) -> &[ValType] {
        &self.results
    }
    /// Words of the area through which calls of this type pass arguments and results: the
    /// larger of the parameters' and the results' sizes, in 8-byte words.
    pub(crate) fn area_words(&self) -> usize {
        let words = |v: &[ValType]| v.iter().map(|t| t.words()).sum::<usize>();
        words(&self.params).max(words(&self.results))
    }
    pub(crate) fn from_wasm(ty: &wasmparser::FuncType) -> Result<FuncType, crate::Error> {
        let params = ty
            .params()
            .iter()
            .map(|&t| ValType::from_wasm(t))
            .collect::<Result<Vec<_>, _>>()?;
        let results = ty
            .results()
            .iter()
            .map(|&t| ValType::from_wasm(t))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(FuncType::new(params, results))
    }
}

impl fmt::Display for FuncType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let list = |v: &[ValType]| {
            v.iter()
                .map(|t| t.to_string())
                .collect::<Vec<_>>()
                .join(" ")
        };
        write!(
            f,
            "(func (param {}) (result {}))",
            list(&self.params),
            list(&self.results)
        )
    }
}

/// The type of a global.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GlobalType {
    /// Value type.
    pub content: ValType,
    /// Whether `global.set` is allowed.
    pub mutable: bool,
}

/// The type of a table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TableType {
    /// Element type (`FuncRef` or `ExternRef`).
    pub element: ValType,
    /// Initial number of elements.
    pub minimum: u64,
    /// Maximum number of elements.
    pub maximum: Option<u64>,
    /// Indexed by `i64` (table64, part of memory64) rather than `i32`.
    pub table64: bool,
}

/// The type of a linear memory, in 64 KiB pages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemoryType {
    /// Initial size in pages.
    pub minimum: u64,
    /// Maximum size in pages.
    pub maximum: Option<u64>,
    /// Indexed by `i64` (memory64) rather than `i32`.
    pub memory64: bool,
}

impl MemoryType {
    /// A 32-bit memory of `minimum` pages, growable to `maximum`.
    pub fn new(minimum: u64, maximum: Option<u64>) -> MemoryType {
        MemoryType {
            minimum,
            maximum,
            memory64: false,
        }
    }
    /// A 64-bit memory (memory64) of `minimum` pages, growable to `maximum`.
    pub fn new64(minimum: u64, maximum: Option<u64>) -> MemoryType {
        MemoryType {
            minimum,
            maximum,
            memory64: true,
        }
    }
}

/// The type of an import or export.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExternType {
    /// A function.
    Func(FuncType),
    /// A global.
    Global(GlobalType),
    /// A table.
    Table(TableType),
    /// A memory.
    Memory(MemoryType),
}

impl fmt::Display for ExternType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ExternType::Func(t) => write!(f, "{t}"),
            ExternType::Global(g) => write!(
                f,
                "(global {}{})",
                if g.mutable { "mut " } else { "" },
                g.content
            ),
            ExternType::Table(t) => {
                let index = if t.table64 { "i64 " } else { "" };
                write!(
                    f,
                    "(table {index}{} {:?} {})",
                    t.minimum, t.maximum, t.element
                )
            }
            ExternType::Memory(m) => write!(
                f,
                "(memory {}{} {:?})",
                if m.memory64 { "i64 " } else { "" },
                m.minimum,
                m.maximum
            ),
        }
    }
}
