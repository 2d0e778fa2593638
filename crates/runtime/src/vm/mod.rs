//! The machine-facing floor: everything generated code touches, and nothing public.
//!
//! * [`vmctx`]: the data layouts shared with generated code (funcrefs, memory, table and
//!   global definitions, the per-store context) and the owned allocations behind them.
//! * [`stubs`]: the process-wide entry, host-call and trap-landing routines.
//! * [`traps`]: the per-thread trap state the trap landing records into, and backtraces.
//! * [`entry`]: entering wasm from the host (stack limit, store pointer) and turning a
//!   trap into an error.
//! * [`code`]: placing compiled code in executable memory and the registry that maps a pc
//!   back to its function (signal handler lookups, backtraces).
//! * [`memory`], [`table`]: linear memories and tables as the store owns them.
//! * [`instance`]: an instance's vmctx and the runtime state builtins need.
//! * [`store`]: the type-erased view of a store that builtins and host calls use.
//! * [`host_func`]: the context behind a host function's funcref.
//! * [`builtins`]: the runtime functions generated code calls.
//! * [`exceptions`]: tags, exception objects and the unwinder of the throw landing.
//!
//! Imports point down only: to `sys/` and the base floor (`error`, `types`, `limits`).

pub(crate) mod builtins;
pub(crate) mod code;
pub(crate) mod entry;
pub(crate) mod exceptions;
pub(crate) mod host_func;
pub(crate) mod instance;
pub(crate) mod memory;
pub(crate) mod store;
pub(crate) mod stubs;
pub(crate) mod table;
pub(crate) mod traps;
pub(crate) mod vmctx;
