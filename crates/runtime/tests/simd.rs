//! v128 values outside compiled code: `Val::V128`, v128 globals (defined with
//! `v128.const`, imported, read and written from the host), v128 in function and export
//! types, and host functions with v128 parameters and results called through the entry and
//! host-call stubs (two words per v128 in the argument/result area, a single v128 result in
//! the float/vector return register).

use wjit::{
    Engine, Extern, ExternType, Func, FuncType, Global, GlobalType, Instance, Linker, Module,
    Store, Val, ValType, V128,
};

/// The `v128` whose `i32x4` lanes are `l` (lane 0 first).
fn i32x4(l: [u32; 4]) -> V128 {
    V128::from(l[0] as u128 | (l[1] as u128) << 32 | (l[2] as u128) << 64 | (l[3] as u128) << 96)
}

#[test]
fn v128_values_round_trip() {
    let v = i32x4([1, 2, 3, 4]);
    assert_eq!(v.as_u128(), 0x0000_0004_0000_0003_0000_0002_0000_0001);
    assert_eq!(u128::from(v), v.as_u128());
    assert_eq!(V128::from_le_bytes(v.to_le_bytes()), v);
    assert_eq!(v.to_le_bytes()[0], 1);
    assert_eq!(v.to_le_bytes()[12], 4);
    assert_eq!(format!("{v:?}"), "V128(0x00000004000000030000000200000001)");

    let val = Val::from(v);
    assert_eq!(val.ty(), ValType::V128);
    assert_eq!(val.v128(), Some(v));
    assert_eq!(val.i32(), None);
    assert_eq!(Val::I32(1).v128(), None);
    assert_eq!(Val::default_for(ValType::V128).v128(), Some(V128::from(0)));
    assert_eq!(ValType::V128.to_string(), "v128");
    assert_eq!(V128::default().as_u128(), 0);
}

#[test]
fn v128_globals_are_initialised_by_v128_const_and_set_from_the_host() {
    let engine = Engine::default();
    let module = Module::new(
        &engine,
        r#"(module
            (global (export "c") v128 (v128.const i32x4 1 2 3 4))
            (global (export "m") (mut v128) (v128.const i64x2 -1 0x1122334455667788))
            (global (export "f") v128 (v128.const f32x4 1.0 -0.0 nan inf))
            (global (export "i") i32 (i32.const 7)))"#,
    )
    .unwrap();
    let ty = |name: &str| {
        module
            .exports()
            .find(|e| e.name() == name)
            .map(|e| e.ty())
            .unwrap()
    };
    assert_eq!(
        ty("c"),
        ExternType::Global(GlobalType {
            content: ValType::V128,
            mutable: false
        })
    );
    assert_eq!(
        ty("m"),
        ExternType::Global(GlobalType {
            content: ValType::V128,
            mutable: true
        })
    );

    let mut store = Store::new(&engine, ());
    let inst = Instance::new(&mut store, &module, &[]).unwrap();
    let get = |store: &Store<()>, name: &str| inst.get_global(store, name).unwrap();
    let c = get(&store, "c");
    assert_eq!(c.get(&store).v128(), Some(i32x4([1, 2, 3, 4])));
    let m = get(&store, "m");
    assert_eq!(
        m.get(&store).v128(),
        Some(V128::from(0x1122_3344_5566_7788_ffff_ffff_ffff_ffffu128))
    );
    assert_eq!(
        get(&store, "f").get(&store).v128(),
        Some(i32x4([0x3f80_0000, 0x8000_0000, 0x7fc0_0000, 0x7f80_0000]))
    );
    // The neighbouring i32 global is untouched by the 16-byte cells.
    assert_eq!(get(&store, "i").get(&store).i32(), Some(7));

    let new = V128::from(0xfedc_ba98_7654_3210_0123_4567_89ab_cdefu128);
    m.set(&mut store, Val::V128(new)).unwrap();
    assert_eq!(m.get(&store).v128(), Some(new));
    assert!(m.set(&mut store, Val::I64(1)).is_err(), "wrong type");
    assert_eq!(m.get(&store).v128(), Some(new));
    assert!(
        c.set(&mut store, Val::V128(new)).is_err(),
        "immutable global"
    );
    assert_eq!(
        c.ty(&store),
        GlobalType {
            content: ValType::V128,
            mutable: false
        }
    );
}

#[test]
fn imported_v128_globals() {
    let engine = Engine::default();
    let module = Module::new(
        &engine,
        r#"(module
            (import "host" "g" (global $g v128))
            (import "host" "mg" (global $mg (mut v128)))
            (global (export "copy") v128 (global.get $g))
            (export "g" (global $g))
            (export "mg" (global $mg)))"#,
    )
    .unwrap();
    let import_ty = module
        .imports()
        .find(|i| i.name() == "mg")
        .map(|i| i.ty())
        .unwrap();
    assert_eq!(
        import_ty,
        ExternType::Global(GlobalType {
            content: ValType::V128,
            mutable: true
        })
    );

    let mut store = Store::new(&engine, ());
    let value = V128::from(u128::MAX - 5);
    let g = Global::new(
        &mut store,
        GlobalType {
            content: ValType::V128,
            mutable: false,
        },
        Val::V128(value),
    )
    .unwrap();
    let mg = Global::new(
        &mut store,
        GlobalType {
            content: ValType::V128,
            mutable: true,
        },
        Val::V128(V128::from(1)),
    )
    .unwrap();
    assert!(
        Global::new(
            &mut store,
            GlobalType {
                content: ValType::V128,
                mutable: false,
            },
            Val::I32(0),
        )
        .is_err(),
        "initial value of the wrong type"
    );

    let mut linker = Linker::new(&engine);
    linker.define(&store, "host", "g", g).unwrap();
    linker.define(&store, "host", "mg", mg).unwrap();
    let inst = linker.instantiate(&mut store, &module).unwrap();
    let copy = inst.get_global(&store, "copy").unwrap();
    assert_eq!(copy.get(&store).v128(), Some(value));
    assert_eq!(
        inst.get_global(&store, "g").unwrap().get(&store).v128(),
        Some(value)
    );

    // The instance shares the host's cell.
    let exported = inst.get_global(&store, "mg").unwrap();
    let new = i32x4([5, 6, 7, 8]);
    mg.set(&mut store, Val::V128(new)).unwrap();
    assert_eq!(exported.get(&store).v128(), Some(new));
    exported.set(&mut store, Val::V128(V128::from(9))).unwrap();
    assert_eq!(mg.get(&store).v128(), Some(V128::from(9)));

    // A global of another type does not satisfy a v128 import.
    let wrong = Global::new(
        &mut store,
        GlobalType {
            content: ValType::I64,
            mutable: false,
        },
        Val::I64(0),
    )
    .unwrap();
    assert!(Instance::new(
        &mut store,
        &module,
        &[Extern::Global(wrong), Extern::Global(mg)]
    )
    .is_err());
}

#[test]
fn host_functions_with_v128_params_and_results() {
    let engine = Engine::default();
    let mut store = Store::new(&engine, ());

    // Typed: a v128 before and after a one-word value, single v128 result.
    let mix = Func::wrap(&mut store, |a: V128, x: i32, b: V128| -> V128 {
        V128::from(a.as_u128() ^ b.as_u128().rotate_left(x as u32))
    });
    assert_eq!(
        mix.ty(&store),
        FuncType::new(
            [ValType::V128, ValType::I32, ValType::V128],
            [ValType::V128]
        )
    );
    let a = i32x4([1, 2, 3, 4]);
    let b = V128::from(0x8000_0000_0000_0000_0000_0000_0000_0001u128);
    let want = V128::from(a.as_u128() ^ b.as_u128().rotate_left(4));
    let typed = mix.typed::<(V128, i32, V128), V128>(&store).unwrap();
    assert_eq!(typed.call(&mut store, (a, 4, b)).unwrap(), want);
    let mut results = [Val::I32(0)];
    mix.call(
        &mut store,
        &[Val::V128(a), Val::I32(4), Val::V128(b)],
        &mut results,
    )
    .unwrap();
    assert_eq!(results[0].v128(), Some(want));
    assert!(mix.typed::<(V128, i32, i64), V128>(&store).is_err());
    assert!(mix.typed::<(V128, i32, V128), (i64, i64)>(&store).is_err());

    // Multi-value: results laid out word by word, a v128 taking two.
    let split = Func::wrap(&mut store, |v: V128, y: f64| -> (i32, V128, f64, i64) {
        let w = v.as_u128();
        (w as i32, V128::from(!w), y * 2.0, (w >> 64) as i64)
    });
    assert_eq!(
        split.ty(&store),
        FuncType::new(
            [ValType::V128, ValType::F64],
            [ValType::I32, ValType::V128, ValType::F64, ValType::I64]
        )
    );
    let v = V128::from(0x0102_0304_0506_0708_090a_0b0c_0d0e_0f10u128);
    let typed = split
        .typed::<(V128, f64), (i32, V128, f64, i64)>(&store)
        .unwrap();
    assert_eq!(
        typed.call(&mut store, (v, 1.5)).unwrap(),
        (
            0x0d0e_0f10,
            V128::from(!v.as_u128()),
            3.0,
            0x0102_0304_0506_0708
        )
    );
    let mut results = vec![Val::I32(0); 4];
    split
        .call(&mut store, &[Val::V128(v), Val::from(1.5f64)], &mut results)
        .unwrap();
    assert_eq!(results[0].i32(), Some(0x0d0e_0f10));
    assert_eq!(results[1].v128(), Some(V128::from(!v.as_u128())));
    assert_eq!(results[2].f64(), Some(3.0));
    assert_eq!(results[3].i64(), Some(0x0102_0304_0506_0708));

    // Dynamic: Func::new with v128 parameters and results.
    let ty = FuncType::new([ValType::I64, ValType::V128], [ValType::V128, ValType::I32]);
    let dynamic = Func::new(&mut store, ty.clone(), |_, params, results| {
        let x = params[0].i64().unwrap() as u64 as u128;
        let v = params[1].v128().unwrap().as_u128();
        results[0] = Val::V128(V128::from(v.wrapping_add(x << 64)));
        results[1] = Val::I32(7);
        Ok(())
    });
    assert_eq!(dynamic.ty(&store), ty);
    let mut results = vec![Val::I32(0); 2];
    dynamic
        .call(
            &mut store,
            &[Val::I64(3), Val::V128(V128::from(u128::MAX))],
            &mut results,
        )
        .unwrap();
    assert_eq!(
        results[0].v128(),
        Some(V128::from(2u128 << 64 | u64::MAX as u128))
    );
    assert_eq!(results[1].i32(), Some(7));
    let typed = dynamic.typed::<(i64, V128), (V128, i32)>(&store).unwrap();
    assert_eq!(
        typed.call(&mut store, (0, V128::from(5))).unwrap(),
        (V128::from(5), 7)
    );

    // A single v128 result of a dynamic function, and a wrong result type.
    let one = Func::new(
        &mut store,
        FuncType::new([], [ValType::V128]),
        |_, _, results| {
            results[0] = Val::V128(V128::from(u128::MAX / 3));
            Ok(())
        },
    );
    let typed = one.typed::<(), V128>(&store).unwrap();
    assert_eq!(
        typed.call(&mut store, ()).unwrap(),
        V128::from(u128::MAX / 3)
    );
    let bad = Func::new(
        &mut store,
        FuncType::new([], [ValType::V128]),
        |_, _, results| {
            results[0] = Val::I32(1);
            Ok(())
        },
    );
    let mut results = [Val::I32(0)];
    let err = bad.call(&mut store, &[], &mut results).unwrap_err();
    assert!(err.to_string().contains("v128"), "{err}");

    // Sixteen v128 parameters (32 words), and arguments of the wrong type.
    let args: Vec<Val> = (0..16)
        .map(|i| Val::V128(V128::from((i as u128) << 64 | 1)))
        .collect();
    let want = (0..16u128).fold(0u128, |acc, i| {
        acc.wrapping_add((i << 64 | 1).wrapping_mul(i + 1))
    });
    let mut results = [Val::I32(0)];
    let sum = Func::wrap(
        &mut store,
        |a: V128,
         b: V128,
         c: V128,
         d: V128,
         e: V128,
         f: V128,
         g: V128,
         h: V128,
         i: V128,
         j: V128,
         k: V128,
         l: V128,
         m: V128,
         n: V128,
         o: V128,
         p: V128| {
            let all = [a, b, c, d, e, f, g, h, i, j, k, l, m, n, o, p];
            V128::from(all.iter().enumerate().fold(0u128, |acc, (idx, v)| {
                acc.wrapping_add(v.as_u128().wrapping_mul(idx as u128 + 1))
            }))
        },
    );
    sum.call(&mut store, &args, &mut results).unwrap();
    assert_eq!(results[0].v128(), Some(V128::from(want)));
    assert!(sum
        .call(&mut store, &vec![Val::I32(0); 16], &mut results)
        .is_err());
}

#[test]
fn imported_host_functions_keep_their_v128_types() {
    let engine = Engine::default();
    let module = Module::new(
        &engine,
        r#"(module
            (import "host" "f" (func $f (param v128 i32) (result v128)))
            (export "f" (func $f)))"#,
    )
    .unwrap();
    let want = FuncType::new([ValType::V128, ValType::I32], [ValType::V128]);
    let export_ty = module
        .exports()
        .find(|e| e.name() == "f")
        .map(|e| e.ty())
        .unwrap();
    assert_eq!(export_ty, ExternType::Func(want.clone()));

    let mut linker = Linker::new(&engine);
    linker
        .func_wrap("host", "f", |v: V128, s: i32| -> V128 {
            V128::from(v.as_u128() << s)
        })
        .unwrap();
    let mut store = Store::new(&engine, ());
    let inst = linker.instantiate(&mut store, &module).unwrap();
    let f = inst.get_func(&store, "f").unwrap();
    assert_eq!(f.ty(&store), want);
    let typed = inst
        .get_typed_func::<(V128, i32), V128>(&store, "f")
        .unwrap();
    assert_eq!(
        typed.call(&mut store, (V128::from(3), 100)).unwrap(),
        V128::from(3u128 << 100)
    );
}

/// Compiled v128 code through the API, eager and lazy: v128 globals, parameters and results,
/// a v128 value appearing in a body without v128 locals or SIMD operators (`get`: compiled
/// again with wide slots), values live across calls and loops, and a multi-instruction
/// operator (`i8x16.popcnt`).
#[test]
fn functions_using_v128_compile_and_run() {
    let wat = r#"(module
        (global (export "g") (mut v128) (v128.const i32x4 1 2 3 4))
        (func (export "get") (result v128) (global.get 0))
        (func (export "add") (param v128 v128) (result v128)
          (i32x4.add (local.get 0) (local.get 1)))
        (func $id (param v128) (result v128) (local.get 0))
        (func (export "sum") (param $n i32) (result v128)
          (local $acc v128)
          (block (loop
            (br_if 1 (i32.eqz (local.get $n)))
            (local.set $acc
              (i64x2.add (local.get $acc) (call $id (v128.const i64x2 1 0x100000000))))
            (local.set $n (i32.sub (local.get $n) (i32.const 1)))
            (br 0)))
          (local.get $acc))
        (func (export "cmp") (param i64 i64) (result i64)
          (v128.store (i32.const 0) (i64x2.lt_s (v128.const i64x2 0 0)
            (i64x2.sub (v128.const i64x2 0 0) (v128.const i64x2 -5 5))))
          (i64.add (i64.load (i32.const 0)) (i64.load (i32.const 8))))
        (func (export "sel") (param v128 v128 i32) (result v128)
          (select (local.get 0) (local.get 1) (local.get 2)))
        (memory 1))"#;
    for lazy in [false, true] {
        let engine = Engine::new(wjit::Config::new().lazy_compilation(lazy)).unwrap();
        let module = Module::new(&engine, wat).unwrap();
        let mut store = Store::new(&engine, ());
        let inst = Instance::new(&mut store, &module, &[]).unwrap();
        let get = inst.get_typed_func::<(), V128>(&store, "get").unwrap();
        let lanes = |l: [u32; 4]| {
            V128::from(
                l.iter()
                    .rev()
                    .fold(0u128, |acc, &x| (acc << 32) | u128::from(x)),
            )
        };
        assert_eq!(get.call(&mut store, ()).unwrap(), lanes([1, 2, 3, 4]));
        let add = inst
            .get_typed_func::<(V128, V128), V128>(&store, "add")
            .unwrap();
        let sum = add
            .call(
                &mut store,
                (lanes([1, 2, 3, u32::MAX]), lanes([10, 20, 30, 2])),
            )
            .unwrap();
        assert_eq!(sum, lanes([11, 22, 33, 1]), "lazy={lazy}");
        let acc = inst.get_typed_func::<i32, V128>(&store, "sum").unwrap();
        assert_eq!(
            acc.call(&mut store, 1000).unwrap(),
            V128::from((1000u128 << 96) | 1000),
            "lazy={lazy}"
        );
        // lt_s(0, 5) is true (-1) in lane 0, lt_s(0, -5) false in lane 1.
        let cmp = inst
            .get_typed_func::<(i64, i64), i64>(&store, "cmp")
            .unwrap();
        assert_eq!(cmp.call(&mut store, (0, 0)).unwrap(), -1, "lazy={lazy}");
        let sel = inst
            .get_typed_func::<(V128, V128, i32), V128>(&store, "sel")
            .unwrap();
        let (x, y) = (V128::from(u128::MAX - 7), V128::from(1u128 << 100));
        assert_eq!(sel.call(&mut store, (x, y, 1)).unwrap(), x, "lazy={lazy}");
        assert_eq!(sel.call(&mut store, (x, y, 0)).unwrap(), y, "lazy={lazy}");
    }
    // An operator that needs a multi-instruction sequence on both ISAs, in both modes.
    let popcnt = r#"(module (func (export "f") (param v128) (result v128)
        (i8x16.popcnt (local.get 0))))"#;
    for lazy in [false, true] {
        let engine = Engine::new(wjit::Config::new().lazy_compilation(lazy)).unwrap();
        let module = Module::new(&engine, popcnt).unwrap();
        let mut store = Store::new(&engine, ());
        let inst = Instance::new(&mut store, &module, &[]).unwrap();
        let f = inst.get_typed_func::<V128, V128>(&store, "f").unwrap();
        let input = u128::from_le_bytes(std::array::from_fn(|i| (i * 17) as u8));
        let want =
            u128::from_le_bytes(std::array::from_fn(|i| ((i * 17) as u8).count_ones() as u8));
        assert_eq!(
            f.call(&mut store, V128::from(input)).unwrap(),
            V128::from(want),
            "lazy={lazy}"
        );
    }
}

#[test]
fn simd_proposals_can_be_switched_off() {
    let simd = r#"(module (func (result v128) (v128.const i64x2 1 2)))"#;
    let relaxed = r#"(module (func (param v128) (result v128)
        (i8x16.relaxed_swizzle (local.get 0) (local.get 0))))"#;
    let load = |config: &mut wjit::Config, wat: &str| {
        let engine = Engine::new(config).unwrap();
        Module::new(&engine, wat).map(|_| ())
    };
    // Both on by default, as in wasmtime.
    assert!(load(&mut wjit::Config::new(), simd).is_ok());
    assert!(load(&mut wjit::Config::new(), relaxed).is_ok());
    // Relaxed SIMD off: its operators are invalid, plain SIMD still loads.
    let mut no_relaxed = wjit::Config::new();
    no_relaxed.wasm_relaxed_simd(false);
    let err = load(&mut no_relaxed, relaxed).unwrap_err().to_string();
    assert!(err.contains("relaxed"), "{err}");
    assert!(load(&mut no_relaxed, simd).is_ok());
    // SIMD off (with relaxed SIMD off too): v128 is invalid.
    let mut no_simd = wjit::Config::new();
    no_simd.wasm_simd(false).wasm_relaxed_simd(false);
    let err = load(&mut no_simd, simd).unwrap_err().to_string();
    assert!(err.contains("SIMD") || err.contains("simd"), "{err}");
    // Relaxed SIMD needs SIMD.
    let mut inconsistent = wjit::Config::new();
    inconsistent.wasm_simd(false);
    let err = Engine::new(&inconsistent)
        .map(|_| ())
        .unwrap_err()
        .to_string();
    assert!(err.contains("relaxed SIMD without SIMD"), "{err}");
}

/// `any_true`/`all_true` feeding `br_if` and `if` branch on the test directly (fused): every
/// shape and both outcomes, against the materialised i32 of the same test.
#[test]
fn vector_tests_branch_like_their_values() {
    let mut funcs = String::new();
    for test in [
        "v128.any_true",
        "i8x16.all_true",
        "i16x8.all_true",
        "i32x4.all_true",
        "i64x2.all_true",
    ] {
        let name = test.replace('.', "_");
        funcs += &format!(
            r#"(func (export "{name}_if") (param v128) (result i32)
                 (if (result i32) ({test} (local.get 0)) (then (i32.const 1)) (else (i32.const 0))))
               (func (export "{name}_br_if") (param v128) (result i32)
                 (block (br_if 0 ({test} (local.get 0))) (return (i32.const 0)))
                 (i32.const 1))
               (func (export "{name}_value") (param v128) (result i32)
                 ({test} (local.get 0)))"#
        );
    }
    let wat = format!("(module {funcs})");
    let inputs: [u128; 7] = [
        0,
        u128::MAX,
        1,
        1 << 127,
        u128::from_le_bytes([1; 16]),
        0x0001_0000_0001_0000_0001_0000_0001_0000,
        0x0000_0000_0000_0001_0000_0000_0000_0001,
    ];
    for lazy in [false, true] {
        let engine = Engine::new(wjit::Config::new().lazy_compilation(lazy)).unwrap();
        let module = Module::new(&engine, &wat).unwrap();
        let mut store = Store::new(&engine, ());
        let inst = Instance::new(&mut store, &module, &[]).unwrap();
        for test in [
            "v128_any_true",
            "i8x16_all_true",
            "i16x8_all_true",
            "i32x4_all_true",
            "i64x2_all_true",
        ] {
            let get = |s: &str| {
                inst.get_typed_func::<V128, i32>(&store, &format!("{test}_{s}"))
                    .unwrap()
            };
            let (value, if_, br_if) = (get("value"), get("if"), get("br_if"));
            for &x in &inputs {
                let want = value.call(&mut store, V128::from(x)).unwrap();
                // The materialised value itself, from the lane semantics.
                let lanes = |bits: u32| {
                    (0..128 / bits).map(move |i| (x >> (i * bits)) & ((1u128 << bits) - 1))
                };
                let expected = match test {
                    "v128_any_true" => x != 0,
                    "i8x16_all_true" => lanes(8).all(|l| l != 0),
                    "i16x8_all_true" => lanes(16).all(|l| l != 0),
                    "i32x4_all_true" => lanes(32).all(|l| l != 0),
                    _ => lanes(64).all(|l| l != 0),
                };
                assert_eq!(want, expected as i32, "{test} {x:#x}");
                assert_eq!(
                    if_.call(&mut store, V128::from(x)).unwrap(),
                    want,
                    "{test} if {x:#x}"
                );
                assert_eq!(
                    br_if.call(&mut store, V128::from(x)).unwrap(),
                    want,
                    "{test} br_if {x:#x}"
                );
            }
        }
    }
}

/// `Config::x64_avx(false)` forces the SSE forms on an AVX machine; both must compute the
/// same v128 and scalar float results (on other CPUs and ISAs both runs are the same code).
#[test]
fn avx_and_sse_forms_agree() {
    let wat = r#"(module
        (func (export "mix") (param $a v128) (param $b v128) (param $n i32) (result v128)
          (local $t v128)
          (local.set $t (i32x4.add (local.get $a) (local.get $b)))
          (local.set $t (v128.xor (local.get $t) (i8x16.sub (local.get $b) (local.get $t))))
          (local.set $t (v128.bitselect (local.get $t) (local.get $a)
            (i16x8.gt_u (local.get $a) (local.get $b))))
          (local.set $t (v128.andnot (local.get $t) (i64x2.mul (local.get $a) (local.get $t))))
          (local.set $t (i8x16.add (local.get $t) (i32x4.le_s (local.get $b) (local.get $t))))
          (local.set $t (i64x2.sub (local.get $t)
            (i8x16.shuffle 0 17 2 19 4 21 6 23 8 25 10 27 12 29 14 31
              (local.get $b) (local.get $t))))
          (local.set $t (i16x8.add (local.get $t)
            (i32x4.shr_u (local.get $a) (local.get $n))))
          (local.set $t (i8x16.add (local.get $t) (i8x16.swizzle (local.get $b) (local.get $t))))
          (local.set $t (i8x16.add (local.get $t) (i8x16.popcnt (local.get $t))))
          (local.set $t (i16x8.sub (local.get $t) (i16x8.neg (local.get $t))))
          (local.get $t))
        (func (export "float") (param $a v128) (param $b v128) (result v128)
          (f32x4.add (f32x4.min (local.get $a) (local.get $b))
            (f32x4.mul (f32x4.pmax (local.get $b) (local.get $a)) (f32x4.neg (local.get $a)))))
        (func (export "cmp") (param $a v128) (param $b v128) (result v128)
          (v128.or (f64x2.lt (local.get $a) (local.get $b))
            (v128.and (f32x4.ge (local.get $b) (local.get $a))
              (i64x2.ne (local.get $a) (local.get $b)))))
        (func (export "scalar") (param $x f64) (param $y f64) (result f64)
          (f64.add (f64.min (local.get $x) (local.get $y))
            (f64.div (f64.sub (local.get $y) (local.get $x))
              (f64.add (f64.max (local.get $y) (local.get $x))
                (f64.promote_f32 (f32.sqrt (f32.demote_f64 (f64.sqrt (local.get $x))))))))))"#;
    let run = |avx: bool| {
        let engine = Engine::new(wjit::Config::new().x64_avx(avx)).unwrap();
        let module = Module::new(&engine, wat).unwrap();
        let mut store = Store::new(&engine, ());
        let inst = Instance::new(&mut store, &module, &[]).unwrap();
        let mix = inst
            .get_typed_func::<(V128, V128, i32), V128>(&store, "mix")
            .unwrap();
        let float = inst
            .get_typed_func::<(V128, V128), V128>(&store, "float")
            .unwrap();
        let cmp = inst
            .get_typed_func::<(V128, V128), V128>(&store, "cmp")
            .unwrap();
        let scalar = inst
            .get_typed_func::<(f64, f64), f64>(&store, "scalar")
            .unwrap();
        let mut out = Vec::new();
        let mut x = 0x9E37_79B9_7F4A_7C15_u128 | 1;
        for i in 0..200u32 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            // Every fifth pair equal (equal lanes take the other branches of min/max).
            let a = x;
            let b = if i % 5 == 0 { a } else { x.rotate_left(37) };
            let (va, vb) = (V128::from(a), V128::from(b));
            out.push(mix.call(&mut store, (va, vb, i as i32)).unwrap().as_u128());
            out.push(float.call(&mut store, (va, vb)).unwrap().as_u128());
            out.push(cmp.call(&mut store, (va, vb)).unwrap().as_u128());
            let (fa, fb) = (f64::from_bits(a as u64), f64::from_bits((b >> 64) as u64));
            for (p, q) in [
                (fa, fb),
                (0.0, -0.0),
                (-0.0, 0.0),
                (1.5, f64::NAN),
                (fb, fb),
            ] {
                out.push(scalar.call(&mut store, (p, q)).unwrap().to_bits() as u128);
            }
        }
        out
    };
    let (sse, avx) = (run(false), run(true));
    assert_eq!(sse.len(), avx.len());
    for (i, (s, a)) in sse.iter().zip(&avx).enumerate() {
        // NaN payloads may differ with the operand order; compare NaN lanes as equal.
        let nan32 = |v: u128, l: usize| (v >> (32 * l)) as u32 & 0x7FFF_FFFF > 0x7F80_0000;
        let nan64 = |v: u128, l: usize| {
            (v >> (64 * l)) as u64 & 0x7FFF_FFFF_FFFF_FFFF > 0x7FF0_0000_0000_0000
        };
        let same = s == a
            || (0..4)
                .all(|l| (s ^ a) >> (32 * l) & 0xFFFF_FFFF == 0 || nan32(*s, l) && nan32(*a, l))
            || (0..2).all(|l| {
                (s ^ a) >> (64 * l) & 0xFFFF_FFFF_FFFF_FFFF == 0 || nan64(*s, l) && nan64(*a, l)
            });
        assert!(same, "result {i}: SSE {s:#034x} AVX {a:#034x}");
    }
}
