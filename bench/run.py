#!/usr/bin/python3
"""bench/run.py -- tpro vs the PyTorch reference, same shapes, same cores, one run.

For each case it runs build/tpro-bench and ../shared/bench/ref_lora.py (Debian's
python3-torch) in fresh processes, alternating them for --rounds rounds (on a shared VM the
speed of the cores drifts by up to 2x within minutes; alternating exposes both to the same
drift), and prints tokens/s of both (the best round of each, and every round), the ratio,
the fraction of the FLOP-bound ceiling and the peak RSS. The ceiling uses the FLOP model of
ref_lora.py (4*N_matmul + attention + LoRA per token) at the sustained GEMM rate that
tpro-bench --gemm measures right before the case: f32 for f32, bf16 (AMX / AVX512-BF16) for
bf16.

PyTorch runs in the environment the issue's anchor used (OPENBLAS_CORETYPE unset,
GLIBC_TUNABLES keeping freed memory, OMP_WAIT_POLICY=PASSIVE) and, as a second reference, with
OPENBLAS_CORETYPE naming the best OpenBLAS core for this CPU (SkylakeX with AVX-512, else
Haswell): Debian's torch does its f32 matmuls in OpenBLAS 0.3.21, whose dynamic dispatch falls
back to SSE3 (Prescott) kernels on CPUs newer than it knows. Ratios are quoted against the
faster of the two. tpro runs as a user would run it.

Usage: bench/run.sh [--steps 5] [--warmup 2] [--rounds 2] [--cases b4x256,b1x1024] [--dtypes f32,bf16]
"""
import argparse
import datetime
import json
import os
import platform
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def result_line(out):
    for line in out.splitlines():
        if line.startswith("RESULT "):
            return json.loads(line[len("RESULT "):])
    raise RuntimeError("no RESULT line in:\n" + out[-2000:])


def run(cmd, env=None):
    p = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if p.returncode != 0:
        sys.exit(f"command failed ({p.returncode}): {' '.join(cmd)}\n{p.stdout[-2000:]}\n{p.stderr[-2000:]}")
    return p.stdout


def cpu_name():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


def torch_blas(env):
    """The BLAS library Debian's torch loads (libtorch takes whatever libblas.so.3 points to)."""
    probe = ("import json, torch\n"
             "a = torch.ones(64, 64); (a @ a).sum()\n"
             "print(json.dumps(sorted({l.split()[-1] for l in open('/proc/self/maps') if 'blas' in l.lower()})))")
    return json.loads(run(["/usr/bin/python3", "-c", probe], env=env))


def main():
    ap = argparse.ArgumentParser(description="tpro vs PyTorch LoRA training throughput")
    ap.add_argument("--build", default=os.path.join(ROOT, "build"))
    ap.add_argument("--ref", default=os.environ.get("REF_LORA", os.path.join(ROOT, "..", "shared", "bench", "ref_lora.py")))
    ap.add_argument("--config", default="smollm2-135m")
    ap.add_argument("--cases", default="b4x256,b1x1024")
    ap.add_argument("--dtypes", default="f32,bf16")
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=2, help="tpro/PyTorch alternations per case")
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--json", help="also write the results here")
    a = ap.parse_args()
    bench = os.path.join(a.build, "tpro-bench")
    if not os.path.exists(bench):
        sys.exit(f"{bench} not found: build first (cmake --build {a.build} --target tpro-bench)")
    if not os.path.exists(a.ref):
        sys.exit(f"reference script {a.ref} not found (set REF_LORA=/path/to/ref_lora.py)")

    torch_env = dict(os.environ)
    torch_env.pop("OPENBLAS_CORETYPE", None)
    torch_env["OMP_WAIT_POLICY"] = "PASSIVE"
    torch_env["GLIBC_TUNABLES"] = "glibc.malloc.trim_threshold=17179869184:glibc.malloc.mmap_threshold=33554432"
    best_core = "SkylakeX" if "avx512f" in open("/proc/cpuinfo").read() else "Haswell"
    torch_envs = {"unset": torch_env, best_core: dict(torch_env, OPENBLAS_CORETYPE=best_core)}
    # With Debian's reference BLAS (libblas3, what python3-torch gets when OpenBLAS is not
    # installed) torch's f32 matmuls run ~40x slower than the anchor: no comparison then.
    blas = torch_blas(torch_env)
    # libblas.so.3 is the library torch's symbols bind to: it must be OpenBLAS's (LAPACK may map
    # OpenBLAS beside a reference libblas.so.3).
    libblas = [p for p in blas if os.path.basename(p).startswith("libblas.so")]
    if not any("openblas" in p for p in blas) or any("openblas" not in p for p in libblas):
        sys.exit(f"torch's BLAS is not OpenBLAS (mapped: {', '.join(blas)}); the reference would be far slower than the "
                 "issue's anchor. Install it: apt-get install libopenblas0-pthread")
    rows = []
    gemm_seen = {}
    for case in a.cases.split(","):
        b, t = case[1:].split("x")
        for dt in a.dtypes.split(","):
            g = result_line(run([bench, "--gemm"]))
            gemm = g["gemm_bf16_gflops"] if dt == "bf16" else g["gemm_gflops"]
            gemm_seen.setdefault(dt, []).append(gemm)
            tps, refs = [], {k: [] for k in torch_envs}
            for _ in range(a.rounds):
                tps.append(result_line(run([bench, "--config", a.config, "--dtype", dt, "--batch", b, "--seq", t,
                                            "--steps", str(a.steps), "--warmup", str(a.warmup)])))
                for name, env in torch_envs.items():
                    refs[name].append(result_line(run(["/usr/bin/python3", a.ref, "--config", a.config, "--batch",
                                                       b, "--seq", t, "--steps", str(a.steps), "--warmup",
                                                       str(a.warmup), "--threads", str(a.threads), "--dtype",
                                                       "fp32" if dt == "f32" else "bf16"], env=env)))
            tp = max(tps, key=lambda r: r["tokens_per_s"])
            best = {k: max(v, key=lambda r: r["tokens_per_s"]) for k, v in refs.items()}
            torch_core = max(best, key=lambda k: best[k]["tokens_per_s"])
            ref = best[torch_core]
            flops = ref["flops_per_token"]
            ceiling = gemm * 1e9 / flops
            rows.append(dict(case=case, dtype=dt, tpro_tok_s=tp["tokens_per_s"], torch_tok_s=ref["tokens_per_s"],
                             tpro_rounds=[r["tokens_per_s"] for r in tps],
                             torch_rounds={k: [r["tokens_per_s"] for r in v] for k, v in refs.items()},
                             torch_by_core={k: v["tokens_per_s"] for k, v in best.items()}, torch_core=torch_core,
                             ratio=tp["tokens_per_s"] / ref["tokens_per_s"], ceiling_tok_s=ceiling,
                             gemm_gflops=gemm, tpro_ceiling_frac=tp["tokens_per_s"] / ceiling,
                             tpro_rss_mib=max(r["peak_rss_mib"] for r in tps),
                             torch_rss_mib=ref["peak_rss_mib"], tpro_loss=tp["final_loss"],
                             tpro_compute=tp.get("compute")))
            r = rows[-1]
            torch_txt = "; ".join(f"OPENBLAS_CORETYPE={k} {best[k]['tokens_per_s']:.1f} (rounds "
                                  f"{', '.join(f'{x:.0f}' for x in r['torch_rounds'][k])})" for k in torch_envs)
            print(f"{case} {dt}: tpro {r['tpro_tok_s']:.1f} tok/s (rounds "
                  f"{', '.join(f'{x:.0f}' for x in r['tpro_rounds'])}), torch {torch_txt}, ratio {r['ratio']:.2f}x "
                  f"vs the faster, {100 * r['tpro_ceiling_frac']:.0f}% of the {gemm:.0f} GFLOP/s ceiling", flush=True)
    print()
    rates = ", ".join(f"{dt} {min(v):.0f}-{max(v):.0f}" for dt, v in gemm_seen.items())
    print(f"{datetime.date.today()} | {cpu_name()} | {os.cpu_count()} threads | sustained GEMM GFLOP/s {rates} | "
          f"{a.config}, LoRA r=16 on all 7 projections, median of {a.steps} steps after {a.warmup} warm-up, "
          f"best of {a.rounds} alternating rounds")
    print()
    names = list(torch_envs)
    print("| batch x seq | base dtype | tpro tok/s | " + " | ".join(f"PyTorch tok/s ({k})" for k in names) +
          " | tpro / PyTorch (faster) | ceiling tok/s | tpro % of ceiling | tpro peak RSS | PyTorch peak RSS |")
    print("|---" * (8 + len(names)) + "|")
    for r in rows:
        print(f"| {r['case'][1:]} | {r['dtype']} | {r['tpro_tok_s']:.1f} | " +
              " | ".join(f"{r['torch_by_core'][k]:.1f}" for k in names) +
              f" | **{r['ratio']:.2f}x** | {r['ceiling_tok_s']:.0f} | {100 * r['tpro_ceiling_frac']:.0f}% | "
              f"{r['tpro_rss_mib']:.0f} MiB | {r['torch_rss_mib']:.0f} MiB |")
    if a.json:
        with open(a.json, "w") as f:
            json.dump(dict(date=str(datetime.date.today()), cpu=cpu_name(), rows=rows), f, indent=1)


if __name__ == "__main__":
    main()
