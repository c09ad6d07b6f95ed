// Phi-3 in llama.cpp's phi3 GGUF layout: a tiny random Phi-3 (fused qkv and gate_up, partial
// rotary, LongRoPE, a sliding window; written by our code) goes HF -> GGUF -> load with the
// same logits, quantized too; its metadata and tensors are what convert_hf_to_gguf.py writes;
// its LoRA adapters convert PEFT <-> GGUF over attn_qkv / ffn_up and merge into a GGUF with the
// adapter's logits; what GGUF cannot say is refused, and phi3 files that lie are refused by name.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "formats/adapter_convert.h"
#include "formats/gguf_adapter.h"
#include "formats/gguf_model.h"
#include "formats/load.h"
#include "formats/model_writer.h"
#include "formats/peft_adapter.h"
#include "model/base_weights.h"
#include "model/merge.h"
#include "model/model_test_util.h"

using namespace tpro;
using namespace tpro::test;
using ::testing::HasSubstr;

namespace {

const fs::path kPhi3 = fs::path(TPRO_FIXTURES) / "golden" / "phi3_longrope";

// D 32, 4 heads of 8 (2 KV heads), 4 rotary dims, F 40, LongRoPE past 16 positions, window 5.
Model fixture() { return load_model(kPhi3); }

// 24 tokens: past original_max_position (16), so the long factors and the attention factor apply.
std::vector<int32_t> long_tokens(int64_t vocab) { return sample_tokens(vocab, 24); }

// A Phi-3 whose dims fit every block size (K-quants need 256 columns) for the quantized test.
LlamaConfig wide_phi3() {
  LlamaConfig c = tiny_config(256, 512, 96);
  c.architecture = "Phi3ForCausalLM";
  c.model_type = "phi3";
  c.tie_word_embeddings = false;
  c.fused_proj = true;
  c.rotary_dim = c.head_dim / 2;
  c.sliding_window = 8;
  c.max_position = 64;
  c.rope_scaling.type = "longrope";
  c.rope_scaling.original_max_position = 16;
  c.rope_scaling.short_factor.assign(size_t(c.rotary_dim / 2), 1.25);
  c.rope_scaling.long_factor.assign(size_t(c.rotary_dim / 2), 3.0);
  return c;
}

}  // namespace

// convert_hf_to_gguf.py's Phi3MiniModel: context_length, rope.dimension_count = rotary dims,
// rope.scaling.original_context_length, rope.scaling.attn_factor, attention.sliding_window, the
// fused tensors as they are (ffn_up = gate_up_proj, gate rows first), LongRoPE factor tensors.
TEST(GgufPhi3, WrittenAsTheConverterWritesIt) {
  const fs::path d = temp_dir("p");
  const Model hf = fixture();
  save_model_gguf(d / "phi3.gguf", hf, {});
  const GgufFile f(d / "phi3.gguf");
  EXPECT_EQ(f.get_string("general.architecture"), "phi3");
  EXPECT_EQ(f.get_int("phi3.context_length"), 64);
  EXPECT_EQ(f.get_int("phi3.rope.dimension_count"), 4);
  EXPECT_EQ(f.get_int("phi3.rope.scaling.original_context_length"), 16);
  EXPECT_EQ(f.get_f32("phi3.rope.scaling.attn_factor"), hf.cfg.rope_mscale());
  EXPECT_GT(hf.cfg.rope_mscale(), 1.0f);  // sqrt(1 + ln 4 / ln 16)
  EXPECT_EQ(f.get_int("phi3.attention.sliding_window"), 5);
  EXPECT_EQ(f.find_tensor("blk.0.attn_q.weight"), nullptr);
  EXPECT_EQ(f.find_tensor("blk.0.ffn_gate.weight"), nullptr);
  EXPECT_EQ(f.tensor("blk.1.attn_qkv.weight").ne, (std::vector<int64_t>{32, 32 + 2 * 16}));
  EXPECT_EQ(f.tensor("blk.1.ffn_up.weight").ne, (std::vector<int64_t>{32, 2 * 40}));
  const float* up = reinterpret_cast<const float*>(f.tensor("blk.1.ffn_up.weight").data);
  const float* hf_up = static_cast<const float*>(hf.layers[1].wgate_up.data);
  EXPECT_EQ(std::vector<float>(up, up + 2 * 40 * 32), std::vector<float>(hf_up, hf_up + 2 * 40 * 32));
  const GgufTensor& lng = f.tensor("rope_factors_long.weight");
  ASSERT_EQ(lng.ne, std::vector<int64_t>{2});
  EXPECT_EQ(reinterpret_cast<const float*>(lng.data)[1], 3.5f);
  EXPECT_EQ(reinterpret_cast<const float*>(f.tensor("rope_factors_short.weight").data)[1], 1.5f);
  EXPECT_EQ(f.find_tensor("rope_freqs.weight"), nullptr);
}

TEST(GgufPhi3, RoundTripGivesTheSameConfigAndLogits) {
  const fs::path d = temp_dir("p");
  const Model hf = fixture();
  save_model_gguf(d / "phi3.gguf", hf, {});
  const Model gg = load_model(d / "phi3.gguf");
  const LlamaConfig &a = gg.cfg, &b = hf.cfg;
  EXPECT_EQ(a.architecture, "Phi3ForCausalLM");
  EXPECT_TRUE(a.fused_proj);
  EXPECT_EQ(a.rot_dim(), 4);
  EXPECT_EQ(a.sliding_window, 5);
  EXPECT_EQ(a.max_position, 64);
  EXPECT_EQ(a.rope_scaling.type, "longrope");
  EXPECT_EQ(a.rope_scaling.short_factor, b.rope_scaling.short_factor);
  EXPECT_EQ(a.rope_scaling.long_factor, b.rope_scaling.long_factor);
  EXPECT_EQ(a.rope_scaling.original_max_position, 16);
  EXPECT_EQ(a.rope_mscale(), b.rope_mscale());
  EXPECT_EQ(a.rope_inv_freq(24), b.rope_inv_freq(24));
  EXPECT_EQ(gg.inv_freq, hf.inv_freq);
  EXPECT_EQ(gg.layers[0].wq.data, nullptr);
  for (const auto& toks : {sample_tokens(b.vocab_size), long_tokens(b.vocab_size)})
    EXPECT_EQ(logits_of(gg, nullptr, toks), logits_of(hf, nullptr, toks)) << toks.size() << " tokens";
  // and back to a folder: the same model again
  save_model_hf(d / "back", gg, DType::F32);
  const Model back = load_model(d / "back");
  EXPECT_EQ(logits_of(back, nullptr, long_tokens(b.vocab_size)), logits_of(hf, nullptr, long_tokens(b.vocab_size)));
}

// Quantized phi3 tensors compute like the same quantization of the folder's weights in memory.
TEST(GgufPhi3, QuantizedBasesComputeLikeTheQuantizedFolder) {
  const fs::path d = temp_dir("p");
  write_random_model(d / "hf", wide_phi3(), 11, DType::F32, 0.3f);
  const Model hf = load_model(d / "hf");
  const auto toks = long_tokens(hf.cfg.vocab_size);
  for (WType t : {WType::Q8_0, WType::Q4_0, WType::Q4_K, WType::Q6_K}) {
    GgufModelOptions o;
    o.weights = t;
    save_model_gguf(d / "q.gguf", hf, o);
    const Model gg = load_model(d / "q.gguf");
    ASSERT_EQ(gg.layers[1].wqkv.type, t);
    ASSERT_EQ(gg.layers[1].wgate_up.type, t);
    Model mem = load_model(d / "hf");
    apply_base_options(mem, {std::string(wtype_name(t)), "auto", "f32"}, test::cpu());
    const auto got = logits_of(gg, nullptr, toks);
    EXPECT_EQ(got, logits_of(mem, nullptr, toks)) << wtype_name(t);
    EXPECT_GT(max_abs_diff(got, logits_of(hf, nullptr, toks)), 1e-4) << "quantization changed nothing";
  }
}

// What llama.cpp's GGUF cannot express is refused at write time, not written as another model.
TEST(GgufPhi3, RefusesWhatGgufCannotSay) {
  const fs::path d = temp_dir("p");
  Model m = fixture();
  m.cfg.rope_scaling = RopeScaling{};
  m.cfg.rope_scaling.type = "yarn";
  m.cfg.rope_scaling.factor = 4.0;
  m.cfg.rope_scaling.original_max_position = 16;
  m.inv_freq = m.cfg.rope_inv_freq();
  EXPECT_ERROR_HAS(save_model_gguf(d / "x.gguf", m, {}),
                   "cannot write a GGUF of this Phi3ForCausalLM: llama.cpp's GGUF has no form of transformers' YaRN "
                   "RoPE scaling that computes the same frequencies (hint: merge to a Hugging Face folder with --out "
                   "<dir> instead");
  m.cfg.rope_scaling.type = "dynamic";
  EXPECT_ERROR_HAS(save_model_gguf(d / "x.gguf", m, {}), "no form of transformers' dynamic NTK RoPE scaling");
  m.cfg.rope_scaling.type = "llama3";
  m.cfg.rope_scaling.low_freq_factor = 1, m.cfg.rope_scaling.high_freq_factor = 4;
  EXPECT_ERROR_HAS(save_model_gguf(d / "x.gguf", m, {}),
                   "cannot write a phi3 GGUF of this model: llama.cpp's phi3 has no rope_freqs tensor for its llama3");
  m = fixture();
  m.inv_freq[0] *= 2;
  EXPECT_ERROR_HAS(save_model_gguf(d / "x.gguf", m, {}), "its RoPE frequencies are not its config's");
  const Model yarn = load_model(fs::path(TPRO_FIXTURES) / "golden" / "llama_yarn");
  EXPECT_ERROR_HAS(save_model_gguf(d / "x.gguf", yarn, {}), "no form of transformers' YaRN RoPE scaling");
  EXPECT_FALSE(fs::exists(d / "x.gguf"));
  // Linear scaling has llama.cpp's keys: written and read back.
  m = fixture();
  m.cfg.rope_scaling = RopeScaling{};
  m.cfg.rope_scaling.type = "linear";
  m.cfg.rope_scaling.factor = 2.0;
  m.inv_freq = m.cfg.rope_inv_freq();
  save_model_gguf(d / "linear.gguf", m, {});
  const Model gg = load_model(d / "linear.gguf");
  EXPECT_EQ(gg.cfg.rope_scaling.type, "linear");
  EXPECT_EQ(gg.inv_freq, m.inv_freq);
}

TEST(GgufPhi3, RefusesFilesThatLie) {
  const fs::path d = temp_dir("p");
  const fs::path good = d / "good.gguf", bad = d / "bad.gguf";
  save_model_gguf(good, fixture(), {});
  auto load_bad = [&](const GgufEdit& e) {
    rewrite_gguf(good, bad, e);
    return error_of([&] { load_model(bad); });
  };
  auto drop = [](const std::string& which) {
    return GgufEdit{nullptr, [which](const std::string& n, auto&, auto&, auto&) { return n == which ? "" : n; }};
  };
  auto meta = [](std::function<void(GgufWriter&)> f) { return GgufEdit{std::move(f), nullptr}; };
  EXPECT_THAT(load_bad(drop("rope_factors_short.weight")),
              HasSubstr("bad.gguf: LongRoPE needs both rope_factors_long.weight and rope_factors_short.weight, the "
                        "file has only the long factors"));
  EXPECT_THAT(load_bad(drop("rope_factors_long.weight")), HasSubstr("the file has only the short factors"));
  EXPECT_THAT(load_bad({nullptr,
                        [](const std::string& n, std::vector<int64_t>& ne, auto&, std::vector<uint8_t>& bytes) {
                          if (n == "rope_factors_long.weight") ne = {3}, bytes.resize(12);
                          return n;
                        }}),
              HasSubstr("tensor 'rope_factors_long.weight' has ne (3,), expected (2)"));
  EXPECT_THAT(load_bad({nullptr, [](const std::string& n, auto&, auto&, std::vector<uint8_t>& bytes) {
                          if (n == "rope_factors_short.weight") reinterpret_cast<float*>(bytes.data())[1] = -1.0f;
                          return n;
                        }}),
              HasSubstr("rope_factors_short.weight[1] is -1, expected a positive factor"));
  // Fused tensors of the wrong size: the q/k/v rows of another head count, gate_up holding F rows.
  EXPECT_THAT(load_bad({nullptr,
                        [](const std::string& n, std::vector<int64_t>& ne, auto&, std::vector<uint8_t>& bytes) {
                          if (n == "blk.0.attn_qkv.weight") ne = {32, 48}, bytes.resize(32 * 48 * 4);
                          return n;
                        }}),
              HasSubstr("tensor 'blk.0.attn_qkv.weight' has ne (32, 48), expected (32, 64)"));
  EXPECT_THAT(load_bad({nullptr,
                        [](const std::string& n, std::vector<int64_t>& ne, auto&, std::vector<uint8_t>& bytes) {
                          if (n == "blk.1.ffn_up.weight") ne = {32, 40}, bytes.resize(32 * 40 * 4);
                          return n;
                        }}),
              HasSubstr("tensor 'blk.1.ffn_up.weight' has ne (32, 40), expected (32, 80)"));
  EXPECT_THAT(load_bad({nullptr, [](const std::string& n, auto&, auto&, auto&) {
                          return n == "blk.0.attn_qkv.weight" ? "blk.0.attn_q.weight" : n;
                        }}),
              HasSubstr("a phi3 model needs the fused blk.N.attn_qkv.weight (this file holds separate attn_q/attn_k/"
                        "attn_v, which tpro does not load for phi3"));
  EXPECT_THAT(load_bad({nullptr, [](const std::string& n, auto&, auto&, auto&) {
                          return n == "blk.0.attn_norm.weight" ? std::string("blk.0.attn_qkv.bias") : n;
                        }}),
              HasSubstr("tensor 'blk.0.attn_qkv.bias': tpro loads Phi-3 models without projection biases"));
  EXPECT_THAT(load_bad(meta([](GgufWriter& w) { w.set("phi3.rope.dimension_count", uint32_t(5)); })),
              HasSubstr("phi3.rope.dimension_count is 5, expected an even number of rotary dims in 2..8"));
  EXPECT_THAT(load_bad(meta([](GgufWriter& w) { w.set("phi3.rope.dimension_count", uint32_t(16)); })),
              HasSubstr("phi3.rope.dimension_count is 16, expected an even number of rotary dims in 2..8"));
  EXPECT_THAT(load_bad(meta([](GgufWriter& w) { w.set("phi3.rope.dimension_count", uint32_t(8)); })),
              HasSubstr("tensor 'rope_factors_long.weight' has ne (2,), expected (4)"));
  EXPECT_THAT(load_bad(meta([](GgufWriter& w) { w.set("phi3.rope.scaling.attn_factor", -1.0f); })),
              HasSubstr("phi3.rope.scaling.attn_factor must be a positive number, got -1"));
  EXPECT_THAT(load_bad(meta([](GgufWriter& w) { 
                w.set("phi3.rope.scaling.type", "linear");
                w.set("phi3.rope.scaling.factor", 2.0f);
              })),
              HasSubstr("phi3.rope.scaling.type 'linear' together with LongRoPE factors"));
  EXPECT_THAT(load_bad(meta([](GgufWriter& w) { w.set("phi3.attention.sliding_window", int32_t(-3)); })),
              HasSubstr("phi3.attention.sliding_window must be >= 0, got -3"));
  EXPECT_EQ(error_of([&] { load_model(good); }), "(no error)");
}

// A file without LongRoPE (Phi-3-mini-4k, Phi-4-mini's window 0): plain RoPE; an attention factor
// llama.cpp would apply to it is refused rather than ignored.
TEST(GgufPhi3, PlainRopeAndAStrayAttentionFactor) {
  const fs::path d = temp_dir("p");
  Model m = fixture();
  m.cfg.rope_scaling = RopeScaling{};
  m.cfg.sliding_window = 0;
  m.inv_freq = m.cfg.rope_inv_freq();
  save_model_gguf(d / "plain.gguf", m, {});
  {
    const GgufFile f(d / "plain.gguf");
    EXPECT_EQ(f.find_tensor("rope_factors_long.weight"), nullptr);
    EXPECT_FALSE(f.has("phi3.rope.scaling.attn_factor"));
    EXPECT_EQ(f.get_int("phi3.attention.sliding_window"), 0);
  }
  const Model gg = load_model(d / "plain.gguf");
  EXPECT_TRUE(gg.cfg.rope_scaling.type.empty());
  EXPECT_EQ(gg.cfg.sliding_window, 0);
  const auto toks = long_tokens(m.cfg.vocab_size);
  EXPECT_EQ(logits_of(gg, nullptr, toks), logits_of(m, nullptr, toks));
  rewrite_gguf(d / "plain.gguf", d / "bad.gguf", {[](GgufWriter& w) { w.set("phi3.rope.scaling.attn_factor", 1.5f); }, nullptr});
  EXPECT_ERROR_HAS(load_model(d / "bad.gguf"),
                   "phi3.rope.scaling.attn_factor is 1.5 without LongRoPE factors (hint: tpro reads it with "
                   "rope_factors_long.weight and rope_factors_short.weight only)");
}

// llama.cpp's adapter names for phi3: the fused projections' own (attn_qkv, ffn_up = gate_up),
// lora_a ne (in, r), lora_b ne (r, out), rows in the base's order.
TEST(GgufPhi3, AdapterConvertsBothWaysWithTheSameLogits) {
  const fs::path d = temp_dir("p");
  const Model hf = fixture();
  const LoraWeights peft = load_lora(kPhi3, hf.cfg);
  const ConvertResult to_gguf = convert_adapter(kPhi3, d / "a.gguf", kPhi3);
  EXPECT_EQ(to_gguf.n_pairs, 2 * 4);
  {
    const GgufFile f(d / "a.gguf");
    EXPECT_EQ(f.get_string("general.architecture"), "phi3");
    EXPECT_EQ(f.tensor("blk.1.attn_qkv.weight.lora_a").ne, (std::vector<int64_t>{32, 4}));
    EXPECT_EQ(f.tensor("blk.1.attn_qkv.weight.lora_b").ne, (std::vector<int64_t>{4, 64}));
    EXPECT_EQ(f.tensor("blk.1.ffn_up.weight.lora_b").ne, (std::vector<int64_t>{4, 80}));
    EXPECT_EQ(f.tensor("blk.0.ffn_down.weight.lora_a").ne, (std::vector<int64_t>{40, 4}));
    EXPECT_EQ(f.tensor("blk.0.attn_output.weight.lora_b").ne, (std::vector<int64_t>{4, 32}));
    EXPECT_EQ(f.tensors().size(), 2u * 4u * 2u);
  }
  save_model_gguf(d / "base.gguf", hf, {});
  const Model gg = load_model(d / "base.gguf");
  const LoraWeights ga = load_lora(d / "a.gguf", gg.cfg);
  EXPECT_EQ(ga.params, peft.params);
  const auto toks = long_tokens(hf.cfg.vocab_size);
  const auto want = logits_of(hf, &peft, toks);
  EXPECT_GT(max_abs_diff(want, logits_of(hf, nullptr, toks)), 1e-3) << "the adapter changes nothing";
  EXPECT_EQ(logits_of(gg, &ga, toks), want);
  // back to PEFT, with the base and from the adapter's own metadata
  convert_adapter(d / "a.gguf", d / "peft_base", kPhi3);
  convert_adapter(d / "a.gguf", d / "peft_meta", "");
  for (const char* out : {"peft_base", "peft_meta"}) {
    const LoraWeights back = load_lora(d / out, hf.cfg);
    EXPECT_EQ(back.params, peft.params) << out;
    EXPECT_EQ(logits_of(hf, &back, toks), want) << out;
  }
  const LlamaConfig meta = gguf_adapter_base_config(GgufFile(d / "a.gguf"));
  EXPECT_EQ(meta.architecture, "Phi3ForCausalLM");
  EXPECT_TRUE(meta.fused_proj);
}

// Merged into the base and written as a phi3 GGUF, the adapter computes what it did beside it.
TEST(GgufPhi3, MergedGgufHasTheAdaptersLogits) {
  const fs::path d = temp_dir("p");
  const Model hf = fixture();
  const LoraWeights lw = load_lora(kPhi3, hf.cfg);
  save_model_gguf(d / "merged.gguf", merge_lora(test::cpu(), hf, lw, WType::F32), {});
  const Model merged = load_model(d / "merged.gguf");
  const auto toks = long_tokens(hf.cfg.vocab_size);
  // W + s·B·A summed once instead of two products per step: f32 rounding only.
  EXPECT_LT(max_abs_diff(logits_of(merged, nullptr, toks), logits_of(hf, &lw, toks)), 1e-4);
}

TEST(GgufPhi3, AdapterRefusesOtherNamesAndBases) {
  const fs::path d = temp_dir("p");
  const Model hf = fixture();
  save_adapter_gguf(d / "a.gguf", load_lora(kPhi3, hf.cfg), hf.cfg, "");
  rewrite_gguf(d / "a.gguf", d / "bad.gguf", {nullptr, [](const std::string& n, auto&, auto&, auto&) {
                 return n == "blk.0.attn_qkv.weight.lora_a" ? std::string("blk.0.attn_q.weight.lora_a") : n;
               }});
  EXPECT_ERROR_HAS(load_adapter_gguf(d / "bad.gguf", hf.cfg),
                   "tensor 'blk.0.attn_q.weight.lora_a' is not a LoRA weight tpro applies to this phi3 base (expected "
                   "blk.N.<attn_output|ffn_down|attn_qkv|ffn_up>.weight.lora_a / .lora_b)");
  // ffn_up with F rows (an up-only adapter of a split base) does not fit phi3's gate_up.
  rewrite_gguf(d / "a.gguf", d / "bad.gguf",
               {nullptr, [](const std::string& n, std::vector<int64_t>& ne, auto&, std::vector<uint8_t>& bytes) {
                  if (n == "blk.0.ffn_up.weight.lora_b") ne = {4, 40}, bytes.resize(4 * 40 * 4);
                  return n;
                }});
  EXPECT_ERROR_HAS(load_adapter_gguf(d / "bad.gguf", hf.cfg),
                   "tensor 'blk.0.ffn_up.weight' has incorrect shape: lora_a ne (32, 4), lora_b ne (4, 40), expected "
                   "(32, 4) and (4, 80)");
  LlamaConfig llama = small_config(32, 40);
  llama.vocab_size = hf.cfg.vocab_size;
  EXPECT_ERROR_HAS(load_adapter_gguf(d / "a.gguf", llama),
                   "the adapter is for architecture 'phi3' but the base model is 'llama'");
}
