// LoRA merge; see merge.h. One projection at a time: its f32 rows, one SGEMM adding s·B·A
// (DoRA: each row then rescaled to its magnitude), then conversion to the output type, so
// peak extra memory is one f32 matrix.
#include "model/merge.h"

#include <cmath>
#include <vector>

#include "core/error.h"
#include "model/base_weights.h"
#include "quant/quantized_matrix.h"

namespace tpro {

namespace {
// DoRA (PEFT's DoraLinearVariant.merge_safe): each row of W + s·B·A (rows, cols) times
// m / ‖its row‖.
void scale_rows_to_magnitude(float* w, const float* mag, int64_t rows, int64_t cols) {
  for (int64_t o = 0; o < rows; ++o) {
    double ss = 0.0;
    for (int64_t i = 0; i < cols; ++i) ss += double(w[o * cols + i]) * w[o * cols + i];
    const float g = float(double(mag[o]) / std::sqrt(ss));
    for (int64_t i = 0; i < cols; ++i) w[o * cols + i] *= g;
  }
}
}  // namespace

Model with_saved_modules(const Model& base, const LoraWeights& lw) {
  if (lw.embed_at < 0 && lw.head_at < 0) return base;
  const int64_t V = base.cfg.vocab_size, D = base.cfg.n_embd;
  if (lw.vocab != V || lw.n_embd != D)
    fail("the adapter's trained embedding and LM head (modules_to_save) are (", lw.vocab, ", ", lw.n_embd,
         "), the base model's (", V, ", ", D, ") (hint: the adapter was trained on another base model)");
  Model m = base;
  auto copy = [&](int64_t at) {
    auto q = std::make_shared<QuantizedMatrix>(quantize_matrix(lw.params.data() + at, V, D, WType::F32));
    m.owned.push_back(q);
    return q->view();
  };
  // A tied base (lm_head views the embedding) keeps the original where the adapter has no copy,
  // as PEFT's ModulesToSaveWrapper leaves the other module on the original weight.
  if (lw.embed_at >= 0) m.embed = copy(lw.embed_at);
  if (lw.head_at >= 0) m.lm_head = copy(lw.head_at);
  m.cfg.tie_word_embeddings = false;
  return m;
}

Model merge_lora(const Backend& be, const Model& base_in, const LoraWeights& lw, WType type) {
  if (lw.slot_of.size() != size_t(base_in.cfg.n_layer * kNumProj)) {
    fail("cannot merge: the adapter has ", lw.slot_of.size() / kNumProj, " layers, the base model ", base_in.cfg.n_layer);
  }
  const Model base = with_saved_modules(base_in, lw);
  Model m = base;
  const float s = float(lw.cfg.scale());
  std::vector<float> w;
  DeviceArray<float> ab(be, lw.params.size());
  ab.upload(lw.params);
  for (const LoraSlot& slot : lw.slots) {
    WeightMatrix& W = proj_weight(m.layers[size_t(slot.layer)], slot.proj);
    if (W.rows != slot.out || W.cols != slot.in) {
      fail("cannot merge layer ", slot.layer, " ", proj_name(slot.proj), ": the base weight is (", W.rows, ", ", W.cols,
           "), the adapter's B·A is (", slot.out, ", ", slot.in, ")");
    }
    w.resize(size_t(W.rows * W.cols));
    dequantize_rows(W, 0, W.rows, w.data());
    // W (out, in) += s · B (out, r) · A (r, in)
    DeviceArray<float> wd(be, w.size());
    wd.upload(w);
    be.gemm(false, false, slot.out, slot.in, lw.cfg.r, s, ab.data() + slot.b, lw.cfg.r, ab.data() + slot.a, slot.in,
            1.0f, wd.data(), slot.in);
    wd.download(w);
    if (lw.cfg.dora) scale_rows_to_magnitude(w.data(), lw.params.data() + slot.m, W.rows, W.cols);
    auto q = std::make_shared<QuantizedMatrix>(quantize_matrix(w.data(), W.rows, W.cols, type));
    W = q->view();
    m.owned.push_back(q);
  }
  return m;
}

}  // namespace tpro
