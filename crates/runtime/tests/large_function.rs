//! A function whose code is larger than the +-1 MiB reach of aarch64 conditional branches
//! (and of `adr`): forward and backward branches and trap stubs must still work.

use wjit::{Engine, Error, Instance, Module, Store, TrapCode};

/// One function `f(x, y)`: returns `x` at once when `y == 0`, else repeats
/// `divs` times `x = x / y` (`i32.div_s`) in a loop until `x == 0`, and returns `x`.
fn big_div_module(divs: u32) -> Vec<u8> {
    fn leb(mut v: u32, out: &mut Vec<u8>) {
        loop {
            let b = (v & 0x7f) as u8;
            v >>= 7;
            if v == 0 {
                out.push(b);
                return;
            }
            out.push(b | 0x80);
        }
    }
    let mut code = vec![0u8];
    // block; local.get 1; i32.eqz; br_if 0; loop
    code.extend([0x02, 0x40, 0x20, 0x01, 0x45, 0x0d, 0x00, 0x03, 0x40]);
    for _ in 0..divs {
        // local.get 0; local.get 1; i32.div_s; local.set 0
        code.extend([0x20, 0x00, 0x20, 0x01, 0x6d, 0x21, 0x00]);
    }
    // local.get 0; br_if 0; end; end; local.get 0; end
    code.extend([0x20, 0x00, 0x0d, 0x00, 0x0b, 0x0b, 0x20, 0x00, 0x0b]);
    let mut section = vec![1u8];
    leb(code.len() as u32, &mut section);
    section.extend(code);
    let mut m = b"\0asm\x01\0\0\0".to_vec();
    m.extend([0x01, 0x07, 0x01, 0x60, 0x02, 0x7f, 0x7f, 0x01, 0x7f]);
    m.extend([0x03, 0x02, 0x01, 0x00]);
    m.extend([0x07, 0x05, 0x01, 0x01, b'f', 0x00, 0x00]);
    m.push(0x0a);
    leb(section.len() as u32, &mut m);
    m.extend(section);
    m
}

#[test]
fn functions_beyond_the_conditional_branch_range_run() {
    let engine = Engine::default();
    let module = Module::new(&engine, big_div_module(40_000)).expect("module compiles");
    let mut store = Store::new(&engine, ());
    let inst = Instance::new(&mut store, &module, &[]).expect("instantiates");
    let f = inst.get_typed_func::<(i32, i32), i32>(&store, "f").unwrap();
    // The forward branch over the whole loop.
    assert_eq!(f.call(&mut store, (100, 0)).unwrap(), 100);
    // Straight through every division, then the loop exit.
    assert_eq!(f.call(&mut store, (1000, 2)).unwrap(), 0);
    assert_eq!(f.call(&mut store, (-7, 3)).unwrap(), 0);
    // A trap stub far from its site (the first division overflows).
    match f.call(&mut store, (i32::MIN, -1)) {
        Err(Error::Trap(t)) => assert_eq!(t.code(), TrapCode::IntegerOverflow),
        other => panic!("expected an overflow trap, got {other:?}"),
    }
}
