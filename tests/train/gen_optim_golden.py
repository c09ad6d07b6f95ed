#!/usr/bin/python3
"""Writes tests/fixtures/train/optim_golden.json: six optimizer steps of each optimizer besides
AdamW (tests/train/gen_adamw_golden.py) on three tensors, with weight decay and a learning rate
that changes every step, for tests/kernels/optim_golden_test.cpp. Parameters are stored after
every step, f32 states after steps 1, 2 and 6, 8-bit codes and scales after every step.

The tensors: matrices (3, 40) and (20, 13) and a vector of 19, one flat buffer of 399 values as
tpro lays out LoRA (the vector is not a LoRA shape: it checks Adafactor's unfactored path and an
8-bit tensor under one block). Element 0 of every gradient is zero, and row 1 of the (20, 13)
matrix is zero at every step, so weight decay alone and Adafactor's eps1 act there; the whole
(3, 40) matrix has a zero gradient at step 1 (as LoRA's A, while B is zero), and the vector's
elements span nine decades (8-bit codes at and around zero).

References:
  sgd, sgd_momentum, sgd_nesterov, adagrad: torch.optim.SGD / Adagrad, float32, foreach=False.
  adafactor: transformers.optimization.Adafactor.step as Trainer builds it for "adafactor"
    (scale_parameter=False, relative_step=False, warmup_init=False, beta1=None), written out
    here in float64 (transformers is not installed).
  lion: the Lion paper's update (decoupled weight decay, sign(0) = 0), float64.
  adamw8bit: bitsandbytes' kOptimizerStatic8bit2StateBlockwise (block 256, dynamic maps) in
    float32 scalar arithmetic, operation by operation: the 8-bit codes depend on every rounding,
    so a float64 reference could not be matched code for code. __powf and __fdividef (CUDA
    fast-math) are replaced by pow in float64 rounded to float32 and IEEE division, as tpro does.

Run with Debian's python3-torch:  /usr/bin/python3 tests/train/gen_optim_golden.py
"""
import json
import math
import pathlib

import numpy as np
import torch

SHAPES = [(3, 40), (20, 13), (19,)]
STEPS = 6
LR0, WD = 1e-2, 0.1
SCALES = [1.0, 0.3, 0.02, 0.5, 0.05, 0.8]  # gradient scale per step (Adafactor clips on some)
F = np.float32


def numel(shape):
    return int(np.prod(shape))


N = sum(numel(s) for s in SHAPES)
OFFSETS = np.cumsum([0] + [numel(s) for s in SHAPES])[:-1].tolist()


def f32(values):
    # %.9g of a float32 parses back to the same float32, in about half the characters of repr.
    return [float("%.9g" % float(x)) for x in np.asarray(values, dtype=np.float32).reshape(-1)]


def lr_at(s):
    return LR0 * (1.0 - s / 10.0)


def make_inputs():
    gen = torch.Generator().manual_seed(4321)
    p0 = (torch.randn(N, generator=gen, dtype=torch.float32) * 0.5).numpy()
    grads = []
    for s in range(STEPS):
        g = (torch.randn(N, generator=gen, dtype=torch.float32) * SCALES[s]).numpy().copy()
        g[0] = 0.0
        row1 = OFFSETS[1] + 13
        g[row1:row1 + 13] = 0.0
        if s == 0:  # as LoRA's A at step 1 (B = 0): an all-zero block, whose 8-bit scale is 0
            g[:numel(SHAPES[0])] = 0.0
        # The vector spans nine decades: 8-bit codes near zero and bitsandbytes' sign fix.
        g[OFFSETS[2]:] *= np.array([10.0 ** -(k % 10) for k in range(numel(SHAPES[2]))], dtype=np.float32)
        grads.append(g)
    return p0, grads


def run_torch(opt_cls, kwargs, p0, grads, state_keys):
    param = torch.nn.Parameter(torch.from_numpy(p0.copy()))
    opt = opt_cls([param], lr=LR0, foreach=False, **kwargs)
    steps = []
    for s, g in enumerate(grads):
        for group in opt.param_groups:
            group["lr"] = lr_at(s)
        param.grad = torch.from_numpy(g.copy())
        opt.step()
        st = opt.state[param]
        steps.append({"param": f32(param.detach().numpy()),
                      "state": [f32(st[k].numpy()) if st.get(k) is not None else [] for k in state_keys]})
    return steps


def adafactor(p0, grads, eps1=1e-30, clip_threshold=1.0, decay_rate=-0.8):
    p = p0.astype(np.float64)
    row = [np.zeros(s[0] if len(s) == 2 else numel(s)) for s in SHAPES]
    col = [np.zeros(s[1]) if len(s) == 2 else None for s in SHAPES]
    steps, clipped = [], []
    for s, g32 in enumerate(grads):
        lr, t = lr_at(s), s + 1
        beta2t = 1.0 - math.pow(t, decay_rate)
        for k, shape in enumerate(SHAPES):
            sl = slice(OFFSETS[k], OFFSETS[k] + numel(shape))
            g = g32[sl].astype(np.float64).reshape(shape)
            upd = g * g + eps1
            if len(shape) == 2:
                row[k] = beta2t * row[k] + (1.0 - beta2t) * upd.mean(axis=-1)
                col[k] = beta2t * col[k] + (1.0 - beta2t) * upd.mean(axis=-2)
                r_factor = 1.0 / np.sqrt(row[k] / row[k].mean())
                c_factor = 1.0 / np.sqrt(col[k])
                u = r_factor[:, None] * c_factor[None, :] * g
            else:
                row[k] = beta2t * row[k] + (1.0 - beta2t) * upd
                u = g / np.sqrt(row[k])
            rms = np.sqrt((u * u).mean())
            clipped.append(bool(rms / clip_threshold > 1.0))
            u = u / max(rms / clip_threshold, 1.0) * lr
            pk = p[sl].reshape(shape)
            pk = pk + pk * (-WD * lr)
            p[sl] = (pk - u).reshape(-1)
        steps.append({"param": f32(p),
                      "state": [f32(np.concatenate(row)), f32(np.concatenate([c for c in col if c is not None]))]})
    return steps, clipped


def lion(p0, grads, beta1=0.9, beta2=0.99):
    p, m = p0.astype(np.float64), np.zeros(N)
    steps, margin = [], math.inf
    for s, g32 in enumerate(grads):
        lr, g = lr_at(s), g32.astype(np.float64)
        c = beta1 * m + (1 - beta1) * g
        terms = np.abs(beta1 * m) + np.abs((1 - beta1) * g)
        nz = c != 0  # no sign decided by cancellation, where f32 could round to the other side
        margin = min(margin, float((np.abs(c[nz]) / terms[nz]).min()))
        p = p * (1 - lr * WD) - lr * np.sign(c)
        m = beta2 * m + (1 - beta2) * g
        steps.append({"param": f32(p), "state": [f32(m)]})
    assert margin > 1e-5, margin
    return steps


def dynamic_map(signed):
    """tpro's definition: bitsandbytes' create_dynamic_map values in float64, rounded once."""
    data = []
    for i in range(7):
        items = 2 ** i + 1 if signed else 2 ** (i + 1) + 1
        for k in range(items - 1):
            mean = 0.1 + 0.9 * (k + 0.5) / (items - 1)
            data.append(10.0 ** (i - 6) * mean)
            if signed:
                data.append(-(10.0 ** (i - 6)) * mean)
    data += [0.0, 1.0]
    assert len(data) == 256
    return np.array(sorted(data), dtype=np.float32)


def bnb_torch_map(signed):
    """bitsandbytes.functional.create_dynamic_map as written there (torch float32 linspace)."""
    data = []
    for i in range(7):
        items = int(2 ** i + 1 if signed else 2 ** (i + 1) + 1)
        boundaries = torch.linspace(0.1, 1, items)
        means = (boundaries[:-1] + boundaries[1:]) / 2.0
        data += ((10 ** (-6 + i)) * means).tolist()
        if signed:
            data += (-(10 ** (-6 + i)) * means).tolist()
    data += [0, 1.0]
    data.sort()
    return torch.tensor(data, dtype=torch.float32).numpy()


def quantize(code, x, signed):
    """bitsandbytes' quantize_2D."""
    pivot, upper_pivot, lower_pivot = 127, 255, 0
    lower, upper, val = F(-1.0 if signed else 0.0), F(1.0), code[127]
    i = 64
    while i > 0:
        if x > val:
            lower_pivot, lower, pivot = pivot, val, pivot + i
        else:
            upper_pivot, upper, pivot = pivot, val, pivot - i
        val = code[pivot]
        i >>= 1
    if x > val:
        return upper_pivot if x > (upper + val) * F(0.5) else pivot
    return lower_pivot if x < (lower + val) * F(0.5) else pivot


def adamw8bit(p0, grads, beta1=0.9, beta2=0.999, eps=1e-8, block=256):
    m1, m2 = dynamic_map(True), dynamic_map(False)
    p = p0.astype(np.float32).copy()
    q1, q2 = np.zeros(N, dtype=np.int64), np.zeros(N, dtype=np.int64)
    nblocks = sum((numel(s) + block - 1) // block for s in SHAPES)
    am1, am2 = np.zeros(nblocks, dtype=np.float32), np.zeros(nblocks, dtype=np.float32)
    b1, b2, e, wd = F(beta1), F(beta2), F(eps), F(WD)
    a1, a2 = F(1.0) - b1, F(1.0) - b2
    steps = []
    for s, g in enumerate(grads):
        step, lr = s + 1, F(lr_at(s))
        corr1 = F(1.0 - float(b1) ** step)
        corr2 = np.sqrt(F(1.0 - float(b2) ** step))
        step_size = (-lr * corr2) / corr1
        bi = 0
        for k, shape in enumerate(SHAPES):
            n = numel(shape)
            for b0 in range(0, n, block):
                at, ln = OFFSETS[k] + b0, min(block, n - b0)
                s1, s2 = [], []
                for j in range(block):  # padding lanes: g 0, codes 128 and 0
                    lane = j < ln
                    gj = g[at + j] if lane else F(0.0)
                    v2 = m2[q2[at + j] if lane else 0] * am2[bi]
                    v2 = v2 * b2 + a2 * gj * gj
                    v1 = m1[q1[at + j] if lane else 128] * am1[bi]
                    v1 = v1 * b1 + a1 * gj
                    s1.append(v1)
                    s2.append(v2)
                mx1 = max(abs(x) for x in s1)
                mx2 = max(abs(x) for x in s2)
                am1[bi], am2[bi] = mx1, mx2
                with np.errstate(invalid="ignore", divide="ignore"):
                    for j in range(ln):
                        i = at + j
                        p[i] = p[i] + step_size * (s1[j] / (np.sqrt(s2[j]) + corr2 * e))
                        p[i] = p[i] * (F(1.0) - lr * wd)
                        c1 = quantize(m1, s1[j] / mx1, True)
                        if np.signbit(m1[c1]) != np.signbit(s1[j]):
                            c1 = (c1 + 1 if s1[j] > 0 else c1 - 1) % 256
                        q1[i] = c1
                        q2[i] = quantize(m2, s2[j] / mx2, False)
                bi += 1
        steps.append({"param": f32(p), "state1": q1.tolist(), "state2": q2.tolist(),
                      "absmax1": f32(am1), "absmax2": f32(am2)})
    return steps


def main():
    p0, grads = make_inputs()
    opts = {}
    for name, kw in [("sgd", {"weight_decay": WD}),
                     ("sgd_momentum", {"weight_decay": WD, "momentum": 0.9}),
                     ("sgd_nesterov", {"weight_decay": WD, "momentum": 0.9, "nesterov": True})]:
        opts[name] = {"hyper": {"momentum": kw.get("momentum", 0.0), "nesterov": kw.get("nesterov", False)},
                      "steps": run_torch(torch.optim.SGD, kw, p0, grads, ["momentum_buffer"])}
    opts["adagrad"] = {"hyper": {"eps": 1e-10},
                       "steps": run_torch(torch.optim.Adagrad, {"weight_decay": WD, "eps": 1e-10}, p0, grads, ["sum"])}
    af_steps, clipped = adafactor(p0, grads)
    opts["adafactor"] = {"hyper": {"eps1": 1e-30, "clip_threshold": 1.0, "decay_rate": -0.8},
                         "clipped": clipped, "steps": af_steps}
    opts["lion"] = {"hyper": {"beta1": 0.9, "beta2": 0.99}, "steps": lion(p0, grads)}
    opts["adamw8bit"] = {"hyper": {"beta1": 0.9, "beta2": 0.999, "eps": 1e-8}, "steps": adamw8bit(p0, grads)}
    for o in opts.values():  # f32 states after steps 1, 2 and the last keep the file small
        for i, st in enumerate(o["steps"]):
            if "state" in st and i not in (0, 1, STEPS - 1):
                del st["state"]
    maps = {True: dynamic_map(True), False: dynamic_map(False)}
    ulps = max(int(np.max(np.abs(maps[sg].view(np.int32) - bnb_torch_map(sg).view(np.int32)))) for sg in (True, False))
    out = {
        "generator": "tests/train/gen_optim_golden.py (torch " + torch.__version__ + ", numpy " + np.__version__ + ")",
        "shapes": [list(s) for s in SHAPES],
        "weight_decay": WD,
        "lr": [lr_at(s) for s in range(STEPS)],
        "param0": f32(p0),
        "grads": [f32(g) for g in grads],
        "map_signed": f32(maps[True]),
        "map_unsigned": f32(maps[False]),
        "bnb_torch_map_max_ulps": ulps,
        "optimizers": opts,
    }
    path = pathlib.Path(__file__).resolve().parent.parent / "fixtures" / "train" / "optim_golden.json"
    path.write_text(json.dumps(out, separators=(",", ":")) + "\n")
    print(f"wrote {path}: {STEPS} steps of {', '.join(opts)}; adafactor clipped {sum(clipped)} of {len(clipped)}"
          f" tensor-steps; maps within {ulps} ulp of bitsandbytes' torch-made ones")


if __name__ == "__main__":
    main()
