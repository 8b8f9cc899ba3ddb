#!/usr/bin/env python3
"""Fails on an import cycle between the modules of a crate.

Usage: module-cycles.py CRATE_SRC_DIR...

A module is a file (`a.rs`, `a/mod.rs`, `a/b.rs`); module A depends on B when A names
`crate::B…` or (from inside a parent) `super::B…`/`self::B` paths. Dependencies of a module
on its own descendants (a parent using its children) are allowed; a child using its parent
(`super::` items defined in the parent file itself) counts as an edge to the parent.
"""
import os
import re
import sys

PATH = re.compile(r"\b(crate|super)((?:::[A-Za-z_][A-Za-z0-9_]*)+)")
GROUP = re.compile(r"\b(crate|super)::\{([^}]*)\}")


def modules(src):
    """Module path (tuple) -> file."""
    out = {}
    for root, _, files in os.walk(src):
        for f in files:
            if not f.endswith(".rs"):
                continue
            rel = os.path.relpath(os.path.join(root, f), src)[:-3].split(os.sep)
            if rel[-1] in ("mod", "lib", "main"):
                rel = rel[:-1]
            out[tuple(rel)] = os.path.join(root, f)
    return out


def strip(text):
    text = re.sub(r"//[^\n]*", "", text)
    return re.sub(r"/\*.*?\*/", "", text, flags=re.S)


def resolve(mods, base, names):
    """The longest module prefix of base + names."""
    path = tuple(base) + tuple(names)
    while path and path not in mods:
        path = path[:-1]
    return path


def edges(mods):
    graph = {m: set() for m in mods}
    for mod, file in mods.items():
        text = strip(open(file, encoding="utf-8").read())
        refs = []
        for kind, group in GROUP.findall(text):
            for item in group.split(","):
                item = item.strip().split(" as ")[0]
                if item:
                    refs.append((kind, ["" + x for x in item.split("::") if x]))
        for kind, tail in PATH.findall(text):
            refs.append((kind, [x for x in tail.split("::") if x]))
        is_dir = os.path.basename(file) == "mod.rs"
        parent = mod if is_dir else mod[:-1]
        for kind, names in refs:
            base = () if kind == "crate" else (mod[:-1] if not is_dir else mod[:-1])
            if kind == "super":
                base = mod[:-1]
            target = resolve(mods, base, names)
            if target == mod or target[: len(mod)] == mod:
                continue  # itself or its own descendants
            graph[mod].add(target)
        del parent
    return graph


def cycles(graph):
    found, state, stack = [], {}, []

    def visit(n):
        state[n] = 1
        stack.append(n)
        for m in sorted(graph[n]):
            if state.get(m) == 1:
                found.append(stack[stack.index(m):] + [m])
            elif m not in state:
                visit(m)
        stack.pop()
        state[n] = 2

    for n in sorted(graph):
        if n not in state:
            visit(n)
    return found


def main():
    failed = False
    for src in sys.argv[1:]:
        graph = edges(modules(src))
        found = cycles(graph)
        name = lambda m: "::".join(m) or "crate"
        for c in found:
            failed = True
            print(f"{src}: import cycle: {' -> '.join(name(m) for m in c)}")
        if not found:
            print(f"{src}: no import cycles between {len(graph)} modules")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
