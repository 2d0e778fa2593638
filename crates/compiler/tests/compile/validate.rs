//! `validate_function` against `compile_function`: same verdict on every body, errors that
//! say where, and the epoch/fuel checks compiled by both backends.

use super::parse::{parse, Parsed};
use wasmparser::{FuncToValidate, Operator, OperatorsReader, ValidatorResources, WasmFeatures};
use wjit_compiler::isa::{aarch64::Aarch64Masm, x64::X64Masm};
use wjit_compiler::masm::MacroAssembler;
use wjit_compiler::{
    compile_function, validate_function, CompileError, CompileErrorKind, ModuleInfo,
};

fn job(j: &FuncToValidate<ValidatorResources>) -> FuncToValidate<ValidatorResources> {
    FuncToValidate {
        resources: j.resources.clone(),
        index: j.index,
        ty: j.ty,
        features: j.features,
    }
}

/// The verdicts of `validate_function` and of `compile_function` on both backends.
struct Verdicts {
    validate: Result<(), CompileError>,
    x64: Result<(), CompileError>,
    aarch64: Result<(), CompileError>,
}

fn compile_with<M: MacroAssembler>(
    masm: M,
    p: &Parsed<'_>,
    i: usize,
    info: &ModuleInfo,
) -> Result<(), CompileError> {
    let (index, body, j) = &p.funcs[i];
    let mut v = job(j).into_validator(Default::default());
    compile_function(masm, info, *index, body, &mut v).map(|_| ())
}

fn verdicts(p: &Parsed<'_>, i: usize) -> Verdicts {
    let (index, body, j) = &p.funcs[i];
    let mut v = job(j).into_validator(Default::default());
    let validate = validate_function(&p.info, *index, body, &mut v);
    // Compile with the limit checks on, so the epoch slow path and fuel checks are emitted.
    let mut info = p.info.clone();
    info.epoch_interruption = true;
    info.consume_fuel = true;
    Verdicts {
        validate,
        x64: compile_with(X64Masm::new(&info.offsets), p, i, &info),
        aarch64: compile_with(Aarch64Masm::new(&info.offsets), p, i, &info),
    }
}

/// Checks that every defined function gets the same verdict from all three, and returns
/// the verdicts of `validate_function`.
#[track_caller]
fn agree(wat: &str, features: WasmFeatures) -> Vec<Result<(), CompileError>> {
    let binary = wat::parse_str(wat).unwrap();
    let p = parse(&binary, features);
    (0..p.funcs.len())
        .map(|i| {
            let v = verdicts(&p, i);
            assert_eq!(v.validate, v.x64, "validate vs x64 compile in {wat}");
            assert_eq!(
                v.validate, v.aarch64,
                "validate vs aarch64 compile in {wat}"
            );
            v.validate
        })
        .collect()
}

/// Byte offset of the first operator of defined function `i` matching `pred`.
fn offset_of(binary: &[u8], i: usize, pred: impl Fn(&Operator<'_>) -> bool) -> u64 {
    let p = parse(binary, WasmFeatures::all());
    let locals = p.funcs[i].1.get_locals_reader().unwrap();
    let mut reader = OperatorsReader::new(locals.get_binary_reader());
    loop {
        let (op, offset) = reader.read_with_offset().unwrap();
        if pred(&op) {
            return offset;
        }
    }
}

const SUPPORTED: &str = r#"(module
  (type $t (func (param i32) (result i32)))
  (import "env" "f" (func $imp (param i64) (result f64)))
  (import "env" "g" (global $g (mut i64)))
  (memory 1)
  (table $tab 4 funcref)
  (table $ext 2 externref)
  (global $h (mut f32) (f32.const 1))
  (data $d "hello")
  (elem $e func $id)
  (func $id (type $t) local.get 0)
  (func (param i32 i64 f32 f64) (result i64 i32)
    (local i32 i64 f32 f64 funcref externref)
    (block (result i32 i64)
      local.get 0
      local.get 1
      (loop $l (param i32 i64) (result i32 i64)
        local.get 0
        i32.const 1
        i32.sub
        local.tee 0
        br_if 1
        br $l))
    drop
    (i64.extend_i32_s (i32.extend8_s))
    (i32.trunc_sat_f64_s (local.get 3))
    (call_indirect (type $t) (i32.const 0))
    (select (result i32) (i32.const 1) (i32.const 2))
    i32.const 0
    br_table 0 0 0
  )
  (func (result i32)
    (memory.fill (i32.const 0) (i32.const 1) (i32.const 2))
    (memory.copy (i32.const 0) (i32.const 1) (i32.const 2))
    (memory.init $d (i32.const 0) (i32.const 0) (i32.const 1))
    data.drop $d
    (table.init $tab $e (i32.const 0) (i32.const 0) (i32.const 1))
    elem.drop $e
    (table.set $ext (i32.const 0) (ref.null extern))
    (drop (table.grow $tab (ref.func $id) (i32.const 1)))
    (drop (ref.is_null (table.get $tab (i32.const 0))))
    (i64.store offset=4294967295 (i32.const 0) (global.get $g))
    (global.set $h (f32.load (i32.const 8)))
    (drop (call $imp (i64.load8_s (i32.const 3))))
    (drop (memory.grow (i32.const 1)))
    memory.size)
)"#;

#[test]
fn supported_bodies_validate_and_compile() {
    for v in agree(SUPPORTED, WasmFeatures::WASM2) {
        v.unwrap();
    }
}

#[test]
fn invalid_body_is_reported_with_its_offset() {
    let wat = r#"(module (func) (func (result i32) i64.const 1 i32.const 2 i32.add))"#;
    let binary = wat::parse_str(wat).unwrap();
    let at = offset_of(&binary, 1, |op| matches!(op, Operator::I32Add));
    let v = agree(wat, WasmFeatures::WASM2);
    assert_eq!(v[0], Ok(()));
    match v[1].as_ref().map_err(CompileError::kind) {
        Err(CompileErrorKind::Invalid {
            func_index: 1,
            offset,
            message,
        }) => {
            assert_eq!(*offset as u64, at, "{message}");
            assert!(message.contains("type mismatch"), "{message}");
        }
        other => panic!("expected Invalid, got {other:?}"),
    }
}

#[track_caller]
fn unsupported(err: &Result<(), CompileError>) -> &str {
    match err.as_ref().map_err(CompileError::kind) {
        Err(CompileErrorKind::Unsupported(m)) => m,
        other => panic!("expected Unsupported, got {other:?}"),
    }
}

#[test]
fn unsupported_operator_is_reported_with_function_index_and_offset() {
    let wat = r#"(module
      (import "env" "f" (func))
      (func (result i32) i32.const 1)
      (func $g nop (drop (ref.i31 (i32.const 0)))))"#;
    let binary = wat::parse_str(wat).unwrap();
    let at = offset_of(&binary, 1, |op| matches!(op, Operator::RefI31));
    let v = agree(wat, WasmFeatures::WASM3);
    assert_eq!(v[0], Ok(()));
    assert_eq!(
        unsupported(&v[1]),
        format!("function 2 at byte offset {at:#x}: gc operator ref.i31")
    );
    assert_eq!(
        CompileError::from(CompileErrorKind::Unsupported(unsupported(&v[1]).into())).to_string(),
        format!("unsupported: function 2 at byte offset {at:#x}: gc operator ref.i31")
    );
}

#[test]
fn every_simd_operator_kind_compiles_on_both_backends() {
    // One operator of each lowering family, strict and relaxed; `agree` compiles each body
    // with both backends and checks that validation gives the same verdict.
    let bodies = [
        "(v128.const i64x2 1 2) (i32x4.extract_lane 0) drop",
        "(i8x16.popcnt (local.get 0)) drop",
        "(i8x16.shuffle 0 17 2 19 4 21 6 23 8 25 10 27 12 29 14 31 (local.get 0) (local.get 0)) drop",
        "(i64x2.shr_s (local.get 0) (i32.const 65)) drop",
        "(i8x16.shl (local.get 0) (local.get 1)) drop",
        "(i32x4.replace_lane 3 (local.get 0) (local.get 1)) drop",
        "(f64x2.splat (f64.const 1)) drop",
        "(i16x8.bitmask (local.get 0)) drop",
        "(i32x4.trunc_sat_f64x2_u_zero (local.get 0)) drop",
        "(i16x8.narrow_i32x4_u (local.get 0) (local.get 0)) drop",
        "(i64x2.extmul_high_i32x4_s (local.get 0) (local.get 0)) drop",
        "(drop (v128.load16_splat (i32.const 0)))",
        "(drop (v128.load32x2_u (i32.const 0)))",
        "(drop (v128.load64_zero (i32.const 0)))",
        "(f32x4.relaxed_madd (local.get 0) (local.get 0) (local.get 0)) drop",
        "(i32x4.relaxed_dot_i8x16_i7x16_add_s (local.get 0) (local.get 0) (local.get 0)) drop",
        "(i8x16.relaxed_swizzle (local.get 0) (local.get 0)) drop",
    ];
    for body in bodies {
        let wat = format!("(module (memory 1) (func (param v128 i32) {body}))");
        let v = agree(&wat, WasmFeatures::WASM2 | WasmFeatures::RELAXED_SIMD);
        assert_eq!(v, [Ok(())], "{wat}");
    }
}

#[test]
fn v128_values_compile_everywhere_they_can_appear() {
    let cases = [
        "(func (param v128))",
        "(func (local i32 v128))",
        "(func unreachable (block (result v128) unreachable) drop)",
        "(type $v (func (result v128))) (func (block (type $v) unreachable) drop)",
        "(func unreachable select (result v128) drop)",
        "(import \"e\" \"f\" (func $f (result v128))) (func call $f drop)",
        "(type $v (func (param v128))) (table 1 funcref) (func unreachable (call_indirect (type $v) (i32.const 0)))",
        "(global $g (mut v128) (v128.const i64x2 0 0)) (func global.get $g drop)",
        "(func unreachable i8x16.add drop)",
        "(memory 1) (func (drop (v128.load (i32.const 0))))",
    ];
    for funcs in cases {
        let wat = format!("(module {funcs})");
        let v = agree(&wat, WasmFeatures::WASM2);
        assert!(v.iter().all(|r| r.is_ok()), "{wat}: {v:?}");
    }
}

/// The typed function references operators compile on both backends.
#[test]
fn typed_function_references_compile() {
    let wat = r#"(module
      (type $t (func (param i32) (result i32)))
      (elem declare func $f)
      (table $tab 2 (ref $t) (ref.func $f))
      (func $f (type $t) (local.get 0))
      (func (param $r (ref null $t)) (result i32)
        (local $nn (ref $t))
        (local.set $nn (ref.as_non_null (local.get $r)))
        (block $null
          (drop (call_ref $t (i32.const 1) (br_on_null $null (local.get $r)))))
        (drop (block $some (result (ref $t))
          (br_on_non_null $some (local.get $r))
          (ref.func $f)))
        (call_ref $t (call_ref $t (i32.const 2) (local.get $nn)) (table.get $tab (i32.const 1)))))"#;
    let v = agree(
        wat,
        WasmFeatures::WASM2.union(WasmFeatures::FUNCTION_REFERENCES),
    );
    assert!(v.iter().all(|r| r.is_ok()), "{v:?}");
}

#[test]
fn tail_calls_compile_when_the_arguments_fit_the_incoming_area() {
    // The area holds max(8, parameter words, result words) of the caller; a v128 takes two.
    let fits = [
        "(func $g (param i64 i64 i64 i64 i64 i64 i64 i64)) (func (local i64)
           (return_call $g (local.get 0) (local.get 0) (local.get 0) (local.get 0) (local.get 0) (local.get 0) (local.get 0) (local.get 0)))",
        "(func $g (param v128 v128 v128 v128)) (func (local v128)
           (return_call $g (local.get 0) (local.get 0) (local.get 0) (local.get 0)))",
        "(type $t (func (param i32 i32 i32 i32 i32 i32 i32 i32 i32 i32) (result i32)))
         (func $g (type $t) i32.const 0)
         (func (param f64 f64 f64 f64 f64 f64 f64 f64 f64 f64) (result i32)
           (return_call $g (i32.const 1) (i32.const 2) (i32.const 3) (i32.const 4)
             (i32.const 5) (i32.const 6) (i32.const 7) (i32.const 8) (i32.const 9)
             (i32.const 10)))",
        "(type $t (func (param i64 i64 i64 i64 i64 i64 i64 i64 i64) (result i64 i64 i64 i64 i64 i64 i64 i64 i64)))
         (table 1 funcref)
         (func (result i64 i64 i64 i64 i64 i64 i64 i64 i64)
           (return_call_indirect (type $t) (i64.const 1) (i64.const 2) (i64.const 3)
             (i64.const 4) (i64.const 5) (i64.const 6) (i64.const 7) (i64.const 8)
             (i64.const 9) (i32.const 0)))",
        "(import \"e\" \"f\" (func $f (param i32) (result i32)))
         (func (param i32) (result i32) (return_call $f (local.get 0)))",
    ];
    for funcs in fits {
        let wat = format!("(module {funcs})");
        let v = agree(&wat, WasmFeatures::WASM3);
        assert!(v.iter().all(|r| r.is_ok()), "{wat}: {v:?}");
    }
    let too_big = [
        "(func $g (param i64 i64 i64 i64 i64 i64 i64 i64 i32)) (func unreachable return_call $g)",
        "(func $g (param v128 v128 v128 v128 i32)) (func (param i32) unreachable return_call $g)",
        "(type $t (func (param v128 v128 v128 v128 v128))) (table 1 funcref)
         (func (return_call_indirect (type $t) (unreachable)))",
    ];
    for funcs in too_big {
        let wat = format!("(module {funcs})");
        let v = agree(&wat, WasmFeatures::WASM3);
        let msg = unsupported(v.last().unwrap());
        assert!(
            msg.contains("more than the 8 of the caller's"),
            "{wat}: {msg}"
        );
    }
}

#[test]
fn features_beyond_the_compiler_are_unsupported() {
    let cases = [
        (
            "(func $g (param i64 i64 i64 i64 i64 i64 i64 i64 i64)) (func unreachable return_call $g)",
            "tail call whose arguments take 9 words, more than the 8 of",
        ),
        (
            "(memory 1 1 shared) (func (drop (i32.atomic.load (i32.const 0))))",
            "threads operator i32.atomic",
        ),
    ];
    for (funcs, expected) in cases {
        let wat = format!("(module {funcs})");
        let v = agree(&wat, WasmFeatures::WASM3);
        let msg = v
            .iter()
            .find(|r| r.is_err())
            .map(unsupported)
            .unwrap_or("accepted");
        assert!(msg.contains(expected), "{wat}: {msg}");
    }
}

/// Invalid bodies with SIMD operators (which compile with 16-byte slots from the start)
/// stay invalid on both backends: they are never compiled again without validation.
#[test]
fn invalid_simd_bodies_stay_invalid() {
    for body in [
        "(i8x16.splat (f32.const 0)) drop",
        "(v128.const i64x2 0 0) (i32.add (i32.const 1))",
        "(i32x4.extract_lane 4 (v128.const i64x2 0 0)) drop",
    ] {
        let wat = format!("(module (func {body}))");
        let v = agree(&wat, WasmFeatures::WASM2);
        assert!(
            matches!(
                v[0].as_ref().map_err(CompileError::kind),
                Err(CompileErrorKind::Invalid { .. })
            ),
            "{wat}: {v:?}"
        );
    }
}
