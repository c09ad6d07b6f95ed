// Naming helpers shared by the loaders and writers, and the parameter count; see model.h.
#include "model/model.h"

#include <cctype>

#include "core/error.h"

namespace tpro {

std::string layer_prefix(int64_t layer) { return cat("model.layers.", layer, "."); }

int64_t layer_of(const std::string& name, std::string_view prefix) {
  if (name.compare(0, prefix.size(), prefix) != 0) return -1;
  int64_t l = 0;
  size_t i = prefix.size();
  if (i >= name.size() || !std::isdigit(static_cast<unsigned char>(name[i]))) return -1;
  for (; i < name.size() && std::isdigit(static_cast<unsigned char>(name[i])); ++i) {
    if (l > (int64_t(1) << 40)) return l;  // absurd index: large enough to fail the check
    l = l * 10 + (name[i] - '0');
  }
  return l;
}

std::vector<std::vector<float>*> norms_of(LayerWeights& L) {
  return {&L.ln1, &L.ln2, &L.ln_post_attn, &L.ln_post_ffn, &L.q_norm, &L.k_norm};
}

void add_to_norms(Model& m, float delta) {
  for (float& x : m.norm) x += delta;
  for (LayerWeights& L : m.layers)
    for (std::vector<float>* v : norms_of(L))
      for (float& x : *v) x += delta;
}

int64_t Model::n_params() const {
  const LlamaConfig& c = cfg;
  int64_t per_layer = (c.sandwich_norms ? 4 : 2) * c.n_embd + c.n_embd * (2 * c.q_dim() + 2 * c.kv_dim()) + 3 * c.n_embd * c.n_ff;
  return c.vocab_size * c.n_embd * (c.tie_word_embeddings ? 1 : 2) + c.n_embd + c.n_layer * per_layer;
}

}  // namespace tpro
