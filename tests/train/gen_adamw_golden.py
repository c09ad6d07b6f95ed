#!/usr/bin/python3
"""Writes tests/fixtures/train/adamw_golden.json: ten optimizer steps of torch.optim.AdamW
(weight decay, bias correction) with torch.nn.utils.clip_grad_norm_ before each step, on one
small parameter vector with fixed gradients, for tests/kernels/adamw_golden_test.cpp.

Precision: float32 throughout (parameters, gradients, moments), as torch.optim.AdamW runs on
float32 parameters and as tpro keeps LoRA weights and moments; hyper-parameters are Python
floats, as torch's single-tensor AdamW uses them. foreach=False: the plain per-tensor loop.
The gradients mix steps whose global norm is above max_grad_norm (clipped) and below it (not),
the learning rate changes per step (as a scheduler would set it), and element 0 always has a
zero gradient (only weight decay and eps act on it).

Run with Debian's python3-torch:  /usr/bin/python3 tests/train/gen_adamw_golden.py
"""
import json
import pathlib
import re

import torch

N = 37  # not a multiple of any SIMD width
STEPS = 10
LR0, BETAS, EPS, WEIGHT_DECAY, MAX_NORM = 1e-2, (0.9, 0.999), 1e-8, 0.1, 1.0
# Per-step gradient scale: norms of about 6 * scale, so 0.5 and 1.0 are clipped, the rest not.
SCALES = [0.05, 0.5, 0.02, 1.0, 0.1, 0.03, 0.5, 0.08, 0.01, 0.4]


def floats(t):
    # repr of the float32 value as a double: parses back to the same float32.
    return [float(x) for x in t.detach().to(torch.float32).reshape(-1).tolist()]


def main():
    gen = torch.Generator().manual_seed(1234)
    p0 = torch.randn(N, generator=gen, dtype=torch.float32) * 0.5
    param = torch.nn.Parameter(p0.clone())
    opt = torch.optim.AdamW([param], lr=LR0, betas=BETAS, eps=EPS, weight_decay=WEIGHT_DECAY, foreach=False)
    steps = []
    for s in range(STEPS):
        grad = torch.randn(N, generator=gen, dtype=torch.float32) * SCALES[s]
        grad[0] = 0.0
        lr = LR0 * (1.0 - s / 20.0)
        for group in opt.param_groups:
            group["lr"] = lr
        param.grad = grad.clone()
        norm = float(torch.nn.utils.clip_grad_norm_([param], MAX_NORM))
        opt.step()
        state = opt.state[param]
        steps.append({
            "lr": lr,
            "grad": floats(grad),
            "grad_norm": norm,
            "clipped": norm > MAX_NORM,
            "param": floats(param),
            "m": floats(state["exp_avg"]),
            "v": floats(state["exp_avg_sq"]),
        })
    out = {
        "generator": "tests/train/gen_adamw_golden.py (torch " + torch.__version__ + ", float32)",
        "n": N,
        "beta1": BETAS[0],
        "beta2": BETAS[1],
        "eps": EPS,
        "weight_decay": WEIGHT_DECAY,
        "max_grad_norm": MAX_NORM,
        "param0": floats(p0),
        "steps": steps,
    }
    path = pathlib.Path(__file__).resolve().parent.parent / "fixtures" / "train" / "adamw_golden.json"
    text = json.dumps(out, indent=1)
    text = re.sub(r"\[\s*([-+0-9.e,\s]+?)\s*\]", lambda m: "[" + ", ".join(m.group(1).split()).replace(",,", ",") + "]", text)
    path.write_text(text + "\n")
    print(f"wrote {path}: {STEPS} steps, clipped at", [i + 1 for i, s in enumerate(steps) if s["clipped"]])


if __name__ == "__main__":
    main()
