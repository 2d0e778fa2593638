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
    /// A typed reference of the function references proposal: `(ref func)`,
    /// `(ref extern)`, `(ref $t)` or `(ref null $t)`. The nullable abstract ones,
    /// `(ref null func)` and `(ref null extern)`, are always [`ValType::FuncRef`] and
    /// [`ValType::ExternRef`] (see [`ValType::reference`]).
    Ref(RefType),
}

/// The heap type of a reference: what it points to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum HeapType {
    /// Any function (`func`).
    Func,
    /// Any host reference (`extern`).
    Extern,
    /// Any exception (`exn`, of the exception-handling proposal).
    Exn,
    /// A function of one signature, by the engine's canonical id of that signature
    /// (two modules of one engine that declare the same function type get the same id;
    /// ids of different engines are unrelated). Found in the types of imports and
    /// exports, e.g. [`crate::Func::ty`] of a function taking a `(ref $t)`.
    Concrete(u32),
}

/// A reference type: a heap type and whether null is a value of the type.
///
/// Subtyping (checked when a value or an import must be of a reference type):
/// `(ref $t) <: (ref func) <: (ref null func)`, `(ref $t) <: (ref null $t) <:
/// (ref null func)`, `(ref extern) <: (ref null extern)`; a concrete type matches only
/// itself (without the GC proposal function types have no declared supertypes).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct RefType {
    /// Whether null belongs to the type.
    pub nullable: bool,
    /// What the reference points to.
    pub heap: HeapType,
}

impl RefType {
    /// `(ref null func)`, i.e. `funcref`.
    pub const FUNCREF: RefType = RefType {
        nullable: true,
        heap: HeapType::Func,
    };
    /// `(ref null extern)`, i.e. `externref`.
    pub const EXTERNREF: RefType = RefType {
        nullable: true,
        heap: HeapType::Extern,
    };

    /// Whether every value of `self` is a value of `other`.
    pub fn matches(&self, other: &RefType) -> bool {
        (!self.nullable || other.nullable)
            && match (self.heap, other.heap) {
                (a, b) if a == b => true,
                (HeapType::Concrete(_), HeapType::Func) => true,
                _ => false,
            }
    }

    /// `(ref null exn)`, i.e. `exnref`.
    pub const EXNREF: RefType = RefType {
        nullable: true,
        heap: HeapType::Exn,
    };

    /// Whether the references of this type are function references.
    pub fn is_func(&self) -> bool {
        matches!(self.heap, HeapType::Func | HeapType::Concrete(_))
    }
}

impl fmt::Display for RefType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let null = if self.nullable { "null " } else { "" };
        match self.heap {
            HeapType::Func => write!(f, "(ref {null}func)"),
            HeapType::Extern => write!(f, "(ref {null}extern)"),
            HeapType::Exn => write!(f, "(ref {null}exn)"),
            HeapType::Concrete(id) => write!(f, "(ref {null}<signature {id}>)"),
        }
    }
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
            ValType::Ref(RefType::EXNREF) => "exnref",
            ValType::Ref(r) => return write!(f, "{r}"),
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

    /// `exnref`, i.e. `(ref null exn)`.
    pub const EXNREF: ValType = ValType::Ref(RefType::EXNREF);

    /// The value type of references of type `r`: [`ValType::FuncRef`] and
    /// [`ValType::ExternRef`] for the nullable abstract types, else [`ValType::Ref`].
    pub fn reference(r: RefType) -> ValType {
        match r {
            RefType::FUNCREF => ValType::FuncRef,
            RefType::EXTERNREF => ValType::ExternRef,
            r => ValType::Ref(r),
        }
    }

    /// The reference type of a reference value type (`funcref` is `(ref null func)`).
    pub fn as_ref(&self) -> Option<RefType> {
        match *self {
            ValType::FuncRef => Some(RefType::FUNCREF),
            ValType::ExternRef => Some(RefType::EXTERNREF),
            ValType::Ref(r) => Some(r),
            _ => None,
        }
    }

    /// Whether every value of `self` is a value of `other` (equal types, or reference
    /// subtyping, see [`RefType`]).
    pub fn matches(&self, other: &ValType) -> bool {
        match (self.as_ref(), other.as_ref()) {
            (Some(a), Some(b)) => a.matches(&b),
            _ => self == other,
        }
    }

    /// `ty`, its concrete type indices mapped to the engine's signature ids `type_ids`
    /// (the module's types defined so far).
    pub(crate) fn from_wasm(
        ty: wasmparser::ValType,
        type_ids: &[u32],
    ) -> Result<ValType, crate::Error> {
        Ok(match ty {
            wasmparser::ValType::I32 => ValType::I32,
            wasmparser::ValType::I64 => ValType::I64,
            wasmparser::ValType::F32 => ValType::F32,
            wasmparser::ValType::F64 => ValType::F64,
            wasmparser::ValType::V128 => ValType::V128,
            wasmparser::ValType::Ref(r) => ValType::reference(RefType::from_wasm(r, type_ids)?),
        })
    }
}

impl RefType {
    pub(crate) fn from_wasm(
        r: wasmparser::RefType,
        type_ids: &[u32],
    ) -> Result<RefType, crate::Error> {
        use wasmparser::{AbstractHeapType as A, HeapType as H};
        let unsupported = || crate::Error::Unsupported(format!("reference type {r:?} (GC)"));
        let heap = match r.heap_type() {
            H::Abstract {
                shared: false,
                ty: A::Func,
            } => HeapType::Func,
            H::Abstract {
                shared: false,
                ty: A::Extern,
            } => HeapType::Extern,
            H::Abstract {
                shared: false,
                ty: A::Exn,
            } => HeapType::Exn,
            H::Concrete(idx) => {
                let i = idx.as_module_index().ok_or_else(unsupported)?;
                // Validated: a type index not defined yet is the type itself or a later
                // one of its recursion group, a recursive type of GC.
                let id = type_ids.get(i as usize).ok_or_else(|| {
                    crate::Error::Unsupported(format!("recursive type reference to type {i} (GC)"))
                })?;
                HeapType::Concrete(*id)
            }
            _ => return Err(unsupported()),
        };
        Ok(RefType {
            nullable: r.is_nullable(),
            heap,
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
    pub(crate) fn from_wasm(
        ty: &wasmparser::FuncType,
        type_ids: &[u32],
    ) -> Result<FuncType, crate::Error> {
        let params = ty
            .params()
            .iter()
            .map(|&t| ValType::from_wasm(t, type_ids))
            .collect::<Result<Vec<_>, _>>()?;
        let results = ty
            .results()
            .iter()
            .map(|&t| ValType::from_wasm(t, type_ids))
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
    /// Element type (`FuncRef`, `ExternRef` or a typed reference).
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

/// The type of a tag (exception-handling proposal): the function type whose parameters
/// are the payload of its exceptions (and whose results are empty).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TagType {
    ty: FuncType,
}

impl TagType {
    /// A tag type whose exceptions carry values of `ty`'s parameter types.
    pub fn new(ty: FuncType) -> TagType {
        TagType { ty }
    }
    /// The function type (parameters: the payload).
    pub fn ty(&self) -> &FuncType {
        &self.ty
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
    /// A tag.
    Tag(TagType),
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
            ExternType::Tag(t) => write!(f, "(tag {})", t.ty),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{HeapType, RefType, ValType};

    #[test]
    fn reference_subtyping() {
        let r = |nullable, heap| RefType { nullable, heap };
        let (t, u) = (HeapType::Concrete(1), HeapType::Concrete(2));
        // Nullable abstract types are the 2.0 value types.
        assert_eq!(
            ValType::reference(r(true, HeapType::Func)),
            ValType::FuncRef
        );
        assert_eq!(
            ValType::reference(r(true, HeapType::Extern)),
            ValType::ExternRef
        );
        assert_eq!(ValType::FuncRef.as_ref(), Some(RefType::FUNCREF));
        let sub = [
            (r(false, t), r(true, t)),
            (r(false, t), r(false, HeapType::Func)),
            (r(true, t), r(true, HeapType::Func)),
            (r(false, HeapType::Func), r(true, HeapType::Func)),
            (r(false, HeapType::Extern), r(true, HeapType::Extern)),
        ];
        for (a, b) in sub {
            assert!(a.matches(&b) && !b.matches(&a), "{a} <: {b}");
            assert!(a.matches(&a));
        }
        for (a, b) in [
            (r(false, t), r(false, u)),
            (r(true, t), r(false, HeapType::Func)),
            (r(false, HeapType::Func), r(true, HeapType::Extern)),
            (r(false, t), r(true, HeapType::Extern)),
        ] {
            assert!(!a.matches(&b), "{a} </: {b}");
        }
        assert!(ValType::reference(r(false, t)).matches(&ValType::FuncRef));
        assert!(!ValType::I32.matches(&ValType::FuncRef));
        assert!(ValType::I64.matches(&ValType::I64));
    }
}
