//! Lazy compilation, sharing modules between threads, and freeing what instances use.

use std::sync::{Arc, Barrier};
use wjit::{Config, Engine, Error, Instance, Module};

/// A module with `n` functions `f{i}(x) = x * (i + 1) + i`, each exported, plus `sum`, which
/// calls every function through a table.
fn many_functions(n: u32) -> String {
    let mut wat = String::from("(module (table funcref (elem");
    for i in 0..n {
        wat.push_str(&format!(" $f{i}"));
    }
    wat.push_str("))\n");
    for i in 0..n {
        wat.push_str(&format!(
            "(func $f{i} (export \"f{i}\") (param i32) (result i32) local.get 0 i32.const {} i32.mul i32.const {i} i32.add)\n",
            i + 1
        ));
    }
    wat.push_str(&format!(
        "(type $t (func (param i32) (result i32)))
         (func (export \"sum\") (param i32) (result i32) (local $i i32) (local $acc i32)
           (loop
             local.get $acc
             local.get 0 local.get $i call_indirect (type $t)
             i32.add local.set $acc
             local.get $i i32.const 1 i32.add local.tee $i
             i32.const {n} i32.lt_u br_if 0)
           local.get $acc))"
    ));
    wat
}

fn expected_sum(n: u32, x: i32) -> i32 {
    (0..n as i32).fold(0i32, |acc, i| {
        acc.wrapping_add(x.wrapping_mul(i + 1).wrapping_add(i))
    })
}

#[test]
fn invalid_bodies_are_reported_at_the_first_call() {
    let wat = r#"(module
        (func (export "good") (result i32) i32.const 1)
        (func (export "bad") (result i32) i64.const 1))"#;
    let lazy = Engine::default();
    let module = Module::new(&lazy, wat).expect("lazy mode validates bodies on first call");
    let inst = Instance::new(&module, &[]).unwrap();
    let good = inst.get_typed_func::<(), i32>("good").unwrap();
    assert_eq!(good.call(()).unwrap(), 1);
    let bad = inst.get_typed_func::<(), i32>("bad").unwrap();
    for _ in 0..2 {
        match bad.call(()) {
            Err(Error::Compile(msg)) => assert!(msg.contains("type mismatch"), "{msg}"),
            other => panic!("expected a compile error, got {other:?}"),
        }
    }
    let eager = Engine::new(Config::new().lazy_compilation(false)).unwrap();
    assert!(matches!(Module::new(&eager, wat), Err(Error::Compile(_))));
}

#[test]
fn engine_and_module_are_send_and_sync() {
    fn check<T: Send + Sync>() {}
    check::<Engine>();
    check::<Module>();
    check::<Instance>();
}

#[test]
fn eight_threads_share_lazily_compiled_functions() {
    let n = 300;
    let engine = Engine::default();
    let module = Module::new(&engine, many_functions(n)).unwrap();
    let barrier = Arc::new(Barrier::new(8));
    let threads: Vec<_> = (0..8)
        .map(|t| {
            let module = module.clone();
            let barrier = barrier.clone();
            std::thread::spawn(move || {
                let inst = Instance::new(&module, &[]).unwrap();
                barrier.wait();
                // Every thread calls every function, in a different order, several times.
                for round in 0..3 {
                    for k in 0..n {
                        let i = (k * 7 + t * 37 + round) % n;
                        let f = inst.get_typed_func::<i32, i32>(&format!("f{i}")).unwrap();
                        assert_eq!(
                            f.call(t as i32).unwrap(),
                            t as i32 * (i as i32 + 1) + i as i32
                        );
                    }
                    let sum = inst.get_typed_func::<i32, i32>("sum").unwrap();
                    assert_eq!(
                        sum.call(round as i32).unwrap(),
                        expected_sum(n, round as i32)
                    );
                }
            })
        })
        .collect();
    for t in threads {
        t.join().expect("thread ran correctly");
    }
    assert_eq!(module.compiled_functions(), n as usize + 1);
}
