//! `CompiledFunction::op_offsets`: empty unless asked for, and recording them changes
//! nothing else about the code.

use super::parse::{parse, Parsed};
use wasmparser::WasmFeatures;
use wjit_compiler::isa::{aarch64::Aarch64Masm, x64::X64Masm};
use wjit_compiler::masm::MacroAssembler;
use wjit_compiler::{compile_function_in, CompiledFunction, FuncCompilerContext};

fn compile_all<M: MacroAssembler>(masm: M, record: bool, wasm: &[u8]) -> Vec<CompiledFunction> {
    let Parsed { info, funcs } = parse(wasm, WasmFeatures::default());
    let mut context = FuncCompilerContext::new(masm);
    context.record_op_offsets(record);
    funcs
        .into_iter()
        .map(|(index, body, job)| {
            let mut validator = job.into_validator(Default::default());
            compile_function_in(&mut context, &info, index, &body, &mut validator).unwrap()
        })
        .collect()
}

/// (offset of each operator, offset just past the body) of every body.
fn operator_offsets(wasm: &[u8]) -> Vec<Vec<u32>> {
    let funcs = parse(wasm, WasmFeatures::default()).funcs;
    funcs
        .into_iter()
        .map(|(_, body, _)| {
            let mut ops = body.get_operators_reader().unwrap();
            let mut at = Vec::new();
            while !ops.eof() {
                at.push(ops.original_position() as u32);
                ops.read().unwrap();
            }
            at.push(body.range().end as u32);
            at
        })
        .collect()
}

fn check<M: MacroAssembler>(masm: impl Fn() -> M) {
    let wasm = wat::parse_str(
        r#"(module (memory 1)
             (func $sum (param i32) (result i32) (local i32)
               (block (loop
                 (br_if 1 (i32.eqz (local.get 0)))
                 (local.set 1 (i32.add (local.get 1) (i32.load (local.get 0))))
                 (local.set 0 (i32.sub (local.get 0) (i32.const 4)))
                 (br 0)))
               (local.get 1))
             (func (param i64 i64) (result i64)
               (i64.div_s (local.get 0) (call $sum (i32.wrap_i64 (local.get 1)))
                 (i64.extend_i32_s)))
             (func))"#,
    )
    .unwrap();
    let plain = compile_all(masm(), false, &wasm);
    let recorded = compile_all(masm(), true, &wasm);
    let expected = operator_offsets(&wasm);
    for ((p, r), ops) in plain.iter().zip(&recorded).zip(&expected) {
        assert!(p.op_offsets.is_empty(), "recorded only on request");
        assert_eq!(p.code, r.code, "recording changes no code");
        assert_eq!(p.traps, r.traps);
        assert_eq!(p.call_sites, r.call_sites);
        let wasm_offsets: Vec<u32> = r.op_offsets.iter().map(|o| o.1).collect();
        assert_eq!(
            &wasm_offsets, ops,
            "one entry per operator, then the end marker"
        );
        let code_offsets: Vec<u32> = r.op_offsets.iter().map(|o| o.0).collect();
        assert!(
            code_offsets.windows(2).all(|w| w[0] <= w[1]),
            "{code_offsets:?}"
        );
        assert!(code_offsets[0] > 0, "a prologue comes first");
        assert!(*code_offsets.last().unwrap() as usize <= r.code.len());
    }
}

#[test]
fn op_offsets_x64() {
    check(|| X64Masm::new(&Default::default()));
}

#[test]
fn op_offsets_aarch64() {
    check(|| Aarch64Masm::new(&Default::default()));
}
