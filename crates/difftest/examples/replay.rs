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
    let Some(mode) = Mode::parse(mode) else {
        usage_error(format!("unknown mode {mode}"));
    };
    let Ok(seed) = seed.parse::<u64>() else {
        usage_error(format!("the seed must be a number, not {seed}"));
    };
    let bytes = match wat::parse_file(file) {
        Ok(bytes) => bytes,
        Err(e) => usage_error(format!("cannot read the module {file}: {e}")),
    };
    let mut s = gen::settings(seed, mode);
    for o in overrides {
        match o.split_once('=') {
            Some(("lazy", v)) => s.lazy = v == "1",
            Some(("epoch", v)) => s.epoch = v == "1",
            Some(("fuel", "off")) => s.fuel = None,
            Some(("fuel", v)) => match v.parse() {
                Ok(fuel) => s.fuel = Some(fuel),
                Err(_) => usage_error(format!("fuel must be a number or off, not {v}")),
            },
            _ => usage_error(format!("unknown setting {o}")),
        }
    }
    let r = check_module(&bytes, &s, threads_for(mode), gen::arg_stream(seed, mode));
    println!("{s:?}\ncalls {}: {:?}", r.calls, r.divergence);
}

/// Says what is wrong with the command line and exits with status 2.
fn usage_error(message: String) -> ! {
    eprintln!("{message}");
    std::process::exit(2);
}
