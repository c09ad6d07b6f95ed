// GGUF LoRA adapters; see gguf_adapter.h. Validation follows llama.cpp's
// llama_adapter_lora_init (type, architecture, a/b pairing, shapes) with tpro's messages.
#include "formats/gguf_adapter.h"

#include <cctype>
#include <cmath>
#include <cstring>
#include <map>

#include "core/dtype.h"
#include "core/error.h"
#include "core/log.h"
#include "core/tensor.h"
#include "formats/gguf_model.h"
#include "io/gguf_writer.h"

namespace tpro {

namespace {

DType dtype_of(GgmlType t) {
  switch (t) {
    case GgmlType::F32: return DType::F32;
    case GgmlType::F16: return DType::F16;
    case GgmlType::BF16: return DType::BF16;
    default: fail("cannot write a GGUF adapter as ", ggml_type_name(t), " (hint: use F32, F16 or BF16)");
  }
}

// rows (rows, cols) f32 -> bytes of `type`, rows permuted first when n_head > 0.
std::vector<uint8_t> tensor_bytes(const float* x, int64_t rows, int64_t cols, int64_t n_head, DType type) {
  std::vector<float> permuted;
  if (n_head > 0) {
    permuted.resize(size_t(rows * cols));
    permute_qk_rows(x, permuted.data(), rows, size_t(cols) * sizeof(float), n_head);
    x = permuted.data();
  }
  std::vector<uint8_t> bytes(size_t(rows * cols) * dtype_size(type));
  from_f32(bytes.data(), type, x, size_t(rows * cols));
  return bytes;
}

// Heads of the Q/K projections whose rows llama.cpp permutes; 0 for the others.
int64_t qk_heads(const LlamaConfig& c, Proj p) {
  if (!gguf_permutes_qk(gguf_arch(c))) return 0;
  return p == Proj::Q ? c.n_head : p == Proj::K ? c.n_head_kv : 0;
}

void write_base_shape(GgufWriter& w, const LlamaConfig& c) {
  const std::string a = gguf_arch(c) + ".";
  w.set(a + "embedding_length", uint32_t(c.n_embd));
  w.set(a + "feed_forward_length", uint32_t(c.n_ff));
  w.set(a + "block_count", uint32_t(c.n_layer));
  w.set(a + "attention.head_count", uint32_t(c.n_head));
  w.set(a + "attention.head_count_kv", uint32_t(c.n_head_kv));
  w.set(a + "attention.key_length", uint32_t(c.head_dim));
}

struct Pair {
  const GgufTensor* a = nullptr;
  const GgufTensor* b = nullptr;
};

// The projections a base has: fused (phi3: attn_qkv, and ffn_up holding gate_up) or separate.
bool base_has(const LlamaConfig& c, Proj p) {
  const bool fused = p == Proj::QKV || p == Proj::GateUp;
  const bool split = p == Proj::Q || p == Proj::K || p == Proj::V || p == Proj::Gate || p == Proj::Up;
  return c.fused_proj ? !split : !fused;
}

std::string expected_names(const LlamaConfig& c) {
  std::string s;
  for (int p = 0; p < kNumProj; ++p)
    if (base_has(c, Proj(p))) s += cat(s.empty() ? "" : "|", gguf_proj_name(Proj(p)));
  return "blk.N.<" + s + ">.weight.lora_a / .lora_b";
}

// "blk.N.<proj>.weight.lora_a" -> (N, proj, is_a); false for any other name. ffn_up is the
// fused gate_up of a phi3 base, the up projection of the others.
bool parse_lora_name(const std::string& name, const LlamaConfig& base, int64_t* layer, Proj* proj, bool* is_a) {
  if (name.rfind("blk.", 0) != 0) return false;
  size_t i = 4, j = i;
  while (j < name.size() && std::isdigit(static_cast<unsigned char>(name[j]))) ++j;
  if (j == i || j - i > 9 || j >= name.size() || name[j] != '.') return false;
  *layer = std::stoll(name.substr(i, j - i));
  const std::string rest = name.substr(j + 1);
  for (int p = 0; p < kNumProj; ++p) {
    if (!base_has(base, Proj(p))) continue;
    const std::string stem = std::string(gguf_proj_name(Proj(p))) + ".weight.lora_";
    if (rest == stem + "a" || rest == stem + "b") {
      *proj = Proj(p);
      *is_a = rest.back() == 'a';
      return true;
    }
  }
  return false;
}

std::map<std::pair<int64_t, int>, Pair> collect_pairs(const GgufFile& f, const std::string& where,
                                                      const LlamaConfig& base) {
  const int64_t n_layer = base.n_layer;
  std::map<std::pair<int64_t, int>, Pair> pairs;
  for (const GgufTensor& t : f.tensors()) {
    int64_t layer;
    Proj p;
    bool is_a;
    if (!parse_lora_name(t.name, base, &layer, &p, &is_a)) {
      if (t.name.size() > 12 && t.name.compare(t.name.size() - 12, 12, "_norm.weight") == 0) {
        log_warn(where, "ignoring norm tensor '", t.name, "' (llama.cpp ignores adapter norms too)");
        continue;
      }
      fail(where, "tensor '", t.name, "' is not a LoRA weight tpro applies to this ", gguf_arch(base), " base (expected ",
           expected_names(base), ")");
    }
    if (layer >= n_layer) {
      fail(where, "tensor '", t.name, "' is for layer ", layer, " but the base model has ", n_layer,
           " layers (hint: maybe wrong base model?)");
    }
    Pair& pr = pairs[{layer, int(p)}];
    (is_a ? pr.a : pr.b) = &t;
  }
  for (const auto& [key, pr] : pairs) {
    if (!pr.a || !pr.b) {
      fail(where, "LoRA pair of '", gguf_weight_name(key.first, Proj(key.second)), "' lacks its ",
           pr.a ? "lora_b" : "lora_a", " tensor");
    }
  }
  if (pairs.empty()) fail(where, "no LoRA tensors");
  return pairs;
}

void check_base(const GgufFile& f, const std::string& where, const LlamaConfig& base) {
  const std::string arch = f.get_string("general.architecture"), want = gguf_arch(base);
  if (arch != want) {
    fail(where, "the adapter is for architecture '", arch, "' but the base model is '", want,
         "' (hint: the adapter was trained on another base model)");
  }
  const std::pair<const char*, int64_t> keys[] = {{"attention.head_count", base.n_head},
                                                  {"attention.head_count_kv", base.n_head_kv},
                                                  {"block_count", base.n_layer},
                                                  {"embedding_length", base.n_embd}};
  for (const auto& [k, v] : keys) {
    const std::string key = arch + "." + k;
    if (f.has(key) && f.get_int(key) != v) {
      fail(where, key, " is ", f.get_int(key), " but the base model has ", v, " (hint: maybe wrong base model?)");
    }
  }
}

void read_tensor(const GgufFile& f, const GgufTensor& t, int64_t rows, int64_t cols, float* dst) {
  WeightMatrix w;
  if (!ggml_type_supported(t.type) || !wtype_from_ggml(uint32_t(t.type), &w.type)) {
    fail("GGUF adapter ", f.path().string(), ": tensor '", t.name, "' has type ", ggml_type_name(t.type),
         " (supported: ", ggml_supported_types(), ")");
  }
  w.rows = rows;
  w.cols = cols;
  w.data = t.data;
  dequantize_rows(w, 0, rows, dst);
}

LoraConfig lora_config(const GgufFile& f, int64_t r, const std::map<std::pair<int64_t, int>, Pair>& pairs) {
  LoraConfig lc;
  lc.r = r;
  for (const auto& kv : pairs) lc.targets[size_t(kv.first.second)] = true;
  if (f.has("tpro.lora.alpha")) {
    lc.alpha = f.get_f64("tpro.lora.alpha");
    lc.rslora = f.get_or<bool>("tpro.lora.use_rslora", false);
  } else {
    const float a = f.get_or<float>("adapter.lora.alpha", 0.0f);
    lc.alpha = a != 0.0f ? double(a) : double(r);  // llama.cpp: no alpha means scale 1
  }
  lc.dropout = f.get_or<double>("tpro.lora.dropout", 0.0);
  return lc;
}

}  // namespace

void save_adapter_gguf(const fs::path& file, const LoraWeights& lw, const LlamaConfig& base,
                       const std::string& base_model, GgmlType type) {
  const DType dt = dtype_of(type);
  if (lw.cfg.dora)
    fail("cannot write GGUF adapter ", file.string(), ": it is a DoRA adapter, and llama.cpp's LoRA adapters carry only",
         " the A and B matrices, not DoRA's magnitude vectors (hint: `tpro merge` folds it into the base model, whose",
         " GGUF llama.cpp runs)");
  if (lw.slot_of.size() != size_t(base.n_layer * kNumProj)) {
    fail("cannot write GGUF adapter ", file.string(), ": the adapter has ", lw.slot_of.size() / kNumProj,
         " layers, the base model ", base.n_layer);
  }
  if (lw.embed_at >= 0 || lw.head_at >= 0) {
    std::string mods;
    for (const auto& m : saved_module_names(lw.cfg)) mods += (mods.empty() ? "" : " and ") + m;
    fail("cannot write GGUF adapter ", file.string(), ": the adapter trains full copies of ", mods,
         " (modules_to_save, Train Head), which a llama.cpp LoRA adapter cannot carry (hint: use the PEFT folder, ",
         "or tpro merge it into the base model and convert that)");
  }
  GgufWriter w;
  w.set("general.architecture", gguf_arch(base));
  w.set("general.type", "adapter");
  w.set("adapter.type", "lora");
  const double r = double(lw.cfg.r);
  w.set("adapter.lora.alpha", float(lw.cfg.rslora ? lw.cfg.alpha * std::sqrt(r) : lw.cfg.alpha));
  write_base_shape(w, base);
  w.set("tpro.lora.alpha", lw.cfg.alpha);
  w.set("tpro.lora.use_rslora", lw.cfg.rslora);
  w.set("tpro.lora.dropout", lw.cfg.dropout);
  if (!base_model.empty()) w.set("tpro.base_model", base_model);
  for (const LoraSlot& s : lw.slots) {
    const std::string name = gguf_weight_name(s.layer, s.proj);
    const float* A = lw.params.data() + s.a;
    const float* B = lw.params.data() + s.b;
    w.add_tensor(name + ".lora_a", type, {s.in, lw.cfg.r}, tensor_bytes(A, lw.cfg.r, s.in, 0, dt));
    w.add_tensor(name + ".lora_b", type, {lw.cfg.r, s.out}, tensor_bytes(B, s.out, lw.cfg.r, qk_heads(base, s.proj), dt));
  }
  w.write(file);
}

LoraWeights load_adapter_gguf(const fs::path& file, const LlamaConfig& base, GgufAdapterMeta* meta) {
  GgufFile f(file);
  const std::string where = cat("GGUF adapter ", file.string(), ": ");
  const std::string type = f.get_or<std::string>("general.type", "");
  if (type != "adapter") {
    fail(where, "general.type is '", type, "', expected 'adapter' (hint: ",
         type == "model" ? "this is a model; pass it as --model" : "this is not a LoRA adapter", ")");
  }
  const std::string atype = f.get_or<std::string>("adapter.type", "");
  if (atype != "lora") fail(where, "adapter.type is '", atype, "', expected 'lora'");
  check_base(f, where, base);
  const auto pairs = collect_pairs(f, where, base);
  const GgufTensor& first = *pairs.begin()->second.a;
  const int64_t r = first.ne.size() == 2 ? first.ne[1] : 0;
  if (r <= 0) fail(where, "tensor '", first.name, "' has ne ", shape_str(first.ne), ", expected (in, rank)");
  Rng rng(0);
  LoraWeights lw = make_lora(base, lora_config(f, r, pairs), rng);
  std::fill(lw.params.begin(), lw.params.end(), 0.0f);
  std::vector<float> tmp;
  for (const auto& [key, pr] : pairs) {
    const LoraSlot& s = *lw.find(key.first, Proj(key.second));
    const std::vector<int64_t> want_a = {s.in, r}, want_b = {r, s.out};
    if (pr.a->ne != want_a || pr.b->ne != want_b) {
      fail(where, "tensor '", gguf_weight_name(s.layer, s.proj), "' has incorrect shape: lora_a ne ",
           shape_str(pr.a->ne), ", lora_b ne ", shape_str(pr.b->ne), ", expected ", shape_str(want_a), " and ",
           shape_str(want_b), " (rank ", r, "; hint: maybe wrong base model?)");
    }
    read_tensor(f, *pr.a, r, s.in, lw.params.data() + s.a);
    tmp.resize(size_t(s.out * r));
    read_tensor(f, *pr.b, s.out, r, tmp.data());
    const int64_t heads = qk_heads(base, s.proj);
    if (heads > 0) {
      unpermute_qk_rows(tmp.data(), lw.params.data() + s.b, s.out, size_t(r) * sizeof(float), heads);
    } else {
      std::memcpy(lw.params.data() + s.b, tmp.data(), tmp.size() * sizeof(float));
    }
  }
  if (meta) meta->base_model = f.get_or<std::string>("tpro.base_model", "");
  return lw;
}

LlamaConfig gguf_adapter_base_config(const GgufFile& f) {
  const std::string arch = f.get_string("general.architecture");
  const char* hf = arch == "llama"    ? "LlamaForCausalLM"
                   : arch == "qwen2"  ? "Qwen2ForCausalLM"
                   : arch == "qwen3"  ? "Qwen3ForCausalLM"
                   : arch == "gemma2" ? "Gemma2ForCausalLM"
                   : arch == "gemma3" ? "Gemma3ForCausalLM"
                   : arch == "phi3"   ? "Phi3ForCausalLM"
                                      : nullptr;
  if (!hf) {
    fail("GGUF adapter ", f.path().string(), ": general.architecture '", arch,
         "' is not supported (llama, qwen2, qwen3, gemma2, gemma3, phi3)");
  }
  const std::string a = arch + ".";
  LlamaConfig c;
  c.architecture = hf;
  c.model_type = arch == "gemma3" ? "gemma3_text" : arch;
  c.fused_proj = arch == "phi3";  // its adapters are over attn_qkv and the fused ffn_up
  try {
    c.n_embd = f.get_int(a + "embedding_length");
    c.n_ff = f.get_int(a + "feed_forward_length");
    c.n_layer = f.get_int(a + "block_count");
    c.n_head = f.get_int(a + "attention.head_count");
    c.n_head_kv = f.get_int(a + "attention.head_count_kv");
    c.head_dim = f.get_int(a + "attention.key_length");
  } catch (const Error& e) {
    fail(e.what(), " (hint: the adapter does not record its base model's shape; pass the base model)");
  }
  if (c.n_embd <= 0 || c.n_ff <= 0 || c.n_layer <= 0 || c.n_head <= 0 || c.n_head_kv <= 0 || c.head_dim <= 0 ||
      c.n_head % c.n_head_kv != 0) {
    fail("GGUF adapter ", f.path().string(), ": inconsistent base shape metadata under ", arch, ".*");
  }
  return c;
}

}  // namespace tpro
