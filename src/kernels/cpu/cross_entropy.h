// Masked softmax cross-entropy on a chunk of logit rows, fused with its backward: the logits
// buffer is overwritten by dlogits = weight·(softmax − onehot), so the caller can run the LM
// head backward (dx = dlogits·E) on the same chunk and no (N,V) tensor is ever whole.
// weight[n] is the row's share of the loss: mask / (trained tokens in the accumulated batch).
// Reference: ref::cross_entropy_forward/backward.
#pragma once
#include <cstdint>

namespace tpro {

// logits (n,V) in, dlogits out when want_grad (otherwise left as scratch). targets (n), -1 =
// untrained. Returns
// Σ weight·nll; nll (n) receives each row's −log p(target) (0 for untrained rows) when given.
// softcap > 0: on softcap·tanh(logits/softcap), the gradient taken through the tanh.
double cross_entropy_fused(float* logits, const int32_t* targets, const float* weight, int64_t n, int64_t V,
                           float* nll, bool want_grad, float softcap = 0.0f);

}  // namespace tpro
