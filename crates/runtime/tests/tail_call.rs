//! Tail calls run in constant stack space: recursion far deeper than the wasm stack could
//! hold as ordinary calls (1 MiB by default), through `return_call` to defined and imported
//! functions, `return_call_indirect`, across instances and into host functions, with the
//! callees compiled lazily (on their first tail call) and eagerly.

use wjit::{Config, Engine, Instance, Linker, Module, Store, Val};

/// Steps of the deepest recursion: at 16+ bytes of stack per ordinary call this would
/// need more than 1.6 GB of stack.
const DEPTH: i64 = 100_000_000;

/// Steps of the billion-step recursion (about 1.5 s natively on x86-64; a tenth of it under
/// qemu on an aarch64 build, where it would take minutes).
const BILLION: i64 = if cfg!(target_arch = "aarch64") {
    100_000_000
} else {
    1_000_000_000
};

/// Steps of the other recursions (160+ MB of stack as ordinary calls; 1 MiB allows
/// about 65000 frames).
const DEEP: i64 = 10_000_000;

fn engines() -> Vec<(&'static str, Engine)> {
    vec![
        ("lazy", Engine::default()),
        (
            "eager",
            Engine::new(Config::new().lazy_compilation(false)).unwrap(),
        ),
    ]
}

const EVEN_ODD: &str = r#"(module
  (type $pred (func (param i64) (result i32)))
  (table 2 funcref)
  (elem (i32.const 0) $even_i $odd_i)
  (func $even (export "even") (param i64) (result i32)
    (if (result i32) (i64.eqz (local.get 0))
      (then (i32.const 1))
      (else (return_call $odd (i64.sub (local.get 0) (i64.const 1))))))
  (func $odd (export "odd") (param i64) (result i32)
    (if (result i32) (i64.eqz (local.get 0))
      (then (i32.const 0))
      (else (return_call $even (i64.sub (local.get 0) (i64.const 1))))))
  (func $even_i (export "even_indirect") (param i64) (result i32)
    (if (result i32) (i64.eqz (local.get 0))
      (then (i32.const 1))
      (else (return_call_indirect (type $pred)
        (i64.sub (local.get 0) (i64.const 1)) (i32.const 1)))))
  (func $odd_i (param i64) (result i32)
    (if (result i32) (i64.eqz (local.get 0))
      (then (i32.const 0))
      (else (return_call_indirect (type $pred)
        (i64.sub (local.get 0) (i64.const 1)) (i32.const 0)))))
  ;; From wasm (an ordinary call site) rather than from the host.
  (func (export "even_from_wasm") (param i64) (result i32)
    (call $even (local.get 0)))
)"#;

/// A billion `return_call`s in constant stack (the issue's test; lazy compilation).
#[test]
fn a_billion_tail_calls() {
    let engine = Engine::default();
    let module = Module::new(&engine, EVEN_ODD).unwrap();
    let mut store = Store::new(&engine, ());
    let inst = Instance::new(&mut store, &module, &[]).unwrap();
    let even = inst.get_typed_func::<i64, i32>(&store, "even").unwrap();
    assert_eq!(even.call(&mut store, BILLION).unwrap(), 1);
    assert_eq!(even.call(&mut store, BILLION + 1).unwrap(), 0);
}

#[test]
fn mutual_recursion_through_return_call_and_return_call_indirect() {
    for (mode, engine) in engines() {
        let module = Module::new(&engine, EVEN_ODD).unwrap();
        let mut store = Store::new(&engine, ());
        let inst = Instance::new(&mut store, &module, &[]).unwrap();
        for (name, n, expected) in [
            ("even", DEPTH, 1),
            ("even", DEEP + 1, 0),
            ("odd", DEEP + 1, 1),
            ("even_indirect", DEEP, 1),
            ("even_indirect", DEEP + 3, 0),
            ("even_from_wasm", DEEP + 1, 0),
        ] {
            let f = inst.get_typed_func::<i64, i32>(&store, name).unwrap();
            assert_eq!(
                f.call(&mut store, n).unwrap(),
                expected,
                "{mode} {name}({n})"
            );
        }
    }
}

#[test]
fn tail_calls_across_instances_and_into_the_host() {
    for (mode, engine) in engines() {
        let mut store = Store::new(&engine, ());
        let mut linker = Linker::new(&engine);
        linker
            .func_wrap("host", "triple", |x: i64| -> i64 { x * 3 })
            .unwrap();
        // Instance A: even, with its own memory (byte 0 = 10).
        let a = Module::new(
            &engine,
            r#"(module
              (import "b" "odd" (func $odd (param i64) (result i64)))
              (import "host" "triple" (func $triple (param i64) (result i64)))
              (memory 1) (data (i32.const 0) "\0a")
              (table (export "t") 1 funcref) (elem (i32.const 0) $even)
              (func $even (export "even") (param i64) (result i64)
                (if (result i64) (i64.eqz (local.get 0))
                  (then (i64.load8_u (i32.const 0)))
                  (else (return_call $odd (i64.sub (local.get 0) (i64.const 1))))))
              (func $to_host (param i64) (result i64) (return_call $triple (local.get 0)))
              ;; Direct calls whose callee tail-calls another instance or the host, then a
              ;; read of this instance's memory: the registers were restored.
              (func (export "even_plus_mine") (param i64) (result i64)
                (i64.add (call $even (local.get 0)) (i64.load8_u (i32.const 0))))
              (func (export "host_loop") (param i64) (result i64) (local $acc i64)
                (loop $l
                  (local.set $acc (i64.add (local.get $acc)
                    (i64.add (call $to_host (local.get 0)) (i64.load8_u (i32.const 0)))))
                  (br_if $l (i64.ne (local.tee 0 (i64.sub (local.get 0) (i64.const 1)))
                                    (i64.const 0))))
                (local.get $acc))
            )"#,
        )
        .unwrap();
        // Instance B: odd (byte 0 of its memory = 20), reaching A's even through an import
        // and through A's table, and tail-calling the host at the end.
        let b = Module::new(
            &engine,
            r#"(module
              (import "a" "even" (func $even (param i64) (result i64)))
              (import "a" "t" (table 1 funcref))
              (import "host" "triple" (func $triple (param i64) (result i64)))
              (type $f (func (param i64) (result i64)))
              (memory 1) (data (i32.const 0) "\14")
              (func (export "odd") (param i64) (result i64)
                (if (result i64) (i64.eqz (local.get 0))
                  (then (return_call $triple (i64.load8_u (i32.const 0))))
                  (else
                    (if (i64.eqz (i64.and (local.get 0) (i64.const 2)))
                      (then (return_call $even (i64.sub (local.get 0) (i64.const 1)))))
                    (return_call_indirect (type $f)
                      (i64.sub (local.get 0) (i64.const 1)) (i32.const 0)))))
            )"#,
        )
        .unwrap();
        // A imports B's odd and B imports A's even: A gets "b" "odd" from C, which forwards
        // (with a tail call) through a table filled once B exists.
        let c = Module::new(
            &engine,
            r#"(module
              (type $f (func (param i64) (result i64)))
              (table (export "fwd") 1 funcref)
              (func (export "odd") (param i64) (result i64)
                (return_call_indirect (type $f) (local.get 0) (i32.const 0))))"#,
        )
        .unwrap();
        let c = linker.instantiate(&mut store, &c).unwrap();
        linker.instance(&store, "b", c).unwrap();
        let a = linker.instantiate(&mut store, &a).unwrap();
        linker.instance(&store, "a", a).unwrap();
        let b = linker.instantiate(&mut store, &b).unwrap();
        let odd = b.get_func(&store, "odd").unwrap();
        let fwd = c.get_table(&store, "fwd").unwrap();
        fwd.set(&mut store, 0, Val::FuncRef(Some(odd))).unwrap();

        // even(n): n even ends in A (its byte 10), n odd ends in B, which tail-calls the
        // host with its byte 20 (60).
        let even = a.get_typed_func::<i64, i64>(&store, "even").unwrap();
        assert_eq!(even.call(&mut store, DEEP).unwrap(), 10, "{mode}");
        assert_eq!(even.call(&mut store, DEEP + 1).unwrap(), 60, "{mode}");
        let plus = a
            .get_typed_func::<i64, i64>(&store, "even_plus_mine")
            .unwrap();
        assert_eq!(plus.call(&mut store, DEEP + 1).unwrap(), 70, "{mode}");
        assert_eq!(plus.call(&mut store, 6).unwrap(), 20, "{mode}");
        // 1..=n tripled, plus 10 per iteration.
        let host_loop = a.get_typed_func::<i64, i64>(&store, "host_loop").unwrap();
        let n = 100_000i64;
        let expected = 3 * n * (n + 1) / 2 + 10 * n;
        assert_eq!(host_loop.call(&mut store, n).unwrap(), expected, "{mode}");
    }
}

#[test]
fn tail_calls_with_more_arguments_than_parameters() {
    // One parameter, tail-calling a function of eight parameter words (the minimum area)
    // and several results, back and forth, also with v128 and float arguments.
    let wat = r#"(module
      (func $one (export "one") (param i64) (result i64 i64)
        (if (result i64 i64) (i64.eqz (local.get 0))
          (then (i64.const 7) (i64.const 8))
          (else (return_call $eight (i64.sub (local.get 0) (i64.const 1))
            (i64.const 1) (i64.const 2) (f64.const 3) (v128.const i64x2 4 5)
            (i32.const 6) (i64.const 7)))))
      (func $eight (param i64 i64 i64 f64 v128 i32 i64) (result i64 i64)
        (if (i64.ne
              (i64.add (i64.add (i64.add (local.get 1) (local.get 2))
                                (i64.trunc_f64_s (local.get 3)))
                (i64.add (i64.add (i64x2.extract_lane 0 (local.get 4))
                                  (i64x2.extract_lane 1 (local.get 4)))
                         (i64.add (i64.extend_i32_u (local.get 5)) (local.get 6))))
              (i64.const 28))
          (then unreachable))
        (return_call $one (local.get 0)))
      (func (export "from_wasm") (param i64) (result i64)
        (call $one (local.get 0)) i64.add)
    )"#;
    for (mode, engine) in engines() {
        let module = Module::new(&engine, wat).unwrap();
        let mut store = Store::new(&engine, ());
        let inst = Instance::new(&mut store, &module, &[]).unwrap();
        let one = inst
            .get_typed_func::<i64, (i64, i64)>(&store, "one")
            .unwrap();
        assert_eq!(one.call(&mut store, DEEP).unwrap(), (7, 8), "{mode}");
        let from_wasm = inst
            .get_typed_func::<i64, i64>(&store, "from_wasm")
            .unwrap();
        assert_eq!(from_wasm.call(&mut store, DEEP + 1).unwrap(), 15, "{mode}");
    }
}

#[test]
fn tail_calls_can_be_disabled_and_too_big_ones_are_unsupported() {
    let wat = "(module (func $f (param i32) (result i32) (return_call $f (local.get 0))))";
    let engine = Engine::new(Config::new().wasm_tail_call(false)).unwrap();
    let err = Module::new(&engine, wat).unwrap_err().to_string();
    assert!(err.contains("tail call"), "{err}");
    let engine = Engine::default();
    let big = "(module
      (func $g (param i64 i64 i64 i64 i64 i64 i64 i64 i64))
      (func (export \"f\") (param i64)
        (return_call $g (local.get 0) (local.get 0) (local.get 0) (local.get 0)
          (local.get 0) (local.get 0) (local.get 0) (local.get 0) (local.get 0))))";
    let err = Module::new(&engine, big).unwrap_err().to_string();
    assert!(
        err.contains("tail call whose arguments take 9 words, more than the 8"),
        "{err}"
    );
}

#[test]
fn tail_call_arguments_may_permute_the_parameters() {
    // The arguments are read from the parameters they replace (swapped, and a dirty local
    // in a register), directly and through a table, with eight words of float and integer
    // arguments.
    let wat = r#"(module
      (type $t (func (param i64 i64 i64 f64 i32 i32 i64 f32) (result i64)))
      (table 1 funcref) (elem (i32.const 0) $direct)
      (func $direct (export "direct") (type $t)
        (if (result i64) (i64.eqz (local.get 2))
          (then (call $sum (local.get 0) (local.get 1) (local.get 3) (local.get 4)
                           (local.get 5) (local.get 6) (local.get 7)))
          (else
            (local.set 0 (i64.add (local.get 0) (i64.const 1)))
            (return_call $indirect (local.get 1) (local.get 0)
              (i64.sub (local.get 2) (i64.const 1)) (f64.neg (local.get 3))
              (local.get 5) (local.get 4) (i64.mul (local.get 6) (i64.const -1))
              (f32.neg (local.get 7))))))
      (func $indirect (type $t)
        (return_call_indirect (type $t) (local.get 1) (local.get 0) (local.get 2)
          (local.get 3) (local.get 5) (local.get 4) (local.get 6) (local.get 7)
          (i32.const 0)))
      (func $sum (param i64 i64 f64 i32 i32 i64 f32) (result i64)
        (i64.add (i64.add (i64.mul (local.get 0) (i64.const 1000000)) (local.get 1))
          (i64.add (i64.add (i64.trunc_f64_s (local.get 2)) (i64.extend_i32_s (local.get 3)))
            (i64.add (i64.mul (i64.extend_i32_s (local.get 4)) (i64.const 10))
              (i64.add (local.get 5) (i64.trunc_f32_s (local.get 6)))))))
    )"#;
    let engine = Engine::default();
    let module = Module::new(&engine, wat).unwrap();
    let mut store = Store::new(&engine, ());
    let inst = Instance::new(&mut store, &module, &[]).unwrap();
    let f = inst
        .get_typed_func::<(i64, i64, i64, f64, i32, i32, i64, f32), i64>(&store, "direct")
        .unwrap();
    // A model of the same steps.
    let model = |mut a: i64,
                 mut b: i64,
                 mut n: i64,
                 mut x: f64,
                 mut i: i32,
                 mut j: i32,
                 mut k: i64,
                 mut y: f32| {
        while n != 0 {
            a += 1;
            (a, b, n, x, i, j, k, y) = (b, a, n - 1, -x, j, i, -k, -y);
            (a, b, i, j) = (b, a, j, i);
        }
        a * 1_000_000 + b + x as i64 + i as i64 + j as i64 * 10 + k + y as i64
    };
    for n in [0, 1, 2, 3, 10, 1001, DEEP] {
        let args = (5, 7, n, 1.5, 3, 4, 11, 2.5);
        let want = model(
            args.0, args.1, args.2, args.3, args.4, args.5, args.6, args.7,
        );
        assert_eq!(f.call(&mut store, args).unwrap(), want, "n = {n}");
    }
}
