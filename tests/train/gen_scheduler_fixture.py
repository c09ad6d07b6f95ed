#!/usr/bin/env python3
"""Writes tests/fixtures/train/scheduler_lambdalr.json: the learning rate torch's LambdaLR hands
the optimizer at each update, for every schedule tpro implements.

The lambdas are written here from the Hugging Face transformers (optimization.py) and Training
PRO (custom_scheduler.py) formulas, independently of src/train/scheduler.cpp; torch supplies the
LambdaLR stepping (lr = base_lr * lambda(step) before update `step`). FP_3epoch_raise_hold_fall
follows tpro's reconstruction of its documented shape (see scheduler.cpp).

Run with Debian's python3-torch:  /usr/bin/python3 tests/train/gen_scheduler_fixture.py
"""
import json
import math
import pathlib

import torch


def warm(s, w):
    return float(s) / float(max(1, w))


def hf_linear(s, w, T, **_):
    return warm(s, w) if s < w else max(0.0, float(T - s) / float(max(1, T - w)))


def hf_constant(s, w, T, **_):
    return 1.0


def hf_constant_with_warmup(s, w, T, **_):
    return float(s) / float(max(1.0, w)) if s < w else 1.0


def hf_cosine(s, w, T, num_cycles=0.5, **_):
    if s < w:
        return warm(s, w)
    p = float(s - w) / float(max(1, T - w))
    return max(0.0, 0.5 * (1.0 + math.cos(math.pi * float(num_cycles) * 2.0 * p)))


def hf_cosine_with_restarts(s, w, T, num_cycles=1, **_):
    if s < w:
        return warm(s, w)
    p = float(s - w) / float(max(1, T - w))
    if p >= 1.0:
        return 0.0
    return max(0.0, 0.5 * (1.0 + math.cos(math.pi * ((float(num_cycles) * p) % 1.0))))


def hf_polynomial(s, w, T, lr_init, lr_end=1e-7, power=1.0, **_):
    if s < w:
        return warm(s, w)
    if s > T:
        return lr_end / lr_init
    remaining = 1 - (s - w) / (T - w)
    return ((lr_init - lr_end) * remaining ** power + lr_end) / lr_init


def hf_inverse_sqrt(s, w, T, timescale=None, **_):
    if timescale is None:
        timescale = w or 10_000
    if s < w:
        return warm(s, w)
    shift = timescale - w
    return 1.0 / math.sqrt((s + shift) / timescale)


def cos_tail(s, start, T):
    p = float(s - start) / float(max(1, T - start))
    return max(0.0, 0.5 * (1.0 + math.cos(math.pi * 0.5 * 2.0 * p)))


def fp_low_epoch(s, w, T, E, **_):
    w = min(w, E)
    if s < w:
        return warm(s, w)
    return 1.0 if s < E else cos_tail(s, E, T)


def fp_half_time(s, w, T, E, **_):
    half = T // 2
    w = min(w, half)
    if s < w:
        return warm(s, w)
    return 1.0 if s < half else cos_tail(s, half, T)


def fp_raise_fall(s, w, T, E, **_):
    return cos_tail(s, T // 2, T)


def fp_3epoch(s, w, T, E, **_):
    if s < E:
        return 0.5 * (1.0 - math.cos(math.pi * s / E))
    return 1.0 if s < 2 * E else cos_tail(s, 2 * E, T)


def fp_step_decay(s, w, T, E, **_):
    w = min(w, E)
    if s < w:
        return warm(s, w)
    if s < E:
        return 1.0
    epoch = s // E + 1
    return 1.0 / float(2 ** (epoch - 1))


LAMBDAS = {
    "linear": hf_linear,
    "constant": hf_constant,
    "constant_with_warmup": hf_constant_with_warmup,
    "cosine": hf_cosine,
    "cosine_with_restarts": hf_cosine_with_restarts,
    "polynomial": hf_polynomial,
    "inverse_sqrt": hf_inverse_sqrt,
    "FP_low_epoch_annealing": fp_low_epoch,
    "FP_half_time_annealing": fp_half_time,
    "FP_raise_fall_creative": fp_raise_fall,
    "FP_3epoch_raise_hold_fall": fp_3epoch,
    "FP_step_decay_with_warmup": fp_step_decay,
}

# name, type, base_lr, total_steps, warmup_steps, warmup_ratio, epochs, extra kwargs
CASES = [
    ("linear_w10", "linear", 3e-4, 100, 10, 0.0, 3, {}),
    ("linear_ratio", "linear", 1e-3, 37, 0, 0.1, 1, {}),
    ("linear_w_eq_T", "linear", 2e-4, 8, 8, 0.0, 1, {}),
    ("constant", "constant", 5e-5, 20, 5, 0.0, 1, {}),
    ("constant_with_warmup", "constant_with_warmup", 3e-4, 30, 7, 0.0, 1, {}),
    ("cosine_w5", "cosine", 3e-4, 60, 5, 0.0, 2, {}),
    ("cosine_2cycles", "cosine", 1e-4, 50, 0, 0.0, 1, {"num_cycles": 2.0}),
    ("cosine_restarts_3", "cosine_with_restarts", 3e-4, 64, 4, 0.0, 1, {"num_cycles": 3}),
    ("cosine_restarts_default", "cosine_with_restarts", 3e-4, 30, 0, 0.0, 1, {}),
    ("polynomial_p2", "polynomial", 1e-3, 40, 6, 0.0, 1, {"power": 2.0, "lr_end": 1e-5}),
    ("polynomial_default", "polynomial", 3e-4, 25, 0, 0.0, 1, {}),
    ("inverse_sqrt_w8", "inverse_sqrt", 1e-3, 50, 8, 0.0, 1, {}),
    ("inverse_sqrt_ts", "inverse_sqrt", 1e-3, 40, 4, 0.0, 1, {"timescale": 20}),
    ("FP_low_epoch_3ep", "FP_low_epoch_annealing", 3e-4, 90, 12, 0.0, 3, {}),
    ("FP_low_epoch_warm_clamped", "FP_low_epoch_annealing", 3e-4, 40, 100, 0.0, 2, {}),
    ("FP_half_time", "FP_half_time_annealing", 3e-4, 51, 6, 0.0, 3, {}),
    ("FP_raise_fall_even", "FP_raise_fall_creative", 3e-4, 40, 10, 0.0, 2, {}),
    ("FP_raise_fall_odd", "FP_raise_fall_creative", 3e-4, 31, 0, 0.0, 2, {}),
    ("FP_3epoch", "FP_3epoch_raise_hold_fall", 3e-4, 60, 10, 0.0, 3, {}),
    ("FP_3epoch_5ep", "FP_3epoch_raise_hold_fall", 2e-4, 53, 0, 0.0, 5, {}),
    ("FP_step_decay", "FP_step_decay_with_warmup", 3e-4, 80, 6, 0.0, 4, {}),
]


def run_case(name, kind, base_lr, T, warmup, ratio, epochs, extra):
    w = warmup if warmup > 0 else math.ceil(T * ratio)
    E = math.ceil(T / epochs)
    fn = LAMBDAS[kind]
    kwargs = dict(extra)
    if kind == "polynomial":
        kwargs["lr_init"] = base_lr

    def lam(step):
        return fn(step, w, T, E=E, **kwargs)

    param = torch.nn.Parameter(torch.zeros(1, dtype=torch.float64))
    opt = torch.optim.SGD([param], lr=base_lr)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lam)
    lrs = []
    for _ in range(T + 3):  # a few steps past the end pin the tails too
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    spec = {"type": kind, "base_lr": base_lr, "total_steps": T, "warmup_steps": warmup,
            "warmup_ratio": ratio, "epochs": epochs}
    spec.update({k: v for k, v in extra.items()})
    return {"name": name, "spec": spec, "lr": lrs}


def main():
    out = {"generator": "tests/train/gen_scheduler_fixture.py", "torch": torch.__version__,
           "cases": [run_case(*c) for c in CASES]}
    path = pathlib.Path(__file__).resolve().parents[1] / "fixtures" / "train" / "scheduler_lambdalr.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(out, indent=1) + "\n")
    print(f"wrote {path} ({len(out['cases'])} cases)")


if __name__ == "__main__":
    main()
