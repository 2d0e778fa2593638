//! The runtime crate's floors (see the README's design section): every `crate::`/`super::`
//! path in a source file must point to a file of the same floor or a lower one, and no two
//! files may import each other, directly or through others.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// The floor of a module path (`vm::entry`, `store`, ...).
fn floor(module: &str) -> u32 {
    let top = module.split("::").next().unwrap_or("");
    match top {
        "sys" => 0,
        "error" | "types" | "limits" | "profiling" => 1,
        "vm" => 2,
        "linker" => 4,
        "lib" => 5,
        _ => 3,
    }
}

fn collect(dir: &Path, prefix: &str, out: &mut BTreeMap<String, String>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_stem().unwrap().to_string_lossy().to_string();
        if path.is_dir() {
            collect(&path, &format!("{prefix}{name}::"), out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            let module = if name == "mod" {
                prefix.trim_end_matches("::").to_string()
            } else {
                format!("{prefix}{name}")
            };
            out.insert(module, std::fs::read_to_string(&path).unwrap());
        }
    }
}

/// The module paths each source file refers to, resolved to the longest known module.
fn edges(files: &BTreeMap<String, String>) -> BTreeMap<String, BTreeSet<String>> {
    let mut result = BTreeMap::new();
    for (module, src) in files {
        let mut targets = BTreeSet::new();
        for kind in ["crate::", "super::"] {
            let mut from = 0;
            while let Some(at) = src[from..].find(kind) {
                let start = from + at + kind.len();
                from = start;
                let path: String = src[start..]
                    .chars()
                    .take_while(|c| {
                        c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '_' || *c == ':'
                    })
                    .collect();
                let full = if kind == "super::" {
                    // `super` of module `a::b` is `a`; of a top-level module, the crate root.
                    match module.rsplit_once("::") {
                        Some((parent, _)) => format!("{parent}::{path}"),
                        None => path.clone(),
                    }
                } else {
                    path.clone()
                };
                let parts: Vec<&str> = full.split("::").filter(|p| !p.is_empty()).collect();
                let target = (1..=parts.len())
                    .rev()
                    .map(|i| parts[..i].join("::"))
                    .find(|m| files.contains_key(m));
                if let Some(t) = target {
                    if &t != module && !module.starts_with(&format!("{t}::")) {
                        targets.insert(t);
                    }
                }
            }
        }
        result.insert(module.clone(), targets);
    }
    result
}

#[test]
fn runtime_floors_point_down_and_files_form_no_cycle() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = BTreeMap::new();
    collect(&src, "", &mut files);
    files.remove("lib").expect("lib.rs is read");
    let graph = edges(&files);
    let mut upward = Vec::new();
    for (from, targets) in &graph {
        for to in targets {
            if floor(to) > floor(from) {
                upward.push(format!(
                    "{from} (floor {}) -> {to} (floor {})",
                    floor(from),
                    floor(to)
                ));
            }
        }
    }
    assert!(
        upward.is_empty(),
        "imports pointing up a floor:\n{}",
        upward.join("\n")
    );

    // Depth-first search for a cycle.
    fn visit<'a>(
        node: &'a str,
        graph: &'a BTreeMap<String, BTreeSet<String>>,
        state: &mut BTreeMap<&'a str, u8>,
        stack: &mut Vec<&'a str>,
    ) -> Option<Vec<String>> {
        state.insert(node, 1);
        stack.push(node);
        for next in &graph[node] {
            match state.get(next.as_str()) {
                Some(1) => {
                    let at = stack.iter().position(|n| *n == next).unwrap_or(0);
                    let mut cycle: Vec<String> =
                        stack[at..].iter().map(|s| s.to_string()).collect();
                    cycle.push(next.clone());
                    return Some(cycle);
                }
                Some(_) => {}
                None => {
                    if let Some(c) = visit(next, graph, state, stack) {
                        return Some(c);
                    }
                }
            }
        }
        stack.pop();
        state.insert(node, 2);
        None
    }
    let mut state = BTreeMap::new();
    for node in graph.keys() {
        if !state.contains_key(node.as_str()) {
            if let Some(cycle) = visit(node, &graph, &mut state, &mut Vec::new()) {
                panic!("import cycle: {}", cycle.join(" -> "));
            }
        }
    }
    // The check saw the files it is about.
    for expected in [
        "vm::entry",
        "vm::builtins",
        "store",
        "module::parse",
        "linker",
        "sys::signals",
    ] {
        assert!(graph.contains_key(expected), "{expected} not found");
    }
}
