//! Module loading, step 2: validating every function body before `Module::new` returns
//! (also in lazy mode), and reporting the operators wjit cannot compile yet. Bodies are
//! independent, so big modules are split over all cores.

use super::parse::{body_reader, FunctionToCompile};
use super::progress::Progress;
use crate::Error;
use wasmparser::{FuncToValidate, FuncValidatorAllocations, WasmFeatures};
use wjit_compiler::ModuleInfo;

/// Proposals the validator accepts that the fast path leaves out: a body that uses them
/// (or has a v128 in its signature) goes to `wjit_compiler::validate_function`, which
/// decides whether the compiler supports what it uses (which SIMD operators; whether a
/// tail call's arguments fit the caller's incoming area).
const UNCOMPILABLE: WasmFeatures = WasmFeatures::SIMD
    .union(WasmFeatures::RELAXED_SIMD)
    .union(WasmFeatures::FUNCTION_REFERENCES)
    .union(WasmFeatures::TAIL_CALL);

/// Below this many bytes of function bodies, one thread does all the work.
const PARALLEL_THRESHOLD: usize = 256 * 1024;

/// Splits `items` into at most `parts` contiguous chunks of about equal total `weight`.
pub(crate) fn balanced_chunks<T>(
    items: &[T],
    parts: usize,
    weight: impl Fn(&T) -> usize,
) -> Vec<&[T]> {
    let total: usize = items.iter().map(&weight).sum();
    let per_part = total.div_ceil(parts.max(1)).max(1);
    let mut chunks = Vec::new();
    let (mut start, mut acc) = (0, 0);
    for (i, item) in items.iter().enumerate() {
        acc += weight(item);
        if acc >= per_part {
            chunks.push(&items[start..=i]);
            start = i + 1;
            acc = 0;
        }
    }
    if start < items.len() {
        chunks.push(&items[start..]);
    }
    chunks
}

/// Runs `work` over chunks of `items` on up to all cores (when `parallel` and the work is
/// big enough), returning the results in order. The first error wins.
pub(crate) fn for_each_body<R: Send>(
    items: &[FunctionToCompile],
    parallel: bool,
    work: impl Fn(&[FunctionToCompile]) -> Result<Vec<R>, Error> + Sync,
) -> Result<Vec<R>, Error> {
    let total: usize = items.iter().map(|f| f.body.len()).sum();
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    if !parallel || threads < 2 || total < PARALLEL_THRESHOLD {
        return work(items);
    }
    let chunks = balanced_chunks(items, threads * 2, |f| f.body.len());
    let results: Vec<Result<Vec<R>, Error>> = std::thread::scope(|s| {
        let handles: Vec<_> = chunks.iter().map(|chunk| s.spawn(|| work(chunk))).collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err(Error::Compile("validation thread panicked".into())))
            })
            .collect()
    });
    let mut out = Vec::with_capacity(items.len());
    for r in results {
        out.extend(r?);
    }
    Ok(out)
}

/// A copy of the validator job of `f` (the original stays for lazy compilation).
pub(crate) fn job(f: &FunctionToCompile) -> FuncToValidate<wasmparser::ValidatorResources> {
    FuncToValidate {
        resources: f.to_validate.resources.clone(),
        index: f.to_validate.index,
        ty: f.to_validate.ty,
        features: f.to_validate.features,
    }
}

/// Whether function `index` takes or returns a v128.
fn has_v128_signature(info: &ModuleInfo, index: u32) -> bool {
    info.func_type(index).is_some_and(|ty| {
        ty.params()
            .iter()
            .chain(ty.results())
            .any(|t| *t == wasmparser::ValType::V128)
    })
}

/// Validates every body in `bodies` (all of the module's defined functions).
pub(crate) fn validate_bodies(
    info: &ModuleInfo,
    binary: &[u8],
    bodies: &[FunctionToCompile],
    parallel: bool,
    progress: &Progress<'_>,
) -> Result<(), Error> {
    for_each_body(bodies, parallel, |chunk| {
        let mut allocs = FuncValidatorAllocations::default();
        for f in chunk {
            let index = f.to_validate.index;
            let body = body_reader(binary, f.body.clone(), f.to_validate.features);
            // Fast path: wasmparser's own validation loop (no `Operator` values), with the
            // SIMD proposals switched off.
            let mut fast = job(f);
            fast.features.remove(UNCOMPILABLE);
            let mut validator = fast.into_validator(allocs);
            // (The signature is checked here: the fast loop only sees the body, and whether
            // a v128 parameter or result can be compiled is the compiler's call.)
            let fast_ok = !has_v128_signature(info, index) && validator.validate(&body).is_ok();
            allocs = validator.into_allocations();
            if fast_ok {
                progress.advance();
                continue;
            }
            // Slow path: the full validator plus the compiler's own checks, which say
            // precisely why the body is rejected (invalid, or unsupported by wjit), or
            // accept it (a valid body using SIMD that the compiler supports).
            let mut precise = job(f).into_validator(allocs);
            wjit_compiler::validate_function(info, index, &body, &mut precise)?;
            allocs = precise.into_allocations();
            progress.advance();
        }
        Ok(Vec::<()>::new())
    })?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::balanced_chunks;

    #[test]
    fn chunks_cover_everything_in_order() {
        let items: Vec<usize> = (1..=100).collect();
        for parts in [1, 2, 3, 7, 200] {
            let chunks = balanced_chunks(&items, parts, |&w| w);
            let flat: Vec<usize> = chunks.iter().flat_map(|c| c.iter().copied()).collect();
            assert_eq!(flat, items, "parts = {parts}");
            assert!(chunks.len() <= parts.max(1), "parts = {parts}");
        }
        assert!(balanced_chunks::<usize>(&[], 4, |&w| w).is_empty());
    }
}
