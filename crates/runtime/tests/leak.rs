//! Instances, their memories and their code are freed when dropped. In a test binary of its
//! own, so no other test's mappings disturb the measurement.

use wjit::testing::{live_code_regions, live_memories};
use wjit::{Engine, Instance, Module, Store};

/// Bytes of virtual memory the process maps (Linux).
fn mapped_bytes() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap();
    let pages: u64 = statm.split_whitespace().next().unwrap().parse().unwrap();
    pages * 4096
}

#[test]
fn dropped_instances_free_their_memory_and_code() {
    let engine = Engine::default();
    let wat = r#"(module (memory 1) (table 4 funcref) (global (mut i32) (i32.const 0))
        (func (export "touch") (param i32) (result i32)
          local.get 0 local.get 0 i32.store local.get 0 i32.load))"#;
    let warm = || {
        let module = Module::new(&engine, wat).unwrap();
        let mut store = Store::new(&engine, ());
        let inst = Instance::new(&mut store, &module, &[]).unwrap();
        let touch = inst.get_typed_func::<i32, i32>(&store, "touch").unwrap();
        assert_eq!(touch.call(&mut store, 100).unwrap(), 100);
    };
    for _ in 0..50 {
        warm();
    }
    // qemu-user (the aarch64 CI run) is slow to map and unmap thousands of 8 GiB
    // reservations, so that run sets fewer rounds; a leak of even one instance per round
    // would still exceed the bound below by far.
    let rounds: usize = std::env::var("WJIT_LEAK_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3000);
    let before = mapped_bytes();
    let (memories, code) = (live_memories(), live_code_regions());
    for _ in 0..rounds {
        warm();
    }
    // Every memory and code region made by a round is gone again.
    assert_eq!(live_memories(), memories);
    assert_eq!(live_code_regions(), code);
    let after = mapped_bytes();
    // Each leaked instance would keep an 8 GiB reservation mapped. (qemu-user keeps guest
    // unmappings reserved in its own address space, so the process size says nothing there.)
    if cfg!(target_arch = "x86_64") {
        assert!(
            after < before + (256 << 20),
            "mapped memory grew from {before} to {after} bytes"
        );
    }
}
