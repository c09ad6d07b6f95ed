// LoRA layout, target parsing and PEFT initialisation; see lora.h.
#include "model/lora.h"

#include <cmath>
#include <utility>

#include "core/error.h"

namespace tpro {

namespace {
constexpr const char* kNames[kNumProj] = {"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"};
constexpr const char* kModules[kNumProj] = {"self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj",
                                            "self_attn.o_proj", "mlp.gate_proj",    "mlp.up_proj",
                                            "mlp.down_proj"};
constexpr const char* kShort[kNumProj] = {"q", "k", "v", "o", "gate", "up", "down"};
}  // namespace

const char* proj_name(Proj p) { return kNames[int(p)]; }
const char* proj_module(Proj p) { return kModules[int(p)]; }

bool proj_from_name(const std::string& s, Proj* out) {
  for (int i = 0; i < kNumProj; ++i)
    if (s == kNames[i] || s == kShort[i]) {
      *out = Proj(i);
      return true;
    }
  return false;
}

double LoraConfig::scale() const { return rslora ? alpha / std::sqrt(double(r)) : alpha / double(r); }

std::vector<std::string> LoraConfig::target_names() const {
  std::vector<std::string> out;
  for (int i = 0; i < kNumProj; ++i)
    if (targets[size_t(i)]) out.push_back(kNames[i]);
  return out;
}

std::array<bool, kNumProj> parse_targets(const std::string& spec) {
  std::array<bool, kNumProj> t{};
  auto set = [&](std::initializer_list<Proj> ps) {
    for (Proj p : ps) t[size_t(p)] = true;
  };
  if (spec == "q-v") set({Proj::Q, Proj::V});
  else if (spec == "q-k-v") set({Proj::Q, Proj::K, Proj::V});
  else if (spec == "q-k-v-o") set({Proj::Q, Proj::K, Proj::V, Proj::O});
  else if (spec == "k-v-down") set({Proj::K, Proj::V, Proj::Down});
  else if (spec == "all") t.fill(true);
  else {
    size_t start = 0;
    while (start <= spec.size()) {
      size_t end = spec.find(',', start);
      if (end == std::string::npos) end = spec.size();
      std::string name = spec.substr(start, end - start);
      while (!name.empty() && name.front() == ' ') name.erase(name.begin());
      while (!name.empty() && name.back() == ' ') name.pop_back();
      Proj p;
      if (!proj_from_name(name, &p))
        fail("unknown LoRA target \"", name, "\" (hint: use q_proj,k_proj,v_proj,o_proj,gate_proj,up_proj,down_proj",
             " or a preset: q-v, q-k-v, q-k-v-o, k-v-down, all)");
      t[size_t(p)] = true;
      start = end + 1;
    }
  }
  return t;
}

namespace {
// (in, out) of projection p: the adapter's A is (r, in), B (out, r).
std::pair<int64_t, int64_t> proj_dims(const LlamaConfig& mc, int p) {
  const int64_t D = mc.n_embd, F = mc.n_ff, Q = mc.q_dim(), KV = mc.kv_dim();
  const int64_t in_dim[kNumProj] = {D, D, D, Q, D, D, F};
  const int64_t out_dim[kNumProj] = {Q, KV, KV, D, F, F, D};
  return {in_dim[p], out_dim[p]};
}
}  // namespace

int64_t lora_param_count(const LlamaConfig& mc, const LoraConfig& lc) {
  int64_t per_layer = 0;
  for (int p = 0; p < kNumProj; ++p)
    if (lc.targets[size_t(p)]) per_layer += lc.r * (proj_dims(mc, p).first + proj_dims(mc, p).second);
  return per_layer * mc.n_layer;
}

LoraWeights make_lora(const LlamaConfig& mc, const LoraConfig& lc, Rng& rng) {
  if (lc.r <= 0) fail("LoRA rank must be positive, got ", lc.r);
  bool any = false;
  for (bool b : lc.targets) any |= b;
  if (!any) fail("no LoRA target selected (hint: --training-projection q-v)");
  LoraWeights lw;
  lw.cfg = lc;
  lw.slot_of.assign(size_t(mc.n_layer * kNumProj), -1);
  size_t off = 0;
  for (int64_t l = 0; l < mc.n_layer; ++l)
    for (int p = 0; p < kNumProj; ++p) {
      if (!lc.targets[size_t(p)]) continue;
      const auto [in, out] = proj_dims(mc, p);
      LoraSlot s{l, Proj(p), in, out, 0, 0};
      s.a = off;
      off += size_t(lc.r * s.in);
      s.b = off;
      off += size_t(s.out * lc.r);
      lw.slot_of[size_t(l * kNumProj + p)] = int(lw.slots.size());
      lw.slots.push_back(s);
    }
  lw.params.assign(off, 0.0f);
  lw.grads.assign(off, 0.0f);
  lw.m.assign(off, 0.0f);
  lw.v.assign(off, 0.0f);
  for (const auto& s : lw.slots) {
    // kaiming_uniform_(a=√5) on (r, in): gain √(2/(1+5)), bound = gain·√(3/in) = 1/√in.
    const double bound = 1.0 / std::sqrt(double(s.in));
    float* A = lw.params.data() + s.a;
    for (int64_t i = 0; i < lc.r * s.in; ++i) A[i] = float(rng.uniform(-bound, bound));
  }
  return lw;
}

void zero_grads(LoraWeights& lw) { std::fill(lw.grads.begin(), lw.grads.end(), 0.0f); }

LoraState::LoraState(const Backend& be, const LoraWeights& host)
    : be_(&be), n_(host.n_params()), buf_(be, size_t(4 * host.n_params())) {
  layout_.cfg = host.cfg;
  layout_.slots = host.slots;
  layout_.slot_of = host.slot_of;
  upload(host);
}

void LoraState::upload(const LoraWeights& host) {
  TPRO_CHECK(host.n_params() == n_, "LoRA state of ", n_, " parameters, host image of ", host.n_params());
  const std::vector<float>* parts[] = {&host.params, &host.grads, &host.m, &host.v};
  for (size_t i = 0; i < 4; ++i) {
    if (parts[i]->empty()) continue;  // an image without moments: they stay as they are
    TPRO_CHECK(int64_t(parts[i]->size()) == n_, "LoRA host buffer ", i, " has ", parts[i]->size(), " values");
    be_->upload(buf_.data() + int64_t(i) * n_, parts[i]->data(), size_t(n_) * sizeof(float));
  }
}

void LoraState::download(LoraWeights& host) const {
  std::vector<float>* parts[] = {&host.params, &host.grads, &host.m, &host.v};
  for (size_t i = 0; i < 4; ++i) {
    parts[i]->resize(size_t(n_));
    be_->download(parts[i]->data(), buf_.data() + int64_t(i) * n_, size_t(n_) * sizeof(float));
  }
}

std::vector<float> LoraState::download_params() const {
  std::vector<float> p(static_cast<size_t>(n_));
  be_->download(p.data(), params(), p.size() * sizeof(float));
  return p;
}

}  // namespace tpro
