//! Wasm values as embedders see them ([`Val`], [`V128`], [`ExternRef`]) and the raw form
//! generated code uses: one 8-byte word per value, except a v128, which takes two
//! consecutive words (its low 64 bits first).

use crate::handles::{ExnRef, Func, StoreId};
use crate::types::{HeapType, RefType, ValType};
use crate::Error;
use std::any::Any;
use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex};

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

/// A wasm `v128` (SIMD) value: its 16 bytes in little-endian order read as a `u128`, so
/// lane 0 of any lane shape is in the lowest bits (for `i32x4`, lane `i` is
/// `(v.as_u128() >> (32 * i)) as u32`).
#[derive(Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct V128(u128);

impl V128 {
    /// The value as a `u128` (lane 0 in the low bits).
    pub fn as_u128(&self) -> u128 {
        self.0
    }
    /// The 16 bytes of the value, in memory (little-endian) order.
    pub fn to_le_bytes(&self) -> [u8; 16] {
        self.0.to_le_bytes()
    }
    /// The value whose bytes, in memory (little-endian) order, are `bytes`.
    pub fn from_le_bytes(bytes: [u8; 16]) -> V128 {
        V128(u128::from_le_bytes(bytes))
    }
}

impl From<u128> for V128 {
    fn from(v: u128) -> V128 {
        V128(v)
    }
}

impl From<V128> for u128 {
    fn from(v: V128) -> u128 {
        v.0
    }
}

impl fmt::Debug for V128 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "V128({:#034x})", self.0)
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
    /// v128 (SIMD vector).
    V128(V128),
    /// funcref (None is null).
    FuncRef(Option<Func>),
    /// externref (None is null).
    ExternRef(Option<ExternRef>),
    /// exnref (None is null).
    ExnRef(Option<ExnRef>),
}

impl Val {
    /// The value's type.
    pub fn ty(&self) -> ValType {
        match self {
            Val::I32(_) => ValType::I32,
            Val::I64(_) => ValType::I64,
            Val::F32(_) => ValType::F32,
            Val::F64(_) => ValType::F64,
            Val::V128(_) => ValType::V128,
            Val::FuncRef(_) => ValType::FuncRef,
            Val::ExternRef(_) => ValType::ExternRef,
            Val::ExnRef(_) => ValType::EXNREF,
        }
    }
    /// The zero value (or null) of `ty`.
    pub fn default_for(ty: ValType) -> Val {
        match ty {
            ValType::I32 => Val::I32(0),
            ValType::I64 => Val::I64(0),
            ValType::F32 => Val::F32(0),
            ValType::F64 => Val::F64(0),
            ValType::V128 => Val::V128(V128(0)),
            ValType::FuncRef => Val::FuncRef(None),
            ValType::ExternRef => Val::ExternRef(None),
            // (Also for non-nullable types, which have no default: a placeholder.)
            ValType::Ref(r) if r.is_func() => Val::FuncRef(None),
            ValType::Ref(RefType {
                heap: HeapType::Exn,
                ..
            }) => Val::ExnRef(None),
            ValType::Ref(_) => Val::ExternRef(None),
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
    /// The v128, if this is one.
    pub fn v128(&self) -> Option<V128> {
        match self {
            Val::V128(v) => Some(*v),
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
impl From<V128> for Val {
    fn from(v: V128) -> Val {
        Val::V128(v)
    }
}

/// Whether `v` is a value of type `ty` in `store`: its own type, or for a reference, any
/// subtype (null only for a nullable type; a function reference of a concrete type only
/// if the function has that signature).
pub(crate) fn val_matches(store: StoreId, v: &Val, ty: ValType) -> bool {
    let Some(r) = ty.as_ref() else {
        return v.ty() == ty;
    };
    match v {
        Val::FuncRef(None) => r.nullable && r.is_func(),
        Val::ExternRef(None) => r.nullable && r.heap == HeapType::Extern,
        Val::ExternRef(Some(_)) => r.heap == HeapType::Extern,
        Val::ExnRef(None) => r.nullable && r.heap == HeapType::Exn,
        Val::ExnRef(Some(e)) => r.heap == HeapType::Exn && e.store == store,
        Val::FuncRef(Some(f)) => match r.heap {
            HeapType::Func => true,
            HeapType::Extern | HeapType::Exn => false,
            HeapType::Concrete(id) => f.store == store && f.type_id() == id,
        },
        _ => false,
    }
}

/// The raw representation of `v` (zero-extended to 128 bits; only a v128 uses the upper
/// half), checking that a funcref belongs to `store`.
pub(crate) fn val_to_raw(store: StoreId, v: &Val) -> Result<u128, Error> {
    Ok(match v {
        Val::I32(x) => *x as u32 as u128,
        Val::I64(x) => *x as u64 as u128,
        Val::F32(x) => *x as u128,
        Val::F64(x) => *x as u128,
        Val::V128(x) => x.0,
        Val::FuncRef(None) | Val::ExternRef(None) | Val::ExnRef(None) => 0,
        Val::ExnRef(Some(e)) => {
            if e.store != store {
                return Err(Error::Link(
                    "an exception of another store was passed to wasm".into(),
                ));
            }
            e.ptr as u128
        }
        Val::FuncRef(Some(f)) => {
            if f.store != store {
                return Err(Error::Link(
                    "a function reference of another store was passed to wasm".into(),
                ));
            }
            f.funcref as u128
        }
        Val::ExternRef(Some(r)) => extern_to_raw(r) as u128,
    })
}

/// The value of type `ty` whose raw representation is `raw` (a funcref of `store`); the
/// bits above the type's width are ignored.
pub(crate) fn raw_to_val(store: StoreId, raw: u128, ty: ValType) -> Result<Val, Error> {
    let wide = raw;
    let raw = raw as u64;
    Ok(match ty {
        ValType::I32 => Val::I32(raw as u32 as i32),
        ValType::I64 => Val::I64(raw as i64),
        ValType::F32 => Val::F32(raw as u32),
        ValType::F64 => Val::F64(raw),
        ValType::V128 => Val::V128(V128(wide)),
        ValType::FuncRef
        | ValType::Ref(RefType {
            heap: HeapType::Func | HeapType::Concrete(_),
            ..
        }) if raw == 0 => Val::FuncRef(None),
        ValType::FuncRef
        | ValType::Ref(RefType {
            heap: HeapType::Func | HeapType::Concrete(_),
            ..
        }) => Val::FuncRef(Some(Func {
            store,
            funcref: raw as usize,
        })),
        ValType::Ref(RefType {
            heap: HeapType::Exn,
            ..
        }) if raw == 0 => Val::ExnRef(None),
        ValType::Ref(RefType {
            heap: HeapType::Exn,
            ..
        }) => Val::ExnRef(Some(ExnRef {
            store,
            ptr: raw as usize,
        })),
        ValType::ExternRef | ValType::Ref(_) if raw == 0 => Val::ExternRef(None),
        // SAFETY: non-null externref bits are always boxes made by `extern_to_raw`, which
        // are never freed.
        ValType::ExternRef | ValType::Ref(_) => {
            Val::ExternRef(Some(unsafe { (*(raw as *const ExternRef)).clone() }))
        }
    })
}

/// Writes the raw value `raw` of type `ty` to the start of `out`: one word, or two for a
/// v128 (low half first). Returns the number of words written.
#[inline]
pub(crate) fn write_words(out: &mut [u64], raw: u128, ty: ValType) -> usize {
    out[0] = raw as u64;
    if ty == ValType::V128 {
        out[1] = (raw >> 64) as u64;
        return 2;
    }
    1
}

/// Reads a raw value of type `ty` from the start of `words` (the inverse of
/// [`write_words`]).
#[inline]
pub(crate) fn read_words(words: &[u64], ty: ValType) -> u128 {
    if ty == ValType::V128 {
        words[0] as u128 | (words[1] as u128) << 64
    } else {
        words[0] as u128
    }
}

/// Boxes behind the raw bits of non-null externrefs, one per distinct host value.
///
/// Generated code can store references anywhere (globals, tables, locals) and there is no
/// collector yet, so these boxes live until the process ends: a known leak, bounded by the
/// number of distinct values passed into wasm.
static EXTERN_REFS: Mutex<Option<HashMap<usize, usize>>> = Mutex::new(None);

fn extern_to_raw(r: &ExternRef) -> u64 {
    let key = Arc::as_ptr(&r.0) as *const () as usize;
    let mut map = EXTERN_REFS.lock().unwrap_or_else(|p| p.into_inner());
    let map = map.get_or_insert_with(HashMap::new);
    *map.entry(key)
        .or_insert_with(|| Box::into_raw(Box::new(r.clone())) as usize) as u64
}
