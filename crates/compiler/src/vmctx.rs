//! The layout of the instance context ("vmctx"), the one place that defines it.
//!
//! Generated code keeps a pointer to its instance's vmctx in a pinned register. The runtime
//! allocates and fills the vmctx using the same offsets.
//!
//! ```text
//! 0   stack_limit        u64   lowest allowed stack pointer (header shared with host-func contexts)
//! 8   memory0_base       u64   base of memory 0 (never moves: the whole 32-bit range is reserved)
//! 16  memory0_definition ptr   -> VMMemoryDefinition { base: u64, length_bytes: u64 }
//! 24  epoch_ptr           ptr  -> the engine's epoch counter (u64)
//! 32  trap_landing        ptr  machine code entered with (trap code, pc, frame pointer)
//! 40  instance            ptr  back pointer to the runtime's instance (runtime use only)
//! 48  store_context      ptr   -> the store's VMStoreContext (see [`store_ctx`]): fuel and
//!                               epoch deadline, shared by all instances of a store
//! 56  throw_landing      ptr   machine code entered with (exnref) by a call from wasm (see
//!                               `isa::x64::stubs`): unwinds to the handler of the exception
//! 64  lazy_stub           ptr  where a not-yet-compiled function's jump slot (via the lazy thunk) leads
//! 72  builtins            [ptr; Builtin::COUNT]  see [`Builtin`]
//! ..  funcrefs            [VMFuncRef; num_funcs]   { code, vmctx, type_id } 24 bytes each
//! ..  func_ptrs           [*const VMFuncRef; num_funcs]  canonical funcref of each function
//!                         (its own entry above, or the exporter's for an import): `ref.func`
//! ..  globals             [*mut VMGlobal; num_globals]  (16-byte cells, value at offset 0)
//! ..  tables              [*mut VMTableDefinition; num_tables] { base: *mut *const VMFuncRef, length: u64 }
//! ..  memories            [*mut VMMemoryDefinition; num_memories]
//! ..  memory_bases        [u64; num_memories]  base address of each memory (fixed for
//!                         the memory's life: its whole index range is reserved)
//! ..  tags                [*const VMTag; num_tags]  each tag's identity (the exporter's for
//!                         an import): exceptions match catch clauses by this pointer
//! ..  type_ids            [u64; num_types]  engine-wide signature id of each type index
//!                         (`call_indirect` compares with it; code never embeds an id, so
//!                         it runs unchanged in another engine: see `Module::deserialize`)
//! ```

/// Offsets inside a `VMFuncRef` (the callable triple of code pointer, callee context and
/// signature id).
pub mod funcref {
    /// Entry point of the function's code.
    pub const CODE: i32 = 0;
    /// Context the callee expects in the pinned vmctx register.
    pub const VMCTX: i32 = 8;
    /// Engine-wide signature id.
    pub const TYPE_ID: i32 = 16;
    /// Size of a `VMFuncRef`.
    pub const SIZE: i32 = 24;
}

/// Offsets inside the runtime-owned `VMStoreContext` that vmctx offset
/// [`VMOffsets::store_context`] points to. One per store, shared by all its instances, so
/// fuel and the epoch deadline are per store.
pub mod store_ctx {
    /// `i64`: remaining fuel. Generated code subtracts one unit per function entry and per
    /// loop iteration and traps with `OutOfFuel` when the result drops below 0.
    pub const FUEL: i32 = 0;
    /// `u64`: epoch deadline. When the engine's epoch is at or past it, generated code calls
    /// the [`super::Builtin::EpochDeadline`] builtin, which decides whether to trap with
    /// `Interrupt` or to continue (after moving the deadline).
    pub const EPOCH_DEADLINE: i32 = 8;
    /// Size of the fields generated code uses.
    pub const SIZE: i32 = 16;
}

/// Offsets inside a `VMMemoryDefinition`.
pub mod memory_def {
    /// Base address.
    pub const BASE: i32 = 0;
    /// Current length in bytes.
    pub const LENGTH: i32 = 8;
}

/// Offsets inside a `VMTableDefinition`.
pub mod table_def {
    /// Pointer to the elements (`*const VMFuncRef`, null for a null reference).
    pub const BASE: i32 = 0;
    /// Current number of elements.
    pub const LENGTH: i32 = 8;
}

/// Offsets inside a host function context (what a host import's `VMFuncRef::vmctx` points to).
pub mod host_ctx {
    /// Shared header with the instance vmctx: the stack limit.
    pub const STACK_LIMIT: i32 = 0;
    /// `extern "C" fn(host_ctx, caller_vmctx, values: *mut u64) -> u32` called by the host-call stub.
    pub const CALL: i32 = 8;
    /// What the host routine returns when the host function threw a wasm exception
    /// (trap codes are below 256). The runtime keeps the exception for the unwinder.
    pub const THROW: u32 = 0x100;
}

/// Runtime functions generated code calls (System V / AAPCS: `vmctx` first, then up to four
/// 64-bit arguments, one 64-bit result). Those marked "0 or trap" return 0 on success and
/// non-zero when the operation is out of bounds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Builtin {
    /// `(delta_pages, memory) -> old pages or u32::MAX`
    MemoryGrow,
    /// `(memory, dst, value, len) -> 0 or trap`
    MemoryFill,
    /// `(dst_memory << 32 | src_memory, dst, src, len) -> 0 or trap`
    MemoryCopy,
    /// `(memory << 32 | segment, dst, src, len) -> 0 or trap`
    MemoryInit,
    /// `(segment) -> 0`
    DataDrop,
    /// `(table, init_ref, delta) -> old size or u32::MAX`
    TableGrow,
    /// `(table, dst, ref, len) -> 0 or trap`
    TableFill,
    /// `(dst_table << 32 | src_table, dst, src, len) -> 0 or trap`
    TableCopy,
    /// `(table << 32 | segment, dst, src, len) -> 0 or trap`
    TableInit,
    /// `(segment) -> 0`
    ElemDrop,
    /// `(function index) -> code address, or 0 after recording an error`: compiles a
    /// function on its first call (called by the lazy stub, not by function bodies).
    LazyCompile,
    /// `(float bits, op) -> float bits`: ceil/floor/trunc/nearest for CPUs without a
    /// rounding instruction. `op` = mode (0 ceil, 1 floor, 2 trunc, 3 nearest) + 4 for f64.
    FloatRound,
    /// `(tag vmctx offset, payload, payload words) -> exnref`: a new exception of the tag
    /// at that vmctx offset (see [`VMOffsets::tag_ptr`]) whose payload is the `payload
    /// words` words at address `payload` (laid out as in [`exn`]).
    ThrowNew,
    /// `() -> 0 or trap` (only the vmctx argument): called when the engine's epoch has reached the store's epoch
    /// deadline (`store_ctx::EPOCH_DEADLINE`). Returns 0 when execution may continue (the
    /// runtime has moved the deadline, e.g. after running an epoch callback), non-zero when
    /// the code must trap with `Interrupt`.
    EpochDeadline,
}

impl Builtin {
    /// Number of builtins.
    pub const COUNT: usize = 14;
}

/// The layout of an exception object, which an `exnref` points to (owned by the store).
pub mod exn {
    /// `*const VMTag`: the identity of the exception's tag.
    pub const TAG: i32 = 0;
    /// The payload: one 8-byte word per value, two per v128 (low half first), in order.
    pub const PAYLOAD: i32 = 8;
}

/// Where a function's frame keeps its instance's vmctx (from the frame pointer): written
/// by the prologue, read back after calls and by the exception unwinder.
pub const VMCTX_FRAME_SLOT: i32 = -8;

/// Field offsets of one module's vmctx.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct VMOffsets {
    /// Number of functions (imported and defined).
    pub num_funcs: u32,
    /// Number of globals.
    pub num_globals: u32,
    /// Number of tables.
    pub num_tables: u32,
    /// Number of memories.
    pub num_memories: u32,
    /// Number of tags.
    pub num_tags: u32,
    /// Number of type indices.
    pub num_types: u32,
}

impl VMOffsets {
    /// Layout for a module with these index space sizes.
    pub fn new(
        num_funcs: u32,
        num_globals: u32,
        num_tables: u32,
        num_memories: u32,
        num_tags: u32,
        num_types: u32,
    ) -> Self {
        VMOffsets {
            num_funcs,
            num_globals,
            num_tables,
            num_memories,
            num_tags,
            num_types,
        }
    }
    /// Lowest stack pointer wasm code may use.
    pub const fn stack_limit(&self) -> i32 {
        0
    }
    /// Base address of memory 0.
    pub const fn memory0_base(&self) -> i32 {
        8
    }
    /// Pointer to memory 0's `VMMemoryDefinition`.
    pub const fn memory0_definition(&self) -> i32 {
        16
    }
    /// The `memory.grow` builtin.
    pub const fn builtin_memory_grow(&self) -> i32 {
        self.builtin(Builtin::MemoryGrow)
    }
    /// Pointer to the engine's epoch counter.
    pub const fn epoch_ptr(&self) -> i32 {
        24
    }
    /// Back pointer to the runtime's instance.
    pub const fn instance(&self) -> i32 {
        40
    }
    /// Pointer to the store's `VMStoreContext` (fuel and epoch deadline, laid out as in
    /// [`store_ctx`]).
    pub const fn store_context(&self) -> i32 {
        48
    }
    /// The lazy-compilation stub (machine code, entered from the lazy thunk of each module).
    pub const fn lazy_stub(&self) -> i32 {
        64
    }
    /// Pointer to the runtime function `b`.
    pub const fn builtin(&self, b: Builtin) -> i32 {
        72 + 8 * b as i32
    }
    /// The trap landing routine.
    pub const fn trap_landing(&self) -> i32 {
        32
    }
    /// The throw landing routine (entered by a call with an exnref).
    pub const fn throw_landing(&self) -> i32 {
        56
    }
    /// `VMFuncRef` of function `index`.
    pub fn funcref(&self, index: u32) -> i32 {
        72 + 8 * Builtin::COUNT as i32 + funcref::SIZE * index as i32
    }
    /// Canonical `VMFuncRef` pointer of function `index` (the value of `ref.func index`).
    pub fn func_ptr(&self, index: u32) -> i32 {
        self.funcref(self.num_funcs) + 8 * index as i32
    }
    /// Pointer to global `index`'s cell.
    pub fn global_ptr(&self, index: u32) -> i32 {
        self.func_ptr(self.num_funcs) + 8 * index as i32
    }
    /// Pointer to table `index`'s definition.
    pub fn table_ptr(&self, index: u32) -> i32 {
        self.global_ptr(self.num_globals) + 8 * index as i32
    }
    /// Pointer to memory `index`'s definition.
    pub fn memory_ptr(&self, index: u32) -> i32 {
        self.table_ptr(self.num_tables) + 8 * index as i32
    }
    /// Base address of memory `index` (memory 0's is also at [`Self::memory0_base`]).
    pub fn memory_base(&self, index: u32) -> i32 {
        self.memory_ptr(self.num_memories) + 8 * index as i32
    }
    /// Identity pointer of tag `index`.
    pub fn tag_ptr(&self, index: u32) -> i32 {
        self.memory_base(self.num_memories) + 8 * index as i32
    }
    /// Engine-wide signature id of type index `index` (a `u32` in an 8-byte slot).
    pub fn type_id(&self, index: u32) -> i32 {
        self.tag_ptr(self.num_tags) + 8 * index as i32
    }
    /// Total size of the vmctx in bytes.
    pub fn size(&self) -> usize {
        self.type_id(self.num_types) as usize
    }
}
