#!/usr/bin/python3
"""Golden tensors for tests/model: tiny random Llama-family models run in PyTorch (float64).

For each case this writes tests/fixtures/golden/<case>/:
  config.json, model.safetensors   the base model (f32), loadable by tpro and transformers
  adapter_config.json, adapter_model.safetensors   a PEFT LoRA adapter with B != 0 (DoRA: and
                       lora_magnitude_vector per module, use_dora in the config)
  golden.safetensors   inputs (tokens, mask) and expected outputs: hidden.<l> (residual
                       stream after layer l), logits, loss, and grad.<peft tensor name>
The model code is written here from the Hugging Face Llama/Qwen2/Qwen3/Gemma2/Gemma3 definitions
(RMSNorm, rotate_half RoPE with llama3 scaling, GQA, SwiGLU, Qwen3's per-head RMSNorm of q and k
before RoPE; Gemma's x*(1+w) RMSNorm, four norms per block, GeGLU with gelu's tanh form, embeddings
times sqrt(hidden) in float32, query_pre_attn_scalar, tanh soft-capping of scores and logits,
sliding windows on some layers and Gemma 3's local RoPE base; LoRA as PEFT: y += s * B(A(x)); DoRA as
PEFT's DoraLinearLayer: y = g*(W x + s*B(A(x))) + bias with g = m / ||W + s*B*A||_row detached), so the
C++ engine is checked against an independent implementation. Loss: mean over trained
targets of -log p(token[t+1] | tokens[<=t]), trained where mask[t+1] == 1.

Run: /usr/bin/python3 tests/model/gen_golden.py   (Debian python3-torch; deterministic)
"""
import json
import math
import os
import struct

import numpy as np
import torch

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "fixtures", "golden")
PROJ = [("self_attn", "q_proj"), ("self_attn", "k_proj"), ("self_attn", "v_proj"), ("self_attn", "o_proj"),
        ("mlp", "gate_proj"), ("mlp", "up_proj"), ("mlp", "down_proj")]


def write_safetensors(path, tensors, metadata=None):
    header, blobs, off = {}, [], 0
    if metadata:
        header["__metadata__"] = metadata
    for name in sorted(tensors):
        a = np.ascontiguousarray(tensors[name])
        dt = {np.dtype("float32"): "F32", np.dtype("int32"): "I32", np.dtype("uint8"): "U8"}[a.dtype]
        b = a.tobytes()
        header[name] = {"dtype": dt, "shape": list(a.shape), "data_offsets": [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    h = json.dumps(header).encode()
    h += b" " * ((8 - (len(h) + 8) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)


def rope_inv_freq(c, theta=None, scaled=True, seq_len=0):
    hd = int(c["head_dim"] * c.get("partial_rotary_factor", 1.0))  # rotary dims
    inv = 1.0 / ((theta or c["rope_theta"]) ** (torch.arange(0, hd, 2, dtype=torch.int64).float() / hd))
    rs = c.get("rope_scaling") if scaled else None
    if rs and rs.get("rope_type") == "dynamic" and seq_len > c["max_position_embeddings"]:  # NTK: a larger base
        mp, f = c["max_position_embeddings"], rs["factor"]
        base = c["rope_theta"] * ((f * seq_len / mp) - (f - 1)) ** (hd / (hd - 2))
        inv = 1.0 / (base ** (torch.arange(0, hd, 2, dtype=torch.int64).float() / hd))
    if rs and rs.get("rope_type") == "yarn":  # transformers' _compute_yarn_parameters
        base, orig = c["rope_theta"], rs.get("original_max_position_embeddings", c["max_position_embeddings"])
        factor = c["max_position_embeddings"] / orig if "original_max_position_embeddings" in rs else rs["factor"]
        pos_freqs = base ** (torch.arange(0, hd, 2).float() / hd)
        extra, interp = 1.0 / pos_freqs, 1.0 / (factor * pos_freqs)

        def corr(rot):
            return (hd * math.log(orig / (rot * 2 * math.pi))) / (2 * math.log(base))
        low, high = math.floor(corr(rs.get("beta_fast", 32))), math.ceil(corr(rs.get("beta_slow", 1)))
        low, high = max(low, 0), min(high, hd - 1)
        if low == high:
            high += 0.001
        ramp = torch.clamp((torch.arange(hd // 2, dtype=torch.float32) - low) / (high - low), 0, 1)
        ext_factor = 1 - ramp
        inv = interp * (1 - ext_factor) + extra * ext_factor
    if rs and rs.get("type") == "longrope":  # Phi-3: short factors up to the pretrained context
        ext = rs["long_factor"] if seq_len > c["original_max_position_embeddings"] else rs["short_factor"]
        inv = 1.0 / (torch.tensor(ext, dtype=torch.float32) *
                     c["rope_theta"] ** (torch.arange(0, hd, 2, dtype=torch.int64).float() / hd))
    if rs and rs.get("rope_type") == "linear":
        inv = inv / rs["factor"]
    if rs and rs.get("rope_type") == "llama3":
        factor, lo, hi, old = rs["factor"], rs["low_freq_factor"], rs["high_freq_factor"], \
            rs["original_max_position_embeddings"]
        low_wl, high_wl = old / lo, old / hi
        wl = 2 * math.pi / inv
        inv_l = torch.where(wl > low_wl, inv / factor, inv)
        smooth = (old / wl - lo) / (hi - lo)
        smoothed = (1 - smooth) * inv_l / factor + smooth * inv_l
        medium = ~(wl < high_wl) * ~(wl > low_wl)
        inv = torch.where(medium, smoothed, inv_l)
    return inv.float()


def rotate_half(x):
    x1, x2 = x.chunk(2, dim=-1)
    return torch.cat((-x2, x1), dim=-1)


def rmsnorm(x, w, eps):
    return w * (x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps))


def gemma_rmsnorm(x, w, eps):  # Gemma2RMSNorm / Gemma3RMSNorm: the file holds w, the model uses 1 + w
    return (x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps)) * (1.0 + w)


def softcap(x, cap):
    return cap * torch.tanh(x / cap) if cap else x


def run_case(name, c, lora, B, T, seed, ppl=None):
    torch.manual_seed(seed)
    D, F, L, V = c["hidden_size"], c["intermediate_size"], c["num_hidden_layers"], c["vocab_size"]
    H, Hkv, hd = c["num_attention_heads"], c["num_key_value_heads"], c["head_dim"]
    qkv_bias = c["architectures"][0] == "Qwen2ForCausalLM" or c.get("attention_bias", False)
    arch = c["architectures"][0]
    phi3 = arch == "Phi3ForCausalLM"  # fused qkv_proj / gate_up_proj, partial rotary, LongRoPE
    gemma = arch in ("Gemma2ForCausalLM", "Gemma3ForCausalLM")
    qk_norm = arch in ("Qwen3ForCausalLM", "Gemma3ForCausalLM")
    norm_init = (lambda n: 0.1 * torch.randn(n)) if gemma else (lambda n: 1 + 0.1 * torch.randn(n))
    norm = gemma_rmsnorm if gemma else rmsnorm
    dims = {"q_proj": (D, H * hd), "k_proj": (D, Hkv * hd), "v_proj": (D, Hkv * hd), "o_proj": (H * hd, D),
            "gate_proj": (D, F), "up_proj": (D, F), "down_proj": (F, D),
            "qkv_proj": (D, (H + 2 * Hkv) * hd), "gate_up_proj": (D, 2 * F)}
    projs = [("self_attn", "qkv_proj"), ("self_attn", "o_proj"), ("mlp", "gate_up_proj"), ("mlp", "down_proj")] \
        if phi3 else PROJ
    W = {"model.embed_tokens.weight": torch.randn(V, D) * (0.5 / math.sqrt(D) if gemma else 0.5),
         "model.norm.weight": norm_init(D)}
    if not c["tie_word_embeddings"]:
        W["lm_head.weight"] = torch.randn(V, D) * 0.2
    for l in range(L):
        p = f"model.layers.{l}."
        W[p + "input_layernorm.weight"] = norm_init(D)
        W[p + "post_attention_layernorm.weight"] = norm_init(D)
        if gemma:
            W[p + "pre_feedforward_layernorm.weight"] = norm_init(D)
            W[p + "post_feedforward_layernorm.weight"] = norm_init(D)
        if qk_norm:
            W[p + "self_attn.q_norm.weight"] = norm_init(hd)
            W[p + "self_attn.k_norm.weight"] = norm_init(hd)
        for mod, proj in projs:
            i, o = dims[proj]
            W[p + f"{mod}.{proj}.weight"] = torch.randn(o, i) / math.sqrt(i)
            if qkv_bias and proj in ("q_proj", "k_proj", "v_proj"):
                W[p + f"{mod}.{proj}.bias"] = 0.1 * torch.randn(o)
    r, alpha = lora["r"], lora["lora_alpha"]
    scale = alpha / math.sqrt(r) if lora["use_rslora"] else alpha / r
    A = {}
    for l in range(L):
        for mod, proj in projs:
            if proj not in lora["target_modules"]:
                continue
            i, o = dims[proj]
            base = f"base_model.model.model.layers.{l}.{mod}.{proj}"
            A[base + ".lora_A.weight"] = torch.randn(r, i) / math.sqrt(i)
            A[base + ".lora_B.weight"] = 0.1 * torch.randn(o, r)   # non-zero so dA != 0
    dora = lora.get("use_dora", False)
    if dora:  # PEFT starts m at ||W + s B A|| per row; moved away from it so that m/||.|| != 1
        for key in [k[:-len(".lora_A.weight")] for k in A if k.endswith(".lora_A.weight")]:
            w = W[key[len("base_model.model."):] + ".weight"]
            wn = torch.linalg.norm(w + scale * (A[key + ".lora_B.weight"] @ A[key + ".lora_A.weight"]), dim=1)
            A[key + ".lora_magnitude_vector"] = wn * (1 + 0.2 * torch.randn(wn.shape[0]))
    tokens = torch.randint(0, V, (B, T), dtype=torch.int64)
    mask = (torch.rand(B, T) > 0.25).to(torch.uint8)
    mask[:, 0] = 0

    Wd = {k: v.double() for k, v in W.items()}
    Ad = {k: v.double().requires_grad_(True) for k, v in A.items()}
    inv = rope_inv_freq(c).double()
    inv_local = rope_inv_freq(c, c["rope_local_base_freq"], scaled=False).double() \
        if "rope_local_base_freq" in c else inv
    if gemma:
        sliding = [t == "sliding_attention" for t in c["layer_types"]]
        window = c["sliding_window"]
        scaling = c["query_pre_attn_scalar"] ** -0.5
        embed_scale = float(np.float32(math.sqrt(D)))  # transformers: a float32 tensor in a float32 model
    else:
        sliding, window, scaling, embed_scale = [False] * L, 0, 1.0 / math.sqrt(hd), 1.0
    if phi3 and c.get("sliding_window"):
        sliding, window = [True] * L, c["sliding_window"]
    mscale = 1.0
    rs = c.get("rope_scaling")
    if rs and rs.get("type") == "longrope":  # transformers: cos and sin times the attention factor
        factor = c["max_position_embeddings"] / c["original_max_position_embeddings"]
        mscale = math.sqrt(1 + math.log(factor) / math.log(c["original_max_position_embeddings"])) \
            if factor > 1 else 1.0
        mscale = float(np.float32(mscale))
    if rs and rs.get("rope_type") == "yarn":  # get_mscale(factor) = 0.1 ln(factor) + 1
        factor = c["max_position_embeddings"] / rs["original_max_position_embeddings"] \
            if "original_max_position_embeddings" in rs else rs["factor"]
        mscale = float(np.float32(0.1 * math.log(factor) + 1.0 if factor > 1 else 1.0))
    def proj(l, mod, name, x):
        p = f"model.layers.{l}.{mod}.{name}"
        y = x @ Wd[p + ".weight"].T
        if p + ".bias" in Wd:
            y = y + Wd[p + ".bias"]
        key = f"base_model.model.{p}"
        if key + ".lora_A.weight" in Ad:
            a, b = Ad[key + ".lora_A.weight"], Ad[key + ".lora_B.weight"]
            lora_out = scale * ((x @ a.T) @ b.T)
            if dora:  # PEFT's DoraLinearLayer: g = m / ||W + s B A|| per row, the norm detached
                w = Wd[p + ".weight"]
                g = Ad[key + ".lora_magnitude_vector"] / torch.linalg.norm(w + scale * (b @ a), dim=1).detach()
                y = y + (g - 1) * (x @ w.T) + g * lora_out
            else:
                y = y + lora_out
        return y

    eps = c["rms_norm_eps"]

    def model_logits(tokens):
        Bn, Tn = tokens.shape
        pos = torch.arange(Tn, dtype=torch.float64)
        tables = {}
        inv_g = rope_inv_freq(c, seq_len=Tn).double()
        for key, f in (("global", inv_g), ("local", inv_local)):
            emb = torch.cat([torch.outer(pos, f)] * 2, dim=-1)
            tables[key] = (emb.cos() * mscale, emb.sin() * mscale)
        x = Wd["model.embed_tokens.weight"][tokens] * embed_scale
        hidden = {}
        qi, kj = torch.arange(Tn).view(-1, 1), torch.arange(Tn).view(1, -1)
        for l in range(L):
            p = f"model.layers.{l}."
            visible = kj <= qi
            if sliding[l]:
                visible = visible & (kj > qi - window)
            mask = torch.zeros(Tn, Tn, dtype=torch.float64).masked_fill(~visible, float("-inf"))
            cos, sin = tables["local" if sliding[l] and "rope_local_base_freq" in c else "global"]
            h = norm(x, Wd[p + "input_layernorm.weight"], eps)
            if phi3:
                qkv = proj(l, "self_attn", "qkv_proj", h)
                q, k, v = qkv.split([H * hd, Hkv * hd, Hkv * hd], dim=-1)
                q = q.view(Bn, Tn, H, hd).transpose(1, 2)
                k = k.view(Bn, Tn, Hkv, hd).transpose(1, 2)
                v = v.view(Bn, Tn, Hkv, hd).transpose(1, 2)
            else:
                q = proj(l, "self_attn", "q_proj", h).view(Bn, Tn, H, hd).transpose(1, 2)
                k = proj(l, "self_attn", "k_proj", h).view(Bn, Tn, Hkv, hd).transpose(1, 2)
                v = proj(l, "self_attn", "v_proj", h).view(Bn, Tn, Hkv, hd).transpose(1, 2)
            if qk_norm:  # Qwen3, Gemma 3: RMSNorm over each head's vector, before RoPE
                q = norm(q, Wd[p + "self_attn.q_norm.weight"], eps)
                k = norm(k, Wd[p + "self_attn.k_norm.weight"], eps)
            rot = cos.shape[-1]  # partial rotary: the first rot dims rotate, the rest pass
            q = torch.cat([q[..., :rot] * cos + rotate_half(q[..., :rot]) * sin, q[..., rot:]], dim=-1)
            k = torch.cat([k[..., :rot] * cos + rotate_half(k[..., :rot]) * sin, k[..., rot:]], dim=-1)
            k, v = k.repeat_interleave(H // Hkv, dim=1), v.repeat_interleave(H // Hkv, dim=1)
            s = softcap(q @ k.transpose(-1, -2) * scaling, c.get("attn_logit_softcapping")) + mask
            o = (torch.softmax(s, dim=-1) @ v).transpose(1, 2).reshape(Bn, Tn, H * hd)
            o = proj(l, "self_attn", "o_proj", o)
            if gemma:
                o = norm(o, Wd[p + "post_attention_layernorm.weight"], eps)
            x = x + o
            h = norm(x, Wd[p + ("pre_feedforward_layernorm.weight" if gemma else "post_attention_layernorm.weight")], eps)
            if phi3:
                g, u = proj(l, "mlp", "gate_up_proj", h).chunk(2, dim=-1)
            else:
                g = proj(l, "mlp", "gate_proj", h)
                u = proj(l, "mlp", "up_proj", h)
            act = torch.nn.functional.gelu(g, approximate="tanh") if gemma else torch.nn.functional.silu(g)
            f = proj(l, "mlp", "down_proj", act * u)
            if gemma:
                f = norm(f, Wd[p + "post_feedforward_layernorm.weight"], eps)
            x = x + f
            hidden[f"hidden.{l}"] = x
        x = norm(x, Wd["model.norm.weight"], eps)
        head = Wd["model.embed_tokens.weight" if c["tie_word_embeddings"] else "lm_head.weight"]
        return softcap(x @ head.T, c.get("final_logit_softcapping")), hidden

    logits, hidden = model_logits(tokens)
    nll = torch.nn.functional.cross_entropy(logits[:, :-1].reshape(-1, V), tokens[:, 1:].reshape(-1),
                                            reduction="none")
    m = mask[:, 1:].reshape(-1).double()
    loss = (nll * m).sum() / m.sum()
    loss.backward()

    d = os.path.join(OUT, name)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "config.json"), "w") as f:
        cfg = dict(c)
        cfg["torch_dtype"] = "float32"
        json.dump(cfg, f, indent=2)
    write_safetensors(os.path.join(d, "model.safetensors"), {k: v.float().numpy() for k, v in W.items()},
                      {"format": "pt"})
    with open(os.path.join(d, "adapter_config.json"), "w") as f:
        ac = {"peft_type": "LORA", "task_type": "CAUSAL_LM", "r": r, "lora_alpha": alpha,
              "lora_dropout": 0.0, "target_modules": lora["target_modules"], "use_rslora": lora["use_rslora"],
              "bias": "none", "fan_in_fan_out": False, "inference_mode": True,
              "base_model_name_or_path": name}
        if dora:
            ac["use_dora"] = True
        json.dump(ac, f, indent=2)
    write_safetensors(os.path.join(d, "adapter_model.safetensors"), {k: v.float().numpy() for k, v in A.items()},
                      {"format": "pt"})
    g = {"tokens": tokens.int().numpy(), "mask": mask.numpy(), "logits": logits.detach().float().numpy(),
         "loss": np.array([loss.item()], dtype=np.float32)}
    for k, v in hidden.items():
        g[k] = v.detach().float().numpy()
    for k, v in Ad.items():
        g["grad." + k] = v.grad.float().numpy()
    if ppl:
        # Hugging Face "Perplexity of fixed-length models", token-weighted, with the adapter.
        stride, max_length, n = ppl
        gen = torch.Generator().manual_seed(seed + 100)
        text = torch.randint(0, V, (1, n), dtype=torch.int64, generator=gen)
        nll_sum, n_tok, prev_end = 0.0, 0, 0
        with torch.no_grad():
            for begin in range(0, n, stride):
                end = min(begin + max_length, n)
                trg = end - prev_end
                ids = text[:, begin:end]
                labels = ids.clone()
                labels[:, :-trg] = -100
                lg, _ = model_logits(ids)
                l2 = torch.nn.functional.cross_entropy(lg[:, :-1].reshape(-1, V), labels[:, 1:].reshape(-1),
                                                       ignore_index=-100, reduction="sum")
                nll_sum += l2.item()
                n_tok += int((labels[:, 1:] != -100).sum())
                prev_end = end
                if end == n:
                    break
        g["ppl.tokens"] = text.int().numpy()
        g["ppl.config"] = np.array([stride, max_length], dtype=np.int32)
        g["ppl.value"] = np.array([math.exp(nll_sum / n_tok)], dtype=np.float32)
        g["ppl.nll_sum"] = np.array([nll_sum], dtype=np.float32)
        print(f"  perplexity {math.exp(nll_sum / n_tok):.6f} over {n_tok} tokens")
    write_safetensors(os.path.join(d, "golden.safetensors"), g)
    print(f"{name}: loss {loss.item():.6f}, {len(A)} LoRA tensors")


def main():
    base = dict(rms_norm_eps=1e-5, max_position_embeddings=512, hidden_act="silu", model_type="llama")
    run_case("llama_gqa_tied",
             dict(base, architectures=["LlamaForCausalLM"], vocab_size=97, hidden_size=32, intermediate_size=72,
                  num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2, head_dim=8,
                  rope_theta=10000.0, tie_word_embeddings=True),
             dict(r=4, lora_alpha=8, use_rslora=False, target_modules=[p for _, p in PROJ]), B=2, T=9, seed=1,
             ppl=(7, 16, 45))
    run_case("qwen2_bias",
             dict(base, architectures=["Qwen2ForCausalLM"], model_type="qwen2", vocab_size=113, hidden_size=24,
                  intermediate_size=40, num_hidden_layers=2, num_attention_heads=3, num_key_value_heads=3,
                  head_dim=8, rope_theta=1000000.0, tie_word_embeddings=False, rms_norm_eps=1e-6),
             dict(r=3, lora_alpha=6, use_rslora=False, target_modules=["q_proj", "v_proj", "o_proj", "down_proj"]),
             B=3, T=7, seed=2)
    run_case("llama3_rope_rslora",
             dict(base, architectures=["LlamaForCausalLM"], vocab_size=89, hidden_size=48, intermediate_size=64,
                  num_hidden_layers=3, num_attention_heads=4, num_key_value_heads=1, head_dim=16,
                  rope_theta=500000.0, tie_word_embeddings=False,
                  rope_scaling=dict(rope_type="llama3", factor=8.0, low_freq_factor=1.0, high_freq_factor=4.0,
                                    original_max_position_embeddings=64)),
             dict(r=5, lora_alpha=10, use_rslora=True, target_modules=["k_proj", "gate_proj", "up_proj"]),
             B=1, T=11, seed=3)
    run_case("qwen3_qk_norm",
             dict(base, architectures=["Qwen3ForCausalLM"], model_type="qwen3", vocab_size=101, hidden_size=32,
                  intermediate_size=56, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                  head_dim=12, rope_theta=1000000.0, tie_word_embeddings=True, rms_norm_eps=1e-6,
                  attention_bias=False, use_sliding_window=False),
             dict(r=4, lora_alpha=8, use_rslora=False, target_modules=[p for _, p in PROJ]), B=2, T=9, seed=4)
    run_case("phi3_longrope",  # fused qkv/gate_up, half the head dims rotary, LongRoPE long factors (T > 16), window 5
             dict(base, architectures=["Phi3ForCausalLM"], model_type="phi3", vocab_size=91, hidden_size=32,
                  intermediate_size=40, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                  head_dim=8, partial_rotary_factor=0.5, rope_theta=10000.0, tie_word_embeddings=False,
                  max_position_embeddings=64, original_max_position_embeddings=16, sliding_window=5,
                  rope_scaling=dict(type="longrope", short_factor=[1.0, 1.5], long_factor=[2.0, 3.5])),
             dict(r=4, lora_alpha=8, use_rslora=False, target_modules=["qkv_proj", "o_proj", "gate_up_proj",
                                                                      "down_proj"]), B=1, T=18, seed=7)
    run_case("llama_yarn",  # YaRN: factor 4 from max_position / original, ramp between beta_fast and beta_slow
             dict(base, architectures=["LlamaForCausalLM"], vocab_size=83, hidden_size=32, intermediate_size=48,
                  num_hidden_layers=2, num_attention_heads=2, num_key_value_heads=2, head_dim=16,
                  rope_theta=10000.0, tie_word_embeddings=True, max_position_embeddings=64,
                  rope_scaling=dict(rope_type="yarn", factor=4.0, original_max_position_embeddings=16,
                                    beta_fast=8.0, beta_slow=1.0)),
             dict(r=2, lora_alpha=4, use_rslora=False, target_modules=["q_proj", "v_proj"]), B=1, T=12, seed=8)
    run_case("qwen2_dynamic_ntk",  # dynamic NTK: 12 positions past max_position_embeddings 8 grow the base
             dict(base, architectures=["Qwen2ForCausalLM"], model_type="qwen2", vocab_size=79, hidden_size=24,
                  intermediate_size=32, num_hidden_layers=2, num_attention_heads=2, num_key_value_heads=1,
                  head_dim=12, rope_theta=10000.0, tie_word_embeddings=True, max_position_embeddings=8,
                  rms_norm_eps=1e-6, rope_scaling=dict(rope_type="dynamic", factor=2.0)),
             dict(r=2, lora_alpha=4, use_rslora=False, target_modules=["k_proj", "o_proj"]), B=1, T=12, seed=9)
    gemma = dict(base, hidden_act="gelu_pytorch_tanh", hidden_activation="gelu_pytorch_tanh", rms_norm_eps=1e-6,
                 attention_bias=False, tie_word_embeddings=True)
    run_case("gemma2_softcap",  # query_pre_attn_scalar != head_dim, both soft-caps bending, window 4 on layers 0, 2
             dict(gemma, architectures=["Gemma2ForCausalLM"], model_type="gemma2", vocab_size=103, hidden_size=32,
                  intermediate_size=48, num_hidden_layers=3, num_attention_heads=4, num_key_value_heads=2,
                  head_dim=8, query_pre_attn_scalar=12, rope_theta=10000.0, attn_logit_softcapping=2.0,
                  final_logit_softcapping=3.0, sliding_window=4,
                  layer_types=["sliding_attention", "full_attention", "sliding_attention"]),
             dict(r=4, lora_alpha=8, use_rslora=False, target_modules=[p for _, p in PROJ]), B=2, T=9, seed=5)
    run_case("gemma3_local_rope",  # q/k norms, global layer with linear rope scaling, local base 10000, window 3
             dict(gemma, architectures=["Gemma3ForCausalLM"], model_type="gemma3_text", vocab_size=97, hidden_size=24,
                  intermediate_size=40, num_hidden_layers=3, num_attention_heads=2, num_key_value_heads=1,
                  head_dim=8, query_pre_attn_scalar=8, rope_theta=1000000.0, rope_local_base_freq=10000.0,
                  rope_scaling=dict(rope_type="linear", factor=8.0), attn_logit_softcapping=None,
                  final_logit_softcapping=None, sliding_window=3,
                  layer_types=["sliding_attention", "full_attention", "sliding_attention"]),
             dict(r=3, lora_alpha=6, use_rslora=True, target_modules=["q_proj", "k_proj", "o_proj", "gate_proj",
                                                                      "down_proj"]), B=2, T=10, seed=6)
    run_case("qwen2_dora",  # DoRA (use_dora) with qkv biases: magnitude vectors and their gradients
             dict(base, architectures=["Qwen2ForCausalLM"], model_type="qwen2", vocab_size=89, hidden_size=24,
                  intermediate_size=40, num_hidden_layers=2, num_attention_heads=3, num_key_value_heads=1,
                  head_dim=8, rope_theta=1000000.0, tie_word_embeddings=False, rms_norm_eps=1e-6),
             dict(r=4, lora_alpha=8, use_rslora=False, use_dora=True, target_modules=[p for _, p in PROJ]),
             B=2, T=8, seed=7)


if __name__ == "__main__":
    main()
