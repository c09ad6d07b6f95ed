#!/usr/bin/python3
"""bench/compare_builds.py -- tpro against another tpro build, same shapes, same cores, one run.

Runs two tpro-bench binaries (e.g. the main branch before and after a refactor) alternately,
--rounds times per case (a shared VM's core speed drifts; alternating exposes both to the same
drift), and prints tokens/s of each round, the best of each, and the ratio new/old.

Usage: bench/compare_builds.py OLD_BUILD_DIR NEW_BUILD_DIR [--rounds 3] [--cases b4x256] [--dtypes f32,bf16]
"""
import argparse
import json
import os
import subprocess
import sys


def tok_s(bench, config, dtype, b, t, steps, warmup):
    out = subprocess.run([bench, "--config", config, "--dtype", dtype, "--batch", str(b), "--seq", str(t),
                          "--steps", str(steps), "--warmup", str(warmup)], capture_output=True, text=True)
    if out.returncode != 0:
        sys.exit(f"{bench} failed:\n{out.stdout[-2000:]}\n{out.stderr[-2000:]}")
    for line in out.stdout.splitlines():
        if line.startswith("RESULT "):
            return json.loads(line[7:])["tokens_per_s"]
    sys.exit(f"no RESULT line from {bench}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("old")
    ap.add_argument("new")
    ap.add_argument("--config", default="smollm2-135m")
    ap.add_argument("--cases", default="b4x256")
    ap.add_argument("--dtypes", default="f32,bf16")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--warmup", type=int, default=2)
    a = ap.parse_args()
    bins = {k: os.path.join(d, "tpro-bench") for k, d in (("old", a.old), ("new", a.new))}
    for case in a.cases.split(","):
        b, t = (int(x) for x in case[1:].split("x"))
        for dtype in a.dtypes.split(","):
            runs = {"old": [], "new": []}
            for r in range(a.rounds):
                for k in ("old", "new") if r % 2 == 0 else ("new", "old"):
                    runs[k].append(tok_s(bins[k], a.config, dtype, b, t, a.steps, a.warmup))
            best = {k: max(v) for k, v in runs.items()}
            print(f"{a.config} {case} {dtype}: old {best['old']:.0f} tok/s {[round(x) for x in runs['old']]}, "
                  f"new {best['new']:.0f} tok/s {[round(x) for x in runs['new']]}, new/old {best['new'] / best['old']:.3f}")


if __name__ == "__main__":
    main()
