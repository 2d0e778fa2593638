//! Exception handling: `throw`, `throw_ref` and `try_table` with every kind of catch
//! clause, payloads of every value type, tags shared across instances and with the host,
//! host functions that throw and callers that catch, unwinding through many frames and
//! nested activations, and the state of the catching frame after a throw.

use wjit::{
    Config, Engine, Error, ExnRef, FuncType, Instance, Linker, Module, Store, Tag, TagType,
    TrapCode, Val, ValType, V128,
};

fn engines() -> Vec<(&'static str, Engine)> {
    vec![
        (
            "lazy",
            Engine::new(Config::new().wasm_exceptions(true)).unwrap(),
        ),
        (
            "eager",
            Engine::new(Config::new().wasm_exceptions(true).lazy_compilation(false)).unwrap(),
        ),
    ]
}

fn instance(engine: &Engine, wat: &str) -> (Store<()>, Instance) {
    let module = Module::new(engine, wat).unwrap();
    let mut store = Store::new(engine, ());
    let instance = Instance::new(&mut store, &module, &[]).unwrap();
    (store, instance)
}

#[test]
fn exceptions_are_off_by_default_and_named_in_the_error() {
    let err = Module::new(&Engine::default(), "(module (tag $e) (func (throw $e)))").unwrap_err();
    assert!(err.to_string().contains("exceptions"), "{err}");
}

/// Payloads of every type survive the throw, in order, through a `catch` in the thrower's
/// frame, in a caller's frame, and with `catch_ref` + `throw_ref` in between.
#[test]
fn payloads_of_every_type_reach_the_handler() {
    let wat = r#"(module
      (tag $t (param i32 i64 f32 f64 v128 externref))
      (func $throw (param i32 i64 f32 f64 v128 externref)
        (throw $t (local.get 0) (local.get 1) (local.get 2) (local.get 3) (local.get 4)
                  (local.get 5)))
      (func (export "local") (param i32 i64 f32 f64 v128 externref)
            (result i32 i64 f32 f64 v128 externref)
        (block $h (result i32 i64 f32 f64 v128 externref)
          (try_table (catch $t $h)
            (throw $t (local.get 0) (local.get 1) (local.get 2) (local.get 3)
                      (local.get 4) (local.get 5)))
          (unreachable)))
      (func (export "callee") (param i32 i64 f32 f64 v128 externref)
            (result i32 i64 f32 f64 v128 externref)
        (block $h (result i32 i64 f32 f64 v128 externref)
          (try_table (catch $t $h)
            (call $throw (local.get 0) (local.get 1) (local.get 2) (local.get 3)
                         (local.get 4) (local.get 5)))
          (unreachable)))
      (func (export "rethrown") (param i32 i64 f32 f64 v128 externref)
            (result i32 i64 f32 f64 v128 externref)
        (local $x exnref)
        (block $h (result i32 i64 f32 f64 v128 externref)
          (try_table (catch $t $h)
            ;; catch_ref: the payload and the exnref; keep the exnref, drop the rest
            (block $r (result i32 i64 f32 f64 v128 externref exnref)
              (try_table (catch_ref $t $r)
                (call $throw (local.get 0) (local.get 1) (local.get 2) (local.get 3)
                             (local.get 4) (local.get 5)))
              (unreachable))
            (local.set $x)
            (drop) (drop) (drop) (drop) (drop) (drop)
            ;; catch_all_ref of a throw_ref of it, then throw_ref again to the outer catch
            (block $r2 (result exnref)
              (try_table (catch_all_ref $r2)
                (throw_ref (local.get $x)))
              (unreachable))
            (throw_ref))
          (unreachable))))"#;
    for (mode, engine) in engines() {
        let (mut store, inst) = instance(&engine, wat);
        let host = wjit::ExternRef::new(7u32);
        let args = [
            Val::I32(-5),
            Val::I64(1 << 40),
            Val::F32(1.5f32.to_bits()),
            Val::F64((-2.25f64).to_bits()),
            Val::V128(V128::from(0x0102_0304_0506_0708_090a_0b0c_0d0e_0f10u128)),
            Val::ExternRef(Some(host.clone())),
        ];
        for name in ["local", "callee", "rethrown"] {
            let f = inst.get_func(&store, name).unwrap();
            let mut results = vec![Val::I32(0); 6];
            f.call(&mut store, &args, &mut results)
                .unwrap_or_else(|e| panic!("{mode} {name}: {e}"));
            assert_eq!(results[0].i32(), Some(-5), "{mode} {name}");
            assert_eq!(results[1].i64(), Some(1 << 40), "{mode} {name}");
            assert_eq!(results[2].f32(), Some(1.5), "{mode} {name}");
            assert_eq!(results[3].f64(), Some(-2.25), "{mode} {name}");
            assert_eq!(
                results[4].v128().map(u128::from),
                Some(0x0102_0304_0506_0708_090a_0b0c_0d0e_0f10),
                "{mode} {name}"
            );
            match &results[5] {
                Val::ExternRef(Some(r)) => assert_eq!(r.data().downcast_ref::<u32>(), Some(&7)),
                other => panic!("{mode} {name}: {other:?}"),
            }
        }
    }
}

/// The catching frame's locals (in registers, constants, at home) and the operand stack
/// below the `try_table` are intact after unwinding through many frames.
#[test]
fn the_catching_frame_keeps_its_locals_and_stack() {
    let wat = r#"(module
      (tag $t (param i64))
      (func $deep (param i32)
        (if (i32.eqz (local.get 0))
          (then (throw $t (i64.const 99))))
        (call $deep (i32.sub (local.get 0) (i32.const 1))))
      (func (export "run") (param $depth i32) (param $p i64) (result i64)
        (local $a i64) (local $b i64) (local $c f64)
        (local.set $a (i64.const 1000))
        (local.set $c (f64.const 0.5))
        (i64.const 7)                       ;; below the try_table
        (block $h (result i64)
          (i64.const 3)
          (try_table (param i64) (result i64) (catch $t $h)
            (local.set $b (i64.add (local.get $p)))  ;; b = 3 + p, from the parameter
            (local.set $a (i64.const 5))    ;; a constant local, changed inside
            (call $deep (local.get $depth))
            (i64.const 0)))
        ;; stack: 7, payload
        (i64.add)
        (i64.add (local.get $a))
        (i64.add (local.get $b))
        (i64.add (i64.trunc_f64_s (f64.mul (local.get $c) (f64.const 4))))))"#;
    for (mode, engine) in engines() {
        let (mut store, inst) = instance(&engine, wat);
        let run = inst
            .get_typed_func::<(i32, i64), i64>(&store, "run")
            .unwrap();
        for depth in [0, 1, 10, 5000] {
            // 7 + 99 + 5 + (3 + p) + 2
            let got = run.call(&mut store, (depth, 30)).unwrap();
            assert_eq!(got, 7 + 99 + 5 + 33 + 2, "{mode} depth {depth}");
        }
    }
}

/// A throw not caught by any clause goes on to the enclosing handlers and callers; the
/// clauses of one `try_table` are tried in order; an uncaught exception reaches the host.
#[test]
fn clauses_are_tried_in_order_and_outward() {
    let wat = r#"(module
      (tag $a) (tag $b (param i32)) (tag $c)
      (func $throw (param i32)
        (if (i32.eq (local.get 0) (i32.const 0)) (then (throw $a)))
        (if (i32.eq (local.get 0) (i32.const 1)) (then (throw $b (i32.const 11))))
        (if (i32.eq (local.get 0) (i32.const 2)) (then (throw $c))))
      (func $inner (param i32) (result i32)
        (block $hb (result i32)
          (try_table (catch $b $hb)
            (call $throw (local.get 0)))
          (i32.const 0)
          (return))
        (i32.add (i32.const 100)))
      (func (export "run") (param i32) (result i32)
        (block $ha
          (block $any
            (try_table (catch $a $ha) (catch_all $any)
              (return (call $inner (local.get 0)))))
          (return (i32.const 3)))
        (i32.const 1))
      (func (export "uncaught") (param i32) (result i32)
        (call $inner (local.get 0))))"#;
    for (mode, engine) in engines() {
        let (mut store, inst) = instance(&engine, wat);
        let run = inst.get_typed_func::<i32, i32>(&store, "run").unwrap();
        assert_eq!(run.call(&mut store, 0).unwrap(), 1, "{mode}");
        assert_eq!(run.call(&mut store, 1).unwrap(), 111, "{mode}");
        assert_eq!(run.call(&mut store, 2).unwrap(), 3, "{mode}");
        assert_eq!(run.call(&mut store, 3).unwrap(), 0, "{mode}");
        let uncaught = inst.get_typed_func::<i32, i32>(&store, "uncaught").unwrap();
        let err = uncaught.call(&mut store, 2).unwrap_err();
        let exn = err.exception().expect("an uncaught exception");
        assert!(exn.fields(&store).is_empty());
        assert_eq!(err.to_string(), "uncaught wasm exception");
        assert_eq!(uncaught.call(&mut store, 1).unwrap(), 111, "{mode}");
    }
}

/// A tag is shared by identity: an exception thrown in one instance with an exported tag
/// is caught in another that imports it, and not by a different tag of the same type.
#[test]
fn tags_are_shared_across_instances_by_identity() {
    let thrower = r#"(module
      (tag $e (export "e") (param i32))
      (tag $other (export "other") (param i32))
      (func (export "throw") (param i32) (throw $e (local.get 0)))
      (func (export "throw_other") (param i32) (throw $other (local.get 0))))"#;
    let catcher = r#"(module
      (import "m" "e" (tag $e (param i32)))
      (import "m" "throw" (func $throw (param i32)))
      (import "m" "throw_other" (func $throw_other (param i32)))
      (tag $mine (param i32))
      (func (export "catch") (param i32 i32) (result i32)
        (block $h (result i32)
          (try_table (catch $mine $h) (catch $e $h)
            (if (local.get 1)
              (then (call $throw_other (local.get 0)))
              (else (call $throw (local.get 0)))))
          (i32.const -1))))"#;
    for (mode, engine) in engines() {
        let mut store = Store::new(&engine, ());
        let mut linker = Linker::new(&engine);
        let m1 = Module::new(&engine, thrower).unwrap();
        let i1 = linker.instantiate(&mut store, &m1).unwrap();
        linker.instance(&mut store, "m", i1).unwrap();
        let m2 = Module::new(&engine, catcher).unwrap();
        let i2 = linker.instantiate(&mut store, &m2).unwrap();
        let f = i2
            .get_typed_func::<(i32, i32), i32>(&store, "catch")
            .unwrap();
        assert_eq!(f.call(&mut store, (42, 0)).unwrap(), 42, "{mode}");
        let err = f.call(&mut store, (43, 1)).unwrap_err();
        let exn = err.exception().expect("uncaught");
        let other = i1.get_tag(&store, "other").unwrap();
        assert_eq!(exn.tag(&store), other, "{mode}");
        assert_eq!(exn.fields(&store)[0].i32(), Some(43));
        assert_ne!(i1.get_tag(&store, "e").unwrap(), other);
    }
}

/// The host throws a wasm exception of a host-made tag from a host function; wasm catches
/// it with its payload. Wasm throws one through a host function that calls back into
/// wasm, and the outer wasm frame catches it after the host passed it on with `?`.
#[test]
fn host_functions_throw_and_pass_exceptions_on() {
    let wat = r#"(module
      (import "host" "tag" (tag $t (param i32 f64)))
      (import "host" "throw" (func $host_throw (param i32)))
      (import "host" "reenter" (func $reenter (param i32)))
      (func (export "catch_host") (param i32) (result i32 f64)
        (block $h (result i32 f64)
          (try_table (catch $t $h)
            (call $host_throw (local.get 0)))
          (i32.const -1) (f64.const 0)))
      (func (export "throw") (param i32)
        (throw $t (local.get 0) (f64.const 2.5)))
      (func (export "catch_through_host") (param i32) (result i32)
        (block $h (result i32 f64)
          (try_table (catch $t $h)
            (call $reenter (local.get 0)))
          (return (i32.const -1)))
        (drop)))"#;
    for (mode, engine) in engines() {
        let mut store = Store::new(&engine, ());
        let ty = TagType::new(FuncType::new([ValType::I32, ValType::F64], []));
        let tag = Tag::new(&mut store, &ty).unwrap();
        assert_eq!(tag.ty(&store), ty);
        let mut linker = Linker::new(&engine);
        linker.define(&store, "host", "tag", tag).unwrap();
        linker
            .func_wrap(
                "host",
                "throw",
                move |mut caller: wjit::Caller<'_, ()>, x: i32| -> Result<(), Error> {
                    if x < 0 {
                        return Err(Error::msg("negative"));
                    }
                    let exn =
                        ExnRef::new(&mut caller, &tag, &[Val::I32(x * 2), Val::from(0.25f64)])?;
                    Err(exn.into())
                },
            )
            .unwrap();
        linker
            .func_wrap(
                "host",
                "reenter",
                |mut caller: wjit::Caller<'_, ()>, x: i32| -> Result<(), Error> {
                    let f = caller.get_export("throw").unwrap().into_func().unwrap();
                    let err = f.call(&mut caller, &[Val::I32(x)], &mut []).unwrap_err();
                    let exn = err.exception().expect("an exception");
                    assert_eq!(exn.fields(&caller)[0].i32(), Some(x));
                    Err(err)
                },
            )
            .unwrap();
        let module = Module::new(&engine, wat).unwrap();
        let inst = linker.instantiate(&mut store, &module).unwrap();
        let f = inst
            .get_typed_func::<i32, (i32, f64)>(&store, "catch_host")
            .unwrap();
        assert_eq!(f.call(&mut store, 21).unwrap(), (42, 0.25), "{mode}");
        // An ordinary host error stays an error.
        let err = f.call(&mut store, -1).unwrap_err();
        assert!(err.exception().is_none() && err.to_string().contains("negative"));
        let g = inst
            .get_typed_func::<i32, i32>(&store, "catch_through_host")
            .unwrap();
        assert_eq!(g.call(&mut store, 9).unwrap(), 9, "{mode}");
        // The host catches what wasm throws: the exception's tag is the host's.
        let throw = inst.get_typed_func::<i32, ()>(&store, "throw").unwrap();
        let exn = throw.call(&mut store, 5).unwrap_err().exception().unwrap();
        assert_eq!(exn.tag(&store), tag);
        assert_eq!(exn.fields(&store)[1].f64(), Some(2.5));
        // A host-made exception is a value wasm can get and rethrow.
        assert!(ExnRef::new(&mut store, &tag, &[Val::I32(1)]).is_err());
    }
}

/// Exceptions thrown and caught in a loop, many times over, and `throw_ref` of null.
#[test]
fn repeated_throws_and_null_throw_ref() {
    let wat = r#"(module
      (tag $t (param i32))
      (func $f (param i32) (throw $t (local.get 0)))
      (func (export "count") (param $n i32) (result i32)
        (local $sum i32)
        (loop $l
          (block $h (result i32)
            (try_table (catch $t $h) (call $f (local.get $n)))
            (i32.const 0))
          (local.set $sum (i32.add (local.get $sum)))
          (br_if $l (local.tee $n (i32.sub (local.get $n) (i32.const 1)))))
        (local.get $sum))
      (func (export "null") (throw_ref (ref.null exn))))"#;
    for (mode, engine) in engines() {
        let (mut store, inst) = instance(&engine, wat);
        let count = inst.get_typed_func::<i32, i32>(&store, "count").unwrap();
        assert_eq!(
            count.call(&mut store, 100_000).unwrap(),
            705_082_704,
            "{mode}"
        );
        let null = inst.get_typed_func::<(), ()>(&store, "null").unwrap();
        let err = null.call(&mut store, ()).unwrap_err();
        assert_eq!(err.trap_code(), Some(TrapCode::NullReference), "{mode}");
    }
}

/// A `return_call` inside a `try_table` leaves the frame: its callee's exception is not
/// caught there.
#[test]
fn a_tail_call_leaves_the_try_table() {
    let wat = r#"(module
      (tag $t)
      (func $throw (throw $t))
      (func $tail (export "tail")
        (block $h (try_table (catch $t $h) (return_call $throw))))
      (func (export "outer") (result i32)
        (block $h (try_table (catch_all $h) (call $tail)) (return (i32.const 0)))
        (i32.const 1)))"#;
    for (mode, engine) in engines() {
        let (mut store, inst) = instance(&engine, wat);
        let tail = inst.get_typed_func::<(), ()>(&store, "tail").unwrap();
        assert!(
            tail.call(&mut store, ()).unwrap_err().exception().is_some(),
            "{mode}"
        );
        let outer = inst.get_typed_func::<(), i32>(&store, "outer").unwrap();
        assert_eq!(outer.call(&mut store, ()).unwrap(), 1, "{mode}");
    }
}

/// The backtrace of a trap names the calling operator of a frame that called through a
/// funcref (an import), not only of direct calls.
#[test]
fn backtraces_name_calls_through_funcrefs() {
    let wat = r#"(module
      (import "m" "trap" (func $trap))
      (func (export "run") (call $trap)))"#;
    let engine = Engine::default();
    let mut store = Store::new(&engine, ());
    let trapper = Module::new(&engine, r#"(module (func (export "trap") unreachable))"#).unwrap();
    let t = Instance::new(&mut store, &trapper, &[]).unwrap();
    let trap = t.get_func(&store, "trap").unwrap();
    let module = Module::new(&engine, wat).unwrap();
    let inst = Instance::new(&mut store, &module, &[trap.into()]).unwrap();
    let run = inst.get_typed_func::<(), ()>(&store, "run").unwrap();
    let err = run.call(&mut store, ()).unwrap_err();
    let frames = err.wasm_backtrace();
    assert_eq!(frames.len(), 2, "{frames:?}");
    assert!(frames[1].wasm_offset().is_some(), "{frames:?}");
}

/// The legacy instructions (`try`, `catch`, `catch_all`, `rethrow`, `delegate`), written
/// in the flat text syntax (the spec's `legacy/` scripts use the folded `(try (do ...))`
/// form, which the `wast` crate no longer parses).
#[test]
fn legacy_try_catch_rethrow_delegate() {
    let wat = r#"(module
      (tag $e (param i32))
      (tag $f)
      (func $thr (param i32)
        (if (i32.lt_s (local.get 0) (i32.const 0)) (then (throw $f)))
        (throw $e (local.get 0)))
      ;; catch with payload; catch_all for the other tag
      (func (export "catch") (param i32) (result i32)
        try (result i32)
          local.get 0
          call $thr
          i32.const 0
        catch $e
          i32.const 1
          i32.add
        catch_all
          i32.const -1
        end)
      ;; delegate to the outer try; delegate 1 from there to the caller
      (func (export "delegate") (param i32) (result i32)
        try (result i32)
          try (result i32)
            local.get 0
            call $thr
            i32.const 0
          delegate 0
        catch $e
          i32.const 100
          i32.add
        end)
      (func $to_caller (param i32) (result i32)
        block (result i32)
          try (result i32)
            try (result i32)
              local.get 0
              call $thr
              i32.const 0
            delegate 2
          catch_all
            i32.const -7
          end
        end)
      (func (export "delegate_caller") (param i32) (result i32)
        try (result i32)
          local.get 0
          call $to_caller
        catch $e
          i32.const 1000
          i32.add
        end)
      ;; rethrow of the innermost catch, and of an outer one from a nested catch
      (func (export "rethrow") (param i32) (result i32)
        try (result i32)
          try (result i32)
            local.get 0
            call $thr
            i32.const 0
          catch $e
            drop
            try (result i32)
              i32.const 5
              call $thr
              i32.const 0
            catch $e
              drop
              rethrow 1
            end
          end
        catch $e
          i32.const 10000
          i32.add
        end)
      ;; a throw in a catch body goes outward, not to its own try's clauses; the block's
      ;; parameters, the locals and the values below it survive
      (func (export "outward") (param i32) (result i32)
        (local $l i32)
        i32.const 3
        try (param i32) (result i32)
          local.set $l
          try (result i32)
            local.get 0
            call $thr
            i32.const 0
          catch $e
            call $thr
            i32.const 0
          catch_all
            i32.const -100
          end
        catch $e
          local.get $l
          i32.add
        end)
      )"#;
    for (mode, engine) in [
        (
            "lazy",
            Engine::new(
                Config::new()
                    .wasm_exceptions(true)
                    .wasm_legacy_exceptions(true),
            ),
        ),
        (
            "eager",
            Engine::new(
                Config::new()
                    .wasm_exceptions(true)
                    .wasm_legacy_exceptions(true)
                    .lazy_compilation(false),
            ),
        ),
    ] {
        let engine = engine.unwrap();
        let (mut store, inst) = instance(&engine, wat);
        let mut call = |name: &str, x: i32| {
            let f = inst.get_typed_func::<i32, i32>(&store, name).unwrap();
            f.call(&mut store, x)
        };
        assert_eq!(call("catch", 5).unwrap(), 6, "{mode}");
        assert_eq!(call("catch", -1).unwrap(), -1, "{mode}");
        assert_eq!(call("delegate", 5).unwrap(), 105, "{mode}");
        assert!(
            call("delegate", -1).unwrap_err().exception().is_some(),
            "{mode}"
        );
        assert_eq!(call("delegate_caller", 5).unwrap(), 1005, "{mode}");
        assert_eq!(call("rethrow", 7).unwrap(), 10007, "{mode}");
        assert_eq!(call("outward", 8).unwrap(), 11, "{mode}");
        assert_eq!(call("outward", -1).unwrap(), -100, "{mode}");
    }
    // Off by default, also with exceptions on.
    let engine = Engine::new(Config::new().wasm_exceptions(true)).unwrap();
    let err = Module::new(&engine, wat).unwrap_err();
    assert!(err.to_string().contains("legacy"), "{err}");
}

/// Traps are not exceptions: `catch_all` does not catch a trap or a stack overflow.
#[test]
fn traps_pass_through_catch_all() {
    let wat = r#"(module
      (func $rec (call $rec))
      (func (export "overflow") (result i32)
        (block $h (try_table (catch_all $h) (call $rec)) (return (i32.const 0)))
        (i32.const 1))
      (func (export "unreachable") (result i32)
        (block $h (try_table (catch_all $h) unreachable) (return (i32.const 0)))
        (i32.const 1)))"#;
    for (mode, engine) in engines() {
        let (mut store, inst) = instance(&engine, wat);
        for (name, code) in [
            ("overflow", TrapCode::StackOverflow),
            ("unreachable", TrapCode::Unreachable),
        ] {
            let f = inst.get_typed_func::<(), i32>(&store, name).unwrap();
            assert_eq!(
                f.call(&mut store, ()).unwrap_err().trap_code(),
                Some(code),
                "{mode}"
            );
        }
    }
}

/// Threads throwing and catching at once, each in its own store, keep to their own
/// exceptions (the unwinder's state is per thread).
#[test]
fn threads_throw_and_catch_independently() {
    let wat = r#"(module
      (tag $t (param i32))
      (func $f (param i32) (throw $t (local.get 0)))
      (func (export "count") (param $n i32) (result i32)
        (local $sum i32)
        (loop $l
          (block $h (result i32)
            (try_table (catch $t $h) (call $f (local.get $n)))
            (i32.const 0))
          (local.set $sum (i32.add (local.get $sum)))
          (br_if $l (local.tee $n (i32.sub (local.get $n) (i32.const 1)))))
        (local.get $sum)))"#;
    let engine = Engine::new(Config::new().wasm_exceptions(true)).unwrap();
    let module = Module::new(&engine, wat).unwrap();
    std::thread::scope(|s| {
        for t in 0..4 {
            let (engine, module) = (&engine, &module);
            s.spawn(move || {
                let mut store = Store::new(engine, ());
                let inst = Instance::new(&mut store, module, &[]).unwrap();
                let count = inst.get_typed_func::<i32, i32>(&store, "count").unwrap();
                let n = 20_000 + t;
                let want = (1..=n).sum::<i32>();
                assert_eq!(count.call(&mut store, n).unwrap(), want);
            });
        }
    });
}

/// A host function that throws, called straight from the host (no wasm frame in between),
/// returns the exception as the call's error.
#[test]
fn a_host_function_called_from_the_host_returns_its_exception() {
    let engine = Engine::new(Config::new().wasm_exceptions(true)).unwrap();
    let mut store = Store::new(&engine, ());
    let tag = Tag::new(&mut store, &TagType::new(FuncType::new([ValType::I64], []))).unwrap();
    let f = wjit::Func::wrap(
        &mut store,
        move |mut caller: wjit::Caller<'_, ()>| -> Result<(), Error> {
            Err(ExnRef::new(&mut caller, &tag, &[Val::I64(-9)])?.into())
        },
    );
    let err = f.call(&mut store, &[], &mut []).unwrap_err();
    let exn = err.exception().expect("the host's exception");
    assert_eq!(exn.tag(&store), tag);
    assert_eq!(exn.fields(&store)[0].i64(), Some(-9));
    // An exception of another store thrown into this one is a host error, not a throw.
    let mut other = Store::new(&engine, ());
    let other_tag = Tag::new(&mut other, &TagType::new(FuncType::new([], []))).unwrap();
    let foreign = ExnRef::new(&mut other, &other_tag, &[]).unwrap();
    let g = wjit::Func::wrap(&mut store, move || -> Result<(), Error> {
        Err(foreign.into())
    });
    let err = g.call(&mut store, &[], &mut []).unwrap_err();
    assert!(err.exception().is_none(), "{err}");
    assert!(err.to_string().contains("another store"), "{err}");
}
