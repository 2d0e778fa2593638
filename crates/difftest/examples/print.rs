//! Prints the module a seed generates in a mode, as text, to standard output: the input
//! `reduce.py` cuts down. `cargo run --release -p difftest --example print -- MODE SEED >
//! seed.wat`. A module that does not print as text (mutate mode makes malformed ones) is
//! an error naming why.

use difftest::{gen, Mode};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [mode, seed] = args.as_slice() else {
        eprintln!("usage: print MODE SEED");
        std::process::exit(2);
    };
    let Some(mode) = Mode::parse(mode) else {
        eprintln!("unknown mode {mode}");
        std::process::exit(2);
    };
    let Ok(seed) = seed.parse::<u64>() else {
        eprintln!("the seed must be a number, not {seed}");
        std::process::exit(2);
    };
    let bytes = gen::module_for(seed, mode);
    match wasmprinter::print_bytes(&bytes) {
        Ok(text) => println!("{text}"),
        Err(e) => {
            eprintln!("seed {seed} made a module that does not print as text: {e:#}");
            std::process::exit(1);
        }
    }
}
