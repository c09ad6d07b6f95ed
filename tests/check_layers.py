#!/usr/bin/env python3
"""Fails when a file in src/<module>/ includes a header of a module above it.

The allowed edges mirror src/CMakeLists.txt (DESIGN.md: dependencies only point downwards).
"""
import pathlib
import re
import sys

ALLOWED = {
    "core": set(),
    "io": {"core"},
    "quant": {"core"},
    "kernels": {"core", "quant"},
    "jinja": {"core"},
    "tokenizer": {"core", "io", "jinja"},
    "data": {"core", "io", "tokenizer", "jinja"},
    "model": {"core", "io", "quant", "kernels"},
    "train": {"core", "io", "quant", "kernels", "jinja", "tokenizer", "data", "model"},
    "server": {"core", "io", "quant", "kernels", "jinja", "tokenizer", "data", "model", "train"},
    "cli": {"core", "io", "quant", "kernels", "jinja", "tokenizer", "data", "model", "train", "server"},
}
INCLUDE = re.compile(r'^\s*#\s*include\s+"([a-z_]+)/')


def main(src: pathlib.Path) -> int:
    bad = []
    for f in sorted(src.rglob("*")):
        if f.suffix not in (".h", ".cpp", ".cu", ".cuh"):
            continue
        module = f.relative_to(src).parts[0]
        if module not in ALLOWED:
            continue
        for n, line in enumerate(f.read_text(encoding="utf-8").splitlines(), 1):
            m = INCLUDE.match(line)
            if m and m.group(1) != module and m.group(1) not in ALLOWED[module]:
                bad.append(f"{f}:{n}: {module}/ must not include {m.group(1)}/ (upward dependency)")
    for b in bad:
        print(b)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main(pathlib.Path(sys.argv[1])))
