//! Runtime functions called from generated code (see `wjit_compiler::vmctx::Builtin`).
//!
//! Each takes the caller's vmctx first and 64-bit arguments (i32 operands are truncated
//! here). Range operations check the whole range before writing anything and return
//! non-zero when it is out of bounds; generated code turns that into the trap. None of them
//! may unwind into generated code: each body runs under `catch_unwind`.

use super::instance::{SharedBytes, VMInstance};
use super::store::VMStore;
use super::store::VMStoreContext;
use super::traps::set_pending_error;
use std::panic::{catch_unwind, AssertUnwindSafe};
use wjit_compiler::vmctx::{Builtin, VMOffsets};

const OUT_OF_BOUNDS: u64 = 1;
const FAILED: u64 = u32::MAX as u64;

/// Runs `f` on the instance owning `vmctx`; a missing instance or a panic gives `fail`.
fn with_instance(vmctx: usize, fail: u64, f: impl FnOnce(&mut VMInstance) -> u64) -> u64 {
    catch_unwind(AssertUnwindSafe(|| {
        // SAFETY: generated code passes its own vmctx, whose back pointer is set at
        // instantiation and valid while the instance runs.
        match unsafe { VMInstance::from_vmctx(vmctx) } {
            Some(inst) => f(inst),
            None => fail,
        }
    }))
    .unwrap_or(fail)
}

/// The store running the code of `vmctx`.
///
/// # Safety
/// `vmctx` must be the context of an instance whose code is running (so the entry that
/// started it has set the store pointer, and nothing else uses the store meanwhile).
unsafe fn store_of<'a>(vmctx: usize) -> Option<&'a mut dyn VMStore> {
    let at = vmctx + VMOffsets::default().store_context() as usize;
    // SAFETY: per the contract, the word is the store context pointer written at
    // instantiation, and the context's `store` was set by the running entry.
    unsafe {
        let ctx = *(at as *const *mut VMStoreContext);
        Some((*ctx).store?.as_mut())
    }
}

fn in_bounds(start: u64, len: u64, size: u64) -> bool {
    start.checked_add(len).is_some_and(|end| end <= size)
}

/// Returns the old size in pages, or -1 in the memory's index type (`u32::MAX` for a
/// 32-bit memory, `u64::MAX` for a 64-bit one).
extern "C" fn memory_grow(vmctx: usize, delta: u64, memory: u64) -> u64 {
    with_instance(vmctx, FAILED, |inst| {
        let Some(mem) = inst.memory(memory as u32) else {
            return FAILED;
        };
        // SAFETY: a live memory of the store.
        let wide = unsafe { (*mem).is_64() };
        let failed = if wide { u64::MAX } else { FAILED };
        // SAFETY: our code is running, so the store pointer is set; the memory is the
        // store's.
        unsafe {
            match store_of(vmctx) {
                Some(store) => store
                    .grow_memory(mem, index_value(delta, wide))
                    .unwrap_or(failed),
                None => failed,
            }
        }
    })
}

/// An index or length operand as the instruction's type has it: generated code passes an
/// `i32` operand with undefined upper bits, an `i64` (memory64, table64) whole.
fn index_value(raw: u64, wide: bool) -> u64 {
    if wide {
        raw
    } else {
        raw as u32 as u64
    }
}

/// The operands of `memory.copy`/`table.copy` between a destination and a source whose
/// index types are 64-bit as `(dst_wide, src_wide)`: the length is 64-bit only when both are.
fn copy_operands(
    dst: u64,
    src: u64,
    len: u64,
    (dst_wide, src_wide): (bool, bool),
) -> (u64, u64, u64) {
    (
        index_value(dst, dst_wide),
        index_value(src, src_wide),
        index_value(len, dst_wide && src_wide),
    )
}

/// Whether memory `index` of `inst` is a 64-bit memory.
fn memory_is_64(inst: &mut VMInstance, index: u64) -> bool {
    // SAFETY: a live memory of the store.
    inst.memory(index as u32)
        .is_some_and(|m| unsafe { (*m).is_64() })
}

/// The accessible bytes of memory `index` of `inst`.
fn memory_bytes(inst: &mut VMInstance, index: u64) -> Option<&mut [u8]> {
    // SAFETY: the memory is a live allocation of the store, which is borrowed by the running
    // wasm code only; the slice is used before anything else can reach the memory.
    inst.memory(index as u32)
        .map(|m| unsafe { (*m).data_mut() })
}

extern "C" fn memory_fill(vmctx: usize, memory: u64, dst: u64, value: u64, len: u64) -> u64 {
    with_instance(vmctx, OUT_OF_BOUNDS, |inst| {
        let wide = memory_is_64(inst, memory);
        let (dst, len) = (index_value(dst, wide), index_value(len, wide));
        let Some(mem) = memory_bytes(inst, memory) else {
            return OUT_OF_BOUNDS;
        };
        if !in_bounds(dst, len, mem.len() as u64) {
            return OUT_OF_BOUNDS;
        }
        mem[dst as usize..(dst + len) as usize].fill(value as u8);
        0
    })
}

/// `memories` is `dst_memory << 32 | src_memory`.
extern "C" fn memory_copy(vmctx: usize, memories: u64, dst: u64, src: u64, len: u64) -> u64 {
    with_instance(vmctx, OUT_OF_BOUNDS, |inst| {
        let widths = (
            memory_is_64(inst, memories >> 32),
            memory_is_64(inst, memories as u32 as u64),
        );
        let (dst, src, len) = copy_operands(dst, src, len, widths);
        let (Some(dst_mem), Some(src_mem)) = (
            inst.memory((memories >> 32) as u32),
            inst.memory(memories as u32),
        ) else {
            return OUT_OF_BOUNDS;
        };
        // SAFETY: live memories of the store (possibly the same one), borrowed by the
        // running wasm code only; only their lengths are read here.
        let (dst_size, src_size) = unsafe { ((*dst_mem).size_bytes(), (*src_mem).size_bytes()) };
        if !in_bounds(dst, len, dst_size as u64) || !in_bounds(src, len, src_size as u64) {
            return OUT_OF_BOUNDS;
        }
        // SAFETY: both ranges were checked against their memory's accessible length, and
        // `ptr::copy` allows them to overlap (a copy within one memory).
        unsafe {
            std::ptr::copy(
                (*src_mem).base().add(src as usize),
                (*dst_mem).base().add(dst as usize),
                len as usize,
            );
        }
        0
    })
}

/// `target` is `memory << 32 | segment`.
extern "C" fn memory_init(vmctx: usize, target: u64, dst: u64, src: u64, len: u64) -> u64 {
    with_instance(vmctx, OUT_OF_BOUNDS, |inst| {
        let wide = memory_is_64(inst, target >> 32);
        let (dst, src, len) = (index_value(dst, wide), src as u32 as u64, len as u32 as u64);
        let bytes = match inst.passive_data.get(target as u32 as usize) {
            Some(Some(b)) => b.clone(),
            _ => SharedBytes::default(),
        };
        let Some(mem) = memory_bytes(inst, target >> 32) else {
            return OUT_OF_BOUNDS;
        };
        if !in_bounds(src, len, bytes.len() as u64) || !in_bounds(dst, len, mem.len() as u64) {
            return OUT_OF_BOUNDS;
        }
        mem[dst as usize..(dst + len) as usize]
            .copy_from_slice(&bytes[src as usize..(src + len) as usize]);
        0
    })
}

extern "C" fn data_drop(vmctx: usize, segment: u64) -> u64 {
    with_instance(vmctx, 0, |inst| {
        if let Some(seg) = inst.passive_data.get_mut(segment as u32 as usize) {
            *seg = None;
        }
        0
    })
}

/// Returns the old size, or -1 in the table's index type.
extern "C" fn table_grow(vmctx: usize, table: u64, init: u64, delta: u64) -> u64 {
    with_instance(vmctx, FAILED, |inst| {
        let Some(t) = inst.table(table as u32) else {
            return FAILED;
        };
        // SAFETY: a live table of the store.
        let wide = unsafe { (*t).is_64() };
        let failed = if wide { u64::MAX } else { FAILED };
        // No table grows by 2^32 elements or more.
        let Ok(delta) = u32::try_from(index_value(delta, wide)) else {
            return failed;
        };
        // SAFETY: our code is running, so the store pointer is set; the table is the
        // store's.
        unsafe {
            match store_of(vmctx) {
                Some(store) => store
                    .grow_table(t, delta, init as usize)
                    .map_or(failed, u64::from),
                None => failed,
            }
        }
    })
}

/// Whether table `index` of `inst` is a 64-bit table.
fn table_is_64(inst: &mut VMInstance, index: u64) -> bool {
    // SAFETY: a live table of the store.
    inst.table(index as u32)
        .is_some_and(|t| unsafe { (*t).is_64() })
}

extern "C" fn table_fill(vmctx: usize, table: u64, dst: u64, value: u64, len: u64) -> u64 {
    with_instance(vmctx, OUT_OF_BOUNDS, |inst| {
        let wide = table_is_64(inst, table);
        let (dst, len) = (index_value(dst, wide), index_value(len, wide));
        let Some(t) = inst.table(table as u32) else {
            return OUT_OF_BOUNDS;
        };
        // SAFETY: a live table of the store, which only the running code uses.
        let elements = unsafe { (*t).elements_mut() };
        if !in_bounds(dst, len, elements.len() as u64) {
            return OUT_OF_BOUNDS;
        }
        elements[dst as usize..(dst + len) as usize].fill(value as usize);
        0
    })
}

extern "C" fn table_copy(vmctx: usize, tables: u64, dst: u64, src: u64, len: u64) -> u64 {
    with_instance(vmctx, OUT_OF_BOUNDS, |inst| {
        let widths = (
            table_is_64(inst, tables >> 32),
            table_is_64(inst, tables as u32 as u64),
        );
        let (dst, src, len) = copy_operands(dst, src, len, widths);
        let (Some(dt), Some(st)) = (inst.table((tables >> 32) as u32), inst.table(tables as u32))
        else {
            return OUT_OF_BOUNDS;
        };
        // SAFETY: live tables of the store, which only the running code uses; the source is
        // copied out before the destination is borrowed (they may be the same table).
        let items: Vec<usize> = unsafe {
            let s = (*st).elements_mut();
            if !in_bounds(src, len, s.len() as u64) {
                return OUT_OF_BOUNDS;
            }
            s[src as usize..(src + len) as usize].to_vec()
        };
        // SAFETY: as above.
        let d = unsafe { (*dt).elements_mut() };
        if !in_bounds(dst, len, d.len() as u64) {
            return OUT_OF_BOUNDS;
        }
        d[dst as usize..(dst + len) as usize].copy_from_slice(&items);
        0
    })
}

extern "C" fn table_init(vmctx: usize, table_segment: u64, dst: u64, src: u64, len: u64) -> u64 {
    with_instance(vmctx, OUT_OF_BOUNDS, |inst| {
        let wide = table_is_64(inst, table_segment >> 32);
        let (dst, src, len) = (index_value(dst, wide), src as u32 as u64, len as u32 as u64);
        let items: &[usize] = match inst.passive_elems.get(table_segment as u32 as usize) {
            Some(Some(items)) => items,
            _ => &[],
        };
        let Some(t) = inst.table((table_segment >> 32) as u32) else {
            return OUT_OF_BOUNDS;
        };
        // SAFETY: a live table of the store, which only the running code uses.
        let elements = unsafe { (*t).elements_mut() };
        if !in_bounds(src, len, items.len() as u64) || !in_bounds(dst, len, elements.len() as u64) {
            return OUT_OF_BOUNDS;
        }
        elements[dst as usize..(dst + len) as usize]
            .copy_from_slice(&items[src as usize..(src + len) as usize]);
        0
    })
}

extern "C" fn elem_drop(vmctx: usize, segment: u64) -> u64 {
    with_instance(vmctx, 0, |inst| {
        if let Some(seg) = inst.passive_elems.get_mut(segment as u32 as usize) {
            *seg = None;
        }
        0
    })
}

extern "C" fn lazy_compile(vmctx: usize, index: u64) -> u64 {
    with_instance(vmctx, 0, |inst| {
        let index = index as u32;
        match inst.module.compile_lazily(index) {
            Ok(code) => {
                inst.patch_code(index, code);
                code as u64
            }
            Err(e) => {
                set_pending_error(e);
                0
            }
        }
    })
}

extern "C" fn epoch_deadline(vmctx: usize) -> u64 {
    let result = catch_unwind(AssertUnwindSafe(|| {
        // SAFETY: our code is running, so the store pointer is set.
        let Some(store) = (unsafe { store_of(vmctx) }) else {
            return 1;
        };
        match store.epoch_deadline_reached() {
            Ok(_) => 0,
            Err(e) => {
                if e.trap_code() != Some(crate::TrapCode::Interrupt) {
                    set_pending_error(e);
                }
                1
            }
        }
    }));
    result.unwrap_or(1)
}

extern "C" fn float_round(_vmctx: usize, bits: u64, op: u64) -> u64 {
    fn round64(x: f64, mode: u64) -> f64 {
        match mode {
            0 => x.ceil(),
            1 => x.floor(),
            2 => x.trunc(),
            _ => x.round_ties_even(),
        }
    }
    fn round32(x: f32, mode: u64) -> f32 {
        match mode {
            0 => x.ceil(),
            1 => x.floor(),
            2 => x.trunc(),
            _ => x.round_ties_even(),
        }
    }
    // Rust's rounding functions keep NaN payloads quiet as wasm allows.
    if op & 4 != 0 {
        round64(f64::from_bits(bits), op & 3).to_bits()
    } else {
        round32(f32::from_bits(bits as u32), op & 3).to_bits() as u64
    }
}

/// Makes an exception of the tag at vmctx offset `tag_offset` with the `words` payload
/// words at `payload`; returns its exnref (0 if the store is missing, which the unwinder
/// reports).
extern "C" fn throw_new(vmctx: usize, tag_offset: u64, payload: u64, words: u64) -> u64 {
    catch_unwind(AssertUnwindSafe(|| {
        let mut object = vec![0u64; 1 + words as usize];
        // SAFETY: generated code passes a tag slot of its own vmctx, and the address of
        // its outgoing area holding `words` payload words.
        unsafe {
            object[0] = *((vmctx + tag_offset as usize) as *const u64);
            let payload =
                std::slice::from_raw_parts(payload as usize as *const u64, words as usize);
            object[1..].copy_from_slice(payload);
        }
        // SAFETY: our code is running, so the store pointer is set.
        match unsafe { store_of(vmctx) } {
            Some(store) => store.keep_exception(object.into_boxed_slice()) as u64,
            None => 0,
        }
    }))
    .unwrap_or(0)
}

/// Every builtin with its entry address, for filling a vmctx.
pub(crate) fn builtins() -> Vec<(Builtin, usize)> {
    vec![
        (Builtin::MemoryGrow, memory_grow as *const () as usize),
        (Builtin::MemoryFill, memory_fill as *const () as usize),
        (Builtin::MemoryCopy, memory_copy as *const () as usize),
        (Builtin::MemoryInit, memory_init as *const () as usize),
        (Builtin::DataDrop, data_drop as *const () as usize),
        (Builtin::TableGrow, table_grow as *const () as usize),
        (Builtin::TableFill, table_fill as *const () as usize),
        (Builtin::TableCopy, table_copy as *const () as usize),
        (Builtin::TableInit, table_init as *const () as usize),
        (Builtin::ElemDrop, elem_drop as *const () as usize),
        (Builtin::LazyCompile, lazy_compile as *const () as usize),
        (Builtin::FloatRound, float_round as *const () as usize),
        (Builtin::ThrowNew, throw_new as *const () as usize),
        (Builtin::EpochDeadline, epoch_deadline as *const () as usize),
    ]
}
