#!/usr/bin/env python3
"""Writes tests/fixtures/quant/quant_fixtures.bin: oracle data for tests/quant/.

An implementation of the formats written from their specifications, independent of the C++:
  * dequantization of ggml Q8_0, Q4_0, Q4_K, Q6_K (ggml-common.h block layouts), vectorized
    over whole blocks with the natural element -> sub-block index (i // 32, i // 16), so it
    cross-checks the C++ pointer arithmetic; every product in float32 in ggml's order;
  * ggml's reference quantizers (quantize_row_*_ref: make_qkx2_quants, make_qx_quants) on
    float32 scalars, with nearest_int as rint (round half to even), roundf as half-away;
  * NF4 with double quantization as bitsandbytes: bnb's 16 codes, x * (1/absmax) against bnb's
    decision thresholds (ties low), absmax - mean in groups of 256 on bnb's signed dynamic map.
It also checks the NF4 table against the normal-quantile construction of bitsandbytes.

Run with Debian's python3 (python3-numpy): /usr/bin/python3 tests/quant/make_quant_fixtures.py
Output: records of (u32 name length, name, u64 byte count, bytes), all little-endian.
"""
import math
import pathlib
import statistics
import struct
from decimal import Decimal

import numpy as np

F = np.float32  # every scalar below stays float32: numpy promotes mixed python floats to f64
OUT = pathlib.Path(__file__).resolve().parents[1] / "fixtures" / "quant" / "quant_fixtures.bin"


def h2f(u16):
    return np.asarray(u16, np.uint16).view(np.float16).astype(np.float32)


def f2h(x):
    return int(np.float16(F(x)).view(np.uint16))


def nearest(x):
    return int(np.rint(F(x)))


# ---------------------------------------------------------------- dequantization (vectorized)

def deq_q8_0(raw):
    b = np.frombuffer(raw, np.uint8).reshape(-1, 34)
    d = h2f(b[:, 0:2].copy().view(np.uint16))  # (nb, 1)
    q = b[:, 2:].view(np.int8).astype(np.float32)
    return (q * d).reshape(-1)


def deq_q4_0(raw):
    b = np.frombuffer(raw, np.uint8).reshape(-1, 18)
    d = h2f(b[:, 0:2].copy().view(np.uint16))
    qs = b[:, 2:].astype(np.int32)
    q = np.concatenate([(qs & 0xF) - 8, (qs >> 4) - 8], axis=1).astype(np.float32)
    return (q * d).reshape(-1)


def k4_scale_min(s):
    """(nb, 12) packed bytes -> (nb, 8) scales and mins, 6 bits each."""
    s = s.astype(np.int32)
    sc = np.zeros((s.shape[0], 8), np.int32)
    mn = np.zeros_like(sc)
    for j in range(8):
        if j < 4:
            sc[:, j], mn[:, j] = s[:, j] & 63, s[:, j + 4] & 63
        else:
            sc[:, j] = (s[:, j + 4] & 0xF) | ((s[:, j - 4] >> 6) << 4)
            mn[:, j] = (s[:, j + 4] >> 4) | ((s[:, j] >> 6) << 4)
    return sc, mn


def deq_q4_K(raw):
    b = np.frombuffer(raw, np.uint8).reshape(-1, 144)
    d = h2f(b[:, 0:2].copy().view(np.uint16))[:, 0]
    dmin = h2f(b[:, 2:4].copy().view(np.uint16))[:, 0]
    sc, mn = k4_scale_min(b[:, 4:16])
    qs = b[:, 16:]
    q = np.zeros((b.shape[0], 256), np.float32)
    for c in range(4):  # 64 elements per 32 bytes: low nibbles first, then high nibbles
        q[:, 64 * c:64 * c + 32] = qs[:, 32 * c:32 * c + 32] & 0xF
        q[:, 64 * c + 32:64 * c + 64] = qs[:, 32 * c:32 * c + 32] >> 4
    sub = np.arange(256) // 32
    dl = d[:, None] * sc[:, sub].astype(np.float32)
    ml = dmin[:, None] * mn[:, sub].astype(np.float32)
    return (dl * q - ml).reshape(-1)


def deq_q6_K(raw):
    b = np.frombuffer(raw, np.uint8).reshape(-1, 210)
    ql, qh = b[:, 0:128].astype(np.int32), b[:, 128:192].astype(np.int32)
    scales = b[:, 192:208].view(np.int8).astype(np.float32)
    d = h2f(b[:, 208:210].copy().view(np.uint16))[:, 0]
    L = np.zeros((b.shape[0], 256), np.int32)
    for h in range(2):  # each 128 elements: 64 bytes of low nibbles, 32 bytes of 2-bit pairs
        for k in range(4):
            lo = ql[:, 64 * h + 32 * (k % 2):64 * h + 32 * (k % 2) + 32]
            lo = lo & 0xF if k < 2 else lo >> 4
            hi = (qh[:, 32 * h:32 * h + 32] >> (2 * k)) & 3
            L[:, 128 * h + 32 * k:128 * h + 32 * k + 32] = lo | (hi << 4)
    dl = d[:, None] * scales[:, np.arange(256) // 16]
    return (dl * (L - 32).astype(np.float32)).reshape(-1)


# ---------------------------------------------------------------- ggml reference quantizers

def quant_q8_0(x):
    out = bytearray()
    for blk in x.reshape(-1, 32):
        amax = max(abs(v) for v in blk)
        d = amax / F(127)
        inv = F(1) / d if d != 0 else F(0)
        out += struct.pack("<H", f2h(d))
        for v in blk:
            t = v * inv
            out += struct.pack("<b", int(math.copysign(math.floor(abs(float(t)) + 0.5), float(t))))
    return bytes(out)


def quant_q4_0(x):
    out = bytearray()
    for blk in x.reshape(-1, 32):
        amax, mx = F(0), F(0)
        for v in blk:
            if amax < abs(v):
                amax, mx = abs(v), v
        d = mx / F(-8)
        inv = F(1) / d if d != 0 else F(0)
        q = [min(15, int(np.trunc(v * inv + F(8.5)))) for v in blk]
        out += struct.pack("<H", f2h(d)) + bytes(q[j] | (q[j + 16] << 4) for j in range(16))
    return bytes(out)


def make_qkx2(x, w, nmax, rmin, rdelta, nstep):
    n = len(x)
    lo, hi, sum_w = x[0], x[0], w[0]
    sum_x = sum_w * x[0]
    for i in range(1, n):
        lo, hi = min(lo, x[i]), max(hi, x[i])
        sum_w = sum_w + w[i]
        sum_x = sum_x + w[i] * x[i]
    if lo > 0:
        lo = F(0)
    if hi == lo:
        return F(0), -lo, [0] * n
    iscale = F(nmax) / (hi - lo)
    scale = F(1) / iscale
    L = [max(0, min(nmax, nearest(iscale * (v - lo)))) for v in x]
    best = F(0)
    for i in range(n):
        diff = scale * F(L[i]) + lo - x[i]
        best = best + w[i] * (diff * diff)
    for step in range(nstep + 1):
        iscale = (F(rmin) + F(rdelta) * F(step) + F(nmax)) / (hi - lo)
        La = [max(0, min(nmax, nearest(iscale * (v - lo)))) for v in x]
        sl, sl2, sxl = F(0), F(0), F(0)
        for i in range(n):
            sl = sl + w[i] * F(La[i])
            sl2 = sl2 + w[i] * F(La[i]) * F(La[i])
            sxl = sxl + w[i] * F(La[i]) * x[i]
        D = sum_w * sl2 - sl * sl
        if D > 0:
            this_scale = (sum_w * sxl - sum_x * sl) / D
            this_min = (sl2 * sum_x - sl * sxl) / D
            if this_min > 0:
                this_min, this_scale = F(0), sxl / sl2
            err = F(0)
            for i in range(n):
                diff = this_scale * F(La[i]) + this_min - x[i]
                err = err + w[i] * (diff * diff)
            if err < best:
                L, best, scale, lo = La, err, this_scale, this_min
    return scale, -lo, L


def quant_q4_K(x):
    out = bytearray()
    for blk in x.reshape(-1, 256):
        scales, mins, L = [], [], []
        for j in range(8):
            xs = blk[32 * j:32 * j + 32]
            s2 = F(0)
            for v in xs:
                s2 = s2 + v * v
            av = np.sqrt(s2 / F(32))
            sc, mn, Lj = make_qkx2(xs, [av + abs(v) for v in xs], 15, -1.0, 0.1, 20)
            scales.append(sc), mins.append(mn), L.extend(Lj)
        max_scale = max([F(0)] + scales)
        max_min = max([F(0)] + mins)
        inv_s = F(63) / max_scale if max_scale > 0 else F(0)
        inv_m = F(63) / max_min if max_min > 0 else F(0)
        ls = [min(63, nearest(inv_s * s) & 0xFF) for s in scales]
        lm = [min(63, nearest(inv_m * m) & 0xFF) for m in mins]
        packed = [0] * 12  # 6-bit scale/min pairs: j < 4 plain, j >= 4 split across bytes
        for j in range(8):
            if j < 4:
                packed[j], packed[j + 4] = ls[j], lm[j]
            else:
                packed[j + 4] = (ls[j] & 0xF) | ((lm[j] & 0xF) << 4)
                packed[j - 4] |= (ls[j] >> 4) << 6
                packed[j] |= (lm[j] >> 4) << 6
        dh, mh = f2h(max_scale / F(63)), f2h(max_min / F(63))
        for j in range(8):
            d = h2f(dh) * F(ls[j])
            if d == 0:
                continue
            dm = h2f(mh) * F(lm[j])
            for i in range(32):
                L[32 * j + i] = max(0, min(15, nearest((blk[32 * j + i] + dm) / d)))
        qs = bytearray()
        for c in range(4):
            qs += bytes(L[64 * c + i] | (L[64 * c + 32 + i] << 4) for i in range(32))
        out += struct.pack("<HH", dh, mh) + bytes(packed) + qs
    return bytes(out)


def make_qx(x, nmax):
    amax, mx = F(0), F(0)
    for v in x:
        if abs(v) > amax:
            amax, mx = abs(v), v
    if amax < F(1e-15):
        return F(0), [0] * len(x)

    def sums(iscale):
        ls = [max(-nmax, min(nmax - 1, nearest(iscale * v))) for v in x]
        slx, sl2 = F(0), F(0)
        for v, l in zip(x, ls):
            w = v * v
            slx = slx + w * v * F(l)
            sl2 = sl2 + w * F(l) * F(l)
        return ls, slx, sl2

    ls, slx, sl2 = sums(F(-nmax) / mx)
    L = [l + nmax for l in ls]
    scale = slx / sl2 if sl2 != 0 else F(0)
    best = scale * slx
    for step in range(-9, 10):
        if step == 0:
            continue
        ls, slx, sl2 = sums(-(F(nmax) + F(0.1) * F(step)) / mx)
        if sl2 > 0 and slx * slx > best * sl2:
            L = [l + nmax for l in ls]
            scale = slx / sl2
            best = scale * slx
    return scale, L


def quant_q6_K(x):
    out = bytearray()
    for blk in x.reshape(-1, 256):
        scales, L = [], []
        for ib in range(16):
            s, Lb = make_qx(blk[16 * ib:16 * ib + 16], 32)
            scales.append(s), L.extend(Lb)
        max_abs, max_scale = F(0), F(0)
        for s in scales:
            if abs(s) > max_abs:
                max_abs, max_scale = abs(s), s
        if max_abs < F(1e-15):
            out += bytes(210)
            continue
        iscale = F(-128) / max_scale
        dh = f2h(F(1) / iscale)
        sc = [min(127, nearest(iscale * s)) for s in scales]
        for j in range(16):
            d = h2f(dh) * F(sc[j])
            if d == 0:
                continue
            for i in range(16):
                L[16 * j + i] = max(-32, min(31, nearest(blk[16 * j + i] / d))) + 32
        ql, qh = bytearray(128), bytearray(64)
        for i in range(256):  # element i: half h, quarter k, lane l
            h, k, l = i // 128, (i % 128) // 32, i % 32
            ql[64 * h + 32 * (k % 2) + l] |= (L[i] & 0xF) << (4 * (k // 2))
            qh[32 * h + l] |= (L[i] >> 4) << (2 * k)
        out += bytes(ql) + bytes(qh) + struct.pack("<16b", *sc) + struct.pack("<H", dh)
    return bytes(out)


# ---------------------------------------------------------------- NF4 + double quantization

NF4 = np.array([-1.0, -0.6961928009986877, -0.5250730514526367, -0.39491748809814453,
                -0.28444138169288635, -0.18477343022823334, -0.09105003625154495, 0.0,
                0.07958029955625534, 0.16093020141124725, 0.24611230194568634, 0.33791524171829224,
                0.44070982933044434, 0.5626170039176941, 0.7229568362236023, 1.0], np.float32)
BNB_THRESHOLDS = ["-0.8480964004993439", "-0.6106329262256622", "-0.4599952697753906", "-0.33967943489551544",
                  "-0.23460740596055984", "-0.13791173323988914", "-0.045525018125772476", "0.03979014977812767",
                  "0.1202552504837513", "0.2035212516784668", "0.2920137718319893", "0.3893125355243683",
                  "0.5016634166240692", "0.6427869200706482", "0.8614784181118011"]  # bnb dQuantizeNF4


def f32_literal(text):
    """The f32 a C compiler makes of the literal `text`f: the decimal rounded once, ties to even.
    (np.float32(float(text)) rounds twice, via f64, and differs for 4 of the thresholds.)"""
    exact = Decimal(text)
    c = F(float(exact))
    cands = [np.nextafter(c, F(-np.inf)), c, np.nextafter(c, F(np.inf))]
    return min(cands, key=lambda v: (abs(Decimal(float(v)) - exact), int(np.array(v).view(np.uint32)) & 1))


NF4_THRESHOLDS = [f32_literal(t) for t in BNB_THRESHOLDS]


def check_nf4_table():
    """bitsandbytes create_normal_map(offset=0.9677083, use_extra_value=True)."""
    nd, off = statistics.NormalDist(), 0.9677083
    lin = lambda a, b, n: [a + (b - a) * i / (n - 1) for i in range(n)]
    pos = [nd.inv_cdf(p) for p in lin(off, 0.5, 9)[:-1]]
    neg = [-nd.inv_cdf(p) for p in lin(off, 0.5, 8)[:-1]]
    vals = sorted(pos + [0.0] + neg)
    vals = [v / max(vals) for v in vals]
    assert all(abs(a - b) < 2e-7 for a, b in zip(vals, NF4)), (vals, NF4)
    for i, t in enumerate(NF4_THRESHOLDS):  # each is the codes' midpoint to within one f32 ulp
        mid = F((float(NF4[i]) + float(NF4[i + 1])) / 2)
        assert abs(float(t) - float(mid)) <= abs(float(np.spacing(mid))), (i, t, mid)


def dynamic_map():
    """bitsandbytes create_dynamic_map(signed=True, max_exponent_bits=7, total_bits=8), in f64."""
    vals = []
    for i in range(7):
        n = 2 ** i + 1
        for k in range(n - 1):
            mean = ((0.1 + 0.9 * k / (n - 1)) + (0.1 + 0.9 * (k + 1) / (n - 1))) / 2.0
            vals += [10.0 ** (i - 6) * mean, -(10.0 ** (i - 6)) * mean]
    vals += [0.0, 1.0]
    assert len(vals) == 256
    return np.array(sorted(vals), np.float32)


def nf4_code(v):
    return sum(1 for t in NF4_THRESHOLDS if v > t)


def map_code(code, v):
    for i in range(255):  # linear scan for the first midpoint v does not exceed
        if not v > (code[i] + code[i + 1]) * F(0.5):
            return i
    return 255


def quant_nf4(x):
    blocks = x.reshape(-1, 64)
    packed, absmax = bytearray(), []
    for blk in blocks:
        amax = max(abs(v) for v in blk)
        absmax.append(amax)
        if amax == 0:
            packed += bytes([0x77]) * 32
            continue
        inv = F(1) / amax
        packed += bytes((nf4_code(blk[2 * j] * inv) << 4) | nf4_code(blk[2 * j + 1] * inv) for j in range(32))
    total = 0.0
    for a in absmax:
        total += float(a)
    offset = F(total / len(absmax))
    code = dynamic_map()
    qabs, scale2 = bytearray(), []
    for g in range(0, len(absmax), 256):
        grp = [a - offset for a in absmax[g:g + 256]]
        s = max(abs(c) for c in grp)
        scale2.append(s)
        inv = F(1) / s if s > 0 else F(0)
        qabs += bytes(map_code(code, c * inv) for c in grp)
    return bytes(packed), bytes(qabs), np.array(scale2, np.float32), offset


def deq_nf4(packed, qabs, scale2, offset, code):
    p = np.frombuffer(packed, np.uint8).reshape(-1, 32)
    q = np.frombuffer(qabs, np.uint8)
    a = code[q] * scale2[np.arange(len(q)) // 256] + offset  # float32 throughout
    codes = np.stack([p >> 4, p & 0xF], axis=2).reshape(-1, 64)
    return (NF4[codes] * a[:, None]).reshape(-1)


# ---------------------------------------------------------------- inputs and output

def random_blocks(rng, nb, size, scale_offsets):
    """Random raw blocks with finite, moderate fp16 scales at the given byte offsets."""
    raw = rng.integers(0, 256, size=(nb, size), dtype=np.uint8)
    for off in scale_offsets:
        d = (rng.uniform(0.5, 2.0, nb) * 10.0 ** rng.integers(-4, 0, nb)).astype(np.float16)
        raw[:, off:off + 2] = d.view(np.uint8).reshape(nb, 2)
    return raw.tobytes()


def ggml_input(rng):
    x = np.zeros((4, 512), np.float32)
    x[0] = rng.normal(0, 0.02, 512)
    x[1] = rng.normal(0, 1, 512) * np.repeat(np.exp(rng.uniform(-3, 1, 16)), 32)
    x[1, 77] *= 40.0  # an outlier
    x[2, 256:] = rng.uniform(0.1, 1.0, 256)  # all positive: the min of Q4_K is 0
    x[3, :128] = 0.5  # constant sub-blocks
    x[3, 128:256] = -np.abs(rng.normal(0, 0.3, 128))
    x[3, 256:] = rng.normal(0, 1e-20, 256)  # below GROUP_MAX_EPS
    return x.astype(np.float32)


def nf4_input(rng):
    x = (rng.normal(0, 0.02, (10, 1664)) * np.linspace(0.5, 3.0, 10)[:, None]).astype(np.float32)
    x[2, 64:128] = 0.0  # an all-zero block
    x[5, 128:192] = -0.25  # a constant block
    x[7, 3] = 0.9  # an outlier
    return x


def main():
    check_nf4_table()
    rng = np.random.default_rng(20240601)
    rec = {}
    for name, nb, size, offs, deq in [("q8_0", 8, 34, [0], deq_q8_0), ("q4_0", 8, 18, [0], deq_q4_0),
                                      ("q4_k", 4, 144, [0, 2], deq_q4_K), ("q6_k", 4, 210, [208], deq_q6_K)]:
        raw = random_blocks(rng, nb, size, offs)
        rec[f"{name}.blocks"] = raw
        rec[f"{name}.dequant"] = deq(raw).astype("<f4").tobytes()
    x = ggml_input(rng)
    rec["ggml.input"] = x.astype("<f4").tobytes()
    flat = x.reshape(-1)
    for name, fn, deq in [("q8_0", quant_q8_0, deq_q8_0), ("q4_0", quant_q4_0, deq_q4_0),
                          ("q4_k", quant_q4_K, deq_q4_K), ("q6_k", quant_q6_K, deq_q6_K)]:
        q = fn(flat)
        rec[f"{name}.quant"] = q
        rec[f"{name}.quant_dequant"] = deq(q).astype("<f4").tobytes()
    y = nf4_input(rng)
    packed, qabs, scale2, offset = quant_nf4(y.reshape(-1))
    code = dynamic_map()
    rec["nf4.input"] = y.astype("<f4").tobytes()
    rec["nf4.packed"] = packed
    rec["nf4.qabsmax"] = qabs
    rec["nf4.absmax_scale"] = scale2.astype("<f4").tobytes()
    rec["nf4.offset"] = np.array([offset], "<f4").tobytes()
    rec["nf4.dequant"] = deq_nf4(packed, qabs, scale2, offset, code).astype("<f4").tobytes()
    rec["nf4.codes"] = NF4.astype("<f4").tobytes()
    rec["nf4.dynamic_map"] = code.astype("<f4").tobytes()
    OUT.parent.mkdir(parents=True, exist_ok=True)
    with open(OUT, "wb") as f:
        for name, data in rec.items():
            f.write(struct.pack("<I", len(name)) + name.encode() + struct.pack("<Q", len(data)) + data)
    print(f"wrote {OUT} ({OUT.stat().st_size} bytes, {len(rec)} records)")


if __name__ == "__main__":
    main()
