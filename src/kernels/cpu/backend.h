// The CPU backend: host memory, OpenMP threads, oneDNN matmuls (kernels/cpu/*.h). Its own
// tactics stay inside: bf16 copies of matmul inputs are made per call in thread scratch, f32
// weights may be packed into oneDNN's blocked layout (PackedWeight).
#pragma once
#include <mutex>
#include <unordered_map>

#include "kernels/backend.h"

namespace tpro {

class CpuBackend final : public Backend {
 public:
  std::string_view name() const override { return "cpu"; }
  std::string describe() const override;
  bool prefers_bf16() const override;

  void* alloc(size_t bytes) const override;
  void free(void* p) const override;
  void upload(void* dst, const void* host_src, size_t bytes) const override;
  void download(void* host_dst, const void* src, size_t bytes) const override;
  void copy(void* dst, const void* src, size_t bytes) const override;
  void fill(float* x, float value, int64_t n) const override;
  size_t allocated_bytes() const override;
  size_t workspace_bytes(const WorkspaceShape& s) const override;

  std::shared_ptr<const PreparedWeight> prepare_weight(const WeightMatrix& W, int64_t rows_hint) const override;
  size_t prepared_bytes(const WeightMatrix& W, int64_t rows_hint) const override;
  void project(float* out, const float* x, const WeightMatrix& W, const float* bias, const LoraOperands* lora,
               int64_t N) const override;
  void project_backward(float* dx, const float* dy, const float* x, const WeightMatrix& W, const LoraOperands* lora,
                        int64_t N, Accumulate acc) const override;
  void dora_weight_norm(float* wn, const WeightMatrix& W, const float* A, const float* B, float s,
                        int64_t R) const override;
  void gemm(bool transA, bool transB, int64_t M, int64_t N, int64_t K, float alpha, const float* A, int64_t lda,
            const float* B, int64_t ldb, float beta, float* C, int64_t ldc) const override;

  void rmsnorm_forward(float* out, float* rstd, const float* x, const float* w, float eps, int64_t N,
                       int64_t D) const override;
  void rmsnorm_backward(float* dx, const float* dy, const float* x, const float* w, const float* rstd, int64_t N,
                        int64_t D) const override;
  void rope_table(float* cos, float* sin, std::span<const float> inv_freq, int64_t n_pos,
                  float mscale) const override;
  void copy_columns(float* dst, int64_t ldd, const float* src, int64_t lds, int64_t N, int64_t width,
                    Accumulate acc) const override;
  void rope_forward(float* x, const int32_t* pos, const RopeTable& t, int64_t N, int64_t H,
                    int64_t Dh) const override;
  void rope_backward(float* dx, const int32_t* pos, const RopeTable& t, int64_t N, int64_t H,
                     int64_t Dh) const override;
  void attention_forward(float* out, float* lse, const float* q, const float* k, const float* v,
                         const int32_t* seg_start, const AttnShape& s, int64_t kv_stride) const override;
  void attention_backward(float* dq, float* dk, float* dv, const float* dout, const float* q, const float* k,
                          const float* v, const float* out, const float* lse, const int32_t* seg_start,
                          const AttnShape& s) const override;
  void swiglu_forward(float* out, const float* gate, const float* up, int64_t n) const override;
  void geglu_forward(float* out, const float* gate, const float* up, int64_t n) const override;
  void geglu_backward(float* dgate, float* dup, const float* dout, const float* gate, const float* up,
                      int64_t n) const override;
  void softcap(float* x, int64_t n, float cap) const override;
  void swiglu_backward(float* dgate, float* dup, const float* dout, const float* gate, const float* up,
                       int64_t n) const override;
  void add(float* x, const float* y, int64_t n) const override;
  void neftune_noise(float* x, int64_t N, int64_t T, int64_t D, double alpha, uint64_t seed) const override;

  void embedding_forward(float* out, const int32_t* tokens, const WeightMatrix& emb, int64_t N) const override;
  void embedding_backward(float* dE, const float* dout, const int32_t* tokens, int64_t N, int64_t D) const override;
  void gather_rows(float* dst, const float* src, const int32_t* rows, int64_t n, int64_t D) const override;
  void scatter_rows(float* dst, const float* src, const int32_t* rows, int64_t n, int64_t D) const override;
  double cross_entropy(float* logits, const int32_t* targets, const float* weight, int64_t n, int64_t V, float* nll,
                       Gradient grad, float softcap) const override;

  void adamw(float* params, const float* grads, float* m, float* v, int64_t n, const AdamWHyper& h,
             int64_t step) const override;
  void sgd(float* params, const float* grads, float* buf, int64_t n, const SgdHyper& h, int64_t step) const override;
  void adagrad(float* params, const float* grads, float* sum, int64_t n, const AdagradHyper& h,
               int64_t step) const override;
  void adafactor(float* params, const float* grads, float* row, float* col, std::span<const OptimTensor> tensors,
                 const AdafactorHyper& h, int64_t step) const override;
  void lion(float* params, const float* grads, float* m, int64_t n, const LionHyper& h) const override;
  void adamw8bit(float* params, const float* grads, uint8_t* q1, uint8_t* q2, float* absmax1, float* absmax2,
                 std::span<const OptimTensor> tensors, const AdamWHyper& h, int64_t step) const override;
  double l2_norm(const float* x, int64_t n) const override;
  void scale(float* x, int64_t n, float s) const override;

 private:
  // Live allocations and their rounded sizes (allocated_bytes); few and long-lived.
  mutable std::mutex mu_;
  mutable std::unordered_map<const void*, size_t> live_;
  mutable size_t live_bytes_ = 0;
};

}  // namespace tpro
