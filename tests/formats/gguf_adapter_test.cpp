// GGUF LoRA adapters: written in llama.cpp's layout (keys, shapes, lora_b rows permuted for
// attn_q/attn_k, alpha·√r for rsLoRA), read back identical, PEFT -> GGUF -> PEFT identical,
// the same logits on a GGUF base as the PEFT adapter on the safetensors base, F16/BF16 files
// within their rounding, the base shape read from the metadata, and refusals (another
// architecture, a model file, an incomplete pair, a wrong shape, wrong heads, an undecodable
// type, no LoRA tensors, a quantized type to write, missing or inconsistent shape keys).
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>

#include "formats/adapter_convert.h"
#include "formats/gguf_adapter.h"
#include "formats/gguf_model.h"
#include "formats/load.h"
#include "formats/model_writer.h"
#include "formats/peft_adapter.h"
#include "io/peft.h"
#include "io/safetensors.h"
#include "model/model_test_util.h"

using namespace tpro;
using namespace tpro::test;
using ::testing::HasSubstr;

namespace {

// An adapter on every projection with non-zero A and B (a fresh LoRA has B = 0).
LoraWeights random_lora(const LlamaConfig& c, bool rslora, uint64_t seed = 5) {
  LoraConfig lc;
  lc.r = 4;
  lc.alpha = 8;
  lc.rslora = rslora;
  lc.dropout = 0.05;
  lc.targets.fill(true);
  Rng rng(seed);
  LoraWeights lw = make_lora(c, lc, rng);
  for (auto& p : lw.params) p = float(rng.uniform(-0.2, 0.2));
  return lw;
}

struct Fixture {
  fs::path dir;
  Model hf;
  explicit Fixture(const fs::path& d) : dir(d) {
    write_random_model(d / "hf", small_config(), 3, DType::F32, 0.3f);
    hf = load_model(d / "hf");
  }
};

// A valid adapter file (good), and the error that loading an edited copy of it (bad) gives.
struct EditedAdapter {
  Fixture fx{temp_dir("a")};
  fs::path good = fx.dir / "a.gguf", bad = fx.dir / "bad.gguf";
  EditedAdapter() { save_adapter_gguf(good, random_lora(fx.hf.cfg, false), fx.hf.cfg, ""); }
  std::string load_error(const GgufEdit& e) const {
    rewrite_gguf(good, bad, e);
    return error_of([&] { load_adapter_gguf(bad, fx.hf.cfg); });
  }
};

std::vector<float> tensor_f32(const GgufFile& f, const std::string& name) {
  const GgufTensor& t = f.tensor(name);
  EXPECT_EQ(t.type, GgmlType::F32) << name;
  const float* p = reinterpret_cast<const float*>(t.data);
  return std::vector<float>(p, p + t.numel());
}

}  // namespace

TEST(GgufAdapter, WrittenInLlamaCppLayout) {
  Fixture fx(temp_dir("a"));
  const LoraWeights lw = random_lora(fx.hf.cfg, true);
  const fs::path file = fx.dir / "adapter.gguf";
  save_adapter_gguf(file, lw, fx.hf.cfg, "my-base");
  const GgufFile f(file);
  EXPECT_EQ(f.get_string("general.type"), "adapter");
  EXPECT_EQ(f.get_string("adapter.type"), "lora");
  EXPECT_EQ(f.get_string("general.architecture"), "llama");
  EXPECT_FLOAT_EQ(f.get_f32("adapter.lora.alpha"), float(8 * std::sqrt(4.0)));  // llama.cpp divides by r
  EXPECT_EQ(f.tensors().size(), 2u * 7u * 2u);
  const LoraSlot& q = *lw.find(1, Proj::Q);
  const GgufTensor& a = f.tensor("blk.1.attn_q.weight.lora_a");
  const GgufTensor& b = f.tensor("blk.1.attn_q.weight.lora_b");
  EXPECT_EQ(a.ne, (std::vector<int64_t>{q.in, 4}));   // PEFT A (r, in), row-major
  EXPECT_EQ(b.ne, (std::vector<int64_t>{4, q.out}));  // PEFT B (out, r)
  const std::vector<float> A(lw.params.begin() + long(q.a), lw.params.begin() + long(q.a + 4 * q.in));
  EXPECT_EQ(tensor_f32(f, "blk.1.attn_q.weight.lora_a"), A);
  // lora_b rows in the base's GGUF order: row h*Dh + 2i + j holds B row h*Dh + j*Dh/2 + i.
  const std::vector<float> gb = tensor_f32(f, "blk.1.attn_q.weight.lora_b");
  const int64_t Dh = fx.hf.cfg.head_dim;
  for (int64_t h = 0; h < fx.hf.cfg.n_head; ++h)
    for (int64_t i = 0; i < Dh / 2; ++i)
      for (int64_t j = 0; j < 2; ++j)
        for (int64_t k = 0; k < 4; ++k)
          ASSERT_EQ(gb[size_t((h * Dh + 2 * i + j) * 4 + k)], lw.params[q.b + size_t((h * Dh + j * Dh / 2 + i) * 4 + k)]);
  const LoraSlot& v = *lw.find(0, Proj::V);
  const std::vector<float> B(lw.params.begin() + long(v.b), lw.params.begin() + long(v.b + 4 * v.out));
  EXPECT_EQ(tensor_f32(f, "blk.0.attn_v.weight.lora_b"), B);
}

TEST(GgufAdapter, WrittenThenReadBackIdentical) {
  Fixture fx(temp_dir("a"));
  for (bool rs : {false, true}) {
    const LoraWeights lw = random_lora(fx.hf.cfg, rs);
    save_adapter_gguf(fx.dir / "a.gguf", lw, fx.hf.cfg, "base");
    GgufAdapterMeta meta;
    const LoraWeights back = load_adapter_gguf(fx.dir / "a.gguf", fx.hf.cfg, &meta);
    EXPECT_EQ(back.params, lw.params);
    EXPECT_EQ(back.cfg.r, 4);
    EXPECT_EQ(back.cfg.alpha, 8.0);
    EXPECT_EQ(back.cfg.rslora, rs);
    EXPECT_EQ(back.cfg.dropout, 0.05);
    EXPECT_EQ(back.cfg.targets, lw.cfg.targets);
    EXPECT_EQ(meta.base_model, "base");
  }
}

// A file from another tool has only adapter.lora.alpha; llama.cpp scales it by alpha / r.
TEST(GgufAdapter, ForeignFileScalesLikeLlamaCpp) {
  Fixture fx(temp_dir("a"));
  const LoraWeights lw = random_lora(fx.hf.cfg, true);
  save_adapter_gguf(fx.dir / "a.gguf", lw, fx.hf.cfg, "");
  rewrite_gguf(fx.dir / "a.gguf", fx.dir / "foreign.gguf", {[](GgufWriter& w) {
                 GgufWriter clean;
                 for (const GgufKV& kv : w.metadata())
                   if (kv.key.rfind("tpro.", 0) != 0) clean.set(kv.key, kv.value);
                 w = clean;
               }, nullptr});
  const LoraWeights back = load_adapter_gguf(fx.dir / "foreign.gguf", fx.hf.cfg);
  EXPECT_FALSE(back.cfg.rslora);
  EXPECT_NEAR(back.cfg.scale(), lw.cfg.scale(), 1e-6);
  const auto toks = sample_tokens(fx.hf.cfg.vocab_size);
  EXPECT_LT(max_abs_diff(logits_of(fx.hf, &back, toks), logits_of(fx.hf, &lw, toks)), 1e-5);
}

TEST(GgufAdapter, PeftToGgufToPeftIsIdentical) {
  Fixture fx(temp_dir("a"));
  const LoraWeights lw = random_lora(fx.hf.cfg, true);
  const fs::path peft = fx.dir / "peft", gguf = fx.dir / "lora.gguf", back = fx.dir / "back";
  save_adapter(peft, lw, (fx.dir / "hf").string());  // a local base path: no --base needed
  const ConvertResult r1 = convert_adapter(peft, gguf, "");
  EXPECT_EQ(r1.to_format, "GGUF");
  EXPECT_EQ(r1.n_pairs, 14);
  const ConvertResult r2 = convert_adapter(gguf, back, "");  // the GGUF records the base's shape
  EXPECT_EQ(r2.to_format, "PEFT");
  EXPECT_EQ(read_file(back / "adapter_config.json"), read_file(peft / "adapter_config.json"));
  SafeTensorsFile a(peft / "adapter_model.safetensors"), b(back / "adapter_model.safetensors");
  ASSERT_EQ(a.names(), b.names());
  for (const auto& n : a.names()) {
    const TensorView x = a.view(n), y = b.view(n);
    ASSERT_EQ(x.shape, y.shape) << n;
    ASSERT_EQ(std::memcmp(x.data, y.data, x.nbytes()), 0) << n;
  }
  // An existing folder as --to gets <folder>/adapter.gguf.
  EXPECT_EQ(convert_adapter(peft, back, fx.dir / "hf").written, back / "adapter.gguf");
}

TEST(GgufAdapter, ConvertNeedsTheBaseForPeft) {
  Fixture fx(temp_dir("a"));
  save_adapter(fx.dir / "peft", random_lora(fx.hf.cfg, false), "some-org/some-model");
  EXPECT_ERROR_HAS(convert_adapter(fx.dir / "peft", fx.dir / "x.gguf", ""),
                   "the recorded base 'some-org/some-model' is not a local path (hint: pass --base");
  EXPECT_ERROR_HAS(convert_adapter(fx.dir / "nothing", fx.dir / "x.gguf", ""), "nothing: it does not exist");
  EXPECT_ERROR_HAS(convert_adapter(fx.dir / "hf", fx.dir / "x.gguf", ""),
                   "neither a GGUF adapter file nor a PEFT folder");
}

// The GGUF adapter on the GGUF base computes what the PEFT adapter does on the safetensors base.
TEST(GgufAdapter, SameLogitsOnGgufBase) {
  Fixture fx(temp_dir("a"));
  const LoraWeights lw = random_lora(fx.hf.cfg, false);
  save_model_gguf(fx.dir / "base.gguf", fx.hf, {});
  save_adapter_gguf(fx.dir / "a.gguf", lw, fx.hf.cfg, "");
  const Model gg = load_model(fx.dir / "base.gguf");
  const LoraWeights ga = load_lora(fx.dir / "a.gguf", gg.cfg);
  const auto toks = sample_tokens(fx.hf.cfg.vocab_size);
  EXPECT_EQ(logits_of(gg, &ga, toks), logits_of(fx.hf, &lw, toks));
}

TEST(GgufAdapter, RefusesMismatches) {
  const EditedAdapter ea;
  const Fixture& fx = ea.fx;
  EXPECT_THAT(ea.load_error({[](GgufWriter& w) { w.set("general.architecture", "qwen2"); }, nullptr}),
              HasSubstr("the adapter is for architecture 'qwen2' but the base model is 'llama'"));
  EXPECT_THAT(ea.load_error({[](GgufWriter& w) { w.set("general.type", "model"); }, nullptr}),
              HasSubstr("general.type is 'model', expected 'adapter' (hint: this is a model; pass it as --model)"));
  EXPECT_THAT(ea.load_error({[](GgufWriter& w) { w.set("adapter.type", "control_vector"); }, nullptr}),
              HasSubstr("adapter.type is 'control_vector', expected 'lora'"));
  EXPECT_THAT(ea.load_error({[](GgufWriter& w) { w.set("llama.attention.head_count", uint32_t(8)); }, nullptr}),
              HasSubstr("llama.attention.head_count is 8 but the base model has 4"));
  EXPECT_THAT(ea.load_error({nullptr, [](const std::string& n, auto&, auto&, auto&) {
                                return n == "blk.1.ffn_up.weight.lora_b" ? std::string() : n;
                              }}),
              HasSubstr("LoRA pair of 'blk.1.ffn_up.weight' lacks its lora_b tensor"));
  EXPECT_THAT(ea.load_error({nullptr, [](const std::string& n, auto&, auto&, auto&) {
                                return n == "blk.0.attn_v.weight.lora_a" ? std::string("blk.0.attn_v.lora_a") : n;
                              }}),
              HasSubstr("tensor 'blk.0.attn_v.lora_a' is not a LoRA weight tpro applies"));
  EXPECT_THAT(ea.load_error({nullptr, [](const std::string& n, auto&, auto&, auto&) {
                                return n.rfind("blk.1.", 0) == 0 ? "blk.7." + n.substr(6) : n;
                              }}),
              HasSubstr("is for layer 7 but the base model has 2 layers (hint: maybe wrong base model?)"));
  // The same adapter on a base whose FFN is wider.
  LlamaConfig wide = fx.hf.cfg;
  wide.n_ff = 192;
  EXPECT_ERROR_HAS(load_adapter_gguf(ea.good, wide),
                   "tensor 'blk.0.ffn_gate.weight' has incorrect shape: lora_a ne (64, 4), lora_b ne (4, 128), "
                   "expected (64, 4) and (4, 192)");
  EXPECT_ERROR_HAS(load_adapter_gguf(fx.dir / "hf" / "model.safetensors", fx.hf.cfg), "not a GGUF file");
}

// F16 / BF16 adapters: every tensor is stored in that type, and each value reads back within
// half an ulp of the type (round to nearest: 2^-11 relative for F16, 2^-8 for BF16; values
// here are >= 2^-14 or round into F16 subnormals, whose spacing is 2^-24).
TEST(GgufAdapter, SixteenBitTensorsReadBackWithinRounding) {
  Fixture fx(temp_dir("a"));
  const LoraWeights lw = random_lora(fx.hf.cfg, false);
  const std::pair<GgmlType, double> types[] = {{GgmlType::F16, std::ldexp(1.0, -11)},
                                                {GgmlType::BF16, std::ldexp(1.0, -8)}};
  for (const auto& [type, rel] : types) {
    const fs::path file = fx.dir / cat(ggml_type_name(type), ".gguf");
    save_adapter_gguf(file, lw, fx.hf.cfg, "base", type);
    {
      const GgufFile f(file);
      ASSERT_EQ(f.tensors().size(), 2u * 7u * 2u);
      for (const GgufTensor& t : f.tensors()) EXPECT_EQ(t.type, type) << t.name;
    }
    const LoraWeights back = load_adapter_gguf(file, fx.hf.cfg);
    ASSERT_EQ(back.params.size(), lw.params.size());
    size_t rounded = 0;
    for (size_t i = 0; i < lw.params.size(); ++i) {
      const double want = lw.params[i], err = std::abs(double(back.params[i]) - want);
      ASSERT_LE(err, rel * std::abs(want) + std::ldexp(1.0, -25)) << ggml_type_name(type) << " param " << i;
      rounded += err > 0;
    }
    EXPECT_GT(rounded, lw.params.size() / 2) << ggml_type_name(type) << ": the values were not rounded";
    EXPECT_EQ(back.cfg.alpha, 8.0);
  }
  EXPECT_ERROR_HAS(save_adapter_gguf(fx.dir / "q.gguf", lw, fx.hf.cfg, "", GgmlType::Q8_0),
                   "cannot write a GGUF adapter as Q8_0 (hint: use F32, F16 or BF16)");
  EXPECT_FALSE(fs::exists(fx.dir / "q.gguf"));
}

TEST(GgufAdapter, RefusesUndecodableAndEmptyFiles) {
  const EditedAdapter ea;
  const Fixture& fx = ea.fx;
  // F64 is a ggml type the file format allows and tpro does not decode.
  EXPECT_THAT(ea.load_error({nullptr, [](const std::string& n, auto&, GgmlType& t, std::vector<uint8_t>& bytes) {
                                if (n == "blk.0.attn_v.weight.lora_a") {
                                  t = GgmlType::F64;
                                  bytes.assign(64 * 4 * 8, 0);
                                }
                                return n;
                              }}),
              HasSubstr("bad.gguf: tensor 'blk.0.attn_v.weight.lora_a' has type F64 (supported: F32, F16, BF16, "));
  // Only a norm tensor (warned about and skipped, as llama.cpp does) is left.
  EXPECT_THAT(ea.load_error({nullptr, [](const std::string& n, auto&, auto&, auto&) {
                                return std::string(n == "blk.0.attn_q.weight.lora_a" ? "blk.0.attn_norm.weight" : "");
                              }}),
              HasSubstr("bad.gguf: no LoRA tensors"));
  LoraWeights three_layers = random_lora(fx.hf.cfg, false);
  LlamaConfig deeper = fx.hf.cfg;
  deeper.n_layer = 3;
  EXPECT_ERROR_HAS(save_adapter_gguf(ea.bad, three_layers, deeper, ""),
                   "bad.gguf: the adapter has 2 layers, the base model 3");
}

// convert GGUF -> PEFT without --base reads the base's shape from the adapter's <arch>.* keys.
TEST(GgufAdapter, BaseConfigFromTheMetadata) {
  Fixture fx(temp_dir("a"));
  const fs::path good = fx.dir / "a.gguf", bad = fx.dir / "bad.gguf";
  save_adapter_gguf(good, random_lora(fx.hf.cfg, false), fx.hf.cfg, "");
  const LlamaConfig c = gguf_adapter_base_config(GgufFile(good));
  EXPECT_EQ(c.architecture, "LlamaForCausalLM");
  EXPECT_EQ(c.n_embd, 64);
  EXPECT_EQ(c.n_ff, 128);
  EXPECT_EQ(c.n_layer, 2);
  EXPECT_EQ(c.n_head, 4);
  EXPECT_EQ(c.n_head_kv, 2);
  EXPECT_EQ(c.head_dim, 16);
  auto config_bad = [&](const std::function<void(GgufWriter&)>& meta) {
    rewrite_gguf(good, bad, {meta, nullptr});
    return error_of([&] { gguf_adapter_base_config(GgufFile(bad)); });
  };
  EXPECT_THAT(config_bad([](GgufWriter& w) { w.set("llama.attention.head_count_kv", uint32_t(3)); }),
              HasSubstr("bad.gguf: inconsistent base shape metadata under llama.*"));
  EXPECT_THAT(config_bad([](GgufWriter& w) { w.set("llama.attention.key_length", uint32_t(0)); }),
              HasSubstr("bad.gguf: inconsistent base shape metadata under llama.*"));
  EXPECT_THAT(config_bad([](GgufWriter& w) {
                GgufWriter kept;
                for (const GgufKV& kv : w.metadata())
                  if (kv.key != "llama.attention.key_length") kept.set(kv.key, kv.value);
                w = kept;
              }),
              HasSubstr("missing metadata key 'llama.attention.key_length' (hint: the adapter does not record its "
                        "base model's shape; pass the base model)"));
  EXPECT_THAT(config_bad([](GgufWriter& w) { w.set("general.architecture", "phi2"); }),
              HasSubstr("bad.gguf: general.architecture 'phi2' is not supported (llama, qwen2, qwen3, gemma2, gemma3, phi3)"));
}
