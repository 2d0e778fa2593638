//! Runtime functions called from generated code (see `wjit_compiler::vmctx::Builtin`).
//!
//! Each takes the caller's vmctx first and 64-bit arguments (i32 operands are truncated
//! here). Range operations check the whole range before writing anything and return
//! non-zero when it is out of bounds; generated code turns that into the trap.

use crate::instance::InstanceInner;
use crate::vm::VMFuncRef;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Mutex;
use wjit_compiler::vmctx::Builtin;

const OUT_OF_BOUNDS: u64 = 1;

/// Runs `f` on the instance owning `vmctx`; a missing instance or a panic gives `fail`.
fn with_instance(vmctx: usize, fail: u64, f: impl FnOnce(&InstanceInner) -> u64) -> u64 {
    catch_unwind(AssertUnwindSafe(|| {
        // SAFETY: generated code passes its own vmctx, whose back pointer is set at
        // instantiation and valid while the instance runs.
        match unsafe { InstanceInner::from_vmctx(vmctx) } {
            Some(inst) => f(inst),
            None => fail,
        }
    }))
    .unwrap_or(fail)
}

/// Whether segment `seg` was dropped (an unknown segment counts as dropped: it is empty).
fn is_dropped(flags: &Mutex<Vec<bool>>, seg: usize) -> bool {
    flags
        .lock()
        .map(|d| d.get(seg).copied().unwrap_or(true))
        .unwrap_or(true)
}

/// Marks segment `seg` dropped (`data.drop` / `elem.drop`).
fn mark_dropped(flags: &Mutex<Vec<bool>>, seg: usize) {
    if let Ok(mut d) = flags.lock() {
        if let Some(flag) = d.get_mut(seg) {
            *flag = true;
        }
    }
}

fn in_bounds(start: u64, len: u64, size: u64) -> bool {
    start.checked_add(len).is_some_and(|end| end <= size)
}

extern "C" fn memory_grow(vmctx: usize, delta: u64, _memory: u64) -> u64 {
    with_instance(vmctx, u32::MAX as u64, |inst| {
        let Some(mem) = inst.memories.first() else {
            return u32::MAX as u64;
        };
        match mem.grow(delta as u32 as u64) {
            Ok(old) => old,
            Err(_) => u32::MAX as u64,
        }
    })
}

extern "C" fn memory_fill(vmctx: usize, dst: u64, value: u64, len: u64) -> u64 {
    with_instance(vmctx, OUT_OF_BOUNDS, |inst| {
        let (dst, len) = (dst as u32 as u64, len as u32 as u64);
        let Some(mem) = inst.memories.first() else {
            return OUT_OF_BOUNDS;
        };
        if !in_bounds(dst, len, mem.data_size() as u64) {
            return OUT_OF_BOUNDS;
        }
        // SAFETY: the range is inside the accessible part of the memory.
        unsafe {
            std::ptr::write_bytes(mem.data_ptr().add(dst as usize), value as u8, len as usize)
        };
        0
    })
}

extern "C" fn memory_copy(vmctx: usize, dst: u64, src: u64, len: u64) -> u64 {
    with_instance(vmctx, OUT_OF_BOUNDS, |inst| {
        let (dst, src, len) = (dst as u32 as u64, src as u32 as u64, len as u32 as u64);
        let Some(mem) = inst.memories.first() else {
            return OUT_OF_BOUNDS;
        };
        let size = mem.data_size() as u64;
        if !in_bounds(dst, len, size) || !in_bounds(src, len, size) {
            return OUT_OF_BOUNDS;
        }
        let base = mem.data_ptr();
        // SAFETY: both ranges are inside the memory; `copy` allows overlap.
        unsafe { std::ptr::copy(base.add(src as usize), base.add(dst as usize), len as usize) };
        0
    })
}

extern "C" fn memory_init(vmctx: usize, segment: u64, dst: u64, src: u64, len: u64) -> u64 {
    with_instance(vmctx, OUT_OF_BOUNDS, |inst| {
        let (dst, src, len) = (dst as u32 as u64, src as u32 as u64, len as u32 as u64);
        let seg = segment as u32 as usize;
        let dropped = is_dropped(&inst.dropped_data, seg);
        let bytes: &[u8] = match inst.module.data.get(seg) {
            Some(s) if !dropped => &s.bytes,
            _ => &[],
        };
        let Some(mem) = inst.memories.first() else {
            return OUT_OF_BOUNDS;
        };
        if !in_bounds(src, len, bytes.len() as u64) || !in_bounds(dst, len, mem.data_size() as u64)
        {
            return OUT_OF_BOUNDS;
        }
        let from = &bytes[src as usize..(src + len) as usize];
        // SAFETY: the destination range is inside the memory.
        unsafe {
            std::ptr::copy_nonoverlapping(
                from.as_ptr(),
                mem.data_ptr().add(dst as usize),
                len as usize,
            )
        };
        0
    })
}

extern "C" fn data_drop(vmctx: usize, segment: u64) -> u64 {
    with_instance(vmctx, 0, |inst| {
        mark_dropped(&inst.dropped_data, segment as u32 as usize);
        0
    })
}

extern "C" fn table_grow(vmctx: usize, table: u64, init: u64, delta: u64) -> u64 {
    with_instance(vmctx, u32::MAX as u64, |inst| {
        match inst.tables.get(table as u32 as usize) {
            Some(t) => t
                .grow_raw(delta as u32, init as usize)
                .map_or(u32::MAX as u64, |old| old as u64),
            None => u32::MAX as u64,
        }
    })
}

extern "C" fn table_fill(vmctx: usize, table: u64, dst: u64, value: u64, len: u64) -> u64 {
    with_instance(vmctx, OUT_OF_BOUNDS, |inst| {
        let (dst, len) = (dst as u32 as u64, len as u32 as u64);
        let Some(t) = inst.tables.get(table as u32 as usize) else {
            return OUT_OF_BOUNDS;
        };
        if !in_bounds(dst, len, t.size() as u64) {
            return OUT_OF_BOUNDS;
        }
        for i in dst..dst + len {
            if t.set_raw(i as u32, value as *const VMFuncRef, None)
                .is_err()
            {
                return OUT_OF_BOUNDS;
            }
        }
        0
    })
}

extern "C" fn table_copy(vmctx: usize, tables: u64, dst: u64, src: u64, len: u64) -> u64 {
    with_instance(vmctx, OUT_OF_BOUNDS, |inst| {
        let (dst, src, len) = (dst as u32 as u64, src as u32 as u64, len as u32 as u64);
        let (Some(dt), Some(st)) = (
            inst.tables.get((tables >> 32) as usize),
            inst.tables.get(tables as u32 as usize),
        ) else {
            return OUT_OF_BOUNDS;
        };
        if !in_bounds(dst, len, dt.size() as u64) || !in_bounds(src, len, st.size() as u64) {
            return OUT_OF_BOUNDS;
        }
        let items: Vec<usize> = (src..src + len)
            .map(|i| st.get_raw(i as u32).unwrap_or(0))
            .collect();
        for (k, raw) in items.into_iter().enumerate() {
            if dt
                .set_raw((dst + k as u64) as u32, raw as *const VMFuncRef, None)
                .is_err()
            {
                return OUT_OF_BOUNDS;
            }
        }
        0
    })
}

extern "C" fn table_init(vmctx: usize, table_segment: u64, dst: u64, src: u64, len: u64) -> u64 {
    with_instance(vmctx, OUT_OF_BOUNDS, |inst| {
        let (dst, src, len) = (dst as u32 as u64, src as u32 as u64, len as u32 as u64);
        let seg = table_segment as u32 as usize;
        let dropped = is_dropped(&inst.dropped_elems, seg);
        let items: &[crate::module::ConstInit] = match inst.module.elems.get(seg) {
            Some(s) if !dropped => &s.items,
            _ => &[],
        };
        let Some(t) = inst.tables.get((table_segment >> 32) as usize) else {
            return OUT_OF_BOUNDS;
        };
        if !in_bounds(src, len, items.len() as u64) || !in_bounds(dst, len, t.size() as u64) {
            return OUT_OF_BOUNDS;
        }
        for k in 0..len {
            let Ok(raw) = inst.eval(items[(src + k) as usize]) else {
                return OUT_OF_BOUNDS;
            };
            if t.set_raw((dst + k) as u32, raw as *const VMFuncRef, None)
                .is_err()
            {
                return OUT_OF_BOUNDS;
            }
        }
        0
    })
}

extern "C" fn elem_drop(vmctx: usize, segment: u64) -> u64 {
    with_instance(vmctx, 0, |inst| {
        mark_dropped(&inst.dropped_elems, segment as u32 as usize);
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
                crate::vm::set_pending_error(e);
                0
            }
        }
    })
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

/// Every builtin with its entry address, for filling a vmctx.
pub(crate) fn builtins() -> [(Builtin, usize); Builtin::COUNT] {
    [
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
    ]
}
