#!/usr/bin/env python3
"""Writes synthetic modules, one per code pattern, to measure what each construct costs
the compiler: `python3 benches/patterns/make.py DIR`, then
`target/release/examples/compile_phases DIR/*.wat` (compile ns/op column, or divide the
emit column by the pattern count printed here to get the cost of one pattern).

Each module has FUNCS functions of one i32 parameter and four i32 locals whose body is the
pattern repeated REPS times. `empty` holds the per-function fixed cost.
"""
import os
import sys

FUNCS = 2000
REPS = 100

PATTERNS = {
    "empty": "",
    # local.get, i32.const, i32.add, local.set
    "alu": "local.get 0 i32.const 1 i32.add local.set 1 ",
    "load": "local.get 0 i32.load offset=4 local.set 1 ",
    "call": "local.get 0 call 0 local.set 1 ",
    # a forward branch out of a block that changes nothing
    "block_br_if": "block local.get 0 br_if 0 end ",
    # ... where the branch and the fall-through disagree about a local
    "block_br_if_set": "block local.get 0 local.set 1 local.get 0 br_if 0 end ",
    "if_end": "local.get 0 if local.get 0 local.set 1 end ",
    "if_else": "local.get 0 if local.get 0 local.set 1 else local.get 1 local.set 2 end ",
    "loop": "loop local.get 0 i32.const 1 i32.sub local.tee 0 br_if 0 end ",
}


def module(pattern: str) -> str:
    body = pattern * REPS
    funcs = "".join(
        f"(func (param i32) (result i32) (local i32 i32 i32 i32) {body} local.get 0)\n"
        for _ in range(FUNCS)
    )
    return f"(module (memory 1)\n{funcs})\n"


def main() -> None:
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    for name, pattern in PATTERNS.items():
        with open(os.path.join(out, f"{name}.wat"), "w") as f:
            f.write(module(pattern))
        print(f"{name}: {FUNCS * REPS if pattern else 0} patterns")


if __name__ == "__main__":
    main()
