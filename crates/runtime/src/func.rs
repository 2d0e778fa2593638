//! Functions: calling wasm from Rust, and Rust closures as wasm imports.

use crate::engine::Engine;
use crate::instance::{Instance, InstanceInner};
use crate::types::{FuncType, Val, ValType};
use crate::vm::{self, HostFuncCtx, VMFuncRef};
use crate::{Error, Extern, Memory};
use std::marker::PhantomData;
use std::sync::Arc;

/// What keeps a function's code and context alive.
#[derive(Clone)]
pub(crate) enum FuncOwner {
    Instance(Arc<InstanceInner>),
    Host(Arc<HostFuncBox>),
}

/// A host function context with a stable address.
pub(crate) struct HostFuncBox(pub Box<HostFuncCtx>);

// SAFETY: the context is immutable after creation and its closure is `Send + Sync`.
unsafe impl Send for HostFuncBox {}
// SAFETY: as above.
unsafe impl Sync for HostFuncBox {}

/// A wasm or host function. Cheap to clone.
#[derive(Clone)]
pub struct Func {
    funcref: *const VMFuncRef,
    ty: FuncType,
    max_wasm_stack: usize,
    owner: FuncOwner,
}

// SAFETY: the funcref points into memory kept alive by `owner`, which is Send + Sync.
unsafe impl Send for Func {}
// SAFETY: as above; calling is serialised per thread by the caller (see `Instance`).
unsafe impl Sync for Func {}

impl std::fmt::Debug for Func {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Func({})", self.ty)
    }
}

impl Func {
    pub(crate) fn from_instance(inst: &Arc<InstanceInner>, index: u32) -> Func {
        if let Some(imported) = inst.imported_funcs.get(index as usize) {
            return imported.clone();
        }
        Func {
            funcref: inst.funcref_ptr(index),
            ty: inst.module.func_type(index).clone(),
            max_wasm_stack: inst.module.engine.inner.config.max_wasm_stack,
            owner: FuncOwner::Instance(inst.clone()),
        }
    }

    /// A host function with a dynamic signature.
    pub fn new(
        engine: &Engine,
        ty: FuncType,
        f: impl Fn(Caller<'_>, &[Val], &mut [Val]) -> Result<(), Error> + Send + Sync + 'static,
    ) -> Result<Func, Error> {
        let id = engine.signature_id(&ty);
        let max_wasm_stack = engine.inner.config.max_wasm_stack;
        let ctx = HostFuncCtx::new(ty.clone(), id, Box::new(f), max_wasm_stack)?;
        let owner = Arc::new(HostFuncBox(ctx));
        owner.0.owner.set(Arc::as_ptr(&owner) as usize);
        Ok(Func {
            funcref: &owner.0.funcref,
            ty,
            max_wasm_stack: engine.inner.config.max_wasm_stack,
            owner: FuncOwner::Host(owner),
        })
    }

    /// A host function from a Rust closure with typed arguments (see [`IntoFunc`]).
    pub fn wrap<Params, Results>(
        engine: &Engine,
        f: impl IntoFunc<Params, Results>,
    ) -> Result<Func, Error> {
        let (ty, f) = f.into_host_fn();
        Func::new(engine, ty, f)
    }

    /// The function behind a canonical `VMFuncRef` pointer (a non-null funcref value).
    ///
    /// # Safety
    /// `ptr` must be a canonical funcref of a live instance or host function.
    pub(crate) unsafe fn from_raw(ptr: usize) -> Option<Func> {
        // SAFETY: per the contract.
        let fr = unsafe { *(ptr as *const VMFuncRef) };
        if fr.code == vm::stubs().ok()?.host_call {
            // SAFETY: host funcrefs point into their `HostFuncCtx`, whose `owner` is the live
            // `Arc<HostFuncBox>` holding it.
            let owner = unsafe {
                let ctx = &*(fr.vmctx as *const HostFuncCtx);
                let p = ctx.owner.get() as *const HostFuncBox;
                Arc::increment_strong_count(p);
                Arc::from_raw(p)
            };
            return Some(Func {
                funcref: ptr as *const VMFuncRef,
                ty: owner.0.ty.clone(),
                max_wasm_stack: owner.0.max_wasm_stack,
                owner: FuncOwner::Host(owner),
            });
        }
        // SAFETY: per the contract, `fr.vmctx` is a live instance's context.
        let inst = unsafe { InstanceInner::arc_from_vmctx(fr.vmctx) }?;
        let index = inst.func_index_of(ptr)?;
        Some(Func::from_instance(&inst, index))
    }

    pub(crate) fn funcref_ptr(&self) -> *const VMFuncRef {
        self.funcref
    }

    pub(crate) fn funcref(&self) -> VMFuncRef {
        // SAFETY: kept alive by `self.owner`.
        unsafe { *self.funcref }
    }

    pub(crate) fn owner(&self) -> &FuncOwner {
        &self.owner
    }

    /// The function's signature.
    pub fn ty(&self) -> FuncType {
        self.ty.clone()
    }

    /// Calls the function. `params` must match the parameter types and `results` must have
    /// one slot per result.
    pub fn call(&self, params: &[Val], results: &mut [Val]) -> Result<(), Error> {
        let pty = self.ty.params();
        let rty = self.ty.results();
        if params.len() != pty.len() {
            return Err(Error::Host(format!(
                "wrong number of arguments: expected {}, got {}",
                pty.len(),
                params.len()
            )));
        }
        if results.len() != rty.len() {
            return Err(Error::Host(format!(
                "wrong number of result slots: expected {}, got {}",
                rty.len(),
                results.len()
            )));
        }
        let words = pty.len().max(rty.len());
        let mut values = vec![0u64; words + 2];
        for (i, (p, &t)) in params.iter().zip(pty).enumerate() {
            if p.ty() != t {
                return Err(Error::Host(format!(
                    "argument {i} has type {}, expected {t}",
                    p.ty()
                )));
            }
            values[i] = vm::val_to_raw(p)?;
        }
        vm::call_raw(&self.funcref(), &mut values, words, self.max_wasm_stack)?;
        if rty.len() == 1 {
            let raw = match rty[0] {
                ValType::F32 | ValType::F64 => values[words + 1],
                _ => values[words],
            };
            results[0] = vm::raw_to_val(raw, rty[0])?;
        } else {
            for (i, &t) in rty.iter().enumerate() {
                results[i] = vm::raw_to_val(values[i], t)?;
            }
        }
        Ok(())
    }

    /// A typed view of this function; fails if the types differ.
    pub fn typed<P: WasmParams, R: WasmResults>(&self) -> Result<TypedFunc<P, R>, Error> {
        if P::types() != self.ty.params() || R::types() != self.ty.results() {
            return Err(Error::Link(format!(
                "function type mismatch: the function is {}, the typed view expects {}",
                self.ty,
                FuncType::new(P::types(), R::types())
            )));
        }
        Ok(TypedFunc {
            func: self.clone(),
            _marker: PhantomData,
        })
    }
}

/// A function with a statically known signature, from [`Instance::get_typed_func`].
pub struct TypedFunc<P, R> {
    func: Func,
    _marker: PhantomData<fn(P) -> R>,
}

impl<P, R> Clone for TypedFunc<P, R> {
    fn clone(&self) -> Self {
        TypedFunc {
            func: self.func.clone(),
            _marker: PhantomData,
        }
    }
}

impl<P: WasmParams, R: WasmResults> TypedFunc<P, R> {
    /// Calls the function. The types were checked when the view was made, so the call
    /// converts nothing and allocates nothing for up to 16 parameters and results.
    pub fn call(&self, params: P) -> Result<R, Error> {
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
        vm::call_raw(
            &self.func.funcref(),
            values,
            words,
            self.func.max_wasm_stack,
        )?;
        Ok(R::read_raw(values, words))
    }

    /// The untyped function.
    pub fn func(&self) -> &Func {
        &self.func
    }
}

/// The calling instance, as seen by a host function.
pub struct Caller<'a> {
    instance: Option<Arc<InstanceInner>>,
    _marker: PhantomData<&'a ()>,
}

impl<'a> Caller<'a> {
    pub(crate) fn from_vmctx(vmctx: usize) -> Caller<'a> {
        // SAFETY: `vmctx` is the caller's context (or 0 when called from the host), which
        // stays alive during the host call.
        let instance = unsafe { InstanceInner::arc_from_vmctx(vmctx) };
        Caller {
            instance,
            _marker: PhantomData,
        }
    }

    /// An export of the calling instance.
    pub fn get_export(&self, name: &str) -> Option<Extern> {
        Instance::from_inner(self.instance.clone()?).get_export(name)
    }

    /// The calling instance's memory 0 (imported or defined).
    pub fn memory(&self) -> Option<Memory> {
        self.instance.as_ref()?.memories.first().cloned()
    }
}

/// A Rust type that is a wasm value type.
pub trait WasmTy: Sized {
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
    ($t:ty, $vt:ident, $variant:ident, |$x:ident| $into:expr, |$y:ident| $from:expr,
     raw |$r:ident| $to_raw:expr, $from_raw:expr) => {
        impl WasmTy for $t {
            fn to_raw(self) -> u64 {
                let $r = self;
                $to_raw
            }
            fn from_raw($r: u64) -> Self {
                $from_raw
            }
            fn ty() -> ValType {
                ValType::$vt
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
        }
    };
}
wasm_ty!(
    i32,
    I32,
    I32,
    |x| x,
    |y| *y,
    raw | r | r as u32 as u64,
    r as u32 as i32
);
wasm_ty!(i64, I64, I64, |x| x, |y| *y, raw | r | r as u64, r as i64);
wasm_ty!(
    u32,
    I32,
    I32,
    |x| x as i32,
    |y| *y as u32,
    raw | r | r as u64,
    r as u32
);
wasm_ty!(u64, I64, I64, |x| x as i64, |y| *y as u64, raw | r | r, r);
wasm_ty!(
    f32,
    F32,
    F32,
    |x| x.to_bits(),
    |y| f32::from_bits(*y),
    raw | r | r.to_bits() as u64,
    f32::from_bits(r as u32)
);
wasm_ty!(
    f64,
    F64,
    F64,
    |x| x.to_bits(),
    |y| f64::from_bits(*y),
    raw | r | r.to_bits(),
    f64::from_bits(r)
);

/// Parameter lists of typed functions: `()`, a [`WasmTy`], or a tuple of them.
pub trait WasmParams {
    /// Number of parameters.
    const COUNT: usize;
    /// The parameter types.
    fn types() -> Vec<ValType>;
    /// As values.
    fn into_vals(self) -> Vec<Val>;
    /// Writes the raw parameters to `out[..COUNT]`.
    fn write_raw(self, out: &mut [u64]);
}

/// Result lists of typed functions: `()`, a [`WasmTy`], or a tuple of them.
pub trait WasmResults: Sized {
    /// Number of results.
    const COUNT: usize;
    /// The result types.
    fn types() -> Vec<ValType>;
    /// Reads the results of a call through the entry stub from its value area (`words` is
    /// the size of the argument/result area; a single result is in the return-register
    /// slots after it).
    fn read_raw(values: &[u64], words: usize) -> Self;
    /// From values of the right types.
    fn from_vals(v: &[Val]) -> Result<Self, Error>;
    /// Into values.
    fn into_vals(self) -> Vec<Val>;
}

fn type_error() -> Error {
    Error::Host("value has the wrong type".into())
}

impl<T: WasmTy> WasmParams for T {
    const COUNT: usize = 1;
    fn types() -> Vec<ValType> {
        vec![T::ty()]
    }
    fn into_vals(self) -> Vec<Val> {
        vec![self.into_val()]
    }
    fn write_raw(self, out: &mut [u64]) {
        out[0] = self.to_raw();
    }
}

/// Where a single result of type `ty` is in an entry-stub value area of `words` words.
fn single_result_slot(ty: ValType, words: usize) -> usize {
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
    fn from_vals(v: &[Val]) -> Result<Self, Error> {
        v.first().and_then(T::from_val).ok_or_else(type_error)
    }
    fn into_vals(self) -> Vec<Val> {
        vec![self.into_val()]
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
            #[allow(clippy::unused_unit)]
            fn into_vals(self) -> Vec<Val> {
                vec![$(self.$i.into_val()),*]
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
            fn from_vals(v: &[Val]) -> Result<Self, Error> {
                Ok(($($t::from_val(v.get($i).ok_or_else(type_error)?).ok_or_else(type_error)?,)*))
            }
            fn into_vals(self) -> Vec<Val> {
                vec![$(self.$i.into_val()),*]
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
}

/// What a host closure may return: results, or `Result` of results.
pub trait HostResult {
    /// The result list type.
    type Results: WasmResults;
    /// Into a `Result`.
    fn into_result(self) -> Result<Self::Results, Error>;
}

impl<R: WasmResults> HostResult for R {
    type Results = R;
    fn into_result(self) -> Result<R, Error> {
        Ok(self)
    }
}

impl<R: WasmResults> HostResult for Result<R, Error> {
    type Results = R;
    fn into_result(self) -> Result<R, Error> {
        self
    }
}

/// Marker for host closures whose first argument is a [`Caller`].
pub struct WithCaller<P>(PhantomData<P>);

/// Rust closures usable as wasm functions: `Fn(A, B, ..) -> R` or
/// `Fn(Caller<'_>, A, B, ..) -> R`, where the arguments are [`WasmTy`] and `R` is a
/// [`WasmResults`] or a `Result` of one.
pub trait IntoFunc<Params, Results>: Send + Sync + 'static {
    /// The signature and the dynamic form of the closure.
    fn into_host_fn(self) -> (FuncType, vm::HostFn);
}

macro_rules! into_func {
    ($(($($t:ident $i:tt),*))*) => {$(
        impl<F, R, $($t: WasmTy),*> IntoFunc<($($t,)*), R> for F
        where
            F: Fn($($t),*) -> R + Send + Sync + 'static,
            R: HostResult,
        {
            #[allow(unused_variables)]
            fn into_host_fn(self) -> (FuncType, vm::HostFn) {
                let ty = FuncType::new(vec![$($t::ty()),*], R::Results::types());
                let f: vm::HostFn = Box::new(move |_caller: Caller<'_>, args: &[Val], results: &mut [Val]| {
                    let r = self($($t::from_val(&args[$i]).ok_or_else(type_error)?),*).into_result()?;
                    for (slot, v) in results.iter_mut().zip(r.into_vals()) {
                        *slot = v;
                    }
                    Ok(())
                });
                (ty, f)
            }
        }
        impl<F, R, $($t: WasmTy),*> IntoFunc<WithCaller<($($t,)*)>, R> for F
        where
            F: Fn(Caller<'_>, $($t),*) -> R + Send + Sync + 'static,
            R: HostResult,
        {
            #[allow(unused_variables)]
            fn into_host_fn(self) -> (FuncType, vm::HostFn) {
                let ty = FuncType::new(vec![$($t::ty()),*], R::Results::types());
                let f: vm::HostFn = Box::new(move |caller: Caller<'_>, args: &[Val], results: &mut [Val]| {
                    let r = self(caller, $($t::from_val(&args[$i]).ok_or_else(type_error)?),*).into_result()?;
                    for (slot, v) in results.iter_mut().zip(r.into_vals()) {
                        *slot = v;
                    }
                    Ok(())
                });
                (ty, f)
            }
        }
    )*};
}
into_func! {
    ()
    (A 0)
    (A 0, B 1)
    (A 0, B 1, C 2)
    (A 0, B 1, C 2, D 3)
    (A 0, B 1, C 2, D 3, E 4)
    (A 0, B 1, C 2, D 3, E 4, F2 5)
}
