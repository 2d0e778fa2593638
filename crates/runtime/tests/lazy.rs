//! Lazy compilation, sharing modules between threads, and freeing what instances use.

use std::sync::{Arc, Barrier};
use wjit::{Config, Engine, Error, Instance, Module, Store};

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
fn invalid_bodies_are_rejected_by_module_new_even_if_never_called() {
    let wat = r#"(module
        (func (export "good") (result i32) i32.const 1)
        (func (export "bad") (result i32) i64.const 1))"#;
    for lazy in [true, false] {
        let engine = Engine::new(Config::new().lazy_compilation(lazy)).unwrap();
        match Module::new(&engine, wat) {
            Err(Error::Compile(msg)) => {
                assert!(msg.contains("type mismatch"), "lazy={lazy}: {msg}");
                assert!(msg.contains("function 1"), "lazy={lazy}: {msg}");
                assert!(msg.contains("byte offset"), "lazy={lazy}: {msg}");
            }
            other => panic!("lazy={lazy}: expected a compile error, got {other:?}"),
        }
    }
}

#[test]
fn engine_module_and_handles_are_send_and_sync() {
    fn check<T: Send + Sync>() {}
    fn send<T: Send>() {}
    check::<Engine>();
    check::<Module>();
    check::<Instance>();
    check::<wjit::Func>();
    check::<wjit::TypedFunc<i32, i32>>();
    send::<Store<()>>();
}

#[test]
fn eight_threads_each_with_a_store_share_one_lazily_compiled_module() {
    let n = 300;
    let engine = Engine::default();
    let module = Module::new(&engine, many_functions(n)).unwrap();
    let barrier = Arc::new(Barrier::new(8));
    let threads: Vec<_> = (0..8)
        .map(|t| {
            let module = module.clone();
            let barrier = barrier.clone();
            let engine = engine.clone();
            std::thread::spawn(move || {
                barrier.wait();
                // Every thread instantiates at the same time, then calls every function,
                // in a different order, several times.
                let mut store = Store::new(&engine, ());
                let inst = Instance::new(&mut store, &module, &[]).unwrap();
                for round in 0..3 {
                    for k in 0..n {
                        let i = (k * 7 + t * 37 + round) % n;
                        let f = inst
                            .get_typed_func::<i32, i32>(&store, &format!("f{i}"))
                            .unwrap();
                        assert_eq!(
                            f.call(&mut store, t as i32).unwrap(),
                            t as i32 * (i as i32 + 1) + i as i32
                        );
                    }
                    let sum = inst.get_typed_func::<i32, i32>(&store, "sum").unwrap();
                    assert_eq!(
                        sum.call(&mut store, round as i32).unwrap(),
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
