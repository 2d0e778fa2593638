use crate::vmctx::VMOffsets;
use wasmparser::{FuncType, GlobalType, MemoryType, TableType};

/// What the compiler needs to know about the module a function belongs to.
///
/// Built by the runtime while it parses the module's sections; index spaces include imports
/// first, as in the wasm binary format.
#[derive(Debug, Clone, Default)]
pub struct ModuleInfo {
    /// Function types by type index.
    pub types: Vec<FuncType>,
    /// Engine-wide canonical signature id per type index (equal ids mean equal function
    /// types; id 0 is never used). Generated code never embeds them: `call_indirect` reads
    /// the expected id from the vmctx ([`crate::vmctx::VMOffsets::type_id`]), which the
    /// runtime fills from this list.
    pub type_ids: Vec<u32>,
    /// Type index of every function (imported first).
    pub functions: Vec<u32>,
    /// How many of `functions` are imports.
    pub num_imported_functions: u32,
    /// Global types (imported first).
    pub globals: Vec<GlobalType>,
    /// Table types (imported first).
    pub tables: Vec<TableType>,
    /// Memory types (imported first).
    pub memories: Vec<MemoryType>,
    /// Type index of every tag (imported first): a tag's payload is its type's parameters.
    pub tags: Vec<u32>,
    /// Layout of the instance context for this module.
    pub offsets: VMOffsets,
    /// Emit epoch checks at function entries and loop headers.
    pub epoch_interruption: bool,
    /// Tail calls are enabled (`return_call`, `return_call_indirect`): every call site
    /// reserves at least [`crate::MIN_CALL_AREA_WORDS`] argument words, and a direct call
    /// reloads the vmctx and memory-base registers after it returns (its callee may have
    /// tail-called into another instance, which returns with that instance's registers).
    pub tail_call: bool,
    /// Emit fuel accounting at function entries and loop headers.
    pub consume_fuel: bool,
    /// The CPU has float rounding instructions (x64: SSE4.1). Without them ceil, floor,
    /// trunc and nearest call the `FloatRound` builtin.
    pub native_float_rounding: bool,
    /// x64: the CPU has AVX and the engine allows it, so the backend may emit VEX forms
    /// (ignored by the other backends).
    pub x64_avx: bool,
    /// The multi-memory proposal is on, so the memory index of `memory.size`/`memory.grow`
    /// may be any LEB128 encoding (without it, one zero byte).
    pub multi_memory: bool,
}

impl ModuleInfo {
    /// The type of function `index`.
    pub fn func_type(&self, index: u32) -> Option<&FuncType> {
        let ty = *self.functions.get(index as usize)?;
        self.types.get(ty as usize)
    }

    /// Whether function `index` is an import (reached through its own vmctx).
    pub fn is_imported_function(&self, index: u32) -> bool {
        index < self.num_imported_functions
    }

    /// Recomputes [`ModuleInfo::offsets`] from the index space sizes.
    pub fn compute_offsets(&mut self) {
        self.offsets = VMOffsets::new(
            self.functions.len() as u32,
            self.globals.len() as u32,
            self.tables.len() as u32,
            self.memories.len() as u32,
            self.tags.len() as u32,
            self.types.len() as u32,
        );
    }
}
