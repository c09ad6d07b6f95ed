// KV-cache generation and sampling; see generate.h.
#include "model/generate.h"

#include <algorithm>
#include <cmath>
#include <new>
#include <numeric>

#include "core/error.h"
#include "kernels/cpu/linear.h"

namespace tpro {

Generator::Generator(const Model& m, const LoraWeights* lora, int64_t max_ctx, const Backend& be)
    : m_(m), lora_(lora), be_(be), max_ctx_(max_ctx), chunk_(64) {
  const LlamaConfig& c = m.cfg;
  const size_t L = size_t(c.n_layer), KV = size_t(c.kv_dim()), D = size_t(c.n_embd), Q = size_t(c.q_dim()),
               F = size_t(c.n_ff), P = size_t(chunk_);
  if (max_ctx < 1) fail("the generation window must be at least 1 token, got ", max_ctx);
  const double cache_gib = 2.0 * double(L) * double(max_ctx) * double(KV) * sizeof(float) / double(1 << 30);
  try {
    if (cache_gib > 1024.0) throw std::bad_alloc();  // no machine has it; the size_t product may wrap
    kcache_.assign(L * size_t(max_ctx) * KV, 0.0f);
    vcache_.assign(L * size_t(max_ctx) * KV, 0.0f);
  } catch (const std::bad_alloc&) {
    fail("cannot allocate the KV cache for a window of ", max_ctx, " tokens (", cache_gib,
         " GiB) (hint: fewer new tokens, or a smaller --max-context)");
  }
  x_.resize(P * D);
  ln_.resize(P * D);
  q_.resize(P * Q);
  att_.resize(P * Q);
  mid_.resize(P * D);
  gate_.resize(P * F);
  up_.resize(P * F);
  h_.resize(P * F);
  u_.resize(P * size_t(lora ? lora->cfg.r : 1));
  logits_.resize(size_t(c.vocab_size));
  positions_.resize(P);
  rope_.build(m.inv_freq, max_ctx);
}

const float* Generator::feed(const int32_t* tokens, int64_t n) {
  const LlamaConfig& c = m_.cfg;
  const int64_t D = c.n_embd, F = c.n_ff, KV = c.kv_dim();
  const float eps = float(c.rms_norm_eps);
  if (pos_ + n > max_ctx_)
    fail("context of ", pos_ + n, " tokens exceeds the generation window of ", max_ctx_, " (hint: raise --max-context)");
  std::vector<float> rstd(static_cast<size_t>(chunk_));
  auto proj = [&](float* out, const float* inp, const WeightMatrix& W, const std::vector<float>& b, int64_t l, Proj p,
                  int64_t P) {
    be_.linear_forward(out, inp, W, b.empty() ? nullptr : b.data(), P, false, nullptr);
    const LoraSlot* s = lora_ ? lora_->find(l, p) : nullptr;
    if (s)
      be_.lora_forward(out, u_.data(), inp, lora_->params.data() + s->a, lora_->params.data() + s->b,
                       float(lora_->cfg.scale()), LoraDropout{}, P, s->in, s->out, lora_->cfg.r, nullptr);
  };
  for (int64_t done = 0; done < n; done += chunk_) {
    const int64_t P = std::min(chunk_, n - done);
    for (int64_t i = 0; i < P; ++i) positions_[size_t(i)] = int32_t(pos_ + i);
    be_.embedding_forward(x_.data(), tokens + done, m_.embed, P);
    for (int64_t l = 0; l < c.n_layer; ++l) {
      const LayerWeights& W = m_.layers[size_t(l)];
      float* kc = kcache_.data() + size_t(l * max_ctx_ * KV);
      float* vc = vcache_.data() + size_t(l * max_ctx_ * KV);
      be_.rmsnorm_forward(ln_.data(), rstd.data(), x_.data(), W.ln1.data(), eps, P, D);
      proj(q_.data(), ln_.data(), W.wq, W.bq, l, Proj::Q, P);
      proj(kc + pos_ * KV, ln_.data(), W.wk, W.bk, l, Proj::K, P);
      proj(vc + pos_ * KV, ln_.data(), W.wv, W.bv, l, Proj::V, P);
      be_.rope_forward(q_.data(), positions_.data(), rope_, P, c.n_head, c.head_dim, false);
      be_.rope_forward(kc + pos_ * KV, positions_.data(), rope_, P, c.n_head_kv, c.head_dim, false);
      const AttnShape s{1, P, pos_ + P, c.n_head, c.n_head_kv, c.head_dim, c.sliding_window};
      be_.attention_forward(att_.data(), nullptr, q_.data(), kc, vc, nullptr, s, KV);
      proj(mid_.data(), att_.data(), W.wo, W.bo, l, Proj::O, P);
      for (int64_t i = 0; i < P * D; ++i) mid_[size_t(i)] += x_[size_t(i)];
      be_.rmsnorm_forward(ln_.data(), rstd.data(), mid_.data(), W.ln2.data(), eps, P, D);
      proj(gate_.data(), ln_.data(), W.wgate, W.bgate, l, Proj::Gate, P);
      proj(up_.data(), ln_.data(), W.wup, W.bup, l, Proj::Up, P);
      be_.swiglu_forward(h_.data(), gate_.data(), up_.data(), P * F);
      proj(x_.data(), h_.data(), W.wdown, W.bdown, l, Proj::Down, P);
      for (int64_t i = 0; i < P * D; ++i) x_[size_t(i)] += mid_[size_t(i)];
    }
    pos_ += P;
    if (done + P == n) {  // logits of the last position only
      const float* last = x_.data() + (P - 1) * D;
      be_.rmsnorm_forward(ln_.data(), rstd.data(), last, m_.norm.data(), eps, 1, D);
      be_.linear_forward(logits_.data(), ln_.data(), m_.lm_head, nullptr, 1, false, nullptr);
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
