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
    # kernels/backend.h is the device-neutral interface; kernels/cpu/ one device behind it,
    # reached only through the backend registry (kernels/backend.cpp).
    "kernels": {"core", "quant", "kernels/cpu"},
    "kernels/cpu": {"core", "quant", "kernels"},
    "jinja": {"core"},
    "tokenizer": {"core", "io", "jinja"},
    "data": {"core", "io", "tokenizer", "jinja"},
    "model": {"core", "quant", "kernels"},
    "formats": {"core", "io", "quant", "kernels", "model"},
    "train": {"core", "io", "quant", "kernels", "jinja", "tokenizer", "data", "model", "formats"},
    "server": {"core", "io", "quant", "kernels", "jinja", "tokenizer", "data", "model", "formats", "train"},
    "cli": {"core", "io", "quant", "kernels", "jinja", "tokenizer", "data", "model", "formats", "train", "server"},
}
# Modules that read and write no file: the file formats live in formats/ and io/.
NO_FILES = {"model"}
FILE_ACCESS = re.compile(r"\b(?:(?:fopen|open|mmap)\s*\(|[io]?fstream\b|filesystem\b|read_file\b|write_file\w*|fs::)")
INCLUDE = re.compile(r'^\s*#\s*include\s+"([a-z_]+)/([a-z_]+/)?')


def module_of(parts):
    """The module a path inside src/ belongs to: its first folder, or kernels/<device>."""
    if parts[0] == "kernels" and len(parts) > 2:
        return "kernels/" + parts[1]
    return parts[0]


def main(src: pathlib.Path) -> int:
    bad = []
    for f in sorted(src.rglob("*")):
        if f.suffix not in (".h", ".cpp", ".cu", ".cuh"):
            continue
        module = module_of(f.relative_to(src).parts)
        if module not in ALLOWED:
            continue
        for n, line in enumerate(f.read_text(encoding="utf-8").splitlines(), 1):
            m = INCLUDE.match(line)
            code = line.split("//", 1)[0]
            hit = FILE_ACCESS.search(code) if module in NO_FILES else None
            if hit:
                bad.append(f"{f}:{n}: {module}/ must not access files ({hit.group(0)}; hint: that belongs in formats/)")
            if not m:
                continue
            target = module_of([m.group(1)] + ([m.group(2)[:-1], "x.h"] if m.group(2) else ["x.h"]))
            if target != module and target not in ALLOWED[module]:
                bad.append(f"{f}:{n}: {module}/ must not include {target}/ (upward dependency, or a device's kernels outside kernels/)")
    for b in bad:
        print(b)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main(pathlib.Path(sys.argv[1])))
