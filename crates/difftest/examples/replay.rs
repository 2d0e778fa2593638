//! Replays one divergence with a seed's settings on a module file (binary or text), so a
//! module can be cut down by hand: `cargo run --release -p difftest --example replay --
//! MODE SEED FILE [lazy=0|1] [fuel=N|off] [epoch=0|1]`.

use difftest::{check_module, gen, threads_for, Mode};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [mode, seed, file, overrides @ ..] = args.as_slice() else {
        eprintln!("usage: replay MODE SEED FILE [lazy=0|1] [fuel=N|off] [epoch=0|1]");
        std::process::exit(2);
    };
    let mode = Mode::parse(mode).expect("mode");
    let seed: u64 = seed.parse().expect("seed");
    let bytes = wat::parse_file(file).expect("module");
    let mut s = gen::settings(seed, mode);
    for o in overrides {
        match o.split_once('=') {
            Some(("lazy", v)) => s.lazy = v == "1",
            Some(("epoch", v)) => s.epoch = v == "1",
            Some(("fuel", "off")) => s.fuel = None,
            Some(("fuel", v)) => s.fuel = Some(v.parse().expect("fuel")),
            _ => panic!("unknown override {o}"),
        }
    }
    let r = check_module(&bytes, &s, threads_for(mode), gen::arg_stream(seed, mode));
    println!("{s:?}\ncalls {}: {:?}", r.calls, r.divergence);
}
