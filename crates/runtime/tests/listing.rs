//! `CodeListing`: every defined function compiled for either target, with the code range
//! of each wasm operator.

use wjit::{CodeListing, Config, Engine, Error, Target};

const MODULE: &str = r#"(module
  (import "env" "log" (func $log (param i32)))
  (func $fib (export "fib") (param $n i32) (result i32)
    (if (result i32) (i32.lt_u (local.get $n) (i32.const 2))
      (then (local.get $n))
      (else (i32.add (call $fib (i32.sub (local.get $n) (i32.const 1)))
                     (call $fib (i32.sub (local.get $n) (i32.const 2)))))))
  (func $div (param i32 i32) (result i32)
    (call $log (local.get 0))
    (i32.div_s (local.get 0) (local.get 1)))
  (func $vec (result v128) (v128.const i64x2 1 2))
  ;; No SIMD operator, but a v128 value: compiled twice (the second time with 16-byte
  ;; slots); the offsets are those of the compilation kept.
  (func $wide (param i32) (result i32)
    (drop (call $vec))
    (i32.add (local.get 0) (i32.const 1))))"#;

fn listing(target: Target) -> CodeListing {
    let engine = Engine::new(&Config::new()).unwrap();
    CodeListing::compile(&engine, MODULE, target).unwrap()
}

/// The operators of each body, as wasmparser reads them: (offset, operator text).
fn operators(wasm: &[u8], body: std::ops::Range<usize>) -> Vec<(usize, String)> {
    let reader = wasmparser::BinaryReader::new(&wasm[body.clone()], body.start as u64);
    let body = wasmparser::FunctionBody::new(reader);
    let mut ops = body.get_operators_reader().unwrap();
    let mut out = Vec::new();
    while !ops.eof() {
        let at = ops.original_position() as usize;
        out.push((at, format!("{:?}", ops.read().unwrap())));
    }
    out
}

#[test]
fn operator_ranges_cover_the_code_in_order_on_both_targets() {
    for target in [Target::X86_64, Target::Aarch64] {
        let l = listing(target);
        assert_eq!(l.target(), target);
        assert_eq!(l.num_imported_functions(), 1);
        assert_eq!(l.functions().len(), 4);
        let fib = l.function(1).unwrap();
        assert_eq!(fib.index(), 1);
        assert_eq!(fib.name(), Some("fib"));
        assert_eq!(l.function(2).unwrap().name(), Some("div"));
        assert!(l.function(0).is_none(), "imports have no code");
        // fib calls itself twice; `div`'s call to an import goes through the vmctx.
        let calls = fib.direct_calls();
        assert_eq!(calls.iter().map(|c| c.1).collect::<Vec<_>>(), [1, 1]);
        assert!(calls.iter().all(|c| c.0 + 4 <= fib.code().len()));
        assert!(l.function(2).unwrap().direct_calls().is_empty());
        assert_eq!(l.function(4).unwrap().name(), Some("wide"));
        assert!(l.function(5).is_none());
        assert_eq!(
            l.code_size(),
            l.functions().iter().map(|f| f.code().len()).sum::<usize>()
        );
        for f in l.functions() {
            let ops = operators(l.wasm(), f.body_range());
            // One entry per operator, at the operator's offset.
            let offsets: Vec<usize> = f.operators().iter().map(|o| o.wasm_offset).collect();
            let expected: Vec<usize> = ops.iter().map(|(at, _)| *at).collect();
            assert_eq!(offsets, expected, "{target} function {}", f.index());
            // Prologue, operators and out-of-line code tile the code exactly.
            assert!(!f.prologue().is_empty(), "{target}: a prologue");
            let mut at = f.prologue().end;
            for o in f.operators() {
                assert_eq!(o.code.start, at, "{target}: contiguous");
                assert!(o.code.end >= o.code.start);
                at = o.code.end;
            }
            assert_eq!(f.out_of_line().start, at);
            assert_eq!(f.out_of_line().end, f.code().len());
            if target == Target::Aarch64 {
                assert_eq!(f.code().len() % 4, 0);
            }
        }
        // The division has code of its own; `local.get` alone has none.
        let div = l.function(2).unwrap();
        let ops = operators(l.wasm(), div.body_range());
        let code_of = |name: &str| {
            let i = ops.iter().position(|(_, op)| op.starts_with(name)).unwrap();
            div.operators()[i].code.clone()
        };
        assert!(!code_of("I32DivS").is_empty(), "{target}");
        assert!(!code_of("Call").is_empty(), "{target}");
        // Division by zero and overflow trap through out-of-line stubs.
        assert!(!div.out_of_line().is_empty(), "{target}");
    }
}

#[test]
fn the_two_targets_give_different_code() {
    let x64 = listing(Target::X86_64);
    let a64 = listing(Target::Aarch64);
    assert_ne!(
        x64.function(1).unwrap().code(),
        a64.function(1).unwrap().code()
    );
    assert_eq!(x64.wasm(), a64.wasm());
    assert_eq!(x64.wasm_code_size(), a64.wasm_code_size());
}

#[test]
fn invalid_modules_fail_with_function_and_offset() {
    let engine = Engine::new(&Config::new()).unwrap();
    let bad = r#"(module (func (result i32) (i64.const 1)))"#;
    for target in [Target::X86_64, Target::Aarch64] {
        let err = CodeListing::compile(&engine, bad, target).unwrap_err();
        assert!(matches!(err, Error::Compile(_)), "{err}");
        let text = err.to_string();
        assert!(
            text.contains("function 0") && text.contains("offset 0x"),
            "{text}"
        );
        let err = CodeListing::compile(&engine, b"\0asm\x01\0\0\0\x01", target).unwrap_err();
        assert!(matches!(err, Error::Compile(_)), "{err}");
        assert!(CodeListing::compile(&engine, "(module (func", target).is_err());
    }
}

#[test]
fn proposals_follow_the_engine_config() {
    let simd = r#"(module (func (result v128) (v128.const i64x2 1 2)))"#;
    let mut config = Config::new();
    config.wasm_simd(false).wasm_relaxed_simd(false);
    let off = Engine::new(&config).unwrap();
    assert!(CodeListing::compile(&off, simd, Target::host()).is_err());
    let on = Engine::new(&Config::new()).unwrap();
    let l = CodeListing::compile(&on, simd, Target::Aarch64).unwrap();
    assert_eq!(l.functions().len(), 1);
}

#[test]
fn target_names() {
    for (text, target) in [
        ("x86_64", Target::X86_64),
        ("x64", Target::X86_64),
        ("X86-64", Target::X86_64),
        ("amd64", Target::X86_64),
        ("aarch64", Target::Aarch64),
        ("arm64", Target::Aarch64),
    ] {
        assert_eq!(text.parse::<Target>().unwrap(), target);
    }
    assert_eq!(Target::X86_64.to_string(), "x86_64");
    assert_eq!(
        Target::Aarch64.name().parse::<Target>().unwrap(),
        Target::Aarch64
    );
    let err = "riscv64".parse::<Target>().unwrap_err().to_string();
    assert!(err.contains("riscv64") && err.contains("aarch64"), "{err}");
    let host = Target::host();
    assert_eq!(host == Target::Aarch64, cfg!(target_arch = "aarch64"));
}
