//! Resource limits of a store: the [`ResourceLimiter`] trait a store consults before memories
//! and tables grow and instances are created, and [`StoreLimits`], a ready-made limiter.
//!
//! Part of the base floor: imports only the error module.

use crate::Error;

/// Decides whether a store's memories and tables may grow and how many instances, memories
/// and tables it may have (installed with [`crate::Store::limiter`]), as in wasmtime.
pub trait ResourceLimiter: Send {
    /// A memory wants to grow from `current` to `desired` bytes (`maximum` is its declared
    /// maximum, if any). Return `Ok(false)` to refuse: `memory.grow` then returns -1, and the
    /// creation of a memory (called with `current` 0) fails. An `Err` refuses the same way
    /// and is returned instead of the generic error where the operation reports one.
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        maximum: Option<usize>,
    ) -> Result<bool, Error>;

    /// A table wants to grow from `current` to `desired` elements. As for
    /// [`ResourceLimiter::memory_growing`].
    fn table_growing(
        &mut self,
        current: usize,
        desired: usize,
        maximum: Option<usize>,
    ) -> Result<bool, Error>;

    /// The most instances the store may hold.
    fn instances(&self) -> usize {
        DEFAULT_INSTANCE_LIMIT
    }

    /// The most tables the store may hold.
    fn tables(&self) -> usize {
        DEFAULT_TABLE_LIMIT
    }

    /// The most memories the store may hold.
    fn memories(&self) -> usize {
        DEFAULT_MEMORY_LIMIT
    }
}

/// The default limit on instances per store.
pub const DEFAULT_INSTANCE_LIMIT: usize = 10_000;
/// The default limit on tables per store.
pub const DEFAULT_TABLE_LIMIT: usize = 10_000;
/// The default limit on memories per store.
pub const DEFAULT_MEMORY_LIMIT: usize = 10_000;

/// A [`ResourceLimiter`] with fixed limits, built with [`StoreLimitsBuilder`].
#[derive(Debug, Clone)]
pub struct StoreLimits {
    memory_size: Option<usize>,
    table_elements: Option<usize>,
    instances: usize,
    tables: usize,
    memories: usize,
}

impl Default for StoreLimits {
    fn default() -> StoreLimits {
        StoreLimits {
            memory_size: None,
            table_elements: None,
            instances: DEFAULT_INSTANCE_LIMIT,
            tables: DEFAULT_TABLE_LIMIT,
            memories: DEFAULT_MEMORY_LIMIT,
        }
    }
}

impl ResourceLimiter for StoreLimits {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> Result<bool, Error> {
        Ok(self.memory_size.is_none_or(|limit| desired <= limit))
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> Result<bool, Error> {
        Ok(self.table_elements.is_none_or(|limit| desired <= limit))
    }

    fn instances(&self) -> usize {
        self.instances
    }

    fn tables(&self) -> usize {
        self.tables
    }

    fn memories(&self) -> usize {
        self.memories
    }
}

/// Builds a [`StoreLimits`].
#[derive(Debug, Clone, Default)]
pub struct StoreLimitsBuilder(StoreLimits);

impl StoreLimitsBuilder {
    /// No limits beyond the defaults.
    pub fn new() -> StoreLimitsBuilder {
        StoreLimitsBuilder::default()
    }

    /// The most bytes any one linear memory may have.
    pub fn memory_size(mut self, bytes: usize) -> Self {
        self.0.memory_size = Some(bytes);
        self
    }

    /// The most elements any one table may have.
    pub fn table_elements(mut self, elements: usize) -> Self {
        self.0.table_elements = Some(elements);
        self
    }

    /// The most instances the store may hold.
    pub fn instances(mut self, n: usize) -> Self {
        self.0.instances = n;
        self
    }

    /// The most tables the store may hold.
    pub fn tables(mut self, n: usize) -> Self {
        self.0.tables = n;
        self
    }

    /// The most memories the store may hold.
    pub fn memories(mut self, n: usize) -> Self {
        self.0.memories = n;
        self
    }

    /// The limits.
    pub fn build(self) -> StoreLimits {
        self.0
    }
}
