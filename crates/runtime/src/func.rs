//! Functions: calling a [`Func`] with dynamic values, making host functions from Rust
//! closures ([`Func::new`], [`Func::wrap`], [`IntoFunc`]), and the shim the host-call stub
//! enters them through.

use crate::caller::Caller;
use crate::handles::Func;
use crate::store::{AsContext, AsContextMut, StoreInner};
use crate::typed::{single_result_slot, take, TypedFunc, WasmParams, WasmResults, WasmTy};
use crate::types::FuncType;
use crate::values::{raw_to_val, read_words, val_to_raw, write_words, Val};
use crate::vm::exceptions::set_host_thrown;
use crate::vm::host_func::HostFuncCtx;
use crate::vm::instance::VMInstance;
use crate::vm::traps::set_pending_error;
use crate::vm::vmctx::{Owned, VMFuncRef};
use crate::{Error, TrapCode};
use std::marker::PhantomData;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;

/// A host function's Rust side on raw values: `values` (the call's argument/result area)
/// holds the arguments and receives the results, one word per value and two per v128.
pub(crate) type RawHostFn<T> = dyn Fn(Caller<'_, T>, &mut [u64]) -> Result<(), Error> + Send + Sync;

/// A host function definition, not yet bound to a store (a [`crate::Linker`] keeps these
/// and binds them to each store it instantiates in).
#[doc(hidden)]
pub struct HostFunc<T: 'static> {
    pub(crate) ty: FuncType,
    pub(crate) func: Arc<RawHostFn<T>>,
}

impl<T: 'static> Clone for HostFunc<T> {
    fn clone(&self) -> Self {
        HostFunc {
            ty: self.ty.clone(),
            func: self.func.clone(),
        }
    }
}

impl<T: 'static> HostFunc<T> {
    /// A definition from a dynamically typed closure.
    pub(crate) fn new(
        ty: FuncType,
        f: impl Fn(Caller<'_, T>, &[Val], &mut [Val]) -> Result<(), Error> + Send + Sync + 'static,
    ) -> HostFunc<T> {
        let sig = ty.clone();
        let func = move |caller: Caller<'_, T>, values: &mut [u64]| {
            let store = caller.store.opaque.id;
            let mut at = 0;
            let params = sig
                .params()
                .iter()
                .map(|&t| {
                    let raw = read_words(&values[at..], t);
                    at += t.words();
                    raw_to_val(store, raw, t)
                })
                .collect::<Result<Vec<_>, _>>()?;
            let mut results: Vec<Val> =
                sig.results().iter().map(|&t| Val::default_for(t)).collect();
            f(caller, &params, &mut results)?;
            let mut at = 0;
            for (v, &t) in results.iter().zip(sig.results()) {
                if !crate::values::val_matches(store, v, t) {
                    return Err(Error::msg(format!(
                        "host function returned a {} where its type says {t}",
                        v.ty()
                    )));
                }
                at += write_words(&mut values[at..], val_to_raw(store, v)?, t);
            }
            Ok(())
        };
        HostFunc {
            ty,
            func: Arc::new(func),
        }
    }

    /// Binds the definition to `store`: a new host function of that store.
    pub(crate) fn bind(&self, store: &mut StoreInner<T>) -> Func {
        let opaque = &mut store.opaque;
        let type_id = opaque.engine.signature_id(&self.ty);
        let ctx = HostFuncCtx::new(
            self.ty.clone(),
            type_id,
            host_call_shim::<T>,
            Box::new(self.clone()),
            opaque.vm_context_ptr(),
            opaque.engine.inner.stubs.host_call,
        );
        let mut ctx = Owned::new(ctx);
        ctx.get_mut().link();
        let funcref = &ctx.get().funcref as *const VMFuncRef as usize;
        opaque.host_funcs.push(ctx);
        Func {
            store: opaque.id,
            funcref,
        }
    }
}

/// Called by the host-call stub. Returns 0, or a trap code after recording the error.
extern "C" fn host_call_shim<T: 'static>(
    ctx: *const HostFuncCtx,
    caller_vmctx: usize,
    values: *mut u64,
) -> u32 {
    let store_id = std::cell::Cell::new(0u64);
    let result = catch_unwind(AssertUnwindSafe(|| {
        // SAFETY: the stub passes the context it was called with, which its store keeps
        // alive while the store runs code.
        let ctx = unsafe { &*ctx };
        let host = ctx
            .func
            .downcast_ref::<HostFunc<T>>()
            .ok_or_else(|| Error::msg("host function of an unexpected store type"))?;
        // SAFETY: the entry that runs this store's code set the store pointer from its
        // exclusive borrow of the store (a `StoreInner<T>`, as this shim was instantiated
        // for), and nothing else uses that borrow until the entry returns.
        let store = unsafe { (*ctx.store_context).store }
            .ok_or_else(|| Error::msg("host function called while its store is not running"))?;
        // SAFETY: see above.
        let store = unsafe { &mut *(store.as_ptr() as *mut StoreInner<T>) };
        store_id.set(store.opaque.id.0);
        // SAFETY: `caller_vmctx` is 0 or the vmctx of the calling instance of this store,
        // alive during the call.
        let instance = unsafe { VMInstance::from_vmctx(caller_vmctx) }.map(|i| i.store_index);
        let words = ctx.ty.area_words();
        // SAFETY: `values` points at the caller's outgoing area holding `words` words
        // (the larger of the parameters' and the results' sizes; a v128 takes two).
        let values = unsafe { std::slice::from_raw_parts_mut(values, words) };
        (host.func)(Caller { store, instance }, values)
    }));
    let err = match result {
        Ok(Ok(())) => return 0,
        // A wasm exception of this store: thrown on from the call site (see the stub).
        Ok(Err(Error::Exception(e))) if e.store == store_id.get() => {
            set_host_thrown(e.exn);
            return wjit_compiler::vmctx::host_ctx::THROW;
        }
        Ok(Err(Error::Exception(_))) => {
            Error::msg("a host function threw an exception of another store")
        }
        Ok(Err(e)) => e,
        Err(payload) => {
            let msg = payload
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| payload.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "non-string panic payload".into());
            Error::msg(format!("host function panicked: {msg}"))
        }
    };
    set_pending_error(err);
    TrapCode::HostError as u32
}

impl Func {
    /// A host function of type `ty` in `store`, from a closure on dynamic values. The
    /// closure gets the [`Caller`], the arguments, and one slot per result to fill.
    pub fn new<T: 'static>(
        mut store: impl AsContextMut<Data = T>,
        ty: FuncType,
        f: impl Fn(Caller<'_, T>, &[Val], &mut [Val]) -> Result<(), Error> + Send + Sync + 'static,
    ) -> Func {
        HostFunc::new(ty, f).bind(store.as_context_mut().0)
    }

    /// A host function in `store` from a Rust closure with typed parameters and results
    /// (see [`IntoFunc`]).
    pub fn wrap<T: 'static, Params, Results>(
        mut store: impl AsContextMut<Data = T>,
        f: impl IntoFunc<T, Params, Results>,
    ) -> Func {
        f.into_host_func().bind(store.as_context_mut().0)
    }

    /// The function's signature.
    ///
    /// # Panics
    /// If `store` is not the store of this function.
    pub fn ty(&self, store: impl AsContext) -> FuncType {
        let store = store.as_context();
        store.0.opaque.assert_owns(self.store);
        self.ty_in(&store.0.opaque.engine)
    }

    pub(crate) fn ty_in(&self, engine: &crate::Engine) -> FuncType {
        engine
            .signature(self.type_id())
            .unwrap_or_else(|| FuncType::new([], []))
    }

    /// The engine signature id of the function (which must belong to a live store).
    pub(crate) fn type_id(&self) -> u32 {
        // SAFETY: the funcref belongs to the store the caller checked and borrows.
        unsafe { (*(self.funcref as *const VMFuncRef)).type_id as u32 }
    }

    /// Calls the function. `params` must match the parameter types and `results` must have
    /// one slot per result.
    pub fn call(
        &self,
        mut store: impl AsContextMut,
        params: &[Val],
        results: &mut [Val],
    ) -> Result<(), Error> {
        let store = store.as_context_mut().0;
        store.opaque.check_owns(self.store)?;
        let ty = store.opaque.signature(self.type_id());
        let (pty, rty) = (ty.params(), ty.results());
        if params.len() != pty.len() {
            return Err(Error::msg(format!(
                "wrong number of arguments: expected {}, got {}",
                pty.len(),
                params.len()
            )));
        }
        if results.len() != rty.len() {
            return Err(Error::msg(format!(
                "wrong number of result slots: expected {}, got {}",
                rty.len(),
                results.len()
            )));
        }
        // The entry stub's value array: the argument/result area, then the return-register
        // slots (one integer word, two float/vector words).
        let words = ty.area_words();
        let mut values = vec![0u64; words + 3];
        let mut at = 0;
        for (i, (p, &t)) in params.iter().zip(pty).enumerate() {
            if !crate::values::val_matches(self.store, p, t) {
                return Err(Error::msg(format!(
                    "argument {i} ({}) is not of type {t}",
                    p.ty()
                )));
            }
            at += write_words(&mut values[at..], val_to_raw(self.store, p)?, t);
        }
        store.invoke(self.funcref, &mut values, words)?;
        if rty.len() == 1 {
            let raw = read_words(&values[single_result_slot(rty[0], words)..], rty[0]);
            results[0] = raw_to_val(self.store, raw, rty[0])?;
        } else {
            let mut at = 0;
            for (i, &t) in rty.iter().enumerate() {
                results[i] = raw_to_val(self.store, read_words(&values[at..], t), t)?;
                at += t.words();
            }
        }
        Ok(())
    }

    /// A typed view of this function; fails if the types differ.
    pub fn typed<P: WasmParams, R: WasmResults>(
        &self,
        store: impl AsContext,
    ) -> Result<TypedFunc<P, R>, Error> {
        let store = store.as_context();
        store.0.opaque.check_owns(self.store)?;
        let ty = self.ty_in(&store.0.opaque.engine);
        // A result may be of a subtype of the host's type (a `(ref $t)` read as a funcref).
        let results_match = R::types().len() == ty.results().len()
            && ty
                .results()
                .iter()
                .zip(R::types())
                .all(|(w, h)| w.matches(&h));
        if P::types() != ty.params() || !results_match {
            return Err(Error::Link(format!(
                "function type mismatch: the function is {ty}, the typed view expects {}",
                FuncType::new(P::types(), R::types())
            )));
        }
        Ok(TypedFunc::new_unchecked(*self))
    }
}

/// What a host closure may return: `()`, a [`WasmTy`], a tuple of them, or a `Result` of
/// one with an error convertible into [`Error`].
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

impl<R: WasmResults, E: Into<Error>> HostResult for Result<R, E> {
    type Results = R;
    fn into_result(self) -> Result<R, Error> {
        self.map_err(Into::into)
    }
}

/// Marker for host closures whose first parameter is a [`Caller`].
pub struct WithCaller<P>(PhantomData<P>);

/// Rust closures usable as host functions in a store with data `T`:
/// `Fn(A, B, ..) -> R` or `Fn(Caller<'_, T>, A, B, ..) -> R`, with up to 16 [`WasmTy`]
/// parameters and `R` a [`HostResult`].
pub trait IntoFunc<T: 'static, Params, Results>: Send + Sync + 'static {
    /// The signature and the raw form of the closure.
    #[doc(hidden)]
    fn into_host_func(self) -> HostFunc<T>;
}

macro_rules! into_func {
    ($(($($t:ident $i:tt),*))*) => {$(
        impl<T: 'static, F, R, $($t: WasmTy),*> IntoFunc<T, ($($t,)*), R> for F
        where
            F: Fn($($t),*) -> R + Send + Sync + 'static,
            R: HostResult,
        {
            #[allow(unused_variables, unused_mut)]
            fn into_host_func(self) -> HostFunc<T> {
                let ty = FuncType::new(vec![$($t::ty()),*], R::Results::types());
                let func = move |_caller: Caller<'_, T>, values: &mut [u64]| {
                    // Arguments are evaluated left to right: each `take` reads the next
                    // value of the area.
                    let mut at = 0;
                    let r = self($(take::<$t>(values, &mut at)),*).into_result()?;
                    r.write_raw(values);
                    Ok(())
                };
                HostFunc { ty, func: Arc::new(func) }
            }
        }
        impl<T: 'static, F, R, $($t: WasmTy),*> IntoFunc<T, WithCaller<($($t,)*)>, R> for F
        where
            F: Fn(Caller<'_, T>, $($t),*) -> R + Send + Sync + 'static,
            R: HostResult,
        {
            #[allow(unused_variables, unused_mut)]
            fn into_host_func(self) -> HostFunc<T> {
                let ty = FuncType::new(vec![$($t::ty()),*], R::Results::types());
                let func = move |caller: Caller<'_, T>, values: &mut [u64]| {
                    let mut at = 0;
                    let r = self(caller, $(take::<$t>(values, &mut at)),*).into_result()?;
                    r.write_raw(values);
                    Ok(())
                };
                HostFunc { ty, func: Arc::new(func) }
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
    (A 0, B 1, C 2, D 3, E 4, G 5)
    (A 0, B 1, C 2, D 3, E 4, G 5, H 6)
    (A 0, B 1, C 2, D 3, E 4, G 5, H 6, I 7)
    (A 0, B 1, C 2, D 3, E 4, G 5, H 6, I 7, J 8)
    (A 0, B 1, C 2, D 3, E 4, G 5, H 6, I 7, J 8, K 9)
    (A 0, B 1, C 2, D 3, E 4, G 5, H 6, I 7, J 8, K 9, L 10)
    (A 0, B 1, C 2, D 3, E 4, G 5, H 6, I 7, J 8, K 9, L 10, M 11)
    (A 0, B 1, C 2, D 3, E 4, G 5, H 6, I 7, J 8, K 9, L 10, M 11, N 12)
    (A 0, B 1, C 2, D 3, E 4, G 5, H 6, I 7, J 8, K 9, L 10, M 11, N 12, O 13)
    (A 0, B 1, C 2, D 3, E 4, G 5, H 6, I 7, J 8, K 9, L 10, M 11, N 12, O 13, P 14)
    (A 0, B 1, C 2, D 3, E 4, G 5, H 6, I 7, J 8, K 9, L 10, M 11, N 12, O 13, P 14, Q 15)
}
