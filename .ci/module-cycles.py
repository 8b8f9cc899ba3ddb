#!/usr/bin/env python3
"""Fails when modules of a crate import each other in a circle.

Every `.rs` file under a crate's `src/` is a module. A path `crate::a::b::…` or
`super::…` written in module M is an edge from M to the deepest module it names. Edges between
a module and its own ancestors or descendants are allowed (a parent re-exports its children,
a child uses its parent's items); all other edges must form no cycle.

Usage: module-cycles.py CRATE_DIR...   (exit 1 and the cycle on failure)
"""
import pathlib
import re
import sys

PATH = re.compile(r"\b(crate|super)((?:::\w+)+)")


def modules(src):
    """Module path (tuple) for every .rs file, binaries and lib roots excluded from paths."""
    out = {}
    for f in src.rglob("*.rs"):
        rel = f.relative_to(src)
        if rel.parts[0] == "bin":
            continue
        parts = list(rel.with_suffix("").parts)
        if parts[-1] in ("mod", "lib", "main"):
            parts = parts[:-1]
        out[tuple(parts)] = f
    return out


def strip_comments(text):
    text = re.sub(r"/\*.*?\*/", "", text, flags=re.S)
    return "\n".join(line.split("//", 1)[0] for line in text.splitlines())


def edges(mods):
    known = set(mods)
    for mod, f in mods.items():
        text = strip_comments(f.read_text())
        for kind, rest in PATH.findall(text):
            segs = [s for s in rest.split("::") if s]
            if kind == "crate":
                base = []
            else:
                # Nested `super::super::`: the regex captured them as segments.
                base = list(mod[:-1])
                while segs and segs[0] == "super":
                    base = base[:-1]
                    segs = segs[1:]
            target = tuple(base)
            for s in segs:
                if target + (s,) in known:
                    target = target + (s,)
                else:
                    break
            yield mod, target


def find_cycle(graph):
    state, stack = {}, []

    def visit(n):
        state[n] = 1
        stack.append(n)
        for m in sorted(graph.get(n, ())):
            if state.get(m) == 1:
                return stack[stack.index(m):] + [m]
            if m not in state:
                c = visit(m)
                if c:
                    return c
        stack.pop()
        state[n] = 2
        return None

    for n in sorted(graph):
        if n not in state:
            c = visit(n)
            if c:
                return c
    return None


def check(crate):
    src = pathlib.Path(crate) / "src"
    mods = modules(src)
    graph = {}
    for a, b in edges(mods):
        n = min(len(a), len(b))
        if a[:n] == b[:n]:
            continue  # ancestor or descendant
        graph.setdefault(a, set()).add(b)
    cycle = find_cycle(graph)
    if cycle:
        names = ["::".join(m) or "crate" for m in cycle]
        print(f"{crate}: import cycle: {' -> '.join(names)}")
        return False
    print(f"{crate}: no import cycles ({len(mods)} modules)")
    return True


ok = all([check(c) for c in sys.argv[1:]])
sys.exit(0 if ok else 1)
