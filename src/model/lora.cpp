// LoRA layout, target parsing and PEFT initialisation; see lora.h.
#include "model/lora.h"

#include <cmath>
#include <utility>

#include "core/error.h"
#include "model/base_weights.h"
#include "quant/qmatrix.h"

namespace tpro {

namespace {
constexpr const char* kNames[kNumProj] = {"q_proj",   "k_proj",    "v_proj",   "o_proj",      "gate_proj",
                                          "up_proj",  "down_proj", "qkv_proj", "gate_up_proj"};
constexpr const char* kModules[kNumProj] = {"self_attn.q_proj", "self_attn.k_proj",   "self_attn.v_proj",
                                            "self_attn.o_proj", "mlp.gate_proj",      "mlp.up_proj",
                                            "mlp.down_proj",    "self_attn.qkv_proj", "mlp.gate_up_proj"};
constexpr const char* kShort[kNumProj] = {"q", "k", "v", "o", "gate", "up", "down", "qkv", "gate_up"};
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
  else if (spec == "all") set({Proj::Q, Proj::K, Proj::V, Proj::O, Proj::Gate, Proj::Up, Proj::Down});
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
             " (Phi-3: qkv_proj, gate_up_proj) or a preset: q-v, q-k-v, q-k-v-o, k-v-down, all)");
      t[size_t(p)] = true;
      start = end + 1;
    }
  }
  return t;
}

std::array<bool, kNumProj> model_targets(const LlamaConfig& mc, const std::array<bool, kNumProj>& t,
                                         std::string* note) {
  auto has = [&](Proj p) { return t[size_t(p)]; };
  std::array<bool, kNumProj> out = t;
  if (!mc.fused_proj) {  // "every projection" (all of q, k, v and gate, up too) simply has no fused ones here
    const bool all_qkv = has(Proj::Q) && has(Proj::K) && has(Proj::V), all_gu = has(Proj::Gate) && has(Proj::Up);
    for (Proj p : {Proj::QKV, Proj::GateUp})
      if (has(p) && !(p == Proj::QKV ? all_qkv : all_gu))
        fail("LoRA target ", kNames[int(p)], " is a fused projection of Phi-3 models; this ", mc.architecture,
             " has q_proj, k_proj, v_proj, gate_proj and up_proj (hint: name those)");
    out[size_t(Proj::QKV)] = out[size_t(Proj::GateUp)] = false;
    return out;
  }
  const bool qkv = has(Proj::Q) || has(Proj::K) || has(Proj::V) || has(Proj::QKV);
  const bool gu = has(Proj::Gate) || has(Proj::Up) || has(Proj::GateUp);
  std::string widened;
  if (qkv && !(has(Proj::QKV) || (has(Proj::Q) && has(Proj::K) && has(Proj::V)))) widened += "q/k/v -> qkv_proj";
  if (gu && !(has(Proj::GateUp) || (has(Proj::Gate) && has(Proj::Up))))
    widened += std::string(widened.empty() ? "" : ", ") + "gate/up -> gate_up_proj";
  if (note && !widened.empty())
    *note = cat("this ", mc.architecture, " fuses q, k, v and gate, up into one projection each: the adapter covers ",
                "the whole fused layer, as PEFT does (", widened, ")");
  for (Proj p : {Proj::Q, Proj::K, Proj::V, Proj::Gate, Proj::Up}) out[size_t(p)] = false;
  out[size_t(Proj::QKV)] = qkv;
  out[size_t(Proj::GateUp)] = gu;
  return out;
}

namespace {
// (in, out) of projection p: the adapter's A is (r, in), B (out, r).
std::pair<int64_t, int64_t> proj_dims(const LlamaConfig& mc, int p) {
  const int64_t D = mc.n_embd, F = mc.n_ff, Q = mc.q_dim(), KV = mc.kv_dim();
  const int64_t in_dim[kNumProj] = {D, D, D, Q, D, D, F, D, D};
  const int64_t out_dim[kNumProj] = {Q, KV, KV, D, F, F, D, Q + 2 * KV, 2 * F};
  return {in_dim[p], out_dim[p]};
}
}  // namespace

int64_t lora_param_count(const LlamaConfig& mc, const LoraConfig& lc) {
  const auto targets = model_targets(mc, lc.targets);
  int64_t per_layer = 0;
  for (int p = 0; p < kNumProj; ++p)
    if (targets[size_t(p)])
      per_layer += lc.r * (proj_dims(mc, p).first + proj_dims(mc, p).second) + (lc.dora ? proj_dims(mc, p).second : 0);
  return per_layer * mc.n_layer + (int64_t(lc.save_embed) + int64_t(lc.save_head)) * mc.vocab_size * mc.n_embd;
}

std::vector<std::string> saved_module_names(const LoraConfig& c) {
  std::vector<std::string> out;
  if (c.save_embed) out.push_back("embed_tokens");
  if (c.save_head) out.push_back("lm_head");
  return out;
}

void init_saved_modules(LoraWeights& lw, const Model& base) {
  TPRO_CHECK(lw.vocab == base.cfg.vocab_size && lw.n_embd == base.cfg.n_embd, "saved modules of (", lw.vocab, ", ",
             lw.n_embd, ") for a (", base.cfg.vocab_size, ", ", base.cfg.n_embd, ") model");
  if (lw.embed_at >= 0) dequantize_rows(base.embed, 0, lw.vocab, lw.params.data() + lw.embed_at);
  if (lw.head_at >= 0) dequantize_rows(base.lm_head, 0, lw.vocab, lw.params.data() + lw.head_at);
}

LoraWeights make_lora(const LlamaConfig& mc, const LoraConfig& lc, Rng& rng) {
  if (lc.r <= 0) fail("LoRA rank must be positive, got ", lc.r);
  bool any = false;
  for (bool b : lc.targets) any |= b;
  if (!any) fail("no LoRA target selected (hint: --training-projection q-v)");
  LoraWeights lw;
  lw.cfg = lc;
  lw.cfg.targets = model_targets(mc, lc.targets);
  lw.cfg.hf_prefix = mc.hf_prefix;
  lw.slot_of.assign(size_t(mc.n_layer * kNumProj), -1);
  size_t off = 0;
  for (int64_t l = 0; l < mc.n_layer; ++l)
    for (int p = 0; p < kNumProj; ++p) {
      if (!lw.cfg.targets[size_t(p)]) continue;
      const auto [in, out] = proj_dims(mc, p);
      LoraSlot s{l, Proj(p), in, out, 0, 0};
      s.a = off;
      off += size_t(lc.r * s.in);
      s.b = off;
      off += size_t(s.out * lc.r);
      if (lc.dora) {
        s.m = off;
        off += size_t(s.out);
      }
      lw.slot_of[size_t(l * kNumProj + p)] = int(lw.slots.size());
      lw.slots.push_back(s);
    }
  lw.vocab = mc.vocab_size, lw.n_embd = mc.n_embd;
  const size_t VD = size_t(mc.vocab_size * mc.n_embd);
  if (lc.save_embed) lw.embed_at = int64_t(off), off += VD;  // zero until init_saved_modules
  if (lc.save_head) lw.head_at = int64_t(off), off += VD;
  lw.params.assign(off, 0.0f);
  lw.grads.assign(off, 0.0f);
  lw.state = optimizer_buffers(lw, lw.optim);
  for (const auto& s : lw.slots) {
    // kaiming_uniform_(a=√5) on (r, in): gain √(2/(1+5)), bound = gain·√(3/in) = 1/√in.
    const double bound = 1.0 / std::sqrt(double(s.in));
    float* A = lw.params.data() + s.a;
    for (int64_t i = 0; i < lc.r * s.in; ++i) A[i] = float(rng.uniform(-bound, bound));
  }
  return lw;
}

void zero_grads(LoraWeights& lw) { std::fill(lw.grads.begin(), lw.grads.end(), 0.0f); }

const char* optim_kind_name(OptimKind k) {
  switch (k) {
    case OptimKind::adamw: return "adamw";
    case OptimKind::sgd: return "sgd";
    case OptimKind::adagrad: return "adagrad";
    case OptimKind::adafactor: return "adafactor";
    case OptimKind::lion: return "lion";
    case OptimKind::adamw8bit: return "adamw8bit";
  }
  return "?";
}

OptimBuffer& LoraWeights::state_named(std::string_view name) {
  for (auto& b : state)
    if (b.name == name) return b;
  TPRO_CHECK(false, "no optimizer state '", name, "' for ", optim_kind_name(optim));
  return state.front();
}

std::vector<OptimTensor> optim_tensors(const LoraWeights& lw) {
  std::vector<OptimTensor> out;
  int64_t rows = 0, cols = 0, blocks = 0;
  for (const auto& s : lw.slots)
    for (int which = 0; which < (lw.cfg.dora ? 3 : 2); ++which) {
      OptimTensor t;
      t.offset = int64_t(which == 0 ? s.a : which == 1 ? s.b : s.m);
      t.rows = which == 0 ? lw.cfg.r : which == 1 ? s.out : 1;
      t.cols = which == 0 ? s.in : which == 1 ? lw.cfg.r : s.out;
      t.matrix = which < 2;
      t.row_at = rows, t.col_at = cols, t.block_at = blocks;
      t.lr_group_b = which > 0;  // LoRA+: B and the 1-D magnitude (PEFT's "lora_B or ndim == 1")
      rows += t.matrix ? t.rows : t.cols, cols += t.matrix ? t.cols : 0, blocks += t.blocks();
      out.push_back(t);
    }
  for (const int64_t at : {lw.embed_at, lw.head_at}) {
    if (at < 0) continue;
    OptimTensor t;
    t.offset = at, t.rows = lw.vocab, t.cols = lw.n_embd;
    t.row_at = rows, t.col_at = cols, t.block_at = blocks;
    rows += t.rows, cols += t.cols, blocks += t.blocks();
    out.push_back(t);
  }
  return out;
}

std::vector<OptimBuffer> optimizer_buffers(const LoraWeights& lw, OptimKind kind) {
  const int64_t n = lw.n_params();
  int64_t rows = 0, cols = 0, blocks = 0;
  for (const auto& t : optim_tensors(lw))
    rows += t.matrix ? t.rows : t.cols, cols += t.matrix ? t.cols : 0, blocks += t.blocks();
  auto f32 = [](const char* name, int64_t count) {
    return OptimBuffer{name, false, count, std::vector<float>(size_t(count), 0.0f), {}};
  };
  auto u8 = [](const char* name, int64_t count) {
    return OptimBuffer{name, true, count, {}, std::vector<uint8_t>(size_t(count), 0)};
  };
  switch (kind) {
    case OptimKind::adamw: return {f32("adamw.exp_avg", n), f32("adamw.exp_avg_sq", n)};
    case OptimKind::sgd: return {f32("sgd.momentum_buffer", n)};
    case OptimKind::adagrad: return {f32("adagrad.sum", n)};
    case OptimKind::adafactor: return {f32("adafactor.exp_avg_sq_row", rows), f32("adafactor.exp_avg_sq_col", cols)};
    case OptimKind::lion: return {f32("lion.exp_avg", n)};
    case OptimKind::adamw8bit:
      return {u8("adamw8bit.state1", n), u8("adamw8bit.state2", n), f32("adamw8bit.absmax1", blocks),
              f32("adamw8bit.absmax2", blocks)};
  }
  return {};
}

void set_optimizer(LoraWeights& lw, OptimKind kind) {
  lw.optim = kind;
  lw.state = optimizer_buffers(lw, kind);
}

namespace {
// Floats a state buffer takes in the device allocation, rounded to 64 bytes.
int64_t state_floats(const OptimBuffer& b) {
  const int64_t bytes = b.u8 ? b.count : 4 * b.count;
  return (bytes + 63) / 64 * 16;
}
int64_t norm_floats(const LoraWeights& host) {
  int64_t n = 0;
  if (host.cfg.dora)
    for (const auto& s : host.slots) n += s.out;
  return n;
}
int64_t total_floats(const LoraWeights& host) {
  int64_t t = (2 * host.n_params() + 15) / 16 * 16;
  for (const auto& b : host.state) t += state_floats(b);
  return t + norm_floats(host);
}
}  // namespace

LoraState::LoraState(const Backend& be, const LoraWeights& host)
    : be_(&be), n_(host.n_params()), tensors_(optim_tensors(host)), buf_(be, size_t(total_floats(host))) {
  layout_.cfg = host.cfg;
  layout_.slots = host.slots;
  layout_.slot_of = host.slot_of;
  layout_.optim = host.optim;
  layout_.embed_at = host.embed_at, layout_.head_at = host.head_at;
  layout_.vocab = host.vocab, layout_.n_embd = host.n_embd;
  int64_t at = (2 * n_ + 15) / 16 * 16;
  for (const auto& b : host.state) {
    layout_.state.push_back({b.name, b.u8, b.count, {}, {}});
    state_at_.push_back(at);
    at += state_floats(b);
  }
  if (host.cfg.dora)
    for (const auto& s : host.slots) {
      norm_at_.push_back(at);
      at += s.out;
    }
  norm_fresh_.assign(norm_at_.size(), 0);
  upload(host);
}

float* LoraState::dora_norm(const LoraSlot& s, bool* stale) const {
  const size_t i = size_t(&s - layout_.slots.data());
  TPRO_CHECK(i < norm_at_.size(), "DoRA norms asked of a LoRA state without DoRA");
  *stale = !norm_fresh_[i];
  norm_fresh_[i] = 1;
  return buf_.data() + norm_at_[i];
}

void LoraState::params_changed() const { std::fill(norm_fresh_.begin(), norm_fresh_.end(), 0); }

void LoraState::upload(const LoraWeights& host) {
  TPRO_CHECK(host.n_params() == n_, "LoRA state of ", n_, " parameters, host image of ", host.n_params());
  // An image without state (a loaded adapter) leaves the device state as it is.
  TPRO_CHECK(host.state.empty() || (host.optim == layout_.optim && host.state.size() == layout_.state.size()),
             "LoRA host image for ", optim_kind_name(host.optim), ", device state for ", optim_kind_name(layout_.optim));
  const size_t bytes = size_t(n_) * sizeof(float);
  if (!host.params.empty()) be_->upload(params(), host.params.data(), bytes);
  params_changed();
  if (!host.grads.empty()) be_->upload(grads(), host.grads.data(), bytes);
  for (size_t i = 0; i < host.state.size(); ++i) {  // a buffer without values stays as it is
    const OptimBuffer& b = host.state[i];
    TPRO_CHECK(b.count == layout_.state[i].count, "optimizer state ", b.name, " has ", b.count, " values");
    if (b.u8 && !b.codes.empty()) be_->upload(state_u8(i), b.codes.data(), size_t(b.count));
    if (!b.u8 && !b.f32.empty()) be_->upload(state_f32(i), b.f32.data(), size_t(b.count) * sizeof(float));
  }
}

void LoraState::download(LoraWeights& host) const {
  host.params.resize(size_t(n_));
  host.grads.resize(size_t(n_));
  be_->download(host.params.data(), params(), size_t(n_) * sizeof(float));
  be_->download(host.grads.data(), grads(), size_t(n_) * sizeof(float));
  host.optim = layout_.optim;
  host.state.resize(layout_.state.size());
  for (size_t i = 0; i < layout_.state.size(); ++i) {
    OptimBuffer& b = host.state[i];
    const OptimBuffer& d = layout_.state[i];
    b.name = d.name, b.u8 = d.u8, b.count = d.count;
    if (b.u8) {
      b.codes.resize(size_t(b.count));
      be_->download(b.codes.data(), state_u8(i), size_t(b.count));
    } else {
      b.f32.resize(size_t(b.count));
      be_->download(b.f32.data(), state_f32(i), size_t(b.count) * sizeof(float));
    }
  }
}

std::vector<float> LoraState::download_params() const {
  std::vector<float> p(static_cast<size_t>(n_));
  be_->download(p.data(), params(), p.size() * sizeof(float));
  return p;
}

void init_dora_magnitudes(const Backend& be, const Model& m, LoraWeights& lw) {
  if (!lw.cfg.dora) return;
  DeviceArray<float> ab(be, lw.params.size()), wn(be, 0);
  ab.upload(lw.params);
  for (const LoraSlot& s : lw.slots) {
    const WeightMatrix& W = proj_weight(m.layers[size_t(s.layer)], s.proj);
    TPRO_CHECK(W.rows == s.out && W.cols == s.in, "DoRA slot of layer ", s.layer, " does not fit its weight");
    if (wn.size() < size_t(s.out)) wn = DeviceArray<float>(be, size_t(s.out));
    be.dora_weight_norm(wn.data(), W, ab.data() + s.a, ab.data() + s.b, float(lw.cfg.scale()), lw.cfg.r);
    wn.download({lw.params.data() + s.m, size_t(s.out)});
  }
}

}  // namespace tpro
