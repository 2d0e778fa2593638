//! Listings of small modules on both targets: operators, their instructions, filtering,
//! summaries and errors.

use wjit::{CodeListing, Config, Engine, Target};
use wjit_explore::{disassembly, select, summary, ExploreError, FuncSelector, ListingOptions};

const MODULE: &str = r#"(module
  (import "env" "log" (func $log (param i32)))
  (func $add (export "plus") (param i32 i32) (result i32)
    (i32.add (local.get 0) (local.get 1)))
  (func (export "anon") (param i64) (result i64)
    (i64.mul (local.get 0) (local.get 0)))
  (func $div (param i32 i32) (result i32)
    (call $log (local.get 0))
    (i32.div_u (local.get 0) (local.get 1))))"#;

fn listing(target: Target) -> CodeListing {
    let engine = Engine::new(&Config::new()).unwrap();
    CodeListing::compile(&engine, MODULE, target).unwrap()
}

fn only(func: &str) -> ListingOptions {
    ListingOptions {
        func: Some(func.parse().unwrap()),
        ..ListingOptions::default()
    }
}

/// The mnemonics listed under the first operator line whose text starts with `op`.
fn mnemonics_under(listing: &str, op: &str) -> Vec<String> {
    let mut lines = listing.lines().skip_while(|l| {
        // Operator lines: `  0x0024  i32.add`.
        let text = l.trim_start();
        !(text.starts_with("0x") && text.split_whitespace().nth(1) == Some(op))
    });
    assert!(lines.next().is_some(), "no `{op}` line in:\n{listing}");
    lines
        .take_while(|l| {
            let text = l.trim_start();
            text.split_once(':')
                .is_some_and(|(at, _)| at.bytes().all(|b| b.is_ascii_hexdigit()))
        })
        .map(|l| {
            l.split(':')
                .nth(1)
                .unwrap()
                .split_whitespace()
                .next()
                .unwrap()
                .to_string()
        })
        .collect()
}

#[test]
fn i32_add_becomes_an_add_on_both_targets() {
    for target in [Target::X86_64, Target::Aarch64] {
        let text = disassembly(&listing(target), &ListingOptions::default()).unwrap();
        let add = mnemonics_under(&text, "i32.add");
        assert!(add.iter().any(|m| m == "add"), "{target}: {add:?}\n{text}");
        let mul = mnemonics_under(&text, "i64.mul");
        let expected = if target == Target::X86_64 {
            "imul"
        } else {
            "mul"
        };
        assert!(
            mul.iter().any(|m| m == expected),
            "{target}: {mul:?}\n{text}"
        );
        let div = mnemonics_under(&text, "i32.div_u");
        let expected = if target == Target::X86_64 {
            "div"
        } else {
            "udiv"
        };
        assert!(
            div.iter().any(|m| m == expected),
            "{target}: {div:?}\n{text}"
        );
        // Headers, the prologue's frame set-up and the trap stubs.
        assert!(
            text.contains(";; function 1 add (export \"plus\")"),
            "{text}"
        );
        assert!(text.contains(&format!("bytes of {target} code")), "{text}");
        let frame = if target == Target::X86_64 {
            "push"
        } else {
            "stp"
        };
        assert!(mnemonics_under_title(&text, ";; prologue").contains(&frame.to_string()));
        assert!(text.contains(";; out of line: trap stubs"), "{text}");
        assert!(
            text.contains(";; module: 4 functions (3 defined, 1 imported)"),
            "{text}"
        );
    }
}

/// The mnemonics under a `;; ...` title line.
fn mnemonics_under_title(listing: &str, title: &str) -> Vec<String> {
    let mut lines = listing.lines().skip_while(|l| l.trim() != title);
    assert!(lines.next().is_some(), "no {title} in:\n{listing}");
    lines
        .take_while(|l| !l.trim_start().starts_with("0x") && !l.trim_start().starts_with(";;"))
        .filter_map(|l| {
            l.split(':')
                .nth(1)?
                .split_whitespace()
                .next()
                .map(String::from)
        })
        .collect()
}

#[test]
fn instruction_bytes_are_shown_on_request() {
    let l = listing(Target::Aarch64);
    let options = ListingOptions {
        bytes: true,
        ..only("add")
    };
    let text = disassembly(&l, &options).unwrap();
    let code = l.function(1).unwrap().code();
    // The first instruction (`stp x29, x30, ...`) with its four bytes.
    let first: Vec<String> = code[..4].iter().map(|b| format!("{b:02x}")).collect();
    assert!(text.contains(&format!("0:  {}", first.join(" "))), "{text}");
}

#[test]
fn one_function_by_index_name_or_export() {
    let l = listing(Target::host());
    for (selector, index) in [
        ("1", 1),
        ("add", 1),
        ("$add", 1),
        ("plus", 1),
        ("anon", 2),
        ("div", 3),
        ("3", 3),
    ] {
        let picked = select(&l, Some(&selector.parse().unwrap())).unwrap();
        assert_eq!(picked.len(), 1, "{selector}");
        assert_eq!(picked[0].index(), index, "{selector}");
        let text = disassembly(&l, &only(selector)).unwrap();
        assert_eq!(text.matches(";; function ").count(), 1, "{text}");
        assert!(text.contains(&format!(";; function {index} ")), "{text}");
    }
    assert_eq!(select(&l, None).unwrap().len(), 3);
}

#[test]
fn bad_selections_are_errors_that_say_what_exists() {
    let l = listing(Target::host());
    match disassembly(&l, &only("0")) {
        Err(ExploreError::Imported { index: 0, name }) => assert_eq!(name, "env.log"),
        other => panic!("{other:?}"),
    }
    for missing in ["4", "nope"] {
        let err = disassembly(&l, &only(missing)).unwrap_err();
        let text = err.to_string();
        assert!(matches!(err, ExploreError::NoSuchFunction { .. }), "{text}");
        assert!(
            text.contains(missing) && text.contains("1..=3") && text.contains("`add`"),
            "{text}"
        );
        assert!(summary(&l, &only(missing)).is_err());
    }
}

#[test]
fn summary_lists_sizes_per_function() {
    let l = listing(Target::Aarch64);
    let text = summary(&l, &ListingOptions::default()).unwrap();
    for f in l.functions() {
        let row = format!(
            "{} {:>10} {:>10}",
            f.index(),
            f.body_range().len(),
            f.code().len()
        );
        assert!(text.contains(&row), "{row:?} in\n{text}");
    }
    assert!(text.contains("(export \"anon\")"), "{text}");
    assert!(
        text.contains(&format!("-> {} bytes of aarch64 code", l.code_size())),
        "{text}"
    );
    assert!(!text.contains("i32.add"), "no disassembly: {text}");
    let one = summary(&l, &only("div")).unwrap();
    assert_eq!(one.lines().count(), 3, "{one}");
}

#[test]
fn invalid_modules_are_compile_errors() {
    let engine = Engine::new(&Config::new()).unwrap();
    let bad = "(module (func (param i32) (result i64) (local.get 0)))";
    let err = CodeListing::compile(&engine, bad, Target::Aarch64).unwrap_err();
    let text = ExploreError::from(err).to_string();
    assert!(
        text.contains("function 0") && text.contains("offset 0x"),
        "{text}"
    );
}

#[test]
fn selectors_parse() {
    assert_eq!(
        "12".parse::<FuncSelector>().unwrap(),
        FuncSelector::Index(12)
    );
    assert_eq!(
        "$f".parse::<FuncSelector>().unwrap(),
        FuncSelector::Name("f".into())
    );
    assert_eq!(
        "+1".parse::<FuncSelector>().unwrap(),
        FuncSelector::Name("+1".into())
    );
    assert_eq!(
        "f1".parse::<FuncSelector>().unwrap(),
        FuncSelector::Name("f1".into())
    );
}
