// GGUF models: the same weights from safetensors and from GGUF (written the way llama.cpp's
// converter writes them, Q/K rows permuted) give the same logits; quantized GGUF tensors give
// the logits of their dequantized weights; metadata maps onto LlamaConfig; and files that lie
// (architecture, missing tensor, wrong shape, an adapter, an undecodable type, partial rotary,
// unequal K/V head sizes, Qwen2 without its biases) are refused
// with messages naming the file and the tensor.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "common/backend_util.h"
#include "formats/gguf_model.h"
#include "formats/load.h"
#include "formats/model_writer.h"
#include "model/base_weights.h"
#include "model/model_test_util.h"
#include "quant/quantized_matrix.h"

using namespace tpro;
using namespace tpro::test;
using ::testing::HasSubstr;

namespace {

// A model folder with random weights (normal, std 0.3 so the logits are far from uniform).
Model hf_model(const fs::path& dir, const LlamaConfig& c, DType dt = DType::F32) {
  write_random_model(dir, c, 11, dt, 0.3f);
  return load_model(dir);
}

fs::path as_gguf(const Model& m, const fs::path& file, GgufModelOptions o = {}) {
  save_model_gguf(file, m, o);
  return file;
}

// Every projection of m dequantized to f32 (the reference a quantized model must match).
Model dequantized(const Model& m) {
  Model d = m;
  for (LayerWeights& L : d.layers) {
    for (WeightMatrix* w : {&L.wq, &L.wk, &L.wv, &L.wo, &L.wgate, &L.wup, &L.wdown}) {
      auto q = std::make_shared<QuantizedMatrix>(quantize_matrix(*w, WType::F32));
      *w = q->view();
      d.owned.push_back(q);
    }
  }
  return d;
}

// Row `r` of the GGUF tensor, read as f32.
std::vector<float> gguf_row(const GgufFile& f, const std::string& name, int64_t r) {
  const GgufTensor& t = f.tensor(name);
  EXPECT_EQ(t.type, GgmlType::F32);
  const float* p = reinterpret_cast<const float*>(t.data) + r * t.ne[0];
  return std::vector<float>(p, p + t.ne[0]);
}

std::vector<float> hf_row(const WeightMatrix& w, int64_t r) {
  const float* p = static_cast<const float*>(w.data) + r * w.cols;
  return std::vector<float>(p, p + w.cols);
}

}  // namespace

TEST(GgufModel, SameLogitsAsSafetensors) {
  const fs::path d = temp_dir("m");
  const Model hf = hf_model(d / "hf", small_config());
  const Model gg = load_model(as_gguf(hf, d / "model.gguf"));
  const auto toks = sample_tokens(hf.cfg.vocab_size);
  EXPECT_EQ(logits_of(gg, nullptr, toks), logits_of(hf, nullptr, toks));
  EXPECT_EQ(gg.layers[1].wq.type, WType::F32);
  EXPECT_EQ(gg.cfg.n_head_kv, 2);
  EXPECT_FALSE(gg.cfg.tie_word_embeddings);
}

TEST(GgufModel, SameLogitsAsSafetensors16BitTied) {
  const fs::path d = temp_dir("m");
  LlamaConfig c = small_config();
  c.tie_word_embeddings = true;
  c.head_dim = 8;  // Q = 32 != D: key_length must travel through the metadata
  for (DType dt : {DType::F16, DType::BF16}) {
    const Model hf = hf_model(d / "hf", c, dt);
    const Model gg = load_model(as_gguf(hf, d / "model.gguf"));
    EXPECT_EQ(gg.layers[0].wk.type, dt == DType::F16 ? WType::F16 : WType::BF16);
    EXPECT_TRUE(gg.cfg.tie_word_embeddings);
    EXPECT_EQ(gg.cfg.head_dim, 8);
    const auto toks = sample_tokens(c.vocab_size);
    EXPECT_EQ(logits_of(gg, nullptr, toks), logits_of(hf, nullptr, toks)) << dtype_name(dt);
  }
}

// Quantizing a GGUF's 16-bit projections at load frees the unpermuted Q/K copies it replaces.
TEST(GgufModel, QuantizingAtLoadFreesReplacedCopies) {
  const fs::path d = temp_dir("m");
  const Model hf = hf_model(d / "hf", small_config(), DType::BF16);
  Model gg = load_model(as_gguf(hf, d / "model.gguf"));
  const size_t owners = gg.owned.size();  // the mapped file + one copy per attn_q / attn_k
  ASSERT_EQ(owners, 1u + 2u * 2u);
  apply_base_options(gg, {"nf4", "auto"}, test::cpu());
  EXPECT_EQ(gg.owned.size(), 1u + 7u * 2u);  // the file + one NF4 matrix per projection
  Model ref = load_model(d / "hf");
  apply_base_options(ref, {"nf4", "auto"}, test::cpu());
  const auto toks = sample_tokens(hf.cfg.vocab_size);
  EXPECT_EQ(logits_of(gg, nullptr, toks), logits_of(ref, nullptr, toks));
}

TEST(GgufModel, ConfigComesFromTheMetadata) {
  const fs::path d = temp_dir("m");
  LlamaConfig c = small_config();
  c.rope_theta = 500000.0;
  c.rms_norm_eps = 1e-6;
  c.max_position = 333;
  c.rope_scaling.type = "linear";
  c.rope_scaling.factor = 2.0;
  const Model hf = hf_model(d / "hf", c);
  const LlamaConfig g = load_model_config(as_gguf(hf, d / "model.gguf"));
  EXPECT_EQ(g.architecture, "LlamaForCausalLM");
  EXPECT_EQ(g.vocab_size, 96);
  EXPECT_EQ(g.n_embd, 64);
  EXPECT_EQ(g.n_ff, 128);
  EXPECT_EQ(g.n_layer, 2);
  EXPECT_EQ(g.n_head, 4);
  EXPECT_EQ(g.n_head_kv, 2);
  EXPECT_EQ(g.head_dim, 16);
  EXPECT_EQ(g.max_position, 333);
  EXPECT_EQ(g.rope_theta, 500000.0);
  EXPECT_EQ(float(g.rms_norm_eps), 1e-6f);
  EXPECT_EQ(g.rope_scaling.type, "linear");
  EXPECT_EQ(g.rope_scaling.factor, 2.0);
  const Model gg = load_model(d / "model.gguf");
  EXPECT_EQ(gg.inv_freq, hf.inv_freq);
}

// convert_hf_to_gguf.py: w.reshape(n_head, 2, Dh/2, in).swapaxes(1, 2).reshape(out, in), i.e.
// new[h][i][j] = old[h][j][i]: GGUF row h*Dh + 2i + j holds HF row h*Dh + j*Dh/2 + i.
TEST(GgufModel, QkRowsArePermutedAsTheConverterDoes) {
  const fs::path d = temp_dir("m");
  const Model hf = hf_model(d / "hf", small_config());
  const GgufFile f(as_gguf(hf, d / "model.gguf"));
  const int64_t Dh = hf.cfg.head_dim;
  for (const auto& [name, heads, w] : {std::tuple{"blk.1.attn_q.weight", hf.cfg.n_head, hf.layers[1].wq},
                                       std::tuple{"blk.1.attn_k.weight", hf.cfg.n_head_kv, hf.layers[1].wk}}) {
    for (int64_t h = 0; h < heads; ++h)
      for (int64_t i = 0; i < Dh / 2; ++i)
        for (int64_t j = 0; j < 2; ++j)
          ASSERT_EQ(gguf_row(f, name, h * Dh + 2 * i + j), hf_row(w, h * Dh + j * (Dh / 2) + i)) << name;
  }
  EXPECT_EQ(gguf_row(f, "blk.1.attn_v.weight", 3), hf_row(hf.layers[1].wv, 3));  // others unpermuted
}

TEST(GgufModel, Qwen2KeepsRowOrderAndBiases) {
  const fs::path d = temp_dir("m");
  const Model hf = load_model(fs::path(TPRO_FIXTURES) / "golden" / "qwen2_bias");
  const GgufFile f(as_gguf(hf, d / "qwen2.gguf"));
  EXPECT_EQ(f.get_string("general.architecture"), "qwen2");
  EXPECT_EQ(gguf_row(f, "blk.0.attn_q.weight", 1), hf_row(hf.layers[0].wq, 1));
  const Model gg = load_model(d / "qwen2.gguf");
  EXPECT_EQ(gg.cfg.architecture, "Qwen2ForCausalLM");
  EXPECT_TRUE(gg.cfg.attn_qkv_bias);
  EXPECT_EQ(gg.layers[1].bk, hf.layers[1].bk);
  const auto toks = sample_tokens(hf.cfg.vocab_size);
  EXPECT_EQ(logits_of(gg, nullptr, toks), logits_of(hf, nullptr, toks));
}

// Qwen3: arch qwen3, rows unpermuted, the per-head q/k norms as attn_q_norm / attn_k_norm,
// and the same logits after the round trip (through the q/k norms of every layer).
TEST(GgufModel, Qwen3KeepsRowOrderAndItsQkNorms) {
  const fs::path d = temp_dir("m");
  const Model hf = load_model(fs::path(TPRO_FIXTURES) / "golden" / "qwen3_qk_norm");
  ASSERT_TRUE(hf.cfg.qk_norm);
  const GgufFile f(as_gguf(hf, d / "qwen3.gguf"));
  EXPECT_EQ(f.get_string("general.architecture"), "qwen3");
  EXPECT_EQ(gguf_row(f, "blk.0.attn_q.weight", 1), hf_row(hf.layers[0].wq, 1));
  ASSERT_NE(f.find_tensor("blk.1.attn_k_norm.weight"), nullptr);
  const Model gg = load_model(d / "qwen3.gguf");
  EXPECT_EQ(gg.cfg.architecture, "Qwen3ForCausalLM");
  EXPECT_EQ(gg.cfg.head_dim, 12);
  EXPECT_EQ(gg.layers[1].q_norm, hf.layers[1].q_norm);
  EXPECT_EQ(gg.layers[1].k_norm, hf.layers[1].k_norm);
  const auto toks = sample_tokens(hf.cfg.vocab_size);
  EXPECT_EQ(logits_of(gg, nullptr, toks), logits_of(hf, nullptr, toks));
}

// Gemma 2 / 3: llama.cpp's arch and tensor names (post_attention_norm, ffn_norm, post_ffw_norm;
// norms held as 1 + w, as llama.cpp's converter stores them), soft-caps and window in the
// metadata, and the same logits after the round trip. What GGUF cannot say (a score scale or a
// layer pattern other than llama.cpp's) is refused at write time instead of changing the model.
TEST(GgufModel, GemmaRoundTripsWithLlamaCppNames) {
  const fs::path d = temp_dir("m");
  for (const char* name : {"gemma2_softcap", "gemma3_local_rope"}) {
    SCOPED_TRACE(name);
    Model hf = load_model(fs::path(TPRO_FIXTURES) / "golden" / name);
    ASSERT_TRUE(hf.cfg.is_gemma());
    const bool v3 = hf.cfg.embed_scale_inside;
    const std::string arch = v3 ? "gemma3" : "gemma2";
    if (!v3) {  // the fixture's query_pre_attn_scalar (12) is not the head size llama.cpp uses
      EXPECT_ERROR_HAS(save_model_gguf(d / "x.gguf", hf, {}), "its query_pre_attn_scalar 12 is not the 8 llama.cpp");
      hf.cfg.query_pre_attn_scalar = double(hf.cfg.head_dim);
    }
    if (v3) {  // the fixture's [sliding, full, sliding] is not five in six
      EXPECT_ERROR_HAS(save_model_gguf(d / "x.gguf", hf, {}), "sliding-window layers are not the pattern llama.cpp");
    }
    LlamaConfig derived = hf.cfg;
    set_gemma_family(derived, v3 ? 3 : 2);
    hf.cfg.layer_sliding = derived.layer_sliding;
    const GgufFile f(as_gguf(hf, d / (arch + ".gguf")));
    EXPECT_EQ(f.get_string("general.architecture"), arch);
    EXPECT_EQ(gguf_row(f, "blk.0.attn_q.weight", 1), hf_row(hf.layers[0].wq, 1));  // not permuted
    for (const char* t : {"blk.1.post_attention_norm.weight", "blk.1.ffn_norm.weight", "blk.1.post_ffw_norm.weight"})
      EXPECT_NE(f.find_tensor(t), nullptr) << t;
    const Model gg = load_model(d / (arch + ".gguf"));
    EXPECT_EQ(gg.cfg.architecture, hf.cfg.architecture);
    EXPECT_EQ(gg.cfg.layer_sliding, hf.cfg.layer_sliding);
    EXPECT_EQ(gg.cfg.sliding_window, hf.cfg.sliding_window);
    EXPECT_EQ(gg.cfg.attn_softcap, hf.cfg.attn_softcap);
    EXPECT_EQ(gg.cfg.final_softcap, hf.cfg.final_softcap);
    EXPECT_EQ(gg.layers[1].ln_post_attn, hf.layers[1].ln_post_attn);  // 1 + w on both sides
    EXPECT_EQ(gg.layers[2].ln_post_ffn, hf.layers[2].ln_post_ffn);
    EXPECT_EQ(gg.norm, hf.norm);
    EXPECT_EQ(gg.inv_freq_local, hf.inv_freq_local);
    const auto toks = sample_tokens(hf.cfg.vocab_size);
    EXPECT_EQ(logits_of(gg, nullptr, toks), logits_of(hf, nullptr, toks));
  }
}

// Qwen2 has exactly the Q/K/V biases (read from blk.0's tensors): a file without them, or
// with others, is not a Qwen2 model.
TEST(GgufModel, RefusesQwen2WithOtherBiases) {
  const fs::path d = temp_dir("m");
  const Model hf = load_model(fs::path(TPRO_FIXTURES) / "golden" / "qwen2_bias");
  const fs::path good = as_gguf(hf, d / "qwen2.gguf"), bad = d / "bad.gguf";
  auto load_bad = [&](const std::string& from, const std::string& to) {
    rewrite_gguf(good, bad, {nullptr, [&](const std::string& n, auto&, auto&, auto&) { return n == from ? to : n; }});
    return error_of([&] { load_model(bad); });
  };
  const char* msg = "bad.gguf: a qwen2 model has attn_q/k/v biases and no others (hint: the file is not a Qwen2 model)";
  EXPECT_THAT(load_bad("blk.0.attn_q.bias", ""), HasSubstr(msg));
  EXPECT_THAT(load_bad("blk.1.attn_q.bias", "blk.0.attn_output.bias"), HasSubstr(msg));
  EXPECT_THAT(load_bad("blk.1.attn_q.bias", "blk.0.ffn_up.bias"), HasSubstr(msg));
  EXPECT_EQ(error_of([&] { load_model(good); }), "(no error)");
}

TEST(GgufModel, LlamaAttentionBiasesArePermutedToo) {
  const fs::path d = temp_dir("m");
  LlamaConfig c = small_config();
  c.attn_qkv_bias = c.attn_o_bias = true;
  const Model hf = hf_model(d / "hf", c);
  const Model gg = load_model(as_gguf(hf, d / "model.gguf"));
  EXPECT_EQ(gg.layers[0].bq, hf.layers[0].bq);
  EXPECT_EQ(gg.layers[0].bk, hf.layers[0].bk);
  const auto toks = sample_tokens(c.vocab_size);
  EXPECT_EQ(logits_of(gg, nullptr, toks), logits_of(hf, nullptr, toks));
}

// Quantized GGUF tensors compute like their own dequantized weights, and like the same
// quantization applied to the safetensors model in memory (rows move whole, so permuting
// and unpermuting quantized rows is exact).
TEST(GgufModel, QuantizedTensorsGiveTheDequantizedWeightsLogits) {
  const fs::path d = temp_dir("m");
  const Model hf = hf_model(d / "hf", small_config(256, 512));
  const auto toks = sample_tokens(hf.cfg.vocab_size);
  for (WType t : {WType::Q8_0, WType::Q4_0, WType::Q4_K, WType::Q6_K}) {
    GgufModelOptions o;
    o.weights = t;
    const Model gg = load_model(as_gguf(hf, d / cat(wtype_name(t), ".gguf"), o));
    ASSERT_EQ(gg.layers[0].wq.type, t);
    Model mem = load_model(d / "hf");
    apply_base_options(mem, {std::string(wtype_name(t)), "auto", "f32"}, test::cpu());  // as the loaded GGUF multiplies
    const auto got = logits_of(gg, nullptr, toks);
    EXPECT_EQ(got, logits_of(mem, nullptr, toks)) << wtype_name(t);
    // The f32 SGEMM of the dequantized matrix sums in another blocking than the panel path.
    EXPECT_LT(max_abs_diff(got, logits_of(dequantized(gg), nullptr, toks)), 1e-4) << wtype_name(t);
    EXPECT_GT(max_abs_diff(got, logits_of(hf, nullptr, toks)), 1e-4) << "quantization changed nothing";
  }
}

TEST(GgufModel, Llama3RopeTravelsAsRopeFreqs) {
  const fs::path d = temp_dir("m");
  LlamaConfig c = small_config();
  c.rope_scaling.type = "llama3";
  c.rope_scaling.factor = 8.0;
  c.rope_scaling.original_max_position = 64;  // wavelengths on both sides of 16 and 64
  const Model hf = hf_model(d / "hf", c);
  const GgufFile f(as_gguf(hf, d / "model.gguf"));
  ASSERT_NE(f.find_tensor("rope_freqs.weight"), nullptr);
  const Model gg = load_model(d / "model.gguf");
  for (size_t i = 0; i < hf.inv_freq.size(); ++i) EXPECT_NEAR(gg.inv_freq[i], hf.inv_freq[i], 1e-6 * hf.inv_freq[i]);
  const auto toks = sample_tokens(c.vocab_size);
  EXPECT_LT(max_abs_diff(logits_of(gg, nullptr, toks), logits_of(hf, nullptr, toks)), 1e-4);
  EXPECT_ERROR_HAS(save_model_hf(d / "back", gg, DType::F32), "have no config.json form");
}

TEST(GgufModel, RefusesFilesThatLie) {
  const fs::path d = temp_dir("m");
  const Model hf = hf_model(d / "hf", small_config());
  const fs::path good = as_gguf(hf, d / "good.gguf");
  const fs::path bad = d / "bad.gguf";
  auto load_bad = [&](const GgufEdit& e) {
    rewrite_gguf(good, bad, e);
    return error_of([&] { load_model(bad); });
  };
  EXPECT_THAT(load_bad({[](GgufWriter& w) { w.set("general.architecture", "mamba"); }, nullptr}),
              HasSubstr("general.architecture 'mamba' is not supported (tpro loads llama, qwen2, qwen3, gemma2, gemma3"));
  EXPECT_THAT(load_bad({[](GgufWriter& w) { w.set("general.type", "adapter"); }, nullptr}),
              HasSubstr("this is a LoRA adapter (general.type = adapter), not a model (hint: pass it as --lora)"));
  EXPECT_THAT(load_bad({nullptr, [](const std::string& n, auto&, auto&, auto&) {
                          return n == "blk.1.ffn_down.weight" ? std::string() : n;
                        }}),
              HasSubstr("bad.gguf: no tensor named 'blk.1.ffn_down.weight'"));
  EXPECT_THAT(load_bad({nullptr, [](const std::string& n, std::vector<int64_t>& ne, auto&, auto&) {
                          if (n == "blk.0.attn_k.weight") ne = {32, 64};  // same size, transposed
                          return n;
                        }}),
              HasSubstr("tensor 'blk.0.attn_k.weight' has ne (32, 64), expected (64, 32) (in 64, out 32"));
  EXPECT_THAT(load_bad({[](GgufWriter& w) { w.set("llama.attention.head_count_kv", uint32_t(3)); }, nullptr}),
              HasSubstr("4 attention heads are not a multiple of 3 KV heads"));
  EXPECT_THAT(load_bad({[](GgufWriter& w) { w.set("llama.attention.value_length", uint32_t(8)); }, nullptr}),
              HasSubstr("value_length 8 differs from key_length 16 (tpro needs equal Q/K/V head sizes)"));
  EXPECT_THAT(load_bad({[](GgufWriter& w) { w.set("llama.rope.dimension_count", uint32_t(8)); }, nullptr}),
              HasSubstr("rope.dimension_count 8 differs from the head size 16 (hint: partial rotary embeddings are "
                        "not supported)"));
  EXPECT_THAT(load_bad({[](GgufWriter& w) { w.set("llama.rope.scaling.type", "yarn"); }, nullptr}),
              HasSubstr("llama.rope.scaling.type 'yarn' is not supported"));
  EXPECT_THAT(load_bad({[](GgufWriter& w) { w.set("llama.vocab_size", uint32_t(100)); }, nullptr}),
              HasSubstr("llama.vocab_size is 100 but token_embd.weight has 96 rows"));
  // Found by fuzz/fuzz_gguf: a huge block_count allocated its layers before any tensor was checked.
  EXPECT_THAT(load_bad({[](GgufWriter& w) { w.set("llama.block_count", uint32_t(3000000000u)); }, nullptr}),
              HasSubstr("llama.block_count is 3000000000 but there is no tensor 'blk.2999999999.attn_norm.weight' "
                        "(hint: the file is truncated or its metadata is wrong)"));
  // Q5_0 is a valid ggml type tpro does not decode: 64 columns = 2 blocks of 22 bytes per row.
  EXPECT_THAT(load_bad({nullptr, [](const std::string& n, auto&, GgmlType& t, std::vector<uint8_t>& bytes) {
                          if (n == "blk.0.ffn_up.weight") {
                            t = GgmlType::Q5_0;
                            bytes.assign(128 * 2 * 22, 0);
                          }
                          return n;
                        }}),
              HasSubstr("tensor 'blk.0.ffn_up.weight' has type Q5_0, which tpro cannot compute with"));
}
