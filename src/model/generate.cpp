// KV-cache generation and sampling; see generate.h.
#include "model/generate.h"

#include <algorithm>
#include <cmath>
#include <new>
#include <numeric>

#include "core/error.h"

namespace tpro {

Generator::Generator(const Backend& be, const Model& m, const LoraWeights* lora, int64_t max_ctx)
    : m_(m), lora_(lora), max_ctx_(max_ctx), chunk_(64) {
  const LlamaConfig& c = m.cfg;
  const size_t L = size_t(c.n_layer), KV = size_t(c.kv_dim());
  if (max_ctx < 1) fail("the generation window must be at least 1 token, got ", max_ctx);
  const double cache_gib = 2.0 * double(L) * double(max_ctx) * double(KV) * sizeof(float) / double(1 << 30);
  try {
    if (cache_gib > 1024.0) throw std::bad_alloc();  // no machine has it; the size_t product may wrap
    kcache_ = DeviceArray<float>(be, L * size_t(max_ctx) * KV);
    vcache_ = DeviceArray<float>(be, L * size_t(max_ctx) * KV);
  } catch (const std::exception&) {
    fail("cannot allocate the KV cache for a window of ", max_ctx, " tokens (", cache_gib,
         " GiB) (hint: fewer new tokens, or a smaller --max-context)");
  }
  if (lora) state_.emplace(be, *lora);
  make_activations(acts_, be, c, lora, 1, chunk_, {.recompute = true});
  ensure_rope(acts_, m.inv_freq, max_ctx, m.inv_freq_local, c.rope_mscale());
  logits_dev_ = DeviceArray<float>(be, size_t(c.vocab_size));
  logits_.resize(size_t(c.vocab_size));
  positions_.resize(size_t(chunk_));
}

const float* Generator::feed(const int32_t* tokens, int64_t n) {
  const LlamaConfig& c = m_.cfg;
  const Backend& be = *acts_.be;
  const int64_t D = c.n_embd;
  if (pos_ + n > max_ctx_)
    fail("context of ", pos_ + n, " tokens exceeds the generation window of ", max_ctx_, " (hint: raise --max-context)");
  StepOptions opt;
  opt.train = false;
  KvCache kv{kcache_.data(), vcache_.data(), max_ctx_, pos_};
  for (int64_t done = 0; done < n; done += chunk_) {
    const int64_t P = std::min(chunk_, n - done);
    for (int64_t i = 0; i < P; ++i) positions_[size_t(i)] = int32_t(pos_ + i);
    reshape_activations(acts_, c, lora_, 1, P);
    upload_batch(m_, acts_, BatchView{1, P, tokens + done, positions_.data(), nullptr, nullptr});
    const LoraState* st = state_ ? &*state_ : nullptr;
    embed_tokens(m_, acts_, P, P, opt, st);
    kv.len = pos_;
    for (int64_t l = 0; l < c.n_layer; ++l) {
      float* x_next = l + 1 < c.n_layer ? acts_.layers[size_t(l + 1)].x_in : acts_.x_out;
      layer_forward(m_, st, acts_, l, opt, x_next, &kv);
    }
    pos_ += P;
    if (done + P == n) {  // logits of the last position only
      const float* last = acts_.x_out + (P - 1) * D;
      be.rmsnorm_forward(acts_.lnf, acts_.rstdf, last, m_.norm.data(), float(c.rms_norm_eps), 1, D);
      if (st && st->head())  // the adapter's trained LM head (modules_to_save), as in training
        be.gemm(false, true, 1, c.vocab_size, D, 1.0f, acts_.lnf, D, st->head(), D, 0.0f, logits_dev_.data(), c.vocab_size);
      else
        be.project(logits_dev_.data(), acts_.lnf, m_.lm_head, nullptr, nullptr, 1);
      if (c.final_softcap > 0.0) be.softcap(logits_dev_.data(), c.vocab_size, float(c.final_softcap));
      logits_dev_.download(logits_);
    }
  }
  return logits_.data();
}

int32_t sample_token(float* logits, int64_t V, const SamplingParams& sp, const std::vector<int32_t>& history, Rng& rng) {
  if (sp.repetition_penalty != 1.0) {  // as transformers: divide positive logits, multiply negative
    for (int32_t t : history) {
      float& l = logits[t];
      l = l > 0 ? float(l / sp.repetition_penalty) : float(l * sp.repetition_penalty);
    }
  }
  if (sp.temperature <= 0.0) return int32_t(std::max_element(logits, logits + V) - logits);
  std::vector<int32_t> idx(static_cast<size_t>(V));
  std::iota(idx.begin(), idx.end(), 0);
  int64_t k = (sp.top_k > 0 && sp.top_k < V) ? sp.top_k : V;
  std::partial_sort(idx.begin(), idx.begin() + k, idx.end(), [&](int32_t a, int32_t b) { return logits[a] > logits[b]; });
  idx.resize(size_t(k));
  std::vector<double> p(idx.size());
  const double mx = logits[idx[0]];
  double sum = 0;
  for (size_t i = 0; i < idx.size(); ++i) sum += p[i] = std::exp((logits[idx[i]] - mx) / sp.temperature);
  size_t keep = idx.size();
  if (sp.top_p < 1.0) {  // smallest prefix whose mass reaches top_p (at least one token)
    double acc = 0;
    for (size_t i = 0; i < idx.size(); ++i) {
      acc += p[i] / sum;
      if (acc >= sp.top_p) {
        keep = i + 1;
        break;
      }
    }
  }
  double total = 0;
  for (size_t i = 0; i < keep; ++i) total += p[i];
  double r = rng.uniform() * total;
  for (size_t i = 0; i < keep; ++i) {
    r -= p[i];
    if (r <= 0) return idx[i];
  }
  return idx[keep - 1];
}

std::vector<int32_t> Generator::generate(const std::vector<int32_t>& prompt, const SamplingParams& sp,
                                         const std::function<bool(int32_t)>& on_token) {
  if (prompt.empty()) fail("generation needs at least one prompt token (hint: the tokenizer adds BOS when it has one)");
  Rng rng(sp.seed);
  std::vector<int32_t> history = prompt, out;
  std::vector<float> logits(size_t(m_.cfg.vocab_size));
  const float* l = feed(prompt.data(), int64_t(prompt.size()));
  for (int64_t i = 0; i < sp.max_new_tokens; ++i) {
    std::copy(l, l + m_.cfg.vocab_size, logits.begin());
    int32_t t = sample_token(logits.data(), m_.cfg.vocab_size, sp, history, rng);
    out.push_back(t);
    history.push_back(t);
    if (on_token && !on_token(t)) break;
    if (std::find(sp.stop_ids.begin(), sp.stop_ids.end(), t) != sp.stop_ids.end()) break;
    if (pos_ >= max_ctx_) break;
    l = feed(&t, 1);
  }
  return out;
}

}  // namespace tpro
