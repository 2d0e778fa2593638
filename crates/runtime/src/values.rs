//! Wasm values as embedders see them ([`Val`], [`ExternRef`]) and their raw 8-byte form
//! generated code uses.

use crate::handles::{Func, StoreId};
use crate::types::ValType;
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

/// The raw 8-byte representation of `v`, checking that a funcref belongs to `store`.
pub(crate) fn val_to_raw(store: StoreId, v: &Val) -> Result<u64, Error> {
    Ok(match v {
        Val::I32(x) => *x as u32 as u64,
        Val::I64(x) => *x as u64,
        Val::F32(x) => *x as u64,
        Val::F64(x) => *x,
        Val::FuncRef(None) | Val::ExternRef(None) => 0,
        Val::FuncRef(Some(f)) => {
            if f.store != store {
                return Err(Error::Link(
                    "a function reference of another store was passed to wasm".into(),
                ));
            }
            f.funcref as u64
        }
        Val::ExternRef(Some(r)) => extern_to_raw(r),
    })
}

/// The value of type `ty` whose raw representation is `raw` (a funcref of `store`).
pub(crate) fn raw_to_val(store: StoreId, raw: u64, ty: ValType) -> Result<Val, Error> {
    Ok(match ty {
        ValType::I32 => Val::I32(raw as u32 as i32),
        ValType::I64 => Val::I64(raw as i64),
        ValType::F32 => Val::F32(raw as u32),
        ValType::F64 => Val::F64(raw),
        ValType::FuncRef if raw == 0 => Val::FuncRef(None),
        ValType::FuncRef => Val::FuncRef(Some(Func {
            store,
            funcref: raw as usize,
        })),
        ValType::ExternRef if raw == 0 => Val::ExternRef(None),
        // SAFETY: non-null externref bits are always boxes made by `extern_to_raw`, which
        // are never freed.
        ValType::ExternRef => Val::ExternRef(Some(unsafe { (*(raw as *const ExternRef)).clone() })),
        ValType::V128 => {
            return Err(Error::Unsupported(
                "v128 values crossing the host boundary".into(),
            ))
        }
    })
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
