// Base storage options and the memory report; see base_weights.h. Each converted matrix gets
// its own QuantizedMatrix (owned by the model); the source pages are released right after,
// so converting a memory-mapped bf16 model never holds the whole file and the result at once.
#include "model/base_weights.h"

#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdio>
#include <map>
#include <optional>
#include <vector>

#include "core/error.h"
#include "quant/quantized_matrix.h"

namespace tpro {

namespace {

bool is_plain(WType t) { return t == WType::F32 || t == WType::F16 || t == WType::BF16; }

std::optional<WType> parse_quantize(const std::string& s) {
  if (s == "none" || s.empty()) return std::nullopt;
  WType t;
  if (!wtype_from_name(s, &t) || is_plain(t)) {
    fail("unknown quantize option '", s, "' (expected none, nf4, q8_0, q4_0, q4_k or q6_k)");
  }
  return t;
}

std::optional<WType> parse_dtype(const std::string& s) {
  if (s == "auto" || s.empty()) return std::nullopt;
  WType t;
  if (!wtype_from_name(s, &t) || !is_plain(t)) fail("unknown dtype '", s, "' (expected auto, f32, bf16 or f16)");
  return t;
}

// A hint that the converted source is no longer needed. MADV_PAGEOUT reclaims clean file pages
// (the memory-mapped weights) and never loses data: anonymous pages would go to swap, or stay.
void release_pages(const void* p, size_t n) {
  if (n == 0) return;
  const auto page = uintptr_t(sysconf(_SC_PAGESIZE));
  const uintptr_t a = uintptr_t(p) & ~(page - 1), b = (uintptr_t(p) + n + page - 1) & ~(page - 1);
#ifdef MADV_PAGEOUT
  madvise(reinterpret_cast<void*>(a), b - a, MADV_PAGEOUT);
#endif
}

// A planned copy only retypes the view (its data is never read); a real one converts.
void store_as(Model& m, WeightMatrix& w, WType to, const std::string& what, bool plan_only) {
  if (w.type == to) return;
  if (plan_only) {
    w.type = to;
    w.prepared = nullptr;
    return;
  }
  QuantizedMatrix q;
  try {
    q = quantize_matrix(w, to);
  } catch (const Error& e) {
    fail("cannot store ", what, " as ", wtype_name(to), ": ", e.what());
  }
  release_pages(w.data, size_t(w.rows) * wtype_row_bytes(w.type, w.cols));
  // A copy the model owns for this matrix alone (e.g. unpermuted GGUF Q/K rows) is freed.
  std::erase_if(m.owned, [&](const std::shared_ptr<void>& p) { return p.get() == w.data; });
  auto owner = std::make_shared<QuantizedMatrix>(std::move(q));
  w = owner->view();
  m.owned.push_back(owner);
}

std::string human(size_t bytes) {
  char buf[32];
  const bool small = bytes < 1024 * 1024;
  std::snprintf(buf, sizeof buf, "%.1f %s", double(bytes) / (small ? 1024.0 : 1024.0 * 1024.0), small ? "KiB" : "MiB");
  return buf;
}

}  // namespace

WeightMatrix& proj_weight(LayerWeights& L, Proj p) {
  WeightMatrix* all[kNumProj] = {&L.wq, &L.wk, &L.wv, &L.wo, &L.wgate, &L.wup, &L.wdown, &L.wqkv, &L.wgate_up};
  return *all[int(p)];
}

const WeightMatrix& proj_weight(const LayerWeights& L, Proj p) { return proj_weight(const_cast<LayerWeights&>(L), p); }

namespace {

// Projections whose columns do not fill whole blocks of `quant` keep their plain type (or
// `dtype`), as bitsandbytes quantizes any shape and refusing the model would be worse; they are
// listed in the returned note.
std::string store_matrices(Model& m, const std::optional<WType>& quant, const std::optional<WType>& dtype,
                           const CancelFlag* cancel, bool plan_only) {
  if (!quant && !dtype) return "";
  std::map<std::string, int64_t> ragged;  // projection name -> its columns
  int64_t n_ragged = 0, n_quant = 0;
  for (int64_t l = 0; l < m.cfg.n_layer; ++l) {
    check_cancel(cancel, "converting the base weights (layer ", l, " of ", m.cfg.n_layer, ")");
    for (int i = 0; i < kNumProj; ++i) {
      WeightMatrix& w = proj_weight(m.layers[size_t(l)], Proj(i));
      if (!w.data || !is_plain(w.type)) continue;  // absent (fused models) or already quantized
      std::optional<WType> to = quant ? quant : dtype;
      if (quant) {
        ++n_quant;
        if (w.cols % wtype_block(*quant) != 0) {
          ragged[proj_name(Proj(i))] = w.cols;
          ++n_ragged;
          to = dtype;
        }
      }
      if (to) store_as(m, w, *to, cat("layer ", l, " ", proj_name(Proj(i)), " (", w.rows, ", ", w.cols, ")"), plan_only);
    }
  }
  std::string note;
  if (n_ragged > 0) {
    std::string which;
    for (const auto& [name, cols] : ragged) which += cat(which.empty() ? "" : ", ", name, " (", cols, " columns)");
    note = cat("warning: ", n_ragged, " of ", n_quant, " projection matrices are kept unquantized: their columns are not a ",
               "multiple of the ", wtype_name(*quant), " block of ", wtype_block(*quant), ": ", which,
               wtype_block(*quant) > 32 ? " (hint: q8_0 and q4_0 have blocks of 32)" : "");
  }
  return note;
}

std::optional<WType> parse_vocab_quant(const char* key, const std::string& s) {
  if (s == "none" || s.empty()) return std::nullopt;
  WType t;
  if (!wtype_from_name(s, &t) || is_plain(t) || t == WType::NF4)
    fail("unknown ", key, " option '", s, "' (expected none, q8_0, q6_k, q4_k or q4_0)");
  return t;
}

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& ch : out) ch = char(std::tolower(static_cast<unsigned char>(ch)));
  return out;
}

// The options for the embedding and the LM head, checked against the model before anything is
// converted: a tied model's one tensor takes one type, and rows must fill whole blocks.
struct VocabPlan {
  std::optional<WType> embed, head;
  const char *embed_key = "quantize_embedding", *head_key = "quantize_head";
};

VocabPlan plan_vocab(const Model& m, const BaseWeightOptions& o) {
  VocabPlan v{parse_vocab_quant("quantize_embedding", o.quantize_embedding),
              parse_vocab_quant("quantize_head", o.quantize_head)};
  if (m.lm_head.data == m.embed.data) {  // tied: the head is the embedding
    if (v.embed && v.head && *v.embed != *v.head)
      fail("the model ties its LM head to the token embedding (one tensor), so quantize_embedding ",
           lower(wtype_name(*v.embed)), " and quantize_head ", lower(wtype_name(*v.head)),
           " cannot both hold (hint: set only one of them, or both to the same type)");
    if (!v.embed) v.embed = v.head, v.embed_key = v.head_key;
    v.head = v.embed, v.head_key = v.embed_key;
  }
  const int64_t D = m.embed.cols;
  for (auto [q, key] : {std::pair{v.embed, v.embed_key}, {v.head, v.head_key}})
    if (q && D % wtype_block(*q) != 0)
      fail(key, " ", lower(wtype_name(*q)), " needs the hidden size to be a multiple of its block of ",
           wtype_block(*q), ", and this model's n_embd is ", D,
           wtype_block(*q) > 32 && D % 32 == 0 ? " (hint: q8_0 and q4_0 have blocks of 32)" : "");
  return v;
}

// The embedding and LM head: quantized as planned, else stored as `dtype` (plain ones only). A
// tensor the file already holds quantized keeps its type; the returned note says so.
std::string store_vocab(Model& m, const VocabPlan& v, const std::optional<WType>& dtype, bool plan_only) {
  std::string note;
  auto one = [&](WeightMatrix& w, const std::optional<WType>& q, const char* key, const std::string& what) {
    if (!is_plain(w.type)) {
      if (q && w.type != *q)
        note += cat(note.empty() ? "" : "\n", "note: ", what, " is already ", wtype_name(w.type), " in the model file and ",
                    "keeps that type (", key, " ", lower(wtype_name(*q)), " converts f32/f16/bf16 weights only)");
      return;
    }
    const std::optional<WType> to = q ? q : dtype;
    if (to) store_as(m, w, *to, what, plan_only);
  };
  if (m.lm_head.data == m.embed.data) {
    one(m.embed, v.embed, v.embed_key, "the token embedding (tied to the LM head)");
    m.lm_head = m.embed;
  } else {
    one(m.embed, v.embed, v.embed_key, "the token embedding");
    one(m.lm_head, v.head, v.head_key, "the LM head");
  }
  return note;
}

std::string joined(const std::string& a, const std::string& b) { return a.empty() ? b : b.empty() ? a : a + "\n" + b; }

}  // namespace

std::string apply_base_options(Model& m, const BaseWeightOptions& o, const Backend& be) {
  const std::optional<WType> quant = parse_quantize(o.quantize), dtype = parse_dtype(o.dtype);
  const VocabPlan vocab = plan_vocab(m, o);
  check_cancel(o.cancel, "converting the base weights (the embedding and LM head)");
  const std::string vocab_note = store_vocab(m, vocab, dtype, false);
  const std::string note = store_matrices(m, quant, dtype, o.cancel, false);
  set_compute(m, o.compute, be);
  return joined(note, vocab_note);
}

Model planned_base(const Model& m, const BaseWeightOptions& o, const Backend& be) {
  Model p;
  p.cfg = m.cfg;
  p.source = m.source;
  p.inv_freq = m.inv_freq;
  p.owned = m.owned;  // the views keep pointing into live memory
  p.embed = m.embed;
  p.lm_head = m.lm_head;
  p.layers.resize(m.layers.size());
  for (size_t l = 0; l < m.layers.size(); ++l)
    for (int i = 0; i < kNumProj; ++i) proj_weight(p.layers[l], Proj(i)) = proj_weight(m.layers[l], Proj(i));
  // The vectors only count (base_memory): sized, never read.
  p.norm.resize(m.norm.size());
  for (size_t l = 0; l < m.layers.size(); ++l) {
    const LayerWeights& from = m.layers[l];
    LayerWeights& to = p.layers[l];
    for (auto [a, b] : {std::pair{&from.ln1, &to.ln1}, {&from.ln2, &to.ln2}, {&from.q_norm, &to.q_norm},
                        {&from.k_norm, &to.k_norm}, {&from.bq, &to.bq}, {&from.bk, &to.bk}, {&from.bv, &to.bv},
                        {&from.bo, &to.bo}, {&from.bgate, &to.bgate}, {&from.bup, &to.bup}, {&from.bdown, &to.bdown}})
      b->resize(a->size());
  }
  const std::optional<WType> dtype = parse_dtype(o.dtype);
  store_vocab(p, plan_vocab(p, o), dtype, true);
  store_matrices(p, parse_quantize(o.quantize), dtype, nullptr, true);
  set_compute(p, o.compute, be);
  return p;
}

void set_compute(Model& m, const std::string& compute, const Backend& be) {
  if (compute != "auto" && compute != "f32" && compute != "bf16")
    fail("unknown compute dtype '", compute, "' (expected auto, f32 or bf16)");
  const bool native = be.prefers_bf16();
  auto set = [&](WeightMatrix& w) {
    const bool narrow = w.type != WType::F32 && w.type != WType::F16;  // bf16 or a block quant
    w.bf16_compute = compute == "bf16" || (compute == "auto" && native && narrow);
    w.prepared = nullptr;
  };
  for (LayerWeights& L : m.layers)
    for (int i = 0; i < kNumProj; ++i) set(proj_weight(L, Proj(i)));
  set(m.embed);
  set(m.lm_head);
}

bool computes_bf16(const Model& m) {
  bool any = m.lm_head.bf16_compute;
  for (const LayerWeights& L : m.layers)
    for (int i = 0; i < kNumProj; ++i) any |= proj_weight(L, Proj(i)).bf16_compute;
  return any;
}

namespace {
// The matrices prepare_weights prepares: every projection and the LM head.
std::vector<WeightMatrix*> preparable(Model& m) {
  std::vector<WeightMatrix*> mats;
  for (LayerWeights& L : m.layers)
    for (int i = 0; i < kNumProj; ++i)
      if (proj_weight(L, Proj(i)).data) mats.push_back(&proj_weight(L, Proj(i)));
  mats.push_back(&m.lm_head);
  return mats;
}

// prepare_weights' rule: skipped when twice the matrices exceed a quarter of the machine's memory.
bool worth_preparing(const std::vector<WeightMatrix*>& mats) {
  size_t plain = 0;
  for (const WeightMatrix* w : mats) plain += wtype_matrix_bytes(w->type, w->rows, w->cols);
  const size_t ram = size_t(sysconf(_SC_PHYS_PAGES)) * size_t(sysconf(_SC_PAGESIZE));
  return 2 * plain <= ram / 4;
}
}  // namespace

size_t planned_prepared_bytes(const Model& m, const Backend& be, int64_t rows_hint) {
  const std::vector<WeightMatrix*> mats = preparable(const_cast<Model&>(m));  // only read
  if (!worth_preparing(mats)) return 0;
  size_t bytes = 0;
  for (const WeightMatrix* w : mats) bytes += be.prepared_bytes(*w, rows_hint);
  return bytes;
}

size_t prepare_weights(Model& m, const Backend& be, int64_t rows_hint) {
  const std::vector<WeightMatrix*> mats = preparable(m);
  if (!worth_preparing(mats)) return 0;
  size_t packed = 0;
  for (WeightMatrix* w : mats) {
    std::shared_ptr<const PreparedWeight> p = be.prepare_weight(*w, rows_hint);
    if (!p) continue;
    packed += p->bytes();
    w->prepared = p.get();
    m.owned.push_back(std::const_pointer_cast<PreparedWeight>(p));
    const bool shared = w->data == m.embed.data;  // a tied head: the embedding lookups read it
    if (p->replaces_data() && !shared) release_pages(w->data, wtype_matrix_bytes(w->type, w->rows, w->cols));
  }
  return packed;
}

size_t BaseMemory::total() const {
  size_t n = vectors;
  for (size_t b : matrices) n += b;
  return n;
}

BaseMemory base_memory(const Model& m) {
  BaseMemory b;
  auto add = [&](const WeightMatrix& w) { b.matrices[size_t(w.type)] += wtype_matrix_bytes(w.type, w.rows, w.cols); };
  auto add_vec = [&](const std::vector<float>& v) { b.vectors += v.size() * sizeof(float); };
  add(m.embed);
  if (m.lm_head.data != m.embed.data) add(m.lm_head);
  add_vec(m.norm);
  for (const LayerWeights& L : m.layers) {
    for (int i = 0; i < kNumProj; ++i) add(proj_weight(L, Proj(i)));
    for (const auto* v : {&L.ln1, &L.ln2, &L.ln_post_attn, &L.ln_post_ffn, &L.q_norm, &L.k_norm, &L.bq, &L.bk, &L.bv,
                          &L.bo, &L.bgate, &L.bup, &L.bdown})
      add_vec(*v);
  }
  return b;
}

std::string describe_base_memory(const BaseMemory& b) {
  std::string out;
  for (int i = 0; i < kWTypeCount; ++i) {
    if (b.matrices[size_t(i)] == 0) continue;
    out += cat(out.empty() ? "" : ", ", wtype_name(WType(i)), " ", human(b.matrices[size_t(i)]));
  }
  out += cat(out.empty() ? "" : ", ", "f32 vectors ", human(b.vectors), ": ", human(b.total()), " in all");
  return out;
}

std::string describe_vocab_storage(const Model& m) {
  if (m.lm_head.data == m.embed.data)
    return cat("token embedding and LM head (tied, one tensor) ", wtype_name(m.embed.type));
  return cat("token embedding ", wtype_name(m.embed.type), ", LM head ", wtype_name(m.lm_head.type));
}

bool vocab_quantized(const Model& m) { return !is_plain(m.embed.type) || !is_plain(m.lm_head.type); }

namespace {
bool finite_all(const float* v, size_t n) {
  for (size_t i = 0; i < n; ++i)
    if (!std::isfinite(v[i])) return false;
  return true;
}

bool matrix_finite(const WeightMatrix& w) {
  if (!w.data) return true;
  constexpr int64_t kRows = 64;
  std::vector<float> buf(size_t(kRows * w.cols));
  for (int64_t r = 0; r < w.rows; r += kRows) {
    const int64_t n = std::min(kRows, w.rows - r);
    dequantize_rows(w, r, n, buf.data());
    if (!finite_all(buf.data(), size_t(n * w.cols))) return false;
  }
  return true;
}
}  // namespace

std::string first_non_finite_weight(const Model& m) {
  if (!matrix_finite(m.embed)) return "model.embed_tokens.weight";
  for (size_t l = 0; l < m.layers.size(); ++l) {
    const LayerWeights& L = m.layers[l];
    const std::string p = layer_prefix(int64_t(l));
    if (!finite_all(L.ln1.data(), L.ln1.size())) return p + "input_layernorm.weight";
    if (!finite_all(L.ln2.data(), L.ln2.size()))
      return p + (m.cfg.sandwich_norms ? "pre_feedforward_layernorm.weight" : "post_attention_layernorm.weight");
    if (!finite_all(L.ln_post_attn.data(), L.ln_post_attn.size())) return p + "post_attention_layernorm.weight";
    if (!finite_all(L.ln_post_ffn.data(), L.ln_post_ffn.size())) return p + "post_feedforward_layernorm.weight";
    if (!finite_all(L.q_norm.data(), L.q_norm.size())) return p + "self_attn.q_norm.weight";
    if (!finite_all(L.k_norm.data(), L.k_norm.size())) return p + "self_attn.k_norm.weight";
    for (int i = 0; i < kNumProj; ++i) {
      const Proj pr = Proj(i);
      if (!matrix_finite(proj_weight(L, pr))) return p + proj_module(pr) + ".weight";
    }
    for (const auto* b : {&L.bq, &L.bk, &L.bv, &L.bo, &L.bgate, &L.bup, &L.bdown})
      if (!finite_all(b->data(), b->size())) return p + "(a projection bias)";
  }
  if (!finite_all(m.norm.data(), m.norm.size())) return "model.norm.weight";
  if (m.lm_head.data != m.embed.data && !matrix_finite(m.lm_head)) return "lm_head.weight";
  return "";
}

}  // namespace tpro
