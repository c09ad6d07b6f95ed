#!/usr/bin/env python3
"""Fails when a file in src/<module>/ includes a header of a module above it, or when a module
that must not touch files (model/: DESIGN.md, "files on disk" are formats/' job) opens one.

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
    "tokenizer": {"core", "io"},
    "data": {"core", "io", "tokenizer"},
    "model": {"core", "quant", "kernels"},
    "formats": {"core", "io", "quant", "kernels", "model"},
    "train": {"core", "io", "quant", "kernels", "tokenizer", "data", "model", "formats"},
    "server": {"core", "io", "quant", "kernels", "tokenizer", "data", "model", "formats", "train"},
    "cli": {"core", "io", "quant", "kernels", "tokenizer", "data", "model", "formats", "train", "server"},
}
# Modules that read and write no file: the file formats live in formats/ and io/.
NO_FILES = {"model"}
FILE_ACCESS = re.compile(r"\b(?:(?:fopen|open|mmap)\s*\(|[io]?fstream\b|filesystem\b|read_file\b|write_file\w*|fs::)")
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
            code = line.split("//", 1)[0]
            hit = FILE_ACCESS.search(code) if module in NO_FILES else None
            if hit:
                bad.append(f"{f}:{n}: {module}/ must not access files ({hit.group(0)}; hint: that belongs in formats/)")
    for b in bad:
        print(b)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main(pathlib.Path(sys.argv[1])))
