//! Typed function references through the public API: typed reference parameters and
//! results, `call_ref`, null checks, `br_on_null`/`br_on_non_null`, tables with an
//! initializer expression, and import matching with reference subtyping.

use wjit::{
    Config, Engine, Error, Extern, Func, HeapType, Instance, Linker, Module, RefType, Store,
    TrapCode, Val, ValType,
};

fn engine() -> Engine {
    Engine::new(Config::new().wasm_function_references(true)).unwrap()
}

/// Both compilation modes (lazy compiles on the first call, eager in `Module::new`).
fn engines() -> [Engine; 2] {
    [
        engine(),
        Engine::new(
            Config::new()
                .wasm_function_references(true)
                .lazy_compilation(false),
        )
        .unwrap(),
    ]
}

const MODULE: &str = r#"(module
  (type $unop (func (param i32) (result i32)))
  (type $binop (func (param i32 i32) (result i32)))
  (func $double (export "double") (type $unop) (i32.mul (local.get 0) (i32.const 2)))
  (func $square (export "square") (type $unop) (i32.mul (local.get 0) (local.get 0)))
  (func $add (export "add") (type $binop) (i32.add (local.get 0) (local.get 1)))
  (elem declare func $double $square)
  ;; A table whose every element starts as $double.
  (table $t (export "table") 4 (ref $unop) (ref.func $double))
  (global $g (export "g") (ref $unop) (ref.func $square))

  (func (export "apply") (param $f (ref $unop)) (param $x i32) (result i32)
    (call_ref $unop (local.get $x) (local.get $f)))
  (func (export "apply_nullable") (param $f (ref null $unop)) (param $x i32) (result i32)
    (call_ref $unop (local.get $x) (local.get $f)))
  (func (export "pick") (param $which i32) (result (ref $unop))
    (if (result (ref $unop)) (local.get $which)
      (then (ref.func $square))
      (else (ref.func $double))))
  (func (export "from_table") (param $i i32) (param $x i32) (result i32)
    (call_ref $unop (local.get $x) (table.get $t (local.get $i))))
  (func (export "indirect") (param $i i32) (param $x i32) (result i32)
    (call_indirect $t (type $unop) (local.get $x) (local.get $i)))
  (func (export "set") (param $i i32) (param $f (ref $unop))
    (table.set $t (local.get $i) (local.get $f)))
  (func (export "as_non_null") (param $f (ref null $unop)) (result (ref $unop))
    (ref.as_non_null (local.get $f)))
  ;; -1 for null, else f(x).
  (func (export "on_null") (param $f (ref null $unop)) (param $x i32) (result i32)
    (block $null
      (return (call_ref $unop (local.get $x) (br_on_null $null (local.get $f)))))
    (i32.const -1))
  ;; f(x) for non-null, else -2.
  (func (export "on_non_null") (param $f (ref null $unop)) (param $x i32) (result i32)
    (block $some (result (ref $unop))
      (br_on_non_null $some (local.get $f))
      (return (i32.const -2)))
    (local.set $f)
    (call_ref $unop (local.get $x) (local.get $f)))
  ;; A non-nullable local, set before use.
  (func (export "twice") (param $x i32) (result i32)
    (local $f (ref $unop))
    (local.set $f (global.get $g))
    (call_ref $unop (call_ref $unop (local.get $x) (local.get $f)) (local.get $f))))"#;

fn call(
    store: &mut Store<()>,
    inst: Instance,
    name: &str,
    args: &[Val],
) -> Result<Vec<Val>, Error> {
    let f = inst.get_func(&*store, name).unwrap();
    let mut results = vec![Val::I32(0); f.ty(&*store).results().len()];
    f.call(&mut *store, args, &mut results)?;
    Ok(results)
}

fn call_i32(store: &mut Store<()>, inst: Instance, name: &str, args: &[Val]) -> i32 {
    call(store, inst, name, args).unwrap()[0].i32().unwrap()
}

fn func(store: &Store<()>, inst: Instance, name: &str) -> Val {
    Val::FuncRef(Some(inst.get_func(store, name).unwrap()))
}

#[test]
fn off_by_default() {
    let err = Module::new(&Engine::default(), MODULE).unwrap_err();
    assert!(err.to_string().contains("function references"), "{err}");
}

#[test]
fn typed_reference_parameters_results_and_call_ref() {
    for engine in engines() {
        let module = Module::new(&engine, MODULE).unwrap();
        let mut store = Store::new(&engine, ());
        let inst = Instance::new(&mut store, &module, &[]).unwrap();
        let double = func(&store, inst, "double");
        let square = func(&store, inst, "square");

        // The types embedders see.
        let apply_ty = inst.get_func(&store, "apply").unwrap().ty(&store);
        let unop = match apply_ty.params()[0] {
            ValType::Ref(RefType {
                nullable: false,
                heap: HeapType::Concrete(id),
            }) => id,
            other => panic!("apply's first parameter is {other}"),
        };
        let nullable_ty = inst.get_func(&store, "apply_nullable").unwrap().ty(&store);
        assert_eq!(
            nullable_ty.params()[0],
            ValType::Ref(RefType {
                nullable: true,
                heap: HeapType::Concrete(unop)
            })
        );
        assert!(apply_ty.params()[0].matches(&nullable_ty.params()[0]));
        assert!(apply_ty.params()[0].matches(&ValType::FuncRef));
        assert!(!ValType::FuncRef.matches(&apply_ty.params()[0]));

        assert_eq!(
            call_i32(&mut store, inst, "apply", &[double.clone(), Val::I32(21)]),
            42
        );
        assert_eq!(
            call_i32(&mut store, inst, "apply", &[square.clone(), Val::I32(9)]),
            81
        );
        assert_eq!(
            call_i32(
                &mut store,
                inst,
                "apply_nullable",
                &[square.clone(), Val::I32(5)]
            ),
            25
        );

        // A function of another type, or null, is not a `(ref $unop)`.
        let add = func(&store, inst, "add");
        assert!(call(&mut store, inst, "apply", &[add, Val::I32(1)]).is_err());
        assert!(call(
            &mut store,
            inst,
            "apply",
            &[Val::FuncRef(None), Val::I32(1)]
        )
        .is_err());

        // A typed result is a funcref that can be called.
        for (which, x, expected) in [(0, 7, 14), (1, 7, 49)] {
            let r = call(&mut store, inst, "pick", &[Val::I32(which)]).unwrap();
            let Val::FuncRef(Some(f)) = &r[0] else {
                panic!("pick returned {:?}", r[0]);
            };
            let mut out = [Val::I32(0)];
            f.call(&mut store, &[Val::I32(x)], &mut out).unwrap();
            assert_eq!(out[0].i32(), Some(expected));
            assert_eq!(
                call_i32(&mut store, inst, "apply", &[r[0].clone(), Val::I32(x)]),
                expected
            );
        }

        // A non-nullable local initialised from a typed global.
        assert_eq!(call_i32(&mut store, inst, "twice", &[Val::I32(3)]), 81);
        let g = inst.get_global(&store, "g").unwrap();
        assert_eq!(
            g.ty(&store).content,
            ValType::Ref(RefType {
                nullable: false,
                heap: HeapType::Concrete(unop)
            })
        );
        assert!(matches!(g.get(&mut store), Val::FuncRef(Some(_))));
    }
}

#[test]
fn null_references_trap_or_branch() {
    for engine in engines() {
        let module = Module::new(&engine, MODULE).unwrap();
        let mut store = Store::new(&engine, ());
        let inst = Instance::new(&mut store, &module, &[]).unwrap();
        let double = func(&store, inst, "double");
        let null = Val::FuncRef(None);

        let err = call(
            &mut store,
            inst,
            "apply_nullable",
            &[null.clone(), Val::I32(1)],
        )
        .unwrap_err();
        assert_eq!(err.trap_code(), Some(TrapCode::NullReference), "{err}");
        let err = call(&mut store, inst, "as_non_null", std::slice::from_ref(&null)).unwrap_err();
        assert_eq!(err.trap_code(), Some(TrapCode::NullReference), "{err}");
        let r = call(
            &mut store,
            inst,
            "as_non_null",
            std::slice::from_ref(&double),
        )
        .unwrap();
        assert!(matches!(r[0], Val::FuncRef(Some(_))));

        assert_eq!(
            call_i32(&mut store, inst, "on_null", &[null.clone(), Val::I32(5)]),
            -1
        );
        assert_eq!(
            call_i32(&mut store, inst, "on_null", &[double.clone(), Val::I32(5)]),
            10
        );
        assert_eq!(
            call_i32(&mut store, inst, "on_non_null", &[null, Val::I32(5)]),
            -2
        );
        assert_eq!(
            call_i32(&mut store, inst, "on_non_null", &[double, Val::I32(5)]),
            10
        );
    }
}

#[test]
fn table_with_an_initializer() {
    for engine in engines() {
        let module = Module::new(&engine, MODULE).unwrap();
        let mut store = Store::new(&engine, ());
        let inst = Instance::new(&mut store, &module, &[]).unwrap();
        let table = inst.get_table(&store, "table").unwrap();
        assert!(matches!(table.ty(&store).element, ValType::Ref(r) if !r.nullable));
        for i in 0..4 {
            assert!(matches!(table.get(&store, i), Some(Val::FuncRef(Some(_)))));
            assert_eq!(
                call_i32(
                    &mut store,
                    inst,
                    "from_table",
                    &[Val::I32(i as i32), Val::I32(4)]
                ),
                8
            );
            assert_eq!(
                call_i32(
                    &mut store,
                    inst,
                    "indirect",
                    &[Val::I32(i as i32), Val::I32(5)]
                ),
                10
            );
        }
        let square = func(&store, inst, "square");
        call(&mut store, inst, "set", &[Val::I32(2), square.clone()]).unwrap();
        assert_eq!(
            call_i32(&mut store, inst, "from_table", &[Val::I32(2), Val::I32(4)]),
            16
        );
        assert_eq!(
            call_i32(&mut store, inst, "indirect", &[Val::I32(1), Val::I32(4)]),
            8
        );
        // Null, or a function of another type, cannot go into the table.
        assert!(table.set(&mut store, 0, Val::FuncRef(None)).is_err());
        let add = func(&store, inst, "add");
        assert!(table.set(&mut store, 0, add).is_err());
        table.set(&mut store, 0, square).unwrap();
        assert_eq!(
            call_i32(&mut store, inst, "from_table", &[Val::I32(0), Val::I32(3)]),
            9
        );
    }
}

#[test]
fn imports_match_with_reference_subtyping() {
    let engine = engine();
    let exporter = Module::new(&engine, MODULE).unwrap();
    let mut store = Store::new(&engine, ());
    let inst = Instance::new(&mut store, &exporter, &[]).unwrap();
    let mut linker = Linker::new(&engine);
    linker.instance(&mut store, "m", inst).unwrap();

    let link = |store: &mut Store<()>, imports: &str| {
        let wat = format!(
            r#"(module
              (type $unop (func (param i32) (result i32)))
              (type $other (func (param i64) (result i64)))
              {imports})"#
        );
        let module = Module::new(&engine, wat.as_str()).unwrap();
        linker.instantiate(store, &module).map(|_| ())
    };
    // An immutable global of type (ref $unop) matches every supertype.
    for ok in [
        r#"(import "m" "g" (global (ref $unop)))"#,
        r#"(import "m" "g" (global (ref null $unop)))"#,
        r#"(import "m" "g" (global (ref func)))"#,
        r#"(import "m" "g" (global funcref))"#,
        r#"(import "m" "double" (func (type $unop)))"#,
        r#"(import "m" "table" (table 4 (ref $unop)))"#,
    ] {
        link(&mut store, ok).unwrap_or_else(|e| panic!("{ok}: {e}"));
    }
    for bad in [
        r#"(import "m" "g" (global (ref $other)))"#,
        r#"(import "m" "g" (global externref))"#,
        r#"(import "m" "g" (global (mut funcref)))"#,
        r#"(import "m" "double" (func (type $other)))"#,
        // Table element types are invariant.
        r#"(import "m" "table" (table 4 funcref))"#,
        r#"(import "m" "table" (table 4 (ref null $unop)))"#,
    ] {
        assert!(link(&mut store, bad).is_err(), "{bad} linked");
    }
    let Some(Extern::Func(f)) = inst.get_export(&store, "double") else {
        panic!("no double");
    };
    let _: Func = f;
}

/// With function references on, constant expressions may read any earlier immutable
/// global (wasm 3.0); GC's own type definitions stay unsupported, named as such.
#[test]
fn constant_expressions_read_defined_globals_and_gc_types_are_refused() {
    let wat = r#"(module
      (global $a i32 (i32.const 40))
      (global $b (export "b") i32 (i32.add (global.get $a) (i32.const 2)))
      (memory 1)
      (data (offset (global.get $b)) "x")
      (func (export "load") (result i32) (i32.load8_u (global.get $b))))"#;
    let engine = engine();
    let mut store = Store::new(&engine, ());
    let module = Module::new(&engine, wat).unwrap();
    let inst = Instance::new(&mut store, &module, &[]).unwrap();
    let b = inst.get_global(&store, "b").unwrap();
    assert_eq!(b.get(&store).i32(), Some(42));
    let load = inst.get_typed_func::<(), i32>(&store, "load").unwrap();
    assert_eq!(load.call(&mut store, ()).unwrap(), i32::from(b'x'));
    // Without the proposal, the wasm 2.0 rule holds: only imported globals.
    let err = Module::new(&Engine::default(), wat).unwrap_err();
    assert!(matches!(err, Error::Compile(_)), "{err}");
    for (gc, what) in [
        ("(rec (type (func)) (type (func)))", "recursion groups"),
        ("(type (sub (func)))", "non-final"),
        ("(type (struct))", "struct and array types"),
        ("(rec (type $t (func (param (ref $t)))))", "recursive type"),
    ] {
        let err = Module::new(&engine, format!("(module {gc})")).unwrap_err();
        match err {
            Error::Unsupported(ref m) if m.contains(what) && m.contains("GC") => {}
            other => panic!("{gc}: {other}"),
        }
    }
}
