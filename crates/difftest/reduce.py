#!/usr/bin/env python3
"""Cuts a divergent module's text down while it still diverges the same way.

usage: reduce.py MODE SEED IN.wat OUT.wat [OVERRIDE ...]

Prints IN.wat's divergence class with the replay example (build it first:
`cargo build --release -p difftest --example replay`), then deletes what it can while the
replay reports the same class: whole functions, whole blocks, block wrappers, `else` arms,
single lines and pairs of lines, until nothing more goes. OVERRIDEs are passed to replay
(e.g. `fuel=off epoch=0 lazy=0` for a deterministic run). Writes the smallest text so far
to OUT.wat as it goes. Print the seed's module as text first:
`cargo run --release -p difftest --example print -- MODE SEED > IN.wat`.
"""
import os
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
REPLAY = os.path.join(HERE, "..", "..", "target", "release", "examples", "replay")


def main():
    if len(sys.argv) < 5:
        sys.exit(__doc__)
    mode, seed, src, dst, *overrides = sys.argv[1:]
    cand_path = os.path.join(tempfile.mkdtemp(), "cand.wat")

    def divergence(lines):
        with open(cand_path, "w") as f:
            f.write("\n".join(lines))
        try:
            p = subprocess.run([REPLAY, mode, seed, cand_path, *overrides],
                               capture_output=True, text=True, timeout=20)
        except subprocess.TimeoutExpired:
            return None
        if p.returncode != 0 or 'Some(("' not in p.stdout:
            return None
        return p.stdout.split('Some(("', 1)[1].split('"', 1)[0]

    lines = open(src).read().split("\n")
    wanted = divergence(lines)
    if wanted is None:
        sys.exit(f"{src} does not diverge")
    print(f"class {wanted!r}, {len(lines)} lines", flush=True)

    def keeps(cand):
        return divergence(cand) == wanted

    changed = True
    while changed:
        changed = False
        for step in (functions, blocks, runs_of(1), runs_of(2)):
            lines, c = step(lines, keeps)
            changed |= c
        print(f"{len(lines)} lines", flush=True)
        with open(dst, "w") as f:
            f.write("\n".join(lines))


def first_word(line):
    return line.strip().split(" ")[0]


def functions(lines, keeps):
    changed, i = False, 0
    while i < len(lines):
        if lines[i].startswith("  (func"):
            j = i + 1
            while j < len(lines) and not lines[j].startswith("  ("):
                j += 1
            cand = lines[:i] + lines[j:]
            if keeps(cand):
                lines, changed = cand, True
                continue
        i += 1
    return lines, changed


def matching_end(lines, i):
    """The line of the `end` closing the block opened on line i, and of its `else` if any."""
    depth, other = 0, None
    for j in range(i, len(lines)):
        w = first_word(lines[j])
        if w in ("block", "loop", "if"):
            depth += 1
        elif w == "end":
            depth -= 1
            if depth == 0:
                return j, other
        elif w == "else" and depth == 1:
            other = j
        if j > i and lines[j].startswith("  (func"):
            break
    return None, None


def blocks(lines, keeps):
    changed, i = False, 0
    while i < len(lines):
        if first_word(lines[i]) in ("block", "loop", "if"):
            end, other = matching_end(lines, i)
            if end is not None:
                cands = [lines[:i] + lines[end + 1:]]
                if other is None:
                    cands.append(lines[:i] + lines[i + 1:end] + lines[end + 1:])
                else:
                    cands.append(lines[:other] + lines[end:])
                    cands.append(lines[:i + 1] + lines[other + 1:])
                kept = next((c for c in cands if keeps(c)), None)
                if kept is not None:
                    lines, changed = kept, True
                    continue
        i += 1
    return lines, changed


def runs_of(n):
    def step(lines, keeps):
        changed, i = False, 0
        while i + n <= len(lines):
            cand = lines[:i] + lines[i + n:]
            if keeps(cand):
                lines, changed = cand, True
                continue
            i += 1
        return lines, changed
    return step


if __name__ == "__main__":
    main()
