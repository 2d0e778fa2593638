//! Computes `WJIT_BUILD_ID`, a hash of the compiler's and the runtime's sources, which
//! precompiled modules record (`Module::serialize`): machine code, the vmctx layout and the
//! stubs' conventions can change with any source change, not only with the version number,
//! so a file is only loaded by the very build that wrote it.

use std::path::{Path, PathBuf};

fn main() {
    let manifest = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap_or_default());
    let dirs = [manifest.join("src"), manifest.join("../compiler/src")];
    let mut files = Vec::new();
    for dir in &dirs {
        println!("cargo:rerun-if-changed={}", dir.display());
        collect(dir, &mut files);
    }
    files.sort();
    // FNV-1a over each file's path (relative to its root) and contents.
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    let mut feed = |bytes: &[u8]| {
        for &b in bytes {
            hash = (hash ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
        }
    };
    for file in &files {
        let name = dirs
            .iter()
            .find_map(|d| file.strip_prefix(d).ok())
            .unwrap_or(file);
        feed(name.to_string_lossy().as_bytes());
        feed(&std::fs::read(file).unwrap_or_default());
    }
    println!("cargo:rustc-env=WJIT_BUILD_ID={hash:016x}");
}

/// Every `.rs` file under `dir` (none if it does not exist).
fn collect(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            collect(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}
