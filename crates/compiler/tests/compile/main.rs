//! Tests that compile through the public API with both backends. They share one test crate
//! because `compile_function` is generic: every crate that calls it builds the whole
//! compiler again for each backend, over a minute of build time per file in CI's aarch64
//! step.

mod op_offsets;
mod parse;
mod validate;
