//! Statically typed calls: the Rust types that are wasm value types ([`WasmTy`]), parameter
//! and result lists ([`WasmParams`], [`WasmResults`]) and [`TypedFunc`], whose calls convert
//! and allocate nothing.

use crate::handles::Func;
use crate::store::AsContextMut;
use crate::types::ValType;
use crate::values::Val;
use crate::Error;
use std::marker::PhantomData;

/// A function with a statically known signature, from [`crate::Instance::get_typed_func`]
/// or [`Func::typed`]. A `Copy` handle, like [`Func`].
pub struct TypedFunc<P, R> {
    func: Func,
    _marker: PhantomData<fn(P) -> R>,
}

impl<P, R> Clone for TypedFunc<P, R> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<P, R> Copy for TypedFunc<P, R> {}

impl<P, R> std::fmt::Debug for TypedFunc<P, R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TypedFunc")
            .field("func", &self.func)
            .finish()
    }
}

impl<P: WasmParams, R: WasmResults> TypedFunc<P, R> {
    /// A typed view of `func`, whose type the caller has checked.
    pub(crate) fn new_unchecked(func: Func) -> Self {
        TypedFunc {
            func,
            _marker: PhantomData,
        }
    }

    /// Calls the function in `store`. The types were checked when the view was made, so
    /// the call converts nothing and allocates nothing for up to 16 parameters and results.
    pub fn call(&self, mut store: impl AsContextMut, params: P) -> Result<R, Error> {
        let store = store.as_context_mut().0;
        store.opaque.check_owns(self.func.store)?;
        let words = P::COUNT.max(R::COUNT);
        let mut inline = [0u64; 18];
        let mut heap = Vec::new();
        let values: &mut [u64] = if words + 2 <= inline.len() {
            &mut inline[..words + 2]
        } else {
            heap.resize(words + 2, 0);
            &mut heap
        };
        params.write_raw(values);
        store.invoke(self.func.funcref, values, words)?;
        Ok(R::read_raw(values, words))
    }

    /// The untyped function.
    pub fn func(&self) -> &Func {
        &self.func
    }
}

/// A Rust type that is a wasm value type: `i32`, `u32`, `i64`, `u64`, `f32`, `f64`.
pub trait WasmTy: Send + Sized + 'static {
    /// The wasm type.
    fn ty() -> ValType;
    /// Into a [`Val`].
    fn into_val(self) -> Val;
    /// From a [`Val`] of the right type.
    fn from_val(v: &Val) -> Option<Self>;
    /// The raw 8-byte representation generated code uses.
    fn to_raw(self) -> u64;
    /// From the raw representation.
    fn from_raw(raw: u64) -> Self;
}

macro_rules! wasm_ty {
    ($t:ty, $variant:ident, |$x:ident| $into:expr, |$y:ident| $from:expr,
     raw |$r:ident| $to_raw:expr, $from_raw:expr) => {
        impl WasmTy for $t {
            fn ty() -> ValType {
                ValType::$variant
            }
            fn into_val(self) -> Val {
                let $x = self;
                Val::$variant($into)
            }
            fn from_val(v: &Val) -> Option<Self> {
                match v {
                    Val::$variant($y) => Some($from),
                    _ => None,
                }
            }
            fn to_raw(self) -> u64 {
                let $r = self;
                $to_raw
            }
            fn from_raw($r: u64) -> Self {
                $from_raw
            }
        }
    };
}
wasm_ty!(
    i32,
    I32,
    |x| x,
    |y| *y,
    raw | r | r as u32 as u64,
    r as u32 as i32
);
wasm_ty!(i64, I64, |x| x, |y| *y, raw | r | r as u64, r as i64);
wasm_ty!(
    u32,
    I32,
    |x| x as i32,
    |y| *y as u32,
    raw | r | r as u64,
    r as u32
);
wasm_ty!(u64, I64, |x| x as i64, |y| *y as u64, raw | r | r, r);
wasm_ty!(
    f32,
    F32,
    |x| x.to_bits(),
    |y| f32::from_bits(*y),
    raw | r | r.to_bits() as u64,
    f32::from_bits(r as u32)
);
wasm_ty!(
    f64,
    F64,
    |x| x.to_bits(),
    |y| f64::from_bits(*y),
    raw | r | r.to_bits(),
    f64::from_bits(r)
);

/// Parameter lists of typed functions: `()`, a [`WasmTy`], or a tuple of up to 16.
pub trait WasmParams: Send {
    /// Number of parameters.
    const COUNT: usize;
    /// The parameter types.
    fn types() -> Vec<ValType>;
    /// Writes the raw parameters to `out[..COUNT]`.
    fn write_raw(self, out: &mut [u64]);
}

/// Result lists of typed functions and host functions: `()`, a [`WasmTy`], or a tuple of up
/// to 16.
pub trait WasmResults: Sized {
    /// Number of results.
    const COUNT: usize;
    /// The result types.
    fn types() -> Vec<ValType>;
    /// Reads the results of a call through the entry stub from its value area (`words` is
    /// the size of the argument/result area; a single result is in the return-register
    /// slots after it).
    fn read_raw(values: &[u64], words: usize) -> Self;
    /// Writes the results of a host function to `out[..COUNT]`.
    fn write_raw(self, out: &mut [u64]);
}

impl<T: WasmTy> WasmParams for T {
    const COUNT: usize = 1;
    fn types() -> Vec<ValType> {
        vec![T::ty()]
    }
    fn write_raw(self, out: &mut [u64]) {
        out[0] = self.to_raw();
    }
}

/// Where a single result of type `ty` is in an entry-stub value area of `words` words.
pub(crate) fn single_result_slot(ty: ValType, words: usize) -> usize {
    match ty {
        ValType::F32 | ValType::F64 => words + 1,
        _ => words,
    }
}

impl<T: WasmTy> WasmResults for T {
    const COUNT: usize = 1;
    fn types() -> Vec<ValType> {
        vec![T::ty()]
    }
    fn read_raw(values: &[u64], words: usize) -> Self {
        T::from_raw(values[single_result_slot(T::ty(), words)])
    }
    fn write_raw(self, out: &mut [u64]) {
        out[0] = self.to_raw();
    }
}

macro_rules! tuples {
    ($(($($t:ident $i:tt),*))*) => {$(
        impl<$($t: WasmTy),*> WasmParams for ($($t,)*) {
            const COUNT: usize = <[&str]>::len(&[$(stringify!($t)),*]);
            fn types() -> Vec<ValType> {
                vec![$($t::ty()),*]
            }
            #[allow(unused_variables)]
            fn write_raw(self, out: &mut [u64]) {
                $(out[$i] = self.$i.to_raw();)*
            }
        }
        impl<$($t: WasmTy),*> WasmResults for ($($t,)*) {
            const COUNT: usize = <[&str]>::len(&[$(stringify!($t)),*]);
            fn types() -> Vec<ValType> {
                vec![$($t::ty()),*]
            }
            #[allow(unused_variables, clippy::unused_unit)]
            fn read_raw(values: &[u64], words: usize) -> Self {
                if <Self as WasmResults>::COUNT == 1 {
                    // One result comes back in a return register, as for a plain `T`.
                    return ($($t::from_raw(values[single_result_slot($t::ty(), words)]),)*);
                }
                ($($t::from_raw(values[$i]),)*)
            }
            #[allow(unused_variables)]
            fn write_raw(self, out: &mut [u64]) {
                $(out[$i] = self.$i.to_raw();)*
            }
        }
    )*};
}
tuples! {
    ()
    (A 0)
    (A 0, B 1)
    (A 0, B 1, C 2)
    (A 0, B 1, C 2, D 3)
    (A 0, B 1, C 2, D 3, E 4)
    (A 0, B 1, C 2, D 3, E 4, F 5)
    (A 0, B 1, C 2, D 3, E 4, F 5, G 6)
    (A 0, B 1, C 2, D 3, E 4, F 5, G 6, H 7)
    (A 0, B 1, C 2, D 3, E 4, F 5, G 6, H 7, I 8)
    (A 0, B 1, C 2, D 3, E 4, F 5, G 6, H 7, I 8, J 9)
    (A 0, B 1, C 2, D 3, E 4, F 5, G 6, H 7, I 8, J 9, K 10)
    (A 0, B 1, C 2, D 3, E 4, F 5, G 6, H 7, I 8, J 9, K 10, L 11)
    (A 0, B 1, C 2, D 3, E 4, F 5, G 6, H 7, I 8, J 9, K 10, L 11, M 12)
    (A 0, B 1, C 2, D 3, E 4, F 5, G 6, H 7, I 8, J 9, K 10, L 11, M 12, N 13)
    (A 0, B 1, C 2, D 3, E 4, F 5, G 6, H 7, I 8, J 9, K 10, L 11, M 12, N 13, O 14)
    (A 0, B 1, C 2, D 3, E 4, F 5, G 6, H 7, I 8, J 9, K 10, L 11, M 12, N 13, O 14, P 15)
}
