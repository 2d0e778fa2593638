//! Float rounding agrees between the CPU instructions and the runtime fallback used on CPUs
//! without them.

use wjit::{Config, Engine, Instance, Module, Store};

const WAT: &str = r#"(module
  (func (export "f64") (param f64 i32) (result f64)
    (block (block (block (block (br_table 0 1 2 3 (local.get 1)))
      (return (f64.ceil (local.get 0))))
      (return (f64.floor (local.get 0))))
      (return (f64.trunc (local.get 0))))
    (f64.nearest (local.get 0)))
  (func (export "f32") (param f32 i32) (result f32)
    (block (block (block (block (br_table 0 1 2 3 (local.get 1)))
      (return (f32.ceil (local.get 0))))
      (return (f32.floor (local.get 0))))
      (return (f32.trunc (local.get 0))))
    (f32.nearest (local.get 0))))"#;

fn instance(software: bool) -> (Store<()>, Instance) {
    let engine = Engine::new(Config::new().software_float_rounding(software)).unwrap();
    let mut store = Store::new(&engine, ());
    let instance = Instance::new(&mut store, &Module::new(&engine, WAT).unwrap(), &[]).unwrap();
    (store, instance)
}

#[test]
fn fallback_matches_instructions() {
    let values = [
        0.0,
        -0.0,
        0.5,
        -0.5,
        1.5,
        2.5,
        -2.5,
        0.49999999999999994,
        4503599627370495.5,
        -4503599627370497.0,
        1e300,
        f64::MIN_POSITIVE,
        f64::INFINITY,
        f64::NEG_INFINITY,
        f64::NAN,
    ];
    let (mut native, mut software) = (instance(false), instance(true));
    for mode in 0..4 {
        for &v in &values {
            let run = |(store, i): &mut (Store<()>, Instance)| {
                let f64_ = i.get_typed_func::<(f64, i32), f64>(&*store, "f64").unwrap();
                let f32_ = i.get_typed_func::<(f32, i32), f32>(&*store, "f32").unwrap();
                (
                    f64_.call(&mut *store, (v, mode)).unwrap(),
                    f32_.call(&mut *store, (v as f32, mode)).unwrap(),
                )
            };
            let (a, b) = (run(&mut native), run(&mut software));
            assert!(
                a.0.to_bits() == b.0.to_bits() || (a.0.is_nan() && b.0.is_nan()),
                "f64 mode {mode} of {v}: {a:?} vs {b:?}"
            );
            assert!(
                a.1.to_bits() == b.1.to_bits() || (a.1.is_nan() && b.1.is_nan()),
                "f32 mode {mode} of {v}: {a:?} vs {b:?}"
            );
        }
    }
}
