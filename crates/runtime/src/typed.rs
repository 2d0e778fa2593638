//! Statically typed calls: the Rust types that are wasm value types ([`WasmTy`]), parameter
//! and result lists ([`WasmParams`], [`WasmResults`]) and [`TypedFunc`], whose calls convert
//! and allocate nothing.

use crate::handles::Func;
use crate::store::AsContextMut;
use crate::types::ValType;
use crate::values::{read_words, write_words, Val, V128};
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
        // The entry stub's value array: the argument/result area, then the return-register
        // slots (one integer word, two float/vector words). 16 v128s take 32 words.
        let words = P::WORDS.max(R::WORDS);
        let mut inline = [0u64; 35];
        let mut heap = Vec::new();
        let values: &mut [u64] = if words + 3 <= inline.len() {
            &mut inline[..words + 3]
        } else {
            heap.resize(words + 3, 0);
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

/// A Rust type that is a wasm value type: `i32`, `u32`, `i64`, `u64`, `f32`, `f64`,
/// [`V128`].
pub trait WasmTy: Send + Sized + 'static {
    /// How many 8-byte words the value takes in a call's argument/result area: 1, or 2 for
    /// a v128. Must agree with [`WasmTy::ty`].
    const WORDS: usize = 1;
    /// The wasm type.
    fn ty() -> ValType;
    /// Into a [`Val`].
    fn into_val(self) -> Val;
    /// From a [`Val`] of the right type.
    fn from_val(v: &Val) -> Option<Self>;
    /// The raw representation generated code uses, zero-extended to 128 bits (only a v128
    /// uses the upper half; the area holds the low word first).
    fn to_raw(self) -> u128;
    /// From the raw representation (bits above the type's width are ignored).
    fn from_raw(raw: u128) -> Self;
}

/// Writes `v` at word `*at` of the area `out` and advances `*at` past it.
#[inline(always)]
pub(crate) fn put<T: WasmTy>(out: &mut [u64], at: &mut usize, v: T) {
    *at += write_words(&mut out[*at..], v.to_raw(), T::ty());
}

/// Reads a `T` at word `*at` of the area `values` and advances `*at` past it.
#[inline(always)]
pub(crate) fn take<T: WasmTy>(values: &[u64], at: &mut usize) -> T {
    let v = T::from_raw(read_words(&values[*at..], T::ty()));
    *at += T::WORDS;
    v
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
            fn to_raw(self) -> u128 {
                let $r = self;
                ($to_raw) as u128
            }
            fn from_raw($r: u128) -> Self {
                let $r = $r as u64;
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

impl WasmTy for V128 {
    const WORDS: usize = 2;
    fn ty() -> ValType {
        ValType::V128
    }
    fn into_val(self) -> Val {
        Val::V128(self)
    }
    fn from_val(v: &Val) -> Option<Self> {
        v.v128()
    }
    fn to_raw(self) -> u128 {
        self.as_u128()
    }
    fn from_raw(raw: u128) -> Self {
        V128::from(raw)
    }
}

/// Parameter lists of typed functions: `()`, a [`WasmTy`], or a tuple of up to 16.
pub trait WasmParams: Send {
    /// Number of parameters.
    const COUNT: usize;
    /// Number of 8-byte words the parameters take in a call's argument area (one per
    /// parameter, two per v128).
    const WORDS: usize;
    /// The parameter types.
    fn types() -> Vec<ValType>;
    /// Writes the raw parameters to `out[..WORDS]`.
    fn write_raw(self, out: &mut [u64]);
}

/// Result lists of typed functions and host functions: `()`, a [`WasmTy`], or a tuple of up
/// to 16.
pub trait WasmResults: Sized {
    /// Number of results.
    const COUNT: usize;
    /// Number of 8-byte words the results take in a call's result area (one per result,
    /// two per v128).
    const WORDS: usize;
    /// The result types.
    fn types() -> Vec<ValType>;
    /// Reads the results of a call through the entry stub from its value array (`words` is
    /// the size of the argument/result area; a single result is in the return-register
    /// slots after it: the integer one at `words`, the float/vector one from `words + 1`).
    fn read_raw(values: &[u64], words: usize) -> Self;
    /// Writes the results of a host function to `out[..WORDS]`.
    fn write_raw(self, out: &mut [u64]);
}

impl<T: WasmTy> WasmParams for T {
    const COUNT: usize = 1;
    const WORDS: usize = T::WORDS;
    fn types() -> Vec<ValType> {
        vec![T::ty()]
    }
    fn write_raw(self, out: &mut [u64]) {
        put(out, &mut 0, self);
    }
}

/// Where a single result of type `ty` starts in the entry stub's value array, after an
/// argument/result area of `words` words: the integer return register is stored at
/// `words`, the 16 bytes of the float/vector one at `words + 1 ..= words + 2` (an f32/f64
/// in the first of those words, a v128 in both, low half first).
pub(crate) fn single_result_slot(ty: ValType, words: usize) -> usize {
    match ty {
        ValType::F32 | ValType::F64 | ValType::V128 => words + 1,
        _ => words,
    }
}

impl<T: WasmTy> WasmResults for T {
    const COUNT: usize = 1;
    const WORDS: usize = T::WORDS;
    fn types() -> Vec<ValType> {
        vec![T::ty()]
    }
    fn read_raw(values: &[u64], words: usize) -> Self {
        take(values, &mut single_result_slot(T::ty(), words))
    }
    fn write_raw(self, out: &mut [u64]) {
        put(out, &mut 0, self);
    }
}

macro_rules! tuples {
    ($(($($t:ident $i:tt),*))*) => {$(
        impl<$($t: WasmTy),*> WasmParams for ($($t,)*) {
            const COUNT: usize = <[&str]>::len(&[$(stringify!($t)),*]);
            const WORDS: usize = 0 $(+ $t::WORDS)*;
            fn types() -> Vec<ValType> {
                vec![$($t::ty()),*]
            }
            #[allow(unused_variables, unused_mut)]
            fn write_raw(self, out: &mut [u64]) {
                let mut at = 0;
                $(put(out, &mut at, self.$i);)*
            }
        }
        impl<$($t: WasmTy),*> WasmResults for ($($t,)*) {
            const COUNT: usize = <[&str]>::len(&[$(stringify!($t)),*]);
            const WORDS: usize = 0 $(+ $t::WORDS)*;
            fn types() -> Vec<ValType> {
                vec![$($t::ty()),*]
            }
            #[allow(unused_variables, unused_mut, clippy::unused_unit)]
            fn read_raw(values: &[u64], words: usize) -> Self {
                if <Self as WasmResults>::COUNT == 1 {
                    // One result comes back in a return register, as for a plain `T`.
                    return ($(take::<$t>(values, &mut single_result_slot($t::ty(), words)),)*);
                }
                // Tuple fields are evaluated left to right, so each `take` reads the next
                // value of the area.
                let mut at = 0;
                ($(take::<$t>(values, &mut at),)*)
            }
            #[allow(unused_variables, unused_mut)]
            fn write_raw(self, out: &mut [u64]) {
                let mut at = 0;
                $(put(out, &mut at, self.$i);)*
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
