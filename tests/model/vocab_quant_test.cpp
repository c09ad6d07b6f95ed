// quantize_embedding / quantize_head: which tensor each stores and how (a tied model's one
// tensor), the refusals, a GGUF's quantized token_embd/output used as loaded, and the measured
// effect on the loss and on the LoRA gradients (which flow back through the frozen head) of a
// tiny model with a large vocabulary, against the bounds docs/QLORA.md states.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>

#include "common/backend_util.h"
#include "formats/load.h"
#include "formats/model_writer.h"
#include "model/base_weights.h"
#include "model_test_util.h"

using namespace tpro;
using namespace tpro::test;
using ::testing::HasSubstr;

namespace {

BaseWeightOptions vocab_opts(const char* embed, const char* head, const char* quantize = "none") {
  BaseWeightOptions o;
  o.quantize = quantize;
  o.quantize_embedding = embed;
  o.quantize_head = head;
  return o;
}

Model bf16_model(const fs::path& dir, const LlamaConfig& c, float std = 0.02f) {
  write_random_model(dir, c, 5, DType::BF16, std);
  return load_model(dir);
}

}  // namespace

TEST(VocabQuant, EachOptionStoresItsTensor) {
  const fs::path d = temp_dir("untied");
  const LlamaConfig c = small_config(256, 256);
  Model m = bf16_model(d, c);
  const size_t VD = size_t(c.vocab_size * c.n_embd);
  apply_base_options(m, vocab_opts("none", "q8_0"), cpu());
  EXPECT_EQ(m.embed.type, WType::BF16);
  EXPECT_EQ(m.lm_head.type, WType::Q8_0);
  EXPECT_EQ(m.layers[0].wq.type, WType::BF16) << "the projections follow `quantize` alone";
  EXPECT_EQ(describe_vocab_storage(m), "token embedding BF16, LM head Q8_0");
  EXPECT_TRUE(vocab_quantized(m));
  BaseMemory b = base_memory(m);
  EXPECT_EQ(b.matrices[size_t(WType::Q8_0)], VD / 32 * 34);

  Model e = bf16_model(d / "e", c);
  apply_base_options(e, vocab_opts("q4_k", "q6_k", "nf4"), cpu());
  EXPECT_EQ(e.embed.type, WType::Q4_K);
  EXPECT_EQ(e.lm_head.type, WType::Q6_K);
  EXPECT_EQ(e.layers[1].wdown.type, WType::NF4);
  b = base_memory(e);
  EXPECT_EQ(b.matrices[size_t(WType::Q4_K)], VD / 256 * 144);
  EXPECT_EQ(b.matrices[size_t(WType::Q6_K)], VD / 256 * 210);
  EXPECT_EQ(b.matrices[size_t(WType::BF16)], 0u);
  EXPECT_FALSE(vocab_quantized(bf16_model(d / "plain", c)));
}

// llama.cpp's rule: a tied model's one tensor is both; it stays one tensor (counted once).
TEST(VocabQuant, TiedModelSharesOneQuantizedTensor) {
  const fs::path d = temp_dir("tied");
  LlamaConfig c = small_config(256, 256);
  c.tie_word_embeddings = true;
  for (auto [embed, head] : {std::pair{"none", "q6_k"}, {"q6_k", "none"}, {"q6_k", "q6_k"}}) {
    Model m = bf16_model(d / (std::string(embed) + head), c);
    apply_base_options(m, vocab_opts(embed, head), cpu());
    EXPECT_EQ(m.embed.type, WType::Q6_K) << embed << " " << head;
    EXPECT_EQ(m.lm_head.data, m.embed.data) << "one tensor";
    EXPECT_EQ(m.lm_head.type, WType::Q6_K);
    EXPECT_EQ(base_memory(m).matrices[size_t(WType::Q6_K)], size_t(c.vocab_size * c.n_embd) / 256 * 210);
    EXPECT_EQ(describe_vocab_storage(m), "token embedding and LM head (tied, one tensor) Q6_K");
  }
  Model m = bf16_model(d / "conflict", c);
  EXPECT_ERROR_HAS(apply_base_options(m, vocab_opts("q4_0", "q8_0"), cpu()),
                   "the model ties its LM head to the token embedding (one tensor), so quantize_embedding q4_0 and "
                   "quantize_head q8_0 cannot both hold (hint: set only one of them, or both to the same type)");
  EXPECT_EQ(m.embed.type, WType::BF16) << "refused before anything is converted";
}

TEST(VocabQuant, Refusals) {
  const fs::path d = temp_dir("bad");
  Model m = bf16_model(d, small_config(96, 128));
  EXPECT_ERROR_HAS(apply_base_options(m, vocab_opts("nf4", "none"), cpu()),
                   "unknown quantize_embedding option 'nf4' (expected none, q8_0, q6_k, q4_k or q4_0)");
  EXPECT_ERROR_HAS(apply_base_options(m, vocab_opts("none", "bf16"), cpu()),
                   "unknown quantize_head option 'bf16' (expected none, q8_0, q6_k, q4_k or q4_0)");
  EXPECT_ERROR_HAS(apply_base_options(m, vocab_opts("none", "q6_k", "q8_0"), cpu()),
                   "quantize_head q6_k needs the hidden size to be a multiple of its block of 256, and this model's "
                   "n_embd is 96 (hint: q8_0 and q4_0 have blocks of 32)");
  EXPECT_EQ(m.layers[0].wq.type, WType::BF16) << "refused before the projections are converted";
  Model odd = bf16_model(d / "odd", small_config(80, 128));
  EXPECT_ERROR_HAS(apply_base_options(odd, vocab_opts("q8_0", "none"), cpu()),
                   "quantize_embedding q8_0 needs the hidden size to be a multiple of its block of 32, and this "
                   "model's n_embd is 80");
}

// A GGUF whose token_embd/output are already quantized keeps them as they are (never widened
// to bf16 at load); asking for another type keeps them too, with a note.
TEST(VocabQuant, QuantizedGgufTensorsAreUsedAsLoaded) {
  const fs::path d = temp_dir("gguf");
  const LlamaConfig c = small_config(256, 256);
  const Model src = bf16_model(d / "hf", c);
  save_model_gguf(d / "m.gguf", src, {.weights = WType::Q8_0, .embeddings = WType::Q6_K});
  Model m = load_model(d / "m.gguf");
  EXPECT_EQ(m.embed.type, WType::Q6_K);
  EXPECT_EQ(m.lm_head.type, WType::Q6_K);
  const void* embed = m.embed.data;
  const std::string note = apply_base_options(m, vocab_opts("q8_0", "none", "nf4"), cpu());
  EXPECT_EQ(note, "note: the token embedding is already Q6_K in the model file and keeps that type "
                  "(quantize_embedding q8_0 converts f32/f16/bf16 weights only)");
  EXPECT_EQ(m.embed.data, embed) << "the file's bytes, not a copy";
  EXPECT_EQ(m.lm_head.type, WType::Q6_K);
  EXPECT_EQ(apply_base_options(m, vocab_opts("q6_k", "q6_k"), cpu()), "") << "the type asked: nothing to say";
}

// Relative rms error ‖Wq − W‖/‖W‖ of a quantized matrix against the one it was made from.
double relative_error(const WeightMatrix& w, const WeightMatrix& q) {
  std::vector<float> a(size_t(w.rows * w.cols)), b(a.size());
  dequantize_rows(w, 0, w.rows, a.data());
  dequantize_rows(q, 0, q.rows, b.data());
  double e = 0, n = 0;
  for (size_t i = 0; i < a.size(); ++i) e += double(a[i] - b[i]) * (a[i] - b[i]), n += double(a[i]) * a[i];
  return std::sqrt(e / n);
}

// The bound docs/QLORA.md states, checked on a tiny Llama with a large vocabulary (V = 16384,
// D = 256, weights of std 0.02 as initializer_range) whose final-norm gain of 8 spreads the
// logits as a trained model's (std about 2.6). A head error E of relative rms r moves the
// logits by unbiased noise of std r·σz (σz the spread of the logits); a token's loss moves by
// its target's share of it (the log-sum-exp part averages over the vocabulary), so the mean
// loss over N tokens moves by about r·σz/√N, plus a second-order bias below r²σz². Quantizing
// the embedding too adds an independent change of the same size. Asserted: |ΔL| within 4.5
// standard deviations of that (√2 r·σz/√N with the embedding) plus r²σz², and the LoRA
// gradients (which flow back through the frozen head) pointing the same way.
TEST(VocabQuant, LossAndGradientsStayWithinTheStatedBounds) {
  const fs::path d = temp_dir("loss");
  LlamaConfig c = small_config(256, 512);
  c.vocab_size = 16384;
  write_random_model(d, c, 5, DType::BF16, 0.02f);
  const int64_t B = 4, T = 48;
  std::vector<int32_t> toks(size_t(B * T));
  Rng rng(3);
  for (int32_t& t : toks) t = int32_t(rng.next_u64() % uint64_t(c.vocab_size));
  const BatchView in{B, T, toks.data(), nullptr, nullptr, nullptr};
  const double N = double(count_trained(in));
  LoraConfig lc;
  lc.r = 4;
  lc.targets = parse_targets("all");
  Rng lr(4);
  LoraWeights lw = make_lora(c, lc, lr);
  for (float& p : lw.params) p = float(lr.uniform(-0.05, 0.05));  // B ≠ 0: both factors get gradients

  struct Run {
    double loss, rel_err = 0, logit_std = 0;
    std::vector<float> grads;
  };
  const Model plain = load_model(d);
  auto run = [&](const char* embed, const char* head) {
    Model m = load_model(d);
    apply_base_options(m, vocab_opts(embed, head), cpu());
    for (float& g : m.norm) g = 8.0f;
    LoraState st(cpu(), lw);
    Activations a;
    make_activations(a, cpu(), m.cfg, &lw, B, T);
    StepOptions opt;
    opt.loss_norm = N;
    cpu().fill(st.grads(), 0.0f, st.n_params());
    Run r{forward(m, &st, a, in, opt).nll_sum / N};
    std::vector<float> z(size_t(B * T * c.vocab_size));
    compute_logits(m, a, z.data(), &st);
    double s2 = 0;
    for (float v : z) s2 += double(v) * v;
    r.logit_std = std::sqrt(s2 / double(z.size()));
    r.rel_err = relative_error(plain.lm_head, m.lm_head);
    backward(m, st, a, in, opt);
    LoraWeights out = lw;
    st.download(out);
    r.grads = out.grads;
    return r;
  };
  auto cosine = [](const std::vector<float>& x, const std::vector<float>& y) {
    double dot = 0, n1 = 0, n2 = 0;
    for (size_t i = 0; i < x.size(); ++i) dot += double(x[i]) * y[i], n1 += double(x[i]) * x[i], n2 += double(y[i]) * y[i];
    return dot / std::sqrt(n1 * n2);
  };
  struct Case {
    const char* type;
    double max_rel_err, grad_cos;  // the type's relative rms error on Gaussian rows; least gradient cosine
  };
  const Run ref = run("none", "none");
  EXPECT_NEAR(ref.logit_std, 2.6, 0.4) << "a trained model's spread of logits";
  for (const Case k : {Case{"q8_0", 0.006, 0.9995}, Case{"q6_k", 0.02, 0.998}, Case{"q4_k", 0.09, 0.97},
                       Case{"q4_0", 0.09, 0.97}}) {
    const Run h = run("none", k.type), b = run(k.type, k.type);
    const double r = h.rel_err, sz = ref.logit_std, noise = r * sz / std::sqrt(N);
    std::printf("[ measured ] %s: r %.4f, logit std %.2f, N %.0f, |dL| head %.2e (%.1f sd), head+embedding %.2e "
                "(%.1f sd), grad cosine %.6f\n",
                k.type, r, sz, N, std::abs(h.loss - ref.loss), std::abs(h.loss - ref.loss) / noise,
                std::abs(b.loss - ref.loss), std::abs(b.loss - ref.loss) / (std::sqrt(2.0) * noise),
                cosine(ref.grads, b.grads));
    EXPECT_LT(r, k.max_rel_err) << k.type;
    EXPECT_LT(std::abs(h.loss - ref.loss), 4.5 * noise + r * r * sz * sz) << k.type;
    EXPECT_LT(std::abs(b.loss - ref.loss), 4.5 * std::sqrt(2.0) * noise + 2 * r * r * sz * sz) << k.type;
    EXPECT_GT(cosine(ref.grads, b.grads), k.grad_cos) << k.type;
    EXPECT_NE(h.loss, ref.loss) << "the head really is quantized";
  }
}
