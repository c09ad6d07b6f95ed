// LoRA merge; see merge.h. One projection at a time: its f32 rows, one SGEMM adding s·B·A,
// then conversion to the output type, so peak extra memory is one f32 matrix.
#include "model/merge.h"

#include <vector>

#include "core/error.h"
#include "model/base_weights.h"
#include "quant/quantized_matrix.h"

namespace tpro {

Model merge_lora(const Backend& be, const Model& base, const LoraWeights& lw, WType type) {
  if (lw.slot_of.size() != size_t(base.cfg.n_layer * kNumProj)) {
    fail("cannot merge: the adapter has ", lw.slot_of.size() / kNumProj, " layers, the base model ", base.cfg.n_layer);
  }
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
    auto q = std::make_shared<QuantizedMatrix>(quantize_matrix(w.data(), W.rows, W.cols, type));
    W = q->view();
    m.owned.push_back(q);
  }
  return m;
}

}  // namespace tpro
