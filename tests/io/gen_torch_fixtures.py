#!/usr/bin/python3
"""Writes tests/fixtures/torch/: torch.save files as PEFT and text-generation-webui's Training
PRO write adapter_model.bin, each next to the same tensors as f32 safetensors (hand-written, no
safetensors module needed) that tests/io/torch_pickle_test.cpp and tests/formats compare with.
Run with Debian's python3-torch:  /usr/bin/python3 tests/io/gen_torch_fixtures.py
Deterministic (fixed seed) except legacy.bin, whose storage keys are object ids; the outputs
are committed, so tests need no Python."""
import collections
import json
import os
import struct

import torch

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "fixtures", "torch")


def write_safetensors(path, tensors):
    header, blobs, off = {}, [], 0
    for name in sorted(tensors):
        b = tensors[name].detach().float().contiguous().numpy().tobytes()
        header[name] = {"dtype": "F32", "shape": list(tensors[name].shape), "data_offsets": [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    h = json.dumps(header).encode()
    h += b" " * ((8 - (len(h) + 8) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + b"".join(blobs))


def peft_name(layer, module, ab):
    return f"base_model.model.model.layers.{layer}.{module}.lora_{ab}.weight"


def peft_folder(name, dtype, r, d, kv_out, layers=2):
    """A PEFT folder for tests/common/tiny_config.h's tiny_config(16, 32) (2 layers, q_proj 16 out
    and v_proj 8 out), or fuzz/fuzz_util.h's tiny_config() (1 layer, 8 and 4): Training PRO's
    default targets. B is non-zero, as after training."""
    sd = {}
    for layer in range(layers):
        for module, out in (("self_attn.q_proj", d), ("self_attn.v_proj", kv_out)):
            sd[peft_name(layer, module, "A")] = (torch.randn(r, d) * 0.3).to(dtype)
            sd[peft_name(layer, module, "B")] = (torch.randn(out, r) * 0.1).to(dtype)
    folder = os.path.join(OUT, name)
    os.makedirs(folder, exist_ok=True)
    cfg = {"base_model_name_or_path": "tiny", "bias": "none", "fan_in_fan_out": False, "inference_mode": True,
           "init_lora_weights": True, "lora_alpha": 8, "lora_dropout": 0.05, "modules_to_save": None,
           "peft_type": "LORA", "r": r, "target_modules": ["q_proj", "v_proj"], "task_type": "CAUSAL_LM"}
    with open(os.path.join(folder, "adapter_config.json"), "w") as f:
        json.dump(cfg, f, indent=2)
    torch.save(sd, os.path.join(folder, "adapter_model.bin"))  # a plain dict, as PEFT's state dict is
    write_safetensors(os.path.join(OUT, name + "_expected.safetensors"), sd)


class Shell:
    """Pickles as a call of os.system: what a malicious adapter_model.bin holds."""

    def __reduce__(self):
        return (os.system, ("echo pwned",))


def main():
    torch.manual_seed(17)
    os.makedirs(OUT, exist_ok=True)
    peft_folder("peft_f16", torch.float16, 4, 16, 8)
    peft_folder("peft_bf16", torch.bfloat16, 4, 16, 8)
    peft_folder("peft_fuzz_tiny", torch.float32, 2, 8, 4, layers=1)  # fuzz/fuzz_torch_pickle.cpp's seed

    # An OrderedDict with state_dict()'s _metadata attribute (pickled with BUILD), f32 views that
    # share one storage at offsets, a scalar, an empty tensor and a size-1 dimension.
    base = torch.randn(40)
    sd = collections.OrderedDict()
    sd["a"] = base[0:12].view(3, 4)
    sd["b"] = base[12:20].view(2, 1, 4)
    sd["scalar"] = torch.tensor(2.5)
    sd["empty"] = torch.zeros(0, 3)
    sd["half"] = torch.randn(5).half()
    sd["bf16"] = torch.randn(2, 3).bfloat16()
    sd._metadata = collections.OrderedDict([("", {"version": 1}), ("layer", {"version": 2})])
    torch.save(sd, os.path.join(OUT, "mixed.bin"))
    torch.save(dict(sd), os.path.join(OUT, "mixed_protocol4.bin"), pickle_protocol=4)
    write_safetensors(os.path.join(OUT, "mixed_expected.safetensors"), sd)

    torch.save({"w": torch.randn(3, 2)}, os.path.join(OUT, "legacy.bin"), _use_new_zipfile_serialization=False)
    torch.save({"w": torch.randn(3, 2).t()}, os.path.join(OUT, "transposed.bin"))
    torch.save({"ids": torch.arange(4)}, os.path.join(OUT, "int64.bin"))
    torch.save({"w": torch.randn(2), "x": Shell()}, os.path.join(OUT, "os_system.bin"))


if __name__ == "__main__":
    main()
