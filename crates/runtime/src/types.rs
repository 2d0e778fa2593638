//! Wasm types and values as seen by embedders.

use crate::func::Func;
use std::any::Any;
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
    pub minimum: u32,
    /// Maximum number of elements.
    pub maximum: Option<u32>,
}

/// The type of a linear memory, in 64 KiB pages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemoryType {
    /// Initial size in pages.
    pub minimum: u64,
    /// Maximum size in pages.
    pub maximum: Option<u64>,
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
                write!(f, "(table {} {:?} {})", t.minimum, t.maximum, t.element)
            }
            ExternType::Memory(m) => write!(f, "(memory {} {:?})", m.minimum, m.maximum),
        }
    }
}

/// An opaque host value passed to wasm as an `externref`.
#[derive(Clone)]
pub struct ExternRef(pub(crate) Arc<dyn Any + Send + Sync>);

impl ExternRef {
    /// Wraps host data.
    pub fn new<T: Any + Send + Sync>(data: T) -> ExternRef {
        ExternRef(Arc::new(data))
    }
    /// The wrapped data.
    pub fn data(&self) -> &(dyn Any + Send + Sync) {
        &*self.0
    }
}

impl fmt::Debug for ExternRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ExternRef({:p})", Arc::as_ptr(&self.0))
    }
}

/// A wasm value.
#[derive(Debug, Clone)]
pub enum Val {
    /// i32
    I32(i32),
    /// i64
    I64(i64),
    /// f32, as raw bits (NaN payloads are preserved).
    F32(u32),
    /// f64, as raw bits.
    F64(u64),
    /// funcref (None is null).
    FuncRef(Option<Func>),
    /// externref (None is null).
    ExternRef(Option<ExternRef>),
}

impl Val {
    /// The value's type.
    pub fn ty(&self) -> ValType {
        match self {
            Val::I32(_) => ValType::I32,
            Val::I64(_) => ValType::I64,
            Val::F32(_) => ValType::F32,
            Val::F64(_) => ValType::F64,
            Val::FuncRef(_) => ValType::FuncRef,
            Val::ExternRef(_) => ValType::ExternRef,
        }
    }
    /// The zero value (or null) of `ty`.
    pub fn default_for(ty: ValType) -> Val {
        match ty {
            ValType::I32 | ValType::V128 => Val::I32(0),
            ValType::I64 => Val::I64(0),
            ValType::F32 => Val::F32(0),
            ValType::F64 => Val::F64(0),
            ValType::FuncRef => Val::FuncRef(None),
            ValType::ExternRef => Val::ExternRef(None),
        }
    }
    /// The i32, if this is one.
    pub fn i32(&self) -> Option<i32> {
        match self {
            Val::I32(v) => Some(*v),
            _ => None,
        }
    }
    /// The i64, if this is one.
    pub fn i64(&self) -> Option<i64> {
        match self {
            Val::I64(v) => Some(*v),
            _ => None,
        }
    }
    /// The f32, if this is one.
    pub fn f32(&self) -> Option<f32> {
        match self {
            Val::F32(v) => Some(f32::from_bits(*v)),
            _ => None,
        }
    }
    /// The f64, if this is one.
    pub fn f64(&self) -> Option<f64> {
        match self {
            Val::F64(v) => Some(f64::from_bits(*v)),
            _ => None,
        }
    }
}

impl From<i32> for Val {
    fn from(v: i32) -> Val {
        Val::I32(v)
    }
}
impl From<i64> for Val {
    fn from(v: i64) -> Val {
        Val::I64(v)
    }
}
impl From<f32> for Val {
    fn from(v: f32) -> Val {
        Val::F32(v.to_bits())
    }
}
impl From<f64> for Val {
    fn from(v: f64) -> Val {
        Val::F64(v.to_bits())
    }
}
