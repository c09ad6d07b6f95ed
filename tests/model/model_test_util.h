// Helpers shared by the GGUF, QLoRA and merge tests: small random models written to a temp
// folder, full-sequence logits, error capture, and rewriting a GGUF with changes (to make
// files that lie about a model or an adapter).
#pragma once
#include <optional>
#include <gtest/gtest.h>

#include <functional>
#include <string>
#include <vector>

#include "common/backend_util.h"
#include "common/test_util.h"
#include "common/tiny_config.h"
#include "core/error.h"
#include "io/gguf_writer.h"
#include "model/step.h"

namespace tpro::test {


inline fs::path temp_dir(const std::string& name) {
  const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
  fs::path d = fs::temp_directory_path() /
               (std::string("tpro_model_") + info->test_suite_name() + "_" + info->name() + "_" + name);
  fs::remove_all(d);
  fs::create_directories(d);
  return d;
}

// Llama with GQA and an untied head; dims fit every block size when n_embd is a multiple of 256.
inline LlamaConfig small_config(int64_t n_embd = 64, int64_t n_ff = 128) {
  LlamaConfig c = tiny_config(n_embd, n_ff, 96);
  c.tie_word_embeddings = false;
  return c;
}

inline std::vector<int32_t> sample_tokens(int64_t vocab, int64_t n = 12) {
  std::vector<int32_t> t(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) t[size_t(i)] = int32_t((i * 37 + 5) % vocab);
  return t;
}

inline std::vector<float> logits_of(const Model& m, const LoraWeights* lw, const std::vector<int32_t>& toks) {
  Activations a;
  const int64_t T = int64_t(toks.size());
  make_activations(a, test::cpu(), m.cfg, lw, 1, T);
  BatchView in{1, T, toks.data(), nullptr, nullptr, nullptr};
  StepOptions opt;
  opt.train = false;
  std::optional<LoraState> st;
  if (lw) st.emplace(test::cpu(), *lw);
  forward(m, st ? &*st : nullptr, a, in, opt);
  std::vector<float> out(size_t(T * m.cfg.vocab_size));
  compute_logits(m, a, out.data(), st ? &*st : nullptr);
  return out;
}

inline double max_abs_diff(const std::vector<float>& a, const std::vector<float>& b) {
  EXPECT_EQ(a.size(), b.size());
  double d = 0;
  for (size_t i = 0; i < a.size() && i < b.size(); ++i) d = std::max(d, std::abs(double(a[i]) - double(b[i])));
  return d;
}

// Copies a GGUF file, letting `meta` edit the metadata and `tensor` rename (return "" to drop)
// or change the shape, type and bytes of each tensor.
struct GgufEdit {
  std::function<void(GgufWriter&)> meta;
  std::function<std::string(const std::string& name, std::vector<int64_t>& ne, GgmlType& type,
                            std::vector<uint8_t>& bytes)>
      tensor;
};

inline void rewrite_gguf(const fs::path& src, const fs::path& dst, const GgufEdit& e) {
  GgufFile f(src);
  GgufWriter w;
  for (const GgufKV& kv : f.metadata()) w.set(kv.key, kv.value);
  if (e.meta) e.meta(w);
  for (const GgufTensor& t : f.tensors()) {
    std::vector<int64_t> ne = t.ne;
    GgmlType type = t.type;
    std::vector<uint8_t> bytes(t.data, t.data + t.nbytes);
    const std::string name = e.tensor ? e.tensor(t.name, ne, type, bytes) : t.name;
    if (name.empty()) continue;
    w.add_tensor(name, type, ne, std::move(bytes));
  }
  w.write(dst);
}

}  // namespace tpro::test
