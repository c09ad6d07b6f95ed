// The CPU backend: each op forwards to its kernel family in kernels/cpu/; see backend.h.
#include "kernels/cpu/backend.h"

#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "core/error.h"
#include "core/rng.h"
#include "kernels/cpu/adamw.h"
#include "kernels/cpu/attention.h"
#include "kernels/cpu/cross_entropy.h"
#include "kernels/cpu/dora.h"
#include "kernels/cpu/gemm.h"
#include "kernels/cpu/linear.h"
#include "kernels/cpu/lora.h"
#include "kernels/cpu/norm_rope_swiglu.h"
#include "kernels/cpu/optimizers.h"
#include "kernels/cpu/parallel.h"

namespace tpro {

namespace {
// x in bf16 in this thread's scratch `slot` (a projection needs its input and its gradient).
const uint16_t* bf16_scratch(int slot, const float* x, int64_t n) {
  thread_local std::vector<uint16_t> buf[2];
  auto& b = buf[slot];
  if (b.size() < size_t(n)) b.resize(size_t(n));
  convert_f32_to_bf16(x, b.data(), n);
  return b.data();
}
}  // namespace

std::string CpuBackend::describe() const {
  return cat("cpu: ", omp_get_max_threads(), " threads, ", cpu_avx512() ? "AVX-512" : "AVX2 or older",
             cpu_native_bf16() ? ", native bf16" : ", no native bf16");
}

bool CpuBackend::prefers_bf16() const { return cpu_native_bf16(); }

void* CpuBackend::alloc(size_t bytes) const {
  const size_t rounded = (std::max<size_t>(bytes, 1) + 63) & ~size_t(63);
  void* p = std::aligned_alloc(64, rounded);
  if (!p) fail("cannot allocate ", double(bytes) / double(1 << 20), " MiB of memory (hint: smaller micro-batches or cutoff, or gradient checkpointing)");
  std::memset(p, 0, rounded);
  std::lock_guard<std::mutex> lock(mu_);
  live_[p] = rounded;
  live_bytes_ += rounded;
  return p;
}
void CpuBackend::free(void* p) const {
  if (!p) return;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (auto it = live_.find(p); it != live_.end()) {
      live_bytes_ -= it->second;
      live_.erase(it);
    }
  }
  std::free(p);
}
size_t CpuBackend::allocated_bytes() const {
  std::lock_guard<std::mutex> lock(mu_);
  return live_bytes_;
}

// What the step's ops keep in thread scratch: the projections' bf16 copies (bf16_scratch's two
// slots), the linear and LoRA kernels' buffers on the calling thread, attention's on every thread.
size_t CpuBackend::workspace_bytes(const WorkspaceShape& s) const {
  const size_t nw = size_t(s.N * s.W), cv = size_t(s.C * s.V);  // cv: the LM head's dy in backward
  size_t b = s.bf16 ? (std::max(nw, cv) + nw) * sizeof(uint16_t) : 0;
  b += linear_scratch_bytes(s.N, s.W, s.bf16, s.panels);
  if (s.R > 0) b += lora_scratch_bytes(s.N, s.W, s.R, s.bf16, s.dropout);
  if (s.dora) b += dora_scratch_bytes(s.N, s.W, s.bf16, s.dropout, omp_get_max_threads());
  AttnShape a;
  a.B = s.B, a.Tq = s.T, a.Tk = s.T, a.H = s.H, a.Hkv = s.Hkv, a.Dh = s.Dh, a.bf16 = s.bf16;
  return b + attention_scratch_bytes(a, omp_get_max_threads());
}
void CpuBackend::upload(void* dst, const void* src, size_t bytes) const { std::memcpy(dst, src, bytes); }
void CpuBackend::download(void* dst, const void* src, size_t bytes) const { std::memcpy(dst, src, bytes); }
void CpuBackend::copy(void* dst, const void* src, size_t bytes) const { std::memmove(dst, src, bytes); }
void CpuBackend::fill(float* x, float value, int64_t n) const {
#pragma omp parallel for simd if (worth_parallel(n))
  for (int64_t i = 0; i < n; ++i) x[i] = value;
}

std::shared_ptr<const PreparedWeight> CpuBackend::prepare_weight(const WeightMatrix& W, int64_t rows_hint) const {
  auto p = std::make_shared<PackedWeight>(pack_weight(W, rows_hint));
  if (!p->fwd && !p->bwd) return nullptr;
  return p;
}

size_t CpuBackend::prepared_bytes(const WeightMatrix& W, int64_t rows_hint) const {
  return packed_weight_bytes(W, rows_hint);
}

void CpuBackend::project(float* out, const float* x, const WeightMatrix& W, const float* bias,
                         const LoraOperands* lora, int64_t N) const {
  // With an adapter, the input is rounded to bf16 once for both products.
  const uint16_t* x16 = W.bf16_compute && lora ? bf16_scratch(0, x, N * W.cols) : nullptr;
  if (lora && lora->mag) {
    dora_forward(out, x, W, bias, *lora, N, x16);
    return;
  }
  linear_forward(out, x, W, bias, N, false, x16);
  if (lora)
    lora_forward(out, lora->u, x, lora->A, lora->B, lora->scale, lora->dropout, N, W.cols, W.rows, lora->R, x16);
}

void CpuBackend::project_backward(float* dx, const float* dy, const float* x, const WeightMatrix& W,
                                  const LoraOperands* lora, int64_t N, Accumulate acc) const {
  const uint16_t* dy16 = W.bf16_compute ? bf16_scratch(0, dy, N * W.rows) : nullptr;
  if (lora && lora->mag) {
    const uint16_t* x16 = W.bf16_compute ? bf16_scratch(1, x, N * W.cols) : nullptr;
    dora_backward(dx, dy, x, W, *lora, N, acc == Accumulate::yes, dy16, x16);
    return;
  }
  linear_backward(dx, dy, W, N, acc == Accumulate::yes, dy16);
  if (!lora) return;
  const uint16_t* x16 = W.bf16_compute ? bf16_scratch(1, x, N * W.cols) : nullptr;
  lora_backward(dx, lora->dA, lora->dB, dy, x, lora->u, lora->A, lora->B, lora->scale, lora->dropout, N, W.cols,
                W.rows, lora->R, dy16, x16);
}

void CpuBackend::dora_weight_norm(float* wn, const WeightMatrix& W, const float* A, const float* B, float s,
                                  int64_t R) const {
  tpro::dora_weight_norm(wn, W, A, B, s, R);
}

void CpuBackend::gemm(bool transA, bool transB, int64_t M, int64_t N, int64_t K, float alpha, const float* A,
                      int64_t lda, const float* B, int64_t ldb, float beta, float* C, int64_t ldc) const {
  sgemm(transA, transB, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}

void CpuBackend::rmsnorm_forward(float* out, float* rstd, const float* x, const float* w, float eps, int64_t N,
                                 int64_t D) const {
  tpro::rmsnorm_forward(out, rstd, x, w, eps, N, D);
}
void CpuBackend::rmsnorm_backward(float* dx, const float* dy, const float* x, const float* w, const float* rstd,
                                  int64_t N, int64_t D) const {
  tpro::rmsnorm_backward(dx, dy, x, w, rstd, N, D);
}
void CpuBackend::rope_table(float* cos, float* sin, std::span<const float> inv_freq, int64_t n_pos,
                            float mscale) const {
  rope_table_build(cos, sin, inv_freq.data(), int64_t(inv_freq.size()), n_pos, mscale);
}
void CpuBackend::copy_columns(float* dst, int64_t ldd, const float* src, int64_t lds, int64_t N, int64_t width,
                              Accumulate acc) const {
#pragma omp parallel for if (worth_parallel(N * width))
  for (int64_t n = 0; n < N; ++n) {
    float* d = dst + n * ldd;
    const float* x = src + n * lds;
    if (acc == Accumulate::yes) {
#pragma omp simd
      for (int64_t j = 0; j < width; ++j) d[j] += x[j];
    } else {
      std::memcpy(d, x, size_t(width) * sizeof(float));
    }
  }
}
void CpuBackend::rope_forward(float* x, const int32_t* pos, const RopeTable& t, int64_t N, int64_t H,
                              int64_t Dh) const {
  tpro::rope_forward(x, pos, t, N, H, Dh);
}
void CpuBackend::rope_backward(float* dx, const int32_t* pos, const RopeTable& t, int64_t N, int64_t H,
                               int64_t Dh) const {
  tpro::rope_backward(dx, pos, t, N, H, Dh);
}
void CpuBackend::attention_forward(float* out, float* lse, const float* q, const float* k, const float* v,
                                   const int32_t* seg_start, const AttnShape& s, int64_t kv_stride) const {
  tpro::attention_forward(out, lse, q, k, v, seg_start, s, kv_stride);
}
void CpuBackend::attention_backward(float* dq, float* dk, float* dv, const float* dout, const float* q,
                                    const float* k, const float* v, const float* out, const float* lse,
                                    const int32_t* seg_start, const AttnShape& s) const {
  tpro::attention_backward(dq, dk, dv, dout, q, k, v, out, lse, seg_start, s);
}
void CpuBackend::swiglu_forward(float* out, const float* gate, const float* up, int64_t n) const {
  tpro::swiglu_forward(out, gate, up, n);
}
void CpuBackend::swiglu_backward(float* dgate, float* dup, const float* dout, const float* gate, const float* up,
                                 int64_t n) const {
  tpro::swiglu_backward(dgate, dup, dout, gate, up, n);
}
void CpuBackend::geglu_forward(float* out, const float* gate, const float* up, int64_t n) const {
  tpro::geglu_forward(out, gate, up, n);
}
void CpuBackend::geglu_backward(float* dgate, float* dup, const float* dout, const float* gate, const float* up,
                                int64_t n) const {
  tpro::geglu_backward(dgate, dup, dout, gate, up, n);
}
void CpuBackend::softcap(float* x, int64_t n, float cap) const { softcap_inplace(x, n, cap); }
void CpuBackend::add(float* x, const float* y, int64_t n) const {
#pragma omp parallel for simd if (worth_parallel(n))
  for (int64_t i = 0; i < n; ++i) x[i] += y[i];
}
void CpuBackend::neftune_noise(float* x, int64_t N, int64_t T, int64_t D, double alpha, uint64_t seed) const {
  const float mag = float(alpha / std::sqrt(double(T * D)));
  const uint64_t s = splitmix64(seed ^ 0x4e454654ull);
#pragma omp parallel for if (worth_parallel(N * D))
  for (int64_t i = 0; i < N * D; ++i) x[i] += mag * (2.0f * hash_uniform(s, uint64_t(i)) - 1.0f);
}

void CpuBackend::embedding_forward(float* out, const int32_t* tokens, const WeightMatrix& emb, int64_t N) const {
  tpro::embedding_forward(out, tokens, emb, N);
}
void CpuBackend::embedding_backward(float* dE, const float* dout, const int32_t* tokens, int64_t N,
                                    int64_t D) const {
  tpro::embedding_backward(dE, dout, tokens, N, D);
}
void CpuBackend::gather_rows(float* dst, const float* src, const int32_t* rows, int64_t n, int64_t D) const {
#pragma omp parallel for if (worth_parallel(n * D))
  for (int64_t i = 0; i < n; ++i) std::memcpy(dst + i * D, src + int64_t(rows[i]) * D, size_t(D) * sizeof(float));
}
void CpuBackend::scatter_rows(float* dst, const float* src, const int32_t* rows, int64_t n, int64_t D) const {
#pragma omp parallel for if (worth_parallel(n * D))
  for (int64_t i = 0; i < n; ++i) std::memcpy(dst + int64_t(rows[i]) * D, src + i * D, size_t(D) * sizeof(float));
}
double CpuBackend::cross_entropy(float* logits, const int32_t* targets, const float* weight, int64_t n, int64_t V,
                                 float* nll, Gradient grad, float softcap) const {
  return cross_entropy_fused(logits, targets, weight, n, V, nll, grad == Gradient::yes, softcap);
}

void CpuBackend::adamw(float* params, const float* grads, float* m, float* v, int64_t n, const AdamWHyper& h,
                       int64_t step) const {
  adamw_update(params, grads, m, v, n, h, step);
}
void CpuBackend::sgd(float* params, const float* grads, float* buf, int64_t n, const SgdHyper& h,
                     int64_t step) const {
  sgd_update(params, grads, buf, n, h, step);
}
void CpuBackend::adagrad(float* params, const float* grads, float* sum, int64_t n, const AdagradHyper& h,
                         int64_t step) const {
  adagrad_update(params, grads, sum, n, h, step);
}
void CpuBackend::adafactor(float* params, const float* grads, float* row, float* col,
                           std::span<const OptimTensor> tensors, const AdafactorHyper& h, int64_t step) const {
  adafactor_update(params, grads, row, col, tensors, h, step);
}
void CpuBackend::lion(float* params, const float* grads, float* m, int64_t n, const LionHyper& h) const {
  lion_update(params, grads, m, n, h);
}
void CpuBackend::adamw8bit(float* params, const float* grads, uint8_t* q1, uint8_t* q2, float* absmax1,
                           float* absmax2, std::span<const OptimTensor> tensors, const AdamWHyper& h,
                           int64_t step) const {
  adamw8bit_update(params, grads, q1, q2, absmax1, absmax2, tensors, h, step);
}
double CpuBackend::l2_norm(const float* x, int64_t n) const { return grad_l2_norm(x, n); }
void CpuBackend::scale(float* x, int64_t n, float s) const { scale_in_place(x, n, s); }

}  // namespace tpro
