#!/usr/bin/env python3
"""Writes docs/getting-started.md section 2 out as a crate: its Cargo.toml dependencies and its
main.rs, exactly as the guide shows them, with only the thinger-std line pointed at this
checkout. Usage: getting-started-crate.py REPO_ROOT OUT_DIR"""
import pathlib
import re
import sys

repo, out = pathlib.Path(sys.argv[1]).resolve(), pathlib.Path(sys.argv[2])
guide = (repo / "docs/getting-started.md").read_text()
section = guide.split("## 2. ", 1)[1].split("\n## ", 1)[0]
blocks = re.findall(r"```(\S*)\n(.*?)```", section, re.S)
toml = next(body for lang, body in blocks if lang == "toml")
main = next(body for lang, body in blocks if lang.startswith("rust"))
deps, n = re.subn(r"(?m)^thinger-std = .*$", f'thinger-std = {{ path = "{repo}/thinger-std" }}', toml)
if n != 1:
    sys.exit("docs/getting-started.md section 2: no thinger-std dependency line")
(out / "src").mkdir(parents=True, exist_ok=True)
(out / "Cargo.toml").write_text(
    '[package]\nname = "getting-started"\nversion = "0.1.0"\nedition = "2024"\npublish = false\n\n'
    + deps + "\n[workspace]\n")
(out / "src/main.rs").write_text(main)
print(f"wrote {out}/Cargo.toml and {out}/src/main.rs from docs/getting-started.md section 2")
